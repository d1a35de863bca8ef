//! The delivery log as the admin's Deliveries page and the agent card read it: the query of
//! `GET /v1/deliveries` (filters, a keyset cursor, the summary's day boundaries), parsed and
//! validated once, and the rule each [`Store`](super::Store) applies, written once here:
//! [`DeliveryQuery::matches`] is what the host fake runs, and the SQL store's `WHERE` clause
//! says the same (the workerd suites hold the two to each other).
//!
//! Paging is by close time, newest first, then conversation id (descending): a cursor names the
//! last entry shown, so the next page starts after it whatever closes arrive meanwhile.

use super::job::{Job, JobState};
use super::outcome::{skip_words, ErrorCode, Reason};
use super::Reply;
use crate::decision::SkipCode;
use crate::survey_outcome::DeliveryStatus;
use crate::{kustomer, timestamp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

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
/// The longest agent email matched (RFC 5321 allows 254; a little more is harmless).
const MAX_AGENT_CHARS: usize = 320;
/// The longest cursor read (a close time and an id of at most 256 characters, in base64).
const MAX_CURSOR_CHARS: usize = 1400;
/// The widest UTC offset there is (UTC+14:00), in minutes.
const MAX_OFFSET_MINUTES: i32 = 840;
const DAY_MS: i64 = 86_400_000;

/// The states the log shows, in the summary's order (a `sending` lease shows as one of the first
/// two: [`shown_state`]).
pub const LOG_STATES: [JobState; 5] = [
    JobState::Scheduled,
    JobState::Retrying,
    JobState::Sent,
    JobState::Skipped,
    JobState::Failed,
];

/// The query parameters, in the order the README lists them: the one list (the app definition's
/// `list-deliveries` command may pass exactly these).
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

/// Where a page starts: after the entry closed at `closed_at_ms` for `conversation_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// The close time of the last entry shown.
    pub closed_at_ms: i64,
    /// Its conversation.
    pub conversation_id: String,
}

impl Cursor {
    /// The cursor after `job`.
    pub fn after(job: &Job) -> Self {
        Self {
            closed_at_ms: job.closed_at_ms,
            conversation_id: job.conversation_id.clone(),
        }
    }

    /// As the answer gives it (`nextCursor`): base64url of `closedAtMs:conversationId`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.closed_at_ms, self.conversation_id))
    }

    /// A cursor [`Cursor::encode`] made; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ms, id) = text.split_once(':')?;
        let digits = ms.strip_prefix('-').unwrap_or(ms);
        if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        kustomer::check_id(id, "cursor").ok()?;
        Some(Self {
            closed_at_ms: ms.parse().ok()?,
            conversation_id: id.to_owned(),
        })
    }

    /// Whether `job` comes after this cursor in the log's order.
    fn precedes(&self, job: &Job) -> bool {
        job.closed_at_ms < self.closed_at_ms
            || (job.closed_at_ms == self.closed_at_ms
                && job.conversation_id.as_str() < self.conversation_id.as_str())
    }
}

/// What a delivery log read asks for. Every filter is optional; the summary covers every filter
/// but `states`, `after` and `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryQuery {
    /// The states shown (any of [`LOG_STATES`]); empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<JobState>,
    /// One reason code, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The agent's email as the request names it, in ASCII lower case (matched so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Closed at or after this instant (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    /// Closed before this instant (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    /// One conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Entries per page, 1 to [`MAX_LIMIT`].
    pub limit: usize,
    /// Where the page starts; `None` for the first page (which alone has the summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Cursor>,
    /// The summary's days are the admin's: UTC plus this many minutes.
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

impl Default for DeliveryQuery {
    fn default() -> Self {
        Self {
            states: Vec::new(),
            reason: None,
            agent: None,
            from_ms: None,
            to_ms: None,
            conversation_id: None,
            limit: DEFAULT_LIMIT,
            after: None,
            utc_offset_minutes: 0,
        }
    }
}

/// A query string the log refuses: `400 {error: {code, message, path}}`, the path naming the
/// parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// `invalid_query` or `invalid_cursor`.
    pub code: ErrorCode,
    /// The parameter (cut short if long: it is the caller's text).
    pub parameter: String,
    /// What is wrong.
    pub message: String,
}

