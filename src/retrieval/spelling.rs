//! Typos in a question, mended from the shop's own words before it is searched. One typo
//! ("ketle", "dryyer", "weks") costs a question its words in the word index and much of its
//! meaning to the encoder: with one typo per question (`parley kb eval --typos 7`), the
//! calibration questions answered rightly fell from 87.7% to 58.3% (products 52.8%),
//! though the right document still came first for most of them. A word is only mended when it is neither in
//! the content nor a whole word of the encoder's vocabulary (so "mind" never becomes
//! "kind"), into the most frequent content word one edit away (two for long words).

use std::collections::{HashMap, HashSet};

/// Endings and beginnings that make words of words.
const SUFFIXES: &[&str] = &[
    "s", "es", "ed", "d", "ing", "er", "ers", "est", "ly", "ment", "ments", "ness", "able", "ful",
    "less", "ist", "ists", "y",
];
const PREFIXES: &[&str] = &["re", "pre", "un", "non", "over", "under", "dis", "mis"];
/// Other contractions customers type without the apostrophe.
const APOSTROPHE_LESS: &[&str] = &[
    "youre", "theyre", "thats", "theres", "whats", "heres", "itll",
];

/// Shorter words are left alone: too many real words lie one edit from them.
const MIN_LEN: usize = 4;
/// From this length on, two edits away still counts ("accesories").
const TWO_EDITS_FROM: usize = 9;

/// The content's words, how often each occurs, and each one's single deletions, so the
/// words near a typo are found in a few lookups whatever the size of the catalogue.
/// Words of deleted documents stay until the next start (the counts only rank candidates).
#[derive(Default)]
pub struct Speller {
    counts: HashMap<String, u32>,
    /// A word with one letter taken out -> the words it comes from.
    deletions: HashMap<String, Vec<String>>,
    /// Whole words of the encoder's vocabulary: English that needs no mending.
    dictionary: HashSet<String>,
}

/// The lowercase words of a text, with where each one is.
fn spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = None;
    text.char_indices()
        .chain(std::iter::once((text.len(), ' ')))
        .filter_map(move |(i, c)| match (start, c.is_alphabetic()) {
            (None, true) => {
                start = Some(i);
                None
            }
            (Some(s), false) => {
                start = None;
                Some((s, i))
            }
            _ => None,
        })
}

