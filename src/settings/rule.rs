//! Each field's rule: the parser a [`FIELDS`](super::FIELDS) entry names, with its bounds, and
//! where the value lands in [`Settings`]. Lists and maps are read in `lists`, URLs in `url`.

use super::fields::field;
use super::keys::{MAX_KEY_CHARS, MAX_TEXT_CHARS};
use super::lists::{channel_list, channel_map, custom_properties, PairsRule};
use super::url::{url_field, UrlRule};
use super::{ChannelMap, CustomProperties, Pairs, Secret, Settings, ValidationOptions};
use crate::error::{FieldError, FieldErrorCode as Code};
use serde_json::Value;

/// How a field's value is read and checked, and where it lands in [`Settings`] (the function
/// beside the parser's data sets the field), so that a setting is one entry of the table.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// An API key: no spaces, at most 4096 characters.
    Secret(fn(&mut Settings, Secret)),
    /// An https address on the hosts its rule allows.
    Url(UrlRule, fn(&mut Settings, String)),
    /// A whole number within bounds, written as a number or as text.
    Number(Bounds, fn(&mut Settings, u32)),
    /// Short text; blank is none.
    Text(fn(&mut Settings, Option<String>)),
    /// On or off.
    Flag(fn(&mut Settings, bool)),
    /// `kustomer=stella` channel pairs, the default pairs merged in.
    ChannelMap(fn(&mut Settings, ChannelMap)),
    /// Channel names, each once.
    ChannelList(fn(&mut Settings, Vec<String>)),
    /// `name=value` pairs, each name checked (and written the one way) by its rule.
    Pairs(PairsRule, fn(&mut Settings, Pairs)),
    /// `attribute=property` pairs.
    CustomProperties(fn(&mut Settings, CustomProperties)),
    /// No part of [`Settings`]: the edge reads it on its own (the app secret).
    Apart,
}

impl Rule {
    /// Whether validation reads the field into [`Settings`].
    pub fn is_read(&self) -> bool {
        !matches!(self, Rule::Apart)
    }

    /// Parses the field `key`'s value and sets it in `settings`.
    pub(super) fn apply(
        &self,
        key: &'static str,
        v: Value,
        options: ValidationOptions,
        settings: &mut Settings,
    ) -> Result<(), FieldError> {
        match *self {
            Rule::Secret(set) => set(settings, secret(key, v)?),
            Rule::Url(rule, set) => set(settings, url_field(key, &rule, v, options)?),
            Rule::Number(bounds, set) => set(settings, bounds.read(key, v)?),
            Rule::Text(set) => set(settings, text(key, v)?),
            Rule::Flag(set) => set(settings, boolean(key, v)?),
            Rule::ChannelMap(set) => set(settings, channel_map(key, v)?),
            Rule::ChannelList(set) => set(settings, channel_list(key, v)?),
            Rule::Pairs(rule, set) => set(settings, rule.read(key, v)?),
            Rule::CustomProperties(set) => set(settings, custom_properties(key, v)?),
            Rule::Apart => {}
        }
        Ok(())
    }
}

/// A whole number's bounds and the words its error messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The largest value accepted.
    pub max: u32,
    /// The unit, with an example: "seconds, such as 86400 for one day".
    pub unit: &'static str,
    /// `max` in words: "30 days".
    pub max_words: &'static str,
    /// Why 0 is refused, when it is (the field then runs from 1).
    pub zero: Option<&'static str>,
}

impl Bounds {
    /// A whole number from 0 (or 1) to `max`, given as a number or as text.
    pub(super) fn read(&self, key: &'static str, v: Value) -> Result<u32, FieldError> {
        match (
            whole_number(key, v, self.max, self.unit, self.max_words)?,
            self.zero,
        ) {
            (0, Some(why)) => Err(FieldError::new(
                key,
                Code::OutOfRange,
                format!("{} must be between 1 and {}: {why}.", label(key), self.max),
            )),
            (n, _) => Ok(n),
        }
    }
}

