//! Forgetting a customer: the pure part. Which customer a request names, the keyed digests a
//! job is found by, what a job keeps once its customer is forgotten, and how the daily sweep
//! asks Kustomer for deleted customers (the one place its undocumented search body is guessed).
//!
//! A job is found by its customer through an index, never by reading every job: each job keeps
//! keyed digests ([`CustomerKeys`]) of its customer's Kustomer id (from the close) and of the
//! address its survey went to (from the send). They are HMACs under the deployment's key
//! ([`Sealer::named_digest`]), bound to the org and not to the conversation (unlike
//! [`super::record_check::SentTo`]), so that one digest finds all of a customer's jobs; a copy
//! of the storage cannot confirm a guessed address without the key.

use super::codes::Reason;
use super::interpret::Failure;
use super::job::{Job, JobState, Removal};
use super::kustomer_api::Kustomer;
use super::seal::Sealer;
use super::{Request, Response};
use crate::kustomer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The most jobs one forget changes (a command, or one deleted customer in a sweep): each is a
/// write, and a Durable Object call should stay short. The answer says `more: true` when others
/// are left; running it again finds them (a forgotten job drops its digests, so it is not found
/// twice).
pub const MAX_FORGET_PER_CALL: usize = 500;

/// How long a forgotten customer's digests are kept, to stop a survey whose customer was not yet
/// known when they were forgotten (a close still held or pending, whose address is read from
/// Kustomer only at the send): the longest a close can wait before its send (a held close is
/// dropped after 7 days; a send is due at most a day after its close, then retried for a day),
/// with a margin. Then they go: a later close of a customer Kustomer still has is Kustomer's
/// data deciding, and is surveyed.
pub const TOMBSTONE_MS: i64 = 14 * 86_400_000;

/// The cache key prefix of a forgotten customer's digest.
pub const TOMBSTONE_PREFIX: &str = "forgotten:";

/// Whom a forget names: an e-mail address (it holds `@`) or a Kustomer customer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// An address, compared trimmed and in lower case.
    Email(String),
    /// A Kustomer customer id, as Kustomer spells it.
    Id(String),
}

impl Who {
    /// Reads what an admin typed; `Err` says why it names no one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.contains('@') {
            let email = text.to_lowercase();
            if email.len() > 320 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err("This is not an e-mail address.".into());
            }
            return Ok(Self::Email(email));
        }
        kustomer::check_id(text, "customer").map_err(|e| e.message)?;
        Ok(Self::Id(text.to_owned()))
    }

    fn text(&self, org: &str) -> String {
        match self {
            Self::Email(e) => format!("customer-index\nemail\n{org}\n{}", e.trim().to_lowercase()),
            Self::Id(id) => format!("customer-index\nid\n{org}\n{id}"),
        }
    }

    /// Its digest under the deployment's current key (`<key id>:<hex>`), as a job keeps it.
    pub fn digest(&self, sealer: &Sealer, org: &str) -> String {
        let (key, digest) = sealer.named_digest(&self.text(org));
        format!("{key}:{digest}")
    }

    /// Its digests under every key the deployment has, to find jobs indexed before a rotation.
    pub fn digests(&self, sealer: &Sealer, org: &str) -> Vec<String> {
        let text = self.text(org);
        (sealer.key_ids().iter())
            .filter_map(|key| Some(format!("{key}:{}", sealer.named_digest_with(key, &text)?)))
            .collect()
    }
}

/// A job's customer as keyed digests ([`Who::digest`]): what the forget index holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerKeys {
    /// The Kustomer customer id's (from the close event, or the send's fresh read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The address the survey went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl CustomerKeys {
    /// The keys of a customer `id` and `email`, either unknown.
    pub fn of(sealer: &Sealer, org: &str, id: Option<&str>, email: Option<&str>) -> Option<Self> {
        let id = id.filter(|i| !i.trim().is_empty());
        let email = email.filter(|e| !e.trim().is_empty());
        if id.is_none() && email.is_none() {
            return None;
        }
        Some(Self {
            id: id.map(|i| Who::Id(i.to_owned()).digest(sealer, org)),
            email: email.map(|e| Who::Email(e.to_owned()).digest(sealer, org)),
        })
    }
}

