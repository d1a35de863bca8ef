#![cfg(not(target_arch = "wasm32"))]
//! Forgetting a customer (`edge::forget`) and the org's audit list (`edge::audit`), on the host
//! with the fakes of `tests/edge.rs`: a forget by e-mail or by Kustomer id cancels the
//! customer's pending surveys and removes their data from every entry, counts right and touches
//! no other customer; the daily sweep finds customers deleted in Kustomer within its calls and
//! the org's budget; the audit records each kind, for a year, and never whom.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::*;
use serde_json::{json, Value};
use stella_connect::edge::audit::AuditKind;
use stella_connect::edge::forget::{self, MAX_FORGET_PER_CALL, SWEEP_CALLS_PER_DAY};
use stella_connect::edge::job::{Job, JobState};
use stella_connect::edge::Reply;
use support::fixture;

const DELAY_MS: i64 = 900_000;
const DAY_MS: i64 = 86_400_000;
/// The fixtures' customer, and the address their surveys go to.
const ANN: &str = "5f0c1b2a3d4e5f6a7b8c9d31";
const ANN_EMAIL: &str = "ann.lee@example.com";
const BOB: &str = "5f0c1b2a3d4e5f6a7b8c9d99";
const BOB_EMAIL: &str = "bob@example.com";

/// A conversation of `customer` (with their own address when not Ann), as Kustomer holds it.
fn add_conversation(edge: &Edge, id: &str, customer: &str, email: &str) {
    let mut conversation = fixture("conversation");
    conversation["data"]["id"] = json!(id);
    conversation["data"]["relationships"]["customer"]["data"]["id"] = json!(customer);
    edge.world.add_conversation(conversation);
    if customer != ANN {
        let mut doc = fixture("customer");
        doc["data"]["id"] = json!(customer);
        doc["data"]["attributes"]["emails"] = json!([{ "email": email }]);
        edge.world.add_customer(doc);
    }
}

/// Closes `id` (of `customer`) at `at`, with `headers`.
fn close_at(edge: &Edge, id: &str, customer: &str, at: i64, headers: &[(String, String)]) -> Reply {
    let mut event = close_event(id, &iso(at));
    event["data"]["relationships"]["customer"]["data"]["id"] = json!(customer);
    let reply = edge.close_with(&event, headers);
    assert!(reply.status < 300, "{reply:?}");
    reply
}

fn forget(edge: &Edge, customer: &str) -> Reply {
    let body = json!({ "customer": customer }).to_string();
    edge.call(
        "POST",
        "/v1/customers/forget",
        &key_header(KUSTOMER_KEY),
        &body,
    )
}

fn audit(edge: &Edge) -> Vec<Value> {
    let reply = edge.call("GET", "/v1/audit", &key_header(KUSTOMER_KEY), "");
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["entries"].as_array().unwrap().clone()
}

fn text(job: &Job) -> String {
    serde_json::to_string(job).unwrap()
}

/// Whether any of the customer's data is in `job`.
fn holds(job: &Job, email: &str) -> bool {
    forget::holds_customer(job) || text(job).to_lowercase().contains(email)
}

/// Ann's conversation `a` sent, her `b` and Bob's `c` pending (closed a day later).
fn two_customers() -> Edge {
    let edge = Edge::quick();
    for (id, customer, email) in [
        ("conv-a", ANN, ANN_EMAIL),
        ("conv-b", ANN, ANN_EMAIL),
        ("conv-c", BOB, BOB_EMAIL),
    ] {
        add_conversation(&edge, id, customer, email);
    }
    close_at(&edge, "conv-a", ANN, closed_ms(), &settings_headers());
    edge.advance_to(closed_ms() + DELAY_MS);
    assert_eq!(edge.job("conv-a").state, JobState::Sent);
    let later = closed_ms() + DAY_MS;
    edge.set_now(later);
    close_at(&edge, "conv-b", ANN, later, &settings_headers());
    close_at(&edge, "conv-c", BOB, later, &settings_headers());
    assert!(holds(&edge.job("conv-a"), ANN_EMAIL));
    edge
}

