//! The delivery log and resends: calls from the app's own pages, each scoped to the org of the
//! caller's Kustomer key.

use super::{app_secret, too_large, Gateway, Incoming, Router};
use crate::edge::codes::ErrorCode;
use crate::edge::deliveries::{DeliveryQuery, MAX_RESEND_BODY_BYTES, MAX_RESEND_PER_CALL};
use crate::edge::job::StoredSettings;
use crate::edge::scheduler::{Caller, Command};
use crate::edge::{seal, Reply, Transport};
use crate::json::{self, At};
use crate::kustomer;

/// How many times more reads than first pages a key and an org may make a minute: further
/// pages and one conversation's entry (no summary; the card reads one per conversation shown).
pub const OTHER_READS_FACTOR: u32 = 10;

impl<T: Transport, R: Router> Gateway<T, R> {
    /// A page of the org's delivery log, filtered as the query says (checked here, before
    /// Kustomer is asked about the key).
    pub(super) async fn deliveries(&self, r: &Incoming<'_>) -> Reply {
        let app_secret = match app_secret(r, &self.last_secret) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        let query = match DeliveryQuery::parse(r.query) {
            Ok(query) => query,
            Err(e) => return e.reply(),
        };
        match self.caller(r, app_secret).await {
            Ok(caller) => {
                if let Some(reply) = self.log_rate_limited(r, &caller.org, &query).await {
                    return reply;
                }
                self.forward_for(caller, |caller| Command::List { query, caller })
                    .await
            }
            Err(reply) => reply,
        }
    }

    /// Counts a log read against the caller's Kustomer key, then its org (once Kustomer has
    /// accepted the key, so no one mints buckets at will): any signed-in user can read the
    /// log through the app's command, and each read is work for the org's one scheduler. A first
    /// page (it carries the summary) counts in its own buckets; any other read (a further page,
    /// one conversation: the agent card's, through the org's one saved key) in buckets
    /// [`OTHER_READS_FACTOR`] times larger, so cards and exports are not starved by the page.
    async fn log_rate_limited(
        &self,
        r: &Incoming<'_>,
        org: &str,
        query: &DeliveryQuery,
    ) -> Option<Reply> {
        let key = (r.header)("x-kustomer-api-key").unwrap_or_default();
        let key = &seal::digest(key.trim())[..32];
        let (per_key, per_org) = (
            self.config.log_reads_per_key_per_minute,
            self.config.log_reads_per_org_per_minute,
        );
        let (kind, factor) = if query.after.is_none() && query.conversation_id.is_none() {
            ("log", 1)
        } else {
            ("log-page", OTHER_READS_FACTOR)
        };
        let buckets = [
            (format!("{kind}-key:{key}"), per_key.saturating_mul(factor)),
            (format!("{kind}-org:{org}"), per_org.saturating_mul(factor)),
        ];
        self.count_each(&buckets, "delivery log reads", r.now_ms)
            .await
    }

    /// Sends a failed or skipped survey again. The path segment is percent-decoded exactly
    /// once, so any id the log shows can be resent. The call carries the settings, but the new
    /// attempt uses them only if they are the ones the org's workflow last sent: any user of
    /// the org may run the resend command, and perhaps with headers of their own, so a resend
    /// must never change what the org's surveys are sent with.
    pub(super) async fn resend(&self, r: &Incoming<'_>, segment: &str) -> Reply {
        let app_secret = match app_secret(r, &self.last_secret) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        let conversation_id = match percent_encoding::percent_decode_str(segment).decode_utf8() {
            Ok(id) => id.into_owned(),
            Err(_) => {
                return Reply::error(
                    ErrorCode::InvalidId,
                    "The conversation id is not valid UTF-8.",
                )
            }
        };
        if let Err(e) = kustomer::check_id(&conversation_id, "conversationId") {
            return Reply::from(e);
        }
        self.forward_resend(r, app_secret, |caller, settings| Command::Resend {
            conversation_id,
            caller,
            settings,
        })
        .await
    }

    /// Sends several failed or skipped surveys again: `{"conversationIds": [...]}`, 1 to
    /// [`MAX_RESEND_PER_CALL`] ids (repeats folded), each checked as the single resend's; one
    /// call to the org's scheduler for them all.
    pub(super) async fn resend_many(&self, r: &Incoming<'_>) -> Reply {
        if r.body.len() > MAX_RESEND_BODY_BYTES {
            return too_large(MAX_RESEND_BODY_BYTES);
        }
        let app_secret = match app_secret(r, &self.last_secret) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        let conversation_ids = match resend_ids(r.body) {
            Ok(ids) => ids,
            Err(reply) => return reply,
        };
        self.forward_resend(r, app_secret, |caller, settings| Command::ResendMany {
            conversation_ids,
            caller,
            settings,
        })
        .await
    }

    /// A resend's settings (as the call gave them; the scheduler decides whether to use them)
    /// and the caller's org, then the command `make` builds with them, to that org's scheduler.
    async fn forward_resend(
        &self,
        r: &Incoming<'_>,
        fingerprint: String,
        make: impl FnOnce(Caller, StoredSettings) -> Command,
    ) -> Reply {
        let raw = match self.settings(r) {
            Ok((raw, _)) => raw,
            Err(reply) => return reply,
        };
        match self.caller(r, fingerprint).await {
            Ok(caller) => self.forward_for(caller, |caller| make(caller, raw)).await,
            Err(reply) => reply,
        }
    }
}

/// The ids of a bulk resend's body, checked, repeats folded (first mention kept).
fn resend_ids(body: &str) -> Result<Vec<String>, Reply> {
    let refuse = Reply::from;
    let body = json::from_json(body).map_err(refuse)?;
    let at = At::named(&body, "body");
    at.object().map_err(refuse)?;
    let list = at.get("conversationIds");
    let items = list.items().map_err(refuse)?;
    if items.len() > MAX_RESEND_PER_CALL {
        return Err(Reply::error(
            ErrorCode::TooManyIds,
            format!(
                "body.conversationIds holds {} ids; at most {MAX_RESEND_PER_CALL} are resent in one call.",
                items.len()
            ),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = item.string().map_err(refuse)?;
        kustomer::check_id(&id, &format!("body.conversationIds[{i}]")).map_err(refuse)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(refuse(crate::InputError::new(
            crate::error::InputErrorCode::InvalidShape,
            "body.conversationIds",
            format!("expected a list of 1 to {MAX_RESEND_PER_CALL} conversation ids"),
        )));
    }
    Ok(ids)
}
