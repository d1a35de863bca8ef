#![cfg(not(target_arch = "wasm32"))]
//! The edge end to end on the host: the real gateway and org schedulers over a fake Kustomer
//! and Stella (`support/edge_fakes.rs`), an in-memory store and a clock the test moves. Each
//! scenario is a function returning its [`Edge`], so that `no_reply_or_log_shows_a_key` can run
//! them all again and inspect everything they answered and sent.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::*;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use stella_connect::edge::deliveries::{DeliveryQuery, Tally};
use stella_connect::edge::job::{Job, JobState};
use stella_connect::edge::scheduler::Command;
use stella_connect::edge::{trust, Config, Request, Store};
use support::fixture;

/// The delay the settings headers ask for.
const DELAY_MS: i64 = 900_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// When the fixture's survey falls due.
fn due() -> i64 {
    closed_ms() + DELAY_MS
}

/// The shared fixture's request, with the custom properties the edge always adds.
fn expected() -> Value {
    let mut want = fixture("expected-stella-request");
    want["custom_properties"] =
        json!({"kustomer_org": ORG, "kustomer_conversation_id": CONVERSATION});
    want
}

/// What the delivery log keeps of a sent or tried body: the fields it reads.
fn logged(body: &Value) -> Value {
    let fields = stella_connect::edge::job::LOGGED_REQUEST_FIELDS;
    let kept = (body.as_object().into_iter().flatten())
        .filter(|(k, _)| fields.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()));
    Value::Object(kept.collect())
}

fn error_code(reply: &stella_connect::edge::Reply) -> &str {
    reply.body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {reply:?}"))
}

/// A copy of the fixture's conversation under another id, with its own customer (whose
/// email is `{name}@example.com`).
fn add_conversation(world: &World, id: &str, customer_id: &str, name: &str) {
    let mut conversation = fixture("conversation");
    conversation["data"]["id"] = json!(id);
    conversation["data"]["relationships"]["customer"]["data"]["id"] = json!(customer_id);
    world.add_conversation(conversation);
    let mut customer = fixture("customer");
    customer["data"]["id"] = json!(customer_id);
    customer["data"]["attributes"]["name"] = json!(name);
    customer["data"]["attributes"]["emails"] = json!([{"email": format!("{name}@example.com")}]);
    world.add_customer(customer);
}

/// `n` such copies, their ids and their customers' numbered from `first` (customers
/// `{name}0`, `{name}1`, …): the conversations' ids.
fn add_conversations(world: &World, n: usize, first: usize, name: &str) -> Vec<String> {
    let ids: Vec<String> = (0..n)
        .map(|i| format!("6560e0f1a2b3c4d5e6f7{:04x}", first + i))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let customer = format!("5f0c1b2a3d4e5f6a7b8c{:04x}", first + 0x1000 + i);
        add_conversation(world, id, &customer, &format!("{name}{i}"));
    }
    ids
}

// 1 ------------------------------------------------------------------------------------------

fn happy_path() -> Edge {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    let reply = edge.close(&event);
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.body["status"], "scheduled");
    assert_eq!(reply.body["conversationId"], CONVERSATION);
    let status_at = &event["data"]["attributes"]["modificationHistory"]["statusAt"];
    assert_eq!(ms_of(&reply.body["sendAt"]), ms_of(status_at) + DELAY_MS);
    assert_eq!(reply.body["sendAt"], "2026-11-20T14:18:11.401Z");
    assert_eq!(edge.scheduler(ORG).next_alarm().unwrap(), Some(due()));

    // One second early: nothing read, nothing sent.
    assert_eq!(edge.fire_alarms(due() - 1000), 0);
    assert_eq!(edge.world.stella_attempts(), 0);
    assert_eq!(
        edge.world.kustomer_data_calls(),
        0,
        "nothing is read before the survey is due"
    );
    assert_eq!(edge.delivery(CONVERSATION)["state"], "scheduled");

    assert_eq!(edge.fire_alarms(due()), 1);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    assert_eq!(edge.world.stella_attempts(), 1);
    assert_eq!(
        edge.scheduler(ORG).store.next_due().unwrap(),
        None,
        "nothing pending"
    );
    assert_eq!(
        edge.scheduler(ORG).next_alarm().unwrap(),
        Some(due() + 30 * 24 * HOUR_MS),
        "the next alarm removes the customer's personal data (the entry stays 90 days)"
    );

    let reply = edge.call("GET", "/v1/deliveries", &key_header(KUSTOMER_KEY), "");
    assert_eq!(reply.status, 200, "{reply:?}");
    let list = reply.body["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let d = &list[0];
    assert_eq!(d["conversationId"], CONVERSATION);
    assert_eq!(d["state"], "sent");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["request"], logged(&expected()));
    assert_eq!(d["closedAt"], *status_at);
    assert_eq!(ms_of(&d["sentAt"]), due());
    assert_eq!(d["nextAttemptAt"], Value::Null);
    assert_eq!(d["reason"], Value::Null);
    let text = reply.body.to_string();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{text}");
    }
    // No job holds a key; the org's settings were kept sealed while the job needed them and
    // are dropped now that none does.
    let job = serde_json::to_string(&edge.job(CONVERSATION)).unwrap();
    for secret in SECRETS {
        assert!(!job.contains(secret), "{job}");
    }
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert_eq!(
        record.sealed_settings, None,
        "keys dropped once no job needs them"
    );
    assert!(
        record.trust.vouches_for(&trust::fingerprint(APP_SECRET)),
        "the fingerprint Kustomer vouches for stays"
    );
    edge
}

#[test]
fn close_then_send_once_at_due_time() {
    happy_path().assert_no_secrets();
}

// 2 ------------------------------------------------------------------------------------------

fn reopened_before_due() -> Edge {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.set_now(due() - 60_000);
    edge.world.set_status(CONVERSATION, "open");
    edge.advance_to(due());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("skipped"), &json!("reopened")),
        "{d}"
    );
    assert_eq!(d["attempts"], 1);
    assert_eq!(
        edge.world.calls("conversation"),
        1,
        "checked again at due time"
    );
    edge.advance_to(due() + 48 * HOUR_MS);
    edge.fire_alarms(due() + 48 * HOUR_MS);
    assert_eq!(edge.world.stella_attempts(), 0);
    assert_eq!(
        edge.world.calls("conversation"),
        1,
        "a skipped survey is final"
    );
    edge
}

#[test]
fn reopened_before_due_is_skipped() {
    reopened_before_due().assert_no_secrets();
}

// 3 ------------------------------------------------------------------------------------------

fn close_reopen_close() -> Edge {
    let edge = Edge::quick();
    let t1 = closed_ms();
    let first = close_event(CONVERSATION, &iso(t1));
    let reply = edge.close(&first);
    assert_eq!(
        (reply.status, ms_of(&reply.body["sendAt"])),
        (202, t1 + DELAY_MS)
    );

    edge.set_now(t1 + 60_000);
    edge.world.set_status(CONVERSATION, "open");
    let t2 = t1 + 600_000;
    edge.world.set_status(CONVERSATION, "done");
    edge.world.edit_conversation(CONVERSATION, |c| {
        c["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(iso(t2));
    });
    edge.set_now(t2 + 1500);
    let reply = edge.close(&close_event(CONVERSATION, &iso(t2)));
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(ms_of(&reply.body["sendAt"]), t2 + DELAY_MS);

    // The first close's due time passes: the job now waits for the second.
    assert_eq!(edge.fire_alarms(t1 + DELAY_MS), 0);
    assert_eq!(edge.world.stella_attempts(), 0);
    assert_eq!(edge.delivery(CONVERSATION)["state"], "scheduled");

    // The first event, redelivered late.
    let reply = edge.close(&first);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["status"], &reply.body["reason"]),
        (&json!("ignored"), &json!("stale_event"))
    );

    assert_eq!(edge.advance_to(t2 + DELAY_MS), vec![t2 + DELAY_MS]);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    let job = edge.job(CONVERSATION);
    assert_eq!(
        (job.state, job.generation, job.closed_at_ms),
        (JobState::Sent, 1, t2)
    );
    let reply = edge.close(&first);
    assert_eq!(reply.body["reason"], "stale_event", "{reply:?}");
    edge.advance_to(t2 + 48 * HOUR_MS);
    assert_eq!(edge.world.stella_attempts(), 1);
    edge
}

#[test]
fn close_reopen_close_sends_once_after_the_last_close() {
    close_reopen_close().assert_no_secrets();
}

// 4 ------------------------------------------------------------------------------------------

fn changes_during_the_delay() -> Edge {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.set_now(closed_ms() + 300_000);
    edge.world.edit_conversation(CONVERSATION, |c| {
        c["data"]["attributes"]["custom"]["doNotSendStellaConnectRequestBool"] = json!(true)
    });
    edge.world.edit_customer("5f0c1b2a3d4e5f6a7b8c9d31", |c| {
        c["data"]["attributes"]["emails"][0]["email"] = json!("ann.new@example.com")
    });
    edge.advance_to(due());
    let mut want = expected();
    want["do_not_send"] = json!(true);
    want["customer"]["email"] = json!("ann.new@example.com");
    assert_eq!(edge.world.accepted(), vec![want.clone()]);
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["request"]),
        (&json!("sent"), &logged(&want))
    );
    edge
}

#[test]
fn do_not_send_and_a_new_email_set_during_the_delay_are_used() {
    changes_during_the_delay().assert_no_secrets();
}

// 5 ------------------------------------------------------------------------------------------

