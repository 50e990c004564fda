//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use parley::model::{BertConfig, SequenceClassifier};

/// The shipped default model (a real fine-tuned classifier).
pub fn shipped_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/intent-en")
}

/// A `config.json` as `transformers` writes it for a small `BertForSequenceClassification`.
pub fn tiny_config_json(labels: &[&str]) -> String {
    let id2label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), (*l).into()))
        .collect();
    let label2id: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| ((*l).to_string(), i.into()))
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "_name_or_path": "tiny-bert",
        "architectures": ["BertForSequenceClassification"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": null,
        "gradient_checkpointing": false,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 32,
        "id2label": id2label,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "label2id": label2id,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "model_type": "bert",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "problem_type": "single_label_classification",
        "torch_dtype": "float32",
        "transformers_version": "4.44.2",
        "type_vocab_size": 2,
        "use_cache": true,
        "vocab_size": 30522
    }))
    .unwrap()
}

/// Writes a small randomly initialised classifier in the exact layout `transformers`'
/// `save_pretrained` produces (weight names, the `position_ids` buffer, config keys), with the
/// shipped model's tokenizer.
pub fn write_tiny_classifier(dir: &Path, labels: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let config_json = tiny_config_json(labels);
    std::fs::write(dir.join("config.json"), &config_json).unwrap();
    let cfg: BertConfig = serde_json::from_str(&config_json).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    SequenceClassifier::load(vb, &cfg, labels.len()).unwrap();
    let mut tensors: std::collections::HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    // Random pretrained-like scale for every weight, so the outputs are not degenerate.
    for (name, t) in tensors.iter_mut() {
        if name.ends_with(".weight") && !name.contains("LayerNorm") {
            *t = (Tensor::randn(0f32, 1.0, t.shape(), &Device::Cpu).unwrap() * 0.2).unwrap();
        }
    }
    tensors.insert(
        "bert.embeddings.position_ids".into(),
        Tensor::arange(0i64, 64, &Device::Cpu)
            .unwrap()
            .reshape((1, 64))
            .unwrap(),
    );
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::copy(
        shipped_model().join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
}

/// Writes a bare encoder (`BertModel` names, no head), as a pretrained base would be.
pub fn write_tiny_encoder(dir: &Path) {
    write_tiny_classifier(dir, &["a", "b"]);
    let weights =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let bare: std::collections::HashMap<String, Tensor> = weights
        .into_iter()
        .filter(|(k, _)| !k.starts_with("classifier."))
        .map(|(k, v)| (k.trim_start_matches("bert.").to_string(), v))
        .collect();
    candle_core::safetensors::save(&bare, dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let obj = cfg.as_object_mut().unwrap();
    for k in ["id2label", "label2id", "problem_type"] {
        obj.remove(k);
    }
    obj.insert("architectures".into(), serde_json::json!(["BertModel"]));
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
}
