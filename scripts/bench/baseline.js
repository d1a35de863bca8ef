// The benchmark's JavaScript baseline (bench tooling, never shipped): `POST
// /v1/kustomer/conversation-closed` written as a competent engineer would write it in plain
// JavaScript, doing the edge's work per close event: validate the settings headers as
// src/settings/ does, judge the event as src/decision/plan.rs `plan_event` does, learn the key's org
// from Kustomer (cached), then one RPC to the org's Durable Object, which checks the app secret against
// the fingerprint Kustomer's settings vouch for (read once), upserts the job with one SQLite statement
// (the customer's keyed digest in the forget index's indexed column, as the edge keeps it),
// keeps the settings sealed and re-arms the alarm.
// It never sends a survey: the bench's jobs are due in a day and the alarm only logs.
import { DurableObject } from "cloudflare:workers";

const MAX_BODY_BYTES = 1 << 20; // src/error.rs MAX_INPUT_BYTES
const MAX_CLOCK_SKEW_MS = 120_000; // src/decision/plan.rs MAX_CLOCK_SKEW_SECONDS
const ORG_CACHE_MS = 5 * 60_000; // the gateway keeps Kustomer's key → org answer this long
const TAG_READ_ROLES = ["org.permission.tag.read", "org.admin.tag.read"];

// src/settings/fields.rs FIELDS (all the settings the edge reads from a close's headers, keeps sealed
// and validates): [key, kind, default (blank → this; none: required), min, max].
const FIELDS = [
  ["stellaApiKey", "secret"],
  ["stellaApiSecret", "secret", ""],
  ["kustomerApiKey", "secret"],
  ["kustomerApiUrl", "url", "https://api.kustomerapp.com"],
  ["kustomerUrl", "url"],
  ["secondsUntilSend", "int", "86400", 0, 2_592_000],
  ["stellaApiUrl", "url", "https://api.stellaconnect.net"],
  ["channelMap", "map", "voice=phone"],
  ["surveyedChannels", "list", ""],
  ["brand", "text", ""],
  ["brandMap", "pairs", ""],
  ["sendLanguage", "bool", "false"],
  ["languageMap", "pairs", ""],
  ["customProperties", "pairs", ""],
  ["resurveyAfterDays", "int", "0", 0, 3650],
  ["kustomerBudgetShare", "int", "50", 1, 100],
].map(([key, kind, fallback, min, max]) => ({ key, kind, fallback, min, max, header: "x-" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()) }));

/** A refusal on its way to the caller as `{error: {code, message, ...}}`. */
class Refusal extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    Object.assign(this, { status, code, extra });
  }
}

const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const refuse = (e) => json(e.status, { error: { code: e.code, message: e.message, ...e.extra } });

// ---- settings (src/settings/) ---------------------------------------------------------------

const CONTROL = /\p{Cc}/u;
const isLoopback = (host) => host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
const label = (l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l);
const HOSTS = {
  kustomerApiUrl: (h) => h === "api.kustomerapp.com" || /^api\.prod\d+\.kustomerapp\.com$/.test(h) || (h.endsWith(".api.kustomerapp.com") && label(h.slice(0, -20))),
  kustomerUrl: (h) => h.endsWith(".kustomerapp.com") && label(h.slice(0, -16)) && h !== "api.kustomerapp.com",
  stellaApiUrl: (h) => h === "stellaconnect.net" || (h.endsWith(".stellaconnect.net") && h.slice(0, -18).split(".").every(label)),
};
// "a=b, c=d" or one per line: trimmed, non-empty items.
const items = (s) => s.split(/[,\n;]/).map((i) => i.trim()).filter(Boolean);
const channel = (s) => (s = s.trim()) && [...s].length <= 100 && !CONTROL.test(s) && !s.includes("=") ? s : null;

