//! The app's settings: the main fields admins fill in, the advanced ones, and their validation.
//!
//! [`FIELDS`] is the one place that names, labels and defaults them; the settings page and the
//! app manifest read it instead of keeping copies. Validation is "parse, don't validate": it
//! turns the raw form object into a [`Settings`] whose URLs are checked and whose keys are
//! [`Secret`]s, or returns every field error at once.

use crate::error::{FieldError, FieldErrorCode as Code};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use url::{Host, Url};

/// What kind of value a setting holds; decides its form control, its manifest type and its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldKind {
    /// An API key: written by admins, never shown again.
    Secret,
    /// An https URL.
    Url,
    /// A whole number.
    Integer,
    /// Free text.
    Text,
    /// On or off.
    Boolean,
    /// `kustomer=stella` channel pairs.
    ChannelMap,
    /// A list of channel names.
    ChannelList,
    /// `name=value` pairs, such as a brand or language map.
    Pairs,
}

/// One setting as admins see it.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    /// The key in Kustomer's settings and in the raw form object.
    pub key: &'static str,
    /// The label on the settings page.
    pub label: &'static str,
    /// The help text under the field.
    pub help: &'static str,
    /// What it holds.
    pub kind: FieldKind,
    /// Whether the admin must fill it in.
    pub required: bool,
    /// The value used when it is left blank, as the form shows it.
    pub default: Option<&'static str>,
    /// Folded away under "Advanced" on the settings page.
    pub advanced: bool,
    /// Never drawn on the settings page: the page fills it in itself (the app secret).
    pub hidden: bool,
}

/// For the settings page: the definition plus the header that carries the setting to the edge.
impl Serialize for FieldDef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("key", self.key)?;
        m.serialize_entry("label", self.label)?;
        m.serialize_entry("help", self.help)?;
        m.serialize_entry("kind", &self.kind)?;
        m.serialize_entry("required", &self.required)?;
        if let Some(default) = self.default {
            m.serialize_entry("default", default)?;
        }
        m.serialize_entry("advanced", &self.advanced)?;
        m.serialize_entry("hidden", &self.hidden)?;
        m.serialize_entry("header", &setting_header(self.key))?;
        m.end()
    }
}

/// Setting key: the Stella Connect API key.
pub const STELLA_API_KEY: &str = "stellaApiKey";
/// Setting key: the Stella Connect API secret, with which survey outcomes are read back.
pub const STELLA_API_SECRET: &str = "stellaApiSecret";
/// Setting key: the Kustomer API key.
pub const KUSTOMER_API_KEY: &str = "kustomerApiKey";
/// Setting key: the Kustomer API URL.
pub const KUSTOMER_API_URL: &str = "kustomerApiUrl";
/// Setting key: the org's Kustomer URL.
pub const KUSTOMER_URL: &str = "kustomerUrl";
/// Setting key: the delay before a survey is sent.
pub const SECONDS_UNTIL_SEND: &str = "secondsUntilSend";
/// Setting key: the Stella API base URL.
pub const STELLA_API_URL: &str = "stellaApiUrl";
/// Setting key: Kustomer → Stella channel names.
pub const CHANNEL_MAP: &str = "channelMap";
/// Setting key: the channels that get surveys (empty: all).
pub const SURVEYED_CHANNELS: &str = "surveyedChannels";
/// Setting key: a fixed Stella brand.
pub const BRAND: &str = "brand";
/// Setting key: Kustomer brand name → Stella brand.
pub const BRAND_MAP: &str = "brandMap";
/// Setting key: language tag → Stella language.
pub const LANGUAGE_MAP: &str = "languageMap";
/// Setting key: Kustomer attribute → Stella custom property.
pub const CUSTOM_PROPERTIES: &str = "customProperties";
/// Setting key: whether to send the conversation's language.
pub const SEND_LANGUAGE: &str = "sendLanguage";
/// Setting key: days after a survey before the same conversation may be surveyed again.
pub const RESURVEY_AFTER_DAYS: &str = "resurveyAfterDays";
/// Setting key: the share of the org's Kustomer API budget the app may use, in percent.
pub const KUSTOMER_BUDGET_SHARE: &str = "kustomerBudgetShare";
/// Setting key: the org's app secret, which tells the edge that a call comes from this app's
/// own workflow or pages and not from any other holder of an org API key.
pub const APP_SECRET: &str = "appSecret";
/// Setting key: the app secret's fingerprint, a hidden setting the settings page saves beside
/// the secret and the edge reads from Kustomer (never from a caller) to know whom to trust.
pub const APP_SECRET_FINGERPRINT: &str = "appSecretFingerprint";
/// What the fingerprint is an HMAC-SHA256 of, keyed with the secret (`edge::trust`; the
/// settings page computes the same with WebCrypto).
pub const APP_SECRET_FINGERPRINT_CONTEXT: &str = "stella-connect app secret fingerprint v1";

