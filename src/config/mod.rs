//! Service configuration: a TOML file whose every setting has a default, so Parley also runs
//! with no file at all. Flags and environment variables override the file (see `cli::run`).
//!
//! Secrets (Kafka passwords, the gateway's signing key) can come from files or environment
//! variables instead of the file itself, and are never printed: `Debug`, `--print-config` and
//! every error show `<redacted>` or name only the setting, file or variable.

mod kafka;
mod secret;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use kafka::{is_secret, refused, KafkaProperties};
pub use secret::{read_secret_env, read_secret_file, Secret, REDACTED};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The message says where (line, column, key) and what, but never quotes the file: it may
    /// hold a password.
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    /// A `[kafka]` entry (or `--kafka` flag) that cannot be used.
    #[error("[kafka] \"{key}\": {message}")]
    Kafka { key: String, message: String },
    #[error("{setting}: the file {path} {problem}")]
    SecretFile {
        setting: String,
        path: PathBuf,
        problem: String,
    },
    #[error("{setting}: the environment variable {var} {problem}")]
    SecretEnv {
        setting: String,
        var: String,
        problem: &'static str,
    },
    #[error("retrieval.synonyms: cannot read {path}: {cause}")]
    SynonymsFile {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("retrieval.synonyms: {path}, {cause}")]
    Synonyms {
        path: PathBuf,
        cause: crate::retrieval::synonyms::SynonymError,
    },
    #[error("cannot read the agents file {path} (agents.allow_file): {cause}")]
    AgentsFile {
        path: PathBuf,
        cause: std::io::Error,
    },
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
    /// instance (it fences the previous incarnation), distinct between instances. Unset, it
    /// is the `POD_NAME` environment variable (a StatefulSet's stable pod name), else
    /// `parley-0`, which is refused when the group already has other members.
    pub transactional_id: String,
    /// True when `transactional_id` was given (file, flag, `PARLEY_TRANSACTIONAL_ID` or
    /// `POD_NAME`) rather than defaulted; set by `RunArgs::resolve`.
    #[serde(skip)]
    pub transactional_id_given: bool,
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
    pub scale: ScaleSettings,
    pub retrieval: Retrieval,
    /// librdkafka properties for every client (e.g. `"security.protocol" = "SASL_SSL"`); a
    /// secret is best given as `"sasl.password_file" = "/run/secrets/kafka"` or
    /// `"sasl.password_env" = "KAFKA_PASSWORD"`. Properties Parley owns are refused.
    pub kafka: KafkaProperties,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            group_id: "parley".into(),
            transactional_id: DEFAULT_TRANSACTIONAL_ID.into(),
            transactional_id_given: false,
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
            scale: ScaleSettings::default(),
            retrieval: Retrieval::default(),
            kafka: KafkaProperties::default(),
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
    /// Help articles (compacted, keyed by article id).
    pub articles: String,
    /// The product catalogue (compacted, keyed by SKU).
    pub products: String,
    /// The compacted changelog of conversation state; unset, `<group_id>-conversations-changelog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
    /// Create missing topics at start-up with these settings.
    pub create: bool,
    pub partitions: i32,
    pub replication_factor: i32,
}

impl Topics {
    /// Every topic name, in a fixed order.
    pub fn names(&self) -> [&String; 9] {
        [
            &self.inbound,
            &self.replies,
            &self.escalations,
            &self.orders,
            &self.order_requests,
            &self.agent_actions,
            &self.dead_letter,
            &self.articles,
            &self.products,
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
            articles: "kb.articles".into(),
            products: "commerce.products".into(),
            changelog: None,
            create: true,
            partitions: 6,
            replication_factor: 1,
        }
    }
}

