//! Survey outcomes: what Agent Connect's Data Return says became of each survey sent (sent,
//! suppressed, bounced, …) and how the customer rated the agent, read back per org and written
//! onto the Kustomer conversation.

use super::run::Metered;
use super::{Clock, Scheduler, CONCURRENCY};
use crate::edge::job::{Job, JobOutcome, JobState};
use crate::edge::kustomer_api::{self, Failure};
use crate::edge::returns::{
    self, DataQuery, Follow, Paced, StellaPace, DATA_PATH, FOLLOW_DAYS, RESPONSE_OVERLAP_MS,
    SETTLE_EVERY_POLLS, SETTLE_WINDOW_MS,
};
use crate::edge::{OrgRecord, Request, Store, Transport};
use crate::settings::{Secret, Settings};
use crate::survey_outcome::{self, Record};
use crate::timestamp;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::collections::HashMap;

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// A transport for Agent Connect's read APIs within the org's [`StellaPace`]: the window is
    /// loaded from the org's record on first use. Call [`Self::save_stella_pace`] after.
    pub(super) fn paced_stella(&self) -> Result<Paced<'_, T>, String> {
        if self.stella_pace.borrow().is_none() {
            let stored = self.store.org()?.stella_pace.unwrap_or_default();
            *self.stella_pace.borrow_mut() = Some(stored);
        }
        Ok(Paced {
            inner: &self.transport,
            pace: &self.stella_pace,
            now_ms: self.clock.now_ms(),
        })
    }

    /// Writes the window back into the org's record, if it changed.
    pub(super) fn save_stella_pace(&self) -> Result<(), String> {
        let pace = self.stella_pace.borrow().clone();
        let mut record = self.store.org()?;
        if pace.is_some() && record.stella_pace != pace {
            record.stella_pace = pace;
            self.store.put_org(&record)?;
        }
        Ok(())
    }

    /// When the org's read window has room again.
    pub(super) fn stella_window(&self) -> Option<i64> {
        self.stella_pace
            .borrow()
            .as_ref()
            .map(StellaPace::next_window)
    }
}

/// Data Return records per page.
pub const PAGE_SIZE: u32 = 500;
/// Pages one read reads at most; the rest waits for the next (cursors are kept).
pub const PAGES_PER_READ: u32 = 10;
/// The longest wait after failed reads.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// How much earlier than our own record of an attempt Agent Connect's record of it may be
/// stamped (clocks differ).
const CLOCK_MARGIN_MS: i64 = 5 * 60_000;
const DAY_MS: i64 = 86_400_000;

/// Why a read of Data Return stopped.
enum ReadError {
    /// Storage failed: the alarm's run fails as for any storage error.
    Storage(String),
    /// Agent Connect did not give a usable answer (or the org's window is full).
    Service(Failure),
}

impl From<String> for ReadError {
    fn from(e: String) -> Self {
        Self::Storage(e)
    }
}

/// What became of one outcome's write.
enum Written {
    /// Written, or given up for good (noted on the job).
    Done,
    /// Not written for now: after this wait, if Kustomer said.
    Later(Option<i64>),
}
use Written::{Done, Later};

