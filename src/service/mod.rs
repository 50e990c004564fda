//! `parley run`: the consume → classify → dialogue → state → transactional produce loop.
//!
//! One transaction at a time: records from every served partition are gathered (up to
//! `max_batch_size`, waiting at most `max_batch_wait_ms` after the first, under load only;
//! under a backlog up to `max_batches_per_transaction` such batches of records already
//! fetched), their texts are classified on the model thread (one forward pass per batch), the
//! dialogue steps run in offset order (so one conversation's messages are handled strictly in
//! order), and the outputs, the changed conversations (to the changelog) and the consumed
//! offsets go out in one Kafka transaction; the local RocksDB copy is written once it has
//! committed. The next records are read only once this transaction has committed, so a flood
//! becomes consumer lag, not memory.
//!
//! Several instances share the work through the consumer group: conversation state belongs
//! to its inbound partition and follows it (see `partitions` and `restore`).

mod commit;
mod expiry;
mod follow_up;
mod group_watch;
mod guard;
pub mod identity;
mod knowledge;
mod output;
mod partitions;
mod plan;
mod process;
mod rebalance;
mod restore;
pub(crate) mod retry;
mod tables;
mod tasks;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::watch;
use tokio::time::Instant;

pub use knowledge::{rebuild, KnowledgeTable, Rebuilt};
pub use output::record_id;
pub use rebalance::GroupContext;
pub use tables::{orders_group, Table, TableLoader};

use crate::config::Config;
use crate::kafka::{agent_consumer_config, consumer_config, producer_config, KafkaError, Record};
use crate::knowledge::Knowledge;
use crate::metrics::{Health, Metrics};
use crate::model::{ModelError, ModelHandle};
use crate::state::{StateError, Store};
use retry::{Backoff, STARTUP_DEADLINE};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Retrieval(crate::retrieval::RetrievalError),
    #[error("{0}; stopping, so that a restart joins the group afresh")]
    GroupUnsettled(group_watch::Unsettled),
}

/// The running service's parts.
pub struct Service {
    cfg: Config,
    store: Arc<Store>,
    kb: Knowledge,
    model: ModelHandle,
    /// Articles and products, searched for each customer message.
    retriever: Arc<crate::retrieval::Retriever>,
    oos_label: String,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// The group member reading the inbound topic.
    consumer: Arc<StreamConsumer<GroupContext>>,
    /// Reads the agent-actions partitions that go with the served inbound ones.
    agents: Arc<StreamConsumer>,
    producer: FutureProducer,
    changelog: String,
    /// What the group did, noted by the rebalance callbacks.
    moves: Arc<Mutex<rebalance::Moves>>,
    /// The group state librdkafka reports, to notice a rejoin that never settles.
    group: Arc<group_watch::GroupWatch>,
    /// How long it may stay unsettled; `None` with librdkafka's statistics turned off.
    group_limit: Option<Duration>,
    tasks: Mutex<tasks::Tasks>,
    restorer: Mutex<restore::Restorer>,
    /// Per-record safety net, identity and agent checks, loop health.
    guard: Arc<guard::Guard>,
    /// Back-off between consumer errors, reset by a record.
    consumer_backoff: Mutex<Backoff>,
    /// Set by `run`, so that retries deep in a batch can stop waiting on shutdown.
    shutdown: Option<watch::Receiver<bool>>,
    /// Records in the last batch gathered: whether traffic is heavy enough for a batch's
    /// first record to wait for company (see `gather`).
    last_gathered: std::sync::atomic::AtomicUsize,
}

impl Service {
    /// Creates the consumers and the transactional producer. Transactions are initialised
    /// in `run`, once this instance has made sure no live instance has its transactional id.
    // The service's parts, each built by `cli::run`; a builder would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Config,
        store: Arc<Store>,
        kb: Knowledge,
        model: ModelHandle,
        retriever: Arc<crate::retrieval::Retriever>,
        oos_label: String,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Self, ServiceError> {
        let guard = Arc::new(guard::Guard::new(&cfg)?);
        let (context, moves, group) = GroupContext::new(&cfg.topics.inbound);
        let consumer_cfg = consumer_config(&cfg);
        let group_limit = group_watch::limit_of(&consumer_cfg);
        let consumer: Arc<StreamConsumer<GroupContext>> = consumer_cfg
            .create_with_context(context)
            .map(Arc::new)
            .map_err(KafkaError::client("creating the consumer"))?;
        let agents: Arc<StreamConsumer> = agent_consumer_config(&cfg)
            .create()
            .map(Arc::new)
            .map_err(KafkaError::client("creating the agent-actions consumer"))?;
        let restorer = restore::Restorer::new(&cfg)?;
        // State found on disk for partitions this instance may not get back is kept warm
        // for a while, as if just given up.
        let mut tasks = tasks::Tasks::default();
        let now = Instant::now();
        for p in store.partitions_held(&cfg.changelog_topic())? {
            tasks.warm.insert(p, now);
        }
        let producer: FutureProducer = producer_config(&cfg)
            .create()
            .map_err(KafkaError::client("creating the producer"))?;
        Ok(Self {
            store,
            kb,
            model,
            retriever,
            oos_label,
            metrics,
            health,
            consumer,
            agents,
            producer,
            changelog: cfg.changelog_topic(),
            moves,
            group,
            group_limit,
            tasks: Mutex::new(tasks),
            restorer: Mutex::new(restorer),
            guard,
            cfg,
            consumer_backoff: Mutex::new(consumer_backoff()),
            shutdown: None,
            last_gathered: Default::default(),
        })
    }

