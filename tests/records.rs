//! The two survey rules the core owns for every caller: which Kustomer records the decision reads
//! (`decision::records`, `recordsToRead`), and judging an open conversation as if it were closed
//! (`decision::decide_as_if_closed`, what the card and the preview show).
#![cfg(not(target_arch = "wasm32"))]

mod support;

use serde_json::{json, Value};
use stella_connect::decision::{self, AsIfClosed, Records};
use stella_connect::{api, kustomer, Conversation, Decision, Settings, SkipCode, SurveyInput};
use support::{fixture, settings};

fn conversation(edit: impl FnOnce(&mut Value)) -> Conversation {
    let mut doc = fixture("conversation");
    edit(&mut doc);
    kustomer::parse_conversation(&doc).unwrap()
}

fn attrs(doc: &mut Value) -> &mut Value {
    &mut doc["data"]["attributes"]
}

#[test]
fn the_fixture_reads_its_customer_its_agent_and_its_tags() {
    let c = conversation(|_| {});
    assert_eq!(
        decision::records(&c),
        Records {
            customer: Some("5f0c1b2a3d4e5f6a7b8c9d31"),
            agent: Some("5f0c1b2a3d4e5f6a7b8c9d21"),
            tags: vec!["5f0c1b2a3d4e5f6a7b8c9d11", "5f0c1b2a3d4e5f6a7b8c9d12"],
            brand: Some("5f0c1b2a3d4e5f6a7b8c9d41"),
            channel: Some("email"),
        }
    );
}

/// The channel the survey is about is the first that is not blank: the card asks the roster
/// about the same one.
#[test]
fn the_channel_is_the_first_that_is_not_blank() {
    for (channels, first) in [
        (json!(["", "  ", " chat ", "email"]), Some("chat")),
        (json!(["email", "chat"]), Some("email")),
        (json!(["", " "]), None),
        (json!(null), None),
    ] {
        let c = conversation(|d| attrs(d)["channels"] = channels.clone());
        assert_eq!(decision::records(&c).channel, first, "{channels}");
    }
}

/// The paths a page reads the records at are the edge's (`Record::path`), each id encoded as
/// `encodeURIComponent` does (the tags in one call, their ids joined by commas).
#[test]
fn records_to_read_gives_the_paths_the_edge_reads() {
    use decision::Record;
    assert_eq!(Record::User.path("u1"), ["v1", "users", "u1"]);
    assert_eq!(Record::Customer.path("c1"), ["v1", "customers", "c1"]);
    assert_eq!(Record::Tags.path("t1,t2"), ["v1", "tags", "t1,t2"]);
    assert_eq!(Record::Brand.path("b1"), ["v1", "brands", "b1"]);
    let doc = json!({"data": {"id": "c1", "attributes": {"assignedUsers": ["u 1/x"], "tags": ["t1", "t?2"], "channels": ["", "chat"]},
                     "relationships": {"brand": {"data": {"id": "b1"}}}}});
    let out = serde_json::to_value(api::records_to_read(&doc)).unwrap();
    assert_eq!(out["channel"], "chat");
    assert_eq!(
        out["paths"],
        json!({"user": "/v1/users/u%201%2Fx", "tags": "/v1/tags/t1,t%3F2", "brand": "/v1/brands/b1"})
    );
    // Every byte but `A-Za-z0-9-_.!~*'()`, as UTF-8: what the card encoded before the core did.
    let doc = json!({"data": {"id": "c1", "attributes": {"assignedUsers": ["a-_.!~*'()é,:@"]}}});
    let out = serde_json::to_value(api::records_to_read(&doc)).unwrap();
    assert_eq!(out["paths"]["user"], "/v1/users/a-_.!~*'()%C3%A9%2C%3A%40");
}

#[test]
fn the_agent_is_the_first_non_empty_assigned_user_and_empty_tags_are_dropped() {
    let c = conversation(|d| {
        attrs(d)["assignedUsers"] = json!(["", "u2", "u3"]);
        attrs(d)["tags"] = json!(["", "t1", "", "t2"]);
    });
    let r = decision::records(&c);
    assert_eq!(r.agent, Some("u2"));
    assert_eq!(r.tags, ["t1", "t2"]);

    for users in [json!([]), json!([""]), json!(null)] {
        let c = conversation(|d| attrs(d)["assignedUsers"] = users.clone());
        assert_eq!(decision::records(&c).agent, None, "{users}");
    }
    let c = conversation(|d| attrs(d)["tags"] = json!(["", ""]));
    assert!(decision::records(&c).tags.is_empty());
}

