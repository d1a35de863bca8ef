//! Semantic versions: registration requires each version to be higher than the last.

use std::cmp::Ordering;

/// A parsed semantic version: the three numbers and the pre-release identifiers (build
/// metadata is dropped: it has no part in precedence).
struct Version<'a> {
    core: [u64; 3],
    pre: Vec<&'a str>,
}

/// A number without leading zeros.
fn numeric(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

fn identifiers(s: &str) -> Option<Vec<&str>> {
    let ids: Vec<&str> = s.split('.').collect();
    ids.iter()
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then_some(ids)
}

/// `MAJOR.MINOR.PATCH[-pre][+build]` as semver.org defines it.
fn parse_version(s: &str) -> Option<Version<'_>> {
    let (rest, build) = s.split_once('+').map_or((s, None), |(r, b)| (r, Some(b)));
    if let Some(build) = build {
        identifiers(build)?;
    }
    let (core, pre) = rest
        .split_once('-')
        .map_or((rest, None), |(c, p)| (c, Some(p)));
    let pre = match pre {
        None => Vec::new(),
        Some(p) => {
            let ids = identifiers(p)?;
            // A numeric identifier has no leading zeros.
            if ids
                .iter()
                .any(|id| id.bytes().all(|b| b.is_ascii_digit()) && numeric(id).is_none())
            {
                return None;
            }
            ids
        }
    };
    let mut numbers = core.split('.').map(numeric);
    let core = [numbers.next()??, numbers.next()??, numbers.next()??];
    numbers.next().is_none().then_some(Version { core, pre })
}

/// Whether `s` is a semantic version.
pub(super) fn is_version(s: &str) -> bool {
    parse_version(s).is_some()
}

/// Semver precedence of two versions (build metadata ignored), or `None` if either is not a
/// semantic version: registration requires each version to be higher than the last.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse_version(a)?, parse_version(b)?);
    let pre = match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let ordered = a
                .pre
                .iter()
                .zip(&b.pre)
                .map(|(x, y)| match (numeric(x), numeric(y)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => x.cmp(y),
                });
            ordered
                .chain([a.pre.len().cmp(&b.pre.len())])
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        }
    };
    Some(a.core.cmp(&b.core).then(pre))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_semver() {
        for ok in [
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x-y.7z+build.01",
            "1.0.0+20130313",
        ] {
            assert!(parse_version(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-a..b",
            "v1.0.0",
            "1.0.0 ",
            "-1.0.0",
            "99999999999999999999.0.0",
        ] {
            assert!(parse_version(bad).is_none(), "{bad}");
        }
    }
}
