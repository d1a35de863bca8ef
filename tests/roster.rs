#![cfg(not(target_arch = "wasm32"))]
//! The agent roster, pure: a page of `GET /v2/employees` read per the user-management contract,
//! the roster's cache form, and every standing an agent can have.

use serde_json::{json, Value};
use stella_connect::roster::{assess, parse_page, Employee, Roster, StandingCode};
use stella_connect::InputErrorCode;

/// An employee as the contract's `ResponseBodyGetEmployees` lists them (plus `status`).
fn employee(email: &str, status: &str, channels: &[&str]) -> Value {
    json!({
        "email": email,
        "custom_employee_id": "E-1",
        "first_name": "Kim",
        "last_name": "Agent",
        "team_leader_id": 7,
        "role": "agent",
        "channels": channels,
        "employment_status": "full-time",
        "groups": ["Support"],
        "manage_team": false,
        "status": status,
    })
}

fn roster() -> Roster {
    let page = json!({
        "employees": [
            employee("Sam.Agent@Acme.example", "active", &["email", "chat", "phone"]),
            employee("kim.agent@acme.example", "unapproved", &["email", "chat"]),
            employee("ria.agent@acme.example", "active", &["email"]),
            employee("lee.agent@acme.example", "pending_review", &["email"]),
        ],
        "meta": {"next_page": null}
    });
    Roster::new(parse_page(&page).unwrap().employees, 1_700_000_000_000)
}

#[test]
fn a_page_is_read_per_the_contract() {
    let page = json!({
        "employees": [employee(" Sam.Agent@ACME.example ", "Active", &["Email", "chat"])],
        "meta": {"next_page": "https://acme.api.stellaconnect.net/v2/employees?external_id=E-1&number_of_employees=500"}
    });
    let page = parse_page(&page).unwrap();
    assert_eq!(
        page.employees,
        vec![Employee {
            email: "sam.agent@acme.example".into(),
            status: Some("active".into()),
            channels: Some(vec!["email".into(), "chat".into()]),
        }]
    );
    assert_eq!(
        page.next,
        Some(vec![
            ("external_id".into(), "E-1".into()),
            ("number_of_employees".into(), "500".into())
        ]),
        "the next page's query, whatever host the link names"
    );
    // A path alone, and the `after` form of the contract's example.
    let page =
        parse_page(&json!({"employees": [], "meta": {"next_page": "/v2/employees?after=9"}}))
            .unwrap();
    assert_eq!(page.next, Some(vec![("after".into(), "9".into())]));
    // The last page: no meta, a null link, or an empty one.
    for last in [
        json!({"employees": []}),
        json!({"employees": [], "meta": {}}),
        json!({"employees": [], "meta": {"next_page": ""}}),
    ] {
        assert_eq!(parse_page(&last).unwrap().next, None, "{last}");
    }
}

#[test]
fn the_contracts_other_shapes_are_read_too() {
    // The schema types `employees` as one object; the single employee's `channels` is text.
    let one = json!({"employees": {"email": "kim.agent@acme.example", "channels": "email, chat"}});
    let page = parse_page(&one).unwrap();
    assert_eq!(page.employees.len(), 1);
    assert_eq!(
        page.employees[0].status, None,
        "the list's schema has no status"
    );
    assert_eq!(
        page.employees[0].channels,
        Some(vec!["email".into(), "chat".into()])
    );
    // An employee without an email matches no agent: left out, not an error.
    let page =
        parse_page(&json!({"employees": [{"first_name": "No Email"}, {"email": " "}]})).unwrap();
    assert!(page.employees.is_empty());
    assert_eq!(parse_page(&json!({})).unwrap().employees, vec![]);
}

#[test]
fn bad_shapes_are_refused_with_their_path() {
    let cases = [
        (json!([]), ""),
        (json!({"employees": "many"}), "employees"),
        (json!({"employees": [1]}), "employees[0]"),
        (json!({"employees": [{"email": 5}]}), "employees[0].email"),
        (
            json!({"employees": [{"email": "a@b.c", "status": true}]}),
            "employees[0].status",
        ),
        (
            json!({"employees": [{"email": "a@b.c", "channels": [1]}]}),
            "employees[0].channels[0]",
        ),
        (
            json!({"employees": [{"email": "a@b.c", "channels": {}}]}),
            "employees[0].channels",
        ),
        (json!({"employees": [], "meta": []}), "meta"),
        (
            json!({"employees": [], "meta": {"next_page": 3}}),
            "meta.next_page",
        ),
        (
            json!({"employees": [], "meta": {"next_page": "https://x.example/v2/employees"}}),
            "meta.next_page",
        ),
    ];
    for (doc, path) in cases {
        let e = parse_page(&doc).expect_err(&doc.to_string());
        assert_eq!(
            (e.code, e.path.as_str()),
            (InputErrorCode::InvalidShape, path),
            "{doc}: {e:?}"
        );
    }
}

