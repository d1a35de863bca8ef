//! Errors as data: every problem a user can cause has a stable `code` that pages, logs and
//! tests match on, and a message written for the person who has to fix it.

use serde::Serialize;
use std::fmt;

/// Declares a family of stable codes: an enum whose variants each carry their code text,
/// written once; `as_str`, `Display` and serialization all read it, and `ALL` lists them.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every code of the family.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The stable code as text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The code whose text this is ([`as_str`](Self::as_str)); `None` for any other
            /// text.
            pub fn from_code(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|c| c.as_str() == text)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use codes;

/// Reads a [`codes!`] family back from its text (an unknown text is refused), for answers one
/// part of the edge reads from another.
macro_rules! codes_deserialize {
    ($($name:ident),+) => {$(
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::error::read_code(d, |text| {
                    Self::from_code(text)
                        .ok_or_else(|| format!("unknown {} `{text}`", stringify!($name)))
                })
            }
        }
    )+};
}
pub(crate) use codes_deserialize;

/// Reads a code's text, borrowed or not (no copy of a known code), into what `read` makes of
/// it; its error is the deserializer's.
pub(crate) fn read_code<'de, D: serde::Deserializer<'de>, T>(
    d: D,
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct Code<F>(F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'_> for Code<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a code")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }
    d.deserialize_str(Code(read))
}

codes! {
    /// Why a settings field was refused. The codes are stable: the settings page and the edge's
    /// `400` answers expose them.
    pub enum FieldErrorCode {
        /// A required field is missing or blank.
        Required = "required",
        /// Not a URL at all, or a URL with parts that do not belong (path, query, user name).
        InvalidUrl = "invalid_url",
        /// `http://` where only `https://` is accepted.
        InsecureUrl = "insecure_url",
        /// A well-formed https URL on a host this field does not accept.
        HostNotAllowed = "host_not_allowed",
        /// Not a whole number.
        NotAnInteger = "not_an_integer",
        /// A whole number outside the allowed range.
        OutOfRange = "out_of_range",
        /// An API key with spaces, line breaks or control characters, or absurdly long.
        InvalidKey = "invalid_key",
        /// The Kustomer key lacks a role the app needs.
        MissingPermission = "missing_permission",
        /// Not `true`/`false` (or a form value meaning one of them).
        NotABoolean = "not_a_boolean",
        /// A channel map that is not `kustomer=stella` pairs.
        InvalidChannelMap = "invalid_channel_map",
        /// A channel list that is not a list of channel names.
        InvalidChannelList = "invalid_channel_list",
        /// A value of the wrong JSON type, such as an object where text belongs.
        InvalidType = "invalid_type",
        /// Text longer than the field allows.
        TooLong = "too_long",
        /// A brand or language map that is not `name=value` pairs of valid names.
        InvalidPairs = "invalid_pairs",
        /// A custom property that is not `attribute=property` with a known attribute and an
        /// allowed, unrepeated property name.
        InvalidCustomProperty = "invalid_custom_property",
        /// More entries than the field allows.
        TooMany = "too_many",
    }
}

/// One problem with one settings field, shown next to that field. Never contains a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The setting's key, such as `kustomerUrl`.
    pub field: String,
    /// Stable machine-readable code.
    pub code: FieldErrorCode,
    /// What is wrong, in words an admin understands.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, code: FieldErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

codes! {
    /// Why an input document (a Kustomer event or record, or a whole API call) was refused.
    pub enum InputErrorCode {
        /// Not JSON at all.
        MalformedJson = "malformed_json",
        /// JSON of the wrong shape: a missing field or a value of the wrong type.
        InvalidShape = "invalid_shape",
        /// Larger than any genuine input ([`MAX_INPUT_BYTES`]).
        TooLarge = "too_large",
        /// The settings did not validate; the field errors travel with it.
        InvalidSettings = "invalid_settings",
        /// An id that no Kustomer record has: empty, blank, over [`MAX_ID_CHARS`](crate::kustomer::MAX_ID_CHARS)
        /// characters, or holding control characters.
        InvalidId = "invalid_id",
    }
}

/// The largest input document accepted: 1 MiB, far above any real Kustomer record.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// A refused input: a stable code, the JSON path where it went wrong (empty for the whole
/// document), and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputError {
    /// Stable machine-readable code.
    pub code: InputErrorCode,
    /// Where in the document, such as `data.attributes.channels[0]`; empty for the root.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Field errors, present only with [`InputErrorCode::InvalidSettings`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl InputError {
    pub(crate) fn new(
        code: InputErrorCode,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            path: path.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The error for settings that did not validate, carrying every field error.
    pub fn invalid_settings(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        Self {
            code: InputErrorCode::InvalidSettings,
            path: String::new(),
            message: format!(
                "The app's settings are not valid: check {}.",
                names.join(", ")
            ),
            fields,
        }
    }

    /// Prefixes the path with the name of the document it came from (`conversation`, …).
    pub(crate) fn within(mut self, document: &str) -> Self {
        self.path = if self.path.is_empty() {
            document.to_owned()
        } else {
            format!("{document}.{}", self.path)
        };
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.code.as_str(), self.message)
        } else {
            write!(
                f,
                "{} at {}: {}",
                self.code.as_str(),
                self.path,
                self.message
            )
        }
    }
}

impl std::error::Error for InputError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_and_input_codes_read_back_and_serialize_as_their_text() {
        for code in FieldErrorCode::ALL {
            assert_eq!(FieldErrorCode::from_code(code.as_str()), Some(*code));
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        for code in InputErrorCode::ALL {
            assert_eq!(InputErrorCode::from_code(code.as_str()), Some(*code));
        }
        assert_eq!(FieldErrorCode::InvalidUrl.as_str(), "invalid_url");
        assert_eq!(InputErrorCode::TooLarge.to_string(), "too_large");
        assert_eq!(InputErrorCode::from_code("Too_Large"), None);
    }
}
