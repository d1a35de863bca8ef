// The agent roster over a real workerd with the sandboxes: the org's Durable Object reads the
// Stella sandbox's `GET /v2/employees` (a JWT over the sandbox secret), answers the card's
// `POST /v1/roster` asynchronously, caches the roster (a second call reads nothing), and
// "Check connection" lists the Kustomer sandbox's agents without an active profile.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { STELLA_KEY, STELLA_SECRET, KUSTOMER_KEY, Stack } from "./harness.mjs";

const stack = new Stack();
before(() => stack.start());
after(() => stack.stop());

const roster = (body, headers = stack.settingsHeaders()) => stack.request("POST", "/v1/roster", { body, headers });
const employeeCalls = async () => (await stack.request("GET", `/sandbox/stella/calls?key=${STELLA_KEY}`)).body.employees;

test("an unapproved agent is named, and the roster is read once", async () => {
  const before = await employeeCalls();
  const kim = await roster({ agentEmail: "kim.agent@acme.example", agentName: "Kim Agent", channel: "email" });
  assert.equal(kim.status, 200, kim.text);
  assert.equal(kim.body.available, true);
  assert.ok(kim.body.agents >= 3, kim.text);
  assert.equal(kim.body.agent.code, "not_active");
  assert.match(kim.body.agent.message, /^Kim Agent's Agent Connect profile is not approved yet/);
  const read = (await employeeCalls()) - before;
  assert.ok(read >= 1, "the roster was read from Agent Connect");

  const sam = await roster({ agentEmail: "sam.agent@acme.example", channel: "chat" });
  assert.equal(sam.body.agent.code, "ready", sam.text);
  const nobody = await roster({ agentEmail: "nobody@acme.example" });
  assert.equal(nobody.body.agent.code, "no_profile");
  assert.equal((await employeeCalls()) - before, read, "served from the org's cache");
  for (const r of [kim, sam, nobody]) {
    for (const secret of [STELLA_KEY, STELLA_SECRET, KUSTOMER_KEY]) assert.ok(!r.text.includes(secret), r.text);
  }
});

test("without a secret the card is told how to turn it on; a wrong one is refused clearly", async () => {
  const none = await roster({}, stack.settingsHeaders({ "x-stella-api-secret": null }));
  assert.equal(none.status, 200);
  assert.deepEqual(none.body, { available: false, message: "Add the Stella Connect API secret in the app's settings to check agents' Agent Connect profiles." });
  const wrong = await roster({}, stack.settingsHeaders({ "x-stella-api-secret": "not-the-sandbox-secret" }));
  assert.equal(wrong.status, 502, wrong.text);
  assert.equal(wrong.body.error.code, "stella_secret_rejected");
  assert.ok(!wrong.text.includes("not-the-sandbox-secret"));
});

test("Check connection lists the agents without an active profile", async () => {
  const r = await stack.request("POST", "/v1/settings/check", { headers: stack.settingsHeaders() });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.ok, true, r.text);
  assert.equal(r.body.roster.ok, true, r.text);
  const kim = r.body.roster.withoutProfile.find((a) => a.email === "kim.agent@acme.example");
  assert.equal(kim?.code, "not_active", r.text);
  assert.ok(!r.body.roster.withoutProfile.some((a) => a.email === "sam.agent@acme.example"));
  const wrong = await stack.request("POST", "/v1/settings/check", { headers: stack.settingsHeaders({ "x-stella-api-secret": "not-the-sandbox-secret" }) });
  assert.equal(wrong.body.ok, false);
  assert.equal(wrong.body.fields[0].field, "stellaApiSecret", wrong.text);
});
