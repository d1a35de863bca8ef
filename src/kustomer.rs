//! Kustomer's records as the app reads them: the `kustomer.conversation.update` event and the
//! JSON:API answers of `GET /v1/conversations/{id}`, `/v1/customers/{id}`, `/v1/users/{id}`,
//! `/v1/tags/{ids}` and `/v1/brands/{id}`.
//!
//! Parsing is lenient where Kustomer is loose (unknown fields, `null` lists, relationships with
//! `links` but no `data`) and strict where a wrong type would change the decision: a wrong shape
//! is an [`InputError`] that names the JSON path.

use crate::error::{InputError, InputErrorCode};
use crate::json::{At, Keep};
use serde_json::{Map, Value};

/// The app's identifier in its definition; Kustomer prefixes the app's attributes with it.
pub const APP_IDENTIFIER: &str = "stella";
/// The "do not send" checkbox on conversations, as the app declares it (and as the manual
/// setup guide has admins create it by hand).
pub const DO_NOT_SEND_ATTRIBUTE: &str = "doNotSendStellaConnectRequestBool";

/// The key under which Kustomer stores an app-declared attribute in `custom`:
/// `"@" + identifier + PascalCase(attribute)`. Inferred from Kustomer's examples (a guess kept
/// here alone, so it is one line to change).
pub fn app_attribute_key(identifier: &str, attribute: &str) -> String {
    let mut chars = attribute.chars();
    let pascal: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    format!("@{identifier}{pascal}")
}

/// A conversation (`data` of `GET /v1/conversations/{id}`, or of the update event), reduced to
/// what the app reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    /// The conversation id, sent to Stella as `ext_interaction_id`.
    pub id: String,
    /// `open`, `snoozed` or `done`.
    pub status: Option<String>,
    /// Channels in the order Kustomer lists them; the first one is surveyed.
    pub channels: Vec<String>,
    /// Assigned user ids; the first one is the agent.
    pub assigned_users: Vec<String>,
    /// Tag ids in the conversation's order.
    pub tags: Vec<String>,
    /// Custom attributes, including the agent's "do not send" checkbox.
    pub custom: Map<String, Value>,
    /// The conversation's language, such as `en_us`.
    pub default_lang: Option<String>,
    /// A locale, such as `en_us`, or sometimes only a region such as `US`.
    pub locale: Option<String>,
    /// When the status last changed (`modificationHistory.statusAt`).
    pub status_at: Option<String>,
    /// Last change of any kind.
    pub updated_at: Option<String>,
    /// The customer's id, from `relationships.customer.data.id`.
    pub customer_id: Option<String>,
    /// The brand's id: `attributes.brand`, else `relationships.brand.data.id` (see [`brand_id`]).
    pub brand_id: Option<String>,
    /// Every attribute as Kustomer sent it, for the admin's custom properties.
    pub attributes: Map<String, Value>,
}

impl Conversation {
    /// Reads a conversation resource `{id, attributes, relationships}`: what a close reads
    /// ([`Self::read_close`]), then the rest.
    fn read(at: &At<'_>) -> Result<Self, InputError> {
        let close = Self::read_close(at)?;
        let attrs = at.get("attributes");
        Ok(Self {
            channels: attrs.get("channels").strings()?,
            assigned_users: attrs.get("assignedUsers").strings()?,
            tags: attrs.get("tags").strings()?,
            custom: attrs
                .get("custom")
                .opt_object()?
                .cloned()
                .unwrap_or_default(),
            default_lang: attrs.get("defaultLang").opt_string()?,
            locale: attrs.get("locale").opt_string()?,
            brand_id: brand_id(at),
            attributes: attrs.opt_object()?.cloned().unwrap_or_default(),
            ..close
        })
    }

