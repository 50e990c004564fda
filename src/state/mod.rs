//! Parley's state in RocksDB: conversations, the orders table and its per-customer index,
//! and how far each is applied. Every value starts with a version byte, so a later release
//! can read (and migrate) what an earlier one wrote.
//!
//! Conversations are scoped to the inbound partition that owns them (the key starts with the
//! partition), and each partition's position in the conversation changelog is kept with them,
//! written in the same batch, with when it was written: a partition can be restored, dropped
//! or kept warm on its own, and its local copy is the changelog up to that position (as of
//! that time: see `service::restore` for how old a copy may be and still be brought up to
//! date).

mod codec;
mod knowledge;

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use crate::dialogue::{Conversation, Orders};
use crate::wire::Order;

pub use codec::{decode, encode, encode_conversation};
pub use knowledge::StoredVectors;

/// Conversations of store version 1, keyed by id alone; read as a fallback (see
/// `Store::conversation`), never written.
const CF_LEGACY_CONVERSATIONS: &str = "conversations";
const CF_CONVERSATIONS: &str = "partition_conversations";
const CF_ORDERS: &str = "orders";
const CF_ORDERS_BY_CUSTOMER: &str = "orders_by_customer";
const CF_OFFSETS: &str = "offsets";
/// Version 1's outbox; unused since outputs are produced before the state is written.
const CF_OUTBOX: &str = "outbox";
const CF_META: &str = "meta";
/// Articles and products with their vectors (see `knowledge.rs`).
const CF_KNOWLEDGE: &str = "knowledge";
const FAMILIES: [&str; 8] = [
    CF_KNOWLEDGE,
    CF_LEGACY_CONVERSATIONS,
    CF_CONVERSATIONS,
    CF_ORDERS,
    CF_ORDERS_BY_CUSTOMER,
    CF_OFFSETS,
    CF_OUTBOX,
    CF_META,
];

/// Layout of the store as a whole (column families and keys). Version 1 kept conversations
/// by id alone and an outbox; it is opened and upgraded in place.
pub const STORE_VERSION: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {path}: {cause}")]
    Open { path: String, cause: rocksdb::Error },
    #[error("state store: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("state store: {what} is corrupt: {message}")]
    Corrupt { what: String, message: String },
    #[error("state store: {what} was written by a newer Parley (format version {version}); upgrade Parley or use another --state-dir")]
    TooNew { what: String, version: u8 },
}

/// The state store; cheap to share behind an `Arc` (RocksDB is thread-safe).
pub struct Store {
    db: DB,
    sync_writes: bool,
}

fn offset_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = topic.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Where the time a changelog position was written is kept (in the meta family).
fn position_time_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = b"position_at\0".to_vec();
    k.extend_from_slice(&offset_key(topic, partition));
    k
}

/// A conversation's key: its partition (big-endian, so one partition is one key range),
/// then its id.
fn conversation_key(partition: i32, id: &str) -> Vec<u8> {
    let mut k = partition.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

fn partition_range(partition: i32) -> (Vec<u8>, Vec<u8>) {
    let start = partition.to_be_bytes().to_vec();
    let end = match partition.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; 5],
    };
    (start, end)
}

