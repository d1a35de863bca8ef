//! The edge: receives close events, holds each survey until it falls due, checks the
//! conversation again, and sends it to Stella exactly once.
//!
//! Pure orchestration over three small traits — [`Transport`] (HTTP), [`Store`] (the org's
//! jobs table) and the caller's clock and randomness passed in as values — so every path is
//! tested on the host with fakes (`tests/edge.rs`); `wasm::edge` implements them over
//! workerd's `fetch` and Durable Object SQL storage.
//!
//! Two levels, as on Cloudflare: the [`gateway`] answers HTTP (stateless, any instance), and
//! the [`scheduler`] owns one org's jobs (one Durable Object per org, one alarm at the earliest
//! due time).
#![allow(async_fn_in_trait)] // single-threaded Wasm: the futures never cross threads

pub mod agent_connect;
pub mod audit;
pub mod budget;
pub mod codes;
pub mod deliveries;
pub mod forget;
pub mod gateway;
pub mod interpret;
pub mod job;
pub mod kustomer_api;
pub mod record_check;
pub mod residency;
pub mod retention;
pub mod roster;
pub mod scheduler;
pub mod seal;
pub mod subrequests;
pub mod trust;

pub use crate::http::{Request, Response};
pub use crate::settings::setting_header;
use crate::settings::ValidationOptions;
use deliveries::{DeliveryQuery, Tally};
use serde::Serialize;
use serde_json::{json, Value};

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// A network error or a timeout: the same request may work later.
    Network(String),
    /// The request itself cannot be made (an invalid URL or header, or one too long for any
    /// server): it never will, so it is not retried.
    Refused(String),
    /// Not sent: the org's Kustomer API budget allows no more calls from this app for now
    /// ([`budget`]). Nothing was tried.
    Paced,
    /// Not sent: this invocation's outbound calls are used up ([`subrequests`]). Nothing was
    /// tried.
    OverBudget,
}

/// The longest URL the edge requests. Ids are checked at the door, so only a misconfigured
/// base URL reaches this; servers refuse far shorter ones (8 KiB is common).
pub const MAX_URL_BYTES: usize = 8192;

/// Sends HTTP requests. The real one is workerd's `fetch` with a 10-second timeout.
pub trait Transport {
    /// Sends one request.
    async fn send(&self, request: Request) -> Result<Response, SendError>;
}

/// What the edge keeps about an org besides its jobs: its settings (sealed, and only while a job
/// needs them) and the app secret's fingerprint Kustomer vouches for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgRecord {
    /// The org, once known: the associated data its settings are sealed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The raw settings of the latest authenticated call, sealed ([`seal::Sealer`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_settings: Option<String>,
    /// Their fingerprint (an HMAC under the sealing key), so that an unchanged set is not
    /// sealed and written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_digest: Option<String>,
    /// Whom the org trusts: the app secret's fingerprint as Kustomer last gave it, and the
    /// link's problems ([`trust`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub trust: trust::Trust,
    /// The org's calls to Agent Connect's read APIs in the current minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stella_pace: Option<agent_connect::StellaPace>,
    /// Where reading survey outcomes back stands.
    #[serde(default, skip_serializing_if = "agent_connect::Follow::is_idle")]
    pub follow: agent_connect::Follow,
    /// The deleted-customers sweep, and until when forgotten customers' digests are checked.
    #[serde(default, skip_serializing_if = "is_default")]
    pub forget: forget::Sweep,
    /// Keyed marks of each kept setting's value, to name the fields a change touched in the
    /// audit list ([`audit::settings_marks`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub settings_marks: audit::SettingsMarks,
    /// Entries pruned early for space, and how far personal data has been removed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub storage: retention::Watch,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The org's jobs and cache (a Durable Object's SQL storage). Errors are storage faults.
