// Seeded data of the Kustomer sandbox: one org, resources in Kustomer's JSON:API shapes.
// Each conversation exercises one case of the survey decision (see the comments).

export const SEED_ORG = "sandbox-org";
const CREATED = "2026-11-20T09:00:00.000Z";

const user = (id, name, email) => ({ type: "user", id, attributes: { name, displayName: name, email } });
const tag = (id, name, color) => ({ type: "tag", id, attributes: { name, color } });
// A multi-brand org's brands (kustomer-apps.md §9; the attributes beyond `name` are a guess).
const brand = (id, name, isDefault) => ({
  type: "brand",
  id,
  attributes: { name, default: isDefault, createdAt: CREATED, updatedAt: CREATED },
});
const customer = (id, name, emails) => ({
  type: "customer",
  id,
  attributes: { name, displayName: name, emails, locale: "en_us" },
});

// `brand` (an id) only when given: the older seeded conversations carry none.
function conversation(id, name, { channels, assignedUsers, customerId, tags = [], custom = {}, locale = "en_us", brand }) {
  return {
    type: "conversation",
    id,
    attributes: {
      name,
      channels,
      status: "open",
      priority: 3,
      direction: "in",
      tags,
      assignedUsers,
      assignedTeams: [],
      custom,
      locale,
      defaultLang: "en_us",
      rev: 1,
      createdAt: CREATED,
      updatedAt: CREATED,
      modificationHistory: { statusAt: CREATED },
      ...(brand !== undefined && { brand }),
    },
    relationships: { customer: { data: { type: "customer", id: customerId } } },
  };
}

export const users = [
  user("user-sam", "Sam Agent", "sam.agent@acme.example"),
  user("user-ria", "Ria Agent", "ria.agent@acme.example"),
  user("user-noemail", "No Email Agent", null),
  // Listed as unapproved by the Stella sandbox's Agent Connect roster.
  user("user-kim", "Kim Agent", "kim.agent@acme.example"),
];

export const brands = [brand("brand-acme", "Acme", true), brand("brand-globex", "Globex", false)];

export const tags = [
  tag("tag-shipping", "shipping", "#1e88e5"),
  tag("tag-order", "order-status", "#43a047"),
  tag("tag-vip", "VIP", "#f4511e"),
];

export const customers = [
  // First email blank, second valid: exercises how the app picks the customer's address.
  customer("cust-ann", "Ann Lee", [
    { email: "", type: "home", verified: false },
    { email: "ann.lee@example.com", type: "work", verified: true },
  ]),
  customer("cust-zoe", "Zoë Ōkubo", [{ email: "zoe.okubo@example.com", type: "home", verified: true }]),
  customer("cust-noemail", "Nora Nomail", []),
  // A hostile name: pages that show it must escape it.
  customer("cust-xss", "<img src=x onerror=alert(1)>", [{ email: "xss@example.com", type: "home", verified: true }]),
];

export const conversations = [
  conversation("conv-email", "Where is my order?", {
    channels: ["email"],
    assignedUsers: ["user-sam"],
    customerId: "cust-ann",
    tags: ["tag-shipping", "tag-order"],
    custom: { "@stellaDoNotSendStellaConnectRequestBool": false },
    brand: "brand-acme",
  }),
  conversation("conv-chat", "Chat about a refund", { channels: ["chat"], assignedUsers: ["user-ria"], customerId: "cust-zoe" }),
  // Voice is sent to Stella as channel "phone".
  conversation("conv-voice", "Phone call", { channels: ["voice"], assignedUsers: ["user-sam"], customerId: "cust-zoe" }),
  conversation("conv-unassigned", "Nobody picked this up", { channels: ["email"], assignedUsers: [], customerId: "cust-ann" }),
  conversation("conv-no-email", "Customer without email", {
    channels: ["email"],
    assignedUsers: ["user-sam"],
    customerId: "cust-noemail",
  }),
  conversation("conv-xss", "Hostile customer name", { channels: ["chat"], assignedUsers: ["user-ria"], customerId: "cust-xss" }),
  // A second brand: its name comes from GET /v1/brands/{id}.
  conversation("conv-brand", "Order from Globex", {
    channels: ["email"],
    assignedUsers: ["user-ria"],
    customerId: "cust-zoe",
    brand: "brand-globex",
  }),
  // Assigned to an agent whose Agent Connect profile is not approved.
  conversation("conv-unapproved", "Question for Kim", { channels: ["email"], assignedUsers: ["user-kim"], customerId: "cust-ann" }),
];
