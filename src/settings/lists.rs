//! The settings written as lists and maps: channel names, the channel, brand and language
//! maps, and custom properties. Each reads text (`a=b, c=d`) or JSON, and keeps a name's first
//! pair, the one lookups apply.

use super::keys::{
    DEFAULT_CHANNEL_MAP, MAX_CUSTOM_PROPERTIES, MAX_PAIRS, MAX_PROPERTY_NAME_CHARS, MAX_TEXT_CHARS,
    RESERVED_PROPERTY_PREFIX,
};
use super::rule::label;
use super::{ChannelMap, CustomProperties, CustomProperty, Pairs, Source};
use crate::error::{FieldError, FieldErrorCode as Code};
use serde_json::Value;

/// Splits a form value such as `"a=b, c=d"` or `"email\nchat"` into trimmed, non-empty items.
fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split([',', '\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

const MAX_CHANNEL_CHARS: usize = 100;

fn channel_name(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.chars().count() <= MAX_CHANNEL_CHARS
        && !s.chars().any(|c| c.is_control() || c == '=');
    ok.then(|| s.to_owned())
}

/// `kustomer=stella` channel pairs, written as text or as an object, the defaults merged in.
pub(super) fn channel_map(key: &'static str, v: Value) -> Result<ChannelMap, FieldError> {
    let bad = |what: &str| {
        FieldError::new(
            key,
            Code::InvalidChannelMap,
            format!("Write channel names as kustomer=stella pairs separated by commas, such as voice=phone; \"{what}\" is not one."),
        )
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    match v {
        Value::String(s) => {
            for item in items(&s) {
                let (k, st) = item.split_once('=').ok_or_else(|| bad(item))?;
                let pair = channel_name(k)
                    .zip(channel_name(st))
                    .ok_or_else(|| bad(item))?;
                pairs.push(pair);
            }
        }
        Value::Object(map) => {
            for (k, st) in map {
                let pair = st
                    .as_str()
                    .and_then(channel_name)
                    .zip(channel_name(&k))
                    .map(|(s, k)| (k, s));
                pairs.push(pair.ok_or_else(|| bad(&k))?);
            }
        }
        _ => return Err(bad("that value")),
    }
    // A Kustomer channel named twice (in any case) keeps its first pair, the one the lookup
    // applies, so that the map as shown is the map applied (found by fuzzing: `s=e,s=c`).
    let mut pairs = first_of_each(pairs);
    // The admin's pairs win; a default pair applies unless its Kustomer channel was remapped.
    for item in items(DEFAULT_CHANNEL_MAP) {
        if let Some((k, s)) = item.split_once('=') {
            if !pairs.iter().any(|(pk, _)| pk.eq_ignore_ascii_case(k)) {
                pairs.push((k.to_owned(), s.to_owned()));
            }
        }
    }
    Ok(ChannelMap(pairs))
}

/// Reads `name=value` pairs, written as text (`a=b, c=d`) or as an object, each side trimmed
/// and checked by `check`, which says what is wrong with a pair. One copy for every map (a
/// `dyn` check, not inlined): the pages' Wasm has little room.
#[inline(never)]
fn pairs(
    key: &'static str,
    v: Value,
    code: Code,
    format: &str,
    check: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Result<Vec<(String, String)>, FieldError> {
    let err = |msg: String| FieldError::new(key, code, msg);
    let raw: Vec<(String, String)> = match &v {
        Value::String(s) => items(s)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_owned(), v.trim().to_owned())),
                None => Err(err(format!("Write {format}; \"{item}\" is not one."))),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(v) => Ok((k.trim().to_owned(), v.trim().to_owned())),
                None => Err(err(format!(
                    "Write {format}; the value for \"{k}\" is not text."
                ))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(err(format!("Write {format}."))),
    };
    for (k, v) in &raw {
        check(k, v).map_err(|why| err(format!("\"{k}={v}\": {why}")))?;
    }
    Ok(raw)
}

/// A name in a pair: not blank, not too long, no control characters or `=`.
fn pair_name(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        Err("a name is missing on one side of the =.".into())
    } else if s.chars().count() > max {
        Err(format!("a name can be at most {max} characters."))
    } else if s.chars().any(|c| c.is_control() || c == '=') {
        Err("a name cannot hold line breaks, tabs or a second =.".into())
    } else {
        Ok(())
    }
}

/// `pairs` without repeated names (any case): the first pair of a name is the one applied.
fn first_of_each(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut seen: Vec<String> = Vec::new();
    pairs.retain(|(k, _)| {
        let first = !seen.iter().any(|s| s.eq_ignore_ascii_case(k));
        if first {
            seen.push(k.clone());
        }
        first
    });
    pairs
}

/// A map holds at most `max` pairs.
fn too_many(key: &'static str, n: usize, max: usize) -> Result<(), FieldError> {
    if n > max {
        return Err(FieldError::new(
            key,
            Code::TooMany,
            format!("{} can hold at most {max} pairs; it has {n}.", label(key)),
        ));
    }
    Ok(())
}

/// How a brand or language map reads its pairs: what the admin is asked to write, how a
/// pair's name is checked and written, and the most pairs it holds.
#[derive(Debug, Clone, Copy)]
pub struct PairsRule {
    /// The pairs as the error messages ask for them, with an example.
    pub format: &'static str,
    /// Checks a pair's name and writes it the one way it is kept, or says what is wrong.
    pub name: fn(&str) -> Result<String, String>,
    /// The most pairs.
    pub max: usize,
}

/// The brand map: Kustomer brand names, kept as written.
pub const BRANDS: PairsRule = PairsRule {
    format: "brands as kustomer=agent connect pairs separated by commas, such as Acme Shoes=shoes",
    name: PairsRule::brand,
    max: MAX_PAIRS,
};

/// The language map: language tags.
pub const LANGUAGES: PairsRule = PairsRule {
    format: "languages as language=agent connect language pairs separated by commas, such as en-US=English",
    name: PairsRule::language,
    max: MAX_PAIRS,
};

impl PairsRule {
    /// A brand's name: kept as written.
    pub fn brand(name: &str) -> Result<String, String> {
        pair_name(name, MAX_TEXT_CHARS).map(|()| name.to_owned())
    }

    /// A language tag, kept as a tag (`fr_ca` → `fr-CA`), the form conversations' languages
    /// are sent in.
    pub fn language(name: &str) -> Result<String, String> {
        crate::kustomer::language_tag(name)
            .ok_or_else(|| format!("{name} is not a language such as en, en-US or fr_ca."))
    }

    /// Reads the pairs; the first pair of a name wins.
    pub(super) fn read(&self, key: &'static str, v: Value) -> Result<Pairs, FieldError> {
        let name = self.name;
        let raw = pairs(key, v, Code::InvalidPairs, self.format, &|k, v| {
            name(k).and_then(|_| pair_name(v, MAX_TEXT_CHARS))
        })?;
        too_many(key, raw.len(), self.max)?;
        let named = raw
            .into_iter()
            .filter_map(|(k, v)| Some((name(&k).ok()?, v)))
            .collect();
        Ok(Pairs(first_of_each(named)))
    }
}

/// Reads `conversation.<name>`, `customer.<name>` or either with `custom.` before the name.
fn attribute_path(s: &str) -> Option<(Source, bool, &str)> {
    let (record, rest) = s.split_once('.')?;
    let source = match record {
        "conversation" => Source::Conversation,
        "customer" => Source::Customer,
        _ => return None,
    };
    let (custom, name) = match rest.strip_prefix("custom.") {
        Some(name) => (true, name),
        None => (false, rest),
    };
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_PROPERTY_NAME_CHARS
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '.');
    ok.then_some((source, custom, name))
}

/// `attribute=property` pairs: a Kustomer attribute sent under an Agent Connect name.
pub(super) fn custom_properties(
    key: &'static str,
    v: Value,
) -> Result<CustomProperties, FieldError> {
    let raw = pairs(
        key,
        v,
        Code::InvalidCustomProperty,
        "attribute=property pairs separated by commas, such as conversation.priority=priority or customer.custom.tierStr=tier",
        &|k, v| {
            if attribute_path(k).is_none() {
                return Err(format!("{k} is not an attribute such as conversation.priority, conversation.custom.orderIdStr or customer.custom.tierStr."));
            }
            pair_name(v, MAX_PROPERTY_NAME_CHARS)?;
            if v.get(..RESERVED_PROPERTY_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PROPERTY_PREFIX)) {
                return Err(format!("property names starting with {RESERVED_PROPERTY_PREFIX} are the app's own (kustomer_org, kustomer_conversation_id)."));
            }
            Ok(())
        },
    )?;
    too_many(key, raw.len(), MAX_CUSTOM_PROPERTIES)?;
    let mut properties: Vec<CustomProperty> = Vec::new();
    for (written, property) in raw {
        if properties.iter().any(|p| p.property == property) {
            return Err(FieldError::new(
                key,
                Code::InvalidCustomProperty,
                format!(
                    "The property {property} is named twice: each property takes one attribute."
                ),
            ));
        }
        if let Some((source, custom, attribute)) = attribute_path(&written) {
            properties.push(CustomProperty {
                source,
                custom,
                attribute: attribute.to_owned(),
                property,
                written: written.clone(),
            });
        }
    }
    Ok(CustomProperties(properties))
}

