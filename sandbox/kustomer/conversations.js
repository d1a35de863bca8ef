// Conversations' changes and the events they fire: `PUT` (what the card sends), `PATCH` (how
// the edge writes a survey's outcome), and the close/reopen controls (which run the app's
// workflow action). `PATCH /v1/conversations/{id}` `{custom}` checks each value against its
// name's type suffix, merges, fires the update event and runs the org's workflows on it (a
// custom-only change runs none of the app's: its trigger is status → done). `GET /writes` counts
// the PATCH calls by conversation (`{total, byConversation, applied, events}`); `/reset` and
// `/stats/reset` clear it.
import { apiError, isObject, json, originOf, readJson } from "./http.js";
import { ATTRIBUTE_TYPES, typeSuffix } from "./apps.js";
import { NO_EDGE, postToEdge, runWorkflows, updateEvent } from "./workflows.js";
import { deleteKeys, putRecords, record } from "./store.js";

const KEPT_UPDATE_EVENTS = 50; // the latest update events a PATCH fired, shown by GET /writes
const KEPT_TEXT_CHARACTERS = 200; // of each text in a kept update event
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

// What a value is, for an error message (never the value itself: it may be long).
const describeValue = (v) => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "string" ? `text of ${[...v].length} characters` : `a ${typeof v}`);

// `PUT /v1/conversations/:id`: accepts `{custom, ...attributes}` (what the card sends) or
// `{data: {attributes}}`.
export async function putConversation(sb, request, key, id) {
  const body = await readJson(request);
  const edits = isObject(body?.data?.attributes) ? body.data.attributes : body;
  if (!isObject(edits)) return apiError(400, "bad_request", "Bad Request", "Body must be a JSON object.");
  if (edits.custom !== undefined && !isObject(edits.custom)) {
    return apiError(400, "bad_request", "Bad Request", "custom must be an object.");
  }
  const rec = await record(sb.ctx.storage, "conversation", id, key.org);
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
  await putRecords(sb.ctx.storage, rec.org, [rec.resource]);
  return json(200, { data: rec.resource });
}

/**
 * `PATCH /v1/conversations/{id}` `{custom: {...}}`: how the edge writes a survey's outcome.
 * Merges the custom attributes (null removes one) after checking each value against the type
 * its name's suffix declares; every bad attribute is one error of the 400. Then fires the
 * `kustomer.conversation.update` event with `changes.attributes.custom` and runs the org's
 * workflows on it, as Kustomer does: a custom-only change leaves the status as it was, so the
 * app's close workflow (status → done) does not run.
 */
export async function patchConversation(sb, request, key, id) {
  const body = await readJson(request);
  const errors = customErrors(body);
  if (errors.length) {
    return json(400, { errors: errors.map(([code, detail, meta]) => ({ status: "400", code, title: "Bad Request", detail, meta })) });
  }
  const rec = await record(sb.ctx.storage, "conversation", id, key.org);
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
  await putRecords(sb.ctx.storage, rec.org, [conversation]);

  // The event Kustomer fires; the shape of a custom change is a guess (kustomer-apps.md §8).
  const changes = { attributes: Object.keys(after).length ? { custom: { op: "replace", before, after } } : {}, relationships: {} };
  const event = updateEvent(rec.org, conversation, changes, now);
  const { workflows, edge } = await runWorkflows(sb, rec.org, event, originOf(request));
  await keepUpdateEvent(sb.ctx.storage, { conversation: id, at: now, changes, workflows, edge });
  return json(200, { data: conversation });
}

