//! The agent's card: what will happen to a conversation's survey, in an agent's words.
//!
//! It runs the very [`decide`](crate::decide) the edge runs at send time, so the card never
//! promises what the edge would not do. An open conversation is judged as if it were closed
//! now ([`decide_as_if_closed`](crate::decision::decide_as_if_closed)): the card then says what
//! closing it would bring.
//!
//! Once the conversation is closed, what happened outranks the prediction: Agent Connect's
//! outcome first, then the delivery log's entry ([`Logged`]). The prediction heads the card
//! only before the close, or while the log says the survey is still to go ([`happened`]).

use crate::decision::{self, AsIfClosed, Decision, Skip, SurveyInput};
use crate::display;
use crate::error::FieldError;
use crate::kustomer::{app_attribute_key, APP_IDENTIFIER, DO_NOT_SEND_ATTRIBUTE};
use crate::settings::Settings;
use crate::survey_outcome::{self as outcome, DeliveryStatus};
use crate::timestamp::{self, Instant};
use serde::Serialize;
use serde_json::{Map, Value};

/// Where the conversation's survey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outlook {
    /// Closed: the survey goes out at `send_at`.
    Scheduled,
    /// Closed, and `send_at` has passed: it has gone out, or is going out now.
    Due,
    /// Not closed yet: closing it would schedule a survey.
    WhenClosed,
    /// "Do not send" is on: Agent Connect records the conversation but sends no survey.
    DoNotSend,
    /// No survey, for `reason`.
    NoSurvey,
    /// The app's settings are missing or invalid.
    NotConfigured,
    /// Closed, and the survey went out (the log or Agent Connect says so).
    Sent,
    /// Closed, and no survey went out: the log skipped it, or Agent Connect did not send it.
    NotSent,
    /// Closed, and the survey could not be sent (the log's `failed`).
    Failed,
}

/// The conversation's entry in the delivery log, as the card reads it (the `list-deliveries`
/// command's entry): only what the headline needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logged {
    /// `scheduled`, `retrying`, `sent`, `skipped`, `failed`, or a state this build does not know.
    pub state: String,
    /// Why, in the edge's words.
    pub message: Option<String>,
}

impl Logged {
    /// Reads an entry leniently: `None` for anything without a `state`.
    pub fn read(entry: &Value) -> Option<Self> {
        let state = entry.get("state")?.as_str()?.to_owned();
        let message = (entry.get("message").and_then(Value::as_str))
            .filter(|m| !m.trim().is_empty())
            .map(str::to_owned);
        Some(Self { state, message })
    }
}

/// The card's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardView {
    /// Where the survey stands.
    pub outlook: Outlook,
    /// One line for the card's title.
    pub headline: String,
    /// A sentence or two under it.
    pub detail: String,
    /// Why there is no survey, with [`Outlook::NoSurvey`] and [`Outlook::NotConfigured`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Skip>,
    /// The survey's recipient and subject, when one would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyFacts>,
    /// When the survey falls due (closed conversations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
    /// The configured delay, in words ("1 day").
    pub delay: String,
    /// The rule for closing it again after its survey, in words (empty when no survey goes out).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resurvey: String,
    /// Whether the agent's "do not send" switch is on.
    pub do_not_send: bool,
    /// The `custom` attributes the switch writes: the app's, and the plain one of the manual
    /// setup when the conversation has it, so both readings agree.
    pub do_not_send_keys: Vec<String>,
    /// What Agent Connect reported for the survey, once the edge has written it onto the
    /// conversation's attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CardOutcome>,
}

/// Who gets the survey, about whom, on which channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyFacts {
    /// The customer's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// Where the survey goes.
    pub customer_email: String,
    /// The agent the feedback is about.
    pub agent_email: String,
    /// The Agent Connect channel.
    pub channel: String,
}

