// Kustomer API sandbox (local dev tooling, never deployed).
// Serves the few /v1 calls the app makes, in Kustomer's JSON:API shapes, plus unauthenticated
// controls under the same prefix to close/reopen conversations (which calls the edge as the
// app's workflow would), inject faults, count calls, set the API budget and add data. All state
// lives in one Durable Object so it survives a workerd restart.
//
// Outcome writes: `PATCH /v1/conversations/{id}` `{custom}` checks each value against its name's
// type suffix, merges, fires the update event and runs the org's workflows on it (a custom-only
// change runs none of the app's: its trigger is status → done). `GET /writes` counts the PATCH
// calls by conversation (`{total, byConversation, applied, events}`); `/reset` and `/stats/reset`
// clear it. `GET /v1/users` and `GET /v1/brands` page as Kustomer's lists do.
//
// The API budget: one per org per fixed window (windows aligned to multiples of the window
// length since the epoch), shared by every key of the org, as on Kustomer (Enterprise: 1,000 a
// minute). Every /v1 answer carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
// `x-ratelimit-reset` (whole seconds until the window ends, rounded up); a known key's call
// beyond the limit is answered 429 (remaining 0). The default is the `KUSTOMER_BUDGET` binding
// (`limit/windowSeconds`, such as `1000/10`; unset: Kustomer's 1000/60); `PUT /budget` changes it
// for one org or all, and `GET /budget` shows it with each window's calls by key and its 429s.
// `POST /latency` holds every /v1 answer back a random time after the call is counted.
// `DELETE /customers/{id}` deletes a customer as Kustomer does (no event; `GET` answers 404), and
// `POST /v1/customers/search` with `includeDeleted: true` finds them (see `searchCustomers` for
// what it guesses).
import { DurableObject, env as startEnv } from "cloudflare:workers";
import * as seed from "./seed.js";
import CARDS_SDK from "./cards-sdk-source";
// The app definition generated from the settings table (app-manifest/stella_connect.json): the
// settings the workflow action passes to the edge, and which of them are secret, come from it.
import DEFINITION from "./app-definition";

// The shared router forwards the full URL; the sandbox strips its own mount point.
const PREFIX = "/sandbox/kustomer";
const MASK = "********"; // what Kustomer answers instead of a secret setting
// The outcome writes: these calls are also counted per conversation (GET /writes).
const PATCH_ROUTE = "PATCH /v1/conversations/:id";
// The app secret the sandbox org starts with (the settings page makes a random one).
const SANDBOX_APP_SECRET = "sandbox-app-secret-0123456789";
// The Stella sandbox's secret of `sandbox-stella-key`: with it the edge reads outcomes back.
const SANDBOX_STELLA_SECRET = "sandbox-stella-secret";

// ---- the settings the app's workflow action sends, from the app definition ----------------------
const SETTING_SPECS = DEFINITION?.settings?.default ?? {};
const CLOSE_ACTION = (DEFINITION?.actions ?? []).find((a) => /\.conversation-closed$/.test(a?.name ?? ""));
if (!CLOSE_ACTION?.inputTemplate?.headers || !Object.keys(SETTING_SPECS).length) {
  throw new Error("app-definition: no conversation-closed action with headers, or no settings.default, in app-manifest/stella_connect.json");
}
// Each header of the action's template: a setting (`{{{key}}}`, sent always when the definition
// requires it, else only when set) or a literal value.
const WORKFLOW_HEADERS = Object.entries(CLOSE_ACTION.inputTemplate.headers).map(([header, template]) => {
  const setting = /^\{\{\{(\w+)\}\}\}$/.exec(template)?.[1];
  return setting ? { header, setting, required: SETTING_SPECS[setting]?.required === true } : { header, literal: template };
});
// Secret settings (the keys, the app secret, the Stella API secret): masked on every read. The
// Stella API secret is named as well, so it stays masked whatever the definition declares.
const SECRET_SETTINGS = [
  ...new Set([...Object.entries(SETTING_SPECS).filter(([, spec]) => spec?.type === "secret").map(([k]) => k), "stellaApiSecret"]),
];

