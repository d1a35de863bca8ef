// The road to production, offline: `make deploy DRY_RUN=1` bundles the edge that `make build` left
// (test-js runs after it) and connects nowhere; scripts/deploy.sh's real deploy against a fake
// Cloudflare API on 127.0.0.1 (wrangler's CLOUDFLARE_API_BASE_URL) refuses a Worker without its
// SETTINGS_KEY secret and keeps the deployed address; `make manifest` takes that address, or
// EDGE_URL, and refuses a bad one in plain words. Needs cargo (make manifest runs app-manifest).
//
// Every node process these commands start (make's scripts, wrangler) loads a guard that refuses,
// and records, any connection or name lookup that is not 127.0.0.1; HTTPS_PROXY and HTTP_PROXY
// point at a closed 127.0.0.1 port for whatever honours them.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const CHECKED_IN = join(root, "app-manifest/stella_connect.json");
const PATH = `${join(root, "node_modules/.bin")}:${join(homedir(), ".cargo/bin")}:${process.env.PATH}`;
const ACCOUNT = "test-account";
const WORKER = "stella-connect-kustomer";
const DEPLOYED = `https://${WORKER}.acme.workers.dev`;

const GUARD = `
import net from "node:net";
import dns from "node:dns";
import { appendFileSync } from "node:fs";
const LOCAL = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1", "localhost"]);
const note = (what) => appendFileSync(process.env.NET_GUARD_LOG, what + "\\n");
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let [a, b] = Array.isArray(args[0]) ? args[0] : args;
  const o = a !== null && typeof a === "object" ? a : typeof a === "string" && isNaN(Number(a)) ? { path: a } : { port: a, host: b };
  const host = o.host ?? "localhost";
  if (o.path === undefined && !LOCAL.has(host)) {
    note("connect " + host + ":" + o.port);
    process.nextTick(() => this.destroy(Object.assign(new Error("blocked by the test: " + host), { code: "ECONNREFUSED" })));
    return this;
  }
  return connect.apply(this, args);
};
const lookup = dns.lookup;
dns.lookup = function (host, ...rest) {
  if (!LOCAL.has(host)) {
    note("lookup " + host);
    const done = rest.at(-1);
    return process.nextTick(() => done(Object.assign(new Error("blocked by the test: " + host), { code: "ENOTFOUND" })));
  }
  return lookup.call(this, host, ...rest);
};
`;

let dir;
let guardLog;
let closedPort;
let api; // the fake Cloudflare API
let apiBase;
let received; // [{method, path, body}]
let secrets; // what the fake answers for the Worker's secrets: "missing-worker", or a list of names

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "deploy-test-"));
  writeFileSync(join(dir, "guard.mjs"), GUARD);
  guardLog = join(dir, "net.log");
  // A port nothing listens on: take one, then let it go.
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  closedPort = probe.address().port;
  probe.close();
  api = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const path = req.url.replace(/^\/client\/v4/, "").replace(/\?.*/, "");
    received.push({ method: req.method, path, body });
    const ok = (result) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ success: true, errors: [], messages: [], result }));
    const script = `/accounts/${ACCOUNT}/workers/scripts/${WORKER}`;
    if (path === `${script}/secrets`) {
      if (secrets === "missing-worker") {
        const errors = [{ code: 10007, message: "This Worker does not exist on your account." }];
        return res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ success: false, errors, messages: [], result: null }));
      }
      return ok(secrets.map((name) => ({ name, type: "secret_text" })));
    }
    if (path === `/accounts/${ACCOUNT}/workers/services/${WORKER}`) {
      return ok({ default_environment: { environment: "production", script: { tag: "tag-1", tags: [], last_deployed_from: "wrangler", migration_tag: "v1" } } });
    }
    if (path === `/accounts/${ACCOUNT}/workers/scripts`) return ok([{ id: WORKER, tag: "tag-1", migration_tag: "v1" }]);
    if (path === `${script}/deployments` && req.method === "GET") {
      return ok({ deployments: [{ id: "dep-0", source: "wrangler", strategy: "percentage", created_on: "2026-01-01T00:00:00Z", versions: [{ version_id: "ver-0", percentage: 100 }] }] });
    }
    if (path === `${script}/assets-upload-session`) return ok({ jwt: "jwt", buckets: [] });
    if (path === `${script}/versions`) return ok({ id: "ver-1", number: 1, startup_time_ms: 5, metadata: { has_preview: false }, resources: { script: { etag: "etag-1", handlers: ["fetch"] }, script_runtime: {}, bindings: [] } });
    if (path === `${script}/deployments`) return ok({ id: "dep-1" });
    if (path === `${script}/script-settings`) return ok({});
    if (path === `/accounts/${ACCOUNT}/workers/subdomain`) return ok({ subdomain: "acme" });
    if (path === `${script}/subdomain`) return ok({ enabled: true, previews_enabled: false });
    const errors = [{ code: 10000, message: `the fake has no ${req.method} ${path}` }];
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ success: false, errors, messages: [], result: null }));
  }).listen(0, "127.0.0.1");
  await once(api, "listening");
  apiBase = `http://127.0.0.1:${api.address().port}/client/v4`;
});

