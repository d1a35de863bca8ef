//! What an HTTP answer (or its absence) means for a call the edge makes, to Kustomer or to
//! Agent Connect: a usable answer, or a [`Failure`] (try again later, not tried, or refused for
//! good with a stable [`FetchError`]). The other side's words are masked as they enter.

use super::{Response, SendError};
use crate::error::codes;
use crate::redact::scrub;
use crate::response::{classify_response, network_error, Verdict};
use crate::timestamp;

codes! {
    /// Why a Kustomer (or Stella) call failed for good.
    pub enum FetchError {
        /// The server refused the call (a 4xx other than 404).
        Rejected = "rejected",
        /// The server has no such record (404).
        NotFound = "not_found",
        /// The answer cannot be read.
        InvalidResponse = "invalid_response",
        /// The API URL cannot take the path.
        InvalidUrl = "invalid_url",
        /// The request cannot be made at all.
        RequestRefused = "request_refused",
    }
}

/// Why a call did not give a usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Temporary: try again, after `wait_ms` if the server said.
    Retry {
        /// The server's requested wait, ms.
        wait_ms: Option<i64>,
        /// What happened.
        message: String,
    },
    /// Not tried: the org's API budget allows no more calls for now.
    Paced,
    /// Permanent: a refusal, a missing record, or an answer that cannot be read.
    Fatal {
        /// Stable code.
        code: FetchError,
        /// What happened, with the server's words.
        message: String,
    },
}

/// Maps an HTTP answer (or its absence) to a value or a [`Failure`]. The other side's words
/// (an error body, a runtime's error text) are where a key may come back, so `keys` are
/// masked out of them here, as they enter, in every form [`scrub`] knows.
pub fn interpret(
    result: Result<Response, SendError>,
    now_ms: i64,
    service: &str,
    keys: &[&str],
) -> Result<Response, Failure> {
    // What an answer (or no answer) means is decided in `response`; this only words it.
    let response = match result {
        Ok(response) => response,
        Err(SendError::Network(e)) => {
            return Err(failure(network_error(&scrub(&e, keys)), service))
        }
        // Nothing was sent: the work waits, as for the org's API budget.
        Err(SendError::Paced | SendError::OverBudget) => return Err(Failure::Paced),
        Err(SendError::Refused(e)) => {
            return Err(Failure::Fatal {
                code: FetchError::RequestRefused,
                message: format!(
                    "The request to {service} cannot be made: {}",
                    scrub(&e, keys)
                ),
            })
        }
    };
    let now = timestamp::from_millis(now_ms as f64);
    match classify_response(&response, now) {
        Verdict::Sent { .. } => Ok(response),
        _ => {
            let scrubbed = Response {
                body: scrub(&response.body, keys),
                ..response
            };
            Err(failure(classify_response(&scrubbed, now), service))
        }
    }
}

/// A retry or a refusal, in words that name the service.
fn failure(verdict: Verdict, service: &str) -> Failure {
    match verdict {
        Verdict::Retry {
            wait_seconds,
            message,
            status,
        } => Failure::Retry {
            wait_ms: wait_seconds.map(|s| (s as i64).saturating_mul(1000)),
            message: match status {
                Some(status) => format!("{service} answered {status}: {message}"),
                None => format!("{service} did not answer: {message}"),
            },
        },
        Verdict::Rejected { status, message } => Failure::Fatal {
            code: if status == 404 {
                FetchError::NotFound
            } else {
                FetchError::Rejected
            },
            message: format!("{service} answered {status}: {message}"),
        },
        // Not reached: `interpret` returns a 2xx as the answer itself.
        Verdict::Sent { status } => Failure::Fatal {
            code: FetchError::Rejected,
            message: format!("{service} answered {status}"),
        },
    }
}

impl std::fmt::Display for Failure {
    /// The failure's words (the server's, masked, for a retry or a refusal).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry { message, .. } | Self::Fatal { message, .. } => f.write_str(message),
            Self::Paced => {
                f.write_str("Not tried: the org's API budget allows no more calls for now.")
            }
        }
    }
}
