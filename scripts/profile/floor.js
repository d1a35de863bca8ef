// The runtime's share of a close, with no logic (`make profile`'s floor, never shipped): the
// headers the edge reads and the body, one RPC to a Durable Object, which writes a job row and
// its hour's counter into tables like the edge's, and the reply. What the edge and the JavaScript
// baseline (scripts/bench/baseline.js) cost above this is their own work.
import { DurableObject } from "cloudflare:workers";

const JSON_TYPE = { "content-type": "application/json" };
const HEADERS = [
  "stella-api-key", "stella-api-secret", "kustomer-api-key", "kustomer-api-url", "kustomer-url", "seconds-until-send",
  "stella-api-url", "channel-map", "surveyed-channels", "brand", "brand-map", "send-language", "language-map",
  "custom-properties", "resurvey-after-days", "kustomer-budget-share", "app-secret",
].map((h) => `x-${h}`).concat("cf-connecting-ip");
const ids = new Map(); // the org's Durable Object id, per isolate
const DAY_MS = 86_400_000;

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz") return new Response("{}", { headers: JSON_TYPE });
    const body = new TextDecoder().decode(await request.arrayBuffer());
    const headers = HEADERS.map((n) => request.headers.get(n) ?? "\0").join("\n");
    // The conversation id the profiler gives each request (`<side>-<n>`), found without parsing.
    const conversation = /"id":"([a-z]+-\d+)"/.exec(body)?.[1] ?? crypto.randomUUID();
    let id = ids.get("org");
    if (id === undefined) ids.set("org", (id = env.FLOOR.idFromName("org")));
    const reply = await env.FLOOR.get(id).command(JSON.stringify({ conversation, headers }));
    return new Response(reply.body, { status: reply.status, headers: JSON_TYPE });
  },
};

export class Floor extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS jobs (conversation_id TEXT PRIMARY KEY, state TEXT NOT NULL, due_ms INTEGER, updated_ms INTEGER NOT NULL, job TEXT NOT NULL, closed_ms INTEGER, followed_ms INTEGER, unwritten_ms INTEGER)");
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due_ms) WHERE due_ms IS NOT NULL");
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_final ON jobs (updated_ms) WHERE due_ms IS NULL");
    this.sql.exec("CREATE INDEX IF NOT EXISTS jobs_closed ON jobs (closed_ms, conversation_id)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS tally (hour INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, agent TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (hour, state, reason, agent)) WITHOUT ROWID");
  }

  command(text) {
    const { conversation } = JSON.parse(text);
    const now = Date.now();
    const due = now + DAY_MS;
    const job = JSON.stringify({ org: "org", conversationId: conversation, state: "scheduled", generation: 0, closedAtMs: now, sendAtMs: due, dueMs: due, attempts: 0, createdMs: now, updatedMs: now });
    const written = this.sql.exec(
      "INSERT INTO jobs (conversation_id, state, due_ms, updated_ms, job, closed_ms, followed_ms, unwritten_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO NOTHING",
      conversation, "scheduled", due, now, job, now, null, null,
    ).rowsWritten;
    if (written) {
      this.sql.exec(
        "INSERT INTO tally (hour, state, reason, agent, n) VALUES (?, 'scheduled', '', '', 1) ON CONFLICT (hour, state, reason, agent) DO UPDATE SET n = n + excluded.n",
        Math.floor(now / 3_600_000),
      );
    }
    return { status: 202, body: JSON.stringify({ status: "scheduled", conversationId: conversation, sendAt: new Date(due).toISOString() }) };
  }
}
