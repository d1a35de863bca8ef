//! The Kustomer app definition ("app manifest"), generated from [`crate::settings::FIELDS`],
//! and a check of the platform's rules, so a definition Kustomer would refuse fails here first.
//!
//! Everything about the settings (keys, types, defaults, labels, help) is read from the
//! settings table; this module adds only what the platform needs around it. The rules come
//! from Kustomer's app documentation (`../shared/reference/kustomer-apps.md`); shapes that the
//! documentation leaves open are marked "guess" and kept in [`components`].

use crate::edge::deliveries::PARAMETERS;
use crate::edge::setting_header;
use crate::kustomer::{APP_IDENTIFIER, DO_NOT_SEND_ATTRIBUTE};
use crate::settings::{self, FieldDef, FieldKind, APP_SECRET, FIELDS};
use crate::survey_outcome;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// The edge's public base URL when the build does not name one (`EDGE_URL`): a placeholder under
/// the reserved `.invalid` top-level domain, which never resolves, because the real address is
/// only known once the edge is deployed (a workers.dev address carries the account's subdomain).
/// `make register` refuses a definition that carries it for a real Kustomer; `make deploy` then
/// `make manifest` write the definition for the deployed edge (README, "Going live").
pub const DEFAULT_EDGE_URL: &str = "https://your-edge.example.invalid";

/// The app's name on the platform (snake_case, unique).
pub const APP: &str = "stella_connect";

// Listing details: placeholders kept together so that publishing changes one block.
const TITLE: &str = "Stella Connect";
const DESCRIPTION: &str = "Sends a Medallia Agent Connect (Stella Connect) survey request when a conversation is closed, on any channel. The agent's card shows whether the survey will go out, and why not.";
const DEVELOPER_NAME: &str = "Stella Connect for Kustomer maintainers";
const SUPPORT_EMAIL: &str = "support@example.com";
const PLATFORM_NAME: &str = "Medallia Agent Connect (Stella Connect)";
const PLATFORM_WEBSITE: &str = "https://www.stellaconnect.com";
const SETTINGS_TITLE: &str = "Stella Connect";
const SETTINGS_DESCRIPTION: &str =
    "Connect Kustomer to Agent Connect (Stella Connect): keys, addresses and when surveys go out.";
const ATTRIBUTE_LABEL: &str = "Do not send Stella Connect request";
/// Release notes, newest first, one entry per registered version (the shape, an object from
/// version to notes, is a guess: the documentation names `changelog` without showing it).
const CHANGELOG: &[(&str, &str)] = &[
    (
        "0.1.0",
        "First release: a survey request when a conversation is closed, the agent's card, and the \"Do not send\" checkbox.",
    ),
    (
        "0.2.0",
        "Hardening: only the app's own workflow and pages can schedule, list or resend surveys (the app secret); one survey per conversation unless \"Survey a conversation again after (days)\" allows more; keys sealed at rest and dropped when no survey needs them.",
    ),
    (
        "0.3.0",
        "Admin and agent tools: a Deliveries page (every survey's state and reason, filters, paging, resend one or all failed, CSV export); the agent's card shows what actually happened; Check connection and Preview use the saved keys through the app's commands, so no key is typed twice.",
    ),
    (
        "0.4.0",
        "Survey outcomes: with the optional Stella Connect API secret, each survey's real fate (sent, suppressed, bounced, …) and the customer's rating and comment are read back from Agent Connect and written onto the conversation (five new conversation attributes), shown on the agent's card and in the Deliveries page; the card warns when the assigned agent has no active Agent Connect profile, and Check connection lists such agents. Multi-brand and multi-language accounts: a brand map, a language map and custom properties.",
    ),
    (
        "0.5.0",
        "Kustomer decides whom the edge trusts: the settings page saves the app secret's fingerprint beside it, and the edge reads it from Kustomer, so no caller can take an org over. After upgrading, open the settings page and press Save (or \"Re-link the app\") once; closes meanwhile are held, not lost. Survey outcomes are accepted only from records that match the survey sent.",
    ),
    (
        "0.6.0",
        "Privacy and scale: customers' names, e-mails and comments leave the delivery log after 30 days; the settings page can forget a customer (their pending surveys are cancelled and their data removed), customers deleted in Kustomer are forgotten within a day, and an audit list shows settings changes, re-links, resends and forgets. EU orgs (https://api.prod2.kustomerapp.com) are kept in the EU. The log watches its own size and warns before it is full. The Kustomer API key needs the org.permission.search.create role to find deleted customers.",
    ),
];

