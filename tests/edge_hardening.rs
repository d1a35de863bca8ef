#![cfg(not(target_arch = "wasm32"))]
//! The edge against hostile and odd input, on the host with the fakes of `tests/edge.rs`: each
//! test is a probe that once got through (a forged or future close, a repeat survey, half an
//! emoji, a key-testing burst, keys kept at rest, keys echoed in another form, an id no server
//! takes) and now gets a coded answer, loses no survey and keeps no key.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::*;
use serde_json::{json, Value};
use stella_connect::edge::job::JobState;
use stella_connect::edge::{Config, Reply, Store};
use support::fixture;

const DELAY_MS: i64 = 900_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn due() -> i64 {
    closed_ms() + DELAY_MS
}

fn code(reply: &Reply) -> &str {
    reply.body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {reply:?}"))
}

/// The settings headers with the app secret replaced (`None`: left out).
fn with_secret(secret: Option<&str>) -> Vec<(String, String)> {
    settings_headers_with(&[("appSecret", secret)])
}

/// Every job and the org record as stored: none may hold a key or the app secret.
fn assert_nothing_stored_in_clear(edge: &Edge) {
    let scheduler = edge.scheduler(ORG);
    let mut stored: Vec<String> = scheduler
        .store
        .jobs()
        .iter()
        .map(|j| serde_json::to_string(j).unwrap())
        .collect();
    stored.push(serde_json::to_string(&scheduler.store.org().unwrap()).unwrap());
    for text in &stored {
        for secret in SECRETS {
            assert!(!text.contains(secret), "stored in clear: {text}");
        }
    }
}

#[test]
fn a_close_from_the_future_is_refused_and_the_real_one_still_counts() {
    let edge = Edge::quick();
    let forged = close_event(CONVERSATION, "2099-01-01T00:00:00Z");
    let reply = edge.close(&forged);
    assert_eq!((reply.status, code(&reply)), (400, "close_in_future"));
    // Within the clock skew allowed (120 s) a close is taken as it says.
    let skewed = close_event(CONVERSATION, &iso(edge.now() + 60_000));
    assert_eq!(edge.close(&skewed).status, 202);
    // The real close, earlier, is stale against the skewed one, but Kustomer's own close time
    // decides at send time: the survey goes out once, on the real close's schedule.
    let real = close_event(CONVERSATION, &iso(closed_ms()));
    assert_eq!(edge.close(&real).body["reason"], "stale_event");
    edge.advance_to(due() + 2 * HOUR_MS);
    assert_eq!(edge.world.accepted().len(), 1);
    let job = edge.job(CONVERSATION);
    assert_eq!(
        job.closed_at_ms,
        closed_ms(),
        "the job now carries Kustomer's close"
    );
    // Sent on the skewed close's schedule: at most the allowed skew late.
    assert!(job.sent_ms.unwrap() <= due() + 62_000 + 120_000, "{job:?}");
    edge.assert_no_secrets();
}

#[test]
fn only_the_apps_own_calls_schedule_list_and_resend() {
    let edge = Edge::quick();
    let event = fixture("conversation-update-done");
    // Another holder of the org's Kustomer key, with a Stella key of their own.
    let attacker = |secret: Option<&str>| {
        let mut headers = with_secret(secret);
        headers.retain(|(k, _)| k != "x-stella-api-key");
        headers.push(("x-stella-api-key".into(), "attackers-own-stella-key".into()));
        headers
    };
    let reply = edge.close_with(&event, &attacker(None));
    assert_eq!((reply.status, code(&reply)), (401, "missing_app_secret"));
    let reply = edge.close_with(&event, &attacker(Some("short")));
    assert_eq!((reply.status, code(&reply)), (401, "missing_app_secret"));
    assert!(edge.gateway.router.commands.borrow().is_empty());

    // Whatever it sends first, a caller whose app secret Kustomer's settings do not vouch for
    // takes nothing over: a resend or log read is refused, and its close is held, its settings
    // never kept.
    let path = format!("/v1/deliveries/{CONVERSATION}/resend");
    let reply = edge.call(
        "POST",
        &path,
        &attacker(Some("a-guessed-app-secret-123")),
        "",
    );
    assert_eq!((reply.status, code(&reply)), (401, "app_secret_rejected"));
    let reply = edge.close_with(&event, &attacker(Some("a-guessed-app-secret-123")));
    assert_eq!((reply.status, &reply.body["status"]), (202, &json!("held")));
    let record = edge.scheduler(ORG).store.org().unwrap();
    assert_eq!(
        record.sealed_settings, None,
        "a held close keeps no settings"
    );

    // The app's own close is trusted at once (Kustomer vouches for its secret); a guessed one
    // is held again, and the log refuses it.
    assert_eq!(edge.close(&event).status, 202);
    let later = close_event(CONVERSATION, &iso(closed_ms() + 60_000));
    let reply = edge.close_with(&later, &attacker(Some("a-guessed-app-secret-123")));
    assert_eq!((reply.status, &reply.body["status"]), (202, &json!("held")));
    let list = |secret: &str| {
        let headers = [
            ("x-kustomer-api-key".to_owned(), KUSTOMER_KEY.to_owned()),
            ("x-app-secret".to_owned(), secret.to_owned()),
        ];
        edge.call("GET", "/v1/deliveries", &headers, "")
    };
    let refused = list("a-guessed-app-secret-123");
    assert_eq!(code(&refused), "app_secret_rejected");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Re-link the app"),
        "{refused:?}"
    );
    assert_eq!(list(APP_SECRET).status, 200);

    // The stored settings are still the app's: the survey goes out with the org's Stella key,
    // at the first close's time.
    edge.advance_to(due() + HOUR_MS);
    let sent = edge.world.requests();
    let stella: Vec<_> = sent
        .iter()
        .filter(|r| r.url.starts_with(STELLA_API))
        .collect();
    assert_eq!(stella.len(), 1);
    assert_eq!(stella[0].header("x-api-key"), Some(STELLA_KEY));
    edge.assert_no_secrets();
}

