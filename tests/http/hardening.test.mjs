// The edge's hardening over HTTP against a real workerd (scripts/serve.sh) with the Kustomer and
// Stella sandboxes: bounded bodies, the org's app secret, close times from the future, surveys
// already sent, ids no Kustomer record has, lone UTF-16 surrogates, resends of ids that need
// percent-encoding, app secret rotation, and what the edge keeps on disk. Each test waits for
// events (a survey sent, a log entry final), never for a fixed time, except where it shows that
// nothing more happens.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { setTimeout as pause } from "node:timers/promises";
import { APP_SECRET, KUSTOMER_KEY, STELLA_KEY, Stack, rssMb, sleep, waitFor } from "./harness.mjs";

const MiB = 1 << 20;
const AGENT_KEY = "sandbox-kustomer-key-agent"; // sandbox-org, no admin role
const CLOSED = "/v1/kustomer/conversation-closed";

const stack = new Stack();
before(async () => {
  await stack.start();
  await stack.setDelay(2);
  // No registration: Kustomer's settings (the sandbox's saved link) say whom the edge trusts,
  // whatever call comes first.
});
after(() => stack.stop());

const newConversation = (edit, id) => stack.newConversation(edit, id);

/** Marks the conversation closed in the sandbox (no event) and gives the close event for it. */
async function closedEvent(id) {
  const put = await stack.request("PUT", `/sandbox/kustomer/v1/conversations/${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${KUSTOMER_KEY}` },
    body: { status: "done" },
  });
  assert.equal(put.status, 200, put.text);
  return stack.closeEvent(id);
}

const final = (id, ms = 20_000) =>
  waitFor(async () => {
    const d = await stack.delivery(id);
    return d && ["sent", "skipped", "failed"].includes(d.state) && d;
  }, ms, `${id} final`);

const conversationReads = async () => (await stack.kustomerStats()).byRoute["GET /v1/conversations/:id"] ?? 0;

/**
 * POSTs `bytes` bytes as a chunked body (no content-length) over a raw socket, 64 KiB frames,
 * waiting whenever the socket is full, so `written` counts what the connection took. It keeps
 * reading after a failed write (the edge answers and closes without reading the rest; an HTTP
 * client that stops at the failed write loses that answer). Resolves {status, body, written,
 * error}; no status when the connection ended without an answer.
 */
function postChunked(path, bytes, headers) {
  return new Promise((resolve) => {
    const socket = net.connect(stack.port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let written = 0;
    let closed = false;
    let error;
    socket.on("data", (d) => (received = Buffer.concat([received, d])));
    socket.on("error", (e) => (error = e.code));
    socket.on("close", () => {
      closed = true;
      resolve({ ...parseResponse(received.toString("latin1")), written, error });
    });
    const head = [`POST ${path} HTTP/1.1`, "host: 127.0.0.1", "transfer-encoding: chunked", "connection: close"];
    for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
    socket.write(`${head.join("\r\n")}\r\n\r\n`);
    const size = 64 * 1024;
    const frame = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, "x"), Buffer.from("\r\n")]);
    const roomOrEnd = () => new Promise((r) => {
      const done = () => (socket.off("drain", done), socket.off("close", done), r());
      socket.once("drain", done);
      socket.once("close", done);
    });
    (async () => {
      while (!closed && received.length === 0 && written < bytes) {
        const room = socket.write(frame);
        written += size;
        if (!room) await roomOrEnd();
        else await pause(1);
      }
      if (!closed) socket.end("0\r\n\r\n");
    })();
  });
}

/** {status, body} of a raw HTTP/1.1 answer (a length or chunked body), or {} when there is none. */
function parseResponse(text) {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
  if (!m) return {};
  let body = m[3];
  if (/^transfer-encoding:\s*chunked/im.test(m[2])) {
    let decoded = "";
    for (let at = 0; ; ) {
      const eol = body.indexOf("\r\n", at);
      const n = parseInt(body.slice(at, eol), 16);
      if (!(n > 0)) break;
      decoded += body.slice(eol + 2, eol + 2 + n);
      at = eol + 2 + n + 2;
    }
    body = decoded;
  }
  return { status: Number(m[1]), body: Buffer.from(body, "latin1").toString("utf8") };
}

