// Kustomer API sandbox (local dev tooling, never deployed): stands in for Kustomer's API in the
// tests, the drills, the benchmarks and `make run`. All state lives in one Durable Object so it
// survives a workerd restart. By concern:
// - api.js: the /v1 calls the app makes, in Kustomer's JSON:API shapes (keys, roles, routes);
//   resources.js (reads, the customer search), conversations.js (writes and their events),
//   settings.js (the app's settings), apps.js (registration, installation), commands.js;
// - budget.js: the org's API budget and its rate-limit headers;
// - workflows.js: the update event, the workflows it starts, the app's action to the edge;
// - controls.js: the unauthenticated controls under the same prefix (close/reopen, data,
//   faults, latency, stats, reset);
// - store.js and http.js: stored resources, answers and body reading.
// Where Kustomer's docs are silent, each file names its guesses.
import { DurableObject } from "cloudflare:workers";
import { api } from "./api.js";
import { control } from "./controls.js";
import { PREFIX, errorResponse } from "./http.js";
import { seedRecords } from "./store.js";
import { below, toState } from "../mount.js";

export default toState;

export class KustomerState extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const path = below(PREFIX, url);
    if (!(await this.ctx.storage.get("seeded"))) await seedRecords(this.ctx.storage);
    try {
      return path.startsWith("/v1/") ? await api(this, request, path) : await control(this, request, path, url);
    } catch (e) {
      return errorResponse(e);
    }
  }
}
