//! The survey decision end to end, through the same JSON API the Wasm exports call: the
//! shared fixtures, then the cases the fixtures do not cover. Every body built here is checked
//! against the vendor's `FeedbackRequestModel`.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use serde_json::{json, Value};
use stella_connect::api::{self, Options};
use stella_connect::timestamp;
use support::{assert_valid_body, fixture, settings, settings_with, survey_input as input};

/// A change to a test document.
type Edit = Box<dyn Fn(&mut Value)>;

/// `buildSurveyRequest` as JSON, with the body checked against the schema when one is built.
fn build(input: Value) -> Value {
    let out = serde_json::to_value(api::build_survey_request(&input)).unwrap();
    if out["ok"] == true {
        assert_valid_body(&out["request"]["body"]);
    }
    out
}

fn body(out: &Value) -> &Value {
    assert_eq!(out["ok"], true, "{out:#}");
    &out["request"]["body"]
}

fn skip_code(out: &Value) -> &str {
    assert_eq!(out["ok"], false, "{out:#}");
    out["skip"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a skip: {out:#}"))
}

/// The shared fixture's request, with the custom property every request carries (the org is
/// unknown to a caller that does not pass it, so it is left out).
fn expected_request() -> Value {
    let mut want = fixture("expected-stella-request");
    want["custom_properties"] = json!({"kustomer_conversation_id": "6560e0f1a2b3c4d5e6f70819"});
    want
}

#[test]
fn fixtures_give_the_expected_request() {
    let out = build(input(|_| {}));
    assert_eq!(body(&out), &expected_request());
    let request = &out["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], "https://api.stellaconnect.net/v1/requests");
    assert_eq!(request["headers"]["content-type"], "application/json");
    assert_eq!(request["headers"]["accept"], "application/json");
    assert_eq!(
        request["headers"]["x-api-key"], "********",
        "the key never leaves Rust in a value"
    );
    assert!(!out.to_string().contains("stella-test-key"));
}

#[test]
fn the_transport_gets_the_real_key() {
    let s = stella_connect::validate_settings(&settings(), Default::default()).unwrap();
    let body = serde_json::from_value(expected_request()).unwrap();
    let request = stella_connect::stella::survey_request(&s, &body);
    assert_eq!(request.header("x-api-key"), Some("stella-test-key-0123"));
    assert!(!format!("{request:?}").contains("stella-test-key"));
    assert_eq!(
        serde_json::from_str::<Value>(request.body.as_deref().unwrap()).unwrap(),
        expected_request()
    );
}

#[test]
fn voice_becomes_phone_and_other_channels_pass_through() {
    for (channels, expected) in [
        (json!(["voice"]), "phone"),
        (json!(["chat", "email"]), "chat"),
        (json!(["", "sms"]), "sms"),
    ] {
        let out = build(input(|d| {
            d["conversation"]["data"]["attributes"]["channels"] = channels.clone()
        }));
        assert_eq!(body(&out)["channel"], expected, "{channels}");
    }
    let out = build(input(|d| {
        d["conversation"]["data"]["attributes"]["channels"] = json!(["sms"]);
        d["settings"]["channelMap"] = json!("sms=chat");
    }));
    assert_eq!(body(&out)["channel"], "chat");
}

#[test]
fn skip_reasons() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "not_closed",
            Box::new(|d| d["conversation"]["data"]["attributes"]["status"] = json!("open")),
        ),
        (
            "not_closed",
            Box::new(|d| d["conversation"]["data"]["attributes"]["status"] = json!(null)),
        ),
        (
            "no_assigned_agent",
            Box::new(|d| d["conversation"]["data"]["attributes"]["assignedUsers"] = json!([])),
        ),
        (
            "no_assigned_agent",
            Box::new(|d| d["conversation"]["data"]["attributes"]["assignedUsers"] = json!(null)),
        ),
        (
            "no_agent_email",
            Box::new(|d| d["user"]["data"]["attributes"]["email"] = json!("")),
        ),
        ("no_agent_email", Box::new(|d| d["user"] = json!(null))),
        (
            "no_agent_email",
            Box::new(|d| d["user"]["data"]["id"] = json!("someone-else")),
        ),
        (
            "no_customer_email",
            Box::new(|d| d["customer"]["data"]["attributes"]["emails"] = json!([])),
        ),
        (
            "no_customer_email",
            Box::new(|d| d["customer"]["data"]["attributes"]["emails"] = json!([{"email": " "}])),
        ),
        (
            "no_customer_email",
            Box::new(|d| d["customer"] = json!(null)),
        ),
        (
            "no_channel",
            Box::new(|d| d["conversation"]["data"]["attributes"]["channels"] = json!([])),
        ),
        (
            "channel_not_surveyed",
            Box::new(|d| d["settings"]["surveyedChannels"] = json!("chat, phone")),
        ),
        (
            "invalid_settings",
            Box::new(|d| d["settings"]["kustomerUrl"] = json!("http://acme.kustomerapp.com")),
        ),
    ];
    for (code, edit) in cases {
        let out = build(input(edit));
        assert_eq!(skip_code(&out), code, "{out:#}");
        assert!(out["skip"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10));
    }
}

