// The sandbox's controls (no auth), under the same prefix as the API: close/reopen
// conversations (which calls the edge as the app's workflow would), add and list data, delete a
// customer, count calls, set the API budget, inject faults, hold answers back and reset.
// `POST /latency` holds every /v1 answer back a random time after the call is counted.
// `DELETE /customers/{id}` deletes a customer as Kustomer does (no event; `GET` answers 404), and
// `POST /v1/customers/search` with `includeDeleted: true` finds them (resources.js).
import CARDS_SDK from "./cards-sdk-source";
import { PREFIX, apiError, isObject, json, readJson } from "./http.js";
import { budgetDocument, clearAccounting, clearBudget, setBudget } from "./budget.js";
import { changeStatus, clearWrites, writesDocument } from "./conversations.js";
import { deleteCustomer } from "./resources.js";
import { putRecords, record, seedRecords } from "./store.js";
import * as seed from "./seed.js";

const FAULT_TITLES = { 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable" };
const MAX_LATENCY_MS = 30_000;

/** A control's answer: `path` is below the mount point. */
export async function control(sb, request, path, url) {
  const storage = sb.ctx.storage;
  const m = request.method;
  const status = /^\/conversations\/([^/]+)\/(close|reopen)$/.exec(path);
  if (m === "POST" && status) {
    return changeStatus(sb, request, decodeURIComponent(status[1]), status[2] === "close" ? "done" : "open", url.origin);
  }
  if (m === "POST" && path === "/conversations") return addData(storage, request);
  const customer = /^\/customers\/([^/]+)$/.exec(path);
  if (m === "DELETE" && customer) return deleteCustomer(storage, decodeURIComponent(customer[1]));
  if (m === "GET" && path === "/conversations") return listConversations(storage);
  if (m === "GET" && path === "/cards-sdk.js") {
    return new Response(CARDS_SDK, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" } });
  }
  if (m === "GET" && path === "/stats") return json(200, (await storage.get("stats")) ?? { total: 0, byRoute: {} });
  if (m === "GET" && path === "/writes") return writesDocument(storage);
  if (m === "POST" && path === "/stats/reset") return resetStats(storage);
  if (m === "GET" && path === "/budget") return budgetDocument(storage, url.searchParams.get("org"));
  if (m === "PUT" && path === "/budget") return setBudget(storage, request);
  if (m === "DELETE" && path === "/budget") return clearBudget(storage, url.searchParams.get("org"));
  if (m === "POST" && path === "/faults") return setFaults(storage, request);
  if (m === "POST" && path === "/latency") return setLatency(sb, request);
  if (m === "GET" && path === "/latency") return json(200, { latency: (await storage.get("latency")) ?? null });
  if (m === "DELETE" && path === "/latency") {
    await storage.delete("latency");
    return json(200, { latency: null });
  }
  if (m === "DELETE" && path === "/faults") {
    await storage.delete("faults");
    return json(200, { faults: null });
  }
  if (m === "POST" && path === "/reset") {
    await storage.deleteAll();
    await seedRecords(storage);
    return json(200, { reset: true });
  }
  return json(404, { error: `No sandbox control ${m} ${PREFIX}${path}.` });
}

async function resetStats(storage) {
  await storage.delete("stats");
  await clearWrites(storage); // the outcome writes' counts too (they are calls)
  await clearAccounting(storage); // the budget's per-window accounting too
  return json(200, { total: 0, byRoute: {} });
}

// ---- data ------------------------------------------------------------------------------------

// The seeded org's conversations with their customer's name, for the local home page.
async function listConversations(storage) {
  const records = await storage.list({ prefix: "rec:conversation:", limit: 500 });
  const list = [];
  for (const { org, resource } of records.values()) {
    if (org !== seed.SEED_ORG) continue;
    const customerId = resource.relationships?.customer?.data?.id;
    const customer = customerId && (await record(storage, "customer", customerId, org));
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

// `POST /conversations`. Body: one set or a list of sets {org?, conversation, customer?, users?, tags?}.
async function addData(storage, request) {
  const body = await readJson(request);
  const sets = Array.isArray(body) ? body : [body];
  const ids = [];
  for (const set of sets) {
    if (!isObject(set?.conversation) || typeof set.conversation.id !== "string") {
      return json(400, { error: "Each set needs conversation: {id, attributes?, relationships?}." });
    }
    await putRecords(storage, set.org ?? seed.SEED_ORG, resourcesOf(set, new Date().toISOString()));
    ids.push(set.conversation.id);
  }
  return json(201, { created: ids.length, ids });
}

/** The resources of one set of test data, the conversation with the defaults of a new one. */
function resourcesOf(set, now) {
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
  return resources;
}

// ---- faults and latency ----------------------------------------------------------------------

async function setFaults(storage, request) {
  const { status, count = 1, retryAfter, rateLimitReset, method, path } = (await readJson(request)) ?? {};
  const text = (v) => v === undefined || (typeof v === "string" && v.length <= 2048);
  if (![429, 500, 503].includes(status) || !Number.isInteger(count) || count < 0 || !text(method) || !text(path)) {
    return json(400, { error: "Body must be {status: 429|500|503, count: n, retryAfter?, rateLimitReset?, method?, path?}." });
  }
  const faults = { status, count, retryAfter, rateLimitReset, method, path };
  await storage.put("faults", faults);
  return json(200, { faults });
}

/**
 * The injected fault's answer to this call, using one up, or null. A fault for one call
 * (`method` and `path`) answers only that call: others that happen to come first (the outcome
 * reads, a page's own reads) do not use it up.
 */
export async function takeFault(storage, method, path, rateHeaders) {
  const faults = await storage.get("faults");
  const aimed = (faults?.method ?? method) === method && (faults?.path ?? path) === path;
  if (!(faults?.count > 0 && aimed)) return null;
  faults.count--;
  await storage.put("faults", faults);
  const { status, retryAfter, rateLimitReset } = faults;
  const headers = { ...rateHeaders };
  if (status === 429) headers["x-ratelimit-remaining"] = "0";
  if (rateLimitReset !== undefined) headers["x-ratelimit-reset"] = String(rateLimitReset);
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
  return apiError(status, `sandbox_fault_${status}`, FAULT_TITLES[status], "Fault injected by the sandbox.", headers);
}

/**
 * `POST /latency` `{minMs?, maxMs, seed?}`: every /v1 answer is held back a random time from
 * `minMs` (default 0) to `maxMs` after the call is counted and its headers written, as when a
 * busy caller reads its answers late. `DELETE /latency` answers at once again.
 */
async function setLatency(sb, request) {
  const usage = "Body must be {minMs?: ms, maxMs: ms, seed?: n}: whole numbers, 0 <= minMs <= maxMs <= 30000.";
  const body = await readJson(request);
  if (!isObject(body)) return json(400, { error: usage });
  const { minMs = 0, maxMs, seed } = body;
  const whole = (n) => Number.isSafeInteger(n) && n >= 0;
  if (!whole(minMs) || !whole(maxMs) || minMs > maxMs || maxMs > MAX_LATENCY_MS || (seed !== undefined && !whole(seed))) {
    return json(400, { error: usage });
  }
  const latency = { minMs, maxMs, ...(seed === undefined ? {} : { seed }) };
  sb.latencyState = undefined;
  await sb.ctx.storage.put("latency", latency);
  return json(200, { latency });
}

/** Waits the latency set with `POST /latency`, if any: answers counted and worded now, read later. */
export async function holdBack(sb) {
  const latency = await sb.ctx.storage.get("latency");
  if (latency) await new Promise((resolve) => setTimeout(resolve, latencyDraw(sb, latency)));
}

/** One of `[minMs, maxMs]`, drawn from the latency's seed (mulberry32) when it has one. */
function latencyDraw(sb, { minMs, maxMs, seed }) {
  let r = Math.random();
  if (seed !== undefined) {
    sb.latencyState = (sb.latencyState ?? seed) + 0x6d2b79f5 >>> 0;
    let t = sb.latencyState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return minMs + Math.floor(r * (maxMs - minMs + 1));
}
