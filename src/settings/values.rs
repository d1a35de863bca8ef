//! What validation yields: [`Settings`] and the value types its fields hold, each printing a
//! secret as a mask and a map as the admin wrote it.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::fmt;

/// An API key. Its `Debug` and `Serialize` print a mask, so a key cannot reach a log, an error
/// or a response by accident; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What a secret prints as.
pub const MASK: &str = "********";

impl Secret {
    /// Wraps a key (no checks: use [`super::validate_settings`] for input).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The key itself, for the one header that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// Kustomer → Stella channel names, defaults merged in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelMap(pub(super) Vec<(String, String)>);

impl ChannelMap {
    /// The Stella channel for a Kustomer channel; unmapped channels keep their name.
    pub fn stella_channel<'a>(&'a self, kustomer: &'a str) -> &'a str {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(kustomer))
            .map_or(kustomer, |(_, s)| s.as_str())
    }
}

impl Serialize for ChannelMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `name=value` pairs an admin wrote (the brand and language maps): looked up by name in any
/// case, the first pair of a name winning, as with the channel map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pairs(pub(super) Vec<(String, String)>);

impl Pairs {
    /// The value for `name`, matched in any case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Pairs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_pairs(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())), s)
    }
}

/// Serializes pairs as a JSON object, in their order.
pub(crate) fn serialize_pairs<'a, S: Serializer>(
    pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// The Kustomer record a custom property is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The conversation.
    Conversation,
    /// Its customer.
    Customer,
}

/// One admin-chosen custom property: a Kustomer attribute sent under an Agent Connect name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomProperty {
    /// The record the attribute is on.
    pub source: Source,
    /// Whether the attribute is a custom one (`attributes.custom.<name>`).
    pub custom: bool,
    /// The attribute's name.
    pub attribute: String,
    /// The property's name at Agent Connect.
    pub property: String,
    /// The attribute as the admin wrote it, such as `conversation.custom.orderIdStr`.
    pub(super) written: String,
}

/// The admin's custom properties, in their order, at most [`super::MAX_CUSTOM_PROPERTIES`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomProperties(pub(super) Vec<CustomProperty>);

impl CustomProperties {
    /// The properties, in the admin's order.
    pub fn iter(&self) -> impl Iterator<Item = &CustomProperty> {
        self.0.iter()
    }
}

impl Serialize for CustomProperties {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_pairs(
            self.0
                .iter()
                .map(|p| (p.written.as_str(), p.property.as_str())),
            s,
        )
    }
}

/// Validated settings. Serializes in camelCase with every secret masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Stella's `x-api-key`.
    pub stella_api_key: Secret,
    /// The company's API secret, which signs the tokens that read survey outcomes back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stella_api_secret: Option<Secret>,
    /// Kustomer's Bearer key.
    pub kustomer_api_key: Secret,
    /// Kustomer API base, without a trailing slash.
    pub kustomer_api_url: String,
    /// The org's Kustomer address, without a trailing slash.
    pub kustomer_url: String,
    /// Delay between close and send.
    pub seconds_until_send: u32,
    /// Stella API base, without a trailing slash.
    pub stella_api_url: String,
    /// Kustomer → Stella channel names.
    pub channel_map: ChannelMap,
    /// Channels that get surveys (Kustomer or Stella names); empty means all.
    pub surveyed_channels: Vec<String>,
    /// Fixed Stella brand, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Kustomer brand name → Stella brand; when set, an unlisted brand needs `brand`.
    pub brand_map: Pairs,
    /// Whether the conversation's language is sent.
    pub send_language: bool,
    /// Language tag (`en-US`, or a bare `en`) → Stella language.
    pub language_map: Pairs,
    /// Kustomer attributes sent as custom properties.
    pub custom_properties: CustomProperties,
    /// Days after a survey before the conversation may be surveyed again; 0 is never.
    pub resurvey_after_days: u32,
    /// The share of the org's Kustomer API budget the app may use, in percent (1 to 100).
    pub kustomer_budget_share: u32,
}

impl Settings {
    /// Every Stella credential these settings hold, for masking out of Stella's answers.
    pub fn stella_secrets(&self) -> Vec<&str> {
        let mut keys = vec![self.stella_api_key.expose()];
        keys.extend(self.stella_api_secret.as_ref().map(Secret::expose));
        keys
    }

    /// Settings before any field is read: each field's rule in [`super::FIELDS`] then sets it.
    pub(super) fn unset() -> Self {
        Self {
            stella_api_key: Secret::new(""),
            stella_api_secret: None,
            kustomer_api_key: Secret::new(""),
            kustomer_api_url: String::new(),
            kustomer_url: String::new(),
            seconds_until_send: 0,
            stella_api_url: String::new(),
            channel_map: ChannelMap::default(),
            surveyed_channels: Vec::new(),
            brand: None,
            brand_map: Pairs::default(),
            send_language: false,
            language_map: Pairs::default(),
            custom_properties: CustomProperties::default(),
            resurvey_after_days: 0,
            kustomer_budget_share: 0,
        }
    }
}
