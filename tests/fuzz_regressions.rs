//! The fuzz targets' invariants on stable, without libFuzzer: every seed in `fuzz/seeds/<target>/`
//! and every crash the fuzzers found (`fuzz/regressions/<target>/`, each minimized) goes
//! through the very functions the targets call (`fuzz/src/lib.rs`, included here), so the
//! invariants cannot rot between fuzzing runs. `make fuzz` runs the fuzzers themselves.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../fuzz/src/lib.rs"]
mod invariants;

use serde_json::{json, Value};
use std::path::Path;
use stella_connect::api::{self, Options};
use stella_connect::timestamp;

/// Every file in `fuzz/<dir>/<target>/`, sorted, with its name.
fn inputs(dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("a readable directory").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a readable file");
            (p.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Replays the seeds and the regressions of one target; returns how many seeds there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let seeds = inputs("seeds", target);
    for (name, bytes) in seeds.iter().chain(&inputs("regressions", target)) {
        let outcome = std::panic::catch_unwind(|| check(bytes));
        assert!(outcome.is_ok(), "{name} fails the `{target}` invariants");
    }
    seeds.len()
}

#[test]
fn settings_seeds_and_regressions_hold() {
    assert!(replay("settings", invariants::settings) >= 5);
}

#[test]
fn event_seeds_and_regressions_hold() {
    assert!(replay("event", invariants::event) >= 5);
}

#[test]
fn records_seeds_and_regressions_hold() {
    assert!(replay("records", invariants::records) >= 5);
}

#[test]
fn outcome_seeds_and_regressions_hold() {
    assert!(replay("outcome", invariants::outcome) >= 5);
    // The seeds reach past the first checks: a rating, a not-sent status, an unknown one.
    let read = |name: &str| {
        let (_, bytes) = inputs("seeds", "outcome")
            .into_iter()
            .find(|(path, _)| path.ends_with(name))
            .expect(name);
        let value: Value = serde_json::from_slice(&bytes).expect(name);
        serde_json::to_value(api::read_survey_outcome(&value)).unwrap()
    };
    assert_eq!(read("rated.json")["outcome"]["rating"], 4);
    assert_eq!(
        read("suppressed.json")["outcome"]["deliveryStatus"],
        "suppressed"
    );
    assert_eq!(
        read("unknown-status.json")["outcome"]["deliveryStatusText"],
        "Queued"
    );
    assert_eq!(read("no-uuid.json")["error"]["path"], "uuid");
}

/// The seeds reach past the first checks: valid settings, a scheduled close, a built request
/// and a card, so the fuzzers start from the deep paths.
#[test]
fn the_seeds_reach_the_deep_paths() {
    let seed = |target: &str, name: &str| -> Value {
        let (_, bytes) = inputs("seeds", target)
            .into_iter()
            .find(|(path, _)| path.ends_with(name))
            .expect(name);
        serde_json::from_slice(&bytes).expect(name)
    };
    let validated = |raw: &Value, allow_loopback| {
        serde_json::to_value(api::validate_settings(raw, Options { allow_loopback })).unwrap()
    };
    for name in ["minimal.json", "advanced.json", "maps-as-objects.json"] {
        assert_eq!(
            validated(&seed("settings", name), false)["ok"],
            true,
            "{name}"
        );
    }
    assert_eq!(
        validated(&seed("settings", "loopback.json"), true)["ok"],
        true
    );
    assert_eq!(
        validated(&seed("settings", "invalid.json"), false)["errors"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );

    let plan = |name: &str| {
        let event = seed("event", name);
        let planned = api::plan_conversation_event(
            &invariants::fixed_settings(),
            &event,
            Options::default(),
            invariants::now(),
        );
        serde_json::to_value(planned).unwrap()
    };
    assert_eq!(plan("conversation-update-done.json")["action"], "schedule");
    assert_eq!(plan("event-time-only.json")["action"], "schedule");
    assert_eq!(plan("reopened.json")["reason"], "not_closed");
    assert_eq!(plan("status-unchanged.json")["reason"], "status_unchanged");
    assert_eq!(
        plan("other-event.json")["reason"],
        "not_a_conversation_update"
    );

    let built = api::build_survey_request(&seed("records", "survey-input.json"));
    assert_eq!(serde_json::to_value(built).unwrap()["ok"], true);
    let card = api::explain_conversation(
        &seed("records", "survey-input-open.json"),
        invariants::now(),
    );
    assert_eq!(
        serde_json::to_value(card).unwrap()["card"]["outlook"],
        "do_not_send"
    );
}

/// Found by the `settings` target (minimized: `s=e,s=c`): a Kustomer channel mapped twice was
/// applied with its first Stella channel but shown with its last. Fixed: the first pair stays.
#[test]
fn a_channel_mapped_twice_keeps_its_first_pair() {
    for (map, shown) in [
        (json!("s=e,s=c"), json!({"s": "e", "voice": "phone"})),
        (
            json!("sms=chat, SMS=phone, Voice=x, voice=y"),
            json!({"sms": "chat", "Voice": "x"}),
        ),
        (
            json!({"SMS": "a", "sms": "b"}),
            json!({"SMS": "a", "voice": "phone"}),
        ),
    ] {
        let mut raw = invariants::fixed_settings();
        raw["channelMap"] = map;
        let out = serde_json::to_value(api::validate_settings(&raw, Options::default())).unwrap();
        assert_eq!(out["settings"]["channelMap"], shown, "{raw}");
    }
    invariants::settings(b"s=e,s=c");
}

/// Found with the `event` invariants (`fuzz/regressions/event/status-at-*.json`): a close time
/// whose UTC instant lies past 9999 (`9999-12-31T23:30:00-01:00`) made `timestamp::format`
/// panic (a trap in Wasm), one before year 1 was written as `-001-12-31T23:00:00.000Z`, and one
/// in the last minutes of 9999 got no delay (the addition saturated). Fixed: such a timestamp
/// is unreadable, so the next candidate (or the time received) is the close time.
#[test]
fn close_times_outside_years_1_to_9998_are_not_used() {
    for text in [
        "9999-12-31T23:30:00-01:00",
        "0000-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59Z",
    ] {
        assert_eq!(timestamp::parse(text), None, "{text}");
        let event = json!({"name": "kustomer.conversation.update", "createdAt": "2026-11-20T14:03:11.435Z",
            "data": {"id": "c1", "attributes": {"status": "done", "modificationHistory": {"statusAt": text}}},
            "changes": {"attributes": {"status": {"before": "open", "after": "done"}}}});
        let planned = api::plan_conversation_event(
            &invariants::fixed_settings(),
            &event,
            Options::default(),
            invariants::now(),
        );
        let out = serde_json::to_value(planned).unwrap();
        assert_eq!(out["closedAt"], "2026-11-20T14:03:11.435Z", "{text}");
        assert_eq!(out["sendAt"], "2026-11-20T14:18:11.435Z", "{text}");
        invariants::event(event.to_string().as_bytes());
    }
    for text in ["0001-01-01T00:00:00Z", "9998-12-31T23:59:59.999Z"] {
        let t = timestamp::parse(text).expect(text);
        assert_eq!(timestamp::parse(&timestamp::format(t)), Some(t), "{text}");
    }
}

/// Found by the `settings` target (minimized: `http:D\xff`, a URL whose host is `D\u{fffd}`):
/// an uppercase ASCII letter right before non-ASCII text in a host trips a debug assertion in
/// idna_adapter 1.0.0 (`!c.is_ascii_uppercase()`), so debug builds panicked where release builds
/// answer `invalid_url`. Cargo.toml turns that dependency's debug assertions off.
#[test]
fn uppercase_before_non_ascii_in_a_host_is_an_invalid_url() {
    invariants::settings(b"http:D\xff");
    for url in [
        "http:D\u{fffd}",
        "https://D\u{e9}.kustomerapp.com",
        "https://aB%C3%A9.kustomerapp.com",
        "http://D%C3%A9/",
    ] {
        let mut raw = invariants::fixed_settings();
        raw["kustomerUrl"] = url.into();
        let out = serde_json::to_value(api::validate_settings(
            &raw,
            Options {
                allow_loopback: true,
            },
        ))
        .unwrap();
        assert_eq!(out["errors"][0]["code"], "invalid_url", "{url}");
    }
}

/// The checks themselves can fail: a key left in an answer, or an answer that breaks the
/// documented shape, is caught (so a green run above means something).
#[test]
fn the_invariants_catch_a_leaked_key() {
    let leaked = serde_json::json!({"ok": true, "note": invariants::STELLA_KEY});
    let caught = std::panic::catch_unwind(|| {
        invariants::assert_answer_hides_keys(&leaked, &serde_json::Value::Null)
    });
    assert!(caught.is_err());
}

/// Seeds that are not JSON still go through the settings target as field values, and empty
/// input is fine for every target.
#[test]
fn odd_inputs_hold() {
    for data in [&b""[..], b"\xff\xfe", b"{", b"null", b"[]", b"\"\""] {
        invariants::settings(data);
        invariants::event(data);
        invariants::records(data);
    }
}
