//! The Kustomer app definition ("app manifest"), generated from [`crate::settings::FIELDS`],
//! and a check of the platform's rules, so a definition Kustomer would refuse fails here first.
//!
//! Everything about the settings (keys, types, defaults, labels, help) is read from the
//! settings table; this module adds only what the platform needs around it. The rules come
//! from Kustomer's app documentation (`../shared/reference/kustomer-apps.md`); shapes that the
//! documentation leaves open are marked "guess" and kept on `components` (`definition.rs`).
//!
//! - `definition`: the definition, from the settings table; `commands`: the pages' commands;
//! - `check`: the platform's rules; `command_rules`: those for commands; `version`: semver.

mod check;
mod command_rules;
mod commands;
mod definition;
mod version;

pub use check::{check, Violation};
pub use commands::command_name;
pub use definition::definition;
pub use version::compare_versions;

use serde_json::Value;

/// The edge's public base URL when the build does not name one (`EDGE_URL`): a placeholder under
/// the reserved `.invalid` top-level domain, which never resolves, because the real address is
/// only known once the edge is deployed (a workers.dev address carries the account's subdomain).
/// `make register` refuses a definition that carries it for a real Kustomer; `make deploy` then
/// `make manifest` write the definition for the deployed edge (docs/going-live.md).
pub const DEFAULT_EDGE_URL: &str = "https://your-edge.example.invalid";

/// The app's name on the platform (snake_case, unique).
pub const APP: &str = "stella_connect";

/// The settings category; the documentation asks for `default`.
pub const CATEGORY: &str = "default";

/// The definition as it is checked in: 2-space indented JSON with a trailing newline.
pub fn render(definition: &Value) -> String {
    let mut text = serde_json::to_string_pretty(definition).unwrap_or_default();
    text.push('\n');
    text
}
