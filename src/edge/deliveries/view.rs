//! What the log's answer shows: each entry, whether it can be resent, the states and reasons in
//! words, and the link to each conversation; the pages draw these and hold no copy.

use super::{
    agent_of, request_text, shown_state, Cursor, DeliveryQuery, Tally, LOG_STATES, MAX_LIMIT,
    MAX_RESEND_PER_CALL,
};
use crate::decision::SkipCode;
use crate::edge::codes::{skip_words, Reason};
use crate::edge::job::{Job, JobReason, JobState};
use crate::settings::{self, ValidationOptions};
use crate::survey_outcome::DeliveryStatus;
use crate::timestamp;
use serde_json::{json, Map, Value};

/// Skips a resend cannot change: the customer's or the conversation's own facts (no email, no
/// channel: checked again, they come back the same), a close that was undone (closing it again
/// schedules a survey by itself), and the rule against surveying a conversation twice. An agent
/// left unassigned or without an email is the org's to fix, so those skips stay resendable.
const FINAL_SKIPS: [SkipCode; 5] = [
    SkipCode::NotClosed,
    SkipCode::Reopened,
    SkipCode::NoCustomerEmail,
    SkipCode::NoChannel,
    SkipCode::AlreadySurveyed,
];

/// Whether a resend can change the entry's fate, so the Deliveries page offers it: a failure
/// may pass on another try, and a skip for the app's settings or the agent (or for a reason
/// this build does not know) may pass once they are fixed; not a [`FINAL_SKIPS`] skip, and
/// nothing pending or sent.
pub fn resendable(job: &Job) -> bool {
    match job.state {
        JobState::Failed => true,
        JobState::Skipped => !job.reason.as_ref().is_some_and(|r| match r {
            JobReason::Skip(code) => FINAL_SKIPS.contains(code),
            JobReason::Edge(reason) => *reason == Reason::Forgotten,
            JobReason::Other(_) => false,
        }),
        _ => false,
    }
}

/// Text from Kustomer, Agent Connect or a server, as the pages show it: without bidirectional
/// controls ([`display::plain`](crate::display::plain)).
fn shown(text: Option<&str>) -> Option<String> {
    text.map(|t| crate::display::plain(t).into_owned())
}

/// A job as the delivery log shows it: no settings, so no key; the request's fields the table
/// needs are also given flat (`null` when the job has no request yet).
pub fn view(job: &Job) -> Value {
    let iso = |ms: i64| timestamp::format(timestamp::from_millis(ms as f64));
    // Where the customer's data was removed, the page, the card and the CSV show why.
    let removed = || job.personal_data_removed.map(|r| r.words());
    json!({
        "conversationId": job.conversation_id,
        "state": shown_state(job),
        "reason": job.reason,
        "message": shown(job.message.as_deref()),
        "attempts": job.attempts,
        "closedAt": iso(job.closed_at_ms),
        "sendAt": iso(job.send_at_ms),
        "nextAttemptAt": job.due_ms.map(iso),
        "sentAt": job.sent_ms.map(iso),
        "updatedAt": iso(job.updated_ms),
        "customerName": shown(request_text(job, "/customer/name")).or_else(removed),
        "customerEmail": shown(request_text(job, "/customer/email")).or_else(removed),
        "personalDataRemoved": removed(),
        "agentEmail": shown(agent_of(job)),
        "channel": shown(request_text(job, "/channel")),
        "conversationUrl": request_text(job, "/external_url"),
        "request": job.request,
        "resendable": resendable(job),
        "outcome": job.outcome.as_ref().map(|o| {
            let mut shown = serde_json::to_value(&o.read).unwrap_or_default();
            if let Some(map) = shown.as_object_mut() {
                if let Some(error) = &o.write_error {
                    map.insert("writeError".into(), error.as_str().into());
                }
                if let Some(Value::String(comment)) = map.get_mut("comment") {
                    *comment = crate::display::plain_owned(std::mem::take(comment));
                }
            }
            shown
        }),
    })
}