    /// The id, status, times and customer (the forget index keeps its keyed digest from the
    /// close on): all a close stores; the rest left empty.
    fn read_close(at: &At<'_>) -> Result<Self, InputError> {
        at.object()?;
        let attrs = at.get("attributes");
        attrs.opt_object()?;
        let history = attrs.get("modificationHistory");
        history.opt_object()?;
        let relationships = at.get("relationships");
        relationships.opt_object()?;
        let customer = relationships.get("customer");
        customer.opt_object()?;
        let customer = customer.get("data");
        customer.opt_object()?;
        Ok(Self {
            id: at.get("id").string()?,
            status: attrs.get("status").opt_string()?,
            status_at: history.get("statusAt").opt_string()?,
            updated_at: attrs.get("updatedAt").opt_string()?,
            customer_id: (customer.get("id").opt_string()?).filter(|id| !id.is_empty()),
            ..Self::default()
        })
    }

    /// Whether the conversation is closed.
    pub fn is_done(&self) -> bool {
        self.status.as_deref() == Some("done")
    }

    /// Whether the agent ticked "do not send", under the app's attribute name or the plain one.
    pub fn do_not_send(&self) -> bool {
        [
            app_attribute_key(APP_IDENTIFIER, DO_NOT_SEND_ATTRIBUTE),
            DO_NOT_SEND_ATTRIBUTE.to_owned(),
        ]
        .iter()
        .any(|k| self.custom.get(k) == Some(&Value::Bool(true)))
    }

    /// The conversation's language as a tag Stella accepts (`en_us` → `en-US`), if it has one.
    pub fn language(&self) -> Option<String> {
        [&self.default_lang, &self.locale]
            .into_iter()
            .flatten()
            .find_map(|l| language_tag(l))
    }
}

/// The conversation's brand id: `attributes.brand`, or `relationships.brand.data.id` in some
/// payloads. A guess from Kustomer's multi-brand pages, kept here alone; a value of another
/// shape is taken as no brand rather than refusing the conversation.
fn brand_id(at: &At<'_>) -> Option<String> {
    let id = |a: At<'_>| {
        a.value()
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    };
    id(at.get("attributes").get("brand"))
        .or_else(|| id(at.get("relationships").get("brand").get("data").get("id")))
}

/// Turns a Kustomer locale into an ISO 639-1 tag with optional region: `en_us` → `en-US`,
/// `fr` → `fr`. A bare region such as `US`, or anything else, gives `None`.
pub fn language_tag(locale: &str) -> Option<String> {
    let mut parts = locale.trim().split(['_', '-']);
    let lang = parts.next()?;
    let region = parts.next();
    if parts.next().is_some() || lang.len() != 2 || !lang.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    if region.is_none() && lang.bytes().all(|b| b.is_ascii_uppercase()) {
        return None; // "US": a region, not a language
    }
    let lang = lang.to_ascii_lowercase();
    match region {
        None => Some(lang),
        Some(r) if r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(format!("{lang}-{}", r.to_ascii_uppercase()))
        }
        Some(_) => None,
    }
}

/// A customer (`data` of `GET /v1/customers/{id}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customer {
    /// The customer id.
    pub id: String,
    /// Full name.
    pub name: Option<String>,
    /// Name as shown in Kustomer; used when `name` is blank.
    pub display_name: Option<String>,
    /// Email addresses in Kustomer's order (`emails[].email`), blanks included.
    pub emails: Vec<String>,
    /// Every attribute as Kustomer sent it, for the admin's custom properties.
    pub attributes: Map<String, Value>,
}

impl Customer {
    fn read(at: &At<'_>) -> Result<Self, InputError> {
        at.object()?;
        let attrs = at.get("attributes");
        attrs.opt_object()?;
        let mut emails = Vec::new();
        for item in attrs.get("emails").items()? {
            item.opt_object()?;
            emails.extend(item.get("email").opt_string()?);
        }
        Ok(Self {
            id: at.get("id").string()?,
            name: attrs.get("name").opt_string()?,
            display_name: attrs.get("displayName").opt_string()?,
            emails,
            attributes: attrs.opt_object()?.cloned().unwrap_or_default(),
        })
    }

    /// The first address that is not blank and looks like an address.
    pub fn email(&self) -> Option<&str> {
        self.emails
            .iter()
            .map(|e| e.trim())
            .find(|e| looks_like_email(e))
    }

