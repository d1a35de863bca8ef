//! The definition itself: the listing, the settings and their labels, the attributes, and the
//! card, action and workflow; the commands are in `commands`.

use super::commands::commands;
use super::{APP, CATEGORY};
use crate::edge::setting_header;
use crate::kustomer::{APP_IDENTIFIER, DO_NOT_SEND_ATTRIBUTE};
use crate::settings::{self, FieldDef, FieldKind, FIELDS};
use crate::survey_outcome;
use serde_json::{json, Map, Value};

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
pub(super) fn settings_as_headers(
    keep: impl Fn(&str) -> bool,
) -> (Map<String, Value>, Map<String, Value>) {
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
pub(super) fn template(name: &str) -> String {
    format!("{{{{{{{name}}}}}}}")
}

/// The type a setting is saved as: the page model's, which the settings page saves by.
fn setting_type(kind: FieldKind) -> &'static str {
    crate::page_model::saved_type(kind)
}

/// The default as the manifest types it. A number or flag whose default does not parse is
/// left `null`, so that [`super::check`] reports the settings table's mistake.
fn default_value(f: &FieldDef) -> Value {
    let d = f.default.unwrap_or_default();
    match f.kind {
        FieldKind::Integer => d.parse::<i64>().map_or(Value::Null, Value::from),
        FieldKind::Boolean => d.parse::<bool>().map_or(Value::Null, Value::from),
        _ => d.into(),
    }
}
