//! One org's surveys: stores closes as jobs, and at due time checks the conversation again
//! and sends to Stella. Runs in the org's Durable Object; after every call the alarm is set as
//! [`Scheduler::alarm_change`] says (to [`Scheduler::next_alarm`], when it changes).
//!
//! Exactly once: a job is marked `sending` (a lease) before its attempt and `sent` as soon as
//! Stella answers 2xx; only due `scheduled`/`retrying` jobs and expired leases are picked, so a
//! second alarm or a duplicate event never sends again. The one window left is a crash between
//! Stella's 2xx and the write that records it: the lease then expires and the job is retried
//! (at least once, never lost; Stella suppresses repeat surveys to a customer on its side).

mod forget;
mod link;
mod outcomes;
mod retention;
mod roster;
mod run;
mod wire;

pub use link::Caller;

use super::audit::AuditEntry;
use super::budget::Budget;
use super::deliveries::{self, DeliveryQuery, MAX_LIMIT, MAX_RESEND_PER_CALL};
use super::forget::CustomerKeys;
use super::job::{self, Job, JobState, Schedule, StoredSettings, Upsert};
use super::outcome::{ErrorCode, Ignored, Reason};
use super::returns::StellaPace;
use super::seal::{self, Sealer};
use super::subrequests::{Allowance, Counted};
use super::trust;
use super::{Config, OrgRecord, Reply, Store, Transport};
use crate::settings::ValidationOptions;
use crate::timestamp;
use run::Metered;
use serde::{Deserialize, Serialize};
use serde_json::json;
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
    /// The settings text this instance last found or made sealed in the org's record.
    kept: RefCell<Option<String>>,
    /// The last batch had a job the budget stopped mid-way (an uncached agent or tag name):
    /// the next one is sized for every job's calls, so none is stopped again for good.
    cold: Cell<bool>,
    /// The org's calls to Agent Connect's read APIs this minute (Data Return, the roster),
    /// loaded from the org's record on first use.
    stella_pace: RefCell<Option<StellaPace>>,
    /// Open while Kustomer is being asked for the app's link: calls meanwhile wait for its
    /// answer instead of being held.
    link_read: link::Gate,
    /// The last run found held closes but no settings it could send them with (not stored,
    /// not opening, not valid): they wait for the next settings kept, not a hot alarm.
    held_blocked: Cell<bool>,
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
            armed: Cell::new(Armed::Unknown),
            added_due: Cell::new(None),
            budget: RefCell::default(),
            paced_until: Cell::new(None),
            kept: RefCell::new(None),
            cold: Cell::new(false),
            stella_pace: RefCell::new(None),
            link_read: link::Gate::default(),
            held_blocked: Cell::new(false),
            run_calls: Allowance::new(config.subrequests_per_invocation),
        }
    }

    /// The transport of the alarm run under way: each call counted against its cap.
    pub(super) fn run_transport(&self) -> Counted<'_, T> {
        Counted {
            inner: &self.transport,
            calls: &self.run_calls,
        }
    }

    /// `inner`'s Kustomer calls metered against the org's API budget share.
    fn metered<'a, X: Transport>(&'a self, inner: &'a X, share: u32) -> Metered<'a, X, C> {
        Metered {
            inner,
            budget: &self.budget,
            clock: &self.clock,
            share,
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
            self.added(first.send_at_ms);
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
                    self.added(job.send_at_ms);
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
                    self.armed.set(Armed::Unknown); // a finished job: its retention alarm
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
        let text = &raw.0;
        let sealed_now =
            (record.sealed_settings.as_deref()).is_some_and(|s| self.sealer.is_current(s));
        // The same settings as this instance kept last, still sealed: nothing to do, not even
        // the fingerprint (in constant time: the text holds the keys).
        let kept_here = self
            .kept
            .borrow()
            .as_deref()
            .is_some_and(|k| seal::same_text(k, text));
        if kept_here && record.settings_digest.is_some() && sealed_now {
            return Ok(());
        }
        let digest = self.sealer.fingerprint(&format!("{org}\n{text}"));
        let unchanged = record.settings_digest.as_deref() == Some(&digest);
        if unchanged && sealed_now {
            *self.kept.borrow_mut() = Some(text.clone());
            return Ok(());
        }
        self.held_blocked.set(false); // new settings: held closes may go with them
        if !unchanged {
            let (marks, fields) =
                super::audit::settings_marks(&self.sealer, org, text, &record.settings_marks);
            record.settings_marks = marks;
            if !fields.is_empty() {
                self.audit(AuditEntry::settings(self.clock.now_ms(), &fields))?;
            }
        }
        record.sealed_settings = Some(self.sealer.seal(text, org, self.clock.nonce()));
        record.settings_digest = Some(digest);
        record.org = Some(org.to_owned());
        self.store.put_org(record)?;
        *self.kept.borrow_mut() = Some(text.clone());
        Ok(())
    }

    /// A page of the log.
    fn list(&self, query: &DeliveryQuery) -> Result<Reply, String> {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let first_page = query.after.is_none();
        let jobs = self.store.deliveries(query, limit + 1)?;
        let tally = first_page.then(|| self.store.tally(query)).transpose()?;
        let mut body = deliveries::answer(query, jobs, tally.as_ref(), self.config.retention_days);
        // Whether outcomes are read back, and the last read's failure (no key in it); the
        // app's link and its held closes, for the page's banner.
        let record = self.store.org()?;
        // A link for each entry without its own, under the org's saved Kustomer URL.
        deliveries::link_conversations(&mut body, || self.kustomer_url(&record));
        let follow = record.follow;
        body["outcomes"] = json!({"reading": follow.reading, "lastError": follow.last_error});
        body["link"] = record.trust.status(self.store.held_count()?);
        body["storage"] = self.storage_status()?;
        if first_page {
            body["link"]["heldCloses"] = (self.store.held_list(trust::LISTED_HELD)?.iter())
                .map(|h| json!({"conversationId": h.conversation_id, "closedAt": iso(h.closed_at_ms), "heldAt": iso(h.held_ms), "expiresAt": iso(trust::HeldClose::expires_ms(h.held_ms))}))
                .collect();
        }
        // Records that did not count for their survey, by reason, and the note in words.
        let note = super::record_check::note(&follow.ignored, follow.unverified);
        body["outcomes"]["ignoredRecords"] = json!(follow.ignored);
        body["outcomes"]["unverifiedRecords"] = json!(follow.unverified);
        body["outcomes"]["recordsNote"] = json!(note);
        Ok(Reply::json(200, body))
    }

    /// The Kustomer URL of the org's stored settings, when they open and are valid.
    fn kustomer_url(&self, record: &OrgRecord) -> Option<String> {
        let (sealed, org) = (record.sealed_settings.as_ref()?, record.org.as_ref()?);
        let text = self.sealer.open(sealed, org).ok()?;
        deliveries::saved_kustomer_url(&text, self.validation())
    }

    /// Schedules one failed or skipped survey again, or says why not.
    fn resend_one(&self, conversation_id: &str) -> Result<Result<Job, Reply>, String> {
        let now = self.clock.now_ms();
        let Some(job) = self.store.get(conversation_id)? else {
            return Ok(Err(Reply::error(
                ErrorCode::NotFound,
                "No survey is recorded for this conversation.",
            )));
        };
        if !matches!(job.state, JobState::Failed | JobState::Skipped) {
            let why = format!(
                "Only failed or skipped surveys can be sent again; this one is {}.",
                state_name(job.state)
            );
            return Ok(Err(Reply::error(ErrorCode::NotResendable, why)));
        }
        if !deliveries::resendable(&job) {
            let why = "A resend cannot change this skip: the conversation's own facts would be \
                       checked again and give the same answer, and closing it again schedules \
                       a survey by itself.";
            return Ok(Err(Reply::error(ErrorCode::NotResendable, why)));
        }
        let job = Job {
            state: JobState::Scheduled,
            generation: job.generation.wrapping_add(1),
            due_ms: Some(now),
            attempts: 0,
            first_attempt_ms: None,
            reason: Some(Reason::Resend.as_str().into()),
            message: None,
            updated_ms: now,
            ..job
        };
        self.store.put(&job)?;
        self.added(now);
        Ok(Ok(job))
    }

    /// Seals a resend's settings again if they are exactly those the org's workflow last sent
    /// (its keyed fingerprint, which outlives the sealed copy); any others are not kept, so a
    /// user's own headers on a resend change nothing. Whether the org has settings for the
    /// resent surveys now.
    fn adopt_settings(&self, mut record: OrgRecord, raw: &StoredSettings) -> Result<bool, String> {
        let Some(org) = record.org.clone() else {
            return Ok(false);
        };
        let digest = self.sealer.fingerprint(&format!("{org}\n{}", raw.0));
        if record.settings_digest.as_deref() == Some(&digest) {
            self.keep_settings(&mut record, &org, raw)?;
        }
        Ok(record.sealed_settings.is_some())
    }

    fn resend(&self, ready: bool, conversation_id: &str) -> Result<Reply, String> {
        let job = match self.resend_one(conversation_id)? {
            Ok(job) => job,
            Err(refused) => return Ok(refused),
        };
        let ids = [conversation_id.to_owned()];
        self.audit(AuditEntry::resend(job.updated_ms, &ids, 1))?;
        Ok(Reply::json(
            202,
            json!({"status": "scheduled", "conversationId": job.conversation_id, "sendAt": iso(job.updated_ms), "message": resent(ready, &job)}),
        ))
    }

    /// [`Self::resend`] for each conversation: one answer listing each one's outcome.
    fn resend_many(&self, ready: bool, conversation_ids: &[String]) -> Result<Reply, String> {
        let mut results = Vec::new();
        for id in conversation_ids.iter().take(MAX_RESEND_PER_CALL) {
            let (status, message) = match self.resend_one(id)? {
                Ok(job) => ("scheduled", resent(ready, &job)),
                Err(refused) => {
                    let error = &refused.body["error"];
                    let status = if error["code"] == ErrorCode::NotFound.as_str() {
                        "not_found"
                    } else {
                        "not_resendable"
                    };
                    (
                        status,
                        error["message"].as_str().unwrap_or_default().to_owned(),
                    )
                }
            };
            results.push(json!({"conversationId": id, "status": status, "message": message}));
        }
        let scheduled = results
            .iter()
            .filter(|r| r["status"] == "scheduled")
            .count();
        let ids: Vec<String> = conversation_ids
            .iter()
            .take(MAX_RESEND_PER_CALL)
            .cloned()
            .collect();
        self.audit(AuditEntry::resend(self.clock.now_ms(), &ids, scheduled))?;
        Ok(Reply::json(
            200,
            json!({"results": results, "scheduled": scheduled, "refused": results.len() - scheduled}),
        ))
    }

    /// When the alarm should fire next: the earliest pending job, the next read or write of
    /// survey outcomes, the day the oldest finished one leaves the log, when held closes
    /// are scheduled or dropped, or when a finished one's personal data is to be removed.
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
        let (sweep, expiry) = (self.next_sweep()?, self.next_expiry()?);
        let follow = self.next_follow()?;
        Ok([due, prune, follow, self.next_release()?, sweep, expiry]
            .into_iter()
            .flatten()
            .min())
    }
}

/// What a resend's answer says of the job it scheduled: when it goes, and, when the org has
/// no settings for it (they changed since the last close, and the last ones are no longer
/// kept), that it waits for those of the next close.
fn resent(ready: bool, job: &Job) -> String {
    let at = iso(job.updated_ms);
    if ready {
        format!("Scheduled to be sent at {at}.")
    } else {
        format!("Scheduled at {at}; it goes out with the app's settings, which come with the org's next closed conversation.")
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
