// The org's app settings: created on first use for the sandbox's own stack, read and written
// through `/v1/apps/settings` and `/v1/settings/...`, secrets masked on every read.
// The app definition generated from the settings table (app-manifest/stella_connect.json): the
// settings the workflow action passes to the edge, and which of them are secret, come from it.
import DEFINITION from "./app-definition";
import { PREFIX, apiError, isObject, json, originOf, readJson } from "./http.js";

export { DEFINITION };
export const MASK = "********"; // what Kustomer answers instead of a secret setting
// The app secret the sandbox org starts with (the settings page makes a random one).
const SANDBOX_APP_SECRET = "sandbox-app-secret-0123456789";
// The Stella sandbox's secret of `sandbox-stella-key`: with it the edge reads outcomes back.
const SANDBOX_STELLA_SECRET = "sandbox-stella-secret";

export const SETTING_SPECS = DEFINITION?.settings?.default ?? {};
// Secret settings (the keys, the app secret, the Stella API secret): masked on every read. The
// Stella API secret is named as well, so it stays masked whatever the definition declares.
const SECRET_SETTINGS = [
  ...new Set([...Object.entries(SETTING_SPECS).filter(([, spec]) => spec?.type === "secret").map(([k]) => k), "stellaApiSecret"]),
];

/** The app secret's fingerprint, as the settings page computes it (edge::trust::fingerprint). */
async function appSecretFingerprint(secret) {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode("stella-connect app secret fingerprint v1")));
  return `v1:${[...mac].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// The org's settings. Created on first use, from the origin the request came through, so local
// runs point at this sandbox.
export async function orgSettings(storage, org, origin) {
  let settings = await storage.get(`settings:${org}`);
  if (!settings) {
    settings = {
      stellaApiKey: "sandbox-stella-key",
      kustomerApiKey: "sandbox-kustomer-key",
      kustomerApiUrl: `${origin}${PREFIX}`,
      kustomerUrl: `${origin}${PREFIX}`,
      secondsUntilSend: "5",
      // As an admin running locally would set it (advanced): surveys go to the Stella sandbox.
      stellaApiUrl: `${origin}/sandbox/stella`,
      appSecret: SANDBOX_APP_SECRET,
      // The app's link, as the settings page saves it beside the secret.
      appSecretFingerprint: await appSecretFingerprint(SANDBOX_APP_SECRET),
      // Outcomes (delivery status, rating) flow back under `make run` with no setup.
      stellaApiSecret: SANDBOX_STELLA_SECRET,
    };
    await storage.put(`settings:${org}`, settings);
  }
  return settings;
}

// The sandbox's own secret keys plus those the org's installed apps declare as `secret`.
async function secretSettings(storage, org) {
  const installed = await storage.list({ prefix: `installed:${org}:` });
  return [...new Set([...SECRET_SETTINGS, ...[...installed.values()].flatMap((i) => i.secrets)])];
}

function settingsDocument(settings, secrets) {
  const shown = { ...settings };
  for (const k of secrets) if (shown[k]) shown[k] = MASK;
  return json(200, { data: { type: "app_settings", id: "stella_connect", attributes: { settings: shown } } });
}

/** `GET /v1/apps/settings`. */
export async function getSettings(sb, request, key) {
  const storage = sb.ctx.storage;
  return settingsDocument(await orgSettings(storage, key.org, originOf(request)), await secretSettings(storage, key.org));
}

/** `GET /v1/settings/:app/:category/:name`: one setting, a secret as the mask. */
export async function getSetting(sb, request, key, _app, path) {
  const storage = sb.ctx.storage;
  const [app, category, name] = path.split("/").slice(3).map(decodeURIComponent);
  const settings = await orgSettings(storage, key.org, originOf(request));
  const value = settings[name];
  if (app !== "stella_connect" || category !== "default" || value === undefined || value === null) {
    return apiError(404, "not_found", "Not Found", `No setting ${app}.${category}.${name}.`);
  }
  const secrets = await secretSettings(storage, key.org);
  const shown = secrets.includes(name) ? MASK : value;
  return json(200, { data: { type: "setting", id: `${app}.${category}.${name}`, attributes: { value: shown } } });
}

// `PUT /v1/apps/settings`: merges; null removes a setting; the mask sent back for a secret keeps
// the stored value.
export async function putSettings(sb, request, key) {
  const storage = sb.ctx.storage;
  const body = await readJson(request);
  if (!isObject(body?.settings)) return apiError(400, "bad_request", "Bad Request", "Body must be {settings: {...}}.");
  const settings = await orgSettings(storage, key.org, originOf(request));
  const secrets = await secretSettings(storage, key.org);
  for (const [k, v] of Object.entries(body.settings)) {
    if (v === null) delete settings[k];
    else if (!(secrets.includes(k) && v === MASK)) settings[k] = v;
  }
  await storage.put(`settings:${key.org}`, settings);
  return settingsDocument(settings, secrets);
}
