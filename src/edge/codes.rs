//! The edge's stable codes, one enum per family, each code's text written once: the
//! `error.code` of its answers (with the HTTP status that goes with it), the `reason` of a
//! delivery log entry, and the verdicts of "Check connection". Pages, logs and tests match on
//! them; the words around them are for people.

use super::interpret::{Failure, FetchError};
use crate::decision::SkipCode;
use crate::error::{codes, codes_deserialize};
use serde::{Deserialize, Serialize};

codes! {
    /// Why the edge refuses a call or cannot complete it: `{error: {code, message}}`.
    pub enum ErrorCode {
        /// The body is over the limit (413).
        TooLarge = "too_large",
        /// No such endpoint (404).
        NotFound = "not_found",
        /// The endpoint takes another method (405).
        MethodNotAllowed = "method_not_allowed",
        /// A field of the call is not valid (400).
        InvalidSettings = "invalid_settings",
        /// An id is empty, too long or has control characters (400).
        InvalidId = "invalid_id",
        /// The close event names no org (400).
        MissingOrg = "missing_org",
        /// The Kustomer key belongs to another org than the event (403).
        OrgMismatch = "org_mismatch",
        /// No Kustomer key in the call (401).
        MissingKey = "missing_key",
        /// Kustomer did not accept the key (401).
        KustomerKeyRejected = "kustomer_key_rejected",
        /// Kustomer could not be reached, or its budget is spent (503).
        KustomerUnavailable = "kustomer_unavailable",
        /// Kustomer refused the call, or answered what cannot be read (502).
        KustomerError = "kustomer_error",
        /// Kustomer has no such conversation (404).
        ConversationNotFound = "conversation_not_found",
        /// The call carries no app secret (401).
        MissingAppSecret = "missing_app_secret",
        /// Kustomer's settings do not vouch for the call's app secret (401).
        AppSecretRejected = "app_secret_rejected",
        /// Too many key checks (429).
        RateLimited = "rate_limited",
        /// The rate limiter could not be reached (503).
        RateLimiterUnavailable = "rate_limiter_unavailable",
        /// The org's scheduler could not be reached (503).
        SchedulerUnavailable = "scheduler_unavailable",
        /// The org's storage failed (500).
        StorageError = "storage_error",
        /// Only failed or skipped surveys are sent again (409).
        NotResendable = "not_resendable",
        /// A command from the gateway could not be read (400).
        InvalidCommand = "invalid_command",
        /// A query parameter of the delivery log is unknown, repeated or not valid (400).
        InvalidQuery = "invalid_query",
        /// The delivery log's `cursor` is not one it gave (400).
        InvalidCursor = "invalid_cursor",
        /// A bulk resend names more conversations than one call may (400).
        TooManyIds = "too_many_ids",
        /// The org holds as many closes as it may while its app is not linked (429).
        HeldClosesFull = "held_closes_full",
        /// The request needs more outbound calls than one invocation may make (503).
        SubrequestBudget = "subrequest_budget",
    }
}

codes_deserialize!(ErrorCode);

impl ErrorCode {
    /// The HTTP status of an answer with this code.
    pub const fn status(self) -> u16 {
        match self {
            Self::TooLarge => 413,
            Self::NotFound | Self::ConversationNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::InvalidSettings
            | Self::InvalidId
            | Self::MissingOrg
            | Self::InvalidCommand
            | Self::InvalidQuery
            | Self::InvalidCursor
            | Self::TooManyIds => 400,
            Self::OrgMismatch => 403,
            Self::MissingKey
            | Self::KustomerKeyRejected
            | Self::MissingAppSecret
            | Self::AppSecretRejected => 401,
            Self::KustomerUnavailable
            | Self::RateLimiterUnavailable
            | Self::SchedulerUnavailable
            | Self::SubrequestBudget => 503,
            Self::KustomerError => 502,
            Self::StorageError => 500,
            Self::NotResendable => 409,
            Self::RateLimited | Self::HeldClosesFull => 429,
        }
    }
}

/// A Kustomer call that failed, as the gateway answers it: the key refused, Kustomer out of
/// reach or its budget spent, or another refusal.
impl From<&Failure> for ErrorCode {
    fn from(failure: &Failure) -> Self {
        match failure {
            Failure::Retry { .. } | Failure::Paced => Self::KustomerUnavailable,
            Failure::Fatal {
                code: FetchError::Rejected,
                ..
            } => Self::KustomerKeyRejected,
            Failure::Fatal { .. } => Self::KustomerError,
        }
    }
}

/// `{error: {code, message}}`, as one part of the edge reads another's answer back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer<C> {
    /// The refusal.
    pub error: ErrorBody<C>,
}

/// A refusal's code and words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<C> {
    /// The stable code.
    pub code: C,
    /// What happened.
    pub message: String,
}

codes! {
    /// Why a close changed nothing (200, `{status: "ignored", reason}`), besides the core's
    /// reasons.
    pub enum Ignored {
        /// The same close again: Kustomer delivers at least once.
        Duplicate = "duplicate",
        /// An older close after a newer one.
        StaleEvent = "stale_event",
    }
}

