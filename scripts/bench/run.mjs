// The benchmark (`make bench`, after `make build`): the core's cost per closed conversation
// natively and through Wasm, the edge's throughput against a JavaScript baseline Worker and a
// no-op Worker, Kustomer calls per survey, size and cold start, 10,000 jobs due at once, and
// survey outcomes read back (answer → rating on the conversation, PATCH and Data Return calls).
// Prints a markdown table and writes BENCHMARKS.md with the machine, the date and the commands.
//
//   node scripts/bench/run.mjs                      full run → BENCHMARKS.md
//   BENCH_SMOKE=1 node scripts/bench/run.mjs        tiny sizes, invariants only → build/bench-smoke.md
//   BENCH_SCALE=N                                   jobs for the scale part (10000; smoke 100; 0 skips it)
//   BENCH_ONLY=core,edge,calls,cold,scale,outcomes,storage  run only these parts (the report says so)
//   BENCH_EDGE_ROUNDS=N, BENCH_EDGE_SECONDS=N,      the edge part's rounds per storage (5), seconds
//   BENCH_EDGE_PENDING=N                            per run (10) and pending jobs (10000; 0 skips)
//
// A run with any of these knobs set is partial: it writes build/bench-partial.md and leaves
// BENCHMARKS.md to full runs. For a quick profiling run (about a minute):
//   BENCH_ONLY=edge BENCH_EDGE_ROUNDS=2 BENCH_EDGE_SECONDS=5 BENCH_EDGE_PENDING=0 node scripts/bench/run.mjs
//
// Every figure is a median over repeated runs; every comparison is a ratio of figures taken in
// the same run. The edge's targets against the baseline are reported as met (✓) or not (✗);
// a missed target never fails the run. The smoke checks that everything still runs and that
// the invariants hold (exactly once, ≤ 2 Kustomer calls per survey at steady state, every
// 202/200 from the edge and the baseline, every rating on its conversation with ≤ 1 PATCH per
// outcome and ≤ 100 Data Return calls a minute, finite numbers); it never asserts a timing.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchCalls } from "./calls.mjs";
import { benchColdStart, benchWarmStart, sizes } from "./cold.mjs";
import { benchCore } from "./core.mjs";
import { TARGETS, benchEdge } from "./edge.mjs";
import { ROOT, load, machine } from "./lib.mjs";
import { benchOutcomes } from "./outcomes.mjs";
import { benchScale } from "./scale.mjs";
import { benchStorage } from "./storage.mjs";
import { logReadersSection } from "./log-readers.mjs";

const smoke = process.env.BENCH_SMOKE === "1";
const scaleJobs = Number(process.env.BENCH_SCALE ?? (smoke ? 100 : 10_000));
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",").map((s) => s.trim())) : undefined;
const wanted = (part) => (!only || only.has(part)) && (part !== "scale" || scaleJobs > 0);
// Any knob makes a partial run, which must not overwrite the full run's BENCHMARKS.md.
const knobs = ["BENCH_ONLY", "BENCH_SCALE", "BENCH_EDGE_ROUNDS", "BENCH_EDGE_SECONDS", "BENCH_EDGE_PENDING"].filter((k) => process.env[k] !== undefined);
const partial = !smoke && knobs.length > 0;
const out = join(ROOT, smoke ? "build/bench-smoke.md" : partial ? "build/bench-partial.md" : "BENCHMARKS.md");

const began = Date.now();
const log = (line) => console.error(`[${((Date.now() - began) / 1000).toFixed(0).padStart(4)} s] ${line}`);
const loads = [];
const results = {};
const timings = {};
const failures = [];

async function part(name, fn) {
  if (!wanted(name)) return;
  const start = Date.now();
  loads.push([`${name} start`, load()]);
  log(`${name}: start (load average ${load()})`);
  try {
    results[name] = await fn();
  } catch (e) {
    failures.push(`${name}: ${e.stack ?? e}`);
    log(`${name}: FAILED ${e.message}`);
  }
  timings[name] = (Date.now() - start) / 1000;
  loads.push([`${name} end`, load()]);
}

const info = machine();
log(`${smoke ? "smoke" : partial ? `partial (${knobs.map((k) => `${k}=${process.env[k]}`).join(" ")})` : "full"} run on ${info.cpu}, ${info.cores} cores; load average ${load()}`);
await part("core", () => benchCore({ smoke, log }));
await part("edge", () => benchEdge({ smoke, log }));
await part("calls", () => benchCalls({ smoke, log }));
await part("cold", async () => ({
  sizes: sizes(), start: await benchColdStart({ smoke, log }), warm: await benchWarmStart({ runs: smoke ? 1 : 5, log }),
}));
await part("scale", () => benchScale({ n: scaleJobs, smoke, log }));
await part("outcomes", () => benchOutcomes({ smoke, log }));
await part("storage", () => benchStorage({ smoke, log }));

