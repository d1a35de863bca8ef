//! The Kustomer API calls the edge makes, with the org's own key, and the cache that keeps a
//! survey at two calls in steady state: the conversation and the customer are always read
//! fresh (they change), the agent's email, tag names and brand names are cached for a few
//! minutes.

use super::{Request, Response, SendError, Store, Transport, MAX_URL_BYTES};
use crate::decision::{self, Record, SurveyInput};
use crate::error::codes;
use crate::kustomer::{self, At, Brand, Conversation, Customer, Tag, User};
use crate::redact::scrub;
use crate::response::{classify_response, network_error, Outcome};
use crate::settings::Secret;
use crate::settings::Settings;
use crate::timestamp;
use serde_json::Value;

codes! {
    /// Why a Kustomer (or Stella) call failed for good.
    pub enum FetchError {
        /// The server refused the call (a 4xx other than 404).
        Rejected = "rejected",
        /// The server has no such record (404).
        NotFound = "not_found",
        /// The answer cannot be read.
        InvalidResponse = "invalid_response",
        /// The API URL cannot take the path.
        InvalidUrl = "invalid_url",
        /// The request cannot be made at all.
        RequestRefused = "request_refused",
    }
}

/// Why a call did not give a usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Temporary: try again, after `wait_ms` if the server said.
    Retry {
        /// The server's requested wait, ms.
        wait_ms: Option<i64>,
        /// What happened.
        message: String,
    },
    /// Not tried: the org's API budget allows no more calls for now.
    Paced,
    /// Permanent: a refusal, a missing record, or an answer that cannot be read.
    Fatal {
        /// Stable code.
        code: FetchError,
        /// What happened, with the server's words.
        message: String,
    },
}

/// Maps an HTTP answer (or its absence) to a value or a [`Failure`]. The other side's words
/// (an error body, a runtime's error text) are where a key may come back, so `keys` are
/// masked out of them here, as they enter, in every form [`scrub`] knows.
pub fn interpret(
    result: Result<Response, SendError>,
    now_ms: i64,
    service: &str,
    keys: &[&str],
) -> Result<Response, Failure> {
    // What an answer (or no answer) means is decided in `response`; this only words it.
    let response = match result {
        Ok(response) => response,
        Err(SendError::Network(e)) => {
            return Err(failure(network_error(&scrub(&e, keys)), service))
        }
        // Nothing was sent: the work waits, as for the org's API budget.
        Err(SendError::Paced | SendError::OverBudget) => return Err(Failure::Paced),
        Err(SendError::Refused(e)) => {
            return Err(Failure::Fatal {
                code: FetchError::RequestRefused,
                message: format!(
                    "The request to {service} cannot be made: {}",
                    scrub(&e, keys)
                ),
            })
        }
    };
    let now = timestamp::from_millis(now_ms as f64);
    match classify_response(&response, now) {
        Outcome::Sent { .. } => Ok(response),
        _ => {
            let scrubbed = Response {
                body: scrub(&response.body, keys),
                ..response
            };
            Err(failure(classify_response(&scrubbed, now), service))
        }
    }
}

/// A retry or a refusal, in words that name the service.
fn failure(outcome: Outcome, service: &str) -> Failure {
    match outcome {
        Outcome::Retry {
            wait_seconds,
            message,
            status,
        } => Failure::Retry {
            wait_ms: wait_seconds.map(|s| (s as i64).saturating_mul(1000)),
            message: match status {
                Some(status) => format!("{service} answered {status}: {message}"),
                None => format!("{service} did not answer: {message}"),
            },
        },
        Outcome::Rejected { status, message } => Failure::Fatal {
            code: if status == 404 {
                FetchError::NotFound
            } else {
                FetchError::Rejected
            },
            message: format!("{service} answered {status}: {message}"),
        },
        // Not reached: `interpret` returns a 2xx as the answer itself.
        Outcome::Sent { status } => Failure::Fatal {
            code: FetchError::Rejected,
            message: format!("{service} answered {status}"),
        },
    }
}