#[test]
fn kustomers_close_time_decides_at_send_time() {
    let edge = Edge::quick();
    // An event claiming the conversation closed ten minutes earlier than it did.
    const EARLY: i64 = 10 * 60_000;
    let early = close_event(CONVERSATION, &iso(closed_ms() - EARLY));
    let reply = edge.close(&early);
    assert_eq!(ms_of(&reply.body["sendAt"]), due() - EARLY);
    assert_eq!(edge.advance_to(due() - EARLY), vec![due() - EARLY]);
    assert_eq!(edge.world.stella_attempts(), 0, "not sent early");
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("scheduled"), &json!("retimed")),
        "{d}"
    );
    assert_eq!(ms_of(&d["sendAt"]), due());
    edge.advance_to(due());
    assert_eq!(edge.world.accepted().len(), 1);

    // Closed again in Kustomer (no event reached the edge) after the job was planned: the
    // survey follows Kustomer's latest close.
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let reclosed = closed_ms() + 10 * 60_000;
    edge.world.edit_conversation(CONVERSATION, |c| {
        c["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(iso(reclosed));
    });
    edge.advance_to(due());
    assert_eq!(edge.world.stella_attempts(), 0);
    assert_eq!(edge.job(CONVERSATION).due_ms, Some(reclosed + DELAY_MS));
    edge.advance_to(reclosed + DELAY_MS);
    assert_eq!(edge.world.accepted().len(), 1);
    edge.assert_no_secrets();
}

#[test]
fn a_conversation_is_surveyed_once_unless_the_setting_allows_more() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.advance_to(due());
    assert_eq!(edge.world.accepted().len(), 1);
    // Reopened and closed three more times: no more surveys.
    for i in 1..=3 {
        let at = due() + i * HOUR_MS;
        edge.set_now(at + 1000);
        edge.world.edit_conversation(CONVERSATION, |c| {
            c["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(iso(at));
        });
        let reply = edge.close(&close_event(CONVERSATION, &iso(at)));
        assert_eq!(
            (reply.status, &reply.body["reason"]),
            (200, &json!("already_surveyed")),
            "{reply:?}"
        );
        edge.advance_to(at + 2 * DELAY_MS);
    }
    assert_eq!(edge.world.accepted().len(), 1, "one survey");
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("sent"), &json!("already_surveyed"))
    );
    assert!(
        d["message"].as_str().unwrap().contains("already surveyed"),
        "{d}"
    );

    // With "again after 2 days", a close two days after the survey is surveyed again.
    let twice = settings_headers_with(&[("resurveyAfterDays", Some("2"))]);
    let at = due() + DAY_MS;
    edge.set_now(at + 1000);
    let reply = edge.close_with(&close_event(CONVERSATION, &iso(at)), &twice);
    assert_eq!(
        reply.body["reason"], "already_surveyed",
        "one day is too soon"
    );
    let at = due() + 2 * DAY_MS + 1000;
    edge.set_now(at + 1000);
    edge.world.edit_conversation(CONVERSATION, |c| {
        c["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(iso(at));
    });
    let reply = edge.close_with(&close_event(CONVERSATION, &iso(at)), &twice);
    assert_eq!(reply.status, 202, "{reply:?}");
    edge.advance_to(at + DELAY_MS);
    assert_eq!(edge.world.accepted().len(), 2);
    edge.assert_no_secrets();
}

#[test]
fn a_redelivered_event_without_timestamps_is_one_event() {
    let edge = Edge::quick();
    let mut event = fixture("conversation-update-done");
    event["id"] = json!("evt-no-times");
    let attrs = &mut event["data"]["attributes"];
    attrs["modificationHistory"] = json!({});
    attrs.as_object_mut().unwrap().remove("updatedAt");
    event.as_object_mut().unwrap().remove("createdAt");
    let first = edge.close(&event);
    assert_eq!(first.status, 202, "{first:?}");
    // The same event an hour later: its receipt time differs, its id does not.
    edge.set_now(edge.now() + 30 * 60_000);
    let again = edge.close(&event);
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(
        again.body["sendAt"], first.body["sendAt"],
        "not rescheduled"
    );
    assert_eq!(edge.job(CONVERSATION).generation, 0);
}

