//! What the fuzz targets feed the core and the invariants they check. Each entry point takes
//! the fuzzer's bytes and panics when an invariant fails, so libFuzzer records the input as a
//! crash. The main crate's `tests/fuzz_regressions.rs` includes this file and replays the seeds
//! and every recorded crash through the same functions under `cargo test`, on stable.
//!
//! Invariants, on top of "nothing panics":
//! - every answer serializes to a JSON object of the documented shape: `ok` (a bool) for
//!   `validateSettings`, `buildSurveyRequest` and `explainConversation`, `action` for
//!   `planConversationEvent`, with stable snake_case codes;
//! - no answer, serialized or `Debug`-printed, contains an API key ([`STELLA_KEY`],
//!   [`KUSTOMER_KEY`]) unless the fuzzed input itself has that text elsewhere;
//! - the parsers and the operations agree: an operation refuses an input exactly when the
//!   parser of that part refuses it, at the same path;
//! - valid settings re-validate to the same settings (normalizing is idempotent), and a built
//!   body holds no `null` and no `""`, at most 20 tags of at most 2,000 characters;
//! - a survey outcome has a rating from 1 to 5 or none, normalized times, reads back from its
//!   exported shape, and what the edge writes from it the card reads back.

use serde::Serialize;
use serde_json::{json, Value};
use stella_connect::api::{self, Options};
use stella_connect::error::InputError;
use stella_connect::kustomer::{self, CONVERSATION_UPDATE};
use stella_connect::settings::{self, Settings, ValidationOptions, FIELDS, MASK};
use stella_connect::stella::{MAX_TAGS, MAX_TAG_CHARS};
use stella_connect::survey_outcome::{self, DeliveryStatus, SurveyOutcome};
use stella_connect::timestamp::{self, Instant};

/// The Stella key in the targets' fixed settings; must never appear in an answer.
pub const STELLA_KEY: &str = "fuzz-stella-key-123";
/// The Kustomer key in the targets' fixed settings; must never appear in an answer.
pub const KUSTOMER_KEY: &str = "fuzz-kustomer-key-456";
/// The delay in the fixed settings.
pub const SECONDS_UNTIL_SEND: i64 = 900;
/// The Stella URL the fixed settings resolve to.
pub const STELLA_REQUESTS_URL: &str = "https://api.stellaconnect.net/v1/requests";

/// Valid settings with the fixed keys.
pub fn fixed_settings() -> Value {
    json!({
        "stellaApiKey": STELLA_KEY,
        "kustomerApiKey": KUSTOMER_KEY,
        "kustomerApiUrl": "https://api.kustomerapp.com",
        "kustomerUrl": "https://acme.kustomerapp.com",
        "secondsUntilSend": SECONDS_UNTIL_SEND,
    })
}

/// The clock the targets pass as "now": 2026-11-20T14:03:11.401Z, the fixtures' close time.
pub fn now() -> Instant {
    timestamp::parse("2026-11-20T14:03:11.401Z").expect("a valid timestamp")
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("the fixtures are JSON")
}

/// `{settings, conversation, customer, user, tags}` from the fixtures and the fixed settings:
/// an input that builds a request.
pub fn survey_input() -> Value {
    json!({
        "settings": fixed_settings(),
        "conversation": fixture(include_str!("../../tests/fixtures/kustomer/conversation.json")),
        "customer": fixture(include_str!("../../tests/fixtures/kustomer/customer.json")),
        "user": fixture(include_str!("../../tests/fixtures/kustomer/user.json")),
        "tags": fixture(include_str!("../../tests/fixtures/kustomer/tags.json")),
    })
}

// ---------------------------------------------------------------------------------------------
// The targets.

