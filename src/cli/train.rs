use std::path::PathBuf;
use std::process::ExitCode;

use candle_core::DType;

use super::CliError;
use crate::data::Columns;
use crate::model::{DeviceSpec, Pooling, DEFAULT_OOS_LABEL};
use crate::train::{train, TrainOptions};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Pretrained encoder or classifier directory (Hugging Face layout) to start from.
    #[arg(long)]
    pub base: PathBuf,
    /// Labelled data, .csv or .jsonl; repeat for several files.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Where to write the model directory and metrics.json.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "text")]
    pub text_column: String,
    #[arg(long, default_value = "intent")]
    pub label_column: String,
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW), reached after warm-up, then decayed linearly to zero.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Share of all steps spent warming up.
    #[arg(long, default_value_t = 0.1)]
    pub warmup_ratio: f64,
    /// Share of the data held out (stratified) for early stopping and threshold choice.
    #[arg(long, default_value_t = 0.1)]
    pub dev_fraction: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop after this many epochs without a better dev accuracy.
    #[arg(long, default_value_t = 2)]
    pub patience: usize,
    #[arg(long, default_value_t = 64)]
    pub max_seq_len: usize,
    /// Probability of perturbing a training text (casing, typos, dropped words, fragments).
    #[arg(long, default_value_t = 0.0)]
    pub augment: f64,
    /// Probability that a perturbed text with a generic product phrase ("an item") gets a
    /// concrete product instead ("the running shoes").
    #[arg(long, default_value_t = 0.0)]
    pub product_swap: f64,
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Also fine-tune the word embeddings (slower; by default they stay as pretrained).
    #[arg(long)]
    pub train_embeddings: bool,
    /// What the classifier pools: `cls` (BertForSequenceClassification's way) or `mean` (the
    /// average token state; suits sentence-embedding encoders). Default: the base model's.
    #[arg(long, value_enum)]
    pub pooling: Option<Pooling>,
    /// Label of off-topic messages in the data (and in predictions).
    #[arg(long, default_value = DEFAULT_OOS_LABEL)]
    pub oos_label: String,
    /// Fix the out-of-scope threshold instead of choosing it on dev data.
    #[arg(long)]
    pub oos_threshold: Option<f32>,
    /// Store weights as f16 (half the size) instead of f32.
    #[arg(long)]
    pub f16: bool,
    #[arg(long, env = "PARLEY_DEVICE", default_value = "cpu")]
    pub device: DeviceSpec,
    /// Stop after this many optimisation steps (for quick checks).
    #[arg(long)]
    pub max_steps: Option<usize>,
}

pub fn run(a: TrainArgs) -> Result<ExitCode, CliError> {
    let opts = TrainOptions {
        base: a.base,
        data: a.data,
        columns: Columns {
            text: a.text_column,
            label: a.label_column,
        },
        out: a.out,
        epochs: a.epochs,
        batch_size: a.batch_size.max(1),
        lr: a.lr,
        weight_decay: a.weight_decay,
        warmup_ratio: a.warmup_ratio,
        dev_fraction: a.dev_fraction,
        seed: a.seed,
        patience: a.patience.max(1),
        max_seq_len: a.max_seq_len,
        augment: a.augment,
        product_swap: a.product_swap,
        label_smoothing: a.label_smoothing,
        train_embeddings: a.train_embeddings,
        pooling: a.pooling,
        oos_label: a.oos_label,
        oos_threshold: a.oos_threshold,
        save_dtype: if a.f16 { DType::F16 } else { DType::F32 },
        device: a.device,
        max_steps: a.max_steps,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let s = train(&opts)?;
    println!(
        "wrote {}: best epoch {} of {}, dev accuracy {:.2}%, dev macro-F1 {:.4}, out-of-scope threshold {:.2}, {:.0}s",
        opts.out.display(),
        s.best_epoch,
        s.epochs_run,
        s.dev_accuracy * 100.0,
        s.dev_macro_f1,
        s.oos_threshold,
        s.seconds
    );
    Ok(ExitCode::SUCCESS)
}
