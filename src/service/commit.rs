//! The thin commit step: produce a batch's outputs and its conversation changes (to the
//! changelog) and commit its consumed offsets, in one Kafka transaction.
//!
//! A broker outage must heal by itself, without ever producing a batch twice. Every
//! transactional call that fails with an error librdkafka marks retriable is called again,
//! with back-off, with the same arguments (librdkafka resumes a commit or an abort that timed
//! out; it does not start another): a commit is never turned into an abort, since a commit
//! that timed out may still go through. Only errors that need an abort get one, and an abort
//! that times out is itself retried until the broker answers. Errors no retry can fix (this
//! instance fenced, authorization) stop the service.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::retry::{self, Backoff};
use super::Service;
use crate::kafka::{future_record, KafkaError};
use crate::wire::OutRecord;

/// A conversation change for the changelog: the new state, or `None` (a tombstone).
pub(super) struct Change {
    pub partition: i32,
    pub id: String,
    pub value: Option<Vec<u8>>,
}

/// Per changelog partition: the offset after the last record this transaction wrote there.
pub(super) type ChangelogEnds = HashMap<i32, i64>;

/// How long one transactional call may block before it returns a (retriable) timeout and
/// is called again.
pub(super) const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl Service {
    /// Produces `out` and `changes` and commits the consumed offsets in one transaction. A
    /// non-fatal error means the transaction was aborted and the batch must be read again.
    /// The consumer group's metadata goes with the offsets, so that an instance that lost its
    /// partitions in a rebalance (a zombie) cannot commit.
    pub(super) async fn commit(
        &self,
        out: &[OutRecord],
        changes: &[Change],
        next_offsets: &HashMap<(String, i32), i64>,
    ) -> Result<ChangelogEnds, KafkaError> {
        block(|| self.producer.begin_transaction())
            .map_err(KafkaError::client("beginning a transaction"))?;
        let e = match self.produce_and_commit(out, changes, next_offsets).await {
            Ok(ends) => return Ok(ends),
            Err(e) => e,
        };
        if e.is_fatal() {
            return Err(e);
        }
        self.abort(&e).await?;
        // Aborting and re-reading would meet the same refusal for ever.
        if let KafkaError::Client { cause, .. } = &e {
            if retry::is_permanent(cause) {
                return Err(KafkaError::Fatal(format!(
                    "{e} (retrying cannot fix this: check this instance's ACLs and credentials)"
                )));
            }
        }
        Err(e)
    }

    /// Aborts the open transaction after `after`, resuming the abort while the broker cannot
    /// be reached. If the abort fails for good the producer is stuck in the transaction:
    /// stop (a restart's `init_transactions` settles it).
    async fn abort(&self, after: &KafkaError) -> Result<(), KafkaError> {
        let mut backoff = Backoff::unbounded();
        loop {
            let cause = match block(|| self.producer.abort_transaction(TXN_TIMEOUT)) {
                Ok(()) => return Ok(()),
                Err(cause) => cause,
            };
            if !retry::is_retriable(&cause) || self.stopping() {
                return Err(KafkaError::Fatal(format!(
                    "aborting a transaction failed ({cause}) after: {after}"
                )));
            }
            let delay = backoff.next_delay().unwrap_or(TXN_TIMEOUT);
            retry::warn(
                &format!("aborting the transaction after: {after}"),
                &cause,
                delay,
                backoff.attempts,
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn produce_and_commit(
        &self,
        out: &[OutRecord],
        changes: &[Change],
        next_offsets: &HashMap<(String, i32), i64>,
    ) -> Result<ChangelogEnds, KafkaError> {
        let mut deliveries = Vec::with_capacity(out.len() + changes.len());
        let records = out.iter().map(future_record).chain(changes.iter().map(|c| {
            let record = FutureRecord::to(&self.changelog)
                .partition(c.partition)
                .key(c.id.as_bytes());
            match &c.value {
                Some(v) => record.payload(&v[..]),
                None => record,
            }
        }));
        for mut record in records {
            loop {
                match self.producer.send_result(record) {
                    Ok(d) => {
                        deliveries.push(d);
                        break;
                    }
                    Err((e, back)) => {
                        if e.rdkafka_error_code()
                            != Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        {
                            return Err(KafkaError::Client {
                                context: format!("producing to {}", back.topic),
                                cause: e,
                            });
                        }
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        // While the broker is away, librdkafka keeps retrying these until
        // `message.timeout.ms` (which it caps at `transaction.timeout.ms`); a failure
        // leaves the transaction needing an abort.
        let mut ends = ChangelogEnds::new();
        for (i, d) in deliveries.into_iter().enumerate() {
            match d.await {
                Ok(Ok(delivery)) => {
                    // The changelog records come last: their offsets are where the local
                    // copy of each partition stands once this transaction has committed.
                    if i >= out.len() {
                        let end = ends.entry(delivery.partition).or_insert(0);
                        *end = (*end).max(delivery.offset + 1);
                    }
                }
                Ok(Err((e, _))) => {
                    return Err(KafkaError::Client {
                        context: "delivering a record of the transaction".into(),
                        cause: e,
                    })
                }
                Err(_) => return Err(KafkaError::Other("producer went away".into())),
            }
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in next_offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(KafkaError::client("building the offsets"))?;
        }
        let group = self
            .consumer
            .group_metadata()
            .ok_or_else(|| KafkaError::Other("consumer has no group metadata".into()))?;
        // Retried with the very same offsets and group metadata, as librdkafka asks.
        self.resume("adding the offsets to the transaction", || {
            self.producer
                .send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)
        })
        .await?;
        crash_point();
        // A retriable failure (a timeout) may hide a commit that went through: resume the
        // commit itself rather than abort and risk producing the batch twice.
        self.resume("committing the transaction", || {
            self.producer.commit_transaction(TXN_TIMEOUT)
        })
        .await?;
        Ok(ends)
    }

    /// Calls the blocking transactional `op` until it succeeds or fails with an error that
    /// is not retriable (returned as it is: fatal, or needing an abort). Stopping the
    /// service while the broker is unreachable ends the wait as a fatal error: whether the
    /// transaction commits is then settled by the restart's `init_transactions`.
    async fn resume(
        &self,
        what: &str,
        op: impl Fn() -> Result<(), rdkafka::error::KafkaError>,
    ) -> Result<(), KafkaError> {
        let mut backoff = Backoff::unbounded();
        loop {
            let cause = match block(&op) {
                Ok(()) => return Ok(()),
                Err(cause) => cause,
            };
            if !retry::is_retriable(&cause) {
                return Err(KafkaError::Client {
                    context: what.into(),
                    cause,
                });
            }
            if self.stopping() {
                return Err(KafkaError::Fatal(format!(
                    "{what}: {cause}; stopping before the broker answered"
                )));
            }
            let delay = backoff.next_delay().unwrap_or(TXN_TIMEOUT);
            retry::warn(what, &cause, delay, backoff.attempts);
            tokio::time::sleep(delay).await;
        }
    }
}

/// Fault injection for the crash tests: with `PARLEY_CRASH_BEFORE_COMMIT=N` the process
/// aborts in its Nth transaction after everything was produced and before the commit: the
/// new owner of its partitions must then see none of it, and restore the state as it was.
fn crash_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static TRANSACTIONS: AtomicU64 = AtomicU64::new(0);
    let at = AT.get_or_init(|| {
        std::env::var("PARLEY_CRASH_BEFORE_COMMIT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = at {
        if TRANSACTIONS.fetch_add(1, Ordering::Relaxed) + 1 == *at {
            tracing::error!(
                transaction = at,
                "PARLEY_CRASH_BEFORE_COMMIT: aborting before the commit"
            );
            std::process::abort();
        }
    }
}

/// Runs blocking work (librdkafka transaction calls) without stalling the runtime.
fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
