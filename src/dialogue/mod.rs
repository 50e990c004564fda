//! The dialogue core: a pure function from (conversation state, event, context) to
//! (new state, actions). No I/O happens here, so every transition is a unit test; the stream
//! service loads the state, calls [`step`], and writes the state and actions atomically.

mod agent;
pub mod answers;
mod articles;
mod courtesy;
mod customer;
pub mod entities;
mod kind;
mod orders;
mod shopping;
#[cfg(test)]
mod tests;
mod turn;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::DialogueSettings;
use crate::knowledge::Knowledge;
use crate::wire::{
    AgentAction, Author, ErrorKind, EscalationReason, EscalationType, InboundMessage, Order,
    OrderRequestType, Prediction, Priority, Turn,
};

pub use entities::Entities;

/// Version of the stored [`Conversation`] layout; bump it and add a migration in `state` when
/// the layout changes.
pub const CONVERSATION_VERSION: u8 = 1;

/// What Parley remembers about one conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub customer_id: Option<String>,
    /// The most recent turns, oldest first, bounded by `limits.transcript_turns`.
    pub transcript: Vec<Turn>,
    /// Intents of the recent customer messages, oldest first (at most 10).
    pub intents: Vec<String>,
    pub slots: Entities,
    pub pending: Option<Pending>,
    /// Consecutive customer messages the bot could not handle.
    pub failures: u32,
    /// The same request asked again and again without being resolved.
    pub repeat: Option<Repeat>,
    pub handoff: Handoff,
    pub last_message_id: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The SKU of the product last answered about, for "is it waterproof?" after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The id of the article the bot's last reply quoted: "and on sundays?" right after it
    /// asks for what the article says on that, not for the whole answer again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article: Option<String>,
}

/// "and for teachers?", "what about switzerland?": a short message that asks the last
/// question again about something else, so it is searched together with that question.
pub fn is_follow_up(text: &str) -> bool {
    answers::follow_up(text).is_some()
}

/// A short question that may lean on what was asked before: a follow-up, or one such as
/// "how long do i have?", "can it go in the oven?", "where do i print the label?". It is
/// also searched together with the last subject, when its own search finds no article (or,
/// pointing back, finds one only by a weak margin).
pub fn leans_on_subject(text: &str) -> bool {
    let words = answers::words(text).len();
    // "ok?" or "no?" answers the bot; "what if i'm not home?" is a question.
    let answer = entities::yes_no(text).is_some() && words <= 3;
    is_follow_up(text)
        || (answers::is_question(text)
            && words <= LEANING_WORDS
            && courtesy::courtesy(text).is_none()
            && !answer)
}

/// The most words of a question that may lean on the one before.
const LEANING_WORDS: usize = 8;

/// "can it go in the oven?", "do they expire?": a short question about something named
/// before.
pub fn points_back(text: &str) -> bool {
    answers::words(text)
        .iter()
        .any(|w| answers::REFERENCES.contains(&w.as_str()))
        && leans_on_subject(text)
}

/// What the customer last asked about, from their messages oldest first: the latest that
/// names a subject ("how much is shipping to austria?" for "what about switzerland?" and
/// "and norway?", "thanks" in between or not). When that one points back ("can I return
/// it?"), the one before it comes first ("I bought the trailrunner 2 last week can I return
/// it?"). The flag says the subject is complete: `false` when it points back and nothing
/// before it in `messages` names one, so the caller may look further back.
pub fn subject_of(messages: &[&str]) -> Option<(String, bool)> {
    let mut named = messages.iter().rev().filter(|t| names_subject(t));
    let last = named.next()?;
    if !points_back(last) {
        return Some((last.to_string(), true));
    }
    Some(match named.next() {
        Some(before) => (format!("{} {}", before.trim_end(), last), true),
        None => (last.to_string(), false),
    })
}