/// The job once its customer is forgotten: a pending survey is cancelled (skipped as
/// [`Reason::Forgotten`], never sent: the generation moves on, so an attempt under way cannot
/// write over it); every entry loses the customer's data as [`Job::without_personal_data`]
/// removes it ([`Removal::Forgotten`]: name, e-mail, comment, the digests of who it went to),
/// the request's custom properties (which may carry conversation attributes about them), and
/// its forget index. What the summary counts stays: state, reason, agent, rating, times, ids.
pub fn without_customer(job: &Job, now_ms: i64) -> Job {
    let mut job = job.clone();
    if !job.state.is_final() {
        job.state = JobState::Skipped;
        job.due_ms = None;
        job.generation = job.generation.wrapping_add(1);
        job.reason = Some(Reason::Forgotten.into());
        job.message = Some("The customer was forgotten: this survey is not sent.".into());
        job.unsure = false;
    }
    if let Some(Value::Object(request)) = &mut job.request {
        request.remove("custom_properties");
    }
    let mut job = job.without_personal_data(Removal::Forgotten);
    job.updated_ms = now_ms;
    job
}

/// Whether a job still holds anything of a customer: their name, e-mail or comment, custom
/// properties, or a digest of them.
pub fn holds_customer(job: &Job) -> bool {
    let customer = job.request.as_ref().and_then(|r| r.get("customer"));
    let named = customer.is_some_and(|c| c.get("email").is_some() || c.get("name").is_some());
    let properties = (job.request.as_ref()).is_some_and(|r| r.get("custom_properties").is_some());
    named
        || properties
        || job
            .outcome
            .as_ref()
            .is_some_and(|o| o.read.comment.is_some())
        || job.sent_to.is_some()
        || job.customer.is_some()
}

/// The most Kustomer calls the deleted-customers sweep makes per org a day.
pub const SWEEP_CALLS_PER_DAY: u32 = 10;
/// How often the sweep runs.
pub const SWEEP_EVERY_MS: i64 = 86_400_000;
/// Customers per search page (Kustomer's usual page size limit).
pub const SEARCH_PAGE_SIZE: u32 = 100;
/// How far each window reaches back before the last one's end: a deletion Kustomer indexes late
/// is still found.
pub const SWEEP_OVERLAP_MS: i64 = 3_600_000;
/// The most deleted customers a sweep leaves for the next run when a forget had more entries.
pub const MAX_LEFT_OVER: usize = 200;

/// Where the org's deleted-customers sweep stands (kept on the org's record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sweep {
    /// Customers changed at or after this instant (ms) are searched; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// The end of the window being searched, while its pages are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// The window's next page (from 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub page: u32,
    /// The UTC day (days since the epoch) `calls` counts in.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub day: i64,
    /// Search calls made that day.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub calls: u32,
    /// When the last window was searched to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_ms: Option<i64>,
    /// Deleted customers found whose forget had more entries than one call takes, as the keyed
    /// digests a forget looks up (never an address or id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_over: Vec<Vec<String>>,
    /// Until when forgotten customers' digests are kept ([`TOMBSTONE_MS`]): sends check them
    /// only until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstones_until: Option<i64>,
    /// The last search's failure, for the settings page (no key or personal data in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next sweep is due (always after the last run, so an alarm never spins on it);
    /// `None` until the org's first run with settings, which plans the first a day later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_ms: Option<i64>,
}

