#![cfg(not(target_arch = "wasm32"))]
//! The roster at the edge, on the host: every page read through the org's Agent Connect pace,
//! cached a day per set of credentials, agents assessed against it; `POST /v1/roster` and
//! "Check connection"'s list of agents without a profile. A small fake Agent Connect and
//! Kustomer answer here (`RosterWorld`); the store and clock are the edge fakes'.

mod support;

#[path = "support/edge_fakes.rs"]
mod edge_fakes;

use edge_fakes::{
    block_on, settings_headers_with, test_sealer, MemStore, SimClock, KUSTOMER_KEY, ORG,
};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use stella_connect::edge::agent_connect::{self, StellaPace, ROSTER_CALLS_PER_MINUTE};
use stella_connect::edge::gateway::{Gateway, Incoming, Router};
use stella_connect::edge::residency::Place;
use stella_connect::edge::roster::{RosterQuery, MAX_PAGES, PAGE_SIZE, ROSTER_TTL_MS};
use stella_connect::edge::scheduler::{Command, Scheduler};
use stella_connect::edge::{Config, Reply, Request, Response, SendError, Store, Transport};
use stella_connect::settings::Secret;

const STELLA_API: &str = "https://api.stellaconnect.net";
const KUSTOMER_API: &str = "https://api.kustomerapp.com";
const STELLA_KEY: &str = "stella-live-key-Bn5Rt8";
const SECRET: &str = "stella-api-secret-Qz7Wx3Lk9";
const FORGED_KEY: &str = "stella-forged-key-Hh4Jj6";
const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Agent Connect's employee list and Kustomer's users, as the roster reads them.
struct RosterWorld {
    employees: RefCell<Vec<Value>>,
    users: RefCell<Vec<Value>>,
    /// Answers given instead of the employee list's, in order.
    faults: RefCell<VecDeque<(u16, String)>>,
    /// Whether answers carry each employee's `status` (the contract's list schema does not).
    with_status: Cell<bool>,
    /// Every request, credentials included.
    requests: RefCell<Vec<Request>>,
    time: Rc<Cell<i64>>,
}

impl RosterWorld {
    fn new(time: Rc<Cell<i64>>) -> Rc<Self> {
        let mut employees = vec![
            json!({"email": "Sam.Agent@acme.example", "status": "active", "channels": ["email", "chat", "phone"]}),
            json!({"email": "kim.agent@acme.example", "status": "unapproved", "channels": ["email", "chat"]}),
            json!({"email": "ria.agent@acme.example", "status": "active", "channels": ["email"]}),
        ];
        for i in 0..1200 {
            employees.push(json!({"email": format!("agent{i}@acme.example"), "status": "active", "channels": ["email"]}));
        }
        let user = |id: &str, name: &str, email: &str| json!({"type": "user", "id": id, "attributes": {"name": name, "displayName": name, "email": email}});
        let mut users = vec![
            user("user-sam", "Sam Agent", "sam.agent@acme.example"),
            user("user-kim", "Kim Agent", "kim.agent@acme.example"),
            user("user-ria", "Ria Agent", "ria.agent@acme.example"),
            user("user-new", "New Hire", "new.hire@acme.example"),
        ];
        for i in 0..150 {
            users.push(user(
                &format!("u{i}"),
                &format!("Agent {i}"),
                &format!("agent{i}@acme.example"),
            ));
        }
        Rc::new(Self {
            employees: RefCell::new(employees),
            users: RefCell::new(users),
            faults: RefCell::default(),
            with_status: Cell::new(true),
            requests: RefCell::default(),
            time,
        })
    }

    fn employee_requests(&self) -> Vec<Request> {
        (self.requests.borrow().iter())
            .filter(|r| r.url.starts_with(&format!("{STELLA_API}/v2/employees")))
            .cloned()
            .collect()
    }

