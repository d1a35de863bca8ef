//! The app definition: the checked-in file is the generated one, it passes the platform's
//! rules, it carries the settings table, and each rule of the check can fail.
#![cfg(not(target_arch = "wasm32"))]

use serde_json::{json, Value};
use std::cmp::Ordering;
use std::process::Command;
use stella_connect::manifest::{check, compare_versions, definition, render, DEFAULT_EDGE_URL};
use stella_connect::settings::{
    FieldKind, FIELDS, KUSTOMER_API_KEY, SECONDS_UNTIL_SEND, STELLA_API_KEY,
};

const CHECKED_IN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/app-manifest/stella_connect.json"
);
const BIN: &str = env!("CARGO_BIN_EXE_app-manifest");

fn generated() -> Value {
    definition(DEFAULT_EDGE_URL)
}

/// `(rule, path)` of every violation.
fn rules(def: &Value) -> Vec<(&'static str, String)> {
    check(def).into_iter().map(|v| (v.rule, v.path)).collect()
}

#[test]
fn the_checked_in_file_is_the_generated_one() {
    let file = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        file == render(&generated()),
        "app-manifest/stella_connect.json is stale: run `make manifest`"
    );
}

#[test]
fn the_generated_definition_passes_the_check() {
    let def = generated();
    assert_eq!(check(&def), vec![]);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(def["version"], version);
    assert!(
        def["changelog"][version].is_string(),
        "add the notes of {version} to CHANGELOG in src/manifest/definition.rs"
    );
    // And with another edge, as `EDGE_URL` builds it.
    let local = definition("http://127.0.0.1:8787/");
    assert_eq!(check(&local), vec![]);
    assert_eq!(local["iconUrl"], "http://127.0.0.1:8787/app/icon.svg");
}

#[test]
fn every_setting_comes_from_the_settings_table() {
    let def = generated();
    let labels = &def["i18n"]["en_us"];
    for f in FIELDS {
        let setting = &def["settings"]["default"][f.key];
        assert_eq!(setting["required"], f.required, "{}", f.key);
        let path = format!("stella_connect.settings.path.default.{}", f.key);
        assert_eq!(labels[format!("{path}.displayName")], f.label);
        assert_eq!(labels[format!("{path}.description")], f.help);
        let default = match f.kind {
            FieldKind::Integer | FieldKind::Boolean => setting["defaultValue"].to_string(),
            _ => setting["defaultValue"].as_str().unwrap_or("?").to_owned(),
        };
        assert_eq!(default, f.default.unwrap_or_default(), "{}", f.key);
        let alias = &def["actions"][0]["appSettings"][f.key]["key"];
        assert_eq!(alias, &json!(format!("stella_connect.default.{}", f.key)));
    }
    for key in [STELLA_API_KEY, KUSTOMER_API_KEY] {
        assert_eq!(def["settings"]["default"][key]["type"], "secret");
        assert_eq!(def["settings"]["default"][key]["defaultValue"], "");
    }
    assert_eq!(
        def["settings"]["default"][SECONDS_UNTIL_SEND],
        json!({"type": "number", "defaultValue": 86400, "required": true})
    );
}

#[test]
fn the_action_sends_each_setting_as_the_edge_reads_it() {
    let def = generated();
    let template = &def["actions"][0]["inputTemplate"];
    assert_eq!(
        template["uri"],
        format!("{DEFAULT_EDGE_URL}/v1/kustomer/conversation-closed")
    );
    assert_eq!(
        template["headers"]["x-stella-api-key"],
        "{{{stellaApiKey}}}"
    );
    assert_eq!(
        template["headers"]["x-seconds-until-send"],
        "{{{secondsUntilSend}}}"
    );
    assert_eq!(
        template["headers"].as_object().map(|h| h.len()),
        Some(FIELDS.len() + 1)
    );
    let step = &def["workflows"][0]["steps"][0];
    assert_eq!(step["action"], def["actions"][0]["name"]);
    assert_eq!(step["appVersion"], "stella_connect-^0");
    assert_eq!(
        def["kviews"][0]["template"],
        format!("<DynamicCard src=\"{DEFAULT_EDGE_URL}/app/card.html\" context={{context}} fillToWidth noPadding />")
    );
}

