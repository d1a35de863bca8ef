// The /v1 API: the few calls the app makes, in Kustomer's JSON:API shapes. Each call is counted
// (`GET /stats`), charged to its org's budget (budget.js), may meet an injected fault or be held
// back (controls.js), and then needs a known key with one of its route's roles.
import { apiError, decodePathPart, errorResponse, json } from "./http.js";
import { account, spend, spentAnswer } from "./budget.js";
import { holdBack, takeFault } from "./controls.js";
import { countWrite, patchConversation, putConversation } from "./conversations.js";
import { getResource, getTags, listResources, searchCustomers } from "./resources.js";
import { getSetting, getSettings, putSettings } from "./settings.js";
import { getKlass, installApp, listApps, listInstalled, registerApp } from "./apps.js";
import { runCommand } from "./commands.js";
import * as seed from "./seed.js";

const ROLES = [
  "org.permission.conversation.read",
  "org.permission.conversation.update",
  "org.permission.customer.read",
  "org.permission.user.read",
  "org.permission.tag.read",
  // Guess: Kustomer's role for reading brands is not documented.
  "org.permission.brand.read",
  "org.admin.apps",
  "org.permission.setting.read",
  "org.permission.setting.update",
  // The customer search (kustomer-apps.md §10): how the edge learns of deleted customers.
  "org.permission.search.create",
];
const API_KEYS = {
  "sandbox-kustomer-key": { token: "token-sandbox", org: seed.SEED_ORG, roles: ROLES },
  "sandbox-kustomer-key-no-tags": { token: "token-sandbox-no-tags", org: seed.SEED_ORG, roles: ROLES.filter((r) => !r.includes(".tag.")) },
  // An agent's key: reads and updates conversations, no admin or settings roles.
  "sandbox-kustomer-key-agent": {
    token: "token-sandbox-agent",
    org: seed.SEED_ORG,
    roles: ROLES.filter((r) => r.startsWith("org.permission.") && !r.includes(".setting.")),
  },
  "other-org-key": { token: "token-other", org: "other-org", roles: ROLES },
  // The signed-in user of the Cards SDK stand-in (an admin who is also an agent).
  "sandbox-user-session": { token: "session-user", org: seed.SEED_ORG, roles: ROLES },
};

// The outcome writes: these calls are also counted per conversation (GET /writes).
const PATCH_ROUTE = "PATCH /v1/conversations/:id";

// [method, path pattern, stats name, roles of which one is needed (none: any valid key), handler]
// A handler is `(sb, request, key, param, path)`: the sandbox's Durable Object, the call, the
// caller's key, the path's first parameter (decoded) and the path below the mount point.
const API_ROUTES = [
  ["GET", /^\/v1\/conversations\/([^/]+)$/, "GET /v1/conversations/:id", ["org.permission.conversation.read"], getResource],
  ["PUT", /^\/v1\/conversations\/([^/]+)$/, "PUT /v1/conversations/:id", ["org.permission.conversation.update"], putConversation],
  ["PATCH", /^\/v1\/conversations\/([^/]+)$/, PATCH_ROUTE, ["org.permission.conversation.update"], patchConversation],
  ["GET", /^\/v1\/customers\/([^/]+)$/, "GET /v1/customers/:id", ["org.permission.customer.read"], getResource],
  // Customer search (kustomer-apps.md §10), with `includeDeleted`: see `searchCustomers`.
  ["POST", /^\/v1\/customers\/search$/, "POST /v1/customers/search", ["org.permission.search.create", "org.permission.search.update"], searchCustomers],
  ["GET", /^\/v1\/users\/([^/]+)$/, "GET /v1/users/:id", ["org.permission.user.read"], getResource],
  ["GET", /^\/v1\/users$/, "GET /v1/users", ["org.permission.user.read"], listResources],
  ["GET", /^\/v1\/brands\/([^/]+)$/, "GET /v1/brands/:id", ["org.permission.brand.read"], getResource],
  ["GET", /^\/v1\/brands$/, "GET /v1/brands", ["org.permission.brand.read"], listResources],
  ["GET", /^\/v1\/tags\/([^/]+)$/, "GET /v1/tags/:ids", ["org.permission.tag.read", "org.admin.tag.read"], getTags],
  ["GET", /^\/v1\/apps\/settings$/, "GET /v1/apps/settings", ["org.permission.setting.read", "org.admin.apps"], getSettings],
  ["PUT", /^\/v1\/apps\/settings$/, "PUT /v1/apps/settings", ["org.permission.setting.update", "org.admin.apps"], putSettings],
  // One setting (kustomer-apps.md §2): a secret reads as the mask. The answer's shape is a guess
  // (`{data: {type: "setting", id, attributes: {value}}}`), as the edge's reader (edge::trust).
  ["GET", /^\/v1\/settings\/([^/]+)\/([^/]+)\/([^/]+)$/, "GET /v1/settings/:app/:category/:name", ["org.permission.setting.read", "org.user.setting.read"], getSetting],
  ["GET", /^\/v1\/auth\/tokens\/current$/, "GET /v1/auth/tokens/current", [], getToken],
  // App registration (kustomer-apps.md §1): see apps.js for the guessed install route.
  ["POST", /^\/v1\/apps\/available$/, "POST /v1/apps/available", ["org.admin.apps"], registerApp],
  ["GET", /^\/v1\/apps\/available$/, "GET /v1/apps/available", ["org.admin.apps"], listApps],
  ["POST", /^\/v1\/apps\/([^/]+)\/install$/, "POST /v1/apps/:app/install", ["org.admin.apps"], installApp],
  ["GET", /^\/v1\/apps\/installed$/, "GET /v1/apps/installed", ["org.admin.apps"], listInstalled],
  ["GET", /^\/v1\/klasses\/([^/]+)$/, "GET /v1/klasses/:name", [], getKlass],
  // Commands (kustomer-apps.md §7): any user of the org may run the org's apps' commands (a
  // guess: Kustomer documents no role limits on commands).
  ["POST", /^\/v1\/commands\/([^/]+)\/run$/, "POST /v1/commands/:name/run", [], runCommand],
];