    fn answer(&self, r: &Request) -> Response {
        self.requests.borrow_mut().push(r.clone());
        let url = url::Url::parse(&r.url).unwrap();
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        if r.url.starts_with(&format!("{STELLA_API}/v1/requests")) {
            // "Check connection"'s key probe: a known key gets the empty body refused.
            let known = r.header("x-api-key") == Some(STELLA_KEY);
            return Response::new(if known { 400 } else { 403 }, "refused");
        }
        if r.url.starts_with(STELLA_API) {
            assert_eq!((r.method, url.path()), ("GET", "/v2/employees"), "{r:?}");
            if let Some((status, body)) = self.faults.borrow_mut().pop_front() {
                return Response::new(status, body);
            }
            // The key, and a raw HS256 JWT over the key's secret with the current iat.
            let token =
                agent_connect::token(&Secret::new(SECRET.to_owned()), self.time.get()).unwrap();
            if r.header("x-api-key") != Some(STELLA_KEY)
                || r.header("authorization") != Some(token.expose())
            {
                return Response::new(403, "Forbidden");
            }
            let size: usize = query["number_of_employees"].parse().unwrap();
            assert!(size <= 500, "the contract's most is 500");
            let status = query.get("status");
            let all: Vec<Value> = (self.employees.borrow().iter())
                .filter(|e| status.is_none_or(|s| e["status"] == **s))
                .cloned()
                .collect();
            let start = match query.get("external_id") {
                Some(after) => all.iter().position(|e| e["email"] == **after).unwrap() + 1,
                None => 0,
            };
            let mut page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
            let next = (start + size < all.len()).then(|| {
                let last = page.last().unwrap()["email"].as_str().unwrap();
                format!("https://acme.api.stellaconnect.net/v2/employees?external_id={last}&number_of_employees={size}")
            });
            if !self.with_status.get() {
                for e in &mut page {
                    e.as_object_mut().unwrap().remove("status");
                }
            }
            return Response::new(
                200,
                json!({"employees": page, "meta": {"next_page": next}}).to_string(),
            );
        }
        assert!(r.url.starts_with(KUSTOMER_API), "{r:?}");
        if r.header("authorization") != Some(&format!("Bearer {KUSTOMER_KEY}")) {
            return Response::new(401, json!({"errors": [{"status": 401}]}).to_string());
        }
        match url.path() {
            "/v1/auth/tokens/current" => Response::new(
                200,
                json!({"data": {"type": "token", "id": "t", "attributes": {"org": ORG, "roles": [
                    "org.permission.conversation.read", "org.permission.customer.read",
                    "org.permission.user.read", "org.permission.tag.read"]}}})
                .to_string(),
            ),
            // The app's link, as the settings page saved it for the tests' app secret.
            "/v1/settings/stella_connect/default/appSecretFingerprint" => Response::new(
                200,
                json!({"data": {"attributes": {"value": stella_connect::edge::trust::fingerprint(edge_fakes::APP_SECRET)}}})
                    .to_string(),
            ),
            "/v1/users" => {
                let page: usize = query["page"].parse().unwrap();
                let size: usize = query["pageSize"].parse().unwrap();
                let users = self.users.borrow();
                let data: Vec<Value> = users
                    .iter()
                    .skip((page - 1) * size)
                    .take(size)
                    .cloned()
                    .collect();
                let next = (page * size < users.len())
                    .then(|| format!("/v1/users?page={}&pageSize={size}", page + 1));
                Response::new(
                    200,
                    json!({"data": data, "links": {"next": next}}).to_string(),
                )
            }
            other => panic!("no such Kustomer route: {other}"),
        }
    }
}

#[derive(Clone)]
struct Net(Rc<RosterWorld>);

impl Transport for Net {
    async fn send(&self, request: Request) -> Result<Response, SendError> {
        Ok(self.0.answer(&request))
    }
}

type OrgScheduler = Scheduler<MemStore, Net, SimClock>;

/// The org's one scheduler, reached as the worker reaches its Durable Object (JSON both ways,
/// the asynchronous entry), and a per-bucket limiter.
struct OneOrg {
    scheduler: Rc<OrgScheduler>,
    limits: RefCell<BTreeMap<String, u32>>,
}

