//! The edge's HTTP API, stateless: validates, verifies which org a key belongs to, and hands
//! each org's work to that org's scheduler through a [`Router`].
//!
//! Who may do what (the README's trust model):
//! - The Kustomer key in the headers names the org: Kustomer says which org it belongs to, and
//!   a close is stored under that org, never under the org the body claims, so one org can never
//!   schedule into, list or resend another org's surveys.
//! - Scheduling, the delivery log and resends also need the org's app secret
//!   (`x-app-secret`), which only the app's own workflow action and pages carry (Kustomer keeps
//!   it as a secret setting that no API returns). Any other holder of an org key is refused, and
//!   settings are stored only from such calls.
//! - Key checks (`settings/check`, `preview`) need a Kustomer key that Kustomer accepts before
//!   anything reaches Stella, and are rate-limited per key and per client address.

use super::kustomer_api::{self, Failure, TokenInfo};
use super::scheduler::Command;
use super::seal;
use super::{
    job::Schedule, job::StoredSettings, settings_from_headers, Config, Reply, SendError, Transport,
};
use crate::decision::{self, Decision, Plan, SurveyInput};
use crate::error::MAX_INPUT_BYTES;
use crate::kustomer::{self, At};
use crate::redact::scrub;
use crate::response::{classify_response, network_error};
use crate::settings::{
    self, Secret, Settings, ValidationOptions, APP_SECRET, DEFAULT_KUSTOMER_API_URL,
};
use crate::stella;
use crate::timestamp;
use serde::Serialize;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;

/// Reaches the edge's Durable Objects: an org's scheduler, and the rate limiter.
pub trait Router {
    /// Forwards and returns the scheduler's reply; `Err` when it could not be reached.
    async fn forward(&self, org: &str, command: &Command) -> Result<Reply, String>;
    /// Counts one use of `bucket`, allowed `per_minute` times a minute. `Some(seconds)` when
    /// over the limit: how long until the bucket allows again.
    async fn limit(&self, bucket: &str, per_minute: u32) -> Result<Option<u32>, String>;
}

/// The roles with which a Kustomer key may reset an org's app secret it does not know.
pub const ADMIN_ROLES: [&str; 2] = ["org.admin", "org.admin.apps"];

/// The body a request may carry: bodies are read only where a route takes one, and never past
/// this many bytes (the worker entry stops reading there and answers 413).
pub fn body_limit(method: &str, path: &str) -> usize {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["v1", "kustomer", "conversation-closed"] | ["v1", "preview"]) => MAX_INPUT_BYTES,
        _ => 0,
    }
}

/// The most delivery log entries returned.
pub const DELIVERY_LOG_LIMIT: usize = 200;

/// The edge's HTTP front.
pub struct Gateway<T, R> {
    /// HTTP to Kustomer and Stella.
    pub transport: T,
    /// Reaches org schedulers.
    pub router: R,
    /// Configuration.
    pub config: Config,
    /// key → (org, expiry): Kustomer's answer about a key, kept in memory for `cache_ms`.
    orgs: RefCell<HashMap<String, (TokenInfo, i64)>>,
}

/// A request as the gateway reads it.
pub struct Incoming<'a> {
    /// Method.
    pub method: &'a str,
    /// Path, without the query.
    pub path: &'a str,
    /// Header lookup (names in lower case).
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Body text.
    pub body: &'a str,
    /// Receipt time, ms.
    pub now_ms: i64,
}

impl<T: Transport, R: Router> Gateway<T, R> {
    /// A gateway with an empty key cache.
    pub fn new(transport: T, router: R, config: Config) -> Self {
        Self {
            transport,
            router,
            config,
            orgs: RefCell::new(HashMap::new()),
        }
    }

    fn options(&self) -> ValidationOptions {
        ValidationOptions {
            allow_loopback: self.config.allow_loopback,
        }
    }

