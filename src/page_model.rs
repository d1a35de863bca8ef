//! What the pages read from the core instead of keeping copies: the mask Kustomer answers in
//! place of a saved secret, the settings each command a page runs with typed settings leaves
//! out and the keys it needs, and the type each kind of setting is saved as. `pageModel` hands
//! it to the pages.

use crate::settings::{self, FieldKind, FIELDS, MASK};
use serde_json::{json, Map, Value};

/// A command the settings page runs with the settings in its form (`Kustomer.command.run`).
#[derive(Debug, Clone, Copy)]
pub struct PageCommand {
    /// Its short name (the app definition's command is `<app>.app.<name>`).
    pub name: &'static str,
    /// The keys it cannot run without, saved or typed.
    pub needs: &'static [&'static str],
    /// The settings it leaves out of its body, as the app definition leaves them out of its
    /// headers: what it does not read.
    pub leaves_out: &'static [&'static str],
}

impl PageCommand {
    /// Whether the command carries the setting `key`.
    pub fn carries(&self, key: &str) -> bool {
        !self.leaves_out.contains(&key)
    }
}

/// The commands the settings page runs with typed settings: a key check reads both keys, and
/// the Stella API secret and the app secret when given; a preview reads Kustomer alone and
/// needs neither secret.
pub const PAGE_COMMANDS: [PageCommand; 2] = [
    PageCommand {
        name: "check-connection",
        needs: &[settings::STELLA_API_KEY, settings::KUSTOMER_API_KEY],
        leaves_out: &[],
    },
    PageCommand {
        name: "preview",
        needs: &[settings::KUSTOMER_API_KEY],
        leaves_out: &[settings::APP_SECRET, settings::STELLA_API_SECRET],
    },
];

/// The type Kustomer saves a kind of setting as (the app definition's `settings.*.type`): a
/// secret is saved only when typed, a number and a boolean as such, anything else as text.
pub fn saved_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Secret => "secret",
        FieldKind::Integer => "number",
        FieldKind::Boolean => "boolean",
        FieldKind::Url
        | FieldKind::Text
        | FieldKind::ChannelMap
        | FieldKind::ChannelList
        | FieldKind::Pairs => "string",
    }
}

/// [`page_model`] as JSON text, as the pages' module carries it: written out, since building it
/// there would cost the module kilobytes; a test holds the two to each other.
pub const PAGE_MODEL_JSON: &str = r#"{"commands":{"check-connection":{"leavesOut":[],"needs":["stellaApiKey","kustomerApiKey"]},"preview":{"leavesOut":["appSecret","stellaApiSecret"],"needs":["kustomerApiKey"]}},"mask":"********","savedTypes":{"boolean":"boolean","channelList":"string","channelMap":"string","integer":"number","pairs":"string","secret":"secret","text":"string","url":"string"}}"#;

/// The model: `{mask, commands: {name: {needs, leavesOut}}, savedTypes: {kind: type}}`; a
/// command carries every setting but those it leaves out.
pub fn page_model() -> Value {
    let mut commands = Map::new();
    for c in PAGE_COMMANDS {
        commands.insert(
            c.name.into(),
            json!({"needs": c.needs, "leavesOut": c.leaves_out}),
        );
    }
    let mut saved_types = Map::new();
    for f in FIELDS {
        let kind = serde_json::to_value(f.kind).unwrap_or_default();
        if let Value::String(kind) = kind {
            saved_types.insert(kind, saved_type(f.kind).into());
        }
    }
    json!({"mask": MASK, "commands": commands, "savedTypes": saved_types})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_model_is_the_built_one() {
        let written: Value = serde_json::from_str(PAGE_MODEL_JSON).unwrap();
        assert!(
            written == page_model(),
            "PAGE_MODEL_JSON is stale; it should be:\n{}",
            page_model()
        );
    }

    #[test]
    fn the_model_carries_the_mask_the_commands_and_the_saved_types() {
        let model = page_model();
        assert_eq!(model["mask"], "********");
        let check = &model["commands"]["check-connection"];
        assert_eq!(check["needs"], json!(["stellaApiKey", "kustomerApiKey"]));
        assert_eq!(check["leavesOut"], json!([]));
        let preview = &model["commands"]["preview"];
        assert_eq!(preview["needs"], json!(["kustomerApiKey"]));
        assert_eq!(
            preview["leavesOut"],
            json!(["appSecret", "stellaApiSecret"])
        );
        let types = &model["savedTypes"];
        assert_eq!(types["secret"], "secret");
        assert_eq!(types["integer"], "number");
        assert_eq!(types["boolean"], "boolean");
        assert_eq!(types["channelMap"], "string");
        // Every command needs only secrets it carries, and leaves out only settings there are.
        for c in PAGE_COMMANDS {
            for key in c.leaves_out {
                assert!(FIELDS.iter().any(|f| f.key == *key), "{key}");
            }
            for key in c.needs {
                assert!(c.carries(key), "{} needs {key}", c.name);
                let field = settings::field(key).unwrap();
                assert_eq!(field.kind, FieldKind::Secret, "{key}");
            }
        }
    }
}
