//! The org's Kustomer API budget: one per org and window (a minute on Kustomer), shared by all
//! of the org's keys and apps. Kustomer reports it on every answer (`x-ratelimit-limit`,
//! `-remaining`, `-reset`); the scheduler keeps its own calls under the admin's share of each
//! window ("Share of the Kustomer API budget"), so a burst of due surveys is spread over
//! windows instead of being sent into 429s while the org's other integrations starve.
//!
//! Pure bookkeeping, with the time passed in. Windows are the server's: their end is learned
//! from `x-ratelimit-reset`, whole seconds (rounded up) from when the server answered, which is
//! somewhere between when the call was made and when its answer is read. Each answer therefore
//! bounds the end: no earlier than the call plus the reset less a second, no later than the
//! reading plus the reset. A late answer widens its bounds and never moves the window on: only
//! an answer whose earliest end is past the window's latest is from the next window. A call
//! made between the window's earliest and latest end may fall in either, and counts for both;
//! so does a call still under way when the window turns.

use super::{Request, SendError, Transport};
use crate::http::Response;
use crate::response::ratelimit_reset_seconds;
use crate::timestamp;
use std::cell::{Cell, RefCell};

/// How far the end of a window may be off: `x-ratelimit-reset` is whole seconds.
const UNCERTAIN_MS: i64 = 1000;
/// Calls allowed before the first answer says what the budget is: one survey's worth.
pub const PROBE_CALLS: u32 = 2;
/// When to look again if nothing says when the budget allows another call.
const LOOK_AGAIN_MS: i64 = 1000;
/// Kustomer calls per survey in steady state (the conversation and its customer; the agent's
/// email, tag names and brand name are cached): what a job is started with.
pub const CALLS_PER_SURVEY: u32 = 2;
/// The most Kustomer calls a survey takes (the agent's email, the tag names, and the brand's
/// name when the brand map is set, too). Also the least this app takes of any window, whatever
/// the share: a share too small for one survey would send none at all.
pub const MAX_CALLS_PER_SURVEY: u32 = 5;

/// When a window ends, as far as answers tell: no earlier than `earliest`, no later than
/// `latest` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct End {
    earliest: i64,
    latest: i64,
}

/// One call counted against the budget, handed back with its answer ([`Budget::settle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a call spent is settled with its answer"]
pub struct Spent {
    at_ms: i64,
    /// The window (as this instance counts them) it was made in.
    window: u64,
    /// Made where that window may already have ended: counted for the next one too.
    carried: bool,
}

/// What this app knows of the org's budget, and what it has used of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// The org's calls per window, as Kustomer last said.
    limit: Option<u32>,
    /// The org's calls left in the window, as the answers say, less this app's calls since.
    remaining: Option<u32>,
    /// When the current window ends, from its answers.
    end: Option<End>,
    /// This app's calls in the current window.
    used: u32,
    /// This app's calls since the window's earliest end, which may belong to the next.
    carried: u32,
    /// This window's calls not carried whose answers have not come: they may reach the server
    /// after the window turns, so they count for the next one too.
    pending: u32,
    /// This app's calls whose answers have not come, in any window.
    in_flight: u32,
    /// An answer came without a budget: the server keeps none, and calls are not paced.
    unreported: bool,
    /// The windows this instance has turned to: answers to calls made before the last turn
    /// speak of an earlier window.
    window: u64,
    /// When `remaining` was read.
    remaining_at: i64,
    /// No calls before then: the instance before this one had used up its share until then.
    resume_at: Option<i64>,
}

