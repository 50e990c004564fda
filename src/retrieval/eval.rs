//! The retrieval evaluation: questions with the article or product that answers them (or
//! none), run against a set of articles and products. Reports top-1 accuracy on the
//! answerable questions, recall@3, and how many unanswerable ones get no answer; `tune`
//! calibrates the scoring on a separate set.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{rank, Candidate, Found, RetrievalSettings, Retriever, Scoring};
use crate::wire::SourceKind;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// One evaluation question.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub text: String,
    /// What answers it; `None` for a question nothing should answer.
    pub expect: Option<(SourceKind, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: String,
    expect: Option<String>,
}

/// The question with one typo, as customers type: in one word of five letters or more, a
/// letter past the first dropped, doubled or swapped with the next, chosen by `seed` and the
/// text (the same every run). Unchanged when it has no such word.
pub fn with_typo(text: &str, seed: u64) -> String {
    // FNV-1a over the seed and the text, then xorshift for each choice.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(text.as_bytes()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut next = |n: usize| {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        (h % n as u64) as usize
    };
    // A word's letters, without the punctuation after it ("headphones?").
    let core = |w: &str| w.trim_end_matches(|c: char| c.is_ascii_punctuation()).len();
    let words: Vec<&str> = text.split(' ').collect();
    let long: Vec<usize> = (0..words.len())
        .filter(|&i| {
            let letters = &words[i][..core(words[i])];
            letters.len() >= 5 && letters.chars().all(|c| c.is_ascii_alphabetic())
        })
        .collect();
    if long.is_empty() {
        return text.to_string();
    }
    let i = long[next(long.len())];
    let (w, after) = words[i].split_at(core(words[i]));
    let w = w.as_bytes();
    let j = 1 + next(w.len() - 2);
    // Swapping two equal letters ("kettle") would change nothing: one is dropped instead.
    let typo: Vec<u8> = match next(3) {
        0 if w[j] != w[j + 1] => [&w[..j], &[w[j + 1], w[j]], &w[j + 2..]].concat(),
        0 | 1 => [&w[..j], &w[j + 1..]].concat(),
        _ => [&w[..=j], &w[j..]].concat(),
    };
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    out[i] = String::from_utf8(typo).expect("ASCII letters") + after;
    out.join(" ")
}

/// Reads a JSON Lines file of `{"text", "expect": "article:ID" | "product:SKU" | null}`.
pub fn load_questions(path: &Path) -> Result<Vec<Question>, EvalError> {
    let err = |message: String| EvalError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let l: Line =
            serde_json::from_str(line).map_err(|e| err(format!("line {}: {e}", n + 1)))?;
        let expect = match l.expect.as_deref() {
            None => None,
            Some(e) => Some(match e.split_once(':') {
                Some(("article", id)) => (SourceKind::Article, id.to_string()),
                Some(("product", sku)) => (SourceKind::Product, sku.to_string()),
                _ => {
                    return Err(err(format!(
                    "line {}: expect must be \"article:ID\", \"product:SKU\" or null, got {e:?}",
                    n + 1
                )))
                }
            }),
        };
        out.push(Question {
            text: l.text,
            expect,
        });
    }
    Ok(out)
}

/// A question's candidates from both collections, scored by neither setting yet.
#[derive(Debug, Clone)]
pub struct Probe {
    pub question: Question,
    pub articles: Vec<Candidate>,
    pub products: Vec<Candidate>,
}

impl Probe {
    pub fn found(&self, s: &RetrievalSettings) -> Found {
        let words = super::words_in(&self.question.text);
        Found {
            articles: rank(
                SourceKind::Article,
                self.articles.clone(),
                s.articles,
                words,
            ),
            products: rank(
                SourceKind::Product,
                self.products.clone(),
                s.products,
                words,
            ),
            more_products: Vec::new(),
            searched_as: None,
            with_previous: None,
        }
    }
}

