//! Reading survey outcomes back from Agent Connect's Data Return: forward from the org's
//! cursor, recent records again now and then, and the answers since the last pass; each
//! record kept on its job if it is that survey's ([`record_check`]).

use super::{Clock, Scheduler};
use crate::edge::agent_connect::{
    self, DataQuery, Follow, CALLS_PER_MINUTE, DATA_PATH, FOLLOW_DAYS, RESPONSE_OVERLAP_MS,
    SETTLE_EVERY_POLLS, SETTLE_WINDOW_MS,
};
use crate::edge::interpret::{interpret, Failure};
use crate::edge::job::{Job, JobOutcome, JobState};
use crate::edge::record_check::{self, Unmatched};
use crate::edge::{OrgRecord, Store, Transport};
use crate::settings::Settings;
use crate::survey_outcome::{self, Record};
use serde_json::Value;
use std::cell::Cell;
use std::collections::HashMap;

/// Data Return records per page.
pub const PAGE_SIZE: u32 = 500;
/// Pages one read reads at most; the rest waits for the next (cursors are kept).
pub const PAGES_PER_READ: u32 = 10;
/// The longest wait after failed reads.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// A day, in ms.
pub(super) const DAY_MS: i64 = 86_400_000;

/// Why a read of Data Return stopped.
pub(super) enum ReadError {
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

/// One page of Data Return ([`Scheduler::fetch_records`]).
#[derive(Default)]
struct Page {
    /// The records the core could read.
    records: Vec<Record>,
    /// How many records came, readable or not.
    count: usize,
    /// The highest `sequence_id` among them.
    last: Option<i64>,
}

/// What keeping a record did, for the org's counts ([`Follow::ignored`], [`Follow::unverified`]).
enum Kept {
    /// Nothing to count: kept, read again, or not about one of the org's sent surveys.
    Nothing,
    /// It did not count for its conversation's survey (or it displaced an earlier-read one
    /// that then did not: a duplicate either way).
    Ignored(Unmatched),
    /// The survey's first outcome, taken on the org and time checks alone.
    Unverified,
}

/// What one read counted, added to the org's when it ends.
#[derive(Default)]
struct Counts {
    ignored: HashMap<Unmatched, u64>,
    unverified: u64,
}

impl Counts {
    /// Counts what keeping a record did; ignored records only when `forward` (the forward
    /// pass meets each record once: the other passes read records again).
    fn add(&mut self, kept: Kept, forward: bool) {
        match kept {
            Kept::Ignored(why) if forward => *self.ignored.entry(why).or_default() += 1,
            Kept::Unverified => self.unverified += 1,
            _ => {}
        }
    }

