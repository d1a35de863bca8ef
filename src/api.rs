//! The operations the Wasm exports offer, JSON in and JSON out, so that the host tests and
//! the property tests exercise exactly what JavaScript calls. Nothing here panics on input:
//! every problem comes back as data with a stable code.

use crate::card::{self, CardView};
use crate::decision::{self, Decision, Inputs, Plan, Skip, SkipCode, SurveyInput};
use crate::error::{FieldError, InputError};
use crate::http;
use crate::json::At;
use crate::kustomer;
use crate::settings::{self, Settings, ValidationOptions};
use crate::stella::{self, FeedbackRequest};
use crate::survey_outcome::{self, SurveyOutcome};
use crate::timestamp::Instant;
use serde::Serialize;
use serde_json::Value;

/// Options a caller may pass with any operation: the one options type, read from JSON by
/// [`ValidationOptions::parse`].
pub type Options = ValidationOptions;

/// `validateSettings` → `{ok: true, settings}` or `{ok: false, errors}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Validated {
    /// Valid; keys masked.
    Valid {
        /// Always `true`.
        ok: bool,
        /// The normalized settings (boxed: far larger than the errors).
        settings: Box<Settings>,
    },
    /// Every field error.
    Invalid {
        /// Always `false`.
        ok: bool,
        /// One per field.
        errors: Vec<FieldError>,
    },
}

/// Validates raw settings.
pub fn validate_settings(raw: &Value, options: Options) -> Validated {
    match settings::validate_settings(raw, options) {
        Ok(settings) => Validated::Valid {
            ok: true,
            settings: Box::new(settings),
        },
        Err(errors) => Validated::Invalid { ok: false, errors },
    }
}

/// `planConversationEvent` → a [`Plan`], or `{action: "reject", error}` for bad input.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Planned {
    /// Schedule or ignore.
    Plan(Plan),
    /// The settings or the event were invalid.
    Reject {
        /// Always `"reject"`.
        action: &'static str,
        /// What was wrong.
        error: InputError,
    },
}

/// Plans a survey from raw settings and an update event.
pub fn plan_conversation_event(
    raw_settings: &Value,
    event: &Value,
    options: Options,
    now: Instant,
) -> Planned {
    let planned = settings::validate_settings(raw_settings, options)
        .map_err(InputError::invalid_settings)
        .and_then(|s| {
            Ok((
                s,
                kustomer::parse_event(event).map_err(|e| e.within("event"))?,
            ))
        });
    match planned {
        Ok((settings, event)) => Planned::Plan(decision::plan_event(&settings, &event, now)),
        Err(error) => Planned::Reject {
            action: "reject",
            error,
        },
    }
}

/// `buildSurveyRequest` → `{ok: true, request}`, `{ok: false, skip}` or `{ok: false, error}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Built {
    /// The request to send (key masked when serialized).
    Send {
        /// Always `true`.
        ok: bool,
        /// Method, URL, headers and body.
        request: Box<SurveyRequest>,
    },
    /// No survey, and why.
    Skip {
        /// Always `false`.
        ok: bool,
        /// The reason.
        skip: Skip,
    },
    /// An input was malformed.
    Error {
        /// Always `false`.
        ok: bool,
        /// What was wrong, with its JSON path.
        error: InputError,
    },
}

/// Decides and builds the Stella request from raw settings and Kustomer responses.
pub fn build_survey_request(input: &Value) -> Built {
    match build(input) {
        Ok(Ok(request)) => Built::Send {
            ok: true,
            request: Box::new(request),
        },
        Ok(Err(skip)) => Built::Skip { ok: false, skip },
        Err(error) => Built::Error { ok: false, error },
    }
}

/// The Stella request as `buildSurveyRequest` shows it: key masked, body as built.
#[derive(Debug)]
pub struct SurveyRequest {
    /// The request as the transport would send it.
    pub request: http::Request,
    /// The body its JSON text was made from.
    pub body: FeedbackRequest,
}

impl Serialize for SurveyRequest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.request.shown_with(&self.body).serialize(s)
    }
}

/// The parts of a `{settings, conversation, customer?, user?, tags?, brand?, org?, options?}`
/// input: raw settings, the bodies of Kustomer's answers, and the org when the caller knows it.
struct Parts {
    settings: Result<Settings, Vec<FieldError>>,
    inputs: Inputs,
    org: Option<String>,
}

impl Parts {
    fn read(input: &Value) -> Result<Self, InputError> {
        let root = At::root(input);
        root.object()?;
        let part = |name| root.get(name).value().unwrap_or(&Value::Null);
        let options = Options::parse(part("options"))?;
        let inputs = Inputs {
            conversation: kustomer::parse_conversation(part("conversation"))
                .map_err(|e| e.within("conversation"))?,
            customer: optional(part("customer"), kustomer::parse_customer, "customer")?,
            user: optional(part("user"), kustomer::parse_user, "user")?,
            tags: optional(part("tags"), kustomer::parse_tags, "tags")?.unwrap_or_default(),
            brand: optional(part("brand"), kustomer::parse_brand, "brand")?,
        };
        Ok(Self {
            inputs,
            org: root.get("org").opt_string()?,
            settings: settings::validate_settings(part("settings"), options),
        })
    }

    fn survey_input(&self) -> SurveyInput<'_> {
        self.inputs.survey_input(self.org.as_deref())
    }
}