/** One field's value, parsed; throws [code, message] when it is not valid. */
function parseField(f, s, allowLoopback) {
  switch (f.kind) {
    case "secret":
      if (/\s/.test(s) || CONTROL.test(s)) throw ["invalid_key", "has spaces or line breaks in it"];
      if ([...s].length > 4096) throw ["invalid_key", "is far too long to be an API key"];
      return s;
    case "url": {
      let url;
      try {
        url = new URL(s);
      } catch {
        throw ["invalid_url", "must be a full address"];
      }
      const local = allowLoopback && isLoopback(url.hostname);
      if (url.protocol !== "https:" && !(url.protocol === "http:" && local)) throw [url.protocol === "http:" ? "insecure_url" : "invalid_url", "must start with https://"];
      if (url.username || url.password || url.search || url.hash || (!local && (url.port || url.pathname !== "/"))) throw ["invalid_url", "must be just the address, with nothing after it"];
      if (!local && !HOSTS[f.key](url.hostname)) throw ["host_not_allowed", `is not an address for this field (${url.hostname})`];
      return url.href.replace(/\/+$/, "");
    }
    case "int": {
      if (!/^[+-]?\d+$/.test(s)) throw ["not_an_integer", "must be a whole number"];
      const n = Number(s);
      if (!(n >= f.min && n <= f.max)) throw ["out_of_range", `must be between ${f.min} and ${f.max}`];
      return n;
    }
    case "map": {
      const pairs = [];
      for (const item of items(s)) {
        const at = item.indexOf("=");
        const [k, v] = at < 0 ? [] : [channel(item.slice(0, at)), channel(item.slice(at + 1))];
        if (!k || !v) throw ["invalid_channel_map", `write kustomer=stella pairs; "${item}" is not one`];
        // A channel named twice keeps its first pair, the one a lookup would apply.
        if (!pairs.some(([pk]) => pk.toLowerCase() === k.toLowerCase())) pairs.push([k, v]);
      }
      if (!pairs.some(([k]) => k.toLowerCase() === "voice")) pairs.push(["voice", "phone"]);
      return Object.fromEntries(pairs);
    }
    case "list": {
      const names = items(s).map(channel);
      if (names.includes(null)) throw ["invalid_channel_list", "list channel names separated by commas"];
      return names.filter((n, i) => names.findIndex((m) => m.toLowerCase() === n.toLowerCase()) === i);
    }
    case "pairs": {
      // name=value pairs (the brand and language maps, the custom properties): each side
      // present, short, on one line.
      const pairs = [];
      for (const item of items(s)) {
        const at = item.indexOf("=");
        const [k, v] = at < 0 ? [] : [item.slice(0, at).trim(), item.slice(at + 1).trim()];
        if (!k || !v || [...k].length > 200 || [...v].length > 200 || CONTROL.test(item) || v.includes("=")) throw ["invalid_pairs", `write name=value pairs; "${item}" is not one`];
        pairs.push([k, v]);
      }
      return pairs;
    }
    case "text":
      if ([...s].length > 200) throw ["too_long", "can be at most 200 characters"];
      return s || null;
    case "bool": {
      const word = s.toLowerCase();
      if (["true", "on", "yes", "1"].includes(word)) return true;
      if (["false", "off", "no", "0"].includes(word)) return false;
      throw ["not_a_boolean", "must be on or off"];
    }
  }
}

/** Every field parsed, or a Refusal naming every field in error at once. */
function validateSettings(raw, allowLoopback) {
  const settings = {};
  const fields = [];
  for (const f of FIELDS) {
    const given = raw[f.key]?.trim();
    const value = given || f.fallback;
    try {
      if (value === undefined) throw ["required", "is required"];
      settings[f.key] = parseField(f, value.trim(), allowLoopback);
    } catch ([code, message]) {
      fields.push({ field: f.key, code, message: `${f.key} ${message}.` });
    }
  }
  if (fields.length) throw new Refusal(400, "invalid_settings", `The app's settings are not valid: check ${fields.map((e) => e.field).join(", ")}.`, { fields });
  return settings;
}

