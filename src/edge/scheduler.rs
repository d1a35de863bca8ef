//! One org's surveys: stores closes as jobs, and at due time checks the conversation again
//! and sends to Stella. Runs in the org's Durable Object; the alarm is set to
//! [`Scheduler::next_alarm`] after every call.
//!
//! Exactly once: a job is marked `sending` (a lease) before its attempt and `sent` as soon as
//! Stella answers 2xx; only due `scheduled`/`retrying` jobs and expired leases are picked, so a
//! second alarm or a duplicate event never sends again. The one window left is a crash between
//! Stella's 2xx and the write that records it: the lease then expires and the job is retried
//! (at least once, never lost; Stella suppresses repeat surveys to a customer on its side).

use super::budget::Budget;
use super::job::{self, Job, JobState, Schedule, StoredSettings, Upsert};
use super::kustomer_api::{self, Failure};
use super::seal::{self, Sealer};
use super::{Config, OrgRecord, Reply, Request, Response, SendError, Store, Transport};
use crate::decision::{self, Decision, Recheck, SurveyInput};
use crate::settings::{self, Settings, ValidationOptions};
use crate::stella;
use crate::timestamp;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};

/// The clock and the dice, passed in so that the scheduler stays deterministic under test.
pub trait Clock {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> i64;
    /// A number in [0, 1), for retry jitter.
    fn random(&self) -> f64;
    /// Fresh random bytes for a nonce (a cryptographic source in production).
    fn nonce(&self) -> [u8; 12];
}

/// What the gateway asks of an org's scheduler. Every command that reads or changes surveys
/// carries `app_secret`: the SHA-256 of the app secret the call presented, checked here
/// against the org's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Command {
    /// Store a close, and the settings it came with (validated by the gateway).
    Schedule {
        /// The close.
        close: Schedule,
        /// Digest of the presented app secret.
        app_secret: String,
        /// The settings from the call's headers, to keep (sealed) for the send.
        settings: StoredSettings,
        /// The one setting storing a close reads: "Survey a conversation again after (days)".
        resurvey_after_days: u32,
    },
    /// The delivery log.
    List {
        /// How many jobs, newest first.
        limit: usize,
        /// Digest of the presented app secret.
        app_secret: String,
    },
    /// Send a failed or skipped survey again, after a fresh check.
    Resend {
        /// The conversation.
        conversation_id: String,
        /// Digest of the presented app secret.
        app_secret: String,
        /// The settings from the call's headers.
        settings: StoredSettings,
    },
    /// Registers, rotates or resets the org's app secret.
    SetSecret {
        /// The org.
        org: String,
        /// Digest of the secret the caller holds now, if any.
        current: Option<String>,
        /// Digest of the new secret.
        new: String,
        /// Whether Kustomer says the caller's key is an org admin's, which may reset a secret
        /// it does not know.
        admin: bool,
    },
}

/// The most jobs one alarm works through before handing back (the alarm is set again at once).
pub const MAX_PER_ALARM: usize = 2000;
/// How many jobs are attempted at once: their calls to Kustomer and Stella overlap.
pub const CONCURRENCY: usize = 32;
/// Kustomer calls per survey in steady state (the conversation and its customer; the agent's
/// email and tag names are cached): what a job is started with, of the org's API budget.
pub const CALLS_PER_SURVEY: u32 = 2;
/// How long a rotated app secret is still accepted: calls already under way with it land.
pub const SECRET_GRACE_MS: i64 = 24 * 3_600_000;

/// What the Durable Object's alarm should become after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmChange {
    /// As it is.
    Keep,
    /// At this instant (ms).
    Set(i64),
    /// None: nothing is pending.
    Delete,
}

/// The alarm as this instance last set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Armed {
    /// Not known (a new instance, or an alarm that just fired): computed from the store.
    Unknown,
    /// Set to this instant, or not set; never later than the earliest pending job.
    At(Option<i64>),
}

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
    /// Seals and opens the org's stored settings.
    pub sealer: Sealer,
    /// The alarm as last set, so that a close due after it sets nothing.
    armed: Cell<Armed>,
    /// The earliest due time a call added since the alarm was last set.
    added_due: Cell<Option<i64>>,
    /// The org's Kustomer API budget as this instance knows it.
    budget: RefCell<Budget>,
    /// Until when due jobs wait for the budget.
    paced_until: Cell<Option<i64>>,
}

