// The Agent Connect sandbox's survey outcomes: Data Return records (`GET /v2/data`) and the
// roster (`GET /v2/employees`), their JWT rules and limit, and the controls that answer surveys
// and change their fate. The real workerd runs sandbox/test-config.capnp on 127.0.0.1 with its
// state in a temporary directory. Served answers are validated against the vendor's contracts,
// compiled here with ajv. Run with `node --test tests/sandbox/stella-outcomes.test.mjs`.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorkerd as start, stopWorkerd as stop } from "./workerd.mjs";
import Ajv from "ajv";
import { parse } from "yaml";

const root = new URL("../../", import.meta.url);
// The vendor's contracts as copied into the repository (tests/survey.rs keeps the copies equal
// to ../shared's), so that a fresh clone tests on its own.
const contract = (name) => parse(readFileSync(new URL(`contracts/${name}`, root), "utf8"));
const KEY = "sandbox-stella-key";
const SECRET = "sandbox-stella-secret";
const DAY_MS = 24 * 60 * 60 * 1000;

let storageDir;
let workerd; // {child, base, log}

async function startWorkerd() {
  return start({ dir: storageDir });
}

async function stopWorkerd() {
  await stop(workerd);
}

// `path` is under /sandbox/stella; answers {status, headers, body (parsed JSON or text)}.
async function stella(method, path, { headers = {}, body, signal } = {}) {
  const h = { ...headers };
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(`${workerd.base}/sandbox/stella${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed };
}

// --- JWTs, signed here as Agent Connect documents them ---

const b64url = (x) => Buffer.from(x).toString("base64url");
function jwt(payload = { iat: Math.floor(Date.now() / 1000) }, { secret = SECRET, header = { alg: "HS256", typ: "JWT" } } = {}) {
  const signed = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

// A read call with a key and a fresh token unless told otherwise (null: no header at all).
function read(path, { key = KEY, token = jwt(), signal } = {}) {
  const headers = {};
  if (key !== null) headers["x-api-key"] = key;
  if (token !== null) headers.authorization = token;
  return stella("GET", path, { headers, signal });
}
const data = (query = "", opts) => read(`/v2/data${query}`, opts);

const request = (over = {}) => ({
  channel: "email",
  customer: { name: "Ann Lee", email: "ann.lee@example.com" },
  employee: { email: "sam.agent@acme.example" },
  ext_interaction_id: "conv-email",
  tags: ["shipping"],
  do_not_send: false,
  ...over,
});
async function postRequest(body) {
  const r = await stella("POST", "/v1/requests", { headers: { "x-api-key": KEY }, body });
  assert.equal(r.status, 200, r.body);
}
const records = async () => (await stella("GET", "/records")).body.records;

// --- the contracts' schemas, compiled in node ---

// RFC 3339 date-times and dates (the `format`s the contracts use), read by Date.parse.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
function contractAjv() {
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajv.addVocabulary(["example"]); // OpenAPI's annotation
  ajv.addFormat("date-time", (s) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)));
  ajv.addFormat("date", (s) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)));
  return ajv;
}

/**
 * `GET /v2/data`'s answer: an array of `ResponseBodyDataReturn_FeedbacksV2`. As published, the
 * schema lists an answer's fields as the properties of `answers` itself (closed), while its
 * description keys answers by question and options by option id: validated as those maps. The
 * published times have no `nullable`; the sandbox answers null until a survey is sent or answered.
 */
function recordsSchema() {
  const record = structuredClone(contract("stella-data-return-openapi.yml").components.schemas.ResponseBodyDataReturn_FeedbacksV2);
  const answer = record.properties.answers;
  const option = answer.properties.selected_options;
  const answerSchema = { ...answer, properties: { ...answer.properties, selected_options: { type: "object", description: option.description, additionalProperties: { ...option, description: undefined } } } };
  delete answerSchema.description;
  delete answerSchema.properties.selected_options.additionalProperties.description;
  record.properties.answers = { type: "object", description: answer.description, additionalProperties: answerSchema };
  for (const name of ["request_sent_at", "response_received_at"]) record.properties[name].nullable = true;
  return { type: "array", items: record };
}

/**
 * `GET /v2/employees`'s answer: `ResponseBodyGetEmployees`. As published, `employees` is one
 * object with an employee's fields while the answer is "an array of employees": validated as an
 * array of those objects, closed, so that no field outside the contract is served.
 */
function employeesSchema() {
  const schema = structuredClone(contract("stella-user-management-openapi.yml").components.schemas.ResponseBodyGetEmployees);
  const item = { ...schema.properties.employees, additionalProperties: false };
  schema.properties.employees = { type: "array", items: item };
  schema.additionalProperties = false;
  schema.required = ["employees", "meta"];
  return schema;
}

function assertValid(validate, value) {
  assert.ok(validate(value), JSON.stringify(validate.errors, null, 1));
}

before(async () => {
  execFileSync(process.execPath, ["scripts/build-stella-schema.mjs"], { cwd: root, stdio: "pipe" });
  storageDir = mkdtempSync(join(tmpdir(), "stella-outcomes-test-"));
  workerd = await startWorkerd();
});

after(async () => {
  await stopWorkerd();
  rmSync(storageDir, { recursive: true, force: true });
});

beforeEach(async () => {
  await stella("POST", "/reset");
});

describe("Data Return records", () => {
  it("records each accepted request with its delivery status: sent, do not send, suppressed within 7 days", async () => {
    await postRequest(request());
    await postRequest(request({ ext_interaction_id: "conv-chat", customer: { name: "Ann", email: "ANN.Lee@Example.com" } })); // same customer
    await postRequest(request({ ext_interaction_id: "conv-zoe", channel: "chat", customer: { name: "Zoë", email: "zoe@example.com" }, do_not_send: true }));
    await postRequest(request({ ext_interaction_id: "conv-zoe-2", customer: { name: "Zoë", email: "zoe@example.com" } })); // a do-not-send one suppresses nothing
    // Just short of 7 days later Ann is still suppressed; past them she is surveyed again.
    await stella("POST", "/clock", { body: { offsetMs: 7 * DAY_MS - 60_000 } });
    await postRequest(request({ ext_interaction_id: "conv-6d" }));
    await stella("POST", "/clock", { body: { offsetMs: 7 * DAY_MS + 60_000 } });
    await postRequest(request({ ext_interaction_id: "conv-8d" }));

    const list = await records();
    assert.deepEqual(
      list.map((r) => [r.sequence_id, r.ext_interaction_id, r.request_delivery_status]),
      [
        [1, "conv-email", "Sent"],
        [2, "conv-chat", "Not sent: suppression period"],
        [3, "conv-zoe", "Not sent: do not send flag"],
        [4, "conv-zoe-2", "Sent"],
        [5, "conv-6d", "Not sent: suppression period"],
        [6, "conv-8d", "Sent"],
      ],
    );
    for (const r of list) {
      assert.equal(r.request_sent_at, r.request_delivery_status === "Sent" ? r.request_created_at : null);
      assert.equal(r.response_received_at, null);
      assert.deepEqual(r.answers, {});
      assert.equal(r.is_recovery, false);
    }
    assert.equal(new Set(list.map((r) => r.uuid)).size, list.length);
    // Record times follow the sandbox's clock.
    assert.ok(Date.parse(list[5].request_created_at) - Date.parse(list[0].request_created_at) > 7 * DAY_MS);
  });

  it("copies the request's fields into the contract's names", async () => {
    await postRequest(
      request({
        customer: { name: "Ann Lee", email: "ann.lee@example.com", custom_id: "cust-ann" },
        brand: "acme-outlet",
        language: "fr-ca",
        tags: ["x".repeat(2100), "vip"],
        custom_properties: { plan: "gold" },
      }),
    );
    await postRequest({ channel: "phone" }); // only what the schema requires
    const [full, bare] = await records();
    assert.equal(full.branding, "acme-outlet");
    assert.equal(full.channel, "email");
    assert.equal(full.language, "fr-ca");
    assert.deepEqual(full.tags, ["x".repeat(2000), "vip"]); // cut at 2,000 characters
    assert.deepEqual(full.custom_properties, { plan: "gold" });
    assert.deepEqual(full.customer, { custom_id: "cust-ann", email: "ann.lee@example.com", full_name: "Ann Lee" });
    assert.deepEqual(full.employee, { email: "sam.agent@acme.example", first_name: "Sam", last_name: "Agent" });
    assert.equal(bare.ext_interaction_id, undefined);
    assert.equal(bare.branding, "sandbox"); // the account's one branding
    assert.deepEqual([bare.tags, bare.custom_properties, bare.customer, bare.employee], [[], {}, {}, {}]);
  });

  it("keeps records across a workerd restart; reset clears them", async () => {
    await postRequest(request());
    await stella("POST", "/responses", { body: { ext_interaction_id: "conv-email", rating: 4 } });
    const kept = await records();
    await stopWorkerd();
    workerd = await startWorkerd();
    assert.deepEqual(await records(), kept);
    await stella("POST", "/reset");
    assert.deepEqual(await records(), []);
    assert.deepEqual((await data()).body, []);
  });
});

describe("GET /v2/data: keys and JWTs", () => {
  it("answers 403 for a missing or unknown key, counting nothing", async () => {
    for (const key of [null, "wrong-key", "constructor"]) {
      const r = await data("", { key });
      assert.equal(r.status, 403);
      assert.equal(r.body, "Forbidden");
    }
    assert.deepEqual((await stella("GET", "/calls")).body, { data: 0, employees: 0, other: 0, limited: 0, perMinuteMax: 0, keys: 0 });
  });

  it("answers 403 for each bad token, 200 for a raw HS256 JWT with a current iat", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      [null, /no JWT/],
      ["", /no JWT/],
      [`Bearer ${jwt()}`, /without Bearer/],
      [jwt({ iat: now }, { secret: "not-the-secret" }), /signature/],
      [jwt({ sub: "x" }), /iat/],
      [jwt({ iat: String(now) }), /iat/],
      [jwt({ iat: now - 6 * 60 }), /5 minutes/],
      [jwt({ iat: now + 6 * 60 }), /5 minutes/],
      [jwt({ iat: now }, { header: { alg: "HS512", typ: "JWT" } }), /HS256/],
      [jwt({ iat: now }, { header: { typ: "JWT" } }), /HS256/],
      [`${b64url('{"alg":"none"}')}.${b64url(`{"iat":${now}}`)}.`, /not a JWT/],
      ["not.a.jwt!", /not a JWT/],
      [`${jwt()}.extra`, /not a JWT/],
    ];
    for (const [token, reason] of cases) {
      const r = await data("", { token });
      assert.equal(r.status, 403, `${token}: ${r.body}`);
      assert.match(r.body, /^Forbidden/);
      assert.match(r.body, reason, String(token));
      assert.ok(!r.body.includes(SECRET));
    }
    const ok = await data("", { token: jwt({ iat: now - 4 * 60 }) });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, []);
    assert.match(ok.headers.get("content-type"), /^application\/json/);
    // The token is accepted under the router's mount point only: nothing else answers /v2/data.
    assert.equal((await read("/v2/other")).status, 404);
  });

  it("checks tokens with each key's own secret, set with PUT /keys (the old body form still works)", async () => {
    const put = await stella("PUT", "/keys", { body: { keys: [KEY, "second-key"], secrets: { "second-key": "second-secret" } } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body, { keys: [KEY, "second-key"], withSecret: [KEY, "second-key"] });
    assert.ok(!JSON.stringify(put.body).includes("second-secret"));
    assert.equal((await data("", { key: "second-key", token: jwt(undefined, { secret: "second-secret" }) })).status, 200);
    assert.equal((await data("", { key: "second-key" })).status, 403); // signed with the other key's secret
    assert.equal((await data()).status, 200);
    assert.equal((await stella("PUT", "/keys", { body: { keys: ["third-key"] } })).status, 200);
    const noSecret = await data("", { key: "third-key" });
    assert.equal(noSecret.status, 403);
    assert.match(noSecret.body, /no API secret/);
    assert.equal((await stella("PUT", "/keys", { body: { keys: [KEY], secrets: { [KEY]: "" } } })).status, 400);
    assert.equal((await stella("PUT", "/keys", { body: { keys: [KEY], secrets: [] } })).status, 400);
  });
});

describe("GET /v2/data: the query", () => {
  it("pages forward with after and limit, in sequence order", async () => {
    for (let i = 1; i <= 5; i++) await postRequest(request({ ext_interaction_id: `conv-${i}`, customer: { name: "C", email: `c${i}@example.com` } }));
    const ids = (r) => r.body.map((x) => x.sequence_id);
    assert.deepEqual(ids(await data()), [1, 2, 3, 4, 5]);
    assert.deepEqual(ids(await data("?after=2")), [3, 4, 5]);
    assert.deepEqual(ids(await data("?after=2&limit=2")), [3, 4]);
    assert.deepEqual(ids(await data("?after=5")), []);
    assert.deepEqual(ids(await data("?after=0&limit=1")), [1]);
    assert.deepEqual(ids(await data("?include_recovery=true&stream=false")), [1, 2, 3, 4, 5]);
    for (const bad of ["limit=0", "limit=-1", "limit=abc", "limit=1001", "limit=1.5", "after=-1", "after=x", "include_recovery=yes"]) {
      const r = await data(`?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.match(r.body, /^Validation error: /);
    }
  });

  it("filters on created_at and responded_at, inclusive, ISO 8601 with an offset", async () => {
    await postRequest(request({ ext_interaction_id: "old", customer: { name: "A", email: "a@example.com" } }));
    await stella("POST", "/clock", { body: { offsetMs: DAY_MS } });
    await postRequest(request({ ext_interaction_id: "new", customer: { name: "B", email: "b@example.com" } }));
    const [old, recent] = await records();
    const q = (params) => data(`?${new URLSearchParams(params)}`).then((r) => (assert.equal(r.status, 200, r.body), r.body.map((x) => x.ext_interaction_id)));
    // The same instant in another offset.
    const inOffset = (iso) => new Date(Date.parse(iso) + 2 * 3600_000).toISOString().replace("Z", "+02:00");
    assert.deepEqual(await q({ created_at_gte: recent.request_created_at }), ["new"]);
    assert.deepEqual(await q({ created_at_gte: inOffset(recent.request_created_at) }), ["new"]);
    assert.deepEqual(await q({ created_at_lte: old.request_created_at }), ["old"]);
    assert.deepEqual(await q({ created_at_gte: old.request_created_at, created_at_lte: recent.request_created_at }), ["old", "new"]);
    assert.deepEqual(await q({ responded_at_gte: old.request_created_at }), []); // nothing answered yet

    const answered = await stella("POST", "/responses", { body: { ext_interaction_id: "old", rating: 5 } });
    const at = answered.body.response_received_at;
    assert.deepEqual(await q({ responded_at_gte: at }), ["old"]);
    assert.deepEqual(await q({ responded_at_lte: at }), ["old"]);
    assert.deepEqual(await q({ responded_at_gte: new Date(Date.parse(at) + 1).toISOString() }), []);
    assert.deepEqual(await q({ responded_at_gte: at, after: "1" }), []); // both filters apply

    for (const bad of ["yesterday", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z"]) {
      const r = await data(`?${new URLSearchParams({ created_at_gte: bad })}`);
      assert.equal(r.status, 400, bad);
      assert.match(r.body, /created_at_gte/);
    }
    // An unencoded + reads as a space: refused, saying how to send it.
    const plus = await data("?responded_at_gte=2026-01-01T00:00:00+02:00");
    assert.equal(plus.status, 400);
    assert.match(plus.body, /%2B/);
  });
});

