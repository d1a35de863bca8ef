// The admin's Deliveries page: the delivery log read through the app's `list-deliveries`
// command (filters, summary, paging by cursor, CSV export), and failed or skipped surveys sent
// again through `resend` and `resend-many`. Kustomer runs the commands with the saved keys, so
// this page never holds one. No business rules here: the edge decides what matches a filter,
// what can be resent, the states and their words, each conversation's link, and how much one
// read or resend may hold (its answer's `states`, `resendable`, `conversationUrl`, `limits`).
import { start, command, describeError, h, linkPages, linkText } from "./app.js";
import { csvText } from "./csv.js";

const PAGE_ROWS = 50; // rows per page shown
const MAX_COLLECTED = 10_000; // the most rows an export or "Resend all failed" collects
// This page's URL query (not `id` or `parentUrl`: Kustomer gives its frames those).
const FILTERS = ["period", "from", "to", "state", "reason", "agent", "conversation"];
const DEFAULT_PERIOD = "7";
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const $ = (id) => document.getElementById(id);
const form = $("filters");
const tbody = document.querySelector("#log tbody");
let Kustomer;
let filters = {};
let rows = []; // the rows shown, in order
let cursor = null; // where the next page starts
let reasons = {}; // reason code → words, from the edge
let statuses = {}; // an outcome's delivery status code → words, from the edge
let states = []; // [{state, words, pending, resendable}] in the summary's order, from the edge
let limits = { perRead: PAGE_ROWS, perResend: 1 }; // the most rows a read, ids a resend, from the edge
let summary = null;
let reading = 0; // the latest read: an older one's answer is dropped

main().catch((e) => status("error", `The Deliveries page could not start: ${describeError(e)}`));

async function main() {
  linkPages(FILTERS);
  Kustomer = await start();
  await new Promise((resolve) => Kustomer.initialize(resolve));
  form.addEventListener("submit", guard(apply));
  $("f-period").addEventListener("change", showCustomDates);
  $("clear").addEventListener("click", guard(clear));
  $("more").addEventListener("click", guard(working(more)));
  $("resend-failed").addEventListener("click", guard(working(resendAllFailed)));
  $("export").addEventListener("click", guard(working(exportCsv)));
  $("confirm-yes").addEventListener("click", () => $("confirm").close("confirm"));
  $("confirm-no").addEventListener("click", () => $("confirm").close("cancel"));
  filters = fromUrl();
  toForm(filters);
  await load();
}

/** An event handler whose failure is shown, never thrown; it gets the event and the element
 * it was dispatched to (`currentTarget` is gone once the dispatch is over). */
function guard(handler) {
  return (event) => {
    const element = event?.currentTarget;
    Promise.resolve()
      .then(() => handler(event, element))
      .catch((e) => status("error", `Something went wrong: ${describeError(e)}`));
  };
}

/** A button's handler that does not run again while it runs; the button stays focusable
 * (a disabled one would drop the keyboard's focus), marked aria-disabled meanwhile. */
function working(handler) {
  return async (event, button) => {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    try {
      await handler(event, button);
    } finally {
      button.removeAttribute("aria-disabled");
    }
  };
}

// ---- filters: the form, the page's URL and the command's arguments --------------------------

function fromUrl() {
  const query = new URLSearchParams(location.search);
  const f = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? ""]));
  f.period ||= DEFAULT_PERIOD;
  return f;
}

/** Keeps the filters in the page's URL (so a reload shows the same view); other parameters,
 * such as Kustomer's own, are left as they are. */
