//! The org's link to its app ([`crate::edge::trust`]) as the scheduler keeps it: whether
//! Kustomer vouches for a caller's app secret (asking Kustomer when it has not, at most once
//! a minute), closes held meanwhile, and their release or expiry.

use super::{iso, Clock, Command, Scheduler};
use crate::edge::codes::ErrorCode;
use crate::edge::job::{self, Schedule, Upsert};
use crate::edge::trust::{self, HeldClose, TrustCode};
use crate::edge::{OrgRecord, Reply, Store, Transport};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

/// Who makes a call that reads or changes surveys: the fingerprint of the app secret it
/// presents, its org as Kustomer named it for the key, and the Kustomer key (with its API URL)
/// the scheduler asks Kustomer with when it must check that fingerprint.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// [`trust::fingerprint`] of the presented app secret.
    pub fingerprint: String,
    /// The org Kustomer named for the key.
    pub org: String,
    /// The Kustomer API URL.
    pub kustomer_api_url: String,
    /// The Kustomer API key (kept in no storage; never printed).
    pub kustomer_api_key: String,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("fingerprint", &self.fingerprint)
            .field("org", &self.org)
            .field("kustomer_api_url", &self.kustomer_api_url)
            .field("kustomer_api_key", &crate::settings::MASK)
            .finish()
    }
}

impl Command {
    /// The caller of a command that reads or changes surveys.
    pub(super) fn caller(&self) -> Option<&Caller> {
        match self {
            Command::Schedule { caller, .. }
            | Command::List { caller, .. }
            | Command::Resend { caller, .. }
            | Command::ResendMany { caller, .. }
            | Command::Link { caller }
            | Command::Forget { caller, .. }
            | Command::Audit { caller } => Some(caller),
            Command::Roster { .. } => None,
        }
    }
}

impl<S: Store, T: Transport, C: Clock> Scheduler<S, T, C> {
    /// Whether a command must wait on the network ([`Self::command_async`]): the roster, Check
    /// connection's link check, and a caller whose app secret Kustomer has not vouched for
    /// while the org may ask Kustomer again.
    pub fn waits(&self, command: &Command) -> bool {
        match command {
            Command::Roster { .. } | Command::Link { .. } => true,
            other => other.caller().is_some_and(|caller| {
                let now = self.clock.now_ms();
                self.store.org().is_ok_and(|record| {
                    !record.trust.vouches_for(&caller.fingerprint)
                        && (self.link_read.is_busy() || record.trust.may_read(now, false))
                })
            }),
        }
    }

    /// Asks Kustomer for the fingerprint when it does not vouch for the caller's and the org
    /// may ask now (always when `forced`: Check connection tests the link as it is now);
    /// records the answer. Never fails the call: a problem is kept on the record, for the
    /// pages' banner.
    pub(super) async fn verify<M: Transport>(
        &self,
        caller: &Caller,
        forced: bool,
        transport: &M,
    ) -> Result<(), String> {
        // A read under way answers for this call too (the first closes of an org come in a
        // burst): wait for it rather than hold the close, then judge with its answer.
        while self.link_read.is_busy() {
            self.link_read.wait().await;
        }
        let now = self.clock.now_ms();
        let mut record = self.store.org()?;
        let vouched = record.trust.vouches_for(&caller.fingerprint);
        if (vouched && !forced) || !record.trust.may_read(now, forced) {
            return Ok(());
        }
        // Noted before asking: calls that come in while Kustomer answers do not ask again.
        let before = record.trust.read_ms.replace(now);
        self.store.put_org(&record)?;
        let result = {
            let _open = self.link_read.open();
            trust::read_fingerprint(
                transport,
                &caller.kustomer_api_url,
                &caller.kustomer_api_key,
                &caller.org,
                now,
            )
            .await
        };
        // The record as it is now (other calls ran meanwhile). A key that may not read
        // settings says nothing of the org: it does not spend the org's read, so the app's own
        // key, next, is asked at once.
        let mut record = self.store.org()?;
        let unreadable = matches!(&result, Err(p) if p.code == TrustCode::SettingsUnreadable);
        let was = record.trust.fingerprint.clone();
        record.trust.read(result, now);
        if record.trust.fingerprint.is_some() && record.trust.fingerprint != was {
            self.audit(crate::edge::audit::AuditEntry::relinked(now, was.is_none()))?;
        }
        if unreadable {
            record.trust.read_ms = before;
        }
        self.store.put_org(&record)?;
        if record.trust.vouches_for(&caller.fingerprint) {
            self.alarm.forget(); // held closes may go now
        }
        Ok(())
    }

