#![cfg(not(target_arch = "wasm32"))]
//! Storage an org can plan on (`edge::retention`, issue 20): the org's object watches its own
//! size and, at 80% of its ceiling, removes the oldest finished entries first, a bounded batch a
//! run, never a pending survey, counting them; finished entries lose the customer's name,
//! e-mail and comment after `PERSONAL_DATA_DAYS`, and the summary does not change.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::*;
use serde_json::json;
use stella_connect::edge::job::{Job, JobOutcome, JobState, Removal};
use stella_connect::edge::retention::{self, PRUNE_PER_RUN, SCRUB_PER_RUN};
use stella_connect::edge::{Config, Store};
use stella_connect::survey_outcome::{DeliveryStatus, SurveyOutcome};
use support::fixture;

const DAY_MS: i64 = 86_400_000;

/// A finished entry of the org, `age_ms` old now, with a customer, an agent and an answer.
fn finished(edge: &Edge, id: &str, age_ms: i64) -> Job {
    let closed = edge.now() - age_ms - 900_000;
    let spread = id.bytes().map(usize::from).sum::<usize>() % 3;
    let state = [JobState::Sent, JobState::Skipped, JobState::Failed][spread];
    let mut job = log_job(id, state, closed, None, Some("sam@acme.example"));
    job.outcome = (state == JobState::Sent).then(|| JobOutcome {
        read: SurveyOutcome {
            conversation_id: id.into(),
            uuid: format!("u-{id}"),
            delivery_status: DeliveryStatus::Sent,
            delivery_status_text: None,
            rating: Some(5),
            comment: Some(format!("Thanks from {id}")),
            sent_at: None,
            responded_at: None,
            is_recovery: false,
        },
        created_ms: Some(closed),
        unwritten: false,
        write_error: None,
    });
    job
}

/// An edge whose org has its pending fixture close, and `jobs` put straight into its store.
fn with_jobs(config: Config, jobs: impl Fn(&Edge) -> Vec<Job>) -> Edge {
    let edge = Edge::new(config);
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let store = &edge.scheduler(ORG).store;
    for job in jobs(&edge) {
        store.put(&job).unwrap();
    }
    edge
}

fn pending(edge: &Edge) -> Vec<String> {
    let jobs = edge.scheduler(ORG).store.jobs();
    let ids = jobs.iter().filter(|j| !j.state.is_final());
    ids.map(|j| j.conversation_id.clone()).collect()
}

/// The summary's counters match the jobs, as a recount gives them.
fn counters_match(edge: &Edge) {
    let store = &edge.scheduler(ORG).store;
    let counted: u64 = store.counters().values().sum();
    assert_eq!(
        counted,
        store.jobs().len() as u64,
        "counters follow the deletes"
    );
}

