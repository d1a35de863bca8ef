// The admin's Deliveries page in Debian's Chromium against the real local stack (workerd with
// the edge, the pages and the sandboxes): conversations closed through the Kustomer sandbox
// are sent, skipped or failed (the Stella sandbox refusing them), and the page shows, filters,
// pages through, resends and exports them. Every wait is on an event (a state the edge reports,
// an element, an answer), never a fixed sleep. Screenshots (the page with each state, and the
// confirmation) go to build/screenshots/ (docs/screenshots/ with SCREENSHOTS_DIR=docs/screenshots).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { APP_SECRET, KUSTOMER_KEY, STELLA_KEY, Stack, waitFor } from "../http/harness.mjs";
import { launch, open, seriousViolations } from "./browser.mjs";

const SHOTS = new URL(`../../${process.env.SCREENSHOTS_DIR ?? "build/screenshots"}/`, import.meta.url);
mkdirSync(SHOTS, { recursive: true });
const SECRETS = [STELLA_KEY, KUSTOMER_KEY, APP_SECRET];
// A formula, quotes, a comma, and a right-to-left override that would reverse what follows it.
const HOSTILE_NAME = `=HYPERLINK("http://evil.example","click"), "boss"\u202E gnp.exe`;
const SHOWN_NAME = HOSTILE_NAME.replace("\u202E", ""); // the edge drops direction controls
const STATE_WORDS = { scheduled: "Scheduled", retrying: "Retrying", sent: "Sent", skipped: "Skipped", failed: "Failed" };

let stack;
let browser;
// Skipped: one for the customer's own data (a resend cannot change it), one for no agent (the
// org may assign one: a resend can change that).
const ids = { sent: ["conv-email", "conv-chat"], skipped: ["conv-no-email", "conv-unassigned"], failed: [] };