/// Default Kustomer API URL (the US region; the org's own host routes anywhere).
pub const DEFAULT_KUSTOMER_API_URL: &str = "https://api.kustomerapp.com";
/// Default Stella API URL, the one the vendor's integration guides use.
pub const DEFAULT_STELLA_API_URL: &str = "https://api.stellaconnect.net";
/// Default delay: one day, as in Kustomer's own Stella app.
pub const DEFAULT_SECONDS_UNTIL_SEND: u32 = 86_400;
/// Longest delay accepted: 30 days.
pub const MAX_SECONDS_UNTIL_SEND: u32 = 2_592_000;
/// The longest "Resurvey after" accepted: ten years.
pub const MAX_RESURVEY_AFTER_DAYS: u32 = 3650;
/// Default share of the org's Kustomer API budget: half, so the org's other integrations keep
/// the other half.
pub const DEFAULT_KUSTOMER_BUDGET_SHARE: u32 = 50;
/// Default channel map: Kustomer calls are Stella's `phone` channel.
pub const DEFAULT_CHANNEL_MAP: &str = "voice=phone";

const MAX_KEY_CHARS: usize = 4096;
const MAX_TEXT_CHARS: usize = 200;
/// The most pairs a brand or language map holds.
pub const MAX_PAIRS: usize = 100;
/// The most custom properties an admin may add (the two fixed ones come on top).
pub const MAX_CUSTOM_PROPERTIES: usize = 20;
/// The longest custom property or attribute name.
pub const MAX_PROPERTY_NAME_CHARS: usize = 100;
/// The prefix of the custom properties the app always sends; admins' names may not take it.
pub const RESERVED_PROPERTY_PREFIX: &str = "kustomer_";

