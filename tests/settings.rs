//! Table tests for the settings form: every field's rule, all errors at once, secrets masked.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use serde_json::{json, Value};
use stella_connect::settings::{self, check_kustomer_roles, field, FIELDS};
use stella_connect::{validate_settings, FieldErrorCode, ValidationOptions};
use support::settings_with;

const STRICT: ValidationOptions = ValidationOptions {
    allow_loopback: false,
};
const LOCAL: ValidationOptions = ValidationOptions {
    allow_loopback: true,
};

/// The codes of every error for the given raw settings, as (field, code).
fn errors(raw: Value, options: ValidationOptions) -> Vec<(String, &'static str)> {
    match validate_settings(&raw, options) {
        Ok(_) => vec![],
        Err(errs) => errs
            .into_iter()
            .map(|e| (e.field, e.code.as_str()))
            .collect(),
    }
}

fn error_of(field: &str, value: Value) -> Option<&'static str> {
    errors(settings_with(json!({ field: value })), STRICT)
        .into_iter()
        .find(|(f, _)| f == field)
        .map(|(_, c)| c)
}

#[test]
fn the_main_fields_carry_the_labels_admins_see() {
    let five: Vec<(&str, &str)> = FIELDS
        .iter()
        .filter(|f| !f.advanced)
        .map(|f| (f.key, f.label))
        .collect();
    assert_eq!(
        five,
        [
            ("stellaApiKey", "Stella Connect API key"),
            ("stellaApiSecret", "Stella Connect API secret"),
            ("kustomerApiKey", "Kustomer API key"),
            ("kustomerApiUrl", "Kustomer API URL"),
            ("kustomerUrl", "Kustomer URL"),
            ("secondsUntilSend", "Seconds until send"),
        ]
    );
    assert_eq!(field("secondsUntilSend").unwrap().default, Some("86400"));
    assert_eq!(
        field("kustomerApiUrl").unwrap().default,
        Some("https://api.kustomerapp.com")
    );
    assert!(FIELDS.iter().all(|f| !f.help.is_empty()));
}

#[test]
fn valid_settings_are_normalized_with_defaults() {
    let s = validate_settings(&json!({
        "stellaApiKey": " sk ", "kustomerApiKey": "kk", "kustomerUrl": "https://acme.kustomerapp.com/"
    }), STRICT)
    .unwrap();
    assert_eq!(s.stella_api_key.expose(), "sk");
    assert_eq!(s.kustomer_api_url, "https://api.kustomerapp.com");
    assert_eq!(s.kustomer_url, "https://acme.kustomerapp.com");
    assert_eq!(s.seconds_until_send, 86_400);
    assert_eq!(s.stella_api_url, "https://api.stellaconnect.net");
    assert_eq!(s.channel_map.stella_channel("voice"), "phone");
    assert_eq!(s.channel_map.stella_channel("chat"), "chat");
    assert!(s.surveyed_channels.is_empty());
    assert_eq!(s.brand, None);
    assert!(!s.send_language);
}

#[test]
fn every_error_comes_back_at_once() {
    let got = errors(
        json!({"kustomerApiUrl": "http://api.kustomerapp.com", "secondsUntilSend": "soon"}),
        STRICT,
    );
    assert_eq!(
        got,
        [
            ("stellaApiKey".to_owned(), "required"),
            ("kustomerApiKey".to_owned(), "required"),
            ("kustomerApiUrl".to_owned(), "insecure_url"),
            ("kustomerUrl".to_owned(), "required"),
            ("secondsUntilSend".to_owned(), "not_an_integer"),
        ]
    );
    assert_eq!(
        errors(json!("not an object"), STRICT),
        [("".to_owned(), "invalid_type")]
    );
    assert_eq!(
        errors(json!(null), STRICT),
        [("".to_owned(), "invalid_type")]
    );
}