fn build(input: &Value) -> Result<Result<SurveyRequest, Skip>, InputError> {
    let parts = Parts::read(input)?;
    let settings = match &parts.settings {
        Ok(s) => s,
        Err(fields) => {
            let error = InputError::invalid_settings(fields.clone());
            return Ok(Err(Skip {
                code: SkipCode::InvalidSettings,
                message: error.message,
                fields: error.fields,
            }));
        }
    };
    Ok(match decision::decide(settings, parts.survey_input()) {
        Decision::Send(body) => Ok(SurveyRequest {
            request: stella::survey_request(settings, &body),
            body,
        }),
        Decision::Skip(skip) => Err(skip),
    })
}

/// `explainConversation` → `{ok: true, card}` or `{ok: false, error}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Explained {
    /// What the agent's card shows.
    Card {
        /// Always `true`.
        ok: bool,
        /// The card's content.
        card: Box<CardView>,
    },
    /// An input was malformed.
    Error {
        /// Always `false`.
        ok: bool,
        /// What was wrong, with its JSON path.
        error: InputError,
    },
}

/// Explains, for the agent's card, what will happen to the conversation's survey, or what
/// happened to it. Takes the same input as [`build_survey_request`], plus `delivery`: the
/// conversation's delivery log entry once read (`null` or absent: none, or not read yet);
/// settings with masked keys are fine.
pub fn explain_conversation(input: &Value, now: Instant) -> Explained {
    let logged = input.get("delivery").and_then(card::Logged::read);
    match Parts::read(input) {
        Ok(parts) => Explained::Card {
            ok: true,
            card: Box::new(card::explain(
                parts.settings.as_ref().map_err(Vec::as_slice),
                parts.survey_input(),
                logged.as_ref(),
                now,
            )),
        },
        Err(error) => Explained::Error { ok: false, error },
    }
}

/// `recordsToRead` → `{ok: true, customer?, agent?, tags, brand}` or `{ok: false, error}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ToRead {
    /// The ids of the records the decision reads ([`decision::records`]).
    Records {
        /// Always `true`.
        ok: bool,
        /// The customer's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        customer: Option<String>,
        /// The agent's id: the user to read.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// The tag ids whose names to read.
        tags: Vec<String>,
        /// The brand's id, whose name to read (`null` when the conversation has none).
        brand: Option<String>,
        /// The channel the survey is about (the first that is not blank), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// Where a page reads each record, under the Kustomer API URL ([`read_paths`]).
        paths: Value,
    },
    /// The conversation was malformed.
    Error {
        /// Always `false`.
        ok: bool,
        /// What was wrong, with its JSON path.
        error: InputError,
    },
}

/// Where a page reads the records [`decision::records`] names (`{user?, tags?, brand?}`; the
/// customer comes with the card's context): the edge's paths ([`decision::Record::path`]), each
/// id encoded as `encodeURIComponent` does, the tags' joined by commas (one call). A map built
/// by hand, not a derived type: it keeps the pages' module smaller.
fn read_paths(records: &decision::Records<'_>) -> Value {
    use decision::Record;
    let mut paths = serde_json::Map::new();
    for (name, record, ids) in [
        ("user", Record::User, records.agent.as_slice()),
        ("tags", Record::Tags, &records.tags[..]),
        ("brand", Record::Brand, records.brand.as_slice()),
    ] {
        let mut path = String::new();
        // The path's segments before the ids, then the ids.
        for segment in &record.path("")[..2] {
            path.push('/');
            path.push_str(segment);
        }
        let mut before = '/';
        for id in ids {
            path.push(before);
            before = ',';
            uri_component(id, &mut path);
        }
        if !ids.is_empty() {
            paths.insert(name.into(), path.into());
        }
    }
    Value::Object(paths)
}

/// `text` as `encodeURIComponent` encodes it: letters, digits and `-_.!~*'()` as they are,
/// every other UTF-8 byte as `%XX`.
fn uri_component(text: &str, out: &mut String) {
    use std::fmt::Write;
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}"); // writing to a String cannot fail
        }
    }
}

/// Which Kustomer records the decision reads for a conversation, from the body of
/// `GET /v1/conversations/{id}` (`{data: conversation}`): the pages fetch exactly these.
pub fn records_to_read(conversation: &Value) -> ToRead {
    match kustomer::parse_conversation(conversation) {
        Ok(conversation) => {
            let records = decision::records(&conversation);
            ToRead::Records {
                ok: true,
                customer: records.customer.map(str::to_owned),
                agent: records.agent.map(str::to_owned),
                tags: records.tags.iter().map(|t| (*t).to_owned()).collect(),
                brand: records.brand.map(str::to_owned),
                channel: records.channel.map(str::to_owned),
                paths: read_paths(&records),
            }
        }
        Err(error) => ToRead::Error { ok: false, error },
    }
}

fn optional<T>(
    value: &Value,
    parse: fn(&Value) -> Result<T, InputError>,
    name: &str,
) -> Result<Option<T>, InputError> {
    if value.is_null() {
        Ok(None)
    } else {
        parse(value).map(Some).map_err(|e| e.within(name))
    }
}

/// `readSurveyOutcome` → `{ok: true, outcome}` or `{ok: false, error}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OutcomeRead {
    /// What became of the survey.
    Outcome {
        /// Always `true`.
        ok: bool,
        /// The record's outcome.
        outcome: Box<SurveyOutcome>,
    },
    /// The record was malformed.
    Error {
        /// Always `false`.
        ok: bool,
        /// What was wrong, with its JSON path.
        error: InputError,
    },
}

/// Reads one record of Agent Connect's Data Return API (`GET /v2/data`) into its outcome.
pub fn read_survey_outcome(record: &Value) -> OutcomeRead {
    match survey_outcome::read_record(record) {
        Ok(record) => OutcomeRead::Outcome {
            ok: true,
            outcome: Box::new(record.outcome),
        },
        Err(error) => OutcomeRead::Error { ok: false, error },
    }
}
