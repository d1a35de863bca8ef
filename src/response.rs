//! What an HTTP answer from Stella or Kustomer means for a pending survey: done, failed for
//! good, or worth another try (and when).

use crate::http::Response;
use crate::timestamp::Instant;
use serde::Serialize;

/// The most of an error body that is kept, in characters.
pub const MAX_ERROR_CHARS: usize = 2000;
/// The longest wait a server may ask for that is honoured as given (one day).
pub const MAX_WAIT_SECONDS: u64 = 86_400;

/// What an answer means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Verdict {
    /// 2xx: accepted. Never send again.
    Sent {
        /// Status code.
        status: u16,
    },
    /// 400, 403 and other client errors: retrying would not help.
    Rejected {
        /// Status code.
        status: u16,
        /// The server's own words, cut to [`MAX_ERROR_CHARS`].
        message: String,
    },
    /// 408, 429, 5xx, timeouts and network errors: try again later.
    Retry {
        /// Status code, if the server answered at all.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Seconds the server asked to wait, if it said.
        #[serde(rename = "waitSeconds", skip_serializing_if = "Option::is_none")]
        wait_seconds: Option<u64>,
        /// What happened.
        message: String,
    },
}

/// Classifies an answer (its body is text: Stella answers errors in plain text). `now` reads
/// `Retry-After` dates and Kustomer's `x-ratelimit-reset`.
pub fn classify_response(r: &Response, now: Instant) -> Verdict {
    let text = truncate_chars(r.body.trim(), MAX_ERROR_CHARS);
    let message = if text.is_empty() {
        format!("HTTP {}", r.status)
    } else {
        text.to_owned()
    };
    match r.status {
        200..=299 => Verdict::Sent { status: r.status },
        408 | 429 | 500..=599 => Verdict::Retry {
            status: Some(r.status),
            wait_seconds: r
                .header("retry-after")
                .and_then(|v| retry_after_seconds(v, now))
                // Kustomer sends its rate-limit reset on every answer; it says when to come
                // back only when the answer is "too many requests".
                .or_else(|| {
                    r.header("x-ratelimit-reset")
                        .filter(|_| r.status == 429)
                        .and_then(|v| ratelimit_reset_seconds(v, now))
                }),
            message,
        },
        _ => Verdict::Rejected {
            status: r.status,
            message,
        },
    }
}

/// The verdict on a request that got no answer (timeout, connection refused, DNS).
pub fn network_error(message: &str) -> Verdict {
    Verdict::Retry {
        status: None,
        wait_seconds: None,
        message: truncate_chars(message, MAX_ERROR_CHARS).to_owned(),
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110).
pub fn retry_after_seconds(value: &str, now: Instant) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.min(MAX_WAIT_SECONDS));
    }
    let date =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    Some(seconds_until(date, now))
}

/// `x-ratelimit-reset`. Kustomer documents the header but not its unit; this reads a large
/// number as a Unix time (seconds, or milliseconds) and a small one as seconds to wait (a guess,
/// kept here alone).
pub fn ratelimit_reset_seconds(value: &str, now: Instant) -> Option<u64> {
    let n: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let at = if n >= 1e12 {
        crate::timestamp::from_millis(n)
    } else if n >= 1e9 {
        crate::timestamp::from_millis(n * 1000.0)
    } else {
        return Some((n.ceil() as u64).min(MAX_WAIT_SECONDS));
    };
    Some(seconds_until(at, now))
}

/// Cuts `s` to at most `max` characters, on a character boundary.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn seconds_until(at: Instant, now: Instant) -> u64 {
    let secs = (at - now).whole_seconds().max(0);
    u64::try_from(secs).unwrap_or(0).min(MAX_WAIT_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::parse;

    fn now() -> Instant {
        parse("2026-11-20T14:00:00Z").unwrap()
    }

    fn answer(status: u16, body: &str) -> Verdict {
        classify_response(&Response::new(status, body), now())
    }

    #[test]
    fn statuses() {
        assert_eq!(answer(200, "{}"), Verdict::Sent { status: 200 });
        assert_eq!(answer(201, ""), Verdict::Sent { status: 201 });
        assert_eq!(
            answer(400, " Invalid customer \n"),
            Verdict::Rejected {
                status: 400,
                message: "Invalid customer".into()
            }
        );
        assert_eq!(
            answer(403, ""),
            Verdict::Rejected {
                status: 403,
                message: "HTTP 403".into()
            }
        );
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(answer(s, "x"), Verdict::Retry { status: Some(x), .. } if x == s),
                "{s}"
            );
        }
    }

    #[test]
    fn long_error_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(5000);
        let Verdict::Rejected { message, .. } = answer(400, &body) else {
            panic!()
        };
        assert_eq!(message.chars().count(), MAX_ERROR_CHARS);
    }

    #[test]
    fn waits() {
        let wait = |retry_after: Option<&str>, reset: Option<&str>| {
            let mut r = Response::new(429, "");
            if let Some(v) = retry_after {
                r = r.with_header("retry-after", v);
            }
            if let Some(v) = reset {
                r = r.with_header("x-ratelimit-reset", v);
            }
            classify_response(&r, now())
        };
        let wait = |retry_after, reset| match wait(retry_after, reset) {
            Verdict::Retry { wait_seconds, .. } => wait_seconds,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(Some("120"), None), Some(120));
        assert_eq!(wait(Some("Fri, 20 Nov 2026 14:01:30 GMT"), None), Some(90));
        assert_eq!(wait(Some("Fri, 20 Nov 2026 13:00:00 GMT"), None), Some(0));
        assert_eq!(wait(Some("99999999"), None), Some(MAX_WAIT_SECONDS));
        assert_eq!(wait(Some("soon"), None), None);
        assert_eq!(wait(None, Some("30")), Some(30));
        let epoch = now().unix_timestamp() + 45;
        let (secs, millis) = (epoch.to_string(), (epoch * 1000).to_string());
        assert_eq!(wait(None, Some(&secs)), Some(45));
        assert_eq!(wait(None, Some(&millis)), Some(45));
        assert_eq!(wait(None, Some("-3")), None);
        assert_eq!(wait(Some("10"), Some("30")), Some(10), "Retry-After wins");
        // A server error with the rate-limit headers Kustomer always sends: the usual backoff.
        let server_error = classify_response(
            &Response::new(500, "").with_header("x-ratelimit-reset", "30"),
            now(),
        );
        assert!(matches!(
            server_error,
            Verdict::Retry {
                wait_seconds: None,
                ..
            }
        ));
    }

    #[test]
    fn network_errors_retry() {
        assert!(matches!(
            network_error("timed out"),
            Verdict::Retry { status: None, .. }
        ));
    }
}