/// What Data Return says of attempts whose fate is unknown, by conversation.
pub(super) enum Lookup {
    /// Nothing to look up (no unsure job, or no API secret).
    None,
    /// The records found, by conversation id: absent ones were not sent.
    Found(HashMap<String, Record>),
    /// The lookup failed: unsure jobs wait and try again.
    Failed {
        wait_ms: Option<i64>,
        message: String,
    },
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// After the due jobs: reads outcomes back when a read is due and a survey awaits one,
    /// then writes changed ones onto their conversations. Agent Connect's or Kustomer's
    /// failures only delay the next read or write; storage errors are returned.
    pub(super) async fn follow_outcomes(
        &self,
        settings: &Settings,
        share: u32,
    ) -> Result<(), String> {
        let reading = settings.stella_api_secret.is_some();
        let mut record = self.store.org()?;
        if record.follow.reading != reading {
            record.follow.reading = reading;
            self.store.put_org(&record)?;
        }
        if !reading {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let due = record.follow.next_poll_ms.is_none_or(|t| t <= now);
        if due && self.store.followed(now - FOLLOW_DAYS * DAY_MS)? {
            self.read_outcomes(settings, record).await?;
        }
        self.write_outcomes(settings, share).await
    }

    /// With no usable settings (not readable now), outcomes wait a poll interval: the alarm
    /// would otherwise come straight back for a read it cannot make.
    pub(super) fn defer_follow(&self) -> Result<(), String> {
        let mut record = self.store.org()?;
        let now = self.clock.now_ms();
        let later = Some(now.saturating_add(self.config.outcome_poll_ms));
        let follow = &mut record.follow;
        let mut changed = false;
        for at in [&mut follow.next_poll_ms, &mut follow.write_after_ms] {
            if at.is_none_or(|t| t <= now) {
                *at = later;
                changed = true;
            }
        }
        if !follow.reading || !changed {
            return Ok(());
        }
        self.store.put_org(&record)
    }

    /// When outcomes are next read or written, for the alarm: `None` when nothing awaits.
    pub(super) fn next_follow(&self) -> Result<Option<i64>, String> {
        let record = self.store.org()?;
        if record.sealed_settings.is_none() || !record.follow.reading {
            return Ok(None); // no settings kept, or no API secret: nothing is read or written
        }
        let now = self.clock.now_ms();
        let mut next = None;
        if self.store.followed(now - FOLLOW_DAYS * DAY_MS)? {
            next = Some(record.follow.next_poll_ms.unwrap_or(now));
        }
        if !self.store.outcomes_unwritten(1)?.is_empty() {
            let at = [record.follow.write_after_ms, self.paced_until.get()]
                .into_iter()
                .flatten()
                .fold(now, i64::max);
            next = Some(next.map_or(at, |n: i64| n.min(at)));
        }
        Ok(next)
    }

    /// One read: forward from the cursor, then the answers since the last pass (with overlap).
    async fn read_outcomes(&self, settings: &Settings, record: OrgRecord) -> Result<(), String> {
        let org = record.org.clone().unwrap_or_default();
        let started = self.clock.now_ms();
        let mut follow = record.follow.clone();
        let result = self.read_passes(settings, &org, started, &mut follow).await;
        let now = self.clock.now_ms();
        match result {
            Ok(()) => {
                follow.failures = 0;
                follow.last_error = None;
                follow.next_poll_ms = Some(now.saturating_add(self.config.outcome_poll_ms));
            }
            Err(ReadError::Storage(e)) => return Err(e),
            Err(ReadError::Service(failure)) => {
                let (wait, message) = match failure {
                    Failure::Paced => (self.stella_window().map(|t| t - now), None),
                    Failure::Retry { wait_ms, message } => (wait_ms, Some(message)),
                    Failure::Fatal { message, .. } => (None, Some(message)),
                };
                if message.is_some() {
                    follow.failures = follow.failures.saturating_add(1);
                    follow.last_error = message;
                }
                let backoff = self
                    .config
                    .outcome_poll_ms
                    .saturating_mul(1 << follow.failures.min(10))
                    .min(MAX_BACKOFF_MS);
                let wait = wait.unwrap_or(0).max(backoff).max(1);
                follow.next_poll_ms = Some(now.saturating_add(wait));
            }
        }
        self.save_stella_pace()?;
        let mut latest = self.store.org()?;
        latest.follow = follow;
        self.store.put_org(&latest)
    }

    async fn read_passes(
        &self,
        settings: &Settings,
        org: &str,
        started: i64,
        follow: &mut Follow,
    ) -> Result<(), ReadError> {
        let mut pages = 0;
        // New records, forward from the cursor; the first read starts at the followed window.
        loop {
            if pages >= PAGES_PER_READ {
                return Ok(());
            }
            let query = DataQuery {
                after: follow.after,
                created_since_ms: follow
                    .after
                    .is_none()
                    .then_some(started - FOLLOW_DAYS * DAY_MS),
                limit: PAGE_SIZE,
                ..DataQuery::default()
            };
            let (n, last) = self.read_page(settings, org, &query).await?;
            pages += 1;
            if let Some(last) = last {
                follow.after = Some(follow.after.map_or(last, |a| a.max(last)));
            }
            if n < PAGE_SIZE as usize {
                break;
            }
        }
        // Recent records again, every few reads: a bounce changes a record already read, and
        // neither the cursor nor the answers pass would see it.
        let every = self
            .config
            .outcome_poll_ms
            .saturating_mul(SETTLE_EVERY_POLLS);
        if follow.settle_after.is_some() || follow.settled_ms.is_none_or(|t| t + every <= started) {
            loop {
                if pages >= PAGES_PER_READ {
                    return Ok(()); // `settle_after` resumes this pass next time
                }
                let query = DataQuery {
                    after: follow.settle_after,
                    created_since_ms: Some(started - SETTLE_WINDOW_MS),
                    limit: PAGE_SIZE,
                    ..DataQuery::default()
                };
                let (n, last) = self.read_page(settings, org, &query).await?;
                pages += 1;
                follow.settle_after = last.or(follow.settle_after);
                if n < PAGE_SIZE as usize {
                    follow.settle_after = None;
                    follow.settled_ms = Some(started);
                    break;
                }
            }
        }
        // Answers since the last pass: a record answered after it was first read may keep its
        // `sequence_id` (not documented either way), so the cursor alone would miss it.
        let since = follow
            .responded_since_ms
            .unwrap_or(started - FOLLOW_DAYS * DAY_MS);
        loop {
            if pages >= PAGES_PER_READ {
                return Ok(()); // `responded_after` resumes this pass next time
            }
            let query = DataQuery {
                after: follow.responded_after,
                responded_since_ms: Some(since),
                limit: PAGE_SIZE,
                ..DataQuery::default()
            };
            let (n, last) = self.read_page(settings, org, &query).await?;
            pages += 1;
            follow.responded_after = last.or(follow.responded_after);
            if n < PAGE_SIZE as usize {
                follow.responded_after = None;
                follow.responded_since_ms = Some(started - RESPONSE_OVERLAP_MS);
                return Ok(());
            }
        }
    }

    /// Reads one page and applies its records: how many came, and the last `sequence_id`.
    async fn read_page(
        &self,
        settings: &Settings,
        org: &str,
        query: &DataQuery,
    ) -> Result<(usize, Option<i64>), ReadError> {
        let records = self.fetch_records(settings, query).await?;
        let n = records.len();
        let mut last = None;
        for record in records {
            last = record.sequence_id.or(last);
            self.apply(org, record)?;
        }
        Ok((n, last))
    }

    /// One page of Data Return, read by the core; records it cannot read are left out.
    async fn fetch_records(
        &self,
        settings: &Settings,
        query: &DataQuery,
    ) -> Result<Vec<Record>, ReadError> {
        let now = self.clock.now_ms();
        let Some(request) = returns::get(settings, DATA_PATH, &query.params(), now) else {
            return Ok(vec![]);
        };
        let secret = settings.stella_api_secret.as_ref().map(Secret::expose);
        let keys: Vec<&str> = [Some(settings.stella_api_key.expose()), secret]
            .into_iter()
            .flatten()
            .collect();
        let paced = self.paced_stella()?;
        let answer =
            kustomer_api::interpret(paced.send(request).await, now, "Agent Connect", &keys)
                .map_err(ReadError::Service)?;
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&answer.body) else {
            return Err(ReadError::Service(Failure::Retry {
                wait_ms: None,
                message:
                    "Agent Connect's Data Return answered something other than a list of records."
                        .into(),
            }));
        };
        Ok(items
            .iter()
            .filter_map(|item| survey_outcome::read_record(item).ok())
            .collect())
    }