/// `settings`: the bytes as text (UTF-8, lossy), parsed as JSON and validated as a settings
/// object, also with the fixed keys put in; and the text itself as a JSON string, both as the
/// whole settings and as the value of each field of otherwise valid settings. An odd first
/// byte (`{`, `[`, tab) turns on `allowLoopback`; an even one (space, newline, `"`) leaves
/// it off.
pub fn settings(data: &[u8]) {
    let options = Options {
        allow_loopback: data.first().is_some_and(|b| b & 1 == 1),
    };
    let text = String::from_utf8_lossy(data).into_owned();

    let as_string = Value::String(text.clone());
    let out = check_validated(&as_string, options, &as_string);
    assert_eq!(out["ok"], false, "a string is not a settings object: {out}");
    for field in FIELDS {
        let mut raw = fixed_settings();
        raw[field.key] = as_string.clone();
        check_validated(&raw, options, &as_string);
    }

    if let Some(value) = parse(data) {
        let supplied = without_keys(&value);
        check_validated(&value, options, &supplied);
        if let Value::Object(map) = &value {
            let mut with_keys = map.clone();
            with_keys.insert(settings::STELLA_API_KEY.into(), STELLA_KEY.into());
            with_keys.insert(settings::KUSTOMER_API_KEY.into(), KUSTOMER_KEY.into());
            check_validated(&Value::Object(with_keys), options, &supplied);
        }
    }
}

/// `event`: the bytes as a JSON event, planned with the fixed settings and parsed alone.
pub fn event(data: &[u8]) {
    let Some(value) = parse(data) else { return };
    let parsed = kustomer::parse_event(&value);
    if let Err(e) = &parsed {
        check_input_error(e);
    }
    let planned =
        api::plan_conversation_event(&fixed_settings(), &value, Options::default(), now());
    let out = answer(&planned, &value);
    match (out["action"].as_str(), &parsed) {
        (Some("reject"), Err(e)) => {
            let error = &out["error"];
            assert_eq!(error["code"], "invalid_shape", "{out}");
            assert_eq!(error["path"], within("event", &e.path), "{out}");
            assert_eq!(error["message"], e.message.as_str(), "{out}");
        }
        (Some("ignore"), Ok(_)) => {
            assert!(stable_code(&out["reason"]), "{out}");
            assert!(non_empty(&out["message"]), "{out}");
        }
        (Some("schedule"), Ok(event)) => {
            assert_eq!(event.name, CONVERSATION_UPDATE, "{out}");
            assert!(event.conversation.is_done(), "{out}");
            assert_eq!(
                out["conversationId"],
                event.conversation.id.as_str(),
                "{out}"
            );
            match event.org.as_deref().filter(|o| !o.is_empty()) {
                Some(org) => assert_eq!(out["org"], org, "{out}"),
                None => assert!(out.get("org").is_none(), "{out}"),
            }
            let time = |name: &str| {
                out[name]
                    .as_str()
                    .and_then(timestamp::parse)
                    .unwrap_or_else(|| panic!("{name} is not an RFC 3339 timestamp: {out}"))
            };
            let (closed, send) = (time("closedAt"), time("sendAt"));
            assert_eq!(
                (send - closed).whole_seconds(),
                SECONDS_UNTIL_SEND,
                "sendAt is not closedAt plus the delay: {out}"
            );
        }
        _ => panic!("the plan and the parser disagree, or no known action: {out} vs {parsed:?}"),
    }
}

/// `records`: the bytes as a JSON document, through the four record parsers; then as each
/// record of an otherwise valid survey input, and as the whole input, through
/// `buildSurveyRequest` and `explainConversation`.
pub fn records(data: &[u8]) {
    let Some(value) = parse(data) else { return };
    type Parser = fn(&Value) -> Option<InputError>;
    let parsers: [(&str, Parser); 4] = [
        ("conversation", |v| kustomer::parse_conversation(v).err()),
        ("customer", |v| kustomer::parse_customer(v).err()),
        ("user", |v| kustomer::parse_user(v).err()),
        ("tags", |v| kustomer::parse_tags(v).err()),
    ];
    for (part, parse) in parsers {
        let error = parse(&value);
        if let Some(e) = &error {
            check_input_error(e);
        }
        // `null` means "not fetched" for every record but the conversation.
        let expect = match error {
            Some(e) if part == "conversation" || !value.is_null() => {
                Expect::Refused(within(part, &e.path))
            }
            _ => Expect::Accepted,
        };
        let mut input = survey_input();
        input[part] = value.clone();
        check_built(&input, &value, &expect);
        check_explained(&input, &value, &expect);
    }
    let supplied =
        json!({"rest": without_keys(&value), "settings": without_keys(&value["settings"])});
    check_built(&value, &supplied, &Expect::Any);
    check_explained(&value, &supplied, &Expect::Any);
}

