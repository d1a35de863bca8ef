// Secrets never come back. One fresh stack is driven through every edge endpoint (failure paths
// included) and the pages in Chromium with recognisable keys and app secrets; then every answer,
// workerd log line, record the sandboxes and the edge kept (the edge's SQLite files too), page
// text, HTML, input value, console message and network body the pages received is searched for
// them. Where the secrets must travel (to Stella, to the edge from the page and the workflow)
// that is asserted too, so the search cannot pass vacuously.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { APP_SECRET as SANDBOX_APP_SECRET, KUSTOMER_KEY, STELLA_KEY, STELLA_SECRET as SANDBOX_STELLA_SECRET, Stack, waitFor } from "../http/harness.mjs";
import { fillSettings, launch, open } from "./browser.mjs";

const STELLA_SECRET = "SECRET-stella-7f3a9c"; // the only key the Stella sandbox accepts in this run
const API_SECRET = "SECRET-stella-api-4b9e1d"; // its Agent Connect API secret: signs the JWT of Data Return and the roster
const KUSTOMER_SECRET = "SECRET-kustomer-5d1e0b"; // unknown to the Kustomer sandbox: always rejected
const WRONG_STELLA = "SECRET-stella-wrong-2c4d"; // a Stella key the sandbox refuses
const APP_SECRET = "SECRET-app-3e8b1f0a9c7d"; // the org's app secret in this run (saved with its fingerprint: the app's link)
const WRONG_APP_SECRET = "SECRET-app-wrong-1f2e3d4c"; // never the org's
const BURST_STELLA = "SECRET-stella-burst-8e7f"; // the keys of a burst of key checks past the limit
const BURST_KUSTOMER = "SECRET-kustomer-burst-0a1b";
const SECRETS = [STELLA_SECRET, API_SECRET, KUSTOMER_SECRET, WRONG_STELLA, APP_SECRET, WRONG_APP_SECRET, BURST_STELLA, BURST_KUSTOMER];
// The org's Kustomer key, its former Stella key and the sandbox's seeded app secret are secrets
// too, except on the local home page, which lists the keys as the sandboxes' documented values.
const SANDBOX_KEYS = [KUSTOMER_KEY, STELLA_KEY, SANDBOX_APP_SECRET, SANDBOX_STELLA_SECRET];
// Low enough for a burst to reach it, high enough that the rest of the run never does.
const KEY_CHECKS_PER_MINUTE = 30;

let stack;
let browser;
const scanned = []; // {kind, what, text, documented}
const seen = (kind, what, text, { documented = false } = {}) => scanned.push({ kind, what, text: String(text), documented });

