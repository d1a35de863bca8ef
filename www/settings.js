// The settings page: draws the form from the core's field table, validates every change with
// the core, saves through the Cards SDK, and checks the keys or previews a survey through the
// app's commands, which Kustomer runs with the saved keys. Keys are never shown again once saved.
import { start, core, options, kustomer, command, describeError, h, linkPages, linkText } from "./app.js";

// What the core says instead of copies here: the mask Kustomer answers for a saved key, the
// settings each command leaves out and the keys it needs, and the type each kind is saved as.
let model;
const form = document.getElementById("settings");
const byKey = new Map(); // key → {field, input, error}
const savedKeys = new Set(); // secret settings Kustomer holds
const touched = new Set();
let hidden = []; // settings the page fills in itself (the app secret), never drawn
let linked = false; // Kustomer holds the app secret's fingerprint (the edge trusts only it)
let Kustomer;

main().catch((e) => status("error", `The settings page could not start: ${e.message}`));

async function main() {
  linkPages();
  Kustomer = await start();
  await new Promise((resolve) => Kustomer.initialize(resolve));
  model = core.pageModel();
  const fields = core.settingsFields();
  hidden = fields.filter((f) => f.hidden);
  drawForm(fields.filter((f) => !f.hidden));
  try {
    const doc = await kustomer(Kustomer, "/v1/apps/settings");
    fill(doc?.data?.attributes?.settings ?? {});
  } catch (e) {
    fill({});
    status("error", `Could not read the saved settings: ${describeError(e)}. You can still fill them in and save.`);
  }
  validate();
  if (linked) refreshLink();
  document.getElementById("preview").addEventListener("submit", preview);
  document.getElementById("forget").addEventListener("submit", forget);
  document.getElementById("forget-yes").addEventListener("click", () => document.getElementById("forget-confirm").close("confirm"));
  document.getElementById("forget-no").addEventListener("click", () => document.getElementById("forget-confirm").close("cancel"));
  if (linked) refreshAudit();
  Kustomer.resize?.();
}

// ---- the form ----------------------------------------------------------------------------

function drawForm(fields) {
  const row = (field) => {
    const id = `f-${field.key}`;
    const secret = field.kind === "secret";
    const input = h("input", {
      id,
      name: field.key,
      type: field.kind === "boolean" ? "checkbox" : secret ? "password" : "text",
      inputmode: field.kind === "integer" ? "numeric" : undefined,
      autocomplete: secret ? "off" : undefined,
      spellcheck: "false",
      "aria-describedby": `help-${field.key} error-${field.key}`,
      oninput: () => changed(field.key),
      onchange: () => changed(field.key),
    });
    const error = h("p", { id: `error-${field.key}`, class: "error" });
    const show = secret
      ? h("button", { type: "button", class: "reveal", "aria-pressed": "false", "aria-controls": id, onclick: reveal }, "Show")
      : null;
    byKey.set(field.key, { field, input, error });
    const label = h("label", { for: id }, field.label, field.required ? null : h("span", { class: "muted" }, " (optional)"));
    return field.kind === "boolean"
      ? h("div", { class: "field check" }, input, label, h("p", { id: `help-${field.key}`, class: "help" }, field.help), error)
      : h("div", { class: "field" }, label, h("div", { class: "control" }, input, show), h("p", { id: `help-${field.key}`, class: "help" }, field.help), error);
  };
  form.replaceChildren(
    ...fields.filter((f) => !f.advanced).map(row),
    h("details", { class: "advanced" }, h("summary", {}, "Advanced settings"), ...fields.filter((f) => f.advanced).map(row)),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: checkConnection }, "Check connection"),
      h("button", { type: "button", onclick: relink }, "Re-link the app"),
    ),
    h("div", { id: "link", role: "status", "aria-live": "polite" }),
    h("p", { id: "storage", class: "banner", role: "status" }),
    h("p", { id: "status", role: "status", "aria-live": "polite" }),
    h("ul", { id: "checks", class: "checks", "aria-live": "polite" }),
  );
  form.addEventListener("submit", save);
}

function reveal(event) {
  const button = event.currentTarget;
  const input = document.getElementById(button.getAttribute("aria-controls"));
  const shown = input.type === "password";
  input.type = shown ? "text" : "password";
  button.setAttribute("aria-pressed", String(shown));
  button.textContent = shown ? "Hide" : "Show";
}

