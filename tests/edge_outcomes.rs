#![cfg(not(target_arch = "wasm32"))]
//! Survey outcomes end to end on the host: the org schedulers read each survey's fate and
//! answer back from Agent Connect's Data Return (`GET /v2/data`, the fake in
//! `support/edge_fakes.rs`) and write it onto the Kustomer conversation (`PATCH
//! /v1/conversations/{id}`), within Agent Connect's pace and Kustomer's budget. Time is the
//! fake clock's: every wait is an alarm the scheduler asked for.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::*;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use stella_connect::edge::agent_connect::SETTLE_EVERY_POLLS;
use stella_connect::edge::job::JobState;
use stella_connect::edge::{Config, Store};
use stella_connect::survey_outcome::DeliveryStatus;
use support::fixture;

/// The delay the settings headers ask for.
const DELAY_MS: i64 = 900_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The conversation attributes the outcome is written into, spelled out (not from the code).
const STATUS_KEY: &str = "@stellaSurveyDeliveryStatusStr";
const SENT_AT_KEY: &str = "@stellaSurveySentAt";
const RATING_KEY: &str = "@stellaSurveyRatingNum";
const COMMENT_KEY: &str = "@stellaSurveyCommentTxt";
const RESPONDED_AT_KEY: &str = "@stellaSurveyRespondedAt";
/// A second conversation of the org.
const SECOND: &str = "6560e0f1a2b3c4d5e6f7a001";

/// When the fixture's survey falls due.
fn due() -> i64 {
    closed_ms() + DELAY_MS
}

/// The workflow's settings with the org's Stella API secret.
fn with_secret() -> Vec<(String, String)> {
    settings_headers_with(&[("stellaApiSecret", Some(STELLA_SECRET))])
}

fn poll_ms(edge: &Edge) -> i64 {
    edge.gateway.config.outcome_poll_ms
}

/// Data Return calls made so far.
fn data_calls(edge: &Edge) -> usize {
    edge.world.data_calls().len()
}

/// The `PATCH`es Kustomer took.
fn written(edge: &Edge) -> Vec<Patch> {
    let patches = edge.world.patches();
    patches.into_iter().filter(|p| p.status == 200).collect()
}

/// The fixture's conversation closed with the secret: scheduled.
fn close_with_secret(edge: &Edge) {
    let reply = edge.close_with(&fixture("conversation-update-done"), &with_secret());
    assert_eq!(reply.status, 202, "{reply:?}");
}

/// The fixture's conversation closed with the secret and its survey sent at `due()`.
fn sent_with_secret(config: Config) -> Edge {
    let edge = Edge::new(config);
    close_with_secret(&edge);
    edge.advance_to(due());
    let job = edge.job(CONVERSATION);
    assert_eq!((job.state, job.sent_ms), (JobState::Sent, Some(due())));
    assert_eq!(edge.world.accepted().len(), 1);
    edge
}

/// A copy of the fixture's conversation under another id, with its own customer.
fn add_conversation(world: &World, id: &str, customer_id: &str) {
    let mut conversation = fixture("conversation");
    conversation["data"]["id"] = json!(id);
    conversation["data"]["relationships"]["customer"]["data"]["id"] = json!(customer_id);
    world.add_conversation(conversation);
    let mut customer = fixture("customer");
    customer["data"]["id"] = json!(customer_id);
    customer["data"]["attributes"]["emails"] = json!([{"email": format!("{id}@example.com")}]);
    world.add_customer(customer);
}

/// The checks every scenario ends with: Agent Connect never refused the key or the JWT, no
/// reply or logged request shows a key, the secret or a JWT the edge made.
fn finish(edge: &Edge) {
    for call in edge.world.data_calls() {
        assert_eq!(call.refused, None, "Agent Connect refused {call:?}");
    }
    edge.assert_no_secrets();
    let tokens: std::collections::HashSet<String> = (edge.world.requests().iter())
        .filter(|r| r.url.contains("/v2/data"))
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    let mut shown: Vec<String> = (edge.replies.borrow().iter())
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    shown.extend(edge.world.requests().iter().map(|r| format!("{r:?}")));
    shown.extend(
        (edge.world.requests().iter()).map(|r| serde_json::to_string(r).unwrap_or_default()),
    );
    let store = &edge.scheduler(ORG).store;
    shown.extend(
        store
            .jobs()
            .iter()
            .map(|j| serde_json::to_string(j).unwrap()),
    );
    shown.push(format!("{:?}", store.org().unwrap()));
    // Every JWT starts `eyJ` (a JSON header in base64url): each run of token characters from
    // there is looked up among the tokens made.
    let token_char = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    for text in &shown {
        for (at, _) in text.match_indices("eyJ") {
            let run = &text[at..];
            let end = run.find(|c| !token_char(c)).unwrap_or(run.len());
            assert!(!tokens.contains(&run[..end]), "a JWT is shown: {text}");
        }
    }
}

// Without the secret --------------------------------------------------------------------------

#[test]
fn without_the_secret_nothing_is_read_or_written() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    assert_eq!(edge.advance_to(due()), vec![due()]);
    assert_eq!(edge.world.accepted().len(), 1);
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert_eq!(record.sealed_settings, None, "keys dropped once sent");
    assert!(!record.follow.reading);
    assert_eq!(
        edge.scheduler(ORG).next_alarm().unwrap(),
        Some(due() + 30 * DAY_MS),
        "only the housekeeping alarms are left: personal data at 30 days, the entry at 90"
    );
    edge.world.answer_survey(CONVERSATION, 4, "Quick and kind");
    edge.advance_to(due() + 30 * DAY_MS);
    assert_eq!(data_calls(&edge), 0, "no /v2/data call without the secret");
    assert!(
        edge.world.patches().is_empty(),
        "no PATCH without the secret"
    );
    assert_eq!(edge.world.calls("patch"), 0);
    assert_eq!(edge.job(CONVERSATION).outcome, None);
    assert_eq!(edge.delivery(CONVERSATION)["outcome"], Value::Null);
    assert_eq!(
        edge.world.conversation_custom(CONVERSATION).get(RATING_KEY),
        None
    );
    finish(&edge);
}

// Sent, then answered ----------------------------------------------------------------------------

