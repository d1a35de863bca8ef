//! What became of a survey request: one record of Agent Connect's Data Return API
//! (`GET /v2/data`, schema `ResponseBodyDataReturn_FeedbacksV2`) read into a
//! [`SurveyOutcome`], and the conversation attributes the edge writes it into.
//!
//! Agent Connect publishes no webhook for answers, so the edge polls that API; this module is
//! the pure part: reading a record, saying whether anything may still change
//! ([`SurveyOutcome::is_final`]), and the `custom` object of the conversation's
//! `PATCH /v1/conversations/{id}` ([`conversation_custom`]).
//!
//! Reading is strict only where the edge relies on a field: the record must be an object with
//! a string `ext_interaction_id` that can be a Kustomer id (the conversation to write to) and a
//! non-blank `uuid` (what the edge de-duplicates on). Everything else is lenient, because one
//! odd field must not cost a customer's rating: `null` and unknown fields mean nothing, a
//! delivery status that is not text reads as [`DeliveryStatus::Unknown`], a rating that is not
//! a whole number from 1 to 5 is no rating, and a time that is not RFC 3339 is left out.

use crate::error::{codes, InputError, InputErrorCode};
use crate::json::At;
use crate::kustomer::{self, app_attribute_key, APP_IDENTIFIER};
use crate::timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

codes! {
    /// What Agent Connect did with the request (`request_delivery_status`), as a stable code.
    pub enum DeliveryStatus {
        /// `Sent`: the survey went out.
        Sent = "sent",
        /// `Not sent: suppression period`: the customer was surveyed recently.
        Suppressed = "suppressed",
        /// `Not sent: do not send flag`: the request carried `do_not_send`.
        DoNotSend = "do_not_send",
        /// `Not sent: consumer unsubscribed`.
        Unsubscribed = "unsubscribed",
        /// `Not sent: rejected`.
        Rejected = "rejected",
        /// `Soft bounce`: Agent Connect will try to deliver it again.
        SoftBounce = "soft_bounce",
        /// `Hard bounce`: the address does not take mail.
        HardBounce = "hard_bounce",
        /// Any other text (kept in [`SurveyOutcome::delivery_status_text`]), or none.
        Unknown = "unknown",
    }
}

/// The vendor's texts, as its documentation spells them.
const VENDOR_TEXTS: [(DeliveryStatus, &str); 7] = [
    (DeliveryStatus::Sent, "Sent"),
    (DeliveryStatus::Suppressed, "Not sent: suppression period"),
    (DeliveryStatus::DoNotSend, "Not sent: do not send flag"),
    (
        DeliveryStatus::Unsubscribed,
        "Not sent: consumer unsubscribed",
    ),
    (DeliveryStatus::Rejected, "Not sent: rejected"),
    (DeliveryStatus::SoftBounce, "Soft bounce"),
    (DeliveryStatus::HardBounce, "Hard bounce"),
];

impl DeliveryStatus {
    /// Reads the vendor's text, ignoring case and spacing (`" not SENT:  rejected "` is
    /// [`Rejected`](Self::Rejected)): the documentation shows one spelling, the API may not.
    pub fn from_vendor_text(text: &str) -> Self {
        let same = |known: &str| {
            let mut a = text.split_whitespace();
            let mut b = known.split_whitespace();
            loop {
                match (a.next(), b.next()) {
                    (None, None) => return true,
                    (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
                    _ => return false,
                }
            }
        };
        VENDOR_TEXTS
            .iter()
            .find(|(_, known)| same(known))
            .map_or(Self::Unknown, |(status, _)| *status)
    }

    /// Whether Agent Connect declined to send it (the `Not sent: …` statuses).
    pub fn is_not_sent(self) -> bool {
        matches!(
            self,
            Self::Suppressed | Self::DoNotSend | Self::Unsubscribed | Self::Rejected
        )
    }

    /// Whether delivery is settled: nothing later is expected from Agent Connect about it.
    /// A sent survey may still be answered and a soft bounce is retried; an unknown status is
    /// not trusted to be settled (the edge's polling window bounds how long it is asked about).
    pub fn is_final(self) -> bool {
        self.is_not_sent() || self == Self::HardBounce
    }

    /// The status in words for agents and admins, to follow "Not sent: " or stand alone.
    pub fn words(self) -> &'static str {
        match self {
            Self::Sent => "the survey was sent",
            Self::Suppressed => "the customer is in Agent Connect's suppression period",
            Self::DoNotSend => "the conversation was marked do not send",
            Self::Unsubscribed => "the customer unsubscribed from Agent Connect's surveys",
            Self::Rejected => "Agent Connect rejected the request",
            Self::SoftBounce => {
                "the customer's mail server refused it for now; Agent Connect tries again"
            }
            Self::HardBounce => "the customer's address does not take mail",
            Self::Unknown => "Agent Connect reported a status this app does not know",
        }
    }
}

