use std::path::PathBuf;
use std::time::Instant;

use candle_core::DType;
use candle_nn::ParamsAdamW;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::{
    augment, calibrate_threshold, learning_rate, Calibration, TrainError, Trainer, TrainerSettings,
};
use crate::data::{self, Columns, Example};
use crate::eval::{ConfusionMatrix, Report};
use crate::model::{parse_device, DeviceSpec, ParleySettings, Pooling};

/// Everything `parley train` can be told.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub base: PathBuf,
    pub data: Vec<PathBuf>,
    pub columns: Columns,
    pub out: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    pub dev_fraction: f64,
    pub seed: u64,
    pub patience: usize,
    pub max_seq_len: usize,
    pub augment: f64,
    pub product_swap: f64,
    pub label_smoothing: f64,
    pub train_embeddings: bool,
    pub pooling: Option<Pooling>,
    pub oos_label: String,
    pub oos_threshold: Option<f32>,
    pub save_dtype: DType,
    pub device: DeviceSpec,
    pub max_steps: Option<usize>,
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev_accuracy: f64,
    pub dev_macro_f1: f64,
    pub examples_per_second: f64,
    pub seconds: f64,
}

/// What training did; written to `metrics.json` beside the model.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub base: String,
    pub data: Vec<String>,
    pub labels: usize,
    pub train_examples: usize,
    pub dev_examples: usize,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub steps: usize,
    pub seconds: f64,
    pub device: String,
    pub seed: u64,
    pub dev_accuracy: f64,
    pub dev_macro_f1: f64,
    pub oos_threshold: f32,
    pub calibration: Option<Calibration>,
    pub history: Vec<EpochRecord>,
    pub dev_report: Report,
}

fn dev_matrix(
    probs: &[Vec<f32>],
    dev: &[Example],
    labels: &[String],
    settings: &ParleySettings,
) -> ConfusionMatrix {
    let mut m = ConfusionMatrix::new(labels.to_vec());
    for (p, e) in probs.iter().zip(dev) {
        m.add(&e.label, &crate::model::decide(p, labels, settings).intent);
    }
    m
}

