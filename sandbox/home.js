// The local home page (development only): the sandbox's values, its conversations with their
// cards and close buttons, and what the Agent Connect sandbox received.
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

// The Agent Connect sandbox's fault control: refuse every survey (400) until switched back.
async function stellaFaults(refuse) {
  const button = $("stella-fail");
  await fetch("/sandbox/stella/faults", refuse ? { method: "POST", body: JSON.stringify({ status: 400, count: 1_000_000 }) } : { method: "DELETE" });
  button.setAttribute("aria-pressed", String(refuse));
  button.textContent = refuse ? "Accept surveys again" : "Refuse surveys";
  $("stella-status").textContent = refuse
    ? "The Agent Connect sandbox now refuses every survey request (400): closed conversations' surveys fail."
    : "The Agent Connect sandbox accepts survey requests.";
}
$("stella-fail").addEventListener("click", () => stellaFaults($("stella-fail").getAttribute("aria-pressed") !== "true"));

values();
directory();
conversations();
requests();
setInterval(requests, 2000);