// ---- invariants (never timings) ------------------------------------------------------------
const check = (ok, what) => ok || failures.push(what);
const finite = (value, path = "") => {
  if (typeof value === "number") check(Number.isFinite(value), `not a finite number: ${path}`);
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) finite(v, `${path}.${k}`);
};
finite(results, "results");
const { core, edge, calls, cold, scale, outcomes, storage } = results;
if (edge) {
  // The same invariants for every session: the edge and the baseline answer every event 202,
  // the no-op every request 200, and no connection fails.
  for (const [where, part] of [["disk", edge], ["tmpfs", edge.tmpfs], ["pending jobs", edge.loaded]]) {
    if (!part) continue;
    for (const [which, status] of [["edge", "202"], ["baseline", "202"], ["noop", "200"]]) {
      const r = part[which];
      check(r.requests > 0 && r.statuses[status] === r.requests, `${which} (${where}): every request answered ${status} (${JSON.stringify(r.statuses)})`);
      check(r.errors + r.timeouts === 0, `${which} (${where}): no connection errors or timeouts (${r.errors} errors, ${r.timeouts} timeouts)`);
    }
  }
  check(edge.kustomerCallsDuringLoad === 0, `edge and baseline: no Kustomer call during the load (${edge.kustomerCallsDuringLoad})`);
}
if (calls) {
  check(calls.exactlyOnce, `calls: each conversation's survey exactly once (${calls.sent} sent, ${calls.unique} distinct, ${calls.warm + calls.steady} closed)`);
  check(calls.steadyPerSurvey <= 2, `calls: at most 2 Kustomer calls per survey at steady state (${calls.steadyPerSurvey})`);
}
if (scale) check(scale.exactlyOnce, `scale: each job sent exactly once (${scale.sent} sent, ${scale.unique} distinct, ${scale.jobs} jobs)`);
if (storage?.pruned) check(storage.pruned.after < storage.pruned.before, `storage: deleting the oldest finished jobs shrinks the object (${storage.pruned.before} → ${storage.pruned.after} B)`);
if (outcomes) {
  check(outcomes.arrived === outcomes.conversations, `outcomes: every rating reached its conversation (${outcomes.arrived} of ${outcomes.conversations})`);
  check(outcomes.patchPerOutcome <= 1, `outcomes: at most 1 Kustomer PATCH call per outcome written (${outcomes.patchCalls} calls for ${outcomes.outcomesWritten} outcomes)`);
  check(outcomes.perMinuteMax <= 100, `outcomes: at most 100 Data Return calls in any minute (${outcomes.perMinuteMax})`);
}

