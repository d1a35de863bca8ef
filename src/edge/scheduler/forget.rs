//! Forgetting customers as the scheduler does it ([`crate::edge::forget`] holds the rules): the
//! forget command, the check every send makes, the daily sweep for customers deleted in
//! Kustomer, and the org's audit list.

use super::{Clock, Scheduler};
use crate::edge::audit::{self, AuditEntry, AuditKind};
use crate::edge::codes::ErrorCode;
use crate::edge::forget::{self, Stop, Who, MAX_FORGET_PER_CALL, TOMBSTONE_MS, TOMBSTONE_PREFIX};
use crate::edge::{Reply, SendError, Store, Transport};
use crate::settings::Settings;
use serde_json::json;

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// The forget command: cancels the customer's pending surveys and removes their data from
    /// every entry found (at most [`MAX_FORGET_PER_CALL`]; `more` says to run it again), keeps
    /// their digests for [`TOMBSTONE_MS`] so that a survey whose customer was not known yet is
    /// not sent either, and records the forget (a count, never whom).
    pub(super) fn forget_command(&self, org: &str, who: &str) -> Result<Reply, String> {
        let who = match Who::parse(who) {
            Ok(who) => who,
            Err(message) => return Ok(Reply::error(ErrorCode::InvalidId, message)),
        };
        let digests = who.digests(&self.sealer, org);
        let now = self.clock.now_ms();
        for digest in &digests {
            let key = format!("{TOMBSTONE_PREFIX}{digest}");
            self.store
                .cache_put(&key, "1", now.saturating_add(TOMBSTONE_MS))?;
        }
        let mut record = self.store.org()?;
        let until = now.saturating_add(TOMBSTONE_MS);
        if record.forget.tombstones_until.is_none_or(|u| u < until) {
            record.forget.tombstones_until = Some(until);
            self.store.put_org(&record)?;
        }
        let (entries, more) = self.forget_digests(&digests)?;
        self.audit(AuditEntry::forget(now, AuditKind::Forget, entries, more))?;
        let message = if more {
            format!("{entries} entries changed; more are left: run it again.")
        } else {
            format!("{entries} entries changed.")
        };
        Ok(Reply::json(
            200,
            json!({"status": "forgotten", "entries": entries, "more": more, "message": message}),
        ))
    }

    /// The org's id as its record names it (the jobs' org), or the caller's.
    fn org_id(&self) -> Result<String, String> {
        Ok(self.store.org()?.org.unwrap_or_default())
    }

    /// Forgets the jobs whose customer keys hold any of `digests`: how many changed, and
    /// whether more are left.
    pub(super) fn forget_digests(&self, digests: &[String]) -> Result<(usize, bool), String> {
        let jobs = self.store.customer_jobs(digests, MAX_FORGET_PER_CALL + 1)?;
        let more = jobs.len() > MAX_FORGET_PER_CALL;
        let now = self.clock.now_ms();
        let mut touched = 0;
        for job in jobs.iter().take(MAX_FORGET_PER_CALL) {
            self.store.put(&forget::without_customer(job, now))?;
            touched += 1;
        }
        if touched > 0 {
            self.alarm.forget(); // pending jobs may have become final
        }
        Ok((touched, more))
    }

    /// Whether a survey about to go to `email` (customer `customer_id`) is for a customer
    /// forgotten in the last [`TOMBSTONE_MS`]: no look-up at all when none was.
    pub(super) fn forgotten(
        &self,
        org: &str,
        customer_id: Option<&str>,
        email: &str,
    ) -> Result<bool, String> {
        let now = self.clock.now_ms();
        if self
            .store
            .org()?
            .forget
            .tombstones_until
            .is_none_or(|u| u <= now)
        {
            return Ok(false);
        }
        let mut whos = vec![Who::Email(email.trim().to_lowercase())];
        whos.extend(customer_id.map(|id| Who::Id(id.to_owned())));
        for who in whos {
            for digest in who.digests(&self.sealer, org) {
                if (self
                    .store
                    .cache_get(&format!("{TOMBSTONE_PREFIX}{digest}"), now)?)
                .is_some()
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// When the deleted-customers sweep is due: only while the org's settings (its Kustomer
    /// key) are kept, which is while any survey is pending or followed.
    pub(super) fn next_sweep(&self) -> Result<Option<i64>, String> {
        let record = self.store.org()?;
        Ok(record
            .forget
            .next_ms
            .filter(|_| record.sealed_settings.is_some()))
    }

    /// Once a day: asks Kustomer for the customers deleted since the last sweep (at most
    /// [`forget::SWEEP_CALLS_PER_DAY`] calls a day, each within the org's API budget share)
    /// and forgets each one found, as the command does. A deleted customer's later closes need
    /// no check of their own: Kustomer no longer has their conversation or address, so no
    /// survey can be made. A failure is kept for the settings page and tried again the next
    /// day.
    pub(super) async fn sweep_deleted(
        &self,
        settings: &Settings,
        share: u32,
    ) -> Result<(), String> {
        self.forget_left_over()?;
        let now = self.clock.now_ms();
        let mut sweep = self.store.org()?.forget;
        let planned = sweep.next_ms;
        if !sweep.due(now, self.config.forget_sweep_ms) {
            if sweep.next_ms != planned {
                self.keep_sweep(&sweep)?; // the first, planned
            }
            return Ok(());
        }
        // The run's own calls: counted against the invocation's subrequests like any other.
        let counted = self.run_transport();
        let metered = self.metered(&counted, share);
        let org = self.org_id()?;
        let stop = loop {
            if let Some(stop) = self.sweep_page(settings, &metered, &org, now).await? {
                break stop;
            }
        };
        let mut sweep = self.store.org()?.forget;
        let every = self.config.forget_sweep_ms;
        sweep.next_ms = Some(sweep.next_after(stop, self.clock.now_ms(), every));
        self.keep_sweep(&sweep)
    }

    /// One page of the sweep: `Some(stop)` when the sweep ends here, `None` to read the next.
    async fn sweep_page(
        &self,
        settings: &Settings,
        metered: &impl Transport,
        org: &str,
        now: i64,
    ) -> Result<Option<Stop>, String> {
        let mut sweep = self.store.org()?.forget;
        if sweep.calls_left(now, self.config.forget_sweep_ms) == 0 {
            return Ok(Some(Stop::CallsSpent));
        }
        let (since, until, page) = sweep.window(now, self.config.retention_ms());
        sweep.calls += 1; // counted before the call: a crash cannot spend more
        self.keep_sweep(&sweep)?;
        let (api, key) = (
            &settings.kustomer_api_url,
            settings.kustomer_api_key.expose(),
        );
        let answer = match forget::search_request(api, key, since, until, page) {
            Ok(request) => metered.send(request).await,
            Err(failure) => Err(SendError::Refused(failure.to_string())),
        };
        let mut sweep = self.store.org()?.forget;
        let next_window = || self.kustomer.next_window(self.clock.now_ms());
        let read = match answer {
            // Nothing was sent, so the call is given back: with the invocation's subrequests
            // spent the next run asks at once; with the budget share spent, its next window.
            Err(e @ (SendError::OverBudget | SendError::Paced)) => {
                sweep.calls = sweep.calls.saturating_sub(1);
                self.keep_sweep(&sweep)?;
                let at = match e {
                    SendError::OverBudget => self.clock.now_ms(),
                    _ => next_window(),
                };
                return Ok(Some(Stop::Paced { at }));
            }
            Err(SendError::Network(e) | SendError::Refused(e)) => Err(e),
            // Over Kustomer's budget after all (other apps spent it): the call counted, and
            // the sweep waits for the window its answer names.
            Ok(response) if response.status == 429 => {
                return Ok(Some(Stop::Paced { at: next_window() }));
            }
            Ok(response) => forget::deleted_customers(&response),
        };
        let (deleted, listed) = match read {
            Ok(found) => found,
            Err(e) => {
                sweep.last_error = Some(e);
                self.keep_sweep(&sweep)?;
                return Ok(Some(Stop::Failed));
            }
        };
        let full = listed >= forget::SEARCH_PAGE_SIZE as usize;
        sweep.read_page(full, self.clock.now_ms());
        sweep.last_error = None;
        self.keep_sweep(&sweep)?;
        for customer in deleted {
            let digests: Vec<String> = (customer.whos().iter())
                .flat_map(|w| w.digests(&self.sealer, org))
                .collect();
            self.forget_deleted(digests)?;
        }
        Ok((!full).then_some(Stop::Done))
    }

    /// Forgets one deleted customer; what one call cannot take waits on the record.
    fn forget_deleted(&self, digests: Vec<String>) -> Result<(), String> {
        let (entries, more) = self.forget_digests(&digests)?;
        if entries > 0 {
            let now = self.clock.now_ms();
            self.audit(AuditEntry::forget(
                now,
                AuditKind::DeletedCustomer,
                entries,
                more,
            ))?;
        }
        if more {
            let mut record = self.store.org()?;
            if record.forget.left_over.len() < forget::MAX_LEFT_OVER {
                record.forget.left_over.push(digests);
                self.store.put_org(&record)?;
            }
        }
        Ok(())
    }

    /// The deleted customers a sweep left for later, forgotten now.
    fn forget_left_over(&self) -> Result<(), String> {
        let mut record = self.store.org()?;
        if record.forget.left_over.is_empty() {
            return Ok(());
        }
        let left = std::mem::take(&mut record.forget.left_over);
        self.store.put_org(&record)?;
        for digests in left {
            self.forget_deleted(digests)?;
        }
        Ok(())
    }

    /// Writes the sweep's state onto the org's record as it is now.
    fn keep_sweep(&self, sweep: &forget::Sweep) -> Result<(), String> {
        let mut record = self.store.org()?;
        let left_over = std::mem::take(&mut record.forget.left_over);
        record.forget = forget::Sweep {
            left_over,
            tombstones_until: record.forget.tombstones_until,
            ..sweep.clone()
        };
        self.store.put_org(&record)
    }

    /// Adds an entry to the org's audit list (kept a year, at most [`audit::MAX_AUDIT`]).
    pub(super) fn audit(&self, entry: AuditEntry) -> Result<(), String> {
        let keep_after = entry.at_ms.saturating_sub(audit::AUDIT_DAYS * 86_400_000);
        self.store.audit_add(&entry, keep_after, audit::MAX_AUDIT)
    }

    /// The settings page's audit list, newest first, and where the deleted-customers sweep
    /// stands.
    pub(super) fn audit_read(&self) -> Result<Reply, String> {
        let now = self.clock.now_ms();
        let after = now.saturating_sub(audit::AUDIT_DAYS * 86_400_000);
        let entries = self.store.audit_list(after, audit::LISTED_AUDIT)?;
        let sweep = self.store.org()?.forget;
        let shown: Vec<_> = entries.iter().map(AuditEntry::shown).collect();
        Ok(Reply::json(
            200,
            json!({
                "entries": shown,
                "days": audit::AUDIT_DAYS,
                "deletedCustomers": {
                    "lastSweep": sweep.done_ms.map(super::iso),
                    "lastError": sweep.last_error,
                },
            }),
        ))
    }
}
