//! Reading the roster: every page of Agent Connect's `GET /v2/employees` for an org, within the
//! org's Agent Connect pace, and the org's Kustomer users to hold against it. Each call is one
//! request through the transport given, so the paced one stops a read that would overrun the
//! org's minute.

use super::agent_connect::{self, EMPLOYEES_PATH};
use super::interpret::{interpret, Failure, FetchError};
use super::job::StoredSettings;
use super::kustomer_api::Kustomer;
use super::seal::Sealer;
use super::Transport;
use crate::edge::codes::{ErrorAnswer, ErrorCode};
use crate::error::{codes, codes_deserialize};
use crate::json::{self, At};
use crate::roster::{self, Roster, StandingCode};
use crate::settings::{Secret, Settings};
use serde::{Deserialize, Serialize};

/// Employees asked for per page: the contract's most.
pub const PAGE_SIZE: u32 = 500;
/// Pages read at most (10,000 employees): past that the read fails rather than spend the
/// org's Agent Connect minute on one roster.
pub const MAX_PAGES: usize = 20;
/// How long a roster is kept: it is read again once a day.
pub const ROSTER_TTL_MS: i64 = 24 * 3_600_000;
/// Kustomer users asked for per page: Kustomer's most.
pub const USERS_PAGE_SIZE: u32 = 100;
/// Pages of Kustomer users read at most, for "Check connection".
pub const MAX_USER_PAGES: u32 = 5;
/// The service's name in messages.
const AGENT_CONNECT: &str = "Agent Connect";
/// The words for [`RosterFailure::CredentialsRefused`].
pub const CREDENTIALS_REFUSED: &str = "Agent Connect refused the API key or secret.";

codes! {
    /// Why the roster could not be had.
    pub enum RosterError {
        /// Agent Connect refused the API key or secret (401/403).
        SecretRejected = "stella_secret_rejected",
        /// Agent Connect did not answer, or answered 5xx or 429: try later.
        Unavailable = "stella_unavailable",
        /// The org's Agent Connect minute is spent: try after `Retry-After`.
        Paced = "stella_paced",
        /// Agent Connect's answer could not be read, or lists more than the app reads.
        InvalidResponse = "stella_invalid_response",
        /// Another refusal.
        Rejected = "stella_error",
    }
}

codes_deserialize!(RosterError);

/// Why the roster could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterFailure {
    /// Agent Connect answered 401 or 403 to the employee list: the key or the secret is wrong
    /// (the key alone is checked by "Check connection"'s probe, so it is most often the secret).
    CredentialsRefused,
    /// Any other failure of a call.
    Call(Failure),
}

impl From<Failure> for RosterFailure {
    fn from(failure: Failure) -> Self {
        Self::Call(failure)
    }
}

/// The roster's code for a failed read.
impl From<&RosterFailure> for RosterError {
    fn from(failure: &RosterFailure) -> Self {
        match failure {
            RosterFailure::CredentialsRefused => Self::SecretRejected,
            RosterFailure::Call(Failure::Paced) => Self::Paced,
            RosterFailure::Call(Failure::Retry { .. }) => Self::Unavailable,
            RosterFailure::Call(Failure::Fatal {
                code: FetchError::InvalidResponse,
                ..
            }) => Self::InvalidResponse,
            RosterFailure::Call(Failure::Fatal { .. }) => Self::Rejected,
        }
    }
}

impl RosterError {
    /// The HTTP status the edge answers with.
    pub const fn status(self) -> u16 {
        match self {
            Self::SecretRejected | Self::InvalidResponse | Self::Rejected => 502,
            Self::Unavailable => 503,
            Self::Paced => 429,
        }
    }
}

/// The roster's cache key for these credentials: a keyed fingerprint of the Stella API URL, key
/// and secret, so a caller reads only the roster of credentials it holds, and a forged key
/// (refused by Agent Connect, so never cached) cannot replace the org's. `None` without a secret.
pub fn cache_key(sealer: &Sealer, settings: &Settings) -> Option<String> {
    let secret = settings.stella_api_secret.as_ref()?;
    let text = format!(
        "roster\n{}\n{}\n{}",
        settings.stella_api_url,
        settings.stella_api_key.expose(),
        secret.expose()
    );
    Some(format!("roster:{}", sealer.fingerprint(&text)))
}

