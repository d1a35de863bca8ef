// Cloudflare's cap on one invocation's outbound calls, in a real workerd: with
// SUBREQUESTS_PER_INVOCATION=10, forty surveys due at once each go out exactly once, every alarm
// run within the cap (each run logs its calls: `alarm: N surveys, M outbound calls, B bytes of
// Wasm memory`), and the edge's memory far below the isolate's 128 MB.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Stack, waitFor } from "./harness.mjs";

const CAP = 10;
const stack = new Stack({ env: { SUBREQUESTS_PER_INVOCATION: String(CAP) } });
before(async () => {
  await stack.start();
  await stack.request("POST", "/sandbox/kustomer/reset");
  await stack.request("POST", "/sandbox/stella/reset");
  await stack.setDelay(2);
});
after(() => stack.stop());

/** The alarm runs logged so far: [surveys, calls, bytes of Wasm memory] each. */
const runs = () =>
  [...stack.log.join("").matchAll(/alarm: (\d+) surveys, (\d+) outbound calls, (\d+) bytes of Wasm memory/g)].map((m) => m.slice(1).map(Number));

test("forty surveys due at once under a cap of 10 calls: each sent once, no run over", async () => {
  const ids = [];
  for (let i = 0; i < 40; i++) ids.push(await stack.newConversation());
  // Closed close together, so that they fall due together.
  for (let i = 0; i < ids.length; i += 8) {
    const closed = await Promise.all(ids.slice(i, i + 8).map((id) => stack.close(id)));
    for (const c of closed) assert.equal(c.body.edge.status, 202, JSON.stringify(c.body.edge));
  }
  await waitFor(async () => {
    const deliveries = await stack.deliveries();
    return ids.every((id) => deliveries.find((d) => d.conversationId === id)?.state === "sent");
  }, 120_000, "every survey sent");

  const { requests } = await stack.stellaLog();
  for (const id of ids) {
    assert.equal(requests.filter((r) => r.body.ext_interaction_id === id).length, 1, `${id} sent once`);
  }
  const logged = runs();
  const busy = logged.filter(([surveys]) => surveys > 0);
  assert.ok(busy.length >= 40 / 3, `the surveys took many runs: ${JSON.stringify(logged)}`);
  assert.ok(busy.reduce((n, [surveys]) => n + surveys, 0) >= 40);
  for (const [, calls] of logged) assert.ok(calls <= CAP, `a run made ${calls} calls: ${JSON.stringify(logged)}`);
  // Cloudflare allows an isolate 128 MB: the edge's linear memory stays far below it.
  for (const [, , bytes] of logged) assert.ok(bytes > 0 && bytes < 32 * 2 ** 20, `Wasm memory ${bytes} B: ${JSON.stringify(logged)}`);
});

test("a binding below the least cap stops the worker at start, naming it", async () => {
  const low = new Stack({ env: { SUBREQUESTS_PER_INVOCATION: "3" } });
  try {
    await low.run();
    await waitFor(() => /SUBREQUESTS_PER_INVOCATION is at least/.test(low.log.join("")), 15_000, "the refusal");
  } finally {
    await low.stop();
  }
});
