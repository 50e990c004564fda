//! Watches the consumer group from librdkafka's own statistics, so that an instance left out
//! of its group does not sit idle unnoticed.
//!
//! After a broker restart that outlasted the session, a member rejoins the group on its own;
//! librdkafka does the joining. Once in a while the rejoin does not settle: the member never
//! gets back to a steady assignment, serves no partition and logs nothing. What counts here
//! is time spent unsettled *while connected to the coordinator*, measured between the
//! statistics' own timestamps: time without a coordinator (an outage: nothing can settle,
//! and restarting would not help) and time without statistics (the loop busy elsewhere, not
//! polling) add nothing. Any rebalance step taken (librdkafka's rebalance count moved) or a
//! steady state starts the count again. Past the limit the service stops with an error that
//! says so; a restart joins the group afresh (with a new member id), and exactly-once makes
//! that restart safe.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

/// The part of librdkafka's statistics JSON read here.
#[derive(Debug, Deserialize)]
pub(super) struct Stats {
    /// librdkafka's monotonic clock, in microseconds.
    ts: i64,
    /// Present for a group member.
    cgrp: Option<GroupStats>,
}

#[derive(Debug, Clone, Deserialize)]
struct GroupStats {
    /// The coordinator connection: "up" once the coordinator is known and connected.
    state: String,
    /// The member's progress through join, sync and assignment: "steady" when done.
    join_state: String,
    /// Assigns and revokes so far.
    rebalance_cnt: i64,
    #[serde(default)]
    assignment_size: i64,
}

impl Stats {
    pub(super) fn parse(json: &[u8]) -> Option<Self> {
        serde_json::from_slice(json).ok()
    }
}

/// Why the group looks stuck: how long, and the states librdkafka last reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    pub for_: Duration,
    pub state: String,
    pub join_state: String,
}

impl std::fmt::Display for Unsettled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this instance has not settled in its consumer group for {} s while connected to \
             the group coordinator (librdkafka group state {}, join state {})",
            self.for_.as_secs(),
            self.state,
            self.join_state
        )
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// The previous sample: its time (µs) and group state.
    last: Option<(i64, GroupStats)>,
    /// Time unsettled with the coordinator connected since the last rebalance step.
    unsettled_us: i64,
    warned: bool,
}

/// The group state seen in the statistics, fed by the statistics callback (inside the
/// consumer's poll) and read by the service loop.
#[derive(Debug, Default)]
pub(super) struct GroupWatch {
    inner: Mutex<Inner>,
}

impl GroupWatch {
    pub(super) fn observe(&self, stats: &Stats) {
        let Some(g) = &stats.cgrp else {
            return;
        };
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let settled = g.join_state == "steady";
        match &i.last {
            Some((ts, prev)) if !settled && prev.rebalance_cnt == g.rebalance_cnt => {
                // Still where it was: the stretch since the last sample counts if the
                // member was unsettled and connected to its coordinator all along.
                if prev.state == "up" && g.state == "up" && prev.join_state != "steady" {
                    i.unsettled_us += (stats.ts - ts).max(0);
                }
            }
            _ => {
                i.unsettled_us = 0;
                i.warned = false;
            }
        }
        let changed = i.last.as_ref().is_none_or(|(_, prev)| {
            prev.state != g.state
                || prev.join_state != g.join_state
                || prev.rebalance_cnt != g.rebalance_cnt
        });
        if changed {
            tracing::info!(
                state = %g.state,
                join_state = %g.join_state,
                assigned = g.assignment_size,
                rebalances = g.rebalance_cnt,
                "consumer group"
            );
        }
        i.last = Some((stats.ts, g.clone()));
    }

    /// How long the member has been unsettled with its coordinator connected, if at all.
    pub(super) fn unsettled(&self) -> Option<Unsettled> {
        let i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (_, last) = i.last.as_ref()?;
        if i.unsettled_us == 0 {
            return None;
        }
        Some(Unsettled {
            for_: Duration::from_micros(i.unsettled_us as u64),
            state: last.state.clone(),
            join_state: last.join_state.clone(),
        })
    }

    /// True the first time it is asked for one unsettled stretch: a warning is due.
    pub(super) fn first_warning(&self) -> bool {
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        !std::mem::replace(&mut i.warned, true)
    }
}

/// How long the member may stay unsettled before the service stops, from the group
/// consumer's effective settings (`[kafka]` entries included): a rebalance may rightly wait
/// a full rebalance timeout (`max.poll.interval.ms`) for a member, then take a session for
/// the next round; a margin on top.
fn unsettled_limit(max_poll_interval_ms: u64, session_timeout_ms: u64) -> Duration {
    Duration::from_millis(max_poll_interval_ms + session_timeout_ms) + Duration::from_secs(30)
}

