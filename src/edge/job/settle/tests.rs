use super::*;
use crate::decision::SkipCode;
use crate::edge::job::{first, Schedule};
use serde_json::json;

const NOW: i64 = 10_000_000;

/// A job leased for its second attempt, the first made an hour ago.
fn leased() -> Job {
    let close = Schedule {
        org: "o".into(),
        conversation_id: "c".into(),
        closed_at_ms: 1_000,
        send_at_ms: 2_000,
        event_id: None,
        customer_id: None,
    };
    Job {
        state: JobState::Sending,
        attempts: 2,
        first_attempt_ms: Some(NOW - 3_600_000),
        due_ms: Some(NOW + 60_000),
        request: Some(json!({"channel": "email"})),
        unsure: true,
        ..first(close, 0)
    }
}

fn record() -> Record {
    use crate::survey_outcome::{DeliveryStatus, SurveyOutcome};
    Record {
        outcome: SurveyOutcome {
            conversation_id: "c".into(),
            uuid: "u1".into(),
            delivery_status: DeliveryStatus::Sent,
            delivery_status_text: None,
            rating: None,
            comment: None,
            sent_at: None,
            responded_at: None,
            is_recovery: false,
        },
        sequence_id: Some(1),
        created_at: Some("1970-01-01T00:00:05Z".into()),
        org: Some("o".into()),
        customer_email: None,
        agent_email: None,
    }
}

/// What a settled job should say: state, reason, next run, when sent, whether unsure, and
/// the channel of the request it keeps.
type Expect = (
    JobState,
    Option<&'static str>,
    Option<i64>,
    Option<i64>,
    bool,
    &'static str,
);

fn check(table: Vec<(Attempt, Expect)>) {
    let policy = RetryPolicy::default();
    for (attempt, expect) in table {
        let end = format!("{:?}", attempt.end);
        let job = settle(leased(), attempt, NOW, &policy, 0.5);
        let channel = job.request.as_ref().and_then(|r| r["channel"].as_str());
        let (state, reason, due) = (job.state, job.reason.as_deref(), job.due_ms);
        let got = (
            state,
            reason,
            due,
            job.sent_ms,
            job.unsure,
            channel.unwrap_or(""),
        );
        assert_eq!(got, expect, "{end}");
    }
}

fn retry(wait_ms: Option<i64>, unsure: bool) -> Attempt {
    let message = "503".into();
    Attempt::ended(AttemptEnd::Retry {
        wait_ms,
        message,
        unsure,
    })
}

#[test]
fn ends_that_finish_the_job() {
    let body = json!({"channel": "chat"});
    let sent = Attempt::ended(AttemptEnd::Sent {
        closed_at_ms: 1_500,
    });
    let found = Attempt::ended(AttemptEnd::Found(Box::new(record())));
    let found_reason = Some("found_in_agent_connect");
    check(vec![
        (
            sent.with_request(body.clone()),
            (JobState::Sent, None, None, Some(NOW), false, "chat"),
        ),
        (
            found,
            (
                JobState::Sent,
                found_reason,
                None,
                Some(5_000),
                false,
                "email",
            ),
        ),
        (
            Attempt::skipped(SkipCode::Reopened, "reopened"),
            (
                JobState::Skipped,
                Some("reopened"),
                None,
                None,
                false,
                "email",
            ),
        ),
        (
            Attempt::failed(Reason::StellaRejected, "no").with_request(body),
            (
                JobState::Failed,
                Some("stella_rejected"),
                None,
                None,
                false,
                "chat",
            ),
        ),
        // A day's wait is past the 24 hours since the first attempt.
        (
            retry(Some(86_400_000), true),
            (
                JobState::Failed,
                Some("gave_up"),
                None,
                None,
                false,
                "email",
            ),
        ),
    ]);
}

