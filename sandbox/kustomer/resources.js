// The org's resources as the API reads them: one conversation, customer, user or brand by id,
// the users' and brands' lists, tags by ids, and the customer search. Conversations' writes are
// in conversations.js.
import { apiError, isObject, json, readJson } from "./http.js";
import { record } from "./store.js";

const RESOURCE_TYPES = { conversations: "conversation", customers: "customer", users: "user", brands: "brand" };
// Lists (`GET /v1/users`, `/v1/brands`) page as Kustomer's do: `page` from 1, `pageSize` up to 100.
const MAX_PAGE_SIZE = 100;
const MAX_PAGE = 1_000_000_000;

/** `GET /v1/<type>/:id`. */
export async function getResource(sb, request, key, id, path) {
  const type = RESOURCE_TYPES[path.split("/")[2]];
  const rec = await record(sb.ctx.storage, type, id, key.org);
  if (!rec) return apiError(404, "not_found", "Not Found", `No ${type} ${id}.`);
  return json(200, { data: rec.resource });
}

// `/v1/tags/a,b`: a list of the tags that exist; 404 only when none does.
export async function getTags(sb, request, key, ids) {
  const found = [];
  for (const id of ids.split(",").filter(Boolean)) {
    const rec = await record(sb.ctx.storage, "tag", id, key.org);
    if (rec) found.push(rec.resource);
  }
  if (!found.length) return apiError(404, "not_found", "Not Found", `No tag ${ids}.`);
  return json(200, { data: found });
}

/**
 * `GET /v1/users`, `GET /v1/brands`: one page of the org's resources of that type, by id, as
 * Kustomer pages its lists: `page` (from 1) and `pageSize` (1–100, default 100) in the query,
 * `links.next` the path of the next page from the API root (null on the last page).
 */
export async function listResources(sb, request, key, _param, path) {
  const resource = path.split("/")[2];
  const type = RESOURCE_TYPES[resource];
  const query = new URL(request.url).searchParams;
  const whole = (name, fallback, max) => {
    const text = query.get(name);
    if (text === null) return fallback;
    const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
    return n >= 1 && n <= max ? n : undefined;
  };
  const page = whole("page", 1, MAX_PAGE);
  const pageSize = whole("pageSize", MAX_PAGE_SIZE, MAX_PAGE_SIZE);
  for (const [name, value, range] of [["page", page, "1 or more"], ["pageSize", pageSize, `from 1 to ${MAX_PAGE_SIZE}`]]) {
    if (value === undefined) {
      const detail = `${name} must be a whole number ${range}, not ${JSON.stringify(query.get(name))}.`;
      return apiError(400, "invalid_query", "Bad Request", detail, undefined, { parameter: name });
    }
  }
  const all = [];
  for (const rec of (await sb.ctx.storage.list({ prefix: `rec:${type}:` })).values()) if (rec.org === key.org) all.push(rec.resource);
  const start = (page - 1) * pageSize;
  const link = (p) => `/v1/${resource}?page=${p}&pageSize=${pageSize}`;
  return json(200, {
    data: all.slice(start, start + pageSize),
    links: { self: link(page), first: link(1), prev: page > 1 ? link(page - 1) : null, next: start + pageSize < all.length ? link(page + 1) : null },
    meta: { page, pageSize },
  });
}

/**
 * `POST /v1/customers/search?page=&pageSize=`: the org's customers matching the body's `and`
 * list, oldest change first. Documented (kustomer-apps.md §10, Kustomer's search docs): the
 * `and` list of `customer_*` criteria with `gte`/`lte` on dates, `queryContext`, and
 * `includeDeleted: true` to include deleted customers. Guessed here, as the edge guesses them
 * (edge::forget): only `customer_updated_at` ranges are understood (any other criterion is a
 * 400 here), paging is `page`/`pageSize` as Kustomer's lists, the sort is by `updatedAt`
 * ascending whatever `sort` says, and a deleted customer carries `attributes.deleted: true`
 * and `deletedAt`, its `updatedAt` being the deletion time.
 */
export async function searchCustomers(sb, request, key) {
  const body = await readJson(request);
  if (!isObject(body) || body.queryContext !== "customer" || !Array.isArray(body.and)) {
    return apiError(400, "bad_request", "Bad Request", "Body must be {and: [...], queryContext: \"customer\"}.");
  }
  let gte = -Infinity;
  let lte = Infinity;
  for (const criterion of body.and) {
    const range = isObject(criterion) && Object.keys(criterion).length === 1 ? criterion.customer_updated_at : undefined;
    if (!isObject(range)) return apiError(400, "bad_request", "Bad Request", `The sandbox searches by customer_updated_at only, not ${JSON.stringify(criterion)}.`);
    if (range.gte !== undefined) gte = Math.max(gte, Date.parse(range.gte));
    if (range.lte !== undefined) lte = Math.min(lte, Date.parse(range.lte));
    if (Number.isNaN(gte) || Number.isNaN(lte)) return apiError(400, "bad_request", "Bad Request", "Dates must be ISO 8601.");
  }
  const query = new URL(request.url).searchParams;
  const page = Math.max(1, Number(query.get("page") ?? 1) || 1);
  const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, Number(query.get("pageSize") ?? MAX_PAGE_SIZE) || MAX_PAGE_SIZE));
  const prefixes = ["rec:customer:", ...(body.includeDeleted === true ? ["deleted:customer:"] : [])];
  const found = [];
  for (const prefix of prefixes) {
    for (const rec of (await sb.ctx.storage.list({ prefix })).values()) {
      const at = Date.parse(rec.resource.attributes?.updatedAt ?? "");
      if (rec.org === key.org && at >= gte && at <= lte) found.push(rec.resource);
    }
  }
  found.sort((a, b) => Date.parse(a.attributes.updatedAt) - Date.parse(b.attributes.updatedAt) || (a.id < b.id ? -1 : 1));
  const start = (page - 1) * pageSize;
  return json(200, { data: found.slice(start, start + pageSize), meta: { page, pageSize, total: found.length } });
}

/**
 * `DELETE /customers/{id}` (a control): deletes the customer as `DELETE /v1/customers/{id}`
 * does, permanently (GET answers 404), leaving what the search finds with `includeDeleted`.
 */
export async function deleteCustomer(storage, id) {
  const rec = await record(storage, "customer", id);
  if (!rec) return json(404, { error: `No customer ${id}.` });
  const now = new Date().toISOString();
  const gone = { ...rec.resource, attributes: { ...rec.resource.attributes, deleted: true, deletedAt: now, updatedAt: now } };
  await storage.put(`deleted:customer:${id}`, { org: rec.org, resource: gone });
  await storage.delete(`rec:customer:${id}`);
  return json(200, { deleted: id, at: now });
}