fn iso(ms: i64) -> String {
    timestamp::format(timestamp::from_millis(ms as f64))
}

/// What one attempt came to.
enum Attempt {
    /// Stopped before anything was sent: the org's API budget has no room for now.
    Paced,
    Sent {
        request: Value,
        /// Kustomer's close time, which the survey is about.
        closed_at_ms: i64,
    },
    /// Kustomer's own close is another one: the survey falls due later.
    Retime { closed_at_ms: i64, send_at_ms: i64 },
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

/// The scheduler's Kustomer calls, counted against the org's API budget: a call the budget has
/// no room for is not made, and every answer's budget headers are read.
struct Metered<'a, T, C> {
    inner: &'a T,
    budget: &'a RefCell<Budget>,
    clock: &'a C,
    share: u32,
}

impl<T: Transport, C: Clock> Transport for Metered<'_, T, C> {
    async fn send(&self, request: Request) -> Result<Response, SendError> {
        let now = self.clock.now_ms();
        {
            let mut budget = self.budget.borrow_mut();
            if budget.allowance(self.share, now) == 0 {
                return Err(SendError::Paced);
            }
            budget.spend(now);
        }
        let answer = self.inner.send(request).await;
        let now = self.clock.now_ms();
        self.budget.borrow_mut().settle(answer.as_ref().ok(), now);
        answer
    }
}

/// Whether a call may register the org's app secret when it has none: only a close, the call
/// that makes the org's first survey.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Register {
    Yes,
    No,
}

/// The org's settings as an attempt finds them.
enum OrgSettings {
    Ready(Settings),
    /// Stored but invalid: the survey fails with this message.
    Invalid(String),
    /// Not stored, or not readable: the survey waits for the next authenticated call.
    Missing(String),
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// A scheduler over an org's store; its alarm is unknown until computed.
    pub fn new(store: S, transport: T, clock: C, config: Config, sealer: Sealer) -> Self {
        Self {
            store,
            transport,
            clock,
            config,
            sealer,
            armed: Cell::new(Armed::Unknown),
            added_due: Cell::new(None),
            budget: RefCell::default(),
            paced_until: Cell::new(None),
        }
    }

    /// Handles a command from the gateway.
    pub fn command(&self, command: Command) -> Reply {
        let result = match command {
            Command::Schedule {
                close,
                app_secret,
                settings,
                resurvey_after_days,
            } => self.authorized(Register::Yes, &app_secret, |record| {
                self.schedule(record, close, settings, resurvey_after_days)
            }),
            // An org without an app secret has had no survey: an empty log, and no secret
            // registered by a mere reader.
            Command::List { limit, app_secret } => match self.store.org() {
                Ok(record) if record.secret_digest.is_none() => self.list(0),
                _ => self.authorized(Register::No, &app_secret, |_| self.list(limit)),
            },
            Command::Resend {
                conversation_id,
                app_secret,
                settings,
            } => self.authorized(Register::No, &app_secret, |record| {
                self.resend(record, &conversation_id, settings)
            }),
            Command::SetSecret {
                org,
                current,
                new,
                admin,
            } => self.set_secret(&org, current.as_deref(), new, admin),
        };
        result.unwrap_or_else(|e| Reply::error(500, "storage_error", e))
    }

    /// Runs `then` if `presented` is the digest of the org's app secret (or of the one it
    /// replaced, within [`SECRET_GRACE_MS`]). The org's first close registers its secret.
    fn authorized(
        &self,
        register: Register,
        presented: &str,
        then: impl FnOnce(OrgRecord) -> Result<Reply, String>,
    ) -> Result<Reply, String> {
        let mut record = self.store.org()?;
        let now = self.clock.now_ms();
        let accepted = match &record.secret_digest {
            None if register == Register::Yes => {
                record.secret_digest = Some(presented.to_owned());
                self.store.put_org(&record)?;
                true
            }
            None => false,
            Some(current) => {
                seal::same_digest(current, presented)
                    || (record.previous_until_ms.is_some_and(|until| now < until)
                        && record
                            .previous_secret_digest
                            .as_deref()
                            .is_some_and(|p| seal::same_digest(p, presented)))
            }
        };
        if !accepted {
            return Ok(Reply::error(
                401,
                "app_secret_rejected",
                "This call does not carry the org's app secret: only the app's own workflow and pages may make it.",
            ));
        }
        then(record)
    }

