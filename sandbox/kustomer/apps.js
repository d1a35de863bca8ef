// App registration and installation (kustomer-apps.md §1). Stored per org: `app:<org>:<app>` (the
// latest registered definition and the versions before it), `installed:<org>:<app>`, and
// `klass:<org>:<klass>` (the attributes installs created). Not modelled: the `<app>_<orgId>`
// namespacing of private apps (§1), removing attributes a newer version no longer declares,
// uninstalling. The install route and the klass listing are guesses: Kustomer installs from its
// App Directory page; the sandbox needs an API call for it.
import { apiError, badRequest, isObject, json, originOf } from "./http.js";
import { DEFINITION, orgSettings } from "./settings.js";
import * as seed from "./seed.js";

// The top-level keys of an app definition (kustomer-apps.md §1); the schema is strict.
const DEFINITION_KEYS = [
  "app", "version", "title", "identifier", "visibility", "description", "iconUrl", "appDetails", "dependencies",
  "settings", "settingsPageConfig", "klasses", "kviews", "actions", "commands", "workflows", "outboundWebhooks", "i18n", "changelog",
];
const REQUIRED_DEFINITION_KEYS = ["app", "version", "title"];
// Guess: Kustomer's size limit for a definition is not documented; this keeps one stored value
// under Durable Objects' 128 KiB.
const MAX_DEFINITION_BYTES = 120_000;
// Attribute name suffix → type (kustomer-apps.md §3); the type names are a guess.
export const ATTRIBUTE_TYPES = { Str: "string", Txt: "text", Num: "number", At: "date", Bool: "boolean", Url: "url", Id: "id" };
/** The type suffix of a custom attribute's name (`Str`, `Num`…), or undefined. */
export const typeSuffix = (name) => /(Str|Txt|Num|At|Bool|Url|Id)$/.exec(name)?.[1];

const appDocument = ({ app, version, title, registeredAt, definition }) => ({
  type: "app",
  id: app,
  attributes: { app, version, title, registeredAt, definition },
});
const installationDocument = ({ app, version, installedAt, attributes }) => ({
  type: "app_installation",
  id: app,
  attributes: { app, version, installedAt, attributes },
});

// `"@" + identifier + PascalCase(attribute)`, as src/kustomer.rs names it (a guess there too).
const appAttributeKey = (identifier, attribute) => `@${identifier}${attribute.charAt(0).toUpperCase()}${attribute.slice(1)}`;

// MAJOR.MINOR.PATCH[-pre][+build] as semver.org defines it: {core: [3 BigInts], pre: [ids]}, or
// undefined.
function parseSemver(text) {
  const m = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/.exec(text);
  return m && { core: [BigInt(m[1]), BigInt(m[2]), BigInt(m[3])], pre: m[4] ? m[4].split(".") : [] };
}

// Semver precedence: -1, 0 or 1 (build metadata ignored; a pre-release sorts before its release).
function compareSemver(a, b) {
  const [x, y] = [parseSemver(a), parseSemver(b)];
  const cmp = (p, q) => (p < q ? -1 : p > q ? 1 : 0);
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return cmp(x.core[i], y.core[i]);
  if (!x.pre.length || !y.pre.length) return cmp(Number(!x.pre.length), Number(!y.pre.length));
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const [p, q] = [x.pre[i], y.pre[i]];
    const [pn, qn] = [/^\d+$/.test(p), /^\d+$/.test(q)];
    if (p === q) continue;
    if (pn && qn) return cmp(BigInt(p), BigInt(q));
    if (pn !== qn) return pn ? -1 : 1; // numeric identifiers sort before alphanumeric ones
    return cmp(p, q);
  }
  return cmp(x.pre.length, y.pre.length);
}

/**
 * A definition as Kustomer documents it (required keys, strict top-level keys, snake_case app,
 * semver version): {def}, or {refused} (the 400 or 413 answer).
 */
function readDefinition(text) {
  if (new TextEncoder().encode(text).length > MAX_DEFINITION_BYTES) {
    const detail = `The definition is over ${MAX_DEFINITION_BYTES} bytes.`;
    return { refused: apiError(413, "too_large", "Payload Too Large", detail, undefined, { limit: MAX_DEFINITION_BYTES }) };
  }
  let def;
  try {
    def = JSON.parse(text);
  } catch (e) {
    return { refused: badRequest("bad_request", `Body is not valid JSON: ${e.message}`, { body: "invalid_json" }) };
  }
  if (!isObject(def)) return { refused: badRequest("invalid_type", "An app definition is a JSON object.", { expected: "object" }) };
  const unknown = Object.keys(def).find((k) => !DEFINITION_KEYS.includes(k));
  if (unknown !== undefined) return { refused: badRequest("unknown_key", `Unknown top-level key "${unknown}".`, { key: unknown }) };
  const missing = REQUIRED_DEFINITION_KEYS.find((k) => def[k] === undefined || def[k] === null || def[k] === "");
  if (missing) return { refused: badRequest("missing_key", `"${missing}" is required.`, { key: missing }) };
  const { app, version, title } = def;
  if (typeof app !== "string" || !/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(app)) {
    return { refused: badRequest("invalid_value", `"app" must be snake_case text.`, { key: "app", value: app }) };
  }
  if (typeof version !== "string" || !parseSemver(version)) {
    return { refused: badRequest("invalid_value", `"version" must be a semantic version such as 1.2.3.`, { key: "version", value: version }) };
  }
  if (typeof title !== "string") return { refused: badRequest("invalid_value", `"title" must be text.`, { key: "title", value: title }) };
  return { def };
}

