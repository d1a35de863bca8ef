// Hostile and odd requests for the input drill (scripts/drills.mjs): each kind sends one request
// aimed at the org's surveys and says which answers are the right ones. None may be a 5xx, and
// none that could change a survey may be a 2xx.
import http from "node:http";
import { closeEvent } from "./common.mjs";

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * POSTs `bytes` as a chunked body (no length), stopping when the answer arrives. Resolves
 * {status} or, when the edge closed the connection first (it stops reading at 1 MiB), {cutOff}
 * with how much was written.
 */
function postChunked(stack, path, bytes, headers) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port: stack.port, path, method: "POST", headers: { ...headers, "transfer-encoding": "chunked" } });
    let answered = false;
    let closed = false;
    let written = 0;
    req.on("response", (res) => {
      answered = true;
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, written }));
      res.on("error", () => resolve({ status: res.statusCode, written }));
    });
    req.on("error", () => {});
    req.on("close", () => {
      closed = true;
      if (!answered) resolve({ cutOff: true, written });
    });
    const chunk = Buffer.alloc(64 * 1024, "x");
    // Waits while the socket is full: `written` counts what the connection took.
    const drained = () => new Promise((r) => {
      const done = () => (req.off("drain", done), req.off("close", done), r());
      req.once("drain", done);
      req.once("close", done);
    });
    (async () => {
      while (!answered && !closed && written < bytes) {
        const more = req.write(chunk);
        written += chunk.length;
        if (!more) await drained();
        else await pause(1);
      }
      if (!answered && !closed) req.end();
    })();
  });
}

/**
 * The kinds of hostile request, each `{name, weight, send()}`; `send` resolves `{status}` or
 * `{cutOff, written}`, and `ok(answer)` says whether the answer is a right one.
 */
export function hostileKinds(stack, { sets, rand }) {
  const pick = () => sets[Math.floor(rand() * sets.length)];
  const closed = () => closeEvent(pick(), new Date(Date.now() - 1000).toISOString(), `evt-hostile-${Math.floor(rand() * 1e9)}`);
  const own = () => stack.settingsHeaders();
  const forged = (extra) => ({ ...stack.settingsHeaders({ "x-stella-api-key": "attackers-own-stella-key", ...extra }) });
  const post = (path, body, headers) => stack.request("POST", path, { body, headers }).then((r) => ({ status: r.status, reason: r.body?.error?.code ?? r.body?.reason ?? r.body?.status }));
  const close = (body, headers) => post("/v1/kustomer/conversation-closed", body, headers);
  const is = (...codes) => (a) => codes.includes(a.status);
  // The edge answers and closes without reading the rest, and node may lose that answer to the
  // failed write that follows (tests/http/hardening.test.mjs retries until it sees it): a
  // connection closed before the whole body went is the same refusal. That the body was not
  // held is what the drill's memory bound checks.
  const cutOrIs = (...codes) => (a) => a.cutOff || codes.includes(a.status);
  const withoutSecret = () => {
    const h = forged();
    delete h["x-app-secret"];
    return h;
  };
  return [
    { name: "malformed JSON", weight: 10, send: () => close("{not json", own()), ok: is(400) },
    { name: "nesting 200,000 deep", weight: 3, send: () => close("[".repeat(200_000), own()), ok: is(400) },
    { name: "forged close, no app secret", weight: 12, send: () => close(closed(), withoutSecret()), ok: is(401) },
    // Held, its settings never kept (Kustomer's settings do not vouch for the secret): once
    // released it is one more copy of a real close, decided by Kustomer's data, never a second
    // survey (the drill's exactly-once count checks it).
    { name: "forged close, guessed app secret", weight: 12, send: () => close(closed(), forged({ "x-app-secret": `guessed-app-secret-${Math.floor(rand() * 1e9)}` })), ok: (a) => a.status === 202 && a.reason === "held" },
    { name: "another org's key", weight: 5, send: () => close(closed(), forged({ "x-kustomer-api-key": "other-org-key" })), ok: is(401, 403) },
    {
      name: "close dated tomorrow",
      weight: 10,
      send: () => close(closeEvent(pick(), new Date(Date.now() + 86_400_000).toISOString(), `evt-future-${Math.floor(rand() * 1e9)}`), own()),
      ok: is(400),
    },
    {
      name: "100,000-character id",
      weight: 4,
      send: () => {
        const e = closed();
        e.data.id = "x".repeat(100_000);
        return close(e, own());
      },
      ok: is(400),
    },
    {
      name: "control characters in the id",
      weight: 4,
      send: () => {
        const e = closed();
        e.data.id = `${e.data.id}\u0000\n`;
        return close(e, own());
      },
      ok: is(400),
    },
    {
      name: "the real close again, cut mid-emoji",
      weight: 8,
      send: () => {
        const set = pick();
        const e = closeEvent(set, set.conversation.attributes.modificationHistory.statusAt);
        e.data.attributes.name = "LONE-SURROGATE-MARK";
        return close(JSON.stringify(e).replace("LONE-SURROGATE-MARK", "half an emoji \\ud83d"), own());
      },
      // The same close (same event id and time): a duplicate, never a second survey.
      ok: is(200, 202),
    },
    { name: "chunked 2 MiB close", weight: 2, send: () => postChunked(stack, "/v1/kustomer/conversation-closed", 2 << 20, own()), ok: cutOrIs(413) },
    { name: "chunked 4 MiB to nowhere", weight: 2, send: () => postChunked(stack, "/v1/nowhere", 4 << 20, {}), ok: cutOrIs(404) },
    {
      name: "key check with a guessed Stella key",
      weight: 6,
      send: () => post("/v1/settings/check", undefined, stack.settingsHeaders({ "x-stella-api-key": `guess-${Math.floor(rand() * 1e9)}` })),
      ok: is(200, 429),
    },
    { name: "preview", weight: 4, send: () => post("/v1/preview", { conversationId: pick().conversation.id }, own()), ok: is(200, 429) },
    {
      name: "delivery log, guessed app secret",
      weight: 5,
      send: () => stack.request("GET", "/v1/deliveries", { headers: stack.orgHeaders({ "x-app-secret": "guessed-app-secret-000000" }) }).then((r) => ({ status: r.status })),
      ok: is(401),
    },
    { name: "resend without app secret", weight: 5, send: () => post(`/v1/deliveries/${pick().conversation.id}/resend`, undefined, withoutSecret()), ok: is(401) },
    {
      // An org key without the settings roles, with a secret of its own (or none): Kustomer's
      // settings vouch only for the app's, so the log stays closed to it.
      name: "delivery log with an agent's key and its own secret",
      weight: 3,
      send: () => {
        const headers = stack.orgHeaders({ "x-kustomer-api-key": "sandbox-kustomer-key-agent" });
        if (rand() < 0.5) delete headers["x-app-secret"];
        else headers["x-app-secret"] = `attackers-app-secret-${Math.floor(rand() * 1e9)}`;
        return stack.request("GET", "/v1/deliveries", { headers }).then((r) => ({ status: r.status }));
      },
      ok: is(401),
    },
    { name: "wrong method", weight: 3, send: () => stack.request("DELETE", "/v1/kustomer/conversation-closed").then((r) => ({ status: r.status })), ok: is(405) },
  ];
}

/** A kind drawn by weight. */
export function drawKind(kinds, rand) {
  const total = kinds.reduce((n, k) => n + k.weight, 0);
  let x = rand() * total;
  for (const k of kinds) if ((x -= k.weight) < 0) return k;
  return kinds.at(-1);
}
