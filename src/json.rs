//! Reading JSON text as the app receives it: bounded ([`MAX_INPUT_BYTES`]), lone surrogates
//! mended, and read through [`At`], which names the path of every error. Kustomer's records
//! ([`crate::kustomer`]) and every other document the app reads come through here.

use crate::error::{InputError, InputErrorCode, MAX_INPUT_BYTES};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
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

/// [`from_json`] keeping only what `keep` names of the document: the same checks on the same
/// text, but every other member is skipped, not built.
pub(crate) fn pruned_from_json(json: &str, keep: &'static Keep) -> Result<Value, InputError> {
    if json.len() > MAX_INPUT_BYTES {
        return from_json(json); // its refusal
    }
    let mended = mend_surrogates(json);
    let mut de = serde_json::Deserializer::from_str(&mended);
    serde::de::DeserializeSeed::deserialize(Pruned(keep), &mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|e| InputError::new(InputErrorCode::MalformedJson, "", e.to_string()))
}

/// The members of an object to keep, each with what to keep of it (`None`: all of it).
pub(crate) struct Keep(pub(crate) &'static [(&'static str, Option<&'static Keep>)]);

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
}