    fn set_secret(
        &self,
        org: &str,
        current: Option<&str>,
        new: String,
        admin: bool,
    ) -> Result<Reply, String> {
        let mut record = self.store.org()?;
        let now = self.clock.now_ms();
        let (status, what) = match &record.secret_digest {
            // Otherwise the org's first close registers it: a bare key is no claim to an org.
            None if admin => (201, "registered"),
            Some(old) if current.is_some_and(|c| seal::same_digest(old, c)) => {
                record.previous_secret_digest = Some(old.clone());
                record.previous_until_ms = Some(now + SECRET_GRACE_MS);
                (200, "rotated")
            }
            Some(_) if admin => {
                record.previous_secret_digest = None;
                record.previous_until_ms = None;
                (200, "reset")
            }
            _ => {
                return Ok(Reply::error(
                    401,
                    "app_secret_rejected",
                    "Send the org's current app secret to replace it, or use a Kustomer API key with an org admin role to set or reset it.",
                ))
            }
        };
        record.secret_digest = Some(new);
        record.org.get_or_insert_with(|| org.to_owned());
        self.store.put_org(&record)?;
        Ok(Reply::json(
            status,
            json!({"status": what, "previousAcceptedUntil": record.previous_until_ms.filter(|_| what == "rotated").map(iso)}),
        ))
    }

    fn validation(&self) -> ValidationOptions {
        ValidationOptions {
            allow_loopback: self.config.allow_loopback,
        }
    }

    fn schedule(
        &self,
        mut record: OrgRecord,
        close: Schedule,
        raw: StoredSettings,
        resurvey_after_days: u32,
    ) -> Result<Reply, String> {
        let org = close.org.clone();
        let now = self.clock.now_ms();
        let scheduled = |job: &Job| {
            Reply::json(
                202,
                json!({"status": "scheduled", "conversationId": job.conversation_id, "sendAt": iso(job.send_at_ms)}),
            )
        };
        // Most closes are a conversation's first: one INSERT that writes only when no job
        // exists. A conversation seen before takes the full rules of [`job::upsert`].
        let first = job::first(close.clone(), now);
        let (reply, pending) = if self.store.insert_new(&first)? {
            self.added(first.send_at_ms);
            (scheduled(&first), true)
        } else {
            let existing = self.store.get(&close.conversation_id)?;
            let reply = match (
                job::upsert(existing.as_ref(), close, resurvey_after_days, now),
                existing,
            ) {
                (Upsert::Scheduled(job), _) => {
                    self.store.put(&job)?;
                    self.added(job.send_at_ms);
                    scheduled(&job)
                }
                (Upsert::Duplicate, Some(job)) if !job.state.is_final() => scheduled(&job),
                (Upsert::Duplicate, Some(job)) => ignored(
                    "duplicate",
                    &format!(
                        "This close was already handled: the survey is {}.",
                        state_name(job.state)
                    ),
                ),
                (Upsert::AlreadySurveyed(job, skip), _) => {
                    self.store.put(&job)?;
                    self.armed.set(Armed::Unknown); // a finished job: its retention alarm
                    ignored(skip.code.as_str(), &skip.message)
                }
                _ => ignored(
                    "stale_event",
                    "A later close of this conversation is already scheduled.",
                ),
            };
            (reply, self.store.next_due()?.is_some())
        };
        // The latest settings serve every pending job of the org (a rotated key included).
        if pending {
            self.keep_settings(&mut record, &org, &raw)?;
        }
        Ok(reply)
    }

    /// Notes a job due at `due_ms`, for [`Self::alarm_change`].
    fn added(&self, due_ms: i64) {
        let earliest = self.added_due.get().map_or(due_ms, |d| d.min(due_ms));
        self.added_due.set(Some(earliest));
    }

