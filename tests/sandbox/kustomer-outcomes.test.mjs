// The Kustomer sandbox's pieces for survey outcomes: brands, the paged user list, the outcome
// writes (PATCH /v1/conversations/{id} and their counter), the seeded Stella API secret, the
// unapproved agent's conversation, and the Cards SDK stand-in's context. The real workerd runs
// sandbox/test-config.capnp on 127.0.0.1, state in a temporary directory, the edge replaced by
// tests/sandbox/edge-stub.js. Run with `node --test tests/sandbox/kustomer-outcomes.test.mjs`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorkerd as start, stopWorkerd as stop } from "./workerd.mjs";
import vm from "node:vm";

const root = new URL("../../", import.meta.url);
const KEY = "sandbox-kustomer-key";
const AGENT_KEY = "sandbox-kustomer-key-agent"; // reads and updates conversations; no settings roles
const DEFINITION = JSON.parse(readFileSync(new URL("app-manifest/stella_connect.json", root), "utf8"));
const STELLA_SECRET = "sandbox-stella-secret"; // the seeded org's Stella API secret
const MASK = "********";

let storageDir;
let workerd; // {child, base, log}

async function startWorkerd() {
  return start({ dir: storageDir });
}

async function stopWorkerd() {
  await stop(workerd);
}

// `path` starts with /sandbox/... or /edge-stub/...; answers {status, headers, body, text}.
async function call(method, path, { key, body, raw } = {}) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined || raw !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(workerd.base + path, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed, text };
}
const kustomer = (method, path, opts) => call(method, `/sandbox/kustomer${path}`, opts);
const get = (path, key = KEY) => kustomer("GET", path, { key });
const patch = (id, body, opts = {}) => kustomer("PATCH", `/v1/conversations/${id}`, { key: KEY, body, ...opts });
const writes = async () => (await kustomer("GET", "/writes")).body;
const received = async () => (await call("GET", "/edge-stub/received")).body.received;
// Waits (on the clock) until the current fixed window has at least `seconds` left, so a short
// sequence of calls stays inside one window.
const roomInWindow = async (windowSeconds, seconds) => {
  while (windowSeconds - ((Date.now() / 1000) % windowSeconds) < seconds) await new Promise((r) => setTimeout(r, 100));
};

before(async () => {
  execFileSync(process.execPath, ["scripts/build-stella-schema.mjs"], { cwd: root, stdio: "pipe" });
  storageDir = mkdtempSync(join(tmpdir(), "kustomer-outcomes-test-"));
  workerd = await startWorkerd();
});

after(async () => {
  await stopWorkerd();
  rmSync(storageDir, { recursive: true, force: true });
});

describe("Kustomer sandbox: brands and the new seeded conversations", () => {
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("serves each brand and the list of the org's brands, for keys with the role", async () => {
    const acme = await get("/v1/brands/brand-acme");
    assert.equal(acme.status, 200);
    assert.equal(acme.body.data.type, "brand");
    assert.equal(acme.body.data.id, "brand-acme");
    assert.equal(acme.body.data.attributes.name, "Acme");
    assert.equal((await get("/v1/brands/brand-globex", AGENT_KEY)).body.data.attributes.name, "Globex");

    const list = await get("/v1/brands");
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.data.map((b) => [b.type, b.id, b.attributes.name]), [
      ["brand", "brand-acme", "Acme"],
      ["brand", "brand-globex", "Globex"],
    ]);
    assert.equal(list.body.links.next, null);
    assert.ok(list.headers.has("x-ratelimit-remaining"));

    const missing = await get("/v1/brands/brand-nope");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errors[0].status, "404");
    assert.equal((await get("/v1/brands/brand-acme", "other-org-key")).status, 404);
    assert.deepEqual((await get("/v1/brands", "other-org-key")).body.data, []);
    assert.equal((await get("/v1/brands", "nope")).status, 401);
    const roles = (await get("/v1/auth/tokens/current")).body.data.attributes.roles;
    assert.ok(roles.includes("org.permission.brand.read"), JSON.stringify(roles));
  });

  it("gives conv-email brand-acme and seeds the Globex and unapproved-agent conversations", async () => {
    assert.equal((await get("/v1/conversations/conv-email")).body.data.attributes.brand, "brand-acme");
    assert.ok(!("brand" in (await get("/v1/conversations/conv-chat")).body.data.attributes));

    const globex = (await get("/v1/conversations/conv-brand")).body.data;
    assert.equal(globex.attributes.name, "Order from Globex");
    assert.deepEqual(globex.attributes.channels, ["email"]);
    assert.deepEqual(globex.attributes.assignedUsers, ["user-ria"]);
    assert.equal(globex.attributes.status, "open");
    assert.equal(globex.attributes.brand, "brand-globex");
    assert.equal(globex.relationships.customer.data.id, "cust-zoe");

    const kims = (await get("/v1/conversations/conv-unapproved")).body.data;
    assert.equal(kims.attributes.name, "Question for Kim");
    assert.deepEqual(kims.attributes.channels, ["email"]);
    assert.deepEqual(kims.attributes.assignedUsers, ["user-kim"]);
    assert.equal(kims.relationships.customer.data.id, "cust-ann");
    const kim = (await get("/v1/users/user-kim")).body.data;
    assert.deepEqual([kim.attributes.name, kim.attributes.email], ["Kim Agent", "kim.agent@acme.example"]);

    const listed = (await kustomer("GET", "/conversations")).body.data.map((c) => c.id);
    for (const id of ["conv-email", "conv-chat", "conv-brand", "conv-unapproved"]) assert.ok(listed.includes(id), id);
  });
});