fn duplicate_event() -> Edge {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    let first = edge.close(&event);
    edge.set_now(edge.now() + 5000);
    let second = edge.close(&event);
    assert_eq!((first.status, second.status), (202, 202), "{second:?}");
    assert_eq!(first.body["sendAt"], second.body["sendAt"]);
    let jobs = edge.scheduler(ORG).store.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].generation, jobs[0].updated_ms),
        (0, closed_ms() + 2000),
        "unchanged"
    );

    assert_eq!(edge.fire_alarms(due()), 1);
    assert_eq!(edge.fire_alarms(due()), 0);
    assert_eq!(edge.fire_alarms(due() + 1000), 0);
    assert_eq!(edge.world.stella_attempts(), 1);
    assert_eq!(edge.world.accepted().len(), 1);

    let again = edge.close(&event);
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(
        (&again.body["status"], &again.body["reason"]),
        (&json!("ignored"), &json!("duplicate"))
    );
    assert!(
        again.body["message"].as_str().unwrap().contains("sent"),
        "{again:?}"
    );
    edge.advance_to(due() + 48 * HOUR_MS);
    assert_eq!(edge.world.stella_attempts(), 1);
    assert_eq!(edge.deliveries().len(), 1);
    edge
}

#[test]
fn the_same_event_twice_makes_one_job_and_one_request() {
    duplicate_event().assert_no_secrets();
}

// 6 ------------------------------------------------------------------------------------------

fn stella_500_twice() -> Edge {
    let edge = Edge::quick();
    edge.world
        .stella_fault(Fault::status(500, "Internal Server Error"));
    edge.world
        .stella_fault(Fault::status(500, "Internal Server Error"));
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);

    edge.fire_alarms(due());
    let job = edge.job(CONVERSATION);
    assert_eq!((job.state, job.attempts), (JobState::Retrying, 1));
    let next1 = job.due_ms.unwrap();
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("retrying"), &json!("temporary_failure"))
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("Agent Connect answered 500"),
        "{d}"
    );
    assert_eq!(ms_of(&d["nextAttemptAt"]), next1);
    assert_eq!(
        d["request"],
        logged(&expected()),
        "what the log reads of the body that was tried is shown"
    );

    assert_eq!(
        edge.fire_alarms(next1 - 1),
        0,
        "not before the next attempt"
    );
    assert_eq!(edge.fire_alarms(next1), 1);
    let job = edge.job(CONVERSATION);
    assert_eq!((job.state, job.attempts), (JobState::Retrying, 2));
    let next2 = job.due_ms.unwrap();

    let (gap1, gap2) = (next1 - due(), next2 - next1);
    assert!(
        (500..=1000).contains(&gap1),
        "first wait from base_ms 1000: {gap1}"
    );
    assert_eq!(gap2, 2 * gap1, "the wait doubles (same dice)");

    assert_eq!(edge.advance_to(next2 + HOUR_MS), vec![next2]);
    assert_eq!(edge.world.stella_attempts(), 3);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["attempts"], &d["reason"]),
        (&json!("sent"), &json!(3), &Value::Null)
    );
    assert_eq!(ms_of(&d["sentAt"]), next2);
    edge
}

#[test]
fn stella_500_twice_then_accepted() {
    stella_500_twice().assert_no_secrets();
}

fn network_errors() -> Edge {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.world
        .kustomer_fault(Fault::Network("connection reset".into()));
    edge.world
        .stella_fault(Fault::Network("timed out after 10 s".into()));
    edge.fire_alarms(due());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(d["state"], "retrying", "{d}");
    assert!(
        d["message"].as_str().unwrap().contains("connection reset"),
        "{d}"
    );
    assert_eq!(edge.world.stella_attempts(), 0);
    assert_eq!(edge.fire_alarms(ms_of(&d["nextAttemptAt"])), 1);
    let d = edge.delivery(CONVERSATION);
    assert_eq!(d["state"], "retrying", "{d}");
    assert!(d["message"].as_str().unwrap().contains("timed out"), "{d}");
    assert_eq!(edge.world.stella_attempts(), 1);
    edge.advance_to(due() + HOUR_MS);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    assert_eq!(edge.delivery(CONVERSATION)["attempts"], 3);
    edge
}

#[test]
fn network_errors_are_retried() {
    network_errors().assert_no_secrets();
}

// 7 ------------------------------------------------------------------------------------------

fn stella_403() -> Edge {
    let edge = Edge::quick();
    let refusal = format!("Employee not found: sam.agent@acme.example (x-api-key {STELLA_KEY})");
    edge.world.stella_fault(Fault::status(403, &refusal));
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.advance_to(due());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("failed"), &json!("stella_rejected")),
        "{d}"
    );
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("Employee not found: sam.agent@acme.example"),
        "{message}"
    );
    assert!(message.contains("403"), "{message}");
    assert!(
        !message.contains(STELLA_KEY) && message.contains("********"),
        "{message}"
    );
    assert_eq!(
        (&d["attempts"], &d["nextAttemptAt"]),
        (&json!(1), &Value::Null)
    );
    assert_eq!(d["request"], logged(&expected()));

    assert!(
        edge.advance_to(due() + 48 * HOUR_MS).is_empty(),
        "no alarm for a failed job"
    );
    assert_eq!(edge.fire_alarms(due() + 48 * HOUR_MS), 0);
    assert_eq!(edge.world.stella_attempts(), 1);
    assert!(edge.world.accepted().is_empty());
    edge
}

#[test]
fn stella_403_fails_for_good() {
    stella_403().assert_no_secrets();
}

// 8 ------------------------------------------------------------------------------------------

fn stella_429() -> Edge {
    let edge = Edge::quick();
    edge.world
        .stella_fault(Fault::status(429, "Too Many Requests").retry_after("120"));
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.fire_alarms(due());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(d["state"], "retrying", "{d}");
    let next = ms_of(&d["nextAttemptAt"]);
    assert!(
        next - due() >= 120_000,
        "Retry-After 120 honoured: {}",
        next - due()
    );
    assert_eq!(edge.fire_alarms(next - 1), 0);
    assert_eq!(edge.world.stella_attempts(), 1);
    assert_eq!(edge.advance_to(next), vec![next]);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    assert_eq!(edge.delivery(CONVERSATION)["attempts"], 2);
    edge
}

#[test]
fn stella_429_waits_for_retry_after() {
    stella_429().assert_no_secrets();
}

fn kustomer_429() -> Edge {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let limited = json!({"errors": [{"status": 429, "code": "rate_limited"}]}).to_string();
    edge.world
        .kustomer_fault(Fault::status(429, &limited).ratelimit_reset("30"));
    edge.fire_alarms(due());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(d["state"], "retrying", "{d}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("Kustomer answered 429"),
        "{d}"
    );
    assert_eq!(edge.world.stella_attempts(), 0);
    let next = ms_of(&d["nextAttemptAt"]);
    assert!(
        next - due() >= 30_000,
        "x-ratelimit-reset 30 honoured: {}",
        next - due()
    );
    assert_eq!(edge.fire_alarms(next - 1), 0);
    assert_eq!(edge.advance_to(next + HOUR_MS), vec![next]);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    assert_eq!(edge.delivery(CONVERSATION)["state"], "sent");
    edge
}

#[test]
fn kustomer_429_waits_for_the_rate_limit_reset() {
    kustomer_429().assert_no_secrets();
}

// 9 ------------------------------------------------------------------------------------------

fn stella_down_for_a_day() -> Edge {
    let config = quick_retries();
    let edge = Edge::new(config);
    edge.world
        .stella_outage(Some(Fault::status(503, "Service Unavailable")));
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let fired = edge.advance_to(due() + 25 * HOUR_MS);
    let job = edge.job(CONVERSATION);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.reason.as_deref(), Some("gave_up"));
    assert!(
        job.message.as_deref().unwrap().starts_with("Gave up after"),
        "{job:?}"
    );
    assert!(
        job.message.as_deref().unwrap().contains("503"),
        "{:?}",
        job.message
    );
    assert_eq!(job.due_ms, None);
    assert_eq!(job.first_attempt_ms, Some(due()));
    assert_eq!(job.attempts as usize, edge.world.stella_attempts());
    assert_eq!(fired.len(), edge.world.stella_attempts());
    assert!(fired.len() > 10, "retried many times: {fired:?}");
    let gave_up_at = job.updated_ms;
    let limit = config.retry.give_up_after_ms;
    assert!(
        gave_up_at - due() <= limit,
        "within the limit: {}",
        gave_up_at - due()
    );
    assert!(
        gave_up_at - due() >= limit - config.retry.max_ms,
        "retried until near the limit"
    );
    let gaps: Vec<i64> = fired.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|w| w[1] >= w[0]),
        "waits never shrink: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g <= config.retry.max_ms),
        "waits are capped: {gaps:?}"
    );

    edge.world.stella_outage(None);
    assert!(edge.advance_to(due() + 72 * HOUR_MS).is_empty());
    assert_eq!(
        edge.world.stella_attempts(),
        fired.len(),
        "nothing after giving up"
    );
    assert_eq!(edge.delivery(CONVERSATION)["reason"], "gave_up");
    edge
}

#[test]
fn gives_up_after_24_hours_of_failures() {
    stella_down_for_a_day().assert_no_secrets();
}

// 10 -----------------------------------------------------------------------------------------