after(() => {
  api.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  received = [];
  secrets = ["SETTINGS_KEY"];
  writeFileSync(guardLog, "");
});

// Runs a command under the guard; {code, stdout, stderr, output, net}.
async function run(command, args, env = {}) {
  const { CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_BASE_URL, EDGE_URL, MANIFEST, DEPLOY_DIR, DRY_RUN, NODE_OPTIONS, ...inherited } = process.env;
  const home = mkdtempSync(join(dir, "home-"));
  const child = spawn(command, args, {
    cwd: root,
    env: {
      ...inherited,
      PATH,
      // wrangler keeps its login and logs here: none of the machine's.
      XDG_CONFIG_HOME: home,
      TMPDIR: home,
      HTTPS_PROXY: `http://127.0.0.1:${closedPort}`,
      HTTP_PROXY: `http://127.0.0.1:${closedPort}`,
      NO_PROXY: "127.0.0.1",
      NODE_OPTIONS: `--import ${join(dir, "guard.mjs")}`,
      NET_GUARD_LOG: guardLog,
      ...env,
    },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(child, "close");
  return { code, stdout, stderr, output: stdout + stderr, net: readFileSync(guardLog, "utf8") };
}

const make = (args, env) => run("make", ["-s", "--no-print-directory", ...args], env);
const deployDir = () => mkdtempSync(join(dir, "deploy-"));
const realDeploy = (env) => run("scripts/deploy.sh", [], { CLOUDFLARE_API_BASE_URL: apiBase, CLOUDFLARE_API_TOKEN: "test-token", CLOUDFLARE_ACCOUNT_ID: ACCOUNT, ...env });
const placeholder = () => new URL(JSON.parse(readFileSync(CHECKED_IN, "utf8")).iconUrl).origin;

describe("make deploy", () => {
  it("the guard refuses and records a connection beyond 127.0.0.1 (so an empty log means none)", async () => {
    const r = await run(process.execPath, ["-e", 'require("node:net").connect(443, "192.0.2.1").on("error", (e) => console.log(e.message))']);
    assert.equal(r.stdout.trim(), "blocked by the test: 192.0.2.1");
    assert.equal(r.net, "connect 192.0.2.1:443\n");
  });

  it("DRY_RUN=1 bundles the worker, its Wasm and the Durable Object class, and deploys nothing", async () => {
    const out = deployDir();
    const r = await make(["deploy", "DRY_RUN=1"], { DEPLOY_DIR: out });
    assert.equal(r.code, 0, r.output);
    assert.equal(r.net, "", "no connection beyond 127.0.0.1");
    assert.match(r.stdout, /^wrangler 4\.\d+\.\d+ \(node_modules\/\.bin\/wrangler, pinned in package\.json\)$/m);
    assert.match(r.stdout, /--dry-run: exiting now\./);
    assert.match(r.stdout, /nothing was deployed/);
    assert.doesNotMatch(r.output, /update available|telemetry/i);
    const bundle = join(out, "bundle");
    const files = readdirSync(bundle);
    const worker = readFileSync(join(bundle, "edge.js"), "utf8");
    const wasm = files.find((f) => f.endsWith("stella_connect_bg.wasm"));
    assert.ok(wasm, `no Wasm module in ${files}`);
    assert.ok(worker.includes(`from "./${wasm}"`), "the worker imports the Wasm module");
    assert.ok(readFileSync(join(bundle, wasm)).equals(readFileSync(join(root, "build/worker/stella_connect_bg.wasm"))), "the Wasm is the build's");
    assert.match(worker, /var OrgScheduler = class extends DurableObject/);
    assert.match(worker, /export \{[^}]*OrgScheduler/);
    assert.equal(existsSync(join(out, "edge-url")), false, "a dry run keeps no address");
  });

  it("refuses the first deploy until SETTINGS_KEY is set, with the one-time command (exit 2)", async () => {
    secrets = "missing-worker";
    const r = await realDeploy({ DEPLOY_DIR: deployDir() });
    assert.equal(r.code, 2, r.output);
    assert.match(r.stderr, /^Not deployed: this is the first deploy/m);
    assert.match(r.stderr, /^ {2}openssl rand -base64 32 \| node_modules\/\.bin\/wrangler secret put SETTINGS_KEY$/m);
    assert.deepEqual(received.map((q) => q.path), [`/accounts/${ACCOUNT}/workers/scripts/${WORKER}/secrets`]);
    assert.equal(r.net, "");
  });

  it("refuses a Worker without SETTINGS_KEY before uploading anything (exit 2)", async () => {
    secrets = ["SETTINGS_KEY_PREVIOUS"];
    const r = await realDeploy({ DEPLOY_DIR: deployDir() });
    assert.equal(r.code, 2, r.output);
    assert.match(r.stderr, /^Not deployed: the Worker has no SETTINGS_KEY secret, and the edge refuses to start without it/m);
    assert.match(r.stderr, /wrangler secret put SETTINGS_KEY$/m);
    assert.equal(received.length, 1);
  });

  it("deploys, keeps the address wrangler names, and make manifest takes it", async () => {
    const out = deployDir();
    const r = await realDeploy({ DEPLOY_DIR: out });
    assert.equal(r.code, 0, r.output);
    assert.equal(r.net, "");
    const upload = received.find((q) => q.method === "POST" && q.path.endsWith("/versions"));
    assert.ok(upload, received.map((q) => `${q.method} ${q.path}`).join("\n"));
    assert.match(upload.body, /class extends DurableObject/);
    assert.match(upload.body, /"class_name":"OrgScheduler"/);
    assert.equal(readFileSync(join(out, "edge-url"), "utf8"), `${DEPLOYED}\n`);
    assert.match(r.stdout, new RegExp(`^Deployed the edge at ${DEPLOYED} `, "m"));
    assert.match(r.stdout, new RegExp(`curl ${DEPLOYED}/healthz +→ \\{"ok":true\\}`));

    const file = join(out, "stella_connect.json");
    const m = await make(["manifest"], { DEPLOY_DIR: out, MANIFEST: file });
    assert.equal(m.code, 0, m.output);
    assert.match(m.stdout, new RegExp(`the definition for the edge at ${DEPLOYED} \\(taken from the deploy `));
    const def = JSON.parse(readFileSync(file, "utf8"));
    assert.equal(def.actions[0].inputTemplate.uri, `${DEPLOYED}/v1/kustomer/conversation-closed`);
    assert.ok(!readFileSync(file, "utf8").includes(new URL(placeholder()).host));
    // EDGE_URL wins over the deploy's address.
    const other = await make(["manifest", "EDGE_URL=https://edge.acme.example.test/"], { DEPLOY_DIR: out, MANIFEST: file });
    assert.equal(other.code, 0, other.output);
    assert.equal(JSON.parse(readFileSync(file, "utf8")).iconUrl, "https://edge.acme.example.test/app/icon.svg");
  });
});

describe("make manifest", () => {
  it("refuses a bad EDGE_URL in plain words and writes nothing", async () => {
    const out = deployDir();
    const file = join(out, "stella_connect.json");
    const cases = [
      ["http://edge.acme.example.test", /must start with https:\/\//],
      ["https://edge.acme.example.test/stella", /must be the edge's address alone, without a path, query or fragment/],
      ["https://edge.acme.example.test/?x=1", /without a path, query or fragment/],
      ["edge.acme.example.test", /is not an address: give the edge's https address/],
      [placeholder(), /is the placeholder, not a deployed edge: run make deploy first/],
    ];
    for (const [url, why] of cases) {
      const r = await make(["manifest", `EDGE_URL=${url}`], { DEPLOY_DIR: out, MANIFEST: file });
      assert.equal(r.code, 2, `${url}: ${r.output}`);
      assert.ok(r.stderr.startsWith(`Not written: the edge address ${url} (from EDGE_URL) `), r.stderr);
      assert.match(r.stderr, why, url);
      assert.equal(existsSync(file), false, url);
    }
  });

  it("without EDGE_URL or a deploy, writes the placeholder's definition, which is the checked-in one", async () => {
    const out = deployDir();
    mkdirSync(join(out, "empty"));
    const file = join(out, "stella_connect.json");
    const r = await make(["manifest"], { DEPLOY_DIR: join(out, "empty"), MANIFEST: file });
    assert.equal(r.code, 0, r.output);
    const edge = new URL(JSON.parse(readFileSync(file, "utf8")).iconUrl).origin;
    assert.match(edge, /^https:\/\/[a-z-]+\.example\.invalid$/, "a placeholder under the reserved .invalid domain");
    assert.ok(r.stdout.startsWith(`${file}: the definition for the placeholder edge ${edge} `), r.stdout);
    assert.equal(edge, placeholder(), "the checked-in definition is the placeholder's");
  });
});
