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

/** Calls the edge that serves this page. */
export async function edge(path, { headers = {}, body } = {}) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw { status: response.status, body: data };
  return data;
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
