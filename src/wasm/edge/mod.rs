//! The edge's bindings to workerd: the transport over the global `fetch` (`fetch.rs`), the store
//! over a Durable Object's SQL storage (`sql.rs`), and the two classes the worker entry
//! (`www/edge.js`) uses: [`JsGateway`] for HTTP and [`JsScheduler`] for one org's Durable
//! Object. Built only with the `edge` feature, so the pages' module does not carry them.

mod fetch;
mod sql;

pub use fetch::FetchTransport;
use sql::num;
pub use sql::{SqlStorage, SqlStore};

use crate::edge::codes::ErrorCode;
use crate::edge::gateway::{self, Incoming, Router, Step, HEADERS};
use crate::edge::residency::Place;
use crate::edge::scheduler::{self, AlarmChange, Clock, Command};
use crate::edge::seal::{self, Sealer};
use crate::edge::{Config, Reply};
use js_sys::{Function, Object, Promise, Reflect};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// The text of a thrown JavaScript value.
fn js_error(e: &JsValue) -> String {
    Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

fn set(target: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &key.into(), value); // setting a plain object's own key cannot fail
}

/// The keys of the objects every close hands to JavaScript (a reply, a step), as JavaScript
/// strings made once: a key crossing from Rust is otherwise decoded anew on every call.
#[derive(Clone, Copy)]
enum Key {
    Status,
    Body,
    RetryAfter,
    Org,
    Command,
}

thread_local! {
    static KEYS: [JsValue; 5] =
        ["status", "body", "retryAfter", "org", "command"].map(JsValue::from_str);
}

/// [`set`] with a [`Key`].
fn set_key(target: &Object, key: Key, value: &JsValue) {
    // Setting a plain object's own key cannot fail.
    KEYS.with(|keys| drop(Reflect::set(target, &keys[key as usize], value)));
}

/// `Date.now()` and `Math.random()`.
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
    fn random(&self) -> f64 {
        js_sys::Math::random()
    }
    fn nonce(&self) -> [u8; 12] {
        // `crypto.getRandomValues`: workerd's cryptographic source.
        let bytes = js_sys::Uint8Array::new_with_length(12);
        let global = js_sys::global();
        let filled = Reflect::get(&global, &"crypto".into())
            .and_then(|crypto| {
                let get: Function = Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
                get.call1(&crypto, &bytes)
            })
            .is_ok();
        let mut nonce = [0u8; 12];
        bytes.copy_to(&mut nonce);
        if !filled {
            // Not reached in workerd; never seal under a predictable nonce.
            wasm_bindgen::throw_str("crypto.getRandomValues is not available");
        }
        nonce
    }
}

/// The worker's bindings (`env`) as text: an unset binding and `null` (workerd's value for an
/// unset `fromEnvironment`) read as absent.
fn binding(env: &JsValue, name: &str) -> Option<String> {
    let v = Reflect::get(env, &name.into()).ok()?;
    v.as_string().or_else(|| v.as_f64().map(|n| n.to_string()))
}

/// The edge's configuration from the worker's bindings; an error names the binding.
fn config(env: &JsValue) -> Result<Config, JsValue> {
    Config::from_bindings(|name| binding(env, name)).map_err(|e| js_sys::Error::new(&e).into())
}

