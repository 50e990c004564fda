//! Whether the best article answers, as a logistic model of its signals fitted on labelled
//! questions (`parley kb eval --tune ... --fit-articles`), and the logistic regression that
//! fits it (and the articles' ranking weights). The hand-weighted sum it replaces
//! (score + covered + lead) weighs every question alike; a long message, which tells its
//! story before it asks, covers less of its words with any one article and leads by less,
//! and was refused when its article was found. The model learns how much each signal
//! counts, and how much the message's length excuses, from questions of every length.

use serde::{Deserialize, Serialize};

/// Log-odds per unit of margin: the model's log-odds divided by this are a margin on the
/// scale of the other kind's (products decide by the hand-weighted sum, whose margins run
/// a few tenths either side of 0), so that the two kinds' margins stay comparable when
/// both answer ([`super::Found::best`]).
pub const LOGIT_PER_MARGIN: f32 = 10.0;

/// Regularisation of the fit (the inverse of the L2 penalty on standardised weights): a
/// few hundred labelled questions carry a handful of weights; chosen by leave-one-set-out
/// cross-validation over the three dev sets (see the README).
pub const REGULARISATION: f64 = 0.1;

/// The weights of the article decision's signals; `bias` holds the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logistic {
    pub bias: f32,
    /// The ranking score ([`super::Scoring::score`]).
    pub score: f32,
    /// The document's second best view (its best when it has one vector): an article about
    /// the question matches it in two of its views, a chance match in one.
    pub second: f32,
    /// The share of the question's words the document has ([`super::Candidate::covered`]).
    pub covered: f32,
    /// The lead over the next best (negative behind the best).
    pub lead: f32,
    /// The natural log of the question's word count.
    pub length: f32,
}

/// The signals of one hit, in the order of [`Logistic`]'s weights.
pub type Signals = [f32; 5];

pub fn signals(c: &super::Candidate, score: f32, lead: f32, words: usize) -> Signals {
    [
        score,
        c.second_semantic.unwrap_or(c.semantic),
        c.covered,
        lead,
        (words.max(1) as f32).ln(),
    ]
}

impl Logistic {
    pub fn log_odds(&self, x: &Signals) -> f32 {
        self.bias
            + self.score * x[0]
            + self.second * x[1]
            + self.covered * x[2]
            + self.lead * x[3]
            + self.length * x[4]
    }

    pub fn margin(&self, x: &Signals) -> f32 {
        self.log_odds(x) / LOGIT_PER_MARGIN
    }

    /// The same weights with the threshold moved by `by` log-odds (positive: stricter).
    pub fn shifted(self, by: f32) -> Self {
        Self {
            bias: self.bias - by,
            ..self
        }
    }
}

/// Fits the model to `samples` (signals, whether the hit was the right answer); see
/// [`fit_weights`].
pub fn fit(samples: &[(Signals, bool)], regularisation: f64) -> Option<Logistic> {
    let (w, bias) = fit_weights(samples, regularisation)?;
    Some(Logistic {
        bias,
        score: w[0],
        second: w[1],
        covered: w[2],
        lead: w[3],
        length: w[4],
    })
}

