// Survey outcomes over HTTP, in the real workerd with both sandboxes: each survey's fate and
// rating read back from the Stella sandbox's Data Return (`GET /v2/data`, JWT) and written onto
// the Kustomer sandbox's conversation with one PATCH per changed outcome; suppression, bounces,
// Data Return failing (429, 500), and the API secret never in an answer or a log.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Stack, STELLA_KEY, STELLA_SECRET, waitFor } from "./harness.mjs";

// Outcomes are read back every 3 seconds, as under `make run` (production: every 5 minutes):
// a read is two or three Data Return calls, so this keeps the org under its 60 a minute.
const POLL_MS = 3000;
let stack;

before(async () => {
  stack = await new Stack({ env: { OUTCOME_POLL_MS: String(POLL_MS) } }).start();
});
after(() => stack?.stop());

const RATING = "@stellaSurveyRatingNum";
const COMMENT = "@stellaSurveyCommentTxt";
const STATUS = "@stellaSurveyDeliveryStatusStr";
const SENT_AT = "@stellaSurveySentAt";
const RESPONDED_AT = "@stellaSurveyRespondedAt";

/** A fresh conversation, copied from the seeded email one, whose customer has an email of its
 * own (suppression is per email, so tests do not suppress each other). */
let serial = 0;
async function conversationFor(email) {
  const seed = (await stack.conversation("conv-email")).data;
  const id = `conv-outcome-${++serial}-${Date.now()}`;
  const customer = { id: `cust-${id}`, attributes: { name: "Test Customer", displayName: "Test Customer", emails: [{ email, type: "home", verified: true }] } };
  const conversation = { id, attributes: { ...seed.attributes, status: "open", custom: {} }, relationships: { customer: { data: { type: "customer", id: customer.id } } } };
  const r = await stack.request("POST", "/sandbox/kustomer/conversations", { body: { conversation, customer } });
  assert.equal(r.status, 201, r.text);
  return id;
}

async function custom(id) {
  return (await stack.conversation(id)).data.attributes.custom ?? {};
}

async function stella(method, path, body) {
  const r = await stack.request(method, `/sandbox/stella${path}`, { body });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
  return r.body;
}

async function writes(id) {
  const { body } = await stack.request("GET", "/sandbox/kustomer/writes");
  return body.byConversation?.[id] ?? 0;
}

/** Closes `id` through the sandbox's workflow and waits until Stella has its survey. */
async function closeAndSend(id) {
  const closed = await stack.close(id);
  assert.equal(closed.status, 200, closed.text);
  await waitFor(async () => (await stack.stellaRequests(id)).length === 1, 30_000, `the survey of ${id}`);
}

test("answered in Agent Connect: the rating and comment reach the conversation and the log, one PATCH per changed outcome", async () => {
  const id = await conversationFor("rated@example.com");
  // A second survey left unanswered keeps the org reading after the first one's answer.
  const unanswered = await conversationFor("unanswered@example.com");
  await closeAndSend(unanswered);
  await closeAndSend(id);
  // The survey went out: its delivery status is on the conversation within a read or two.
  const sent = await waitFor(async () => ((await custom(id))[STATUS] === "sent" ? custom(id) : null), 20_000, "delivery status sent");
  assert.match(sent[SENT_AT], /^\d{4}-\d\d-\d\dT/);
  assert.equal(sent[RATING], undefined, "no rating before the customer answers");
  assert.equal(await writes(id), 1, "one PATCH for the first outcome");

  await stella("POST", "/responses", { ext_interaction_id: id, rating: 4, comment: "Quick and kind 👍" });
  const rated = await waitFor(async () => ((await custom(id))[RATING] === 4 ? custom(id) : null), 20_000, "the rating on the conversation");
  assert.equal(rated[COMMENT], "Quick and kind 👍");
  assert.equal(rated[STATUS], "sent");
  assert.match(rated[RESPONDED_AT], /^\d{4}-\d\d-\d\dT/);
  // Several reads later (the unanswered survey keeps them going), nothing new: no further
  // write (the same records are read again and de-duplicated on uuid).
  const { body: calls } = await stack.request("GET", "/sandbox/stella/calls");
  await waitFor(async () => (await stack.request("GET", "/sandbox/stella/calls")).body.data >= calls.data + 3, 20_000, "three more reads");
  assert.equal(await writes(id), 2, "exactly one PATCH per changed outcome (sent, then answered)");

  const entry = await stack.delivery(id);
  assert.equal(entry.state, "sent");
  assert.equal(entry.outcome.deliveryStatus, "sent");
  assert.equal(entry.outcome.rating, 4);
  assert.equal(entry.outcome.comment, "Quick and kind 👍");
});

test("a customer in the suppression period: accepted by Stella, shown as not sent with the reason", async () => {
  const first = await conversationFor("twice@example.com");
  await closeAndSend(first);
  const second = await conversationFor("twice@example.com");
  await closeAndSend(second);
  await waitFor(async () => (await custom(second))[STATUS] === "suppressed", 20_000, "suppressed on the conversation").catch(async (e) => {
    const records = (await stella("GET", "/records")).records.filter((r) => [first, second].includes(r.ext_interaction_id));
    throw new Error(`${e.message}: ${JSON.stringify({ records, second: await stack.delivery(second), custom: await custom(second) })}`);
  });
  const entry = await stack.delivery(second);
  assert.equal(entry.state, "sent", "Stella accepted the request");
  assert.equal(entry.outcome.deliveryStatus, "suppressed");
  assert.equal((await custom(first))[STATUS], "sent");
});

