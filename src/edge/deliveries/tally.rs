//! The summary: counts per state, day, reason and agent, gathered from counters kept per hour.

use super::{agent_of, shown_state, DeliveryQuery, LOG_STATES, MAX_SUMMARY_DAYS, MAX_SUMMARY_ROWS};
use crate::edge::job::{Job, JobState};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The summary's counts, as a store gathers them (a row at a time, or a job at a time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Per admin day ([`DeliveryQuery::day_of`]), per [`LOG_STATES`] index.
    days: BTreeMap<i64, [u64; 5]>,
    by_reason: BTreeMap<String, u64>,
    by_agent: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one job the summary covers.
    pub fn count(&mut self, query: &DeliveryQuery, job: &Job) {
        self.add_state(shown_state(job).as_str(), query.day_of(job.closed_at_ms), 1);
        if let Some(reason) = &job.reason {
            self.add_reason(reason, 1);
        }
        if let Some(agent) = agent_of(job) {
            self.add_agent(&agent.to_ascii_lowercase(), 1);
        }
    }

    /// `n` jobs of one counter ([`TallyKey`]), its hour on the admin's day.
    pub fn add_counter(&mut self, query: &DeliveryQuery, key: &TallyKey, n: u64) {
        self.add_state(key.state, query.day_of(key.hour.saturating_mul(HOUR_MS)), n);
        if !key.reason.is_empty() {
            self.add_reason(&key.reason, n);
        }
        if !key.agent.is_empty() {
            self.add_agent(&key.agent, n);
        }
    }

    /// `n` jobs shown as `state` closed on `day`; a state the log does not show is ignored.
    pub fn add_state(&mut self, state: &str, day: i64, n: u64) {
        let shown =
            JobState::from_code(state).and_then(|s| LOG_STATES.iter().position(|&l| l == s));
        if let Some(i) = shown {
            self.days.entry(day).or_default()[i] += n;
        }
    }

    /// `n` jobs with this reason.
    pub fn add_reason(&mut self, reason: &str, n: u64) {
        *self.by_reason.entry(reason.to_owned()).or_default() += n;
    }

    /// `n` jobs about this agent (lower case).
    pub fn add_agent(&mut self, agent: &str, n: u64) {
        *self.by_agent.entry(agent.to_owned()).or_default() += n;
    }

    /// The answer's `summary`.
    pub fn summary(&self) -> Value {
        let mut by_state = Map::new();
        for (i, state) in LOG_STATES.iter().enumerate() {
            let total: u64 = self.days.values().map(|d| d[i]).sum();
            by_state.insert(state.as_str().into(), total.into());
        }
        let skip = self.days.len().saturating_sub(MAX_SUMMARY_DAYS);
        let days: Vec<Value> = (self.days.iter().skip(skip))
            .filter_map(|(day, n)| {
                Some(json!({
                    "day": date(*day)?, "sent": n[2], "skipped": n[3], "failed": n[4], "pending": n[0] + n[1],
                }))
            })
            .collect();
        json!({
            "byState": by_state,
            "days": days,
            "byReason": top(&self.by_reason, "reason"),
            "byAgent": top(&self.by_agent, "agent"),
        })
    }
}

/// An hour in ms: the summary's counters are kept per UTC hour of close.
pub const HOUR_MS: i64 = 3_600_000;

/// One of the summary's counters: jobs closed in one UTC hour, shown in one state, with one
/// reason and one agent (empty for none). Each store keeps these up to date with every job it
/// writes or deletes, so a summary reads counters, never every job: see [`TallyPlan`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TallyKey {
    /// `closed_at_ms` in whole UTC hours since 1970 (rounded down).
    pub hour: i64,
    /// [`shown_state`]'s name.
    pub state: &'static str,
    /// The reason code, or empty.
    pub reason: String,
    /// The agent ([`agent_of`]) in ASCII lower case, or empty.
    pub agent: String,
}

impl TallyKey {
    /// The counter `job` counts in.
    pub fn of(job: &Job) -> Self {
        Self {
            hour: job.closed_at_ms.div_euclid(HOUR_MS),
            state: shown_state(job).as_str(),
            reason: job.reason.as_deref().unwrap_or_default().to_owned(),
            agent: agent_of(job)
                .map(str::to_ascii_lowercase)
                .unwrap_or_default(),
        }
    }

    /// Whether the summary of `query` counts this counter: its reason and agent filters (the
    /// close-time window is the [`TallyPlan`]'s).
    pub fn in_summary(&self, query: &DeliveryQuery) -> bool {
        query.reason.as_deref().is_none_or(|r| self.reason == r)
            && query.agent.as_deref().is_none_or(|a| self.agent == a)
    }
}

/// How a store gathers a summary: whole hours from its counters, and the ragged ends of the
/// close-time window (at most an hour each) from the jobs themselves, through `jobs_closed`. So
/// a summary costs the counters of its window plus at most two hours of closes, whatever the
/// log holds.
///
/// Days are the admin's: a counter's hour counts on the day its first minute falls on at the
/// query's offset. Exact for whole-hour offsets; with a half- or quarter-hour offset (India,
/// Nepal, …) the hour that straddles local midnight counts on the day it begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyPlan {
    /// Counters of hours `from..to` (`None`: unbounded on that side); `None` when none is read
    /// (one conversation, or a window within two hours).
    pub hours: Option<(Option<i64>, Option<i64>)>,
    /// Close-time windows `[from, to)` whose jobs are counted one by one.
    pub scans: Vec<(Option<i64>, Option<i64>)>,
}

