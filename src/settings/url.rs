//! The URL fields: https addresses on the hosts each one allows (its [`UrlRule`]), with
//! `http://` on loopback only for the local sandboxes.

use super::keys::{DEFAULT_KUSTOMER_API_URL, DEFAULT_STELLA_API_URL, KUSTOMER_API_URL};
use super::rule::{label, string};
use super::ValidationOptions;
use crate::error::{FieldError, FieldErrorCode as Code};
use serde_json::Value;
use url::{Host, Url};

/// A URL field's rule: the hosts it accepts outside local development, and the example its
/// error messages give.
#[derive(Debug, Clone, Copy)]
pub struct UrlRule {
    /// An address it accepts, shown in its error messages.
    pub example: &'static str,
    /// Whether it accepts a host.
    pub host: fn(&str) -> bool,
}

/// The Kustomer API: the US host, a numbered region (`api.prod2`), or the org's own host.
pub const KUSTOMER_API: UrlRule = UrlRule {
    example: DEFAULT_KUSTOMER_API_URL,
    host: kustomer_api_host,
};
/// The org's Kustomer address, `<org>.kustomerapp.com`.
pub const KUSTOMER_ORG: UrlRule = UrlRule {
    example: "https://acme.kustomerapp.com",
    host: kustomer_org_host,
};
/// The Stella API: `stellaconnect.net` or a host under it.
pub const STELLA_API: UrlRule = UrlRule {
    example: DEFAULT_STELLA_API_URL,
    host: stella_api_host,
};

/// One DNS label: letters, digits and inner hyphens, at most 63 characters.
fn dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// The Kustomer API hosts.
pub fn kustomer_api_host(host: &str) -> bool {
    host == "api.kustomerapp.com"
        || host
            .strip_prefix("api.prod")
            .and_then(|r| r.strip_suffix(".kustomerapp.com"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        || host
            .strip_suffix(".api.kustomerapp.com")
            .is_some_and(dns_label)
}

/// An org's Kustomer host (not the API's).
pub fn kustomer_org_host(host: &str) -> bool {
    host.strip_suffix(".kustomerapp.com")
        .is_some_and(|org| dns_label(org) && org != "api")
}

/// The Stella API hosts.
pub fn stella_api_host(host: &str) -> bool {
    host == "stellaconnect.net"
        || host
            .strip_suffix(".stellaconnect.net")
            .is_some_and(|sub| sub.split('.').all(dns_label))
}

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`): the one check of
/// it, for validation and for the app-manifest tool.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a URL field into a base URL without a trailing slash.
pub(super) fn url_field(
    key: &'static str,
    rule: &UrlRule,
    v: Value,
    options: ValidationOptions,
) -> Result<String, FieldError> {
    let s = string(key, v)?;
    let err = |code, msg: String| FieldError::new(key, code, msg);
    let url = Url::parse(&s).map_err(|_| {
        err(
            Code::InvalidUrl,
            format!(
                "{} must be a full address, such as {}.",
                label(key),
                rule.example
            ),
        )
    })?;
    let local = options.allow_loopback && is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        "http" => {
            return Err(err(
                Code::InsecureUrl,
                format!(
                    "{} must start with https://, such as {}.",
                    label(key),
                    rule.example
                ),
            ));
        }
        _ => {
            return Err(err(
                Code::InvalidUrl,
                format!(
                    "{} must start with https://, such as {}.",
                    label(key),
                    rule.example
                ),
            ))
        }
    }
    // Local sandbox URLs may carry a port and a path; production ones are just the address.
    let extra = !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || (!local && (url.port().is_some() || url.path() != "/"));
    if extra {
        return Err(err(
            Code::InvalidUrl,
            format!(
                "{} must be just the address, such as {}, with nothing after it.",
                label(key),
                rule.example
            ),
        ));
    }
    if !local {
        let host = url.host_str().unwrap_or_default();
        if !(rule.host)(host) {
            return Err(err(
                Code::HostNotAllowed,
                format!(
                    "{} must be an address such as {}; {host} is not one.",
                    label(key),
                    rule.example
                ),
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Checks a Kustomer API URL on its own, for calls that carry only a key and a URL.
pub fn kustomer_api_url(value: &str, options: ValidationOptions) -> Result<String, FieldError> {
    url_field(
        KUSTOMER_API_URL,
        &KUSTOMER_API,
        Value::String(value.to_owned()),
        options,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_url_rule_names_its_hosts() {
        let table: [(&UrlRule, &str, bool); 16] = [
            (&KUSTOMER_API, "api.kustomerapp.com", true),
            (&KUSTOMER_API, "api.prod2.kustomerapp.com", true),
            (&KUSTOMER_API, "acme.api.kustomerapp.com", true),
            (&KUSTOMER_API, "api.prod.kustomerapp.com", false),
            (&KUSTOMER_API, "api.prodx.kustomerapp.com", false),
            (&KUSTOMER_API, "-acme.api.kustomerapp.com", false),
            (&KUSTOMER_API, "acme.kustomerapp.com", false),
            (&KUSTOMER_ORG, "acme.kustomerapp.com", true),
            (&KUSTOMER_ORG, "api.kustomerapp.com", false),
            (&KUSTOMER_ORG, "a.b.kustomerapp.com", false),
            (&KUSTOMER_ORG, "kustomerapp.com", false),
            (&STELLA_API, "stellaconnect.net", true),
            (&STELLA_API, "api.stellaconnect.net", true),
            (&STELLA_API, "eu.api.stellaconnect.net", true),
            (&STELLA_API, "api..stellaconnect.net", false),
            (&STELLA_API, "stellaconnect.net.evil.example", false),
        ];
        for (rule, host, ok) in table {
            assert_eq!((rule.host)(host), ok, "{host} for {}", rule.example);
        }
        // Each rule's example passes its own rule.
        for rule in [KUSTOMER_API, KUSTOMER_ORG, STELLA_API] {
            let url = Url::parse(rule.example).expect("an example is a URL");
            assert!((rule.host)(url.host_str().unwrap_or_default()));
        }
    }

    #[test]
    fn loopback_is_this_machine_only() {
        for (url, local) in [
            ("http://localhost:8787", true),
            ("http://127.0.0.1", true),
            ("http://127.9.9.9/x", true),
            ("http://[::1]:1", true),
            ("http://localhost.example", false),
            ("http://10.0.0.1", false),
            ("https://acme.kustomerapp.com", false),
            ("file:///tmp/x", false),
        ] {
            let parsed = Url::parse(url).expect("a URL");
            assert_eq!(is_loopback(&parsed), local, "{url}");
        }
    }
}
