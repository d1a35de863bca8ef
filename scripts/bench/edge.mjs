// 2. The edge's throughput: `POST /v1/kustomer/conversation-closed` under autocannon on
// loopback, against the edge worker served directly by workerd (scripts/bench/bench.capnp: the
// local stack of sandbox/workerd.capnp plus an `edge` and a `noop` socket), and the same load
// against a Worker that only answers "ok" in the same workerd process. Each request schedules a
// new conversation, so the org's jobs table grows during the load; each round therefore starts a
// fresh workerd (empty table), and a last session measures the same with many jobs already
// pending. The Durable Objects' storage is on the temp folder's disk, as in `make run`; the same
// rounds again with it on tmpfs (/dev/shm) separate the edge's own work from the disk's syncs.
// Figures are medians over rounds; ratios are taken between those medians.
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

export async function benchEdge({ smoke, log }) {
  const connections = 10;
  const seconds = smoke ? 1 : 10;
  const rounds = smoke ? 1 : 5;
  const pending = Number(process.env.BENCH_EDGE_PENDING ?? (smoke ? 200 : 10_000));
  const loadedPairs = smoke ? 1 : 3;
  const loadedSeconds = smoke ? 1 : 5;

  /** One workerd: warm-up, `preload` jobs scheduled, then `pairs` edge and no-op runs. */
  async function session({ name, preload, pairs, seconds, firstNoop, stateRoot }) {
    const w = await startWorkerd("scripts/bench/bench.capnp", ["http", "edge", "noop"], { stateRoot });
    try {
      const base = w.url("http");
      await waitFor(async () => (await fetch(`${w.url("edge")}/healthz`)).ok && (await fetch(`${w.url("noop")}/`)).ok, 20_000, "workerd to start", 50);
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

      // Warm-up: the first event makes the edge ask Kustomer which org the key belongs to
      // (cached in memory for 5 minutes); then 200 requests on each socket.
      const first = await fetch(`${w.url("edge")}/v1/kustomer/conversation-closed`, { method: "POST", headers, body: body("first") });
      if (first.status !== 202) throw new Error(`edge: first event answered ${first.status}: ${await first.text()}`);
      let jobs = 1 + (await load(w.url("edge"), { ...opts, amount: 200 })).statuses["202"];
      await load(w.url("noop"), { ...opts, amount: 200 });
      let preloadSeconds;
      if (preload) {
        phase = "preload";
        const t = performance.now();
        const out = await load(w.url("edge"), { ...opts, connections: 32, amount: preload });
        preloadSeconds = (performance.now() - t) / 1000;
        if (out.statuses["202"] !== preload) throw new Error(`edge: preload answered ${JSON.stringify(out.statuses)}`);
        jobs += preload;
        log(`edge: ${name}: scheduled ${preload} jobs in ${preloadSeconds.toFixed(1)} s (32 connections)`);
      }
      await fetch(`${base}/sandbox/kustomer/stats/reset`, { method: "POST" });

      const runs = { edge: [], noop: [] };
      for (let p = 0; p < pairs; p++) {
        phase = `${name}-${p}`;
        const order = (p % 2 === 1) !== firstNoop ? ["noop", "edge"] : ["edge", "noop"];
        for (const which of order) {
          const out = await load(w.url(which), { ...opts, seconds });
          if (which === "edge") {
            out.pendingBefore = jobs;
            jobs += out.statuses["202"] ?? 0;
          }
          runs[which].push(out);
          log(`edge: ${name} ${which}: ${out.rps.toFixed(0)} req/s, p50 ${out.p50.toFixed(2)} ms, p99 ${out.p99.toFixed(2)} ms, workerd CPU ${out.serverCpuMsPerRequest.toFixed(3)} ms/request${which === "edge" ? `, jobs pending ${out.pendingBefore} → ${jobs}` : ""}`);
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
    perRun: runs.map((x) => ({ rps: x.rps, p50: x.p50, p99: x.p99, serverCpuMs: x.serverCpuMsPerRequest, pendingBefore: x.pendingBefore })),
  });
  const withRatios = (edge, noop) => ({ edge, noop, rpsRatio: edge.rps / noop.rps, p99Ratio: edge.p99 / noop.p99, p50Ratio: edge.p50 / noop.p50 });

  let kustomerCalls = 0;
  async function rounds_(stateRoot, label) {
    const fresh = { edge: [], noop: [] };
    for (let r = 0; r < rounds; r++) {
      const out = await session({ name: `${label} round ${r + 1}/${rounds}`, preload: 0, pairs: 1, seconds, firstNoop: r % 2 === 1, stateRoot });
      fresh.edge.push(...out.edge);
      fresh.noop.push(...out.noop);
      kustomerCalls += out.kustomerCalls;
    }
    const jobsAtEnd = fresh.edge.map((x) => x.pendingBefore + x.statuses["202"]);
    return { ...withRatios(summary(fresh.edge), summary(fresh.noop)), pendingAtEnd: [Math.min(...jobsAtEnd), Math.max(...jobsAtEnd)] };
  }

  const disk = fsOf(tmpdir());
  const result = { connections, seconds, rounds, storage: { path: tmpdir(), type: disk?.type, device: disk?.device } };
  Object.assign(result, await rounds_(tmpdir(), "disk"));
  // tmpfs: no disk sync under the SQLite commits, so the figure is the edge's own work.
  const shm = fsType("/dev/shm") === "tmpfs" ? "/dev/shm" : undefined;
  if (shm) result.tmpfs = { path: shm, ...(await rounds_(shm, "tmpfs")) };
  if (pending > 0) {
    const out = await session({ name: `${pending} pending`, preload: pending, pairs: loadedPairs, seconds: loadedSeconds, firstNoop: false, stateRoot: shm ?? tmpdir() });
    kustomerCalls += out.kustomerCalls;
    result.loaded = { pending, pairs: loadedPairs, seconds: loadedSeconds, preloadSeconds: out.preloadSeconds, storage: shm ? "tmpfs" : disk?.type, ...withRatios(summary(out.edge), summary(out.noop)) };
  }
  result.kustomerCallsDuringLoad = kustomerCalls;
  return result;
}
