//! One attempt at a survey, as oauth2-rs shapes a call: [`prepare`](Scheduler::prepare) reads
//! Kustomer's records, checks the conversation again and decides; [`send`](Scheduler::send)
//! keeps who it goes to, sends it to Stella and reads the answer. What it came to is an
//! [`Attempt`], which [`job::settle`](crate::edge::job::settle) turns into the job's next state.

use super::settings::OrgSettings;
use super::{Clock, Scheduler};
use crate::decision::Inputs;
use crate::decision::{self, Decision, Recheck};
use crate::edge::codes::Reason;
use crate::edge::forget::CustomerKeys;
use crate::edge::interpret::{interpret, Failure, FetchError};
use crate::edge::job::{self, Attempt, AttemptEnd, Job};
use crate::edge::kustomer_api;
use crate::edge::record_check::SentTo;
use crate::edge::{SendError, Store, Transport};
use crate::settings::Settings;
use crate::stella::{self, FeedbackRequest};
use crate::timestamp;

/// A survey ready to go: the body the decision made, and what it was made from.
pub(super) struct Prepared {
    /// What goes to Stella.
    body: FeedbackRequest,
    /// Kustomer's close time, which the survey is about.
    closed_at_ms: i64,
    /// The conversation's customer, for the forget index.
    customer_id: Option<String>,
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// One attempt at the leased `job`: prepared with the org's settings, then sent.
    pub(super) async fn attempt(&self, job: &Job, settings: &OrgSettings) -> Attempt {
        let ready = match settings {
            OrgSettings::Ready(s) => s,
            OrgSettings::Invalid(message) => {
                return Attempt::failed(Reason::InvalidSettings, message.clone())
            }
            OrgSettings::Missing(message) => return Attempt::retry(None, message.clone()),
        };
        match self.prepare(job, ready, settings.share()).await {
            Ok(prepared) => self.send(job, ready, prepared).await,
            Err(ended) => ended,
        }
    }

    /// Fresh Kustomer data, the rechecks, the decision, and the forget check: the survey to
    /// send, or how the attempt ended without one.
    async fn prepare(
        &self,
        job: &Job,
        settings: &Settings,
        share: u32,
    ) -> Result<Prepared, Attempt> {
        let inputs = self.fetch(job, settings, share).await?;
        let now = self.clock.now_ms();
        let (body, closed_at_ms) = decide(settings, job, &inputs, now)?;
        let customer_id = inputs.conversation.customer_id.clone();
        match self.forgotten(&job.org, customer_id.as_deref(), &body.customer.email) {
            Ok(false) => Ok(Prepared {
                body,
                closed_at_ms,
                customer_id,
            }),
            Ok(true) => Err(Attempt::skipped(
                Reason::Forgotten,
                "The customer was forgotten: this survey is not sent.",
            )),
            Err(message) => Err(Attempt::retry(None, message)),
        }
    }

    /// The conversation and what the survey needs of Kustomer, metered against the org's API
    /// budget share and counted against the run's calls.
    async fn fetch(&self, job: &Job, settings: &Settings, share: u32) -> Result<Inputs, Attempt> {
        let counted = self.run_transport();
        let metered = self.metered(&counted, share);
        let cache: Option<&dyn Store> = Some(&self.store);
        let now = self.clock.now_ms();
        let id = &job.conversation_id;
        let cache_ms = self.config.cache_ms;
        let fetched = kustomer_api::fetch_inputs(&metered, cache, settings, id, now, cache_ms);
        fetched.await.map_err(fetch_failed)
    }

    /// Keeps who the survey goes to, sends it, and reads Stella's answer.
    async fn send(&self, job: &Job, settings: &Settings, prepared: Prepared) -> Attempt {
        let Prepared {
            body,
            closed_at_ms,
            customer_id,
        } = prepared;
        if let Err(message) = self.keep_sent_to(job, &body, customer_id.as_deref()) {
            return Attempt::retry(None, message);
        }
        // What the log keeps of it: the fields it reads, not the whole body.
        let shown = job::logged_request(&body);
        let request = stella::survey_request(settings, &body);
        let now = self.clock.now_ms();
        let keys = settings.stella_secrets();
        let answer = self.run_transport().send(request).await;
        // No answer, or a server error: Stella may have taken the survey all the same.
        let unsure = match &answer {
            Err(SendError::Network(_)) => true,
            Ok(response) => response.status >= 500,
            Err(_) => false,
        };
        let ended = match interpret(answer, now, "Agent Connect", &keys) {
            Ok(_) => AttemptEnd::Sent { closed_at_ms },
            Err(failure) => stella_failed(failure, unsure),
        };
        Attempt::ended(ended).with_request(shown)
    }

