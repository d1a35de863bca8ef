//! The WebAssembly boundary: every `#[wasm_bindgen]` export, and every conversion between
//! JavaScript values and Rust. Inputs may be objects or JSON text; outputs are plain objects
//! (never `Map`s). No export throws on bad input: errors come back as data with a `code`.

use crate::api::{self, Options};
use crate::error::{InputError, InputErrorCode};
use crate::timestamp;
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;

/// The TypeScript types added to the package's `.d.ts`. Public so that host tests can check
/// `RawSettings` and `Settings` against the settings table (`tests/fields.rs`); the
/// `typescript_custom_section` below consumes its own item, so it points here.
pub const TYPES: &str = r#"
/** Raw settings as the form or Kustomer's settings API holds them; blanks take defaults. */
export interface RawSettings {
  stellaApiKey?: string; stellaApiSecret?: string; kustomerApiKey?: string; kustomerApiUrl?: string; kustomerUrl?: string;
  secondsUntilSend?: number | string; stellaApiUrl?: string;
  channelMap?: string | Record<string, string>; surveyedChannels?: string | string[];
  brand?: string; brandMap?: string | Record<string, string>; sendLanguage?: boolean | string;
  languageMap?: string | Record<string, string>; customProperties?: string | Record<string, string>;
  resurveyAfterDays?: number | string;
  kustomerBudgetShare?: number | string;
  /** Made by the settings page, carried by the app's workflow and pages only. */ appSecret?: string;
}
/** Validated settings; the keys and the API secret are masked as "********". */
export interface Settings {
  stellaApiKey: string; stellaApiSecret?: string; kustomerApiKey: string; kustomerApiUrl: string; kustomerUrl: string;
  secondsUntilSend: number; stellaApiUrl: string; channelMap: Record<string, string>;
  surveyedChannels: string[]; brand?: string; brandMap: Record<string, string>; sendLanguage: boolean;
  languageMap: Record<string, string>; customProperties: Record<string, string>; resurveyAfterDays: number;
  kustomerBudgetShare: number;
}
/** Where the app's link lives in the settings, and what its fingerprint is an HMAC of. */
export interface AppLink { secretSetting: string; fingerprintSetting: string; fingerprintContext: string }
export interface CoreOptions { /** Accept http:// loopback URLs, for local sandboxes only. */ allowLoopback?: boolean }
export interface FieldError { field: string; code: string; message: string }
export interface InputError { code: "malformed_json" | "invalid_shape" | "too_large" | "invalid_settings" | "invalid_id"; path?: string; message: string; fields?: FieldError[] }
export type ValidateSettingsResult = { ok: true; settings: Settings } | { ok: false; errors: FieldError[] };
export type PlanResult =
  | { action: "schedule"; conversationId: string; org?: string; closedAt: string; sendAt: string }
  | { action: "ignore"; reason: "not_a_conversation_update" | "not_closed" | "status_unchanged" | "close_in_future"; message: string }
  | { action: "reject"; error: InputError };