/** Puts saved settings in the form; saved keys stay blank, with a note that one is saved. */
function fill(settings) {
  for (const field of hidden) if (settings[field.key]) savedKeys.add(field.key);
  linked = Boolean(settings[core.appLink().fingerprintSetting]) && savedKeys.has(core.appLink().secretSetting);
  banner(linked ? null : { linked: false, message: "The app is not linked yet: the edge holds this org's closed conversations until it is.", fix: "Press Save (or \"Re-link the app\") to link it." });
  for (const { field, input } of byKey.values()) {
    const value = settings[field.key];
    if (field.kind === "secret") {
      if (value) savedKeys.add(field.key);
      input.value = "";
      input.placeholder = savedKeys.has(field.key) ? "Saved. Type a new one to replace it." : "";
    } else if (field.kind === "boolean") {
      input.checked = String(value ?? field.default) === "true";
    } else {
      input.value = value === undefined || value === null ? (field.default ?? "") : String(value);
    }
  }
}

/** The form as raw settings; a saved key left blank is sent as Kustomer's mask. */
function raw() {
  const values = {};
  for (const { field, input } of byKey.values()) {
    if (field.kind === "boolean") values[field.key] = input.checked;
    else if (field.kind === "secret" && input.value.trim() === "" && savedKeys.has(field.key)) values[field.key] = model.mask;
    else values[field.key] = input.value;
  }
  return values;
}

function changed(key) {
  touched.add(key);
  validate();
}

