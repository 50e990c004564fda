//! Materialises `commerce.orders` into the orders table. Not part of the conversation
//! transactions: an upsert by key is idempotent, so the table keeps its own "next offset to
//! read" per partition in the same RocksDB batch as the data and resumes from it, even with
//! a fresh consumer group. A bad order record is dead-lettered (at least once).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::{output, ServiceError};
use crate::config::Config;
use crate::kafka::{client_config, future_record, KafkaError, Record};
use crate::metrics::{Health, Metrics};
use crate::state::Store;
use crate::wire::{decode_order, DecodeError, ErrorKind};

/// The consumer group under which the orders table reports how far it has read.
pub fn orders_group(cfg: &Config) -> String {
    format!("{}-orders", cfg.group_id)
}

pub struct OrdersLoader {
    cfg: Config,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    consumer: StreamConsumer,
    producer: FutureProducer,
    /// High watermarks at start-up: ready once every partition has read up to them.
    catch_up: HashMap<i32, i64>,
}

impl OrdersLoader {
    pub fn new(
        cfg: Config,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Self, ServiceError> {
        // Offsets are also committed to Kafka (auto-commit of stored offsets), only so that
        // lag tools and `parley converse` can see how far the table is; the table itself
        // resumes from the offsets kept with it in RocksDB. Reaching the end of a partition is
        // reported, which is how readiness is known even when the last offset is a
        // transaction marker that is never delivered.
        let group = orders_group(&cfg);
        let consumer: StreamConsumer = client_config(
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
        .create()
        .map_err(KafkaError::client("creating the orders consumer"))?;
        let producer: FutureProducer = client_config(&cfg, &[("enable.idempotence", "true")])
            .create()
            .map_err(KafkaError::client("creating the dead-letter producer"))?;

        let topic = cfg.topics.orders.clone();
        let timeout = Duration::from_secs(30);
        let metadata =
            consumer
                .fetch_metadata(Some(&topic), timeout)
                .map_err(KafkaError::client(format!(
                    "reading the partitions of {topic}"
                )))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(KafkaError::Other(format!("topic {topic} has no partitions")).into());
        }
        let mut tpl = TopicPartitionList::new();
        let mut catch_up = HashMap::new();
        for p in partitions {
            let next = store.applied_offset(&topic, p)?;
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(&topic, p, offset)
                .map_err(KafkaError::client("assigning the orders partitions"))?;
            let (_, high) =
                consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .map_err(KafkaError::client(format!(
                        "reading the end of {topic}/{p}"
                    )))?;
            if high > next.unwrap_or(0) {
                catch_up.insert(p, high);
            }
        }
        consumer
            .assign(&tpl)
            .map_err(KafkaError::client("assigning the orders partitions"))?;
        health
            .orders_caught_up
            .store(catch_up.is_empty(), Ordering::Relaxed);
        Ok(Self {
            cfg,
            store,
            metrics,
            health,
            consumer,
            producer,
            catch_up,
        })
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), ServiceError> {
        loop {
            let m = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                m = self.consumer.recv() => m,
            };
            let record = match m {
                Ok(m) => Record::from_message(&m),
                Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                    self.caught_up(p);
                    continue;
                }
                Err(e) => {
                    eprintln!("parley: orders consumer: {e}");
                    self.metrics
                        .failures
                        .with_label_values(&["orders_consumer"])
                        .inc();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if let Err(e) = self.apply(&record).await {
                // The offset is not stored, so the record is read again after a restart.
                eprintln!("parley: orders table: {e}");
                self.metrics
                    .failures
                    .with_label_values(&["orders_table"])
                    .inc();
                return Err(e);
            }
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(
                    &record.topic,
                    record.partition,
                    Offset::Offset(record.offset + 1),
                )
                .is_ok()
            {
                let _ = self.consumer.store_offsets(&tpl);
            }
            self.check_caught_up(&record);
        }
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
            self.health.orders_caught_up.store(true, Ordering::Relaxed);
        }
    }

    async fn apply(&self, record: &Record) -> Result<(), ServiceError> {
        let key = record
            .key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        let mut batch = self.store.batch();
        match (&record.payload, key) {
            // A tombstone: the order service deleted the order.
            (None, Some(order_id)) => {
                let previous = self.store.order(&order_id)?;
                batch.delete_order(&order_id, previous.as_ref());
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
                    self.dead_letter(record, &e).await?;
                }
                Ok(order) => {
                    let previous = self.store.order(&order.order_id)?;
                    batch.put_order(&order, previous.as_ref());
                }
                Err(e) => self.dead_letter(record, &e).await?,
            },
        }
        batch.put_offset(&record.topic, record.partition, record.offset + 1);
        tokio::task::block_in_place(|| self.store.write(batch))?;
        self.metrics.orders_applied.inc();
        self.metrics
            .messages
            .with_label_values(&[record.topic.as_str(), "applied"])
            .inc();
        Ok(())
    }

    async fn dead_letter(&self, record: &Record, e: &DecodeError) -> Result<(), KafkaError> {
        let dl = output::dead_letter(record, e, Utc::now(), &self.cfg.topics.dead_letter);
        self.producer
            .send(future_record(&dl), Duration::from_secs(30))
            .await
            .map_err(|(cause, _)| KafkaError::Client {
                context: format!(
                    "dead-lettering order record {}/{}@{}",
                    record.topic, record.partition, record.offset
                ),
                cause,
            })?;
        self.metrics
            .dead_letters
            .with_label_values(&[e.kind.as_str()])
            .inc();
        Ok(())
    }
}
