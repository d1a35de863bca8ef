//! The hand copies of the settings table stay in step with it: the TypeScript types in the
//! package's `.d.ts` (`RawSettings`, `Settings`) and the README's settings table; and the
//! skip-code table of `docs/architecture.md` to `SkipCode`.
#![cfg(not(target_arch = "wasm32"))]

use serde_json::{json, Map, Value};
use stella_connect::settings::{FieldKind, FIELDS};
use stella_connect::wasm::TYPES;
use stella_connect::{validate_settings, ValidationOptions};

/// One member of a TypeScript interface: `name?: type`.
#[derive(Debug)]
struct Member {
    name: String,
    optional: bool,
    ty: String,
}

/// The members of `export interface <name> { ... }` in [`TYPES`], comments left out.
fn interface(name: &str) -> Vec<Member> {
    let head = format!("export interface {name} {{");
    let start = TYPES
        .find(&head)
        .unwrap_or_else(|| panic!("no `{head}` in the TypeScript types"))
        + head.len();
    let mut depth = 1;
    let end = TYPES[start..]
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            depth == 0
        })
        .map(|(i, _)| start + i)
        .unwrap_or_else(|| panic!("`{head}` is not closed"));
    let mut body = TYPES[start..end].to_owned();
    while let Some(open) = body.find("/*") {
        let close = body[open..].find("*/").expect("an unclosed comment") + open + 2;
        body.replace_range(open..close, " ");
    }
    body.split(';')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            let (name, ty) = m
                .split_once(':')
                .unwrap_or_else(|| panic!("`{m}` in {name} is not `key: type`"));
            let name = name.trim();
            Member {
                name: name.trim_end_matches('?').to_owned(),
                optional: name.ends_with('?'),
                ty: ty.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

fn sorted(keys: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort();
    keys
}

/// What `RawSettings` accepts for each kind of setting: form text always, and the typed value
/// where there is one.
fn raw_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Secret | FieldKind::Url | FieldKind::Text => "string",
        FieldKind::Integer => "number | string",
        FieldKind::Boolean => "boolean | string",
        FieldKind::ChannelMap | FieldKind::Pairs => "string | Record<string, string>",
        FieldKind::ChannelList => "string | string[]",
    }
}

#[test]
fn raw_settings_type_has_every_setting_and_no_other() {
    let members = interface("RawSettings");
    // Hidden settings (the app secret) are raw settings too: the pages and workflow carry them.
    assert_eq!(
        sorted(members.iter().map(|m| m.name.clone())),
        sorted(FIELDS.iter().map(|f| f.key.to_owned())),
        "RawSettings in src/wasm/mod.rs and FIELDS in src/settings/fields.rs name different settings"
    );
    for f in FIELDS {
        let m = members.iter().find(|m| m.name == f.key).unwrap();
        assert!(
            m.optional,
            "RawSettings.{}: blanks take defaults, so it must be optional",
            f.key
        );
        assert_eq!(
            m.ty,
            raw_type(f.kind),
            "RawSettings.{} for a {:?} setting",
            f.key,
            f.kind
        );
    }
}

/// Validated settings, as `validateSettings` hands them to JavaScript.
fn validated(raw: Value) -> Map<String, Value> {
    let settings = validate_settings(&raw, ValidationOptions::default()).expect("valid settings");
    match serde_json::to_value(settings).unwrap() {
        Value::Object(map) => map,
        other => panic!("Settings serialized as {other}"),
    }
}

fn ts_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "string[]",
        Value::Object(_) => "Record<string, string>",
        Value::Null => "null",
    }
}