/** The app secret's fingerprint, as the settings page computes it (edge::trust::fingerprint). */
async function appSecretFingerprint(secret) {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode("stella-connect app secret fingerprint v1")));
  return `v1:${[...mac].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// ---- the API budget ------------------------------------------------------------------------
const ENTERPRISE_BUDGET = { limit: 1000, windowSeconds: 60 }; // per org, Kustomer's Enterprise plan
const MAX_LIMIT = 1_000_000_000;
const MAX_WINDOW_SECONDS = 86_400;
const KEPT_WINDOWS = 1000; // per org: older windows' accounting is dropped as new ones start
const ANONYMOUS = "(anonymous)"; // unknown keys: headers from the default budget, never limited

/** `limit/windowSeconds` (such as `1000/60`) → {limit, windowSeconds}, or undefined. */
function parseBudget(text) {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  return m ? checkBudget({ limit: Number(m[1]), windowSeconds: Number(m[2]) }).budget : undefined;
}

/** {budget} when `limit` and `windowSeconds` are whole numbers in range, else {error}. */
function checkBudget({ limit, windowSeconds }) {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    return { error: `limit must be a whole number of calls from 1 to ${MAX_LIMIT}, not ${JSON.stringify(limit)}.` };
  }
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > MAX_WINDOW_SECONDS) {
    return { error: `windowSeconds must be a whole number of seconds from 1 to ${MAX_WINDOW_SECONDS}, not ${JSON.stringify(windowSeconds)}.` };
  }
  return { budget: { limit, windowSeconds } };
}

// The default budget, from the binding (an unset `fromEnvironment` binding is null). A value that
// is not `limit/windowSeconds` stops the worker at start, naming the binding.
const BINDING = startEnv.KUSTOMER_BUDGET;
const DEFAULT_BUDGET = BINDING === null || BINDING === undefined || BINDING === "" ? ENTERPRISE_BUDGET : parseBudget(String(BINDING));
if (!DEFAULT_BUDGET) {
  throw new Error(`KUSTOMER_BUDGET must be limit/windowSeconds, such as 1000/60 (calls per org per window of seconds), not ${JSON.stringify(BINDING)}`);
}
const DEFAULT_SOURCE = DEFAULT_BUDGET === ENTERPRISE_BUDGET ? "Kustomer Enterprise (KUSTOMER_BUDGET unset)" : "KUSTOMER_BUDGET";
const windowKey = (org, startMs, windowSeconds) => `window:${org}:${String(startMs).padStart(16, "0")}:${windowSeconds}`;

const ROLES = [
  "org.permission.conversation.read",
  "org.permission.conversation.update",
  "org.permission.customer.read",
  "org.permission.user.read",
  "org.permission.tag.read",
  // Guess: Kustomer's role for reading brands is not documented.
  "org.permission.brand.read",
  "org.admin.apps",
  "org.permission.setting.read",
  "org.permission.setting.update",
  // The customer search (kustomer-apps.md §10): how the edge learns of deleted customers.
  "org.permission.search.create",
];
const API_KEYS = {
  "sandbox-kustomer-key": { token: "token-sandbox", org: seed.SEED_ORG, roles: ROLES },
  "sandbox-kustomer-key-no-tags": { token: "token-sandbox-no-tags", org: seed.SEED_ORG, roles: ROLES.filter((r) => !r.includes(".tag.")) },
  // An agent's key: reads and updates conversations, no admin or settings roles.
  "sandbox-kustomer-key-agent": {
    token: "token-sandbox-agent",
    org: seed.SEED_ORG,
    roles: ROLES.filter((r) => r.startsWith("org.permission.") && !r.includes(".setting.")),
  },
  "other-org-key": { token: "token-other", org: "other-org", roles: ROLES },
  // The signed-in user of the Cards SDK stand-in (an admin who is also an agent).
  "sandbox-user-session": { token: "session-user", org: seed.SEED_ORG, roles: ROLES },
};
const ORG_NAMES = { [seed.SEED_ORG]: "sandbox" };

// [method, path pattern, stats name, roles of which one is needed (none: any valid key), handler]
const API_ROUTES = [
  ["GET", /^\/v1\/conversations\/([^/]+)$/, "GET /v1/conversations/:id", ["org.permission.conversation.read"], "getResource"],
  ["PUT", /^\/v1\/conversations\/([^/]+)$/, "PUT /v1/conversations/:id", ["org.permission.conversation.update"], "putConversation"],
  ["PATCH", /^\/v1\/conversations\/([^/]+)$/, PATCH_ROUTE, ["org.permission.conversation.update"], "patchConversation"],
  ["GET", /^\/v1\/customers\/([^/]+)$/, "GET /v1/customers/:id", ["org.permission.customer.read"], "getResource"],
  // Customer search (kustomer-apps.md §10), with `includeDeleted`: see `searchCustomers`.
  ["POST", /^\/v1\/customers\/search$/, "POST /v1/customers/search", ["org.permission.search.create", "org.permission.search.update"], "searchCustomers"],
  ["GET", /^\/v1\/users\/([^/]+)$/, "GET /v1/users/:id", ["org.permission.user.read"], "getResource"],
  ["GET", /^\/v1\/users$/, "GET /v1/users", ["org.permission.user.read"], "listResources"],
  ["GET", /^\/v1\/brands\/([^/]+)$/, "GET /v1/brands/:id", ["org.permission.brand.read"], "getResource"],
  ["GET", /^\/v1\/brands$/, "GET /v1/brands", ["org.permission.brand.read"], "listResources"],
  ["GET", /^\/v1\/tags\/([^/]+)$/, "GET /v1/tags/:ids", ["org.permission.tag.read", "org.admin.tag.read"], "getTags"],
  ["GET", /^\/v1\/apps\/settings$/, "GET /v1/apps/settings", ["org.permission.setting.read", "org.admin.apps"], "getSettings"],
  ["PUT", /^\/v1\/apps\/settings$/, "PUT /v1/apps/settings", ["org.permission.setting.update", "org.admin.apps"], "putSettings"],
  // One setting (kustomer-apps.md §2): a secret reads as the mask. The answer's shape is a guess
  // (`{data: {type: "setting", id, attributes: {value}}}`), as the edge's reader (edge::trust).
  ["GET", /^\/v1\/settings\/([^/]+)\/([^/]+)\/([^/]+)$/, "GET /v1/settings/:app/:category/:name", ["org.permission.setting.read", "org.user.setting.read"], "getSetting"],
  ["GET", /^\/v1\/auth\/tokens\/current$/, "GET /v1/auth/tokens/current", [], "getToken"],
  // App registration (kustomer-apps.md §1). The install route and the klass listing are guesses:
  // Kustomer installs from its App Directory page; the sandbox needs an API call for it.
  ["POST", /^\/v1\/apps\/available$/, "POST /v1/apps/available", ["org.admin.apps"], "registerApp"],
  ["GET", /^\/v1\/apps\/available$/, "GET /v1/apps/available", ["org.admin.apps"], "listApps"],
  ["POST", /^\/v1\/apps\/([^/]+)\/install$/, "POST /v1/apps/:app/install", ["org.admin.apps"], "installApp"],
  ["GET", /^\/v1\/apps\/installed$/, "GET /v1/apps/installed", ["org.admin.apps"], "listInstalled"],
  ["GET", /^\/v1\/klasses\/([^/]+)$/, "GET /v1/klasses/:name", [], "getKlass"],
  // Commands (kustomer-apps.md §7): any user of the org may run the org's apps' commands (a
  // guess: Kustomer documents no role limits on commands).
  ["POST", /^\/v1\/commands\/([^/]+)\/run$/, "POST /v1/commands/:name/run", [], "runCommand"],
];
// The top-level keys of an app definition (kustomer-apps.md §1); the schema is strict.
const DEFINITION_KEYS = [
  "app", "version", "title", "identifier", "visibility", "description", "iconUrl", "appDetails", "dependencies",
  "settings", "settingsPageConfig", "klasses", "kviews", "actions", "commands", "workflows", "outboundWebhooks", "i18n", "changelog",
];
const REQUIRED_DEFINITION_KEYS = ["app", "version", "title"];
// Guess: Kustomer's size limit for a definition is not documented; this keeps one stored value
// under Durable Objects' 128 KiB.
const MAX_DEFINITION_BYTES = 120_000;
// Attribute name suffix → type (kustomer-apps.md §3); the type names are a guess.
const ATTRIBUTE_TYPES = { Str: "string", Txt: "text", Num: "number", At: "date", Bool: "boolean", Url: "url", Id: "id" };
// The largest command run the sandbox reads (its own limit; Kustomer's is not published).
const MAX_COMMAND_RUN_BYTES = 64 * 1024;
const RESOURCE_TYPES = { conversations: "conversation", customers: "customer", users: "user", brands: "brand" };
// Lists (`GET /v1/users`, `/v1/brands`) page as Kustomer's do: `page` from 1, `pageSize` up to 100.
const MAX_PAGE_SIZE = 100;
const KEPT_UPDATE_EVENTS = 50; // the latest update events a PATCH fired, shown by GET /writes
// A custom attribute's value, by the suffix of its name (kustomer-apps.md §3, §8): null removes
// it. Txt's 10,000 characters is the sandbox's choice (Kustomer documents no limit for it).
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const parsesAsUrl = (v) => {
  try {
    return Boolean(new URL(v));
  } catch {
    return false;
  }
};
const textOfAtMost = (max) => (v) => typeof v === "string" && [...v].length <= max;
const CUSTOM_VALUES = {
  Num: { expected: "a number", ok: (v) => typeof v === "number" && Number.isFinite(v) },
  Str: { expected: "text of at most 1,024 characters", ok: textOfAtMost(1024) },
  Txt: { expected: "text of at most 10,000 characters", ok: textOfAtMost(10_000) },
  At: { expected: "an ISO 8601 date and time such as 2026-11-20T09:00:00Z", ok: (v) => typeof v === "string" && ISO_DATE.test(v) && !Number.isNaN(Date.parse(v)) },
  Bool: { expected: "true or false", ok: (v) => typeof v === "boolean" },
  Url: { expected: "an http(s) URL of at most 1,024 characters", ok: (v) => textOfAtMost(1024)(v) && /^https?:\/\/\S+$/.test(v) && parsesAsUrl(v) },
  Id: { expected: "an id (text of at most 1,024 characters)", ok: textOfAtMost(1024) },
};

const json = (status, body, headers = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });
const apiError = (status, code, title, detail, headers, meta) =>
  json(status, { errors: [{ status: String(status), code, title, detail, ...(meta && { meta }) }] }, headers);
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// A handler's exception as an answer: malformed JSON is the caller's fault.
const errorResponse = (e) =>
  e instanceof SyntaxError
    ? apiError(400, "bad_request", "Bad Request", `Body is not valid JSON: ${e.message}`)
    : apiError(500, "internal", "Internal Server Error", String(e?.stack ?? e));

// A path segment as text; a malformed %-escape is kept as it came.
function decodePathPart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

// Body as JSON, or undefined when there is none; throws on malformed JSON.
async function readJson(request) {
  const text = await request.text();
  return text.trim() === "" ? undefined : JSON.parse(text);
}

export default {
  fetch(request, env) {
    return env.STATE.get(env.STATE.idFromName("sandbox")).fetch(request);
  },
};

export class KustomerState extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) || "/" : url.pathname;
    if (!(await this.ctx.storage.get("seeded"))) await this.seed();
    try {
      return path.startsWith("/v1/") ? await this.api(request, path) : await this.control(request, path, url);
    } catch (e) {
      return errorResponse(e);
    }
  }

  // ---- storage ---------------------------------------------------------------------------

  // Every resource is stored as {org, resource} under its type and id.
  async seed() {
    await this.putRecords(seed.SEED_ORG, [...seed.users, ...seed.tags, ...seed.brands, ...seed.customers, ...seed.conversations]);
    await this.ctx.storage.put("seeded", true);
  }

  async putRecords(org, resources) {
    const entries = resources.map((r) => [`rec:${r.type}:${r.id}`, { org, resource: r }]);
    for (let i = 0; i < entries.length; i += 128) await this.ctx.storage.put(Object.fromEntries(entries.slice(i, i + 128)));
  }

  async record(type, id, org) {
    const rec = await this.ctx.storage.get(`rec:${type}:${id}`);
    return rec && (org === undefined || rec.org === org) ? rec : undefined;
  }

  // Created on first use, from the origin the request came through, so local runs point at
  // this sandbox.
  async settings(org, origin) {
    let settings = await this.ctx.storage.get(`settings:${org}`);
    if (!settings) {
      settings = {
        stellaApiKey: "sandbox-stella-key",
        kustomerApiKey: "sandbox-kustomer-key",
        kustomerApiUrl: `${origin}${PREFIX}`,
        kustomerUrl: `${origin}${PREFIX}`,
        secondsUntilSend: "5",
        // As an admin running locally would set it (advanced): surveys go to the Stella sandbox.
        stellaApiUrl: `${origin}/sandbox/stella`,
        appSecret: SANDBOX_APP_SECRET,
        // The app's link, as the settings page saves it beside the secret.
        appSecretFingerprint: await appSecretFingerprint(SANDBOX_APP_SECRET),
        // Outcomes (delivery status, rating) flow back under `make run` with no setup.
        stellaApiSecret: SANDBOX_STELLA_SECRET,
      };
      await this.ctx.storage.put(`settings:${org}`, settings);
    }
    return settings;
  }

  // ---- /v1 API ---------------------------------------------------------------------------

  async api(request, path) {
    const response = await this.answerApi(request, path);
    // Answers held back (POST /latency): counted and worded now, read later by the caller.
    const latency = await this.ctx.storage.get("latency");
    if (latency) await new Promise((resolve) => setTimeout(resolve, this.latencyDraw(latency)));
    return response;
  }

  /** One of `[minMs, maxMs]`, drawn from the latency's seed (mulberry32) when it has one. */
  latencyDraw({ minMs, maxMs, seed }) {
    let r = Math.random();
    if (seed !== undefined) {
      this.latencyState = (this.latencyState ?? seed) + 0x6d2b79f5 >>> 0;
      let t = this.latencyState;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }
    return minMs + Math.floor(r * (maxMs - minMs + 1));
  }

  async answerApi(request, path) {
    const route = API_ROUTES.find(([method, pattern]) => method === request.method && pattern.test(path));
    const name = route ? route[2] : `${request.method} /v1/*`;
    const auth = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
    const key = auth && Object.hasOwn(API_KEYS, auth[1]) ? API_KEYS[auth[1]] : undefined;

    // Every call counts, rejected or not, as on the real rate limit.
    const stats = (await this.ctx.storage.get("stats")) ?? { total: 0, byRoute: {} };
    stats.total++;
    stats.byRoute[name] = (stats.byRoute[name] ?? 0) + 1;
    await this.ctx.storage.put("stats", stats);
    if (name === PATCH_ROUTE) await this.countWrite({ conversation: decodePathPart(route[1].exec(path)[1]) });
    const budget = await this.spend(key?.org);

    // An injected fault answers first, as before the budget existed; the call still counts.
    // A fault for one call (`method` and `path`) answers only that call: others that happen to
    // come first (the outcome reads, a page's own reads) do not use it up.
    const faults = await this.ctx.storage.get("faults");
    const aimed = (faults?.method ?? request.method) === request.method && (faults?.path ?? path) === path;
    if (faults?.count > 0 && aimed) {
      faults.count--;
      await this.ctx.storage.put("faults", faults);
      if (key) await this.account(budget, auth[1], false);
      return this.faultResponse(faults, budget.headers);
    }
    if (key) await this.account(budget, auth[1], budget.over);
    if (budget.over) {
      const detail = `The org's API budget of ${budget.limit} calls per ${budget.windowSeconds} s is spent; it resets in ${budget.headers["x-ratelimit-reset"]} s.`;
      return apiError(429, "too_many_requests", "Too Many Requests", detail, budget.headers);
    }

    let response;
    try {
      response = await this.serve(request, path, route, key);
    } catch (e) {
      response = errorResponse(e);
    }
    if (name === PATCH_ROUTE && response.ok) await this.countWrite({ applied: true });
    for (const [k, v] of Object.entries(budget.headers)) response.headers.set(k, v);
    return response;
  }

  async serve(request, path, route, key) {
    if (!key) return apiError(401, "unauthorized", "Unauthorized", "Missing or unknown API key.");
    if (!route) return apiError(404, "not_found", "Not Found", `No route for ${request.method} ${path}.`);
    const [, pattern, , roles, handler] = route;
    if (roles.length && !roles.some((r) => key.roles.includes(r))) {
      return apiError(403, "forbidden", "Forbidden", `The key lacks one of these roles: ${roles.join(", ")}.`);
    }
    const param = pattern.exec(path)[1];
    return this[handler](request, key, param && decodeURIComponent(param), path);
  }

  // ---- the API budget ----------------------------------------------------------------------

  /** The budget in force for an org: its own, else the one set for all orgs, else the binding's. */
  async budgetFor(org) {
    const config = (await this.ctx.storage.get("budget")) ?? {};
    return (org !== undefined && config.orgs && Object.hasOwn(config.orgs, org) && config.orgs[org]) || config.all || DEFAULT_BUDGET;
  }

  /**
   * Counts one call against the org's budget for the current window and answers the rate-limit
   * headers; `over` when the call is beyond the limit (never for an unknown key: no org to
   * charge, so it gets the default budget's headers and is not limited).
   */
  async spend(org) {
    const { limit, windowSeconds } = await this.budgetFor(org);
    const now = Date.now();
    const windowMs = windowSeconds * 1000;
    const start = Math.floor(now / windowMs) * windowMs;
    const storeKey = `rate:${org ?? ANONYMOUS}`;
    let rate = await this.ctx.storage.get(storeKey);
    if (rate?.start !== start || rate?.windowMs !== windowMs) rate = { start, windowMs, count: 0 };
    rate.count++;
    await this.ctx.storage.put(storeKey, rate);
    const over = org !== undefined && rate.count > limit;
    return {
      org,
      limit,
      windowSeconds,
      start,
      now,
      over,
      headers: {
        "x-ratelimit-limit": String(limit),
        "x-ratelimit-remaining": String(over ? 0 : Math.max(0, limit - rate.count)),
        "x-ratelimit-reset": String(Math.ceil((start + windowMs - now) / 1000)),
      },
    };
  }

  /**
   * The window's accounting (shown by `GET /budget`, cleared by `POST /stats/reset`): calls in
   * all and by API key, and how many the budget answered 429. Windows more than KEPT_WINDOWS
   * windows old are dropped when a new one starts.
   */
  async account({ org, limit, windowSeconds, start, now }, apiKey, limited) {
    const storeKey = windowKey(org, start, windowSeconds);
    let w = await this.ctx.storage.get(storeKey);
    if (!w) {
      w = { org, startMs: start, windowSeconds, limit, calls: 0, byKey: {}, limited: 0, firstCallMs: now, lastCallMs: now };
      const old = await this.ctx.storage.list({ prefix: `window:${org}:`, end: windowKey(org, start - KEPT_WINDOWS * windowSeconds * 1000, 0) });
      const keys = [...old.keys()];
      for (let i = 0; i < keys.length; i += 128) await this.ctx.storage.delete(keys.slice(i, i + 128));
    }
    w.limit = limit; // the limit in force at the window's latest call
    w.calls++;
    w.byKey[apiKey] = (w.byKey[apiKey] ?? 0) + 1;
    if (limited) w.limited++;
    w.lastCallMs = now;
    await this.ctx.storage.put(storeKey, w);
  }

  /** `GET /budget[?org=…]`: the budgets in force and each window's accounting, oldest first, by org. */
  async budgetDocument(org) {
    const config = (await this.ctx.storage.get("budget")) ?? {};
    const windows = {};
    for (const w of (await this.ctx.storage.list({ prefix: org === null ? "window:" : `window:${org}:` })).values()) {
      (windows[w.org] ??= []).push({
        start: new Date(w.startMs).toISOString(),
        startMs: w.startMs,
        windowSeconds: w.windowSeconds,
        limit: w.limit,
        calls: w.calls,
        byKey: w.byKey,
        limited: w.limited,
        firstCallAt: new Date(w.firstCallMs).toISOString(),
        lastCallAt: new Date(w.lastCallMs).toISOString(),
      });
    }
    return json(200, { default: { ...DEFAULT_BUDGET, from: DEFAULT_SOURCE }, all: config.all ?? null, orgs: config.orgs ?? {}, windows });
  }

  /**
   * `PUT /budget` `{limit, windowSeconds, org?}`: one org's budget, or (without `org`) every
   * org's, replacing the per-org ones. `DELETE /budget[?org=…]` goes back to the binding's.
   */
  async setBudget(request) {
    const usage = "Body must be {limit: calls, windowSeconds: seconds, org?: id}: whole numbers, such as {limit: 1000, windowSeconds: 60}.";
    const body = await readJson(request);
    if (!isObject(body)) return json(400, { error: usage });
    const unknown = Object.keys(body).find((k) => !["limit", "windowSeconds", "org"].includes(k));
    if (unknown !== undefined) return json(400, { error: `Unknown field ${JSON.stringify(unknown)}. ${usage}` });
    if (body.limit === undefined || body.windowSeconds === undefined) return json(400, { error: `limit and windowSeconds are both required. ${usage}` });
    const { budget, error } = checkBudget(body);
    if (error) return json(400, { error });
    if (body.org !== undefined && (typeof body.org !== "string" || !body.org.trim() || body.org.length > 256)) {
      return json(400, { error: `org must be an org id (text), not ${JSON.stringify(body.org)}.` });
    }
    const config = (await this.ctx.storage.get("budget")) ?? {};
    if (body.org === undefined) {
      config.all = budget;
      config.orgs = {};
    } else config.orgs = { ...config.orgs, [body.org]: budget };
    await this.ctx.storage.put("budget", config);
    return json(200, { default: { ...DEFAULT_BUDGET, from: DEFAULT_SOURCE }, all: config.all ?? null, orgs: config.orgs });
  }

  async clearBudget(org) {
    const config = (await this.ctx.storage.get("budget")) ?? {};
    if (org === null) await this.ctx.storage.delete("budget");
    else {
      delete config.orgs?.[org];
      await this.ctx.storage.put("budget", config);
    }
    return this.budgetDocument(org);
  }

  faultResponse({ status, retryAfter, rateLimitReset }, rate) {
    const headers = { ...rate };
    if (status === 429) headers["x-ratelimit-remaining"] = "0";
    if (rateLimitReset !== undefined) headers["x-ratelimit-reset"] = String(rateLimitReset);
    if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
    const titles = { 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable" };
    return apiError(status, `sandbox_fault_${status}`, titles[status], "Fault injected by the sandbox.", headers);
  }

  async getResource(request, key, id, path) {
    const type = RESOURCE_TYPES[path.split("/")[2]];
    const rec = await this.record(type, id, key.org);
    if (!rec) return apiError(404, "not_found", "Not Found", `No ${type} ${id}.`);
    return json(200, { data: rec.resource });
  }

  /**
   * `POST /v1/customers/search?page=&pageSize=`: the org's customers matching the body's `and`
   * list, oldest change first. Documented (kustomer-apps.md §10, Kustomer's search docs): the
   * `and` list of `customer_*` criteria with `gte`/`lte` on dates, `queryContext`, and
   * `includeDeleted: true` to include deleted customers. Guessed here, as the edge guesses them
   * (edge::forget): only `customer_updated_at` ranges are understood (any other criterion is a
   * 400 here), paging is `page`/`pageSize` as Kustomer's lists, the sort is by `updatedAt`
   * ascending whatever `sort` says, and a deleted customer carries `attributes.deleted: true`
   * and `deletedAt`, its `updatedAt` being the deletion time.
   */
  async searchCustomers(request, key) {
    const body = await readJson(request);
    if (!isObject(body) || body.queryContext !== "customer" || !Array.isArray(body.and)) {
      return apiError(400, "bad_request", "Bad Request", "Body must be {and: [...], queryContext: \"customer\"}.");
    }
    let gte = -Infinity;
    let lte = Infinity;
    for (const criterion of body.and) {
      const range = isObject(criterion) && Object.keys(criterion).length === 1 ? criterion.customer_updated_at : undefined;
      if (!isObject(range)) return apiError(400, "bad_request", "Bad Request", `The sandbox searches by customer_updated_at only, not ${JSON.stringify(criterion)}.`);
      if (range.gte !== undefined) gte = Math.max(gte, Date.parse(range.gte));
      if (range.lte !== undefined) lte = Math.min(lte, Date.parse(range.lte));
      if (Number.isNaN(gte) || Number.isNaN(lte)) return apiError(400, "bad_request", "Bad Request", "Dates must be ISO 8601.");
    }
    const query = new URL(request.url).searchParams;
    const page = Math.max(1, Number(query.get("page") ?? 1) || 1);
    const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, Number(query.get("pageSize") ?? MAX_PAGE_SIZE) || MAX_PAGE_SIZE));
    const prefixes = ["rec:customer:", ...(body.includeDeleted === true ? ["deleted:customer:"] : [])];
    const found = [];
    for (const prefix of prefixes) {
      for (const rec of (await this.ctx.storage.list({ prefix })).values()) {
        const at = Date.parse(rec.resource.attributes?.updatedAt ?? "");
        if (rec.org === key.org && at >= gte && at <= lte) found.push(rec.resource);
      }
    }
    found.sort((a, b) => Date.parse(a.attributes.updatedAt) - Date.parse(b.attributes.updatedAt) || (a.id < b.id ? -1 : 1));
    const start = (page - 1) * pageSize;
    return json(200, { data: found.slice(start, start + pageSize), meta: { page, pageSize, total: found.length } });
  }

  /**
   * `DELETE /customers/{id}` (a control): deletes the customer as `DELETE /v1/customers/{id}`
   * does, permanently (GET answers 404), leaving what the search finds with `includeDeleted`.
   */
  async deleteCustomer(id) {
    const rec = await this.record("customer", id);
    if (!rec) return json(404, { error: `No customer ${id}.` });
    const now = new Date().toISOString();
    const gone = { ...rec.resource, attributes: { ...rec.resource.attributes, deleted: true, deletedAt: now, updatedAt: now } };
    await this.ctx.storage.put(`deleted:customer:${id}`, { org: rec.org, resource: gone });
    await this.ctx.storage.delete(`rec:customer:${id}`);
    return json(200, { deleted: id, at: now });
  }

  // `/v1/tags/a,b`: a list of the tags that exist; 404 only when none does.
  async getTags(request, key, ids) {
    const found = [];
    for (const id of ids.split(",").filter(Boolean)) {
      const rec = await this.record("tag", id, key.org);
      if (rec) found.push(rec.resource);
    }
    if (!found.length) return apiError(404, "not_found", "Not Found", `No tag ${ids}.`);
    return json(200, { data: found });
  }

  // Accepts `{custom, ...attributes}` (what the card sends) or `{data: {attributes}}`.
  async putConversation(request, key, id) {
    const body = await readJson(request);
    const edits = isObject(body?.data?.attributes) ? body.data.attributes : body;
    if (!isObject(edits)) return apiError(400, "bad_request", "Bad Request", "Body must be a JSON object.");
    if (edits.custom !== undefined && !isObject(edits.custom)) {
      return apiError(400, "bad_request", "Bad Request", "custom must be an object.");
    }
    const rec = await this.record("conversation", id, key.org);
    if (!rec) return apiError(404, "not_found", "Not Found", `No conversation ${id}.`);
    const a = rec.resource.attributes;
    const now = new Date().toISOString();
    for (const [k, v] of Object.entries(edits)) {
      if (k === "custom") a.custom = { ...a.custom, ...v };
      else if (k === "status") {
        if (v !== a.status) a.modificationHistory = { ...a.modificationHistory, statusAt: now };
        a.status = v;
      } else if (!["id", "createdAt", "updatedAt", "rev", "modificationHistory"].includes(k)) a[k] = v;
    }
    a.updatedAt = now;
    a.rev = (a.rev ?? 0) + 1;
    await this.putRecords(rec.org, [rec.resource]);
    return json(200, { data: rec.resource });
  }

  /**
   * `GET /v1/users`, `GET /v1/brands`: one page of the org's resources of that type, by id, as
   * Kustomer pages its lists: `page` (from 1) and `pageSize` (1–100, default 100) in the query,
   * `links.next` the path of the next page from the API root (null on the last page).
   */
  async listResources(request, key, _param, path) {
    const resource = path.split("/")[2];
    const type = RESOURCE_TYPES[resource];
    const query = new URL(request.url).searchParams;
    const whole = (name, fallback, max) => {
      const text = query.get(name);
      if (text === null) return fallback;
      const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
      return n >= 1 && n <= max ? n : undefined;
    };
    const page = whole("page", 1, MAX_LIMIT);
    const pageSize = whole("pageSize", MAX_PAGE_SIZE, MAX_PAGE_SIZE);
    for (const [name, value, range] of [["page", page, "1 or more"], ["pageSize", pageSize, `from 1 to ${MAX_PAGE_SIZE}`]]) {
      if (value === undefined) {
        const detail = `${name} must be a whole number ${range}, not ${JSON.stringify(query.get(name))}.`;
        return apiError(400, "invalid_query", "Bad Request", detail, undefined, { parameter: name });
      }
    }
    const all = [];
    for (const rec of (await this.ctx.storage.list({ prefix: `rec:${type}:` })).values()) if (rec.org === key.org) all.push(rec.resource);
    const start = (page - 1) * pageSize;
    const link = (p) => `/v1/${resource}?page=${p}&pageSize=${pageSize}`;
    return json(200, {
      data: all.slice(start, start + pageSize),
      links: { self: link(page), first: link(1), prev: page > 1 ? link(page - 1) : null, next: start + pageSize < all.length ? link(page + 1) : null },
      meta: { page, pageSize },
    });
  }

  /**
   * `PATCH /v1/conversations/{id}` `{custom: {...}}`: how the edge writes a survey's outcome.
   * Merges the custom attributes (null removes one) after checking each value against the type
   * its name's suffix declares; every bad attribute is one error of the 400. Then fires the
   * `kustomer.conversation.update` event with `changes.attributes.custom` and runs the org's
   * workflows on it, as Kustomer does: a custom-only change leaves the status as it was, so the
   * app's close workflow (status → done) does not run.
   */
  async patchConversation(request, key, id) {
    const body = await readJson(request);
    const bad = (errors) => json(400, { errors: errors.map(([code, detail, meta]) => ({ status: "400", code, title: "Bad Request", detail, meta })) });
    if (!isObject(body) || !isObject(body.custom)) {
      return bad([["invalid_type", "The body must be an object {custom: {attribute: value, ...}}.", { expected: "object" }]]);
    }
    const unknown = Object.keys(body).find((k) => k !== "custom");
    if (unknown !== undefined) {
      // The sandbox models only the custom attributes' writes: anything else is a caller's mistake here.
      return bad([["unknown_key", `Unknown field "${unknown}": the sandbox's PATCH takes {custom: {...}} only.`, { key: unknown }]]);
    }
    const errors = [];
    for (const [attribute, value] of Object.entries(body.custom)) {
      const suffix = /(Str|Txt|Num|At|Bool|Url|Id)$/.exec(attribute)?.[1];
      if (!suffix) {
        errors.push(["unknown_attribute_type", `"${attribute}" names no type: a custom attribute ends in Str, Txt, Num, At, Bool, Url or Id.`, { attribute }]);
      } else if (value !== null && !CUSTOM_VALUES[suffix].ok(value)) {
        const { expected } = CUSTOM_VALUES[suffix];
        errors.push(["invalid_value", `"${attribute}" takes ${expected} or null, not ${describeValue(value)}.`, { attribute, expected: ATTRIBUTE_TYPES[suffix] }]);
      }
    }
    if (errors.length) return bad(errors);

    const rec = await this.record("conversation", id, key.org);
    if (!rec) return apiError(404, "not_found", "Not Found", `No conversation ${id}.`);
    const conversation = rec.resource;
    const a = conversation.attributes;
    const custom = { ...a.custom };
    const before = {};
    const after = {};
    for (const [attribute, value] of Object.entries(body.custom)) {
      if (custom[attribute] === value || (value === null && !Object.hasOwn(custom, attribute))) continue;
      before[attribute] = Object.hasOwn(custom, attribute) ? custom[attribute] : null;
      after[attribute] = value;
      if (value === null) delete custom[attribute];
      else custom[attribute] = value;
    }
    const now = new Date().toISOString();
    a.custom = custom;
    a.updatedAt = now;
    a.rev = (a.rev ?? 0) + 1;
    await this.putRecords(rec.org, [conversation]);

    // The event Kustomer fires; the shape of a custom change is a guess (kustomer-apps.md §8).
    const changes = { attributes: Object.keys(after).length ? { custom: { op: "replace", before, after } } : {}, relationships: {} };
    const event = updateEvent(rec.org, conversation, changes, now);
    const workflows = workflowsTriggeredBy(await this.definitionsOf(rec.org), event);
    let edge = null;
    if (workflows.length) edge = await this.postToEdge(rec.org, event, new URL(request.url).origin);
    await this.keepUpdateEvent({ conversation: id, at: now, changes, workflows, edge });
    return json(200, { data: conversation });
  }

  async getSettings(request, key) {
    return this.settingsDocument(await this.settings(key.org, new URL(request.url).origin), await this.secretSettings(key.org));
  }

  async getSetting(request, key, _app, path) {
    const [app, category, name] = path.split("/").slice(3).map(decodeURIComponent);
    const settings = await this.settings(key.org, new URL(request.url).origin);
    const value = settings[name];
    if (app !== "stella_connect" || category !== "default" || value === undefined || value === null) {
      return apiError(404, "not_found", "Not Found", `No setting ${app}.${category}.${name}.`);
    }
    const secrets = await this.secretSettings(key.org);
    const shown = secrets.includes(name) ? MASK : value;
    return json(200, { data: { type: "setting", id: `${app}.${category}.${name}`, attributes: { value: shown } } });
  }

  // The sandbox's own secret keys plus those the org's installed apps declare as `secret`.
  async secretSettings(org) {
    const installed = await this.ctx.storage.list({ prefix: `installed:${org}:` });
    return [...new Set([...SECRET_SETTINGS, ...[...installed.values()].flatMap((i) => i.secrets)])];
  }

  // Merges; null removes a setting; the mask sent back for a secret keeps the stored value.
  async putSettings(request, key) {
    const body = await readJson(request);
    if (!isObject(body?.settings)) return apiError(400, "bad_request", "Bad Request", "Body must be {settings: {...}}.");
    const settings = await this.settings(key.org, new URL(request.url).origin);
    const secrets = await this.secretSettings(key.org);
    for (const [k, v] of Object.entries(body.settings)) {
      if (v === null) delete settings[k];
      else if (!(secrets.includes(k) && v === MASK)) settings[k] = v;
    }
    await this.ctx.storage.put(`settings:${key.org}`, settings);
    return this.settingsDocument(settings, secrets);
  }

  settingsDocument(settings, secrets = SECRET_SETTINGS) {
    const shown = { ...settings };
    for (const k of secrets) if (shown[k]) shown[k] = MASK;
    return json(200, { data: { type: "app_settings", id: "stella_connect", attributes: { settings: shown } } });
  }

  // ---- app registration and installation ---------------------------------------------------
  // Stored per org: `app:<org>:<app>` (the latest registered definition and the versions before
  // it), `installed:<org>:<app>`, and `klass:<org>:<klass>` (the attributes installs created).
  // Not modelled: the `<app>_<orgId>` namespacing of private apps (§1), removing attributes a
  // newer version no longer declares, uninstalling.

  // POST /v1/apps/available: validates the definition as Kustomer documents it (required keys,
  // strict top-level keys, snake_case app, semver version higher than the last one registered).
  async registerApp(request, key) {
    const text = await request.text();
    if (new TextEncoder().encode(text).length > MAX_DEFINITION_BYTES) {
      const detail = `The definition is over ${MAX_DEFINITION_BYTES} bytes.`;
      return apiError(413, "too_large", "Payload Too Large", detail, undefined, { limit: MAX_DEFINITION_BYTES });
    }
    let def;
    try {
      def = JSON.parse(text);
    } catch (e) {
      return apiError(400, "bad_request", "Bad Request", `Body is not valid JSON: ${e.message}`, undefined, { body: "invalid_json" });
    }
    if (!isObject(def)) {
      return apiError(400, "invalid_type", "Bad Request", "An app definition is a JSON object.", undefined, { expected: "object" });
    }
    const invalid = (code, detail, meta) => apiError(400, code, "Bad Request", detail, undefined, meta);
    const unknown = Object.keys(def).find((k) => !DEFINITION_KEYS.includes(k));
    if (unknown !== undefined) return invalid("unknown_key", `Unknown top-level key "${unknown}".`, { key: unknown });
    const missing = REQUIRED_DEFINITION_KEYS.find((k) => def[k] === undefined || def[k] === null || def[k] === "");
    if (missing) return invalid("missing_key", `"${missing}" is required.`, { key: missing });
    const { app, version, title } = def;
    if (typeof app !== "string" || !/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(app)) {
      return invalid("invalid_value", `"app" must be snake_case text.`, { key: "app", value: app });
    }
    if (typeof version !== "string" || !parseSemver(version)) {
      return invalid("invalid_value", `"version" must be a semantic version such as 1.2.3.`, { key: "version", value: version });
    }
    if (typeof title !== "string") return invalid("invalid_value", `"title" must be text.`, { key: "title", value: title });

    const stored = await this.ctx.storage.get(`app:${key.org}:${app}`);
    if (stored && compareSemver(version, stored.version) <= 0) {
      return apiError(
        409,
        "version_not_higher",
        "Conflict",
        `Version ${version} must be higher than the registered version ${stored.version}.`,
        undefined,
        { registered: stored.version, version },
      );
    }
    const history = stored ? [...stored.history, { version: stored.version, registeredAt: stored.registeredAt }] : [];
    const entry = { app, version, title, registeredAt: new Date().toISOString(), definition: def, history };
    await this.ctx.storage.put(`app:${key.org}:${app}`, entry);
    return json(201, { data: appDocument(entry) });
  }

  async listApps(request, key) {
    const apps = await this.ctx.storage.list({ prefix: `app:${key.org}:` });
    return json(200, { data: [...apps.values()].map(appDocument) });
  }

  // Installs the latest registered version: records it, creates the attributes its klasses
  // declare and sets the defaults of its settings that the org has not set (kept values win).
  async installApp(request, key, name) {
    const entry = await this.ctx.storage.get(`app:${key.org}:${name}`);
    if (!entry) return apiError(404, "not_found", "Not Found", `No registered app ${name}.`);
    const def = entry.definition;
    // Guess: an app without `identifier` prefixes its attributes with its name.
    const identifier = typeof def.identifier === "string" && def.identifier ? def.identifier : entry.app;
    const created = [];
    for (const klass of Array.isArray(def.klasses) ? def.klasses : []) {
      const properties = klass?.metadata?.properties;
      if (typeof klass?.name !== "string" || !isObject(properties)) continue;
      const storeKey = `klass:${key.org}:${klass.name}`;
      const attributes = (await this.ctx.storage.get(storeKey)) ?? {};
      for (const [attr, spec] of Object.entries(properties)) {
        const stored = appAttributeKey(identifier, attr);
        const suffix = /(Str|Txt|Num|At|Bool|Url|Id)$/.exec(attr);
        attributes[stored] = { displayName: spec?.displayName ?? attr, type: suffix ? ATTRIBUTE_TYPES[suffix[1]] : null, app: entry.app };
        created.push(stored);
      }
      await this.ctx.storage.put(storeKey, attributes);
    }

    const declared = isObject(def.settings?.default) ? Object.entries(def.settings.default) : [];
    const settings = await this.settings(key.org, new URL(request.url).origin);
    for (const [k, spec] of declared) {
      if (!Object.hasOwn(settings, k) && spec?.defaultValue !== undefined) settings[k] = spec.defaultValue;
    }
    await this.ctx.storage.put(`settings:${key.org}`, settings);

    const before = await this.ctx.storage.get(`installed:${key.org}:${entry.app}`);
    const installation = {
      app: entry.app,
      version: entry.version,
      installedAt: before?.version === entry.version ? before.installedAt : new Date().toISOString(),
      attributes: created,
      secrets: declared.filter(([, spec]) => spec?.type === "secret").map(([k]) => k),
    };
    await this.ctx.storage.put(`installed:${key.org}:${entry.app}`, installation);
    return json(200, { data: installationDocument(installation) });
  }

  async listInstalled(request, key) {
    const installed = await this.ctx.storage.list({ prefix: `installed:${key.org}:` });
    return json(200, { data: [...installed.values()].map(installationDocument) });
  }

  // The custom attributes installs created on a klass, in the definition's shape.
  async getKlass(request, key, name) {
    const properties = (await this.ctx.storage.get(`klass:${key.org}:${name}`)) ?? {};
    return json(200, { data: { type: "klass", id: name, attributes: { name, metadata: { properties } } } });
  }

  getToken(request, key) {
    return json(200, {
      data: {
        type: "token",
        id: key.token,
        attributes: { org: key.org, roles: key.roles },
        relationships: { org: { data: { type: "org", id: key.org } } },
      },
    });
  }

  // ---- commands ------------------------------------------------------------------------------
  // `POST /v1/commands/<name>/run` `{args?, headers?, body?}`, what the Cards SDK's
  // `Kustomer.command.run` sends: Kustomer fills the command's templates on its side (settings
  // through its `appSettings` aliases, the caller's `args` in the URL only, each named in
  // `permittedArgs`), calls the URL and answers with what came back. A saved key reaches the
  // edge, never the caller. Guesses, kept here (kustomer-apps.md §7 leaves them open):
  // - headers given with the run are added to the command's `defaultHeaders` and replace those
  //   of the same name (the settings page checks a key just typed this way); a header whose
  //   value comes out empty (an unset setting) is not sent;
  // - a missing argument is empty text; `{{x}}` is HTML-escaped, `{{{x}}}` is not (Handlebars);
  // - the answer is `{data: {type: "command_run", id, attributes: {commandId, args, url,
  //   statusCode, responseBody, requestError}}}`, the fields of the SDK's command action output
  //   minus the request's headers and body (which would show the filled-in keys).
  // Whatever the command's host, the sandbox calls the local edge (the EDGE binding) with the
  // URL's path and query.
  async runCommand(request, key, name) {
    const text = await request.text();
    if (new TextEncoder().encode(text).length > MAX_COMMAND_RUN_BYTES) {
      return apiError(413, "too_large", "Payload Too Large", `A command run is at most ${MAX_COMMAND_RUN_BYTES} bytes.`);
    }
    const run = text.trim() === "" ? {} : JSON.parse(text);
    const bad = (code, detail, meta) => apiError(400, code, "Bad Request", detail, undefined, meta);
    if (!isObject(run)) return bad("invalid_type", "The body must be an object {args?, headers?, body?}.");
    const unknown = Object.keys(run).find((k) => !["args", "headers", "body"].includes(k));
    if (unknown !== undefined) return bad("unknown_key", `Unknown field "${unknown}": a run is {args?, headers?, body?}.`, { key: unknown });
    const command = await this.command(key.org, name);
    if (!command) return apiError(404, "not_found", "Not Found", `No command ${name} in the org's installed apps.`);
    const args = run.args ?? {};
    if (!isObject(args)) return bad("invalid_type", "args must be an object of names to values.");
    const permitted = Array.isArray(command.permittedArgs) ? command.permittedArgs : [];
    for (const [arg, value] of Object.entries(args)) {
      if (!permitted.includes(arg)) {
        return bad("arg_not_permitted", `The command does not take the argument "${arg}".`, { arg, permittedArgs: permitted });
      }
      if (!["string", "number", "boolean"].includes(typeof value)) return bad("invalid_type", `The argument "${arg}" must be text, a number or a flag.`, { arg });
    }
    const headers = run.headers ?? {};
    if (!isObject(headers) || Object.values(headers).some((v) => typeof v !== "string")) {
      return bad("invalid_type", "headers must be an object of names to text.");
    }

    const settings = await this.settings(key.org, new URL(request.url).origin);
    const values = {};
    for (const [alias, ref] of Object.entries(isObject(command.appSettings) ? command.appSettings : {})) {
      const setting = typeof ref?.key === "string" ? ref.key.split(".").at(-1) : undefined;
      if (setting !== undefined && settings[setting] !== undefined && settings[setting] !== null) values[alias] = settings[setting];
    }
    const url = fill(String(command.url ?? ""), { ...values, ...args });
    const sent = new Headers();
    for (const [header, template] of Object.entries(isObject(command.defaultHeaders) ? command.defaultHeaders : {})) {
      const value = fill(String(template), values);
      if (value !== "") sent.set(header, value);
    }
    for (const [header, value] of Object.entries(headers)) sent.set(header, value);
    const method = String(command.httpMethod ?? "post").toUpperCase();
    const body = run.body !== undefined ? run.body : command.defaultBody;

    const answer = { commandId: name, args, url, statusCode: null, responseBody: null, requestError: null };
    try {
      const target = new URL(url);
      if (!this.env.EDGE) throw new Error("no EDGE service binding");
      const res = await this.env.EDGE.fetch(`http://edge${target.pathname}${target.search}`, {
        method,
        headers: sent,
        body: method === "GET" || body === undefined ? undefined : JSON.stringify(body),
      });
      const received = await res.text();
      answer.statusCode = res.status;
      try {
        answer.responseBody = JSON.parse(received);
      } catch {
        answer.responseBody = received;
      }
    } catch (e) {
      answer.requestError = String(e?.message ?? e);
    }
    return json(200, { data: { type: "command_run", id: crypto.randomUUID(), attributes: answer } });
  }

  /** The command `name` of an app installed in the org (in the seeded org, also of the app
   * definition the sandbox runs with, installed there from the start). */
  async command(org, name) {
    for (const def of await this.definitionsOf(org)) {
      const found = (Array.isArray(def?.commands) ? def.commands : []).find((c) => c?.name === name);
      if (found) return found;
    }
    return undefined;
  }

  /** The definitions of the apps installed in the org (in the seeded org, also the one the
   * sandbox runs with, installed there from the start). */
  async definitionsOf(org) {
    const installed = await this.ctx.storage.list({ prefix: `installed:${org}:` });
    const definitions = [];
    for (const { app } of installed.values()) definitions.push((await this.ctx.storage.get(`app:${org}:${app}`))?.definition);
    if (org === seed.SEED_ORG) definitions.push(DEFINITION);
    return definitions;
  }

  // ---- controls (no auth) ----------------------------------------------------------------

  async control(request, path, url) {
    const { origin } = url;
    const m = request.method;
    const status = /^\/conversations\/([^/]+)\/(close|reopen)$/.exec(path);
    if (m === "POST" && status) {
      return this.changeStatus(request, decodeURIComponent(status[1]), status[2] === "close" ? "done" : "open", origin);
    }
    if (m === "POST" && path === "/conversations") return this.addData(request);
    const customer = /^\/customers\/([^/]+)$/.exec(path);
    if (m === "DELETE" && customer) return this.deleteCustomer(decodeURIComponent(customer[1]));
    if (m === "GET" && path === "/conversations") return this.listConversations();
    if (m === "GET" && path === "/cards-sdk.js") {
      return new Response(CARDS_SDK, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" } });
    }
    if (m === "GET" && path === "/stats") return json(200, (await this.ctx.storage.get("stats")) ?? { total: 0, byRoute: {} });
    if (m === "GET" && path === "/writes") return this.writesDocument();
    if (m === "POST" && path === "/stats/reset") {
      await this.ctx.storage.delete("stats");
      await this.clearWrites(); // the outcome writes' counts too (they are calls)
      // The budget's per-window accounting too (not the counts the budget enforces).
      const windows = [...(await this.ctx.storage.list({ prefix: "window:" })).keys()];
      for (let i = 0; i < windows.length; i += 128) await this.ctx.storage.delete(windows.slice(i, i + 128));
      return json(200, { total: 0, byRoute: {} });
    }
    if (m === "GET" && path === "/budget") return this.budgetDocument(url.searchParams.get("org"));
    if (m === "PUT" && path === "/budget") return this.setBudget(request);
    if (m === "DELETE" && path === "/budget") return this.clearBudget(url.searchParams.get("org"));
    if (m === "POST" && path === "/faults") return this.setFaults(request);
    if (m === "POST" && path === "/latency") return this.setLatency(request);
    if (m === "GET" && path === "/latency") return json(200, { latency: (await this.ctx.storage.get("latency")) ?? null });
    if (m === "DELETE" && path === "/latency") {
      await this.ctx.storage.delete("latency");
      return json(200, { latency: null });
    }
    if (m === "DELETE" && path === "/faults") {
      await this.ctx.storage.delete("faults");
      return json(200, { faults: null });
    }
    if (m === "POST" && path === "/reset") {
      await this.ctx.storage.deleteAll();
      await this.seed();
      return json(200, { reset: true });
    }
    return json(404, { error: `No sandbox control ${m} ${PREFIX}${path}.` });
  }

  // Changes the status, then posts the `kustomer.conversation.update` event to the edge with
  // the settings as headers, as the app's workflow action does.
  async changeStatus(request, id, after, origin) {
    if (!this.env.EDGE) return json(500, { error: "No EDGE service binding: bind the edge worker as EDGE to call it." });
    const edits = (await readJson(request)) ?? {};
    if (!isObject(edits)) return json(400, { error: "Body must be a JSON object {assignedUsers?, custom?}." });
    const rec = await this.record("conversation", id);
    if (!rec) return json(404, { error: `No conversation ${id}.` });

    const conversation = rec.resource;
    const a = conversation.attributes;
    if (Array.isArray(edits.assignedUsers)) a.assignedUsers = edits.assignedUsers;
    if (isObject(edits.custom)) a.custom = { ...a.custom, ...edits.custom };
    const before = a.status;
    const now = new Date().toISOString();
    a.status = after;
    a.updatedAt = now;
    a.modificationHistory = { ...a.modificationHistory, statusAt: now };
    a.rev = (a.rev ?? 0) + 1;
    await this.putRecords(rec.org, [conversation]);

    const changes = { attributes: { status: { op: "replace", before, after } }, relationships: {} };
    const event = updateEvent(rec.org, conversation, changes, now, isObject(edits.custom));
    const edge = await this.postToEdge(rec.org, event, origin);
    return json(edge.status ? 200 : 502, { conversation: { data: conversation }, edge });
  }

  /**
   * Posts a `kustomer.conversation.update` event to the edge with the org's settings as headers,
   * as the app's workflow action does: {status, body} of the edge's answer, or {status: 0, error}.
   */
  async postToEdge(org, event, origin) {
    if (!this.env.EDGE) return { status: 0, error: "No EDGE service binding: bind the edge worker as EDGE to call it." };
    const settings = await this.settings(org, origin);
    const headers = { "content-type": "application/json", ...settingHeaders(settings) };
    if (!settings.stellaApiUrl) headers["x-stella-api-url"] = `${origin}/sandbox/stella`;
    try {
      const res = await this.env.EDGE.fetch("http://edge/v1/kustomer/conversation-closed", {
        method: "POST",
        headers,
        body: JSON.stringify(event),
      });
      const text = await res.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      return { status: res.status, body };
    } catch (e) {
      return { status: 0, error: String(e?.message ?? e) };
    }
  }

  // ---- outcome writes ------------------------------------------------------------------------

  /**
   * Counts one PATCH call (every one, rejected too, as the budget does) or one applied write.
   * Each conversation's count is its own stored value, so a run over many conversations never
   * outgrows one.
   */
  async countWrite({ conversation, applied = false }) {
    const totals = (await this.ctx.storage.get("writes")) ?? { total: 0, applied: 0 };
    if (applied) totals.applied++;
    else {
      totals.total++;
      const storeKey = `writes:conversation:${conversation}`;
      await this.ctx.storage.put(storeKey, ((await this.ctx.storage.get(storeKey)) ?? 0) + 1);
    }
    await this.ctx.storage.put("writes", totals);
  }

  /** Keeps the latest update events PATCH fired (what changed, which workflows ran), long texts clipped. */
  async keepUpdateEvent(entry) {
    const events = (await this.ctx.storage.get("update-events")) ?? [];
    events.push(clipTexts(entry));
    await this.ctx.storage.put("update-events", events.slice(-KEPT_UPDATE_EVENTS));
  }

  /** `GET /writes`: the PATCH calls in all and by conversation, those applied, the latest events. */
  async writesDocument() {
    const { total, applied } = (await this.ctx.storage.get("writes")) ?? { total: 0, applied: 0 };
    const byConversation = {};
    const prefix = "writes:conversation:";
    for (const [k, n] of await this.ctx.storage.list({ prefix })) byConversation[k.slice(prefix.length)] = n;
    return json(200, { total, byConversation, applied, events: (await this.ctx.storage.get("update-events")) ?? [] });
  }

  /** Forgets the outcome writes' counts and events. */
  async clearWrites() {
    const keys = ["writes", "update-events", ...(await this.ctx.storage.list({ prefix: "writes:conversation:" })).keys()];
    for (let i = 0; i < keys.length; i += 128) await this.ctx.storage.delete(keys.slice(i, i + 128));
  }

  // The seeded org's conversations with their customer's name, for the local home page.
  async listConversations() {
    const records = await this.ctx.storage.list({ prefix: "rec:conversation:", limit: 500 });
    const list = [];
    for (const { org, resource } of records.values()) {
      if (org !== seed.SEED_ORG) continue;
      const customerId = resource.relationships?.customer?.data?.id;
      const customer = customerId && (await this.record("customer", customerId, org));
      list.push({
        id: resource.id,
        name: resource.attributes.name,
        status: resource.attributes.status,
        channels: resource.attributes.channels,
        customer: customer?.resource.attributes.displayName ?? null,
      });
    }
    return json(200, { data: list });
  }

  // Body: one set or a list of sets {org?, conversation, customer?, users?, tags?}.
  async addData(request) {
    const body = await readJson(request);
    const sets = Array.isArray(body) ? body : [body];
    const ids = [];
    for (const set of sets) {
      if (!isObject(set?.conversation) || typeof set.conversation.id !== "string") {
        return json(400, { error: "Each set needs conversation: {id, attributes?, relationships?}." });
      }
      const now = new Date().toISOString();
      const resources = [
        ...(set.users ?? []).map((u) => ({ ...u, type: "user" })),
        ...(set.tags ?? []).map((t) => ({ ...t, type: "tag" })),
      ];
      if (set.customer) resources.push({ ...set.customer, type: "customer" });
      const c = set.conversation;
      const relationships = { ...c.relationships };
      if (!relationships.customer && set.customer) relationships.customer = { data: { type: "customer", id: set.customer.id } };
      resources.push({
        type: "conversation",
        id: c.id,
        attributes: {
          status: "open",
          channels: ["email"],
          tags: [],
          assignedUsers: [],
          assignedTeams: [],
          custom: {},
          rev: 1,
          createdAt: now,
          updatedAt: now,
          modificationHistory: { statusAt: now },
          ...c.attributes,
        },
        relationships,
      });
      await this.putRecords(set.org ?? seed.SEED_ORG, resources);
      ids.push(c.id);
    }
    return json(201, { created: ids.length, ids });
  }

  /**
   * `POST /latency` `{minMs?, maxMs, seed?}`: every /v1 answer is held back a random time from
   * `minMs` (default 0) to `maxMs` after the call is counted and its headers written, as when a
   * busy caller reads its answers late. `DELETE /latency` answers at once again.
   */
  async setLatency(request) {
    const usage = "Body must be {minMs?: ms, maxMs: ms, seed?: n}: whole numbers, 0 <= minMs <= maxMs <= 30000.";
    const body = await readJson(request);
    if (!isObject(body)) return json(400, { error: usage });
    const { minMs = 0, maxMs, seed } = body;
    const whole = (n) => Number.isSafeInteger(n) && n >= 0;
    if (!whole(minMs) || !whole(maxMs) || minMs > maxMs || maxMs > 30_000 || (seed !== undefined && !whole(seed))) {
      return json(400, { error: usage });
    }
    const latency = { minMs, maxMs, ...(seed === undefined ? {} : { seed }) };
    this.latencyState = undefined;
    await this.ctx.storage.put("latency", latency);
    return json(200, { latency });
  }

  async setFaults(request) {
    const { status, count = 1, retryAfter, rateLimitReset, method, path } = (await readJson(request)) ?? {};
    const text = (v) => v === undefined || (typeof v === "string" && v.length <= 2048);
    if (![429, 500, 503].includes(status) || !Number.isInteger(count) || count < 0 || !text(method) || !text(path)) {
      return json(400, { error: "Body must be {status: 429|500|503, count: n, retryAfter?, rateLimitReset?, method?, path?}." });
    }
    const faults = { status, count, retryAfter, rateLimitReset, method, path };
    await this.ctx.storage.put("faults", faults);
    return json(200, { faults });
  }
}

