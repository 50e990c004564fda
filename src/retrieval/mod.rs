//! Retrieval over the shop's own knowledge: help articles and the product catalogue, found
//! by meaning (sentence embeddings in an HNSW index) and by words (BM25, for names, SKUs and
//! rare terms), fused into one score per document that ranks them. The best only answers
//! when its score, with the share of the question its text covers and its lead over the
//! next, clears a threshold calibrated on held-out questions (see `parley kb eval`), so a
//! question nothing answers gets no article rather than the least bad one.

mod collection;
pub mod content;
pub mod decision;
pub mod eval;
mod fillers;
mod spelling;
pub mod synonyms;
mod text;
mod words;

use serde::{Deserialize, Serialize};

pub use collection::{key_of, Candidate, Collection};
pub use text::{article_doc, article_texts, product_doc, product_text, LexicalDoc};

use crate::wire::{Article, Product, SourceKind};

#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error("{what} word index: {cause}")]
    Lexical {
        what: &'static str,
        cause: tantivy::TantivyError,
    },
    #[error("{what} vector index: {cause}")]
    Vector { what: &'static str, cause: String },
    #[error("vector of {got} dimensions given to an index of {expected}")]
    Dimensions { expected: usize, got: usize },
    #[error("{what}: ids {first:?} and {second:?} hash to the same key; rename one")]
    KeyCollision {
        what: &'static str,
        first: String,
        second: String,
    },
}

impl RetrievalError {
    fn lexical(what: &'static str) -> impl Fn(tantivy::TantivyError) -> Self {
        move |cause| Self::Lexical { what, cause }
    }
    fn vector<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Self {
        move |cause| Self::Vector {
            what,
            cause: cause.to_string(),
        }
    }
}

/// How one collection's two signals become one score, and the score a hit needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// Weight of the saturated BM25 score, `bm25 / (bm25 + lexical_k)`, added to the cosine.
    pub lexical_weight: f32,
    pub lexical_k: f32,
    /// Weight of the share of the name's words in the question (products: "Kettle Pro").
    pub name_weight: f32,
    /// Weight of a document's second best vector beside its best one (articles: one view,
    /// say a sentence pair, can match a question by chance; an article about the question
    /// usually matches it in two).
    #[serde(default)]
    pub second_view_weight: f32,
    /// Weight of the share of the question's words the document has ([`Candidate::covered`])
    /// in the score that ranks (articles: fitted with `parley kb eval --fit-articles`; an
    /// article that has the question's own words, or their equivalents, is more likely the
    /// one asked about than one the encoder merely places near it).
    #[serde(default)]
    pub rank_coverage_weight: f32,
    /// Whether a hit answers is decided on its score plus `coverage_weight` times the share
    /// of the question's words its text has ([`Candidate::covered`]) plus `lead_weight` times
    /// its lead over the next best (negative for a hit behind the best): a paraphrase reuses
    /// some of the document's words or its sample questions', a question on something the
    /// shop does not describe leaves its rarest words unaccounted for. Neither of these two
    /// terms changes the ranking.
    #[serde(default)]
    pub coverage_weight: f32,
    #[serde(default)]
    pub lead_weight: f32,
    /// A hit whose decision value is below this is not used...
    pub threshold: f32,
    /// ...unless it is the best by at least `clear_lead` and within `lead_slack` of the
    /// threshold (an older rule, off in the shipped settings: `lead_weight` does its work).
    #[serde(default)]
    pub lead_slack: f32,
    #[serde(default)]
    pub clear_lead: f32,
    /// When set, whether a hit answers is decided by this logistic model of its signals
    /// instead (its bias holds the threshold; `coverage_weight`, `lead_weight` and
    /// `threshold` then only serve the older lead rule). Fitted with `parley kb eval --tune
    /// ... --fit-articles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<decision::Logistic>,
}

