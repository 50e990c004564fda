use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::TrainError;
use crate::model::{
    load_weights, BertConfig, ModelFiles, ParleySettings, Pass, Pooling, SequenceClassifier,
    TextEncoder,
};

const WORD_EMBEDDINGS: &str = "bert.embeddings.word_embeddings.weight";

/// Which weights came from the base checkpoint and which were freshly initialised.
#[derive(Debug, Clone, Default)]
pub struct InitReport {
    pub loaded: usize,
    pub initialised: Vec<String>,
}

/// How a [`Trainer`] is set up.
#[derive(Debug, Clone)]
pub struct TrainerSettings {
    pub max_seq_len: usize,
    pub seed: u64,
    pub adamw: ParamsAdamW,
    pub label_smoothing: f64,
    /// Also train the word embeddings (frozen by default).
    pub train_embeddings: bool,
    /// Pooling for the new classifier; `None` keeps the base model's.
    pub pooling: Option<Pooling>,
}

/// One model being fine-tuned: weights in a `VarMap`, an AdamW optimiser over all of them.
pub struct Trainer {
    model: SequenceClassifier,
    varmap: VarMap,
    optimizer: AdamW,
    encoder: TextEncoder,
    config: BertConfig,
    labels: Vec<String>,
    device: Device,
    rng: StdRng,
    label_smoothing: f64,
    base: ModelFiles,
}

/// Normal(0, std) from a seeded generator (Box-Muller), so initialisation is reproducible.
fn seeded_normal(
    shape: &[usize],
    std: f64,
    rng: &mut StdRng,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
            let u2: f64 = rng.gen();
            (std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, device)
}

impl Trainer {
    /// Builds a classifier for `labels` on top of the checkpoint in `base` (a bare encoder or
    /// a classifier; a classifier with the same labels keeps its head, i.e. resumes).
    pub fn from_base(
        base: &Path,
        labels: &[String],
        device: &Device,
        settings: TrainerSettings,
    ) -> Result<(Self, InitReport), TrainError> {
        let files = ModelFiles::locate(base)?;
        let mut config = BertConfig::from_file(&files.config)?;
        if settings.max_seq_len > config.max_position_embeddings {
            return Err(TrainError::Invalid(format!(
                "--max-seq-len {} exceeds the base model's max_position_embeddings {} ({})",
                settings.max_seq_len,
                config.max_position_embeddings,
                files.config.display()
            )));
        }
        let base_labels = config.labels().unwrap_or_default();
        let keep_head = base_labels == labels;
        let TrainerSettings {
            max_seq_len,
            seed,
            adamw: params,
            label_smoothing,
            train_embeddings,
            pooling,
        } = settings;
        let encoder = TextEncoder::from_file(&files.tokenizer, max_seq_len)?;
        config.parley = Some(ParleySettings {
            max_seq_len,
            pooling: pooling.unwrap_or(config.settings().pooling),
            ..config.settings()
        });
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = SequenceClassifier::load(vb, &config, labels.len())?;
        let mut weights = load_weights(&files.weights, device)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut report = InitReport::default();
        let vars = varmap.data().lock().expect("varmap lock").clone();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let var = &vars[name];
            let from_base = weights
                .remove(name.as_str())
                .filter(|t| t.dims() == var.dims())
                .filter(|_| keep_head || !name.starts_with("classifier."));
            match from_base {
                Some(t) => {
                    var.set(&t)?;
                    report.loaded += 1;
                }
                None => {
                    if name.ends_with(".weight") && !name.contains("LayerNorm") {
                        var.set(&seeded_normal(var.dims(), 0.02, &mut rng, device)?)?;
                    }
                    report.initialised.push(name.clone());
                }
            }
        }
        if !report
            .initialised
            .iter()
            .all(|n| n.starts_with("classifier.") || n.starts_with("bert.pooler."))
        {
            return Err(TrainError::Invalid(format!(
                "{} does not hold a BERT encoder matching its config.json (missing or mis-shaped: {})",
                files.weights.display(),
                report.initialised[0]
            )));
        }
        config.set_labels(labels);
        let mut model = model;
        let trainable: Vec<_> = vars
            .iter()
            .filter(|(name, _)| train_embeddings || name.as_str() != WORD_EMBEDDINGS)
            .map(|(_, v)| v.clone())
            .collect();
        if !train_embeddings {
            model.encoder.freeze_word_embeddings();
        }
        let optimizer = AdamW::new(trainable, params)?;
        Ok((
            Self {
                model,
                varmap,
                optimizer,
                encoder,
                config,
                labels: labels.to_vec(),
                device: device.clone(),
                rng,
                label_smoothing,
                base: files,
            },
            report,
        ))
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn text_encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// The current value of a weight, by its checkpoint name.
    pub fn weight(&self, name: &str) -> Option<Tensor> {
        let vars = self.varmap.data().lock().expect("varmap lock");
        vars.get(name)
            .map(|v| v.as_tensor().copy())
            .transpose()
            .ok()
            .flatten()
    }