#[test]
fn invalid_settings_skip_carries_the_field_errors() {
    let out = build(input(|d| d["settings"] = json!({"kustomerUrl": "nope"})));
    let fields: Vec<&str> = out["skip"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["stellaApiKey", "kustomerApiKey", "kustomerUrl"]);
}

#[test]
fn surveyed_channels_match_kustomer_or_stella_names() {
    for list in ["voice", "phone", "PHONE, chat"] {
        let out = build(input(|d| {
            d["conversation"]["data"]["attributes"]["channels"] = json!(["voice"]);
            d["settings"]["surveyedChannels"] = json!(list);
        }));
        assert_eq!(body(&out)["channel"], "phone", "{list}");
    }
}

#[test]
fn several_emails_use_the_first_usable_one() {
    let out = build(input(
        |d| d["customer"]["data"]["attributes"]["emails"] = json!([{"email": ""}, {"email": null}, {"type": "work"}, {"email": "second@example.com"}, {"email": "third@example.com"}]),
    ));
    assert_eq!(body(&out)["customer"]["email"], "second@example.com");
}

#[test]
fn twenty_five_tags_become_twenty_in_order() {
    let ids: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
    let mut tags: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type": "tag", "id": id, "attributes": {"name": format!("tag {id}")}}))
        .collect();
    tags.reverse(); // the API's order must not matter: the conversation's does
    let out = build(input(|d| {
        d["conversation"]["data"]["attributes"]["tags"] = json!(ids);
        d["tags"] = json!({"data": tags});
    }));
    let names: Vec<&str> = body(&out)["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 20);
    assert_eq!(names[0], "tag t00");
    assert_eq!(names[19], "tag t19");
}

#[test]
fn tag_names_are_cut_deduplicated_and_unknown_ids_left_out() {
    let long = "ü".repeat(2500);
    let out = build(input(|d| {
        d["conversation"]["data"]["attributes"]["tags"] = json!(["a", "missing", "b", "c", "d"]);
        d["tags"] = json!({"data": [
            {"id": "a", "attributes": {"name": long}},
            {"id": "b", "attributes": {"name": "dup"}},
            {"id": "c", "attributes": {"name": "dup"}},
            {"id": "d", "attributes": {"name": "  "}},
        ]});
    }));
    let tags = body(&out)["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[0].as_str().unwrap().chars().count(), 2000);
    assert_eq!(tags[1], "dup");
    // No tags at all: the field is left out, never sent empty.
    let out = build(input(|d| d["tags"] = json!(null)));
    assert!(body(&out).get("tags").is_none());
}

#[test]
fn non_ascii_names_and_display_name_fallback() {
    let out = build(input(|d| {
        d["customer"]["data"]["attributes"]["name"] = json!("José Ñúñez 李小龍")
    }));
    assert_eq!(body(&out)["customer"]["name"], "José Ñúñez 李小龍");
    let out = build(input(|d| {
        d["customer"]["data"]["attributes"]["name"] = json!(null);
        d["customer"]["data"]["attributes"]["displayName"] = json!("Zoë");
    }));
    assert_eq!(body(&out)["customer"]["name"], "Zoë");
    let out = build(input(|d| {
        d["customer"]["data"]["attributes"]["name"] = json!("");
        d["customer"]["data"]["attributes"]["displayName"] = json!(null);
    }));
    assert!(
        body(&out)["customer"].get("name").is_none(),
        "left out, never empty"
    );
}

#[test]
fn do_not_send_under_either_attribute_name_still_sends() {
    for key in [
        "@stellaDoNotSendStellaConnectRequestBool",
        "doNotSendStellaConnectRequestBool",
    ] {
        let out = build(input(|d| {
            d["conversation"]["data"]["attributes"]["custom"] = json!({ key: true })
        }));
        assert_eq!(body(&out)["do_not_send"], true, "{key}");
    }
    for value in [json!(false), json!("true"), json!(1)] {
        let out = build(input(|d| {
            d["conversation"]["data"]["attributes"]["custom"] =
                json!({"doNotSendStellaConnectRequestBool": value})
        }));
        assert_eq!(body(&out)["do_not_send"], false, "{value}");
    }
}

#[test]
fn external_url_with_or_without_trailing_slash_and_odd_ids() {
    for url in [
        "https://acme.kustomerapp.com",
        "https://acme.kustomerapp.com/",
        "https://ACME.kustomerapp.com//",
    ] {
        let out = build(input(|d| d["settings"]["kustomerUrl"] = json!(url)));
        if url.ends_with("//") {
            assert_eq!(skip_code(&out), "invalid_settings");
            continue;
        }
        assert_eq!(
            body(&out)["external_url"],
            "https://acme.kustomerapp.com/app/customers/5f0c1b2a3d4e5f6a7b8c9d31/event/6560e0f1a2b3c4d5e6f70819"
        );
    }
    let out = build(input(|d| {
        d["conversation"]["data"]["relationships"]["customer"]["data"]["id"] = json!("a/b c?")
    }));
    assert_eq!(
        body(&out)["external_url"],
        "https://acme.kustomerapp.com/app/customers/a%2Fb%20c%3F/event/6560e0f1a2b3c4d5e6f70819"
    );
}

#[test]
fn brand_and_language_only_when_configured() {
    let out = build(input(|_| {}));
    assert!(body(&out).get("brand").is_none() && body(&out).get("language").is_none());
    let out = build(input(|d| {
        d["settings"]["brand"] = json!("Acme");
        d["settings"]["sendLanguage"] = json!(true);
    }));
    assert_eq!(body(&out)["brand"], "Acme");
    assert_eq!(body(&out)["language"], "en-US");
    let out = build(input(|d| {
        d["settings"]["sendLanguage"] = json!(true);
        d["conversation"]["data"]["attributes"]["locale"] = json!("US");
    }));
    assert!(
        body(&out).get("language").is_none(),
        "a bare region is not a language"
    );
}

#[test]
fn malformed_documents_are_coded_errors_with_paths() {
    for (edit, path) in [
        (
            json!({"conversation": {"data": {"id": 7}}}),
            "conversation.data.id",
        ),
        (json!({"conversation": null}), "conversation"),
        (
            json!({"customer": {"data": {"id": "x", "attributes": {"emails": "a@b.c"}}}}),
            "customer.data.attributes.emails",
        ),
        (json!({"user": {"data": []}}), "user.data"),
        (
            json!({"tags": {"data": [{"id": "a", "attributes": {"name": 5}}]}}),
            "tags.data[0].attributes.name",
        ),
        (
            json!({"options": {"allowLoopback": "yes"}}),
            "options.allowLoopback",
        ),
    ] {
        let out = build(input(|d| {
            for (k, v) in edit.as_object().unwrap() {
                d[k] = v.clone();
            }
        }));
        assert_eq!(out["ok"], false);
        assert_eq!(out["error"]["code"], "invalid_shape", "{out:#}");
        assert_eq!(out["error"]["path"], path, "{out:#}");
    }
    assert_eq!(build(json!([1]))["error"]["code"], "invalid_shape");
}

#[test]
fn loopback_settings_need_the_option() {
    let local = |d: &mut Value| {
        d["settings"]["stellaApiUrl"] = json!("http://127.0.0.1:8787/sandbox/stella")
    };
    assert_eq!(skip_code(&build(input(local))), "invalid_settings");
    let out = build(input(|d| {
        local(d);
        d["options"] = json!({"allowLoopback": true});
    }));
    assert_eq!(
        out["request"]["url"],
        "http://127.0.0.1:8787/sandbox/stella/v1/requests"
    );
}

fn plan(settings: Value, event: Value) -> Value {
    let now = timestamp::parse("2026-11-21T00:00:00Z").unwrap();
    serde_json::to_value(api::plan_conversation_event(
        &settings,
        &event,
        Options::default(),
        now,
    ))
    .unwrap()
}

#[test]
fn close_event_schedules_at_close_plus_delay() {
    let out = plan(
        settings_with(json!({"secondsUntilSend": "900"})),
        fixture("conversation-update-done"),
    );
    assert_eq!(
        out,
        json!({"action": "schedule", "conversationId": "6560e0f1a2b3c4d5e6f70819", "org": "5f0c1b2a3d4e5f6a7b8c9d0e",
               "closedAt": "2026-11-20T14:03:11.401Z", "sendAt": "2026-11-20T14:18:11.401Z"})
    );
    let out = plan(settings(), fixture("conversation-update-done"));
    assert_eq!(out["sendAt"], "2026-11-21T14:03:11.401Z", "default one day");
}

#[test]
fn close_time_falls_back_to_updated_event_then_now() {
    let mut event = fixture("conversation-update-done");
    event["data"]["attributes"]["modificationHistory"] = json!({});
    assert_eq!(
        plan(settings(), event.clone())["closedAt"],
        "2026-11-20T14:03:11.401Z",
        "updatedAt"
    );
    event["data"]["attributes"]["updatedAt"] = json!("garbage");
    assert_eq!(
        plan(settings(), event.clone())["closedAt"],
        "2026-11-20T14:03:11.435Z",
        "event createdAt"
    );
    event["createdAt"] = json!(null);
    assert_eq!(
        plan(settings(), event)["closedAt"],
        "2026-11-21T00:00:00.000Z",
        "received now"
    );
}

#[test]
fn events_that_do_not_close_are_ignored() {
    let base = fixture("conversation-update-done");
    let cases: Vec<(&str, Edit)> = vec![
        (
            "not_closed",
            Box::new(|e| {
                e["data"]["attributes"]["status"] = json!("open");
                e["changes"]["attributes"]["status"] = json!({"before": "done", "after": "open"});
            }),
        ),
        (
            "not_closed",
            Box::new(|e| e["data"]["attributes"]["status"] = json!("snoozed")),
        ),
        (
            "status_unchanged",
            Box::new(|e| {
                e["changes"] = json!({"attributes": {"tags": {"before": [], "after": ["x"]}}})
            }),
        ),
        ("status_unchanged", Box::new(|e| e["changes"] = json!(null))),
        (
            "status_unchanged",
            Box::new(|e| e["changes"]["attributes"]["status"]["before"] = json!("done")),
        ),
        (
            "not_a_conversation_update",
            Box::new(|e| e["name"] = json!("kustomer.customer.update")),
        ),
    ];
    for (reason, edit) in cases {
        let mut event = base.clone();
        edit(&mut event);
        let out = plan(settings(), event);
        assert_eq!(out["action"], "ignore", "{out}");
        assert_eq!(out["reason"], reason, "{out}");
    }
}

#[test]
fn bad_settings_or_events_are_rejected_with_codes() {
    let out = plan(json!({}), fixture("conversation-update-done"));
    assert_eq!(
        (out["action"].as_str(), out["error"]["code"].as_str()),
        (Some("reject"), Some("invalid_settings"))
    );
    assert_eq!(out["error"]["fields"].as_array().unwrap().len(), 3);
    let out = plan(
        settings(),
        json!({"name": "kustomer.conversation.update", "data": {"id": ["x"]}}),
    );
    assert_eq!(out["error"]["code"], "invalid_shape");
    assert_eq!(out["error"]["path"], "event.data.id");
}

#[test]
fn the_schema_check_refuses_what_stella_refuses() {
    let schema = support::feedback_request_schema();
    let good = fixture("expected-stella-request");
    assert!(schema.is_valid(&good));
    for bad in [
        json!({"customer": {"email": "a@b.c"}}),
        json!({"channel": "email", "customer": {"email": null}}),
        json!({"channel": "email", "unknown": 1}),
        json!({"channel": "email", "customer": {"email": "a@b.c", "phone": "1"}}),
        json!({"channel": "email", "tags": [1]}),
        json!({"channel": "email", "do_not_send": "false"}),
        json!({"channel": "email", "custom_properties": {"a": {"nested": 1}}}),
    ] {
        assert!(!schema.is_valid(&bad), "{bad}");
    }
    assert!(schema.is_valid(&json!({"channel": "email", "custom_properties": {"a": "b"}})));
}

#[test]
fn vendored_reference_copies_match_the_shared_originals() {
    // The contract and fixtures are copied into the repository so that a fresh clone tests on
    // its own; when the shared reference folder sits beside it, the copies must not drift.
    let root = env!("CARGO_MANIFEST_DIR");
    let shared = std::path::Path::new(root).join("../shared");
    if !shared.is_dir() {
        return;
    }
    let mut pairs: Vec<(String, String)> = [
        "contracts/stella-requests-openapi.yml",
        "contracts/stella-data-return-openapi.yml",
        "contracts/stella-user-management-openapi.yml",
    ]
    .iter()
    .map(|c| (c.to_string(), c.to_string()))
    .collect();
    for entry in std::fs::read_dir(shared.join("fixtures/kustomer")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        pairs.push((
            format!("fixtures/kustomer/{name}"),
            format!("tests/fixtures/kustomer/{name}"),
        ));
    }
    for (original, copy) in pairs {
        let a = std::fs::read(shared.join(&original)).unwrap();
        let b = std::fs::read(std::path::Path::new(root).join(&copy)).unwrap_or_default();
        assert!(
            a == b,
            "{copy} differs from ../shared/{original}: copy it again"
        );
    }
}

#[test]
fn a_close_later_than_its_receipt_is_refused_beyond_the_clock_skew() {
    // `plan` receives events at 2026-11-21T00:00:00Z.
    let at = |status_at: &str| {
        let mut event = fixture("conversation-update-done");
        event["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(status_at);
        plan(settings(), event)
    };
    assert_eq!(
        at("2026-11-21T00:02:00Z")["action"],
        "schedule",
        "120 s of skew"
    );
    let refused = at("2026-11-21T00:02:01Z");
    assert_eq!(
        (&refused["action"], &refused["reason"]),
        (&json!("ignore"), &json!("close_in_future"))
    );
    assert_eq!(at("2099-01-01T00:00:00Z")["reason"], "close_in_future");
    let mut event = fixture("conversation-update-done");
    event["data"]["id"] = json!(" ");
    assert_eq!(plan(settings(), event)["error"]["code"], "invalid_id");
}

#[test]
fn at_send_time_kustomers_close_reopen_and_past_surveys_decide() {
    use stella_connect::decision::{recheck, Recheck, SkipCode};
    use stella_connect::kustomer::parse_conversation;
    let settings = |days: &str| {
        stella_connect::validate_settings(
            &settings_with(json!({"secondsUntilSend": "900", "resurveyAfterDays": days})),
            Default::default(),
        )
        .unwrap()
    };
    let t = |s: &str| timestamp::parse(s).unwrap();
    let conversation = |status: &str, status_at: &str| {
        let mut doc = fixture("conversation");
        doc["data"]["attributes"]["status"] = json!(status);
        doc["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(status_at);
        parse_conversation(&doc).unwrap()
    };
    let closed = conversation("done", "2026-11-20T14:00:00Z");
    let now = t("2026-11-20T14:15:00Z");
    // The planned close is Kustomer's (within a second): send.
    assert_eq!(
        recheck(
            &settings("0"),
            &closed,
            t("2026-11-20T14:00:00.500Z"),
            None,
            now
        ),
        Recheck::Send {
            closed_at: t("2026-11-20T14:00:00Z")
        }
    );
    // Planned for an earlier close than Kustomer's: come back at Kustomer's close + delay.
    assert_eq!(
        recheck(
            &settings("0"),
            &closed,
            t("2026-11-20T13:50:00Z"),
            None,
            t("2026-11-20T14:05:00Z")
        ),
        Recheck::Retime {
            closed_at: t("2026-11-20T14:00:00Z"),
            send_at: now
        }
    );
    // Planned for a later close (a forged one), Kustomer's close is long due: send now.
    assert_eq!(
        recheck(
            &settings("0"),
            &closed,
            t("2026-11-20T14:01:00Z"),
            None,
            t("2026-11-20T14:16:00Z")
        ),
        Recheck::Send {
            closed_at: t("2026-11-20T14:00:00Z")
        }
    );
    let skip = |r: Recheck| match r {
        Recheck::Skip(s) => s.code,
        other => panic!("{other:?}"),
    };
    let open = conversation("open", "2026-11-20T14:10:00Z");
    assert_eq!(
        skip(recheck(
            &settings("0"),
            &open,
            t("2026-11-20T14:00:00Z"),
            None,
            now
        )),
        SkipCode::Reopened
    );
    let surveyed = Some(t("2026-11-10T00:00:00Z"));
    assert_eq!(
        skip(recheck(
            &settings("0"),
            &closed,
            t("2026-11-20T14:00:00Z"),
            surveyed,
            now
        )),
        SkipCode::AlreadySurveyed
    );
    assert_eq!(
        skip(recheck(
            &settings("11"),
            &closed,
            t("2026-11-20T14:00:00Z"),
            surveyed,
            now
        )),
        SkipCode::AlreadySurveyed,
        "10 days and 14 hours is not 11 days"
    );
    assert!(matches!(
        recheck(
            &settings("10"),
            &closed,
            t("2026-11-20T14:00:00Z"),
            surveyed,
            now
        ),
        Recheck::Send { .. }
    ));
}

/// The fixture conversation's brand (`relationships.brand.data.id`).
const BRAND_ID: &str = "5f0c1b2a3d4e5f6a7b8c9d41";

fn brand(name: &str) -> Value {
    json!({"data": {"type": "brand", "id": BRAND_ID, "attributes": {"name": name}}})
}

#[test]
fn the_brand_map_names_the_brand_and_falls_back_to_the_fixed_one() {
    let with = |brand_map: &str, fixed: &str, record: Value| {
        let (brand_map, fixed) = (brand_map.to_owned(), fixed.to_owned());
        build(input(move |d| {
            d["settings"]["brandMap"] = json!(brand_map);
            d["settings"]["brand"] = json!(fixed);
            d["brand"] = record;
        }))
    };
    let map = "Acme Shoes=shoes, Acme Hats=hats";
    // Mapped, in any case.
    let out = with(map, "", brand("ACME HATS"));
    assert_eq!(body(&out)["brand"], "hats");
    let out = with(map, "fallback", brand("Acme Shoes"));
    assert_eq!(
        body(&out)["brand"],
        "shoes",
        "the map wins over the fixed brand"
    );
    // Not in the map: the fixed brand.
    let out = with(map, "fallback", brand("Acme Socks"));
    assert_eq!(body(&out)["brand"], "fallback");
    // Not in the map and no fixed brand: no survey, and the agent is told why.
    let out = with(map, "", brand("Acme Socks"));
    assert_eq!(skip_code(&out), "brand_not_mapped");
    let message = out["skip"]["message"].as_str().unwrap();
    assert!(
        message.contains("Acme Socks") && message.contains("Brand map"),
        "{message}"
    );
    // No brand on the conversation.
    let out = build(input(|d| {
        d["settings"]["brandMap"] = json!(map);
        d["conversation"]["data"]["relationships"]["brand"] = json!(null);
    }));
    assert_eq!(skip_code(&out), "brand_not_mapped");
    assert!(out["skip"]["message"]
        .as_str()
        .unwrap()
        .contains("has no brand"));
    // A brand record that is not the conversation's is not read as its brand.
    let mut other = brand("Acme Shoes");
    other["data"]["id"] = json!("another");
    assert_eq!(skip_code(&with(map, "", other)), "brand_not_mapped");
    // The brand not read (no record given).
    let out = with(map, "", Value::Null);
    assert_eq!(skip_code(&out), "brand_not_mapped");
    assert!(out["skip"]["message"]
        .as_str()
        .unwrap()
        .contains("could not be read"));
    // The map empty: as before, the fixed brand or none, whatever the conversation's brand.
    assert_eq!(
        body(&with("", "fixed", brand("Acme Socks")))["brand"],
        "fixed"
    );
    assert!(body(&with("", "", brand("Acme Socks")))
        .get("brand")
        .is_none());
    // Also from `attributes.brand`.
    let out = build(input(|d| {
        d["settings"]["brandMap"] = json!(map);
        d["conversation"]["data"]["relationships"]["brand"] = json!(null);
        d["conversation"]["data"]["attributes"]["brand"] = json!(BRAND_ID);
        d["brand"] = brand("acme shoes");
    }));
    assert_eq!(body(&out)["brand"], "shoes");
    // A malformed brand answer is a coded error with its path.
    let out = with(map, "", json!({"data": {"id": 5}}));
    assert_eq!(out["error"]["path"], "brand.data.id", "{out:#}");
}

#[test]
fn the_language_map_renames_tags_and_bare_languages() {
    let with = |locale: &str, map: &str| {
        let (locale, map) = (locale.to_owned(), map.to_owned());
        let out = build(input(move |d| {
            d["settings"]["sendLanguage"] = json!(true);
            d["settings"]["languageMap"] = json!(map);
            d["conversation"]["data"]["attributes"]["locale"] = json!(locale);
        }));
        body(&out).get("language").cloned()
    };
    let map = "en-us=English (US), fr=French";
    assert_eq!(with("en_us", map), Some(json!("English (US)")));
    assert_eq!(
        with("fr_ca", map),
        Some(json!("French")),
        "the bare language"
    );
    assert_eq!(with("fr", map), Some(json!("French")));
    assert_eq!(
        with("en_gb", map),
        Some(json!("en-GB")),
        "unmapped: as before"
    );
    assert_eq!(with("de", ""), Some(json!("de")));
    assert_eq!(with("US", map), None, "a bare region is still no language");
    // Nothing is sent without sendLanguage, map or not.
    let out = build(input(|d| {
        d["settings"]["languageMap"] = json!("en-US=English")
    }));
    assert!(body(&out).get("language").is_none());
}

#[test]
fn every_request_carries_the_org_and_conversation_and_the_admins_properties() {
    let build_with = |props: &str, org: Option<&str>, edit: &dyn Fn(&mut Value)| {
        let mut doc = input(|_| {});
        doc["settings"]["customProperties"] = json!(props);
        if let Some(org) = org {
            doc["org"] = json!(org);
        }
        edit(&mut doc);
        let out = build(doc);
        body(&out)["custom_properties"].clone()
    };
    assert_eq!(
        build_with("", Some("org-1"), &|_| {}),
        json!({"kustomer_org": "org-1", "kustomer_conversation_id": "6560e0f1a2b3c4d5e6f70819"})
    );
    assert_eq!(
        build_with("", None, &|_| {}),
        json!({"kustomer_conversation_id": "6560e0f1a2b3c4d5e6f70819"}),
        "an org not known is left out, never invented"
    );
    let props = "conversation.priority=priority, conversation.name=subject, conversation.custom.orderIdStr=order, \
                 conversation.custom.vipBool=vip, conversation.custom.missingStr=missing, conversation.custom.listStr=list, \
                 conversation.custom.objStr=obj, conversation.custom.nullStr=none, conversation.custom.blankStr=blank, \
                 customer.custom.tierStr=tier, customer.locale=customer_locale, customer.custom.scoreNum=score";
    let long = "é".repeat(2500);
    let got = build_with(props, Some("org-1"), &|d| {
        let custom = &mut d["conversation"]["data"]["attributes"]["custom"];
        custom["orderIdStr"] = json!(long.clone());
        custom["vipBool"] = json!(true);
        custom["listStr"] = json!(["a"]);
        custom["objStr"] = json!({"a": 1});
        custom["nullStr"] = json!(null);
        custom["blankStr"] = json!("  ");
        let customer = &mut d["customer"]["data"]["attributes"];
        customer["custom"] = json!({"tierStr": "gold", "scoreNum": 4.5});
    });
    let order: String = "é".repeat(2000);
    assert_eq!(
        got,
        json!({
            "kustomer_org": "org-1",
            "kustomer_conversation_id": "6560e0f1a2b3c4d5e6f70819",
            "priority": "3",
            "subject": "Where is my order?",
            "order": order,
            "vip": "true",
            "tier": "gold",
            "customer_locale": "en_us",
            "score": "4.5",
        })
    );
    // Without a customer record, its attributes are simply absent.
    let got = build_with("customer.custom.tierStr=tier", None, &|d| {
        d["customer"]["data"]["attributes"]["custom"] = json!({"tierStr": "gold"});
        d["conversation"]["data"]["relationships"]["customer"] = json!(null);
    });
    assert_eq!(got["tier"], "gold", "the customer given is read");
}

#[test]
fn the_schema_takes_custom_properties_only_as_a_flat_map_of_text() {
    let mut ok = fixture("expected-stella-request");
    ok["custom_properties"] = json!({"kustomer_org": "o", "a": "x".repeat(2000)});
    assert_valid_body(&ok);
    let validator = support::feedback_request_schema();
    for bad in [
        json!({"a": 1}),
        json!({"a": {"b": "c"}}),
        json!({"a": "x".repeat(2001)}),
        json!(["a"]),
    ] {
        let mut body = fixture("expected-stella-request");
        body["custom_properties"] = bad.clone();
        assert!(!validator.is_valid(&body), "{bad}");
    }
}