    /// Keeps who `body` goes to on the leased `job`, as keyed digests, before it is sent: Data
    /// Return's records are matched against them, after a crash too. Not onto a job a close
    /// replaced meanwhile (the attempt goes on, as before; the new job is left alone).
    /// Also keeps the customer's keys for the forget index ([`CustomerKeys`]).
    fn keep_sent_to(
        &self,
        job: &Job,
        body: &FeedbackRequest,
        customer_id: Option<&str>,
    ) -> Result<(), String> {
        let sent_to = Some(SentTo::of(&self.sealer, job, body));
        let Some(current) = self.store.get(&job.conversation_id)? else {
            return Ok(());
        };
        let email = Some(body.customer.email.as_str());
        let customer = CustomerKeys::of(&self.sealer, &job.org, customer_id, email).map(|k| {
            let id =
                k.id.or_else(|| current.customer.as_ref().and_then(|c| c.id.clone()));
            CustomerKeys { id, ..k }
        });
        if current.generation != job.generation
            || (current.sent_to == sent_to && current.customer == customer)
        {
            return Ok(());
        }
        self.store.put(&Job {
            sent_to,
            customer,
            ..current
        })
    }
}

/// The conversation checked again at `now_ms` (reopened? closed at another time?) and the
/// decision on Kustomer's data: the body and Kustomer's close time, or how the attempt ended.
fn decide(
    settings: &Settings,
    job: &Job,
    inputs: &Inputs,
    now_ms: i64,
) -> Result<(FeedbackRequest, i64), Attempt> {
    let at = |ms: i64| timestamp::from_millis(ms as f64);
    let recheck = decision::recheck(
        settings,
        &inputs.conversation,
        at(job.closed_at_ms),
        job.last_surveyed_ms().map(at),
        at(now_ms),
    );
    let closed_at_ms = match recheck {
        Recheck::Send { closed_at } => timestamp::to_millis(closed_at),
        Recheck::Retime { closed_at, send_at } => {
            return Err(Attempt::ended(AttemptEnd::Retime {
                closed_at_ms: timestamp::to_millis(closed_at),
                send_at_ms: timestamp::to_millis(send_at),
            }))
        }
        Recheck::Skip(skip) => return Err(Attempt::skipped(skip.code, skip.message)),
    };
    match decision::decide(settings, inputs.survey_input(Some(&job.org))) {
        Decision::Skip(skip) => Err(Attempt::skipped(skip.code, skip.message)),
        Decision::Send(body) => Ok((body, closed_at_ms)),
    }
}

/// How an attempt ends when Kustomer's records could not be read.
fn fetch_failed(failure: Failure) -> Attempt {
    match failure {
        Failure::Retry { wait_ms, message } => Attempt::retry(wait_ms, message),
        Failure::Paced => Attempt::ended(AttemptEnd::Paced),
        Failure::Fatal {
            code: FetchError::NotFound,
            message,
        } => Attempt::skipped(Reason::ConversationNotFound, message),
        Failure::Fatal { code, message } => Attempt::failed(Reason::from(code), message),
    }
}

/// How an attempt ends when Stella did not take the survey; `unsure` when it may have.
fn stella_failed(failure: Failure, unsure: bool) -> AttemptEnd {
    match failure {
        Failure::Retry { wait_ms, message } => AttemptEnd::Retry {
            wait_ms,
            message,
            unsure,
        },
        // The run's outbound calls used up (not reached: a job is taken with room for all of
        // its calls): nothing was sent, as if never tried.
        Failure::Paced => AttemptEnd::Paced,
        Failure::Fatal { code, message } => AttemptEnd::Failed {
            reason: Reason::of_stella(code),
            message,
        },
    }
}
