//! Parley's state in RocksDB: conversations, the orders table and its per-customer index,
//! the offsets applied so far and the outbox of each applied input. Every value starts with
//! a version byte, so a later release can read (and migrate) what an earlier one wrote.

mod codec;

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};
use serde::{Deserialize, Serialize};

use crate::dialogue::{Conversation, Orders};
use crate::wire::Order;

pub use codec::{decode, encode};

const CF_CONVERSATIONS: &str = "conversations";
const CF_ORDERS: &str = "orders";
const CF_ORDERS_BY_CUSTOMER: &str = "orders_by_customer";
const CF_OFFSETS: &str = "offsets";
const CF_OUTBOX: &str = "outbox";
const CF_META: &str = "meta";
const FAMILIES: [&str; 6] = [
    CF_CONVERSATIONS,
    CF_ORDERS,
    CF_ORDERS_BY_CUSTOMER,
    CF_OFFSETS,
    CF_OUTBOX,
    CF_META,
];

/// Layout of the store as a whole (column families and keys).
pub const STORE_VERSION: u8 = 1;

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

/// A record to produce, as kept in the outbox until its transaction has committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
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

fn outbox_key(topic: &str, partition: i32, offset: i64) -> Vec<u8> {
    let mut k = offset_key(topic, partition);
    // Big-endian of a non-negative offset sorts numerically, so a range delete prunes.
    k.extend_from_slice(&offset.to_be_bytes());
    k
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

    pub fn conversation(&self, id: &str) -> Result<Option<Conversation>, StateError> {
        match self
            .db
            .get_pinned_cf(self.cf(CF_CONVERSATIONS), id.as_bytes())?
        {
            None => Ok(None),
            Some(bytes) => codec::decode_conversation(&bytes, id).map(Some),
        }
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
        let iter = self.db.iterator_cf(
            self.cf(CF_ORDERS_BY_CUSTOMER),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let order_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(o) = self.order(&order_id)? {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// The next offset to read of a partition, as far as the state has applied it.
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

    /// What an applied input produced, while its transaction may not have committed.
    pub fn outbox(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<Vec<OutRecord>>, StateError> {
        match self
            .db
            .get_cf(self.cf(CF_OUTBOX), outbox_key(topic, partition, offset))?
        {
            None => Ok(None),
            Some(bytes) => {
                decode(&bytes, &format!("outbox {topic}/{partition}@{offset}")).map(Some)
            }
        }
    }

    /// Forgets the outbox entries below `next`: their transaction has committed.
    pub fn prune_outbox(&self, topic: &str, partition: i32, next: i64) -> Result<(), StateError> {
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(
            self.cf(CF_OUTBOX),
            outbox_key(topic, partition, 0),
            outbox_key(topic, partition, next),
        );
        self.db.write(wb)?;
        Ok(())
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

    /// Estimated number of conversations kept.
    pub fn conversation_count(&self) -> u64 {
        self.db
            .property_int_value_cf(self.cf(CF_CONVERSATIONS), "rocksdb.estimate-num-keys")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Flushes memtables so a clean shutdown leaves no WAL to replay.
    pub fn flush(&self) -> Result<(), StateError> {
        for name in FAMILIES {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }
}

/// Writes that must happen together (one input message's effects).
pub struct StateBatch<'a> {
    store: &'a Store,
    wb: WriteBatch,
}

impl StateBatch<'_> {
    pub fn put_conversation(&mut self, id: &str, c: &Conversation) {
        self.wb.put_cf(
            self.store.cf(CF_CONVERSATIONS),
            id.as_bytes(),
            codec::encode_conversation(c),
        );
    }

    pub fn put_offset(&mut self, topic: &str, partition: i32, next: i64) {
        self.wb.put_cf(
            self.store.cf(CF_OFFSETS),
            offset_key(topic, partition),
            next.to_be_bytes(),
        );
    }

    pub fn put_outbox(&mut self, topic: &str, partition: i32, offset: i64, records: &[OutRecord]) {
        self.wb.put_cf(
            self.store.cf(CF_OUTBOX),
            outbox_key(topic, partition, offset),
            encode(&records),
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
