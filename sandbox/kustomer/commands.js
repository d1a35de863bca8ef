// Commands (kustomer-apps.md §7): `POST /v1/commands/<name>/run` `{args?, headers?, body?}`, what
// the Cards SDK's `Kustomer.command.run` sends: Kustomer fills the command's templates on its side
// (settings through its `appSettings` aliases, the caller's `args` in the URL only, each named in
// `permittedArgs`), calls the URL and answers with what came back. A saved key reaches the edge,
// never the caller. Guesses, kept here (kustomer-apps.md §7 leaves them open):
// - any user of the org may run the org's apps' commands (Kustomer documents no role limits);
// - headers given with the run are added to the command's `defaultHeaders` and replace those
//   of the same name (the settings page checks a key just typed this way); a header whose
//   value comes out empty (an unset setting) is not sent;
// - a missing argument is empty text; `{{x}}` is HTML-escaped, `{{{x}}}` is not (Handlebars);
// - the answer is `{data: {type: "command_run", id, attributes: {commandId, args, url,
//   statusCode, responseBody, requestError}}}`, the fields of the SDK's command action output
//   minus the request's headers and body (which would show the filled-in keys).
// Whatever the command's host, the sandbox calls the local edge (the EDGE binding) with the
// URL's path and query.
import { apiError, badRequest, isObject, json, jsonOrText, originOf } from "./http.js";
import { definitionsOf } from "./apps.js";
import { orgSettings } from "./settings.js";

// The largest command run the sandbox reads (its own limit; Kustomer's is not published).
const MAX_COMMAND_RUN_BYTES = 64 * 1024;

export async function runCommand(sb, request, key, name) {
  const text = await request.text();
  if (new TextEncoder().encode(text).length > MAX_COMMAND_RUN_BYTES) {
    return apiError(413, "too_large", "Payload Too Large", `A command run is at most ${MAX_COMMAND_RUN_BYTES} bytes.`);
  }
  const run = text.trim() === "" ? {} : JSON.parse(text);
  if (!isObject(run)) return badRequest("invalid_type", "The body must be an object {args?, headers?, body?}.");
  const unknown = Object.keys(run).find((k) => !["args", "headers", "body"].includes(k));
  if (unknown !== undefined) return badRequest("unknown_key", `Unknown field "${unknown}": a run is {args?, headers?, body?}.`, { key: unknown });
  const command = await commandOf(sb.ctx.storage, key.org, name);
  if (!command) return apiError(404, "not_found", "Not Found", `No command ${name} in the org's installed apps.`);
  const args = run.args ?? {};
  const refused = checkArgs(command, args) ?? checkHeaders(run.headers ?? {});
  if (refused) return refused;

  const settings = await orgSettings(sb.ctx.storage, key.org, originOf(request));
  const { url, method, headers, body } = filled(command, settings, run, args);
  const answer = { commandId: name, args, url, statusCode: null, responseBody: null, requestError: null };
  try {
    const target = new URL(url);
    if (!sb.env.EDGE) throw new Error("no EDGE service binding");
    const res = await sb.env.EDGE.fetch(`http://edge${target.pathname}${target.search}`, {
      method,
      headers,
      body: method === "GET" || body === undefined ? undefined : JSON.stringify(body),
    });
    const received = await res.text();
    answer.statusCode = res.status;
    answer.responseBody = jsonOrText(received);
  } catch (e) {
    answer.requestError = String(e?.message ?? e);
  }
  return json(200, { data: { type: "command_run", id: crypto.randomUUID(), attributes: answer } });
}

/** The 400 for the first argument the command does not take or of the wrong type, or undefined. */
function checkArgs(command, args) {
  if (!isObject(args)) return badRequest("invalid_type", "args must be an object of names to values.");
  const permitted = Array.isArray(command.permittedArgs) ? command.permittedArgs : [];
  for (const [arg, value] of Object.entries(args)) {
    if (!permitted.includes(arg)) {
      return badRequest("arg_not_permitted", `The command does not take the argument "${arg}".`, { arg, permittedArgs: permitted });
    }
    if (!["string", "number", "boolean"].includes(typeof value)) return badRequest("invalid_type", `The argument "${arg}" must be text, a number or a flag.`, { arg });
  }
  return undefined;
}

function checkHeaders(headers) {
  if (!isObject(headers) || Object.values(headers).some((v) => typeof v !== "string")) {
    return badRequest("invalid_type", "headers must be an object of names to text.");
  }
  return undefined;
}

/** The call a run makes: the command's templates filled with the org's settings and the args. */
function filled(command, settings, run, args) {
  const values = {};
  for (const [alias, ref] of Object.entries(isObject(command.appSettings) ? command.appSettings : {})) {
    const setting = typeof ref?.key === "string" ? ref.key.split(".").at(-1) : undefined;
    if (setting !== undefined && settings[setting] !== undefined && settings[setting] !== null) values[alias] = settings[setting];
  }
  const url = fill(String(command.url ?? ""), { ...values, ...args });
  const headers = new Headers();
  for (const [header, template] of Object.entries(isObject(command.defaultHeaders) ? command.defaultHeaders : {})) {
    const value = fill(String(template), values);
    if (value !== "") headers.set(header, value);
  }
  for (const [header, value] of Object.entries(run.headers ?? {})) headers.set(header, value);
  const method = String(command.httpMethod ?? "post").toUpperCase();
  const body = run.body !== undefined ? run.body : command.defaultBody;
  return { url, method, headers, body };
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

/** The command `name` of an app installed in the org (in the seeded org, also of the app
 * definition the sandbox runs with, installed there from the start). */
async function commandOf(storage, org, name) {
  for (const def of await definitionsOf(storage, org)) {
    const found = (Array.isArray(def?.commands) ? def.commands : []).find((c) => c?.name === name);
    if (found) return found;
  }
  return undefined;
}
