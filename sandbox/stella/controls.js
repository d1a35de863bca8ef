// The Stella sandbox's controls, under the same prefix as the API (no auth):
//   GET  /requests                       what `POST /v1/requests` recorded, and the attempts
//   PUT  /keys {keys, secrets?}          keys, and the API secret of any of them
//   POST /faults {…, route: "data"|"employees"}   faults (for a read route, when it names one)
//   GET  /faults                         the faults in force, per route (null: none), so that
//                                        the home page shows its "Refuse surveys" state on reload
//   GET|POST|DELETE /pace                slow acceptance down (requests.js; the drills only):
//                                        GET shows how many are held now and how many were
//                                        answered 503 after being held
//   POST /responses {ext_interaction_id, rating, comment?}   answer a survey as its customer
//   POST /delivery-status {ext_interaction_id, status}      change a record's fate (a bounce)
//   GET  /records                        the records as served
//   GET|POST|DELETE /clock {offsetMs}    shift the sandbox's clock (record times, suppression)
//   GET|DELETE /calls[?key=]             the read calls per key, and the busiest minute
//   POST /reset                          forget everything
import { DEFAULT_SECRETS, FAULT_KEYS, STATUS, emailKey, isObject, json } from "./common.js";
import { calls } from "./reads.js";

const FAULT_STATUSES = [400, 403, 429, 500, 503, "timeout"];
const HOLD_MS = 5_000; // a held request is answered well within the client's 10 s timeout
const COMMENT_MAX_BYTES = 10 * 1024;
const DELIVERY_STATUSES = [
  "Sent",
  "Not sent: suppression period",
  "Not sent: do not send flag",
  "Not sent: consumer unsubscribed",
  "Not sent: rejected",
  "Soft bounce",
  "Hard bounce",
];
// Ten years either way: Date stays valid.
const MAX_CLOCK_OFFSET_MS = 10 * 366 * 24 * 3600 * 1000;

const body = (request) => request.json().catch(() => null);

/** Each control by `METHOD /path`: `(sb, request, url)` → its answer. */
export const CONTROLS = {
  "GET /requests": async (sb) => {
    const storage = sb.ctx.storage;
    // Zero-padded sequence keys list in arrival order.
    const requests = [...(await storage.list({ prefix: "req:" })).values()];
    return json(200, { requests, attempts: (await storage.get("attempts")) ?? 0 });
  },
  "PUT /keys": setKeys,
  "POST /faults": setFaults,
  "GET /faults": faultsInForce,
  "DELETE /faults": async (sb) => {
    await sb.ctx.storage.delete(Object.values(FAULT_KEYS));
    return json(200, { faults: null });
  },
  "POST /pace": setPace,
  "GET /pace": async (sb) => json(200, { pace: (await sb.ctx.storage.get("pace")) ?? null, held: sb.held ?? 0, heldOut: (await sb.ctx.storage.get("heldOut")) ?? 0 }),
  "DELETE /pace": async (sb) => {
    await sb.ctx.storage.delete("pace");
    sb.paceChanged();
    return json(200, { pace: null });
  },
  "GET /records": async (sb) => json(200, { records: [...(await sb.ctx.storage.list({ prefix: "rec:" })).values()].map((r) => r.record) }),
  "POST /responses": respond,
  "POST /delivery-status": setDeliveryStatus,
  "GET /clock": async (sb) => json(200, { offsetMs: (await sb.ctx.storage.get("clock")) ?? 0, now: new Date(await sb.now()).toISOString() }),
  "POST /clock": setClock,
  "DELETE /clock": async (sb) => {
    await sb.ctx.storage.delete("clock");
    return json(200, { offsetMs: 0 });
  },
  "GET /calls": async (sb, request, url) => json(200, await calls(sb.ctx.storage, url.searchParams.get("key"))),
  "DELETE /calls": async (sb) => {
    const storage = sb.ctx.storage;
    await sb.serially(async () => storage.delete([...(await storage.list({ prefix: "calls:" })).keys(), ...(await storage.list({ prefix: "rate:" })).keys()]));
    return json(200, { data: 0, employees: 0, perMinuteMax: 0 });
  },
  "POST /reset": async (sb) => {
    await sb.serially(() => sb.ctx.storage.deleteAll());
    sb.paceChanged();
    return json(200, { reset: true });
  },
};

