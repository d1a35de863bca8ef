//! Cloudflare's cap on the outbound calls one invocation may make (its "subrequests": 50 on
//! the Free plan, 1,000 or 10,000 on Paid; past it `fetch` throws). Every invocation of the
//! org's Durable Object counts its calls in an [`Allowance`] and makes them through
//! [`Counted`]: an alarm run takes a job only while the allowance covers the job's worst case
//! ([`PER_JOB`]), and a request that would go over it answers
//! [`ErrorCode::SubrequestBudget`](super::codes::ErrorCode::SubrequestBudget).

use super::budget::MAX_CALLS_PER_SURVEY;
use super::codes::ErrorCode;
use super::{Reply, Request, Response, SendError, Transport};
use std::cell::Cell;

/// The default cap: the Paid plan's in the older pages (the current ones say 10,000, the Free
/// plan 50).
pub const DEFAULT_PER_INVOCATION: u32 = 1000;

/// The most calls one survey's attempt makes: Kustomer's conversation, customer, agent (not
/// cached), tag names (not cached) and brand (the brand map set), then Stella's `POST`.
pub const PER_JOB: u32 = MAX_CALLS_PER_SURVEY + 1;

/// The most `fetch`es one request to the gateway (the Worker's own `fetch`) makes: Check
/// connection's (the key's org, the key itself, the Stella key probe, and
/// [`MAX_USER_PAGES`](super::roster::MAX_USER_PAGES) pages of Kustomer users). Far under the Free
/// plan's 50, so the gateway counts none; its Durable Object calls (at most 4: two rate-limit
/// buckets, the link and the roster) come under Cloudflare's own 1,000.
pub const GATEWAY_MOST_CALLS: u32 = 3 + super::roster::MAX_USER_PAGES;

/// The least cap the edge runs with: one job's worst case and one Data Return page (the lookup
/// of an attempt whose answer was lost), so that every run moves on.
pub const MIN_PER_INVOCATION: u32 = PER_JOB + 1;

/// One invocation's outbound calls: how many it may make and has made.
#[derive(Debug)]
pub struct Allowance {
    limit: u32,
    used: Cell<u32>,
    refused: Cell<u32>,
    most: Cell<u32>,
}

impl Allowance {
    /// A fresh allowance of `limit` calls.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            used: Cell::new(0),
            refused: Cell::new(0),
            most: Cell::new(0),
        }
    }

    /// Starts the next invocation (an alarm run) afresh; the most any used is kept.
    pub fn restart(&self) {
        self.used.set(0);
        self.refused.set(0);
    }

    /// Calls made in this invocation.
    pub fn used(&self) -> u32 {
        self.used.get()
    }

    /// Calls still allowed.
    pub fn left(&self) -> u32 {
        self.limit.saturating_sub(self.used.get())
    }

    /// Calls refused because none were left.
    pub fn refused(&self) -> u32 {
        self.refused.get()
    }

    /// The most calls any invocation since this allowance was made used.
    pub fn most(&self) -> u32 {
        self.most.get()
    }

    /// Whole jobs the calls left cover, keeping `reserved` calls aside.
    pub fn jobs(&self, reserved: u32) -> usize {
        (self.left().saturating_sub(reserved) / PER_JOB) as usize
    }

    /// Counts a call if one is left.
    fn take(&self) -> bool {
        if self.left() == 0 {
            self.refused.set(self.refused.get().saturating_add(1));
            return false;
        }
        let used = self.used.get() + 1;
        self.used.set(used);
        self.most.set(self.most.get().max(used));
        true
    }

    /// A request's reply, or the refusal when a call it needed would have gone over the cap:
    /// what the request did without that call is not an answer.
    pub fn checked(&self, reply: Reply) -> Reply {
        if self.refused() == 0 {
            return reply;
        }
        Reply::error(
            ErrorCode::SubrequestBudget,
            format!(
                "This request needs more than the {} outbound calls one invocation may make \
                 (SUBREQUESTS_PER_INVOCATION, Cloudflare's subrequest limit): nothing more was \
                 asked. Try again; if it keeps failing, raise the limit to the plan's.",
                self.limit
            ),
        )
    }
}

/// A transport that makes a call only while the invocation's [`Allowance`] has one left;
/// else [`SendError::OverBudget`], and nothing is sent.
pub struct Counted<'a, T> {
    /// The real transport.
    pub inner: &'a T,
    /// The invocation's calls.
    pub calls: &'a Allowance,
}

impl<T: Transport> Transport for Counted<'_, T> {
    async fn send(&self, request: Request) -> Result<Response, SendError> {
        if !self.calls.take() {
            return Err(SendError::OverBudget);
        }
        self.inner.send(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_never_reaches_the_least_cap() {
        const { assert!(GATEWAY_MOST_CALLS <= 50, "the Free plan's cap") };
        assert_eq!(GATEWAY_MOST_CALLS, 8);
    }

    #[test]
    fn an_allowance_counts_refuses_past_its_limit_and_restarts() {
        let calls = Allowance::new(MIN_PER_INVOCATION);
        assert_eq!((calls.jobs(0), calls.jobs(1), calls.jobs(2)), (1, 1, 0));
        for _ in 0..MIN_PER_INVOCATION {
            assert!(calls.take());
        }
        assert!(!calls.take());
        assert_eq!((calls.used(), calls.left(), calls.refused()), (7, 0, 1));
        let reply = calls.checked(Reply::json(200, serde_json::json!({})));
        assert_eq!(reply.status, 503);
        assert_eq!(reply.body["error"]["code"], "subrequest_budget");
        calls.restart();
        assert_eq!((calls.used(), calls.refused(), calls.most()), (0, 0, 7));
        let ok = calls.checked(Reply::json(200, serde_json::json!({"ok": true})));
        assert_eq!(ok.status, 200);
    }
}
