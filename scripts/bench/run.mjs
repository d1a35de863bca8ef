// The benchmark (`make bench`, after `make build`): the core's cost per closed conversation
// natively and through Wasm, the edge's throughput against a no-op Worker, Kustomer calls per
// survey, size and cold start, and 10,000 jobs due at once. Prints a markdown table and writes
// BENCHMARKS.md with the machine, the date and the commands.
//
//   node scripts/bench/run.mjs                      full run → BENCHMARKS.md
//   BENCH_SMOKE=1 node scripts/bench/run.mjs        tiny sizes, invariants only → build/bench-smoke.md
//   BENCH_SCALE=N                                   jobs for the scale part (10000; smoke 100; 0 skips it)
//   BENCH_ONLY=core,edge,calls,cold,scale           run only these parts (the report says so)
//
// Every figure is a median over repeated runs; every comparison is a ratio of figures taken in
// the same run. The smoke checks that everything still runs and that the invariants hold
// (exactly once, ≤ 2 Kustomer calls per survey at steady state, every 202/200, finite numbers);
// it never asserts a timing.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchCalls } from "./calls.mjs";
import { benchColdStart, sizes } from "./cold.mjs";
import { benchCore } from "./core.mjs";
import { benchEdge } from "./edge.mjs";
import { ROOT, load, machine } from "./lib.mjs";
import { benchScale } from "./scale.mjs";

const smoke = process.env.BENCH_SMOKE === "1";
const scaleJobs = Number(process.env.BENCH_SCALE ?? (smoke ? 100 : 10_000));
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",").map((s) => s.trim())) : undefined;
const wanted = (part) => (!only || only.has(part)) && (part !== "scale" || scaleJobs > 0);
const out = smoke ? join(ROOT, "build/bench-smoke.md") : join(ROOT, "BENCHMARKS.md");

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
log(`${smoke ? "smoke" : "full"} run on ${info.cpu}, ${info.cores} cores; load average ${load()}`);
await part("core", () => benchCore({ smoke, log }));
await part("edge", () => benchEdge({ smoke, log }));
await part("calls", () => benchCalls({ smoke, log }));
await part("cold", async () => ({ sizes: sizes(), start: await benchColdStart({ smoke, log }) }));
await part("scale", () => benchScale({ n: scaleJobs, smoke, log }));

// ---- invariants (never timings) ------------------------------------------------------------
const check = (ok, what) => ok || failures.push(what);
const finite = (value, path = "") => {
  if (typeof value === "number") check(Number.isFinite(value), `not a finite number: ${path}`);
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) finite(v, `${path}.${k}`);
};
finite(results, "results");
const { core, edge, calls, cold, scale } = results;
if (edge) {
  check(edge.edge.requests > 0 && edge.edge.statuses["202"] === edge.edge.requests, `edge: every event answered 202 (${JSON.stringify(edge.edge.statuses)})`);
  check(edge.noop.requests > 0 && edge.noop.statuses["200"] === edge.noop.requests, `no-op: every request answered 200 (${JSON.stringify(edge.noop.statuses)})`);
  check(edge.edge.errors + edge.edge.timeouts + edge.noop.errors + edge.noop.timeouts === 0, "edge: no connection errors or timeouts");
  if (edge.tmpfs) check(edge.tmpfs.edge.statuses["202"] === edge.tmpfs.edge.requests && edge.tmpfs.noop.statuses["200"] === edge.tmpfs.noop.requests, "edge on tmpfs: every event answered 202, every no-op 200");
  if (edge.loaded) check(edge.loaded.edge.statuses["202"] === edge.loaded.edge.requests && edge.loaded.noop.statuses["200"] === edge.loaded.noop.requests, "edge with pending jobs: every event answered 202, every no-op 200");
  check(edge.kustomerCallsDuringLoad === 0, `edge: no Kustomer call during the load (${edge.kustomerCallsDuringLoad})`);
}
if (calls) {
  check(calls.exactlyOnce, `calls: each conversation's survey exactly once (${calls.sent} sent, ${calls.unique} distinct, ${calls.warm + calls.steady} closed)`);
  check(calls.steadyPerSurvey <= 2, `calls: at most 2 Kustomer calls per survey at steady state (${calls.steadyPerSurvey})`);
}
if (scale) check(scale.exactlyOnce, `scale: each job sent exactly once (${scale.sent} sent, ${scale.unique} distinct, ${scale.jobs} jobs)`);