const encodedKnown = new Map(); // the known side of the comparisons below, encoded once (a few texts per isolate)
/** Text equality in constant time (the texts hold keys, and anyone may send a guess). */
function sameText(known, text) {
  if (known.length !== text.length) return false;
  let a = encodedKnown.get(known);
  if (a === undefined) {
    if (encodedKnown.size >= 16) encodedKnown.clear(); // a bound, not an eviction policy
    encodedKnown.set(known, (a = encoder.encode(known)));
  }
  const b = encoder.encode(text);
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

let lastSettings = null; // {text: the raw settings as JSON, settings}: an org's workflow sends the same ones every close
/**
 * The settings validated, as the edge's gateway does: once per isolate for the raw headers an
 * org's closes all carry, kept by their JSON text and reused while the next close's text is the same.
 */
function settingsOf(raw, allowLoopback) {
  const text = JSON.stringify(raw); // also what the Durable Object keeps
  if (lastSettings && sameText(lastSettings.text, text)) return lastSettings;
  lastSettings = { text, settings: validateSettings(raw, allowLoopback) };
  return lastSettings;
}

// ---- the event (src/kustomer.rs parse_event, src/decision/plan.rs plan_event) ------------------

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const parseTime = (s) => (typeof s === "string" && RFC3339.test(s.trim()) ? Date.parse(s.trim()) : NaN);

function checkId(id, path) {
  if (typeof id !== "string") throw new Refusal(400, "invalid_shape", `${path} must be text.`, { path });
  const why = !id.trim() ? "is empty" : id === "." || id === ".." ? "is a path step, not an id" : (id.length > 256 && [...id].length > 256) ? "is longer than any Kustomer id" : CONTROL.test(id) ? "holds control characters" : null;
  if (why) throw new Refusal(400, "invalid_id", `${path} ${why}.`, { path });
}

/** The close to schedule, or the reply that says why there is none. */
function plan(event, secondsUntilSend, now) {
  const data = event?.data;
  const attrs = data?.attributes ?? {};
  const change = event?.changes?.attributes?.status;
  if (!isObject(event) || typeof event.name !== "string" || !isObject(data) || !isObject(attrs) || (change !== undefined && change !== null && !isObject(change))) {
    throw new Refusal(400, "invalid_shape", "The event is not a Kustomer event.");
  }
  checkId(data.id, "event.data.id");
  if (event.id != null) checkId(event.id, "event.id");
  if (event.org) checkId(event.org, "event.org");
  const ignored = (reason, message) => ({ reply: { status: 200, body: { status: "ignored", reason, message } } });
  if (event.name !== "kustomer.conversation.update") return ignored("not_a_conversation_update", "Only kustomer.conversation.update events schedule surveys.");
  if (attrs.status !== "done" || (change && change.after !== "done")) return ignored("not_closed", "The conversation is not closed.");
  if (!change || change.before === "done") return ignored("status_unchanged", "The conversation was already closed; this update changed something else.");
  const closedAtMs = [attrs.modificationHistory?.statusAt, attrs.updatedAt, event.createdAt].map(parseTime).find(Number.isFinite) ?? now;
  if (closedAtMs > now + MAX_CLOCK_SKEW_MS) throw new Refusal(400, "close_in_future", "The close time is later than now: a close is reported after it happens.");
  if (!event.org) throw new Refusal(400, "missing_org", "The event does not name its org (`org`).");
  // The customer, for the forget index (src/kustomer.rs `read_close`).
  const customerId = data.relationships?.customer?.data?.id;
  if (customerId != null && typeof customerId !== "string") throw new Refusal(400, "invalid_shape", "event.data.relationships.customer.data.id is not text.");
  return { conversationId: data.id, org: event.org, closedAtMs, sendAtMs: closedAtMs + secondsUntilSend * 1000, eventId: event.id ?? null, customerId: customerId || null };
}

// ---- the gateway ----------------------------------------------------------------------------

/**
 * The body as text, never read past the cap whatever the headers say (chunked has no length):
 * null when larger. A declared length is read in one native call, as the edge's entry does.
 */
async function readText(request) {
  if (!request.body) return "";
  const length = request.headers.get("content-length");
  if (length !== null) return Number(length) > MAX_BODY_BYTES ? null : request.text();
  const decoder = new TextDecoder();
  let size = 0;
  let text = "";
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) return null;
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

const encoder = new TextEncoder();
const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
const FINGERPRINT_CONTEXT = encoder.encode("stella-connect app secret fingerprint v1");
let lastSecret = null; // [secret, fingerprint] of the last close: an org's closes all carry the same
/** The app secret's fingerprint (HMAC-SHA256 of a fixed text keyed with it), the last one kept. */
async function fingerprint(secret) {
  if (lastSecret && sameText(lastSecret[0], secret)) return lastSecret[1];
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const value = `v1:${hex(await crypto.subtle.sign("HMAC", key, FINGERPRINT_CONTEXT))}`;
  lastSecret = [secret, value];
  return value;
}

const schedulerIds = new Map(); // org → its Durable Object's id, per isolate (as the edge keeps them)
const orgs = new Map(); // `${apiUrl} ${key}` → {org, roles, expires}: per isolate, saves a call per event

/** The org and roles Kustomer reports for the key (GET /v1/auth/tokens/current), cached. */
async function tokenInfo(apiUrl, key, now) {
  const cacheKey = `${apiUrl} ${key}`;
  const hit = orgs.get(cacheKey);
  if (hit && hit.expires > now) return hit;
  let response;
  try {
    response = await fetch(`${apiUrl}/v1/auth/tokens/current`, { headers: { authorization: `Bearer ${key}`, accept: "application/json" } });
  } catch (e) {
    throw new Refusal(503, "kustomer_unavailable", `Kustomer could not be reached: ${e.message}`);
  }
  if (response.status === 401 || response.status === 403) throw new Refusal(401, "kustomer_key_rejected", "Kustomer did not accept the Kustomer API key.");
  if (response.status === 408 || response.status === 429 || response.status >= 500) throw new Refusal(503, "kustomer_unavailable", `Kustomer answered ${response.status}.`);
  const data = response.ok ? (await response.json().catch(() => null))?.data : null;
  const org = data?.attributes?.org ?? data?.relationships?.org?.data?.id;
  const roles = data?.attributes?.roles ?? [];
  if (typeof org !== "string" || !Array.isArray(roles)) throw new Refusal(502, "kustomer_error", `Kustomer's token answer (${response.status}) is not one.`);
  if (orgs.size > 10_000) orgs.clear(); // a bound, not an eviction policy
  const info = { org, roles, expires: now + ORG_CACHE_MS };
  orgs.set(cacheKey, info);
  return info;
}

async function conversationClosed(request, env) {
  const now = Date.now();
  const secret = request.headers.get("x-app-secret")?.trim() ?? "";
  if (secret.length < 16 || secret.length > 256 || /\s/.test(secret) || CONTROL.test(secret)) {
    throw new Refusal(401, "missing_app_secret", "Only the app's own workflow and pages may do this: they send the org's app secret in x-app-secret.");
  }
  const raw = {};
  for (const f of FIELDS) {
    const value = request.headers.get(f.header);
    if (value !== null) raw[f.key] = value;
  }
  const text = await readText(request);
  if (text === null) throw new Refusal(413, "too_large", `The body is over ${MAX_BODY_BYTES} bytes.`);
  let event;
  try {
    event = JSON.parse(text);
  } catch (e) {
    throw new Refusal(400, "malformed_json", e.message);
  }
  const { text: settingsText, settings } = settingsOf(raw, env.ALLOW_LOOPBACK === "true");
  const close = plan(event, settings.secondsUntilSend, now);
  if (close.reply) return json(close.reply.status, close.reply.body);
  const token = await tokenInfo(settings.kustomerApiUrl, settings.kustomerApiKey, now);
  // Without tag access every survey would fail at send time: refuse now, where the admin sees it.
  if (token.roles.length && !token.roles.some((r) => TAG_READ_ROLES.includes(r))) {
    throw new Refusal(400, "invalid_settings", "This Kustomer API key cannot read tags.", { fields: [{ field: "kustomerApiKey", code: "missing_permission" }] });
  }
  if (token.org !== close.org) throw new Refusal(403, "org_mismatch", "The Kustomer API key belongs to another org than the event.");
  let id = schedulerIds.get(token.org);
  if (id === undefined) {
    if (schedulerIds.size >= 10_000) schedulerIds.clear(); // a bound: ids are cheap to make again
    schedulerIds.set(token.org, (id = env.BASELINE_SCHEDULER.idFromName(token.org)));
  }
  const scheduler = env.BASELINE_SCHEDULER.get(id);
  let reply;
  try {
    const caller = { fingerprint: await fingerprint(secret), apiUrl: settings.kustomerApiUrl, key: settings.kustomerApiKey };
    reply = await scheduler.schedule({ ...close, caller, settings: settingsText });
  } catch (e) {
    throw new Refusal(503, "scheduler_unavailable", `The org's scheduler could not be reached: ${e.message}`);
  }
  return json(reply.status, reply.body);
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    try {
      if (pathname === "/healthz") return json(200, { ok: true });
      if (pathname !== "/v1/kustomer/conversation-closed") throw new Refusal(404, "not_found", "No such endpoint.");
      if (request.method !== "POST") throw new Refusal(405, "method_not_allowed", `${request.method} is not allowed here.`);
      return await conversationClosed(request, env);
    } catch (e) {
      if (e instanceof Refusal) return refuse(e);
      throw e;
    }
  },
};