impl Budget {
    /// A call spent at `spent.at_ms` is over at `now_ms`: its answer's budget headers are read.
    pub fn settle(&mut self, spent: Spent, answer: Option<&Response>, now_ms: i64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let current = spent.window == self.window;
        if current && !spent.carried {
            self.pending = self.pending.saturating_sub(1);
        }
        // Before the budget is known, and when a call in a window whose end is not known yet
        // got no answer, the call is not counted: nothing says it reached the server, and no
        // answer will come to say when its window ends.
        let unknown = self.end.is_none() && current;
        if self.limit.is_none() || (answer.is_none() && unknown) {
            self.used = self.used.saturating_sub(1);
        }
        let Some(response) = answer else { return };
        if current {
            self.observe(response, spent, now_ms);
        } else if spent.window + 1 == self.window {
            self.recount(response, spent, now_ms);
        }
    }

    /// Reads the budget headers of an answer received at `now_ms` to a call of this window.
    fn observe(&mut self, response: &Response, spent: Spent, now_ms: i64) {
        // The window first: an answer from a new window turns it before its counts are read.
        if let Some(said) = end_said(response, spent.at_ms, now_ms) {
            match self.end {
                // Its window cannot have ended before this one could: the server has started a
                // new window, and this call is the new window's (counted there with the rest
                // carried or under way).
                Some(known) if said.earliest > known.latest => {
                    if !spent.carried {
                        self.pending += 1;
                    }
                    self.turn(Some(said));
                }
                // Its latest end bounds this window's too (its own window ends no earlier), its
                // earliest only when it was read before this window could end (then it is of
                // this window). An end earlier than this window's earliest is not believed:
                // the count would start again before the window is over.
                Some(known) => {
                    let latest = known.latest.min(said.latest).max(known.earliest);
                    let earliest = if now_ms < known.earliest {
                        known.earliest.max(said.earliest).min(latest)
                    } else {
                        known.earliest
                    };
                    self.end = Some(End { earliest, latest });
                }
                None => self.end = Some(said),
            }
        }
        let number = |name| response.header(name)?.trim().parse::<u32>().ok();
        let first = self.limit.is_none();
        match number("x-ratelimit-limit") {
            Some(limit) => self.limit = Some(limit),
            None => self.unreported = first,
        }
        if let Some(reported) = number("x-ratelimit-remaining") {
            // Calls still under way may not be in the count yet; an answer from earlier in the
            // window (read late) says more is left than there is.
            let left = reported.saturating_sub(self.in_flight);
            let left = self.remaining.map_or(left, |known| known.min(left));
            (self.remaining, self.remaining_at) = (Some(left), now_ms);
            if first {
                // A restart forgets this app's calls: count all of the window's as its own,
                // and the calls still under way, which may not be among them yet.
                let spent = self.limit.unwrap_or(0).saturating_sub(reported);
                self.used = self.used.max(spent.saturating_add(self.in_flight));
            }
        }
    }

    /// An answer, read after the window turned, to a call made in the window before: counted
    /// in this window too (carried or under way), it is not, when its window ended before this
    /// one could.
    fn recount(&mut self, response: &Response, spent: Spent, now_ms: i64) {
        let before = end_said(response, spent.at_ms, now_ms)
            .zip(self.end)
            .is_some_and(|(said, known)| said.latest < known.earliest);
        if before {
            self.used = self.used.saturating_sub(1);
        }
    }

    /// A new instance picks up where the one before stopped (its share of a window used up
    /// until `until_ms`): its first calls, made before any answer says what is left, would
    /// otherwise go over that window.
    pub fn resume(&mut self, until_ms: i64) {
        self.resume_at = Some(until_ms);
    }

    /// Nothing is known yet: no call made, no answer read, nothing resumed.
    pub fn is_fresh(&self) -> bool {
        *self == Self::default()
    }