impl Scoring {
    pub fn score(&self, c: &Candidate) -> f32 {
        let semantic = match c.second_semantic {
            Some(second) if self.second_view_weight > 0.0 => {
                (c.semantic + self.second_view_weight * second) / (1.0 + self.second_view_weight)
            }
            _ => c.semantic,
        };
        semantic
            + self.lexical_weight * c.bm25 / (c.bm25 + self.lexical_k)
            + self.name_weight * c.name_coverage
            + self.rank_coverage_weight * c.covered
    }

    /// How far a candidate scoring `score`, `lead` ahead of the next best, for a question of
    /// `words` words, is above the threshold (negative: below).
    pub fn margin(&self, c: &Candidate, score: f32, lead: f32, words: usize) -> f32 {
        match &self.decision {
            Some(model) => model.margin(&decision::signals(c, score, lead, words)),
            None => {
                score + self.coverage_weight * c.covered + self.lead_weight * lead - self.threshold
            }
        }
    }
}

/// Calibrated with `parley kb eval --tune data/kb-eval/dev.jsonl --tune
/// data/kb-eval/dev-extra.jsonl --min-refused 96`, the articles' ranking and decision then
/// fitted with `--tune data/kb-eval/dev-long.jsonl` added and `--fit-articles` (see the
/// README).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalSettings {
    pub articles: Scoring,
    pub products: Scoring,
    /// Two products within this score of each other are both named, and the customer asked
    /// which one they mean.
    pub ambiguity_margin: f32,
}

impl Default for RetrievalSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RetrievalSettings {
    pub const DEFAULT: Self = Self {
        articles: Scoring {
            // The ranking weights and the decision: `parley kb eval --tune
            // data/kb-eval/dev.jsonl --tune data/kb-eval/dev-extra.jsonl --tune
            // data/kb-eval/dev-long.jsonl --min-refused 96 --fit-articles`. The weighted
            // sum's `coverage_weight`, `lead_weight` and `threshold` are the earlier
            // calibration's, unused while `decision` is set.
            coverage_weight: 1.0,
            lead_weight: 1.0,
            lexical_weight: 0.27524692,
            lexical_k: 16.0,
            name_weight: 0.0,
            second_view_weight: 0.7221369,
            rank_coverage_weight: 0.20172411,
            threshold: 1.57,
            lead_slack: 0.0,
            clear_lead: 1.0,
            decision: Some(decision::Logistic {
                bias: -15.099871,
                score: 5.2504034,
                second: 9.478577,
                covered: 2.3835838,
                lead: 7.4483085,
                length: 0.50984436,
            }),
        },
        products: Scoring {
            coverage_weight: 0.8,
            lead_weight: 0.0,
            lexical_weight: 0.1,
            lexical_k: 16.0,
            name_weight: 0.2,
            second_view_weight: 0.0,
            rank_coverage_weight: 0.0,
            threshold: 1.26,
            lead_slack: 0.0,
            clear_lead: 1.0,
            decision: None,
        },
        ambiguity_margin: 0.1,
    };
}

/// A document found for a question.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub kind: SourceKind,
    pub id: String,
    pub score: f32,
    /// The decision value less the collection's threshold (see [`Scoring::margin`]).
    pub margin: f32,
    /// The hit answers: its margin is not negative (or the older lead rule let it through).
    pub confident: bool,
    pub candidate: Candidate,
}

/// A confident hit less than this above its threshold was found by a weak margin: a
/// question pointing back ("do they expire?" after gift cards, which finds loyalty points
/// this way) is then searched again with the subject before it. Not calibrated: it keeps
/// what "weak" meant before the covered share counted (let through by the lead rule, whose
/// hits now get margin 0) and adds a narrow band above the threshold. For an article the
/// fitted decision answers, it is half a unit of log-odds (odds within about 1.6 of even).
pub const WEAK_MARGIN: f32 = 0.05;

impl Hit {
    pub fn weak(&self) -> bool {
        self.margin < WEAK_MARGIN
    }
}

/// How many of each kind a search returns.
pub const TOP: usize = 5;
/// How many candidates each signal contributes before fusion.
const CANDIDATES: usize = 30;