function toUrl(f) {
  const query = new URLSearchParams(location.search);
  for (const name of FILTERS) {
    if (f[name] && !(name === "period" && f[name] === DEFAULT_PERIOD)) query.set(name, f[name]);
    else query.delete(name);
  }
  const search = query.toString();
  history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}${location.hash}`);
}

function toForm(f) {
  for (const name of FILTERS) {
    const input = form.elements[name];
    if (input.tagName === "SELECT" && f[name] && ![...input.options].some((o) => o.value === f[name])) {
      input.append(h("option", { value: f[name] }, f[name])); // named in the URL; words come with the log
    }
    input.value = f[name];
  }
  showCustomDates();
}

function fromForm() {
  return Object.fromEntries(FILTERS.map((name) => [name, form.elements[name].value.trim()]));
}

function showCustomDates() {
  const custom = $("f-period").value === "custom";
  $("custom-from").hidden = !custom;
  $("custom-to").hidden = !custom;
}

/** A local day ("YYYY-MM-DD") as the Date of its midnight; null when it is not one. */
function localDay(text) {
  if (!DATE.test(text)) return null;
  const [y, m, d] = text.split("-").map(Number);
  const day = new Date(y, m - 1, d);
  return day.getFullYear() === y && day.getMonth() === m - 1 && day.getDate() === d ? day : null;
}

const addDays = (date, n) => new Date(date.getFullYear(), date.getMonth(), date.getDate() + n);
const dayText = (date) =>
  `${String(date.getFullYear()).padStart(4, "0")}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;

/** The close-time window of the filters: local midnights, `to` exclusive. Throws a message a
 * person can act on when a custom date is not a date. */
function closeWindow(f) {
  if (f.period === "all") return {};
  if (f.period === "custom") {
    const from = f.from ? localDay(f.from) : undefined;
    const last = f.to ? localDay(f.to) : undefined;
    if (from === null || last === null) throw { message: "Enter the dates as year-month-day, such as 2026-11-20." };
    return { from, to: last && addDays(last, 1) };
  }
  const days = f.period === "today" ? 1 : Number(f.period) > 0 ? Number(f.period) : Number(DEFAULT_PERIOD);
  const today = new Date();
  return { from: addDays(new Date(today.getFullYear(), today.getMonth(), today.getDate()), 1 - days) };
}

/** The `list-deliveries` arguments for the filters (every one, empty when not given). */
function args(f, extra = {}) {
  const { from, to } = closeWindow(f);
  return {
    state: f.state,
    reason: f.reason,
    agent: f.agent,
    from: from ? from.toISOString() : "",
    to: to ? to.toISOString() : "",
    conversationId: f.conversation,
    limit: String(PAGE_ROWS),
    cursor: "",
    utcOffsetMinutes: String(-new Date().getTimezoneOffset()),
    ...extra,
  };
}

async function apply(event) {
  event.preventDefault();
  filters = fromForm();
  toUrl(filters);
  await load();
}

async function clear() {
  filters = { ...Object.fromEntries(FILTERS.map((n) => [n, ""])), period: DEFAULT_PERIOD };
  toForm(filters);
  toUrl(filters);
  await load();
  form.elements.period.focus();
}

// ---- reading the log -------------------------------------------------------------------------

/** Reads the first page and the summary for the filters, and draws them. */
/** The app's link as a banner, with the oldest held closes listed (the edge's `link`). */
function showLink(link) {
  const text = linkText(link);
  const held = link?.heldCloses ?? [];
  $("link-note").replaceChildren(
    ...(text ? [text] : []),
    ...(held.length
      ? [h("ul", { class: "held" }, held.map((c) => h("li", {}, `${c.conversationId}: closed ${c.closedAt}, held since ${c.heldAt}, dropped at ${c.expiresAt} unless the app is linked`)))]
      : []),
  );
}

async function load() {
  const read = ++reading;
  cursor = null; // no "Load more" of the previous view while this one loads
  showMore();
  status("busy", "Loading the delivery log…");
  setBusy(true);
  try {
    const answer = await command(Kustomer, "list-deliveries", { args: args(filters) });
    if (read !== reading) return;
    reasons = answer.reasons ?? {};
    statuses = answer.deliveryStatuses ?? {};
    states = answer.states ?? states;
    limits = answer.limits ?? limits;
    summary = answer.summary ?? null;
    rows = answer.deliveries ?? [];
    cursor = answer.nextCursor ?? null;
    $("retention").textContent = answer.retentionDays ? `Entries are kept for ${answer.retentionDays} days after their last change.` : "";
    const outcomes = answer.outcomes ?? {};
    $("outcomes-note").textContent = outcomes.lastError
      ? `Survey outcomes could not be read from Agent Connect lately: ${outcomes.lastError}`
      : outcomes.reading
        ? ""
        : "Outcomes (delivered, suppressed, ratings) appear once the Stella Connect API secret is in the app's settings.";
    showLink(answer.link);
    // The edge's words while the org's storage is near its ceiling.
    $("storage-note").textContent = answer.storage?.warning ?? "";
    // Agent Connect records that did not match the survey sent, in the edge's words.
    $("records-note").textContent = outcomes.recordsNote ?? "";
    drawSummary();
    drawOptions();
    drawRows();
    status("ok", shownText());
  } catch (e) {
    if (read !== reading) return;
    rows = [];
    cursor = null;
    summary = null;
    drawSummary();
    drawRows();
    showLink(e?.body?.link);
    status("error", `Could not read the delivery log: ${describeError(e)}`);
  } finally {
    if (read === reading) setBusy(false);
  }
}

