// `make build` knows its outputs (issue 20's warm start): after a build, nothing runs again; a
// change under www/ copies only the site or the worker; a change under src/ rebuilds only the
// packages that compile it. Asked of make itself with `--dry-run` and `--what-if` (a file taken
// as changed, nothing touched), so the test changes no file and builds nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The recipe lines `make build` would run if `changed` had changed (none: as things are). */
function wouldRun(...changed) {
  const args = ["--no-print-directory", "--dry-run", ...changed.flatMap((f) => ["--what-if", f]), "build"];
  const out = execFileSync("make", args, { cwd: ROOT, encoding: "utf8" });
  // The setup script always runs (it checks the machine in under a second); the rest is work.
  return out.split("\n").filter((l) => l.trim() && l.trim() !== "scripts/setup.sh");
}

const pages = (lines) => lines.some((l) => l.includes("wasm-pack build") && l.includes("--out-dir pkg ") );
const edge = (lines) => lines.some((l) => l.includes("wasm-pack build") && l.includes("--out-dir pkg-edge"));
const site = (lines) => lines.some((l) => l.includes("build/site/app/"));
const worker = (lines) => lines.some((l) => l.includes("build/worker/"));
const schema = (lines) => lines.some((l) => l.includes("build-stella-schema"));

test("a second build with nothing changed runs nothing", () => {
  assert.deepEqual(wouldRun(), []);
});

test("a page's change copies the site and nothing else", () => {
  const lines = wouldRun("www/settings.js");
  assert.ok(site(lines), lines.join("\n"));
  assert.ok(!pages(lines) && !edge(lines) && !worker(lines) && !schema(lines), lines.join("\n"));
});

test("the worker entry's change copies the worker and nothing else", () => {
  const lines = wouldRun("www/edge.js");
  assert.ok(worker(lines), lines.join("\n"));
  assert.ok(!pages(lines) && !edge(lines) && !site(lines) && !schema(lines), lines.join("\n"));
});

test("an edge-only source rebuilds the worker's package, not the pages'", () => {
  const lines = wouldRun("src/wasm/edge/fetch.rs");
  assert.ok(edge(lines) && worker(lines), lines.join("\n"));
  assert.ok(!pages(lines) && !site(lines) && !schema(lines), lines.join("\n"));
});

test("a core source rebuilds both packages, and the schema stays", () => {
  const lines = wouldRun("src/settings/mod.rs");
  assert.ok(pages(lines) && edge(lines) && site(lines) && worker(lines), lines.join("\n"));
  assert.ok(!schema(lines), lines.join("\n"));
});

test("the vendor's contract rebuilds only the sandbox's schema", () => {
  assert.deepEqual(wouldRun("contracts/stella-requests-openapi.yml"), ["node scripts/build-stella-schema.mjs"]);
});