/// Every setting, in the order the settings page shows them.
pub const FIELDS: &[FieldDef] = &[
    FieldDef {
        key: STELLA_API_KEY,
        label: "Stella Connect API key",
        help: "From Agent Connect (Stella Connect) settings. Start with the Test key, then swap in the Production key.",
        kind: FieldKind::Secret,
        required: true,
        default: None,
        advanced: false,
        hidden: false,
    },
    FieldDef {
        key: STELLA_API_SECRET,
        label: "Stella Connect API secret",
        help: "Optional. In Agent Connect's settings, beside the API keys (Company Info → API). With it, the app reads back whether each survey went out and its rating; without it, nothing is collected.",
        kind: FieldKind::Secret,
        required: false,
        default: Some(""),
        advanced: false,
        hidden: false,
    },
    FieldDef {
        key: KUSTOMER_API_KEY,
        label: "Kustomer API key",
        help: "A Kustomer API key with the roles org.permission.tag.read (or org.admin.tag.read), org.permission.setting.read (the app's link), org.permission.search.create (to find customers deleted in Kustomer) and read access to conversations, customers and users; with the API secret below, also org.permission.conversation.update, to write each survey's outcome onto its conversation.",
        kind: FieldKind::Secret,
        required: true,
        default: None,
        advanced: false,
        hidden: false,
    },
    FieldDef {
        key: KUSTOMER_API_URL,
        label: "Kustomer API URL",
        help: "https://api.kustomerapp.com (US), https://api.prod2.kustomerapp.com (EU), or https://<your org>.api.kustomerapp.com.",
        kind: FieldKind::Url,
        required: true,
        default: Some(DEFAULT_KUSTOMER_API_URL),
        advanced: false,
        hidden: false,
    },
    FieldDef {
        key: KUSTOMER_URL,
        label: "Kustomer URL",
        help: "The address your agents open Kustomer at, such as https://acme.kustomerapp.com. Surveys link back to the conversation there.",
        kind: FieldKind::Url,
        required: true,
        default: None,
        advanced: false,
        hidden: false,
    },
    FieldDef {
        key: SECONDS_UNTIL_SEND,
        label: "Seconds until send",
        help: "How long after a conversation is closed the survey goes out: 0 to 2592000 (30 days). 86400 is one day.",
        kind: FieldKind::Integer,
        required: true,
        default: Some("86400"),
        advanced: false,
        hidden: false,
    },
    FieldDef {
        key: STELLA_API_URL,
        label: "Stella Connect API URL",
        help: "Leave as is unless Agent Connect gave you your own host under stellaconnect.net.",
        kind: FieldKind::Url,
        required: false,
        default: Some(DEFAULT_STELLA_API_URL),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: CHANNEL_MAP,
        label: "Channel names",
        help: "Kustomer channel = Agent Connect channel, separated by commas, such as voice=phone, sms=chat. Channels not listed keep their Kustomer name; voice=phone applies unless you change it.",
        kind: FieldKind::ChannelMap,
        required: false,
        default: Some(DEFAULT_CHANNEL_MAP),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: SURVEYED_CHANNELS,
        label: "Surveyed channels",
        help: "Only these channels get surveys, separated by commas (Kustomer or Agent Connect names). Leave empty to survey every channel.",
        kind: FieldKind::ChannelList,
        required: false,
        default: Some(""),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: BRAND,
        label: "Brand",
        help: "Only for multi-brand Agent Connect accounts: the brand every survey is sent under.",
        kind: FieldKind::Text,
        required: false,
        default: Some(""),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: BRAND_MAP,
        label: "Brand map",
        help: "Only for multi-brand accounts: Kustomer brand = Agent Connect brand, separated by commas, such as Acme Shoes=shoes, Acme Hats=hats. A conversation whose brand is not listed is sent under Brand above; with no Brand set, it gets no survey.",
        kind: FieldKind::Pairs,
        required: false,
        default: Some(""),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: SEND_LANGUAGE,
        label: "Send the conversation's language",
        help: "Only for multi-language Agent Connect accounts: sends the conversation's language, such as en-US.",
        kind: FieldKind::Boolean,
        required: false,
        default: Some("false"),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: LANGUAGE_MAP,
        label: "Language map",
        help: "With the conversation's language sent: language = Agent Connect language, separated by commas, such as en-US=English, fr=French. A bare language (fr) also covers its regions (fr-CA); languages not listed are sent as they are.",
        kind: FieldKind::Pairs,
        required: false,
        default: Some(""),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: CUSTOM_PROPERTIES,
        label: "Custom properties",
        help: "Kustomer attribute = Agent Connect custom property, separated by commas, such as conversation.priority=priority, customer.custom.tierStr=tier (at most 20). Every survey also carries kustomer_org and kustomer_conversation_id.",
        kind: FieldKind::Pairs,
        required: false,
        default: Some(""),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: RESURVEY_AFTER_DAYS,
        label: "Survey a conversation again after (days)",
        help: "A conversation closed again after its survey went out is surveyed again only after this many days. 0 means never: one survey per conversation (for the 90 days the delivery log keeps it).",
        kind: FieldKind::Integer,
        required: false,
        default: Some("0"),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: KUSTOMER_BUDGET_SHARE,
        label: "Share of the Kustomer API budget (%)",
        help: "Kustomer gives each org one API budget a minute, shared by all of its apps and integrations. When many surveys fall due at once, this app spreads them out and uses at most this share of each minute's budget, leaving the rest to the others. 1 to 100; 50 leaves half.",
        kind: FieldKind::Integer,
        required: false,
        default: Some("50"),
        advanced: true,
        hidden: false,
    },
    FieldDef {
        key: APP_SECRET,
        label: "App secret",
        help: "Made by the settings page on the first save, and sent only by this app's workflow and pages: the edge accepts closes, the delivery log and resends only with it.",
        kind: FieldKind::Secret,
        required: false,
        default: None,
        advanced: true,
        hidden: true,
    },
];