describe("limits, faults and call counts of the read APIs", () => {
  it("answers 429 with Retry-After past 100 calls a minute per key; other keys are unaffected", async () => {
    await stella("PUT", "/keys", { body: { keys: [KEY, "other-key"], secrets: { "other-key": "other-secret" } } });
    for (let i = 0; i < 100; i++) {
      const r = await read(i % 2 ? "/v2/data" : "/v2/employees");
      assert.equal(r.status, 200, `call ${i + 1}`);
    }
    const limited = await data();
    assert.equal(limited.status, 429);
    assert.equal(limited.body, "Too Many Requests");
    const wait = Number(limited.headers.get("retry-after"));
    assert.ok(wait >= 1 && wait <= 60, `retry-after ${wait}`);
    assert.equal((await read("/v2/employees")).status, 429); // one limit for every /v2 route
    assert.equal((await data("", { key: "other-key", token: jwt(undefined, { secret: "other-secret" }) })).status, 200);

    const mine = (await stella("GET", `/calls?key=${KEY}`)).body;
    assert.deepEqual(mine, { data: 51, employees: 51, other: 0, limited: 2, perMinuteMax: 100 });
    const all = (await stella("GET", "/calls")).body;
    assert.deepEqual(all, { data: 52, employees: 51, other: 0, limited: 2, perMinuteMax: 100, keys: 2 });
    assert.ok(!JSON.stringify(all).includes(KEY));

    // Resetting the counters opens the window again.
    await stella("DELETE", "/calls");
    assert.equal((await data()).status, 200);
    assert.deepEqual((await stella("GET", "/calls")).body, { data: 1, employees: 0, other: 0, limited: 0, perMinuteMax: 1, keys: 1 });
  });

  it("injects faults into /v2/data only when the fault names the route", async () => {
    assert.equal((await stella("POST", "/faults", { body: { status: 429, count: 1, retryAfter: 7, route: "data" } })).status, 200);
    await postRequest(request()); // POST /v1/requests is not affected
    const limited = await data();
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "7");
    assert.equal((await data()).status, 200);

    await stella("POST", "/faults", { body: { status: 500, count: 2, route: "data" } });
    assert.equal((await read("/v2/employees")).status, 200);
    assert.equal((await data()).status, 500);
    assert.equal((await data()).status, 500);
    assert.equal((await data()).status, 200);

    await stella("POST", "/faults", { body: { status: "timeout", count: 1, route: "data" } });
    await assert.rejects(data("", { signal: AbortSignal.timeout(700) }), { name: "TimeoutError" });
    await stella("DELETE", "/faults");
    assert.equal((await data()).status, 200);

    await stella("POST", "/faults", { body: { status: 500, count: 1, route: "employees" } });
    assert.equal((await read("/v2/employees")).status, 500);
    assert.equal((await stella("POST", "/faults", { body: { status: 500, route: "nope" } })).status, 400);
    // Without a route the fault is for POST /v1/requests, as before.
    await stella("POST", "/faults", { body: { status: 503, count: 1 } });
    assert.equal((await data()).status, 200);
    assert.equal((await stella("POST", "/v1/requests", { headers: { "x-api-key": KEY }, body: request() })).status, 503);
  });
});

