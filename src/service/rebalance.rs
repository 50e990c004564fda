//! The group's rebalance callbacks. They run inside the consumer's poll (in `gather`), so
//! they only take note: the batch in flight has always committed before the next poll, and
//! what moves is handled by the loop between two batches (`tasks`). Newly assigned
//! partitions are paused right after the incremental assign, so that they are not fetched
//! while their state is restored; a record of theirs that still arrives is dropped and
//! the partition sought back when it is served (`partitions`).

use std::sync::{Arc, Mutex};

use super::group_watch::{GroupWatch, Stats};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};

/// One thing the group did, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Move {
    Assigned(Vec<i32>),
    /// `lost`: the session lapsed, and another member may already own them.
    Revoked {
        partitions: Vec<i32>,
        lost: bool,
    },
    /// A rebalance failed; the consumer rejoins by itself.
    Failed(String),
}

pub(super) type Moves = Vec<Move>;

/// The conversation consumer's context: it records the inbound partitions that move, and
/// the group state from librdkafka's statistics.
pub struct GroupContext {
    inbound: String,
    moves: Arc<Mutex<Moves>>,
    watch: Arc<GroupWatch>,
}

impl GroupContext {
    pub(super) fn new(inbound: &str) -> (Self, Arc<Mutex<Moves>>, Arc<GroupWatch>) {
        let moves = Arc::new(Mutex::new(Moves::new()));
        let watch = Arc::new(GroupWatch::default());
        let ctx = Self {
            inbound: inbound.to_string(),
            moves: moves.clone(),
            watch: watch.clone(),
        };
        (ctx, moves, watch)
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.inbound)
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    fn note(&self, f: impl FnOnce(&mut Moves)) {
        f(&mut self.moves.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl ClientContext for GroupContext {
    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(stats) = Stats::parse(statistics) {
            self.watch.observe(&stats);
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions = self.partitions(tpl);
                let lost = consumer.assignment_lost();
                self.note(|m| m.push(Move::Revoked { partitions, lost }));
            }
            Rebalance::Error(e) => {
                let e = e.to_string();
                self.note(|m| m.push(Move::Failed(e)));
            }
            Rebalance::Assign(_) => {}
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if tpl.count() == 0 {
                return;
            }
            // Paused until restored; resumed by the loop. A pause that fails leaves the
            // partition fetching: the loop then drops its records and seeks back.
            if let Err(e) = consumer.pause(tpl) {
                tracing::warn!(error = %e, "pausing newly assigned partitions failed");
            }
            let assigned = self.partitions(tpl);
            self.note(|m| m.push(Move::Assigned(assigned)));
        }
    }
}