#[test]
fn ids_are_checked_at_the_door() {
    let edge = Edge::quick();
    let long = "x".repeat(100_000);
    for (id, why) in [
        ("", "empty"),
        ("   ", "blank"),
        (long.as_str(), "overlong"),
        ("conv\u{0}1", "control character"),
        ("conv\n1", "line break"),
    ] {
        let mut event = fixture("conversation-update-done");
        event["data"]["id"] = json!(id);
        let reply = edge.close(&event);
        assert_eq!((reply.status, code(&reply)), (400, "invalid_id"), "{why}");
        let preview = json!({ "conversationId": id }).to_string();
        let reply = edge.call("POST", "/v1/preview", &settings_headers(), &preview);
        assert_eq!((reply.status, code(&reply)), (400, "invalid_id"), "{why}");
    }
    let mut event = fixture("conversation-update-done");
    event["org"] = json!("o".repeat(300));
    assert_eq!(code(&edge.close(&event)), "invalid_id");
    for segment in ["%0A", "%20%20", "%FF", &"y".repeat(300)] {
        let path = format!("/v1/deliveries/{segment}/resend");
        let reply = edge.call("POST", &path, &settings_headers(), "");
        assert_eq!(
            (reply.status, code(&reply)),
            (400, "invalid_id"),
            "{segment}"
        );
    }
    assert!(edge.gateway.router.commands.borrow().is_empty());
    assert_eq!(edge.world.kustomer_data_calls(), 0);
}

#[test]
fn resend_decodes_its_path_segment_exactly_once() {
    let edge = Edge::quick();
    let id = "odd id/with%25 and ?#";
    let mut conversation = fixture("conversation");
    conversation["data"]["id"] = json!(id);
    conversation["data"]["attributes"]["assignedUsers"] = json!([]);
    edge.world.add_conversation(conversation);
    let mut event = fixture("conversation-update-done");
    event["data"]["id"] = json!(id);
    assert_eq!(edge.close(&event).status, 202);
    edge.advance_to(due());
    assert_eq!(edge.delivery(id)["reason"], "no_assigned_agent");
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let encoded = encoded.replace('+', "%20");
    let reply = edge.call(
        "POST",
        &format!("/v1/deliveries/{encoded}/resend"),
        &settings_headers(),
        "",
    );
    assert_eq!(
        (reply.status, &reply.body["conversationId"]),
        (202, &json!(id)),
        "{reply:?}"
    );
}

/// `json` with the string `marker` replaced by text ending in a lone high surrogate escape.
fn with_lone_surrogate(json: &Value, marker: &str) -> String {
    json.to_string().replace(marker, r"cut mid-emoji \ud83d")
}

#[test]
fn half_an_emoji_loses_no_survey() {
    let edge = Edge::quick();
    let mut event = fixture("conversation-update-done");
    event["data"]["attributes"]["name"] = json!("MARKER");
    let text = with_lone_surrogate(&event, "MARKER");
    assert!(text.contains(r"\ud83d"));
    let reply = edge.call(
        "POST",
        "/v1/kustomer/conversation-closed",
        &settings_headers(),
        &text,
    );
    assert_eq!(reply.status, 202, "{reply:?}");

    // Kustomer's answer for the customer carries one too: the survey still goes out, the
    // broken character shown as U+FFFD.
    let mut customer = fixture("customer");
    customer["data"]["attributes"]["name"] = json!("MARKER");
    let conversation = fixture("conversation");
    edge.world
        .kustomer_fault(Fault::status(200, &conversation.to_string()));
    edge.world.kustomer_fault(Fault::status(
        200,
        &with_lone_surrogate(&customer, "MARKER"),
    ));
    edge.advance_to(due());
    let accepted = edge.world.accepted();
    assert_eq!(accepted.len(), 1, "{:?}", edge.delivery(CONVERSATION));
    assert_eq!(accepted[0]["customer"]["name"], "cut mid-emoji \u{fffd}");
}