/// A message that can be the subject of a follow-up: neither one itself, nor courtesy, nor
/// a short yes or no given in answer to the bot.
pub fn names_subject(text: &str) -> bool {
    let answer = entities::yes_no(text).is_some() && text.split_whitespace().count() <= 4;
    !is_follow_up(text) && courtesy::courtesy(text).is_none() && !answer
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repeat {
    pub intent: String,
    pub count: u32,
    /// The article each answer quoted, when they came from one: asking again for what the
    /// same article answers is a repeat, whatever intent the model reads each time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article: Option<String>,
}

/// A question the bot asked and is waiting on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pending {
    /// The intent needs an order; `offered` is the one open order the bot proposed.
    OrderNumber {
        intent: String,
        offered: Option<String>,
        asked_at: DateTime<Utc>,
    },
    /// A new delivery address for an order that has not shipped.
    NewAddress {
        order_id: String,
        asked_at: DateTime<Utc>,
    },
    /// The bot stated what it will do and waits for a yes or a no.
    Confirm {
        request: PlannedRequest,
        asked_at: DateTime<Utc>,
    },
    /// Two intents were about as likely; the bot asked which one the customer means.
    /// `order_id` is an order number the ambiguous message gave, kept for the answer.
    Choose {
        options: [String; 2],
        order_id: Option<String>,
        asked_at: DateTime<Utc>,
    },
    /// The question named several products about as well; the bot asked which one.
    /// `question` is answered once the customer picks.
    ChooseProduct {
        skus: Vec<String>,
        question: String,
        asked_at: DateTime<Utc>,
    },
    /// The shop's content does not answer the question; the bot offered to ask a person.
    OfferPerson { asked_at: DateTime<Utc> },
}

impl Pending {
    fn asked_at(&self) -> DateTime<Utc> {
        match self {
            Self::OrderNumber { asked_at, .. }
            | Self::NewAddress { asked_at, .. }
            | Self::Confirm { asked_at, .. }
            | Self::Choose { asked_at, .. }
            | Self::ChooseProduct { asked_at, .. }
            | Self::OfferPerson { asked_at } => *asked_at,
        }
    }
}

/// An order request waiting for the customer's confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRequest {
    pub kind: OrderRequestType,
    pub order_id: String,
    pub details: serde_json::Value,
}

/// Who is answering the customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Handoff {
    /// The bot.
    #[default]
    Bot,
    /// A person was asked for; the bot keeps answering simple questions meanwhile.
    Queued {
        reason: EscalationReason,
        since: DateTime<Utc>,
    },
    /// An agent holds the conversation; the bot is silent and forwards messages.
    Agent {
        agent_id: String,
        since: DateTime<Utc>,
        /// The agent's last action (take over or reply); an agent idle for longer than
        /// `agent_idle_timeout_secs` loses the conversation at the customer's next message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_active: Option<DateTime<Utc>>,
    },
}

/// Read access to the orders table.
pub trait Orders {
    fn get(&self, order_id: &str) -> Option<Order>;
    /// The customer's orders that are still open (placed, processing, shipped).
    fn open_orders_of(&self, customer_id: &str) -> Vec<Order>;
}

/// What a step may look at besides the state.
pub struct Context<'a> {
    pub kb: &'a Knowledge,
    pub orders: &'a dyn Orders,
    pub catalog: &'a dyn answers::Catalog,
    pub retrieval: &'a crate::retrieval::RetrievalSettings,
    pub settings: &'a DialogueSettings,
    pub transcript_turns: usize,
    pub oos_label: &'a str,
    /// Agent ids allowed to act; `None` allows any.
    pub allowed_agents: Option<&'a std::collections::HashSet<String>>,
    pub now: DateTime<Utc>,
}

/// What happened to the conversation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    Customer {
        message: &'a InboundMessage,
        prediction: &'a Prediction,
        /// What retrieval found for the message's text.
        found: &'a crate::retrieval::Found,
    },
    Agent(&'a AgentAction),
}

