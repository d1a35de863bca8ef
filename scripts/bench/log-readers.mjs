// Log readers: does reading the delivery log slow real closes? One org's Durable Object holds
// `n` pending surveys (closes spread over the last 29 days, due in 30, so none falls due during
// the run), then `closes` new conversations close one after another, first with nobody reading
// the log (idle), then while `readers` clients read the log's first page (summary included, the
// whole log: no window) in a loop. One Durable Object per org serialises the two, so a summary
// that counted every row would show in the closes' latency; the counters keep it at the cost of
// the counters of the window. The log read rate limits are raised (the harness's), so the
// readers measure the summary's cost, not the limiter.
//
//   node scripts/bench/log-readers.mjs [n…]      default: 10000 100000; writes build/bench-log-readers.json
//                                                 (and, with no n given, its section of BENCHMARKS.md);
//                                                 LOG_READERS_CLOSES=200 closes per measurement
//
// Timings are figures for BENCHMARKS.md, never asserted in tests: tests/drills/log-readers.test.mjs
// runs 1,000 and checks only that every close and read succeeded and the summaries counted right.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { Stack } from "../../tests/http/harness.mjs";
import { ROOT, quantile } from "./lib.mjs";

const DAY = 86_400_000;
const BENCHMARKS = `${ROOT}/BENCHMARKS.md`;
const MARKS = ["<!-- log-readers: written by scripts/bench/log-readers.mjs, kept by make bench -->", "<!-- /log-readers -->"];

/** The log readers section of BENCHMARKS.md (marks included), or "" when it has none. */
export function logReadersSection(text = existsSync(BENCHMARKS) ? readFileSync(BENCHMARKS, "utf8") : "") {
  const start = text.indexOf(MARKS[0]);
  const end = text.indexOf(MARKS[1]);
  return start >= 0 && end > start ? text.slice(start, end + MARKS[1].length) : "";
}

/**
 * Writes `results` (a full run's: build/bench-log-readers.json) as BENCHMARKS.md's section;
 * `before`, if given, is a run of the same script on an earlier commit, for comparison.
 */
export function writeLogReadersSection(results, before) {
  const info = results[0].run;
  const text = readFileSync(BENCHMARKS, "utf8");
  const old = logReadersSection(text);
  const next = section(results, info, before);
  writeFileSync(BENCHMARKS, old ? text.replace(old, next) : `${text.trimEnd()}\n\n${next}\n`);
}

/** Whether the target (close p50 with readers within 2× of idle) was met, and against what. */
function verdict(results) {
  const met = results.every((r) => r.limited.ratio <= 2);
  const sizes = (f) => results.map((r) => f(r)).join(" and ");
  return `- **Target (close p50 with 16 readers within 2× of idle): ${met ? "met" : "not met on this machine"}** with production limits (${sizes((r) => `${r.limited.ratio}×`)} at ${sizes((r) => r.n.toLocaleString("en"))} jobs), against ${sizes((r) => `${r.control.ratio}×`)} for the control: 16 clients of a request that does nothing cost a close ${results.every((r) => r.control.ratio > 2) ? "more than 2× here too" : "this much"}. With the limits raised, the readers' cost does not grow with the log (${sizes((r) => `${r.unlimited.loaded.p50} ms`)}); a first page costs about what ${sizes((r) => `${(r.unlimited.readAlone.p50 / r.unlimited.idle.p50).toFixed(1)}`)} closes do, and 16 readers in a loop keep that many ahead of each close.`;
}

