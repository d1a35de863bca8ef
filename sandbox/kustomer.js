// Kustomer API sandbox (local dev tooling, never deployed).
// Serves the few /v1 calls the app makes, in Kustomer's JSON:API shapes, plus unauthenticated
// controls under the same prefix to close/reopen conversations (which calls the edge as the
// app's workflow would), inject faults, count calls and add data. All state lives in one
// Durable Object so it survives a workerd restart.
import { DurableObject } from "cloudflare:workers";
import * as seed from "./seed.js";
import CARDS_SDK from "./cards-sdk-source";

// The shared router forwards the full URL; the sandbox strips its own mount point.
const PREFIX = "/sandbox/kustomer";
const RATE_LIMIT = 1000; // per org per minute, as on Kustomer's Enterprise plan
const MASK = "********"; // what Kustomer answers instead of a secret setting
const SECRET_SETTINGS = ["stellaApiKey", "kustomerApiKey"];
// Settings the workflow action passes to the edge as headers: the first five always, the
// others only when set.
const REQUIRED_SETTINGS = ["stellaApiKey", "kustomerApiKey", "kustomerApiUrl", "kustomerUrl", "secondsUntilSend"];
const OPTIONAL_SETTINGS = ["stellaApiUrl", "channelMap", "surveyedChannels", "brand", "sendLanguage"];

const ROLES = [
  "org.permission.conversation.read",
  "org.permission.conversation.update",
  "org.permission.customer.read",
  "org.permission.user.read",
  "org.permission.tag.read",
  "org.admin.apps",
  "org.permission.setting.read",
  "org.permission.setting.update",
];
const API_KEYS = {
  "sandbox-kustomer-key": { token: "token-sandbox", org: seed.SEED_ORG, roles: ROLES },
  "sandbox-kustomer-key-no-tags": { token: "token-sandbox-no-tags", org: seed.SEED_ORG, roles: ROLES.filter((r) => !r.includes(".tag.")) },
  "other-org-key": { token: "token-other", org: "other-org", roles: ROLES },
  // The signed-in user of the Cards SDK stand-in (an admin who is also an agent).
  "sandbox-user-session": { token: "session-user", org: seed.SEED_ORG, roles: ROLES },
};
const ORG_NAMES = { [seed.SEED_ORG]: "sandbox" };

// [method, path pattern, stats name, roles of which one is needed (none: any valid key), handler]
const API_ROUTES = [
  ["GET", /^\/v1\/conversations\/([^/]+)$/, "GET /v1/conversations/:id", ["org.permission.conversation.read"], "getResource"],
  ["PUT", /^\/v1\/conversations\/([^/]+)$/, "PUT /v1/conversations/:id", ["org.permission.conversation.update"], "putConversation"],
  ["GET", /^\/v1\/customers\/([^/]+)$/, "GET /v1/customers/:id", ["org.permission.customer.read"], "getResource"],
  ["GET", /^\/v1\/users\/([^/]+)$/, "GET /v1/users/:id", ["org.permission.user.read"], "getResource"],
  ["GET", /^\/v1\/tags\/([^/]+)$/, "GET /v1/tags/:ids", ["org.permission.tag.read", "org.admin.tag.read"], "getTags"],
  ["GET", /^\/v1\/apps\/settings$/, "GET /v1/apps/settings", ["org.permission.setting.read", "org.admin.apps"], "getSettings"],
  ["PUT", /^\/v1\/apps\/settings$/, "PUT /v1/apps/settings", ["org.permission.setting.update", "org.admin.apps"], "putSettings"],
  ["GET", /^\/v1\/auth\/tokens\/current$/, "GET /v1/auth/tokens/current", [], "getToken"],
];
const RESOURCE_TYPES = { conversations: "conversation", customers: "customer", users: "user" };

const json = (status, body, headers = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });
const apiError = (status, code, title, detail, headers) =>
  json(status, { errors: [{ status: String(status), code, title, detail }] }, headers);
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// Body as JSON, or undefined when there is none; throws on malformed JSON.
async function readJson(request) {
  const text = await request.text();
  return text.trim() === "" ? undefined : JSON.parse(text);
}

export default {
  fetch(request, env) {
    return env.STATE.get(env.STATE.idFromName("sandbox")).fetch(request);
  },
};

