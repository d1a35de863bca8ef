#![cfg(not(target_arch = "wasm32"))]
//! Whom the edge trusts (`edge::trust`): Kustomer's settings, never the first caller. Each test
//! is one property of issue 19's trust model, on the host with the fakes of `tests/edge.rs`:
//! nobody without the right to write the app's settings can take an org, a close with a
//! secret Kustomer does not vouch for is never lost (held, bounded, released or dropped after
//! 7 days, counted), Kustomer is asked at most once a minute per org, and every refusal names
//! the fix.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::*;
use serde_json::json;
use stella_connect::edge::job::JobState;
use stella_connect::edge::trust::{self, HeldClose, HELD_DAYS};
use stella_connect::edge::{Reply, Store};
use support::fixture;

const DELAY_MS: i64 = 900_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const SQUAT: &str = "squatters-app-secret-Kq8Wz3Vn";
const RELINKED: &str = "relinked-app-secret-Tb6Yc1Mx";

fn due() -> i64 {
    closed_ms() + DELAY_MS
}

fn with_secret(secret: &str) -> Vec<(String, String)> {
    settings_headers_with(&[("appSecret", Some(secret))])
}

fn log(edge: &Edge, secret: &str) -> Reply {
    let headers = [
        ("x-kustomer-api-key".to_owned(), KUSTOMER_KEY.to_owned()),
        ("x-app-secret".to_owned(), secret.to_owned()),
    ];
    edge.call("GET", "/v1/deliveries", &headers, "")
}

fn check(edge: &Edge, secret: &str) -> Reply {
    edge.call("POST", "/v1/settings/check", &with_secret(secret), "")
}

#[test]
fn a_key_that_cannot_write_the_apps_settings_cannot_make_its_secret_the_orgs() {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    // The squatter closes first, and again: held each time, never trusted, nothing kept.
    for _ in 0..3 {
        let reply = edge.close_with(&event, &with_secret(SQUAT));
        assert_eq!((reply.status, &reply.body["status"]), (202, &json!("held")));
    }
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert!(!record.trust.vouches_for(&trust::fingerprint(SQUAT)));
    assert!(record.trust.vouches_for(&trust::fingerprint(APP_SECRET)));
    assert_eq!(
        record.sealed_settings, None,
        "the squatter's settings are not kept"
    );
    assert_eq!(log(&edge, SQUAT).status, 401);
    // The app's own close is trusted, and the org's survey goes out once, with its own key.
    assert_eq!(edge.close(&event).status, 202);
    edge.advance_to(due() + HOUR_MS);
    assert_eq!(edge.world.accepted().len(), 1);
    assert_eq!(edge.job(CONVERSATION).state, JobState::Sent);
    assert!(edge
        .world
        .requests()
        .iter()
        .all(|r| { !r.url.starts_with(STELLA_API) || r.header("x-api-key") == Some(STELLA_KEY) }));
    assert_eq!(log(&edge, APP_SECRET).status, 200);
    edge.assert_no_secrets();
}

#[test]
fn an_org_not_linked_holds_its_closes_and_sends_them_once_linked() {
    let edge = Edge::quick();
    edge.world.link(None); // upgraded, the settings page not saved since
    let event = fixture("conversation-update-done");
    let reply = edge.close(&event);
    assert_eq!((reply.status, &reply.body["status"]), (202, &json!("held")));
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("Re-link the app"));
    // The log is refused, naming the fix, and says how many closes wait.
    let refused = log(&edge, APP_SECRET);
    assert_eq!(refused.body["error"]["code"], "app_secret_rejected");
    assert_eq!(refused.body["link"]["code"], "not_linked");
    assert_eq!(refused.body["link"]["held"], 1);
    assert!(refused.body["link"]["fix"]
        .as_str()
        .unwrap()
        .contains("Re-link the app"));
    // Check connection says which side is wrong, in words.
    let checked = check(&edge, APP_SECRET);
    assert_eq!(checked.body["app"]["code"], "not_linked", "{checked:?}");
    assert_eq!(checked.body["ok"], false);
    edge.advance_to(due() + HOUR_MS);
    assert!(edge.world.accepted().is_empty(), "nothing sent while held");

    // The admin re-links (a new secret and its fingerprint, saved in Kustomer); Check
    // connection trusts it at once, and the next close brings the org's settings: the held
    // close goes out, once.
    edge.world.link(Some(RELINKED));
    let checked = check(&edge, RELINKED);
    assert_eq!(checked.body["app"]["ok"], true, "{checked:?}");
    assert_eq!(checked.body["app"]["held"], 1);
    let later = close_event("another-conversation", &iso(edge.now() - 1000));
    edge.world.add_conversation({
        let mut doc = fixture("conversation");
        doc["data"]["id"] = json!("another-conversation");
        doc
    });
    assert_eq!(edge.close_with(&later, &with_secret(RELINKED)).status, 202);
    edge.advance_to(edge.now() + DELAY_MS + HOUR_MS);
    assert_eq!(
        edge.job(CONVERSATION).state,
        JobState::Sent,
        "the held close"
    );
    let ids: Vec<_> = edge
        .world
        .accepted()
        .iter()
        .map(|b| b["ext_interaction_id"].clone())
        .collect();
    assert_eq!(ids.iter().filter(|i| **i == json!(CONVERSATION)).count(), 1);
    assert!(edge.scheduler(ORG).store.held().is_empty());
    assert_eq!(log(&edge, RELINKED).body["link"]["held"], 0);
    // The old secret is no longer the org's: a log read with it is refused.
    assert_eq!(log(&edge, APP_SECRET).status, 401);
    edge.assert_no_secrets();
}