fn deletions(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    (0..chars.len())
        .map(|i| {
            chars
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

impl Speller {
    /// The encoder's whole words ("return", not "##s"), which are never mended.
    pub fn set_dictionary(&mut self, words: HashSet<String>) {
        self.dictionary = words;
    }

    /// Counts a document's words. A document indexed again (a price or stock change) only
    /// adds the words not yet known, so that frequent updates do not outweigh the rest.
    pub fn add(&mut self, text: &str, new_document: bool) {
        for (s, e) in spans(text) {
            let word = text[s..e].to_lowercase();
            if word.chars().count() < MIN_LEN - 1 {
                continue;
            }
            let count = self.counts.entry(word.clone()).or_insert(0);
            if *count > 0 && !new_document {
                continue;
            }
            *count += 1;
            if *count == 1 {
                for d in deletions(&word) {
                    self.deletions.entry(d).or_default().push(word.clone());
                }
            }
        }
    }

    /// The question with its typos mended, or `None` when it has none this can mend.
    pub fn correct(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut changed = false;
        for (s, e) in spans(text) {
            if let Some(better) = self.mend(&text[s..e].to_lowercase()) {
                out.push_str(&text[last..s]);
                out.push_str(&better);
                last = e;
                changed = true;
            }
        }
        out.push_str(&text[last..]);
        changed.then_some(out)
    }

    /// A word of the dictionary, or one with a common prefix or ending on one: the
    /// encoder's vocabulary splits many real words ("mail ##ing", "mow ##ers", "shop ##per"),
    /// which are no typos of "failing", "towers" or "hopper".
    fn is_english(&self, word: &str) -> bool {
        let known = |w: &str| w.len() >= 3 && self.dictionary.contains(w);
        let stem_known = |w: &str| {
            known(w)
                || SUFFIXES.iter().any(|suffix| {
                    let Some(base) = w.strip_suffix(suffix) else {
                        return false;
                    };
                    // "saving" from "save", "shopping" from "shop"; the doubled letter is
                    // an ASCII consonant, so cutting one byte off stays on a char boundary
                    // ("tschüüs" must not be cut inside its "ü").
                    let undoubled = base
                        .chars()
                        .last()
                        .filter(|&c| {
                            c.is_ascii_lowercase()
                                && !"aeiouywx".contains(c)
                                && base.ends_with(&format!("{c}{c}"))
                        })
                        .map(|_| &base[..base.len() - 1]);
                    known(base) || known(&format!("{base}e")) || undoubled.is_some_and(known)
                })
        };
        // "dont", "cant", "didnt": a contraction typed without its apostrophe (the
        // vocabulary has "don", "can", "didn" of "don't"), never a typo of "don" or "want".
        let contraction = word
            .strip_suffix("nt")
            .is_some_and(|base| known(&format!("{base}n")) || known(base));
        stem_known(word)
            || contraction
            || APOSTROPHE_LESS.contains(&word)
            || PREFIXES
                .iter()
                .any(|prefix| word.strip_prefix(prefix).is_some_and(stem_known))
    }

    /// The words of `text` that the content uses and English does not: coined names such as
    /// "nordkap" or "roadglide", which name a product (or a product line) on their own.
    /// None without a dictionary, where every word would look coined.
    pub fn coined(&self, text: &str) -> Vec<String> {
        if self.dictionary.is_empty() {
            return Vec::new();
        }
        spans(text)
            .map(|(s, e)| text[s..e].to_lowercase())
            // "the roadglides": the content's "roadglide".
            .map(|w| match w.strip_suffix('s') {
                Some(one) if !self.counts.contains_key(&w) && self.counts.contains_key(one) => {
                    one.to_string()
                }
                _ => w,
            })
            .filter(|w| {
                w.chars().count() >= MIN_LEN
                    && w.chars().all(|c| c.is_alphabetic())
                    && self.counts.contains_key(w)
                    && !self.is_english(w)
            })
            .collect()
    }

    /// The content word a typo stands for.
    fn mend(&self, word: &str) -> Option<String> {
        let len = word.chars().count();
        if len < MIN_LEN
            || self.counts.contains_key(word)
            || self.is_english(word)
            || self.counts.is_empty()
        {
            return None;
        }
        let most = if len >= TWO_EDITS_FROM { 2 } else { 1 };
        let mut near: HashSet<&str> = HashSet::new();
        let mut look = |key: &str| {
            if let Some((k, _)) = self.counts.get_key_value(key) {
                near.insert(k);
            }
            for w in self.deletions.get(key).into_iter().flatten() {
                near.insert(w);
            }
        };
        // Deletions of the typo meet the words it lacks a letter of, or shares a deletion
        // with (a letter changed or two swapped); deletions of the content words meet a typo
        // with a letter too many.
        look(word);
        for d in deletions(word) {
            look(&d);
            if most == 2 {
                for dd in deletions(&d) {
                    look(&dd);
                }
            }
        }
        // The nearest, then the most frequent, then the first in order (deterministic).
        // Typists seldom miss the first letter: "mowers" is no typo of "towers".
        let first = word.chars().next();
        near.into_iter()
            .filter(|w| w.chars().next() == first)
            .map(|w| (strsim::osa_distance(word, w), w))
            .filter(|(d, _)| *d <= most)
            .min_by(|(da, a), (db, b)| {
                da.cmp(db)
                    .then(self.counts[*b].cmp(&self.counts[*a]))
                    .then(a.cmp(b))
            })
            .map(|(_, w)| w.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speller() -> Speller {
        let mut s = Speller::default();
        s.add(
            "Kettle Pro: a stainless steel kettle. Hair dryer with diffuser.",
            true,
        );
        s.add(
            "Returns within 30 days; accessories must be included. Delivery takes weeks.",
            true,
        );
        s.add(
            "Failing address, towers, hopper; ordered. We want it; don't.",
            true,
        );
        s.set_dictionary(
            [
                "mind", "changed", "my", "the", "mail", "mow", "shop", "order", "won", "don", "can",
            ]
            .map(String::from)
            .into(),
        );
        s
    }

    #[test]
    fn coined_words_are_the_contents_words_english_does_not_have() {
        let mut s = speller();
        s.add("Nordkap Winter Boot", true);
        // "kettle" is the content's but not in this test's tiny dictionary; "mail" is
        // English; "zorblax" is no word of the content.
        assert_eq!(
            s.coined("is the nordkap like the kettle, mail zorblax?"),
            ["nordkap", "kettle"]
        );
        assert_eq!(s.coined("do you have nordkaps"), ["nordkap"]);
        s.set_dictionary(Default::default());
        assert!(s.coined("is the nordkap warm?").is_empty());
    }

    #[test]
    fn a_typo_is_mended_from_the_content_and_nothing_else_changes() {
        let s = speller();
        assert_eq!(
            s.correct("how much is the Ketle Pro?").as_deref(),
            Some("how much is the kettle Pro?")
        );
        assert_eq!(
            s.correct("the hair dryyer broke").as_deref(),
            Some("the hair dryer broke")
        );
        assert_eq!(
            s.correct("5 weks ago, retruns?").as_deref(),
            Some("5 weeks ago, returns?")
        );
        assert_eq!(
            s.correct("are accesories included").as_deref(),
            Some("are accessories included")
        );
        // Known words, short words and words nothing in the content is near stay.
        assert_eq!(s.correct("changed my mind"), None);
        // Nor a word made of a dictionary word ("mail ##ing", "mow ##ers", "shop ##per").
        assert_eq!(s.correct("off your mailing list"), None);
        assert_eq!(s.correct("lawn mowers"), None, "not the first letter");
        assert_eq!(s.correct("a personal shopper"), None);
        assert_eq!(s.correct("my preordered item"), None);
        // Contractions without their apostrophe stay what they are.
        assert_eq!(s.correct("i wont buy it, dont"), None);
        // Letters beyond ASCII are read as letters and never cut in two.
        assert_eq!(s.correct("Danke, tschüüs"), None);
        assert_eq!(s.correct("caféés weißßer ééééé"), None);
        assert_eq!(s.correct("how much is the kettle"), None);
        assert_eq!(s.correct("wat is it"), None);
        assert_eq!(s.correct("zzzzzz qqqq"), None);
        assert_eq!(Speller::default().correct("ketle"), None);
    }

    #[test]
    fn a_document_indexed_again_adds_only_its_new_words() {
        let mut s = Speller::default();
        s.add("kettle kettle", true);
        s.add("kettle kettle boiler", false);
        assert_eq!(s.counts["kettle"], 2);
        assert_eq!(s.counts["boiler"], 1);
        assert_eq!(s.correct("boiller").as_deref(), Some("boiler"));
    }
}
