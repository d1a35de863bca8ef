// The API budget: one per org per fixed window (windows aligned to multiples of the window
// length since the epoch), shared by every key of the org, as on Kustomer (Enterprise: 1,000 a
// minute). Every /v1 answer carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
// `x-ratelimit-reset` (whole seconds until the window ends, rounded up); a known key's call
// beyond the limit is answered 429 (remaining 0). The default is the `KUSTOMER_BUDGET` binding
// (`limit/windowSeconds`, such as `1000/10`; unset: Kustomer's 1000/60); `PUT /budget` changes it
// for one org or all, and `GET /budget` shows it with each window's calls by key and its 429s.
import { env as startEnv } from "cloudflare:workers";
import { apiError, isObject, json, readJson } from "./http.js";
import { deleteKeys, deletePrefix } from "./store.js";

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

/** The budget in force for an org: its own, else the one set for all orgs, else the binding's. */
async function budgetFor(storage, org) {
  const config = (await storage.get("budget")) ?? {};
  return (org !== undefined && config.orgs && Object.hasOwn(config.orgs, org) && config.orgs[org]) || config.all || DEFAULT_BUDGET;
}

/**
 * Counts one call against the org's budget for the current window and answers the rate-limit
 * headers; `over` when the call is beyond the limit (never for an unknown key: no org to
 * charge, so it gets the default budget's headers and is not limited).
 */
export async function spend(storage, org) {
  const { limit, windowSeconds } = await budgetFor(storage, org);
  const now = Date.now();
  const windowMs = windowSeconds * 1000;
  const start = Math.floor(now / windowMs) * windowMs;
  const storeKey = `rate:${org ?? ANONYMOUS}`;
  let rate = await storage.get(storeKey);
  if (rate?.start !== start || rate?.windowMs !== windowMs) rate = { start, windowMs, count: 0 };
  rate.count++;
  await storage.put(storeKey, rate);
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

/** The 429 of a spent budget, with its rate-limit headers. */
export function spentAnswer(budget) {
  const detail = `The org's API budget of ${budget.limit} calls per ${budget.windowSeconds} s is spent; it resets in ${budget.headers["x-ratelimit-reset"]} s.`;
  return apiError(429, "too_many_requests", "Too Many Requests", detail, budget.headers);
}

/**
 * The window's accounting (shown by `GET /budget`, cleared by `POST /stats/reset`): calls in
 * all and by API key, and how many the budget answered 429. Windows more than KEPT_WINDOWS
 * windows old are dropped when a new one starts.
 */
export async function account(storage, { org, limit, windowSeconds, start, now }, apiKey, limited) {
  const storeKey = windowKey(org, start, windowSeconds);
  let w = await storage.get(storeKey);
  if (!w) {
    w = { org, startMs: start, windowSeconds, limit, calls: 0, byKey: {}, limited: 0, firstCallMs: now, lastCallMs: now };
    const old = await storage.list({ prefix: `window:${org}:`, end: windowKey(org, start - KEPT_WINDOWS * windowSeconds * 1000, 0) });
    await deleteKeys(storage, [...old.keys()]);
  }
  w.limit = limit; // the limit in force at the window's latest call
  w.calls++;
  w.byKey[apiKey] = (w.byKey[apiKey] ?? 0) + 1;
  if (limited) w.limited++;
  w.lastCallMs = now;
  await storage.put(storeKey, w);
}

/** Forgets every window's accounting (not the counts the budget enforces). */
export const clearAccounting = (storage) => deletePrefix(storage, "window:");

/** `GET /budget[?org=…]`: the budgets in force and each window's accounting, oldest first, by org. */
export async function budgetDocument(storage, org) {
  const config = (await storage.get("budget")) ?? {};
  const windows = {};
  for (const w of (await storage.list({ prefix: org === null ? "window:" : `window:${org}:` })).values()) {
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
export async function setBudget(storage, request) {
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
  const config = (await storage.get("budget")) ?? {};
  if (body.org === undefined) {
    config.all = budget;
    config.orgs = {};
  } else config.orgs = { ...config.orgs, [body.org]: budget };
  await storage.put("budget", config);
  return json(200, { default: { ...DEFAULT_BUDGET, from: DEFAULT_SOURCE }, all: config.all ?? null, orgs: config.orgs });
}

export async function clearBudget(storage, org) {
  const config = (await storage.get("budget")) ?? {};
  if (org === null) await storage.delete("budget");
  else {
    delete config.orgs?.[org];
    await storage.put("budget", config);
  }
  return budgetDocument(storage, org);
}