impl Router for OneOrg {
    async fn forward(&self, place: &Place, command: &Command) -> Result<Reply, String> {
        assert_eq!((place.org.as_str(), place.jurisdiction), (ORG, None));
        let command: Command =
            serde_json::from_str(&serde_json::to_string(command).unwrap()).unwrap();
        Ok(self.scheduler.command_async(command).await)
    }

    async fn limit(&self, bucket: &str, per_minute: u32) -> Result<Option<u32>, String> {
        let mut limits = self.limits.borrow_mut();
        let used = limits.entry(bucket.to_owned()).or_default();
        *used += 1;
        Ok((*used > per_minute).then_some(60))
    }
}

struct Rig {
    world: Rc<RosterWorld>,
    time: Rc<Cell<i64>>,
    gateway: Gateway<Net, OneOrg>,
    replies: RefCell<Vec<Reply>>,
}

impl Rig {
    fn new() -> Self {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Self {
        let time = Rc::new(Cell::new(NOW));
        let world = RosterWorld::new(time.clone());
        let scheduler = Rc::new(Scheduler::new(
            MemStore::default(),
            Net(world.clone()),
            SimClock(time.clone()),
            config,
            test_sealer(),
        ));
        let router = OneOrg {
            scheduler,
            limits: RefCell::default(),
        };
        Self {
            gateway: Gateway::new(Net(world.clone()), router, config),
            world,
            time,
            replies: RefCell::default(),
        }
    }

    fn scheduler(&self) -> &OrgScheduler {
        &self.gateway.router.scheduler
    }

    /// The settings text a roster command carries, with `changes`.
    fn settings(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut raw = serde_json::Map::new();
        for (k, v) in self.headers(changes) {
            let key = stella_connect::settings::FIELDS
                .iter()
                .find(|f| stella_connect::edge::setting_header(f.key) == k)
                .unwrap()
                .key;
            if key != "appSecret" {
                raw.insert(key.to_owned(), json!(v));
            }
        }
        Value::Object(raw).to_string()
    }

    fn headers(&self, changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
        let mut all = vec![("stellaApiSecret", Some(SECRET))];
        all.extend_from_slice(changes);
        settings_headers_with(&all)
    }

    /// A roster command straight to the org's scheduler.
    fn command(
        &self,
        changes: &[(&str, Option<&str>)],
        agents: &[&str],
        channel: Option<&str>,
    ) -> Reply {
        let query = RosterQuery {
            settings: stella_connect::edge::job::StoredSettings(self.settings(changes)),
            agents: agents
                .iter()
                .map(|e| stella_connect::edge::roster::Agent {
                    email: (*e).into(),
                    name: None,
                })
                .collect(),
            channel: channel.map(str::to_owned),
            fetch: true,
        };
        let reply = block_on(self.scheduler().command_async(Command::Roster { query }));
        self.replies.borrow_mut().push(reply.clone());
        reply
    }

    fn call(&self, path: &str, headers: &[(String, String)], body: &str) -> Reply {
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let reply = block_on(self.gateway.handle(Incoming {
            method: "POST",
            path,
            query: "",
            header: &lookup,
            body,
            now_ms: self.time.get(),
        }));
        self.replies.borrow_mut().push(reply.clone());
        reply
    }

    /// No reply holds the key, the secret or a JWT of it.
    fn assert_no_secrets(&self) {
        let token = agent_connect::token(&Secret::new(SECRET.to_owned()), self.time.get()).unwrap();
        let jwt_head = token.expose().split('.').next().unwrap().to_owned();
        for reply in self.replies.borrow().iter() {
            let text = serde_json::to_string(reply).unwrap();
            for secret in [
                STELLA_KEY,
                SECRET,
                FORGED_KEY,
                KUSTOMER_KEY,
                jwt_head.as_str(),
            ] {
                assert!(!text.contains(secret), "a reply shows a secret: {text}");
            }
        }
    }
}

#[test]
fn every_page_is_read_and_agents_are_assessed() {
    let rig = Rig::new();
    let reply = rig.command(
        &[],
        &[
            "sam.agent@acme.example",
            "kim.agent@acme.example",
            "ria.agent@acme.example",
            "nobody@acme.example",
        ],
        Some("chat"),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["available"], true);
    assert_eq!(reply.body["agents"], 1203);
    assert_eq!(reply.body["fetchedAt"], "2026-01-01T00:00:00.000Z");
    let codes: Vec<&str> = (reply.body["standings"].as_array().unwrap().iter())
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ready", "not_active", "channel_off", "no_profile"]);
    // Three pages of 500, each asked with the contract's page size, the next from the cursor.
    let requests = rig.world.employee_requests();
    assert_eq!(requests.len(), 3);
    assert!(requests
        .iter()
        .all(|r| r.url.contains(&format!("number_of_employees={PAGE_SIZE}"))));
    assert!(
        requests[1]
            .url
            .starts_with(&format!("{STELLA_API}/v2/employees?external_id=")),
        "{}",
        requests[1].url
    );
    assert!(requests.iter().all(|r| r
        .header("authorization")
        .is_some_and(|a| !a.starts_with("Bearer "))));
    // The org's pace counted them.
    let pace = rig.scheduler().store.org().unwrap().stella_pace.unwrap();
    assert_eq!(pace.calls.len(), 3);
    rig.assert_no_secrets();
}

#[test]
fn the_roster_is_cached_a_day_per_set_of_credentials() {
    let rig = Rig::new();
    assert_eq!(rig.command(&[], &[], None).status, 200);
    assert_eq!(rig.world.employee_requests().len(), 3);
    // A second call, and one an hour before the day is out: no request.
    assert_eq!(
        rig.command(&[], &["kim.agent@acme.example"], None).body["standings"][0]["code"],
        "not_active"
    );
    rig.time.set(NOW + ROSTER_TTL_MS - 3_600_000);
    assert_eq!(rig.command(&[], &[], None).status, 200);
    assert_eq!(
        rig.world.employee_requests().len(),
        3,
        "served from the cache"
    );

    // Forged credentials get their own entry: they are asked about, refused, and the org's
    // roster stays as it was.
    let forged = rig.command(&[("stellaApiKey", Some(FORGED_KEY))], &[], None);
    assert_eq!(forged.status, 502, "{forged:?}");
    assert_eq!(forged.body["error"]["code"], "stella_secret_rejected");
    let message = forged.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Agent Connect refused the API key or secret"),
        "{message}"
    );
    assert_eq!(rig.world.employee_requests().len(), 4);
    let forged_secret = rig.command(
        &[("stellaApiSecret", Some("a-guessed-secret-000"))],
        &[],
        None,
    );
    assert_eq!(
        forged_secret.body["error"]["code"],
        "stella_secret_rejected"
    );
    assert_eq!(rig.command(&[], &[], None).status, 200);
    assert_eq!(
        rig.world.employee_requests().len(),
        5,
        "the org's roster is still cached"
    );

