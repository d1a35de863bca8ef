// 2. The edge's throughput: `POST /v1/kustomer/conversation-closed` under autocannon on
// loopback, against the edge worker served directly by workerd (scripts/bench/bench.capnp: the
// local stack of sandbox/workerd.capnp plus `edge`, `baseline` and `noop` sockets), against the
// same endpoint written in plain JavaScript (scripts/bench/baseline.js, its own Durable Object
// and SQLite table) and against a Worker that only answers "ok", all in the same workerd process,
// with the identical requests, in runs that alternate. Each request schedules a new
// conversation, so each org's jobs table grows during the load; each round therefore starts a
// fresh workerd (empty tables), and a last session measures the same with many jobs already
// pending in both the edge's and the baseline's tables. The Durable Objects' storage is on the
// temp folder's disk, as in `make run`; the same rounds again with it on tmpfs (/dev/shm)
// separate the work from the disk's syncs. Figures are medians over rounds; ratios are taken
// between those medians; targets are reported as met or not, never thrown.
//
//   BENCH_EDGE_ROUNDS=N    rounds per storage (5; smoke 1)
//   BENCH_EDGE_SECONDS=N   seconds per run (10; smoke 1)
//   BENCH_EDGE_PENDING=N   jobs pending in the last session (10000; smoke 200; 0 skips it)
import autocannon from "autocannon";
import { tmpdir } from "node:os";
import { cpuSeconds, fsOf, fsType, median, quantile, startWorkerd, waitFor } from "./lib.mjs";

const KUSTOMER_KEY = "sandbox-kustomer-key";
const STELLA_KEY = "sandbox-stella-key";
const APP_SECRET = "sandbox-app-secret-0123456789"; // the sandbox org's; the first close registers it

/**
 * One autocannon run; latencies from each response's own duration (fractional ms), and the CPU
 * time workerd (`pid`) and this process (the load generator) spent per request.
 */