/// Explains the conversation's survey. `settings` are the app's settings as the card reads
/// them (keys masked is fine: the card sends nothing); `logged` is the conversation's entry in
/// the delivery log, when it has been read and has one. Text from Kustomer or Agent Connect
/// comes back without bidirectional controls ([`display::plain`]).
pub fn explain(
    settings: Result<&Settings, &[FieldError]>,
    input: SurveyInput<'_>,
    logged: Option<&Logged>,
    now: Instant,
) -> CardView {
    let closed = input.conversation.is_done();
    let mut view = predict(settings, input, now);
    if let Some((outlook, headline, detail)) = happened(closed, view.outcome.as_ref(), logged) {
        if outlook != Outlook::Sent {
            view.survey = None; // nobody gets a survey: no recipient above a refusal
        }
        (view.outlook, view.headline, view.detail) = (outlook, headline, detail);
    }
    clean(&mut view);
    view
}

/// The card's outlook, headline and detail from what happened, or `None` when the prediction
/// stands: before the close, and while the log says the survey is still to go (or has not been
/// read). Agent Connect's outcome outranks the log: it is the later word.
pub fn happened(
    closed: bool,
    outcome: Option<&CardOutcome>,
    logged: Option<&Logged>,
) -> Option<(Outlook, String, String)> {
    if !closed {
        return None;
    }
    if let Some(o) = outcome {
        return Some(match o.status {
            DeliveryStatus::Sent | DeliveryStatus::SoftBounce => {
                let headline = match (&o.rating_text, o.answered, o.status) {
                    (Some(rated), ..) => format!("Sent, {rated}"),
                    (None, true, _) => "Sent, answered without a rating".into(),
                    (None, false, DeliveryStatus::SoftBounce) => "Sent, not delivered yet".into(),
                    _ => "Sent, not answered yet".into(),
                };
                // The line under "What happened" gives the time, the rating and the comment.
                (Outlook::Sent, headline, String::new())
            }
            DeliveryStatus::HardBounce => {
                (Outlook::NotSent, "Not delivered".into(), o.lead.clone())
            }
            DeliveryStatus::Unknown => (
                Outlook::NotSent,
                "Survey status unknown".into(),
                o.lead.clone(),
            ),
            _ => (
                Outlook::NotSent,
                "Not sent by Agent Connect".into(),
                o.lead.clone(),
            ),
        });
    }
    let logged = logged?;
    let message = logged.message.clone().unwrap_or_default();
    Some(match logged.state.as_str() {
        "scheduled" | "retrying" => return None,
        "sent" => (
            Outlook::Sent,
            "Survey sent".into(),
            "Agent Connect took the request; its outcome shows here once reported.".into(),
        ),
        "skipped" => (Outlook::NotSent, "No survey was sent".into(), message),
        "failed" => (
            Outlook::Failed,
            "The survey could not be sent".into(),
            message,
        ),
        _ => (Outlook::NotSent, "No survey sent yet".into(), message),
    })
}

/// Removes bidirectional controls from every text the card shows that came from elsewhere.
fn clean(view: &mut CardView) {
    for text in [&mut view.headline, &mut view.detail] {
        *text = display::plain_owned(std::mem::take(text));
    }
    if let Some(skip) = &mut view.reason {
        skip.message = display::plain_owned(std::mem::take(&mut skip.message));
    }
    if let Some(s) = &mut view.survey {
        s.customer_name = s.customer_name.take().map(display::plain_owned);
        for text in [&mut s.customer_email, &mut s.agent_email, &mut s.channel] {
            *text = display::plain_owned(std::mem::take(text));
        }
    }
    if let Some(o) = &mut view.outcome {
        o.comment = o.comment.take().map(display::plain_owned);
        o.tail = display::plain_owned(std::mem::take(&mut o.tail));
    }
}

/// What the decision predicts, with the outcome read from the conversation.
fn predict(
    settings: Result<&Settings, &[FieldError]>,
    input: SurveyInput<'_>,
    now: Instant,
) -> CardView {
    let conversation = input.conversation;
    let mut view = blank_view(conversation);
    let settings = match settings {
        Ok(s) => s,
        Err(fields) => return not_configured(view, fields),
    };
    view.delay = describe_delay(settings.seconds_until_send);
    let AsIfClosed { closed, decision } = decision::decide_as_if_closed(settings, input);
    let body = match decision {
        Decision::Send(body) => body,
        Decision::Skip(skip) => {
            view.outlook = Outlook::NoSurvey;
            view.headline = if closed {
                "No survey for this conversation"
            } else {
                "No survey when this is closed"
            }
            .into();
            view.detail = skip.message.clone();
            view.reason = Some(skip);
            return view;
        }
    };
    let survey = SurveyFacts {
        customer_name: body.customer.name,
        customer_email: body.customer.email,
        agent_email: body.employee.email,
        channel: body.channel,
    };
    let closed_at = closed.then(|| {
        conversation
            .status_at
            .as_deref()
            .and_then(timestamp::parse)
            .unwrap_or(now)
    });
    let send_at =
        closed_at.map(|t| timestamp::add_seconds(t, i64::from(settings.seconds_until_send)));
    view.send_at = send_at.map(timestamp::format);
    (view.outlook, view.headline, view.detail) =
        outlook(&survey, view.do_not_send, send_at, now, &view.delay);
    view.resurvey = resurvey_words(settings.resurvey_after_days);
    view.survey = Some(survey);
    view
}

