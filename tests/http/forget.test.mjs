// Forgetting a customer end to end against a real workerd and the sandboxes: the command by
// e-mail and by Kustomer id (sent entries stripped, a pending survey cancelled), the daily sweep
// finding a customer deleted in the Kustomer sandbox (FORGET_SWEEP_MS shortens its day), and the
// audit list, which says how many entries and never whom.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Stack, waitFor } from "./harness.mjs";

const stack = new Stack({ env: { FORGET_SWEEP_MS: "1500" } });

const entry = async (id) => {
  const r = await stack.request("GET", `/v1/deliveries?conversationId=${id}`, { headers: stack.orgHeaders() });
  assert.equal(r.status, 200, r.text);
  return r.body.deliveries[0];
};
const final = (id) => waitFor(async () => { const d = await entry(id); return d && ["sent", "skipped", "failed"].includes(d.state) && d; }, 20_000, `${id} final`);
const forget = (customer, headers = stack.orgHeaders()) => stack.request("POST", "/v1/customers/forget", { headers, body: { customer } });
const audit = async () => {
  const r = await stack.request("GET", "/v1/audit", { headers: stack.orgHeaders() });
  assert.equal(r.status, 200, r.text);
  return r.body;
};

before(async () => {
  await stack.start();
  await stack.request("POST", "/sandbox/kustomer/reset");
  await stack.request("POST", "/sandbox/stella/reset");
  await stack.setDelay(1);
});
after(() => stack.stop());

test("forgetting by e-mail strips the sent entries, and the audit counts without naming", async () => {
  const id = await stack.newConversation();
  await stack.close(id);
  const sent = await final(id);
  assert.equal(sent.state, "sent");
  assert.equal(sent.customerEmail, "ann.lee@example.com");
  const noSecret = await forget("ann.lee@example.com", stack.orgHeaders({ "x-app-secret": undefined }));
  assert.equal(noSecret.status, 401, noSecret.text);
  const r = await forget("  ANN.LEE@example.com ");
  assert.equal(r.status, 200, r.text);
  assert.ok(r.body.entries >= 1, r.text);
  assert.equal(r.body.more, false);
  const after = await entry(id);
  // The log says why the data is gone (edge::job::Removal).
  assert.deepEqual([after.state, after.customerEmail, after.customerName], ["sent", "removed on request", "removed on request"]);
  const { entries } = await audit();
  assert.equal(entries[0].kind, "forget");
  assert.match(entries[0].words, /entries changed/);
  const text = JSON.stringify(entries).toLowerCase();
  assert.ok(!text.includes("ann.lee") && !text.includes("cust-ann"), text);
});

test("forgetting by Kustomer id cancels a pending survey: it is never sent", async () => {
  await stack.setDelay(3600);
  const id = await stack.newConversation();
  await stack.close(id);
  await waitFor(async () => (await entry(id))?.state === "scheduled", 10_000, "scheduled");
  const r = await forget("cust-ann");
  assert.equal(r.status, 200, r.text);
  assert.ok(r.body.entries >= 1, r.text);
  const d = await entry(id);
  assert.deepEqual([d.state, d.reason], ["skipped", "forgotten"]);
  assert.deepEqual(await stack.stellaRequests(id), []);
  await stack.setDelay(1);
});

test("the sweep finds a customer deleted in Kustomer and forgets them", async () => {
  const id = await stack.newConversation((c) => {
    c.relationships = { ...c.relationships, customer: { data: { type: "customer", id: "cust-zoe" } } };
  });
  await stack.close(id);
  const sent = await final(id);
  assert.equal(sent.customerEmail, "zoe.okubo@example.com");
  const deleted = await stack.request("DELETE", "/sandbox/kustomer/customers/cust-zoe");
  assert.equal(deleted.status, 200, deleted.text);
  await waitFor(async () => (await entry(id)).customerEmail === "removed on request", 20_000, "the deleted customer forgotten");
  const stats = (await stack.request("GET", "/sandbox/kustomer/stats")).body;
  assert.ok(stats.byRoute["POST /v1/customers/search"] >= 1, JSON.stringify(stats));
  const body = await audit();
  assert.ok(body.entries.some((e) => e.kind === "deleted_customer"), JSON.stringify(body.entries));
  assert.ok(body.deletedCustomers.lastSweep, JSON.stringify(body));
  assert.equal(body.deletedCustomers.lastError, null);
});
