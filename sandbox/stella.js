// Stella Connect (Medallia Agent Connect) API sandbox (local dev tooling, never deployed).
// `POST /v1/requests` checks the key and validates the body against the vendor's schema
// (precompiled by scripts/build-stella-schema.mjs: workerd cannot compile it at run time), then
// records it. Controls under the same prefix inject faults, list what was received and reset.
// State lives in one Durable Object so it survives a workerd restart.
//
// `POST /pace` slows acceptance down, for the kill and input drills (scripts/drills.mjs) only: each valid
// request waits `delayMs` plus up to `jitterMs` before it is recorded and answered, and once
// `acceptUpTo` requests are recorded, further ones are held (not recorded) until the pace
// changes, the sandbox is reset or `holdMs` passes (then 503, nothing recorded). Held and waiting
// requests die with the process. `DELETE /pace` restores full speed; `GET /pace` shows the pace,
// how many are held now and how many were answered 503 after being held.
import { DurableObject } from "cloudflare:workers";
import validate from "./stella-schema.mjs";

// The shared router forwards the full URL; the sandbox strips its own mount point.
const PREFIX = "/sandbox/stella";
const DEFAULT_KEYS = ["sandbox-stella-key"];
const TIMEOUT_MS = 15_000; // longer than the client's 10 s timeout
const FAULT_STATUSES = [400, 403, 429, 500, 503, "timeout"];
const HOLD_MS = 5_000; // a held request is answered well within the client's 10 s timeout
const REASONS = { 400: "Validation error: fault injected by the sandbox", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout" };

// Stella answers errors as plain text.
const text = (status, body, headers = {}) =>
  new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
const json = (status, body) => Response.json(body, { status, headers: { "cache-control": "no-store" } });

export default {
  fetch(request, env) {
    return env.STATE.get(env.STATE.idFromName("sandbox")).fetch(request);
  },
};

export class StellaState extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) || "/" : url.pathname;
    const route = `${request.method} ${path}`;
    const storage = this.ctx.storage;

    switch (route) {
      case "POST /v1/requests":
        return this.createRequest(request);
      case "GET /requests": {
        // Zero-padded sequence keys list in arrival order.
        const requests = [...(await storage.list({ prefix: "req:" })).values()];
        return json(200, { requests, attempts: (await storage.get("attempts")) ?? 0 });
      }
      case "PUT /keys": {
        const keys = (await request.json().catch(() => null))?.keys;
        if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string" && k)) {
          return json(400, { error: "Body must be {keys: [non-empty strings]}." });
        }
        await storage.put("keys", keys);
        return json(200, { keys });
      }
      case "POST /faults": {
        const { status, count = 1, retryAfter } = (await request.json().catch(() => null)) ?? {};
        if (!FAULT_STATUSES.includes(status) || !Number.isInteger(count) || count < 0) {
          return json(400, { error: 'Body must be {status: 400|403|429|500|503|"timeout", count: n, retryAfter?}.' });
        }
        await storage.put("faults", { status, count, retryAfter });
        return json(200, { faults: { status, count, retryAfter } });
      }
      case "DELETE /faults":
        await storage.delete("faults");
        return json(200, { faults: null });
      case "POST /pace": {
        const { delayMs = 0, jitterMs = 0, acceptUpTo = null, holdMs = HOLD_MS } = (await request.json().catch(() => null)) ?? {};
        const ms = (x) => Number.isInteger(x) && x >= 0 && x <= 60_000;
        if (!ms(delayMs) || !ms(jitterMs) || !ms(holdMs) || !(acceptUpTo === null || (Number.isInteger(acceptUpTo) && acceptUpTo >= 0))) {
          return json(400, { error: "Body must be {delayMs?, jitterMs?, holdMs?: 0–60000, acceptUpTo?: n | null}." });
        }
        const pace = { delayMs, jitterMs, acceptUpTo, holdMs };
        await storage.put("pace", pace);
        this.paceChanged();
        return json(200, { pace });
      }
      case "GET /pace":
        return json(200, { pace: (await storage.get("pace")) ?? null, held: this.held ?? 0, heldOut: (await storage.get("heldOut")) ?? 0 });
      case "DELETE /pace":
        await storage.delete("pace");
        this.paceChanged();
        return json(200, { pace: null });
      case "POST /reset":
        await this.serially(() => storage.deleteAll());
        this.paceChanged();
        return json(200, { reset: true });
      default:
        return text(404, `Not Found: ${request.method} ${url.pathname}`);
    }
  }

  async createRequest(request) {
    const storage = this.ctx.storage;
    await storage.put("attempts", ((await storage.get("attempts")) ?? 0) + 1);

    const faults = await storage.get("faults");
    if (faults?.count > 0) {
      faults.count--;
      await storage.put("faults", faults);
      return this.fault(faults);
    }

    const keys = (await storage.get("keys")) ?? DEFAULT_KEYS;
    if (!keys.includes(request.headers.get("x-api-key"))) return text(403, "Forbidden");

    let body;
    try {
      body = JSON.parse(await request.text());
    } catch {
      return text(400, "Validation error: body is not valid JSON");
    }
    if (!validate(body)) {
      const reasons = validate.errors.map((e) => {
        const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : "";
        return `${e.instancePath || "(root)"} ${e.message}${extra}`;
      });
      return text(400, `Validation error: ${reasons.join("; ")}`);
    }

    const pace = await storage.get("pace");
    if (pace) await scheduler.wait(pace.delayMs + Math.floor(Math.random() * (pace.jitterMs + 1)));
    const heldSince = Date.now();
    for (;;) {
      // The limit check and the write that counts against it, one request at a time: requests
      // woken together would otherwise read the same `seq`.
      const holding = await this.serially(async () => {
        const now = await storage.get("pace");
        const seq = ((await storage.get("seq")) ?? 0) + 1;
        if (Number.isInteger(now?.acceptUpTo) && seq > now.acceptUpTo) return now;
        // The key is neither stored nor echoed.
        await storage.put({ seq, [`req:${String(seq).padStart(12, "0")}`]: { receivedAt: new Date().toISOString(), body } });
        return null;
      });
      if (!holding) return json(200, body);
      const left = heldSince + holding.holdMs - Date.now();
      if (left <= 0) {
        await this.serially(async () => storage.put("heldOut", ((await storage.get("heldOut")) ?? 0) + 1));
        return text(503, REASONS[503]);
      }
      this.held = (this.held ?? 0) + 1;
      try {
        await Promise.race([new Promise((resolve) => (this.waiting ??= []).push(resolve)), scheduler.wait(left)]);
      } finally {
        this.held--;
      }
    }
  }

  /** Runs `fn` after every earlier call's `fn` has finished. */
  serially(fn) {
    const run = (this.queue ?? Promise.resolve()).then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Wakes the requests held by `acceptUpTo` to look at the pace again. */
  paceChanged() {
    const waiting = this.waiting ?? [];
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  async fault({ status, retryAfter }) {
    if (status === "timeout") {
      await scheduler.wait(TIMEOUT_MS);
      return text(504, REASONS[504]);
    }
    return text(status, REASONS[status], retryAfter === undefined ? {} : { "retry-after": String(retryAfter) });
  }
}
