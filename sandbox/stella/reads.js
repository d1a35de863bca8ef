// The read APIs (`/v2/*`): the Data Return records (`GET /v2/data`, contract:
// stella-data-return-openapi.yml) and the roster (`GET /v2/employees`, roster.js). Both want a
// known `x-api-key` and, in `Authorization`, a raw HS256 JWT (no `Bearer `) signed with that key's
// API secret and carrying an `iat` within 5 minutes of now; together they allow 100 calls a
// minute per key (429 above).
import { DEFAULT_KEYS, DEFAULT_SECRETS, FAULT_KEYS, REASONS, fault, hashHex, pad, takeFault, text } from "./common.js";
import { employees } from "./roster.js";

const JWT_SKEW_S = 5 * 60; // how far a token's `iat` may be from now
const CALLS_PER_MINUTE = 100; // the read APIs' published limit, per key
const MINUTE_MS = 60_000;
const DATA_LIMIT_MAX = 1000; // the documented default page; the sandbox refuses larger ones

/** A `/v2/*` call: key, call count, limit, faults, JWT, then the route itself. */
export async function read(sb, request, url, path) {
  const storage = sb.ctx.storage;
  const key = request.headers.get("x-api-key");
  const keys = (await storage.get("keys")) ?? DEFAULT_KEYS;
  if (request.method !== "GET" || !keys.includes(key)) return text(request.method === "GET" ? 403 : 405, request.method === "GET" ? "Forbidden" : "Method Not Allowed");
  const kind = path === "/v2/data" ? "data" : path === "/v2/employees" ? "employees" : "other";

  const retryAfter = await sb.serially(() => countCall(storage, key, kind));
  if (retryAfter !== null) return text(429, REASONS[429], { "retry-after": String(retryAfter) });

  if (kind !== "other") {
    const faults = await takeFault(storage, FAULT_KEYS[kind]);
    if (faults) return fault(faults);
  }

  const secrets = (await storage.get("secrets")) ?? DEFAULT_SECRETS;
  const refused = await jwtRefusal(request.headers.get("authorization"), Object.hasOwn(secrets, key) ? secrets[key] : null);
  if (refused) return text(403, `Forbidden: ${refused}`);

  if (kind === "data") return data(storage, url.searchParams);
  if (kind === "employees") return employees(url);
  return text(404, `Not Found: ${request.method} ${url.pathname}`);
}

/**
 * Counts a read call of `key`; the seconds to wait when the key's last minute already holds
 * the limit's worth (a sliding window of the calls let through), else null.
 */
async function countCall(storage, key, kind) {
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
export async function calls(storage, key) {
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
async function data(storage, params) {
  const query = dataQuery(params);
  if (typeof query === "string") return text(400, `Validation error: ${query}`);
  const start = `rec:${pad(query.after + 1)}`;
  const records = [];
  for (const { record } of (await storage.list({ prefix: "rec:", start })).values()) {
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
