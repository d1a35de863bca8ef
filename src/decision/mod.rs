//! The survey decision: pure functions that say what to do with a conversation and why.
//!
//! [`plan_event`] reads a close event alone and says when to come back; [`decide`] reads the
//! conversation as it is at send time and gives either the Stella request or the reason there
//! is none. Both carry their reasons as stable codes, so the agent's card, the edge's log and
//! the tests all say the same thing.

use crate::error::{codes, FieldError};
use crate::kustomer::{Brand, Conversation, Customer, Tag, User};
use crate::settings::{Settings, Source};
use crate::stella::{self, FeedbackRequest, MAX_TAGS, MAX_TAG_CHARS};
use serde::Serialize;

mod plan;
mod records;

pub use plan::{
    may_resurvey, plan_event, recheck, IgnoreCode, Plan, Recheck, MAX_CLOCK_SKEW_SECONDS,
    SAME_CLOSE_MS,
};
use records::first_channel;
pub use records::{records, Inputs, Record, Records};

codes! {
    /// Why no survey request goes out.
    pub enum SkipCode {
        /// The conversation is not closed.
        NotClosed = "not_closed",
        /// It was closed, then reopened before the survey fell due.
        Reopened = "reopened",
        /// Nobody is assigned.
        NoAssignedAgent = "no_assigned_agent",
        /// The assigned agent has no email.
        NoAgentEmail = "no_agent_email",
        /// The customer has no usable email.
        NoCustomerEmail = "no_customer_email",
        /// The conversation has no channel.
        NoChannel = "no_channel",
        /// The channel is not in the surveyed list.
        ChannelNotSurveyed = "channel_not_surveyed",
        /// The app's settings are invalid.
        InvalidSettings = "invalid_settings",
        /// The conversation was surveyed before, and "Survey a conversation again after
        /// (days)" does not allow another survey yet (or ever, at 0).
        AlreadySurveyed = "already_surveyed",
        /// The brand map is set, the conversation's brand is not in it, and no fixed brand is.
        BrandNotMapped = "brand_not_mapped",
    }
}

/// A reason for sending nothing, with words for the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// Stable code.
    pub code: SkipCode,
    /// Why, in plain words.
    pub message: String,
    /// The field errors, with [`SkipCode::InvalidSettings`] only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl Skip {
    /// A reason with its message.
    pub fn new(code: SkipCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

/// What [`decide`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send this body to Stella.
    Send(FeedbackRequest),
    /// Send nothing, for this reason.
    Skip(Skip),
}

/// Everything [`decide`] reads, as fetched from Kustomer.
#[derive(Debug, Clone, Copy)]
pub struct SurveyInput<'a> {
    /// The conversation.
    pub conversation: &'a Conversation,
    /// Its customer, if it has one.
    pub customer: Option<&'a Customer>,
    /// The agent [`records`] names (the first assigned user), if any.
    pub user: Option<&'a User>,
    /// The conversation's tags, in any order; unknown ids are left out.
    pub tags: &'a [Tag],
    /// The conversation's brand, when [`records`] names one and it was read.
    pub brand: Option<&'a Brand>,
    /// The org, when the caller knows it (the edge does; the agent's card does not).
    pub org: Option<&'a str>,
}

/// Decides whether a survey goes out for the conversation as it is now, and builds its body.
pub fn decide(settings: &Settings, input: SurveyInput<'_>) -> Decision {
    decision(build(settings, input, false))
}

/// [`decide_as_if_closed`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsIfClosed {
    /// Whether the conversation is closed now (then `decision` is [`decide`]'s own).
    pub closed: bool,
    /// What [`decide`] would conclude once the conversation is closed, as it is otherwise.
    pub decision: Decision,
}