#[test]
fn ends_that_leave_the_job_pending() {
    let paced = Attempt::ended(AttemptEnd::Paced);
    let retime = Attempt::ended(AttemptEnd::Retime {
        closed_at_ms: 5_000,
        send_at_ms: 9_000,
    });
    let lease = Some(NOW + 60_000);
    let again = Some("temporary_failure");
    check(vec![
        (paced, (JobState::Sending, None, lease, None, true, "email")),
        (
            retime,
            (
                JobState::Scheduled,
                Some("retimed"),
                Some(9_000),
                None,
                true,
                "email",
            ),
        ),
        // Second attempt: 30 s doubled, at half jitter; or the server's wait when longer.
        (
            retry(None, true),
            (
                JobState::Retrying,
                again,
                Some(NOW + 45_000),
                None,
                true,
                "email",
            ),
        ),
        (
            retry(Some(120_000), false),
            (
                JobState::Retrying,
                again,
                Some(NOW + 120_000),
                None,
                false,
                "email",
            ),
        ),
    ]);
}

/// The leased job once an attempt ended so.
fn settled(end: AttemptEnd) -> Job {
    settle(
        leased(),
        Attempt::ended(end),
        NOW,
        &RetryPolicy::default(),
        0.5,
    )
}

#[test]
fn a_retime_counts_attempts_afresh_and_says_when() {
    let end = AttemptEnd::Retime {
        closed_at_ms: 5_000,
        send_at_ms: 9_000,
    };
    let job = settled(end);
    assert_eq!(
        (
            job.attempts,
            job.first_attempt_ms,
            job.closed_at_ms,
            job.send_at_ms
        ),
        (0, None, 5_000, 9_000)
    );
    assert_eq!(
        job.message.as_deref(),
        Some("Kustomer says this conversation was closed at 1970-01-01T00:00:05.000Z: the survey goes out at 1970-01-01T00:00:09.000Z.")
    );
}

#[test]
fn giving_up_names_the_attempts_and_the_last_failure() {
    let end = AttemptEnd::Retry {
        wait_ms: Some(86_400_000),
        message: "503".into(),
        unsure: false,
    };
    let job = settled(end);
    assert_eq!(
        job.message.as_deref(),
        Some("Gave up after 2 attempts over 24 hours. Last: 503")
    );
}

#[test]
fn a_forgotten_customers_survey_keeps_nothing_of_them() {
    let mut job = leased();
    job.request = Some(json!({"customer": {"email": "ann@example.com"}, "custom_properties": {}}));
    let attempt = Attempt::skipped(
        Reason::Forgotten,
        "The customer was forgotten: this survey is not sent.",
    );
    let job = settle(job, attempt, NOW, &RetryPolicy::default(), 0.5);
    assert_eq!(
        (job.state, job.reason.as_deref()),
        (JobState::Skipped, Some("forgotten"))
    );
    assert_eq!(job.request, Some(json!({"customer": {}})));
    assert_eq!(
        job.personal_data_removed,
        Some(crate::edge::job::Removal::Forgotten)
    );
}

#[test]
fn backoff_doubles_with_jitter_honours_hints_and_gives_up() {
    let p = RetryPolicy {
        base_ms: 1000,
        max_ms: 8000,
        give_up_after_ms: 60_000,
    };
    assert_eq!(p.next_attempt(1, 0, 0, None, 0.0), Some(500));
    assert_eq!(p.next_attempt(1, 0, 0, None, 0.999_999), Some(999));
    assert_eq!(p.next_attempt(3, 0, 0, None, 1.0), Some(4000));
    assert_eq!(p.next_attempt(10, 0, 0, None, 1.0), Some(8000), "capped");
    assert_eq!(
        p.next_attempt(1, 0, 0, Some(20_000), 0.0),
        Some(20_000),
        "server's wait wins"
    );
    assert_eq!(p.next_attempt(1, 0, 59_000, None, 1.0), Some(60_000));
    assert_eq!(
        p.next_attempt(1, 0, 59_500, None, 1.0),
        None,
        "past the limit"
    );
    assert_eq!(
        p.next_attempt(u32::MAX, 0, 0, None, 1.0),
        Some(8000),
        "no overflow"
    );
}
