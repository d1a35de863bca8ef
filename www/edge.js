// The edge's worker entry: moves requests between workerd and the Rust core, nothing more.
// Every rule (validation, org checks, scheduling, retries, the survey itself) is in Rust.
import { DurableObject } from "cloudflare:workers";
import wasm from "./stella_connect_bg.wasm";
import { initSync, Gateway, Scheduler } from "./stella_connect.js";

initSync({ module: wasm });

const MAX_BODY_BYTES = 1 << 20;

/** Edge configuration from the worker's bindings; production sets none of them. */
function edgeConfig(env) {
  const ms = (v) => (v === undefined || v === "" ? undefined : Number(v));
  return {
    allowLoopback: env.ALLOW_LOOPBACK === "true",
    retryBaseMs: ms(env.RETRY_BASE_MS),
    cacheMs: ms(env.CACHE_MS),
    leaseMs: ms(env.LEASE_MS),
  };
}

const json = (status, body) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

let gateway; // one per isolate: it keeps Kustomer's key → org answers for a few minutes

export default {
  async fetch(request, env) {
    // Refuse oversized bodies before reading them; Rust checks the real length again.
    if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) {
      return json(413, { error: { code: "too_large", message: `The body is over ${MAX_BODY_BYTES} bytes.` } });
    }
    gateway ??= new Gateway(edgeConfig(env), (org, command) =>
      env.SCHEDULER.get(env.SCHEDULER.idFromName(org)).command(command),
    );
    const url = new URL(request.url);
    const reply = await gateway.handle(request.method, url.pathname, Object.fromEntries(request.headers), await request.text());
    return json(reply.status, reply.body);
  },
};

/** One org's surveys: a jobs table in SQLite and one alarm at the earliest due time. */
export class OrgScheduler extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.scheduler = new Scheduler(ctx.storage.sql, edgeConfig(env));
  }

  /** RPC from the gateway: a command as JSON text, the reply as JSON text. */
  async command(command) {
    const reply = this.scheduler.command(command);
    await this.arm();
    return reply;
  }

  async alarm() {
    try {
      await this.scheduler.runDue();
    } finally {
      // Never let a failure escape: workerd would retry a few times, then drop the alarm.
      await this.arm();
    }
  }

  async arm() {
    const next = this.scheduler.nextAlarm();
    if (next != null) await this.ctx.storage.setAlarm(next);
  }
}