fn steady_state() -> Edge {
    let edge = Edge::quick();
    let ids = add_conversations(&edge.world, 11, 0x1000, "customer");
    // Ten closes ten seconds apart.
    let t0 = closed_ms();
    let close_at = |i: usize| t0 + i as i64 * 10_000;
    for (i, id) in ids.iter().take(10).enumerate() {
        edge.set_now(close_at(i) + 1000);
        let reply = edge.close(&close_event(id, &iso(close_at(i))));
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    assert_eq!(
        edge.world.calls("token"),
        1,
        "the key's org is cached by the gateway"
    );
    assert_eq!(
        edge.stepped.get(),
        9,
        "once the org is known, a close goes to its scheduler without waiting"
    );

    let mut per_survey = Vec::new();
    for i in 0..10 {
        let before = edge.world.kustomer_data_calls();
        assert_eq!(
            edge.advance_to(close_at(i) + DELAY_MS),
            vec![close_at(i) + DELAY_MS]
        );
        per_survey.push(edge.world.kustomer_data_calls() - before);
    }
    assert_eq!(
        per_survey[0], 4,
        "the first survey reads conversation, customer, user, tags"
    );
    let later: usize = per_survey[1..].iter().sum();
    assert!(
        later <= 2 * 9,
        "at most 2 calls per survey after the first: {per_survey:?}"
    );
    assert!(per_survey[1..].iter().all(|n| *n == 2), "{per_survey:?}");
    let routes: Vec<usize> = ["conversation", "customer", "user", "tags"]
        .iter()
        .map(|r| edge.world.calls(r))
        .collect();
    assert_eq!(routes, vec![10, 10, 1, 1]);
    assert_eq!(
        edge.world.tag_queries(),
        vec![vec![
            "5f0c1b2a3d4e5f6a7b8c9d11".to_owned(),
            "5f0c1b2a3d4e5f6a7b8c9d12".to_owned()
        ]],
        "one call for both tags"
    );
    let accepted = edge.world.accepted();
    assert_eq!(accepted.len(), 10);
    for (i, body) in accepted.iter().enumerate() {
        assert_eq!(body["ext_interaction_id"], ids[i].as_str());
        assert_eq!(
            body["customer"]["email"],
            format!("customer{i}@example.com")
        );
        assert_eq!(
            body["employee"],
            expected()["employee"],
            "the cached email is used"
        );
        assert_eq!(
            body["tags"],
            expected()["tags"],
            "the cached names are used"
        );
    }

    // Well after the cache expired, a survey reads the agent and tags again.
    let late = t0 + 20 * 60_000;
    edge.set_now(late + 1000);
    assert_eq!(edge.close(&close_event(&ids[10], &iso(late))).status, 202);
    let before = edge.world.kustomer_data_calls();
    edge.advance_to(late + DELAY_MS);
    assert_eq!(edge.world.kustomer_data_calls() - before, 4);
    assert_eq!((edge.world.calls("user"), edge.world.calls("tags")), (2, 2));
    assert_eq!(edge.world.accepted().len(), 11);
    edge
}

#[test]
fn steady_state_costs_two_kustomer_calls_per_survey() {
    steady_state().assert_no_secrets();
}

// 11 -----------------------------------------------------------------------------------------

fn bad_input() -> Edge {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    let path = "/v1/kustomer/conversation-closed";

    let reply = edge.call(
        "POST",
        path,
        &settings_headers(),
        r#"{"name": "kustomer.conv"#,
    );
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "malformed_json"),
        "{reply:?}"
    );

    let reply = edge.close_with(&event, &[]);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (401, "missing_app_secret"),
        "without the app secret nothing else is looked at: {reply:?}"
    );
    let only_secret = [("x-app-secret".to_owned(), APP_SECRET.to_owned())];
    let reply = edge.close_with(&event, &only_secret);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "invalid_settings"),
        "{reply:?}"
    );
    let fields: Vec<(&str, &str)> = reply.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    for field in ["stellaApiKey", "kustomerApiKey", "kustomerUrl"] {
        assert!(fields.contains(&(field, "required")), "{field}: {fields:?}");
    }

    let insecure = settings_headers_with(&[("kustomerApiUrl", Some("http://api.kustomerapp.com"))]);
    let reply = edge.close_with(&event, &insecure);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "invalid_settings"),
        "{reply:?}"
    );
    assert_eq!(reply.body["error"]["fields"][0]["field"], "kustomerApiUrl");
    assert_eq!(reply.body["error"]["fields"][0]["code"], "insecure_url");

    let bad_delay = settings_headers_with(&[("secondsUntilSend", Some("soon"))]);
    let reply = edge.close_with(&event, &bad_delay);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "invalid_settings"),
        "{reply:?}"
    );
    assert_eq!(
        reply.body["error"]["fields"][0]["field"],
        "secondsUntilSend"
    );

    let mut huge = event.clone();
    huge["padding"] = json!("x".repeat(1 << 20));
    let reply = edge.close(&huge);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (413, "too_large"),
        "{reply:?}"
    );

    let mut no_org = event.clone();
    no_org.as_object_mut().unwrap().remove("org");
    let reply = edge.close(&no_org);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "missing_org"),
        "{reply:?}"
    );

    let mut open = event.clone();
    open["data"]["attributes"]["status"] = json!("open");
    open["changes"]["attributes"]["status"] =
        json!({"op": "replace", "before": "done", "after": "open"});
    let reply = edge.close(&open);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["status"], &reply.body["reason"]),
        (&json!("ignored"), &json!("not_closed"))
    );

    let mut created = event.clone();
    created["name"] = json!("kustomer.conversation.create");
    let reply = edge.close(&created);
    assert_eq!(
        reply.body["reason"], "not_a_conversation_update",
        "{reply:?}"
    );

    assert_eq!(edge.call("GET", path, &settings_headers(), "").status, 405);
    assert_eq!(
        edge.call("POST", "/v1/nothing", &settings_headers(), "{}")
            .status,
        404
    );
    assert_eq!(
        edge.world.kustomer_calls(),
        0,
        "none of these reached Kustomer"
    );

    // The org the event claims is not the key's.
    let mut other = event.clone();
    other["org"] = json!(OTHER_ORG);
    let reply = edge.close(&other);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (403, "org_mismatch"),
        "{reply:?}"
    );
    let theirs = settings_headers_with(&[("kustomerApiKey", Some(OTHER_ORG_KEY))]);
    let reply = edge.close_with(&event, &theirs);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (403, "org_mismatch"),
        "{reply:?}"
    );

    let unknown = settings_headers_with(&[("kustomerApiKey", Some("kustomer-unknown-key"))]);
    let reply = edge.close_with(&event, &unknown);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (401, "kustomer_key_rejected"),
        "{reply:?}"
    );
    assert_eq!(
        edge.world.calls("token"),
        3,
        "each key was checked with Kustomer"
    );

    let scheduled = edge
        .gateway
        .router
        .commands
        .borrow()
        .iter()
        .filter(|(_, c)| matches!(c, Command::Schedule { .. }))
        .count();
    assert_eq!(scheduled, 0, "nothing was handed to a scheduler");
    assert!(edge.deliveries().is_empty());
    // The other org never linked its app: its log is refused, and nothing of this org shows.
    let reply = edge.call("GET", "/v1/deliveries", &key_header(OTHER_ORG_KEY), "");
    assert_eq!(error_code(&reply), "app_secret_rejected", "{reply:?}");
    assert_eq!(reply.body["link"]["code"], "not_linked", "{reply:?}");
    for org in edge.gateway.router.orgs() {
        assert!(edge.scheduler(&org).store.jobs().is_empty(), "{org}");
    }
    edge.advance_to(due() + 48 * HOUR_MS);
    assert_eq!(edge.world.stella_attempts(), 0);
    edge
}

#[test]
fn bad_input_queues_nothing() {
    bad_input().assert_no_secrets();
}

// 12 -----------------------------------------------------------------------------------------

fn resend() -> Edge {
    let edge = Edge::quick();
    edge.world
        .stella_fault(Fault::status(403, "Channel not enabled"));
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.advance_to(due());
    assert_eq!(edge.delivery(CONVERSATION)["reason"], "stella_rejected");
    let before = edge.job(CONVERSATION);

    let at = due() + 600_000;
    edge.set_now(at);
    let reply = edge.call(
        "POST",
        &format!("/v1/deliveries/{CONVERSATION}/resend"),
        &[],
        "",
    );
    assert_eq!(
        (reply.status, error_code(&reply)),
        (401, "missing_app_secret"),
        "{reply:?}"
    );
    // Another org's key reaches only its own org, where no app has registered a secret (a
    // resend never registers one): refused before any job is looked up.
    let reply = edge.resend(CONVERSATION, OTHER_ORG_KEY);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (401, "app_secret_rejected"),
        "another org's survey: {reply:?}"
    );
    assert_eq!(edge.job(CONVERSATION).state, JobState::Failed);

    // The admin fixed the channel in Stella (the fault is used up) and resends. No survey is
    // pending, so the org's settings are no longer kept; the resend brings back the same ones
    // the workflow sent (their fingerprint stayed), and they are kept again while it is due.
    assert_eq!(
        edge.scheduler(ORG).store.org().unwrap().sealed_settings,
        None
    );
    let reply = edge.resend(CONVERSATION, KUSTOMER_KEY);
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(ms_of(&reply.body["sendAt"]), at);
    let job = edge.job(CONVERSATION);
    assert_eq!(
        (job.state, job.attempts, job.generation),
        (JobState::Scheduled, 0, before.generation + 1)
    );
    assert_eq!(edge.advance_to(at), vec![at]);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    assert_eq!(edge.world.stella_attempts(), 2);
    let d = edge.delivery(CONVERSATION);
    assert_eq!((&d["state"], &d["attempts"]), (&json!("sent"), &json!(1)));

    let reply = edge.resend(CONVERSATION, KUSTOMER_KEY);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (409, "not_resendable"),
        "{reply:?}"
    );
    let reply = edge.resend("6560e0f1a2b3c4d5e6f7ffff", KUSTOMER_KEY);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (404, "not_found"),
        "{reply:?}"
    );
    edge.advance_to(at + 48 * HOUR_MS);
    assert_eq!(edge.world.stella_attempts(), 2);
    edge
}

#[test]
fn a_failed_survey_can_be_resent_once_fixed() {
    resend().assert_no_secrets();
}

// 13 -----------------------------------------------------------------------------------------