    fn add_to(self, follow: &mut Follow) {
        for (why, n) in self.ignored {
            let count = follow.ignored.entry(why.as_str().to_owned()).or_default();
            *count = count.saturating_add(n);
        }
        follow.unverified = follow.unverified.saturating_add(self.unverified);
    }
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// One read: forward from the cursor, recent records again now and then, then the answers
    /// since the last pass (with overlap).
    pub(super) async fn read_outcomes(
        &self,
        settings: &Settings,
        record: OrgRecord,
    ) -> Result<(), String> {
        let org = record.org.clone().unwrap_or_default();
        let started = self.clock.now_ms();
        let mut follow = record.follow.clone();
        // Another Agent Connect account (the Test key replaced by the production one): its
        // sequence is its own, so the cursors start again.
        let account = Some(self.sealer.fingerprint(&format!(
            "{}\n{}",
            settings.stella_api_url,
            settings.stella_api_key.expose()
        )));
        if follow.account != account {
            follow = Follow {
                reading: follow.reading,
                account,
                write_after_ms: follow.write_after_ms,
                ignored: follow.ignored,
                unverified: follow.unverified,
                ..Follow::default()
            };
        }
        let mut counts = Counts::default();
        let result = (self.read_passes(settings, &org, started, &mut follow, &mut counts)).await;
        counts.add_to(&mut follow);
        let now = self.clock.now_ms();
        match result {
            Ok(()) => {
                follow.failures = 0;
                follow.last_error = None;
                follow.next_poll_ms = Some(now.saturating_add(self.config.outcome_poll_ms));
            }
            Err(ReadError::Storage(e)) => return Err(e),
            Err(ReadError::Service(failure)) => {
                let (wait, message) = self.wait_for(failure, now);
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

    /// How long to wait after a failed call, and its words (none when the org's own pace
    /// stopped it: not a failure of Agent Connect's).
    pub(super) fn wait_for(&self, failure: Failure, now: i64) -> (Option<i64>, Option<String>) {
        match failure {
            Failure::Paced => (self.stella_window(CALLS_PER_MINUTE).map(|t| t - now), None),
            Failure::Retry { wait_ms, message } => (wait_ms, Some(message)),
            Failure::Fatal { message, .. } => (None, Some(message)),
        }
    }

    async fn read_passes(
        &self,
        settings: &Settings,
        org: &str,
        started: i64,
        follow: &mut Follow,
        counts: &mut Counts,
    ) -> Result<(), ReadError> {
        let mut pages = 0;
        let forward_pass = Cell::new(true);
        let mut apply = |record: Record| {
            let kept = self.apply(org, record)?;
            counts.add(kept, forward_pass.get());
            Ok(())
        };
        // New records, forward from the cursor; the first read starts at the followed window.
        let forward = DataQuery {
            created_since_ms: follow
                .after
                .is_none()
                .then_some(started - FOLLOW_DAYS * DAY_MS),
            ..DataQuery::default()
        };
        let cursor = &mut follow.after;
        if !self
            .pass(settings, forward, cursor, &mut pages, 0, &mut apply)
            .await?
        {
            return Ok(()); // the cursor resumes it next time
        }
        forward_pass.set(false);
        // Recent records again, every few reads: a bounce changes a record already read, and
        // neither the cursor nor the answers pass would see it.
        let every = self
            .config
            .outcome_poll_ms
            .saturating_mul(SETTLE_EVERY_POLLS);
        if follow.settle_after.is_some() || follow.settled_ms.is_none_or(|t| t + every <= started) {
            let began = *follow.settle_began_ms.get_or_insert(started);
            let recent = DataQuery {
                created_since_ms: Some(began - SETTLE_WINDOW_MS),
                ..DataQuery::default()
            };
            let cursor = &mut follow.settle_after;
            if !self
                .pass(settings, recent, cursor, &mut pages, 0, &mut apply)
                .await?
            {
                return Ok(()); // `settle_after` resumes this pass next time
            }
            follow.settle_after = None;
            follow.settle_began_ms = None;
            follow.settled_ms = Some(began);
        }
        // Answers since the last pass: a record answered after it was first read may keep its
        // `sequence_id` (not documented either way), so the cursor alone would miss it. The
        // next pass starts where this one began, less the overlap, however long this one took.
        let began = *follow.responded_began_ms.get_or_insert(started);
        let answered = DataQuery {
            responded_since_ms: Some(
                follow
                    .responded_since_ms
                    .unwrap_or(started - FOLLOW_DAYS * DAY_MS),
            ),
            ..DataQuery::default()
        };
        let cursor = &mut follow.responded_after;
        if self
            .pass(settings, answered, cursor, &mut pages, 0, &mut apply)
            .await?
        {
            follow.responded_after = None;
            follow.responded_began_ms = None;
            follow.responded_since_ms = Some(began - RESPONSE_OVERLAP_MS);
        }
        Ok(())
    }

    /// Pages through `query` from `cursor` (moved past each page), handing each record to
    /// `each`, until a short page (true: the pass is over), or the read's page budget or the
    /// run's outbound calls less `reserved` are spent (false).
    pub(super) async fn pass(
        &self,
        settings: &Settings,
        query: DataQuery,
        cursor: &mut Option<i64>,
        pages: &mut u32,
        reserved: u32,
        each: &mut impl FnMut(Record) -> Result<(), String>,
    ) -> Result<bool, ReadError> {
        loop {
            if *pages >= PAGES_PER_READ || self.run_calls.left() <= reserved {
                return Ok(false);
            }
            let page_query = DataQuery {
                after: *cursor,
                limit: PAGE_SIZE,
                ..query.clone()
            };
            let page = self.fetch_records(settings, &page_query).await?;
            *pages += 1;
            if page.last.is_some() {
                *cursor = page.last.max(*cursor);
            }
            for record in page.records {
                each(record)?;
            }
            if page.count < PAGE_SIZE as usize {
                return Ok(true);
            }
        }
    }

    /// One page of Data Return: the records the core can read, and how many came and the last
    /// `sequence_id` of them all (one another integration wrote, unreadable here, still moves
    /// the cursor and counts towards a full page).
    async fn fetch_records(
        &self,
        settings: &Settings,
        query: &DataQuery,
    ) -> Result<Page, ReadError> {
        let now = self.clock.now_ms();
        let Some(request) = agent_connect::get(settings, DATA_PATH, &query.params(), now) else {
            return Ok(Page::default());
        };
        // The token too: a server's words may echo the request.
        let token = request.header("authorization").map(str::to_owned);
        let mut keys = settings.stella_secrets();
        keys.extend(token.as_deref());
        let counted = self.run_transport();
        let paced = self.paced_stella(&counted, CALLS_PER_MINUTE)?;
        let answer = interpret(paced.send(request).await, now, "Agent Connect", &keys)
            .map_err(ReadError::Service)?;
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&answer.body) else {
            return Err(ReadError::Service(Failure::Retry {
                wait_ms: None,
                message:
                    "Agent Connect's Data Return answered something other than a list of records."
                        .into(),
            }));
        };
        let records: Vec<Record> = items
            .iter()
            .filter_map(|item| survey_outcome::read_record(item).ok())
            .collect();
        let raw_last = items
            .iter()
            .filter_map(|item| item.get("sequence_id").and_then(Value::as_i64))
            .max();
        let read_last = records.iter().filter_map(|r| r.sequence_id).max();
        Ok(Page {
            count: items.len(),
            last: raw_last.max(read_last),
            records,
        })
    }

    /// Keeps a record's outcome on its job, if it is this org's survey's record
    /// ([`record_check`]) and says something new.
    fn apply(&self, org: &str, record: Record) -> Result<Kept, String> {
        if record.org.as_deref().is_some_and(|o| o != org) {
            return Ok(Kept::Nothing); // another org's survey on the same Agent Connect account
        }
        let Some(job) = self.store.get(&record.outcome.conversation_id)? else {
            return Ok(Kept::Nothing);
        };
        if job.state != JobState::Sent {
            return Ok(Kept::Nothing);
        }
        let matched = match record_check::check(&self.sealer, &job, &record) {
            Ok(matched) => matched,
            Err(why) => return Ok(Kept::Ignored(why)),
        };
        let outcome = JobOutcome::from_record(record);
        let kept = match &job.outcome {
            // The same record read again (both passes, or the overlap): nothing new.
            Some(known) if known.read == outcome.read => return Ok(Kept::Nothing),
            // Two records for one survey: the earliest speaks for it, whichever is read first.
            Some(known) if known.read.uuid != outcome.read.uuid => {
                let this = (Some(matched.created_ms), outcome.read.uuid.as_str());
                if !record_check::comes_first(this, (known.created_ms, &known.read.uuid)) {
                    return Ok(Kept::Ignored(Unmatched::Duplicate));
                }
                Kept::Ignored(Unmatched::Duplicate) // the one it displaces
            }
            None if !matched.verified => Kept::Unverified,
            _ => Kept::Nothing,
        };
        let now = self.clock.now_ms();
        self.store.put(&Job {
            outcome: Some(outcome),
            updated_ms: now,
            ..job
        })?;
        Ok(kept)
    }
}
