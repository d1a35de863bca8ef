//! Agent Connect's read APIs: Data Return (`GET /v2/data`, each survey's fate and answer) and
//! user management (`GET /v2/employees`, the agent roster). Both take the org's API key and a
//! JWT signed with its API secret, and both count against one limit of 100 requests per
//! minute per key, which [`StellaPace`] keeps the org well under.

use super::{Request, Response, SendError, Transport};
use crate::settings::{Secret, Settings};
use crate::timestamp;
use hmac::{Hmac, Mac};
use jwt::SignWithKey;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The path of Data Return under the Stella API base URL.
pub const DATA_PATH: &str = "/v2/data";
/// The path of the employee list under the Stella API base URL.
pub const EMPLOYEES_PATH: &str = "/v2/employees";
/// Agent Connect's limit is 100 requests per minute per key; the org stays at 60, so that
/// another integration on the same key, or a restarted instance's window, still fits.
pub const CALLS_PER_MINUTE: u32 = 60;
const MINUTE_MS: i64 = 60_000;

/// The JWT Agent Connect asks for: HS256 over the API secret, with the current `iat` (seconds).
/// `None` when the secret cannot key an HMAC (HMAC takes any length, so in practice never).
pub fn token(secret: &Secret, now_ms: i64) -> Option<Secret> {
    let key: Hmac<Sha256> = Hmac::new_from_slice(secret.expose().as_bytes()).ok()?;
    let mut claims = BTreeMap::new();
    claims.insert("iat", now_ms.div_euclid(1000));
    claims.sign_with_key(&key).ok().map(Secret::new)
}

/// `GET {stellaApiUrl}{path}?{query}` with the key and a fresh JWT, raw in `Authorization` (no
/// `Bearer `, as Agent Connect documents). `None` without an API secret: nothing is read then.
pub fn get(
    settings: &Settings,
    path: &str,
    query: &[(&str, String)],
    now_ms: i64,
) -> Option<Request> {
    let secret = settings.stella_api_secret.as_ref()?;
    let token = token(secret, now_ms)?;
    let mut url = format!("{}{path}", settings.stella_api_url);
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in query {
        serializer.append_pair(name, value);
    }
    let encoded = serializer.finish();
    if !encoded.is_empty() {
        url.push('?');
        url.push_str(&encoded);
    }
    Some(
        Request::get(url)
            .credential("authorization", token)
            .credential("x-api-key", settings.stella_api_key.clone()),
    )
}

/// A Data Return query: forward from a sequence cursor, or over a creation or response window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataQuery {
    /// Only records after this `sequence_id` (exclusive).
    pub after: Option<i64>,
    /// Only records created at or after this instant (ms).
    pub created_since_ms: Option<i64>,
    /// Only records answered at or after this instant (ms).
    pub responded_since_ms: Option<i64>,
    /// At most this many records.
    pub limit: u32,
}

impl DataQuery {
    /// The query string, in the contract's names; times in RFC 3339 with their offset.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let iso = |ms: i64| timestamp::format(timestamp::from_millis(ms as f64));
        let mut params = Vec::new();
        if let Some(after) = self.after {
            params.push(("after", after.to_string()));
        }
        if let Some(since) = self.created_since_ms {
            params.push(("created_at_gte", iso(since)));
        }
        if let Some(since) = self.responded_since_ms {
            params.push(("responded_at_gte", iso(since)));
        }
        params.push(("limit", self.limit.to_string()));
        params
    }
}

/// The org's calls to Agent Connect's read APIs in the last minute (a rolling minute: Agent
/// Connect counts any 60 seconds). Kept in the org's record, so that a restarted instance
/// knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StellaPace {
    /// When each call of the last minute was made (ms), oldest first; at most
    /// [`CALLS_PER_MINUTE`].
    #[serde(default)]
    pub calls: Vec<i64>,
}

impl StellaPace {
    /// Counts a call at `now_ms` if the last minute has fewer than `cap` (at most
    /// [`CALLS_PER_MINUTE`]); false when it has none.
    pub fn take(&mut self, now_ms: i64, cap: u32) -> bool {
        self.calls
            .retain(|&t| t > now_ms.saturating_sub(MINUTE_MS) && t <= now_ms);
        if self.calls.len() >= cap.min(CALLS_PER_MINUTE) as usize {
            return false;
        }
        self.calls.push(now_ms);
        true
    }

    /// When the last minute has room again for a user allowed `cap` calls in it (0: now).
    pub fn next_window(&self, cap: u32) -> i64 {
        let cap = cap.min(CALLS_PER_MINUTE) as usize;
        match self.calls.len().checked_sub(cap) {
            // The call whose expiry brings the minute under the cap.
            Some(i) => self.calls.get(i).map_or(0, |t| t.saturating_add(MINUTE_MS)),
            None => 0,
        }
    }
}

/// The org's [`StellaPace`] as an instance keeps it between calls: loaded from the org's
/// record on first use, shared by every read under way, written back when it changed.
#[derive(Debug, Default)]
pub struct StellaPacer {
    /// The window; `None` until loaded (a pace never loaded is not written back).
    pace: RefCell<Option<StellaPace>>,
}

impl StellaPacer {
    /// Whether the window was loaded from the org's record yet.
    pub fn is_loaded(&self) -> bool {
        self.pace.borrow().is_some()
    }

    /// Takes the window the org's record keeps.
    pub fn load(&self, stored: StellaPace) {
        *self.pace.borrow_mut() = Some(stored);
    }

