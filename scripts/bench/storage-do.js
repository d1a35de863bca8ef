// Bench tooling, never shipped: a Durable Object that runs the SQL it is given on its own SQLite
// storage and answers its size as the platform counts it. scripts/bench/storage.mjs sends the
// edge's own DDL (read from src/wasm/edge/sql.rs) and rows made by the edge's own code.
import { DurableObject } from "cloudflare:workers";

export class Rows extends DurableObject {
  /** `{statements: [[sql, ...bindings], …]}` run in one transaction → `{databaseSize}`. */
  async fetch(request) {
    const { statements } = await request.json();
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      for (const [query, ...bindings] of statements) sql.exec(query, ...bindings);
    });
    const pages = (name) => sql.exec(`PRAGMA ${name}`).toArray()[0]?.[name] ?? null;
    let freelist = null;
    try {
      freelist = pages("freelist_count");
    } catch {
      // not allowed here
    }
    return Response.json({ databaseSize: sql.databaseSize, freelist });
  }
}

export default {
  async fetch(request, env) {
    const name = new URL(request.url).searchParams.get("db") ?? "one";
    return env.ROWS.get(env.ROWS.idFromName(name)).fetch(request);
  },
};
