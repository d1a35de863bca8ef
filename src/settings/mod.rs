//! The app's settings: the main fields admins fill in, the advanced ones, and their validation.
//!
//! [`FIELDS`] is the one place that names, labels and defaults them, and holds each one's
//! [`Rule`]; the settings page and the app manifest read it instead of keeping copies.
//! Validation is "parse, don't validate": it turns the raw form object into a [`Settings`] whose
//! URLs are checked and whose keys are [`Secret`]s, or returns every field error at once.
//!
//! - `keys`: the settings' keys, defaults and bounds;
//! - `fields`: the table;
//! - `rule`: what each entry's rule does, and the plain values (keys, text, numbers, flags);
//! - `lists`: the lists and maps; `url`: the addresses and their hosts;
//! - `values`: [`Settings`] and its value types; `options`: how strict validation is.

mod fields;
mod keys;
mod lists;
mod options;
mod rule;
mod url;
mod values;

pub use fields::{field, setting_header, FieldDef, FieldKind, FIELDS};
pub use keys::*;
pub use lists::{PairsRule, BRANDS, LANGUAGES};
pub use options::ValidationOptions;
pub use rule::{Bounds, Rule};
pub use url::{
    is_loopback, kustomer_api_host, kustomer_api_url, kustomer_org_host, stella_api_host, UrlRule,
    KUSTOMER_API, KUSTOMER_ORG, STELLA_API,
};
pub(crate) use values::serialize_pairs;
pub use values::{
    ChannelMap, CustomProperties, CustomProperty, Pairs, Secret, Settings, Source, MASK,
};

use crate::error::{FieldError, FieldErrorCode as Code};
use serde_json::{Map, Value};

/// Validates a raw settings object (as the form or Kustomer's settings API holds it), returning
/// every field error at once. Unknown keys are ignored; blank values take their defaults. Each
/// field is read by its rule in [`FIELDS`], in the table's order.
pub fn validate_settings(
    raw: &Value,
    options: ValidationOptions,
) -> Result<Settings, Vec<FieldError>> {
    let Some(obj) = raw.as_object() else {
        return Err(vec![FieldError::new(
            "",
            Code::InvalidType,
            "Settings must be an object of field values.",
        )]);
    };
    let mut settings = Settings::unset();
    let errors: Vec<FieldError> = FIELDS
        .iter()
        .filter(|f| f.rule.is_read())
        .filter_map(|f| {
            value_of(obj, f)
                .and_then(|v| f.rule.apply(f.key, v, options, &mut settings))
                .err()
        })
        .collect();
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// A field's value, or its default when left blank; a blank without a default is an error.
fn value_of(obj: &Map<String, Value>, f: &FieldDef) -> Result<Value, FieldError> {
    match (obj.get(f.key).and_then(non_blank), f.default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(Value::String(d.to_owned())),
        (None, None) => {
            let msg = format!("{} is required.", f.label);
            Err(FieldError::new(f.key, Code::Required, msg))
        }
    }
}

/// `null` and whitespace-only strings count as "left blank".
fn non_blank(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        other => Some(other.clone()),
    }
}

/// The roles that let a Kustomer key read tag names; one of them is needed.
pub const TAG_READ_ROLES: [&str; 2] = ["org.permission.tag.read", "org.admin.tag.read"];

/// Checks the roles Kustomer reports for the key (`GET /v1/auth/tokens/current`): without a
/// tag-read role, surveys would go out without their tags.
pub fn check_kustomer_roles<S: AsRef<str>>(roles: &[S]) -> Result<(), FieldError> {
    if roles.iter().any(|r| TAG_READ_ROLES.contains(&r.as_ref())) {
        Ok(())
    } else {
        Err(FieldError::new(
            KUSTOMER_API_KEY,
            Code::MissingPermission,
            "This Kustomer API key cannot read tags: create a key with the role org.permission.tag.read (or org.admin.tag.read).",
        ))
    }
}
