//! The scheduler's outbound calls, each within its limits: the run's cap on calls per
//! invocation ([`Counted`]), the org's Kustomer API budget share
//! ([`KustomerPacer`](crate::edge::budget::KustomerPacer)), and the org's Agent Connect minute
//! ([`StellaPacer`](crate::edge::agent_connect::StellaPacer)).

use super::{Clock, Scheduler};
use crate::edge::agent_connect::Paced;
use crate::edge::budget::Metered;
use crate::edge::subrequests::Counted;
use crate::edge::{Store, Transport};

/// Where an instance leaves, for the next one, until when the org's API budget has no room.
const BUDGET_PAUSE_KEY: &str = "budget:paused-until";

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// The transport of the alarm run under way: each call counted against its cap.
    pub(super) fn run_transport(&self) -> Counted<'_, T> {
        Counted {
            inner: &self.transport,
            calls: &self.run_calls,
        }
    }

    /// `inner`'s Kustomer calls metered against the org's API budget share.
    pub(super) fn metered<'a, X: Transport>(
        &'a self,
        inner: &'a X,
        share: u32,
    ) -> Metered<'a, X, impl Fn() -> i64 + 'a> {
        self.kustomer.metered(inner, || self.clock.now_ms(), share)
    }

    /// The org's API budget has no room now: what waits for it waits until the window turns,
    /// and so does the next instance, if this one stops meanwhile.
    pub(super) fn pause_for_budget(&self, now: i64) -> Result<(), String> {
        let until = self.kustomer.pause(now);
        self.store
            .cache_put(BUDGET_PAUSE_KEY, &until.to_string(), until)
    }

    /// A new instance's first run: the budget waits out the window the one before used up.
    pub(super) fn resume_budget(&self, now: i64) -> Result<(), String> {
        self.kustomer.resume_from(|| {
            let until = self.store.cache_get(BUDGET_PAUSE_KEY, now)?;
            Ok(until.and_then(|t| t.parse::<i64>().ok()))
        })
    }

    /// A transport for Agent Connect's read APIs within the org's
    /// [`StellaPace`](crate::edge::agent_connect::StellaPace), up to `cap` calls in the minute: the
    /// window is loaded from the org's record on first use. Call [`Self::save_stella_pace`]
    /// after.
    pub(super) fn paced_stella<'a, M: Transport>(
        &'a self,
        inner: &'a M,
        cap: u32,
    ) -> Result<Paced<'a, M>, String> {
        if !self.stella.is_loaded() {
            self.stella
                .load(self.store.org()?.stella_pace.unwrap_or_default());
        }
        Ok(self.stella.paced(inner, self.clock.now_ms(), cap))
    }

    /// Writes the window back into the org's record, if it changed.
    pub(super) fn save_stella_pace(&self) -> Result<(), String> {
        let pace = self.stella.current();
        let mut record = self.store.org()?;
        if pace.is_some() && record.stella_pace != pace {
            record.stella_pace = pace;
            self.store.put_org(&record)?;
        }
        Ok(())
    }

    /// When the org's read window has room again for a user allowed `cap` calls in it.
    pub(super) fn stella_window(&self, cap: u32) -> Option<i64> {
        self.stella.next_window(cap)
    }
}
