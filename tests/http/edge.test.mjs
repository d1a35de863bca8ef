// The edge over HTTP against a real workerd process, with the Kustomer and Stella sandboxes:
// the scenarios of a delayed, re-checked, exactly-once survey. Waits poll for events with a
// generous limit; nothing here asserts how fast anything is.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { APP_SECRET, KUSTOMER_KEY, STELLA_KEY, Stack, sleep, waitFor } from "./harness.mjs";

const stack = new Stack();
before(async () => {
  await stack.start();
  await stack.request("POST", "/sandbox/kustomer/reset");
  await stack.request("POST", "/sandbox/stella/reset");
  await stack.setDelay(2);
});
after(() => stack.stop());

const newConversation = (edit, id) => stack.newConversation(edit, id);

const sent = (id) => waitFor(async () => (await stack.delivery(id))?.state === "sent" && stack.delivery(id), 20_000, `${id} sent`);
const final = (id) =>
  waitFor(async () => {
    const d = await stack.delivery(id);
    return d && ["sent", "skipped", "failed"].includes(d.state) && d;
  }, 20_000, `${id} final`);

test("happy path: one schema-valid request after the delay", async () => {
  const id = await newConversation();
  const closed = await stack.close(id);
  assert.equal(closed.body.edge.status, 202);
  assert.equal(closed.body.edge.body.status, "scheduled");
  const closedAt = Date.parse(closed.body.conversation.data.attributes.modificationHistory.statusAt);
  assert.equal(Date.parse(closed.body.edge.body.sendAt), closedAt + 2000);
  assert.equal((await stack.stellaRequests(id)).length, 0, "nothing before it is due");

  const delivery = await sent(id);
  const [request] = await stack.stellaRequests(id);
  assert.deepEqual(request.body, {
    channel: "email",
    customer: { name: "Ann Lee", email: "ann.lee@example.com" },
    employee: { email: "sam.agent@acme.example" },
    ext_interaction_id: id,
    external_url: `${stack.base}/sandbox/kustomer/app/customers/cust-ann/event/${id}`,
    tags: ["shipping", "order-status"],
    do_not_send: false,
    // So that Agent Connect's record of it is matched to this org and conversation.
    custom_properties: { kustomer_org: "sandbox-org", kustomer_conversation_id: id },
  });
  assert.ok(Date.parse(request.receivedAt) >= closedAt + 2000, "not before its due time");
  assert.equal(delivery.attempts, 1);
  // The log keeps what it reads of the body sent: the customer, the agent, the channel, the link.
  const { customer, employee, channel, external_url } = request.body;
  assert.deepEqual(delivery.request, { channel, customer, employee, external_url });
  await sleep(1000);
  assert.equal((await stack.stellaRequests(id)).length, 1, "exactly once");
});

test("reopened before due: nothing is sent", async () => {
  const id = await newConversation();
  await stack.close(id);
  await stack.reopen(id);
  const delivery = await final(id);
  assert.equal(delivery.state, "skipped");
  assert.equal(delivery.reason, "reopened");
  assert.equal((await stack.stellaRequests(id)).length, 0);
});

test("close, reopen, close: one request, due after the last close", async () => {
  const id = await newConversation();
  await stack.close(id);
  await stack.reopen(id);
  await sleep(300);
  const second = await stack.close(id);
  const secondDue = Date.parse(second.body.edge.body.sendAt);
  await sent(id);
  const requests = await stack.stellaRequests(id);
  assert.equal(requests.length, 1);
  assert.ok(Date.parse(requests[0].receivedAt) >= secondDue);
});

test("do-not-send ticked during the delay is honoured", async () => {
  const id = await newConversation();
  await stack.close(id);
  const put = await stack.request("PUT", `/sandbox/kustomer/v1/conversations/${id}`, {
    headers: { authorization: `Bearer ${KUSTOMER_KEY}` },
    body: { custom: { "@stellaDoNotSendStellaConnectRequestBool": true } },
  });
  assert.equal(put.status, 200, put.text);
  await sent(id);
  const [request] = await stack.stellaRequests(id);
  assert.equal(request.body.do_not_send, true);
});

