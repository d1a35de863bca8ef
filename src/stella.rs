//! The Stella Connect (Medallia Agent Connect) survey request, as a plain value: the caller
//! owns the network. The body follows the vendor's closed schema (`FeedbackRequestModel`):
//! a field with no value is left out, never sent as `null` or `""`.

use crate::http;
use crate::settings::Settings;
use serde::{Deserialize, Serialize};

/// The most tags Stella accepts.
pub const MAX_TAGS: usize = 20;
/// The longest tag Stella keeps, in characters.
pub const MAX_TAG_CHARS: usize = 2000;
/// The longest custom property value Stella keeps, in characters.
pub const MAX_PROPERTY_CHARS: usize = 2000;

/// `custom_properties`: a flat map of names to text, in the order they were put. A list of
/// pairs rather than a map type: neither `serde_json::Value`'s serializer nor a `BTreeMap` of
/// new types is linked into the pages' Wasm for it (each cost kilobytes there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties(Vec<(String, String)>);

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing an earlier value of the same name.
    pub fn insert(&mut self, name: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(pair) => pair.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Properties {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::settings::serialize_pairs(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())), s)
    }
}

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Ok(Self(map.into_iter().collect()))
    }
}

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
    /// Text properties kept with the survey and returned with its outcome.
    #[serde(skip_serializing_if = "Properties::is_empty", default)]
    pub custom_properties: Properties,
}

/// The path of the endpoint under the Stella API base URL.
pub const REQUESTS_PATH: &str = "/v1/requests";

/// The survey request for `body`: a `POST` to the settings' Stella URL with their key.
pub fn survey_request(settings: &Settings, body: &FeedbackRequest) -> http::Request {
    // Serializing plain strings and bools into a String cannot fail.
    let json = serde_json::to_string(body).unwrap_or_default();
    http::Request::post_json(format!("{}{REQUESTS_PATH}", settings.stella_api_url), json)
        .credential("x-api-key", settings.stella_api_key.clone())
}

/// The body that checks a Stella key: Stella reads the key before the body (403 before 400),
/// and a body without `channel` fails its schema, so the probe can never create a survey.
pub const KEY_PROBE_BODY: &str = "{}";

/// The request that checks the settings' Stella key: [`KEY_PROBE_BODY`] to the survey endpoint.
pub fn key_probe(settings: &Settings) -> http::Request {
    http::Request::post_json(
        format!("{}{REQUESTS_PATH}", settings.stella_api_url),
        KEY_PROBE_BODY.to_owned(),
    )
    .credential("x-api-key", settings.stella_api_key.clone())
}
