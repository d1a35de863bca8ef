// Smoke tests of the Kustomer and Stella sandboxes: the real workerd running
// sandbox/test-config.capnp on 127.0.0.1, state in a temporary directory, the edge replaced by
// tests/sandbox/edge-stub.js. Run with `node --test tests/sandbox/`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { freePort, spawnWorkerd, startWorkerd as start, stopWorkerd as stop } from "./workerd.mjs";

const root = new URL("../../", import.meta.url);
const fixture = (name) => JSON.parse(readFileSync(new URL(`tests/fixtures/kustomer/${name}.json`, root), "utf8"));
const KEY = "sandbox-kustomer-key";
const AGENT_KEY = "sandbox-kustomer-key-agent"; // no org.admin.apps
const DEFINITION = JSON.parse(readFileSync(new URL("app-manifest/stella_connect.json", root), "utf8"));
const STELLA_KEY = "sandbox-stella-key";
const APP_SECRET = "sandbox-app-secret-0123456789"; // the seeded org's app secret

let storageDir;
let workerd; // {child, base, log}

async function startWorkerd({ dir = storageDir, env } = {}) {
  return start({ dir, env });
}

async function stopWorkerd() {
  await stop(workerd);
}

// `path` starts with /sandbox/...; answers {status, headers, body (parsed JSON or text)}.
async function call(method, path, { key, headers = {}, body, raw, signal } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(workerd.base + path, {
    method,
    headers: h,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    signal,
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed };
}
const kustomer = (method, path, opts) => call(method, `/sandbox/kustomer${path}`, opts);
const stella = (method, path, opts) => call(method, `/sandbox/stella${path}`, opts);
// key: null sends no x-api-key at all.
const postStella = (body, key = STELLA_KEY, extra = {}) =>
  stella("POST", "/v1/requests", { headers: key ? { "x-api-key": key } : {}, body, ...extra });

before(async () => {
  execFileSync(process.execPath, ["scripts/build-stella-schema.mjs"], { cwd: root, stdio: "pipe" });
  storageDir = mkdtempSync(join(tmpdir(), "sandbox-test-"));
  workerd = await startWorkerd();
});

after(async () => {
  await stopWorkerd();
  rmSync(storageDir, { recursive: true, force: true });
});

describe("Kustomer sandbox", () => {
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("answers 401 without a known key, with JSON:API errors and rate-limit headers", async () => {
    for (const key of [undefined, "nope", "constructor"]) {
      const r = await kustomer("GET", "/v1/conversations/conv-email", { key });
      assert.equal(r.status, 401);
      assert.equal(r.body.errors[0].status, "401");
      assert.ok(r.body.errors[0].code && r.body.errors[0].title && r.body.errors[0].detail);
      assert.equal(r.headers.get("x-ratelimit-limit"), "1000");
      assert.ok(r.headers.has("x-ratelimit-remaining") && r.headers.has("x-ratelimit-reset"));
    }
  });

  it("answers 403 when the key lacks the role, 404 across orgs and for unknown ids", async () => {
    const noTags = await kustomer("GET", "/v1/tags/tag-shipping", { key: "sandbox-kustomer-key-no-tags" });
    assert.equal(noTags.status, 403);
    assert.equal(noTags.body.errors[0].status, "403");
    assert.equal((await kustomer("GET", "/v1/conversations/conv-email", { key: "sandbox-kustomer-key-no-tags" })).status, 200);
    const otherOrg = await kustomer("GET", "/v1/conversations/conv-email", { key: "other-org-key" });
    assert.equal(otherOrg.status, 404);
    assert.equal(otherOrg.body.errors[0].status, "404");
    assert.equal((await kustomer("GET", "/v1/conversations/nope", { key: KEY })).status, 404);
    assert.equal((await kustomer("GET", "/v1/users/nope", { key: KEY })).status, 404);
  });

  it("serves conversations, customers and users in JSON:API shapes", async () => {
    const conv = await kustomer("GET", "/v1/conversations/conv-email", { key: KEY });
    assert.equal(conv.status, 200);
    assert.equal(conv.body.data.type, "conversation");
    assert.deepEqual(conv.body.data.attributes.channels, ["email"]);
    assert.equal(conv.body.data.attributes.status, "open");
    const customerId = conv.body.data.relationships.customer.data.id;
    const customer = await kustomer("GET", `/v1/customers/${customerId}`, { key: KEY });
    assert.equal(customer.body.data.attributes.emails[1].email, "ann.lee@example.com");
    const user = await kustomer("GET", "/v1/users/user-sam", { key: KEY });
    assert.equal(user.body.data.attributes.email, "sam.agent@acme.example");
    assert.equal((await kustomer("GET", "/v1/users/user-noemail", { key: KEY })).body.data.attributes.email, null);
  });

  it("answers tags by comma-separated ids as a list, a single id too", async () => {
    const both = await kustomer("GET", "/v1/tags/tag-shipping,tag-order", { key: KEY });
    assert.equal(both.status, 200);
    assert.deepEqual(both.body.data.map((t) => t.attributes.name), ["shipping", "order-status"]);
    const encoded = await kustomer("GET", "/v1/tags/tag-vip%2Cmissing", { key: KEY });
    assert.deepEqual(encoded.body.data.map((t) => t.id), ["tag-vip"]);
    const one = await kustomer("GET", "/v1/tags/tag-vip", { key: KEY });
    assert.ok(Array.isArray(one.body.data) && one.body.data.length === 1);
    assert.equal((await kustomer("GET", "/v1/tags/missing", { key: KEY })).status, 404);
  });

  it("merges custom on PUT /v1/conversations/{id} and bumps updatedAt", async () => {
    const before = (await kustomer("GET", "/v1/conversations/conv-chat", { key: KEY })).body.data.attributes;
    await kustomer("PUT", "/v1/conversations/conv-chat", { key: KEY, body: { custom: { firstStr: "a" } } });
    const r = await kustomer("PUT", "/v1/conversations/conv-chat", {
      key: KEY,
      body: { custom: { "@stellaDoNotSendStellaConnectRequestBool": true }, priority: 1 },
    });
    assert.equal(r.status, 200);
    const a = r.body.data.attributes;
    assert.deepEqual(a.custom, { firstStr: "a", "@stellaDoNotSendStellaConnectRequestBool": true });
    assert.equal(a.priority, 1);
    assert.ok(a.updatedAt > before.updatedAt);
    assert.equal((await kustomer("GET", "/v1/conversations/conv-chat", { key: KEY })).body.data.attributes.custom.firstStr, "a");
    assert.equal((await kustomer("PUT", "/v1/conversations/conv-chat", { key: KEY, raw: "{oops" })).status, 400);
    assert.equal((await kustomer("PUT", "/v1/conversations/conv-chat", { key: "other-org-key", body: { custom: {} } })).status, 404);
  });

  it("masks secret settings on read and merges on write", async () => {
    const r = await kustomer("GET", "/v1/apps/settings", { key: KEY });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.type, "app_settings");
    assert.equal(r.body.data.id, "stella_connect");
    assert.deepEqual(r.body.data.attributes.settings, {
      stellaApiKey: "********",
      stellaApiSecret: "********", // the sandbox's Agent Connect API secret, secret like the keys
      kustomerApiKey: "********",
      kustomerApiUrl: `${workerd.base}/sandbox/kustomer`,
      kustomerUrl: `${workerd.base}/sandbox/kustomer`,
      secondsUntilSend: "5",
      stellaApiUrl: `${workerd.base}/sandbox/stella`,
      appSecret: "********", // the org's app secret, seeded, secret like the keys
      appSecretFingerprint: `v1:${createHmac("sha256", APP_SECRET).update("stella-connect app secret fingerprint v1").digest("hex")}`, // its fingerprint: the app's link, readable
    });
    const put = await kustomer("PUT", "/v1/apps/settings", {
      key: KEY,
      body: { settings: { brand: "Acme", kustomerApiKey: "********", secondsUntilSend: "7" } },
    });
    assert.equal(put.status, 200);
    assert.equal(put.body.data.attributes.settings.brand, "Acme");
    assert.equal(put.body.data.attributes.settings.secondsUntilSend, "7");
    assert.equal(put.body.data.attributes.settings.kustomerApiKey, "********");
    assert.equal((await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { brand: "x" } })).status, 400);
  });

  it("reads one setting (the app's link) with the settings role: a secret masked, 403 without the role, 404 unknown", async () => {
    const path = "/v1/settings/stella_connect/default/appSecretFingerprint";
    const r = await kustomer("GET", path, { key: KEY });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const expected = `v1:${createHmac("sha256", APP_SECRET).update("stella-connect app secret fingerprint v1").digest("hex")}`;
    assert.deepEqual(r.body.data, { type: "setting", id: "stella_connect.default.appSecretFingerprint", attributes: { value: expected } });
    const secret = await kustomer("GET", "/v1/settings/stella_connect/default/appSecret", { key: KEY });
    assert.equal(secret.body.data.attributes.value, "********");
    assert.equal((await kustomer("GET", path, { key: AGENT_KEY })).status, 403);
    assert.equal((await kustomer("GET", "/v1/settings/stella_connect/default/noSuchSetting", { key: KEY })).status, 404);
    assert.equal((await kustomer("GET", "/v1/settings/another_app/default/appSecretFingerprint", { key: KEY })).status, 404);
  });

  it("describes the key at /v1/auth/tokens/current", async () => {
    const r = await kustomer("GET", "/v1/auth/tokens/current", { key: "sandbox-kustomer-key-no-tags" });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.type, "token");
    assert.ok(r.body.data.id);
    assert.equal(r.body.data.attributes.org, "sandbox-org");
    assert.equal(r.body.data.relationships.org.data.id, "sandbox-org");
    assert.ok(!r.body.data.attributes.roles.some((role) => role.includes("tag")));
    assert.equal((await kustomer("GET", "/v1/auth/tokens/current", { key: "other-org-key" })).body.data.attributes.org, "other-org");
  });

  it("close posts the conversation.update event and the settings to the edge; reopen too", async () => {
    await call("POST", "/edge-stub/reset");
    const closed = await kustomer("POST", "/conversations/conv-email/close", { body: { custom: { noteStr: "x" } } });
    assert.equal(closed.status, 200);
    const conv = closed.body.conversation.data;
    assert.equal(conv.attributes.status, "done");
    assert.equal(conv.attributes.custom.noteStr, "x");
    assert.match(conv.attributes.modificationHistory.statusAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(conv.attributes.updatedAt, conv.attributes.modificationHistory.statusAt);
    assert.deepEqual(closed.body.edge, { status: 202, body: { accepted: true, stub: true } });

    const [sent] = (await call("GET", "/edge-stub/received")).body.received;
    assert.equal(sent.method, "POST");
    assert.equal(new URL(sent.url).pathname, "/v1/kustomer/conversation-closed");
    assert.equal(sent.headers["content-type"], "application/json");
    assert.equal(sent.headers["x-stella-api-key"], "sandbox-stella-key"); // the real value, not the mask
    assert.equal(sent.headers["x-kustomer-api-key"], "sandbox-kustomer-key");
    assert.equal(sent.headers["x-kustomer-api-url"], `${workerd.base}/sandbox/kustomer`);
    assert.equal(sent.headers["x-kustomer-url"], `${workerd.base}/sandbox/kustomer`);
    assert.equal(sent.headers["x-seconds-until-send"], "7"); // set by the settings test
    assert.equal(sent.headers["x-brand"], "Acme");
    assert.equal(sent.headers["x-stella-api-url"], `${workerd.base}/sandbox/stella`);
    assert.equal(sent.headers["x-app-secret"], APP_SECRET); // the real value, not the mask
    assert.ok(!("x-channel-map" in sent.headers) && !("x-send-language" in sent.headers));

    const shape = fixture("conversation-update-done");
    const event = sent.body;
    assert.deepEqual(Object.keys(event).sort(), Object.keys(shape).sort());
    assert.equal(event.name, "kustomer.conversation.update");
    assert.equal(event.org, "sandbox-org");
    assert.equal(event.orgName, "sandbox");
    assert.ok(event.id && event.id !== shape.id);
    assert.deepEqual(event.data, conv);
    assert.deepEqual(event.changes.attributes.status, { op: "replace", before: "open", after: "done" });

    const reopened = await kustomer("POST", "/conversations/conv-email/reopen");
    assert.equal(reopened.body.conversation.data.attributes.status, "open");
    const events = (await call("GET", "/edge-stub/received")).body.received;
    assert.equal(events.length, 2);
    assert.deepEqual(events[1].body.changes.attributes.status, { op: "replace", before: "done", after: "open" });
    assert.equal((await kustomer("POST", "/conversations/nope/close")).status, 404);
  });

  it("counts every /v1 call by route, rejected ones too", async () => {
    await kustomer("POST", "/stats/reset");
    await kustomer("GET", "/v1/conversations/conv-email", { key: KEY });
    await kustomer("GET", "/v1/conversations/conv-email"); // 401, still counted
    await kustomer("GET", "/v1/customers/cust-ann", { key: KEY });
    await kustomer("GET", "/v1/users/user-sam", { key: KEY });
    await kustomer("GET", "/v1/tags/tag-shipping,tag-order", { key: KEY });
    const stats = (await kustomer("GET", "/stats")).body;
    assert.deepEqual(stats, {
      total: 5,
      byRoute: {
        "GET /v1/conversations/:id": 2,
        "GET /v1/customers/:id": 1,
        "GET /v1/users/:id": 1,
        "GET /v1/tags/:ids": 1,
      },
    });
  });

  it("injects faults: 429 with x-ratelimit-reset and retry-after, then back to normal", async () => {
    const set = await kustomer("POST", "/faults", { body: { status: 429, count: 2, rateLimitReset: 7, retryAfter: 3 } });
    assert.equal(set.status, 200);
    for (let i = 0; i < 2; i++) {
      const r = await kustomer("GET", "/v1/conversations/conv-email", { key: KEY });
      assert.equal(r.status, 429);
      assert.equal(r.body.errors[0].status, "429");
      assert.equal(r.headers.get("x-ratelimit-reset"), "7");
      assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
      assert.equal(r.headers.get("retry-after"), "3");
    }
    assert.equal((await kustomer("GET", "/v1/conversations/conv-email", { key: KEY })).status, 200);

    await kustomer("POST", "/faults", { body: { status: 503, count: 5 } });
    assert.equal((await kustomer("GET", "/v1/users/user-sam", { key: KEY })).status, 503);
    await kustomer("DELETE", "/faults");
    assert.equal((await kustomer("GET", "/v1/users/user-sam", { key: KEY })).status, 200);
    assert.equal((await kustomer("POST", "/faults", { body: { status: 404, count: 1 } })).status, 400);
  });

  it("adds test data with POST /sandbox/kustomer/conversations", async () => {
    const r = await kustomer("POST", "/conversations", {
      body: {
        conversation: { id: "conv-added", attributes: { channels: ["sms"], assignedUsers: ["user-added"], tags: ["tag-added"] } },
        customer: { id: "cust-added", attributes: { name: "Added", emails: [{ email: "added@example.com" }] } },
        users: [{ id: "user-added", attributes: { email: "added.agent@acme.example" } }],
        tags: [{ id: "tag-added", attributes: { name: "added" } }],
      },
    });
    assert.equal(r.status, 201);
    const conv = (await kustomer("GET", "/v1/conversations/conv-added", { key: KEY })).body.data;
    assert.equal(conv.attributes.status, "open");
    assert.equal(conv.relationships.customer.data.id, "cust-added");
    assert.equal((await kustomer("GET", "/v1/users/user-added", { key: KEY })).body.data.type, "user");
    assert.equal((await kustomer("GET", "/v1/tags/tag-added", { key: KEY })).body.data[0].attributes.name, "added");
  });

  it("reset restores the seed and the default settings", async () => {
    await kustomer("POST", "/reset");
    assert.equal((await kustomer("GET", "/v1/conversations/conv-added", { key: KEY })).status, 404);
    const settings = (await kustomer("GET", "/v1/apps/settings", { key: KEY })).body.data.attributes.settings;
    assert.equal(settings.secondsUntilSend, "5");
    assert.ok(!("brand" in settings));
    const stats = (await kustomer("GET", "/stats")).body;
    assert.deepEqual(stats, { total: 2, byRoute: { "GET /v1/conversations/:id": 1, "GET /v1/apps/settings": 1 } });
  });
});