/// The header that carries a setting in the app's workflow action: `stellaApiKey` →
/// `x-stella-api-key`. Derived from the settings table, so there is no second list.
pub fn setting_header(key: &str) -> String {
    let mut name = String::from("x-");
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            name.push('-');
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

/// Looks up a field's definition by key.
pub fn field(key: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.key == key)
}

/// An API key. Its `Debug` and `Serialize` print a mask, so a key cannot reach a log, an error
/// or a response by accident; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What a secret prints as.
pub const MASK: &str = "********";

impl Secret {
    /// Wraps a key (no checks: use [`validate_settings`] for input).
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
pub struct ChannelMap(Vec<(String, String)>);

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
pub struct Pairs(Vec<(String, String)>);

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
    written: String,
}

/// The admin's custom properties, in their order, at most [`MAX_CUSTOM_PROPERTIES`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomProperties(Vec<CustomProperty>);

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
}

/// How strict validation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Accept `http://` URLs on loopback hosts (127.0.0.1, localhost, ::1) for every URL field,
    /// for the local sandboxes. Off unless a development setup turns it on explicitly.
    pub allow_loopback: bool,
}

/// Validates a raw settings object (as the form or Kustomer's settings API holds it), returning
/// every field error at once. Unknown keys are ignored; blank values take their defaults.
pub fn validate_settings(
    raw: &Value,
    options: ValidationOptions,
) -> Result<Settings, Vec<FieldError>> {
    let Some(obj) = raw.as_object() else {
        return Err(vec![FieldError::new(
            "",
            Code::InvalidType,
            "Settings must be an object of field values.",
        )]);
    };
    let mut form = Form {
        obj,
        errors: Vec::new(),
    };
    let url = |key, v| url_field(key, v, options);
    let parsed = (
        form.parse(STELLA_API_KEY, secret),
        form.parse(STELLA_API_SECRET, secret),
        form.parse(KUSTOMER_API_KEY, secret),
        form.parse(KUSTOMER_API_URL, url),
        form.parse(KUSTOMER_URL, url),
        form.parse(SECONDS_UNTIL_SEND, seconds_until_send),
        form.parse(STELLA_API_URL, url),
        form.parse(CHANNEL_MAP, channel_map),
        form.parse(SURVEYED_CHANNELS, channel_list),
        form.parse(BRAND, text),
        form.parse(BRAND_MAP, brand_map),
        form.parse(SEND_LANGUAGE, boolean),
        form.parse(LANGUAGE_MAP, language_map),
        form.parse(CUSTOM_PROPERTIES, custom_properties),
        form.parse(RESURVEY_AFTER_DAYS, resurvey_after_days),
        form.parse(KUSTOMER_BUDGET_SHARE, budget_share),
    );
    match parsed {
        (
            Some(sk),
            Some(secret),
            Some(kk),
            Some(kau),
            Some(ku),
            Some(secs),
            Some(sau),
            Some(map),
            Some(list),
            Some(brand),
            Some(brand_map),
            Some(lang),
            Some(language_map),
            Some(custom_properties),
            Some(resurvey),
            Some(share),
        ) => Ok(Settings {
            stella_api_key: sk,
            stella_api_secret: Some(secret).filter(|s| !s.0.is_empty()),
            kustomer_api_key: kk,
            kustomer_api_url: kau,
            kustomer_url: ku,
            seconds_until_send: secs,
            stella_api_url: sau,
            channel_map: map,
            surveyed_channels: list,
            brand,
            brand_map,
            send_language: lang,
            language_map,
            custom_properties,
            resurvey_after_days: resurvey,
            kustomer_budget_share: share,
        }),
        _ => Err(form.errors),
    }
}

/// The roles that let a Kustomer key read tag names; one of them is needed.
pub const TAG_READ_ROLES: [&str; 2] = ["org.permission.tag.read", "org.admin.tag.read"];