    /// Answers one request.
    pub async fn handle(&self, r: Incoming<'_>) -> Reply {
        if r.body.len() > MAX_INPUT_BYTES {
            return Reply::error(
                413,
                "too_large",
                format!("The body is over {MAX_INPUT_BYTES} bytes."),
            );
        }
        let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        match (r.method, segments.as_slice()) {
            ("POST", ["v1", "kustomer", "conversation-closed"]) => {
                self.conversation_closed(&r).await
            }
            ("POST", ["v1", "preview"]) => self.preview(&r).await,
            ("POST", ["v1", "settings", "check"]) => self.check_connection(&r).await,
            ("GET", ["v1", "deliveries"]) => self.deliveries(&r).await,
            ("POST", ["v1", "deliveries", id, "resend"]) => self.resend(&r, id).await,
            ("POST", ["v1", "app-secret"]) => self.set_app_secret(&r).await,
            ("GET", ["healthz"]) => Reply::json(200, json!({"ok": true})),
            (
                _,
                ["v1", "kustomer", "conversation-closed"]
                | ["v1", "preview"]
                | ["v1", "settings", "check"]
                | ["v1", "app-secret"]
                | ["v1", "deliveries", ..],
            ) => Reply::error(
                405,
                "method_not_allowed",
                format!("{} is not allowed here.", r.method),
            ),
            _ => Reply::error(404, "not_found", "No such endpoint."),
        }
    }

    async fn conversation_closed(&self, r: &Incoming<'_>) -> Reply {
        let app_secret = match app_secret(r) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        let raw = settings_from_headers(r.header);
        let event = match kustomer::from_json(r.body) {
            Ok(v) => v,
            Err(e) => return Reply::json(400, json!({ "error": e })),
        };
        // Validated once, here; the typed settings go on to the decision and the scheduler.
        let settings = match settings::validate_settings(&raw, self.options()) {
            Ok(s) => s,
            Err(fields) => {
                let error = crate::InputError::invalid_settings(fields);
                return Reply::json(400, json!({ "error": error }));
            }
        };
        let event = match kustomer::parse_event(&event) {
            Ok(e) => e,
            Err(e) => return Reply::json(400, json!({ "error": e.within("event") })),
        };
        let now = timestamp::from_millis(r.now_ms as f64);
        let (conversation_id, org, closed_at, send_at) =
            match decision::plan_event(&settings, &event, now) {
                Plan::Ignore { reason, message } if reason.is_refusal() => {
                    return Reply::json(400, json!({"error": {"code": reason, "message": message}}))
                }
                Plan::Ignore { reason, message } => {
                    return Reply::json(
                        200,
                        json!({"status": "ignored", "reason": reason, "message": message}),
                    )
                }
                Plan::Schedule {
                    conversation_id,
                    org,
                    closed_at,
                    send_at,
                } => (conversation_id, org, closed_at, send_at),
            };
        let Some(claimed_org) = org else {
            return Reply::error(
                400,
                "missing_org",
                "The event does not name its org (`org`).",
            );
        };
        let token = match self
            .org_of(
                &settings.kustomer_api_url,
                settings.kustomer_api_key.expose(),
                r.now_ms,
            )
            .await
        {
            Ok(token) => token,
            Err(reply) => return reply,
        };
        // Without tag access every survey would fail at send time: refuse now, where the admin
        // sees it. Checked only when Kustomer reports the key's roles.
        if !token.roles.is_empty() {
            if let Err(e) = settings::check_kustomer_roles(&token.roles) {
                let message = e.message.clone();
                return Reply::json(
                    400,
                    json!({"error": {"code": "invalid_settings", "message": message, "fields": [e]}}),
                );
            }
        }
        let org = token.org;
        if org != claimed_org {
            return Reply::error(
                403,
                "org_mismatch",
                "The Kustomer API key belongs to another org than the event.",
            );
        }
        let command = Command::Schedule {
            close: Schedule {
                org: org.clone(),
                conversation_id,
                closed_at_ms: timestamp::to_millis(closed_at),
                send_at_ms: timestamp::to_millis(send_at),
                event_id: event.id,
            },
            app_secret,
            settings: StoredSettings(raw),
            resurvey_after_days: settings.resurvey_after_days,
        };
        self.forward(&org, &command).await
    }

    async fn forward(&self, org: &str, command: &Command) -> Reply {
        self.router.forward(org, command).await.unwrap_or_else(|e| {
            Reply::error(
                503,
                "scheduler_unavailable",
                format!("The org's scheduler could not be reached: {e}"),
            )
        })
    }