/// `GET {kustomerApiUrl}{path}` with the org's key, parsed as JSON.
pub async fn get<T: Transport>(
    transport: &T,
    api_url: &str,
    key: &str,
    segments: &[&str],
    now_ms: i64,
) -> Result<Value, Failure> {
    let url = api_url_with(api_url, segments).ok_or_else(|| Failure::Fatal {
        code: FetchError::InvalidUrl,
        message: "The Kustomer API URL cannot take a path.".into(),
    })?;
    if url.len() > MAX_URL_BYTES {
        return Err(Failure::Fatal {
            code: FetchError::RequestRefused,
            message: format!(
                "The request to Kustomer cannot be made: its URL is over {MAX_URL_BYTES} bytes."
            ),
        });
    }
    let request =
        Request::get(url).credential("authorization", Secret::new(format!("Bearer {key}")));
    let response = interpret(transport.send(request).await, now_ms, "Kustomer", &[key])?;
    kustomer::from_json(&response.body).map_err(|e| Failure::Fatal {
        code: FetchError::InvalidResponse,
        message: format!("Kustomer's answer: {e}"),
    })
}

/// `{base}/{segments…}`, each segment percent-encoded (commas kept, for `/v1/tags/a,b`).
pub(crate) fn api_url_with(base: &str, segments: &[&str]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url.into())
}

/// What Kustomer says about a key (`GET /v1/auth/tokens/current`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The org the key belongs to.
    pub org: String,
    /// The key's roles.
    pub roles: Vec<String>,
}

/// Reads the key's org and roles. The answer's shape is not documented: the org is read from
/// `data.attributes.org` or `data.relationships.org.data.id` (a guess kept here alone).
pub async fn token_info<T: Transport>(
    transport: &T,
    api_url: &str,
    key: &str,
    now_ms: i64,
) -> Result<TokenInfo, Failure> {
    let doc = get(
        transport,
        api_url,
        key,
        &["v1", "auth", "tokens", "current"],
        now_ms,
    )
    .await?;
    let data = At::root(&doc).get("data");
    let read = || -> Result<TokenInfo, crate::InputError> {
        let attrs = data.get("attributes");
        let org = match attrs.get("org").opt_string()? {
            Some(org) => org,
            None => data
                .get("relationships")
                .get("org")
                .get("data")
                .get("id")
                .string()?,
        };
        Ok(TokenInfo {
            org,
            roles: attrs.get("roles").strings()?,
        })
    };
    read().map_err(|e| Failure::Fatal {
        code: FetchError::InvalidResponse,
        message: format!("Kustomer's token answer: {e}"),
    })
}

/// Everything the decision reads, fetched for one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// The conversation, fresh.
    pub conversation: Conversation,
    /// Its customer, fresh.
    pub customer: Option<Customer>,
    /// The first assigned user (cached).
    pub user: Option<User>,
    /// Its tags (names cached per id).
    pub tags: Vec<Tag>,
    /// Its brand (name cached per id), read only when the brand map is set.
    pub brand: Option<Brand>,
}

impl Inputs {
    /// What the decision reads, for a conversation of `org` (when known).
    pub fn survey_input<'a>(&'a self, org: Option<&'a str>) -> SurveyInput<'a> {
        SurveyInput {
            conversation: &self.conversation,
            customer: self.customer.as_ref(),
            user: self.user.as_ref(),
            tags: &self.tags,
            brand: self.brand.as_ref(),
            org,
        }
    }
}

fn shape(what: &str) -> impl Fn(crate::InputError) -> Failure + '_ {
    move |e| Failure::Fatal {
        code: FetchError::InvalidResponse,
        message: format!("Kustomer's {what}: {e}"),
    }
}