/// Checks the roles Kustomer reports for the key (`GET /v1/auth/tokens/current`): without a
/// tag-read role, surveys would go out without their tags.
pub fn check_kustomer_roles<S: AsRef<str>>(roles: &[S]) -> Result<(), FieldError> {
    if roles.iter().any(|r| TAG_READ_ROLES.contains(&r.as_ref())) {
        Ok(())
    } else {
        Err(FieldError::new(
            KUSTOMER_API_KEY,
            Code::MissingPermission,
            "This Kustomer API key cannot read tags: create a key with the role org.permission.tag.read (or org.admin.tag.read).",
        ))
    }
}

/// Collects field errors while each field is parsed on its own.
struct Form<'a> {
    obj: &'a serde_json::Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Form<'_> {
    /// Reads a field (its default when blank) and parses it, recording any error.
    fn parse<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&'static str, Value) -> Result<T, FieldError>,
    ) -> Option<T> {
        let def = field(key)?;
        let value = match self.obj.get(key).and_then(non_blank) {
            Some(v) => v,
            None => match def.default {
                Some(d) => Value::String(d.to_owned()),
                None => {
                    let msg = format!("{} is required.", def.label);
                    self.errors.push(FieldError::new(key, Code::Required, msg));
                    return None;
                }
            },
        };
        parse(key, value).map_err(|e| self.errors.push(e)).ok()
    }
}

/// `null` and whitespace-only strings count as "left blank".
fn non_blank(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        other => Some(other.clone()),
    }
}

fn label(key: &str) -> &'static str {
    field(key).map_or("This field", |f| f.label)
}

fn string(key: &str, v: Value) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.trim().to_owned()),
        _ => Err(FieldError::new(
            key,
            Code::InvalidType,
            format!("{} must be text.", label(key)),
        )),
    }
}

fn secret(key: &'static str, v: Value) -> Result<Secret, FieldError> {
    let s = string(key, v)?;
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(
            key,
            Code::InvalidKey,
            format!(
                "{} has spaces or line breaks in it: copy it again, without them.",
                label(key)
            ),
        ));
    }
    if s.chars().count() > MAX_KEY_CHARS {
        return Err(FieldError::new(
            key,
            Code::InvalidKey,
            format!("{} is far too long to be an API key.", label(key)),
        ));
    }
    Ok(Secret(s))
}

fn text(key: &'static str, v: Value) -> Result<Option<String>, FieldError> {
    let s = string(key, v)?;
    if s.chars().count() > MAX_TEXT_CHARS {
        return Err(FieldError::new(
            key,
            Code::TooLong,
            format!("{} can be at most {MAX_TEXT_CHARS} characters.", label(key)),
        ));
    }
    Ok(Some(s).filter(|s| !s.is_empty()))
}

fn boolean(key: &'static str, v: Value) -> Result<bool, FieldError> {
    let parsed = match &v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().filter(|n| *n <= 1).map(|n| n == 1),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Some(true),
            "false" | "off" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| {
        FieldError::new(
            key,
            Code::NotABoolean,
            format!("{} must be on or off.", label(key)),
        )
    })
}

fn seconds_until_send(key: &'static str, v: Value) -> Result<u32, FieldError> {
    whole_number(
        key,
        v,
        MAX_SECONDS_UNTIL_SEND,
        "seconds, such as 86400 for one day",
        "30 days",
    )
}

fn resurvey_after_days(key: &'static str, v: Value) -> Result<u32, FieldError> {
    whole_number(
        key,
        v,
        MAX_RESURVEY_AFTER_DAYS,
        "days, such as 30 (0 for never)",
        "ten years",
    )
}

fn budget_share(key: &'static str, v: Value) -> Result<u32, FieldError> {
    match whole_number(key, v, 100, "percent, such as 50", "all of it")? {
        0 => Err(FieldError::new(
            key,
            Code::OutOfRange,
            format!(
                "{} must be between 1 and 100: with 0, no survey could go out.",
                label(key)
            ),
        )),
        n => Ok(n),
    }
}