before(async () => {
  stack = await new Stack({ env: { KEY_CHECKS_PER_MINUTE: String(KEY_CHECKS_PER_MINUTE) } }).start();
  browser = await launch();
  // Not through `call`: this control echoes the keys it was given, by design.
  const keys = await fetch(`${stack.base}/sandbox/stella/keys`, { method: "PUT", body: JSON.stringify({ keys: [STELLA_SECRET], secrets: { [STELLA_SECRET]: API_SECRET } }) });
  assert.equal(keys.status, 200);
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Every file under `dir` (none when it does not exist). */
function files(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** One HTTP call whose status, headers and body go into the scan. */
async function call(method, path, { headers = {}, body } = {}) {
  const res = await fetch(stack.base + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  seen("answer", `${method} ${path} → ${res.status}`, `${res.status}\n${[...res.headers].join("\n")}\n${text}`);
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: json, text };
}

/** The app secret's fingerprint, as the settings page saves it beside the secret. */
const fingerprint = (secret) => `v1:${createHmac("sha256", secret).update("stella-connect app secret fingerprint v1").digest("hex")}`;
const asOrg = (appSecret = APP_SECRET) => ({ "x-kustomer-api-key": KUSTOMER_KEY, "x-kustomer-api-url": `${stack.base}/sandbox/kustomer`, "x-app-secret": appSecret });
const delivery = async (id) => (await call("GET", "/v1/deliveries", { headers: asOrg() })).body.deliveries.find((d) => d.conversationId === id);

test("every edge endpoint and the sandbox's settings API, failure paths included", async () => {
  // The org's stored settings get the recognisable Stella key; reading them back masks it.
  const auth = { authorization: `Bearer ${KUSTOMER_KEY}` };
  // So does the app secret, which the sandbox's close control then sends to the edge.
  const put = await call("PUT", "/sandbox/kustomer/v1/apps/settings", { headers: auth, body: { settings: { stellaApiKey: STELLA_SECRET, stellaApiSecret: API_SECRET, secondsUntilSend: "1", appSecret: APP_SECRET, appSecretFingerprint: fingerprint(APP_SECRET) } } });
  assert.equal(put.status, 200, put.text);
  const got = await call("GET", "/sandbox/kustomer/v1/apps/settings", { headers: auth });
  assert.equal(got.body.data.attributes.settings.stellaApiKey, "********");
  assert.equal(got.body.data.attributes.settings.kustomerApiKey, "********");
  assert.equal(got.body.data.attributes.settings.appSecret, "********");
  assert.equal(got.body.data.attributes.settings.stellaApiSecret, "********");

  // Two surveys: one from the sandbox's close control (the stored keys), one posted here with
  // the keys as headers. Stella fails the first attempt, so a delivery shows its error message.
  const headers = stack.settingsHeaders({ "x-stella-api-key": STELLA_SECRET, "x-stella-api-secret": API_SECRET, "x-app-secret": APP_SECRET });
  await call("PUT", "/sandbox/kustomer/v1/conversations/conv-chat", { headers: auth, body: { status: "done" } });
  const event = await stack.closeEvent("conv-chat");
  await call("POST", "/sandbox/stella/faults", { body: { status: 500, count: 1, retryAfter: 2 } });
  const closed = await call("POST", "/sandbox/kustomer/conversations/conv-email/close", { body: {} });
  assert.equal(closed.body.edge.status, 202, closed.text);
  const posted = await call("POST", "/v1/kustomer/conversation-closed", { headers, body: event });
  assert.equal(posted.status, 202, posted.text);
  const retrying = await waitFor(async () => {
    const { deliveries } = (await call("GET", "/v1/deliveries", { headers: asOrg() })).body;
    return deliveries.find((d) => d.state === "retrying");
  }, 15_000, "a retry", 100);
  assert.match(retrying.message, /500/);
  for (const id of ["conv-email", "conv-chat"]) {
    await waitFor(async () => (await delivery(id))?.state === "sent", 30_000, `${id} to be sent`, 250);
  }
  // Their outcomes came back from Data Return, whose JWT only the recognisable API secret signs:
  // the edge used it (and the scan below finds it, and no JWT, nowhere else).
  for (const id of ["conv-email", "conv-chat"]) {
    await waitFor(async () => (await delivery(id))?.outcome?.deliveryStatus === "sent", 30_000, `${id}'s outcome`, 250);
  }
  // The Stella sandbox accepts only the recognisable key: the edge used it, from both paths.
  const received = (await stack.stellaRequests()).map((r) => r.body.ext_interaction_id);
  assert.deepEqual(received.sort(), ["conv-chat", "conv-email"]);
  const stella = (await call("GET", "/sandbox/stella/requests")).body;
  assert.ok(stella.attempts >= 3, `a Stella attempt failed and was retried (attempts: ${stella.attempts})`);

  // A skipped survey, to resend.
  assert.equal((await call("POST", "/sandbox/kustomer/conversations/conv-unassigned/close", { body: {} })).body.edge.status, 202);
  await waitFor(async () => (await delivery("conv-unassigned"))?.state === "skipped", 30_000, "conv-unassigned to be skipped", 250);

  // Kustomer fails once: the edge passes its error on.
  await call("POST", "/sandbox/kustomer/faults", { body: { status: 500, count: 1 } });
  const failed = await call("POST", "/v1/preview", { headers, body: { conversationId: "conv-voice" } });
  assert.deepEqual([failed.status, failed.body.error.code], [502, "kustomer_error"]);
  assert.match(failed.body.error.message, /500/);

  const unknown = { ...headers, "x-kustomer-api-key": KUSTOMER_SECRET };
  const { "x-app-secret": _, ...noAppSecret } = headers;
  const wrongAppSecret = { ...headers, "x-app-secret": WRONG_APP_SECRET };
  const closedPath = "/v1/kustomer/conversation-closed";
  const cases = [
    ["POST", closedPath, { headers, body: event }, 200], // the same event again: a duplicate
    ["POST", closedPath, { headers: { ...headers, "x-stella-api-key": `${STELLA_SECRET} x` }, body: event }, 400],
    ["POST", closedPath, { headers: { ...headers, "x-kustomer-url": "http://acme.kustomerapp.com" }, body: event }, 400],
    ["POST", closedPath, { headers, body: "{not json" }, 400],
    ["POST", closedPath, { headers, body: "x".repeat(2 << 20) }, 413],
    ["POST", closedPath, { headers: { ...headers, "x-kustomer-api-key": "other-org-key" }, body: event }, 403],
    ["POST", closedPath, { headers: unknown, body: event }, 401],
    ["POST", "/v1/preview", { headers, body: { conversationId: "conv-voice" } }, 200],
    ["POST", "/v1/preview", { headers, body: { conversationId: "conv-unassigned" } }, 200],
    ["POST", "/v1/preview", { headers, body: { conversationId: "conv-missing" } }, 404],
    ["POST", "/v1/preview", { headers: unknown, body: { conversationId: "conv-voice" } }, 401],
    ["POST", "/v1/settings/check", { headers }, 200],
    ["POST", "/v1/settings/check", { headers: { ...headers, "x-stella-api-key": WRONG_STELLA } }, 200],
    ["POST", "/v1/settings/check", { headers: { ...headers, "x-stella-api-key": STELLA_KEY } }, 200],
    ["POST", "/v1/settings/check", { headers: unknown }, 200],
    ["GET", "/v1/deliveries", { headers }, 200],
    ["GET", "/v1/deliveries", { headers: unknown }, 401],
    ["POST", "/v1/deliveries/conv-unassigned/resend", { headers }, 202],
    ["POST", "/v1/deliveries/conv-email/resend", { headers }, 409],
    ["POST", "/v1/deliveries/conv-email/resend", { headers: unknown }, 401],
    ["GET", "/healthz", { headers: unknown }, 200],
    ["GET", "/v1/unknown", { headers: unknown }, 404],
    ["POST", `/v2/${STELLA_SECRET}`, { headers }, 404],
    ["GET", closedPath, { headers }, 405],
    ["PUT", "/v1/preview", { headers: unknown, body: {} }, 405],
    ["GET", "/v1/settings/check", { headers }, 405],
    ["DELETE", "/v1/deliveries", { headers: unknown }, 405],
    // The app secret: missing or wrong on every call that needs it.
    ["POST", closedPath, { headers: noAppSecret, body: event }, 401],
    ["POST", closedPath, { headers: wrongAppSecret, body: event }, 202], // held: never the org's, never lost
    ["GET", "/v1/deliveries", { headers: asOrg(WRONG_APP_SECRET) }, 401],
    ["POST", "/v1/deliveries/conv-unassigned/resend", { headers: wrongAppSecret }, 401],
    ["POST", "/v1/deliveries/conv-unassigned/resend", { headers: noAppSecret }, 401],
  ];
  const answers = [];
  for (const [method, path, init, status] of cases) {
    const answer = await call(method, path, init);
    assert.equal(answer.status, status, `${method} ${path}: ${answer.text.slice(0, 300)}`);
    answers.push(answer.body);
  }
  // The failures are the ones meant: the keys reached the edge and were judged there.
  assert.equal(answers[1].error.fields[0].code, "invalid_key");
  assert.equal(answers[5].error.code, "org_mismatch");
  assert.equal(answers[6].error.code, "kustomer_key_rejected");
  assert.deepEqual([answers[11].ok, answers[12].stella.ok, answers[13].stella.ok, answers[14].kustomer.ok], [true, false, false, false]);
  // Changed with the rate-limited key checks: Stella is asked only once Kustomer accepts the
  // org's key, so with an unknown Kustomer key the Stella key is not checked at all.
  assert.equal(answers[14].stella.code, "not_checked");
  assert.deepEqual(answers.slice(-5).map((a) => a.error?.code ?? a.status), ["missing_app_secret", "held", "app_secret_rejected", "app_secret_rejected", "missing_app_secret"]);

  // The app's commands, as Kustomer runs them for a page with the saved settings: every answer
  // goes into the scan (the edge's answers to calls that carried every saved key).
  const session = { authorization: "Bearer sandbox-user-session" };
  const run = (name, body) => call("POST", `/sandbox/kustomer/v1/commands/stella_connect.app.${name}/run`, { headers: session, body });
  const runs = [
    ["check-connection", {}],
    ["preview", { body: { conversationId: "conv-voice" } }],
    ["preview", { body: { conversationId: "conv-missing" } }],
    ["list-deliveries", { args: { state: "sent" } }],
    ["list-deliveries", { args: { from: "not a time" } }],
    ["resend", { body: { conversationIds: ["conv-email"] } }],
    ["resend-many", { body: { conversationIds: ["conv-unassigned", "conv-missing"] } }],
  ];
  const results = [];
  for (const [name, body] of runs) {
    const r = await run(name, body);
    assert.equal(r.status, 200, `${name}: ${r.text.slice(0, 300)}`);
    results.push(r.body.data.attributes);
  }
  assert.equal(results[0].responseBody.stella.ok, true, "the saved Stella key reached the edge through the command");
  assert.equal(results[1].responseBody.request.headers["x-api-key"], "********");
  assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 404, 200, 400, 200, 200]);
  assert.ok(results[3].responseBody.deliveries.some((d) => d.conversationId === "conv-email"));
  const refused = await run("list-deliveries", { args: { stellaApiKey: STELLA_SECRET } });
  assert.equal(refused.body.errors[0].code, "arg_not_permitted");
});

test("a user's resend with headers of their own cannot change what the org's surveys are sent with", async () => {
  // Any user of the org may run the resend command, and (if Kustomer lets a run's headers
  // replace the command's) with settings of their own: the edge must resend with the org's.
  const id = await stack.newConversation();
  await call("POST", "/sandbox/stella/faults", { body: { status: 400, count: 1 } });
  assert.equal((await call("POST", `/sandbox/kustomer/conversations/${id}/close`, { body: {} })).body.edge.status, 202);
  await waitFor(async () => (await delivery(id))?.state === "failed", 30_000, `${id} to fail`, 250);
  const run = await call("POST", "/sandbox/kustomer/v1/commands/stella_connect.app.resend/run", {
    headers: { authorization: "Bearer sandbox-user-session" },
    body: { body: { conversationIds: [id] }, headers: { "x-stella-api-key": WRONG_STELLA, "x-brand": "attacker" } },
  });
  const [result] = run.body.data.attributes.responseBody.results;
  assert.equal(result.status, "scheduled", run.text);
  // The org's settings are still kept (its sent surveys' outcomes are being read back, with
  // the API secret), so the resend goes out at once, with them, not with the run's headers.
  assert.match(result.message, /^Scheduled to be sent at /);
  await waitFor(async () => (await delivery(id))?.state === "sent", 30_000, `${id} to be sent again`, 250);
  // Sent with the org's own key (the Stella sandbox accepts no other) and brand.
  const [sent] = await stack.stellaRequests(id);
  assert.notEqual(sent.body.brand, "attacker");
});

test("a burst of key checks past the limit: 429 with Retry-After, the keys never echoed", async () => {
  // A key Kustomer does not accept opens no bucket of its own (nobody mints buckets at will):
  // the burst is counted against the caller's address, as Cloudflare reports it.
  const burst = stack.settingsHeaders({
    "x-stella-api-key": BURST_STELLA, "x-kustomer-api-key": BURST_KUSTOMER, "x-app-secret": null, "cf-connecting-ip": "203.0.113.77",
  });
  for (let i = 0; i < KEY_CHECKS_PER_MINUTE; i++) {
    const r = await call("POST", "/v1/settings/check", { headers: burst });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.body.kustomer.code, r.body.stella.code], ["kustomer_key_rejected", "not_checked"]);
  }
  for (const [path, body] of [["/v1/settings/check", undefined], ["/v1/preview", { conversationId: "conv-voice" }]]) {
    const limited = await call("POST", path, { headers: burst, body });
    assert.deepEqual([limited.status, limited.body.error.code], [429, "rate_limited"], path);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1, `${path}: Retry-After`);
  }
});

