//! Turning dialogue actions and bad inputs into the records Parley produces.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::config::Topics;
use crate::dialogue::Action;
use crate::kafka::Record;
use crate::state::OutRecord;
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
    let created_at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
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
                    created_at: created_at.clone(),
                    agent_id: agent_id.clone(),
                    order_id: order_id.clone(),
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
                    created_at: created_at.clone(),
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
                    created_at: created_at.clone(),
                }),
                headers: vec![],
            },
        })
        .collect()
}

/// The dead letter for a bad input: its key and bytes unchanged, the reason in headers.
pub fn dead_letter(
    source: &Record,
    error: &DecodeError,
    now: DateTime<Utc>,
    topic: &str,
) -> OutRecord {
    OutRecord {
        topic: topic.to_string(),
        key: source.key.clone(),
        value: source.payload.clone().unwrap_or_default(),
        headers: vec![
            ("parley.error".into(), error.message.clone()),
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
    }
}