/// A whole number from 0 to `max`, given as a number or as text.
fn whole_number(
    key: &'static str,
    v: Value,
    max: u32,
    unit: &str,
    max_words: &str,
) -> Result<u32, FieldError> {
    let not_integer = || {
        FieldError::new(
            key,
            Code::NotAnInteger,
            format!("{} must be a whole number of {unit}.", label(key)),
        )
    };
    let n: i128 = match &v {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into(),
            (_, Some(u), _) => u.into(),
            // 900.0 is a whole number; 1e30 is one too, and simply out of range.
            (_, _, Some(f)) if f.fract() == 0.0 && f.is_finite() => {
                if f.abs() > 1e18 {
                    i128::MAX
                } else {
                    f as i128
                }
            }
            _ => return Err(not_integer()),
        },
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_integer());
            }
            // Only digits remain, so the one failure left is overflow: out of range.
            s.parse::<i128>().unwrap_or(i128::MAX)
        }
        _ => return Err(not_integer()),
    };
    u32::try_from(n).ok().filter(|n| *n <= max).ok_or_else(|| {
        FieldError::new(
            key,
            Code::OutOfRange,
            format!("{} must be between 0 and {max} ({max_words}).", label(key)),
        )
    })
}

/// Splits a form value such as `"a=b, c=d"` or `"email\nchat"` into trimmed, non-empty items.
fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split([',', '\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

const MAX_CHANNEL_CHARS: usize = 100;

fn channel_name(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.chars().count() <= MAX_CHANNEL_CHARS
        && !s.chars().any(|c| c.is_control() || c == '=');
    ok.then(|| s.to_owned())
}

fn channel_map(key: &'static str, v: Value) -> Result<ChannelMap, FieldError> {
    let bad = |what: &str| {
        FieldError::new(
            key,
            Code::InvalidChannelMap,
            format!("Write channel names as kustomer=stella pairs separated by commas, such as voice=phone; \"{what}\" is not one."),
        )
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    match v {
        Value::String(s) => {
            for item in items(&s) {
                let (k, st) = item.split_once('=').ok_or_else(|| bad(item))?;
                let pair = channel_name(k)
                    .zip(channel_name(st))
                    .ok_or_else(|| bad(item))?;
                pairs.push(pair);
            }
        }
        Value::Object(map) => {
            for (k, st) in map {
                let pair = st
                    .as_str()
                    .and_then(channel_name)
                    .zip(channel_name(&k))
                    .map(|(s, k)| (k, s));
                pairs.push(pair.ok_or_else(|| bad(&k))?);
            }
        }
        _ => return Err(bad("that value")),
    }
    // A Kustomer channel named twice (in any case) keeps its first pair, the one the lookup
    // applies, so that the map as shown is the map applied (found by fuzzing: `s=e,s=c`).
    let mut seen: Vec<String> = Vec::new();
    pairs.retain(|(k, _)| {
        let first = !seen.iter().any(|s| s.eq_ignore_ascii_case(k));
        if first {
            seen.push(k.clone());
        }
        first
    });
    // The admin's pairs win; a default pair applies unless its Kustomer channel was remapped.
    for item in items(DEFAULT_CHANNEL_MAP) {
        if let Some((k, s)) = item.split_once('=') {
            if !pairs.iter().any(|(pk, _)| pk.eq_ignore_ascii_case(k)) {
                pairs.push((k.to_owned(), s.to_owned()));
            }
        }
    }
    Ok(ChannelMap(pairs))
}

/// Reads `name=value` pairs, written as text (`a=b, c=d`) or as an object, each side trimmed
/// and checked by `check`, which says what is wrong with a pair. One copy for every map (a
/// function pointer, not inlined): the pages' Wasm has little room.
#[inline(never)]
fn pairs(
    key: &'static str,
    v: Value,
    code: Code,
    format: &str,
    check: fn(&str, &str) -> Result<(), String>,
) -> Result<Vec<(String, String)>, FieldError> {
    let err = |msg: String| FieldError::new(key, code, msg);
    let raw: Vec<(String, String)> = match &v {
        Value::String(s) => items(s)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_owned(), v.trim().to_owned())),
                None => Err(err(format!("Write {format}; \"{item}\" is not one."))),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(v) => Ok((k.trim().to_owned(), v.trim().to_owned())),
                None => Err(err(format!(
                    "Write {format}; the value for \"{k}\" is not text."
                ))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(err(format!("Write {format}."))),
    };
    for (k, v) in &raw {
        check(k, v).map_err(|why| err(format!("\"{k}={v}\": {why}")))?;
    }
    Ok(raw)
}

/// A name in a pair: not blank, not too long, no control characters or `=`.
fn pair_name(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        Err("a name is missing on one side of the =.".into())
    } else if s.chars().count() > max {
        Err(format!("a name can be at most {max} characters."))
    } else if s.chars().any(|c| c.is_control() || c == '=') {
        Err("a name cannot hold line breaks, tabs or a second =.".into())
    } else {
        Ok(())
    }
}

/// `pairs` without repeated names (any case): the first pair of a name is the one applied.
fn first_of_each(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut seen: Vec<String> = Vec::new();
    pairs.retain(|(k, _)| {
        let first = !seen.iter().any(|s| s.eq_ignore_ascii_case(k));
        if first {
            seen.push(k.clone());
        }
        first
    });
    pairs
}

fn too_many(key: &'static str, n: usize, max: usize) -> Result<(), FieldError> {
    if n > max {
        return Err(FieldError::new(
            key,
            Code::TooMany,
            format!("{} can hold at most {max} pairs; it has {n}.", label(key)),
        ));
    }
    Ok(())
}

fn brand_map(key: &'static str, v: Value) -> Result<Pairs, FieldError> {
    let raw = pairs(
        key,
        v,
        Code::InvalidPairs,
        "brands as kustomer=agent connect pairs separated by commas, such as Acme Shoes=shoes",
        |k, v| pair_name(k, MAX_TEXT_CHARS).and(pair_name(v, MAX_TEXT_CHARS)),
    )?;
    too_many(key, raw.len(), MAX_PAIRS)?;
    Ok(Pairs(first_of_each(raw)))
}

fn language_map(key: &'static str, v: Value) -> Result<Pairs, FieldError> {
    let raw = pairs(
        key,
        v,
        Code::InvalidPairs,
        "languages as language=agent connect language pairs separated by commas, such as en-US=English",
        |k, v| {
            crate::kustomer::language_tag(k)
                .map(|_| ())
                .ok_or_else(|| format!("{k} is not a language such as en, en-US or fr_ca."))
                .and(pair_name(v, MAX_TEXT_CHARS))
        },
    )?;
    too_many(key, raw.len(), MAX_PAIRS)?;
    // Kept as tags (`fr_ca` → `fr-CA`), the form conversations' languages are sent in.
    let tagged = raw
        .into_iter()
        .filter_map(|(k, v)| Some((crate::kustomer::language_tag(&k)?, v)))
        .collect();
    Ok(Pairs(first_of_each(tagged)))
}

/// Reads `conversation.<name>`, `customer.<name>` or either with `custom.` before the name.
fn attribute_path(s: &str) -> Option<(Source, bool, &str)> {
    let (record, rest) = s.split_once('.')?;
    let source = match record {
        "conversation" => Source::Conversation,
        "customer" => Source::Customer,
        _ => return None,
    };
    let (custom, name) = match rest.strip_prefix("custom.") {
        Some(name) => (true, name),
        None => (false, rest),
    };
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_PROPERTY_NAME_CHARS
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '.');
    ok.then_some((source, custom, name))
}

