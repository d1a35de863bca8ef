//! What an attempt makes of its job: [`settle`], pure, with the retry spacing it reads
//! ([`RetryPolicy`]). The scheduler leases a job, makes the attempt, and stores what this says.

use super::{Job, JobOutcome, JobReason, JobState};
use crate::edge::codes::Reason;
use crate::survey_outcome::Record;
use crate::timestamp;
use serde_json::Value;

/// What one attempt came to, and the body it made, if it got that far.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// How it ended.
    pub end: AttemptEnd,
    /// The body as the log keeps it ([`super::logged_request`]), once one was made: kept on
    /// the job in place of the last one.
    pub request: Option<Value>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// Stopped before anything was sent: the org's API budget (or the run's outbound calls)
    /// has no room for now.
    Paced,
    /// Stella took it.
    Sent {
        /// Kustomer's close time, which the survey is about.
        closed_at_ms: i64,
    },
    /// Kustomer's own close is another one: the survey falls due later.
    Retime {
        /// Kustomer's close time.
        closed_at_ms: i64,
        /// When the survey now falls due.
        send_at_ms: i64,
    },
    /// Not sent, for a reason (a core skip code, or the edge's own).
    Skipped {
        /// Why.
        reason: JobReason,
        /// In words.
        message: String,
    },
    /// Refused for good.
    Failed {
        /// Why.
        reason: Reason,
        /// In words (a server's own, without keys).
        message: String,
    },
    /// Failed for now: tried again, after `wait_ms` at least when the server said.
    Retry {
        /// The server's wait, if it named one.
        wait_ms: Option<i64>,
        /// In words.
        message: String,
        /// Stella may have the survey: the request went out and no answer came back.
        unsure: bool,
    },
    /// Data Return has the survey an earlier attempt sent: recorded as sent, not sent again.
    Found(Box<Record>),
}

impl Attempt {
    /// An attempt that ended so, with no body made.
    pub fn ended(end: AttemptEnd) -> Self {
        Self { end, request: None }
    }

    /// Failed for now, before anything went out.
    pub fn retry(wait_ms: Option<i64>, message: impl Into<String>) -> Self {
        Self::ended(AttemptEnd::Retry {
            wait_ms,
            message: message.into(),
            unsure: false,
        })
    }

    /// Not sent, for `reason`.
    pub fn skipped(reason: impl Into<JobReason>, message: impl Into<String>) -> Self {
        Self::ended(AttemptEnd::Skipped {
            reason: reason.into(),
            message: message.into(),
        })
    }

    /// Refused for good, for `reason`.
    pub fn failed(reason: Reason, message: impl Into<String>) -> Self {
        Self::ended(AttemptEnd::Failed {
            reason,
            message: message.into(),
        })
    }

    /// The same end, with the body that was made.
    pub fn with_request(self, request: Value) -> Self {
        Self {
            request: Some(request),
            ..self
        }
    }
}

/// The leased `job` once its attempt is over at `now_ms`: sent, skipped, failed, retimed, or
/// due again after a back-off (`random` in [0, 1) spreads it) until the policy gives up. A
/// paced attempt is not settled: the job comes back as given, and the scheduler puts back the
/// job as it was before its lease, as if never tried. A survey stopped because its customer was forgotten
/// keeps nothing of them.
pub fn settle(job: Job, attempt: Attempt, now_ms: i64, retry: &RetryPolicy, random: f64) -> Job {
    let Attempt { end, request } = attempt;
    let next = match end {
        AttemptEnd::Paced => return job,
        AttemptEnd::Retime {
            closed_at_ms,
            send_at_ms,
        } => retimed(job, closed_at_ms, send_at_ms, now_ms),
        AttemptEnd::Sent { closed_at_ms } => Job {
            sent_ms: Some(now_ms),
            closed_at_ms,
            ..done(job, JobState::Sent, None, None, request, now_ms)
        },
        AttemptEnd::Found(record) => found(job, *record, now_ms),
        AttemptEnd::Skipped { reason, message } => {
            let (reason, message) = (Some(reason), Some(message));
            done(job, JobState::Skipped, reason, message, request, now_ms)
        }
        AttemptEnd::Failed { reason, message } => {
            let (reason, message) = (Some(reason.into()), Some(message));
            done(job, JobState::Failed, reason, message, request, now_ms)
        }
        AttemptEnd::Retry {
            wait_ms,
            message,
            unsure,
        } => {
            let first = job.first_attempt_ms.unwrap_or(now_ms);
            match retry.next_attempt(job.attempts, first, now_ms, wait_ms, random) {
                Some(at) => Job {
                    due_ms: Some(at),
                    unsure,
                    ..failed_for_now(job, message, request, now_ms)
                },
                None => gave_up(job, &message, request, now_ms),
            }
        }
    };
    if next.reason == Some(Reason::Forgotten.into()) {
        return crate::edge::forget::without_customer(&next, now_ms);
    }
    next
}

/// A job whose attempt is over: nothing due, the reason and words of how it ended, and the
/// body it made (else the one kept before).
fn done(
    job: Job,
    state: JobState,
    reason: Option<JobReason>,
    message: Option<String>,
    request: Option<Value>,
    now_ms: i64,
) -> Job {
    Job {
        state,
        due_ms: None,
        reason,
        message,
        request: request.or(job.request),
        updated_ms: now_ms,
        unsure: false,
        ..job
    }
}

/// Failed for now: due again (the caller says when).
fn failed_for_now(job: Job, message: String, request: Option<Value>, now_ms: i64) -> Job {
    let reason = Some(Reason::TemporaryFailure.into());
    done(
        job,
        JobState::Retrying,
        reason,
        Some(message),
        request,
        now_ms,
    )
}

/// Retried for as long as the policy allows: failed for good, with the last failure's words.
fn gave_up(job: Job, last: &str, request: Option<Value>, now_ms: i64) -> Job {
    let message = format!(
        "Gave up after {} attempts over 24 hours. Last: {last}",
        job.attempts
    );
    let reason = Some(Reason::GaveUp.into());
    done(
        job,
        JobState::Failed,
        reason,
        Some(message),
        request,
        now_ms,
    )
}

/// An earlier attempt reached Stella after all: recorded as sent, with its outcome, never
/// sent twice.
fn found(job: Job, record: Record, now_ms: i64) -> Job {
    let outcome = JobOutcome::from_record(record);
    let message = "An earlier attempt reached Agent Connect although its answer was lost: recorded as sent, not sent again.";
    let reason = Some(Reason::FoundInAgentConnect.into());
    Job {
        sent_ms: Some(outcome.created_ms.unwrap_or(now_ms)),
        outcome: Some(outcome),
        ..done(
            job,
            JobState::Sent,
            reason,
            Some(message.into()),
            None,
            now_ms,
        )
    }
}

/// Scheduled again for Kustomer's own close time, its attempts counted afresh.
fn retimed(job: Job, closed_at_ms: i64, send_at_ms: i64, now_ms: i64) -> Job {
    let iso = |ms: i64| timestamp::format(timestamp::from_millis(ms as f64));
    Job {
        state: JobState::Scheduled,
        closed_at_ms,
        send_at_ms,
        due_ms: Some(send_at_ms),
        attempts: 0,
        first_attempt_ms: None,
        reason: Some(Reason::Retimed.into()),
        message: Some(format!(
            "Kustomer says this conversation was closed at {}: the survey goes out at {}.",
            iso(closed_at_ms),
            iso(send_at_ms)
        )),
        updated_ms: now_ms,
        ..job
    }
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
mod tests;