/// The settings keys: `SETTINGS_KEY` seals, `SETTINGS_KEY_PREVIOUS` (during a rotation) opens.
fn sealer(env: &JsValue) -> Result<Sealer, JsValue> {
    let key = |name| binding(env, name).filter(|k| !k.trim().is_empty());
    let Some(current) = key(seal::SETTINGS_KEY) else {
        let e = "SETTINGS_KEY is not set: the worker needs it to keep the org's settings sealed";
        return Err(js_sys::Error::new(e).into());
    };
    let previous = key(seal::SETTINGS_KEY_PREVIOUS);
    let keys: Vec<&str> = [Some(current.as_str()), previous.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    Sealer::from_base64(&keys).map_err(|e| js_sys::Error::new(&e).into())
}

/// Checks the worker's bindings at start: throws, naming the binding, when one is not valid, so
/// that a misconfigured deployment refuses to start instead of misbehaving.
#[wasm_bindgen(js_name = checkEdgeConfig)]
pub fn check_edge_config(
    #[wasm_bindgen(unchecked_param_type = "EdgeBindings")] env: JsValue,
) -> Result<(), JsValue> {
    config(&env)?;
    sealer(&env)?;
    Ok(())
}

/// How many bytes of body a request may carry: 0 where the route takes none.
#[wasm_bindgen(js_name = bodyLimit)]
pub fn body_limit(method: &str, path: &str) -> u32 {
    gateway::body_limit(method, path) as u32
}

/// A reply for the worker entry: `{status, body, retryAfter?}` with the body as JSON text, so
/// that it goes into the `Response` as it is.
fn reply_to_js(reply: &Reply) -> JsValue {
    let out = Object::new();
    set_key(&out, Key::Status, &reply.status.into());
    let body = serde_json::to_string(&reply.body).unwrap_or_default(); // a Value: cannot fail
    set_key(&out, Key::Body, &JsValue::from_str(&body));
    if let Some(seconds) = reply.retry_after {
        set_key(&out, Key::RetryAfter, &seconds.into());
    }
    out.into()
}

/// The scheduler's reply as [`reply_to_js`] made it.
fn reply_from_js(reply: &JsValue) -> Option<Reply> {
    let field = |name: &str| Reflect::get(reply, &name.into()).ok();
    let status = field("status")?.as_f64()? as u16;
    let body = serde_json::from_str(&field("body")?.as_string()?).ok()?;
    let retry_after = field("retryAfter")
        .and_then(|v| v.as_f64())
        .map(|s| s as u32);
    Some(Reply {
        status,
        body,
        retry_after,
    })
}

/// Forwards commands to org schedulers through a JS function `(org, jurisdiction, commandJson)
/// => Promise<replyJson>` (a Durable Object stub call in the worker entry; `jurisdiction` is
/// `"eu"` or undefined, [`crate::edge::residency`]), and counts rate-limited
/// uses through `(bucket, perMinute) => Promise<number>` (seconds to wait, 0 when allowed).
pub struct JsRouter {
    forward: Function,
    limit: Function,
}

impl Router for JsRouter {
    async fn forward(&self, place: &Place, command: &Command) -> Result<Reply, String> {
        let json = serde_json::to_string(command).map_err(|e| e.to_string())?;
        let jurisdiction = place
            .jurisdiction
            .map_or(JsValue::UNDEFINED, |j| j.as_str().into());
        let result = (self.forward)
            .call3(
                &JsValue::NULL,
                &place.org.as_str().into(),
                &jurisdiction,
                &json.into(),
            )
            .map_err(|e| js_error(&e))?;
        let reply = settle(result).await?;
        reply_from_js(&reply).ok_or_else(|| "the scheduler's reply cannot be read".to_owned())
    }

    async fn limit(&self, bucket: &str, per_minute: u32) -> Result<Option<u32>, String> {
        let wait = call(&self.limit, &bucket.into(), &per_minute.into()).await?;
        let wait = wait.as_f64().unwrap_or(0.0);
        Ok((wait > 0.0).then_some(wait.ceil() as u32))
    }
}

/// Calls a function of the worker entry with two arguments and waits for its result: a Durable
/// Object RPC call returns a thenable, not a Promise, so it is adopted first.
async fn call(f: &Function, a: &JsValue, b: &JsValue) -> Result<JsValue, String> {
    settle(f.call2(&JsValue::NULL, a, b).map_err(|e| js_error(&e))?).await
}

/// Waits for what a function of the worker entry returned (a value, a Promise or a thenable).
async fn settle(result: JsValue) -> Result<JsValue, String> {
    (JsFuture::from(Promise::resolve(&result)).await).map_err(|e| js_error(&e))
}

/// The edge's HTTP front, one per isolate (it keeps the key → org cache).
#[wasm_bindgen(js_name = Gateway)]
pub struct JsGateway {
    inner: Rc<gateway::Gateway<FetchTransport, JsRouter>>,
}

#[wasm_bindgen(js_class = Gateway)]
impl JsGateway {
    /// `new Gateway(env, forward, limit)`; `forward(org, jurisdiction, commandJson)` returns the org
    /// scheduler's reply as JSON text, `limit(bucket, perMinute)` the seconds to wait (0 when
    /// allowed).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "EdgeBindings")] env: JsValue,
        forward: Function,
        limit: Function,
    ) -> Result<JsGateway, JsValue> {
        let gateway =
            gateway::Gateway::new(FetchTransport, JsRouter { forward, limit }, config(&env)?);
        Ok(Self {
            inner: Rc::new(gateway),
        })
    }

    /// Answers one request: `{status, body, retryAfter?}` where `body` is the JSON text to
    /// send back. `path` is the URL's path and `query` its query string without `?`; `headers`
    /// the values of [`header_names`], a line each (one string crosses, not an object of them
    /// all). The body comes as its bytes, copied once into Wasm memory (no JavaScript string is
    /// built for it).
    #[wasm_bindgen(unchecked_return_type = "Promise<EdgeReply>")]
    pub fn handle(
        &self,
        method: String,
        path: String,
        query: String,
        headers: String,
        body: Vec<u8>,
    ) -> Promise {
        let inner = self.inner.clone();
        let body = text(body);
        future_to_promise(async move {
            let values = split_headers(&headers);
            let header = |name: &str| header(&values, name);
            let reply = inner
                .handle(Incoming {
                    method: &method,
                    path: &path,
                    query: &query,
                    header: &header,
                    body: &body,
                    now_ms: js_sys::Date::now() as i64,
                })
                .await;
            Ok(reply_to_js(&reply))
        })
    }

    /// The same request without waiting on anything, for the close path: `undefined` when it
    /// needs [`JsGateway::handle`]; else the reply to give now, or `{org, jurisdiction?, command}` (the command
    /// as JSON text) for the worker entry to hand to the org's Durable Object, whose reply is
    /// the answer.
    #[wasm_bindgen(
        unchecked_return_type = "EdgeReply | {org: string, jurisdiction?: string, command: string} | undefined"
    )]
    pub fn step(&self, method: &str, path: &str, headers: &str, body: Vec<u8>) -> JsValue {
        let body = text(body);
        let values = split_headers(headers);
        let header = |name: &str| header(&values, name);
        let incoming = Incoming {
            method,
            path,
            query: "", // the close reads no query
            header: &header,
            body: &body,
            now_ms: js_sys::Date::now() as i64,
        };
        match self.inner.step(&incoming) {
            None => JsValue::UNDEFINED,
            Some(Step::Reply(reply)) => reply_to_js(&reply),
            Some(Step::Forward { place, command }) => match serde_json::to_string(&command) {
                Ok(json) => {
                    let out = Object::new();
                    set_key(&out, Key::Org, &place.org.into());
                    if let Some(j) = place.jurisdiction {
                        set(&out, "jurisdiction", &j.as_str().into());
                    }
                    set_key(&out, Key::Command, &json.into());
                    out.into()
                }
                Err(_) => JsValue::UNDEFINED, // not reached: a command is plain data
            },
        }
    }

    /// The answer to a body over `limit` bytes (the worker entry stops reading there).
    #[wasm_bindgen(js_name = tooLarge, unchecked_return_type = "EdgeReply")]
    pub fn too_large(limit: u32) -> JsValue {
        reply_to_js(&gateway::too_large(limit as usize))
    }

    /// The answer when the org's Durable Object could not be reached (`error`: what was thrown).
    #[wasm_bindgen(js_name = schedulerUnreachable, unchecked_return_type = "EdgeReply")]
    pub fn scheduler_unreachable(error: JsValue) -> JsValue {
        reply_to_js(&gateway::scheduler_unreachable(&js_error(&error)))
    }
}

