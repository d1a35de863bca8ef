// Stella Connect (Medallia Agent Connect) API sandbox (local dev tooling, never deployed).
// `POST /v1/requests` checks the key and validates the body against the vendor's schema
// (precompiled by scripts/build-stella-schema.mjs: workerd cannot compile it at run time), then
// records it. Controls under the same prefix inject faults, list what was received and reset.
// State lives in one Durable Object so it survives a workerd restart.
//
// `POST /pace` slows acceptance down, for the kill and input drills (scripts/drills.mjs) only: each valid
// request waits `delayMs` plus up to `jitterMs` before it is recorded and answered, and once
// `acceptUpTo` requests are recorded, further ones are held (not recorded) until the pace
// changes, the sandbox is reset or `holdMs` passes (then 503, nothing recorded). Held and waiting
// requests die with the process. `DELETE /pace` restores full speed; `GET /pace` shows the pace,
// how many are held now and how many were answered 503 after being held.
//
// Survey outcomes (contracts: stella-data-return-openapi.yml, stella-user-management-openapi.yml).
// Each accepted request also becomes a Data Return record (`ResponseBodyDataReturn_FeedbacksV2`)
// with its delivery status, served by `GET /v2/data`; the agent roster is `GET /v2/employees`.
// Both want a known `x-api-key` and, in `Authorization`, a raw HS256 JWT (no `Bearer `) signed
// with that key's API secret and carrying an `iat` within 5 minutes of now; together they allow
// 100 calls a minute per key (429 above). Controls:
//   PUT  /keys {keys, secrets?}          keys, and the API secret of any of them
//   POST /responses {ext_interaction_id, rating, comment?}   answer a survey as its customer
//   POST /delivery-status {ext_interaction_id, status}      change a record's fate (a bounce)
//   GET  /records                        the records as served
//   GET|POST|DELETE /clock {offsetMs}    shift the sandbox's clock (record times, suppression)
//   GET|DELETE /calls[?key=]             the read calls per key, and the busiest minute
//   POST /faults {…, route: "data"|"employees"}   faults for the read routes
//   GET  /faults                         the faults in force, per route (null: none), so that
//                                        the home page shows its "Refuse surveys" state on reload
import { DurableObject } from "cloudflare:workers";
import validate from "./stella-schema.mjs";

