//! Restoring a partition's conversation state from the changelog, a step at a time between
//! batches, so that the poll loop never stalls (other partitions keep being served) and the
//! consumer stays well within `max.poll.interval.ms`.
//!
//! A partition is read from the local copy's changelog position (a delta when this instance
//! held it recently) or from the start (empty, its position no longer on the topic, or older
//! than [`MAX_DELTA_AGE`]) up to the changelog's high watermark as it was when the restore
//! began. The end is read without
//! isolation: reading (`read_committed`) cannot pass a transaction still open, so reaching it
//! means every transaction up to there has ended, including a stalled previous owner's, whose
//! open transaction the broker aborts after `transaction.timeout.ms`. Each chunk is written
//! with its changelog position in one RocksDB batch, so a crash mid-restore resumes as a delta.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::ServiceError;
use crate::config::Config;
use crate::kafka::{client_config, restore_consumer_config, KafkaError, ReadToEnd};
use crate::state::Store;

/// A local copy last brought up to date longer ago than this is restored in full: compaction
/// removes tombstones after the changelog's `delete.retention.ms` (24 hours by default), so a
/// delta read over a longer absence could miss a conversation's deletion and bring it back.
const MAX_DELTA_AGE: chrono::Duration = chrono::Duration::hours(12);

/// Records written to RocksDB in one batch while restoring.
const CHUNK: usize = 2000;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RestoreKind {
    /// From the start of the changelog: no usable local copy.
    Full,
    /// From the local copy's position: what changed while another instance held it.
    Delta,
}

impl RestoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }
}

/// A finished restore.
#[derive(Debug)]
pub(super) struct Restored {
    pub partition: i32,
    pub kind: RestoreKind,
    pub records: u64,
    pub conversations: usize,
    pub elapsed: Duration,
}

struct Progress {
    kind: RestoreKind,
    end: i64,
    /// The reader reported the partition's end without having read anything, and that end
    /// is stable: everything left to read was compacted away or aborted.
    empty_eof: bool,
    started: Instant,
    records: u64,
    keys: HashSet<Vec<u8>>,
}

pub(super) struct Restorer {
    changelog: String,
    /// Reads the changelog (read_committed), assigned by hand.
    consumer: BaseConsumer<ReadToEnd>,
    /// Reads high watermarks without isolation (see the module comment).
    probe: BaseConsumer,
    running: HashMap<i32, Progress>,
    chunks: u64,
}