/**
 * The edge's answer to a chunked body of `bytes` bytes. The edge answers and closes without
 * reading the rest, so the kernel resets the connection, and a reset can discard the answer
 * before the client reads it (about one time in ten here). Each attempt must therefore be the
 * answer, or a reset after the connection took at most 16 MiB (reading the body would take it
 * all); the answer must show within 10 attempts. Returns the answer and every attempt.
 */
async function answerToChunked(path, bytes, headers) {
  const attempts = [];
  for (let i = 0; i < 10; i++) {
    const r = await postChunked(path, bytes, headers);
    attempts.push(r);
    if (r.status) return { ...r, attempts };
    assert.match(String(r.error), /^(EPIPE|ECONNRESET)$/, `attempt ${i + 1}: ${JSON.stringify(r)}`);
    assert.ok(r.written <= 16 * MiB, `attempt ${i + 1} sent ${r.written} bytes before the reset: the body was read`);
  }
  assert.fail(`no answer in ${attempts.length} attempts: ${JSON.stringify(attempts)}`);
}

test("chunked bodies of 2 and 64 MiB get 413 without being read; 64 MiB to an unknown path 404; memory stays flat", async (t) => {
  const pid = await stack.workerdPid();
  assert.equal((await stack.request("GET", "/healthz")).status, 200);
  const before = rssMb(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 20);
  try {
    const headers = stack.settingsHeaders({ "content-type": "application/json" });
    const small = await answerToChunked(CLOSED, 2 * MiB, headers);
    assert.equal(small.status, 413, small.body);
    assert.equal(JSON.parse(small.body).error.code, "too_large");

    const large = await answerToChunked(CLOSED, 64 * MiB, headers);
    assert.equal(large.status, 413, large.body);
    assert.equal(JSON.parse(large.body).error.code, "too_large");

    const unknown = await answerToChunked("/v1/nowhere", 64 * MiB, headers);
    assert.equal(unknown.status, 404, unknown.body);
    assert.equal(JSON.parse(unknown.body).error.code, "not_found");

    const sent = (r) => r.attempts.map((a) => `${(a.written / MiB).toFixed(1)} MiB${a.status ? ` → ${a.status}` : ` → ${a.error}`}`).join(", ");
    t.diagnostic(`2 MiB: ${sent(small)}; 64 MiB: ${sent(large)}; 64 MiB, unknown path: ${sent(unknown)}`);
    // The server stopped reading long before the end: what got sent is what the socket buffers
    // hold, never the whole 64 MiB.
    for (const attempt of [...large.attempts, ...unknown.attempts]) {
      assert.ok(attempt.written <= 16 * MiB, `sent ${attempt.written} bytes of 64 MiB: the server kept reading`);
    }
  } finally {
    clearInterval(sampler);
  }
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;
  const after = rssMb(pid);
  t.diagnostic(`workerd RSS ${before.toFixed(1)} MB before, peak sampled ${peak.toFixed(1)} MB, ${after.toFixed(1)} MB after; VmHWM ${hwm.toFixed(1)} MB`);
  assert.ok(Math.max(peak, after) - before < 64, `workerd grew from ${before.toFixed(0)} MB to ${peak.toFixed(0)} MB (peak sampled), ${after.toFixed(0)} MB after`);
  assert.ok(hwm - before < 64, `workerd's peak (VmHWM) ${hwm.toFixed(0)} MB, from ${before.toFixed(0)} MB`);
  assert.equal((await stack.request("GET", "/healthz")).status, 200, "still serving");
});

test("a forged close (the org key without the app secret, or with a wrong one) is refused or held and schedules nothing; the real one sends, once", async () => {
  const id = await newConversation();
  const event = await closedEvent(id);
  const without = await stack.postEvent(event, stack.settingsHeaders({ "x-app-secret": null }));
  assert.deepEqual([without.status, without.body.error.code], [401, "missing_app_secret"], without.text);
  const wrong = await stack.postEvent({ ...event, id: "evt-forged" }, stack.settingsHeaders({ "x-app-secret": "forged-secret-0123456789" }));
  // Held, its settings never kept: never lost, never the org's.
  assert.deepEqual([wrong.status, wrong.body.status], [202, "held"], wrong.text);
  // Another holder of the org key may not read the log either.
  const log = await stack.request("GET", "/v1/deliveries", { headers: stack.orgHeaders({ "x-app-secret": "forged-secret-0123456789" }) });
  assert.deepEqual([log.status, log.body.error.code], [401, "app_secret_rejected"]);
  assert.equal(await stack.delivery(id), undefined, "nothing scheduled");

  const real = await stack.postEvent(event);
  assert.deepEqual([real.status, real.body.status], [202, "scheduled"], real.text);
  assert.equal((await final(id)).state, "sent");
  assert.equal((await stack.stellaRequests(id)).length, 1);
});

