//! A pending or finished survey, and the pure rules that move it along: when a close replaces
//! a job here, and what an attempt makes of it in [`settle`] (with the retry waits and when to
//! give up).

mod personal;
mod reason;
mod settle;

pub use personal::{logged_request, Removal, LOGGED_REQUEST_FIELDS};
pub use reason::JobReason;
pub use settle::{settle, Attempt, AttemptEnd, RetryPolicy};

use super::record_check::SentTo;
use crate::decision::{self, Skip};
use crate::error::{codes, codes_deserialize};
use crate::survey_outcome::{Record, SurveyOutcome};
use crate::timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Raw settings as an authenticated call gave them, keys included, as JSON text (what is
/// sealed): kept once per org, sealed (see [`super::seal`]), never in a job. `Debug` prints
/// nothing of them, so no log line can carry a key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredSettings(pub String);

impl std::fmt::Debug for StoredSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredSettings([redacted])")
    }
}

codes! {
    /// Where a survey stands, by its name as stored and shown (`scheduled`, `sending`, …).
    pub enum JobState {
        /// Waiting for its due time.
        Scheduled = "scheduled",
        /// An attempt is under way (a lease: if the process dies, the attempt is retried).
        Sending = "sending",
        /// The last attempt hit a temporary failure; another is due.
        Retrying = "retrying",
        /// Stella accepted it. Never sent again.
        Sent = "sent",
        /// Checked at due time and not sent, for a reason.
        Skipped = "skipped",
        /// Refused for good, or retried for 24 hours without success.
        Failed = "failed",
    }
}

codes_deserialize!(JobState);

impl JobState {
    /// Whether nothing more will happen without a resend.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Sent | Self::Skipped | Self::Failed)
    }
}

/// One survey for one conversation of one org. It holds no key: the org's settings are kept
/// once per org, sealed, and only while a job needs them. Stored as JSON, absent values left
/// out (a row is written with every close).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The org.
    pub org: String,
    /// The conversation.
    pub conversation_id: String,
    /// Where it stands.
    pub state: JobState,
    /// Bumped by every close that replaces the job, so a late answer to an old attempt
    /// cannot overwrite a newer schedule.
    pub generation: u32,
    /// When the conversation was closed (ms since the epoch).
    pub closed_at_ms: i64,
    /// When the survey falls due.
    pub send_at_ms: i64,
    /// When to act next; `None` once final (and then left out of the stored JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<i64>,
    /// Attempts made since the last schedule or resend.
    pub attempts: u32,
    /// When the first of those attempts started, for the 24-hour limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt_ms: Option<i64>,
    /// Why it is where it is (stored as its code: `reopened`, `stella_rejected`, `gave_up`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<JobReason>,
    /// The last attempt's result in words (Stella's own text for a refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The body sent, or that would be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// When Stella accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ms: Option<i64>,
    /// Created, and last changed.
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
    /// Ids of the latest close events that touched this job (at most [`MAX_EVENT_IDS`]): a
    /// redelivered event is the same event, whatever its timestamps say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
    /// When an earlier survey of this conversation went out, for the resurvey rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sent_ms: Option<i64>,
    /// An attempt may have reached Stella without its answer reaching us (a timeout, or a lease
    /// cut off by a crash): before another, Data Return is asked whether the survey exists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsure: bool,
    /// What Agent Connect says became of the survey, once read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<JobOutcome>,
    /// Who the last request that may have reached Stella went to, as keyed digests (kept just
    /// before it is sent, so a crash keeps them too): Data Return's records are matched against
    /// them ([`super::record_check`]). `None` for jobs stored before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<SentTo>,
    /// Why the customer's personal data is no longer in this entry, once removed
    /// ([`Job::without_personal_data`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_data_removed: Option<Removal>,
    /// Its customer as keyed digests, so that forgetting a customer finds their jobs through
    /// an index ([`super::forget`]); dropped when they are forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<super::forget::CustomerKeys>,
}

