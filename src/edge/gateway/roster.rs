//! `POST /v1/roster`: where an agent stands with Agent Connect (a profile, active, with the
//! conversation's channel), from the org's roster as its Durable Object keeps it; and the part
//! of "Check connection" that lists the org's Kustomer users who would not be surveyed.
//!
//! The org comes from the Kustomer key, as for key checks. A cached roster costs no Agent
//! Connect call, so only a read that would reach Agent Connect counts against the key-check
//! limit: nobody burns the org's Agent Connect minute through this route.

use super::{Gateway, Incoming, Router};
use crate::edge::codes::{ErrorAnswer, ErrorCode};
use crate::edge::job::StoredSettings;
use crate::edge::roster::{
    Agent, NotCached, RefusalCode, RosterError, RosterQuery, RosterReply, MAX_AGENTS, NO_SECRET,
};
use crate::edge::scheduler::Command;
use crate::edge::{roster, Reply, Transport};
use crate::json::{self, At};
use crate::roster::StandingCode;
use crate::settings::{Settings, STELLA_API_SECRET};
use crate::{FieldError, FieldErrorCode};
use serde_json::{json, Value};

/// The most a roster question's body may weigh: an email, a name and a channel.
pub const MAX_ROSTER_BODY_BYTES: usize = 4 * 1024;

/// The longest email or name read from the body.
const MAX_TEXT: usize = 320;

impl<T: Transport, R: Router> Gateway<T, R> {
    /// `POST /v1/roster` with `{agentEmail?, agentName?, channel?}` (the conversation's Kustomer
    /// channel) and the settings in the headers: `{available: true, fetchedAt, agents, agent?:
    /// {email, name?, code, standing, message}}`, `{available: false, message}` without an API
    /// secret, or `{error: {code, message}}`.
    pub(super) async fn roster(&self, r: &Incoming<'_>) -> Reply {
        let question = match read_question(r.body) {
            Ok(q) => q,
            Err(reply) => return reply,
        };
        let (stored, settings) = match self.settings(r) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        if settings.stella_api_secret.is_none() {
            return Reply::json(200, json!({"available": false, "message": NO_SECRET}));
        }
        let org = match (self.org_of(
            &settings.kustomer_api_url,
            settings.kustomer_api_key.expose(),
            r.now_ms,
        ))
        .await
        {
            Ok(token) => token.org,
            Err(reply) => return reply,
        };
        let channel = (question.channel.as_deref())
            .map(|c| settings.channel_map.stella_channel(c.trim()).to_owned());
        let asked = question.agent.is_some();
        let query = RosterQuery {
            settings: stored,
            agents: question.agent.into_iter().collect(),
            channel,
            fetch: false,
        };
        let reply = match self.roster_of(r, &settings, &org, query).await {
            Ok(reply) => reply,
            Err(refused) => return refused,
        };
        let read = match RosterReply::read(&reply.body) {
            Some(RosterReply::Read(read)) if reply.status == 200 && read.available => read,
            _ => return reply,
        };
        let mut body = json!({
            "available": true,
            "fetchedAt": read.fetched_at,
            "agents": read.agents,
        });
        if asked {
            body["agent"] = json!(read.standings.first());
        }
        Reply::json(200, body)
    }

    /// The org's roster answer: from its cache; when none is cached, read from Agent Connect
    /// once the key-check limit allows (`Err`: the limit's refusal).
    async fn roster_of(
        &self,
        r: &Incoming<'_>,
        settings: &Settings,
        org: &str,
        mut query: RosterQuery,
    ) -> Result<Reply, Reply> {
        let reply = self
            .forward(
                org,
                &settings.kustomer_api_url,
                &Command::Roster {
                    query: query.clone(),
                },
            )
            .await;
        if !matches!(
            RosterReply::read(&reply.body),
            Some(RosterReply::NotCached(NotCached { not_cached: true }))
        ) {
            return Ok(reply);
        }
        if let Some(refused) = self.rate_limited(r, settings).await {
            return Err(refused);
        }
        query.fetch = true;
        let url = &settings.kustomer_api_url;
        Ok(self.forward(org, url, &Command::Roster { query }).await)
    }