// The shared router forwards the full URL; the sandbox strips its own mount point.
const PREFIX = "/sandbox/stella";
const DEFAULT_KEYS = ["sandbox-stella-key"];
// The API secret each key's JWTs are signed with (Agent Connect's third credential).
const DEFAULT_SECRETS = { "sandbox-stella-key": "sandbox-stella-secret" };
const TIMEOUT_MS = 15_000; // longer than the client's 10 s timeout
const FAULT_STATUSES = [400, 403, 429, 500, 503, "timeout"];
// Where each route's injected faults are kept; a fault naming no route is for `POST /v1/requests`.
const FAULT_KEYS = { requests: "faults", data: "faults:data", employees: "faults:employees" };
const HOLD_MS = 5_000; // a held request is answered well within the client's 10 s timeout
const REASONS = { 400: "Validation error: fault injected by the sandbox", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout" };

// Agent Connect suppresses a survey to a customer who got one this recently (Company Info, in
// days; the sandbox's account says 7).
const SUPPRESSION_MS = 7 * 24 * 60 * 60 * 1000;
const JWT_SKEW_S = 5 * 60; // how far a token's `iat` may be from now
const CALLS_PER_MINUTE = 100; // the read APIs' published limit, per key
const MINUTE_MS = 60_000;
const DATA_LIMIT_MAX = 1000; // the documented default page; the sandbox refuses larger ones
const EMPLOYEES_PAGE = 100; // `number_of_employees` default
const EMPLOYEES_PAGE_MAX = 500;
const COMMENT_MAX_BYTES = 10 * 1024;
const CUT = 2000; // the server cuts tags and custom property values to this many characters
// A record's status (stella-api.md): `Sent`, or why not, or a bounce after sending.
const STATUS = { sent: "Sent", suppressed: "Not sent: suppression period", doNotSend: "Not sent: do not send flag" };
const DELIVERY_STATUSES = [
  "Sent",
  "Not sent: suppression period",
  "Not sent: do not send flag",
  "Not sent: consumer unsubscribed",
  "Not sent: rejected",
  "Soft bounce",
  "Hard bounce",
];
const EMPLOYEE_STATUSES = ["active", "deactivated", "pending review", "confirmed", "unapproved", "created"];
// Every request goes to the account's one branding unless it names a brand.
const DEFAULT_BRANDING = "sandbox";

// The Agent Connect employees matching the Kustomer sandbox's agents. `status` is the profile's
// state: the list answer has no such field (the contract's schema), only the `status` filter.
const ROSTER = [
  employee("sam.agent@acme.example", "user-sam", "Sam", "Agent", "active"),
  employee("ria.agent@acme.example", "user-ria", "Ria", "Agent", "active"),
  employee("kim.agent@acme.example", "user-kim", "Kim", "Agent", "unapproved"),
];

function employee(email, id, first, last, status) {
  return {
    status,
    answer: {
      email,
      custom_employee_id: id,
      first_name: first,
      last_name: last,
      role: "Agent",
      license_type: "Full",
      channels: ["phone", "chat", "email"],
      employment_status: "full-time",
      start_date: "2024-03-15",
      groups: ["Support"],
      manage_team: false,
      last_active: "2026-03-15T14:30:00Z",
    },
  };
}

// Stella answers errors as plain text.
const text = (status, body, headers = {}) =>
  new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
const json = (status, body) => Response.json(body, { status, headers: { "cache-control": "no-store" } });
const isObject = (x) => typeof x === "object" && x !== null && !Array.isArray(x);
const pad = (n) => String(n).padStart(12, "0");

export default {
  fetch(request, env) {
    return env.STATE.get(env.STATE.idFromName("sandbox")).fetch(request);
  },
};

export class StellaState extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) || "/" : url.pathname;
    const route = `${request.method} ${path}`;
    const storage = this.ctx.storage;

    if (path.startsWith("/v2/")) return this.read(request, url, path);
    switch (route) {
      case "POST /v1/requests":
        return this.createRequest(request);
      case "GET /requests": {
        // Zero-padded sequence keys list in arrival order.
        const requests = [...(await storage.list({ prefix: "req:" })).values()];
        return json(200, { requests, attempts: (await storage.get("attempts")) ?? 0 });
      }
      case "PUT /keys": {
        const { keys, secrets = {} } = (await request.json().catch(() => null)) ?? {};
        if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string" && k) || !isObject(secrets) || !Object.values(secrets).every((s) => typeof s === "string" && s)) {
          return json(400, { error: "Body must be {keys: [non-empty strings], secrets?: {key: non-empty string}}." });
        }
        const merged = { ...((await storage.get("secrets")) ?? DEFAULT_SECRETS), ...secrets };
        await storage.put({ keys, secrets: merged });
        // Which keys can sign, never the secrets themselves.
        return json(200, { keys, withSecret: keys.filter((k) => Object.hasOwn(merged, k)) });
      }
      case "POST /faults": {
        const { status, count = 1, retryAfter, route: faultRoute = "requests" } = (await request.json().catch(() => null)) ?? {};
        if (!FAULT_STATUSES.includes(status) || !Number.isInteger(count) || count < 0 || !Object.hasOwn(FAULT_KEYS, faultRoute)) {
          return json(400, { error: 'Body must be {status: 400|403|429|500|503|"timeout", count: n, retryAfter?, route?: "requests"|"data"|"employees"}.' });
        }
        await storage.put(FAULT_KEYS[faultRoute], { status, count, retryAfter });
        return json(200, { faults: { status, count, retryAfter, route: faultRoute } });
      }
      case "GET /faults": {
        const routes = Object.keys(FAULT_KEYS);
        const held = await Promise.all(routes.map((r) => storage.get(FAULT_KEYS[r])));
        const live = (f) => (f && f.count > 0 ? { status: f.status, count: f.count, retryAfter: f.retryAfter } : null);
        return json(200, { faults: Object.fromEntries(routes.map((r, i) => [r, live(held[i])])) });
      }
      case "DELETE /faults":
        await storage.delete(Object.values(FAULT_KEYS));
        return json(200, { faults: null });
      case "POST /pace": {
        const { delayMs = 0, jitterMs = 0, acceptUpTo = null, holdMs = HOLD_MS } = (await request.json().catch(() => null)) ?? {};
        const ms = (x) => Number.isInteger(x) && x >= 0 && x <= 60_000;
        if (!ms(delayMs) || !ms(jitterMs) || !ms(holdMs) || !(acceptUpTo === null || (Number.isInteger(acceptUpTo) && acceptUpTo >= 0))) {
          return json(400, { error: "Body must be {delayMs?, jitterMs?, holdMs?: 0–60000, acceptUpTo?: n | null}." });
        }
        const pace = { delayMs, jitterMs, acceptUpTo, holdMs };
        await storage.put("pace", pace);
        this.paceChanged();
        return json(200, { pace });
      }
      case "GET /pace":
        return json(200, { pace: (await storage.get("pace")) ?? null, held: this.held ?? 0, heldOut: (await storage.get("heldOut")) ?? 0 });
      case "DELETE /pace":
        await storage.delete("pace");
        this.paceChanged();
        return json(200, { pace: null });
      case "GET /records":
        return json(200, { records: [...(await storage.list({ prefix: "rec:" })).values()].map((r) => r.record) });
      case "POST /responses":
        return this.respond(request);
      case "POST /delivery-status":
        return this.setDeliveryStatus(request);
      case "GET /clock":
        return json(200, { offsetMs: (await storage.get("clock")) ?? 0, now: new Date(await this.now()).toISOString() });
      case "POST /clock": {
        const { offsetMs } = (await request.json().catch(() => null)) ?? {};
        // Within ten years either way: Date stays valid.
        if (!Number.isSafeInteger(offsetMs) || Math.abs(offsetMs) > 10 * 366 * 24 * 3600 * 1000) {
          return json(400, { error: "Body must be {offsetMs: integer}, within ten years." });
        }
        await storage.put("clock", offsetMs);
        return json(200, { offsetMs, now: new Date(await this.now()).toISOString() });
      }
      case "DELETE /clock":
        await storage.delete("clock");
        return json(200, { offsetMs: 0 });
      case "GET /calls":
        return json(200, await this.calls(url.searchParams.get("key")));
      case "DELETE /calls":
        await this.serially(async () => storage.delete([...(await storage.list({ prefix: "calls:" })).keys(), ...(await storage.list({ prefix: "rate:" })).keys()]));
        return json(200, { data: 0, employees: 0, perMinuteMax: 0 });
      case "POST /reset":
        await this.serially(() => storage.deleteAll());
        this.paceChanged();
        return json(200, { reset: true });
      default:
        return text(404, `Not Found: ${request.method} ${url.pathname}`);
    }
  }

  async createRequest(request) {
    const storage = this.ctx.storage;
    await storage.put("attempts", ((await storage.get("attempts")) ?? 0) + 1);

    const faults = await storage.get("faults");
    if (faults?.count > 0) {
      faults.count--;
      await storage.put("faults", faults);
      return this.fault(faults);
    }

    const keys = (await storage.get("keys")) ?? DEFAULT_KEYS;
    if (!keys.includes(request.headers.get("x-api-key"))) return text(403, "Forbidden");

    let body;
    try {
      body = JSON.parse(await request.text());
    } catch {
      return text(400, "Validation error: body is not valid JSON");
    }
    if (!validate(body)) {
      const reasons = validate.errors.map((e) => {
        const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : "";
        return `${e.instancePath || "(root)"} ${e.message}${extra}`;
      });
      return text(400, `Validation error: ${reasons.join("; ")}`);
    }
    const sentKey = typeof body.customer?.email === "string" ? await emailKey(body.customer.email) : null;

    const pace = await storage.get("pace");
    if (pace) await scheduler.wait(pace.delayMs + Math.floor(Math.random() * (pace.jitterMs + 1)));
    const heldSince = Date.now();
    for (;;) {
      // The limit check and the write that counts against it, one request at a time: requests
      // woken together would otherwise read the same `seq`.
      const holding = await this.serially(async () => {
        const now = await storage.get("pace");
        const seq = ((await storage.get("seq")) ?? 0) + 1;
        if (Number.isInteger(now?.acceptUpTo) && seq > now.acceptUpTo) return now;
        // The request's Data Return record, its status decided now, as Agent Connect does.
        const at = await this.now();
        const lastSent = sentKey ? await storage.get(sentKey) : undefined;
        const status = body.do_not_send === true ? STATUS.doNotSend : lastSent !== undefined && at - lastSent < SUPPRESSION_MS ? STATUS.suppressed : STATUS.sent;
        const stored = { record: dataRecord(seq, body, at, status), survey: { questionId: randomId(), optionIds: [1, 2, 3, 4, 5].map(randomId) }, updated: new Date(at).toISOString() };
        // The key is neither stored nor echoed.
        await storage.put({
          seq,
          [`req:${pad(seq)}`]: { receivedAt: new Date().toISOString(), body },
          [`rec:${pad(seq)}`]: stored,
          ...(status === STATUS.sent && sentKey ? { [sentKey]: at } : {}),
        });
        return null;
      });
      if (!holding) return json(200, body);
      const left = heldSince + holding.holdMs - Date.now();
      if (left <= 0) {
        await this.serially(async () => storage.put("heldOut", ((await storage.get("heldOut")) ?? 0) + 1));
        return text(503, REASONS[503]);
      }
      this.held = (this.held ?? 0) + 1;
      try {
        await Promise.race([new Promise((resolve) => (this.waiting ??= []).push(resolve)), scheduler.wait(left)]);
      } finally {
        this.held--;
      }
    }
  }

  /** The read APIs (`/v2/*`): key, call count, limit, faults, JWT, then the route itself. */
  async read(request, url, path) {
    const storage = this.ctx.storage;
    const key = request.headers.get("x-api-key");
    const keys = (await storage.get("keys")) ?? DEFAULT_KEYS;
    if (request.method !== "GET" || !keys.includes(key)) return text(request.method === "GET" ? 403 : 405, request.method === "GET" ? "Forbidden" : "Method Not Allowed");
    const kind = path === "/v2/data" ? "data" : path === "/v2/employees" ? "employees" : "other";

    const retryAfter = await this.serially(() => this.countCall(key, kind));
    if (retryAfter !== null) return text(429, REASONS[429], { "retry-after": String(retryAfter) });

    if (kind !== "other") {
      const faults = await storage.get(FAULT_KEYS[kind]);
      if (faults?.count > 0) {
        faults.count--;
        await storage.put(FAULT_KEYS[kind], faults);
        return this.fault(faults);
      }
    }

    const secrets = (await storage.get("secrets")) ?? DEFAULT_SECRETS;
    const refused = await jwtRefusal(request.headers.get("authorization"), Object.hasOwn(secrets, key) ? secrets[key] : null);
    if (refused) return text(403, `Forbidden: ${refused}`);

    if (kind === "data") return this.data(url.searchParams);
    if (kind === "employees") return employees(url);
    return text(404, `Not Found: ${request.method} ${url.pathname}`);
  }

  /**
   * Counts a read call of `key`; the seconds to wait when the key's last minute already holds
   * the limit's worth (a sliding window of the calls let through), else null.
   */
  async countCall(key, kind) {
    const storage = this.ctx.storage;
    const id = await hashHex(key); // storage keys carry no API key
    const now = Date.now();
    const window = ((await storage.get(`rate:${id}`)) ?? []).filter((t) => now - t < MINUTE_MS);
    const calls = (await storage.get(`calls:${id}`)) ?? { data: 0, employees: 0, other: 0, limited: 0, perMinuteMax: 0 };
    calls[kind]++;
    let retryAfter = null;
    if (window.length >= CALLS_PER_MINUTE) {
      calls.limited++;
      retryAfter = Math.max(1, Math.ceil((window[0] + MINUTE_MS - now) / 1000));
    } else {
      window.push(now);
      calls.perMinuteMax = Math.max(calls.perMinuteMax, window.length);
    }
    await storage.put({ [`rate:${id}`]: window, [`calls:${id}`]: calls });
    return retryAfter;
  }

  /** The read calls of one key, or summed over every key (`perMinuteMax`: the busiest key's). */
  async calls(key) {
    const storage = this.ctx.storage;
    const zero = { data: 0, employees: 0, other: 0, limited: 0, perMinuteMax: 0 };
    if (key !== null) return (await storage.get(`calls:${await hashHex(key)}`)) ?? zero;
    const all = [...(await storage.list({ prefix: "calls:" })).values()];
    const sum = all.reduce(
      (s, c) => ({ data: s.data + c.data, employees: s.employees + c.employees, other: s.other + c.other, limited: s.limited + c.limited, perMinuteMax: Math.max(s.perMinuteMax, c.perMinuteMax) }),
      zero,
    );
    return { ...sum, keys: all.length };
  }

  /** `GET /v2/data`: the records matching the query, by `sequence_id` ascending. */
  async data(params) {
    const query = dataQuery(params);
    if (typeof query === "string") return text(400, `Validation error: ${query}`);
    const start = `rec:${pad(query.after + 1)}`;
    const records = [];
    for (const { record } of (await this.ctx.storage.list({ prefix: "rec:", start })).values()) {
      if (records.length >= query.limit) break;
      if (record.is_recovery && !query.includeRecovery) continue;
      if (!within(Date.parse(record.request_created_at), query.createdGte, query.createdLte)) continue;
      if (query.respondedGte !== null || query.respondedLte !== null) {
        if (record.response_received_at === null || !within(Date.parse(record.response_received_at), query.respondedGte, query.respondedLte)) continue;
      }
      records.push(record);
    }
    return Response.json(records, { headers: { "cache-control": "no-store" } });
  }

  /** `POST /responses`: the customer answers the latest survey of an interaction. */
  async respond(request) {
    const body = await request.json().catch(() => null);
    const { ext_interaction_id: id, rating, comment } = isObject(body) ? body : {};
    if (typeof id !== "string" || !id) return json(400, { error: "ext_interaction_id must be a non-empty string.", code: "invalid_interaction" });
    if (!Number.isInteger(rating) || rating < 1 || rating > 5) return json(400, { error: "rating must be an integer from 1 to 5.", code: "invalid_rating" });
    if (comment !== undefined && typeof comment !== "string") return json(400, { error: "comment must be a string.", code: "invalid_comment" });
    if (comment !== undefined && new TextEncoder().encode(comment).length > COMMENT_MAX_BYTES) {
      return json(400, { error: "comment must be at most 10 KB.", code: "comment_too_long" });
    }
    return this.changeLatest(id, async (stored) => {
      const { record, survey } = stored;
      const at = new Date(await this.now()).toISOString();
      const optionId = survey.optionIds[rating - 1];
      const name = record.employee?.first_name ?? "your agent";
      record.answers = {
        ...record.answers,
        agent_star_rating: {
          question_id: survey.questionId,
          question_text: `How would you rate ${name}?`,
          selected_options: { [optionId]: { option_id: optionId, option_text: `${rating} star${rating === 1 ? "" : "s"}`, integer_value: rating } },
          ...(comment === undefined ? {} : { comment }),
        },
      };
      // The record keeps its sequence_id: whether Agent Connect moves it is not documented.
      record.response_received_at = at;
      stored.updated = at;
    });
  }

  /** `POST /delivery-status`: the latest survey of an interaction gets another fate. */
  async setDeliveryStatus(request) {
    const body = await request.json().catch(() => null);
    const { ext_interaction_id: id, status } = isObject(body) ? body : {};
    if (typeof id !== "string" || !id) return json(400, { error: "ext_interaction_id must be a non-empty string.", code: "invalid_interaction" });
    if (!DELIVERY_STATUSES.includes(status)) return json(400, { error: `status must be one of: ${DELIVERY_STATUSES.join(", ")}.`, code: "invalid_status" });
    return this.changeLatest(id, async (stored) => {
      const { record } = stored;
      const at = new Date(await this.now()).toISOString();
      record.request_delivery_status = status;
      // A "Not sent" survey never went out; a sent or bounced one did, at some point.
      if (status.startsWith("Not sent")) record.request_sent_at = null;
      else record.request_sent_at ??= at;
      stored.updated = at;
    });
  }

  /**
   * Applies `change` to the latest record of interaction `id` (404 without one), keeps the
   * suppression index of its customer right, and answers the record.
   */
  async changeLatest(id, change) {
    const storage = this.ctx.storage;
    return this.serially(async () => {
      const all = [...(await storage.list({ prefix: "rec:" })).entries()];
      const latest = all.findLast(([, s]) => s.record.ext_interaction_id === id);
      if (!latest) return json(404, { error: "No survey was requested for this interaction.", code: "no_record" });
      const [name, stored] = latest;
      await change(stored);
      await storage.put(name, stored);
      const email = stored.record.customer?.email;
      if (typeof email === "string") {
        const sentKey = await emailKey(email);
        const same = all.map(([n, s]) => (n === name ? stored : s)).filter((s) => s.record.customer?.email?.toLowerCase() === email.toLowerCase());
        const lastSent = Math.max(...same.filter((s) => s.record.request_delivery_status === STATUS.sent).map((s) => Date.parse(s.record.request_sent_at)));
        if (Number.isFinite(lastSent)) await storage.put(sentKey, lastSent);
        else await storage.delete(sentKey);
      }
      return json(200, stored.record);
    });
  }

  /** The sandbox's clock: the real one shifted by `POST /clock`. */
  async now() {
    return Date.now() + ((await this.ctx.storage.get("clock")) ?? 0);
  }

  /** Runs `fn` after every earlier call's `fn` has finished. */
  serially(fn) {
    const run = (this.queue ?? Promise.resolve()).then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Wakes the requests held by `acceptUpTo` to look at the pace again. */
  paceChanged() {
    const waiting = this.waiting ?? [];
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  async fault({ status, retryAfter }) {
    if (status === "timeout") {
      await scheduler.wait(TIMEOUT_MS);
      return text(504, REASONS[504]);
    }
    return text(status, REASONS[status], retryAfter === undefined ? {} : { "retry-after": String(retryAfter) });
  }
}

/** A request's Data Return record, as `ResponseBodyDataReturn_FeedbacksV2` shapes it. */
function dataRecord(seq, body, at, status) {
  const iso = new Date(at).toISOString();
  const cut = (s) => s.slice(0, CUT);
  const known = ROSTER.find((e) => typeof body.employee?.email === "string" && e.answer.email === body.employee.email.toLowerCase())?.answer;
  const defined = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return {
    uuid: crypto.randomUUID(),
    sequence_id: seq,
    is_recovery: false,
    branding: body.brand ?? DEFAULT_BRANDING,
    channel: body.channel,
    ...(body.ext_interaction_id === undefined ? {} : { ext_interaction_id: body.ext_interaction_id }),
    language: body.language ?? "en",
    survey_id: 1,
    survey_name: "Agent Connect survey",
    tags: (body.tags ?? []).map(cut),
    request_created_at: iso,
    request_delivery_status: status,
    request_sent_at: status === STATUS.sent ? iso : null,
    requested_via: "API",
    response_received_at: null,
    employee: defined({ custom_id: body.employee?.custom_id, email: body.employee?.email, first_name: known?.first_name, last_name: known?.last_name }),
    customer: defined({ custom_id: body.customer?.custom_id, email: body.customer?.email, full_name: body.customer?.name }),
    custom_properties: Object.fromEntries(Object.entries(body.custom_properties ?? {}).map(([k, v]) => [k, cut(v)])),
    answers: {},
  };
}

/**
 * The `/v2/data` query, or why it is refused. Times are ISO 8601 with an offset; a `+` offset
 * must be sent as `%2B`, since a bare `+` in a query means a space.
 */
function dataQuery(params) {
  const integer = (name, fallback, min, max) => {
    const raw = params.get(name);
    if (raw === null) return fallback;
    if (!/^\d{1,15}$/.test(raw) || Number(raw) < min || Number(raw) > max) return `${name} must be an integer from ${min} to ${max}`;
    return Number(raw);
  };
  const time = (name) => {
    const raw = params.get(name);
    if (raw === null) return null;
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i.test(raw) || Number.isNaN(Date.parse(raw))) {
      return `${name} must be an ISO 8601 date-time with an offset (send + as %2B)`;
    }
    return Date.parse(raw);
  };
  const flag = (name) => {
    const raw = params.get(name);
    if (raw === null) return false;
    return raw === "true" ? true : raw === "false" ? false : `${name} must be true or false`;
  };
  const query = {
    after: integer("after", 0, 0, Number.MAX_SAFE_INTEGER),
    limit: integer("limit", DATA_LIMIT_MAX, 1, DATA_LIMIT_MAX),
    createdGte: time("created_at_gte"),
    createdLte: time("created_at_lte"),
    respondedGte: time("responded_at_gte"),
    respondedLte: time("responded_at_lte"),
    includeRecovery: flag("include_recovery"),
    stream: flag("stream"), // the whole answer is one JSON array either way
  };
  return Object.values(query).find((v) => typeof v === "string") ?? query;
}

