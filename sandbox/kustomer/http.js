// The Kustomer sandbox's answers and body reading, shared by the API and the controls.

// Where the sandbox is mounted on the one local address (sandbox/router.js).
export const PREFIX = "/sandbox/kustomer";

export const json = (status, body, headers = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });

/** An error in Kustomer's JSON:API shape: `{errors: [{status, code, title, detail, meta?}]}`. */
export const apiError = (status, code, title, detail, headers, meta) =>
  json(status, { errors: [{ status: String(status), code, title, detail, ...(meta && { meta }) }] }, headers);

/** A 400 of the API with the given code. */
export const badRequest = (code, detail, meta) => apiError(400, code, "Bad Request", detail, undefined, meta);

export const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// A handler's exception as an answer: malformed JSON is the caller's fault.
export const errorResponse = (e) =>
  e instanceof SyntaxError
    ? apiError(400, "bad_request", "Bad Request", `Body is not valid JSON: ${e.message}`)
    : apiError(500, "internal", "Internal Server Error", String(e?.stack ?? e));

// A path segment as text; a malformed %-escape is kept as it came.
export function decodePathPart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

// Body as JSON, or undefined when there is none; throws on malformed JSON.
export async function readJson(request) {
  const text = await request.text();
  return text.trim() === "" ? undefined : JSON.parse(text);
}

/** A body read as JSON when it is JSON, else kept as text (what another service answered). */
export function jsonOrText(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The origin the request came through: local runs point the settings at this sandbox. */
export const originOf = (request) => new URL(request.url).origin;
