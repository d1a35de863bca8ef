//! In-memory fakes for the edge: a fake Kustomer + Stella behind [`Transport`], an in-memory
//! [`Store`], a settable [`Clock`], and a [`Router`] that keeps one [`Scheduler`] per org and
//! fires their alarms. [`Edge`] wires them to a real [`Gateway`] the way workerd does.
//!
//! Included from `tests/edge.rs` (`#[path]`), so `crate::support` is that test's helpers.
#![allow(dead_code)]

use crate::support::{feedback_request_schema, fixture};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use stella_connect::edge::deliveries::{DeliveryQuery, Tally, TallyKey, TallyPlan};
use stella_connect::edge::gateway::{Gateway, Incoming, Router, Step, HEADERS};
use stella_connect::edge::job::{Job, JobState, RetryPolicy};
use stella_connect::edge::residency::Place;
use stella_connect::edge::retention::Mark;
use stella_connect::edge::scheduler::{AlarmChange, Clock, Command, Scheduler};
use stella_connect::edge::seal::Sealer;
use stella_connect::edge::trust::{self, HeldClose, MAX_HELD};
use stella_connect::edge::{
    setting_header, Config, OrgRecord, Reply, Request, Response, SendError, Store, Transport,
    MAX_URL_BYTES,
};
use stella_connect::timestamp;

/// Runs a future whose I/O is already resolved (test fakes) to completion on the host.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The fixtures' org.
pub const ORG: &str = "5f0c1b2a3d4e5f6a7b8c9d0e";
/// Another org, with its own key.
pub const OTHER_ORG: &str = "6a1d2c3b4e5f6a7b8c9d0eff";
/// The fixtures' conversation.
pub const CONVERSATION: &str = "6560e0f1a2b3c4d5e6f70819";
/// Where the fake Kustomer answers.
pub const KUSTOMER_API: &str = "https://api.kustomerapp.com";
/// Kustomer's EU API: the same org data, answered the same way.
pub const KUSTOMER_EU_API: &str = "https://api.prod2.kustomerapp.com";
/// Where the fake Stella answers.
pub const STELLA_API: &str = "https://api.stellaconnect.net";
/// The org's Kustomer key.
pub const KUSTOMER_KEY: &str = "kustomer-live-key-7Hq2Zx";
/// The other org's Kustomer key.
pub const OTHER_ORG_KEY: &str = "kustomer-other-org-key-Pw4Ld9";
/// The org's Stella key.
pub const STELLA_KEY: &str = "stella-live-key-Bn5Rt8";
/// An org admin's Kustomer key (role org.admin.apps), for resetting the app secret.
pub const ADMIN_KEY: &str = "kustomer-admin-key-Jc6Tn1";
/// The org's app secret, which the app's workflow and pages carry.
pub const APP_SECRET: &str = "app-secret-Vd3Kw9Lm2Qx8Rt5Yp1";
/// The org's Stella API secret, which signs the JWT of Agent Connect's read APIs.
pub const STELLA_SECRET: &str = "stella-api-secret-Hm7Wq4Zt2Lp";
/// Every credential a reply or a log line must never show.
pub const SECRETS: [&str; 5] = [
    KUSTOMER_KEY,
    OTHER_ORG_KEY,
    STELLA_KEY,
    APP_SECRET,
    STELLA_SECRET,
];
/// The deployment's settings key in these tests (base64 of 32 bytes).
pub const SETTINGS_KEY: &str = "dGVzdC1zZXR0aW5ncy1rZXktMDEyMzQ1Njc4OWFiY2Q=";

/// The sealer the test schedulers use.
pub fn test_sealer() -> Sealer {
    Sealer::from_base64(&[SETTINGS_KEY]).expect("test key")
}

/// The roles Kustomer reports for the keys.
const ROLES: [&str; 4] = [
    "org.permission.conversation.read",
    "org.permission.customer.read",
    "org.permission.user.read",
    "org.permission.tag.read",
];

/// The fixture's close time, in ms.
pub fn closed_ms() -> i64 {
    ms("2026-11-20T14:03:11.401Z")
}

/// An RFC 3339 time in ms.
pub fn ms(text: &str) -> i64 {
    timestamp::to_millis(timestamp::parse(text).unwrap_or_else(|| panic!("not a time: {text}")))
}

/// ms as Kustomer writes times.
pub fn iso(ms: i64) -> String {
    timestamp::format(timestamp::from_millis(ms as f64))
}

/// A field of a reply or delivery holding a time, in ms.
pub fn ms_of(value: &Value) -> i64 {
    ms(value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}")))
}

/// What a faulty server does instead of answering normally.
#[derive(Debug, Clone)]
pub enum Fault {
    /// An HTTP answer.
    Status {
        /// Status code.
        status: u16,
        /// Body text.
        body: String,
        /// `Retry-After`.
        retry_after: Option<String>,
        /// `x-ratelimit-reset`.
        ratelimit_reset: Option<String>,
    },
    /// No answer (connection refused, timeout).
    Network(String),
    /// The process running the edge dies during the call (a panic, caught by the test).
    Crash,
}

impl Fault {
    /// An answer with a status and a body.
    pub fn status(status: u16, body: &str) -> Self {
        Self::Status {
            status,
            body: body.to_owned(),
            retry_after: None,
            ratelimit_reset: None,
        }
    }

    /// With `Retry-After`.
    pub fn retry_after(self, value: &str) -> Self {
        match self {
            Self::Status {
                status,
                body,
                ratelimit_reset,
                ..
            } => Self::Status {
                status,
                body,
                retry_after: Some(value.to_owned()),
                ratelimit_reset,
            },
            other => other,
        }
    }

    /// With `x-ratelimit-reset`.
    pub fn ratelimit_reset(self, value: &str) -> Self {
        match self {
            Self::Status {
                status,
                body,
                retry_after,
                ..
            } => Self::Status {
                status,
                body,
                retry_after,
                ratelimit_reset: Some(value.to_owned()),
            },
            other => other,
        }
    }

    fn answer(&self, url: &str) -> Result<Response, String> {
        match self {
            Self::Status {
                status,
                body,
                retry_after,
                ratelimit_reset,
            } => {
                let mut response = Response::new(*status, body.clone());
                if let Some(v) = retry_after {
                    response = response.with_header("retry-after", v.clone());
                }
                if let Some(v) = ratelimit_reset {
                    response = response.with_header("x-ratelimit-reset", v.clone());
                }
                Ok(response)
            }
            Self::Network(message) => Err(message.clone()),
            Self::Crash => panic!("simulated crash: the process died while calling {url}"),
        }
    }
}

fn ok(body: Value) -> Result<Response, String> {
    Ok(Response::new(200, body.to_string()))
}

fn kustomer_error(status: u16, code: &str, title: &str) -> Result<Response, String> {
    let body = json!({"errors": [{"status": status, "code": code, "title": title}]});
    Ok(Response::new(status, body.to_string()))
}

fn plain(status: u16, text: &str) -> Result<Response, String> {
    Ok(Response::new(status, text))
}

/// `%XX` decoding, for ids in URL paths.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("a UTF-8 path")
}

/// The outside world: Kustomer's REST API for one org and Stella's request endpoint.
pub struct World {
    conversations: RefCell<BTreeMap<String, Value>>,
    customers: RefCell<BTreeMap<String, Value>>,
    users: RefCell<BTreeMap<String, Value>>,
    /// Tag resources (`{type, id, attributes}`) by id.
    tags: RefCell<BTreeMap<String, Value>>,
    /// Brand documents (`GET /v1/brands/{id}` answers) by id; none unless a test adds one.
    brands: RefCell<BTreeMap<String, Value>>,
    /// Kustomer key → org.
    keys: BTreeMap<String, String>,
    /// Every request, as the transport received it (real credentials included).
    requests: RefCell<Vec<Request>>,
    /// Calls per route: `conversation`, `customer`, `user`, `tags`, `token`, `stella`.
    calls: RefCell<BTreeMap<&'static str, usize>>,
    /// The ids asked for by each `GET /v1/tags/…`.
    tag_queries: RefCell<Vec<Vec<String>>>,
    /// Bodies Stella accepted.
    accepted: RefCell<Vec<Value>>,
    stella_faults: RefCell<VecDeque<Fault>>,
    kustomer_faults: RefCell<VecDeque<Fault>>,
    /// Answered to every Stella request while set and the queue is empty.
    stella_outage: RefCell<Option<Fault>>,
    /// Run once, during the next Stella request: what happens meanwhile elsewhere (a close
    /// delivered while an attempt waits on Stella).
    during_stella: RefCell<Option<Box<dyn FnOnce()>>>,
    /// Kustomer's per-org API budget, when enforced ([`World::enforce_budget`]).
    budget: RefCell<Option<KustomerBudget>>,
    /// Agent Connect's Data Return and Kustomer's outcome writes ([`DataReturn`]).
    data_return: RefCell<DataReturn>,
    /// The app secret's fingerprint each org's settings page saved (the app's link).
    links: RefCell<BTreeMap<String, String>>,
    /// Whether `GET /v1/settings/…` is refused (the key lacks the role).
    settings_refused: Cell<bool>,
    /// Kustomer's answers read late, when set ([`World::answer_kustomer_late`]).
    late: RefCell<Option<LateAnswers>>,
    /// Customers deleted ([`World::delete_customer`]): what the customer search finds with
    /// `includeDeleted`, each `{id, attributes: {deleted, emails, updatedAt}}`.
    deleted: RefCell<Vec<Value>>,
    /// The bodies and URLs of the customer searches received.
    pub searches: RefCell<Vec<(String, Value)>>,
    /// Answered to the next customer search instead of the list, when set.
    pub search_fault: RefCell<Option<Fault>>,
}

