//! The agent roster: who has an Agent Connect profile, in which status, with which channels.
//!
//! Agent Connect surveys a conversation only for an employee with an active, approved profile
//! whose channels include the conversation's; otherwise it accepts the request and quietly
//! sends nothing. The roster (`GET /v2/employees`, read per org and cached for a day) lets the
//! agent's card and "Check connection" say so beforehand. The app still sends every request:
//! Agent Connect decides, and its roster may change within the day.
//!
//! Pure: a page of the employee list read into [`Page`], the org's roster as [`Roster`] (with a
//! compact form for the cache), and [`assess`], an agent's [`Standing`] in words.

use crate::error::{codes, codes_deserialize};
use crate::json::At;
use crate::{InputError, InputErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// An Agent Connect employee, reduced to what decides whether they are surveyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// Email, ASCII-lowercased: Agent Connect finds agents by it, whatever its case.
    pub email: String,
    /// Profile status (`active`, `unapproved`, `deactivated`, `pending review`, `confirmed`,
    /// `created`), lowercased; `None` when the answer does not say (the contract's list schema
    /// omits it), which is then not held against the agent.
    pub status: Option<String>,
    /// The channels enabled for them, lowercased; `None` when the answer does not say.
    pub channels: Option<Vec<String>>,
}

/// One page of `GET /v2/employees`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Its employees (those without an email are left out: no agent can match them).
    pub employees: Vec<Employee>,
    /// The query of the next page, as `meta.next_page` gives it; `None` on the last page.
    pub next: Option<Vec<(String, String)>>,
}

/// Reads one page of `GET /v2/employees` (the contract's `ResponseBodyGetEmployees`).
///
/// The contract types `employees` as one object while saying "an array of employees": both are
/// read. `channels` is a list in the list's schema and text in the single employee's: both are
/// read (text as a comma-separated list). The next page is `meta.next_page`, a URL whose query
/// (the `external_id` cursor, whatever names it uses) is asked again at the org's own base URL,
/// never at a host an answer names.
pub fn parse_page(value: &Value) -> Result<Page, InputError> {
    let root = At::root(value);
    root.object()?;
    let list = root.get("employees");
    let employees = match list.value() {
        None => Vec::new(),
        Some(Value::Object(_)) => read_employee(&list)?.into_iter().collect(),
        Some(_) => {
            let mut out = Vec::new();
            for at in list.items()? {
                out.extend(read_employee(&at)?);
            }
            out
        }
    };
    let meta = root.get("meta");
    meta.opt_object()?;
    let next_at = meta.get("next_page");
    let next = match next_at.opt_string()?.filter(|n| !n.trim().is_empty()) {
        None => None,
        Some(link) => Some(next_query(&link).ok_or_else(|| {
            InputError::new(
                InputErrorCode::InvalidShape,
                "meta.next_page",
                "expected the URL of the next page, with its query",
            )
        })?),
    };
    Ok(Page { employees, next })
}

/// The query pairs of a next-page link (absolute, or a path): `None` when it has none.
fn next_query(link: &str) -> Option<Vec<(String, String)>> {
    let base = url::Url::parse("https://next.page.invalid/").ok()?;
    let url = base.join(link.trim()).ok()?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    (!pairs.is_empty()).then_some(pairs)
}

fn read_employee(at: &At<'_>) -> Result<Option<Employee>, InputError> {
    at.object()?;
    let Some(email) = at.get("email").opt_string()? else {
        return Ok(None);
    };
    let email = email.trim().to_ascii_lowercase();
    if email.is_empty() {
        return Ok(None);
    }
    let status = at
        .get("status")
        .opt_string()?
        .map(|s| normal(&s))
        .filter(|s| !s.is_empty());
    let channels_at = at.get("channels");
    let channels = match channels_at.value() {
        None => None,
        Some(Value::String(text)) => Some(text.split(',').map(normal).collect()),
        Some(_) => Some(channels_at.strings()?.iter().map(|c| normal(c)).collect()),
    }
    .map(|list: Vec<String>| list.into_iter().filter(|c| !c.is_empty()).collect());
    Ok(Some(Employee {
        email,
        status,
        channels,
    }))
}

/// Lowercase, trimmed, `_`/`-` read as spaces (`pending_review` is `pending review`).
fn normal(text: &str) -> String {
    text.trim().to_ascii_lowercase().replace(['_', '-'], " ")
}

/// An org's roster, by email, as read at `fetched_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    employees: BTreeMap<String, Employee>,
    /// When it was read (ms).
    pub fetched_ms: i64,
}

/// The cache's form: short names, one array per employee (`[email, status, channels]`).
#[derive(Serialize, Deserialize)]
struct Compact {
    at: i64,
    e: Vec<(String, Option<String>, Option<Vec<String>>)>,
}