const appDocument = ({ app, version, title, registeredAt, definition }) => ({
  type: "app",
  id: app,
  attributes: { app, version, title, registeredAt, definition },
});
const installationDocument = ({ app, version, installedAt, attributes }) => ({
  type: "app_installation",
  id: app,
  attributes: { app, version, installedAt, attributes },
});

// `"@" + identifier + PascalCase(attribute)`, as src/kustomer.rs names it (a guess there too).
const appAttributeKey = (identifier, attribute) => `@${identifier}${attribute.charAt(0).toUpperCase()}${attribute.slice(1)}`;

// MAJOR.MINOR.PATCH[-pre][+build] as semver.org defines it: {core: [3 BigInts], pre: [ids]}, or
// undefined.
function parseSemver(text) {
  const m = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/.exec(text);
  return m && { core: [BigInt(m[1]), BigInt(m[2]), BigInt(m[3])], pre: m[4] ? m[4].split(".") : [] };
}

// Semver precedence: -1, 0 or 1 (build metadata ignored; a pre-release sorts before its release).
function compareSemver(a, b) {
  const [x, y] = [parseSemver(a), parseSemver(b)];
  const cmp = (p, q) => (p < q ? -1 : p > q ? 1 : 0);
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return cmp(x.core[i], y.core[i]);
  if (!x.pre.length || !y.pre.length) return cmp(Number(!x.pre.length), Number(!y.pre.length));
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const [p, q] = [x.pre[i], y.pre[i]];
    const [pn, qn] = [/^\d+$/.test(p), /^\d+$/.test(q)];
    if (p === q) continue;
    if (pn && qn) return cmp(BigInt(p), BigInt(q));
    if (pn !== qn) return pn ? -1 : 1; // numeric identifiers sort before alphanumeric ones
    return cmp(p, q);
  }
  return cmp(x.pre.length, y.pre.length);
}

