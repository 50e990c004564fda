//! Service configuration: a TOML file whose every setting has a default, so Parley also runs
//! with no file at all. Flags and environment variables override the file (see `cli::run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Everything `parley run` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Kafka bootstrap servers, comma separated.
    pub brokers: String,
    /// Consumer group of the conversation consumer.
    pub group_id: String,
    /// Transactional id of this instance's producer; keep it stable across restarts of one
    /// instance (it fences the previous incarnation), distinct between instances.
    pub transactional_id: String,
    pub state_dir: PathBuf,
    pub model: PathBuf,
    /// cpu, cuda or cuda:N.
    pub device: String,
    pub kb: PathBuf,
    pub metrics_addr: String,
    pub topics: Topics,
    pub batching: Batching,
    pub limits: Limits,
    pub dialogue: DialogueSettings,
    pub identity: Identity,
    pub agents: Agents,
    pub health: HealthSettings,
    /// Passed to librdkafka as is (e.g. `"security.protocol" = "SASL_SSL"`), for every client.
    pub kafka: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            group_id: "parley".into(),
            transactional_id: "parley-0".into(),
            state_dir: "state".into(),
            model: "models/intent-en".into(),
            device: "cpu".into(),
            kb: "kb".into(),
            metrics_addr: "127.0.0.1:9898".into(),
            topics: Topics::default(),
            batching: Batching::default(),
            limits: Limits::default(),
            dialogue: DialogueSettings::default(),
            identity: Identity::default(),
            agents: Agents::default(),
            health: HealthSettings::default(),
            kafka: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topics {
    pub inbound: String,
    pub replies: String,
    pub escalations: String,
    pub orders: String,
    pub order_requests: String,
    pub agent_actions: String,
    pub dead_letter: String,
    /// Create missing topics at start-up with these settings.
    pub create: bool,
    pub partitions: i32,
    pub replication_factor: i32,
}

impl Topics {
    /// Every topic name, in a fixed order.
    pub fn names(&self) -> [&String; 7] {
        [
            &self.inbound,
            &self.replies,
            &self.escalations,
            &self.orders,
            &self.order_requests,
            &self.agent_actions,
            &self.dead_letter,
        ]
    }
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            inbound: "chat.inbound".into(),
            replies: "chat.replies".into(),
            escalations: "chat.escalations".into(),
            orders: "commerce.orders".into(),
            order_requests: "commerce.order-requests".into(),
            agent_actions: "chat.agent-actions".into(),
            dead_letter: "chat.dead-letter".into(),
            create: true,
            partitions: 6,
            replication_factor: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Batching {
    /// Most messages classified in one forward pass (and committed in one transaction).
    pub max_batch_size: usize,
    /// How long the first message of a batch waits for company.
    pub max_batch_wait_ms: u64,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            max_batch_size: 32,
            max_batch_wait_ms: 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longer texts go to the dead-letter topic.
    pub max_text_bytes: usize,
    /// Turns kept per conversation.
    pub transcript_turns: usize,
    /// Longest id (`message_id`, `conversation_id`, `customer_id`, `agent_id`, `action_id`,
    /// record key); a longer one is dead-lettered (`id_too_long`).
    pub max_id_bytes: usize,
    /// Longest short field (`channel`, `locale`, `sent_at`); a longer one is dead-lettered
    /// (`field_too_long`).
    pub max_field_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_bytes: 4000,
            transcript_turns: 20,
            max_id_bytes: 200,
            max_field_bytes: 100,
        }
    }
}