#[test]
fn a_held_close_waits_seven_days_then_is_dropped_and_counted() {
    let edge = Edge::quick();
    edge.world.link(None);
    assert_eq!(
        edge.close(&fixture("conversation-update-done")).body["status"],
        "held"
    );
    let held_at = edge.now();
    // The alarm is set for the drop, and nothing happens before it.
    edge.advance_to(held_at + HELD_DAYS * DAY_MS - 1);
    assert_eq!(edge.scheduler(ORG).store.held().len(), 1);
    edge.advance_to(held_at + HELD_DAYS * DAY_MS + 1000);
    assert!(edge.scheduler(ORG).store.held().is_empty());
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert_eq!(record.trust.expired, 1);
    assert!(edge.world.accepted().is_empty());
    edge.world.link(Some(APP_SECRET));
    let checked = check(&edge, APP_SECRET);
    assert_eq!(checked.body["app"]["expired"], 1, "{checked:?}");
}

#[test]
fn held_closes_are_one_per_conversation_the_latest_and_bounded() {
    let edge = Edge::quick();
    let store = &edge.scheduler(ORG).store;
    let held = |id: &str, closed: i64| HeldClose {
        conversation_id: id.into(),
        closed_at_ms: closed,
        event_id: None,
        held_ms: closed,
    };
    assert!(store.hold(&held("c", 2_000)).unwrap());
    assert!(
        store.hold(&held("c", 1_000)).unwrap(),
        "an older close is taken, not kept"
    );
    assert_eq!(store.held()[0].closed_at_ms, 2_000);
    assert!(store.hold(&held("c", 3_000)).unwrap());
    assert_eq!(store.held_count().unwrap(), 1);
    assert_eq!(store.held()[0].closed_at_ms, 3_000);
    for i in 1..trust::MAX_HELD {
        assert!(store.hold(&held(&format!("flood-{i}"), i as i64)).unwrap());
    }
    assert!(!store.hold(&held("one-too-many", 5)).unwrap());
    assert!(
        store.hold(&held("c", 4_000)).unwrap(),
        "a held one is still replaced"
    );

    // Through the edge: the close past the bound is refused with a code, and counted.
    edge.world.link(None);
    let reply = edge.close(&fixture("conversation-update-done"));
    assert_eq!(reply.body["error"]["code"], "held_closes_full", "{reply:?}");
    assert_eq!(reply.status, 429);
    assert_eq!(edge.scheduler(ORG).store.org().unwrap().trust.refused, 1);
}

#[test]
fn a_held_close_leaves_the_trusted_job_alone_and_kustomer_decides_once_released() {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    assert_eq!(edge.close(&event).status, 202);
    // A forged later close of the same conversation, from another secret: held beside the
    // real job, which stays as it is.
    let forged = close_event(CONVERSATION, &iso(closed_ms() + 60_000));
    assert_eq!(
        edge.close_with(&forged, &with_secret(SQUAT)).body["status"],
        "held"
    );
    let job = edge.job(CONVERSATION);
    assert_eq!(job.closed_at_ms, closed_ms());
    // The Deliveries page lists it, with when it would be dropped.
    let link = &log(&edge, APP_SECRET).body["link"];
    assert_eq!(link["held"], 1, "{link}");
    assert_eq!(link["heldCloses"][0]["conversationId"], CONVERSATION);
    assert_eq!(
        ms_of(&link["heldCloses"][0]["expiresAt"]) - ms_of(&link["heldCloses"][0]["heldAt"]),
        HELD_DAYS * DAY_MS
    );
    edge.advance_to(due() + DAY_MS);
    // Released with the org's settings, Kustomer's close time decides: one survey.
    assert_eq!(edge.world.accepted().len(), 1);
    assert!(edge.scheduler(ORG).store.held().is_empty());
}

