//! Which Kustomer records a conversation's decision reads, and those records once read: the
//! one list the agent's card, the preview and the scheduler all fetch.

use super::SurveyInput;
use crate::kustomer::{Brand, Conversation, Customer, Tag, User};

/// The Kustomer records a conversation's decision reads besides the conversation itself, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records<'a> {
    /// The customer (`relationships.customer.data.id`), if the conversation has one.
    pub customer: Option<&'a str>,
    /// The agent: the first non-empty id in `assignedUsers`.
    pub agent: Option<&'a str>,
    /// The tags whose names go to Stella: the non-empty ids, in the conversation's order.
    pub tags: Vec<&'a str>,
    /// The brand, whose name the brand map reads.
    pub brand: Option<&'a str>,
    /// The channel the survey is about: the first one that is not blank, trimmed.
    pub channel: Option<&'a str>,
}

/// A kind of record [`records`] names, by the Kustomer API path that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// `GET /v1/customers/{id}`.
    Customer,
    /// `GET /v1/users/{id}`: the agent.
    User,
    /// `GET /v1/tags/{id1,id2,…}`: every tag whose name is needed, in one call.
    Tags,
    /// `GET /v1/brands/{id}` ([`BRANDS_PATH`](crate::kustomer::BRANDS_PATH)).
    Brand,
}

impl Record {
    /// The path's segments under the Kustomer API URL (`ids`: one id, or the tags' joined by
    /// commas): the agent's card and the edge read the records at these, each encoding them
    /// for its own transport.
    pub fn path(self, ids: &str) -> [&str; 3] {
        let kind = match self {
            Self::Customer => "customers",
            Self::User => "users",
            Self::Tags => "tags",
            Self::Brand => crate::kustomer::BRANDS_PATH[1],
        };
        ["v1", kind, ids]
    }
}

/// The one list of records the decision reads for `conversation`: the agent's card, the
/// preview and the scheduler all fetch exactly these, and [`decide`] judges the agent this
/// list names.
pub fn records(conversation: &Conversation) -> Records<'_> {
    Records {
        customer: conversation
            .customer_id
            .as_deref()
            .filter(|id| !id.is_empty()),
        agent: non_empty(&conversation.assigned_users).next(),
        tags: non_empty(&conversation.tags).collect(),
        brand: conversation.brand_id.as_deref().filter(|id| !id.is_empty()),
        channel: first_channel(conversation),
    }
}

/// The conversation's first channel that is not blank, trimmed.
pub(super) fn first_channel(conversation: &Conversation) -> Option<&str> {
    (conversation.channels.iter())
        .map(|c| c.trim())
        .find(|c| !c.is_empty())
}

fn non_empty(ids: &[String]) -> impl Iterator<Item = &str> {
    ids.iter().map(String::as_str).filter(|id| !id.is_empty())
}

/// Everything the decision reads about one conversation, owned: fetched by the edge, or
/// handed to the exports by a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// The conversation.
    pub conversation: Conversation,
    /// Its customer.
    pub customer: Option<Customer>,
    /// The first assigned user.
    pub user: Option<User>,
    /// Its tags.
    pub tags: Vec<Tag>,
    /// Its brand, read only when the brand map is set.
    pub brand: Option<Brand>,
}

impl Inputs {
    /// What the decision reads, for a conversation of `org` (when known).
    pub fn survey_input<'a>(&'a self, org: Option<&'a str>) -> SurveyInput<'a> {
        SurveyInput {
            conversation: &self.conversation,
            customer: self.customer.as_ref(),
            user: self.user.as_ref(),
            tags: &self.tags,
            brand: self.brand.as_ref(),
            org,
        }
    }
}