export interface SurveyInput {
  settings: RawSettings; conversation: unknown; customer?: unknown; user?: unknown; tags?: unknown;
  /** The body of `GET /v1/brands/{id}` for the brand `recordsToRead` names. */ brand?: unknown;
  /** The org's id, when known: sent as the `kustomer_org` custom property. */ org?: string; options?: CoreOptions;
  /** `explainConversation` only: the conversation's delivery log entry (`list-deliveries`), once read. */ delivery?: { state: string; message?: string | null } | null;
}
export interface StellaRequest {
  method: "POST"; url: string; headers: Record<string, string>;
  body: { channel: string; customer: { name?: string; email: string }; employee: { email: string };
    ext_interaction_id: string; external_url?: string; tags?: string[]; do_not_send: boolean; brand?: string; language?: string;
    custom_properties?: Record<string, string> };
}
export interface Skip { code: string; message: string; fields?: FieldError[] }
export interface FieldDef {
  key: string; label: string; help: string; required: boolean; default?: string; advanced: boolean;
  /** Never drawn: the page fills it in itself (the app secret). */ hidden: boolean;
  /** The header that carries the setting to the edge, such as "x-stella-api-key". */ header: string;
  kind: "secret" | "url" | "integer" | "text" | "boolean" | "channelMap" | "channelList" | "pairs";
}
export interface CardView {
  /** `sent`, `not_sent` and `failed` come from what happened (the outcome, then the log), after the close. */
  outlook: "scheduled" | "due" | "when_closed" | "do_not_send" | "no_survey" | "not_configured" | "sent" | "not_sent" | "failed";
  headline: string; detail: string; reason?: Skip;
  survey?: { customerName?: string; customerEmail: string; agentEmail: string; channel: string };
  /** RFC 3339, closed conversations only. */ sendAt?: string; delay: string;
  /** The rule for closing it again after its survey, in words. */ resurvey?: string;
  doNotSend: boolean; /** The `custom` attributes the "do not send" switch writes. */ doNotSendKeys: string[];
  /** What Agent Connect reported for this conversation's survey, when the edge has written it. */ outcome?: CardOutcome;
}
export type ExplainResult = { ok: true; card: CardView } | { ok: false; error: InputError };
/** The ids of the Kustomer records the decision reads: the agent is the user to read, the brand the one to read at `/v1/brands/{id}`. */
export type RecordsResult = { ok: true; customer?: string; agent?: string; tags: string[]; brand: string | null;
  /** The channel the survey is about: the first that is not blank. */ channel?: string;
  /** Where to read each record under the Kustomer API URL (the edge reads the same ones). */ paths: { user?: string; tags?: string; brand?: string } } | { ok: false; error: InputError };
/** What Agent Connect did with a survey request (its `request_delivery_status`). */
export type DeliveryStatus = "sent" | "suppressed" | "do_not_send" | "unsubscribed" | "rejected" | "soft_bounce" | "hard_bounce" | "unknown";
/** One Data Return record's outcome; times are RFC 3339 (UTC). */
export interface SurveyOutcome {
  conversationId: string; uuid: string; deliveryStatus: DeliveryStatus;
  /** The vendor's text, for an unknown status. */ deliveryStatusText?: string;
  /** The agent's star rating, 1 to 5. */ rating?: number; comment?: string;
  sentAt?: string; respondedAt?: string; isRecovery: boolean;
}
export type OutcomeResult = { ok: true; outcome: SurveyOutcome } | { ok: false; error: InputError };
/** The conversation's survey outcome, from its app attributes: `lead`, then `at` as a time, then `tail`. */
export interface CardOutcome {
  status: DeliveryStatus; lead: string; at?: string; tail: string;
  rating?: number; /** Decoration: hide it from screen readers, `ratingText` says it. */ stars?: string; ratingText?: string; comment?: string;
}
/** What the pages read instead of copies: the mask Kustomer answers for a saved secret, the
 * settings each page command leaves out and the keys it needs, and each kind's saved type. */
export interface PageModel {
  mask: string; /** A command carries every setting but those it leaves out. */ commands: Record<string, { needs: string[]; leavesOut: string[] }>;
  savedTypes: Record<FieldDef["kind"], "secret" | "number" | "boolean" | "string">;
}
export type BuildResult = { ok: true; request: StellaRequest } | { ok: false; skip: Skip } | { ok: false; error: InputError };
"#;

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_SECTION: &str = TYPES;

/// Reads a JavaScript value as JSON: objects are serialized by `JSON.stringify`, strings are
/// parsed as JSON text, `undefined` and `null` are `null`.
fn json_input(value: &JsValue) -> Result<Value, InputError> {
    if value.is_undefined() || value.is_null() {
        return Ok(Value::Null);
    }
    if let Some(text) = value.as_string() {
        return crate::json::from_json(&text);
    }
    let text = js_sys::JSON::stringify(value).map_err(|_| {
        InputError::new(
            InputErrorCode::InvalidShape,
            "",
            "The value cannot be read as JSON (a cycle or a BigInt).",
        )
    })?;
    match JsValue::from(text).as_string() {
        Some(text) => crate::json::from_json(&text),
        None => Ok(Value::Null), // functions and symbols stringify to undefined
    }
}

