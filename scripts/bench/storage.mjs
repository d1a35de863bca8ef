// Storage per finished job (`make bench`, part `storage`): the edge's own tables in a real
// SQLite-backed Durable Object, filled with finished jobs as the edge writes them, measured as
// Cloudflare counts an object's size (`ctx.storage.sql.databaseSize`).
//
// Driving 100,000 surveys through the sandboxes would take hours, so the rows are written
// directly, but nothing in them is made up here:
// - the DDL is the edge's own, read from src/wasm/edge/sql.rs (`TABLES`, `INDEXES`,
//   `CUSTOMER_COLUMNS`, `CUSTOMER_INDEXES`, `TALLY_TABLE`), so the jobs table, its seven indexes
//   and the summary's counters are exactly production's;
// - the `job` JSON is the edge's own, made by its code from the fixtures
//   (`cargo run --example bench_storage`): a survey sent, its answer (rating and comment) read
//   back from Data Return and written onto the conversation, the recipient digests kept;
// - each row gets its own conversation id and agent (100 agents, the same widths as the
//   fixtures'), its own customer, and a comment on 40% of the answers (see `vary`), its columns as `SqlStore::job_row` sets them for a finished job, and closes
//   spread evenly over 90 days (the retention), so the counters hold one row per hour and agent
//   as production's would.
// Three shapes of the same job: as the edge wrote it before issue 20 (the whole Stella body,
// `dueMs: null`), as it writes it now (only what the log reads), and once its personal data is
// removed (after PERSONAL_DATA_DAYS).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startWorkerd, waitFor } from "./lib.mjs";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const AGENTS = 100;
const CHUNK = 4000;