fn custom_properties(key: &'static str, v: Value) -> Result<CustomProperties, FieldError> {
    let raw = pairs(
        key,
        v,
        Code::InvalidCustomProperty,
        "attribute=property pairs separated by commas, such as conversation.priority=priority or customer.custom.tierStr=tier",
        |k, v| {
            if attribute_path(k).is_none() {
                return Err(format!("{k} is not an attribute such as conversation.priority, conversation.custom.orderIdStr or customer.custom.tierStr."));
            }
            pair_name(v, MAX_PROPERTY_NAME_CHARS)?;
            if v.get(..RESERVED_PROPERTY_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PROPERTY_PREFIX)) {
                return Err(format!("property names starting with {RESERVED_PROPERTY_PREFIX} are the app's own (kustomer_org, kustomer_conversation_id)."));
            }
            Ok(())
        },
    )?;
    too_many(key, raw.len(), MAX_CUSTOM_PROPERTIES)?;
    let mut properties: Vec<CustomProperty> = Vec::new();
    for (written, property) in raw {
        if properties.iter().any(|p| p.property == property) {
            return Err(FieldError::new(
                key,
                Code::InvalidCustomProperty,
                format!(
                    "The property {property} is named twice: each property takes one attribute."
                ),
            ));
        }
        if let Some((source, custom, attribute)) = attribute_path(&written) {
            properties.push(CustomProperty {
                source,
                custom,
                attribute: attribute.to_owned(),
                property,
                written: written.clone(),
            });
        }
    }
    Ok(CustomProperties(properties))
}

