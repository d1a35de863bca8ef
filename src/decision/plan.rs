//! The close's timing: what a close event plans ([`plan_event`]), whether the conversation
//! at send time is still that close ([`recheck`]), and whether it may be surveyed again.

use super::{Skip, SkipCode};
use crate::kustomer::{Conversation, ConversationEvent, CONVERSATION_UPDATE};
use crate::settings::Settings;
use crate::timestamp::{self, Instant};
use serde::Serialize;

/// Why a close event schedules nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreCode {
    /// Not a `kustomer.conversation.update` event.
    NotAConversationUpdate,
    /// The conversation is not closed.
    NotClosed,
    /// The event changed something other than the status of an already closed conversation.
    StatusUnchanged,
    /// The close time is later than the event's receipt (beyond [`MAX_CLOCK_SKEW_SECONDS`]):
    /// no real close is, and a forged one would push the survey out of reach. Refused.
    CloseInFuture,
}

impl IgnoreCode {
    /// Whether the event is refused as invalid (an HTTP 400), not merely nothing to do.
    pub fn is_refusal(self) -> bool {
        matches!(self, Self::CloseInFuture)
    }
}

/// How far a close time may lie after the event's receipt: clocks differ by a little, a close
/// never happens after the event that reports it.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 120;

/// What to do about an update event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Plan {
    /// Come back at `send_at`, check again and send.
    #[serde(rename_all = "camelCase")]
    Schedule {
        /// The conversation.
        conversation_id: String,
        /// The org, when the event names it.
        #[serde(skip_serializing_if = "Option::is_none")]
        org: Option<String>,
        /// When it was closed.
        #[serde(serialize_with = "serialize_time")]
        closed_at: Instant,
        /// When the survey falls due.
        #[serde(serialize_with = "serialize_time")]
        send_at: Instant,
    },
    /// Nothing to schedule.
    Ignore {
        /// Stable code.
        reason: IgnoreCode,
        /// Why, in plain words.
        message: String,
    },
}

fn serialize_time<S: serde::Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&timestamp::format(*t))
}

/// Plans a survey from an update event alone: a change of status to `done` schedules one at
/// the close time plus the delay. The close time is the status change time, else the last
/// update, else the event's time, else `received_at`.
pub fn plan_event(settings: &Settings, event: &ConversationEvent, received_at: Instant) -> Plan {
    let ignore = |reason, message: &str| Plan::Ignore {
        reason,
        message: message.to_owned(),
    };
    if event.name != CONVERSATION_UPDATE {
        return ignore(
            IgnoreCode::NotAConversationUpdate,
            "Only kustomer.conversation.update events schedule surveys.",
        );
    }
    let conversation = &event.conversation;
    let change = event.status_change.as_ref();
    if !conversation.is_done() || change.is_some_and(|c| c.after.as_deref() != Some("done")) {
        return ignore(IgnoreCode::NotClosed, "The conversation is not closed.");
    }
    if change.is_none_or(|c| c.before.as_deref() == Some("done")) {
        return ignore(
            IgnoreCode::StatusUnchanged,
            "The conversation was already closed; this update changed something else.",
        );
    }
    let closed_at = [
        &conversation.status_at,
        &conversation.updated_at,
        &event.created_at,
    ]
    .into_iter()
    .flatten()
    .find_map(|t| timestamp::parse(t))
    .unwrap_or(received_at);
    if closed_at > timestamp::add_seconds(received_at, MAX_CLOCK_SKEW_SECONDS) {
        return ignore(
            IgnoreCode::CloseInFuture,
            "The close time is later than now: a close is reported after it happens.",
        );
    }
    Plan::Schedule {
        conversation_id: conversation.id.clone(),
        org: event.org.clone().filter(|o| !o.is_empty()),
        closed_at,
        send_at: timestamp::add_seconds(closed_at, settings.seconds_until_send.into()),
    }
}

/// What to do at due time with a survey planned for a close at `planned_close`, given the
/// conversation as Kustomer has it now: Kustomer's data decides, not the event that planned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// Go on to [`decide`] and send; `closed_at` is the conversation's current close.
    Send {
        /// The close the survey is about.
        closed_at: Instant,
    },
    /// The conversation's own close is another one than planned, and its survey falls due later:
    /// come back at `send_at`.
    Retime {
        /// The conversation's current close time.
        closed_at: Instant,
        /// That close plus the delay.
        send_at: Instant,
    },
    /// Nothing goes out.
    Skip(Skip),
}

/// How far apart two readings of one close time may be and still be the same close.
pub const SAME_CLOSE_MS: i128 = 1000;

/// The rules that come before the survey itself: the conversation must still be closed, its
/// current close (`modificationHistory.statusAt`) is the one that counts, and a conversation
/// surveyed at `last_surveyed` is surveyed again only as [`may_resurvey`] allows.
pub fn recheck(
    settings: &Settings,
    conversation: &Conversation,
    planned_close: Instant,
    last_surveyed: Option<Instant>,
    now: Instant,
) -> Recheck {
    if !conversation.is_done() {
        return Recheck::Skip(Skip::new(
            SkipCode::Reopened,
            "The conversation was reopened before the survey was due.",
        ));
    }
    let current = conversation
        .status_at
        .as_deref()
        .and_then(timestamp::parse)
        .unwrap_or(planned_close);
    if let Some(last) = last_surveyed {
        if let Err(skip) = may_resurvey(settings.resurvey_after_days, last, current) {
            return Recheck::Skip(skip);
        }
    }
    let apart = (current - planned_close).whole_milliseconds().abs();
    let send_at = timestamp::add_seconds(current, settings.seconds_until_send.into());
    if apart > SAME_CLOSE_MS && send_at > now {
        return Recheck::Retime {
            closed_at: current,
            send_at,
        };
    }
    Recheck::Send { closed_at: current }
}

/// Whether a conversation surveyed at `last_surveyed` may be surveyed again for a close at
/// `closed_at`: only when "Survey a conversation again after (days)" is set and that many days
/// have passed. One close, one survey is the rule; a repeat survey is the admin's choice.
pub fn may_resurvey(
    resurvey_after_days: u32,
    last_surveyed: Instant,
    closed_at: Instant,
) -> Result<(), Skip> {
    let days = resurvey_after_days;
    let when = timestamp::format(last_surveyed);
    if days == 0 {
        return Err(Skip::new(
            SkipCode::AlreadySurveyed,
            format!("Closed again, but this conversation was already surveyed ({when}); each conversation is surveyed once."),
        ));
    }
    let allowed_from = timestamp::add_seconds(last_surveyed, i64::from(days) * 86_400);
    if closed_at < allowed_from {
        return Err(Skip::new(
            SkipCode::AlreadySurveyed,
            format!(
                "Closed again, but this conversation was surveyed {when}; it is surveyed again only from {} ({days} days later).",
                timestamp::format(allowed_from)
            ),
        ));
    }
    Ok(())
}