#[test]
fn the_check_catches_each_rule() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str, &str); 20] = [
        (
            "no title",
            |d| {
                d.as_object_mut().map(|o| o.remove("title"));
            },
            "missing_required_key",
            "title",
        ),
        (
            "unknown key",
            |d| d["foo"] = json!(1),
            "unknown_top_level_key",
            "foo",
        ),
        (
            "version 1.0",
            |d| d["version"] = json!("1.0"),
            "invalid_semver",
            "version",
        ),
        (
            "version 01.0.0",
            |d| d["version"] = json!("01.0.0"),
            "invalid_semver",
            "version",
        ),
        (
            "version 1.0.0-",
            |d| d["version"] = json!("1.0.0-"),
            "invalid_semver",
            "version",
        ),
        (
            "type password",
            |d| d["settings"]["default"]["brand"]["type"] = json!("password"),
            "invalid_setting_type",
            "settings.default.brand.type",
        ),
        (
            "number as text",
            |d| d["settings"]["default"]["secondsUntilSend"]["defaultValue"] = json!("86400"),
            "invalid_setting_default",
            "settings.default.secondsUntilSend.defaultValue",
        ),
        (
            "no default",
            |d| {
                d["settings"]["default"]["brand"]
                    .as_object_mut()
                    .map(|o| o.remove("defaultValue"));
            },
            "missing_setting_default",
            "settings.default.brand.defaultValue",
        ),
        (
            "no label",
            |d| {
                d["i18n"]["en_us"]
                    .as_object_mut()
                    .map(|o| o.remove("stella_connect.settings.path.default.brand.displayName"));
            },
            "missing_label",
            "i18n.en_us.stella_connect.settings.path.default.brand.displayName",
        ),
        (
            "attribute without suffix",
            |d| {
                d["klasses"][0]["metadata"]["properties"] =
                    json!({"doNotSend": {"displayName": "x"}});
            },
            "invalid_attribute_suffix",
            "klasses[0].metadata.properties.doNotSend",
        ),
        (
            "kview outside the namespace",
            |d| d["kviews"][0]["name"] = json!("survey-card"),
            "invalid_component_name",
            "kviews[0].name",
        ),
        (
            "undeclared action",
            |d| {
                d["workflows"][0]["steps"][0]["action"] = json!("kustomer.app.stella_connect.nope");
            },
            "unknown_action",
            "workflows[0].steps[0].action",
        ),
        (
            "command outside the namespace",
            |d| d["commands"][0]["name"] = json!("check-connection"),
            "invalid_command_name",
            "commands[0].name",
        ),
        (
            "command named twice",
            |d| d["commands"][1]["name"] = d["commands"][0]["name"].clone(),
            "invalid_command_name",
            "commands[1].name",
        ),
        (
            "command of another type",
            |d| d["commands"][0]["type"] = json!("internal-api"),
            "invalid_command_type",
            "commands[0].type",
        ),
        (
            "upper-case method",
            |d| d["commands"][0]["httpMethod"] = json!("POST"),
            "invalid_http_method",
            "commands[0].httpMethod",
        ),
        (
            "header naming an argument",
            |d| d["commands"][2]["defaultHeaders"]["x-state"] = json!("{{{state}}}"),
            "unknown_template_name",
            "commands[2].defaultHeaders.x-state",
        ),
        (
            "a secret in a URL",
            |d| {
                d["commands"][2]["url"] =
                    json!("https://edge.example/v1/deliveries?k={{{kustomerApiKey}}}");
            },
            "secret_in_url",
            "commands[2].url",
        ),
        (
            "an argument named like a setting",
            |d| {
                if let Some(a) = d["commands"][2]["permittedArgs"].as_array_mut() {
                    a.push(json!("kustomerApiUrl"));
                }
            },
            "argument_shadows_setting",
            "commands[2].permittedArgs",
        ),
        (
            "URL naming an undeclared argument",
            |d| d["commands"][2]["permittedArgs"] = json!(["state"]),
            "unknown_template_name",
            "commands[2].url",
        ),
    ];
    for (what, edit, rule, path) in cases {
        let mut def = generated();
        edit(&mut def);
        let mut found = rules(&def);
        found.dedup();
        assert_eq!(found, vec![(rule, path.to_owned())], "{what}");
    }
    // A bad app name also leaves every namespaced name and label unmatched; it comes first.
    let mut def = generated();
    def["app"] = json!("Stella-Connect");
    assert_eq!(rules(&def)[0], ("invalid_app_name", "app".to_owned()));
}

#[test]
fn the_check_finds_references_to_undeclared_settings_and_takes_any_json() {
    let mut def = generated();
    def["actions"][0]["appSettings"]["stellaApiKey"]["key"] = json!("stella_connect.default.nope");
    assert_eq!(
        rules(&def),
        vec![(
            "unknown_setting",
            "actions[0].appSettings.stellaApiKey.key".to_owned()
        )]
    );
    // Kustomer's own actions need no declaration.
    let mut def = generated();
    def["workflows"][0]["steps"][0]["action"] = json!("kustomer.conversation.update");
    assert_eq!(rules(&def), vec![]);
    // Wrong shapes are reported, never a panic.
    for odd in [
        json!(null),
        json!([]),
        json!("x"),
        json!({"app": 1, "settings": [], "kviews": {}, "version": 2}),
    ] {
        assert!(!check(&odd).is_empty(), "{odd}");
    }
}