/// Converts a result to a plain JavaScript object. Going through JSON text reuses serde_json's
/// serializer, which the module needs anyway, instead of linking a second one (~25 KB).
fn js_output<T: Serialize>(value: &T) -> JsValue {
    js_parse(serde_json::to_string(value))
}

/// [`js_output`]'s second half, kept out of line: one copy instead of one per output type.
#[inline(never)]
fn js_parse(text: serde_json::Result<String>) -> JsValue {
    text.map_err(|e| JsValue::from(js_sys::Error::new(&e.to_string())))
        .and_then(|text| js_sys::JSON::parse(&text))
        .unwrap_or_else(|e| e)
}

fn options(value: &JsValue) -> Result<Options, InputError> {
    Options::parse(&json_input(value)?)
}

/// Validates the settings form; every field error comes back at once.
#[wasm_bindgen(js_name = validateSettings, unchecked_return_type = "ValidateSettingsResult")]
pub fn validate_settings(
    #[wasm_bindgen(unchecked_param_type = "RawSettings | string")] raw: JsValue,
    #[wasm_bindgen(unchecked_param_type = "CoreOptions | undefined")] options_: JsValue,
) -> JsValue {
    let result = json_input(&raw).and_then(|raw| Ok((raw, options(&options_)?)));
    match result {
        Ok((raw, opts)) => js_output(&api::validate_settings(&raw, opts)),
        Err(e) => js_output(&api::Validated::Invalid {
            ok: false,
            errors: vec![crate::error::FieldError {
                field: String::new(),
                code: crate::FieldErrorCode::InvalidType,
                message: e.message,
            }],
        }),
    }
}

/// Plans a survey from a `kustomer.conversation.update` event: schedule, ignore, or reject.
#[wasm_bindgen(js_name = planConversationEvent, unchecked_return_type = "PlanResult")]
pub fn plan_conversation_event(
    #[wasm_bindgen(unchecked_param_type = "RawSettings | string")] raw_settings: JsValue,
    #[wasm_bindgen(unchecked_param_type = "unknown")] event: JsValue,
    #[wasm_bindgen(unchecked_param_type = "CoreOptions | undefined")] options_: JsValue,
) -> JsValue {
    let now = timestamp::from_millis(js_sys::Date::now());
    let inputs =
        json_input(&raw_settings).and_then(|s| Ok((s, json_input(&event)?, options(&options_)?)));
    match inputs {
        Ok((settings, event, opts)) => {
            js_output(&api::plan_conversation_event(&settings, &event, opts, now))
        }
        Err(error) => js_output(&api::Planned::Reject {
            action: "reject",
            error,
        }),
    }
}

/// Decides and builds the Stella request from the settings and Kustomer's API responses.
/// The `x-api-key` header is masked: the request is for showing; the edge sends it from Rust.
#[wasm_bindgen(js_name = buildSurveyRequest, unchecked_return_type = "BuildResult")]
pub fn build_survey_request(
    #[wasm_bindgen(unchecked_param_type = "SurveyInput | string")] input: JsValue,
) -> JsValue {
    match json_input(&input) {
        Ok(input) => js_output(&api::build_survey_request(&input)),
        Err(error) => js_output(&api::Built::Error { ok: false, error }),
    }
}

/// What the agent's card shows: whether a survey will go out, to whom and when, or why not.
/// Same input as `buildSurveyRequest`; an open conversation is judged as if closed now.
#[wasm_bindgen(js_name = explainConversation, unchecked_return_type = "ExplainResult")]
pub fn explain_conversation(
    #[wasm_bindgen(unchecked_param_type = "SurveyInput | string")] input: JsValue,
) -> JsValue {
    let now = timestamp::from_millis(js_sys::Date::now());
    match json_input(&input) {
        Ok(input) => js_output(&api::explain_conversation(&input, now)),
        Err(error) => js_output(&api::Explained::Error { ok: false, error }),
    }
}

