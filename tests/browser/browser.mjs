// Debian's Chromium through playwright-core, for the page tests: every console error, page
// error and failed request is collected, so a test can assert there were none.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { KUSTOMER_KEY, STELLA_KEY } from "../http/harness.mjs";

const AXE = readFileSync(new URL("../../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
// Without the background-networking flags Chromium floods the closed network.
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ARGS });
}

/** A new page whose problems land in `page.problems`. */
export async function open(browser, url, { width = 900, height = 900 } = {}) {
  const page = await browser.newPage({ viewport: { width, height } });
  page.problems = [];
  page.on("console", (m) => m.type() === "error" && page.problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  // A request the browser itself cancels because the page reloads or moves on (ERR_ABORTED) is
  // no failure of the page's: which requests are still in flight then is down to timing.
  page.on("requestfailed", (r) => {
    const error = r.failure()?.errorText;
    if (error !== "net::ERR_ABORTED") page.problems.push(`request failed: ${r.url()} ${error}`);
  });
  await page.goto(url);
  return page;
}

/** axe-core's violations of impact "serious" or "critical". Evaluated through the DevTools
 * protocol, so the page's Content-Security-Policy stays on. */
export async function seriousViolations(page) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => (await window.axe.run(document)).violations);
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

/** Types the sandboxes' values into the settings form (`api`: the Kustomer sandbox's URL). */
export async function fillSettings(page, api, { stellaKey = STELLA_KEY, kustomerKey = KUSTOMER_KEY, seconds = "1" } = {}) {
  await page.getByLabel("Stella Connect API key").fill(stellaKey);
  await page.getByLabel("Kustomer API key").fill(kustomerKey);
  await page.getByLabel("Kustomer API URL").fill(api);
  await page.getByLabel("Kustomer URL", { exact: true }).fill(api);
  await page.getByLabel("Seconds until send").fill(seconds);
}