/** The next page, after the last row shown. */
async function more() {
  if (!cursor) return;
  const read = reading;
  status("busy", "Loading more…");
  try {
    const answer = await command(Kustomer, "list-deliveries", { args: args(filters, { cursor }) });
    if (read !== reading) return;
    const added = answer.deliveries ?? [];
    rows.push(...added);
    cursor = answer.nextCursor ?? null;
    tbody.append(...added.map(row));
    showMore();
    status("ok", shownText());
    // Focus stays on "Load more" while there is more; else it goes to the first new row.
    if (!cursor && added.length) focusRow(tbody.children[rows.length - added.length]);
  } catch (e) {
    status("error", `Could not load more: ${describeError(e)}`);
  }
}

/** Every row matching `f` (paging through with the cursor), at most MAX_COLLECTED. */
async function collect(f, what) {
  const found = [];
  let after = "";
  do {
    status("busy", `Reading ${what}… ${found.length ? `${found.length} so far` : ""}`.trim());
    const answer = await command(Kustomer, "list-deliveries", { args: args(f, { limit: String(limits.perRead), cursor: after }) });
    found.push(...(answer.deliveries ?? []));
    after = answer.nextCursor ?? "";
  } while (after && found.length < MAX_COLLECTED);
  return { rows: found.slice(0, MAX_COLLECTED), truncated: Boolean(after) || found.length > MAX_COLLECTED };
}

function setBusy(busy) {
  document.querySelector(".log").setAttribute("aria-busy", String(busy));
}

function status(kind, text) {
  const node = $("status");
  node.className = kind;
  node.textContent = text;
  Kustomer?.resize?.();
}

/** The number of entries matching the filters, from the summary (which ignores the state). */
function total() {
  if (!summary?.byState) return null;
  const shown = filters.state ? filters.state.split(",") : states.map((s) => s.state);
  return shown.reduce((n, s) => n + (summary.byState[s] ?? 0), 0);
}

function shownText() {
  const all = total();
  if (!rows.length) return "No deliveries match these filters.";
  const of = all !== null && all >= rows.length ? ` of ${all}` : "";
  return `Showing ${rows.length}${of} ${plural(all ?? rows.length, "delivery", "deliveries")}.`;
}

const plural = (n, one, many) => (n === 1 ? one : many);

// ---- drawing ---------------------------------------------------------------------------------

