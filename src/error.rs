//! Errors as data: every problem a user can cause has a stable `code` that pages, logs and
//! tests match on, and a message written for the person who has to fix it.

use serde::Serialize;
use std::fmt;

/// Why a settings field was refused. The codes are stable: the settings page and the edge's
/// `400` answers expose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorCode {
    /// A required field is missing or blank.
    Required,
    /// Not a URL at all, or a URL with parts that do not belong (path, query, user name).
    InvalidUrl,
    /// `http://` where only `https://` is accepted.
    InsecureUrl,
    /// A well-formed https URL on a host this field does not accept.
    HostNotAllowed,
    /// Not a whole number.
    NotAnInteger,
    /// A whole number outside the allowed range.
    OutOfRange,
    /// An API key with spaces, line breaks or control characters, or absurdly long.
    InvalidKey,
    /// The Kustomer key lacks a role the app needs.
    MissingPermission,
    /// Not `true`/`false` (or a form value meaning one of them).
    NotABoolean,
    /// A channel map that is not `kustomer=stella` pairs.
    InvalidChannelMap,
    /// A channel list that is not a list of channel names.
    InvalidChannelList,
    /// A value of the wrong JSON type, such as an object where text belongs.
    InvalidType,
    /// Text longer than the field allows.
    TooLong,
    /// A brand or language map that is not `name=value` pairs of valid names.
    InvalidPairs,
    /// A custom property that is not `attribute=property` with a known attribute and an
    /// allowed, unrepeated property name.
    InvalidCustomProperty,
    /// More entries than the field allows.
    TooMany,
}

impl FieldErrorCode {
    /// The stable code as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::InvalidUrl => "invalid_url",
            Self::InsecureUrl => "insecure_url",
            Self::HostNotAllowed => "host_not_allowed",
            Self::NotAnInteger => "not_an_integer",
            Self::OutOfRange => "out_of_range",
            Self::InvalidKey => "invalid_key",
            Self::MissingPermission => "missing_permission",
            Self::NotABoolean => "not_a_boolean",
            Self::InvalidChannelMap => "invalid_channel_map",
            Self::InvalidChannelList => "invalid_channel_list",
            Self::InvalidType => "invalid_type",
            Self::TooLong => "too_long",
            Self::InvalidPairs => "invalid_pairs",
            Self::InvalidCustomProperty => "invalid_custom_property",
            Self::TooMany => "too_many",
        }
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

/// Why an input document (a Kustomer event or record, or a whole API call) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputErrorCode {
    /// Not JSON at all.
    MalformedJson,
    /// JSON of the wrong shape: a missing field or a value of the wrong type.
    InvalidShape,
    /// Larger than any genuine input ([`MAX_INPUT_BYTES`]).
    TooLarge,
    /// The settings did not validate; the field errors travel with it.
    InvalidSettings,
    /// An id that no Kustomer record has: empty, blank, over [`MAX_ID_CHARS`](crate::kustomer::MAX_ID_CHARS)
    /// characters, or holding control characters.
    InvalidId,
}

impl InputErrorCode {
    /// The stable code as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidShape => "invalid_shape",
            Self::TooLarge => "too_large",
            Self::InvalidSettings => "invalid_settings",
            Self::InvalidId => "invalid_id",
        }
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