/// `outcome`: the bytes as a JSON Data Return record, read by the core and by
/// `readSurveyOutcome`; an outcome read is written as conversation attributes, and the card
/// reads those back.
pub fn outcome(data: &[u8]) {
    let Some(value) = parse(data) else { return };
    let read = survey_outcome::read_record(&value);
    let out = answer(&api::read_survey_outcome(&value), &value);
    let record = match read {
        Err(e) => {
            assert!(
                matches!(e.code.as_str(), "invalid_shape" | "invalid_id"),
                "{e:?}"
            );
            assert!(
                matches!(e.path.as_str(), "" | "ext_interaction_id" | "uuid"),
                "{e:?}"
            );
            assert!(!e.message.is_empty() && e.fields.is_empty(), "{e:?}");
            assert_eq!(out["ok"], false, "{out}");
            assert_eq!(out["error"]["code"], e.code.as_str(), "{out}");
            return;
        }
        Ok(record) => record,
    };
    let o = &record.outcome;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["outcome"]["conversationId"], o.conversation_id.as_str());
    assert!(kustomer::check_id(&o.conversation_id, "").is_ok(), "{o:?}");
    assert!(!o.uuid.trim().is_empty(), "{o:?}");
    assert!(o.rating.is_none_or(|r| (1..=5).contains(&r)), "{o:?}");
    for time in [&o.sent_at, &o.responded_at, &record.created_at]
        .into_iter()
        .flatten()
    {
        let t = timestamp::parse(time).unwrap_or_else(|| panic!("not RFC 3339: {time}"));
        assert_eq!(&timestamp::format(t), time, "not normalized");
    }
    if o.delivery_status != DeliveryStatus::Unknown {
        assert_eq!(o.delivery_status_text, None, "{o:?}");
    }
    assert_eq!(
        o.is_final(),
        o.is_answered() || o.delivery_status.is_final()
    );
    // The edge stores the exported shape and reads it back.
    let back: SurveyOutcome =
        serde_json::from_value(out["outcome"].clone()).expect("the outcome reads back");
    assert_eq!(&back, o);
    // What the edge writes, the card reads: the same status and rating, and a line.
    let custom = survey_outcome::conversation_custom(o);
    assert!(
        custom.keys().all(|k| k.starts_with("@stella")),
        "{custom:?}"
    );
    let comment = custom.get(&survey_outcome::attribute_key(
        survey_outcome::COMMENT_ATTRIBUTE,
    ));
    // Written (null clears it), never longer than the cap.
    assert!(comment.is_some_and(|c| c.is_null()
        || c.as_str()
            .is_some_and(|c| c.chars().count() <= survey_outcome::MAX_COMMENT_CHARS)));
    let mut input = survey_input();
    input["conversation"]["data"]["attributes"]["custom"] = Value::Object(custom);
    let card = answer(&api::explain_conversation(&input, now()), &input);
    let shown = &card["card"]["outcome"];
    assert_eq!(shown["status"], o.delivery_status.as_str(), "{card}");
    assert_eq!(shown["rating"].as_u64(), o.rating.map(u64::from), "{card}");
    assert!(non_empty(&shown["lead"]), "{card}");
}