/// Why a sweep stopped, which says when the next is due ([`Sweep::next_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The window was read to its end: the next in a day.
    Done,
    /// The day's calls are spent (the window is left half-read): the next day.
    CallsSpent,
    /// Kustomer failed or refused: again in an hour (a 24th of the period), so one failure
    /// does not cost a day; the day's calls still bound the retries.
    Failed,
    /// The org's API budget has no room now: when its window turns (`at`).
    Paced {
        /// When the budget allows again.
        at: i64,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

impl Sweep {
    /// Whether a sweep is due at `now_ms`. The first run plans the first sweep a day later
    /// (`next_ms`), so a new org's first alarms spend nothing on it.
    pub fn due(&mut self, now_ms: i64, every_ms: i64) -> bool {
        match self.next_ms {
            None => {
                self.next_ms = Some(now_ms.saturating_add(every_ms));
                false
            }
            Some(next) => next <= now_ms,
        }
    }

    /// When the next sweep is due after one that stopped for `stop` at `now_ms`, sweeping every
    /// `every_ms` (a day): always later than `now_ms`.
    pub fn next_after(&self, stop: Stop, now_ms: i64, every_ms: i64) -> i64 {
        let next = match stop {
            Stop::Done => now_ms.saturating_add(every_ms),
            Stop::Failed => now_ms.saturating_add((every_ms / 24).max(1)),
            Stop::CallsSpent => (now_ms.div_euclid(every_ms) + 1).saturating_mul(every_ms),
            Stop::Paced { at } => at,
        };
        next.max(now_ms.saturating_add(1))
    }

    /// The calls left today (a period of `every_ms`), the counter moved to `now_ms`'s.
    pub fn calls_left(&mut self, now_ms: i64, every_ms: i64) -> u32 {
        let day = now_ms.div_euclid(every_ms);
        if day != self.day {
            self.day = day;
            self.calls = 0;
        }
        SWEEP_CALLS_PER_DAY.saturating_sub(self.calls)
    }

    /// The search window to ask for next: `(since, until, page)`, starting a new one at `now_ms`
    /// when none is under way. The first window reaches back over the retention period: a
    /// customer deleted before the app kept this may still be in the log.
    pub fn window(&mut self, now_ms: i64, retention_ms: i64) -> (i64, i64, u32) {
        if self.until_ms.is_none() || self.page == 0 {
            let since = self
                .since_ms
                .unwrap_or_else(|| now_ms.saturating_sub(retention_ms));
            self.since_ms = Some(since);
            self.until_ms = Some(now_ms);
            self.page = 1;
        }
        (
            self.since_ms.unwrap_or(0),
            self.until_ms.unwrap_or(now_ms),
            self.page,
        )
    }

    /// A page was read: on to the next one, or, when it was the last, the window is done and
    /// the next starts where it ended (less [`SWEEP_OVERLAP_MS`]).
    pub fn read_page(&mut self, full: bool, now_ms: i64) {
        if full {
            self.page += 1;
            return;
        }
        let until = self.until_ms.unwrap_or(now_ms);
        self.since_ms = Some(until.saturating_sub(SWEEP_OVERLAP_MS));
        self.until_ms = None;
        self.page = 0;
        self.done_ms = Some(now_ms);
    }
}

/// The search for customers changed in `[since, until]`, deleted ones included, oldest change
/// first: `POST {api}/v1/customers/search?page=&pageSize=`.
///
/// GUESS (the only one): Kustomer documents the search's `and` list of `customer_*` criteria,
/// `queryContext` and datetime ranges (`gte`/`lte` on `customer_updated_at`), and names
/// `includeDeleted: true` for deleted customers; it does not document the `sort` shape, the
/// paging parameters of this endpoint (taken from its other lists: `page`, `pageSize`), or how
/// a deleted customer is marked in the answer ([`deleted_customers`]). A deletion is assumed to
/// change `updatedAt`.
pub fn search_request(
    api_url: &str,
    key: &str,
    since_ms: i64,
    until_ms: i64,
    page: u32,
) -> Result<Request, Failure> {
    let iso = |ms| crate::timestamp::format(crate::timestamp::from_millis(ms as f64));
    let body = json!({
        "and": [
            {"customer_updated_at": {"gte": iso(since_ms)}},
            {"customer_updated_at": {"lte": iso(until_ms)}},
        ],
        "queryContext": "customer",
        "includeDeleted": true,
        "sort": [{"customer_updated_at": "asc"}],
    });
    let (page, size) = (page.to_string(), SEARCH_PAGE_SIZE.to_string());
    let query = [("page", page.as_str()), ("pageSize", size.as_str())];
    let segments = ["v1", "customers", "search"];
    Kustomer { api_url, key }.post_json(&segments, &query, body.to_string())
}

/// A deleted customer the search found: their id and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// Kustomer's id.
    pub id: String,
    /// Their addresses, when the answer still gives them.
    pub emails: Vec<String>,
}

impl Deleted {
    /// Whom to forget for this customer.
    pub fn whos(&self) -> Vec<Who> {
        let emails = self.emails.iter().filter(|e| e.contains('@'));
        std::iter::once(Who::Id(self.id.clone()))
            .chain(emails.map(|e| Who::Email(e.trim().to_lowercase())))
            .collect()
    }
}