/// The settings category; the documentation asks for `default`.
pub const CATEGORY: &str = "default";
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
/// The HTTP methods a command may use, as the SDK types them.
const HTTP_METHODS: [&str; 5] = ["post", "put", "patch", "get", "delete"];
/// Attribute name suffixes and the type each sets.
const ATTRIBUTE_SUFFIXES: [&str; 7] = ["Str", "Txt", "Num", "At", "Bool", "Url", "Id"];

/// The app definition for an edge at `edge_url` (no trailing slash): what is registered with
/// `POST /v1/apps/available`.
pub fn definition(edge_url: &str) -> Value {
    let edge = edge_url.trim_end_matches('/');
    let mut settings = Map::new();
    let mut i18n = Map::new();
    i18n.insert(format!("{APP}.settings.page.title"), SETTINGS_TITLE.into());
    i18n.insert(
        format!("{APP}.settings.page.description"),
        SETTINGS_DESCRIPTION.into(),
    );
    for f in FIELDS {
        let mut setting = json!({"type": setting_type(f.kind), "defaultValue": default_value(f), "required": f.required});
        if f.hidden {
            setting["hidden"] = true.into();
        }
        settings.insert(f.key.to_owned(), setting);
        let path = format!("{APP}.settings.path.{CATEGORY}.{}", f.key);
        i18n.insert(format!("{path}.displayName"), f.label.into());
        i18n.insert(format!("{path}.description"), f.help.into());
    }
    // The app secret's fingerprint: saved by the settings page, read by the edge from Kustomer
    // (never carried by a call), so it is no field of the form and no header.
    settings.insert(
        settings::APP_SECRET_FINGERPRINT.to_owned(),
        json!({"type": "string", "defaultValue": "", "required": false, "hidden": true}),
    );
    let path = format!(
        "{APP}.settings.path.{CATEGORY}.{}",
        settings::APP_SECRET_FINGERPRINT
    );
    i18n.insert(
        format!("{path}.displayName"),
        "App secret fingerprint".into(),
    );
    i18n.insert(
        format!("{path}.description"),
        "Saved by the settings page beside the app secret; the edge trusts only calls whose app secret has this fingerprint. \"Re-link the app\" replaces both.".into(),
    );
    let changelog: Map<String, Value> = CHANGELOG
        .iter()
        .map(|(v, notes)| ((*v).to_owned(), (*notes).into()))
        .collect();
    let (kview, action, workflow) = components(edge);
    let commands = commands(edge);
    json!({
        "app": APP,
        "version": env!("CARGO_PKG_VERSION"),
        "title": TITLE,
        "identifier": APP_IDENTIFIER,
        "visibility": "private",
        "description": DESCRIPTION,
        "iconUrl": format!("{edge}/app/icon.svg"),
        "appDetails": {
            "appDeveloper": {"name": DEVELOPER_NAME, "website": edge, "supportEmail": SUPPORT_EMAIL},
            "externalPlatform": {"name": PLATFORM_NAME, "website": PLATFORM_WEBSITE},
        },
        "changelog": changelog,
        "settings": {CATEGORY: settings},
        "settingsPageConfig": {
            "url": format!("{edge}/app/settings.html"),
            "title": SETTINGS_TITLE,
            "description": SETTINGS_DESCRIPTION,
        },
        "i18n": {"en_us": i18n},
        "klasses": [{
            "name": "conversation",
            "metadata": {"standard": true, "properties": conversation_attributes()},
        }],
        "kviews": [kview],
        "actions": [action],
        "commands": commands,
        "workflows": [workflow],
    })
}

/// The attributes the app adds to conversations: the agent's "do not send" switch, and the
/// survey's outcome as the edge writes it back, so admins can report and build rules on it.
fn conversation_attributes() -> Map<String, Value> {
    std::iter::once((DO_NOT_SEND_ATTRIBUTE, ATTRIBUTE_LABEL))
        .chain(survey_outcome::ATTRIBUTES)
        .map(|(name, label)| (name.to_owned(), json!({"displayName": label})))
        .collect()
}