describe("the survey controls", () => {
  it("POST /responses answers the latest survey of an interaction as its customer", async () => {
    await postRequest(request());
    await postRequest(request({ customer: { name: "Ann", email: "other@example.com" } })); // the same conversation again
    const before = await records();
    const r = await stella("POST", "/responses", { body: { ext_interaction_id: "conv-email", rating: 4, comment: "Quick and kind ✓" } });
    assert.equal(r.status, 200);
    const [first, second] = await records();
    assert.deepEqual(first, before[0]);
    assert.deepEqual(r.body, second);
    assert.equal(second.sequence_id, before[1].sequence_id); // kept
    const star = second.answers.agent_star_rating;
    assert.equal(star.comment, "Quick and kind ✓");
    const options = Object.entries(star.selected_options);
    assert.equal(options.length, 1);
    const [optionId, option] = options[0];
    assert.equal(option.integer_value, 4);
    assert.equal(option.option_id, optionId);
    assert.ok(!Number.isNaN(Date.parse(second.response_received_at)));

    // Answered again: the new rating replaces the old; option ids differ per survey, not per answer.
    await stella("POST", "/responses", { body: { ext_interaction_id: "conv-email", rating: 2 } });
    const again = (await records())[1].answers.agent_star_rating;
    assert.equal(again.comment, undefined);
    const [againId, againOption] = Object.entries(again.selected_options)[0];
    assert.equal(againOption.integer_value, 2);
    assert.notEqual(againId, optionId);
    assert.equal(again.question_id, star.question_id);
    await postRequest(request({ ext_interaction_id: "conv-other" }));
    await stella("POST", "/responses", { body: { ext_interaction_id: "conv-other", rating: 4 } });
    assert.notEqual(Object.keys((await records())[2].answers.agent_star_rating.selected_options)[0], optionId);
  });

  it("POST /responses refuses bad input (400) and unknown interactions (404)", async () => {
    await postRequest(request());
    const bad = [
      { ext_interaction_id: "conv-email", rating: 0 },
      { ext_interaction_id: "conv-email", rating: 6 },
      { ext_interaction_id: "conv-email", rating: 4.5 },
      { ext_interaction_id: "conv-email", rating: "4" },
      { ext_interaction_id: "conv-email", rating: 4, comment: 42 },
      { ext_interaction_id: "conv-email", rating: 4, comment: "é".repeat(5121) }, // 10,242 bytes
      { ext_interaction_id: "", rating: 4 },
      { rating: 4 },
      [],
    ];
    for (const body of bad) {
      const r = await stella("POST", "/responses", { body });
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      assert.ok(r.body.code && r.body.error);
    }
    assert.equal((await stella("POST", "/responses", { body: { ext_interaction_id: "conv-email", rating: 4, comment: "a".repeat(10240) } })).status, 200);
    const missing = await stella("POST", "/responses", { body: { ext_interaction_id: "conv-nope", rating: 4 } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, "no_record");
  });

  it("POST /delivery-status sets a contract status, keeping the suppression period right", async () => {
    await postRequest(request());
    const sentAt = (await records())[0].request_sent_at;
    const bounced = await stella("POST", "/delivery-status", { body: { ext_interaction_id: "conv-email", status: "Hard bounce" } });
    assert.equal(bounced.status, 200);
    assert.equal(bounced.body.request_delivery_status, "Hard bounce");
    assert.equal(bounced.body.request_sent_at, sentAt); // it went out, then bounced
    // A bounced survey no longer suppresses the next one.
    await postRequest(request({ ext_interaction_id: "conv-next" }));
    assert.equal((await records())[1].request_delivery_status, "Sent");
    const rejected = await stella("POST", "/delivery-status", { body: { ext_interaction_id: "conv-next", status: "Not sent: rejected" } });
    assert.equal(rejected.body.request_sent_at, null);
    await postRequest(request({ ext_interaction_id: "conv-third" }));
    assert.equal((await records())[2].request_delivery_status, "Sent");
    await postRequest(request({ ext_interaction_id: "conv-fourth" }));
    assert.equal((await records())[3].request_delivery_status, "Not sent: suppression period");

    for (const status of ["Bounced", "sent", "", 3, null]) {
      assert.equal((await stella("POST", "/delivery-status", { body: { ext_interaction_id: "conv-email", status } })).status, 400, String(status));
    }
    assert.equal((await stella("POST", "/delivery-status", { body: { ext_interaction_id: "conv-nope", status: "Sent" } })).status, 404);
    const served = (await data()).body.map((x) => x.request_delivery_status);
    assert.deepEqual(served, ["Hard bounce", "Not sent: rejected", "Sent", "Not sent: suppression period"]);
  });

  it("POST /clock shifts the sandbox's clock; a bad offset is 400", async () => {
    const set = await stella("POST", "/clock", { body: { offsetMs: 3 * DAY_MS } });
    assert.equal(set.status, 200);
    assert.ok(Math.abs(Date.parse(set.body.now) - (Date.now() + 3 * DAY_MS)) < 60_000);
    assert.equal((await stella("GET", "/clock")).body.offsetMs, 3 * DAY_MS);
    for (const offsetMs of ["1", 1.5, undefined, 1e15]) assert.equal((await stella("POST", "/clock", { body: { offsetMs } })).status, 400);
    await stella("DELETE", "/clock");
    assert.equal((await stella("GET", "/clock")).body.offsetMs, 0);
  });
});

describe("GET /v2/employees", () => {
  it("lists the roster, filtered by status, in pages linked by meta.next_page", async () => {
    const all = await read("/v2/employees");
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.employees.map((e) => e.email), ["sam.agent@acme.example", "ria.agent@acme.example", "kim.agent@acme.example"]);
    assert.deepEqual(all.body.meta, {});
    for (const e of all.body.employees) assert.deepEqual(e.channels, ["phone", "chat", "email"]);
    const active = await read("/v2/employees?status=active");
    assert.deepEqual(active.body.employees.map((e) => e.email), ["sam.agent@acme.example", "ria.agent@acme.example"]);
    assert.deepEqual((await read("/v2/employees?status=unapproved")).body.employees.map((e) => e.email), ["kim.agent@acme.example"]);
    assert.deepEqual((await read(`/v2/employees?${new URLSearchParams({ status: "pending review" })}`)).body.employees, []);

    // Pages of one, following next_page (the full address) until it is gone.
    const seen = [];
    let next = `${workerd.base}/sandbox/stella/v2/employees?number_of_employees=1`;
    while (next) {
      const url = new URL(next);
      assert.equal(url.origin, workerd.base);
      const page = await read(url.pathname.replace("/sandbox/stella", "") + url.search);
      assert.equal(page.status, 200);
      assert.equal(page.body.employees.length, 1);
      seen.push(page.body.employees[0].email);
      next = page.body.meta.next_page;
      if (next) assert.equal(new URL(next).searchParams.get("number_of_employees"), "1");
    }
    assert.deepEqual(seen, all.body.employees.map((e) => e.email));
    const two = await read("/v2/employees?number_of_employees=2&status=active");
    assert.equal(two.body.employees.length, 2);
    assert.deepEqual(two.body.meta, {});
    assert.deepEqual((await read("/v2/employees?after=user-sam")).body.employees.map((e) => e.custom_employee_id), ["user-ria", "user-kim"]);

    for (const bad of ["number_of_employees=0", "number_of_employees=501", "number_of_employees=x", "status=gone", "external_id=user-nobody"]) {
      const r = await read(`/v2/employees?${bad}`);
      assert.equal(r.status, 400, bad);
    }
    assert.equal((await read("/v2/employees?number_of_employees=500")).status, 200);
    assert.equal((await read("/v2/employees", { token: `Bearer ${jwt()}` })).status, 403);
    assert.equal((await read("/v2/employees", { key: "nope" })).status, 403);
    assert.equal((await stella("GET", `/calls?key=${KEY}`)).body.employees, 16); // every call of a known key, refused ones too
  });
});