test("a close dated far in the future is refused (close_in_future); the real close afterwards is scheduled", async () => {
  const id = await newConversation();
  const event = await closedEvent(id);
  const future = new Date(Date.now() + 30 * 86_400_000).toISOString();
  const forged = structuredClone(event);
  forged.id = `evt-future-${id}`;
  forged.data.attributes.modificationHistory.statusAt = future;
  forged.data.attributes.updatedAt = future;
  const refused = await stack.postEvent(forged);
  assert.deepEqual([refused.status, refused.body.error?.code], [400, "close_in_future"], refused.text);

  const real = await stack.postEvent(event);
  assert.deepEqual([real.status, real.body.status], [202, "scheduled"], `not stale_event: ${real.text}`);
  assert.equal((await final(id)).state, "sent");
  assert.equal((await stack.stellaRequests(id)).length, 1);
});

test("a conversation closed again after its survey went out: already_surveyed, one request in all", async () => {
  const id = await newConversation();
  assert.equal((await stack.close(id)).body.edge.status, 202);
  assert.equal((await final(id)).state, "sent");
  await stack.reopen(id);
  const again = await stack.close(id);
  assert.equal(again.body.edge.status, 200, JSON.stringify(again.body.edge));
  assert.deepEqual([again.body.edge.body.status, again.body.edge.body.reason], ["ignored", "already_surveyed"]);
  const logged = await stack.delivery(id);
  assert.deepEqual([logged.state, logged.reason], ["sent", "already_surveyed"]);

  // A conversation closed after it falls due later than the repeat would have: once its survey
  // is out, a second one for `id` would be too.
  const later = await newConversation();
  await stack.close(later);
  await final(later);
  assert.equal((await stack.stellaRequests(id)).length, 1, "exactly one Stella request");
});

test("the same event id delivered again is the same close, whatever its times say", async () => {
  const id = await newConversation();
  const event = await closedEvent(id);
  const first = await stack.postEvent(event);
  assert.equal(first.status, 202, first.text);
  const later = structuredClone(event);
  const statusAt = new Date(Date.parse(event.data.attributes.modificationHistory.statusAt) + 1500).toISOString();
  later.data.attributes.modificationHistory.statusAt = statusAt;
  later.data.attributes.updatedAt = statusAt;
  const again = await stack.postEvent(later);
  assert.deepEqual([again.status, again.body.sendAt], [202, first.body.sendAt], "not moved to the later time");
  assert.equal((await final(id)).state, "sent");
  const late = await stack.postEvent(later);
  assert.deepEqual([late.status, late.body.status, late.body.reason], [200, "ignored", "duplicate"], late.text);
  assert.equal((await stack.stellaRequests(id)).length, 1);
});

test("at send time Kustomer's own close time counts: an event dated earlier is sent only after the real close's delay", async () => {
  const id = await newConversation();
  const event = await closedEvent(id);
  const closedAt = Date.parse(event.data.attributes.modificationHistory.statusAt); // Kustomer's
  const early = new Date(closedAt - 30_000).toISOString();
  event.data.attributes.modificationHistory.statusAt = early;
  event.data.attributes.updatedAt = early;
  const posted = await stack.postEvent(event);
  assert.deepEqual([posted.status, Date.parse(posted.body.sendAt)], [202, closedAt - 28_000], "due at once, by the event's time");
  const delivery = await final(id);
  assert.equal(delivery.state, "sent");
  assert.equal(Date.parse(delivery.closedAt), closedAt, "retimed to Kustomer's close");
  const [request] = await stack.stellaRequests(id);
  assert.ok(Date.parse(request.receivedAt) >= closedAt + 2000, `sent ${Date.parse(request.receivedAt) - closedAt} ms after Kustomer's close`);
});

