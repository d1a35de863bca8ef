// The Agent Connect roster: `GET /v2/employees` (contract: stella-user-management-openapi.yml).
import { text } from "./common.js";

const EMPLOYEES_PAGE = 100; // `number_of_employees` default
const EMPLOYEES_PAGE_MAX = 500;
const EMPLOYEE_STATUSES = ["active", "deactivated", "pending review", "confirmed", "unapproved", "created"];

// The Agent Connect employees matching the Kustomer sandbox's agents. `status` is the profile's
// state: the list answer has no such field (the contract's schema), only the `status` filter.
const ROSTER = [
  employee("sam.agent@acme.example", "user-sam", "Sam", "Agent", "active"),
  employee("ria.agent@acme.example", "user-ria", "Ria", "Agent", "active"),
  employee("kim.agent@acme.example", "user-kim", "Kim", "Agent", "unapproved"),
];

function employee(email, id, first, last, status) {
  return {
    status,
    answer: {
      email,
      custom_employee_id: id,
      first_name: first,
      last_name: last,
      role: "Agent",
      license_type: "Full",
      channels: ["phone", "chat", "email"],
      employment_status: "full-time",
      start_date: "2024-03-15",
      groups: ["Support"],
      manage_team: false,
      last_active: "2026-03-15T14:30:00Z",
    },
  };
}

/** The roster's answer for a request's employee email (any case), or undefined. */
export const knownEmployee = (email) => ROSTER.find((e) => typeof email === "string" && e.answer.email === email.toLowerCase())?.answer;

/** `GET /v2/employees`: the roster, filtered by `status`, a page after `external_id`. */
export function employees(url) {
  const params = url.searchParams;
  const size = params.get("number_of_employees") ?? String(EMPLOYEES_PAGE);
  if (!/^\d{1,4}$/.test(size) || Number(size) < 1 || Number(size) > EMPLOYEES_PAGE_MAX) {
    return text(400, `Validation error: number_of_employees must be an integer from 1 to ${EMPLOYEES_PAGE_MAX}`);
  }
  const status = params.get("status");
  if (status !== null && !EMPLOYEE_STATUSES.includes(status)) return text(400, `Validation error: status must be one of: ${EMPLOYEE_STATUSES.join(", ")}`);
  const listed = ROSTER.filter((e) => status === null || e.status === status).map((e) => e.answer);
  // The parameter is `external_id`; the contract's next_page example says `after`: both work.
  const cursor = params.get("external_id") ?? params.get("after");
  let from = 0;
  if (cursor !== null) {
    const at = listed.findIndex((e) => e.custom_employee_id === cursor);
    if (at < 0) return text(400, "Validation error: external_id is not an employee of this list");
    from = at + 1;
  }
  const page = listed.slice(from, from + Number(size));
  const meta = {};
  if (from + page.length < listed.length) {
    const next = new URL(url);
    next.searchParams.delete("after");
    next.searchParams.set("external_id", page.at(-1).custom_employee_id);
    meta.next_page = next.href;
  }
  return Response.json({ employees: page, meta }, { headers: { "cache-control": "no-store" } });
}
