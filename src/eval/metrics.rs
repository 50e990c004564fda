use std::fmt::Write;

use serde::Serialize;

/// Counts of (true label, predicted label).
#[derive(Debug, Clone, Serialize)]
pub struct ConfusionMatrix {
    pub labels: Vec<String>,
    /// `counts[true][predicted]`.
    pub counts: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Confusion {
    pub true_label: String,
    pub predicted: String,
    pub count: usize,
}

/// Summary metrics. Averages run over the labels that occur in the data or the predictions,
/// as scikit-learn's do.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub total: usize,
    pub accuracy: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub per_label: Vec<LabelMetrics>,
    /// Off-diagonal cells, largest first.
    pub confusions: Vec<Confusion>,
    /// In scope against off-topic, when the data has off-topic messages or the model
    /// predicts them (see [`ConfusionMatrix::report_with_scope`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// What matters for a customer-service bot beyond accuracy: in-scope messages answered
/// right, off-topic ones caught, and in-scope ones wrongly turned away as off-topic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scope {
    pub oos_label: String,
    pub in_scope: usize,
    /// In-scope messages given their own label.
    pub in_scope_accuracy: f64,
    /// In-scope messages called off-topic.
    pub in_scope_called_off_topic: f64,
    pub off_topic: usize,
    /// Off-topic messages called off-topic: how many, and their share.
    pub off_topic_caught: usize,
    pub off_topic_recall: f64,
}

impl ConfusionMatrix {
    pub fn new(labels: Vec<String>) -> Self {
        let n = labels.len();
        Self {
            labels,
            counts: vec![vec![0; n]; n],
        }
    }

    fn index(&mut self, label: &str) -> usize {
        if let Some(i) = self.labels.iter().position(|l| l == label) {
            return i;
        }
        self.labels.push(label.to_string());
        for row in &mut self.counts {
            row.push(0);
        }
        self.counts.push(vec![0; self.labels.len()]);
        self.labels.len() - 1
    }

    /// Records one example; unseen labels are added.
    pub fn add(&mut self, truth: &str, predicted: &str) {
        let t = self.index(truth);
        let p = self.index(predicted);
        self.counts[t][p] += 1;
    }

    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// The report with the in-scope / off-topic summary for `oos_label`.
    pub fn report_with_scope(&self, oos_label: &str) -> Report {
        let mut r = self.report();
        r.scope = self.scope(oos_label);
        r
    }

    /// In scope against off-topic; `None` when `oos_label` is neither in the data nor predicted.
    pub fn scope(&self, oos_label: &str) -> Option<Scope> {
        let o = self.labels.iter().position(|l| l == oos_label)?;
        let n = self.labels.len();
        let row = |t: usize| self.counts[t].iter().sum::<usize>();
        let off_topic = row(o);
        let in_scope: usize = (0..n).filter(|&t| t != o).map(row).sum();
        let right: usize = (0..n).filter(|&t| t != o).map(|t| self.counts[t][t]).sum();
        let turned_away: usize = (0..n).filter(|&t| t != o).map(|t| self.counts[t][o]).sum();
        let share = |a: usize, b: usize| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        Some(Scope {
            oos_label: oos_label.to_string(),
            in_scope,
            in_scope_accuracy: share(right, in_scope),
            in_scope_called_off_topic: share(turned_away, in_scope),
            off_topic,
            off_topic_caught: self.counts[o][o],
            off_topic_recall: share(self.counts[o][o], off_topic),
        })
    }

    pub fn report(&self) -> Report {
        let n = self.labels.len();
        let total = self.total();
        let correct: usize = (0..n).map(|i| self.counts[i][i]).sum();
        let mut per_label = Vec::new();
        for i in 0..n {
            let support: usize = self.counts[i].iter().sum();
            let predicted: usize = (0..n).map(|t| self.counts[t][i]).sum();
            if support == 0 && predicted == 0 {
                continue;
            }
            let tp = self.counts[i][i] as f64;
            let precision = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            per_label.push(LabelMetrics {
                label: self.labels[i].clone(),
                precision,
                recall,
                f1,
                support,
            });
        }
        let k = per_label.len().max(1) as f64;
        let mean = |f: fn(&LabelMetrics) -> f64| per_label.iter().map(f).sum::<f64>() / k;
        let weighted_f1 = if total > 0 {
            per_label
                .iter()
                .map(|m| m.f1 * m.support as f64)
                .sum::<f64>()
                / total as f64
        } else {
            0.0
        };
        let mut confusions: Vec<Confusion> = (0..n)
            .flat_map(|t| (0..n).map(move |p| (t, p)))
            .filter(|&(t, p)| t != p && self.counts[t][p] > 0)
            .map(|(t, p)| Confusion {
                true_label: self.labels[t].clone(),
                predicted: self.labels[p].clone(),
                count: self.counts[t][p],
            })
            .collect();
        confusions.sort_by(|a, b| b.count.cmp(&a.count).then(a.true_label.cmp(&b.true_label)));
        Report {
            total,
            accuracy: if total > 0 {
                correct as f64 / total as f64
            } else {
                0.0
            },
            macro_precision: mean(|m| m.precision),
            macro_recall: mean(|m| m.recall),
            macro_f1: mean(|m| m.f1),
            weighted_f1,
            per_label,
            confusions,
            scope: None,
        }
    }
}