describe("Kustomer sandbox: GET /v1/users pages the org's users", () => {
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("lists every user on one page by default, by id, with Kustomer's links", async () => {
    const r = await get("/v1/users", AGENT_KEY);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.map((u) => u.id), ["user-kim", "user-noemail", "user-ria", "user-sam"]);
    assert.ok(r.body.data.every((u) => u.type === "user"));
    assert.equal(r.body.data[0].attributes.email, "kim.agent@acme.example");
    assert.deepEqual(r.body.links, { self: "/v1/users?page=1&pageSize=100", first: "/v1/users?page=1&pageSize=100", prev: null, next: null });
    assert.deepEqual(r.body.meta, { page: 1, pageSize: 100 });
  });

  it("follows links.next page by page until it is null", async () => {
    const seen = [];
    const pages = [];
    let next = "/v1/users?pageSize=3";
    while (next) {
      const r = await get(next);
      assert.equal(r.status, 200, next);
      assert.ok(r.body.data.length <= 3);
      seen.push(...r.body.data.map((u) => u.id));
      pages.push(r.body.links);
      next = r.body.links.next;
    }
    assert.deepEqual(seen, ["user-kim", "user-noemail", "user-ria", "user-sam"]);
    assert.deepEqual(pages, [
      { self: "/v1/users?page=1&pageSize=3", first: "/v1/users?page=1&pageSize=3", prev: null, next: "/v1/users?page=2&pageSize=3" },
      { self: "/v1/users?page=2&pageSize=3", first: "/v1/users?page=1&pageSize=3", prev: "/v1/users?page=1&pageSize=3", next: null },
    ]);
    // Exactly full pages: the last full page has no next; a page beyond the end is empty.
    const full = await get("/v1/users?page=2&pageSize=2");
    assert.deepEqual([full.body.data.map((u) => u.id), full.body.links.next], [["user-ria", "user-sam"], null]);
    const beyond = await get("/v1/users?page=9&pageSize=2");
    assert.deepEqual([beyond.status, beyond.body.data, beyond.body.links.next], [200, [], null]);
  });

  it("refuses a page or page size out of range with a 400 naming the parameter", async () => {
    for (const query of ["pageSize=101", "pageSize=0", "pageSize=abc", "pageSize=", "pageSize=1.5", "page=0", "page=-1", "page=1e3"]) {
      const r = await get(`/v1/users?${query}`);
      assert.equal(r.status, 400, query);
      const [error] = r.body.errors;
      assert.equal(error.status, "400");
      assert.equal(error.code, "invalid_query");
      assert.equal(error.meta.parameter, query.split("=")[0], query);
      assert.ok(error.title && error.detail);
    }
    assert.equal((await get("/v1/users?pageSize=100")).status, 200);
  });

  it("lists only the org's users, added ones too, and needs a known key", async () => {
    assert.deepEqual((await get("/v1/users", "other-org-key")).body.data, []);
    assert.equal((await get("/v1/users", "nope")).status, 401);
    await kustomer("POST", "/conversations", {
      body: { conversation: { id: "conv-added" }, users: [{ id: "user-added", attributes: { email: "added@acme.example" } }] },
    });
    assert.ok((await get("/v1/users")).body.data.some((u) => u.id === "user-added"));
  });
});