#[test]
fn kustomer_api_url_rules() {
    for ok in [
        "https://api.kustomerapp.com",
        "https://api.kustomerapp.com/",
        "https://API.kustomerapp.com",
        "https://api.prod2.kustomerapp.com",
        "https://api.prod4.kustomerapp.com",
        "https://acme.api.kustomerapp.com",
        "  https://acme-eu.api.kustomerapp.com  ",
    ] {
        assert_eq!(error_of("kustomerApiUrl", json!(ok)), None, "{ok}");
    }
    for (bad, code) in [
        ("http://api.kustomerapp.com", "insecure_url"),
        ("ftp://api.kustomerapp.com", "invalid_url"),
        ("api.kustomerapp.com", "invalid_url"),
        ("https://", "invalid_url"),
        ("https://api.kustomerapp.com/v1", "invalid_url"),
        ("https://api.kustomerapp.com?x=1", "invalid_url"),
        ("https://user:pw@api.kustomerapp.com", "invalid_url"),
        ("https://api.kustomerapp.com:8443", "invalid_url"),
        ("https://api.prodx.kustomerapp.com", "host_not_allowed"),
        ("https://a.b.api.kustomerapp.com", "host_not_allowed"),
        (
            "https://api.kustomerapp.com.evil.example",
            "host_not_allowed",
        ),
        ("https://kustomerapp.com", "host_not_allowed"),
        ("https://127.0.0.1", "host_not_allowed"),
        ("http://127.0.0.1:8787", "insecure_url"),
    ] {
        assert_eq!(error_of("kustomerApiUrl", json!(bad)), Some(code), "{bad}");
    }
    assert_eq!(error_of("kustomerApiUrl", json!(42)), Some("invalid_type"));
}

#[test]
fn kustomer_url_rules() {
    for ok in [
        "https://acme.kustomerapp.com",
        "https://acme.kustomerapp.com/",
        "https://my-org.kustomerapp.com",
    ] {
        assert_eq!(error_of("kustomerUrl", json!(ok)), None, "{ok}");
    }
    for (bad, code) in [
        ("", "required"),
        ("   ", "required"),
        ("http://acme.kustomerapp.com", "insecure_url"),
        ("https://acme.kustomerapp.com/app", "invalid_url"),
        ("https://kustomerapp.com", "host_not_allowed"),
        ("https://api.kustomerapp.com", "host_not_allowed"),
        ("https://a.b.kustomerapp.com", "host_not_allowed"),
        ("https://acme.example.com", "host_not_allowed"),
        ("acme", "invalid_url"),
    ] {
        assert_eq!(error_of("kustomerUrl", json!(bad)), Some(code), "{bad:?}");
    }
}

#[test]
fn stella_api_url_rules() {
    for ok in [
        "https://api.stellaconnect.net",
        "https://acme.api.stellaconnect.net/",
        "https://stellaconnect.net",
    ] {
        assert_eq!(error_of("stellaApiUrl", json!(ok)), None, "{ok}");
    }
    for (bad, code) in [
        ("http://api.stellaconnect.net", "insecure_url"),
        (
            "https://api.stellaconnect.net.evil.example",
            "host_not_allowed",
        ),
        ("https://evilstellaconnect.net", "host_not_allowed"),
        ("https://api.stellaconnect.net/v1/requests", "invalid_url"),
    ] {
        assert_eq!(error_of("stellaApiUrl", json!(bad)), Some(code), "{bad}");
    }
}