/// Kustomer's answers read late: Kustomer counts each call and writes its budget headers when
/// the call arrives, and the edge reads the answer `min_ms..=max_ms` later (drawn from a seed),
/// as when a busy instance gets to its answers late. Each answer read runs `meanwhile`.
pub struct LateAnswers {
    clock: Rc<Cell<i64>>,
    min_ms: i64,
    max_ms: i64,
    state: u64,
    meanwhile: Option<Box<dyn FnMut()>>,
    /// How late each answer was read, ms.
    pub delays: Vec<i64>,
}

/// An org's API budget as Kustomer keeps it: `limit` calls per fixed window, 429 beyond, and
/// `x-ratelimit-*` on every answer.
pub struct KustomerBudget {
    limit: u32,
    window_ms: i64,
    clock: Rc<Cell<i64>>,
    /// Calls per window (numbered from the epoch), and 429s answered.
    pub windows: BTreeMap<i64, u32>,
    /// Calls refused for the budget.
    pub refused: u32,
}

impl World {
    /// The fixtures' org: one conversation, its customer, its agent and its two tags.
    pub fn from_fixtures() -> Rc<Self> {
        let by_id = |doc: Value| {
            let id = doc["data"]["id"].as_str().unwrap().to_owned();
            (id, doc)
        };
        let tags = fixture("tags")["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["id"].as_str().unwrap().to_owned(), t.clone()))
            .collect();
        Rc::new(Self {
            conversations: RefCell::new([by_id(fixture("conversation"))].into()),
            customers: RefCell::new([by_id(fixture("customer"))].into()),
            users: RefCell::new([by_id(fixture("user"))].into()),
            tags: RefCell::new(tags),
            brands: RefCell::default(),
            keys: [
                (KUSTOMER_KEY.to_owned(), ORG.to_owned()),
                (OTHER_ORG_KEY.to_owned(), OTHER_ORG.to_owned()),
                (ADMIN_KEY.to_owned(), ORG.to_owned()),
            ]
            .into(),
            requests: RefCell::default(),
            calls: RefCell::default(),
            tag_queries: RefCell::default(),
            accepted: RefCell::default(),
            stella_faults: RefCell::default(),
            kustomer_faults: RefCell::default(),
            stella_outage: RefCell::default(),
            during_stella: RefCell::default(),
            budget: RefCell::default(),
            data_return: RefCell::default(),
            links: RefCell::new([(ORG.to_owned(), trust::fingerprint(APP_SECRET))].into()),
            settings_refused: Cell::new(false),
            late: RefCell::default(),
            deleted: RefCell::default(),
            searches: RefCell::default(),
            search_fault: RefCell::default(),
        })
    }

    /// Saves `ORG`'s app link as the settings page does (the fingerprint of `secret`), or
    /// removes it.
    pub fn link(&self, secret: Option<&str>) {
        self.link_org(ORG, secret);
    }

    /// [`Self::link`] for any org.
    pub fn link_org(&self, org: &str, secret: Option<&str>) {
        let mut links = self.links.borrow_mut();
        match secret {
            Some(secret) => links.insert(org.to_owned(), trust::fingerprint(secret)),
            None => links.remove(org),
        };
    }

    /// Makes Kustomer refuse to read the app's settings (the key lacks the role), or not.
    pub fn refuse_settings_reads(&self, refuse: bool) {
        self.settings_refused.set(refuse);
    }

    /// Changes a conversation as Kustomer holds it.
    pub fn edit_conversation(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        edit(
            self.conversations
                .borrow_mut()
                .get_mut(id)
                .unwrap_or_else(|| panic!("no conversation {id}")),
        );
    }

    /// Adds a brand, named `name`, as `GET /v1/brands/{id}` answers it.
    pub fn add_brand(&self, id: &str, name: &str) {
        let doc = json!({"data": {"type": "brand", "id": id, "attributes": {"name": name}}});
        self.brands.borrow_mut().insert(id.to_owned(), doc);
    }

    /// Sets a conversation's status (`open`, `done`, …).
    pub fn set_status(&self, id: &str, status: &str) {
        self.edit_conversation(id, |c| c["data"]["attributes"]["status"] = json!(status));
    }

    /// Adds (or replaces) a conversation document.
    pub fn add_conversation(&self, doc: Value) {
        let id = doc["data"]["id"].as_str().unwrap().to_owned();
        self.conversations.borrow_mut().insert(id, doc);
    }

    /// Deletes a customer as Kustomer's `DELETE /v1/customers/{id}` does, at `now_ms`: gone from
    /// `GET`, found by the search with `includeDeleted` (changed at `now_ms`).
    pub fn delete_customer(&self, id: &str, now_ms: i64) {
        let doc = self.customers.borrow_mut().remove(id);
        let emails = doc.map_or(json!([]), |d| d["data"]["attributes"]["emails"].clone());
        let gone = json!({"type": "customer", "id": id, "attributes": {"deleted": true, "emails": emails, "updatedAt": iso(now_ms)}});
        self.deleted.borrow_mut().push(gone);
    }

    /// Adds `n` customers changed at `now_ms` and deleted (none of them in the org's log).
    pub fn delete_many(&self, n: usize, now_ms: i64) {
        for i in 0..n {
            let gone = json!({"type": "customer", "id": format!("gone-{i}"), "attributes": {"deleted": true, "updatedAt": iso(now_ms)}});
            self.deleted.borrow_mut().push(gone);
        }
    }

    /// Answers `POST /v1/customers/search` as the edge guesses Kustomer does: the deleted
    /// customers changed within the body's `customer_updated_at` range, a page at a time.
    fn customer_search(&self, r: &Request, path: &str) -> Result<Response, String> {
        self.count("customer search");
        let body: Value = serde_json::from_str(r.body.as_deref().unwrap_or("{}")).unwrap();
        self.searches
            .borrow_mut()
            .push((r.url.clone(), body.clone()));
        let budget = self.spend_budget();
        if let Some(Ok(refused)) = budget.filter(|b| matches!(b, Ok(r) if r.status == 429)) {
            return Ok(refused);
        }
        if let Some(fault) = self.search_fault.borrow_mut().take() {
            return fault.answer(&r.url);
        }
        assert_eq!(body["includeDeleted"], true, "{body}");
        assert_eq!(body["queryContext"], "customer", "{body}");
        let key =
            header(r, "authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
        if key.and_then(|k| self.keys.get(&k).cloned()).as_deref() != Some(ORG) {
            return ok(json!({"data": []}));
        }
        let bound = |op: &str| {
            (body["and"].as_array().unwrap().iter())
                .find_map(|c| c["customer_updated_at"][op].as_str().map(ms))
        };
        let (gte, lte) = (bound("gte").unwrap(), bound("lte").unwrap());
        let param = |name: &str| -> usize {
            let query = path.split_once('?').map_or("", |(_, q)| q);
            (query.split('&'))
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        let (page, size) = (param("page"), param("pageSize"));
        let found: Vec<Value> = (self.deleted.borrow().iter())
            .filter(|d| {
                let at = ms(d["attributes"]["updatedAt"].as_str().unwrap());
                gte <= at && at <= lte
            })
            .skip((page - 1) * size)
            .take(size)
            .cloned()
            .collect();
        ok(json!({ "data": found }))
    }

    /// Adds (or replaces) a customer document.
    pub fn add_customer(&self, doc: Value) {
        let id = doc["data"]["id"].as_str().unwrap().to_owned();
        self.customers.borrow_mut().insert(id, doc);
    }

    /// Changes a customer as Kustomer holds it.
    pub fn edit_customer(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        edit(
            self.customers
                .borrow_mut()
                .get_mut(id)
                .unwrap_or_else(|| panic!("no customer {id}")),
        );
    }

    /// The next Stella request gets `fault` (in order, one per request).
    pub fn stella_fault(&self, fault: Fault) {
        self.stella_faults.borrow_mut().push_back(fault);
    }

    /// The next Kustomer request, whatever its route, gets `fault`.
    pub fn enforce_budget(&self, limit: u32, window_ms: i64, clock: Rc<Cell<i64>>) {
        *self.budget.borrow_mut() = Some(KustomerBudget {
            limit,
            window_ms,
            clock,
            windows: BTreeMap::new(),
            refused: 0,
        });
    }

    /// The org's other integrations spend `calls` of the budget's current window.
    pub fn spend_budget_elsewhere(&self, calls: u32) {
        for _ in 0..calls {
            self.spend_budget();
        }
    }

    /// Calls per budget window so far, and the calls refused for the budget.
    pub fn budget_use(&self) -> (Vec<u32>, u32) {
        let budget = self.budget.borrow();
        let b = budget.as_ref().expect("a budget");
        (b.windows.values().copied().collect(), b.refused)
    }

    /// The budget's headers for a call now, or its 429.
    fn spend_budget(&self) -> Option<Result<Response, String>> {
        let mut budget = self.budget.borrow_mut();
        let b = budget.as_mut()?;
        let now = b.clock.get();
        let window = now.div_euclid(b.window_ms);
        let used = b.windows.entry(window).or_default();
        *used += 1;
        let over = *used > b.limit;
        let remaining = b.limit.saturating_sub(*used);
        let reset = ((window + 1) * b.window_ms - now + 999) / 1000;
        if over {
            b.refused += 1;
        }
        let with = |r: Response| {
            r.with_header("x-ratelimit-limit", b.limit.to_string())
                .with_header("x-ratelimit-remaining", remaining.to_string())
                .with_header("x-ratelimit-reset", reset.to_string())
        };
        Some(if over {
            Ok(with(Response::new(429, "Too Many Requests")))
        } else {
            Ok(with(Response::new(200, "")))
        })
    }

    /// From now on every Kustomer answer is read `min_ms..=max_ms` after Kustomer counted its
    /// call (the clock moves on while it waits), and `meanwhile` runs as each one is read.
    pub fn answer_kustomer_late(
        &self,
        clock: Rc<Cell<i64>>,
        (min_ms, max_ms): (i64, i64),
        seed: u64,
        meanwhile: impl FnMut() + 'static,
    ) {
        *self.late.borrow_mut() = Some(LateAnswers {
            clock,
            min_ms,
            max_ms,
            state: seed,
            meanwhile: Some(Box::new(meanwhile)),
            delays: Vec::new(),
        });
    }

    /// How late each Kustomer answer was read, ms.
    pub fn late_delays(&self) -> Vec<i64> {
        (self.late.borrow().as_ref()).map_or_else(Vec::new, |l| l.delays.clone())
    }

    /// When a Kustomer answer given now is read, if answers are read late: (now, then).
    fn late_until(&self, url: &str) -> Option<(i64, i64)> {
        let mut late = self.late.borrow_mut();
        let l = late.as_mut().filter(|_| url.starts_with(KUSTOMER_API))?;
        // A linear congruential generator: the same delays on every run.
        l.state = l
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let span = (l.max_ms - l.min_ms + 1).max(1) as u64;
        let delay = l.min_ms + ((l.state >> 33) % span) as i64;
        let now = l.clock.get();
        Some((now, now + delay))
    }

    /// A late answer, given at `given`, is read: the clock is at `until` at least, and
    /// `meanwhile` runs.
    fn read_late(&self, given: i64, until: i64) {
        let meanwhile = {
            let mut late = self.late.borrow_mut();
            let Some(l) = late.as_mut() else { return };
            let now = l.clock.get().max(until);
            l.delays.push(now - given);
            l.clock.set(now);
            l.meanwhile.take()
        };
        if let Some(mut meanwhile) = meanwhile {
            meanwhile();
            if let Some(l) = self.late.borrow_mut().as_mut() {
                l.meanwhile = Some(meanwhile);
            }
        }
    }

    pub fn kustomer_fault(&self, fault: Fault) {
        self.kustomer_faults.borrow_mut().push_back(fault);
    }

    /// Runs `meanwhile` during the next Stella request, before Stella answers it.
    pub fn during_next_stella_request(&self, meanwhile: impl FnOnce() + 'static) {
        *self.during_stella.borrow_mut() = Some(Box::new(meanwhile));
    }

    /// Stella answers `fault` to everything until cleared.
    pub fn stella_outage(&self, fault: Option<Fault>) {
        *self.stella_outage.borrow_mut() = fault;
    }

    /// Calls made to a route.
    pub fn calls(&self, route: &str) -> usize {
        self.calls.borrow().get(route).copied().unwrap_or(0)
    }

    /// Calls to Kustomer's data routes (not the key check).
    pub fn kustomer_data_calls(&self) -> usize {
        ["conversation", "customer", "user", "tags"]
            .iter()
            .map(|r| self.calls(r))
            .sum()
    }

    /// Every Kustomer call, the key check included.
    pub fn kustomer_calls(&self) -> usize {
        self.kustomer_data_calls() + self.calls("token")
    }

    /// Stella requests received (accepted or not).
    pub fn stella_attempts(&self) -> usize {
        self.calls("stella")
    }

    /// Bodies Stella accepted, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.accepted.borrow().clone()
    }

    /// The ids each tags call asked for.
    pub fn tag_queries(&self) -> Vec<Vec<String>> {
        self.tag_queries.borrow().clone()
    }

    /// Every request the transport received.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.borrow().clone()
    }

    fn answer(&self, r: &Request) -> Result<Response, String> {
        self.requests.borrow_mut().push(r.clone());
        if let Some(path) = r.url.strip_prefix(STELLA_API) {
            let meanwhile = self.during_stella.borrow_mut().take();
            if let Some(meanwhile) = meanwhile {
                meanwhile();
            }
            return self.stamped(self.stella(r, path));
        }
        let kustomer = (r.url.strip_prefix(KUSTOMER_API)).or(r.url.strip_prefix(KUSTOMER_EU_API));
        if let Some(path) = kustomer {
            return self.kustomer(r, path);
        }
        panic!("the edge called an unknown host: {}", r.url);
    }

    fn count(&self, route: &'static str) {
        *self.calls.borrow_mut().entry(route).or_default() += 1;
    }

    fn kustomer(&self, r: &Request, path: &str) -> Result<Response, String> {
        if r.method == "PATCH" {
            return self.kustomer_patch(r, path);
        }
        if r.method == "POST" && path.starts_with("/v1/customers/search?") {
            return self.customer_search(r, path);
        }
        assert_eq!(r.method, "GET", "Kustomer is only read: {r:?}");
        assert!(r.body.is_none(), "a GET with a body: {r:?}");
        assert_eq!(header(r, "accept").as_deref(), Some("application/json"));
        let segments: Vec<&str> = path
            .strip_prefix("/v1/")
            .unwrap_or_else(|| panic!("not a v1 path: {}", r.url))
            .split('/')
            .collect();
        let route = match segments.as_slice() {
            ["conversations", _] => "conversation",
            ["customers", _] => "customer",
            ["users", _] => "user",
            ["tags", _] => "tags",
            ["brands", _] => "brand",
            ["auth", "tokens", "current"] => "token",
            ["settings", "stella_connect", "default", "appSecretFingerprint"] => "setting",
            // A private app's namespaced name: this world's app is not namespaced.
            ["settings", app, "default", "appSecretFingerprint"]
                if app.starts_with("stella_connect_") =>
            {
                "namespaced setting"
            }
            _ => panic!("no such Kustomer route: {}", r.url),
        };
        self.count(route);
        let budget = self.spend_budget();
        if let Some(Ok(refused)) = budget
            .as_ref()
            .filter(|b| matches!(b, Ok(r) if r.status == 429))
        {
            return Ok(refused.clone());
        }
        let answer = self.kustomer_answer(r, route, &segments);
        match (answer, budget) {
            (Ok(answer), Some(Ok(headers))) => Ok(Response {
                headers: headers.headers,
                ..answer
            }),
            (answer, _) => answer,
        }
    }

    fn kustomer_answer(
        &self,
        r: &Request,
        route: &str,
        segments: &[&str],
    ) -> Result<Response, String> {
        let fault = self.kustomer_faults.borrow_mut().pop_front();
        if let Some(fault) = fault {
            return fault.answer(&r.url);
        }
        let key =
            header(r, "authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
        let admin = key.as_deref() == Some(ADMIN_KEY);
        let Some(org) = key.and_then(|k| self.keys.get(&k).cloned()) else {
            return kustomer_error(401, "unauthorized", "Unauthorized");
        };
        let id = percent_decode(segments[segments.len() - 1]);
        let record = |map: &RefCell<BTreeMap<String, Value>>| match map.borrow().get(&id) {
            // This world holds ORG's records alone: another org's key finds none of them.
            Some(doc) if org == ORG => ok(doc.clone()),
            _ => kustomer_error(404, "not_found", "Not Found"),
        };
        match route {
            "token" => {
                let mut roles = ROLES.to_vec();
                if admin {
                    roles.push("org.admin.apps");
                }
                ok(json!({
                    "data": {"type": "token", "id": "tok-1", "attributes": {"org": org, "roles": roles}}
                }))
            }
            "namespaced setting" => kustomer_error(404, "not_found", "Not Found"),
            "setting" if self.settings_refused.get() => {
                kustomer_error(403, "forbidden", "Forbidden")
            }
            "setting" => match self.links.borrow().get(&org) {
                Some(value) => ok(
                    json!({"data": {"type": "setting", "id": "stella_connect.default.appSecretFingerprint", "attributes": {"value": value}}}),
                ),
                None => kustomer_error(404, "not_found", "Not Found"),
            },
            "conversation" => record(&self.conversations),
            "customer" => record(&self.customers),
            "user" => record(&self.users),
            "brand" => record(&self.brands),
            _ => {
                let ids: Vec<String> = id.split(',').map(str::to_owned).collect();
                self.tag_queries.borrow_mut().push(ids.clone());
                let tags = self.tags.borrow();
                let found: Vec<Value> = ids
                    .iter()
                    .filter(|_| org == ORG)
                    .filter_map(|id| tags.get(id).cloned())
                    .collect();
                ok(json!({ "data": found }))
            }
        }
    }

    fn stella(&self, r: &Request, path: &str) -> Result<Response, String> {
        if r.method == "GET" && path.split('?').next() == Some("/v2/data") {
            return self.data_return(r, path);
        }
        assert_eq!((r.method, path), ("POST", "/v1/requests"), "{r:?}");
        self.count("stella");
        let fault = self.stella_faults.borrow_mut().pop_front();
        if let Some(fault) = fault.or_else(|| self.stella_outage.borrow().clone()) {
            return fault.answer(&r.url);
        }
        if header(r, "x-api-key").as_deref() != Some(STELLA_KEY) {
            return plain(403, "Forbidden: invalid x-api-key");
        }
        assert_eq!(
            header(r, "content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(header(r, "accept").as_deref(), Some("application/json"));
        let body: Value = serde_json::from_str(r.body.as_deref().expect("a body")).expect("JSON");
        // As Stella does: the key first, then the body. Only the key probe of "Check
        // connection" sends an invalid body on purpose; the tests of sends count acceptances.
        if !SCHEMA.with(|schema| schema.is_valid(&body)) {
            return plain(400, "Validation error: channel is required");
        }
        self.accepted.borrow_mut().push(body.clone());
        ok(body) // Stella echoes the request
    }
}

thread_local! {
    /// The vendor's schema, compiled once per test thread.
    static SCHEMA: jsonschema::Validator = feedback_request_schema();
}

fn header(r: &Request, name: &str) -> Option<String> {
    r.header(name).map(str::to_owned)
}

/// The transport every part of the edge uses: all of them reach the same world.
#[derive(Clone)]
pub struct Net(pub Rc<World>);

impl Transport for Net {
    async fn send(&self, request: Request) -> Result<Response, SendError> {
        // As workerd's fetch: a request that cannot be built is refused, never sent.
        if request.url.len() > MAX_URL_BYTES {
            return Err(SendError::Refused("the URL is too long".into()));
        }
        let until = self.0.late_until(&request.url);
        let answer = self.0.answer(&request);
        if let Some((given, until)) = until {
            Late {
                world: &self.0,
                given,
                until,
                yielded: false,
            }
            .await;
        }
        answer.map_err(SendError::Network)
    }
}

/// Waits for a late answer: the other calls under way go first (one yield), then the answer is
/// read, no earlier than `until`.
struct Late<'a> {
    world: &'a World,
    given: i64,
    until: i64,
    yielded: bool,
}

impl std::future::Future for Late<'_> {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.world.read_late(self.given, self.until);
        std::task::Poll::Ready(())
    }
}

/// One org's jobs and cache in memory, with the summary's counters kept as the SQL store keeps
/// them (a summary reads counters, and jobs only at the ragged ends of its window).
#[derive(Default)]
pub struct MemStore {
    /// What `database_size` answers: the test sets it.
    pub size_bytes: Cell<u64>,
    jobs: RefCell<BTreeMap<String, Job>>,
    cache: RefCell<BTreeMap<String, (String, i64)>>,
    org: RefCell<OrgRecord>,
    held: RefCell<BTreeMap<String, HeldClose>>,
    counters: RefCell<BTreeMap<TallyKey, u64>>,
    audit: RefCell<Vec<stella_connect::edge::audit::AuditEntry>>,
}

impl MemStore {
    /// Every audit entry kept, oldest first.
    pub fn audit(&self) -> Vec<stella_connect::edge::audit::AuditEntry> {
        self.audit.borrow().clone()
    }

