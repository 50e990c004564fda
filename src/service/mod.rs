//! `parley run`: the consume → classify → dialogue → state → transactional produce loop.
//!
//! One batch at a time: records from every assigned partition are gathered (up to
//! `max_batch_size`, waiting at most `max_batch_wait_ms` after the first), their texts are
//! classified in one forward pass on the model thread, the dialogue steps run in offset order
//! (so one conversation's messages are handled strictly in order), the new state, the applied
//! offsets and the outputs (outbox) are written in one RocksDB batch, and the outputs are
//! produced in one Kafka transaction together with the consumed offsets. A batch is at most
//! `max_batch_size` records, and the next is read only once this one has committed, so a
//! flood becomes consumer lag, not memory.

mod commit;
mod orders;
mod output;
mod process;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::watch;
use tokio::time::Instant;

pub use orders::{orders_group, OrdersLoader};
pub use output::record_id;

use crate::config::Config;
use crate::kafka::{consumer_config, producer_config, KafkaError, Record};
use crate::knowledge::Knowledge;
use crate::metrics::{Health, Metrics};
use crate::model::{ModelError, ModelHandle};
use crate::state::{StateError, Store};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The running service's parts.
pub struct Service {
    cfg: Config,
    store: Arc<Store>,
    kb: Knowledge,
    model: ModelHandle,
    oos_label: String,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    consumer: Arc<StreamConsumer>,
    producer: FutureProducer,
}

impl Service {
    /// Connects the consumer and the transactional producer. `init_transactions` fences any
    /// earlier incarnation with the same `transactional_id` and aborts its open transaction.
    pub fn new(
        cfg: Config,
        store: Arc<Store>,
        kb: Knowledge,
        model: ModelHandle,
        oos_label: String,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Self, ServiceError> {
        let consumer: Arc<StreamConsumer> = consumer_config(&cfg)
            .create()
            .map(Arc::new)
            .map_err(KafkaError::client("creating the consumer"))?;
        consumer
            .subscribe(&[&cfg.topics.inbound, &cfg.topics.agent_actions])
            .map_err(KafkaError::client("subscribing"))?;
        let producer: FutureProducer = producer_config(&cfg)
            .create()
            .map_err(KafkaError::client("creating the producer"))?;
        producer
            .init_transactions(Duration::from_secs(60))
            .map_err(KafkaError::client(format!(
                "initialising transactions (transactional.id {})",
                cfg.transactional_id
            )))?;
        Ok(Self {
            cfg,
            store,
            kb,
            model,
            oos_label,
            metrics,
            health,
            consumer,
            producer,
        })
    }

    /// Runs until `shutdown` turns true; the batch in hand is finished (committed or aborted)
    /// before returning.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), ServiceError> {
        self.health.live.store(true, Ordering::Relaxed);
        let lag = tokio::spawn(lag_reporter(
            self.consumer.clone(),
            self.store.clone(),
            self.metrics.clone(),
        ));
        let result = self.run_loop(&mut shutdown).await;
        lag.abort();
        self.health.live.store(false, Ordering::Relaxed);
        self.health.ready.store(false, Ordering::Relaxed);
        // Leave the group at once so the partitions move without waiting for a timeout.
        self.consumer.unsubscribe();
        result
    }

    async fn run_loop(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), ServiceError> {
        let mut last_gauges = Instant::now();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let batch = self.gather(shutdown).await?;
            if !batch.is_empty() {
                self.process(batch).await?;
            }
            if last_gauges.elapsed() > Duration::from_secs(5) {
                self.update_gauges();
                last_gauges = Instant::now();
            }
        }
    }

    fn update_gauges(&self) {
        self.metrics
            .state_store_bytes
            .set(self.store.size_bytes() as i64);
        self.metrics
            .conversations
            .set(self.store.conversation_count() as i64);
        let assigned = self.consumer.assignment().is_ok_and(|a| a.count() > 0);
        self.health.ready.store(
            assigned && self.health.orders_caught_up.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// Waits for a first record, then gathers more until the batch is full or the wait is up.
    async fn gather(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Vec<Record>, ServiceError> {
        let max = self.cfg.batching.max_batch_size;
        let mut batch = Vec::new();
        let idle = tokio::time::sleep(Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.changed() => return Ok(batch),
            _ = idle => {
                self.update_gauges();
                return Ok(batch);
            }
            m = self.consumer.recv() => match m {
                Ok(m) => batch.push(Record::from_message(&m)),
                Err(e) => {
                    self.consumer_error(e).await?;
                    return Ok(batch);
                }
            },
        }
        let deadline = Instant::now() + Duration::from_millis(self.cfg.batching.max_batch_wait_ms);
        while batch.len() < max {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                m = self.consumer.recv() => match m {
                    Ok(m) => batch.push(Record::from_message(&m)),
                    Err(e) => {
                        self.consumer_error(e).await?;
                        break;
                    }
                },
            }
        }
        Ok(batch)
    }

    async fn consumer_error(&self, e: rdkafka::error::KafkaError) -> Result<(), ServiceError> {
        self.metrics.failures.with_label_values(&["consumer"]).inc();
        // A fatal one (e.g. another instance took this `group.instance.id`) ends the service.
        if matches!(e, rdkafka::error::KafkaError::MessageConsumptionFatal(_)) {
            return Err(KafkaError::Client {
                context: "consuming (fatal; is another instance using the same transactional_id?)"
                    .into(),
                cause: e,
            }
            .into());
        }
        // Transport errors are retried by librdkafka itself; say so and go on.
        eprintln!("parley: consumer: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }
}

/// Reports the lag per assigned partition every few seconds: the partition's end minus the
/// next offset to read. It runs beside the processing loop because asking the broker for the
/// partition ends queues behind the consumer's fetches (up to `fetch.wait.max.ms` each).
async fn lag_reporter(consumer: Arc<StreamConsumer>, store: Arc<Store>, metrics: Arc<Metrics>) {
    loop {
        let (c, s, m) = (consumer.clone(), store.clone(), metrics.clone());
        let _ = tokio::task::spawn_blocking(move || report_lag(&c, &s, &m)).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

fn report_lag(consumer: &StreamConsumer, store: &Store, metrics: &Metrics) {
    let (Ok(assignment), Ok(positions)) = (consumer.assignment(), consumer.position()) else {
        return;
    };
    for e in assignment.elements() {
        let (topic, partition) = (e.topic(), e.partition());
        let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(5))
        else {
            continue;
        };
        let next = match positions
            .find_partition(topic, partition)
            .map(|p| p.offset())
        {
            Some(rdkafka::Offset::Offset(o)) => o,
            // Nothing read yet: reading starts where the state left off.
            _ => store
                .applied_offset(topic, partition)
                .ok()
                .flatten()
                .unwrap_or(0),
        };
        metrics
            .consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set((high - next).max(0));
    }
}
