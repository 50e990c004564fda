//! Materialises the global tables every instance keeps whole: `commerce.orders` into the
//! orders table, `kb.articles` and `commerce.products` into the knowledge family and its
//! search indexes. Not part of the conversation transactions: an upsert by key is idempotent, so the table keeps its own "next offset to
//! read" per partition in the same RocksDB batch as the data and resumes from it, even with
//! a fresh consumer group. Records are applied in batches (one synced write each), and a bad
//! order record is dead-lettered (at least once).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::Instant;

use super::retry::{self, Backoff, STARTUP_DEADLINE};
use super::{output, ServiceError};
use crate::config::Config;
use crate::kafka::{client_config, future_record, KafkaError, ReadToEnd, Record};
use crate::metrics::{Health, Metrics};
use crate::state::{StateBatch, StateError, Store};
use crate::wire::{decode_order, DecodeError, ErrorKind, Order};

/// The consumer group under which the orders table reports how far it has read.
pub fn orders_group(cfg: &Config) -> String {
    format!("{}-orders", cfg.group_id)
}

/// Which table a loader keeps.
pub enum Table {
    Orders,
    Knowledge(super::knowledge::KnowledgeTable),
}

impl Table {
    fn topic<'c>(&self, cfg: &'c Config) -> &'c str {
        match self {
            Table::Orders => &cfg.topics.orders,
            Table::Knowledge(k) => k.topic(cfg),
        }
    }

    /// The metric label and log name.
    fn name(&self) -> &'static str {
        match self {
            Table::Orders => "orders",
            Table::Knowledge(k) => k.name(),
        }
    }

    fn group(&self, cfg: &Config) -> String {
        match self {
            Table::Orders => orders_group(cfg),
            Table::Knowledge(k) => format!("{}-{}", cfg.group_id, k.name()),
        }
    }
}

/// At most this many order records go into one RocksDB write.
const MAX_BATCH: usize = 500;
/// How long a batch waits for more records after its first.
const BATCH_WAIT: Duration = Duration::from_millis(5);

pub struct TableLoader {
    table: Table,
    topic: String,
    cfg: Config,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    consumer: StreamConsumer<ReadToEnd>,
    producer: FutureProducer,
    /// High watermarks at start-up: ready once every partition has read up to them.
    catch_up: HashMap<i32, i64>,
}

impl TableLoader {
    pub fn new(
        cfg: Config,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        table: Table,
    ) -> Result<Self, ServiceError> {
        // Offsets are also committed to Kafka (auto-commit of stored offsets), only so that
        // lag tools and `parley converse` can see how far the table is; the table itself
        // resumes from the offsets kept with it in RocksDB. Reaching the end of a partition is
        // reported, which is how readiness is known even when the last offset is a
        // transaction marker that is never delivered.
        let group = table.group(&cfg);
        let topic = table.topic(&cfg).to_string();
        let consumer: StreamConsumer<ReadToEnd> = client_config(
            &cfg,
            &[
                ("group.id", &group),
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", "200"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "true"),
                ("isolation.level", "read_committed"),
            ],
        )
        .create_with_context(ReadToEnd)
        .map_err(KafkaError::client(format!(
            "creating the {} consumer",
            table.name()
        )))?;
        let producer: FutureProducer = client_config(&cfg, &[("enable.idempotence", "true")])
            .create()
            .map_err(KafkaError::client("creating the dead-letter producer"))?;

        let timeout = Duration::from_secs(10);
        // Right after the topic was created its partitions may still be electing leaders
        // (reading their ends fails with NotLeaderForPartition): wait for them.
        let partitions = retry::blocking(
            &format!("reading the partitions of {topic}"),
            Backoff::within(STARTUP_DEADLINE),
            || retry::ready_partitions(consumer.client(), &topic, timeout),
        )
        .map_err(KafkaError::client(format!(
            "reading the partitions of {topic}"
        )))?;
        let mut tpl = TopicPartitionList::new();
        let mut catch_up = HashMap::new();
        for p in partitions {
            let next = store.applied_offset(&topic, p)?;
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(&topic, p, offset)
                .map_err(KafkaError::client(format!("assigning {topic}")))?;
            let what = format!("reading the end of {topic}/{p}");
            let (_, high) = retry::blocking(&what, Backoff::within(STARTUP_DEADLINE), || {
                consumer.fetch_watermarks(&topic, p, timeout)
            })
            .map_err(KafkaError::client(what))?;
            if high > next.unwrap_or(0) {
                catch_up.insert(p, high);
            }
        }
        consumer
            .assign(&tpl)
            .map_err(KafkaError::client(format!("assigning {topic}")))?;
        if matches!(table, Table::Orders) {
            health
                .orders_caught_up
                .store(catch_up.is_empty(), Ordering::Relaxed);
        }
        Ok(Self {
            table,
            topic,
            cfg,
            store,
            metrics,
            health,
            consumer,
            producer,
            catch_up,
        })
    }