#[test]
fn the_cache_form_is_compact_and_round_trips() {
    let roster = roster();
    let text = roster.to_json();
    assert_eq!(Roster::from_json(&text), Some(roster.clone()));
    assert!(text.len() < 400, "compact: {text}");
    assert!(!text.contains("custom_employee_id") && !text.contains("first_name"));
    assert_eq!(Roster::from_json("not json"), None);
    assert_eq!(Roster::from_json("{\"at\":1}"), None);
    assert_eq!((roster.len(), roster.is_empty()), (4, false));
}

#[test]
fn every_standing_in_words() {
    let roster = roster();
    let ready = assess(
        &roster,
        "SAM.AGENT@acme.example",
        Some("Sam Agent"),
        Some("chat"),
    );
    assert_eq!(ready.code, StandingCode::Ready);
    assert_eq!(
        ready.message,
        "Sam Agent has an active Agent Connect profile with the chat channel enabled."
    );

    let none = assess(
        &roster,
        "kim.agent@other.example",
        Some("Kim Agent"),
        Some("email"),
    );
    assert_eq!(none.code, StandingCode::NoProfile);
    assert!(
        none.message.starts_with("Kim Agent's email has no Agent Connect profile: Agent Connect will not survey this conversation"),
        "{}",
        none.message
    );
    assert!(
        none.message.contains("still sends the request")
            && none.message.contains("Agent Connect decides")
    );

    let kim = assess(
        &roster,
        "kim.agent@acme.example",
        Some("Kim Agent"),
        Some("email"),
    );
    assert_eq!(kim.code, StandingCode::NotActive);
    assert!(
        kim.message
            .contains("Kim Agent's Agent Connect profile is not approved yet"),
        "{}",
        kim.message
    );
    let lee = assess(&roster, "lee.agent@acme.example", None, None);
    assert_eq!(lee.code, StandingCode::NotActive);
    assert!(
        lee.message
            .starts_with("lee.agent@acme.example's Agent Connect profile is pending review"),
        "{}",
        lee.message
    );

    let ria = assess(&roster, "ria.agent@acme.example", Some("Ria"), Some("Chat"));
    assert_eq!(ria.code, StandingCode::ChannelOff);
    assert!(
        ria.message
            .contains("does not have the chat channel enabled"),
        "{}",
        ria.message
    );
    // No channel asked: an active profile is ready.
    assert_eq!(
        assess(&roster, "ria.agent@acme.example", None, None).code,
        StandingCode::Ready
    );

    // Every status in words, none of them read as active.
    for status in [
        "deactivated",
        "created",
        "confirmed",
        "unapproved",
        "pending review",
        "odd",
    ] {
        let r = Roster::new(
            [Employee {
                email: "a@b.c".into(),
                status: Some(status.into()),
                channels: None,
            }],
            0,
        );
        let s = assess(&r, "a@b.c", None, Some("email"));
        assert_eq!(s.code, StandingCode::NotActive, "{status}");
        assert!(!s.message.contains("is active"), "{}", s.message);
    }
    // No status and no channels said: nothing held against the agent.
    let r = Roster::new(
        [Employee {
            email: "a@b.c".into(),
            status: None,
            channels: None,
        }],
        0,
    );
    assert_eq!(
        assess(&r, "a@b.c", None, Some("sms")).code,
        StandingCode::Ready
    );
    // Listed channels, none of them: the channel is off.
    let r = Roster::new(
        [Employee {
            email: "a@b.c".into(),
            status: None,
            channels: Some(vec![]),
        }],
        0,
    );
    assert_eq!(
        assess(&r, "a@b.c", None, Some("sms")).code,
        StandingCode::ChannelOff
    );
    // The codes are stable text.
    let codes: Vec<&str> = StandingCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, ["ready", "no_profile", "not_active", "channel_off"]);
}
