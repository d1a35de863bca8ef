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

#[test]
fn a_pacer_starts_only_jobs_with_room_for_all_their_calls() {
    let pacer = KustomerPacer::default();
    assert_eq!(
        pacer.jobs(50, 0),
        1,
        "before any answer: one survey's probe"
    );
    let spent = pacer.budget.borrow_mut().spend(0);
    pacer
        .budget
        .borrow_mut()
        .settle(spent, Some(&answer(100, 99, 60)), 0);
    assert_eq!(
        pacer.jobs(50, 0),
        49 / CALLS_PER_SURVEY,
        "warm: two calls a job"
    );
    pacer.set_cold(true);
    assert_eq!(pacer.jobs(50, 0), 49 / MAX_CALLS_PER_SURVEY, "cold: five");
    pacer.budget.borrow_mut().used = 49;
    assert_eq!(pacer.jobs(50, 0), 0);
}

#[test]
fn a_paused_pacer_holds_due_jobs_until_the_window_turns() {
    let pacer = KustomerPacer::default();
    let spent = pacer.budget.borrow_mut().spend(0);
    (pacer.budget.borrow_mut()).settle(spent, Some(&answer(100, 0, 60)), 0);
    assert_eq!(pacer.paused_until(), None);
    assert_eq!(pacer.pause(10), 60_000);
    assert_eq!(pacer.paused_until(), Some(60_000));
    pacer.unpause();
    assert_eq!(pacer.paused_until(), None);
}

#[test]
fn only_a_fresh_pacer_resumes_from_the_instance_before() {
    let pacer = KustomerPacer::default();
    pacer.resume_from(|| Ok::<_, ()>(Some(30_000))).unwrap();
    assert_eq!(pacer.allowance(50, 10_000), 0);
    let asked = std::cell::Cell::new(false);
    let again = pacer.resume_from(|| {
        asked.set(true);
        Ok::<_, ()>(Some(90_000))
    });
    assert_eq!((again, asked.get()), (Ok(()), false), "resumed once");
    assert_eq!(pacer.allowance(50, 30_000), PROBE_CALLS);
}

/// Answers every call at once with a budget of 100 a minute, 99 left.
struct Answering;

impl Transport for Answering {
    async fn send(&self, _request: Request) -> Result<Response, SendError> {
        Ok(answer(100, 99, 60))
    }
}

#[test]
fn metered_calls_stop_when_the_share_is_spent() {
    use futures_util::FutureExt;
    let pacer = KustomerPacer::default();
    let metered = pacer.metered(&Answering, || 0, 50);
    let call = || {
        metered
            .send(Request::get("https://x.test/".into()))
            .now_or_never()
    };
    let mut made = 0;
    while let Some(Ok(_)) = call() {
        made += 1;
    }
    assert_eq!(made, 50, "half of 100");
    assert!(matches!(call(), Some(Err(SendError::Paced))));
}
