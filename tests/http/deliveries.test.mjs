// The delivery log's filters, cursor and summary, and bulk resend, against a real workerd: the
// SQL store's queries (the jobs table's columns and json_extract over its JSON) must answer as
// the host tests' in-memory store does. A stack of its own, so the org's log holds only what
// these tests put there.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { APP_SECRET, Stack, waitFor } from "./harness.mjs";

const stack = new Stack();
const AGENT = "sam.agent@acme.example"; // the seeded conversations' agent
const OTHER_KEY = "other-org-key";
const OTHER_SECRET = "other-org-app-secret-0123456789";
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

// Closes of conversations the sandbox does not hold, due in 30 days: they stay scheduled, at
// close times the test chose (two to a time, so the id breaks ties).
const SYNTHETIC = 230;
const T0 = Date.now() - 8 * 24 * HOUR;
const syntheticAt = (i) => T0 + Math.floor(i / 2) * 90 * MINUTE;
const syntheticId = (i) => `page-${String(i).padStart(4, "0")}`;
const real = {}; // conversation ids of real surveys by outcome

let baseEvent;
/** A close event of conversation `id`, closed at `closedAtMs`, claiming `org`. */
function syntheticClose(id, closedAtMs, org = "sandbox-org") {
  const at = new Date(closedAtMs).toISOString();
  const data = structuredClone(baseEvent.data);
  data.id = id;
  data.attributes = { ...data.attributes, status: "done", updatedAt: at, modificationHistory: { ...data.attributes.modificationHistory, statusAt: at } };
  return { ...baseEvent, id: `evt-${id}-${closedAtMs}`, org, createdAt: at, data };
}
const LATER = { "x-seconds-until-send": "2592000" };

/** Runs `f` over `items`, `n` at a time. */
async function inBatches(items, n, f) {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(f));
}

