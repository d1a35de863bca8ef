// Starts the real local stack (scripts/serve.sh → workerd with the edge and the sandboxes) on a
// free loopback port with its own state folder, and gives tests small helpers over HTTP.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const KUSTOMER_KEY = "sandbox-kustomer-key";
export const STELLA_KEY = "sandbox-stella-key";
// The Stella sandbox's API secret for that key (Data Return and the roster): the sandbox org's
// settings carry it, so outcomes are read back in every test, as under `make run`.
export const STELLA_SECRET = "sandbox-stella-secret";
// The org's app secret, as the Kustomer sandbox seeds it: its close control sends it, and every
// close, delivery log read and resend made here carries it too (the first close registers it).
export const APP_SECRET = "sandbox-app-secret-0123456789";

// The edge's bindings for tests: fast retries and leases, and key checks that a page calling
// Check connection and Preview several times a minute never exhausts; and the Kustomer sandbox's
// API budget so large that it never binds (the budget drill sets its own). A stack may override
// any of them, or omit one (null) for production's default.
const TEST_ENV = {
  RETRY_BASE_MS: "300", LEASE_MS: "2000", KEY_CHECKS_PER_MINUTE: "1000", KUSTOMER_BUDGET: "1000000/60",
  LOG_READS_PER_KEY_PER_MINUTE: "100000", LOG_READS_PER_ORG_PER_MINUTE: "100000",
};

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `ms` pass (a wait for an event, not a timing goal). */
export async function waitFor(check, ms = 20_000, what = "condition", every = 100) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

/** The pids of `parent`'s children named `name`, from /proc/<pid>/stat. */
export function childrenNamed(parent, name) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent && comm === name) found.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

/** A process's resident memory in MB (VmRSS in /proc/<pid>/status). */
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

let serial = 0; // distinct conversation ids within a test process

export class Stack {
  /**
   * `env`: environment for scripts/serve.sh and so for workerd's bindings, over the test
   * defaults (TEST_ENV); a null value leaves that variable unset, even if this process has it.
   */
  constructor({ env = {} } = {}) {
    this.state = mkdtempSync(join(tmpdir(), "stella-edge-"));
    this.log = [];
    this.env = { ...TEST_ENV, ...env };
  }

