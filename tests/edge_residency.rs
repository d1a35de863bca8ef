#![cfg(not(target_arch = "wasm32"))]
//! Where an org's surveys live (`edge::residency`): an org on Kustomer's EU API has its Durable
//! Object in the EU jurisdiction, for every command it sends, and its survey is sent from there;
//! where the runtime cannot place objects (local workerd) the choice is reported, not applied.

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

mod support;

use edge_fakes::*;
use stella_connect::edge::job::JobState;
use stella_connect::edge::{Config, Store};
use support::fixture;

const DAY_MS: i64 = 86_400_000;

fn eu_headers() -> Vec<(String, String)> {
    settings_headers_with(&[("kustomerApiUrl", Some(KUSTOMER_EU_API))])
}

/// The objects each command reached, in order.
fn objects(edge: &Edge) -> Vec<String> {
    let commands = edge.gateway.router.commands.borrow();
    commands.iter().map(|(object, _)| object.clone()).collect()
}

#[test]
fn an_eu_orgs_close_log_and_check_reach_its_object_in_the_eu() {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    assert_eq!(edge.close_with(&event, &eu_headers()).status, 202);
    // The log through the EU API, and Check connection's link question, reach the same object.
    let mut log = vec![("x-kustomer-api-url".to_owned(), KUSTOMER_EU_API.to_owned())];
    log.extend([
        ("x-kustomer-api-key".to_owned(), KUSTOMER_KEY.to_owned()),
        ("x-app-secret".to_owned(), APP_SECRET.to_owned()),
    ]);
    assert_eq!(edge.call("GET", "/v1/deliveries", &log, "").status, 200);
    let check = edge.call("POST", "/v1/settings/check", &eu_headers(), "");
    assert_eq!(check.body["residency"]["jurisdiction"], "eu", "{check:?}");
    let eu = format!("eu:{ORG}");
    assert_eq!(objects(&edge), vec![eu.clone(); 3]);
    // The survey goes out from there, once, with Kustomer's EU data.
    edge.advance_to(edge.now() + 2 * DAY_MS);
    assert_eq!(edge.world.accepted().len(), 1);
    assert_eq!(
        edge.scheduler(&eu)
            .store
            .get(CONVERSATION)
            .unwrap()
            .unwrap()
            .state,
        JobState::Sent
    );
    // The same org through the US API is another object: nothing of the EU's is in it.
    assert_eq!(edge.close(&event).status, 202);
    assert_eq!(objects(&edge).last(), Some(&ORG.to_owned()));
    assert_eq!(
        edge.scheduler(ORG)
            .store
            .get(CONVERSATION)
            .unwrap()
            .unwrap()
            .state,
        JobState::Scheduled
    );
}

#[test]
fn without_jurisdictions_the_choice_is_reported_and_the_object_is_the_orgs() {
    let edge = Edge::new(Config {
        pin_jurisdiction: false,
        ..quick_retries()
    });
    let event = fixture("conversation-update-done");
    assert_eq!(edge.close_with(&event, &eu_headers()).status, 202);
    let check = edge.call("POST", "/v1/settings/check", &eu_headers(), "");
    assert_eq!(check.body["residency"]["region"], "eu");
    assert!(check.body["residency"]["jurisdiction"].is_null());
    assert_eq!(objects(&edge)[0], ORG);
}

#[test]
fn an_org_on_the_us_api_is_not_pinned() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let check = edge.call("POST", "/v1/settings/check", &settings_headers(), "");
    assert_eq!(check.body["residency"]["region"], "us", "{check:?}");
    assert!(check.body["residency"]["jurisdiction"].is_null());
    assert!(objects(&edge).iter().all(|o| o == ORG));
}
