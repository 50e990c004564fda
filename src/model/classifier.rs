use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use super::bert::{BertEncoder, Dense, Pass};
use super::{
    load_weights, BertConfig, CpuKernels, ModelError, ModelFiles, ParleySettings, Pooling,
    TextEncoder,
};
use crate::wire::Prediction;

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

/// The classifier on the int8 kernels: the encoder quantised, the pooler and the head (a few
/// thousand multiply-adds per text) in f32.
#[cfg(target_arch = "x86_64")]
struct Int8Classifier {
    encoder: super::int8::Int8Encoder,
    pooler: super::int8::DenseWeights,
    head: super::int8::DenseWeights,
    pooling: Pooling,
}

#[cfg(target_arch = "x86_64")]
fn int8_engine(model: SequenceClassifier) -> Result<Engine, ModelError> {
    let weights = model.encoder.export()?;
    let pooler = model.encoder.export_pooler()?;
    let head = model.head.export()?;
    let encoder = super::int8::Int8Encoder::new(weights)
        .map_err(|e| ModelError::Device(format!("cannot run the int8 kernels: {e}")))?;
    Ok(Engine::Int8(Int8Classifier {
        encoder,
        pooler,
        head,
        pooling: model.pooling,
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn int8_engine(_model: SequenceClassifier) -> Result<Engine, ModelError> {
    Err(ModelError::Device(
        "the int8 kernels need an x86-64 CPU".into(),
    ))
}

#[cfg(target_arch = "x86_64")]
impl Int8Classifier {
    fn probabilities(&self, texts: &[super::tokenize::TextTokens]) -> Vec<Vec<f32>> {
        let summary = self.encoder.forward(
            texts,
            match self.pooling {
                Pooling::Cls => super::int8::Summary::First,
                Pooling::Mean => super::int8::Summary::Mean,
            },
        );
        let b = texts.len();
        let mut pooled = dense(&summary, &self.pooler, b);
        pooled.iter_mut().for_each(|v| *v = v.tanh());
        let logits = dense(&pooled, &self.head, b);
        logits
            .chunks(self.head.outputs)
            .map(|row| {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let exp: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
                let total: f32 = exp.iter().sum();
                exp.iter().map(|e| e / total).collect()
            })
            .collect()
    }
}

/// `x W^T + b` in f32 for `rows` rows.
#[cfg(target_arch = "x86_64")]
fn dense(x: &[f32], d: &super::int8::DenseWeights, rows: usize) -> Vec<f32> {
    let mut y = Vec::with_capacity(rows * d.outputs);
    for _ in 0..rows {
        y.extend_from_slice(&d.bias);
    }
    super::cpu::gemm_abt(x, &d.weight, &mut y, rows, d.outputs, d.inputs);
    y
}

/// What computes the logits.
enum Engine {
    /// candle: f32 on the CPU (fused kernels or generic ops) or on a GPU.
    Candle(SequenceClassifier),
    /// The int8 CPU kernels.
    #[cfg(target_arch = "x86_64")]
    Int8(Int8Classifier),
}

/// A loaded classifier ready for batch inference.
pub struct Classifier {
    engine: Engine,
    encoder: TextEncoder,
    labels: Vec<String>,
    settings: ParleySettings,
    config: BertConfig,
    device: Device,
}

impl Classifier {
    /// Loads a model directory, naming the missing or broken file on failure. On the CPU it
    /// runs the kernels the process was told to use (`--cpu-kernels`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::load_with(dir, device, true, super::cpu_kernels())
    }

    /// Loads a model directory for the CPU kernels named.
    pub fn load_kernels(
        dir: &Path,
        device: &Device,
        kernels: CpuKernels,
    ) -> Result<Self, ModelError> {
        Self::load_with(dir, device, true, kernels)
    }

    /// Loads without the fused inference kernels: candle's generic ops only. The reference the
    /// fused path is checked against.
    pub fn load_reference(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        Self::load_with(dir, device, false, CpuKernels::F32)
    }

    fn load_with(
        dir: &Path,
        device: &Device,
        fused: bool,
        kernels: CpuKernels,
    ) -> Result<Self, ModelError> {
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
        let engine = if fused && super::kernels::int8_for(&model.encoder, dir, device, kernels)? {
            int8_engine(model)?
        } else {
            if fused {
                model.prepare_inference()?;
            }
            Engine::Candle(model)
        };
        Ok(Self {
            engine,
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

    /// What runs the forward pass, for reports.
    pub fn kernels(&self) -> &'static str {
        match &self.engine {
            Engine::Candle(m) if m.encoder.is_prepared() => "fused f32 kernels",
            Engine::Candle(_) => "candle ops",
            #[cfg(target_arch = "x86_64")]
            Engine::Int8(_) => "int8 AVX-512 VNNI kernels",
        }
    }

    /// Softmax probabilities, one row per text, in label-id order.
    pub fn probabilities<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let model = match &self.engine {
            Engine::Candle(model) => model,
            #[cfg(target_arch = "x86_64")]
            Engine::Int8(model) => {
                let tokens = self.encoder.tokens(texts)?;
                return Ok(model.probabilities(&tokens));
            }
        };
        let enc = self.encoder.encode(texts, &self.device)?;
        let logits = model.forward(&enc.ids, &enc.type_ids, &enc.mask, &mut Pass::Infer)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?;
        Ok(probs.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// Classifies many texts in one forward pass (padded to the longest of them).
    pub fn classify<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Prediction>, ModelError> {
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
