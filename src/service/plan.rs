//! The pure part of a batch: from decoded records and their predictions to the new
//! conversation states (per inbound partition), each input's outputs and the offsets to
//! commit. Nothing here talks
//! to Kafka or writes to disk (conversations are read through a trait), so every path of a
//! batch, a panicking record included, is a unit test; `process` only persists and commits
//! what the plan says.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::guard::guarded;
use super::output;
use crate::config::Config;
use crate::dialogue::answers::Catalog;
use crate::dialogue::{self, Context, Conversation, Event, Orders};
use crate::kafka::Record;
use crate::knowledge::Knowledge;
use crate::retrieval::{Found, RetrievalSettings};
use crate::state::{StateError, Store};
use crate::wire::{
    AgentAction, AgentActionKind, DecodeError, ErrorKind, InboundMessage, OutRecord, Prediction,
};

/// What a consumed record turned out to be.
pub(super) enum Work {
    Customer(InboundMessage),
    Agent(AgentAction),
    Bad(DecodeError),
}

pub(super) struct Item {
    pub record: Record,
    pub work: Work,
}

/// Read access to the stored conversations. A conversation belongs to the inbound
/// partition its messages arrive on (agent actions are co-partitioned with them).
pub(super) trait Conversations {
    fn load(&self, partition: i32, id: &str) -> Result<Option<Conversation>, StateError>;
}

impl Conversations for Store {
    fn load(&self, partition: i32, id: &str) -> Result<Option<Conversation>, StateError> {
        self.conversation(partition, id)
    }
}

/// A conversation by its partition and id.
pub(super) type ConversationKey = (i32, String);

/// One input applied in this batch.
pub(super) struct Applied {
    pub topic: String,
    /// Its outputs (what the unit tests look at; `Plan::out` has them all in order).
    #[cfg_attr(not(test), allow(dead_code))]
    pub records: Vec<OutRecord>,
    pub outcome: &'static str,
}

/// Everything the batch will persist and produce.
#[derive(Default)]
pub(super) struct Plan {
    pub applied: Vec<Applied>,
    /// The conversations changed by this batch, as they are after it; `None` for one that
    /// was closed (deleted: a tombstone on the changelog).
    pub conversations: HashMap<ConversationKey, Option<Conversation>>,
    /// Every record to produce, in input order.
    pub out: Vec<OutRecord>,
    /// Per partition: where the batch started (to rewind after an abort) and the next
    /// offset to read once it commits.
    pub first_offsets: HashMap<(String, i32), i64>,
    pub next_offsets: HashMap<(String, i32), i64>,
    /// Kinds of the dead letters produced, for the metrics once committed.
    pub dead_letters: Vec<ErrorKind>,
    /// When each answered message was sent, for the end-to-end latency at commit.
    pub sent_times: Vec<DateTime<Utc>>,
}

/// What a plan may look at.
pub(super) struct Planner<'a> {
    pub kb: &'a Knowledge,
    pub orders: &'a dyn Orders,
    pub catalog: &'a dyn Catalog,
    pub retrieval: &'a RetrievalSettings,
    pub conversations: &'a dyn Conversations,
    pub cfg: &'a Config,
    pub oos_label: &'a str,
    pub allowed_agents: Option<&'a HashSet<String>>,
    pub now: DateTime<Utc>,
}