/// The agent's card, the action that calls the edge, and the workflow that runs it on close.
///
/// Guesses, kept here alone:
/// - the action's templates read its own input (`/#event`, as `/#querystring` in Kustomer's
///   action example), and the workflow step passes the whole trigger event with `/#steps.1`
///   (the documentation shows `/#steps.<id>.<path>`; a reference without a path is assumed
///   to be the whole output);
/// - settings reach headers through triple-brace Handlebars (`{{{alias}}}`): the documented
///   `{{alias}}` would HTML-escape `=` in `voice=phone` and in keys;
/// - workflow names take the `kustomer.app.<app>.` prefix like actions and KViews, and a step's
///   `appVersion` is `<app>-^<major>`, like a dependency.
fn components(edge: &str) -> (Value, Value, Value) {
    let action_name = format!("kustomer.app.{APP}.conversation-closed");
    let kview = json!({
        "name": format!("kustomer.app.{APP}.survey-card"),
        "resource": "conversation",
        "context": "smartbar-card",
        "meta": {"displayName": "Stella Connect survey", "icon": "star"},
        "template": format!("<DynamicCard src=\"{edge}/app/card.html\" context={{context}} fillToWidth noPadding />"),
    });
    let (app_settings, headers) = settings_as_headers(|_| true);
    let action = json!({
        "name": action_name,
        "description": "Schedules the Stella Connect survey request for a closed conversation.",
        "type": "rest_api",
        "appSettings": app_settings,
        "inputTemplate": {
            "uri": format!("{edge}/v1/kustomer/conversation-closed"),
            "method": "POST",
            "headers": headers,
            "data": "/#event",
            "json": true,
        },
        "inputSchema": {
            "type": "object",
            "properties": {"event": {"type": "object"}},
            "required": ["event"],
            "additionalProperties": false,
        },
        "outputTemplate": {"response": "/#response", "body": "/#body"},
        "outputSchema": {
            "type": "object",
            "properties": {"response": {"type": "object"}, "body": {"type": "object"}},
            "additionalProperties": false,
        },
    });
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let workflow = json!({
        "name": format!("kustomer.app.{APP}.send-survey-on-close"),
        "description": "When a conversation is closed, asks the Stella Connect edge to send its survey request after the configured delay.",
        "trigger": {
            "id": "1",
            "eventName": "kustomer.conversation.update",
            "transitions": [{
                "target": "2",
                "condition": {"op": "and", "values": [
                    {"op": "eq", "values": ["/#steps.1.changes.attributes.status.after", "done"]},
                ]},
            }],
        },
        "steps": [{
            "id": "2",
            "action": action_name,
            "params": {"event": "/#steps.1"},
            "appVersion": format!("{APP}-^{major}"),
            "transitions": [],
            "errorCases": [],
        }],
    });
    (kview, action, workflow)
}

/// The `appSettings` aliases and the headers that carry the settings `keep` selects, as the
/// workflow action and the commands send them: each setting as its `x-…` header, filled by
/// Kustomer on its side (`{{{key}}}`), so a secret never passes through a browser.
fn settings_as_headers(keep: impl Fn(&str) -> bool) -> (Map<String, Value>, Map<String, Value>) {
    let mut app_settings = Map::new();
    let mut headers = Map::new();
    for f in FIELDS.iter().filter(|f| keep(f.key)) {
        app_settings.insert(
            f.key.to_owned(),
            json!({"key": format!("{APP}.{CATEGORY}.{}", f.key)}),
        );
        headers.insert(setting_header(f.key), template(f.key).into());
    }
    headers.insert("content-type".to_owned(), "application/json".into());
    (app_settings, headers)
}

/// A Handlebars reference that inserts the value as it is (`{{{name}}}`).
fn template(name: &str) -> String {
    format!("{{{{{{{name}}}}}}}")
}

/// The full name a page runs a command by: `<app>.app.<name>`, as in Kustomer's commands
/// example (private apps may be namespaced further: the pages keep that guess in one place).
pub fn command_name(name: &str) -> String {
    format!("{APP}.app.{name}")
}

