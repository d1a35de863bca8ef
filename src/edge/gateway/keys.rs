//! The admin's key checks: "Check connection" (does each service accept its key?) and the
//! preview (the request a conversation would get), both rate-limited per client address and
//! per key, so the edge is no free oracle for guessing keys.

use super::{Gateway, Incoming, Router};
use crate::decision::{self, AsIfClosed, Decision};
use crate::edge::codes::{ErrorAnswer, ErrorCode, KeyCheckCode};
use crate::edge::interpret::{Failure, FetchError};
use crate::edge::kustomer_api;
use crate::edge::residency;
use crate::edge::scheduler::Command;
use crate::edge::{seal, Reply, SendError, Transport};
use crate::json::{self, At};
use crate::kustomer;
use crate::redact::scrub;
use crate::response::{classify_response, network_error, Verdict};
use crate::settings::{self, Secret, Settings};
use crate::stella;
use crate::timestamp;
use crate::{InputError, InputErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

impl<T: Transport, R: Router> Gateway<T, R> {
    /// Counts a key check against the client's address (where the platform tells it) and the
    /// keys it names; the reply to give when any of them is over its limit.
    ///
    /// Order matters, so that no one mints buckets (Durable Objects, locally) at will: the
    /// address first; then the Kustomer key's and the Stella key's buckets, only once Kustomer
    /// has accepted the Kustomer key (cached per key), stopping at the first refusal. A caller
    /// without a key reaches only its address's bucket, and a burst of guessed Stella keys stops
    /// at the Kustomer key's bucket.
    pub(super) async fn rate_limited(
        &self,
        r: &Incoming<'_>,
        settings: &Settings,
    ) -> Option<Reply> {
        // Cloudflare sets cf-connecting-ip itself; elsewhere (locally) there is no address.
        let address = (r.header)(super::CLIENT_ADDRESS_HEADER)
            .map(|ip| ip.trim().to_owned())
            .filter(|ip| !ip.is_empty())
            .map(|ip| format!("addr:{ip}"));
        if let Some(reply) = self.count(address.as_slice(), r.now_ms).await {
            return Some(reply);
        }
        let (url, kustomer_key) = (&settings.kustomer_api_url, &settings.kustomer_api_key);
        if self
            .org_of(url, kustomer_key.expose(), r.now_ms)
            .await
            .is_err()
        {
            return None; // the check itself says the key was not accepted; Stella is not asked
        }
        let key = |k: &Secret| format!("key:{}", &seal::digest(k.expose())[..32]);
        let keys = [key(kustomer_key), key(&settings.stella_api_key)];
        self.count(&keys, r.now_ms).await
    }

    /// Counts one use of each key-check bucket in turn; the reply for the first that is over
    /// its limit.
    async fn count(&self, buckets: &[String], now_ms: i64) -> Option<Reply> {
        let per_minute = self.config.key_checks_per_minute;
        let buckets: Vec<(String, u32)> = buckets.iter().map(|b| (b.clone(), per_minute)).collect();
        self.count_each(&buckets, "key checks", now_ms).await
    }

    /// Counts one use of each bucket (name, uses allowed a minute) in turn; the reply for the
    /// first that is over its limit (`what`: the calls counted, in the message).
    pub(super) async fn count_each(
        &self,
        buckets: &[(String, u32)],
        what: &str,
        now_ms: i64,
    ) -> Option<Reply> {
        let refuse = |wait: u32| {
            let mut reply = Reply::error(
                ErrorCode::RateLimited,
                format!("Too many {what}: try again in {wait} seconds."),
            );
            reply.retry_after = Some(wait.max(1));
            reply
        };
        for (bucket, per_minute) in buckets {
            // A bucket the limiter refused stays refused until the wait it gave is over.
            let until = self.refused.borrow().get(bucket).copied();
            if let Some(until) = until.filter(|u| *u > now_ms) {
                return Some(refuse(((until - now_ms + 999) / 1000) as u32));
            }
            match self.router.limit(bucket, *per_minute).await {
                Ok(None) => {}
                Ok(Some(wait)) => {
                    let mut refused = self.refused.borrow_mut();
                    if refused.len() > 10_000 {
                        // A bound: only live refusals matter, and forgetting one costs a call.
                        refused.retain(|_, u| *u > now_ms);
                        if refused.len() > 10_000 {
                            refused.clear();
                        }
                    }
                    refused.insert(bucket.clone(), now_ms + i64::from(wait.max(1)) * 1000);
                    return Some(refuse(wait));
                }
                Err(e) => {
                    return Some(Reply::error(
                        ErrorCode::RateLimiterUnavailable,
                        format!("The rate limiter could not be reached: {e}"),
                    ))
                }
            }
        }
        None
    }

    /// The request that would be sent for `{conversationId}` (now, or once it is closed), key
    /// masked, or the reason none would be.
    pub(super) async fn preview(&self, r: &Incoming<'_>) -> Reply {
        let body = match json::from_json(r.body) {
            Ok(v) => v,
            Err(e) => return Reply::from(e),
        };
        let settings = match typed_settings(&body).and_then(|typed| self.settings_typed(r, typed)) {
            Ok((_, settings)) => settings,
            Err(reply) => return reply,
        };
        let id = match At::named(&body, "body").get("conversationId").string() {
            Ok(id) => id,
            Err(e) => return Reply::from(e),
        };
        if let Err(e) = kustomer::check_id(&id, "conversationId") {
            return Reply::from(e);
        }
        if let Some(reply) = self.rate_limited(r, &settings).await {
            return reply;
        }
        let inputs = match kustomer_api::fetch_inputs(
            &self.transport,
            None,
            &settings,
            id.trim(),
            r.now_ms,
            0,
        )
        .await
        {
            Ok(inputs) => inputs,
            Err(failure) => return preview_failure(&failure),
        };
        // An open conversation is shown as it would be sent once closed, as the agent's card
        // does; `closed` tells the page which it is. The key's org was resolved (and cached)
        // by the rate limit above: the request shows it as the edge would send it.
        let url = &settings.kustomer_api_url;
        let org = self.cached_org(url, settings.kustomer_api_key.expose(), r.now_ms);
        let input = inputs.survey_input(org.as_ref().map(|t| t.org.as_str()));
        let AsIfClosed { closed, decision } = decision::decide_as_if_closed(&settings, input);
        match decision {
            Decision::Send(body) => Reply::json(
                200,
                json!({"ok": true, "closed": closed, "request": stella::survey_request(&settings, &body)}),
            ),
            Decision::Skip(skip) => {
                Reply::json(200, json!({"ok": false, "closed": closed, "skip": skip}))
            }
        }
    }
}

/// The preview's answer when a read failed: Kustomer's error (502) as the read met it, even a
/// passing one (the key's org was checked already), or the conversation it does not have.
fn preview_failure(failure: &Failure) -> Reply {
    let code = match failure {
        Failure::Fatal {
            code: FetchError::NotFound,
            ..
        } => ErrorCode::ConversationNotFound,
        Failure::Retry { .. } | Failure::Paced => ErrorCode::KustomerError,
        other => ErrorCode::from(other),
    };
    let message = match failure {
        _ if code == ErrorCode::KustomerKeyRejected => {
            format!("Kustomer did not accept the Kustomer API key: {failure}")
        }
        Failure::Paced => "Kustomer's API budget is spent.".into(),
        other => other.to_string(),
    };
    Reply::error(code, message)
}

/// The settings an admin has typed and not saved, sent with a key check or a preview as
/// `{"settings": {"<key>": "<value>"}}`: they replace the saved ones for that call only (the
/// saved ones come as headers, which Kustomer fills in on its side). Only the settings table's
/// keys, as text (numbers and flags as they print); never the app secret. Nothing is stored.
fn typed_settings(body: &Value) -> Result<Option<&Map<String, Value>>, Reply> {
    let refuse = Reply::from;
    if body.is_null() {
        return Ok(None);
    }
    let at = At::named(body, "body");
    at.object().map_err(refuse)?;
    let Some(typed) = at.get("settings").opt_object().map_err(refuse)? else {
        return Ok(None);
    };
    for (key, value) in typed {
        let known = settings::FIELDS.iter().any(|f| f.key == key && !f.hidden);
        let path = format!("body.settings.{key}");
        if !known {
            let message = "Not a setting of the app (the app secret is never typed).";
            return Err(refuse(InputError::new(
                InputErrorCode::InvalidShape,
                path,
                message,
            )));
        }
        if !value.is_string() {
            let message = "A setting is sent as text.";
            return Err(refuse(InputError::new(
                InputErrorCode::InvalidShape,
                path,
                message,
            )));
        }
    }
    Ok(Some(typed))
}

/// One service's verdict on its key, for "Check connection".
#[derive(Debug, Serialize)]
struct KeyCheck {
    ok: bool,
    code: KeyCheckCode,
    message: String,
}

impl KeyCheck {
    fn new(code: KeyCheckCode, message: impl Into<String>) -> Self {
        Self {
            ok: code == KeyCheckCode::Ok,
            code,
            message: message.into(),
        }
    }
}

impl<T: Transport, R: Router> Gateway<T, R> {
    /// "Check connection": whether Kustomer accepts the Kustomer key and lets it read tags, and
    /// whether Stella accepts the Stella key; nothing is sent. With an API secret, also the
    /// org's agents without an active profile (`roster`), and the secret itself (a field error
    /// on it when Agent Connect refuses it).
    pub(super) async fn check_connection(&self, r: &Incoming<'_>) -> Reply {
        let body = match r.body.trim() {
            "" => Value::Null,
            text => match json::from_json(text) {
                Ok(v) => v,
                Err(e) => return Reply::from(e),
            },
        };
        let (stored, settings) =
            match typed_settings(&body).and_then(|typed| self.settings_typed(r, typed)) {
                Ok(both) => both,
                Err(reply) => return reply,
            };
        if let Some(reply) = self.rate_limited(r, &settings).await {
            return reply;
        }
        // Kustomer first: nothing reaches Stella until Kustomer has accepted the org's key, so
        // the edge is no free oracle for guessing Stella keys.
        let kustomer = self.check_kustomer(&settings, r.now_ms).await;
        let stella = if kustomer.ok || kustomer.code == KeyCheckCode::MissingPermission {
            self.check_stella(&settings, r.now_ms).await
        } else {
            KeyCheck::new(
                KeyCheckCode::NotChecked,
                "Checked once Kustomer accepts the Kustomer API key.",
            )
        };
        let app = if kustomer.ok {
            self.check_link(r, &settings).await
        } else {
            json!({"ok": false, "code": KeyCheckCode::NotChecked, "message": "Checked once Kustomer accepts the Kustomer API key."})
        };
        let ok = kustomer.ok && stella.ok && app["ok"] == true;
        // Where the org's surveys are kept: said whatever the keys, since it follows the URL.
        let residency = residency::report(&settings.kustomer_api_url, self.config.pin_jurisdiction);
        let mut answer = json!({ "ok": ok, "kustomer": kustomer, "stella": stella, "app": app, "residency": residency });
        if ok && settings.stella_api_secret.is_some() {
            let (roster, field) = self.check_roster(stored, &settings, r.now_ms).await;
            answer["roster"] = roster;
            if let Some(field) = field {
                answer["ok"] = json!(false);
                answer["fields"] = json!([field]);
            }
        }
        Reply::json(200, answer)
    }

    /// The app's link, end to end: the app secret Kustomer filled into this call against the
    /// fingerprint saved in Kustomer's settings, asked now by the org's scheduler (which then
    /// trusts it at once, so a re-link takes effect here). `{ok, linked, code?, message, fix?,
    /// held, expired, refused}`.
    async fn check_link(&self, r: &Incoming<'_>, settings: &Settings) -> Value {
        let fingerprint = match super::app_secret(r, &self.last_secret) {
            Ok(fingerprint) => fingerprint,
            Err(_) => {
                let code = crate::edge::trust::TrustCode::NotLinked;
                return json!({"ok": false, "linked": false, "code": code, "message": "No app secret came with this call: the settings page makes one when it is saved.", "fix": code.fix()});
            }
        };
        let url = &settings.kustomer_api_url;
        let key = settings.kustomer_api_key.expose();
        let Some(token) = self.cached_org(url, key, r.now_ms) else {
            return json!({"ok": false, "code": KeyCheckCode::NotChecked, "message": "Checked once Kustomer accepts the Kustomer API key."});
        };
        let caller = super::caller_of(fingerprint, &token.org, url, key);
        let reply = self
            .forward_for(caller, |caller| Command::Link { caller })
            .await;
        if reply.status == 200 {
            reply.body
        } else {
            let answer = ErrorAnswer::<ErrorCode>::deserialize(&reply.body);
            let message = answer.map_or_else(|_| "unknown".into(), |a| a.error.message);
            json!({"ok": false, "code": KeyCheckCode::KustomerUnavailable, "message": format!("The app's link could not be checked: {message}")})
        }
    }

    async fn check_kustomer(&self, settings: &Settings, now_ms: i64) -> KeyCheck {
        let key = settings.kustomer_api_key.expose();
        // Uncached: the admin asks about the key as it is now.
        match kustomer_api::token_info(&self.transport, &settings.kustomer_api_url, key, now_ms)
            .await
        {
            Ok(token) => match settings::check_kustomer_roles(&token.roles) {
                Err(e) if !token.roles.is_empty() => {
                    KeyCheck::new(KeyCheckCode::MissingPermission, e.message)
                }
                _ => KeyCheck::new(
                    KeyCheckCode::Ok,
                    "Kustomer accepted the key, and it can read tags.",
                ),
            },
            Err(failure) => {
                let code = KeyCheckCode::from(&failure);
                let message = match &failure {
                    _ if code == KeyCheckCode::KustomerKeyRejected => "Kustomer did not accept the Kustomer API key: check it, and the Kustomer API URL.".into(),
                    Failure::Retry { message, .. } => {
                        format!("Kustomer could not be reached: {message}")
                    }
                    other => kustomer_api::words(other),
                };
                KeyCheck::new(code, message)
            }
        }
    }

    async fn check_stella(&self, settings: &Settings, now_ms: i64) -> KeyCheck {
        let keys = settings.stella_secrets();
        let answer = self.transport.send(stella::key_probe(settings)).await;
        // The probe's answer is judged here, not by `interpret` (a 400 is the good answer); its
        // words are masked as they enter, the same way.
        let verdict = match answer {
            Ok(a) => classify_response(
                &crate::http::Response {
                    body: scrub(&a.body, &keys),
                    ..a
                },
                timestamp::from_millis(now_ms as f64),
            ),
            Err(SendError::Network(e) | SendError::Refused(e)) => network_error(&scrub(&e, &keys)),
            Err(SendError::Paced | SendError::OverBudget) => network_error("not sent"),
        };
        key_probe_verdict(verdict)
    }
}

/// What Stella's answer to the key probe says about the key: a 400 (the empty body refused)
/// means the key passed; a 401/403 means it did not.
fn key_probe_verdict(verdict: Verdict) -> KeyCheck {
    match verdict {
        Verdict::Sent { .. } | Verdict::Rejected { status: 400, .. } => KeyCheck::new(
            KeyCheckCode::Ok,
            "Agent Connect accepted the key (no survey was sent).",
        ),
        Verdict::Rejected { status: 401 | 403, .. } => KeyCheck::new(
            KeyCheckCode::StellaKeyRejected,
            "Agent Connect did not accept the Stella Connect API key: copy it again from Agent Connect's settings.",
        ),
        Verdict::Rejected { status, message } => KeyCheck::new(
            KeyCheckCode::StellaError,
            format!("Agent Connect answered {status}: {message}"),
        ),
        Verdict::Retry { message, .. } => KeyCheck::new(
            KeyCheckCode::StellaUnavailable,
            format!("Agent Connect could not be reached: {message}"),
        ),
    }
}