/// The label of the field `key`, for its error messages.
pub(super) fn label(key: &str) -> &'static str {
    field(key).map_or("This field", |f| f.label)
}

/// Text, trimmed.
pub(super) fn string(key: &str, v: Value) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.trim().to_owned()),
        _ => Err(FieldError::new(
            key,
            Code::InvalidType,
            format!("{} must be text.", label(key)),
        )),
    }
}

/// An API key: no spaces, line breaks or control characters, at most [`MAX_KEY_CHARS`].
fn secret(key: &'static str, v: Value) -> Result<Secret, FieldError> {
    let s = string(key, v)?;
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(
            key,
            Code::InvalidKey,
            format!(
                "{} has spaces or line breaks in it: copy it again, without them.",
                label(key)
            ),
        ));
    }
    if s.chars().count() > MAX_KEY_CHARS {
        return Err(FieldError::new(
            key,
            Code::InvalidKey,
            format!("{} is far too long to be an API key.", label(key)),
        ));
    }
    Ok(Secret::new(s))
}

/// Short text; blank is none.
fn text(key: &'static str, v: Value) -> Result<Option<String>, FieldError> {
    let s = string(key, v)?;
    if s.chars().count() > MAX_TEXT_CHARS {
        return Err(FieldError::new(
            key,
            Code::TooLong,
            format!("{} can be at most {MAX_TEXT_CHARS} characters.", label(key)),
        ));
    }
    Ok(Some(s).filter(|s| !s.is_empty()))
}

/// On or off, written as a flag, 0 or 1, or a word.
fn boolean(key: &'static str, v: Value) -> Result<bool, FieldError> {
    let parsed = match &v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().filter(|n| *n <= 1).map(|n| n == 1),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Some(true),
            "false" | "off" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| {
        FieldError::new(
            key,
            Code::NotABoolean,
            format!("{} must be on or off.", label(key)),
        )
    })
}