/// Who may say which customer is writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    /// Only the chat gateway can write to the inbound topic (Kafka ACLs): its `customer_id`
    /// is believed.
    #[default]
    Trusted,
    /// Every inbound message carries a `parley.signature` header, an HMAC-SHA256 by the
    /// gateway's key; a message without a valid one is dead-lettered (`bad_signature`).
    Signed,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Identity {
    pub mode: IdentityMode,
    /// File holding the signing key (signed mode), e.g. a mounted secret.
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the signing key (signed mode), when there is no file.
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Agents {
    /// Agent ids allowed to act; empty allows any id the agent consoles send (their topic's
    /// ACL is then the only check). Actions of other ids are dead-lettered (`unknown_agent`).
    pub allow: Vec<String>,
    /// A file with one allowed agent id per line (`#` comments), added to `allow`.
    pub allow_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// `/healthz` fails after this many aborted transactions in a row.
    pub max_consecutive_aborts: u32,
    /// `/healthz` fails when input is waiting and nothing has committed for this long.
    pub stall_timeout_secs: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            max_consecutive_aborts: 5,
            stall_timeout_secs: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogueSettings {
    /// A question the bot asked (order number, confirmation) expires after this idle time.
    pub pending_timeout_secs: i64,
    /// Consecutive messages the bot could not handle before it escalates.
    pub escalate_after_failures: u32,
    /// The same unresolved request this many times in a row counts as frustration.
    pub frustration_repeats: u32,
    /// A conversation queued for a person that no agent has taken after this long goes back
    /// to the bot (which can then escalate again).
    pub queue_timeout_secs: i64,
    /// An agent who holds a conversation and has not acted for this long loses it: the
    /// conversation goes back to the queue with a new escalation, and the bot answers again.
    pub agent_idle_timeout_secs: i64,
}

impl Default for DialogueSettings {
    fn default() -> Self {
        Self {
            pending_timeout_secs: 900,
            escalate_after_failures: 2,
            frustration_repeats: 3,
            queue_timeout_secs: 3600,
            agent_idle_timeout_secs: 1800,
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are errors, so a typo does not silently do nothing.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Checks the values that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if self.brokers.trim().is_empty() {
            return invalid("brokers", "is empty");
        }
        if self.group_id.trim().is_empty() {
            return invalid("group_id", "is empty");
        }
        if self.transactional_id.trim().is_empty() {
            return invalid("transactional_id", "is empty");
        }
        if self.batching.max_batch_size == 0 {
            return invalid("batching.max_batch_size", "must be at least 1");
        }
        if self.limits.max_id_bytes == 0 || self.limits.max_field_bytes == 0 {
            return invalid("limits.max_id_bytes", "limits must be at least 1");
        }
        if self.identity.mode == IdentityMode::Signed
            && self.identity.key_file.is_none()
            && self.identity.key_env.is_none()
        {
            return invalid(
                "identity.mode",
                "\"signed\" needs identity.key_file or identity.key_env",
            );
        }
        if self.dialogue.agent_idle_timeout_secs < 1 {
            return invalid("dialogue.agent_idle_timeout_secs", "must be at least 1");
        }
        if self.health.max_consecutive_aborts == 0 || self.health.stall_timeout_secs == 0 {
            return invalid("health", "limits must be at least 1");
        }
        if self.limits.max_text_bytes == 0 {
            return invalid("limits.max_text_bytes", "must be at least 1");
        }
        // Escalations carry the transcript (plus the turn in hand); the contract allows 50.
        if !(1..=48).contains(&self.limits.transcript_turns) {
            return invalid("limits.transcript_turns", "must be between 1 and 48");
        }
        if self.topics.partitions < 1 {
            return invalid("topics.partitions", "must be at least 1");
        }
        if self.topics.replication_factor < 1 {
            return invalid("topics.replication_factor", "must be at least 1");
        }
        if self.dialogue.escalate_after_failures == 0 {
            return invalid("dialogue.escalate_after_failures", "must be at least 1");
        }
        let names = self.topics.names();
        for (i, a) in names.iter().enumerate() {
            if a.trim().is_empty() {
                return invalid("topics", "a topic name is empty");
            }
            if names[i + 1..].contains(a) {
                return invalid("topics", &format!("topic {a:?} is named twice"));
            }
        }
        if self.metrics_addr.parse::<std::net::SocketAddr>().is_err() {
            return invalid("metrics_addr", "must be host:port, e.g. 127.0.0.1:9898");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_keeps_the_other_defaults() {
        let c: Config = toml::from_str(
            "brokers = \"k:9092\"\n[batching]\nmax_batch_size = 8\n[kafka]\n\"security.protocol\" = \"SSL\"\n",
        )
        .unwrap();
        assert_eq!(c.brokers, "k:9092");
        assert_eq!(c.batching.max_batch_size, 8);
        assert_eq!(c.batching.max_batch_wait_ms, 20);
        assert_eq!(c.topics.inbound, "chat.inbound");
        assert_eq!(c.kafka["security.protocol"], "SSL");
        c.validate().unwrap();
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let e = toml::from_str::<Config>("brokerz = \"x\"").unwrap_err();
        assert!(e.to_string().contains("brokerz"), "{e}");
        let mut c = Config::default();
        c.topics.replies = c.topics.inbound.clone();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("named twice"));
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_example_file_is_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("parley.example.toml");
        let c = super::Config::load(&path).unwrap();
        assert_eq!(c, super::Config::default());
    }
}
