//! Kafka transport: client settings, topic creation, the consumer's statistics hook, and
//! the owned record type the service works with.

mod admin;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Headers, Message};

pub use admin::ensure_topics;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka: {context}: {cause}")]
    Client {
        context: String,
        cause: rdkafka::error::KafkaError,
    },
    #[error("kafka: {0}")]
    Other(String),
    /// The client cannot go on; the service stops (and its supervisor restarts it).
    #[error("kafka: {0}")]
    Fatal(String),
}

impl KafkaError {
    /// The client can no longer be used (e.g. another instance with the same
    /// `transactional_id` fenced this one): stop rather than retry.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Fatal(_) => true,
            Self::Client {
                cause: rdkafka::error::KafkaError::Transaction(r),
                ..
            } => r.is_fatal(),
            _ => false,
        }
    }

    pub fn client(context: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let context = context.into();
        move |cause| Self::Client { context, cause }
    }
}

/// Settings shared by every client: the brokers and the `[kafka]` pass-through table (the
/// latter last, so a user's `security.protocol` or SASL settings always apply).
pub fn base_config(cfg: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    c.set("client.id", format!("parley-{}", cfg.transactional_id));
    for (k, v) in &cfg.kafka {
        c.set(k, v);
    }
    c
}

/// The conversation consumer: a group member reading committed data only, committing
/// nothing itself (offsets go through the producer's transaction).
pub fn consumer_config(cfg: &Config) -> ClientConfig {
    let mut c = base_config(cfg);
    // Static membership: a restarted instance takes its partitions straight back instead of
    // waiting for the old member's session to time out.
    c.set("group.id", &cfg.group_id)
        .set("group.instance.id", &cfg.transactional_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed");
    for (k, v) in &cfg.kafka {
        c.set(k, v);
    }
    c
}

/// The transactional producer of every output record.
pub fn producer_config(cfg: &Config) -> ClientConfig {
    let mut c = base_config(cfg);
    c.set("transactional.id", &cfg.transactional_id)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("transaction.timeout.ms", "60000");
    for (k, v) in &cfg.kafka {
        c.set(k, v);
    }
    c
}

/// A consumed record, owned so it can outlive the consumer's buffer.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// Milliseconds since the epoch, when the record has a timestamp.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    pub fn from_message<M: Message>(m: &M) -> Self {
        Self {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            timestamp_ms: m.timestamp().to_millis(),
        }
    }
}

/// Header value as text (for tests and tools reading dead letters).
pub fn header<M: Message>(m: &M, name: &str) -> Option<String> {
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
