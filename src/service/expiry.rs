//! Keeping disk bounded on every instance: conversations idle longer than
//! `conversation_ttl` are deleted through tombstones on the changelog (in a transaction that
//! carries the group's metadata, so an instance that lost the partition cannot do it), and
//! the warm copies of partitions given up are dropped after `warm_cache_secs`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::commit::Change;
use super::tasks::Phase;
use super::{Service, ServiceError};

/// Conversations deleted per partition in one round; the rest wait for the next.
const MAX_PER_ROUND: usize = 1000;

impl Service {
    pub(super) async fn housekeeping(&self) -> Result<(), ServiceError> {
        let keep = Duration::from_secs(self.cfg.scale.warm_cache_secs);
        let stale = self.tasks().stale(Instant::now(), keep);
        for p in stale {
            tokio::task::block_in_place(|| self.store.drop_partition(&self.changelog, p))?;
            tracing::info!(
                partition = p,
                "dropped the warm copy of a partition held elsewhere"
            );
        }
        self.expire().await
    }

    async fn expire(&self) -> Result<(), ServiceError> {
        let ttl = chrono::Duration::seconds(self.cfg.scale.conversation_ttl_secs as i64);
        let cutoff = Utc::now() - ttl;
        let mut changes = Vec::new();
        let mut offsets = HashMap::new();
        let served: Vec<(i32, Option<i64>, Option<i64>)> = {
            let tasks = self.tasks();
            tasks
                .in_phase(Phase::Active)
                .into_iter()
                .map(|p| (p, tasks.held[&p].inbound_next, tasks.held[&p].agent_next))
                .collect()
        };
        for (p, inbound_next, agent_next) in served {
            let idle = tokio::task::block_in_place(|| -> Result<Vec<String>, ServiceError> {
                let mut idle = Vec::new();
                for item in self.store.conversations_in(p) {
                    let (id, c) = item?;
                    if c.updated_at.is_some_and(|at| at < cutoff) {
                        idle.push(id);
                        if idle.len() >= MAX_PER_ROUND {
                            break;
                        }
                    }
                }
                Ok(idle)
            })?;
            if idle.is_empty() {
                continue;
            }
            // The partition's committed positions, unchanged, make the group check this
            // transaction (a zombie's is refused).
            if let Some(o) = inbound_next {
                offsets.insert((self.cfg.topics.inbound.clone(), p), o);
            }
            if let Some(o) = agent_next {
                offsets.insert((self.cfg.topics.agent_actions.clone(), p), o);
            }
            changes.extend(idle.into_iter().map(|id| Change {
                partition: p,
                id,
                value: None,
            }));
        }
        if changes.is_empty() || offsets.is_empty() {
            return Ok(());
        }
        match self.commit(&[], &changes, &offsets).await {
            Ok(ends) => {
                tokio::task::block_in_place(|| self.write_local(&changes, &ends))?;
                self.metrics.expired.inc_by(changes.len() as u64);
                tracing::info!(
                    conversations = changes.len(),
                    "deleted conversations idle longer than conversation_ttl"
                );
                Ok(())
            }
            Err(e) if e.is_fatal() => Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "expiring idle conversations aborted; next round retries");
                Ok(())
            }
        }
    }
}