/// The statuses other than `active` (the contract's `status` filter): the list's answer does
/// not carry an employee's status, so those listed under each are asked for by it.
pub const INACTIVE_STATUSES: [&str; 5] = [
    "unapproved",
    "deactivated",
    "pending review",
    "confirmed",
    "created",
];

/// The org's roster: every page of the employee list, `PAGE_SIZE` at a time, at most
/// `MAX_PAGES`; then, unless the answers said each employee's status, the employees listed under
/// each of [`INACTIVE_STATUSES`] (a page or so each). A page the transport would not send (the
/// org's pace) stops the read: [`Failure::Paced`]. Errors carry no key, secret or token.
pub async fn fetch_roster<T: Transport>(
    transport: &T,
    settings: &Settings,
    now_ms: i64,
) -> Result<Roster, RosterFailure> {
    let mut employees = read_list(transport, settings, now_ms, None).await?;
    if employees.iter().any(|e| e.status.is_none()) {
        // By email, so that each status list is one pass (rosters run to thousands).
        let at: std::collections::HashMap<String, usize> = (employees.iter().enumerate())
            .map(|(i, e)| (e.email.clone(), i))
            .collect();
        for status in INACTIVE_STATUSES {
            let listed = read_list(transport, settings, now_ms, Some(status)).await?;
            for found in listed {
                if let Some(&i) = at.get(&found.email) {
                    employees[i].status = Some(status.to_owned());
                }
            }
        }
    }
    Ok(Roster::new(employees, now_ms))
}

/// A refusal for good, in these words.
fn fatal(code: FetchError, message: &str) -> Failure {
    Failure::Fatal {
        code,
        message: message.to_owned(),
    }
}

/// Every page of the employee list, or of those with `status`.
async fn read_list<T: Transport>(
    transport: &T,
    settings: &Settings,
    now_ms: i64,
    status: Option<&str>,
) -> Result<Vec<roster::Employee>, RosterFailure> {
    let secret = settings.stella_api_secret.as_ref().ok_or_else(|| {
        fatal(
            FetchError::RequestRefused,
            "No Stella Connect API secret is set: the roster is not read.",
        )
    })?;
    let token = agent_connect::token(secret, now_ms).unwrap_or_else(|| Secret::new(String::new()));
    let keys = [
        settings.stella_api_key.expose(),
        secret.expose(),
        token.expose(),
    ];
    let keys: Vec<&str> = keys.into_iter().filter(|k| !k.is_empty()).collect();
    let mut fixed = vec![("number_of_employees".to_owned(), PAGE_SIZE.to_string())];
    fixed.extend(status.map(|s| ("status".to_owned(), s.to_owned())));
    let mut query = fixed.clone();
    let mut asked = Vec::new();
    let mut employees = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = read_page(transport, settings, &query, &keys, now_ms).await?;
        let empty = page.employees.is_empty();
        employees.extend(page.employees);
        asked.push(query);
        let Some(mut next) = page.next else {
            return Ok(employees);
        };
        for pair in &fixed {
            if !next.iter().any(|(k, _)| *k == pair.0) {
                next.push(pair.clone());
            }
        }
        // A page that adds nothing, or names a page already read, would never end.
        if empty || asked.contains(&next) {
            let message = "Agent Connect's employee list pages back to a page already read.";
            return Err(fatal(FetchError::InvalidResponse, message).into());
        }
        query = next;
    }
    let message = format!(
        "Agent Connect lists more than {} employees: the app reads at most {MAX_PAGES} pages of {PAGE_SIZE}.",
        MAX_PAGES as u32 * PAGE_SIZE
    );
    Err(fatal(FetchError::InvalidResponse, &message).into())
}

/// One page of the employee list, `query` its parameters; `keys` are masked out of the
/// answer's words.
async fn read_page<T: Transport>(
    transport: &T,
    settings: &Settings,
    query: &[(String, String)],
    keys: &[&str],
    now_ms: i64,
) -> Result<roster::Page, RosterFailure> {
    let pairs: Vec<(&str, String)> = query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let request =
        agent_connect::get(settings, EMPLOYEES_PATH, &pairs, now_ms).ok_or_else(|| {
            fatal(
                FetchError::RequestRefused,
                "The request to Agent Connect cannot be signed.",
            )
        })?;
    let result = transport.send(request).await;
    if matches!(&result, Ok(r) if r.status == 401 || r.status == 403) {
        return Err(RosterFailure::CredentialsRefused);
    }
    let answer = interpret(result, now_ms, AGENT_CONNECT, keys)?;
    let page = json::from_json(&answer.body).and_then(|doc| roster::parse_page(&doc));
    Ok(page.map_err(|e| Failure::Fatal {
        code: FetchError::InvalidResponse,
        message: format!("Agent Connect's employee list: {e}"),
    })?)
}