    /// What the alarm should become after the calls since the last answer: a close due after
    /// the alarm already set changes nothing (no storage write); an unknown alarm is computed
    /// from the store. `not_before` holds a retry back after a failed run.
    pub fn alarm_change(&self, not_before: i64) -> Result<AlarmChange, String> {
        let added = self.added_due.take();
        let next = match (self.armed.get(), added) {
            (Armed::At(_), None) => return Ok(AlarmChange::Keep),
            (Armed::At(Some(armed)), Some(due)) if armed <= due => return Ok(AlarmChange::Keep),
            (Armed::At(_), Some(due)) => Some(due),
            (Armed::Unknown, _) => self.next_alarm()?,
        };
        let next = next.map(|t| t.max(not_before));
        self.armed.set(Armed::At(next));
        Ok(next.map_or(AlarmChange::Delete, AlarmChange::Set))
    }

    /// Seals and stores `raw` as the org's settings, unless the same are stored already.
    fn keep_settings(
        &self,
        record: &mut OrgRecord,
        org: &str,
        raw: &StoredSettings,
    ) -> Result<(), String> {
        let text = serde_json::to_string(&raw.0).map_err(|e| e.to_string())?;
        let digest = self.sealer.fingerprint(&format!("{org}\n{text}"));
        let unchanged = record.settings_digest.as_deref() == Some(&digest);
        let sealed_now =
            (record.sealed_settings.as_deref()).is_some_and(|s| self.sealer.is_current(s));
        if unchanged && sealed_now {
            return Ok(());
        }
        record.sealed_settings = Some(self.sealer.seal(&text, org, self.clock.nonce()));
        record.settings_digest = Some(digest);
        record.org = Some(org.to_owned());
        self.store.put_org(record)
    }

    fn list(&self, limit: usize) -> Result<Reply, String> {
        let jobs = match limit {
            0 => vec![],
            n => self.store.recent(n.min(1000))?,
        };
        let deliveries: Vec<Value> = jobs.iter().map(public_view).collect();
        Ok(Reply::json(
            200,
            json!({ "deliveries": deliveries, "retentionDays": self.config.retention_days }),
        ))
    }

    fn resend(
        &self,
        mut record: OrgRecord,
        conversation_id: &str,
        raw: StoredSettings,
    ) -> Result<Reply, String> {
        if let Err(fields) = settings::validate_settings(&raw.0, self.validation()) {
            let error = crate::InputError::invalid_settings(fields);
            return Ok(Reply::json(400, json!({ "error": error })));
        }
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
        let org = job.org.clone();
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
        self.added(now);
        self.keep_settings(&mut record, &org, &raw)?;
        Ok(Reply::json(
            202,
            json!({"status": "scheduled", "conversationId": job.conversation_id, "sendAt": iso(now)}),
        ))
    }