#[test]
fn a_sent_survey_and_its_answer_are_written_onto_the_conversation() {
    let edge = sent_with_secret(quick_retries());
    // The alarm that sent it read the record back and wrote it.
    let job = edge.job(CONVERSATION);
    let outcome = job.outcome.expect("an outcome read back");
    assert_eq!(outcome.read.delivery_status, DeliveryStatus::Sent);
    assert_eq!(outcome.read.rating, None);
    assert!(!outcome.unwritten);
    let patches = written(&edge);
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].conversation_id, CONVERSATION);
    assert_eq!(
        patches[0].custom,
        json!({STATUS_KEY: "sent", SENT_AT_KEY: iso(due()), RATING_KEY: null, COMMENT_KEY: null, RESPONDED_AT_KEY: null}),
        "the status and the send time; what is not known yet is cleared (an earlier survey's rating)"
    );
    let custom = edge.world.conversation_custom(CONVERSATION);
    assert_eq!(custom[STATUS_KEY], "sent");
    assert_eq!(
        custom["@stellaDoNotSendStellaConnectRequestBool"], false,
        "the conversation's own attributes are kept"
    );
    assert!(edge.scheduler(ORG).store.org().unwrap().follow.reading);
    let reads = data_calls(&edge);
    assert!(reads >= 1);

    // Answered a minute later: written within one poll interval.
    let answered = due() + MINUTE_MS;
    edge.set_now(answered);
    edge.world.answer_survey(CONVERSATION, 4, "Quick and kind");
    edge.advance_to(due() + poll_ms(&edge));
    let custom = edge.world.conversation_custom(CONVERSATION);
    assert_eq!(custom[RATING_KEY], 4, "{custom}");
    assert_eq!(custom[COMMENT_KEY], "Quick and kind");
    assert_eq!(custom[RESPONDED_AT_KEY], iso(answered));
    assert_eq!(custom[STATUS_KEY], "sent");
    let patches = written(&edge);
    assert_eq!(
        patches.len(),
        2,
        "one PATCH per changed outcome: {patches:?}"
    );
    assert_eq!(patches[1].at_ms, due() + poll_ms(&edge));
    assert_eq!(
        edge.world.patches().len(),
        2,
        "no PATCH refused or repeated"
    );
    let d = edge.delivery(CONVERSATION);
    assert_eq!(d["outcome"]["rating"], 4, "{d}");
    assert_eq!(d["outcome"]["comment"], "Quick and kind");
    assert_eq!(d["outcome"]["deliveryStatus"], "sent");

    // Answered is final: nothing is read any more, and the alarm settles.
    let reads = data_calls(&edge);
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert_eq!(
        record.sealed_settings, None,
        "nothing followed: keys dropped"
    );
    edge.advance_to(due() + 60 * DAY_MS);
    assert_eq!(data_calls(&edge), reads, "no read once nothing is followed");
    assert_eq!(written(&edge).len(), 2);
    finish(&edge);
}

// De-duplication ------------------------------------------------------------------------------

#[test]
fn a_record_seen_in_both_passes_and_across_polls_is_written_once() {
    let edge = Edge::quick();
    add_conversation(&edge.world, SECOND, "5f0c1b2a3d4e5f6a7b8ca001");
    // The first read fails, so that the answer is there before the record is first read.
    edge.world
        .data_fault(Fault::status(500, "Internal Server Error"));
    close_with_secret(&edge);
    let second_closed = "2026-11-20T14:04:11.401Z";
    let reply = edge.close_with(&close_event(SECOND, second_closed), &with_secret());
    assert_eq!(reply.status, 202, "{reply:?}");
    edge.advance_to(due());
    assert_eq!(edge.job(CONVERSATION).state, JobState::Sent);
    assert_eq!(edge.job(CONVERSATION).outcome, None, "the read failed");
    edge.set_now(due() + 30_000);
    edge.world.answer_survey(CONVERSATION, 5, "Great");
    // The second survey goes out a minute later; the next read takes both records.
    edge.advance_to(due() + 3 * HOUR_MS);
    assert_eq!(edge.job(SECOND).state, JobState::Sent);
    let both = edge.world.data_calls();
    let forward = both
        .iter()
        .position(|c| c.status == 200 && c.query.contains_key("created_at_gte"))
        .expect("a forward pass");
    let read_at = both[forward].at_ms;
    assert!(
        (both.iter()).any(|c| c.at_ms == read_at && c.query.contains_key("responded_at_gte")),
        "the answers pass of the same read: {both:?}"
    );
    let to = |c: &str| {
        written(&edge)
            .iter()
            .filter(|p| p.conversation_id == c)
            .count()
    };
    assert_eq!(to(CONVERSATION), 1, "{:?}", edge.world.patches());
    assert_eq!(to(SECOND), 1);
    assert_eq!(edge.job(CONVERSATION).outcome.unwrap().read.rating, Some(5));
    // Polls went on for the second survey, their answers pass overlapping the first's.
    let polls_after = both
        .iter()
        .filter(|c| c.query.contains_key("responded_at_gte"))
        .count();
    assert!(polls_after >= 3, "{both:?}");
    assert_eq!(to(CONVERSATION), 1, "no further PATCH across polls");
    finish(&edge);
}

#[test]
fn a_record_read_again_in_the_overlap_is_not_written_again() {
    let edge = Edge::quick();
    add_conversation(&edge.world, SECOND, "5f0c1b2a3d4e5f6a7b8ca001");
    close_with_secret(&edge);
    assert_eq!(
        edge.close_with(
            &close_event(SECOND, "2026-11-20T14:04:11.401Z"),
            &with_secret()
        )
        .status,
        202
    );
    edge.advance_to(due() + MINUTE_MS);
    assert_eq!(edge.job(SECOND).state, JobState::Sent);
    let poll = poll_ms(&edge);
    // Answered just before a poll: read by it, and again by the next one's overlap.
    let poll_at = edge
        .scheduler(ORG)
        .store
        .org()
        .unwrap()
        .follow
        .next_poll_ms
        .unwrap();
    edge.set_now(poll_at - 1000);
    edge.world.answer_survey(CONVERSATION, 3, "Fine");
    edge.advance_to(poll_at + 3 * poll);
    let record = edge.world.data_records()[0].clone();
    let uuid = record["uuid"].as_str().unwrap();
    let seen = (edge.world.data_calls().iter())
        .filter(|c| c.at_ms > poll_at - 1000 && c.query.contains_key("responded_at_gte"))
        .count();
    assert!(seen >= 2, "the record is read by more than one poll");
    assert_eq!(edge.job(CONVERSATION).outcome.unwrap().read.uuid, uuid);
    let to_first = (written(&edge).iter())
        .filter(|p| p.conversation_id == CONVERSATION)
        .count();
    assert_eq!(
        to_first,
        2,
        "sent, then answered: {:?}",
        edge.world.patches()
    );
    finish(&edge);
}

#[test]
fn another_orgs_record_is_ignored() {
    let edge = sent_with_secret(quick_retries());
    assert_eq!(written(&edge).len(), 1);
    // The same Agent Connect account serves another Kustomer org, whose conversation has the
    // same id: its later record, answered, is not this survey's.
    edge.set_now(due() + MINUTE_MS);
    let mut other = data_record(CONVERSATION, OTHER_ORG, due() + MINUTE_MS);
    other["answers"] = json!({"agent_star_rating": {
        "comment": "Not for this org",
        "selected_options": {"o1": {"integer_value": 1}},
    }});
    other["response_received_at"] = json!(iso(due() + MINUTE_MS));
    edge.world.add_data_record(other);
    edge.advance_to(due() + 3 * poll_ms(&edge));
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!((outcome.read.rating, outcome.read.comment), (None, None));
    assert_eq!(written(&edge).len(), 1, "{:?}", edge.world.patches());
    assert_eq!(
        edge.world.conversation_custom(CONVERSATION).get(RATING_KEY),
        None
    );
    finish(&edge);
}