const within = (t, gte, lte) => (gte === null || t >= gte) && (lte === null || t <= lte);

/** `GET /v2/employees`: the roster, filtered by `status`, a page after `external_id`. */
function employees(url) {
  const params = url.searchParams;
  const size = params.get("number_of_employees") ?? String(EMPLOYEES_PAGE);
  if (!/^\d{1,4}$/.test(size) || Number(size) < 1 || Number(size) > EMPLOYEES_PAGE_MAX) {
    return text(400, `Validation error: number_of_employees must be an integer from 1 to ${EMPLOYEES_PAGE_MAX}`);
  }
  const status = params.get("status");
  if (status !== null && !EMPLOYEE_STATUSES.includes(status)) return text(400, `Validation error: status must be one of: ${EMPLOYEE_STATUSES.join(", ")}`);
  const listed = ROSTER.filter((e) => status === null || e.status === status).map((e) => e.answer);
  // The parameter is `external_id`; the contract's next_page example says `after`: both work.
  const cursor = params.get("external_id") ?? params.get("after");
  let from = 0;
  if (cursor !== null) {
    const at = listed.findIndex((e) => e.custom_employee_id === cursor);
    if (at < 0) return text(400, "Validation error: external_id is not an employee of this list");
    from = at + 1;
  }
  const page = listed.slice(from, from + Number(size));
  const meta = {};
  if (from + page.length < listed.length) {
    const next = new URL(url);
    next.searchParams.delete("after");
    next.searchParams.set("external_id", page.at(-1).custom_employee_id);
    meta.next_page = next.href;
  }
  return Response.json({ employees: page, meta }, { headers: { "cache-control": "no-store" } });
}

