//! Reading Agent Connect's Data Return records (`GET /v2/data`) into survey outcomes, and the
//! conversation attributes written from them. The full records are checked against the
//! vendor's `ResponseBodyDataReturn_FeedbacksV2`, so the cases are records the API could send.
#![cfg(not(target_arch = "wasm32"))]

use serde_json::{json, Value};
use stella_connect::api;
use stella_connect::survey_outcome::{
    conversation_custom, read_record, DeliveryStatus, SurveyOutcome, ATTRIBUTES, COMMENT_ATTRIBUTE,
    MAX_COMMENT_CHARS,
};
use stella_connect::InputErrorCode;

const CONVERSATION: &str = "6560e0f1a2b3c4d5e6f70819";

/// A record as Agent Connect returns it for a rated survey: every documented field set.
fn record() -> Value {
    json!({
        "uuid": "0f8b4c1e-7d2a-4b59-9e61-2a7c3d5e8f10",
        "sequence_id": 104233,
        "is_recovery": false,
        "branding": "acme",
        "channel": "email",
        "ext_interaction_id": CONVERSATION,
        "language": "en",
        "survey_id": 12,
        "survey_name": "Support",
        "tags": ["vip", "orders"],
        "request_created_at": "2026-11-21T09:03:12.118-05:00",
        "request_delivery_status": "Sent",
        "request_sent_at": "2026-11-21T09:03:13-05:00",
        "requested_via": "API",
        "response_received_at": "2026-11-21T15:40:00.5+01:00",
        "reward_eligible": false,
        "marketing": {"custom_link_eligible": false, "custom_link_initiated": false},
        "employee": {"custom_id": "5f0c1b2a3d4e5f6a7b8c9d21", "email": "agent@acme.example",
            "first_name": "Ada", "last_name": "Agent"},
        "team_leader": {"full_name": "Tess Lead"},
        "customer": {"email": "zoe@example.com", "full_name": "Zoë Ōkubo"},
        "custom_properties": {"kustomer_org": "5f0c1b2a3d4e5f6a7b8c9d0e",
            "kustomer_conversation_id": CONVERSATION},
        "answers": {
            "agent_star_rating": {
                "question_id": "q-41", "question_text": "How did {{agent}} do?",
                "comment": "Quick and kind",
                "selected_options": {"opt-4": {"option_id": "opt-4", "option_text": "4 stars", "integer_value": 4}}
            },
            "nps": {"question_id": "q-42", "selected_options": {"opt-9": {"option_id": "opt-9", "integer_value": 9}}}
        }
    })
}

/// `record()` with changes applied by `edit`.
fn record_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut r = record();
    edit(&mut r);
    r
}

fn outcome(value: &Value) -> SurveyOutcome {
    read_record(value)
        .unwrap_or_else(|e| panic!("{e}: {value:#}"))
        .outcome
}