function drawSummary() {
  $("summary").hidden = !summary;
  if (!summary) return;
  const byState = summary.byState ?? {};
  $("tallies").replaceChildren(
    ...states.map((s) => h("li", { class: `tally ${s.state}` }, h("span", { class: "count" }, String(byState[s.state] ?? 0)), " ", s.words)),
  );
  const days = chartDays(summary.days ?? []);
  const most = Math.max(1, ...days.map((d) => d.sent + d.skipped + d.failed + d.pending));
  $("chart").replaceChildren(
    ...days.map((d) => {
      const bar = h("span", { class: "bar" });
      for (const part of ["pending", "failed", "skipped", "sent"]) {
        if (!d[part]) continue;
        const segment = h("span", { class: `segment ${part}` });
        segment.style.height = `${(d[part] / most) * 100}%`; // CSSOM: the CSP allows no style attribute
        bar.append(segment);
      }
      return h(
        "div",
        { class: "day", role: "img", "aria-label": `${dayWords(d.day)}: ${d.sent} sent, ${d.skipped} skipped, ${d.failed} failed, ${d.pending} pending` },
        bar,
        h("span", { class: "day-label", "aria-hidden": "true" }, shortDay(d.day)),
      );
    }),
  );
  $("per-day").replaceChildren(
    h(
      "table",
      { class: "numbers" },
      h("caption", {}, "Surveys per day"),
      h("thead", {}, h("tr", {}, ...["Day", "Sent", "Skipped", "Failed", "Pending"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        ...days.map((d) =>
          h("tr", {}, h("th", { scope: "row" }, dayWords(d.day)), ...["sent", "skipped", "failed", "pending"].map((k) => h("td", { class: "num" }, String(d[k])))),
        ),
      ),
    ),
  );
}

/** The summary's days, with the empty ones of a bounded window of up to 62 days filled in. */
function chartDays(days) {
  const known = new Map(days.map((d) => [d.day, { sent: 0, skipped: 0, failed: 0, pending: 0, ...d }]));
  let from;
  let to;
  try {
    ({ from, to } = closeWindow(filters));
  } catch {
    return [...known.values()];
  }
  if (!from) return [...known.values()];
  const last = to ? addDays(to, -1) : new Date();
  const filled = [];
  for (let day = from; day <= last && filled.length <= 62; day = addDays(day, 1)) {
    const text = dayText(day);
    filled.push(known.get(text) ?? { day: text, sent: 0, skipped: 0, failed: 0, pending: 0 });
  }
  return filled.length > 62 ? [...known.values()] : filled;
}

const dayWords = (day) => localDay(day)?.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" }) ?? day;
const shortDay = (day) => localDay(day)?.toLocaleDateString(undefined, { month: "numeric", day: "numeric" }) ?? day;

/** The reason and agent choices: the summary's, with the chosen one kept. */
function drawOptions() {
  if (!summary) return;
  const fill = (select, anyText, choices) => {
    const chosen = select.value;
    if (chosen && !choices.some(([value]) => value === chosen)) choices.unshift([chosen, chosen]);
    select.replaceChildren(h("option", { value: "" }, anyText), ...choices.map(([value, text]) => h("option", { value }, text)));
    select.value = chosen;
  };
  fill($("f-reason"), "Any reason", (summary.byReason ?? []).map((r) => [r.reason, `${reasons[r.reason] ?? r.reason} (${r.count})`]));
  fill($("f-agent"), "Any agent", (summary.byAgent ?? []).map((a) => [a.agent, `${a.agent} (${a.count})`]));
}

function drawRows() {
  tbody.replaceChildren(...rows.map(row));
  $("empty").hidden = rows.length > 0;
  showMore();
}

function showMore() {
  $("more").hidden = !cursor;
  Kustomer?.resize?.();
}

const reasonWords = (d) => d.message || reasons[d.reason] || d.reason || "";

/** A link to the conversation in Kustomer, as the edge gives it ("" when it has none). */
const conversationHref = (d) => d.conversationUrl ?? "";

/** The edge's entry for a state (its words, whether it is pending); undefined for one unknown. */
const stateOf = (name) => states.find((s) => s.state === name);

/** Agent Connect's outcome of a survey, once the log carries one (its delivery status, and
 * the customer's rating); empty until then. */
function outcomeText(d) {
  const o = d.outcome;
  if (!o || typeof o !== "object") return "";
  const rated = Number.isInteger(o.rating) ? `rated ${o.rating} of 5` : null;
  const words = statuses[o.deliveryStatus] ?? (typeof o.deliveryStatus === "string" ? o.deliveryStatus.replaceAll("_", " ") : null);
  const status = words && words[0].toUpperCase() + words.slice(1);
  const unwritten = o.writeError ? `not written onto the conversation: ${o.writeError}` : null;
  return [status, rated, unwritten].filter(Boolean).join("; ");
}

const formatter = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
function time(iso) {
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime()) ? h("time", { datetime: iso }, formatter.format(date)) : null;
}

function nextOrSent(d) {
  if (d.sentAt) return ["Sent ", time(d.sentAt)];
  if (d.nextAttemptAt && stateOf(d.state)?.pending) {
    return [d.state === "retrying" ? "Next attempt " : "Due ", time(d.nextAttemptAt)];
  }
  return "—";
}

function row(d) {
  const href = conversationHref(d);
  const id = d.conversationId;
  const or = (text) => text || "—";
  return h(
    "tr",
    { "data-id": id },
    h("th", { scope: "row" }, href ? h("a", { href, target: "_blank", rel: "noopener" }, id) : id),
    h(
      "td",
      { class: "customer" },
      d.customerName || d.customerEmail
        ? [d.customerName ? h("bdi", {}, d.customerName) : "", d.customerEmail ? h("bdi", { class: "email" }, d.customerEmail) : null]
        : "—",
    ),
    h("td", { class: "agent" }, d.agentEmail ? h("bdi", {}, d.agentEmail) : "—"),
    h("td", {}, d.channel ? h("bdi", {}, d.channel) : "—"),
    h("td", {}, h("span", { class: `delivery ${d.state}` }, stateOf(d.state)?.words ?? d.state)),
    h("td", { class: "reason" }, h("bdi", {}, or(reasonWords(d)))),
    h("td", { class: "num" }, String(d.attempts ?? 0)),
    h("td", { class: "when" }, time(d.closedAt) ?? "—"),
    h("td", {}, nextOrSent(d)),
    h("td", { class: "outcome" }, h("bdi", {}, or(outcomeText(d)))),
    h(
      "td",
      { class: "action" },
      d.resendable === true // the edge says where a resend can change something
        ? h("button", { type: "button", class: "small", "aria-label": `Resend the survey for ${id}`, onclick: guard(working(() => resendOne(id))) }, "Resend")
        : "",
    ),
  );
}

// ---- resending -------------------------------------------------------------------------------

async function resendOne(id) {
  status("busy", `Resending the survey for ${id}…`);
  try {
    const answer = await command(Kustomer, "resend", { body: { conversationIds: [id] } });
    const result = answer?.results?.[0] ?? answer;
    if (result?.status !== "scheduled") {
      status("error", `${id} was not resent: ${result?.message ?? "no reason given"}`);
      return;
    }
    await refreshRow(id);
    status("ok", `${id}: scheduled again.`);
    refreshSummary();
  } catch (e) {
    status("error", `${id} was not resent: ${describeError(e)}`);
  }
}

/** Reads one conversation's entry again and redraws its row; focus goes to the row. */
async function refreshRow(id) {
  const answer = await command(Kustomer, "list-deliveries", { args: { conversationId: id, limit: "1" } });
  const fresh = answer.deliveries?.[0];
  const at = rows.findIndex((d) => d.conversationId === id);
  if (!fresh || at < 0) return;
  rows[at] = fresh;
  const old = tbody.querySelector(`tr:nth-child(${at + 1})`);
  const replacement = row(fresh);
  old.replaceWith(replacement);
  focusRow(replacement);
}

/** Focuses a row's conversation link (or its header cell when it has none). */
function focusRow(tr) {
  const th = tr.querySelector("th");
  const link = th.querySelector("a");
  if (!link) th.tabIndex = -1;
  (link ?? th).focus();
}

/** The summary again, for the filters (after a resend changed the counts). */
async function refreshSummary() {
  const read = reading;
  try {
    const answer = await command(Kustomer, "list-deliveries", { args: args(filters, { limit: "1" }) });
    if (read !== reading) return; // the view changed meanwhile: its own read draws it
    summary = answer.summary ?? summary;
    drawSummary();
  } catch {
    // the counts stay as they were until the next read
  }
}

async function resendAllFailed(event, trigger) {
  const out = $("bulk-result");
  out.className = "";
  out.textContent = "";
  const resendable = states.filter((s) => s.resendable).map((s) => s.state).join(","); // "failed"
  if (!resendable) {
    out.textContent = "The delivery log has not been read yet: nothing was resent.";
    return;
  }
  if (filters.state && !filters.state.split(",").some((s) => stateOf(s)?.resendable)) {
    out.textContent = "No failed surveys in this view: the state filter leaves them out.";
    return;
  }
  let found;
  try {
    found = await collect({ ...filters, state: resendable }, "the failed surveys");
  } catch (e) {
    status("error", `Could not find the failed surveys: ${describeError(e)}`);
    return;
  }
  status("ok", shownText());
  const ids = found.rows.map((d) => d.conversationId);
  if (!ids.length) {
    out.textContent = "No failed surveys in this view.";
    return;
  }
  const n = ids.length;
  const surveys = `${n} failed ${plural(n, "survey", "surveys")}`;
  const sure = await confirm(
    `Resend ${surveys}?`,
    `${found.truncated ? `The first ${n} failed surveys matching the filters` : `Every failed survey matching the filters (${n})`} will be checked again, as at their first try, and sent soon.`,
    `Resend ${n}`,
    trigger,
  );
  if (!sure) {
    out.textContent = "Nothing was resent.";
    return;
  }
  out.textContent = `Resending ${surveys}…`;
  const results = [];
  let failure = null;
  for (let i = 0; i < ids.length && !failure; i += limits.perResend) {
    const chunk = ids.slice(i, i + limits.perResend);
    try {
      const answer = await command(Kustomer, "resend-many", { body: { conversationIds: chunk } });
      results.push(...(answer.results ?? []));
    } catch (e) {
      failure = `${ids.length - i} could not be resent: ${describeError(e)}`;
    }
  }
  out.className = failure ? "error" : "ok";
  out.textContent = resendSummary(results, failure);
  await load();
}

/** "12 scheduled again, 1 not resendable: conv-x (why)." */
function resendSummary(results, failure) {
  const scheduled = results.filter((r) => r.status === "scheduled").length;
  const parts = [`${scheduled} scheduled again`];
  for (const [status, words] of [
    ["not_resendable", "not resendable"],
    ["not_found", "not found"],
  ]) {
    const refused = results.filter((r) => r.status === status);
    if (refused.length) parts.push(`${refused.length} ${words}: ${refused.map((r) => `${r.conversationId}${r.message ? ` (${r.message})` : ""}`).join("; ")}`);
  }
  const other = results.filter((r) => !["scheduled", "not_resendable", "not_found"].includes(r.status));
  if (other.length) parts.push(`${other.length} other: ${other.map((r) => `${r.conversationId} (${r.message ?? r.status})`).join("; ")}`);
  if (failure) parts.push(failure);
  return `${parts.join(", ")}.`;
}

/** Asks in the page's own dialog (Kustomer's frame may block window.confirm); true to go on.
 * Focus starts on the action and goes back to `trigger`. */
function confirm(title, text, action, trigger) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  $("confirm-yes").focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        trigger.focus();
        resolve(dialog.returnValue === "confirm");
      },
      { once: true },
    );
  });
}