    // A day on, it is read again.
    rig.time.set(NOW + ROSTER_TTL_MS + 1);
    let reply = rig.command(&[], &[], None);
    assert_eq!(reply.body["fetchedAt"], "2026-01-02T00:00:00.001Z");
    assert_eq!(rig.world.employee_requests().len(), 8);
    rig.assert_no_secrets();
}

#[test]
fn the_org_pace_stops_a_read_that_would_overrun_its_minute() {
    let rig = Rig::new();
    let store = &rig.scheduler().store;
    let mut record = store.org().unwrap();
    // A minute that began 30 s ago, with room for one call more of the roster's half.
    record.stella_pace = Some(StellaPace {
        calls: vec![NOW - 30_000; ROSTER_CALLS_PER_MINUTE as usize - 1],
    });
    store.put_org(&record).unwrap();
    let reply = rig.command(&[], &[], None);
    assert_eq!(reply.status, 429, "{reply:?}");
    assert_eq!(reply.body["error"]["code"], "stella_paced");
    assert_eq!(reply.retry_after, Some(30));
    assert_eq!(
        rig.world.employee_requests().len(),
        1,
        "one page fit in the minute"
    );
    assert_eq!(
        store.org().unwrap().stella_pace.unwrap().calls.len(),
        ROSTER_CALLS_PER_MINUTE as usize,
        "the other half of the minute is left to reading outcomes"
    );
    // Nothing half-read was cached: the next minute reads it whole.
    rig.time.set(NOW + 30_000);
    assert_eq!(rig.command(&[], &[], None).body["agents"], 1203);
    assert_eq!(rig.world.employee_requests().len(), 4);
}