async function setKeys(sb, request) {
  const storage = sb.ctx.storage;
  const { keys, secrets = {} } = (await body(request)) ?? {};
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string" && k) || !isObject(secrets) || !Object.values(secrets).every((s) => typeof s === "string" && s)) {
    return json(400, { error: "Body must be {keys: [non-empty strings], secrets?: {key: non-empty string}}." });
  }
  const merged = { ...((await storage.get("secrets")) ?? DEFAULT_SECRETS), ...secrets };
  await storage.put({ keys, secrets: merged });
  // Which keys can sign, never the secrets themselves.
  return json(200, { keys, withSecret: keys.filter((k) => Object.hasOwn(merged, k)) });
}

async function setFaults(sb, request) {
  const { status, count = 1, retryAfter, route: faultRoute = "requests" } = (await body(request)) ?? {};
  if (!FAULT_STATUSES.includes(status) || !Number.isInteger(count) || count < 0 || !Object.hasOwn(FAULT_KEYS, faultRoute)) {
    return json(400, { error: 'Body must be {status: 400|403|429|500|503|"timeout", count: n, retryAfter?, route?: "requests"|"data"|"employees"}.' });
  }
  await sb.ctx.storage.put(FAULT_KEYS[faultRoute], { status, count, retryAfter });
  return json(200, { faults: { status, count, retryAfter, route: faultRoute } });
}

async function faultsInForce(sb) {
  const routes = Object.keys(FAULT_KEYS);
  const held = await Promise.all(routes.map((r) => sb.ctx.storage.get(FAULT_KEYS[r])));
  const live = (f) => (f && f.count > 0 ? { status: f.status, count: f.count, retryAfter: f.retryAfter } : null);
  return json(200, { faults: Object.fromEntries(routes.map((r, i) => [r, live(held[i])])) });
}

async function setPace(sb, request) {
  const { delayMs = 0, jitterMs = 0, acceptUpTo = null, holdMs = HOLD_MS } = (await body(request)) ?? {};
  const ms = (x) => Number.isInteger(x) && x >= 0 && x <= 60_000;
  if (!ms(delayMs) || !ms(jitterMs) || !ms(holdMs) || !(acceptUpTo === null || (Number.isInteger(acceptUpTo) && acceptUpTo >= 0))) {
    return json(400, { error: "Body must be {delayMs?, jitterMs?, holdMs?: 0–60000, acceptUpTo?: n | null}." });
  }
  const pace = { delayMs, jitterMs, acceptUpTo, holdMs };
  await sb.ctx.storage.put("pace", pace);
  sb.paceChanged();
  return json(200, { pace });
}

async function setClock(sb, request) {
  const { offsetMs } = (await body(request)) ?? {};
  if (!Number.isSafeInteger(offsetMs) || Math.abs(offsetMs) > MAX_CLOCK_OFFSET_MS) {
    return json(400, { error: "Body must be {offsetMs: integer}, within ten years." });
  }
  await sb.ctx.storage.put("clock", offsetMs);
  return json(200, { offsetMs, now: new Date(await sb.now()).toISOString() });
}

/** `POST /responses`: the customer answers the latest survey of an interaction. */
async function respond(sb, request) {
  const answer = await body(request);
  const { ext_interaction_id: id, rating, comment } = isObject(answer) ? answer : {};
  if (typeof id !== "string" || !id) return json(400, { error: "ext_interaction_id must be a non-empty string.", code: "invalid_interaction" });
  if (!Number.isInteger(rating) || rating < 1 || rating > 5) return json(400, { error: "rating must be an integer from 1 to 5.", code: "invalid_rating" });
  if (comment !== undefined && typeof comment !== "string") return json(400, { error: "comment must be a string.", code: "invalid_comment" });
  if (comment !== undefined && new TextEncoder().encode(comment).length > COMMENT_MAX_BYTES) {
    return json(400, { error: "comment must be at most 10 KB.", code: "comment_too_long" });
  }
  return changeLatest(sb, id, async (stored) => {
    const { record, survey } = stored;
    const at = new Date(await sb.now()).toISOString();
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
async function setDeliveryStatus(sb, request) {
  const change = await body(request);
  const { ext_interaction_id: id, status } = isObject(change) ? change : {};
  if (typeof id !== "string" || !id) return json(400, { error: "ext_interaction_id must be a non-empty string.", code: "invalid_interaction" });
  if (!DELIVERY_STATUSES.includes(status)) return json(400, { error: `status must be one of: ${DELIVERY_STATUSES.join(", ")}.`, code: "invalid_status" });
  return changeLatest(sb, id, async (stored) => {
    const { record } = stored;
    const at = new Date(await sb.now()).toISOString();
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
async function changeLatest(sb, id, change) {
  const storage = sb.ctx.storage;
  return sb.serially(async () => {
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