/// Fine-tunes and writes the best epoch's model (by dev accuracy) to `opts.out`.
pub fn train(opts: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    if opts.epochs == 0 || opts.max_steps == Some(0) {
        return Err(TrainError::Invalid(
            "--epochs and --max-steps must be at least 1".into(),
        ));
    }
    if opts.data.is_empty() {
        return Err(TrainError::Invalid(
            "no training data given (--data FILE)".into(),
        ));
    }
    let mut examples = Vec::new();
    for path in &opts.data {
        examples.extend(data::read_examples(path, &opts.columns)?);
    }
    let examples = data::dedup(examples);
    let labels = data::label_set(&examples);
    if labels.len() < 2 {
        return Err(TrainError::Invalid(format!(
            "training needs at least two labels, found {}",
            labels.len()
        )));
    }
    let (train_set, dev_set) = data::stratified_split(&examples, opts.dev_fraction, opts.seed)?;
    if train_set.is_empty() || dev_set.is_empty() {
        return Err(TrainError::Invalid(
            "too little data for a train/dev split".into(),
        ));
    }
    let device = parse_device(opts.device)?;
    let params = ParamsAdamW {
        lr: opts.lr,
        weight_decay: opts.weight_decay,
        ..Default::default()
    };
    let settings = TrainerSettings {
        max_seq_len: opts.max_seq_len,
        seed: opts.seed,
        adamw: params,
        label_smoothing: opts.label_smoothing,
        train_embeddings: opts.train_embeddings,
        pooling: opts.pooling,
    };
    let (mut trainer, init) = Trainer::from_base(&opts.base, &labels, &device, settings)?;
    tracing::info!(
        labels = labels.len(),
        examples = train_set.len(),
        dev_examples = dev_set.len(),
        base = %opts.base.display(),
        device = %opts.device,
        tensors_loaded = init.loaded,
        newly_initialised = %if init.initialised.is_empty() {
            "none".to_string()
        } else {
            init.initialised.join(", ")
        },
        "training"
    );
    let label_id = |l: &str| labels.iter().position(|x| x == l).expect("label from data") as u32;
    let steps_per_epoch = train_set.len().div_ceil(opts.batch_size);
    let total = opts
        .max_steps
        .unwrap_or(usize::MAX)
        .min(steps_per_epoch * opts.epochs);
    let warmup = (total as f64 * opts.warmup_ratio).round() as usize;
    let bar = if opts.progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    let dev_texts: Vec<&str> = dev_set.iter().map(|e| e.text.as_str()).collect();
    let dev_gold: Vec<usize> = dev_set
        .iter()
        .map(|e| label_id(&e.label) as usize)
        .collect();
    let base_settings = ParleySettings {
        oos_label: opts.oos_label.clone(),
        oos_threshold: 0.0,
        max_seq_len: opts.max_seq_len,
        pooling: trainer.settings().pooling,
    };
    let mut history = Vec::new();
    let (mut step, mut best_acc, mut best_epoch, mut stale) = (0usize, -1.0f64, 0usize, 0usize);
    let mut best_probs: Vec<Vec<f32>> = Vec::new();
    'epochs: for epoch in 1..=opts.epochs {
        let epoch_start = Instant::now();
        bar.set_prefix(format!("epoch {epoch}/{}", opts.epochs));
        order.shuffle(&mut rng);
        let (mut loss_sum, mut seen, mut batches) = (0.0f64, 0usize, 0usize);
        let mut ema: Option<f64> = None;
        for chunk in order.chunks(opts.batch_size) {
            if step >= total {
                break;
            }
            let texts: Vec<String> = chunk
                .iter()
                .map(|&i| {
                    augment(
                        &train_set[i].text,
                        opts.augment,
                        opts.product_swap,
                        &mut rng,
                    )
                })
                .collect();
            let targets: Vec<u32> = chunk
                .iter()
                .map(|&i| label_id(&train_set[i].label))
                .collect();
            let lr = learning_rate(step, total, warmup, opts.lr);
            let loss = trainer.step(&texts, &targets, lr)? as f64;
            if !loss.is_finite() {
                return Err(TrainError::Invalid(format!(
                    "loss became {loss} at step {step}: lower --lr"
                )));
            }
            step += 1;
            batches += 1;
            seen += chunk.len();
            loss_sum += loss;
            let smooth = ema.map_or(loss, |e| 0.9 * e + 0.1 * loss);
            ema = Some(smooth);
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("loss {smooth:.4} · {rate:.0} ex/s · lr {lr:.1e}"));
            bar.inc(1);
        }
        if batches == 0 {
            break;
        }
        let probs = trainer.probabilities(&dev_texts, 64)?;
        let report = dev_matrix(&probs, &dev_set, &labels, &base_settings).report();
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / batches as f64,
            dev_accuracy: report.accuracy,
            dev_macro_f1: report.macro_f1,
            examples_per_second: seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9),
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        bar.suspend(|| {
            tracing::info!(
                epoch,
                loss = format_args!("{:.4}", record.train_loss),
                dev_accuracy = format_args!("{:.4}", record.dev_accuracy),
                dev_macro_f1 = format_args!("{:.4}", record.dev_macro_f1),
                examples_per_second = format_args!("{:.0}", record.examples_per_second),
                seconds = format_args!("{:.0}", record.seconds),
                "epoch done"
            )
        });
        history.push(record);
        if report.accuracy > best_acc {
            best_acc = report.accuracy;
            best_epoch = epoch;
            best_probs = probs;
            stale = 0;
            trainer.save(&opts.out, opts.save_dtype, &base_settings)?;
        } else {
            stale += 1;
            if stale >= opts.patience {
                bar.suspend(|| tracing::info!(epochs_without_improvement = stale, "early stop"));
                break 'epochs;
            }
        }
        if step >= total {
            break;
        }
    }
    bar.finish_and_clear();
    let calibration = calibrate_threshold(&best_probs, &dev_gold, &labels, &opts.oos_label);
    let threshold = opts
        .oos_threshold
        .or(calibration.as_ref().map(|c| c.threshold))
        .unwrap_or(0.0);
    let settings = ParleySettings {
        oos_threshold: threshold,
        ..base_settings
    };
    // Re-write config.json only: the weights on disk are already the best epoch's.
    let config_path = opts.out.join("config.json");
    let mut config = crate::model::BertConfig::from_file(&config_path)?;
    config.parley = Some(settings.clone());
    config.save(&config_path)?;
    let dev_report = dev_matrix(&best_probs, &dev_set, &labels, &settings).report();
    let summary = TrainSummary {
        base: opts.base.display().to_string(),
        data: opts.data.iter().map(|p| p.display().to_string()).collect(),
        labels: labels.len(),
        train_examples: train_set.len(),
        dev_examples: dev_set.len(),
        best_epoch,
        epochs_run: history.len(),
        steps: step,
        seconds: started.elapsed().as_secs_f64(),
        device: opts.device.to_string(),
        seed: opts.seed,
        dev_accuracy: dev_report.accuracy,
        dev_macro_f1: dev_report.macro_f1,
        oos_threshold: threshold,
        calibration,
        history,
        dev_report,
    };
    let metrics = serde_json::to_string_pretty(&summary).expect("summary serialises");
    std::fs::write(opts.out.join("metrics.json"), metrics + "\n").map_err(|source| {
        TrainError::Io {
            context: format!("writing {}", opts.out.join("metrics.json").display()),
            source,
        }
    })?;
    Ok(summary)
}