/** A /v1 call's answer; held back (POST /latency) after it is counted and worded. */
export async function api(sb, request, path) {
  const response = await answerApi(sb, request, path);
  await holdBack(sb);
  return response;
}

async function answerApi(sb, request, path) {
  const storage = sb.ctx.storage;
  const route = API_ROUTES.find(([method, pattern]) => method === request.method && pattern.test(path));
  const name = route ? route[2] : `${request.method} /v1/*`;
  const auth = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
  const key = auth && Object.hasOwn(API_KEYS, auth[1]) ? API_KEYS[auth[1]] : undefined;

  // Every call counts, rejected or not, as on the real rate limit.
  const stats = (await storage.get("stats")) ?? { total: 0, byRoute: {} };
  stats.total++;
  stats.byRoute[name] = (stats.byRoute[name] ?? 0) + 1;
  await storage.put("stats", stats);
  if (name === PATCH_ROUTE) await countWrite(storage, { conversation: decodePathPart(route[1].exec(path)[1]) });
  const budget = await spend(storage, key?.org);

  // An injected fault answers first, as before the budget existed; the call still counts.
  const fault = await takeFault(storage, request.method, path, budget.headers);
  if (fault) {
    if (key) await account(storage, budget, auth[1], false);
    return fault;
  }
  if (key) await account(storage, budget, auth[1], budget.over);
  if (budget.over) return spentAnswer(budget);

  let response;
  try {
    response = await serve(sb, request, path, route, key);
  } catch (e) {
    response = errorResponse(e);
  }
  if (name === PATCH_ROUTE && response.ok) await countWrite(storage, { applied: true });
  for (const [k, v] of Object.entries(budget.headers)) response.headers.set(k, v);
  return response;
}

async function serve(sb, request, path, route, key) {
  if (!key) return apiError(401, "unauthorized", "Unauthorized", "Missing or unknown API key.");
  if (!route) return apiError(404, "not_found", "Not Found", `No route for ${request.method} ${path}.`);
  const [, pattern, , roles, handler] = route;
  if (roles.length && !roles.some((r) => key.roles.includes(r))) {
    return apiError(403, "forbidden", "Forbidden", `The key lacks one of these roles: ${roles.join(", ")}.`);
  }
  const param = pattern.exec(path)[1];
  return handler(sb, request, key, param && decodeURIComponent(param), path);
}

/** `GET /v1/auth/tokens/current`: the key's org and roles. */
function getToken(sb, request, key) {
  return json(200, {
    data: {
      type: "token",
      id: key.token,
      attributes: { org: key.org, roles: key.roles },
      relationships: { org: { data: { type: "org", id: key.org } } },
    },
  });
}