#[test]
fn key_checks_ask_kustomer_first_and_are_rate_limited() {
    let edge = Edge::quick();
    let check = |headers: &[(String, String)]| edge.call("POST", "/v1/settings/check", headers, "");
    // An unknown Kustomer key: Stella is never asked, whatever Stella key comes with it.
    for i in 0..3 {
        let guess = format!("guessed-stella-key-{i}");
        let reply = check(&settings_headers_with(&[
            ("kustomerApiKey", Some("unknown-key")),
            ("stellaApiKey", Some(guess.as_str())),
        ]));
        assert_eq!(reply.body["stella"]["code"], "not_checked");
    }
    assert_eq!(edge.world.stella_attempts(), 0);
    assert!(
        edge.gateway.router.limits.borrow().is_empty(),
        "a key Kustomer does not accept opens no bucket"
    );

    // A burst of guesses with the org's key: five a minute, then 429 with Retry-After.
    let mut answers = vec![];
    for i in 0..20 {
        let guess = format!("guessed-stella-key-{i}");
        answers.push(check(&settings_headers_with(&[(
            "stellaApiKey",
            Some(guess.as_str()),
        )])));
    }
    let allowed = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        allowed,
        5,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let limited = &answers[5];
    assert_eq!((limited.status, code(limited)), (429, "rate_limited"));
    assert!(
        limited.retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{limited:?}"
    );
    assert_eq!(edge.world.stella_attempts(), 5);
    assert_eq!(
        edge.gateway.router.limits.borrow().len(),
        1 + 5,
        "the Kustomer key's bucket and the five Stella keys it let through: no bucket per guess"
    );
    // Preview counts against the same keys.
    let preview = json!({ "conversationId": CONVERSATION }).to_string();
    assert_eq!(
        edge.call("POST", "/v1/preview", &settings_headers(), &preview)
            .status,
        429
    );

    // A minute later the keys may be checked again; an address is limited across keys.
    edge.set_now(edge.now() + 61_000);
    assert_eq!(check(&settings_headers()).status, 200);
    let mut from_one_address = vec![];
    for i in 0..8 {
        let key = format!("other-stella-key-{i}");
        let mut headers = settings_headers_with(&[("stellaApiKey", Some(key.as_str()))]);
        headers.retain(|(k, _)| k != "x-kustomer-api-key");
        headers.push(("x-kustomer-api-key".into(), OTHER_ORG_KEY.into()));
        headers.push(("cf-connecting-ip".into(), "203.0.113.9".into()));
        from_one_address.push(check(&headers).status);
    }
    assert_eq!(
        from_one_address.iter().filter(|s| **s == 429).count(),
        3,
        "{from_one_address:?}"
    );
    let buckets: Vec<String> = edge
        .gateway
        .router
        .limits
        .borrow()
        .keys()
        .cloned()
        .collect();
    for secret in SECRETS {
        assert!(
            !buckets.iter().any(|b| b.contains(secret)),
            "a bucket names a key: {buckets:?}"
        );
    }
    edge.assert_no_secrets();
}

#[test]
fn keys_are_sealed_while_needed_and_dropped_after() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let record = edge.scheduler(ORG).store.org().unwrap();
    let sealed = record
        .sealed_settings
        .clone()
        .expect("kept while the job waits");
    assert!(sealed.starts_with("v1."), "{sealed}");
    let opened = test_sealer().open(&sealed, ORG).unwrap();
    assert!(
        opened.contains(STELLA_KEY) && !opened.contains(APP_SECRET),
        "the seal holds the settings, not the app secret"
    );
    assert_nothing_stored_in_clear(&edge);

    // The same settings again are not sealed again; changed ones are.
    let again = close_event(CONVERSATION, &iso(closed_ms() + 1000));
    assert_eq!(edge.close(&again).status, 202);
    assert_eq!(
        edge.scheduler(ORG).store.org().unwrap().sealed_settings,
        Some(sealed.clone())
    );
    let rotated = settings_headers_with(&[("secondsUntilSend", Some("901"))]);
    let third = close_event(CONVERSATION, &iso(closed_ms() + 2000));
    assert_eq!(edge.close_with(&third, &rotated).status, 202);
    assert_ne!(
        edge.scheduler(ORG).store.org().unwrap().sealed_settings,
        Some(sealed)
    );

    edge.advance_to(due() + HOUR_MS);
    assert_eq!(edge.world.accepted().len(), 1);
    assert_eq!(
        edge.scheduler(ORG).store.org().unwrap().sealed_settings,
        None,
        "dropped"
    );
    assert_nothing_stored_in_clear(&edge);
}

#[test]
fn settings_that_cannot_be_read_wait_for_the_next_close() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    // The deployment's key changed without keeping the old one: the seal no longer opens.
    let store = &edge.scheduler(ORG).store;
    let mut record = store.org().unwrap();
    record.sealed_settings = Some("v1.deadbeef.AAAA".into());
    store.put_org(&record).unwrap();
    edge.fire_alarms(due());
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("retrying"), &json!("temporary_failure")),
        "{d}"
    );
    // The next close of any conversation brings the settings; the waiting survey goes out.
    add_other_conversation(&edge, "conv-2");
    let mut event = close_event("conv-2", &iso(due()));
    event["data"]["relationships"]["customer"]["data"]["id"] = json!("cust-2");
    edge.set_now(due() + 1000);
    assert_eq!(edge.close(&event).status, 202);
    edge.advance_to(due() + 2 * HOUR_MS);
    assert_eq!(edge.world.accepted().len(), 2, "neither survey lost");
}

fn add_other_conversation(edge: &Edge, id: &str) {
    let mut conversation = fixture("conversation");
    conversation["data"]["id"] = json!(id);
    conversation["data"]["relationships"]["customer"]["data"]["id"] = json!("cust-2");
    edge.world.add_conversation(conversation);
    let mut customer = fixture("customer");
    customer["data"]["id"] = json!("cust-2");
    customer["data"]["attributes"]["emails"] = json!([{"email": "two@example.com"}]);
    edge.world.add_customer(customer);
}

