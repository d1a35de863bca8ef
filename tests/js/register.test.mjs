// scripts/register.mjs against a fake Kustomer (a node http server on 127.0.0.1 that records
// each request and answers as the test says). Needs cargo: the script runs the Rust check.
// The checked-in definition carries the placeholder edge, which a real Kustomer is never sent:
// the tests register one generated for a deployed-looking edge (EDGE), as `make manifest` does.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const CHECKED_IN = join(root, "app-manifest/stella_connect.json");
const EDGE = "https://stella-connect-kustomer.acme.example.test";
const KEY = "test-secret-key-4f7a9c";
// The version the checked-in manifest declares (raised with each release), as a regex part.
const VERSION = JSON.parse(readFileSync(CHECKED_IN, "utf8")).version;
const V = VERSION.replaceAll(".", "\\.");

let server;
let base;
let received; // [{method, url, headers, body}]
let answer; // (request) => [status, body]
let dir;
let MANIFEST; // the definition for EDGE

const PATH = `${process.env.PATH}:${join(homedir(), ".cargo/bin")}`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "register-test-"));
  MANIFEST = join(dir, "stella_connect.json");
  const printed = spawnSync("cargo", ["run", "--quiet", "--locked", "--bin", "app-manifest", "--", "print", "--edge-url", EDGE], {
    cwd: root,
    env: { ...process.env, PATH },
    encoding: "utf8",
  });
  assert.equal(printed.status, 0, printed.stderr);
  writeFileSync(MANIFEST, printed.stdout);
  server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const request = { method: req.method, url: req.url, headers: req.headers, body };
    received.push(request);
    const [status, reply] = answer(request);
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(reply));
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  received = [];
  answer = () => [500, { errors: [{ status: "500", code: "unexpected", title: "No answer set", detail: "" }] }];
});