/** What is wrong with a PATCH body: [code, detail, meta] for the body or each bad attribute. */
function customErrors(body) {
  if (!isObject(body) || !isObject(body.custom)) {
    return [["invalid_type", "The body must be an object {custom: {attribute: value, ...}}.", { expected: "object" }]];
  }
  const unknown = Object.keys(body).find((k) => k !== "custom");
  if (unknown !== undefined) {
    // The sandbox models only the custom attributes' writes: anything else is a caller's mistake here.
    return [["unknown_key", `Unknown field "${unknown}": the sandbox's PATCH takes {custom: {...}} only.`, { key: unknown }]];
  }
  const errors = [];
  for (const [attribute, value] of Object.entries(body.custom)) {
    const suffix = typeSuffix(attribute);
    if (!suffix) {
      errors.push(["unknown_attribute_type", `"${attribute}" names no type: a custom attribute ends in Str, Txt, Num, At, Bool, Url or Id.`, { attribute }]);
    } else if (value !== null && !CUSTOM_VALUES[suffix].ok(value)) {
      const { expected } = CUSTOM_VALUES[suffix];
      errors.push(["invalid_value", `"${attribute}" takes ${expected} or null, not ${describeValue(value)}.`, { attribute, expected: ATTRIBUTE_TYPES[suffix] }]);
    }
  }
  return errors;
}

// `POST /conversations/:id/close|reopen` (a control): changes the status, then posts the
// `kustomer.conversation.update` event to the edge with the settings as headers, as the app's
// workflow action does.
export async function changeStatus(sb, request, id, after, origin) {
  if (!sb.env.EDGE) return json(500, { error: NO_EDGE });
  const edits = (await readJson(request)) ?? {};
  if (!isObject(edits)) return json(400, { error: "Body must be a JSON object {assignedUsers?, custom?}." });
  const rec = await record(sb.ctx.storage, "conversation", id);
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
  await putRecords(sb.ctx.storage, rec.org, [conversation]);

  const changes = { attributes: { status: { op: "replace", before, after } }, relationships: {} };
  const event = updateEvent(rec.org, conversation, changes, now, isObject(edits.custom));
  const edge = await postToEdge(sb, rec.org, event, origin);
  return json(edge.status ? 200 : 502, { conversation: { data: conversation }, edge });
}

// ---- outcome writes --------------------------------------------------------------------------

/**
 * Counts one PATCH call (every one, rejected too, as the budget does) or one applied write.
 * Each conversation's count is its own stored value, so a run over many conversations never
 * outgrows one.
 */
export async function countWrite(storage, { conversation, applied = false }) {
  const totals = (await storage.get("writes")) ?? { total: 0, applied: 0 };
  if (applied) totals.applied++;
  else {
    totals.total++;
    const storeKey = `writes:conversation:${conversation}`;
    await storage.put(storeKey, ((await storage.get(storeKey)) ?? 0) + 1);
  }
  await storage.put("writes", totals);
}

/** Keeps the latest update events PATCH fired (what changed, which workflows ran), long texts clipped. */
async function keepUpdateEvent(storage, entry) {
  const events = (await storage.get("update-events")) ?? [];
  events.push(clipTexts(entry));
  await storage.put("update-events", events.slice(-KEPT_UPDATE_EVENTS));
}

/** `GET /writes`: the PATCH calls in all and by conversation, those applied, the latest events. */
export async function writesDocument(storage) {
  const { total, applied } = (await storage.get("writes")) ?? { total: 0, applied: 0 };
  const byConversation = {};
  const prefix = "writes:conversation:";
  for (const [k, n] of await storage.list({ prefix })) byConversation[k.slice(prefix.length)] = n;
  return json(200, { total, byConversation, applied, events: (await storage.get("update-events")) ?? [] });
}

/** Forgets the outcome writes' counts and events. */
export async function clearWrites(storage) {
  await deleteKeys(storage, ["writes", "update-events", ...(await storage.list({ prefix: "writes:conversation:" })).keys()]);
}

// A copy with every text longer than KEPT_TEXT_CHARACTERS cut there (and marked with "…").
function clipTexts(value) {
  if (typeof value === "string") return [...value].length > KEPT_TEXT_CHARACTERS ? `${[...value].slice(0, KEPT_TEXT_CHARACTERS).join("")}…` : value;
  if (Array.isArray(value)) return value.map(clipTexts);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clipTexts(v)]));
  return value;
}