fn customer_key(customer_id: &str, order_id: &str) -> Vec<u8> {
    let mut k = customer_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(order_id.as_bytes());
    k
}

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|cause| StateError::Open {
            path: path.display().to_string(),
            cause,
        })?;
        let store = Self {
            db,
            sync_writes: true,
        };
        store.check_version()?;
        Ok(store)
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // The families are created at open; a missing one is a programming error.
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    fn check_version(&self) -> Result<(), StateError> {
        let cf = self.cf(CF_META);
        match self.db.get_cf(cf, b"store_version")? {
            None => {
                self.db.put_cf(cf, b"store_version", [STORE_VERSION])?;
                Ok(())
            }
            Some(v) if v.first() == Some(&STORE_VERSION) => Ok(()),
            Some(v) if v.first() == Some(&1) => {
                // Version 1: its conversations stay where they are and are read as a
                // fallback; its outbox belonged to transactions settled before this start.
                let mut wb = WriteBatch::default();
                wb.delete_range_cf(
                    self.cf(CF_OUTBOX),
                    [0u8].as_slice(),
                    [0xffu8; 64].as_slice(),
                );
                wb.put_cf(cf, b"store_version", [STORE_VERSION]);
                self.db.write(wb)?;
                tracing::info!("state store upgraded from version 1 to {STORE_VERSION}");
                Ok(())
            }
            Some(v) if v.first().is_some_and(|x| *x > STORE_VERSION) => Err(StateError::TooNew {
                what: "the store".into(),
                version: v[0],
            }),
            Some(v) => Err(StateError::Corrupt {
                what: "store_version".into(),
                message: format!("unexpected value {v:?}"),
            }),
        }
    }

    /// A conversation of `partition`. A conversation not found there is looked up among
    /// those a version 1 store kept by id alone: an upgraded instance goes on with them, and
    /// the first change moves one into its partition (and onto the changelog).
    pub fn conversation(
        &self,
        partition: i32,
        id: &str,
    ) -> Result<Option<Conversation>, StateError> {
        let found = self
            .db
            .get_pinned_cf(self.cf(CF_CONVERSATIONS), conversation_key(partition, id))?;
        let found = match found {
            Some(bytes) => Some(bytes),
            None => self
                .db
                .get_pinned_cf(self.cf(CF_LEGACY_CONVERSATIONS), id.as_bytes())?,
        };
        match found {
            None => Ok(None),
            Some(bytes) => codec::decode_conversation(&bytes, id).map(Some),
        }
    }

    /// Every conversation of `partition` (id and state), for the expiry scan; one that cannot
    /// be decoded is reported, not skipped silently.
    pub fn conversations_in(
        &self,
        partition: i32,
    ) -> impl Iterator<Item = Result<(String, Conversation), StateError>> + '_ {
        let (start, end) = partition_range(partition);
        self.db
            .iterator_cf(
                self.cf(CF_CONVERSATIONS),
                IteratorMode::From(&start, Direction::Forward),
            )
            .take_while(move |item| {
                item.as_ref()
                    .map_or(true, |(k, _)| k.as_ref() < end.as_slice())
            })
            .map(|item| {
                let (k, v) = item?;
                let id = String::from_utf8_lossy(&k[4..]).into_owned();
                let c = codec::decode_conversation(&v, &id)?;
                Ok((id, c))
            })
    }

    /// The partitions this store holds conversation state of: those with a changelog
    /// position under `changelog`.
    pub fn partitions_held(&self, changelog: &str) -> Result<Vec<i32>, StateError> {
        let mut prefix = changelog.as_bytes().to_vec();
        prefix.push(0);
        Ok(self
            .suffixes(CF_OFFSETS, &prefix)?
            .into_iter()
            .filter_map(|k| <[u8; 4]>::try_from(k.as_slice()).ok())
            .map(i32::from_be_bytes)
            .collect())
    }

    /// The rest of every key of `cf` that starts with `prefix`, in key order.
    fn suffixes(&self, cf: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StateError> {
        let mut out = Vec::new();
        let iter = self
            .db
            .iterator_cf(self.cf(cf), IteratorMode::From(prefix, Direction::Forward));
        for item in iter {
            let (k, _) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push(k[prefix.len()..].to_vec());
        }
        Ok(out)
    }

    /// Forgets a partition's conversations and its changelog position together, so that
    /// the next restore of it reads the changelog from the start.
    pub fn drop_partition(&self, changelog: &str, partition: i32) -> Result<(), StateError> {
        let (start, end) = partition_range(partition);
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(self.cf(CF_CONVERSATIONS), start, end);
        wb.delete_cf(self.cf(CF_OFFSETS), offset_key(changelog, partition));
        wb.delete_cf(self.cf(CF_META), position_time_key(changelog, partition));
        self.db.write(wb)?;
        Ok(())
    }

    /// A partition's changelog position and when it was written (milliseconds since the
    /// epoch; `None` for a position written before times were kept).
    pub fn changelog_position(
        &self,
        changelog: &str,
        partition: i32,
    ) -> Result<Option<(i64, Option<i64>)>, StateError> {
        let Some(next) = self.applied_offset(changelog, partition)? else {
            return Ok(None);
        };
        let at = self
            .db
            .get_cf(self.cf(CF_META), position_time_key(changelog, partition))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(i64::from_be_bytes);
        Ok(Some((next, at)))
    }

    pub fn order(&self, id: &str) -> Result<Option<Order>, StateError> {
        match self.db.get_pinned_cf(self.cf(CF_ORDERS), id.as_bytes())? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, &format!("order {id}")).map(Some),
        }
    }

    /// All orders of one customer, through the index.
    pub fn orders_of(&self, customer_id: &str) -> Result<Vec<Order>, StateError> {
        let mut prefix = customer_id.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for order_id in self.suffixes(CF_ORDERS_BY_CUSTOMER, &prefix)? {
            if let Some(o) = self.order(&String::from_utf8_lossy(&order_id))? {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// The next offset to read of a partition, as far as the state has applied it (the
    /// orders topic, the conversation changelog).
    pub fn applied_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, StateError> {
        match self
            .db
            .get_cf(self.cf(CF_OFFSETS), offset_key(topic, partition))?
        {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 8] = v.as_slice().try_into().map_err(|_| StateError::Corrupt {
                    what: format!("offset of {topic}/{partition}"),
                    message: format!("{} bytes, expected 8", v.len()),
                })?;
                Ok(Some(i64::from_be_bytes(bytes)))
            }
        }
    }

    pub fn batch(&self) -> StateBatch<'_> {
        StateBatch {
            store: self,
            wb: WriteBatch::default(),
        }
    }

    /// Applies a batch atomically (and durably: the WAL is synced).
    pub fn write(&self, batch: StateBatch<'_>) -> Result<(), StateError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(self.sync_writes);
        self.db.write_opt(batch.wb, &opts)?;
        Ok(())
    }

    /// Approximate bytes on disk and in memory.
    pub fn size_bytes(&self) -> u64 {
        let mut total = 0;
        for name in FAMILIES {
            for prop in [
                "rocksdb.total-sst-files-size",
                "rocksdb.cur-size-all-mem-tables",
            ] {
                if let Ok(Some(v)) = self.db.property_int_value_cf(self.cf(name), prop) {
                    total += v;
                }
            }
        }
        total
    }

    /// Estimated number of conversations kept (warm copies of partitions given up
    /// included).
    pub fn conversation_count(&self) -> u64 {
        [CF_CONVERSATIONS, CF_LEGACY_CONVERSATIONS]
            .iter()
            .filter_map(|cf| {
                self.db
                    .property_int_value_cf(self.cf(cf), "rocksdb.estimate-num-keys")
                    .ok()
                    .flatten()
            })
            .sum()
    }

    /// Flushes memtables so a clean shutdown leaves no WAL to replay.
    pub fn flush(&self) -> Result<(), StateError> {
        for name in FAMILIES {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }
}