    /// Runs until `shutdown` turns true; the batch in hand is finished (committed or aborted)
    /// before returning.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), ServiceError> {
        self.shutdown = Some(shutdown.clone());
        self.health.live.store(true, Ordering::Relaxed);
        // Answering before the orders table holds what the topic held at start-up would
        // tell customers that orders they have do not exist: read no chat input until then.
        if !self.orders_caught_up(&mut shutdown).await {
            self.health.live.store(false, Ordering::Relaxed);
            return Ok(());
        }
        // Right before joining the group: the check sees the group as it is now, and
        // `init_transactions` fences (and aborts the open transaction of) only this
        // instance's own earlier run.
        identity::check(&self.cfg).await?;
        let what = format!(
            "initialising transactions (transactional.id {})",
            self.cfg.transactional_id
        );
        tokio::task::block_in_place(|| {
            retry::blocking(&what, Backoff::within(STARTUP_DEADLINE), || {
                self.producer.init_transactions(Duration::from_secs(30))
            })
        })
        .map_err(KafkaError::client(what))?;
        // Only the inbound topic is subscribed: agent actions are read from the partitions
        // that go with the inbound ones this instance is given (co-partitioned).
        self.consumer
            .subscribe(&[&self.cfg.topics.inbound])
            .map_err(KafkaError::client("subscribing"))?;
        let lag = tokio::spawn(lag_reporter(
            self.consumer.clone(),
            self.agents.clone(),
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

    /// Waits until the orders table has caught up; false if the service is stopping first.
    async fn orders_caught_up(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        if self.health.orders_caught_up.load(Ordering::Relaxed) {
            return true;
        }
        tracing::info!(
            "waiting for the orders table to catch up with {} before reading chat input",
            self.cfg.topics.orders
        );
        let started = Instant::now();
        loop {
            if *shutdown.borrow() {
                return false;
            }
            if self.health.orders_caught_up.load(Ordering::Relaxed) {
                tracing::info!(
                    "orders table caught up in {:.1?}; reading chat input",
                    started.elapsed()
                );
                return true;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// True once `run` was asked to stop.
    fn stopping(&self) -> bool {
        self.shutdown.as_ref().is_some_and(|s| *s.borrow())
    }

    async fn run_loop(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), ServiceError> {
        let mut last_gauges = Instant::now();
        let expiry_every = Duration::from_secs(self.cfg.scale.expiry_interval_secs);
        let mut last_expiry = Instant::now();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            self.check_group()?;
            // Between two batches: take in what the group did, then move restores on.
            self.handle_moves()?;
            self.start_restores()?;
            self.restore_step()?;
            let batch = self.gather(shutdown).await?;
            self.handle_moves()?;
            let batch = self.served_only(batch);
            if !batch.is_empty() {
                self.process(batch).await?;
            }
            if last_gauges.elapsed() > Duration::from_secs(5) {
                self.update_gauges();
                last_gauges = Instant::now();
            }
            if last_expiry.elapsed() >= expiry_every {
                self.housekeeping().await?;
                last_expiry = Instant::now();
            }
        }
    }

    fn tasks(&self) -> MutexGuard<'_, tasks::Tasks> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_gauges(&self) {
        self.metrics
            .state_store_bytes
            .set(self.store.size_bytes() as i64);
        self.metrics
            .conversations
            .set(self.store.conversation_count() as i64);
        // Ready: partitions held, all of them served (none restoring), orders caught up.
        let (held, all_served, active) = {
            let t = self.tasks();
            let active = t.in_phase(tasks::Phase::Active).len();
            (t.held.len(), t.all_active(), active)
        };
        self.metrics
            .partitions
            .with_label_values(&["active"])
            .set(active as i64);
        self.metrics
            .partitions
            .with_label_values(&["restoring"])
            .set((held - active) as i64);
        self.health.ready.store(
            held > 0 && all_served && self.health.orders_caught_up.load(Ordering::Relaxed),
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
        // While partitions wait to be restored the loop comes back soon to move them on.
        let waiting = !self.tasks().all_active() || self.has_moves();
        let idle = tokio::time::sleep(if waiting {
            Duration::from_millis(20)
        } else {
            Duration::from_secs(1)
        });
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
            m = self.agents.recv() => match m {
                Ok(m) => batch.push(Record::from_message(&m)),
                Err(e) => {
                    self.consumer_error(e).await?;
                    return Ok(batch);
                }
            },
        }
        // Waiting for company pays only under load: when the last batch gathered was at least
        // half full, records arrive fast enough that waiting fills this one. With light
        // traffic the model and the broker are idle, and waiting would only add
        // `max_batch_wait_ms` to every reply (and under a flood the consumers hold a full
        // batch already).
        if 2 * self.last_gathered.load(Ordering::Relaxed) >= max {
            self.linger(&mut batch, max).await?;
        }
        // Then what the consumers hold already, never waited for: it fills the batch, and
        // under a backlog makes more batches for the same transaction.
        let most = max.saturating_mul(self.cfg.batching.max_batches_per_transaction);
        batch.extend(self.ready_records(most - batch.len()).await?);
        self.last_gathered.store(batch.len(), Ordering::Relaxed);
        self.consumer_backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset();
        Ok(batch)
    }

    /// Adds records to `batch` until it holds `max` or `max_batch_wait_ms` have passed.
    async fn linger(&self, batch: &mut Vec<Record>, max: usize) -> Result<(), ServiceError> {
        let deadline = Instant::now() + Duration::from_millis(self.cfg.batching.max_batch_wait_ms);
        while batch.len() < max && !self.has_moves() {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                m = self.consumer.recv() => match m {
                    Ok(m) => batch.push(Record::from_message(&m)),
                    Err(e) => {
                        self.consumer_error(e).await?;
                        break;
                    }
                },
                m = self.agents.recv() => match m {
                    Ok(m) => batch.push(Record::from_message(&m)),
                    Err(e) => {
                        self.consumer_error(e).await?;
                        break;
                    }
                },
            }
        }
        Ok(())
    }

    /// The records the consumers hold already, up to `max`, without waiting for more.
    async fn ready_records(&self, max: usize) -> Result<Vec<Record>, ServiceError> {
        let mut batch = Vec::new();
        // Taking each consumer first in turn, so that a flood on one does not hold back
        // the other.
        let mut agents_first = false;
        while batch.len() < max && !self.has_moves() {
            let inbound = || ready_now(self.consumer.recv());
            let agents = || ready_now(self.agents.recv());
            let got = if agents_first {
                agents().or_else(inbound)
            } else {
                inbound().or_else(agents)
            };
            agents_first = !agents_first;
            match got {
                Some(Ok(m)) => batch.push(Record::from_message(&m)),
                Some(Err(e)) => {
                    self.consumer_error(e).await?;
                    break;
                }
                None => break,
            }
        }
        Ok(batch)
    }

    async fn consumer_error(&self, e: rdkafka::error::KafkaError) -> Result<(), ServiceError> {
        self.metrics.failures.with_label_values(&["consumer"]).inc();
        // A fatal one (e.g. another instance took this `group.instance.id`) ends the service.
        if matches!(e, rdkafka::error::KafkaError::MessageConsumptionFatal(_)) {
            return Err(KafkaError::Client {
                context: "consuming (fatal)".into(),
                cause: e,
            }
            .into());
        }
        // So does one that no wait can fix (no right to read the topics or the group).
        if retry::is_permanent(&e) {
            return Err(KafkaError::Client {
                context: "consuming (check this instance's ACLs and credentials)".into(),
                cause: e,
            }
            .into());
        }
        // Anything else (the broker unreachable, a leader moving) librdkafka recovers from
        // by itself: say so, pause a little longer each time, and go on.
        let (delay, attempt) = {
            let mut b = self
                .consumer_backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (b.next_delay().unwrap_or(Duration::from_secs(2)), b.attempts)
        };
        retry::warn("consumer", &e, delay, attempt);
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// `f`'s output if it is ready at its first poll. For a consumer's `recv`: a record it holds
/// already, or `None` (the future is dropped, which leaves nothing behind).
fn ready_now<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// Consumer errors pause at most 2 s, so reading resumes soon after the broker is back.
fn consumer_backoff() -> Backoff {
    Backoff::unbounded().max(Duration::from_secs(2))
}

/// Reports the lag per assigned partition every few seconds: the partition's end minus the
/// next offset to read. It runs beside the processing loop because asking the broker for the
/// partition ends queues behind the consumer's fetches (up to `fetch.wait.max.ms` each).
async fn lag_reporter(
    consumer: Arc<StreamConsumer<GroupContext>>,
    agents: Arc<StreamConsumer>,
    metrics: Arc<Metrics>,
) {
    loop {
        let (c, a, m) = (consumer.clone(), agents.clone(), metrics.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let mut samples = lag_of(c.as_ref());
            samples.extend(lag_of(a.as_ref()));
            // Partitions no longer held (or not read yet) drop out instead of keeping the
            // last value they had here.
            m.consumer_lag.reset();
            for (topic, partition, lag) in samples {
                m.consumer_lag
                    .with_label_values(&[&topic, &partition.to_string()])
                    .set(lag);
            }
        })
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// (topic, partition, lag) of each assigned partition whose read position is known.
fn lag_of<X: rdkafka::consumer::ConsumerContext, C: Consumer<X>>(
    consumer: &C,
) -> Vec<(String, i32, i64)> {
    let (Ok(assignment), Ok(positions)) = (consumer.assignment(), consumer.position()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
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
            // Nothing read yet (restoring, or idle since assignment): not known.
            _ => continue,
        };
        out.push((topic.to_string(), partition, (high - next).max(0)));
    }
    out
}