test("ids no Kustomer record has (100,000 characters, control characters, blank) are refused; nothing scheduled, Kustomer not called", async () => {
  const id = await newConversation();
  const event = await closedEvent(id);
  const long = "c".repeat(100_000);
  const cases = [
    [{ ...event, data: { ...event.data, id: long } }, "event.data.id"],
    [{ ...event, data: { ...event.data, id: "x".repeat(257) } }, "event.data.id"],
    [{ ...event, data: { ...event.data, id: "conv\u0000x" } }, "event.data.id"],
    [{ ...event, data: { ...event.data, id: "   " } }, "event.data.id"],
    [{ ...event, id: "e".repeat(300) }, "event.id"],
    [{ ...event, id: "evt\nnext" }, "event.id"],
    [{ ...event, org: "sandbox-org\u0007" }, "event.org"],
    [{ ...event, org: "  " }, "event.org"],
    [{ ...event, id: "" }, "event.id"],
  ];
  const reads = await conversationReads();
  for (const [bad, path] of cases) {
    const r = await stack.postEvent(bad);
    assert.deepEqual([r.status, r.body.error?.code, r.body.error?.path], [400, "invalid_id", path], r.text.slice(0, 300));
  }
  // An empty org is taken as none named (the event must name its org).
  const noOrg = await stack.postEvent({ ...event, org: "" });
  assert.deepEqual([noOrg.status, noOrg.body.error?.code], [400, "missing_org"], noOrg.text);
  const logged = (await stack.deliveries()).map((d) => d.conversationId);
  assert.ok(logged.every((c) => c.length <= 256 && c.trim() !== "" && !/\p{Cc}/u.test(c)), "nothing scheduled");

  // A close posted after the refused ones falls due after any of them would have: once its
  // survey is out, Kustomer has been asked about nothing else.
  const sentinel = await newConversation();
  const baseline = await conversationReads();
  await stack.close(sentinel);
  assert.equal((await final(sentinel)).state, "sent");
  assert.equal(await conversationReads(), baseline + 1, "one read: the later close's");
  assert.equal(baseline, reads + 1, "only the seed conversation read by the test itself");
  assert.equal(await stack.delivery(id), undefined);
});

test("lone UTF-16 surrogates: in a close event and in Kustomer's answers, the survey still goes out", async () => {
  // A close event whose conversation subject ends with half an emoji, as raw JSON text.
  const id = await newConversation();
  const event = await closedEvent(id);
  event.data.attributes.name = "Refund for order 1234 @@LONE@@";
  const text = JSON.stringify(event).replace("@@LONE@@", "\\ud83d");
  assert.ok(text.includes('1234 \\ud83d"'));
  const posted = await stack.request("POST", CLOSED, { body: text, headers: stack.settingsHeaders() });
  assert.deepEqual([posted.status, posted.body.status], [202, "scheduled"], posted.text);
  assert.equal((await final(id)).state, "sent");

  // A customer and conversation whose names hold one, added to the sandbox as raw JSON text:
  // Kustomer answers them with the escape, and the close event carries one too.
  const lone = `conv-lone-${Date.now()}`;
  const seed = (await stack.conversation("conv-email")).data;
  const set = {
    conversation: { id: lone, attributes: { name: "Subject @@LONE@@", channels: ["email"], assignedUsers: seed.attributes.assignedUsers, tags: seed.attributes.tags } },
    customer: { id: `cust-${lone}`, attributes: { name: "Ann @@LONE@@", displayName: "Ann @@LONE@@", emails: [{ email: "ann.lone@example.com", type: "home" }] } },
  };
  const added = await stack.request("POST", "/sandbox/kustomer/conversations", { body: JSON.stringify(set).replaceAll("@@LONE@@", "\\ud83d") });
  assert.equal(added.status, 201, added.text);
  const raw = await fetch(`${stack.base}/sandbox/kustomer/v1/customers/cust-${lone}`, { headers: { authorization: `Bearer ${KUSTOMER_KEY}` } });
  assert.ok((await raw.text()).includes("Ann \\ud83d"), "Kustomer's answer holds the lone surrogate escape");

  const closed = await stack.close(lone);
  assert.equal(closed.body.edge.status, 202, JSON.stringify(closed.body.edge));
  const delivery = await final(lone);
  assert.equal(delivery.state, "sent", JSON.stringify(delivery));
  const [request] = await stack.stellaRequests(lone);
  assert.equal(request.body.customer.name, "Ann \uFFFD", "the lone half became U+FFFD");
  assert.equal(request.body.customer.email, "ann.lone@example.com");
});

