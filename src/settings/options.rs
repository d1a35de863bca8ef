//! How strict validation is: the one options type, which the edge's configuration holds and
//! the Wasm exports read from their `options` argument.

use crate::error::InputError;
use crate::json::At;
use serde_json::Value;

/// How strict validation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Accept `http://` URLs on loopback hosts (127.0.0.1, localhost, ::1) for every URL field,
    /// for the local sandboxes. Off unless a development setup turns it on explicitly.
    pub allow_loopback: bool,
}

impl ValidationOptions {
    /// Reads options as a caller passes them to an export (`{allowLoopback?: boolean}`);
    /// `null` means the defaults.
    pub fn parse(value: &Value) -> Result<Self, InputError> {
        let at = At::named(value, "options");
        at.opt_object()?;
        Ok(Self {
            allow_loopback: at.get("allowLoopback").flag()?,
        })
    }
}
