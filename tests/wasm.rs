//! The exports under WebAssembly, called with JavaScript values exactly as the pages and
//! the edge call them. Runs in node (`wasm-pack test --node`) and in headless Chromium
//! (`WASM_BINDGEN_USE_BROWSER=1 wasm-pack test --headless --chrome`).
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object, Reflect, JSON};
use serde_json::{json, Value};
use stella_connect::wasm::{
    build_survey_request, plan_conversation_event, read_survey_outcome, records_to_read,
    validate_settings,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

const CONVERSATION: &str = include_str!("fixtures/kustomer/conversation.json");
const CUSTOMER: &str = include_str!("fixtures/kustomer/customer.json");
const USER: &str = include_str!("fixtures/kustomer/user.json");
const TAGS: &str = include_str!("fixtures/kustomer/tags.json");
const EVENT: &str = include_str!("fixtures/kustomer/conversation-update-done.json");
const EXPECTED: &str = include_str!("fixtures/kustomer/expected-stella-request.json");

fn js(v: &Value) -> JsValue {
    JSON::parse(&v.to_string()).unwrap()
}

fn rust(v: &JsValue) -> Value {
    serde_json::from_str(&String::from(JSON::stringify(v).unwrap())).unwrap()
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn settings() -> Value {
    json!({"stellaApiKey": "sk-123", "kustomerApiKey": "kk-456", "kustomerUrl": "https://acme.kustomerapp.com/", "secondsUntilSend": "900"})
}

fn survey_input() -> Value {
    json!({"settings": settings(), "conversation": fixture(CONVERSATION), "customer": fixture(CUSTOMER),
           "user": fixture(USER), "tags": fixture(TAGS)})
}

#[wasm_bindgen_test]
fn validate_settings_returns_plain_objects() {
    let out = validate_settings(js(&settings()), JsValue::UNDEFINED);
    assert!(
        Object::get_prototype_of(&out) == Object::get_prototype_of(&Object::new()),
        "a plain object, not a Map"
    );
    let out = rust(&out);
    assert_eq!(out["ok"], true);
    assert_eq!(out["settings"]["secondsUntilSend"], 900);
    assert_eq!(out["settings"]["stellaApiKey"], "********");

    let out = rust(&validate_settings(
        js(&json!({"kustomerUrl": "http://acme.kustomerapp.com"})),
        JsValue::UNDEFINED,
    ));
    let codes: Vec<&str> = out["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["required", "required", "insecure_url"]);
}

#[wasm_bindgen_test]
fn loopback_needs_the_option() {
    let local = json!({"stellaApiKey": "a", "kustomerApiKey": "b", "kustomerUrl": "http://127.0.0.1:8787/k"});
    assert_eq!(
        rust(&validate_settings(js(&local), JsValue::UNDEFINED))["ok"],
        false
    );
    assert_eq!(
        rust(&validate_settings(
            js(&local),
            js(&json!({"allowLoopback": true}))
        ))["ok"],
        true
    );
}

/// The shared fixture's request, with the custom property every request carries (the org is
/// not passed here, so it is left out).
fn expected_request() -> Value {
    let mut want = fixture(EXPECTED);
    want["custom_properties"] = json!({"kustomer_conversation_id": "6560e0f1a2b3c4d5e6f70819"});
    want
}

#[wasm_bindgen_test]
fn build_survey_request_from_the_fixtures() {
    let out = rust(&build_survey_request(js(&survey_input())));
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["request"]["body"], expected_request());
    assert_eq!(
        out["request"]["url"],
        "https://api.stellaconnect.net/v1/requests"
    );
    assert_eq!(out["request"]["headers"]["x-api-key"], "********");
    // JSON text is accepted as well as objects.
    let text = JsValue::from_str(&survey_input().to_string());
    assert_eq!(
        rust(&build_survey_request(text))["request"]["body"],
        expected_request()
    );
}

#[wasm_bindgen_test]
fn build_survey_request_cases_beyond_the_fixtures() {
    let mut voice = survey_input();
    voice["conversation"]["data"]["attributes"]["channels"] = json!(["voice"]);
    voice["conversation"]["data"]["attributes"]["custom"] =
        json!({"doNotSendStellaConnectRequestBool": true});
    voice["customer"]["data"]["attributes"]["name"] =
        json!("Zoë Ōkubo <img src=x onerror=alert(1)>");
    let body = rust(&build_survey_request(js(&voice)))["request"]["body"].clone();
    assert_eq!(body["channel"], "phone");
    assert_eq!(body["do_not_send"], true);
    assert_eq!(
        body["customer"]["name"],
        "Zoë Ōkubo <img src=x onerror=alert(1)>"
    );

    let mut unassigned = survey_input();
    unassigned["conversation"]["data"]["attributes"]["assignedUsers"] = json!([]);
    let out = rust(&build_survey_request(js(&unassigned)));
    assert_eq!(
        (out["ok"].as_bool(), out["skip"]["code"].as_str()),
        (Some(false), Some("no_assigned_agent"))
    );
}

#[wasm_bindgen_test]
fn plan_conversation_event_schedules_the_fixture() {
    let out = rust(&plan_conversation_event(
        js(&settings()),
        js(&fixture(EVENT)),
        JsValue::UNDEFINED,
    ));
    assert_eq!(out["action"], "schedule");
    assert_eq!(out["closedAt"], "2026-11-20T14:03:11.401Z");
    assert_eq!(out["sendAt"], "2026-11-20T14:18:11.401Z");
}

#[wasm_bindgen_test]
fn records_to_read_names_the_fixture_records() {
    let out = rust(&records_to_read(js(&fixture(CONVERSATION))));
    assert_eq!(
        out,
        json!({"ok": true, "customer": "5f0c1b2a3d4e5f6a7b8c9d31", "agent": "5f0c1b2a3d4e5f6a7b8c9d21",
               "tags": ["5f0c1b2a3d4e5f6a7b8c9d11", "5f0c1b2a3d4e5f6a7b8c9d12"],
               "brand": "5f0c1b2a3d4e5f6a7b8c9d41", "channel": "email",
               "paths": {"user": "/v1/users/5f0c1b2a3d4e5f6a7b8c9d21",
                         "tags": "/v1/tags/5f0c1b2a3d4e5f6a7b8c9d11,5f0c1b2a3d4e5f6a7b8c9d12",
                         "brand": "/v1/brands/5f0c1b2a3d4e5f6a7b8c9d41"}})
    );
    let mut blanks = fixture(CONVERSATION);
    blanks["data"]["attributes"]["assignedUsers"] = json!(["", "u2"]);
    blanks["data"]["attributes"]["tags"] = json!(["", "t1"]);
    let out = rust(&records_to_read(JsValue::from_str(&blanks.to_string())));
    assert_eq!(
        (&out["agent"], &out["tags"]),
        (&json!("u2"), &json!(["t1"]))
    );
}

/// The page model comes out of the module as the core builds it.
#[wasm_bindgen_test]
fn page_model_is_the_cores() {
    let out = rust(&stella_connect::wasm::page_model());
    assert_eq!(out, stella_connect::page_model::page_model());
}

/// Values only JavaScript can make, and the usual garbage: never a trap, always a coded answer.
#[wasm_bindgen_test]
fn hostile_values_give_coded_errors() {
    let cyclic = Object::new();
    Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    let bigint = js_sys::BigInt::from(7u32);
    let with_bigint = Object::new();
    Reflect::set(&with_bigint, &"settings".into(), &bigint.into()).unwrap();
    let function = js_sys::Function::new_no_args("return 1");
    let deep = JsValue::from_str(&("[".repeat(100_000) + &"]".repeat(100_000)));
    let huge = JsValue::from_str(&format!("\"{}\"", "a".repeat(2 << 20)));
    let values: Vec<JsValue> = vec![
        JsValue::UNDEFINED,
        JsValue::NULL,
        JsValue::from(3.5),
        JsValue::from_str("{not json"),
        JsValue::from_str(""),
        Array::new().into(),
        cyclic.into(),
        with_bigint.into(),
        function.into(),
        js_sys::Symbol::for_("s").into(),
        deep,
        huge,
    ];
    for v in values {
        let validated = rust(&validate_settings(v.clone(), JsValue::UNDEFINED));
        assert_eq!(validated["ok"], false);
        assert!(validated["errors"][0]["code"].is_string());

        let planned = rust(&plan_conversation_event(v.clone(), v.clone(), v.clone()));
        assert_eq!(planned["action"], "reject", "{planned}");
        assert!(planned["error"]["code"].is_string());

        let built = rust(&build_survey_request(v.clone()));
        assert_eq!(built["ok"], false);
        assert!(built["error"]["code"].is_string(), "{built}");

        let records = rust(&records_to_read(v.clone()));
        assert_eq!(records["ok"], false);
        assert!(records["error"]["code"].is_string(), "{records}");

        let outcome = rust(&read_survey_outcome(v.clone()));
        assert_eq!(outcome["ok"], false);
        assert!(outcome["error"]["code"].is_string(), "{outcome}");
    }
    // The instance is still alive after all of that.
    assert_eq!(rust(&build_survey_request(js(&survey_input())))["ok"], true);
}

#[wasm_bindgen_test]
fn read_survey_outcome_reads_a_data_return_record() {
    let record = json!({"uuid": "u1", "ext_interaction_id": "6560e0f1a2b3c4d5e6f70819",
        "request_delivery_status": "Sent", "request_sent_at": "2026-11-21T09:03:13-05:00",
        "answers": {"agent_star_rating": {"comment": "Quick", "selected_options": {"o7": {"integer_value": 5}}}}});
    let out = read_survey_outcome(js(&record));
    assert_eq!(
        Object::get_prototype_of(&out),
        Object::get_prototype_of(&Object::new()),
        "a plain object"
    );
    assert_eq!(
        rust(&out),
        json!({"ok": true, "outcome": {"conversationId": "6560e0f1a2b3c4d5e6f70819", "uuid": "u1",
            "deliveryStatus": "sent", "rating": 5, "comment": "Quick",
            "sentAt": "2026-11-21T14:03:13.000Z", "isRecovery": false}})
    );
    // JSON text works as well; a record without its conversation is an error with its path.
    let text = rust(&read_survey_outcome(JsValue::from_str(&record.to_string())));
    assert_eq!(text["outcome"]["rating"], 5);
    let missing = rust(&read_survey_outcome(js(&json!({"uuid": "u1"}))));
    assert_eq!(missing["error"]["path"], "ext_interaction_id");
}
