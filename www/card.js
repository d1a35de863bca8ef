// The agent's card beside a conversation: whether a survey will go out, to whom and when, or
// why not (the core's decision), what actually happened (the conversation's entry in the
// delivery log, read through the app's command, and the survey's outcome as Agent Connect
// reported it, which the edge writes onto the conversation), and the "do not send" switch.
import { start, core, options, kustomer, command, describeError, h } from "./app.js";

const root = document.getElementById("card");
let Kustomer;
let current; // {context, settings, user, tags} of the conversation shown
let message = null; // a note under the card, such as a failed write
let delivery = { loading: true }; // {entry, reasons} of the conversation shown, or {error}
let shown = null; // the id of the conversation the card is for, set as soon as it changes
let profile = null; // {for, agent?, error?} Agent Connect's word on the assigned agent (the roster), once read

main().catch((e) => show(h("p", { class: "error" }, `The card could not start: ${e.message}`)));

async function main() {
  Kustomer = await start();
  Kustomer.initialize((context) => load(context));
  Kustomer.on?.("context", (context) => load(context));
}

/** Reads what the decision needs that the context lacks: the settings, the agent, the tags. */
async function load(context) {
  const conversation = context?.conversation;
  if (!conversation?.id) return show(h("p", { class: "muted" }, "Open a conversation to see its survey."));
  message = null;
  if (shown !== conversation.id) delivery = { loading: true };
  shown = conversation.id;
  readDelivery(conversation.id);
  // The core names the records its decision reads, and where to read them (the paths the edge
  // reads too); the customer comes with the context.
  const records = core.recordsToRead({ data: conversation });
  if (!records.ok) return unreadable(records.error);
  const { paths } = records;
  try {
    const [settings, user, tags, customer, brand] = await Promise.all([
      kustomer(Kustomer, "/v1/apps/settings").then((doc) => doc?.data?.attributes?.settings ?? {}),
      paths.user ? kustomer(Kustomer, paths.user) : null,
      paths.tags ? kustomer(Kustomer, paths.tags) : null,
      context.customer ? { data: context.customer } : null,
      // A brand not read (the path is a guess) is judged as such by the core, not a broken card.
      paths.brand ? kustomer(Kustomer, paths.brand).catch(() => null) : null,
    ]);
    current = { conversation, settings, user, tags, customer, brand };
    draw();
    readProfile(conversation, user?.data?.attributes, records.channel);
  } catch (e) {
    show(
      h("p", { class: "error" }, `Could not read this conversation's details from Kustomer: ${describeError(e)}`),
      h("button", { type: "button", onclick: () => load(context) }, "Try again"),
    );
  }
}

function draw() {
  const { conversation, settings, user, tags, customer, brand } = current;
  // The log's entry, once read (null: none): after the close, the headline says what happened.
  const logged = delivery.loading || delivery.error ? undefined : delivery.entry;
  const result = core.explainConversation({ settings, conversation: { data: conversation }, customer, user, tags, brand, options, delivery: logged });
  if (!result.ok) return unreadable(result.error);
  const card = result.card;
  const facts = card.survey
    ? h(
        "dl",
        { class: "facts" },
        h("dt", {}, "To"),
        // Isolated, so a right-to-left name keeps to itself (the core drops direction controls).
        h("dd", {}, card.survey.customerName ? [h("bdi", {}, card.survey.customerName), ` <${card.survey.customerEmail}>`] : card.survey.customerEmail),
        h("dt", {}, "About"),
        h("dd", {}, h("bdi", {}, card.survey.agentEmail)),
        h("dt", {}, "Channel"),
        h("dd", {}, h("bdi", {}, card.survey.channel)),
        h("dt", {}, "When"),
        h("dd", {}, card.sendAt ? when(card.sendAt) : `${card.delay} after closing`),
      )
    : null;
  const toggle = h(
    "button",
    { type: "button", role: "switch", id: "do-not-send", "aria-checked": String(card.doNotSend), onclick: () => setDoNotSend(!card.doNotSend, card.doNotSendKeys) },
    h("span", { class: "track", "aria-hidden": "true" }),
    h("span", {}, "Do not send survey"),
  );
  show(
    h("h2", { class: `outlook ${card.outlook}` }, h("bdi", {}, card.headline)),
    card.detail && h("p", { class: "detail" }, h("bdi", {}, card.detail)),
    facts,
    card.resurvey && h("p", { class: "note" }, card.resurvey),
    standing(card),
    card.outlook === "not_configured" ? null : toggle,
    message && h("p", { class: "error", role: "alert" }, message),
    happened(card.outcome),
  );
}

/** Asks the edge where the assigned agent stands in Agent Connect's roster (cached there a day),
 * so that the card warns before the close when Agent Connect will not survey this conversation.
 * Without the API secret the card says nothing more; a failure (such as the org's Agent
 * Connect calls being spent for the minute) is said in the edge's words, so the warning never
 * silently goes. */
async function readProfile(conversation, agent, channel) {
  const id = conversation.id;
  const key = `${id} ${agent?.email ?? ""} ${channel ?? ""}`;
  if (!agent?.email || (profile?.for === key && !profile.error)) return; // a failure is asked again on the next load
  profile = { for: key };
  try {
    // The channel the core surveys about: the first that is not blank.
    const body = { agentEmail: agent.email, agentName: agent.displayName ?? agent.name, channel };
    const answer = await command(Kustomer, "agent-profile", { body });
    if (profile?.for !== key) return; // another conversation or agent is shown now
    profile = { for: key, agent: answer?.available ? answer.agent : null };
  } catch (e) {
    if (profile?.for !== key) return;
    profile = { for: key, error: describeError(e), code: e?.body?.error?.code ?? "unreadable" };
  }
  if (shown === id && current) draw();
}