// ---- the org's Durable Object -----------------------------------------------------------------

let keys; // the settings key, imported once per isolate: {hmac, aes}
function settingsKeys(base64) {
  keys ??= (async () => {
    const raw = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    if (raw.length !== 32) throw new Error("SETTINGS_KEY is not base64 of 32 bytes");
    const [hmac, aes] = await Promise.all([
      crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
      crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]),
    ]);
    // The key's name in a digest, so that digests outlive a rotation (as the edge's `Sealer`).
    const keyId = hex(await crypto.subtle.sign("HMAC", hmac, encoder.encode("key id"))).slice(0, 8);
    return { hmac, aes, keyId };
  })();
  return keys;
}

/** The forget index's keyed digest of a customer id, as the edge keeps it from the close on
 * (src/edge/forget.rs `Who::digest`: HMAC under the settings key, named by the key). */
async function customerKey(base64, org, id) {
  const { hmac, keyId } = await settingsKeys(base64);
  return `${keyId}:${hex(await crypto.subtle.sign("HMAC", hmac, encoder.encode(`customer-index\nid\n${org}\n${id}`))).slice(0, 32)}`;
}

const FINAL = new Set(["sent", "skipped", "failed"]);
const scheduled = (conversationId, sendAtMs) => ({ status: 202, body: { status: "scheduled", conversationId, sendAt: new Date(sendAtMs).toISOString() } });
const ignored = (reason, message) => ({ status: 200, body: { status: "ignored", reason, message } });

