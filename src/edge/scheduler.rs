//! One org's surveys: stores closes as jobs, and at due time checks the conversation again
//! and sends to Stella. Runs in the org's Durable Object; the alarm is set to
//! [`Scheduler::next_alarm`] after every call.
//!
//! Exactly once: a job is marked `sending` (a lease) before its attempt and `sent` as soon as
//! Stella answers 2xx; only due `scheduled`/`retrying` jobs and expired leases are picked, so a
//! second alarm or a duplicate event never sends again. The one window left is a crash between
//! Stella's 2xx and the write that records it: the lease then expires and the job is retried
//! (at least once, never lost; Stella suppresses repeat surveys to a customer on its side).

use super::job::{self, Job, JobState, Schedule, Upsert};
use super::kustomer_api::{self, Failure};
use super::{Config, OutRequest, Reply, Store, Transport};
use crate::decision::{self, Decision, SurveyInput};
use crate::settings::{self, ValidationOptions, MASK};
use crate::stella::HttpRequest;
use crate::timestamp;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The clock and the dice, passed in so that the scheduler stays deterministic under test.
pub trait Clock {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> i64;
    /// A number in [0, 1), for retry jitter.
    fn random(&self) -> f64;
}

/// What the gateway asks of an org's scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Command {
    /// Store a close.
    Schedule(Schedule),
    /// The delivery log.
    List {
        /// How many jobs, newest first.
        limit: usize,
    },
    /// Send a failed or skipped survey again, after a fresh check.
    Resend {
        /// The conversation.
        #[serde(rename = "conversationId")]
        conversation_id: String,
    },
}

/// The most jobs one alarm works through before handing back (the alarm is set again at once).
pub const MAX_PER_ALARM: usize = 2000;
/// How many jobs are attempted at once: their calls to Kustomer and Stella overlap.
pub const CONCURRENCY: usize = 32;

/// One org's scheduler.
pub struct Scheduler<S, T, C> {
    /// The org's jobs and cache.
    pub store: S,
    /// HTTP.
    pub transport: T,
    /// Time and randomness.
    pub clock: C,
    /// Retry, cache and lease settings.
    pub config: Config,
}

fn iso(ms: i64) -> String {
    timestamp::format(timestamp::from_millis(ms as f64))
}

/// What one attempt came to.
enum Attempt {
    Sent(Value),
    Skipped {
        code: String,
        message: String,
        request: Option<Value>,
    },
    Failed {
        code: String,
        message: String,
        request: Option<Value>,
    },
    Retry {
        wait_ms: Option<i64>,
        message: String,
        request: Option<Value>,
    },
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// Handles a command from the gateway.
    pub fn command(&self, command: Command) -> Reply {
        let result = match command {
            Command::Schedule(s) => self.schedule(s),
            Command::List { limit } => self.list(limit),
            Command::Resend { conversation_id } => self.resend(&conversation_id),
        };
        result.unwrap_or_else(|e| Reply::error(500, "storage_error", e))
    }

    fn schedule(&self, s: Schedule) -> Result<Reply, String> {
        let now = self.clock.now_ms();
        let existing = self.store.get(&s.conversation_id)?;
        let (upsert, job) = job::upsert(existing.as_ref(), s, now);
        let scheduled = |job: &Job| {
            Reply::json(
                202,
                json!({"status": "scheduled", "conversationId": job.conversation_id, "sendAt": iso(job.send_at_ms)}),
            )
        };
        match (upsert, job, existing) {
            (Upsert::Scheduled, Some(job), _) => {
                self.store.put(&job)?;
                Ok(scheduled(&job))
            }
            (Upsert::Duplicate, _, Some(job)) if !job.state.is_final() => Ok(scheduled(&job)),
            (Upsert::Duplicate, _, Some(job)) => Ok(Reply::json(
                200,
                json!({"status": "ignored", "reason": "duplicate", "message": format!("This close was already handled: the survey is {}.", state_name(job.state))}),
            )),
            _ => Ok(Reply::json(
                200,
                json!({"status": "ignored", "reason": "stale_event", "message": "A later close of this conversation is already scheduled."}),
            )),
        }
    }

    fn list(&self, limit: usize) -> Result<Reply, String> {
        let jobs = self.store.recent(limit.clamp(1, 1000))?;
        let deliveries: Vec<Value> = jobs.iter().map(public_view).collect();
        Ok(Reply::json(200, json!({ "deliveries": deliveries })))
    }