#[test]
fn refusals_and_outages_are_clear_and_carry_no_secret() {
    let rig = Rig::new();
    let cases = [
        (
            403,
            "Forbidden for stella-live-key-Bn5Rt8",
            502,
            "stella_secret_rejected",
        ),
        (401, "no", 502, "stella_secret_rejected"),
        (429, "Too many requests", 503, "stella_unavailable"),
        (
            500,
            "boom with stella-api-secret-Qz7Wx3Lk9",
            503,
            "stella_unavailable",
        ),
        (404, "gone", 502, "stella_error"),
        (200, "not json", 502, "stella_invalid_response"),
        (
            200,
            "{\"employees\": [{\"email\": 5}]}",
            502,
            "stella_invalid_response",
        ),
    ];
    for (status, body, answered, code) in cases {
        rig.world
            .faults
            .borrow_mut()
            .push_back((status, body.to_owned()));
        let reply = rig.command(&[], &[], None);
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (answered, Some(code)),
            "{status}: {reply:?}"
        );
    }
    rig.assert_no_secrets();
    // Nothing was cached from a failure: the next call reads every page.
    let before = rig.world.employee_requests().len();
    assert_eq!(rig.command(&[], &[], None).status, 200);
    assert_eq!(rig.world.employee_requests().len(), before + 3);
}

/// Check connection with the most pages of Kustomer users: the gateway's own calls (those the
/// org's Durable Object makes, the roster and the link, are its own invocation's) stay within
/// `GATEWAY_MOST_CALLS`.
#[test]
fn check_connection_makes_at_most_the_gateways_most_calls() {
    use stella_connect::edge::subrequests::GATEWAY_MOST_CALLS;
    let rig = Rig::new();
    let more: Vec<Value> = (0..600)
        .map(|i| json!({"type": "user", "id": format!("x{i}"), "attributes": {"name": "X", "email": format!("x{i}@acme.example")}}))
        .collect();
    rig.world.users.borrow_mut().extend(more);
    let reply = rig.call("/v1/settings/check", &rig.headers(&[]), "");
    assert_eq!(reply.status, 200, "{reply:?}");
    let gateway = (rig.world.requests.borrow().iter())
        .filter(|r| !r.url.contains("/v2/employees") && !r.url.contains("/v1/settings/"))
        .count();
    assert_eq!(gateway, GATEWAY_MOST_CALLS as usize);
}

/// A roster whose pages need more outbound calls than one invocation may make: the call that
/// would go over is not made, the answer says why with its code, nothing half-read is cached,
/// and the next request counts its calls afresh.
#[test]
fn a_read_past_the_invocations_calls_answers_subrequest_budget() {
    let cap = stella_connect::edge::subrequests::MIN_PER_INVOCATION;
    let rig = Rig::with(Config {
        subrequests_per_invocation: cap,
        ..Config::default()
    });
    let more: Vec<Value> = (0..3000)
        .map(|i| json!({"email": format!("more{i}@acme.example"), "status": "active", "channels": ["email"]}))
        .collect();
    rig.world.employees.borrow_mut().extend(more);
    let reply = rig.command(&[], &[], None);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.body["error"]["code"], "subrequest_budget");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("SUBREQUESTS_PER_INVOCATION"), "{message}");
    assert_eq!(rig.world.employee_requests().len(), cap as usize);
    // Within the cap (three pages), the next request reads it whole.
    rig.world.employees.borrow_mut().truncate(1203);
    assert_eq!(rig.command(&[], &[], None).body["agents"], 1203);
    assert_eq!(rig.world.employee_requests().len(), cap as usize + 3);
    rig.assert_no_secrets();
}