codes! {
    /// Why a survey is where it is: the delivery log's `reason`, besides the core's skip codes.
    pub enum Reason {
        /// Kustomer's own close time moved the survey later.
        Retimed = "retimed",
        /// Sent again on request.
        Resend = "resend",
        /// The last attempt failed for now; another is due.
        TemporaryFailure = "temporary_failure",
        /// Retried for 24 hours without success.
        GaveUp = "gave_up",
        /// The org's stored settings are not valid.
        InvalidSettings = "invalid_settings",
        /// Kustomer has no such conversation.
        ConversationNotFound = "conversation_not_found",
        /// Kustomer refused the app's key or the call.
        KustomerRejected = "kustomer_rejected",
        /// Kustomer's answer cannot be read.
        KustomerInvalidResponse = "kustomer_invalid_response",
        /// The Kustomer API URL cannot take the path.
        KustomerInvalidUrl = "kustomer_invalid_url",
        /// The request cannot be made at all (an invalid URL or header).
        RequestRefused = "request_refused",
        /// Stella refused the survey.
        StellaRejected = "stella_rejected",
        /// An attempt whose answer was lost had reached Agent Connect (Data Return has it).
        FoundInAgentConnect = "found_in_agent_connect",
        /// The customer was forgotten (on request, or deleted in Kustomer): never sent.
        Forgotten = "forgotten",
    }
}

impl Reason {
    /// The reason in a few words for an admin (the delivery log's `reasons`).
    pub const fn words(self) -> &'static str {
        match self {
            Self::Retimed => "Closed later than planned: send time moved",
            Self::Resend => "Sent again on request",
            Self::TemporaryFailure => "Temporary failure: will try again",
            Self::GaveUp => "Failed for 24 hours: gave up",
            Self::InvalidSettings => "The app's settings are not valid",
            Self::ConversationNotFound => "Conversation not found in Kustomer",
            Self::KustomerRejected => "Kustomer refused the app's key or call",
            Self::KustomerInvalidResponse => "Kustomer's answer could not be read",
            Self::KustomerInvalidUrl => "The Kustomer API URL is not valid",
            Self::RequestRefused => "The request could not be made (URL or header)",
            Self::StellaRejected => "Agent Connect refused the survey",
            Self::FoundInAgentConnect => "Sent: found in Agent Connect after a lost answer",
            Self::Forgotten => "Customer forgotten: not sent",
        }
    }
}

/// A Kustomer call refused for good, as the delivery log's reason.
impl From<FetchError> for Reason {
    fn from(code: FetchError) -> Self {
        match code {
            FetchError::NotFound => Self::ConversationNotFound,
            FetchError::Rejected => Self::KustomerRejected,
            FetchError::InvalidResponse => Self::KustomerInvalidResponse,
            FetchError::InvalidUrl => Self::KustomerInvalidUrl,
            FetchError::RequestRefused => Self::RequestRefused,
        }
    }
}

impl Reason {
    /// An Agent Connect call refused for good, as the delivery log's reason: a request that
    /// could not be made, or Stella's refusal.
    pub const fn of_stella(code: FetchError) -> Self {
        match code {
            FetchError::RequestRefused => Self::RequestRefused,
            _ => Self::StellaRejected,
        }
    }
}

/// A core skip code in a few words for an admin (the delivery log's `reasons`): written here,
/// beside the edge's own, so that one list serves the log; a new code does not compile without
/// its words.
pub const fn skip_words(code: SkipCode) -> &'static str {
    match code {
        SkipCode::NotClosed => "Conversation not closed",
        SkipCode::Reopened => "Reopened before the send time",
        SkipCode::NoAssignedAgent => "No agent assigned",
        SkipCode::NoAgentEmail => "The agent has no email",
        SkipCode::NoCustomerEmail => "The customer has no email",
        SkipCode::NoChannel => "The conversation has no channel",
        SkipCode::ChannelNotSurveyed => "Channel not surveyed",
        SkipCode::InvalidSettings => "The app's settings are not valid",
        SkipCode::AlreadySurveyed => "Surveyed before: not again yet",
        SkipCode::BrandNotMapped => "Brand not in the brand map",
    }
}

codes! {
    /// One conversation's result in a bulk resend.
    pub enum ResendStatus {
        /// Scheduled again.
        Scheduled = "scheduled",
        /// The log holds no such conversation.
        NotFound = "not_found",
        /// Not failed or skipped, or otherwise refused.
        NotResendable = "not_resendable",
    }
}

codes_deserialize!(ResendStatus);

/// A single resend's refusal, as a bulk resend's result.
impl From<ErrorCode> for ResendStatus {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NotFound => Self::NotFound,
            _ => Self::NotResendable,
        }
    }
}

/// The bulk resend's answer (`POST /v1/deliveries/resend`): `{results, scheduled, refused}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendManyReply {
    /// One per conversation, in the order asked.
    pub results: Vec<ResendResult>,
    /// How many were scheduled again.
    pub scheduled: usize,
    /// How many were refused.
    pub refused: usize,
}

