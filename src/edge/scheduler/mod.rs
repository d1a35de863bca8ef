//! One org's surveys: stores closes as jobs, and at due time checks the conversation again
//! and sends to Stella. Runs in the org's Durable Object; after every call the alarm is set as
//! [`Scheduler::alarm_change`] says (to [`Scheduler::next_alarm`], when it changes).
//!
//! Exactly once: a job is marked `sending` (a lease) before its attempt and `sent` as soon as
//! Stella answers 2xx; only due `scheduled`/`retrying` jobs and expired leases are picked, so a
//! second alarm or a duplicate event never sends again. The one window left is a crash between
//! Stella's 2xx and the write that records it: the lease then expires and the job is retried
//! (at least once, never lost; Stella suppresses repeat surveys to a customer on its side).

mod alarm;
mod attempt;
mod forget;
mod link;
mod log;
mod lookup;
mod outcomes;
mod pacing;
mod read;
mod retention;
mod roster;
mod run;
mod settings;
mod wire;

pub use alarm::AlarmChange;
pub use link::Caller;

use super::agent_connect::StellaPacer;
use super::budget::KustomerPacer;
use super::codes::{ErrorCode, Ignored};
use super::deliveries::DeliveryQuery;
use super::forget::CustomerKeys;
use super::job::{self, Job, JobState, Schedule, StoredSettings, Upsert};
use super::seal::Sealer;
use super::subrequests::Allowance;
use super::{Config, OrgRecord, Reply, Store, Transport};
use crate::settings::ValidationOptions;
use crate::timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

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
/// carries its [`Caller`]: the fingerprint of the app secret the call presented, checked here
/// against the one Kustomer vouches for ([`super::trust`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Command {
    /// Store a close, and the settings it came with (validated by the gateway).
    Schedule {
        /// The close.
        close: Schedule,
        /// Who calls.
        caller: Caller,
        /// The settings from the call's headers, to keep (sealed) for the send.
        settings: StoredSettings,
        /// The one setting storing a close reads: "Survey a conversation again after (days)".
        resurvey_after_days: u32,
    },
    /// The delivery log: a page of it, and on a first page the summary.
    List {
        /// The filters and the page.
        query: DeliveryQuery,
        /// Who calls.
        caller: Caller,
    },
    /// Send a failed or skipped survey again, after a fresh check, with the settings the
    /// org's workflow last sent ([`Scheduler::adopt_settings`]).
    Resend {
        /// The conversation.
        conversation_id: String,
        /// Who calls.
        caller: Caller,
        /// The settings from the call's headers: used only if they are the org's last ones.
        settings: StoredSettings,
    },
    /// Send several failed or skipped surveys again (at most
    /// [`MAX_RESEND_PER_CALL`](super::deliveries::MAX_RESEND_PER_CALL)), each as
    /// [`Command::Resend`] would.
    ResendMany {
        /// The conversations, without repeats.
        conversation_ids: Vec<String>,
        /// Who calls.
        caller: Caller,
        /// As [`Command::Resend`]'s.
        settings: StoredSettings,
    },
    /// Check connection's question: does Kustomer vouch for the caller's app secret? Asks
    /// Kustomer now (Check connection is rate-limited on its own), so that a re-link takes
    /// effect at once: asynchronous, through [`Scheduler::command_async`].
    Link {
        /// Who calls.
        caller: Caller,
    },
    /// Forget a customer (an e-mail address or a Kustomer customer id): their pending surveys
    /// are cancelled and their data removed from every entry ([`super::forget`]).
    Forget {
        /// What the admin typed.
        customer: String,
        /// Who calls.
        caller: Caller,
    },
    /// The org's audit list ([`super::audit`]), for the settings page.
    Audit {
        /// Who calls.
        caller: Caller,
    },
    /// Agents' standings against the org's cached Agent Connect roster (read when missing):
    /// asynchronous, through [`Scheduler::command_async`].
    Roster {
        /// The credentials and the agents.
        query: super::roster::RosterQuery,
    },
}

/// The most jobs one alarm works through before handing back (the alarm is set again at once):
/// a run's CPU stays under half of the alarm's limit (`[limits] cpu_ms` in wrangler.toml, 30 s).
/// Measured (BENCHMARKS.md, scale): about 9 ms of CPU a survey at most, the sandboxes answering
/// its calls included: 2,000 took 19 s, 1,000 take 11 s. With the default cap on a run's
/// outbound calls ([`Config::subrequests_per_invocation`]) runs are smaller still (about 330).
pub const MAX_PER_ALARM: usize = 1000;
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
    /// Seals and opens the org's stored settings.
    pub sealer: Sealer,
    /// The alarm as this instance knows it.
    alarm: alarm::Alarm,
    /// The org's Kustomer API budget as this instance knows it, and what waits for it.
    kustomer: KustomerPacer,
    /// The org's calls to Agent Connect's read APIs this minute (Data Return, the roster),
    /// loaded from the org's record on first use.
    stella: StellaPacer,
    /// The settings this instance last kept sealed, and whether held closes wait for others.
    kept: settings::Kept,
    /// Open while Kustomer is being asked for the app's link: calls meanwhile wait for its
    /// answer instead of being held.
    link_read: link::Gate,
    /// The outbound calls of the alarm run under way (one at a time per Durable Object);
    /// requests count theirs apart ([`Self::command_async`]).
    run_calls: Allowance,
}

