//! The crash lookup: before an attempt whose fate is unknown (its answer lost, or its lease
//! cut off) is made again, Data Return is asked whether Stella has the survey already, so that
//! it is recorded, not sent twice.

use super::read::ReadError;
use super::{Clock, Scheduler};
use crate::edge::agent_connect::DataQuery;
use crate::edge::interpret::Failure;
use crate::edge::job::{Attempt, AttemptEnd, Job};
use crate::edge::record_check::{self, CLOCK_SKEW_MS};
use crate::edge::{Store, Transport};
use crate::settings::Settings;
use crate::survey_outcome::Record;
use std::collections::HashMap;

/// How long an unsure survey waits for Data Return to answer before it goes out regardless.
const LOOKUP_PATIENCE_MS: i64 = 3_600_000;

/// What Data Return says of attempts whose fate is unknown, by conversation.
pub(super) enum Lookup {
    /// Nothing to look up (no unsure job, or no API secret): nothing asked.
    None,
    /// Agent Connect refuses the key or secret: unsure jobs go out as they would without the
    /// secret (at least once, never lost).
    Refused,
    /// The records found, by conversation id: absent ones were not sent.
    Found(HashMap<String, Record>),
    /// The lookup failed: unsure jobs wait and try again.
    Failed {
        wait_ms: Option<i64>,
        message: String,
    },
}

impl Lookup {
    /// Whether the batch waited on Data Return (a job may have changed meanwhile).
    pub(super) fn waited(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// What the lookup settles of `job` (as it was before its lease) at `now_ms`, if anything:
    /// found, the survey is recorded as sent; not looked up for now, it waits, until a lookup
    /// that keeps failing has held it back [`LOOKUP_PATIENCE_MS`] (then it goes out as it
    /// would without the secret: at least once, never lost). `None`: make the attempt.
    pub(super) fn settles(&self, job: &Job, now_ms: i64) -> Option<Attempt> {
        if !job.is_unsure() {
            return None;
        }
        let patient = now_ms - job.first_attempt_ms.unwrap_or(now_ms) < LOOKUP_PATIENCE_MS;
        match self {
            Self::Found(found) => (found.get(&job.conversation_id))
                .map(|record| Attempt::ended(AttemptEnd::Found(Box::new(record.clone())))),
            Self::Failed { wait_ms, message } if patient => {
                Some(Attempt::ended(AttemptEnd::Retry {
                    wait_ms: *wait_ms,
                    message: message.clone(),
                    unsure: true,
                }))
            }
            _ => None,
        }
    }
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// Asks Data Return about the batch's attempts whose fate is unknown: one read from the
    /// earliest of them, so that a survey Stella already has is recorded, not sent again.
    /// `reserved`: the run's calls the batch's attempts need, which the read leaves alone.
    pub(super) async fn look_up_unsure(
        &self,
        batch: &[Job],
        settings: &Settings,
        reserved: u32,
    ) -> Lookup {
        let unsure: Vec<&Job> = batch.iter().filter(|j| j.is_unsure()).collect();
        let Some(since) = unsure
            .iter()
            .map(|j| j.first_attempt_ms.unwrap_or(j.updated_ms))
            .min()
        else {
            return Lookup::None;
        };
        if settings.stella_api_secret.is_none() {
            return Lookup::None;
        }
        // The same rules as for any record ([`record_check`]): a record that merely claims the
        // survey must not stop it from going out. The earliest match speaks for it.
        let mut found: HashMap<String, (i64, Record)> = HashMap::new();
        let mut keep = |record: Record| {
            let conversation = &record.outcome.conversation_id;
            let job = unsure.iter().find(|j| &j.conversation_id == conversation);
            let Some(matched) =
                job.and_then(|j| record_check::check(&self.sealer, j, &record).ok())
            else {
                return Ok(());
            };
            let this = (Some(matched.created_ms), record.outcome.uuid.as_str());
            let first = found.get(conversation).is_none_or(|(created, known)| {
                record_check::comes_first(this, (Some(*created), &known.outcome.uuid))
            });
            if first {
                found.insert(conversation.clone(), (matched.created_ms, record));
            }
            Ok(())
        };
        let query = DataQuery {
            created_since_ms: Some(since.saturating_sub(CLOCK_SKEW_MS)),
            ..DataQuery::default()
        };
        let (mut cursor, mut pages) = (None, 0);
        let read = self
            .pass(
                settings,
                query,
                &mut cursor,
                &mut pages,
                reserved,
                &mut keep,
            )
            .await;
        let _ = self.save_stella_pace(); // only the window: a failed write loses nothing
        let found = found.into_iter().map(|(c, (_, r))| (c, r)).collect();
        self.answered(read, found)
    }

    /// What a lookup's read says: the records found when it read them all, else why not.
    fn answered(&self, read: Result<bool, ReadError>, found: HashMap<String, Record>) -> Lookup {
        let now = self.clock.now_ms();
        let ask = "Could not ask Agent Connect whether an earlier attempt reached it";
        match read {
            Ok(true) => Lookup::Found(found),
            // More records than one read takes: asked again next time, as for a failure.
            Ok(false) => Lookup::Failed {
                wait_ms: None,
                message: format!("{ask}: too many records to read at once."),
            },
            Err(ReadError::Storage(message)) => Lookup::Failed {
                wait_ms: None,
                message,
            },
            Err(ReadError::Service(Failure::Fatal { .. })) => Lookup::Refused,
            Err(ReadError::Service(failure)) => {
                let (wait_ms, message) = self.wait_for(failure, now);
                let message = message.unwrap_or_else(|| {
                    "the org's Agent Connect calls for this minute are used up".into()
                });
                Lookup::Failed {
                    wait_ms,
                    message: format!("{ask}: {message}"),
                }
            }
        }
    }
}
