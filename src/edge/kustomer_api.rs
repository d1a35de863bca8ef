//! The Kustomer API calls the edge makes, with the org's own key, and the cache that keeps a
//! survey at two calls in steady state: the conversation and the customer are always read
//! fresh (they change), the agent's email, tag names and brand names are cached for a few
//! minutes. Every Kustomer request is built by [`Kustomer`], so the URL bounds apply to all.

use super::interpret::{interpret, Failure, FetchError};
use super::{Request, Store, Transport, MAX_URL_BYTES};
use crate::decision::{self, Inputs, Record};
use crate::json::{self, At};
use crate::kustomer::{self, Brand, Customer, Tag, User};
use crate::settings::Secret;
use crate::settings::Settings;
use serde_json::Value;

/// The org's Kustomer API and key: builds every request the edge makes to Kustomer, each
/// segment percent-encoded and the whole URL within [`MAX_URL_BYTES`], with the key as a
/// credential (masked everywhere but on the wire).
#[derive(Clone, Copy)]
pub struct Kustomer<'a> {
    /// The Kustomer API URL (validated with the settings).
    pub api_url: &'a str,
    /// The org's Kustomer API key.
    pub key: &'a str,
}

impl<'a> Kustomer<'a> {
    /// The API and key of these settings.
    pub fn of(settings: &'a Settings) -> Self {
        Self {
            api_url: &settings.kustomer_api_url,
            key: settings.kustomer_api_key.expose(),
        }
    }

    /// `{api_url}/{segments…}?{query}`, or why no request can be made with it.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<String, Failure> {
        let url = url_with(self.api_url, segments, query).ok_or_else(|| Failure::Fatal {
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
        Ok(url)
    }

    /// A `GET` of `segments` with `query`.
    pub fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Request, Failure> {
        Ok(self.authorized(Request::get(self.url(segments, query)?)))
    }

    /// A `POST` of JSON text to `segments` with `query`.
    pub fn post_json(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        body: String,
    ) -> Result<Request, Failure> {
        let url = self.url(segments, query)?;
        Ok(self.authorized(Request::post_json(url, body)))
    }

    /// A `PATCH` of JSON text to `segments` (a partial update of a record).
    pub fn patch_json(&self, segments: &[&str], body: String) -> Result<Request, Failure> {
        let url = self.url(segments, &[])?;
        Ok(self.authorized(Request::patch_json(url, body)))
    }

    fn authorized(&self, request: Request) -> Request {
        request.credential("authorization", Secret::new(format!("Bearer {}", self.key)))
    }

    /// `GET {api_url}/{segments…}`, read as JSON.
    pub async fn fetch<T: Transport>(
        &self,
        transport: &T,
        segments: &[&str],
        now_ms: i64,
    ) -> Result<Value, Failure> {
        let request = self.get(segments, &[])?;
        self.read(transport, request, now_ms, "answer").await
    }

    /// Sends `request` and reads the answer as JSON; `what` names it in a refusal's words.
    pub async fn read<T: Transport>(
        &self,
        transport: &T,
        request: Request,
        now_ms: i64,
        what: &str,
    ) -> Result<Value, Failure> {
        let response = interpret(
            transport.send(request).await,
            now_ms,
            "Kustomer",
            &[self.key],
        )?;
        json::from_json(&response.body).map_err(shape(what))
    }
}

/// A failed Kustomer call in words: the server's (masked), or that the org's budget is spent.
pub fn words(failure: &Failure) -> String {
    match failure {
        Failure::Paced => "Kustomer's API budget is spent for now.".into(),
        other => other.to_string(),
    }
}

/// `{base}/{segments…}?{query}`, each segment percent-encoded (commas kept, for
/// `/v1/tags/a,b`).
fn url_with(base: &str, segments: &[&str], query: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
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
    let path = ["v1", "auth", "tokens", "current"];
    let doc = (Kustomer { api_url, key })
        .fetch(transport, &path, now_ms)
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
    let reader = Reader {
        transport,
        kustomer: Kustomer::of(settings),
        cache,
        now_ms,
        cache_ms,
    };
    let doc = reader
        .get(&["v1", "conversations", conversation_id])
        .await?;
    let conversation = kustomer::parse_conversation(&doc).map_err(shape("conversation"))?;
    // The records the decision reads, as the core lists them.
    let records = decision::records(&conversation);
    let brand = records.brand.filter(|_| !settings.brand_map.is_empty());
    let (customer, user, tags, brand) = (
        reader.customer(records.customer).await?,
        reader.user(records.agent).await?,
        reader.tags(&records.tags).await?,
        reader.brand(brand).await?,
    );
    Ok(Inputs {
        conversation,
        customer,
        user,
        tags,
        brand,
    })
}

/// One conversation's reads: Kustomer with the org's key, and the cache of names.
struct Reader<'a, T> {
    transport: &'a T,
    kustomer: Kustomer<'a>,
    cache: Option<&'a dyn Store>,
    now_ms: i64,
    cache_ms: i64,
}

