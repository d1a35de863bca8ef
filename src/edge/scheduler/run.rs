//! An alarm's run: the jobs due now, each checked against Kustomer's data and sent to Stella,
//! as many at once as the org's Kustomer API budget has room for.

use super::outcomes::Lookup;
use super::{iso, Armed, Clock, Scheduler, CONCURRENCY, MAX_PER_ALARM};
use crate::decision::{self, Decision, Recheck};
use crate::edge::budget::{Budget, CALLS_PER_SURVEY, MAX_CALLS_PER_SURVEY};
use crate::edge::forget::CustomerKeys;
use crate::edge::job::{Job, JobOutcome, JobState};
use crate::edge::kustomer_api::{self, Failure, FetchError};
use crate::edge::outcome::Reason;
use crate::edge::record_check::SentTo;
use crate::edge::subrequests::PER_JOB;
use crate::edge::{OrgRecord, Request, Response, SendError, Store, Transport};
use crate::settings::{self, Settings};
use crate::stella;
use crate::survey_outcome::Record;
use crate::timestamp;
use futures_util::future::join_all;
use serde_json::Value;
use std::cell::RefCell;

/// How long an unsure survey waits for Data Return to answer before it goes out regardless.
const LOOKUP_PATIENCE_MS: i64 = 3_600_000;
/// Where an instance leaves, for the next one, until when the org's API budget has no room.
const BUDGET_PAUSE_KEY: &str = "budget:paused-until";

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
        /// A core skip code, or [`Reason::ConversationNotFound`].
        code: &'static str,
        message: String,
        request: Option<Value>,
    },
    Failed {
        code: Reason,
        message: String,
        request: Option<Value>,
    },
    Retry {
        wait_ms: Option<i64>,
        message: String,
        request: Option<Value>,
        /// Stella may have the survey: the request went out and no answer came back.
        unsure: bool,
    },
    /// Data Return has the survey an earlier attempt sent: recorded as sent, not sent again.
    Found(Box<Record>),
}

/// The scheduler's Kustomer calls, counted against the org's API budget: a call the budget has
/// no room for is not made, and every answer's budget headers are read.
pub(super) struct Metered<'a, T, C> {
    pub(super) inner: &'a T,
    pub(super) budget: &'a RefCell<Budget>,
    pub(super) clock: &'a C,
    pub(super) share: u32,
}

impl<T: Transport, C: Clock> Transport for Metered<'_, T, C> {
    async fn send(&self, request: Request) -> Result<Response, SendError> {
        let now = self.clock.now_ms();
        let spent = {
            let mut budget = self.budget.borrow_mut();
            if budget.allowance(self.share, now) == 0 {
                return Err(SendError::Paced);
            }
            budget.spend(now)
        };
        let answer = self.inner.send(request).await;
        let settled = self.clock.now_ms();
        self.budget
            .borrow_mut()
            .settle(spent, answer.as_ref().ok(), settled);
        answer
    }
}