/// Reads a stable code back (the edge keeps outcomes in its storage); a code this build does
/// not know is [`DeliveryStatus::Unknown`] rather than a lost record.
impl<'de> Deserialize<'de> for DeliveryStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Ok(Self::from_code(&code).unwrap_or(Self::Unknown))
    }
}

/// What became of one survey request: the shape `readSurveyOutcome` answers with (and reads
/// back from, for the edge's storage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyOutcome {
    /// The Kustomer conversation (`ext_interaction_id`, which the app sets to its id).
    pub conversation_id: String,
    /// Agent Connect's id for the interaction; the edge de-duplicates on it.
    pub uuid: String,
    /// What Agent Connect did with the request.
    pub delivery_status: DeliveryStatus,
    /// The vendor's own text, kept when the status is [`DeliveryStatus::Unknown`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_status_text: Option<String>,
    /// The agent's star rating, 1 to 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// The customer's comment on the rating, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the survey was sent (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// When the answer came in (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<String>,
    /// A Service Recovery survey (a follow-up), not the conversation's own.
    #[serde(default)]
    pub is_recovery: bool,
}

impl SurveyOutcome {
    /// Whether the customer answered (a rating, or an answer time).
    pub fn is_answered(&self) -> bool {
        self.rating.is_some() || self.responded_at.is_some()
    }

    /// Whether no later change is expected: answered, or delivery settled. The edge keeps
    /// polling for outcomes that are not final.
    pub fn is_final(&self) -> bool {
        self.is_answered() || self.delivery_status.is_final()
    }
}

/// A Data Return record as the edge uses it: the outcome, and what it matches and pages on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What became of the survey.
    pub outcome: SurveyOutcome,
    /// The record's place in Agent Connect's sequence (`after=` pages past it).
    pub sequence_id: Option<i64>,
    /// When Agent Connect recorded the request (`request_created_at`, RFC 3339, UTC).
    pub created_at: Option<String>,
    /// The Kustomer org the app sent it for (`custom_properties.kustomer_org`).
    pub org: Option<String>,
    /// The customer the survey went to (`customer.email`), to match the record with the
    /// request the edge sent.
    pub customer_email: Option<String>,
    /// The agent it is about (`employee.email`), likewise.
    pub agent_email: Option<String>,
}

/// The question whose answer is the agent's star rating.
const STAR_RATING: &str = "agent_star_rating";

/// Reads one record of `GET /v2/data`. Errors are `invalid_shape` (not an object; a missing or
/// non-text `ext_interaction_id` or `uuid`; a blank `uuid`) or `invalid_id` (an
/// `ext_interaction_id` no Kustomer conversation could have), each with its path.
pub fn read_record(value: &Value) -> Result<Record, InputError> {
    let at = At::root(value);
    at.object()?;
    let conversation_id = at.get("ext_interaction_id").string()?;
    kustomer::check_id(&conversation_id, "ext_interaction_id")?;
    let uuid = at.get("uuid").string()?;
    if uuid.trim().is_empty() {
        return Err(InputError::new(
            InputErrorCode::InvalidShape,
            "uuid",
            "uuid is empty: Agent Connect gives every interaction one.",
        ));
    }
    let text = |name: &str| at.get(name).value().and_then(Value::as_str);
    let status_text = text("request_delivery_status");
    let delivery_status = status_text.map_or(DeliveryStatus::Unknown, |t| {
        DeliveryStatus::from_vendor_text(t)
    });
    let answer = at.get("answers").get(STAR_RATING);
    let outcome = SurveyOutcome {
        conversation_id,
        uuid,
        delivery_status,
        delivery_status_text: status_text
            .filter(|t| delivery_status == DeliveryStatus::Unknown && !t.trim().is_empty())
            .map(str::to_owned),
        rating: rating(&answer),
        comment: answer
            .get("comment")
            .value()
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
            .map(str::to_owned),
        sent_at: text("request_sent_at").and_then(normalize_time),
        responded_at: text("response_received_at").and_then(normalize_time),
        is_recovery: at.get("is_recovery").value() == Some(&Value::Bool(true)),
    };
    Ok(Record {
        outcome,
        sequence_id: at.get("sequence_id").value().and_then(sequence_id),
        created_at: text("request_created_at").and_then(normalize_time),
        org: at
            .get("custom_properties")
            .get("kustomer_org")
            .value()
            .and_then(Value::as_str)
            .filter(|o| !o.trim().is_empty())
            .map(str::to_owned),
        customer_email: email(&at.get("customer")),
        agent_email: email(&at.get("employee")),
    })
}

