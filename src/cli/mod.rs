//! The `parley` command line.

mod bench;
mod classify;
mod converse;
mod eval;
mod kb;
mod kb_bench;
mod kb_load;
mod loadgen;
mod prepare;
mod run;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::data::DataError;
use crate::model::{DeviceSpec, ModelError};
use crate::train::TrainError;

/// Errors a command reports before exiting non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Knowledge(#[from] crate::knowledge::KnowledgeError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Kafka(#[from] crate::kafka::KafkaError),
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
    #[error("{context}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let context = context.into();
    move |source| CliError::Io { context, source }
}

/// Parley: AI customer service on Kafka.
#[derive(Debug, Parser)]
#[command(name = "parley", version, about, long_about = None)]
pub struct Cli {
    /// Log lines on standard error as text or JSON (one object per line). What is logged is
    /// set by PARLEY_LOG (or RUST_LOG), e.g. `info` (the default) or `parley=debug`.
    #[arg(
        long,
        global = true,
        env = "PARLEY_LOG_FORMAT",
        value_enum,
        default_value_t = crate::telemetry::LogFormat::Text
    )]
    pub log_format: crate::telemetry::LogFormat,
    /// Kernels for models on the CPU: `auto` runs int8 where the CPU has AVX-512 VNNI and f32
    /// elsewhere; `int8` insists (an error without VNNI); `f32` never quantises.
    #[arg(
        long,
        global = true,
        env = "PARLEY_CPU_KERNELS",
        value_enum,
        default_value_t = crate::model::CpuKernels::Auto
    )]
    pub cpu_kernels: crate::model::CpuKernels,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the stream service: Kafka in, classification, dialogue, state, replies out.
    Run(Box<run::RunArgs>),
    /// Play scripted conversations (YAML) against a running Parley and check its answers.
    Converse(Box<converse::ConverseArgs>),
    /// Measure a running service end to end: replies per second and latency percentiles.
    Loadgen(Box<loadgen::LoadgenArgs>),
    /// Fine-tune an intent classifier from a pretrained encoder (or resume one).
    Train(train::TrainArgs),
    /// Measure a model on labelled data: accuracy, macro-F1, per-intent table, confusions.
    Eval(eval::EvalArgs),
    /// Classify one text, or JSON lines / plain lines from standard input.
    Classify(classify::ClassifyArgs),
    /// Measure classification throughput and the machine's matrix-multiply speed.
    Bench(bench::BenchArgs),
    /// The knowledge base: publish articles and products, check what a question finds,
    /// measure retrieval.
    Kb(kb::KbArgs),
    /// Build the train/test files of the shipped model from the public data sets.
    PrepareData(prepare::PrepareArgs),
}

/// Model selection shared by the commands that load a classifier.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model directory (Hugging Face layout).
    #[arg(long, env = "PARLEY_MODEL", default_value = "models/intent-en")]
    pub model: PathBuf,
    /// Where to run the model: cpu, cuda or cuda:N.
    #[arg(long, env = "PARLEY_DEVICE", default_value = "cpu")]
    pub device: DeviceSpec,
}

impl ModelArgs {
    pub fn load(&self) -> Result<crate::model::Classifier, CliError> {
        let device = crate::model::parse_device(self.device)?;
        Ok(crate::model::Classifier::load(&self.model, &device)?)
    }
}

/// Runs the parsed command; the exit code says whether all input was handled.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run(a) => run::run(*a),
        Command::Converse(a) => converse::run(*a),
        Command::Loadgen(a) => loadgen::run(*a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Bench(a) => bench::run(a),
        Command::PrepareData(a) => prepare::run(a),
        Command::Kb(a) => kb::run(a),
    }
}
