//! A job's `reason`: why a survey is where it is, typed, and stored as the same code text as
//! before (`gave_up`, `reopened`, …), so rows written by any version read back unchanged.

use crate::decision::SkipCode;
use crate::edge::codes::Reason;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a survey is where it is: the edge's own [`Reason`], a core [`SkipCode`], or a code this
/// build does not know (a row from another version), kept as it was read so that it is
/// written back and shown unchanged.
///
/// A code has one value: `invalid_settings`, both an edge reason and a core skip code, is
/// always the edge's, however it was made, so a row read back equals the job that wrote it. It
/// reads as its code (`Deref<Target = str>`), as the log and the summary use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobReason {
    /// One of the edge's reasons.
    Edge(Reason),
    /// The core's reason for not sending.
    Skip(SkipCode),
    /// A code this build does not know.
    Other(String),
}

impl JobReason {
    /// The stable code as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Edge(reason) => reason.as_str(),
            Self::Skip(code) => code.as_str(),
            Self::Other(text) => text,
        }
    }

    /// The reason a code names: the edge's first, then the core's, else kept as text.
    pub fn parse(code: &str) -> Self {
        if let Some(reason) = Reason::from_code(code) {
            return Self::Edge(reason);
        }
        match SkipCode::from_code(code) {
            Some(skip) => Self::Skip(skip),
            None => Self::Other(code.to_owned()),
        }
    }
}

impl std::ops::Deref for JobReason {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<Reason> for JobReason {
    fn from(reason: Reason) -> Self {
        Self::Edge(reason)
    }
}

/// A skip code whose text is also an edge reason's is that reason, as [`JobReason::parse`]
/// reads it.
impl From<SkipCode> for JobReason {
    fn from(code: SkipCode) -> Self {
        Reason::from_code(code.as_str()).map_or(Self::Skip(code), Self::Edge)
    }
}

impl From<&str> for JobReason {
    fn from(code: &str) -> Self {
        Self::parse(code)
    }
}

impl std::fmt::Display for JobReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::error::read_code(d, |code| Ok(Self::parse(code)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_the_same_reason() {
        let edge = Reason::ALL.iter().map(|r| JobReason::from(*r));
        let skips = SkipCode::ALL.iter().map(|c| JobReason::from(*c));
        for reason in edge.chain(skips) {
            let text = serde_json::to_string(&reason).unwrap();
            assert_eq!(text, format!("\"{}\"", reason.as_str()));
            let back: JobReason = serde_json::from_str(&text).unwrap();
            assert_eq!(back, reason, "{text}");
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
    }

    #[test]
    fn an_unknown_or_old_code_is_kept_as_it_was_read() {
        for code in ["retired_reason", "", "Gave Up", "\u{e9}t\u{e9}"] {
            let text = serde_json::to_string(code).unwrap();
            let reason: JobReason = serde_json::from_str(&text).unwrap();
            assert_eq!(reason, JobReason::Other(code.to_owned()));
            assert_eq!(serde_json::to_string(&reason).unwrap(), text);
        }
        assert!(serde_json::from_str::<JobReason>("3").is_err(), "not text");
    }

    #[test]
    fn a_code_both_families_share_is_one_reason() {
        let edge = JobReason::from(Reason::InvalidSettings);
        let skip = JobReason::from(SkipCode::InvalidSettings);
        assert_eq!(edge, skip);
        // One value, however it was made: a `match` treats a fresh job as one read back.
        assert_eq!(skip, JobReason::Edge(Reason::InvalidSettings));
        assert_eq!(&*skip, "invalid_settings");
    }
}
