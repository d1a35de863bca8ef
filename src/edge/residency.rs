//! Where an org's Durable Object lives: Kustomer's EU orgs get theirs in Cloudflare's EU
//! jurisdiction, so their surveys, settings and delivery log are stored and worked on in the EU.
//!
//! The region is read from the Kustomer API URL the org's settings name, which the gateway has
//! checked with Kustomer (an EU key is refused by the US API, and the other way round): it is
//! Kustomer's data that decides, never a claim in a body. The one-host form
//! `https://<org>.api.kustomerapp.com` routes to the org's region inside Kustomer and does not
//! say which it is, so such an org is not pinned: the settings page says so and names the EU
//! address to use instead.

use serde::Serialize;

/// A Cloudflare Durable Object jurisdiction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Jurisdiction {
    /// The European Union.
    Eu,
}

impl Jurisdiction {
    /// The name `DurableObjectNamespace.jurisdiction()` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eu => "eu",
        }
    }
}

/// Kustomer's region for an API URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// `https://api.kustomerapp.com`.
    Us,
    /// `https://api.prod2.kustomerapp.com`.
    Eu,
    /// `https://api.prod4.kustomerapp.com`.
    India,
    /// `https://<org>.api.kustomerapp.com`, another `api.prodN`, or a local sandbox.
    Unknown,
}

/// An org's Durable Object: its name and the jurisdiction it is created in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The org's id, the object's name.
    pub org: String,
    /// `None`: wherever Cloudflare places it.
    pub jurisdiction: Option<Jurisdiction>,
}

/// The region of a (validated) Kustomer API URL.
pub fn region(api_url: &str) -> Region {
    let rest = api_url
        .strip_prefix("https://")
        .or_else(|| api_url.strip_prefix("http://"))
        .unwrap_or(api_url);
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
    match host.to_ascii_lowercase().trim_end_matches('.') {
        "api.kustomerapp.com" => Region::Us,
        "api.prod2.kustomerapp.com" => Region::Eu,
        "api.prod4.kustomerapp.com" => Region::India,
        _ => Region::Unknown,
    }
}

/// The jurisdiction an org's object belongs in: the EU's for Kustomer's EU region, none for
/// any other (Cloudflare has no jurisdiction for the US or India: an object is created near
/// where it is first used, which is near Kustomer's servers that call the edge).
pub fn jurisdiction(region: Region) -> Option<Jurisdiction> {
    match region {
        Region::Eu => Some(Jurisdiction::Eu),
        Region::Us | Region::India | Region::Unknown => None,
    }
}

/// The org's object. `pin` is off only where the runtime cannot place objects in a
/// jurisdiction (local workerd: "Jurisdiction restrictions are not implemented in workerd"),
/// so that the same choice is made and reported, and only the placement is skipped.
pub fn place(org: &str, api_url: &str, pin: bool) -> Place {
    Place {
        org: org.to_owned(),
        jurisdiction: jurisdiction(region(api_url)).filter(|_| pin),
    }
}

/// What Check connection tells the admin about where the org's surveys are kept.
pub fn report(api_url: &str, pin: bool) -> serde_json::Value {
    let region = region(api_url);
    let wanted = jurisdiction(region);
    let message = match (region, wanted, pin) {
        (_, Some(_), true) => "Kept in the EU: this org's surveys, settings and delivery log are stored and worked on in Cloudflare's EU jurisdiction.",
        (_, Some(_), false) => "An EU org, but this runtime cannot place data in a jurisdiction (local workerd): production keeps it in the EU.",
        (Region::Unknown, None, _) => "Kept where Cloudflare places it. For an EU org, set Kustomer API URL to https://api.prod2.kustomerapp.com to keep its data in the EU: https://<org>.api.kustomerapp.com does not say which region the org is in.",
        (_, None, _) => "Kept where Cloudflare places it, near Kustomer's servers in the org's region.",
    };
    serde_json::json!({
        "region": region,
        "jurisdiction": wanted.filter(|_| pin),
        "message": message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eu_api_is_pinned_to_the_eu_and_nothing_else_is() {
        let eu = place("org-1", "https://api.prod2.kustomerapp.com", true);
        assert_eq!(eu.jurisdiction, Some(Jurisdiction::Eu));
        assert_eq!(eu.org, "org-1");
        for url in [
            "https://api.kustomerapp.com",
            "https://api.prod4.kustomerapp.com",
            "https://acme.api.kustomerapp.com",
            "https://api.prod3.kustomerapp.com",
            "http://127.0.0.1:8787/sandbox/kustomer",
        ] {
            assert_eq!(place("org-1", url, true).jurisdiction, None, "{url}");
        }
    }

    #[test]
    fn the_region_reads_only_the_host() {
        assert_eq!(region("https://api.prod2.kustomerapp.com/"), Region::Eu);
        assert_eq!(region("https://API.PROD2.kustomerapp.com"), Region::Eu);
        assert_eq!(region("https://api.prod2.kustomerapp.com:443"), Region::Eu);
        // A look-alike host (a subdomain of an attacker's domain) is not the EU API.
        assert_eq!(
            region("https://api.prod2.kustomerapp.com.evil.example"),
            Region::Unknown
        );
        assert_eq!(
            region("https://evil.example/api.prod2.kustomerapp.com"),
            Region::Unknown
        );
        assert_eq!(region(""), Region::Unknown);
    }

    #[test]
    fn where_jurisdictions_are_not_available_the_choice_is_reported_not_applied() {
        assert_eq!(
            place("o", "https://api.prod2.kustomerapp.com", false).jurisdiction,
            None
        );
        let report = report("https://api.prod2.kustomerapp.com", false);
        assert_eq!(report["region"], "eu");
        assert!(report["jurisdiction"].is_null());
        assert!(report["message"]
            .as_str()
            .unwrap()
            .contains("local workerd"));
        let pinned = super::report("https://api.prod2.kustomerapp.com", true);
        assert_eq!(pinned["jurisdiction"], "eu");
    }

    #[test]
    fn an_org_url_says_how_to_pin_an_eu_org() {
        let report = report("https://acme.api.kustomerapp.com", true);
        assert_eq!(report["region"], "unknown");
        assert!(report["message"]
            .as_str()
            .unwrap()
            .contains("https://api.prod2.kustomerapp.com"));
    }
}
