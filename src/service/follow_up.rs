//! What a short follow-up is searched with. "and for teachers?" names no subject of its own,
//! nor do "how long do i have?" after a question on returns or "can it go in the oven?"
//! after one on a pan: the knowledge base is also searched with the customer's last question
//! on the subject and the follow-up together. Retrieval runs before the dialogue step (it
//! needs the encoder), so the subject is looked up here: an earlier message of the same
//! conversation in this batch, or else the stored transcript.

use std::collections::HashMap;

use super::plan::{ConversationKey, Conversations, Item, Work};
use crate::dialogue::entities::mentions_own_order;
use crate::dialogue::{is_follow_up, leans_on_subject, subject_of};

/// One entry per customer message of `items`, in order: the text to search together with
/// it ("<subject> <message>"), for a message that leans on the subject before it
/// ([`leans_on_subject`]), is `wanted` (its own search found too little: see the caller)
/// and has a known subject. Only an explicit follow-up leans on a subject about the customer's own
/// order: "can you check it?" after "where is my order?" is for the order flow, not the
/// article on tracking. The stored conversation is read only when this batch's messages do
/// not name the subject.
pub(super) fn follow_up_queries(
    items: &[Item],
    conversations: &dyn Conversations,
    wanted: &[bool],
) -> Vec<Option<String>> {
    // This batch's customer messages so far, per conversation.
    let mut said: HashMap<ConversationKey, Vec<&str>> = HashMap::new();
    let mut out = Vec::new();
    let customer = items.iter().filter_map(|item| match &item.work {
        Work::Customer(m) => Some((item.record.partition, m)),
        _ => None,
    });
    for ((partition, m), wanted) in customer.zip(wanted.iter().chain(std::iter::repeat(&false))) {
        let key = (partition, m.conversation_id.clone());
        let earlier = said.entry(key.clone()).or_default();
        let query = (*wanted && leans_on_subject(&m.text))
            .then(|| subject(earlier, &key, conversations))
            .flatten()
            .filter(|s| is_follow_up(&m.text) || !mentions_own_order(s))
            .map(|s| format!("{} {}", s.trim_end(), m.text.trim()));
        earlier.push(&m.text);
        out.push(query);
    }
    out
}

/// The subject of a conversation before a message: from this batch's earlier messages, or
/// with the stored transcript before them. A state that cannot be read costs the message its
/// subject, not the batch: the plan reads it again and reports the error there.
fn subject(
    earlier: &[&str],
    key: &ConversationKey,
    conversations: &dyn Conversations,
) -> Option<String> {
    let partial = match subject_of(earlier) {
        Some((s, true)) => return Some(s),
        partial => partial.map(|(s, _)| s),
    };
    let Some(stored) = conversations.load(key.0, &key.1).ok().flatten() else {
        return partial;
    };
    let mut all: Vec<&str> = stored
        .transcript
        .iter()
        .filter(|t| t.role == crate::wire::Role::Customer)
        .map(|t| t.text.as_str())
        .collect();
    all.extend_from_slice(earlier);
    subject_of(&all).map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::Conversation;
    use crate::kafka::Record;
    use crate::state::StateError;
    use crate::wire::{InboundMessage, Role, Turn};

    struct Stored(HashMap<String, Conversation>);

    impl Conversations for Stored {
        fn load(&self, _: i32, id: &str) -> Result<Option<Conversation>, StateError> {
            Ok(self.0.get(id).cloned())
        }
    }

    fn customer(conv: &str, text: &str) -> Item {
        let message: InboundMessage = serde_json::from_value(serde_json::json!({
            "message_id": format!("m-{text}"), "conversation_id": conv, "text": text,
            "channel": "web_chat", "sent_at": "2026-11-30T10:00:00Z"
        }))
        .unwrap();
        Item {
            record: Record {
                topic: "chat.inbound".into(),
                partition: 0,
                offset: 0,
                key: Some(conv.as_bytes().to_vec()),
                payload: None,
                timestamp_ms: None,
                signature: None,
            },
            work: Work::Customer(message),
        }
    }

    fn said(texts: &[&str]) -> Conversation {
        Conversation {
            transcript: texts
                .iter()
                .enumerate()
                .map(|(i, t)| Turn {
                    role: if i % 2 == 0 {
                        Role::Customer
                    } else {
                        Role::Bot
                    },
                    text: t.to_string(),
                    at: chrono::Utc::now(),
                    intent: None,
                    message_id: None,
                })
                .collect(),
            ..Conversation::default()
        }
    }

    #[test]
    fn a_follow_up_is_searched_with_the_last_question_on_the_subject() {
        let stored = Stored(HashMap::from([(
            "c1".to_string(),
            said(&[
                "how much is shipping to austria?",
                "EUR 6.95 ...",
                "what about switzerland?",
                "EUR 12.95 ...",
                "great, thanks!",
                "You're welcome!",
            ]),
        )]));
        let items = [
            // The subject is in the stored transcript, before an earlier follow-up.
            customer("c1", "and norway?"),
            // In this batch: the message before it on the same conversation.
            customer("c2", "do you offer a student discount?"),
            customer("c2", "thanks"),
            customer("c2", "no"),
            customer("c2", "and for teachers?"),
            // No subject anywhere: searched alone.
            customer("c3", "what about klarna?"),
            customer("c1", "ok thanks"),
        ];
        let got = follow_up_queries(&items, &stored, &[true; 7]);
        assert_eq!(got.len(), items.len());
        assert_eq!(
            got,
            [
                Some("how much is shipping to austria? and norway?".to_string()),
                None,
                None,
                None,
                Some("do you offer a student discount? and for teachers?".to_string()),
                None,
                None,
            ]
        );
    }

    #[test]
    fn a_short_question_leaning_on_the_subject_is_searched_with_it() {
        let stored = Stored(HashMap::from([
            (
                "c1".to_string(),
                said(&[
                    "my new ferrum pan has rust spots already",
                    "Could you give me your order number?",
                ]),
            ),
            (
                "c2".to_string(),
                said(&["where is my order?", "Could you give me your order number?"]),
            ),
        ]));
        let items = [
            customer("c1", "how am i supposed to clean it"),
            // The subject it points back at comes with a question pointing back.
            customer("c1", "can it go in the oven?"),
            // A statement or a long question stands alone, and is the subject after it.
            customer(
                "c1",
                "I would like to know which of your stores is the closest to Hamburg",
            ),
            customer("c1", "what are the opening hours?"),
            // Not about the customer's own order: that is for the order flow.
            customer("c2", "can you check it?"),
            customer("c2", "and the other one?"),
            // Its own search found something: not searched again.
            customer("c1", "is there parking?"),
        ];
        let wanted = [true, true, true, true, true, true, false];
        assert_eq!(
            follow_up_queries(&items, &stored, &wanted),
            [
                Some("my new ferrum pan has rust spots already how am i supposed to clean it".to_string()),
                Some("my new ferrum pan has rust spots already how am i supposed to clean it can it go in the oven?".to_string()),
                None,
                Some("I would like to know which of your stores is the closest to Hamburg what are the opening hours?".to_string()),
                None,
                Some("where is my order? can you check it? and the other one?".to_string()),
                None,
            ]
        );
    }
}
