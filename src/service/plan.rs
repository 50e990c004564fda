//! The pure part of a batch: from decoded records and their predictions to the new
//! conversation states, each input's outputs and the offsets to commit. Nothing here talks
//! to Kafka or writes to disk (conversations are read through a trait), so every path of a
//! batch, a panicking record included, is a unit test; `process` only persists and commits
//! what the plan says.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::guard::guarded;
use super::output;
use crate::config::Config;
use crate::dialogue::{self, Context, Conversation, Event, Orders};
use crate::kafka::Record;
use crate::knowledge::Knowledge;
use crate::model::Prediction;
use crate::state::{OutRecord, StateError, Store};
use crate::wire::{AgentAction, DecodeError, ErrorKind, InboundMessage};

/// What a consumed record turned out to be.
pub(super) enum Work {
    /// Applied before a crash: re-send exactly what was produced then.
    Replay(Vec<OutRecord>),
    Customer(InboundMessage),
    Agent(AgentAction),
    Bad(DecodeError),
}

pub(super) struct Item {
    pub record: Record,
    pub work: Work,
}

/// Read access to the stored conversations.
pub(super) trait Conversations {
    fn load(&self, id: &str) -> Result<Option<Conversation>, StateError>;
}

impl Conversations for Store {
    fn load(&self, id: &str) -> Result<Option<Conversation>, StateError> {
        self.conversation(id)
    }
}

/// One input applied in this batch (replays are not: they were applied before).
pub(super) struct Applied {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Its outputs: the outbox entry that makes a replay exact.
    pub records: Vec<OutRecord>,
    pub outcome: &'static str,
}

/// Everything the batch will persist and produce.
#[derive(Default)]
pub(super) struct Plan {
    pub applied: Vec<Applied>,
    /// The conversations changed by this batch, as they are after it.
    pub conversations: HashMap<String, Conversation>,
    /// Every record to produce, in input order (replays included).
    pub out: Vec<OutRecord>,
    /// Per partition: where the batch started (to rewind after an abort) and the next
    /// offset to read once it commits.
    pub first_offsets: HashMap<(String, i32), i64>,
    pub next_offsets: HashMap<(String, i32), i64>,
    /// Kinds of the dead letters produced, for the metrics once committed.
    pub dead_letters: Vec<ErrorKind>,
    pub replayed: usize,
    /// When each answered message was sent, for the end-to-end latency at commit.
    pub sent_times: Vec<DateTime<Utc>>,
}

/// What a plan may look at.
pub(super) struct Planner<'a> {
    pub kb: &'a Knowledge,
    pub orders: &'a dyn Orders,
    pub conversations: &'a dyn Conversations,
    pub cfg: &'a Config,
    pub oos_label: &'a str,
    pub allowed_agents: Option<&'a HashSet<String>>,
    pub now: DateTime<Utc>,
}

impl Planner<'_> {
    /// Plans a batch; `predictions` has one entry per `Work::Customer` item, in order.
    pub fn plan(&self, items: &[Item], predictions: Vec<Prediction>) -> Result<Plan, StateError> {
        let mut plan = Plan::default();
        let mut predictions = predictions.into_iter();
        for item in items {
            let r = &item.record;
            let tp = (r.topic.clone(), r.partition);
            plan.first_offsets.entry(tp.clone()).or_insert(r.offset);
            plan.next_offsets.insert(tp, r.offset + 1);
            let records = match &item.work {
                Work::Replay(records) => {
                    plan.replayed += 1;
                    plan.out.extend(records.iter().cloned());
                    continue;
                }
                Work::Bad(e) => Err(e.clone()),
                Work::Customer(m) => match predictions.next() {
                    None => Err(DecodeError::new(
                        ErrorKind::InternalError,
                        "the intent model returned fewer predictions than texts",
                    )),
                    Some(prediction) => {
                        let event = Event::Customer {
                            message: m,
                            prediction: &prediction,
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
                partition: r.partition,
                offset: r.offset,
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
        let current = match plan.conversations.remove(conversation_id) {
            Some(c) => c,
            None => self
                .conversations
                .load(conversation_id)?
                .unwrap_or_default(),
        };
        let ctx = Context {
            kb: self.kb,
            orders: self.orders,
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
                    plan.conversations
                        .insert(conversation_id.to_string(), step.state);
                    return Ok(Ok((records, step.outcome.as_str())));
                }
            },
            Err(panic) => panic,
        };
        // A refused event for a conversation that does not exist creates none.
        if before != Conversation::default() {
            plan.conversations
                .insert(conversation_id.to_string(), before);
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
        fn load(&self, id: &str) -> Result<Option<Conversation>, StateError> {
            Ok(self.0.get(id).cloned())
        }
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
            conversations: &stored,
            cfg: &cfg,
            oos_label: "out_of_scope",
            allowed_agents: None,
            now: "2026-11-28T10:00:00Z".parse().unwrap(),
        };
        planner
            .plan(items, intents.iter().map(|i| prediction(i)).collect())
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
        let c2 = &p.conversations["c-2"];
        assert_eq!(c2.last_message_id.as_deref(), Some("m13"));
        assert_eq!(c2.transcript.len(), 2);
        assert_eq!(p.conversations["c-1"].transcript.len(), 4);
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
        stored.insert("c-1".to_string(), p.conversations["c-1"].clone());
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
        assert!(!p.conversations.contains_key("ghost"));
        assert!(p.applied[1].records.is_empty());
        assert_eq!(kind(&p.applied[2]).as_deref(), Some("output_too_large"));
        assert!(p.applied[2].records[0].size() < 600 * 1024);
        assert_eq!(p.applied[3].records[0].topic, "chat.replies");
        let turns = &p.conversations["c-1"].transcript;
        assert_eq!(turns.last().unwrap().text, "Ann here");
        assert!(turns.iter().all(|t| t.text.len() < 100));
    }

    #[test]
    fn replays_resend_the_outbox_and_missing_predictions_are_internal_errors() {
        let stored = OutRecord {
            topic: "chat.replies".into(),
            key: None,
            value: b"stored".to_vec(),
            headers: vec![],
        };
        let items = vec![
            Item {
                record: record("chat.inbound", 3),
                work: Work::Replay(vec![stored.clone()]),
            },
            customer(4, "c-9", "hello"),
        ];
        let p = plan(&items, &[], Stored(HashMap::new()));
        assert_eq!(p.replayed, 1);
        assert_eq!(p.out[0], stored);
        assert_eq!(p.applied.len(), 1);
        assert_eq!(kind(&p.applied[0]).as_deref(), Some("internal_error"));
    }
}
