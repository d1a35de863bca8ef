// 6. Survey outcomes: the whole local stack (tests/http/harness.mjs's Stack, scripts/serve.sh)
// reading outcomes back every 3 s, as under `make run`. Conversations, each with a customer of
// its own (Agent Connect suppresses a second survey to the same email), are closed through the
// Kustomer sandbox and sent; once each carries its first outcome (delivery status "sent"), their
// customers answer in the Stella sandbox, and the bench watches each rating arrive on its
// conversation. It measures the answer → rating latency, the Kustomer PATCH calls per outcome
// written (the sandbox's `/writes`) and the Data Return calls (the Stella sandbox's `/calls`:
// total and the busiest rolling minute, against Agent Connect's 100 per minute per key).
import { Stack } from "../../tests/http/harness.mjs";
import { call, quantile, sleep, track, waitFor } from "./lib.mjs";

const POLL_MS = 3000; // OUTCOME_POLL_MS under `make run` (scripts/serve.sh)
const WATCH_MS = 150; // how often the bench looks at the sandbox for new writes
const SPREAD_MS = 30_000; // the full run's answers come over this long
const RATING = "@stellaSurveyRatingNum";
const COMMENT = "@stellaSurveyCommentTxt";
const STATUS = "@stellaSurveyDeliveryStatusStr";