// Runs the script (asynchronously: the fake server lives in this process).
async function register(args = [], env = { KUSTOMER_API_URL: base, KUSTOMER_API_KEY: KEY, MANIFEST }) {
  const { KUSTOMER_API_URL, KUSTOMER_API_KEY, MANIFEST: _, PORT, EDGE_URL, ...inherited } = process.env;
  const child = spawn(process.execPath, ["scripts/register.mjs", ...args], {
    cwd: root,
    env: { ...inherited, PATH, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(child, "close");
  return { code, stdout, stderr, output: stdout + stderr };
}

const kustomerError = (status, code, detail, meta) => [status, { errors: [{ status: String(status), code, title: "Error", detail, meta }] }];

describe("scripts/register.mjs", () => {
  it("sends the checked file with the Bearer key and reports the registration", async () => {
    answer = ({ body }) => {
      const def = JSON.parse(body);
      return [201, { data: { type: "app", id: def.app, attributes: { app: def.app, version: def.version, title: def.title } } }];
    };
    const r = await register();
    assert.equal(r.code, 0, r.output);
    assert.match(r.stdout, new RegExp(`^Registered stella_connect ${V} with 127\\.0\\.0\\.1:\\d+\\.$`, "m"));
    assert.equal(received.length, 1);
    const [request] = received;
    assert.equal(request.method, "POST");
    assert.equal(request.url, "/v1/apps/available");
    assert.equal(request.headers.authorization, `Bearer ${KEY}`);
    assert.equal(request.headers["content-type"], "application/json");
    assert.equal(request.body, readFileSync(MANIFEST, "utf8"));
    assert.ok(!r.output.includes(KEY));
  });

  it("sends nothing when the definition breaks the platform's rules", async () => {
    const file = join(dir, "unknown-key.json");
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(MANIFEST, "utf8")), extraKey: 1 }));
    const r = await register(["--file", file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Not sent: the definition breaks the platform's rules:\nunknown_top_level_key at extraKey: /);
    assert.deepEqual(received, []);
  });

  it("--dry-run checks and says where it would send, without sending", async () => {
    const r = await register(["--dry-run"]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.stdout, new RegExp(`Dry run: would send POST http://127\\.0\\.0\\.1:\\d+/v1/apps/available with stella_connect ${V} `));
    assert.deepEqual(received, []);
  });

  it("explains a version that is not higher than the registered one", async () => {
    answer = () => kustomerError(409, "version_not_higher", "Version must be higher.", { registered: "99.0.0", version: VERSION });
    const r = await register();
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`version ${V} is not higher than the registered 99\\.0\\.0: raise \`version\` in Cargo\\.toml and run make manifest`));
    // Any 4xx that says so, without the sandbox's code.
    answer = () => [400, { message: "App version must be greater than the current version" }];
    assert.match((await register()).stderr, new RegExp(`version ${V} is not higher than the registered one`));
  });

  it("names the missing role on 403, the key on 401, the key Kustomer did not know", async () => {
    answer = () => kustomerError(403, "forbidden", "The key lacks one of these roles: org.admin.apps.");
    const forbidden = await register();
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /the key lacks the org\.admin\.apps role/);
    answer = () => kustomerError(401, "unauthorized", "Missing or unknown API key.");
    assert.match((await register()).stderr, /did not accept the key; check KUSTOMER_API_KEY/);
    answer = () => kustomerError(400, "unknown_key", "Unknown top-level key.", { key: "extraKey" });
    assert.match((await register()).stderr, /Kustomer refused the definition: unknown top-level key `extraKey`/);
    answer = () => [200, "<html>"];
    assert.match((await register()).stderr, /answered 200 but not with Kustomer's JSON/);
    answer = () => kustomerError(503, "unavailable", "Try again later.");
    const down = await register();
    assert.equal(down.code, 1);
    assert.match(down.stderr, /answered 503 Service Unavailable unavailable: Try again later\./);
  });

  it("never prints the key, even when the server echoes it", async () => {
    answer = ({ headers }) => kustomerError(500, "internal", `Bad header: ${headers.authorization}`);
    const r = await register();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Bad header: Bearer \[redacted\]/);
    answer = ({ headers }) => kustomerError(401, "unauthorized", `Unknown key ${headers.authorization.slice(7)}`);
    const unknown = await register();
    assert.equal(received.length, 2);
    for (const out of [r.output, unknown.output]) assert.ok(!out.includes(KEY), out);
  });

  it("refuses to send a real Kustomer the placeholder edge, in plain words (exit 2)", async () => {
    answer = () => [201, { data: { attributes: {} } }];
    const placeholder = new URL(JSON.parse(readFileSync(CHECKED_IN, "utf8")).iconUrl).origin;
    assert.match(placeholder, /\.invalid$/, "the checked-in definition is the placeholder's (make manifest)");
    for (const args of [[], ["--dry-run"]]) {
      const r = await register(args, { KUSTOMER_API_URL: base, KUSTOMER_API_KEY: KEY });
      assert.equal(r.code, 2, r.output);
      assert.ok(r.stderr.startsWith(`Not sent: app-manifest/stella_connect.json points Kustomer at the placeholder edge ${placeholder} (`), r.stderr);
      assert.match(r.stderr, /actions\[0\]\.inputTemplate\.uri/);
      assert.match(r.stderr, /not at a deployed edge/);
      assert.match(r.stderr, /^  make deploy$/m);
      assert.match(r.stderr, /^  make manifest .*make manifest EDGE_URL=https:\/\/<your edge>/m);
      assert.doesNotMatch(r.stdout, /Dry run/);
    }
    assert.deepEqual(received, []);
    // The local sandbox of `make run` takes it (serve.sh registers one for the local address).
    const local = await register(["--dry-run"], {});
    assert.equal(local.code, 0, local.output);
    assert.match(local.stdout, /target: the local Kustomer sandbox/);
  });

  it("needs KUSTOMER_API_KEY with KUSTOMER_API_URL, and https off loopback", async () => {
    const noKey = await register([], { KUSTOMER_API_URL: base });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /KUSTOMER_API_KEY/);
    const plain = await register([], { KUSTOMER_API_URL: "http://acme.api.kustomerapp.com", KUSTOMER_API_KEY: KEY });
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /must start with https:\/\//);
    assert.deepEqual(received, []);
  });
});
