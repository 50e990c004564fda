//! Turning raw record bytes into typed records, with one specific reason per bad input.

use serde_json::{Map, Value};

use super::{AgentAction, AgentActionKind, InboundMessage, Order};
use crate::config::Limits;

/// The class of a bad input; the dead-letter header `parley.error.kind` and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotJson,
    InvalidUtf8,
    WrongType,
    MissingField,
    EmptyText,
    TextTooLong,
    InvalidValue,
    /// An id (or the record key) longer than `limits.max_id_bytes`.
    IdTooLong,
    /// A short field (`channel`, `locale`, `sent_at`) longer than `limits.max_field_bytes`.
    FieldTooLong,
    /// The record key is not the record's `conversation_id` (it would land on another
    /// partition than the rest of the conversation and be answered out of order).
    KeyMismatch,
    /// The message names another customer than the one the conversation belongs to.
    IdentityMismatch,
    /// Signed mode: the `parley.signature` header is missing or does not verify.
    BadSignature,
    /// An agent id that is not on the allow-list.
    UnknownAgent,
    /// An agent action the agent has no right to (a conversation another agent holds, or
    /// one that is not handed to a person).
    AgentNotAllowed,
    /// The outputs of this input can never be produced (larger than the broker accepts).
    OutputTooLarge,
    /// Parley itself failed on this record (a bug); the record is kept for a replay.
    InternalError,
    /// The intent model failed on the batch.
    ProcessingError,
}

impl ErrorKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [ErrorKind; 17] = [
        Self::NotJson,
        Self::InvalidUtf8,
        Self::WrongType,
        Self::MissingField,
        Self::EmptyText,
        Self::TextTooLong,
        Self::InvalidValue,
        Self::IdTooLong,
        Self::FieldTooLong,
        Self::KeyMismatch,
        Self::IdentityMismatch,
        Self::BadSignature,
        Self::UnknownAgent,
        Self::AgentNotAllowed,
        Self::OutputTooLarge,
        Self::InternalError,
        Self::ProcessingError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::WrongType => "wrong_type",
            Self::MissingField => "missing_field",
            Self::EmptyText => "empty_text",
            Self::TextTooLong => "text_too_long",
            Self::InvalidValue => "invalid_value",
            Self::IdTooLong => "id_too_long",
            Self::FieldTooLong => "field_too_long",
            Self::KeyMismatch => "key_mismatch",
            Self::IdentityMismatch => "identity_mismatch",
            Self::BadSignature => "bad_signature",
            Self::UnknownAgent => "unknown_agent",
            Self::AgentNotAllowed => "agent_not_allowed",
            Self::OutputTooLarge => "output_too_large",
            Self::InternalError => "internal_error",
            Self::ProcessingError => "processing_error",
        }
    }
}

/// Why a record could not be used, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Error messages can quote the offending input (serde's "unknown variant `...`"); they are
/// cut so that a huge value does not travel on into headers and logs.
const MESSAGE_MAX_BYTES: usize = 1000;

impl DecodeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MESSAGE_MAX_BYTES {
            let mut end = MESSAGE_MAX_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str("...");
        }
        Self { kind, message }
    }
}