#[test]
fn loopback_http_only_with_the_development_flag() {
    let local = json!({
        "kustomerApiUrl": "http://127.0.0.1:8787/sandbox/kustomer/",
        "kustomerUrl": "http://localhost:8787/sandbox/kustomer/",
        "stellaApiUrl": "http://[::1]:8787/sandbox/stella"
    });
    let strict = errors(settings_with(local.clone()), STRICT);
    assert_eq!(strict.len(), 3, "{strict:?}");
    assert!(strict.iter().all(|(_, c)| *c == "insecure_url"));
    let s = validate_settings(&settings_with(local), LOCAL).unwrap();
    assert_eq!(s.kustomer_api_url, "http://127.0.0.1:8787/sandbox/kustomer");
    assert_eq!(s.stella_api_url, "http://[::1]:8787/sandbox/stella");
    // The flag opens loopback only: other http hosts stay refused.
    let other = errors(
        settings_with(json!({"kustomerApiUrl": "http://10.0.0.5:8787"})),
        LOCAL,
    );
    assert_eq!(other, [("kustomerApiUrl".to_owned(), "insecure_url")]);
}

#[test]
fn seconds_until_send_rules() {
    for (value, expected) in [
        (json!("900"), 900),
        (json!(" 900 "), 900),
        (json!(0), 0),
        (json!(900.0), 900),
        (json!("2592000"), 2_592_000),
        (json!(""), 86_400),
        (json!(null), 86_400),
    ] {
        let s =
            validate_settings(&settings_with(json!({"secondsUntilSend": value})), STRICT).unwrap();
        assert_eq!(s.seconds_until_send, expected, "{value}");
    }
    for (value, code) in [
        (json!("1.5"), "not_an_integer"),
        (json!(1.5), "not_an_integer"),
        (json!("1e3"), "not_an_integer"),
        (json!("abc"), "not_an_integer"),
        (json!(true), "not_an_integer"),
        (json!([900]), "not_an_integer"),
        (json!("-"), "not_an_integer"),
        (json!(-1), "out_of_range"),
        (json!("-5"), "out_of_range"),
        (json!(2_592_001), "out_of_range"),
        (json!("99999999999999999999999999"), "out_of_range"),
        (json!(1e30), "out_of_range"),
    ] {
        assert_eq!(
            error_of("secondsUntilSend", value.clone()),
            Some(code),
            "{value}"
        );
    }
}

#[test]
fn keys_are_secrets() {
    assert_eq!(
        error_of("stellaApiKey", json!("abc def")),
        Some("invalid_key")
    );
    assert_eq!(
        error_of("kustomerApiKey", json!("abc\ndef")),
        Some("invalid_key")
    );
    assert_eq!(
        error_of("kustomerApiKey", json!("x".repeat(5000))),
        Some("invalid_key")
    );
    assert_eq!(error_of("stellaApiKey", json!(1234)), Some("invalid_type"));

    let raw = settings_with(
        json!({"stellaApiKey": "SECRET-STELLA-1", "kustomerApiKey": "SECRET-KUST-2"}),
    );
    let s = validate_settings(&raw, STRICT).unwrap();
    let printed = format!("{s:?} {}", serde_json::to_string(&s).unwrap());
    assert!(!printed.contains("SECRET-"), "{printed}");
    assert_eq!(
        serde_json::to_value(&s).unwrap()["stellaApiKey"],
        settings::MASK
    );

    // An invalid key's error never repeats the key.
    let bad = settings_with(json!({"stellaApiKey": "SECRET STELLA"}));
    let errs = validate_settings(&bad, STRICT).unwrap_err();
    assert!(!format!("{errs:?}").contains("SECRET"));
}