#[test]
fn forgetting_by_id_cancels_pending_surveys_and_strips_every_entry() {
    let edge = two_customers();
    let reply = forget(&edge, ANN);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (reply.body["entries"].clone(), reply.body["more"].clone()),
        (json!(2), json!(false))
    );
    let (a, b) = (edge.job("conv-a"), edge.job("conv-b"));
    assert!(
        !holds(&a, ANN_EMAIL) && !holds(&b, ANN_EMAIL),
        "{a:?} {b:?}"
    );
    assert_eq!(a.state, JobState::Sent, "what happened stays: sent");
    assert_eq!(
        edge.delivery("conv-a")["customerEmail"],
        "removed on request"
    );
    assert!(
        a.request.as_ref().unwrap()["employee"]["email"].is_string(),
        "the agent stays"
    );
    assert_eq!(
        (b.state, b.reason.as_deref()),
        (JobState::Skipped, Some("forgotten"))
    );
    edge.advance_to(closed_ms() + 3 * DAY_MS);
    let accepted = edge.world.accepted();
    assert_eq!(
        accepted.len(),
        2,
        "Ann's pending survey never goes; Bob's does"
    );
    assert_eq!(accepted[1]["customer"]["email"], BOB_EMAIL);
    assert!(
        holds(&edge.job("conv-c"), BOB_EMAIL),
        "no other customer is touched"
    );
    // A forgotten survey is not offered for a resend.
    assert_eq!(edge.resend("conv-b", KUSTOMER_KEY).status, 409);
    // Nothing is found a second time: the index is gone with the data.
    assert_eq!(forget(&edge, ANN).body["entries"], 0);
}

#[test]
fn forgetting_by_email_strips_what_was_sent_and_stops_what_is_not_addressed_yet() {
    let edge = two_customers();
    let reply = forget(&edge, "  Ann.Lee@Example.COM ");
    assert_eq!(reply.status, 200, "{reply:?}");
    // Only the sent entry knows her address; the pending one is found at its send.
    assert_eq!(reply.body["entries"], 1);
    assert!(!holds(&edge.job("conv-a"), ANN_EMAIL));
    edge.advance_to(closed_ms() + 3 * DAY_MS);
    let b = edge.job("conv-b");
    assert_eq!(
        (b.state, b.reason.as_deref()),
        (JobState::Skipped, Some("forgotten"))
    );
    assert!(!holds(&b, ANN_EMAIL), "{b:?}");
    assert_eq!(edge.world.accepted().len(), 2, "Bob's went, Ann's did not");
    // The digests are kept a while, keyed: never the address itself.
    let cache = edge.scheduler(ORG).store.cache_entries();
    assert!(cache
        .iter()
        .any(|(k, _, _)| k.starts_with(forget::TOMBSTONE_PREFIX)));
    assert!(!format!("{cache:?}").to_lowercase().contains(ANN_EMAIL));
    edge.assert_no_secrets();
}

#[test]
fn a_forget_takes_a_bounded_number_of_entries_and_says_more() {
    let edge = Edge::quick();
    let n = MAX_FORGET_PER_CALL + 3;
    for i in 0..n {
        close_at(
            &edge,
            &format!("many-{i}"),
            ANN,
            closed_ms() + i as i64,
            &settings_headers(),
        );
    }
    let first = forget(&edge, ANN);
    assert_eq!(
        (first.body["entries"].clone(), first.body["more"].clone()),
        (json!(MAX_FORGET_PER_CALL), json!(true))
    );
    let second = forget(&edge, ANN);
    assert_eq!(
        (second.body["entries"].clone(), second.body["more"].clone()),
        (json!(3), json!(false))
    );
    let jobs = edge.scheduler(ORG).store.jobs();
    assert!(jobs
        .iter()
        .all(|j| j.state == JobState::Skipped && !forget::holds_customer(j)));
}

#[test]
fn a_forget_needs_the_apps_secret_and_a_customer() {
    let edge = two_customers();
    let body = json!({ "customer": ANN }).to_string();
    let no_secret = [("x-kustomer-api-key".to_owned(), KUSTOMER_KEY.to_owned())];
    assert_eq!(
        edge.call("POST", "/v1/customers/forget", &no_secret, &body)
            .status,
        401
    );
    assert_eq!(forget(&edge, "  ").status, 400);
    assert!(holds(&edge.job("conv-a"), ANN_EMAIL), "nothing changed");
}