#[test]
fn finished_jobs_leave_after_the_retention_period() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.advance_to(due());
    assert_eq!(edge.deliveries().len(), 1);
    let reply = edge.call("GET", "/v1/deliveries", &key_header(KUSTOMER_KEY), "");
    assert_eq!(reply.body["retentionDays"], 90);
    edge.advance_to(due() + 89 * DAY_MS);
    assert_eq!(edge.deliveries().len(), 1, "kept for 90 days");
    edge.advance_to(due() + 91 * DAY_MS);
    assert!(edge.deliveries().is_empty(), "gone after 90 days");
    assert_eq!(
        edge.scheduler(ORG).next_alarm().unwrap(),
        None,
        "no alarm left"
    );
}

#[test]
fn servers_echoing_keys_in_other_forms_are_masked() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let encoded: String = url::form_urlencoded::byte_serialize(STELLA_KEY.as_bytes()).collect();
    let echoes = [
        format!(r#"{{"error":"bad key","key":{}}}"#, json!(STELLA_KEY)),
        format!("GET /x?key={encoded}"),
        format!("KEY {}", STELLA_KEY.to_uppercase()),
        format!("key starts {}…", &STELLA_KEY[..10]),
        format!("key ends …{}", &STELLA_KEY[STELLA_KEY.len() - 9..]),
    ];
    // Encoded: base64 (standard and URL-safe, padded or not, after a prefix that shifts its
    // 3-byte groups) and hex in both cases. The middle of each encoding must not show.
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let hex: String = STELLA_KEY.bytes().map(|b| format!("{b:02x}")).collect();
    let encoded = [
        STANDARD.encode(STELLA_KEY),
        STANDARD.encode(format!("k={STELLA_KEY}")),
        URL_SAFE_NO_PAD.encode(format!("key:{STELLA_KEY}\n")),
        hex.clone(),
        hex.to_uppercase(),
    ];
    let echoes: Vec<String> = echoes
        .into_iter()
        .chain(encoded.iter().map(|e| format!("echo {e} end")))
        .collect();
    for echo in &echoes {
        edge.world.stella_fault(Fault::status(500, echo));
    }
    let mut messages = vec![];
    let mut at = due();
    for _ in &echoes {
        edge.fire_alarms(at);
        let d = edge.delivery(CONVERSATION);
        messages.push(d["message"].as_str().unwrap_or_default().to_owned());
        at = ms_of(&d["nextAttemptAt"]);
    }
    for (echo, message) in echoes.iter().zip(&messages) {
        assert!(message.contains("********"), "{echo} → {message}");
        let lower = message.to_lowercase();
        for w in STELLA_KEY.as_bytes().windows(8) {
            let w = String::from_utf8_lossy(w).to_lowercase();
            assert!(!lower.contains(&w), "{echo} → {message} shows {w}");
        }
    }
    for (e, message) in encoded
        .iter()
        .zip(&messages[messages.len() - encoded.len()..])
    {
        let middle = &e[6..e.len() - 6];
        assert!(!message.contains(middle), "{e} → {message}");
    }
}

#[test]
fn a_request_no_server_takes_fails_once_without_retries() {
    let edge = Edge::quick();
    // A conversation with 1,000 tags: the one `GET /v1/tags/{ids}` is far over 8 KiB.
    let ids: Vec<String> = (0..1000).map(|i| format!("{i:024x}")).collect();
    edge.world.edit_conversation(CONVERSATION, |c| {
        c["data"]["attributes"]["tags"] = json!(ids);
    });
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.advance_to(due() + DAY_MS);
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"], &d["attempts"]),
        (&json!("failed"), &json!("request_refused"), &json!(1)),
        "{d}"
    );
}

#[test]
fn a_close_that_lands_while_its_survey_goes_out_gets_no_second_survey() {
    use stella_connect::edge::job::{Schedule, StoredSettings};
    use stella_connect::edge::scheduler::{Caller, Command};
    use stella_connect::edge::{settings_from_headers, trust};
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    // While the attempt waits on Stella, the agent reopens and closes the conversation again.
    let reclosed = due() - 60_000;
    let headers = settings_headers();
    let raw = settings_from_headers(|name| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    });
    let close = Command::Schedule {
        close: Schedule {
            org: ORG.into(),
            conversation_id: CONVERSATION.into(),
            closed_at_ms: reclosed,
            send_at_ms: reclosed + DELAY_MS,
            event_id: Some("evt-during-the-attempt".into()),
            customer_id: None,
        },
        caller: Caller {
            fingerprint: trust::fingerprint(APP_SECRET),
            org: ORG.into(),
            kustomer_api_url: KUSTOMER_API.into(),
            kustomer_api_key: KUSTOMER_KEY.into(),
        },
        settings: StoredSettings(raw.to_string()),
        resurvey_after_days: 0,
    };
    let (world, scheduler) = (edge.world.clone(), edge.scheduler(ORG));
    edge.world.during_next_stella_request(move || {
        world.edit_conversation(CONVERSATION, |c| {
            c["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(iso(reclosed));
        });
        assert_eq!(scheduler.command(close).status, 202);
    });
    edge.advance_to(reclosed + DELAY_MS + DAY_MS);
    assert_eq!(
        edge.world.accepted().len(),
        1,
        "one survey for the conversation"
    );
    let d = edge.delivery(CONVERSATION);
    assert_eq!(
        (&d["state"], &d["reason"]),
        (&json!("skipped"), &json!("already_surveyed")),
        "{d}"
    );
}