/// The limit for a group consumer built from `config`, or `None` (with a warning) when a
/// `[kafka]` entry turned its statistics off.
pub(super) fn limit_of(config: &rdkafka::ClientConfig) -> Option<Duration> {
    let ms = |key: &str| config.get(key).and_then(|v| v.trim().parse::<u64>().ok());
    if ms("statistics.interval.ms").unwrap_or(0) == 0 {
        tracing::warn!(
            "statistics.interval.ms is 0: an instance whose rejoin never settles will not be \
             noticed and stopped"
        );
        return None;
    }
    // librdkafka's defaults, where a setting is absent.
    Some(unsettled_limit(
        ms("max.poll.interval.ms").unwrap_or(300_000),
        ms("session.timeout.ms").unwrap_or(45_000),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn stats(secs: i64, state: &str, join_state: &str, rebalances: i64) -> Stats {
        Stats::parse(
            format!(
                r#"{{"name": "c", "ts": {}, "cgrp": {{"state": "{state}", "stateage": 1,
                 "join_state": "{join_state}", "rebalance_age": 1, "rebalance_cnt": {rebalances},
                 "rebalance_reason": "", "assignment_size": 0}}, "brokers": {{}}}}"#,
                secs * S
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn secs(w: &GroupWatch) -> Option<u64> {
        w.unsettled().map(|u| u.for_.as_secs())
    }

    #[test]
    fn counts_only_time_unsettled_with_the_coordinator_connected() {
        let w = GroupWatch::default();
        w.observe(&stats(0, "up", "steady", 1));
        assert_eq!(secs(&w), None);
        // A broker outage: the session lapses, the coordinator is unknown; nothing counts.
        w.observe(&stats(5, "query-coord", "steady", 1));
        w.observe(&stats(15, "query-coord", "init", 2));
        w.observe(&stats(60, "query-coord", "init", 2));
        assert_eq!(secs(&w), None);
        // Back, and rejoining without getting anywhere.
        w.observe(&stats(70, "up", "wait-join", 2));
        w.observe(&stats(75, "up", "wait-join", 2));
        w.observe(&stats(110, "up", "wait-join", 2));
        let u = w.unsettled().unwrap();
        assert_eq!(u.for_, Duration::from_secs(40));
        assert_eq!(u.join_state, "wait-join");
        assert!(u.to_string().contains("for 40 s"), "{u}");
        // The coordinator lost again for a while: that stretch (and the one it was lost in)
        // adds nothing, the count stays.
        w.observe(&stats(115, "query-coord", "wait-join", 2));
        w.observe(&stats(200, "up", "wait-join", 2));
        assert_eq!(secs(&w), Some(40));
        w.observe(&stats(210, "up", "wait-join", 2));
        assert_eq!(secs(&w), Some(50));
        // Settled: the count starts over.
        w.observe(&stats(215, "up", "steady", 3));
        assert_eq!(secs(&w), None);
    }

    #[test]
    fn any_rebalance_step_starts_the_count_again() {
        // Back-to-back rebalances (a rolling restart) never look steady between two samples,
        // but each one moves the rebalance count.
        let w = GroupWatch::default();
        w.observe(&stats(0, "up", "wait-join", 1));
        w.observe(&stats(50, "up", "wait-sync", 1));
        assert_eq!(secs(&w), Some(50));
        w.observe(&stats(55, "up", "wait-join", 2));
        assert_eq!(secs(&w), None);
        w.observe(&stats(60, "up", "wait-join", 2));
        assert_eq!(secs(&w), Some(5));
    }

    #[test]
    fn time_without_statistics_counts_by_their_own_clock() {
        // Samples handled late, all at once (the loop was busy): only their own timestamps
        // count, not when they were handled.
        let w = GroupWatch::default();
        w.observe(&stats(0, "up", "wait-join", 1));
        w.observe(&stats(5, "up", "wait-join", 1));
        assert_eq!(secs(&w), Some(5));
    }

    #[test]
    fn warns_once_per_unsettled_stretch() {
        let w = GroupWatch::default();
        w.observe(&stats(0, "up", "wait-join", 1));
        w.observe(&stats(5, "up", "wait-join", 1));
        assert!(w.first_warning());
        assert!(!w.first_warning());
        w.observe(&stats(10, "up", "steady", 2));
        w.observe(&stats(15, "up", "wait-join", 3));
        assert!(w.first_warning());
    }

    #[test]
    fn statistics_of_a_client_without_a_group_change_nothing() {
        let w = GroupWatch::default();
        w.observe(&stats(0, "up", "wait-join", 1));
        w.observe(&stats(5, "up", "wait-join", 1));
        w.observe(&Stats::parse(br#"{"name": "p", "ts": 99000000, "brokers": {}}"#).unwrap());
        assert_eq!(secs(&w), Some(5));
        assert!(Stats::parse(b"not json").is_none());
    }

    #[test]
    fn the_limit_follows_the_effective_settings() {
        assert_eq!(unsettled_limit(60_000, 10_000), Duration::from_secs(100));
        assert_eq!(unsettled_limit(300_000, 45_000), Duration::from_secs(375));
    }
}