// The headers the app's workflow action sends (its template in the app definition): each
// required setting always, each other one only when set, and the literal ones.
function settingHeaders(settings) {
  const headers = {};
  const text = (v) => (v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  for (const h of WORKFLOW_HEADERS) {
    if (h.literal !== undefined) headers[h.header] = h.literal;
    else if (h.required || text(settings[h.setting]) !== "") headers[h.header] = text(settings[h.setting]);
  }
  return headers;
}

// Fills a command template: `{{{name}}}` as it is, `{{name}}` HTML-escaped, as Handlebars does;
// an unknown name is empty text.
function fill(template, values) {
  const escape = (v) => v.replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
  return template.replace(/\{\{(\{?)\s*([\w.-]+)\s*\}?\}\}/g, (whole, raw, name) => {
    const value = Object.hasOwn(values, name) ? String(values[name]) : "";
    return raw ? value : escape(value);
  });
}

const KEPT_TEXT_CHARACTERS = 200; // of each text in a kept update event

// A copy with every text longer than KEPT_TEXT_CHARACTERS cut there (and marked with "…").
function clipTexts(value) {
  if (typeof value === "string") return [...value].length > KEPT_TEXT_CHARACTERS ? `${[...value].slice(0, KEPT_TEXT_CHARACTERS).join("")}…` : value;
  if (Array.isArray(value)) return value.map(clipTexts);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clipTexts(v)]));
  return value;
}