#[test]
fn an_earlier_surveys_record_is_ignored() {
    let edge = Edge::quick();
    // Three days before this close, the same conversation was surveyed and rated 2.
    let earlier = closed_ms() - 3 * DAY_MS;
    let mut record = data_record(CONVERSATION, ORG, earlier);
    record["answers"] = json!({"agent_star_rating": {
        "comment": "The earlier survey",
        "selected_options": {"o1": {"integer_value": 2}},
    }});
    record["response_received_at"] = json!(iso(earlier + HOUR_MS));
    edge.world.add_data_record(record);
    // This survey's record appears in Data Return a few minutes after it was sent.
    edge.world.hold_records(true);
    close_with_secret(&edge);
    edge.advance_to(due());
    assert!(
        data_calls(&edge) >= 2,
        "both passes read the earlier record"
    );
    assert_eq!(edge.job(CONVERSATION).outcome, None, "not this survey's");
    assert!(edge.world.patches().is_empty());
    edge.set_now(due() + 2 * MINUTE_MS);
    edge.world.hold_records(false);
    edge.advance_to(due() + poll_ms(&edge));
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(
        (outcome.read.delivery_status, outcome.read.rating),
        (DeliveryStatus::Sent, None)
    );
    let patches = written(&edge);
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].custom[RATING_KEY], Value::Null);
    finish(&edge);
}

// Only the survey's own record counts ---------------------------------------------------------

/// A record as anyone holding the org's Agent Connect key could make it: for the fixture's
/// conversation, created `created_ms`, with the org, customer and agent of the survey Stella
/// accepted (changed by `edit`), rated `rating`.
fn forged(edge: &Edge, created_ms: i64, rating: u8, edit: impl FnOnce(&mut Value)) -> Value {
    let sent = edge.world.accepted()[0].clone();
    let mut record = data_record(CONVERSATION, ORG, created_ms);
    record["customer"] = json!({"email": sent["customer"]["email"]});
    record["employee"] = json!({"email": sent["employee"]["email"]});
    record["answers"] = json!({"agent_star_rating": {
        "comment": "Forged",
        "selected_options": {"o1": {"integer_value": rating}},
    }});
    record["response_received_at"] = json!(iso(created_ms));
    edit(&mut record);
    record
}

/// The delivery log's outcomes info: the records ignored by reason, and the note in words.
fn outcomes_info(edge: &Edge) -> Value {
    let reply = edge.log("limit=1");
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["outcomes"].clone()
}

/// The survey is sent while Agent Connect has no record of it yet; a record `edit` makes is
/// added a little later and read: it must not count. Then the survey's own record appears and
/// does.
fn only_the_surveys_own_record_counts(edit: impl FnOnce(&mut Value), reason: &str) {
    let edge = Edge::quick();
    edge.world.hold_records(true);
    close_with_secret(&edge);
    edge.advance_to(due());
    assert_eq!(edge.job(CONVERSATION).state, JobState::Sent);
    let at = due() + 30_000;
    edge.set_now(at);
    edge.world.add_data_record(forged(&edge, at, 1, edit));
    edge.advance_to(due() + 2 * poll_ms(&edge));
    assert_eq!(
        edge.job(CONVERSATION).outcome,
        None,
        "{reason}: not this survey's"
    );
    assert!(
        edge.world.patches().is_empty(),
        "{reason}: {:?}",
        edge.world.patches()
    );
    let info = outcomes_info(&edge);
    assert_eq!(info["ignoredRecords"], json!({reason: 1}), "{info}");
    assert!(
        info["recordsNote"]
            .as_str()
            .unwrap()
            .starts_with("1 Agent Connect record did not match"),
        "{info}"
    );
    // The survey's own record, created later, counts (the forged one stays ignored).
    edge.world.hold_records(false);
    edge.set_now(edge.now() + MINUTE_MS);
    edge.world.answer_survey(CONVERSATION, 5, "Thank you");
    edge.advance_to(edge.now() + 2 * poll_ms(&edge));
    assert_eq!(edge.job(CONVERSATION).outcome.unwrap().read.rating, Some(5));
    assert_eq!(edge.world.conversation_custom(CONVERSATION)[RATING_KEY], 5);
    assert_eq!(
        outcomes_info(&edge)["ignoredRecords"],
        json!({reason: 1}),
        "counted once, however often it is read"
    );
    finish(&edge);
}

#[test]
fn a_record_without_the_org_does_not_count() {
    only_the_surveys_own_record_counts(
        |r| {
            r["custom_properties"]
                .as_object_mut()
                .unwrap()
                .remove("kustomer_org");
        },
        "no_org",
    );
}

#[test]
fn a_record_for_another_customer_does_not_count() {
    only_the_surveys_own_record_counts(
        |r| r["customer"]["email"] = json!("mallory@example.com"),
        "other_customer",
    );
}

#[test]
fn a_record_about_another_agent_does_not_count() {
    only_the_surveys_own_record_counts(
        |r| r["employee"]["email"] = json!("mallory@acme.example"),
        "other_agent",
    );
}

#[test]
fn a_record_created_before_the_attempt_began_does_not_count() {
    // Two minutes before the attempt: an earlier survey's, or one made in advance (clocks are
    // allowed a minute apart).
    only_the_surveys_own_record_counts(
        |r| r["request_created_at"] = json!(iso(due() - 2 * MINUTE_MS)),
        "before_attempt",
    );
}

#[test]
fn emails_match_in_any_case_and_spacing() {
    let edge = Edge::quick();
    edge.world.hold_records(true);
    close_with_secret(&edge);
    edge.advance_to(due());
    let at = due() + 30_000;
    edge.set_now(at);
    let record = forged(&edge, at, 4, |r| {
        let upper = |v: &Value| json!(format!(" {} ", v.as_str().unwrap().to_uppercase()));
        r["customer"]["email"] = upper(&r["customer"]["email"]);
        r["employee"]["email"] = upper(&r["employee"]["email"]);
    });
    edge.world.add_data_record(record);
    edge.advance_to(due() + 2 * poll_ms(&edge));
    assert_eq!(edge.job(CONVERSATION).outcome.unwrap().read.rating, Some(4));
    assert_eq!(outcomes_info(&edge)["ignoredRecords"], json!({}));
    finish(&edge);
}