/// The vendor's record schema, from its OpenAPI file in `contracts/`.
///
/// As published, `answers` and `selected_options` list the fields of ONE answer and ONE option
/// as their own properties, closed with `additionalProperties: false`, while the description
/// says both are keyed (by question, by option id): a real record would fail. Each is checked
/// here as the documented map whose values have the published fields; the rest as published.
fn schema() -> jsonschema::Validator {
    let path = format!(
        "{}/contracts/stella-data-return-openapi.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec: Value = serde_norway::from_str(&std::fs::read_to_string(&path).expect(&path))
        .expect("the contract is YAML");
    let mut schema = spec["components"]["schemas"]["ResponseBodyDataReturn_FeedbacksV2"].clone();
    assert_eq!(
        schema["additionalProperties"],
        json!(false),
        "a closed schema"
    );
    let mut answer = schema["properties"]["answers"].clone();
    let option = answer["properties"]["selected_options"].clone();
    answer["properties"]["selected_options"] =
        json!({"type": "object", "additionalProperties": option});
    schema["properties"]["answers"] = json!({"type": "object", "additionalProperties": answer});
    jsonschema::validator_for(&schema).expect("a valid schema")
}

fn assert_valid_record(validator: &jsonschema::Validator, record: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(record)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a FeedbacksV2 record: {errors:?}\n{record:#}"
    );
}

#[test]
fn the_fixtures_are_records_the_vendor_schema_accepts() {
    let validator = schema();
    for r in [
        record(),
        record_with(|r| {
            r["request_delivery_status"] = json!("Not sent: suppression period");
            r.as_object_mut().map(|o| o.remove("answers"));
            r.as_object_mut().map(|o| o.remove("response_received_at"));
        }),
        record_with(|r| r["answers"]["agent_star_rating"]["selected_options"] = json!({})),
    ] {
        assert_valid_record(&validator, &r);
    }
    // The adapted schema still refuses what the vendor's refuses.
    for bad in [
        record_with(|r| r["sequence_id"] = json!("104233")),
        record_with(|r| r["surprise"] = json!(1)),
        record_with(|r| {
            r["answers"]["agent_star_rating"]["selected_options"]["opt-4"]["integer_value"] =
                json!("4")
        }),
    ] {
        assert!(!validator.is_valid(&bad), "{bad:#}");
    }
}

#[test]
fn a_full_record_reads_into_its_outcome() {
    let read = read_record(&record()).unwrap();
    assert_eq!(
        read.outcome,
        SurveyOutcome {
            conversation_id: CONVERSATION.into(),
            uuid: "0f8b4c1e-7d2a-4b59-9e61-2a7c3d5e8f10".into(),
            delivery_status: DeliveryStatus::Sent,
            delivery_status_text: None,
            rating: Some(4),
            comment: Some("Quick and kind".into()),
            sent_at: Some("2026-11-21T14:03:13.000Z".into()),
            responded_at: Some("2026-11-21T14:40:00.500Z".into()),
            is_recovery: false,
        }
    );
    assert_eq!(read.sequence_id, Some(104233));
    assert_eq!(read.created_at.as_deref(), Some("2026-11-21T14:03:12.118Z"));
    assert_eq!(read.org.as_deref(), Some("5f0c1b2a3d4e5f6a7b8c9d0e"));
    assert!(read.outcome.is_final());
}

#[test]
fn each_vendor_status_text_has_its_code() {
    for (text, status, code) in [
        ("Sent", DeliveryStatus::Sent, "sent"),
        (
            "Not sent: suppression period",
            DeliveryStatus::Suppressed,
            "suppressed",
        ),
        (
            "Not sent: do not send flag",
            DeliveryStatus::DoNotSend,
            "do_not_send",
        ),
        (
            "Not sent: consumer unsubscribed",
            DeliveryStatus::Unsubscribed,
            "unsubscribed",
        ),
        ("Not sent: rejected", DeliveryStatus::Rejected, "rejected"),
        ("Soft bounce", DeliveryStatus::SoftBounce, "soft_bounce"),
        ("Hard bounce", DeliveryStatus::HardBounce, "hard_bounce"),
        // Lenient on case and spacing.
        ("  sent ", DeliveryStatus::Sent, "sent"),
        (
            "NOT SENT:  Suppression   period",
            DeliveryStatus::Suppressed,
            "suppressed",
        ),
        ("hard BOUNCE", DeliveryStatus::HardBounce, "hard_bounce"),
    ] {
        let o = outcome(&record_with(|r| {
            r["request_delivery_status"] = json!(text);
            r.as_object_mut().map(|o| o.remove("answers"));
            r.as_object_mut().map(|o| o.remove("response_received_at"));
        }));
        assert_eq!(o.delivery_status, status, "{text}");
        assert_eq!(o.delivery_status.as_str(), code, "{text}");
        assert_eq!(o.delivery_status_text, None, "{text}");
        assert_eq!(DeliveryStatus::from_code(code), Some(status));
        let shown = serde_json::to_value(&o).unwrap();
        assert_eq!(shown["deliveryStatus"], code, "{text}");
    }
}

#[test]
fn an_unknown_status_keeps_the_vendor_text() {
    for (value, text) in [
        (json!("Queued for delivery"), Some("Queued for delivery")),
        (json!("Not sent"), Some("Not sent")),
        (json!("Sent twice"), Some("Sent twice")),
        (json!(""), None),
        (json!(null), None),
        (json!(7), None),
    ] {
        let o = outcome(&record_with(|r| {
            r["request_delivery_status"] = value.clone()
        }));
        assert_eq!(o.delivery_status, DeliveryStatus::Unknown, "{value}");
        assert_eq!(o.delivery_status_text.as_deref(), text, "{value}");
    }
    let o = outcome(&record_with(|r| {
        r.as_object_mut()
            .map(|o| o.remove("request_delivery_status"));
    }));
    assert_eq!(o.delivery_status, DeliveryStatus::Unknown);
    let shown = serde_json::to_value(outcome(&record_with(|r| {
        r["request_delivery_status"] = json!("Queued")
    })))
    .unwrap();
    assert_eq!(shown["deliveryStatusText"], "Queued");
}

#[test]
fn the_rating_comes_from_any_option_id_and_only_from_1_to_5() {
    let rated = |options: Value| {
        outcome(&record_with(|r| {
            r["answers"]["agent_star_rating"]["selected_options"] = options
        }))
        .rating
    };
    assert_eq!(rated(json!({"x9": {"integer_value": 5}})), Some(5));
    assert_eq!(rated(json!({"7731": {"integer_value": 1}})), Some(1));
    assert_eq!(
        rated(json!({"a": {"option_text": "no value"}, "b": {"integer_value": 3}})),
        Some(3)
    );
    for ignored in [
        json!({"a": {"integer_value": 0}}),
        json!({"a": {"integer_value": 6}}),
        json!({"a": {"integer_value": -4}}),
        json!({"a": {"integer_value": 4.5}}),
        json!({"a": {"integer_value": "4"}}),
        json!({"a": {"integer_value": null}}),
        json!({"a": 4}),
        json!({}),
        json!(null),
        json!([{"integer_value": 4}]),
        json!("4"),
    ] {
        assert_eq!(rated(ignored.clone()), None, "{ignored}");
    }
    // Another question's answer is not the agent's rating.
    let o = outcome(&record_with(|r| {
        r["answers"]
            .as_object_mut()
            .map(|o| o.remove("agent_star_rating"));
    }));
    assert_eq!((o.rating, o.comment), (None, None));
}

#[test]
fn an_unanswered_or_unseen_question_gives_no_rating() {
    // Seen but not answered: no selected options.
    let seen = outcome(&record_with(|r| {
        r["answers"] =
            json!({"agent_star_rating": {"question_id": "q-41", "selected_options": {}}});
        r.as_object_mut().map(|o| o.remove("response_received_at"));
    }));
    assert_eq!(seen.rating, None);
    assert!(!seen.is_answered());
    assert!(!seen.is_final());
    // Not seen: the question is absent, or there are no answers at all.
    for answers in [json!({}), json!(null), json!("none"), json!([])] {
        let o = outcome(&record_with(|r| r["answers"] = answers.clone()));
        assert_eq!((o.rating, o.comment.clone()), (None, None), "{answers}");
    }
}

#[test]
fn the_comment_is_kept_verbatim() {
    for comment in [
        "Quick and kind",
        "Zoë was \"great\" — 'really' <b>great</b> 👍🏽",
        "line one\nline two\t\\ end",
        "  spaced  ",
    ] {
        let o = outcome(&record_with(|r| {
            r["answers"]["agent_star_rating"]["comment"] = json!(comment)
        }));
        assert_eq!(o.comment.as_deref(), Some(comment));
    }
    for none in [
        json!(""),
        json!("   "),
        json!(null),
        json!(12),
        json!(["x"]),
    ] {
        let o = outcome(&record_with(|r| {
            r["answers"]["agent_star_rating"]["comment"] = none.clone()
        }));
        assert_eq!(o.comment, None, "{none}");
    }
}

#[test]
fn nulls_and_unknown_fields_mean_nothing() {
    let mut r = record();
    for (key, value) in r.as_object_mut().unwrap() {
        if !matches!(key.as_str(), "uuid" | "ext_interaction_id") {
            *value = Value::Null;
        }
    }
    r["brand_new_field"] = json!({"nested": [1, 2]});
    let read = read_record(&r).unwrap();
    assert_eq!(
        read.outcome,
        SurveyOutcome {
            conversation_id: CONVERSATION.into(),
            uuid: "0f8b4c1e-7d2a-4b59-9e61-2a7c3d5e8f10".into(),
            delivery_status: DeliveryStatus::Unknown,
            delivery_status_text: None,
            rating: None,
            comment: None,
            sent_at: None,
            responded_at: None,
            is_recovery: false,
        }
    );
    assert_eq!(
        (read.sequence_id, read.created_at, read.org),
        (None, None, None)
    );
    let shown = serde_json::to_value(&read.outcome).unwrap();
    assert_eq!(
        shown,
        json!({"conversationId": CONVERSATION, "uuid": "0f8b4c1e-7d2a-4b59-9e61-2a7c3d5e8f10",
            "deliveryStatus": "unknown", "isRecovery": false}),
        "absent options are left out"
    );
}

#[test]
fn optional_fields_of_the_wrong_type_are_ignored() {
    let read = read_record(&record_with(|r| {
        r["sequence_id"] = json!("104233");
        r["is_recovery"] = json!("true");
        r["request_sent_at"] = json!(1_763_730_193);
        r["custom_properties"] = json!({"kustomer_org": 5});
    }))
    .unwrap();
    assert_eq!(read.sequence_id, Some(104233), "a number in text is read");
    assert!(!read.outcome.is_recovery);
    assert_eq!(read.outcome.sent_at, None);
    assert_eq!(read.org, None);
    for odd in [json!(1.5), json!(true), json!("x")] {
        let read = read_record(&record_with(|r| r["sequence_id"] = odd.clone())).unwrap();
        assert_eq!(read.sequence_id, None, "{odd}");
    }
    assert!(outcome(&record_with(|r| r["is_recovery"] = json!(true))).is_recovery);
}

#[test]
fn times_are_normalized_and_unreadable_ones_dropped() {
    for (text, normal) in [
        (
            "2026-11-21T09:03:13-05:00",
            Some("2026-11-21T14:03:13.000Z"),
        ),
        ("2026-11-21T14:03:13Z", Some("2026-11-21T14:03:13.000Z")),
        (
            "2026-11-21T23:33:13.250+09:30",
            Some("2026-11-21T14:03:13.250Z"),
        ),
        (
            "  2026-11-21T14:03:13.000Z ",
            Some("2026-11-21T14:03:13.000Z"),
        ),
        ("2026-11-21 14:03:13", None),
        ("2026-11-21", None),
        ("yesterday", None),
        ("9999-12-31T23:30:00-01:00", None),
    ] {
        let o = outcome(&record_with(|r| {
            r["request_sent_at"] = json!(text);
            r["response_received_at"] = json!(text);
        }));
        assert_eq!(o.sent_at.as_deref(), normal, "{text}");
        assert_eq!(o.responded_at.as_deref(), normal, "{text}");
    }
}

#[test]
fn a_record_without_its_conversation_or_uuid_is_refused_with_its_path() {
    let cases = [
        (json!([record()]), InputErrorCode::InvalidShape, ""),
        (json!("record"), InputErrorCode::InvalidShape, ""),
        (json!(null), InputErrorCode::InvalidShape, ""),
        (
            record_with(|r| {
                r.as_object_mut().map(|o| o.remove("ext_interaction_id"));
            }),
            InputErrorCode::InvalidShape,
            "ext_interaction_id",
        ),
        (
            record_with(|r| r["ext_interaction_id"] = json!(null)),
            InputErrorCode::InvalidShape,
            "ext_interaction_id",
        ),
        (
            record_with(|r| r["ext_interaction_id"] = json!(6560)),
            InputErrorCode::InvalidShape,
            "ext_interaction_id",
        ),
        (
            record_with(|r| r["ext_interaction_id"] = json!("  ")),
            InputErrorCode::InvalidId,
            "ext_interaction_id",
        ),
        (
            record_with(|r| r["ext_interaction_id"] = json!("..")),
            InputErrorCode::InvalidId,
            "ext_interaction_id",
        ),
        (
            record_with(|r| r["ext_interaction_id"] = json!("a\nb")),
            InputErrorCode::InvalidId,
            "ext_interaction_id",
        ),
        (
            record_with(|r| {
                r.as_object_mut().map(|o| o.remove("uuid"));
            }),
            InputErrorCode::InvalidShape,
            "uuid",
        ),
        (
            record_with(|r| r["uuid"] = json!(42)),
            InputErrorCode::InvalidShape,
            "uuid",
        ),
        (
            record_with(|r| r["uuid"] = json!(" ")),
            InputErrorCode::InvalidShape,
            "uuid",
        ),
    ];
    for (value, code, path) in cases {
        let e = read_record(&value).expect_err(&value.to_string());
        assert_eq!((e.code, e.path.as_str()), (code, path), "{value}");
        assert!(!e.message.is_empty());
        let shown = serde_json::to_value(api::read_survey_outcome(&value)).unwrap();
        assert_eq!(shown["ok"], false, "{shown}");
        assert_eq!(shown["error"]["code"], code.as_str(), "{shown}");
        assert!(shown.get("outcome").is_none(), "{shown}");
    }
}

#[test]
fn read_survey_outcome_answers_in_the_exported_shape() {
    let shown = serde_json::to_value(api::read_survey_outcome(&record())).unwrap();
    assert_eq!(
        shown,
        json!({"ok": true, "outcome": {
            "conversationId": CONVERSATION, "uuid": "0f8b4c1e-7d2a-4b59-9e61-2a7c3d5e8f10",
            "deliveryStatus": "sent", "rating": 4, "comment": "Quick and kind",
            "sentAt": "2026-11-21T14:03:13.000Z", "respondedAt": "2026-11-21T14:40:00.500Z",
            "isRecovery": false}})
    );
    // The edge keeps outcomes in its storage in this very shape and reads them back.
    let back: SurveyOutcome = serde_json::from_value(shown["outcome"].clone()).unwrap();
    assert_eq!(back, outcome(&record()));
    let later: SurveyOutcome = serde_json::from_value(json!({"conversationId": "c", "uuid": "u",
        "deliveryStatus": "a_status_from_a_later_build"}))
    .unwrap();
    assert_eq!(later.delivery_status, DeliveryStatus::Unknown);
    assert!(!later.is_recovery);
}

#[test]
fn final_means_answered_or_delivery_settled() {
    let unanswered = |status: &str| {
        outcome(&record_with(|r| {
            r["request_delivery_status"] = json!(status);
            r["answers"]["agent_star_rating"]["selected_options"] = json!({});
            r.as_object_mut().map(|o| o.remove("response_received_at"));
        }))
    };
    for (status, is_final) in [
        ("Sent", false),
        ("Soft bounce", false),
        ("Hard bounce", true),
        ("Not sent: suppression period", true),
        ("Not sent: do not send flag", true),
        ("Not sent: consumer unsubscribed", true),
        ("Not sent: rejected", true),
        ("Something new", false),
    ] {
        let o = unanswered(status);
        assert_eq!(o.is_final(), is_final, "{status}");
        assert_eq!(o.delivery_status.is_final(), is_final, "{status}");
        assert!(!o.delivery_status.words().is_empty());
    }
    assert_eq!(
        DeliveryStatus::Suppressed.words(),
        "the customer is in Agent Connect's suppression period"
    );
    // Answered: a rating, or an answer time alone (the rating question skipped).
    assert!(outcome(&record()).is_final());
    let time_only = outcome(&record_with(|r| {
        r["answers"]["agent_star_rating"]["selected_options"] = json!({})
    }));
    assert_eq!(time_only.rating, None);
    assert!(time_only.is_final());
    let rating_only = outcome(&record_with(|r| {
        r.as_object_mut().map(|o| o.remove("response_received_at"));
    }));
    assert!(rating_only.is_final());
}

#[test]
fn conversation_custom_writes_the_app_attributes() {
    let custom = conversation_custom(&outcome(&record()));
    assert_eq!(
        Value::Object(custom),
        json!({
            "@stellaSurveyRatingNum": 4,
            "@stellaSurveyCommentTxt": "Quick and kind",
            "@stellaSurveyDeliveryStatusStr": "sent",
            "@stellaSurveySentAt": "2026-11-21T14:03:13.000Z",
            "@stellaSurveyRespondedAt": "2026-11-21T14:40:00.500Z",
        })
    );
    // Fields without a value are written as null, which clears what an earlier survey of the
    // conversation left there.
    let suppressed = outcome(&record_with(|r| {
        r["request_delivery_status"] = json!("Not sent: suppression period");
        for k in ["answers", "request_sent_at", "response_received_at"] {
            r.as_object_mut().map(|o| o.remove(k));
        }
    }));
    assert_eq!(
        Value::Object(conversation_custom(&suppressed)),
        json!({
            "@stellaSurveyDeliveryStatusStr": "suppressed",
            "@stellaSurveyRatingNum": null,
            "@stellaSurveyCommentTxt": null,
            "@stellaSurveySentAt": null,
            "@stellaSurveyRespondedAt": null,
        })
    );
    let names: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "surveyRatingNum",
            "surveyCommentTxt",
            "surveyDeliveryStatusStr",
            "surveySentAt",
            "surveyRespondedAt"
        ]
    );
}