impl Planner<'_> {
    /// Plans a batch; `predictions` has one entry per `Work::Customer` item, in order.
    /// `found` has what retrieval found for each of them (missing ones found nothing).
    pub fn plan(
        &self,
        items: &[Item],
        predictions: Vec<Prediction>,
        found: Vec<Found>,
    ) -> Result<Plan, StateError> {
        let mut plan = Plan::default();
        let mut predictions = predictions.into_iter();
        let mut found = found.into_iter();
        for item in items {
            let r = &item.record;
            let tp = (r.topic.clone(), r.partition);
            plan.first_offsets.entry(tp.clone()).or_insert(r.offset);
            plan.next_offsets.insert(tp, r.offset + 1);
            let records = match &item.work {
                Work::Bad(e) => Err(e.clone()),
                Work::Customer(m) => match predictions.next() {
                    None => Err(DecodeError::new(
                        ErrorKind::InternalError,
                        "the intent model returned fewer predictions than texts",
                    )),
                    Some(prediction) => {
                        let found = found.next().unwrap_or_default();
                        let event = Event::Customer {
                            message: m,
                            prediction: &prediction,
                            found: &found,
                        };
                        let result = self.step(&m.conversation_id, event, r, &mut plan)?;
                        if let Ok((records, _)) = &result {
                            if records.iter().any(|o| o.topic == self.cfg.topics.replies) {
                                plan.sent_times
                                    .extend(sent_time(m.sent_at.as_deref(), r.timestamp_ms));
                            }
                        }
                        result
                    }
                },
                Work::Agent(a) => self.step(&a.conversation_id, Event::Agent(a), r, &mut plan)?,
            };
            let (records, outcome) = match records {
                Ok(done) => done,
                Err(e) => {
                    plan.dead_letters.push(e.kind);
                    let dl = output::dead_letter(r, &e, self.now, &self.cfg.topics.dead_letter);
                    (vec![dl], "dead_letter")
                }
            };
            plan.out.extend(records.iter().cloned());
            plan.applied.push(Applied {
                topic: r.topic.clone(),
                records,
                outcome,
            });
        }
        Ok(plan)
    }

    /// Runs one dialogue step against the conversation's current state. A refused event, a
    /// panic, or outputs too large to ever produce leave the state as it was and give the
    /// reason for the record's dead letter instead.
    #[allow(clippy::type_complexity)]
    fn step(
        &self,
        conversation_id: &str,
        event: Event<'_>,
        record: &Record,
        plan: &mut Plan,
    ) -> Result<Result<(Vec<OutRecord>, &'static str), DecodeError>, StateError> {
        let key = (record.partition, conversation_id.to_string());
        let current = match plan.conversations.remove(&key) {
            Some(c) => c.unwrap_or_default(),
            None => self
                .conversations
                .load(record.partition, conversation_id)?
                .unwrap_or_default(),
        };
        let closes = matches!(event, Event::Agent(a) if a.action == AgentActionKind::Close);
        let ctx = Context {
            kb: self.kb,
            orders: self.orders,
            catalog: self.catalog,
            retrieval: self.retrieval,
            settings: &self.cfg.dialogue,
            transcript_turns: self.cfg.limits.transcript_turns,
            oos_label: self.oos_label,
            allowed_agents: self.allowed_agents,
            now: self.now,
        };
        let before = current.clone();
        let stepped = guarded(|| {
            let step = dialogue::step(current, event, &ctx);
            let customer = match event {
                Event::Customer { message, .. } => message.customer_id.clone(),
                Event::Agent(_) => step.state.customer_id.clone(),
            };
            let records = output::records(
                &step.actions,
                conversation_id,
                customer.as_deref(),
                record,
                self.now,
                &self.cfg.topics,
            );
            (step, records)
        });
        let refused = match stepped {
            Ok((step, records)) => match (step.rejection, largest(&records)) {
                (Some(r), _) => DecodeError::new(r.kind, r.reason),
                (None, Some(big)) if big.size() > output::MAX_OUTPUT_BYTES => DecodeError::new(
                    ErrorKind::OutputTooLarge,
                    format!(
                        "the {} record for this input would be {} bytes; the limit is {}",
                        big.topic,
                        big.size(),
                        output::MAX_OUTPUT_BYTES
                    ),
                ),
                (None, _) => {
                    // A closed case is done: its state goes (the next message starts a new
                    // conversation), and the changelog forgets it.
                    let after = (!closes).then_some(step.state);
                    plan.conversations.insert(key, after);
                    return Ok(Ok((records, step.outcome.as_str())));
                }
            },
            Err(panic) => panic,
        };
        // A refused event for a conversation that does not exist creates none.
        if before != Conversation::default() {
            plan.conversations.insert(key, Some(before));
        }
        Ok(Err(refused))
    }
}

fn largest(records: &[OutRecord]) -> Option<&OutRecord> {
    records.iter().max_by_key(|r| r.size())
}

