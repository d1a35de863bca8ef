//! Text from elsewhere (a customer's name, a subject, a comment, a server's words) made safe to
//! show beside the app's own: its bidirectional control characters are removed, so that a
//! right-to-left override in a name cannot reverse the text around it on the card, on the
//! Deliveries page or in a CSV export. Right-to-left letters themselves are kept: the pages
//! isolate each such value (`<bdi>`) so it keeps its own direction.

use std::borrow::Cow;

/// The characters that change the direction of the text that follows them: embeddings and
/// overrides (U+202A–U+202E), isolates (U+2066–U+2069), and the marks (U+200E, U+200F, U+061C).
pub const BIDI_CONTROLS: [char; 12] = [
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
];

/// `text` without [`BIDI_CONTROLS`]; borrowed when it has none.
pub fn plain(text: &str) -> Cow<'_, str> {
    if text.contains(BIDI_CONTROLS) {
        Cow::Owned(text.replace(BIDI_CONTROLS, ""))
    } else {
        Cow::Borrowed(text)
    }
}

/// [`plain`], owned.
pub fn plain_owned(text: String) -> String {
    match plain(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(clean) => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_every_direction_control_and_keeps_letters() {
        let cases = [
            ("Ann\u{202E}eeL", "AnneeL"),
            ("\u{202A}a\u{202B}b\u{202C}c\u{202D}d", "abcd"),
            ("\u{2066}x\u{2067}y\u{2068}z\u{2069}", "xyz"),
            ("\u{200E}l\u{200F}r\u{061C}", "lr"),
            ("שלום Ann", "שלום Ann"),
            ("مرحبا", "مرحبا"),
            ("", ""),
        ];
        for (text, shown) in cases {
            assert_eq!(plain(text), shown, "{text:?}");
            assert_eq!(plain_owned(text.to_owned()), shown, "{text:?}");
        }
        assert!(matches!(plain("plain"), Cow::Borrowed(_)));
    }
}