// What a value is, for an error message (never the value itself: it may be long).
const describeValue = (v) => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "string" ? `text of ${[...v].length} characters` : `a ${typeof v}`);

/** The `kustomer.conversation.update` event (kustomer-apps.md §6) for a change of a conversation. */
function updateEvent(org, conversation, changes, now, customChanged = Boolean(changes.attributes?.custom)) {
  return {
    id: crypto.randomUUID().replaceAll("-", "").slice(0, 24),
    name: "kustomer.conversation.update",
    org,
    orgName: ORG_NAMES[org] ?? org,
    partition: org,
    createdAt: now,
    data: conversation,
    changes,
    meta: { customChanged },
  };
}

/**
 * The names of the workflows (of the given app definitions) that an event starts: the trigger
 * names the event and one of its transitions' conditions holds, with the event as step `1`
 * (kustomer-apps.md §5).
 */
function workflowsTriggeredBy(definitions, event) {
  const names = [];
  for (const def of definitions) {
    for (const workflow of Array.isArray(def?.workflows) ? def.workflows : []) {
      const trigger = workflow?.trigger;
      if (trigger?.eventName !== event.name || !Array.isArray(trigger.transitions)) continue;
      const steps = { [String(trigger.id ?? "1")]: event };
      if (trigger.transitions.some((t) => conditionHolds(t?.condition, steps))) names.push(String(workflow.name));
    }
  }
  return names;
}