/// A read failure as the roster's code and words.
pub fn failure_reply(failure: &RosterFailure) -> (RosterError, String) {
    let code = RosterError::from(failure);
    let message = match failure {
        RosterFailure::CredentialsRefused => format!("{CREDENTIALS_REFUSED} Copy the Stella Connect API key and secret again from Agent Connect's settings."),
        RosterFailure::Call(Failure::Paced) => {
            "The org's Agent Connect calls for this minute are spent: try again in a minute.".into()
        }
        RosterFailure::Call(Failure::Retry { message, .. }) => {
            format!("Agent Connect could not be reached: {message}")
        }
        RosterFailure::Call(Failure::Fatal { message, .. }) => message.clone(),
    };
    (code, message)
}

/// A Kustomer user, as "Check connection" holds them against the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Their email (the users without one are left out).
    pub email: String,
    /// Their name, for the words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The org's Kustomer users with an email: `GET {kustomerApiUrl}/v1/users`, `USERS_PAGE_SIZE` a
/// page, at most `MAX_USER_PAGES` pages (then the first ones only).
pub async fn kustomer_agents<T: Transport>(
    transport: &T,
    settings: &Settings,
    now_ms: i64,
) -> Result<Vec<Agent>, Failure> {
    let kustomer = Kustomer::of(settings);
    let mut agents = Vec::new();
    for page in 1..=MAX_USER_PAGES {
        let (page, size) = (page.to_string(), USERS_PAGE_SIZE.to_string());
        let query = [("page", page.as_str()), ("pageSize", size.as_str())];
        let request = kustomer.get(&["v1", "users"], &query)?;
        let doc = kustomer.read(transport, request, now_ms, "users").await?;
        let (found, more) = read_users(&doc).map_err(|e| Failure::Fatal {
            code: FetchError::InvalidResponse,
            message: format!("Kustomer's users: {e}"),
        })?;
        let empty = found.is_empty();
        agents.extend(found);
        if !more || empty {
            break;
        }
    }
    Ok(agents)
}

/// A page of Kustomer's users: those with an email (name from `displayName` or `name`), and
/// whether `links.next` names another page.
fn read_users(doc: &serde_json::Value) -> Result<(Vec<Agent>, bool), crate::InputError> {
    let root = At::root(doc);
    let mut agents = Vec::new();
    for user in root.get("data").items()? {
        let attrs = user.get("attributes");
        attrs.opt_object()?;
        let Some(email) = attrs.get("email").opt_string()? else {
            continue;
        };
        let email = email.trim().to_owned();
        if email.is_empty() {
            continue;
        }
        let name = match attrs.get("displayName").opt_string()? {
            Some(n) if !n.trim().is_empty() => Some(n.trim().to_owned()),
            _ => attrs
                .get("name")
                .opt_string()?
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
        };
        agents.push(Agent { email, name });
    }
    let links = root.get("links");
    links.opt_object()?;
    let more = links
        .get("next")
        .opt_string()?
        .is_some_and(|n| !n.trim().is_empty());
    Ok((agents, more))
}

/// The most agents one roster command assesses (five pages of Kustomer users).
pub const MAX_AGENTS: usize = 500;

/// The answer without an API secret: the roster is not read.
pub const NO_SECRET: &str =
    "Add the Stella Connect API secret in the app's settings to check agents' Agent Connect profiles.";

/// What the gateway asks of the org's roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterQuery {
    /// The call's settings (validated by the gateway): the Stella API URL, key and secret name
    /// the roster, and are what it is read with.
    pub settings: StoredSettings,
    /// The agents to assess.
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// The conversation's Agent Connect channel, if one is asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Whether to read the roster from Agent Connect when none is cached; without, a missing
    /// roster is answered `{notCached: true}` (the gateway then applies its key-check limit and
    /// asks again with `fetch`).
    #[serde(default)]
    pub fetch: bool,
}

