use serde::Serialize;

use crate::model::ParleySettings;

/// The chosen out-of-scope threshold and what it gives on the calibration data.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    pub threshold: f32,
    pub in_scope_accuracy: f64,
    pub oos_recall: f64,
}

/// Picks the confidence threshold that maximises the mean of in-scope accuracy and
/// out-of-scope recall on held-out data (balanced, so neither side's size decides), preferring
/// the lowest such threshold. `gold[i]` indexes `labels`. Returns `None` when the data has no
/// out-of-scope examples, since then nothing can be calibrated.
pub fn calibrate_threshold(
    probs: &[Vec<f32>],
    gold: &[usize],
    labels: &[String],
    oos_label: &str,
) -> Option<Calibration> {
    let oos = labels.iter().position(|l| l == oos_label);
    let is_oos = |i: usize| Some(i) == oos;
    let n_oos = gold.iter().filter(|&&g| is_oos(g)).count();
    let n_in = gold.len() - n_oos;
    if n_oos == 0 || n_in == 0 {
        return None;
    }
    let mut best: Option<Calibration> = None;
    let mut best_score = f64::MIN;
    for step in 0..100 {
        let t = step as f32 / 100.0;
        let settings = ParleySettings {
            oos_label: oos_label.to_string(),
            oos_threshold: t,
            ..Default::default()
        };
        let (mut in_ok, mut oos_ok) = (0usize, 0usize);
        for (p, &g) in probs.iter().zip(gold) {
            let pred = crate::model::decide(p, labels, &settings);
            if pred.intent == labels[g] {
                if is_oos(g) {
                    oos_ok += 1;
                } else {
                    in_ok += 1;
                }
            }
        }
        let in_acc = in_ok as f64 / n_in as f64;
        let recall = oos_ok as f64 / n_oos as f64;
        let score = (in_acc + recall) / 2.0;
        if score > best_score + 1e-12 {
            best_score = score;
            best = Some(Calibration {
                threshold: t,
                in_scope_accuracy: in_acc,
                oos_recall: recall,
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_a_threshold_between_confident_and_unsure() {
        let labels: Vec<String> = ["a", "b", "out_of_scope"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // In-scope examples are confident; off-topic ones are unsure between a and b.
        let probs = vec![
            vec![0.95, 0.03, 0.02],
            vec![0.05, 0.90, 0.05],
            vec![0.50, 0.45, 0.05],
            vec![0.40, 0.35, 0.25],
        ];
        let gold = vec![0, 1, 2, 2];
        let c = calibrate_threshold(&probs, &gold, &labels, "out_of_scope").unwrap();
        assert!(c.threshold > 0.5 && c.threshold <= 0.9, "{c:?}");
        assert_eq!(c.in_scope_accuracy, 1.0);
        assert_eq!(c.oos_recall, 1.0);
        assert!(calibrate_threshold(&probs[..2], &gold[..2], &labels, "out_of_scope").is_none());
    }
}
