//! One batch: decode, classify, step the dialogue, persist, produce in a transaction.
//!
//! No single record can stop the loop: a record that is bad, refused (key, signature,
//! identity, agent rights) or that makes Parley itself panic is dead-lettered with its kind
//! and reason, and the rest of the batch goes on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use tokio::time::Instant;

use super::guard::guarded;
use super::output;
use super::{Service, ServiceError};
use crate::dialogue::{self, Context, Conversation, Event};
use crate::kafka::{KafkaError, Record};
use crate::state::OutRecord;
use crate::wire::{
    check_key, decode_agent_action, decode_inbound, AgentAction, DecodeError, ErrorKind,
    InboundMessage,
};

enum Work {
    /// Applied before a crash: re-send exactly what was produced then.
    Replay(Vec<OutRecord>),
    Customer(InboundMessage),
    Agent(AgentAction),
    Bad(DecodeError),
}

struct Item {
    record: Record,
    work: Work,
}

use super::commit::TXN_TIMEOUT;

impl Service {
    fn decode(&self, record: &Record) -> Result<Work, ServiceError> {
        if let Some(next) = self.store.applied_offset(&record.topic, record.partition)? {
            if record.offset < next {
                let stored = self
                    .store
                    .outbox(&record.topic, record.partition, record.offset)?;
                return Ok(Work::Replay(stored.unwrap_or_default()));
            }
        }
        Ok(guarded(|| self.validate(record)).unwrap_or_else(Work::Bad))
    }

    /// Decodes and checks one record: limits, key, and (signed mode) the gateway signature.
    fn validate(&self, record: &Record) -> Work {
        let payload = record.payload.as_deref();
        let limits = &self.cfg.limits;
        let checked = if record.topic == self.cfg.topics.inbound {
            decode_inbound(payload, limits).and_then(|m| {
                check_key(record.key.as_deref(), &m.conversation_id)?;
                self.guard.verify(&m, record.signature.as_deref())?;
                Ok(Work::Customer(m))
            })
        } else {
            decode_agent_action(payload, limits).and_then(|a| {
                check_key(record.key.as_deref(), &a.conversation_id)?;
                Ok(Work::Agent(a))
            })
        };
        checked.unwrap_or_else(Work::Bad)
    }