fn preview() -> Edge {
    let edge = Edge::quick();
    let body = |id: &str| json!({ "conversationId": id }).to_string();
    let reply = edge.call(
        "POST",
        "/v1/preview",
        &settings_headers(),
        &body(CONVERSATION),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["ok"], true);
    let request = &reply.body["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], format!("{STELLA_API}/v1/requests"));
    assert_eq!(request["headers"]["x-api-key"], "********");
    assert_eq!(request["body"], expected());
    assert_eq!(reply.body["closed"], true);

    // An open conversation is shown as it would be sent once closed.
    edge.world.set_status(CONVERSATION, "open");
    let reply = edge.call(
        "POST",
        "/v1/preview",
        &settings_headers(),
        &body(CONVERSATION),
    );
    assert_eq!(
        (&reply.body["ok"], &reply.body["closed"]),
        (&json!(true), &json!(false)),
        "{reply:?}"
    );
    assert_eq!(reply.body["request"]["body"], expected());
    edge.world.set_status(CONVERSATION, "done");

    let unassigned = "6560e0f1a2b3c4d5e6f7aaaa";
    add_conversation(&edge.world, unassigned, "5f0c1b2a3d4e5f6a7b8caaaa", "bo");
    edge.world.edit_conversation(unassigned, |c| {
        c["data"]["attributes"]["assignedUsers"] = json!([])
    });
    let reply = edge.call(
        "POST",
        "/v1/preview",
        &settings_headers(),
        &body(unassigned),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["ok"], &reply.body["skip"]["code"]),
        (&json!(false), &json!("no_assigned_agent"))
    );

    let reply = edge.call(
        "POST",
        "/v1/preview",
        &settings_headers(),
        &body("6560e0f1a2b3c4d5e6f7ffff"),
    );
    assert_eq!(
        (reply.status, error_code(&reply)),
        (404, "conversation_not_found"),
        "{reply:?}"
    );
    let reply = edge.call("POST", "/v1/preview", &[], &body(CONVERSATION));
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "invalid_settings"),
        "{reply:?}"
    );
    let unknown_key = settings_headers_with(&[("kustomerApiKey", Some("unknown-key"))]);
    let reply = edge.call("POST", "/v1/preview", &unknown_key, &body(CONVERSATION));
    assert_eq!(
        (reply.status, error_code(&reply)),
        (401, "kustomer_key_rejected"),
        "{reply:?}"
    );
    let reply = edge.call("POST", "/v1/preview", &settings_headers(), "{}");
    assert_eq!(reply.status, 400, "{reply:?}");

    assert_eq!(edge.world.stella_attempts(), 0, "a preview sends nothing");
    assert!(
        edge.gateway.router.commands.borrow().is_empty(),
        "and schedules nothing"
    );
    edge
}

#[test]
fn preview_shows_the_request_or_the_reason() {
    preview().assert_no_secrets();
}

fn check_connection() -> Edge {
    let edge = Edge::quick();
    let check = |headers: &[(String, String)]| edge.call("POST", "/v1/settings/check", headers, "");
    let reply = check(&settings_headers());
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (
            &reply.body["ok"],
            &reply.body["kustomer"]["code"],
            &reply.body["stella"]["code"]
        ),
        (&json!(true), &json!("ok"), &json!("ok")),
        "{reply:?}"
    );
    assert_eq!(edge.world.stella_attempts(), 1, "one probe");
    assert!(
        edge.world.accepted().is_empty(),
        "the probe creates no survey"
    );

    let reply = check(&settings_headers_with(&[(
        "stellaApiKey",
        Some("not-the-key"),
    )]));
    assert_eq!(
        reply.body["stella"]["code"], "stella_key_rejected",
        "{reply:?}"
    );
    assert_eq!(reply.body["kustomer"]["ok"], true);
    assert_eq!(reply.body["ok"], false);

    let reply = check(&settings_headers_with(&[(
        "kustomerApiKey",
        Some("unknown-key"),
    )]));
    assert_eq!(
        reply.body["kustomer"]["code"], "kustomer_key_rejected",
        "{reply:?}"
    );
    assert_eq!(
        reply.body["stella"]["code"], "not_checked",
        "nothing reaches Stella before Kustomer accepts the key"
    );

    edge.world
        .stella_fault(Fault::status(503, "Service Unavailable"));
    let reply = check(&settings_headers());
    assert_eq!(
        reply.body["stella"]["code"], "stella_unavailable",
        "{reply:?}"
    );
    edge.world.kustomer_fault(Fault::status(500, "boom"));
    let reply = check(&settings_headers());
    assert_eq!(
        reply.body["kustomer"]["code"], "kustomer_unavailable",
        "{reply:?}"
    );
    assert_eq!(reply.body["stella"]["code"], "not_checked", "{reply:?}");

    let reply = check(&settings_headers_with(&[(
        "kustomerUrl",
        Some("not a url"),
    )]));
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "invalid_settings"),
        "{reply:?}"
    );
    let reply = edge.call("GET", "/v1/settings/check", &settings_headers(), "");
    assert_eq!(reply.status, 405, "{reply:?}");
    assert!(
        (edge.gateway.router.commands.borrow().iter())
            .all(|(_, c)| matches!(c, Command::Link { .. })),
        "nothing is scheduled: the org's scheduler is only asked about the app's link"
    );
    edge
}

#[test]
fn check_connection_asks_both_services_and_sends_no_survey() {
    check_connection().assert_no_secrets();
}

// 14 -----------------------------------------------------------------------------------------

fn crash_mid_attempt() -> Edge {
    let edge = Edge::quick();
    let lease = edge.gateway.config.lease_ms;
    edge.world.stella_fault(Fault::Crash);
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let crashed = catch_unwind(AssertUnwindSafe(|| edge.fire_alarms(due())));
    assert!(crashed.is_err(), "the process died during the Stella call");
    let job = edge.job(CONVERSATION);
    assert_eq!(
        (job.state, job.attempts, job.updated_ms),
        (JobState::Sending, 1, due())
    );
    assert_eq!(
        edge.scheduler(ORG).next_alarm().unwrap(),
        Some(due() + lease + 1)
    );
    assert_eq!(edge.world.stella_attempts(), 1);
    assert!(edge.world.accepted().is_empty());
    assert_eq!(
        edge.delivery(CONVERSATION)["state"],
        "scheduled",
        "the lease is not shown"
    );

    // Within the lease (another alarm, say a second instance): left alone.
    assert_eq!(edge.fire_alarms(due() + lease / 2), 0);
    assert_eq!(edge.fire_alarms(due() + lease), 0);
    assert_eq!(edge.world.stella_attempts(), 1);

    assert_eq!(edge.advance_to(due() + lease + 1), vec![due() + lease + 1]);
    assert_eq!(edge.world.accepted(), vec![expected()]);
    let d = edge.delivery(CONVERSATION);
    assert_eq!((&d["state"], &d["attempts"]), (&json!("sent"), &json!(2)));
    assert_eq!(edge.fire_alarms(due() + 2 * lease), 0);
    edge.advance_to(due() + 48 * HOUR_MS);
    assert_eq!(edge.world.stella_attempts(), 2);
    edge
}

#[test]
fn an_attempt_cut_off_by_a_crash_is_retried_after_its_lease() {
    crash_mid_attempt().assert_no_secrets();
}

fn stale_leases() -> Edge {
    let edge = Edge::quick();
    let lease = edge.gateway.config.lease_ms;
    let (old, fresh) = ("6560e0f1a2b3c4d5e6f7bbb1", "6560e0f1a2b3c4d5e6f7bbb2");
    for (i, id) in [old, fresh].into_iter().enumerate() {
        add_conversation(
            &edge.world,
            id,
            &format!("5f0c1b2a3d4e5f6a7b8cbbb{i}"),
            &format!("lease{i}"),
        );
        assert_eq!(edge.close(&close_event(id, &iso(closed_ms()))).status, 202);
    }
    // Jobs marked `sending` by processes that died: one an hour ago, one a second ago.
    let now = due() + 2 * HOUR_MS;
    let store = &edge.scheduler(ORG).store;
    let mark = |id: &str, at: i64| {
        let job = store.get(id).unwrap().unwrap();
        let sending = Job {
            state: JobState::Sending,
            attempts: 1,
            first_attempt_ms: Some(at),
            due_ms: Some(at + lease + 1),
            updated_ms: at,
            ..job
        };
        store.put(&sending).unwrap();
    };
    mark(old, now - HOUR_MS);
    mark(fresh, now - 1000);

    assert_eq!(
        edge.fire_alarms(now),
        1,
        "only the expired lease is picked up"
    );
    assert_eq!(edge.job(old).state, JobState::Sent);
    assert_eq!(edge.job(fresh).state, JobState::Sending);
    assert_eq!(edge.world.accepted().len(), 1);
    assert_eq!(edge.world.accepted()[0]["ext_interaction_id"], old);
    assert_eq!(
        edge.scheduler(ORG).next_alarm().unwrap(),
        Some(now - 1000 + lease + 1)
    );
    edge.advance_to(now + HOUR_MS);
    let sent: Vec<Value> = edge
        .world
        .accepted()
        .iter()
        .map(|b| b["ext_interaction_id"].clone())
        .collect();
    assert_eq!(sent, vec![json!(old), json!(fresh)], "each exactly once");
    edge
}

#[test]
fn sending_jobs_are_picked_up_only_after_their_lease() {
    stale_leases().assert_no_secrets();
}

// 15 -----------------------------------------------------------------------------------------