/// Fetches the conversation and what the decision needs with it. With a `cache`, user
/// emails, tag names and brand names are reused for `cache_ms`. The brand is read only when
/// the brand map is set: nothing else reads its name.
pub async fn fetch_inputs<T: Transport>(
    transport: &T,
    cache: Option<&dyn Store>,
    settings: &Settings,
    conversation_id: &str,
    now_ms: i64,
    cache_ms: i64,
) -> Result<Inputs, Failure> {
    let (api, key) = (
        settings.kustomer_api_url.as_str(),
        settings.kustomer_api_key.expose(),
    );
    let doc = get(
        transport,
        api,
        key,
        &["v1", "conversations", conversation_id],
        now_ms,
    )
    .await?;
    let conversation = kustomer::parse_conversation(&doc).map_err(shape("conversation"))?;
    // The records the decision reads, as the core lists them.
    let records = decision::records(&conversation);
    let owned = |id: &str| id.to_owned();
    let (customer_id, agent_id) = (records.customer.map(owned), records.agent.map(owned));
    let brand_id = records
        .brand
        .filter(|_| !settings.brand_map.is_empty())
        .map(owned);
    let tag_ids: Vec<String> = records.tags.into_iter().map(owned).collect();

    let customer = match &customer_id {
        Some(id) => {
            let doc = get(transport, api, key, &Record::Customer.path(id), now_ms).await?;
            Some(kustomer::parse_customer(&doc).map_err(shape("customer"))?)
        }
        None => None,
    };

    let cached = |k: &str| cache.and_then(|c| c.cache_get(k, now_ms).ok().flatten());
    let remember = |k: &str, v: &str| {
        if let Some(c) = cache {
            let _ = c.cache_put(k, v, now_ms + cache_ms); // a cache write that fails costs a call later, nothing more
        }
    };

    let user = match &agent_id {
        None => None,
        Some(id) => {
            let cache_key = format!("user:{id}");
            match cached(&cache_key) {
                Some(email) => Some(User {
                    id: id.clone(),
                    email: Some(email).filter(|e| !e.is_empty()),
                }),
                None => {
                    let doc = get(transport, api, key, &Record::User.path(id), now_ms).await?;
                    let user = kustomer::parse_user(&doc).map_err(shape("user"))?;
                    remember(&cache_key, user.email.as_deref().unwrap_or(""));
                    Some(user)
                }
            }
        }
    };

    let mut tags = Vec::new();
    let mut missing = Vec::new();
    for id in &tag_ids {
        match cached(&format!("tag:{id}")) {
            Some(name) => tags.push(Tag {
                id: id.clone(),
                name: Some(name).filter(|n| !n.is_empty()),
            }),
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        // One call for all the names not cached: `GET /v1/tags/{id1,id2,…}`.
        let doc = get(
            transport,
            api,
            key,
            &Record::Tags.path(&missing.join(",")),
            now_ms,
        )
        .await?;
        let fetched = kustomer::parse_tags(&doc).map_err(shape("tags"))?;
        for id in missing {
            let name = fetched
                .iter()
                .find(|t| t.id == id)
                .and_then(|t| t.name.clone());
            remember(&format!("tag:{id}"), name.as_deref().unwrap_or(""));
            tags.push(Tag {
                id: id.to_owned(),
                name,
            });
        }
    }
    let brand = match brand_id {
        None => None,
        Some(id) => {
            let cache_key = format!("brand:{id}");
            match cached(&cache_key) {
                Some(name) => Some(Brand {
                    name: Some(name).filter(|n| !n.is_empty()),
                    id,
                }),
                None => {
                    match get(transport, api, key, &Record::Brand.path(&id), now_ms).await {
                        Ok(doc) => {
                            let brand = kustomer::parse_brand(&doc).map_err(shape("brand"))?;
                            remember(&cache_key, brand.name.as_deref().unwrap_or(""));
                            Some(brand)
                        }
                        // No such brand: the decision says the brand could not be read (a
                        // missing brand is not a missing conversation).
                        Err(Failure::Fatal {
                            code: FetchError::NotFound,
                            ..
                        }) => None,
                        Err(other) => return Err(other),
                    }
                }
            }
        }
    };
    Ok(Inputs {
        conversation,
        customer,
        user,
        tags,
        brand,
    })
}