describe("Kustomer sandbox: PATCH /v1/conversations/{id} writes outcomes", () => {
  before(async () => {
    await kustomer("POST", "/reset");
  });

  it("merges custom attributes, removes those set to null, bumps rev and updatedAt", async () => {
    const before = (await get("/v1/conversations/conv-brand")).body.data.attributes;
    const r = await patch("conv-brand", {
      custom: {
        "@stellaSurveyRatingNum": 4,
        "@stellaSurveyCommentTxt": "Ria was great ✨",
        "@stellaSurveyDeliveryStatusStr": "sent",
        "@stellaSurveySentAt": "2026-11-20T09:05:00+00:00",
        "@stellaFlagBool": false,
      },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.id, "conv-brand");
    const a = r.body.data.attributes;
    assert.deepEqual(a.custom, {
      "@stellaSurveyRatingNum": 4,
      "@stellaSurveyCommentTxt": "Ria was great ✨",
      "@stellaSurveyDeliveryStatusStr": "sent",
      "@stellaSurveySentAt": "2026-11-20T09:05:00+00:00",
      "@stellaFlagBool": false,
    });
    assert.equal(a.rev, before.rev + 1);
    assert.ok(a.updatedAt > before.updatedAt);
    assert.equal(a.status, "open");
    assert.equal(a.brand, "brand-globex"); // the rest of the conversation is untouched

    const again = await patch("conv-brand", { custom: { "@stellaSurveyRatingNum": 5, "@stellaSurveyCommentTxt": null, "@stellaNeverSetStr": null } });
    assert.equal(again.status, 200);
    assert.equal(again.body.data.attributes.rev, before.rev + 2);
    const stored = (await get("/v1/conversations/conv-brand")).body.data.attributes;
    assert.deepEqual(stored.custom, {
      "@stellaSurveyRatingNum": 5,
      "@stellaSurveyDeliveryStatusStr": "sent",
      "@stellaSurveySentAt": "2026-11-20T09:05:00+00:00",
      "@stellaFlagBool": false,
    });
    // conv-email's own seeded attribute is kept beside what is written.
    const email = await patch("conv-email", { custom: { "@stellaSurveyRespondedAt": "2026-11-21T10:00:00.123Z" } }, { key: AGENT_KEY });
    assert.equal(email.status, 200);
    assert.deepEqual(email.body.data.attributes.custom, {
      "@stellaDoNotSendStellaConnectRequestBool": false,
      "@stellaSurveyRespondedAt": "2026-11-21T10:00:00.123Z",
    });
  });

  it("refuses bad bodies and values with a 400 in Kustomer's error shape, one error per attribute, writing nothing", async () => {
    const before = (await get("/v1/conversations/conv-chat")).body.data.attributes;
    const long = (n) => "é".repeat(n);
    const cases = [
      [{ raw: "{oops" }, ["bad_request"]],
      [{ body: [] }, ["invalid_type"]],
      [{ body: "text" }, ["invalid_type"]],
      [{ body: {} }, ["invalid_type"]],
      [{ body: { custom: [] } }, ["invalid_type"]],
      [{ body: { custom: null } }, ["invalid_type"]],
      [{ body: { custom: {}, status: "done" } }, ["unknown_key"]],
      [{ body: { custom: { rating: 4 } } }, ["unknown_attribute_type"]],
      [{ body: { custom: { aNum: "4" } } }, ["invalid_value"]],
      [{ body: { custom: { aNum: true } } }, ["invalid_value"]],
      [{ body: { custom: { aStr: 4 } } }, ["invalid_value"]],
      [{ body: { custom: { aStr: long(1025) } } }, ["invalid_value"]],
      [{ body: { custom: { aTxt: long(10_001) } } }, ["invalid_value"]],
      [{ body: { custom: { aTxt: {} } } }, ["invalid_value"]],
      [{ body: { custom: { aAt: "yesterday" } } }, ["invalid_value"]],
      [{ body: { custom: { aAt: "2026-13-45T09:00:00Z" } } }, ["invalid_value"]],
      [{ body: { custom: { aAt: "2026-11-20" } } }, ["invalid_value"]],
      [{ body: { custom: { aAt: 1_700_000_000 } } }, ["invalid_value"]],
      [{ body: { custom: { aBool: "true" } } }, ["invalid_value"]],
      [{ body: { custom: { aBool: 1 } } }, ["invalid_value"]],
      [{ body: { custom: { aUrl: "javascript:alert(1)" } } }, ["invalid_value"]],
      [{ body: { custom: { okStr: "fine", aNum: "4", aBool: "no", plain: 1 } } }, ["invalid_value", "invalid_value", "unknown_attribute_type"]],
    ];
    for (const [opts, codes] of cases) {
      const r = await kustomer("PATCH", "/v1/conversations/conv-chat", { key: KEY, ...opts });
      const label = JSON.stringify(opts).slice(0, 80);
      assert.equal(r.status, 400, label);
      assert.deepEqual(r.body.errors.map((e) => e.code), codes, label);
      for (const e of r.body.errors) {
        assert.equal(e.status, "400");
        assert.ok(e.title && e.detail, label);
        assert.ok(!e.detail.includes(long(50)), "the error names the value's kind, not the value");
      }
      assert.ok(r.headers.has("x-ratelimit-remaining"), label);
    }
    const invalid = (await patch("conv-chat", { custom: { aNum: "4" } })).body.errors[0];
    assert.deepEqual(invalid.meta, { attribute: "aNum", expected: "number" });
    // The limits themselves are accepted, and so is every type at null.
    const edges = { aStr: long(1024), aTxt: long(10_000), aUrl: "https://acme.example/a?b=c", aId: "x-1", aNum: -1.5, aAt: "2026-11-20T09:00Z" };
    assert.equal((await patch("conv-chat", { custom: edges })).status, 200);
    assert.equal([...(await get("/v1/conversations/conv-chat")).body.data.attributes.custom.aTxt].length, 10_000);
    // GET /writes keeps the events' long texts clipped (the stored attribute stays whole).
    const kept = (await writes()).events.at(-1).changes.attributes.custom.after;
    assert.deepEqual([[...kept.aTxt].length, kept.aTxt.endsWith("…"), kept.aNum], [201, true, -1.5]);
    const nulls = Object.fromEntries(Object.keys(edges).map((k) => [k, null]));
    const cleared = await patch("conv-chat", { custom: { ...nulls, aBool: null } });
    assert.deepEqual(cleared.body.data.attributes.custom, before.custom);
    assert.equal(cleared.body.data.attributes.rev, before.rev + 2); // only the two accepted writes
  });

  it("answers 404 for unknown conversations and other orgs, 401 without a known key", async () => {
    const body = { custom: { aNum: 1 } };
    assert.equal((await patch("conv-nope", body)).status, 404);
    assert.equal((await patch("conv-email", body, { key: "other-org-key" })).status, 404);
    assert.equal((await patch("conv-email", body, { key: "nope" })).status, 401);
    assert.equal((await patch("conv-email", body, { key: null })).status, 401);
    assert.ok(!("aNum" in (await get("/v1/conversations/conv-email")).body.data.attributes.custom));
  });

  it("counts each PATCH call by conversation, rejected ones too, until a reset", async () => {
    await kustomer("POST", "/stats/reset");
    assert.deepEqual(await writes(), { total: 0, byConversation: {}, applied: 0, events: [] });
    await patch("conv-email", { custom: { aNum: 1 } });
    await patch("conv-email", { custom: { aNum: 2 } });
    await patch("conv-email", { custom: { aNum: "bad" } }); // 400, still a call
    await patch("conv-brand", { custom: { aNum: 1 } }, { key: "nope" }); // 401, still a call
    await patch("conv%20odd", { custom: { aNum: 1 } }); // 404
    await get("/v1/conversations/conv-email"); // not a write
    await kustomer("PUT", "/v1/conversations/conv-email", { key: KEY, body: { custom: { bNum: 1 } } }); // not counted as an outcome write
    const counted = await writes();
    assert.equal(counted.total, 5);
    assert.deepEqual(counted.byConversation, { "conv-email": 3, "conv-brand": 1, "conv odd": 1 });
    assert.equal(counted.applied, 2);
    assert.equal(counted.events.length, 2);
    const stats = (await kustomer("GET", "/stats")).body;
    assert.equal(stats.byRoute["PATCH /v1/conversations/:id"], 5);

    await kustomer("POST", "/reset");
    assert.deepEqual(await writes(), { total: 0, byConversation: {}, applied: 0, events: [] });
  });

  it("spends the org's budget like every call: 429 with the rate-limit headers when it is spent", async () => {
    await kustomer("POST", "/reset");
    assert.equal((await kustomer("PUT", "/budget", { body: { org: "sandbox-org", limit: 3, windowSeconds: 3600 } })).status, 200);
    await roomInWindow(3600, 60);
    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const r = await patch("conv-email", { custom: { aNum: i } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-ratelimit-limit"), "3");
      remaining.push(r.headers.get("x-ratelimit-remaining"));
    }
    assert.deepEqual(remaining, ["2", "1", "0"]);
    const limited = await patch("conv-email", { custom: { aNum: 99 } });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.errors[0].status, "429");
    assert.equal(limited.body.errors[0].code, "too_many_requests");
    assert.equal(limited.headers.get("x-ratelimit-limit"), "3");
    assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
    assert.ok(Number(limited.headers.get("x-ratelimit-reset")) >= 1);
    // A GET of the same org is refused too: one budget for every call.
    assert.equal((await get("/v1/conversations/conv-email")).status, 429);
    await kustomer("DELETE", "/budget");
    assert.equal((await get("/v1/conversations/conv-email")).body.data.attributes.custom.aNum, 2); // the 429 wrote nothing
    assert.deepEqual({ ...(await writes()), events: [] }, { total: 4, byConversation: { "conv-email": 4 }, applied: 3, events: [] });
  });
});

describe("Kustomer sandbox: a PATCH fires the update event and runs the org's workflows on it", () => {
  before(async () => {
    await kustomer("POST", "/reset");
    await call("POST", "/edge-stub/reset");
  });

  it("a custom-only change keeps the status, so the app's close workflow does not run, even on a closed conversation", async () => {
    const closed = await kustomer("POST", "/conversations/conv-email/close");
    assert.equal(closed.status, 200);
    assert.equal((await received()).length, 1); // the close itself reached the edge
    await call("POST", "/edge-stub/reset");

    const r = await patch("conv-email", { custom: { "@stellaSurveyRatingNum": 5, "@stellaDoNotSendStellaConnectRequestBool": false } });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.attributes.status, "done");
    assert.deepEqual(await received(), []);
    const [event] = (await writes()).events;
    assert.equal(event.conversation, "conv-email");
    // Only what changed: the do-not-send flag already was false.
    assert.deepEqual(event.changes.attributes, { custom: { op: "replace", before: { "@stellaSurveyRatingNum": null }, after: { "@stellaSurveyRatingNum": 5 } } });
    assert.ok(!("status" in event.changes.attributes));
    assert.deepEqual(event.workflows, []);
    assert.equal(event.edge, null);
    assert.ok(DEFINITION.workflows.some((w) => w.trigger.eventName === "kustomer.conversation.update"), "the app's workflow listens to updates");
  });

  it("runs an installed workflow whose condition a custom change meets, with the event as step 1", async () => {
    const watcher = {
      app: "outcome_watch",
      version: "1.0.0",
      title: "Outcome watch",
      workflows: [
        {
          name: "outcome-watch",
          trigger: {
            id: "1",
            eventName: "kustomer.conversation.update",
            transitions: [{ target: "2", condition: { op: "exists", values: ["/#steps.1.changes.attributes.custom.after.@stellaSurveyRatingNum"] } }],
          },
          steps: [],
        },
      ],
    };
    assert.equal((await kustomer("POST", "/v1/apps/available", { key: KEY, body: watcher })).status, 201);
    assert.equal((await kustomer("POST", "/v1/apps/outcome_watch/install", { key: KEY })).status, 200);
    await call("POST", "/edge-stub/reset");

    assert.equal((await patch("conv-chat", { custom: { "@stellaSurveyDeliveryStatusStr": "sent" } })).status, 200);
    assert.deepEqual(await received(), []); // no rating: the condition does not hold
    assert.equal((await patch("conv-chat", { custom: { "@stellaSurveyRatingNum": 3 } })).status, 200);
    const [sent] = await received();
    assert.equal(sent.body.name, "kustomer.conversation.update");
    assert.equal(sent.body.data.id, "conv-chat");
    assert.equal(sent.body.meta.customChanged, true);
    assert.deepEqual(sent.body.changes.attributes.custom.after, { "@stellaSurveyRatingNum": 3 });
    const events = (await writes()).events;
    assert.deepEqual(events.at(-1).workflows, ["outcome-watch"]);
    assert.equal(events.at(-1).edge.status, 202);
  });
});