// A workflow condition (the ops seen in real definitions); an unknown op never holds, so the
// sandbox runs nothing it does not understand.
function conditionHolds(condition, steps) {
  if (!isObject(condition)) return false;
  const raw = Array.isArray(condition.values) ? condition.values : [];
  const [x, y] = raw.map((v) => workflowValue(v, steps));
  switch (condition.op) {
    case "true":
      return true;
    case "and":
      return raw.length > 0 && raw.every((c) => conditionHolds(c, steps));
    case "or":
      return raw.some((c) => conditionHolds(c, steps));
    case "eq":
      return x === y;
    case "gt":
      return typeof x === "number" && typeof y === "number" && x > y;
    case "exists":
      return x !== undefined && x !== null;
    case "dne":
      return x === undefined || x === null;
    case "contains":
      return (Array.isArray(x) || typeof x === "string") && x.includes(y);
    case "not-contains":
      return !((Array.isArray(x) || typeof x === "string") && x.includes(y));
    default:
      return false;
  }
}

// A workflow value: `/#steps.<id>.<path>` read from the steps' outputs, anything else as it is.
function workflowValue(value, steps) {
  const ref = typeof value === "string" ? /^\/#steps\.(.+)$/.exec(value) : null;
  if (!ref) return value;
  let at = steps;
  for (const part of ref[1].split(".")) {
    if (!isObject(at) && !Array.isArray(at)) return undefined;
    if (!Object.hasOwn(at, part)) return undefined;
    at = at[part];
  }
  return at;
}