test("the same event delivered twice gives one request", async () => {
  const id = await newConversation();
  await stack.close(id);
  const event = await stack.closeEvent(id);
  const first = await stack.postEvent(event);
  const again = await stack.postEvent(event);
  assert.equal(first.status, 202);
  assert.equal(again.status, 202);
  assert.equal(first.body.sendAt, again.body.sendAt);
  await sent(id);
  await sleep(1000);
  assert.equal((await stack.stellaRequests(id)).length, 1);
  const late = await stack.postEvent(event);
  assert.deepEqual([late.status, late.body.status, late.body.reason], [200, "ignored", "duplicate"]);
});

test("Stella 500 twice then 200: exactly one accepted request", async () => {
  const id = await newConversation();
  const before = (await stack.request("GET", "/sandbox/stella/requests")).body.attempts;
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 500, count: 2 } });
  await stack.close(id);
  const delivery = await sent(id);
  assert.equal(delivery.attempts, 3);
  assert.equal((await stack.stellaRequests(id)).length, 1);
  assert.equal((await stack.request("GET", "/sandbox/stella/requests")).body.attempts - before, 3);
});

test("a Stella call that hangs is cut off after 10 s and retried once", async () => {
  const id = await newConversation();
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: "timeout", count: 1 } });
  await stack.close(id);
  const delivery = await waitFor(async () => (await stack.delivery(id))?.state === "sent" && stack.delivery(id), 40_000, `${id} sent`);
  assert.equal(delivery.attempts, 2);
  const [request] = await stack.stellaRequests(id);
  const closedAt = Date.parse(delivery.closedAt);
  // The first attempt started at the due time (closedAt + 2 s) and was abandoned at 10 s.
  assert.ok(Date.parse(request.receivedAt) - closedAt >= 12_000, "retried only after the timeout");
  assert.equal((await stack.stellaRequests(id)).length, 1);
});

test("Stella 403: failed at once with Stella's text, no retry storm", async () => {
  const id = await newConversation();
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 403, count: 1 } });
  const before = (await stack.request("GET", "/sandbox/stella/requests")).body.attempts;
  await stack.close(id);
  const delivery = await final(id);
  assert.equal(delivery.state, "failed");
  assert.equal(delivery.reason, "stella_rejected");
  assert.match(delivery.message, /403/);
  await sleep(1500);
  assert.equal((await stack.request("GET", "/sandbox/stella/requests")).body.attempts - before, 1);
  assert.equal((await stack.delivery(id)).attempts, 1);

  // Resend after the fault: sent once. A resend carries the settings and the app secret, as a
  // close does.
  const resend = await stack.request("POST", `/v1/deliveries/${id}/resend`, { headers: stack.settingsHeaders() });
  assert.equal(resend.status, 202, resend.text);
  await sent(id);
  assert.equal((await stack.stellaRequests(id)).length, 1);
});

test("workerd killed mid-delay and started again: sent exactly once", async () => {
  const id = await newConversation();
  await stack.setDelay(3);
  try {
    const closed = await stack.close(id);
    assert.equal(closed.body.edge.status, 202);
    await stack.kill();
    await sleep(3500); // the survey falls due while workerd is down
    await stack.start();
    await sent(id);
    await sleep(1000);
    assert.equal((await stack.stellaRequests(id)).length, 1);
  } finally {
    await stack.setDelay(2);
  }
});

test("bad input gets coded 4xx answers and queues nothing", async () => {
  const id = await newConversation();
  await stack.request("PUT", `/sandbox/kustomer/v1/conversations/${id}`, {
    headers: { authorization: `Bearer ${KUSTOMER_KEY}` },
    body: { status: "done" },
  });
  const event = await stack.closeEvent(id);
  const cases = [
    [await stack.request("POST", "/v1/kustomer/conversation-closed", { body: "{not json", headers: stack.settingsHeaders() }), 400, "malformed_json"],
    [await stack.postEvent(event, { "content-type": "application/json", "x-app-secret": APP_SECRET }), 400, "invalid_settings"],
    [await stack.postEvent(event, stack.settingsHeaders({ "x-kustomer-url": "http://acme.kustomerapp.com" })), 400, "invalid_settings"],
    [await stack.postEvent(event, stack.settingsHeaders({ "x-seconds-until-send": "soon" })), 400, "invalid_settings"],
    [await stack.postEvent({ ...event, data: { id: 7 } }), 400, "invalid_shape"],
    [await stack.postEvent({ ...event, org: "other-org" }), 403, "org_mismatch"],
    [await stack.postEvent(event, stack.settingsHeaders({ "x-kustomer-api-key": "not-a-key" })), 401, "kustomer_key_rejected"],
    [await stack.request("POST", "/v1/kustomer/conversation-closed", { body: "x".repeat(2 << 20), headers: stack.settingsHeaders() }), 413, "too_large"],
    [await stack.postEvent(event, stack.settingsHeaders({ "x-kustomer-api-key": "sandbox-kustomer-key-no-tags" })), 400, "invalid_settings"],
    [await stack.postEvent(event, stack.settingsHeaders({ "x-app-secret": null })), 401, "missing_app_secret"],
    [await stack.postEvent(event, stack.settingsHeaders({ "x-app-secret": "too-short" })), 401, "missing_app_secret"],
  ];
  for (const [reply, status, code] of cases) {
    assert.equal(reply.status, status, reply.text);
    assert.equal(reply.body.error.code, code, reply.text);
  }
  const missing = cases[1][0].body.error.fields.map((f) => f.field);
  assert.deepEqual(missing, ["stellaApiKey", "kustomerApiKey", "kustomerUrl"]);
  assert.equal(cases.at(-3)[0].body.error.fields[0].code, "missing_permission", "a key that cannot read tags");
  assert.equal(await stack.delivery(id), undefined, "nothing queued");
});