impl QueryError {
    fn new(parameter: &str, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidQuery,
            parameter: parameter.chars().take(64).collect(),
            message: message.into(),
        }
    }

    /// The answer refusing the query.
    pub fn reply(&self) -> Reply {
        Reply::json(
            self.code.status(),
            json!({"error": {"code": self.code, "message": self.message, "path": self.parameter}}),
        )
    }
}

impl DeliveryQuery {
    /// Parses a query string (raw, without `?`). An empty value means the parameter is not
    /// given (the app's commands send every parameter, empty when unset); an unknown or repeated
    /// parameter, or a value that is not valid, is refused.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        if query.len() > MAX_QUERY_BYTES {
            return Err(QueryError::new(
                "query",
                format!("The query is over {MAX_QUERY_BYTES} bytes."),
            ));
        }
        let mut q = Self::default();
        let mut seen = [false; PARAMETERS.len()];
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let Some(at) = PARAMETERS.iter().position(|p| *p == name) else {
                let shown: String = name.chars().take(64).collect();
                return Err(QueryError::new(
                    &name,
                    format!(
                        "Unknown parameter `{shown}`; the known ones are {}.",
                        PARAMETERS.join(", ")
                    ),
                ));
            };
            let name = PARAMETERS[at];
            if std::mem::replace(&mut seen[at], true) {
                return Err(QueryError::new(name, format!("`{name}` is given twice.")));
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name {
                "state" => q.states = states(value)?,
                "reason" => {
                    if !is_reason_code(value) {
                        return Err(QueryError::new(
                            name,
                            "`reason` is not a reason code the log shows (see `reasons`).",
                        ));
                    }
                    q.reason = Some(value.to_owned());
                }
                "agent" => {
                    if value.chars().count() > MAX_AGENT_CHARS
                        || value.chars().any(char::is_control)
                    {
                        return Err(QueryError::new(
                            name,
                            format!("`agent` must be an email address of at most {MAX_AGENT_CHARS} characters."),
                        ));
                    }
                    q.agent = Some(value.to_ascii_lowercase());
                }
                "from" => q.from_ms = Some(instant(name, value)?),
                "to" => q.to_ms = Some(instant(name, value)?),
                "conversationId" => {
                    kustomer::check_id(value, name)
                        .map_err(|e| QueryError::new(name, e.message))?;
                    q.conversation_id = Some(value.to_owned());
                }
                "limit" => {
                    q.limit = whole(value, false)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            QueryError::new(
                                name,
                                format!("`limit` must be a whole number from 1 to {MAX_LIMIT}."),
                            )
                        })?;
                }
                "cursor" => {
                    q.after = Some(Cursor::decode(value).ok_or_else(|| QueryError {
                        code: ErrorCode::InvalidCursor,
                        ..QueryError::new(
                            name,
                            "`cursor` is not one this log gave (`nextCursor`); start again without it.",
                        )
                    })?);
                }
                _ => {
                    q.utc_offset_minutes = whole(value, true)
                        .and_then(|n| i32::try_from(n).ok())
                        .filter(|n| n.abs() <= MAX_OFFSET_MINUTES)
                        .ok_or_else(|| {
                            QueryError::new(
                                name,
                                format!("`utcOffsetMinutes` must be a whole number from -{MAX_OFFSET_MINUTES} to {MAX_OFFSET_MINUTES}."),
                            )
                        })?;
                }
            }
        }
        if let (Some(from), Some(to)) = (q.from_ms, q.to_ms) {
            if to <= from {
                return Err(QueryError::new("to", "`to` must be later than `from`."));
            }
        }
        Ok(q)
    }

    /// Whether the log's page shows `job`: every filter, the states and the cursor.
    pub fn matches(&self, job: &Job) -> bool {
        self.in_summary(job)
            && (self.states.is_empty() || self.states.contains(&shown_state(job)))
            && self.after.as_ref().is_none_or(|c| c.precedes(job))
    }

    /// Whether the summary counts `job`: every filter but the states, the cursor and the limit.
    pub fn in_summary(&self, job: &Job) -> bool {
        self.from_ms.is_none_or(|from| job.closed_at_ms >= from)
            && self.to_ms.is_none_or(|to| job.closed_at_ms < to)
            && (self.conversation_id.as_deref()).is_none_or(|id| job.conversation_id == id)
            && (self.reason.is_none() || job.reason.as_deref() == self.reason.as_deref())
            && (self.agent.as_deref())
                .is_none_or(|a| agent_of(job).is_some_and(|e| e.eq_ignore_ascii_case(a)))
    }

    /// The admin's day of a close time: days since 1970-01-01, at the query's UTC offset.
    pub fn day_of(&self, closed_at_ms: i64) -> i64 {
        closed_at_ms
            .saturating_add(self.offset_ms())
            .div_euclid(DAY_MS)
    }

    /// The UTC offset in ms.
    pub fn offset_ms(&self) -> i64 {
        i64::from(self.utc_offset_minutes) * 60_000
    }
}