#[test]
fn the_earliest_record_wins_and_a_later_duplicate_is_counted() {
    // The probe: a real 5, then a record claiming the same survey (same org, customer and
    // agent) rated 1. The later one used to win. A second survey, unanswered, keeps the org
    // reading.
    let edge = sent_with_secret(quick_retries());
    add_conversation(&edge.world, SECOND, "5f0c1b2a3d4e5f6a7b8ca001");
    let reply = edge.close_with(
        &close_event(SECOND, &iso(closed_ms() + 1000)),
        &with_secret(),
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    edge.advance_to(due() + 1000);
    assert_eq!(edge.job(SECOND).state, JobState::Sent);
    edge.set_now(due() + MINUTE_MS);
    edge.world.answer_survey(CONVERSATION, 5, "Great");
    edge.advance_to(due() + poll_ms(&edge));
    assert_eq!(edge.world.conversation_custom(CONVERSATION)[RATING_KEY], 5);
    let at = due() + 2 * MINUTE_MS;
    edge.set_now(at);
    edge.world.add_data_record(forged(&edge, at, 1, |_| {}));
    edge.advance_to(due() + 4 * poll_ms(&edge));
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(outcome.read.rating, Some(5), "{outcome:?}");
    assert_eq!(outcome.read.uuid, edge.world.data_records()[0]["uuid"]);
    assert_eq!(edge.world.conversation_custom(CONVERSATION)[RATING_KEY], 5);
    assert!(
        written(&edge).iter().all(|p| p.custom[RATING_KEY] != 1),
        "{:?}",
        edge.world.patches()
    );
    let info = outcomes_info(&edge);
    assert_eq!(info["ignoredRecords"], json!({"duplicate": 1}), "{info}");
    assert!(
        info["recordsNote"]
            .as_str()
            .unwrap()
            .contains("1 a later duplicate"),
        "{info}"
    );
    finish(&edge);
}

#[test]
fn an_earlier_matching_record_read_later_takes_over() {
    // Two matching records, the earlier-created one read second (Agent Connect moved it to
    // the end of its sequence): every read settles on the same one, the earliest.
    let edge = Edge::quick();
    edge.world.hold_records(true);
    close_with_secret(&edge);
    edge.advance_to(due());
    edge.world
        .add_data_record(forged(&edge, due() + 20_000, 2, |r| {
            r["uuid"] = json!("b0000000-0000-4000-8000-000000000001")
        }));
    edge.world
        .add_data_record(forged(&edge, due() + 40_000, 3, |r| {
            r["uuid"] = json!("a0000000-0000-4000-8000-000000000002")
        }));
    // The earlier one moves to the end before the first read.
    edge.world
        .resequence_uuid("b0000000-0000-4000-8000-000000000001");
    edge.set_now(due() + MINUTE_MS);
    edge.advance_to(due() + 3 * poll_ms(&edge));
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(outcome.read.rating, Some(2), "{outcome:?}");
    assert_eq!(
        outcomes_info(&edge)["ignoredRecords"],
        json!({"duplicate": 1})
    );
    finish(&edge);
}

#[test]
fn a_job_stored_before_digests_checks_the_org_and_time_and_says_so() {
    // A job stored by the previous version: no `sentTo`. It reads back, and its records are
    // checked for the org and the creation time only, counted as such.
    let edge = Edge::quick();
    edge.world.hold_records(true);
    close_with_secret(&edge);
    edge.advance_to(due());
    let store = &edge.scheduler(ORG).store;
    let mut stored = serde_json::to_value(edge.job(CONVERSATION)).unwrap();
    assert!(stored.get("sentTo").is_some(), "kept when sent: {stored}");
    stored.as_object_mut().unwrap().remove("sentTo");
    let old: stella_connect::edge::job::Job = serde_json::from_value(stored).unwrap();
    assert_eq!(old.sent_to, None);
    store.put(&old).unwrap();
    let at = due() + 30_000;
    edge.set_now(at);
    edge.world
        .add_data_record(forged(&edge, at, 1, |r| r["custom_properties"] = json!({})));
    edge.world.add_data_record(forged(&edge, at + 1, 3, |r| {
        r["customer"]["email"] = json!("someone.else@example.com")
    }));
    edge.advance_to(due() + 2 * poll_ms(&edge));
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(outcome.read.rating, Some(3), "the org and time hold: taken");
    let info = outcomes_info(&edge);
    assert_eq!(info["ignoredRecords"], json!({"no_org": 1}), "{info}");
    assert_eq!(info["unverifiedRecords"], 1, "{info}");
    assert!(
        info["recordsNote"]
            .as_str()
            .unwrap()
            .contains("for the org and the time only"),
        "{info}"
    );
    finish(&edge);
}

// Suppression, do not send, bounces ------------------------------------------------------------

#[test]
fn a_do_not_send_outcome_is_final_and_polling_stops() {
    let edge = Edge::quick();
    edge.world.edit_conversation(CONVERSATION, |c| {
        c["data"]["attributes"]["custom"]["@stellaDoNotSendStellaConnectRequestBool"] = json!(true)
    });
    close_with_secret(&edge);
    edge.advance_to(due());
    assert_eq!(edge.world.accepted()[0]["do_not_send"], true);
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(outcome.read.delivery_status, DeliveryStatus::DoNotSend);
    let patches = written(&edge);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].custom[STATUS_KEY], "do_not_send");
    assert_eq!(
        patches[0].custom[SENT_AT_KEY],
        Value::Null,
        "not sent: no time"
    );
    let reads = data_calls(&edge);
    assert_eq!(
        edge.scheduler(ORG).store.org().unwrap().sealed_settings,
        None
    );
    edge.advance_to(due() + 30 * DAY_MS);
    assert_eq!(
        data_calls(&edge),
        reads,
        "a final outcome stops the polling"
    );
    finish(&edge);
}

/// Sent, then `status` with the record re-sequenced or not; returns the edge once the change
/// had a poll interval to be read.
fn later_status(status: &str, resequenced: bool) -> Edge {
    let edge = sent_with_secret(quick_retries());
    assert_eq!(written(&edge).len(), 1);
    let changed = due() + 2 * HOUR_MS + MINUTE_MS;
    edge.set_now(changed);
    edge.world.set_delivery_status(CONVERSATION, status);
    if resequenced {
        edge.world.resequence(CONVERSATION);
    }
    // A re-sequenced record is read by the next poll; one that keeps its place, by the next
    // look at recent records (every few polls).
    let polls = if resequenced { 1 } else { SETTLE_EVERY_POLLS };
    edge.advance_to(changed + polls * poll_ms(&edge));
    edge
}

fn assert_bounced_and_settled(edge: &Edge) {
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(outcome.read.delivery_status, DeliveryStatus::HardBounce);
    let patches = written(edge);
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert_eq!(patches[1].custom[STATUS_KEY], "hard_bounce");
    assert_eq!(
        edge.world.conversation_custom(CONVERSATION)[STATUS_KEY],
        "hard_bounce"
    );
    // Final: no more reads, however long the alarm is left alone.
    let reads = data_calls(edge);
    edge.advance_to(due() + 40 * DAY_MS);
    assert_eq!(data_calls(edge), reads, "a final outcome stops the polling");
    assert_eq!(written(edge).len(), 2);
    finish(edge);
}

#[test]
fn a_sent_survey_that_bounces_later_is_written_again_resequenced() {
    assert_bounced_and_settled(&later_status("Hard bounce", true));
}

#[test]
fn a_sent_survey_that_bounces_later_is_written_again() {
    assert_bounced_and_settled(&later_status("Hard bounce", false));
}

#[test]
fn a_suppressed_survey_is_final() {
    let edge = later_status("Not sent: suppression period", true);
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(outcome.read.delivery_status, DeliveryStatus::Suppressed);
    assert_eq!(written(&edge)[1].custom[STATUS_KEY], "suppressed");
    let reads = data_calls(&edge);
    edge.advance_to(due() + 20 * DAY_MS);
    assert_eq!(data_calls(&edge), reads);
    finish(&edge);
}

