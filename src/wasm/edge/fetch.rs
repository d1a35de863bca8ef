//! [`Transport`] over workerd's global `fetch`, each call with its own deadline.

use super::{js_error, set};
use crate::edge::{SendError, Transport};
use crate::http::{self, READ_HEADERS};
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// How long an outbound call may take before it counts as a timeout (retried).
const FETCH_TIMEOUT_MS: u32 = 10_000;

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