    /// Keeps a record's outcome on its job, if it is this org's survey and says something new.
    fn apply(&self, org: &str, record: Record) -> Result<(), String> {
        if record.org.as_deref().is_some_and(|o| o != org) {
            return Ok(()); // another org's survey on the same Agent Connect account
        }
        let Some(job) = self.store.get(&record.outcome.conversation_id)? else {
            return Ok(());
        };
        let created_ms = created_ms(&record);
        // Only the survey this job sent: not an earlier one of the same conversation.
        let begun = job.first_attempt_ms.unwrap_or(job.updated_ms);
        if job.state != JobState::Sent
            || created_ms.is_some_and(|c| c < begun.saturating_sub(CLOCK_MARGIN_MS))
        {
            return Ok(());
        }
        if let Some(known) = &job.outcome {
            // The same record read again (both passes, or the overlap): nothing new.
            if known.read == record.outcome {
                return Ok(());
            }
            // Two records for one survey: the later one speaks for it.
            if known.read.uuid != record.outcome.uuid
                && known.created_ms.zip(created_ms).is_some_and(|(k, c)| c < k)
            {
                return Ok(());
            }
        }
        let now = self.clock.now_ms();
        self.store.put(&Job {
            outcome: Some(JobOutcome {
                read: record.outcome,
                created_ms,
                unwritten: true,
                write_error: None,
            }),
            updated_ms: now,
            ..job
        })
    }

