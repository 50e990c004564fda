//! Evaluation: metrics like scikit-learn's classification report, and a visual report.

mod metrics;
mod report;

pub use metrics::{Confusion, ConfusionMatrix, LabelMetrics, Report};
pub use report::write_report;

use crate::data::Example;
use crate::model::{Classifier, ModelError};

/// Classifies `examples` in batches and compares with their labels.
pub fn evaluate(
    classifier: &Classifier,
    examples: &[Example],
    batch_size: usize,
    mut progress: impl FnMut(usize),
) -> Result<ConfusionMatrix, ModelError> {
    let mut labels: Vec<String> = classifier.labels().to_vec();
    for e in examples {
        if !labels.contains(&e.label) {
            labels.push(e.label.clone());
        }
    }
    let mut matrix = ConfusionMatrix::new(labels);
    for chunk in examples.chunks(batch_size.max(1)) {
        let preds =
            classifier.classify(&chunk.iter().map(|e| e.text.as_str()).collect::<Vec<_>>())?;
        for (e, p) in chunk.iter().zip(preds) {
            matrix.add(&e.label, &p.intent);
        }
        progress(chunk.len());
    }
    Ok(matrix)
}
