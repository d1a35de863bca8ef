//! The one HTTP request and response type, from the core that builds a request to the transport
//! that sends it and back. Credentials travel as [`Secret`]s: `Debug` and `Serialize` mask
//! them, and only the transport reads them ([`Request::header_values`]).

use crate::settings::{Secret, MASK};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::fmt;

/// A header's value: text, or a credential.
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Shown as it is.
    Text(String),
    /// Masked everywhere but on the wire.
    Secret(Secret),
}

impl HeaderValue {
    /// The value as sent.
    pub fn expose(&self) -> &str {
        match self {
            Self::Text(t) => t,
            Self::Secret(s) => s.expose(),
        }
    }

    /// The value as shown: a credential is masked.
    pub fn shown(&self) -> &str {
        match self {
            Self::Text(t) => t,
            Self::Secret(_) => MASK,
        }
    }
}

/// An HTTP request: JSON in and out.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST` or `PATCH`.
    pub method: &'static str,
    /// Absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(&'static str, HeaderValue)>,
    /// JSON body text, if any.
    pub body: Option<String>,
}

impl Request {
    /// A `GET` that accepts JSON.
    pub fn get(url: String) -> Self {
        Self {
            method: "GET",
            url,
            headers: vec![("accept", HeaderValue::Text("application/json".into()))],
            body: None,
        }
    }

    /// A `POST` of JSON text that accepts JSON.
    pub fn post_json(url: String, body: String) -> Self {
        Self {
            method: "POST",
            url,
            headers: vec![
                ("content-type", HeaderValue::Text("application/json".into())),
                ("accept", HeaderValue::Text("application/json".into())),
            ],
            body: Some(body),
        }
    }

    /// A `PATCH` of JSON text that accepts JSON (Kustomer's partial update of a record).
    pub fn patch_json(url: String, body: String) -> Self {
        Self {
            method: "PATCH",
            ..Self::post_json(url, body)
        }
    }

    /// Adds a credential header, first in order.
    pub fn credential(mut self, name: &'static str, value: Secret) -> Self {
        self.headers.insert(0, (name, HeaderValue::Secret(value)));
        self
    }

    /// The headers as sent, credentials included: for the transport alone.
    pub fn header_values(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.headers.iter().map(|(k, v)| (*k, v.expose()))
    }

    /// One header as sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The request as shown (see its `Serialize`), with `body`, the value its body text was made
    /// from, in place of that text: what the pages show, without parsing the text back.
    pub fn shown_with<'a, B: Serialize + ?Sized>(&'a self, body: &'a B) -> ShownWith<'a, B> {
        ShownWith {
            request: self,
            body: Some(body),
        }
    }
}

struct Shown<'a>(&'a [(&'static str, HeaderValue)]);

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v.shown())?;
        }
        m.end()
    }
}

/// A [`Request`] as shown, with a body value in place of its body text
/// ([`Request::shown_with`]).
pub struct ShownWith<'a, B: ?Sized> {
    request: &'a Request,
    body: Option<&'a B>,
}

impl<B: Serialize + ?Sized> Serialize for ShownWith<'_, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("method", self.request.method)?;
        m.serialize_entry("url", &self.request.url)?;
        m.serialize_entry("headers", &Shown(&self.request.headers))?;
        if let Some(body) = self.body {
            m.serialize_entry("body", body)?;
        }
        m.end()
    }
}

/// `{method, url, headers, body}` with credentials masked and the body as JSON (text if it is
/// not JSON): what the preview shows.
impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let body = self.body.as_deref();
        match body.map(serde_json::from_str::<serde_json::Value>) {
            Some(Ok(json)) => self.shown_with(&json).serialize(s),
            _ => ShownWith {
                request: self,
                body,
            }
            .serialize(s),
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(k, v)| (*k, v.shown())).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

/// The response headers anyone here reads; the transport copies these and no others.
pub const READ_HEADERS: [&str; 4] = [
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// An HTTP answer, reduced to what is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The [`READ_HEADERS`] the answer carried, names in lower case.
    pub headers: Vec<(&'static str, String)>,
    /// Body text.
    pub body: String,
}

impl Response {
    /// An answer with a body and no headers.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header (one of [`READ_HEADERS`]).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_everywhere_but_on_the_wire() {
        let r = Request::post_json("https://x/v1".into(), r#"{"a":1}"#.into())
            .credential("x-api-key", Secret::new("s-456"));
        assert_eq!(r.header("x-api-key"), Some("s-456"));
        let printed = format!("{r:?}");
        let shown = serde_json::to_value(&r).unwrap();
        assert!(
            !printed.contains("s-456") && printed.contains("accept"),
            "{printed}"
        );
        assert_eq!(shown["headers"]["x-api-key"], MASK);
        assert_eq!(shown["body"]["a"], 1, "the body shows as JSON");
    }

    #[test]
    fn response_headers_read_in_any_case() {
        let r = Response::new(429, "").with_header("retry-after", "5");
        assert_eq!(r.header("Retry-After"), Some("5"));
        assert_eq!(r.header("x-ratelimit-reset"), None);
    }
}