pub(super) fn object(bytes: Option<&[u8]>, what: &str) -> Result<Map<String, Value>, DecodeError> {
    let bytes = bytes.ok_or_else(|| {
        DecodeError::new(ErrorKind::NotJson, format!("{what} record has no value"))
    })?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        DecodeError::new(
            ErrorKind::InvalidUtf8,
            format!(
                "value is not valid UTF-8 (invalid byte at position {})",
                e.valid_up_to()
            ),
        )
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(ErrorKind::NotJson, format!("value is not JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(DecodeError::new(
            ErrorKind::WrongType,
            format!("{what} must be a JSON object, got {}", type_name(&other)),
        )),
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn required_str(map: &Map<String, Value>, field: &str) -> Result<String, DecodeError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(DecodeError::new(
            ErrorKind::MissingField,
            format!("required field `{field}` is missing"),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(DecodeError::new(
            ErrorKind::WrongType,
            format!("field `{field}` must be a string, got {}", type_name(other)),
        )),
    }
}

fn required_id(
    map: &Map<String, Value>,
    field: &str,
    limits: &Limits,
) -> Result<String, DecodeError> {
    let s = required_str(map, field)?;
    if s.trim().is_empty() {
        return Err(DecodeError::new(
            ErrorKind::InvalidValue,
            format!("field `{field}` is empty"),
        ));
    }
    check_id(field, &s, limits)?;
    Ok(s)
}

/// Ids are copied into every output record (and its key); an unbounded one could make an
/// output larger than the broker accepts.
fn check_id(field: &str, value: &str, limits: &Limits) -> Result<(), DecodeError> {
    at_most(ErrorKind::IdTooLong, field, value, limits.max_id_bytes)?;
    if value.chars().any(char::is_control) {
        return Err(DecodeError::new(
            ErrorKind::InvalidValue,
            format!("field `{field}` contains control characters"),
        ));
    }
    Ok(())
}

fn optional_id(
    map: &Map<String, Value>,
    field: &str,
    limits: &Limits,
) -> Result<Option<String>, DecodeError> {
    let v = optional_str(map, field)?;
    if let Some(v) = &v {
        check_id(field, v, limits)?;
    }
    Ok(v)
}

fn optional_field(
    map: &Map<String, Value>,
    field: &str,
    limits: &Limits,
) -> Result<Option<String>, DecodeError> {
    let v = optional_str(map, field)?;
    if let Some(v) = &v {
        at_most(ErrorKind::FieldTooLong, field, v, limits.max_field_bytes)?;
    }
    Ok(v)
}

fn check_text(field: &str, text: &str, limits: &Limits) -> Result<(), DecodeError> {
    at_most(ErrorKind::TextTooLong, field, text, limits.max_text_bytes)
}

/// `value` of `field` is at most `limit` bytes, or an error of `kind` saying by how much.
fn at_most(kind: ErrorKind, field: &str, value: &str, limit: usize) -> Result<(), DecodeError> {
    if value.len() <= limit {
        return Ok(());
    }
    Err(DecodeError::new(
        kind,
        format!(
            "field `{field}` is {} bytes; the limit is {limit}",
            value.len()
        ),
    ))
}

/// The record key must be the conversation id: Kafka partitions by key, and one
/// conversation's messages must share a partition to be handled in order.
pub fn check_key(key: Option<&[u8]>, conversation_id: &str) -> Result<(), DecodeError> {
    if key == Some(conversation_id.as_bytes()) {
        return Ok(());
    }
    let shown = match key {
        None => "no key".to_string(),
        Some(k) if k.len() > 64 => format!("a {}-byte key", k.len()),
        Some(k) => format!("key {:?}", String::from_utf8_lossy(k)),
    };
    Err(DecodeError::new(
        ErrorKind::KeyMismatch,
        format!("the record has {shown}; it must be the conversation_id"),
    ))
}

fn optional_str(map: &Map<String, Value>, field: &str) -> Result<Option<String>, DecodeError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(DecodeError::new(
            ErrorKind::WrongType,
            format!("field `{field}` must be a string, got {}", type_name(other)),
        )),
    }
}

/// Decodes a `chat.inbound` value; `limits` bound the text, the ids and the short fields.
pub fn decode_inbound(
    bytes: Option<&[u8]>,
    limits: &Limits,
) -> Result<InboundMessage, DecodeError> {
    let map = object(bytes, "inbound message")?;
    let message_id = required_id(&map, "message_id", limits)?;
    let conversation_id = required_id(&map, "conversation_id", limits)?;
    let text = required_str(&map, "text")?;
    if text.trim().is_empty() {
        return Err(DecodeError::new(
            ErrorKind::EmptyText,
            "field `text` is empty or only whitespace",
        ));
    }
    check_text("text", &text, limits)?;
    // An empty customer id is no customer id: no order data, and none in escalations.
    let customer_id = optional_id(&map, "customer_id", limits)?.filter(|c| !c.trim().is_empty());
    let channel = optional_field(&map, "channel", limits)?;
    let locale = optional_field(&map, "locale", limits)?;
    let sent_at = optional_field(&map, "sent_at", limits)?;
    if let Some(s) = &sent_at {
        if chrono::DateTime::parse_from_rfc3339(s).is_err() {
            return Err(DecodeError::new(
                ErrorKind::InvalidValue,
                format!("field `sent_at` is not an RFC 3339 date-time: {s:?}"),
            ));
        }
    }
    Ok(InboundMessage {
        message_id,
        conversation_id,
        text,
        customer_id,
        channel,
        sent_at,
        locale,
    })
}

/// Decodes a `chat.agent-actions` value; `limits` bound a reply's text and the ids.
pub fn decode_agent_action(
    bytes: Option<&[u8]>,
    limits: &Limits,
) -> Result<AgentAction, DecodeError> {
    let map = object(bytes, "agent action")?;
    required_id(&map, "conversation_id", limits)?;
    required_id(&map, "agent_id", limits)?;
    optional_id(&map, "action_id", limits)?;
    optional_field(&map, "sent_at", limits)?;
    required_str(&map, "action")?;
    if let Some(t) = optional_str(&map, "text")? {
        check_text("text", &t, limits)?;
    }
    let action: AgentAction = serde_json::from_value(Value::Object(map))
        .map_err(|e| DecodeError::new(ErrorKind::InvalidValue, format!("agent action: {e}")))?;
    if action.action == AgentActionKind::Reply
        && action.text.as_deref().is_none_or(|t| t.trim().is_empty())
    {
        return Err(DecodeError::new(
            ErrorKind::EmptyText,
            "agent action `reply` needs a non-empty `text`",
        ));
    }
    Ok(action)
}

