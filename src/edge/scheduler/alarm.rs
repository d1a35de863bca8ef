//! The Durable Object's alarm as the scheduler keeps it: as last set, and the earliest due time
//! added since, so that a close due after the alarm already set writes nothing.

use super::{Clock, Scheduler};
use crate::edge::{Store, Transport};
use std::cell::Cell;

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

/// The alarm as this instance knows it.
#[derive(Debug)]
pub(super) struct Alarm {
    /// As last set, so that a close due after it sets nothing.
    armed: Cell<Armed>,
    /// The earliest due time a call added since the alarm was last set.
    added_due: Cell<Option<i64>>,
}

impl Default for Alarm {
    fn default() -> Self {
        Self {
            armed: Cell::new(Armed::Unknown),
            added_due: Cell::new(None),
        }
    }
}

impl Alarm {
    /// Jobs changed in ways a due time does not say (a job finished, closes held or
    /// released, an alarm run): the alarm is computed afresh from the store.
    pub(super) fn forget(&self) {
        self.armed.set(Armed::Unknown);
    }

    /// Notes a job due at `due_ms`.
    pub(super) fn added(&self, due_ms: i64) {
        let earliest = self.added_due.get().map_or(due_ms, |d| d.min(due_ms));
        self.added_due.set(Some(earliest));
    }

    /// What the alarm should become after the calls since the last answer: a close due after
    /// the alarm already set changes nothing; an unknown alarm is `next()`, from the store.
    /// `not_before` holds a retry back after a failed run.
    pub(super) fn change(
        &self,
        not_before: i64,
        next: impl FnOnce() -> Result<Option<i64>, String>,
    ) -> Result<AlarmChange, String> {
        let added = self.added_due.take();
        let next = match (self.armed.get(), added) {
            (Armed::At(_), None) => return Ok(AlarmChange::Keep),
            (Armed::At(Some(armed)), Some(due)) if armed <= due => return Ok(AlarmChange::Keep),
            (Armed::At(_), Some(due)) => Some(due),
            (Armed::Unknown, _) => next()?,
        };
        let next = next.map(|t| t.max(not_before));
        self.armed.set(Armed::At(next));
        Ok(next.map_or(AlarmChange::Delete, AlarmChange::Set))
    }
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// What the alarm should become after the calls since the last answer: a close due after
    /// the alarm already set changes nothing (no storage write); an unknown alarm is computed
    /// from the store. `not_before` holds a retry back after a failed run.
    pub fn alarm_change(&self, not_before: i64) -> Result<AlarmChange, String> {
        self.alarm.change(not_before, || self.next_alarm())
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
        let due = match (self.store.next_due()?, self.kustomer.paused_until()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_alarm_changes_only_for_an_earlier_job() {
        let alarm = Alarm::default();
        let from_store = || Ok(Some(5_000));
        assert_eq!(alarm.change(0, from_store), Ok(AlarmChange::Set(5_000)));
        assert_eq!(
            alarm.change(0, || panic!("not read")),
            Ok(AlarmChange::Keep)
        );
        alarm.added(9_000);
        assert_eq!(
            alarm.change(0, || panic!("not read")),
            Ok(AlarmChange::Keep)
        );
        alarm.added(3_000);
        alarm.added(4_000);
        assert_eq!(
            alarm.change(0, || panic!("not read")),
            Ok(AlarmChange::Set(3_000))
        );
        alarm.forget();
        assert_eq!(alarm.change(0, || Ok(None)), Ok(AlarmChange::Delete));
        alarm.forget();
        assert_eq!(
            alarm.change(7_000, from_store),
            Ok(AlarmChange::Set(7_000)),
            "held back"
        );
    }
}