#[test]
fn versions_compare_by_semver_precedence() {
    use Ordering::*;
    let cases = [
        ("1.0.0", "1.0.1", Some(Less)),
        ("1.0.1", "1.1.0", Some(Less)),
        ("1.1.0", "2.0.0", Some(Less)),
        ("2.0.0", "1.9.9", Some(Greater)),
        ("1.0.0-alpha", "1.0.0", Some(Less)),
        ("1.0.0-alpha", "1.0.0-alpha.1", Some(Less)),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", Some(Less)),
        ("1.0.0-beta.2", "1.0.0-beta.11", Some(Less)),
        ("1.0.0-rc.1", "1.0.0-beta.11", Some(Greater)),
        ("1.0.0+build.1", "1.0.0+build.2", Some(Equal)),
        ("1.0.0", "1.0.0", Some(Equal)),
        ("1.0", "1.0.0", None),
        ("1.0.0", "01.0.0", None),
        ("x", "1.0.0", None),
    ];
    for (a, b, want) in cases {
        assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
    }
}

#[test]
fn the_binary_checks_files_and_refuses_bad_edge_urls() {
    let file = std::env::temp_dir().join(format!("app-manifest-test-{}.json", std::process::id()));
    let mut def = generated();
    def["foo"] = json!(true);
    std::fs::write(&file, render(&def)).unwrap();
    let out = Command::new(BIN).arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("unknown_top_level_key at foo: "),
        "{stdout}"
    );

    std::fs::write(&file, "{not json").unwrap();
    let out = Command::new(BIN).arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let _ = std::fs::remove_file(&file);

    let out = Command::new(BIN)
        .arg("check")
        .arg(CHECKED_IN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("ok: stella_connect {}\n", env!("CARGO_PKG_VERSION"))
    );

    for bad in ["ftp://x", "http://example.com", "not a url"] {
        let out = Command::new(BIN)
            .args(["print", "--edge-url", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty(), "{bad}");
    }
    let out = Command::new(BIN)
        .arg("print")
        .env("EDGE_URL", "http://localhost:8787")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, definition("http://localhost:8787"));
}

#[test]
fn the_commands_carry_the_settings_kustomer_fills_in() {
    let def = generated();
    let commands = def["commands"].as_array().cloned().unwrap_or_default();
    let named = |n: &str| {
        commands
            .iter()
            .find(|c| c["name"] == format!("stella_connect.app.{n}"))
            .cloned()
            .unwrap_or_default()
    };
    // Check connection carries every setting the close action does (the app secret too: it
    // checks the app's link end to end); the preview the same but the app secret and the
    // Stella API secret, which it does not read; user input goes in the body.
    let action_headers = def["actions"][0]["inputTemplate"]["headers"].clone();
    assert!(action_headers.get("x-stella-api-secret").is_some());
    assert!(action_headers.get("x-app-secret").is_some());
    let mut preview_headers = action_headers.clone();
    preview_headers.as_object_mut().map(|h| {
        h.remove("x-stella-api-secret");
        h.remove("x-app-secret")
    });
    for (n, headers) in [
        ("check-connection", &action_headers),
        ("preview", &preview_headers),
    ] {
        let c = named(n);
        assert_eq!(c["httpMethod"], "post", "{n}");
        assert_eq!(
            c["permittedArgs"],
            json!([]),
            "{n}: user input goes in the body"
        );
        assert_eq!(&c["defaultHeaders"], headers, "{n}");
    }
    // Resends carry every setting, as the close action does.
    for n in ["resend", "resend-many"] {
        assert_eq!(
            named(n)["defaultHeaders"],
            def["actions"][0]["inputTemplate"]["headers"],
            "{n}"
        );
    }
    // The log sees only the org's key, address and app secret: never the Stella key.
    let org_headers = |c: &Value| {
        let mut names: Vec<String> = c["defaultHeaders"]
            .as_object()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        names.sort_unstable();
        names
    };
    assert_eq!(
        org_headers(&named("list-deliveries")),
        [
            "content-type",
            "x-app-secret",
            "x-kustomer-api-key",
            "x-kustomer-api-url"
        ],
    );
    let list = named("list-deliveries");
    assert!(list["url"]
        .as_str()
        .unwrap_or_default()
        .starts_with(&format!(
            "{DEFAULT_EDGE_URL}/v1/deliveries?state={{{{{{state}}}}}}&"
        )));
}
