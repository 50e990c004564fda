use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::ModelError;

/// The files of a model directory in the Hugging Face layout.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    /// Checks that the directory and its three files exist, naming the first one missing.
    pub fn locate(dir: &Path) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::MissingDir(dir.to_path_buf()));
        }
        let files = Self {
            dir: dir.to_path_buf(),
            config: dir.join("config.json"),
            weights: dir.join("model.safetensors"),
            tokenizer: dir.join("tokenizer.json"),
        };
        for f in [&files.config, &files.weights, &files.tokenizer] {
            if !f.is_file() {
                return Err(ModelError::MissingFile(f.clone()));
            }
        }
        Ok(files)
    }
}

/// Maps a checkpoint's tensor name onto `BertForSequenceClassification` names, so that bare
/// encoders (`embeddings.*`), classifiers (`bert.embeddings.*`) and old TF-style LayerNorm names
/// (`gamma`/`beta`) all load. Returns `None` for buffers that are not weights.
fn canonical_name(name: &str) -> Option<String> {
    if name.ends_with("position_ids") {
        return None;
    }
    let name = name
        .replace("LayerNorm.gamma", "LayerNorm.weight")
        .replace("LayerNorm.beta", "LayerNorm.bias");
    let bare = ["embeddings.", "encoder.", "pooler."];
    if bare.iter().any(|p| name.starts_with(p)) {
        Some(format!("bert.{name}"))
    } else {
        Some(name)
    }
}

/// Reads `model.safetensors` into f32 tensors with canonical names.
pub fn load_weights(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, ModelError> {
    if !path.is_file() {
        return Err(ModelError::MissingFile(path.to_path_buf()));
    }
    let raw = candle_core::safetensors::load(path, device).map_err(|e| ModelError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not a readable safetensors file: {e}"),
    })?;
    let mut out = HashMap::with_capacity(raw.len());
    for (name, t) in raw {
        if let Some(canon) = canonical_name(&name) {
            let t = if t.dtype() == DType::F32 {
                t
            } else {
                t.to_dtype(DType::F32)?
            };
            out.insert(canon, t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::canonical_name;

    #[test]
    fn canonical_names_cover_encoders_and_classifiers() {
        assert_eq!(
            canonical_name("embeddings.word_embeddings.weight").as_deref(),
            Some("bert.embeddings.word_embeddings.weight")
        );
        assert_eq!(
            canonical_name("bert.encoder.layer.0.output.LayerNorm.gamma").as_deref(),
            Some("bert.encoder.layer.0.output.LayerNorm.weight")
        );
        assert_eq!(
            canonical_name("classifier.bias").as_deref(),
            Some("classifier.bias")
        );
        assert_eq!(canonical_name("embeddings.position_ids"), None);
    }
}
