// The org's workflows: the `kustomer.conversation.update` event a change fires, which of the
// installed apps' workflows it starts (kustomer-apps.md §5), and the app's workflow action, which
// posts the event to the edge with the org's settings as headers.
import { DEFINITION, SETTING_SPECS, orgSettings } from "./settings.js";
import { definitionsOf } from "./apps.js";
import { isObject, jsonOrText } from "./http.js";
import * as seed from "./seed.js";

const ORG_NAMES = { [seed.SEED_ORG]: "sandbox" };
export const NO_EDGE = "No EDGE service binding: bind the edge worker as EDGE to call it.";

// ---- the settings the app's workflow action sends, from the app definition ----------------------
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

/** The `kustomer.conversation.update` event (kustomer-apps.md §6) for a change of a conversation. */
export function updateEvent(org, conversation, changes, now, customChanged = Boolean(changes.attributes?.custom)) {
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
 * Runs the org's workflows on an event, as Kustomer does: the names of those it starts, and the
 * edge's answer when one did (null when none did).
 */
export async function runWorkflows(sb, org, event, origin) {
  const workflows = workflowsTriggeredBy(await definitionsOf(sb.ctx.storage, org), event);
  const edge = workflows.length ? await postToEdge(sb, org, event, origin) : null;
  return { workflows, edge };
}

/**
 * Posts a `kustomer.conversation.update` event to the edge with the org's settings as headers,
 * as the app's workflow action does: {status, body} of the edge's answer, or {status: 0, error}.
 */
export async function postToEdge(sb, org, event, origin) {
  if (!sb.env.EDGE) return { status: 0, error: NO_EDGE };
  const settings = await orgSettings(sb.ctx.storage, org, origin);
  const headers = { "content-type": "application/json", ...settingHeaders(settings) };
  if (!settings.stellaApiUrl) headers["x-stella-api-url"] = `${origin}/sandbox/stella`;
  try {
    const res = await sb.env.EDGE.fetch("http://edge/v1/kustomer/conversation-closed", {
      method: "POST",
      headers,
      body: JSON.stringify(event),
    });
    return { status: res.status, body: jsonOrText(await res.text()) };
  } catch (e) {
    return { status: 0, error: String(e?.message ?? e) };
  }
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
