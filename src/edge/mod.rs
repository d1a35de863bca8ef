//! The edge: receives close events, holds each survey until it falls due, checks the
//! conversation again, and sends it to Stella exactly once.
//!
//! Pure orchestration over three small traits — [`Transport`] (HTTP), [`Store`] (the org's
//! jobs table) and the caller's clock and randomness passed in as values — so every path is
//! tested on the host with fakes (`tests/edge.rs`); `wasm::edge` implements them over
//! workerd's `fetch` and Durable Object SQL storage.
//!
//! Two levels, as on Cloudflare: the [`gateway`] answers HTTP (stateless, any instance), and
//! the [`scheduler`] owns one org's jobs (one Durable Object per org, one alarm at the earliest
//! due time).
#![allow(async_fn_in_trait)] // single-threaded Wasm: the futures never cross threads

pub mod gateway;
pub mod job;
pub mod kustomer_api;
pub mod scheduler;

use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;

/// An HTTP request the edge makes. `Debug` masks credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct OutRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Absolute URL.
    pub url: String,
    /// Headers, credentials included.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body, if any.
    pub body: Option<String>,
}

impl fmt::Debug for OutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    if is_credential(k) {
                        crate::settings::MASK
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("OutRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .finish()
    }
}

fn is_credential(header: &str) -> bool {
    header.eq_ignore_ascii_case("authorization") || header.eq_ignore_ascii_case("x-api-key")
}

/// An HTTP answer, reduced to what the edge reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InResponse {
    /// Status code.
    pub status: u16,
    /// `Retry-After`.
    pub retry_after: Option<String>,
    /// `x-ratelimit-reset`.
    pub ratelimit_reset: Option<String>,
    /// Body text.
    pub body: String,
}

/// Sends HTTP requests. The real one is workerd's `fetch` with a 10-second timeout; an `Err`
/// is a network error or a timeout (retryable).
pub trait Transport {
    /// Sends one request.
    async fn send(&self, request: OutRequest) -> Result<InResponse, String>;
}

/// The org's jobs and cache (a Durable Object's SQL storage). Errors are storage faults.
pub trait Store {
    /// The job for a conversation.
    fn get(&self, conversation_id: &str) -> Result<Option<job::Job>, String>;
    /// Writes a job (insert or replace).
    fn put(&self, job: &job::Job) -> Result<(), String>;
    /// Jobs to act on at `now_ms`: due scheduled or retrying ones, and `sending` ones whose
    /// lease (last update) is older than `lease_before_ms` (an attempt cut off by a crash).
    fn due(&self, now_ms: i64, lease_before_ms: i64, limit: usize)
        -> Result<Vec<job::Job>, String>;
    /// The earliest `due_ms` of a job that is not final (a `sending` job's is its lease
    /// expiry), for the alarm.
    fn next_due(&self) -> Result<Option<i64>, String>;
    /// The most recently changed jobs, newest first.
    fn recent(&self, limit: usize) -> Result<Vec<job::Job>, String>;
    /// A cached value, if not expired.
    fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<String>, String>;
    /// Caches a value until `expires_ms`.
    fn cache_put(&self, key: &str, value: &str, expires_ms: i64) -> Result<(), String>;
}

/// An HTTP answer from the edge: status and JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// `{error: {code, message}}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }
}

/// How the edge is configured (workerd bindings; the defaults are production's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Accept `http://` loopback URLs: only the local sandbox setup turns this on.
    pub allow_loopback: bool,
    /// Retry spacing.
    pub retry: job::RetryPolicy,
    /// How long user emails, tag names and key→org answers are cached.
    pub cache_ms: i64,
    /// How long a `sending` attempt may last before it counts as cut off.
    pub lease_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            retry: job::RetryPolicy::default(),
            cache_ms: 5 * 60_000,
            lease_ms: 60_000,
        }
    }
}

pub use crate::settings::setting_header;

/// Raw settings read from request headers (absent headers are left out, so defaults apply).
pub fn settings_from_headers(header: impl Fn(&str) -> Option<String>) -> Value {
    let mut raw = serde_json::Map::new();
    for f in crate::settings::FIELDS {
        if let Some(v) = header(&setting_header(f.key)) {
            raw.insert(f.key.to_owned(), Value::String(v));
        }
    }
    Value::Object(raw)
}

/// Runs a future whose I/O is already resolved (test fakes) to completion on the host.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_setting_keys() {
        assert_eq!(setting_header("stellaApiKey"), "x-stella-api-key");
        assert_eq!(setting_header("secondsUntilSend"), "x-seconds-until-send");
        assert_eq!(setting_header("kustomerApiUrl"), "x-kustomer-api-url");
    }

    #[test]
    fn debug_masks_credentials() {
        let r = OutRequest {
            method: "GET",
            url: "https://x".into(),
            headers: vec![
                ("authorization", "Bearer k-123".into()),
                ("x-api-key", "s-456".into()),
                ("accept", "a".into()),
            ],
            body: None,
        };
        let printed = format!("{r:?}");
        assert!(
            !printed.contains("k-123") && !printed.contains("s-456") && printed.contains("accept"),
            "{printed}"
        );
    }
}