    /// Applies what arrives, in batches: whatever is there (up to [`MAX_BATCH`] records,
    /// waiting at most [`BATCH_WAIT`] after the first) goes into one RocksDB write with the
    /// offsets, so catching up on a large topic costs one fsync per batch, not per record.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), ServiceError> {
        // Consumer errors (the broker unreachable, a leader moving) heal by themselves:
        // librdkafka reconnects; this only paces the logging and the loop. The ceiling is
        // low so that reading resumes soon after the broker is back.
        let mut errors = Backoff::unbounded().max(Duration::from_secs(2));
        loop {
            let first = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                m = self.consumer.recv() => m,
            };
            let mut records = Vec::new();
            let mut ends = Vec::new();
            let mut error = take(first, &mut records, &mut ends);
            if error.is_none() {
                let deadline = Instant::now() + BATCH_WAIT;
                while records.len() < MAX_BATCH {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => break,
                        m = self.consumer.recv() => {
                            error = take(m, &mut records, &mut ends);
                            if error.is_some() {
                                break;
                            }
                        }
                    }
                }
            }
            if !records.is_empty() {
                if let Err(e) = self.apply(&records).await {
                    // Nothing of the batch was written (orders), or at most the store without
                    // the search indexes (knowledge: the next start indexes from the store).
                    tracing::error!("{} table: {e}", self.table.name());
                    self.metrics
                        .failures
                        .with_label_values(&[&format!("{}_table", self.table.name())])
                        .inc();
                    return Err(e);
                }
                self.store_offsets(&records);
                for r in &records {
                    self.check_caught_up(r);
                }
            }
            // Only now: the end of a partition counts once what came before it is applied.
            for p in ends {
                self.caught_up(p);
            }
            match error {
                None => errors.reset(),
                Some(e) => {
                    let name = format!("{} consumer", self.table.name());
                    self.metrics
                        .failures
                        .with_label_values(&[&name.replace(' ', "_")])
                        .inc();
                    let delay = errors.next_delay().unwrap_or(Duration::from_secs(2));
                    retry::warn(&name, &e, delay, errors.attempts);
                    tokio::select! {
                        _ = shutdown.changed() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Stores the next offsets to commit to Kafka (for lag tools only; see `new`).
    fn store_offsets(&self, records: &[Record]) {
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in next_offsets(records) {
            let _ = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(next));
        }
        let _ = self.consumer.store_offsets(&tpl);
    }

    /// Ready once every partition has been read up to its end at start-up.
    fn check_caught_up(&mut self, record: &Record) {
        if let Some(high) = self.catch_up.get(&record.partition) {
            if record.offset + 1 >= *high {
                self.caught_up(record.partition);
            }
        }
    }

    fn caught_up(&mut self, partition: i32) {
        if self.catch_up.remove(&partition).is_some() && self.catch_up.is_empty() {
            tracing::info!("{} table caught up with {}", self.table.name(), self.topic);
            if matches!(self.table, Table::Orders) {
                self.health.orders_caught_up.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Applies `records` (in offset order per partition) and their partitions' next offsets
    /// in one synced RocksDB batch. Bad records are dead-lettered first (at least once: if
    /// the write then fails, they are read and dead-lettered again after a restart).
    async fn apply(&self, records: &[Record]) -> Result<(), ServiceError> {
        let n = records.len() as u64;
        match &self.table {
            Table::Orders => {
                let mut batch = self.store.batch();
                let bad = stage(&self.store, &mut batch, &self.topic, records)?;
                for (record, e) in &bad {
                    self.dead_letter(record, e).await?;
                }
                tokio::task::block_in_place(|| self.store.write(batch))?;
                self.metrics.orders_applied.inc_by(n);
            }
            Table::Knowledge(k) => {
                let staged = k.stage(&self.store, &self.cfg, records).await?;
                for (record, e) in &staged.bad {
                    self.dead_letter(record, e).await?;
                }
                k.write(&self.store, &self.metrics, staged)?;
            }
        }
        self.metrics
            .messages
            .with_label_values(&[self.topic.as_str(), "applied"])
            .inc_by(n);
        Ok(())
    }

    async fn dead_letter(&self, record: &Record, e: &DecodeError) -> Result<(), KafkaError> {
        let dl = output::dead_letter(record, e, Utc::now(), &self.cfg.topics.dead_letter);
        let what = format!(
            "dead-lettering {} record {}/{}@{}",
            self.table.name(),
            record.topic,
            record.partition,
            record.offset
        );
        // Retried through a broker outage rather than stopping the table.
        retry::retry(&what, Backoff::unbounded(), || async {
            self.producer
                .send(future_record(&dl), Duration::from_secs(30))
                .await
                .map_err(|(cause, _)| cause)
        })
        .await
        .map_err(|cause| KafkaError::Client {
            context: what.clone(),
            cause,
        })?;
        self.metrics
            .dead_letters
            .with_label_values(&[e.kind.as_str()])
            .inc();
        Ok(())
    }
}

/// Sorts one `recv` result into the batch: a record, the end of a partition, or an error
/// (returned).
fn take(
    m: Result<rdkafka::message::BorrowedMessage<'_>, rdkafka::error::KafkaError>,
    records: &mut Vec<Record>,
    ends: &mut Vec<i32>,
) -> Option<rdkafka::error::KafkaError> {
    match m {
        Ok(m) => records.push(Record::from_message(&m)),
        Err(rdkafka::error::KafkaError::PartitionEOF(p)) => ends.push(p),
        Err(e) => return Some(e),
    }
    None
}

/// Each partition's next offset to read after `records`.
pub(super) fn next_offsets(records: &[Record]) -> HashMap<i32, i64> {
    let mut next = HashMap::new();
    for r in records {
        let n = next.entry(r.partition).or_insert(0);
        *n = (*n).max(r.offset + 1);
    }
    next
}

/// Stages `records` of `topic` into `batch`: upserts, deletions (tombstones) and each
/// partition's next offset. Returns the records to dead-letter, with why.
fn stage<'r>(
    store: &Store,
    batch: &mut StateBatch<'_>,
    topic: &str,
    records: &'r [Record],
) -> Result<Vec<(&'r Record, DecodeError)>, StateError> {
    // The orders as this batch leaves them: a second record of the same order must move the
    // index entry the first one wrote, which the store does not hold yet.
    let mut written: HashMap<String, Option<Order>> = HashMap::new();
    let previous = |written: &HashMap<String, Option<Order>>, id: &str| match written.get(id) {
        Some(o) => Ok(o.clone()),
        None => store.order(id),
    };
    let mut bad = Vec::new();
    for record in records {
        let key = record
            .key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        match (&record.payload, key) {
            // A tombstone: the order service deleted the order.
            (None, Some(order_id)) => {
                let before = previous(&written, &order_id)?;
                batch.delete_order(&order_id, before.as_ref());
                written.insert(order_id, None);
            }
            (None, None) => {}
            (Some(bytes), key) => match decode_order(bytes) {
                Ok(order) if key.as_deref().is_some_and(|k| k != order.order_id) => {
                    let e = DecodeError::new(
                        ErrorKind::InvalidValue,
                        format!(
                            "record key {:?} is not the order_id {:?}",
                            key.unwrap_or_default(),
                            order.order_id
                        ),
                    );
                    bad.push((record, e));
                }
                Ok(order) => {
                    let before = previous(&written, &order.order_id)?;
                    batch.put_order(&order, before.as_ref());
                    written.insert(order.order_id.clone(), Some(order));
                }
                Err(e) => bad.push((record, e)),
            },
        }
    }
    for (partition, next) in next_offsets(records) {
        batch.put_offset(topic, partition, next);
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: &str, payload: Option<serde_json::Value>) -> Record {
        Record {
            topic: "orders".into(),
            partition: (offset % 2) as i32,
            offset,
            key: Some(key.as_bytes().to_vec()),
            payload: payload.map(|v| v.to_string().into_bytes()),
            timestamp_ms: None,
            signature: None,
        }
    }

    fn order(id: &str, customer: &str) -> Option<serde_json::Value> {
        Some(serde_json::json!({"order_id": id, "customer_id": customer, "status": "placed"}))
    }

    fn customers_of(store: &Store, customer: &str) -> Vec<String> {
        store
            .orders_of(customer)
            .unwrap()
            .into_iter()
            .map(|o| o.order_id)
            .collect()
    }

    #[test]
    fn one_batch_applies_repeated_orders_in_order_with_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Already in the table before this batch.
        let mut b = store.batch();
        let before = [record(0, "A-1", order("A-1", "ann"))];
        assert!(stage(&store, &mut b, "orders", &before).unwrap().is_empty());
        store.write(b).unwrap();

        // The same order moved between customers three times in one batch, another order
        // created and deleted in it, and a bad record among them.
        let records = [
            record(1, "A-1", order("A-1", "bob")),
            record(2, "A-1", order("A-1", "cid")),
            record(3, "B-2", order("B-2", "ann")),
            record(4, "A-1", order("A-1", "dee")),
            record(5, "B-2", None),
            record(6, "C-3", order("X-9", "ann")),
            record(7, "C-3", Some(serde_json::json!("not an order"))),
        ];
        let mut b = store.batch();
        let bad = stage(&store, &mut b, "orders", &records).unwrap();
        store.write(b).unwrap();

        assert_eq!(
            bad.iter().map(|(r, _)| r.offset).collect::<Vec<_>>(),
            [6, 7]
        );
        assert_eq!(store.order("A-1").unwrap().unwrap().customer_id, "dee");
        assert!(store.order("B-2").unwrap().is_none());
        for gone in ["ann", "bob", "cid"] {
            assert!(customers_of(&store, gone).is_empty(), "{gone}");
        }
        assert_eq!(customers_of(&store, "dee"), ["A-1"]);
        // Each partition resumes after its last record of the batch.
        assert_eq!(store.applied_offset("orders", 0).unwrap(), Some(7));
        assert_eq!(store.applied_offset("orders", 1).unwrap(), Some(8));
    }
}