#[test]
fn no_reply_or_log_shows_a_key() {
    let edges = [
        happy_path(),
        reopened_before_due(),
        close_reopen_close(),
        changes_during_the_delay(),
        duplicate_event(),
        stella_500_twice(),
        network_errors(),
        stella_403(),
        stella_429(),
        kustomer_429(),
        stella_down_for_a_day(),
        steady_state(),
        bad_input(),
        resend(),
        preview(),
        check_connection(),
        crash_mid_attempt(),
        stale_leases(),
        servers_echo_keys(),
    ];
    let mut replies = 0;
    let mut requests: Vec<Request> = Vec::new();
    for edge in &edges {
        for reply in edge.replies.borrow().iter() {
            let text = serde_json::to_string(reply).unwrap();
            for secret in SECRETS {
                assert!(!text.contains(secret), "a reply shows a key: {text}");
            }
            replies += 1;
        }
        requests.extend(edge.world.requests());
    }
    assert!(replies > 50, "{replies} replies checked");
    for request in &requests {
        let printed = format!("{request:?}");
        for secret in SECRETS {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
    // The keys did travel, in the headers that need them: the checks above are not vacuous.
    let carries = |name: &str, value: &str| requests.iter().any(|r| r.header(name) == Some(value));
    assert!(carries("x-api-key", STELLA_KEY));
    assert!(carries("authorization", &format!("Bearer {KUSTOMER_KEY}")));
    assert!(carries("authorization", &format!("Bearer {OTHER_ORG_KEY}")));
}

/// Servers that repeat the caller's credentials in an error: the key must not travel on.
fn servers_echo_keys() -> Edge {
    let edge = Edge::quick();
    let echo = |status: u16| {
        Fault::status(
            status,
            &format!("upstream error; request had Authorization: Bearer {KUSTOMER_KEY}"),
        )
    };
    let event = fixture("conversation-update-done");

    // The gateway's key check.
    edge.world.kustomer_fault(echo(502));
    let reply = edge.close(&event);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (503, "kustomer_unavailable"),
        "{reply:?}"
    );
    edge.world.kustomer_fault(echo(404));
    let reply = edge.close(&event);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (502, "kustomer_error"),
        "{reply:?}"
    );
    edge.world.kustomer_fault(echo(500));
    let reply = edge.call("GET", "/v1/deliveries", &key_header(KUSTOMER_KEY), "");
    assert_eq!(
        (reply.status, error_code(&reply)),
        (503, "kustomer_unavailable"),
        "{reply:?}"
    );

    // The preview's reads (the key's org known already, so the fault meets the read).
    assert_eq!(edge.deliveries().len(), 0);
    edge.world.kustomer_fault(echo(500));
    let preview = json!({ "conversationId": CONVERSATION }).to_string();
    let reply = edge.call("POST", "/v1/preview", &settings_headers(), &preview);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (502, "kustomer_error"),
        "{reply:?}"
    );
    for reply in edge.replies.borrow().iter().filter(|r| r.status >= 400) {
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("upstream error"),
            "the server's words are kept: {message}"
        );
    }

    // The scheduler's reads and Stella's answer.
    assert_eq!(edge.close(&event).status, 202);
    edge.world.kustomer_fault(echo(400));
    edge.fire_alarms(due());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("failed"), &json!("kustomer_rejected")),
        "{d}"
    );
    assert!(
        d["message"].as_str().unwrap().contains("upstream error"),
        "{d}"
    );
    assert_eq!(edge.resend(CONVERSATION, KUSTOMER_KEY).status, 202);
    edge.world
        .stella_fault(Fault::status(500, &format!("bad key {STELLA_KEY}")));
    edge.fire_alarms(edge.now());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(d["state"], "retrying", "{d}");
    assert!(
        d["message"].as_str().unwrap().contains("bad key ********"),
        "{d}"
    );
    edge
}

#[test]
fn keys_echoed_by_servers_are_masked() {
    servers_echo_keys().assert_no_secrets();
}

