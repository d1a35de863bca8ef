// 1. The core's cost per closed conversation: examples/bench_core.rs natively and
// scripts/bench/core-wasm.mjs through pkg/ in node, in alternating blocks of rounds so that
// both see the same machine; the medians of all rounds and their ratio.
import { execFileSync } from "node:child_process";
import { ROOT, median } from "./lib.mjs";

function runJson(cmd, args) {
  const out = execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return JSON.parse(out.trim().split("\n").at(-1));
}

export async function benchCore({ smoke, log }) {
  const profile = smoke ? [] : ["--release"];
  const blocks = smoke ? 1 : 3;
  const roundsPerBlock = smoke ? 3 : 5;
  const nativeIterations = smoke ? 200 : 10_000;
  const wasmIterations = smoke ? 200 : 5_000;
  log(`core: building examples/bench_core (${smoke ? "dev" : "release"} profile)`);
  execFileSync("cargo", ["build", "--locked", ...profile, "--example", "bench_core"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });

  const native = { core: [], json: [] };
  const wasm = [];
  for (let b = 0; b < blocks; b++) {
    const n = runJson("cargo", ["run", "--quiet", "--locked", ...profile, "--example", "bench_core", "--", String(roundsPerBlock), String(nativeIterations)]);
    native.core.push(...n.usPerEvent.core.rounds);
    native.json.push(...n.usPerEvent.json.rounds);
    const w = runJson(process.execPath, ["scripts/bench/core-wasm.mjs", String(roundsPerBlock), String(wasmIterations)]);
    wasm.push(...w.usPerEvent.rounds);
    log(`core: block ${b + 1}/${blocks}: native ${median(n.usPerEvent.json.rounds).toFixed(1)} µs (JSON text), Wasm ${median(w.usPerEvent.rounds).toFixed(1)} µs`);
  }
  const result = {
    profile: smoke ? "dev" : "release",
    rounds: blocks * roundsPerBlock,
    nativeIterations,
    wasmIterations,
    nativeCoreUs: median(native.core),
    nativeJsonUs: median(native.json),
    wasmUs: median(wasm),
    spread: {
      nativeCore: [Math.min(...native.core), Math.max(...native.core)],
      nativeJson: [Math.min(...native.json), Math.max(...native.json)],
      wasm: [Math.min(...wasm), Math.max(...wasm)],
    },
  };
  result.wasmOverNativeJson = result.wasmUs / result.nativeJsonUs;
  result.wasmOverNativeCore = result.wasmUs / result.nativeCoreUs;
  return result;
}
