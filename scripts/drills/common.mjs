// Shared pieces of the fault drills (scripts/drills.mjs): a quiet Stack, conversations in bulk,
// events built locally, many posts in flight, and the final count of Stella requests.
import { Stack, sleep, waitFor } from "../../tests/http/harness.mjs";

export { sleep, waitFor };

/** The harness's Stack, but its request log is not kept: drills poll lists of 1,000 requests. */
export class DrillStack extends Stack {
  async request(...args) {
    const reply = await super.request(...args);
    this.log.length = 0;
    return reply;
  }

  /** Stella sandbox: every request it accepted, and how many attempts it has seen (faults included). */
  async stella() {
    const { status, body, text } = await this.request("GET", "/sandbox/stella/requests");
    if (status !== 200) throw new Error(`GET /sandbox/stella/requests: ${status} ${text}`);
    return body;
  }

  async stellaFault(fault) {
    const r = await this.request("POST", "/sandbox/stella/faults", { body: fault });
    if (r.status !== 200) throw new Error(`Stella fault ${JSON.stringify(fault)}: ${r.text}`);
  }

  /**
   * Stella sandbox's pace (the kill drill only): each request recorded `delayMs` plus up to
   * `jitterMs` after it arrives, none past `acceptUpTo` recorded; `null` restores full speed.
   */
  async stellaPace(pace) {
    const r = pace === null ? await this.request("DELETE", "/sandbox/stella/pace") : await this.request("POST", "/sandbox/stella/pace", { body: pace });
    if (r.status !== 200) throw new Error(`Stella pace ${JSON.stringify(pace)}: ${r.status} ${r.text}`);
  }

  /** {pace, held, heldOut}: held now at `acceptUpTo`, and answered 503 after being held too long. */
  async stellaPaceState() {
    const r = await this.request("GET", "/sandbox/stella/pace");
    if (r.status !== 200) throw new Error(`GET /sandbox/stella/pace: ${r.status} ${r.text}`);
    return r.body;
  }

  /**
   * Kustomer sandbox's API budget: {default, all, orgs, windows: {org: [{start, startMs,
   * windowSeconds, limit, calls, byKey, limited, firstCallAt, lastCallAt}]}} (oldest first).
   */
  async kustomerBudget(org) {
    const r = await this.request("GET", `/sandbox/kustomer/budget${org ? `?org=${encodeURIComponent(org)}` : ""}`);
    if (r.status !== 200) throw new Error(`GET /sandbox/kustomer/budget: ${r.status} ${r.text}`);
    return r.body;
  }

  /** Kustomer sandbox: every /v1 answer held back `minMs`–`maxMs` (from `seed`) after the call is counted. */
  async kustomerLatency(latency) {
    const r = await this.request("POST", "/sandbox/kustomer/latency", { body: latency });
    if (r.status !== 200) throw new Error(`Kustomer latency ${JSON.stringify(latency)}: ${r.status} ${r.text}`);
  }

  async kustomerFault(fault) {
    const r = await this.request("POST", "/sandbox/kustomer/faults", { body: fault });
    if (r.status !== 200) throw new Error(`Kustomer fault ${JSON.stringify(fault)}: ${r.text}`);
  }

  /** The edge's delivery log (the 200 latest closes matching `query`, such as `state=retrying`),
   * or undefined when the edge did not answer 200. */
  async deliveries(query = "") {
    // The harness's org headers carry the org's app secret where the edge asks for one.
    const headers = this.orgHeaders?.() ?? { "x-kustomer-api-key": "sandbox-kustomer-key", "x-kustomer-api-url": `${this.base}/sandbox/kustomer` };
    const { status, body } = await this.request("GET", `/v1/deliveries?limit=200${query && `&${query}`}`, { headers });
    return status === 200 ? body.deliveries : undefined;
  }

  async reset() {
    for (const sandbox of ["kustomer", "stella"]) {
      const r = await this.request("POST", `/sandbox/${sandbox}/reset`);
      if (r.status !== 200) throw new Error(`reset ${sandbox}: ${r.text}`);
    }
  }
}

