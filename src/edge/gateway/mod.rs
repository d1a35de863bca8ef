//! The edge's HTTP API, stateless: validates, verifies which org a key belongs to, and hands
//! each org's work to that org's scheduler through a [`Router`].
//!
//! Who may do what (docs/operations.md, the trust model):
//! - The Kustomer key in the headers names the org: Kustomer says which org it belongs to, and
//!   a close is stored under that org, never under the org the body claims, so one org can never
//!   schedule into, list or resend another org's surveys.
//! - Scheduling, the delivery log and resends also need the org's app secret
//!   (`x-app-secret`), which only the app's own workflow action and commands carry (Kustomer
//!   keeps it as a secret setting that no API returns, and fills it in on its side). Any other
//!   holder of an org key is refused. Settings are stored only from closes; a resend's are used
//!   only when they are the ones the last close sent, because any signed-in user of the org
//!   may run the app's commands, perhaps with headers of their own.
//! - Key checks (`settings/check`, `preview`) need a Kustomer key that Kustomer accepts before
//!   anything reaches Stella, and are rate-limited per key and per client address.
//!
//! One file per job: `close.rs` (a conversation closed), `keys.rs` (check connection, preview,
//! and their rate limits), `log.rs` (the delivery log, resends, the app secret), `roster.rs`
//! (agents' Agent Connect profiles), `forget.rs` (forgetting a customer, the audit list).

mod close;
mod forget;
mod keys;
mod log;
mod roster;

pub use close::Step;

use super::codes::ErrorCode;
use super::deliveries::MAX_RESEND_BODY_BYTES;
use super::job::StoredSettings;
use super::kustomer_api::{self, TokenInfo};
use super::residency::{self, Place};
use super::scheduler::{Caller, Command};
use super::{seal, trust};
use super::{Config, Reply, Transport};
use crate::error::MAX_INPUT_BYTES;
use crate::settings::{self, Settings, ValidationOptions, APP_SECRET, DEFAULT_KUSTOMER_API_URL};
use crate::InputError;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Reaches the edge's Durable Objects: an org's scheduler, and the rate limiter.
pub trait Router {
    /// Forwards to the org's scheduler at its [`Place`] and returns the reply; `Err` when it
    /// could not be reached.
    async fn forward(&self, place: &Place, command: &Command) -> Result<Reply, String>;
    /// Counts one use of `bucket`, allowed `per_minute` times a minute. `Some(seconds)` when
    /// over the limit: how long until the bucket allows again.
    async fn limit(&self, bucket: &str, per_minute: u32) -> Result<Option<u32>, String>;
}

/// Every request header the gateway reads: the settings' (in [`settings::FIELDS`] order),
/// then the few others. The worker entry reads these and no others.
pub struct HeaderNames(std::sync::OnceLock<Vec<String>>);

/// The client's address, which Cloudflare sets itself (absent locally).
pub const CLIENT_ADDRESS_HEADER: &str = "cf-connecting-ip";

/// The gateway's [`HeaderNames`], made once per isolate.
pub static HEADERS: HeaderNames = HeaderNames(std::sync::OnceLock::new());

impl HeaderNames {
    /// The names, lower case.
    pub fn names(&self) -> &[String] {
        self.0.get_or_init(|| {
            let settings = settings::FIELDS
                .iter()
                .map(|f| settings::setting_header(f.key));
            let others = [CLIENT_ADDRESS_HEADER].map(str::to_owned);
            settings.chain(others).collect()
        })
    }
}

/// The edge's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Close,
    Preview,
    Check,
    Deliveries,
    Resend(&'a str),
    ResendMany,
    Roster,
    Forget,
    Audit,
    Health,
    /// A route that exists, with another method.
    WrongMethod,
    NotFound,
}

fn route<'a>(method: &str, path: &'a str) -> Route<'a> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["v1", "kustomer", "conversation-closed"]) => Route::Close,
        ("POST", ["v1", "preview"]) => Route::Preview,
        ("POST", ["v1", "settings", "check"]) => Route::Check,
        ("GET", ["v1", "deliveries"]) => Route::Deliveries,
        ("POST", ["v1", "deliveries", "resend"]) => Route::ResendMany,
        ("POST", ["v1", "deliveries", id, "resend"]) => Route::Resend(id),
        ("POST", ["v1", "roster"]) => Route::Roster,
        ("POST", ["v1", "customers", "forget"]) => Route::Forget,
        ("GET", ["v1", "audit"]) => Route::Audit,
        ("GET", ["healthz"]) => Route::Health,
        (
            _,
            ["v1", "kustomer", "conversation-closed"]
            | ["v1", "preview"]
            | ["v1", "settings", "check"]
            | ["v1", "roster"]
            | ["v1", "customers", "forget"]
            | ["v1", "audit"]
            | ["v1", "deliveries", ..],
        ) => Route::WrongMethod,
        _ => Route::NotFound,
    }
}