#[test]
fn channel_map_and_surveyed_channels() {
    let s = validate_settings(
        &settings_with(json!({"channelMap": "sms=chat, whatsapp = chat\n", "surveyedChannels": "email, phone, Email"})),
        STRICT,
    )
    .unwrap();
    assert_eq!(s.channel_map.stella_channel("sms"), "chat");
    assert_eq!(
        s.channel_map.stella_channel("voice"),
        "phone",
        "default kept"
    );
    assert_eq!(s.surveyed_channels, ["email", "phone"]);

    let s = validate_settings(
        &settings_with(json!({"channelMap": {"voice": "calls"}, "surveyedChannels": ["chat"]})),
        STRICT,
    )
    .unwrap();
    assert_eq!(
        s.channel_map.stella_channel("voice"),
        "calls",
        "the admin's pair wins"
    );
    assert_eq!(s.surveyed_channels, ["chat"]);

    for bad in [
        json!("voice"),
        json!("voice=, a=b"),
        json!("=phone"),
        json!({"voice": 3}),
        json!(7),
    ] {
        assert_eq!(
            error_of("channelMap", bad.clone()),
            Some("invalid_channel_map"),
            "{bad}"
        );
    }
    for bad in [json!([1]), json!({"a": 1}), json!(["x=y"])] {
        assert_eq!(
            error_of("surveyedChannels", bad.clone()),
            Some("invalid_channel_list"),
            "{bad}"
        );
    }
}

#[test]
fn brand_and_language() {
    let s = validate_settings(
        &settings_with(json!({"brand": " Acme ", "sendLanguage": "on"})),
        STRICT,
    )
    .unwrap();
    assert_eq!(s.brand.as_deref(), Some("Acme"));
    assert!(s.send_language);
    assert_eq!(error_of("brand", json!("x".repeat(201))), Some("too_long"));
    assert_eq!(
        error_of("sendLanguage", json!("maybe")),
        Some("not_a_boolean")
    );
    assert_eq!(error_of("sendLanguage", json!(2)), Some("not_a_boolean"));
}

#[test]
fn unknown_fields_are_ignored() {
    assert!(validate_settings(
        &settings_with(json!({"somethingElse": {"deep": [1]}})),
        STRICT
    )
    .is_ok());
}

#[test]
fn kustomer_key_needs_a_tag_read_role() {
    assert!(check_kustomer_roles(&["org.permission.tag.read"]).is_ok());
    assert!(check_kustomer_roles(&["org.user.read", "org.admin.tag.read"]).is_ok());
    let e = check_kustomer_roles(&["org.permission.conversation.read"]).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.code),
        ("kustomerApiKey", FieldErrorCode::MissingPermission)
    );
    assert!(check_kustomer_roles::<&str>(&[]).is_err());
}

#[test]
fn resurvey_after_days_is_a_whole_number_of_days_defaulting_to_never() {
    let ok = |raw: Value| validate_settings(&raw, STRICT).map(|s| s.resurvey_after_days);
    assert_eq!(
        ok(settings_with(json!({}))).unwrap(),
        0,
        "never, unless set"
    );
    assert_eq!(
        ok(settings_with(json!({"resurveyAfterDays": " 30 "}))).unwrap(),
        30
    );
    assert_eq!(
        ok(settings_with(json!({"resurveyAfterDays": 3650}))).unwrap(),
        3650
    );
    assert_eq!(
        error_of("resurveyAfterDays", json!(3651)),
        Some("out_of_range")
    );
    assert_eq!(
        error_of("resurveyAfterDays", json!("-1")),
        Some("out_of_range")
    );
    assert_eq!(
        error_of("resurveyAfterDays", json!("a week")),
        Some("not_an_integer")
    );
}

#[test]
fn the_app_secret_is_a_hidden_setting_the_survey_does_not_read() {
    let field = stella_connect::settings::field("appSecret").expect("declared");
    assert!(field.hidden && field.advanced && !field.required);
    assert!(
        stella_connect::settings::FIELDS
            .iter()
            .filter(|f| f.hidden)
            .count()
            == 1
    );
    // Validation ignores it: the page validates without it, the edge reads it apart.
    assert!(validate_settings(&settings_with(json!({"appSecret": "x y"})), STRICT).is_ok());
}

fn valid(changes: Value) -> settings::Settings {
    validate_settings(&settings_with(changes), STRICT).expect("valid settings")
}

