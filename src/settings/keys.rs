//! The settings' keys, defaults and bounds: the names other modules (the edge, the manifest,
//! the tests) refer to a setting by.

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

/// The longest API key accepted.
pub(super) const MAX_KEY_CHARS: usize = 4096;
/// The longest text (a brand, a name in a pair) accepted.
pub(super) const MAX_TEXT_CHARS: usize = 200;
/// The most pairs a brand or language map holds.
pub const MAX_PAIRS: usize = 100;
/// The most custom properties an admin may add (the two fixed ones come on top).
pub const MAX_CUSTOM_PROPERTIES: usize = 20;
/// The longest custom property or attribute name.
pub const MAX_PROPERTY_NAME_CHARS: usize = 100;
/// The prefix of the custom properties the app always sends; admins' names may not take it.
pub const RESERVED_PROPERTY_PREFIX: &str = "kustomer_";