    /// Every cache entry (key, value, expiry).
    pub fn cache_entries(&self) -> Vec<(String, String, i64)> {
        (self.cache.borrow().iter())
            .map(|(k, (v, e))| (k.clone(), v.clone(), *e))
            .collect()
    }

    /// Every job, by conversation id.
    pub fn jobs(&self) -> Vec<Job> {
        self.jobs.borrow().values().cloned().collect()
    }

    /// Every held close, by conversation id.
    pub fn held(&self) -> Vec<HeldClose> {
        self.held.borrow().values().cloned().collect()
    }

    /// The summary's counters, as kept (no zero is kept).
    pub fn counters(&self) -> BTreeMap<TallyKey, u64> {
        self.counters.borrow().clone()
    }

    /// Moves `job`'s count from the counter of the job it replaces (if any) to its own.
    fn recount(&self, old: Option<&Job>, new: Option<&Job>) {
        let mut counters = self.counters.borrow_mut();
        if let Some(old) = old {
            let key = TallyKey::of(old);
            if let Some(n) = counters.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counters.remove(&key);
                }
            }
        }
        if let Some(new) = new {
            *counters.entry(TallyKey::of(new)).or_default() += 1;
        }
    }
}

impl Store for MemStore {
    fn get(&self, conversation_id: &str) -> Result<Option<Job>, String> {
        Ok(self.jobs.borrow().get(conversation_id).cloned())
    }