/** The delivery log keeps the newest 200 jobs (src/edge/gateway.rs DELIVERY_LOG_LIMIT). */
export const DELIVERY_LOG_LIMIT = 200;
export const FINAL = ["sent", "skipped", "failed"];

/** Why an ineligible drill conversation gets no survey (the edge's skip code). */
export const INELIGIBLE_KINDS = ["no_assigned_agent", "no_customer_email"];

/**
 * One conversation of a drill and its customer, as sets for `POST /sandbox/kustomer/conversations`.
 * Eligible ones have an assigned seed agent (user-sam / user-ria) and a customer with an email;
 * `ineligible` names what is missing (INELIGIBLE_KINDS).
 */
export function conversationSet(id, i, { statusAt, status = "done", ineligible } = {}) {
  const customerId = `cust-${id}`;
  const name = `Drill Customer ${i}`;
  const attributes = {
    name: `Drill conversation ${i}`,
    channels: [i % 3 === 0 ? "chat" : "email"],
    status,
    priority: 3,
    direction: "in",
    tags: i % 2 ? ["tag-shipping"] : ["tag-order", "tag-vip"],
    assignedUsers: ineligible === "no_assigned_agent" ? [] : [i % 2 ? "user-ria" : "user-sam"],
    assignedTeams: [],
    custom: {},
    locale: "en_us",
    rev: 1,
    createdAt: statusAt,
    updatedAt: statusAt,
    modificationHistory: { statusAt },
  };
  const emails = ineligible === "no_customer_email" ? [] : [{ email: `${id}@customers.example`, type: "home", verified: true }];
  return {
    conversation: { id, attributes, relationships: { customer: { data: { type: "customer", id: customerId } } } },
    customer: { id: customerId, attributes: { name, displayName: name, emails, locale: "en_us" } },
  };
}

/** The conversation resource as Kustomer sends it in an event, with a status and status time. */
export function resource(set, { status, statusAt }) {
  const c = set.conversation;
  return {
    type: "conversation",
    id: c.id,
    attributes: { ...c.attributes, status, updatedAt: statusAt, modificationHistory: { statusAt } },
    relationships: c.relationships,
  };
}

/** A `kustomer.conversation.update` event: the status changed from `before` to `after` at `statusAt`. */
export function statusEvent(set, { before, after, statusAt, eventId }) {
  return {
    id: eventId,
    name: "kustomer.conversation.update",
    org: "sandbox-org",
    createdAt: statusAt,
    data: resource(set, { status: after, statusAt }),
    changes: { attributes: { status: { op: "replace", before, after } } },
  };
}

export const closeEvent = (set, statusAt, eventId = `evt-close-${set.conversation.id}-${statusAt}`) =>
  statusEvent(set, { before: "open", after: "done", statusAt, eventId });
export const reopenEvent = (set, statusAt, eventId = `evt-reopen-${set.conversation.id}-${statusAt}`) =>
  statusEvent(set, { before: "done", after: "open", statusAt, eventId });

/** Stores sets in the Kustomer sandbox, 500 per call. */
export async function addConversations(stack, sets) {
  for (let i = 0; i < sets.length; i += 500) {
    const r = await stack.request("POST", "/sandbox/kustomer/conversations", { body: sets.slice(i, i + 500) });
    if (r.status !== 201) throw new Error(`add conversations: ${r.status} ${r.text}`);
  }
}

/** Runs `fn` over `items` with at most `inFlight` at once, in order of start; returns the results in order. */
export async function pool(items, inFlight, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, worker));
  return results;
}

/** Posts events to the edge's workflow endpoint (32 in flight); returns the replies in order. */
export function postEvents(stack, events, headers, inFlight = 32) {
  return pool(events, inFlight, (event) => stack.postEvent(event, headers));
}

/** `{"202 scheduled": n, "200 ignored stale_event": m, …}` over edge replies. */
export function tallyReplies(replies) {
  const tally = {};
  for (const r of replies) {
    const key = [r.status, r.body?.status ?? r.body?.error?.code, r.body?.reason].filter((x) => x !== undefined).join(" ");
    tally[key] = (tally[key] ?? 0) + 1;
  }
  return tally;
}