    pub(super) async fn process(&self, batch: Vec<Record>) -> Result<(), ServiceError> {
        self.guard.busy(&self.health);
        let mut items = Vec::with_capacity(batch.len());
        for record in batch {
            let work = self.decode(&record)?;
            items.push(Item { record, work });
        }

        // One forward pass for every customer text in the batch.
        let texts: Vec<String> = items
            .iter()
            .filter_map(|i| match &i.work {
                Work::Customer(m) => Some(m.text.clone()),
                _ => None,
            })
            .collect();
        let mut predictions = Vec::new();
        if !texts.is_empty() {
            self.metrics.batch_size.observe(texts.len() as f64);
            let started = Instant::now();
            match self.model.classify(texts).await {
                Ok(p) => predictions = p,
                // The model thread is gone: nothing can be answered, so stop (and be
                // restarted) rather than dead-letter every message from now on.
                Err(e @ crate::model::ModelError::BackendStopped) => return Err(e.into()),
                Err(e) => {
                    // Nothing lost: each message goes to the dead-letter topic with the reason.
                    tracing::error!(error = %e, "intent model failed on a batch; its messages are dead-lettered");
                    self.metrics.failures.with_label_values(&["model"]).inc();
                    for item in &mut items {
                        if matches!(item.work, Work::Customer(_)) {
                            item.work = Work::Bad(DecodeError::new(
                                ErrorKind::ProcessingError,
                                format!("intent model failed: {e}"),
                            ));
                        }
                    }
                }
            }
            self.metrics
                .inference_seconds
                .observe(started.elapsed().as_secs_f64());
        }

        let now = Utc::now();
        let mut predictions = predictions.into_iter();
        let mut conversations: HashMap<String, Conversation> = HashMap::new();
        let mut state = self.store.batch();
        let mut out: Vec<OutRecord> = Vec::new();
        let mut next_offsets: HashMap<(String, i32), i64> = HashMap::new();
        let mut first_offsets: HashMap<(String, i32), i64> = HashMap::new();
        let mut outcomes: Vec<(String, &'static str)> = Vec::new();
        // When each answered message was sent, for the end-to-end latency at commit.
        let mut sent_times: Vec<DateTime<Utc>> = Vec::new();
        for item in &items {
            let r = &item.record;
            let tp = (r.topic.clone(), r.partition);
            first_offsets.entry(tp.clone()).or_insert(r.offset);
            next_offsets.insert(tp, r.offset + 1);
            let (records, outcome) = match &item.work {
                Work::Replay(records) => {
                    self.metrics.replayed.inc();
                    out.extend(records.iter().cloned());
                    continue;
                }
                Work::Bad(e) => (vec![self.dead_letter(r, e, now)], "dead_letter"),
                Work::Customer(m) => match predictions.next() {
                    None => {
                        let e = DecodeError::new(
                            ErrorKind::InternalError,
                            "the intent model returned fewer predictions than texts",
                        );
                        (vec![self.dead_letter(r, &e, now)], "dead_letter")
                    }
                    Some(prediction) => {
                        let event = Event::Customer {
                            message: m,
                            prediction: &prediction,
                        };
                        let (records, outcome) =
                            self.step(&m.conversation_id, event, r, now, &mut conversations)?;
                        if records.iter().any(|o| o.topic == self.cfg.topics.replies) {
                            sent_times.extend(sent_time(m.sent_at.as_deref(), r.timestamp_ms));
                        }
                        (records, outcome)
                    }
                },
                Work::Agent(a) => self.step(
                    &a.conversation_id,
                    Event::Agent(a),
                    r,
                    now,
                    &mut conversations,
                )?,
            };
            state.put_outbox(&r.topic, r.partition, r.offset, &records);
            state.put_offset(&r.topic, r.partition, r.offset + 1);
            outcomes.push((r.topic.clone(), outcome));
            out.extend(records);
        }
        for (id, c) in &conversations {
            state.put_conversation(id, c);
        }
        // State, applied offsets and outbox first: if the transaction below never commits,
        // the replay finds the outbox and re-sends it instead of applying the input twice.
        block(|| self.store.write(state))?;
        crash_point();

        let started = Instant::now();
        match self.commit(&out, &next_offsets).await {
            Ok(()) => {
                self.metrics
                    .transaction_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.metrics
                    .transactions
                    .with_label_values(&["committed"])
                    .inc();
                self.guard.committed(&self.health);
                for ((topic, partition), next) in &next_offsets {
                    block(|| self.store.prune_outbox(topic, *partition, *next))?;
                }
                self.count_committed(&out, &outcomes, &sent_times);
                Ok(())
            }
            Err(e) if e.is_fatal() => {
                self.metrics.failures.with_label_values(&["fatal"]).inc();
                Err(e.into())
            }
            Err(e) => {
                self.metrics
                    .transactions
                    .with_label_values(&["aborted"])
                    .inc();
                let wait = self.guard.aborted(&self.health, &e.to_string());
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64,
                    "transaction aborted; the batch will be re-read");
                // Re-read from the batch's start; the outbox makes that replay exact. A
                // partition that moved to another member is resumed there instead.
                // A seek that fails would let the consumer read on past the aborted batch and
                // lose its outputs: stop instead; a restart resumes from the committed offsets.
                for ((topic, partition), first) in &first_offsets {
                    block(|| {
                        self.consumer
                            .seek(topic, *partition, Offset::Offset(*first), TXN_TIMEOUT)
                    })
                    .map_err(KafkaError::client(format!(
                        "rewinding {topic}/{partition} after an aborted transaction"
                    )))?;
                }
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }

    /// A dead letter for `record`, counted by kind.
    fn dead_letter(&self, record: &Record, e: &DecodeError, now: DateTime<Utc>) -> OutRecord {
        self.metrics
            .dead_letters
            .with_label_values(&[e.kind.as_str()])
            .inc();
        output::dead_letter(record, e, now, &self.cfg.topics.dead_letter)
    }

    /// Runs one dialogue step against the conversation's current state. A refused event, a
    /// panic, or outputs too large to ever produce leave the state as it was and give the
    /// record's dead letter instead.
    fn step(
        &self,
        conversation_id: &str,
        event: Event<'_>,
        record: &Record,
        now: DateTime<Utc>,
        conversations: &mut HashMap<String, Conversation>,
    ) -> Result<(Vec<OutRecord>, &'static str), ServiceError> {
        let current = match conversations.remove(conversation_id) {
            Some(c) => c,
            None => block(|| self.store.conversation(conversation_id))?.unwrap_or_default(),
        };
        let ctx = Context {
            kb: &self.kb,
            orders: self.store.as_ref(),
            settings: &self.cfg.dialogue,
            transcript_turns: self.cfg.limits.transcript_turns,
            oos_label: &self.oos_label,
            allowed_agents: self.guard.allowed_agents.as_ref(),
            now,
        };
        let before = current.clone();
        let stepped = guarded(|| {
            let step = block(|| dialogue::step(current, event, &ctx));
            let customer = match event {
                Event::Customer { message, .. } => message.customer_id.clone(),
                Event::Agent(_) => step.state.customer_id.clone(),
            };
            let records = output::records(
                &step.actions,
                conversation_id,
                customer.as_deref(),
                record,
                now,
                &self.cfg.topics,
            );
            (step, records)
        });
        let refused = match stepped {
            Ok((step, _)) if step.rejection.is_some() => {
                let r = step.rejection.expect("checked");
                DecodeError::new(r.kind, r.reason)
            }
            Ok((step, records)) => match records.iter().find(|r| r.size() > output::MAX_OUTPUT_BYTES) {
                None => {
                    conversations.insert(conversation_id.to_string(), step.state);
                    return Ok((records, step.outcome.as_str()));
                }
                Some(big) => DecodeError::new(
                    ErrorKind::OutputTooLarge,
                    format!(
                        "the {} record for this input would be {} bytes; the limit is {}",
                        big.topic,
                        big.size(),
                        output::MAX_OUTPUT_BYTES
                    ),
                ),
            },
            Err(panic) => panic,
        };
        // A refused event for a conversation that does not exist creates none.
        if before != Conversation::default() {
            conversations.insert(conversation_id.to_string(), before);
        }
        Ok((vec![self.dead_letter(record, &refused, now)], "dead_letter"))
    }

    fn count_committed(
        &self,
        out: &[OutRecord],
        outcomes: &[(String, &'static str)],
        sent_times: &[DateTime<Utc>],
    ) {
        for (topic, outcome) in outcomes {
            self.metrics
                .messages
                .with_label_values(&[topic.as_str(), outcome])
                .inc();
        }
        for r in out {
            self.metrics
                .records_out
                .with_label_values(&[r.topic.as_str()])
                .inc();
            if r.topic == self.cfg.topics.escalations {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.value) {
                    let kind = v["type"].as_str().unwrap_or("");
                    let reason = v["reason"].as_str().unwrap_or("");
                    self.metrics
                        .escalations
                        .with_label_values(&[kind, reason])
                        .inc();
                }
            } else if r.topic == self.cfg.topics.order_requests {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.value) {
                    let kind = v["type"].as_str().unwrap_or("");
                    self.metrics.order_requests.with_label_values(&[kind]).inc();
                }
            }
        }
        let committed = Utc::now();
        for sent in sent_times {
            let seconds = (committed - *sent).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics.end_to_end_seconds.observe(seconds);
        }
    }
}

/// Fault injection for the crash tests: with `PARLEY_CRASH_BEFORE_COMMIT=N` the process
/// aborts after writing the state of its Nth batch and before committing its transaction,
/// the one window where only the outbox keeps the outputs exactly-once.
fn crash_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static BATCHES: AtomicU64 = AtomicU64::new(0);
    let at = AT.get_or_init(|| {
        std::env::var("PARLEY_CRASH_BEFORE_COMMIT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = at {
        if BATCHES.fetch_add(1, Ordering::Relaxed) + 1 == *at {
            eprintln!("parley: PARLEY_CRASH_BEFORE_COMMIT={at}: aborting before the commit");
            std::process::abort();
        }
    }
}

/// Runs blocking work (librdkafka transaction calls, RocksDB) without stalling the runtime.
fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// When the message was sent: its `sent_at`, or else the record's timestamp.
fn sent_time(sent_at: Option<&str>, timestamp_ms: Option<i64>) -> Option<DateTime<Utc>> {
    sent_at
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| timestamp_ms.and_then(DateTime::from_timestamp_millis))
}