    /// The org's record if Kustomer vouches for the caller's app secret (clearing a problem
    /// left from before), else `None`.
    pub(super) fn vouched(&self, caller: &Caller) -> Result<Option<OrgRecord>, String> {
        let mut record = self.store.org()?;
        if !record.trust.vouches_for(&caller.fingerprint) {
            return Ok(None);
        }
        if record.trust.problem.is_some() {
            record.trust.problem = None;
            self.store.put_org(&record)?;
        }
        Ok(Some(record))
    }

    /// The refusal of a log read or resend whose app secret Kustomer does not vouch for: it
    /// names the fix, and carries the link's state (counts only).
    pub(super) fn refused(&self) -> Result<Reply, String> {
        let record = self.store.org()?;
        let code = record.trust.refusal();
        let message = format!(
            "Kustomer's settings do not vouch for the app secret of this call. {}",
            code.fix()
        );
        let mut reply = Reply::error(ErrorCode::AppSecretRejected, message);
        reply.body["link"] = record.trust.status(self.store.held_count()?);
        Ok(reply)
    }

    /// Holds a close Kustomer has not vouched for: `202 held`, or `429 held_closes_full` when
    /// [`trust::MAX_HELD`] are held.
    pub(super) fn hold(&self, close: Schedule) -> Result<Reply, String> {
        let now = self.clock.now_ms();
        let held = HeldClose {
            conversation_id: close.conversation_id,
            closed_at_ms: close.closed_at_ms,
            event_id: close.event_id,
            held_ms: now,
        };
        if !self.store.hold(&held)? {
            let mut record = self.store.org()?;
            record.trust.refused += 1;
            self.store.put_org(&record)?;
            return Ok(Reply::error(
                ErrorCode::HeldClosesFull,
                format!(
                    "{} closes are held already, waiting for the app to be linked. {}",
                    trust::MAX_HELD,
                    record.trust.refusal().fix()
                ),
            ));
        }
        // The alarm schedules it as soon as the org is linked, or drops it after 7 days.
        self.alarm.forget();
        let fix = self.store.org()?.trust.refusal().fix();
        Ok(Reply::json(
            202,
            json!({
                "status": "held",
                "conversationId": held.conversation_id,
                "message": format!("Held: Kustomer's settings do not vouch for this call's app secret. It is scheduled with the org's saved settings once the app is linked, or dropped after {} days. {fix}", trust::HELD_DAYS),
                "expiresAt": iso(HeldClose::expires_ms(now)),
            }),
        ))
    }

    /// When the alarm should next act on held closes: now when the org is linked and has
    /// settings to send with, else when the oldest would be dropped.
    pub(super) fn next_release(&self) -> Result<Option<i64>, String> {
        let Some(oldest) = self.store.held_oldest()? else {
            return Ok(None);
        };
        let record = self.store.org()?;
        Ok(Some(if releasable(&record) && !self.kept.held_blocked() {
            oldest
        } else {
            HeldClose::expires_ms(oldest)
        }))
    }