/// Retrieval over the articles and products on `kb.articles` and `commerce.products`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retrieval {
    /// The sentence encoder (Hugging Face layout) that embeds articles, products and
    /// questions. Changing it re-embeds the stored content at the next start.
    pub encoder: PathBuf,
    /// A second encoder whose cosine similarity is blended with `encoder`'s (Hugging Face
    /// layout); not used when `blend_weight` is 0.
    pub blend_encoder: PathBuf,
    /// The second encoder's share of the similarity, from 0 (off) to below 1: a text's
    /// similarity is `(1 - w) * encoder's + w * blend_encoder's`. Changing either
    /// re-embeds the stored content at the next start.
    pub blend_weight: f32,
    /// Equivalent words and phrases (Solr synonym format) whose use by a document counts as
    /// the question's own word when deciding whether it answers; none given: the English
    /// ones shipped in `kb/synonyms.txt`.
    pub synonyms: Option<PathBuf>,
    /// How the two signals are fused, and the score an answer needs.
    pub scoring: crate::retrieval::RetrievalSettings,
}

impl Retrieval {
    /// The synonyms named by `synonyms`, or the shipped English ones.
    pub fn synonyms(&self) -> Result<crate::retrieval::synonyms::Synonyms, ConfigError> {
        use crate::retrieval::synonyms::Synonyms;
        let Some(path) = &self.synonyms else {
            return Ok(Synonyms::english());
        };
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::SynonymsFile {
            path: path.clone(),
            cause,
        })?;
        Synonyms::parse(&text).map_err(|cause| ConfigError::Synonyms {
            path: path.clone(),
            cause,
        })
    }

    /// The encoders to embed with and each one's weight: `encoder` alone, or blended.
    pub fn encoders(&self) -> Vec<(&Path, f32)> {
        if self.blend_weight > 0.0 {
            vec![
                (self.encoder.as_path(), 1.0 - self.blend_weight),
                (self.blend_encoder.as_path(), self.blend_weight),
            ]
        } else {
            vec![(self.encoder.as_path(), 1.0)]
        }
    }
}

impl Default for Retrieval {
    fn default() -> Self {
        Self {
            encoder: "models/bge-small-en-v1.5".into(),
            blend_encoder: "models/encoder".into(),
            blend_weight: 0.0,
            synonyms: None,
            scoring: crate::retrieval::RetrievalSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Batching {
    /// Most messages classified in one forward pass.
    /// 128 by default: with the int8 kernels a forward pass of 128 short messages takes about
    /// as long as a transaction, so a flood is not held back by one commit per 32 messages;
    /// with light traffic batches stay small whatever this says.
    pub max_batch_size: usize,
    /// How long the first message of a batch waits for company, under load only (when the
    /// last batch was at least half full); with light traffic a batch is what is there.
    pub max_batch_wait_ms: u64,
    /// Under a backlog (a full batch and more records already fetched), up to this many
    /// batches go into one transaction, each its own forward pass: a commit's broker round
    /// trips are paid once for all of them, which matters when the model is fast. 1 commits
    /// every batch on its own.
    pub max_batches_per_transaction: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            max_batch_size: 128,
            max_batch_wait_ms: 20,
            max_batches_per_transaction: 4,
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
    /// Environment variable holding the signing key (signed mode), instead of a file.
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Agents {
    /// Agent ids allowed to act; empty allows any id the agent consoles send (their topic's
    /// ACL is then the only check). Actions of other ids are dead-lettered (`unknown_agent`).
    pub allow: Vec<String>,
    /// A file with one allowed agent id per line (`#` starts a comment), added to `allow`.
    /// Given, it restricts even when it lists no id (then no agent may act).
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
            stall_timeout_secs: 300,
        }
    }
}

/// Running several instances in one consumer group: how partitions and their state move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleSettings {
    /// An instance silent this long (crashed, paused) loses its partitions to the others.
    pub session_timeout_ms: u32,
    /// Below the session timeout, so that the open transaction of an instance that lost its
    /// partitions is aborted before another instance restores their state.
    pub transaction_timeout_ms: u32,
    /// A conversation idle this long is deleted (a tombstone on the changelog).
    pub conversation_ttl_secs: u64,
    /// How long the state of partitions this instance gave up is kept, so that a partition
    /// that comes back restores only what changed meanwhile.
    pub warm_cache_secs: u64,
    /// How often idle conversations and stale warm state are looked for.
    pub expiry_interval_secs: u64,
}

impl Default for ScaleSettings {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            transaction_timeout_ms: 30_000,
            conversation_ttl_secs: 30 * 24 * 3600,
            warm_cache_secs: 600,
            expiry_interval_secs: 60,
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
    /// When the model's best intent has a probability under this and the runner-up at least
    /// `clarify_runner_up`, the bot asks which of the two the customer means instead of
    /// guessing. 0 turns asking off.
    pub clarify_below: f32,
    pub clarify_runner_up: f32,
}

impl Default for DialogueSettings {
    fn default() -> Self {
        Self {
            pending_timeout_secs: 900,
            escalate_after_failures: 2,
            frustration_repeats: 3,
            queue_timeout_secs: 3600,
            agent_idle_timeout_secs: 1800,
            clarify_below: 0.6,
            clarify_runner_up: 0.2,
        }
    }
}

/// The transactional id of an instance that was given none.
pub const DEFAULT_TRANSACTIONAL_ID: &str = "parley-0";

impl Config {
    /// The conversation changelog topic.
    pub fn changelog_topic(&self) -> String {
        self.topics
            .changelog
            .clone()
            .unwrap_or_else(|| format!("{}-conversations-changelog", self.group_id))
    }