/// The org's settings as an attempt finds them.
enum OrgSettings {
    Ready(Box<Settings>),
    /// Stored but invalid: the survey fails with this message.
    Invalid(String),
    /// Not stored, or not readable: the survey waits for the next authenticated call.
    Missing(String),
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
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
            Ok(s) => OrgSettings::Ready(Box::new(s)),
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
        // The alarm that runs this is spent, and jobs change: it is computed afresh afterwards,
        // whatever a call that came in meanwhile set it to.
        self.armed.set(Armed::Unknown);
        self.run_calls.restart(); // a new invocation: Cloudflare counts its calls afresh
        let result = self.run_due_jobs().await;
        self.armed.set(Armed::Unknown);
        result
    }

    async fn run_due_jobs(&self) -> Result<usize, String> {
        let started = self.clock.now_ms();
        let settings = self.org_settings()?;
        let ready = match &settings {
            OrgSettings::Ready(s) => Some(s.as_ref()),
            _ => None,
        };
        self.release_held(ready)?;
        let share = match &settings {
            OrgSettings::Ready(s) => s.kustomer_budget_share,
            _ => settings::DEFAULT_KUSTOMER_BUDGET_SHARE,
        };
        self.paced_until.set(None);
        self.resume_budget(started)?;
        let mut handled = 0;
        while handled < MAX_PER_ALARM {
            // As many jobs as the org's API budget has room for now; the rest wait for the
            // next window, still due and with no attempt counted.
            // A job is started with room for all of its calls: two when the agent's email, the
            // tag names and the brand name are cached, five when a job of the last batch found
            // them missing.
            let now = self.clock.now_ms();
            let calls = if self.cold.get() {
                MAX_CALLS_PER_SURVEY
            } else {
                CALLS_PER_SURVEY
            };
            let allowed = self.budget.borrow_mut().allowance(share, now);
            // Never none while a warm job would fit: its calls' answers are what move the
            // budget on (a window whose end no answer has said yet).
            let room = match allowed / calls {
                0 => allowed / CALLS_PER_SURVEY,
                n => n,
            };
            // And only jobs whose every call fits in what is left of the run's outbound calls
            // (Cloudflare's cap per invocation): the rest stay due, for the next run, at once.
            let whole = self.run_calls.jobs(0);
            let lease_before = started - self.config.lease_ms;
            let mut batch = (self.store).due(
                started,
                lease_before,
                CONCURRENCY.min(room as usize).min(whole),
            )?;
            // A batch with an attempt whose fate is unknown reads Data Return first: at least
            // one page of it fits too.
            let looks_up = ready.is_some_and(|s| s.stella_api_secret.is_some())
                && batch.iter().any(Job::is_unsure);
            if looks_up {
                batch.truncate(self.run_calls.jobs(1));
            }
            if batch.is_empty() {
                if room == 0 && !self.store.due(started, lease_before, 1)?.is_empty() {
                    self.pause_for_budget(now)?;
                }
                break;
            }
            handled += batch.len();
            // Attempts whose fate is unknown are first looked up in Data Return, all at once,
            // within the calls the batch leaves.
            let reserved = batch.len() as u32 * PER_JOB;
            let lookup = match &settings {
                OrgSettings::Ready(s) => self.look_up_unsure(&batch, s, reserved).await,
                _ => Lookup::None,
            };
            // Each job is leased before its first await, so the attempts overlap safely; one
            // slow server holds back only its own job.
            let results = join_all(
                batch
                    .into_iter()
                    .map(|job| self.process(job, &settings, share, &lookup)),
            )
            .await;
            let paced = results.iter().any(|r| matches!(r, Ok(true)));
            self.cold.set(paced);
            results.into_iter().collect::<Result<Vec<bool>, String>>()?;
        }
        match &settings {
            OrgSettings::Ready(s) => self.follow_outcomes(s, share).await?,
            _ => self.defer_follow()?,
        }
        if let OrgSettings::Ready(s) = &settings {
            self.sweep_deleted(s, share).await?; // customers deleted in Kustomer: once a day
        }
        let now = self.clock.now_ms();
        self.store
            .prune(now.saturating_sub(self.config.retention_ms()), now)?;
        self.keep_storage(now)?;
        // Kept while a job is pending, or while outcomes are read back or wait to be written.
        if self.store.next_due()?.is_none() && self.next_follow()?.is_none() {
            // Read again: a close may have stored newer settings (and a job) meanwhile.
            let record = self.store.org()?;
            // The keyed fingerprint stays: it reveals nothing without the deployment's key, and
            // it lets a resend bring back exactly these settings (`Scheduler::adopt_settings`).
            if record.sealed_settings.is_some() && self.store.next_due()?.is_none() {
                self.store.put_org(&OrgRecord {
                    sealed_settings: None,
                    ..record
                })?;
            }
        }
        Ok(handled)
    }

    /// The org's API budget has no room now: what waits for it waits until the window turns,
    /// and so does the next instance, if this one stops meanwhile.
    pub(super) fn pause_for_budget(&self, now: i64) -> Result<(), String> {
        let until = self.budget.borrow().next_window(now);
        self.paced_until.set(Some(until));
        self.store
            .cache_put(BUDGET_PAUSE_KEY, &until.to_string(), until)
    }

    /// A new instance's first run: the budget waits out the window the one before used up.
    fn resume_budget(&self, now: i64) -> Result<(), String> {
        if !self.budget.borrow().is_fresh() {
            return Ok(());
        }
        let until = self.store.cache_get(BUDGET_PAUSE_KEY, now)?;
        if let Some(until) = until.and_then(|t| t.parse::<i64>().ok()) {
            self.budget.borrow_mut().resume(until);
        }
        Ok(())
    }

    /// One job's attempt; `true` when the budget stopped it before anything was sent.
    async fn process(
        &self,
        job: Job,
        settings: &OrgSettings,
        share: u32,
        lookup: &Lookup,
    ) -> Result<bool, String> {
        // The batch may have waited on Data Return: a close or resend that came meanwhile
        // replaced the job, and the new one is left to its own due time.
        if !matches!(lookup, Lookup::None)
            && self.store.get(&job.conversation_id)?.as_ref() != Some(&job)
        {
            return Ok(false);
        }
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
        let unsure = waiting.is_unsure();
        // A lookup that keeps failing holds a survey back at most this long: then it goes out
        // as it would without the secret (at least once, never lost).
        let patient = now - job.first_attempt_ms.unwrap_or(now) < LOOKUP_PATIENCE_MS;
        let attempt = match lookup {
            Lookup::Found(found) if unsure => match found.get(&job.conversation_id) {
                Some(record) => Attempt::Found(Box::new(record.clone())),
                None => self.attempt(&job, settings, share).await,
            },
            Lookup::Failed { wait_ms, message } if unsure && patient => Attempt::Retry {
                wait_ms: *wait_ms,
                message: message.clone(),
                request: None,
                unsure: true,
            },
            _ => self.attempt(&job, settings, share).await,
        };
        // A close that arrived during the attempt replaced the job: leave the new one alone,
        // but if this attempt's survey went out, the new one must know, or the resurvey rule
        // would let a second survey go out for the new close.
        let current = self.store.get(&job.conversation_id)?;
        // Who the attempt's request went to, kept by the attempt just before it was sent.
        let sent_to = (current.as_ref()).and_then(|c| c.sent_to.clone());
        let customer = (current.as_ref()).and_then(|c| c.customer.clone());
        if let Some(current) = current.filter(|c| c.generation != job.generation) {
            if matches!(attempt, Attempt::Sent { .. } | Attempt::Found(_)) {
                let now = self.clock.now_ms();
                self.store.put(&Job {
                    previous_sent_ms: Some(now),
                    updated_ms: now,
                    ..current
                })?;
            }
            return Ok(false);
        }
        let job = Job {
            sent_to: sent_to.or(job.sent_to),
            customer: customer.or(job.customer),
            ..job
        };
        let now = self.clock.now_ms();
        let done =
            |state, reason: Option<String>, message: Option<String>, request: Option<Value>| Job {
                state,
                due_ms: None,
                reason,
                message,
                request: request.or_else(|| job.request.clone()),
                updated_ms: now,
                unsure: false,
                ..job.clone()
            };
        let paced = matches!(attempt, Attempt::Paced);
        let next = match attempt {
            // The budget ran out mid-way: as it was before, nothing sent and no attempt spent.
            // (An expired lease stays expired: the job is picked again once there is room.)
            Attempt::Paced => waiting,
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
                reason: Some(Reason::Retimed.as_str().into()),
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
            // An earlier attempt reached Stella after all: recorded, never sent twice.
            Attempt::Found(record) => {
                let outcome = JobOutcome::from_record(*record);
                Job {
                    sent_ms: Some(outcome.created_ms.unwrap_or(now)),
                    outcome: Some(outcome),
                    ..done(
                        JobState::Sent,
                        Some(Reason::FoundInAgentConnect.as_str().into()),
                        Some("An earlier attempt reached Agent Connect although its answer was lost: recorded as sent, not sent again.".into()),
                        None,
                    )
                }
            }
            Attempt::Skipped {
                code,
                message,
                request,
            } => done(JobState::Skipped, Some(code.into()), Some(message), request),
            Attempt::Failed {
                code,
                message,
                request,
            } => done(
                JobState::Failed,
                Some(code.as_str().into()),
                Some(message),
                request,
            ),
            Attempt::Retry {
                wait_ms,
                message,
                request,
                unsure,
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
                        unsure,
                        ..done(
                            JobState::Retrying,
                            Some(Reason::TemporaryFailure.as_str().into()),
                            Some(message),
                            request,
                        )
                    },
                    None => done(
                        JobState::Failed,
                        Some(Reason::GaveUp.as_str().into()),
                        Some(format!(
                            "Gave up after {} attempts over 24 hours. Last: {message}",
                            job.attempts
                        )),
                        request,
                    ),
                }
            }
        };
        // A survey stopped because its customer was forgotten keeps nothing of them.
        let next = if next.reason.as_deref() == Some(Reason::Forgotten.as_str()) {
            crate::edge::forget::without_customer(&next, now)
        } else {
            next
        };
        self.store.put(&next)?;
        Ok(paced)
    }

    /// Keeps who `body` goes to on the leased `job`, as keyed digests, before it is sent: Data
    /// Return's records are matched against them, after a crash too. Not onto a job a close
    /// replaced meanwhile (the attempt goes on, as before; the new job is left alone).
    /// Also keeps the customer's keys for the forget index ([`CustomerKeys`]).
    fn keep_sent_to(
        &self,
        job: &Job,
        body: &stella::FeedbackRequest,
        customer_id: Option<&str>,
    ) -> Result<(), String> {
        let sent_to = Some(SentTo::of(&self.sealer, job, body));
        let Some(current) = self.store.get(&job.conversation_id)? else {
            return Ok(());
        };
        let email = Some(body.customer.email.as_str());
        let customer = CustomerKeys::of(&self.sealer, &job.org, customer_id, email).map(|k| {
            let id =
                k.id.or_else(|| current.customer.as_ref().and_then(|c| c.id.clone()));
            CustomerKeys { id, ..k }
        });
        if current.generation != job.generation
            || (current.sent_to == sent_to && current.customer == customer)
        {
            return Ok(());
        }
        self.store.put(&Job {
            sent_to,
            customer,
            ..current
        })
    }

    /// One attempt: the org's settings, fresh Kustomer data, the rechecks, the decision, then
    /// Stella.
    async fn attempt(&self, job: &Job, settings: &OrgSettings, share: u32) -> Attempt {
        let settings = match settings {
            OrgSettings::Ready(s) => s,
            OrgSettings::Invalid(message) => {
                return Attempt::Failed {
                    code: Reason::InvalidSettings,
                    message: message.clone(),
                    request: None,
                }
            }
            OrgSettings::Missing(message) => {
                return Attempt::Retry {
                    wait_ms: None,
                    message: message.clone(),
                    request: None,
                    unsure: false,
                }
            }
        };
        let now = self.clock.now_ms();
        let cache: Option<&dyn Store> = Some(&self.store);
        let counted = self.run_transport();
        let metered = self.metered(&counted, share);
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
                    unsure: false,
                }
            }
            Err(Failure::Paced) => return Attempt::Paced,
            Err(Failure::Fatal {
                code: FetchError::NotFound,
                message,
            }) => {
                return Attempt::Skipped {
                    code: Reason::ConversationNotFound.as_str(),
                    message,
                    request: None,
                }
            }
            Err(Failure::Fatal { code, message }) => {
                let code = match code {
                    FetchError::RequestRefused => Reason::RequestRefused,
                    FetchError::InvalidResponse => Reason::KustomerInvalidResponse,
                    FetchError::InvalidUrl => Reason::KustomerInvalidUrl,
                    FetchError::Rejected | FetchError::NotFound => Reason::KustomerRejected,
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
                    code: skip.code.as_str(),
                    message: skip.message,
                    request: None,
                }
            }
        };
        let body = match decision::decide(settings, inputs.survey_input(Some(&job.org))) {
            Decision::Skip(skip) => {
                return Attempt::Skipped {
                    code: skip.code.as_str(),
                    message: skip.message,
                    request: None,
                }
            }
            Decision::Send(body) => body,
        };
        let customer_id = inputs.conversation.customer_id.as_deref();
        match self.forgotten(&job.org, customer_id, &body.customer.email) {
            Ok(false) => {}
            Ok(true) => {
                return Attempt::Skipped {
                    code: Reason::Forgotten.as_str(),
                    message: "The customer was forgotten: this survey is not sent.".into(),
                    request: None,
                }
            }
            Err(message) => {
                return Attempt::Retry {
                    wait_ms: None,
                    message,
                    request: None,
                    unsure: false,
                }
            }
        }
        if let Err(message) = self.keep_sent_to(job, &body, customer_id) {
            return Attempt::Retry {
                wait_ms: None,
                message,
                request: None,
                unsure: false,
            };
        }
        // What the log keeps of it: the fields it reads, not the whole body.
        let shown = crate::edge::job::logged_request(&body);
        let request = stella::survey_request(settings, &body);
        let now = self.clock.now_ms();
        let keys = settings.stella_secrets();
        let answer = counted.send(request).await;
        // No answer, or a server error: Stella may have taken the survey all the same.
        let unsure = match &answer {
            Err(SendError::Network(_)) => true,
            Ok(response) => response.status >= 500,
            Err(_) => false,
        };
        match kustomer_api::interpret(answer, now, "Agent Connect", &keys) {
            Ok(_) => Attempt::Sent {
                request: shown,
                closed_at_ms,
            },
            Err(Failure::Retry { wait_ms, message }) => Attempt::Retry {
                wait_ms,
                message,
                request: Some(shown),
                unsure,
            },
            // The run's outbound calls used up (not reached: a job is taken with room for all of
            // its calls): nothing was sent, as if never tried.
            Err(Failure::Paced) => Attempt::Paced,
            Err(Failure::Fatal { code, message }) => Attempt::Failed {
                code: match code {
                    FetchError::RequestRefused => Reason::RequestRefused,
                    _ => Reason::StellaRejected,
                },
                message,
                request: Some(shown),
            },
        }
    }
}
