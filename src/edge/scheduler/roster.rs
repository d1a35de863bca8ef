//! The org's cached roster: read from Agent Connect at most once a day per set of credentials,
//! within the org's Agent Connect pace, and agents assessed against it
//! ([`crate::roster::assess`]). The only command that waits on the network, so it has its own
//! asynchronous entry, [`Scheduler::command_async`].

use super::{iso, Clock, Command, Scheduler};
use crate::edge::codes::{ErrorAnswer, ErrorBody, ErrorCode};
use crate::edge::job::StoredSettings;
use crate::edge::roster::{
    self as fetch, NoSecret, NotCached, RosterQuery, RosterRead, RosterReply,
};
use crate::edge::roster::{RefusalCode, StandingRow, MAX_AGENTS, NO_SECRET, ROSTER_TTL_MS};
use crate::edge::subrequests::{Allowance, Counted};
use crate::edge::{agent_connect, Reply, Store, Transport};
use crate::roster::{assess, Roster};
use crate::settings::{self, Settings};
use serde_json::{json, Value};

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// Handles any command: the roster's and the link check asynchronously; the others as
    /// [`Self::command`] does, once Kustomer was asked about a caller it has not vouched for
    /// (at most once a minute per org).
    ///
    /// Its outbound calls are this invocation's own, counted against
    /// [`Config::subrequests_per_invocation`](crate::edge::Config): a call past it is not
    /// made, and the command answers [`ErrorCode::SubrequestBudget`].
    pub async fn command_async(&self, command: Command) -> Reply {
        let calls = Allowance::new(self.config.subrequests_per_invocation);
        let counted = Counted {
            inner: &self.transport,
            calls: &calls,
        };
        let result = match command {
            Command::Roster { query } => Ok(self.roster(query, &counted).await),
            Command::Link { caller } => self.link(&caller, &counted).await,
            other => match other.caller() {
                Some(caller) => self.verify(caller, false, &counted).await,
                None => Ok(()),
            }
            .map(|()| self.command(other)),
        };
        calls.checked(result.unwrap_or_else(|e| Reply::error(ErrorCode::StorageError, e)))
    }

    /// The agents' standings against the roster of the query's credentials: cached for
    /// [`ROSTER_TTL_MS`], else read (when `fetch`) through the org's Agent Connect pace.
    ///
    /// Answers `{available: true, fetchedAt, agents, standings: [{email, name?, code, standing,
    /// message}]}`; `{available: false, message}` without an API secret; `{notCached: true}`;
    /// or `{error: {code, message}}` ([`fetch::RosterError`]).
    pub async fn roster<M: Transport>(&self, query: RosterQuery, transport: &M) -> Reply {
        let settings = match self.roster_settings(&query.settings) {
            Ok(settings) => settings,
            Err(reply) => return reply,
        };
        let Some(key) = fetch::cache_key(&self.sealer, &settings) else {
            return answer(RosterReply::NoSecret(NoSecret {
                available: false,
                message: NO_SECRET.into(),
            }));
        };
        let now = self.clock.now_ms();
        let cached =
            (self.store.cache_get(&key, now).ok().flatten()).and_then(|t| Roster::from_json(&t));
        let roster = match cached {
            Some(roster) => roster,
            None if !query.fetch => {
                return answer(RosterReply::NotCached(NotCached { not_cached: true }))
            }
            None => match self.read_roster(&settings, &key, now, transport).await {
                Ok(roster) => roster,
                Err(reply) => return reply,
            },
        };
        let channel = query.channel.as_deref();
        let standings = (query.agents.iter().take(MAX_AGENTS))
            .map(|agent| {
                let standing = assess(&roster, &agent.email, agent.name.as_deref(), channel);
                StandingRow {
                    email: agent.email.clone(),
                    name: agent.name.clone(),
                    code: standing.code,
                    standing: standing.standing.into(),
                    message: standing.message,
                }
            })
            .collect();
        answer(RosterReply::Read(RosterRead {
            available: true,
            fetched_at: iso(roster.fetched_ms),
            agents: roster.len(),
            standings,
        }))
    }

    fn roster_settings(&self, stored: &StoredSettings) -> Result<Settings, Reply> {
        let raw: Value = serde_json::from_str(&stored.0).map_err(|_| {
            Reply::error(
                ErrorCode::InvalidCommand,
                "The roster's settings are not JSON.",
            )
        })?;
        settings::validate_settings(&raw, self.validation())
            .map_err(|fields| Reply::from(crate::InputError::invalid_settings(fields)))
    }

    /// Reads and caches the roster; the reply for a failure (nothing is cached then).
    async fn read_roster<M: Transport>(
        &self,
        settings: &Settings,
        key: &str,
        now: i64,
        transport: &M,
    ) -> Result<Roster, Reply> {
        let storage = |e: String| Reply::error(ErrorCode::StorageError, e);
        let result = {
            let paced = self
                .paced_stella(transport, agent_connect::ROSTER_CALLS_PER_MINUTE)
                .map_err(storage)?;
            fetch::fetch_roster(&paced, settings, now).await
        };
        self.save_stella_pace().map_err(storage)?;
        match result {
            Ok(roster) => {
                // A cache write that fails costs a read tomorrow's way, nothing more.
                let _ = self
                    .store
                    .cache_put(key, &roster.to_json(), now + ROSTER_TTL_MS);
                Ok(roster)
            }
            Err(failure) => {
                let (code, message) = fetch::failure_reply(&failure);
                let error = ErrorBody {
                    code: RefusalCode::Roster(code),
                    message,
                };
                let failed = RosterReply::Failed(ErrorAnswer { error });
                let mut reply = Reply::json(code.status(), json!(failed));
                if code == fetch::RosterError::Paced {
                    let wait = (self.stella_window(agent_connect::ROSTER_CALLS_PER_MINUTE))
                        .map_or(60_000, |at| at - now);
                    reply.retry_after = Some(((wait.max(1000) + 999) / 1000) as u32);
                }
                Err(reply)
            }
        }
    }
}

/// A roster answer as the gateway reads it ([`RosterReply::read`]).
fn answer(reply: RosterReply) -> Reply {
    Reply::json(200, json!(reply))
}
