//! The platform's rules for a definition: its top-level keys, its settings, the attributes it
//! adds and its components' names and references. Commands' rules are in `command_rules`.

use super::command_rules::{check_aliases, check_commands};
use super::version::is_version;
use serde::Serialize;
use serde_json::{Map, Value};

/// The setting types the platform accepts.
const SETTING_TYPES: [&str; 4] = ["string", "number", "boolean", "secret"];
/// Top-level keys allowed here: the ones `kustomer-apps.md` §1 lists. Kustomer's strict schema
/// knows more (`screenshots`, `hooks`, `triggers`, `commands`, `widgets`, …): add one here when
/// the app starts using it.
const ALLOWED_KEYS: [&str; 19] = [
    "app",
    "version",
    "title",
    "identifier",
    "visibility",
    "description",
    "iconUrl",
    "appDetails",
    "dependencies",
    "settings",
    "settingsPageConfig",
    "klasses",
    "kviews",
    "actions",
    "commands",
    "workflows",
    "outboundWebhooks",
    "i18n",
    "changelog",
];
/// The keys registration cannot do without.
const REQUIRED_KEYS: [&str; 3] = ["app", "version", "title"];
/// Attribute name suffixes and the type each sets.
const ATTRIBUTE_SUFFIXES: [&str; 7] = ["Str", "Txt", "Num", "At", "Bool", "Url", "Id"];

/// A broken platform rule: which, where (a JSON path) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable code, such as `unknown_top_level_key`.
    pub rule: &'static str,
    /// Where in the definition, such as `settings.default.brand.type`.
    pub path: String,
    /// What is wrong, for the person fixing it.
    pub message: String,
}

/// Collects violations as the checks walk the definition.
#[derive(Default)]
pub(super) struct Report(Vec<Violation>);

impl Report {
    pub(super) fn add(
        &mut self,
        rule: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(Violation {
            rule,
            path: path.into(),
            message: message.into(),
        });
    }

    /// The array at `key`, if present; any other type is reported.
    pub(super) fn array<'a>(&mut self, def: &'a Map<String, Value>, key: &str) -> &'a [Value] {
        match def.get(key) {
            None => &[],
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.add("invalid_type", key, format!("`{key}` must be an array."));
                &[]
            }
        }
    }
}

/// Checks a definition against the platform's rules; empty when Kustomer should accept it.
pub fn check(definition: &Value) -> Vec<Violation> {
    let mut r = Report::default();
    let Some(def) = definition.as_object() else {
        r.add("invalid_type", "", "An app definition is a JSON object.");
        return r.0;
    };
    for key in REQUIRED_KEYS {
        if def
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            r.add(
                "missing_required_key",
                key,
                format!("`{key}` is required, as non-empty text."),
            );
        }
    }
    for key in def.keys() {
        if !ALLOWED_KEYS.contains(&key.as_str()) {
            r.add(
                "unknown_top_level_key",
                key.as_str(),
                format!("`{key}` is not a key of an app definition; registration would fail."),
            );
        }
    }
    let app = def.get("app").and_then(Value::as_str).unwrap_or_default();
    if !app.is_empty() && !is_snake_case(app) {
        r.add(
            "invalid_app_name",
            "app",
            format!(
                "`{app}` must be snake_case: lowercase letters, digits and single underscores."
            ),
        );
    }
    if let Some(v) = def.get("version") {
        if !v.as_str().is_some_and(is_version) {
            r.add(
                "invalid_semver",
                "version",
                format!("{v} is not a semantic version such as 1.2.3 or 1.2.3-beta."),
            );
        }
    }
    check_settings(&mut r, def, app);
    check_attributes(&mut r, def);
    check_components(&mut r, def, app);
    r.0
}

