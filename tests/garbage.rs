//! Property tests: arbitrary JSON, and arbitrary text, fed to every parser and to the three
//! operations the Wasm exports offer. Nothing may panic (a panic traps the whole Wasm
//! instance); every answer must be one of the documented shapes with a stable code.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use stella_connect::api::{self, Options};
use stella_connect::{kustomer, timestamp};

/// Arbitrary JSON, biased towards the keys and values the parsers look for, so that the
/// generator reaches deep into the real shapes rather than failing at the root.
fn arb_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "data",
        "id",
        "attributes",
        "relationships",
        "customer",
        "status",
        "channels",
        "assignedUsers",
        "tags",
        "custom",
        "emails",
        "email",
        "name",
        "displayName",
        "changes",
        "before",
        "after",
        "modificationHistory",
        "statusAt",
        "updatedAt",
        "createdAt",
        "locale",
        "defaultLang",
        "settings",
        "conversation",
        "user",
        "options",
        "allowLoopback",
        "stellaApiKey",
        "kustomerApiKey",
        "kustomerApiUrl",
        "kustomerUrl",
        "secondsUntilSend",
        "channelMap",
        "surveyedChannels",
        "brand",
        "sendLanguage",
        "stellaApiUrl",
        "doNotSendStellaConnectRequestBool",
        "x",
    ]);
    let strings = prop::sample::select(vec![
        "done",
        "open",
        "voice",
        "email",
        "kustomer.conversation.update",
        "https://api.kustomerapp.com",
        "https://acme.kustomerapp.com/",
        "http://127.0.0.1:1/",
        "2026-11-20T14:03:11.401Z",
        "a@b.c",
        "900",
        "-1",
        "",
        " ",
        "é",
        "voice=phone",
        "\u{0}",
        "9999999999999999999999",
        "https://[::1",
        "ü=ü",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        strings.prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

fn code_is_stable(code: &Value) -> bool {
    code.as_str()
        .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(v in arb_json()) {
        for result in [
            kustomer::parse_event(&v).err(),
            kustomer::parse_conversation(&v).err(),
            kustomer::parse_customer(&v).err(),
            kustomer::parse_user(&v).err(),
            kustomer::parse_tags(&v).err(),
        ].into_iter().flatten() {
            prop_assert!(!result.message.is_empty());
        }
    }

    #[test]
    fn a_close_is_read_as_the_full_event_reads_it(v in arb_json()) {
        // The close reads less of the event: what it reads, it reads the same; what it refuses,
        // the full reading refuses too.
        match (kustomer::parse_event(&v), kustomer::parse_close_event(&v)) {
            (Ok(full), Ok(close)) => prop_assert_eq!(close_fields(&full), close_fields(&close)),
            (Ok(_), Err(e)) => prop_assert!(false, "refused only as a close: {}", e.message),
            (Err(_), Ok(_)) | (Err(_), Err(_)) => {}
        }
    }

    #[test]
    fn a_close_built_pruned_reads_as_built_whole(
        slots in proptest::collection::vec(arb_json(), 9),
        names in proptest::collection::vec(prop_oneof![Just("done"), Just("open")], 2),
    ) {
        // Event-shaped documents with arbitrary values in and around what a close reads.
        let event = json!({
            "name": "kustomer.conversation.update", "org": slots[0], "id": slots[1],
            "data": {"id": slots[2], "type": "conversation", "attributes": {
                "status": names[0], "updatedAt": slots[3], "channels": slots[4],
                "modificationHistory": slots[5]}, "relationships": slots[6]},
            "changes": {"attributes": {"status": {"before": names[1], "after": slots[7]}}},
            "extra": slots[8],
        });
        for v in [event, slots[8].clone(), json!({"data": slots[4], "changes": slots[5]})] {
            let text = v.to_string();
            let whole = stella_connect::json::from_json(&text).and_then(|v| kustomer::parse_close_event(&v));
            let pruned = kustomer::close_event_from_json(&text).and_then(|v| kustomer::parse_close_event(&v));
            match (whole, pruned) {
                (Ok(a), Ok(b)) => prop_assert_eq!(close_fields(&a), close_fields(&b)),
                (Err(a), Err(b)) => prop_assert_eq!(a.message, b.message),
                (a, b) => prop_assert!(false, "{:?} / {:?}", a.map(|e| close_fields(&e)), b.map(|e| close_fields(&e))),
            }
        }
    }

    #[test]
    fn validate_settings_answers_with_codes(v in arb_json(), loopback in any::<bool>()) {
        let out = serde_json::to_value(api::validate_settings(&v, Options { allow_loopback: loopback })).unwrap();
        if out["ok"] == true {
            prop_assert_eq!(&out["settings"]["stellaApiKey"], "********");
        } else {
            let errors = out["errors"].as_array().unwrap();
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(code_is_stable(&e["code"]), "{}", e);
            }
        }
    }

    #[test]
    fn plan_answers_with_an_action(settings in arb_json(), event in arb_json(), ms in any::<i64>()) {
        let now = timestamp::from_millis(ms as f64);
        let out = serde_json::to_value(api::plan_conversation_event(&settings, &event, Options::default(), now)).unwrap();
        match out["action"].as_str() {
            Some("schedule") => prop_assert!(out["sendAt"].is_string()),
            Some("ignore") => prop_assert!(code_is_stable(&out["reason"])),
            Some("reject") => prop_assert!(code_is_stable(&out["error"]["code"])),
            other => prop_assert!(false, "unexpected action {:?}", other),
        }
    }

    #[test]
    fn build_answers_with_a_request_skip_or_error(v in arb_json()) {
        check_build(&v)?;
    }

    /// Real documents with one random part replaced: reaches the decision far more often.
    #[test]
    fn build_with_one_part_garbled(part in prop::sample::select(vec!["settings", "conversation", "customer", "user", "tags", "options"]), garbage in arb_json()) {
        let mut input = json!({
            "settings": support::settings(),
            "conversation": support::fixture("conversation"),
            "customer": support::fixture("customer"),
            "user": support::fixture("user"),
            "tags": support::fixture("tags"),
        });
        input[part] = garbage;
        check_build(&input)?;
    }

    #[test]
    fn arbitrary_text_is_malformed_json_or_a_value(s in ".{0,64}") {
        if let Err(e) = stella_connect::json::from_json(&s) {
            prop_assert_eq!(e.code.as_str(), "malformed_json");
        }
    }
}

fn check_build(v: &Value) -> Result<(), TestCaseError> {
    let out = serde_json::to_value(api::build_survey_request(v)).unwrap();
    if out["ok"] == true {
        prop_assert_eq!(&out["request"]["headers"]["x-api-key"], "********");
        support::assert_valid_body(&out["request"]["body"]);
    } else if out.get("skip").is_some() {
        prop_assert!(code_is_stable(&out["skip"]["code"]));
    } else {
        prop_assert!(code_is_stable(&out["error"]["code"]));
    }
    Ok(())
}

/// What storing a close reads of an event ([`kustomer::parse_close_event`]).
fn close_fields(e: &kustomer::ConversationEvent) -> Value {
    let c = &e.conversation;
    let change = e.status_change.as_ref().map(|s| (&s.before, &s.after));
    json!([
        e.id,
        e.name,
        e.org,
        e.created_at,
        change,
        c.id,
        c.status,
        c.status_at,
        c.updated_at,
        c.customer_id
    ])
}

#[test]
fn a_close_reads_only_what_it_stores() {
    let text =
        std::fs::read_to_string("tests/fixtures/kustomer/conversation-update-done.json").unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();
    let full = kustomer::parse_event(&event).unwrap();
    let close = kustomer::parse_close_event(&event).unwrap();
    assert_eq!(close_fields(&full), close_fields(&close));
    // What the send reads again from Kustomer is not checked on the close path.
    let mut odd = event.clone();
    odd["data"]["attributes"]["channels"] = json!(5);
    odd["data"]["relationships"]["queue"] = json!("none");
    assert!(kustomer::parse_event(&odd).is_err());
    assert_eq!(
        close_fields(&kustomer::parse_close_event(&odd).unwrap()),
        close_fields(&close)
    );
    // What it stores still is: the times, and the customer (the forget index's).
    for (path, wrong) in [
        (&["attributes", "updatedAt"][..], json!(5)),
        (&["relationships", "customer", "data", "id"][..], json!(5)),
    ] {
        let mut bad = event.clone();
        let mut at = &mut bad["data"];
        for key in path {
            at = &mut at[*key];
        }
        *at = wrong;
        let error = kustomer::parse_close_event(&bad).unwrap_err();
        assert_eq!(
            error.message,
            kustomer::parse_event(&bad).unwrap_err().message
        );
    }
    assert!(
        close.conversation.customer_id.is_some(),
        "the fixture names its customer"
    );
}

#[test]
fn a_close_is_built_pruned() {
    let text =
        std::fs::read_to_string("tests/fixtures/kustomer/conversation-update-done.json").unwrap();
    let pruned = kustomer::close_event_from_json(&text).unwrap();
    // Of the relationships, only the customer's id is built.
    let relationships = &pruned["data"]["relationships"];
    assert_eq!(
        relationships,
        &json!({"customer": {"data": {"id": relationships["customer"]["data"]["id"]}}}),
        "{pruned}"
    );
    assert!(
        pruned["data"]["attributes"].get("channels").is_none(),
        "{pruned}"
    );
    let whole =
        kustomer::parse_close_event(&stella_connect::json::from_json(&text).unwrap()).unwrap();
    assert_eq!(
        close_fields(&kustomer::parse_close_event(&pruned).unwrap()),
        close_fields(&whole)
    );
    // A member named twice: the last one counts, as in a whole reading.
    let twice =
        r#"{"name": "x", "name": "kustomer.conversation.update", "data": {"id": "a", "id": "b"}}"#;
    let value = kustomer::close_event_from_json(twice).unwrap();
    assert_eq!(value, stella_connect::json::from_json(twice).unwrap());
    // Not JSON, trailing text, too deep: refused as a whole reading refuses them.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    // Nesting far past the limit in a member the close skips: skipped without recursing (a
    // whole reading refuses it), never a stack overflow.
    let skipped = format!(
        "{{\"extra\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(stella_connect::json::from_json(&skipped).is_err());
    assert_eq!(
        kustomer::close_event_from_json(&skipped).unwrap(),
        json!({})
    );
    for bad in ["{", "{} x", "", "{\"data\": }", deep.as_str()] {
        let (a, b) = (
            stella_connect::json::from_json(bad),
            kustomer::close_event_from_json(bad),
        );
        assert_eq!(a.unwrap_err().message, b.unwrap_err().message, "{bad}");
    }
}