/** The roster's warning, when the assigned agent will not be surveyed, or why the roster could
 * not be read; nothing otherwise. */
function standing(card) {
  if (profile?.error && card.survey && card.outlook !== "not_configured") {
    return h(
      "p",
      { class: "warning", role: "status", "data-code": profile.code },
      h("strong", {}, "Agent Connect's roster could not be checked: "),
      `${profile.error}. The card cannot say whether Agent Connect surveys this agent.`,
    );
  }
  const agent = profile?.agent;
  if (!agent || agent.code === "ready" || !card.survey || card.outlook === "not_configured") return null;
  return h("p", { class: "warning", role: "status", "data-code": agent.code }, h("strong", {}, `${agent.standing}: `), agent.message);
}

/** Reads this conversation's entry in the delivery log; draws the card again when it comes. */
async function readDelivery(id) {
  let found;
  try {
    const answer = await command(Kustomer, "list-deliveries", { args: { conversationId: id, limit: 1 } });
    found = { entry: answer.deliveries?.[0] ?? null, reasons: answer.reasons ?? {} };
  } catch (e) {
    found = { error: describeError(e) };
  }
  if (shown !== id) return; // another conversation is shown now
  delivery = found;
  if (current?.conversation.id === id) draw();
}

/** What the app actually did for this conversation, in an agent's words: Agent Connect's
 * outcome first when the conversation carries one (no call needed), then the delivery log. */
function happened(outcome) {
  const first = outcome ? outcomeLine(outcome) : null;
  const section = (...lines) => h("section", { class: "happened", "aria-labelledby": "happened-title" }, h("h3", { id: "happened-title" }, "What happened"), first, ...lines);
  // With an outcome, the log adds only what the outcome does not say: a later survey or a failure.
  if (first && (delivery.loading || delivery.error || !delivery.entry || delivery.entry.state === "sent")) return section();
  if (delivery.loading) return section(h("p", { class: "muted" }, "Reading the delivery log…"));
  if (delivery.error) return section(h("p", { class: "muted" }, `The delivery log could not be read: ${delivery.error}`));
  const entry = delivery.entry;
  if (!entry) return section(h("p", { class: "muted" }, "No survey recorded yet: one is planned when the conversation is closed."));
  // A skip's message is the core's words for agents; a failure's may be a service's own text,
  // so its reason's words come first and the text below them.
  const words = delivery.reasons[entry.reason];
  const why = entry.state === "failed" ? (words ?? entry.message) : (entry.message ?? words);
  const line = {
    scheduled: `Scheduled for ${when(entry.nextAttemptAt ?? entry.sendAt)}.`,
    retrying: `Retrying after a temporary failure; next attempt ${when(entry.nextAttemptAt ?? entry.sendAt)}.`,
    sent: `Survey sent ${when(entry.sentAt ?? entry.updatedAt)}.`,
    skipped: `Not sent: ${why ?? entry.reason}`,
    failed: `Failed: ${why ?? entry.reason}`,
  }[entry.state] ?? `${entry.state}.`;
  const detail = entry.state === "failed" && words && entry.message ? entry.message : null;
  return section(h("p", { class: `delivery ${entry.state}` }, line), detail && h("p", { class: "note" }, detail));
}

/** The core's outcome line: its words, with the time in the agent's own format; the stars are
 * decoration, the words say the rating. */
function outcomeLine(o) {
  return h(
    "p",
    { class: `outcome ${o.status}` },
    o.stars && h("span", { class: "stars", "aria-hidden": "true" }, `${o.stars} `),
    o.lead,
    o.at && ` ${when(o.at)}`,
    o.tail,
  );
}

function unreadable(error) {
  show(h("p", { class: "error" }, `This conversation could not be read: ${error.message}`));
}

function when(iso) {
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

/** Flips the switch at once, writes the attribute, and puts it back if the write fails. */
async function setDoNotSend(value, keys) {
  const shown = current.conversation;
  const before = shown.attributes?.custom ?? {};
  const patch = Object.fromEntries(keys.map((k) => [k, value]));
  shown.attributes = { ...shown.attributes, custom: { ...before, ...patch } };
  message = null;
  draw();
  try {
    await kustomer(Kustomer, `/v1/conversations/${encodeURIComponent(shown.id)}`, "PUT", { custom: patch });
  } catch (e) {
    shown.attributes = { ...shown.attributes, custom: before };
    message = `Could not save "Do not send survey": ${describeError(e)}. It is back as it was.`;
    if (current.conversation === shown) draw();
  }
}

/** Draws the card. Each answer that arrives (the log's entry, the roster) draws it again: the
 * control that had the focus keeps it, so a keyboard user on the switch is not thrown out. */
function show(...children) {
  const focused = root.contains(document.activeElement) ? document.activeElement.id : "";
  root.replaceChildren(...children.filter(Boolean));
  if (focused) document.getElementById(focused)?.focus();
  Kustomer?.resize?.();
}