/** The fingerprint saved in the app's settings, `null` when none, `undefined` when unknown. */
async function readFingerprint(apiUrl, key) {
  try {
    const r = await fetch(`${apiUrl}/v1/settings/stella_connect/default/appSecretFingerprint`, { headers: { authorization: `Bearer ${key}`, accept: "application/json" } });
    if (r.status === 404) return null;
    if (!r.ok) return undefined;
    const value = (await r.json())?.data?.attributes?.value;
    return typeof value === "string" && value.trim() ? value.trim() : null;
  } catch {
    return undefined;
  }
}

/** One org's surveys: a jobs table in SQLite and one alarm at the earliest due time. */
export class BaselineScheduler extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS org (id INTEGER PRIMARY KEY CHECK (id = 1), secret_digest TEXT, settings_fingerprint TEXT, sealed_settings BLOB)");
    // Closes whose app secret Kustomer's settings do not vouch for: one per conversation.
    this.sql.exec("CREATE TABLE IF NOT EXISTS held (conversation_id TEXT PRIMARY KEY, closed_ms INTEGER NOT NULL, event_id TEXT, held_ms INTEGER NOT NULL)");
    this.sql.exec(`CREATE TABLE IF NOT EXISTS jobs (
      conversation_id TEXT PRIMARY KEY, state TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 0,
      closed_at_ms INTEGER NOT NULL, send_at_ms INTEGER NOT NULL, due_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
      event_id TEXT, reason TEXT, sent_ms INTEGER, previous_sent_ms INTEGER, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
      customer_id_key TEXT, customer_email_key TEXT)`);
    // The forget index, as the edge keeps it: a customer's jobs are two index seeks away.
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_customer_id ON jobs (customer_id_key) WHERE customer_id_key IS NOT NULL");
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_customer_email ON jobs (customer_email_key) WHERE customer_email_key IS NOT NULL");
    // The alarm finds due jobs by due_ms; pruning finds the oldest finished ones by updated_ms,
    // a partial index that a pending job (every close's) is not in, as the edge keeps them.
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due_ms) WHERE due_ms IS NOT NULL");
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_final ON jobs (updated_ms) WHERE due_ms IS NULL");
    // The delivery log's order (newest close first), as the edge keeps it for the Deliveries page.
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_closed ON jobs (closed_at_ms, conversation_id)");
    // The delivery log's summary, kept as counters per UTC hour of close, state, reason and agent
    // as the edge keeps them (src/wasm/edge/sql.rs `tally`), so that a log read counts no rows.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS tally (hour INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
      agent TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (hour, state, reason, agent)) WITHOUT ROWID`);
    // The org record is read on every close: kept in memory, written through.
    this.org = this.sql.exec("SELECT secret_digest, settings_fingerprint FROM org WHERE id = 1").toArray()[0] ?? { secret_digest: null, settings_fingerprint: null };
    // The alarm as this instance last set it (undefined: not known yet, read once): a close due
    // after it sets nothing, with no storage call, as the edge keeps it.
    this.alarmAt = undefined;
    // The settings text this instance last sealed or found sealed: the same again costs no HMAC.
    this.keptText = null;
  }

  /** Whether the fingerprint is the one Kustomer's settings vouch for (constant time). */
  vouches(fingerprint) {
    return this.org.secret_digest !== null && sameText(this.org.secret_digest, fingerprint);
  }

  /** RPC from the gateway: one verified close; the reply as {status, body}. */
  async schedule({ conversationId, org, closedAtMs, sendAtMs, eventId, customerId, caller, settings }) {
    // Kustomer's settings say whom to trust (the fingerprint the settings page saved), read when
    // a presented one does not match, at most once a minute; a close it does not vouch for is held.
    if (!this.vouches(caller.fingerprint)) {
      if (!(this.readAt > Date.now() - 60_000)) {
        this.readAt = Date.now();
        const saved = await readFingerprint(caller.apiUrl, caller.key);
        if (saved !== undefined && saved !== this.org.secret_digest) {
          this.sql.exec("INSERT INTO org (id, secret_digest) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET secret_digest = excluded.secret_digest", saved);
          this.org.secret_digest = saved;
        }
      }
      if (!this.vouches(caller.fingerprint)) {
        this.sql.exec(
          "INSERT INTO held (conversation_id, closed_ms, event_id, held_ms) VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET closed_ms = excluded.closed_ms, event_id = excluded.event_id, held_ms = excluded.held_ms WHERE excluded.closed_ms >= held.closed_ms",
          conversationId, closedAtMs, eventId, Date.now(),
        );
        return { status: 202, body: { status: "held", conversationId } };
      }
    }
    const customer = customerId ? await customerKey(this.env.SETTINGS_KEY, org, customerId) : null;
    const now = Date.now();
    // One statement: a new job, or a later close replacing the job (not the same event again).
    // Jobs never reach `sent` here (the alarm sends nothing), so the resurvey rule is left out.
    const row = this.sql.exec(
      `INSERT INTO jobs (conversation_id, state, closed_at_ms, send_at_ms, due_ms, event_id, created_ms, updated_ms, customer_id_key)
       VALUES (?1, 'scheduled', ?2, ?3, ?3, ?4, ?5, ?5, ?6)
       ON CONFLICT (conversation_id) DO UPDATE SET state = 'scheduled', generation = jobs.generation + 1,
         closed_at_ms = excluded.closed_at_ms, send_at_ms = excluded.send_at_ms, due_ms = excluded.due_ms, attempts = 0,
         event_id = COALESCE(excluded.event_id, jobs.event_id), reason = NULL,
         previous_sent_ms = COALESCE(jobs.sent_ms, jobs.previous_sent_ms), sent_ms = NULL, updated_ms = excluded.updated_ms,
         customer_id_key = COALESCE(excluded.customer_id_key, jobs.customer_id_key)
       WHERE excluded.closed_at_ms > jobs.closed_at_ms AND (excluded.event_id IS NULL OR excluded.event_id IS NOT jobs.event_id)
       RETURNING send_at_ms, generation, closed_at_ms / 3600000 AS hour`,
      conversationId, closedAtMs, sendAtMs, eventId, now, customer,
    ).toArray()[0];
    // A new job counts in its hour's `scheduled` counter (no reason or agent before it is sent),
    // as the edge's close does. A replaced one (not in the bench: every close is a new
    // conversation) would also move its old counter; that read is left out.
    if (row?.generation === 0) {
      this.sql.exec(
        `INSERT INTO tally (hour, state, reason, agent, n) VALUES (?, 'scheduled', '', '', 1)
         ON CONFLICT (hour, state, reason, agent) DO UPDATE SET n = n + excluded.n`,
        row.hour,
      );
    }
    let reply;
    if (row) {
      reply = scheduled(conversationId, row.send_at_ms);
    } else {
      // Not written: an older close arriving late, or the same close (or event) again.
      const job = this.sql.exec("SELECT state, closed_at_ms, send_at_ms FROM jobs WHERE conversation_id = ?", conversationId).one();
      if (closedAtMs < job.closed_at_ms) reply = ignored("stale_event", "A later close of this conversation is already scheduled.");
      else if (!FINAL.has(job.state)) reply = scheduled(conversationId, job.send_at_ms);
      else reply = ignored("duplicate", `This close was already handled: the survey is ${job.state}.`);
    }
    const text = settings; // the raw settings as JSON text
    // The same settings as this instance kept last: nothing to do, not even the HMAC.
    if (!(this.keptText !== null && sameText(this.keptText, text))) await this.keepSettings(org, text);
    if (row) {
      this.alarmAt ??= await this.ctx.storage.getAlarm();
      if (this.alarmAt === null || sendAtMs < this.alarmAt) {
        this.alarmAt = sendAtMs;
        await this.ctx.storage.setAlarm(sendAtMs);
      }
    }
    return reply;
  }

  /** Seals and stores the settings (keys included) when they differ from the stored ones. */
  async keepSettings(org, text) {
    const { hmac, aes } = await settingsKeys(this.env.SETTINGS_KEY);
    // An HMAC, not a plain hash: a digest of the keys would let anyone with the storage confirm a guess.
    const fingerprint = hex(await crypto.subtle.sign("HMAC", hmac, encoder.encode(`${org}\n${text}`)));
    if (fingerprint === this.org.settings_fingerprint) {
      this.keptText = text;
      return;
    }
    const iv = crypto.getRandomValues(new Uint8Array(12));
    // The org as additional data: sealed settings copied into another org's storage do not open.
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(org) }, aes, encoder.encode(text)));
    const stored = new Uint8Array(12 + sealed.byteLength);
    stored.set(iv);
    stored.set(sealed, 12);
    this.sql.exec("UPDATE org SET settings_fingerprint = ?, sealed_settings = ? WHERE id = 1", fingerprint, stored);
    this.org.settings_fingerprint = fingerprint;
    this.keptText = text;
  }

  async alarm() {
    this.alarmAt = undefined; // fired: read again when next needed
    // The bench never lets a job fall due; sending is the edge's business, not the baseline's.
    const { n } = this.sql.exec("SELECT COUNT(*) AS n FROM jobs WHERE due_ms <= ?", Date.now()).one();
    console.log(`baseline alarm: ${n} job(s) due, none sent (bench baseline)`);
  }
}
