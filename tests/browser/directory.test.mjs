// A new user's journey in Chromium, on a fresh local stack: the App Directory lists the package
// that `make run` registered, Install, the settings page it links to, a conversation closed on
// the home page, and the survey request in the Stella sandbox.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { KUSTOMER_KEY, Stack, waitFor } from "../http/harness.mjs";
import { fillSettings, launch, open, seriousViolations } from "./browser.mjs";

const PACKAGE = JSON.parse(readFileSync(new URL("../../app-manifest/stella_connect.json", import.meta.url), "utf8"));

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

test("directory → install → settings → close → survey request", async () => {
  const home = await open(browser, `${stack.base}/`);
  // serve.sh registers the package once workerd is up (a cargo build may come first).
  const listing = home.locator("article.listing");
  await waitFor(async () => (await listing.count()) > 0 || (await home.reload(), false), 120_000, "the package to be registered", 1000).catch((e) => {
    throw new Error(`${e.message}; serve.sh said:\n${stack.log.join("").slice(-2000)}`);
  });
  // Each reload above cancels the page's own fetches (net::ERR_ABORTED): the test's doing, not
  // the page's, so they are not problems. Any other failure still is.
  home.problems = home.problems.filter((p) => !p.endsWith("net::ERR_ABORTED"));

  // What the directory shows comes from the package.
  assert.equal(await listing.locator("h3").textContent(), PACKAGE.title);
  const text = await listing.textContent();
  for (const part of [PACKAGE.description, `Version ${PACKAGE.version}`, PACKAGE.appDetails.appDeveloper.name, PACKAGE.appDetails.externalPlatform.name]) {
    assert.ok(text.includes(part), part);
  }
  await listing.getByText("Changelog").click();
  // Every version's notes are listed (in the definition's order); this version's among them.
  const notes = listing.locator("li", { hasText: `${PACKAGE.version}: ` });
  assert.equal(await listing.locator("li").count(), Object.keys(PACKAGE.changelog).length);
  assert.equal(await notes.textContent(), `${PACKAGE.version}: ${PACKAGE.changelog[PACKAGE.version]}`);
  assert.equal(await listing.locator("img").getAttribute("src"), `${stack.base}/app/icon.svg`, "registered for this address");

  await listing.getByRole("button", { name: `Install ${PACKAGE.title}` }).click();
  await home.getByText(`Installed: version ${PACKAGE.version}.`).waitFor();
  assert.deepEqual(await seriousViolations(home), []);

  // Installing made the settings readable, with their defaults and keys masked.
  const { body } = await stack.request("GET", "/sandbox/kustomer/v1/apps/settings", { headers: { authorization: `Bearer ${KUSTOMER_KEY}` } });
  const settings = body.data.attributes.settings;
  assert.equal(settings.stellaApiKey, "********");
  assert.equal(settings.channelMap, PACKAGE.settings.default.channelMap.defaultValue);

  await home.locator("#directory").getByRole("link", { name: "fill in its settings" }).click();
  await home.waitForURL(`${stack.base}/app/settings.html`);
  await home.waitForFunction(() => (document.querySelector("#f-kustomerApiUrl")?.value ?? "") !== "");
  await fillSettings(home, `${stack.base}/sandbox/kustomer`, { seconds: "1" });
  await home.getByRole("button", { name: "Save" }).click();
  await home.getByText("Saved.", { exact: false }).waitFor();

  await home.goto(`${stack.base}/`);
  await home.locator("#conversations tr", { hasText: "conv-voice" }).getByRole("button", { name: "Close" }).click();
  await home.locator("#requests tr", { hasText: "conv-voice" }).waitFor({ timeout: 20_000 });
  const sent = await stack.stellaRequests("conv-voice");
  assert.equal(sent.length, 1);
  assert.equal(sent[0].body.channel, "phone");
  assert.equal(sent[0].body.employee.email, "sam.agent@acme.example");

  // The card the directory links to is the installed package's card, for this conversation.
  await home.locator("#directory").getByRole("link", { name: "agent card" }).click();
  await home.locator("#card h2").waitFor();
  assert.match(await home.locator("#card h2").textContent(), /Ann Lee/);
  assert.deepEqual(home.problems, []);
  await home.close();
});