/** The section for `results`, in BENCHMARKS.md's words. */
function section(results, info, before) {
  const row = (r, name, x) => `| ${r.n.toLocaleString("en")} | ${name} | ${x.idle.p50} ms (p95 ${x.idle.p95}) | ${x.loaded.p50} ms (p95 ${x.loaded.p95}) | **${x.ratio}×** | ${x.reads.toLocaleString("en")} reads: ${x.answered.toLocaleString("en")} answered, ${x.limited.toLocaleString("en")} refused (429); read p50 ${x.readP50} ms |`;
  return [
    MARKS[0],
    "## Log readers",
    "",
    `Close latency of one org while ${results[0].readers} clients read its delivery log's first page (summary included, no window) in a loop, against the same org's with nobody reading; ${results[0].closes} closes of new conversations, one after another, in each. Run on ${info.date}, commit ${info.commit}, load average ${info.load}: \`node scripts/bench/log-readers.mjs ${results.map((r) => r.n).join(" ")}\`. Each log's jobs are pending surveys closed over the last 29 days (one counter an hour: the drill's closes have no agent or reason yet).`,
    "",
    "| jobs | readers | close p50 idle | close p50 with readers | ratio (target ≤ 2×) | reads |",
    "|---|---|---|---|---|---|",
    ...results.flatMap((r) => [row(r, "limits raised", r.unlimited), row(r, "production limits (60/key, 120/org), Retry-After ignored", r.limited), row(r, "control: /healthz instead of the log", r.control)]),
    "",
    `A first page alone (its summary over the whole log, 50 entries), 50 reads one after another with nothing else running: ${results.map((r) => `${r.n.toLocaleString("en")} jobs p50 **${r.unlimited.readAlone.p50} ms** (p95 ${r.unlimited.readAlone.p95})`).join("; ")}.`,
    "",
    verdict(results),
    ...(before ? [`- **Before the counters** (commit ${before[0].run.commit}, the same script, ${before[0].closes} closes per measurement): a first page alone took ${before.map((r) => `${r.unlimited.readAlone.p50} ms at ${r.n.toLocaleString("en")} jobs`).join(" and ")}, and 16 readers held a close for ${before.map((r) => `${r.unlimited.loaded.p50} ms`).join(" and ")} (idle ${before.map((r) => `${r.unlimited.idle.p50} ms`).join(" and ")}).`] : []),
    "- **Limits raised** (100,000 a minute): what the summary itself costs. **Production limits**: the same log after a restart with the bindings unset; the readers ignore `Retry-After`, so nearly all their reads are refused at the gateway. **Control**: the same readers on `/healthz`, which does no work: what any HTTP traffic on this single workerd thread costs a close.",
    "- Locally the gateway, the org's Durable Object, the sandboxes and the readers' client share one workerd thread and two cores; deployed, the gateway runs in other isolates, so refused reads never reach the org's Durable Object.",
    `- Every close was scheduled; every answered read's summary counted the log and the closes so far; the final summary counted ${results.map((r) => `${r.finalTotal.toLocaleString("en")} of ${r.expectedTotal.toLocaleString("en")}`).join(" and ")}.`,
    MARKS[1],
  ].join("\n");
}

