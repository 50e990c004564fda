//! Turning dialogue actions and bad inputs into the records Parley produces.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::config::Topics;
use crate::dialogue::Action;
use crate::kafka::Record;
use crate::wire::OutRecord;
use crate::wire::{DecodeError, Escalation, OrderRequest, Reply};

/// Namespace of Parley's record ids: ids are derived from the input's position, so a replay
/// produces the very same ids.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5e1f_a7c0_9b1d_4c2e_8f3a_0d6b_7e21_c4a9);

pub fn record_id(source: &Record, index: usize) -> String {
    let name = format!(
        "{}/{}/{}/{}",
        source.topic, source.partition, source.offset, index
    );
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("wire records serialise")
}

/// The records for one input's actions.
pub fn records(
    actions: &[Action],
    conversation_id: &str,
    customer_id: Option<&str>,
    source: &Record,
    now: DateTime<Utc>,
    topics: &Topics,
) -> Vec<OutRecord> {
    let key = Some(conversation_id.as_bytes().to_vec());
    actions
        .iter()
        .enumerate()
        .map(|(i, action)| match action {
            Action::Reply {
                author,
                text,
                intent,
                confidence,
                in_reply_to,
                agent_id,
                order_id,
                source: answered_from,
            } => OutRecord {
                topic: topics.replies.clone(),
                key: key.clone(),
                value: json(&Reply {
                    reply_id: record_id(source, i),
                    conversation_id: conversation_id.to_string(),
                    in_reply_to: in_reply_to.clone(),
                    text: text.clone(),
                    intent: intent.clone(),
                    confidence: *confidence,
                    author: *author,
                    created_at: now,
                    agent_id: agent_id.clone(),
                    order_id: order_id.clone(),
                    source: answered_from.clone(),
                }),
                headers: vec![],
            },
            Action::Escalate {
                kind,
                reason,
                priority,
                intent,
                intents,
                order_id,
                transcript,
                message,
                agent_id,
            } => OutRecord {
                topic: topics.escalations.clone(),
                key: key.clone(),
                value: json(&Escalation {
                    escalation_id: record_id(source, i),
                    kind: *kind,
                    conversation_id: conversation_id.to_string(),
                    customer_id: customer_id.map(str::to_string),
                    reason: *reason,
                    priority: *priority,
                    intent: intent.clone(),
                    intents: intents.clone(),
                    order_id: order_id.clone(),
                    transcript: transcript.clone(),
                    created_at: now,
                    message: message.clone(),
                    agent_id: agent_id.clone(),
                }),
                headers: vec![],
            },
            Action::OrderRequest {
                kind,
                order_id,
                customer_id,
                details,
            } => OutRecord {
                topic: topics.order_requests.clone(),
                key: Some(order_id.as_bytes().to_vec()),
                value: json(&OrderRequest {
                    request_id: record_id(source, i),
                    kind: *kind,
                    order_id: order_id.clone(),
                    customer_id: customer_id.clone(),
                    conversation_id: conversation_id.to_string(),
                    details: details.clone(),
                    created_at: now,
                }),
                headers: vec![],
            },
        })
        .collect()
}

/// The largest output record Parley produces (key, value and headers): below the producer's
/// default `message.max.bytes` (1,000,000) with room for the batch overhead. An input whose
/// outputs would be larger is dead-lettered (`output_too_large`) instead of failing its
/// transaction again and again.
pub const MAX_OUTPUT_BYTES: usize = 900_000;

/// Dead letters keep at most this many bytes of the original key.
pub const DEAD_LETTER_KEY_MAX_BYTES: usize = 1024;

/// Header values of a dead letter (the reason can quote input) are cut to this.
pub const DEAD_LETTER_HEADER_MAX_BYTES: usize = 2048;