async function load(url, { connections, seconds, amount, body, headers, pid }) {
  const latencies = [];
  const statuses = {};
  let n = 0;
  const started = performance.now();
  const serverCpu = cpuSeconds(pid);
  const clientCpu = process.cpuUsage();
  const instance = autocannon({
    url,
    connections,
    ...(amount ? { amount } : { duration: seconds }),
    requests: [{
      method: "POST",
      path: "/v1/kustomer/conversation-closed",
      headers,
      // A new conversation id per request: each is a real schedule, never a duplicate.
      setupRequest: (req) => ({ ...req, body: body(n++) }),
    }],
  });
  instance.on("response", (client, status, bytes, ms) => {
    latencies.push(ms);
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  const result = await instance;
  const elapsed = (performance.now() - started) / 1000;
  const serverCpuMs = (cpuSeconds(pid) - serverCpu) * 1000;
  const { user, system } = process.cpuUsage(clientCpu);
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    rps: latencies.length / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    statuses,
    serverCpuMsPerRequest: serverCpuMs / latencies.length,
    clientCpuMsPerRequest: (user + system) / 1000 / latencies.length,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** The goals of the issue, each a ratio of figures taken side by side in one run. */
export const TARGETS = {
  rps: { goal: 1.2, at: "least", what: "edge req/s ÷ baseline req/s" },
  cpu: { goal: 0.8, at: "most", what: "edge workerd CPU per event ÷ baseline's" },
  p99: { goal: 1, at: "most", what: "edge p99 ÷ baseline p99" },
  pendingCpu: { goal: 1.2, at: "most", what: "edge workerd CPU per event with the jobs pending ÷ the same with an empty table" },
};
const judge = (name, ratio) => {
  const t = TARGETS[name];
  return { ratio, goal: t.goal, at: t.at, met: t.at === "least" ? ratio >= t.goal : ratio <= t.goal };
};

// Each round alternates which of the edge and the baseline goes first, and every other pair of
// rounds puts the no-op first instead of last: no side always gets the warmer or the later slot.
const order = (i) => {
  const pair = i % 2 ? ["baseline", "edge"] : ["edge", "baseline"];
  return (i >> 1) % 2 ? ["noop", ...pair] : [...pair, "noop"];
};
const TARGETS_UNDER_LOAD = ["edge", "baseline"]; // the sockets that schedule jobs

export async function benchEdge({ smoke, log }) {
  const env = (name, fallback) => {
    const n = Number(process.env[name] ?? fallback);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (${process.env[name]})`);
    return n;
  };
  const connections = 10;
  const seconds = Math.max(1, env("BENCH_EDGE_SECONDS", smoke ? 1 : 10));
  const rounds = Math.max(1, env("BENCH_EDGE_ROUNDS", smoke ? 1 : 5));
  const pending = env("BENCH_EDGE_PENDING", smoke ? 200 : 10_000);
  const loadedPairs = smoke ? 1 : Math.min(3, rounds);
  const loadedSeconds = smoke ? 1 : Math.min(5, seconds);

  /** One workerd: warm-up, `preload` jobs scheduled on each side, then `pairs` runs on each socket. */
  async function session({ name, preload, pairs, seconds, first, stateRoot }) {
    const w = await startWorkerd("scripts/bench/bench.capnp", ["http", "edge", "baseline", "noop"], { stateRoot });
    try {
      const base = w.url("http");
      await waitFor(
        async () => (await fetch(`${w.url("edge")}/healthz`)).ok && (await fetch(`${w.url("baseline")}/healthz`)).ok && (await fetch(`${w.url("noop")}/`)).ok,
        20_000, "workerd to start", 50,
      );
      const headers = {
        "content-type": "application/json",
        "x-stella-api-key": STELLA_KEY,
        "x-kustomer-api-key": KUSTOMER_KEY,
        "x-kustomer-api-url": `${base}/sandbox/kustomer`,
        "x-kustomer-url": `${base}/sandbox/kustomer`,
        "x-stella-api-url": `${base}/sandbox/stella`,
        // Due in a day: nothing falls due while the load runs, so no send competes with it.
        "x-seconds-until-send": "86400",
        "x-app-secret": APP_SECRET,
      };
      const seed = (await (await fetch(`${base}/sandbox/kustomer/v1/conversations/conv-email`, { headers: { authorization: `Bearer ${KUSTOMER_KEY}` } })).json()).data;
      const closedAt = new Date().toISOString();
      // The close event as Kustomer posts it; `@@ID@@` becomes a new conversation id each time.
      const template = JSON.stringify({
        name: "kustomer.conversation.update",
        org: "sandbox-org",
        createdAt: closedAt,
        data: { ...seed, id: "@@ID@@", attributes: { ...seed.attributes, status: "done", updatedAt: closedAt, modificationHistory: { statusAt: closedAt } } },
        changes: { attributes: { status: { op: "replace", before: "open", after: "done" } } },
      });
      const [before, after] = template.split("@@ID@@");
      let phase = "warm";
      const body = (i) => `${before}bench-${phase}-${i}${after}`;
      const opts = { connections, body, headers, pid: w.pid };

      // Warm-up: the first event makes each side ask Kustomer which org the key belongs to
      // (cached in memory for 5 minutes) and registers the app secret; then 200 requests on
      // each socket. Edge and baseline keep their jobs in their own Durable Objects.
      const jobs = {};
      for (const which of TARGETS_UNDER_LOAD) {
        const firstReply = await fetch(`${w.url(which)}/v1/kustomer/conversation-closed`, { method: "POST", headers, body: body(`first-${which}`) });
        if (firstReply.status !== 202) throw new Error(`${which}: first event answered ${firstReply.status}: ${await firstReply.text()}`);
      }
      for (const which of ["edge", "baseline", "noop"]) {
        const out = await load(w.url(which), { ...opts, amount: 200 });
        if (which !== "noop") jobs[which] = 1 + (out.statuses["202"] ?? 0);
      }
      const preloadSeconds = {};
      if (preload) {
        for (const which of TARGETS_UNDER_LOAD) {
          phase = `preload-${which}`;
          const t = performance.now();
          const out = await load(w.url(which), { ...opts, connections: 32, amount: preload });
          preloadSeconds[which] = (performance.now() - t) / 1000;
          if (out.statuses["202"] !== preload) throw new Error(`${which}: preload answered ${JSON.stringify(out.statuses)}`);
          jobs[which] += preload;
          log(`edge: ${name}: ${which}: scheduled ${preload} jobs in ${preloadSeconds[which].toFixed(1)} s (32 connections)`);
        }
      }
      await fetch(`${base}/sandbox/kustomer/stats/reset`, { method: "POST" });

      const runs = { edge: [], baseline: [], noop: [] };
      for (let p = 0; p < pairs; p++) {
        phase = `${name}-${p}`;
        for (const which of order(first + p)) {
          const out = await load(w.url(which), { ...opts, seconds });
          if (which in jobs) {
            out.pendingBefore = jobs[which];
            jobs[which] += out.statuses["202"] ?? 0;
          }
          runs[which].push(out);
          log(`edge: ${name} ${which}: ${out.rps.toFixed(0)} req/s, p50 ${out.p50.toFixed(2)} ms, p99 ${out.p99.toFixed(2)} ms, workerd CPU ${out.serverCpuMsPerRequest.toFixed(3)} ms/request${which in jobs ? `, jobs pending ${out.pendingBefore} → ${jobs[which]}` : ""}`);
        }
      }
      const kustomerCalls = (await (await fetch(`${base}/sandbox/kustomer/stats`)).json()).total;
      return { ...runs, kustomerCalls, preloadSeconds };
    } finally {
      await w.stop();
    }
  }

  const pick = (runs, key) => median(runs.map((x) => x[key]));
  const sum = (runs, key) => runs.reduce((a, x) => a + x[key], 0);
  const statuses = (runs) => runs.reduce((acc, x) => {
    for (const [k, v] of Object.entries(x.statuses)) acc[k] = (acc[k] ?? 0) + v;
    return acc;
  }, {});
  const summary = (runs) => ({
    rps: pick(runs, "rps"), p50: pick(runs, "p50"), p99: pick(runs, "p99"),
    serverCpuMs: pick(runs, "serverCpuMsPerRequest"), clientCpuMs: pick(runs, "clientCpuMsPerRequest"),
    requests: sum(runs, "requests"), statuses: statuses(runs), errors: sum(runs, "errors"), timeouts: sum(runs, "timeouts"),
    perRun: runs.map((x) => ({ rps: x.rps, p50: x.p50, p99: x.p99, serverCpuMs: x.serverCpuMsPerRequest, ...(x.pendingBefore !== undefined && { pendingBefore: x.pendingBefore }) })),
  });
  /** Medians and ratios: edge/no-op, and edge/baseline with the side-by-side targets judged. */
  const compare = (runs, judged = true) => {
    const [edge, baseline, noop] = [summary(runs.edge), summary(runs.baseline), summary(runs.noop)];
    const vsBaseline = { rps: edge.rps / baseline.rps, p50: edge.p50 / baseline.p50, p99: edge.p99 / baseline.p99, cpu: edge.serverCpuMs / baseline.serverCpuMs };
    return {
      edge, baseline, noop,
      rpsRatio: edge.rps / noop.rps, p99Ratio: edge.p99 / noop.p99, p50Ratio: edge.p50 / noop.p50,
      vsBaseline,
      targets: judged ? { rps: judge("rps", vsBaseline.rps), cpu: judge("cpu", vsBaseline.cpu), p99: judge("p99", vsBaseline.p99) } : {},
    };
  };

  let kustomerCalls = 0;
  async function rounds_(stateRoot, label) {
    const fresh = { edge: [], baseline: [], noop: [] };
    for (let r = 0; r < rounds; r++) {
      const out = await session({ name: `${label} round ${r + 1}/${rounds}`, preload: 0, pairs: 1, seconds, first: r, stateRoot });
      for (const which of Object.keys(fresh)) fresh[which].push(...out[which]);
      kustomerCalls += out.kustomerCalls;
    }
    const atEnd = (runs) => {
      const jobs = runs.map((x) => x.pendingBefore + (x.statuses["202"] ?? 0));
      return [Math.min(...jobs), Math.max(...jobs)];
    };
    return { ...compare(fresh), pendingAtEnd: atEnd(fresh.edge), baselinePendingAtEnd: atEnd(fresh.baseline) };
  }

  const disk = fsOf(tmpdir());
  const result = { connections, seconds, rounds, targetGoals: TARGETS, storage: { path: tmpdir(), type: disk?.type, device: disk?.device } };
  Object.assign(result, await rounds_(tmpdir(), "disk"));
  // tmpfs: no disk sync under the SQLite commits, so the figure is the work itself.
  const shm = fsType("/dev/shm") === "tmpfs" ? "/dev/shm" : undefined;
  if (shm) result.tmpfs = { path: shm, ...(await rounds_(shm, "tmpfs")) };
  if (pending > 0) {
    const out = await session({ name: `${pending} pending`, preload: pending, pairs: loadedPairs, seconds: loadedSeconds, first: 0, stateRoot: shm ?? tmpdir() });
    kustomerCalls += out.kustomerCalls;
    const loaded = { pending, pairs: loadedPairs, seconds: loadedSeconds, preloadSeconds: out.preloadSeconds, storage: shm ? "tmpfs" : disk?.type, ...compare(out, false) };
    // The empty-table figure is the fresh rounds' on the same storage (their tables start empty
    // and hold only what the run itself adds).
    const empty = shm ? result.tmpfs : result;
    loaded.emptyFrom = shm ? "tmpfs" : "disk";
    loaded.cpuOverEmpty = { edge: loaded.edge.serverCpuMs / empty.edge.serverCpuMs, baseline: loaded.baseline.serverCpuMs / empty.baseline.serverCpuMs };
    loaded.targets.pendingCpu = judge("pendingCpu", loaded.cpuOverEmpty.edge);
    result.loaded = loaded;
  }
  result.kustomerCallsDuringLoad = kustomerCalls;
  for (const [where, part] of [["disk", result], ["tmpfs", result.tmpfs], [`${pending} pending`, result.loaded]]) {
    for (const [name, t] of Object.entries(part?.targets ?? {})) {
      log(`edge: target ${name} (${where}): ${TARGETS[name].what} ${t.ratio.toFixed(3)}×, goal at ${t.at} ${t.goal}×: ${t.met ? "met" : "NOT met"}`);
    }
  }
  return result;
}