/// Judges an open conversation as it would be once closed, and a closed one as it is: what the
/// agent's card and the preview show. The status is the only thing closing changes that the
/// decision reads, so this is [`decide`] without its "not closed" rule.
pub fn decide_as_if_closed(settings: &Settings, input: SurveyInput<'_>) -> AsIfClosed {
    AsIfClosed {
        closed: input.conversation.is_done(),
        decision: decision(build(settings, input, true)),
    }
}

fn decision(built: Result<FeedbackRequest, Skip>) -> Decision {
    match built {
        Ok(body) => Decision::Send(body),
        Err(skip) => Decision::Skip(skip),
    }
}

fn build(
    settings: &Settings,
    input: SurveyInput<'_>,
    as_if_closed: bool,
) -> Result<FeedbackRequest, Skip> {
    let conversation = input.conversation;
    if !as_if_closed && !conversation.is_done() {
        let status = conversation.status.as_deref().unwrap_or("unknown");
        return Err(Skip::new(
            SkipCode::NotClosed,
            format!(
                "The conversation is {status}, not closed: surveys go out only after it is closed."
            ),
        ));
    }
    let agent_id = records(conversation).agent.ok_or_else(|| {
        Skip::new(
            SkipCode::NoAssignedAgent,
            "No agent is assigned to this conversation, so no one would get the feedback.",
        )
    })?;
    let employee = input
        .user
        .filter(|u| u.id == agent_id)
        .and_then(User::email)
        .ok_or_else(|| Skip::new(SkipCode::NoAgentEmail, "The assigned agent has no email address in Kustomer; Agent Connect finds agents by email."))?;
    let customer = input.customer;
    let customer_email = customer.and_then(Customer::email).ok_or_else(|| {
        Skip::new(
            SkipCode::NoCustomerEmail,
            "The customer has no email address to send the survey to.",
        )
    })?;
    let channel = channel(settings, conversation)?;
    let brand = brand(settings, input)?;
    let customer_id = conversation
        .customer_id
        .as_deref()
        .or(customer.map(|c| c.id.as_str()));
    Ok(FeedbackRequest {
        channel: channel.to_owned(),
        customer: stella::Customer {
            name: customer.and_then(Customer::name).map(str::to_owned),
            email: customer_email.to_owned(),
        },
        employee: stella::Employee {
            email: employee.to_owned(),
        },
        ext_interaction_id: conversation.id.clone(),
        external_url: customer_id
            .and_then(|cid| external_url(&settings.kustomer_url, cid, &conversation.id)),
        tags: tag_names(&conversation.tags, input.tags),
        do_not_send: conversation.do_not_send(),
        brand,
        language: if settings.send_language {
            conversation
                .language()
                .map(|tag| stella_language(settings, tag))
        } else {
            None
        },
        custom_properties: custom_properties(settings, input),
    })
}

/// The Stella channel: the conversation's first channel through the channel map, when it is
/// one the settings survey.
fn channel<'a>(settings: &'a Settings, conversation: &'a Conversation) -> Result<&'a str, Skip> {
    let kustomer_channel = first_channel(conversation)
        .ok_or_else(|| Skip::new(SkipCode::NoChannel, "The conversation has no channel."))?;
    let channel = settings.channel_map.stella_channel(kustomer_channel);
    let surveyed = &settings.surveyed_channels;
    if !surveyed.is_empty()
        && !surveyed
            .iter()
            .any(|s| s.eq_ignore_ascii_case(kustomer_channel) || s.eq_ignore_ascii_case(channel))
    {
        return Err(Skip::new(
            SkipCode::ChannelNotSurveyed,
            format!("Surveys are not sent for {kustomer_channel} conversations (see the app's Surveyed channels setting)."),
        ));
    }
    Ok(channel)
}