impl OutRecord {
    /// Bytes on the wire, near enough: key, value, header names and values.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Dead letters keep at most this many bytes of the original value: the broker accepted a
/// record a little larger than the producer may send, and with headers added it could never
/// be produced (the batch would be retried forever).
pub const DEAD_LETTER_MAX_BYTES: usize = 512 * 1024;

/// The dead letter for a bad input: its key and bytes unchanged (cut to
/// [`DEAD_LETTER_MAX_BYTES`], with `parley.truncated`), the reason in headers.
pub fn dead_letter(
    source: &Record,
    error: &DecodeError,
    now: DateTime<Utc>,
    topic: &str,
) -> OutRecord {
    let mut value = source.payload.clone().unwrap_or_default();
    let original_len = value.len();
    value.truncate(DEAD_LETTER_MAX_BYTES);
    let mut key = source.key.clone();
    let key_len = key.as_ref().map_or(0, Vec::len);
    if let Some(k) = &mut key {
        k.truncate(DEAD_LETTER_KEY_MAX_BYTES);
    }
    let mut record = OutRecord {
        topic: topic.to_string(),
        key,
        value,
        headers: vec![
            (
                "parley.error".into(),
                cut(&error.message, DEAD_LETTER_HEADER_MAX_BYTES).to_string(),
            ),
            ("parley.error.kind".into(), error.kind.as_str().into()),
            ("parley.source.topic".into(), source.topic.clone()),
            (
                "parley.source.partition".into(),
                source.partition.to_string(),
            ),
            ("parley.source.offset".into(), source.offset.to_string()),
            (
                "parley.failed_at".into(),
                now.to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
        ],
    };
    if original_len > DEAD_LETTER_MAX_BYTES {
        record
            .headers
            .push(("parley.truncated".into(), original_len.to_string()));
    }
    if key_len > DEAD_LETTER_KEY_MAX_BYTES {
        record
            .headers
            .push(("parley.key.truncated".into(), key_len.to_string()));
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ErrorKind;

    fn record(payload: Vec<u8>) -> Record {
        Record {
            topic: "chat.inbound".into(),
            partition: 2,
            offset: 17,
            key: Some(b"c-1".to_vec()),
            payload: Some(payload),
            timestamp_ms: None,
            signature: None,
        }
    }

    #[test]
    fn dead_letters_keep_the_bytes_and_cut_what_could_never_be_produced() {
        let e = DecodeError::new(ErrorKind::NotJson, "value is not JSON");
        let small = dead_letter(&record(b"hello".to_vec()), &e, Utc::now(), "dl");
        assert_eq!(small.value, b"hello");
        assert!(!small.headers.iter().any(|(k, _)| k == "parley.truncated"));
        let big = dead_letter(&record(vec![b'x'; 999_000]), &e, Utc::now(), "dl");
        assert_eq!(big.value.len(), DEAD_LETTER_MAX_BYTES);
        assert!(big
            .headers
            .contains(&("parley.truncated".to_string(), "999000".to_string())));
        assert!(big
            .headers
            .contains(&("parley.source.offset".to_string(), "17".to_string())));
    }

    #[test]
    fn dead_letter_keys_and_headers_are_bounded_too() {
        let mut r = record(b"x".to_vec());
        r.key = Some(vec![b'k'; 900_000]);
        let e = DecodeError::new(ErrorKind::IdTooLong, "İ".repeat(500_000));
        let dl = dead_letter(&r, &e, Utc::now(), "dl");
        assert_eq!(dl.key.as_ref().unwrap().len(), DEAD_LETTER_KEY_MAX_BYTES);
        assert!(dl
            .headers
            .contains(&("parley.key.truncated".to_string(), "900000".to_string())));
        assert!(dl.size() < 10_000, "{}", dl.size());
        let reason = &dl.headers[0].1;
        assert!(reason.len() <= DEAD_LETTER_HEADER_MAX_BYTES && reason.starts_with('İ'));
    }

    #[test]
    fn ids_depend_only_on_the_input_position() {
        let r = record(vec![]);
        assert_eq!(record_id(&r, 0), record_id(&r.clone(), 0));
        assert_ne!(record_id(&r, 0), record_id(&r, 1));
    }
}
