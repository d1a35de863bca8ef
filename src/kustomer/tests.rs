//! The records' parsing, case by case.

use super::*;
use serde_json::json;

#[test]
fn ids_are_refused_when_no_record_could_have_them() {
    assert!(check_id("6560e0f1a2b3c4d5e6f70819", "data.id").is_ok());
    assert!(check_id(&"x".repeat(MAX_ID_CHARS), "data.id").is_ok());
    for bad in ["", "  ", "a\u{7}b", "a\nb", ".", ".."] {
        let e = check_id(bad, "data.id").unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (InputErrorCode::InvalidId, "data.id"),
            "{bad:?}"
        );
    }
    assert!(check_id(&"x".repeat(MAX_ID_CHARS + 1), "id").is_err());
}

#[test]
fn app_attribute_key_follows_kustomer_naming() {
    assert_eq!(
        app_attribute_key("stella", DO_NOT_SEND_ATTRIBUTE),
        "@stellaDoNotSendStellaConnectRequestBool"
    );
}

#[test]
fn language_tags() {
    for (locale, tag) in [
        ("en_us", Some("en-US")),
        ("en-GB", Some("en-GB")),
        ("fr", Some("fr")),
        ("FR_ca", Some("fr-CA")),
        ("US", None),
        ("", None),
        ("english", None),
        ("en_us_x", None),
        ("en_1", None),
    ] {
        assert_eq!(language_tag(locale).as_deref(), tag, "{locale}");
    }
}

#[test]
fn lenient_with_nulls_links_and_unknown_fields() {
    let c = parse_conversation(&json!({"data": {"id": "c1", "attributes": {
        "status": "done", "channels": null, "tags": null, "custom": null, "firstMessageIn": {},
        "modificationHistory": null, "satisfactionLevel": {"x": 1}},
        "relationships": {"customer": {"links": {"self": "/v1/customers/x"}}}}}))
    .unwrap();
    assert!(c.is_done());
    assert!(c.channels.is_empty());
    assert_eq!(c.customer_id, None);
}

#[test]
fn wrong_shapes_name_their_path() {
    let cases = [
        (
            json!({"data": {"id": "c1", "attributes": {"channels": ["email", 7]}}}),
            "data.attributes.channels[1]",
        ),
        (json!({"data": {"attributes": {}}}), "data.id"),
        (json!({"data": {"id": 5}}), "data.id"),
        (json!({"data": "c1"}), "data"),
        (json!([1, 2]), ""),
        (
            json!({"data": {"id": "c1", "attributes": {"status": true}}}),
            "data.attributes.status",
        ),
        (
            json!({"data": {"id": "c1", "attributes": []}}),
            "data.attributes",
        ),
        (
            json!({"data": {"id": "c1", "relationships": {"customer": {"data": {"id": 3}}}}}),
            "data.relationships.customer.data.id",
        ),
    ];
    for (value, path) in cases {
        let e = parse_conversation(&value).unwrap_err();
        assert_eq!(e.code, InputErrorCode::InvalidShape, "{value}");
        assert_eq!(e.path, path, "{value}");
    }
}

#[test]
fn tags_accept_a_list_or_one() {
    let one = parse_tags(&json!({"data": {"id": "t1", "attributes": {"name": "a"}}})).unwrap();
    assert_eq!(
        one,
        vec![Tag {
            id: "t1".into(),
            name: Some("a".into())
        }]
    );
    let e = parse_tags(&json!({"data": [{"id": "t1"}, {"id": 2}]})).unwrap_err();
    assert_eq!(e.path, "data[1].id");
    assert_eq!(parse_tags(&json!({"data": "x"})).unwrap_err().path, "data");
}

#[test]
fn event_reads_the_status_change() {
    let e = parse_event(&json!({"name": CONVERSATION_UPDATE, "org": "o1", "data": {"id": "c1"},
        "changes": {"attributes": {"status": {"op": "replace", "before": "open", "after": "done"}, "tags": {"after": [1]}}}}))
    .unwrap();
    assert_eq!(
        e.status_change,
        Some(StatusChange {
            before: Some("open".into()),
            after: Some("done".into())
        })
    );
    let e = parse_event(
        &json!({"name": CONVERSATION_UPDATE, "data": {"id": "c1"}, "changes": {"attributes": {}}}),
    )
    .unwrap();
    assert_eq!(e.status_change, None);
    assert_eq!(
        parse_event(&json!({"data": {"id": "c1"}}))
            .unwrap_err()
            .path,
        "name"
    );
    assert_eq!(parse_event(&json!({"name": "x"})).unwrap_err().path, "data");
}

#[test]
fn customer_email_and_name_rules() {
    let c = parse_customer(&json!({"data": {"id": "u", "attributes": {
        "name": "  ", "displayName": "Zoë Ōkubo",
        "emails": [{"email": ""}, {"type": "home"}, {"email": "not-an-address"}, {"email": " z@example.com "}, {"email": "y@example.com"}]}}}))
    .unwrap();
    assert_eq!(c.email(), Some("z@example.com"));
    assert_eq!(c.name(), Some("Zoë Ōkubo"));
}