// The delivery log's query and bulk resend -----------------------------------------------------

/// Every query the log refuses: a 400 with a stable code whose `path` names the parameter,
/// answered before Kustomer is asked about the key or the org's scheduler is reached.
#[test]
fn every_bad_delivery_query_is_a_400_naming_its_parameter() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let kustomer_before = edge.world.kustomer_calls();
    let commands_before = edge.gateway.router.commands.borrow().len();
    let tampered = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("12x:abc")
    };
    let control = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("12:a\u{7}b")
    };
    let long_name = "n".repeat(1000);
    let long_query = format!("agent={}", "a".repeat(5000));
    let cases: Vec<(String, &str, &str)> = vec![
        ("color=red".into(), "invalid_query", "color"),
        ("state=sent&state=failed".into(), "invalid_query", "state"),
        ("limit=10&limit=".into(), "invalid_query", "limit"),
        ("state=sending".into(), "invalid_query", "state"),
        ("state=sent,lost".into(), "invalid_query", "state"),
        ("reason=duplicate".into(), "invalid_query", "reason"),
        ("from=last%20week".into(), "invalid_query", "from"),
        ("to=2026-11-20T25:00:00Z".into(), "invalid_query", "to"),
        (
            "from=2026-11-20T00:00:00Z&to=2026-11-20T00:00:00Z".into(),
            "invalid_query",
            "to",
        ),
        ("limit=0".into(), "invalid_query", "limit"),
        ("limit=201".into(), "invalid_query", "limit"),
        (
            "limit=18446744073709551617".into(),
            "invalid_query",
            "limit",
        ),
        ("limit=%2B5".into(), "invalid_query", "limit"),
        (
            "utcOffsetMinutes=99999999999".into(),
            "invalid_query",
            "utcOffsetMinutes",
        ),
        (
            "conversationId=..".into(),
            "invalid_query",
            "conversationId",
        ),
        (
            format!("conversationId={}", "c".repeat(300)),
            "invalid_query",
            "conversationId",
        ),
        ("cursor=not-a-cursor%21".into(), "invalid_cursor", "cursor"),
        (format!("cursor={tampered}"), "invalid_cursor", "cursor"),
        (format!("cursor={control}"), "invalid_cursor", "cursor"),
        (
            format!("cursor={}", "A".repeat(3000)),
            "invalid_cursor",
            "cursor",
        ),
        (format!("{long_name}=1"), "invalid_query", &long_name[..64]),
        (long_query, "invalid_query", "query"),
        ("%FF%FE=1".into(), "invalid_query", "\u{fffd}\u{fffd}"),
    ];
    for (query, code, parameter) in &cases {
        let reply = edge.log(query);
        let shown = &query[..query.len().min(80)];
        assert_eq!(reply.status, 400, "{shown}: {reply:?}");
        assert_eq!(reply.body["error"]["code"], *code, "{shown}");
        assert_eq!(reply.body["error"]["path"], *parameter, "{shown}");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.len() < 400,
            "the caller's text is not echoed whole: {message}"
        );
    }
    // A megabyte of query costs no more than its length check.
    let huge = format!("state={}", "x".repeat(1 << 20));
    assert_eq!(edge.log(&huge).body["error"]["path"], "query");
    assert_eq!(
        edge.world.kustomer_calls(),
        kustomer_before,
        "Kustomer was not asked"
    );
    assert_eq!(
        edge.gateway.router.commands.borrow().len(),
        commands_before,
        "no scheduler was reached"
    );
    // The same parameters, valid, are answered.
    let ok = edge
        .log("state=sent,failed&limit=200&utcOffsetMinutes=-840&from=2026-01-01T00:00:00%2B14:00");
    assert_eq!(ok.status, 200, "{ok:?}");
}

const OTHER_SECRET: &str = "other-org-app-secret-Qz7Wm4";