/// A survey's outcome as the edge keeps it: Data Return's record, read by the core, and
/// whether it is on the conversation yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOutcome {
    /// The record, as `readSurveyOutcome` gives it.
    #[serde(flatten)]
    pub read: SurveyOutcome,
    /// When the record was created in Agent Connect (ms), to tell it from an earlier survey's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<i64>,
    /// Changed since last written onto the Kustomer conversation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unwritten: bool,
    /// Why it could not be written, when Kustomer refused for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
}

impl JobOutcome {
    /// A record's outcome as a job keeps it, not yet written onto the conversation.
    pub fn from_record(record: Record) -> Self {
        let created_ms = (record.created_at.as_deref())
            .and_then(timestamp::parse)
            .map(timestamp::to_millis);
        Self {
            read: record.outcome,
            created_ms,
            unwritten: true,
            write_error: None,
        }
    }
}

/// How many event ids a job remembers. Kustomer redelivers within about an hour; a
/// conversation is rarely closed this often in that time.
pub const MAX_EVENT_IDS: usize = 16;

impl Job {
    /// When it was sent, while Agent Connect may still tell more about it: a sent survey whose
    /// outcome is not final ([`SurveyOutcome::is_final`]). The edge reads outcomes back while any
    /// survey sent in the last [`FOLLOW_DAYS`](super::agent_connect::FOLLOW_DAYS) is followed.
    pub fn followed_since(&self) -> Option<i64> {
        let done = self.outcome.as_ref().is_some_and(|o| o.read.is_final());
        (self.state == JobState::Sent && !done)
            .then_some(self.sent_ms)
            .flatten()
    }

    /// Whether its last attempt may have reached Stella without the edge knowing: a lease cut
    /// off (by a crash) or a call that got no answer or a server error.
    pub fn is_unsure(&self) -> bool {
        self.unsure || self.state == JobState::Sending
    }

    /// Whether its outcome waits to be written onto the conversation.
    pub fn outcome_unwritten(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| o.unwritten)
    }

    /// When this conversation was last surveyed: by this job, or by the one it replaced.
    pub fn last_surveyed_ms(&self) -> Option<i64> {
        self.sent_ms.or(self.previous_sent_ms)
    }
}

/// A close event, planned and verified, to be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// The verified org.
    pub org: String,
    /// The conversation.
    pub conversation_id: String,
    /// Close time, ms.
    pub closed_at_ms: i64,
    /// Due time, ms.
    pub send_at_ms: i64,
    /// The event's own id, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The conversation's customer (Kustomer's id), when the event names one: the scheduler
    /// keeps only its keyed digest ([`super::forget::CustomerKeys`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

/// What storing a close did.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsert {
    /// A new job, or a later close replacing a pending or finished one.
    Scheduled(Job),
    /// The same close again (Kustomer delivers at least once): nothing changed.
    Duplicate,
    /// An older close arriving after a newer one: nothing changed.
    Stale,
    /// A later close of a conversation already surveyed, which the resurvey rule does not
    /// allow: the sent job, with the close and the reason noted for the delivery log.
    AlreadySurveyed(Job, Skip),
}

