//! The inbound partitions this instance holds, and where each one is: waiting for its
//! committed offsets, restoring its state, or served. Records of a partition that is not
//! served are never processed.

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Assigned; its committed offsets are not read yet.
    Pending,
    Restoring,
    Active,
}

#[derive(Debug)]
pub(super) struct Task {
    pub phase: Phase,
    pub assigned_at: Instant,
    /// The next offsets to read of the inbound and agent-actions partitions, as committed
    /// (`None`: nothing committed yet, start at the beginning).
    pub inbound_next: Option<i64>,
    pub agent_next: Option<i64>,
    /// A record of it arrived before it was served and was dropped: seek back on activation.
    pub dropped: bool,
}

#[derive(Debug, Default)]
pub(super) struct Tasks {
    pub held: BTreeMap<i32, Task>,
    /// Partitions given up (or found on disk at start), with when: their state is kept
    /// warm for a while, then dropped.
    pub warm: HashMap<i32, Instant>,
}

impl Tasks {
    pub fn assign(&mut self, partitions: &[i32], now: Instant) {
        for p in partitions {
            self.warm.remove(p);
            self.held.insert(
                *p,
                Task {
                    phase: Phase::Pending,
                    assigned_at: now,
                    inbound_next: None,
                    agent_next: None,
                    dropped: false,
                },
            );
        }
    }

    /// Forgets the partitions; returns those that were served (their agent-actions
    /// partition is to be unassigned).
    pub fn revoke(&mut self, partitions: &[i32], now: Instant) -> Vec<i32> {
        let mut served = Vec::new();
        for p in partitions {
            if let Some(t) = self.held.remove(p) {
                if t.phase == Phase::Active {
                    served.push(*p);
                }
            }
            self.warm.insert(*p, now);
        }
        served
    }

    pub fn is_active(&self, partition: i32) -> bool {
        self.held
            .get(&partition)
            .is_some_and(|t| t.phase == Phase::Active)
    }

    pub fn in_phase(&self, phase: Phase) -> Vec<i32> {
        self.held
            .iter()
            .filter(|(_, t)| t.phase == phase)
            .map(|(p, _)| *p)
            .collect()
    }

    pub fn all_active(&self) -> bool {
        self.held.values().all(|t| t.phase == Phase::Active)
    }

    /// Records the offsets a batch committed, keyed by (topic, partition).
    pub fn committed(&mut self, next: &HashMap<(String, i32), i64>, inbound: &str) {
        for ((topic, partition), offset) in next {
            if let Some(t) = self.held.get_mut(partition) {
                if topic == inbound {
                    t.inbound_next = Some(*offset);
                } else {
                    t.agent_next = Some(*offset);
                }
            }
        }
    }

    /// Warm partitions kept longer than `keep`, to be dropped now.
    pub fn stale(&mut self, now: Instant, keep: std::time::Duration) -> Vec<i32> {
        let stale: Vec<i32> = self
            .warm
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= keep)
            .map(|(p, _)| *p)
            .collect();
        for p in &stale {
            self.warm.remove(p);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn partitions_move_through_their_phases_and_cool_down() {
        let t0 = Instant::now();
        let mut tasks = Tasks::default();
        tasks.warm.insert(7, t0);
        tasks.assign(&[1, 2, 7], t0);
        assert!(
            !tasks.warm.contains_key(&7),
            "an assigned partition is not warm"
        );
        assert_eq!(tasks.in_phase(Phase::Pending), vec![1, 2, 7]);
        tasks.held.get_mut(&1).unwrap().phase = Phase::Active;
        assert!(tasks.is_active(1) && !tasks.is_active(2) && !tasks.all_active());
        let next = HashMap::from([
            (("in".to_string(), 1), 40),
            (("agents".to_string(), 1), 3),
            (("in".to_string(), 9), 5),
        ]);
        tasks.committed(&next, "in");
        assert_eq!(tasks.held[&1].inbound_next, Some(40));
        assert_eq!(tasks.held[&1].agent_next, Some(3));
        assert_eq!(tasks.revoke(&[1, 2], t0), vec![1]);
        assert_eq!(tasks.held.keys().copied().collect::<Vec<_>>(), vec![7]);
        assert!(tasks
            .stale(t0 + Duration::from_secs(5), Duration::from_secs(10))
            .is_empty());
        let mut stale = tasks.stale(t0 + Duration::from_secs(10), Duration::from_secs(10));
        stale.sort();
        assert_eq!(stale, vec![1, 2]);
        assert!(tasks.warm.is_empty());
    }
}