/// An instant as RFC 3339.
pub fn iso(ms: i64) -> String {
    timestamp::format(timestamp::from_millis(ms as f64))
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
            alarm: alarm::Alarm::default(),
            kustomer: KustomerPacer::default(),
            stella: StellaPacer::default(),
            kept: settings::Kept::default(),
            link_read: link::Gate::default(),
            run_calls: Allowance::new(config.subrequests_per_invocation),
        }
    }

    /// The outbound calls of the last alarm run, and the most any run of this instance made.
    pub fn run_calls(&self) -> (u32, u32) {
        (self.run_calls.used(), self.run_calls.most())
    }

    /// Handles a command from the gateway, with what the org knows now: a caller whose app
    /// secret Kustomer has not vouched for is refused (a close is held). The Durable Object
    /// calls [`Self::command_async`] instead when [`Self::waits`] says Kustomer must be asked.
    pub fn command(&self, command: Command) -> Reply {
        let result = match command {
            Command::Schedule {
                close,
                caller,
                settings,
                resurvey_after_days,
            } => match self.vouched(&caller) {
                Ok(Some(record)) => self.schedule(record, close, settings, resurvey_after_days),
                Ok(None) => self.hold(close),
                Err(e) => Err(e),
            },
            Command::List { query, caller } => self.authorized(&caller, |_| self.list(&query)),
            Command::Resend {
                conversation_id,
                caller,
                settings,
            } => self.authorized(&caller, |record| {
                let ready = self.adopt_settings(record, &settings)?;
                self.resend(ready, &conversation_id)
            }),
            Command::ResendMany {
                conversation_ids,
                caller,
                settings,
            } => self.authorized(&caller, |record| {
                let ready = self.adopt_settings(record, &settings)?;
                self.resend_many(ready, &conversation_ids)
            }),
            Command::Forget { customer, caller } => {
                self.authorized(&caller, |_| self.forget_command(&caller.org, &customer))
            }
            Command::Audit { caller } => self.authorized(&caller, |_| self.audit_read()),
            Command::Roster { .. } | Command::Link { .. } => Ok(Reply::error(
                ErrorCode::InvalidCommand,
                "This command waits on the network: it is answered by command_async.",
            )),
        };
        result.unwrap_or_else(|e| Reply::error(ErrorCode::StorageError, e))
    }

    /// Runs `then` if Kustomer vouches for the caller's app secret; else the refusal, which
    /// names the fix.
    fn authorized(
        &self,
        caller: &Caller,
        then: impl FnOnce(OrgRecord) -> Result<Reply, String>,
    ) -> Result<Reply, String> {
        match self.vouched(caller)? {
            Some(record) => then(record),
            None => self.refused(),
        }
    }

    fn validation(&self) -> ValidationOptions {
        self.config.validation
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
        let customer = (close.customer_id.as_deref())
            .and_then(|id| CustomerKeys::of(&self.sealer, &org, Some(id), None));
        let mut first = job::first(close.clone(), now);
        first.customer = customer.clone();
        let (reply, pending) = if self.store.insert_new(&first)? {
            self.alarm.added(first.send_at_ms);
            (scheduled(&first), true)
        } else {
            let existing = self.store.get(&close.conversation_id)?;
            let reply = match (
                job::upsert(existing.as_ref(), close, resurvey_after_days, now),
                existing,
            ) {
                (Upsert::Scheduled(mut job), existing) => {
                    job.customer = customer.or_else(|| existing.and_then(|e| e.customer));
                    self.store.put(&job)?;
                    self.alarm.added(job.send_at_ms);
                    scheduled(&job)
                }
                (Upsert::Duplicate, Some(job)) if !job.state.is_final() => scheduled(&job),
                (Upsert::Duplicate, Some(job)) => ignored(
                    Ignored::Duplicate,
                    &format!(
                        "This close was already handled: the survey is {}.",
                        state_name(job.state)
                    ),
                ),
                (Upsert::AlreadySurveyed(job, skip), _) => {
                    self.store.put(&job)?;
                    self.alarm.forget(); // a finished job: its retention alarm
                    ignored(skip.code, &skip.message)
                }
                _ => ignored(
                    Ignored::StaleEvent,
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
}

fn ignored(reason: impl serde::Serialize, message: &str) -> Reply {
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
