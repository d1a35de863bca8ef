//! Kustomer's records as the app reads them: the `kustomer.conversation.update` event and the
//! JSON:API answers of `GET /v1/conversations/{id}`, `/v1/customers/{id}`, `/v1/users/{id}`,
//! `/v1/tags/{ids}` and `/v1/brands/{id}`.
//!
//! Parsing is lenient where Kustomer is loose (unknown fields, `null` lists, relationships with
//! `links` but no `data`) and strict where a wrong type would change the decision: a wrong shape
//! is an [`InputError`] that names the JSON path.

use crate::error::{InputError, InputErrorCode, MAX_INPUT_BYTES};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

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

/// A place in a JSON document: the value there (if any) and its path, so that every error
/// names where it is. Written by hand rather than derived: serde's derives plus path tracking
/// cost about 100 KB of Wasm for these few fields.
#[derive(Clone)]
pub(crate) struct At<'a> {
    value: Option<&'a Value>,
    path: String,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl<'a> At<'a> {
    /// The root of a document.
    pub(crate) fn root(value: &'a Value) -> Self {
        Self {
            value: Some(value),
            path: String::new(),
        }
    }

    /// A document whose errors are reported under `name`, such as `options.allowLoopback`.
    pub(crate) fn named(value: &'a Value, name: &str) -> Self {
        Self {
            value: Some(value),
            path: name.to_owned(),
        }
    }

    /// The member `key` (absent when this is not an object or has no such member).
    pub(crate) fn get(&self, key: &str) -> At<'a> {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        At {
            value: self.value.and_then(|v| v.get(key)),
            path,
        }
    }

    /// The value itself; `None` for absent or `null`.
    pub(crate) fn value(&self) -> Option<&'a Value> {
        self.value.filter(|v| !v.is_null())
    }

    fn wrong(&self, expected: &str) -> InputError {
        let found = self.value().map_or("nothing", kind);
        InputError::new(
            InputErrorCode::InvalidShape,
            self.path.clone(),
            format!("expected {expected}, found {found}"),
        )
    }

    /// An object that must be there.
    pub(crate) fn object(&self) -> Result<&'a Map<String, Value>, InputError> {
        self.value()
            .and_then(Value::as_object)
            .ok_or_else(|| self.wrong("an object"))
    }

    /// An object, or nothing for absent and `null`.
    pub(crate) fn opt_object(&self) -> Result<Option<&'a Map<String, Value>>, InputError> {
        self.value()
            .map(|v| v.as_object().ok_or_else(|| self.wrong("an object")))
            .transpose()
    }

    /// Text, or nothing for absent and `null`.
    pub(crate) fn opt_string(&self) -> Result<Option<String>, InputError> {
        self.value()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.wrong("text"))
            })
            .transpose()
    }

    /// Text that must be there.
    pub(crate) fn string(&self) -> Result<String, InputError> {
        self.opt_string()?.ok_or_else(|| self.wrong("text"))
    }

    /// A bool; `false` for absent and `null`.
    pub(crate) fn flag(&self) -> Result<bool, InputError> {
        self.value().map_or(Ok(false), |v| {
            v.as_bool().ok_or_else(|| self.wrong("true or false"))
        })
    }

    /// The items of a list; absent and `null` are an empty list.
    pub(crate) fn items(&self) -> Result<Vec<At<'a>>, InputError> {
        let Some(v) = self.value() else {
            return Ok(Vec::new());
        };
        let list = v.as_array().ok_or_else(|| self.wrong("a list"))?;
        Ok(list
            .iter()
            .enumerate()
            .map(|(i, v)| At {
                value: Some(v),
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    /// A list of text; absent and `null` are an empty list.
    pub(crate) fn strings(&self) -> Result<Vec<String>, InputError> {
        self.items()?.iter().map(At::string).collect()
    }
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

/// Parses JSON text, refusing documents over [`MAX_INPUT_BYTES`]; serde_json refuses nesting
/// deeper than 128, so nothing recurses without bound. Every Kustomer document (events and
/// API answers) comes through here, so lone surrogates are mended in this one place.
pub fn from_json(json: &str) -> Result<Value, InputError> {
    if json.len() > MAX_INPUT_BYTES {
        return Err(InputError::new(
            InputErrorCode::TooLarge,
            "",
            format!(
                "The document is {} bytes; at most {MAX_INPUT_BYTES} are accepted.",
                json.len()
            ),
        ));
    }
    serde_json::from_str(&mend_surrogates(json))
        .map_err(|e| InputError::new(InputErrorCode::MalformedJson, "", e.to_string()))
}

/// [`from_json`] for [`parse_close_event`]: the same checks on the same text, but the value
/// holds only what a close reads (every other member is skipped, not built), so that the
/// close path builds a few nodes instead of the whole conversation.
pub fn close_event_from_json(json: &str) -> Result<Value, InputError> {
    if json.len() > MAX_INPUT_BYTES {
        return from_json(json); // its refusal
    }
    let mended = mend_surrogates(json);
    let mut de = serde_json::Deserializer::from_str(&mended);
    serde::de::DeserializeSeed::deserialize(Pruned(CLOSE_EVENT), &mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|e| InputError::new(InputErrorCode::MalformedJson, "", e.to_string()))
}

/// The members of an object to keep, each with what to keep of it (`None`: all of it).
struct Keep(&'static [(&'static str, Option<&'static Keep>)]);

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

/// A JSON value read as a [`Value`], an object keeping only the members [`Keep`] names (the
/// last of a repeated one, as [`Value`] keeps it); anything but an object is read whole.
struct Pruned(&'static Keep);

impl<'de> serde::de::DeserializeSeed<'de> for Pruned {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Pruned {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(kept) = map.next_key_seed(KeyOf(self.0))? {
            match kept {
                Some((name, Some(inner))) => {
                    out.insert((*name).to_owned(), map.next_value_seed(Pruned(inner))?);
                }
                Some((name, None)) => {
                    out.insert((*name).to_owned(), map.next_value::<Value>()?);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
    // Anything else, whole, as `Value` reads it (the close's checks say what is wrong with it).
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        serde::de::Visitor::visit_seq(ValueVisitor, seq)
    }
}

/// An object's key, as the member of [`Keep`] it names (`None`: one to skip), read without
/// copying it.
struct KeyOf(&'static Keep);

type Kept = Option<&'static (&'static str, Option<&'static Keep>)>;

impl<'de> serde::de::DeserializeSeed<'de> for KeyOf {
    type Value = Kept;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Kept, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyOf {
    type Value = Kept;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Kept, E> {
        Ok(self.0 .0.iter().find(|(name, _)| *name == key))
    }
}

/// [`Value`]'s own reading of an array, for [`Pruned`].
struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
}

/// `json` with every lone UTF-16 surrogate escape (a `\ud83d` without its pair, or a stray
/// `\udc00`) replaced by `\ufffd`. JavaScript writes a string cut in the middle of an emoji
/// that way, Kustomer's own pages show it, and serde_json refuses it: one broken character
/// must not cost a survey. Borrows when there is nothing to mend (the usual case).
pub fn mend_surrogates(json: &str) -> Cow<'_, str> {
    let bytes = json.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let hex = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let escape = |at: usize| bytes.get(at) == Some(&b'\\') && bytes.get(at + 1) == Some(&b'u');
    let (high, low) = (0xD800..0xDC00, 0xDC00..0xE000);
    let mut mended: Option<String> = None;
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        // Outside strings valid JSON has no backslash; inside, `\\` and `\"` are two bytes.
        let Some(u) = unit(i + 2).filter(|_| escape(i)) else {
            i += 2;
            continue;
        };
        let paired =
            high.contains(&u) && escape(i + 6) && unit(i + 8).is_some_and(|l| low.contains(&l));
        if paired {
            i += 12;
            continue;
        }
        if !high.contains(&u) && !low.contains(&u) {
            i += 6;
            continue;
        }
        let out = mended.get_or_insert_with(|| String::with_capacity(json.len()));
        out.push_str(&json[copied..i]);
        out.push_str("\\ufffd");
        i += 6;
        copied = i;
    }
    match mended {
        None => Cow::Borrowed(json),
        Some(mut out) => {
            out.push_str(&json[copied..]);
            Cow::Owned(out)
        }
    }
}

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
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lone_surrogates_are_mended_and_everything_else_is_left_alone() {
        let cases = [
            (r#""cut \ud83d""#, "cut \u{fffd}"),
            (r#""\ud83d\ude00 whole""#, "\u{1f600} whole"),
            (r#""stray low \ude00""#, "stray low \u{fffd}"),
            (r#""two \ud83d\ud83d""#, "two \u{fffd}\u{fffd}"),
            (r#""high then text \ud83dx""#, "high then text \u{fffd}x"),
            (
                r#""escaped backslash \\ud83d""#,
                "escaped backslash \\ud83d",
            ),
            (r#""é \u00e9 ok""#, "é é ok"),
        ];
        for (text, want) in cases {
            let value = from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(value, json!(want), "{text}");
        }
        assert!(matches!(
            mend_surrogates(r#"{"a":"plain"}"#),
            Cow::Borrowed(_)
        ));
        for broken in [r#""\u"#, r#""\ud83"#, r#"\"#, r#""\ud83d\u"#] {
            assert_eq!(
                from_json(broken).unwrap_err().code,
                InputErrorCode::MalformedJson,
                "{broken}"
            );
        }
    }

    #[test]
    fn ids_are_refused_when_no_record_could_have_them() {
        assert!(check_id("6560e0f1a2b3c4d5e6f70819", "data.id").is_ok());
        assert!(check_id(&"x".repeat(MAX_ID_CHARS), "data.id").is_ok());
        for bad in ["", "  ", "a\u{7}b", "a\nb", ".", ".."] {
            let e = check_id(bad, "data.id").unwrap_err();
            assert_eq!(
                (e.code, e.path.as_str()),
                (InputErrorCode::InvalidId, "data.id"),
                "{bad:?}"
            );
        }
        assert!(check_id(&"x".repeat(MAX_ID_CHARS + 1), "id").is_err());
    }

    #[test]
    fn app_attribute_key_follows_kustomer_naming() {
        assert_eq!(
            app_attribute_key("stella", DO_NOT_SEND_ATTRIBUTE),
            "@stellaDoNotSendStellaConnectRequestBool"
        );
    }

    #[test]
    fn language_tags() {
        for (locale, tag) in [
            ("en_us", Some("en-US")),
            ("en-GB", Some("en-GB")),
            ("fr", Some("fr")),
            ("FR_ca", Some("fr-CA")),
            ("US", None),
            ("", None),
            ("english", None),
            ("en_us_x", None),
            ("en_1", None),
        ] {
            assert_eq!(language_tag(locale).as_deref(), tag, "{locale}");
        }
    }

    #[test]
    fn lenient_with_nulls_links_and_unknown_fields() {
        let c = parse_conversation(&json!({"data": {"id": "c1", "attributes": {
            "status": "done", "channels": null, "tags": null, "custom": null, "firstMessageIn": {},
            "modificationHistory": null, "satisfactionLevel": {"x": 1}},
            "relationships": {"customer": {"links": {"self": "/v1/customers/x"}}}}}))
        .unwrap();
        assert!(c.is_done());
        assert!(c.channels.is_empty());
        assert_eq!(c.customer_id, None);
    }

    #[test]
    fn wrong_shapes_name_their_path() {
        let cases = [
            (
                json!({"data": {"id": "c1", "attributes": {"channels": ["email", 7]}}}),
                "data.attributes.channels[1]",
            ),
            (json!({"data": {"attributes": {}}}), "data.id"),
            (json!({"data": {"id": 5}}), "data.id"),
            (json!({"data": "c1"}), "data"),
            (json!([1, 2]), ""),
            (
                json!({"data": {"id": "c1", "attributes": {"status": true}}}),
                "data.attributes.status",
            ),
            (
                json!({"data": {"id": "c1", "attributes": []}}),
                "data.attributes",
            ),
            (
                json!({"data": {"id": "c1", "relationships": {"customer": {"data": {"id": 3}}}}}),
                "data.relationships.customer.data.id",
            ),
        ];
        for (value, path) in cases {
            let e = parse_conversation(&value).unwrap_err();
            assert_eq!(e.code, InputErrorCode::InvalidShape, "{value}");
            assert_eq!(e.path, path, "{value}");
        }
    }

    #[test]
    fn tags_accept_a_list_or_one() {
        let one = parse_tags(&json!({"data": {"id": "t1", "attributes": {"name": "a"}}})).unwrap();
        assert_eq!(
            one,
            vec![Tag {
                id: "t1".into(),
                name: Some("a".into())
            }]
        );
        let e = parse_tags(&json!({"data": [{"id": "t1"}, {"id": 2}]})).unwrap_err();
        assert_eq!(e.path, "data[1].id");
        assert_eq!(parse_tags(&json!({"data": "x"})).unwrap_err().path, "data");
    }

    #[test]
    fn event_reads_the_status_change() {
        let e = parse_event(&json!({"name": CONVERSATION_UPDATE, "org": "o1", "data": {"id": "c1"},
            "changes": {"attributes": {"status": {"op": "replace", "before": "open", "after": "done"}, "tags": {"after": [1]}}}}))
        .unwrap();
        assert_eq!(
            e.status_change,
            Some(StatusChange {
                before: Some("open".into()),
                after: Some("done".into())
            })
        );
        let e = parse_event(&json!({"name": CONVERSATION_UPDATE, "data": {"id": "c1"}, "changes": {"attributes": {}}})).unwrap();
        assert_eq!(e.status_change, None);
        assert_eq!(
            parse_event(&json!({"data": {"id": "c1"}}))
                .unwrap_err()
                .path,
            "name"
        );
        assert_eq!(parse_event(&json!({"name": "x"})).unwrap_err().path, "data");
    }

    #[test]
    fn from_json_codes() {
        assert_eq!(
            from_json("{").unwrap_err().code,
            InputErrorCode::MalformedJson
        );
        assert_eq!(
            from_json("{} x").unwrap_err().code,
            InputErrorCode::MalformedJson
        );
        let big = format!("\"{}\"", "a".repeat(MAX_INPUT_BYTES));
        assert_eq!(from_json(&big).unwrap_err().code, InputErrorCode::TooLarge);
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(
            from_json(&deep).unwrap_err().code,
            InputErrorCode::MalformedJson
        );
    }

    #[test]
    fn customer_email_and_name_rules() {
        let c = parse_customer(&json!({"data": {"id": "u", "attributes": {
            "name": "  ", "displayName": "Zoë Ōkubo",
            "emails": [{"email": ""}, {"type": "home"}, {"email": "not-an-address"}, {"email": " z@example.com "}, {"email": "y@example.com"}]}}}))
        .unwrap();
        assert_eq!(c.email(), Some("z@example.com"));
        assert_eq!(c.name(), Some("Zoë Ōkubo"));
    }
}