/// Every reason code the log can show, with short words for an admin: the edge's [`Reason`]s
/// and the core's [`SkipCode`]s.
pub fn reasons() -> Value {
    let mut map = Map::new();
    for code in SkipCode::ALL {
        map.insert(code.as_str().into(), skip_words(*code).into());
    }
    for reason in Reason::ALL {
        map.insert(reason.as_str().into(), reason.words().into());
    }
    Value::Object(map)
}

/// Whether `code` is one of [`reasons`].
pub fn is_reason_code(code: &str) -> bool {
    SkipCode::from_code(code).is_some() || Reason::from_code(code).is_some()
}

/// The first page of the log: `query.limit` entries of `jobs` (which holds one more when there
/// is another page), the cursor after the last, and the summary on a first page.
pub fn answer(
    query: &DeliveryQuery,
    mut jobs: Vec<Job>,
    tally: Option<&Tally>,
    retention_days: u32,
) -> Value {
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let next = (jobs.len() > limit).then(|| {
        jobs.truncate(limit);
        jobs.last().map(|j| Cursor::after(j).encode())
    });
    let deliveries: Vec<Value> = jobs.iter().map(view).collect();
    json!({
        "deliveries": deliveries,
        "nextCursor": next.flatten(),
        "retentionDays": retention_days,
        "summary": tally.map(Tally::summary),
        "reasons": reasons(),
        "deliveryStatuses": delivery_statuses(),
        "states": state_table(),
        "limits": {"perRead": MAX_LIMIT, "perResend": MAX_RESEND_PER_CALL},
    })
}

/// A state in the admin's words.
fn state_words(state: JobState) -> &'static str {
    match state {
        JobState::Scheduled | JobState::Sending => "Scheduled",
        JobState::Retrying => "Retrying",
        JobState::Sent => "Sent",
        JobState::Skipped => "Skipped",
        JobState::Failed => "Failed",
    }
}

/// The states the log shows, in the summary's order ([`LOG_STATES`]), each with its words,
/// whether it is still pending (its next attempt is shown), and whether every entry in it can be
/// resent ([`resendable`]: "Resend all failed" collects these).
pub fn state_table() -> Value {
    let row = |state: JobState| {
        json!({
            "state": state,
            "words": state_words(state),
            "pending": matches!(state, JobState::Scheduled | JobState::Retrying),
            "resendable": state == JobState::Failed,
        })
    };
    Value::Array(LOG_STATES.into_iter().map(row).collect())
}

/// Where an entry without a link of its own (no survey built yet) links to: the conversation
/// under the org's saved Kustomer URL (`/app/conversations/{id}`: a guess at Kustomer's address
/// for a conversation, kept here alone).
pub fn conversation_url(kustomer_url: &str, conversation_id: &str) -> Option<String> {
    let mut url = url::Url::parse(kustomer_url).ok()?;
    (url.path_segments_mut().ok()?).pop_if_empty().extend([
        "app",
        "conversations",
        conversation_id,
    ]);
    Some(url.into())
}

/// The Kustomer URL of the org's stored settings (JSON text), when they are valid.
pub fn saved_kustomer_url(settings_text: &str, options: ValidationOptions) -> Option<String> {
    let raw: Value = serde_json::from_str(settings_text).ok()?;
    Some(
        settings::validate_settings(&raw, options)
            .ok()?
            .kustomer_url,
    )
}

/// Gives every entry of an answer without a `conversationUrl` one under `kustomer_url` (asked
/// for once, and only when an entry needs it: it opens the org's settings).
pub fn link_conversations(answer: &mut Value, kustomer_url: impl FnOnce() -> Option<String>) {
    let Some(rows) = answer["deliveries"].as_array_mut() else {
        return;
    };
    let mut base = None;
    let mut ask = Some(kustomer_url);
    for row in rows.iter_mut().filter(|r| r["conversationUrl"].is_null()) {
        if let Some(ask) = ask.take() {
            base = ask();
        }
        let id = row["conversationId"].as_str().unwrap_or_default();
        if let Some(url) = base.as_deref().and_then(|b| conversation_url(b, id)) {
            row["conversationUrl"] = url.into();
        }
    }
}

