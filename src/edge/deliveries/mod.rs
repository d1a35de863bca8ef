//! The delivery log as the admin's Deliveries page and the agent card read it: the query of
//! `GET /v1/deliveries` (filters, a keyset cursor, the summary's day boundaries), parsed and
//! validated once, and the rule each [`Store`](super::Store) applies, written once here:
//! [`DeliveryQuery::matches`] is what the host fake runs, and the SQL store's `WHERE` clause
//! says the same (the workerd suites hold the two to each other).
//!
//! Paging is by close time, newest first, then conversation id (descending): a cursor names the
//! last entry shown, so the next page starts after it whatever closes arrive meanwhile.
//!
//! The module by concern: `query` reads and matches a query, `tally` gathers the summary,
//! `view` says what the answer shows (rows, states and their words, reasons, links).

mod query;
mod tally;
mod view;

pub use query::{Cursor, DeliveryQuery, QueryError};
pub use tally::{Tally, TallyKey, TallyPlan, HOUR_MS};
pub use view::{
    answer, conversation_url, delivery_statuses, is_reason_code, link_conversations, reasons,
    resendable, saved_kustomer_url, state_table, view,
};

use super::job::{Job, JobState};

/// The most entries one page holds.
pub const MAX_LIMIT: usize = 200;
/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;
/// The longest query string read: far above any real one, so no input costs more than this.
pub const MAX_QUERY_BYTES: usize = 4096;
/// The most rows of the summary's `byReason` and `byAgent` (the most frequent first).
pub const MAX_SUMMARY_ROWS: usize = 100;
/// The most days in the summary's `days` (the latest).
pub const MAX_SUMMARY_DAYS: usize = 400;
/// The most conversations one bulk resend names.
pub const MAX_RESEND_PER_CALL: usize = 50;
/// The largest body of a bulk resend: 50 ids of at most 256 characters, with room to spare.
pub const MAX_RESEND_BODY_BYTES: usize = 64 * 1024;

/// The states the log shows, in the summary's order (a `sending` lease shows as one of the first
/// two: [`shown_state`]).
pub const LOG_STATES: [JobState; 5] = [
    JobState::Scheduled,
    JobState::Retrying,
    JobState::Sent,
    JobState::Skipped,
    JobState::Failed,
];

/// The query parameters, in the order docs/architecture.md lists them: the one list (the app
/// definition's `list-deliveries` command may pass exactly these).
pub const PARAMETERS: [&str; 9] = [
    "state",
    "reason",
    "agent",
    "from",
    "to",
    "conversationId",
    "limit",
    "cursor",
    "utcOffsetMinutes",
];

/// The state the log shows for a job: `sending` is an internal lease, shown as `retrying` after
/// a failed attempt and as `scheduled` before any.
pub fn shown_state(job: &Job) -> JobState {
    match job.state {
        JobState::Sending if job.attempts > 1 => JobState::Retrying,
        JobState::Sending => JobState::Scheduled,
        s => s,
    }
}

/// The agent the job's request names (`employee.email`), when it has a request.
pub fn agent_of(job: &Job) -> Option<&str> {
    request_text(job, "/employee/email")
}

fn request_text<'a>(job: &'a Job, pointer: &str) -> Option<&'a str> {
    job.request.as_ref()?.pointer(pointer)?.as_str()
}
