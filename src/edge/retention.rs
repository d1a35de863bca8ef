//! Storage an org can plan on: the rules that keep one org's Durable Object under its size
//! limit, and its finished entries free of the customer's personal data after a while. Pure; the
//! scheduler applies them in the alarm's housekeeping (`scheduler::retention`).
//!
//! - **Size.** Cloudflare refuses writes to an object past 10 GB ([`OBJECT_LIMIT_BYTES`]). The
//!   object reads its own size (`ctx.storage.sql.databaseSize`) on every alarm run; at
//!   [`PRUNE_AT_PERCENT`] of the configured ceiling it deletes the finished entries changed
//!   longest ago, at most [`PRUNE_PER_RUN`] a run, and never a pending survey: a close is never
//!   refused for lack of space. The pages warn while it is there.
//! - **Personal data.** A finished entry keeps the customer's name, e-mail and comment for
//!   `PERSONAL_DATA_DAYS` after its last change (30, as Agent Connect), then loses them
//!   ([`Job::without_personal_data`]). The alarm walks the finished entries once, in the order of
//!   their last change, from a [`Mark`] kept in the org's record: at most [`SCRUB_PER_RUN`] a
//!   run, each found through the `jobs_final` index, none read twice.

use super::job::Job;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What one Durable Object may hold (Cloudflare's limit for SQLite-backed objects).
pub const OBJECT_LIMIT_BYTES: u64 = 10_000_000_000;

/// The default ceiling: half the object's limit. Early pruning starts at 80% of it (4 GB), so
/// 6 GB stay free for what is never pruned: pending surveys of a backlog (an outage of Stella
/// or Kustomer holds every close of the org for up to a day) and the counters, held closes and
/// cache. A DELETE also needs room of its own while it runs, and an object at its limit can
/// no longer write even the job that records a send. At the measured ~1 KB a finished entry
/// (BENCHMARKS.md), 4 GB is about four million entries: 44,000 closes a day kept for 90 days.
pub const DEFAULT_CEILING_BYTES: u64 = 5_000_000_000;

/// The share of the ceiling at which the oldest finished entries start to go, and the pages warn.
pub const PRUNE_AT_PERCENT: u64 = 80;

/// The most finished entries one alarm run deletes for space: a run's storage work stays
/// bounded (each delete also moves a counter); the next run, set at once while due work
/// remains or with the next schedule, deletes more if the size still calls for it.
pub const PRUNE_PER_RUN: usize = 1000;

/// The most finished entries one alarm run scrubs of personal data (each a read and a write).
pub const SCRUB_PER_RUN: usize = 500;

/// A place in the walk over finished entries: their last change, then their id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    /// The entry's last change (ms).
    pub updated_ms: i64,
    /// Its conversation.
    pub conversation_id: String,
}

impl Mark {
    /// The place of `job`.
    pub fn of(job: &Job) -> Self {
        Self {
            updated_ms: job.updated_ms,
            conversation_id: job.conversation_id.clone(),
        }
    }

    /// Whether `job` comes after this place in the walk.
    pub fn before(&self, job: &Job) -> bool {
        (self.updated_ms, self.conversation_id.as_str())
            < (job.updated_ms, job.conversation_id.as_str())
    }
}

/// What the org's object keeps of its storage, in the org's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    /// Finished entries deleted before the end of their retention, for space, ever.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pruned_early: u64,
    /// When the last of them went (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pruned_early_ms: Option<i64>,
    /// How far the personal-data walk has come: every finished entry up to here has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrubbed_to: Option<Mark>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Whether `size_bytes` calls for early pruning against `ceiling_bytes`.
pub fn over_threshold(size_bytes: u64, ceiling_bytes: u64) -> bool {
    u128::from(size_bytes) * 100 >= u128::from(ceiling_bytes) * u128::from(PRUNE_AT_PERCENT)
}

/// The pages' warning, in words, while the size is at or over the threshold; `None` below it.
pub fn warning(size_bytes: u64, ceiling_bytes: u64, watch: &Watch) -> Option<String> {
    if !over_threshold(size_bytes, ceiling_bytes) {
        return None;
    }
    let percent = u128::from(size_bytes) * 100 / u128::from(ceiling_bytes.max(1));
    let pruned = match watch.pruned_early {
        0 => String::new(),
        1 => " 1 entry has been removed early so far.".to_owned(),
        n => format!(" {n} entries have been removed early so far."),
    };
    Some(format!(
        "This org's delivery log uses {} of its {} storage ceiling ({percent}%): the oldest finished entries are removed before the end of their retention, so that new surveys always have room.{pruned} Lower RETENTION_DAYS, or raise STORAGE_CEILING_BYTES (at most 10 GB).",
        size_text(size_bytes),
        size_text(ceiling_bytes),
    ))
}

/// The storage's state for the delivery log's answer (`storage`): the size, the ceiling, how
/// many entries went early, and the warning, if any.
pub fn status(size_bytes: u64, ceiling_bytes: u64, watch: &Watch) -> Value {
    json!({
        "sizeBytes": size_bytes,
        "ceilingBytes": ceiling_bytes,
        "prunedEarly": watch.pruned_early,
        "warning": warning(size_bytes, ceiling_bytes, watch),
    })
}

/// Bytes in words, in decimal units as Cloudflare states its limits.
fn size_text(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=999_999 => format!("{:.0} kB", b / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_starts_at_eighty_percent_of_the_ceiling() {
        assert!(!over_threshold(799, 1000));
        assert!(over_threshold(800, 1000));
        assert!(
            over_threshold(u64::MAX, DEFAULT_CEILING_BYTES),
            "no overflow"
        );
        assert_eq!(warning(799, 1000, &Watch::default()), None);
        let said = warning(4_100_000_000, DEFAULT_CEILING_BYTES, &Watch::default()).unwrap();
        assert!(
            said.contains("4.10 GB of its 5.00 GB") && said.contains("(82%)"),
            "{said}"
        );
        let watch = Watch {
            pruned_early: 12,
            ..Watch::default()
        };
        assert!(warning(900, 1000, &watch)
            .unwrap()
            .contains("12 entries have been removed early"));
    }

    #[test]
    fn the_walk_goes_by_last_change_then_id() {
        let job = |updated_ms, id: &str| {
            let mut j = crate::edge::job::first(
                crate::edge::job::Schedule {
                    org: "o".into(),
                    conversation_id: id.into(),
                    closed_at_ms: 0,
                    send_at_ms: 0,
                    event_id: None,
                    customer_id: None,
                },
                0,
            );
            j.updated_ms = updated_ms;
            j
        };
        let mark = Mark::of(&job(10, "b"));
        assert!(mark.before(&job(10, "c")) && mark.before(&job(11, "a")));
        assert!(!mark.before(&job(10, "b")) && !mark.before(&job(9, "z")));
    }
}
