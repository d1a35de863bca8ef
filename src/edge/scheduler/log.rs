//! The delivery log as the scheduler answers it: a page of entries, and resends of failed or
//! skipped surveys.

use super::{iso, state_name, Clock, Scheduler};
use crate::edge::audit::AuditEntry;
use crate::edge::codes::{ErrorBody, ErrorCode, Reason};
use crate::edge::codes::{ResendManyReply, ResendResult, ResendStatus};
use crate::edge::deliveries::{self, DeliveryQuery, MAX_LIMIT, MAX_RESEND_PER_CALL};
use crate::edge::job::{Job, JobState};
use crate::edge::{record_check, trust, OrgRecord, Reply, Store, Transport};
use serde_json::json;

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// A page of the log.
    pub(super) fn list(&self, query: &DeliveryQuery) -> Result<Reply, String> {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let first_page = query.after.is_none();
        let jobs = self.store.deliveries(query, limit + 1)?;
        let tally = first_page.then(|| self.store.tally(query)).transpose()?;
        let mut body = deliveries::answer(query, jobs, tally.as_ref(), self.config.retention_days);
        // Whether outcomes are read back, and the last read's failure (no key in it); the
        // app's link and its held closes, for the page's banner.
        let record = self.store.org()?;
        // A link for each entry without its own, under the org's saved Kustomer URL.
        deliveries::link_conversations(&mut body, || self.kustomer_url(&record));
        let follow = record.follow;
        body["outcomes"] = json!({"reading": follow.reading, "lastError": follow.last_error});
        body["link"] = record.trust.status(self.store.held_count()?);
        body["storage"] = self.storage_status()?;
        if first_page {
            body["link"]["heldCloses"] = (self.store.held_list(trust::LISTED_HELD)?.iter())
                .map(|h| json!({"conversationId": h.conversation_id, "closedAt": iso(h.closed_at_ms), "heldAt": iso(h.held_ms), "expiresAt": iso(trust::HeldClose::expires_ms(h.held_ms))}))
                .collect();
        }
        // Records that did not count for their survey, by reason, and the note in words.
        let note = record_check::note(&follow.ignored, follow.unverified);
        body["outcomes"]["ignoredRecords"] = json!(follow.ignored);
        body["outcomes"]["unverifiedRecords"] = json!(follow.unverified);
        body["outcomes"]["recordsNote"] = json!(note);
        Ok(Reply::json(200, body))
    }

    /// The Kustomer URL of the org's stored settings, when they open and are valid.
    fn kustomer_url(&self, record: &OrgRecord) -> Option<String> {
        let (sealed, org) = (record.sealed_settings.as_ref()?, record.org.as_ref()?);
        let text = self.sealer.open(sealed, org).ok()?;
        deliveries::saved_kustomer_url(&text, self.validation())
    }

    /// Schedules one failed or skipped survey again, or says why not.
    fn resend_one(&self, conversation_id: &str) -> Result<Result<Job, Refusal>, String> {
        let now = self.clock.now_ms();
        let refused = |code, message: String| Ok(Err(ErrorBody { code, message }));
        let Some(job) = self.store.get(conversation_id)? else {
            let why = "No survey is recorded for this conversation.";
            return refused(ErrorCode::NotFound, why.into());
        };
        if !matches!(job.state, JobState::Failed | JobState::Skipped) {
            let why = format!(
                "Only failed or skipped surveys can be sent again; this one is {}.",
                state_name(job.state)
            );
            return refused(ErrorCode::NotResendable, why);
        }
        if !deliveries::resendable(&job) {
            let why = "A resend cannot change this skip: the conversation's own facts would be \
                       checked again and give the same answer, and closing it again schedules \
                       a survey by itself.";
            return refused(ErrorCode::NotResendable, why.into());
        }
        let job = Job {
            state: JobState::Scheduled,
            generation: job.generation.wrapping_add(1),
            due_ms: Some(now),
            attempts: 0,
            first_attempt_ms: None,
            reason: Some(Reason::Resend.into()),
            message: None,
            updated_ms: now,
            ..job
        };
        self.store.put(&job)?;
        self.alarm.added(now);
        Ok(Ok(job))
    }

    pub(super) fn resend(&self, ready: bool, conversation_id: &str) -> Result<Reply, String> {
        let job = match self.resend_one(conversation_id)? {
            Ok(job) => job,
            Err(refused) => return Ok(Reply::error(refused.code, refused.message)),
        };
        let ids = [conversation_id.to_owned()];
        self.audit(AuditEntry::resend(job.updated_ms, &ids, 1))?;
        Ok(Reply::json(
            202,
            json!({"status": "scheduled", "conversationId": job.conversation_id, "sendAt": iso(job.updated_ms), "message": resent(ready, &job)}),
        ))
    }

    /// [`Self::resend`] for each conversation: one answer listing what became of each.
    pub(super) fn resend_many(
        &self,
        ready: bool,
        conversation_ids: &[String],
    ) -> Result<Reply, String> {
        let ids = &conversation_ids[..conversation_ids.len().min(MAX_RESEND_PER_CALL)];
        let mut results = Vec::with_capacity(ids.len());
        for id in ids {
            let (status, message) = match self.resend_one(id)? {
                Ok(job) => (ResendStatus::Scheduled, resent(ready, &job)),
                Err(refused) => (refused.code.into(), refused.message),
            };
            let conversation_id = id.clone();
            results.push(ResendResult {
                conversation_id,
                status,
                message,
            });
        }
        let scheduled = (results.iter())
            .filter(|r| r.status == ResendStatus::Scheduled)
            .count();
        self.audit(AuditEntry::resend(self.clock.now_ms(), ids, scheduled))?;
        let refused = results.len() - scheduled;
        let answer = ResendManyReply {
            results,
            scheduled,
            refused,
        };
        Ok(Reply::json(200, json!(answer)))
    }
}

/// Why one survey cannot be sent again.
type Refusal = ErrorBody<ErrorCode>;

/// What a resend's answer says of the job it scheduled: when it goes, and, when the org has
/// no settings for it (they changed since the last close, and the last ones are no longer
/// kept), that it waits for those of the next close.
fn resent(ready: bool, job: &Job) -> String {
    let at = iso(job.updated_ms);
    if ready {
        format!("Scheduled to be sent at {at}.")
    } else {
        format!("Scheduled at {at}; it goes out with the app's settings, which come with the org's next closed conversation.")
    }
}