/// A whole number from 0 to `max`, given as a number or as text.
fn whole_number(
    key: &'static str,
    v: Value,
    max: u32,
    unit: &str,
    max_words: &str,
) -> Result<u32, FieldError> {
    let not_integer = || {
        FieldError::new(
            key,
            Code::NotAnInteger,
            format!("{} must be a whole number of {unit}.", label(key)),
        )
    };
    let n: i128 = match &v {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into(),
            (_, Some(u), _) => u.into(),
            // 900.0 is a whole number; 1e30 is one too, and simply out of range.
            (_, _, Some(f)) if f.fract() == 0.0 && f.is_finite() => {
                if f.abs() > 1e18 {
                    i128::MAX
                } else {
                    f as i128
                }
            }
            _ => return Err(not_integer()),
        },
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_integer());
            }
            // Only digits remain, so the one failure left is overflow: out of range.
            s.parse::<i128>().unwrap_or(i128::MAX)
        }
        _ => return Err(not_integer()),
    };
    u32::try_from(n).ok().filter(|n| *n <= max).ok_or_else(|| {
        FieldError::new(
            key,
            Code::OutOfRange,
            format!("{} must be between 0 and {max} ({max_words}).", label(key)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{FieldKind, FIELDS};
    use serde_json::json;

    /// The settings with their keys shown, so that a key's field can be told from the others.
    fn shown(s: &Settings) -> serde_json::Map<String, Value> {
        let Ok(Value::Object(mut map)) = serde_json::to_value(s) else {
            panic!("settings serialize as an object");
        };
        map.insert("stellaApiKey".into(), s.stella_api_key.expose().into());
        map.insert("kustomerApiKey".into(), s.kustomer_api_key.expose().into());
        if let Some(secret) = &s.stella_api_secret {
            map.insert("stellaApiSecret".into(), secret.expose().into());
        }
        map
    }

    /// A value each rule accepts, unlike the unset one.
    fn sample(rule: &Rule) -> Value {
        match rule {
            Rule::Secret(_) => json!("k-1"),
            Rule::Url(url, _) => json!(url.example),
            Rule::Number(..) => json!(7),
            Rule::Text(_) => json!("Acme"),
            Rule::Flag(_) => json!(true),
            Rule::ChannelMap(_) => json!("sms=chat"),
            Rule::ChannelList(_) => json!("email"),
            Rule::Pairs(..) => json!("en=English"),
            Rule::CustomProperties(_) => json!("conversation.priority=priority"),
            Rule::Apart => Value::Null,
        }
    }

    #[test]
    fn each_rule_sets_its_own_field_and_no_other() {
        let unset = shown(&Settings::unset());
        for f in FIELDS.iter().filter(|f| f.rule.is_read()) {
            let mut s = Settings::unset();
            let options = ValidationOptions::default();
            f.rule
                .apply(f.key, sample(&f.rule), options, &mut s)
                .unwrap_or_else(|e| panic!("{}: {e:?}", f.key));
            let set = shown(&s);
            let changed: Vec<&String> = set
                .keys()
                .chain(unset.keys())
                .filter(|k| set.get(*k) != unset.get(*k))
                .collect();
            assert_eq!(
                changed.first().map(|k| k.as_str()),
                Some(f.key),
                "{changed:?}"
            );
            assert!(
                changed.iter().all(|k| *k == f.key),
                "{}: {changed:?}",
                f.key
            );
        }
    }

    #[test]
    fn each_rule_fits_its_kind() {
        for f in FIELDS {
            let fits = match f.rule {
                Rule::Secret(_) => f.kind == FieldKind::Secret,
                Rule::Url(..) => f.kind == FieldKind::Url,
                Rule::Number(..) => f.kind == FieldKind::Integer,
                Rule::Text(_) => f.kind == FieldKind::Text,
                Rule::Flag(_) => f.kind == FieldKind::Boolean,
                Rule::ChannelMap(_) => f.kind == FieldKind::ChannelMap,
                Rule::ChannelList(_) => f.kind == FieldKind::ChannelList,
                Rule::Pairs(..) | Rule::CustomProperties(_) => f.kind == FieldKind::Pairs,
                // Only a hidden setting the pages fill in may stay out of `Settings`.
                Rule::Apart => f.hidden,
            };
            assert!(fits, "{}: {:?} for a {:?} setting", f.key, f.rule, f.kind);
        }
    }

    #[test]
    fn bounds_run_from_zero_or_from_one_to_max() {
        let from_zero = Bounds {
            max: 10,
            unit: "days",
            max_words: "ten days",
            zero: None,
        };
        let from_one = Bounds {
            zero: Some("with 0, nothing happens"),
            ..from_zero
        };
        let table: [(Bounds, Value, Result<u32, &str>); 10] = [
            (from_zero, json!(0), Ok(0)),
            (from_zero, json!("10"), Ok(10)),
            (from_zero, json!(11), Err("out_of_range")),
            (from_zero, json!(-1), Err("out_of_range")),
            (from_zero, json!("1.5"), Err("not_an_integer")),
            (from_one, json!(0), Err("out_of_range")),
            (from_one, json!("0"), Err("out_of_range")),
            (from_one, json!(1), Ok(1)),
            (from_one, json!(10.0), Ok(10)),
            (from_one, json!(11), Err("out_of_range")),
        ];
        for (bounds, value, want) in table {
            let got = bounds.read("secondsUntilSend", value.clone());
            let got = got.map_err(|e| e.code.as_str());
            assert_eq!(got, want, "{value} in {bounds:?}");
        }
        let zero = from_one.read("secondsUntilSend", json!(0)).unwrap_err();
        assert_eq!(
            zero.message,
            "Seconds until send must be between 1 and 10: with 0, nothing happens."
        );
    }
}
