//! Shared test helpers: the fixtures, valid settings, and the vendor's schema.
#![allow(dead_code)]

use serde_json::{json, Value};

/// A fixture from `tests/fixtures/kustomer/` (copied from the project's shared reference).
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/kustomer/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// Settings as an admin fills them in for the fixtures' org.
pub fn settings() -> Value {
    json!({
        "stellaApiKey": "stella-test-key-0123",
        "kustomerApiKey": "kustomer-key-4567",
        "kustomerApiUrl": "https://api.kustomerapp.com",
        "kustomerUrl": "https://acme.kustomerapp.com/",
        "secondsUntilSend": "86400"
    })
}

/// The fixtures as one survey input (`{settings, conversation, customer, user, tags}`, what
/// `buildSurveyRequest` and `explainConversation` take), with changes applied by `edit`.
pub fn survey_input(edit: impl FnOnce(&mut Value)) -> Value {
    let mut doc = json!({
        "settings": settings(),
        "conversation": fixture("conversation"),
        "customer": fixture("customer"),
        "user": fixture("user"),
        "tags": fixture("tags"),
    });
    edit(&mut doc);
    doc
}

/// `settings()` with some fields replaced.
pub fn settings_with(changes: Value) -> Value {
    let mut s = settings();
    for (k, v) in changes.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

/// The vendor's `FeedbackRequestModel`, from the OpenAPI file in `contracts/`.
///
/// The published schema declares `custom_properties` with `properties: {}` and
/// `additionalProperties: false`, which would refuse any key although the vendor documents a
/// flat string map; that one property is checked as such a map, the rest as published.
#[cfg(not(target_arch = "wasm32"))]
pub fn feedback_request_schema() -> jsonschema::Validator {
    let path = format!(
        "{}/contracts/stella-requests-openapi.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut schema = spec["components"]["schemas"]["FeedbackRequestModel"].clone();
    assert_eq!(
        schema["additionalProperties"],
        json!(false),
        "the vendor schema is closed"
    );
    schema["properties"]["custom_properties"] =
        json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": 2000}});
    jsonschema::validator_for(&schema).unwrap()
}

/// Panics with every schema error when `body` does not validate.
#[cfg(not(target_arch = "wasm32"))]
pub fn assert_valid_body(body: &Value) {
    let validator = feedback_request_schema();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "body does not match FeedbackRequestModel: {errors:?}\n{body:#}"
    );
}