/// Both collections, with their scoring.
pub struct Retriever {
    pub articles: Collection,
    pub products: Collection,
    pub settings: RetrievalSettings,
    /// Mends a question's typos from the content's words before it is searched.
    speller: std::sync::RwLock<spelling::Speller>,
    synonyms: std::sync::Arc<synonyms::Synonyms>,
}

impl Retriever {
    pub fn new(dims: usize, settings: RetrievalSettings) -> Result<Self, RetrievalError> {
        Self::with_synonyms(dims, settings, synonyms::Synonyms::english())
    }

    /// [`Retriever::new`] with a question's words covered by `synonyms` rather than the
    /// shipped English ones.
    pub fn with_synonyms(
        dims: usize,
        settings: RetrievalSettings,
        synonyms: synonyms::Synonyms,
    ) -> Result<Self, RetrievalError> {
        let synonyms = std::sync::Arc::new(synonyms);
        let mut articles = Collection::new("articles", dims, true)?;
        let mut products = Collection::new("products", dims, false)?;
        articles.set_synonyms(synonyms.clone());
        products.set_synonyms(synonyms.clone());
        Ok(Self {
            articles,
            products,
            settings,
            speller: Default::default(),
            synonyms,
        })
    }

    /// Each phrase of `question` that has equivalents, with them (as the synonym file
    /// writes them).
    pub fn equivalents(&self, question: &str) -> Vec<(String, Vec<String>)> {
        let ids: Vec<words::WordId> = text::terms(&mut text::analyzer(), question)
            .iter()
            .map(|t| words::word_id(t))
            .collect();
        self.synonyms
            .explain(&ids)
            .into_iter()
            .map(|(p, e)| (p.to_string(), e.into_iter().map(str::to_string).collect()))
            .collect()
    }

    /// The words of `question`, as written, that are fillers ([`fillers`]): left out of the
    /// covered share of a document that does not use them.
    pub fn fillers(&self, question: &str) -> Vec<String> {
        fillers::filler_words(question)
    }

    /// The encoder's whole words, which [`Retriever::mend`] never mends.
    pub fn set_dictionary(&self, words: std::collections::HashSet<String>) {
        self.speller
            .write()
            .expect("speller lock")
            .set_dictionary(words);
    }