/** Validates with the core; shows the errors of the fields the admin has touched, or all. */
function validate(all = false) {
  const result = core.validateSettings(raw(), options);
  const errors = new Map((result.ok ? [] : result.errors).map((e) => [e.field, e.message]));
  for (const [key, { input, error }] of byKey) {
    const message = all || touched.has(key) ? errors.get(key) : undefined;
    error.textContent = message ?? "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  if (errors.has("")) status("error", errors.get(""));
  return result;
}

function status(kind, text) {
  const node = document.getElementById("status") ?? form.appendChild(h("p", { id: "status", role: "status" }));
  node.className = kind;
  node.textContent = text;
  Kustomer?.resize?.();
}

/** Shows every error; false (and the first bad field focused) when the form is invalid. */
function ready() {
  for (const key of byKey.keys()) touched.add(key);
  const result = validate(true);
  if (result.ok) return true;
  const count = new Set(result.errors.map((e) => e.field)).size;
  status("error", `${count} ${count === 1 ? "field needs" : "fields need"} attention: see the messages below them.`);
  const first = [...byKey.values()].find(({ error }) => error.textContent);
  if (first) {
    first.input.closest("details")?.setAttribute("open", "");
    first.input.focus();
  }
  return false;
}

// ---- save, check, preview ----------------------------------------------------------------

/** 32 random bytes as base64url. */
function randomSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** A new app secret and its fingerprint, as settings (edge::trust::fingerprint, by WebCrypto). */
async function newLink() {
  const link = core.appLink();
  const secret = randomSecret();
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(link.fingerprintContext)));
  const fingerprint = `v1:${[...mac].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  return { [link.secretSetting]: secret, [link.fingerprintSetting]: fingerprint };
}

/**
 * "Re-link the app": a new app secret and its fingerprint, saved; then the edge is asked at once
 * (Check connection), so it trusts the new secret; the closes it held go out with the org's
 * trusted settings (at once when it keeps them, else with the workflow's next close).
 */
async function relink() {
  status("busy", "Re-linking the app…");
  try {
    const doc = await kustomer(Kustomer, "/v1/apps/settings", "PUT", { settings: await newLink() });
    fill(doc?.data?.attributes?.settings ?? {});
  } catch (e) {
    status("error", `Not re-linked: ${describeError(e)}.`);
    return;
  }
  await checkConnection();
}

/**
 * The edge's word on the app's link (closes held, dropped or refused, a failing settings read),
 * from the delivery log's smallest page: its answer, or its refusal, carries `link`.
 */
async function refreshLink() {
  try {
    const answer = await command(Kustomer, "list-deliveries", { args: { limit: "1" } });
    banner(answer.link);
    // The edge's words while the org's storage is near its ceiling (none: nothing shown).
    const storage = document.getElementById("storage");
    if (storage) storage.textContent = answer.storage?.warning ?? "";
  } catch (e) {
    if (e?.body?.link) banner(e.body.link);
  }
}

/** The app's link in words, with the fix, above the form's results (none: linked). */
function banner(link) {
  const node = document.getElementById("link");
  const text = linkText(link);
  if (!node) return;
  node.className = text ? "banner error" : "";
  node.replaceChildren(...(text ? [h("strong", {}, "App link: "), text] : []));
}

async function save(event) {
  event.preventDefault();
  if (!ready()) return;
  // Settings as Kustomer types them; a saved key left blank is not sent, so it is kept.
  const settings = {};
  for (const { field, input } of byKey.values()) {
    const type = model.savedTypes[field.kind];
    if (type === "boolean") settings[field.key] = input.checked;
    else if (type === "secret") {
      if (input.value.trim() !== "") settings[field.key] = input.value.trim();
    } else if (type === "number") settings[field.key] = Number(input.value.trim() || field.default);
    else settings[field.key] = input.value.trim();
  }
  // The app secret is made here once, from the browser's cryptographic source, and only
  // Kustomer keeps it: the app's workflow and pages carry it, nobody types it. Its fingerprint
  // is saved beside it: the edge reads that from Kustomer to know whom to trust.
  if (!linked) Object.assign(settings, await newLink());
  status("busy", "Saving…");
  try {
    const doc = await kustomer(Kustomer, "/v1/apps/settings", "PUT", { settings });
    fill(doc?.data?.attributes?.settings ?? {});
    touched.clear();
    validate();
    status("ok", "Saved. Keys are kept by Kustomer and are not shown again.");
  } catch (e) {
    status("error", `Not saved: ${describeError(e)}. Your changes are still in the form.`);
  }
}

/**
 * The settings this form shows that `name` (a command) carries, for a check or a preview: every
 * value, and each key just typed. They go in the command's body and replace the saved ones for
 * that call only; Kustomer fills in the saved ones (keys included) on its side. Null, with a
 * message, when the form is invalid or a key the call needs is neither saved nor typed.
 */
function typed(name) {
  const { needs: needed, leavesOut } = model.commands[name];
  const values = raw();
  const missing = needed.filter((key) => values[key].trim() === "").map((key) => byKey.get(key).field.label);
  if (missing.length) {
    status("error", `Type the ${missing.join(" and the ")} first: none is saved yet.`);
    return null;
  }
  if (!ready()) return null;
  const settings = {};
  for (const { field } of byKey.values()) {
    const value = String(values[field.key] ?? "").trim();
    if (leavesOut.includes(field.key)) continue;
    if (field.kind !== "secret" || (value !== "" && value !== model.mask)) settings[field.key] = value;
  }
  return settings;
}

async function checkConnection() {
  const list = document.getElementById("checks");
  list.replaceChildren();
  const settings = typed("check-connection");
  if (!settings) return;
  status("busy", "Checking both keys…");
  try {
    const result = await command(Kustomer, "check-connection", { body: { settings } });
    const line = (name, check) =>
      h("li", { class: check.ok ? "ok" : "error" }, h("strong", {}, `${name}: ${check.ok ? "connected" : "not connected"}. `), check.message);
    const app = result.app ?? { ok: false, message: "not checked" };
    const appLine = h("li", { class: app.ok ? "ok" : "error" }, h("strong", {}, `App link: ${app.ok ? "linked" : "not linked"}. `), app.message, app.fix ? ` ${app.fix}` : "");
    // Where the org's surveys are kept (src/edge/residency.rs says it).
    const residency = result.residency && h("li", { class: "note" }, h("strong", {}, "Data residency: "), result.residency.message);
    list.replaceChildren(line("Kustomer", result.kustomer), line("Agent Connect", result.stella), appLine, roster(result.roster), residency);
    banner(result.app);
    // The edge's word on a field (the API secret Agent Connect refused), under that field.
    for (const { field, message } of result.fields ?? []) {
      const shown = byKey.get(field);
      if (!shown) continue;
      shown.error.textContent = message;
      shown.input.setAttribute("aria-invalid", "true");
    }
    status(result.ok ? "ok" : "error", result.ok ? "Both keys work, and the app is linked." : "Something needs attention: see below.");
  } catch (e) {
    status("error", `The check could not run: ${describeError(e)}`);
  }
}

/** With the API secret: the org's agents Agent Connect will not survey, from its roster. */
function roster(r) {
  if (!r) return null;
  const title = h("strong", {}, "Agent roster: ");
  if (!r.ok) return h("li", { class: "error" }, title, r.message);
  const without = r.withoutProfile ?? [];
  const summary = without.length
    ? `${without.length} of the org's ${r.checked} agents will not be surveyed until their Agent Connect profile is fixed (surveys are still sent; Agent Connect decides):`
    : `every one of the org's ${r.checked} agents has an active Agent Connect profile.`;
  return h(
    "li",
    { class: without.length ? "warning" : "ok" },
    title,
    summary,
    without.length ? h("ul", { class: "agents" }, without.map((a) => h("li", {}, h("strong", {}, `${a.name ?? a.email} <${a.email}>: `), a.message))) : null,
    r.usersError ? h("p", { class: "note" }, r.usersError) : null,
  );
}

