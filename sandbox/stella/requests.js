// `POST /v1/requests`: checks the key and validates the body against the vendor's schema
// (precompiled by scripts/build-stella-schema.mjs: workerd cannot compile it at run time), then
// records it with its Data Return record (`ResponseBodyDataReturn_FeedbacksV2`), whose delivery
// status is decided now, as Agent Connect does.
//
// `POST /pace` slows acceptance down, for the kill and input drills (scripts/drills.mjs) only: each
// valid request waits `delayMs` plus up to `jitterMs` before it is recorded and answered, and once
// `acceptUpTo` requests are recorded, further ones are held (not recorded) until the pace
// changes, the sandbox is reset or `holdMs` passes (then 503, nothing recorded). Held and waiting
// requests die with the process.
import validate from "./schema.mjs";
import { DEFAULT_KEYS, FAULT_KEYS, REASONS, STATUS, emailKey, fault, json, pad, takeFault, text } from "./common.js";
import { knownEmployee } from "./roster.js";

// Agent Connect suppresses a survey to a customer who got one this recently (Company Info, in
// days; the sandbox's account says 7).
const SUPPRESSION_MS = 7 * 24 * 60 * 60 * 1000;
const CUT = 2000; // the server cuts tags and custom property values to this many characters
// Every request goes to the account's one branding unless it names a brand.
const DEFAULT_BRANDING = "sandbox";

export async function createRequest(sb, request) {
  const storage = sb.ctx.storage;
  await storage.put("attempts", ((await storage.get("attempts")) ?? 0) + 1);

  const faults = await takeFault(storage, FAULT_KEYS.requests);
  if (faults) return fault(faults);

  const keys = (await storage.get("keys")) ?? DEFAULT_KEYS;
  if (!keys.includes(request.headers.get("x-api-key"))) return text(403, "Forbidden");

  const { body, refused } = readBody(await request.text());
  if (refused) return refused;
  const sentKey = typeof body.customer?.email === "string" ? await emailKey(body.customer.email) : null;

  const pace = await storage.get("pace");
  if (pace) await scheduler.wait(pace.delayMs + Math.floor(Math.random() * (pace.jitterMs + 1)));
  return accept(sb, body, sentKey);
}

/** {body} when the text is a request the schema accepts, else {refused}: the 400 saying why. */
function readBody(raw) {
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return { refused: text(400, "Validation error: body is not valid JSON") };
  }
  if (!validate(body)) {
    const reasons = validate.errors.map((e) => {
      const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : "";
      return `${e.instancePath || "(root)"} ${e.message}${extra}`;
    });
    return { refused: text(400, `Validation error: ${reasons.join("; ")}`) };
  }
  return { body };
}

/** Records the request when the pace lets it in; holds it while `acceptUpTo` is reached. */
async function accept(sb, body, sentKey) {
  const storage = sb.ctx.storage;
  const heldSince = Date.now();
  for (;;) {
    // The limit check and the write that counts against it, one request at a time: requests
    // woken together would otherwise read the same `seq`.
    const holding = await sb.serially(() => recordUnlessHeld(sb, body, sentKey));
    if (!holding) return json(200, body);
    const left = heldSince + holding.holdMs - Date.now();
    if (left <= 0) {
      await sb.serially(async () => storage.put("heldOut", ((await storage.get("heldOut")) ?? 0) + 1));
      return text(503, REASONS[503]);
    }
    sb.held = (sb.held ?? 0) + 1;
    try {
      await Promise.race([new Promise((resolve) => (sb.waiting ??= []).push(resolve)), scheduler.wait(left)]);
    } finally {
      sb.held--;
    }
  }
}

/** Stores the request and its record, or answers the pace that holds it. */
async function recordUnlessHeld(sb, body, sentKey) {
  const storage = sb.ctx.storage;
  const now = await storage.get("pace");
  const seq = ((await storage.get("seq")) ?? 0) + 1;
  if (Number.isInteger(now?.acceptUpTo) && seq > now.acceptUpTo) return now;
  // The request's Data Return record, its status decided now, as Agent Connect does.
  const at = await sb.now();
  const lastSent = sentKey ? await storage.get(sentKey) : undefined;
  const status = body.do_not_send === true ? STATUS.doNotSend : lastSent !== undefined && at - lastSent < SUPPRESSION_MS ? STATUS.suppressed : STATUS.sent;
  const stored = { record: dataRecord(seq, body, at, status), survey: { questionId: randomId(), optionIds: [1, 2, 3, 4, 5].map(randomId) }, updated: new Date(at).toISOString() };
  // The key is neither stored nor echoed.
  await storage.put({
    seq,
    [`req:${pad(seq)}`]: { receivedAt: new Date().toISOString(), body },
    [`rec:${pad(seq)}`]: stored,
    ...(status === STATUS.sent && sentKey ? { [sentKey]: at } : {}),
  });
  return null;
}

/** A request's Data Return record, as `ResponseBodyDataReturn_FeedbacksV2` shapes it. */
function dataRecord(seq, body, at, status) {
  const iso = new Date(at).toISOString();
  const cut = (s) => s.slice(0, CUT);
  const known = knownEmployee(body.employee?.email);
  const defined = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return {
    uuid: crypto.randomUUID(),
    sequence_id: seq,
    is_recovery: false,
    branding: body.brand ?? DEFAULT_BRANDING,
    channel: body.channel,
    ...(body.ext_interaction_id === undefined ? {} : { ext_interaction_id: body.ext_interaction_id }),
    language: body.language ?? "en",
    survey_id: 1,
    survey_name: "Agent Connect survey",
    tags: (body.tags ?? []).map(cut),
    request_created_at: iso,
    request_delivery_status: status,
    request_sent_at: status === STATUS.sent ? iso : null,
    requested_via: "API",
    response_received_at: null,
    employee: defined({ custom_id: body.employee?.custom_id, email: body.employee?.email, first_name: known?.first_name, last_name: known?.last_name }),
    customer: defined({ custom_id: body.customer?.custom_id, email: body.customer?.email, full_name: body.customer?.name }),
    custom_properties: Object.fromEntries(Object.entries(body.custom_properties ?? {}).map(([k, v]) => [k, cut(v)])),
    answers: {},
  };
}

/** An option or question id: differs per survey, as Agent Connect's do. */
function randomId() {
  return crypto.randomUUID().replace(/-/g, "").slice(0, 16);
}
