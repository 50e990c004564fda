//! One batch: decode, classify, step the dialogue, persist, produce in a transaction.
//!
//! No single record can stop the loop: a record that is bad, refused (key, signature,
//! identity, agent rights) or that makes Parley itself panic is dead-lettered with its kind
//! and reason, and the rest of the batch goes on.

use chrono::Utc;
use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use tokio::time::Instant;

use super::follow_up::follow_up_queries;
use super::guard::guarded;
use super::plan::{Item, Plan, Planner, Work};
use super::{Service, ServiceError};
use crate::dialogue::points_back;
use crate::kafka::{KafkaError, Record};
use crate::model::ModelError;
use crate::retrieval::Hit;
use crate::wire::{check_key, decode_agent_action, decode_inbound, DecodeError, ErrorKind};

use super::commit::{Change, ChangelogEnds, TXN_TIMEOUT};
use crate::state::encode_conversation;

impl Service {
    /// After a failed batch: each text alone, so that only a message the model fails on is
    /// dead-lettered (`processing_error`) and the others are answered.
    async fn classify_one_by_one(
        &self,
        items: &mut [Item],
    ) -> Result<Vec<crate::wire::Prediction>, ServiceError> {
        let mut predictions = Vec::new();
        for item in items.iter_mut() {
            let Work::Customer(m) = &item.work else {
                continue;
            };
            match self.model.classify(vec![m.text.clone()]).await {
                Ok(mut p) if p.len() == 1 => predictions.push(p.remove(0)),
                Err(e @ ModelError::BackendStopped) => return Err(e.into()),
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

    /// `run` on `texts` in forward passes of at most `max_batch_size` (a transaction may hold
    /// several batches), the outputs in order.
    async fn in_passes<T, F: std::future::Future<Output = Result<Vec<T>, ModelError>>>(
        &self,
        texts: Vec<String>,
        run: impl Fn(Vec<String>) -> F,
    ) -> Result<Vec<T>, ModelError> {
        let mut out = Vec::with_capacity(texts.len());
        for pass in passes(texts, self.cfg.batching.max_batch_size) {
            out.extend(run(pass).await?);
        }
        Ok(out)
    }

    /// Searches the articles and products for each customer text (in forward passes of the
    /// encoder), unless there are none. A message that leans on what came before ("and for
    /// teachers?", "can it go in the oven?") and finds nothing of its own is searched again
    /// together with the customer's last question on the subject, in a second pass for
    /// those only. A failure costs the answers from knowledge for this batch, not the
    /// batch: the intent path answers.
    async fn retrieve(&self, items: &[Item]) -> Result<Vec<crate::retrieval::Found>, ServiceError> {
        let texts = customer_texts(items);
        if texts.is_empty()
            || (self.retriever.articles.is_empty() && self.retriever.products.is_empty())
        {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let messages = texts.len();
        let Some(mut found) = self.search_all(texts.clone()).await? else {
            return Ok(Vec::new());
        };
        // Searched again with the subject before it: a message its own search left without
        // an article or a product, or a question pointing back ("do they expire?" after gift
        // cards, which finds loyalty points by a weak margin).
        let wanted: Vec<bool> = found
            .iter()
            .zip(&texts)
            .map(|(f, text)| {
                let article = f.article();
                let product = f.products.first().is_some_and(|h| h.confident);
                (article.is_none() && !product)
                    || (points_back(text) && article.is_some_and(Hit::weak))
            })
            .collect();
        let with_subject = if wanted.contains(&true) {
            block(|| follow_up_queries(items, self.store.as_ref(), &wanted))
        } else {
            Vec::new()
        };
        let leaning: Vec<(usize, String)> = with_subject
            .into_iter()
            .enumerate()
            .filter_map(|(i, q)| Some((i, q?)))
            .collect();
        if !leaning.is_empty() {
            let queries = leaning.iter().map(|(_, q)| q.clone()).collect();
            if let Some(again) = self.search_all(queries).await? {
                for ((i, _), f) in leaning.iter().zip(again) {
                    found[*i].with_previous = Some(Box::new(f));
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics
            .retrieval_seconds
            .observe(elapsed / messages as f64);
        Ok(found)
    }

    /// Embeds and searches `queries`, each with its typos mended first ("ketle pro" as
    /// "kettle pro", kept as `searched_as`). `None` when the encoder failed: counted and
    /// logged here.
    async fn search_all(
        &self,
        mut queries: Vec<String>,
    ) -> Result<Option<Vec<crate::retrieval::Found>>, ServiceError> {
        let mended: Vec<Option<String>> = queries
            .iter_mut()
            .map(|q| {
                let m = self.retriever.mend(q);
                if let Some(m) = &m {
                    q.clone_from(m);
                }
                m
            })
            .collect();
        let vectors = match self
            .in_passes(queries.clone(), |t| self.model.embed(t))
            .await
        {
            Ok(v) => v,
            Err(e @ ModelError::BackendStopped) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "embedding a batch for retrieval failed; answering without the knowledge base");
                self.metrics
                    .failures
                    .with_label_values(&["retrieval"])
                    .inc();
                return Ok(None);
            }
        };
        let retriever = &self.retriever;
        Ok(Some(block(|| {
            queries
                .iter()
                .zip(&vectors)
                .zip(mended)
                .map(|((t, v), m)| {
                    let mut f = retriever.search(t, Some(v)).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "retrieval failed for a message");
                        crate::retrieval::Found::default()
                    });
                    f.searched_as = m;
                    f
                })
                .collect()
        })))
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
        let began = Instant::now();
        let records = batch.len();
        self.guard.busy(&self.health);
        let mut items = Vec::with_capacity(batch.len());
        for record in batch {
            let work = guarded(|| self.validate(&record)).unwrap_or_else(Work::Bad);
            items.push(Item { record, work });
        }

        let texts = customer_texts(&items);
        let mut predictions = Vec::new();
        if !texts.is_empty() {
            let started = Instant::now();
            let classify = |pass: Vec<String>| {
                self.metrics.batch_size.observe(pass.len() as f64);
                self.model.classify(pass)
            };
            match self.in_passes(texts, classify).await {
                Ok(p) => predictions = p,
                // The model thread is gone: nothing can be answered, so stop (and be
                // restarted) rather than dead-letter every message from now on.
                Err(e @ ModelError::BackendStopped) => return Err(e.into()),
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

        let classified = began.elapsed();
        let found = self.retrieve(&items).await?;
        let planner = Planner {
            kb: &self.kb,
            orders: self.store.as_ref(),
            catalog: self.store.as_ref(),
            retrieval: &self.cfg.retrieval.scoring,
            conversations: self.store.as_ref(),
            cfg: &self.cfg,
            oos_label: &self.oos_label,
            allowed_agents: self.guard.allowed_agents.as_ref(),
            now: Utc::now(),
        };
        let plan = block(|| planner.plan(&items, predictions, found))?;
        let changes: Vec<Change> = plan
            .conversations
            .iter()
            .map(|((partition, id), c)| Change {
                partition: *partition,
                id: id.clone(),
                value: c.as_ref().map(encode_conversation),
            })
            .collect();

        // Outputs, changelog and offsets in one transaction; the local copy is written only
        // once it has committed. If this instance dies in between, the local copy is behind
        // the changelog, and the next restore of the partition reads the difference.
        let planned = began.elapsed();
        let started = Instant::now();
        match self.commit(&plan.out, &changes, &plan.next_offsets).await {
            Ok(ends) => {
                let committed = started.elapsed();
                self.metrics
                    .transaction_seconds
                    .observe(committed.as_secs_f64());
                self.metrics
                    .transactions
                    .with_label_values(&["committed"])
                    .inc();
                self.guard.committed(&self.health);
                block(|| self.write_local(&changes, &ends))?;
                self.tasks()
                    .committed(&plan.next_offsets, &self.cfg.topics.inbound);
                self.count_committed(&plan);
                // Where a slow reply's time went, when one is looked for (RUST_LOG=debug).
                tracing::debug!(
                    records,
                    decode_classify_ms = classified.as_secs_f64() * 1e3,
                    plan_ms = (planned - classified).as_secs_f64() * 1e3,
                    commit_ms = committed.as_secs_f64() * 1e3,
                    total_ms = began.elapsed().as_secs_f64() * 1e3,
                    "batch committed"
                );
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
                // Nothing of the batch was kept: re-read it from its start. A seek that
                // fails would let the consumer read on past the aborted batch and lose its
                // outputs: stop instead; a restart resumes from the committed offsets.
                for ((topic, partition), first) in &plan.first_offsets {
                    let consumer = if *topic == self.cfg.topics.inbound {
                        self.consumer.as_ref() as &dyn SeekTo
                    } else {
                        self.agents.as_ref() as &dyn SeekTo
                    };
                    block(|| consumer.seek_to(topic, *partition, *first)).map_err(
                        KafkaError::client(format!(
                            "rewinding {topic}/{partition} after an aborted transaction"
                        )),
                    )?;
                }
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }

    /// Writes a committed batch's conversation changes to the local copy, each partition's
    /// changelog position with them.
    pub(super) fn write_local(
        &self,
        changes: &[Change],
        ends: &ChangelogEnds,
    ) -> Result<(), ServiceError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut state = self.store.batch();
        for c in changes {
            match &c.value {
                Some(v) => state.put_conversation_bytes(c.partition, c.id.as_bytes(), v),
                None => state.delete_conversation(c.partition, c.id.as_bytes()),
            }
        }
        for (partition, next) in ends {
            state.put_changelog_position(&self.changelog, *partition, *next);
        }
        self.store.write(state)?;
        Ok(())
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

/// Seeking either consumer (the group's, or the agent-actions reader) back after an abort.
trait SeekTo {
    fn seek_to(&self, topic: &str, partition: i32, offset: i64) -> rdkafka::error::KafkaResult<()>;
}

impl<C: rdkafka::consumer::ConsumerContext + 'static> SeekTo
    for rdkafka::consumer::StreamConsumer<C>
{
    fn seek_to(&self, topic: &str, partition: i32, offset: i64) -> rdkafka::error::KafkaResult<()> {
        self.seek(topic, partition, Offset::Offset(offset), TXN_TIMEOUT)
    }
}

/// `texts` in order, cut into runs of at most `max` (without copying them).
fn passes(mut texts: Vec<String>, max: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    while texts.len() > max {
        let rest = texts.split_off(max);
        out.push(std::mem::replace(&mut texts, rest));
    }
    if !texts.is_empty() {
        out.push(texts);
    }
    out
}

/// The texts of the batch's customer messages, in order.
fn customer_texts(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match &i.work {
            Work::Customer(m) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

/// Runs blocking work (librdkafka transaction calls, RocksDB) without stalling the runtime.
fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[cfg(test)]
mod tests {
    use super::passes;

    #[test]
    fn passes_keep_the_order_and_the_limit() {
        let texts: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let got = passes(texts.clone(), 3);
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(got.concat(), texts);
        assert!(passes(Vec::new(), 3).is_empty());
        assert_eq!(passes(texts.clone(), 7), vec![texts]);
    }
}
