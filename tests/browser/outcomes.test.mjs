// Survey outcomes and the agent roster on the agent's card, in Debian's Chromium against the
// whole local stack, as a new user sees them under `make run`: close a conversation, answer its
// survey with the home page's control, and the card shows the rating (stars with words) read from
// the conversation; a suppressed survey shows as not sent with the reason in words; the card of a
// conversation assigned to the sandbox's unapproved agent warns before the close.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { KUSTOMER_KEY, Stack, waitFor } from "../http/harness.mjs";
import { launch, open, seriousViolations } from "./browser.mjs";

const SHOTS = new URL(`../../${process.env.SCREENSHOTS_DIR ?? "build/screenshots"}/`, import.meta.url);
mkdirSync(SHOTS, { recursive: true });

let stack;
let browser;
before(async () => {
  // Outcomes are read back every 10 s, as under `make run`.
  stack = await new Stack({ env: { OUTCOME_POLL_MS: "10000" } }).start();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

const asUser = { authorization: `Bearer ${KUSTOMER_KEY}` };

async function cardPage(id) {
  const page = await open(browser, `${stack.base}/app/card.html?conversation=${id}`, { width: 360, height: 600 });
  await page.waitForSelector("#card h2");
  return page;
}

async function custom(id) {
  return (await stack.conversation(id)).data.attributes.custom ?? {};
}

test("a roster that cannot be read is said on the card in words, not hidden", async () => {
  // First, before any card has had the roster read (it is cached a day once read). Agent
  // Connect's roster answers 503 for a while: nothing is cached, and the card says so.
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 503, count: 20, route: "employees" } });
  try {
    const card = await cardPage("conv-unapproved");
    const warning = card.locator("#card .warning");
    await warning.waitFor({ timeout: 20_000 });
    assert.equal(await warning.getAttribute("data-code"), "stella_unavailable");
    assert.match(await warning.textContent(), /^Agent Connect's roster could not be checked: Agent Connect could not be reached: .*503.*\. The card cannot say whether Agent Connect surveys this agent\.$/);
    assert.deepEqual(await seriousViolations(card), []);
    assert.deepEqual(card.problems.filter((p) => !/503/.test(p)), []);
    await card.close();
  } finally {
    await stack.request("DELETE", "/sandbox/stella/faults");
  }
});

test("closed, answered on the home page, and the rating is on the conversation and the card within a few seconds", async (t) => {
  const id = "conv-email";
  await stack.setDelay(1);
  const home = await open(browser, `${stack.base}/`);
  assert.equal((await stack.close(id)).status, 200);
  await waitFor(async () => (await stack.stellaRequests(id)).length === 1, 30_000, "the survey at Stella");

  // The home page's "Answer the survey" control, as a new user would use it (its list of
  // surveys refreshes every 2 s).
  const survey = home.getByLabel("Survey (conversation)").first();
  await survey.locator(`option[value="${id}"]`).waitFor({ state: "attached", timeout: 20_000 });
  await survey.selectOption(id);
  await home.getByLabel("4 stars").check();
  await home.getByLabel("Comment (optional)").fill("Quick and kind");
  const answeredAt = Date.now();
  await home.getByRole("button", { name: "Send the answer" }).click();
  await waitFor(async () => /answered with 4 of 5/.test(await home.locator("#answer-status").textContent()), 10_000, "the home page's confirmation");

  await waitFor(async () => (await custom(id))["@stellaSurveyRatingNum"] === 4, 20_000, "the rating on the conversation", 100);
  const seconds = (Date.now() - answeredAt) / 1000;
  t.diagnostic(`answer → rating on the conversation: ${seconds.toFixed(1)} s (reads every 10 s)`);

  const card = await cardPage(id);
  const line = card.locator(".happened .outcome");
  await line.waitFor();
  // The headline says what happened, never the plan ("… is due") once it was sent and rated.
  assert.equal(await card.locator("#card h2").textContent(), "Sent, rated 4 of 5");
  const text = await line.textContent();
  assert.match(text, /Survey sent/);
  assert.match(text, /rated 4 of 5/);
  assert.match(text, /Quick and kind/);
  // Stars are decoration; the words carry the rating for a screen reader.
  assert.equal((await card.locator(".happened .outcome [aria-hidden=true]").first().textContent()).trim(), "★★★★☆");
  assert.deepEqual(await seriousViolations(card), []);
  await card.screenshot({ path: new URL("card-outcome.png", SHOTS).pathname });
  assert.deepEqual([...home.problems, ...card.problems], []);
});

