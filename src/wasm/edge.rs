//! The edge's bindings to workerd: [`Transport`] over the global `fetch`, [`Store`] over a
//! Durable Object's SQL storage, and the two classes the worker entry (`www/edge.js`) uses:
//! [`Gateway`] for HTTP and [`Scheduler`] for one org's Durable Object. Built only with the
//! `edge` feature, so the pages' module does not carry them.

use crate::edge::gateway::{self, Incoming, Router, Step, HEADERS};
use crate::edge::job::Job;
use crate::edge::outcome::ErrorCode;
use crate::edge::scheduler::{self, AlarmChange, Clock, Command};
use crate::edge::seal::Sealer;
use crate::edge::{Config, OrgRecord, Reply, SendError, Store, Transport};
use crate::http::{self, READ_HEADERS};
use js_sys::{Array, Function, Object, Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// How long an outbound call may take before it counts as a timeout (retried).
const FETCH_TIMEOUT_MS: u32 = 10_000;

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

/// `fetch` through the global object (workerd and node have no `window`).
pub struct FetchTransport;

impl FetchTransport {
    /// A `Request` built first: what the runtime refuses to build (an invalid URL or header)
    /// is refused for good, apart from what fails on the way (retried). It carries `signal`,
    /// which [`Deadline`] aborts.
    fn build(request: &http::Request, signal: &JsValue) -> Result<JsValue, JsValue> {
        let global = js_sys::global();
        let init = Object::new();
        set(&init, "method", &request.method.into());
        let headers = Object::new();
        for (k, v) in request.header_values() {
            set(&headers, k, &JsValue::from_str(v));
        }
        set(&init, "headers", &headers);
        if let Some(body) = &request.body {
            set(&init, "body", &JsValue::from_str(body));
        }
        set(&init, "signal", signal);
        let class: Function = Reflect::get(&global, &"Request".into())?.dyn_into()?;
        let args = Array::of2(&JsValue::from_str(&request.url), &init);
        Reflect::construct(&class, &args)
    }

    async fn fetch(built: JsValue) -> Result<http::Response, JsValue> {
        let global = js_sys::global();
        let fetch: Function = Reflect::get(&global, &"fetch".into())?.dyn_into()?;
        let promise: Promise = fetch.call1(&global, &built)?.dyn_into()?;
        let response = JsFuture::from(promise).await?;
        let status = Reflect::get(&response, &"status".into())?
            .as_f64()
            .unwrap_or(0.0) as u16;
        let headers = Reflect::get(&response, &"headers".into())?;
        let get: Function = Reflect::get(&headers, &"get".into())?.dyn_into()?;
        let read = READ_HEADERS.iter().filter_map(|name| {
            let value = get.call1(&headers, &(*name).into()).ok()?.as_string()?;
            Some((*name, value))
        });
        let headers = read.collect();
        let text: Function = Reflect::get(&response, &"text".into())?.dyn_into()?;
        let body = JsFuture::from(text.call0(&response)?.dyn_into::<Promise>()?).await?;
        Ok(http::Response {
            status,
            headers,
            body: body.as_string().unwrap_or_default(),
        })
    }
}

impl Transport for FetchTransport {
    async fn send(&self, request: http::Request) -> Result<http::Response, SendError> {
        if request.url.len() > crate::edge::MAX_URL_BYTES {
            return Err(SendError::Refused(format!(
                "the URL is over {} bytes",
                crate::edge::MAX_URL_BYTES
            )));
        }
        // A deadline the runtime cannot set now is a passing fault: retried.
        let deadline = Deadline::start().map_err(|e| SendError::Network(js_error(&e)))?;
        let built = Self::build(&request, &deadline.signal)
            .map_err(|e| SendError::Refused(js_error(&e)))?;
        let answer = Self::fetch(built).await;
        drop(deadline);
        answer.map_err(|e| SendError::Network(js_error(&e)))
    }
}

/// An outbound call's deadline ([`FETCH_TIMEOUT_MS`], the answer's body included): an
/// `AbortController` aborted by a timer that is cleared as soon as the call is over. (An
/// `AbortSignal.timeout` stays active until it fires, and workerd allows 10,000 active timeouts
/// per event: an alarm sending thousands of surveys ran out of them.)
struct Deadline {
    signal: JsValue,
    timer: JsValue,
}

impl Deadline {
    fn start() -> Result<Self, JsValue> {
        let global = js_sys::global();
        let class: Function = Reflect::get(&global, &"AbortController".into())?.dyn_into()?;
        let controller = Reflect::construct(&class, &Array::new())?;
        let abort: Function = Reflect::get(&controller, &"abort".into())?.dyn_into()?;
        let set_timeout: Function = Reflect::get(&global, &"setTimeout".into())?.dyn_into()?;
        let reason = js_sys::Error::new(&format!("no answer within {} s", FETCH_TIMEOUT_MS / 1000));
        let abort = abort.bind1(&controller, &reason);
        let timer = set_timeout.call2(&global, &abort, &FETCH_TIMEOUT_MS.into())?;
        Ok(Self {
            signal: Reflect::get(&controller, &"signal".into())?,
            timer,
        })
    }
}

/// Cleared however the call ends: answered, refused, or its future dropped.
impl Drop for Deadline {
    fn drop(&mut self) {
        let global = js_sys::global();
        if let Ok(clear) = Reflect::get(&global, &"clearTimeout".into()) {
            if let Ok(clear) = clear.dyn_into::<Function>() {
                let _ = clear.call1(&global, &self.timer); // clearing a timer cannot fail
            }
        }
    }
}

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage.sql` of a Durable Object.
    pub type SqlStorage;
    #[wasm_bindgen(method, catch, variadic)]
    fn exec(this: &SqlStorage, query: &str, bindings: Box<[JsValue]>)
        -> Result<SqlCursor, JsValue>;
    type SqlCursor;
    #[wasm_bindgen(method, js_name = toArray)]
    fn to_array(this: &SqlCursor) -> Array;
    #[wasm_bindgen(method, getter, js_name = rowsWritten)]
    fn rows_written(this: &SqlCursor) -> f64;
}

/// The org's jobs in SQLite: indexed columns for the queries, the job itself as JSON. The org's
/// record is also kept in memory: the Durable Object is its only writer.
pub struct SqlStore {
    sql: SqlStorage,
    org: RefCell<Option<OrgRecord>>,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS jobs (conversation_id TEXT PRIMARY KEY, state TEXT NOT NULL, due_ms INTEGER, updated_ms INTEGER NOT NULL, job TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due_ms) WHERE due_ms IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated_ms)",
    "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
    // One row: the org's sealed settings and app secret digest (no key is ever stored readable).
    "CREATE TABLE IF NOT EXISTS org (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_final ON jobs (updated_ms) WHERE due_ms IS NULL",
];

impl SqlStore {
    fn new(sql: SqlStorage) -> Result<Self, JsValue> {
        for statement in SCHEMA {
            sql.exec(statement, Box::new([]))?;
        }
        Ok(Self {
            sql,
            org: RefCell::new(None),
        })
    }

    fn rows(&self, query: &str, bindings: Vec<JsValue>) -> Result<Vec<JsValue>, String> {
        let cursor = self
            .sql
            .exec(query, bindings.into_boxed_slice())
            .map_err(|e| js_error(&e))?;
        Ok(cursor.to_array().to_vec())
    }

    fn column(row: &JsValue, name: &str) -> JsValue {
        Reflect::get(row, &name.into()).unwrap_or(JsValue::NULL)
    }

    /// A job's columns, in the order the INSERTs name them.
    fn job_row(job: &Job) -> Result<Vec<JsValue>, String> {
        let text = serde_json::to_string(job).map_err(|e| e.to_string())?;
        Ok(vec![
            job.conversation_id.as_str().into(),
            job.state.as_str().into(),
            job.due_ms.map_or(JsValue::NULL, num),
            num(job.updated_ms),
            text.into(),
        ])
    }

    fn jobs(&self, query: &str, bindings: Vec<JsValue>) -> Result<Vec<Job>, String> {
        self.rows(query, bindings)?
            .iter()
            .map(|row| {
                let text = Self::column(row, "job").as_string().unwrap_or_default();
                serde_json::from_str(&text).map_err(|e| format!("a stored job cannot be read: {e}"))
            })
            .collect()
    }
}

fn num(n: i64) -> JsValue {
    JsValue::from_f64(n as f64) // milliseconds since 1970 are far below 2^53
}

impl Store for SqlStore {
    fn get(&self, conversation_id: &str) -> Result<Option<Job>, String> {
        Ok(self
            .jobs(
                "SELECT job FROM jobs WHERE conversation_id = ?",
                vec![conversation_id.into()],
            )?
            .pop())
    }

    fn put(&self, job: &Job) -> Result<(), String> {
        self.rows(
            "INSERT OR REPLACE INTO jobs (conversation_id, state, due_ms, updated_ms, job) VALUES (?, ?, ?, ?, ?)",
            Self::job_row(job)?,
        )
        .map(drop)
    }

    fn insert_new(&self, job: &Job) -> Result<bool, String> {
        // Whether it wrote, from the cursor's count: no row is built to say so.
        let cursor = self.sql.exec(
            "INSERT INTO jobs (conversation_id, state, due_ms, updated_ms, job) VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO NOTHING",
            Self::job_row(job)?.into_boxed_slice(),
        );
        Ok(cursor.map_err(|e| js_error(&e))?.rows_written() > 0.0)
    }

    fn due(&self, now_ms: i64, lease_before_ms: i64, limit: usize) -> Result<Vec<Job>, String> {
        self.jobs(
            "SELECT job FROM jobs WHERE (state IN ('scheduled', 'retrying') AND due_ms <= ?) OR (state = 'sending' AND updated_ms < ?) ORDER BY due_ms LIMIT ?",
            vec![num(now_ms), num(lease_before_ms), num(limit as i64)],
        )
    }

    fn next_due(&self) -> Result<Option<i64>, String> {
        // `due_ms IS NOT NULL` lets SQLite answer from the partial index `jobs_due` instead of
        // reading every row (measured: 4.9 ms → 0.008 ms with 10,000 jobs, on every schedule).
        let rows = self.rows(
            "SELECT MIN(due_ms) AS due FROM jobs WHERE due_ms IS NOT NULL AND state IN ('scheduled', 'retrying', 'sending')",
            vec![],
        )?;
        Ok(rows
            .first()
            .and_then(|r| Self::column(r, "due").as_f64())
            .map(|d| d as i64))
    }

    fn recent(&self, limit: usize) -> Result<Vec<Job>, String> {
        self.jobs(
            "SELECT job FROM jobs ORDER BY updated_ms DESC LIMIT ?",
            vec![num(limit as i64)],
        )
    }

    fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<String>, String> {
        let rows = self.rows(
            "SELECT value FROM cache WHERE key = ? AND expires_ms > ?",
            vec![key.into(), num(now_ms)],
        )?;
        Ok(rows
            .first()
            .and_then(|r| Self::column(r, "value").as_string()))
    }

    fn cache_put(&self, key: &str, value: &str, expires_ms: i64) -> Result<(), String> {
        self.rows(
            "INSERT OR REPLACE INTO cache (key, value, expires_ms) VALUES (?, ?, ?)",
            vec![key.into(), value.into(), num(expires_ms)],
        )
        .map(drop)
    }

    fn org(&self) -> Result<OrgRecord, String> {
        if let Some(record) = self.org.borrow().as_ref() {
            return Ok(record.clone());
        }
        let rows = self.rows("SELECT record FROM org WHERE id = 1", vec![])?;
        let record = match rows
            .first()
            .and_then(|r| Self::column(r, "record").as_string())
        {
            None => OrgRecord::default(),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| format!("the org's record cannot be read: {e}"))?,
        };
        *self.org.borrow_mut() = Some(record.clone());
        Ok(record)
    }

    fn put_org(&self, record: &OrgRecord) -> Result<(), String> {
        let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
        // Forgotten first: if the write fails, the next read goes to storage.
        *self.org.borrow_mut() = None;
        self.rows(
            "INSERT OR REPLACE INTO org (id, record) VALUES (1, ?)",
            vec![text.into()],
        )?;
        *self.org.borrow_mut() = Some(record.clone());
        Ok(())
    }

    fn prune(&self, before_ms: i64, now_ms: i64) -> Result<usize, String> {
        let gone = self.rows(
            "DELETE FROM jobs WHERE due_ms IS NULL AND updated_ms <= ? RETURNING conversation_id",
            vec![num(before_ms)],
        )?;
        self.rows("DELETE FROM cache WHERE expires_ms <= ?", vec![num(now_ms)])?;
        Ok(gone.len())
    }

    fn oldest_final(&self) -> Result<Option<i64>, String> {
        let rows = self.rows(
            "SELECT MIN(updated_ms) AS at FROM jobs WHERE due_ms IS NULL",
            vec![],
        )?;
        Ok(rows
            .first()
            .and_then(|r| Self::column(r, "at").as_f64())
            .map(|t| t as i64))
    }
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
    let Some(current) = key("SETTINGS_KEY") else {
        let e = "SETTINGS_KEY is not set: the worker needs it to keep the org's settings sealed";
        return Err(js_sys::Error::new(e).into());
    };
    let previous = key("SETTINGS_KEY_PREVIOUS");
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
    set(&out, "status", &reply.status.into());
    let body = serde_json::to_string(&reply.body).unwrap_or_default(); // a Value: cannot fail
    set(&out, "body", &JsValue::from_str(&body));
    if let Some(seconds) = reply.retry_after {
        set(&out, "retryAfter", &seconds.into());
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

/// Forwards commands to org schedulers through a JS function `(org, commandJson) =>
/// Promise<replyJson>` (a Durable Object stub call in the worker entry), and counts rate-limited
/// uses through `(bucket, perMinute) => Promise<number>` (seconds to wait, 0 when allowed).
pub struct JsRouter {
    forward: Function,
    limit: Function,
}

impl Router for JsRouter {
    async fn forward(&self, org: &str, command: &Command) -> Result<Reply, String> {
        let json = serde_json::to_string(command).map_err(|e| e.to_string())?;
        let promise = self
            .forward
            .call2(&JsValue::NULL, &org.into(), &json.into())
            .map_err(|e| js_error(&e))?;
        // A Durable Object RPC call returns a thenable, not a Promise: adopt it.
        let reply = JsFuture::from(Promise::resolve(&promise))
            .await
            .map_err(|e| js_error(&e))?;
        reply_from_js(&reply).ok_or_else(|| "the scheduler's reply cannot be read".to_owned())
    }

    async fn limit(&self, bucket: &str, per_minute: u32) -> Result<Option<u32>, String> {
        let promise = self
            .limit
            .call2(&JsValue::NULL, &bucket.into(), &per_minute.into())
            .map_err(|e| js_error(&e))?;
        let wait = JsFuture::from(Promise::resolve(&promise))
            .await
            .map_err(|e| js_error(&e))?;
        let wait = wait.as_f64().unwrap_or(0.0);
        Ok((wait > 0.0).then_some(wait.ceil() as u32))
    }
}

/// The edge's HTTP front, one per isolate (it keeps the key → org cache).
#[wasm_bindgen(js_name = Gateway)]
pub struct JsGateway {
    inner: Rc<gateway::Gateway<FetchTransport, JsRouter>>,
}

#[wasm_bindgen(js_class = Gateway)]
impl JsGateway {
    /// `new Gateway(env, forward, limit)`; `forward(org, commandJson)` returns the org
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
    /// send back. `path` is the URL's path; `headers` the values of [`header_names`], a line
    /// each (one string crosses, not an object of them all). The body comes as its bytes,
    /// copied once into Wasm memory (no JavaScript string is built for it).
    #[wasm_bindgen(unchecked_return_type = "Promise<EdgeReply>")]
    pub fn handle(&self, method: String, path: String, headers: String, body: Vec<u8>) -> Promise {
        let inner = self.inner.clone();
        let body = text(body);
        future_to_promise(async move {
            let header = |name: &str| header(&headers, name);
            let reply = inner
                .handle(Incoming {
                    method: &method,
                    path: &path,
                    header: &header,
                    body: &body,
                    now_ms: js_sys::Date::now() as i64,
                })
                .await;
            Ok(reply_to_js(&reply))
        })
    }

    /// The same request without waiting on anything, for the close path: `undefined` when it
    /// needs [`JsGateway::handle`]; else the reply to give now, or `{org, command}` (the command
    /// as JSON text) for the worker entry to hand to the org's Durable Object, whose reply is
    /// the answer.
    #[wasm_bindgen(
        unchecked_return_type = "EdgeReply | {org: string, command: string} | undefined"
    )]
    pub fn step(&self, method: &str, path: &str, headers: &str, body: Vec<u8>) -> JsValue {
        let body = text(body);
        let header = |name: &str| header(headers, name);
        let incoming = Incoming {
            method,
            path,
            header: &header,
            body: &body,
            now_ms: js_sys::Date::now() as i64,
        };
        match self.inner.step(&incoming) {
            None => JsValue::UNDEFINED,
            Some(Step::Reply(reply)) => reply_to_js(&reply),
            Some(Step::Forward { org, command }) => match serde_json::to_string(&command) {
                Ok(json) => {
                    let out = Object::new();
                    set(&out, "org", &org.into());
                    set(&out, "command", &json.into());
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

/// A request header by name, from the values of [`header_names`] as the worker entry passes
/// them: one text, a line per name, `\0` for an absent header (header values have neither).
fn header(values: &str, name: &str) -> Option<String> {
    let at = HEADERS.names().iter().position(|n| n == name)?;
    let value = values.split('\n').nth(at)?;
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
    /// it, `{status, body, retryAfter?}` with the body as JSON text.
    #[wasm_bindgen(unchecked_return_type = "EdgeReply")]
    pub fn command(&self, command: &str) -> JsValue {
        let reply = match serde_json::from_str::<Command>(command) {
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
const EDGE_TYPES: &str = r#"
/** An answer of the edge: status, the body as JSON text, and Retry-After seconds on a 429. */
export interface EdgeReply { status: number; body: string; retryAfter?: number }
/** The worker's bindings the edge reads (all text; unset or null means the default). */
export interface EdgeBindings {
  SETTINGS_KEY?: string | null; SETTINGS_KEY_PREVIOUS?: string | null; ALLOW_LOOPBACK?: string | null;
  RETRY_BASE_MS?: string | null; CACHE_MS?: string | null; LEASE_MS?: string | null;
  RETENTION_DAYS?: string | null; KEY_CHECKS_PER_MINUTE?: string | null;
}
"#;
