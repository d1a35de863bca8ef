//! Kustomer timestamps (RFC 3339) in and out. The core owns no clock: callers pass "now".

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// A point in time, UTC.
pub type Instant = OffsetDateTime;

/// Parses an RFC 3339 timestamp such as `2026-11-20T14:03:11.401Z`. An instant outside the
/// years 1 to 9998 (UTC) counts as unreadable: [`format`] could not write it back, nor a delay
/// be added to it (found with the fuzz invariants: `9999-12-31T23:30:00-01:00` made `format`
/// panic).
pub fn parse(s: &str) -> Option<Instant> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok().filter(|t| {
        t.checked_to_offset(time::UtcOffset::UTC)
            .is_some_and(|utc| (1..=9998).contains(&utc.year()))
    })
}

/// Formats as UTC with milliseconds, the way Kustomer writes its own timestamps.
/// (Written out by hand: `time`'s format descriptions cost 20 KB of Wasm for this one format.)
pub fn format(t: Instant) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds since the Unix epoch, the unit of JavaScript's clock and of Durable Object alarms.
pub fn to_millis(t: Instant) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The instant `ms` milliseconds after the Unix epoch; out-of-range values clamp to the epoch.
pub fn from_millis(ms: f64) -> Instant {
    // Round to whole milliseconds first: `ms * 1e6` in f64 would lose the last digits.
    let nanos = if ms.is_finite() {
        (ms.round() as i128).saturating_mul(1_000_000)
    } else {
        0
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t` plus whole seconds, saturating instead of overflowing.
pub fn add_seconds(t: Instant, seconds: i64) -> Instant {
    t.checked_add(Duration::seconds(seconds)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kustomer_timestamps() {
        for (input, output) in [
            ("2026-11-20T14:03:11.401Z", "2026-11-20T14:03:11.401Z"),
            ("2026-11-20T14:03:11Z", "2026-11-20T14:03:11.000Z"),
            ("2026-11-20T15:03:11.401+01:00", "2026-11-20T14:03:11.401Z"),
        ] {
            assert_eq!(format(parse(input).unwrap()), output, "{input}");
        }
        for bad in ["", "yesterday", "2026-11-20", "2026-13-40T00:00:00Z"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn millis_round_trip_and_clamp() {
        let t = parse("2026-11-20T14:03:11.401Z").unwrap();
        assert_eq!(from_millis(to_millis(t) as f64), t);
        assert_eq!(from_millis(f64::NAN), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(from_millis(1e300), OffsetDateTime::UNIX_EPOCH);
    }
}
