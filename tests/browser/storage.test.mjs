// The storage warning on the pages, in Debian's Chromium against the real local stack: with a
// STORAGE_CEILING_BYTES smaller than a new org object's tables, the edge's words (never the
// page's own) show on the Deliveries page and on the settings page.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Stack, waitFor } from "../http/harness.mjs";
import { launch, open } from "./browser.mjs";

let stack;
let browser;
let warning;

before(async () => {
  stack = await new Stack({ env: { STORAGE_CEILING_BYTES: "20000" } }).start();
  browser = await launch();
  const answer = await waitFor(async () => {
    const r = await stack.request("GET", "/v1/deliveries?limit=1", { headers: stack.orgHeaders() });
    return r.status === 200 && r.body;
  }, 20_000, "the log");
  warning = answer.storage.warning;
  assert.match(warning, /storage ceiling/);
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

test("the Deliveries page and the settings page show the edge's storage warning", async () => {
  const deliveries = await open(browser, `${stack.base}/app/deliveries.html`);
  await deliveries.waitForFunction((w) => document.querySelector("#storage-note")?.textContent === w, warning);
  await deliveries.close();
  const settings = await open(browser, `${stack.base}/app/settings.html`);
  await settings.waitForFunction((w) => document.querySelector("#storage")?.textContent === w, warning);
  assert.deepEqual(settings.problems, []);
  await settings.close();
});
