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
            let spent = b.spend(now);
            let r = server.call(now);
            b.settle(spent, Some(&r), now);
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
        let first = b.spend(0);
        let second = b.spend(0);
        assert_eq!(b.allowance(50, 0), 0, "both under way");
        assert_eq!(b.next_window(0), LOOK_AGAIN_MS);
        b.settle(first, None, 5);
        assert_eq!(b.allowance(50, 5), 1, "a call with no answer says nothing");
        let third = b.spend(5);
        b.settle(third, Some(&answer(1000, 998, 60)), 10);
        assert_eq!(
            b.allowance(50, 10),
            497,
            "half of 1,000, less the two calls counted and the one still under way"
        );
        b.settle(second, Some(&answer(1000, 997, 60)), 10);
        assert_eq!(b.allowance(50, 10), 497);
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
        let spent = b.spend(300);
        let r = server.call(300);
        b.settle(spent, Some(&r), 300);
        for _ in 0..20 {
            let spent = b.spend(9_500);
            let r = server.call(9_500);
            b.settle(spent, Some(&r), 9_500);
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
                    let spent = b.spend(now);
                    let r = server.call(now);
                    b.settle(spent, Some(&r), now);
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
        let spent = b.spend(0);
        b.settle(spent, Some(&answer(100, 99, 60)), 0);
        assert_eq!(
            b.allowance(1, 0),
            MAX_CALLS_PER_SURVEY - 1,
            "1% of 100 is one call"
        );
    }

    #[test]
    fn nothing_left_and_no_reset_said_is_looked_at_again() {
        let mut b = Budget::default();
        let call = b.spend(0);
        let spent = Response::new(200, "{}")
            .with_header("x-ratelimit-limit", "100")
            .with_header("x-ratelimit-remaining", "0");
        b.settle(call, Some(&spent), 0);
        assert_eq!(b.allowance(50, 10), 0);
        assert!(b.allowance(50, LOOK_AGAIN_MS) > 0, "not stuck for good");
    }

    #[test]
    fn an_answer_from_a_new_window_counts_what_it_says_is_left() {
        let mut b = Budget::default();
        let spent = b.spend(0);
        b.settle(spent, Some(&answer(1000, 999, 10)), 0);
        // The server's next window, where other integrations already spent all but 3.
        let spent = b.spend(10_500);
        b.settle(spent, Some(&answer(1000, 3, 10)), 10_500);
        assert_eq!(b.allowance(50, 10_500), 3);
    }

    #[test]
    fn an_answer_to_a_call_from_before_the_turn_says_nothing_of_the_new_window() {
        let mut b = Budget::default();
        let spent = b.spend(0);
        b.settle(spent, Some(&answer(100, 99, 10)), 0);
        let spent = b.spend(9_950);
        assert_eq!(
            b.allowance(50, 10_000),
            50 - 1,
            "turned by the clock; the call carried"
        );
        // Its answer arrives late, from the old window: no end or count is taken from it.
        b.settle(spent, Some(&answer(100, 0, 1)), 10_100);
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
        let spent = b.spend(0);
        b.settle(spent, Some(&answer(1000, 600, 30)), 0);
        assert_eq!(b.allowance(50, 0), 100, "400 used already: 100 left of 500");
    }

    #[test]
    fn others_spending_the_budget_leave_nothing_and_the_window_turns() {
        let mut b = Budget::default();
        let spent = b.spend(0);
        b.settle(spent, Some(&answer(1000, 900, 30)), 0);
        let spent = b.spend(10_000);
        b.settle(spent, Some(&answer(1000, 0, 20)), 10_000);
        assert_eq!(b.allowance(50, 10_000), 0, "no call into a 429");
        assert_eq!(b.next_window(10_000), 30_000);
        assert_eq!(b.allowance(50, 30_000), 500, "a new window");
    }

    #[test]
    fn a_server_that_reports_no_budget_is_not_paced() {
        let mut b = Budget::default();
        assert_eq!(b.next_window(0), LOOK_AGAIN_MS);
        let spent = b.spend(0);
        b.settle(spent, Some(&Response::new(200, "{}")), 0);
        assert_eq!(b.allowance(50, 0), u32::MAX);
        let spent = b.spend(5);
        b.settle(spent, Some(&answer(100, 99, 10)), 5);
        assert_eq!(b.allowance(50, 5), 49, "until it reports one");
    }

    /// How a server words `x-ratelimit-reset`.
    #[derive(Clone, Copy, Debug)]
    enum Reset {
        /// Seconds until the window ends, rounded up (the sandbox's, and Kustomer's as seen).
        Seconds,
        /// The instant it ends, in seconds since the epoch.
        EpochSeconds,
        /// The instant it ends, in milliseconds since the epoch.
        EpochMillis,
    }

    /// A budget spent as fast as it allows, every 50 ms for `windows` windows of `window_ms`
    /// (`limit` calls each, the share 50%), while every call reaches the server `delay().0` ms
    /// after it is made and its answer is read `delay().1` ms after the server counted it:
    /// answers come late and out of order, some from the window before. The calls the server
    /// counted in each of its windows.
    fn drive(
        start: i64,
        window_ms: i64,
        windows: i64,
        reset: Reset,
        mut delay: impl FnMut() -> (i64, i64),
    ) -> std::collections::BTreeMap<i64, u32> {
        let limit: u32 = 100;
        let mut counts = std::collections::BTreeMap::<i64, u32>::new();
        let mut b = Budget::default();
        // Under way: (when it reaches the server or is read, the call, its answer once counted).
        let mut flying: Vec<(i64, Spent, Option<Response>)> = Vec::new();
        let mut now = start;
        while now < start + windows * window_ms {
            // What happens by now, in time order: calls reach the server, answers are read.
            flying.sort_by_key(|(at, ..)| std::cmp::Reverse(*at));
            while flying.last().is_some_and(|(at, ..)| *at <= now) {
                let (at, spent, answer) = flying.pop().unwrap();
                match answer {
                    Some(answer) => b.settle(spent, Some(&answer), at),
                    None => {
                        let window = at.div_euclid(window_ms);
                        let n = counts.entry(window).or_default();
                        *n += 1;
                        let end = (window + 1) * window_ms;
                        let value = match reset {
                            Reset::Seconds => ((end - at + 999) / 1000).to_string(),
                            Reset::EpochSeconds => (end / 1000).to_string(),
                            Reset::EpochMillis => end.to_string(),
                        };
                        let answer = Response::new(200, "{}")
                            .with_header("x-ratelimit-limit", limit.to_string())
                            .with_header(
                                "x-ratelimit-remaining",
                                limit.saturating_sub(*n).to_string(),
                            )
                            .with_header("x-ratelimit-reset", value);
                        flying.push((at + delay().1, spent, Some(answer)));
                        flying.sort_by_key(|(at, ..)| std::cmp::Reverse(*at));
                    }
                }
            }
            while b.allowance(50, now) > 0 {
                let spent = b.spend(now);
                flying.push((now + delay().0, spent, None));
            }
            now += 50;
        }
        counts
    }

    /// Delays from `min` to `max` ms, the same on every run.
    fn delays(seed: u64, min: i64, max: i64) -> impl FnMut() -> i64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            min + ((state >> 33) % (max - min + 1) as u64) as i64
        }
    }

    #[test]
    fn answers_read_late_never_start_the_count_again_mid_window() {
        // Epoch times, as a real clock reads them; windows of a minute, 10 s and 2 s.
        let epoch = 1_790_000_000_000;
        for (window_ms, seed) in [(60_000, 1), (10_000, 2), (2_000, 3), (60_000, 4)] {
            let mut late = delays(seed, 0, 2_500);
            let counts = drive(epoch, window_ms, 12, Reset::Seconds, || (0, late()));
            let over: Vec<_> = counts.iter().filter(|(_, n)| **n > 50).collect();
            assert!(over.is_empty(), "{window_ms} ms windows: {counts:?}");
            let full = counts.values().filter(|n| **n >= 40).count();
            assert!(
                full >= 8,
                "{window_ms} ms windows, too few used: {counts:?}"
            );
        }
    }

    #[test]
    fn calls_reaching_the_server_late_count_in_the_window_they_reach() {
        let epoch = 1_790_000_000_000;
        for (window_ms, seed) in [(60_000, 5), (10_000, 6), (2_000, 7)] {
            let (mut up, mut down) = (delays(seed, 0, 1_500), delays(seed + 100, 0, 1_500));
            let counts = drive(epoch + 7, window_ms, 12, Reset::Seconds, || (up(), down()));
            assert!(
                counts.values().all(|n| *n <= 50),
                "{window_ms} ms windows: {counts:?}"
            );
            let full = counts.values().filter(|n| **n >= 35).count();
            assert!(
                full >= 6,
                "{window_ms} ms windows, too few used: {counts:?}"
            );
        }
    }

    #[test]
    fn every_wording_of_the_reset_keeps_each_window_within_the_share() {
        let epoch = 1_790_000_000_000;
        for reset in [Reset::Seconds, Reset::EpochSeconds, Reset::EpochMillis] {
            let (mut up, mut down) = (delays(8, 0, 800), delays(9, 0, 2_000));
            let counts = drive(epoch + 333, 10_000, 12, reset, || (up(), down()));
            assert!(counts.values().all(|n| *n <= 50), "{reset:?}: {counts:?}");
            let full = counts.values().filter(|n| **n >= 40).count();
            assert!(full >= 8, "{reset:?}, too few used: {counts:?}");
        }
    }

    #[test]
    fn a_late_answer_from_the_same_window_does_not_turn_it() {
        let mut b = Budget::default();
        let first = b.spend(0);
        b.settle(first, Some(&answer(100, 99, 60)), 0);
        let calls: Vec<Spent> = (0..40).map(|_| b.spend(10_000)).collect();
        // Counted at 10 s (50 s left), read 2.5 s later: its window ends at 62.5 s at the
        // latest, past the 60 s known, but no earlier than 59 s.
        for call in calls {
            b.settle(call, Some(&answer(100, 59, 50)), 12_500);
        }
        assert_eq!(b.allowance(50, 12_500), 50 - 41, "still the same window");
        assert_eq!(b.next_window(12_500), 60_000);
    }

    #[test]
    fn a_call_under_way_when_the_window_turns_counts_in_the_next_too() {
        let mut b = Budget::default();
        let first = b.spend(0);
        b.settle(first, Some(&answer(100, 99, 10)), 0);
        // Made well before the end, still unanswered at the turn: it may reach the server after.
        let slow: Vec<Spent> = (0..10).map(|_| b.spend(5_000)).collect();
        assert_eq!(
            b.allowance(50, 10_000),
            50 - 10,
            "the ten under way count here too"
        );
        // Their answers come from the window before (it ends at 10 s; one at 9.2 s said 1 s):
        // they did not reach the new window, which ends at 20 s.
        let next = b.spend(10_000);
        b.settle(next, Some(&answer(100, 98, 10)), 10_000);
        for call in slow {
            b.settle(call, Some(&answer(100, 80, 1)), 10_200);
        }
        assert_eq!(b.allowance(50, 10_200), 50 - 1, "given back once known");
    }

    #[test]
    fn a_reset_that_says_an_earlier_end_does_not_start_the_count_again() {
        let mut b = Budget::default();
        let first = b.spend(0);
        b.settle(first, Some(&answer(100, 99, 60)), 0);
        for _ in 0..49 {
            let call = b.spend(1_000);
            b.settle(call, Some(&answer(100, 50, 59)), 1_000);
        }
        // A 429's reset from a fault, or a server's odd word: 3 s.
        let odd = b.spend(2_000);
        b.settle(odd, Some(&answer(100, 0, 3)), 2_000);
        assert_eq!(
            b.allowance(50, 5_000),
            0,
            "the share of this window is spent"
        );
        assert_eq!(
            b.next_window(5_000),
            59_000,
            "no earlier than the window could end"
        );
    }

    #[test]
    fn a_new_instance_waits_out_the_window_the_one_before_used_up() {
        let mut b = Budget::default();
        assert!(b.is_fresh());
        b.resume(30_000);
        assert!(!b.is_fresh());
        assert_eq!(b.allowance(50, 10_000), 0, "no probe into a spent window");
        assert_eq!(b.next_window(10_000), 30_000);
        assert_eq!(
            b.allowance(50, 30_000),
            PROBE_CALLS,
            "then it probes as any new one"
        );
    }
}
