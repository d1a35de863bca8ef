// Registers the app definition with Kustomer: `POST {api}/v1/apps/available` (kustomer-apps.md §1).
//
//   node scripts/register.mjs [--file PATH] [--dry-run]       (or MANIFEST=PATH; `make register`)
//
// Target: KUSTOMER_API_URL (https, or http on loopback) with KUSTOMER_API_KEY from the
// environment (a key with the org.admin.apps role); without KUSTOMER_API_URL, the local Kustomer
// sandbox of `make run` (http://127.0.0.1:${PORT:-8787}/sandbox/kustomer) and its key.
// The definition is first checked by the Rust rules (`app-manifest check`); nothing is sent when
// it breaks one. For a real Kustomer (KUSTOMER_API_URL), nothing is sent either when it carries
// the placeholder edge address (DEFAULT_EDGE_URL in src/manifest/mod.rs, read from `app-manifest
// print`): `make deploy`, then `make manifest`, write the one for the deployed edge. The key is
// never printed: every line this script writes is scrubbed of it.
//
// Exit codes: 0 registered (or the dry run passed), 1 not registered, 2 bad usage or setup (the
// placeholder edge included).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SANDBOX_KEY = "sandbox-kustomer-key";
const TIMEOUT_MS = 30_000;

let key = "";
const scrub = (text) => (key ? String(text).replaceAll(key, "[redacted]") : String(text));
const say = (text) => console.log(scrub(text));
const fail = (code, text) => {
  console.error(scrub(text));
  process.exit(code);
};

function parseArgs(argv) {
  const opts = { file: process.env.MANIFEST || "app-manifest/stella_connect.json", dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--dry-run") opts.dryRun = true;
    else if (argv[i] === "--file" && argv[i + 1]) opts.file = argv[++i];
    else fail(2, "usage: node scripts/register.mjs [--file PATH] [--dry-run]   (env: MANIFEST, KUSTOMER_API_URL, KUSTOMER_API_KEY, PORT)");
  }
  return opts;
}