impl<T: Transport> Reader<'_, T> {
    async fn get(&self, segments: &[&str]) -> Result<Value, Failure> {
        (self.kustomer)
            .fetch(self.transport, segments, self.now_ms)
            .await
    }

    /// A cached name (or email); empty when the record had none.
    fn cached(&self, key: &str) -> Option<String> {
        (self.cache).and_then(|c| c.cache_get(key, self.now_ms).ok().flatten())
    }

    fn remember(&self, key: &str, value: Option<&str>) {
        if let Some(c) = self.cache {
            // A cache write that fails costs a call later, nothing more.
            let _ = c.cache_put(key, value.unwrap_or(""), self.now_ms + self.cache_ms);
        }
    }

    /// The customer, fresh.
    async fn customer(&self, id: Option<&str>) -> Result<Option<Customer>, Failure> {
        let Some(id) = id else { return Ok(None) };
        let doc = self.get(&Record::Customer.path(id)).await?;
        Ok(Some(
            kustomer::parse_customer(&doc).map_err(shape("customer"))?,
        ))
    }

    /// The assigned user, their email cached.
    async fn user(&self, id: Option<&str>) -> Result<Option<User>, Failure> {
        let Some(id) = id else { return Ok(None) };
        let cache_key = format!("user:{id}");
        if let Some(email) = self.cached(&cache_key) {
            return Ok(Some(User {
                id: id.to_owned(),
                email: Some(email).filter(|e| !e.is_empty()),
            }));
        }
        let doc = self.get(&Record::User.path(id)).await?;
        let user = kustomer::parse_user(&doc).map_err(shape("user"))?;
        self.remember(&cache_key, user.email.as_deref());
        Ok(Some(user))
    }

    /// The tags, names cached per id; one call for all the names not cached:
    /// `GET /v1/tags/{id1,id2,…}`.
    async fn tags(&self, ids: &[&str]) -> Result<Vec<Tag>, Failure> {
        let mut tags = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.cached(&format!("tag:{id}")) {
                Some(name) => tags.push(Tag {
                    id: (*id).to_owned(),
                    name: Some(name).filter(|n| !n.is_empty()),
                }),
                None => missing.push(*id),
            }
        }
        if missing.is_empty() {
            return Ok(tags);
        }
        let doc = self.get(&Record::Tags.path(&missing.join(","))).await?;
        let fetched = kustomer::parse_tags(&doc).map_err(shape("tags"))?;
        for id in missing {
            let name = (fetched.iter().find(|t| t.id == id)).and_then(|t| t.name.clone());
            self.remember(&format!("tag:{id}"), name.as_deref());
            tags.push(Tag {
                id: id.to_owned(),
                name,
            });
        }
        Ok(tags)
    }

    /// The brand, its name cached. No such brand: the decision says the brand could not be
    /// read (a missing brand is not a missing conversation).
    async fn brand(&self, id: Option<&str>) -> Result<Option<Brand>, Failure> {
        let Some(id) = id else { return Ok(None) };
        let cache_key = format!("brand:{id}");
        if let Some(name) = self.cached(&cache_key) {
            return Ok(Some(Brand {
                name: Some(name).filter(|n| !n.is_empty()),
                id: id.to_owned(),
            }));
        }
        match self.get(&Record::Brand.path(id)).await {
            Ok(doc) => {
                let brand = kustomer::parse_brand(&doc).map_err(shape("brand"))?;
                self.remember(&cache_key, brand.name.as_deref());
                Ok(Some(brand))
            }
            Err(Failure::Fatal {
                code: FetchError::NotFound,
                ..
            }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kustomer_request_is_bounded_encoded_and_keyed() {
        let k = Kustomer {
            api_url: "https://api.kustomerapp.com",
            key: "k-123",
        };
        let get = k.get(&["v1", "tags", "a,b c"], &[]).unwrap();
        assert_eq!(get.url, "https://api.kustomerapp.com/v1/tags/a,b%20c");
        assert_eq!(get.header("authorization"), Some("Bearer k-123"));
        let query = [("page", "2"), ("pageSize", "100")];
        let post = k.post_json(&["v1", "customers", "search"], &query, "{}".into());
        let post = post.unwrap();
        assert_eq!(
            (post.method, post.url.as_str()),
            (
                "POST",
                "https://api.kustomerapp.com/v1/customers/search?page=2&pageSize=100"
            )
        );
        let patch = k.patch_json(&["v1", "conversations", "c/1"], "{}".into());
        let patch = patch.unwrap();
        assert_eq!(
            (patch.method, patch.url.as_str()),
            (
                "PATCH",
                "https://api.kustomerapp.com/v1/conversations/c%2F1"
            )
        );
        let long = "x".repeat(MAX_URL_BYTES);
        for refused in [
            k.get(&["v1", &long], &[]),
            k.patch_json(&[&long], "{}".into()),
        ] {
            assert!(matches!(
                refused,
                Err(Failure::Fatal {
                    code: FetchError::RequestRefused,
                    ..
                })
            ));
        }
        let no_base = Kustomer {
            api_url: "mailto:a@b",
            key: "k",
        };
        assert!(matches!(
            no_base.get(&["v1"], &[]),
            Err(Failure::Fatal {
                code: FetchError::InvalidUrl,
                ..
            })
        ));
    }
}
