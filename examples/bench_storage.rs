//! A finished job as the edge stores it, for the storage part of `make bench`
//! (`scripts/bench/storage.mjs`): made by the edge's own code from the fixtures, printed as the
//! JSON text `SqlStore` writes into the `job` column. One JSON line:
//!
//! ```sh
//! cargo run --quiet --example bench_storage
//! ```
//!
//! `{"conversationId", "customerName", "customerEmail", "comment", "agent", "customerIdKey",
//! "customerEmailKey", "before", "after", "expired"}`: what the texts carry that the bench gives each row its own, and the
//! job sent with its answered outcome read back and written, as the edge wrote it before
//! finished entries were cut to what the log reads (`before`), as it writes it now (`after`),
//! and once its personal data is removed (`expired`).

use serde_json::{json, Value};
use stella_connect::api::{self, Built};
use stella_connect::edge::forget::CustomerKeys;
use stella_connect::edge::job::{self, JobOutcome, JobState, Removal, Schedule};
use stella_connect::edge::record_check::SentTo;
use stella_connect::edge::seal::Sealer;
use stella_connect::survey_outcome::read_record;

const ORG: &str = "5f0c1b2a3d4e5f6a7b8c9d0e";
const CONVERSATION: &str = "6560e0f1a2b3c4d5e6f70819";
/// The fixture conversation's customer.
const CUSTOMER: &str = "5f0c1b2a3d4e5f6a7b8c9d31";
/// The local stack's development key (`sandbox/workerd.capnp`).
const KEY: &str = "c3RlbGxhLWNvbm5lY3QtbG9jYWwtZGV2LWtleS0wMDE=";
/// 2026-11-20T12:00:00Z: any instant of the same width.
const CLOSED_MS: i64 = 1_795_176_000_000;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/kustomer/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn main() {
    let settings = json!({
        "stellaApiKey": "stella-test-key-0123",
        "kustomerApiKey": "kustomer-key-4567",
        "kustomerApiUrl": "https://api.kustomerapp.com",
        "kustomerUrl": "https://acme.kustomerapp.com/",
        "secondsUntilSend": "86400"
    });
    let input = json!({
        "settings": settings,
        "conversation": fixture("conversation"),
        "customer": fixture("customer"),
        "user": fixture("user"),
        "tags": fixture("tags"),
    });
    let Built::Send { request, .. } = api::build_survey_request(&input) else {
        panic!("the fixtures must build a request");
    };
    let mut body = request.body;
    // The edge's own properties (`SurveyInput` with the org), as in `tests/edge.rs`.
    body.custom_properties
        .insert("kustomer_org".into(), ORG.into());
    body.custom_properties
        .insert("kustomer_conversation_id".into(), CONVERSATION.into());
    let sealer = Sealer::from_base64(&[KEY]).expect("the development key");
    let send_at = CLOSED_MS + 86_400_000;
    let scheduled = job::first(
        Schedule {
            org: ORG.into(),
            conversation_id: CONVERSATION.into(),
            closed_at_ms: CLOSED_MS,
            send_at_ms: send_at,
            event_id: Some("6560e0f1a2b3c4d5e6f7081a".into()),
            customer_id: Some(CUSTOMER.into()),
        },
        CLOSED_MS + 120,
    );
    // As `Scheduler::process` leaves it: leased, sent, then the outcome read back and written.
    let sent_to = Some(SentTo::of(&sealer, &scheduled, &body));
    let record = read_record(&json!({
        "uuid": "0f8b4c1e-7d2a-4b59-9e61-2a7c3d5e8f10",
        "ext_interaction_id": CONVERSATION,
        "request_created_at": "2026-11-21T12:00:01.118Z",
        "request_delivery_status": "Sent",
        "request_sent_at": "2026-11-21T12:00:02Z",
        "response_received_at": "2026-11-21T15:40:00.5Z",
        "custom_properties": {"kustomer_org": ORG},
        "customer": {"email": body.customer.email, "full_name": "Ann Lee"},
        "employee": {"email": body.employee.email},
        "answers": {"agent_star_rating": {
            "comment": "Quick and kind, thank you",
            "selected_options": {"opt-4": {"integer_value": 4}}
        }}
    }))
    .expect("a Data Return record");
    let finished = |request: Value| job::Job {
        state: JobState::Sent,
        attempts: 1,
        first_attempt_ms: Some(send_at + 5),
        due_ms: None,
        request: Some(request),
        sent_ms: Some(send_at + 900),
        updated_ms: send_at + 300_000,
        sent_to: sent_to.clone(),
        // The forget index, as `Scheduler::keep_sent_to` leaves it: the customer's id and the
        // address the survey went to, keyed.
        customer: CustomerKeys::of(&sealer, ORG, Some(CUSTOMER), Some(&body.customer.email)),
        outcome: Some(JobOutcome {
            read: record.outcome.clone(),
            created_ms: Some(send_at + 118),
            unwritten: false,
            write_error: None,
        }),
        ..scheduled.clone()
    };
    // Before issue 20: the whole body, and no forget index.
    let before = job::Job {
        customer: None,
        ..finished(serde_json::to_value(&body).expect("a body"))
    };
    let after = finished(job::logged_request(&body));
    let expired = after
        .clone()
        .without_personal_data(Removal::Expired { days: 30 });
    let text = |j: &job::Job| serde_json::to_string(j).expect("a job");
    let keys = after.customer.clone().unwrap_or_default();
    println!(
        "{}",
        json!({
            "conversationId": CONVERSATION,
            "customerName": body.customer.name,
            "customerEmail": body.customer.email,
            "comment": record.outcome.comment,
            "agent": body.employee.email.to_ascii_lowercase(),
            // The forget index's digests, in the JSON and in their two indexed columns.
            "customerIdKey": keys.id,
            "customerEmailKey": keys.email,
            // Before, a finished job also carried `"dueMs":null`.
            "before": text(&before).replacen(",\"attempts\"", ",\"dueMs\":null,\"attempts\"", 1),
            "after": text(&after),
            "expired": text(&expired),
        })
    );
}