    /// Writes changed outcomes onto their conversations, one `PATCH` each, as many at once as
    /// the org's Kustomer API budget has room for.
    async fn write_outcomes(&self, settings: &Settings, share: u32) -> Result<(), String> {
        let now = self.clock.now_ms();
        let mut record = self.store.org()?;
        if record.follow.write_after_ms.is_some_and(|t| t > now) {
            return Ok(());
        }
        let metered = Metered {
            inner: &self.transport,
            budget: &self.budget,
            clock: &self.clock,
            share,
        };
        let failed = loop {
            let now = self.clock.now_ms();
            let room = self.budget.borrow_mut().allowance(share, now) as usize;
            if room == 0 {
                if !self.store.outcomes_unwritten(1)?.is_empty() {
                    self.paced_until
                        .set(Some(self.budget.borrow().next_window(now)));
                }
                break None;
            }
            let jobs = self.store.outcomes_unwritten(room.min(CONCURRENCY))?;
            if jobs.is_empty() {
                break None;
            }
            let results = join_all(
                jobs.into_iter()
                    .map(|job| self.write_outcome(settings, &metered, job)),
            )
            .await;
            // The longest wait a refused write asked for, if any was refused.
            let mut later: Option<i64> = None;
            for result in results {
                if let Later(wait) = result? {
                    later = Some(later.unwrap_or(0).max(wait.unwrap_or(0)));
                }
            }
            if let Some(wait) = later {
                break Some(wait); // paced, or Kustomer failing for now: tried again later
            }
        };
        // Read again: the writes above changed jobs, not the record, but keep it exact.
        record = self.store.org()?;
        let after = failed.map(|wait| self.clock.now_ms() + wait.max(self.config.outcome_poll_ms));
        if record.follow.write_after_ms != after {
            record.follow.write_after_ms = after;
            self.store.put_org(&record)?;
        }
        Ok(())
    }

