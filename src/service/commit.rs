//! The thin commit step: produce a batch's outputs and commit its consumed offsets in one
//! Kafka transaction.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::Service;
use crate::kafka::{future_record, KafkaError};
use crate::state::OutRecord;

pub(super) const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl Service {
    /// Produces `out` and commits the consumed offsets in one transaction.
    pub(super) async fn commit(
        &self,
        out: &[OutRecord],
        next_offsets: &HashMap<(String, i32), i64>,
    ) -> Result<(), KafkaError> {
        block(|| self.producer.begin_transaction())
            .map_err(KafkaError::client("beginning a transaction"))?;
        let result = self.produce_and_commit(out, next_offsets).await;
        if let Err(e) = &result {
            if e.is_fatal() {
                return result;
            }
            // If even the abort fails, the producer is stuck in the transaction: stop.
            block(|| self.producer.abort_transaction(TXN_TIMEOUT)).map_err(|cause| {
                KafkaError::Fatal(format!(
                    "aborting a transaction failed ({cause}) after: {e}"
                ))
            })?;
        }
        result
    }

    async fn produce_and_commit(
        &self,
        out: &[OutRecord],
        next_offsets: &HashMap<(String, i32), i64>,
    ) -> Result<(), KafkaError> {
        let mut deliveries = Vec::with_capacity(out.len());
        for r in out {
            let mut record = future_record(r);
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
                                context: format!("producing to {}", r.topic),
                                cause: e,
                            });
                        }
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        for d in deliveries {
            match d.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(KafkaError::Client {
                        context: "delivering an output record".into(),
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
        block(|| {
            self.producer
                .send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)
        })
        .map_err(KafkaError::client("adding the offsets to the transaction"))?;
        // A retriable failure (a timeout) may hide a commit that went through: retry the
        // commit itself rather than abort and risk producing the batch twice.
        let mut attempts = 0;
        loop {
            match block(|| self.producer.commit_transaction(TXN_TIMEOUT)) {
                Ok(()) => return Ok(()),
                Err(e) if txn_error(&e).is_some_and(|r| r.is_retriable()) => {
                    attempts += 1;
                    if attempts >= 5 {
                        // The commit may or may not have happened: only a restart (fencing
                        // this transaction) settles it without risking duplicates.
                        return Err(KafkaError::Fatal(format!(
                            "committing the transaction failed {attempts} times: {e}"
                        )));
                    }
                    eprintln!("parley: committing the transaction, retrying: {e}");
                }
                Err(e) => {
                    return Err(KafkaError::Client {
                        context: "committing the transaction".into(),
                        cause: e,
                    })
                }
            }
        }
    }
}

/// Runs blocking work (librdkafka transaction calls) without stalling the runtime.
fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn txn_error(e: &rdkafka::error::KafkaError) -> Option<&rdkafka::error::RDKafkaError> {
    match e {
        rdkafka::error::KafkaError::Transaction(r) => Some(r),
        _ => None,
    }
}