test("the pages: settings (save, reload, check, preview), the agent card and the home page", async () => {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  const bodies = [];
  const runs = []; // the body of each command run the pages asked Kustomer for
  const saves = []; // the body of each settings save
  context.on("console", (m) => seen("console", m.type(), `${m.type()}: ${m.text()}`));
  context.on("request", (r) => {
    if (/\/v1\/commands\/[^/]+\/run$/.test(r.url())) runs.push(`${r.url()}\n${r.postData()}`);
    if (r.method() === "PUT" && r.url().endsWith("/v1/apps/settings")) saves.push(r.postData());
  });
  context.on("response", (r) => {
    const url = new URL(r.url());
    if (url.origin !== stack.base || url.pathname.endsWith(".wasm")) return;
    const what = `${r.request().method()} ${url.pathname} → ${r.status()}`;
    const head = Object.entries(r.headers()).join("\n");
    const documented = url.pathname === "/sandbox/home.js"; // the sandboxes' values, for people
    bodies.push(r.text().then((text) => seen("network", what, `${r.status()}\n${head}\n${text}`, { documented }), () => {}));
  });
  const snapshot = async (page, what, { inputs = false, documented = false } = {}) => {
    seen("page text", what, await page.evaluate(() => document.body.innerText), { documented });
    seen("page html", what, await page.content(), { documented });
    if (!inputs) return;
    const values = await page.$$eval("input", (all) => all.map((i) => [i.id, i.value]));
    seen("input values", what, values.join("\n"));
    const keys = values.filter(([id]) => id === "f-stellaApiKey" || id === "f-kustomerApiKey");
    assert.deepEqual(keys, [["f-stellaApiKey", ""], ["f-kustomerApiKey", ""]], `${what}: saved keys are blank`);
  };
  const api = `${stack.base}/sandbox/kustomer`;
  const formReady = (page) => page.waitForFunction(() => (document.querySelector("#f-kustomerApiUrl")?.value ?? "") !== "");
  const checkConnection = async (page) => {
    await page.getByRole("button", { name: "Check connection" }).click();
    await page.locator("#checks li").nth(1).waitFor();
    return page.locator("#checks li").allTextContents();
  };
  const preview = async (page, id, outcome) => {
    await page.getByLabel("Conversation id").fill(id);
    await page.getByRole("button", { name: "Preview" }).click();
    await outcome.waitFor();
  };

  const settings = await open(context, `${stack.base}/app/settings.html`);
  await formReady(settings);
  await fillSettings(settings, api, { stellaKey: STELLA_SECRET, kustomerKey: KUSTOMER_KEY, seconds: "1" });
  await settings.getByRole("button", { name: "Save" }).click();
  await settings.getByText("Saved.", { exact: false }).waitFor();
  await snapshot(settings, "settings after save", { inputs: true });
  await settings.reload();
  await formReady(settings);
  await snapshot(settings, "settings after reload", { inputs: true });

  // Saved keys never come back, and are not typed again: Kustomer fills them into the app's
  // commands on its side, so check and preview work with the form's keys left blank.
  const [kustomer, stella] = await checkConnection(settings);
  assert.match(kustomer, /^Kustomer: connected/);
  assert.match(stella, /^Agent Connect: connected/, "the Stella sandbox accepted the saved recognisable key");
  await snapshot(settings, "settings after check");
  await preview(settings, "conv-voice", settings.locator("#preview-result pre"));
  assert.equal(JSON.parse(await settings.locator("#preview-result pre").textContent()).headers["x-api-key"], "********");
  await snapshot(settings, "settings after preview");

  // Wrong keys typed replace the saved ones for the call: the messages say so without repeating them.
  await fillSettings(settings, api, { stellaKey: WRONG_STELLA, kustomerKey: KUSTOMER_SECRET, seconds: "1" });
  const wrong = await checkConnection(settings);
  assert.match(wrong[0], /^Kustomer: not connected/);
  assert.match(wrong[1], /^Agent Connect: not connected/);
  await preview(settings, "conv-voice", settings.getByText("No preview"));
  await snapshot(settings, "settings after wrong keys");
  await settings.close();

  const card = await open(context, `${stack.base}/app/card.html?conversation=conv-email`);
  await card.waitForSelector("#card h2");
  // Agent Connect's outcome (on the conversation) or the delivery log's entry (through the command).
  await card.locator(".happened .delivery, .happened .outcome").first().waitFor();
  await snapshot(card, "card conv-email");
  await card.close();
  // A card for a conversation Kustomer does not have: the browser logs the failed read.
  const missing = await open(context, `${stack.base}/app/card.html?conversation=conv-missing`);
  await missing.waitForEvent("console");
  await missing.close();

  const home = await open(context, `${stack.base}/`);
  await home.locator("#conversations tbody tr").first().waitFor();
  await home.locator("#requests tr", { hasText: "conv-email" }).waitFor();
  await snapshot(home, "home", { documented: true });
  await home.close();
  await context.close();
  await Promise.all(bodies);

  // The keys did travel where they must: typed into the save, and typed keys into a command run.
  // A saved key never left Kustomer for a page: no run the pages sent holds one.
  assert.ok(saves.some((body) => body?.includes(STELLA_SECRET)), "the save carried the typed Stella key");
  assert.ok(runs.some((r) => r.includes("check-connection") && r.includes(WRONG_STELLA) && r.includes(KUSTOMER_SECRET)), "typed keys went with the run");
  for (const name of ["check-connection", "preview", "list-deliveries"]) assert.ok(runs.some((r) => r.includes(`.${name}/run`)), `the pages ran ${name}`);
  for (const r of runs) assert.ok(!r.includes(STELLA_SECRET) && !r.includes(APP_SECRET), `a run carried a saved key: ${r.slice(0, 200)}`);

});

