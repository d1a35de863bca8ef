// What the Stella sandbox's parts share: the answers (Stella answers errors as plain text), the
// keys it starts with, the faults' storage, a record's statuses and the customers' index.

export const DEFAULT_KEYS = ["sandbox-stella-key"];
// The API secret each key's JWTs are signed with (Agent Connect's third credential).
export const DEFAULT_SECRETS = { "sandbox-stella-key": "sandbox-stella-secret" };
// Where each route's injected faults are kept; a fault naming no route is for `POST /v1/requests`.
export const FAULT_KEYS = { requests: "faults", data: "faults:data", employees: "faults:employees" };
const TIMEOUT_MS = 15_000; // longer than the client's 10 s timeout
export const REASONS = { 400: "Validation error: fault injected by the sandbox", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout" };
// A record's status (stella-api.md): `Sent`, or why not, or a bounce after sending.
export const STATUS = { sent: "Sent", suppressed: "Not sent: suppression period", doNotSend: "Not sent: do not send flag" };

// Stella answers errors as plain text.
export const text = (status, body, headers = {}) =>
  new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
export const json = (status, body) => Response.json(body, { status, headers: { "cache-control": "no-store" } });
export const isObject = (x) => typeof x === "object" && x !== null && !Array.isArray(x);
export const pad = (n) => String(n).padStart(12, "0");

/** An injected fault's answer: its status (a "timeout" answers 504 after the client gave up). */
export async function fault({ status, retryAfter }) {
  if (status === "timeout") {
    await scheduler.wait(TIMEOUT_MS);
    return text(504, REASONS[504]);
  }
  return text(status, REASONS[status], retryAfter === undefined ? {} : { "retry-after": String(retryAfter) });
}

/** The fault stored under `storeKey`, using one up, or undefined when none is left. */
export async function takeFault(storage, storeKey) {
  const faults = await storage.get(storeKey);
  if (!(faults?.count > 0)) return undefined;
  faults.count--;
  await storage.put(storeKey, faults);
  return faults;
}

export async function hashHex(value) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The storage key of the last survey sent to a customer: emails match case-insensitively. */
export async function emailKey(email) {
  return `sent:${await hashHex(email.toLowerCase())}`;
}