/// What an operation must make of an input with one fuzzed part.
enum Expect {
    /// Refuse it, with an error at this path.
    Refused(String),
    /// Accept it: a request or a skip, a card.
    Accepted,
    /// Anything of the documented shape (the whole input fuzzed).
    Any,
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// Parses the bytes as the Wasm exports do; `None` for text that is not JSON (after checking
/// the error).
fn parse(data: &[u8]) -> Option<Value> {
    match stella_connect::json::from_json(&String::from_utf8_lossy(data)) {
        Ok(value) => Some(value),
        Err(e) => {
            assert!(
                matches!(e.code.as_str(), "malformed_json" | "too_large"),
                "{e:?}"
            );
            assert!(!e.message.is_empty(), "{e:?}");
            None
        }
    }
}

/// `v` without its key fields (and without `settings`): a key there is the one settings hold,
/// which no answer may show.
fn without_keys(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(map) = &mut v {
        for key in [
            settings::STELLA_API_KEY,
            settings::KUSTOMER_API_KEY,
            "settings",
        ] {
            map.remove(key);
        }
    }
    v
}

/// Panics when the answer, serialized or `Debug`-printed, shows [`STELLA_KEY`] or
/// [`KUSTOMER_KEY`] that `input` (what the fuzzer supplied) does not spell out itself.
pub fn assert_answer_hides_keys<T: Serialize + std::fmt::Debug>(result: &T, input: &Value) {
    let text = serde_json::to_string(result).expect("every answer serializes");
    let debug = format!("{result:?}");
    let supplied = input.to_string();
    for key in [STELLA_KEY, KUSTOMER_KEY] {
        if !supplied.contains(key) {
            assert!(!text.contains(key), "a key in the answer: {text}");
            assert!(!debug.contains(key), "a key in the Debug text: {debug}");
        }
    }
}

/// A code made of lowercase letters and `_`.
fn stable_code(code: &Value) -> bool {
    code.as_str()
        .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

fn non_empty(text: &Value) -> bool {
    text.as_str().is_some_and(|s| !s.is_empty())
}

/// The path an operation reports for an error at `path` in its `part`.
fn within(part: &str, path: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{part}.{path}")
    }
}

fn check_input_error(e: &InputError) {
    assert_eq!(e.code.as_str(), "invalid_shape", "{e:?}");
    assert!(!e.message.is_empty(), "{e:?}");
    assert!(e.fields.is_empty(), "{e:?}");
}

/// Serializes an answer, checks that it is an object that shows no key, and returns it.
/// `input` is what the fuzzer supplied: a key it spelled out itself may come back.
fn answer<T: Serialize + std::fmt::Debug>(result: &T, input: &Value) -> Value {
    assert_answer_hides_keys(result, input);
    let out = serde_json::to_value(result).expect("every answer serializes");
    assert!(out.is_object(), "not an object: {out}");
    out
}

fn ok(out: &Value) -> bool {
    out["ok"]
        .as_bool()
        .unwrap_or_else(|| panic!("no boolean `ok`: {out}"))
}

/// `validateSettings`: `{ok: true, settings}` with masked keys that re-validates to itself, or
/// `{ok: false, errors}` with one stable code per known field.
fn check_validated(raw: &Value, options: Options, input: &Value) -> Value {
    let out = answer(&api::validate_settings(raw, options), input);
    let validation = ValidationOptions {
        allow_loopback: options.allow_loopback,
    };
    if ok(&out) {
        let s = &out["settings"];
        assert_eq!(s["stellaApiKey"], MASK, "{s}");
        assert_eq!(s["kustomerApiKey"], MASK, "{s}");
        for url in ["kustomerApiUrl", "kustomerUrl", "stellaApiUrl"] {
            let url = s[url].as_str().unwrap_or_default();
            let scheme_ok = url.starts_with("https://")
                || (options.allow_loopback && url.starts_with("http://"));
            assert!(scheme_ok && !url.ends_with('/'), "{s}");
        }
        let settings = settings::validate_settings(raw, validation).expect("valid as above");
        // The channel map as shown is the one applied: each Kustomer channel it lists maps
        // to the Stella channel it shows.
        for (kustomer, stella) in s["channelMap"].as_object().expect("channelMap") {
            assert_eq!(
                settings.channel_map.stella_channel(kustomer),
                stella.as_str().expect("a channel name"),
                "the channel map shown is not the one applied: {s}"
            );
        }
        // Normalizing is idempotent: what is shown (with the keys) validates to the same.
        let again = settings::validate_settings(&unmasked(&settings), validation)
            .unwrap_or_else(|e| panic!("valid settings re-validate with errors {e:?}: {s}"));
        assert_eq!(
            &serde_json::to_value(&again).expect("settings"),
            s,
            "not idempotent"
        );
        assert_eq!(again.stella_api_key, settings.stella_api_key, "{s}");
        assert_eq!(again.kustomer_api_key, settings.kustomer_api_key, "{s}");
    } else {
        let errors = out["errors"].as_array().expect("errors");
        assert!(!errors.is_empty(), "{out}");
        for e in errors {
            assert!(stable_code(&e["code"]), "{e}");
            assert!(non_empty(&e["message"]), "{e}");
            let field = e["field"].as_str().expect("field");
            assert!(
                field.is_empty() || FIELDS.iter().any(|f| f.key == field),
                "{e}"
            );
        }
    }
    out
}

/// Settings as their serialized form shows them, with the real keys: what re-validates to the
/// same settings.
fn unmasked(settings: &Settings) -> Value {
    let mut raw = serde_json::to_value(settings).expect("settings serialize");
    raw[settings::STELLA_API_KEY] = settings.stella_api_key.expose().into();
    raw[settings::KUSTOMER_API_KEY] = settings.kustomer_api_key.expose().into();
    raw
}

/// `buildSurveyRequest`.
fn check_built(input: &Value, supplied: &Value, expect: &Expect) {
    let out = answer(&api::build_survey_request(input), supplied);
    match expect {
        Expect::Refused(path) => assert_eq!(out["error"]["path"], path.as_str(), "{out}"),
        Expect::Accepted => assert!(out.get("error").is_none(), "{out}"),
        Expect::Any => {}
    }
    if ok(&out) {
        let request = &out["request"];
        assert_eq!(request["method"], "POST", "{request}");
        assert_eq!(request["headers"]["x-api-key"], MASK, "{request}");
        let url = request["url"].as_str().unwrap_or_default();
        assert!(url.ends_with("/v1/requests"), "{request}");
        if input.get("settings") == Some(&fixed_settings()) {
            assert_eq!(url, STELLA_REQUESTS_URL, "{request}");
        }
        check_body(&request["body"]);
    } else if let Some(skip) = out.get("skip") {
        assert!(stable_code(&skip["code"]), "{skip}");
        assert!(non_empty(&skip["message"]), "{skip}");
    } else {
        let error = &out["error"];
        assert!(stable_code(&error["code"]), "{error}");
        assert!(non_empty(&error["message"]), "{error}");
    }
}

/// The Stella body: the required fields, the tag limits, and no `null` or `""` anywhere.
fn check_body(body: &Value) {
    for text in [
        &body["channel"],
        &body["customer"]["email"],
        &body["employee"]["email"],
    ] {
        assert!(non_empty(text), "{body}");
    }
    assert!(body["customer"]["email"]
        .as_str()
        .is_some_and(|e| e.contains('@')));
    assert!(body["do_not_send"].is_boolean(), "{body}");
    let tags = body
        .get("tags")
        .map_or(&[][..], |t| t.as_array().expect("tags"));
    assert!(tags.len() <= MAX_TAGS, "{body}");
    for tag in tags {
        let tag = tag.as_str().expect("tag text");
        assert!(tag.chars().count() <= MAX_TAG_CHARS, "{body}");
    }
    fn blank(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.iter().any(blank),
            Value::Object(m) => m.values().any(blank),
            _ => false,
        }
    }
    assert!(!blank(body), "a null or empty value in the body: {body}");
}

/// `explainConversation`.
fn check_explained(input: &Value, supplied: &Value, expect: &Expect) {
    let out = answer(&api::explain_conversation(input, now()), supplied);
    match expect {
        Expect::Refused(path) => assert_eq!(out["error"]["path"], path.as_str(), "{out}"),
        Expect::Accepted => assert_eq!(out["ok"], true, "{out}"),
        Expect::Any => {}
    }
    if ok(&out) {
        let card = &out["card"];
        assert!(stable_code(&card["outlook"]), "{card}");
        assert!(non_empty(&card["headline"]), "{card}");
        assert!(non_empty(&card["detail"]), "{card}");
        assert!(card["doNotSend"].is_boolean(), "{card}");
        if let Some(reason) = card.get("reason") {
            assert!(stable_code(&reason["code"]), "{card}");
        }
        if let Some(send_at) = card.get("sendAt") {
            let parsed = send_at.as_str().and_then(timestamp::parse);
            assert!(
                parsed.is_some(),
                "sendAt is not an RFC 3339 timestamp: {card}"
            );
        }
    } else {
        let error = &out["error"];
        assert!(stable_code(&error["code"]), "{error}");
        assert!(non_empty(&error["message"]), "{error}");
    }
}
