// Log readers: does reading the delivery log slow real closes? One org's Durable Object holds
// `n` pending surveys (closes spread over the last 29 days, due in 30, so none falls due during
// the run), then `closes` new conversations close one after another, first with nobody reading
// the log (idle), then while `readers` clients read the log's first page (summary included, the
// whole log: no window) in a loop. One Durable Object per org serialises the two, so a summary
// that counted every row would show in the closes' latency; the counters keep it at the cost of
// the counters of the window. The log read rate limits are raised (the harness's), so the
// readers measure the summary's cost, not the limiter.
//
//   node scripts/bench/log-readers.mjs [n…]      default: 10000 100000; writes build/bench-log-readers.json
//
// Timings are figures for BENCHMARKS.md, never asserted in tests: tests/drills/log-readers.test.mjs
// runs 1,000 and checks only that every close and read succeeded and the summaries counted right.
import { writeFileSync, mkdirSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Stack } from "../../tests/http/harness.mjs";
import { ROOT, quantile } from "./lib.mjs";

const DAY = 86_400_000;

/** Runs the drill on a stack of its own; resolves its figures and what it checked. */
export async function benchLogReaders({ n, closes = 200, readers = 16, log = () => {} }) {
  process.env.REGISTER = "0";
  const stack = new Stack();
  try {
    await stack.start();
    const base = await stack.closeEvent("conv-email");
    const now = Date.now();
    const event = (id, closedAtMs) => {
      const at = new Date(closedAtMs).toISOString();
      const data = structuredClone(base.data);
      data.id = id;
      data.attributes = { ...data.attributes, status: "done", updatedAt: at, modificationHistory: { ...data.attributes.modificationHistory, statusAt: at } };
      return { ...base, id: `evt-${id}`, createdAt: at, data };
    };
    const headers = { "content-type": "application/json", ...stack.settingsHeaders({ "x-seconds-until-send": "2592000" }) };
    const post = async (body) => {
      const started = performance.now();
      const res = await fetch(`${stack.base}/v1/kustomer/conversation-closed`, { method: "POST", headers, body: JSON.stringify(body) });
      const text = await res.text();
      if (res.status !== 202) throw new Error(`close ${body.data.id}: ${res.status} ${text}`);
      return performance.now() - started;
    };

    // The log: n closes over the last 29 days, 32 in flight.
    const seeding = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++;
        await post(event(`log-${i}`, now - 60_000 - Math.floor((i / n) * 29 * DAY)));
        if (i % 10_000 === 9_999) log(`log-readers: ${i + 1} of ${n} closed`);
      }
    }));
    const seedSeconds = (Date.now() - seeding) / 1000;
    log(`log-readers: ${n} closes in ${seedSeconds.toFixed(0)} s`);

    let serial = 0;
    const measure = async () => {
      const times = [];
      for (let i = 0; i < closes; i++) times.push(await post(event(`new-${serial++}`, Date.now() - 1000)));
      return times.sort((a, b) => a - b);
    };
    const readHeaders = stack.orgHeaders();
    /** Close latencies with nobody reading, then with `readers` reading in a loop. */
    const phase = async () => {
      const idle = await measure();
      // The Deliveries page's first page, summary included, over the whole log.
      const reads = [];
      const summaries = [];
      let stop = false;
      const reader = async () => {
        while (!stop) {
          const started = performance.now();
          const res = await fetch(`${stack.base}/v1/deliveries?limit=50&utcOffsetMinutes=-300`, { headers: readHeaders });
          const body = await res.json();
          reads.push({ status: res.status, ms: performance.now() - started });
          if (res.status === 200) summaries.push(Object.values(body.summary.byState).reduce((a, b) => a + b, 0));
        }
      };
      const running = Array.from({ length: readers }, reader);
      // Every reader has had an answer before the loaded closes start.
      while (reads.length < readers) await new Promise((r) => setTimeout(r, 10));
      const before = serial;
      const loaded = await measure();
      stop = true;
      await Promise.all(running);
      const p = (sorted, q) => Number(quantile(sorted, q).toFixed(2));
      const readMs = reads.map((r) => r.ms).sort((a, b) => a - b);
      return {
        idle: { p50: p(idle, 0.5), p95: p(idle, 0.95) },
        loaded: { p50: p(loaded, 0.5), p95: p(loaded, 0.95) },
        ratio: Number((quantile(loaded, 0.5) / quantile(idle, 0.5)).toFixed(2)),
        reads: reads.length,
        answered: reads.filter((r) => r.status === 200).length,
        limited: reads.filter((r) => r.status === 429).length,
        other: reads.filter((r) => r.status !== 200 && r.status !== 429).length,
        readP50: p(readMs, 0.5),
        // Every summary counted the log and the closes so far: n, the idle closes, some loaded ones.
        summariesRight: summaries.every((t) => t >= n + before && t <= n + serial),
      };
    };
    // Rate limits raised (the harness's): the summary's cost alone. Then production's limits
    // (60 reads a minute per key, 120 per org), the same log, the readers ignoring Retry-After.
    const unlimited = await phase();
    log(`log-readers: ${n} jobs, limits raised: ${JSON.stringify(unlimited)}`);
    const final = await stack.request("GET", "/v1/deliveries?limit=1", { headers: readHeaders });
    const counted = { finalTotal: Object.values(final.body.summary.byState).reduce((a, b) => a + b, 0), expectedTotal: n + serial };
    await stack.kill();
    Object.assign(stack.env, { LOG_READS_PER_KEY_PER_MINUTE: null, LOG_READS_PER_ORG_PER_MINUTE: null });
    await stack.start();
    const limited = await phase();
    log(`log-readers: ${n} jobs, production limits: ${JSON.stringify(limited)}`);
    const result = {
      n,
      readers,
      closes,
      seedSeconds,
      unlimited,
      limited,
      ...counted,
    };
    return result;
  } finally {
    await stack.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const sizes = process.argv.slice(2).map(Number);
  const results = [];
  for (const n of sizes.length ? sizes : [10_000, 100_000]) {
    const r = await benchLogReaders({ n, log: console.log });
    console.log(JSON.stringify(r));
    results.push(r);
  }
  mkdirSync(`${ROOT}/build`, { recursive: true });
  writeFileSync(`${ROOT}/build/bench-log-readers.json`, JSON.stringify(results, null, 2));
  for (const r of results) {
    for (const [name, x] of [["limits raised", r.unlimited], ["production limits", r.limited]]) {
      console.log(`${r.n} jobs, ${r.readers} readers, ${name}: close p50 ${x.idle.p50} ms idle → ${x.loaded.p50} ms loaded (${x.ratio}×), p95 ${x.idle.p95} → ${x.loaded.p95} ms; ${x.reads} reads (${x.answered} answered, ${x.limited} 429), read p50 ${x.readP50} ms`);
    }
  }
}
