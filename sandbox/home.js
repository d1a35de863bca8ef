// The local home page (development only): the sandbox's values, its conversations with their
// cards and close buttons, what the Agent Connect sandbox received, and its survey outcomes.
import { h } from "/app/app.js"; // the pages' element helper: strings are always text

const $ = (id) => document.getElementById(id);

async function json(url, init) {
  const response = await fetch(url, init);
  return response.json();
}

// The Kustomer API as the signed-in admin (the same session as the Cards SDK stand-in).
const admin = (path, method = "GET") =>
  json(`/sandbox/kustomer${path}`, { method, headers: { authorization: "Bearer sandbox-user-session" } });

// The card's address, from the package's smartbar KView (`<DynamicCard src="…" …/>`).
const cardUrl = (definition) => /src="([^"]+)"/.exec(definition.kviews?.[0]?.template ?? "")?.[1];

async function directory() {
  const [available, installed] = await Promise.all([admin("/v1/apps/available"), admin("/v1/apps/installed")]);
  const apps = available.data ?? [];
  if (!apps.length) {
    $("directory").replaceChildren(
      h("p", {}, "No app is registered with this org yet. ", h("code", {}, "make run"), " registers this package once it has built its manifest tool (the first time, up to a minute): reload then, or run ", h("code", {}, "make register"), "."),
    );
    return;
  }
  $("directory").replaceChildren(...apps.map((app) => listing(app.attributes, (installed.data ?? []).find((i) => i.id === app.id)?.attributes)));
}

// One app as the directory shows it: everything from its definition.
function listing({ definition: d }, installation) {
  const developer = d.appDetails?.appDeveloper ?? {};
  const platform = d.appDetails?.externalPlatform;
  const changelog = Object.entries(d.changelog ?? {});
  const settingsUrl = d.settingsPageConfig?.url;
  const card = cardUrl(d);
  const after = installation
    ? h(
        "div",
        { class: "installed" },
        h("p", { class: "ok" }, `Installed: version ${installation.version}.`),
        h("p", {}, "Next: ", settingsUrl ? h("a", { href: settingsUrl }, "fill in its settings") : "fill in its settings", ", then close a conversation below and open its ",
          card ? h("a", { href: `${card}?conversation=conv-email` }, "agent card") : "agent card", "."),
      )
    : h("button", { type: "button", class: "primary", onclick: () => install(d.app) }, `Install ${d.title}`);
  return h(
    "article",
    { class: "listing", "aria-labelledby": `app-${d.app}` },
    d.iconUrl ? h("img", { src: d.iconUrl, alt: "", width: "48", height: "48" }) : null,
    h("h3", { id: `app-${d.app}` }, d.title),
    h("p", {}, d.description ?? ""),
    h("p", { class: "muted" }, `Version ${d.version} · by ${developer.name ?? "unknown"}`, developer.website ? " · " : "",
      developer.website ? h("a", { href: developer.website }, "website") : null, developer.supportEmail ? ` · ${developer.supportEmail}` : ""),
    platform ? h("p", { class: "muted" }, `Works with ${platform.name}`) : null,
    changelog.length ? h("details", {}, h("summary", {}, "Changelog"), h("ul", {}, ...changelog.map(([v, notes]) => h("li", {}, `${v}: ${notes}`)))) : null,
    after,
  );
}

async function install(app) {
  const result = await admin(`/v1/apps/${encodeURIComponent(app)}/install`, "POST");
  if (result.errors) $("directory").prepend(h("p", { class: "error", role: "alert" }, `Not installed: ${result.errors[0].detail}`));
  await directory();
  $("directory").querySelector(".installed a")?.focus();
}

function values() {
  const api = `${location.origin}/sandbox/kustomer`;
  const rows = [
    ["Stella Connect API key", "sandbox-stella-key"],
    ["Stella Connect API secret (survey outcomes)", "sandbox-stella-secret"],
    ["Kustomer API key", "sandbox-kustomer-key"],
    ["Kustomer API URL", api],
    ["Kustomer URL", api],
    ["Seconds until send", "5 (or anything short)"],
    ["Stella Connect API URL (advanced)", `${location.origin}/sandbox/stella`],
  ];
  $("values").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, h("code", {}, v))]));
}

