// Shared shell of the settings page and the agent card: loads the Wasm core and Kustomer's
// Cards SDK, and draws text safely. No business rules here: they are in the core.
import init, * as core from "./pkg/stella_connect.js";

const CARDS_SDK = "https://cdn.kustomerapp.com/card-js/latest/kustomer-card.min.js";
// Development only: the Kustomer sandbox's stand-in with the same methods. A page served from
// a loopback address is a local run; production pages are served over https from the edge.
const CARDS_SDK_STAND_IN = "/sandbox/kustomer/cards-sdk.js";

/** True when the page runs locally against the sandboxes. */
export const local = ["127.0.0.1", "localhost", "[::1]"].includes(location.hostname);
/** Options for the core's exports: loopback http:// URLs are accepted only locally. */
export const options = { allowLoopback: local };
export { core };

/** Loads the core and the Cards SDK; resolves to `window.Kustomer`. */
export async function start() {
  await Promise.all([init(), loadScript(local ? CARDS_SDK_STAND_IN : CARDS_SDK)]);
  return window.Kustomer;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`Could not load ${src}`));
    document.head.append(script);
  });
}

/** `Kustomer.request` as a promise: the Kustomer API as the signed-in user. */
export function kustomer(Kustomer, url, method = "GET", body) {
  return new Promise((resolve, reject) => {
    Kustomer.request({ url, method, body }, (error, data) => (error ? reject(error) : resolve(data)));
  });
}

/** A short description of a failed Kustomer or edge call, for the page. */
export function describeError(error) {
  const status = error?.status ? ` (HTTP ${error.status})` : "";
  const detail =
    error?.body?.errors?.[0]?.detail ?? error?.body?.error?.message ?? error?.message ?? "no answer";
  return `${detail}${status}`;
}

/**
 * The app's link (the edge's `link`: `{linked, code?, message?, fix?, held, expired, refused}`) as
 * a banner's words, or null when there is nothing to say: the edge's words and fix, and the
 * closes it holds, dropped or refused while unlinked.
 */
export function linkText(link) {
  if (!link || (link.linked && !link.held && !link.expired && !link.refused)) return null;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const parts = [link.linked ? "" : link.message ?? "The app is not linked."];
  if (link.held) parts.push(`${plural(link.held, "closed conversation is", "closed conversations are")} held until Kustomer vouches for the app's secret; they are sent with the saved settings once it does.`);
  if (link.expired) parts.push(`${plural(link.expired, "held close was", "held closes were")} dropped after 7 days.`);
  if (link.refused) parts.push(`${plural(link.refused, "close was", "closes were")} refused: too many were held.`);
  if (!link.linked && link.fix) parts.push(link.fix);
  return parts.filter(Boolean).join(" ");
}

/** The full name of one of the app's commands (app-manifest/stella_connect.json `commands`).
 * Guess, kept here alone: private apps' commands may carry the org's namespace. */
const commandName = (name) => `stella_connect.app.${name}`;

/**
 * Runs one of the app's commands through Kustomer, which fills in the saved settings on its
 * side: this page never holds a saved key. `args` go in the command's URL (the names its
 * `permittedArgs` lists; each value is percent-encoded here, on the guess that Kustomer
 * interpolates `{{{arg}}}` as it is), `body` is sent as JSON. Resolves to the edge's answer;
 * rejects with {status, body} like a failed request.
 */
export async function command(Kustomer, name, { args, body } = {}) {
  const encoded = args && Object.fromEntries(Object.entries(args).map(([k, v]) => [k, encodeURIComponent(v ?? "")]));
  const run = await Kustomer.command.run(commandName(name), { args: encoded, body });
  if (run.requestError) throw { message: `the app's server could not be reached (${run.requestError})` };
  if (!(run.statusCode >= 200 && run.statusCode < 300)) throw { status: run.statusCode, body: run.responseBody };
  return run.responseBody;
}

/** Keeps the query Kustomer gives a page (`parentUrl`, `id`, …) on the links between the app's
 * pages, leaving out the page's own parameters (`own`), so the next page starts as this one did. */
export function linkPages(own = []) {
  const query = new URLSearchParams(location.search);
  for (const name of own) query.delete(name);
  for (const link of document.querySelectorAll("nav.pages-nav a")) link.search = query.toString();
}

/** Creates an element. Children are nodes or strings, and strings are always text, never
 * markup: names and tags come from customers. */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === undefined || value === null) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}
