//! A command's JSON text, read fast: a schedule (nearly every command, one per close) straight
//! into its fields, without the buffering an internally tagged enum needs.

use super::{Caller, Command};
use crate::edge::job::{Schedule, StoredSettings};
use serde::Deserialize;

/// [`Command::Schedule`] as it is written (`op` first, as serde writes a tag).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleCommand {
    op: ScheduleOp,
    close: Schedule,
    caller: Caller,
    settings: StoredSettings,
    resurvey_after_days: u32,
}

/// The one tag [`ScheduleCommand`] reads.
#[derive(Deserialize)]
enum ScheduleOp {
    #[serde(rename = "schedule")]
    Schedule,
}

impl Command {
    /// A command from its JSON text, as `serde_json::from_str` reads it: a schedule by
    /// [`ScheduleCommand`]; any other, or a schedule it cannot read, by [`Command`]'s own
    /// rules, which decide.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        match serde_json::from_str::<ScheduleCommand>(text) {
            Ok(ScheduleCommand {
                op: ScheduleOp::Schedule,
                close,
                caller,
                settings,
                resurvey_after_days,
            }) => Ok(Command::Schedule {
                close,
                caller,
                settings,
                resurvey_after_days,
            }),
            Err(_) => serde_json::from_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            fingerprint: "v1:ab".into(),
            org: "org-1".into(),
            kustomer_api_url: "https://api.kustomerapp.com".into(),
            kustomer_api_key: "key \"quoted\"".into(),
        }
    }

    fn schedule(event_id: Option<&str>) -> Command {
        Command::Schedule {
            close: Schedule {
                org: "org-1".into(),
                conversation_id: "conv-1".into(),
                closed_at_ms: 1_700_000_000_000,
                send_at_ms: 1_700_086_400_000,
                event_id: event_id.map(str::to_owned),
                customer_id: Some("cust-1".into()),
            },
            caller: caller(),
            settings: StoredSettings(r#"{"brand":"Acme \u00e9"}"#.into()),
            resurvey_after_days: 30,
        }
    }

    /// What serde alone makes of `text`: the reading `from_json` must match.
    fn serde(text: &str) -> Result<Command, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_command_as_serde_does() {
        for command in [
            schedule(None),
            schedule(Some("evt-1")),
            Command::Link { caller: caller() },
        ] {
            let text = serde_json::to_string(&command).unwrap();
            assert_eq!(Command::from_json(&text).unwrap(), command, "{text}");
        }
    }

    #[test]
    fn a_schedule_it_cannot_read_goes_to_serde() {
        let text = serde_json::to_string(&schedule(Some("evt-1"))).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The tag last, an unknown field, a missing one, a wrong type, another tag, no JSON.
        let mut tag_last = value.as_object().unwrap().clone();
        tag_last.remove("op");
        tag_last.insert("op".into(), "schedule".into());
        let mut extra = value.clone();
        extra["extra"] = 1.into();
        let mut missing = value.clone();
        missing.as_object_mut().unwrap().remove("caller");
        let mut wrong = value.clone();
        wrong["resurveyAfterDays"] = "30".into();
        let mut other = value.clone();
        other["op"] = "list".into();
        for text in [
            serde_json::to_string(&tag_last).unwrap(),
            extra.to_string(),
            missing.to_string(),
            wrong.to_string(),
            other.to_string(),
            "{".to_owned(),
        ] {
            let fast = Command::from_json(&text).map_err(|e| e.to_string());
            assert_eq!(fast, serde(&text), "{text}");
        }
    }
}
