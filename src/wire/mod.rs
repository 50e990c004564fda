//! The records on the wire (see `schemas/`): what Parley reads, what it writes, and how a
//! bad input is told apart from a good one.

mod decode;
mod kb;
mod signature;

pub use decode::{
    check_key, decode_agent_action, decode_inbound, decode_order, DecodeError, ErrorKind,
};
pub use kb::{decode_article, decode_product, Article, Price, Product, Source, SourceKind};
pub use signature::{sign, verify};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the intent model made of one message: the decided intent (the off-topic label when
/// nothing is confident enough) and the labels it weighed. It lives here, not in `model`, so
/// the dialogue and the batch plan depend on the result and not on the model that produced it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Prediction {
    pub intent: String,
    pub confidence: f32,
    /// The three most probable labels with their probabilities, best first.
    pub top: Vec<(String, f32)>,
}

/// A customer message from `chat.inbound`. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub message_id: String,
    pub conversation_id: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Who wrote a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Bot,
    Agent,
}

/// A record on `chat.replies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub reply_id: String,
    pub conversation_id: String,
    pub in_reply_to: Option<String>,
    pub text: String,
    pub intent: Option<String>,
    pub confidence: Option<f32>,
    pub author: Author,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The article or product a bot answer came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// The kind of record on `chat.escalations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationType {
    Escalation,
    CustomerMessage,
    HandoffEnded,
}

/// Why a conversation was handed to a person (or why a handoff record was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    CustomerRequest,
    Complaint,
    RepeatedFailure,
    Frustration,
    AngryLanguage,
    CustomerMessage,
    HandBack,
    Close,
    /// The agent holding the conversation was idle too long; it is back in the queue.
    AgentTimeout,
    /// The carrier marked a parcel delivered that the customer did not get.
    DeliveryClaim,
}

impl EscalationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerRequest => "customer_request",
            Self::Complaint => "complaint",
            Self::RepeatedFailure => "repeated_failure",
            Self::Frustration => "frustration",
            Self::AngryLanguage => "angry_language",
            Self::CustomerMessage => "customer_message",
            Self::HandBack => "hand_back",
            Self::Close => "close",
            Self::AgentTimeout => "agent_timeout",
            Self::DeliveryClaim => "delivery_claim",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

/// Who said a turn of the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Bot,
    Agent,
}

/// One turn of a conversation, as kept in state and sent to agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    #[serde(with = "millis")]
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A record on `chat.escalations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub escalation_id: String,
    #[serde(rename = "type")]
    pub kind: EscalationType,
    pub conversation_id: String,
    pub customer_id: Option<String>,
    pub reason: EscalationReason,
    pub priority: Priority,
    pub intent: Option<String>,
    pub intents: Vec<String>,
    pub order_id: Option<String>,
    pub transcript: Vec<Turn>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// Order statuses on `commerce.orders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
    Returned,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Processing => "processing",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
            Self::Refunded => "refunded",
        }
    }

    /// Still on its way to the customer (or not yet sent).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Placed | Self::Processing | Self::Shipped)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    #[serde(default)]
    pub sku: Option<String>,
    pub name: String,
    #[serde(default = "one")]
    pub quantity: u32,
    #[serde(default)]
    pub unit_price: Option<f64>,
}

fn one() -> u32 {
    1
}

/// An order from `commerce.orders` (the order service owns it; Parley keeps a copy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_delivery: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderRequestType {
    Cancel,
    ChangeAddress,
    Refund,
    /// A return label; the refund follows when the item is back.
    Return,
    /// A return label and the wanted size or colour shipped when the return is scanned.
    Exchange,
}

/// A record on `commerce.order-requests`: what the customer confirmed they want done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub request_id: String,
    #[serde(rename = "type")]
    pub kind: OrderRequestType,
    pub order_id: String,
    pub customer_id: String,
    pub conversation_id: String,
    pub details: serde_json::Value,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentActionKind {
    TakeOver,
    Reply,
    HandBack,
    Close,
}

/// A record on `chat.agent-actions`, written by agent consoles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAction {
    pub conversation_id: String,
    pub agent_id: String,
    pub action: AgentActionKind,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub action_id: Option<String>,
    #[serde(default)]
    pub sent_at: Option<String>,
    /// `take_over` of a conversation another agent holds needs this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// A record to produce: one output of a dialogue step (reply, escalation, order request,
/// dead letter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Timestamps Parley writes, on the wire and in state: RFC 3339 in UTC with milliseconds
/// ("2026-11-28T10:00:00.120Z"), whatever the clock's precision, so consoles see one format.
/// Reading accepts any RFC 3339 offset and converts it to UTC.
pub mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| D::Error::custom(format!("`{text}` is not an RFC 3339 timestamp: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_in_utc_with_milliseconds_and_read_back() {
        let t: DateTime<Utc> = "2026-11-28T11:00:00.123456789+01:00".parse().unwrap();
        let turn = Turn {
            role: Role::Bot,
            text: "hi".into(),
            at: t,
            intent: None,
            message_id: None,
        };
        let v = serde_json::to_value(&turn).unwrap();
        assert_eq!(v["at"], "2026-11-28T10:00:00.123Z");
        let back: Turn = serde_json::from_value(v).unwrap();
        assert_eq!(back.at.timestamp_millis(), t.timestamp_millis());
        // State written before timestamps were typed holds the same text, and still reads.
        let old: Turn = serde_json::from_str(
            r#"{"role":"customer","text":"hi","at":"2026-11-28T10:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(old.at.to_rfc3339(), "2026-11-28T10:00:00+00:00");
        let err =
            serde_json::from_str::<Turn>(r#"{"role":"customer","text":"hi","at":"yesterday"}"#)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("`yesterday` is not an RFC 3339 timestamp"),
            "{err}"
        );
    }
}