async function conversations() {
  const { data } = await json("/sandbox/kustomer/conversations");
  const row = (c) =>
    h(
      "tr",
      {},
      h("td", {}, h("code", {}, c.id)),
      h("td", {}, c.name),
      h("td", {}, c.customer ?? ""),
      h("td", {}, (c.channels ?? []).join(", ")),
      h("td", {}, c.status),
      h(
        "td",
        { class: "row" },
        h("a", { href: `/app/card.html?conversation=${encodeURIComponent(c.id)}` }, "Agent card"),
        h("button", { type: "button", onclick: () => change(c.id, c.status === "done" ? "reopen" : "close") }, c.status === "done" ? "Reopen" : "Close"),
      ),
    );
  $("conversations").replaceChildren(
    $("conversations").querySelector("caption"),
    h("thead", {}, h("tr", {}, ...["Id", "Subject", "Customer", "Channel", "Status", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...data.map(row)),
  );
}

async function change(id, action) {
  const result = await json(`/sandbox/kustomer/conversations/${encodeURIComponent(id)}/${action}`, { method: "POST" });
  const edge = result.edge?.body;
  const said = edge?.error?.message ?? (edge?.sendAt ? `survey due at ${new Date(edge.sendAt).toLocaleTimeString()}` : edge?.message ?? edge?.status ?? "");
  $("close-status").textContent = `${id}: ${action === "close" ? "closed" : "reopened"}; the edge answered ${result.edge?.status}${said ? `: ${said}` : ""}.`;
  await conversations();
}

async function requests() {
  const { requests: list } = await json("/sandbox/stella/requests");
  $("requests").replaceChildren(
    h("thead", {}, h("tr", {}, ...["Received", "Conversation", "Customer", "Agent", "Channel", "Do not send"].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      ...[...list].reverse().map(({ receivedAt, body }) =>
        h(
          "tr",
          {},
          h("td", {}, new Date(receivedAt).toLocaleTimeString()),
          h("td", {}, h("code", {}, body.ext_interaction_id ?? "")),
          h("td", {}, body.customer?.email ?? ""),
          h("td", {}, body.employee?.email ?? ""),
          h("td", {}, body.channel ?? ""),
          h("td", {}, String(body.do_not_send ?? false)),
        ),
      ),
    ),
  );
}

// The Agent Connect sandbox's fault control: refuse every survey (400) until switched back. Its
// state is the sandbox's (read on load), so a reload shows what the sandbox does.
async function stellaFaults(refuse) {
  await fetch("/sandbox/stella/faults", refuse ? { method: "POST", body: JSON.stringify({ status: 400, count: 1_000_000 }) } : { method: "DELETE" });
  await showFaults();
}

let faultsRead = 0; // the latest read: an older one's answer is dropped
async function showFaults() {
  const read = ++faultsRead;
  const button = $("stella-fail");
  const fault = (await json("/sandbox/stella/faults")).faults?.requests;
  if (read !== faultsRead) return;
  const refusing = Boolean(fault);
  button.setAttribute("aria-pressed", String(refusing));
  button.textContent = refusing ? "Accept surveys again" : "Refuse surveys";
  $("stella-status").textContent = refusing
    ? `The Agent Connect sandbox now refuses ${fault.count < 1_000 ? `the next ${fault.count} survey request(s)` : "every survey request"} (${fault.status}): closed conversations' surveys fail.`
    : "The Agent Connect sandbox accepts survey requests.";
}
$("stella-fail").addEventListener("click", () => stellaFaults($("stella-fail").getAttribute("aria-pressed") !== "true"));
showFaults();

// Survey outcomes: the Agent Connect sandbox's Data Return records, and controls that answer a
// survey as its customer would or give it another delivery status (a bounce).
const stars = (record) => {
  const options = Object.values(record.answers?.agent_star_rating?.selected_options ?? {});
  return options.length ? `${options[0].integer_value} / 5` : "";
};
let surveysShown = "";

async function records() {
  const { records: list } = await json("/sandbox/stella/records");
  const newest = [...list].reverse();
  $("records").replaceChildren(
    $("records").querySelector("caption"),
    h("thead", {}, h("tr", {}, ...["Conversation", "Customer", "Delivery status", "Rating", "Comment", "Answered"].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      ...newest.map((r) =>
        h(
          "tr",
          {},
          h("td", {}, h("code", {}, r.ext_interaction_id ?? "")),
          h("td", {}, r.customer?.email ?? ""),
          h("td", {}, r.request_delivery_status),
          h("td", {}, stars(r)),
          h("td", {}, r.answers?.agent_star_rating?.comment ?? ""),
          h("td", {}, r.response_received_at ? new Date(r.response_received_at).toLocaleTimeString() : ""),
        ),
      ),
    ),
  );
  // The survey pickers change only when the list of conversations does, keeping the choice
  // (and not moving a keyboard user's place in an open list every 2 seconds).
  const ids = [...new Set(newest.map((r) => r.ext_interaction_id).filter(Boolean))];
  const shown = JSON.stringify(ids);
  if (shown === surveysShown) return;
  surveysShown = shown;
  for (const select of [$("answer-survey"), $("status-survey")]) {
    const chosen = select.value;
    select.replaceChildren(...(ids.length ? ids.map((id) => h("option", { value: id, selected: id === chosen }, id)) : [h("option", { value: "" }, "No survey received yet")]));
  }
}

// Answers a control's POST with its message in the form's live region.
async function control(path, body, region) {
  region.className = "busy";
  region.textContent = "Sending…";
  let response;
  try {
    response = await fetch(`/sandbox/stella${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    return { ok: false, answer: { error: "the sandbox did not answer" } };
  }
  const answer = await response.json().catch(() => ({}));
  await records();
  return { ok: response.ok, answer };
}

function say(region, ok, message) {
  region.className = ok ? "ok" : "error";
  region.textContent = message;
}

$("answer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const id = form.get("survey");
  const region = $("answer-status");
  if (!id) return say(region, false, "No survey to answer yet: close a conversation first.");
  const comment = form.get("comment").trim();
  const rating = Number(form.get("rating"));
  const { ok, answer } = await control("/responses", { ext_interaction_id: id, rating, ...(comment ? { comment } : {}) }, region);
  say(region, ok, ok ? `${id}: answered with ${rating} of 5 stars${comment ? " and a comment" : ""}.` : `${id}: not answered: ${answer.error ?? "the sandbox refused it"}`);
});

$("status-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const id = form.get("survey");
  const status = form.get("status");
  const region = $("status-result");
  if (!id) return say(region, false, "No survey yet: close a conversation first.");
  const { ok, answer } = await control("/delivery-status", { ext_interaction_id: id, status }, region);
  say(region, ok, ok ? `${id}: delivery status is now "${status}".` : `${id}: not changed: ${answer.error ?? "the sandbox refused it"}`);
});

values();
directory();
conversations();
requests();
records();
setInterval(() => {
  requests();
  records();
}, 2000);
