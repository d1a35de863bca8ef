//! Who the org's app is: Kustomer says, not the first caller.
//!
//! The settings page saves the app secret (a `secret` setting nobody reads back) and, beside
//! it, its fingerprint (a hidden, readable setting: [`fingerprint`]). The edge reads that
//! fingerprint from Kustomer with the org's key and trusts a call whose app secret has it. Only
//! someone who can write the app's settings in Kustomer (an admin) changes who is trusted, and
//! saving the settings page again ("Re-link the app") is the recovery. No call ever registers
//! a secret.
//!
//! A close whose secret Kustomer does not vouch for is never lost: it is held (one per
//! conversation, the latest; its settings never kept), scheduled with the org's trusted
//! settings once the org is linked, or dropped after [`HELD_DAYS`], counted.

use super::interpret::{Failure, FetchError};
use super::kustomer_api::{self, Kustomer};
use super::Transport;
use crate::error::codes;
use crate::manifest::{APP, CATEGORY};
use crate::settings::{APP_SECRET_FINGERPRINT, APP_SECRET_FINGERPRINT_CONTEXT};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How often a presented secret Kustomer has not vouched for may make the edge read the
/// fingerprint again, per org: a caller with a wrong secret costs the org one call a minute.
pub const READ_EVERY_MS: i64 = 60_000;
/// How long a held close waits for the org to be linked before it is dropped (counted).
pub const HELD_DAYS: i64 = 7;
/// The most closes an org holds at once (one per conversation): a flood of closes with a wrong
/// secret costs bounded storage. Past it, further ones are refused (counted), never a real
/// one replaced.
pub const MAX_HELD: usize = 50_000;
/// How many held closes the delivery log's first page lists (the oldest, which expire first).
pub const LISTED_HELD: usize = 20;
/// How many held closes one call or alarm run schedules: bounded work per invocation.
pub const RELEASE_BATCH: usize = 500;

/// The fingerprint of an app secret, as the settings page saves it beside the secret and as
/// the edge compares it: `v1:` and the lower-case hex HMAC-SHA256 of
/// [`APP_SECRET_FINGERPRINT_CONTEXT`] keyed with the secret. Anyone who can read the org's
/// settings may read it; the secret (32 random bytes) cannot be found from it.
pub fn fingerprint(secret: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(APP_SECRET_FINGERPRINT_CONTEXT.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(3 + 64);
    hex.push_str("v1:");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

codes! {
    /// Why the org's app is not linked, in the settings page's and Deliveries page's banner.
    pub enum TrustCode {
        /// Kustomer holds no fingerprint: the settings page has not been saved since 0.5.0.
        NotLinked = "not_linked",
        /// The secret the call carries is not the one Kustomer's settings vouch for.
        SecretMismatch = "secret_mismatch",
        /// The Kustomer key may not read the app's settings (a role is missing).
        SettingsUnreadable = "settings_unreadable",
        /// Kustomer could not be asked (down, or its budget spent).
        KustomerUnavailable = "kustomer_unavailable",
    }
}

/// Kustomer's failure to show the app's settings: a refusal (a role is missing), or Kustomer out
/// of reach.
impl From<&Failure> for TrustCode {
    fn from(failure: &Failure) -> Self {
        match failure {
            Failure::Fatal {
                code: FetchError::Rejected,
                ..
            } => Self::SettingsUnreadable,
            _ => Self::KustomerUnavailable,
        }
    }
}

/// A stored problem's code, read back; an unknown one reads as a mismatch ([`TrustCode::parse`]).
impl<'de> Deserialize<'de> for TrustCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

impl TrustCode {
    /// The code for a stored problem's text (an unknown one reads as a mismatch).
    pub fn parse(text: &str) -> Self {
        Self::from_code(text).unwrap_or(Self::SecretMismatch)
    }

    /// What the admin does about it, in their words.
    pub fn fix(self) -> &'static str {
        match self {
            Self::NotLinked | Self::SecretMismatch => {
                "Open the app's settings page in Kustomer and press \"Re-link the app\"."
            }
            Self::SettingsUnreadable => {
                "Give the Kustomer API key the role org.permission.setting.read (Settings > Security > API keys), then press \"Check connection\" on the app's settings page."
            }
            Self::KustomerUnavailable => {
                "Nothing to do: the app asks Kustomer again with the next close, or press \"Check connection\" on the app's settings page."
            }
        }
    }
}

/// What the org's record keeps about the link: the fingerprint Kustomer last gave, when it was
/// read, the last problem, and the held closes dropped or refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trust {
    /// The fingerprint Kustomer's settings held at the last read (none: not linked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// When Kustomer was last asked, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_ms: Option<i64>,
    /// The last problem with the link, until a trusted call clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// Held closes dropped after [`HELD_DAYS`] unlinked.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expired: u64,
    /// Closes not held because [`MAX_HELD`] were held already.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A problem with the link, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// What kind of problem (stored as its text).
    pub code: TrustCode,
    /// What happened, in words (no key: Kustomer's words are masked as they enter).
    pub message: String,
    /// When, ms.
    pub at_ms: i64,
}