describe("Kustomer sandbox: the seeded Stella API secret", () => {
  before(async () => {
    await kustomer("POST", "/reset");
    await call("POST", "/edge-stub/reset");
  });

  it("is set from the start and masked on every read, a PUT of the mask keeping it", async () => {
    const read = await get("/v1/apps/settings");
    assert.equal(read.status, 200);
    assert.equal(read.body.data.attributes.settings.stellaApiSecret, MASK);
    assert.ok(!read.text.includes(STELLA_SECRET));
    const put = await kustomer("PUT", "/v1/apps/settings", { key: KEY, body: { settings: { stellaApiSecret: MASK, brand: "Acme" } } });
    assert.equal(put.status, 200);
    assert.equal(put.body.data.attributes.settings.stellaApiSecret, MASK);
    assert.ok(!put.text.includes(STELLA_SECRET));
    assert.ok(!(await kustomer("GET", "/stats")).text.includes(STELLA_SECRET));
  });

  it("reaches the edge with its real value when the app definition's close action carries it", async (t) => {
    const action = DEFINITION.actions.find((a) => a.name.endsWith(".conversation-closed"));
    const header = Object.entries(action.inputTemplate.headers).find(([, template]) => template === "{{{stellaApiSecret}}}")?.[0];
    if (!header) return t.skip("the app definition does not carry stellaApiSecret yet");
    assert.equal((await kustomer("POST", "/conversations/conv-email/close")).status, 200);
    const [sent] = await received();
    assert.equal(sent.headers[header.toLowerCase()], STELLA_SECRET);
  });
});