    /// The org and roles of a Kustomer key, from Kustomer (cached), or the reply to give.
    async fn org_of(&self, api_url: &str, key: &str, now_ms: i64) -> Result<TokenInfo, Reply> {
        let cache_key = format!("{api_url} {key}");
        if let Some((token, expires)) = self.orgs.borrow().get(&cache_key) {
            if *expires > now_ms {
                return Ok(token.clone());
            }
        }
        match kustomer_api::token_info(&self.transport, api_url, key, now_ms).await {
            Ok(token) => {
                let mut orgs = self.orgs.borrow_mut();
                if orgs.len() > 10_000 {
                    orgs.clear(); // a bound, not an eviction policy: the cache only saves calls
                }
                orgs.insert(cache_key, (token.clone(), now_ms + self.config.cache_ms));
                Ok(token)
            }
            Err(Failure::Retry { message, .. }) => {
                Err(Reply::error(503, "kustomer_unavailable", message))
            }
            Err(Failure::Paced) => Err(Reply::error(
                503,
                "kustomer_unavailable",
                "Kustomer's API budget is spent for now.",
            )),
            Err(Failure::Fatal {
                code: "rejected", ..
            }) => Err(Reply::error(
                401,
                "kustomer_key_rejected",
                "Kustomer did not accept the Kustomer API key.",
            )),
            Err(Failure::Fatal { message, .. }) => {
                Err(Reply::error(502, "kustomer_error", message))
            }
        }
    }

    /// The caller's org and roles, from the `x-kustomer-api-key` (and optional
    /// `x-kustomer-api-url`).
    async fn caller(&self, r: &Incoming<'_>) -> Result<TokenInfo, Reply> {
        let Some(key) = (r.header)("x-kustomer-api-key").filter(|k| !k.trim().is_empty()) else {
            return Err(Reply::error(
                401,
                "missing_key",
                "Send the org's Kustomer API key in x-kustomer-api-key.",
            ));
        };
        let url =
            (r.header)("x-kustomer-api-url").unwrap_or_else(|| DEFAULT_KUSTOMER_API_URL.to_owned());
        let api_url = settings::kustomer_api_url(&url, self.options())
            .map_err(|e| Reply::json(400, json!({"error": {"code": "invalid_settings", "message": e.message.clone(), "fields": [e]}})))?;
        self.org_of(&api_url, key.trim(), r.now_ms).await
    }