    /// Reads a TOML file; unknown keys are errors, so a typo does not silently do nothing.
    /// Secrets given as files or variables are not read here (see `resolve_secrets`).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text. The error says where and what, never quoting the text: toml's own
    /// message shows the offending line, and serde's quote the offending value, either of
    /// which may be a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut cfg: Self = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        cfg.transactional_id_given = text
            .parse::<toml::Table>()
            .is_ok_and(|t| t.contains_key("transactional_id"));
        Ok(cfg)
    }

    /// Reads every secret given by file or environment variable in `[kafka]` (after
    /// `validate`, before any client is made), so that a missing one stops start-up with an
    /// error naming the file or variable. `kafka::client_config` then sets the values.
    pub fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        self.kafka.resolve_secrets()
    }

    /// The gateway's signing key in signed mode (`None` in trusted mode), read now from
    /// `identity.key_file` (one trailing newline dropped) or `identity.key_env`. The bytes
    /// of the text are the HMAC key: `identity_key()?.map(|k| k.expose_bytes().to_vec())`.
    pub fn identity_key(&self) -> Result<Option<Secret>, ConfigError> {
        if self.identity.mode != IdentityMode::Signed {
            return Ok(None);
        }
        match (&self.identity.key_file, &self.identity.key_env) {
            (Some(path), None) => read_secret_file("identity.key_file", path).map(Some),
            (None, Some(var)) => read_secret_env("identity.key_env", var).map(Some),
            _ => Err(ConfigError::Invalid {
                key: "identity.mode",
                message: "\"signed\" needs one of identity.key_file and identity.key_env".into(),
            }),
        }
    }

    /// The agent ids allowed to act: `agents.allow` and the ids in `agents.allow_file` (one
    /// per line; `#` starts a comment; blank lines skipped), read now. `None` when neither is
    /// given: any agent id is allowed. A file that lists no id (and an empty `allow`) allows
    /// none, so a truncated file fails closed.
    pub fn allowed_agents(&self) -> Result<Option<HashSet<String>>, ConfigError> {
        if self.agents.allow.is_empty() && self.agents.allow_file.is_none() {
            return Ok(None);
        }
        let mut ids: HashSet<String> = self
            .agents
            .allow
            .iter()
            .map(|id| id.trim())
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(path) = &self.agents.allow_file {
            let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::AgentsFile {
                path: path.clone(),
                cause,
            })?;
            for line in text.lines() {
                let id = line.split('#').next().unwrap_or("").trim();
                if !id.is_empty() {
                    ids.insert(id.to_string());
                }
            }
        }
        Ok(Some(ids))
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
        // Parley bounds its outputs to 900 KB; a producer that refuses less would leave an
        // output in the outbox that no retry can send.
        if let Some(v) = self.kafka.get("message.max.bytes") {
            if v.trim().parse::<u64>().is_ok_and(|n| n < 1_000_000) {
                return Err(ConfigError::Kafka {
                    key: "message.max.bytes".into(),
                    message: "must be at least 1000000: Parley's output records go up to 900 KB"
                        .into(),
                });
            }
        }
        if self.group_id.trim().is_empty() {
            return invalid("group_id", "is empty");
        }
        if self.transactional_id.trim().is_empty() {
            return invalid("transactional_id", "is empty");
        }
        let sc = &self.scale;
        if sc.session_timeout_ms < 6_000 || sc.session_timeout_ms > 1_800_000 {
            return invalid(
                "scale.session_timeout_ms",
                "must be between 6000 and 1800000 (the brokers' default \
                 group.min/max.session.timeout.ms)",
            );
        }
        if sc.transaction_timeout_ms > 900_000 {
            return invalid(
                "scale.transaction_timeout_ms",
                "must be at most 900000 (the brokers' default transaction.max.timeout.ms)",
            );
        }
        if sc.transaction_timeout_ms < 1_000 || sc.transaction_timeout_ms >= sc.session_timeout_ms {
            return invalid(
                "scale.transaction_timeout_ms",
                "must be at least 1000 and below scale.session_timeout_ms, so that a lost \
                 instance's open transaction ends before its partitions are restored elsewhere",
            );
        }
        if sc.conversation_ttl_secs == 0 {
            return invalid("scale.conversation_ttl_secs", "must be at least 1");
        }
        if sc.expiry_interval_secs == 0 {
            return invalid("scale.expiry_interval_secs", "must be at least 1");
        }
        if self.batching.max_batch_size == 0 {
            return invalid("batching.max_batch_size", "must be at least 1");
        }
        if self.batching.max_batches_per_transaction == 0 {
            return invalid("batching.max_batches_per_transaction", "must be at least 1");
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
        // Which one would win is a guess a reader of the file should not have to make.
        if self.identity.key_file.is_some() && self.identity.key_env.is_some() {
            return invalid(
                "identity.key_file",
                "give identity.key_file or identity.key_env, not both",
            );
        }
        if self.dialogue.agent_idle_timeout_secs < 1 {
            return invalid("dialogue.agent_idle_timeout_secs", "must be at least 1");
        }
        let d = &self.dialogue;
        if !(0.0..=1.0).contains(&d.clarify_below) || !(0.0..=1.0).contains(&d.clarify_runner_up) {
            return invalid(
                "dialogue.clarify_below",
                "clarify_below and clarify_runner_up are probabilities, between 0 and 1",
            );
        }
        if self.health.max_consecutive_aborts == 0 || self.health.stall_timeout_secs == 0 {
            return invalid("health", "limits must be at least 1");
        }
        let w = self.retrieval.blend_weight;
        if !(0.0..1.0).contains(&w) {
            return invalid(
                "retrieval.blend_weight",
                "must be at least 0 (no blend) and below 1 (retrieval.encoder keeps a share)",
            );
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
        let changelog = self.changelog_topic();
        let mut names = self.topics.names().to_vec();
        names.push(&changelog);
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
        self.kafka.validate()
    }
}