    fn resend(&self, conversation_id: &str) -> Result<Reply, String> {
        let now = self.clock.now_ms();
        let Some(job) = self.store.get(conversation_id)? else {
            return Ok(Reply::error(
                404,
                "not_found",
                "No survey is recorded for this conversation.",
            ));
        };
        if !matches!(job.state, JobState::Failed | JobState::Skipped) {
            let why = format!(
                "Only failed or skipped surveys can be sent again; this one is {}.",
                state_name(job.state)
            );
            return Ok(Reply::error(409, "not_resendable", why));
        }
        let job = Job {
            state: JobState::Scheduled,
            generation: job.generation.wrapping_add(1),
            due_ms: Some(now),
            attempts: 0,
            first_attempt_ms: None,
            reason: Some("resend".into()),
            message: None,
            updated_ms: now,
            ..job
        };
        self.store.put(&job)?;
        Ok(Reply::json(
            202,
            json!({"status": "scheduled", "conversationId": job.conversation_id, "sendAt": iso(now)}),
        ))
    }

    /// When the alarm should fire next.
    pub fn next_alarm(&self) -> Result<Option<i64>, String> {
        self.store.next_due()
    }

    /// Works through every job due now. Returns how many it handled.
    pub async fn run_due(&self) -> Result<usize, String> {
        let started = self.clock.now_ms();
        let mut handled = 0;
        while handled < MAX_PER_ALARM {
            let batch = self
                .store
                .due(started, started - self.config.lease_ms, CONCURRENCY)?;
            if batch.is_empty() {
                break;
            }
            handled += batch.len();
            // Each job is leased before its first await, so the attempts overlap safely; one
            // slow server holds back only its own job.
            let results = join_all(batch.into_iter().map(|job| self.process(job))).await;
            results.into_iter().collect::<Result<Vec<()>, String>>()?;
        }
        Ok(handled)
    }

