use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The label Parley gives to messages that are not customer-service requests.
pub const DEFAULT_OOS_LABEL: &str = "out_of_scope";

/// Parley's own settings, kept in `config.json` under the `parley` key so that the rest of the
/// file stays a plain Hugging Face `BertConfig`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParleySettings {
    /// Label used for out-of-scope messages.
    #[serde(default = "default_oos_label")]
    pub oos_label: String,
    /// A prediction whose best probability is below this becomes `oos_label`.
    #[serde(default)]
    pub oos_threshold: f32,
    /// Inputs are truncated to this many tokens (special tokens included).
    #[serde(default = "default_max_seq_len")]
    pub max_seq_len: usize,
    /// What the pooler reads. `cls` is `BertForSequenceClassification`'s behaviour (and the
    /// default, so models from `transformers` behave the same here); `mean` averages the token
    /// states, which suits encoders trained for sentence embeddings.
    #[serde(default)]
    pub pooling: Pooling,
}

/// See [`ParleySettings::pooling`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    #[default]
    Cls,
    Mean,
}

fn default_oos_label() -> String {
    DEFAULT_OOS_LABEL.to_string()
}

fn default_max_seq_len() -> usize {
    64
}

impl Default for ParleySettings {
    fn default() -> Self {
        Self {
            oos_label: default_oos_label(),
            oos_threshold: 0.0,
            max_seq_len: default_max_seq_len(),
            pooling: Pooling::Cls,
        }
    }
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-12
}
fn default_type_vocab() -> usize {
    2
}
fn default_pos_type() -> String {
    "absolute".into()
}

/// A Hugging Face `BertConfig`, plus the label maps of `BertForSequenceClassification`.
/// Fields Parley does not use are kept in `extra` so a round trip loses nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "default_pos_type")]
    pub position_embedding_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id2label: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label2id: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parley: Option<ParleySettings>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BertConfig {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingFile(path.to_path_buf()),
            _ => ModelError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        })?;
        let cfg: BertConfig = serde_json::from_str(&text).map_err(|e| ModelError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("not a valid BERT config.json: {e}"),
        })?;
        cfg.validate().map_err(|reason| ModelError::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 {
            return Err("hidden_size and num_attention_heads must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        match self.hidden_act.as_str() {
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu" => {}
            other => return Err(format!("hidden_act {other:?} is not supported")),
        }
        if let Some(p) = &self.parley {
            if p.max_seq_len > self.max_position_embeddings {
                return Err(format!(
                    "parley.max_seq_len {} exceeds max_position_embeddings {}",
                    p.max_seq_len, self.max_position_embeddings
                ));
            }
        }
        self.labels().map(|_| ())
    }

    /// Labels ordered by id. Empty for a bare encoder (no classification head).
    pub fn labels(&self) -> Result<Vec<String>, String> {
        let mut labels = vec![None; self.id2label.len()];
        for (id, label) in &self.id2label {
            let i: usize = id
                .parse()
                .map_err(|_| format!("id2label key {id:?} is not an integer"))?;
            let slot = labels.get_mut(i).ok_or_else(|| {
                format!("id2label ids must be 0..{}, found {i}", self.id2label.len())
            })?;
            *slot = Some(label.clone());
        }
        Ok(labels.into_iter().map(|l| l.unwrap_or_default()).collect())
    }

    /// Sets both label maps from labels ordered by id.
    pub fn set_labels(&mut self, labels: &[String]) {
        self.id2label = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.clone()))
            .collect();
        self.label2id = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        self.extra.insert(
            "architectures".into(),
            serde_json::json!(["BertForSequenceClassification"]),
        );
        self.extra
            .insert("problem_type".into(), "single_label_classification".into());
    }

    pub fn settings(&self) -> ParleySettings {
        self.parley.clone().unwrap_or_default()
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let text = serde_json::to_string_pretty(self).expect("config serialises");
        std::fs::write(path, text + "\n")?;
        Ok(())
    }
}