/** Stella's requests grouped by conversation id: id → [receivedAt ms, …] in arrival order. */
export function byConversation(requests) {
  const map = new Map();
  for (const r of requests) {
    const id = r.body?.ext_interaction_id;
    if (!map.has(id)) map.set(id, []);
    map.get(id).push(Date.parse(r.receivedAt));
  }
  return map;
}

/** How many of `ids` Stella has at least one request for. */
export async function arrivedCount(stack, ids) {
  const seen = byConversation((await stack.stella()).requests);
  let n = 0;
  for (const id of ids) if (seen.has(id)) n++;
  return n;
}

/**
 * Waits until every eligible conversation has reached Stella, then until nothing more happens:
 * Stella's attempt counter unchanged for `quietMs` (longer than a lease plus a retry), and, when
 * the drill's jobs all fit in the delivery log, every job final. Returns Stella's state then.
 */
export async function settle(stack, { eligible, jobs, limitMs, quietMs = 5000, progress }) {
  await waitFor(async () => {
    const n = await arrivedCount(stack, eligible);
    progress?.(n);
    return n === eligible.length;
  }, limitMs, `all ${eligible.length} eligible surveys at Stella`, 500);
  if (jobs <= DELIVERY_LOG_LIMIT) {
    await waitFor(async () => {
      const log = await stack.deliveries();
      return log && log.every((d) => FINAL.includes(d.state));
    }, limitMs, "every job final in the delivery log", 500);
  }
  let last = (await stack.stella()).attempts;
  let since = Date.now();
  await waitFor(async () => {
    const now = (await stack.stella()).attempts;
    if (now !== last) [last, since] = [now, Date.now()];
    return Date.now() - since >= quietMs;
  }, limitMs, "Stella to go quiet", 500);
  return stack.stella();
}

/**
 * The count every drill ends with: Stella requests per conversation. `explain(id, times)` may
 * say why a duplicate is expected (the kill drill's documented window); others are unexplained.
 */
export function count({ requests, eligible, ineligible, explain = () => null }) {
  const seen = byConversation(requests);
  const ours = new Set([...eligible, ...ineligible]);
  let total = 0;
  for (const [id, times] of seen) if (ours.has(id)) total += times.length;
  const lost = eligible.filter((id) => !seen.has(id));
  const duplicated = eligible.filter((id) => seen.get(id)?.length > 1);
  const duplicates = duplicated.reduce((n, id) => n + seen.get(id).length - 1, 0);
  const explained = duplicated.filter((id) => explain(id, seen.get(id)));
  const unexplained = duplicated.filter((id) => !explained.includes(id));
  const ineligibleSent = ineligible.filter((id) => seen.has(id));
  const foreign = requests.length - total; // requests for conversations the drill did not make
  const ok = lost.length === 0 && unexplained.length === 0 && ineligibleSent.length === 0 && foreign === 0;
  let verdict;
  if (!ok) {
    const why = [];
    if (lost.length) why.push(`${lost.length} lost`);
    if (unexplained.length) why.push(`${unexplained.length} unexplained duplicate(s)`);
    if (ineligibleSent.length) why.push(`${ineligibleSent.length} ineligible sent`);
    if (foreign) why.push(`${foreign} unexpected request(s)`);
    verdict = `FAIL: ${why.join(", ")}`;
  } else if (explained.length) {
    verdict = `PASS: duplicate within the documented window (${explained.length})`;
  } else {
    verdict = "PASS: exactly once";
  }
  return {
    stellaRequests: total,
    duplicates,
    lost: lost.length,
    ineligibleSent: ineligibleSent.length,
    ok,
    verdict,
    lostIds: lost.slice(0, 20),
    duplicateIds: duplicated.slice(0, 20).map((id) => ({ id, receivedAt: seen.get(id).map((t) => new Date(t).toISOString()), explained: explained.includes(id) })),
    ineligibleSentIds: ineligibleSent.slice(0, 20),
  };
}

/** A seeded random source (mulberry32), so a drill's shuffles and kill moments can be replayed. */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle(list, rand) {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}