    fn put(&self, job: &Job) -> Result<(), String> {
        let old = self
            .jobs
            .borrow_mut()
            .insert(job.conversation_id.clone(), job.clone());
        self.recount(old.as_ref(), Some(job));
        Ok(())
    }

    fn insert_new(&self, job: &Job) -> Result<bool, String> {
        let mut jobs = self.jobs.borrow_mut();
        if jobs.contains_key(&job.conversation_id) {
            return Ok(false);
        }
        jobs.insert(job.conversation_id.clone(), job.clone());
        self.recount(None, Some(job));
        Ok(true)
    }

    fn due(&self, now_ms: i64, lease_before_ms: i64, limit: usize) -> Result<Vec<Job>, String> {
        let mut due: Vec<Job> = self
            .jobs
            .borrow()
            .values()
            .filter(|j| match j.state {
                JobState::Scheduled | JobState::Retrying => j.due_ms.is_some_and(|d| d <= now_ms),
                JobState::Sending => j.updated_ms < lease_before_ms,
                _ => false,
            })
            .cloned()
            .collect();
        due.sort_by_key(|j| j.due_ms);
        due.truncate(limit);
        Ok(due)
    }

    fn next_due(&self) -> Result<Option<i64>, String> {
        Ok(self
            .jobs
            .borrow()
            .values()
            .filter(|j| !j.state.is_final())
            .filter_map(|j| j.due_ms)
            .min())
    }

    fn deliveries(&self, query: &DeliveryQuery, limit: usize) -> Result<Vec<Job>, String> {
        let mut jobs: Vec<Job> = self
            .jobs()
            .into_iter()
            .filter(|j| query.matches(j))
            .collect();
        jobs.sort_by(|a, b| {
            (b.closed_at_ms, &b.conversation_id).cmp(&(a.closed_at_ms, &a.conversation_id))
        });
        jobs.truncate(limit);
        Ok(jobs)
    }

    fn tally(&self, query: &DeliveryQuery) -> Result<Tally, String> {
        let plan = TallyPlan::of(query);
        let mut tally = Tally::default();
        for (key, n) in self.counters.borrow().iter() {
            if plan.holds_hour(key.hour) && key.in_summary(query) {
                tally.add_counter(query, key, *n);
            }
        }
        for window in &plan.scans {
            let scan = TallyPlan::scan_query(query, *window);
            for job in self.jobs.borrow().values().filter(|j| scan.in_summary(j)) {
                tally.count(query, job);
            }
        }
        Ok(tally)
    }

    fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<String>, String> {
        Ok(self
            .cache
            .borrow()
            .get(key)
            .filter(|(_, expires)| *expires > now_ms)
            .map(|(v, _)| v.clone()))
    }

    fn cache_put(&self, key: &str, value: &str, expires_ms: i64) -> Result<(), String> {
        self.cache
            .borrow_mut()
            .insert(key.to_owned(), (value.to_owned(), expires_ms));
        Ok(())
    }

    fn org(&self) -> Result<OrgRecord, String> {
        Ok(self.org.borrow().clone())
    }

    fn put_org(&self, record: &OrgRecord) -> Result<(), String> {
        *self.org.borrow_mut() = record.clone();
        Ok(())
    }

    fn prune(&self, before_ms: i64, now_ms: i64) -> Result<usize, String> {
        let mut jobs = self.jobs.borrow_mut();
        let mut gone = Vec::new();
        jobs.retain(|_, j| {
            let keep = !(j.due_ms.is_none() && j.updated_ms <= before_ms);
            if !keep {
                gone.push(j.clone());
            }
            keep
        });
        drop(jobs);
        for job in &gone {
            self.recount(Some(job), None);
        }
        self.cache.borrow_mut().retain(|_, (_, exp)| *exp > now_ms);
        Ok(gone.len())
    }

    fn oldest_final(&self) -> Result<Option<i64>, String> {
        Ok(self
            .jobs
            .borrow()
            .values()
            .filter(|j| j.due_ms.is_none())
            .map(|j| j.updated_ms)
            .min())
    }

    fn followed(&self, sent_since_ms: i64) -> Result<bool, String> {
        Ok(self
            .jobs
            .borrow()
            .values()
            .any(|j| j.followed_since().is_some_and(|t| t >= sent_since_ms)))
    }

    fn hold(&self, close: &HeldClose) -> Result<bool, String> {
        let mut held = self.held.borrow_mut();
        match held.get(&close.conversation_id) {
            Some(h) if h.closed_at_ms > close.closed_at_ms => return Ok(true),
            None if held.len() >= MAX_HELD => return Ok(false),
            _ => {}
        }
        held.insert(close.conversation_id.clone(), close.clone());
        Ok(true)
    }