#[test]
fn a_list_past_its_most_pages_fails_clearly() {
    let rig = Rig::new();
    let many: Vec<Value> = (0..(MAX_PAGES * PAGE_SIZE as usize + 1))
        .map(|i| json!({"email": format!("e{i}@acme.example"), "status": "active"}))
        .collect();
    *rig.world.employees.borrow_mut() = many;
    let reply = rig.command(&[], &[], None);
    assert_eq!(reply.body["error"]["code"], "stella_invalid_response");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 10000 employees"),
        "{reply:?}"
    );
    assert_eq!(rig.world.employee_requests().len(), MAX_PAGES);
}

#[test]
fn a_page_that_links_back_is_not_read_forever() {
    let rig = Rig::new();
    // The cursor stays put: the second page names itself again.
    *rig.world.employees.borrow_mut() = (0..600)
        .map(|i| json!({"email": format!("e{i}@x.example")}))
        .collect();
    rig.world.faults.borrow_mut().push_back((200, json!({"employees": [{"email": "a@x.example"}], "meta": {"next_page": "/v2/employees?external_id=a"}}).to_string()));
    rig.world.faults.borrow_mut().push_back((200, json!({"employees": [{"email": "b@x.example"}], "meta": {"next_page": "/v2/employees?external_id=a"}}).to_string()));
    let reply = rig.command(&[], &[], None);
    assert_eq!(
        reply.body["error"]["code"], "stella_invalid_response",
        "{reply:?}"
    );
    assert_eq!(rig.world.employee_requests().len(), 2);
}

#[test]
fn the_route_answers_for_one_agent_and_counts_only_reads() {
    let rig = Rig::new();
    let headers = rig.headers(&[]);
    let body = json!({"agentEmail": "Kim.Agent@acme.example", "agentName": "Kim Agent", "channel": "email"}).to_string();
    let reply = rig.call("/v1/roster", &headers, &body);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["available"], true);
    assert_eq!(reply.body["agents"], 1203);
    let agent = &reply.body["agent"];
    assert_eq!(agent["code"], "not_active");
    assert_eq!(agent["standing"], "Profile not active");
    assert!(agent["message"]
        .as_str()
        .unwrap()
        .starts_with("Kim Agent's Agent Connect profile is not approved yet"));
    // The Kustomer channel maps to Agent Connect's (voice → phone by default).
    let reply = rig.call(
        "/v1/roster",
        &headers,
        &json!({"agentEmail": "ria.agent@acme.example", "channel": "voice"}).to_string(),
    );
    assert_eq!(reply.body["agent"]["code"], "channel_off");
    assert!(reply.body["agent"]["message"]
        .as_str()
        .unwrap()
        .contains("the phone channel"));
    // No agent asked: the roster's size alone.
    let reply = rig.call("/v1/roster", &headers, "");
    assert_eq!(reply.body["agent"], Value::Null);
    assert_eq!(reply.body["agents"], 1203);
    // Only the first call read Agent Connect, and only it counted against the key limit.
    assert_eq!(rig.world.employee_requests().len(), 3);
    let counted: u32 = rig.gateway.router.limits.borrow().values().sum();
    assert_eq!(
        counted, 2,
        "the Kustomer key's and the Stella key's buckets, once"
    );
    // Past the key-check limit, a read that would reach Agent Connect is refused.
    for i in 0..5 {
        let forged = rig.headers(&[("stellaApiKey", Some(&format!("{FORGED_KEY}{i}")))]);
        rig.call("/v1/roster", &forged, "");
    }
    let limited = rig.call(
        "/v1/roster",
        &rig.headers(&[("stellaApiKey", Some(FORGED_KEY))]),
        "",
    );
    assert_eq!(
        (limited.status, limited.body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(
        rig.world.employee_requests().len(),
        3 + 4,
        "the limited calls asked nothing"
    );
    rig.assert_no_secrets();
}

#[test]
fn the_route_without_a_secret_or_with_a_bad_body() {
    let rig = Rig::new();
    let reply = rig.call("/v1/roster", &settings_headers_with(&[]), "{}");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({"available": false, "message": "Add the Stella Connect API secret in the app's settings to check agents' Agent Connect profiles."})
    );
    assert!(rig.world.requests.borrow().is_empty(), "nothing asked");
    for (body, path) in [
        ("[]", "body"),
        ("{\"agentEmail\": 5}", "body.agentEmail"),
        ("{\"channel\": \"a\\u0000b\"}", "body.channel"),
    ] {
        let reply = rig.call("/v1/roster", &rig.headers(&[]), body);
        assert_eq!(
            (reply.status, reply.body["error"]["path"].as_str()),
            (400, Some(path)),
            "{body}: {reply:?}"
        );
    }
    let too_long = json!({"agentEmail": "a".repeat(400)}).to_string();
    assert_eq!(
        rig.call("/v1/roster", &rig.headers(&[]), &too_long).status,
        400
    );
    assert_eq!(
        stella_connect::edge::gateway::body_limit("POST", "/v1/roster"),
        4096
    );
    assert_eq!(
        stella_connect::edge::gateway::body_limit("GET", "/v1/roster"),
        0
    );
}