/// The roster command's answer, as the org's scheduler gives it and the gateway reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RosterReply {
    /// `{available: true, fetchedAt, agents, standings}`.
    Read(RosterRead),
    /// `{notCached: true}`: no roster is cached, and the query did not ask to read one.
    NotCached(NotCached),
    /// `{available: false, message}`: without an API secret, the roster is not read.
    NoSecret(NoSecret),
    /// `{error: {code, message}}`: a roster failure, or one of the edge's (storage, the
    /// command's settings, the invocation's calls).
    Failed(ErrorAnswer<RefusalCode>),
}

impl RosterReply {
    /// Reads a reply's body; `None` when it is none of the roster's answers.
    pub fn read(body: &serde_json::Value) -> Option<Self> {
        Self::deserialize(body).ok()
    }
}

/// A roster had, and the agents asked about held against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterRead {
    /// Always `true`.
    pub available: bool,
    /// When the roster was read from Agent Connect (ISO 8601).
    pub fetched_at: String,
    /// How many employees it lists.
    pub agents: usize,
    /// Each agent asked about, in order.
    pub standings: Vec<StandingRow>,
}

/// One agent's standing against the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingRow {
    /// Their email.
    pub email: String,
    /// Their name (`null` when not known).
    pub name: Option<String>,
    /// The stable code.
    pub code: StandingCode,
    /// A short label.
    pub standing: String,
    /// What it means for the survey.
    pub message: String,
}

/// `{notCached: true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotCached {
    /// Always `true`.
    pub not_cached: bool,
}

/// `{available: false, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoSecret {
    /// Always `false`.
    pub available: bool,
    /// Why ([`NO_SECRET`]).
    pub message: String,
}

/// A roster refusal's code: the roster's own, or the edge's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RefusalCode {
    /// Reading the roster failed.
    Roster(RosterError),
    /// The edge refused or failed.
    Edge(ErrorCode),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::codes::ErrorBody;
    use serde_json::json;

    #[test]
    fn the_roster_answers_read_back_as_they_were_written() {
        let answers = [
            json!({"available": true, "fetchedAt": "2026-01-01T00:00:00.000Z", "agents": 2,
                "standings": [{"email": "a@x.com", "name": null, "code": "no_profile",
                    "standing": "No Agent Connect profile", "message": "m"}]}),
            json!({"notCached": true}),
            json!({"available": false, "message": NO_SECRET}),
            json!({"error": {"code": "stella_secret_rejected", "message": "m"}}),
            json!({"error": {"code": "storage_error", "message": "m"}}),
        ];
        for answer in answers {
            let read = RosterReply::read(&answer).unwrap_or_else(|| panic!("{answer}"));
            assert_eq!(serde_json::to_value(&read).unwrap(), answer);
        }
        assert!(matches!(
            RosterReply::read(&json!({"error": {"code": "stella_secret_rejected", "message": ""}})),
            Some(RosterReply::Failed(ErrorAnswer {
                error: ErrorBody {
                    code: RefusalCode::Roster(RosterError::SecretRejected),
                    ..
                }
            }))
        ));
        assert_eq!(
            RosterReply::read(&json!({"error": {"code": "nope", "message": ""}})),
            None
        );
    }

    #[test]
    fn read_failures_map_to_roster_codes() {
        let fatal = |code| {
            RosterFailure::Call(Failure::Fatal {
                code,
                message: "m".into(),
            })
        };
        let retry = RosterFailure::Call(Failure::Retry {
            wait_ms: None,
            message: "m".into(),
        });
        let rows = [
            (
                RosterFailure::CredentialsRefused,
                RosterError::SecretRejected,
            ),
            (RosterFailure::Call(Failure::Paced), RosterError::Paced),
            (retry, RosterError::Unavailable),
            (
                fatal(FetchError::InvalidResponse),
                RosterError::InvalidResponse,
            ),
            (fatal(FetchError::Rejected), RosterError::Rejected),
            (fatal(FetchError::RequestRefused), RosterError::Rejected),
        ];
        for (failure, code) in rows {
            assert_eq!(failure_reply(&failure).0, code, "{failure:?}");
        }
        let (_, words) = failure_reply(&RosterFailure::CredentialsRefused);
        assert!(words.starts_with(CREDENTIALS_REFUSED), "{words}");
    }
}
