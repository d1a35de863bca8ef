//! Stella Connect for Kustomer: the core that decides whether a closed Kustomer conversation
//! gets a Medallia Agent Connect (Stella Connect) survey request, and builds that request.
//!
//! The same crate runs natively (tests, benchmarks) and as WebAssembly in the settings page,
//! the agent's card and the edge runtime. Everything but [`wasm`] is pure Rust: no clock, no
//! network and no JavaScript types, so each rule is testable on the host alone.
#![deny(missing_docs)]

pub mod api;
pub mod card;
pub mod decision;
pub mod display;
pub mod edge;
pub mod error;
pub mod http;
pub mod json;
pub mod kustomer;
pub mod manifest;
pub mod page_model;
pub mod redact;
pub mod response;
pub mod roster;
pub mod settings;
pub mod stella;
pub mod survey_outcome;
pub mod timestamp;
pub mod wasm;

pub use decision::{decide, plan_event, Decision, Plan, Skip, SkipCode, SurveyInput};
pub use error::{FieldError, FieldErrorCode, InputError, InputErrorCode};
pub use kustomer::{Conversation, ConversationEvent, Customer, Tag, User};
pub use response::{classify_response, Verdict};
pub use settings::{validate_settings, Settings, ValidationOptions};
pub use stella::FeedbackRequest;