async function preview(event) {
  event.preventDefault();
  const out = document.getElementById("preview-result");
  const id = document.getElementById("preview-id").value.trim();
  if (!id) {
    out.replaceChildren(h("p", { class: "error" }, "Enter a conversation id, as in the conversation's address in Kustomer."));
    return;
  }
  const settings = typed("preview"); // without the Stella API secret: a preview does not read it
  if (!settings) return;
  out.replaceChildren(h("p", { class: "muted" }, "Reading the conversation…"));
  try {
    const result = await command(Kustomer, "preview", { body: { conversationId: id, settings } });
    out.replaceChildren(
      ...(result.ok
        ? [
            h("p", { class: "ok" }, `This request would be sent to Agent Connect${result.closed ? "" : " once the conversation is closed"}:`),
            h("pre", { tabindex: "0" }, JSON.stringify(result.request, null, 2)),
          ]
        : [h("p", { class: "error" }, `No survey would be sent${result.closed ? "" : " once it is closed"}: ${result.skip.message}`)]),
    );
  } catch (e) {
    out.replaceChildren(h("p", { class: "error" }, `No preview: ${describeError(e)}`));
  }
  Kustomer.resize?.();
}

// ---- forgetting a customer, and the audit list ------------------------------------------------

/** Forgets the customer typed, once the admin confirms in the page's own dialog (Kustomer's frame
 * may block window.confirm); the edge's answer says how many entries changed. */
async function forget(event) {
  event.preventDefault();
  const out = document.getElementById("forget-result");
  const input = document.getElementById("forget-customer");
  const customer = input.value.trim();
  if (!customer) {
    out.replaceChildren(h("p", { class: "error" }, "Enter the customer's e-mail address or Kustomer customer id."));
    return;
  }
  const dialog = document.getElementById("forget-confirm");
  document.getElementById("forget-confirm-text").textContent =
    `Their pending surveys are cancelled and their data removed from every entry for ${customer}. This cannot be undone.`;
  dialog.returnValue = "";
  dialog.showModal();
  document.getElementById("forget-yes").focus();
  const sure = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true }));
  input.focus();
  if (!sure) {
    out.replaceChildren(h("p", { class: "muted" }, "Not forgotten: cancelled."));
    return;
  }
  out.replaceChildren(h("p", { class: "muted" }, "Forgetting…"));
  try {
    const result = await command(Kustomer, "forget-customer", { body: { customer } });
    out.replaceChildren(h("p", { class: result.more ? "warning" : "ok" }, `Forgotten. ${result.message}`));
    input.value = "";
  } catch (e) {
    out.replaceChildren(h("p", { class: "error" }, `Not forgotten: ${describeError(e)}`));
  }
  await refreshAudit();
  Kustomer.resize?.();
}

/** The org's audit list as the edge words it, newest first, and the deleted-customers sweep. */
async function refreshAudit() {
  const list = document.getElementById("audit");
  const sweep = document.getElementById("audit-sweep");
  try {
    const answer = await command(Kustomer, "audit");
    const entries = answer.entries ?? [];
    list.replaceChildren(
      ...(entries.length ? entries.map((e) => h("li", { "data-kind": e.kind }, h("time", { datetime: e.at }, e.at), " ", e.words)) : [h("li", { class: "muted" }, "Nothing yet.")]),
    );
    const deleted = answer.deletedCustomers ?? {};
    sweep.textContent = deleted.lastError
      ? `Customers deleted in Kustomer could not be checked: ${deleted.lastError}`
      : deleted.lastSweep
        ? `Customers deleted in Kustomer are checked daily; last checked ${deleted.lastSweep}.`
        : "Customers deleted in Kustomer are checked daily while surveys are pending.";
  } catch (e) {
    list.replaceChildren(h("li", { class: "error" }, `The audit list could not be read: ${describeError(e)}`));
  }
  Kustomer.resize?.();
}