/// Another org's key (even with its own app secret) neither sees nor resends this org's
/// surveys; a wrong or missing app secret is refused.
#[test]
fn the_log_and_bulk_resend_stay_in_the_keys_org() {
    let edge = Edge::quick();
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let ours = log_job(
        "ours-failed",
        JobState::Failed,
        closed_ms() - DAY_MS,
        Some("gave_up"),
        None,
    );
    edge.scheduler(ORG).store.put(&ours).unwrap();
    // The other org's admin linked its own app (its own secret).
    edge.world.link_org(OTHER_ORG, Some(OTHER_SECRET));
    let mut theirs = close_event("their-conversation", &iso(closed_ms()));
    theirs["org"] = json!(OTHER_ORG);
    let their_settings = settings_headers_with(&[
        ("kustomerApiKey", Some(OTHER_ORG_KEY)),
        ("appSecret", Some(OTHER_SECRET)),
    ]);
    assert_eq!(edge.close_with(&theirs, &their_settings).status, 202);
    let as_them = |secret: &str| {
        vec![
            ("x-kustomer-api-key".to_owned(), OTHER_ORG_KEY.to_owned()),
            ("x-app-secret".to_owned(), secret.to_owned()),
        ]
    };

    let reply = edge.call("GET", "/v1/deliveries", &as_them(OTHER_SECRET), "");
    assert_eq!(log_ids(&reply), ["their-conversation"]);
    assert_eq!(reply.body["summary"]["byState"]["scheduled"], 1);
    assert_eq!(reply.body["summary"]["byState"]["failed"], 0);
    let reply = edge.call(
        "GET",
        "/v1/deliveries?conversationId=ours-failed",
        &as_them(OTHER_SECRET),
        "",
    );
    assert_eq!(log_ids(&reply), Vec::<String>::new());
    let body = json!({"conversationIds": ["ours-failed", CONVERSATION]}).to_string();
    let reply = edge.call("POST", "/v1/deliveries/resend", &their_settings, &body);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["results"][0]["status"], "not_found");
    assert_eq!(reply.body["results"][1]["status"], "not_found");
    assert_eq!(reply.body["scheduled"], 0);
    assert_eq!(edge.job("ours-failed").state, JobState::Failed, "untouched");

    // Their key with our secret, our key with theirs, a guess, none: refused.
    let ours_with = |secret: Option<&str>| settings_headers_with(&[("appSecret", secret)]);
    let mut our_key_their_secret = key_header(KUSTOMER_KEY);
    our_key_their_secret[1].1 = OTHER_SECRET.to_owned();
    for (headers, expected) in [
        (as_them(APP_SECRET), "app_secret_rejected"),
        (our_key_their_secret, "app_secret_rejected"),
        (
            vec![("x-kustomer-api-key".to_owned(), KUSTOMER_KEY.to_owned())],
            "missing_app_secret",
        ),
    ] {
        let reply = edge.call("GET", "/v1/deliveries?state=failed", &headers, "");
        assert_eq!((reply.status, code(&reply)), (401, expected), "{reply:?}");
    }
    for (headers, expected) in [
        (
            ours_with(Some("guessed-app-secret-0000")),
            "app_secret_rejected",
        ),
        (ours_with(Some(OTHER_SECRET)), "app_secret_rejected"),
        (ours_with(None), "missing_app_secret"),
    ] {
        let body = json!({"conversationIds": ["ours-failed"]}).to_string();
        let reply = edge.call("POST", "/v1/deliveries/resend", &headers, &body);
        assert_eq!((reply.status, code(&reply)), (401, expected), "{reply:?}");
    }
    assert_eq!(
        edge.job("ours-failed").state,
        JobState::Failed,
        "still untouched"
    );
    // The org's own call resends it.
    let reply = edge.resend_many(&["ours-failed"], KUSTOMER_KEY);
    assert_eq!(reply.body["results"][0]["status"], "scheduled", "{reply:?}");
    edge.assert_no_secrets();
}

/// Any user of the org may run the resend command, perhaps with headers of their own (if
/// Kustomer lets a run's headers replace the command's): a resend's settings are used only if
/// they are the ones the org's workflow last sent, so a key or brand of the user's own is never
/// kept, and no survey goes out with it.
#[test]
fn a_resend_with_settings_of_its_own_changes_nothing() {
    let edge = Edge::quick();
    edge.world
        .stella_fault(Fault::status(403, "Channel not enabled"));
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    edge.advance_to(due());
    assert_eq!(edge.job(CONVERSATION).state, JobState::Failed);
    let sealed = || edge.scheduler(ORG).store.org().unwrap().sealed_settings;
    assert_eq!(
        sealed(),
        None,
        "no survey pending: the settings are no longer kept"
    );

    let own = settings_headers_with(&[
        ("stellaApiKey", Some("someone-elses-stella-key")),
        ("brand", Some("someone-else")),
    ]);
    let path = format!("/v1/deliveries/{CONVERSATION}/resend");
    let reply = edge.call("POST", &path, &own, "");
    assert_eq!(reply.status, 202, "{reply:?}");
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("next closed conversation"), "{message}");
    assert_eq!(sealed(), None, "a user's own settings are not kept");
    // The resent survey waits for the org's settings: nothing reaches Stella meanwhile.
    edge.advance_to(due() + HOUR_MS);
    assert_eq!(edge.world.stella_attempts(), 1);
    assert_eq!(edge.job(CONVERSATION).state, JobState::Retrying);

    // The bulk resend keeps none of them either, whatever becomes of its ids.
    let body = json!({ "conversationIds": [CONVERSATION] }).to_string();
    let reply = edge.call("POST", "/v1/deliveries/resend", &own, &body);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(sealed(), None);
}

