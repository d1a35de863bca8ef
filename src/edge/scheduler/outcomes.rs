//! Survey outcomes: what Agent Connect's Data Return says became of each survey sent (sent,
//! suppressed, bounced, …) and how the customer rated the agent, read back per org and written
//! onto the Kustomer conversation.

use super::{Clock, Scheduler, CONCURRENCY};
use crate::edge::job::{Job, JobOutcome, JobState};
use crate::edge::kustomer_api::{self, Failure, FetchError};
use crate::edge::record_check::{self, Unmatched, CLOCK_SKEW_MS};
use crate::edge::returns::{
    self, DataQuery, Follow, Paced, CALLS_PER_MINUTE, DATA_PATH, FOLLOW_DAYS, RESPONSE_OVERLAP_MS,
    SETTLE_EVERY_POLLS, SETTLE_WINDOW_MS,
};
use crate::edge::{OrgRecord, Request, Store, Transport};
use crate::settings::{Secret, Settings};
use crate::survey_outcome::{self, Record};
use crate::timestamp;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::HashMap;

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// A transport for Agent Connect's read APIs within the org's [`StellaPace`](crate::edge::returns::StellaPace), up to `cap`
    /// calls in the minute: the window is loaded from the org's record on first use. Call
    /// [`Self::save_stella_pace`] after.
    pub(super) fn paced_stella<'a, M: Transport>(
        &'a self,
        inner: &'a M,
        cap: u32,
    ) -> Result<Paced<'a, M>, String> {
        if self.stella_pace.borrow().is_none() {
            let stored = self.store.org()?.stella_pace.unwrap_or_default();
            *self.stella_pace.borrow_mut() = Some(stored);
        }
        Ok(Paced {
            inner,
            pace: &self.stella_pace,
            now_ms: self.clock.now_ms(),
            cap,
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

    /// When the org's read window has room again for a user allowed `cap` calls in it.
    pub(super) fn stella_window(&self, cap: u32) -> Option<i64> {
        (self.stella_pace.borrow().as_ref()).map(|pace| pace.next_window(cap))
    }
}

/// Data Return records per page.
pub const PAGE_SIZE: u32 = 500;
/// Pages one read reads at most; the rest waits for the next (cursors are kept).
pub const PAGES_PER_READ: u32 = 10;
/// How long writes wait after Kustomer refused one (a missing role, an app not upgraded).
const REFUSED_WRITE_WAIT_MS: i64 = 3_600_000;
/// The longest wait after failed reads.
const MAX_BACKOFF_MS: i64 = 3_600_000;
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
    /// Nothing to look up (no unsure job, or no API secret): nothing asked.
    None,
    /// Agent Connect refuses the key or secret: unsure jobs go out as they would without the
    /// secret (at least once, never lost).
    Refused,
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
        // With none of the run's calls left, the read stays due: the next run makes it, at once.
        let room = self.run_calls.left() > 0;
        if due && room && self.store.followed(now - FOLLOW_DAYS * DAY_MS)? {
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

    /// One read: forward from the cursor, recent records again now and then, then the answers
    /// since the last pass (with overlap).
    async fn read_outcomes(&self, settings: &Settings, record: OrgRecord) -> Result<(), String> {
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
    fn wait_for(&self, failure: Failure, now: i64) -> (Option<i64>, Option<String>) {
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
    async fn pass(
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
        let Some(request) = returns::get(settings, DATA_PATH, &query.params(), now) else {
            return Ok(Page::default());
        };
        // The token too: a server's words may echo the request.
        let token = request.header("authorization").map(str::to_owned);
        let mut keys = settings.stella_secrets();
        keys.extend(token.as_deref());
        let counted = self.run_transport();
        let paced = self.paced_stella(&counted, CALLS_PER_MINUTE)?;
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

    /// Writes changed outcomes onto their conversations, one `PATCH` each, as many at once as
    /// the org's Kustomer API budget has room for.
    async fn write_outcomes(&self, settings: &Settings, share: u32) -> Result<(), String> {
        let now = self.clock.now_ms();
        let mut record = self.store.org()?;
        if record.follow.write_after_ms.is_some_and(|t| t > now) {
            return Ok(());
        }
        let counted = self.run_transport();
        let metered = self.metered(&counted, share);
        let failed = loop {
            let now = self.clock.now_ms();
            let room = self.budget.borrow_mut().allowance(share, now) as usize;
            if room == 0 {
                if !self.store.outcomes_unwritten(1)?.is_empty() {
                    self.pause_for_budget(now)?;
                }
                break None;
            }
            // The run's outbound calls used up: the rest wait for the next run, at once.
            let room = room.min(self.run_calls.left() as usize);
            if room == 0 {
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
        // Written; or the conversation is gone (nothing to retry); or refused (a key without
        // the update role, an app not upgraded to declare the attributes): an admin can fix
        // that, so it stays unwritten, says why, and all writes wait an hour.
        let (unwritten, write_error, then) = match sent {
            Ok(_) => (false, None, Done),
            Err(Failure::Paced) => return Ok(Later(None)),
            Err(Failure::Retry { wait_ms, .. }) => return Ok(Later(wait_ms)),
            Err(Failure::Fatal {
                code: FetchError::NotFound,
                message,
            }) => (false, Some(message), Done),
            Err(Failure::Fatal { message, .. }) => {
                (true, Some(message), Later(Some(REFUSED_WRITE_WAIT_MS)))
            }
        };
        // Read again: a newer outcome may have come meanwhile (it stays unwritten).
        let Some(current) = self.store.get(&job.conversation_id)? else {
            return Ok(Done);
        };
        if current.outcome.as_ref().map(|o| &o.read) != Some(&outcome.read) {
            return Ok(then);
        }
        let now = self.clock.now_ms();
        self.store.put(&Job {
            outcome: current.outcome.clone().map(|o| JobOutcome {
                unwritten,
                write_error,
                ..o
            }),
            updated_ms: now,
            ..current
        })?;
        Ok(then)
    }

    /// Asks Data Return about the batch's attempts whose fate is unknown: one read from the
    /// earliest of them, so that a survey Stella already has is recorded, not sent again.
    /// `reserved`: the run's calls the batch's attempts need, which the read leaves alone.
    pub(super) async fn look_up_unsure(
        &self,
        batch: &[Job],
        settings: &Settings,
        reserved: u32,
    ) -> Lookup {
        let unsure: Vec<&Job> = batch.iter().filter(|j| j.is_unsure()).collect();
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
        // The same rules as for any record ([`record_check`]): a record that merely claims the
        // survey must not stop it from going out. The earliest match speaks for it.
        let mut found: HashMap<String, (i64, Record)> = HashMap::new();
        let mut keep = |record: Record| {
            let conversation = &record.outcome.conversation_id;
            let job = unsure.iter().find(|j| &j.conversation_id == conversation);
            let Some(matched) =
                job.and_then(|j| record_check::check(&self.sealer, j, &record).ok())
            else {
                return Ok(());
            };
            let this = (Some(matched.created_ms), record.outcome.uuid.as_str());
            let first = found.get(conversation).is_none_or(|(created, known)| {
                record_check::comes_first(this, (Some(*created), &known.outcome.uuid))
            });
            if first {
                found.insert(conversation.clone(), (matched.created_ms, record));
            }
            Ok(())
        };
        let query = DataQuery {
            created_since_ms: Some(since.saturating_sub(CLOCK_SKEW_MS)),
            ..DataQuery::default()
        };
        let (mut cursor, mut pages) = (None, 0);
        let read = self
            .pass(
                settings,
                query,
                &mut cursor,
                &mut pages,
                reserved,
                &mut keep,
            )
            .await;
        let _ = self.save_stella_pace(); // only the window: a failed write loses nothing
        let now = self.clock.now_ms();
        let ask = "Could not ask Agent Connect whether an earlier attempt reached it";
        match read {
            Ok(true) => Lookup::Found(found.into_iter().map(|(c, (_, r))| (c, r)).collect()),
            // More records than one read takes: asked again next time, as for a failure.
            Ok(false) => Lookup::Failed {
                wait_ms: None,
                message: format!("{ask}: too many records to read at once."),
            },
            Err(ReadError::Storage(message)) => Lookup::Failed {
                wait_ms: None,
                message,
            },
            Err(ReadError::Service(Failure::Fatal { .. })) => Lookup::Refused,
            Err(ReadError::Service(failure)) => {
                let (wait_ms, message) = self.wait_for(failure, now);
                let message = message.unwrap_or_else(|| {
                    "the org's Agent Connect calls for this minute are used up".into()
                });
                Lookup::Failed {
                    wait_ms,
                    message: format!("{ask}: {message}"),
                }
            }
        }
    }
}

impl JobOutcome {
    /// A record's outcome as a job keeps it, not yet written onto the conversation.
    pub(super) fn from_record(record: Record) -> Self {
        let created_ms = (record.created_at.as_deref())
            .and_then(timestamp::parse)
            .map(timestamp::to_millis);
        Self {
            read: record.outcome,
            created_ms,
            unwritten: true,
            write_error: None,
        }
    }
}
