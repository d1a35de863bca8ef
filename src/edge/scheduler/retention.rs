//! The alarm's storage housekeeping ([`crate::edge::retention`]): finished entries lose the
//! customer's personal data after `PERSONAL_DATA_DAYS`, and the oldest finished entries go
//! early while the object is at 80% of its ceiling. Bounded work per run; never a pending job.

use super::{Clock, Scheduler};
use crate::edge::job::Removal;
use crate::edge::retention::{self, Mark};
use crate::edge::{Store, Transport};

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// Runs after the retention prune of every alarm run.
    pub(super) fn keep_storage(&self, now: i64) -> Result<(), String> {
        let mut record = self.store.org()?;
        let before = record.storage.clone();
        let watch = &mut record.storage;
        // Personal data: the next finished entries past the period, from where the walk stopped.
        let days = self.config.personal_data_days;
        let until = now.saturating_sub(self.config.personal_data_ms());
        let expired = self.store.finished_after(
            watch.scrubbed_to.as_ref(),
            until,
            retention::SCRUB_PER_RUN,
        )?;
        for job in expired {
            watch.scrubbed_to = Some(Mark::of(&job));
            // An outcome still to be written onto the conversation keeps its comment until it
            // is: the write changes the entry, which brings it back into the walk.
            if job.outcome_unwritten() {
                continue;
            }
            let scrubbed = job.clone().without_personal_data(Removal::Expired { days });
            if scrubbed != job {
                self.store.put(&scrubbed)?;
            }
        }
        // Size: the oldest finished entries, a bounded batch, while at the threshold.
        let ceiling = self.config.storage_ceiling_bytes;
        if retention::over_threshold(self.store.database_size()?, ceiling) {
            let pruned = self.store.prune_oldest(retention::PRUNE_PER_RUN)?;
            if pruned > 0 {
                watch.pruned_early = watch.pruned_early.saturating_add(pruned as u64);
                watch.last_pruned_early_ms = Some(now);
            }
        }
        if record.storage != before {
            self.store.put_org(&record)?;
        }
        Ok(())
    }

    /// When the next finished entry's personal data falls due for removal, for the alarm.
    pub(super) fn next_expiry(&self) -> Result<Option<i64>, String> {
        let record = self.store.org()?;
        let next = self
            .store
            .finished_after(record.storage.scrubbed_to.as_ref(), i64::MAX, 1)?;
        Ok(next
            .first()
            .map(|j| j.updated_ms.saturating_add(self.config.personal_data_ms())))
    }

    /// The storage's state for the delivery log's answer, with the pages' warning.
    pub(super) fn storage_status(&self) -> Result<serde_json::Value, String> {
        let record = self.store.org()?;
        Ok(retention::status(
            self.store.database_size()?,
            self.config.storage_ceiling_bytes,
            &record.storage,
        ))
    }
}