/// The commands the pages run (`Kustomer.command.run`), one per edge operation they need.
/// Kustomer fills the settings into the headers on its side, so no page ever holds a saved key.
/// What the user supplies goes in the body (settings typed and not saved included), except the
/// delivery log's filters: a `get` has no body, so they are URL arguments (`permittedArgs`,
/// each `{{{arg}}}` in the query; the pages percent-encode them).
fn commands(edge: &str) -> Vec<Value> {
    // A key check carries every setting: the Stella API secret (it lists the agents without an
    // active Agent Connect profile) and the app secret (it checks the app's link); a preview the same but the Stella API secret, which it does not need; a resend
    // every setting, as the close action (the edge uses them only if they are the ones the
    // org's workflow last sent); the log only the caller's org (the Kustomer key and URL) and
    // the app secret.
    let check: fn(&str) -> bool = |_| true;
    let preview: fn(&str) -> bool = |k| k != APP_SECRET && k != settings::STELLA_API_SECRET;
    let all: fn(&str) -> bool = |_| true;
    let org: fn(&str) -> bool = |k| {
        [
            settings::KUSTOMER_API_KEY,
            settings::KUSTOMER_API_URL,
            APP_SECRET,
        ]
        .contains(&k)
    };
    let query: Vec<String> = PARAMETERS
        .iter()
        .map(|arg| format!("{arg}={}", template(arg)))
        .collect();
    let command = |name: &str,
                   display: &str,
                   method: &str,
                   path: &str,
                   args: &[&str],
                   carries: fn(&str) -> bool| {
        let (app_settings, headers) = settings_as_headers(carries);
        json!({
            "type": "external-api",
            "name": command_name(name),
            "displayName": display,
            "url": format!("{edge}{path}"),
            "httpMethod": method,
            "permittedArgs": args,
            "appSettings": app_settings,
            "defaultHeaders": headers,
        })
    };
    let log = format!("/v1/deliveries?{}", query.join("&"));
    vec![
        command(
            "check-connection",
            "Check the Stella Connect connection",
            "post",
            "/v1/settings/check",
            &[],
            check,
        ),
        command(
            "preview",
            "Preview a Stella Connect survey",
            "post",
            "/v1/preview",
            &[],
            preview,
        ),
        command(
            "list-deliveries",
            "List Stella Connect survey deliveries",
            "get",
            &log,
            &PARAMETERS,
            org,
        ),
        command(
            "resend",
            "Resend a Stella Connect survey",
            "post",
            "/v1/deliveries/resend",
            &[],
            all,
        ),
        command(
            "resend-many",
            "Resend Stella Connect surveys",
            "post",
            "/v1/deliveries/resend",
            &[],
            all,
        ),
        // The settings page: forget a customer (with a confirm step), and the audit list.
        command(
            "forget-customer",
            "Forget a customer in Stella Connect",
            "post",
            "/v1/customers/forget",
            &[],
            org,
        ),
        command(
            "audit",
            "List Stella Connect's audit entries",
            "get",
            "/v1/audit",
            &[],
            org,
        ),
        // The agent's card: is the agent on Agent Connect's roster for this channel?
        command(
            "agent-profile",
            "Check an agent's Agent Connect profile",
            "post",
            "/v1/roster",
            &[],
            check,
        ),
    ]
}

/// The type a setting is saved as: the page model's, which the settings page saves by.
fn setting_type(kind: FieldKind) -> &'static str {
    crate::page_model::saved_type(kind)
}

/// The default as the manifest types it. A number or flag whose default does not parse is
/// left `null`, so that [`check`] reports the settings table's mistake.
fn default_value(f: &FieldDef) -> Value {
    let d = f.default.unwrap_or_default();
    match f.kind {
        FieldKind::Integer => d.parse::<i64>().map_or(Value::Null, Value::from),
        FieldKind::Boolean => d.parse::<bool>().map_or(Value::Null, Value::from),
        _ => d.into(),
    }
}

/// The definition as it is checked in: 2-space indented JSON with a trailing newline.
pub fn render(definition: &Value) -> String {
    let mut text = serde_json::to_string_pretty(definition).unwrap_or_default();
    text.push('\n');
    text
}

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
struct Report(Vec<Violation>);