/// `state=`: a comma-separated list of [`LOG_STATES`] names (empty items are skipped).
fn states(value: &str) -> Result<Vec<JobState>, QueryError> {
    let mut states = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(state) = LOG_STATES.iter().find(|s| s.as_str() == item) else {
            return Err(QueryError::new(
                "state",
                "`state` takes scheduled, retrying, sent, skipped or failed, separated by commas.",
            ));
        };
        if !states.contains(state) {
            states.push(*state);
        }
    }
    Ok(states)
}

/// An RFC 3339 instant, in ms.
fn instant(name: &str, value: &str) -> Result<i64, QueryError> {
    (value.len() <= 64)
        .then(|| timestamp::parse(value))
        .flatten()
        .map(timestamp::to_millis)
        .ok_or_else(|| {
            QueryError::new(
                name,
                format!("`{name}` must be an RFC 3339 time such as 2026-11-20T00:00:00Z."),
            )
        })
}

/// A short whole number in decimal digits (a leading minus sign where `signed`).
fn whole(value: &str, signed: bool) -> Option<i64> {
    let digits = match value.strip_prefix('-') {
        Some(rest) if signed => rest,
        _ => value,
    };
    (!digits.is_empty() && digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

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

/// Skips a resend cannot change: the customer's or the conversation's own facts (no email, no
/// channel: checked again, they come back the same), a close that was undone (closing it again
/// schedules a survey by itself), and the rule against surveying a conversation twice. An agent
/// left unassigned or without an email is the org's to fix, so those skips stay resendable.
const FINAL_SKIPS: [SkipCode; 5] = [
    SkipCode::NotClosed,
    SkipCode::Reopened,
    SkipCode::NoCustomerEmail,
    SkipCode::NoChannel,
    SkipCode::AlreadySurveyed,
];

/// Whether a resend can change the entry's fate, so the Deliveries page offers it: a failure
/// may pass on another try, and a skip for the app's settings or the agent (or for a reason
/// this build does not know) may pass once they are fixed; not a [`FINAL_SKIPS`] skip, and
/// nothing pending or sent.
pub fn resendable(job: &Job) -> bool {
    match job.state {
        JobState::Failed => true,
        JobState::Skipped => !job.reason.as_deref().is_some_and(|r| {
            FINAL_SKIPS.iter().any(|c| c.as_str() == r) || r == Reason::Forgotten.as_str()
        }),
        _ => false,
    }
}

/// Text from Kustomer, Agent Connect or a server, as the pages show it: without bidirectional
/// controls ([`display::plain`](crate::display::plain)).
fn shown(text: Option<&str>) -> Option<String> {
    text.map(|t| crate::display::plain(t).into_owned())
}

/// A job as the delivery log shows it: no settings, so no key; the request's fields the table
/// needs are also given flat (`null` when the job has no request yet).
pub fn view(job: &Job) -> Value {
    let iso = |ms: i64| timestamp::format(timestamp::from_millis(ms as f64));
    // Where the customer's data was removed, the page, the card and the CSV show why.
    let removed = || job.personal_data_removed.map(|r| r.words());
    json!({
        "conversationId": job.conversation_id,
        "state": shown_state(job),
        "reason": job.reason,
        "message": shown(job.message.as_deref()),
        "attempts": job.attempts,
        "closedAt": iso(job.closed_at_ms),
        "sendAt": iso(job.send_at_ms),
        "nextAttemptAt": job.due_ms.map(iso),
        "sentAt": job.sent_ms.map(iso),
        "updatedAt": iso(job.updated_ms),
        "customerName": shown(request_text(job, "/customer/name")).or_else(removed),
        "customerEmail": shown(request_text(job, "/customer/email")).or_else(removed),
        "personalDataRemoved": removed(),
        "agentEmail": shown(agent_of(job)),
        "channel": shown(request_text(job, "/channel")),
        "conversationUrl": request_text(job, "/external_url"),
        "request": job.request,
        "resendable": resendable(job),
        "outcome": job.outcome.as_ref().map(|o| {
            let mut shown = serde_json::to_value(&o.read).unwrap_or_default();
            if let Some(map) = shown.as_object_mut() {
                if let Some(error) = &o.write_error {
                    map.insert("writeError".into(), error.as_str().into());
                }
                if let Some(Value::String(comment)) = map.get_mut("comment") {
                    *comment = crate::display::plain_owned(std::mem::take(comment));
                }
            }
            shown
        }),
    })
}

/// Every reason code the log can show, with short words for an admin: the edge's [`Reason`]s
/// and the core's [`SkipCode`]s.
pub fn reasons() -> Value {
    let mut map = Map::new();
    for code in SkipCode::ALL {
        map.insert(code.as_str().into(), skip_words(*code).into());
    }
    for reason in Reason::ALL {
        map.insert(reason.as_str().into(), reason.words().into());
    }
    Value::Object(map)
}

/// Whether `code` is one of [`reasons`].
pub fn is_reason_code(code: &str) -> bool {
    SkipCode::ALL.iter().any(|c| c.as_str() == code)
        || Reason::ALL.iter().any(|r| r.as_str() == code)
}

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
        if let Some(i) = LOG_STATES.iter().position(|s| s.as_str() == state) {
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
fn date(day: i64) -> Option<String> {
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

/// The first page of the log: `query.limit` entries of `jobs` (which holds one more when there
/// is another page), the cursor after the last, and the summary on a first page.
pub fn answer(
    query: &DeliveryQuery,
    mut jobs: Vec<Job>,
    tally: Option<&Tally>,
    retention_days: u32,
) -> Value {
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let next = (jobs.len() > limit).then(|| {
        jobs.truncate(limit);
        jobs.last().map(|j| Cursor::after(j).encode())
    });
    let deliveries: Vec<Value> = jobs.iter().map(view).collect();
    json!({
        "deliveries": deliveries,
        "nextCursor": next.flatten(),
        "retentionDays": retention_days,
        "summary": tally.map(Tally::summary),
        "reasons": reasons(),
        "deliveryStatuses": delivery_statuses(),
    })
}

/// Each outcome's delivery status code in words (the log's `outcome.deliveryStatus`).
pub fn delivery_statuses() -> Value {
    let words = DeliveryStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), Value::from(s.words())));
    Value::Object(words.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(query: &str) -> (ErrorCode, String) {
        let e = DeliveryQuery::parse(query).expect_err(query);
        (e.code, e.parameter)
    }

    #[test]
    fn empty_values_mean_not_given() {
        let q = DeliveryQuery::parse(
            "state=&reason=&agent=&from=&to=&conversationId=&limit=&cursor=&utcOffsetMinutes=",
        )
        .unwrap();
        assert_eq!(q, DeliveryQuery::default());
        assert_eq!(DeliveryQuery::parse("").unwrap(), DeliveryQuery::default());
    }

    #[test]
    fn every_parameter_is_read() {
        let cursor = Cursor {
            closed_at_ms: 1_700_000_000_000,
            conversation_id: "c:1".into(),
        };
        let text = format!(
            "state=sent,%20failed,sent&reason=reopened&agent=Sam%40Acme.example&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00%2B01:00&conversationId=abc&limit=200&cursor={}&utcOffsetMinutes=-300",
            cursor.encode()
        );
        let q = DeliveryQuery::parse(&text).unwrap();
        assert_eq!(q.states, [JobState::Sent, JobState::Failed]);
        assert_eq!(q.reason.as_deref(), Some("reopened"));
        assert_eq!(q.agent.as_deref(), Some("sam@acme.example"));
        assert_eq!(
            q.from_ms,
            Some(timestamp::to_millis(
                timestamp::parse("2026-11-20T00:00:00Z").unwrap()
            ))
        );
        assert_eq!(q.to_ms, Some(q.from_ms.unwrap() + 23 * 3_600_000));
        assert_eq!(q.conversation_id.as_deref(), Some("abc"));
        assert_eq!((q.limit, q.utc_offset_minutes), (200, -300));
        assert_eq!(q.after, Some(cursor));
    }

    #[test]
    fn bad_queries_name_their_parameter() {
        let invalid = ErrorCode::InvalidQuery;
        for (query, code, parameter) in [
            ("nope=1", invalid, "nope"),
            ("state=sent&state=failed", invalid, "state"),
            ("limit=&limit=", invalid, "limit"),
            ("state=sending", invalid, "state"),
            ("state=SENT", invalid, "state"),
            ("reason=because", invalid, "reason"),
            ("from=yesterday", invalid, "from"),
            ("to=2026-11-20", invalid, "to"),
            (
                "from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z",
                invalid,
                "to",
            ),
            ("from=9999-12-31T23:59:59-01:00", invalid, "from"),
            ("limit=0", invalid, "limit"),
            ("limit=201", invalid, "limit"),
            ("limit=-1", invalid, "limit"),
            ("limit=1e2", invalid, "limit"),
            ("limit=99999999999999999999999", invalid, "limit"),
            ("utcOffsetMinutes=841", invalid, "utcOffsetMinutes"),
            ("utcOffsetMinutes=-841", invalid, "utcOffsetMinutes"),
            ("utcOffsetMinutes=1.5", invalid, "utcOffsetMinutes"),
            ("conversationId=%00", invalid, "conversationId"),
            ("agent=a%0Ab", invalid, "agent"),
            ("cursor=!!", ErrorCode::InvalidCursor, "cursor"),
            ("cursor=bm9jb2xvbg", ErrorCode::InvalidCursor, "cursor"), // "nocolon"
            ("cursor=eDph", ErrorCode::InvalidCursor, "cursor"),       // "x:a"
            ("cursor=MTI6", ErrorCode::InvalidCursor, "cursor"),       // "12:"
        ] {
            assert_eq!(err(query), (code, parameter.to_owned()), "{query}");
        }
        let long = format!("agent={}", "a".repeat(MAX_QUERY_BYTES));
        assert_eq!(err(&long).1, "query");
        let name = "x".repeat(1000);
        assert_eq!(err(&format!("{name}=1")).1.len(), 64, "a long name is cut");
        let reply = DeliveryQuery::parse("limit=0").unwrap_err().reply();
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body["error"]["code"], "invalid_query");
        assert_eq!(reply.body["error"]["path"], "limit");
    }

    #[test]
    fn a_cursor_round_trips() {
        for id in ["abc", "a:b:c", "ünïcode", "6560e0f1a2b3c4d5e6f70819"] {
            for ms in [0, 1_700_000_000_000, -5] {
                let c = Cursor {
                    closed_at_ms: ms,
                    conversation_id: id.into(),
                };
                assert_eq!(Cursor::decode(&c.encode()), Some(c));
            }
        }
    }

    #[test]
    fn days_follow_the_offset() {
        let q = |m| DeliveryQuery {
            utc_offset_minutes: m,
            ..DeliveryQuery::default()
        };
        let t = timestamp::to_millis(timestamp::parse("2026-11-20T23:30:00Z").unwrap());
        assert_eq!(date(q(0).day_of(t)).unwrap(), "2026-11-20");
        assert_eq!(date(q(60).day_of(t)).unwrap(), "2026-11-21");
        assert_eq!(date(q(-840).day_of(t)).unwrap(), "2026-11-20");
        assert_eq!(date(q(0).day_of(-1)).unwrap(), "1969-12-31");
        assert_eq!(date(i64::MAX), None);
    }

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

    #[test]
    fn every_reason_has_words() {
        let reasons = reasons();
        let map = reasons.as_object().unwrap();
        for code in SkipCode::ALL {
            assert!(!map[code.as_str()].as_str().unwrap().is_empty());
            assert!(is_reason_code(code.as_str()));
        }
        for reason in Reason::ALL {
            assert!(!map[reason.as_str()].as_str().unwrap().is_empty());
        }
        assert!(!is_reason_code("duplicate"));
    }
}
