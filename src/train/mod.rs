//! Fine-tuning a sequence classifier from a pretrained BERT encoder (or resuming one).

mod augment;
mod calibrate;
mod run;
mod schedule;
mod trainer;

pub use augment::augment;
pub use calibrate::{calibrate_threshold, Calibration};
pub use run::{train, TrainOptions, TrainSummary};
pub use schedule::learning_rate;
pub use trainer::{InitReport, Trainer, TrainerSettings};

use crate::data::DataError;
use crate::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{context}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}