/// Applies a close to the existing job for that conversation, if any. The rules that make
/// at-least-once delivery and reordering harmless: an event id is seen once, and a job only
/// moves forward in close time; a conversation already surveyed is surveyed again only as
/// [`decision::may_resurvey`] allows (`resurvey_after_days`, the org's setting).
pub fn upsert(
    existing: Option<&Job>,
    mut s: Schedule,
    resurvey_after_days: u32,
    now_ms: i64,
) -> Upsert {
    let mut event_ids = existing.map(|j| j.event_ids.clone()).unwrap_or_default();
    if let Some(job) = existing {
        if s.closed_at_ms < job.closed_at_ms {
            return Upsert::Stale;
        }
        if s.event_id
            .as_ref()
            .is_some_and(|id| job.event_ids.contains(id))
            || s.closed_at_ms == job.closed_at_ms
        {
            return Upsert::Duplicate;
        }
    }
    if let Some(id) = s.event_id.take() {
        if event_ids.len() >= MAX_EVENT_IDS {
            event_ids.remove(0);
        }
        event_ids.push(id);
    }
    let last_surveyed = existing.and_then(Job::last_surveyed_ms);
    if let (Some(job), Some(last)) = (existing, last_surveyed) {
        let ms = |ms: i64| timestamp::from_millis(ms as f64);
        if let Err(skip) = decision::may_resurvey(resurvey_after_days, ms(last), ms(s.closed_at_ms))
        {
            if job.state == JobState::Sent {
                let noted = Job {
                    reason: Some(skip.code.into()),
                    message: Some(skip.message.clone()),
                    closed_at_ms: s.closed_at_ms,
                    event_ids,
                    updated_ms: now_ms,
                    ..job.clone()
                };
                return Upsert::AlreadySurveyed(noted, skip);
            }
        }
    }
    let mut job = first(s, now_ms);
    if let Some(existing) = existing {
        job.generation = existing.generation.wrapping_add(1);
        job.created_ms = existing.created_ms;
    }
    job.event_ids = event_ids;
    job.previous_sent_ms = last_surveyed;
    Upsert::Scheduled(job)
}

