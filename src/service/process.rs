//! One batch: decode, classify, step the dialogue, persist, produce in a transaction.
//!
//! No single record can stop the loop: a record that is bad, refused (key, signature,
//! identity, agent rights) or that makes Parley itself panic is dead-lettered with its kind
//! and reason, and the rest of the batch goes on.

use chrono::Utc;
use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use tokio::time::Instant;

use super::guard::guarded;
use super::plan::{Item, Plan, Planner, Work};
use super::{Service, ServiceError};
use crate::kafka::{KafkaError, Record};
use crate::wire::{check_key, decode_agent_action, decode_inbound, DecodeError, ErrorKind};

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

    /// After a failed batch: each text alone, so that only a message the model fails on is
    /// dead-lettered (`processing_error`) and the others are answered.
    async fn classify_one_by_one(
        &self,
        items: &mut [Item],
    ) -> Result<Vec<crate::model::Prediction>, ServiceError> {
        let mut predictions = Vec::new();
        for item in items.iter_mut() {
            let Work::Customer(m) = &item.work else {
                continue;
            };
            match self.model.classify(vec![m.text.clone()]).await {
                Ok(mut p) if p.len() == 1 => predictions.push(p.remove(0)),
                Err(e @ crate::model::ModelError::BackendStopped) => return Err(e.into()),
                other => {
                    let why = match other {
                        Err(e) => e.to_string(),
                        Ok(_) => "no prediction".into(),
                    };
                    item.work = Work::Bad(DecodeError::new(
                        ErrorKind::ProcessingError,
                        format!("intent model failed on this message: {why}"),
                    ));
                }
            }
        }
        Ok(predictions)
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
                    tracing::error!(error = %e, "intent model failed on a batch; classifying its texts one by one");
                    self.metrics.failures.with_label_values(&["model"]).inc();
                    predictions = self.classify_one_by_one(&mut items).await?;
                }
            }
            self.metrics
                .inference_seconds
                .observe(started.elapsed().as_secs_f64());
        }

        let planner = Planner {
            kb: &self.kb,
            orders: self.store.as_ref(),
            conversations: self.store.as_ref(),
            cfg: &self.cfg,
            oos_label: &self.oos_label,
            allowed_agents: self.guard.allowed_agents.as_ref(),
            now: Utc::now(),
        };
        let plan = block(|| planner.plan(&items, predictions))?;
        let mut state = self.store.batch();
        for a in &plan.applied {
            state.put_outbox(&a.topic, a.partition, a.offset, &a.records);
            state.put_offset(&a.topic, a.partition, a.offset + 1);
        }
        for (id, c) in &plan.conversations {
            state.put_conversation(id, c);
        }
        // State, applied offsets and outbox first: if the transaction below never commits,
        // the replay finds the outbox and re-sends it instead of applying the input twice.
        block(|| self.store.write(state))?;
        crash_point();

        let started = Instant::now();
        match self.commit(&plan.out, &plan.next_offsets).await {
            Ok(()) => {
                self.metrics
                    .transaction_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.metrics
                    .transactions
                    .with_label_values(&["committed"])
                    .inc();
                self.guard.committed(&self.health);
                for ((topic, partition), next) in &plan.next_offsets {
                    block(|| self.store.prune_outbox(topic, *partition, *next))?;
                }
                self.count_committed(&plan);
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
                for ((topic, partition), first) in &plan.first_offsets {
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

    /// Counts what a committed batch did (only then: an aborted batch is read again).
    fn count_committed(&self, plan: &Plan) {
        for a in &plan.applied {
            self.metrics
                .messages
                .with_label_values(&[a.topic.as_str(), a.outcome])
                .inc();
        }
        for kind in &plan.dead_letters {
            self.metrics
                .dead_letters
                .with_label_values(&[kind.as_str()])
                .inc();
        }
        self.metrics.replayed.inc_by(plan.replayed as u64);
        for r in &plan.out {
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
        for sent in &plan.sent_times {
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
            tracing::error!(
                batch = at,
                "PARLEY_CRASH_BEFORE_COMMIT: aborting before the commit"
            );
            std::process::abort();
        }
    }
}

/// Runs blocking work (librdkafka transaction calls, RocksDB) without stalling the runtime.
fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