test("a suppressed survey shows as not sent, with the reason in words", async () => {
  // The same customer (cust-zoe) as conv-chat: the second survey falls in the suppression period.
  await stack.setDelay(1);
  for (const id of ["conv-chat", "conv-voice"]) {
    assert.equal((await stack.close(id)).status, 200);
    await waitFor(async () => (await stack.stellaRequests(id)).length === 1, 30_000, `the survey of ${id}`);
  }
  await waitFor(async () => (await custom("conv-voice"))["@stellaSurveyDeliveryStatusStr"] === "suppressed", 20_000, "suppressed");
  const card = await cardPage("conv-voice");
  const line = card.locator(".happened .outcome");
  await line.waitFor();
  assert.match(await line.textContent(), /Not sent: .*suppression period/);
  // No promise of a survey above Agent Connect's refusal, and no recipient.
  assert.equal(await card.locator("#card h2").textContent(), "Not sent by Agent Connect");
  assert.equal(await card.locator("dl.facts").count(), 0);
  assert.deepEqual(card.problems, []);
});

test("the card of a conversation assigned to the unapproved agent warns before the close", async () => {
  const conversation = await stack.conversation("conv-unapproved");
  assert.equal(conversation.data.attributes.status, "open");
  const card = await cardPage("conv-unapproved");
  const warning = card.locator("#card .warning");
  await warning.waitFor({ timeout: 20_000 });
  assert.equal(await warning.getAttribute("data-code"), "not_active");
  assert.match(await warning.textContent(), /Kim Agent/);
  assert.match(await warning.textContent(), /still sends/i);
  // An approved agent's card has no warning, once the roster has answered for it.
  const fine = await open(browser, "about:blank", { width: 360, height: 600 });
  const answered = fine.waitForResponse((r) => r.url().includes("agent-profile"));
  await fine.goto(`${stack.base}/app/card.html?conversation=conv-brand`);
  const profile = await (await answered).json();
  assert.equal(profile.data.attributes.responseBody.agent.code, "ready", JSON.stringify(profile));
  await fine.locator("#card h2").waitFor();
  assert.equal(await fine.locator("#card .warning").count(), 0);
  assert.deepEqual(await seriousViolations(card), []);
  await card.screenshot({ path: new URL("card-roster-warning.png", SHOTS).pathname });
  assert.deepEqual([...card.problems, ...fine.problems], []);
});

test("Check connection lists the org's agents without an active Agent Connect profile", async () => {
  // The sandbox org's saved settings carry the sandbox's API secret: nothing typed.
  const page = await open(browser, `${stack.base}/app/settings.html`);
  await page.waitForFunction(() => (document.querySelector("#f-kustomerApiUrl")?.value ?? "") !== "");
  await page.getByRole("button", { name: "Check connection" }).click();
  const roster = page.locator("#checks > li", { hasText: "Agent roster" });
  await roster.waitFor({ timeout: 20_000 });
  const text = await roster.textContent();
  assert.match(text, /1 of the org's \d+ agents will not be surveyed/);
  assert.match(text, /Kim Agent <kim\.agent@acme\.example>/);
  assert.ok(!/Sam Agent|Ria Agent/.test(text), text);
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(page.problems, []);
});
