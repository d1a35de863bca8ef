//! The agent's card, through the JSON API `explainConversation` calls: each outlook, and that
//! the card agrees with what the edge would send.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use serde_json::{json, Value};
use stella_connect::api;
use stella_connect::card::describe_delay;
use stella_connect::timestamp;
use support::{fixture, settings, settings_with, survey_input as input};

/// A change to a test document.
type Edit = Box<dyn Fn(&mut Value)>;

/// The fixture conversation was closed at this time.
const CLOSED_AT: &str = "2026-11-20T14:03:11.401Z";

fn card_at(input: Value, now: &str) -> Value {
    let out = serde_json::to_value(api::explain_conversation(
        &input,
        timestamp::parse(now).unwrap(),
    ))
    .unwrap();
    assert_eq!(out["ok"], true, "{out:#}");
    out["card"].clone()
}

/// An hour after the fixture's close: its one-day survey is still ahead.
fn card(input: Value) -> Value {
    card_at(input, "2026-11-20T15:03:11.401Z")
}

fn attrs(doc: &mut Value) -> &mut Value {
    &mut doc["conversation"]["data"]["attributes"]
}

#[test]
fn a_closed_conversation_shows_who_gets_the_survey_and_when() {
    let card = card(input(|_| {}));
    let expected = fixture("expected-stella-request");
    assert_eq!(card["outlook"], "scheduled");
    assert_eq!(card["sendAt"], "2026-11-21T14:03:11.401Z");
    assert_eq!(card["delay"], "1 day");
    assert_eq!(card["doNotSend"], false);
    // The same facts the edge would send.
    assert_eq!(
        card["survey"]["customerEmail"],
        expected["customer"]["email"]
    );
    assert_eq!(card["survey"]["customerName"], expected["customer"]["name"]);
    assert_eq!(card["survey"]["agentEmail"], expected["employee"]["email"]);
    assert_eq!(card["survey"]["channel"], expected["channel"]);
    let name = expected["customer"]["name"].as_str().unwrap();
    assert!(card["headline"].as_str().unwrap().contains(name), "{card}");
}

#[test]
fn after_the_due_time_the_card_says_it_is_due() {
    let card = card_at(input(|_| {}), "2026-11-21T14:03:12.000Z");
    assert_eq!(card["outlook"], "due");
    assert_eq!(card["sendAt"], "2026-11-21T14:03:11.401Z");
}

#[test]
fn an_open_conversation_says_what_closing_it_brings() {
    let card = card(input(|d| attrs(d)["status"] = json!("open")));
    assert_eq!(card["outlook"], "when_closed");
    assert!(card.get("sendAt").is_none());
    assert!(
        card["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 day after this conversation is closed"),
        "{card}"
    );
    let soon = card_open_with(json!({"secondsUntilSend": "0"}));
    assert!(soon["detail"]
        .as_str()
        .unwrap()
        .starts_with("Immediately after"));
}

fn card_open_with(changes: Value) -> Value {
    card(input(|d| {
        d["settings"] = settings_with(changes);
        attrs(d)["status"] = json!("open");
    }))
}

#[test]
fn each_reason_for_no_survey_is_shown_with_its_code() {
    let cases: [(&str, Edit); 4] = [
        (
            "no_assigned_agent",
            Box::new(|d| attrs(d)["assignedUsers"] = json!([])),
        ),
        (
            "no_customer_email",
            Box::new(|d| d["customer"]["data"]["attributes"]["emails"] = json!([])),
        ),
        (
            "no_agent_email",
            Box::new(|d| d["user"]["data"]["attributes"]["email"] = Value::Null),
        ),
        (
            "channel_not_surveyed",
            Box::new(|d| d["settings"] = settings_with(json!({"surveyedChannels": "chat"}))),
        ),
    ];
    for (code, edit) in cases {
        for status in ["done", "open"] {
            let card = card(input(|d| {
                edit(d);
                attrs(d)["status"] = json!(status);
            }));
            assert_eq!(card["outlook"], "no_survey", "{code} {status}: {card}");
            assert_eq!(card["reason"]["code"], code, "{card}");
            assert_eq!(card["detail"], card["reason"]["message"]);
            assert!(card.get("survey").is_none());
        }
    }
}

#[test]
fn do_not_send_is_shown_under_either_attribute_name() {
    for key in [
        "@stellaDoNotSendStellaConnectRequestBool",
        "doNotSendStellaConnectRequestBool",
    ] {
        let card = card(input(|d| attrs(d)["custom"] = json!({ key: true })));
        assert_eq!(card["outlook"], "do_not_send", "{key}");
        assert_eq!(card["doNotSend"], true);
    }
}