test("no answer, log line, stored record, page, console message or network body holds a key", async (t) => {
  for (const r of (await call("GET", "/sandbox/stella/requests")).body.requests) seen("stella request", r.body.ext_interaction_id, JSON.stringify(r));
  for (const d of (await call("GET", "/v1/deliveries", { headers: asOrg() })).body.deliveries) seen("delivery", d.conversationId, JSON.stringify(d));
  for (const line of stack.log.join("").split("\n")) if (line.trim()) seen("log line", "workerd/harness", line);
  // The edge's own Durable Objects (the org's jobs and sealed settings, the rate limiter), as
  // bytes on disk; the sandboxes' storage is theirs and holds the keys by design.
  for (const dir of ["stella-connect-org-scheduler", "stella-connect-rate-limiter"]) {
    for (const file of files(join(stack.state, dir))) seen("edge storage", file, readFileSync(file).toString("latin1"));
  }

  const leaks = [];
  const counts = {};
  for (const { kind, what, text, documented } of scanned) {
    counts[kind] = (counts[kind] ?? 0) + 1;
    for (const key of documented ? SECRETS : [...SECRETS, ...SANDBOX_KEYS]) {
      const at = text.indexOf(key);
      if (at >= 0) leaks.push(`${kind} (${what}) holds ${key}: …${text.slice(Math.max(0, at - 80), at + key.length + 40)}…`);
    }
    // A JWT (header.payload.signature, base64url of `{"`): the edge's Agent Connect token.
    const jwt = /eyJ[\w-]{2,}\.eyJ[\w-]*\.[\w-]+/.exec(text);
    if (jwt) leaks.push(`${kind} (${what}) holds a JWT: ${jwt[0].slice(0, 24)}…`);
  }
  t.diagnostic(`scanned ${scanned.length} texts, ${scanned.reduce((n, s) => n + s.text.length, 0)} characters: ${JSON.stringify(counts)}`);
  assert.deepEqual(leaks, []);
  const minimum = { answer: 80, "log line": 10, "stella request": 2, delivery: 3, "edge storage": 1, "page text": 7, "page html": 7, "input values": 2, console: 1, network: 25 };
  for (const [kind, n] of Object.entries(minimum)) assert.ok((counts[kind] ?? 0) >= n, `${kind}: ${counts[kind] ?? 0} scanned, expected at least ${n}`);
});
