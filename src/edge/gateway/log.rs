//! The delivery log, resends and the org's app secret: calls from the app's own pages, each
//! scoped to the org of the caller's Kustomer key.

use super::{
    app_secret, valid_app_secret, Gateway, Incoming, Router, ADMIN_ROLES, DELIVERY_LOG_LIMIT,
};
use crate::edge::outcome::ErrorCode;
use crate::edge::scheduler::Command;
use crate::edge::{seal, Reply, Transport};
use crate::kustomer;
use crate::settings::{self, APP_SECRET};
use serde_json::json;

impl<T: Transport, R: Router> Gateway<T, R> {
    pub(super) async fn deliveries(&self, r: &Incoming<'_>) -> Reply {
        let app_secret = match app_secret(r, &self.last_secret) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        match self.caller(r).await {
            Ok(token) => {
                let command = Command::List {
                    limit: DELIVERY_LOG_LIMIT,
                    app_secret,
                };
                self.forward(&token.org, &command).await
            }
            Err(reply) => reply,
        }
    }

    /// Sends a failed or skipped survey again. The path segment is percent-decoded exactly
    /// once, so any id the log shows can be resent; the call carries the settings, as a close
    /// does, and they are what the new attempt uses.
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
            return Reply::json(400, json!({ "error": e }));
        }
        let raw = match self.settings(r) {
            Ok((raw, _)) => raw,
            Err(reply) => return reply,
        };
        match self.caller(r).await {
            Ok(token) => {
                let command = Command::Resend {
                    conversation_id,
                    app_secret,
                    settings: raw,
                };
                self.forward(&token.org, &command).await
            }
            Err(reply) => reply,
        }
    }

    /// Registers, rotates (`x-app-secret` is the current one) or resets (a Kustomer key with
    /// an org admin role) the org's app secret, given as `x-new-app-secret`.
    pub(super) async fn set_app_secret(&self, r: &Incoming<'_>) -> Reply {
        let new = (r.header)(super::NEW_APP_SECRET_HEADER);
        let Some(new) = new.filter(|s| valid_app_secret(s)) else {
            return Reply::error(
                ErrorCode::InvalidAppSecret,
                "Send the new app secret in x-new-app-secret: 16 to 256 characters without spaces.",
            );
        };
        match self.caller(r).await {
            Ok(token) => {
                let command = Command::SetSecret {
                    org: token.org.clone(),
                    current: (r.header)(&settings::setting_header(APP_SECRET))
                        .map(|s| seal::digest(s.trim())),
                    new: seal::digest(new.trim()),
                    admin: token
                        .roles
                        .iter()
                        .any(|r| ADMIN_ROLES.contains(&r.as_str())),
                };
                self.forward(&token.org, &command).await
            }
            Err(reply) => reply,
        }
    }
}