// ---- CSV export ------------------------------------------------------------------------------

const CSV_COLUMNS = [
  ["Conversation id", (d) => d.conversationId],
  ["State", (d) => d.state],
  ["Reason code", (d) => d.reason],
  ["Reason", reasonWords],
  ["Attempts", (d) => d.attempts],
  ["Closed at", (d) => d.closedAt],
  ["Send at", (d) => d.sendAt],
  ["Next attempt at", (d) => d.nextAttemptAt],
  ["Sent at", (d) => d.sentAt],
  ["Updated at", (d) => d.updatedAt],
  ["Customer name", (d) => d.customerName],
  ["Customer email", (d) => d.customerEmail],
  ["Agent email", (d) => d.agentEmail],
  ["Channel", (d) => d.channel],
  ["Outcome", outcomeText],
  ["Conversation URL", conversationHref],
];

/** The export's text: a header, then one line per entry. */
const csv = (list) => csvText([CSV_COLUMNS.map(([name]) => name), ...list.map((d) => CSV_COLUMNS.map(([, get]) => get(d)))]);

async function exportCsv() {
  const out = $("bulk-result");
  out.className = "";
  try {
    const found = await collect(filters, "the deliveries to export");
    const name = `stella-deliveries-${dayText(new Date())}.csv`;
    const url = URL.createObjectURL(new Blob([`\uFEFF${csv(found.rows)}`], { type: "text/csv;charset=utf-8" }));
    const link = h("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    status("ok", shownText());
    out.className = "ok";
    out.textContent = `Exported ${found.rows.length} ${plural(found.rows.length, "delivery", "deliveries")} to ${name}${found.truncated ? ` (the first ${MAX_COLLECTED})` : ""}.`;
  } catch (e) {
    status("error", `Could not export: ${describeError(e)}`);
  }
}
