// 3. Kustomer API calls per sent survey: the whole local stack (tests/http/harness.mjs's Stack,
// scripts/serve.sh), conversations spread over many agents and tags, each closed through the
// Kustomer sandbox (which posts the event to the edge, as the app's workflow does), a short
// delay, and /sandbox/kustomer/stats read after a warm-up batch (cold: caches empty) and after
// the rest (steady state: stats reset in between).
import { Stack } from "../../tests/http/harness.mjs";
import { call, sleep, track, waitFor } from "./lib.mjs";

const RATE_LIMIT_PER_MIN = 1000; // Kustomer's per-org budget (Enterprise plan), as in the sandbox
const OUTCOME_WRITE = "PATCH /v1/conversations/:id"; // a survey's outcome written back, after its send
// What sending costs, apart from the outcome writes that follow each send (the sandbox's
// settings carry the API secret): those are measured by the outcomes part, 1 per outcome.
const sending = (stats) => stats.total - (stats.byRoute[OUTCOME_WRITE] ?? 0);

async function stellaIds(stack) {
  const { requests } = await call(stack, "GET", "/sandbox/stella/requests");
  return requests.map((r) => r.body.ext_interaction_id);
}

/** Closes each conversation through the sandbox, `concurrency` at a time; every close must be scheduled. */
async function closeAll(stack, ids, concurrency) {
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      const out = await call(stack, "POST", `/sandbox/kustomer/conversations/${id}/close`, {});
      if (out.edge?.status !== 202) throw new Error(`close ${id}: edge answered ${JSON.stringify(out.edge)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export async function benchCalls({ smoke, log }) {
  const agents = smoke ? 5 : 50;
  const tagCount = smoke ? 3 : 30;
  const warm = smoke ? 10 : 100;
  const steady = smoke ? 40 : 1000;
  const total = warm + steady;
  const delay = 1;
  process.env.REGISTER = "0"; // serve.sh: no app registration (its calls would count)
  const stack = new Stack();
  let untrack = () => {};
  try {
    const starting = stack.start();
    untrack = track((await waitFor(async () => stack.proc, 10_000, "serve.sh to spawn", 5)).pid, stack.state);
    await starting;
    const users = Array.from({ length: agents }, (_, i) => ({
      id: `bench-user-${i}`, attributes: { name: `Agent ${i}`, displayName: `Agent ${i}`, email: `agent${i}@acme.example` },
    }));
    const tags = Array.from({ length: tagCount }, (_, i) => ({ id: `bench-tag-${i}`, attributes: { name: `topic-${i}`, color: "#1e88e5" } }));
    const ids = Array.from({ length: total }, (_, i) => `bench-conv-${i}`);
    // Conversation i: agent i mod agents, tags i and 7i+3 mod tags, its own customer. The warm-up
    // batch (the first `warm`, at least as many as agents and tags) meets every agent and tag.
    const sets = ids.map((id, i) => ({
      conversation: {
        id,
        attributes: {
          name: `Bench conversation ${i}`,
          channels: ["email"],
          assignedUsers: [users[i % agents].id],
          tags: [...new Set([tags[i % tagCount].id, tags[(7 * i + 3) % tagCount].id])],
          custom: {},
          locale: "en_us",
        },
      },
      customer: { id: `bench-cust-${i}`, attributes: { name: `Customer ${i}`, displayName: `Customer ${i}`, emails: [{ email: `customer${i}@example.com`, type: "home" }] } },
      ...(i === 0 && { users, tags }),
    }));
    for (let i = 0; i < sets.length; i += 250) await call(stack, "POST", "/sandbox/kustomer/conversations", sets.slice(i, i + 250));
    await stack.setDelay(delay);
    await call(stack, "POST", "/sandbox/kustomer/stats/reset");
    await call(stack, "POST", "/sandbox/stella/reset");
    const timeout = (n) => 60_000 + n * 200;

    // Cold: the warm-up batch, caches empty (the first event also asks which org the key is).
    const coldStart = Date.now();
    await closeAll(stack, ids.slice(0, warm), 8);
    await waitFor(async () => (await stellaIds(stack)).length >= warm, timeout(warm), `${warm} surveys`, 250);
    const cold = await call(stack, "GET", "/sandbox/kustomer/stats");
    await call(stack, "POST", "/sandbox/kustomer/stats/reset");
    log(`calls: warm-up ${warm} surveys, ${sending(cold)} Kustomer calls to send them, ${((Date.now() - coldStart) / 1000).toFixed(1)} s`);

    // Steady state: the rest, with warm caches.
    const steadyStart = Date.now();
    await closeAll(stack, ids.slice(warm), 8);
    const closedIn = (Date.now() - steadyStart) / 1000;
    await waitFor(async () => (await stellaIds(stack)).length >= total, timeout(steady), `${total} surveys`, 500);
    const steadyStats = await call(stack, "GET", "/sandbox/kustomer/stats");
    const steadySeconds = (Date.now() - steadyStart) / 1000;
    await sleep(smoke ? 1500 : 3000); // any duplicate would arrive now
    const sent = await stellaIds(stack);
    const counts = new Map();
    for (const id of sent) counts.set(id, (counts.get(id) ?? 0) + 1);
    const exactlyOnce = sent.length === total && ids.every((id) => counts.get(id) === 1);
    log(`calls: steady ${steady} surveys, ${sending(steadyStats)} Kustomer calls to send them (and ${steadyStats.byRoute[OUTCOME_WRITE] ?? 0} outcome writes), closed in ${closedIn.toFixed(1)} s, all sent after ${steadySeconds.toFixed(1)} s`);

    const byRoute = {};
    for (const [route, n] of Object.entries(cold.byRoute)) if (route !== OUTCOME_WRITE) byRoute[route] = { cold: n, steady: 0 };
    for (const [route, n] of Object.entries(steadyStats.byRoute)) if (route !== OUTCOME_WRITE) byRoute[route] = { cold: byRoute[route]?.cold ?? 0, steady: n };
    const steadyPerSurvey = sending(steadyStats) / steady;
    return {
      agents, tags: tagCount, warm, steady, delaySeconds: delay,
      sent: sent.length, unique: counts.size, exactlyOnce,
      coldCalls: sending(cold),
      steadyCalls: sending(steadyStats),
      outcomeWrites: (cold.byRoute[OUTCOME_WRITE] ?? 0) + (steadyStats.byRoute[OUTCOME_WRITE] ?? 0),
      coldPerSurvey: sending(cold) / warm,
      steadyPerSurvey,
      inclusivePerSurvey: (sending(cold) + sending(steadyStats)) / total,
      byRoute,
      steadySeconds,
      closedInSeconds: closedIn,
      surveysPerMinuteAtLimit: RATE_LIMIT_PER_MIN / steadyPerSurvey,
      rateLimitPerMin: RATE_LIMIT_PER_MIN,
    };
  } finally {
    await stack.stop();
    untrack();
  }
}