pub trait Store {
    /// The job for a conversation.
    fn get(&self, conversation_id: &str) -> Result<Option<job::Job>, String>;
    /// Writes a job (insert or replace), moving it between the summary's counters
    /// ([`deliveries::TallyKey`]) if its counter changed.
    fn put(&self, job: &job::Job) -> Result<(), String>;
    /// Writes a conversation's first job: false, and nothing written, when it has one already.
    fn insert_new(&self, job: &job::Job) -> Result<bool, String>;
    /// Jobs to act on at `now_ms`: due scheduled or retrying ones, and `sending` ones whose
    /// lease (last update) is older than `lease_before_ms` (an attempt cut off by a crash).
    fn due(&self, now_ms: i64, lease_before_ms: i64, limit: usize)
        -> Result<Vec<job::Job>, String>;
    /// The earliest `due_ms` of a job that is not final (a `sending` job's is its lease
    /// expiry), for the alarm.
    fn next_due(&self) -> Result<Option<i64>, String>;
    /// The delivery log's page: the jobs [`DeliveryQuery::matches`], newest close first (then
    /// by conversation id, descending), at most `limit`.
    fn deliveries(&self, query: &DeliveryQuery, limit: usize) -> Result<Vec<job::Job>, String>;
    /// The summary's counts over the jobs [`DeliveryQuery::in_summary`] admits: from the
    /// counters every write and delete keeps, and the jobs only where [`deliveries::TallyPlan`]
    /// says (the ragged ends of a window, one conversation), never by counting every job.
    fn tally(&self, query: &DeliveryQuery) -> Result<Tally, String>;
    /// A cached value, if not expired.
    fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<String>, String>;
    /// Caches a value until `expires_ms`.
    fn cache_put(&self, key: &str, value: &str, expires_ms: i64) -> Result<(), String>;
    /// The org's record (empty when none is stored).
    fn org(&self) -> Result<OrgRecord, String>;
    /// Replaces the org's record.
    fn put_org(&self, record: &OrgRecord) -> Result<(), String>;
    /// Deletes final jobs last changed at or before `before_ms` (the retention period; at, so
    /// that the alarm set for that instant finds something to do) and expired cache entries.
    /// Returns how many jobs went; they leave the summary's counters in the same write.
    fn prune(&self, before_ms: i64, now_ms: i64) -> Result<usize, String>;
    /// When the oldest final job was last changed, for the alarm that prunes it.
    fn oldest_final(&self) -> Result<Option<i64>, String>;
    /// Whether a survey sent at or after `sent_since_ms` is still followed
    /// ([`job::Job::followed_since`]).
    fn followed(&self, sent_since_ms: i64) -> Result<bool, String>;
    /// Holds a close Kustomer has not vouched for: replaces the conversation's held close if
    /// this one is not older; false, and nothing written, when [`trust::MAX_HELD`] other
    /// conversations are held already.
    fn hold(&self, close: &trust::HeldClose) -> Result<bool, String>;
    /// How many closes are held.
    fn held_count(&self) -> Result<usize, String>;
    /// When the oldest held close was held.
    fn held_oldest(&self) -> Result<Option<i64>, String>;
    /// Up to `limit` held closes, oldest first, left in place (the Deliveries page lists them).
    fn held_list(&self, limit: usize) -> Result<Vec<trust::HeldClose>, String>;
    /// Removes and returns up to `limit` held closes, oldest first.
    fn take_held(&self, limit: usize) -> Result<Vec<trust::HeldClose>, String>;
    /// Drops the closes held at or before `before_ms`; how many went.
    fn expire_held(&self, before_ms: i64) -> Result<usize, String>;
    /// Jobs whose outcome waits to be written onto the conversation
    /// ([`job::Job::outcome_unwritten`]), at most `limit`, least recently changed first.
    fn outcomes_unwritten(&self, limit: usize) -> Result<Vec<job::Job>, String>;
    /// Jobs whose customer keys ([`forget::CustomerKeys`]) hold any of `digests`, at most
    /// `limit`: an index seek, never a scan.
    fn customer_jobs(&self, digests: &[String], limit: usize) -> Result<Vec<job::Job>, String>;
    /// Adds an audit entry, drops those at or before `keep_after_ms`, and keeps at most
    /// `max_entries` (the newest).
    fn audit_add(
        &self,
        entry: &audit::AuditEntry,
        keep_after_ms: i64,
        max_entries: usize,
    ) -> Result<(), String>;
    /// Up to `limit` audit entries after `after_ms`, newest first.
    fn audit_list(&self, after_ms: i64, limit: usize) -> Result<Vec<audit::AuditEntry>, String>;
    /// The org's storage in bytes, as the platform counts it against the object's limit
    /// (`ctx.storage.sql.databaseSize`).
    fn database_size(&self) -> Result<u64, String>;
    /// Finished jobs after `after` (all, when `None`) in the order of [`retention::Mark`] (last
    /// change, then id), last changed at or before `until_ms`, at most `limit`: one step of a
    /// walk that reads each once, through the index of finished jobs.
    fn finished_after(
        &self,
        after: Option<&retention::Mark>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<job::Job>, String>;
    /// Deletes up to `limit` of the finished jobs changed longest ago, never a pending one; they
    /// leave the summary's counters in the same write. How many went.
    fn prune_oldest(&self, limit: usize) -> Result<usize, String>;
}

/// An HTTP answer from the edge: status and JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// JSON body.
    pub body: Value,
    /// `Retry-After` in seconds, on a 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after: None,
        }
    }

    /// `{error: {code, message}}`, with the code's status.
    pub fn error(code: codes::ErrorCode, message: impl Into<String>) -> Self {
        Self::json(
            code.status(),
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }
}

/// A refused input answers `400 {error: {code, path?, message, fields?}}`.
impl From<crate::InputError> for Reply {
    fn from(error: crate::InputError) -> Self {
        Self::json(400, json!({ "error": error }))
    }
}