// The 14 days ----------------------------------------------------------------------------------

#[test]
fn polling_stops_fourteen_days_after_the_send() {
    let edge = sent_with_secret(quick_retries());
    let sealed = |edge: &Edge| {
        (edge.scheduler(ORG).store.org().unwrap())
            .sealed_settings
            .is_some()
    };
    edge.advance_to(due() + 13 * DAY_MS);
    assert!(sealed(&edge), "kept while the survey is followed");
    edge.advance_to(due() + 14 * DAY_MS - MINUTE_MS);
    assert!(sealed(&edge), "kept until the 14 days are over");
    let calls = edge.world.data_calls();
    let last = calls.last().unwrap().at_ms;
    assert!(
        last > due() + 14 * DAY_MS - poll_ms(&edge) - MINUTE_MS,
        "{last}"
    );
    // Polls every interval over the 14 days (two passes each).
    let polls = calls
        .iter()
        .filter(|c| c.query.contains_key("responded_at_gte"))
        .count() as i64;
    assert_eq!(polls, (14 * DAY_MS - MINUTE_MS) / poll_ms(&edge) + 1);
    edge.advance_to(due() + 14 * DAY_MS + 2 * poll_ms(&edge));
    assert!(
        !sealed(&edge),
        "the org's settings are dropped after the 14 days"
    );
    let calls = edge.world.data_calls();
    assert!(
        calls.iter().all(|c| c.at_ms <= due() + 14 * DAY_MS),
        "no read after the 14 days: {:?}",
        calls.last()
    );
    let n = calls.len();
    edge.advance_to(due() + 80 * DAY_MS);
    assert_eq!(data_calls(&edge), n);
    assert_eq!(
        edge.job(CONVERSATION).outcome.unwrap().read.delivery_status,
        DeliveryStatus::Sent
    );
    finish(&edge);
}

#[test]
fn settings_that_cannot_be_read_delay_reading_without_spinning_the_alarm() {
    let edge = sent_with_secret(quick_retries());
    // The sealed settings stop opening (as after a deployment key change): the survey is still
    // followed, but nothing can be read until a close brings the settings again.
    let store = &edge.scheduler(ORG).store;
    let mut record = store.org().unwrap();
    record.sealed_settings = Some("v1.not-a-seal".into());
    store.put_org(&record).unwrap();
    let calls = data_calls(&edge);
    let fired = edge.advance_to(due() + HOUR_MS);
    assert_eq!(data_calls(&edge), calls, "nothing read without settings");
    // At most one alarm per poll interval, not one right after another.
    assert!(
        (fired.len() as i64) <= HOUR_MS / poll_ms(&edge) + 2,
        "{} alarms in an hour",
        fired.len()
    );
    finish(&edge);
}

// Agent Connect failing ------------------------------------------------------------------------

#[test]
fn a_429_from_data_return_is_waited_out() {
    let edge = Edge::quick();
    edge.world
        .data_fault(Fault::status(429, "Too Many Requests").retry_after("1800"));
    close_with_secret(&edge);
    edge.advance_to(due());
    let calls = edge.world.data_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].status, calls[0].at_ms), (429, due()));
    let follow = edge.scheduler(ORG).store.org().unwrap().follow;
    assert_eq!(follow.next_poll_ms, Some(due() + 1_800_000));
    let message = follow.last_error.expect("the failure in words");
    assert!(message.contains("429"), "{message}");
    // The delivery log tells admins why outcomes are not coming.
    let log = edge.log("").body;
    assert_eq!(log["outcomes"]["reading"], true);
    assert_eq!(log["outcomes"]["lastError"], message.as_str());
    edge.advance_to(due() + 1_800_000 - 1);
    assert_eq!(data_calls(&edge), 1, "no call before Retry-After elapses");
    edge.advance_to(due() + 1_800_000);
    let calls = edge.world.data_calls();
    assert_eq!(calls[1].at_ms, due() + 1_800_000);
    assert_eq!(calls[1].status, 200);
    assert_eq!(
        edge.job(CONVERSATION).outcome.unwrap().read.delivery_status,
        DeliveryStatus::Sent
    );
    let follow = edge.scheduler(ORG).store.org().unwrap().follow;
    assert_eq!((follow.failures, follow.last_error), (0, None));
    finish(&edge);
}

#[test]
fn server_errors_back_off_doubling_and_other_surveys_still_go_out() {
    let edge = Edge::quick();
    add_conversation(&edge.world, SECOND, "5f0c1b2a3d4e5f6a7b8ca001");
    for _ in 0..3 {
        edge.world
            .data_fault(Fault::status(500, "Internal Server Error"));
    }
    edge.world
        .data_fault(Fault::Network("connection reset by peer".into()));
    close_with_secret(&edge);
    // A second conversation closes while Data Return fails: it goes out on time.
    let second_closed = closed_ms() + 10 * MINUTE_MS;
    edge.set_now(second_closed + 1000);
    let reply = edge.close_with(&close_event(SECOND, &iso(second_closed)), &with_secret());
    assert_eq!(reply.status, 202, "{reply:?}");
    edge.advance_to(due() + 4 * HOUR_MS);
    let second = edge.job(SECOND);
    assert_eq!(
        (second.state, second.sent_ms),
        (JobState::Sent, Some(second_closed + DELAY_MS)),
        "not held back by the failing reads"
    );
    let calls = edge.world.data_calls();
    let failed: Vec<(u16, i64)> = calls.iter().take(5).map(|c| (c.status, c.at_ms)).collect();
    let poll = poll_ms(&edge);
    assert_eq!(
        failed,
        vec![
            (500, due()),
            (500, due() + 2 * poll),
            (500, due() + 6 * poll),
            (0, due() + 14 * poll),
            (200, due() + 14 * poll + HOUR_MS),
        ],
        "the back-off doubles, up to an hour"
    );
    assert_eq!(
        edge.job(CONVERSATION).outcome.unwrap().read.delivery_status,
        DeliveryStatus::Sent
    );
    assert_eq!(
        edge.job(SECOND).outcome.unwrap().read.delivery_status,
        DeliveryStatus::Sent
    );
    finish(&edge);
}

// Pace -------------------------------------------------------------------------------------------

/// Calls per window of the org's pace as `StellaPace` opens them: a window opens with the
/// first call 60 s or more after the previous one opened.
fn per_pace_window(times: &[i64]) -> Vec<usize> {
    let mut times = times.to_vec();
    times.sort_unstable();
    let mut windows: Vec<(i64, usize)> = Vec::new();
    for t in times {
        match windows.last_mut() {
            Some((opened, n)) if t - *opened < MINUTE_MS => *n += 1,
            _ => windows.push((t, 1)),
        }
    }
    windows.into_iter().map(|(_, n)| n).collect()
}

/// The most calls in any 60-second window.
fn busiest_minute(times: &[i64]) -> usize {
    let mut times = times.to_vec();
    times.sort_unstable();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + MINUTE_MS)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Other conversations' surveys, `n` of them, created at `created_ms`: records with no job.