/** Every entry of the edge's log matching `query` (paging through with its cursor). */
async function edgeLog(query = "") {
  const all = [];
  let cursor = "";
  let answer;
  do {
    const r = await stack.request("GET", `/v1/deliveries?limit=200${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { headers: stack.orgHeaders() });
    assert.equal(r.status, 200, r.text);
    answer = r.body;
    all.push(...answer.deliveries);
    cursor = answer.nextCursor;
  } while (cursor);
  return Object.assign(all, { reasons: answer.reasons });
}
const entry = async (id) => (await edgeLog(`&conversationId=${encodeURIComponent(id)}`))[0];
const reached = (id, state) => waitFor(async () => (await entry(id))?.state === state, 20_000, `${id} to be ${state}`);
const settled = () => waitFor(async () => (await edgeLog("&state=scheduled,retrying")).length === 0, 60_000, "every survey to be sent, skipped or failed");

/** A conversation of Ann's with Sam, or with a customer of its own when `customer` is given. */
function conversationSet(id, customer) {
  return {
    conversation: {
      id,
      attributes: { name: `Test ${id}`, channels: ["email"], assignedUsers: ["user-sam"] },
      relationships: { customer: { data: { type: "customer", id: customer?.id ?? "cust-ann" } } },
    },
    customer,
  };
}

async function addConversations(sets) {
  const r = await stack.request("POST", "/sandbox/kustomer/conversations", { body: sets });
  assert.equal(r.status, 201, r.text);
}

/** Closes each (a few at a time); each close must be scheduled by the edge. */
async function closeAll(list) {
  for (let i = 0; i < list.length; i += 10) {
    await Promise.all(
      list.slice(i, i + 10).map(async (id) => {
        const r = await stack.close(id);
        assert.equal(r.body.edge?.status, 202, `${id}: ${JSON.stringify(r.body.edge)}`);
      }),
    );
  }
}

before(async () => {
  stack = await new Stack().start();
  browser = await launch();
  await stack.setDelay(1);
  // Sent, then skipped (no customer email, no agent), then failed: Agent Connect refuses them.
  await addConversations([conversationSet("conv-hostile", { id: "cust-hostile", attributes: { name: HOSTILE_NAME, emails: [{ email: "boss@example.com" }] } })]);
  ids.sent.push("conv-hostile");
  await closeAll([...ids.sent, ...ids.skipped]);
  await settled();
  ids.failed = ["conv-fail-1", "conv-fail-2", "conv-fail-3"];
  await addConversations(ids.failed.map((id) => conversationSet(id)));
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 400, count: ids.failed.length } });
  await closeAll(ids.failed);
  await settled();
  await stack.request("DELETE", "/sandbox/stella/faults");
  for (const [state, list] of Object.entries(ids)) for (const id of list) assert.equal((await entry(id)).state, state, id);
  // The sandbox's settings carry its API secret: each sent survey's outcome is read back.
  for (const id of ids.sent) await waitFor(async () => (await entry(id)).outcome?.deliveryStatus, 20_000, `${id}'s outcome`);
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** The Deliveries page, loaded; `page.bodies` collects the answers of the Kustomer calls it makes. */
async function deliveriesPage(query = "", { width = 1600, height = 900 } = {}) {
  const page = await open(browser, "about:blank", { width, height });
  page.bodies = [];
  page.on("response", (r) => {
    if (r.url().includes("/sandbox/kustomer/v1/")) page.bodies.push(r.text().then((t) => ({ url: r.url(), text: t }), () => ({ url: r.url(), text: "" })));
  });
  await page.goto(`${stack.base}/app/deliveries.html${query}`);
  await idle(page);
  return page;
}

/** Waits until the page has answered: its status is no longer "busy". */
const idle = (page) => page.waitForFunction(() => { const s = document.querySelector("#status"); return s && !s.classList.contains("busy"); });

/** Runs `action` and waits for the log read it starts and its drawing. */
async function reload(page, action) {
  const answered = page.waitForResponse((r) => r.url().includes("list-deliveries"));
  await action();
  await answered;
  await idle(page);
}

const rowIds = (page) => page.locator("#log tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
const rowOf = (page, id) => page.locator(`#log tbody tr[data-id="${id}"]`);

test("the summary and the chart count each state; each row gives its state and reason in words", async () => {
  const page = await deliveriesPage();
  const log = await edgeLog();
  const counts = Object.fromEntries(Object.keys(STATE_WORDS).map((s) => [s, log.filter((d) => d.state === s).length]));
  assert.deepEqual(counts, { scheduled: 0, retrying: 0, sent: 3, skipped: 2, failed: 3 });
  for (const [state, words] of Object.entries(STATE_WORDS)) {
    assert.equal(await page.locator(`.tally.${state}`).textContent(), `${counts[state]} ${words}`);
  }
  // The chart: 7 days (the default period), each bar naming its numbers for a screen reader.
  // The closes all fall on one day (the one with numbers; today, unless the run crossed midnight).
  const bars = page.locator("#chart [role=img]");
  assert.equal(await bars.count(), 7);
  const labels = await bars.evaluateAll((all) => all.map((b) => b.getAttribute("aria-label")));
  const busy = labels.findIndex((l) => !/: 0 sent, 0 skipped, 0 failed, 0 pending$/.test(l));
  assert.match(labels[busy], /: 3 sent, 2 skipped, 3 failed, 0 pending$/);
  assert.equal(labels.filter((l) => /: 0 sent, 0 skipped, 0 failed, 0 pending$/.test(l)).length, 6);
  const heights = await page.locator("#chart .day").nth(busy).locator(".segment").evaluateAll((s) => s.map((e) => [e.className, e.style.height]));
  assert.deepEqual(heights, [["segment failed", "37.5%"], ["segment skipped", "25%"], ["segment sent", "37.5%"]]);
  await page.getByText("Numbers per day").click();
  assert.match(await page.locator("#per-day tbody tr").nth(busy).textContent(), /3230$/);

  assert.deepEqual(await rowIds(page), log.map((d) => d.conversationId), "newest close first, as the edge orders them");
  for (const d of log) {
    const cells = await rowOf(page, d.conversationId).locator("td").allTextContents();
    assert.equal(cells[3], STATE_WORDS[d.state], d.conversationId);
    assert.equal(cells[4], d.message || log.reasons[d.reason] || "—", d.conversationId);
    assert.ok(cells[4] !== d.reason, `${d.conversationId}: the reason in words, not its code`);
    // Resend where the edge says it can change something: failures, not a skip for no email.
    assert.equal(d.resendable, d.state === "failed" || d.conversationId === "conv-unassigned", d.conversationId);
    assert.equal(cells[9], d.resendable ? "Resend" : "", d.conversationId);
    // Agent Connect's word on a sent survey; none on one never sent.
    assert.equal(cells[8], d.state === "sent" ? "The survey was sent" : "—", d.conversationId);
  }
  const skipped = await rowOf(page, "conv-no-email").locator("td").nth(4).textContent();
  assert.match(skipped, /email/i);
  // The hostile name is text, the link goes to the conversation in a new tab.
  assert.equal(await rowOf(page, "conv-hostile").locator("td").first().textContent(), `${SHOWN_NAME}boss@example.com`);
  assert.ok(!(await page.content()).includes("\u202E"), "no direction control on the page");
  // Isolated: the name's own direction stays inside its cell.
  assert.equal(await rowOf(page, "conv-hostile").locator("td.customer bdi").first().textContent(), SHOWN_NAME);
  const link = rowOf(page, "conv-hostile").getByRole("link", { name: "conv-hostile" });
  assert.equal(await link.getAttribute("href"), `${stack.base}/sandbox/kustomer/app/customers/cust-hostile/event/conv-hostile`);
  assert.equal(await link.getAttribute("target"), "_blank");
  assert.equal(await link.getAttribute("rel"), "noopener");
  // A skipped one has no request: the link is built from the saved Kustomer URL.
  assert.equal(await rowOf(page, "conv-unassigned").getByRole("link").getAttribute("href"), `${stack.base}/sandbox/kustomer/app/conversations/conv-unassigned`);
  assert.match(await page.locator("#status").textContent(), /^Showing 8 of 8 deliveries\.$/);
  await page.screenshot({ path: new URL("deliveries.png", SHOTS).pathname, fullPage: true });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("in Kustomer's 1,024 px frame the log needs no sideways scroll: Outcome and Resend are in view", async () => {
  const page = await deliveriesPage("", { width: 1024, height: 800 });
  const overflow = await page.evaluate(() => {
    const wrap = document.querySelector(".table-wrap");
    return {
      page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      table: wrap.scrollWidth - wrap.clientWidth,
    };
  });
  assert.deepEqual(overflow, { page: 0, table: 0 }, "nothing wider than the frame");
  const inView = async (locator, what) => {
    const box = await locator.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 1024, `${what} at ${JSON.stringify(box)}`);
  };
  await inView(page.getByRole("columnheader", { name: "Outcome" }), "the Outcome column");
  await inView(page.getByRole("columnheader", { name: "Action" }), "the Action column");
  const resend = page.getByRole("button", { name: /^Resend the survey for / }).first();
  await inView(resend, "a row's Resend");
  for (const id of ["export", "resend-failed"]) await inView(page.locator(`#${id}`), id);
  await page.screenshot({ path: new URL("deliveries-1024.png", SHOTS).pathname, fullPage: true });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("filter to failures, resend them all after a confirmation, and see them scheduled again and sent", async () => {
  const page = await deliveriesPage();
  await page.getByLabel("State").selectOption("failed");
  await reload(page, () => page.getByRole("button", { name: "Show", exact: true }).click());
  assert.deepEqual((await rowIds(page)).sort(), [...ids.failed].sort());
  assert.match(page.url(), /[?&]state=failed(&|$)/);
  // The reason options come from the summary, in words, with their counts.
  const reasons = await page.getByLabel("Reason").locator("option").allTextContents();
  assert.ok(reasons.some((r) => /\(3\)$/.test(r) && !/_/.test(r)), reasons.join(" | "));

  const trigger = page.getByRole("button", { name: "Resend all failed in this view" });
  await trigger.click();
  const dialog = page.getByRole("dialog", { name: "Resend 3 failed surveys?" });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Resend 3");
  await page.screenshot({ path: new URL("deliveries-confirm.png", SHOTS).pathname });
  // Cancel first: nothing is sent, focus goes back.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  // The page writes this once the dialog's answer (a promise) settles: wait for it, not on luck.
  await page.locator("#bulk-result", { hasText: "Nothing was resent." }).waitFor();
  assert.equal(await page.locator("#bulk-result").textContent(), "Nothing was resent.");
  assert.equal(await page.evaluate(() => document.activeElement.id), "resend-failed");
  assert.equal((await entry(ids.failed[0])).state, "failed");

  await trigger.click();
  await dialog.waitFor();
  await reload(page, () => dialog.getByRole("button", { name: "Resend 3" }).click());
  await page.locator("#bulk-result", { hasText: "scheduled again" }).waitFor();
  assert.equal(await page.locator("#bulk-result").textContent(), "3 scheduled again.");
  for (const id of ids.failed) {
    const d = await entry(id);
    assert.ok(["scheduled", "retrying", "sent"].includes(d.state), `${id} is ${d.state}`);
    assert.equal(d.reason === "resend" || d.state === "sent", true, `${id}: ${d.reason}`);
  }
  for (const id of ids.failed) await reached(id, "sent");
  // The view of any state shows them sent now.
  await page.getByLabel("State").selectOption("");
  await reload(page, () => page.getByRole("button", { name: "Show", exact: true }).click());
  for (const id of ids.failed) assert.equal(await rowOf(page, id).locator("td").nth(3).textContent(), "Sent");
  assert.equal((await stack.stellaRequests(ids.failed[0])).length, 1, "one survey each");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("Resend on one row sends that survey again and the row shows its new state", async () => {
  await addConversations([conversationSet("conv-fail-4")]);
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 400, count: 1 } });
  await closeAll(["conv-fail-4"]);
  await reached("conv-fail-4", "failed");
  await stack.request("DELETE", "/sandbox/stella/faults");
  const page = await deliveriesPage();
  const row = rowOf(page, "conv-fail-4");
  assert.equal(await row.locator("td").nth(3).textContent(), "Failed");
  const before = await entry("conv-fail-4");
  await row.getByRole("button", { name: "Resend the survey for conv-fail-4" }).click();
  await page.locator("#status", { hasText: "conv-fail-4: scheduled again." }).waitFor();
  const state = await row.locator("td").nth(3).textContent();
  assert.ok(["Scheduled", "Sent"].includes(state), state);
  assert.equal(await row.getByRole("button").count(), 0, "nothing to resend any more");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "conv-fail-4", "focus on the row");
  await reached("conv-fail-4", "sent");
  assert.notEqual((await entry("conv-fail-4")).updatedAt, before.updatedAt);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("Kustomer's own query (parentUrl, id) stays on the page and goes with the links between pages", async () => {
  const kustomer = "parentUrl=https%3A%2F%2Facme.kustomerapp.com%2Fapp&id=frame-7";
  const page = await deliveriesPage(`?${kustomer}&state=sent`);
  const sent = (await edgeLog()).filter((d) => d.state === "sent").map((d) => d.conversationId);
  assert.ok(sent.length > 0);
  assert.deepEqual(await rowIds(page), sent, "the filter in the address applies; Kustomer's id is not a search");
  await page.getByLabel("Conversation id").fill("conv-chat");
  await reload(page, () => page.getByLabel("Conversation id").press("Enter"));
  const url = new URL(page.url());
  assert.deepEqual([url.searchParams.get("parentUrl"), url.searchParams.get("id"), url.searchParams.get("conversation")], ["https://acme.kustomerapp.com/app", "frame-7", "conv-chat"]);
  const settingsLink = new URL(await page.getByRole("link", { name: "Settings" }).evaluate((a) => a.href));
  assert.equal(settingsLink.search, `?${kustomer}`, "the settings page gets Kustomer's query, not the filters");
  await page.close();

  const settings = await open(browser, `${stack.base}/app/settings.html?${kustomer}`);
  await settings.waitForSelector("#f-stellaApiKey");
  const deliveriesLink = new URL(await settings.getByRole("link", { name: "Deliveries" }).evaluate((a) => a.href));
  assert.equal(deliveriesLink.search, `?${kustomer}`);
  assert.deepEqual(settings.problems, []);
  await settings.close();
});

test("search by conversation id; the view is in the page's address, so a reload keeps it", async () => {
  const page = await deliveriesPage();
  await page.getByLabel("Conversation id").fill("conv-chat");
  await reload(page, () => page.getByLabel("Conversation id").press("Enter"));
  assert.deepEqual(await rowIds(page), ["conv-chat"]);
  assert.match(page.url(), /[?&]conversation=conv-chat(&|$)/);
  await page.reload();
  await idle(page);
  assert.deepEqual(await rowIds(page), ["conv-chat"]);
  assert.equal(await page.getByLabel("Conversation id").inputValue(), "conv-chat");
  assert.equal(await page.locator(".tally.sent").textContent(), "1 Sent");
  // Unknown: said so.
  await page.getByLabel("Conversation id").fill("conv-nothing");
  await reload(page, () => page.getByLabel("Conversation id").press("Enter"));
  assert.equal(await page.locator("#status").textContent(), "No deliveries match these filters.");
  await reload(page, () => page.getByRole("button", { name: "Clear filters" }).click());
  assert.equal(page.url(), `${stack.base}/app/deliveries.html`);
  assert.ok((await rowIds(page)).length > 5);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("errors are shown in words and nothing throws: the edge refusing a period, the command failing", async () => {
  const page = await deliveriesPage();
  await page.getByLabel("Period").selectOption("custom");
  await page.getByLabel("From (first day)").fill("2026-11-21");
  await page.getByLabel("To (last day)").fill("2026-11-19");
  await reload(page, () => page.getByRole("button", { name: "Show", exact: true }).click());
  assert.equal(await page.locator("#status").getAttribute("class"), "error");
  assert.match(await page.locator("#status").textContent(), /^Could not read the delivery log: .*`to` must be later than `from`.*\(HTTP 400\)$/);
  assert.equal(await page.locator("#log tbody tr").count(), 0);
  // A date in the address that is no date.
  await page.goto(`${stack.base}/app/deliveries.html?period=custom&from=2026-02-31`);
  await idle(page);
  assert.match(await page.locator("#status").textContent(), /Enter the dates as year-month-day/);
  // The org's app secret is not the one the edge knows: the edge's 401, in words.
  const asUser = { authorization: `Bearer ${KUSTOMER_KEY}` };
  await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", { headers: asUser, body: { settings: { appSecret: "a-wrong-app-secret-0000" } } });
  try {
    await page.goto(`${stack.base}/app/deliveries.html`);
    await idle(page);
    assert.match(await page.locator("#status").textContent(), /^Could not read the delivery log: .+\(HTTP 401\)$/);
  } finally {
    await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", { headers: asUser, body: { settings: { appSecret: APP_SECRET } } });
  }
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("keyboard alone: filter, resend a row, open and leave the confirmation", async () => {
  const page = await deliveriesPage();
  await page.getByLabel("Period").focus();
  await page.keyboard.press("Tab"); // the custom dates are hidden: next is State
  assert.equal(await page.evaluate(() => document.activeElement.id), "f-state");
  await page.keyboard.type("Sk"); // type-ahead: "Skipped"
  assert.equal(await page.getByLabel("State").inputValue(), "skipped");
  for (const expected of ["f-reason", "f-agent", "f-id"]) {
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), expected);
  }
  await reload(page, () => page.keyboard.press("Enter"));
  assert.deepEqual((await rowIds(page)).sort(), [...ids.skipped].sort());
  // To the first row's Resend button by Tab alone (the skip for no email offers none).
  const target = "conv-unassigned";
  assert.equal(await rowOf(page, "conv-no-email").getByRole("button").count(), 0);
  for (let i = 0; i < 40 && !(await page.evaluate(() => document.activeElement.getAttribute("aria-label")))?.startsWith("Resend the survey"); i++) {
    await page.keyboard.press("Tab");
  }
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute("aria-label")), `Resend the survey for ${target}`);
  await page.keyboard.press("Enter");
  await page.locator("#status", { hasText: `${target}: scheduled again.` }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), target, "focus on the refreshed row");
  // It has no agent still: skipped again, after a fresh check.
  await waitFor(async () => {
    const d = await entry(target);
    return d.state === "skipped" && d.reason !== "resend";
  }, 20_000, `${target} to be checked again`);

  // The bulk action by keyboard: Enter opens the confirmation, Escape leaves it, focus returns.
  await page.getByLabel("State").focus();
  await page.keyboard.type("F"); // "Failed"
  await page.locator("#filters button[type=submit]").focus();
  await reload(page, () => page.keyboard.press("Enter"));
  await page.getByRole("button", { name: "Resend all failed in this view" }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#bulk-result", { hasText: "No failed surveys in this view" }).waitFor();
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 400, count: 1 } });
  await addConversations([conversationSet("conv-fail-5")]);
  await closeAll(["conv-fail-5"]);
  await reached("conv-fail-5", "failed");
  await stack.request("DELETE", "/sandbox/stella/faults");
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Resend 1 failed survey?" });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Resend 1");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  assert.equal(await page.evaluate(() => document.activeElement.id), "resend-failed");
  assert.equal((await entry("conv-fail-5")).state, "failed", "nothing resent");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("paging past 200 entries with the cursor: every entry once, none missed", async () => {
  const many = Array.from({ length: 210 }, (_, i) => `conv-page-${String(i).padStart(3, "0")}`);
  await addConversations(many.map((id) => conversationSet(id)));
  await closeAll(many);
  const expected = (await edgeLog()).map((d) => d.conversationId);
  assert.ok(expected.length > 210, String(expected.length));
  const page = await deliveriesPage("?period=all");
  const more = page.getByRole("button", { name: "Load more" });
  let pages = 1;
  while (await more.isVisible()) {
    await reload(page, () => more.click());
    pages++;
  }
  const shown = await rowIds(page);
  assert.equal(pages, Math.ceil(expected.length / 50));
  assert.equal(new Set(shown).size, shown.length, "no duplicates");
  assert.deepEqual(shown, expected, "none missed, in the edge's order");
  assert.match(await page.locator("#status").textContent(), new RegExp(`^Showing ${expected.length} of ${expected.length} deliveries\\.$`));
  assert.deepEqual(page.problems, []);
  await page.close();
  await settled();
});

test("CSV export of the view: every matching row, RFC 4180 quoting, formulas neutralized, UTF-8 with BOM", async () => {
  const page = await deliveriesPage("?period=all");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  assert.match(download.suggestedFilename(), /^stella-deliveries-\d{4}-\d{2}-\d{2}\.csv$/);
  const bytes = readFileSync(await download.path());
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], "UTF-8 BOM");
  const text = bytes.subarray(3).toString("utf8");
  const records = parseCsv(text);
  assert.deepEqual(records[0], [
    "Conversation id", "State", "Reason code", "Reason", "Attempts", "Closed at", "Send at", "Next attempt at", "Sent at",
    "Updated at", "Customer name", "Customer email", "Agent email", "Channel", "Outcome", "Conversation URL",
  ]);
  const log = await edgeLog();
  assert.deepEqual(records.slice(1).map((r) => r[0]), log.map((d) => d.conversationId), "every row of the view, past the first page");
  const hostile = records.find((r) => r[0] === "conv-hostile");
  assert.equal(hostile[10], `'${SHOWN_NAME}`, "a formula starts with an apostrophe");
  assert.ok(text.includes(`"'=HYPERLINK(""http://evil.example"",""click""), ""boss"" gnp.exe"`), "quotes doubled, the field quoted");
  assert.ok(!text.includes("\u202E"), "no direction control in the export");
  // Every field with a list separator of any locale is quoted.
  for (const line of text.split("\r\n")) {
    for (const m of line.matchAll(/(?:^|,)([^",]*;[^",]*)(?=,|$)/g)) assert.fail(`unquoted ";" in ${m[1]}`);
  }
  assert.equal(hostile[1], "sent");
  assert.ok(text.endsWith("\r\n") && !/[^\r]\n/.test(text), "CRLF line ends");
  for (const r of records.slice(1)) for (const cell of r) assert.ok(!/^[=+\-@\t\r]/.test(cell), cell);
  assert.match(await page.locator("#bulk-result").textContent(), new RegExp(`^Exported ${log.length} deliveries to stella-deliveries-`));

  // The view's filters apply: only failed ones (none now) then only conv-chat.
  await page.getByLabel("Conversation id").fill("conv-chat");
  await reload(page, () => page.getByLabel("Conversation id").press("Enter"));
  const [one] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  const only = parseCsv(readFileSync(await one.path()).subarray(3).toString("utf8"));
  assert.deepEqual(only.slice(1).map((r) => r[0]), ["conv-chat"]);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("no console errors, no serious axe violations, no saved key in the page or its answers; screenshots", async () => {
  if ((await edgeLog("&state=failed")).length === 0) {
    await stack.request("POST", "/sandbox/stella/faults", { body: { status: 400, count: 1 } });
    await addConversations([conversationSet("conv-fail-6")]);
    await closeAll(["conv-fail-6"]);
    await reached("conv-fail-6", "failed");
    await stack.request("DELETE", "/sandbox/stella/faults");
  }
  const page = await deliveriesPage("", { height: 1000 });
  await page.getByText("Numbers per day").click();
  assert.deepEqual(await seriousViolations(page), []);
  // The confirmation too.
  await page.getByLabel("State").selectOption("");
  await page.getByRole("button", { name: "Resend all failed in this view" }).click();
  await page.getByRole("dialog").waitFor();
  assert.deepEqual(await seriousViolations(page), [], "with the dialog open");
  await page.keyboard.press("Escape");
  const html = await page.content();
  const bodies = await Promise.all(page.bodies);
  assert.ok(bodies.some((b) => b.url.includes("list-deliveries") && b.text.includes("deliveries")), "the command runs were seen");
  for (const secret of SECRETS) {
    assert.ok(!html.includes(secret), `${secret} in the page`);
    for (const b of bodies) assert.ok(!b.text.includes(secret), `${secret} in ${b.url}`);
  }
  // The settings page links here, and back.
  const settings = await open(browser, `${stack.base}/app/settings.html`);
  await settings.getByRole("navigation", { name: "Stella Connect" }).getByRole("link", { name: "Deliveries" }).click();
  await settings.waitForURL(/deliveries\.html$/);
  await idle(settings);
  assert.deepEqual(settings.problems, []);
  await settings.close();
  assert.deepEqual(page.problems, []);
  await page.close();
});

/** RFC 4180 records of a CSV text. */
function parseCsv(text) {
  const records = [];
  let record = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") record.push(field), (field = "");
    else if (c === "\r" && text[i + 1] === "\n") record.push(field), records.push(record), (record = []), (field = ""), i++;
    else field += c;
  }
  return records;
}
