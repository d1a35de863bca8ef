// The app definition's commands against Kustomer's published SDK types: `Command` from
// @kustomer/apps-server-sdk (fetched by `make setup` into build/vendor/), checked by the
// TypeScript compiler in strict mode. Only `appSettings`, which Kustomer's commands
// documentation adds and the SDK type lacks, is allowed beside the SDK's fields.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SDK = join(ROOT, "build/vendor/apps-server-sdk/lib/components/command");
const TSC = join(ROOT, "node_modules/.bin/tsc");
const definition = JSON.parse(readFileSync(join(ROOT, "app-manifest/stella_connect.json"), "utf8"));

/** Runs tsc on `commands` typed as the SDK's `Command[]`; resolves to {code, output}. */
function typecheck(commands) {
  const dir = mkdtempSync(join(ROOT, "build/commands-check-"));
  const file = join(dir, "commands.ts");
  writeFileSync(
    file,
    `import type { Command } from ${JSON.stringify(SDK)};\n` +
      `type AppSettings = { [alias: string]: { key: string } };\n` +
      `export const commands: (Command & { appSettings?: AppSettings })[] = ${JSON.stringify(commands, null, 2)};\n`,
  );
  return new Promise((resolve) => {
    execFile(TSC, ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler", file], (error, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      resolve({ code: error ? (error.code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

test("the SDK's types are there (make setup fetches them)", () => {
  assert.ok(existsSync(`${SDK}.d.ts`), "run `make setup`");
});

test("every command of the app definition is a Command of Kustomer's SDK", async () => {
  assert.equal(definition.commands.length, 8); // check, preview, the log, resend one, resend many, the agent profile, forget a customer, the audit list
  const { code, output } = await typecheck(definition.commands);
  assert.equal(code, 0, output);
});

test("the check bites: a wrong method, a missing url or an unknown field fails", async () => {
  const [first] = definition.commands;
  for (const broken of [
    { ...first, httpMethod: "POST" },
    (({ url, ...rest }) => rest)(first),
    { ...first, permittedArgs: "state" },
    { ...first, timeoutSeconds: 5 },
  ]) {
    const { code, output } = await typecheck([broken]);
    assert.notEqual(code, 0, `accepted: ${JSON.stringify(broken).slice(0, 200)}`);
    assert.match(output, /error TS\d+/);
  }
});