/// A TOML error as "line L, column C, key K: what", with no text of the file in it. toml's
/// `Display` shows the offending line, and serde's messages quote the offending value
/// (`invalid type: string "..."`); both are left out, the key and position say where to look.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let mut message = sanitize_serde_message(e.message());
    let Some(span) = e.span() else {
        return message;
    };
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    // The document parses when the error is about a value's type or an unknown key; then
    // the key at the error's position can be named.
    let key = toml::de::DeTable::parse(text)
        .ok()
        .and_then(|table| key_at(table.get_ref(), span.start));
    message = match key {
        Some(key) => format!("line {line}, column {column}, key {key}: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    };
    message
}

/// The dotted path of the key whose name or value holds byte `pos`.
fn key_at(table: &toml::de::DeTable<'_>, pos: usize) -> Option<String> {
    let part = |k: &str| {
        if !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            k.to_string()
        } else {
            format!("{k:?}")
        }
    };
    for (k, v) in table.iter() {
        let inner = match v.get_ref() {
            toml::de::DeValue::Table(t) => key_at(t, pos),
            toml::de::DeValue::Array(a) => a.iter().find_map(|item| match item.get_ref() {
                toml::de::DeValue::Table(t) => key_at(t, pos),
                _ => None,
            }),
            _ => None,
        };
        if let Some(inner) = inner {
            return Some(format!("{}.{inner}", part(k.get_ref())));
        }
        if k.span().contains(&pos) || v.span().contains(&pos) {
            return Some(part(k.get_ref()));
        }
    }
    None
}