/// Decodes a `commerce.orders` value; `None` (a tombstone) is handled by the caller.
pub fn decode_order(bytes: &[u8]) -> Result<Order, DecodeError> {
    let map = object(Some(bytes), "order")?;
    // The order service is trusted for sizes: its ids are bounded only by being non-empty.
    for field in ["order_id", "customer_id"] {
        if required_str(&map, field)?.trim().is_empty() {
            return Err(DecodeError::new(
                ErrorKind::InvalidValue,
                format!("field `{field}` is empty"),
            ));
        }
    }
    required_str(&map, "status")?;
    serde_json::from_value(Value::Object(map))
        .map_err(|e| DecodeError::new(ErrorKind::InvalidValue, format!("order: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_text_bytes: 100,
            max_id_bytes: 20,
            max_field_bytes: 30,
            ..Limits::default()
        }
    }

    fn kind(bytes: &[u8]) -> ErrorKind {
        decode_inbound(Some(bytes), &limits()).unwrap_err().kind
    }

    #[test]
    fn each_bad_input_has_its_own_reason() {
        assert_eq!(kind(b"hello"), ErrorKind::NotJson);
        assert_eq!(kind(b"[1,2]"), ErrorKind::WrongType);
        assert_eq!(
            kind(b"{\"conversation_id\":\"c\",\"text\":\"hi\"}"),
            ErrorKind::MissingField
        );
        assert_eq!(
            kind(b"{\"message_id\":\"m\",\"conversation_id\":\"c\",\"text\":5}"),
            ErrorKind::WrongType
        );
        assert_eq!(
            kind(b"{\"message_id\":\"m\",\"conversation_id\":\"c\",\"text\":\"  \\n\"}"),
            ErrorKind::EmptyText
        );
        let long = format!(
            "{{\"message_id\":\"m\",\"conversation_id\":\"c\",\"text\":\"{}\"}}",
            "a".repeat(101)
        );
        assert_eq!(kind(long.as_bytes()), ErrorKind::TextTooLong);
        assert_eq!(kind(b"{\"text\":\"\xff\"}"), ErrorKind::InvalidUtf8);
        let err = decode_inbound(Some(b"{\"text\":\"\xff\"}"), &limits()).unwrap_err();
        assert!(err.message.contains("position 9"), "{}", err.message);
    }

    #[test]
    fn every_id_and_short_field_is_bounded() {
        let long_id = "x".repeat(21);
        for field in ["message_id", "conversation_id", "customer_id"] {
            let mut v = serde_json::json!({"message_id":"m","conversation_id":"c","text":"hi"});
            v[field] = long_id.clone().into();
            assert_eq!(
                kind(v.to_string().as_bytes()),
                ErrorKind::IdTooLong,
                "{field}"
            );
        }
        for field in ["channel", "locale", "sent_at"] {
            let mut v = serde_json::json!({"message_id":"m","conversation_id":"c","text":"hi"});
            v[field] = "y".repeat(31).into();
            assert_eq!(
                kind(v.to_string().as_bytes()),
                ErrorKind::FieldTooLong,
                "{field}"
            );
        }
        let v = serde_json::json!({"message_id":"m\u{0}","conversation_id":"c","text":"hi"});
        assert_eq!(kind(v.to_string().as_bytes()), ErrorKind::InvalidValue);
        let a = serde_json::json!({"conversation_id":"c","agent_id": long_id,"action":"take_over"});
        let e = decode_agent_action(Some(a.to_string().as_bytes()), &limits()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::IdTooLong);
        let names: std::collections::HashSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn the_key_must_be_the_conversation() {
        assert!(check_key(Some(b"c-1"), "c-1").is_ok());
        assert_eq!(
            check_key(Some(b"c-2"), "c-1").unwrap_err().kind,
            ErrorKind::KeyMismatch
        );
        assert_eq!(
            check_key(None, "c-1").unwrap_err().kind,
            ErrorKind::KeyMismatch
        );
        let e = check_key(Some(&[b'k'; 5000]), "c-1").unwrap_err();
        assert!(e.message.len() < 100, "{}", e.message);
    }

    #[test]
    fn unknown_fields_are_ignored_and_optional_ones_kept() {
        let m = decode_inbound(
            Some(br#"{"message_id":"m1","conversation_id":"c1","text":"hi","customer_id":"u","extra":{"a":1}}"#),
            &limits(),
        )
        .unwrap();
        assert_eq!(m.customer_id.as_deref(), Some("u"));
        assert_eq!(m.text, "hi");
        let m = decode_inbound(
            Some(br#"{"message_id":"m1","conversation_id":"c1","text":"hi","customer_id":" "}"#),
            &limits(),
        )
        .unwrap();
        assert_eq!(m.customer_id, None);
    }

    #[test]
    fn agent_reply_needs_text_and_orders_need_a_known_status() {
        let e = decode_agent_action(
            Some(br#"{"conversation_id":"c","agent_id":"a","action":"reply"}"#),
            &limits(),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::EmptyText);
        let e = decode_order(br#"{"order_id":"o","customer_id":"c","status":"lost"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidValue);
    }
}
