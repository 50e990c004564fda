//! The off-topic threshold swept over labelled data: what each threshold costs in scope and
//! catches off topic, with an interval on the catch, so a threshold is chosen on validation
//! data and then checked once on test data.

use std::fmt::Write;

use serde::Serialize;

use super::matrix_from_probs;
use crate::data::Example;
use crate::model::ParleySettings;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_964;

/// The in-scope / off-topic figures at one threshold.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SweepRow {
    pub threshold: f32,
    pub in_scope_accuracy: f64,
    pub in_scope_called_off_topic: f64,
    pub off_topic_recall: f64,
    /// The 95% Wilson interval around `off_topic_recall`. Validation sets hold few off-topic
    /// messages (CLINC150's: 100), so the point estimate alone over-states what a threshold
    /// will catch about as often as it under-states it.
    pub off_topic_recall_low: f64,
    pub off_topic_recall_high: f64,
}

/// A whole sweep: the rows in the order of the thresholds asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub oos_label: String,
    pub in_scope: usize,
    pub off_topic: usize,
    pub rows: Vec<SweepRow>,
    /// The recall the choice had to reach, and the threshold chosen (see [`Sweep::choose`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_recall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<f32>,
}

/// The Wilson score interval for `k` successes in `n` trials at normal quantile `z`.
pub fn wilson(k: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Decides every example at each threshold (the probabilities are computed once, by the
/// caller) and summarises scope. `None` when the data holds no off-topic example or no
/// in-scope one: a sweep then measures nothing.
pub fn sweep(
    labels: &[String],
    examples: &[Example],
    probs: &[Vec<f32>],
    settings: &ParleySettings,
    thresholds: &[f32],
) -> Option<Sweep> {
    let mut rows = Vec::with_capacity(thresholds.len());
    let mut sizes = None;
    for &threshold in thresholds {
        let at = ParleySettings {
            oos_threshold: threshold,
            ..settings.clone()
        };
        let scope = matrix_from_probs(labels, examples, probs, &at).scope(&settings.oos_label)?;
        if scope.off_topic == 0 || scope.in_scope == 0 {
            return None;
        }
        let (low, high) = wilson(scope.off_topic_caught, scope.off_topic, Z95);
        // The same at every threshold: only the decisions change.
        sizes = Some((scope.in_scope, scope.off_topic));
        rows.push(SweepRow {
            threshold,
            in_scope_accuracy: scope.in_scope_accuracy,
            in_scope_called_off_topic: scope.in_scope_called_off_topic,
            off_topic_recall: scope.off_topic_recall,
            off_topic_recall_low: low,
            off_topic_recall_high: high,
        });
    }
    let (in_scope, off_topic) = sizes?;
    Some(Sweep {
        oos_label: settings.oos_label.clone(),
        in_scope,
        off_topic,
        rows,
        target_recall: None,
        chosen: None,
    })
}

impl Sweep {
    /// Chooses the lowest threshold whose off-topic recall reaches `target` with 95%
    /// confidence (the interval's lower end), so that the choice holds on unseen data and
    /// not only on the few off-topic messages it was made on. The lowest, because every step
    /// up turns more in-scope customers away.
    pub fn choose(&mut self, target: f64) -> Option<f32> {
        self.target_recall = Some(target);
        self.chosen = self
            .rows
            .iter()
            .filter(|r| r.off_topic_recall_low >= target)
            .map(|r| r.threshold)
            .min_by(f32::total_cmp);
        self.chosen
    }

    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} in scope, {} off topic ({})\n\n{:>9}  {:>17}  {:>18}  {:>17}  {:>15}\n",
            self.in_scope,
            self.off_topic,
            self.oos_label,
            "threshold",
            "in-scope accuracy",
            "called off-topic",
            "off-topic recall",
            "95% interval"
        );
        for r in &self.rows {
            let mark = if self.chosen == Some(r.threshold) {
                "  <- chosen"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "{:>9.3}  {:>16.2}%  {:>17.2}%  {:>16.1}%  {:>6.1}% - {:>5.1}%{mark}",
                r.threshold,
                100.0 * r.in_scope_accuracy,
                100.0 * r.in_scope_called_off_topic,
                100.0 * r.off_topic_recall,
                100.0 * r.off_topic_recall_low,
                100.0 * r.off_topic_recall_high,
            );
        }
        if let Some(target) = self.target_recall {
            let _ = match self.chosen {
                Some(t) => writeln!(
                    s,
                    "\nchosen: {t} (the lowest threshold whose off-topic recall reaches {:.0}% at 95% confidence)",
                    100.0 * target
                ),
                None => writeln!(
                    s,
                    "\nno threshold swept reaches {:.0}% off-topic recall at 95% confidence",
                    100.0 * target
                ),
            };
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, label: &str) -> Example {
        Example::new(text, label)
    }

    #[test]
    fn wilson_matches_the_textbook_interval() {
        // 73 of 100: 63.6% - 80.7% (Wilson, 95%).
        let (lo, hi) = wilson(73, 100, Z95);
        assert!((lo - 0.6357).abs() < 5e-4, "{lo}");
        assert!((hi - 0.8070).abs() < 5e-4, "{hi}");
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
        // All successes: the lower end is n / (n + z^2), the upper end 1.
        let (lo, hi) = wilson(10, 10, Z95);
        assert!((lo - 10.0 / (10.0 + Z95 * Z95)).abs() < 1e-9, "{lo}");
        assert!((hi - 1.0).abs() < 1e-9, "{hi}");
    }

    #[test]
    fn sweeps_and_chooses_the_lowest_threshold_sure_to_reach_the_target() {
        let labels: Vec<String> = ["a", "b", "oos"].iter().map(|s| s.to_string()).collect();
        let settings = ParleySettings {
            oos_label: "oos".into(),
            ..ParleySettings::default()
        };
        // Two confident in-scope messages, one unsure one, and off-topic messages whose best
        // in-scope probability falls between 0.4 and 0.9.
        let mut examples = vec![ex("x", "a"), ex("y", "b"), ex("z", "a")];
        let mut probs = vec![
            vec![0.95, 0.03, 0.02],
            vec![0.02, 0.96, 0.02],
            vec![0.55, 0.40, 0.05],
        ];
        for i in 0..20 {
            examples.push(ex("o", "oos"));
            let p = 0.4 + 0.025 * i as f32;
            probs.push(vec![p, 0.95 - p, 0.05]);
        }
        let mut s = sweep(
            &labels,
            &examples,
            &probs,
            &settings,
            &[0.0, 0.5, 0.8, 0.99],
        )
        .unwrap();
        assert_eq!((s.in_scope, s.off_topic), (3, 20));
        assert_eq!(s.rows[0].off_topic_recall, 0.0);
        assert_eq!(s.rows[0].in_scope_accuracy, 1.0);
        // 0.8 catches the 16 whose best probability is under 0.8; the unsure in-scope
        // message is turned away from 0.8 on.
        assert_eq!(s.rows[2].off_topic_recall, 16.0 / 20.0);
        assert!((s.rows[2].in_scope_called_off_topic - 1.0 / 3.0).abs() < 1e-9);
        // 16 of 20 has a lower bound of 58.4%; 20 of 20 of 83.9%.
        assert_eq!(s.choose(0.5), Some(0.8));
        assert_eq!(s.choose(0.7), Some(0.99));
        assert_eq!(s.choose(0.9), None);
        assert!(s.to_text().contains("no threshold swept reaches 90%"));
    }

    #[test]
    fn a_sweep_needs_both_kinds_of_message() {
        let labels: Vec<String> = ["a", "oos"].iter().map(|s| s.to_string()).collect();
        let settings = ParleySettings {
            oos_label: "oos".into(),
            ..ParleySettings::default()
        };
        let probs = vec![vec![0.9, 0.1]];
        assert!(sweep(&labels, &[ex("x", "a")], &probs, &settings, &[0.5]).is_none());
    }
}