#[test]
fn no_customer_relationship_reads_no_customer() {
    for edit in [
        Box::new(|d: &mut Value| {
            d["data"].as_object_mut().unwrap().remove("relationships");
        }) as Box<dyn Fn(&mut Value)>,
        Box::new(|d: &mut Value| d["data"]["relationships"]["customer"] = json!({"data": null})),
        Box::new(|d: &mut Value| d["data"]["relationships"]["customer"]["data"]["id"] = json!("")),
    ] {
        assert_eq!(decision::records(&conversation(edit)).customer, None);
    }
}

/// The decision judges the very agent the list names: the user read for another id is not it.
#[test]
fn the_decision_judges_the_agent_the_records_name() {
    let settings = valid_settings();
    let customer = kustomer::parse_customer(&fixture("customer")).unwrap();
    let mut user = kustomer::parse_user(&fixture("user")).unwrap();
    user.id = "u2".into();
    let decide = |users: Value| {
        let c = conversation(|d| attrs(d)["assignedUsers"] = users);
        let input = SurveyInput {
            conversation: &c,
            customer: Some(&customer),
            user: Some(&user),
            tags: &[],
            brand: None,
            org: None,
        };
        match decision::decide(&settings, input) {
            Decision::Send(body) => Ok(body.employee.email),
            Decision::Skip(skip) => Err(skip.code),
        }
    };
    assert!(decide(json!(["", "u2", "u3"])).is_ok());
    assert_eq!(decide(json!(["u3", "u2"])), Err(SkipCode::NoAgentEmail));
    assert_eq!(decide(json!([""])), Err(SkipCode::NoAssignedAgent));
}

#[test]
fn records_to_read_answers_ids_or_a_coded_error() {
    let out = |doc: Value| serde_json::to_value(api::records_to_read(&doc)).unwrap();
    assert_eq!(
        out(fixture("conversation")),
        json!({"ok": true, "customer": "5f0c1b2a3d4e5f6a7b8c9d31", "agent": "5f0c1b2a3d4e5f6a7b8c9d21",
               "tags": ["5f0c1b2a3d4e5f6a7b8c9d11", "5f0c1b2a3d4e5f6a7b8c9d12"],
               "brand": "5f0c1b2a3d4e5f6a7b8c9d41", "channel": "email",
               "paths": {"user": "/v1/users/5f0c1b2a3d4e5f6a7b8c9d21",
                         "tags": "/v1/tags/5f0c1b2a3d4e5f6a7b8c9d11,5f0c1b2a3d4e5f6a7b8c9d12",
                         "brand": "/v1/brands/5f0c1b2a3d4e5f6a7b8c9d41"}})
    );
    let mut bare = json!({"data": {"id": "c1", "attributes": {"assignedUsers": [""], "tags": []}}});
    assert_eq!(
        out(bare.clone()),
        json!({"ok": true, "tags": [], "brand": null, "paths": {}})
    );

    bare["data"]["attributes"]["assignedUsers"] = json!([7]);
    let e = out(bare);
    assert_eq!(
        (&e["ok"], &e["error"]["code"]),
        (&json!(false), &json!("invalid_shape"))
    );
    assert_eq!(e["error"]["path"], "data.attributes.assignedUsers[0]");
    for bad in [json!(null), json!([]), json!("text"), json!({"data": {}})] {
        let e = out(bad.clone());
        assert_eq!(e["ok"], false, "{bad}");
        assert!(e["error"]["code"].is_string(), "{bad} → {e}");
    }
}

fn valid_settings() -> Settings {
    stella_connect::validate_settings(&settings(), Default::default()).unwrap()
}