// ---- report --------------------------------------------------------------------------------
const f = (x, digits = 1) => (Number.isFinite(x) ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a");
const int = (x) => f(x, 0);
const kb = (bytes) => `${int(bytes)} B (${f(bytes / 1024, 0)} KiB)`;
const rows = [];
const row = (n, what, figure, how) => rows.push(`| ${n} | ${what} | ${figure} | ${how} |`);
if (core) {
  const prof = core.profile === "release" ? "release profile (`opt-level = \"z\"`, LTO: the Wasm's own settings)" : "**dev profile (smoke)**";
  row("1", "core per closed conversation, native", `**${f(core.nativeJsonUs)} µs** (JSON text in and out); ${f(core.nativeCoreUs)} µs on parsed values`, `plan + build on the fixtures, ${prof}; median of ${core.rounds} rounds × ${int(core.nativeIterations)}`);
  row("1", "same through Wasm in node (`pkg/`)", `**${f(core.wasmUs)} µs**; Wasm/native **${f(core.wasmOverNativeJson, 2)}×** (${f(core.wasmOverNativeCore, 2)}× against parsed values)`, `\`planConversationEvent\` + \`buildSurveyRequest\`, inputs as objects; median of ${core.rounds} rounds × ${int(core.wasmIterations)}, alternating with native`);
}
if (edge) {
  const e = edge.edge;
  const n = edge.noop;
  const where = `Durable Object storage on ${edge.storage.type ?? "disk"} (${edge.storage.device ?? edge.storage.path}), as in \`make run\``;
  row("2", "edge `POST /v1/kustomer/conversation-closed`", `**${int(e.rps)} req/s**, p50 ${f(e.p50, 2)} ms, p99 ${f(e.p99, 2)} ms`, `autocannon, ${edge.connections} connections × ${edge.seconds} s, a new conversation id per request (each a real schedule); median of ${edge.rounds} runs, each on a fresh workerd (the org's jobs table grows from about 200 to ${int(edge.pendingAtEnd[0])}–${int(edge.pendingAtEnd[1])} during a run); ${where}; ${int(e.requests)} events, all 202`);
  row("2", "no-op Worker, same workerd, same load", `${int(n.rps)} req/s, p50 ${f(n.p50, 2)} ms, p99 ${f(n.p99, 2)} ms`, "`new Response(\"ok\")` on a second socket of the same process, the identical requests; runs alternate with the edge's");
  row("2", "edge / no-op", `req/s **${f(edge.rpsRatio, 3)}×**, p99 **${f(edge.p99Ratio, 1)}×** (p50 ${f(edge.p50Ratio, 1)}×)`, `ratios of the medians above; ${edge.kustomerCallsDuringLoad} Kustomer calls during all the loads (the key → org answer is cached after the first event)`);
  row("2", "workerd CPU per request (storage on disk)", `edge ${f(e.serverCpuMs, 2)} ms, no-op ${f(n.serverCpuMs, 3)} ms (the load generator: ${f(e.clientCpuMs, 2)} / ${f(n.clientCpuMs, 2)} ms)`, "user + system time of the workerd process (`/proc/<pid>/stat`) during a run ÷ requests answered; median of runs");
  if (edge.tmpfs) {
    const t = edge.tmpfs;
    row("2", "edge, storage on tmpfs", `**${int(t.edge.rps)} req/s**, p50 ${f(t.edge.p50, 2)} ms, p99 ${f(t.edge.p99, 2)} ms, workerd CPU ${f(t.edge.serverCpuMs, 2)} ms/request; edge/no-op req/s **${f(t.rpsRatio, 3)}×**, p99 **${f(t.p99Ratio, 1)}×** (no-op ${int(t.noop.rps)} req/s, p99 ${f(t.noop.p99, 2)} ms)`, `the same ${edge.rounds} rounds with the state folder in ${t.path}: no disk sync under each SQLite commit, so this is the edge's own work (jobs table up to ${int(t.pendingAtEnd[1])})`);
  }
  if (edge.loaded) {
    const l = edge.loaded;
    row("2", `edge with ${int(l.pending)} jobs already pending`, `**${int(l.edge.rps)} req/s**, p50 ${f(l.edge.p50, 2)} ms, p99 ${f(l.edge.p99, 2)} ms, workerd CPU **${f(l.edge.serverCpuMs, 2)} ms/request**; edge/no-op req/s ${f(l.rpsRatio, 3)}×, p99 ${f(l.p99Ratio, 1)}×`, `storage on ${l.storage}; ${int(l.pending)} events scheduled first (32 connections: ${f(l.preloadSeconds)} s), then ${l.pairs} runs of ${l.seconds} s on each socket; medians`);
  }
}
if (calls) {
  const perRoute = Object.entries(calls.byRoute).filter(([, n]) => n.steady).map(([r, n]) => `${r.replace(/^GET /, "")} ${f(n.steady / calls.steady, 2)}`).join(" + ");
  row("3", "Kustomer calls per sent survey, steady state", `**${f(calls.steadyPerSurvey, 2)}** (${perRoute}); target ≤ 2, the manual workflow spends 4`, `${int(calls.steady)} conversations over ${calls.agents} agents and ${calls.tags} tags, closed through the sandbox, delay ${calls.delaySeconds} s; stats reset after a ${calls.warm}-survey warm-up; ${calls.exactlyOnce ? "each sent exactly once" : "**NOT exactly once**"}`);
  row("3", "same including the cold warm-up", `${f(calls.inclusivePerSurvey, 2)} (warm-up alone ${f(calls.coldPerSurvey, 2)})`, `${int(calls.warm + calls.steady)} surveys, ${int(calls.coldCalls + calls.steadyCalls)} calls`);
  row("3", "Kustomer budget", `**${int(calls.surveysPerMinuteAtLimit)} surveys/min** per org`, `${int(calls.rateLimitPerMin)} calls/min ÷ ${f(calls.steadyPerSurvey, 2)} calls per survey`);
}
if (cold) {
  for (const [file, s] of Object.entries(cold.sizes)) row("4", `\`${file}\``, `${kb(s.raw)} raw, **${kb(s.gzip)}** gzipped`, "zlib level 9 in node");
  row("4", "cold start, spawn → first `GET /healthz`", `**${int(cold.start.healthzMs)} ms** (a no-op-only workerd: ${int(cold.start.noopMs)} ms)`, `workerd with \`sandbox/workerd.capnp\` (edge, sandboxes, router), fresh state; median of ${cold.start.starts}`);
  row("4", "cold start, spawn → first `POST /v1/preview`", `**${int(cold.start.previewMs)} ms**`, "right after the health check: the edge reads four records from the Kustomer sandbox, whose Durable Object starts and seeds itself");
}
if (scale) {
  row("5", `${int(scale.jobs)} jobs due at the same instant`, `last sent **${f(scale.lateSeconds.max)} s** after the due time (p50 ${f(scale.lateSeconds.p50)} s); ${scale.exactlyOnce ? "**each exactly once**" : "**NOT exactly once**"}`, `scheduled through the edge in ${f(scale.scheduledSeconds)} s (${scale.inFlight} in flight), delay ${scale.delaySeconds} s${scale.overran ? " (**scheduling overran the due time**)" : ""}`);
  row("5", "workerd peak memory", `**${int(scale.peakRssMb)} MB**`, "the whole local stack in one process (edge and both sandboxes); VmHWM and VmRSS sampled every 250 ms");
}
const table = ["| # | what | figure | how |", "|---|---|---|---|", ...rows].join("\n");
console.log(table);

const date = new Date().toISOString();
const totalSeconds = (Date.now() - began) / 1000;
const busiest = Math.max(...loads.map(([, l]) => Number(l.split(" ")[0])));
const md = [];
md.push(smoke ? "# Benchmark smoke run (sizes too small to mean anything)" : "# Benchmarks", "");
md.push(`Generated by \`make bench\` (\`node scripts/bench/run.mjs\`) on ${date}${only ? `, parts: ${[...only].join(", ")}` : ""}; the whole run took ${f(totalSeconds / 60)} minutes. Do not edit by hand.`, "");
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
if (failures.length) md.push("**Invariants that failed:**", "", ...failures.map((x) => `- ${x.split("\n")[0]}`), "");
md.push("## What each row measures", "");
md.push("1. **Core per closed conversation**: `api::plan_conversation_event` on `tests/fixtures/kustomer/conversation-update-done.json` plus `api::build_survey_request` on the conversation, customer, user and tags fixtures, with valid settings: the decision and the Stella request for one closed conversation. Natively in two shapes: from JSON text to JSON text (what a Wasm export does between `JSON.stringify` and `JSON.parse`, the fair counterpart) and on already-parsed `serde_json::Value`s. Through Wasm: the `pkg/` exports with the same inputs as JavaScript objects, so the figure includes crossing into Wasm and back. Blocks of native and Wasm rounds alternate; each round times thousands of events; the figure is the median round.");
md.push("2. **Edge throughput**: the edge worker served directly by workerd (its own socket in `scripts/bench/bench.capnp`, which embeds the same `build/worker/` modules and sandboxes as `sandbox/workerd.capnp`), each request a close event for a new conversation id, so each is validated, planned and stored as a job in the org's Durable Object (SQLite) with its alarm; the survey is due in a day so no send competes with the load. Since every request adds a pending job, each run starts on a fresh workerd after a 200-request warm-up, and a separate session first schedules many jobs and then measures again: the cost of a schedule depends on how many jobs are pending. The rounds run twice: with the Durable Objects' state folder on the disk (as `make run` keeps it in `.local/state`), where each SQLite commit waits for the disk, and on tmpfs, where it does not, which leaves the edge's own work. The key → org answer is cached after the first event, so the load itself makes no Kustomer call (the row says how many it made). The no-op Worker is in the same workerd process on another socket and gets the identical requests. The load generator runs on the same two cores.");
md.push("3. **Kustomer calls per survey**: conversations, each with its own customer, spread over the agents and tags, added to the Kustomer sandbox, closed through its control route (which posts the event to the edge as the app's workflow would), sent after the delay, counted by the sandbox's `/stats` (every `/v1` call, by route). The warm-up batch meets every agent and tag, then the stats are reset: the steady state is what each further survey costs (the conversation and the customer, read fresh at send time); the agent's email and the tag names come from the 5-minute per-org cache, the key's org from the gateway's cache.");
md.push("4. **Size and cold start**: the `.wasm` the pages load (`pkg/`) and the worker's (`build/worker/`, with the edge feature), gzipped with zlib level 9 (`gzip -9`, as `scripts/size.sh` measures, comes out a few hundred bytes smaller). Cold start: from spawning workerd to the first answered request, polling every 2 ms. `edge.js` instantiates the Wasm at module load, so it is in the `/healthz` figure; the preview adds the first Kustomer sandbox reads.");
md.push("5. **Scale**: N conversations with the same close time, scheduled through the edge with 32 requests in flight and a delay long enough that all are stored before they fall due, then sent by the scheduler's alarm to the Stella sandbox. Lateness is the Stella sandbox's `receivedAt` minus the due time. Memory is the workerd process running the whole local stack (the sandboxes hold every conversation and every received request too), not the edge alone.");
md.push("", "## Commands", "");
md.push("```sh");
md.push("make build     # pkg/, pkg-edge/, build/worker/, build/site/");
md.push("make bench     # node scripts/bench/run.mjs");
md.push("```", "");
md.push("What the script runs, part by part:", "");
if (core) {
  const p = core.profile === "release" ? " --release" : "";
  md.push(`- core: \`cargo build --locked${p} --example bench_core\`, then ${core.rounds / (core.profile === "release" ? 5 : 3)} alternating blocks of \`cargo run --quiet --locked${p} --example bench_core -- ${core.profile === "release" ? 5 : 3} ${core.nativeIterations}\` and \`node scripts/bench/core-wasm.mjs ${core.profile === "release" ? 5 : 3} ${core.wasmIterations}\``);
}
if (edge) md.push(`- edge: \`node_modules/.bin/workerd serve scripts/bench/bench.capnp --socket-addr http=127.0.0.1:<port> --socket-addr edge=127.0.0.1:<port> --socket-addr noop=127.0.0.1:<port> --directory-path state=<temp> --directory-path site=build/site\`; autocannon (programmatic, \`connections: ${edge.connections}, duration: ${edge.seconds}\`, \`setupRequest\` giving each request a new conversation id) on \`/v1/kustomer/conversation-closed\` at the \`edge\` and \`noop\` sockets, on a fresh workerd per round: the first event, 200 requests on each socket as warm-up, then one run each (${edge.rounds} rounds, alternating which goes first), state in the temp folder${edge.tmpfs ? `, then the same ${edge.rounds} rounds with the state folder in ${edge.tmpfs.path} (tmpfs)` : ""}${edge.loaded ? `; then one more workerd (state on ${edge.loaded.storage}) with ${edge.loaded.pending} events scheduled first (\`amount: ${edge.loaded.pending}\`, 32 connections) and ${edge.loaded.pairs} runs of ${edge.loaded.seconds} s on each socket` : ""}`);
if (calls) md.push(`- calls: \`tests/http/harness.mjs\` \`Stack\` (\`scripts/serve.sh\`, \`REGISTER=0\`); \`POST /sandbox/kustomer/conversations\` (the data sets), \`PUT /sandbox/kustomer/v1/apps/settings\` (\`secondsUntilSend: "${calls.delaySeconds}"\`), \`POST /sandbox/kustomer/conversations/{id}/close\` 8 at a time, \`GET /sandbox/stella/requests\` until all arrived, \`GET\`/\`POST /sandbox/kustomer/stats[/reset]\``);
if (cold) md.push(`- cold start: \`node_modules/.bin/workerd serve sandbox/workerd.capnp --socket-addr http=127.0.0.1:<port> --directory-path state=<new temp> --directory-path site=build/site\`, then \`GET /healthz\` and \`POST /v1/preview\` \`{"conversationId": "conv-email"}\`; baseline \`workerd serve scripts/bench/noop.capnp\``);
if (scale) md.push(`- scale: \`scripts/bench/scale.mjs\` (${scale.jobs} jobs, delay ${scale.delaySeconds} s), with the memory of the workerd child of \`scripts/serve.sh\` sampled from \`/proc/<pid>/status\``);
md.push("", "Part durations: " + Object.entries(timings).map(([k, s]) => `${k} ${f(s, 0)} s`).join(", ") + ".", "");
md.push("## Details", "", "```json", JSON.stringify({ machine: info, results }, (k, v) => (typeof v === "number" ? Math.round(v * 1000) / 1000 : v), 2), "```", "");
mkdirSync(join(ROOT, "build"), { recursive: true });
writeFileSync(out, md.join("\n"));
log(`wrote ${out.replace(ROOT + "/", "")} in ${f(totalSeconds, 0)} s`);

if (failures.length) {
  console.error(`\n${failures.length} invariant(s) failed:\n${failures.map((x) => `- ${x}`).join("\n")}`);
  process.exit(1);
}