#[test]
fn the_sweep_finds_a_customer_deleted_in_kustomer_and_forgets_them() {
    let edge = Edge::quick();
    let with_secret = settings_headers_with(&[("stellaApiSecret", Some(STELLA_SECRET))]);
    close_at(&edge, CONVERSATION, ANN, closed_ms(), &with_secret);
    edge.advance_to(closed_ms() + DELAY_MS);
    assert_eq!(edge.job(CONVERSATION).state, JobState::Sent);
    assert_eq!(
        edge.world.calls("customer search"),
        0,
        "the first sweep waits a day"
    );
    edge.world.delete_customer(ANN, edge.now());
    edge.advance_to(closed_ms() + 2 * DAY_MS);
    assert_eq!(edge.world.calls("customer search"), 1);
    let job = edge.job(CONVERSATION);
    assert!(!holds(&job, ANN_EMAIL), "{job:?}");
    let kinds: Vec<AuditKind> = edge
        .scheduler(ORG)
        .store
        .audit()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&AuditKind::DeletedCustomer), "{kinds:?}");
    // The search reached back over the retention period the first time.
    let (url, body) = edge.world.searches.borrow()[0].clone();
    assert!(url.contains("page=1&pageSize=100"), "{url}");
    assert_eq!(
        body["and"][0]["customer_updated_at"]["gte"],
        iso(closed_ms() + DELAY_MS + DAY_MS - 90 * DAY_MS)
    );
    // The next is a day later, from where this one ended.
    edge.advance_to(closed_ms() + 2 * DAY_MS + DELAY_MS);
    assert_eq!(edge.world.calls("customer search"), 2);
    edge.assert_no_secrets();
}

