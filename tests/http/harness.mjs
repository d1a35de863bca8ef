// Starts the real local stack (scripts/serve.sh → workerd with the edge and the sandboxes) on a
// free loopback port with its own state folder, and gives tests small helpers over HTTP.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const KUSTOMER_KEY = "sandbox-kustomer-key";
export const STELLA_KEY = "sandbox-stella-key";

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

export class Stack {
  constructor() {
    this.state = mkdtempSync(join(tmpdir(), "stella-edge-"));
    this.log = [];
  }

  async start() {
    this.port ??= await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.proc = spawn("scripts/serve.sh", [], {
      env: { ...process.env, PORT: String(this.port), STATE_DIR: this.state, RETRY_BASE_MS: "300", LEASE_MS: "2000" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: serve.sh and workerd die together
    });
    for (const stream of [this.proc.stdout, this.proc.stderr]) stream.on("data", (d) => this.log.push(String(d)));
    await waitFor(async () => (await fetch(`${this.base}/healthz`).catch(() => null))?.ok, 15_000, "workerd to start");
    return this;
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
    if (this.proc && this.proc.exitCode === null) await this.kill();
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
    return { status: res.status, body: json, text };
  }

  /** The settings headers the app's workflow action sends, pointing at the sandboxes. */
  settingsHeaders(overrides = {}) {
    return {
      "x-stella-api-key": STELLA_KEY,
      "x-kustomer-api-key": KUSTOMER_KEY,
      "x-kustomer-api-url": `${this.base}/sandbox/kustomer`,
      "x-kustomer-url": `${this.base}/sandbox/kustomer`,
      "x-stella-api-url": `${this.base}/sandbox/stella`,
      "x-seconds-until-send": "2",
      ...overrides,
    };
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

  async stellaRequests(id) {
    const { body } = await this.request("GET", "/sandbox/stella/requests");
    return body.requests.filter((r) => id === undefined || r.body.ext_interaction_id === id);
  }

  async delivery(id) {
    const { body } = await this.request("GET", "/v1/deliveries", {
      headers: { "x-kustomer-api-key": KUSTOMER_KEY, "x-kustomer-api-url": `${this.base}/sandbox/kustomer` },
    });
    return body.deliveries.find((d) => d.conversationId === id);
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