// `POST /v1/apps/available`: registers a valid definition whose version is higher than the last
// one registered.
export async function registerApp(sb, request, key) {
  const storage = sb.ctx.storage;
  const { def, refused } = readDefinition(await request.text());
  if (refused) return refused;
  const { app, version, title } = def;
  const stored = await storage.get(`app:${key.org}:${app}`);
  if (stored && compareSemver(version, stored.version) <= 0) {
    return apiError(
      409,
      "version_not_higher",
      "Conflict",
      `Version ${version} must be higher than the registered version ${stored.version}.`,
      undefined,
      { registered: stored.version, version },
    );
  }
  const history = stored ? [...stored.history, { version: stored.version, registeredAt: stored.registeredAt }] : [];
  const entry = { app, version, title, registeredAt: new Date().toISOString(), definition: def, history };
  await storage.put(`app:${key.org}:${app}`, entry);
  return json(201, { data: appDocument(entry) });
}

export async function listApps(sb, request, key) {
  const apps = await sb.ctx.storage.list({ prefix: `app:${key.org}:` });
  return json(200, { data: [...apps.values()].map(appDocument) });
}

// `POST /v1/apps/:app/install`: installs the latest registered version: records it, creates the
// attributes its klasses declare and sets the defaults of its settings that the org has not set
// (kept values win).
export async function installApp(sb, request, key, name) {
  const storage = sb.ctx.storage;
  const entry = await storage.get(`app:${key.org}:${name}`);
  if (!entry) return apiError(404, "not_found", "Not Found", `No registered app ${name}.`);
  const def = entry.definition;
  const created = await createAttributes(storage, key.org, entry);

  const declared = isObject(def.settings?.default) ? Object.entries(def.settings.default) : [];
  const settings = await orgSettings(storage, key.org, originOf(request));
  for (const [k, spec] of declared) {
    if (!Object.hasOwn(settings, k) && spec?.defaultValue !== undefined) settings[k] = spec.defaultValue;
  }
  await storage.put(`settings:${key.org}`, settings);

  const before = await storage.get(`installed:${key.org}:${entry.app}`);
  const installation = {
    app: entry.app,
    version: entry.version,
    installedAt: before?.version === entry.version ? before.installedAt : new Date().toISOString(),
    attributes: created,
    secrets: declared.filter(([, spec]) => spec?.type === "secret").map(([k]) => k),
  };
  await storage.put(`installed:${key.org}:${entry.app}`, installation);
  return json(200, { data: installationDocument(installation) });
}

/** Creates the attributes the app's klasses declare: their stored names. */
async function createAttributes(storage, org, entry) {
  const def = entry.definition;
  // Guess: an app without `identifier` prefixes its attributes with its name.
  const identifier = typeof def.identifier === "string" && def.identifier ? def.identifier : entry.app;
  const created = [];
  for (const klass of Array.isArray(def.klasses) ? def.klasses : []) {
    const properties = klass?.metadata?.properties;
    if (typeof klass?.name !== "string" || !isObject(properties)) continue;
    const storeKey = `klass:${org}:${klass.name}`;
    const attributes = (await storage.get(storeKey)) ?? {};
    for (const [attr, spec] of Object.entries(properties)) {
      const stored = appAttributeKey(identifier, attr);
      const suffix = typeSuffix(attr);
      attributes[stored] = { displayName: spec?.displayName ?? attr, type: suffix ? ATTRIBUTE_TYPES[suffix] : null, app: entry.app };
      created.push(stored);
    }
    await storage.put(storeKey, attributes);
  }
  return created;
}

export async function listInstalled(sb, request, key) {
  const installed = await sb.ctx.storage.list({ prefix: `installed:${key.org}:` });
  return json(200, { data: [...installed.values()].map(installationDocument) });
}

// `GET /v1/klasses/:name`: the custom attributes installs created on a klass, in the definition's
// shape.
export async function getKlass(sb, request, key, name) {
  const properties = (await sb.ctx.storage.get(`klass:${key.org}:${name}`)) ?? {};
  return json(200, { data: { type: "klass", id: name, attributes: { name, metadata: { properties } } } });
}

/** The definitions of the apps installed in the org (in the seeded org, also the one the
 * sandbox runs with, installed there from the start). */
export async function definitionsOf(storage, org) {
  const installed = await storage.list({ prefix: `installed:${org}:` });
  const definitions = [];
  for (const { app } of installed.values()) definitions.push((await storage.get(`app:${org}:${app}`))?.definition);
  if (org === seed.SEED_ORG) definitions.push(DEFINITION);
  return definitions;
}