  /** Starts scripts/serve.sh (and so workerd) without waiting for it; `this.exited` settles with its exit code. */
  spawn() {
    const env = { ...process.env, PORT: String(this.port), STATE_DIR: this.state, ...this.env };
    for (const [name, value] of Object.entries(env)) if (value === null || value === undefined) delete env[name];
    this.proc = spawn("scripts/serve.sh", [], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: serve.sh and workerd die together
    });
    for (const stream of [this.proc.stdout, this.proc.stderr]) stream.on("data", (d) => this.log.push(String(d)));
    // After its output is complete too ("close", not "exit").
    this.exited = new Promise((r) => this.proc.once("close", (code, signal) => r(code ?? signal)));
    return this.proc;
  }

  /** Spawns the stack on a free port without waiting for it to answer (see `exited`). */
  async run() {
    this.port ??= await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    return this.spawn();
  }

  async start() {
    await this.run();
    await waitFor(async () => {
      if (this.proc.exitCode !== null) throw new Error(`serve.sh exited with ${this.proc.exitCode}:\n${this.log.join("").slice(-3000)}`);
      return (await fetch(`${this.base}/healthz`).catch(() => null))?.ok;
    }, 15_000, "workerd to start");
    return this;
  }

  /** The workerd process serve.sh started: it holds the whole stack. */
  workerdPid() {
    return waitFor(async () => childrenNamed(this.proc.pid, "workerd")[0], 5_000, "the workerd process", 50);
  }

  /** Kills workerd at once (no graceful shutdown), as a crash would. */
  async kill() {
    const exited = new Promise((r) => this.proc.once("exit", r));
    process.kill(-this.proc.pid, "SIGKILL");
    await exited;
    // The group's workerd dies with it; wait until its socket is closed for a restart.
    await waitFor(async () => !(await fetch(`${this.base}/healthz`).then(() => true, () => false)), 5_000, "workerd to stop", 50);
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) await this.kill();
    rmSync(this.state, { recursive: true, force: true });
  }

  async request(method, path, { body, headers = {} } = {}) {
    const res = await fetch(this.base + path, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    this.log.push(text);
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, headers: res.headers, body: json, text };
  }

  /**
   * The settings headers the app's workflow action sends, pointing at the sandboxes, with the
   * org's app secret. An override of null leaves that header out.
   */
  settingsHeaders(overrides = {}) {
    const headers = {
      "x-stella-api-key": STELLA_KEY,
      "x-kustomer-api-key": KUSTOMER_KEY,
      "x-kustomer-api-url": `${this.base}/sandbox/kustomer`,
      "x-kustomer-url": `${this.base}/sandbox/kustomer`,
      "x-stella-api-url": `${this.base}/sandbox/stella`,
      "x-stella-api-secret": STELLA_SECRET,
      "x-seconds-until-send": "2",
      "x-app-secret": APP_SECRET,
      ...overrides,
    };
    for (const [name, value] of Object.entries(headers)) if (value === null) delete headers[name];
    return headers;
  }

  /** The headers that read the org's delivery log: its Kustomer key and app secret. */
  orgHeaders(overrides = {}) {
    return { "x-kustomer-api-key": KUSTOMER_KEY, "x-kustomer-api-url": `${this.base}/sandbox/kustomer`, "x-app-secret": APP_SECRET, ...overrides };
  }

  async setDelay(seconds) {
    const r = await this.request("PUT", "/sandbox/kustomer/v1/apps/settings", {
      headers: { authorization: `Bearer ${KUSTOMER_KEY}` },
      body: { settings: { secondsUntilSend: String(seconds) } },
    });
    if (r.status !== 200) throw new Error(`settings: ${r.text}`);
  }

  close(id, body) {
    return this.request("POST", `/sandbox/kustomer/conversations/${id}/close`, { body: body ?? {} });
  }

  reopen(id) {
    return this.request("POST", `/sandbox/kustomer/conversations/${id}/reopen`, { body: {} });
  }

  async conversation(id) {
    return (await this.request("GET", `/sandbox/kustomer/v1/conversations/${id}`, { headers: { authorization: `Bearer ${KUSTOMER_KEY}` } })).body;
  }

  /** A fresh open conversation in the Kustomer sandbox, copied from the seeded email one; its id. */
  async newConversation(edit = () => {}, id = `conv-t${++serial}-${Date.now()}`) {
    const seed = await this.conversation("conv-email");
    const conversation = { ...seed.data, id, attributes: { ...seed.data.attributes, status: "open" } };
    edit(conversation);
    const r = await this.request("POST", "/sandbox/kustomer/conversations", { body: { conversation } });
    if (r.status !== 201) throw new Error(`adding ${id}: ${r.status} ${r.text}`);
    return id;
  }

  async stellaRequests(id) {
    const { body } = await this.request("GET", "/sandbox/stella/requests");
    return body.requests.filter((r) => id === undefined || r.body.ext_interaction_id === id);
  }

  /** The org's delivery log, its first page of 200 (the most a page holds). */
  async deliveries(headers = this.orgHeaders()) {
    const r = await this.request("GET", "/v1/deliveries?limit=200", { headers });
    if (r.status !== 200) throw new Error(`deliveries: ${r.status} ${r.text}`);
    return r.body.deliveries;
  }

  async delivery(id) {
    return (await this.deliveries()).find((d) => d.conversationId === id);
  }

  /** Calls served by the Kustomer sandbox, by route. */
  async kustomerStats() {
    return (await this.request("GET", "/sandbox/kustomer/stats")).body;
  }

  /** Every attempt the Stella sandbox received (accepted or not), and the accepted requests. */
  async stellaLog() {
    return (await this.request("GET", "/sandbox/stella/requests")).body;
  }

  /** A `kustomer.conversation.update` close event for the conversation as it is now. */
  async closeEvent(id) {
    const doc = await this.conversation(id);
    return {
      id: `evt-${id}`,
      name: "kustomer.conversation.update",
      org: "sandbox-org",
      createdAt: doc.data.attributes.updatedAt,
      data: doc.data,
      changes: { attributes: { status: { op: "replace", before: "open", after: "done" } } },
    };
  }

  postEvent(event, headers) {
    return this.request("POST", "/v1/kustomer/conversation-closed", { body: event, headers: headers ?? this.settingsHeaders() });
  }
}
