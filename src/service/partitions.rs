//! Partitions moving in and out, handled between two batches (never inside the consumer's
//! poll): a revoked partition's agent actions stop being read and its state stays as a warm
//! copy; an assigned one waits for its committed offsets (read "stable", so a previous
//! owner's transaction has ended first), has its state restored from the changelog, and
//! only then is resumed.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::rebalance::Move;
use super::restore::Restored;
use super::tasks::Phase;
use super::{Service, ServiceError};
use crate::kafka::{KafkaError, Record};

/// How long one restore step may take before the loop polls the group again.
const RESTORE_STEP: Duration = Duration::from_millis(250);

impl Service {
    pub(super) fn has_moves(&self) -> bool {
        !self
            .moves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Stops the service when this instance has been out of a settled group for too long
    /// with the coordinator reachable (see `group_watch`); warns half way.
    pub(super) fn check_group(&self) -> Result<(), ServiceError> {
        let (Some(limit), Some(unsettled)) = (self.group_limit, self.group.unsettled()) else {
            return Ok(());
        };
        if unsettled.for_ >= limit {
            return Err(ServiceError::GroupUnsettled(unsettled));
        }
        if unsettled.for_ >= limit / 2 && self.group.first_warning() {
            tracing::warn!(
                state = %unsettled.state,
                join_state = %unsettled.join_state,
                limit_secs = limit.as_secs(),
                "{unsettled}; stopping if it has not settled after the limit"
            );
        }
        Ok(())
    }

    /// Applies what the group did since the last look, in order.
    pub(super) fn handle_moves(&self) -> Result<(), ServiceError> {
        let moves = std::mem::take(&mut *self.moves.lock().unwrap_or_else(|e| e.into_inner()));
        for m in moves {
            let now = Instant::now();
            match m {
                Move::Assigned(partitions) => {
                    tracing::info!(?partitions, "partitions assigned");
                    self.tasks().assign(&partitions, now);
                }
                Move::Revoked { partitions, lost } => {
                    if lost {
                        tracing::warn!(?partitions, "partitions lost (the session lapsed); another instance may hold them now");
                    } else {
                        tracing::info!(?partitions, "partitions revoked");
                    }
                    let served = self.tasks().revoke(&partitions, now);
                    let mut restorer = self.restorer.lock().unwrap_or_else(|e| e.into_inner());
                    for p in &partitions {
                        restorer.cancel(*p)?;
                    }
                    drop(restorer);
                    if !served.is_empty() {
                        let mut tpl = TopicPartitionList::new();
                        for p in &served {
                            tpl.add_partition(&self.cfg.topics.agent_actions, *p);
                        }
                        self.agents
                            .incremental_unassign(&tpl)
                            .map_err(KafkaError::client("unassigning agent actions"))?;
                    }
                }
                Move::Failed(error) => {
                    tracing::warn!(%error, "a rebalance failed; rejoining the group");
                }
            }
        }
        Ok(())
    }

    /// For each newly assigned partition: read its committed offsets (inbound and agent
    /// actions), then start restoring its state.
    pub(super) fn start_restores(&self) -> Result<(), ServiceError> {
        let pending = self.tasks().in_phase(Phase::Pending);
        if pending.is_empty() {
            return Ok(());
        }
        let (inbound, agents) = (&self.cfg.topics.inbound, &self.cfg.topics.agent_actions);
        let mut tpl = TopicPartitionList::new();
        for p in &pending {
            tpl.add_partition(inbound, *p);
            tpl.add_partition(agents, *p);
        }
        // With read_committed, librdkafka asks for stable offsets: the answer waits until
        // no transaction of a previous owner is still open on them. A short wait, tried again
        // at every turn of the loop, so that the other partitions are served meanwhile.
        let committed = match tokio::task::block_in_place(|| {
            self.consumer
                .committed_offsets(tpl, Duration::from_millis(300))
        }) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, ?pending, "committed offsets not settled yet; trying again");
                return Ok(());
            }
        };
        let offset =
            |topic: &str, p: i32| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
        let mut done = Vec::new();
        for p in pending {
            {
                let mut tasks = self.tasks();
                let Some(task) = tasks.held.get_mut(&p) else {
                    continue;
                };
                task.inbound_next = offset(inbound, p);
                task.agent_next = offset(agents, p);
                task.phase = Phase::Restoring;
            }
            let started = tokio::task::block_in_place(|| {
                self.restorer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .start(&self.store, p)
            });
            match started {
                Ok(started) => done.extend(started),
                // The broker busy or a leader moving: the partition waits for the next turn.
                Err(ServiceError::Kafka(e)) if !e.is_fatal() => {
                    tracing::warn!(partition = p, error = %e, "starting a restore; trying again");
                    if let Some(task) = self.tasks().held.get_mut(&p) {
                        task.phase = Phase::Pending;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        for r in done {
            self.activate(r)?;
        }
        Ok(())
    }

    /// Restores for a short while; serves the partitions that are up to date.
    pub(super) fn restore_step(&self) -> Result<(), ServiceError> {
        let finished = tokio::task::block_in_place(|| {
            let mut restorer = self.restorer.lock().unwrap_or_else(|e| e.into_inner());
            if restorer.is_idle() {
                return Ok(Vec::new());
            }
            restorer.step(&self.store, RESTORE_STEP)
        })?;
        for r in finished {
            self.activate(r)?;
        }
        Ok(())
    }

    /// A restored partition is served: its agent actions are read from their committed
    /// offset, and its inbound partition resumes.
    fn activate(&self, r: Restored) -> Result<(), ServiceError> {
        let (inbound_next, agent_next, dropped, assigned_at) = {
            let mut tasks = self.tasks();
            let Some(task) = tasks.held.get_mut(&r.partition) else {
                return Ok(());
            };
            task.phase = Phase::Active;
            (
                task.inbound_next,
                task.agent_next,
                task.dropped,
                task.assigned_at,
            )
        };
        let at = |o: Option<i64>| o.map_or(Offset::Beginning, Offset::Offset);
        let (inbound, agents) = (&self.cfg.topics.inbound, &self.cfg.topics.agent_actions);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(agents, r.partition, at(agent_next))
            .map_err(KafkaError::client("assigning agent actions"))?;
        self.agents
            .incremental_assign(&tpl)
            .map_err(KafkaError::client("assigning agent actions"))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(inbound, r.partition);
        self.consumer
            .resume(&tpl)
            .map_err(KafkaError::client("resuming a restored partition"))?;
        if dropped {
            tokio::task::block_in_place(|| {
                self.consumer.seek(
                    inbound,
                    r.partition,
                    at(inbound_next),
                    Duration::from_secs(10),
                )
            })
            .map_err(KafkaError::client("seeking a restored partition"))?;
        }
        let waited = assigned_at.elapsed();
        self.metrics.restored_records.inc_by(r.records);
        self.metrics
            .restore_seconds
            .with_label_values(&[r.kind.as_str()])
            .observe(waited.as_secs_f64());
        tracing::info!(
            partition = r.partition,
            records = r.records,
            conversations = r.conversations,
            ms = r.elapsed.as_millis() as u64,
            kind = r.kind.as_str(),
            waited_ms = waited.as_millis() as u64,
            "restored conversation state"
        );
        Ok(())
    }

    /// The records of served partitions; others (given up in this very poll, or not yet
    /// restored) are dropped, and a partition still restoring is sought back on activation.
    pub(super) fn served_only(&self, batch: Vec<Record>) -> Vec<Record> {
        let mut tasks = self.tasks();
        batch
            .into_iter()
            .filter(|r| {
                if tasks.is_active(r.partition) {
                    return true;
                }
                if r.topic == self.cfg.topics.inbound {
                    if let Some(t) = tasks.held.get_mut(&r.partition) {
                        t.dropped = true;
                    }
                }
                false
            })
            .collect()
    }
}