/// `decide_as_if_closed` for the fixtures with the conversation changed by `edit`, and `decide`
/// for the same conversation closed.
fn judged(edit: impl FnOnce(&mut Value)) -> (AsIfClosed, Decision) {
    let settings = valid_settings();
    let c = conversation(edit);
    let mut closed = c.clone();
    closed.status = Some("done".into());
    let customer = kustomer::parse_customer(&fixture("customer")).unwrap();
    let user = kustomer::parse_user(&fixture("user")).unwrap();
    let tags = kustomer::parse_tags(&fixture("tags")).unwrap();
    let input = |conversation| SurveyInput {
        conversation,
        customer: Some(&customer),
        user: Some(&user),
        tags: &tags,
        brand: None,
        org: None,
    };
    (
        decision::decide_as_if_closed(&settings, input(&c)),
        decision::decide(&settings, input(&closed)),
    )
}

#[test]
fn an_open_conversation_gets_the_request_it_would_get_closed() {
    for status in ["open", "snoozed"] {
        let (as_if, when_closed) = judged(|d| attrs(d)["status"] = json!(status));
        assert!(!as_if.closed, "{status}");
        assert!(matches!(when_closed, Decision::Send(_)));
        assert_eq!(as_if.decision, when_closed, "{status}");
    }
    // No status at all is not closed either.
    let (as_if, when_closed) = judged(|d| {
        attrs(d).as_object_mut().unwrap().remove("status");
    });
    assert_eq!((as_if.closed, as_if.decision), (false, when_closed));
    // `decide` itself still sends nothing for an open conversation.
    let settings = valid_settings();
    let open = conversation(|d| attrs(d)["status"] = json!("open"));
    let customer = kustomer::parse_customer(&fixture("customer")).unwrap();
    let input = SurveyInput {
        conversation: &open,
        customer: Some(&customer),
        user: None,
        tags: &[],
        brand: None,
        org: None,
    };
    assert!(matches!(
        decision::decide(&settings, input),
        Decision::Skip(s) if s.code == SkipCode::NotClosed
    ));
}

#[test]
fn a_closed_conversation_is_judged_as_it_is() {
    let (as_if, when_closed) = judged(|_| {});
    assert!(as_if.closed);
    assert_eq!(as_if.decision, when_closed);
}

#[test]
fn an_open_conversation_gives_the_reason_it_would_have_closed() {
    let (as_if, when_closed) = judged(|d| {
        attrs(d)["status"] = json!("open");
        attrs(d)["assignedUsers"] = json!([]);
    });
    assert!(!as_if.closed);
    assert!(matches!(
        &as_if.decision,
        Decision::Skip(s) if s.code == SkipCode::NoAssignedAgent
    ));
    assert_eq!(as_if.decision, when_closed);
}

#[test]
fn the_brand_is_read_from_the_attribute_or_the_relationship() {
    let brand = |edit: &dyn Fn(&mut Value)| {
        let c = conversation(|d| edit(d));
        decision::records(&c).brand.map(str::to_owned)
    };
    let fixture_brand = Some("5f0c1b2a3d4e5f6a7b8c9d41".to_owned());
    assert_eq!(brand(&|_| {}), fixture_brand, "relationships.brand.data.id");
    assert_eq!(
        brand(&|d| attrs(d)["brand"] = json!("b-attr")),
        Some("b-attr".to_owned()),
        "attributes.brand first"
    );
    assert_eq!(brand(&|d| attrs(d)["brand"] = json!("  ")), fixture_brand);
    for none in [
        json!(null),
        json!({"data": null}),
        json!({"data": {"id": ""}}),
        json!({"data": {"id": 4}}),
    ] {
        assert_eq!(
            brand(&|d| d["data"]["relationships"]["brand"] = none.clone()),
            None,
            "{none}"
        );
    }
    // A brand of an unexpected shape is no brand, not a refused conversation.
    assert_eq!(
        brand(&|d| {
            attrs(d)["brand"] = json!({"id": "x"});
            d["data"]["relationships"]["brand"] = json!(null);
        }),
        None
    );
    let b = kustomer::parse_brand(&json!({"data": {"id": "b1", "attributes": {"name": " Acme "}}}))
        .unwrap();
    assert_eq!((b.id.as_str(), b.name()), ("b1", Some("Acme")));
    assert_eq!(
        kustomer::parse_brand(&json!({"data": {"id": "b1", "attributes": {"name": 3}}}))
            .unwrap_err()
            .path,
        "data.attributes.name"
    );
}