const log = (query = "", headers = stack.orgHeaders()) => stack.request("GET", `/v1/deliveries${query ? `?${query}` : ""}`, { headers });
async function ids(query) {
  const r = await log(query);
  assert.equal(r.status, 200, `${query}: ${r.text}`);
  return r.body.deliveries.map((d) => d.conversationId);
}
/** Every entry a query matches, page after page (`limit` a page). */
async function walk(query, limit = 200, meanwhile) {
  const seen = [];
  let cursor = null;
  for (let page = 0; page < 50; page++) {
    const r = await log(`${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.summary === null, cursor !== null, "a summary on the first page only");
    seen.push(...r.body.deliveries);
    await meanwhile?.(page);
    cursor = r.body.nextCursor;
    if (cursor === null) return seen;
  }
  throw new Error("paging never ends");
}
const final = (id) =>
  waitFor(async () => {
    const [d] = (await log(`conversationId=${id}`)).body.deliveries;
    return d && ["sent", "skipped", "failed"].includes(d.state) && d;
  }, 20_000, `${id} final`);

before(async () => {
  await stack.start();
  await stack.request("POST", "/sandbox/kustomer/reset");
  await stack.request("POST", "/sandbox/stella/reset");
  await stack.setDelay(2);
  baseEvent = await stack.closeEvent("conv-email");
  // Real surveys: one sent, one skipped (reopened), one failed (Stella 403).
  real.sent = await stack.newConversation();
  await stack.close(real.sent);
  real.skipped = await stack.newConversation();
  await stack.close(real.skipped);
  await stack.reopen(real.skipped);
  await final(real.sent);
  await final(real.skipped);
  await stack.request("POST", "/sandbox/stella/faults", { body: { status: 403, count: 1 } });
  real.failed = await stack.newConversation();
  await stack.close(real.failed);
  await final(real.failed);
  await inBatches([...Array(SYNTHETIC).keys()], 16, async (i) => {
    const r = await stack.postEvent(syntheticClose(syntheticId(i), syntheticAt(i)), stack.settingsHeaders(LATER));
    assert.equal(r.status, 202, r.text);
  });
});
after(() => stack.stop());

test("the SQL store filters by state, reason, agent, close time and conversation", async () => {
  assert.deepEqual(await ids("state=sent"), [real.sent]);
  assert.deepEqual(await ids("state=skipped"), [real.skipped]);
  assert.deepEqual(await ids("state=failed,skipped"), [real.failed, real.skipped]);
  assert.equal((await ids("state=scheduled&limit=200")).length, 200);
  assert.deepEqual(await ids("state=retrying"), []);
  assert.deepEqual(await ids("reason=reopened"), [real.skipped]);
  assert.deepEqual(await ids("reason=stella_rejected&state=failed"), [real.failed]);
  // The agent, as the request names it, in any letter case; a job without a request has none.
  assert.deepEqual(await ids(`agent=${encodeURIComponent(AGENT.toUpperCase())}`), [real.failed, real.sent]);
  // The close time: from inclusive, to exclusive (page-0010 and page-0011 share theirs).
  const from = new Date(syntheticAt(10)).toISOString();
  const to = new Date(syntheticAt(14)).toISOString();
  assert.deepEqual(await ids(`from=${from}&to=${to}`), ["page-0013", "page-0012", "page-0011", "page-0010"]);
  assert.deepEqual(await ids(`conversationId=page-0007`), ["page-0007"]);
  assert.deepEqual(await ids(`conversationId=page-0007&state=sent`), []);
  // Every parameter given, empty, as the app's command template sends them.
  const empty = await log("state=&reason=&agent=&from=&to=&conversationId=&limit=&cursor=&utcOffsetMinutes=");
  assert.equal(empty.status, 200, empty.text);
  assert.equal(empty.body.deliveries.length, 50, "50 by default");
  assert.deepEqual(empty.body.deliveries.slice(0, 3).map((d) => d.conversationId).sort(), [real.failed, real.sent, real.skipped].sort(), "newest close first");

  // The table's fields, flat.
  const [sent] = (await log(`conversationId=${real.sent}`)).body.deliveries;
  assert.equal(sent.customerName, "Ann Lee");
  assert.equal(sent.customerEmail, "ann.lee@example.com");
  assert.equal(sent.agentEmail, AGENT);
  assert.equal(sent.channel, "email");
  assert.equal(sent.conversationUrl, `${stack.base}/sandbox/kustomer/app/customers/cust-ann/event/${real.sent}`);
  const [pending] = (await log("conversationId=page-0001")).body.deliveries;
  assert.deepEqual([pending.state, pending.agentEmail, pending.customerName, pending.request], ["scheduled", null, null, null]);
  // No survey built yet: the edge links it under the org's saved Kustomer URL (the page holds no pattern).
  assert.equal(pending.conversationUrl, `${stack.base}/sandbox/kustomer/app/conversations/page-0001`);
  // The states in the summary's order with their words, and the edge's limits, for the page.
  assert.deepEqual(empty.body.states.map((s) => [s.state, s.words, s.pending, s.resendable]), [
    ["scheduled", "Scheduled", true, false],
    ["retrying", "Retrying", true, false],
    ["sent", "Sent", false, false],
    ["skipped", "Skipped", false, false],
    ["failed", "Failed", false, true],
  ]);
  assert.deepEqual(empty.body.limits, { perRead: 200, perResend: 50 });
  const reasons = empty.body.reasons;
  for (const code of ["reopened", "stella_rejected", "already_surveyed", "gave_up", "resend"]) assert.ok(reasons[code]?.length > 0, code);
});

test("the cursor pages past 200 entries, none twice and none missed, while closes arrive", async () => {
  const total = SYNTHETIC + 3;
  let arrived = 0;
  const seen = await walk("state=", 200, async (page) => {
    if (page !== 0) return;
    // A close newer than all while the admin reads: it is on a first page, never on a later one.
    const r = await stack.postEvent(syntheticClose("page-late", Date.now() - 1000), stack.settingsHeaders(LATER));
    assert.equal(r.status, 202, r.text);
    arrived += 1;
  });
  const got = seen.map((d) => d.conversationId);
  assert.equal(arrived, 1);
  assert.equal(got.length, total, "every entry once");
  assert.equal(new Set(got).size, total, "none twice");
  assert.ok(!got.includes("page-late"));
  // Newest close first, ties by id, descending.
  const synthetic = got.filter((id) => id.startsWith("page-"));
  assert.deepEqual(synthetic, [...Array(SYNTHETIC).keys()].map(syntheticId).reverse());
  for (let i = 1; i < seen.length; i++) assert.ok(Date.parse(seen[i - 1].closedAt) >= Date.parse(seen[i].closedAt), `${i}`);
  // A filter pages the same way, in small pages.
  const scheduled = await walk("state=scheduled", 7);
  assert.equal(scheduled.length, SYNTHETIC + 1);
  assert.ok(scheduled.every((d) => d.state === "scheduled"));
  // A page exactly full: no cursor to an empty page.
  const two = await log("state=failed,skipped&limit=2");
  assert.equal(two.body.nextCursor, null);
});

test("the summary counts by state, admin's day, reason and agent", async () => {
  const from = new Date(syntheticAt(0)).toISOString();
  const to = new Date(syntheticAt(SYNTHETIC)).toISOString();
  // Whole hours come from the counters, which count a close on the day its hour begins at the
  // offset (exact for whole-hour offsets); the ragged ends of the window from the rows.
  const firstHour = Math.ceil(syntheticAt(0) / HOUR) * HOUR;
  const lastHour = Math.floor(syntheticAt(SYNTHETIC) / HOUR) * HOUR;
  const counted = (t) => (t >= firstHour && t < lastHour ? Math.floor(t / HOUR) * HOUR : t);
  const dayCounts = (offsetMinutes) => {
    const days = new Map();
    for (let i = 0; i < SYNTHETIC; i++) {
      const day = new Date(counted(syntheticAt(i)) + offsetMinutes * MINUTE).toISOString().slice(0, 10);
      days.set(day, (days.get(day) ?? 0) + 1);
    }
    return [...days].map(([day, pending]) => ({ day, sent: 0, skipped: 0, failed: 0, pending }));
  };
  for (const offset of [0, -300, 330, 840]) {
    const r = await log(`from=${from}&to=${to}&utcOffsetMinutes=${offset}&state=sent`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.deliveries, [], "the page follows the state filter");
    const { summary } = r.body;
    assert.deepEqual(summary.byState, { scheduled: SYNTHETIC, retrying: 0, sent: 0, skipped: 0, failed: 0 }, "the summary does not");
    assert.deepEqual(summary.days, dayCounts(offset), `offset ${offset}`);
    assert.deepEqual([summary.byReason, summary.byAgent], [[], []]);
  }
  const all = (await log()).body.summary;
  assert.equal(all.byState.sent + all.byState.skipped + all.byState.failed, 3);
  assert.ok(all.byState.scheduled >= SYNTHETIC);
  assert.deepEqual(all.byAgent, [{ agent: AGENT, count: 2 }]);
  assert.deepEqual(
    all.byReason.sort((a, b) => a.reason.localeCompare(b.reason)),
    [{ reason: "reopened", count: 1 }, { reason: "stella_rejected", count: 1 }],
  );
  // Summed over the days, so that a run across midnight counts the same.
  const sum = (k) => all.days.reduce((n, d) => n + d[k], 0);
  assert.deepEqual([sum("sent"), sum("skipped"), sum("failed")], [1, 1, 1]);
});

test("a bad query is a 400 naming its parameter, before Kustomer is asked", async () => {
  const before = (await stack.kustomerStats()).total;
  for (const [query, code, path] of [
    ["color=red", "invalid_query", "color"],
    ["state=sent&state=failed", "invalid_query", "state"],
    ["state=sending", "invalid_query", "state"],
    ["reason=because", "invalid_query", "reason"],
    ["from=yesterday", "invalid_query", "from"],
    ["limit=0", "invalid_query", "limit"],
    ["limit=201", "invalid_query", "limit"],
    ["limit=99999999999999999999999", "invalid_query", "limit"],
    ["utcOffsetMinutes=841", "invalid_query", "utcOffsetMinutes"],
    ["cursor=garbage!", "invalid_cursor", "cursor"],
    [`cursor=${Buffer.from("12x:abc").toString("base64url")}`, "invalid_cursor", "cursor"],
    [`agent=${"a".repeat(5000)}`, "invalid_query", "query"],
  ]) {
    const r = await log(query);
    assert.equal(r.status, 400, `${query.slice(0, 60)}: ${r.text.slice(0, 300)}`);
    assert.deepEqual([r.body.error.code, r.body.error.path], [code, path], query.slice(0, 60));
  }
  const after = (await stack.kustomerStats()).total;
  assert.deepEqual(after, before, "no call reached Kustomer");
});

test("bulk resend: mixed results, at most 50, the org's own surveys only", async () => {
  const resend = (ids, headers = stack.settingsHeaders()) => stack.request("POST", "/v1/deliveries/resend", { headers, body: { conversationIds: ids } });
  const r = await resend([real.failed, real.sent, "never-closed", real.failed, "page-0003"]);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(
    r.body.results.map((x) => [x.conversationId, x.status]),
    [[real.failed, "scheduled"], [real.sent, "not_resendable"], ["never-closed", "not_found"], ["page-0003", "not_resendable"]],
  );
  assert.ok(r.body.results.every((x) => x.message.length > 0));
  assert.deepEqual([r.body.scheduled, r.body.refused], [1, 3]);
  // The Stella fault is used up: the resent survey goes out.
  await waitFor(async () => (await log(`conversationId=${real.failed}`)).body.deliveries[0].state === "sent", 20_000, "the resent survey sent");
  assert.equal((await stack.stellaRequests(real.failed)).length, 1);

  const many = await resend(Array.from({ length: 51 }, (_, i) => `x${i}`));
  assert.deepEqual([many.status, many.body.error.code], [400, "too_many_ids"]);
  const none = await resend([]);
  assert.deepEqual([none.status, none.body.error.code], [400, "invalid_shape"]);
  const wrong = await resend([real.skipped], stack.settingsHeaders({ "x-app-secret": "not-the-org-secret-000" }));
  assert.deepEqual([wrong.status, wrong.body.error.code], [401, "app_secret_rejected"]);
  const missing = await resend([real.skipped], stack.settingsHeaders({ "x-app-secret": null }));
  assert.deepEqual([missing.status, missing.body.error.code], [401, "missing_app_secret"]);

  // Another org, whose admin linked its own app (its own secret and fingerprint, saved in its
  // Kustomer settings), sees and resends only its own surveys.
  const linked = await stack.request("PUT", "/sandbox/kustomer/v1/apps/settings", {
    headers: { authorization: `Bearer ${OTHER_KEY}` },
    body: { settings: { appSecret: OTHER_SECRET, appSecretFingerprint: `v1:${createHmac("sha256", OTHER_SECRET).update("stella-connect app secret fingerprint v1").digest("hex")}` } },
  });
  assert.equal(linked.status, 200, linked.text);
  const theirs = stack.settingsHeaders({ "x-kustomer-api-key": OTHER_KEY, "x-app-secret": OTHER_SECRET, ...LATER });
  const closed = await stack.postEvent(syntheticClose("other-conv", Date.now() - 5000, "other-org"), theirs);
  assert.equal(closed.status, 202, closed.text);
  const asThem = stack.orgHeaders({ "x-kustomer-api-key": OTHER_KEY, "x-app-secret": OTHER_SECRET });
  assert.deepEqual((await log("", asThem)).body.deliveries.map((d) => d.conversationId), ["other-conv"]);
  assert.deepEqual((await log(`conversationId=${real.skipped}`, asThem)).body.deliveries, []);
  assert.equal((await log("", asThem)).body.summary.byState.skipped, 0);
  const cross = await resend([real.skipped], theirs);
  assert.equal(cross.status, 200, cross.text);
  assert.deepEqual(cross.body.results.map((x) => x.status), ["not_found"]);
  assert.equal((await log(`conversationId=${real.skipped}`)).body.deliveries[0].state, "skipped", "untouched");
  const ourSecret = await log("", stack.orgHeaders({ "x-kustomer-api-key": OTHER_KEY, "x-app-secret": APP_SECRET }));
  assert.deepEqual([ourSecret.status, ourSecret.body.error.code], [401, "app_secret_rejected"]);
});

/** The summary a count of every entry gives (whole-hour offsets: the counters are exact there). */
async function countedSummary(query, offsetMinutes) {
  const entries = await walk(`state=&${query}`);
  const byState = { scheduled: 0, retrying: 0, sent: 0, skipped: 0, failed: 0 };
  const days = new Map();
  const tops = { reason: new Map(), agent: new Map() };
  for (const d of entries) {
    byState[d.state] += 1;
    const day = new Date(Date.parse(d.closedAt) + offsetMinutes * MINUTE).toISOString().slice(0, 10);
    const row = days.get(day) ?? { day, sent: 0, skipped: 0, failed: 0, pending: 0 };
    row[["scheduled", "retrying"].includes(d.state) ? "pending" : d.state] += 1;
    days.set(day, row);
    for (const [k, v] of [["reason", d.reason], ["agent", d.agentEmail?.toLowerCase()]]) if (v) tops[k].set(v, (tops[k].get(v) ?? 0) + 1);
  }
  const top = (k) => [...tops[k]].map(([name, count]) => ({ [k]: name, count })).sort((a, b) => b.count - a.count || a[k].localeCompare(b[k]));
  return { byState, days: [...days.values()].sort((a, b) => a.day.localeCompare(b.day)), byReason: top("reason"), byAgent: top("agent") };
}

test("the summary's counters agree with the rows, after sends and resends, for any window", async () => {
  const at = (i, extra = 0) => new Date(syntheticAt(i) + extra).toISOString();
  for (const [query, offset] of [
    ["", 0],
    ["utcOffsetMinutes=-300", -300],
    [`from=${at(20, 17 * MINUTE)}&to=${at(180, 41 * MINUTE)}&utcOffsetMinutes=60`, 60],
    [`from=${at(30)}&to=${at(31, 20 * MINUTE)}`, 0],
    [`agent=${encodeURIComponent(AGENT.toUpperCase())}`, 0],
    ["reason=reopened", 0],
    ["conversationId=page-0009", 0],
  ]) {
    const r = await log(query);
    assert.equal(r.status, 200, `${query}: ${r.text}`);
    assert.deepEqual(r.body.summary, await countedSummary(query, offset), query);
  }
});

/** `sqlite3 file sql`'s output (Debian's sqlite3, which `make setup` installs). */
function sqlite3(file, sql) {
  return execFileSync("sqlite3", [file, sql], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

test("a Durable Object from before the closed_ms column pages and counts as before", async () => {
  const window = `from=${new Date(syntheticAt(10)).toISOString()}&to=${new Date(syntheticAt(14)).toISOString()}`;
  const read = async () => ({
    all: (await walk("state=", 9)).map((d) => [d.conversationId, d.state, d.closedAt]),
    window: await ids(window),
    summary: (await log()).body.summary,
    // A window: a row without its close time would drop out of it.
    theirs: (await log(`from=${new Date(T0).toISOString()}`, stack.orgHeaders({ "x-kustomer-api-key": OTHER_KEY, "x-app-secret": OTHER_SECRET }))).body.deliveries.map((d) => d.conversationId),
  });
  const before = await read();
  assert.ok(before.all.length > SYNTHETIC && before.theirs.length === 1);

  // Stopped, the orgs' tables are taken back: this org's to the old schema (no closed_ms, no
  // jobs_closed), the other's rows left without a close time, as an older worker's writes are.
  await stack.kill();
  const tables = readdirSync(stack.state, { recursive: true })
    .filter((f) => f.endsWith(".sqlite") && !f.endsWith("metadata.sqlite"))
    .map((f) => join(stack.state, f))
    .filter((f) => sqlite3(f, "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'") === "1");
  const ours = tables.find((f) => Number(sqlite3(f, "SELECT count(*) FROM jobs")) > SYNTHETIC);
  const theirs = tables.find((f) => sqlite3(f, "SELECT count(*) FROM jobs WHERE conversation_id = 'other-conv'") === "1");
  assert.ok(ours && theirs && ours !== theirs, `the two orgs' tables among ${tables}`);
  sqlite3(ours, "DROP INDEX jobs_closed; ALTER TABLE jobs DROP COLUMN closed_ms; DROP TABLE tally;");
  sqlite3(theirs, "DROP TABLE tally;");
  assert.ok(!sqlite3(ours, "SELECT name FROM pragma_table_info('jobs')").includes("closed_ms"));
  sqlite3(theirs, "UPDATE jobs SET closed_ms = NULL");

  await stack.start();
  assert.deepEqual(await read(), before, "the same log, page after page, and the same summary");
  // A close after the change sorts among the filled-in rows.
  const r = await stack.postEvent(syntheticClose("page-after", syntheticAt(11) + 1), stack.settingsHeaders(LATER));
  assert.equal(r.status, 202, r.text);
  assert.deepEqual(await ids(window), ["page-0013", "page-0012", "page-after", "page-0011", "page-0010"]);
  // The counters, rebuilt from the rows at start, go on counting.
  const summary = (await log()).body.summary;
  assert.equal(summary.byState.scheduled, before.summary.byState.scheduled + 1);
});