    /// Drops held closes past [`trust::HELD_DAYS`] (counted), and schedules up to
    /// [`trust::RELEASE_BATCH`] others with the org's trusted settings when it is linked; the
    /// usual check against Kustomer's data at send time decides whether each survey goes.
    pub(super) fn release_held(&self, settings: Option<&Settings>) -> Result<(), String> {
        let now = self.clock.now_ms();
        let expire_before = now - trust::HELD_DAYS * 86_400_000;
        let expired = self.store.expire_held(expire_before)?;
        let mut record = self.store.org()?;
        if expired > 0 {
            record.trust.expired += expired as u64;
            self.store.put_org(&record)?;
        }
        if !releasable(&record) {
            return Ok(());
        }
        let (Some(settings), Some(org)) = (settings, record.org.clone()) else {
            // Settings stored but not usable now: held closes wait for the next ones kept.
            self.kept.block_held();
            return Ok(());
        };
        for held in self.store.take_held(trust::RELEASE_BATCH)? {
            let close = Schedule {
                org: org.clone(),
                conversation_id: held.conversation_id,
                closed_at_ms: held.closed_at_ms,
                send_at_ms: held
                    .closed_at_ms
                    .saturating_add(i64::from(settings.seconds_until_send) * 1000),
                event_id: held.event_id,
                customer_id: None, // a held close keeps no customer: the send reads it
            };
            let first = job::first(close.clone(), now);
            if self.store.insert_new(&first)? {
                continue;
            }
            let existing = self.store.get(&close.conversation_id)?;
            let upsert = job::upsert(existing.as_ref(), close, settings.resurvey_after_days, now);
            if let Upsert::Scheduled(job) | Upsert::AlreadySurveyed(job, _) = upsert {
                self.store.put(&job)?;
            }
        }
        Ok(())
    }

    /// Check connection's link check: asks Kustomer now, and says whether it vouches for the
    /// caller's app secret, in words that name the fix.
    pub(super) async fn link<M: Transport>(
        &self,
        caller: &Caller,
        transport: &M,
    ) -> Result<Reply, String> {
        self.verify(caller, true, transport).await?;
        let record = self.store.org()?;
        let vouched = record.trust.vouches_for(&caller.fingerprint);
        let mut status = record.trust.status(self.store.held_count()?);
        let code = (!vouched).then(|| record.trust.refusal());
        status["ok"] = json!(vouched);
        status["linked"] = json!(vouched);
        match code {
            None => {
                status["message"] = json!("The app is linked: Kustomer's settings vouch for the app secret its workflow and pages send.");
            }
            Some(code) => {
                let message = match code {
                    TrustCode::NotLinked => "Kustomer holds no fingerprint of the app secret: the edge cannot tell the app's own calls from others.",
                    TrustCode::SecretMismatch => "The app secret Kustomer fills into the app's calls is not the one whose fingerprint is saved in the app's settings.",
                    _ => record.trust.problem.as_ref().map_or("", |p| p.message.as_str()),
                };
                status["code"] = json!(code);
                status["message"] = json!(message);
                status["fix"] = json!(code.fix());
            }
        }
        Ok(Reply::json(200, status))
    }
}

/// A gate calls wait at while one of them asks Kustomer for the app's link (single-threaded:
/// cells and wakers, no locks).
#[derive(Default)]
pub(super) struct Gate {
    busy: Cell<bool>,
    waiting: RefCell<Vec<Waker>>,
}

impl Gate {
    fn is_busy(&self) -> bool {
        self.busy.get()
    }

    /// Marks the gate busy until the guard is dropped (the read answered, or was cancelled),
    /// which wakes every call waiting.
    fn open(&self) -> impl Drop + '_ {
        self.busy.set(true);
        Opened(self)
    }

    /// Resolves once the gate is no longer busy.
    fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.busy.get() {
                self.waiting.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }
}

struct Opened<'a>(&'a Gate);

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
        for waker in self.0.waiting.take() {
            waker.wake();
        }
    }
}

/// Whether held closes may be scheduled: Kustomer vouches for a secret (a fingerprint is
/// known) and the org has trusted settings to send with.
fn releasable(record: &OrgRecord) -> bool {
    record.trust.fingerprint.is_some() && record.sealed_settings.is_some()
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_call_waits_while_the_link_is_read_and_is_woken_after() {
        let gate = Gate::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(
            pin!(gate.wait()).poll(&mut cx).is_ready(),
            "not busy: no wait"
        );
        let open = gate.open();
        assert!(gate.is_busy());
        let mut waiting = pin!(gate.wait());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        drop(open);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken when the read is over"
        );
        assert_eq!(waiting.as_mut().poll(&mut cx), Poll::Ready(()));
        assert!(!gate.is_busy());
    }
}
