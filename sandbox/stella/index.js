// Stella Connect (Medallia Agent Connect) API sandbox (local dev tooling, never deployed): stands in
// for Agent Connect in the tests, the drills, the benchmarks and `make run`. State lives in one
// Durable Object so it survives a workerd restart. By concern:
// - requests.js: `POST /v1/requests` (key, the vendor's schema, the pace) and each request's
//   Data Return record;
// - reads.js: the read APIs (`GET /v2/data`, `/v2/employees`), their JWT and their limit;
//   roster.js: the employees;
// - controls.js: faults, keys, pace, answering and bouncing surveys, the clock, calls, reset;
// - common.js: answers, faults and the customers' index the others share.
import { DurableObject } from "cloudflare:workers";
import { below, toState } from "../mount.js";
import { text } from "./common.js";
import { CONTROLS } from "./controls.js";
import { read } from "./reads.js";
import { createRequest } from "./requests.js";

// The shared router forwards the full URL; the sandbox strips its own mount point.
const PREFIX = "/sandbox/stella";

export default toState;

export class StellaState extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const path = below(PREFIX, url);
    if (path.startsWith("/v2/")) return read(this, request, url, path);
    const route = `${request.method} ${path}`;
    if (route === "POST /v1/requests") return createRequest(this, request);
    if (Object.hasOwn(CONTROLS, route)) return CONTROLS[route](this, request, url);
    return text(404, `Not Found: ${request.method} ${url.pathname}`);
  }

  /** The sandbox's clock: the real one shifted by `POST /clock`. */
  async now() {
    return Date.now() + ((await this.ctx.storage.get("clock")) ?? 0);
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
}