test("resend of a skipped survey whose id needs percent-encoding; invalid ids refused", async () => {
  // A space, a percent sign (with what would decode a second time) and a slash.
  const id = await newConversation((c) => (c.attributes.assignedUsers = []), `conv-h${Date.now()} a%41/b`);
  const closed = await stack.request("POST", `/sandbox/kustomer/conversations/${encodeURIComponent(id)}/close`, { body: {} });
  assert.equal(closed.body.edge.status, 202, closed.text);
  const skipped = await final(id);
  assert.deepEqual([skipped.conversationId, skipped.state, skipped.reason], [id, "skipped", "no_assigned_agent"]);

  const path = `/v1/deliveries/${encodeURIComponent(id)}/resend`;
  const noSecret = await stack.request("POST", path, { headers: stack.settingsHeaders({ "x-app-secret": null }) });
  assert.deepEqual([noSecret.status, noSecret.body.error.code], [401, "missing_app_secret"]);
  const noSettings = await stack.request("POST", path, { headers: stack.orgHeaders() });
  assert.deepEqual([noSettings.status, noSettings.body.error.code], [400, "invalid_settings"], "a resend carries the settings, as a close does");

  const put = await stack.request("PUT", `/sandbox/kustomer/v1/conversations/${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${KUSTOMER_KEY}` },
    body: { assignedUsers: ["user-sam"] },
  });
  assert.equal(put.status, 200, put.text);
  const resent = await stack.request("POST", path, { headers: stack.settingsHeaders() });
  assert.deepEqual([resent.status, resent.body.conversationId], [202, id], resent.text);
  assert.equal((await final(id)).state, "sent");
  const requests = await stack.stellaRequests(id);
  assert.equal(requests.length, 1);
  assert.equal(requests[0].body.employee.email, "sam.agent@acme.example");

  for (const segment of ["%0A", "", "%20%20", "x".repeat(257), "%FF", "a%00b"]) {
    const r = await stack.request("POST", `/v1/deliveries/${segment}/resend`, { headers: stack.settingsHeaders() });
    assert.deepEqual([r.status, r.body.error?.code], [400, "invalid_id"], `${JSON.stringify(segment)}: ${r.text}`);
  }
  const unknown = await stack.request("POST", "/v1/deliveries/conv-never-closed/resend", { headers: stack.settingsHeaders() });
  assert.equal(unknown.status, 404);
});