impl Trust {
    /// Whether `presented` (a [`fingerprint`]) is the one Kustomer vouches for.
    pub fn vouches_for(&self, presented: &str) -> bool {
        self.fingerprint
            .as_deref()
            .is_some_and(|f| super::seal::same_text(f, presented))
    }

    /// Why a secret it does not vouch for is refused: the last problem, else no fingerprint
    /// saved, else another secret's.
    pub fn refusal(&self) -> TrustCode {
        match (&self.problem, &self.fingerprint) {
            (Some(p), _) => p.code,
            (None, None) => TrustCode::NotLinked,
            (None, Some(_)) => TrustCode::SecretMismatch,
        }
    }

    /// Whether a call Kustomer has not vouched for may make the edge ask Kustomer again now:
    /// once every [`READ_EVERY_MS`], or always when `forced` (Check connection, itself
    /// rate-limited per key and address).
    pub fn may_read(&self, now_ms: i64, forced: bool) -> bool {
        forced
            || self
                .read_ms
                .is_none_or(|t| now_ms - t >= READ_EVERY_MS || now_ms < t)
    }

    /// Records a read's result.
    pub fn read(&mut self, result: Result<Option<String>, Problem>, now_ms: i64) {
        self.read_ms = Some(now_ms);
        match result {
            Ok(Some(fingerprint)) => {
                self.fingerprint = Some(fingerprint);
                self.problem = None;
            }
            Ok(None) => {
                self.fingerprint = None;
                self.problem = Some(problem(TrustCode::NotLinked, NOT_LINKED, now_ms));
            }
            // A failed read keeps the fingerprint known so far: Kustomer being down unlinks
            // nothing.
            Err(p) => self.problem = Some(p),
        }
    }

    /// The link as the pages show it: `{linked, code?, message?, fix?, held, expired, refused}`.
    pub fn status(&self, held: usize) -> Value {
        let mut status = json!({
            "linked": self.fingerprint.is_some() && self.problem.is_none(),
            "held": held,
            "expired": self.expired,
            "refused": self.refused,
        });
        if let Some(p) = &self.problem {
            let code = p.code;
            status["code"] = json!(code);
            status["message"] = json!(p.message);
            status["fix"] = json!(code.fix());
            status["at"] = json!(super::scheduler::iso(p.at_ms));
        }
        status
    }
}

const NOT_LINKED: &str = "The app is not linked: Kustomer holds no fingerprint of the app secret, so the edge cannot tell the app's own workflow from any other holder of an org key.";

/// A problem now.
pub fn problem(code: TrustCode, message: &str, now_ms: i64) -> Problem {
    Problem {
        code,
        message: message.to_owned(),
        at_ms: now_ms,
    }
}

/// The problem when a call's secret is not the one Kustomer vouches for.
pub fn mismatch(now_ms: i64) -> Problem {
    problem(
        TrustCode::SecretMismatch,
        "A call carried an app secret that is not the one saved in the app's settings in Kustomer.",
        now_ms,
    )
}

/// Reads the fingerprint the settings page saved (`GET /v1/settings/{app}/{category}/{name}`,
/// role `org.permission.setting.read`): `None` when none is saved. A private app's settings
/// may live under its namespaced name (`<app>_<org>`): asked second, on a 404 (a guess, kept
/// here alone).
pub async fn read_fingerprint<T: Transport>(
    transport: &T,
    api_url: &str,
    key: &str,
    org: &str,
    now_ms: i64,
) -> Result<Option<String>, Problem> {
    let namespaced = format!("{APP}_{org}");
    for app in [APP, namespaced.as_str()] {
        let path = ["v1", "settings", app, CATEGORY, APP_SECRET_FINGERPRINT];
        match (Kustomer { api_url, key })
            .fetch(transport, &path, now_ms)
            .await
        {
            Ok(doc) => return Ok(setting_value(&doc)),
            Err(Failure::Fatal {
                code: FetchError::NotFound,
                ..
            }) => continue,
            Err(failure) => {
                let code = TrustCode::from(&failure);
                let message = match &failure {
                    _ if code == TrustCode::SettingsUnreadable => format!("Kustomer refused to show the app's settings to the Kustomer API key ({failure}): it needs the role org.permission.setting.read."),
                    Failure::Paced => kustomer_api::words(&failure),
                    other => format!("Kustomer could not be asked for the app's link: {other}"),
                };
                return Err(problem(code, &message, now_ms));
            }
        }
    }
    Ok(None)
}