/// The deleted customers of a search answer, and how many customers it listed (a full page
/// means there may be another). GUESS (with [`search_request`]): a JSON:API list whose deleted
/// items carry `attributes.deleted: true` or a `deletedAt` time, as Kustomer's users and teams
/// do.
pub fn deleted_customers(response: &Response) -> Result<(Vec<Deleted>, usize), String> {
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "Kustomer answered {} to the deleted-customers search.",
            response.status
        ));
    }
    let doc = crate::json::from_json(&response.body).map_err(|e| e.message)?;
    let items = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or("Kustomer's customer search answer has no `data` list.")?;
    let mut deleted = Vec::new();
    for item in items {
        let attrs = item.get("attributes");
        let gone = attrs.and_then(|a| a.get("deleted")) == Some(&Value::Bool(true))
            || attrs
                .and_then(|a| a.get("deletedAt"))
                .is_some_and(|d| d.is_string());
        if !gone {
            continue;
        }
        let Some(id) = item.get("id").and_then(Value::as_str) else {
            continue;
        };
        if kustomer::check_id(id, "id").is_err() {
            continue;
        }
        let emails = kustomer::parse_customer(&json!({ "data": item }))
            .map(|c| c.emails)
            .unwrap_or_default();
        deleted.push(Deleted {
            id: id.to_owned(),
            emails,
        });
    }
    Ok((deleted, items.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_reads_an_address_or_an_id() {
        assert_eq!(
            Who::parse("  Ann@Example.COM "),
            Ok(Who::Email("ann@example.com".into()))
        );
        assert_eq!(Who::parse("5f1"), Ok(Who::Id("5f1".into())));
        assert!(Who::parse("   ").is_err());
        assert!(Who::parse("a b@c").is_err());
    }

    #[test]
    fn the_sweep_reads_a_window_page_by_page_then_waits_a_day() {
        let mut s = Sweep::default();
        let day = SWEEP_EVERY_MS;
        assert!(!s.due(5, day), "the first run plans the first sweep");
        assert!(!s.due(day + 4, day) && s.due(day + 5, day), "a day later");
        assert_eq!(s.window(10 * day, 3 * day), (7 * day, 10 * day, 1));
        s.read_page(true, 10 * day);
        assert_eq!(s.window(10 * day + 5, 3 * day), (7 * day, 10 * day, 2));
        s.read_page(false, 10 * day + 9);
        assert_eq!(s.next_after(Stop::Done, 10 * day + 9, day), 11 * day + 9);
        assert_eq!(
            s.next_after(Stop::Failed, 10 * day, day),
            10 * day + day / 24
        );
        assert_eq!(
            s.next_after(Stop::Paced { at: 7 }, 10 * day, day),
            10 * day + 1,
            "never spins"
        );
        assert_eq!(
            s.window(11 * day + 9, 3 * day),
            (10 * day - SWEEP_OVERLAP_MS, 11 * day + 9, 1)
        );
    }

    #[test]
    fn the_sweep_spends_at_most_its_calls_a_day() {
        let mut s = Sweep::default();
        let day = SWEEP_EVERY_MS;
        assert_eq!(s.calls_left(day + 1, day), SWEEP_CALLS_PER_DAY);
        s.calls = SWEEP_CALLS_PER_DAY;
        s.page = 4; // a window left half-read
        assert_eq!(s.calls_left(day + 2, day), 0);
        assert_eq!(
            s.next_after(Stop::CallsSpent, day + 2, day),
            2 * day,
            "the rest waits for the next day"
        );
        assert_eq!(s.calls_left(2 * day, day), SWEEP_CALLS_PER_DAY);
    }

    #[test]
    fn deleted_customers_are_read_from_the_answer() {
        let body = json!({"data": [
            {"type": "customer", "id": "c1", "attributes": {"deleted": true, "emails": [{"email": "A@x.io"}]}},
            {"type": "customer", "id": "c2", "attributes": {"deletedAt": "2026-01-01T00:00:00Z"}},
            {"type": "customer", "id": "c3", "attributes": {"name": "kept"}},
        ]});
        let response = Response {
            status: 200,
            headers: vec![],
            body: body.to_string(),
        };
        let (deleted, listed) = deleted_customers(&response).unwrap();
        assert_eq!(listed, 3);
        assert_eq!(
            deleted.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["c1", "c2"]
        );
        assert_eq!(
            deleted[0].whos(),
            [Who::Id("c1".into()), Who::Email("a@x.io".into())]
        );
        let refused = Response {
            status: 403,
            headers: vec![],
            body: String::new(),
        };
        assert!(deleted_customers(&refused).is_err());
    }
}
