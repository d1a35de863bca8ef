// The Stella sandbox's pace (POST /sandbox/stella/pace), which the kill drill relies on to land
// every kill while surveys remain: each request is recorded only after the delay, none past
// `acceptUpTo` (held until the pace changes, or answered 503 with nothing recorded after
// `holdMs`), and a reset or DELETE restores full speed. The sandboxes alone in workerd.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { waitFor } from "../http/harness.mjs";

const root = new URL("../../", import.meta.url);
const valid = JSON.parse(readFileSync(new URL("tests/fixtures/kustomer/expected-stella-request.json", root), "utf8"));

let dir;
let workerd;
let base;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "stella-pace-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  workerd = spawn("node_modules/.bin/workerd", ["serve", "sandbox/test-config.capnp", "--socket-addr", `http=127.0.0.1:${port}`, "--directory-path", `sandbox-state=${dir}`], {
    cwd: root,
    stdio: "ignore",
  });
  await waitFor(async () => (await fetch(`${base}/sandbox/stella/requests`).catch(() => null))?.ok, 15_000, "workerd to start");
});

after(() => {
  workerd?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function call(method, path, body) {
  const res = await fetch(`${base}/sandbox/stella${path}`, {
    method,
    headers: { "content-type": "application/json", "x-api-key": "sandbox-stella-key" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed };
}

const recorded = async () => (await call("GET", "/requests")).body.requests.length;

test("pace: recorded after the delay, none past acceptUpTo until it is raised or removed", async () => {
  await call("POST", "/reset");
  assert.equal((await call("POST", "/pace", { delayMs: 200, acceptUpTo: 2 })).status, 200);
  const started = Date.now();
  const answers = Array.from({ length: 4 }, () => call("POST", "/v1/requests", valid).then((r) => ({ ...r, at: Date.now() })));
  await waitFor(async () => (await call("GET", "/pace")).body.held === 2, 5_000, "two held");
  assert.equal(await recorded(), 2);
  assert.equal((await call("GET", "/requests")).body.attempts, 4);

  await call("POST", "/pace", { delayMs: 200, acceptUpTo: 3 });
  await waitFor(async () => (await recorded()) === 3 && (await call("GET", "/pace")).body.held === 1, 5_000, "one more recorded");
  assert.equal((await call("DELETE", "/pace")).status, 200);
  const done = await Promise.all(answers);
  assert.deepEqual(done.map((r) => r.status), [200, 200, 200, 200]);
  assert.ok(done.every((r) => r.at - started >= 200), "none answered before the delay");
  assert.equal(await recorded(), 4);
  assert.deepEqual((await call("GET", "/pace")).body, { pace: null, held: 0, heldOut: 0 });
});

test("pace: a request held past holdMs is answered 503 and not recorded; reset restores full speed", async () => {
  await call("POST", "/reset");
  await call("POST", "/pace", { acceptUpTo: 0, holdMs: 300 });
  const r = await call("POST", "/v1/requests", valid);
  assert.equal(r.status, 503);
  assert.equal(await recorded(), 0);
  assert.equal((await call("GET", "/pace")).body.heldOut, 1);
  await call("POST", "/reset");
  assert.equal((await call("POST", "/v1/requests", valid)).status, 200);
  assert.equal(await recorded(), 1);
});

test("pace: a body out of range is refused", async () => {
  for (const body of [{ delayMs: -1 }, { jitterMs: 1.5 }, { acceptUpTo: "3" }, { holdMs: 600_000 }]) {
    assert.equal((await call("POST", "/pace", body)).status, 400, JSON.stringify(body));
  }
});