// {base, key, local}, or exits 2 with what to fix.
function target(env) {
  if (!env.KUSTOMER_API_URL) {
    if (env.KUSTOMER_API_KEY) say("note: KUSTOMER_API_KEY is ignored without KUSTOMER_API_URL; the target is the local sandbox.");
    return { base: `http://127.0.0.1:${env.PORT || 8787}/sandbox/kustomer`, key: SANDBOX_KEY, local: true };
  }
  if (!env.KUSTOMER_API_KEY) {
    fail(2, "KUSTOMER_API_URL is set but KUSTOMER_API_KEY is not: export a Kustomer API key with the org.admin.apps role.");
  }
  if (!/^[\x21-\x7e]+$/.test(env.KUSTOMER_API_KEY)) fail(2, "KUSTOMER_API_KEY must be one line of printable characters without spaces.");
  let url;
  try {
    url = new URL(env.KUSTOMER_API_URL);
  } catch {
    fail(2, `KUSTOMER_API_URL is not an absolute URL, such as https://<org>.api.kustomerapp.com.`);
  }
  const loopback = ["localhost", "[::1]"].includes(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  if (!(url.protocol === "https:" || (url.protocol === "http:" && loopback))) {
    fail(2, `KUSTOMER_API_URL must start with https:// (http:// only on 127.0.0.1 or localhost): ${url.origin}`);
  }
  if (url.username || url.password || url.search || url.hash) fail(2, "KUSTOMER_API_URL must not carry credentials, a query or a fragment.");
  return { base: url.href.replace(/\/+$/, ""), key: env.KUSTOMER_API_KEY, local: false };
}

// The platform's rules are the Rust crate's (src/manifest/); this runs them, never a copy.
const checkDefinition = (file) => appManifest(["check", file]);

// `app-manifest ARGS…`: {code, stdout, stderr}.
function appManifest(args, env = process.env) {
  return new Promise((done) => {
    const child = spawn("cargo", ["run", "--quiet", "--locked", "--bin", "app-manifest", "--", ...args], { cwd: ROOT, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (e) => {
      done({ code: -1, stdout, stderr: `cannot run cargo (${e.code ?? e.message}): run \`make setup\`, or put ~/.cargo/bin on PATH` });
    });
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

// The placeholder edge's origin: the definition app-manifest prints without an edge URL is
// made for it (its icon is `{edge}/app/icon.svg`).
async function placeholderEdge() {
  const { EDGE_URL: _, ...env } = process.env;
  const printed = await appManifest(["print"], env);
  if (printed.code !== 0) fail(2, `Not sent: app-manifest print exited with ${printed.code}: ${printed.stderr.trim()}`);
  return new URL(JSON.parse(printed.stdout).iconUrl).origin;
}

// The paths (`actions[0].inputTemplate.uri`) of the strings in `value` that hold `needle`.
function pathsHolding(value, needle, path = "") {
  if (typeof value === "string") return value.includes(needle) ? [path] : [];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) =>
    pathsHolding(v, needle, Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k),
  );
}

// The first error of a JSON:API answer ({errors: [{status, code, title, detail, meta}]}), or the
// answer's text.
function firstError(body, text) {
  const e = Array.isArray(body?.errors) ? body.errors[0] : undefined;
  const detail = e?.detail ?? e?.title ?? body?.message ?? text.trim().slice(0, 500);
  return { code: e?.code, meta: e?.meta ?? {}, detail: String(detail || "(no details)") };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const to = target(process.env);
  key = to.key;
  const file = resolve(opts.file);

  const checked = await checkDefinition(file);
  if (checked.code !== 0) {
    const lines = checked.stdout.trim();
    if (checked.code === 1 && lines) fail(1, `Not sent: the definition breaks the platform's rules:\n${lines}`);
    fail(checked.code === 1 ? 1 : 2, `Not sent: ${checked.stderr.trim() || `app-manifest check exited with ${checked.code}`}`);
  }
  const body = readFileSync(file);
  const def = JSON.parse(body);
  if (!to.local) {
    const placeholder = await placeholderEdge();
    const paths = pathsHolding(def, `//${new URL(placeholder).host}`);
    if (paths.length > 0) {
      const where = paths.length > 2 ? `${paths.slice(0, 2).join(", ")} and ${paths.length - 2} more` : paths.join(" and ");
      fail(
        2,
        [
          `Not sent: ${opts.file} points Kustomer at the placeholder edge ${placeholder} (${where}), not at a deployed edge:`,
          "an org that installed it would get no settings page, no agent card and no surveys.",
          "Deploy the edge and write the definition for its address, then register again:",
          "  make deploy",
          "  make manifest      (takes the address from the deploy; or make manifest EDGE_URL=https://<your edge>)",
        ].join("\n"),
      );
    }
  }
  const endpoint = `${to.base}/v1/apps/available`;
  const where = to.local ? "the local Kustomer sandbox" : new URL(to.base).host;
  say(`${checked.stdout.trim()} (${opts.file})`);
  say(`target: ${to.local ? "the local Kustomer sandbox" : to.base}`);
  if (opts.dryRun) {
    const from = to.local ? "the sandbox" : "KUSTOMER_API_KEY";
    say(`Dry run: would send POST ${endpoint} with ${def.app} ${def.version} (${body.length} bytes) and the key from ${from}.`);
    return 0;
  }

  let res;
  try {
    res = await fetch(endpoint, {
      method: "POST",
      headers: { authorization: `Bearer ${to.key}`, "content-type": "application/json", accept: "application/json" },
      body,
      redirect: "manual", // never carry the key to wherever a redirect points
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    const cause = e?.cause?.code ?? e?.name ?? "error";
    if (to.local && cause === "ECONNREFUSED") fail(1, `Not registered: nothing answers at ${to.base}: is \`make run\` running?`);
    fail(1, `Not registered: could not reach ${where} (${cause}: ${e?.cause?.message ?? e?.message}).`);
  }
  const text = await res.text();
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {}

  if (res.ok) {
    if (answer?.data === undefined) {
      fail(1, `${where} answered ${res.status} but not with Kustomer's JSON: is KUSTOMER_API_URL the API (https://<org>.api.kustomerapp.com)?`);
    }
    const a = answer.data.attributes ?? {};
    say(`Registered ${a.app ?? def.app} ${a.version ?? def.version} with ${new URL(to.base).host}.`);
    return 0;
  }
  const { code, meta, detail } = firstError(answer, text);
  const refused = `Not registered (${res.status})`;
  if (res.status >= 300 && res.status < 400) {
    fail(1, `${refused}: ${where} redirects to ${res.headers.get("location") ?? "elsewhere"}; set KUSTOMER_API_URL to the final address.`);
  }
  if (res.status === 401) fail(1, `${refused}: ${where} did not accept the key; check KUSTOMER_API_KEY (${detail}).`);
  if (res.status === 403) fail(1, `${refused}: the key lacks the org.admin.apps role (${detail}).`);
  if (code === "version_not_higher" || res.status === 409 || (res.status < 500 && /version.*(higher|greater)/i.test(detail))) {
    const registered = meta.registered ? `the registered ${meta.registered}` : "the registered one";
    const version = meta.version ?? def.version;
    fail(1, `${refused}: version ${version} is not higher than ${registered}: raise \`version\` in Cargo.toml and run make manifest.`);
  }
  if (code === "unknown_key") {
    fail(1, `${refused}: Kustomer refused the definition: unknown top-level key ${meta.key ? `\`${meta.key}\`.` : `(${detail})`}`);
  }
  fail(1, `${refused}: ${where} answered ${res.status} ${res.statusText}${code ? ` ${code}` : ""}: ${detail}`);
}

process.exitCode = await main();
