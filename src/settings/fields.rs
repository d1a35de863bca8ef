//! The settings table: every setting's key, label, help, kind, default and rule, in the order
//! the settings page shows them. The page, the app manifest and validation all read [`FIELDS`].

use super::keys::*;
use super::lists::{BRANDS, LANGUAGES};
use super::rule::{Bounds, Rule};
use super::url::{KUSTOMER_API, KUSTOMER_ORG, STELLA_API};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

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
    /// How its value is read and checked, and where it lands in [`super::Settings`].
    pub rule: Rule,
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
        rule: Rule::Secret(|s, v| s.stella_api_key = v),
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
        rule: Rule::Secret(|s, v| s.stella_api_secret = Some(v).filter(|v| !v.expose().is_empty())),
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
        rule: Rule::Secret(|s, v| s.kustomer_api_key = v),
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
        rule: Rule::Url(KUSTOMER_API, |s, v| s.kustomer_api_url = v),
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
        rule: Rule::Url(KUSTOMER_ORG, |s, v| s.kustomer_url = v),
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
        rule: Rule::Number(
            Bounds {
                max: MAX_SECONDS_UNTIL_SEND,
                unit: "seconds, such as 86400 for one day",
                max_words: "30 days",
                zero: None,
            },
            |s, n| s.seconds_until_send = n,
        ),
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
        rule: Rule::Url(STELLA_API, |s, v| s.stella_api_url = v),
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
        rule: Rule::ChannelMap(|s, v| s.channel_map = v),
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
        rule: Rule::ChannelList(|s, v| s.surveyed_channels = v),
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
        rule: Rule::Text(|s, v| s.brand = v),
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
        rule: Rule::Pairs(BRANDS, |s, v| s.brand_map = v),
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
        rule: Rule::Flag(|s, v| s.send_language = v),
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
        rule: Rule::Pairs(LANGUAGES, |s, v| s.language_map = v),
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
        rule: Rule::CustomProperties(|s, v| s.custom_properties = v),
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
        rule: Rule::Number(
            Bounds {
                max: MAX_RESURVEY_AFTER_DAYS,
                unit: "days, such as 30 (0 for never)",
                max_words: "ten years",
                zero: None,
            },
            |s, n| s.resurvey_after_days = n,
        ),
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
        rule: Rule::Number(
            Bounds {
                max: 100,
                unit: "percent, such as 50",
                max_words: "all of it",
                zero: Some("with 0, no survey could go out"),
            },
            |s, n| s.kustomer_budget_share = n,
        ),
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
        rule: Rule::Apart,
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