/// Which Kustomer records the decision reads for a conversation (the body of
/// `GET /v1/conversations/{id}`, as `explainConversation` takes it): its customer, the agent
/// and the tags, by id. The pages fetch exactly these.
#[wasm_bindgen(js_name = recordsToRead, unchecked_return_type = "RecordsResult")]
pub fn records_to_read(
    #[wasm_bindgen(unchecked_param_type = "unknown")] conversation: JsValue,
) -> JsValue {
    match json_input(&conversation) {
        Ok(conversation) => js_output(&api::records_to_read(&conversation)),
        Err(error) => js_output(&api::ToRead::Error { ok: false, error }),
    }
}

/// What became of a survey request: one record of Agent Connect's Data Return API
/// (`GET /v2/data`) read into its delivery status, rating, comment and times.
#[wasm_bindgen(js_name = readSurveyOutcome, unchecked_return_type = "OutcomeResult")]
pub fn read_survey_outcome(
    #[wasm_bindgen(unchecked_param_type = "unknown")] record: JsValue,
) -> JsValue {
    match json_input(&record) {
        Ok(record) => js_output(&api::read_survey_outcome(&record)),
        Err(error) => js_output(&api::OutcomeRead::Error { ok: false, error }),
    }
}

/// The app's link as the settings page saves it: the app secret's and its fingerprint's
/// setting names, and the text the fingerprint is an HMAC-SHA256 of, keyed with the secret
/// (the page computes it with WebCrypto; the edge with `edge::trust::fingerprint`).
#[wasm_bindgen(js_name = appLink, unchecked_return_type = "AppLink")]
pub fn app_link() -> JsValue {
    js_output(&serde_json::json!({
        "secretSetting": crate::settings::APP_SECRET,
        "fingerprintSetting": crate::settings::APP_SECRET_FINGERPRINT,
        "fingerprintContext": crate::settings::APP_SECRET_FINGERPRINT_CONTEXT,
    }))
}

/// Every setting in page order, with its label, help text, default and kind: the settings
/// page draws its form from this, so the core stays the one source of them.
#[wasm_bindgen(js_name = settingsFields, unchecked_return_type = "FieldDef[]")]
pub fn settings_fields() -> JsValue {
    js_output(&crate::settings::FIELDS)
}

/// What the pages read from the core instead of keeping copies: the mask, each page command's
/// settings and needed keys, and each kind of setting's saved type.
#[wasm_bindgen(js_name = pageModel, unchecked_return_type = "PageModel")]
pub fn page_model() -> JsValue {
    js_sys::JSON::parse(crate::page_model::PAGE_MODEL_JSON).unwrap_or_else(|e| e)
}

/// The edge's TypeScript types (its `.d.ts`, with the `edge` feature): here, outside the
/// feature, so that host tests can check `EdgeBindings` against what `Config` reads
/// (`tests/fields.rs`).
pub const EDGE_TYPES: &str = r#"
/** An answer of the edge: status, the body as JSON text, and Retry-After seconds on a 429. */
export interface EdgeReply { status: number; body: string; retryAfter?: number }
/** The worker's bindings the edge reads (all text; unset or null means the default). */
export interface EdgeBindings {
  SETTINGS_KEY?: string | null; SETTINGS_KEY_PREVIOUS?: string | null; ALLOW_LOOPBACK?: string | null;
  JURISDICTIONS?: string | null;
  RETRY_BASE_MS?: string | null; CACHE_MS?: string | null; LEASE_MS?: string | null;
  RETENTION_DAYS?: string | null; KEY_CHECKS_PER_MINUTE?: string | null;
  OUTCOME_POLL_MS?: string | null; LOG_READS_PER_KEY_PER_MINUTE?: string | null;
  LOG_READS_PER_ORG_PER_MINUTE?: string | null; FORGET_SWEEP_MS?: string | null;
  SUBREQUESTS_PER_INVOCATION?: string | null; PERSONAL_DATA_DAYS?: string | null;
  STORAGE_CEILING_BYTES?: string | null;
}
"#;

#[cfg(feature = "edge")]
pub mod edge;
