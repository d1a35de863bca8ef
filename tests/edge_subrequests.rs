#![cfg(not(target_arch = "wasm32"))]
//! Cloudflare's cap on the outbound calls of one invocation (`SUBREQUESTS_PER_INVOCATION`), on
//! the host: every alarm run stays within it however many surveys are due, what does not fit
//! goes in the next run at once, and each survey still goes out exactly once.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::*;
use serde_json::json;
use stella_connect::edge::job::JobState;
use stella_connect::edge::subrequests::{MIN_PER_INVOCATION, PER_JOB};
use stella_connect::edge::Config;
use support::fixture;

/// The delay the settings headers ask for.
const DELAY_MS: i64 = 900_000;
const DAY_MS: i64 = 86_400_000;
/// The fixture conversation's brand.
const BRAND: &str = "5f0c1b2a3d4e5f6a7b8c9d41";

/// `n` copies of the fixture's conversation, each with its own customer: their ids.
fn add_conversations(world: &World, n: usize, first: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n)
        .map(|i| format!("6560e0f1a2b3c4d5e6f7{:04x}", first + i))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let customer_id = format!("5f0c1b2a3d4e5f6a7b8c{:04x}", first + 0x1000 + i);
        let mut conversation = fixture("conversation");
        conversation["data"]["id"] = json!(id);
        conversation["data"]["relationships"]["customer"]["data"]["id"] = json!(customer_id);
        world.add_conversation(conversation);
        let mut customer = fixture("customer");
        customer["data"]["id"] = json!(customer_id);
        customer["data"]["attributes"]["emails"] = json!([{"email": format!("c{i}@example.com")}]);
        world.add_customer(customer);
    }
    ids
}

fn with_cap(cap: u32) -> Edge {
    Edge::new(Config {
        subrequests_per_invocation: cap,
        // The gateway's key lookups stay cached: the alarm runs' calls are what is counted.
        cache_ms: DAY_MS,
        ..quick_retries()
    })
}

/// Fires the org's alarm whenever it is due until `until_ms`, counting each run's outbound
/// calls as Kustomer and Stella saw them: each within `cap`, and while a survey is still due
/// after a run, the alarm is set for at once. Returns how many runs there were.
fn drain(edge: &Edge, cap: u32, until_ms: i64) -> usize {
    let scheduler = edge.scheduler(ORG);
    let mut runs = 0;
    while let Some(at) = scheduler.next_alarm().unwrap() {
        if at > until_ms {
            break;
        }
        let at = at.max(edge.now());
        let before = edge.world.requests().len();
        edge.fire_alarms(at);
        let made = edge.world.requests().len() - before;
        assert!(made <= cap as usize, "run {runs}: {made} calls over {cap}");
        assert_eq!(scheduler.run_calls().0 as usize, made, "each call counted");
        runs += 1;
        assert!(runs < 2000, "the alarm never settles");
        let due_now = (scheduler.store.jobs().iter())
            .any(|j| j.due_ms.is_some_and(|d| d <= edge.now()) && !j.state.is_final());
        if due_now {
            let next = scheduler.next_alarm().unwrap().unwrap();
            assert!(next <= edge.now(), "work left over waits: {next}");
        }
    }
    runs
}

/// Each conversation's survey accepted by Stella exactly once.
fn sent_once(edge: &Edge, ids: &[String]) {
    let mut sent: Vec<String> = (edge.world.accepted().iter())
        .map(|b| b["ext_interaction_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), ids.len(), "each survey sent");
    sent.sort_unstable();
    sent.dedup();
    assert_eq!(sent.len(), ids.len(), "each once");
}

/// One survey's calls at worst (no agent, tag or brand name cached, the brand map set) are
/// what [`PER_JOB`] says: a batch sized by it never runs out mid-job.
#[test]
fn a_cold_surveys_calls_are_per_job() {
    let edge = with_cap(1000);
    edge.world.add_brand(BRAND, "Acme Shoes");
    let headers = settings_headers_with(&[("brandMap", Some("acme shoes=shoes"))]);
    let ids = add_conversations(&edge.world, 1, 0x100);
    let closed = closed_ms();
    let reply = edge.close_with(&close_event(&ids[0], &iso(closed)), &headers);
    assert_eq!(reply.status, 202, "{reply:?}");
    let before = edge.world.requests().len();
    edge.advance_to(closed + DELAY_MS);
    assert_eq!(edge.world.requests().len() - before, PER_JOB as usize);
    assert_eq!(edge.scheduler(ORG).run_calls().0, PER_JOB);
    sent_once(&edge, &ids);
}

/// Forty surveys due at once under a cap of 10 calls: a run takes one cold job (6 calls), then
/// as many as fit; the rest wait for the next run, which comes at once. None is sent twice or
/// lost, and no run goes over.
#[test]
fn forty_surveys_due_at_once_go_out_once_within_a_cap_of_ten() {
    let edge = with_cap(10);
    let ids = add_conversations(&edge.world, 40, 0x200);
    let closed = closed_ms();
    for id in &ids {
        assert_eq!(edge.close(&close_event(id, &iso(closed))).status, 202);
    }
    let runs = drain(&edge, 10, closed + DELAY_MS + DAY_MS);
    sent_once(&edge, &ids);
    for id in &ids {
        assert_eq!(edge.job(id).attempts, 1, "no attempt spent on the cap");
    }
    // A job is taken only while its worst case (6 calls) fits: two a run; warm jobs take 3
    // calls (conversation, customer, Stella). The last run finds nothing due.
    assert_eq!(runs, 21);
    assert_eq!(edge.scheduler(ORG).run_calls().1, 6, "the most a run made");
}

/// The least cap the edge accepts still moves on, with outcomes read back and an attempt whose
/// answer was lost looked up in Data Return before it is tried again: every run within the cap,
/// the lost one recorded from Data Return, not sent twice.
#[test]
fn the_least_cap_reads_outcomes_and_looks_up_a_lost_answer_within_each_run() {
    let cap = MIN_PER_INVOCATION;
    let edge = with_cap(cap);
    let ids = add_conversations(&edge.world, 12, 0x300);
    let headers = settings_headers_with(&[("stellaApiSecret", Some(STELLA_SECRET))]);
    let closed = closed_ms();
    edge.world.lose_next_stella_answer();
    for id in &ids {
        let reply = edge.close_with(&close_event(id, &iso(closed)), &headers);
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    drain(&edge, cap, closed + DELAY_MS + DAY_MS);
    sent_once(&edge, &ids);
    let found: Vec<_> = (ids.iter().map(|id| edge.job(id)))
        .filter(|j| j.reason.as_deref() == Some("found_in_agent_connect"))
        .collect();
    assert_eq!(found.len(), 1, "the lost answer found in Data Return");
    assert!(ids.iter().all(|id| edge.job(id).state == JobState::Sent));
    assert!(!edge.world.data_calls().is_empty(), "outcomes were read");
}

/// The default cap with the largest backlog a run takes: the run stops at what the cap covers
/// (166 cold-sized jobs would need 996 calls; warm ones go further), never past 1,000 calls.
#[test]
fn the_default_cap_bounds_a_large_backlogs_runs() {
    let edge = with_cap(1000);
    let ids = add_conversations(&edge.world, 600, 0x1000);
    let closed = closed_ms();
    for id in &ids {
        assert_eq!(edge.close(&close_event(id, &iso(closed))).status, 202);
    }
    let runs = drain(&edge, 1000, closed + DELAY_MS + DAY_MS);
    sent_once(&edge, &ids);
    assert!(
        runs >= 2,
        "600 surveys take more than one run of 1,000 calls"
    );
}