impl Report {
    fn add(&mut self, rule: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation {
            rule,
            path: path.into(),
            message: message.into(),
        });
    }

    /// The array at `key`, if present; any other type is reported.
    fn array<'a>(&mut self, def: &'a Map<String, Value>, key: &str) -> &'a [Value] {
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
        if v.as_str().and_then(parse_version).is_none() {
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

/// Each `appSettings` alias of a component names a declared setting `<app>.<category>.<name>`;
/// returns the aliases.
fn check_aliases(
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
fn check_commands(r: &mut Report, def: &Map<String, Value>, app: &str) {
    let prefix = format!("{app}.app.");
    let mut names = Vec::new();
    for (i, command) in r.array(def, "commands").iter().enumerate() {
        let path = format!("commands[{i}]");
        let field = |k: &str| command.get(k).and_then(Value::as_str).unwrap_or_default();
        let name = field("name");
        if name.strip_prefix(&prefix).is_none_or(str::is_empty) || names.contains(&name) {
            r.add(
                "invalid_command_name",
                format!("{path}.name"),
                format!("The name must be `{prefix}<name>`, and used once."),
            );
        }
        names.push(name);
        if field("type") != "external-api" {
            r.add(
                "invalid_command_type",
                format!("{path}.type"),
                "The type must be `external-api`.",
            );
        }
        if !HTTP_METHODS.contains(&field("httpMethod")) {
            r.add(
                "invalid_http_method",
                format!("{path}.httpMethod"),
                format!("The method must be one of {}.", HTTP_METHODS.join(", ")),
            );
        }
        let aliases = check_aliases(r, def, app, &path, command);
        let args: Vec<&str> = match command.get("permittedArgs") {
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
        };
        let mut templates = vec![(format!("{path}.url"), field("url"), true)];
        if let Some(headers) = command.get("defaultHeaders").and_then(Value::as_object) {
            for (header, value) in headers {
                let value = value.as_str().unwrap_or_default();
                templates.push((format!("{path}.defaultHeaders.{header}"), value, false));
            }
        }
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
}

/// A parsed semantic version: the three numbers and the pre-release identifiers (build
/// metadata is dropped: it has no part in precedence).
struct Version<'a> {
    core: [u64; 3],
    pre: Vec<&'a str>,
}

/// A number without leading zeros.
fn numeric(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

fn identifiers(s: &str) -> Option<Vec<&str>> {
    let ids: Vec<&str> = s.split('.').collect();
    ids.iter()
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then_some(ids)
}

/// `MAJOR.MINOR.PATCH[-pre][+build]` as semver.org defines it.
fn parse_version(s: &str) -> Option<Version<'_>> {
    let (rest, build) = s.split_once('+').map_or((s, None), |(r, b)| (r, Some(b)));
    if let Some(build) = build {
        identifiers(build)?;
    }
    let (core, pre) = rest
        .split_once('-')
        .map_or((rest, None), |(c, p)| (c, Some(p)));
    let pre = match pre {
        None => Vec::new(),
        Some(p) => {
            let ids = identifiers(p)?;
            // A numeric identifier has no leading zeros.
            if ids
                .iter()
                .any(|id| id.bytes().all(|b| b.is_ascii_digit()) && numeric(id).is_none())
            {
                return None;
            }
            ids
        }
    };
    let mut numbers = core.split('.').map(numeric);
    let core = [numbers.next()??, numbers.next()??, numbers.next()??];
    numbers.next().is_none().then_some(Version { core, pre })
}

/// Semver precedence of two versions (build metadata ignored), or `None` if either is not a
/// semantic version: registration requires each version to be higher than the last.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse_version(a)?, parse_version(b)?);
    let pre = match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let ordered = a
                .pre
                .iter()
                .zip(&b.pre)
                .map(|(x, y)| match (numeric(x), numeric(y)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => x.cmp(y),
                });
            ordered
                .chain([a.pre.len().cmp(&b.pre.len())])
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        }
    };
    Some(a.core.cmp(&b.core).then(pre))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_semver() {
        for ok in [
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x-y.7z+build.01",
            "1.0.0+20130313",
        ] {
            assert!(parse_version(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-a..b",
            "v1.0.0",
            "1.0.0 ",
            "-1.0.0",
            "99999999999999999999.0.0",
        ] {
            assert!(parse_version(bad).is_none(), "{bad}");
        }
    }

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