#[test]
fn check_connection_lists_agents_without_a_profile_and_checks_the_secret() {
    let rig = Rig::new();
    let reply = rig.call("/v1/settings/check", &rig.headers(&[]), "");
    assert_eq!(reply.status, 200, "{reply:?}");
    let roster = &reply.body["roster"];
    assert_eq!(roster["ok"], true, "{reply:?}");
    assert_eq!(roster["agents"], 1203);
    assert_eq!(roster["checked"], 154);
    let without: Vec<(&str, &str)> = (roster["withoutProfile"].as_array().unwrap().iter())
        .map(|a| (a["email"].as_str().unwrap(), a["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        without,
        [
            ("kim.agent@acme.example", "not_active"),
            ("new.hire@acme.example", "no_profile")
        ]
    );
    assert_eq!(roster["withoutProfile"][0]["name"], "Kim Agent");
    // Two pages of Kustomer users.
    let user_calls = rig
        .world
        .requests
        .borrow()
        .iter()
        .filter(|r| r.url.contains("/v1/users?"))
        .count();
    assert_eq!(user_calls, 2);

    // A wrong secret: a field error on it, and the check is not ok.
    let reply = rig.call(
        "/v1/settings/check",
        &rig.headers(&[("stellaApiSecret", Some("wrong-secret-0000000"))]),
        "",
    );
    assert_eq!(reply.body["ok"], false);
    assert_eq!(reply.body["roster"]["code"], "stella_secret_rejected");
    assert_eq!(reply.body["fields"][0]["field"], "stellaApiSecret");
    // Without a secret, the check is as before.
    let reply = rig.call("/v1/settings/check", &settings_headers_with(&[]), "");
    assert_eq!(reply.body["roster"], Value::Null);
    rig.assert_no_secrets();
}

#[test]
fn statuses_the_list_does_not_say_are_read_by_the_status_filter() {
    let rig = Rig::new();
    rig.world.with_status.set(false);
    let reply = rig.command(
        &[],
        &["kim.agent@acme.example", "sam.agent@acme.example"],
        Some("email"),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let codes: Vec<&str> = (reply.body["standings"].as_array().unwrap().iter())
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["not_active", "ready"]);
    assert!(reply.body["standings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("is not approved yet"));
    // Three pages of the whole list, then one page for each status other than active.
    let requests = rig.world.employee_requests();
    assert_eq!(requests.len(), 3 + 5);
    assert!(requests[3..].iter().all(|r| r.url.contains("status=")));
    assert!(requests
        .iter()
        .any(|r| r.url.contains("status=pending+review")));
}