/** The string literals of `const NAME` in sql.rs (a `&[&str]` list or one `&str`). */
export function ddl() {
  const source = readFileSync(join(ROOT, "src/wasm/edge/sql.rs"), "utf8");
  const literals = (name) => {
    const start = source.indexOf(`const ${name}:`);
    if (start < 0) throw new Error(`sql.rs has no const ${name}`);
    const end = source.indexOf(";\n", start);
    return [...source.slice(start, end).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
  };
  // The forget index's columns, added as `SqlStore::open` adds them (text), and their indexes.
  const customer = literals("CUSTOMER_COLUMNS").map((c) => `ALTER TABLE jobs ADD COLUMN ${c} TEXT`);
  return [...literals("TABLES"), ...customer, ...literals("INDEXES"), ...literals("CUSTOMER_INDEXES"), ...literals("TALLY_TABLE")];
}

/** The edge's finished job in its three shapes, from `examples/bench_storage.rs`. */
function templates() {
  const out = execFileSync("cargo", ["run", "--quiet", "--locked", "--example", "bench_storage"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return JSON.parse(out.trim().split("\n").pop());
}

const hex = (i, width) => i.toString(16).padStart(width, "0");

/** Row `i` of `n`: its conversation (24 hex digits, as Kustomer's ids), its agent (as wide as
 * the fixture's), its close (spread over 90 days) and its last change (sent a day later). */
function row(i, n, start) {
  const closed = start + Math.floor((i * 90 * DAY) / n);
  return { id: `6560${hex(i, 20)}`, agent: `agent-${String(i % AGENTS).padStart(3, "0")}@acme.example`, closed, updated: closed + DAY + 300_000 };
}

/** A number in [0, 1) fixed by `i` (the same rows on every run). */
const spread = (i, salt) => (((i + 1) * 2654435761 + salt * 40503) >>> 0) / 2 ** 32;
const COMMENT = "The agent sorted out my order quickly and kindly, and explained the refund step by step. ".repeat(4);

/** Row `i`'s customer and comment, so that rows differ in length as real ones do (a table of
 * identical rows packs a whole number of them a page, which exaggerates any change): names of
 * 5 to 24 characters, e-mails of their own, and a comment on 40% of the answers, 10 to 300
 * characters. */
function vary(text, t, i) {
  const name = `Customer ${"x".repeat(Math.floor(spread(i, 1) * 15))}${i}`.slice(0, 24);
  const email = `${name.toLowerCase().replace(/[^a-z0-9]+/g, ".")}@example.com`;
  let out = text.replaceAll(JSON.stringify(t.customerName), JSON.stringify(name)).replaceAll(JSON.stringify(t.customerEmail), JSON.stringify(email));
  const comment = JSON.stringify(t.comment);
  if (out.includes(comment)) {
    const length = spread(i, 2) < 0.4 ? 10 + Math.floor(spread(i, 3) * 290) : 0;
    out = length ? out.replace(comment, JSON.stringify(COMMENT.slice(0, length))) : out.replace(`"comment":${comment},`, "");
  }
  return out;
}

/** The jobs table's columns, as `SqlStore` writes a job. */
const COLUMNS = "conversation_id, state, due_ms, updated_ms, job, closed_ms, followed_ms, unwritten_ms, customer_id_key, customer_email_key";

/** Row `i`'s job text in `text`'s shape, and its forget index's two digests (its own, as wide
 * as the edge's; null where the shape has none, as once its personal data is removed). */
function shaped(text, t, i, id, agent) {
  let job = vary(text, t, i).replaceAll(t.conversationId, id).replaceAll(t.agent, agent);
  const own = (digest, salt) => digest && `${digest.slice(0, digest.indexOf(":") + 1)}${hex(i, 8)}${hex(salt, 2)}${digest.slice(digest.indexOf(":") + 11)}`;
  const keys = [own(t.customerIdKey, 1), own(t.customerEmailKey, 2)].map((k, n) => {
    const template = n ? t.customerEmailKey : t.customerIdKey;
    if (!template || !job.includes(template)) return null;
    job = job.replaceAll(template, k);
    return k;
  });
  return [job, ...keys];
}

/** Writes `n` finished jobs of `text`'s shape into the object `db`; its size in bytes after.
 * With `scrubbed` (another shape), the oldest two thirds of them (60 of the 90 days) are then
 * written again in that shape, in the order and with the statement the alarm's personal-data
 * pass uses (`INSERT OR REPLACE`, oldest change first): the log as it stands at the retention
 * with PERSONAL_DATA_DAYS=30. */
async function fill(url, db, t, text, n, scrubbed) {
  const post = async (statements) => {
    const r = await fetch(`${url}/?db=${db}`, { method: "POST", body: JSON.stringify({ statements }) });
    if (!r.ok) throw new Error(`${db}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const empty = (await post(ddl().map((q) => [q]))).databaseSize;
  const start = Date.UTC(2026, 8, 1);
  const counters = new Map();
  let batch = [];
  for (let i = 0; i < n; i++) {
    const { id, agent, closed, updated } = row(i, n, start);
    const [job, idKey, emailKey] = shaped(text, t, i, id, agent);
    batch.push([`INSERT INTO jobs (${COLUMNS}) VALUES (?, 'sent', NULL, ?, ?, ?, NULL, NULL, ?, ?)`, id, updated, job, closed, idKey, emailKey]);
    const key = `${Math.floor(closed / HOUR)}|${agent}`;
    counters.set(key, (counters.get(key) ?? 0) + 1);
    if (batch.length === CHUNK) {
      await post(batch);
      batch = [];
    }
  }
  for (const [key, count] of counters) {
    const [hour, agent] = key.split("|");
    batch.push(["INSERT INTO tally (hour, state, reason, agent, n) VALUES (?, 'sent', '', ?, ?)", Number(hour), agent, count]);
    if (batch.length === CHUNK) {
      await post(batch);
      batch = [];
    }
  }
  let size = (await post(batch)).databaseSize;
  batch = [];
  if (scrubbed) {
    for (let i = 0; i < Math.floor((n * 2) / 3); i++) {
      const { id, agent, closed, updated } = row(i, n, start);
      const [job, idKey, emailKey] = shaped(scrubbed, t, i, id, agent);
      batch.push([`INSERT OR REPLACE INTO jobs (${COLUMNS}) VALUES (?, 'sent', NULL, ?, ?, ?, NULL, NULL, ?, ?)`, id, updated, job, closed, idKey, emailKey]);
      if (batch.length === CHUNK) {
        await post(batch);
        batch = [];
      }
    }
    size = (await post(batch)).databaseSize;
  }
  return { empty, size, counters: counters.size, jsonBytes: Buffer.byteLength(text) };
}

export async function benchStorage({ smoke = false, log = () => {} } = {}) {
  const t = templates();
  const sizes = smoke ? [200, 1000] : [10_000, 100_000];
  const w = await startWorkerd(join(ROOT, "scripts/bench/storage.capnp"), ["http"], { site: false });
  try {
    const url = w.url("http");
    await waitFor(async () => (await fetch(url, { method: "POST", body: JSON.stringify({ statements: [] }) }).catch(() => null))?.ok, 15_000, "workerd to start");
    const result = { agents: AGENTS, sizes, shapes: {} };
    for (const shape of ["before", "after", "expired"]) {
      result.shapes[shape] = {};
      for (const n of sizes) {
        const m = await fill(url, `${shape}-${n}`, t, t[shape], n);
        m.perJob = (m.size - m.empty) / n;
        result.shapes[shape][n] = m;
        log(`storage: ${shape}, ${n} jobs: ${m.size} B (${m.perJob.toFixed(0)} B a job; JSON ${m.jsonBytes} B; ${m.counters} counters)`);
      }
    }
    // The log at the retention: the last 30 days as written, the 60 before scrubbed.
    result.steady = {};
    for (const n of sizes) {
      const m = await fill(url, `steady-${n}`, t, t.after, n, t.expired);
      m.perJob = (m.size - m.empty) / n;
      result.steady[n] = m;
      log(`storage: at the retention (30 days whole, 60 scrubbed), ${n} jobs: ${m.size} B (${m.perJob.toFixed(0)} B a job)`);
    }
    // Early pruning frees what it deletes: the oldest tenth of the largest log, deleted with the
    // edge's statement (`SqlStore::prune_oldest`, 1,000 a run), then the size again.
    const n = sizes.at(-1);
    const db = `steady-${n}`;
    const prune = ["DELETE FROM jobs WHERE conversation_id IN (SELECT conversation_id FROM jobs WHERE due_ms IS NULL ORDER BY updated_ms LIMIT ?)", 1000];
    const runs = Math.max(1, Math.floor(n / 10 / 1000));
    let after;
    for (let i = 0; i < runs; i++) {
      const r = await fetch(`${url}/?db=${db}`, { method: "POST", body: JSON.stringify({ statements: [prune] }) });
      after = (await r.json()).databaseSize;
    }
    const deleted = Math.min(n, runs * 1000);
    result.pruned = { jobs: deleted, runs, before: result.steady[n].size, after, freedPerJob: (result.steady[n].size - after) / deleted };
    log(`storage: ${deleted} oldest deleted in ${runs} runs: ${result.steady[n].size} → ${after} B (${result.pruned.freedPerJob.toFixed(0)} B freed a job)`);
    return result;
  } finally {
    await w.stop();
  }
}