export class KustomerState extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) || "/" : url.pathname;
    if (!(await this.ctx.storage.get("seeded"))) await this.seed();
    try {
      return path.startsWith("/v1/") ? await this.api(request, path) : await this.control(request, path, url.origin);
    } catch (e) {
      if (e instanceof SyntaxError) return apiError(400, "bad_request", "Bad Request", `Body is not valid JSON: ${e.message}`);
      return apiError(500, "internal", "Internal Server Error", String(e?.stack ?? e));
    }
  }

  // ---- storage ---------------------------------------------------------------------------

  // Every resource is stored as {org, resource} under its type and id.
  async seed() {
    await this.putRecords(seed.SEED_ORG, [...seed.users, ...seed.tags, ...seed.customers, ...seed.conversations]);
    await this.ctx.storage.put("seeded", true);
  }

  async putRecords(org, resources) {
    const entries = resources.map((r) => [`rec:${r.type}:${r.id}`, { org, resource: r }]);
    for (let i = 0; i < entries.length; i += 128) await this.ctx.storage.put(Object.fromEntries(entries.slice(i, i + 128)));
  }

  async record(type, id, org) {
    const rec = await this.ctx.storage.get(`rec:${type}:${id}`);
    return rec && (org === undefined || rec.org === org) ? rec : undefined;
  }

  // Created on first use, from the origin the request came through, so local runs point at
  // this sandbox.
  async settings(org, origin) {
    let settings = await this.ctx.storage.get(`settings:${org}`);
    if (!settings) {
      settings = {
        stellaApiKey: "sandbox-stella-key",
        kustomerApiKey: "sandbox-kustomer-key",
        kustomerApiUrl: `${origin}${PREFIX}`,
        kustomerUrl: `${origin}${PREFIX}`,
        secondsUntilSend: "5",
        // As an admin running locally would set it (advanced): surveys go to the Stella sandbox.
        stellaApiUrl: `${origin}/sandbox/stella`,
      };
      await this.ctx.storage.put(`settings:${org}`, settings);
    }
    return settings;
  }

  // ---- /v1 API ---------------------------------------------------------------------------

  async api(request, path) {
    const route = API_ROUTES.find(([method, pattern]) => method === request.method && pattern.test(path));
    const name = route ? route[2] : `${request.method} /v1/*`;
    const auth = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
    const key = auth && Object.hasOwn(API_KEYS, auth[1]) ? API_KEYS[auth[1]] : undefined;

    // Every call counts, rejected or not, as on the real rate limit.
    const stats = (await this.ctx.storage.get("stats")) ?? { total: 0, byRoute: {} };
    stats.total++;
    stats.byRoute[name] = (stats.byRoute[name] ?? 0) + 1;
    await this.ctx.storage.put("stats", stats);
    const rate = await this.rateHeaders(key?.org ?? "(anonymous)");

    const faults = await this.ctx.storage.get("faults");
    if (faults?.count > 0) {
      faults.count--;
      await this.ctx.storage.put("faults", faults);
      return this.faultResponse(faults, rate);
    }

    const response = await this.serve(request, path, route, key);
    for (const [k, v] of Object.entries(rate)) response.headers.set(k, v);
    return response;
  }

  async serve(request, path, route, key) {
    if (!key) return apiError(401, "unauthorized", "Unauthorized", "Missing or unknown API key.");
    if (!route) return apiError(404, "not_found", "Not Found", `No route for ${request.method} ${path}.`);
    const [, pattern, , roles, handler] = route;
    if (roles.length && !roles.some((r) => key.roles.includes(r))) {
      return apiError(403, "forbidden", "Forbidden", `The key lacks one of these roles: ${roles.join(", ")}.`);
    }
    const param = pattern.exec(path)[1];
    return this[handler](request, key, param && decodeURIComponent(param), path);
  }

  // One budget per org per clock minute, reported but not enforced (inject 429s with faults).
  async rateHeaders(org) {
    const now = Date.now();
    const window = Math.floor(now / 60_000) * 60_000;
    let rate = await this.ctx.storage.get(`rate:${org}`);
    if (rate?.window !== window) rate = { window, count: 0 };
    rate.count++;
    await this.ctx.storage.put(`rate:${org}`, rate);
    return {
      "x-ratelimit-limit": String(RATE_LIMIT),
      "x-ratelimit-remaining": String(Math.max(0, RATE_LIMIT - rate.count)),
      "x-ratelimit-reset": String(Math.ceil((window + 60_000 - now) / 1000)),
    };
  }

  faultResponse({ status, retryAfter, rateLimitReset }, rate) {
    const headers = { ...rate };
    if (status === 429) headers["x-ratelimit-remaining"] = "0";
    if (rateLimitReset !== undefined) headers["x-ratelimit-reset"] = String(rateLimitReset);
    if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
    const titles = { 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable" };
    return apiError(status, `sandbox_fault_${status}`, titles[status], "Fault injected by the sandbox.", headers);
  }

  async getResource(request, key, id, path) {
    const type = RESOURCE_TYPES[path.split("/")[2]];
    const rec = await this.record(type, id, key.org);
    if (!rec) return apiError(404, "not_found", "Not Found", `No ${type} ${id}.`);
    return json(200, { data: rec.resource });
  }

  // `/v1/tags/a,b`: a list of the tags that exist; 404 only when none does.
  async getTags(request, key, ids) {
    const found = [];
    for (const id of ids.split(",").filter(Boolean)) {
      const rec = await this.record("tag", id, key.org);
      if (rec) found.push(rec.resource);
    }
    if (!found.length) return apiError(404, "not_found", "Not Found", `No tag ${ids}.`);
    return json(200, { data: found });
  }

  // Accepts `{custom, ...attributes}` (what the card sends) or `{data: {attributes}}`.
  async putConversation(request, key, id) {
    const body = await readJson(request);
    const edits = isObject(body?.data?.attributes) ? body.data.attributes : body;
    if (!isObject(edits)) return apiError(400, "bad_request", "Bad Request", "Body must be a JSON object.");
    if (edits.custom !== undefined && !isObject(edits.custom)) {
      return apiError(400, "bad_request", "Bad Request", "custom must be an object.");
    }
    const rec = await this.record("conversation", id, key.org);
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
    await this.putRecords(rec.org, [rec.resource]);
    return json(200, { data: rec.resource });
  }

  async getSettings(request, key) {
    return this.settingsDocument(await this.settings(key.org, new URL(request.url).origin));
  }

  // Merges; null removes a setting; the mask sent back for a secret keeps the stored value.
  async putSettings(request, key) {
    const body = await readJson(request);
    if (!isObject(body?.settings)) return apiError(400, "bad_request", "Bad Request", "Body must be {settings: {...}}.");
    const settings = await this.settings(key.org, new URL(request.url).origin);
    for (const [k, v] of Object.entries(body.settings)) {
      if (v === null) delete settings[k];
      else if (!(SECRET_SETTINGS.includes(k) && v === MASK)) settings[k] = v;
    }
    await this.ctx.storage.put(`settings:${key.org}`, settings);
    return this.settingsDocument(settings);
  }

  settingsDocument(settings) {
    const shown = { ...settings };
    for (const k of SECRET_SETTINGS) if (shown[k]) shown[k] = MASK;
    return json(200, { data: { type: "app_settings", id: "stella_connect", attributes: { settings: shown } } });
  }

  getToken(request, key) {
    return json(200, {
      data: {
        type: "token",
        id: key.token,
        attributes: { org: key.org, roles: key.roles },
        relationships: { org: { data: { type: "org", id: key.org } } },
      },
    });
  }

  // ---- controls (no auth) ----------------------------------------------------------------

  async control(request, path, origin) {
    const m = request.method;
    const status = /^\/conversations\/([^/]+)\/(close|reopen)$/.exec(path);
    if (m === "POST" && status) {
      return this.changeStatus(request, decodeURIComponent(status[1]), status[2] === "close" ? "done" : "open", origin);
    }
    if (m === "POST" && path === "/conversations") return this.addData(request);
    if (m === "GET" && path === "/conversations") return this.listConversations();
    if (m === "GET" && path === "/cards-sdk.js") {
      return new Response(CARDS_SDK, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" } });
    }
    if (m === "GET" && path === "/stats") return json(200, (await this.ctx.storage.get("stats")) ?? { total: 0, byRoute: {} });
    if (m === "POST" && path === "/stats/reset") {
      await this.ctx.storage.delete("stats");
      return json(200, { total: 0, byRoute: {} });
    }
    if (m === "POST" && path === "/faults") return this.setFaults(request);
    if (m === "DELETE" && path === "/faults") {
      await this.ctx.storage.delete("faults");
      return json(200, { faults: null });
    }
    if (m === "POST" && path === "/reset") {
      await this.ctx.storage.deleteAll();
      await this.seed();
      return json(200, { reset: true });
    }
    return json(404, { error: `No sandbox control ${m} ${PREFIX}${path}.` });
  }

  // Changes the status, then posts the `kustomer.conversation.update` event to the edge with
  // the settings as headers, as the app's workflow action does.
  async changeStatus(request, id, after, origin) {
    if (!this.env.EDGE) return json(500, { error: "No EDGE service binding: bind the edge worker as EDGE to call it." });
    const edits = (await readJson(request)) ?? {};
    if (!isObject(edits)) return json(400, { error: "Body must be a JSON object {assignedUsers?, custom?}." });
    const rec = await this.record("conversation", id);
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
    await this.putRecords(rec.org, [conversation]);

    const settings = await this.settings(rec.org, origin);
    const event = {
      id: crypto.randomUUID().replaceAll("-", "").slice(0, 24),
      name: "kustomer.conversation.update",
      org: rec.org,
      orgName: ORG_NAMES[rec.org] ?? rec.org,
      partition: rec.org,
      createdAt: now,
      data: conversation,
      changes: { attributes: { status: { op: "replace", before, after } }, relationships: {} },
      meta: { customChanged: isObject(edits.custom) },
    };
    const headers = { "content-type": "application/json", ...settingHeaders(settings) };
    if (!settings.stellaApiUrl) headers["x-stella-api-url"] = `${origin}/sandbox/stella`;

    try {
      const res = await this.env.EDGE.fetch("http://edge/v1/kustomer/conversation-closed", {
        method: "POST",
        headers,
        body: JSON.stringify(event),
      });
      const text = await res.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      return json(200, { conversation: { data: conversation }, edge: { status: res.status, body } });
    } catch (e) {
      return json(502, { conversation: { data: conversation }, edge: { status: 0, error: String(e?.message ?? e) } });
    }
  }

  // The seeded org's conversations with their customer's name, for the local home page.
  async listConversations() {
    const records = await this.ctx.storage.list({ prefix: "rec:conversation:", limit: 500 });
    const list = [];
    for (const { org, resource } of records.values()) {
      if (org !== seed.SEED_ORG) continue;
      const customerId = resource.relationships?.customer?.data?.id;
      const customer = customerId && (await this.record("customer", customerId, org));
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

  // Body: one set or a list of sets {org?, conversation, customer?, users?, tags?}.
  async addData(request) {
    const body = await readJson(request);
    const sets = Array.isArray(body) ? body : [body];
    const ids = [];
    for (const set of sets) {
      if (!isObject(set?.conversation) || typeof set.conversation.id !== "string") {
        return json(400, { error: "Each set needs conversation: {id, attributes?, relationships?}." });
      }
      const now = new Date().toISOString();
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
      await this.putRecords(set.org ?? seed.SEED_ORG, resources);
      ids.push(c.id);
    }
    return json(201, { created: ids.length, ids });
  }

  async setFaults(request) {
    const { status, count = 1, retryAfter, rateLimitReset } = (await readJson(request)) ?? {};
    if (![429, 500, 503].includes(status) || !Number.isInteger(count) || count < 0) {
      return json(400, { error: "Body must be {status: 429|500|503, count: n, retryAfter?, rateLimitReset?}." });
    }
    const faults = { status, count, retryAfter, rateLimitReset };
    await this.ctx.storage.put("faults", faults);
    return json(200, { faults });
  }
}

// `stellaApiKey` → `x-stella-api-key`: the header each setting travels in, as in the app's
// workflow action (the edge derives the same names).
function settingHeaders(settings) {
  const headers = {};
  const header = (k) => "x-" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
  const text = (v) => (v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  for (const k of REQUIRED_SETTINGS) headers[header(k)] = text(settings[k]);
  for (const k of OPTIONAL_SETTINGS) if (text(settings[k]) !== "") headers[header(k)] = text(settings[k]);
  return headers;
}