describe("Kustomer sandbox: the workflow's headers come from the app definition", () => {
  const action = DEFINITION.actions.find((a) => a.name.endsWith(".conversation-closed"));
  // header → setting, for each header of the action's template that carries a setting
  const settingOf = Object.fromEntries(
    Object.entries(action.inputTemplate.headers).flatMap(([h, t]) => (/^\{\{\{\w+\}\}\}$/.test(t) ? [[h, t.slice(3, -3)]] : [])),
  );
  const required = Object.keys(settingOf).filter((h) => DEFINITION.settings.default[settingOf[h]].required);
  const closeAndRead = async () => {
    await call("POST", "/edge-stub/reset");
    assert.equal((await kustomer("POST", "/conversations/conv-email/close")).status, 200);
    const [sent] = (await call("GET", "/edge-stub/received")).body.received;
    return sent.headers;
  };
  const settingHeaders = (headers) => Object.keys(headers).filter((h) => h.startsWith("x-")).sort();
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("sends the required settings always and the others only when set, as the definition's action names them", async () => {
    assert.ok(required.length >= 5 && Object.keys(settingOf).length > required.length, JSON.stringify(settingOf));
    // The seeded settings: the required ones, the Stella URL and the app secret.
    const seeded = await closeAndRead();
    assert.deepEqual(settingHeaders(seeded), [...required, "x-app-secret", "x-stella-api-secret", "x-stella-api-url"].sort());
    assert.equal(seeded["content-type"], "application/json");

    // Every setting the definition declares set: every header of its action, with the setting's text.
    const values = Object.fromEntries(Object.values(settingOf).map((k) => [k, `value-of-${k}`]));
    values.kustomerBudgetShare = 30;
    values.sendLanguage = true;
    assert.equal((await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: values } })).status, 200);
    const all = await closeAndRead();
    assert.deepEqual(settingHeaders(all), Object.keys(settingOf).sort());
    for (const [header, setting] of Object.entries(settingOf)) assert.equal(all[header], String(values[setting]), header);

    // A required setting removed still travels (empty); an optional one removed does not.
    await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: { secondsUntilSend: null, brand: null } } });
    const some = await closeAndRead();
    assert.equal(some["x-seconds-until-send"], "");
    assert.ok(!("x-brand" in some));
  });

  it("passes a setting added to the settings table with no sandbox change: x-kustomer-budget-share when set", async () => {
    await kustomer("POST", "/reset");
    assert.equal(settingOf["x-kustomer-budget-share"], "kustomerBudgetShare");
    assert.ok(!("x-kustomer-budget-share" in (await closeAndRead())));
    await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: { kustomerBudgetShare: "25" } } });
    assert.equal((await closeAndRead())["x-kustomer-budget-share"], "25");
  });
});

