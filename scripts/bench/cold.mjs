// 4. Size and cold start: the two shipped .wasm files raw and gzipped (zlib level 9, as
// `gzip -9` in scripts/size.sh), and the time from spawning workerd with the local config
// (sandbox/workerd.capnp, as scripts/serve.sh runs it, without registration) to its first
// answered `GET /healthz` and its first answered `POST /v1/preview`, each on a fresh state folder;
// and, as the baseline, the same binary serving only the no-op Worker to its first answer.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, median, sleep, startWorkerd } from "./lib.mjs";

export function sizes() {
  const out = {};
  for (const file of ["pkg/stella_connect_bg.wasm", "build/worker/stella_connect_bg.wasm"]) {
    const bytes = readFileSync(join(ROOT, file));
    out[file] = { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  }
  return out;
}

/** Retries `attempt` every 2 ms until it gives an answer; the ms since `from`. */
async function firstAnswer(from, attempt, limitMs = 30_000) {
  for (;;) {
    const res = await attempt().catch(() => null);
    if (res) return performance.now() - from;
    if (performance.now() - from > limitMs) throw new Error("no answer within the limit");
    await sleep(2);
  }
}

/** A free port on 127.0.0.1. */
const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });

/**
 * The warm start: `make run` with everything built and nothing changed, from the command to
 * the first answered `GET /healthz` (make checks its outputs, setup checks the machine, workerd
 * starts); then the whole process group is stopped. `make build` alone with nothing changed,
 * too. Median of `runs`.
 */
export async function benchWarmStart({ runs, log }) {
  const run = [];
  const build = [];
  for (let i = 0; i < runs; i++) {
    const began = performance.now();
    await new Promise((resolve, reject) => {
      const make = spawn("make", ["--no-print-directory", "build"], { cwd: ROOT, stdio: "ignore" });
      make.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`make build exited ${code}`))));
    });
    build.push(performance.now() - began);
    const port = await freePort();
    const state = mkdtempSync(join(tmpdir(), "warm-start-"));
    const from = performance.now();
    const child = spawn("make", ["--no-print-directory", "run"], {
      cwd: ROOT, stdio: "ignore", detached: true, env: { ...process.env, PORT: String(port), STATE_DIR: state, REGISTER: "0" },
    });
    try {
      run.push(await firstAnswer(from, async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 60_000));
    } finally {
      process.kill(-child.pid, "SIGTERM");
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", resolve)));
      rmSync(state, { recursive: true, force: true });
    }
    log(`warm start ${i + 1}/${runs}: make build ${build.at(-1).toFixed(0)} ms, make run → /healthz ${run.at(-1).toFixed(0)} ms`);
  }
  return { runs, runMs: median(run), buildMs: median(build), runAll: run, buildAll: build };
}

export async function benchColdStart({ smoke, log }) {
  const starts = smoke ? 2 : 5;
  const healthz = [];
  const preview = [];
  for (let i = 0; i < starts; i++) {
    const w = await startWorkerd("sandbox/workerd.capnp", ["http"]);
    try {
      const base = w.url();
      healthz.push(await firstAnswer(w.spawnedAt, async () => {
        const res = await fetch(`${base}/healthz`);
        return res.ok && res;
      }));
      // Preview right after: the edge reads the conversation, customer, agent and tags from the
      // Kustomer sandbox (its Durable Object starts and seeds itself on this first call).
      const headers = {
        "content-type": "application/json",
        "x-stella-api-key": "sandbox-stella-key",
        "x-kustomer-api-key": "sandbox-kustomer-key",
        "x-kustomer-api-url": `${base}/sandbox/kustomer`,
        "x-kustomer-url": `${base}/sandbox/kustomer`,
        "x-stella-api-url": `${base}/sandbox/stella`,
        "x-seconds-until-send": "5",
      };
      let answer;
      preview.push(await firstAnswer(w.spawnedAt, async () => {
        const res = await fetch(`${base}/v1/preview`, { method: "POST", headers, body: JSON.stringify({ conversationId: "conv-email" }) });
        answer = { status: res.status, body: await res.json() };
        return res;
      }));
      if (answer.status !== 200 || !answer.body?.request) throw new Error(`preview answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      log(`cold start ${i + 1}/${starts}: /healthz after ${healthz.at(-1).toFixed(0)} ms, /v1/preview after ${preview.at(-1).toFixed(0)} ms`);
    } finally {
      await w.stop();
    }
  }
  // The baseline: the same workerd binary with only the no-op Worker, to its first answer.
  const noop = [];
  for (let i = 0; i < starts; i++) {
    const w = await startWorkerd("scripts/bench/noop.capnp", ["http"], { site: false, state: false });
    try {
      noop.push(await firstAnswer(w.spawnedAt, async () => (await fetch(w.url())).ok));
    } finally {
      await w.stop();
    }
  }
  log(`cold start: no-op workerd answers after ${median(noop).toFixed(0)} ms (median)`);
  return {
    starts, healthzMs: median(healthz), previewMs: median(preview), noopMs: median(noop),
    healthzAll: healthz, previewAll: preview, noopAll: noop,
  };
}