/// The most a key check's body (the settings typed and not saved) may weigh.
const MAX_TYPED_SETTINGS_BYTES: usize = 64 * 1024;

/// The body a request may carry: bodies are read only where a route takes one, and never past
/// this many bytes (the worker entry stops reading there and answers 413).
pub fn body_limit(method: &str, path: &str) -> usize {
    match route(method, path) {
        Route::Close | Route::Preview => MAX_INPUT_BYTES,
        Route::Check => MAX_TYPED_SETTINGS_BYTES,
        Route::ResendMany => MAX_RESEND_BODY_BYTES,
        Route::Roster => roster::MAX_ROSTER_BODY_BYTES,
        Route::Forget => forget::MAX_FORGET_BODY_BYTES,
        _ => 0,
    }
}

/// The edge's HTTP front.
pub struct Gateway<T, R> {
    /// HTTP to Kustomer and Stella.
    pub transport: T,
    /// Reaches org schedulers.
    pub router: R,
    /// Configuration.
    pub config: Config,
    /// key → (API URL, org, expiry): Kustomer's answer about a key, kept in memory for
    /// `cache_ms`.
    orgs: RefCell<HashMap<String, (String, TokenInfo, i64)>>,
    /// The settings last validated, by their raw form as JSON text: an org's workflow sends
    /// the same ones with every close, so they are validated once per isolate, not per close.
    last_settings: RefCell<Option<(String, Rc<Settings>)>>,
    /// The app secret last presented and its digest: an org's closes all carry the same one.
    last_secret: RefCell<Option<(String, String)>>,
    /// Rate-limit buckets over their limit, and until when (ms): refused here without asking
    /// the limiter again, so a caller ignoring `Retry-After` costs the limiter nothing.
    refused: RefCell<HashMap<String, i64>>,
}

