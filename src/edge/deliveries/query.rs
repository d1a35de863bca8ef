//! The log's query: parsed and checked once, and the rule each store applies.

use super::{
    agent_of, is_reason_code, shown_state, DEFAULT_LIMIT, LOG_STATES, MAX_LIMIT, MAX_QUERY_BYTES,
    PARAMETERS,
};
use crate::edge::codes::ErrorCode;
use crate::edge::job::{Job, JobReason, JobState};
use crate::edge::Reply;
use crate::{kustomer, timestamp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The longest agent email matched (RFC 5321 allows 254; a little more is harmless).
const MAX_AGENT_CHARS: usize = 320;
/// The longest cursor read (a close time and an id of at most 256 characters, in base64).
const MAX_CURSOR_CHARS: usize = 1400;
/// The widest UTC offset there is (UTC+14:00), in minutes.
const MAX_OFFSET_MINUTES: i32 = 840;
const DAY_MS: i64 = 86_400_000;

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
    pub reason: Option<JobReason>,
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
            q.read(name, value)?;
        }
        if let (Some(from), Some(to)) = (q.from_ms, q.to_ms) {
            if to <= from {
                return Err(QueryError::new("to", "`to` must be later than `from`."));
            }
        }
        Ok(q)
    }

    /// Reads one given parameter (`name` is one of [`PARAMETERS`], `value` not blank).
    fn read(&mut self, name: &'static str, value: &str) -> Result<(), QueryError> {
        match name {
            "state" => self.states = states(value)?,
            "reason" => {
                if !is_reason_code(value) {
                    return Err(QueryError::new(
                        name,
                        "`reason` is not a reason code the log shows (see `reasons`).",
                    ));
                }
                self.reason = Some(JobReason::parse(value));
            }
            "agent" => {
                if value.chars().count() > MAX_AGENT_CHARS || value.chars().any(char::is_control) {
                    return Err(QueryError::new(
                        name,
                        format!("`agent` must be an email address of at most {MAX_AGENT_CHARS} characters."),
                    ));
                }
                self.agent = Some(value.to_ascii_lowercase());
            }
            "from" => self.from_ms = Some(instant(name, value)?),
            "to" => self.to_ms = Some(instant(name, value)?),
            "conversationId" => {
                kustomer::check_id(value, name).map_err(|e| QueryError::new(name, e.message))?;
                self.conversation_id = Some(value.to_owned());
            }
            "limit" => {
                self.limit = whole(value, false)
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
                self.after = Some(Cursor::decode(value).ok_or_else(|| QueryError {
                    code: ErrorCode::InvalidCursor,
                    ..QueryError::new(
                        name,
                        "`cursor` is not one this log gave (`nextCursor`); start again without it.",
                    )
                })?);
            }
            _ => {
                self.utc_offset_minutes = whole(value, true)
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
        Ok(())
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
            && (self.reason.is_none() || job.reason == self.reason)
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
        let Some(state) = JobState::from_code(item).filter(|s| LOG_STATES.contains(s)) else {
            return Err(QueryError::new(
                "state",
                "`state` takes scheduled, retrying, sent, skipped or failed, separated by commas.",
            ));
        };
        if !states.contains(&state) {
            states.push(state);
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

#[cfg(test)]
mod tests {
    use super::super::tally::date;
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
}