impl Roster {
    /// The roster of these employees (a repeated email: the later one counts).
    pub fn new(employees: impl IntoIterator<Item = Employee>, fetched_ms: i64) -> Self {
        let employees = employees
            .into_iter()
            .map(|e| (e.email.clone(), e))
            .collect();
        Self {
            employees,
            fetched_ms,
        }
    }

    /// How many employees it lists.
    pub fn len(&self) -> usize {
        self.employees.len()
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.employees.is_empty()
    }

    /// The employee with this email, in any case.
    pub fn get(&self, email: &str) -> Option<&Employee> {
        self.employees.get(&email.trim().to_ascii_lowercase())
    }

    /// Compact JSON text, for the org's cache.
    pub fn to_json(&self) -> String {
        let compact = Compact {
            at: self.fetched_ms,
            e: (self.employees.values())
                .map(|e| (e.email.clone(), e.status.clone(), e.channels.clone()))
                .collect(),
        };
        serde_json::to_string(&compact).unwrap_or_default() // strings and numbers: cannot fail
    }

    /// The roster from [`Roster::to_json`]'s text; `None` when it is not that (read it again).
    pub fn from_json(text: &str) -> Option<Self> {
        let compact: Compact = serde_json::from_str(text).ok()?;
        let employees = compact
            .e
            .into_iter()
            .map(|(email, status, channels)| Employee {
                email,
                status,
                channels,
            });
        Some(Self::new(employees, compact.at))
    }
}

codes! {
    /// Where an agent stands with Agent Connect.
    pub enum StandingCode {
        /// An active profile with the conversation's channel enabled (or no channel asked).
        Ready = "ready",
        /// No profile under the agent's email.
        NoProfile = "no_profile",
        /// A profile that is not active (unapproved, deactivated, pending review, …).
        NotActive = "not_active",
        /// An active profile without the conversation's channel.
        ChannelOff = "channel_off",
    }
}

codes_deserialize!(StandingCode);

/// An agent's [`StandingCode`], with words for the agent or admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// The stable code.
    pub code: StandingCode,
    /// A short label (`Ready`, `No Agent Connect profile`, …).
    pub standing: &'static str,
    /// What it means for the survey, in a sentence or two.
    pub message: String,
}

/// What every warning adds: the app does not hold the request back, since the roster may be
/// a day old and Agent Connect has the last word.
const STILL_SENT: &str =
    "The app still sends the request; Agent Connect decides, by its own current roster.";

/// Where the agent with `agent_email` (named `agent_name` in the words, if given) stands for a
/// conversation on `stella_channel` (Agent Connect's channel name; `None`: any channel).
pub fn assess(
    roster: &Roster,
    agent_email: &str,
    agent_name: Option<&str>,
    stella_channel: Option<&str>,
) -> Standing {
    let email = agent_email.trim();
    let who = agent_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(email);
    let warn = |code, standing, what: String| Standing {
        code,
        standing,
        message: format!("{what}: Agent Connect will not survey this conversation. {STILL_SENT}"),
    };
    let Some(employee) = roster.get(email) else {
        return warn(
            StandingCode::NoProfile,
            "No Agent Connect profile",
            format!("{who}'s email has no Agent Connect profile"),
        );
    };
    if let Some(status) = employee.status.as_deref().filter(|s| *s != "active") {
        return warn(
            StandingCode::NotActive,
            "Profile not active",
            format!("{who}'s Agent Connect profile {}", status_words(status)),
        );
    }
    let channel = stella_channel.map(normal).filter(|c| !c.is_empty());
    if let (Some(channel), Some(channels)) = (&channel, &employee.channels) {
        if !channels.contains(channel) {
            return warn(
                StandingCode::ChannelOff,
                "Channel not enabled",
                format!(
                    "{who}'s Agent Connect profile does not have the {channel} channel enabled"
                ),
            );
        }
    }
    let on = channel.map_or(String::new(), |c| format!(" with the {c} channel enabled"));
    Standing {
        code: StandingCode::Ready,
        standing: "Ready",
        message: format!("{who} has an active Agent Connect profile{on}."),
    }
}

/// A status other than `active`, as the rest of a sentence about the profile.
fn status_words(status: &str) -> String {
    match status {
        "unapproved" => "is not approved yet (an Agent Connect admin approves it)".into(),
        "deactivated" => "is deactivated".into(),
        "pending review" => "is pending review".into(),
        "created" => "was created but is not active yet (the invitation is not accepted)".into(),
        "confirmed" => "is confirmed but not active yet".into(),
        other => format!("is {other:?}, not active"),
    }
}