/// Writes that must happen together (one batch's effects, with their positions).
pub struct StateBatch<'a> {
    store: &'a Store,
    wb: WriteBatch,
}

impl StateBatch<'_> {
    /// Stores a conversation of `partition` (and retires its version 1 copy, if any).
    #[cfg(test)]
    pub fn put_conversation(&mut self, partition: i32, id: &str, c: &Conversation) {
        self.wb.put_cf(
            self.store.cf(CF_CONVERSATIONS),
            conversation_key(partition, id),
            codec::encode_conversation(c),
        );
        self.wb
            .delete_cf(self.store.cf(CF_LEGACY_CONVERSATIONS), id.as_bytes());
    }

    /// Stores a conversation as the changelog carries it (already encoded).
    pub fn put_conversation_bytes(&mut self, partition: i32, id: &[u8], value: &[u8]) {
        let mut k = partition.to_be_bytes().to_vec();
        k.extend_from_slice(id);
        self.wb.put_cf(self.store.cf(CF_CONVERSATIONS), k, value);
        self.wb
            .delete_cf(self.store.cf(CF_LEGACY_CONVERSATIONS), id);
    }

    pub fn delete_conversation(&mut self, partition: i32, id: &[u8]) {
        let mut k = partition.to_be_bytes().to_vec();
        k.extend_from_slice(id);
        self.wb.delete_cf(self.store.cf(CF_CONVERSATIONS), k);
        self.wb
            .delete_cf(self.store.cf(CF_LEGACY_CONVERSATIONS), id);
    }

    /// A partition's changelog position, stamped with the time it is written.
    pub fn put_changelog_position(&mut self, changelog: &str, partition: i32, next: i64) {
        self.put_offset(changelog, partition, next);
        let now = chrono::Utc::now().timestamp_millis();
        self.wb.put_cf(
            self.store.cf(CF_META),
            position_time_key(changelog, partition),
            now.to_be_bytes(),
        );
    }

    /// The next offset to read of a topic's partition (the orders topic, the changelog).
    pub fn put_offset(&mut self, topic: &str, partition: i32, next: i64) {
        self.wb.put_cf(
            self.store.cf(CF_OFFSETS),
            offset_key(topic, partition),
            next.to_be_bytes(),
        );
    }

    /// Upserts an order, moving its index entry if the customer changed.
    pub fn put_order(&mut self, order: &Order, previous: Option<&Order>) {
        if let Some(p) = previous {
            self.wb.delete_cf(
                self.store.cf(CF_ORDERS_BY_CUSTOMER),
                customer_key(&p.customer_id, &p.order_id),
            );
        }
        self.wb.put_cf(
            self.store.cf(CF_ORDERS),
            order.order_id.as_bytes(),
            encode(order),
        );
        self.wb.put_cf(
            self.store.cf(CF_ORDERS_BY_CUSTOMER),
            customer_key(&order.customer_id, &order.order_id),
            [],
        );
    }

    pub fn delete_order(&mut self, order_id: &str, previous: Option<&Order>) {
        if let Some(p) = previous {
            self.wb.delete_cf(
                self.store.cf(CF_ORDERS_BY_CUSTOMER),
                customer_key(&p.customer_id, &p.order_id),
            );
        }
        self.wb
            .delete_cf(self.store.cf(CF_ORDERS), order_id.as_bytes());
    }
}

/// The dialogue reads orders through this; a read error is logged and reads as "no order",
/// which reveals nothing and lets the conversation go on.
impl Orders for Store {
    fn get(&self, order_id: &str) -> Option<Order> {
        self.order(order_id).unwrap_or_else(|error| {
            tracing::warn!(order_id, %error, "reading an order failed; reads as no order");
            None
        })
    }

    fn open_orders_of(&self, customer_id: &str) -> Vec<Order> {
        match self.orders_of(customer_id) {
            Ok(orders) => orders.into_iter().filter(|o| o.status.is_open()).collect(),
            Err(error) => {
                tracing::warn!(
                    customer_id,
                    %error,
                    "reading a customer's orders failed; reads as none"
                );
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests;