    /// How many calls this app may make now, with `share_percent` of each window's budget.
    pub fn allowance(&mut self, share_percent: u32, now_ms: i64) -> u32 {
        if let Some(at) = self.resume_at {
            if now_ms < at {
                return 0;
            }
            self.resume_at = None;
        }
        if self.end.is_some_and(|end| now_ms >= end.latest) {
            self.turn(None);
        }
        // Counts from an answer that said no end (no reset): they hold for a second.
        let endless = self.end.is_none() && self.remaining.is_some();
        if endless && now_ms >= self.remaining_at + LOOK_AGAIN_MS {
            self.turn(None);
        }
        let Some(limit) = self.limit else {
            if self.unreported {
                return u32::MAX;
            }
            return PROBE_CALLS.saturating_sub(self.used);
        };
        let share = u64::from(limit) * u64::from(share_percent.min(100)) / 100;
        let cap = (share as u32).max(MAX_CALLS_PER_SURVEY);
        let mut allowed = cap.saturating_sub(self.used);
        if self.uncertain(now_ms) {
            // Room is left for one survey after the turn, all of its calls, so that an answer
            // then says where the new window ends.
            let room_after = cap.saturating_sub(MAX_CALLS_PER_SURVEY);
            allowed = allowed.min(room_after.saturating_sub(self.carried + self.pending));
        }
        if let Some(remaining) = self.remaining {
            allowed = allowed.min(remaining);
        }
        allowed
    }

    /// Counts one call made at `now_ms`; its answer (or none) is settled with what this returns.
    pub fn spend(&mut self, now_ms: i64) -> Spent {
        self.used = self.used.saturating_add(1);
        self.in_flight = self.in_flight.saturating_add(1);
        let carried = self.uncertain(now_ms);
        if carried {
            self.carried = self.carried.saturating_add(1);
        } else {
            self.pending = self.pending.saturating_add(1);
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.saturating_sub(1);
        }
        Spent {
            at_ms: now_ms,
            window: self.window,
            carried,
        }
    }

    /// When to look again once the allowance is spent: the window's latest end, when known (or
    /// the end the instance before left).
    pub fn next_window(&self, now_ms: i64) -> i64 {
        self.end
            .map(|end| end.latest)
            .or(self.resume_at)
            .filter(|end| *end > now_ms)
            .unwrap_or(now_ms + LOOK_AGAIN_MS)
    }

    /// The window may have ended: a call now may fall in the next.
    fn uncertain(&self, now_ms: i64) -> bool {
        self.end.is_some_and(|end| now_ms >= end.earliest)
    }

    /// A new window at `now_ms`: its end as the server says, or unknown until its first
    /// answer. What was carried, and what is still under way, is the new window's.
    fn turn(&mut self, end: Option<End>) {
        self.used = self.carried.saturating_add(self.pending);
        self.carried = 0;
        self.pending = 0;
        self.remaining = None;
        self.end = end;
        self.window += 1;
    }
}

/// When an answer says its window ends: `x-ratelimit-reset` seconds (rounded up) from when the
/// server answered, between `spent_ms` and `now_ms`; or an instant, exact in milliseconds or
/// to the second.
fn end_said(response: &Response, spent_ms: i64, now_ms: i64) -> Option<End> {
    let value = response.header("x-ratelimit-reset")?.trim();
    let n: f64 = value
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    if n >= 1e12 {
        let at = n as i64;
        return Some(End {
            earliest: at,
            latest: at,
        });
    }
    if n >= 1e9 {
        let at = (n * 1000.0) as i64;
        return Some(End {
            earliest: at - UNCERTAIN_MS,
            latest: at + UNCERTAIN_MS,
        });
    }
    let now = timestamp::from_millis(now_ms as f64);
    let seconds = ratelimit_reset_seconds(value, now)? as i64;
    Some(End {
        earliest: spent_ms.saturating_add((seconds - 1) * 1000),
        latest: now_ms.saturating_add(seconds * 1000),
    })
}