test("preview shows the exact request with the key masked, or the reason", async () => {
  const ok = await stack.request("POST", "/v1/preview", { body: { conversationId: "conv-voice" }, headers: stack.settingsHeaders() });
  assert.equal(ok.status, 200, ok.text);
  // Seeded conversations start open: the preview says so rather than guessing.
  assert.equal(ok.body.skip?.code ?? "sent", ok.body.ok ? "sent" : "not_closed");
  await stack.close("conv-unassigned");
  const skip = await stack.request("POST", "/v1/preview", { body: { conversationId: "conv-unassigned" }, headers: stack.settingsHeaders() });
  assert.deepEqual([skip.body.ok, skip.body.skip.code], [false, "no_assigned_agent"]);
  const id = await newConversation((c) => (c.attributes.status = "done"));
  const send = await stack.request("POST", "/v1/preview", { body: { conversationId: id }, headers: stack.settingsHeaders() });
  assert.equal(send.body.ok, true, send.text);
  assert.equal(send.body.request.headers["x-api-key"], "********");
  assert.equal(send.body.request.url, `${stack.base}/sandbox/stella/v1/requests`);
  const missing = await stack.request("POST", "/v1/preview", { body: { conversationId: "nope" }, headers: stack.settingsHeaders() });
  assert.equal(missing.status, 404);
});

test("deliveries need the org's key and its app secret", async () => {
  const none = await stack.request("GET", "/v1/deliveries");
  assert.deepEqual([none.status, none.body.error.code], [401, "missing_app_secret"]);
  const noKey = await stack.request("GET", "/v1/deliveries", { headers: { "x-app-secret": APP_SECRET } });
  assert.deepEqual([noKey.status, noKey.body.error.code], [401, "missing_key"]);
  // Another org has registered no app secret (it has had no close): an empty log.
  const other = await stack.request("GET", "/v1/deliveries", { headers: stack.orgHeaders({ "x-kustomer-api-key": "other-org-key" }) });
  assert.equal(other.status, 200);
  assert.deepEqual([other.body.deliveries, other.body.nextCursor, other.body.retentionDays], [[], null, 90], "another org sees none of sandbox-org's surveys");
  assert.deepEqual(other.body.summary.byState, { scheduled: 0, retrying: 0, sent: 0, skipped: 0, failed: 0 });
  const own = await stack.request("GET", "/v1/deliveries", { headers: stack.orgHeaders() });
  assert.equal(own.status, 200);
  assert.ok(own.body.deliveries.length > 0 && own.body.retentionDays === 90);
  const wrong = await stack.request("GET", "/v1/deliveries", { headers: stack.orgHeaders({ "x-app-secret": "not-the-org-secret-000" }) });
  assert.deepEqual([wrong.status, wrong.body.error.code], [401, "app_secret_rejected"]);
});

test("no answer and no log line contains a key or the app secret", () => {
  const everything = stack.log.join("\n");
  assert.ok(everything.length > 1000, "the log holds the whole run");
  for (const key of [KUSTOMER_KEY, STELLA_KEY, APP_SECRET]) assert.ok(!everything.includes(key), `${key} leaked`);
});