#[test]
fn at_eighty_percent_the_oldest_finished_entries_go_first_a_bounded_batch_a_run() {
    let total = PRUNE_PER_RUN + 5;
    let edge = with_jobs(quick_retries(), |edge| {
        let mut jobs: Vec<Job> = (0..total)
            .map(|i| {
                finished(
                    edge,
                    &format!("f{i:05}"),
                    (total - i) as i64 * 1000 + DAY_MS,
                )
            })
            .collect();
        // Pending surveys older than every finished entry: never pruned.
        for i in 0..3 {
            let mut job = log_job(&format!("p{i}"), JobState::Retrying, 0, None, None);
            job.closed_at_ms = edge.now() - 20 * DAY_MS;
            job.updated_ms = edge.now() - 20 * DAY_MS;
            job.due_ms = Some(edge.now() + DAY_MS);
            jobs.push(job);
        }
        jobs
    });
    let scheduler = edge.scheduler(ORG);
    let ceiling = scheduler.config.storage_ceiling_bytes;
    let before_pending = pending(&edge);
    assert_eq!(before_pending.len(), 4, "{before_pending:?}");

    // Just under 80%: nothing goes, and the pages say nothing.
    scheduler.store.size_bytes.set(ceiling / 100 * 80 - 1);
    edge.fire_alarms(edge.now());
    assert_eq!(scheduler.store.jobs().len(), total + 4);
    assert_eq!(edge.log("limit=1").body["storage"]["warning"], json!(null));

    // At 80%: the oldest finished entries, a batch of PRUNE_PER_RUN.
    scheduler.store.size_bytes.set(ceiling / 100 * 80);
    edge.fire_alarms(edge.now());
    let left: Vec<String> = (scheduler.store.jobs().iter())
        .filter(|j| j.state.is_final())
        .map(|j| j.conversation_id.clone())
        .collect();
    let newest: Vec<String> = (PRUNE_PER_RUN..total).map(|i| format!("f{i:05}")).collect();
    assert_eq!(
        left, newest,
        "the oldest went first, and no more than a batch"
    );
    assert_eq!(
        pending(&edge),
        before_pending,
        "no pending survey is pruned"
    );
    counters_match(&edge);
    let record = scheduler.store.org().unwrap();
    assert_eq!(record.storage.pruned_early, PRUNE_PER_RUN as u64, "counted");
    let storage = &edge.log("limit=1").body["storage"];
    let warning = storage["warning"].as_str().expect("a warning while at 80%");
    assert!(
        warning.contains("(80%)") && warning.contains("1000 entries"),
        "{warning}"
    );
    assert_eq!(storage["prunedEarly"], PRUNE_PER_RUN);

    // Still there: the rest of the finished entries, then nothing more (pending stay).
    edge.fire_alarms(edge.now());
    edge.fire_alarms(edge.now());
    assert_eq!(pending(&edge), before_pending);
    assert_eq!(scheduler.store.jobs().len(), before_pending.len());
    assert_eq!(
        scheduler.store.org().unwrap().storage.pruned_early,
        total as u64
    );
    counters_match(&edge);

    // A close still schedules: surveys are never refused for lack of space.
    let reply = edge.close(&close_event(
        "6560e0f1a2b3c4d5e6f7aaaa",
        "2026-11-20T10:00:00.000Z",
    ));
    assert_eq!(reply.status, 202, "{reply:?}");
}

#[test]
fn finished_entries_lose_personal_data_after_its_days_and_the_summary_stays() {
    let edge = with_jobs(quick_retries(), |edge| {
        (0..4)
            .map(|i| finished(edge, &format!("c{i}"), i * DAY_MS))
            .collect()
    });
    let scheduler = edge.scheduler(ORG);
    edge.advance_to(edge.now() + DAY_MS); // the fixture's survey goes out
    let summary = edge.log("").body["summary"].clone();
    let oldest = scheduler.store.get("c3").unwrap().unwrap();
    // Only the alarms the scheduler asks for fire: the removal's must be armed.
    let fired = edge.advance_to(oldest.updated_ms + 30 * DAY_MS);
    assert_eq!(
        fired.last(),
        Some(&(oldest.updated_ms + 30 * DAY_MS)),
        "{fired:?}"
    );
    let gone = scheduler.store.get("c3").unwrap().unwrap();
    let kept = scheduler.store.get("c2").unwrap().unwrap();
    assert_eq!(
        gone.personal_data_removed,
        Some(Removal::Expired { days: 30 })
    );
    assert_eq!(kept.personal_data_removed, None, "a day younger: kept");
    let text = serde_json::to_string(&gone).unwrap();
    assert!(
        !text.contains("c3@example.com") && !text.contains("Customer c3"),
        "{text}"
    );
    assert!(!text.contains("Thanks from c3"), "{text}");
    assert_eq!(
        (
            gone.state,
            gone.reason.as_ref(),
            gone.updated_ms,
            gone.closed_at_ms
        ),
        (
            oldest.state,
            oldest.reason.as_ref(),
            oldest.updated_ms,
            oldest.closed_at_ms
        ),
    );
    assert_eq!(
        gone.outcome.as_ref().map(|o| o.read.rating),
        oldest.outcome.as_ref().map(|o| o.read.rating),
        "the rating stays"
    );
    // The log: a placeholder, not a blank; the summary and the counters as they were.
    let entry = edge.delivery("c3");
    assert_eq!(entry["customerName"], "removed after 30 days");
    assert_eq!(entry["customerEmail"], "removed after 30 days");
    assert_eq!(entry["agentEmail"], "sam@acme.example");
    assert_eq!(edge.delivery("c2")["customerEmail"], "c2@example.com");
    assert_eq!(edge.log("").body["summary"], summary);
    counters_match(&edge);
    // The rest as each falls due: the walk goes on from where it stopped.
    edge.advance_to(edge.now() + 4 * DAY_MS);
    for id in ["c0", "c1", "c2"] {
        let job = scheduler.store.get(id).unwrap().unwrap();
        assert!(job.personal_data_removed.is_some(), "{id}");
    }
    assert_eq!(edge.log("").body["summary"], summary);
}