/// A request as the gateway reads it.
pub struct Incoming<'a> {
    /// Method.
    pub method: &'a str,
    /// Path, without the query.
    pub path: &'a str,
    /// The query string as sent, without `?` (empty when none).
    pub query: &'a str,
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
            last_settings: RefCell::new(None),
            last_secret: RefCell::new(None),
            refused: RefCell::new(HashMap::new()),
        }
    }

    fn options(&self) -> ValidationOptions {
        self.config.validation
    }

    /// Answers one request.
    pub async fn handle(&self, r: Incoming<'_>) -> Reply {
        if r.body.len() > MAX_INPUT_BYTES {
            return too_large(MAX_INPUT_BYTES);
        }
        match route(r.method, r.path) {
            Route::Close => self.conversation_closed(&r).await,
            Route::Preview => self.preview(&r).await,
            Route::Check => self.check_connection(&r).await,
            Route::Deliveries => self.deliveries(&r).await,
            Route::Resend(id) => self.resend(&r, id).await,
            Route::ResendMany => self.resend_many(&r).await,
            Route::Roster => self.roster(&r).await,
            Route::Forget => self.forget(&r).await,
            Route::Audit => self.audit(&r).await,
            Route::Health => Reply::json(200, json!({"ok": true})),
            Route::WrongMethod => Reply::error(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here.", r.method),
            ),
            Route::NotFound => Reply::error(ErrorCode::NotFound, "No such endpoint."),
        }
    }

    /// `command` to the scheduler of `org`, whose Kustomer API URL (checked with Kustomer)
    /// places its object ([`residency::place`]).
    async fn forward(&self, org: &str, api_url: &str, command: &Command) -> Reply {
        let place = residency::place(org, api_url, self.config.pin_jurisdiction);
        self.forward_to(&place, command).await
    }

    /// The command `make` builds with the caller, to the caller's org's scheduler.
    async fn forward_for(&self, caller: Caller, make: impl FnOnce(Caller) -> Command) -> Reply {
        let pin = self.config.pin_jurisdiction;
        let place = residency::place(&caller.org, &caller.kustomer_api_url, pin);
        self.forward_to(&place, &make(caller)).await
    }

    async fn forward_to(&self, place: &Place, command: &Command) -> Reply {
        (self.router.forward(place, command).await).unwrap_or_else(|e| scheduler_unreachable(&e))
    }

    /// Kustomer's answer about a key, if it is cached and fresh.
    fn cached_org(&self, api_url: &str, key: &str, now_ms: i64) -> Option<TokenInfo> {
        let orgs = self.orgs.borrow();
        let (url, token, expires) = orgs.get(key)?;
        (url == api_url && *expires > now_ms).then(|| token.clone())
    }

    /// The org and roles of a Kustomer key, from Kustomer (cached), or the reply to give.
    async fn org_of(&self, api_url: &str, key: &str, now_ms: i64) -> Result<TokenInfo, Reply> {
        (self.token_of(api_url, key, now_ms).await)
            .map_err(|(code, message)| Reply::error(code, message))
    }

    /// [`Self::org_of`], the refusal as its code and words.
    async fn token_of(
        &self,
        api_url: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<TokenInfo, (ErrorCode, String)> {
        if let Some(token) = self.cached_org(api_url, key, now_ms) {
            return Ok(token);
        }
        match kustomer_api::token_info(&self.transport, api_url, key, now_ms).await {
            Ok(token) => {
                let mut orgs = self.orgs.borrow_mut();
                if orgs.len() > 10_000 {
                    orgs.clear(); // a bound, not an eviction policy: the cache only saves calls
                }
                let expires = now_ms + self.config.cache_ms;
                orgs.insert(key.to_owned(), (api_url.to_owned(), token.clone(), expires));
                Ok(token)
            }
            Err(failure) => {
                let code = ErrorCode::from(&failure);
                let message = match code {
                    ErrorCode::KustomerKeyRejected => {
                        "Kustomer did not accept the Kustomer API key.".into()
                    }
                    _ => kustomer_api::words(&failure),
                };
                Err((code, message))
            }
        }
    }

    /// The [`Caller`] presenting `fingerprint`, with the org Kustomer names for the
    /// `x-kustomer-api-key` (and optional `x-kustomer-api-url`).
    async fn caller(&self, r: &Incoming<'_>, fingerprint: String) -> Result<Caller, Reply> {
        let Some(key) = (r.header)("x-kustomer-api-key").filter(|k| !k.trim().is_empty()) else {
            return Err(Reply::error(
                ErrorCode::MissingKey,
                "Send the org's Kustomer API key in x-kustomer-api-key.",
            ));
        };
        let url =
            (r.header)("x-kustomer-api-url").unwrap_or_else(|| DEFAULT_KUSTOMER_API_URL.to_owned());
        let api_url = settings::kustomer_api_url(&url, self.options()).map_err(field_error)?;
        let token = self.org_of(&api_url, key.trim(), r.now_ms).await?;
        Ok(caller_of(fingerprint, &token.org, &api_url, key.trim()))
    }

    /// The call's settings (`x-…` headers), validated; the reply refusing them when not valid.
    /// Also their raw form as JSON text, as the scheduler keeps it.
    fn settings(&self, r: &Incoming<'_>) -> Result<(StoredSettings, Settings), Reply> {
        self.settings_typed(r, None)
    }

    /// [`Self::settings`] as the close path takes them, on every close: when they are the last
    /// validated ones (an org's workflow sends the same with every close), their text is made
    /// straight from the headers and the settings are shared, not copied.
    fn settings_shared(&self, r: &Incoming<'_>) -> Result<(StoredSettings, Rc<Settings>), Reply> {
        let text = raw_settings_text(r.header);
        if let Some((last, settings)) = self.last_settings.borrow().as_ref() {
            // In constant time: the text holds the keys, and anyone may send a guess.
            if seal::same_text(last, &text) {
                return Ok((StoredSettings(text), Rc::clone(settings)));
            }
        }
        let (raw, settings) = self.settings(r)?;
        Ok((raw, Rc::new(settings)))
    }

    /// [`Self::settings`], with `typed` (settings an admin has typed and not saved, from the
    /// body of a key check or preview) in place of the headers' values of the same names.
    fn settings_typed(
        &self,
        r: &Incoming<'_>,
        typed: Option<&serde_json::Map<String, Value>>,
    ) -> Result<(StoredSettings, Settings), Reply> {
        let mut raw = super::settings_from_headers(r.header);
        if let (Some(typed), Some(raw)) = (typed, raw.as_object_mut()) {
            raw.extend(typed.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let text = serde_json::to_string(&raw).unwrap_or_default(); // strings only: cannot fail
        if let Some((last, settings)) = self.last_settings.borrow().as_ref() {
            // In constant time: the text holds the keys, and anyone may send a guess.
            if seal::same_text(last, &text) {
                return Ok((StoredSettings(text), Settings::clone(settings)));
            }
        }
        match settings::validate_settings(&raw, self.options()) {
            Ok(settings) => {
                *self.last_settings.borrow_mut() = Some((text.clone(), Rc::new(settings.clone())));
                Ok((StoredSettings(text), settings))
            }
            Err(fields) => Err(Reply::json(
                400,
                json!({ "error": InputError::invalid_settings(fields) }),
            )),
        }
    }
}

/// The settings' headers as [`StoredSettings`] text, the same as `serde_json::to_string` of
/// [`super::settings_from_headers`] (an object of those present, its keys in order), without
/// building the map.
fn raw_settings_text(header: &dyn Fn(&str) -> Option<String>) -> String {
    let fields = settings::FIELDS.iter().zip(HEADERS.names());
    let mut present: Vec<(&str, String)> = fields
        .filter(|(f, _)| f.key != APP_SECRET)
        .filter_map(|(f, name)| header(name).map(|v| (f.key, v)))
        .collect();
    present.sort_unstable_by_key(|(key, _)| *key);
    let mut out = Vec::with_capacity(64 + present.iter().map(|(_, v)| v.len() + 24).sum::<usize>());
    out.push(b'{');
    for (i, (key, value)) in present.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Strings only: writing them into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default() // serde_json writes UTF-8
}

/// The answer to a body over `limit` bytes.
pub fn too_large(limit: usize) -> Reply {
    Reply::error(
        ErrorCode::TooLarge,
        format!("The body is over {limit} bytes."),
    )
}

/// The answer when the org's scheduler could not be reached (`error` says why).
pub fn scheduler_unreachable(error: &str) -> Reply {
    let message = format!("The org's scheduler could not be reached: {error}");
    Reply::error(ErrorCode::SchedulerUnavailable, message)
}

/// `400 invalid_settings` for one field, in that field's words.
fn field_error(e: crate::FieldError) -> Reply {
    Reply::from(InputError {
        code: crate::InputErrorCode::InvalidSettings,
        path: String::new(),
        message: e.message.clone(),
        fields: vec![e],
    })
}

/// The fingerprint of the call's app secret (`x-app-secret`, [`trust::fingerprint`]), or the
/// reply refusing a call without one.
fn app_secret(r: &Incoming<'_>, last: &RefCell<Option<(String, String)>>) -> Result<String, Reply> {
    let Some(secret) = (r.header)(&settings::setting_header(APP_SECRET)) else {
        return Err(missing_app_secret());
    };
    let secret = secret.trim();
    if !valid_app_secret(secret) {
        return Err(missing_app_secret());
    }
    let mut last = last.borrow_mut();
    // The same secret as the last call's (compared in constant time): its fingerprint as then.
    Ok(match last.as_ref() {
        Some((known, fingerprint)) if seal::same_text(known, secret) => fingerprint.clone(),
        _ => {
            let fingerprint = trust::fingerprint(secret);
            *last = Some((secret.to_owned(), fingerprint.clone()));
            fingerprint
        }
    })
}

/// The [`Caller`] of a call that presented `fingerprint` with a Kustomer key of `org`.
fn caller_of(fingerprint: String, org: &str, api_url: &str, key: &str) -> Caller {
    Caller {
        fingerprint,
        org: org.to_owned(),
        kustomer_api_url: api_url.to_owned(),
        kustomer_api_key: key.to_owned(),
    }
}

fn missing_app_secret() -> Reply {
    Reply::error(
        ErrorCode::MissingAppSecret,
        "Only the app's own workflow and pages may do this: they send the org's app secret in x-app-secret. If they do not, open the app's settings page in Kustomer and press \"Re-link the app\".",
    )
}

/// An app secret worth the name: long enough not to be guessed, short enough to be a header.
fn valid_app_secret(secret: &str) -> bool {
    let s = secret.trim();
    (16..=256).contains(&s.len()) && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_text_is_the_maps() {
        let values = [
            ("x-stella-api-key", "stella \"key\" \\ é 😀"),
            ("x-kustomer-api-key", "k\u{7}ey"),
            ("x-brand", ""),
            ("x-channel-map", "voice=phone, chat=web"),
            ("x-app-secret", "left out"),
            ("x-kustomer-api-url", "https://api.kustomerapp.com"),
        ];
        for n in 0..=values.len() {
            let header = |name: &str| {
                values[..n]
                    .iter()
                    .find(|(h, _)| *h == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            let map = serde_json::to_string(&super::super::settings_from_headers(header)).unwrap();
            assert_eq!(raw_settings_text(&header), map);
        }
    }
}