    /// When the alarm should fire next: the earliest pending job, or the day the oldest
    /// finished one leaves the log.
    pub fn next_alarm(&self) -> Result<Option<i64>, String> {
        let prune = self
            .store
            .oldest_final()?
            .map(|t| t.saturating_add(self.config.retention_ms()));
        // Due jobs waiting for the org's API budget wait for it: no alarm before then.
        let due = match (self.store.next_due()?, self.paced_until.get()) {
            (Some(due), Some(paced)) => Some(due.max(paced)),
            (due, _) => due,
        };
        Ok(match (due, prune) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The org's settings for this run, opened once.
    fn org_settings(&self) -> Result<OrgSettings, String> {
        let record = self.store.org()?;
        let (Some(sealed), Some(org)) = (&record.sealed_settings, &record.org) else {
            return Ok(OrgSettings::Missing(
                "No settings are stored for this org; they come with the next close.".into(),
            ));
        };
        let raw = match self.sealer.open(sealed, org) {
            Ok(text) => serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            Err(why) => {
                // Forget its fingerprint, so that the next authenticated call seals its settings
                // afresh instead of finding "the same settings" kept. The seal itself stays: it
                // opens again if the deployment's previous key is configured again.
                self.store.put_org(&OrgRecord {
                    settings_digest: None,
                    ..record.clone()
                })?;
                return Ok(OrgSettings::Missing(format!(
                    "The org's settings cannot be read ({why}); they come again with the next close."
                )));
            }
        };
        Ok(match settings::validate_settings(&raw, self.validation()) {
            Ok(s) => OrgSettings::Ready(s),
            Err(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                OrgSettings::Invalid(format!(
                    "The app's settings are not valid: check {}.",
                    fields.join(", ")
                ))
            }
        })
    }

    /// Works through every job due now, then keeps house: finished jobs past the retention
    /// period go, and the org's keys go when no job needs them. Returns how many jobs it
    /// handled.
    pub async fn run_due(&self) -> Result<usize, String> {
        // The alarm that runs this is spent, and jobs change: computed afresh afterwards.
        self.armed.set(Armed::Unknown);
        let started = self.clock.now_ms();
        let settings = self.org_settings()?;
        let share = match &settings {
            OrgSettings::Ready(s) => s.kustomer_budget_share,
            _ => settings::DEFAULT_KUSTOMER_BUDGET_SHARE,
        };
        self.paced_until.set(None);
        let mut handled = 0;
        while handled < MAX_PER_ALARM {
            // As many jobs as the org's API budget has room for now; the rest wait for the
            // next window, still due and with no attempt counted.
            let now = self.clock.now_ms();
            let room = self.budget.borrow_mut().allowance(share, now) / CALLS_PER_SURVEY;
            let lease_before = started - self.config.lease_ms;
            let batch = self
                .store
                .due(started, lease_before, CONCURRENCY.min(room as usize))?;
            if batch.is_empty() {
                if room == 0 && !self.store.due(started, lease_before, 1)?.is_empty() {
                    self.paced_until
                        .set(Some(self.budget.borrow().next_window(now)));
                }
                break;
            }
            handled += batch.len();
            // Each job is leased before its first await, so the attempts overlap safely; one
            // slow server holds back only its own job.
            let results = join_all(
                batch
                    .into_iter()
                    .map(|job| self.process(job, &settings, share)),
            )
            .await;
            results.into_iter().collect::<Result<Vec<()>, String>>()?;
        }
        let now = self.clock.now_ms();
        self.store
            .prune(now.saturating_sub(self.config.retention_ms()), now)?;
        if self.store.next_due()?.is_none() {
            // Read again: a close may have stored newer settings (and a job) meanwhile.
            let record = self.store.org()?;
            if record.sealed_settings.is_some() && self.store.next_due()?.is_none() {
                self.store.put_org(&OrgRecord {
                    sealed_settings: None,
                    settings_digest: None,
                    ..record
                })?;
            }
        }
        Ok(handled)
    }

    async fn process(&self, job: Job, settings: &OrgSettings, share: u32) -> Result<(), String> {
        let now = self.clock.now_ms();
        let waiting = job.clone();
        // The lease: if this attempt never finishes (the process died), the job falls due again
        // just after the lease expires, and the alarm is set for then.
        let job = Job {
            state: JobState::Sending,
            attempts: job.attempts.saturating_add(1),
            first_attempt_ms: job.first_attempt_ms.or(Some(now)),
            due_ms: Some(now.saturating_add(self.config.lease_ms).saturating_add(1)),
            updated_ms: now,
            ..job
        };
        self.store.put(&job)?;
        let attempt = self.attempt(&job, settings, share).await;
        // A close that arrived during the attempt replaced the job: leave the new one alone,
        // but if this attempt's survey went out, the new one must know, or the resurvey rule
        // would let a second survey go out for the new close.
        let current = self.store.get(&job.conversation_id)?;
        if let Some(current) = current.filter(|c| c.generation != job.generation) {
            if matches!(attempt, Attempt::Sent { .. }) {
                let now = self.clock.now_ms();
                self.store.put(&Job {
                    previous_sent_ms: Some(now),
                    updated_ms: now,
                    ..current
                })?;
            }
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
            // The budget ran out mid-way: as it was before, nothing sent and no attempt spent.
            Attempt::Paced => Job {
                updated_ms: now,
                ..waiting
            },
            Attempt::Retime {
                closed_at_ms,
                send_at_ms,
            } => Job {
                state: JobState::Scheduled,
                closed_at_ms,
                send_at_ms,
                due_ms: Some(send_at_ms),
                attempts: 0,
                first_attempt_ms: None,
                reason: Some("retimed".into()),
                message: Some(format!(
                    "Kustomer says this conversation was closed at {}: the survey goes out at {}.",
                    iso(closed_at_ms),
                    iso(send_at_ms)
                )),
                updated_ms: now,
                ..job.clone()
            },
            Attempt::Sent {
                request,
                closed_at_ms,
            } => Job {
                sent_ms: Some(now),
                closed_at_ms,
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

    /// One attempt: the org's settings, fresh Kustomer data, the rechecks, the decision, then
    /// Stella.
    async fn attempt(&self, job: &Job, settings: &OrgSettings, share: u32) -> Attempt {
        let settings = match settings {
            OrgSettings::Ready(s) => s,
            OrgSettings::Invalid(message) => {
                return Attempt::Failed {
                    code: "invalid_settings".into(),
                    message: message.clone(),
                    request: None,
                }
            }
            OrgSettings::Missing(message) => {
                return Attempt::Retry {
                    wait_ms: None,
                    message: message.clone(),
                    request: None,
                }
            }
        };
        let now = self.clock.now_ms();
        let cache: Option<&dyn Store> = Some(&self.store);
        let metered = Metered {
            inner: &self.transport,
            budget: &self.budget,
            clock: &self.clock,
            share,
        };
        let inputs = match kustomer_api::fetch_inputs(
            &metered,
            cache,
            settings,
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
                    message,
                    request: None,
                }
            }
            Err(Failure::Paced) => return Attempt::Paced,
            Err(Failure::Fatal {
                code: "not_found",
                message,
            }) => {
                return Attempt::Skipped {
                    code: "conversation_not_found".into(),
                    message,
                    request: None,
                }
            }
            Err(Failure::Fatal { code, message }) => {
                let code = if code.starts_with("request_") {
                    code.to_owned()
                } else {
                    format!("kustomer_{code}")
                };
                return Attempt::Failed {
                    code,
                    message,
                    request: None,
                };
            }
        };
        let at = |ms: i64| timestamp::from_millis(ms as f64);
        let recheck = decision::recheck(
            settings,
            &inputs.conversation,
            at(job.closed_at_ms),
            job.last_surveyed_ms().map(at),
            at(self.clock.now_ms()),
        );
        let closed_at_ms = match recheck {
            Recheck::Send { closed_at } => timestamp::to_millis(closed_at),
            Recheck::Retime { closed_at, send_at } => {
                return Attempt::Retime {
                    closed_at_ms: timestamp::to_millis(closed_at),
                    send_at_ms: timestamp::to_millis(send_at),
                }
            }
            Recheck::Skip(skip) => {
                return Attempt::Skipped {
                    code: skip.code.as_str().into(),
                    message: skip.message,
                    request: None,
                }
            }
        };
        let input = SurveyInput {
            conversation: &inputs.conversation,
            customer: inputs.customer.as_ref(),
            user: inputs.user.as_ref(),
            tags: &inputs.tags,
        };
        let body = match decision::decide(settings, input) {
            Decision::Skip(skip) => {
                return Attempt::Skipped {
                    code: skip.code.as_str().into(),
                    message: skip.message,
                    request: None,
                }
            }
            Decision::Send(body) => body,
        };
        let shown = serde_json::to_value(&body).ok();
        let request = stella::survey_request(settings, &body);
        let now = self.clock.now_ms();
        let keys = [settings.stella_api_key.expose()];
        match kustomer_api::interpret(self.transport.send(request).await, now, "Stella", &keys) {
            Ok(_) => Attempt::Sent {
                request: shown.unwrap_or(Value::Null),
                closed_at_ms,
            },
            Err(Failure::Retry { wait_ms, message }) => Attempt::Retry {
                wait_ms,
                message,
                request: shown,
            },
            // Not reached: Stella's calls are not metered.
            Err(Failure::Paced) => Attempt::Paced,
            Err(Failure::Fatal { code, message }) => Attempt::Failed {
                code: if code.starts_with("request_") {
                    code.into()
                } else {
                    "stella_rejected".into()
                },
                message,
                request: shown,
            },
        }
    }
}

fn ignored(reason: &str, message: &str) -> Reply {
    Reply::json(
        200,
        json!({"status": "ignored", "reason": reason, "message": message}),
    )
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
