//! Turning raw record bytes into typed records, with one specific reason per bad input.

use serde_json::{Map, Value};

use super::{AgentAction, AgentActionKind, InboundMessage, Order};

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
    ProcessingError,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::WrongType => "wrong_type",
            Self::MissingField => "missing_field",
            Self::EmptyText => "empty_text",
            Self::TextTooLong => "text_too_long",
            Self::InvalidValue => "invalid_value",
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

impl DecodeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

fn object(bytes: Option<&[u8]>, what: &str) -> Result<Map<String, Value>, DecodeError> {
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

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_str(map: &Map<String, Value>, field: &str) -> Result<String, DecodeError> {
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

fn required_id(map: &Map<String, Value>, field: &str) -> Result<String, DecodeError> {
    let s = required_str(map, field)?;
    if s.trim().is_empty() {
        return Err(DecodeError::new(
            ErrorKind::InvalidValue,
            format!("field `{field}` is empty"),
        ));
    }
    Ok(s)
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

/// Decodes a `chat.inbound` value; `max_text_bytes` bounds the text.
pub fn decode_inbound(
    bytes: Option<&[u8]>,
    max_text_bytes: usize,
) -> Result<InboundMessage, DecodeError> {
    let map = object(bytes, "inbound message")?;
    let message_id = required_id(&map, "message_id")?;
    let conversation_id = required_id(&map, "conversation_id")?;
    let text = required_str(&map, "text")?;
    if text.trim().is_empty() {
        return Err(DecodeError::new(
            ErrorKind::EmptyText,
            "field `text` is empty or only whitespace",
        ));
    }
    if text.len() > max_text_bytes {
        return Err(DecodeError::new(
            ErrorKind::TextTooLong,
            format!(
                "field `text` is {} bytes; the limit is {max_text_bytes}",
                text.len()
            ),
        ));
    }
    let sent_at = optional_str(&map, "sent_at")?;
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
        // An empty customer id is no customer id: no order data, and none in escalations.
        customer_id: optional_str(&map, "customer_id")?.filter(|c| !c.trim().is_empty()),
        channel: optional_str(&map, "channel")?,
        sent_at,
        locale: optional_str(&map, "locale")?,
    })
}

/// Decodes a `chat.agent-actions` value; `max_text_bytes` bounds a reply's text.
pub fn decode_agent_action(
    bytes: Option<&[u8]>,
    max_text_bytes: usize,
) -> Result<AgentAction, DecodeError> {
    let map = object(bytes, "agent action")?;
    required_id(&map, "conversation_id")?;
    required_id(&map, "agent_id")?;
    required_str(&map, "action")?;
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
    if let Some(t) = action.text.as_deref().filter(|t| t.len() > max_text_bytes) {
        return Err(DecodeError::new(
            ErrorKind::TextTooLong,
            format!(
                "field `text` is {} bytes; the limit is {max_text_bytes}",
                t.len()
            ),
        ));
    }
    Ok(action)
}

/// Decodes a `commerce.orders` value; `None` (a tombstone) is handled by the caller.
pub fn decode_order(bytes: &[u8]) -> Result<Order, DecodeError> {
    let map = object(Some(bytes), "order")?;
    required_id(&map, "order_id")?;
    required_id(&map, "customer_id")?;
    required_str(&map, "status")?;
    serde_json::from_value(Value::Object(map))
        .map_err(|e| DecodeError::new(ErrorKind::InvalidValue, format!("order: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(bytes: &[u8]) -> ErrorKind {
        decode_inbound(Some(bytes), 100).unwrap_err().kind
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
        let err = decode_inbound(Some(b"{\"text\":\"\xff\"}"), 100).unwrap_err();
        assert!(err.message.contains("position 9"), "{}", err.message);
    }

    #[test]
    fn unknown_fields_are_ignored_and_optional_ones_kept() {
        let m = decode_inbound(
            Some(br#"{"message_id":"m1","conversation_id":"c1","text":"hi","customer_id":"u","extra":{"a":1}}"#),
            100,
        )
        .unwrap();
        assert_eq!(m.customer_id.as_deref(), Some("u"));
        assert_eq!(m.text, "hi");
        let m = decode_inbound(
            Some(br#"{"message_id":"m1","conversation_id":"c1","text":"hi","customer_id":" "}"#),
            100,
        )
        .unwrap();
        assert_eq!(m.customer_id, None);
    }

    #[test]
    fn agent_reply_needs_text_and_orders_need_a_known_status() {
        let e = decode_agent_action(
            Some(br#"{"conversation_id":"c","agent_id":"a","action":"reply"}"#),
            100,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::EmptyText);
        let e = decode_order(br#"{"order_id":"o","customer_id":"c","status":"lost"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidValue);
    }
}
