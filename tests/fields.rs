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
    members(&TYPES[start..end])
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

/// The members of a TypeScript object type's body (`name?: type; …`), split at its own `;`
/// only (a nested `{ … }` stays one member's type), comments left out.
fn members(body: &str) -> Vec<Member> {
    let mut body = body.to_owned();
    while let Some(open) = body.find("/*") {
        let close = body[open..].find("*/").expect("an unclosed comment") + open + 2;
        body.replace_range(open..close, " ");
    }
    let (mut parts, mut depth, mut at) = (Vec::new(), 0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => {
                parts.push(body[at..i].to_owned());
                at = i + 1;
            }
            _ => {}
        }
    }
    parts.push(body[at..].to_owned());
    (parts.iter().map(|m| m.trim()))
        .filter(|m| !m.is_empty())
        .map(|m| {
            let (name, ty) = m
                .split_once(':')
                .unwrap_or_else(|| panic!("`{m}` is not `key: type`"));
            let name = name.trim();
            Member {
                name: name.trim_end_matches('?').to_owned(),
                optional: name.ends_with('?'),
                ty: ty.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

/// Holds a TypeScript object type to what serde writes: the same keys, optional exactly when a
/// minimal value leaves the key out, and the same types (nested objects checked alike).
fn same_shape(what: &str, ts: &[Member], full: &Value, minimal: &Value) {
    let full = full
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object"));
    assert_eq!(
        sorted(ts.iter().map(|m| m.name.clone())),
        sorted(full.keys().cloned()),
        "{what}: the TypeScript type and the Rust type name different keys"
    );
    for m in ts {
        let at = format!("{what}.{}", m.name);
        assert_eq!(
            m.optional,
            minimal.get(&m.name).is_none(),
            "{at}: optional exactly when it can be left out"
        );
        match m.ty.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(inner) => same_shape(&at, &members(inner), &full[&m.name], &minimal[&m.name]),
            None => assert_eq!(m.ty, ts_type(&full[&m.name]), "{at}"),
        }
    }
}

#[test]
fn stella_body_type_is_feedback_request() {
    use stella_connect::{stella, FeedbackRequest};
    let request = interface("StellaRequest");
    let body = request
        .iter()
        .find(|m| m.name == "body")
        .expect("StellaRequest.body");
    let body = members(
        body.ty
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap(),
    );
    // Every optional field filled in, then none: what the Rust type writes either way. Built
    // field by field, so a field added to the body does not compile until it is listed here.
    let full = FeedbackRequest {
        channel: "email".into(),
        customer: stella::Customer {
            name: Some("Ann".into()),
            email: "ann@example.com".into(),
        },
        employee: stella::Employee {
            email: "sam@acme.example".into(),
        },
        ext_interaction_id: "c1".into(),
        external_url: Some("https://acme.kustomerapp.com/x".into()),
        tags: vec!["t".into()],
        do_not_send: false,
        brand: Some("b".into()),
        language: Some("en-US".into()),
        custom_properties: serde_json::from_value(json!({"k": "v"})).unwrap(),
    };
    let minimal: FeedbackRequest = serde_json::from_value(json!({
        "channel": "email", "customer": {"email": "ann@example.com"},
        "employee": {"email": "sam@acme.example"}, "ext_interaction_id": "c1", "do_not_send": false,
    }))
    .unwrap();
    let (full, minimal) = (
        serde_json::to_value(full).unwrap(),
        serde_json::to_value(minimal).unwrap(),
    );
    same_shape("StellaRequest.body", &body, &full, &minimal);
}

#[test]
fn edge_bindings_type_is_what_config_reads() {
    use std::cell::RefCell;
    use stella_connect::edge::{seal, Config};
    use stella_connect::wasm::EDGE_TYPES;
    let read = RefCell::new(Vec::new());
    Config::from_bindings(|name| {
        read.borrow_mut().push(name.to_owned());
        None
    })
    .expect("unset bindings take their defaults");
    let mut read = read.into_inner();
    // The settings keys are read beside `Config`, by the sealer.
    read.extend([
        seal::SETTINGS_KEY.to_owned(),
        seal::SETTINGS_KEY_PREVIOUS.to_owned(),
    ]);
    read.sort();
    read.dedup();
    let head = "export interface EdgeBindings {";
    let start = EDGE_TYPES.find(head).expect("EdgeBindings in EDGE_TYPES") + head.len();
    let end = start + EDGE_TYPES[start..].find('}').unwrap();
    let bindings = members(&EDGE_TYPES[start..end]);
    assert_eq!(
        sorted(bindings.iter().map(|m| m.name.clone())),
        sorted(read),
        "EdgeBindings (src/wasm/mod.rs EDGE_TYPES) and the bindings Config::from_bindings and the \
         sealer read differ"
    );
    for b in &bindings {
        assert!(
            b.optional && b.ty == "string | null",
            "EdgeBindings.{}: unset means the default",
            b.name
        );
    }
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
        "docs/architecture.md's skip-code table: one row per SkipCode (src/decision/mod.rs)"
    );
}

/// The page model the settings page reads says what the app definition says: each setting's
/// saved type, and the settings each page command carries.
#[test]
fn page_model_is_the_app_definitions() {
    use stella_connect::manifest::{command_name, definition, DEFAULT_EDGE_URL};
    use stella_connect::page_model::{saved_type, PAGE_COMMANDS};
    let def = definition(DEFAULT_EDGE_URL);
    for f in FIELDS {
        assert_eq!(
            def["settings"]["default"][f.key]["type"],
            saved_type(f.kind),
            "{}: the page saves it as the app definition types it",
            f.key
        );
    }
    for c in PAGE_COMMANDS {
        let command = (def["commands"].as_array().unwrap().iter())
            .find(|x| x["name"] == command_name(c.name))
            .unwrap_or_else(|| panic!("no command {}", c.name));
        let carried = command["appSettings"].as_object().unwrap().keys().cloned();
        assert_eq!(
            sorted(carried),
            sorted(
                FIELDS
                    .iter()
                    .filter(|f| c.carries(f.key))
                    .map(|f| f.key.to_owned())
            ),
            "{}: the settings its body carries are the ones its headers do",
            c.name
        );
    }
}