fn backlog(edge: &Edge, first: usize, n: usize, created_ms: i64) {
    for i in first..first + n {
        let id = format!("7a60e0f1a2b3c4d5{i:08x}");
        let record = json!({
            "ext_interaction_id": id,
            "request_created_at": iso(created_ms),
            "request_delivery_status": "Sent",
        });
        edge.world.add_data_record(record);
    }
}

/// Reads every `poll_ms` with `n` records ahead of the survey's own, and `later` more arriving
/// `later_at_ms` after the send: never more than 60 calls in a minute, and the read gets there.
fn paced_reads(poll_ms: i64, n: usize, later: usize, later_at_ms: i64) -> Edge {
    let config = Config {
        outcome_poll_ms: poll_ms,
        ..quick_retries()
    };
    let edge = Edge::new(config);
    backlog(&edge, 0, n, closed_ms() - HOUR_MS);
    close_with_secret(&edge);
    edge.advance_to(due() + later_at_ms);
    backlog(&edge, n, later, due() + later_at_ms);
    edge.advance_to(due() + later_at_ms + 5 * MINUTE_MS);
    let calls = edge.world.data_calls();
    let times: Vec<i64> = calls.iter().map(|c| c.at_ms).collect();
    let windows = per_pace_window(&times);
    assert!(
        windows.iter().all(|n| *n <= 60),
        "more than 60 data calls in a minute's window (poll every {poll_ms} ms): {windows:?}"
    );
    assert!(calls.iter().all(|c| c.status == 200));
    assert!(
        calls.iter().all(|c| c.query["limit"] == "500"),
        "pages of PAGE_SIZE"
    );
    let outcome = edge
        .job(CONVERSATION)
        .outcome
        .expect("read past the backlog");
    assert_eq!(outcome.read.delivery_status, DeliveryStatus::Sent);
    // Everything read in the end: the forward cursor is at the last record.
    let last = edge.world.data_records().last().unwrap()["sequence_id"].as_i64();
    let follow = edge.scheduler(ORG).store.org().unwrap().follow;
    assert_eq!(follow.after, last);
    // One read reads at most ten pages.
    let mut per_instant = std::collections::BTreeMap::<i64, usize>::new();
    for t in &times {
        *per_instant.entry(*t).or_default() += 1;
    }
    assert!(per_instant.values().all(|n| *n <= 10), "{per_instant:?}");
    finish(&edge);
    edge
}

fn data_calls_at(edge: &Edge) -> Vec<i64> {
    edge.world.data_calls().iter().map(|c| c.at_ms).collect()
}

#[test]
fn data_return_is_read_within_sixty_calls_a_minute() {
    for poll in [1_000, 3_000, 7_000] {
        let edge = paced_reads(poll, 40_000, 0, 0);
        let windows = per_pace_window(&data_calls_at(&edge));
        assert_eq!(windows.iter().max(), Some(&60), "the pace was pressed");
    }
    // A backlog arriving late in a quiet minute.
    paced_reads(5_000, 0, 40_000, 50_000);
}

#[test]
fn data_return_is_read_within_sixty_calls_in_any_rolling_minute() {
    for (poll, n, later, at) in [(1_000, 40_000, 0, 0), (5_000, 0, 40_000, 50_000)] {
        let edge = paced_reads(poll, n, later, at);
        let busiest = busiest_minute(&data_calls_at(&edge));
        assert!(
            busiest <= 60,
            "{busiest} calls in a minute (poll every {poll} ms)"
        );
    }
}

/// `make run` reads outcomes every `OUTCOME_POLL_MS` as scripts/serve.sh sets it by default.
/// With nothing to catch up, those reads take at most half the roster's share of any minute
/// (the roster may call while the org's minute holds fewer than its share), so the card's
/// roster question is never paced away by the outcome reads alone.
#[test]
fn the_local_poll_leaves_the_roster_its_share() {
    use stella_connect::edge::agent_connect::ROSTER_CALLS_PER_MINUTE;
    let serve = include_str!("../scripts/serve.sh");
    let default = serve
        .split("OUTCOME_POLL_MS=${OUTCOME_POLL_MS:-")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .and_then(|n| n.parse::<i64>().ok())
        .expect("scripts/serve.sh sets OUTCOME_POLL_MS by default");
    let config = Config {
        outcome_poll_ms: default,
        ..quick_retries()
    };
    let edge = Edge::new(config);
    close_with_secret(&edge);
    edge.advance_to(due() + 10 * MINUTE_MS);
    let busiest = busiest_minute(&data_calls_at(&edge));
    assert!(busiest > 0, "outcomes were read");
    assert!(
        busiest <= (ROSTER_CALLS_PER_MINUTE / 2) as usize,
        "{busiest} Data Return calls in a minute, polling every {default} ms: the roster keeps \
         fewer than half of its {ROSTER_CALLS_PER_MINUTE}"
    );
}

// Kustomer refusing the write ------------------------------------------------------------------

#[test]
fn a_patch_refused_for_the_budget_waits_for_its_reset() {
    let edge = Edge::quick();
    // Kustomer's windows of 15 minutes; the org's other integrations spend the rest of this
    // one while the survey is being sent.
    let window = 15 * MINUTE_MS;
    edge.world.enforce_budget(40, window, edge.time.clone());
    let world = edge.world.clone();
    edge.world
        .during_next_stella_request(move || world.spend_budget_elsewhere(40));
    close_with_secret(&edge);
    edge.advance_to(due());
    assert_eq!(edge.job(CONVERSATION).state, JobState::Sent);
    let patches = edge.world.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].status, 429);
    let refused = edge.world.budget_use().1;
    let reset = (due() / window + 1) * window;
    assert!(reset - due() > poll_ms(&edge), "the reset is past a poll");
    edge.advance_to(reset - 1);
    assert_eq!(edge.world.patches().len(), 1, "no PATCH before the reset");
    edge.advance_to(reset + poll_ms(&edge));
    let patches = edge.world.patches();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(patches[1].at_ms >= reset);
    assert_eq!(patches[1].status, 200);
    assert!(!edge.job(CONVERSATION).outcome.unwrap().unwritten);
    assert_eq!(
        edge.world.budget_use().1,
        refused,
        "no call refused after the PATCH's 429"
    );
    finish(&edge);
}

#[test]
fn a_patch_429_with_a_reset_waits_for_it() {
    let edge = Edge::quick();
    edge.world.patch_fault(
        Fault::status(
            429,
            r#"{"errors":[{"status":429,"title":"Too Many Requests"}]}"#,
        )
        .ratelimit_reset("900"),
    );
    close_with_secret(&edge);
    edge.advance_to(due());
    assert_eq!(edge.world.patches().len(), 1);
    assert_eq!(edge.world.patches()[0].status, 429);
    edge.advance_to(due() + 900_000 - 1);
    assert_eq!(edge.world.patches().len(), 1, "no PATCH before the reset");
    edge.advance_to(due() + 900_000 + poll_ms(&edge));
    let patches = edge.world.patches();
    assert_eq!((patches.len(), patches[1].status), (2, 200), "{patches:?}");
    finish(&edge);
}

