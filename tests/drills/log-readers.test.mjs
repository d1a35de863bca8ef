// The log readers drill (scripts/bench/log-readers.mjs) at a hundredth of its size: 1,000 jobs,
// 4 readers of the log's first page while 20 closes arrive, with the rate limits raised and then
// production's. Invariants only, never timings (those are BENCHMARKS.md's): every close is
// scheduled, every read is answered or refused with 429, every summary counts the log and the
// closes so far, and production's limits cut a reader off at 60 reads a minute.
import { test } from "node:test";
import assert from "node:assert/strict";
import { benchLogReaders } from "../../scripts/bench/log-readers.mjs";

test("log readers beside closes: every close scheduled, every summary right, reads limited", async () => {
  const r = await benchLogReaders({ n: 1000, closes: 20, readers: 4 });
  assert.equal(r.finalTotal, r.expectedTotal, "the summary counts every job");
  for (const [name, phase] of [["raised", r.unlimited], ["production", r.limited]]) {
    assert.ok(phase.reads >= 4, `${name}: ${JSON.stringify(phase)}`);
    assert.equal(phase.other, 0, `${name}: only 200 and 429`);
    assert.ok(phase.summariesRight, `${name}: every summary counted the log and the closes so far`);
  }
  assert.equal(r.unlimited.limited, 0, "limits raised: no read refused");
  assert.ok(r.limited.answered <= 120, `production limits: at most 60 a minute per key (${r.limited.answered} answered)`);
});
