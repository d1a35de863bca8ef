//! Which Data Return record speaks for a survey. Anyone holding the org's Agent Connect key can
//! make records (a request naming any conversation and any custom properties) and answer them,
//! so a record counts for a job only if it names the org, carries the customer and agent the
//! job's request carried, and was created after the job's first attempt began; among the
//! records that do, the earliest speaks for the survey (by creation time, then `uuid`).
//!
//! The job keeps who the survey went to as keyed digests ([`SentTo`]), never the addresses, for
//! this: a copy of the storage cannot confirm a guessed address without the deployment's key.

use super::job::Job;
use super::seal::{self, Sealer};
use crate::error::codes;
use crate::stella::FeedbackRequest;
use crate::survey_outcome::Record;
use crate::timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How much earlier than the edge's own start of an attempt Agent Connect may stamp the record
/// it made (clocks differ: both sides keep theirs by NTP, so seconds at most; a minute is
/// ample, and still far shorter than any time between two surveys of a conversation).
pub const CLOCK_SKEW_MS: i64 = 60_000;

codes! {
    /// Why a Data Return record of a surveyed conversation does not count for its survey.
    pub enum Unmatched {
        /// It does not name the org in `custom_properties.kustomer_org`.
        NoOrg = "no_org",
        /// It names another org (an Agent Connect account shared between orgs).
        OtherOrg = "other_org",
        /// It was created before the survey's first attempt began (an earlier survey's), or
        /// says no creation time.
        BeforeAttempt = "before_attempt",
        /// Its customer is not the one the survey went to.
        OtherCustomer = "other_customer",
        /// Its agent is not the one the survey was about.
        OtherAgent = "other_agent",
        /// The survey has an earlier matching record: a later one is a duplicate.
        Duplicate = "duplicate",
    }
}

impl Unmatched {
    /// The reason in words, after "ignored because it was …" or in a list.
    pub fn words(self) -> &'static str {
        match self {
            Self::NoOrg => "not marked with this org",
            Self::OtherOrg => "marked with another org",
            Self::BeforeAttempt => "created before the survey was sent",
            Self::OtherCustomer => "for another customer",
            Self::OtherAgent => "about another agent",
            Self::Duplicate => "a later duplicate of a survey's record",
        }
    }
}

/// Who a survey went to, as digests keyed with the deployment's key: what the edge needs to
/// recognise the survey's record, and nothing that reveals the addresses. Each digest is bound
/// to the org and the conversation, so the same customer gives unrelated digests on two jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentTo {
    /// The id of the deployment key the digests are under ([`Sealer::named_digest`]).
    pub key: String,
    /// The customer's email (`customer.email`).
    pub customer: String,
    /// The agent's email (`employee.email`: the request identifies the agent by nothing else).
    pub agent: String,
}

/// Whose address a digest is of: part of what is digested, so that the two never match each
/// other.
#[derive(Clone, Copy)]
enum Role {
    Customer,
    Agent,
}

/// What is digested: a purpose label, the role, the org, the conversation and the address as
/// Agent Connect compares addresses (trimmed, any case).
fn digest_text(role: Role, org: &str, conversation: &str, email: &str) -> String {
    let role = match role {
        Role::Customer => "customer",
        Role::Agent => "agent",
    };
    let email = email.trim().to_lowercase();
    format!("survey-recipient\n{role}\n{org}\n{conversation}\n{email}")
}

impl SentTo {
    /// The digests of the request `body` that `job` sends.
    pub fn of(sealer: &Sealer, job: &Job, body: &FeedbackRequest) -> Self {
        let text = |role, email: &str| digest_text(role, &job.org, &job.conversation_id, email);
        let (key, customer) = sealer.named_digest(&text(Role::Customer, &body.customer.email));
        let (_, agent) = sealer.named_digest(&text(Role::Agent, &body.employee.email));
        Self {
            key,
            customer,
            agent,
        }
    }

