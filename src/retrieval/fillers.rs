//! Words that say nothing about what a customer asks: pronouns, the pieces of contractions
//! ("i'm" is "i" and "m"), chat ("honestly", "anyway", "something") and the family a
//! customer mentions ("my husband", "my son"). The word index keeps most of them (they are
//! rare in the shop's own text, so they would weigh much), and a long message is full of
//! them: "it's my husband's birthday on friday and honestly I forgot, is there any way to
//! get it faster" asks about "faster". In the share of a question a document covers
//! ([`super::words::share`]) a filler the document does not use is left out rather than
//! counted against it; one it does use still counts. In the BM25 query a filler weighs less.
//!
//! A word is a filler as written, not by its stem: "used" and "evening" are no fillers
//! although "use" and "even" would be, nor is the brand "Haven" (only "haven" before "'t"),
//! nor the size "M" (only "m" after an apostrophe). Words that carry a shop's meaning stay
//! out of the lists: "sold out", "10% off", "before dispatch", "today", "tomorrow", "right
//! size", "left with a neighbour", "a present for a friend".

use std::collections::HashSet;
use std::sync::OnceLock;

use tantivy::tokenizer::TextAnalyzer;

use super::text::analyzer;

/// English stop words of the NLTK list that the word index keeps, less those a shop's
/// questions turn on (particles such as "out", "off", "over", "under"; "before", "after",
/// "once", "same", "more", "between", "through").
const FUNCTION: &str = "myself ours ourselves yours yourself yourselves he him his himself \
    she her hers herself itself theirs themselves whom those were being having doing \
    because until while against during further here all both each other some nor only own \
    than too very should now cannot";

/// Chat: what a customer says around a question, and negations typed without their
/// apostrophe (the index drops "not" itself).
const CHAT: &str = "really quite lot lots like want wanted need needed know think wonder \
    wondering maybe perhaps thanks thank hey ok okay yes yeah sure actually honestly \
    basically anyway anyways somehow something anything everything nothing someone anyone \
    somebody anybody thing things stuff bit little getting going went let say said tell \
    ask asked see still already also even much many well kind guys possible able might \
    must shall whether rather around ago always never every came put give idea clue \
    yesterday moment dear regards cheers pls dont cant didnt doesnt isnt wont wasnt arent \
    couldnt wouldnt shouldnt havent hasnt ive thats theres wants needs knows knew thinks \
    thought wondered says tells told asks sees seen saw gives gave given puts lets likes \
    liked";

/// The family a customer mentions.
const PEOPLE: &str = "husband wife son daughter mum mom mother dad father sister brother \
    colleague colleagues boyfriend girlfriend nephew niece grandmother grandma grandfather \
    grandpa aunt uncle cousin";

/// What follows an apostrophe in a contraction ("it's", "i'm", "don't", "we'll").
const AFTER_APOSTROPHE: &[&str] = &["s", "m", "t", "d", "ll", "re", "ve"];

/// What comes before "'t" in a negation ("don't", "haven't").
const BEFORE_APOSTROPHE: &[&str] = &[
    "don", "couldn", "didn", "doesn", "hadn", "hasn", "haven", "isn", "mightn", "mustn", "needn",
    "shan", "shouldn", "wasn", "weren", "won", "wouldn", "aren", "ain",
];

fn listed(word: &str) -> bool {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            [FUNCTION, CHAT, PEOPLE]
                .iter()
                .flat_map(|l| l.split_whitespace())
                .collect()
        })
        .contains(word)
}

fn apostrophe(c: Option<char>) -> bool {
    matches!(c, Some('\'' | '\u{2019}'))
}

/// Whether the word at `text[from..to]` is a filler.
fn is_filler_at(text: &str, from: usize, to: usize) -> bool {
    let word = text[from..to].to_lowercase();
    if AFTER_APOSTROPHE.contains(&word.as_str()) {
        return apostrophe(text[..from].chars().next_back());
    }
    if BEFORE_APOSTROPHE.contains(&word.as_str()) {
        return apostrophe(text[to..].chars().next());
    }
    listed(&word)
}

/// Each word of `text` as the word index analyses it, with whether it is a filler there.
fn each_word(analyzer: &mut TextAnalyzer, text: &str, mut f: impl FnMut(&str, &str, bool)) {
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let t = stream.token();
        let (from, to) = (t.offset_from, t.offset_to);
        f(&t.text, &text[from..to], is_filler_at(text, from, to));
    }
}

/// The terms of `text` (as the word index analyses it) that stand only for fillers there: a
/// term written once as a filler and once as a word that means something is none.
/// `analyzer` is the word index's ([`analyzer`]), passed in by a search that has one.
pub fn filler_terms(analyzer: &mut TextAnalyzer, text: &str) -> HashSet<String> {
    let (mut filler, mut meant) = (HashSet::new(), HashSet::new());
    each_word(analyzer, text, |term, _, is_filler| {
        if is_filler {
            filler.insert(term.to_string());
        } else {
            meant.insert(term.to_string());
        }
    });
    filler.retain(|t| !meant.contains(t));
    filler
}

/// The fillers of `text` as written (lower case, each once), for showing.
pub fn filler_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    each_word(&mut analyzer(), text, |_, written, is_filler| {
        let w = written.to_lowercase();
        if is_filler && !out.contains(&w) {
            out.push(w);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(set: HashSet<String>) -> Vec<String> {
        let mut v: Vec<String> = set.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn a_long_message_keeps_only_what_it_asks_about() {
        let text = "it's my husband's birthday on friday and honestly I forgot, is there any \
                    way to get the parcel faster";
        assert_eq!(
            filler_words(text),
            ["s", "husband", "honestly"],
            "{:?}",
            filler_terms(&mut analyzer(), text)
        );
        assert_eq!(
            sorted(filler_terms(&mut analyzer(), text)),
            ["honest", "husband", "s"]
        );
    }

    #[test]
    fn a_word_is_a_filler_as_written_not_by_its_stem() {
        // "used" and "evening" share stems with "use" and "even"; "Haven Basics" is a brand,
        // "M" a size, "t" in "T-shirt" no contraction.
        for text in [
            "can i return used items",
            "measure your feet in the evening",
            "is the haven basics tee in size M",
            "do you have this t-shirt in s",
            "is it sold out, or 10% off today",
        ] {
            assert!(
                filler_terms(&mut analyzer(), text).is_empty(),
                "{text}: {:?}",
                filler_terms(&mut analyzer(), text)
            );
        }
        assert_eq!(
            sorted(filler_terms(
                &mut analyzer(),
                "i haven't got it, don’t know why, we're out"
            )),
            ["don", "haven", "know", "re", "t"]
        );
    }

    #[test]
    fn a_term_written_once_as_a_filler_and_once_meant_is_no_filler() {
        // "things" and "thing" are one term, a filler both times; "even" is written once as
        // a filler and once inside "evening".
        assert_eq!(
            sorted(filler_terms(&mut analyzer(), "well, things and one thing")),
            ["thing", "well"]
        );
        assert!(!filler_terms(&mut analyzer(), "even the evening").contains("even"));
    }
}