/// The org's Kustomer API budget as an instance paces its calls by it: what it knows of the
/// budget, until when due jobs wait for it, and whether the last batch had a job the budget
/// stopped mid-way. One per scheduler; its calls share it through [`Metered`].
#[derive(Debug, Default)]
pub struct KustomerPacer {
    budget: RefCell<Budget>,
    /// Until when due jobs wait for the budget.
    paused_until: Cell<Option<i64>>,
    /// The last batch had a job the budget stopped mid-way (an uncached agent or tag name):
    /// the next one is sized for every job's calls, so none is stopped again for good.
    cold: Cell<bool>,
}

impl KustomerPacer {
    /// `inner`'s calls counted against `share_percent` of each window, at the times `now` says.
    pub fn metered<'a, T, N: Fn() -> i64>(
        &'a self,
        inner: &'a T,
        now: N,
        share_percent: u32,
    ) -> Metered<'a, T, N> {
        Metered {
            inner,
            pacer: self,
            now,
            share: share_percent,
        }
    }

    /// How many calls may be made now ([`Budget::allowance`]).
    pub fn allowance(&self, share_percent: u32, now_ms: i64) -> u32 {
        self.budget.borrow_mut().allowance(share_percent, now_ms)
    }

    /// How many jobs may start now, each with room for all of its calls: two when the agent's
    /// email, the tag names and the brand name are cached, five after a batch found them
    /// missing. Never none while a warm job would fit: its calls' answers are what move the
    /// budget on (a window whose end no answer has said yet).
    pub fn jobs(&self, share_percent: u32, now_ms: i64) -> u32 {
        let calls = if self.cold.get() {
            MAX_CALLS_PER_SURVEY
        } else {
            CALLS_PER_SURVEY
        };
        let allowed = self.allowance(share_percent, now_ms);
        match allowed / calls {
            0 => allowed / CALLS_PER_SURVEY,
            n => n,
        }
    }

    /// Whether the last batch had a job the budget stopped mid-way.
    pub fn set_cold(&self, cold: bool) {
        self.cold.set(cold);
    }

    /// No room now: due jobs wait until the window turns, which this returns.
    pub fn pause(&self, now_ms: i64) -> i64 {
        let until = self.next_window(now_ms);
        self.paused_until.set(Some(until));
        until
    }

    /// A new run: due jobs wait for nothing until the budget says so again.
    pub fn unpause(&self) {
        self.paused_until.set(None);
    }

    /// Until when due jobs wait for the budget, if they do.
    pub fn paused_until(&self) -> Option<i64> {
        self.paused_until.get()
    }

    /// [`Budget::next_window`].
    pub fn next_window(&self, now_ms: i64) -> i64 {
        self.budget.borrow().next_window(now_ms)
    }

    /// A new instance's first run picks up where the one before stopped ([`Budget::resume`]):
    /// `stored` is asked only while nothing is known yet.
    pub fn resume_from<E>(&self, stored: impl FnOnce() -> Result<Option<i64>, E>) -> Result<(), E> {
        if !self.budget.borrow().is_fresh() {
            return Ok(());
        }
        if let Some(until) = stored()? {
            self.budget.borrow_mut().resume(until);
        }
        Ok(())
    }
}

/// Kustomer calls counted against the org's API budget: a call the budget has no room for is
/// not made ([`SendError::Paced`]), and every answer's budget headers are read.
pub struct Metered<'a, T, N> {
    inner: &'a T,
    pacer: &'a KustomerPacer,
    now: N,
    share: u32,
}

impl<T: Transport, N: Fn() -> i64> Transport for Metered<'_, T, N> {
    async fn send(&self, request: Request) -> Result<Response, SendError> {
        let now = (self.now)();
        let spent = {
            let mut budget = self.pacer.budget.borrow_mut();
            if budget.allowance(self.share, now) == 0 {
                return Err(SendError::Paced);
            }
            budget.spend(now)
        };
        let answer = self.inner.send(request).await;
        let settled = (self.now)();
        (self.pacer.budget.borrow_mut()).settle(spent, answer.as_ref().ok(), settled);
        answer
    }
}

#[cfg(test)]
mod tests;