/// An effect of a step, turned into a Kafka record by the service.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Reply {
        author: Author,
        text: String,
        intent: Option<String>,
        confidence: Option<f32>,
        in_reply_to: Option<String>,
        agent_id: Option<String>,
        order_id: Option<String>,
        /// The article or product the answer came from.
        source: Option<crate::wire::Source>,
    },
    Escalate {
        kind: EscalationType,
        reason: EscalationReason,
        priority: Priority,
        intent: Option<String>,
        intents: Vec<String>,
        order_id: Option<String>,
        transcript: Vec<Turn>,
        message: Option<String>,
        agent_id: Option<String>,
    },
    OrderRequest {
        kind: OrderRequestType,
        order_id: String,
        customer_id: String,
        details: serde_json::Value,
    },
}

/// How a step ended, for the `parley_messages_total{outcome}` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Asked,
    Escalated,
    Clarified,
    OrderRequested,
    Forwarded,
    AgentAction,
    /// The event was refused (see [`Step::rejection`]) and goes to the dead-letter topic.
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Asked => "asked",
            Self::Escalated => "escalated",
            Self::Clarified => "clarified",
            Self::OrderRequested => "order_requested",
            Self::Forwarded => "forwarded_to_agent",
            Self::AgentAction => "agent_action",
            Self::Rejected => "dead_letter",
        }
    }
}

/// Why an event was refused: it changes nothing, produces nothing but its dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub kind: ErrorKind,
    pub reason: String,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub state: Conversation,
    pub actions: Vec<Action>,
    pub outcome: Outcome,
    /// Set when the event was refused; `state` is then the state as it was.
    pub rejection: Option<Rejection>,
}

impl Step {
    fn rejected(state: Conversation, kind: ErrorKind, reason: impl Into<String>) -> Self {
        Self {
            state,
            actions: Vec::new(),
            outcome: Outcome::Rejected,
            rejection: Some(Rejection {
                kind,
                reason: reason.into(),
            }),
        }
    }
}

/// Handles one event: the whole dialogue policy. Pure: same inputs, same outputs.
pub fn step(state: Conversation, event: Event<'_>, ctx: &Context<'_>) -> Step {
    let mut step = match event {
        Event::Customer {
            message,
            prediction,
            found,
        } => customer::handle(state, message, prediction, found, ctx),
        Event::Agent(action) => agent::handle(state, action, ctx),
    };
    if step.rejection.is_some() {
        return step;
    }
    let keep = ctx.transcript_turns.max(1);
    let t = &mut step.state.transcript;
    if t.len() > keep {
        t.drain(..t.len() - keep);
    }
    step.state.updated_at = Some(ctx.now);
    step
}

/// Adds a turn to the transcript.
fn push_turn(
    state: &mut Conversation,
    ctx: &Context<'_>,
    role: crate::wire::Role,
    text: &str,
    intent: Option<&str>,
    message_id: Option<&str>,
) {
    state.transcript.push(Turn {
        role,
        text: text.to_string(),
        // Kept to the millisecond it is written with, so a restored transcript equals this one.
        at: chrono::SubsecRound::trunc_subsecs(ctx.now, 3),
        intent: intent.map(str::to_string),
        message_id: message_id.map(str::to_string),
    });
}

/// An escalation record built from the state as it is now.
fn escalation(
    state: &Conversation,
    kind: EscalationType,
    reason: EscalationReason,
    priority: Priority,
    intent: Option<&str>,
) -> Action {
    let mut intents: Vec<String> = Vec::new();
    for i in &state.intents {
        if !intents.contains(i) {
            intents.push(i.clone());
        }
    }
    Action::Escalate {
        kind,
        reason,
        priority,
        intent: intent.map(str::to_string),
        intents,
        order_id: state.slots.order_id.clone(),
        transcript: state.transcript.clone(),
        message: None,
        agent_id: None,
    }
}
