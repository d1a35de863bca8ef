// The real workerd running sandbox/test-config.capnp on 127.0.0.1 (both sandboxes, the edge
// replaced by tests/sandbox/edge-stub.js), its state in a directory the caller owns: shared by
// the sandbox tests.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

const root = new URL("../../", import.meta.url);

export async function freePort() {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** workerd on `port` with state in `dir`. The Kustomer sandbox's budget binding is
 * KUSTOMER_BUDGET from `env` only: unset (Kustomer's 1000/60) unless a test passes its own. */
export function spawnWorkerd(port, dir, env = {}) {
  const { KUSTOMER_BUDGET, ...inherited } = process.env;
  return spawn(
    "node_modules/.bin/workerd",
    ["serve", "sandbox/test-config.capnp", "--socket-addr", `http=127.0.0.1:${port}`, "--directory-path", `sandbox-state=${dir}`],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...inherited, ...env } },
  );
}

/** Starts workerd and waits until it answers: `{child, base, log}`. */
export async function startWorkerd({ dir, env } = {}) {
  const port = await freePort();
  const child = spawnWorkerd(port, dir, env);
  const started = { child, base: `http://127.0.0.1:${port}`, log: "" };
  process.once("exit", () => child.kill("SIGKILL")); // never leave a workerd behind, even on a crash
  child.stdout.on("data", (d) => (started.log += d));
  child.stderr.on("data", (d) => (started.log += d));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${started.base}/sandbox/stella/requests`)).ok) return started;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`workerd did not start:\n${started.log}`);
}

/** SIGKILL on purpose: state must survive a crash, not only a clean shutdown. */
export async function stopWorkerd(workerd) {
  if (!workerd || workerd.child.exitCode !== null || workerd.child.signalCode) return;
  const exited = once(workerd.child, "exit");
  workerd.child.kill("SIGKILL");
  await exited;
}