#[test]
fn a_patch_404_is_recorded_and_not_retried() {
    let edge = Edge::quick();
    edge.world.patch_fault(Fault::status(
        404,
        r#"{"errors":[{"status":404,"code":"not_found","title":"Not Found"}]}"#,
    ));
    close_with_secret(&edge);
    edge.advance_to(due());
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert!(!outcome.unwritten, "not retried");
    let error = outcome.write_error.expect("the refusal kept");
    assert!(error.contains("404"), "{error}");
    let d = edge.delivery(CONVERSATION);
    assert_eq!(d["outcome"]["writeError"], error.as_str(), "{d}");
    assert_eq!(d["outcome"]["deliveryStatus"], "sent");
    // Polling goes on (the survey may still be answered), the write is not tried again.
    let reads = data_calls(&edge);
    edge.advance_to(due() + 3 * DAY_MS);
    assert!(data_calls(&edge) > reads);
    assert_eq!(edge.world.patches().len(), 1, "{:?}", edge.world.patches());
    // A new outcome is written (and succeeds now).
    edge.world.answer_survey(CONVERSATION, 5, "Thanks");
    edge.advance_to(due() + 3 * DAY_MS + poll_ms(&edge));
    let patches = edge.world.patches();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[1].status, 200);
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert_eq!(outcome.write_error, None);
    finish(&edge);
}

#[test]
fn a_patch_refused_for_a_missing_role_waits_an_hour_and_is_written_once_fixed() {
    let edge = Edge::quick();
    edge.world.patch_fault(Fault::status(
        403,
        r#"{"errors":[{"status":403,"code":"forbidden","title":"Forbidden"}]}"#,
    ));
    close_with_secret(&edge);
    edge.advance_to(due());
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert!(
        outcome.unwritten,
        "kept, to be written once the admin fixes the key"
    );
    let error = outcome.write_error.expect("the refusal shown");
    assert!(error.contains("403"), "{error}");
    assert_eq!(
        edge.delivery(CONVERSATION)["outcome"]["writeError"],
        error.as_str()
    );
    // Not tried again within the hour, whatever the reads do; then written.
    edge.advance_to(due() + HOUR_MS - MINUTE_MS);
    assert_eq!(edge.world.patches().len(), 1, "{:?}", edge.world.patches());
    edge.advance_to(due() + HOUR_MS + poll_ms(&edge));
    let patches = edge.world.patches();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert_eq!(patches[1].status, 200);
    let outcome = edge.job(CONVERSATION).outcome.unwrap();
    assert!(!outcome.unwritten);
    assert_eq!(outcome.write_error, None);
    assert_eq!(
        edge.world.conversation_custom(CONVERSATION)[STATUS_KEY],
        "sent"
    );
    finish(&edge);
}

// Attempts whose fate is unknown ----------------------------------------------------------------

/// Stella takes the survey and the process dies before it is stored.
fn crash_after_accept(headers: &[(String, String)]) -> Edge {
    let edge = Edge::quick();
    let lease = edge.gateway.config.lease_ms;
    edge.world.crash_after_next_accept();
    assert_eq!(
        edge.close_with(&fixture("conversation-update-done"), headers)
            .status,
        202
    );
    let crashed = catch_unwind(AssertUnwindSafe(|| edge.fire_alarms(due())));
    assert!(crashed.is_err(), "the process died after Stella accepted");
    assert_eq!(edge.world.accepted().len(), 1);
    assert_eq!(edge.job(CONVERSATION).state, JobState::Sending);
    // Within the lease: left alone (this also sets the alarm again, as a restart does).
    assert_eq!(edge.fire_alarms(due() + lease / 2), 0);
    edge.advance_to(due() + lease + 1);
    edge
}

#[test]
fn a_crash_after_stella_took_the_survey_finds_it_in_agent_connect() {
    let edge = crash_after_accept(&with_secret());
    let job = edge.job(CONVERSATION);
    assert_eq!(job.state, JobState::Sent);
    assert_eq!(job.reason.as_deref(), Some("found_in_agent_connect"));
    assert_eq!(
        job.sent_ms,
        Some(due()),
        "sent when Agent Connect recorded it"
    );
    assert_eq!(
        edge.world.stella_attempts(),
        1,
        "Stella sees no second request"
    );
    assert_eq!(edge.world.accepted().len(), 1);
    let lookup = &edge.world.data_calls()[0];
    assert_eq!(lookup.at_ms, due() + edge.gateway.config.lease_ms + 1);
    assert!(lookup.query.contains_key("created_at_gte"), "{lookup:?}");
    // Its outcome is the record's, written as any other.
    let outcome = job.outcome.unwrap();
    assert_eq!(outcome.read.delivery_status, DeliveryStatus::Sent);
    assert_eq!(written(&edge).len(), 1);
    assert_eq!(
        edge.delivery(CONVERSATION)["reason"],
        "found_in_agent_connect"
    );
    edge.advance_to(due() + 2 * DAY_MS);
    assert_eq!(edge.world.stella_attempts(), 1);
    finish(&edge);
}

#[test]
fn without_the_secret_a_crash_after_stella_took_the_survey_sends_it_again() {
    let edge = crash_after_accept(&settings_headers());
    let job = edge.job(CONVERSATION);
    assert_eq!((job.state, job.attempts), (JobState::Sent, 2));
    assert_eq!(job.reason, None);
    assert_eq!(
        edge.world.accepted().len(),
        2,
        "at least once: sent again, as documented"
    );
    assert_eq!(data_calls(&edge), 0);
    finish(&edge);
}

#[test]
fn a_stella_timeout_is_looked_up_before_the_retry() {
    let edge = Edge::quick();
    edge.world.lose_next_stella_answer();
    close_with_secret(&edge);
    edge.advance_to(due());
    let job = edge.job(CONVERSATION);
    assert_eq!(job.state, JobState::Retrying);
    assert!(job.unsure, "the request may have reached Stella");
    assert_eq!(edge.world.accepted().len(), 1);
    assert_eq!(data_calls(&edge), 0, "nothing followed yet");
    let retry_at = job.due_ms.unwrap();
    edge.advance_to(retry_at);
    let job = edge.job(CONVERSATION);
    assert_eq!(job.state, JobState::Sent);
    assert_eq!(job.reason.as_deref(), Some("found_in_agent_connect"));
    assert!(!job.unsure);
    assert_eq!(edge.world.stella_attempts(), 1, "not sent twice");
    assert_eq!(
        edge.world.data_calls()[0].at_ms,
        retry_at,
        "looked up first"
    );
    edge.advance_to(due() + DAY_MS);
    assert_eq!(edge.world.accepted().len(), 1);
    finish(&edge);
}

#[test]
fn a_stella_timeout_that_did_not_reach_it_is_sent_after_the_lookup() {
    let edge = Edge::quick();
    edge.world
        .stella_fault(Fault::Network("connection timed out".into()));
    close_with_secret(&edge);
    edge.advance_to(due());
    let job = edge.job(CONVERSATION);
    assert!(job.unsure);
    assert!(edge.world.accepted().is_empty());
    edge.advance_to(job.due_ms.unwrap());
    let job = edge.job(CONVERSATION);
    assert_eq!((job.state, job.reason), (JobState::Sent, None));
    assert_eq!(edge.world.stella_attempts(), 2);
    assert_eq!(edge.world.accepted().len(), 1);
    finish(&edge);
}

