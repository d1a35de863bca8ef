//! The platform's rules for commands and for the settings aliases components carry.

use super::check::Report;
use serde_json::{Map, Value};

/// The HTTP methods a command may use, as the SDK types them.
const HTTP_METHODS: [&str; 5] = ["post", "put", "patch", "get", "delete"];

/// Each `appSettings` alias of a component names a declared setting `<app>.<category>.<name>`;
/// returns the aliases.
pub(super) fn check_aliases(
    r: &mut Report,
    def: &Map<String, Value>,
    app: &str,
    path: &str,
    item: &Value,
) -> Vec<String> {
    let Some(aliases) = item.get("appSettings").and_then(Value::as_object) else {
        return Vec::new();
    };
    for (alias, setting) in aliases {
        let key = setting
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let declared = key
            .strip_prefix(app)
            .and_then(|k| k.strip_prefix('.'))
            .and_then(|k| k.split_once('.'))
            .is_some_and(|(category, name)| {
                def.get("settings")
                    .and_then(|s| s.get(category))
                    .and_then(|c| c.get(name))
                    .is_some()
            });
        if !declared {
            r.add(
                "unknown_setting",
                format!("{path}.appSettings.{alias}.key"),
                format!("`{key}` is not a declared setting `{app}.<category>.<name>`."),
            );
        }
    }
    aliases.keys().cloned().collect()
}

/// The names a Handlebars template refers to (`{{name}}` and `{{{name}}}`).
fn references(template: &str) -> Vec<&str> {
    template
        .split("{{")
        .skip(1)
        .filter_map(|rest| rest.trim_start_matches('{').split_once("}}"))
        .map(|(name, _)| name.trim())
        .collect()
}

/// Whether `alias` of `component` names a setting of type `secret`.
fn secret_alias(def: &Map<String, Value>, component: &Value, alias: &str) -> bool {
    let key = component
        .pointer(&format!("/appSettings/{alias}/key"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut parts = key.splitn(3, '.').skip(1);
    let (Some(category), Some(name)) = (parts.next(), parts.next()) else {
        return false;
    };
    def.get("settings")
        .and_then(|s| s.get(category))
        .and_then(|c| c.get(name))
        .and_then(|s| s.get("type"))
        .is_some_and(|t| t == "secret")
}

/// Commands (kustomer-apps.md §7; `Command` in `@kustomer/apps-server-sdk`): a name in the
/// app's `<app>.app.` namespace, once; an `external-api` type; a lower-case HTTP method; and
/// templates that refer only to the command's settings aliases, or (in the URL only) to its
/// permitted arguments.
pub(super) fn check_commands(r: &mut Report, def: &Map<String, Value>, app: &str) {
    let prefix = format!("{app}.app.");
    let mut names = Vec::new();
    for (i, command) in r.array(def, "commands").iter().enumerate() {
        let path = format!("commands[{i}]");
        let name = text(command, "name");
        if name.strip_prefix(&prefix).is_none_or(str::is_empty) || names.contains(&name) {
            r.add(
                "invalid_command_name",
                format!("{path}.name"),
                format!("The name must be `{prefix}<name>`, and used once."),
            );
        }
        names.push(name);
        check_type_and_method(r, &path, command);
        let aliases = check_aliases(r, def, app, &path, command);
        let args = permitted_args(r, &path, command);
        if let Some(arg) = args
            .iter()
            .find(|a| aliases.iter().any(|alias| alias == *a))
        {
            r.add(
                "argument_shadows_setting",
                format!("{path}.permittedArgs"),
                format!("`{arg}` is also a settings alias: a caller's argument must never stand for a setting."),
            );
        }
        check_templates(r, def, &path, command, &aliases, &args);
    }
}

/// A command's text member, or `""`.
fn text<'a>(command: &'a Value, key: &str) -> &'a str {
    command.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// An `external-api` type and a lower-case HTTP method.
fn check_type_and_method(r: &mut Report, path: &str, command: &Value) {
    if text(command, "type") != "external-api" {
        r.add(
            "invalid_command_type",
            format!("{path}.type"),
            "The type must be `external-api`.",
        );
    }
    if !HTTP_METHODS.contains(&text(command, "httpMethod")) {
        r.add(
            "invalid_http_method",
            format!("{path}.httpMethod"),
            format!("The method must be one of {}.", HTTP_METHODS.join(", ")),
        );
    }
}

/// The command's permitted arguments; anything but a list of names is reported.
fn permitted_args<'a>(r: &mut Report, path: &str, command: &'a Value) -> Vec<&'a str> {
    match command.get("permittedArgs") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect()
        }
        Some(_) => {
            r.add(
                "invalid_type",
                format!("{path}.permittedArgs"),
                "`permittedArgs` must be a list of names.",
            );
            Vec::new()
        }
    }
}

/// The URL and the headers refer only to the command's settings aliases, or (in the URL only)
/// to its permitted arguments; a secret setting never goes in the URL.
fn check_templates(
    r: &mut Report,
    def: &Map<String, Value>,
    path: &str,
    command: &Value,
    aliases: &[String],
    args: &[&str],
) {
    let mut templates = vec![(format!("{path}.url"), text(command, "url"), true)];
    if let Some(headers) = command.get("defaultHeaders").and_then(Value::as_object) {
        for (header, value) in headers {
            let value = value.as_str().unwrap_or_default();
            templates.push((format!("{path}.defaultHeaders.{header}"), value, false));
        }
    }
    for (at, text, url) in templates {
        for name in references(text) {
            if url && secret_alias(def, command, name) {
                r.add(
                    "secret_in_url",
                    at.clone(),
                    format!("`{name}` is a secret setting: it goes in a header, never in the URL (which the run's answer shows)."),
                );
            }
            let known = aliases.iter().any(|a| a == name) || (url && args.contains(&name));
            if !known {
                r.add(
                    "unknown_template_name",
                    at.clone(),
                    format!("`{name}` is neither a settings alias of this command nor, in its URL, a permitted argument."),
                );
            }
        }
    }
}