test("a bounce set after the send updates the outcome", async () => {
  const id = await conversationFor("bounce@example.com");
  await closeAndSend(id);
  await waitFor(async () => (await custom(id))[STATUS] === "sent", 20_000, "sent");
  await stella("POST", "/delivery-status", { ext_interaction_id: id, status: "Hard bounce" });
  await waitFor(async () => (await custom(id))[STATUS] === "hard_bounce", 20_000, "the bounce on the conversation");
  assert.equal((await stack.delivery(id)).outcome.deliveryStatus, "hard_bounce");
});

test("Data Return answering 429 and 500 is honoured and never blocks sending", async () => {
  await stella("DELETE", "/calls");
  await stella("POST", "/faults", { route: "data", status: 429, count: 2, retryAfter: 2 });
  await stella("POST", "/faults", { route: "data", status: 500, count: 2 });
  const id = await conversationFor("faults@example.com");
  await closeAndSend(id); // sent while Data Return fails
  await stella("POST", "/responses", { ext_interaction_id: id, rating: 2 });
  await waitFor(async () => (await custom(id))[RATING] === 2, 60_000, "the rating after the faults");
  const calls = await stella("GET", "/calls");
  assert.ok(calls.data >= 5, `the faults were met and passed: ${JSON.stringify(calls)}`);
  assert.ok(calls.perMinuteMax <= 100, `at most 100 Data Return calls a minute: ${JSON.stringify(calls)}`);
});

test("the API secret and its JWT appear in no answer and no log", async () => {
  const log = stack.log.join("\n");
  assert.ok(!log.includes(STELLA_SECRET), "the secret in workerd's log");
  assert.ok(!/eyJ[\w-]+\.[\w-]+\.[\w-]+/.test(log), "a JWT in workerd's log");
  const text = JSON.stringify(await stack.deliveries());
  assert.ok(!text.includes(STELLA_SECRET), "the secret in the delivery log");
  assert.ok(!/eyJ[\w-]+\.[\w-]+\.[\w-]+/.test(text), "a JWT in the delivery log");
});

test("a multi-brand conversation carries its own brand, and every request the org and conversation ids", async () => {
  // conv-brand is Globex's (the Kustomer sandbox's brand-globex); conv-email is Acme's.
  const headers = stack.settingsHeaders({ "x-brand-map": "Acme=acme-ac, Globex=globex-ac", "x-seconds-until-send": "1" });
  for (const id of ["conv-brand", "conv-email"]) {
    await stack.request("PUT", `/sandbox/kustomer/v1/conversations/${id}`, { headers: { authorization: "Bearer sandbox-kustomer-key" }, body: { status: "done" } });
    const posted = await stack.postEvent(await stack.closeEvent(id), headers);
    assert.equal(posted.status, 202, posted.text);
  }
  const [globex] = await waitFor(async () => {
    const r = await stack.stellaRequests("conv-brand");
    return r.length ? r : null;
  }, 30_000, "conv-brand's survey");
  const [acme] = await waitFor(async () => {
    const r = await stack.stellaRequests("conv-email");
    return r.length ? r : null;
  }, 30_000, "conv-email's survey");
  assert.equal(globex.body.brand, "globex-ac");
  assert.equal(acme.body.brand, "acme-ac");
  assert.deepEqual(globex.body.custom_properties, { kustomer_org: "sandbox-org", kustomer_conversation_id: "conv-brand" });
});

test("a forged Data Return record does not overwrite the real rating: only the survey's earliest matching record counts, the others are counted in the log", async () => {
  const outcomesInfo = async () => (await stack.request("GET", "/v1/deliveries?limit=1", { headers: stack.orgHeaders() })).body.outcomes;
  const id = await conversationFor("forged@example.com");
  // A second survey left unanswered keeps the org reading after the first one's answer.
  await closeAndSend(await conversationFor("keeps-reading@example.com"));
  await closeAndSend(id);
  await stella("POST", "/responses", { ext_interaction_id: id, rating: 5, comment: "The real answer" });
  await waitFor(async () => (await custom(id))[RATING] === 5, 20_000, "the real rating on the conversation");
  const before = (await outcomesInfo()).ignoredRecords;
  // What anyone holding the org's Agent Connect key can do (the probe): request a survey for the
  // same conversation, once without the org and once copying the real request whole, and answer
  // each with a 1 (the sandbox answers an interaction's latest record).
  const [real] = await stack.stellaRequests(id);
  const { kustomer_org: _, ...withoutOrg } = real.body.custom_properties;
  for (const custom_properties of [withoutOrg, real.body.custom_properties]) {
    const forged = await stack.request("POST", "/sandbox/stella/v1/requests", { headers: { "x-api-key": STELLA_KEY }, body: { ...real.body, custom_properties } });
    assert.equal(forged.status, 200, forged.text);
    await stella("POST", "/responses", { ext_interaction_id: id, rating: 1, comment: "Forged" });
  }
  const count = (info, reason) => (info.ignoredRecords?.[reason] ?? 0) - (before?.[reason] ?? 0);
  const info = await waitFor(async () => {
    const info = await outcomesInfo();
    return count(info, "no_org") === 1 && count(info, "duplicate") === 1 ? info : null;
  }, 20_000, "both forged records read and ignored");
  assert.match(info.recordsNote, /did not match the survey sent/);
  const now = await custom(id);
  assert.equal(now[RATING], 5, "the real rating stays");
  assert.equal(now[COMMENT], "The real answer");
  const entry = await stack.delivery(id);
  assert.equal(entry.outcome.rating, 5);
});
