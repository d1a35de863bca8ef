// Profiles the close path (`make profile`): workerd with the local stack, the edge on its own
// socket, the bench's JavaScript baseline (scripts/bench/baseline.js) on another and a floor
// Worker (floor.js: the runtime's share of a close, no logic) on a third, the V8 inspector on; a
// close event per request for a new conversation under autocannon. First, without the profiler,
// runs on each socket that alternate for a few rounds: req/s and workerd CPU per request, their
// medians and the edge's ratios to the baseline (the floor says how much of a close is the
// runtime's). Then, side by side, V8's sampling profiler attached to the edge's and the
// baseline's isolate under load (the gateway and the org's Durable Object share it): where the
// isolate's time goes (for the edge: Rust compiled to Wasm, the JS glue, the worker entry; for
// both: workerd's built-ins such as SQL, headers and RPC, and the garbage collector), and the top
// functions.
//
//   node --experimental-websocket scripts/profile/profile.mjs [seconds] [state root] [edge,baseline] [rounds]
//
// Development tooling: nothing here is a test or a benchmark figure (`make bench` is).
import autocannon from "autocannon";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, WORKERD, cpuSeconds, freePort, median, waitFor } from "../bench/lib.mjs";

const seconds = Number(process.argv[2] ?? 5);
const stateRoot = process.argv[3] ?? "/dev/shm";
const sides = (process.argv[4] ?? "edge,baseline").split(",");
const rounds = Number(process.argv[5] ?? 3);
const KEY = "sandbox-kustomer-key";
const inspector = await freePort();
const ports = { http: await freePort(), edge: await freePort(), baseline: await freePort(), floor: await freePort() };
const state = mkdtempSync(join(stateRoot, "stella-profile-"));
const proc = spawn(WORKERD, [
  "serve", "scripts/profile/profile.capnp", "--experimental",
  "--socket-addr", `http=127.0.0.1:${ports.http}`, "--socket-addr", `edge=127.0.0.1:${ports.edge}`, "--socket-addr", `baseline=127.0.0.1:${ports.baseline}`, "--socket-addr", `floor=127.0.0.1:${ports.floor}`,
  "--directory-path", `state=${state}`, "--directory-path", `site=${join(ROOT, "build/site")}`,
  "--inspector-addr", `127.0.0.1:${inspector}`,
], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
const w = {
  pid: proc.pid,
  url: (name) => `http://127.0.0.1:${ports[name]}`,
  async stop() {
    proc.kill("SIGKILL");
    rmSync(state, { recursive: true, force: true });
  },
};
try {
  const base = w.url("http");
  await waitFor(async () => (await fetch(`${w.url("edge")}/healthz`)).ok && (await fetch(`${w.url("baseline")}/healthz`)).ok, 20_000, "workerd", 50);
  const headers = {
    "content-type": "application/json",
    "x-stella-api-key": "sandbox-stella-key",
    "x-kustomer-api-key": KEY,
    "x-kustomer-api-url": `${base}/sandbox/kustomer`,
    "x-kustomer-url": `${base}/sandbox/kustomer`,
    "x-stella-api-url": `${base}/sandbox/stella`,
    "x-seconds-until-send": "86400",
    "x-app-secret": "sandbox-app-secret-0123456789",
  };
  const seed = (await (await fetch(`${base}/sandbox/kustomer/v1/conversations/conv-email`, { headers: { authorization: `Bearer ${KEY}` } })).json()).data;
  const closedAt = new Date().toISOString();
  const [before, after] = JSON.stringify({
    name: "kustomer.conversation.update",
    org: "sandbox-org",
    createdAt: closedAt,
    data: { ...seed, id: "@@ID@@", attributes: { ...seed.attributes, status: "done", updatedAt: closedAt, modificationHistory: { statusAt: closedAt } } },
    changes: { attributes: { status: { op: "replace", before: "open", after: "done" } } },
  }).split("@@ID@@");
  let n = 0;
  /** One load on a socket: req/s, workerd CPU per request, p99. */
  const run = async (side, secs) => {
    const cpu = cpuSeconds(w.pid);
    const result = await autocannon({
      url: w.url(side),
      connections: 10,
      duration: secs,
      requests: [{ method: "POST", path: "/v1/kustomer/conversation-closed", headers, setupRequest: (r) => ({ ...r, body: `${before}${side}-${n++}${after}` }) }],
    });
    const done = result.requests.total;
    if (result.non2xx) throw new Error(`${side}: ${result.non2xx} answers were not 2xx`);
    return { rps: done / secs, cpuMs: ((cpuSeconds(w.pid) - cpu) * 1000) / done, p99: result.latency.p99 };
  };
  const compared = [...new Set([...sides, "baseline", "floor"])].filter((s) => s in ports && s !== "http");
  for (const side of compared) {
    const first = await fetch(`${w.url(side)}/v1/kustomer/conversation-closed`, { method: "POST", headers, body: `${before}${side}-first${after}` });
    if (first.status !== 202) throw new Error(`${side}: first close: ${first.status} ${await first.text()}`);
    await run(side, 2);
  }
  // Alternating runs, the order reversed every other round: no side always gets the warmer slot.
  const runs = Object.fromEntries(compared.map((s) => [s, []]));
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 ? [...compared].reverse() : compared) {
      const out = await run(side, seconds);
      runs[side].push(out);
      console.log(`round ${r + 1}/${rounds} ${side}: ${out.rps.toFixed(0)} req/s, workerd CPU ${out.cpuMs.toFixed(3)} ms/request, p99 ${out.p99} ms`);
    }
  }
  const mid = (side, key) => median(runs[side].map((x) => x[key]));
  console.log("\nwithout the profiler (medians):");
  for (const side of compared) console.log(`  ${side.padEnd(9)} ${mid(side, "rps").toFixed(0).padStart(6)} req/s, workerd CPU ${mid(side, "cpuMs").toFixed(3)} ms/request, p99 ${mid(side, "p99")} ms`);
  if (runs.edge && runs.baseline) {
    const each = runs.edge.map((e, i) => `${(e.rps / runs.baseline[i].rps).toFixed(2)}× req/s, ${(e.cpuMs / runs.baseline[i].cpuMs).toFixed(2)}× CPU`);
    console.log(`  edge ÷ baseline: ${(mid("edge", "rps") / mid("baseline", "rps")).toFixed(2)}× req/s, ${(mid("edge", "cpuMs") / mid("baseline", "cpuMs")).toFixed(2)}× CPU, ${(mid("edge", "p99") / mid("baseline", "p99")).toFixed(2)}× p99 (round by round: ${each.join("; ")})`);
  }
  console.log(`  above the floor (CPU per request): ${compared.filter((s) => s !== "floor").map((s) => `${s} +${(mid(s, "cpuMs") - mid("floor", "cpuMs")).toFixed(3)} ms`).join(", ")}`);

  for (const side of sides) {
    console.log(`\n== ${side}`);
    const ws = new WebSocket(`ws://127.0.0.1:${inspector}/${side}`);
    await new Promise((resolve, reject) => Object.assign(ws, { onopen: resolve, onerror: reject }));
    let id = 0;
    const pending = new Map();
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      pending.get(msg.id)?.(msg);
    };
    const call = (method, params = {}) => new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: 100 });
    await call("Profiler.start");
    const profiled = await run(side, seconds);
    const { result } = await call("Profiler.stop");
    ws.close();
    console.log(`with the profiler: ${profiled.rps.toFixed(0)} req/s`);

    const { nodes, samples, timeDeltas } = result.profile;
    const self = new Map();
    const byId = new Map(nodes.map((node) => [node.id, node]));
    timeDeltas.forEach((dt, i) => {
      const node = byId.get(samples[i]);
      self.set(node, (self.get(node) ?? 0) + dt);
    });
    const kind = ({ callFrame: { url, functionName } }) =>
      url.startsWith("wasm://") ? "Rust (Wasm)"
        : /stella_connect\.js$/.test(url) ? "wasm-bindgen glue (JS)"
          : /(edge|baseline)\.js$/.test(url) ? "worker entry (JS)"
            : functionName === "(idle)" ? "idle"
              : functionName === "(garbage collector)" ? "garbage collector"
                : functionName === "(program)" ? "workerd and V8 outside JS"
                  : "workerd built-ins";
    const totals = new Map();
    const fns = new Map();
    let busy = 0;
    for (const [node, us] of self) {
      const k = kind(node);
      totals.set(k, (totals.get(k) ?? 0) + us);
      if (k !== "idle") busy += us;
      const name = `${node.callFrame.functionName || "(anonymous)"} [${k}]`;
      fns.set(name, (fns.get(name) ?? 0) + us);
    }
    const requests = profiled.rps * seconds;
    console.log(`\n${side} isolate, busy ${(busy / 1000 / requests).toFixed(3)} ms/request (self time):`);
    for (const [k, us] of [...totals].sort((a, b) => b[1] - a[1])) {
      if (k !== "idle") console.log(`  ${k.padEnd(28)} ${(us / 1000 / requests).toFixed(4)} ms/request  ${((100 * us) / busy).toFixed(1)}%`);
    }
    // Inclusive time: a function's own samples and its callees', counted once per stack.
    const parent = new Map();
    for (const node of nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const inclusive = new Map();
    timeDeltas.forEach((dt, i) => {
      const seen = new Set();
      for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
        const node = byId.get(id);
        const name = `${node.callFrame.functionName || "(anonymous)"} [${kind(node)}]`;
        if (seen.has(name)) continue;
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + dt);
      }
    });
    console.log("\ntop functions by inclusive time (Rust and the worker entry):");
    for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]).filter(([n]) => /Rust|worker entry|glue/.test(n)).slice(0, 40)) {
      console.log(`  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name.slice(0, 160)}`);
    }
    console.log("\ntop functions:");
    for (const [name, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
      if (!name.startsWith("(idle)")) console.log(`  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`);
    }
  }
} finally {
  await w.stop();
}