#[test]
fn the_switch_writes_the_plain_attribute_too_when_the_conversation_has_it() {
    let app_only = card(input(|_| {}));
    assert_eq!(
        app_only["doNotSendKeys"],
        json!(["@stellaDoNotSendStellaConnectRequestBool"])
    );
    let both = card(input(|d| {
        attrs(d)["custom"] = json!({"doNotSendStellaConnectRequestBool": false})
    }));
    assert_eq!(
        both["doNotSendKeys"],
        json!([
            "@stellaDoNotSendStellaConnectRequestBool",
            "doNotSendStellaConnectRequestBool"
        ])
    );
}

#[test]
fn masked_keys_are_enough_and_missing_settings_say_not_configured() {
    let masked = card(input(|d| {
        d["settings"] =
            settings_with(json!({"stellaApiKey": "********", "kustomerApiKey": "********"}))
    }));
    assert_eq!(masked["outlook"], "scheduled");
    let missing = card(input(|d| d["settings"] = json!({})));
    assert_eq!(missing["outlook"], "not_configured");
    assert_eq!(missing["reason"]["code"], "invalid_settings");
    let fields: Vec<&str> = missing["reason"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"stellaApiKey") && fields.contains(&"kustomerUrl"),
        "{fields:?}"
    );
}

#[test]
fn malformed_input_is_an_error_with_its_path() {
    let out = serde_json::to_value(api::explain_conversation(
        &json!({"settings": settings(), "conversation": {"data": {"id": 7}}}),
        timestamp::parse(CLOSED_AT).unwrap(),
    ))
    .unwrap();
    assert_eq!(out["ok"], false);
    assert_eq!(out["error"]["code"], "invalid_shape");
    assert!(
        out["error"]["path"]
            .as_str()
            .unwrap()
            .starts_with("conversation"),
        "{out}"
    );
}

#[test]
fn delays_read_in_the_largest_whole_unit() {
    for (seconds, words) in [
        (0, "immediately"),
        (1, "1 second"),
        (90, "90 seconds"),
        (120, "2 minutes"),
        (3_600, "1 hour"),
        (5_400, "90 minutes"),
        (86_400, "1 day"),
        (2_592_000, "30 days"),
    ] {
        assert_eq!(describe_delay(seconds), words);
    }
}

#[test]
fn the_card_states_the_rule_for_closing_again_after_a_survey() {
    let rule = |days: &str| {
        let c = card(input(|doc| {
            doc["settings"]["resurveyAfterDays"] = json!(days)
        }));
        c["resurvey"].as_str().unwrap_or_default().to_owned()
    };
    assert!(rule("0").contains("surveyed once"), "{}", rule("0"));
    assert!(rule("30").contains("30 days"), "{}", rule("30"));
    let none = card(input(|doc| attrs(doc)["assignedUsers"] = json!([])));
    assert_eq!(
        none["resurvey"],
        Value::Null,
        "no rule where no survey goes out"
    );
}

/// The card with the outcome attributes the edge writes put on the conversation.
fn card_with_outcome(custom: Value) -> Value {
    card(input(|d| attrs(d)["custom"] = custom))
}

#[test]
fn a_rated_survey_shows_its_stars_rating_and_comment() {
    let card = card_with_outcome(json!({
        "@stellaSurveyDeliveryStatusStr": "sent",
        "@stellaSurveySentAt": "2026-11-21T14:03:13.000Z",
        "@stellaSurveyRespondedAt": "2026-11-21T14:40:00.500Z",
        "@stellaSurveyRatingNum": 4,
        "@stellaSurveyCommentTxt": "Quick and \"kind\" <b>",
    }));
    assert_eq!(
        card["outcome"],
        json!({
            "status": "sent", "lead": "Survey sent", "at": "2026-11-21T14:03:13.000Z",
            "tail": " · rated 4 of 5: “Quick and \"kind\" <b>”",
            "rating": 4, "stars": "★★★★☆", "ratingText": "rated 4 of 5",
            "comment": "Quick and \"kind\" <b>",
        })
    );
    // The headline says what happened, not what was planned.
    assert_eq!(card["outlook"], "sent");
    assert_eq!(card["headline"], "Sent, rated 4 of 5");
}

