//! Survey outcomes: what Agent Connect's Data Return says became of each survey sent (sent,
//! suppressed, bounced, …) and how the customer rated the agent, read back per org
//! ([`super::read`]) and written onto the Kustomer conversation.

use super::read::DAY_MS;
use super::{Clock, Scheduler, CONCURRENCY};
use crate::edge::agent_connect::FOLLOW_DAYS;
use crate::edge::interpret::{interpret, Failure, FetchError};
use crate::edge::job::{Job, JobOutcome};
use crate::edge::kustomer_api::Kustomer;
use crate::edge::{Store, Transport};
use crate::settings::Settings;
use crate::survey_outcome;
use futures_util::future::join_all;
use serde_json::json;

/// How long writes wait after Kustomer refused one (a missing role, an app not upgraded).
const REFUSED_WRITE_WAIT_MS: i64 = 3_600_000;

/// What became of one outcome's write.
enum Written {
    /// Written, or given up for good (noted on the job).
    Done,
    /// Not written for now: after this wait, if Kustomer said.
    Later(Option<i64>),
}
use Written::{Done, Later};

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
            let at = [record.follow.write_after_ms, self.kustomer.paused_until()]
                .into_iter()
                .flatten()
                .fold(now, i64::max);
            next = Some(next.map_or(at, |n: i64| n.min(at)));
        }
        Ok(next)
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
            let room = self.kustomer.allowance(share, now) as usize;
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
        let body = json!({ "custom": custom }).to_string();
        // A request that cannot be made (a URL over the bound) is refused like a call.
        let sent = match Kustomer::of(settings).patch_json(&segments, body) {
            Ok(request) => {
                let now = self.clock.now_ms();
                let keys = [settings.kustomer_api_key.expose()];
                interpret(transport.send(request).await, now, "Kustomer", &keys)
            }
            Err(refused) => Err(refused),
        };
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
}