#[test]
fn personal_data_goes_a_bounded_batch_a_run_oldest_first() {
    let total = SCRUB_PER_RUN + 3;
    let edge = with_jobs(quick_retries(), |edge| {
        (0..total)
            .map(|i| finished(edge, &format!("s{i:04}"), 40 * DAY_MS - i as i64 * 1000))
            .collect()
    });
    let scheduler = edge.scheduler(ORG);
    let scrubbed = || {
        let jobs = scheduler.store.jobs();
        let ids = jobs.iter().filter(|j| j.personal_data_removed.is_some());
        ids.map(|j| j.conversation_id.clone()).collect::<Vec<_>>()
    };
    edge.fire_alarms(edge.now());
    let first: Vec<String> = (0..SCRUB_PER_RUN).map(|i| format!("s{i:04}")).collect();
    assert_eq!(scrubbed(), first, "the oldest, a batch of SCRUB_PER_RUN");
    let next = scheduler.next_alarm().unwrap().unwrap();
    assert!(next <= edge.now(), "the rest are due at once: {next}");
    edge.fire_alarms(edge.now());
    assert_eq!(scrubbed().len(), total);
    assert_eq!(
        scheduler
            .store
            .org()
            .unwrap()
            .storage
            .scrubbed_to
            .map(|m| m.conversation_id),
        Some(format!("s{:04}", total - 1)),
        "the walk's mark: none is read twice"
    );
}

#[test]
fn the_bindings_set_the_period_and_the_ceiling() {
    let config = Config {
        personal_data_days: 2,
        storage_ceiling_bytes: 1000,
        ..quick_retries()
    };
    let edge = with_jobs(config, |edge| vec![finished(edge, "c10", 3 * DAY_MS)]);
    let scheduler = edge.scheduler(ORG);
    scheduler.store.size_bytes.set(700);
    edge.fire_alarms(edge.now());
    assert_eq!(
        scheduler
            .store
            .get("c10")
            .unwrap()
            .unwrap()
            .personal_data_removed,
        Some(Removal::Expired { days: 2 })
    );
    assert_eq!(edge.delivery("c10")["customerName"], "removed after 2 days");
    assert_eq!(edge.log("limit=1").body["storage"]["ceilingBytes"], 1000);
    assert!(!retention::over_threshold(700, 1000));
}

#[test]
fn an_outcome_waiting_to_be_written_keeps_its_comment_until_it_is() {
    let edge = with_jobs(quick_retries(), |edge| {
        let mut job = finished(edge, "c3", 31 * DAY_MS);
        job.outcome.as_mut().expect("a sent entry").unwritten = true;
        vec![job]
    });
    let scheduler = edge.scheduler(ORG);
    edge.fire_alarms(edge.now());
    let job = scheduler.store.get("c3").unwrap().unwrap();
    assert_eq!(
        job.personal_data_removed, None,
        "its comment is still to be written"
    );
    // Written: the entry changes, and its data goes once the period has passed again.
    let written = Job {
        outcome: job.outcome.clone().map(|o| JobOutcome {
            unwritten: false,
            ..o
        }),
        updated_ms: edge.now(),
        ..job
    };
    scheduler.store.put(&written).unwrap();
    edge.fire_alarms(edge.now() + 30 * DAY_MS);
    let job = scheduler.store.get("c3").unwrap().unwrap();
    assert_eq!(
        job.personal_data_removed,
        Some(Removal::Expired { days: 30 })
    );
}