/// The headline comes from what happened once the conversation is closed: Agent Connect's
/// outcome first, then the delivery log; the prediction only before the close, or while the
/// log says the survey is still to go.
#[test]
fn the_headline_tells_what_happened_after_the_close() {
    let sent_at = "2026-11-21T14:03:13.000Z";
    let rated = json!({"@stellaSurveyDeliveryStatusStr": "sent", "@stellaSurveySentAt": sent_at,
        "@stellaSurveyRatingNum": 4});
    let unanswered =
        json!({"@stellaSurveyDeliveryStatusStr": "sent", "@stellaSurveySentAt": sent_at});
    let suppressed = json!({"@stellaSurveyDeliveryStatusStr": "suppressed"});
    let skipped = json!({"state": "skipped", "reason": "no_customer_email",
        "message": "The customer has no email address."});
    let failed = json!({"state": "failed", "reason": "stella_rejected",
        "message": "Agent Connect answered 400: bad channel"});
    let none = json!({});
    // (what the conversation carries, the log's entry, now, status) → (outlook, headline)
    let after = "2026-11-22T09:00:00.000Z"; // past the send time
    let before = "2026-11-20T15:03:11.401Z"; // before it
    let cases = [
        (
            &rated,
            json!({"state": "sent"}),
            after,
            "done",
            ("sent", "Sent, rated 4 of 5"),
        ),
        (
            &rated,
            Value::Null,
            after,
            "done",
            ("sent", "Sent, rated 4 of 5"),
        ),
        (
            &unanswered,
            json!({"state": "sent"}),
            after,
            "done",
            ("sent", "Sent, not answered yet"),
        ),
        (
            &none,
            json!({"state": "sent"}),
            after,
            "done",
            ("sent", "Survey sent"),
        ),
        (
            &suppressed,
            json!({"state": "sent"}),
            after,
            "done",
            ("not_sent", "Not sent by Agent Connect"),
        ),
        (
            &none,
            skipped.clone(),
            before,
            "done",
            ("not_sent", "No survey was sent"),
        ),
        (
            &none,
            failed.clone(),
            after,
            "done",
            ("failed", "The survey could not be sent"),
        ),
        (
            &none,
            json!({"state": "held", "message": "Waiting for the admin"}),
            before,
            "done",
            ("not_sent", "No survey sent yet"),
        ),
        // Still to go: the prediction stands.
        (
            &none,
            json!({"state": "scheduled"}),
            before,
            "done",
            ("scheduled", "A survey will go to Ann Lee"),
        ),
        (
            &none,
            json!({"state": "retrying"}),
            after,
            "done",
            ("due", "The survey to Ann Lee is due"),
        ),
        (
            &none,
            Value::Null,
            before,
            "done",
            ("scheduled", "A survey will go to Ann Lee"),
        ),
        // Before the close: the prediction, whatever an earlier survey's log says.
        (
            &none,
            skipped.clone(),
            before,
            "open",
            ("when_closed", "A survey will go to Ann Lee"),
        ),
        (
            &rated,
            json!({"state": "sent"}),
            before,
            "open",
            ("when_closed", "A survey will go to Ann Lee"),
        ),
    ];
    for (custom, delivery, now, status, (outlook, headline)) in cases {
        let doc = input(|d| {
            attrs(d)["custom"] = custom.clone();
            attrs(d)["status"] = json!(status);
            d["delivery"] = delivery.clone();
        });
        let card = card_at(doc, now);
        let what = format!("{custom} {delivery} {status} at {now}");
        assert_eq!(card["outlook"], outlook, "{what}: {card:#}");
        assert_eq!(card["headline"], headline, "{what}: {card:#}");
        let promise = card["headline"]
            .as_str()
            .unwrap()
            .starts_with("A survey will go");
        if ["not_sent", "failed"].contains(&outlook) {
            assert!(
                card.get("survey").is_none(),
                "no recipient above a refusal: {card:#}"
            );
            assert!(!promise);
        }
    }
    // The log's words say why.
    let card = card_at(input(|d| d["delivery"] = failed.clone()), after);
    assert_eq!(card["detail"], "Agent Connect answered 400: bad channel");
    // Odd entries are no entry.
    for odd in [json!("sent"), json!({"state": 3}), json!([])] {
        let card = card_at(input(|d| d["delivery"] = odd.clone()), before);
        assert_eq!(card["outlook"], "scheduled", "{odd}");
    }
}

/// A right-to-left override in a name or a comment would reverse the text after it wherever
/// the card shows it: the card gives the text back without direction controls.
#[test]
fn direction_controls_in_names_and_comments_are_removed() {
    let rlo = '\u{202E}';
    let doc = input(|d| {
        d["customer"]["data"]["attributes"]["name"] = json!(format!("Ann{rlo} Lee\u{2066}"));
        attrs(d)["custom"] = json!({"@stellaSurveyDeliveryStatusStr": "sent",
            "@stellaSurveyRatingNum": 2, "@stellaSurveyCommentTxt": format!("slow{rlo}!won\u{200F}")});
    });
    let card = card(doc);
    let text = card.to_string();
    for c in stella_connect::display::BIDI_CONTROLS {
        assert!(!text.contains(c), "{c:?} in {card:#}");
    }
    assert_eq!(card["survey"]["customerName"], "Ann Lee");
    assert_eq!(card["outcome"]["comment"], "slow!won");
}