/// How the edge is configured (workerd bindings; the defaults are production's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// How strict settings validation is: `http://` loopback URLs are accepted only where the
    /// local sandbox setup turns it on (`ALLOW_LOOPBACK`).
    pub validation: ValidationOptions,
    /// Create EU orgs' objects in the EU jurisdiction ([`residency`]); `JURISDICTIONS=off`
    /// only where the runtime cannot (local workerd).
    pub pin_jurisdiction: bool,
    /// Retry spacing.
    pub retry: job::RetryPolicy,
    /// How long user emails, tag names and key→org answers are cached.
    pub cache_ms: i64,
    /// How long a `sending` attempt may last before it counts as cut off.
    pub lease_ms: i64,
    /// How long finished jobs are kept for the delivery log.
    pub retention_days: u32,
    /// Key checks (`settings/check`, `preview`) allowed per key and per client address in a
    /// minute.
    pub key_checks_per_minute: u32,
    /// How often survey outcomes are read back from Agent Connect while any is awaited.
    pub outcome_poll_ms: i64,
    /// Delivery log reads allowed per Kustomer key in a minute.
    pub log_reads_per_key_per_minute: u32,
    /// Delivery log reads allowed per org in a minute (all its keys together).
    pub log_reads_per_org_per_minute: u32,
    /// How often customers deleted in Kustomer are looked for ([`forget::Sweep`]): a day; the
    /// local setup's tests shorten it.
    pub forget_sweep_ms: i64,
    /// Outbound calls one invocation may make (Cloudflare's subrequest limit, by plan).
    pub subrequests_per_invocation: u32,
    /// How long a finished entry keeps the customer's name, e-mail and comment
    /// ([`retention`]): Agent Connect's own default, 30 days; 0 removes them once it is finished.
    pub personal_data_days: u32,
    /// The size the org's storage is kept under ([`retention`]): at 80% of it, the oldest
    /// finished entries go before their time.
    pub storage_ceiling_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            validation: ValidationOptions::default(),
            pin_jurisdiction: true,
            retry: job::RetryPolicy::default(),
            cache_ms: 5 * 60_000,
            lease_ms: 60_000,
            retention_days: 90,
            outcome_poll_ms: 5 * 60_000,
            key_checks_per_minute: 5,
            log_reads_per_key_per_minute: 60,
            log_reads_per_org_per_minute: 120,
            forget_sweep_ms: forget::SWEEP_EVERY_MS,
            subrequests_per_invocation: subrequests::DEFAULT_PER_INVOCATION,
            personal_data_days: 30,
            storage_ceiling_bytes: retention::DEFAULT_CEILING_BYTES,
        }
    }
}

impl Config {
    /// The configuration from the worker's bindings, as text (`RETRY_BASE_MS`, …): an unset or
    /// `null` binding means the default; a value that is not a positive whole number is refused
    /// with a message, so a typo stops the worker at start instead of retrying without pause.
    pub fn from_bindings(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let d = Self::default();
        // Each value from 1 to a bound far above any sane setting, so that no sum overflows.
        let number = |name: &str, default: i64, max: i64| -> Result<i64, String> {
            let value = get(name).map(|v| v.trim().to_owned());
            match value.filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if n > max => Err(format!("{name} is at most {max}, not {n}")),
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("{name} must be a positive whole number, not {v:?}")),
                },
            }
        };
        const DAY_MS: i64 = 86_400_000;
        let small = |name: &str, default: u32, max: u32| -> Result<u32, String> {
            // At most `max`, so it fits.
            number(name, default.into(), max.into()).map(|n| n as u32)
        };
        Ok(Self {
            validation: ValidationOptions {
                allow_loopback: get("ALLOW_LOOPBACK").as_deref() == Some("true"),
            },
            pin_jurisdiction: get("JURISDICTIONS").as_deref() != Some("off"),
            retry: job::RetryPolicy {
                base_ms: number("RETRY_BASE_MS", d.retry.base_ms, d.retry.max_ms)?,
                ..d.retry
            },
            cache_ms: number("CACHE_MS", d.cache_ms, DAY_MS)?,
            lease_ms: number("LEASE_MS", d.lease_ms, DAY_MS)?,
            retention_days: small("RETENTION_DAYS", d.retention_days, 3650)?,
            key_checks_per_minute: small(
                "KEY_CHECKS_PER_MINUTE",
                d.key_checks_per_minute,
                1_000_000,
            )?,
            outcome_poll_ms: number("OUTCOME_POLL_MS", d.outcome_poll_ms, DAY_MS)?,
            log_reads_per_key_per_minute: small(
                "LOG_READS_PER_KEY_PER_MINUTE",
                d.log_reads_per_key_per_minute,
                1_000_000,
            )?,
            log_reads_per_org_per_minute: small(
                "LOG_READS_PER_ORG_PER_MINUTE",
                d.log_reads_per_org_per_minute,
                1_000_000,
            )?,
            forget_sweep_ms: number("FORGET_SWEEP_MS", d.forget_sweep_ms, 7 * DAY_MS)?,
            subrequests_per_invocation: {
                let (name, min) = (
                    "SUBREQUESTS_PER_INVOCATION",
                    subrequests::MIN_PER_INVOCATION,
                );
                match small(name, d.subrequests_per_invocation, 10_000_000)? {
                    n if n < min => {
                        return Err(format!("{name} is at least {min} (one survey's calls and a Data Return page), not {n}"))
                    }
                    n => n,
                }
            },
            // 0 is allowed here: no personal data kept once an entry is finished.
            personal_data_days: match get("PERSONAL_DATA_DAYS").as_deref().map(str::trim) {
                Some("0") => 0,
                _ => small("PERSONAL_DATA_DAYS", d.personal_data_days, 3650)?,
            },
            storage_ceiling_bytes: number(
                "STORAGE_CEILING_BYTES",
                d.storage_ceiling_bytes as i64,
                retention::OBJECT_LIMIT_BYTES as i64,
            )? as u64,
        })
    }

    /// How long finished entries keep personal data, in ms.
    pub fn personal_data_ms(&self) -> i64 {
        i64::from(self.personal_data_days) * 86_400_000
    }

    /// The retention period in ms.
    pub fn retention_ms(&self) -> i64 {
        i64::from(self.retention_days) * 86_400_000
    }
}

