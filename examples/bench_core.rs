//! The core's cost per closed conversation, natively: `api::plan_conversation_event` on the
//! fixture close event plus `api::build_survey_request` on the fixtures
//! (`tests/fixtures/kustomer/*.json`). Run by `scripts/bench/run.mjs` (`make bench`):
//!
//! ```sh
//! cargo run --release --example bench_core -- [rounds] [iterations]
//! ```
//!
//! Each round times `iterations` events with `std::time::Instant`; the output is one JSON line
//! with the median, minimum and maximum round in µs per event, for two shapes of the same work:
//! `core` (inputs already parsed as `serde_json::Value`, results as Rust values) and `json`
//! (JSON text in, JSON text out: what a Wasm export does between `JSON.stringify` and
//! `JSON.parse`).

use serde_json::{json, Value};
use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use stella_connect::api::{self, Built, Options, Planned};
use stella_connect::{timestamp, Plan};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/kustomer/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// "now" as the Wasm export takes it (`Date.now()` on each call).
fn now() -> timestamp::Instant {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    timestamp::from_millis(ms)
}

/// One closed conversation, parsed inputs: plan the event, then build the request.
fn event_core(settings: &Value, event: &Value, input: &Value) -> bool {
    let planned = api::plan_conversation_event(settings, event, Options::default(), now());
    let built = api::build_survey_request(input);
    matches!(planned, Planned::Plan(Plan::Schedule { .. })) && matches!(built, Built::Send { .. })
}

/// The same from JSON text to JSON text.
fn event_json(settings: &str, event: &str, input: &str) -> usize {
    let planned = match (
        stella_connect::json::from_json(settings),
        stella_connect::json::from_json(event),
    ) {
        (Ok(s), Ok(e)) => api::plan_conversation_event(&s, &e, Options::default(), now()),
        _ => panic!("fixtures do not parse"),
    };
    let built = match stella_connect::json::from_json(input) {
        Ok(i) => api::build_survey_request(&i),
        Err(_) => panic!("fixtures do not parse"),
    };
    let a = serde_json::to_string(&planned).expect("plan serializes");
    let b = serde_json::to_string(&built).expect("request serializes");
    a.len() + b.len()
}

/// Median, minimum and maximum of per-round µs/event.
fn summary(mut rounds: Vec<f64>) -> Value {
    rounds.sort_by(f64::total_cmp);
    json!({
        "median": rounds[rounds.len() / 2],
        "min": rounds[0],
        "max": rounds[rounds.len() - 1],
        "rounds": rounds,
    })
}

fn time_rounds(rounds: usize, iterations: usize, mut one: impl FnMut()) -> Vec<f64> {
    for _ in 0..iterations.min(1000) {
        one(); // warm-up: caches, allocator
    }
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                one();
            }
            start.elapsed().as_secs_f64() * 1e6 / iterations as f64
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(15, |a| a.parse().expect("rounds"));
    let iterations: usize = args
        .next()
        .map_or(20_000, |a| a.parse().expect("iterations"));
    assert!(
        rounds > 0 && iterations > 0,
        "rounds and iterations must be positive"
    );

    let settings = json!({
        "stellaApiKey": "stella-test-key-0123",
        "kustomerApiKey": "kustomer-key-4567",
        "kustomerApiUrl": "https://api.kustomerapp.com",
        "kustomerUrl": "https://acme.kustomerapp.com/",
        "secondsUntilSend": "86400"
    });
    let event = fixture("conversation-update-done");
    let input = json!({
        "settings": settings,
        "conversation": fixture("conversation"),
        "customer": fixture("customer"),
        "user": fixture("user"),
        "tags": fixture("tags"),
    });
    assert!(
        event_core(&settings, &event, &input),
        "the fixtures must schedule and build a request"
    );
    let (settings_text, event_text, input_text) =
        (settings.to_string(), event.to_string(), input.to_string());

    let core = time_rounds(rounds, iterations, || {
        black_box(event_core(
            black_box(&settings),
            black_box(&event),
            black_box(&input),
        ));
    });
    let text = time_rounds(rounds, iterations, || {
        black_box(event_json(
            black_box(&settings_text),
            black_box(&event_text),
            black_box(&input_text),
        ));
    });
    println!(
        "{}",
        json!({
            "rounds": rounds,
            "iterations": iterations,
            "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
            "usPerEvent": { "core": summary(core), "json": summary(text) },
        })
    );
}
