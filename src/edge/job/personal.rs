//! What an entry keeps of the customer, and how it lets it go: the fields of the request the
//! log reads, and the entry without their personal data once the period is over or they are
//! forgotten.

use super::Job;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an entry's customer personal data (name, e-mail, comment) was removed: the log shows
/// these words in their place, so an admin sees a removal, not a blank or a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "why",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Removal {
    /// Kept no longer than `PERSONAL_DATA_DAYS` after the entry was finished.
    Expired {
        /// The period, in days, as configured when it was removed.
        days: u32,
    },
    /// Removed on request (the customer was forgotten).
    Forgotten,
}

impl Removal {
    /// What the log shows where the data was.
    pub fn words(self) -> String {
        match self {
            Self::Expired { days: 0 } => "removed once finished".to_owned(),
            Self::Expired { days: 1 } => "removed after 1 day".to_owned(),
            Self::Expired { days } => format!("removed after {days} days"),
            Self::Forgotten => "removed on request".to_owned(),
        }
    }
}

/// The parts of a sent or tried Stella body that the delivery log reads (the page, the card,
/// the CSV, the summary's agent counter): the customer, the agent, the channel and the link
/// back. The rest (tags, brand, language, custom properties, the conversation id again) is
/// rebuilt from Kustomer by any resend and read by nothing, so a finished entry does not keep
/// it: tags alone may be 20 × 2,000 characters.
pub const LOGGED_REQUEST_FIELDS: [&str; 4] = ["customer", "employee", "channel", "external_url"];

/// The body as the log keeps it ([`LOGGED_REQUEST_FIELDS`]).
pub fn logged_request(body: &crate::stella::FeedbackRequest) -> Value {
    let mut map = serde_json::Map::new();
    if let Ok(Value::Object(full)) = serde_json::to_value(body) {
        for (key, value) in full {
            if LOGGED_REQUEST_FIELDS.contains(&key.as_str()) {
                map.insert(key, value);
            }
        }
    }
    Value::Object(map)
}

impl Job {
    /// The entry without the customer's personal data: their name and e-mail in the request,
    /// the comment they left with their rating, those words wherever a message repeats them,
    /// and the keyed digests of their e-mail ([`SentTo`], only needed while the outcome is read
    /// back) and of the customer (the forget index). States, reasons, times, the rating, the agent and every id stay, so the summary's
    /// counters and the reports do not change. Pure and idempotent; an entry already marked
    /// keeps its first reason.
    pub fn without_personal_data(self, why: Removal) -> Job {
        let mut job = self;
        let mut said: Vec<String> = Vec::new();
        if let Some(Value::Object(customer)) =
            job.request.as_mut().and_then(|r| r.get_mut("customer"))
        {
            for key in ["name", "email"] {
                if let Some(Value::String(text)) = customer.remove(key) {
                    said.push(text);
                }
            }
        }
        if let Some(outcome) = job.outcome.as_mut() {
            said.extend(outcome.read.comment.take());
        }
        if let Some(message) = job.message.as_mut() {
            for text in said.iter().filter(|t| t.trim().len() >= 3) {
                if message.contains(text.as_str()) {
                    *message = message.replace(text.as_str(), &format!("[{}]", why.words()));
                }
            }
        }
        job.sent_to = None;
        job.customer = None;
        // The first reason stays: an entry forgotten on request is not "expired" later.
        job.personal_data_removed = job.personal_data_removed.or(Some(why));
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::job::tests::close;
    use crate::edge::job::{first, JobOutcome, JobState};
    use crate::edge::record_check::SentTo;
    use crate::survey_outcome::SurveyOutcome;

    #[test]
    fn without_personal_data_keeps_what_counts_and_says_why() {
        use crate::survey_outcome::DeliveryStatus;
        let job = Job {
            state: JobState::Failed,
            reason: Some("stella_rejected".into()),
            message: Some("customer.email ann@example.com is not valid (Ann Lee)".into()),
            request: Some(serde_json::json!({
                "customer": {"name": "Ann Lee", "email": "ann@example.com"},
                "employee": {"email": "agent@example.com"},
                "channel": "email",
            })),
            outcome: Some(JobOutcome {
                read: SurveyOutcome {
                    conversation_id: "c".into(),
                    uuid: "u".into(),
                    delivery_status: DeliveryStatus::Sent,
                    delivery_status_text: None,
                    rating: Some(4),
                    comment: Some("Thanks, Ann".into()),
                    sent_at: None,
                    responded_at: None,
                    is_recovery: false,
                },
                created_ms: Some(5),
                unwritten: false,
                write_error: None,
            }),
            sent_to: Some(SentTo {
                key: "k".into(),
                customer: "d1".into(),
                agent: "d2".into(),
            }),
            ..first(close(1000), 1)
        };
        let why = Removal::Expired { days: 30 };
        let gone = job.clone().without_personal_data(why);
        assert_eq!(
            gone.request,
            Some(serde_json::json!({
                "customer": {},
                "employee": {"email": "agent@example.com"},
                "channel": "email",
            })),
            "the agent and the channel stay: the summary counts them"
        );
        let outcome = gone.outcome.as_ref().unwrap();
        assert_eq!(
            (outcome.read.rating, outcome.read.comment.as_deref()),
            (Some(4), None)
        );
        assert_eq!(
            gone.message.as_deref(),
            Some("customer.email [removed after 30 days] is not valid ([removed after 30 days])")
        );
        assert_eq!(
            (gone.sent_to.as_ref(), gone.personal_data_removed),
            (None, Some(why))
        );
        assert_eq!(
            (gone.state, &gone.reason, gone.updated_ms, gone.closed_at_ms),
            (job.state, &job.reason, job.updated_ms, job.closed_at_ms)
        );
        assert_eq!(gone.clone().without_personal_data(why), gone, "idempotent");
        let forgotten = job.clone().without_personal_data(Removal::Forgotten);
        assert_eq!(
            forgotten.without_personal_data(why).personal_data_removed,
            Some(Removal::Forgotten),
            "the first reason stays"
        );
        let text = serde_json::to_string(&gone).unwrap();
        for personal in ["ann@", "Ann Lee", "Thanks"] {
            assert!(!text.contains(personal), "{text}");
        }
        assert!(text.contains(r#""personalDataRemoved":{"why":"expired","days":30}"#));
    }
}