/// A person's `email` in a record, if it is non-blank text.
fn email(person: &At<'_>) -> Option<String> {
    (person.get("email").value())
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty())
        .map(str::to_owned)
}

/// The first selected option's `integer_value` from 1 to 5. Option ids differ per survey, so
/// every selected option is looked at; an unanswered question has none.
fn rating(answer: &At<'_>) -> Option<u8> {
    let options = answer.get("selected_options").value()?.as_object()?;
    options.values().find_map(|option| {
        let n = option.get("integer_value")?.as_u64()?;
        u8::try_from(n).ok().filter(|n| (1..=5).contains(n))
    })
}

/// A sequence id as a number, or as text holding one (the vendor's own `after` parameter is
/// declared as text in some of its endpoints).
fn sequence_id(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// An RFC 3339 time in the app's one form (UTC, milliseconds); `None` when unreadable.
fn normalize_time(text: &str) -> Option<String> {
    timestamp::parse(text).map(timestamp::format)
}

/// The star rating, 1 to 5 (`Num`).
pub const RATING_ATTRIBUTE: &str = "surveyRatingNum";
/// The customer's comment on the rating (`Txt`).
pub const COMMENT_ATTRIBUTE: &str = "surveyCommentTxt";
/// The delivery status's stable code (`Str`).
pub const DELIVERY_STATUS_ATTRIBUTE: &str = "surveyDeliveryStatusStr";
/// When the survey was sent (`At`).
pub const SENT_AT_ATTRIBUTE: &str = "surveySentAt";
/// When the answer came in (`At`).
pub const RESPONDED_AT_ATTRIBUTE: &str = "surveyRespondedAt";

/// The conversation attributes the app declares for outcomes, with their names for admins, in
/// the order admins see them.
pub const ATTRIBUTES: [(&str, &str); 5] = [
    (RATING_ATTRIBUTE, "Survey rating (1–5)"),
    (COMMENT_ATTRIBUTE, "Survey comment"),
    (DELIVERY_STATUS_ATTRIBUTE, "Survey delivery status"),
    (SENT_AT_ATTRIBUTE, "Survey sent at"),
    (RESPONDED_AT_ATTRIBUTE, "Survey answered at"),
];

/// The longest comment written to the conversation, in characters: Kustomer documents 1,024
/// for `Str` attributes, and its limit for `Txt` is uncertain, so the lower one is kept.
pub const MAX_COMMENT_CHARS: usize = 1024;

/// The key an outcome attribute is stored under in a conversation's `custom`.
pub fn attribute_key(name: &str) -> String {
    app_attribute_key(APP_IDENTIFIER, name)
}

/// The `custom` object of `PATCH /v1/conversations/{id}` for an outcome: the rating, the
/// comment (cut to [`MAX_COMMENT_CHARS`]), the delivery status's code and the times. Every
/// attribute is written, `null` when the outcome has no value for it (Kustomer clears it).
pub fn conversation_custom(outcome: &SurveyOutcome) -> Map<String, Value> {
    let comment =
        outcome
            .comment
            .as_deref()
            .map(|c| match c.char_indices().nth(MAX_COMMENT_CHARS) {
                Some((end, _)) => &c[..end],
                None => c,
            });
    let fields = [
        (RATING_ATTRIBUTE, outcome.rating.map(Value::from)),
        (COMMENT_ATTRIBUTE, comment.map(Value::from)),
        (
            DELIVERY_STATUS_ATTRIBUTE,
            Some(outcome.delivery_status.as_str().into()),
        ),
        (SENT_AT_ATTRIBUTE, outcome.sent_at.clone().map(Value::from)),
        (
            RESPONDED_AT_ATTRIBUTE,
            outcome.responded_at.clone().map(Value::from),
        ),
    ];
    // A field without a value is written as null, which clears it: a later survey of the same
    // conversation must not keep the earlier one's rating or comment.
    fields
        .into_iter()
        .map(|(name, value)| (attribute_key(name), value.unwrap_or(Value::Null)))
        .collect()
}
