use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use serde::Serialize;

use super::bert::{BertEncoder, Dense, Pass};
use super::{
    load_weights, BertConfig, ModelError, ModelFiles, ParleySettings, Pooling, TextEncoder,
};

/// `BertForSequenceClassification`: encoder, pooled `[CLS]`, dropout, linear head.
pub struct SequenceClassifier {
    pub encoder: BertEncoder,
    head: Dense,
    dropout: f64,
    pooling: Pooling,
}

impl SequenceClassifier {
    /// `vb` is rooted at the checkpoint (names `bert.*` and `classifier.*`).
    pub fn load(vb: VarBuilder, cfg: &BertConfig, num_labels: usize) -> candle_core::Result<Self> {
        Ok(Self {
            encoder: BertEncoder::load(vb.pp("bert"), cfg)?,
            head: Dense::load(vb.pp("classifier"), cfg.hidden_size, num_labels)?,
            dropout: cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob),
            pooling: cfg.settings().pooling,
        })
    }

    pub fn prepare_inference(&mut self) -> candle_core::Result<()> {
        self.encoder.prepare_inference()
    }

    /// Logits `(b, num_labels)`.
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        pass: &mut Pass,
    ) -> candle_core::Result<Tensor> {
        let hidden = self.encoder.forward(ids, type_ids, mask, pass)?;
        let pooled = self.encoder.pool(&hidden, mask, self.pooling)?;
        let pooled = super::bert::dropout(&pooled, self.dropout, pass)?;
        self.head.forward(&pooled)
    }
}

/// One classification result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Prediction {
    pub intent: String,
    pub confidence: f32,
    /// The three most probable labels with their probabilities, best first.
    pub top: Vec<(String, f32)>,
}

/// A loaded classifier ready for batch inference.
pub struct Classifier {
    model: SequenceClassifier,
    encoder: TextEncoder,
    labels: Vec<String>,
    settings: ParleySettings,
    config: BertConfig,
    device: Device,
}

impl Classifier {
    /// Loads a model directory, naming the missing or broken file on failure.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::load_with(dir, device, true)
    }

    /// Loads without the fused inference kernels: candle's generic ops only. The reference the
    /// fused path is checked against.
    pub fn load_reference(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::load_with(dir, device, false)
    }

    fn load_with(dir: &Path, device: &Device, fused: bool) -> Result<Self, ModelError> {
        let files = ModelFiles::locate(dir)?;
        let config = BertConfig::from_file(&files.config)?;
        let labels = config.labels().map_err(|reason| ModelError::Config {
            path: files.config.clone(),
            reason,
        })?;
        if labels.is_empty() {
            return Err(ModelError::Config {
                path: files.config.clone(),
                reason: "no id2label: this is a bare encoder, not a classifier (train one with \
                         `parley train --base DIR`)"
                    .into(),
            });
        }
        let settings = config.settings();
        let encoder = TextEncoder::from_file(&files.tokenizer, settings.max_seq_len)?;
        let weights = load_weights(&files.weights, device)?;
        let vb = VarBuilder::from_tensors(weights, DType::F32, device);
        let mut model = SequenceClassifier::load(vb, &config, labels.len()).map_err(|e| {
            ModelError::Corrupt {
                path: files.weights.clone(),
                reason: format!("does not hold a BertForSequenceClassification model: {e}"),
            }
        })?;
        if fused {
            model.prepare_inference()?;
        }
        Ok(Self {
            model,
            encoder,
            labels,
            settings,
            config,
            device: device.clone(),
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn settings(&self) -> &ParleySettings {
        &self.settings
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn text_encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Softmax probabilities, one row per text, in label-id order.
    pub fn probabilities<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, ModelError> {
        let enc = self.encoder.encode(texts, &self.device)?;
        let logits = self
            .model
            .forward(&enc.ids, &enc.type_ids, &enc.mask, &mut Pass::Infer)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?;
        Ok(probs.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// Classifies many texts in one forward pass (padded to the longest of them).
    pub fn classify<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Prediction>, ModelError> {
        let probs = self.probabilities(texts)?;
        Ok(probs.iter().map(|p| self.decide(p)).collect())
    }

    /// Turns one probability row into a prediction, applying the out-of-scope threshold.
    pub fn decide(&self, probs: &[f32]) -> Prediction {
        decide(probs, &self.labels, &self.settings)
    }
}

/// The decision rule, kept free of the model so it is tested on its own: the most probable
/// label wins unless it is in scope and its probability is under the threshold, in which case
/// the message is out of scope with confidence `1 - p(best)`.
pub fn decide(probs: &[f32], labels: &[String], settings: &ParleySettings) -> Prediction {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let top: Vec<(String, f32)> = order
        .iter()
        .take(3)
        .map(|&i| (labels[i].clone(), probs[i]))
        .collect();
    let best = order[0];
    let (intent, confidence) =
        if labels[best] != settings.oos_label && probs[best] < settings.oos_threshold {
            (settings.oos_label.clone(), 1.0 - probs[best])
        } else {
            (labels[best].clone(), probs[best])
        };
    Prediction {
        intent,
        confidence,
        top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["track_order", "get_refund", "out_of_scope"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn confident_prediction_keeps_its_label() {
        let s = ParleySettings {
            oos_threshold: 0.5,
            ..Default::default()
        };
        let p = decide(&[0.9, 0.06, 0.04], &labels(), &s);
        assert_eq!(p.intent, "track_order");
        assert!((p.confidence - 0.9).abs() < 1e-6);
        assert_eq!(p.top.len(), 3);
        assert_eq!(p.top[1].0, "get_refund");
    }

    #[test]
    fn low_confidence_becomes_out_of_scope() {
        let s = ParleySettings {
            oos_threshold: 0.5,
            ..Default::default()
        };
        let p = decide(&[0.4, 0.35, 0.25], &labels(), &s);
        assert_eq!(p.intent, "out_of_scope");
        assert!((p.confidence - 0.6).abs() < 1e-6);
        assert_eq!(p.top[0].0, "track_order");
    }
}