// ---- report --------------------------------------------------------------------------------
const f = (x, digits = 1) => (Number.isFinite(x) ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a");
const int = (x) => f(x, 0);
const kb = (bytes) => `${int(bytes)} B (${f(bytes / 1024, 0)} KiB)`;
const rows = [];
const row = (n, what, figure, how, target = "") => rows.push(`| ${n} | ${what} | ${figure} | ${target} | ${how} |`);
const ratio = (x) => `${f(x, 2)}×`;
// A target as the table shows it: "≥ 1.2× ✓" when met, "✗" when not.
const goal = (t) => (t ? `${t.at === "least" ? "≥" : "≤"} ${Number.isInteger(t.goal) ? t.goal : f(t.goal)}× ${t.met ? "✓" : "✗"}` : "");
const targetList = []; // [where, name, judged target] for the summary under the table
if (core) {
  const prof = core.profile === "release" ? "release profile (`opt-level = \"z\"`, LTO: the Wasm's own settings)" : "**dev profile (smoke)**";
  row("1", "core per closed conversation, native", `**${f(core.nativeJsonUs)} µs** (JSON text in and out); ${f(core.nativeCoreUs)} µs on parsed values`, `plan + build on the fixtures, ${prof}; median of ${core.rounds} rounds × ${int(core.nativeIterations)}`);
  row("1", "same through Wasm in node (`pkg/`)", `**${f(core.wasmUs)} µs**; Wasm/native **${f(core.wasmOverNativeJson, 2)}×** (${f(core.wasmOverNativeCore, 2)}× against parsed values)`, `\`planConversationEvent\` + \`buildSurveyRequest\`, inputs as objects; median of ${core.rounds} rounds × ${int(core.wasmIterations)}, alternating with native`);
}
if (edge) {
  const where = `Durable Object storage on ${edge.storage.type ?? "disk"} (${edge.storage.device ?? edge.storage.path}), as in \`make run\``;
  const figures = (r) => `${int(r.rps)} req/s, p50 ${f(r.p50, 2)} ms, p99 ${f(r.p99, 2)} ms, workerd CPU ${f(r.serverCpuMs, 2)} ms/event`;
  // The three side-by-side targets of one storage, a row each.
  const sideBySide = (part, label) => {
    const v = part.vsBaseline;
    const t = part.targets;
    row("2", `edge / JS baseline, ${label}: req/s`, `**${ratio(v.rps)}** (${int(part.edge.rps)} / ${int(part.baseline.rps)})`, "ratio of the medians above, taken in the same rounds", goal(t.rps));
    row("2", `edge / JS baseline, ${label}: workerd CPU per event`, `**${ratio(v.cpu)}** (${f(part.edge.serverCpuMs, 2)} / ${f(part.baseline.serverCpuMs, 2)} ms)`, "user + system time of the workerd process (`/proc/<pid>/stat`) during a run ÷ requests answered; median of runs", goal(t.cpu));
    row("2", `edge / JS baseline, ${label}: p99`, `**${ratio(v.p99)}** (${f(part.edge.p99, 2)} / ${f(part.baseline.p99, 2)} ms; p50 ${ratio(v.p50)})`, "ratio of the medians above", goal(t.p99));
    for (const [name, judged] of Object.entries(t)) targetList.push([label, name, judged]);
  };
  const e = edge.edge;
  const b = edge.baseline;
  const n = edge.noop;
  row("2", "edge `POST /v1/kustomer/conversation-closed`, storage on disk", `**${int(e.rps)} req/s**, p50 ${f(e.p50, 2)} ms, p99 ${f(e.p99, 2)} ms, workerd CPU ${f(e.serverCpuMs, 2)} ms/event`, `autocannon, ${edge.connections} connections × ${edge.seconds} s, a new conversation id per request (each a real schedule); median of ${edge.rounds} runs, each on a fresh workerd (the org's jobs table grows from about 200 to ${int(edge.pendingAtEnd[0])}–${int(edge.pendingAtEnd[1])} during a run); ${where}; ${int(e.requests)} events, all 202`);
  row("2", "JS baseline Worker, same workerd, same load (disk)", `**${int(b.rps)} req/s**, p50 ${f(b.p50, 2)} ms, p99 ${f(b.p99, 2)} ms, workerd CPU ${f(b.serverCpuMs, 2)} ms/event`, `\`scripts/bench/baseline.js\` on a third socket of the same process: the same endpoint, the same work per event, in plain JavaScript with its own Durable Object and SQLite table (up to ${int(edge.baselinePendingAtEnd[1])} jobs); the identical requests, in runs that alternate with the edge's; ${int(b.requests)} events, all 202`);
  row("2", "no-op Worker, same workerd, same load (disk)", figures(n), "`new Response(\"ok\")` on a fourth socket of the same process, the identical requests, in the same alternation: what workerd itself costs per request");
  sideBySide(edge, "disk");
  row("2", "edge / no-op (disk)", `req/s ${ratio(edge.rpsRatio)}, p99 ${f(edge.p99Ratio, 1)}× (p50 ${f(edge.p50Ratio, 1)}×)`, `ratios of the medians above; ${edge.kustomerCallsDuringLoad} Kustomer calls during all the loads (each side's key → org answer is cached after its first event); the load generator's CPU: ${f(e.clientCpuMs, 2)} ms/request (edge), ${f(b.clientCpuMs, 2)} (baseline), ${f(n.clientCpuMs, 2)} (no-op)`);
  if (edge.tmpfs) {
    const t = edge.tmpfs;
    row("2", "edge, storage on tmpfs", `**${int(t.edge.rps)} req/s**, p50 ${f(t.edge.p50, 2)} ms, p99 ${f(t.edge.p99, 2)} ms, workerd CPU ${f(t.edge.serverCpuMs, 2)} ms/event`, `the same ${edge.rounds} rounds with the state folder in ${t.path}: no disk sync under each SQLite commit, so this is the work itself (jobs table up to ${int(t.pendingAtEnd[1])})`);
    row("2", "JS baseline, storage on tmpfs", `**${int(t.baseline.rps)} req/s**, p50 ${f(t.baseline.p50, 2)} ms, p99 ${f(t.baseline.p99, 2)} ms, workerd CPU ${f(t.baseline.serverCpuMs, 2)} ms/event`, `the same rounds (jobs table up to ${int(t.baselinePendingAtEnd[1])}); no-op ${figures(t.noop)}; edge/no-op req/s ${ratio(t.rpsRatio)}, p99 ${f(t.p99Ratio, 1)}×`);
    sideBySide(t, "tmpfs");
  }
  if (edge.loaded) {
    const l = edge.loaded;
    row("2", `edge with ${int(l.pending)} jobs already pending`, `**${int(l.edge.rps)} req/s**, p50 ${f(l.edge.p50, 2)} ms, p99 ${f(l.edge.p99, 2)} ms, workerd CPU **${f(l.edge.serverCpuMs, 2)} ms/event**`, `storage on ${l.storage}; ${int(l.pending)} events scheduled first on each side (32 connections: edge ${f(l.preloadSeconds.edge)} s, baseline ${f(l.preloadSeconds.baseline)} s), then ${l.pairs} runs of ${l.seconds} s on each socket, alternating; medians`);
    row("2", `JS baseline with ${int(l.pending)} jobs already pending`, `**${int(l.baseline.rps)} req/s**, p50 ${f(l.baseline.p50, 2)} ms, p99 ${f(l.baseline.p99, 2)} ms, workerd CPU ${f(l.baseline.serverCpuMs, 2)} ms/event; its CPU ÷ empty table ${ratio(l.cpuOverEmpty.baseline)}`, `its own table preloaded with the same ${int(l.pending)} jobs; no-op ${figures(l.noop)}`);
    row("2", `edge / JS baseline, ${int(l.pending)} pending`, `req/s **${ratio(l.vsBaseline.rps)}**, workerd CPU **${ratio(l.vsBaseline.cpu)}**, p99 **${ratio(l.vsBaseline.p99)}** (p50 ${ratio(l.vsBaseline.p50)})`, "ratios of the two rows above (no target of their own)");
    row("2", `edge CPU per event, ${int(l.pending)} pending ÷ empty table`, `**${ratio(l.cpuOverEmpty.edge)}** (${f(l.edge.serverCpuMs, 2)} / ${f((l.emptyFrom === "tmpfs" ? edge.tmpfs : edge).edge.serverCpuMs, 2)} ms)`, `the empty-table figure is the fresh rounds' on the same storage (${l.emptyFrom}), whose tables start empty`, goal(l.targets.pendingCpu));
    targetList.push([`${int(l.pending)} pending`, "pendingCpu", l.targets.pendingCpu]);
  }
}
if (calls) {
  const perRoute = Object.entries(calls.byRoute).filter(([, n]) => n.steady).map(([r, n]) => `${r.replace(/^GET /, "")} ${f(n.steady / calls.steady, 2)}`).join(" + ");
  row("3", "Kustomer calls per sent survey, steady state", `**${f(calls.steadyPerSurvey, 2)}** (${perRoute}); the manual workflow spends 4`, `${int(calls.steady)} conversations over ${calls.agents} agents and ${calls.tags} tags, closed through the sandbox, delay ${calls.delaySeconds} s; stats reset after a ${calls.warm}-survey warm-up; ${calls.exactlyOnce ? "each sent exactly once" : "**NOT exactly once**"}`, `≤ 2 ${calls.steadyPerSurvey <= 2 ? "✓" : "✗"}`);
  row("3", "same including the cold warm-up", `${f(calls.inclusivePerSurvey, 2)} (warm-up alone ${f(calls.coldPerSurvey, 2)})`, `${int(calls.warm + calls.steady)} surveys, ${int(calls.coldCalls + calls.steadyCalls)} calls`);
  row("3", "Kustomer budget", `**${int(calls.surveysPerMinuteAtLimit)} surveys/min** per org`, `${int(calls.rateLimitPerMin)} calls/min ÷ ${f(calls.steadyPerSurvey, 2)} calls per survey; with the API secret each outcome read back costs 1 write more (${int(calls.outcomeWrites)} during this part, counted apart; see Survey outcomes): ${int(calls.rateLimitPerMin / (calls.steadyPerSurvey + 2))} surveys/min when every survey is also answered (2 outcomes each)`);
}
if (cold) {
  for (const [file, s] of Object.entries(cold.sizes)) row("4", `\`${file}\``, `${kb(s.raw)} raw, **${kb(s.gzip)}** gzipped`, "zlib level 9 in node");
  row("4", "cold start, spawn → first `GET /healthz`", `**${int(cold.start.healthzMs)} ms** (a no-op-only workerd: ${int(cold.start.noopMs)} ms)`, `workerd with \`sandbox/workerd.capnp\` (edge, sandboxes, router), fresh state; median of ${cold.start.starts}`);
  row("4", "cold start, spawn → first `POST /v1/preview`", `**${int(cold.start.previewMs)} ms**`, "right after the health check: the edge reads four records from the Kustomer sandbox, whose Durable Object starts and seeds itself");
  row("4", "warm start, `make run` → first `GET /healthz`", `**${int(cold.warm.runMs)} ms**; \`make build\` with nothing changed ${int(cold.warm.buildMs)} ms`, `everything built, nothing changed (make checks its outputs' inputs and runs no recipe but the machine check); a fresh state folder, no registration; median of ${cold.warm.runs}`, "≤ 5,000 ms " + (cold.warm.runMs <= 5000 ? "✓" : "✗"));
}
if (scale) {
  row("5", `${int(scale.jobs)} jobs due at the same instant`, `last sent **${f(scale.lateSeconds.max)} s** after the due time (p50 ${f(scale.lateSeconds.p50)} s); ${scale.exactlyOnce ? "**each exactly once**" : "**NOT exactly once**"}`, `scheduled through the edge in ${f(scale.scheduledSeconds)} s (${scale.inFlight} in flight), delay ${scale.delaySeconds} s${scale.overran ? " (**scheduling overran the due time**)" : ""}`);
  row("5", "workerd peak memory", `**${int(scale.peakRssMb)} MB**`, "the whole local stack in one process (edge and both sandboxes); VmHWM and VmRSS sampled every 250 ms");
  if (scale.alarmRuns) row("5", "the org's Durable Object: Wasm memory after its alarm runs", `**${f(scale.alarmRuns.wasmBytes / 2 ** 20, 1)} MiB**`, "the edge's linear memory as each run logs it (it only grows: the high-water mark of the runs above), of the 128 MB Cloudflare allows an isolate", `< 64 MiB ${scale.alarmRuns.wasmBytes < 64 * 2 ** 20 ? "✓" : "✗"}`);
  const a = scale.alarmRuns;
  // Cloudflare's alarm CPU limit as wrangler.toml sets it (`[limits] cpu_ms`): a run stays under half.
  const cpuLimitMs = Number(readFileSync(join(ROOT, "wrangler.toml"), "utf8").match(/^cpu_ms\s*=\s*(\d+)/m)?.[1] ?? 30_000);
  if (a) row("5", "CPU of an alarm run at the largest batch", `**${int(a.largestCpuMs)} ms** for ${int(a.largestBatch)} surveys (most of any run ${int(a.maxCpuMs)} ms; ${f(a.cpuMsPerSurvey, 2)} ms a survey)`, `workerd's CPU between one run's log line and the next, the sandboxes answering its calls included (an upper bound); ${a.runs} run${a.runs === 1 ? "" : "s"}, \`SUBREQUESTS_PER_INVOCATION=${a.subrequests}\` so that \`MAX_PER_ALARM\` sizes them; at most ${int(a.mostCalls)} outbound calls in a run`, `< ${int(cpuLimitMs / 2)} ms (half of \`cpu_ms\`) ${a.maxCpuMs < cpuLimitMs / 2 ? "✓" : "✗"}`);
}
if (storage) {
  const [small, large] = storage.sizes;
  const per = (shape, n) => storage.shapes[shape][n].perJob;
  const m = (bytes) => `${f(bytes / 1e6, 1)} MB`;
  row("6", "bytes per finished job (sent, answer read back), jobs table with its indexes + counters", `**${int(per("after", large))} B** at ${int(large)} jobs (${int(per("after", small))} B at ${int(small)}); before the cut ${int(per("before", large))} B (${f(per("after", large) / per("before", large), 2)}×); with the customer's data removed ${int(per("expired", large))} B`, `\`ctx.storage.sql.databaseSize\` of a Durable Object in workerd, less its size with the tables empty, ÷ jobs; the edge's DDL (src/wasm/edge/sql.rs) and \`job\` JSON (\`examples/bench_storage.rs\`: ${int(storage.shapes.after[large].jsonBytes)} B now, ${int(storage.shapes.before[large].jsonBytes)} B before, ${int(storage.shapes.expired[large].jsonBytes)} B scrubbed); ${storage.agents} agents, closes spread over 90 days (${int(storage.shapes.after[large].counters)} counter rows at ${int(large)})`);
  if (storage.steady) row("6", "bytes per close at the 90-day retention", `**${int(storage.steady[large].perJob)} B** at ${int(large)} (${int(storage.steady[small].perJob)} B at ${int(small)})`, "the same log with its oldest two thirds (60 of the 90 days) written again without personal data, oldest first with `INSERT OR REPLACE`, as the alarm's pass does with `PERSONAL_DATA_DAYS=30`");
  if (storage.pruned) row("6", "space freed by early pruning", `**${int(storage.pruned.freedPerJob)} B a job deleted** (${m(storage.pruned.before)} → ${m(storage.pruned.after)})`, `the oldest ${int(storage.pruned.jobs)} of that log deleted with the edge's statement (\`SqlStore::prune_oldest\`), ${int(storage.pruned.runs)} runs of 1,000: the object shrinks as entries go`);
  row("6", `one org's object at ${int(large)} finished jobs`, `**${m(storage.shapes.after[large].size)}** (before the cut ${m(storage.shapes.before[large].size)}; all scrubbed ${m(storage.shapes.expired[large].size)})`, "the whole SQLite database as Cloudflare bills and limits it (10 GB an object)");
}
const table = ["| # | what | figure | target | how |", "|---|---|---|---|---|", ...rows].join("\n");
console.log(table);
// The edge's targets against the baseline, met or not: reported, never a failure of the run.
const missed = targetList.filter(([, , t]) => !t.met);
const targetSummary = targetList.length
  ? `**Edge targets against the JavaScript baseline: ${targetList.length - missed.length} of ${targetList.length} met**${missed.length ? ` (missed: ${missed.map(([where, name, t]) => `${TARGETS[name].what}, ${where}, ${f(t.ratio, 2)}× against ${t.at === "least" ? "≥" : "≤"} ${t.goal}×`).join("; ")})` : ""}. Targets are reported, never enforced: a missed one does not fail the run, and no test asserts a timing.`
  : undefined;
if (targetSummary) console.log(`\n${targetSummary}`);

// Survey outcomes: a section of their own (the issue asks for these three figures).
const outcomeSection = [];
if (outcomes) {
  const o = outcomes;
  const l = o.latencySeconds;
  const met = (ok) => (ok ? "✓" : "✗");
  outcomeSection.push(
    "| what | figure | target | how |",
    "|---|---|---|---|",
    `| customer's answer → rating on the conversation | **p50 ${f(l.p50, 2)} s**, p95 ${f(l.p95, 2)} s, max ${f(l.max, 2)} s | | ${o.arrived} of ${o.conversations} answers ${o.spreadSeconds ? `spread over ${int(o.spreadSeconds)} s` : "at once"}, ratings 1–5 with comments; outcomes read every ${f(o.pollMs / 1000, 0)} s (\`OUTCOME_POLL_MS=${o.pollMs}\`, as \`make run\`); the sandbox watched every 150 ms |`,
    `| Kustomer calls per outcome written | **${f(o.patchPerOutcome, 2)}** (${int(o.patchCalls)} PATCH calls, ${int(o.patchApplied)} applied, for ${int(o.outcomesWritten)} outcomes; at most ${int(o.patchMaxPerConversation)} on one conversation) | ≤ 1 ${met(o.patchPerOutcome <= 1)} | two outcomes per conversation: delivery status "sent", then the answer; counted by the Kustomer sandbox's \`/writes\` |`,
    `| Data Return calls per minute, per org | busiest rolling minute **${int(o.perMinuteMax)}**${o.perMinuteMax === o.dataCalls ? " (every call of the run)" : ""}; ${int(o.dataCalls)} in all over ${f(o.seconds, 0)} s (${f(o.dataCallsPerMinute)}/min on average), ${int(o.employeesCalls)} roster calls, ${int(o.limitedCalls)} answered 429 | ≤ 100 ${met(o.perMinuteMax <= 100)} (the edge keeps ≤ 60) | counted by the Stella sandbox's \`/calls\` (Data Return and the roster share the key's limit) |`,
    `| the run | ${int(o.conversations)} conversations closed in ${f(o.closedInSeconds)} s; all sent, with their first outcome on the conversation, after ${f(o.sentInSeconds)} s; last rating after ${f(o.ratedInSeconds)} s; ${f(o.seconds)} s in all | | delay ${o.delaySeconds} s; one stack, fresh state |`,
  );
  console.log(`\n${outcomeSection.join("\n")}`);
}

const date = new Date().toISOString();
const totalSeconds = (Date.now() - began) / 1000;
const busiest = Math.max(...loads.map(([, l]) => Number(l.split(" ")[0])));
const md = [];
md.push(smoke ? "# Benchmark smoke run (sizes too small to mean anything)" : partial ? "# Benchmarks: partial run (not the full benchmark; BENCHMARKS.md has that)" : "# Benchmarks", "");
md.push(`Generated by \`make bench\` (\`node scripts/bench/run.mjs\`${knobs.length ? ` with ${knobs.map((k) => `\`${k}=${process.env[k]}\``).join(", ")}` : ""}) on ${date}${only ? `, parts: ${[...only].join(", ")}` : ""}; the whole run took ${f(totalSeconds / 60)} minutes. Do not edit by hand.`, "");
md.push("## Machine", "");
md.push(`- CPU: ${info.cpu}, ${info.cores} cores; RAM ${f(info.ramGb)} GiB`);
md.push(`- OS: ${info.os}, Linux ${info.kernel}`);
md.push(`- node ${info.node}, ${info.rustc}, ${info.workerd}, autocannon ${info.autocannon}`);
md.push(`- commit ${info.git}`);
md.push(`- load average (1, 5, 15 min) at each part's start and end: ${loads.map(([k, l]) => `${k} ${l}`).join("; ")}`);
if (busiest > info.cores * 0.75) {
  md.push(`- **Noise:** the 1-minute load average reached ${busiest.toFixed(2)} on ${info.cores} cores: other work (compiles, tests) shared the machine during the run, and the benchmark's own client and server share the same two cores. Absolute figures will move between runs; the ratios, taken between interleaved runs, move less.`);
}
md.push("", "## Results", "", table, "");
if (targetSummary) md.push(targetSummary, "");
if (failures.length) md.push("**Invariants that failed:**", "", ...failures.map((x) => `- ${x.split("\n")[0]}`), "");
md.push("## What each row measures", "");
md.push("1. **Core per closed conversation**: `api::plan_conversation_event` on `tests/fixtures/kustomer/conversation-update-done.json` plus `api::build_survey_request` on the conversation, customer, user and tags fixtures, with valid settings: the decision and the Stella request for one closed conversation. Natively in two shapes: from JSON text to JSON text (what a Wasm export does between `JSON.stringify` and `JSON.parse`, the fair counterpart) and on already-parsed `serde_json::Value`s. Through Wasm: the `pkg/` exports with the same inputs as JavaScript objects, so the figure includes crossing into Wasm and back. Blocks of native and Wasm rounds alternate; each round times thousands of events; the figure is the median round.");
md.push("2. **Edge throughput, against a JavaScript baseline**: the edge worker served directly by workerd (its own socket in `scripts/bench/bench.capnp`, which embeds the same `build/worker/` modules and sandboxes as `sandbox/workerd.capnp`), each request a close event for a new conversation id, so each is validated, planned and stored as a job in the org's Durable Object (SQLite) with its alarm; the survey is due in a day so no send competes with the load. The **JS baseline** (`scripts/bench/baseline.js`, bench tooling, never shipped) is the same endpoint written the way a competent engineer would write it in plain JavaScript, on its own socket of the same workerd with its own Durable Object namespace on the same state folder, with the edge's caches and storage layout and nothing less: it reads the sixteen settings headers the edge reads and validates them all as `src/settings/` does, once per isolate (a later close whose settings text is the same, compared in constant time, reuses the result, as the edge's gateway does); reads the body in one native call when its length is declared (at most 1 MiB); judges the event as `plan_event` does, reading what storing a close needs (ids, status, times, the customer's id), as the edge's close path does; learns the key's org from Kustomer (cached per isolate for 5 minutes, as the edge does); takes the app secret's fingerprint (HMAC-SHA256, `crypto.subtle`, kept for the last secret and compared in constant time, as the edge does); and makes one RPC to the org's Durable Object (its id cached per isolate, as the edge does), which checks the fingerprint in constant time against the one Kustomer's settings vouch for (read once), inserts the job with one `INSERT … ON CONFLICT … DO UPDATE … WHERE … RETURNING` statement, with the customer's keyed digest (HMAC-SHA256 under the settings key) in the forget index's two indexed columns as the edge keeps it, and counts it in its hour's counter with a second, seals the settings (AES-256-GCM, with an HMAC-SHA256 fingerprint) only when their text differs from the last this instance kept (as the edge does: no HMAC on other closes), and sets the alarm only when the new job is due before the alarm it keeps in memory (read once; as the edge does, no storage call on other closes). Its indexes are the edge's: due time, close time, and the update time of finished jobs only (a partial index no close writes). It does less than the edge only where the bench never looks: it remembers an event's latest id (the edge, 16), leaves out the resurvey rule (its alarm never sends, so no job of it is ever `sent`), keeps a job as columns rather than the edge's JSON document, and serves nothing but this endpoint. For scale, `make profile` also measures a floor Worker (`scripts/profile/floor.js`) that does only the runtime's share of a close, with no logic: the same headers and body read, one RPC, the same two SQLite writes and the reply; the baseline's own logic costs little above it. Since every request adds a pending job, each round starts on a fresh workerd after a 200-request warm-up on each socket, then runs the edge, the baseline and the no-op once each with the identical requests, the order changing from round to round (edge before baseline, then baseline before edge; the no-op last, then first). A separate session first schedules many jobs on each side (both tables preloaded with the same number) and then measures again: the cost of a schedule depends on how many jobs are pending, and the edge's CPU per event there is compared with its figure from the fresh rounds on the same storage. The rounds run twice: with the Durable Objects' state folder on the disk (as `make run` keeps it in `.local/state`), where each SQLite commit waits for the disk, and on tmpfs, where it does not, which leaves the work itself. The targets (req/s at least 1.2× the baseline's, workerd CPU per event at most 0.8×, p99 no higher, on disk and on tmpfs; with the jobs pending, CPU per event at most 1.2× the empty table's) are judged on the medians and shown as ✓ or ✗; they are never enforced. Each side's key → org answer is cached after its first event, so the load itself makes no Kustomer call (the row says how many it made). The no-op Worker is in the same workerd process on a fourth socket and gets the identical requests. CPU per event is the whole workerd process's (user + system) during a run ÷ the requests it answered, so it includes workerd's own share (the no-op's figure). The load generator runs on the same two cores.");
md.push("3. **Kustomer calls per survey**: conversations, each with its own customer, spread over the agents and tags, added to the Kustomer sandbox, closed through its control route (which posts the event to the edge as the app's workflow would), sent after the delay, counted by the sandbox's `/stats` (every `/v1` call, by route). The warm-up batch meets every agent and tag, then the stats are reset: the steady state is what each further survey costs (the conversation and the customer, read fresh at send time); the agent's email and the tag names come from the 5-minute per-org cache, the key's org from the gateway's cache.");
md.push("4. **Size and cold start**: the `.wasm` the pages load (`pkg/`) and the worker's (`build/worker/`, with the edge feature), gzipped with zlib level 9 (`gzip -9`, as `scripts/size.sh` measures, comes out a few hundred bytes smaller). Cold start: from spawning workerd to the first answered request, polling every 2 ms. `edge.js` instantiates the Wasm at module load, so it is in the `/healthz` figure; the preview adds the first Kustomer sandbox reads.");
md.push("5. **Scale**: N conversations with the same close time, scheduled through the edge with 32 requests in flight and a delay long enough that all are stored before they fall due, then sent by the scheduler's alarm to the Stella sandbox. Lateness is the Stella sandbox's `receivedAt` minus the due time. Memory is the workerd process running the whole local stack (the sandboxes hold every conversation and every received request too), not the edge alone.");
md.push("6. **Storage per finished job**: the edge's own tables (the DDL read from `src/wasm/edge/sql.rs`) in a SQLite-backed Durable Object in workerd (`scripts/bench/storage.capnp`), filled with finished jobs whose `job` JSON the edge's code made (`examples/bench_storage.rs`: the fixtures' survey sent, its answer read back from Data Return and written onto the conversation), each with its own conversation id and one of 100 agents, closes spread over 90 days, and the summary's counters as they would stand; then `ctx.storage.sql.databaseSize`, less the empty tables' size, ÷ jobs. Written directly rather than through the sandboxes (100,000 surveys would take hours); three shapes of the same job: as stored before issue 20 (the whole Stella body), as stored now (what the log reads), and after `PERSONAL_DATA_DAYS` (no name, e-mail or comment). docs/operations.md, \"Storage you can plan on\", turns these into closes a day per object.");
if (outcomes) {
  md.push("", "## Survey outcomes", "");
  md.push("The edge reads each org's survey outcomes back from Agent Connect's Data Return API and writes each changed one onto the Kustomer conversation with one PATCH. One stack as `make run` runs it (`scripts/serve.sh`, outcomes read every 3 s; production reads every 5 minutes), conversations each with a customer of its own, closed through the Kustomer sandbox and sent after the delay; once every conversation carries its first outcome (delivery status \"sent\"), the customers answer in the Stella sandbox (`POST /sandbox/stella/responses`).", "");
  md.push(...outcomeSection, "");
  md.push("- **Answer → rating**: from just before the answer is posted to the Stella sandbox until the bench sees its rating and comment on the conversation (it reads the sandbox's PATCH counts every 150 ms and then the conversations written to); up to one read interval (3 s) waiting for the next read, plus the read and the write. Percentiles over the conversations of one run, not medians of runs.");
  md.push("- **Kustomer calls per outcome written**: every PATCH the Kustomer sandbox received (refused ones too, as Kustomer's budget counts them) ÷ the outcomes there were to write, two per conversation; 1 means no outcome was written twice and none took a second call, and the reads themselves cost Kustomer nothing.");
  md.push("- **Data Return calls per minute**: the busiest rolling minute of the org's key as the Stella sandbox counts it, against Agent Connect's 100 a minute; a read is two or three calls (new records from the cursor, the answers since the last pass, now and then recent records again for bounces), and the edge keeps any rolling minute at 60 or fewer; reading every 3 s at two calls a read comes to about 40 a minute. Reads stop once every survey has its final outcome, so a run whose reading lasts under a minute has all its calls in its busiest minute.");
  md.push("- **The run**: how long closing, sending and answering took, for scale; no timing is a target.");
}
md.push("", "## Commands", "");
md.push("```sh");
md.push("make build     # pkg/, pkg-edge/, build/worker/, build/site/");
md.push("make bench     # node scripts/bench/run.mjs");
md.push("# a quick profiling run of the edge part alone (about a minute), written to build/bench-partial.md:");
md.push("BENCH_ONLY=edge BENCH_EDGE_ROUNDS=2 BENCH_EDGE_SECONDS=5 BENCH_EDGE_PENDING=0 node scripts/bench/run.mjs");
md.push("```", "");
md.push("What the script runs, part by part:", "");
if (core) {
  const p = core.profile === "release" ? " --release" : "";
  md.push(`- core: \`cargo build --locked${p} --example bench_core\`, then ${core.rounds / (core.profile === "release" ? 5 : 3)} alternating blocks of \`cargo run --quiet --locked${p} --example bench_core -- ${core.profile === "release" ? 5 : 3} ${core.nativeIterations}\` and \`node scripts/bench/core-wasm.mjs ${core.profile === "release" ? 5 : 3} ${core.wasmIterations}\``);
}
if (edge) md.push(`- edge: \`node_modules/.bin/workerd serve scripts/bench/bench.capnp --socket-addr http=127.0.0.1:<port> --socket-addr edge=127.0.0.1:<port> --socket-addr baseline=127.0.0.1:<port> --socket-addr noop=127.0.0.1:<port> --directory-path state=<temp> --directory-path site=build/site\`; autocannon (programmatic, \`connections: ${edge.connections}, duration: ${edge.seconds}\`, \`setupRequest\` giving each request a new conversation id) on \`/v1/kustomer/conversation-closed\` at the \`edge\`, \`baseline\` and \`noop\` sockets, on a fresh workerd per round: the first event on the edge and on the baseline, 200 requests on each socket as warm-up, then one run each (${edge.rounds} rounds, the order alternating), state in the temp folder${edge.tmpfs ? `, then the same ${edge.rounds} rounds with the state folder in ${edge.tmpfs.path} (tmpfs)` : ""}${edge.loaded ? `; then one more workerd (state on ${edge.loaded.storage}) with ${edge.loaded.pending} events scheduled first on the edge and on the baseline (\`amount: ${edge.loaded.pending}\`, 32 connections each) and ${edge.loaded.pairs} runs of ${edge.loaded.seconds} s on each socket` : ""}. Knobs for profiling runs (they write \`build/bench-partial.md\`, never BENCHMARKS.md): \`BENCH_EDGE_ROUNDS\` (5), \`BENCH_EDGE_SECONDS\` (10), \`BENCH_EDGE_PENDING\` (10000; 0 skips that session), \`BENCH_ONLY=edge\`; for example \`BENCH_ONLY=edge BENCH_EDGE_ROUNDS=2 BENCH_EDGE_SECONDS=5 BENCH_EDGE_PENDING=0 node scripts/bench/run.mjs\` takes about a minute`);
if (calls) md.push(`- calls: \`tests/http/harness.mjs\` \`Stack\` (\`scripts/serve.sh\`, \`REGISTER=0\`); \`POST /sandbox/kustomer/conversations\` (the data sets), \`PUT /sandbox/kustomer/v1/apps/settings\` (\`secondsUntilSend: "${calls.delaySeconds}"\`), \`POST /sandbox/kustomer/conversations/{id}/close\` 8 at a time, \`GET /sandbox/stella/requests\` until all arrived, \`GET\`/\`POST /sandbox/kustomer/stats[/reset]\``);
if (cold) md.push(`- cold start: \`node_modules/.bin/workerd serve sandbox/workerd.capnp --socket-addr http=127.0.0.1:<port> --directory-path state=<new temp> --directory-path site=build/site\`, then \`GET /healthz\` and \`POST /v1/preview\` \`{"conversationId": "conv-email"}\`; for the no-op figure, \`workerd serve scripts/bench/noop.capnp\``);
if (scale) md.push(`- scale: \`scripts/bench/scale.mjs\` (${scale.jobs} jobs, delay ${scale.delaySeconds} s), with the memory of the workerd child of \`scripts/serve.sh\` sampled from \`/proc/<pid>/status\`; each alarm run's CPU is that process's user + system time (\`/proc/<pid>/stat\`) read as the run's \`alarm: N surveys, M outbound calls\` line arrives on its output, less the reading at the line before, with \`SUBREQUESTS_PER_INVOCATION=${scale.alarmRuns?.subrequests ?? "n/a"}\` (\`BENCH_SCALE_SUBREQUESTS\`)`);
if (outcomes) md.push(`- outcomes: \`tests/http/harness.mjs\` \`Stack\` with \`OUTCOME_POLL_MS=${outcomes.pollMs}\` (\`REGISTER=0\`); \`POST /sandbox/kustomer/conversations\`, \`PUT /sandbox/kustomer/v1/apps/settings\` (\`secondsUntilSend: "${outcomes.delaySeconds}"\`), \`POST /sandbox/kustomer/stats/reset\`, \`DELETE /sandbox/stella/calls\`, \`POST /sandbox/kustomer/conversations/{id}/close\` 8 at a time, \`GET /sandbox/kustomer/writes\` until each has its first outcome, \`POST /sandbox/stella/responses\`, \`GET /sandbox/kustomer/writes\` and \`GET /sandbox/kustomer/v1/conversations/{id}\` until each rating is there, \`GET /sandbox/stella/calls\``);
if (storage) md.push(`- storage: \`cargo run --quiet --locked --example bench_storage\`, then \`node_modules/.bin/workerd serve scripts/bench/storage.capnp --socket-addr http=127.0.0.1:<port> --directory-path state=<temp>\`; ${storage.sizes.map((n) => int(n)).join(" and ")} jobs in each shape, each object's DDL and rows sent to \`scripts/bench/storage-do.js\` in batches of 4,000 statements, one transaction each`);
md.push("", "Part durations: " + Object.entries(timings).map(([k, s]) => `${k} ${f(s, 0)} s`).join(", ") + ".", "");
md.push("## Details", "", "```json", JSON.stringify({ machine: info, results }, (k, v) => (typeof v === "number" ? Math.round(v * 1000) / 1000 : v), 2), "```", "");
// The log readers drill writes its own section (it takes longer than the rest): kept as it was.
if (out.endsWith("BENCHMARKS.md") && logReadersSection()) md.push(logReadersSection(), "");
mkdirSync(join(ROOT, "build"), { recursive: true });
writeFileSync(out, md.join("\n"));
log(`wrote ${out.replace(ROOT + "/", "")} in ${f(totalSeconds, 0)} s`);

if (failures.length) {
  console.error(`\n${failures.length} invariant(s) failed:\n${failures.map((x) => `- ${x}`).join("\n")}`);
  process.exit(1);
}