/// When the message was sent: its `sent_at`, or else the record's timestamp.
fn sent_time(sent_at: Option<&str>, timestamp_ms: Option<i64>) -> Option<DateTime<Utc>> {
    sent_at
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| timestamp_ms.and_then(DateTime::from_timestamp_millis))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::wire::{AgentActionKind, Order};

    /// Orders where looking up `A-99999` panics, standing in for a bug anywhere in a step.
    struct Booby;

    impl Orders for Booby {
        fn get(&self, order_id: &str) -> Option<Order> {
            assert!(order_id != "A-99999", "boom on {order_id}");
            None
        }
        fn open_orders_of(&self, _: &str) -> Vec<Order> {
            Vec::new()
        }
    }

    struct Stored(HashMap<String, Conversation>);

    impl Conversations for Stored {
        fn load(&self, partition: i32, id: &str) -> Result<Option<Conversation>, StateError> {
            // Every record of these tests is on partition 0: another partition is not
            // where a conversation lives.
            Ok(self.0.get(id).filter(|_| partition == 0).cloned())
        }
    }

    /// A conversation as the plan left it (present, not closed).
    fn conv<'p>(p: &'p Plan, id: &str) -> &'p Conversation {
        p.conversations[&(0, id.to_string())].as_ref().unwrap()
    }

    fn kb() -> Knowledge {
        Knowledge::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kb"),
            &[],
            "out_of_scope",
        )
        .unwrap()
    }

    fn record(topic: &str, offset: i64) -> Record {
        Record {
            topic: topic.into(),
            partition: 0,
            offset,
            key: Some(b"k".to_vec()),
            payload: Some(b"{}".to_vec()),
            timestamp_ms: None,
            signature: None,
        }
    }

    fn customer(offset: i64, conv: &str, text: &str) -> Item {
        Item {
            record: record("chat.inbound", offset),
            work: Work::Customer(InboundMessage {
                message_id: format!("m{offset}"),
                conversation_id: conv.into(),
                text: text.into(),
                customer_id: Some("cust-1".into()),
                channel: None,
                sent_at: None,
                locale: None,
            }),
        }
    }

    fn prediction(intent: &str) -> Prediction {
        Prediction {
            intent: intent.into(),
            confidence: 0.95,
            top: vec![],
        }
    }

    fn plan(items: &[Item], intents: &[&str], stored: Stored) -> Plan {
        let (kb, cfg) = (kb(), Config::default());
        let planner = Planner {
            kb: &kb,
            orders: &Booby,
            catalog: &crate::dialogue::answers::NoCatalog,
            retrieval: &RetrievalSettings::DEFAULT,
            conversations: &stored,
            cfg: &cfg,
            oos_label: "out_of_scope",
            allowed_agents: None,
            now: "2026-11-28T10:00:00Z".parse().unwrap(),
        };
        planner
            .plan(
                items,
                intents.iter().map(|i| prediction(i)).collect(),
                Vec::new(),
            )
            .unwrap()
    }

    fn kind(a: &Applied) -> Option<String> {
        a.records
            .first()?
            .headers
            .iter()
            .find(|(k, _)| k == "parley.error.kind")
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn a_panicking_record_is_dead_lettered_and_the_batch_goes_on() {
        let items = vec![
            customer(10, "c-1", "what payment methods do you accept"),
            customer(11, "c-2", "where is order A-99999"),
            customer(12, "c-1", "how do I reset my password"),
            customer(13, "c-2", "what payment methods do you accept"),
        ];
        let p = plan(
            &items,
            &[
                "check_payment_methods",
                "track_order",
                "recover_password",
                "check_payment_methods",
            ],
            Stored(HashMap::new()),
        );
        assert_eq!(p.applied.len(), 4);
        assert_eq!(kind(&p.applied[1]).as_deref(), Some("internal_error"));
        let reason = &p.applied[1].records[0].headers[0].1;
        assert!(reason.contains("boom on A-99999"), "{reason}");
        for i in [0, 2, 3] {
            assert_eq!(kind(&p.applied[i]), None);
            assert_eq!(p.applied[i].records[0].topic, "chat.replies");
        }
        // c-2 keeps no trace of the message that failed: one customer turn, its answer.
        let c2 = conv(&p, "c-2");
        assert_eq!(c2.last_message_id.as_deref(), Some("m13"));
        assert_eq!(c2.transcript.len(), 2);
        assert_eq!(conv(&p, "c-1").transcript.len(), 4);
        assert_eq!(p.dead_letters, vec![ErrorKind::InternalError]);
        let tp = ("chat.inbound".to_string(), 0);
        assert_eq!((p.first_offsets[&tp], p.next_offsets[&tp]), (10, 14));
        assert_eq!(p.out.len(), 4);
    }

    #[test]
    fn refused_and_oversized_events_change_nothing() {
        let agent = |offset: i64, conv: &str, action, text: &str| Item {
            record: record("chat.agent-actions", offset),
            work: Work::Agent(AgentAction {
                conversation_id: conv.into(),
                agent_id: "ann".into(),
                action,
                text: Some(text.into()),
                action_id: None,
                sent_at: None,
                force: true,
            }),
        };
        let mut stored = HashMap::new();
        let p = plan(
            &[customer(1, "c-1", "hi, can I pay with paypal")],
            &["check_payment_methods"],
            Stored(HashMap::new()),
        );
        stored.insert("c-1".to_string(), conv(&p, "c-1").clone());
        let items = vec![
            // A conversation nobody started: refused, and not created.
            agent(5, "ghost", AgentActionKind::TakeOver, ""),
            agent(6, "c-1", AgentActionKind::TakeOver, ""),
            // A reply larger than the broker takes.
            agent(7, "c-1", AgentActionKind::Reply, &"x".repeat(1_000_000)),
            agent(8, "c-1", AgentActionKind::Reply, "Ann here"),
        ];
        let p = plan(&items, &[], Stored(stored));
        assert_eq!(kind(&p.applied[0]).as_deref(), Some("agent_not_allowed"));
        assert!(!p.conversations.contains_key(&(0, "ghost".to_string())));
        assert!(p.applied[1].records.is_empty());
        assert_eq!(kind(&p.applied[2]).as_deref(), Some("output_too_large"));
        assert!(p.applied[2].records[0].size() < 600 * 1024);
        assert_eq!(p.applied[3].records[0].topic, "chat.replies");
        let turns = &conv(&p, "c-1").transcript;
        assert_eq!(turns.last().unwrap().text, "Ann here");
        assert!(turns.iter().all(|t| t.text.len() < 100));
    }

    #[test]
    fn missing_predictions_are_internal_errors_and_a_close_deletes() {
        let p = plan(&[customer(4, "c-9", "hello")], &[], Stored(HashMap::new()));
        assert_eq!(p.applied.len(), 1);
        assert_eq!(kind(&p.applied[0]).as_deref(), Some("internal_error"));

        let agent = |offset: i64, action| Item {
            record: record("chat.agent-actions", offset),
            work: Work::Agent(AgentAction {
                conversation_id: "c-1".into(),
                agent_id: "ann".into(),
                action,
                text: None,
                action_id: None,
                sent_at: None,
                force: true,
            }),
        };
        let first = plan(
            &[customer(1, "c-1", "can I pay with paypal")],
            &["check_payment_methods"],
            Stored(HashMap::new()),
        );
        let stored = Stored(HashMap::from([(
            "c-1".to_string(),
            conv(&first, "c-1").clone(),
        )]));
        let p = plan(
            &[
                agent(2, AgentActionKind::TakeOver),
                agent(3, AgentActionKind::Close),
            ],
            &[],
            stored,
        );
        assert_eq!(kind(&p.applied[0]), None);
        assert_eq!(kind(&p.applied[1]), None);
        // Closed: deleted, which the changelog carries as a tombstone.
        assert_eq!(p.conversations[&(0, "c-1".to_string())], None);
        // The same id on another partition is another conversation: not found there.
        let other = Item {
            record: Record {
                partition: 5,
                ..record("chat.agent-actions", 9)
            },
            ..agent(9, AgentActionKind::TakeOver)
        };
        let stored = Stored(HashMap::from([(
            "c-1".to_string(),
            conv(&first, "c-1").clone(),
        )]));
        let p = plan(&[other], &[], stored);
        assert_eq!(kind(&p.applied[0]).as_deref(), Some("agent_not_allowed"));
    }
}
