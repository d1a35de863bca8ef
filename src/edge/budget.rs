//! The org's Kustomer API budget: one per org and window (a minute on Kustomer), shared by all
//! of the org's keys and apps. Kustomer reports it on every answer (`x-ratelimit-limit`,
//! `-remaining`, `-reset`); the scheduler keeps its own calls under the admin's share of each
//! window ("Share of the Kustomer API budget"), so a burst of due surveys is spread over
//! windows instead of being sent into 429s while the org's other integrations starve.
//!
//! Pure bookkeeping, with the time passed in. Windows are the server's: their end is learned
//! from `x-ratelimit-reset`, which is whole seconds, so a call in the last second before the
//! end as known may already fall in the next window, and counts for both.

use crate::http::Response;
use crate::response::ratelimit_reset_seconds;
use crate::timestamp;

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

/// What this app knows of the org's budget, and what it has used of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// The org's calls per window, as Kustomer last said.
    limit: Option<u32>,
    /// The org's calls left in the window as of the last answer, less this app's calls since.
    remaining: Option<u32>,
    /// When the current window ends: the earliest estimate from this window's answers.
    window_end: Option<i64>,
    /// This app's calls in the current window.
    used: u32,
    /// This app's calls in the window's uncertain last second, which may belong to the next.
    carried: u32,
    /// An answer came without a budget: the server keeps none, and calls are not paced.
    unreported: bool,
    /// When this instance last turned to a new window: answers to calls spent before then
    /// speak of the window before.
    window_began: i64,
    /// When `remaining` was read.
    remaining_at: i64,
}

impl Budget {
    /// A call spent at `spent_ms` is over at `now_ms`: its answer's budget headers are read.
    pub fn settle(&mut self, answer: Option<&Response>, spent_ms: i64, now_ms: i64) {
        let stale = spent_ms < self.window_began;
        // Before the budget is known, and when a call in a window whose end is not known yet
        // got no answer, the call is not counted: nothing says it reached the server, and no
        // answer will come to say when its window ends.
        let unknown = self.window_end.is_none() && !stale;
        if self.limit.is_none() || (answer.is_none() && unknown) {
            self.used = self.used.saturating_sub(1);
        }
        if let Some(response) = answer.filter(|_| !stale) {
            self.observe(response, now_ms);
        }
    }

    /// Reads the budget headers of a Kustomer answer received at `now_ms`.
    fn observe(&mut self, response: &Response, now_ms: i64) {
        // The window first: an answer from a new window turns it before its counts are read.
        let now = timestamp::from_millis(now_ms as f64);
        let reset = response.header("x-ratelimit-reset");
        if let Some(seconds) = reset.and_then(|v| ratelimit_reset_seconds(v, now)) {
            let end = now_ms.saturating_add(seconds as i64 * 1000);
            match self.window_end {
                // The server has started a new window (its end is past this one's by more than
                // the rounding): what was carried is the new window's.
                Some(known) if end > known + UNCERTAIN_MS => self.turn(Some(end), now_ms),
                Some(known) => self.window_end = Some(known.min(end)),
                None => self.window_end = Some(end),
            }
        }
        let number = |name| response.header(name)?.trim().parse::<u32>().ok();
        let first = self.limit.is_none();
        match number("x-ratelimit-limit") {
            Some(limit) => self.limit = Some(limit),
            None => self.unreported = first,
        }
        if let Some(remaining) = number("x-ratelimit-remaining") {
            (self.remaining, self.remaining_at) = (Some(remaining), now_ms);
            if first {
                // A restart forgets this app's calls: count all of the window's as its own.
                let spent = self.limit.unwrap_or(0).saturating_sub(remaining);
                self.used = self.used.max(spent);
            }
        }
    }

    /// How many calls this app may make now, with `share_percent` of each window's budget.
    pub fn allowance(&mut self, share_percent: u32, now_ms: i64) -> u32 {
        if self.window_end.is_some_and(|end| now_ms >= end) {
            self.turn(None, now_ms);
        }
        // Counts from an answer that said no end (no reset): they hold for a second.
        let endless = self.window_end.is_none() && self.remaining.is_some();
        if endless && now_ms >= self.remaining_at + LOOK_AGAIN_MS {
            self.turn(None, now_ms);
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
            allowed = allowed.min(room_after.saturating_sub(self.carried));
        }
        if let Some(remaining) = self.remaining {
            allowed = allowed.min(remaining);
        }
        allowed
    }

    /// Counts one call made at `now_ms`.
    pub fn spend(&mut self, now_ms: i64) {
        self.used = self.used.saturating_add(1);
        if self.uncertain(now_ms) {
            self.carried = self.carried.saturating_add(1);
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.saturating_sub(1);
        }
    }