    /// The question to search and embed, its typos mended from the content's words
    /// ("ketle pro" -> "kettle pro"); `None` when it has none. A panic in the mending costs
    /// the message its mending, never the batch.
    pub fn mend(&self, question: &str) -> Option<String> {
        let speller = self.speller.read().expect("speller lock");
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| speller.correct(question)))
            .unwrap_or_else(|_| {
                tracing::error!("mending a question's typos panicked; searched as written");
                None
            })
    }

    fn learn(&self, doc: &LexicalDoc, new_document: bool) {
        let mut speller = self.speller.write().expect("speller lock");
        for text in [&doc.name, &doc.body, &doc.extra] {
            speller.add(text, new_document);
        }
    }

    pub fn upsert_article(&self, a: &Article, vectors: &[Vec<f32>]) -> Result<(), RetrievalError> {
        let doc = article_doc(a);
        self.learn(&doc, !self.articles.contains(&a.id));
        self.articles.upsert(&a.id, &doc, vectors)
    }

    pub fn upsert_product(&self, p: &Product, vector: &[f32]) -> Result<(), RetrievalError> {
        let doc = product_doc(p);
        self.learn(&doc, !self.products.contains(&p.sku));
        self.products
            .upsert(&p.sku, &doc, std::slice::from_ref(&vector.to_vec()))
    }

    pub fn remove(&self, kind: SourceKind, id: &str) -> Result<(), RetrievalError> {
        match kind {
            SourceKind::Article => self.articles.remove(id),
            SourceKind::Product => self.products.remove(id),
        }
    }

    pub fn commit(&self) -> Result<(), RetrievalError> {
        self.articles.commit()?;
        self.products.commit()
    }

    /// The best [`TOP`] articles and products for a question, best first.
    pub fn search(&self, text: &str, vector: Option<&[f32]>) -> Result<Found, RetrievalError> {
        let mut products = self.ranked(SourceKind::Product, text, vector)?;
        if let Some(sku) = self.products.id_in(text) {
            let s = &self.settings;
            named_by_id(&mut products, sku, s.products.threshold, s.ambiguity_margin);
        }
        let more_products = products.split_off(TOP.min(products.len()));
        let mut articles = self.ranked(SourceKind::Article, text, vector)?;
        articles.truncate(TOP);
        Ok(Found {
            articles,
            products,
            more_products,
            searched_as: None,
            with_previous: None,
        })
    }

    /// Every candidate, best first.
    fn ranked(
        &self,
        kind: SourceKind,
        text: &str,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Hit>, RetrievalError> {
        let scoring = match kind {
            SourceKind::Article => self.settings.articles,
            SourceKind::Product => self.settings.products,
        };
        Ok(rank_all(
            kind,
            self.candidates(kind, text, vector)?,
            scoring,
            words_in(text),
        ))
    }

    /// The candidates of one kind, before scoring. A product's coined name word alone
    /// ("the nordkap") names it in full; not one the help articles use, which names a brand
    /// or a kind of goods ("Ferrum" cast iron, "shampoo").
    pub fn candidates(
        &self,
        kind: SourceKind,
        text: &str,
        vector: Option<&[f32]>,
    ) -> Result<Vec<Candidate>, RetrievalError> {
        match kind {
            SourceKind::Article => self.articles.candidates(text, vector, CANDIDATES),
            SourceKind::Product => {
                let coined = self.speller.read().expect("speller lock").coined(text);
                if coined.is_empty() {
                    return self.products.candidates(text, vector, CANDIDATES);
                }
                let in_articles = self.articles.uses(&coined);
                let coined: Vec<String> = coined
                    .into_iter()
                    .zip(in_articles)
                    .filter_map(|(w, used)| (!used).then_some(w))
                    .collect();
                self.products
                    .candidates_named(text, vector, CANDIDATES, &coined)
            }
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.articles.memory_bytes() + self.products.memory_bytes()
    }
}

/// A question's length as the decision counts it: its words as written.
pub fn words_in(question: &str) -> usize {
    question.split_whitespace().count()
}

/// Scores the candidates for a question of `words` words, best first, the best [`TOP`]
/// kept. Pure, so that calibration can re-rank stored candidates under other settings.
pub fn rank(
    kind: SourceKind,
    candidates: Vec<Candidate>,
    scoring: Scoring,
    words: usize,
) -> Vec<Hit> {
    let mut hits = rank_all(kind, candidates, scoring, words);
    hits.truncate(TOP);
    hits
}

/// [`rank`] without the cut to the best [`TOP`].
fn rank_all(
    kind: SourceKind,
    candidates: Vec<Candidate>,
    scoring: Scoring,
    words: usize,
) -> Vec<Hit> {
    let mut hits: Vec<Hit> = candidates
        .into_iter()
        .map(|c| Hit {
            kind,
            id: c.id.clone(),
            score: scoring.score(&c),
            margin: 0.0,
            confident: false,
            candidate: c,
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    // The best leads the second; every other one trails the best. A lone candidate leads
    // nothing.
    let first = hits.first().map_or(0.0, |h| h.score);
    let second = hits.get(1).map_or(first, |h| h.score);
    for (i, h) in hits.iter_mut().enumerate() {
        let lead = if i == 0 {
            first - second
        } else {
            h.score - first
        };
        h.margin = scoring.margin(&h.candidate, h.score, lead, words);
        h.confident = h.margin >= 0.0;
    }
    // The older lead rule (off in the shipped settings: `lead_slack` 0). It needs a
    // runner-up to lead: a lone candidate gets no benefit of doubt.
    if hits.len() > 1
        && first >= scoring.threshold - scoring.lead_slack
        && first - second >= scoring.clear_lead
    {
        hits[0].confident = true;
        hits[0].margin = hits[0].margin.max(0.0);
    }
    // A hit below one that does not answer does not answer either: its own words may cover
    // more of the question, but the ranking says the question is about the one above it,
    // and callers take the confident hits in order, as a prefix of the ranking.
    let mut open = true;
    for h in &mut hits {
        open &= h.confident;
        h.confident = open;
    }
    hits
}

/// How far a product named by its SKU clears the threshold, and the best other product by
/// more than the ambiguity margin (so no "which one?"); an article still answers when it
/// clears its own threshold by more ("can I return NW-KT-0001?" may be about returns).
const NAMED_BY_ID_MARGIN: f32 = 0.1;

/// A product whose SKU the question writes out is the one meant, whatever the signals say:
/// the word index splits "NW-KT-0001" into parts most SKUs share, and an SKU means nothing
/// to the encoder.
fn named_by_id(hits: &mut Vec<Hit>, sku: String, threshold: f32, margin: f32) {
    let clear = hits.first().map_or(0.0, |h| h.margin.max(0.0)) + margin + NAMED_BY_ID_MARGIN;
    let found = hits
        .iter()
        .position(|h| h.id == sku)
        .map(|i| hits.remove(i));
    let candidate = found.map(|h| h.candidate).unwrap_or(Candidate {
        id: sku.clone(),
        semantic: 0.0,
        second_semantic: None,
        bm25: 0.0,
        name_coverage: 1.0,
        covered: 1.0,
    });
    let best = hits.first().map_or(f32::MIN, |h| h.score);
    hits.insert(
        0,
        Hit {
            kind: SourceKind::Product,
            id: sku,
            score: threshold.max(best) + margin + NAMED_BY_ID_MARGIN,
            margin: clear,
            confident: true,
            candidate,
        },
    );
}

/// What a search found, best first in each kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub articles: Vec<Hit>,
    pub products: Vec<Hit>,
    /// The products ranked after the best [`TOP`]: a kind of thing ("waterproof hiking
    /// boots", "the cheapest tent") is looked for among all the candidates, since products of
    /// other kinds can rank above every one of it.
    pub more_products: Vec<Hit>,
    /// The message as searched, when its typos were mended ("is it waterprof?" as "is it
    /// waterproof?"), for the dialogue to read it the same way.
    pub searched_as: Option<String>,
    /// For a short question that leans on the subject before it ("and for teachers?", "what
    /// about switzerland?", "can it go in the oven?") and found nothing of its own, or points
    /// back: what the customer's last message on the subject and this one find together.
    pub with_previous: Option<Box<Found>>,
}

impl Found {
    /// The one document to answer with: the confident hit that clears its own threshold by
    /// more (the two kinds' scores are on different scales; their margins are comparable).
    pub fn best(&self) -> Option<&Hit> {
        let article = self.article().map(|h| (h, h.margin));
        let product = self
            .products
            .first()
            .filter(|h| h.confident)
            .map(|h| (h, h.margin));
        match (article, product) {
            (Some(a), Some(p)) => Some(if p.1 > a.1 { p.0 } else { a.0 }),
            (a, p) => a.or(p).map(|(h, _)| h),
        }
    }

    /// The article to answer with, if one clears its threshold.
    pub fn article(&self) -> Option<&Hit> {
        self.articles.first().filter(|h| h.confident)
    }

    /// The best product, when it clears its threshold, and those within `margin` of it:
    /// one means "this one", two or more may mean "which one?". A runner-up need not clear
    /// the threshold itself: that the customer means a product is settled by the best, and
    /// a near tie is a near tie ("the brewmaster kettle": the Kettle Pro just above the
    /// threshold, the Kettle Pro Mini just below).
    pub fn products(&self, margin: f32) -> Vec<&Hit> {
        let Some(best) = self.products.first().filter(|h| h.confident) else {
            return Vec::new();
        };
        self.products
            .iter()
            .take_while(|h| best.score - h.score <= margin)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(semantic: f32, second: Option<f32>) -> Candidate {
        Candidate {
            id: "a".into(),
            semantic,
            second_semantic: second,
            bm25: 0.0,
            name_coverage: 0.0,
            covered: 0.0,
        }
    }

    #[test]
    fn a_product_named_by_its_sku_is_the_confident_best() {
        let hit = |id: &str, score: f32| Hit {
            kind: SourceKind::Product,
            id: id.into(),
            score,
            margin: score - 0.9,
            confident: score >= 0.9,
            candidate: Candidate {
                id: id.into(),
                ..candidate(score, None)
            },
        };
        let mut hits = vec![hit("A", 0.95), hit("B", 0.6)];
        named_by_id(&mut hits, "B".into(), 0.9, 0.1);
        assert_eq!(hits[0].id, "B");
        assert!(hits[0].confident && hits[0].score - hits[1].score > 0.1);
        assert_eq!(hits.len(), 2);
        // Not among the candidates at all: still the one meant.
        let mut hits = vec![hit("A", 0.5)];
        named_by_id(&mut hits, "C".into(), 0.9, 0.1);
        assert_eq!(hits[0].id, "C");
        assert!(hits[0].confident);
        let found = Found {
            products: hits,
            ..Found::default()
        };
        assert_eq!(found.products(0.1).len(), 1);
    }

    #[test]
    fn the_share_of_the_question_covered_and_the_lead_decide_but_do_not_rank() {
        let s = Scoring {
            coverage_weight: 0.5,
            lead_weight: 1.0,
            lexical_weight: 0.0,
            name_weight: 0.0,
            second_view_weight: 0.0,
            threshold: 1.0,
            lead_slack: 0.0,
            clear_lead: 1.0,
            decision: None,
            rank_coverage_weight: 0.0,
            ..RetrievalSettings::DEFAULT.articles
        };
        let with = |id: &str, semantic: f32, covered: f32| Candidate {
            id: id.into(),
            covered,
            ..candidate(semantic, None)
        };
        // Best by score, but half its words unaccounted for and barely ahead: no answer.
        let hits = rank(
            SourceKind::Article,
            vec![with("a", 0.80, 0.2), with("b", 0.78, 0.9)],
            s,
            8,
        );
        assert_eq!(hits[0].id, "a");
        assert!((hits[0].margin - (0.80 + 0.1 + 0.02 - 1.0)).abs() < 1e-5);
        assert!(!hits[0].confident);
        // The one behind it trails by its gap.
        assert!((hits[1].margin - (0.78 + 0.45 - 0.02 - 1.0)).abs() < 1e-5);
        // Its margin clears the threshold, but the question is about the one above it.
        assert!(!hits[1].confident);
        assert_eq!(
            Found {
                articles: hits,
                ..Found::default()
            }
            .best(),
            None
        );
        // The same score, the question's words in the article and well ahead: it answers.
        let hits = rank(
            SourceKind::Article,
            vec![with("a", 0.80, 0.6), with("b", 0.6, 0.9)],
            s,
            8,
        );
        assert!(hits[0].confident && !hits[0].weak());
        // A lone candidate leads nothing.
        let hits = rank(SourceKind::Article, vec![with("a", 0.80, 0.4)], s, 8);
        assert!(hits[0].confident && hits[0].weak());
    }

    #[test]
    fn a_fitted_decision_replaces_the_weighted_sum_and_weighs_the_length() {
        let model = decision::Logistic {
            bias: -11.5,
            score: 4.0,
            second: 8.0,
            covered: 4.0,
            lead: 8.0,
            length: 0.5,
        };
        let s = Scoring {
            lexical_weight: 0.0,
            second_view_weight: 0.0,
            rank_coverage_weight: 0.0,
            decision: Some(model),
            ..RetrievalSettings::DEFAULT.articles
        };
        let with = |id: &str, semantic: f32, second: f32, covered: f32| Candidate {
            id: id.into(),
            covered,
            ..candidate(semantic, Some(second))
        };
        let ranked = |words| {
            rank(
                SourceKind::Article,
                vec![with("a", 0.80, 0.70, 0.3), with("b", 0.75, 0.60, 0.6)],
                s,
                words,
            )
        };
        // Ranked by the score alone (the decision never reorders), margin in log-odds / 10:
        // -11.5 + 4 * 0.8 + 8 * 0.7 + 4 * 0.3 + 8 * 0.05 + 0.5 * ln(words).
        let short = ranked(6);
        assert_eq!(short[0].id, "a");
        let odds = -11.5 + 3.2 + 5.6 + 1.2 + 0.4;
        let expected = (odds + 0.5 * 6f32.ln()) / decision::LOGIT_PER_MARGIN;
        assert!((short[0].margin - expected).abs() < 1e-5, "{short:?}");
        assert!(!short[0].confident);
        // The same signals in a message that tells its story first: it answers.
        let long = ranked(40);
        assert!(long[0].confident, "{long:?}");
        // The weighted sum's threshold no longer decides.
        assert!(s.score(&long[0].candidate) < s.threshold);
    }

    #[test]
    fn a_second_matching_view_counts_beside_the_best() {
        let s = Scoring {
            second_view_weight: 0.5,
            ..RetrievalSettings::DEFAULT.articles
        };
        // One view matching by chance scores below two views matching.
        let lucky = s.score(&candidate(0.8, Some(0.2)));
        let steady = s.score(&candidate(0.7, Some(0.65)));
        assert!((lucky - 0.6).abs() < 1e-6, "{lucky}");
        assert!(steady > lucky);
        // A document with one vector is scored by it alone, as is any without the weight.
        assert_eq!(s.score(&candidate(0.8, None)), 0.8);
        let plain = Scoring {
            second_view_weight: 0.0,
            ..s
        };
        assert_eq!(plain.score(&candidate(0.8, Some(0.2))), 0.8);
    }

    #[test]
    fn a_coined_name_word_names_a_product_unless_articles_or_a_whole_range_use_it() {
        let r = Retriever::new(4, RetrievalSettings::DEFAULT).unwrap();
        r.set_dictionary(
            ["boot", "winter", "pan", "warranty"]
                .map(String::from)
                .into(),
        );
        let product = |sku: &str, name: &str| -> Product {
            serde_json::from_value(serde_json::json!({
                "sku": sku, "name": name, "description": "Warm and sturdy.",
                "price": {"amount": 10.0, "currency": "EUR"}, "stock": 1}))
            .unwrap()
        };
        let v = [1.0, 0.0, 0.0, 0.0];
        r.upsert_product(&product("B-1", "Nordkap Winter Boot"), &v)
            .unwrap();
        r.upsert_product(&product("P-1", "Ferrum Pan"), &v).unwrap();
        for i in 0..4 {
            r.upsert_product(&product(&format!("S-{i}"), &format!("Zolto {i} Boot")), &v)
                .unwrap();
        }
        let article: Article = serde_json::from_value(serde_json::json!({
            "id": "warranty", "title": "Warranty",
            "body": "5 years on Ferrum cast iron.", "url": "https://help.example/w"}))
        .unwrap();
        r.upsert_article(&article, &[v.to_vec()]).unwrap();
        r.commit().unwrap();
        let coverage = |q: &str, id: &str| {
            r.candidates(SourceKind::Product, q, None)
                .unwrap()
                .into_iter()
                .find(|c| c.id == id)
                .map(|c| c.name_coverage)
                .unwrap()
        };
        assert_eq!(coverage("how much is the nordkap", "B-1"), 1.0);
        // An article speaks of Ferrum: a brand, not one product's name.
        assert!(coverage("ferrum warranty", "P-1") < 1.0);
        // Four products share "zolto": a range, not a product line.
        assert!(coverage("do you have zolto", "S-0") < 1.0);
    }
}