    /// "Check connection"'s roster part, once both keys are accepted: the org's Kustomer users
    /// who would not be surveyed, and whether Agent Connect accepts the API secret (a field
    /// error on the secret when not). Its own failures are reported in it, never as the check's.
    pub(super) async fn check_roster(
        &self,
        stored: StoredSettings,
        settings: &Settings,
        now_ms: i64,
    ) -> (Value, Option<FieldError>) {
        let key = settings.kustomer_api_key.expose();
        let org = match self.token_of(&settings.kustomer_api_url, key, now_ms).await {
            Ok(token) => token.org,
            Err((_, message)) => {
                let code = ErrorCode::KustomerError;
                return (json!({"ok": false, "code": code, "message": message}), None);
            }
        };
        // Without the users the secret is still checked: the roster is read all the same.
        let (agents, users_error) =
            match roster::kustomer_agents(&self.transport, settings, now_ms).await {
                Ok(agents) => (agents, None),
                Err(failure) => (Vec::new(), Some(users_failure(&failure))),
            };
        let checked = agents.len().min(MAX_AGENTS);
        let query = RosterQuery {
            settings: stored,
            agents,
            channel: None,
            fetch: true, // the check is rate-limited already
        };
        let url = &settings.kustomer_api_url;
        let reply = self.forward(&org, url, &Command::Roster { query }).await;
        let read = match RosterReply::read(&reply.body) {
            Some(RosterReply::Read(read)) if reply.status == 200 && read.available => read,
            answer => return roster_refused(answer),
        };
        let without: Vec<Value> = (read.standings.iter())
            .filter(|s| s.code != StandingCode::Ready)
            .map(
                |s| json!({"name": s.name, "email": s.email, "code": s.code, "message": s.message}),
            )
            .collect();
        let mut body = json!({
            "ok": true,
            "fetchedAt": read.fetched_at,
            "agents": read.agents,
            "checked": checked,
            "withoutProfile": without,
        });
        if let Some(message) = users_error {
            body["usersError"] = json!(message);
        }
        (body, None)
    }
}

/// "Check connection"'s roster part when the roster could not be had: the refusal's code and
/// words, and a field error on the API secret when Agent Connect refused it.
fn roster_refused(answer: Option<RosterReply>) -> (Value, Option<FieldError>) {
    let (code, message) = match answer {
        Some(RosterReply::Failed(ErrorAnswer { error })) => (error.code, error.message),
        _ => (
            RefusalCode::Roster(RosterError::Rejected),
            "The roster could not be read.".into(),
        ),
    };
    let field = (code == RefusalCode::Roster(RosterError::SecretRejected))
        .then(|| FieldError::new(STELLA_API_SECRET, FieldErrorCode::InvalidKey, &message));
    let body = json!({"ok": false, "code": code, "message": message});
    (body, field)
}

/// Why the users could not be listed, in words (no key: [`roster::kustomer_agents`] masks it).
fn users_failure(failure: &crate::edge::interpret::Failure) -> String {
    use crate::edge::interpret::Failure;
    match failure {
        Failure::Paced => crate::edge::kustomer_api::words(failure),
        Failure::Retry { message, .. } | Failure::Fatal { message, .. } => {
            format!("The org's Kustomer users could not be listed: {message}")
        }
    }
}

/// A roster question from the body.
struct Question {
    agent: Option<Agent>,
    channel: Option<String>,
}

/// `{agentEmail?, agentName?, channel?}`, each text; an empty body asks about no agent.
fn read_question(body: &str) -> Result<Question, Reply> {
    let refuse = Reply::from;
    let doc = match body.trim() {
        "" => Value::Null,
        text => json::from_json(text).map_err(refuse)?,
    };
    let at = At::named(&doc, "body");
    if doc.is_null() {
        return Ok(Question {
            agent: None,
            channel: None,
        });
    }
    at.object().map_err(refuse)?;
    let text = |name: &str| -> Result<Option<String>, Reply> {
        let field = at.get(name);
        let value = field.opt_string().map_err(refuse)?;
        let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if value
            .as_deref()
            .is_some_and(|v| v.len() > MAX_TEXT || v.chars().any(char::is_control))
        {
            return Err(refuse(crate::InputError::new(
                crate::InputErrorCode::InvalidShape,
                format!("body.{name}"),
                format!("expected text of at most {MAX_TEXT} bytes, without control characters"),
            )));
        }
        Ok(value)
    };
    let email = text("agentEmail")?;
    let name = text("agentName")?;
    let channel = text("channel")?;
    Ok(Question {
        agent: email.map(|email| Agent { email, name }),
        channel,
    })
}