#[test]
fn the_sweep_makes_at_most_its_calls_a_day_and_goes_on_the_next() {
    let edge = Edge::quick();
    let with_secret = settings_headers_with(&[("stellaApiSecret", Some(STELLA_SECRET))]);
    close_at(&edge, CONVERSATION, ANN, closed_ms(), &with_secret);
    edge.advance_to(closed_ms() + DELAY_MS);
    edge.world.delete_many(2500, edge.now()); // 25 pages
    edge.advance_to(closed_ms() + DELAY_MS + DAY_MS);
    assert_eq!(
        edge.world.calls("customer search"),
        SWEEP_CALLS_PER_DAY as usize
    );
    // Any alarm on the same day makes no further call.
    edge.fire_alarms(edge.now() + 3_600_000);
    assert_eq!(
        edge.world.calls("customer search"),
        SWEEP_CALLS_PER_DAY as usize
    );
    edge.advance_to(closed_ms() + DELAY_MS + 2 * DAY_MS);
    assert_eq!(
        edge.world.calls("customer search"),
        2 * SWEEP_CALLS_PER_DAY as usize
    );
    let pages: Vec<String> = (edge.world.searches.borrow().iter())
        .map(|(url, _)| {
            url.split("page=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        pages[10], "11",
        "the window goes on where it stopped: {pages:?}"
    );
}

#[test]
fn the_sweep_stays_within_the_orgs_api_budget() {
    let edge = Edge::quick();
    let with_secret = settings_headers_with(&[("stellaApiSecret", Some(STELLA_SECRET))]);
    close_at(&edge, CONVERSATION, ANN, closed_ms(), &with_secret);
    edge.advance_to(closed_ms() + DELAY_MS);
    edge.world.delete_many(500, edge.now());
    // At the sweep, the org's other integrations have spent the whole minute.
    let sweep_at = closed_ms() + DELAY_MS + DAY_MS;
    edge.set_now(sweep_at);
    edge.world.enforce_budget(20, 60_000, edge.time.clone());
    edge.world.spend_budget_elsewhere(20);
    edge.fire_alarms(sweep_at);
    let (_, refused) = edge.world.budget_use();
    assert!(
        refused <= 1,
        "one refusal tells the edge, no more: {refused}"
    );
    let searched = edge.world.calls("customer search");
    assert!(searched <= 1, "{searched}");
    // Once the window turns, it goes on, within the budget.
    edge.advance_to(sweep_at + 10 * 60_000);
    assert!(edge.world.calls("customer search") > searched);
    assert!(edge.world.calls("customer search") <= SWEEP_CALLS_PER_DAY as usize);
    assert_eq!(
        edge.world.budget_use().1,
        refused,
        "no call over the budget"
    );
}

#[test]
fn a_failing_search_is_kept_for_the_page_and_tried_again_within_the_hour() {
    let edge = Edge::quick();
    let with_secret = settings_headers_with(&[("stellaApiSecret", Some(STELLA_SECRET))]);
    close_at(&edge, CONVERSATION, ANN, closed_ms(), &with_secret);
    edge.advance_to(closed_ms() + DELAY_MS);
    *edge.world.search_fault.borrow_mut() = Some(Fault::status(
        403,
        r#"{"errors":[{"status":403,"title":"Forbidden"}]}"#,
    ));
    let sweep = closed_ms() + DELAY_MS + DAY_MS;
    edge.advance_to(sweep);
    assert_eq!(edge.world.calls("customer search"), 1);
    let reply = edge.call("GET", "/v1/audit", &key_header(KUSTOMER_KEY), "");
    assert!(reply.body["deletedCustomers"]["lastError"]
        .as_str()
        .unwrap()
        .contains("403"));
    edge.advance_to(sweep + 3_600_000);
    assert_eq!(edge.world.calls("customer search"), 2);
    let reply = edge.call("GET", "/v1/audit", &key_header(KUSTOMER_KEY), "");
    assert_eq!(reply.body["deletedCustomers"]["lastError"], Value::Null);
}

#[test]
fn the_audit_records_each_kind_newest_first_and_never_whom() {
    let edge = two_customers();
    // Settings changed: which field, never the value.
    let changed = settings_headers_with(&[("secondsUntilSend", Some("1200"))]);
    close_at(&edge, "conv-c", BOB, edge.now() + 1000, &changed);
    // A failed survey resent.
    edge.world.stella_fault(Fault::status(403, "Forbidden"));
    edge.advance_to(closed_ms() + 3 * DAY_MS);
    let failed: Vec<String> = (edge.scheduler(ORG).store.jobs().into_iter())
        .filter(|j| j.state == JobState::Failed)
        .map(|j| j.conversation_id)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(edge.resend(&failed[0], KUSTOMER_KEY).status, 202);
    assert_eq!(forget(&edge, ANN_EMAIL).status, 200);
    let entries = audit(&edge);
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "forget", "newest first: {kinds:?}");
    for kind in ["settings_changed", "relinked", "resend", "forget"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let change = entries
        .iter()
        .find(|e| e["kind"] == "settings_changed")
        .unwrap();
    assert_eq!(
        change["detail"]["fields"],
        json!(["secondsUntilSend"]),
        "{change}"
    );
    let resend = entries.iter().find(|e| e["kind"] == "resend").unwrap();
    assert_eq!(resend["detail"]["conversationIds"], json!([failed[0]]));
    let all = serde_json::to_string(&entries).unwrap().to_lowercase();
    for private in [ANN_EMAIL, ANN, "1200", STELLA_KEY, KUSTOMER_KEY, APP_SECRET] {
        assert!(
            !all.contains(&private.to_lowercase()),
            "{private} in the audit: {all}"
        );
    }
}

#[test]
fn the_audit_keeps_a_year() {
    let edge = two_customers();
    assert_eq!(forget(&edge, BOB).status, 200);
    let before = audit(&edge).len();
    assert!(before >= 2);
    edge.set_now(edge.now() + 367 * DAY_MS);
    assert!(audit(&edge).is_empty(), "older than a year: not shown");
    assert_eq!(forget(&edge, BOB).status, 200);
    let kept = edge.scheduler(ORG).store.audit();
    assert_eq!(kept.len(), 1, "pruned as the next entry is added: {kept:?}");
}
