// Small helpers shared by the benchmark's parts: statistics, processes, workerd.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const WORKERD = join(ROOT, "node_modules/.bin/workerd");
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A JSON call to the stack (`stack.base + path`); anything but a 2xx throws with the answer. */
export async function call(stack, method, path, body) {
  const res = await fetch(stack.base + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

// Process groups this run started (workerd, serve.sh): killed if the run is interrupted, since
// they are detached and would outlive it.
const groups = new Map(); // pid → state folder to remove
export function track(pid, dir) {
  groups.set(pid, dir);
  return () => groups.delete(pid);
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    for (const [pid, dir] of groups) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    process.exit(130);
  });
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The p-quantile (0..1) of an ascending array, nearest rank. */
export function quantile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** Polls `check` every `every` ms until it returns a truthy value; throws after `ms`. */
export async function waitFor(check, ms, what, every = 100) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** {rssMb, hwmMb} of a process from /proc/<pid>/status (VmRSS now, VmHWM its peak so far). */
export function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
  } catch {
    return { rssMb: NaN, hwmMb: NaN };
  }
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
  } catch {
    return NaN;
  }
}

/** The pids of `parent`'s children named `name` (from /proc/<pid>/stat). */
export { childrenNamed } from "../../tests/http/harness.mjs";

/** Samples a process's VmRSS every `every` ms; `stop()` returns the peak sample and VmHWM. */
export function sampleMemory(pid, every = 250) {
  let peak = 0;
  let samples = 0;
  const tick = () => {
    const { rssMb } = memory(pid);
    if (Number.isFinite(rssMb)) {
      peak = Math.max(peak, rssMb);
      samples++;
    }
  };
  tick();
  const timer = setInterval(tick, every);
  return {
    stop() {
      tick();
      const { hwmMb } = memory(pid);
      clearInterval(timer);
      return { peakSampledMb: peak, hwmMb, samples };
    },
  };
}

/**
 * workerd on loopback with the given config, sockets (name → port) and directories, in its own
 * process group. `stop()` kills it and removes its state folder.
 */
export async function startWorkerd(config, sockets, { site = true, state: withState = true, stateRoot = tmpdir(), env = {}, ready = "http" } = {}) {
  const state = mkdtempSync(join(stateRoot, "stella-bench-"));
  const args = ["serve", config];
  const ports = {};
  for (const name of sockets) {
    ports[name] = await freePort();
    args.push("--socket-addr", `${name}=127.0.0.1:${ports[name]}`);
  }
  if (withState) args.push("--directory-path", `state=${state}`);
  if (site) args.push("--directory-path", `site=${join(ROOT, "build/site")}`);
  const spawnedAt = performance.now();
  const proc = spawn(WORKERD, args, {
    cwd: ROOT,
    // As tests/http/harness.mjs: fast retries and leases, key checks and the Kustomer sandbox's
    // budget never the bottleneck.
    env: { ...process.env, RETRY_BASE_MS: "300", LEASE_MS: "2000", KEY_CHECKS_PER_MINUTE: "1000", KUSTOMER_BUDGET: "1000000/60",
      LOG_READS_PER_KEY_PER_MINUTE: "100000", LOG_READS_PER_ORG_PER_MINUTE: "100000", ...env },
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  const log = [];
  proc.stderr.on("data", (d) => log.length < 200 && log.push(String(d)));
  const exited = new Promise((r) => proc.once("exit", r));
  const untrack = track(proc.pid, state);
  const w = {
    proc, pid: proc.pid, ports, state, log, spawnedAt,
    url: (name = ready) => `http://127.0.0.1:${ports[name]}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        try {
          process.kill(-proc.pid, "SIGKILL");
        } catch {
          // already gone
        }
        await exited;
      }
      untrack();
      rmSync(state, { recursive: true, force: true });
    },
  };
  return w;
}

/** The file system type of a mount point (`/proc/mounts`), or undefined. */
export function fsType(path) {
  const line = readFileSync("/proc/mounts", "utf8").split("\n").find((l) => l.split(" ")[1] === path);
  return line?.split(" ")[2];
}

/** The file system a path lives on: type and mount point, from /proc/mounts (longest prefix). */
export function fsOf(path) {
  let best;
  for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
    const [device, mount, type] = line.split(" ");
    if (!mount || !(path === mount || path.startsWith(mount.endsWith("/") ? mount : mount + "/"))) continue;
    if (!best || mount.length >= best.mount.length) best = { device, mount, type };
  }
  return best;
}

/** Machine, tool versions and load, for the report. */
export function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const osRelease = readFileSync("/etc/os-release", "utf8");
  const run = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return "unknown";
    }
  };
  return {
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? "unknown",
    cores: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    ramGb: Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? NaN) / 1024 / 1024,
    os: /PRETTY_NAME="?([^"\n]+)"?/.exec(osRelease)?.[1] ?? "unknown",
    kernel: run("uname", ["-r"]),
    node: process.version,
    rustc: run("rustc", ["--version"]),
    workerd: run(WORKERD, ["--version"]),
    autocannon: JSON.parse(readFileSync(join(ROOT, "node_modules/autocannon/package.json"), "utf8")).version,
    git: run("git", ["rev-parse", "--short", "HEAD"]) + (run("git", ["status", "--porcelain"]) ? " (with uncommitted changes)" : ""),
  };
}

export const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");