/// Raw settings read from request headers (absent headers are left out, so defaults apply).
/// The app secret is not a setting the survey needs: it is read apart and never stored.
pub fn settings_from_headers(header: impl Fn(&str) -> Option<String>) -> Value {
    let mut raw = serde_json::Map::new();
    let fields = crate::settings::FIELDS.iter().zip(gateway::HEADERS.names());
    for (f, name) in fields.filter(|(f, _)| f.key != crate::settings::APP_SECRET) {
        if let Some(v) = header(name) {
            raw.insert(f.key.to_owned(), Value::String(v));
        }
    }
    Value::Object(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_setting_keys() {
        assert_eq!(setting_header("stellaApiKey"), "x-stella-api-key");
        assert_eq!(setting_header("secondsUntilSend"), "x-seconds-until-send");
        assert_eq!(setting_header("kustomerApiUrl"), "x-kustomer-api-url");
    }

    #[test]
    fn config_from_bindings_defaults_unset_and_refuses_nonsense() {
        let from = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
            Config::from_bindings(move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        assert_eq!(
            from(&[]).unwrap(),
            Config::default(),
            "unset means the default"
        );
        assert_eq!(from(&[("LEASE_MS", " ")]).unwrap(), Config::default());
        let c = from(&[
            ("RETRY_BASE_MS", "300"),
            ("LEASE_MS", "2000"),
            ("ALLOW_LOOPBACK", "true"),
        ])
        .unwrap();
        assert_eq!(
            (c.retry.base_ms, c.lease_ms, c.validation.allow_loopback),
            (300, 2000, true)
        );
        let free = from(&[("SUBREQUESTS_PER_INVOCATION", "50")]).unwrap();
        assert_eq!(free.subrequests_per_invocation, 50);
        let c = from(&[
            ("PERSONAL_DATA_DAYS", "7"),
            ("STORAGE_CEILING_BYTES", "1000000"),
        ])
        .unwrap();
        assert_eq!(
            (c.personal_data_days, c.storage_ceiling_bytes),
            (7, 1_000_000)
        );
        let none_kept = from(&[("PERSONAL_DATA_DAYS", "0")]).unwrap();
        assert_eq!(none_kept.personal_data_days, 0);
        for (name, bad) in [
            ("RETRY_BASE_MS", "0"),
            ("LEASE_MS", "-5"),
            ("LEASE_MS", "1.5"),
            ("LEASE_MS", "86400001"),
            ("RETENTION_DAYS", "3651"),
            ("RETENTION_DAYS", "abc"),
            ("KEY_CHECKS_PER_MINUTE", "99999999999"),
            ("LOG_READS_PER_KEY_PER_MINUTE", "0"),
            ("LOG_READS_PER_ORG_PER_MINUTE", "1000001"),
            ("SUBREQUESTS_PER_INVOCATION", "6"),
            ("SUBREQUESTS_PER_INVOCATION", "10000001"),
            ("PERSONAL_DATA_DAYS", "-1"),
            ("PERSONAL_DATA_DAYS", "3651"),
            ("STORAGE_CEILING_BYTES", "10000000001"),
        ] {
            let e = from(&[(name, bad)]).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
    }
}