#[test]
fn the_stella_api_secret_is_an_optional_secret_right_after_the_key() {
    let keys: Vec<&str> = FIELDS.iter().map(|f| f.key).collect();
    assert_eq!(
        &keys[..2],
        [settings::STELLA_API_KEY, settings::STELLA_API_SECRET]
    );
    let f = field(settings::STELLA_API_SECRET).unwrap();
    assert_eq!(f.kind, settings::FieldKind::Secret);
    assert!(!f.required && !f.hidden);
    assert!(f.help.contains("Company Info → API"), "{}", f.help);

    // Blank is none, whichever way it is blank.
    for blank in [json!(null), json!(""), json!("   ")] {
        assert_eq!(
            valid(json!({"stellaApiSecret": blank})).stella_api_secret,
            None
        );
    }
    assert_eq!(valid(json!({})).stella_api_secret, None);
    let s = valid(json!({"stellaApiSecret": " SECRET-API-3 "}));
    assert_eq!(
        s.stella_api_secret.as_ref().map(settings::Secret::expose),
        Some("SECRET-API-3")
    );
    assert_eq!(s.stella_secrets(), ["stella-test-key-0123", "SECRET-API-3"]);
    // Masked wherever the settings are printed or serialized.
    let printed = format!("{s:?} {}", serde_json::to_string(&s).unwrap());
    assert!(!printed.contains("SECRET-API"), "{printed}");
    assert_eq!(
        serde_json::to_value(&s).unwrap()["stellaApiSecret"],
        settings::MASK
    );
    assert!(serde_json::to_value(valid(json!({})))
        .unwrap()
        .get("stellaApiSecret")
        .is_none());
    // The keys' rules, and an error that never repeats it.
    assert_eq!(
        error_of("stellaApiSecret", json!("SECRET API")),
        Some("invalid_key")
    );
    assert_eq!(
        error_of("stellaApiSecret", json!("a\u{7}b")),
        Some("invalid_key")
    );
    assert_eq!(error_of("stellaApiSecret", json!("x".repeat(4096))), None);
    assert_eq!(
        error_of("stellaApiSecret", json!("x".repeat(4097))),
        Some("invalid_key")
    );
    assert_eq!(error_of("stellaApiSecret", json!(42)), Some("invalid_type"));
    let errs = validate_settings(
        &settings_with(json!({"stellaApiSecret": "SECRET API"})),
        STRICT,
    )
    .unwrap_err();
    assert!(!format!("{errs:?}").contains("SECRET"));
}