test("the squat, as the probe ran it: an agent's key closing first with its own secret takes nothing over; a re-link moves trust at once", async () => {
  const SQUAT = "squatters-app-secret-0123456789";
  const RELINKED = "relinked-app-secret-0123456789";
  const fingerprint = (secret) => `v1:${createHmac("sha256", secret).update("stella-connect app secret fingerprint v1").digest("hex")}`;
  const saveLink = async (secret) => {
    const put = await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", {
      headers: { authorization: `Bearer ${KUSTOMER_KEY}` },
      body: { settings: { appSecret: secret, appSecretFingerprint: fingerprint(secret) } },
    });
    assert.equal(put.status, 200, put.text);
  };
  const squat = (event) => stack.postEvent(event, stack.settingsHeaders({ "x-kustomer-api-key": AGENT_KEY, "x-app-secret": SQUAT, "x-stella-api-key": "squatters-own-stella-key" }));
  try {
    // The squatter's close comes first: held, its settings never kept.
    const first = await newConversation();
    const held = await squat(await closedEvent(first));
    assert.deepEqual([held.status, held.body.status], [202, "held"], held.text);
    assert.match(held.body.message, /Re-link the app/);
    // The app's own workflow is trusted at once: its survey goes out.
    const real = await newConversation();
    const r = await stack.postEvent(await closedEvent(real));
    assert.deepEqual([r.status, r.body.status], [202, "scheduled"], r.text);
    // Sent with no other call to the org meanwhile: the close, answered after Kustomer was
    // asked about its secret, set the alarm itself.
    await waitFor(async () => (await stack.stellaRequests(real)).length === 1, 20_000, `${real} sent`);
    assert.equal((await final(real)).state, "sent");
    // The held close is scheduled with the org's own settings, Kustomer's data deciding: one
    // survey, sent with the org's Stella key (the sandbox accepts no other).
    assert.equal((await final(first)).state, "sent");
    assert.equal((await stack.stellaRequests(first)).length, 1);
    // The squatter reads nothing, and is told the fix.
    const log = await stack.request("GET", "/v1/deliveries", { headers: stack.orgHeaders({ "x-kustomer-api-key": AGENT_KEY, "x-app-secret": SQUAT }) });
    assert.deepEqual([log.status, log.body.error?.code], [401, "app_secret_rejected"], log.text);
    assert.match(log.body.error.message, /Re-link the app/);

    // Re-link: a new secret and its fingerprint saved in Kustomer; Check connection (with the
    // new secret, as the settings page runs it) makes the edge trust it at once.
    await saveLink(RELINKED);
    const check = await stack.request("POST", "/v1/settings/check", { headers: stack.settingsHeaders({ "x-app-secret": RELINKED }) });
    assert.equal(check.status, 200, check.text);
    assert.deepEqual([check.body.app.ok, check.body.app.linked], [true, true], check.text);
    const next = await newConversation();
    const relinked = await stack.postEvent(await closedEvent(next), stack.settingsHeaders({ "x-app-secret": RELINKED }));
    assert.deepEqual([relinked.status, relinked.body.status], [202, "scheduled"], relinked.text);
    // The old secret is no longer vouched for: its close is held, and its check says so.
    const old = await stack.request("POST", "/v1/settings/check", { headers: stack.settingsHeaders({ "x-app-secret": APP_SECRET }) });
    assert.deepEqual([old.body.app.ok, old.body.app.code], [false, "secret_mismatch"], old.text);
  } finally {
    // The sandbox's own link again, trusted at once, for the tests after this one.
    await saveLink(APP_SECRET);
    const back = await stack.request("POST", "/v1/settings/check", { headers: stack.settingsHeaders() });
    assert.equal(back.body.app?.ok, true, back.text);
  }
});

/** Every file under `dir`, recursively. */
function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

test("the edge's SQLite files hold no API key and no app secret, with a survey pending", async () => {
  // Surveys have been sent above; this one stays pending for an hour, so the org's settings
  // are kept (sealed) for it.
  const id = await newConversation();
  const pending = await stack.postEvent(await closedEvent(id), stack.settingsHeaders({ "x-seconds-until-send": "3600" }));
  assert.equal(pending.status, 202, pending.text);
  assert.equal((await stack.delivery(id)).state, "scheduled");

  const dir = join(stack.state, "stella-connect-org-scheduler");
  const stored = files(dir).map((path) => ({ path, bytes: readFileSync(path) }));
  const total = stored.reduce((n, f) => n + f.bytes.length, 0);
  assert.ok(stored.length > 0 && total > 0, `the edge stored something under ${dir}`);
  const all = Buffer.concat(stored.map((f) => f.bytes));
  assert.ok(all.includes(Buffer.from(id)), "the scan reads the jobs as stored (the pending conversation's id is there)");
  for (const secret of [STELLA_KEY, KUSTOMER_KEY, APP_SECRET]) {
    for (const encoding of ["utf8", "utf16le"]) {
      const found = stored.filter((f) => f.bytes.includes(Buffer.from(secret, encoding))).map((f) => f.path);
      assert.deepEqual(found, [], `${secret} (${encoding}) on disk`);
    }
  }
});

test("no answer and no log line holds a key or the app secret", () => {
  const everything = stack.log.join("\n");
  assert.ok(everything.length > 1000, "the log holds the whole run");
  for (const key of [KUSTOMER_KEY, STELLA_KEY, APP_SECRET]) assert.ok(!everything.includes(key), `${key} leaked`);
});