/// The card before the decision: its switch, and the outcome the conversation carries.
fn blank_view(conversation: &crate::kustomer::Conversation) -> CardView {
    let app_key = app_attribute_key(APP_IDENTIFIER, DO_NOT_SEND_ATTRIBUTE);
    let mut do_not_send_keys = vec![app_key];
    if conversation.custom.contains_key(DO_NOT_SEND_ATTRIBUTE) {
        do_not_send_keys.push(DO_NOT_SEND_ATTRIBUTE.to_owned());
    }
    CardView {
        outlook: Outlook::NotConfigured,
        headline: String::new(),
        detail: String::new(),
        reason: None,
        survey: None,
        send_at: None,
        delay: String::new(),
        resurvey: String::new(),
        do_not_send: conversation.do_not_send(),
        do_not_send_keys,
        outcome: read_outcome(&conversation.custom),
    }
}

/// The card when the settings are not valid: no survey can be judged.
fn not_configured(mut view: CardView, fields: &[FieldError]) -> CardView {
    view.headline = "Surveys are not set up".into();
    view.detail =
        "The Stella Connect app's settings are incomplete: ask an admin to fill them in.".into();
    view.reason = Some(Skip {
        code: decision::SkipCode::InvalidSettings,
        message: view.detail.clone(),
        fields: fields.to_vec(),
    });
    view
}

/// The outlook, headline and detail of a survey that goes out (`send_at`: closed ones only).
fn outlook(
    survey: &SurveyFacts,
    do_not_send: bool,
    send_at: Option<Instant>,
    now: Instant,
    delay: &str,
) -> (Outlook, String, String) {
    let who = survey
        .customer_name
        .clone()
        .unwrap_or_else(|| survey.customer_email.clone());
    if do_not_send {
        (
            Outlook::DoNotSend,
            "No survey: do not send is on".into(),
            format!(
                "Agent Connect still records this conversation for {}, but {who} gets no survey.",
                survey.agent_email
            ),
        )
    } else {
        match send_at {
            None => (
                Outlook::WhenClosed,
                format!("A survey will go to {who}"),
                format!(
                    "{} after this conversation is closed, to {}, about {} ({}).",
                    capitalize(delay),
                    survey.customer_email,
                    survey.agent_email,
                    survey.channel
                ),
            ),
            Some(at) if at > now => (
                Outlook::Scheduled,
                format!("A survey will go to {who}"),
                format!(
                    "To {}, about {} ({}), when it falls due.",
                    survey.customer_email, survey.agent_email, survey.channel
                ),
            ),
            Some(_) => (
                Outlook::Due,
                format!("The survey to {who} is due"),
                format!(
                    "It goes out to {} about {} ({}) unless the conversation changed.",
                    survey.customer_email, survey.agent_email, survey.channel
                ),
            ),
        }
    }
}

/// The rule for closing a conversation again after its survey, in words.
fn resurvey_words(days: u32) -> String {
    match days {
        0 => "Each conversation is surveyed once: closed again after its survey, it gets no other."
            .into(),
        1 => "Closed again after its survey, it is surveyed again only a day or more later.".into(),
        days => format!(
            "Closed again after its survey, it is surveyed again only {days} days or more later."
        ),
    }
}