/// One conversation's result in a bulk resend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResendResult {
    /// The conversation.
    pub conversation_id: String,
    /// What became of it.
    pub status: ResendStatus,
    /// In words.
    pub message: String,
}

codes! {
    /// One service's verdict on its key in "Check connection".
    pub enum KeyCheckCode {
        /// Accepted.
        Ok = "ok",
        /// Not asked: Kustomer has not accepted the Kustomer key.
        NotChecked = "not_checked",
        /// The Kustomer key cannot read tags.
        MissingPermission = "missing_permission",
        /// Kustomer did not accept the key.
        KustomerKeyRejected = "kustomer_key_rejected",
        /// Kustomer could not be reached.
        KustomerUnavailable = "kustomer_unavailable",
        /// Kustomer answered an error.
        KustomerError = "kustomer_error",
        /// Agent Connect did not accept the key.
        StellaKeyRejected = "stella_key_rejected",
        /// Agent Connect answered an error.
        StellaError = "stella_error",
        /// Agent Connect could not be reached.
        StellaUnavailable = "stella_unavailable",
    }
}

/// "Check connection"'s verdict on a Kustomer key whose call failed.
impl From<&Failure> for KeyCheckCode {
    fn from(failure: &Failure) -> Self {
        match ErrorCode::from(failure) {
            ErrorCode::KustomerKeyRejected => Self::KustomerKeyRejected,
            ErrorCode::KustomerUnavailable => Self::KustomerUnavailable,
            _ => Self::KustomerError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bulk_resend_answer_reads_back_as_it_was_written() {
        let answer = serde_json::json!({"results": [
            {"conversationId": "a", "status": "scheduled", "message": "m"},
            {"conversationId": "b", "status": "not_found", "message": "n"},
        ], "scheduled": 1, "refused": 1});
        let read: ResendManyReply = serde_json::from_value(answer.clone()).unwrap();
        assert_eq!(read.results[1].status, ResendStatus::NotFound);
        assert_eq!(serde_json::to_value(&read).unwrap(), answer);
        let refused = |code| ResendStatus::from(code);
        assert_eq!(refused(ErrorCode::NotFound), ResendStatus::NotFound);
        assert_eq!(
            refused(ErrorCode::NotResendable),
            ResendStatus::NotResendable
        );
    }

    #[test]
    fn failures_map_to_each_family_once() {
        let fatal = |code| Failure::Fatal {
            code,
            message: "m".into(),
        };
        let retry = Failure::Retry {
            wait_ms: None,
            message: "m".into(),
        };
        let rows = [
            (
                retry,
                ErrorCode::KustomerUnavailable,
                KeyCheckCode::KustomerUnavailable,
            ),
            (
                Failure::Paced,
                ErrorCode::KustomerUnavailable,
                KeyCheckCode::KustomerUnavailable,
            ),
            (
                fatal(FetchError::Rejected),
                ErrorCode::KustomerKeyRejected,
                KeyCheckCode::KustomerKeyRejected,
            ),
            (
                fatal(FetchError::NotFound),
                ErrorCode::KustomerError,
                KeyCheckCode::KustomerError,
            ),
            (
                fatal(FetchError::InvalidResponse),
                ErrorCode::KustomerError,
                KeyCheckCode::KustomerError,
            ),
        ];
        for (failure, error, check) in rows {
            assert_eq!(
                (ErrorCode::from(&failure), KeyCheckCode::from(&failure)),
                (error, check)
            );
        }
        let reasons = [
            (
                FetchError::NotFound,
                Reason::ConversationNotFound,
                Reason::StellaRejected,
            ),
            (
                FetchError::Rejected,
                Reason::KustomerRejected,
                Reason::StellaRejected,
            ),
            (
                FetchError::InvalidResponse,
                Reason::KustomerInvalidResponse,
                Reason::StellaRejected,
            ),
            (
                FetchError::InvalidUrl,
                Reason::KustomerInvalidUrl,
                Reason::StellaRejected,
            ),
            (
                FetchError::RequestRefused,
                Reason::RequestRefused,
                Reason::RequestRefused,
            ),
        ];
        for (code, kustomer, stella) in reasons {
            assert_eq!(
                (Reason::from(code), Reason::of_stella(code)),
                (kustomer, stella)
            );
        }
    }

    #[test]
    fn codes_are_snake_case_and_unique_per_family() {
        fn check(codes: &[&'static str]) {
            let mut seen = std::collections::BTreeSet::new();
            for code in codes {
                assert!(
                    code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{code}"
                );
                assert!(seen.insert(code), "{code} twice");
            }
        }
        check(
            &ErrorCode::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
        check(&Ignored::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>());
        check(&Reason::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>());
        check(
            &KeyCheckCode::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
        check(
            &crate::edge::trust::TrustCode::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        );
        assert_eq!(ErrorCode::RateLimited.status(), 429);
        assert_eq!(serde_json::to_value(Reason::GaveUp).unwrap(), "gave_up");
    }
}