    async fn process(&self, job: Job) -> Result<(), String> {
        let now = self.clock.now_ms();
        // The lease: if this attempt never finishes (the process died), the job falls due again
        // just after the lease expires, and the alarm is set for then.
        let job = Job {
            state: JobState::Sending,
            attempts: job.attempts.saturating_add(1),
            first_attempt_ms: job.first_attempt_ms.or(Some(now)),
            due_ms: Some(now + self.config.lease_ms + 1),
            updated_ms: now,
            ..job
        };
        self.store.put(&job)?;
        let attempt = self.attempt(&job).await;
        // A close that arrived during the attempt replaced the job: leave the new one alone.
        let current = self.store.get(&job.conversation_id)?;
        if current
            .as_ref()
            .is_some_and(|c| c.generation != job.generation)
        {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let done =
            |state, reason: Option<String>, message: Option<String>, request: Option<Value>| Job {
                state,
                due_ms: None,
                reason,
                message,
                request: request.or_else(|| job.request.clone()),
                updated_ms: now,
                ..job.clone()
            };
        let next = match attempt {
            Attempt::Sent(request) => Job {
                sent_ms: Some(now),
                ..done(JobState::Sent, None, None, Some(request))
            },
            Attempt::Skipped {
                code,
                message,
                request,
            } => done(JobState::Skipped, Some(code), Some(message), request),
            Attempt::Failed {
                code,
                message,
                request,
            } => done(JobState::Failed, Some(code), Some(message), request),
            Attempt::Retry {
                wait_ms,
                message,
                request,
            } => {
                let first = job.first_attempt_ms.unwrap_or(now);
                match self.config.retry.next_attempt(
                    job.attempts,
                    first,
                    now,
                    wait_ms,
                    self.clock.random(),
                ) {
                    Some(at) => Job {
                        due_ms: Some(at),
                        ..done(
                            JobState::Retrying,
                            Some("temporary_failure".into()),
                            Some(message),
                            request,
                        )
                    },
                    None => done(
                        JobState::Failed,
                        Some("gave_up".into()),
                        Some(format!(
                            "Gave up after {} attempts over 24 hours. Last: {message}",
                            job.attempts
                        )),
                        request,
                    ),
                }
            }
        };
        self.store.put(&next)
    }

    /// One attempt: fresh settings check, fresh Kustomer data, the decision, then Stella.
    async fn attempt(&self, job: &Job) -> Attempt {
        let options = ValidationOptions {
            allow_loopback: self.config.allow_loopback,
        };
        let settings = match settings::validate_settings(&job.settings.0, options) {
            Ok(s) => s,
            Err(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                let message = format!(
                    "The app's settings are not valid: check {}.",
                    fields.join(", ")
                );
                return Attempt::Failed {
                    code: "invalid_settings".into(),
                    message,
                    request: None,
                };
            }
        };
        let keys = [
            settings.stella_api_key.expose(),
            settings.kustomer_api_key.expose(),
        ];
        let scrub = |message: String| {
            keys.iter()
                .filter(|k| !k.is_empty())
                .fold(message, |m, k| m.replace(k, MASK))
        };
        let now = self.clock.now_ms();
        let cache: Option<&dyn Store> = Some(&self.store);
        let inputs = match kustomer_api::fetch_inputs(
            &self.transport,
            cache,
            &settings,
            &job.conversation_id,
            now,
            self.config.cache_ms,
        )
        .await
        {
            Ok(inputs) => inputs,
            Err(Failure::Retry { wait_ms, message }) => {
                return Attempt::Retry {
                    wait_ms,
                    message: scrub(message),
                    request: None,
                }
            }
            Err(Failure::Fatal {
                code: "not_found",
                message,
            }) => {
                return Attempt::Skipped {
                    code: "conversation_not_found".into(),
                    message: scrub(message),
                    request: None,
                }
            }
            Err(Failure::Fatal { code, message }) => {
                return Attempt::Failed {
                    code: format!("kustomer_{code}"),
                    message: scrub(message),
                    request: None,
                }
            }
        };
        if !inputs.conversation.is_done() {
            return Attempt::Skipped {
                code: "reopened".into(),
                message: "The conversation was reopened before the survey was due.".into(),
                request: None,
            };
        }
        let input = SurveyInput {
            conversation: &inputs.conversation,
            customer: inputs.customer.as_ref(),
            user: inputs.user.as_ref(),
            tags: &inputs.tags,
        };
        let body = match decision::decide(&settings, input) {
            Decision::Skip(skip) => {
                return Attempt::Skipped {
                    code: skip.code.as_str().into(),
                    message: skip.message,
                    request: None,
                }
            }
            Decision::Send(body) => body,
        };
        let request = HttpRequest::new(&settings, body);
        let shown = serde_json::to_value(&request.body).ok();
        let out = OutRequest {
            method: request.method,
            url: request.url.clone(),
            headers: request
                .headers()
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect(),
            body: Some(request.body_json()),
        };
        let now = self.clock.now_ms();
        match kustomer_api::interpret(self.transport.send(out).await, now, "Stella") {
            Ok(_) => Attempt::Sent(shown.unwrap_or(Value::Null)),
            Err(Failure::Retry { wait_ms, message }) => Attempt::Retry {
                wait_ms,
                message: scrub(message),
                request: shown,
            },
            Err(Failure::Fatal { message, .. }) => Attempt::Failed {
                code: "stella_rejected".into(),
                message: scrub(message),
                request: shown,
            },
        }
    }
}

fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Scheduled => "scheduled",
        JobState::Sending => "being sent",
        JobState::Retrying => "retrying",
        JobState::Sent => "sent",
        JobState::Skipped => "skipped",
        JobState::Failed => "failed",
    }
}

/// A job as the delivery log shows it: no settings, so no key.
pub fn public_view(job: &Job) -> Value {
    // `sending` is an internal lease; the log says `retrying` or `scheduled` for it.
    let state = match job.state {
        JobState::Sending if job.attempts > 1 => JobState::Retrying,
        JobState::Sending => JobState::Scheduled,
        s => s,
    };
    json!({
        "conversationId": job.conversation_id,
        "state": state,
        "reason": job.reason,
        "message": job.message,
        "attempts": job.attempts,
        "closedAt": iso(job.closed_at_ms),
        "sendAt": iso(job.send_at_ms),
        "nextAttemptAt": job.due_ms.map(iso),
        "sentAt": job.sent_ms.map(iso),
        "updatedAt": iso(job.updated_ms),
        "request": job.request,
    })
}