/// A request body's text: bytes that are not UTF-8 read as U+FFFD, as `TextDecoder` would.
fn text(body: Vec<u8>) -> String {
    String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The values of [`header_names`] as the worker entry passes them: one text, a line per name,
/// `\0` for an absent header (header values have neither); split once per request.
fn split_headers(values: &str) -> Vec<&str> {
    values.split('\n').collect()
}

/// A request header by name, from [`split_headers`]'s values.
fn header(values: &[&str], name: &str) -> Option<String> {
    let at = HEADERS.names().iter().position(|n| n == name)?;
    let value = *values.get(at)?;
    (value != "\0").then(|| value.to_owned())
}

/// The request headers the gateway reads, in the order it wants their values.
#[wasm_bindgen(js_name = headerNames)]
pub fn header_names() -> Vec<String> {
    HEADERS.names().to_vec()
}

/// One org's scheduler, living in that org's Durable Object.
#[wasm_bindgen(js_name = Scheduler)]
pub struct JsScheduler {
    inner: Rc<scheduler::Scheduler<SqlStore, FetchTransport, JsClock>>,
}

#[wasm_bindgen(js_class = Scheduler)]
impl JsScheduler {
    /// `new Scheduler(ctx.storage.sql, env)`: creates the tables if needed.
    #[wasm_bindgen(constructor)]
    pub fn new(
        sql: SqlStorage,
        #[wasm_bindgen(unchecked_param_type = "EdgeBindings")] env: JsValue,
    ) -> Result<JsScheduler, JsValue> {
        let store = SqlStore::new(sql)?;
        Ok(Self {
            inner: Rc::new(scheduler::Scheduler::new(
                store,
                FetchTransport,
                JsClock,
                config(&env)?,
                sealer(&env)?,
            )),
        })
    }

    /// Handles a command from the gateway (JSON text): its reply as the worker entry answers
    /// it, `{status, body, retryAfter?}` with the body as JSON text; a Promise of it for a
    /// command that waits on the network (the roster, a link check, a caller Kustomer must be
    /// asked about), so every other stays synchronous.
    #[wasm_bindgen(unchecked_return_type = "EdgeReply | Promise<EdgeReply>")]
    pub fn command(&self, command: &str) -> JsValue {
        let reply = match Command::from_json(command) {
            Ok(c) if self.inner.waits(&c) => {
                let inner = self.inner.clone();
                let reply = async move { Ok(reply_to_js(&inner.command_async(c).await)) };
                return future_to_promise(reply).into();
            }
            Ok(c) => self.inner.command(c),
            Err(e) => Reply::error(ErrorCode::InvalidCommand, e.to_string()),
        };
        reply_to_js(&reply)
    }

    /// Works through the jobs due now; resolves to how many were handled.
    #[wasm_bindgen(js_name = runDue, unchecked_return_type = "Promise<number>")]
    pub fn run_due(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner
                .run_due()
                .await
                .map(|n| JsValue::from(n as u32))
                .map_err(|e| JsValue::from(js_sys::Error::new(&e)))
        })
    }

    /// The outbound calls the last alarm run made (Cloudflare caps them per invocation).
    #[wasm_bindgen(js_name = runCalls)]
    pub fn run_calls(&self) -> u32 {
        self.inner.run_calls().0
    }

    /// What the alarm should become after the calls so far: `undefined` to keep it, `null` to
    /// delete it, or the time to set (ms since the epoch, never before `notBefore`).
    #[wasm_bindgen(js_name = alarmChange, unchecked_return_type = "number | null | undefined")]
    pub fn alarm_change(&self, not_before: f64) -> Result<JsValue, JsValue> {
        match self.inner.alarm_change(not_before as i64) {
            Ok(AlarmChange::Keep) => Ok(JsValue::UNDEFINED),
            Ok(AlarmChange::Delete) => Ok(JsValue::NULL),
            Ok(AlarmChange::Set(at)) => Ok(num(at)),
            Err(e) => Err(js_sys::Error::new(&e).into()),
        }
    }
}

#[wasm_bindgen(typescript_custom_section)]
const EDGE_TYPES: &str = super::EDGE_TYPES;