#[test]
fn a_failed_lookup_delays_the_job_and_never_loses_it() {
    let edge = Edge::quick();
    edge.world.lose_next_stella_answer();
    edge.world
        .data_fault(Fault::status(429, "Too Many Requests").retry_after("120"));
    close_with_secret(&edge);
    edge.advance_to(due());
    let retry_at = edge.job(CONVERSATION).due_ms.unwrap();
    edge.advance_to(retry_at);
    let job = edge.job(CONVERSATION);
    assert_eq!(job.state, JobState::Retrying, "{job:?}");
    assert!(job.unsure, "still unsure");
    let calls = edge.world.data_calls();
    assert_eq!((calls.len(), calls[0].status), (1, 429));
    let next = job.due_ms.unwrap();
    assert!(next >= retry_at + 120_000, "waits out Retry-After: {next}");
    assert!(
        job.message
            .as_deref()
            .unwrap_or("")
            .contains("Agent Connect"),
        "{job:?}"
    );
    assert_eq!(edge.world.stella_attempts(), 1, "not sent while unsure");
    edge.advance_to(next);
    let job = edge.job(CONVERSATION);
    assert_eq!(job.state, JobState::Sent);
    assert_eq!(job.reason.as_deref(), Some("found_in_agent_connect"));
    assert_eq!(edge.world.stella_attempts(), 1);
    finish(&edge);
}

#[test]
fn a_forged_record_does_not_stop_an_unsure_survey_from_going_out() {
    // Stella never got the request (a timeout), but a record claiming the survey appears
    // before the lookup: it must not make the edge believe the survey went out.
    type Forge = fn(&mut Value);
    let forgeries: [(&str, Forge); 3] = [
        ("no org", |r| r["custom_properties"] = json!({})),
        ("another customer", |r| {
            r["customer"]["email"] = json!("mallory@example.com")
        }),
        ("created before", |r| {
            r["request_created_at"] = json!(iso(due() - 2 * MINUTE_MS))
        }),
    ];
    for (name, edit) in forgeries {
        let edge = Edge::quick();
        edge.world
            .stella_fault(Fault::Network("connection timed out".into()));
        close_with_secret(&edge);
        edge.advance_to(due());
        let job = edge.job(CONVERSATION);
        assert!(job.unsure && edge.world.accepted().is_empty(), "{name}");
        let mut record = data_record(CONVERSATION, ORG, due() + 1000);
        record["customer"] = json!({"email": "ann.lee@example.com"});
        record["employee"] = json!({"email": "sam.agent@acme.example"});
        edit(&mut record);
        edge.set_now(due() + 1000);
        edge.world.add_data_record(record);
        edge.advance_to(job.due_ms.unwrap());
        let job = edge.job(CONVERSATION);
        assert_eq!(
            (job.state, job.reason.as_deref()),
            (JobState::Sent, None),
            "{name}"
        );
        assert_eq!(
            edge.world.accepted().len(),
            1,
            "{name}: sent after the lookup"
        );
        finish(&edge);
    }
}

#[test]
fn after_a_crash_only_the_surveys_own_record_counts() {
    // Stella took the survey and the process died before storing it; Agent Connect's record
    // lags, and a record for another customer claims the survey first. Who the request went to
    // was kept before it was sent, so the claim is refused: the survey goes again (at least
    // once), never lost to a forged record.
    let edge = Edge::quick();
    let lease = edge.gateway.config.lease_ms;
    edge.world.hold_records(true);
    edge.world.crash_after_next_accept();
    close_with_secret(&edge);
    let crashed = catch_unwind(AssertUnwindSafe(|| edge.fire_alarms(due())));
    assert!(crashed.is_err());
    assert_eq!(
        edge.fire_alarms(due() + lease / 2),
        0,
        "the restart sets the alarm"
    );
    let job = edge.job(CONVERSATION);
    assert_eq!(job.state, JobState::Sending);
    assert!(job.sent_to.is_some(), "kept before the send");
    edge.set_now(due() + 1000);
    edge.world
        .add_data_record(forged(&edge, due() + 1000, 1, |r| {
            r["customer"]["email"] = json!("mallory@example.com")
        }));
    edge.advance_to(due() + lease + 1);
    let job = edge.job(CONVERSATION);
    assert_eq!(
        (job.state, job.reason.as_deref()),
        (JobState::Sent, None),
        "{job:?}"
    );
    assert_eq!(
        edge.world.accepted().len(),
        2,
        "sent again, as without the secret"
    );
    finish(&edge);
}

// The JWT ----------------------------------------------------------------------------------------

#[test]
fn the_jwt_is_hs256_over_the_secret_with_the_current_iat_and_sent_raw() {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let edge = sent_with_secret(quick_retries());
    edge.advance_to(due() + HOUR_MS + 12_345);
    let reads: Vec<_> = (edge.world.requests().into_iter())
        .filter(|r| r.url.starts_with(&format!("{STELLA_API}/v2/data")))
        .collect();
    let calls = edge.world.data_calls();
    assert_eq!(reads.len(), calls.len());
    assert!(reads.len() >= 4);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let key = DecodingKey::from_secret(STELLA_SECRET.as_bytes());
    for (request, call) in reads.iter().zip(&calls) {
        assert_eq!(request.method, "GET");
        assert_eq!(request.header("x-api-key"), Some(STELLA_KEY));
        let token = request.header("authorization").expect("a JWT");
        assert!(!token.starts_with("Bearer"), "raw, no Bearer: {token}");
        let header = decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        let claims = decode::<Value>(token, &key, &validation).unwrap().claims;
        assert_eq!(
            claims["iat"],
            json!(call.at_ms.div_euclid(1000)),
            "{claims}"
        );
        assert_eq!(call.iat, Some(call.at_ms.div_euclid(1000)));
        // Signed with the secret: another key does not verify it.
        let wrong = DecodingKey::from_secret(b"another-secret");
        assert!(decode::<Value>(token, &wrong, &validation).is_err());
        // Masked wherever a request is shown.
        assert!(!format!("{request:?}").contains(token));
    }
    finish(&edge);
}

#[test]
fn a_wrong_secret_gets_a_403_and_shows_no_token() {
    let edge = Edge::quick();
    let headers = settings_headers_with(&[("stellaApiSecret", Some("not-the-secret-Zq1"))]);
    assert_eq!(
        edge.close_with(&fixture("conversation-update-done"), &headers)
            .status,
        202
    );
    edge.advance_to(due());
    assert_eq!(edge.job(CONVERSATION).state, JobState::Sent);
    let calls = edge.world.data_calls();
    assert_eq!(calls[0].status, 403);
    assert!(calls[0].refused.as_deref().unwrap().starts_with("JWT"));
    let follow = edge.scheduler(ORG).store.org().unwrap().follow;
    let message = follow.last_error.expect("the refusal in words");
    assert!(message.contains("403"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
    edge.assert_no_secrets();
}