/// Settings typed on the settings page and not saved come in a key check's or a preview's body
/// and replace the saved ones (the headers) for that call only; anything else in their place
/// is refused with a stable code, and the app secret is never among them.
#[test]
fn typed_settings_replace_the_saved_ones_for_one_call_only() {
    let edge = Edge::quick();
    let check = |body: &str| edge.call("POST", "/v1/settings/check", &settings_headers(), body);
    let reply = check(r#"{"settings": {"stellaApiKey": "not-the-key"}}"#);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (
            &reply.body["kustomer"]["code"],
            &reply.body["stella"]["code"]
        ),
        (&json!("ok"), &json!("stella_key_rejected")),
        "the typed key was checked, not the saved one"
    );
    assert_eq!(check("").body["ok"], true, "the saved keys again");
    assert_eq!(check(r#"{"settings": {}}"#).body["ok"], true);
    for (body, path) in [
        (
            r#"{"settings": {"appSecret": "x"}}"#,
            "body.settings.appSecret",
        ),
        (r#"{"settings": {"nope": "x"}}"#, "body.settings.nope"),
        (
            r#"{"settings": {"stellaApiKey": 5}}"#,
            "body.settings.stellaApiKey",
        ),
        (r#"{"settings": "x"}"#, "body.settings"),
        (r#"[1]"#, "body"),
        ("{not json", ""),
    ] {
        let reply = check(body);
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(
            reply.body["error"]["path"].as_str().unwrap_or(""),
            path,
            "{body}"
        );
    }
    // A typed setting that does not validate is refused in the core's words.
    let reply = check(r#"{"settings": {"kustomerUrl": "http://acme.kustomerapp.com"}}"#);
    assert_eq!(
        (reply.status, &reply.body["error"]["code"]),
        (400, &json!("invalid_settings")),
        "{reply:?}"
    );

    // A preview with a channel map typed and not saved uses it.
    let body = json!({"conversationId": CONVERSATION, "settings": {"channelMap": "email=sms"}});
    let reply = edge.call(
        "POST",
        "/v1/preview",
        &settings_headers(),
        &body.to_string(),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["request"]["body"]["channel"], "sms");
    // Nothing was stored by either: the next close's survey is sent as the saved settings say.
    assert!(edge.world.accepted().is_empty());
}

#[test]
fn log_reads_are_rate_limited_per_key_then_per_org() {
    // Any signed-in user can read the log through the app's command, and each read is work for
    // the org's one scheduler: 3 a minute per key and 5 per org here (60 and 120 by default).
    let edge = Edge::new(Config {
        log_reads_per_key_per_minute: 3,
        log_reads_per_org_per_minute: 5,
        ..quick_retries()
    });
    assert_eq!(edge.close(&fixture("conversation-update-done")).status, 202);
    let read = |key: &str| edge.call("GET", "/v1/deliveries?limit=1", &key_header(key), "");
    let statuses = |key: &str, n: usize| (0..n).map(|_| read(key).status).collect::<Vec<_>>();
    assert_eq!(
        statuses(KUSTOMER_KEY, 4),
        [200, 200, 200, 429],
        "the key's 3"
    );
    let limited = read(KUSTOMER_KEY);
    assert_eq!((limited.status, code(&limited)), (429, "rate_limited"));
    assert!(
        limited.retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{limited:?}"
    );
    // Refused again without asking the limiter: a reader ignoring Retry-After costs it nothing.
    let uses = |prefix: &str| {
        let limits = edge.gateway.router.limits.borrow();
        let counts = limits.iter().filter(|(b, _)| b.starts_with(prefix));
        counts.map(|(_, (_, n))| *n).max()
    };
    assert_eq!(uses("log-key:"), Some(4));
    assert_eq!(uses("log-org:"), Some(3));
    // Another key of the org: the org's 5 (the refused reads above counted only at the key).
    assert_eq!(statuses(ADMIN_KEY, 3), [200, 200, 429], "the org's 5");
    // The card's reads (one conversation) and further pages count apart, ten times as many:
    // the org's saved key serves every agent's card.
    for query in ["conversationId=x", "limit=1&cursor=MTI6YWJj"] {
        let reply = edge.call(
            "GET",
            &format!("/v1/deliveries?{query}"),
            &key_header(KUSTOMER_KEY),
            "",
        );
        assert_eq!(reply.status, 200, "{query}: {reply:?}");
    }
    let card = (0..31)
        .map(|_| {
            edge.call(
                "GET",
                "/v1/deliveries?conversationId=x",
                &key_header(KUSTOMER_KEY),
                "",
            )
            .status
        })
        .collect::<Vec<_>>();
    assert_eq!(
        card[..28],
        [200; 28],
        "30 a minute for the key, 2 used above"
    );
    assert_eq!(card[28..], [429; 3]);
    // A key Kustomer does not accept opens no bucket.
    let buckets = edge.gateway.router.limits.borrow().len();
    assert_ne!(read("unknown-key").status, 200);
    assert_eq!(edge.gateway.router.limits.borrow().len(), buckets);
    // A minute later, reads are allowed again.
    edge.set_now(edge.now() + 60_000);
    assert_eq!(statuses(KUSTOMER_KEY, 1), [200]);
}