impl Report {
    /// A plain-text table in the shape of scikit-learn's `classification_report`, followed by
    /// the `top` most frequent confusions.
    pub fn to_text(&self, top: usize) -> String {
        let w = self
            .per_label
            .iter()
            .map(|m| m.label.len())
            .max()
            .unwrap_or(0)
            .max(12);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>w$}  {:>9}  {:>9}  {:>9}  {:>9}\n",
            "", "precision", "recall", "f1-score", "support"
        );
        for m in &self.per_label {
            let _ = writeln!(
                s,
                "{:>w$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}",
                m.label, m.precision, m.recall, m.f1, m.support
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:>w$}  {:>9}  {:>9}  {:>9.4}  {:>9}",
            "accuracy", "", "", self.accuracy, self.total
        );
        let _ = writeln!(
            s,
            "{:>w$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}",
            "macro avg", self.macro_precision, self.macro_recall, self.macro_f1, self.total
        );
        let _ = writeln!(
            s,
            "{:>w$}  {:>9}  {:>9}  {:>9.4}  {:>9}",
            "weighted avg", "", "", self.weighted_f1, self.total
        );
        if let Some(sc) = &self.scope {
            let _ = writeln!(
                s,
                "\nin scope: {:.2}% right of {}, {:.2}% called {}; off-topic: {:.2}% caught of {}",
                sc.in_scope_accuracy * 100.0,
                sc.in_scope,
                sc.in_scope_called_off_topic * 100.0,
                sc.oos_label,
                sc.off_topic_recall * 100.0,
                sc.off_topic
            );
        }
        if !self.confusions.is_empty() && top > 0 {
            let _ = writeln!(s, "\nMost frequent confusions (true -> predicted):");
            for c in self.confusions.iter().take(top) {
                let _ = writeln!(s, "  {:>5}  {} -> {}", c.count, c.true_label, c.predicted);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed example:
    ///
    /// ```text
    ///            pred a  pred b  pred c
    /// true a        3       1       0     support 4
    /// true b        0       2       1     support 3
    /// true c        1       0       2     support 3
    /// ```
    /// a: P 3/4, R 3/4, F1 0.75; b: P 2/3, R 2/3, F1 2/3; c: P 2/3, R 2/3, F1 2/3.
    /// accuracy 7/10; macro F1 (0.75 + 2/3 + 2/3) / 3 = 0.69444;
    /// weighted F1 (0.75*4 + 2/3*3 + 2/3*3) / 10 = 0.7.
    /// With `c` as the off-topic label: in scope a+b = 7, right 5, called c 1; c caught 2 of 3.
    fn hand_matrix() -> ConfusionMatrix {
        let mut m = ConfusionMatrix::new(vec!["a".into(), "b".into(), "c".into()]);
        for (t, p) in [
            ("a", "a"),
            ("a", "a"),
            ("a", "a"),
            ("a", "b"),
            ("b", "b"),
            ("b", "b"),
            ("b", "c"),
            ("c", "c"),
            ("c", "c"),
            ("c", "a"),
        ] {
            m.add(t, p);
        }
        m
    }

    #[test]
    fn scope_summary_matches_the_matrix() {
        let m = hand_matrix();
        let s = m.report_with_scope("c").scope.unwrap();
        assert_eq!((s.in_scope, s.off_topic), (7, 3));
        assert!((s.in_scope_accuracy - 5.0 / 7.0).abs() < 1e-9);
        assert!((s.in_scope_called_off_topic - 1.0 / 7.0).abs() < 1e-9);
        assert!((s.off_topic_recall - 2.0 / 3.0).abs() < 1e-9);
        assert!(m.report_with_scope("zzz").scope.is_none());
    }

    #[test]
    fn metrics_match_a_hand_computed_matrix() {
        let r = hand_matrix().report();
        let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
        assert_eq!(r.total, 10);
        assert!(close(r.accuracy, 0.7));
        assert!(close(r.per_label[0].precision, 0.75));
        assert!(close(r.per_label[0].recall, 0.75));
        assert!(close(r.per_label[1].precision, 2.0 / 3.0));
        assert!(close(r.per_label[2].f1, 2.0 / 3.0));
        assert!(close(r.macro_f1, (0.75 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0));
        assert!(close(r.weighted_f1, 0.7));
        assert_eq!(r.confusions.len(), 3);
        assert!(r.confusions.iter().all(|c| c.count == 1));
        let text = r.to_text(5);
        assert!(text.contains("macro avg"));
        assert!(text.contains("a -> b"));
    }

    #[test]
    fn unseen_labels_extend_the_matrix_and_zero_divisions_are_zero() {
        let mut m = ConfusionMatrix::new(vec!["a".into()]);
        m.add("a", "z");
        let r = m.report();
        assert_eq!(m.labels, vec!["a", "z"]);
        assert_eq!(r.accuracy, 0.0);
        let z = r.per_label.iter().find(|l| l.label == "z").unwrap();
        assert_eq!((z.precision, z.recall, z.support), (0.0, 0.0, 0));
    }
}