describe("Kustomer sandbox: app commands run with the saved settings, on Kustomer's side", () => {
  const run = (name, body, key = "sandbox-user-session") =>
    kustomer("POST", `/v1/commands/${encodeURIComponent(`stella_connect.app.${name}`)}/run`, { key, body });
  const received = async () => (await call("GET", "/edge-stub/received")).body.received;
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("fills the saved keys into the headers, forwards the body and answers the edge's answer, no key in it", async () => {
    await call("POST", "/edge-stub/reset");
    const r = await run("preview", { body: { conversationId: "conv-email" } });
    assert.equal(r.status, 200);
    const answer = r.body.data.attributes;
    assert.equal(r.body.data.type, "command_run");
    assert.equal(answer.statusCode, 202);
    assert.deepEqual(answer.responseBody, { accepted: true, stub: true });
    assert.equal(answer.requestError, null);
    const [sent] = await received();
    assert.equal(sent.method, "POST");
    assert.equal(new URL(sent.url).pathname, "/v1/preview");
    assert.deepEqual(sent.body, { conversationId: "conv-email" });
    assert.equal(sent.headers["x-stella-api-key"], STELLA_KEY);
    assert.equal(sent.headers["x-kustomer-api-key"], KEY);
    assert.ok(!("x-app-secret" in sent.headers), "a preview does not need the app secret");
    for (const secret of [STELLA_KEY, KEY, APP_SECRET]) assert.ok(!JSON.stringify(r.body).includes(secret), secret);
  });

  it("puts permitted arguments in the URL, and sends the log only the org's key, address and app secret", async () => {
    await call("POST", "/edge-stub/reset");
    const r = await run("list-deliveries", { args: { state: "failed", limit: 50 } });
    assert.equal(r.status, 200);
    const [sent] = await received();
    assert.equal(sent.method, "GET");
    const url = new URL(sent.url);
    assert.equal(url.pathname, "/v1/deliveries");
    assert.equal(url.searchParams.get("state"), "failed");
    assert.equal(url.searchParams.get("limit"), "50");
    assert.equal(url.searchParams.get("cursor"), "");
    assert.equal(sent.headers["x-app-secret"], APP_SECRET);
    assert.ok(!("x-stella-api-key" in sent.headers));
  });

  it("refuses arguments the command does not permit, and unknown commands, before calling anything", async () => {
    await call("POST", "/edge-stub/reset");
    const notPermitted = await run("list-deliveries", { args: { stellaApiKey: "x" } });
    assert.equal(notPermitted.status, 400);
    assert.equal(notPermitted.body.errors[0].code, "arg_not_permitted");
    assert.equal((await run("preview", { args: { conversationId: "conv-email" } })).body.errors[0].code, "arg_not_permitted");
    assert.equal((await run("nope", {})).status, 404);
    for (const body of [[], { args: [] }, { args: { state: {} } }, { headers: { a: 1 } }, { extra: 1 }]) {
      assert.equal((await run("list-deliveries", body)).status, 400, JSON.stringify(body));
    }
    const garbage = await kustomer("POST", "/v1/commands/stella_connect.app.preview/run", { key: KEY, raw: "{not json" });
    assert.equal(garbage.status, 400);
    assert.equal((await run("preview", {}, "nope")).status, 401);
    assert.equal((await run("preview", {}, "other-org-key")).status, 404, "the other org has not installed the app");
    assert.deepEqual(await received(), []);
  });

  it("lets a run's headers replace the saved ones (a key just typed)", async () => {
    await call("POST", "/edge-stub/reset");
    await run("check-connection", { headers: { "x-stella-api-key": "typed-key" } });
    const [sent] = await received();
    assert.equal(sent.headers["x-stella-api-key"], "typed-key");
    assert.equal(sent.headers["x-kustomer-api-key"], KEY);
  });
});

