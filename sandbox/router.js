// Local development only: one address for everything. /app/* serves the pages as the deployed
// edge does (files from build/site, with the headers of build/site/_headers), /sandbox/* goes to
// the sandboxes, / is the local home page, and the rest goes to the edge.
import HOME_HTML from "./home-html";
import HOME_JS from "./home-js";

const TYPES = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  wasm: "application/wasm",
  svg: "image/svg+xml",
  json: "application/json",
};

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname.startsWith("/sandbox/kustomer/")) return env.KUSTOMER.fetch(request);
    if (pathname.startsWith("/sandbox/stella/")) return env.STELLA.fetch(request);
    if (pathname === "/") return page(HOME_HTML, TYPES.html);
    if (pathname === "/sandbox/home.js") return page(HOME_JS, TYPES.js);
    if (pathname.startsWith("/app/")) return asset(env.SITE, pathname, request.method);
    return env.EDGE.fetch(request);
  },
};

function page(body, type) {
  return new Response(body, { headers: { "content-type": type, "cache-control": "no-store" } });
}

async function asset(site, pathname, method) {
  if (method !== "GET" && method !== "HEAD") return new Response("Method Not Allowed", { status: 405 });
  if (pathname.split("/").some((part) => part === ".." || part.startsWith("."))) return new Response("Not Found", { status: 404 });
  const file = await site.fetch(`http://site${pathname}`);
  if (!file.ok) return new Response("Not Found", { status: 404 });
  const headers = new Headers({ "content-type": TYPES[pathname.split(".").pop()] ?? "application/octet-stream", "cache-control": "no-store" });
  for (const [name, value] of await headerRules(site, pathname)) headers.set(name, value);
  return new Response(method === "HEAD" ? null : file.body, { headers });
}

// The `_headers` file of Cloudflare's static assets: a path pattern (a trailing * matches any
// rest), then indented `Name: value` lines.
let rules;
async function headerRules(site, pathname) {
  if (!rules) {
    const text = await site.fetch("http://site/_headers").then((r) => (r.ok ? r.text() : ""));
    rules = [];
    for (const line of text.split("\n")) {
      if (!line.trim() || line.trim().startsWith("#")) continue;
      if (!/^\s/.test(line)) rules.push({ pattern: line.trim(), headers: [] });
      else if (rules.length) {
        const at = line.indexOf(":");
        rules.at(-1).headers.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
      }
    }
  }
  const matches = (p) => (p.endsWith("*") ? pathname.startsWith(p.slice(0, -1)) : pathname === p);
  return rules.filter((r) => matches(r.pattern)).flatMap((r) => r.headers);
}