/** Runs `fn` over `items`, `concurrency` at a time. */
async function each(items, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const custom = async (stack, id) => (await stack.conversation(id))?.data?.attributes?.custom ?? {};
const writes = (stack) => call(stack, "GET", "/sandbox/kustomer/writes");

export async function benchOutcomes({ smoke, log }) {
  const n = smoke ? 10 : 200;
  const delay = 1;
  // serve.sh: no app registration (a cargo build and calls that are not the bench's).
  const stack = new Stack({ env: { OUTCOME_POLL_MS: String(POLL_MS), KUSTOMER_BUDGET: "1000000/60", REGISTER: "0" } });
  let untrack = () => {};
  try {
    const starting = stack.start();
    untrack = track((await waitFor(async () => stack.proc, 10_000, "serve.sh to spawn", 5)).pid, stack.state);
    await starting;

    // N conversations like the seeded email one, each with its own customer and email.
    const seed = (await stack.conversation("conv-email")).data;
    const ids = Array.from({ length: n }, (_, i) => `bench-outcome-${i}`);
    const sets = ids.map((id, i) => ({
      conversation: { id, attributes: { ...seed.attributes, name: `Outcome bench ${i}`, status: "open", custom: {} } },
      customer: { id: `bench-outcome-cust-${i}`, attributes: { name: `Customer ${i}`, displayName: `Customer ${i}`, emails: [{ email: `outcome${i}@example.com`, type: "home", verified: true }] } },
    }));
    for (let i = 0; i < sets.length; i += 100) await call(stack, "POST", "/sandbox/kustomer/conversations", sets.slice(i, i + 100));
    await stack.setDelay(delay);
    await call(stack, "POST", "/sandbox/kustomer/stats/reset"); // the PATCH counts too
    await call(stack, "DELETE", "/sandbox/stella/calls");
    const began = performance.now();

    // Close all through the sandbox (its workflow posts the event with the org's settings,
    // the API secret among them); each must be scheduled.
    await each(ids, 8, async (id) => {
      const out = (await stack.close(id)).body;
      if (out?.edge?.status !== 202) throw new Error(`close ${id}: edge answered ${JSON.stringify(out?.edge)}`);
    });
    const closedIn = (performance.now() - began) / 1000;
    // Sent, and the first outcome (sent) written onto every conversation.
    const firstWrites = await waitFor(async () => {
      const w = await writes(stack);
      return ids.every((id) => (w.byConversation?.[id] ?? 0) >= 1) && w;
    }, 60_000 + n * 300, `the first outcome on all ${n} conversations`, 250);
    const notSent = [];
    await each(ids, 8, async (id) => {
      const c = await custom(stack, id);
      if (c[STATUS] !== "sent") notSent.push(`${id}: ${JSON.stringify(c)}`);
    });
    if (notSent.length) throw new Error(`${notSent.length} conversations without delivery status "sent": ${notSent.slice(0, 3).join("; ")}`);
    const sentIn = (performance.now() - began) / 1000;
    log(`outcomes: ${n} closed in ${closedIn.toFixed(1)} s, all sent with their first outcome written after ${sentIn.toFixed(1)} s (${firstWrites.total} PATCH calls)`);

    // Answers: spread evenly over SPREAD_MS (smoke: all at once), ratings 1–5, with comments.
    // An answer's time is taken just before its `POST /responses`, so the latency includes the
    // sandbox recording it.
    const answers = ids.map((id, i) => ({ id, rating: (i % 5) + 1, comment: `Bench answer ${i}: ${["slow", "meh", "fine", "good", "great"][i % 5]} ✓`, at: NaN, arrived: NaN }));
    const answering = (async () => {
      const start = performance.now();
      await Promise.all(answers.map(async (a, i) => {
        if (!smoke) await sleep(Math.max(0, start + (i * SPREAD_MS) / n - performance.now()));
        a.at = performance.now();
        await call(stack, "POST", "/sandbox/stella/responses", { ext_interaction_id: a.id, rating: a.rating, comment: a.comment });
      }));
    })();

    // Watch: every WATCH_MS one read of the PATCH counts; a conversation answered and written
    // to again is read, and its rating's arrival is the moment the bench saw it there.
    const pending = new Set(answers);
    let answered = false;
    answering.then(() => (answered = true), () => (answered = true));
    let lastAnswerAt = Infinity;
    const capMs = 120_000;
    while (pending.size) {
      const w = await writes(stack);
      const due = [...pending].filter((a) => Number.isFinite(a.at) && (w.byConversation?.[a.id] ?? 0) >= 2);
      await each(due, 8, async (a) => {
        const c = await custom(stack, a.id);
        if (c[RATING] === a.rating && c[COMMENT] === a.comment) {
          a.arrived = performance.now();
          pending.delete(a);
        }
      });
      if (answered && lastAnswerAt === Infinity) {
        await answering; // an answer the sandbox refused fails the part here
        lastAnswerAt = performance.now();
      }
      if (performance.now() - lastAnswerAt > capMs) {
        const missing = [...pending].slice(0, 3);
        const details = await Promise.all(missing.map(async (a) => `${a.id} (rating ${a.rating}, ${w.byConversation?.[a.id] ?? 0} PATCH calls): ${JSON.stringify(await custom(stack, a.id))}`));
        throw new Error(`${pending.size} of ${n} ratings had not reached their conversation ${capMs / 1000} s after the last answer: ${details.join("; ")}`);
      }
      if (pending.size) await sleep(WATCH_MS);
    }
    await answering;
    const ratedIn = (performance.now() - began) / 1000;

    // A few more seconds for a duplicate write to show (reads stop once every survey has its
    // final outcome, so no read would come to wait on).
    await sleep(2 * POLL_MS);
    const finalWrites = await writes(stack);
    const calls = await call(stack, "GET", "/sandbox/stella/calls");
    const seconds = (performance.now() - began) / 1000;
    const latencies = answers.map((a) => (a.arrived - a.at) / 1000).sort((x, y) => x - y);
    const outcomesWritten = 2 * n; // sent, then answered
    const perConversation = Object.values(finalWrites.byConversation ?? {});
    const result = {
      conversations: n,
      delaySeconds: delay,
      pollMs: POLL_MS,
      spreadSeconds: smoke ? 0 : SPREAD_MS / 1000,
      arrived: answers.filter((a) => Number.isFinite(a.arrived)).length,
      latencySeconds: { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), max: latencies.at(-1), min: latencies[0] },
      patchCalls: finalWrites.total,
      patchApplied: finalWrites.applied,
      patchMaxPerConversation: Math.max(0, ...perConversation),
      outcomesWritten,
      patchPerOutcome: finalWrites.total / outcomesWritten,
      dataCalls: calls.data,
      employeesCalls: calls.employees,
      limitedCalls: calls.limited,
      perMinuteMax: calls.perMinuteMax,
      dataCallsPerMinute: (calls.data / seconds) * 60,
      closedInSeconds: closedIn,
      sentInSeconds: sentIn,
      ratedInSeconds: ratedIn,
      seconds,
    };
    log(`outcomes: ${result.arrived}/${n} ratings arrived, answer → rating p50 ${result.latencySeconds.p50.toFixed(2)} s, p95 ${result.latencySeconds.p95.toFixed(2)} s, max ${result.latencySeconds.max.toFixed(2)} s; ${result.patchCalls} PATCH calls for ${outcomesWritten} outcomes; ${calls.data} Data Return calls, busiest minute ${calls.perMinuteMax}; ${seconds.toFixed(1)} s`);
    return result;
  } finally {
    await stack.stop();
    untrack();
  }
}
