//! Kafka transport: client settings, topic creation, the consumer's statistics hook, and
//! the owned record type the service works with.

mod admin;
mod context;

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

pub use admin::{ensure_changelog, ensure_topics};
pub use context::ReadToEnd;

use crate::config::Config;
use crate::wire::OutRecord;

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

/// A client's settings: the brokers, then `settings` for its role, then the `[kafka]`
/// pass-through table, so a user's `security.protocol` or SASL settings always apply. The
/// pass-through cannot override a role's settings: `Config::validate` refuses the properties
/// Parley owns. Secrets given as `KEY_file` / `KEY_env` are set under `KEY` with the values
/// `Config::resolve_secrets` read (`RunArgs::resolve` does both).
///
/// The result holds secrets in the clear: never print it (rdkafka's `Debug` shows them).
pub fn client_config(cfg: &Config, settings: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    c.set("client.id", format!("parley-{}", cfg.transactional_id));
    for (k, v) in settings {
        c.set(*k, *v);
    }
    for (k, v) in cfg.kafka.expose() {
        c.set(k, v);
    }
    c
}

/// Lets librdkafka check every pass-through property now, before anything connects, so an
/// unknown property or a bad value stops start-up with an error naming the key. rdkafka's
/// own error quotes the value, and librdkafka's description may too; for a secret, both
/// are left out.
pub fn check_client_config(cfg: &Config) -> Result<(), KafkaError> {
    match client_config(cfg, &[]).create_native_config() {
        Ok(_) => Ok(()),
        Err(rdkafka::error::KafkaError::ClientConfig(_, description, key, value)) => {
            let description = if crate::config::is_secret(&key) {
                if value.is_empty() {
                    description
                } else {
                    description.replace(&value, crate::config::REDACTED)
                }
            } else {
                description
            };
            Err(KafkaError::Other(format!(
                "[kafka] \"{key}\": librdkafka refuses it: {description}"
            )))
        }
        // A NUL byte in a key or value; its message says where, not what.
        Err(cause) => Err(KafkaError::Client {
            context: "checking the [kafka] settings".into(),
            cause,
        }),
    }
}

/// `max.poll.interval.ms` for the group consumer. It is also its rebalance timeout, which
/// bounds how long a JoinGroup may go unanswered (librdkafka waits that long plus 3 s) and
/// how long the coordinator waits in a rebalance for a live member that does not rejoin.
/// librdkafka's 300 s would leave partitions unserved for five minutes in such a case. The
/// loop polls every second or more often while the broker is up (a restore step is 250 ms);
/// while it is away, a commit being resumed can hold the loop for longer, and then librdkafka
/// leaves the group and rejoins at the next poll, which loses nothing. It may not be below
/// the session timeout.
pub fn max_poll_interval_ms(session_timeout_ms: u32) -> u32 {
    session_timeout_ms.saturating_mul(2).max(60_000)
}

/// The conversation consumer: a group member reading committed data only, committing
/// nothing itself (offsets go through the producer's transaction). No static membership: a
/// crashed instance's partitions move to the others once its session ends, and a second
/// instance with the same id is refused at start-up (`service::identity`) instead of
/// silently taking the first one's place.
pub fn consumer_config(cfg: &Config) -> ClientConfig {
    let session = cfg.scale.session_timeout_ms.to_string();
    client_config(
        cfg,
        &[
            ("group.id", &cfg.group_id),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("session.timeout.ms", &session),
            (
                "heartbeat.interval.ms",
                &(cfg.scale.session_timeout_ms / 10).to_string(),
            ),
            (
                "max.poll.interval.ms",
                &max_poll_interval_ms(cfg.scale.session_timeout_ms).to_string(),
            ),
            // Read by the service's group watch (`service::group_watch`).
            ("statistics.interval.ms", "5000"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ],
    )
}

/// The agent-actions reader. Agent actions are co-partitioned with the inbound topic (same
/// key, same partition count): partition P of both belongs to the same conversations, so
/// this consumer is assigned by hand exactly the partitions the group gave the conversation
/// consumer. It shares the group's committed offsets (read on assignment) and commits
/// nothing itself.
pub fn agent_consumer_config(cfg: &Config) -> ClientConfig {
    client_config(
        cfg,
        &[
            ("group.id", &cfg.group_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ],
    )
}

/// The changelog reader that restores conversation state, assigned by hand.
pub fn restore_consumer_config(cfg: &Config) -> ClientConfig {
    client_config(
        cfg,
        &[
            ("group.id", &format!("{}-restore", cfg.group_id)),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
            // A restore reads to a known end; a fetch parked at that end for the default
            // 500 ms would only delay noticing that it has arrived.
            ("fetch.wait.max.ms", "10"),
        ],
    )
}

/// The transactional producer of every output record.
pub fn producer_config(cfg: &Config) -> ClientConfig {
    client_config(
        cfg,
        &[
            ("transactional.id", &cfg.transactional_id),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            // Below the session timeout: when an instance stops answering (paused, cut off),
            // the broker aborts its open transaction before the group gives its partitions
            // to another instance, which then restores a settled changelog. A crashed
            // instance's transaction is aborted at once by its restart (`init_transactions`).
            (
                "transaction.timeout.ms",
                &cfg.scale.transaction_timeout_ms.to_string(),
            ),
        ],
    )
}

/// A read_committed reader of `topics` for tools, assigned at their current ends, so it sees
/// only what is written from now on.
pub fn reader_at_end(
    cfg: &Config,
    group: &str,
    topics: &[&str],
) -> Result<BaseConsumer, KafkaError> {
    let consumer: BaseConsumer = client_config(
        cfg,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()
    .map_err(KafkaError::client("creating a reader"))?;
    let timeout = Duration::from_secs(10);
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(KafkaError::client(format!(
                "reading the partitions of {topic}"
            )))?;
        for p in md.topics().iter().flat_map(|t| t.partitions()) {
            let (_, high) = consumer
                .fetch_watermarks(topic, p.id(), timeout)
                .map_err(KafkaError::client(format!("reading the end of {topic}")))?;
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(high))
                .map_err(KafkaError::client("assigning"))?;
        }
    }
    consumer
        .assign(&tpl)
        .map_err(KafkaError::client("assigning the topics"))?;
    Ok(consumer)
}

/// The producer's view of an output record: key, value and headers.
pub fn future_record(r: &OutRecord) -> FutureRecord<'_, [u8], [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
    for (k, v) in &r.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let record = FutureRecord::to(&r.topic)
        .payload(&r.value[..])
        .headers(headers);
    match &r.key {
        Some(k) => record.key(&k[..]),
        None => record,
    }
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
    /// The gateway's `parley.signature` header (signed identity mode), at most
    /// [`SIGNATURE_HEADER_MAX`] bytes: only that header is kept, so a record with huge or
    /// many headers costs nothing here.
    pub signature: Option<Vec<u8>>,
}

/// Name of the header that carries the gateway's signature.
pub const SIGNATURE_HEADER: &str = "parley.signature";
/// A hex HMAC-SHA256 is 64 bytes; anything longer is cut (and then fails to verify).
pub const SIGNATURE_HEADER_MAX: usize = 128;

impl Record {
    pub fn from_message<M: Message>(m: &M) -> Self {
        Self {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            timestamp_ms: m.timestamp().to_millis(),
            signature: m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == SIGNATURE_HEADER)
                    .and_then(|h| h.value)
                    .map(|v| v[..v.len().min(SIGNATURE_HEADER_MAX)].to_vec())
            }),
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