describe("Kustomer sandbox: the API budget", () => {
  const budget = async (org) => (await kustomer("GET", `/budget${org ? `?org=${encodeURIComponent(org)}` : ""}`)).body;
  const setBudget = (body) => kustomer("PUT", "/budget", { body });
  const get = (key, path = "/v1/conversations/conv-email") => kustomer("GET", path, { key });
  const rate = (r) => ({
    limit: r.headers.get("x-ratelimit-limit"),
    remaining: r.headers.get("x-ratelimit-remaining"),
    reset: r.headers.get("x-ratelimit-reset"),
  });
  // Waits (on the clock, not a fixed sleep) until the current fixed window of `windowSeconds`
  // has at least `seconds` left, so a short sequence of calls stays inside one window.
  const roomInWindow = async (windowSeconds, seconds) => {
    while (windowSeconds - ((Date.now() / 1000) % windowSeconds) < seconds) await new Promise((r) => setTimeout(r, 100));
  };
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("puts the three headers on every /v1 answer, one budget per org shared by its keys (default 1000/60)", async () => {
    const doc = await budget();
    assert.deepEqual(doc.default, { limit: 1000, windowSeconds: 60, from: "Kustomer Enterprise (KUSTOMER_BUDGET unset)" });
    assert.deepEqual([doc.all, doc.orgs], [null, {}]);
    const answers = [
      [200, await get(KEY)],
      [403, await get("sandbox-kustomer-key-no-tags", "/v1/tags/tag-vip")],
      [404, await get(KEY, "/v1/nope")],
      [404, await get(KEY, "/v1/conversations/nope")],
      [400, await kustomer("PUT", "/v1/conversations/conv-email", { key: AGENT_KEY, raw: "{oops" })],
      [200, await get(AGENT_KEY)],
      [201, await kustomer("POST", "/v1/apps/available", { key: KEY, body: { ...DEFINITION } })],
    ];
    let previous;
    for (const [status, r] of answers) {
      assert.equal(r.status, status);
      const h = rate(r);
      assert.equal(h.limit, "1000");
      assert.ok(Number(h.reset) >= 1 && Number(h.reset) <= 60, JSON.stringify(h));
      // One less each call of the org, whichever key, unless the window rolled over meanwhile.
      if (previous && Number(h.reset) <= Number(previous.reset)) assert.equal(Number(h.remaining), Number(previous.remaining) - 1, JSON.stringify([previous, h]));
      previous = h;
    }
    // Another org has its own budget; an unknown key gets the headers and is never limited.
    const other = rate(await get("other-org-key"));
    assert.equal(other.limit, "1000");
    assert.ok(Number(other.remaining) >= 998, JSON.stringify(other));
    const anonymous = await get("nope");
    assert.equal(anonymous.status, 401);
    assert.equal(rate(anonymous).limit, "1000");
  });

  it("answers 429 beyond the org's limit, in Kustomer's error shape, with remaining 0; faults still come first", async () => {
    await kustomer("POST", "/stats/reset");
    const set = await setBudget({ org: "sandbox-org", limit: 3, windowSeconds: 3600 });
    assert.equal(set.status, 200);
    assert.deepEqual(set.body.orgs, { "sandbox-org": { limit: 3, windowSeconds: 3600 } });
    await roomInWindow(3600, 60);

    for (const remaining of ["2", "1", "0"]) {
      const r = await get(KEY);
      assert.equal(r.status, 200);
      assert.deepEqual({ ...rate(r), reset: "" }, { limit: "3", remaining, reset: "" });
    }
    const limited = await get(KEY);
    assert.equal(limited.status, 429);
    assert.deepEqual(Object.keys(limited.body.errors[0]).sort(), ["code", "detail", "status", "title"]);
    assert.equal(limited.body.errors[0].status, "429");
    assert.match(limited.body.errors[0].detail, /3 calls per 3600 s/);
    const h = rate(limited);
    assert.equal(h.limit, "3");
    assert.equal(h.remaining, "0");
    const secondsLeft = 3600 - ((Date.now() / 1000) % 3600);
    assert.ok(Math.abs(Number(h.reset) - Math.ceil(secondsLeft)) <= 1, `${h.reset} vs ${secondsLeft}`);
    // The org's other keys share the budget; another org and unknown keys do not.
    assert.equal((await get("sandbox-kustomer-key-no-tags")).status, 429);
    assert.equal((await get("other-org-key", "/v1/auth/tokens/current")).status, 200);
    assert.equal((await get("nope")).status, 401);

    // An injected fault answers before the budget, with the budget's headers.
    await kustomer("POST", "/faults", { body: { status: 503, count: 1 } });
    const fault = await get(KEY);
    assert.equal(fault.status, 503);
    assert.deepEqual({ ...rate(fault), reset: "" }, { limit: "3", remaining: "0", reset: "" });
    assert.equal((await get(KEY)).status, 429);

    const [window] = (await budget("sandbox-org")).windows["sandbox-org"].filter((w) => w.windowSeconds === 3600);
    assert.equal(window.limit, 3);
    assert.equal(window.calls, 7);
    assert.deepEqual(window.byKey, { [KEY]: 6, "sandbox-kustomer-key-no-tags": 1 });
    assert.equal(window.limited, 3); // not the fault's 503
    assert.equal(window.startMs % 3_600_000, 0);
    assert.equal(Date.parse(window.start), window.startMs);
    await kustomer("DELETE", "/budget");
  });

  it("rolls over to a fresh window (1-second windows)", async () => {
    await kustomer("POST", "/stats/reset");
    assert.equal((await setBudget({ org: "sandbox-org", limit: 2, windowSeconds: 1 })).status, 200);
    // Calls until the budget answers 429 (three calls within one second, unless the machine stalls).
    let limited;
    for (let i = 0; i < 100 && !limited; i++) {
      const r = await get(KEY, "/v1/users/user-sam");
      if (r.status === 429) limited = r;
      else assert.equal(r.status, 200);
    }
    assert.ok(limited, "no 429 in 100 calls with a budget of 2 a second");
    assert.equal(rate(limited).reset, "1");
    // Then until it answers again: the first call of the next window.
    let fresh;
    const until = Date.now() + 10_000;
    while (!fresh && Date.now() < until) {
      const r = await get(KEY, "/v1/users/user-sam");
      if (r.status === 200) fresh = r;
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(fresh, "the window did not roll over within 10 s");
    assert.deepEqual(rate(fresh), { limit: "2", remaining: "1", reset: "1" });

    const windows = (await budget("sandbox-org")).windows["sandbox-org"].filter((w) => w.windowSeconds === 1);
    assert.ok(windows.length >= 2, JSON.stringify(windows));
    for (const [i, w] of windows.entries()) {
      assert.equal(w.startMs % 1000, 0);
      if (i) assert.ok(w.startMs > windows[i - 1].startMs);
      assert.equal(w.calls - w.limited, Math.min(w.calls, 2), JSON.stringify(w)); // at most 2 served per window
    }
    assert.ok(windows.some((w) => w.limited > 0));
    assert.equal(windows.at(-1).calls, 1);
    await kustomer("DELETE", "/budget");
  });

  it("validates the budget it is given, per org or for all orgs, and goes back to the default", async () => {
    const bad = [
      [{ raw: "{nope" }, /JSON/],
      [{ body: [] }, /Body must be/],
      [{ body: { limit: 1000 } }, /required/],
      [{ body: { windowSeconds: 60 } }, /required/],
      [{ body: { limit: 0, windowSeconds: 60 } }, /limit must be a whole number/],
      [{ body: { limit: -5, windowSeconds: 60 } }, /limit/],
      [{ body: { limit: 1.5, windowSeconds: 60 } }, /limit/],
      [{ body: { limit: "1000", windowSeconds: 60 } }, /limit/],
      [{ body: { limit: 1000, windowSeconds: 0 } }, /windowSeconds must be a whole number/],
      [{ body: { limit: 1000, windowSeconds: 86_401 } }, /windowSeconds/],
      [{ body: { limit: 1000, windowSeconds: "60" } }, /windowSeconds/],
      [{ body: { limit: 1000, windowSeconds: 60, org: "" } }, /org must be/],
      [{ body: { limit: 1000, windowSeconds: 60, org: 7 } }, /org must be/],
      [{ body: { limit: 1000, windowSeconds: 60, window: 60 } }, /Unknown field "window"/],
    ];
    for (const [opts, message] of bad) {
      const r = await kustomer("PUT", "/budget", opts);
      assert.equal(r.status, 400, JSON.stringify(opts));
      assert.match(r.body.error ?? JSON.stringify(r.body), message, JSON.stringify(opts));
    }
    assert.deepEqual([(await budget()).all, (await budget()).orgs], [null, {}]);

    const limitOf = async (key) => rate(await get(key, "/v1/auth/tokens/current")).limit;
    assert.equal((await setBudget({ limit: 50, windowSeconds: 30 })).status, 200);
    assert.deepEqual([await limitOf(KEY), await limitOf("other-org-key")], ["50", "50"]);
    assert.equal((await setBudget({ org: "other-org", limit: 7, windowSeconds: 30 })).status, 200);
    assert.deepEqual([await limitOf(KEY), await limitOf("other-org-key")], ["50", "7"]);
    const doc = await budget();
    assert.deepEqual([doc.all, doc.orgs], [{ limit: 50, windowSeconds: 30 }, { "other-org": { limit: 7, windowSeconds: 30 } }]);
    // A budget for all orgs replaces the per-org ones.
    assert.equal((await setBudget({ limit: 60, windowSeconds: 30 })).status, 200);
    assert.deepEqual([await limitOf(KEY), await limitOf("other-org-key")], ["60", "60"]);
    assert.equal((await setBudget({ org: "other-org", limit: 8, windowSeconds: 30 })).status, 200);
    assert.equal((await kustomer("DELETE", "/budget?org=other-org")).status, 200);
    assert.equal(await limitOf("other-org-key"), "60");
    assert.equal((await kustomer("DELETE", "/budget")).status, 200);
    assert.deepEqual([await limitOf(KEY), await limitOf("other-org-key")], ["1000", "1000"]);
  });

  it("counts each window's calls by API key, per org; the stats reset clears that, not the budget's count", async () => {
    assert.equal((await setBudget({ limit: 1000, windowSeconds: 3600 })).status, 200);
    await roomInWindow(3600, 60);
    await kustomer("POST", "/stats/reset");
    assert.deepEqual((await budget()).windows, {});
    await get(KEY);
    await get(KEY, "/v1/customers/cust-ann");
    await get("sandbox-kustomer-key-no-tags");
    await get(AGENT_KEY);
    await get("other-org-key", "/v1/auth/tokens/current");
    await get("nope"); // no org: not counted against any
    const before = rate(await get("sandbox-user-session", "/v1/users/user-sam"));

    const { windows } = await budget();
    assert.deepEqual(Object.keys(windows).sort(), ["other-org", "sandbox-org"]);
    const [ours] = windows["sandbox-org"];
    assert.deepEqual(
      { calls: ours.calls, byKey: ours.byKey, limited: ours.limited, limit: ours.limit, windowSeconds: ours.windowSeconds },
      { calls: 5, byKey: { [KEY]: 2, "sandbox-kustomer-key-no-tags": 1, [AGENT_KEY]: 1, "sandbox-user-session": 1 }, limited: 0, limit: 1000, windowSeconds: 3600 },
    );
    assert.ok(Date.parse(ours.firstCallAt) <= Date.parse(ours.lastCallAt));
    assert.deepEqual(windows["other-org"].map((w) => [w.calls, w.byKey]), [[1, { "other-org-key": 1 }]]);
    assert.deepEqual(Object.keys((await budget("other-org")).windows), ["other-org"]);

    await kustomer("POST", "/stats/reset");
    assert.deepEqual((await budget()).windows, {});
    const after = rate(await get(KEY));
    assert.equal(Number(after.remaining), Number(before.remaining) - 1);
    await kustomer("DELETE", "/budget");
  });

  it("holds answers back when asked (POST /latency): the call counts when it arrives, its answer comes later", async () => {
    await kustomer("POST", "/stats/reset");
    for (const body of [{}, { maxMs: -1 }, { minMs: 5, maxMs: 4 }, { maxMs: 30_001 }, { maxMs: 1.5 }, { maxMs: 10, seed: "x" }]) {
      assert.equal((await kustomer("POST", "/latency", { body })).status, 400, JSON.stringify(body));
    }
    const set = await kustomer("POST", "/latency", { body: { minMs: 4000, maxMs: 4000, seed: 7 } });
    assert.deepEqual([set.status, set.body], [200, { latency: { minMs: 4000, maxMs: 4000, seed: 7 } }]);
    const calls = async () => (await budget("sandbox-org")).windows["sandbox-org"]?.reduce((n, w) => n + (w.byKey[KEY] ?? 0), 0) ?? 0;
    const sentAt = Date.now();
    let answered = false;
    const pending = get(KEY).then((r) => ((answered = true), r));
    // Counted (the controls are not held back) while the answer is still on its way.
    while ((await calls()) < 1) assert.equal(answered, false);
    assert.equal(answered, false, "counted before it was answered");
    const r = await pending;
    assert.ok(Date.now() - sentAt >= 4000, "held back at least minMs");
    assert.equal(r.status, 200);
    assert.equal(rate(r).limit, "1000");
    assert.deepEqual((await kustomer("DELETE", "/latency")).body, { latency: null });
    assert.deepEqual((await kustomer("GET", "/latency")).body, { latency: null });
  });

  it("takes its default from KUSTOMER_BUDGET, and refuses to start on a value that is not limit/windowSeconds", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sandbox-budget-"));
    try {
      const other = await startWorkerd({ dir, env: { KUSTOMER_BUDGET: "5/2" } });
      try {
        const doc = await (await fetch(`${other.base}/sandbox/kustomer/budget`)).json();
        assert.deepEqual(doc.default, { limit: 5, windowSeconds: 2, from: "KUSTOMER_BUDGET" });
        const r = await fetch(`${other.base}/sandbox/kustomer/v1/users/user-sam`, { headers: { authorization: `Bearer ${KEY}` } });
        assert.equal(r.headers.get("x-ratelimit-limit"), "5");
        assert.ok(["1", "2"].includes(r.headers.get("x-ratelimit-reset")));
      } finally {
        other.child.kill("SIGKILL");
        await once(other.child, "exit");
      }
      for (const value of ["abc", "0/60", "1000/0", "1000", "10/60/2"]) {
        const child = spawnWorkerd(await freePort(), dir, { KUSTOMER_BUDGET: value });
        let log = "";
        child.stdout.on("data", (d) => (log += d));
        child.stderr.on("data", (d) => (log += d));
        const [code] = await once(child, "close"); // output complete
        assert.notEqual(code, 0, `KUSTOMER_BUDGET=${value}`);
        assert.ok(log.includes(`KUSTOMER_BUDGET must be limit/windowSeconds, such as 1000/60 (calls per org per window of seconds), not ${JSON.stringify(value)}`), log);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Kustomer sandbox: app registration and installation", () => {
  const register = (body, key = KEY) => kustomer("POST", "/v1/apps/available", { key, body });
  const definition = (version, extra = {}) => ({ ...structuredClone(DEFINITION), version, ...extra });
  const settings = async () => (await kustomer("GET", "/v1/apps/settings", { key: KEY })).body.data.attributes.settings;
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("needs the org.admin.apps role", async () => {
    const routes = [
      ["POST", "/v1/apps/available"],
      ["GET", "/v1/apps/available"],
      ["POST", "/v1/apps/stella_connect/install"],
      ["GET", "/v1/apps/installed"],
    ];
    for (const [method, path] of routes) {
      const r = await kustomer(method, path, { key: AGENT_KEY, body: method === "POST" ? definition("0.1.0") : undefined });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.deepEqual(Object.keys(r.body.errors[0]).sort(), ["code", "detail", "status", "title"]);
      assert.equal(r.body.errors[0].status, "403");
      assert.match(r.body.errors[0].detail, /org\.admin\.apps/);
    }
    assert.equal((await register(definition("0.1.0"), null)).status, 401);
    assert.equal((await kustomer("GET", "/v1/conversations/conv-email", { key: AGENT_KEY })).status, 200);
  });

  it("refuses a definition that breaks the documented rules, with a code and what failed", async () => {
    const { title, ...untitled } = definition("0.1.0");
    const cases = [
      [{ raw: "{nope" }, "bad_request"],
      [{ body: [definition("0.1.0")] }, "invalid_type"],
      [{ body: definition("0.1.0", { extraKey: 1 }) }, "unknown_key", { key: "extraKey" }],
      [{ body: untitled }, "missing_key", { key: "title" }],
      [{ body: definition("") }, "missing_key", { key: "version" }],
      [{ body: definition("0.1.0", { app: "Stella-Connect" }) }, "invalid_value", { key: "app", value: "Stella-Connect" }],
      [{ body: definition("1.0") }, "invalid_value", { key: "version", value: "1.0" }],
    ];
    for (const [opts, code, meta] of cases) {
      const r = await kustomer("POST", "/v1/apps/available", { key: KEY, ...opts });
      assert.equal(r.status, 400, code);
      assert.equal(r.body.errors[0].status, "400");
      assert.equal(r.body.errors[0].code, code);
      assert.ok(r.body.errors[0].meta && r.body.errors[0].detail);
      if (meta) assert.deepEqual(r.body.errors[0].meta, meta);
    }
    assert.deepEqual((await kustomer("GET", "/v1/apps/available", { key: KEY })).body, { data: [] });
  });

  it("registers a version only when it is higher than the last one, per org", async () => {
    const first = await register(definition("0.1.0"));
    assert.equal(first.status, 201);
    const { data } = first.body;
    assert.equal(data.type, "app");
    assert.equal(data.id, "stella_connect");
    assert.deepEqual({ ...data.attributes, registeredAt: "" }, {
      app: "stella_connect",
      version: "0.1.0",
      title: DEFINITION.title,
      registeredAt: "",
      definition: definition("0.1.0"),
    });
    assert.ok(!Number.isNaN(Date.parse(data.attributes.registeredAt)));

    const again = await register(definition("0.1.0"));
    assert.equal(again.status, 409);
    assert.equal(again.body.errors[0].code, "version_not_higher");
    assert.deepEqual(again.body.errors[0].meta, { registered: "0.1.0", version: "0.1.0" });
    assert.equal((await register(definition("0.1.1"))).status, 201);
    for (const lower of ["0.1.0", "0.1.1-rc.1", "0.1.1+build.2", "0.0.9"]) {
      const r = await register(definition(lower));
      assert.equal(r.status, 409, lower);
      assert.deepEqual(r.body.errors[0].meta, { registered: "0.1.1", version: lower });
    }
    assert.equal((await register(definition("0.1.0"), "other-org-key")).status, 201); // another org's registry

    const list = (await kustomer("GET", "/v1/apps/available", { key: KEY })).body.data;
    assert.deepEqual(list.map((a) => [a.type, a.id, a.attributes.version]), [["app", "stella_connect", "0.1.1"]]);
    assert.equal(list[0].attributes.definition.version, "0.1.1");
  });

  it("installs the latest version: the conversation attribute, and the settings' defaults where none is set", async () => {
    assert.equal((await kustomer("POST", "/v1/apps/nope/install", { key: KEY })).status, 404);
    const extra = structuredClone(DEFINITION.settings);
    extra.default.webhookToken = { type: "secret", defaultValue: "token-default", required: false };
    assert.equal((await register(definition("0.2.0", { settings: extra }))).status, 201);
    // What the org already has is kept; what it lacks takes the definition's default.
    await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: { brand: "Acme", secondsUntilSend: null, kustomerApiKey: null } } });

    const r = await kustomer("POST", "/v1/apps/stella_connect/install", { key: KEY });
    assert.equal(r.status, 200);
    const installation = r.body.data;
    assert.equal(installation.type, "app_installation");
    assert.equal(installation.id, "stella_connect");
    assert.equal(installation.attributes.version, "0.2.0");
    // The "do not send" switch and the five survey-outcome attributes the edge writes.
    assert.deepEqual(installation.attributes.attributes, [
      "@stellaDoNotSendStellaConnectRequestBool",
      "@stellaSurveyCommentTxt",
      "@stellaSurveyDeliveryStatusStr",
      "@stellaSurveyRatingNum",
      "@stellaSurveyRespondedAt",
      "@stellaSurveySentAt",
    ]);
    assert.ok(!Number.isNaN(Date.parse(installation.attributes.installedAt)));

    assert.deepEqual(await settings(), {
      stellaApiKey: "********", // kept, masked
      stellaApiSecret: "********", // kept, masked
      kustomerApiKey: "", // the secret's default: nothing to mask
      kustomerApiUrl: `${workerd.base}/sandbox/kustomer`, // kept, not the definition's default
      kustomerBudgetShare: 50,
      kustomerUrl: `${workerd.base}/sandbox/kustomer`,
      secondsUntilSend: 86400,
      stellaApiUrl: `${workerd.base}/sandbox/stella`,
      brand: "Acme",
      brandMap: "",
      channelMap: "voice=phone",
      customProperties: "",
      languageMap: "",
      sendLanguage: false,
      surveyedChannels: "",
      resurveyAfterDays: 0,
      appSecret: "********", // kept, masked
      appSecretFingerprint: `v1:${createHmac("sha256", APP_SECRET).update("stella-connect app secret fingerprint v1").digest("hex")}`, // kept, readable (hidden, not secret)
      webhookToken: "********", // declared secret by the definition
    });
    const put = await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: { webhookToken: "********" } } });
    assert.equal(put.body.data.attributes.settings.webhookToken, "********");

    const klass = (await kustomer("GET", "/v1/klasses/conversation", { key: KEY })).body.data;
    assert.deepEqual(klass.attributes.metadata.properties["@stellaDoNotSendStellaConnectRequestBool"], {
      displayName: "Do not send Stella Connect request",
      type: "boolean",
      app: "stella_connect",
    });
    assert.deepEqual(klass.attributes.metadata.properties["@stellaSurveyRatingNum"]?.displayName, "Survey rating (1–5)");
    const installed = (await kustomer("GET", "/v1/apps/installed", { key: KEY })).body.data;
    assert.deepEqual(installed, [installation]);
    assert.deepEqual((await kustomer("GET", "/v1/apps/installed", { key: "other-org-key" })).body.data, []);
    assert.deepEqual((await kustomer("GET", "/v1/klasses/conversation", { key: "other-org-key" })).body.data.attributes.metadata.properties, {});

    // Installing again changes nothing; after a new version it installs that one.
    assert.deepEqual((await kustomer("POST", "/v1/apps/stella_connect/install", { key: KEY })).body.data, installation);
    await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: { secondsUntilSend: "60" } } });
    assert.equal((await register(definition("0.3.0"))).status, 201);
    const upgraded = (await kustomer("POST", "/v1/apps/stella_connect/install", { key: KEY })).body.data.attributes;
    assert.equal(upgraded.version, "0.3.0");
    assert.equal((await settings()).secondsUntilSend, "60");
    const stats = (await kustomer("GET", "/stats")).body.byRoute;
    assert.ok(stats["POST /v1/apps/:app/install"] >= 4 && stats["POST /v1/apps/available"] >= 3);
  });

  it("reset forgets registrations, installations and attributes", async () => {
    await kustomer("POST", "/reset");
    assert.deepEqual((await kustomer("GET", "/v1/apps/available", { key: KEY })).body, { data: [] });
    assert.deepEqual((await kustomer("GET", "/v1/apps/installed", { key: KEY })).body, { data: [] });
    assert.deepEqual((await kustomer("GET", "/v1/klasses/conversation", { key: KEY })).body.data.attributes.metadata.properties, {});
    assert.equal((await register(definition("0.1.0"))).status, 201);
    assert.ok(!("channelMap" in (await settings())));
  });
});

