//! Forgetting a customer and the org's audit list: calls from the app's settings page, scoped
//! to the org of the caller's Kustomer key and its app secret, like the delivery log's.

use super::{app_secret, too_large, Gateway, Incoming, Router};
use crate::edge::codes::ErrorCode;
use crate::edge::scheduler::Command;
use crate::edge::{seal, Reply, Transport};
use crate::json::{self, At};

/// The most a forget's body (`{"customer": "…"}`) may weigh.
pub const MAX_FORGET_BODY_BYTES: usize = 1024;
/// Forgets allowed per Kustomer key, and per org, in a minute: each may change hundreds of
/// entries in the org's one scheduler.
pub const FORGETS_PER_MINUTE: u32 = 10;

impl<T: Transport, R: Router> Gateway<T, R> {
    /// `POST /v1/customers/forget` with `{"customer": "<e-mail or Kustomer customer id>"}`.
    pub(super) async fn forget(&self, r: &Incoming<'_>) -> Reply {
        if r.body.len() > MAX_FORGET_BODY_BYTES {
            return too_large(MAX_FORGET_BODY_BYTES);
        }
        let fingerprint = match app_secret(r, &self.last_secret) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        let customer = match forget_body(r.body) {
            Ok(customer) => customer,
            Err(reply) => return reply,
        };
        let caller = match self.caller(r, fingerprint).await {
            Ok(caller) => caller,
            Err(reply) => return reply,
        };
        let key = (r.header)("x-kustomer-api-key").unwrap_or_default();
        let key = &seal::digest(key.trim())[..32];
        let buckets = [
            (format!("forget-key:{key}"), FORGETS_PER_MINUTE),
            (format!("forget-org:{}", caller.org), FORGETS_PER_MINUTE),
        ];
        if let Some(reply) = self.count_each(&buckets, "forgets", r.now_ms).await {
            return reply;
        }
        (self.forward_for(caller, |caller| Command::Forget { customer, caller })).await
    }

    /// `GET /v1/audit`: the org's audit list, newest first.
    pub(super) async fn audit(&self, r: &Incoming<'_>) -> Reply {
        let fingerprint = match app_secret(r, &self.last_secret) {
            Ok(digest) => digest,
            Err(reply) => return reply,
        };
        let caller = match self.caller(r, fingerprint).await {
            Ok(caller) => caller,
            Err(reply) => return reply,
        };
        let bucket = (
            format!("audit-org:{}", caller.org),
            self.config.log_reads_per_org_per_minute,
        );
        if let Some(reply) = self.count_each(&[bucket], "audit reads", r.now_ms).await {
            return reply;
        }
        (self.forward_for(caller, |caller| Command::Audit { caller })).await
    }
}

/// The customer a forget's body names, checked for shape (the scheduler reads it).
fn forget_body(body: &str) -> Result<String, Reply> {
    let refuse = Reply::from;
    let body = json::from_json(body).map_err(refuse)?;
    let at = At::named(&body, "body");
    at.object().map_err(refuse)?;
    let customer = at.get("customer").string().map_err(refuse)?;
    if crate::edge::forget::Who::parse(&customer).is_err() {
        return Err(Reply::error(
            ErrorCode::InvalidId,
            "body.customer is neither an e-mail address nor a Kustomer customer id.",
        ));
    }
    Ok(customer)
}