#[test]
fn the_fakes_hold_the_trait_contracts() {
    // `due` picks due scheduled/retrying jobs and expired leases, earliest first, up to the
    // limit; `next_due` ignores final jobs; the log is newest close first; the cache expires.
    let store = MemStore::default();
    let job = |id: &str, state, due_ms: Option<i64>, updated_ms| Job {
        org: ORG.into(),
        conversation_id: id.into(),
        state,
        generation: 0,
        closed_at_ms: 0,
        send_at_ms: 0,
        due_ms,
        attempts: 0,
        first_attempt_ms: None,
        reason: None,
        message: None,
        request: None,
        sent_ms: None,
        created_ms: 0,
        updated_ms,
        event_ids: vec![],
        previous_sent_ms: None,
        unsure: false,
        outcome: None,
        sent_to: None,
        personal_data_removed: None,
        customer: None,
    };
    for j in [
        job("a", JobState::Scheduled, Some(300), 1),
        job("b", JobState::Retrying, Some(100), 5),
        job("c", JobState::Scheduled, Some(1001), 2),
        job("d", JobState::Sending, Some(50), 10),
        job("e", JobState::Sending, Some(40), 500),
        job("f", JobState::Sent, None, 7),
        job("g", JobState::Failed, None, 3),
    ] {
        store.put(&j).unwrap();
    }
    let ids = |jobs: Vec<Job>| {
        jobs.into_iter()
            .map(|j| j.conversation_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(store.due(1000, 100, 10).unwrap()), ["d", "b", "a"]);
    assert_eq!(ids(store.due(1000, 100, 2).unwrap()), ["d", "b"]);
    assert_eq!(ids(store.due(99, 0, 10).unwrap()), Vec::<String>::new());
    assert_eq!(store.next_due().unwrap(), Some(40));
    // The log: newest close first, then by id (all closed at 0 here); a lease shows as
    // scheduled before any failed attempt.
    let all = DeliveryQuery::default();
    assert_eq!(ids(store.deliveries(&all, 3).unwrap()), ["g", "f", "e"]);
    let scheduled = DeliveryQuery {
        states: vec![JobState::Scheduled],
        ..DeliveryQuery::default()
    };
    assert_eq!(
        ids(store.deliveries(&scheduled, 10).unwrap()),
        ["e", "d", "c", "a"]
    );
    store.cache_put("k", "v", 200).unwrap();
    assert_eq!(store.cache_get("k", 199).unwrap().as_deref(), Some("v"));
    assert_eq!(store.cache_get("k", 200).unwrap(), None);
    // `oldest_final` and `prune` see only final jobs (no due time).
    assert_eq!(store.oldest_final().unwrap(), Some(3));
    assert_eq!(
        store.prune(5, 0).unwrap(),
        1,
        "g (updated 3) goes, f (updated 7) stays"
    );
    assert_eq!(store.oldest_final().unwrap(), Some(7));
    assert_eq!(store.jobs().len(), 6);
}

// Budget ---------------------------------------------------------------------------------------

/// Thirty surveys due at once against an org budget of 20 Kustomer calls a minute, with the
/// default share (50%): spread over the minutes, never more than 10 of the app's calls in one
/// of Kustomer's windows, no 429, each survey sent once, and no attempt spent on waiting.
#[test]
fn a_burst_of_due_surveys_is_paced_under_the_share_of_the_orgs_budget() {
    let edge = Edge::quick();
    let ids = add_conversations(&edge.world, 30, 0x3000, "burst");
    let t0 = closed_ms();
    for id in &ids {
        let reply = edge.close(&close_event(id, &iso(t0)));
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    edge.world.enforce_budget(20, 60_000, edge.time.clone());
    let fired = edge.advance_to(t0 + DELAY_MS + 30 * 60_000);

    let accepted = edge.world.accepted();
    assert_eq!(accepted.len(), 30, "each survey sent");
    let mut sent: Vec<&str> = accepted
        .iter()
        .map(|b| b["ext_interaction_id"].as_str().unwrap())
        .collect();
    sent.sort_unstable();
    sent.dedup();
    assert_eq!(sent.len(), 30, "each once");
    for id in &ids {
        assert_eq!(edge.job(id).attempts, 1, "no attempt spent on waiting");
    }
    let (windows, refused) = edge.world.budget_use();
    assert_eq!(refused, 0, "no call into a 429");
    assert!(
        windows.iter().all(|n| *n <= 10),
        "over the share: {windows:?}"
    );
    assert!(windows.len() >= 6, "paced over the windows: {windows:?}");
    assert!(
        fired.len() < 100,
        "alarms only when the budget has room: {} alarms",
        fired.len()
    );
}

/// A backlog drained against Kustomer's default budget (1,000 calls a minute, the app's share
/// 50%) while every answer is read 0.2 to 2.5 s after Kustomer counted its call (a busy
/// instance), and new closes keep arriving, falling due during the drain: in none of Kustomer's
/// windows does the app make more than 500 calls, none is answered 429, and each survey goes
/// out once. (An answer read late once moved the window's end as the edge knew it, and the
/// count started again mid-window: 883 calls in a window.)
#[test]
fn late_answers_while_closes_arrive_keep_every_window_within_the_share() {
    let edge = Rc::new(Edge::new(Config {
        // The gateway's key lookups stay cached: only the scheduler spends the budget here.
        cache_ms: DAY_MS,
        ..quick_retries()
    }));
    let backlog = add_conversations(&edge.world, 700, 0x4000, "backlog");
    let t0 = closed_ms();
    for id in &backlog {
        assert_eq!(edge.close(&close_event(id, &iso(t0))).status, 202);
    }
    let arriving = add_conversations(&edge.world, 200, 0x8000, "arriving");
    edge.world.enforce_budget(1000, 60_000, edge.time.clone());
    // Every third answer read, one more conversation closes, due a second later.
    let (weak, mut next, mut reads) = (Rc::downgrade(&edge), arriving.clone().into_iter(), 0);
    edge.world
        .answer_kustomer_late(edge.time.clone(), (200, 2500), 19, move || {
            reads += 1;
            let Some(edge) = weak.upgrade().filter(|_| reads % 3 == 0) else {
                return;
            };
            if let Some(id) = next.next() {
                let closed = edge.now() - DELAY_MS + 1000;
                assert_eq!(edge.close(&close_event(&id, &iso(closed))).status, 202);
            }
        });
    edge.advance_to(t0 + DELAY_MS + 60 * 60_000);

    let (windows, refused) = edge.world.budget_use();
    let late = edge.world.late_delays();
    assert!(
        late.iter().filter(|d| **d > 1000).count() > late.len() / 2,
        "most answers read over a second late"
    );
    assert_eq!(refused, 0, "no call into a 429");
    assert!(
        windows.iter().all(|n| *n <= 500),
        "over the share: {windows:?}"
    );
    let mut sent: Vec<String> = (edge.world.accepted().iter())
        .map(|b| b["ext_interaction_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), backlog.len() + arriving.len(), "{windows:?}");
    sent.sort_unstable();
    sent.dedup();
    assert_eq!(sent.len(), backlog.len() + arriving.len(), "each once");
    assert!(
        windows.iter().filter(|n| **n >= 450).count() >= 2,
        "the share is used: {windows:?}"
    );
}

/// The org's instance starts again mid-window, after its share of the window was used up and
/// with surveys still due: the new one knows nothing of the window yet, and waits for it to
/// turn instead of probing into it.
#[test]
fn a_new_instance_does_not_go_over_the_window_the_one_before_used_up() {
    let edge = Edge::quick();
    let ids = add_conversations(&edge.world, 12, 0x5000, "restart");
    let t0 = closed_ms();
    for id in &ids {
        assert_eq!(edge.close(&close_event(id, &iso(t0))).status, 202);
    }
    edge.world.enforce_budget(20, 60_000, edge.time.clone());
    let due = t0 + DELAY_MS;
    assert!(
        due % 60_000 < 50_000,
        "both runs in one of Kustomer's windows"
    );
    edge.fire_alarms(due);
    assert_eq!(edge.world.budget_use().0, [10], "the share: 10 of 20");
    edge.gateway.router.restart(ORG);
    edge.fire_alarms(due + 1000);
    assert_eq!(
        edge.world.budget_use().0,
        [10],
        "nothing more in that window"
    );
    edge.advance_to(due + 10 * 60_000);
    let (windows, refused) = edge.world.budget_use();
    assert_eq!(
        (windows.iter().max(), refused),
        (Some(&10), 0),
        "{windows:?}"
    );
    assert_eq!(edge.world.accepted().len(), 12, "{windows:?}");
}

/// A job cut off by a crash, picked again once its lease is over while the org's budget is
/// spent by others: it waits for the next window without renewing its lease, and the alarm
/// does not spin meanwhile.
#[test]
fn a_crash_left_job_waits_for_the_budget_without_spinning() {
    let edge = Edge::quick();
    let lease = edge.gateway.config.lease_ms;
    edge.world.stella_fault(Fault::Crash);
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.world.enforce_budget(100, 600_000, edge.time.clone());
    let crashed = catch_unwind(AssertUnwindSafe(|| edge.fire_alarms(due())));
    assert!(crashed.is_err(), "the process died during the Stella call");
    // The rest of the window (the attempt took 4 calls) goes to the org's other integrations.
    edge.world.spend_budget_elsewhere(96);
    // workerd runs a failed alarm again: nothing is due within the lease.
    assert_eq!(edge.fire_alarms(due() + lease / 2), 0);
    let fired = edge.advance_to(due() + lease + 20 * 60_000);
    assert!(fired.len() < 30, "{} alarms", fired.len());
    assert_eq!(
        edge.world.accepted(),
        vec![expected()],
        "sent once, after the window"
    );
    // One call finds out what the others spent (the scheduler knew only its own answers).
    let (_, refused) = edge.world.budget_use();
    assert!(refused <= 1, "{refused} calls into a 429");
}

// Delivery log: filters, paging, summary, bulk resend ------------------------------------------

/// An edge whose org has registered its app secret (one real close), and whose store then
/// holds `jobs` as well.
fn log_edge(jobs: &[Job]) -> Edge {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let scheduler = edge.scheduler(ORG);
    for job in jobs {
        scheduler.store.put(job).unwrap();
    }
    edge
}

const SAM: &str = "sam.agent@acme.example";
const KIM: &str = "Kim@Acme.example";

/// A dozen jobs in every state, over three days.
fn varied_jobs() -> Vec<Job> {
    let day = |d: i64, h: i64| ms("2026-11-01T00:00:00Z") + d * DAY_MS + h * HOUR_MS;
    let mut lease = log_job("l-retry", JobState::Sending, day(2, 5), None, None);
    lease.attempts = 2;
    vec![
        log_job("a-sent", JobState::Sent, day(0, 1), None, Some(SAM)),
        log_job(
            "b-sent",
            JobState::Sent,
            day(0, 23),
            Some("resend"),
            Some(KIM),
        ),
        log_job(
            "c-skip",
            JobState::Skipped,
            day(1, 0),
            Some("reopened"),
            None,
        ),
        log_job(
            "d-skip",
            JobState::Skipped,
            day(1, 12),
            Some("no_customer_email"),
            Some(SAM),
        ),
        log_job(
            "e-fail",
            JobState::Failed,
            day(1, 13),
            Some("stella_rejected"),
            Some("kim@acme.example"),
        ),
        log_job(
            "f-fail",
            JobState::Failed,
            day(2, 1),
            Some("gave_up"),
            Some(SAM),
        ),
        log_job("g-sched", JobState::Scheduled, day(2, 2), None, None),
        log_job(
            "h-retry",
            JobState::Retrying,
            day(2, 3),
            Some("temporary_failure"),
            Some(SAM),
        ),
        log_job("k-lease", JobState::Sending, day(2, 4), None, None),
        lease,
    ]
}

/// The log marks each entry that a resend can change, and the edge refuses the others: a
/// failure, a skip for the settings or for no agent yes; a skip for the conversation's own
/// facts (no customer email, reopened) no, nor anything pending or sent. Text from elsewhere comes
/// without direction controls.
#[test]
fn the_log_marks_what_a_resend_can_change() {
    let mut jobs = varied_jobs();
    jobs.push(log_job(
        "m-skip",
        JobState::Skipped,
        ms("2026-11-02T00:00:00Z"),
        Some("channel_not_surveyed"),
        Some(SAM),
    ));
    jobs.push(log_job(
        "o-skip",
        JobState::Skipped,
        ms("2026-11-02T02:00:00Z"),
        Some("no_assigned_agent"),
        None,
    ));
    let mut hostile = log_job(
        "n-fail",
        JobState::Failed,
        ms("2026-11-02T01:00:00Z"),
        None,
        Some(SAM),
    );
    hostile.request.as_mut().unwrap()["customer"]["name"] = json!("Ann\u{202E}eeL\u{2066}");
    hostile.message = Some("Agent Connect answered 400: \u{202E}lennahc".into());
    jobs.push(hostile);
    let edge = log_edge(&jobs);
    let reply = edge.log("limit=50");
    let marks: std::collections::BTreeMap<String, bool> = reply.body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["conversationId"].as_str().unwrap().to_owned(),
                d["resendable"].as_bool().unwrap(),
            )
        })
        .collect();
    let yes: Vec<&str> = marks
        .iter()
        .filter(|(_, r)| **r)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        yes,
        ["e-fail", "f-fail", "m-skip", "n-fail", "o-skip"],
        "{marks:?}"
    );
    let shown = reply.body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["conversationId"] == "n-fail")
        .unwrap();
    assert_eq!(shown["customerName"], "AnneeL");
    assert_eq!(shown["message"], "Agent Connect answered 400: lennahc");
    // What the page does not offer, the edge does not do.
    for id in ["c-skip", "d-skip"] {
        let reply = edge.resend(id, KUSTOMER_KEY);
        assert_eq!(
            (reply.status, error_code(&reply)),
            (409, "not_resendable"),
            "{id}"
        );
        assert_eq!(edge.job(id).state, JobState::Skipped, "{id}");
    }
    assert_eq!(edge.resend("m-skip", KUSTOMER_KEY).status, 202);
}