    /// `name`, else `displayName`, whichever is not blank.
    pub fn name(&self) -> Option<&str> {
        [&self.name, &self.display_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
    }
}

/// Something before and after one `@`, with no spaces: Stella refuses other values as an
/// "Invalid customer", so such an address is passed over for the next one.
fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// A user, that is an agent (`data` of `GET /v1/users/{id}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// The user id.
    pub id: String,
    /// The agent's email; must match their Agent Connect profile.
    pub email: Option<String>,
}

/// Reads a resource's `id` and one text attribute, as users and tags are read.
fn id_and(at: &At<'_>, attribute: &str) -> Result<(String, Option<String>), InputError> {
    at.object()?;
    let attrs = at.get("attributes");
    attrs.opt_object()?;
    Ok((at.get("id").string()?, attrs.get(attribute).opt_string()?))
}

impl User {
    fn read(at: &At<'_>) -> Result<Self, InputError> {
        let (id, email) = id_and(at, "email")?;
        Ok(Self { id, email })
    }

    /// The agent's email, if not blank.
    pub fn email(&self) -> Option<&str> {
        self.email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }
}

/// A tag (an item of `GET /v1/tags/{ids}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tag {
    /// The tag id.
    pub id: String,
    /// The tag's name, sent to Stella.
    pub name: Option<String>,
}

impl Tag {
    fn read(at: &At<'_>) -> Result<Self, InputError> {
        let (id, name) = id_and(at, "name")?;
        Ok(Self { id, name })
    }
}

/// A brand (`data` of `GET /v1/brands/{id}`), for the brand map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Brand {
    /// The brand id.
    pub id: String,
    /// The brand's name, as the brand map names it.
    pub name: Option<String>,
}

/// The path that reads a brand, under the Kustomer API URL: `GET /v1/brands/{id}`, its name in
/// `data.attributes.name`. A guess from Kustomer's multi-brand pages, kept here and in
/// [`parse_brand`] alone (the agent's card names the same path).
pub const BRANDS_PATH: [&str; 2] = ["v1", "brands"];

impl Brand {
    /// The name, if not blank.
    pub fn name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }
}

/// A status change recorded in an update event's `changes.attributes.status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusChange {
    /// Status before.
    pub before: Option<String>,
    /// Status after.
    pub after: Option<String>,
}

/// The `kustomer.conversation.update` event, as a webhook or the app's workflow action sends it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationEvent {
    /// The event's own id.
    pub id: Option<String>,
    /// `kustomer.conversation.update`.
    pub name: String,
    /// The org the conversation belongs to.
    pub org: Option<String>,
    /// When Kustomer emitted the event.
    pub created_at: Option<String>,
    /// The conversation after the change.
    pub conversation: Conversation,
    /// Present when the event changed the status.
    pub status_change: Option<StatusChange>,
}

/// The event name this app acts on.
pub const CONVERSATION_UPDATE: &str = "kustomer.conversation.update";

/// [`from_json`](crate::json::from_json) for [`parse_close_event`]: the same checks on the same text, but the value
/// holds only what a close reads (every other member is skipped, not built), so that the
/// close path builds a few nodes instead of the whole conversation.
pub fn close_event_from_json(json: &str) -> Result<Value, InputError> {
    crate::json::pruned_from_json(json, CLOSE_EVENT)
}

/// What [`parse_close_event`] reads of an event.
const CLOSE_EVENT: &Keep = &Keep(&[
    ("id", None),
    ("name", None),
    ("org", None),
    ("createdAt", None),
    (
        "changes",
        Some(&Keep(&[(
            "attributes",
            Some(&Keep(&[(
                "status",
                Some(&Keep(&[("before", None), ("after", None)])),
            )])),
        )])),
    ),
    (
        "data",
        Some(&Keep(&[
            ("id", None),
            (
                "attributes",
                Some(&Keep(&[
                    ("status", None),
                    ("updatedAt", None),
                    ("modificationHistory", Some(&Keep(&[("statusAt", None)]))),
                ])),
            ),
            (
                "relationships",
                Some(&Keep(&[(
                    "customer",
                    Some(&Keep(&[("data", Some(&Keep(&[("id", None)])))])),
                )])),
            ),
        ])),
    ),
]);

/// The longest id accepted at the door: Kustomer's ids are 24 characters; anything far longer
/// is not one of its records and would only make URLs no server takes.
pub const MAX_ID_CHARS: usize = 256;