/// Channel names, written as text or as a list, each once (in any case).
pub(super) fn channel_list(key: &'static str, v: Value) -> Result<Vec<String>, FieldError> {
    let bad = || {
        FieldError::new(
            key,
            Code::InvalidChannelList,
            "List channel names separated by commas, such as email, chat, or leave it empty to survey every channel.",
        )
    };
    let names: Vec<String> = match v {
        Value::String(s) => items(&s)
            .map(|i| channel_name(i).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Value::Array(a) => a
            .iter()
            .map(|i| i.as_str().and_then(channel_name).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    let mut unique: Vec<String> = Vec::new();
    for n in names {
        if !unique.iter().any(|u| u.eq_ignore_ascii_case(&n)) {
            unique.push(n);
        }
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_rules_check_and_write_names_their_one_way() {
        let table: [(PairsRule, &str, Result<&str, ()>); 7] = [
            (BRANDS, "Acme Shoes", Ok("Acme Shoes")),
            (BRANDS, "", Err(())),
            (BRANDS, "a\tb", Err(())),
            (LANGUAGES, "fr_ca", Ok("fr-CA")),
            (LANGUAGES, "en", Ok("en")),
            (LANGUAGES, "English", Err(())),
            (LANGUAGES, "", Err(())),
        ];
        for (rule, name, want) in table {
            let got = (rule.name)(name);
            assert_eq!(
                got.as_deref().map_err(|_| ()),
                want,
                "{name} in {}",
                rule.format
            );
        }
    }
}