/// The job for a conversation's first close: what [`upsert`] makes when no job exists.
pub fn first(s: Schedule, now_ms: i64) -> Job {
    Job {
        org: s.org,
        conversation_id: s.conversation_id,
        state: JobState::Scheduled,
        generation: 0,
        closed_at_ms: s.closed_at_ms,
        send_at_ms: s.send_at_ms,
        due_ms: Some(s.send_at_ms),
        attempts: 0,
        first_attempt_ms: None,
        reason: None,
        message: None,
        request: None,
        sent_ms: None,
        created_ms: now_ms,
        updated_ms: now_ms,
        event_ids: s.event_id.into_iter().collect(),
        previous_sent_ms: None,
        unsure: false,
        outcome: None,
        sent_to: None,
        personal_data_removed: None,
        customer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A close at `at`, due 900 ms later.
    pub(super) fn close(at: i64) -> Schedule {
        Schedule {
            org: "o".into(),
            conversation_id: "c".into(),
            closed_at_ms: at,
            send_at_ms: at + 900,
            event_id: None,
            customer_id: None,
        }
    }

    fn scheduled(u: Upsert) -> Job {
        match u {
            Upsert::Scheduled(job) => job,
            other => panic!("not scheduled: {other:?}"),
        }
    }

    #[test]
    fn a_job_only_moves_forward_in_close_time() {
        let never = 0;
        let first = scheduled(upsert(None, close(1000), never, 1));
        assert_eq!((first.due_ms, first.generation), (Some(1900), 0));
        assert_eq!(
            upsert(Some(&first), close(1000), never, 2),
            Upsert::Duplicate
        );
        assert_eq!(upsert(Some(&first), close(999), never, 2), Upsert::Stale);
        let second = scheduled(upsert(Some(&first), close(5000), never, 3));
        assert_eq!(
            (second.due_ms, second.generation, second.created_ms),
            (Some(5900), 1, 1)
        );
    }

    #[test]
    fn an_event_id_is_one_event_whatever_its_times() {
        let never = 0;
        let with_id = |at, id: &str| Schedule {
            event_id: Some(id.into()),
            ..close(at)
        };
        let job = scheduled(upsert(None, with_id(1000, "e1"), never, 1));
        assert_eq!(
            upsert(Some(&job), with_id(7000, "e1"), never, 2),
            Upsert::Duplicate
        );
        let mut job = scheduled(upsert(Some(&job), with_id(7000, "e2"), never, 2));
        assert_eq!(job.event_ids, ["e1", "e2"]);
        for i in 0..40 {
            job = scheduled(upsert(
                Some(&job),
                with_id(8000 + i, &format!("x{i}")),
                never,
                3,
            ));
        }
        assert_eq!(job.event_ids.len(), MAX_EVENT_IDS, "bounded");
    }

    #[test]
    fn a_surveyed_conversation_is_surveyed_again_only_as_the_setting_allows() {
        const DAY: i64 = 86_400_000;
        let first = scheduled(upsert(None, close(1000), 0, 1));
        let sent = Job {
            state: JobState::Sent,
            due_ms: None,
            sent_ms: Some(2000),
            ..first
        };
        assert_eq!(upsert(Some(&sent), close(1000), 0, 4), Upsert::Duplicate);
        match upsert(Some(&sent), close(6000), 0, 4) {
            Upsert::AlreadySurveyed(job, skip) => {
                assert_eq!(skip.code, decision::SkipCode::AlreadySurveyed);
                assert_eq!(
                    (job.state, job.reason.as_deref()),
                    (JobState::Sent, Some("already_surveyed"))
                );
                assert_eq!(
                    job.sent_ms,
                    Some(2000),
                    "the survey that went out stays on record"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            upsert(Some(&sent), close(2000 + DAY), 2, 4),
            Upsert::AlreadySurveyed(..)
        ));
        let again = scheduled(upsert(Some(&sent), close(2000 + 2 * DAY), 2, 4));
        assert_eq!(
            (again.state, again.previous_sent_ms),
            (JobState::Scheduled, Some(2000))
        );
        // A replaced job remembers the survey, so the rule holds at send time too.
        let replaced = scheduled(upsert(Some(&again), close(3000 + 2 * DAY), 2, 5));
        assert_eq!(replaced.last_surveyed_ms(), Some(2000));
    }

    #[test]
    fn stored_rows_read_back_byte_for_byte() {
        // Rows as this version and the ones before it stored them: every state, reasons of
        // both families, one this build does not know, and a full sent entry.
        let rows = [
            r#"{"org":"o","conversationId":"c1","state":"scheduled","generation":0,"closedAtMs":1000,"sendAtMs":1900,"dueMs":1900,"attempts":0,"createdMs":1,"updatedMs":1,"eventIds":["e1"]}"#,
            r#"{"org":"o","conversationId":"c2","state":"sending","generation":2,"closedAtMs":1000,"sendAtMs":1900,"dueMs":5000,"attempts":1,"firstAttemptMs":2000,"reason":"resend","createdMs":1,"updatedMs":2000}"#,
            r#"{"org":"o","conversationId":"c3","state":"retrying","generation":0,"closedAtMs":1000,"sendAtMs":1900,"dueMs":9000,"attempts":2,"firstAttemptMs":2000,"reason":"temporary_failure","message":"503","request":{"channel":"email"},"createdMs":1,"updatedMs":3000,"unsure":true}"#,
            r#"{"org":"o","conversationId":"c4","state":"skipped","generation":0,"closedAtMs":1000,"sendAtMs":1900,"attempts":1,"firstAttemptMs":2000,"reason":"invalid_settings","message":"check brand","createdMs":1,"updatedMs":3000}"#,
            r#"{"org":"o","conversationId":"c5","state":"failed","generation":0,"closedAtMs":1000,"sendAtMs":1900,"attempts":1,"reason":"a_reason_retired_long_ago","createdMs":1,"updatedMs":3000,"personalDataRemoved":{"why":"expired","days":30}}"#,
            r#"{"org":"o","conversationId":"c6","state":"sent","generation":1,"closedAtMs":1000,"sendAtMs":1900,"attempts":1,"firstAttemptMs":2000,"reason":"already_surveyed","message":"Surveyed","request":{"customer":{"email":"a@example.com"}},"sentMs":2100,"createdMs":1,"updatedMs":3000,"previousSentMs":500,"outcome":{"conversationId":"c6","uuid":"u","deliveryStatus":"sent","rating":4,"isRecovery":false,"createdMs":2050,"unwritten":true},"sentTo":{"key":"k","customer":"d1","agent":"d2"}}"#,
        ];
        for row in rows {
            let job: Job = serde_json::from_str(row).expect(row);
            assert_eq!(serde_json::to_string(&job).unwrap(), row);
        }
        let unknown = rows[1].replace("\"sending\"", "\"paused\"");
        assert!(
            serde_json::from_str::<Job>(&unknown).is_err(),
            "no state is guessed"
        );
    }
}
