//! Evaluation: metrics like scikit-learn's classification report, a visual report, and the
//! off-topic threshold swept over labelled data.

mod metrics;
mod report;
mod sweep;

pub use metrics::{Confusion, ConfusionMatrix, LabelMetrics, Report, Scope};
pub use report::write_report;
pub use sweep::{sweep, wilson, Sweep, SweepRow};

use crate::data::Example;
use crate::model::{decide, Classifier, ModelError, ParleySettings};

/// Each example's probabilities over `classifier.labels()`, in batches: computed once, they
/// are then decided under as many settings as wanted ([`matrix_from_probs`], [`sweep`]).
pub fn probabilities(
    classifier: &Classifier,
    examples: &[Example],
    batch_size: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<f32>>, ModelError> {
    let mut probs = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        probs.extend(classifier.probabilities(&texts)?);
        progress(chunk.len());
    }
    Ok(probs)
}

/// The confusion matrix of `examples` when `settings` decide their probabilities. Labels in
/// the data that the model does not know are added (they can only be missed).
pub fn matrix_from_probs(
    labels: &[String],
    examples: &[Example],
    probs: &[Vec<f32>],
    settings: &ParleySettings,
) -> ConfusionMatrix {
    let mut all: Vec<String> = labels.to_vec();
    for e in examples {
        if !all.contains(&e.label) {
            all.push(e.label.clone());
        }
    }
    let mut matrix = ConfusionMatrix::new(all);
    for (e, p) in examples.iter().zip(probs) {
        matrix.add(&e.label, &decide(p, labels, settings).intent);
    }
    matrix
}