impl TallyPlan {
    /// The plan for `query`'s summary.
    pub fn of(query: &DeliveryQuery) -> Self {
        let whole = (query.from_ms, query.to_ms);
        if query.conversation_id.is_some() {
            // At most one job: its row is the cheapest read there is.
            return Self {
                hours: None,
                scans: vec![whole],
            };
        }
        let first = query
            .from_ms
            .map(|ms| ms.div_euclid(HOUR_MS) + i64::from(ms.rem_euclid(HOUR_MS) != 0));
        let last = query.to_ms.map(|ms| ms.div_euclid(HOUR_MS));
        if let (Some(first), Some(last)) = (first, last) {
            if first >= last {
                return Self {
                    hours: None,
                    scans: vec![whole],
                };
            }
        }
        let mut scans = Vec::new();
        if let (Some(from), Some(first)) = (query.from_ms, first) {
            if from < first * HOUR_MS {
                scans.push((Some(from), Some(first * HOUR_MS)));
            }
        }
        if let (Some(to), Some(last)) = (query.to_ms, last) {
            if last * HOUR_MS < to {
                scans.push((Some(last * HOUR_MS), Some(to)));
            }
        }
        Self {
            hours: Some((first, last)),
            scans,
        }
    }

    /// `query` narrowed to one of [`Self::scans`].
    pub fn scan_query(
        query: &DeliveryQuery,
        (from_ms, to_ms): (Option<i64>, Option<i64>),
    ) -> DeliveryQuery {
        DeliveryQuery {
            from_ms,
            to_ms,
            ..query.clone()
        }
    }

    /// Whether [`Self::hours`] holds `hour`.
    pub fn holds_hour(&self, hour: i64) -> bool {
        self.hours.is_some_and(|(first, last)| {
            first.is_none_or(|f| hour >= f) && last.is_none_or(|l| hour < l)
        })
    }
}

/// The most frequent first (then by name), at most [`MAX_SUMMARY_ROWS`]: what the SQL store's
/// `ORDER BY n DESC, key LIMIT` returns too.
fn top(counts: &BTreeMap<String, u64>, key: &str) -> Vec<Value> {
    let mut rows: Vec<(&String, &u64)> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    rows.iter()
        .take(MAX_SUMMARY_ROWS)
        .map(|(name, n)| json!({ key: name, "count": n }))
        .collect()
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01.
pub(super) fn date(day: i64) -> Option<String> {
    const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
    let julian = i32::try_from(day.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
    let d = time::Date::from_julian_day(julian).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_whole_hours_from_counters_and_the_ragged_ends_from_jobs() {
        const H: i64 = HOUR_MS;
        let plan = |from: Option<i64>, to: Option<i64>| {
            TallyPlan::of(&DeliveryQuery {
                from_ms: from,
                to_ms: to,
                ..DeliveryQuery::default()
            })
        };
        let all = plan(None, None);
        assert_eq!((all.hours, all.scans.len()), (Some((None, None)), 0));
        // Local midnights at a whole-hour offset are whole hours: counters only.
        let days = plan(Some(10 * H), Some(58 * H));
        assert_eq!(
            (days.hours, days.scans.len()),
            (Some((Some(10), Some(58))), 0)
        );
        assert!(days.holds_hour(10) && days.holds_hour(57) && !days.holds_hour(58));
        assert!(!days.holds_hour(9));
        // Ragged ends: at most an hour each, read from the jobs.
        let ragged = plan(Some(10 * H + 5), Some(58 * H + 7));
        assert_eq!(ragged.hours, Some((Some(11), Some(58))));
        assert_eq!(
            ragged.scans,
            [
                (Some(10 * H + 5), Some(11 * H)),
                (Some(58 * H), Some(58 * H + 7))
            ]
        );
        let open_end = plan(Some(-H - 1), None);
        assert_eq!(open_end.hours, Some((Some(-1), None)));
        assert_eq!(open_end.scans, [(Some(-H - 1), Some(-H))]);
        // A window within two hours, or one conversation: its jobs alone.
        let narrow = plan(Some(10 * H + 5), Some(11 * H + 7));
        assert_eq!((narrow.hours, narrow.scans.len()), (None, 1));
        let one = TallyPlan::of(&DeliveryQuery {
            conversation_id: Some("c".into()),
            ..DeliveryQuery::default()
        });
        assert_eq!((one.hours, one.scans), (None, vec![(None, None)]));
    }

    #[test]
    fn a_counter_counts_on_the_admins_day() {
        let key = TallyKey {
            hour: 23, // 1970-01-01T23:00Z
            state: "sent",
            reason: String::new(),
            agent: "sam@acme.example".into(),
        };
        for (offset, day) in [(0, "1970-01-01"), (60, "1970-01-02"), (-60, "1970-01-01")] {
            let q = DeliveryQuery {
                utc_offset_minutes: offset,
                ..DeliveryQuery::default()
            };
            let mut tally = Tally::default();
            tally.add_counter(&q, &key, 3);
            let summary = tally.summary();
            assert_eq!(summary["days"][0]["day"], day, "{offset}");
            assert_eq!(summary["days"][0]["sent"], 3);
            assert_eq!(summary["byAgent"][0]["count"], 3);
            assert_eq!(summary["byReason"], json!([]), "no reason, no row");
        }
        let filtered = |reason: Option<&str>, agent: Option<&str>| DeliveryQuery {
            reason: reason.map(Into::into),
            agent: agent.map(Into::into),
            ..DeliveryQuery::default()
        };
        assert!(key.in_summary(&filtered(None, Some("sam@acme.example"))));
        assert!(!key.in_summary(&filtered(None, Some("kim@acme.example"))));
        assert!(!key.in_summary(&filtered(Some("reopened"), None)));
    }
}