    fn held_count(&self) -> Result<usize, String> {
        Ok(self.held.borrow().len())
    }

    fn held_oldest(&self) -> Result<Option<i64>, String> {
        Ok(self.held.borrow().values().map(|h| h.held_ms).min())
    }

    fn held_list(&self, limit: usize) -> Result<Vec<HeldClose>, String> {
        let mut all = self.held();
        all.sort_by(|a, b| (a.held_ms, &a.conversation_id).cmp(&(b.held_ms, &b.conversation_id)));
        all.truncate(limit);
        Ok(all)
    }

    fn take_held(&self, limit: usize) -> Result<Vec<HeldClose>, String> {
        let all = self.held_list(limit)?;
        let mut held = self.held.borrow_mut();
        for h in &all {
            held.remove(&h.conversation_id);
        }
        Ok(all)
    }

    fn expire_held(&self, before_ms: i64) -> Result<usize, String> {
        let mut held = self.held.borrow_mut();
        let before = held.len();
        held.retain(|_, h| h.held_ms > before_ms);
        Ok(before - held.len())
    }

    fn outcomes_unwritten(&self, limit: usize) -> Result<Vec<Job>, String> {
        let mut jobs: Vec<Job> = (self.jobs.borrow().values())
            .filter(|j| j.outcome_unwritten())
            .cloned()
            .collect();
        jobs.sort_by_key(|j| (j.updated_ms, j.conversation_id.clone()));
        jobs.truncate(limit);
        Ok(jobs)
    }

    fn customer_jobs(&self, digests: &[String], limit: usize) -> Result<Vec<Job>, String> {
        let holds = |k: &Option<String>| k.as_ref().is_some_and(|k| digests.contains(k));
        let mut jobs: Vec<Job> = (self.jobs.borrow().values())
            .filter(|j| {
                j.customer
                    .as_ref()
                    .is_some_and(|c| holds(&c.id) || holds(&c.email))
            })
            .cloned()
            .collect();
        jobs.truncate(limit);
        Ok(jobs)
    }

    fn database_size(&self) -> Result<u64, String> {
        Ok(self.size_bytes.get())
    }

    fn finished_after(
        &self,
        after: Option<&Mark>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, String> {
        let mut jobs: Vec<Job> = (self.jobs.borrow().values())
            .filter(|j| j.due_ms.is_none() && j.updated_ms <= until_ms)
            .filter(|j| after.is_none_or(|m| m.before(j)))
            .cloned()
            .collect();
        jobs.sort_by_key(|j| (j.updated_ms, j.conversation_id.clone()));
        jobs.truncate(limit);
        Ok(jobs)
    }

    fn audit_add(
        &self,
        entry: &stella_connect::edge::audit::AuditEntry,
        keep_after_ms: i64,
        max_entries: usize,
    ) -> Result<(), String> {
        let mut audit = self.audit.borrow_mut();
        audit.push(entry.clone());
        audit.retain(|e| e.at_ms > keep_after_ms);
        let over = audit.len().saturating_sub(max_entries);
        audit.drain(..over);
        Ok(())
    }

    fn audit_list(
        &self,
        after_ms: i64,
        limit: usize,
    ) -> Result<Vec<stella_connect::edge::audit::AuditEntry>, String> {
        Ok((self.audit.borrow().iter().rev())
            .filter(|e| e.at_ms > after_ms)
            .take(limit)
            .cloned()
            .collect())
    }

    fn prune_oldest(&self, limit: usize) -> Result<usize, String> {
        let mut finished: Vec<(i64, String)> = (self.jobs.borrow().values())
            .filter(|j| j.due_ms.is_none())
            .map(|j| (j.updated_ms, j.conversation_id.clone()))
            .collect();
        finished.sort();
        finished.truncate(limit);
        for (_, id) in &finished {
            let gone = self.jobs.borrow_mut().remove(id);
            self.recount(gone.as_ref(), None);
        }
        Ok(finished.len())
    }
}

/// Time the test sets, and dice that always land in the middle.
#[derive(Clone)]
pub struct SimClock(pub Rc<Cell<i64>>);

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
    fn random(&self) -> f64 {
        0.5
    }
    fn nonce(&self) -> [u8; 12] {
        // Distinct for every call, as a random source would be.
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        nonce
    }
}

/// An org's scheduler as the fakes build it.
pub type OrgScheduler = Scheduler<MemStore, Net, SimClock>;

/// One scheduler per org, created on first use (a Durable Object per org). Commands and
/// replies cross as JSON text, as they do between the worker and its Durable Objects.
pub struct OrgRouter {
    world: Rc<World>,
    time: Rc<Cell<i64>>,
    config: Config,
    schedulers: RefCell<BTreeMap<String, Rc<OrgScheduler>>>,
    /// Every command forwarded, with its object's name: the org, prefixed `eu:` for an object
    /// in the EU jurisdiction (as `www/edge.js` keys them).
    pub commands: RefCell<Vec<(String, Command)>>,
    /// Rate-limit buckets: (window end, uses), as the Durable Object counter keeps them.
    pub limits: RefCell<BTreeMap<String, (i64, u32)>>,
    /// Each org's alarm as its Durable Object would hold it: set only through
    /// `Scheduler::alarm_change`, as `www/edge.js` sets it, so a change it misses shows as a
    /// survey that never goes out.
    alarms: RefCell<BTreeMap<String, i64>>,
}

impl OrgRouter {
    /// The org's scheduler, created if needed.
    pub fn scheduler(&self, org: &str) -> Rc<OrgScheduler> {
        self.schedulers
            .borrow_mut()
            .entry(org.to_owned())
            .or_insert_with(|| {
                Rc::new(Scheduler::new(
                    MemStore::default(),
                    Net(self.world.clone()),
                    SimClock(self.time.clone()),
                    self.config,
                    test_sealer(),
                ))
            })
            .clone()
    }

    /// The org's Durable Object starts again (a deploy, a crash): a new scheduler over the
    /// same storage, with nothing in memory.
    pub fn restart(&self, org: &str) {
        let old = self.scheduler(org);
        let store = MemStore {
            size_bytes: Cell::new(old.store.size_bytes.get()),
            jobs: RefCell::new(old.store.jobs.take()),
            cache: RefCell::new(old.store.cache.take()),
            org: RefCell::new(old.store.org.take()),
            held: RefCell::new(old.store.held.take()),
            counters: RefCell::new(old.store.counters.take()),
            audit: RefCell::new(old.store.audit.take()),
        };
        let new = Scheduler::new(
            store,
            Net(self.world.clone()),
            SimClock(self.time.clone()),
            self.config,
            test_sealer(),
        );
        (self.schedulers.borrow_mut()).insert(org.to_owned(), Rc::new(new));
    }

    /// The orgs that have a scheduler.
    pub fn orgs(&self) -> Vec<String> {
        self.schedulers.borrow().keys().cloned().collect()
    }

    fn all(&self) -> Vec<Rc<OrgScheduler>> {
        self.schedulers.borrow().values().cloned().collect()
    }

    /// After a call into the org's scheduler: its alarm as the worker entry would set it.
    fn rearm(&self, org: &str) {
        match self.scheduler(org).alarm_change(0).expect("alarm_change") {
            AlarmChange::Keep => {}
            AlarmChange::Set(at) => {
                self.alarms.borrow_mut().insert(org.to_owned(), at);
            }
            AlarmChange::Delete => {
                self.alarms.borrow_mut().remove(org);
            }
        }
    }

    /// Fires the org's alarm: spent, the due jobs run, and set again as the scheduler says.
    fn fire(&self, org: &str) -> usize {
        self.alarms.borrow_mut().remove(org);
        let handled = block_on(self.scheduler(org).run_due()).expect("run_due");
        self.rearm(org);
        handled
    }

    /// The earliest alarm set, and the orgs it is for.
    fn earliest_alarm(&self) -> Option<(i64, Vec<String>)> {
        let alarms = self.alarms.borrow();
        let at = *alarms.values().min()?;
        let orgs = alarms
            .iter()
            .filter(|(_, t)| **t <= at)
            .map(|(o, _)| o.clone());
        Some((at, orgs.collect()))
    }
}