    async fn deliveries(&self, r: &Incoming<'_>) -> Reply {
        let app_secret = match app_secret(r) {
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
    async fn resend(&self, r: &Incoming<'_>, segment: &str) -> Reply {
        let app_secret = match app_secret(r) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        let conversation_id = match percent_encoding::percent_decode_str(segment).decode_utf8() {
            Ok(id) => id.into_owned(),
            Err(_) => {
                return Reply::error(400, "invalid_id", "The conversation id is not valid UTF-8.")
            }
        };
        if let Err(e) = kustomer::check_id(&conversation_id, "conversationId") {
            return Reply::json(400, json!({ "error": e }));
        }
        let raw = settings_from_headers(r.header);
        if let Err(fields) = settings::validate_settings(&raw, self.options()) {
            let error = crate::InputError::invalid_settings(fields);
            return Reply::json(400, json!({ "error": error }));
        }
        match self.caller(r).await {
            Ok(token) => {
                let command = Command::Resend {
                    conversation_id,
                    app_secret,
                    settings: StoredSettings(raw),
                };
                self.forward(&token.org, &command).await
            }
            Err(reply) => reply,
        }
    }

    /// Registers, rotates (`x-app-secret` is the current one) or resets (a Kustomer key with
    /// an org admin role) the org's app secret, given as `x-new-app-secret`.
    async fn set_app_secret(&self, r: &Incoming<'_>) -> Reply {
        let Some(new) = (r.header)("x-new-app-secret").filter(|s| valid_app_secret(s)) else {
            return Reply::error(
                400,
                "invalid_app_secret",
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

    /// Counts a key check against the client's address (where the platform tells it) and the
    /// keys it names; the reply to give when any of them is over its limit.
    ///
    /// Order matters, so that no one mints buckets (Durable Objects, locally) at will: the
    /// address first; then the Kustomer key's and the Stella key's buckets, only once Kustomer
    /// has accepted the Kustomer key (cached per key), stopping at the first refusal. A caller
    /// without a key reaches only its address's bucket, and a burst of guessed Stella keys stops
    /// at the Kustomer key's bucket.
    async fn rate_limited(&self, r: &Incoming<'_>, settings: &Settings) -> Option<Reply> {
        // Cloudflare sets cf-connecting-ip itself; elsewhere (locally) there is no address.
        let address = (r.header)("cf-connecting-ip")
            .map(|ip| ip.trim().to_owned())
            .filter(|ip| !ip.is_empty())
            .map(|ip| format!("addr:{ip}"));
        if let Some(reply) = self.count(address.as_slice()).await {
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
        self.count(&keys).await
    }

    /// Counts one use of each bucket in turn; the reply for the first that is over its limit.
    async fn count(&self, buckets: &[String]) -> Option<Reply> {
        for bucket in buckets {
            match self
                .router
                .limit(bucket, self.config.key_checks_per_minute)
                .await
            {
                Ok(None) => {}
                Ok(Some(wait)) => {
                    let mut reply = Reply::error(
                        429,
                        "rate_limited",
                        format!("Too many key checks: try again in {wait} seconds."),
                    );
                    reply.retry_after = Some(wait.max(1));
                    return Some(reply);
                }
                Err(e) => {
                    return Some(Reply::error(
                        503,
                        "rate_limiter_unavailable",
                        format!("The rate limiter could not be reached: {e}"),
                    ))
                }
            }
        }
        None
    }

    /// The request that would be sent for `{conversationId}` (now, or once it is closed), key
    /// masked, or the reason none would be.
    async fn preview(&self, r: &Incoming<'_>) -> Reply {
        let raw = settings_from_headers(r.header);
        let settings: Settings = match settings::validate_settings(&raw, self.options()) {
            Ok(s) => s,
            Err(fields) => {
                return Reply::json(
                    400,
                    json!({ "error": crate::InputError::invalid_settings(fields) }),
                )
            }
        };
        let body = match kustomer::from_json(r.body) {
            Ok(v) => v,
            Err(e) => return Reply::json(400, json!({ "error": e })),
        };
        let id = match At::named(&body, "body").get("conversationId").string() {
            Ok(id) => id,
            Err(e) => return Reply::json(400, json!({ "error": e })),
        };
        if let Err(e) = kustomer::check_id(&id, "conversationId") {
            return Reply::json(400, json!({ "error": e }));
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
            Err(Failure::Fatal {
                code: "not_found",
                message,
            }) => return Reply::error(404, "conversation_not_found", message),
            Err(Failure::Fatal {
                code: "rejected",
                message,
            }) => {
                return Reply::error(
                    401,
                    "kustomer_key_rejected",
                    format!("Kustomer did not accept the Kustomer API key: {}", message),
                )
            }
            Err(Failure::Fatal { message, .. }) | Err(Failure::Retry { message, .. }) => {
                return Reply::error(502, "kustomer_error", message)
            }
            Err(Failure::Paced) => {
                return Reply::error(502, "kustomer_error", "Kustomer's API budget is spent.")
            }
        };
        // An open conversation is shown as it would be sent once closed, as the agent's card
        // does; `closed` tells the page which it is.
        let closed = inputs.conversation.is_done();
        let mut conversation = inputs.conversation;
        conversation.status = Some("done".into());
        let input = SurveyInput {
            conversation: &conversation,
            customer: inputs.customer.as_ref(),
            user: inputs.user.as_ref(),
            tags: &inputs.tags,
        };
        match decision::decide(&settings, input) {
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

/// One service's verdict on its key, for "Check connection".
#[derive(Debug, Serialize)]
struct KeyCheck {
    ok: bool,
    code: &'static str,
    message: String,
}

impl KeyCheck {
    fn new(ok: bool, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            ok,
            code,
            message: message.into(),
        }
    }
}

impl<T: Transport, R: Router> Gateway<T, R> {
    /// "Check connection": whether Kustomer accepts the Kustomer key and lets it read tags, and
    /// whether Stella accepts the Stella key. Both are asked at once; nothing is sent.
    async fn check_connection(&self, r: &Incoming<'_>) -> Reply {
        let settings =
            match settings::validate_settings(&settings_from_headers(r.header), self.options()) {
                Ok(s) => s,
                Err(fields) => {
                    return Reply::json(
                        400,
                        json!({ "error": crate::InputError::invalid_settings(fields) }),
                    )
                }
            };
        if let Some(reply) = self.rate_limited(r, &settings).await {
            return reply;
        }
        // Kustomer first: nothing reaches Stella until Kustomer has accepted the org's key, so
        // the edge is no free oracle for guessing Stella keys.
        let kustomer = self.check_kustomer(&settings, r.now_ms).await;
        let stella = if kustomer.ok || kustomer.code == "missing_permission" {
            self.check_stella(&settings, r.now_ms).await
        } else {
            KeyCheck::new(
                false,
                "not_checked",
                "Checked once Kustomer accepts the Kustomer API key.",
            )
        };
        Reply::json(
            200,
            json!({ "ok": kustomer.ok && stella.ok, "kustomer": kustomer, "stella": stella }),
        )
    }

    async fn check_kustomer(&self, settings: &Settings, now_ms: i64) -> KeyCheck {
        let key = settings.kustomer_api_key.expose();
        // Uncached: the admin asks about the key as it is now.
        match kustomer_api::token_info(&self.transport, &settings.kustomer_api_url, key, now_ms)
            .await
        {
            Ok(token) => match settings::check_kustomer_roles(&token.roles) {
                Err(e) if !token.roles.is_empty() => {
                    KeyCheck::new(false, "missing_permission", e.message)
                }
                _ => KeyCheck::new(
                    true,
                    "ok",
                    "Kustomer accepted the key, and it can read tags.",
                ),
            },
            Err(Failure::Fatal {
                code: "rejected", ..
            }) => KeyCheck::new(
                false,
                "kustomer_key_rejected",
                "Kustomer did not accept the Kustomer API key: check it, and the Kustomer API URL.",
            ),
            Err(Failure::Retry { message, .. }) => KeyCheck::new(
                false,
                "kustomer_unavailable",
                format!("Kustomer could not be reached: {}", message),
            ),
            Err(Failure::Paced) => KeyCheck::new(
                false,
                "kustomer_unavailable",
                "Kustomer's API budget is spent for now.",
            ),
            Err(Failure::Fatal { message, .. }) => KeyCheck::new(false, "kustomer_error", message),
        }
    }

    async fn check_stella(&self, settings: &Settings, now_ms: i64) -> KeyCheck {
        let key = settings.stella_api_key.expose();
        let answer = self.transport.send(stella::key_probe(settings)).await;
        // The probe's answer is judged here, not by `interpret` (a 400 is the good answer); its
        // words are masked as they enter, the same way.
        let outcome = match answer {
            Ok(a) => classify_response(
                &super::Response {
                    body: scrub(&a.body, &[key]),
                    ..a
                },
                timestamp::from_millis(now_ms as f64),
            ),
            Err(SendError::Network(e) | SendError::Refused(e)) => network_error(&scrub(&e, &[key])),
            Err(SendError::Paced) => network_error("not sent"),
        };
        match stella::key_probe_verdict(&outcome) {
            Ok(()) => KeyCheck::new(
                true,
                "ok",
                "Agent Connect accepted the key (no survey was sent).",
            ),
            Err((code, message)) => KeyCheck::new(false, code, message),
        }
    }
}

/// The digest of the call's app secret (`x-app-secret`), or the reply refusing a call without
/// one.
fn app_secret(r: &Incoming<'_>) -> Result<String, Reply> {
    match (r.header)(&settings::setting_header(APP_SECRET)) {
        Some(secret) if valid_app_secret(&secret) => Ok(seal::digest(secret.trim())),
        _ => Err(Reply::error(
            401,
            "missing_app_secret",
            "Only the app's own workflow and pages may do this: they send the org's app secret in x-app-secret.",
        )),
    }
}

/// An app secret worth the name: long enough not to be guessed, short enough to be a header.
fn valid_app_secret(secret: &str) -> bool {
    let s = secret.trim();
    (16..=256).contains(&s.len()) && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Reads a header map given as JSON (`{name: value}`), for callers that hold headers as data.
pub fn header_lookup(headers: &Value) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| headers.get(name).and_then(Value::as_str).map(str::to_owned)
}