#[test]
fn each_outcome_reads_as_one_line() {
    let sent_at = "2026-11-21T14:03:13.000Z";
    let cases = [
        (
            json!({"@stellaSurveyDeliveryStatusStr": "sent", "@stellaSurveySentAt": sent_at}),
            ("Survey sent", Some(sent_at), " · not answered yet"),
        ),
        (
            json!({"@stellaSurveyDeliveryStatusStr": "suppressed"}),
            (
                "Not sent: the customer is in Agent Connect's suppression period",
                None,
                "",
            ),
        ),
        (
            json!({"@stellaSurveyDeliveryStatusStr": "do_not_send"}),
            ("Not sent: the conversation was marked do not send", None, ""),
        ),
        (
            json!({"@stellaSurveyDeliveryStatusStr": "hard_bounce", "@stellaSurveySentAt": sent_at}),
            (
                "Not delivered: the customer's address does not take mail",
                None,
                "",
            ),
        ),
        (
            json!({"@stellaSurveyDeliveryStatusStr": "soft_bounce", "@stellaSurveySentAt": sent_at}),
            (
                "Survey sent",
                Some(sent_at),
                " · not delivered yet: the customer's mail server refused it for now; Agent Connect tries again",
            ),
        ),
        (
            json!({"@stellaSurveyDeliveryStatusStr": "something_new"}),
            (
                "Survey status unknown: Agent Connect reported a status this app does not know",
                None,
                "",
            ),
        ),
        // Answered without a rating, and no send time: the answer's time is shown.
        (
            json!({"@stellaSurveyDeliveryStatusStr": "sent", "@stellaSurveyRespondedAt": "2026-11-21T15:40:00+01:00",
                "@stellaSurveyCommentTxt": "Fine"}),
            (
                "Survey answered",
                Some("2026-11-21T14:40:00.000Z"),
                " · answered without a rating: “Fine”",
            ),
        ),
        // A rating as Kustomer may give a number back, and no status yet.
        (
            json!({"@stellaSurveyRatingNum": 5.0}),
            ("Survey answered", None, " · rated 5 of 5"),
        ),
    ];
    for (custom, (lead, at, tail)) in cases {
        let outcome = &card_with_outcome(custom.clone())["outcome"];
        assert_eq!(outcome["lead"], lead, "{custom}");
        assert_eq!(outcome["at"].as_str(), at, "{custom}");
        assert_eq!(outcome["tail"], tail, "{custom}");
    }
}

#[test]
fn no_outcome_attributes_means_no_outcome_and_odd_values_are_ignored() {
    assert!(card(input(|_| {})).get("outcome").is_none());
    let odd = card_with_outcome(json!({
        "@stellaSurveyRatingNum": 6, "@stellaSurveyCommentTxt": "  ",
        "@stellaSurveySentAt": "soon", "@stellaSurveyRespondedAt": 12,
        "surveyRatingNum": 5,
    }));
    assert!(odd.get("outcome").is_none(), "{odd}");
    for rating in [json!(0), json!(4.5), json!("4"), json!(null)] {
        let c = card_with_outcome(
            json!({"@stellaSurveyDeliveryStatusStr": "sent", "@stellaSurveyRatingNum": rating}),
        );
        assert!(c["outcome"].get("rating").is_none(), "{c}");
        assert!(c["outcome"].get("stars").is_none(), "{c}");
        assert_eq!(c["outcome"]["tail"], " · not answered yet", "{c}");
    }
}

#[test]
fn the_card_reads_back_what_the_edge_writes() {
    use stella_connect::survey_outcome::{conversation_custom, read_record};
    for (status, rating) in [
        ("Sent", Some(1)),
        ("Sent", Some(5)),
        ("Sent", None),
        ("Not sent: rejected", None),
        ("Hard bounce", None),
    ] {
        let mut record = json!({"uuid": "u1", "ext_interaction_id": "c1",
            "request_delivery_status": status, "request_sent_at": "2026-11-21T14:03:13Z"});
        if let Some(r) = rating {
            record["answers"] =
                json!({"agent_star_rating": {"selected_options": {"o": {"integer_value": r}}}});
        }
        let outcome = read_record(&record).unwrap().outcome;
        let card = card_with_outcome(Value::Object(conversation_custom(&outcome)));
        let shown = &card["outcome"];
        assert_eq!(
            shown["status"],
            outcome.delivery_status.as_str(),
            "{record}"
        );
        assert_eq!(shown["rating"].as_u64(), rating, "{record}");
        if let Some(r) = rating {
            let stars = shown["stars"].as_str().unwrap();
            assert_eq!(stars.chars().filter(|c| *c == '★').count(), r as usize);
            assert_eq!(stars.chars().count(), 5);
            assert_eq!(shown["ratingText"], format!("rated {r} of 5"));
        }
    }
}