impl Router for OrgRouter {
    async fn forward(&self, place: &Place, command: &Command) -> Result<Reply, String> {
        // A different jurisdiction is a different object, as on Cloudflare.
        let org = &match place.jurisdiction {
            None => place.org.clone(),
            Some(j) => format!("{}:{}", j.as_str(), place.org),
        };
        self.commands
            .borrow_mut()
            .push((org.to_owned(), command.clone()));
        let text = serde_json::to_string(command).map_err(|e| e.to_string())?;
        let command: Command = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let reply = self.scheduler(org).command_async(command).await;
        self.rearm(org);
        let text = serde_json::to_string(&reply).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    async fn limit(&self, bucket: &str, per_minute: u32) -> Result<Option<u32>, String> {
        let now = self.time.get();
        let mut limits = self.limits.borrow_mut();
        let entry = limits.entry(bucket.to_owned()).or_insert((now + 60_000, 0));
        if entry.0 <= now {
            *entry = (now + 60_000, 0);
        }
        entry.1 += 1;
        Ok((entry.1 > per_minute).then(|| ((entry.0 - now + 999) / 1000) as u32))
    }
}

/// The default test configuration: production's, with retries starting at one second.
pub fn quick_retries() -> Config {
    Config {
        retry: RetryPolicy {
            base_ms: 1000,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The settings the workflow action sends, as headers (the org's keys, a 900 s delay).
pub fn settings_headers() -> Vec<(String, String)> {
    [
        ("stellaApiKey", STELLA_KEY),
        ("kustomerApiKey", KUSTOMER_KEY),
        ("kustomerApiUrl", KUSTOMER_API),
        ("kustomerUrl", "https://acme.kustomerapp.com"),
        ("secondsUntilSend", "900"),
        ("stellaApiUrl", STELLA_API),
        ("appSecret", APP_SECRET),
    ]
    .iter()
    .map(|(k, v)| (setting_header(k), (*v).to_owned()))
    .collect()
}

/// `settings_headers()` with some replaced (by setting key) or removed (`None`).
pub fn settings_headers_with(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut headers = settings_headers();
    for (key, value) in changes {
        let name = setting_header(key);
        headers.retain(|(k, _)| *k != name);
        if let Some(v) = value {
            headers.push((name, (*v).to_owned()));
        }
    }
    headers
}

/// The Kustomer key and the app secret, as the delivery log is asked for.
pub fn key_header(key: &str) -> Vec<(String, String)> {
    vec![
        ("x-kustomer-api-key".to_owned(), key.to_owned()),
        ("x-app-secret".to_owned(), APP_SECRET.to_owned()),
    ]
}

/// The conversation ids of a page of the log, in its order.
pub fn log_ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["conversationId"].as_str().unwrap().to_owned())
        .collect()
}

/// A job of the fixtures' org as the log reads it, put straight into its store: closed at
/// `closed_at_ms`, with `reason`, and a request naming `agent` when given (a job that reached
/// its check).
pub fn log_job(
    id: &str,
    state: JobState,
    closed_at_ms: i64,
    reason: Option<&str>,
    agent: Option<&str>,
) -> Job {
    Job {
        org: ORG.into(),
        conversation_id: id.into(),
        state,
        generation: 0,
        closed_at_ms,
        send_at_ms: closed_at_ms + 900_000,
        due_ms: (!state.is_final()).then_some(closed_at_ms + 900_000),
        attempts: u32::from(state != JobState::Scheduled),
        first_attempt_ms: None,
        reason: reason.map(Into::into),
        message: None,
        request: agent.map(|a| {
            json!({
                "channel": "email",
                "customer": {"name": format!("Customer {id}"), "email": format!("{id}@example.com")},
                "employee": {"email": a},
                "ext_interaction_id": id,
                "external_url": format!("https://acme.kustomerapp.com/app/customers/c/event/{id}"),
                "do_not_send": false,
            })
        }),
        sent_ms: (state == JobState::Sent).then_some(closed_at_ms + 900_000),
        created_ms: closed_at_ms,
        updated_ms: closed_at_ms + 900_000,
        event_ids: vec![],
        previous_sent_ms: None,
        unsure: false,
        outcome: None,
        sent_to: None,
        personal_data_removed: None,
        customer: None,
    }
}

/// The fixture's close event for `conversation_id`, closed at `status_at`, with an event id of
/// its own (Kustomer gives every event one).
pub fn close_event(conversation_id: &str, status_at: &str) -> Value {
    let mut event = fixture("conversation-update-done");
    event["id"] = json!(format!("evt-{conversation_id}-{status_at}"));
    event["data"]["id"] = json!(conversation_id);
    event["data"]["attributes"]["modificationHistory"]["statusAt"] = json!(status_at);
    event["data"]["attributes"]["updatedAt"] = json!(status_at);
    event["createdAt"] = json!(status_at);
    event
}

/// The gateway, the org schedulers, the world and the clock, wired as in production.
pub struct Edge {
    /// Kustomer and Stella.
    pub world: Rc<World>,
    /// The time every part reads.
    pub time: Rc<Cell<i64>>,
    /// The HTTP front; its router holds the schedulers.
    pub gateway: Gateway<Net, OrgRouter>,
    /// Every reply given, in order.
    pub replies: RefCell<Vec<Reply>>,
    /// How many calls went to a scheduler without waiting ([`Gateway::step`]).
    pub stepped: Cell<usize>,
}

impl Edge {
    /// A fresh world at the fixture's close time plus 2 s, with `config`.
    pub fn new(config: Config) -> Self {
        let world = World::from_fixtures();
        let time = Rc::new(Cell::new(closed_ms() + 2000));
        world.use_clock(time.clone());
        let router = OrgRouter {
            world: world.clone(),
            time: time.clone(),
            config,
            schedulers: RefCell::default(),
            commands: RefCell::default(),
            limits: RefCell::default(),
            alarms: RefCell::default(),
        };
        Self {
            gateway: Gateway::new(Net(world.clone()), router, config),
            world,
            time,
            replies: RefCell::default(),
            stepped: Cell::default(),
        }
    }

    /// [`Edge::new`] with [`quick_retries`].
    pub fn quick() -> Self {
        Self::new(quick_retries())
    }

    /// Now, in ms.
    pub fn now(&self) -> i64 {
        self.time.get()
    }

    /// Sets the time.
    pub fn set_now(&self, ms: i64) {
        self.time.set(ms);
    }

    /// One HTTP request to the gateway, now.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Reply {
        let lookup = |name: &str| {
            // The worker entry passes these headers and no others.
            assert!(
                HEADERS.names().iter().any(|n| n == name),
                "the gateway reads {name}, which the worker entry does not pass"
            );
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        // The query, as the worker entry splits it off the URL.
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let incoming = Incoming {
            method,
            path,
            query,
            header: &lookup,
            body,
            now_ms: self.now(),
        };
        // As the worker entry does: the path without waiting first, the long way otherwise.
        let reply = match self.gateway.step(&incoming) {
            Some(Step::Reply(reply)) => {
                // Refused before anything is stored: the long way must say the same.
                let long_way = block_on(self.gateway.handle(incoming));
                assert_eq!(reply, long_way, "the step and the long way disagree");
                reply
            }
            Some(Step::Forward { place, command }) => {
                self.stepped.set(self.stepped.get() + 1);
                block_on(self.gateway.router.forward(&place, &command)).expect("forward")
            }
            None => block_on(self.gateway.handle(incoming)),
        };
        self.replies.borrow_mut().push(reply.clone());
        reply
    }

    /// Delivers a close event with `headers`.
    pub fn close_with(&self, event: &Value, headers: &[(String, String)]) -> Reply {
        self.call(
            "POST",
            "/v1/kustomer/conversation-closed",
            headers,
            &event.to_string(),
        )
    }

    /// Delivers a close event with the org's settings.
    pub fn close(&self, event: &Value) -> Reply {
        self.close_with(event, &settings_headers())
    }

    /// The org's delivery log (its first 200 entries).
    pub fn deliveries(&self) -> Vec<Value> {
        let reply = self.log("limit=200");
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["deliveries"].as_array().unwrap().clone()
    }

    /// `GET /v1/deliveries?{query}` with the org's key and app secret.
    pub fn log(&self, query: &str) -> Reply {
        self.call(
            "GET",
            &format!("/v1/deliveries?{query}"),
            &key_header(KUSTOMER_KEY),
            "",
        )
    }

    /// `POST /v1/deliveries/resend` for `ids` with the settings, `key` as the Kustomer key.
    pub fn resend_many(&self, ids: &[&str], key: &str) -> Reply {
        let headers = settings_headers_with(&[("kustomerApiKey", Some(key))]);
        let body = json!({ "conversationIds": ids }).to_string();
        self.call("POST", "/v1/deliveries/resend", &headers, &body)
    }

    /// The org's delivery log entry for a conversation.
    pub fn delivery(&self, conversation_id: &str) -> Value {
        self.deliveries()
            .into_iter()
            .find(|d| d["conversationId"] == conversation_id)
            .unwrap_or_else(|| panic!("no delivery for {conversation_id}"))
    }

    /// `POST /v1/deliveries/{id}/resend` with the settings, `key` as the Kustomer key.
    pub fn resend(&self, conversation_id: &str, key: &str) -> Reply {
        let path = format!("/v1/deliveries/{conversation_id}/resend");
        let headers = settings_headers_with(&[("kustomerApiKey", Some(key))]);
        self.call("POST", &path, &headers, "")
    }

    /// The org's scheduler.
    pub fn scheduler(&self, org: &str) -> Rc<OrgScheduler> {
        self.gateway.router.scheduler(org)
    }

    /// The stored job of the fixtures' org for a conversation.
    pub fn job(&self, conversation_id: &str) -> Job {
        self.scheduler(ORG)
            .store
            .get(conversation_id)
            .unwrap()
            .unwrap_or_else(|| panic!("no job for {conversation_id}"))
    }

    /// Runs every org's alarm at `at_ms`, whether or not it was due (a spurious alarm must be
    /// harmless). Returns how many jobs were handled.
    pub fn fire_alarms(&self, at_ms: i64) -> usize {
        self.set_now(at_ms);
        let router = &self.gateway.router;
        router.orgs().iter().map(|org| router.fire(org)).sum()
    }

    /// Lets time pass until `until_ms`, each org's alarm firing when its scheduler asked for
    /// it. Returns the times at which alarms fired.
    pub fn advance_to(&self, until_ms: i64) -> Vec<i64> {
        let mut fired = Vec::new();
        let router = &self.gateway.router;
        loop {
            match router.earliest_alarm() {
                Some((at, orgs)) if at <= until_ms => {
                    assert!(fired.len() < 10_000, "alarms never settle: {fired:?}");
                    let at = at.max(self.now());
                    self.set_now(at);
                    for org in orgs {
                        router.fire(&org);
                    }
                    fired.push(at);
                }
                _ => break,
            }
        }
        self.set_now(until_ms.max(self.now()));
        fired
    }

    /// Every reply's text and every recorded request's `Debug`: nothing may hold a key.
    pub fn assert_no_secrets(&self) {
        let replies = self.replies.borrow();
        assert!(!replies.is_empty(), "no replies to check");
        for reply in replies.iter() {
            let text = serde_json::to_string(reply).unwrap();
            for secret in SECRETS {
                assert!(!text.contains(secret), "a reply shows a key: {text}");
            }
        }
        for request in self.world.requests() {
            let printed = format!("{request:?}");
            for secret in SECRETS {
                assert!(
                    !printed.contains(secret),
                    "a request's Debug shows a key: {printed}"
                );
            }
        }
    }
}

// Agent Connect's Data Return, and Kustomer's outcome writes ------------------------------------

/// One `GET /v2/data` as the fake Data Return saw it.
#[derive(Debug, Clone)]
pub struct DataCall {
    /// When (the fake clock), ms.
    pub at_ms: i64,
    /// The query's parameters.
    pub query: BTreeMap<String, String>,
    /// The status answered; 0 for no answer (a network fault).
    pub status: u16,
    /// Why the fake refused the credentials (a 403), if it did.
    pub refused: Option<String>,
    /// The JWT's `iat`, as `jsonwebtoken` decoded it.
    pub iat: Option<i64>,
}

/// One `PATCH /v1/conversations/{id}` as the fake Kustomer saw it.
#[derive(Debug, Clone)]
pub struct Patch {
    /// When (the fake clock), ms.
    pub at_ms: i64,
    /// The conversation.
    pub conversation_id: String,
    /// The body's `custom`.
    pub custom: Value,
    /// The status answered; 0 for no answer.
    pub status: u16,
}

/// Agent Connect's Data Return as the fake keeps it: a record per survey Stella accepted (and
/// any a test adds), plus the calls and outcome writes seen.
#[derive(Default)]
pub struct DataReturn {
    /// The time every part reads (set by [`Edge::new`]).
    clock: Option<Rc<Cell<i64>>>,
    /// Records, in `sequence_id` order.
    records: Vec<Value>,
    /// How many of Stella's accepted bodies have a record.
    synced: usize,
    /// The last `sequence_id` given.
    sequence: i64,
    faults: VecDeque<Fault>,
    calls: Vec<DataCall>,
    patches: Vec<Patch>,
    patch_faults: VecDeque<Fault>,
    /// Stella accepts this many requests but its answer never arrives (a timeout).
    lost_answers: usize,
    /// The process dies right after Stella accepts the next request (before it is stored).
    crash_after_accept: bool,
    /// While set, accepted requests get no record yet (Agent Connect's lag).
    held: bool,
}

/// The first `sequence_id` the fake Data Return gives.
pub const FIRST_SEQUENCE: i64 = 70_000;

/// A Data Return record for `conversation` of `org`, created at `created_ms` and sent then
/// (`uuid` and `sequence_id` are given when it is added, unless set).
pub fn data_record(conversation: &str, org: &str, created_ms: i64) -> Value {
    json!({
        "ext_interaction_id": conversation,
        "custom_properties": {"kustomer_org": org, "kustomer_conversation_id": conversation},
        "request_created_at": iso(created_ms),
        "request_sent_at": iso(created_ms),
        "request_delivery_status": "Sent",
        "is_recovery": false,
        "channel": "email",
        "answers": {},
    })
}

impl World {
    /// The clock the fake Agent Connect stamps records with and checks JWTs against.
    pub fn use_clock(&self, clock: Rc<Cell<i64>>) {
        self.data_return.borrow_mut().clock = Some(clock);
    }

    fn clock_ms(&self) -> i64 {
        let data = self.data_return.borrow();
        data.clock.as_ref().expect("World::use_clock").get()
    }

    /// After every Stella call: a record for each body newly accepted, and an answer lost if
    /// one is to be.
    fn stamped(&self, answer: Result<Response, String>) -> Result<Response, String> {
        let clock = self.data_return.borrow().clock.clone();
        let Some(now) = clock.map(|c| c.get()) else {
            return answer; // a world without a clock keeps no records
        };
        if self.data_return.borrow().held {
            return self.lose_or_crash(answer);
        }
        self.sync_records(now);
        self.lose_or_crash(answer)
    }

    /// A record for each body Stella accepted that has none yet, created at `now`.
    fn sync_records(&self, now: i64) {
        let accepted = self.accepted.borrow().clone();
        let fresh: Vec<Value> = accepted
            .get(self.data_return.borrow().synced..)
            .unwrap_or_default()
            .to_vec();
        for body in fresh {
            let conversation = body["ext_interaction_id"].as_str().unwrap_or_default();
            let mut record = data_record(conversation, "", now);
            record["custom_properties"] = body["custom_properties"].clone();
            // The people as the request named them (the contract's `customer` and `employee`).
            record["customer"] = json!({"email": body["customer"]["email"]});
            if let Some(name) = body["customer"]["name"].as_str() {
                record["customer"]["full_name"] = json!(name);
            }
            record["employee"] = json!({"email": body["employee"]["email"]});
            if body["do_not_send"] == json!(true) {
                record["request_delivery_status"] = json!("Not sent: do not send flag");
                record["request_sent_at"] = Value::Null;
            }
            self.add_data_record(record);
            self.data_return.borrow_mut().synced += 1;
        }
    }

    fn lose_or_crash(&self, answer: Result<Response, String>) -> Result<Response, String> {
        let mut data = self.data_return.borrow_mut();
        let taken = matches!(&answer, Ok(r) if r.status < 300);
        if taken && data.crash_after_accept {
            data.crash_after_accept = false;
            drop(data);
            panic!("simulated crash: the process died right after Stella accepted the request");
        }
        match answer {
            Ok(_) if taken && data.lost_answers > 0 => {
                data.lost_answers -= 1;
                Err("timed out waiting for Stella's answer".into())
            }
            other => other,
        }
    }

    /// The process dies right after Stella accepts the next request, before the edge stores
    /// that it was sent (a panic, caught by the test).
    pub fn crash_after_next_accept(&self) {
        self.data_return.borrow_mut().crash_after_accept = true;
    }

    /// While `held`, Agent Connect has no record yet of the requests it accepts; released,
    /// they appear, created now.
    pub fn hold_records(&self, held: bool) {
        self.data_return.borrow_mut().held = held;
        if !held {
            self.sync_records(self.clock_ms());
        }
    }

    /// The conversation's latest record moves to the end of the sequence (a new
    /// `sequence_id`), as Agent Connect may do when a record changes.
    pub fn resequence(&self, conversation: &str) {
        let mut data = self.data_return.borrow_mut();
        let at = (data.records.iter())
            .rposition(|r| r["ext_interaction_id"] == conversation)
            .unwrap_or_else(|| panic!("no Data Return record for {conversation}"));
        let mut record = data.records.remove(at);
        data.sequence += 1;
        record["sequence_id"] = json!(data.sequence);
        data.records.push(record);
    }

    /// The record with this `uuid` moves to the end of the sequence (a new `sequence_id`).
    pub fn resequence_uuid(&self, uuid: &str) {
        let mut data = self.data_return.borrow_mut();
        let at = (data.records.iter())
            .position(|r| r["uuid"] == uuid)
            .unwrap_or_else(|| panic!("no Data Return record {uuid}"));
        let mut record = data.records.remove(at);
        data.sequence += 1;
        record["sequence_id"] = json!(data.sequence);
        data.records.push(record);
    }

    /// The next request Stella accepts gets no answer back (a timeout after it took it).
    pub fn lose_next_stella_answer(&self) {
        self.data_return.borrow_mut().lost_answers += 1;
    }

    /// Adds a record to Data Return, with the next `sequence_id` and a `uuid` unless it has
    /// them. Returns its `sequence_id`.
    pub fn add_data_record(&self, mut record: Value) -> i64 {
        let mut data = self.data_return.borrow_mut();
        data.sequence = data.sequence.max(FIRST_SEQUENCE - 1) + 1;
        let sequence = data.sequence;
        if record.get("sequence_id").is_none() {
            record["sequence_id"] = json!(sequence);
        }
        if record.get("uuid").is_none() {
            record["uuid"] = json!(format!("a0c1e2f3-0000-4000-8000-{sequence:012}"));
        }
        data.records.push(record);
        sequence
    }

    /// Every record Data Return holds, in order.
    pub fn data_records(&self) -> Vec<Value> {
        self.data_return.borrow().records.clone()
    }

    /// The latest record of a conversation, changed by `edit`.
    fn edit_record(&self, conversation: &str, edit: impl FnOnce(&mut Value)) {
        let mut data = self.data_return.borrow_mut();
        let record = (data.records.iter_mut().rev())
            .find(|r| r["ext_interaction_id"] == conversation)
            .unwrap_or_else(|| panic!("no Data Return record for {conversation}"));
        edit(record);
    }

    /// The customer answers the conversation's latest survey now: a star rating and a comment.
    /// The record keeps its `sequence_id` (Agent Connect does not say it changes).
    pub fn answer_survey(&self, conversation: &str, rating: u8, comment: &str) {
        let now = iso(self.clock_ms());
        self.edit_record(conversation, |r| {
            r["answers"]["agent_star_rating"] = json!({
                "comment": comment,
                "selected_options": {"opt-stars": {"integer_value": rating, "label": format!("{rating} stars")}},
            });
            r["response_received_at"] = json!(now);
        });
    }

    /// Agent Connect's delivery status of the conversation's latest survey becomes `text`.
    pub fn set_delivery_status(&self, conversation: &str, text: &str) {
        self.edit_record(conversation, |r| r["request_delivery_status"] = json!(text));
    }

    /// The next Data Return call gets `fault` (in order, one per call).
    pub fn data_fault(&self, fault: Fault) {
        self.data_return.borrow_mut().faults.push_back(fault);
    }

    /// Every Data Return call, in order.
    pub fn data_calls(&self) -> Vec<DataCall> {
        self.data_return.borrow().calls.clone()
    }

    /// The next outcome write (`PATCH`) gets `fault` (in order, one per write).
    pub fn patch_fault(&self, fault: Fault) {
        self.data_return.borrow_mut().patch_faults.push_back(fault);
    }

    /// Every `PATCH` of a conversation, answered or not, in order.
    pub fn patches(&self) -> Vec<Patch> {
        self.data_return.borrow().patches.clone()
    }

    /// A conversation's `custom` attributes as Kustomer holds them.
    pub fn conversation_custom(&self, id: &str) -> Value {
        let conversations = self.conversations.borrow();
        let doc = conversations
            .get(id)
            .unwrap_or_else(|| panic!("no conversation {id}"));
        doc["data"]["attributes"]["custom"].clone()
    }

    /// `GET /v2/data?…`: the key, then the JWT (raw, HS256 over [`STELLA_SECRET`], `iat`
    /// within a minute of now), then the records the query selects, as a bare array.
    fn data_return(&self, r: &Request, path: &str) -> Result<Response, String> {
        self.count("data");
        let now = self.clock_ms();
        let url = url::Url::parse(&r.url).expect("a URL");
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let mut call = DataCall {
            at_ms: now,
            query: query.clone(),
            status: 0,
            refused: None,
            iat: None,
        };
        let answer = self.data_answer(r, path, now, &query, &mut call);
        call.status = answer.as_ref().map_or(0, |a| a.status);
        self.data_return.borrow_mut().calls.push(call);
        answer
    }

    fn data_answer(
        &self,
        r: &Request,
        path: &str,
        now: i64,
        query: &BTreeMap<String, String>,
        call: &mut DataCall,
    ) -> Result<Response, String> {
        assert!(r.body.is_none(), "a GET with a body: {r:?}");
        let fault = self.data_return.borrow_mut().faults.pop_front();
        if let Some(fault) = fault {
            return fault.answer(&r.url);
        }
        if header(r, "x-api-key").as_deref() != Some(STELLA_KEY) {
            call.refused = Some("x-api-key".into());
            return plain(403, "Forbidden");
        }
        match check_jwt(header(r, "authorization").as_deref(), now) {
            Ok(iat) => call.iat = Some(iat),
            Err(why) => {
                call.refused = Some(why);
                return plain(403, "Forbidden");
            }
        }
        for name in query.keys() {
            assert!(
                ["after", "limit", "created_at_gte", "responded_at_gte"].contains(&name.as_str()),
                "a Data Return parameter the fake does not know: {path}"
            );
        }
        let time = |name: &str| {
            query.get(name).map(|t| {
                timestamp::parse(t)
                    .map(timestamp::to_millis)
                    .unwrap_or_else(|| panic!("{name} is not RFC 3339: {t}"))
            })
        };
        let after: Option<i64> = query
            .get("after")
            .map(|a| a.parse().unwrap_or_else(|_| panic!("after={a}")));
        let limit: usize = query
            .get("limit")
            .map_or(1000, |l| l.parse().unwrap_or_else(|_| panic!("limit={l}")));
        let (created_gte, responded_gte) = (time("created_at_gte"), time("responded_at_gte"));
        let at = |record: &Value, field: &str| record[field].as_str().map(ms);
        let data = self.data_return.borrow();
        // Records are kept in `sequence_id` order: `after` is where the page starts.
        let start = after.map_or(0, |a| {
            (data.records).partition_point(|rec| rec["sequence_id"].as_i64() <= Some(a))
        });
        let page: Vec<Value> = (data.records.get(start..).unwrap_or_default().iter())
            .filter(|rec| created_gte.is_none_or(|t| at(rec, "request_created_at") >= Some(t)))
            .filter(|rec| responded_gte.is_none_or(|t| at(rec, "response_received_at") >= Some(t)))
            .take(limit)
            .cloned()
            .collect();
        ok(Value::Array(page))
    }

    /// `PATCH /v1/conversations/{id}` with `{custom}`: counted (`patch`) and against the budget
    /// like every Kustomer call, `custom` merged into the stored conversation.
    fn kustomer_patch(&self, r: &Request, path: &str) -> Result<Response, String> {
        let id = path
            .strip_prefix("/v1/conversations/")
            .filter(|id| !id.is_empty() && !id.contains(['/', '?']))
            .unwrap_or_else(|| panic!("no such Kustomer PATCH route: {}", r.url));
        let id = percent_decode(id);
        assert_eq!(
            header(r, "content-type").as_deref(),
            Some("application/json")
        );
        let body: Value = serde_json::from_str(r.body.as_deref().expect("a body")).expect("JSON");
        let custom = body["custom"].clone();
        assert!(
            custom.is_object() && body.as_object().is_some_and(|b| b.len() == 1),
            "a conversation PATCH carries {{custom}} alone: {body}"
        );
        self.count("patch");
        let now = self.clock_ms();
        let answer = self.patch_answer(r, &id, &custom);
        self.data_return.borrow_mut().patches.push(Patch {
            at_ms: now,
            conversation_id: id,
            custom,
            status: answer.as_ref().map_or(0, |a| a.status),
        });
        answer
    }

    fn patch_answer(&self, r: &Request, id: &str, custom: &Value) -> Result<Response, String> {
        let budget = self.spend_budget();
        if let Some(Ok(refused)) = budget
            .as_ref()
            .filter(|b| matches!(b, Ok(r) if r.status == 429))
        {
            return Ok(refused.clone());
        }
        let fault = self.data_return.borrow_mut().patch_faults.pop_front();
        let fault = fault.or_else(|| self.kustomer_faults.borrow_mut().pop_front());
        let answer = match fault {
            Some(fault) => fault.answer(&r.url),
            None => {
                let key = header(r, "authorization")
                    .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
                match key.and_then(|k| self.keys.get(&k).cloned()) {
                    None => kustomer_error(401, "unauthorized", "Unauthorized"),
                    Some(org) if org != ORG => kustomer_error(404, "not_found", "Not Found"),
                    Some(_) => match self.conversations.borrow_mut().get_mut(id) {
                        None => kustomer_error(404, "not_found", "Not Found"),
                        Some(doc) => {
                            let attributes = &mut doc["data"]["attributes"];
                            if !attributes["custom"].is_object() {
                                attributes["custom"] = json!({});
                            }
                            // As Kustomer: null removes the attribute.
                            for (k, v) in custom.as_object().into_iter().flatten() {
                                match (attributes["custom"].as_object_mut(), v.is_null()) {
                                    (Some(map), true) => drop(map.remove(k)),
                                    _ => attributes["custom"][k] = v.clone(),
                                }
                            }
                            ok(doc.clone())
                        }
                    },
                }
            }
        };
        match (answer, budget) {
            (Ok(answer), Some(Ok(headers))) => Ok(Response {
                headers: headers.headers,
                ..answer
            }),
            (answer, _) => answer,
        }
    }
}

/// Agent Connect's check of the JWT: raw (no `Bearer `), HS256, signed with [`STELLA_SECRET`],
/// `iat` within a minute of `now_ms`. Its `iat`, or why not.
fn check_jwt(token: Option<&str>, now_ms: i64) -> Result<i64, String> {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let token = token.ok_or("no authorization")?;
    if token.starts_with("Bearer ") {
        return Err("a Bearer token, not a raw JWT".into());
    }
    let head = decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
    if head.alg != Algorithm::HS256 {
        return Err(format!("alg {:?}", head.alg));
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let key = DecodingKey::from_secret(STELLA_SECRET.as_bytes());
    let data = decode::<Value>(token, &key, &validation).map_err(|e| format!("JWT: {e}"))?;
    let iat = data.claims["iat"].as_i64().ok_or("no iat")?;
    if (iat * 1000 - now_ms).abs() > 60_000 {
        return Err(format!("iat {iat} is not within a minute of {now_ms} ms"));
    }
    Ok(iat)
}