/// Logistic regression of the labels on the features: the weights and the intercept, on
/// the raw features, fitted by Newton's method on the L2-penalised log-likelihood, the
/// features standardised so the penalty treats them alike, the intercept unpenalised (as
/// scikit-learn's `LogisticRegression` with `C` = `regularisation`). `None` with fewer
/// than two samples of either label.
pub fn fit_weights<const N: usize>(
    samples: &[([f32; N], bool)],
    regularisation: f64,
) -> Option<([f32; N], f32)> {
    let positives = samples.iter().filter(|s| s.1).count();
    if positives < 2 || samples.len() - positives < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mut mean = [0.0f64; N];
    for (x, _) in samples {
        for j in 0..N {
            mean[j] += x[j] as f64 / n;
        }
    }
    let mut sd = [0.0f64; N];
    for (x, _) in samples {
        for j in 0..N {
            sd[j] += (x[j] as f64 - mean[j]).powi(2) / n;
        }
    }
    // A constant signal gets weight 0 (its standardised value is 0 throughout).
    let sd = sd.map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 });
    let rows: Vec<(Vec<f64>, f64)> = samples
        .iter()
        .map(|(x, y)| {
            let mut z = vec![1.0f64; N + 1];
            for j in 0..N {
                z[j + 1] = (x[j] as f64 - mean[j]) / sd[j];
            }
            (z, if *y { 1.0 } else { 0.0 })
        })
        .collect();
    // Weight 0 is the intercept; the penalty 1/(2C) |w|^2 spares it.
    let penalty = 1.0 / regularisation;
    let mut w = vec![0.0f64; N + 1];
    for _ in 0..100 {
        let mut grad = vec![0.0f64; N + 1];
        let mut hess = vec![vec![0.0f64; N + 1]; N + 1];
        for (z, y) in &rows {
            let t: f64 = z.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-t).exp());
            for i in 0..=N {
                grad[i] += (p - y) * z[i];
                for k in 0..=N {
                    hess[i][k] += p * (1.0 - p) * z[i] * z[k];
                }
            }
        }
        for i in 1..=N {
            grad[i] += penalty * w[i];
            hess[i][i] += penalty;
        }
        let step = solve(hess, grad)?;
        let mut largest = 0.0f64;
        for i in 0..=N {
            w[i] -= step[i];
            largest = largest.max(step[i].abs());
        }
        if largest < 1e-10 {
            break;
        }
    }
    // Back to the raw signals: w_j z_j = (w_j / sd_j) x_j - w_j mean_j / sd_j.
    let raw: [f64; N] = std::array::from_fn(|j| w[j + 1] / sd[j]);
    let bias = w[0] - (0..N).map(|j| raw[j] * mean[j]).sum::<f64>();
    Some((raw.map(|v| v as f32), bias as f32))
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let m = b.len();
    for col in 0..m {
        let pivot = (col..m).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col].clone();
        for row in col + 1..m {
            let f = a[row][col] / pivot_row[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0f64; m];
    for row in (0..m).rev() {
        let rest: f64 = (row + 1..m).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twelve hits whose right ones score higher and lead by more, with some overlap so
    /// that the fit is finite.
    fn samples() -> Vec<(Signals, bool)> {
        let rows: [([f32; 5], bool); 12] = [
            ([1.10, 0.80, 0.60, 0.20, 2.0], true),
            ([1.05, 0.78, 0.50, 0.15, 1.8], true),
            ([0.95, 0.70, 0.55, 0.05, 2.5], true),
            ([1.00, 0.75, 0.40, 0.10, 3.2], true),
            ([0.90, 0.72, 0.30, 0.02, 3.4], true),
            ([0.85, 0.60, 0.45, 0.08, 1.6], false),
            ([0.80, 0.66, 0.20, 0.01, 2.2], false),
            ([0.92, 0.69, 0.35, 0.03, 1.9], false),
            ([0.75, 0.58, 0.25, 0.04, 2.8], false),
            ([0.98, 0.71, 0.20, 0.01, 1.4], false),
            ([1.02, 0.74, 0.48, 0.12, 2.1], true),
            ([0.88, 0.65, 0.50, 0.09, 3.0], false),
        ];
        rows.to_vec()
    }

    #[test]
    fn the_fit_matches_scikit_learn() {
        // sklearn.linear_model.LogisticRegression(C=0.1) on the standardised signals of
        // `samples()`, its weights divided by each signal's standard deviation and its
        // intercept moved to the raw signals.
        let m = fit(&samples(), 0.1).expect("fits");
        let expected = Logistic {
            bias: -6.6363,
            score: 2.3833,
            second: 4.4285,
            covered: 1.3631,
            lead: 2.8225,
            length: 0.2451,
        };
        for (got, want) in [
            (m.bias, expected.bias),
            (m.score, expected.score),
            (m.second, expected.second),
            (m.covered, expected.covered),
            (m.lead, expected.lead),
            (m.length, expected.length),
        ] {
            assert!((got - want).abs() < 1e-3, "{m:?} vs {expected:?}");
        }
    }

    #[test]
    fn right_answers_get_higher_odds_and_a_shift_moves_the_threshold() {
        let s = samples();
        let m = fit(&s, 1.0).expect("fits");
        let mean = |right: bool| {
            let v: Vec<f32> = s
                .iter()
                .filter(|x| x.1 == right)
                .map(|x| m.log_odds(&x.0))
                .collect();
            v.iter().sum::<f32>() / v.len() as f32
        };
        assert!(mean(true) > mean(false) + 1.0);
        let x = s[0].0;
        assert!((m.shifted(2.0).log_odds(&x) - (m.log_odds(&x) - 2.0)).abs() < 1e-5);
        assert!((m.margin(&x) * LOGIT_PER_MARGIN - m.log_odds(&x)).abs() < 1e-4);
    }

    #[test]
    fn one_label_alone_cannot_be_fitted() {
        let all_right: Vec<_> = samples().into_iter().map(|(x, _)| (x, true)).collect();
        assert_eq!(fit(&all_right, 0.1), None);
        assert_eq!(fit(&[], 0.1), None);
    }
}