/// Gathers each question's candidates: `searched[i]` is question `i` as searched, its typos
/// mended ([`Retriever::mend`]), and `vectors[i]` its embedding.
pub fn probe(
    retriever: &Retriever,
    questions: &[Question],
    searched: &[String],
    vectors: &[Vec<f32>],
) -> Result<Vec<Probe>, super::RetrievalError> {
    questions
        .iter()
        .zip(searched)
        .zip(vectors)
        .map(|((q, text), v)| {
            Ok(Probe {
                question: q.clone(),
                articles: retriever.candidates(SourceKind::Article, text, Some(v))?,
                products: retriever.candidates(SourceKind::Product, text, Some(v))?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub answerable: usize,
    pub top1: usize,
    pub recall3: usize,
    /// Answerable questions whose document ranks first of its kind (thresholds aside).
    pub ranked_first: usize,
    pub unanswerable: usize,
    /// Unanswerable questions that got no answer.
    pub rejected: usize,
    pub article_questions: usize,
    pub article_top1: usize,
    pub product_questions: usize,
    pub product_top1: usize,
    /// Answerable questions answered with the wrong document (worse than no answer).
    pub wrong: usize,
    pub misses: Vec<String>,
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

impl Report {
    pub fn top1_pct(&self) -> f64 {
        pct(self.top1, self.answerable)
    }
    pub fn recall3_pct(&self) -> f64 {
        pct(self.recall3, self.answerable)
    }
    pub fn rejected_pct(&self) -> f64 {
        pct(self.rejected, self.unanswerable)
    }
    pub fn summary(&self) -> String {
        format!(
            "top-1 correct {}/{} = {:.1}% (articles {}/{} = {:.1}%, products {}/{} = {:.1}%; \
             wrong answers {}), ranked first {:.1}%, recall@3 {:.1}%, unanswerable with no answer {}/{} = {:.1}%",
            self.top1,
            self.answerable,
            self.top1_pct(),
            self.article_top1,
            self.article_questions,
            pct(self.article_top1, self.article_questions),
            self.product_top1,
            self.product_questions,
            pct(self.product_top1, self.product_questions),
            self.wrong,
            pct(self.ranked_first, self.answerable),
            self.recall3_pct(),
            self.rejected,
            self.unanswerable,
            self.rejected_pct()
        )
    }
}

/// The best scores of each kind, for reading a miss.
fn scores(found: &Found) -> String {
    let top = |hits: &[super::Hit]| {
        hits.iter()
            .take(2)
            .map(|h| {
                format!(
                    "{}={:.3}(sem {:.3} bm25 {:.1})",
                    h.id, h.score, h.candidate.semantic, h.candidate.bm25
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "[a: {}] [p: {}]",
        top(&found.articles),
        top(&found.products)
    )
}

pub fn evaluate(probes: &[Probe], s: &RetrievalSettings) -> Report {
    let mut r = Report::default();
    for p in probes {
        let found = p.found(s);
        let best = found.best().map(|h| (h.kind, h.id.as_str()));
        match &p.question.expect {
            None => {
                r.unanswerable += 1;
                if best.is_none() {
                    r.rejected += 1;
                } else {
                    r.misses
                        .push(format!("unanswerable {:?} got {:?}", p.question.text, best));
                }
            }
            Some((kind, id)) => {
                r.answerable += 1;
                let right = best == Some((*kind, id.as_str()));
                match kind {
                    SourceKind::Article => {
                        r.article_questions += 1;
                        r.article_top1 += right as usize;
                    }
                    SourceKind::Product => {
                        r.product_questions += 1;
                        r.product_top1 += right as usize;
                    }
                }
                let list = match kind {
                    SourceKind::Article => &found.articles,
                    SourceKind::Product => &found.products,
                };
                if list.first().is_some_and(|h| &h.id == id) {
                    r.ranked_first += 1;
                }
                if list.iter().take(3).any(|h| &h.id == id) {
                    r.recall3 += 1;
                }
                if right {
                    r.top1 += 1;
                } else {
                    if best.is_some() {
                        r.wrong += 1;
                    }
                    r.misses.push(format!(
                        "{:?} wants {kind:?} {id}, got {:?} {}",
                        p.question.text,
                        best,
                        scores(&found)
                    ));
                }
            }
        }
    }
    r
}

/// What calibration maximises: right answers less half the wrong ones (a wrong answer costs
/// more than none: the customer is misled), plus the refused unanswerable questions, or,
/// with `min_refused` (a percentage), right answers among settings that refuse at least
/// that share.
fn objective(probes: &[Probe], s: &RetrievalSettings, min_refused: Option<f64>) -> f64 {
    let r = evaluate(probes, s);
    let misled = 0.5 * pct(r.wrong, r.answerable);
    match min_refused {
        // Below every qualifying value (at most 100 + 100), ranked by how far they got.
        Some(floor) if r.rejected_pct() < floor => -1000.0 + r.rejected_pct(),
        Some(_) => r.top1_pct() - misled,
        None => r.top1_pct() + r.rejected_pct() - misled,
    }
}

/// Fits how articles rank and decide on `probes` (a calibration set, never the test set),
/// keeping `base`'s products: first the ranking ([`fit_ranking`]), then, on that ranking,
/// the decision ([`super::decision`]). For the decision, the best article of each article
/// or unanswerable question is a sample, right when it is the expected article (product
/// questions are left out: whether an article answers them is settled against the
/// product's margin); the model's threshold is then moved, in steps of 0.1 log-odds, to
/// where [`objective`] is best. `None` when the questions have too few right or wrong
/// articles to fit.
pub fn fit_articles(
    probes: &[Probe],
    base: RetrievalSettings,
    min_refused: Option<f64>,
) -> Option<RetrievalSettings> {
    let base = RetrievalSettings {
        articles: fit_ranking(probes, base.articles)?,
        ..base
    };
    let samples: Vec<(super::decision::Signals, bool)> = probes
        .iter()
        .filter(|p| matches!(p.question.expect, None | Some((SourceKind::Article, _))))
        .filter_map(|p| {
            let words = super::words_in(&p.question.text);
            let hits = rank(
                SourceKind::Article,
                p.articles.clone(),
                base.articles,
                words,
            );
            let best = hits.first()?;
            let lead = best.score - hits.get(1).map_or(best.score, |h| h.score);
            let right = matches!(&p.question.expect, Some((_, id)) if *id == best.id);
            Some((
                super::decision::signals(&best.candidate, best.score, lead, words),
                right,
            ))
        })
        .collect();
    let model = super::decision::fit(&samples, super::decision::REGULARISATION)?;
    let with = |shift: f32| {
        let mut s = base;
        s.articles.decision = Some(model.shifted(shift));
        s
    };
    let mut best = (f64::MIN, with(0.0));
    for step in -30..=100 {
        let s = with(step as f32 / 10.0);
        let v = objective(probes, &s, min_refused);
        if v > best.0 {
            best = (v, s);
        }
    }
    Some(best.1)
}

/// The articles' ranking weights, fitted on `probes`: every article candidate of an
/// article question is a sample, right when it is the expected one, its features the
/// score's terms (best view, second view, saturated BM25 with `scoring.lexical_k`, covered
/// share); the fitted weights, divided by the two views' together, become
/// `second_view_weight`, `lexical_weight` and `rank_coverage_weight` (the name's share
/// stays off for articles). `None` when too few questions to fit, or when the fit does not
/// rank by meaning (a best view weighed at 0 or less).
fn fit_ranking(probes: &[Probe], scoring: Scoring) -> Option<Scoring> {
    let k = scoring.lexical_k;
    let samples: Vec<([f32; 4], bool)> = probes
        .iter()
        .filter_map(|p| match &p.question.expect {
            Some((SourceKind::Article, id)) => Some((p, id)),
            _ => None,
        })
        .flat_map(|(p, id)| {
            p.articles.iter().map(move |c| {
                (
                    [
                        c.semantic,
                        c.second_semantic.unwrap_or(c.semantic),
                        c.bm25 / (c.bm25 + k),
                        c.covered,
                    ],
                    c.id == *id,
                )
            })
        })
        .collect();
    let (w, _) = super::decision::fit_weights(&samples, super::decision::REGULARISATION)?;
    if w[0] <= 0.0 || w[1] < 0.0 {
        return None;
    }
    let views = w[0] + w[1];
    Some(Scoring {
        second_view_weight: w[1] / w[0],
        lexical_weight: w[2] / views,
        rank_coverage_weight: w[3] / views,
        name_weight: 0.0,
        ..scoring
    })
}

/// The weights and product thresholds `tune` tries.
const LEXICAL_WEIGHTS: [f32; 5] = [0.0, 0.1, 0.2, 0.3, 0.45];
const LEXICAL_KS: [f32; 3] = [4.0, 8.0, 16.0];
const NAME_WEIGHTS: [f32; 4] = [0.0, 0.2, 0.45, 0.7];

const COVERAGE_WEIGHTS: [f32; 9] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0];
const LEAD_WEIGHTS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

fn product_thresholds() -> impl Iterator<Item = f32> {
    (40..=130).step_by(5).map(|t| t as f32 / 100.0)
}

/// Searches the scoring on `probes` (a calibration set, never the test set) in three
/// steps, each keeping the best so far: the ranking weights (shared by both kinds) with both
/// thresholds; the products' own ranking weights and threshold; then, for each kind in
/// turn, twice, the decision's coverage and lead weights with the threshold. The older lead
/// rule is left off. By default a right answer and a refused unanswerable question count
/// alike.
/// `base` gives what is not searched: the second-view weight and the ambiguity margin.
/// With `min_refused` (a percentage), only settings that give no answer to at least that
/// share of the unanswerable questions count, and among them the most right answers win:
/// a shop that would rather say "I don't know" than risk a wrong article says how much
/// rather; until one qualifies, the search moves towards the most refused.
pub fn tune(
    probes: &[Probe],
    base: RetrievalSettings,
    min_refused: Option<f64>,
) -> RetrievalSettings {
    let objective = |s: &RetrievalSettings| objective(probes, s, min_refused);
    let mut best = (f64::MIN, base);
    let keep = |best: &mut (f64, RetrievalSettings), s: RetrievalSettings| {
        let v = objective(&s);
        if v > best.0 {
            *best = (v, s);
        }
    };
    // The second-view weight is kept: the default was chosen by cross-validation over both
    // dev sets, which a set of a few dozen questions cannot repeat (tuned on one, it swings
    // between 0 and 0.5).
    for lw in LEXICAL_WEIGHTS {
        for lk in LEXICAL_KS {
            for nw in NAME_WEIGHTS {
                let weights = |t: f32| Scoring {
                    coverage_weight: 0.0,
                    lead_weight: 0.0,
                    lexical_weight: lw,
                    lexical_k: lk,
                    name_weight: nw,
                    second_view_weight: 0.0,
                    rank_coverage_weight: 0.0,
                    threshold: t,
                    lead_slack: 0.0,
                    clear_lead: 1.0,
                    decision: None,
                };
                for at in (30..=110).step_by(2).map(|t| t as f32 / 100.0) {
                    for pt in product_thresholds() {
                        let s = RetrievalSettings {
                            articles: Scoring {
                                name_weight: 0.0,
                                second_view_weight: base.articles.second_view_weight,
                                rank_coverage_weight: base.articles.rank_coverage_weight,
                                ..weights(at)
                            },
                            products: weights(pt),
                            ambiguity_margin: base.ambiguity_margin,
                        };
                        keep(&mut best, s);
                    }
                }
            }
        }
    }
    // Products on their own: their weights need not be the articles' (a name matters more
    // than the wording), and the first step tied the two.
    let weighted = best.1;
    for lw in LEXICAL_WEIGHTS {
        for lk in LEXICAL_KS {
            for nw in NAME_WEIGHTS {
                for pt in product_thresholds() {
                    let mut s = weighted;
                    s.products.lexical_weight = lw;
                    s.products.lexical_k = lk;
                    s.products.name_weight = nw;
                    s.products.threshold = pt;
                    keep(&mut best, s);
                }
            }
        }
    }
    // Then how each kind decides: how much the share of the question's words a document has
    // and its lead over the next count beside its score, with the threshold that goes with
    // them; the two kinds in turn, twice, since one kind's answers take questions from the
    // other's.
    for _ in 0..2 {
        for kind in [SourceKind::Article, SourceKind::Product] {
            let weighted = best.1;
            let current = match kind {
                SourceKind::Article => weighted.articles,
                SourceKind::Product => weighted.products,
            };
            for cw in COVERAGE_WEIGHTS {
                for lw in LEAD_WEIGHTS {
                    for t in (-30..=60).map(|d| current.threshold + d as f32 / 100.0) {
                        let mut s = weighted;
                        let scoring = match kind {
                            SourceKind::Article => &mut s.articles,
                            SourceKind::Product => &mut s.products,
                        };
                        scoring.coverage_weight = cw;
                        scoring.lead_weight = lw;
                        scoring.threshold = t;
                        keep(&mut best, s);
                    }
                }
            }
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A question whose one article candidate scores `semantic` (no word or name signal).
    fn probe(expect: Option<&str>, semantic: f32) -> Probe {
        Probe {
            question: Question {
                text: format!("question at {semantic}"),
                expect: expect.map(|id| (SourceKind::Article, id.to_string())),
            },
            articles: vec![Candidate {
                id: expect.unwrap_or("other").to_string(),
                semantic,
                second_semantic: None,
                bm25: 0.0,
                name_coverage: 0.0,
                covered: 0.0,
            }],
            products: Vec::new(),
        }
    }

    #[test]
    fn a_typo_changes_one_long_word_by_one_edit_the_same_every_run() {
        let q = "can i return opened headphones?";
        let t = with_typo(q, 7);
        assert_eq!(t, with_typo(q, 7));
        let changed: Vec<(&str, &str)> = q
            .split(' ')
            .zip(t.split(' '))
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{t}");
        let (a, b) = changed[0];
        assert!(
            a.len() >= 5 && strsim::osa_distance(a, b) == 1,
            "{a} -> {b}"
        );
        assert_eq!(with_typo("is it ok", 7), "is it ok");
    }

    #[test]
    fn a_refusal_floor_trades_right_answers_for_refused_ones() {
        let probes = [
            probe(Some("a"), 0.62),
            probe(Some("b"), 0.68),
            probe(Some("c"), 0.72),
            probe(Some("d"), 0.78),
            probe(None, 0.74),
            probe(None, 0.50),
        ];
        let base = RetrievalSettings::DEFAULT;
        // Counted alike, answering all four and refusing one of two beats refusing both.
        let free = evaluate(&probes, &tune(&probes, base, None));
        assert_eq!((free.top1, free.rejected), (4, 1));
        // With every unanswerable one to be refused, only the answer scoring above them stays.
        let strict = evaluate(&probes, &tune(&probes, base, Some(100.0)));
        assert_eq!((strict.top1, strict.rejected, strict.wrong), (1, 2, 0));
        // The floor comes first: met only by answering nothing, nothing is answered.
        let hard = [probe(Some("a"), 0.7), probe(None, 0.8)];
        let refused = evaluate(&hard, &tune(&hard, base, Some(100.0)));
        assert_eq!((refused.top1, refused.rejected), (0, 1));
        assert_eq!(evaluate(&hard, &tune(&hard, base, None)).top1, 1);
    }

    #[test]
    fn a_fitted_decision_answers_long_messages_the_weighted_sum_must_refuse() {
        // `probe` with a question of `words` words whose best article is `found`.
        let asked = |expect: Option<&str>, found: &str, semantic: f32, words: usize| {
            let mut p = probe(expect, semantic);
            p.question.text = vec!["word"; words].join(" ");
            p.articles[0].id = found.to_string();
            p
        };
        // Long messages find their article less closely than short ones, and closer than
        // unanswerable short ones come to any article; a long one whose best is wrong
        // scores lowest.
        let once = [
            asked(Some("a"), "a", 0.80, 4),
            asked(Some("b"), "b", 0.78, 4),
            asked(Some("c"), "c", 0.70, 30),
            asked(Some("d"), "d", 0.68, 30),
            asked(None, "e", 0.72, 4),
            asked(None, "f", 0.70, 4),
            asked(Some("g"), "h", 0.55, 30),
        ];
        let probes: Vec<Probe> = (0..3).flat_map(|_| once.iter().cloned()).collect();
        let mut base = RetrievalSettings::DEFAULT;
        base.articles.decision = None;
        // Weighing the score alone, every unanswerable one refused leaves the short ones.
        let summed = evaluate(&probes, &tune(&probes, base, Some(100.0)));
        assert_eq!((summed.top1, summed.rejected), (6, 6));
        let fitted = fit_articles(&probes, base, Some(100.0)).expect("fits");
        assert!(fitted.articles.decision.is_some_and(|m| m.length > 0.0));
        let r = evaluate(&probes, &fitted);
        assert_eq!((r.top1, r.rejected, r.wrong), (12, 6, 0), "{r:?}");
        // Products are left as they were.
        assert_eq!(fitted.products, base.products);
        // Too few wrong answers to learn from.
        assert_eq!(fit_articles(&once[..4], base, None), None);
    }

    #[test]
    fn the_fitted_ranking_puts_first_the_article_with_the_questions_words() {
        // Half the questions find their article nearest, both candidates having as many of
        // their words; in the other half the article has the question's words (covered 0.6)
        // but is placed a little less near than another that has few of them (covered 0.1).
        let question = |i: usize| {
            let right = format!("right-{i}");
            let near = 0.70 + 0.01 * i as f32;
            let (mine, theirs) = if i.is_multiple_of(2) {
                ((near + 0.05, 0.3), (near, 0.3))
            } else {
                ((near - 0.01, 0.6), (near, 0.1))
            };
            let candidate = |id: &str, (semantic, covered): (f32, f32)| Candidate {
                covered,
                ..probe(Some(id), semantic).articles[0].clone()
            };
            Probe {
                question: Question {
                    text: format!("question {i}"),
                    expect: Some((SourceKind::Article, right.clone())),
                },
                articles: vec![candidate(&right, mine), candidate("other", theirs)],
                products: Vec::new(),
            }
        };
        let probes: Vec<Probe> = (0..8).map(question).collect();
        let mut base = RetrievalSettings::DEFAULT;
        base.articles.rank_coverage_weight = 0.0;
        assert_eq!(evaluate(&probes, &base).ranked_first, 4);
        let fitted = fit_ranking(&probes, base.articles).expect("fits");
        assert!(fitted.rank_coverage_weight > 0.0, "{fitted:?}");
        base.articles = fitted;
        assert_eq!(evaluate(&probes, &base).ranked_first, 8);
        // Nothing learnt from questions that are all about products.
        let products: Vec<Probe> = probes
            .iter()
            .cloned()
            .map(|mut p| {
                p.question.expect = Some((SourceKind::Product, "x".into()));
                p
            })
            .collect();
        assert_eq!(fit_ranking(&products, base.articles), None);
    }
}