#[test]
fn settings_type_has_every_serialized_key_and_no_other() {
    let required = json!({
        "stellaApiKey": "k1",
        "kustomerApiKey": "k2",
        "kustomerUrl": "https://acme.kustomerapp.com",
    });
    // Every optional setting filled in, so that keys left out when blank show up too.
    let full = json!({
        "stellaApiKey": "k1",
        "kustomerApiKey": "k2",
        "kustomerUrl": "https://acme.kustomerapp.com",
        "stellaApiSecret": "s3",
        "brand": "Acme",
        "brandMap": "Acme Shoes=shoes",
        "languageMap": "en=English",
        "customProperties": "conversation.priority=priority",
        "surveyedChannels": "email",
        "sendLanguage": true,
    });
    let always = validated(required);
    let full = validated(full);
    let members = interface("Settings");
    assert_eq!(
        sorted(members.iter().map(|m| m.name.clone())),
        sorted(full.keys().cloned()),
        "Settings in src/wasm/mod.rs and what validate_settings serializes name different keys"
    );
    for m in &members {
        assert_eq!(
            m.optional,
            !always.contains_key(&m.name),
            "Settings.{}: optional in TypeScript exactly when it can be left out",
            m.name
        );
        assert_eq!(m.ty, ts_type(&full[&m.name]), "Settings.{}", m.name);
    }
}

/// The (key, label) rows of the README's settings table, in order.
fn readme_rows() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let section = readme
        .split_once("\n## Settings\n")
        .expect("a \"## Settings\" section in README.md")
        .1;
    let mut lines = section
        .lines()
        .skip_while(|l| !l.starts_with("| key | label |"));
    assert!(lines.next().is_some(), "no settings table in README.md");
    assert!(
        lines.next().is_some_and(|l| l.starts_with("|---")),
        "the settings table has no separator row"
    );
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let mut cells = l[1..].splitn(3, '|').map(str::trim);
            let key = cells.next().unwrap_or_default();
            let label = cells.next().unwrap_or_default();
            let rule = cells.next().unwrap_or_default();
            assert!(
                key.len() > 2 && key.starts_with('`') && key.ends_with('`'),
                "README settings row without a `key`: {l}"
            );
            assert!(
                rule.trim_end_matches('|').trim() != "",
                "README row {key} has no rule"
            );
            (key.trim_matches('`').to_owned(), label.to_owned())
        })
        .collect()
}

#[test]
fn readme_settings_table_matches_fields() {
    let expected: Vec<(String, String)> = FIELDS
        .iter()
        .map(|f| {
            let label = if f.hidden {
                format!("{} (hidden)", f.label)
            } else if f.advanced {
                format!("{} (advanced)", f.label)
            } else {
                f.label.to_owned()
            };
            (f.key.to_owned(), label)
        })
        .collect();
    assert_eq!(
        readme_rows(),
        expected,
        "README.md's settings table: one row per FIELDS entry, in order, labelled as on the \
         page, advanced ones marked \"(advanced)\" and hidden ones \"(hidden)\""
    );
}

/// The codes in the first column of the table that follows `section`'s heading in a document
/// of `docs/`, in order.
fn doc_table_codes(doc: &str, section: &str, header: &str) -> Vec<String> {
    let path = format!("{}/docs/{doc}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let after = text
        .split_once(&format!("\n{section}\n"))
        .unwrap_or_else(|| panic!("a \"{section}\" section in docs/{doc}"))
        .1;
    let mut lines = after.lines().skip_while(|l| !l.starts_with(header));
    assert!(
        lines.next().is_some(),
        "no \"{header}\" table in docs/{doc}"
    );
    assert!(lines.next().is_some_and(|l| l.starts_with("|---")));
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cell = l[1..].split('|').next().unwrap_or_default().trim();
            assert!(
                cell.len() > 2 && cell.starts_with('`') && cell.ends_with('`'),
                "docs/{doc}: a row without a `code`: {l}"
            );
            cell.trim_matches('`').to_owned()
        })
        .collect()
}

#[test]
fn skip_code_table_matches_skip_code() {
    use stella_connect::decision::SkipCode;
    let mut listed = doc_table_codes(
        "architecture.md",
        "## What the core decides",
        "| skip code |",
    );
    let rows = listed.len();
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), rows, "a skip code listed twice");
    let mut codes: Vec<String> = SkipCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    codes.sort();
    assert_eq!(
        listed, codes,
        "docs/architecture.md's skip-code table: one row per SkipCode (src/decision.rs)"
    );
}