#[test]
fn kustomer_is_asked_at_most_once_a_minute_per_org_and_a_roleless_key_spends_nothing() {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    assert_eq!(edge.close(&event).status, 202);
    assert_eq!(
        edge.world.calls("setting"),
        1,
        "the first close reads the link"
    );
    for i in 0..20 {
        let forged = close_event(CONVERSATION, &iso(closed_ms() + i));
        assert_eq!(
            edge.close_with(&forged, &with_secret(SQUAT)).body["status"],
            "held"
        );
    }
    assert_eq!(
        edge.world.calls("setting"),
        1,
        "no read for the flood within the minute"
    );
    // A minute later one more.
    edge.set_now(edge.now() + trust::READ_EVERY_MS);
    edge.close_with(&event, &with_secret(SQUAT));
    assert_eq!(edge.world.calls("setting"), 2);
    // Trusted calls never ask.
    for _ in 0..5 {
        assert_eq!(edge.close(&event).status, 202);
    }
    assert_eq!(edge.world.calls("setting"), 2);

    // A key that may not read settings: its refusal is the key's, not the org's, so it
    // spends no read, and the banner says what to fix.
    let edge = Edge::quick();
    edge.world.refuse_settings_reads(true);
    assert_eq!(edge.close(&event).body["status"], "held");
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert_eq!(record.trust.read_ms, None);
    let checked = check(&edge, APP_SECRET);
    assert_eq!(
        checked.body["app"]["code"], "settings_unreadable",
        "{checked:?}"
    );
    assert!(checked.body["app"]["fix"]
        .as_str()
        .unwrap()
        .contains("org.permission.setting.read"));
    edge.world.refuse_settings_reads(false);
    assert_eq!(
        edge.close(&event).status,
        202,
        "asked again at once, trusted"
    );
    edge.advance_to(due() + HOUR_MS);
    assert_eq!(
        edge.world.accepted().len(),
        1,
        "the held close and the close: one survey"
    );
}

#[test]
fn kustomer_down_unlinks_nothing() {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    assert_eq!(edge.close(&event).status, 202);
    edge.set_now(edge.now() + trust::READ_EVERY_MS);
    edge.world.kustomer_fault(Fault::status(503, "down"));
    assert_eq!(
        edge.close_with(&event, &with_secret(SQUAT)).body["status"],
        "held"
    );
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert!(record.trust.vouches_for(&trust::fingerprint(APP_SECRET)));
    assert_eq!(
        edge.close(&event).status,
        202,
        "the app's own closes still go"
    );
}

#[test]
fn held_closes_with_settings_that_do_not_open_wait_without_a_hot_alarm() {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    assert_eq!(edge.close(&event).status, 202);
    // The deployment's key was replaced without keeping the old one: the seal no longer opens.
    let store = &edge.scheduler(ORG).store;
    let mut record = store.org().unwrap();
    record.sealed_settings = Some("v1.deadbeef.AAAA".into());
    store.put_org(&record).unwrap();
    let later = close_event(CONVERSATION, &iso(closed_ms() + 60_000));
    assert_eq!(
        edge.close_with(&later, &with_secret(SQUAT)).body["status"],
        "held"
    );
    // The alarm does not spin on a release it cannot make (advance_to fails past 10,000
    // alarms); the held close waits for settings.
    let fired = edge.advance_to(edge.now() + HOUR_MS);
    assert!(fired.len() < 100, "{} alarms in an hour", fired.len());
    assert_eq!(edge.scheduler(ORG).store.held().len(), 1);
    // The next trusted close brings settings that open: the held close goes with them.
    assert_eq!(edge.close(&later).status, 202);
    edge.advance_to(edge.now() + DAY_MS);
    assert!(edge.scheduler(ORG).store.held().is_empty());
}
