//! Masking keys out of text that came from elsewhere (a server's error message), before it is
//! logged, stored or answered. A server may echo a key in another form than it was sent: JSON-
//! escaped, URL-encoded, in another letter case, or cut short; each of those is masked.

use crate::settings::MASK;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::collections::HashSet;

/// The shortest run of a key's characters that is masked wherever it appears. Shorter keys are
/// masked only whole.
pub const MIN_RUN: usize = 8;

/// `text` with every trace of `keys` replaced by [`MASK`]: the key itself, its JSON-escaped and
/// URL-encoded forms, each in any ASCII letter case, and any run of [`MIN_RUN`] or more
/// consecutive characters of any of these forms.
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
fn forms(key: &str) -> [String; 4] {
    let json = serde_json::to_string(key).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    [
        key.to_owned(),
        json.replace('/', "\\/"), // JSON allows `\/`, and some servers write it
        json,
        utf8_percent_encode(key, NON_ALPHANUMERIC).to_string(),
    ]
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