/// The Stella brand: the brand map's entry for the conversation's brand name, else the fixed
/// brand; with a brand map set and neither, no survey (Agent Connect would refuse it or file
/// it under the wrong brand). Without a brand map, the fixed brand or none, as before.
fn brand(settings: &Settings, input: SurveyInput<'_>) -> Result<Option<String>, Skip> {
    let id = records(input.conversation).brand;
    let name = input
        .brand
        .filter(|b| Some(b.id.as_str()) == id)
        .and_then(Brand::name);
    if let Some(mapped) = name.and_then(|n| settings.brand_map.get(n)) {
        return Ok(Some(mapped.to_owned()));
    }
    if settings.brand.is_some() || settings.brand_map.is_empty() {
        return Ok(settings.brand.clone());
    }
    let whose = match (name, id) {
        (Some(name), _) => format!("This conversation's brand, {name}, is not in"),
        (None, Some(_)) => {
            "This conversation's brand could not be read, so it is not found in".to_owned()
        }
        (None, None) => "This conversation has no brand, so it is not found in".to_owned(),
    };
    Err(Skip::new(
        SkipCode::BrandNotMapped,
        format!("{whose} the app's Brand map setting, and no fixed Brand is set: Agent Connect would not know which brand's survey to send."),
    ))
}

/// The language sent for a tag such as `fr-CA`: the language map's entry for the tag, else for
/// its bare language (`fr`), else the tag itself.
pub fn stella_language(settings: &Settings, tag: String) -> String {
    let map = &settings.language_map;
    let bare = tag.split('-').next().unwrap_or_default();
    match map.get(&tag).or_else(|| map.get(bare)) {
        Some(name) => name.to_owned(),
        None => tag,
    }
}

/// The name of the custom property that carries the org's id.
pub const ORG_PROPERTY: &str = "kustomer_org";
/// The name of the custom property that carries the conversation's id.
pub const CONVERSATION_PROPERTY: &str = "kustomer_conversation_id";

/// The request's custom properties: the org (when known) and the conversation, so that a
/// survey's outcome can be matched without doubt, then the admin's attributes that have a
/// value, as text cut to Stella's length.
pub fn custom_properties(settings: &Settings, input: SurveyInput<'_>) -> stella::Properties {
    let mut props = stella::Properties::new();
    let mut put = |name: &str, value: &str| {
        let value = crate::response::truncate_chars(value, stella::MAX_PROPERTY_CHARS);
        props.insert(name.to_owned(), value.to_owned());
    };
    if let Some(org) = input.org.filter(|o| !o.is_empty()) {
        put(ORG_PROPERTY, org);
    }
    put(CONVERSATION_PROPERTY, &input.conversation.id);
    for p in settings.custom_properties.iter() {
        let attributes = match p.source {
            Source::Conversation => Some(&input.conversation.attributes),
            Source::Customer => input.customer.map(|c| &c.attributes),
        };
        let value = attributes.and_then(|a| match p.custom {
            true => a.get("custom")?.get(&p.attribute),
            false => a.get(&p.attribute),
        });
        if let Some(text) = value.and_then(property_text) {
            put(&p.property, &text);
        }
    }
    props
}

/// An attribute's value as a property: text (not blank), a number or a flag as it prints;
/// nothing for null, lists and objects.
fn property_text(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `{kustomerUrl}/app/customers/{customerId}/event/{conversationId}`, ids percent-encoded.
pub fn external_url(
    kustomer_url: &str,
    customer_id: &str,
    conversation_id: &str,
) -> Option<String> {
    let mut url = url::Url::parse(kustomer_url).ok()?;
    url.path_segments_mut().ok()?.pop_if_empty().extend([
        "app",
        "customers",
        customer_id,
        "event",
        conversation_id,
    ]);
    Some(url.into())
}

/// Names of the conversation's tags, in its order, without blanks or repeats, at most 20, each
/// cut to 2,000 characters.
pub fn tag_names(ids: &[String], tags: &[Tag]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for id in ids {
        let name = tags
            .iter()
            .find(|t| &t.id == id)
            .and_then(|t| t.name.as_deref())
            .map(str::trim);
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            let name = crate::response::truncate_chars(name, MAX_TAG_CHARS);
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        if names.len() == MAX_TAGS {
            break;
        }
    }
    names
}