    /// The window as it is now, to write back (`None`: never loaded).
    pub fn current(&self) -> Option<StellaPace> {
        self.pace.borrow().clone()
    }

    /// When the window has room again for a user allowed `cap` calls in it.
    pub fn next_window(&self, cap: u32) -> Option<i64> {
        (self.pace.borrow().as_ref()).map(|pace| pace.next_window(cap))
    }

    /// `inner` within this window, up to `cap` calls in the minute, at `now_ms`.
    pub fn paced<'a, T>(&'a self, inner: &'a T, now_ms: i64, cap: u32) -> Paced<'a, T> {
        Paced {
            inner,
            pace: self,
            now_ms,
            cap,
        }
    }

    /// Counts a call at `now_ms` if the minute has room for it.
    fn take(&self, now_ms: i64, cap: u32) -> bool {
        (self.pace.borrow_mut())
            .get_or_insert_with(StellaPace::default)
            .take(now_ms, cap)
    }
}

/// A transport for Agent Connect's read APIs that stops at [`CALLS_PER_MINUTE`]: a call with no
/// room is not made ([`SendError::Paced`]).
pub struct Paced<'a, T> {
    /// The real transport.
    pub inner: &'a T,
    /// The org's window.
    pub pace: &'a StellaPacer,
    /// Now, ms.
    pub now_ms: i64,
    /// How many calls of the minute this transport may reach: the roster, which anyone holding
    /// the org's Kustomer key may ask for with credentials of their own, gets half of them, so
    /// that reading outcomes and the lookups after a crash always have the other half.
    pub cap: u32,
}

/// The share of the minute the roster may use ([`Paced::cap`]).
pub const ROSTER_CALLS_PER_MINUTE: u32 = CALLS_PER_MINUTE / 2;

impl<T: Transport> Transport for Paced<'_, T> {
    async fn send(&self, request: Request) -> Result<Response, SendError> {
        if !self.pace.take(self.now_ms, self.cap) {
            return Err(SendError::Paced);
        }
        self.inner.send(request).await
    }
}

/// Where reading survey outcomes back stands for an org: the Data Return cursors and when to
/// read next. Kept in the org's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    /// The org's settings carry an API secret: outcomes are read back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reading: bool,
    /// The forward cursor: the highest `sequence_id` read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// The answers pass reads records answered since this instant (ms); each finished pass
    /// moves it to its own start less [`RESPONSE_OVERLAP_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_since_ms: Option<i64>,
    /// An unfinished answers pass: the last `sequence_id` it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_after: Option<i64>,
    /// The Agent Connect account read (a keyed fingerprint of its URL and key): the cursors
    /// belong to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// When the unfinished answers pass began (ms): the next one starts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_began_ms: Option<i64>,
    /// When the unfinished pass over recent records began (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_began_ms: Option<i64>,
    /// When the last pass over recent records (for delivery changes) began (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_ms: Option<i64>,
    /// An unfinished pass over recent records: the last `sequence_id` it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_after: Option<i64>,
    /// When to read next; `None`: as soon as a survey awaits its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_ms: Option<i64>,
    /// After a failed write of outcomes onto conversations, none is tried before this (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_after_ms: Option<i64>,
    /// Failed reads in a row, for the back-off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// The last failure, in words (no key or token in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Records of the org's surveyed conversations that did not count, by
    /// [`Unmatched`](super::record_check::Unmatched) code: each counted once, when the forward
    /// read meets it (a record Agent Connect moves to the end of its sequence is met again).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ignored: BTreeMap<String, u64>,
    /// Surveys whose record was taken on the org and time checks alone (jobs stored before
    /// the edge kept who a survey went to), once each.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub unverified: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl Follow {
    /// Nothing read yet and nothing failed: not written into the org's record.
    pub fn is_idle(&self) -> bool {
        *self == Self::default()
    }
}

/// How far back each answers pass reaches before the previous one began: an answer recorded
/// late, or under a clock a little behind, is still read (and de-duplicated on `uuid`).
pub const RESPONSE_OVERLAP_MS: i64 = 10 * 60_000;
/// A delivery status can change after the record was read (a bounce, a redelivery) without a
/// new `sequence_id` or an answer: records created this recently are read again, every
/// [`SETTLE_EVERY_POLLS`] reads.
pub const SETTLE_WINDOW_MS: i64 = 3 * 86_400_000;
/// How many reads apart the pass over recent records comes.
pub const SETTLE_EVERY_POLLS: i64 = 6;
/// Surveys are followed this long after they are sent.
pub const FOLLOW_DAYS: i64 = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pacer_is_written_back_only_once_loaded_or_used() {
        let pacer = StellaPacer::default();
        assert!(!pacer.is_loaded());
        assert_eq!((pacer.current(), pacer.next_window(10)), (None, None));
        pacer.load(StellaPace {
            calls: vec![1_000, 2_000],
        });
        assert!(pacer.is_loaded());
        assert_eq!(
            pacer.next_window(2),
            Some(61_000),
            "the oldest call's minute"
        );
        assert!(pacer.take(3_000, 3));
        assert!(!pacer.take(3_000, 3), "the cap for this user");
        assert_eq!(pacer.current().map(|p| p.calls.len()), Some(3));
        let fresh = StellaPacer::default();
        assert!(fresh.take(0, 1), "a pace never loaded starts empty");
        assert!(fresh.is_loaded());
    }
}