    /// When to look again once the allowance is spent: the window's end, when known.
    pub fn next_window(&self, now_ms: i64) -> i64 {
        self.window_end
            .filter(|end| *end > now_ms)
            .unwrap_or(now_ms + LOOK_AGAIN_MS)
    }

    fn uncertain(&self, now_ms: i64) -> bool {
        self.window_end
            .is_some_and(|end| now_ms >= end - UNCERTAIN_MS)
    }

    /// A new window at `now_ms`: its end as the server says, or unknown until its first answer.
    fn turn(&mut self, end: Option<i64>, now_ms: i64) {
        self.used = self.carried;
        self.carried = 0;
        self.remaining = None;
        self.window_end = end;
        self.window_began = now_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(limit: u32, remaining: u32, reset_seconds: u32) -> Response {
        Response::new(200, "{}")
            .with_header("x-ratelimit-limit", limit.to_string())
            .with_header("x-ratelimit-remaining", remaining.to_string())
            .with_header("x-ratelimit-reset", reset_seconds.to_string())
    }

    /// Spends what is allowed at `now`, answering each call as the server would.
    fn spend_all(b: &mut Budget, share: u32, now: i64, server: &mut Server) -> u32 {
        let mut n = 0;
        while b.allowance(share, now) > 0 {
            b.spend(now);
            let r = server.call(now);
            b.settle(Some(&r), now, now);
            n += 1;
        }
        n
    }

    /// Fixed windows of `window_ms` from 0, with `limit` calls each, shared with `others`.
    struct Server {
        limit: u32,
        window_ms: i64,
        counts: std::collections::BTreeMap<i64, u32>,
    }

    impl Server {
        fn call(&mut self, now: i64) -> Response {
            let window = now / self.window_ms;
            let n = self.counts.entry(window).or_default();
            *n += 1;
            let end = (window + 1) * self.window_ms;
            let reset = ((end - now) + 999) / 1000;
            answer(self.limit, self.limit.saturating_sub(*n), reset as u32)
        }
    }

    #[test]
    fn before_any_answer_one_survey_probes() {
        let mut b = Budget::default();
        assert_eq!(b.allowance(50, 0), PROBE_CALLS);
        b.spend(0);
        b.spend(0);
        assert_eq!(b.allowance(50, 0), 0, "both under way");
        assert_eq!(b.next_window(0), LOOK_AGAIN_MS);
        b.settle(None, 5, 5);
        assert_eq!(b.allowance(50, 5), 1, "a call with no answer says nothing");
        b.spend(5);
        b.settle(Some(&answer(1000, 998, 60)), 10, 10);
        assert_eq!(
            b.allowance(50, 10),
            498,
            "half of 1,000, less the two calls made"
        );
    }

    #[test]
    fn a_share_of_each_window_and_never_more_in_any_of_the_servers_windows() {
        for start in [0, 300, 999, 1500, 9_001, 9_999] {
            let mut server = Server {
                limit: 100,
                window_ms: 10_000,
                counts: Default::default(),
            };
            let mut b = Budget::default();
            let mut total = 0;
            // Calls as fast as allowed, every 100 ms for a minute.
            let mut now = start;
            while now < start + 60_000 {
                total += spend_all(&mut b, 50, now, &mut server);
                now += 100;
            }
            for (window, n) in &server.counts {
                assert!(*n <= 50, "start {start}: window {window} got {n} calls");
            }
            assert!(
                total >= 250,
                "start {start}: only {total} calls in 6 windows"
            );
        }
    }

    #[test]
    fn calls_in_a_windows_uncertain_last_second_count_for_the_next_one_too() {
        let mut server = Server {
            limit: 100,
            window_ms: 10_000,
            counts: Default::default(),
        };
        let mut b = Budget::default();
        // One answer early in the window: its end is known as 10.3 s (whole-second reset).
        b.spend(300);
        let r = server.call(300);
        b.settle(Some(&r), 300, 300);
        for _ in 0..20 {
            b.spend(9_500);
            let r = server.call(9_500);
            b.settle(Some(&r), 9_500, 9_500);
        }
        // The server's next window starts at 10 s; the end known here is still 10.3 s.
        spend_all(&mut b, 50, 10_100, &mut server);
        spend_all(&mut b, 50, 12_000, &mut server);
        assert!(
            server.counts[&1] <= 50,
            "window 1 got {} calls",
            server.counts[&1]
        );
        assert!(
            server.counts[&1] >= 25,
            "window 1 got only {}",
            server.counts[&1]
        );
    }

    #[test]
    fn a_window_whose_share_went_out_in_its_last_second_is_not_the_end() {
        let mut server = Server {
            limit: 100,
            window_ms: 2_000,
            counts: Default::default(),
        };
        let mut b = Budget::default();
        // Everything falls due in the last second of a window, as the end is known; surveys
        // take two calls each, started only with room for both.
        let mut sent = 0;
        let mut now = 1_500;
        while now < 20_000 {
            while b.allowance(50, now) >= 2 {
                for _ in 0..2 {
                    b.spend(now);
                    let r = server.call(now);
                    b.settle(Some(&r), now, now);
                    sent += 1;
                }
            }
            now = b.next_window(now).max(now + 10);
        }
        assert!(
            sent >= 8 * 40,
            "only {sent} calls in 9 windows: {:?}",
            server.counts
        );
        assert!(
            server.counts.values().all(|n| *n <= 50),
            "{:?}",
            server.counts
        );
    }

    #[test]
    fn a_share_too_small_for_one_survey_still_sends_one_a_window() {
        let mut b = Budget::default();
        b.spend(0);
        b.settle(Some(&answer(100, 99, 60)), 0, 0);
        assert_eq!(
            b.allowance(1, 0),
            MAX_CALLS_PER_SURVEY - 1,
            "1% of 100 is one call"
        );
    }

    #[test]
    fn nothing_left_and_no_reset_said_is_looked_at_again() {
        let mut b = Budget::default();
        b.spend(0);
        let spent = Response::new(200, "{}")
            .with_header("x-ratelimit-limit", "100")
            .with_header("x-ratelimit-remaining", "0");
        b.settle(Some(&spent), 0, 0);
        assert_eq!(b.allowance(50, 10), 0);
        assert!(b.allowance(50, LOOK_AGAIN_MS) > 0, "not stuck for good");
    }

    #[test]
    fn an_answer_from_a_new_window_counts_what_it_says_is_left() {
        let mut b = Budget::default();
        b.spend(0);
        b.settle(Some(&answer(1000, 999, 10)), 0, 0);
        // The server's next window, where other integrations already spent all but 3.
        b.spend(10_500);
        b.settle(Some(&answer(1000, 3, 10)), 10_500, 10_500);
        assert_eq!(b.allowance(50, 10_500), 3);
    }

    #[test]
    fn an_answer_to_a_call_from_before_the_turn_says_nothing_of_the_new_window() {
        let mut b = Budget::default();
        b.spend(0);
        b.settle(Some(&answer(100, 99, 10)), 0, 0);
        b.spend(9_950);
        assert_eq!(
            b.allowance(50, 10_000),
            50 - 1,
            "turned by the clock; the call carried"
        );
        // Its answer arrives late, from the old window: no end or count is taken from it.
        b.settle(Some(&answer(100, 0, 1)), 9_950, 10_100);
        assert_eq!(b.allowance(50, 10_100), 49);
    }

    #[test]
    fn after_a_windows_last_second_a_whole_survey_still_fits() {
        let mut server = Server {
            limit: 100,
            window_ms: 2_000,
            counts: Default::default(),
        };
        let mut b = Budget::default();
        // All of the share asked for in the window's last second as known.
        spend_all(&mut b, 50, 1_500, &mut server);
        let after = b.allowance(50, b.next_window(1_500));
        assert!(
            after >= MAX_CALLS_PER_SURVEY,
            "{after} calls: no survey could start"
        );
    }

    #[test]
    fn a_restart_counts_the_windows_calls_as_its_own() {
        let mut b = Budget::default();
        b.spend(0);
        b.settle(Some(&answer(1000, 600, 30)), 0, 0);
        assert_eq!(b.allowance(50, 0), 100, "400 used already: 100 left of 500");
    }

    #[test]
    fn others_spending_the_budget_leave_nothing_and_the_window_turns() {
        let mut b = Budget::default();
        b.spend(0);
        b.settle(Some(&answer(1000, 900, 30)), 0, 0);
        b.spend(10_000);
        b.settle(Some(&answer(1000, 0, 20)), 10_000, 10_000);
        assert_eq!(b.allowance(50, 10_000), 0, "no call into a 429");
        assert_eq!(b.next_window(10_000), 30_000);
        assert_eq!(b.allowance(50, 30_000), 500, "a new window");
    }

    #[test]
    fn a_server_that_reports_no_budget_is_not_paced() {
        let mut b = Budget::default();
        assert_eq!(b.next_window(0), LOOK_AGAIN_MS);
        b.spend(0);
        b.settle(Some(&Response::new(200, "{}")), 0, 0);
        assert_eq!(b.allowance(50, 0), u32::MAX);
        b.spend(5);
        b.settle(Some(&answer(100, 99, 10)), 5, 5);
        assert_eq!(b.allowance(50, 5), 49, "until it reports one");
    }
}