describe("Stella sandbox", () => {
  const valid = fixture("expected-stella-request");
  before(async () => {
    await stella("POST", "/reset");
  });

  it("answers 403 Forbidden (plain text) for a missing or wrong x-api-key", async () => {
    for (const key of [null, "wrong-key"]) {
      const r = await postStella(valid, key);
      assert.equal(r.status, 403);
      assert.equal(r.body, "Forbidden");
    }
    assert.deepEqual((await stella("GET", "/requests")).body, { requests: [], attempts: 2 });
  });

  it("answers 400 (plain text) with the validator's reasons", async () => {
    const nullEmail = await postStella({ ...valid, customer: { name: "Ann", email: null } });
    assert.equal(nullEmail.status, 400);
    assert.match(nullEmail.body, /^Validation error: .*\/customer\/email must be string/);
    const unknown = await postStella({ ...valid, survey_at: "later" });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /must NOT have additional properties \(survey_at\)/);
    assert.equal((await postStella({ customer: {} })).status, 400); // channel is required
    assert.equal((await postStella(undefined, STELLA_KEY, { raw: "{nope" })).status, 400);
    const nested = await postStella({ ...valid, custom_properties: { a: { b: "c" } } });
    assert.match(nested.body, /\/custom_properties\/a must be string/);
    assert.equal((await stella("GET", "/requests")).body.requests.length, 0);
  });

  it("records a valid request and echoes it (200); the key is never stored", async () => {
    const r = await postStella(valid);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, valid);
    assert.equal((await postStella({ channel: "chat", custom_properties: { plan: "gold" } })).status, 200);
    const { requests, attempts } = (await stella("GET", "/requests")).body;
    assert.equal(attempts, 9);
    assert.deepEqual(requests.map((q) => q.body), [valid, { channel: "chat", custom_properties: { plan: "gold" } }]);
    assert.ok(!Number.isNaN(Date.parse(requests[0].receivedAt)));
    assert.ok(!JSON.stringify(requests).includes(STELLA_KEY));
  });

  it("injects faults: 500 twice, then accepts; failed attempts are not recorded", async () => {
    await stella("POST", "/reset");
    assert.equal((await stella("POST", "/faults", { body: { status: 500, count: 2 } })).status, 200);
    for (let i = 0; i < 2; i++) {
      const r = await postStella(valid);
      assert.equal(r.status, 500);
      assert.equal(typeof r.body, "string");
    }
    assert.equal((await postStella(valid)).status, 200);
    await stella("POST", "/faults", { body: { status: 429, count: 1, retryAfter: 4 } });
    const limited = await postStella(valid);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "4");
    const { requests, attempts } = (await stella("GET", "/requests")).body;
    assert.equal(requests.length, 1);
    assert.equal(attempts, 4);
  });

  it("a timeout fault keeps the client waiting, and records nothing", async () => {
    await stella("POST", "/reset");
    await stella("POST", "/faults", { body: { status: "timeout", count: 1 } });
    await assert.rejects(postStella(valid, STELLA_KEY, { signal: AbortSignal.timeout(700) }), { name: "TimeoutError" });
    await stella("DELETE", "/faults");
    assert.deepEqual((await stella("GET", "/requests")).body, { requests: [], attempts: 1 });
  });

  it("accepts the keys set with PUT /sandbox/stella/keys; reset restores the default", async () => {
    assert.equal((await stella("PUT", "/keys", { body: { keys: ["other-stella-key"] } })).status, 200);
    assert.equal((await postStella(valid)).status, 403);
    assert.equal((await postStella(valid, "other-stella-key")).status, 200);
    await stella("POST", "/reset");
    assert.equal((await postStella(valid)).status, 200);
    assert.equal((await postStella(valid, "other-stella-key")).status, 403);
  });
});

describe("state across a workerd restart", () => {
  const valid = fixture("expected-stella-request");
  it("keeps the recorded Stella request, a closed conversation and the settings", async () => {
    await stella("POST", "/reset");
    await kustomer("POST", "/reset");
    assert.equal((await postStella(valid)).status, 200);
    assert.equal((await kustomer("POST", "/conversations/conv-voice/close")).status, 200);
    await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: { brand: "Kept" } } });

    await stopWorkerd();
    workerd = await startWorkerd();

    const { requests } = (await stella("GET", "/requests")).body;
    assert.deepEqual(requests.map((q) => q.body), [valid]);
    const conv = (await kustomer("GET", "/v1/conversations/conv-voice", { key: KEY })).body.data;
    assert.equal(conv.attributes.status, "done");
    const settings = (await kustomer("GET", "/v1/apps/settings", { key: KEY })).body.data.attributes.settings;
    assert.equal(settings.brand, "Kept");
  });
});