describe("Cards SDK stand-in: the card's context", () => {
  before(async () => {
    await kustomer("POST", "/reset");
  });

  // Runs the stand-in as a page on ?conversation=<id> would, and answers the context it gives
  // `initialize`'s callback.
  async function cardContext(conversation) {
    const source = (await kustomer("GET", "/cards-sdk.js")).text;
    const page = {
      window: {},
      location: { search: `?conversation=${encodeURIComponent(conversation)}` },
      fetch: (url, init) => fetch(workerd.base + url, init),
      URLSearchParams,
      console,
    };
    vm.runInNewContext(source, page);
    return new Promise((resolve) => page.window.Kustomer.initialize((context) => resolve(context)));
  }

  it("carries the conversation's brand and its custom attributes as stored, outcomes written by PATCH included", async () => {
    assert.equal((await patch("conv-brand", { custom: { "@stellaSurveyRatingNum": 4, "@stellaSurveyDeliveryStatusStr": "sent" } })).status, 200);
    const context = await cardContext("conv-brand");
    assert.equal(context.type, "conversation");
    assert.equal(context.conversation.id, "conv-brand");
    assert.equal(context.conversation.attributes.brand, "brand-globex");
    assert.deepEqual(context.conversation.attributes.custom, { "@stellaSurveyRatingNum": 4, "@stellaSurveyDeliveryStatusStr": "sent" });
    assert.equal(context.customer.id, "cust-zoe");
  });
});
