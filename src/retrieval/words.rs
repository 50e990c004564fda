//! How much of a question a document's own text accounts for: the share of the question's
//! words (as the index analyses them) that the document uses, each weighted by how rare it
//! is in the collection. A paraphrase of what an article covers reuses some of its words or
//! its sample questions' ("send back", "refund"); a question on something the shop does not
//! describe ("is there parking at the hamburg store") leaves its rarest word unaccounted for,
//! however close the encoder places it. This helps decide whether the best document
//! answers, and with a small weight ranks articles (see `Scoring::rank_coverage_weight`).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A word as a 32-bit hash: a document keeps its words in a few bytes each, and two words
/// sharing a hash only blur the share a little.
pub type WordId = u32;

pub fn word_id(term: &str) -> WordId {
    let mut h = DefaultHasher::new();
    term.hash(&mut h);
    h.finish() as WordId
}

/// A document's distinct words, sorted for lookup.
pub fn word_set<'a>(terms: impl IntoIterator<Item = &'a String>) -> Vec<WordId> {
    let mut ids: Vec<WordId> = terms.into_iter().map(|t| word_id(t)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.shrink_to_fit();
    ids
}

/// In how many documents of a collection each word occurs.
#[derive(Debug, Default)]
pub struct DocFrequencies {
    counts: HashMap<WordId, u32>,
}

impl DocFrequencies {
    pub fn add(&mut self, words: &[WordId]) {
        for w in words {
            *self.counts.entry(*w).or_default() += 1;
        }
    }

    pub fn remove(&mut self, words: &[WordId]) {
        for w in words {
            if let Some(n) = self.counts.get_mut(w) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(w);
                }
            }
        }
    }

    /// Bytes held, roughly: a word and its count, and the table's spare room.
    pub fn memory_bytes(&self) -> usize {
        self.counts.capacity() * (std::mem::size_of::<(WordId, u32)>() + 1)
    }

    /// Each question word's weight among `documents` documents: rarer words weigh more, and
    /// a word no document uses weighs most.
    pub fn weights(&self, question: &[WordId], documents: usize) -> Vec<(WordId, f32)> {
        let n = documents as f32;
        question
            .iter()
            .map(|w| {
                let df = self.counts.get(w).copied().unwrap_or(0) as f32;
                (*w, (1.0 + n / (1.0 + df)).ln())
            })
            .collect()
    }
}

/// The weighted share of the question's words that `document` (a [`word_set`]) has, 0..1;
/// 0 for a question with no searchable word. A word the document does not use counts when
/// it has every word of one of the word's `equivalents` (see [`super::synonyms`]); one of
/// the question's `fillers` ([`super::fillers`]) it does not use is left out of the share,
/// unless the question is all fillers ("ok thanks so much"): then every word counts, as it
/// would otherwise be covered by any document that uses one of them.
pub fn share(
    weights: &[(WordId, f32)],
    equivalents: &HashMap<WordId, Vec<&[WordId]>>,
    fillers: &HashSet<WordId>,
    document: &[WordId],
) -> f32 {
    let none = HashSet::new();
    let fillers = if weights.iter().all(|(id, _)| fillers.contains(id)) {
        &none
    } else {
        fillers
    };
    let has = |id: &WordId| document.binary_search(id).is_ok();
    let (mut had, mut total) = (0.0f32, 0.0f32);
    for (id, w) in weights {
        let covered = has(id)
            || equivalents
                .get(id)
                .is_some_and(|alts| alts.iter().any(|phrase| phrase.iter().all(has)));
        if covered {
            had += w;
        }
        if covered || !fillers.contains(id) {
            total += w;
        }
    }
    if total <= 0.0 {
        return 0.0;
    }
    had / total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> Vec<WordId> {
        let owned: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        word_set(&owned)
    }

    #[test]
    fn a_rare_word_left_out_costs_more_than_a_common_one() {
        let stores = set(&["store", "hamburg", "open", "hour"]);
        let returns = set(&["return", "store", "refund"]);
        let other = set(&["store", "deliveri"]);
        let mut df = DocFrequencies::default();
        for d in [&stores, &returns, &other] {
            df.add(d);
        }
        let none = HashMap::new();
        let no_fillers = HashSet::new();
        let question = set(&["park", "hamburg", "store"]);
        let w = df.weights(&question, 3);
        let s = share(&w, &none, &no_fillers, &stores);
        // "store" is in every document, "park" in none: "park" weighs most of the three.
        assert!(s > 0.4 && s < 0.6, "{s}");
        let common_left_out = share(&w, &none, &no_fillers, &set(&["park", "hamburg"]));
        assert!(common_left_out > 0.75, "{common_left_out}");
        let asked = set(&["hamburg", "store", "open"]);
        assert!(share(&df.weights(&asked, 3), &none, &no_fillers, &stores) > 0.99);
        assert_eq!(share(&df.weights(&[], 3), &none, &no_fillers, &stores), 0.0);
    }

    #[test]
    fn a_removed_document_no_longer_counts() {
        let a = set(&["gift", "card"]);
        let mut df = DocFrequencies::default();
        df.add(&a);
        df.add(&a);
        df.remove(&a);
        let w = df.weights(&set(&["gift"]), 1);
        assert!((w[0].1 - (1.0f32 + 1.0 / 2.0).ln()).abs() < 1e-6);
        df.remove(&a);
        assert!(df.counts.is_empty());
    }

    #[test]
    fn a_filler_counts_where_the_document_uses_it_and_is_left_out_elsewhere() {
        let doc = set(&["express", "deliveri", "tomorrow"]);
        let mut df = DocFrequencies::default();
        df.add(&doc);
        df.add(&set(&["return"]));
        let none = HashMap::new();
        let question = set(&["husband", "faster", "deliveri", "tomorrow"]);
        let w = df.weights(&question, 2);
        let fillers: HashSet<WordId> = set(&["husband", "tomorrow"]).into_iter().collect();
        let with = share(&w, &none, &fillers, &doc);
        let without = share(&w, &none, &HashSet::new(), &doc);
        assert!(with > without, "{with} {without}");
        // "husband" is left out, "tomorrow" (used) counts: delivery and tomorrow of
        // faster, delivery and tomorrow.
        let weight = |word: &str| w.iter().find(|(id, _)| *id == word_id(word)).unwrap().1;
        let expected = (weight("deliveri") + weight("tomorrow"))
            / (weight("faster") + weight("deliveri") + weight("tomorrow"));
        assert!((with - expected).abs() < 1e-6, "{with} {expected}");
        // A question of fillers only counts them all: one the document uses does not make
        // it covered.
        let idle = df.weights(&set(&["husband"]), 2);
        assert_eq!(share(&idle, &none, &fillers, &doc), 0.0);
        let chat = df.weights(&set(&["husband", "tomorrow"]), 2);
        let half = share(&chat, &none, &fillers, &doc);
        assert!(half > 0.3 && half < 0.7, "{half}");
    }
}
