//! The Stella Connect (Medallia Agent Connect) survey request, as a plain value: the caller
//! owns the network. The body follows the vendor's closed schema (`FeedbackRequestModel`):
//! a field with no value is left out, never sent as `null` or `""`.

use crate::response::Outcome;
use crate::settings::{Secret, Settings, MASK};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The most tags Stella accepts.
pub const MAX_TAGS: usize = 20;
/// The longest tag Stella keeps, in characters.
pub const MAX_TAG_CHARS: usize = 2000;

/// `customer` of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Shown in the survey's header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the survey goes.
    pub email: String,
}

/// `employee` of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Employee {
    /// Must match the agent's Agent Connect profile.
    pub email: String,
}

/// The body of `POST /v1/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRequest {
    /// A channel enabled in the Stella account.
    pub channel: String,
    /// The customer who gets the survey.
    pub customer: Customer,
    /// The agent the feedback is about.
    pub employee: Employee,
    /// The Kustomer conversation id.
    pub ext_interaction_id: String,
    /// Link back to the conversation in Kustomer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Tag names, at most [`MAX_TAGS`].
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<String>,
    /// Record the interaction but send no survey.
    pub do_not_send: bool,
    /// Brand, for multi-brand accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Language such as `en-US`, for multi-language accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The path of the endpoint under the Stella API base URL.
pub const REQUESTS_PATH: &str = "/v1/requests";

/// An HTTP request ready to send. Its `Debug` and `Serialize` mask the key; the transport reads
/// the real headers with [`HttpRequest::headers`].
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Always `POST`.
    pub method: &'static str,
    /// `{stellaApiUrl}/v1/requests`.
    pub url: String,
    api_key: Secret,
    /// The JSON body.
    pub body: FeedbackRequest,
}

impl HttpRequest {
    /// The survey request for `body`, with the settings' Stella URL and key.
    pub fn new(settings: &Settings, body: FeedbackRequest) -> Self {
        Self {
            method: "POST",
            url: format!("{}{REQUESTS_PATH}", settings.stella_api_url),
            api_key: settings.stella_api_key.clone(),
            body,
        }
    }

    /// The headers with the real key, for the transport alone.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        request_headers(self.api_key.expose())
    }

    /// The body as JSON text.
    pub fn body_json(&self) -> String {
        // Serializing plain strings and bools into a String cannot fail.
        serde_json::to_string(&self.body).unwrap_or_default()
    }
}

fn request_headers(key: &str) -> [(&'static str, &str); 3] {
    [
        ("x-api-key", key),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ]
}

/// The body that checks a Stella key: Stella reads the key before the body (403 before 400),
/// and a body without `channel` fails its schema, so the probe can never create a survey.
pub const KEY_PROBE_BODY: &str = "{}";

/// The URL and headers (real key included) that check the settings' Stella key; send them
/// with [`KEY_PROBE_BODY`].
pub fn key_probe(settings: &Settings) -> (String, [(&'static str, &str); 3]) {
    (
        format!("{}{REQUESTS_PATH}", settings.stella_api_url),
        request_headers(settings.stella_api_key.expose()),
    )
}

/// What Stella's answer to the key probe says about the key: a 400 (the empty body refused)
/// means the key passed; a 401/403 means it did not.
pub fn key_probe_verdict(outcome: &Outcome) -> Result<(), (&'static str, String)> {
    match outcome {
        Outcome::Sent { .. } | Outcome::Rejected { status: 400, .. } => Ok(()),
        Outcome::Rejected { status: 401 | 403, .. } => Err((
            "stella_key_rejected",
            "Agent Connect did not accept the Stella Connect API key: copy it again from Agent Connect's settings.".into(),
        )),
        Outcome::Rejected { status, message } => Err((
            "stella_error",
            format!("Agent Connect answered {status}: {message}"),
        )),
        Outcome::Retry { message, .. } => Err((
            "stella_unavailable",
            format!("Agent Connect could not be reached: {message}"),
        )),
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &request_headers(MASK))
            .field("body", &self.body)
            .finish()
    }
}

impl Serialize for HttpRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Headers<'a>([(&'static str, &'a str); 3]);
        impl Serialize for Headers<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in &self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("method", self.method)?;
        m.serialize_entry("url", &self.url)?;
        m.serialize_entry("headers", &Headers(request_headers(MASK)))?;
        m.serialize_entry("body", &self.body)?;
        m.end()
    }
}

/// Cuts `s` to at most `max` characters, on a character boundary.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
