// Storage an org can plan on, against a real workerd (issue 20): the org's object reads its size
// from its SQL storage (`ctx.storage.sql.databaseSize`), warns and prunes finished entries early
// at 80% of STORAGE_CEILING_BYTES (never a pending one), and a finished entry past
// PERSONAL_DATA_DAYS loses the customer's name, e-mail and comment in the log's answer while its
// state and rating stay. Two stacks, each with its bindings: a ceiling small enough that a new
// object is over it, and PERSONAL_DATA_DAYS=0 (removed once finished) so no clock is driven.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Stack, waitFor } from "./harness.mjs";

const stacks = [];
after(async () => {
  for (const s of stacks) await s.stop();
});
async function started(env) {
  const stack = new Stack({ env });
  stacks.push(stack);
  await stack.start();
  await stack.request("POST", "/sandbox/kustomer/reset");
  await stack.request("POST", "/sandbox/stella/reset");
  return stack;
}
const log = async (stack, query = "limit=200") => {
  const r = await stack.request("GET", `/v1/deliveries?${query}`, { headers: stack.orgHeaders() });
  assert.equal(r.status, 200, r.text);
  return r.body;
};

test("over 80% of the ceiling: the size is the object's own, the warning shows, finished entries go early and pending ones stay", async () => {
  // A new object's tables and indexes alone take several pages: over 80% of 20 kB.
  const stack = await started({ STORAGE_CEILING_BYTES: "20000" });
  await stack.setDelay(1);
  const sent = await stack.newConversation();
  assert.equal((await stack.close(sent)).status, 200);
  await waitFor(async () => (await stack.stellaRequests(sent)).length === 1, 30_000, "the survey sent");
  // Then a close due in a month: pending, never pruned.
  await stack.setDelay(30 * 86_400);
  const waiting = await stack.newConversation();
  assert.equal((await stack.close(waiting)).status, 200);

  const answer = await waitFor(async () => {
    const a = await log(stack);
    return a.storage?.prunedEarly >= 1 && a;
  }, 30_000, "the sent entry pruned early");
  const { storage } = answer;
  assert.ok(storage.sizeBytes > 0 && storage.sizeBytes % 4096 === 0, `SQLite pages: ${storage.sizeBytes}`);
  assert.equal(storage.ceilingBytes, 20000);
  assert.match(storage.warning, /storage ceiling \(\d+%\).*removed early so far/);
  const ids = answer.deliveries.map((d) => d.conversationId);
  assert.ok(!ids.includes(sent), `the finished entry went: ${ids}`);
  assert.ok(ids.includes(waiting), `the pending one stays: ${ids}`);
  // The settings page reads the same answer's smallest page.
  assert.equal((await log(stack, "limit=1")).storage.warning, storage.warning);
});

test("PERSONAL_DATA_DAYS=0: a finished entry shows a placeholder for the customer, keeps its state and rating", async () => {
  const stack = await started({ PERSONAL_DATA_DAYS: "0" });
  await stack.setDelay(1);
  const id = await stack.newConversation();
  assert.equal((await stack.close(id)).status, 200);
  await waitFor(async () => (await stack.stellaRequests(id)).length === 1, 30_000, "the survey sent");
  const r = await stack.request("POST", "/sandbox/stella/responses", { body: { ext_interaction_id: id, rating: 4, comment: "Thanks, Ann" } });
  assert.ok(r.status < 300, r.text);
  const entry = await waitFor(async () => {
    const d = (await log(stack, `conversationId=${id}&limit=1`)).deliveries[0];
    // The answer comes after the send: its comment is written onto the conversation, and
    // then removed from the entry by the next pass.
    return d?.outcome?.rating === 4 && d.personalDataRemoved && d.outcome.comment === undefined && d;
  }, 60_000, "the rating read back and the comment removed");
  assert.equal(entry.state, "sent");
  assert.equal(entry.customerName, "removed once finished");
  assert.equal(entry.customerEmail, "removed once finished");
  assert.equal(entry.outcome.comment, undefined, "the comment went");
  assert.ok(entry.agentEmail, "the agent stays");
  assert.ok(!JSON.stringify(entry).includes("Thanks, Ann"));
  // It reached the conversation before it went from the log.
  const custom = (await stack.conversation(id)).data.attributes.custom ?? {};
  assert.equal(custom["@stellaSurveyCommentTxt"], "Thanks, Ann");
  const { summary, storage } = await log(stack);
  assert.equal(summary.byState.sent, 1, "the summary still counts it");
  assert.equal(storage.warning, null, "under the default ceiling: no warning");
});
