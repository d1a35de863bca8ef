//! Masking keys out of text that came from elsewhere (a server's error message), before it is
//! logged, stored or answered. A server may echo a key in another form than it was sent: JSON-
//! escaped, URL-encoded, base64 (standard or URL-safe, padded or not, at any byte offset of the
//! encoded text), hex (either case), in another letter case, or cut short; each of those is
//! masked.

use crate::settings::MASK;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::collections::HashSet;

/// The shortest run of a key's characters that is masked wherever it appears. Shorter keys are
/// masked only whole.
pub const MIN_RUN: usize = 8;

/// `text` with every trace of `keys` replaced by [`MASK`]: the key itself, its JSON-escaped,
/// URL-encoded, base64 and hex forms, each in any ASCII letter case, and any run of [`MIN_RUN`]
/// or more consecutive characters of any of these forms. (Matching base64 in any case masks a
/// little more than needed; it never masks less.)
pub fn scrub(text: &str, keys: &[&str]) -> String {
    let lower = text.to_ascii_lowercase().into_bytes();
    let mut masked = vec![false; lower.len()];
    // Windows of MIN_RUN bytes (or whole short keys), grouped by length.
    let mut windows: Vec<(usize, HashSet<Vec<u8>>)> = Vec::new();
    for key in keys.iter().filter(|k| !k.is_empty()) {
        for form in forms(key) {
            let form = form.to_ascii_lowercase().into_bytes();
            let len = MIN_RUN.min(form.len());
            let set = match windows.iter_mut().find(|(l, _)| *l == len) {
                Some((_, set)) => set,
                None => {
                    windows.push((len, HashSet::new()));
                    &mut windows.last_mut().expect("just pushed").1
                }
            };
            set.extend(form.windows(len).map(<[u8]>::to_vec));
        }
    }
    // One pass over the text per window length: O(text) lookups, whatever the keys.
    for (len, set) in &windows {
        for (i, w) in lower.windows(*len).enumerate() {
            if set.contains(w) {
                masked[i..i + len].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    if !masked.contains(&true) {
        return text.to_owned();
    }
    // A character is masked if any of its bytes is; each masked stretch becomes one MASK.
    let mut out = String::with_capacity(text.len());
    let mut in_mask = false;
    for (i, c) in text.char_indices() {
        if masked[i..i + c.len_utf8()].contains(&true) {
            if !in_mask {
                out.push_str(MASK);
            }
            in_mask = true;
        } else {
            out.push(c);
            in_mask = false;
        }
    }
    out
}

/// The forms a server may echo a key in.
fn forms(key: &str) -> Vec<String> {
    let json = serde_json::to_string(key).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    let mut forms = vec![
        key.to_owned(),
        json.replace('/', "\\/"), // JSON allows `\/`, and some servers write it
        json,
        utf8_percent_encode(key, NON_ALPHANUMERIC).to_string(),
        hex(key.as_bytes()),
    ];
    // Base64 of a text holding the key encodes it one of three ways, by its offset modulo 3;
    // URL-safe base64 differs only in two letters, and padding only at the end.
    for offset in 0..3 {
        let standard = base64_core(key.as_bytes(), offset);
        forms.push(standard.replace('+', "-").replace('/', "_"));
        forms.push(standard);
    }
    forms
}

/// `bytes` in hex (lower case: the text is matched in lower case).
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The standard base64 characters that depend only on `bytes` when they start `offset` bytes
/// into a 3-byte group: the characters shared with unknown neighbours are left off.
fn base64_core(bytes: &[u8], offset: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(bytes);
    let bits = padded.len() * 8;
    let mut out = String::new();
    // Character `i` covers bits 6i..6i+6: keep it when they lie within the key's bits.
    let mut i = (offset * 8).div_ceil(6);
    while (i + 1) * 6 <= bits {
        let (at, shift) = (i * 6 / 8, i * 6 % 8);
        let pair = u16::from(padded[at]) << 8 | u16::from(*padded.get(at + 1).unwrap_or(&0));
        out.push(char::from(ALPHABET[usize::from(pair >> (10 - shift) & 63)]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Sk_live/4f9A+b\"7Qz=";

    #[test]
    fn masks_every_form_a_server_may_echo() {
        let cases = [
            ("plain", format!("bad key {KEY}!")),
            ("json", r#"{"key":"Sk_live\/4f9A+b\"7Qz="}"#.to_owned()),
            (
                "json without \\/",
                r#"{"key":"Sk_live/4f9A+b\"7Qz="}"#.to_owned(),
            ),
            ("url", "k=Sk_live%2F4f9A%2Bb%227Qz%3D".to_owned()),
            ("url, lower hex", "k=sk_live%2f4f9a%2bb%227qz%3d".to_owned()),
            ("upper", format!("KEY {}", KEY.to_ascii_uppercase())),
            ("prefix", "key Sk_live/4f… rejected".to_owned()),
            ("middle", "…live/4f9A+…".to_owned()),
        ];
        for (what, text) in cases {
            let out = scrub(&text, &[KEY]);
            assert!(out.contains(MASK), "{what}: {out}");
            for w in KEY.as_bytes().windows(MIN_RUN) {
                let w = std::str::from_utf8(w).unwrap().to_ascii_lowercase();
                assert!(
                    !out.to_ascii_lowercase().contains(&w),
                    "{what}: {out} shows {w}"
                );
            }
        }
    }

    /// A hostile server echoes the key encoded, alone or inside a longer text (so at each
    /// offset of base64's 3-byte groups), in every encoding a browser or a log may show.
    #[test]
    fn masks_base64_and_hex_echoes_at_any_offset() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine;
        let keys = [KEY, "live_51HqLyjWDarjtT1zdp7dc", "a1b2c3d4e5f6a7b8c9d0"];
        let engines = [
            ("standard", &STANDARD),
            ("standard, no padding", &STANDARD_NO_PAD),
            ("url-safe", &URL_SAFE),
            ("url-safe, no padding", &URL_SAFE_NO_PAD),
        ];
        for key in keys {
            let mut echoes = vec![
                ("hex".to_owned(), hex(key.as_bytes()), 0),
                (
                    "HEX".to_owned(),
                    hex(key.as_bytes()).to_ascii_uppercase(),
                    0,
                ),
            ];
            for (name, engine) in engines {
                for prefix in ["", "k=", "key:"] {
                    let encoded = engine.encode(format!("{prefix}{key}"));
                    echoes.push((format!("{name}, after {prefix:?}"), encoded, prefix.len()));
                    let encoded = engine.encode(format!("{prefix}{key}\n"));
                    let what = format!("{name}, after {prefix:?}, then more");
                    echoes.push((what, encoded, prefix.len()));
                }
            }
            for (what, echo, prefix) in echoes {
                let out = scrub(&format!("server said: {echo} (bad key)"), &[key]);
                assert!(out.starts_with("server said: "), "{key} {what}: {out}");
                assert!(out.ends_with(" (bad key)"), "{key} {what}: {out}");
                assert!(out.contains(MASK), "{key} {what}: {out}");
                // Only the prefix's characters and a few at each end survive.
                let left = out.len() - "server said:  (bad key)".len() - MASK.len();
                assert!(
                    left <= prefix * 4 / 3 + 6,
                    "{key} {what}: {echo} became {out}"
                );
            }
        }
    }

    #[test]
    fn leaves_other_text_alone_and_handles_short_and_unicode_keys() {
        assert_eq!(scrub("nothing here", &[KEY, ""]), "nothing here");
        assert_eq!(
            scrub("a 7-char run Sk_live is kept", &[KEY]),
            "a 7-char run Sk_live is kept"
        );
        assert_eq!(scrub("short abc123 key", &["abc123"]), "short ******** key");
        assert_eq!(scrub("ABC123", &["abc123"]), MASK);
        let key = "ключ-ключ-ключ";
        let out = scrub(&format!("x {key} y ключ-клю"), &[key]);
        assert_eq!(out, format!("x {MASK} y {MASK}"));
        assert_eq!(
            scrub("éééé", &["ééééé"]),
            MASK,
            "eight bytes of a longer key"
        );
    }
}