/// Drops the values serde quotes in its messages (`invalid type: string "hunter2", expected
/// u32` becomes `invalid type: string, expected u32`; likewise `invalid value` and `unknown
/// variant`), keeping what kind of value was wrong and what was expected.
fn sanitize_serde_message(message: &str) -> String {
    static QUOTED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let quoted = QUOTED.get_or_init(|| {
        regex::Regex::new(
            r#"(invalid type: [a-z ]+?|invalid value: [a-z ]+?|unknown variant) (?:"(?:[^"\\]|\\.)*"|`[^`]*`|'[^']*')"#,
        )
        .expect("a valid pattern")
    });
    quoted.replace_all(message, "$1").into_owned()
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
        assert_eq!(c.kafka.get("security.protocol"), Some("SSL"));
        c.validate().unwrap();
    }

    #[test]
    fn a_producer_limit_below_the_outputs_is_refused() {
        let c = Config::parse("[kafka]\n\"message.max.bytes\" = \"500000\"\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("message.max.bytes") && e.contains("1000000"),
            "{e}"
        );
        let c = Config::parse("[kafka]\n\"message.max.bytes\" = \"2000000\"\n").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn a_blend_of_encoders_is_off_by_default_and_its_weight_checked() {
        let c = Config::default();
        assert_eq!(
            c.retrieval.encoders(),
            vec![(Path::new("models/bge-small-en-v1.5"), 1.0)]
        );
        let c =
            Config::parse("[retrieval]\nblend_encoder = \"m/e\"\nblend_weight = 0.25\n").unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.retrieval.encoders(),
            vec![
                (Path::new("models/bge-small-en-v1.5"), 0.75),
                (Path::new("m/e"), 0.25)
            ]
        );
        for bad in ["1.0", "-0.1", "nan"] {
            let c = Config::parse(&format!("[retrieval]\nblend_weight = {bad}\n")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("retrieval.blend_weight"), "{bad}: {e}");
        }
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

    #[test]
    fn a_synonym_file_replaces_the_shipped_one_and_a_bad_one_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("synonyms.txt");
        let c =
            Config::parse(&format!("[retrieval]\nsynonyms = \"{}\"\n", file.display())).unwrap();
        let missing = c.retrieval.synonyms().unwrap_err().to_string();
        assert!(missing.contains("cannot read") && missing.contains("synonyms.txt"));
        std::fs::write(&file, "# ours\nsofa, couch, settee\n").unwrap();
        assert_eq!(c.retrieval.synonyms().unwrap().len(), 1);
        std::fs::write(&file, "sofa, couch\nsettee\n").unwrap();
        let bad = c.retrieval.synonyms().unwrap_err().to_string();
        assert!(
            bad.contains("line 2") && bad.contains("two phrases"),
            "{bad}"
        );
        // An empty file turns them off.
        std::fs::write(&file, "").unwrap();
        assert!(c.retrieval.synonyms().unwrap().is_empty());
        assert!(Config::default().retrieval.synonyms().unwrap().len() > 50);
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    const SECRET: &str = "pw-Zq81-never-shown";

    #[test]
    fn debug_and_serialize_redact_direct_and_resolved_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kafka-password");
        std::fs::write(&file, format!("{SECRET}-file\n")).unwrap();
        let mut c = Config::default();
        c.kafka.insert("ssl.key.password", SECRET);
        c.kafka.insert("sasl.password_file", file.to_str().unwrap());
        c.kafka.insert("sasl.username", "parley");
        c.validate().unwrap();
        c.resolve_secrets().unwrap();
        for shown in [
            format!("{c:?}"),
            format!("{c:#?}"),
            toml::to_string(&c).unwrap(),
        ] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
            assert!(shown.contains(file.to_str().unwrap()), "{shown}");
            assert!(shown.contains("parley"), "{shown}");
        }
    }

    #[test]
    fn parse_errors_name_the_place_and_key_but_quote_nothing() {
        let cases = [
            // A syntax error on the secret's own line (unterminated string).
            format!("[kafka]\n\"sasl.password\" = \"{SECRET}\n"),
            // A wrong type: serde would quote the value.
            format!("brokers = \"k:9092\"\n[batching]\nmax_batch_size = \"{SECRET}\"\n"),
            format!("[kafka]\n\"sasl.password\" = [\"{SECRET}\"]\n"),
            format!("[identity]\nmode = \"{SECRET}\"\n"),
            // A secret where a key should be.
            format!("[kafka]\n{SECRET} \n"),
        ];
        for text in &cases {
            let e = Config::parse(text).unwrap_err();
            assert!(!e.contains("never-shown"), "{e}");
            assert!(e.starts_with("line "), "{e}");
        }
        let e = Config::parse(&cases[1]).unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("batching.max_batch_size"),
            "{e}"
        );
        let e = Config::parse(&cases[2]).unwrap_err();
        assert!(e.contains("kafka.\"sasl.password\""), "{e}");
        let e = Config::parse("[batching]\nmax_batch_sise = 3\n").unwrap_err();
        assert!(
            e.contains("batching.max_batch_sise") && e.contains("unknown field"),
            "{e}"
        );
        let e = ConfigError::Parse {
            path: "p.toml".into(),
            message: e,
        };
        assert!(e
            .to_string()
            .starts_with("config file p.toml is not valid: line 2"));
    }

    #[test]
    fn the_identity_key_comes_from_a_file_or_a_variable() {
        let mut c = Config::default();
        assert!(
            c.identity_key().unwrap().is_none(),
            "trusted mode has no key"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "k3y\n").unwrap();
        c.identity.mode = IdentityMode::Signed;
        c.identity.key_file = Some(file.clone());
        c.validate().unwrap();
        assert_eq!(c.identity_key().unwrap().unwrap().expose_bytes(), b"k3y");
        std::fs::write(&file, "").unwrap();
        let e = c.identity_key().unwrap_err().to_string();
        assert!(
            e.contains("identity.key_file") && e.contains("is empty"),
            "{e}"
        );
        c.identity.key_env = Some("PARLEY_TEST_UNSET_KEY_VARIABLE".into());
        assert!(c.validate().unwrap_err().to_string().contains("not both"));
        c.identity.key_file = None;
        let e = c.identity_key().unwrap_err().to_string();
        assert!(
            e.contains("PARLEY_TEST_UNSET_KEY_VARIABLE") && e.contains("not set"),
            "{e}"
        );
    }

    #[test]
    fn allowed_agents_joins_the_list_and_the_file() {
        let mut c = Config::default();
        assert_eq!(c.allowed_agents().unwrap(), None);
        c.agents.allow = vec!["ann".into()];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agents.txt");
        std::fs::write(&file, "# on call\nbob\n\n  carol  # nights\n").unwrap();
        c.agents.allow_file = Some(file.clone());
        let ids = c.allowed_agents().unwrap().unwrap();
        let want: HashSet<String> = ["ann", "bob", "carol"].map(String::from).into();
        assert_eq!(ids, want);
        c.agents.allow.clear();
        std::fs::write(&file, "# nobody yet\n").unwrap();
        assert_eq!(c.allowed_agents().unwrap(), Some(HashSet::new()));
        c.agents.allow_file = Some(dir.path().join("missing.txt"));
        let e = c.allowed_agents().unwrap_err().to_string();
        assert!(e.contains("missing.txt"), "{e}");
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