fn channel_list(key: &'static str, v: Value) -> Result<Vec<String>, FieldError> {
    let bad = || {
        FieldError::new(
            key,
            Code::InvalidChannelList,
            "List channel names separated by commas, such as email, chat, or leave it empty to survey every channel.",
        )
    };
    let names: Vec<String> = match v {
        Value::String(s) => items(&s)
            .map(|i| channel_name(i).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Value::Array(a) => a
            .iter()
            .map(|i| i.as_str().and_then(channel_name).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    let mut unique: Vec<String> = Vec::new();
    for n in names {
        if !unique.iter().any(|u| u.eq_ignore_ascii_case(&n)) {
            unique.push(n);
        }
    }
    Ok(unique)
}

/// Which hosts a URL field accepts outside local development.
fn host_allowed(key: &str, host: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    match key {
        KUSTOMER_API_URL => {
            host == "api.kustomerapp.com"
                || host
                    .strip_prefix("api.prod")
                    .and_then(|r| r.strip_suffix(".kustomerapp.com"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                || host
                    .strip_suffix(".api.kustomerapp.com")
                    .is_some_and(label_ok)
        }
        KUSTOMER_URL => host
            .strip_suffix(".kustomerapp.com")
            .is_some_and(|org| label_ok(org) && org != "api"),
        STELLA_API_URL => {
            host == "stellaconnect.net"
                || host
                    .strip_suffix(".stellaconnect.net")
                    .is_some_and(|sub| sub.split('.').all(label_ok))
        }
        _ => false,
    }
}

fn example(key: &str) -> &'static str {
    match key {
        KUSTOMER_API_URL => DEFAULT_KUSTOMER_API_URL,
        KUSTOMER_URL => "https://acme.kustomerapp.com",
        _ => DEFAULT_STELLA_API_URL,
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a URL field into a base URL without a trailing slash.
fn url_field(
    key: &'static str,
    v: Value,
    options: ValidationOptions,
) -> Result<String, FieldError> {
    let s = string(key, v)?;
    let err = |code, msg: String| FieldError::new(key, code, msg);
    let url = Url::parse(&s).map_err(|_| {
        err(
            Code::InvalidUrl,
            format!(
                "{} must be a full address, such as {}.",
                label(key),
                example(key)
            ),
        )
    })?;
    let local = options.allow_loopback && is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        "http" => {
            return Err(err(
                Code::InsecureUrl,
                format!(
                    "{} must start with https://, such as {}.",
                    label(key),
                    example(key)
                ),
            ));
        }
        _ => {
            return Err(err(
                Code::InvalidUrl,
                format!(
                    "{} must start with https://, such as {}.",
                    label(key),
                    example(key)
                ),
            ))
        }
    }
    // Local sandbox URLs may carry a port and a path; production ones are just the address.
    let extra = !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || (!local && (url.port().is_some() || url.path() != "/"));
    if extra {
        return Err(err(
            Code::InvalidUrl,
            format!(
                "{} must be just the address, such as {}, with nothing after it.",
                label(key),
                example(key)
            ),
        ));
    }
    if !local {
        let host = url.host_str().unwrap_or_default();
        if !host_allowed(key, host) {
            return Err(err(
                Code::HostNotAllowed,
                format!(
                    "{} must be an address such as {}; {host} is not one.",
                    label(key),
                    example(key)
                ),
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Checks a Kustomer API URL on its own, for calls that carry only a key and a URL.
pub fn kustomer_api_url(value: &str, options: ValidationOptions) -> Result<String, FieldError> {
    url_field(KUSTOMER_API_URL, Value::String(value.to_owned()), options)
}
