// The edge's worker entry: moves requests between workerd and the Rust core, nothing more.
// Every rule (validation, org checks, scheduling, retries, the survey itself) is in Rust.
import { DurableObject, env as startEnv } from "cloudflare:workers";
import wasm from "./stella_connect_bg.wasm";
import { initSync, Gateway, Scheduler, bodyLimit, checkEdgeConfig, headerNames } from "./stella_connect.js";

// The module's linear memory: it only grows, so its size is the isolate's Wasm high-water mark
// (Cloudflare allows an isolate 128 MB in all).
const { memory } = initSync({ module: wasm });
// A binding that is not valid (a zero lease, a missing settings key) stops the worker here,
// at start, with a message that names it.
checkEdgeConfig(startEnv);

const HEADERS = headerNames(); // the request headers Rust reads, per isolate
/** Their values as one text, a line each, `\0` for an absent one: one string crosses into Rust. */
const headerValues = (headers) => HEADERS.map((name) => headers.get(name) ?? "\0").join("\n");

const JSON_TYPE = { "content-type": "application/json" };
/** A reply from Rust (`{status, body, retryAfter?}`, the body JSON text) as a Response. */
const respond = ({ status, body, retryAfter }) =>
  new Response(body, { status, headers: retryAfter ? { ...JSON_TYPE, "retry-after": String(retryAfter) } : JSON_TYPE });

const EMPTY = new Uint8Array();

/**
 * The body's bytes, read only where the route takes one and never past `limit` bytes, whatever
 * the headers say (a chunked body has no length): null when it is larger. A declared length is
 * what the runtime reads, no more: one native read.
 */
function readBody(request, limit) {
  if (limit === 0 || request.body === null) return EMPTY;
  const length = request.headers.get("content-length");
  if (length === null) return readChunked(request, limit);
  if (Number(length) > limit) return null;
  return request.arrayBuffer().then((bytes) => new Uint8Array(bytes));
}

/** A body without a length, chunk by chunk, stopping past `limit` bytes (null then). */
async function readChunked(request, limit) {
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/** The body limit of a route (Rust's answer, kept per isolate; a bound, since paths are anyone's). */
const limits = new Map();
function limitOf(method, path) {
  const route = `${method} ${path}`;
  let limit = limits.get(route);
  if (limit === undefined) {
    if (limits.size >= 256) limits.clear();
    limits.set(route, (limit = bodyLimit(method, path)));
  }
  return limit;
}

let gateway; // one per isolate: it keeps Kustomer's key → org answers for a few minutes
const schedulerIds = new Map(); // org (and jurisdiction) → its Durable Object's id, per isolate

/**
 * A command (JSON text) to the org's Durable Object, created in `jurisdiction` ("eu") when Rust
 * names one (src/edge/residency.rs); resolves to its reply.
 */
function forward(env, org, jurisdiction, command) {
  const place = jurisdiction === undefined ? org : `${jurisdiction}:${org}`;
  let id = schedulerIds.get(place);
  if (id === undefined) {
    if (schedulerIds.size >= 10_000) schedulerIds.clear(); // a bound: ids are cheap to make again
    const namespace = jurisdiction === undefined ? env.SCHEDULER : env.SCHEDULER.jurisdiction(jurisdiction);
    schedulerIds.set(place, (id = namespace.idFromName(org)));
  }
  return env.SCHEDULER.get(id).command(command);
}

/** Which rate-limiting binding counts a bucket, by the prefix the gateway names it with. */
const LIMITERS = {
  "log-key:": "LOG_READS_PER_KEY", "log-org:": "LOG_READS_PER_ORG", "log-page-key:": "LOG_PAGES_PER_KEY", "log-page-org:": "LOG_PAGES_PER_ORG",
};

/**
 * Counts a use of a rate-limited bucket; resolves to the seconds to wait, 0 when allowed:
 * Cloudflare's rate-limiting binding where deployed (its limit is in wrangler.toml), else a
 * Durable Object counter per bucket.
 */
function countUse(env, bucket, perMinute) {
  const name = Object.entries(LIMITERS).find(([prefix]) => bucket.startsWith(prefix))?.[1] ?? "KEY_CHECKS";
  return env[name]
    ? env[name].limit({ key: bucket }).then(({ success }) => (success ? 0 : 60))
    : env.LIMITER.get(env.LIMITER.idFromName(bucket)).hit(perMinute);
}

export default {
  async fetch(request, env) {
    const { pathname, search } = new URL(request.url);
    const limit = limitOf(request.method, pathname);
    const body = await readBody(request, limit);
    if (body === null) return respond(Gateway.tooLarge(limit));
    gateway ??= new Gateway(env, (org, jurisdiction, command) => forward(env, org, jurisdiction, command), (bucket, perMinute) => countUse(env, bucket, perMinute));
    // A close from a key whose org is known: one call into Rust, then the org's Durable Object
    // answers. Anything else, or a key Kustomer must be asked about, goes the long way.
    const headers = headerValues(request.headers);
    const step = gateway.step(request.method, pathname, headers, body);
    if (step?.org !== undefined) {
      return respond(await forward(env, step.org, step.jurisdiction, step.command).catch((e) => Gateway.schedulerUnreachable(e)));
    }
    return respond(step ?? (await gateway.handle(request.method, pathname, search.slice(1), headers, body)));
  },
};

/** One org's surveys: a jobs table in SQLite and one alarm at the earliest due time. */
export class OrgScheduler extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.scheduler = new Scheduler(ctx.storage.sql, env);
  }

  /** RPC from the gateway: a command as JSON text; the reply as the worker answers it. */
  command(command) {
    const reply = this.scheduler.command(command);
    // A command that waits on the network (the roster, or Kustomer asked about an app secret)
    // answers with a Promise; then, like any other, it may have changed the alarm.
    if (reply instanceof Promise) return reply.then((r) => this.armed(r));
    return this.armed(reply);
  }

  /** The reply, once the alarm is set as Rust says (most closes change no alarm: no await). */
  armed(reply) {
    const alarm = this.arm();
    return alarm ? alarm.then(() => reply) : reply;
  }

  async alarm() {
    // Never let a failure escape: workerd would retry a few times, then drop the alarm. A run
    // that failed (storage) tries again in a minute at the soonest, not in a tight loop.
    let failed = false;
    try {
      const surveys = await this.scheduler.runDue();
      // A line a run: no key or customer in it, and the calls Cloudflare caps per invocation.
      console.log(`alarm: ${surveys} surveys, ${this.scheduler.runCalls()} outbound calls, ${memory.buffer.byteLength} bytes of Wasm memory`);
    } catch (e) {
      failed = true;
      console.error(`alarm: ${e?.message ?? e}`); // storage errors only: no key is in them
    }
    await this.arm(failed ? Date.now() + 60_000 : 0);
  }

  /** Sets the alarm only when Rust says it changes (most closes fall due after it). */
  arm(notBefore = 0) {
    const at = this.scheduler.alarmChange(notBefore);
    if (at === null) return this.ctx.storage.deleteAlarm();
    if (at !== undefined) return this.ctx.storage.setAlarm(at);
  }
}

/** One rate-limit bucket's uses in the current minute (where no rate-limiting binding exists). */
export class RateLimiter extends DurableObject {
  /** Counts a use; the seconds until the bucket allows again, or 0 when this use is allowed. */
  hit(perMinute) {
    const now = Date.now();
    if (!(this.windowEnds > now)) [this.windowEnds, this.used] = [now + 60_000, 0];
    this.used += 1;
    return this.used <= perMinute ? 0 : Math.ceil((this.windowEnds - now) / 1000);
  }
}
