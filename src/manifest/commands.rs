//! The commands the pages run (`Kustomer.command.run`), one per edge operation they need.
//! Kustomer fills the settings into the headers on its side, so no page ever holds a saved key.
//! What the user supplies goes in the body (settings typed and not saved included), except the
//! delivery log's filters: a `get` has no body, so they are URL arguments (`permittedArgs`,
//! each `{{{arg}}}` in the query; the pages percent-encode them).

use super::definition::{settings_as_headers, template};
use super::APP;
use crate::edge::deliveries::PARAMETERS;
use crate::settings::{self, APP_SECRET};
use serde_json::{json, Value};

/// The full name a page runs a command by: `<app>.app.<name>`, as in Kustomer's commands
/// example (private apps may be namespaced further: the pages keep that guess in one place).
pub fn command_name(name: &str) -> String {
    format!("{APP}.app.{name}")
}

/// One command: its name, what admins see, the edge's route, the URL arguments a caller may
/// pass, and which settings it carries as headers.
struct Command {
    name: &'static str,
    display: &'static str,
    method: &'static str,
    path: &'static str,
    /// Arguments carried in the URL's query, each as `name={{{name}}}`.
    query: &'static [&'static str],
    carries: fn(&str) -> bool,
}

// A key check carries every setting: the Stella API secret (it lists the agents without an
// active Agent Connect profile) and the app secret (it checks the app's link); a resend every
// setting too, as the close action (the edge uses them only if they are the ones the org's
// workflow last sent); a preview the same but the Stella API secret, which it does not need, and
// the app secret; the log, the forget and the audit list only the caller's org (the Kustomer key
// and URL) and the app secret.
fn every(_: &str) -> bool {
    true
}

fn preview(key: &str) -> bool {
    key != APP_SECRET && key != settings::STELLA_API_SECRET
}

fn org(key: &str) -> bool {
    [
        settings::KUSTOMER_API_KEY,
        settings::KUSTOMER_API_URL,
        APP_SECRET,
    ]
    .contains(&key)
}

/// Builds a command row of [`COMMANDS`].
const fn command(
    name: &'static str,
    display: &'static str,
    method: &'static str,
    path: &'static str,
    carries: fn(&str) -> bool,
) -> Command {
    Command {
        name,
        display,
        method,
        path,
        query: &[],
        carries,
    }
}

/// Every command, in the definition's order.
const COMMANDS: [Command; 8] = [
    command(
        "check-connection",
        "Check the Stella Connect connection",
        "post",
        "/v1/settings/check",
        every,
    ),
    command(
        "preview",
        "Preview a Stella Connect survey",
        "post",
        "/v1/preview",
        preview,
    ),
    Command {
        query: &PARAMETERS,
        ..command(
            "list-deliveries",
            "List Stella Connect survey deliveries",
            "get",
            "/v1/deliveries",
            org,
        )
    },
    command(
        "resend",
        "Resend a Stella Connect survey",
        "post",
        "/v1/deliveries/resend",
        every,
    ),
    command(
        "resend-many",
        "Resend Stella Connect surveys",
        "post",
        "/v1/deliveries/resend",
        every,
    ),
    // The settings page: forget a customer (with a confirm step), and the audit list.
    command(
        "forget-customer",
        "Forget a customer in Stella Connect",
        "post",
        "/v1/customers/forget",
        org,
    ),
    command(
        "audit",
        "List Stella Connect's audit entries",
        "get",
        "/v1/audit",
        org,
    ),
    // The agent's card: is the agent on Agent Connect's roster for this channel?
    command(
        "agent-profile",
        "Check an agent's Agent Connect profile",
        "post",
        "/v1/roster",
        every,
    ),
];

impl Command {
    /// The command as the definition declares it, for an edge at `edge`.
    fn json(&self, edge: &str) -> Value {
        let (app_settings, headers) = settings_as_headers(self.carries);
        let mut url = format!("{edge}{}", self.path);
        let query: Vec<String> = self
            .query
            .iter()
            .map(|arg| format!("{arg}={}", template(arg)))
            .collect();
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        json!({
            "type": "external-api",
            "name": command_name(self.name),
            "displayName": self.display,
            "url": url,
            "httpMethod": self.method,
            "permittedArgs": self.query,
            "appSettings": app_settings,
            "defaultHeaders": headers,
        })
    }
}

/// The commands for an edge at `edge`.
pub(super) fn commands(edge: &str) -> Vec<Value> {
    COMMANDS.iter().map(|c| c.json(edge)).collect()
}
