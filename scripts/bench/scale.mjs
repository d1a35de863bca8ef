// 5. Scale: N closed conversations with the same close
// time, scheduled through the real edge (the whole local stack: tests/http/harness.mjs's Stack,
// scripts/serve.sh), all due at the same instant; how late the last survey reaches the Stella
// sandbox, workerd's peak memory (VmRSS of the workerd child of serve.sh sampled every 250 ms,
// and its VmHWM), and whether every conversation was sent exactly once. And the CPU of each alarm
// run: workerd's CPU (user + system, /proc/<pid>/stat) read as each run's line
// (`alarm: N surveys, M outbound calls`, www/edge.js) arrives, less the reading at the line
// before; an upper bound for the edge, since the Kustomer and Stella sandboxes that answer the
// run's calls work in the same process. SUBREQUESTS_PER_INVOCATION is the Paid plan's 10,000
// (BENCH_SCALE_SUBREQUESTS), so that MAX_PER_ALARM (src/edge/scheduler/mod.rs) is what sizes a
// run: the largest batch.
import { Stack } from "../../tests/http/harness.mjs";
import { childrenNamed, cpuSeconds, quantile, sampleMemory, sleep, track, waitFor } from "./lib.mjs";

/** CPU of each alarm run as workerd's output tells them: {surveys, calls, cpuMs} each. */
function watchRuns(proc, pid) {
  const runs = [];
  let last = cpuSeconds(pid);
  const seen = (d) => {
    for (const m of String(d).matchAll(/alarm: (\d+) surveys, (\d+) outbound calls, (\d+) bytes of Wasm memory/g)) {
      const now = cpuSeconds(pid);
      runs.push({ surveys: Number(m[1]), calls: Number(m[2]), wasmBytes: Number(m[3]), cpuMs: (now - last) * 1000 });
      last = now;
    }
  };
  for (const stream of [proc.stdout, proc.stderr]) stream.on("data", seen);
  return {
    runs,
    stop: () => {
      for (const stream of [proc.stdout, proc.stderr]) stream.off("data", seen);
    },
  };
}

export async function benchScale({ n, smoke, log }) {
  // The delay must outlast the scheduling (52–88 s for 10,000 before, on this machine).
  const delay = Number(process.env.BENCH_SCALE_DELAY ?? Math.max(smoke ? 10 : 30, Math.ceil(n * 0.015)));
  const inFlight = 32;
  process.env.REGISTER = "0";
  const subrequests = Number(process.env.BENCH_SCALE_SUBREQUESTS ?? 10_000);
  const stack = new Stack({ env: { SUBREQUESTS_PER_INVOCATION: String(subrequests) } });
  let untrack = () => {};
  let mem;
  let memory;
  let watch;
  try {
    const starting = stack.start();
    untrack = track((await waitFor(async () => stack.proc, 10_000, "serve.sh to spawn", 5)).pid, stack.state);
    await starting;
    // serve.sh runs workerd as its child: that process holds the whole stack.
    const pid = await waitFor(async () => childrenNamed(stack.proc.pid, "workerd")[0], 5_000, "the workerd process", 50);
    mem = sampleMemory(pid, 250);
    const post = async (path, body, headers = {}) => {
      const res = await fetch(stack.base + path, {
        method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body),
      });
      return { status: res.status, text: await res.text() };
    };
    const seed = (await stack.conversation("conv-email")).data;
    const closedAt = new Date().toISOString();
    const ids = Array.from({ length: n }, (_, i) => `conv-scale-${i}`);
    const conversation = (id) => ({
      ...seed, id, attributes: { ...seed.attributes, status: "done", updatedAt: closedAt, modificationHistory: { statusAt: closedAt } },
    });
    for (let i = 0; i < n; i += 1000) {
      const r = await post("/sandbox/kustomer/conversations", ids.slice(i, i + 1000).map((id) => ({ conversation: conversation(id) })));
      if (r.status !== 201) throw new Error(r.text);
    }
    const headers = stack.settingsHeaders({ "x-seconds-until-send": String(delay) });
    const started = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const id = ids[next++];
        const r = await post("/v1/kustomer/conversation-closed", {
          name: "kustomer.conversation.update", org: "sandbox-org", createdAt: closedAt, data: conversation(id),
          changes: { attributes: { status: { before: "open", after: "done" } } },
        }, headers);
        if (r.status !== 202) throw new Error(`${id}: ${r.status} ${r.text}`);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const scheduledSeconds = (Date.now() - started) / 1000;
    const dueAt = Date.parse(closedAt) + delay * 1000;
    const overran = Date.now() >= dueAt;
    log(`scale: scheduled ${n} in ${scheduledSeconds.toFixed(1)} s (${inFlight} in flight); due in ${((dueAt - Date.now()) / 1000).toFixed(0)} s${overran ? " — scheduling overran the due time" : ""}`);

    // From here on, only the alarm runs work (and the sandboxes answering them).
    watch = watchRuns(stack.proc, pid);
    const every = Math.max(1000, Math.min(5000, n / 2));
    const list = async () => {
      stack.log.length = 0; // serve.sh's output, kept by the harness for the tests; not needed here
      return (await (await fetch(`${stack.base}/sandbox/stella/requests`)).json()).requests;
    };
    let requests = await waitFor(async () => {
      const r = await list();
      return r.length >= n && r;
    }, (delay + 900) * 1000, `${n} surveys`, every);
    await sleep(smoke ? 1500 : 3000); // any duplicate would arrive now
    requests = await list();
    memory = mem.stop();
    watch.stop();
    const busy = watch.runs.filter((r) => r.surveys > 0);
    const largest = busy.reduce((b, r) => (!b || r.surveys > b.surveys || (r.surveys === b.surveys && r.cpuMs > b.cpuMs) ? r : b), undefined);
    const cpuTotal = busy.reduce((t, r) => t + r.cpuMs, 0);
    const alarmRuns = {
      subrequests, runs: busy.length, largestBatch: largest?.surveys ?? 0, largestCpuMs: largest?.cpuMs ?? 0,
      maxCpuMs: Math.max(0, ...busy.map((r) => r.cpuMs)), mostCalls: Math.max(0, ...busy.map((r) => r.calls)),
      wasmBytes: Math.max(0, ...watch.runs.map((r) => r.wasmBytes)),
      cpuMsPerSurvey: busy.length ? cpuTotal / busy.reduce((t, r) => t + r.surveys, 0) : 0,
    };
    const counts = new Map();
    for (const r of requests) counts.set(r.body.ext_interaction_id, (counts.get(r.body.ext_interaction_id) ?? 0) + 1);
    const exactlyOnce = requests.length === n && ids.every((id) => counts.get(id) === 1);
    const late = requests.map((r) => (Date.parse(r.receivedAt) - dueAt) / 1000).sort((a, b) => a - b);
    return {
      jobs: n, delaySeconds: delay, inFlight, scheduledSeconds, overran, alarmRuns,
      sent: requests.length, unique: counts.size, exactlyOnce,
      lateSeconds: { p50: quantile(late, 0.5), p99: quantile(late, 0.99), max: late.at(-1), first: late[0] },
      peakRssMb: Math.max(memory.peakSampledMb, memory.hwmMb),
      peakSampledMb: memory.peakSampledMb, hwmMb: memory.hwmMb, samples: memory.samples,
    };
  } finally {
    if (mem && !memory) mem.stop();
    watch?.stop();
    await stack.stop();
    untrack();
  }
}