    /// One optimisation step on a batch; returns the batch loss.
    pub fn step<S: AsRef<str> + Sync>(
        &mut self,
        texts: &[S],
        targets: &[u32],
        lr: f64,
    ) -> Result<f32, TrainError> {
        let enc = self.encoder.encode(texts, &self.device)?;
        let targets = Tensor::new(targets, &self.device)?;
        let mut pass = Pass::Train { rng: &mut self.rng };
        let logits = self
            .model
            .forward(&enc.ids, &enc.type_ids, &enc.mask, &mut pass)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let nll = logp
            .gather(&targets.unsqueeze(1)?, 1)?
            .squeeze(1)?
            .neg()?
            .mean_all()?;
        let loss = if self.label_smoothing > 0.0 {
            let uniform = logp.mean(D::Minus1)?.neg()?.mean_all()?;
            ((nll * (1.0 - self.label_smoothing))? + (uniform * self.label_smoothing)?)?
        } else {
            nll
        };
        self.optimizer.set_learning_rate(lr);
        self.optimizer.backward_step(&loss)?;
        Ok(loss.to_scalar::<f32>()?)
    }

    /// Class probabilities without dropout, in batches.
    pub fn probabilities<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        batch: usize,
    ) -> Result<Vec<Vec<f32>>, TrainError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch.max(1)) {
            let enc = self.encoder.encode(chunk, &self.device)?;
            let logits =
                self.model
                    .forward(&enc.ids, &enc.type_ids, &enc.mask, &mut Pass::Infer)?;
            out.extend(candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// Writes the model directory in the Hugging Face layout.
    pub fn save(
        &self,
        dir: &Path,
        dtype: DType,
        settings: &ParleySettings,
    ) -> Result<(), TrainError> {
        let io = |context: String| move |source| TrainError::Io { context, source };
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let tensors: HashMap<String, Tensor> = {
            let vars = self.varmap.data().lock().expect("varmap lock");
            vars.iter()
                .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_dtype(dtype)?)))
                .collect::<candle_core::Result<_>>()?
        };
        candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
        let mut config = self.config.clone();
        config.parley = Some(settings.clone());
        let torch_dtype = if dtype == DType::F16 {
            "float16"
        } else {
            "float32"
        };
        config
            .extra
            .insert("torch_dtype".into(), torch_dtype.into());
        config.save(&dir.join("config.json"))?;
        // The tokenizer files travel unchanged so the directory also loads in `transformers`.
        for f in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",
        ] {
            let src = self.base.dir.join(f);
            let dst = dir.join(f);
            if src.is_file() && src != dst {
                std::fs::copy(&src, &dst).map_err(io(format!("copying {}", src.display())))?;
            }
        }
        Ok(())
    }

    pub fn settings(&self) -> ParleySettings {
        self.config.settings()
    }
}
