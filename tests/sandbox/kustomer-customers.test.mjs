// The Kustomer sandbox's customer search and its control to delete a customer: how the edge's
// daily sweep learns of deletions (kustomer-apps.md §10). The real workerd runs
// sandbox/test-config.capnp on 127.0.0.1, state in a temporary directory. Run with
// `node --test tests/sandbox/kustomer-customers.test.mjs`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorkerd, stopWorkerd } from "./workerd.mjs";

const root = new URL("../../", import.meta.url);
const KEY = "sandbox-kustomer-key";

let storageDir;
let workerd;

async function kustomer(method, path, body) {
  const headers = { authorization: `Bearer ${KEY}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${workerd.base}/sandbox/kustomer${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed };
}

/** The search the edge makes (edge::forget::search_request): changed in [since, until]. */
const search = (since, until, { includeDeleted = true, page = 1, pageSize = 100 } = {}) =>
  kustomer("POST", `/v1/customers/search?page=${page}&pageSize=${pageSize}`, {
    and: [{ customer_updated_at: { gte: since } }, { customer_updated_at: { lte: until } }],
    queryContext: "customer",
    includeDeleted,
    sort: [{ customer_updated_at: "asc" }],
  });

before(async () => {
  execFileSync(process.execPath, ["scripts/build-stella-schema.mjs"], { cwd: root, stdio: "pipe" });
  storageDir = mkdtempSync(join(tmpdir(), "kustomer-customers-test-"));
  workerd = await startWorkerd({ dir: storageDir });
  await kustomer("POST", "/reset");
});

after(async () => {
  await stopWorkerd(workerd);
  rmSync(storageDir, { recursive: true, force: true });
});

describe("Kustomer sandbox: deleted customers", () => {
  it("deletes a customer for good and the search finds them only with includeDeleted", async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    assert.equal((await kustomer("GET", "/v1/customers/cust-zoe")).status, 200);
    const deleted = await kustomer("DELETE", "/customers/cust-zoe");
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.equal((await kustomer("GET", "/v1/customers/cust-zoe")).status, 404);
    assert.equal((await kustomer("DELETE", "/customers/cust-zoe")).status, 404, "once");
    const until = new Date(Date.now() + 1000).toISOString();
    const found = await search(since, until);
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.deepEqual(found.body.data.map((c) => c.id), ["cust-zoe"]);
    assert.equal(found.body.data[0].attributes.deleted, true);
    assert.equal(found.body.data[0].attributes.emails[0].email, "zoe.okubo@example.com");
    assert.deepEqual((await search(since, until, { includeDeleted: false })).body.data, []);
    assert.deepEqual((await search("2000-01-01T00:00:00Z", since)).body.data.map((c) => c.id).includes("cust-zoe"), false);
  });

  it("pages, and refuses what it does not understand", async () => {
    assert.equal((await kustomer("DELETE", "/customers/cust-xss")).status, 200);
    const found = await search("2000-01-01T00:00:00Z", new Date(Date.now() + 1000).toISOString(), { pageSize: 1, page: 2 });
    assert.equal(found.status, 200);
    assert.equal(found.body.data.length, 1);
    assert.equal(found.body.meta.page, 2);
    const odd = await kustomer("POST", "/v1/customers/search", { and: [{ customer_name: { equals: "x" } }], queryContext: "customer" });
    assert.equal(odd.status, 400);
  });
});
