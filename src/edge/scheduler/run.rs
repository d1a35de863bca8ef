//! An alarm's run: the jobs due now, in batches as large as the org's Kustomer API budget and
//! the run's outbound calls have room for, each leased, attempted ([`super::attempt`]) and
//! settled ([`job::settle`]); then outcomes, the deleted-customers sweep and housekeeping.

use super::settings::OrgSettings;
use super::{Clock, Scheduler, CONCURRENCY, MAX_PER_ALARM};
use crate::edge::job::{self, Attempt, AttemptEnd, Job, JobState};
use crate::edge::subrequests::PER_JOB;
use crate::edge::{Store, Transport};
use crate::settings::Settings;
use futures_util::future::join_all;

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// Works through every job due now, then keeps house: finished jobs past the retention
    /// period go, and the org's keys go when no job needs them. Returns how many jobs it
    /// handled.
    pub async fn run_due(&self) -> Result<usize, String> {
        // The alarm that runs this is spent, and jobs change: it is computed afresh afterwards,
        // whatever a call that came in meanwhile set it to.
        self.alarm.forget();
        self.run_calls.restart(); // a new invocation: Cloudflare counts its calls afresh
        let result = self.run_due_jobs().await;
        self.alarm.forget();
        result
    }

    async fn run_due_jobs(&self) -> Result<usize, String> {
        let started = self.clock.now_ms();
        let settings = self.org_settings()?;
        self.release_held(settings.ready())?;
        self.kustomer.unpause();
        self.resume_budget(started)?;
        let handled = self.run_batches(started, &settings).await?;
        let share = settings.share();
        match settings.ready() {
            Some(s) => {
                self.follow_outcomes(s, share).await?;
                self.sweep_deleted(s, share).await?; // customers deleted in Kustomer: once a day
            }
            None => self.defer_follow()?,
        }
        let now = self.clock.now_ms();
        self.store
            .prune(now.saturating_sub(self.config.retention_ms()), now)?;
        self.keep_storage(now)?;
        // Kept while a job is pending, or while outcomes are read back or wait to be written.
        self.drop_settings_if_idle()?;
        Ok(handled)
    }

    /// Batch after batch of the jobs due at `started`, up to [`MAX_PER_ALARM`]: how many.
    async fn run_batches(&self, started: i64, settings: &OrgSettings) -> Result<usize, String> {
        let mut handled = 0;
        while handled < MAX_PER_ALARM {
            let Some(batch) = self.next_batch(started, settings)? else {
                break;
            };
            handled += batch.len();
            // Attempts whose fate is unknown are first looked up in Data Return, all at once,
            // within the calls the batch leaves.
            let reserved = batch.len() as u32 * PER_JOB;
            let lookup = match settings.ready() {
                Some(s) => self.look_up_unsure(&batch, s, reserved).await,
                None => super::lookup::Lookup::None,
            };
            // Each job is leased before its first await, so the attempts overlap safely; one
            // slow server holds back only its own job.
            let jobs = batch.into_iter();
            let results = join_all(jobs.map(|job| self.process(job, settings, &lookup))).await;
            let paced = results.iter().any(|r| matches!(r, Ok(true)));
            self.kustomer.set_cold(paced);
            results.into_iter().collect::<Result<Vec<bool>, String>>()?;
        }
        Ok(handled)
    }

    /// The next batch: as many due jobs as the org's API budget has room for now (the rest
    /// wait for the next window, still due and with no attempt counted), and only jobs whose
    /// every call fits in what is left of the run's outbound calls (Cloudflare's cap per
    /// invocation: the rest stay due, for the next run, at once). `None`: none now.
    fn next_batch(&self, started: i64, settings: &OrgSettings) -> Result<Option<Vec<Job>>, String> {
        let now = self.clock.now_ms();
        let room = self.kustomer.jobs(settings.share(), now);
        let whole = self.run_calls.jobs(0);
        let lease_before = started - self.config.lease_ms;
        let size = CONCURRENCY.min(room as usize).min(whole);
        let mut batch = self.store.due(started, lease_before, size)?;
        // A batch with an attempt whose fate is unknown reads Data Return first: at least one
        // page of it fits too.
        let looks_up = (settings.ready()).is_some_and(|s: &Settings| s.stella_api_secret.is_some())
            && batch.iter().any(Job::is_unsure);
        if looks_up {
            batch.truncate(self.run_calls.jobs(1));
        }
        if !batch.is_empty() {
            return Ok(Some(batch));
        }
        if room == 0 && !self.store.due(started, lease_before, 1)?.is_empty() {
            self.pause_for_budget(now)?;
        }
        Ok(None)
    }

    /// One job's attempt; `true` when the budget stopped it before anything was sent.
    async fn process(
        &self,
        job: Job,
        settings: &OrgSettings,
        lookup: &super::lookup::Lookup,
    ) -> Result<bool, String> {
        // The batch may have waited on Data Return: a close or resend that came meanwhile
        // replaced the job, and the new one is left to its own due time.
        if lookup.waited() && self.store.get(&job.conversation_id)?.as_ref() != Some(&job) {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        let leased = self.lease(&job, now)?;
        let attempt = match lookup.settles(&job, now) {
            Some(attempt) => attempt,
            None => self.attempt(&leased, settings).await,
        };
        let paced = attempt.end == AttemptEnd::Paced;
        self.finish(job, leased, attempt)?;
        Ok(paced)
    }

    /// The lease: if this attempt never finishes (the process died), the job falls due again
    /// just after the lease expires, and the alarm is set for then.
    fn lease(&self, job: &Job, now: i64) -> Result<Job, String> {
        let leased = Job {
            state: JobState::Sending,
            attempts: job.attempts.saturating_add(1),
            first_attempt_ms: job.first_attempt_ms.or(Some(now)),
            due_ms: Some(now.saturating_add(self.config.lease_ms).saturating_add(1)),
            updated_ms: now,
            ..job.clone()
        };
        self.store.put(&leased)?;
        Ok(leased)
    }

    /// Stores what the attempt made of the `leased` job ([`job::settle`]); a paced attempt
    /// puts back the job as it was `waiting`, nothing sent and no attempt spent (an expired
    /// lease stays expired: the job is picked again once there is room).
    fn finish(&self, waiting: Job, leased: Job, attempt: Attempt) -> Result<(), String> {
        // A close that arrived during the attempt replaced the job: leave the new one alone,
        // but if this attempt's survey went out, the new one must know, or the resurvey rule
        // would let a second survey go out for the new close.
        let current = self.store.get(&leased.conversation_id)?;
        // Who the attempt's request went to, kept by the attempt just before it was sent.
        let sent_to = (current.as_ref()).and_then(|c| c.sent_to.clone());
        let customer = (current.as_ref()).and_then(|c| c.customer.clone());
        if let Some(current) = current.filter(|c| c.generation != leased.generation) {
            if matches!(attempt.end, AttemptEnd::Sent { .. } | AttemptEnd::Found(_)) {
                let now = self.clock.now_ms();
                self.store.put(&Job {
                    previous_sent_ms: Some(now),
                    updated_ms: now,
                    ..current
                })?;
            }
            return Ok(());
        }
        let next = if attempt.end == AttemptEnd::Paced {
            waiting
        } else {
            let leased = Job {
                sent_to: sent_to.or(leased.sent_to),
                customer: customer.or(leased.customer),
                ..leased
            };
            let (now, random) = (self.clock.now_ms(), self.clock.random());
            job::settle(leased, attempt, now, &self.config.retry, random)
        };
        self.store.put(&next)
    }
}
