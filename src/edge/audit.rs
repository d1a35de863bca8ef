//! The org's audit list: what changed and who asked, for a year, shown on the settings page.
//! Settings changes (which fields, never their values), re-links (the app secret's fingerprint
//! Kustomer vouches for changed), resends (which conversations), and forgets (how many entries,
//! never whom: keeping the address or id would undo the forget).

use super::seal::Sealer;
use crate::error::{codes, codes_deserialize};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How long an entry is kept and shown.
pub const AUDIT_DAYS: i64 = 366;
/// The most entries kept (the oldest go first): a bound on storage whatever the traffic.
pub const MAX_AUDIT: usize = 1000;
/// The most entries one read returns (the settings page's list).
pub const LISTED_AUDIT: usize = 200;
/// The most conversation ids one resend entry names.
pub const MAX_IDS_PER_ENTRY: usize = 20;

codes! {
    /// What an audit entry records.
    pub enum AuditKind {
        /// The org's kept settings changed.
        SettingsChanged = "settings_changed",
        /// The app secret's fingerprint Kustomer vouches for changed (a re-link).
        Relinked = "relinked",
        /// Surveys were scheduled again on request.
        Resend = "resend",
        /// A customer was forgotten on request.
        Forget = "forget",
        /// A customer deleted in Kustomer was forgotten by the daily sweep.
        DeletedCustomer = "deleted_customer",
    }
}

codes_deserialize!(AuditKind);

/// One entry: when, what, and its details (counts, field names, conversation ids; nothing
/// personal and no secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When (ms).
    pub at_ms: i64,
    /// What.
    pub kind: AuditKind,
    /// Its details.
    #[serde(default)]
    pub detail: Value,
}

impl AuditEntry {
    /// Settings changed: the names of the fields whose values changed.
    pub fn settings(at_ms: i64, fields: &[String]) -> Self {
        let detail = json!({ "fields": fields });
        Self::new(at_ms, AuditKind::SettingsChanged, detail)
    }

    /// A re-link; `first` when the org had no link before.
    pub fn relinked(at_ms: i64, first: bool) -> Self {
        Self::new(at_ms, AuditKind::Relinked, json!({ "first": first }))
    }

    /// A resend of `ids` (at most [`MAX_IDS_PER_ENTRY`] named), `scheduled` of them scheduled.
    pub fn resend(at_ms: i64, ids: &[String], scheduled: usize) -> Self {
        let named: Vec<&String> = ids.iter().take(MAX_IDS_PER_ENTRY).collect();
        let detail =
            json!({"conversationIds": named, "requested": ids.len(), "scheduled": scheduled});
        Self::new(at_ms, AuditKind::Resend, detail)
    }

    /// A forget that touched `entries` jobs (`more`: some are left for another run).
    pub fn forget(at_ms: i64, kind: AuditKind, entries: usize, more: bool) -> Self {
        Self::new(at_ms, kind, json!({"entries": entries, "more": more}))
    }

    fn new(at_ms: i64, kind: AuditKind, detail: Value) -> Self {
        Self {
            at_ms,
            kind,
            detail,
        }
    }

    /// What the settings page shows: the kind, when, its details and a sentence.
    pub fn shown(&self) -> Value {
        let d = &self.detail;
        let n = |k: &str| d[k].as_u64().unwrap_or(0);
        let words = match self.kind {
            AuditKind::SettingsChanged => {
                let fields: Vec<&str> = (d["fields"].as_array().into_iter().flatten())
                    .filter_map(Value::as_str)
                    .collect();
                format!("Settings changed: {}.", fields.join(", "))
            }
            AuditKind::Relinked if d["first"] == true => "The app was linked.".to_owned(),
            AuditKind::Relinked => "The app was re-linked (a new app secret).".to_owned(),
            AuditKind::Resend => format!(
                "Resend: {} of {} surveys scheduled again.",
                n("scheduled"),
                n("requested")
            ),
            AuditKind::Forget | AuditKind::DeletedCustomer => {
                let who = if self.kind == AuditKind::Forget {
                    "A customer was forgotten on request"
                } else {
                    "A customer deleted in Kustomer was forgotten"
                };
                let more = if d["more"] == true {
                    " (more were left for the next run)"
                } else {
                    ""
                };
                format!("{who}: {} entries changed{more}.", n("entries"))
            }
        };
        json!({
            "at": super::scheduler::iso(self.at_ms),
            "kind": self.kind,
            "detail": d,
            "words": words,
        })
    }
}

/// Keyed marks of each setting's value ([`Sealer::named_digest`] under the current key, bound
/// to the org and the field), to tell which fields changed without keeping any value.
pub type SettingsMarks = BTreeMap<String, String>;

/// The marks of `raw` (the settings as JSON text) and the fields whose marks differ from
/// `before` (added, changed or removed), by name. A mark under a key rotated out counts as a
/// change of no field: the next comparison is under the new key.
pub fn settings_marks(
    sealer: &Sealer,
    org: &str,
    raw: &str,
    before: &SettingsMarks,
) -> (SettingsMarks, Vec<String>) {
    let values: BTreeMap<String, Value> = serde_json::from_str(raw).unwrap_or_default();
    let marks: SettingsMarks = values
        .iter()
        .map(|(k, v)| {
            let (key, digest) = sealer.named_digest(&format!("settings-field\n{org}\n{k}\n{v}"));
            (k.clone(), format!("{key}:{digest}"))
        })
        .collect();
    let current_key = sealer.key_ids().into_iter().next().unwrap_or_default();
    let comparable = before
        .values()
        .all(|m| m.starts_with(&format!("{current_key}:")));
    let mut changed: Vec<String> = Vec::new();
    if comparable {
        let names = marks.keys().chain(before.keys());
        for name in names {
            if marks.get(name) != before.get(name) && !changed.contains(name) {
                changed.push(name.clone());
            }
        }
    }
    changed.sort();
    (marks, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_base64(&["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]).unwrap()
    }

    #[test]
    fn settings_marks_name_the_changed_fields_and_hold_no_value() {
        let s = sealer();
        let (first, changed) =
            settings_marks(&s, "o", r#"{"a":"secret-1","b":"2"}"#, &Default::default());
        assert_eq!(
            changed,
            ["a", "b"],
            "the first settings: every field is new"
        );
        assert!(!serde_json::to_string(&first).unwrap().contains("secret-1"));
        let (second, changed) =
            settings_marks(&s, "o", r#"{"a":"secret-2","b":"2","c":"x"}"#, &first);
        assert_eq!(changed, ["a", "c"]);
        let (_, changed) = settings_marks(&s, "o", r#"{"b":"2","c":"x"}"#, &second);
        assert_eq!(changed, ["a"], "a removed field changed too");
    }

    #[test]
    fn entries_say_what_happened_without_whom() {
        let e = AuditEntry::forget(0, AuditKind::Forget, 3, false);
        assert_eq!(
            e.shown()["words"],
            "A customer was forgotten on request: 3 entries changed."
        );
        let ids: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
        let r = AuditEntry::resend(0, &ids, 29);
        assert_eq!(
            r.detail["conversationIds"].as_array().unwrap().len(),
            MAX_IDS_PER_ENTRY
        );
        let text = serde_json::to_string(&r).unwrap();
        let back: AuditEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