    /// Whether `email` is the one digested for `role`; `None` when the deployment no longer
    /// has the key the digests are under (rotated out).
    fn holds(&self, sealer: &Sealer, role: Role, job: &Job, email: Option<&str>) -> Option<bool> {
        let expected = match role {
            Role::Customer => &self.customer,
            Role::Agent => &self.agent,
        };
        let Some(email) = email else {
            // Still tell a rotated-out key apart from a mismatch.
            return sealer.named_digest_with(&self.key, "").map(|_| false);
        };
        let text = digest_text(role, &job.org, &job.conversation_id, email);
        let digest = sealer.named_digest_with(&self.key, &text)?;
        Some(seal::same_text(&digest, expected))
    }
}

/// A record that counts for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// When Agent Connect created it (ms).
    pub created_ms: i64,
    /// Its customer and agent were checked. False for a job stored before the edge kept
    /// [`SentTo`], or whose digests are under a key the deployment no longer has: only the org
    /// and the time were checked then.
    pub verified: bool,
}

/// Whether `record` (of `job`'s conversation) counts for the survey `job` sent, or why not.
/// The order of the checks gives the most telling reason: an earlier survey's record has the
/// same customer, so its time is what tells it apart.
pub fn check(sealer: &Sealer, job: &Job, record: &Record) -> Result<Matched, Unmatched> {
    match record.org.as_deref() {
        None => return Err(Unmatched::NoOrg),
        Some(org) if org != job.org => return Err(Unmatched::OtherOrg),
        Some(_) => {}
    }
    let began = job.first_attempt_ms.unwrap_or(job.updated_ms);
    let created_ms = (record.created_at.as_deref())
        .and_then(timestamp::parse)
        .map(timestamp::to_millis)
        .filter(|&c| c >= began.saturating_sub(CLOCK_SKEW_MS))
        .ok_or(Unmatched::BeforeAttempt)?;
    let Some(sent_to) = &job.sent_to else {
        return Ok(Matched {
            created_ms,
            verified: false,
        });
    };
    let customer = sent_to.holds(
        sealer,
        Role::Customer,
        job,
        record.customer_email.as_deref(),
    );
    let agent = sent_to.holds(sealer, Role::Agent, job, record.agent_email.as_deref());
    match (customer, agent) {
        (Some(false), _) => Err(Unmatched::OtherCustomer),
        (_, Some(false)) => Err(Unmatched::OtherAgent),
        (Some(true), Some(true)) => Ok(Matched {
            created_ms,
            verified: true,
        }),
        // The key is gone: as for a job without digests.
        _ => Ok(Matched {
            created_ms,
            verified: false,
        }),
    }
}

/// Whether the record `(created_ms, uuid)` speaks for a survey before `known`: the earliest
/// created, then the lowest `uuid`, so that every read picks the same one whatever the order
/// the records come in. A time not known comes last.
pub fn comes_first(record: (Option<i64>, &str), known: (Option<i64>, &str)) -> bool {
    let key = |(created, uuid): (Option<i64>, &str)| (created.unwrap_or(i64::MAX), uuid.to_owned());
    key(record) < key(known)
}

