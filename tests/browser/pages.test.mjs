// The settings page, the agent card and the local home page in Debian's Chromium, against the
// real local stack (workerd with the edge, the pages and the sandboxes). Each test checks there
// were no console errors; the a11y test runs axe-core; screenshots go to build/screenshots/ (docs/screenshots/ with `make screenshots`).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import * as core from "../../pkg/stella_connect.js";
import { APP_SECRET, KUSTOMER_KEY, STELLA_KEY, Stack, waitFor } from "../http/harness.mjs";
import { fillSettings, launch, open, seriousViolations } from "./browser.mjs";

core.initSync({ module: readFileSync(new URL("../../pkg/stella_connect_bg.wasm", import.meta.url)) });
// Test runs leave the tree as it was: screenshots go to build/, and `make screenshots` (which
// sets SCREENSHOTS_DIR) refreshes the ones the README shows.
const SHOTS = new URL(`../../${process.env.SCREENSHOTS_DIR ?? "build/screenshots"}/`, import.meta.url);
mkdirSync(SHOTS, { recursive: true });
const APP_KEY = "@stellaDoNotSendStellaConnectRequestBool";

let stack;
let browser;
before(async () => {
  stack = await new Stack().start();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

const sandboxApi = () => `${stack.base}/sandbox/kustomer`;
const asUser = { authorization: `Bearer ${KUSTOMER_KEY}` };

async function savedSettings() {
  return (await stack.request("GET", "/sandbox/kustomer/v1/apps/settings", { headers: asUser })).body.data.attributes.settings;
}

async function settingsPage() {
  const page = await open(browser, `${stack.base}/app/settings.html`);
  await page.waitForSelector("#f-stellaApiKey");
  await page.waitForFunction(() => (document.querySelector("#f-kustomerApiUrl")?.value ?? "") !== "");
  return page;
}

const fillValid = (page, values) => fillSettings(page, sandboxApi(), values);

async function cardPage(id, { width = 360 } = {}) {
  const page = await open(browser, `${stack.base}/app/card.html?conversation=${id}`, { width, height: 500 });
  await page.waitForSelector("#card h2");
  return page;
}

test("the settings form shows the five fields, and the optional API secret, with their labels, defaults and help", async () => {
  const page = await settingsPage();
  const fields = core.settingsFields();
  for (const field of fields.filter((f) => !f.advanced)) {
    const input = page.getByLabel(field.required ? field.label : `${field.label} (optional)`, { exact: true });
    assert.equal(await input.count(), 1, field.label);
    const help = await page.locator(`#help-${field.key}`).textContent();
    assert.equal(help, field.help);
    assert.equal(await input.getAttribute("aria-describedby"), `help-${field.key} error-${field.key}`);
  }
  assert.deepEqual(
    fields.filter((f) => !f.advanced).map((f) => f.label),
    ["Stella Connect API key", "Stella Connect API secret", "Kustomer API key", "Kustomer API URL", "Kustomer URL", "Seconds until send"],
  );
  // The advanced ones are folded away until asked for.
  const advanced = page.getByLabel("Channel names");
  assert.equal(await advanced.isVisible(), false);
  await page.getByText("Advanced settings").click();
  assert.equal(await advanced.isVisible(), true);
  assert.equal(await advanced.inputValue(), fields.find((f) => f.key === "channelMap").default);
  // Keys are password fields with show/hide.
  const key = page.getByLabel("Stella Connect API key");
  await key.fill("typed-secret");
  assert.equal(await key.getAttribute("type"), "password");
  const show = page.locator('button[aria-controls="f-stellaApiKey"]');
  await show.click();
  assert.equal(await key.getAttribute("type"), "text");
  assert.equal(await show.getAttribute("aria-pressed"), "true");
  await show.click();
  assert.equal(await key.getAttribute("type"), "password");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("invalid values show the core's errors next to their fields, all at once, and save nothing", async () => {
  const before = await savedSettings();
  const page = await settingsPage();
  const bad = { kustomerApiUrl: "ftp://example.com", kustomerUrl: "acme", secondsUntilSend: "-5" };
  await page.getByLabel("Kustomer API URL").fill(bad.kustomerApiUrl);
  await page.getByLabel("Kustomer URL", { exact: true }).fill(bad.kustomerUrl);
  await page.getByLabel("Seconds until send").fill(bad.secondsUntilSend);
  await page.getByRole("button", { name: "Save" }).click();

  const expected = core.validateSettings({ stellaApiKey: "********", kustomerApiKey: "********", ...bad }, { allowLoopback: true });
  assert.equal(expected.ok, false);
  assert.equal(expected.errors.length, 3);
  for (const { field, message } of expected.errors) {
    assert.equal(await page.locator(`#error-${field}`).textContent(), message, field);
    assert.equal(await page.locator(`#f-${field}`).getAttribute("aria-invalid"), "true");
  }
  assert.match(await page.locator("#status").textContent(), /3 fields need attention/);
  assert.equal(await page.evaluate(() => document.activeElement.id), "f-kustomerApiUrl", "the first bad field has focus");
  // Fixing one field clears its error at once.
  await page.getByLabel("Seconds until send").fill("60");
  assert.equal(await page.locator("#error-secondsUntilSend").textContent(), "");
  assert.deepEqual(await savedSettings(), before, "nothing was saved");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("valid values save through the Cards SDK and keys come back masked, never shown", async () => {
  const page = await settingsPage();
  await fillValid(page, { seconds: "2" });
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.", { exact: false }).waitFor();

  const saved = await savedSettings();
  assert.equal(saved.stellaApiKey, "********");
  assert.equal(saved.kustomerApiKey, "********");
  assert.equal(saved.secondsUntilSend, 2);
  assert.equal(saved.kustomerApiUrl, sandboxApi());
  for (const label of ["Stella Connect API key", "Kustomer API key"]) {
    const input = page.getByLabel(label);
    assert.equal(await input.inputValue(), "", `${label} is blank after saving`);
    assert.match(await input.getAttribute("placeholder"), /Saved/);
  }
  // A reload shows the same, and no key is anywhere in the page.
  await page.reload();
  await page.waitForFunction(() => (document.querySelector("#f-kustomerApiUrl")?.value ?? "") !== "");
  assert.equal(await page.getByLabel("Seconds until send").inputValue(), "2");
  const html = await page.content();
  const values = await page.$$eval("input", (inputs) => inputs.map((i) => i.value).join(" "));
  for (const key of [STELLA_KEY, KUSTOMER_KEY]) assert.ok(!html.includes(key) && !values.includes(key), key);
  // Saving again without retyping keeps the saved keys: the edge still gets them.
  await page.getByLabel("Seconds until send").fill("3");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.", { exact: false }).waitFor();
  const closed = await stack.close("conv-chat");
  assert.equal(closed.body.edge.status, 202, JSON.stringify(closed.body.edge));
  assert.equal(closed.body.edge.body.status, "scheduled");
  await stack.reopen("conv-chat");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("Check connection says whether each key works", async () => {
  const page = await settingsPage();
  const check = async () => {
    await page.getByRole("button", { name: "Check connection" }).click();
    await page.locator("#checks li").nth(1).waitFor();
    return page.locator("#checks li").allTextContents();
  };
  await fillValid(page);
  let [kustomer, stella, ...rest] = await check();
  assert.match(kustomer, /^Kustomer: connected/);
  assert.match(stella, /^Agent Connect: connected/);
  // The sandbox's Kustomer URL names no region: where the data is kept, and how to pin it.
  assert.ok(rest.some((l) => /^Data residency: Kept where Cloudflare places it.*api\.prod2/.test(l)), rest.join("\n"));

  await fillValid(page, { kustomerKey: "sandbox-kustomer-key-no-tags", stellaKey: "wrong-stella-key" });
  [kustomer, stella] = await check();
  assert.match(kustomer, /^Kustomer: not connected.*cannot read tags/);
  assert.match(stella, /^Agent Connect: not connected.*did not accept/);
  assert.equal((await stack.stellaRequests()).some((r) => !r.body.ext_interaction_id), false, "the probe created no survey");

  // Saved keys are used without being typed again: Kustomer fills them into the command.
  await page.reload();
  await page.waitForFunction(() => (document.querySelector("#f-kustomerApiUrl")?.value ?? "") !== "");
  assert.equal(await page.getByLabel("Stella Connect API key").inputValue(), "");
  [kustomer, stella] = await check();
  assert.match(kustomer, /^Kustomer: connected/);
  assert.match(stella, /^Agent Connect: connected/);
  // A key just typed replaces the saved one for the check, and only it.
  await page.getByLabel("Stella Connect API key").fill("wrong-stella-key");
  [kustomer, stella] = await check();
  assert.match(kustomer, /^Kustomer: connected/);
  assert.match(stella, /^Agent Connect: not connected/);
  // No key saved and none typed: the page says so and runs nothing.
  await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", { headers: asUser, body: { settings: { stellaApiKey: null } } });
  await page.reload();
  await page.waitForFunction(() => (document.querySelector("#f-kustomerApiUrl")?.value ?? "") !== "");
  await page.getByRole("button", { name: "Check connection" }).click();
  assert.match(await page.locator("#status").textContent(), /Type the Stella Connect API key first: none is saved yet/);
  assert.equal(await page.locator("#checks li").count(), 0);
  await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", { headers: asUser, body: { settings: { stellaApiKey: STELLA_KEY } } });
  assert.ok(!(await page.content()).includes(STELLA_KEY));
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("an unlinked org: the page says so; Re-link saves a new secret and fingerprint the edge trusts at once", async () => {
  // An org that saved its settings before 0.5.0: an app secret, no fingerprint.
  await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", { headers: asUser, body: { settings: { appSecretFingerprint: null } } });
  const page = await settingsPage();
  await page.locator("#link.banner").waitFor();
  assert.match(await page.locator("#link").textContent(), /not linked yet.*Re-link the app/);
  // Check connection asks the edge, which asks Kustomer now: no fingerprint, so not linked.
  await page.getByRole("button", { name: "Check connection" }).click();
  await page.locator("#checks li").nth(2).waitFor();
  assert.match((await page.locator("#checks li").allTextContents()).join("\n"), /App link: not linked\. Kustomer holds no fingerprint.*Re-link the app/);
  // A close now is held, not lost.
  const first = await stack.newConversation();
  const held = await stack.close(first);
  assert.equal(held.body.edge.body.status, "held", held.text);

  // The earlier check's lines stay until the new secret is saved: wait for the new answer.
  await page.getByRole("button", { name: "Re-link the app" }).click();
  await page.locator("#checks li", { hasText: /^App link: linked/ }).waitFor();
  const saved = await savedSettings();
  assert.match(saved.appSecretFingerprint, /^v1:[0-9a-f]{64}$/, "the page's WebCrypto fingerprint");
  assert.equal(saved.appSecret, "********", "the new secret is kept by Kustomer, masked");
  // The workflow's next close carries the new secret (Kustomer fills it in): trusted, so the
  // page's fingerprint is the one the edge computes; the held close goes out with it.
  const second = await stack.newConversation();
  const trusted = await stack.close(second);
  assert.equal(trusted.body.edge.body.status, "scheduled", trusted.text);
  await waitFor(async () => (await stack.stellaRequests(first)).length === 1, 30_000, "the held close sent");
  assert.ok(!(await page.content()).includes("sandbox-app-secret"));
  assert.deepEqual(page.problems, []);
  await page.close();
  // The sandbox's own link again (the harness's calls carry its secret), trusted at once.
  const fingerprint = `v1:${createHmac("sha256", APP_SECRET).update("stella-connect app secret fingerprint v1").digest("hex")}`;
  await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", { headers: asUser, body: { settings: { appSecret: APP_SECRET, appSecretFingerprint: fingerprint } } });
  const back = await stack.request("POST", "/v1/settings/check", { headers: stack.settingsHeaders() });
  assert.equal(back.body.app?.ok, true, back.text);
});

test("Preview shows the exact request with the key masked, or why there is none, with the saved keys", async () => {
  const page = await settingsPage();
  await page.getByLabel("Conversation id").fill("conv-voice");
  await page.getByRole("button", { name: "Preview" }).click();
  const pre = page.locator("#preview-result pre");
  await pre.waitFor();
  const request = JSON.parse(await pre.textContent());
  assert.equal(request.headers["x-api-key"], "********");
  assert.equal(request.body.channel, "phone");
  assert.equal(request.body.ext_interaction_id, "conv-voice");
  assert.equal(request.url, `${stack.base}/sandbox/stella/v1/requests`);

  await page.getByLabel("Conversation id").fill("conv-unassigned");
  await page.getByRole("button", { name: "Preview" }).click();
  await page.getByText("No survey would be sent").waitFor();
  assert.match(await page.locator("#preview-result").textContent(), /No agent is assigned/);

  await page.getByLabel("Conversation id").fill("conv-missing");
  await page.getByRole("button", { name: "Preview" }).click();
  await page.getByText("No preview").waitFor();
  assert.ok(!(await page.content()).includes(STELLA_KEY));
  assert.deepEqual(page.problems.filter((p) => !p.includes("404")), []);
  await page.close();
});

test("the card says who gets the survey and when, and why not", async () => {
  let page = await cardPage("conv-email");
  assert.equal(await page.locator("h2").textContent(), "A survey will go to Ann Lee");
  const facts = await page.locator("dl.facts").textContent();
  assert.match(facts, /ann\.lee@example\.com/);
  assert.match(facts, /sam\.agent@acme\.example/);
  assert.match(facts, /after closing/);
  assert.ok(await page.evaluate(() => window.KustomerStandIn.resizes > 0), "the card resized to its content");
  assert.deepEqual(page.problems, []);
  await page.close();

  page = await cardPage("conv-unassigned");
  assert.equal(await page.locator("h2").textContent(), "No survey when this is closed");
  assert.match(await page.locator(".detail").textContent(), /No agent is assigned/);
  await page.close();

  page = await cardPage("conv-voice");
  assert.match(await page.locator("dl.facts").textContent(), /Channelphone/);
  await page.close();

  // Closed: the card gives the due time, and what the app did: the delivery log's entry.
  await stack.setDelay(3600);
  await stack.close("conv-no-email");
  page = await cardPage("conv-no-email");
  assert.equal(await page.locator("h2").textContent(), "No survey for this conversation");
  assert.match(await page.locator(".detail").textContent(), /no email address/);
  await page.locator(".happened .delivery.scheduled").waitFor();
  assert.match(await page.locator(".happened").textContent(), /What happened.*Scheduled for /);
  await page.close();
  await stack.reopen("conv-no-email");
});

test("the card shows what actually happened: sent, skipped, failed, or nothing yet", async () => {
  await stack.setDelay(1);
  const happened = async (id) => {
    const page = await cardPage(id);
    await page.locator(".happened .delivery, .happened .outcome, .happened .muted:not(:has-text('Reading'))").first().waitFor();
    const text = await page.locator(".happened").textContent();
    // The headline is drawn with the log's entry: it says what happened, as the log does.
    happened.headline = await page.locator("#card h2").textContent();
    assert.deepEqual(page.problems, [], id);
    await page.close();
    return text;
  };
  const fresh = await stack.newConversation();
  assert.match(await happened(fresh), /No survey recorded yet/);
  // Sent.
  await stack.close(fresh);
  await waitFor(async () => (await stack.delivery(fresh))?.state === "sent", 20_000, "the survey to be sent");
  assert.match(await happened(fresh), /Survey sent /);
  assert.match(happened.headline, /^(Survey sent|Sent, not answered yet)$/);
  // Skipped, in the core's words.
  await stack.close("conv-no-email");
  await waitFor(async () => {
    const d = await stack.delivery("conv-no-email");
    return d?.state === "skipped" && d.reason !== "reopened"; // not the earlier close's outcome
  }, 20_000, "conv-no-email to be skipped");
  assert.match(await happened("conv-no-email"), /Not sent: .*email/);
  assert.equal(happened.headline, "No survey was sent");
  // Failed: Stella refuses the key for good.
  const refused = await stack.newConversation();
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 400, count: 100 } });
  await stack.close(refused);
  await waitFor(async () => (await stack.delivery(refused))?.state === "failed", 20_000, "the survey to fail");
  await stack.request("DELETE", "/sandbox/stella/faults");
  assert.match(await happened(refused), /Failed: Agent Connect refused/i);
  assert.equal(happened.headline, "The survey could not be sent", "never a promise above a refusal");
  await stack.reopen("conv-no-email");
});

test("a hostile customer name is shown as text and never runs", async () => {
  const page = await cardPage("conv-xss");
  let dialogs = 0;
  page.on("dialog", (d) => {
    dialogs++;
    d.dismiss();
  });
  await page.waitForTimeout(200); // give an injected handler the chance to fire
  assert.match(await page.locator("h2").textContent(), /<img src=x onerror=alert\(1\)>/);
  assert.equal(await page.locator("#card img").count(), 0);
  assert.equal(dialogs, 0);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("the do-not-send switch writes the attribute at once, from the keyboard, and rolls back on failure", async () => {
  const page = await cardPage("conv-email");
  const toggle = page.getByRole("switch", { name: "Do not send survey" });
  assert.equal(await toggle.getAttribute("aria-checked"), "false");
  await toggle.focus();
  await page.keyboard.press("Space");
  assert.equal(await toggle.getAttribute("aria-checked"), "true");
  await page.getByText("No survey: do not send is on").waitFor();
  await waitFor(async () => (await stack.conversation("conv-email")).data.attributes.custom[APP_KEY] === true, 5000, "the attribute to be written");
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute("role")), "switch", "focus stays on the switch");

  await page.keyboard.press("Enter");
  assert.equal(await toggle.getAttribute("aria-checked"), "false");
  await waitFor(async () => (await stack.conversation("conv-email")).data.attributes.custom[APP_KEY] === false, 5000, "the attribute to be cleared");

  // The switch's next write fails (that call only: the page's and the edge's reads go on): the
  // switch goes back and says so.
  await stack.request("POST", "/sandbox/kustomer/faults", { body: { status: 500, count: 1, method: "PUT", path: "/v1/conversations/conv-email" } });
  await toggle.click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.textContent(), /Could not save "Do not send survey".*back as it was/);
  assert.equal(await toggle.getAttribute("aria-checked"), "false");
  assert.equal((await stack.conversation("conv-email")).data.attributes.custom[APP_KEY], false);
  assert.equal(await page.locator("h2").textContent(), "A survey will go to Ann Lee");
  assert.deepEqual(page.problems.filter((p) => !p.includes("500")), []);
  await page.close();
});

test("full flow: fill the settings, close a conversation on the home page, see the survey arrive", async () => {
  const settings = await settingsPage();
  await fillValid(settings, { seconds: "1" });
  await settings.getByRole("button", { name: "Save" }).click();
  await settings.getByText("Saved.", { exact: false }).waitFor();
  await settings.close();

  const home = await open(browser, `${stack.base}/`);
  const row = home.locator("#conversations tr", { hasText: "conv-chat" });
  await row.getByRole("button", { name: "Close" }).click();
  await home.locator("#close-status", { hasText: "conv-chat: closed" }).waitFor();
  await home.locator("#requests tr", { hasText: "conv-chat" }).waitFor({ timeout: 20_000 });
  const [sent] = await stack.stellaRequests("conv-chat");
  assert.equal(sent.body.customer.email, "zoe.okubo@example.com");
  assert.equal(sent.body.employee.email, "ria.agent@acme.example");
  assert.equal(sent.body.channel, "chat");
  assert.equal(sent.body.external_url, `${sandboxApi()}/app/customers/cust-zoe/event/conv-chat`);
  assert.equal((await stack.stellaRequests("conv-chat")).length, 1);
  assert.deepEqual(home.problems, []);
  await home.close();
});

test("the home page makes the Agent Connect sandbox refuse surveys, and accept them again", async () => {
  await stack.setDelay(1);
  const home = await open(browser, `${stack.base}/`);
  // The page reads the sandbox's state first.
  await home.locator("#stella-status", { hasText: "accepts survey requests" }).waitFor();
  const toggle = home.getByRole("button", { name: "Refuse surveys" });
  await toggle.click();
  await home.getByRole("button", { name: "Accept surveys again", pressed: true }).waitFor();
  // The state is the sandbox's: the page loaded again shows it as it is.
  const again = await open(browser, `${stack.base}/`);
  await again.getByRole("button", { name: "Accept surveys again", pressed: true }).waitFor();
  assert.match(await again.locator("#stella-status").textContent(), /refuses every survey request \(400\)/);
  assert.deepEqual(again.problems, []);
  await again.close();
  const refused = await stack.newConversation();
  await stack.close(refused);
  await waitFor(async () => (await stack.delivery(refused))?.state === "failed", 20_000, "the survey to fail");
  await home.getByRole("button", { name: "Accept surveys again" }).click();
  await home.getByRole("button", { name: "Refuse surveys", pressed: false }).waitFor();
  const accepted = await stack.newConversation();
  await stack.close(accepted);
  await waitFor(async () => (await stack.delivery(accepted))?.state === "sent", 20_000, "the survey to be sent");
  assert.match(await home.locator("#stella-status").textContent(), /accepts survey requests/);
  assert.ok(await home.getByRole("link", { name: "Deliveries page" }).isVisible());
  assert.deepEqual(home.problems, []);
  await home.close();
});

test("no console errors and no serious axe violations on either page; screenshots", async () => {
  const pages = [
    ["settings", await settingsPage()],
    ["card", await cardPage("conv-email")],
    ["home", await open(browser, `${stack.base}/`)],
  ];
  for (const [name, page] of pages) {
    if (name === "home") await page.locator("#conversations tbody tr").first().waitFor();
    assert.deepEqual(await seriousViolations(page), [], name);
    assert.deepEqual(page.problems, [], name);
    await page.screenshot({ path: new URL(`${name}.png`, SHOTS).pathname, fullPage: true });
    await page.close();
  }
});