#[test]
fn brand_map_pairs_kustomer_brands_with_agent_connect_brands() {
    let s = valid(json!({"brandMap": " Acme Shoes = shoes ; Acme Hats=hats\nacme shoes=other"}));
    assert_eq!(
        s.brand_map.get("ACME SHOES"),
        Some("shoes"),
        "any case, first pair wins"
    );
    assert_eq!(s.brand_map.get("Acme Hats"), Some("hats"));
    assert_eq!(s.brand_map.get("Acme"), None);
    assert_eq!(
        serde_json::to_value(&s).unwrap()["brandMap"],
        json!({"Acme Shoes": "shoes", "Acme Hats": "hats"})
    );
    let from_object = valid(json!({"brandMap": {"Acme Shoes": " shoes "}}));
    assert_eq!(from_object.brand_map.get("acme shoes"), Some("shoes"));
    for blank in [json!(""), json!(null), json!(" , ")] {
        assert!(
            valid(json!({"brandMap": blank})).brand_map.is_empty(),
            "{blank}"
        );
    }
    for bad in [
        json!("Acme"),
        json!("=shoes"),
        json!("Acme="),
        json!("a=b=c"),
        json!({"Acme": 3}),
        json!(["Acme=shoes"]),
        json!(format!("Acme={}", "x".repeat(201))),
    ] {
        assert_eq!(
            error_of("brandMap", bad.clone()),
            Some("invalid_pairs"),
            "{bad}"
        );
    }
    assert_eq!(
        error_of("brandMap", json!(format!("Acme={}", "x".repeat(200)))),
        None
    );
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("b{i}=s{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(error_of("brandMap", json!(many(100))), None);
    assert_eq!(error_of("brandMap", json!(many(101))), Some("too_many"));
}

#[test]
fn language_map_keys_are_language_tags() {
    let s = valid(json!({"languageMap": "en_us=English (US), fr=French, EN-gb=British"}));
    assert_eq!(
        serde_json::to_value(&s).unwrap()["languageMap"],
        json!({"en-US": "English (US)", "fr": "French", "en-GB": "British"}),
        "kept as the tags conversations' languages are sent in"
    );
    assert!(valid(json!({"languageMap": ""})).language_map.is_empty());
    for bad in [
        json!("US=English"),
        json!("english=English"),
        json!("en"),
        json!("en="),
        json!({"en": true}),
    ] {
        assert_eq!(
            error_of("languageMap", bad.clone()),
            Some("invalid_pairs"),
            "{bad}"
        );
    }
    let many = |n: usize| {
        (0..n)
            .map(|i| {
                format!(
                    "en-{}{}=x",
                    (b'A' + (i / 26) as u8) as char,
                    (b'A' + (i % 26) as u8) as char
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(error_of("languageMap", json!(many(100))), None);
    assert_eq!(error_of("languageMap", json!(many(101))), Some("too_many"));
}

#[test]
fn custom_properties_name_conversation_or_customer_attributes() {
    let s = valid(json!({"customProperties":
        "conversation.priority=priority, conversation.custom.orderIdStr=order, customer.custom.tierStr=tier, customer.locale=locale"}));
    let got: Vec<(settings::Source, bool, &str, &str)> = s
        .custom_properties
        .iter()
        .map(|p| {
            (
                p.source,
                p.custom,
                p.attribute.as_str(),
                p.property.as_str(),
            )
        })
        .collect();
    use settings::Source::{Conversation, Customer};
    assert_eq!(
        got,
        [
            (Conversation, false, "priority", "priority"),
            (Conversation, true, "orderIdStr", "order"),
            (Customer, true, "tierStr", "tier"),
            (Customer, false, "locale", "locale"),
        ]
    );
    assert_eq!(
        serde_json::to_value(&s).unwrap()["customProperties"]["conversation.custom.orderIdStr"],
        "order"
    );
    assert_eq!(
        valid(json!({"customProperties": " "}))
            .custom_properties
            .iter()
            .count(),
        0
    );
    let code = |v: Value| error_of("customProperties", v);
    for bad in [
        "priority=priority",
        "ticket.priority=priority",
        "conversation.=x",
        "conversation.custom.=x",
        "conversation.a.b=x",
        "conversation.custom.a b=x",
        "conversation.priority",
        "conversation.priority=",
        "conversation.priority=kustomer_org",
        "conversation.priority=Kustomer_Priority",
        "conversation.priority=p, customer.custom.tierStr=p",
    ] {
        assert_eq!(code(json!(bad)), Some("invalid_custom_property"), "{bad}");
    }
    let long = |n: usize| json!(format!("conversation.priority={}", "p".repeat(n)));
    assert_eq!(code(long(100)), None);
    assert_eq!(code(long(101)), Some("invalid_custom_property"));
    let many = |n: usize| {
        json!((0..n)
            .map(|i| format!("conversation.a{i}=p{i}"))
            .collect::<Vec<_>>()
            .join(","))
    };
    assert_eq!(code(many(20)), None);
    assert_eq!(code(many(21)), Some("too_many"));
    // The error says what to write, naming the reserved names.
    let e = validate_settings(
        &settings_with(json!({"customProperties": "conversation.priority=kustomer_org"})),
        STRICT,
    )
    .unwrap_err();
    assert!(
        e[0].message.contains("kustomer_conversation_id"),
        "{}",
        e[0].message
    );
}