    /// One conversation's `PATCH`.
    async fn write_outcome<M: Transport>(
        &self,
        settings: &Settings,
        transport: &M,
        job: Job,
    ) -> Result<Written, String> {
        let Some(outcome) = &job.outcome else {
            return Ok(Done);
        };
        let custom = survey_outcome::conversation_custom(&outcome.read);
        let segments = ["v1", "conversations", job.conversation_id.as_str()];
        let Some(url) = kustomer_api::api_url_with(&settings.kustomer_api_url, &segments) else {
            return Ok(Later(None)); // not reached: the settings' URL was validated
        };
        let body = json!({ "custom": custom }).to_string();
        let request = Request::patch_json(url, body).credential(
            "authorization",
            Secret::new(format!("Bearer {}", settings.kustomer_api_key.expose())),
        );
        let now = self.clock.now_ms();
        let keys = [settings.kustomer_api_key.expose()];
        let sent = kustomer_api::interpret(transport.send(request).await, now, "Kustomer", &keys);
        let write_error = match sent {
            Ok(_) => None,
            Err(Failure::Paced) => return Ok(Later(None)),
            Err(Failure::Retry { wait_ms, .. }) => return Ok(Later(wait_ms)),
            Err(Failure::Fatal { message, .. }) => Some(message),
        };
        // Read again: a newer outcome may have come meanwhile (it stays unwritten).
        let Some(current) = self.store.get(&job.conversation_id)? else {
            return Ok(Done);
        };
        if current.outcome.as_ref().map(|o| &o.read) != Some(&outcome.read) {
            return Ok(Done);
        }
        let now = self.clock.now_ms();
        self.store.put(&Job {
            outcome: current.outcome.clone().map(|o| JobOutcome {
                unwritten: false,
                write_error,
                ..o
            }),
            updated_ms: now,
            ..current
        })?;
        Ok(Done)
    }

    /// Asks Data Return about the batch's attempts whose fate is unknown: one read from the
    /// earliest of them, so that a survey Stella already has is recorded, not sent again.
    pub(super) async fn look_up_unsure(&self, batch: &[Job], settings: &Settings) -> Lookup {
        let unsure: Vec<&Job> = batch
            .iter()
            .filter(|j| j.unsure || j.state == JobState::Sending)
            .collect();
        let Some(since) = unsure
            .iter()
            .map(|j| j.first_attempt_ms.unwrap_or(j.updated_ms))
            .min()
        else {
            return Lookup::None;
        };
        if settings.stella_api_secret.is_none() {
            return Lookup::None;
        }
        let org = batch.first().map(|j| j.org.clone()).unwrap_or_default();
        let mut found = HashMap::new();
        let mut after = None;
        for _ in 0..PAGES_PER_READ {
            let query = DataQuery {
                after,
                created_since_ms: Some(since.saturating_sub(CLOCK_MARGIN_MS)),
                limit: PAGE_SIZE,
                ..DataQuery::default()
            };
            let records = match self.fetch_records(settings, &query).await {
                Ok(records) => records,
                Err(ReadError::Storage(message)) => {
                    return Lookup::Failed {
                        wait_ms: None,
                        message,
                    }
                }
                Err(ReadError::Service(failure)) => {
                    let now = self.clock.now_ms();
                    let (wait_ms, message) = match failure {
                        Failure::Paced => (
                            self.stella_window().map(|t| t - now),
                            "Agent Connect's read limit for this minute is used up".into(),
                        ),
                        Failure::Retry { wait_ms, message } => (wait_ms, message),
                        Failure::Fatal { message, .. } => (None, message),
                    };
                    return Lookup::Failed {
                        wait_ms,
                        message: format!("Could not ask Agent Connect whether an earlier attempt reached it: {message}"),
                    };
                }
            };
            let n = records.len();
            for record in records {
                after = record.sequence_id.or(after);
                let ours = record.org.as_deref().is_none_or(|o| o == org);
                let wanted = unsure
                    .iter()
                    .any(|j| j.conversation_id == record.outcome.conversation_id);
                if ours && wanted {
                    found.insert(record.outcome.conversation_id.clone(), record);
                }
            }
            if n < PAGE_SIZE as usize {
                let _ = self.save_stella_pace();
                return Lookup::Found(found);
            }
        }
        let _ = self.save_stella_pace();
        Lookup::Failed {
            wait_ms: None,
            message: "Too many Agent Connect records to tell whether an earlier attempt reached it; it is asked again.".into(),
        }
    }
}

/// When Agent Connect created the record (ms).
fn created_ms(record: &Record) -> Option<i64> {
    let at = timestamp::parse(record.created_at.as_deref()?)?;
    Some(timestamp::to_millis(at))
}
