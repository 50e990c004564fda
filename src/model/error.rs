use std::path::PathBuf;

/// Errors of the model layer. Each names the file or setting at fault so a user can act on it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model directory {0} does not exist (pass --model DIR or set PARLEY_MODEL)")]
    MissingDir(PathBuf),
    #[error("model file {0} is missing")]
    MissingFile(PathBuf),
    #[error("model file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("invalid model configuration in {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("device error: {0}")]
    Device(String),
    #[error("input error: {0}")]
    Input(String),
    #[error("the model thread has stopped")]
    BackendStopped,
    /// The model panicked on a batch; the thread caught it and goes on with the next one.
    #[error("the model failed on this batch: {0}")]
    Panicked(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