fn is_snake_case(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.split('_').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Each setting's type and default, and the labels every setting and the page need.
fn check_settings(r: &mut Report, def: &Map<String, Value>, app: &str) {
    let labels = def.get("i18n").and_then(|i| i.get("en_us"));
    let need_label = |r: &mut Report, key: String| {
        let text = labels.and_then(|l| l.get(&key)).and_then(Value::as_str);
        if text.is_none_or(|s| s.trim().is_empty()) {
            r.add(
                "missing_label",
                format!("i18n.en_us.{key}"),
                format!("`{key}` needs an English (en_us) text."),
            );
        }
    };
    let Some(settings) = def.get("settings") else {
        return;
    };
    let Some(categories) = settings.as_object() else {
        r.add(
            "invalid_type",
            "settings",
            "`settings` must be an object of categories.",
        );
        return;
    };
    need_label(r, format!("{app}.settings.page.title"));
    need_label(r, format!("{app}.settings.page.description"));
    for (category, names) in categories {
        let Some(names) = names.as_object() else {
            r.add(
                "invalid_type",
                format!("settings.{category}"),
                "A settings category must be an object of settings.",
            );
            continue;
        };
        for (name, setting) in names {
            let path = format!("settings.{category}.{name}");
            let ty = setting
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !SETTING_TYPES.contains(&ty) {
                r.add(
                    "invalid_setting_type",
                    format!("{path}.type"),
                    format!("The type must be one of {}.", SETTING_TYPES.join(", ")),
                );
            }
            match setting.get("defaultValue") {
                None => r.add(
                    "missing_setting_default",
                    format!("{path}.defaultValue"),
                    "Every setting needs a defaultValue.",
                ),
                Some(d) => {
                    let fits = match ty {
                        "number" => d.is_number(),
                        "boolean" => d.is_boolean(),
                        "string" | "secret" => d.is_string(),
                        _ => true, // the type itself is already reported
                    };
                    if !fits {
                        r.add(
                            "invalid_setting_default",
                            format!("{path}.defaultValue"),
                            format!("{d} is not a {ty} (secrets' defaults are text)."),
                        );
                    }
                }
            }
            let label = format!("{app}.settings.path.{category}.{name}");
            need_label(r, format!("{label}.displayName"));
            need_label(r, format!("{label}.description"));
        }
    }
}

/// Attributes added to klasses carry their type in their name's suffix, and a name for admins.
fn check_attributes(r: &mut Report, def: &Map<String, Value>) {
    for (i, klass) in r.array(def, "klasses").iter().enumerate() {
        let Some(props) = klass
            .pointer("/metadata/properties")
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (name, attribute) in props {
            let labelled = attribute
                .get("displayName")
                .and_then(Value::as_str)
                .is_some_and(|l| !l.trim().is_empty());
            if !labelled {
                r.add(
                    "missing_attribute_label",
                    format!("klasses[{i}].metadata.properties.{name}.displayName"),
                    format!("`{name}` needs a displayName: admins see it in rules and reports."),
                );
            }
            let typed = ATTRIBUTE_SUFFIXES
                .iter()
                .any(|s| name.len() > s.len() && name.ends_with(s));
            if !typed {
                r.add(
                    "invalid_attribute_suffix",
                    format!("klasses[{i}].metadata.properties.{name}"),
                    format!(
                        "`{name}` must end with its type: one of {}.",
                        ATTRIBUTE_SUFFIXES.join(", ")
                    ),
                );
            }
        }
    }
}

/// Component names in the app's namespace, and the references between components.
fn check_components(r: &mut Report, def: &Map<String, Value>, app: &str) {
    let prefix = format!("kustomer.app.{app}.");
    let name_of = |r: &mut Report, path: String, item: &Value| -> String {
        let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
        let ok = name.strip_prefix(&prefix).is_some_and(|rest| {
            !rest.is_empty() && !rest.contains(|c: char| c.is_whitespace() || c.is_control())
        });
        if !ok {
            r.add(
                "invalid_component_name",
                format!("{path}.name"),
                format!("The name must be `{prefix}<name>`."),
            );
        }
        name.to_owned()
    };
    for (i, kview) in r.array(def, "kviews").iter().enumerate() {
        name_of(r, format!("kviews[{i}]"), kview);
    }
    let mut actions = Vec::new();
    for (i, action) in r.array(def, "actions").iter().enumerate() {
        actions.push(name_of(r, format!("actions[{i}]"), action));
        check_aliases(r, def, app, &format!("actions[{i}]"), action);
    }
    check_commands(r, def, app);
    for (i, workflow) in r.array(def, "workflows").iter().enumerate() {
        name_of(r, format!("workflows[{i}]"), workflow);
        let steps = workflow.get("steps").and_then(Value::as_array);
        for (j, step) in steps.into_iter().flatten().enumerate() {
            let action = step
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let known = actions.iter().any(|a| a == action)
                || (action.starts_with("kustomer.") && !action.starts_with(&prefix));
            if !known {
                r.add(
                    "unknown_action",
                    format!("workflows[{i}].steps[{j}].action"),
                    format!(
                        "`{action}` is neither one of this app's actions nor a Kustomer action."
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_snake_case() {
        for ok in ["stella_connect", "app", "app2_x"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in [
            "Stella",
            "stella-connect",
            "stella__connect",
            "_x",
            "x_",
            "2app",
            "stellaConnect",
        ] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }
}