#[test]
fn the_log_filters_by_state_reason_agent_time_and_conversation() {
    let edge = log_edge(&varied_jobs());
    let ids = |query: &str| log_ids(&edge.log(query));
    // Newest close first; the fixture's real close (2026-11-20) is the newest.
    assert_eq!(
        ids(""),
        [
            CONVERSATION,
            "l-retry",
            "k-lease",
            "h-retry",
            "g-sched",
            "f-fail",
            "e-fail",
            "d-skip",
            "c-skip",
            "b-sent",
            "a-sent"
        ]
    );
    assert_eq!(ids("state=sent"), ["b-sent", "a-sent"]);
    assert_eq!(
        ids("state=failed,skipped"),
        ["f-fail", "e-fail", "d-skip", "c-skip"]
    );
    // A lease shows as it was: retrying after a failed attempt, else scheduled.
    assert_eq!(ids("state=retrying"), ["l-retry", "h-retry"]);
    assert_eq!(ids("state=scheduled"), [CONVERSATION, "k-lease", "g-sched"]);
    assert_eq!(ids("reason=reopened"), ["c-skip"]);
    assert_eq!(ids("reason=resend&state=sent"), ["b-sent"]);
    // Case-insensitive, on the request's agent; a job without a request has none.
    assert_eq!(ids("agent=KIM%40acme.EXAMPLE"), ["e-fail", "b-sent"]);
    assert_eq!(ids(&format!("agent={SAM}&state=failed")), ["f-fail"]);
    assert_eq!(ids("agent=nobody%40acme.example"), Vec::<String>::new());
    // The close time: `from` inclusive, `to` exclusive.
    assert_eq!(
        ids("from=2026-11-02T00:00:00Z&to=2026-11-02T13:00:00Z"),
        ["d-skip", "c-skip"]
    );
    assert_eq!(ids("to=2026-11-01T23:00:00Z"), ["a-sent"]);
    assert_eq!(
        ids("from=2026-11-03T04:00:00%2B00:00&to=2026-11-04T00:00:00Z"),
        ["l-retry", "k-lease"]
    );
    assert_eq!(ids("conversationId=e-fail"), ["e-fail"]);
    assert_eq!(
        ids("conversationId=e-fail&state=sent"),
        Vec::<String>::new()
    );
    assert_eq!(ids("limit=2"), [CONVERSATION, "l-retry"]);
    // Every parameter given, empty, as the app's command template sends them: all of the log.
    let empty = "state=&reason=&agent=&from=&to=&conversationId=&limit=&cursor=&utcOffsetMinutes=";
    assert_eq!(ids(empty).len(), 11);

    // The table's fields, flat; unknown ones null.
    let reply = edge.log("conversationId=e-fail");
    let entry = &reply.body["deliveries"][0];
    assert_eq!(entry["state"], "failed");
    assert_eq!(entry["reason"], "stella_rejected");
    assert_eq!(entry["customerName"], "Customer e-fail");
    assert_eq!(entry["customerEmail"], "e-fail@example.com");
    assert_eq!(entry["agentEmail"], "kim@acme.example");
    assert_eq!(entry["channel"], "email");
    assert_eq!(
        entry["conversationUrl"],
        "https://acme.kustomerapp.com/app/customers/c/event/e-fail"
    );
    assert_eq!(entry["closedAt"], "2026-11-02T13:00:00.000Z");
    let reply = edge.log("conversationId=c-skip");
    let entry = &reply.body["deliveries"][0];
    for field in [
        "customerName",
        "customerEmail",
        "agentEmail",
        "channel",
        "request",
    ] {
        assert_eq!(entry[field], Value::Null, "{field}");
    }
    // No survey built, so no link of its own: one under the org's saved Kustomer URL.
    assert_eq!(
        entry["conversationUrl"],
        "https://acme.kustomerapp.com/app/conversations/c-skip"
    );
    // The states in the summary's order with their words, and the edge's limits.
    let states: Vec<&str> = (reply.body["states"].as_array().unwrap().iter())
        .map(|s| s["words"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["Scheduled", "Retrying", "Sent", "Skipped", "Failed"]
    );
    assert_eq!(
        reply.body["limits"],
        json!({"perRead": 200, "perResend": 50})
    );
    // Every reason code the log can show, in words, from the Rust code.
    let reasons = reply.body["reasons"].as_object().unwrap();
    for code in [
        "reopened",
        "already_surveyed",
        "stella_rejected",
        "gave_up",
        "resend",
        "invalid_settings",
    ] {
        assert!(
            reasons[code].as_str().is_some_and(|w| !w.is_empty()),
            "{code}"
        );
    }
    assert_eq!(reply.body["retentionDays"], 90);
    assert_eq!(reply.body["nextCursor"], Value::Null);
}

#[test]
fn the_summary_counts_by_state_day_reason_and_agent_at_the_admins_offset() {
    let edge = log_edge(&varied_jobs());
    let summary = |query: &str| {
        let reply = edge.log(query);
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["summary"].clone()
    };
    let s = summary("to=2026-11-04T00:00:00Z");
    assert_eq!(
        s["byState"],
        json!({"scheduled": 2, "retrying": 2, "sent": 2, "skipped": 2, "failed": 2})
    );
    // UTC days.
    assert_eq!(
        s["days"],
        json!([
            {"day": "2026-11-01", "sent": 2, "skipped": 0, "failed": 0, "pending": 0},
            {"day": "2026-11-02", "sent": 0, "skipped": 2, "failed": 1, "pending": 0},
            {"day": "2026-11-03", "sent": 0, "skipped": 0, "failed": 1, "pending": 4},
        ])
    );
    // The most frequent first, then by name; agents folded to lower case.
    assert_eq!(
        s["byAgent"],
        json!([{"agent": SAM, "count": 4}, {"agent": "kim@acme.example", "count": 2}])
    );
    assert_eq!(s["byReason"].as_array().unwrap().len(), 6);
    assert_eq!(s["byReason"][0], json!({"reason": "gave_up", "count": 1}));
    // An hour east: b-sent (23:00 UTC) is the 2nd's, and c-skip stays there.
    let east = summary("to=2026-11-04T00:00:00Z&utcOffsetMinutes=60");
    assert_eq!(
        east["days"][0],
        json!({"day": "2026-11-01", "sent": 1, "skipped": 0, "failed": 0, "pending": 0})
    );
    assert_eq!(
        east["days"][1],
        json!({"day": "2026-11-02", "sent": 1, "skipped": 2, "failed": 1, "pending": 0})
    );
    // Five hours west: c-skip (00:00 UTC on the 2nd) is the 1st's, f-fail (01:00 on the 3rd)
    // and the leases before 05:00 the 2nd's, and a-sent (01:00 on the 1st) the day before.
    let west = summary("to=2026-11-04T00:00:00Z&utcOffsetMinutes=-300");
    assert_eq!(
        west["days"],
        json!([
            {"day": "2026-10-31", "sent": 1, "skipped": 0, "failed": 0, "pending": 0},
            {"day": "2026-11-01", "sent": 1, "skipped": 1, "failed": 0, "pending": 0},
            {"day": "2026-11-02", "sent": 0, "skipped": 1, "failed": 2, "pending": 3},
            {"day": "2026-11-03", "sent": 0, "skipped": 0, "failed": 0, "pending": 1},
        ])
    );
    // The summary ignores `state` (the menus offer every state) but follows the other filters.
    assert_eq!(
        summary("to=2026-11-04T00:00:00Z&state=sent")["byState"],
        s["byState"]
    );
    let sam = summary(&format!("agent={SAM}"));
    assert_eq!(
        sam["byState"],
        json!({"scheduled": 0, "retrying": 1, "sent": 1, "skipped": 1, "failed": 1})
    );
    assert_eq!(sam["byAgent"], json!([{"agent": SAM, "count": 4}]));
    // Only a first page has one.
    let first = edge.log("limit=3");
    let cursor = first.body["nextCursor"].as_str().unwrap();
    let next = edge.log(&format!("limit=3&cursor={cursor}"));
    assert_eq!(next.body["summary"], Value::Null);
    assert_eq!(log_ids(&next), ["h-retry", "g-sched", "f-fail"]);
}

/// The summary as a count of every job would give it: what the counters must equal.
fn counted(store: &MemStore, query: &DeliveryQuery) -> Value {
    let mut tally = Tally::default();
    for job in store.jobs().iter().filter(|j| query.in_summary(j)) {
        tally.count(query, job);
    }
    tally.summary()
}

#[test]
fn the_summarys_counters_follow_every_change_and_retention() {
    // Jobs written, rewritten (state, reason, agent and close time change), resent and pruned:
    // after each step, every summary read from the counters equals a count of every job.
    let edge = log_edge(&varied_jobs());
    let store = &edge.scheduler(ORG).store;
    let queries: Vec<DeliveryQuery> = [
        "",
        "utcOffsetMinutes=-300",
        "from=2026-11-01T12:00:00Z&to=2026-11-03T00:00:00Z&utcOffsetMinutes=60",
        "from=2026-11-01T12:30:00Z&to=2026-11-03T01:15:00Z",
        "from=2026-11-02T12:10:00Z&to=2026-11-02T13:20:00Z",
        "reason=gave_up",
        "agent=SAM.agent%40acme.example&from=2026-11-02T00:00:00Z",
        "conversationId=d-skip",
    ]
    .iter()
    .map(|q| DeliveryQuery::parse(q).unwrap())
    .collect();
    let check = |step: &str| {
        for q in &queries {
            let read = store.tally(q).unwrap().summary();
            assert_eq!(read, counted(store, q), "{step}: {q:?}");
        }
        assert!(
            store.counters().values().all(|n| *n > 0),
            "{step}: no zero is kept"
        );
    };
    check("written");
    let mut e = store.get("e-fail").unwrap().unwrap();
    e.state = JobState::Sent;
    e.reason = None;
    e.request = None;
    store.put(&e).unwrap();
    let mut h = store.get("h-retry").unwrap().unwrap();
    h.closed_at_ms += 30 * DAY_MS; // a later close of the same conversation
    h.state = JobState::Scheduled;
    store.put(&h).unwrap();
    check("rewritten");
    let reply = edge.resend("f-fail", KUSTOMER_KEY); // a failure: a resend may change it
    assert_eq!(reply.status, 202, "{reply:?}");
    check("resent");
    let pruned = store.prune(ms("2026-12-01T00:00:00Z"), 0).unwrap();
    assert!(pruned >= 4, "{pruned}");
    check("pruned");
    let total: u64 = store.counters().values().sum();
    assert_eq!(total, store.jobs().len() as u64);
}

#[test]
fn the_cursor_pages_past_200_without_repeats_or_gaps_while_closes_arrive() {
    // 450 jobs, three to a close time (the id breaks ties), the fixture's real close newest.
    let t0 = closed_ms() - 30 * DAY_MS;
    let jobs: Vec<Job> = (0..450)
        .map(|i| {
            let state = [JobState::Sent, JobState::Skipped, JobState::Failed][i % 3];
            log_job(
                &format!("p{i:04}"),
                state,
                t0 + (i as i64 / 3) * 60_000,
                None,
                None,
            )
        })
        .collect();
    let edge = log_edge(&jobs);
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=200&cursor={c}"),
            None => "limit=200".to_owned(),
        };
        let reply = edge.log(&query);
        assert_eq!(
            reply.body["summary"].is_null(),
            cursor.is_some(),
            "a summary on the first page only"
        );
        seen.extend(log_ids(&reply));
        pages += 1;
        if pages == 1 {
            // Closes arrive while the admin reads: a new conversation through the gateway, and
            // a later close of one already listed, newest of all.
            let ids = add_conversations(&edge.world, 1, 0x7000, "late");
            edge.set_now(edge.now() + 60_000);
            assert_eq!(
                edge.close(&close_event(&ids[0], &iso(edge.now() - 1000)))
                    .status,
                202
            );
            let mut moved = edge.job("p0449");
            moved.closed_at_ms = edge.now() - 500;
            edge.scheduler(ORG).store.put(&moved).unwrap();
        }
        match reply.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging never ends");
    }
    assert_eq!(pages, 3, "200 + 200 + 51");
    assert_eq!(seen.len(), 451, "no repeats, none missed");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 451);
    assert_eq!(seen[0], CONVERSATION);
    // Same close time: the greater id first.
    assert_eq!(&seen[1..4], ["p0449", "p0448", "p0447"]);
    // A filter pages the same way.
    let mut failed = Vec::new();
    let mut query = "state=failed&limit=7".to_owned();
    loop {
        let reply = edge.log(&query);
        failed.extend(log_ids(&reply));
        match reply.body["nextCursor"].as_str() {
            Some(c) => query = format!("state=failed&limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(failed.len(), 150);
    assert!(failed
        .iter()
        .all(|id| edge.job(id).state == JobState::Failed));
    // The last page exactly full: no cursor to an empty page.
    let reply = edge.log("state=failed&limit=150");
    assert_eq!(
        (log_ids(&reply).len(), &reply.body["nextCursor"]),
        (150, &Value::Null)
    );
}

#[test]
fn bulk_resend_schedules_the_failed_and_skipped_and_says_why_not_for_the_rest() {
    let t = closed_ms() - DAY_MS;
    let edge = log_edge(&[]);
    let ids = add_conversations(&edge.world, 2, 0x7100, "bulk");
    let scheduler = edge.scheduler(ORG);
    for (id, state) in [(&ids[0], JobState::Failed), (&ids[1], JobState::Skipped)] {
        scheduler
            .store
            .put(&log_job(
                id,
                state,
                closed_ms(),
                Some("stella_rejected"),
                None,
            ))
            .unwrap();
    }
    scheduler
        .store
        .put(&log_job("sent-one", JobState::Sent, t, None, Some(SAM)))
        .unwrap();
    let at = edge.now() + 60_000;
    edge.set_now(at);
    let reply = edge.resend_many(
        &[
            &ids[0],
            "sent-one",
            "nowhere",
            &ids[1],
            &ids[0],
            CONVERSATION,
        ],
        KUSTOMER_KEY,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let results: Vec<(String, String)> = reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
            (
                r["conversationId"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |id: &str, status: &str| (id.to_owned(), status.to_owned());
    assert_eq!(
        results,
        [
            expect(&ids[0], "scheduled"),
            expect("sent-one", "not_resendable"),
            expect("nowhere", "not_found"),
            expect(&ids[1], "scheduled"),
            expect(CONVERSATION, "not_resendable"),
        ],
        "repeats folded, in the order given"
    );
    assert_eq!(
        (&reply.body["scheduled"], &reply.body["refused"]),
        (&json!(2), &json!(3))
    );
    for id in &ids {
        let job = edge.job(id);
        assert_eq!(
            (job.state, job.due_ms, job.reason.as_deref()),
            (JobState::Scheduled, Some(at), Some("resend"))
        );
    }
    assert_eq!(edge.job("sent-one").state, JobState::Sent, "untouched");
    // One round trip to the org's scheduler for the lot.
    let bulk = edge
        .gateway
        .router
        .commands
        .borrow()
        .iter()
        .filter(|(_, c)| matches!(c, Command::ResendMany { .. }))
        .count();
    assert_eq!(bulk, 1);
    // The resent surveys go out.
    edge.advance_to(at + 10_000);
    let sent: Vec<String> = edge
        .world
        .accepted()
        .iter()
        .map(|b| b["ext_interaction_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.iter().all(|id| sent.contains(id)), "{sent:?}");
    assert_eq!(edge.job(&ids[0]).state, JobState::Sent);

    // At most 50 a call; at least one; each id checked; a body that is a list of ids.
    let many: Vec<String> = (0..51).map(|i| format!("x{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let reply = edge.resend_many(&many, KUSTOMER_KEY);
    assert_eq!(
        (reply.status, error_code(&reply)),
        (400, "too_many_ids"),
        "{reply:?}"
    );
    assert_eq!(
        edge.resend_many(&many[..50], KUSTOMER_KEY).body["refused"],
        50
    );
    let reply = edge.resend_many(&[], KUSTOMER_KEY);
    assert_eq!((reply.status, error_code(&reply)), (400, "invalid_shape"));
    let reply = edge.resend_many(&["ok", ""], KUSTOMER_KEY);
    assert_eq!((reply.status, error_code(&reply)), (400, "invalid_id"));
    assert_eq!(reply.body["error"]["path"], "body.conversationIds[1]");
    let headers = settings_headers();
    for (body, code) in [
        ("{not json", "malformed_json"),
        ("[]", "invalid_shape"),
        (r#"{"conversationIds": "x"}"#, "invalid_shape"),
        (r#"{"conversationIds": [7]}"#, "invalid_shape"),
    ] {
        let reply = edge.call("POST", "/v1/deliveries/resend", &headers, body);
        assert_eq!((reply.status, error_code(&reply)), (400, code), "{body}");
    }
    let reply = edge.call("GET", "/v1/deliveries/resend", &headers, "");
    assert_eq!(reply.status, 405);
    assert_eq!(
        stella_connect::edge::gateway::body_limit("POST", "/v1/deliveries/resend"),
        stella_connect::edge::deliveries::MAX_RESEND_BODY_BYTES
    );
    // The single resend still answers as before.
    assert_eq!(edge.resend("sent-one", KUSTOMER_KEY).status, 409);
}

// Brands ---------------------------------------------------------------------------------------

/// The fixture conversation's brand (`relationships.brand.data.id`).
const BRAND: &str = "5f0c1b2a3d4e5f6a7b8c9d41";

/// Closes `id` at `at_ms` with the settings headers changed by `changes`, and runs it due.
fn close_and_send(edge: &Edge, id: &str, at_ms: i64, changes: &[(&str, Option<&str>)]) {
    edge.set_now(at_ms + 1000);
    let reply = edge.close_with(
        &close_event(id, &iso(at_ms)),
        &settings_headers_with(changes),
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    edge.advance_to(at_ms + DELAY_MS);
}

#[test]
fn the_brand_map_reads_the_brand_name_once_through_the_orgs_cache() {
    let edge = Edge::quick();
    edge.world.add_brand(BRAND, "Acme Shoes");
    let ids = add_conversations(&edge.world, 3, 0x7200, "branded");
    let map = [("brandMap", Some("acme shoes=shoes, Acme Hats=hats"))];
    let t0 = closed_ms();
    close_and_send(&edge, &ids[0], t0, &map);
    assert_eq!(edge.world.calls("brand"), 1, "a cold job reads the brand");
    let before = edge.world.kustomer_calls();
    close_and_send(&edge, &ids[1], t0 + 60_000, &map);
    assert_eq!(
        edge.world.calls("brand"),
        1,
        "the second job finds it cached"
    );
    assert_eq!(
        edge.world.kustomer_calls() - before,
        2,
        "a warm job: the conversation and its customer"
    );
    let accepted = edge.world.accepted();
    assert_eq!(accepted.len(), 2);
    for (body, id) in accepted.iter().zip(&ids) {
        assert_eq!(body["brand"], "shoes");
        assert_eq!(
            body["custom_properties"],
            json!({"kustomer_org": ORG, "kustomer_conversation_id": id})
        );
    }
    // Without a brand map, the brand is not read at all.
    close_and_send(&edge, &ids[2], t0 + 120_000, &[]);
    assert_eq!(edge.world.calls("brand"), 1);
    assert!(edge.world.accepted()[2].get("brand").is_none());
    edge.assert_no_secrets();
}

#[test]
fn a_brand_not_in_the_map_is_skipped_unless_a_fixed_brand_is_set() {
    let edge = Edge::quick();
    edge.world.add_brand(BRAND, "Acme Socks");
    let ids = add_conversations(&edge.world, 2, 0x7300, "unmapped");
    let t0 = closed_ms();
    close_and_send(
        &edge,
        &ids[0],
        t0,
        &[("brandMap", Some("Acme Shoes=shoes"))],
    );
    let d = edge.delivery(&ids[0]);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("skipped"), &json!("brand_not_mapped")),
        "{d}"
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Acme Socks"),
        "{d}"
    );
    assert_eq!(edge.world.stella_attempts(), 0);
    let fixed = [
        ("brandMap", Some("Acme Shoes=shoes")),
        ("brand", Some("main")),
    ];
    close_and_send(&edge, &ids[1], t0 + 60_000, &fixed);
    assert_eq!(edge.world.accepted()[0]["brand"], "main");
    assert_eq!(
        edge.world.calls("brand"),
        1,
        "the name was cached by the first job"
    );
}

#[test]
fn a_brand_kustomer_does_not_find_is_a_brand_not_read_not_a_missing_conversation() {
    let edge = Edge::quick();
    let ids = add_conversations(&edge.world, 2, 0x7400, "nobrand");
    close_and_send(
        &edge,
        &ids[0],
        closed_ms(),
        &[("brandMap", Some("Acme Shoes=shoes"))],
    );
    let d = edge.delivery(&ids[0]);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("skipped"), &json!("brand_not_mapped")),
        "{d}"
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap_or_default()
            .contains("could not be read"),
        "{d}"
    );
    assert_eq!(edge.world.calls("brand"), 1);
    assert_eq!(edge.world.stella_attempts(), 0);
    // With a fixed brand, the survey goes out under it.
    let fixed = [
        ("brandMap", Some("Acme Shoes=shoes")),
        ("brand", Some("main")),
    ];
    close_and_send(&edge, &ids[1], closed_ms() + 60_000, &fixed);
    assert_eq!(edge.world.accepted()[0]["brand"], "main");
}