/** Runs the drill on a stack of its own; resolves its figures and what it checked. */
export async function benchLogReaders({ n, closes = 200, readers = 16, log = () => {} }) {
  process.env.REGISTER = "0";
  const stack = new Stack();
  try {
    await stack.start();
    const base = await stack.closeEvent("conv-email");
    const now = Date.now();
    const event = (id, closedAtMs) => {
      const at = new Date(closedAtMs).toISOString();
      const data = structuredClone(base.data);
      data.id = id;
      data.attributes = { ...data.attributes, status: "done", updatedAt: at, modificationHistory: { ...data.attributes.modificationHistory, statusAt: at } };
      return { ...base, id: `evt-${id}`, createdAt: at, data };
    };
    const headers = { "content-type": "application/json", ...stack.settingsHeaders({ "x-seconds-until-send": "2592000" }) };
    const post = async (body) => {
      const started = performance.now();
      const res = await fetch(`${stack.base}/v1/kustomer/conversation-closed`, { method: "POST", headers, body: JSON.stringify(body) });
      const text = await res.text();
      if (res.status !== 202) throw new Error(`close ${body.data.id}: ${res.status} ${text}`);
      return performance.now() - started;
    };

    // The log: n closes over the last 29 days, 32 in flight.
    const seeding = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++;
        await post(event(`log-${i}`, now - 60_000 - Math.floor((i / n) * 29 * DAY)));
        if (i % 10_000 === 9_999) log(`log-readers: ${i + 1} of ${n} closed`);
      }
    }));
    const seedSeconds = (Date.now() - seeding) / 1000;
    log(`log-readers: ${n} closes in ${seedSeconds.toFixed(0)} s`);

    let serial = 0;
    const measure = async () => {
      const times = [];
      for (let i = 0; i < closes; i++) times.push(await post(event(`new-${serial++}`, Date.now() - 1000)));
      return times.sort((a, b) => a - b);
    };
    const readHeaders = stack.orgHeaders();
    /**
     * Close latencies with nobody reading, then with `readers` clients reading `path` in a loop
     * (the log's first page; or /healthz, the control: any HTTP traffic on the same thread).
     */
    const phase = async (path = "/v1/deliveries?limit=50&utcOffsetMinutes=-300", { alone = false } = {}) => {
      const idle = await measure();
      // A read with nothing else going on: what one costs, whatever the log holds.
      const readsAlone = [];
      for (let i = 0; alone && i < 50; i++) {
        const started = performance.now();
        const res = await fetch(`${stack.base}${path}`, { headers: readHeaders });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`a read alone: ${res.status}`);
        readsAlone.push(performance.now() - started);
      }
      readsAlone.sort((a, b) => a - b);
      // The Deliveries page's first page, summary included, over the whole log.
      const reads = [];
      const summaries = [];
      let stop = false;
      const reader = async () => {
        while (!stop) {
          const started = performance.now();
          const res = await fetch(`${stack.base}${path}`, { headers: readHeaders });
          const body = await res.json();
          reads.push({ status: res.status, ms: performance.now() - started });
          if (res.status === 200 && body.summary) summaries.push(Object.values(body.summary.byState).reduce((a, b) => a + b, 0));
        }
      };
      const running = Array.from({ length: readers }, reader);
      // Every reader has had an answer before the loaded closes start.
      while (reads.length < readers) await new Promise((r) => setTimeout(r, 10));
      const before = serial;
      const loaded = await measure();
      stop = true;
      await Promise.all(running);
      const p = (sorted, q) => Number(quantile(sorted, q).toFixed(2));
      const readMs = reads.map((r) => r.ms).sort((a, b) => a - b);
      return {
        idle: { p50: p(idle, 0.5), p95: p(idle, 0.95) },
        loaded: { p50: p(loaded, 0.5), p95: p(loaded, 0.95) },
        ratio: Number((quantile(loaded, 0.5) / quantile(idle, 0.5)).toFixed(2)),
        reads: reads.length,
        answered: reads.filter((r) => r.status === 200).length,
        limited: reads.filter((r) => r.status === 429).length,
        other: reads.filter((r) => r.status !== 200 && r.status !== 429).length,
        readP50: p(readMs, 0.5),
        ...(alone ? { readAlone: { p50: p(readsAlone, 0.5), p95: p(readsAlone, 0.95) } } : {}),
        // Every summary counted the log and the closes so far: n, the idle closes, some loaded ones.
        summariesRight: summaries.every((t) => t >= n + before && t <= n + serial),
      };
    };
    // Rate limits raised (the harness's): the summary's cost alone. Then production's limits
    // (60 reads a minute per key, 120 per org), the same log, the readers ignoring Retry-After.
    const unlimited = await phase(undefined, { alone: true });
    log(`log-readers: ${n} jobs, limits raised: ${JSON.stringify(unlimited)}`);
    const final = await stack.request("GET", "/v1/deliveries?limit=1", { headers: readHeaders });
    const counted = { finalTotal: Object.values(final.body.summary.byState).reduce((a, b) => a + b, 0), expectedTotal: n + serial };
    await stack.kill();
    Object.assign(stack.env, { LOG_READS_PER_KEY_PER_MINUTE: null, LOG_READS_PER_ORG_PER_MINUTE: null });
    await stack.start();
    const limited = await phase();
    log(`log-readers: ${n} jobs, production limits: ${JSON.stringify(limited)}`);
    const control = await phase("/healthz");
    log(`log-readers: ${n} jobs, control (/healthz): ${JSON.stringify(control)}`);
    const result = {
      n,
      readers,
      closes,
      seedSeconds,
      unlimited,
      limited,
      control,
      ...counted,
    };
    return result;
  } finally {
    await stack.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const sizes = process.argv.slice(2).map(Number);
  const results = [];
  for (const n of sizes.length ? sizes : [10_000, 100_000]) {
    const r = await benchLogReaders({ n, closes: Number(process.env.LOG_READERS_CLOSES ?? 200), log: console.log });
    r.run = {
      date: new Date().toISOString().slice(0, 10),
      commit: execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim(),
      load: loadavg().map((l) => l.toFixed(2)).join(", "),
    };
    console.log(JSON.stringify(r));
    results.push(r);
  }
  mkdirSync(`${ROOT}/build`, { recursive: true });
  writeFileSync(`${ROOT}/build/bench-log-readers.json`, JSON.stringify(results, null, 2));
  // The full run's figures go into BENCHMARKS.md (make bench keeps this section).
  if (!sizes.length) writeLogReadersSection(results);
  for (const r of results) {
    for (const [name, x] of [["limits raised", r.unlimited], ["production limits", r.limited], ["control: /healthz", r.control]]) {
      console.log(`${r.n} jobs, ${r.readers} readers, ${name}: close p50 ${x.idle.p50} ms idle → ${x.loaded.p50} ms loaded (${x.ratio}×), p95 ${x.idle.p95} → ${x.loaded.p95} ms; ${x.reads} reads (${x.answered} answered, ${x.limited} 429), read p50 ${x.readP50} ms`);
    }
  }
}