/// A setting's value from Kustomer's answer: `data.attributes.value`, a string (the shape is
/// not documented: a guess kept here alone). Blank means none.
fn setting_value(doc: &Value) -> Option<String> {
    let value = doc.pointer("/data/attributes/value")?.as_str()?.trim();
    (!value.is_empty() && value.len() <= 256).then(|| value.to_owned())
}

/// A close held because Kustomer did not vouch for its app secret: what is needed to schedule
/// it later, and nothing of the call's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldClose {
    /// The conversation.
    pub conversation_id: String,
    /// When the event says it closed, ms.
    pub closed_at_ms: i64,
    /// The event's id, for de-duplication once scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When it was held, ms: it is dropped [`HELD_DAYS`] later.
    pub held_ms: i64,
}

impl HeldClose {
    /// When a held close is dropped if the org is not linked by then.
    pub fn expires_ms(held_ms: i64) -> i64 {
        held_ms.saturating_add(HELD_DAYS * 86_400_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_the_documented_hmac() {
        // The settings page computes the same with WebCrypto (tests/browser/secrets.test.mjs).
        let f = fingerprint("sandbox-app-secret-0123456789");
        assert!(f.starts_with("v1:") && f.len() == 67, "{f}");
        assert_ne!(f, fingerprint("sandbox-app-secret-0123456788"));
        assert!(!f.contains("sandbox"));
    }

    #[test]
    fn reads_are_limited_per_org_unless_forced() {
        let mut t = Trust::default();
        assert!(t.may_read(1_000, false));
        t.read(Ok(Some("v1:a".into())), 1_000);
        assert!(!t.may_read(1_000 + READ_EVERY_MS - 1, false));
        assert!(t.may_read(1_000 + READ_EVERY_MS - 1, true));
        assert!(t.may_read(1_000 + READ_EVERY_MS, false));
        // A clock that went back never locks reads out.
        assert!(t.may_read(0, false));
    }

    #[test]
    fn a_failed_read_keeps_the_link_but_shows_the_problem() {
        let mut t = Trust::default();
        t.read(Ok(Some("v1:a".into())), 1);
        assert!(t.vouches_for("v1:a") && !t.vouches_for("v1:b"));
        let down = problem(TrustCode::KustomerUnavailable, "down", 2);
        t.read(Err(down), 2);
        assert!(t.vouches_for("v1:a"));
        assert_eq!(t.status(0)["linked"], false);
        assert_eq!(t.status(0)["code"], "kustomer_unavailable");
        t.read(Ok(None), 3);
        assert!(!t.vouches_for("v1:a"));
        assert_eq!(t.status(3)["code"], "not_linked");
        assert_eq!(t.status(3)["held"], 3);
    }

    #[test]
    fn setting_values_are_read_leniently() {
        let doc = json!({"data": {"attributes": {"value": " v1:abc "}}});
        assert_eq!(setting_value(&doc).as_deref(), Some("v1:abc"));
        assert_eq!(
            setting_value(&json!({"data": {"attributes": {"value": ""}}})),
            None
        );
        assert_eq!(setting_value(&json!({"data": {}})), None);
        assert_eq!(
            setting_value(&json!({"data": {"attributes": {"value": 3}}})),
            None
        );
    }

    #[test]
    fn a_stored_problem_reads_back_as_it_was_written() {
        let stored = json!({"code": "settings_unreadable", "message": "m", "atMs": 5});
        let problem: Problem = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(problem.code, TrustCode::SettingsUnreadable);
        assert_eq!(serde_json::to_value(&problem).unwrap(), stored);
        let unknown = json!({"code": "from_a_later_build", "message": "m", "atMs": 5});
        let problem: Problem = serde_json::from_value(unknown).unwrap();
        assert_eq!(problem.code, TrustCode::SecretMismatch);
        let failure = |code| Failure::Fatal {
            code,
            message: "m".into(),
        };
        assert_eq!(
            TrustCode::from(&failure(FetchError::Rejected)),
            TrustCode::SettingsUnreadable
        );
        for other in [failure(FetchError::InvalidResponse), Failure::Paced] {
            assert_eq!(TrustCode::from(&other), TrustCode::KustomerUnavailable);
        }
    }
}