describe("answers against the vendor's contracts", () => {
  it("every served record validates as ResponseBodyDataReturn_FeedbacksV2", async () => {
    const validate = contractAjv().compile(recordsSchema());
    await postRequest(request({ customer: { name: "Ann", email: "ann@example.com", custom_id: "c-1" }, employee: { custom_id: "e-1" }, brand: "b", language: "en", custom_properties: { a: "b" } }));
    await postRequest(request({ ext_interaction_id: "conv-2", do_not_send: true }));
    await postRequest(request({ ext_interaction_id: "conv-3" })); // suppressed
    await postRequest({ channel: "chat" });
    await stella("POST", "/responses", { body: { ext_interaction_id: "conv-email", rating: 5, comment: "Great" } });
    await stella("POST", "/responses", { body: { ext_interaction_id: "conv-3", rating: 1 } });
    await stella("POST", "/delivery-status", { body: { ext_interaction_id: "conv-2", status: "Soft bounce" } });
    const served = (await data()).body;
    assert.equal(served.length, 4);
    assertValid(validate, served);
    assertValid(validate, await records());
    // The validator is not vacuous: a field outside the contract, or a wrong type, fails.
    assert.equal(validate([{ ...served[0], customer: { name: "Ann" } }]), false);
    assert.equal(validate([{ ...served[0], sequence_id: "1" }]), false);
    assert.equal(validate([{ ...served[0], answers: { agent_star_rating: { selected_options: { x: { integer_value: "5" } } } } }]), false);
  });

  it("every employees page validates as ResponseBodyGetEmployees", async () => {
    const validate = contractAjv().compile(employeesSchema());
    for (const query of ["", "?number_of_employees=1", "?number_of_employees=2&external_id=user-sam", "?status=unapproved"]) {
      const r = await read(`/v2/employees${query}`);
      assert.equal(r.status, 200);
      assertValid(validate, r.body);
    }
    const page = (await read("/v2/employees")).body;
    assert.equal(validate({ ...page, employees: [{ ...page.employees[0], status: "active" }] }), false);
  });
});