/**
 * Why a read call's `Authorization` is refused, or null when it is a raw HS256 JWT signed with
 * `secret` whose `iat` is within JWT_SKEW_S of now. Never says anything of the token itself.
 */
async function jwtRefusal(token, secret) {
  if (!token) return "no JWT in Authorization";
  if (/^bearer\s/i.test(token)) return "Authorization must be the raw JWT, without Bearer";
  if (!secret) return "this key has no API secret";
  const parts = token.split(".");
  if (parts.length !== 3) return "Authorization is not a JWT";
  const [header, payload, signature] = parts.map(base64url);
  if (!header || !payload || !signature) return "Authorization is not a JWT";
  const decode = (bytes) => {
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      return null;
    }
  };
  if (decode(header)?.alg !== "HS256") return "the JWT must be HS256";
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  if (!(await crypto.subtle.verify("HMAC", key, signature, encoder.encode(`${parts[0]}.${parts[1]}`)))) return "the JWT's signature does not match the API secret";
  const iat = decode(payload)?.iat;
  if (typeof iat !== "number" || !Number.isFinite(iat)) return "the JWT has no numeric iat";
  if (Math.abs(Date.now() / 1000 - iat) > JWT_SKEW_S) return "the JWT's iat is more than 5 minutes from now";
  return null;
}

/** The bytes of one base64url JWT part, or null. */
function base64url(part) {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return null;
  try {
    const binary = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

async function hashHex(value) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The storage key of the last survey sent to a customer: emails match case-insensitively. */
async function emailKey(email) {
  return `sent:${await hashHex(email.toLowerCase())}`;
}

/** An option or question id: differs per survey, as Agent Connect's do. */
function randomId() {
  return crypto.randomUUID().replace(/-/g, "").slice(0, 16);
}
