// The settings page's "Forget a customer" (its confirm step) and audit list in Debian's
// Chromium, against the real local stack: Cancel changes nothing; Forget strips the customer's
// entries and the audit list shows the forget first, by its count, never by whom.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Stack, waitFor } from "../http/harness.mjs";
import { launch, open, seriousViolations } from "./browser.mjs";

let stack;
let browser;
before(async () => {
  stack = await new Stack().start();
  browser = await launch();
  await stack.request("POST", "/sandbox/kustomer/reset");
  await stack.request("POST", "/sandbox/stella/reset");
  await stack.setDelay(1);
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

const entry = async (id) => {
  const r = await stack.request("GET", `/v1/deliveries?conversationId=${id}`, { headers: stack.orgHeaders() });
  return r.body.deliveries[0];
};

test("forgetting a customer asks first, then the audit list shows it newest first", async () => {
  const id = await stack.newConversation();
  await stack.close(id);
  await waitFor(async () => (await entry(id))?.state === "sent", 20_000, "sent");
  assert.equal((await entry(id)).customerEmail, "ann.lee@example.com");

  const page = await open(browser, `${stack.base}/app/settings.html`);
  await page.locator("#audit li").first().waitFor();
  const kinds = () => page.locator("#audit li").evaluateAll((items) => items.map((li) => li.dataset.kind));
  assert.ok((await kinds()).includes("settings_changed"), String(await kinds()));
  assert.match(await page.locator("#audit-sweep").textContent(), /checked daily/);

  const input = page.getByLabel("E-mail address or Kustomer customer id");
  await input.fill("ann.lee@example.com");
  await page.getByRole("button", { name: "Forget…" }).click();
  const dialog = page.locator("#forget-confirm");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /cannot be undone/);
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator("#forget-result", { hasText: "cancelled" }).waitFor();
  assert.equal((await entry(id)).customerEmail, "ann.lee@example.com", "Cancel changes nothing");

  await page.getByRole("button", { name: "Forget…" }).click();
  await dialog.waitFor();
  await page.locator("#forget-yes").click();
  await page.locator("#forget-result", { hasText: "Forgotten." }).waitFor();
  assert.match(await page.locator("#forget-result").textContent(), /1 entries changed/);
  assert.equal((await entry(id)).customerEmail, "removed on request");
  await waitFor(async () => (await kinds())[0] === "forget", 5_000, "the forget listed first");
  const audit = await page.locator("#audit").textContent();
  assert.match(audit, /A customer was forgotten on request: 1 entries changed/);
  assert.ok(!audit.includes("ann.lee"), audit);
  assert.deepEqual(await seriousViolations(page), []);
  assert.deepEqual(page.problems, []);
  await page.close();
});