/// Each outcome's delivery status code in words (the log's `outcome.deliveryStatus`).
pub fn delivery_statuses() -> Value {
    let words = DeliveryStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), Value::from(s.words())));
    Value::Object(words.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_words() {
        let reasons = reasons();
        let map = reasons.as_object().unwrap();
        for code in SkipCode::ALL {
            assert!(!map[code.as_str()].as_str().unwrap().is_empty());
            assert!(is_reason_code(code.as_str()));
        }
        for reason in Reason::ALL {
            assert!(!map[reason.as_str()].as_str().unwrap().is_empty());
        }
        assert!(!is_reason_code("duplicate"));
    }

    #[test]
    fn the_state_table_follows_the_log_states() {
        let table = state_table();
        let rows = table.as_array().unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["scheduled", "retrying", "sent", "skipped", "failed"]
        );
        let words: Vec<&str> = rows.iter().map(|r| r["words"].as_str().unwrap()).collect();
        assert_eq!(
            words,
            ["Scheduled", "Retrying", "Sent", "Skipped", "Failed"]
        );
        let flagged = |flag: &str| -> Vec<&str> {
            (rows.iter().filter(|r| r[flag] == true))
                .map(|r| r["state"].as_str().unwrap())
                .collect()
        };
        assert_eq!(flagged("pending"), ["scheduled", "retrying"]);
        assert_eq!(flagged("resendable"), ["failed"]);
    }

    #[test]
    fn an_entry_without_a_link_links_under_the_saved_kustomer_url() {
        assert_eq!(
            conversation_url("https://acme.kustomerapp.com", "c 1/2").as_deref(),
            Some("https://acme.kustomerapp.com/app/conversations/c%201%2F2")
        );
        let mut answer = json!({"deliveries": [
            {"conversationId": "a", "conversationUrl": "https://x.example/own"},
            {"conversationId": "b", "conversationUrl": null},
            {"conversationId": "c", "conversationUrl": null},
        ]});
        let mut asked = 0;
        link_conversations(&mut answer, || {
            asked += 1;
            Some("https://acme.kustomerapp.com/".into())
        });
        assert_eq!(asked, 1, "the settings are opened once");
        let urls: Vec<&str> = (answer["deliveries"].as_array().unwrap().iter())
            .map(|r| r["conversationUrl"].as_str().unwrap())
            .collect();
        assert_eq!(
            urls,
            [
                "https://x.example/own",
                "https://acme.kustomerapp.com/app/conversations/b",
                "https://acme.kustomerapp.com/app/conversations/c"
            ]
        );
        // Every entry linked already, or no saved URL: nothing asked, or nothing added.
        let mut linked = json!({"deliveries": [{"conversationId": "a", "conversationUrl": "u"}]});
        link_conversations(&mut linked, || panic!("not asked"));
        let mut none = json!({"deliveries": [{"conversationId": "b", "conversationUrl": null}]});
        link_conversations(&mut none, || None);
        assert_eq!(none["deliveries"][0]["conversationUrl"], Value::Null);
    }

    #[test]
    fn the_saved_kustomer_url_comes_from_valid_settings_only() {
        let options = ValidationOptions::default();
        let settings = json!({"stellaApiKey": "k1", "kustomerApiKey": "k2", "kustomerUrl": "https://acme.kustomerapp.com/"});
        assert_eq!(
            saved_kustomer_url(&settings.to_string(), options).as_deref(),
            Some("https://acme.kustomerapp.com")
        );
        let bad = json!({"stellaApiKey": "k1", "kustomerApiKey": "k2", "kustomerUrl": "javascript:alert(1)"});
        assert_eq!(saved_kustomer_url(&bad.to_string(), options), None);
        assert_eq!(saved_kustomer_url("not json", options), None);
    }
}