/// The survey's outcome for the card's "What happened": one line, `lead`, then `at` shown as a
/// time in the agent's own zone and format (the card formats times), then `tail`; such as
/// "Survey sent" · Tue 14:02 · " · rated 4 of 5: “Quick and kind”".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardOutcome {
    /// What Agent Connect did with the request.
    pub status: DeliveryStatus,
    /// The line's start.
    pub lead: String,
    /// The time to show after `lead` (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The line's end, after the time; may be empty.
    pub tail: String,
    /// The agent's star rating, 1 to 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// The rating as stars ("★★★★☆"), decoration only: `rating_text` says it in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stars: Option<String>,
    /// The rating in words ("rated 4 of 5").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating_text: Option<String>,
    /// The customer's comment, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The customer answered (a rating, a comment or an answer time).
    #[serde(skip)]
    pub answered: bool,
}

/// Reads the outcome attributes ([`survey_outcome::ATTRIBUTES`](crate::survey_outcome::ATTRIBUTES))
/// from a conversation's `custom`; `None` when the edge has written none. Lenient: a value of
/// the wrong type counts as absent, and a status code this build does not know as unknown.
pub fn read_outcome(custom: &Map<String, Value>) -> Option<CardOutcome> {
    let get = |name: &str| custom.get(&outcome::attribute_key(name));
    let text = |name: &str| {
        get(name)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
    };
    let time = |name: &str| text(name).and_then(timestamp::parse).map(timestamp::format);
    let status = text(outcome::DELIVERY_STATUS_ATTRIBUTE)
        .map(|code| DeliveryStatus::from_code(code).unwrap_or(DeliveryStatus::Unknown));
    // Kustomer may give a number back as 4 or 4.0.
    let rating = get(outcome::RATING_ATTRIBUTE)
        .and_then(Value::as_f64)
        .filter(|r| r.fract() == 0.0 && (1.0..=5.0).contains(r))
        .map(|r| r as u8);
    let comment = text(outcome::COMMENT_ATTRIBUTE).map(str::to_owned);
    let sent_at = time(outcome::SENT_AT_ATTRIBUTE);
    let responded_at = time(outcome::RESPONDED_AT_ATTRIBUTE);
    let answered = rating.is_some() || responded_at.is_some() || comment.is_some();
    if status.is_none() && !answered {
        return None;
    }
    let status = status.unwrap_or(DeliveryStatus::Sent);
    let quoted = comment
        .as_deref()
        .map_or(String::new(), |c| format!(": “{c}”"));
    let rating_text = rating.map(|r| format!("rated {r} of 5"));
    let (lead, at, tail) = if answered {
        let tail = match &rating_text {
            Some(rated) => format!(" · {rated}{quoted}"),
            None => format!(" · answered without a rating{quoted}"),
        };
        match sent_at {
            Some(at) => ("Survey sent".to_owned(), Some(at), tail),
            None => ("Survey answered".to_owned(), responded_at, tail),
        }
    } else {
        match status {
            DeliveryStatus::Sent => ("Survey sent".into(), sent_at, " · not answered yet".into()),
            DeliveryStatus::SoftBounce => (
                "Survey sent".into(),
                sent_at,
                format!(" · not delivered yet: {}", status.words()),
            ),
            DeliveryStatus::HardBounce => (
                format!("Not delivered: {}", status.words()),
                None,
                String::new(),
            ),
            DeliveryStatus::Unknown => (
                format!("Survey status unknown: {}", status.words()),
                None,
                String::new(),
            ),
            _ => (format!("Not sent: {}", status.words()), None, String::new()),
        }
    };
    Some(CardOutcome {
        status,
        lead,
        at,
        tail,
        rating,
        stars: rating.map(|r| {
            let r = usize::from(r);
            "★".repeat(r) + &"☆".repeat(5 - r)
        }),
        rating_text,
        comment,
        answered,
    })
}

/// A delay in the largest whole unit that fits: `86400` → "1 day", `90` → "90 seconds".
pub fn describe_delay(seconds: u32) -> String {
    if seconds == 0 {
        return "immediately".into();
    }
    let (n, unit) = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ]
    .into_iter()
    .find(|(size, _)| seconds % size == 0)
    .map_or((seconds, "second"), |(size, unit)| (seconds / size, unit));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Upper-cases the first letter (ASCII only: the delays are ASCII, and Unicode case tables
/// would cost the module 10 KB).
fn capitalize(s: &str) -> String {
    let mut s = s.to_owned();
    if let Some(first) = s.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    s
}
