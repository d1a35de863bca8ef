//! The org's settings as the scheduler keeps them: sealed in the org's record once per org
//! (the latest an authenticated call sent), opened once per alarm run.

use super::{Clock, Scheduler};
use crate::edge::audit::{self, AuditEntry};
use crate::edge::job::StoredSettings;
use crate::edge::seal;
use crate::edge::{OrgRecord, Store, Transport};
use crate::settings::{self, Settings};
use serde_json::Value;
use std::cell::{Cell, RefCell};

/// The org's settings as an attempt finds them.
pub(super) enum OrgSettings {
    Ready(Box<Settings>),
    /// Stored but invalid: the survey fails with this message.
    Invalid(String),
    /// Not stored, or not readable: the survey waits for the next authenticated call.
    Missing(String),
}

impl OrgSettings {
    /// The settings, when they can be sent with.
    pub(super) fn ready(&self) -> Option<&Settings> {
        match self {
            Self::Ready(s) => Some(s),
            _ => None,
        }
    }

    /// The admin's share of the Kustomer API budget (the default without usable settings).
    pub(super) fn share(&self) -> u32 {
        self.ready()
            .map_or(settings::DEFAULT_KUSTOMER_BUDGET_SHARE, |s| {
                s.kustomer_budget_share
            })
    }
}

/// What this instance knows of the settings it keeps.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// The settings text this instance last found or made sealed in the org's record.
    text: RefCell<Option<String>>,
    /// The last run found held closes but no settings it could send them with (not stored,
    /// not opening, not valid): they wait for the next settings kept, not a hot alarm.
    held_blocked: Cell<bool>,
}

impl Kept {
    /// Whether held closes wait for the next settings kept.
    pub(super) fn held_blocked(&self) -> bool {
        self.held_blocked.get()
    }

    /// Held closes found no settings to go with: they wait for the next ones.
    pub(super) fn block_held(&self) {
        self.held_blocked.set(true);
    }

    /// New settings: held closes may go with them.
    pub(super) fn unblock_held(&self) {
        self.held_blocked.set(false);
    }

    /// Whether `text` is what this instance last kept (in constant time: it holds the keys).
    fn is(&self, text: &str) -> bool {
        (self.text.borrow().as_deref()).is_some_and(|k| seal::same_text(k, text))
    }

    fn keep(&self, text: &str) {
        *self.text.borrow_mut() = Some(text.to_owned());
    }
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// The org's settings for this run, opened once.
    pub(super) fn org_settings(&self) -> Result<OrgSettings, String> {
        let record = self.store.org()?;
        let (Some(sealed), Some(org)) = (&record.sealed_settings, &record.org) else {
            return Ok(OrgSettings::Missing(
                "No settings are stored for this org; they come with the next close.".into(),
            ));
        };
        let raw = match self.sealer.open(sealed, org) {
            Ok(text) => serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            Err(why) => {
                // Forget its fingerprint, so that the next authenticated call seals its settings
                // afresh instead of finding "the same settings" kept. The seal itself stays: it
                // opens again if the deployment's previous key is configured again.
                self.store.put_org(&OrgRecord {
                    settings_digest: None,
                    ..record.clone()
                })?;
                return Ok(OrgSettings::Missing(format!(
                    "The org's settings cannot be read ({why}); they come again with the next close."
                )));
            }
        };
        Ok(match settings::validate_settings(&raw, self.validation()) {
            Ok(s) => OrgSettings::Ready(Box::new(s)),
            Err(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                OrgSettings::Invalid(format!(
                    "The app's settings are not valid: check {}.",
                    fields.join(", ")
                ))
            }
        })
    }

    /// Seals and stores `raw` as the org's settings, unless the same are stored already.
    pub(super) fn keep_settings(
        &self,
        record: &mut OrgRecord,
        org: &str,
        raw: &StoredSettings,
    ) -> Result<(), String> {
        let text = &raw.0;
        let sealed_now =
            (record.sealed_settings.as_deref()).is_some_and(|s| self.sealer.is_current(s));
        // The same settings as this instance kept last, still sealed: nothing to do, not even
        // the fingerprint.
        if self.kept.is(text) && record.settings_digest.is_some() && sealed_now {
            return Ok(());
        }
        let digest = self.sealer.fingerprint(&format!("{org}\n{text}"));
        let unchanged = record.settings_digest.as_deref() == Some(&digest);
        if unchanged && sealed_now {
            self.kept.keep(text);
            return Ok(());
        }
        self.kept.unblock_held();
        if !unchanged {
            let (marks, fields) =
                audit::settings_marks(&self.sealer, org, text, &record.settings_marks);
            record.settings_marks = marks;
            if !fields.is_empty() {
                self.audit(AuditEntry::settings(self.clock.now_ms(), &fields))?;
            }
        }
        record.sealed_settings = Some(self.sealer.seal(text, org, self.clock.nonce()));
        record.settings_digest = Some(digest);
        record.org = Some(org.to_owned());
        self.store.put_org(record)?;
        self.kept.keep(text);
        Ok(())
    }

    /// Seals a resend's settings again if they are exactly those the org's workflow last sent
    /// (its keyed fingerprint, which outlives the sealed copy); any others are not kept, so a
    /// user's own headers on a resend change nothing. Whether the org has settings for the
    /// resent surveys now.
    pub(super) fn adopt_settings(
        &self,
        mut record: OrgRecord,
        raw: &StoredSettings,
    ) -> Result<bool, String> {
        let Some(org) = record.org.clone() else {
            return Ok(false);
        };
        let digest = self.sealer.fingerprint(&format!("{org}\n{}", raw.0));
        if record.settings_digest.as_deref() == Some(&digest) {
            self.keep_settings(&mut record, &org, raw)?;
        }
        Ok(record.sealed_settings.is_some())
    }

    /// Once no job is pending and no outcome is read back or waits to be written, the org's
    /// settings are not kept. The keyed fingerprint stays: it reveals nothing without the
    /// deployment's key, and it lets a resend bring back exactly these settings
    /// ([`Self::adopt_settings`]).
    pub(super) fn drop_settings_if_idle(&self) -> Result<(), String> {
        if self.store.next_due()?.is_some() || self.next_follow()?.is_some() {
            return Ok(());
        }
        // Read again: a close may have stored newer settings (and a job) meanwhile.
        let record = self.store.org()?;
        if record.sealed_settings.is_some() && self.store.next_due()?.is_none() {
            self.store.put_org(&OrgRecord {
                sealed_settings: None,
                ..record
            })?;
        }
        Ok(())
    }
}