/// The delivery log's note on records that did not count (`ignored`: counts by
/// [`Unmatched`] code) and surveys whose record was taken on the org and time alone; `None`
/// when there is nothing to say.
pub fn note(ignored: &BTreeMap<String, u64>, unverified: u64) -> Option<String> {
    let total: u64 = ignored.values().sum();
    let mut parts = Vec::new();
    if total > 0 {
        let reasons: Vec<String> = (Unmatched::ALL.iter())
            .filter_map(|code| {
                let n = *ignored.get(code.as_str())?;
                (n > 0).then(|| format!("{n} {}", code.words()))
            })
            .collect();
        let records = if total == 1 { "record" } else { "records" };
        parts.push(format!(
            "{total} Agent Connect {records} did not match the survey sent and did not count ({}).",
            reasons.join(", ")
        ));
    }
    if unverified > 0 {
        let surveys = if unverified == 1 {
            "survey was"
        } else {
            "surveys were"
        };
        parts.push(format!(
            "{unverified} {surveys} sent before this version kept who they went to: their records were checked for the org and the time only."
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::job::{first, JobState, Schedule};
    use crate::stella::{Customer, Employee, Properties};
    use crate::survey_outcome::read_record;
    use serde_json::json;

    const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    const CONVERSATION: &str = "6560e0f1a2b3c4d5e6f70819";
    const BEGAN: i64 = 1_764_000_000_000;

    fn body(customer: &str, agent: &str) -> FeedbackRequest {
        FeedbackRequest {
            channel: "email".into(),
            customer: Customer {
                name: None,
                email: customer.into(),
            },
            employee: Employee {
                email: agent.into(),
            },
            ext_interaction_id: CONVERSATION.into(),
            external_url: None,
            tags: vec![],
            do_not_send: false,
            brand: None,
            language: None,
            custom_properties: Properties::default(),
        }
    }

    fn job(sealer: &Sealer, sent: Option<&FeedbackRequest>) -> Job {
        let mut job = first(
            Schedule {
                org: "org-1".into(),
                conversation_id: CONVERSATION.into(),
                closed_at_ms: BEGAN - 900_000,
                send_at_ms: BEGAN,
                event_id: None,
                customer_id: None,
            },
            BEGAN - 900_000,
        );
        job.state = JobState::Sent;
        job.first_attempt_ms = Some(BEGAN);
        job.sent_to = sent.map(|b| SentTo::of(sealer, &job, b));
        job
    }

    fn record(edit: impl FnOnce(&mut serde_json::Value)) -> Record {
        let mut value = json!({
            "uuid": "u-1",
            "ext_interaction_id": CONVERSATION,
            "request_created_at": timestamp::format(timestamp::from_millis((BEGAN + 2000) as f64)),
            "custom_properties": {"kustomer_org": "org-1"},
            "customer": {"email": "Ann.Lee@Example.com", "full_name": "Ann Lee"},
            "employee": {"email": "sam@acme.example"},
        });
        edit(&mut value);
        read_record(&value).unwrap()
    }

    fn at(ms: i64) -> String {
        timestamp::format(timestamp::from_millis(ms as f64))
    }

    #[test]
    fn a_record_counts_only_if_it_matches_the_survey_sent() {
        let sealer = Sealer::from_base64(&[K1]).unwrap();
        let sent = body("ann.lee@example.com", "Sam@Acme.example ");
        let job = job(&sealer, Some(&sent));
        let verified = Ok(Matched {
            created_ms: BEGAN + 2000,
            verified: true,
        });
        let cases: Vec<(&str, Record, Result<Matched, Unmatched>)> = vec![
            (
                "the survey's own, addresses in another case",
                record(|_| {}),
                verified,
            ),
            (
                "no org",
                record(|r| r["custom_properties"] = json!({})),
                Err(Unmatched::NoOrg),
            ),
            (
                "another org",
                record(|r| r["custom_properties"]["kustomer_org"] = json!("org-2")),
                Err(Unmatched::OtherOrg),
            ),
            (
                "another customer",
                record(|r| r["customer"]["email"] = json!("mallory@example.com")),
                Err(Unmatched::OtherCustomer),
            ),
            (
                "no customer",
                record(|r| r["customer"] = json!({})),
                Err(Unmatched::OtherCustomer),
            ),
            (
                "another agent",
                record(|r| r["employee"]["email"] = json!("kim@acme.example")),
                Err(Unmatched::OtherAgent),
            ),
            (
                "created before the attempt, past the skew",
                record(|r| r["request_created_at"] = json!(at(BEGAN - CLOCK_SKEW_MS - 1))),
                Err(Unmatched::BeforeAttempt),
            ),
            (
                "undated",
                record(|r| r["request_created_at"] = json!(null)),
                Err(Unmatched::BeforeAttempt),
            ),
            (
                "within the skew",
                record(|r| r["request_created_at"] = json!(at(BEGAN - CLOCK_SKEW_MS))),
                Ok(Matched {
                    created_ms: BEGAN - CLOCK_SKEW_MS,
                    verified: true,
                }),
            ),
        ];
        for (name, record, expected) in cases {
            assert_eq!(check(&sealer, &job, &record), expected, "{name}");
        }
    }

    #[test]
    fn without_digests_only_the_org_and_time_are_checked() {
        let sealer = Sealer::from_base64(&[K1]).unwrap();
        let legacy = job(&sealer, None);
        let other = record(|r| r["customer"]["email"] = json!("mallory@example.com"));
        assert_eq!(
            check(&sealer, &legacy, &other),
            Ok(Matched {
                created_ms: BEGAN + 2000,
                verified: false
            })
        );
        let no_org = record(|r| r["custom_properties"] = json!({}));
        assert_eq!(check(&sealer, &legacy, &no_org), Err(Unmatched::NoOrg));
        // Digests under a key the deployment has dropped: likewise; under a key still
        // configured after a rotation: checked.
        let sent = body("ann.lee@example.com", "sam@acme.example");
        let job = job(&sealer, Some(&sent));
        let rotated = Sealer::from_base64(&[K2, K1]).unwrap();
        assert_eq!(check(&rotated, &job, &other), Err(Unmatched::OtherCustomer));
        assert!(check(&rotated, &job, &record(|_| {})).unwrap().verified);
        let dropped = Sealer::from_base64(&[K2]).unwrap();
        assert!(!check(&dropped, &job, &other).unwrap().verified);
    }

    #[test]
    fn digests_are_keyed_and_bound_to_the_job() {
        let sealer = Sealer::from_base64(&[K1]).unwrap();
        let sent = body("ann.lee@example.com", "sam@acme.example");
        let job = job(&sealer, None);
        let to = SentTo::of(&sealer, &job, &sent);
        let text = serde_json::to_string(&to).unwrap();
        assert!(!text.contains("ann") && !text.contains("sam"), "{text}");
        assert_ne!(to.customer, seal::digest("ann.lee@example.com")[..32]);
        let other_org = Job {
            org: "org-2".into(),
            ..job.clone()
        };
        assert_ne!(
            to,
            SentTo::of(&sealer, &other_org, &sent),
            "bound to the org"
        );
        let other_conversation = Job {
            conversation_id: "6560e0f1a2b3c4d5e6f70820".into(),
            ..job.clone()
        };
        let other = SentTo::of(&sealer, &other_conversation, &sent);
        assert_ne!(to.customer, other.customer, "bound to the conversation");
        let swapped = body("sam@acme.example", "ann.lee@example.com");
        let swapped = SentTo::of(&sealer, &job, &swapped);
        assert_ne!(to.customer, swapped.agent, "roles apart");
        let other_key = Sealer::from_base64(&[K2]).unwrap();
        assert_ne!(to, SentTo::of(&other_key, &job, &sent), "keyed");
    }

    #[test]
    fn the_earliest_record_comes_first_then_the_lowest_uuid() {
        assert!(comes_first((Some(1), "b"), (Some(2), "a")));
        assert!(!comes_first((Some(2), "a"), (Some(1), "b")));
        assert!(comes_first((Some(1), "a"), (Some(1), "b")));
        assert!(!comes_first((Some(1), "b"), (Some(1), "a")));
        assert!(
            !comes_first((Some(1), "a"), (Some(1), "a")),
            "not before itself"
        );
        assert!(comes_first((Some(i64::MAX - 1), "z"), (None, "a")));
    }

    #[test]
    fn the_note_counts_in_words() {
        assert_eq!(note(&BTreeMap::new(), 0), None);
        let ignored = BTreeMap::from([
            ("duplicate".to_owned(), 2),
            ("other_customer".to_owned(), 1),
            ("no_org".to_owned(), 0),
        ]);
        assert_eq!(
            note(&ignored, 1).unwrap(),
            "3 Agent Connect records did not match the survey sent and did not count (1 for another customer, 2 a later duplicate of a survey's record). 1 survey was sent before this version kept who they went to: their records were checked for the org and the time only."
        );
        let one = BTreeMap::from([("no_org".to_owned(), 1)]);
        assert!(note(&one, 0)
            .unwrap()
            .starts_with("1 Agent Connect record did"));
    }
}
