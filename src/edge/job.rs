//! A pending or finished survey, and the pure rules that move it along: when a close replaces
//! a job, how long to wait before a retry, when to give up.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Raw settings as they came with a close event, keys included. Stored so that the survey can
/// be sent with them later; `Debug` prints nothing of them, so no log line can carry a key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredSettings(pub Value);

impl std::fmt::Debug for StoredSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredSettings([redacted])")
    }
}

/// Where a survey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its due time.
    Scheduled,
    /// An attempt is under way (a lease: if the process dies, the attempt is retried).
    Sending,
    /// The last attempt hit a temporary failure; another is due.
    Retrying,
    /// Stella accepted it. Never sent again.
    Sent,
    /// Checked at due time and not sent, for a reason.
    Skipped,
    /// Refused for good, or retried for 24 hours without success.
    Failed,
}

impl JobState {
    /// Whether nothing more will happen without a resend.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Sent | Self::Skipped | Self::Failed)
    }
}

/// One survey for one conversation of one org. `settings` holds the raw settings (keys
/// included) that came with the latest close event; it is stored, never shown.
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
    /// When to act next; `None` once final.
    pub due_ms: Option<i64>,
    /// Attempts made since the last schedule or resend.
    pub attempts: u32,
    /// When the first of those attempts started, for the 24-hour limit.
    pub first_attempt_ms: Option<i64>,
    /// Stable code of the last outcome (`reopened`, `stella_rejected`, `gave_up`, …).
    pub reason: Option<String>,
    /// The last outcome in words (Stella's own text for a refusal).
    pub message: Option<String>,
    /// The body sent, or that would be sent.
    pub request: Option<Value>,
    /// When Stella accepted it.
    pub sent_ms: Option<i64>,
    /// Created, and last changed.
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
    /// Raw settings with keys: read by the scheduler, never listed.
    pub settings: StoredSettings,
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
    /// Raw settings from the event's headers.
    pub settings: StoredSettings,
}

/// What storing a close did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new job, or a later close replacing a pending or finished one.
    Scheduled,
    /// The same close again (Kustomer delivers at least once): nothing changed.
    Duplicate,
    /// An older close arriving after a newer one: nothing changed.
    Stale,
}

/// Applies a close to the existing job for that conversation, if any. The rule that makes
/// at-least-once delivery and reordering harmless: a job only moves forward in close time.
pub fn upsert(existing: Option<&Job>, s: Schedule, now_ms: i64) -> (Upsert, Option<Job>) {
    if let Some(job) = existing {
        if s.closed_at_ms == job.closed_at_ms {
            return (Upsert::Duplicate, None);
        }
        if s.closed_at_ms < job.closed_at_ms {
            return (Upsert::Stale, None);
        }
    }
    let job = Job {
        org: s.org,
        conversation_id: s.conversation_id,
        state: JobState::Scheduled,
        generation: existing.map_or(0, |j| j.generation.wrapping_add(1)),
        closed_at_ms: s.closed_at_ms,
        send_at_ms: s.send_at_ms,
        due_ms: Some(s.send_at_ms),
        attempts: 0,
        first_attempt_ms: None,
        reason: None,
        message: None,
        request: None,
        sent_ms: None,
        created_ms: existing.map_or(now_ms, |j| j.created_ms),
        updated_ms: now_ms,
        settings: s.settings,
    };
    (Upsert::Scheduled, Some(job))
}

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the second attempt, in ms; doubles each time.
    pub base_ms: i64,
    /// Longest wait between attempts.
    pub max_ms: i64,
    /// Give up after this long since the first attempt.
    pub give_up_after_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_ms: 30_000,
            max_ms: 3_600_000,
            give_up_after_ms: 24 * 3_600_000,
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` failed attempts, or `None` to give up. `hint_ms` is
    /// what the server asked for (`Retry-After`, `x-ratelimit-reset`); `random` in [0, 1)
    /// spreads retries so that a recovering server is not hit by all of them at once.
    pub fn next_attempt(
        &self,
        attempts: u32,
        first_attempt_ms: i64,
        now_ms: i64,
        hint_ms: Option<i64>,
        random: f64,
    ) -> Option<i64> {
        let exp = self
            .base_ms
            .saturating_mul(1i64 << attempts.saturating_sub(1).min(30))
            .min(self.max_ms);
        let jitter = 0.5 + random.clamp(0.0, 1.0) * 0.5; // "equal jitter": between half and all of it
        let wait = ((exp as f64) * jitter) as i64;
        let wait = wait.max(hint_ms.unwrap_or(0));
        let at = now_ms.saturating_add(wait);
        (at - first_attempt_ms <= self.give_up_after_ms).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn close(at: i64) -> Schedule {
        Schedule {
            org: "o".into(),
            conversation_id: "c".into(),
            closed_at_ms: at,
            send_at_ms: at + 900,
            settings: StoredSettings(json!({"stellaApiKey": "k-secret"})),
        }
    }

    #[test]
    fn a_job_only_moves_forward_in_close_time() {
        assert!(
            !format!("{:?}", close(1)).contains("k-secret"),
            "Debug never prints keys"
        );
        let (u, first) = upsert(None, close(1000), 1);
        assert_eq!(u, Upsert::Scheduled);
        let first = first.unwrap();
        assert_eq!((first.due_ms, first.generation), (Some(1900), 0));
        assert_eq!(upsert(Some(&first), close(1000), 2).0, Upsert::Duplicate);
        assert_eq!(upsert(Some(&first), close(999), 2).0, Upsert::Stale);
        let (u, second) = upsert(Some(&first), close(5000), 3);
        let second = second.unwrap();
        assert_eq!(
            (u, second.due_ms, second.generation, second.created_ms),
            (Upsert::Scheduled, Some(5900), 1, 1)
        );
        // A sent job is replaced only by a later close, a new interaction.
        let sent = Job {
            state: JobState::Sent,
            due_ms: None,
            ..second
        };
        assert_eq!(upsert(Some(&sent), close(5000), 4).0, Upsert::Duplicate);
        assert_eq!(
            upsert(Some(&sent), close(6000), 4).1.unwrap().state,
            JobState::Scheduled
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_honours_hints_and_gives_up() {
        let p = RetryPolicy {
            base_ms: 1000,
            max_ms: 8000,
            give_up_after_ms: 60_000,
        };
        assert_eq!(p.next_attempt(1, 0, 0, None, 0.0), Some(500));
        assert_eq!(p.next_attempt(1, 0, 0, None, 0.999_999), Some(999));
        assert_eq!(p.next_attempt(3, 0, 0, None, 1.0), Some(4000));
        assert_eq!(p.next_attempt(10, 0, 0, None, 1.0), Some(8000), "capped");
        assert_eq!(
            p.next_attempt(1, 0, 0, Some(20_000), 0.0),
            Some(20_000),
            "server's wait wins"
        );
        assert_eq!(p.next_attempt(1, 0, 59_000, None, 1.0), Some(60_000));
        assert_eq!(
            p.next_attempt(1, 0, 59_500, None, 1.0),
            None,
            "past the limit"
        );
        assert_eq!(
            p.next_attempt(u32::MAX, 0, 0, None, 1.0),
            Some(8000),
            "no overflow"
        );
    }
}