#[test]
fn a_long_comment_is_cut_on_a_character_boundary() {
    let key = format!("@stella{}", {
        let mut c = COMMENT_ATTRIBUTE.to_owned();
        c[..1].make_ascii_uppercase();
        c
    });
    let written = |comment: String| {
        let o = outcome(&record_with(|r| {
            r["answers"]["agent_star_rating"]["comment"] = json!(comment)
        }));
        assert_eq!(o.comment.as_deref(), Some(comment.as_str()), "kept whole");
        conversation_custom(&o)[&key].as_str().unwrap().to_owned()
    };
    let exact = "é".repeat(MAX_COMMENT_CHARS);
    assert_eq!(written(exact.clone()), exact);
    let long = "👍".repeat(MAX_COMMENT_CHARS + 5);
    let cut = written(long);
    assert_eq!(cut.chars().count(), MAX_COMMENT_CHARS);
    assert!(cut.chars().all(|c| c == '👍'));
    let mixed = format!("{}é{}", "a".repeat(MAX_COMMENT_CHARS - 1), "b".repeat(10));
    assert_eq!(
        written(mixed),
        format!("{}é", "a".repeat(MAX_COMMENT_CHARS - 1))
    );
}

#[test]
fn the_app_declares_the_outcome_attributes_for_admins() {
    use stella_connect::manifest::{check, definition, DEFAULT_EDGE_URL};
    let def = definition(DEFAULT_EDGE_URL);
    let klass = &def["klasses"][0];
    assert_eq!(klass["name"], "conversation");
    assert_eq!(klass["metadata"]["standard"], true);
    let props = &klass["metadata"]["properties"];
    assert_eq!(
        props["doNotSendStellaConnectRequestBool"]["displayName"],
        "Do not send Stella Connect request",
        "beside the existing switch"
    );
    for (name, label) in [
        ("surveyRatingNum", "Survey rating (1–5)"),
        ("surveyCommentTxt", "Survey comment"),
        ("surveyDeliveryStatusStr", "Survey delivery status"),
        ("surveySentAt", "Survey sent at"),
        ("surveyRespondedAt", "Survey answered at"),
    ] {
        assert_eq!(props[name]["displayName"], label, "{name}");
    }
    assert_eq!(props.as_object().map(|p| p.len()), Some(6));
    // An attribute without a name for admins is refused by the definition's check.
    let mut unlabelled = def.clone();
    unlabelled["klasses"][0]["metadata"]["properties"]["surveyCommentTxt"] = json!({});
    let violations = check(&unlabelled);
    assert!(
        violations
            .iter()
            .any(|v| v.rule == "missing_attribute_label"
                && v.path == "klasses[0].metadata.properties.surveyCommentTxt.displayName"),
        "{:?}",
        violations
            .iter()
            .map(|v| (v.rule, &v.path))
            .collect::<Vec<_>>()
    );
}
