//! `POST /v1/kustomer/conversation-closed`: a conversation closed in Kustomer becomes a survey
//! scheduled in its org's scheduler.
//!
//! Everything but asking Kustomer whose key it is happens without waiting, so that a close
//! from a key whose org is known (nearly all of them) is one call into Rust that answers with
//! the command for the org's scheduler ([`Gateway::step`]); the worker entry makes that one
//! Durable Object call itself and returns its answer.

use super::{app_secret, field_error, Gateway, Incoming, Route, Router};
use crate::decision::{self, Plan};
use crate::edge::codes::ErrorCode;
use crate::edge::job::{Schedule, StoredSettings};
use crate::edge::kustomer_api::TokenInfo;
use crate::edge::residency::{self, Place};
use crate::edge::scheduler::Command;
use crate::edge::{Reply, Transport};
use crate::kustomer;
use crate::settings::{self, Settings};
use crate::timestamp;
use serde_json::json;
use std::rc::Rc;

/// What the gateway does with a request without waiting on anything.
#[derive(Debug)]
pub enum Step {
    /// Answer now.
    Reply(Reply),
    /// Hand this command to the org's scheduler; its reply is the answer.
    Forward {
        /// The org's object, whose scheduler it is.
        place: Place,
        /// The command (boxed: it carries the settings).
        command: Box<Command>,
    },
}

/// A close, checked as far as it goes before the key's org is known.
struct Checked {
    app_secret: String,
    raw: StoredSettings,
    settings: Rc<Settings>,
    claimed_org: String,
    close: Schedule,
}

impl<T: Transport, R: Router> Gateway<T, R> {
    /// The close path without waiting: `None` unless this is a close whose key's org is cached
    /// (then [`Gateway::handle`] answers it, asking Kustomer).
    pub fn step(&self, r: &Incoming<'_>) -> Option<Step> {
        if super::route(r.method, r.path) != Route::Close
            || r.body.len() > crate::error::MAX_INPUT_BYTES
        {
            return None;
        }
        let checked = match self.check_close(r) {
            Ok(checked) => checked,
            Err(reply) => return Some(Step::Reply(reply)),
        };
        let settings = &checked.settings;
        let key = settings.kustomer_api_key.expose();
        let token = self.cached_org(&settings.kustomer_api_url, key, r.now_ms)?;
        Some(
            match command_for(checked, &token, self.config.pin_jurisdiction) {
                Ok((place, command)) => Step::Forward {
                    place,
                    command: Box::new(command),
                },
                Err(reply) => Step::Reply(reply),
            },
        )
    }

    pub(super) async fn conversation_closed(&self, r: &Incoming<'_>) -> Reply {
        let checked = match self.check_close(r) {
            Ok(checked) => checked,
            Err(reply) => return reply,
        };
        let settings = &checked.settings;
        let key = settings.kustomer_api_key.expose();
        let token = match self.org_of(&settings.kustomer_api_url, key, r.now_ms).await {
            Ok(token) => token,
            Err(reply) => return reply,
        };
        match command_for(checked, &token, self.config.pin_jurisdiction) {
            Ok((place, command)) => self.forward_to(&place, &command).await,
            Err(reply) => reply,
        }
    }

    /// The app secret, the settings (validated once, here), the event and the core's plan.
    fn check_close(&self, r: &Incoming<'_>) -> Result<Checked, Reply> {
        let app_secret = app_secret(r, &self.last_secret)?;
        // Only what storing the close reads is built: the rest of the conversation is skipped.
        let event = kustomer::close_event_from_json(r.body).map_err(Reply::from)?;
        let (raw, settings) = self.settings_shared(r)?;
        let event =
            kustomer::parse_close_event(&event).map_err(|e| Reply::from(e.within("event")))?;
        let now = timestamp::from_millis(r.now_ms as f64);
        let (conversation_id, org, closed_at, send_at) =
            match decision::plan_event(&settings, &event, now) {
                Plan::Ignore { reason, message } if reason.is_refusal() => {
                    let error = json!({"code": reason, "message": message});
                    return Err(Reply::json(400, json!({ "error": error })));
                }
                Plan::Ignore { reason, message } => {
                    let ignored =
                        json!({"status": "ignored", "reason": reason, "message": message});
                    return Err(Reply::json(200, ignored));
                }
                Plan::Schedule {
                    conversation_id,
                    org,
                    closed_at,
                    send_at,
                } => (conversation_id, org, closed_at, send_at),
            };
        let Some(claimed_org) = org else {
            return Err(Reply::error(
                ErrorCode::MissingOrg,
                "The event does not name its org (`org`).",
            ));
        };
        Ok(Checked {
            app_secret,
            raw,
            close: Schedule {
                org: String::new(), // Kustomer's word, once asked: see `command_for`
                conversation_id,
                closed_at_ms: timestamp::to_millis(closed_at),
                send_at_ms: timestamp::to_millis(send_at),
                customer_id: event.conversation.customer_id.clone(),
                event_id: event.id,
            },
            settings,
            claimed_org,
        })
    }
}

/// The scheduler's command, once Kustomer has said whose key it is: stored under that org,
/// never the one the event claims.
fn command_for(
    checked: Checked,
    token: &TokenInfo,
    pin_jurisdiction: bool,
) -> Result<(Place, Command), Reply> {
    // Without tag access every survey would fail at send time: refuse now, where the admin
    // sees it. Checked only when Kustomer reports the key's roles.
    if !token.roles.is_empty() {
        settings::check_kustomer_roles(&token.roles).map_err(field_error)?;
    }
    if token.org != checked.claimed_org {
        return Err(Reply::error(
            ErrorCode::OrgMismatch,
            "The Kustomer API key belongs to another org than the event.",
        ));
    }
    let org = token.org.clone();
    let settings = &checked.settings;
    let place = residency::place(&org, &settings.kustomer_api_url, pin_jurisdiction);
    let caller = super::caller_of(
        checked.app_secret,
        &org,
        &settings.kustomer_api_url,
        settings.kustomer_api_key.expose(),
    );
    let command = Command::Schedule {
        close: Schedule {
            org: org.clone(),
            ..checked.close
        },
        caller,
        settings: checked.raw,
        resurvey_after_days: checked.settings.resurvey_after_days,
    };
    Ok((place, command))
}