/// Refuses an id that no Kustomer record has: empty, blank, over [`MAX_ID_CHARS`] characters, or
/// holding control characters. `path` names where it was read.
pub fn check_id(id: &str, path: &str) -> Result<(), InputError> {
    let why = if id.trim().is_empty() {
        "is empty"
    } else if id == "." || id == ".." {
        // URL path rules drop such a segment: `GET /v1/conversations/..` would read the list.
        "is a path step, not an id"
    } else if id.chars().count() > MAX_ID_CHARS {
        "is longer than any Kustomer id (at most 256 characters)"
    } else if id.chars().any(char::is_control) {
        "holds control characters"
    } else {
        return Ok(());
    };
    let name = if path.is_empty() { "The id" } else { path };
    Err(InputError::new(
        InputErrorCode::InvalidId,
        path,
        format!("{name} {why}."),
    ))
}

/// Parses a `kustomer.conversation.update` event.
pub fn parse_event(value: &Value) -> Result<ConversationEvent, InputError> {
    read_event(value, Conversation::read)
}

/// [`parse_event`] as far as storing a close needs ([`crate::decision::plan_event`]): of the
/// conversation only its id, status and times are read (and checked); the rest is read again
/// from Kustomer at send time.
pub fn parse_close_event(value: &Value) -> Result<ConversationEvent, InputError> {
    read_event(value, Conversation::read_close)
}

fn read_event(
    value: &Value,
    conversation: fn(&At<'_>) -> Result<Conversation, InputError>,
) -> Result<ConversationEvent, InputError> {
    let at = At::root(value);
    at.object()?;
    let changes = at.get("changes");
    changes.opt_object()?;
    let attributes = changes.get("attributes");
    attributes.opt_object()?;
    let status = attributes.get("status");
    let status_change = match status.opt_object()? {
        Some(_) => Some(StatusChange {
            before: status.get("before").opt_string()?,
            after: status.get("after").opt_string()?,
        }),
        None => None,
    };
    let event = ConversationEvent {
        id: at.get("id").opt_string()?,
        name: at.get("name").string()?,
        org: at.get("org").opt_string()?,
        created_at: at.get("createdAt").opt_string()?,
        conversation: conversation(&at.get("data"))?,
        status_change,
    };
    // Ids become URL segments, storage keys and log entries: checked once, here.
    check_id(&event.conversation.id, "data.id")?;
    if let Some(id) = &event.id {
        check_id(id, "id")?;
    }
    if let Some(org) = event.org.as_deref().filter(|o| !o.is_empty()) {
        check_id(org, "org")?;
    }
    Ok(event)
}

/// `data` of a JSON:API document.
fn data(value: &Value) -> Result<At<'_>, InputError> {
    let root = At::root(value);
    root.object()?;
    Ok(root.get("data"))
}

/// Parses the body of `GET /v1/conversations/{id}`.
pub fn parse_conversation(value: &Value) -> Result<Conversation, InputError> {
    Conversation::read(&data(value)?)
}

/// Parses the body of `GET /v1/customers/{id}`.
pub fn parse_customer(value: &Value) -> Result<Customer, InputError> {
    Customer::read(&data(value)?)
}

/// Parses the body of `GET /v1/users/{id}`.
pub fn parse_user(value: &Value) -> Result<User, InputError> {
    User::read(&data(value)?)
}

/// Parses the body of `GET /v1/brands/{id}` ([`BRANDS_PATH`]).
pub fn parse_brand(value: &Value) -> Result<Brand, InputError> {
    let (id, name) = id_and(&data(value)?, "name")?;
    Ok(Brand { id, name })
}

/// Parses the body of `GET /v1/tags/{id1,id2,…}`: `data` is a list, or one tag when one id
/// was asked for.
pub fn parse_tags(value: &Value) -> Result<Vec<Tag>, InputError> {
    let data = data(value)?;
    match data.value() {
        Some(Value::Object(_)) => Ok(vec![Tag::read(&data)?]),
        _ => data.items()?.iter().map(Tag::read).collect(),
    }
}

#[cfg(test)]
mod tests;