impl Restorer {
    pub fn new(cfg: &Config) -> Result<Self, KafkaError> {
        let consumer = restore_consumer_config(cfg)
            .create_with_context(ReadToEnd)
            .map_err(KafkaError::client("creating the restore consumer"))?;
        let probe = client_config(cfg, &[("group.id", &format!("{}-probe", cfg.group_id))])
            .create()
            .map_err(KafkaError::client("creating the changelog probe"))?;
        Ok(Self {
            changelog: cfg.changelog_topic(),
            consumer,
            probe,
            running: HashMap::new(),
            chunks: 0,
        })
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Begins restoring `partition`; the restore is already done (and returned) when the
    /// local copy is up to date.
    pub fn start(
        &mut self,
        store: &Store,
        partition: i32,
    ) -> Result<Option<Restored>, ServiceError> {
        self.cancel(partition)?;
        let started = Instant::now();
        let (low, high) = self.ends(&self.probe, partition)?;
        let local = store.changelog_position(&self.changelog, partition)?;
        let now = chrono::Utc::now().timestamp_millis();
        let fresh =
            |at: Option<i64>| at.is_some_and(|t| now - t < MAX_DELTA_AGE.num_milliseconds());
        let (from, kind) = match local {
            Some((next, at)) if (low..=high).contains(&next) && fresh(at) => {
                (next, RestoreKind::Delta)
            }
            other => {
                if let Some((next, at)) = other {
                    // Too old to trust for deletions, or the topic no longer has where the
                    // local copy stopped (deleted and made again, or truncated).
                    tracing::info!(
                        partition,
                        local = next,
                        low,
                        high,
                        written_ms_ago = at.map(|t| now - t),
                        "the local copy cannot be brought up to date by a delta; restoring in full"
                    );
                }
                store.drop_partition(&self.changelog, partition)?;
                (low, RestoreKind::Full)
            }
        };
        tracing::info!(
            partition,
            kind = kind.as_str(),
            from,
            to = high,
            "restoring conversation state"
        );
        if from >= high {
            let mut b = store.batch();
            b.put_changelog_position(&self.changelog, partition, high);
            store.write(b)?;
            return Ok(Some(Restored {
                partition,
                kind,
                records: 0,
                conversations: 0,
                elapsed: started.elapsed(),
            }));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.changelog, partition, Offset::Offset(from))
            .map_err(KafkaError::client("assigning the changelog"))?;
        self.consumer
            .incremental_assign(&tpl)
            .map_err(KafkaError::client("assigning the changelog"))?;
        self.running.insert(
            partition,
            Progress {
                kind,
                end: high,
                empty_eof: false,
                started,
                records: 0,
                keys: HashSet::new(),
            },
        );
        Ok(None)
    }

    /// Stops restoring `partition` (it was revoked); what was restored stays, with its
    /// position, as a warm copy.
    pub fn cancel(&mut self, partition: i32) -> Result<(), ServiceError> {
        if self.running.remove(&partition).is_some() {
            self.unassign(partition)?;
        }
        Ok(())
    }

    /// Restores for up to `budget`; returns the partitions that are now up to date.
    pub fn step(&mut self, store: &Store, budget: Duration) -> Result<Vec<Restored>, ServiceError> {
        if self.running.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + budget;
        let mut batch = store.batch();
        let mut in_batch = 0;
        let mut last: HashMap<i32, i64> = HashMap::new();
        while Instant::now() < deadline {
            let Some(polled) = self.consumer.poll(Duration::from_millis(20)) else {
                if self.all_at_end()? {
                    break;
                }
                continue;
            };
            let m = match polled {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(partition)) => {
                    self.note_empty_end(partition)?;
                    continue;
                }
                Err(e) if super::retry::is_permanent(&e) => {
                    return Err(KafkaError::Client {
                        context: format!(
                            "restoring from {} (check this instance's ACLs)",
                            self.changelog
                        ),
                        cause: e,
                    }
                    .into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the changelog; retrying");
                    break;
                }
            };
            let partition = m.partition();
            let Some(p) = self.running.get_mut(&partition) else {
                continue;
            };
            let Some(key) = m.key() else {
                tracing::warn!(
                    partition,
                    offset = m.offset(),
                    "a changelog record without a key; skipped"
                );
                continue;
            };
            match m.payload() {
                Some(value) => batch.put_conversation_bytes(partition, key, value),
                None => batch.delete_conversation(partition, key),
            }
            p.records += 1;
            p.keys.insert(key.to_vec());
            last.insert(partition, m.offset() + 1);
            in_batch += 1;
            if in_batch >= CHUNK {
                self.write_chunk(store, batch, &mut last)?;
                batch = store.batch();
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            self.write_chunk(store, batch, &mut last)?;
        }
        self.finished(store)
    }

    /// A changelog partition's start and end as `reader` sees them: the probe (no isolation)
    /// sees the high watermark, the restore consumer (`read_committed`) the stable end.
    fn ends<C: ConsumerContext>(
        &self,
        reader: &BaseConsumer<C>,
        partition: i32,
    ) -> Result<(i64, i64), KafkaError> {
        reader
            .fetch_watermarks(&self.changelog, partition, TIMEOUT)
            .map_err(KafkaError::client(format!(
                "reading the ends of {}/{partition}",
                self.changelog
            )))
    }

    /// The reader reached the end it can see with nothing read. That end is the last stable
    /// offset: only when it has reached the restore's end is nothing left to wait for (a
    /// transaction still open below the end may yet commit).
    fn note_empty_end(&mut self, partition: i32) -> Result<(), ServiceError> {
        if self.positions()?.contains_key(&partition) {
            return Ok(());
        }
        let Some(end) = self.running.get(&partition).map(|p| p.end) else {
            return Ok(());
        };
        let (_, stable) = self.ends(&self.consumer, partition)?;
        if stable >= end {
            if let Some(p) = self.running.get_mut(&partition) {
                p.empty_eof = true;
            }
        }
        Ok(())
    }

    fn write_chunk(
        &mut self,
        store: &Store,
        mut batch: crate::state::StateBatch<'_>,
        last: &mut HashMap<i32, i64>,
    ) -> Result<(), ServiceError> {
        for (partition, next) in last.drain() {
            batch.put_changelog_position(&self.changelog, partition, next);
        }
        store.write(batch)?;
        self.chunks += 1;
        crash_point(self.chunks);
        Ok(())
    }

    fn positions(&self) -> Result<HashMap<i32, i64>, ServiceError> {
        let tpl = self
            .consumer
            .position()
            .map_err(KafkaError::client("reading the restore position"))?;
        Ok(tpl
            .elements_for_topic(&self.changelog)
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    fn all_at_end(&self) -> Result<bool, ServiceError> {
        let at = self.positions()?;
        Ok(self.running.iter().all(|(p, progress)| match at.get(p) {
            Some(o) => *o >= progress.end,
            None => progress.empty_eof,
        }))
    }

    /// The partitions whose read position reached their end: their position (past the
    /// last transaction marker) is stored and they leave the restore consumer.
    fn finished(&mut self, store: &Store) -> Result<Vec<Restored>, ServiceError> {
        let at = self.positions()?;
        let done: Vec<(i32, i64)> = self
            .running
            .iter()
            .filter_map(|(p, progress)| match at.get(p) {
                Some(o) if *o >= progress.end => Some((*p, *o)),
                None if progress.empty_eof => Some((*p, progress.end)),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (partition, next) in done {
            let mut b = store.batch();
            b.put_changelog_position(&self.changelog, partition, next);
            store.write(b)?;
            self.unassign(partition)?;
            if let Some(p) = self.running.remove(&partition) {
                out.push(Restored {
                    partition,
                    kind: p.kind,
                    records: p.records,
                    conversations: p.keys.len(),
                    elapsed: p.started.elapsed(),
                });
            }
        }
        Ok(out)
    }

    fn unassign(&self, partition: i32) -> Result<(), ServiceError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.changelog, partition);
        self.consumer
            .incremental_unassign(&tpl)
            .map_err(KafkaError::client("unassigning the changelog"))?;
        Ok(())
    }
}

/// Fault injection for the chaos tests: with `PARLEY_CRASH_DURING_RESTORE=N` the process
/// aborts right after writing its Nth restored chunk, in the middle of a restore.
fn crash_point(chunks: u64) {
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("PARLEY_CRASH_DURING_RESTORE")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if *at == Some(chunks) {
        tracing::error!(
            chunk = chunks,
            "PARLEY_CRASH_DURING_RESTORE: aborting mid-restore"
        );
        std::process::abort();
    }
}
