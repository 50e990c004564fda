//! What a product's record says beyond its attributes: its description.

use super::{about_service, REFERENCES, SERVICE};
use crate::dialogue::answers::{asked_attributes, stem, words};
use crate::wire::Product;

/// Words that make a question about "it" one that product answers already cover (price,
/// stock), one about an order on its way ("is it on its way?", "has it been dispatched?"),
/// or no question about the product at all ("is that right?", "can they call me back?").
#[rustfmt::skip]
const NOT_DETAILS: &[&str] = &[
    "price", "cost", "costs", "stock", "available", "availability", "here", "yet", "sell",
    "sold", "buy", "left", "now", "today", "euros", "eur", "way", "been", "come", "coming",
    "came", "courier", "collect", "store", "shop", "password", "call", "true", "right",
    "correct", "possible", "okay", "fine", "normal", "back", "wrong",
];

/// Words a question about a product is built of that name nothing about it.
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "does", "do", "did", "is", "are", "was", "can", "could", "will", "would", "has", "have",
    "had", "it", "its", "they", "them", "this", "that", "these", "those", "a", "an", "the",
    "with", "for", "in", "on", "of", "to", "and", "or", "any", "some", "me", "my", "i", "you",
    "work", "works", "use", "used", "come", "comes", "be", "get", "go", "goes", "also",
    "too", "really", "still", "good", "ok", "okay", "so", "well", "there", "what", "how",
    "if", "by", "at", "from", "as", "s", "than", "much", "very", "need", "want", "keep",
    "when", "why", "where", "who", "best", "easy", "run", "runs", "all", "one", "not",
    "off", "out", "up", "down", "nice", "just", "like", "make", "makes", "enough", "we",
    "your", "our", "am", "should", "doesn", "t", "thing", "things", "about",
];

/// Words a yes/no question may start with before "does it ...".
const LEADING: &[&str] = &[
    "and", "so", "ok", "okay", "but", "hmm", "also", "oh", "then",
];

/// "does it work with alexa?", "is it dishwasher safe?": a yes/no question about the product
/// discussed ("it" as its subject, at the start) that is not about the shop's service and
/// asks about something in particular.
pub fn asks_detail(text: &str) -> bool {
    let w = words(text);
    let start = w
        .iter()
        .position(|x| !LEADING.contains(&x.as_str()))
        .unwrap_or(w.len());
    let about_it = w.get(start..start + 2).is_some_and(|p| {
        matches!(
            p[0].as_str(),
            "does" | "is" | "can" | "will" | "has" | "do" | "are" | "would" | "could"
        ) && REFERENCES.contains(&p[1].as_str())
    });
    // "does it come in black?" asks what it is sold as; "will it come in the next days?"
    // when it arrives.
    let present = w.get(start).is_some_and(|x| x == "does" || x == "do");
    about_it
        && w.len() <= 12
        && !about_service(text)
        && !w.iter().enumerate().any(|(i, x)| {
            NOT_DETAILS.contains(&x.as_str()) && !(present && comes_in_or_with(&w, i))
        })
        && !content(&w, &[]).is_empty()
}

/// "come in black", "come with a case": what the product is made or sold with, unlike
/// "come in time".
fn comes_in_or_with(w: &[String], i: usize) -> bool {
    matches!(w[i].as_str(), "come" | "comes")
        && w.get(i + 1).is_some_and(|x| x == "in" || x == "with")
        && w.get(i + 2).is_some_and(|x| x != "time")
}

/// The words of a question that name something: not filler, not the product's name, not
/// price, stock or service words.
fn content(question: &[String], name: &[String]) -> Vec<String> {
    question
        .iter()
        .filter(|x| {
            x.len() > 1
                && !FILLER.contains(&x.as_str())
                && !NOT_DETAILS.contains(&x.as_str())
                && !SERVICE.contains(&x.as_str())
                && !name.contains(x)
        })
        .cloned()
        .collect()
}

/// The words of a question about `p` that name something beyond its name: "waterproof" of
/// "is the q7 waterproof?".
pub fn asked_words(p: &Product, question: &str) -> Vec<String> {
    content(&words(question), &words(&p.name))
}

/// For a question about a product that asks none of its attributes ("does the Kettle Pro
/// have a keep-warm function?"), the sentence of its description that answers it.
pub fn detail(p: &Product, question: &str) -> Option<String> {
    let q = words(question);
    let name = words(&p.name);
    if !asked_attributes(p, &q, &name).is_empty() {
        return None;
    }
    described(p, &content(&q, &name))
}

/// The sentence of the product's description that speaks of what was asked: the one sharing
/// most of the question's words, and all of them when it has one or two ("does it have a
/// hood?" finds "The hood has a stiffened brim"; "is it suitable for kids?" does not take
/// "not suitable for wet weather"), at least two of more.
fn described(p: &Product, asked: &[String]) -> Option<String> {
    if asked.is_empty() {
        return None;
    }
    let needed = asked.len().min(2);
    sentences(p.description.as_deref()?)
        .into_iter()
        .map(|sentence| {
            let said = words(sentence);
            let shared = asked
                .iter()
                .filter(|a| said.iter().any(|s| same_word(a, s)))
                .count();
            (shared, sentence)
        })
        .filter(|(shared, _)| *shared >= needed)
        .max_by_key(|(shared, _)| *shared)
        .map(|(_, sentence)| sentence.to_string())
}

/// One word in two forms: "laces" and "lace-up", "handle" and "handles", "washing" and "wash".
fn same_word(a: &str, b: &str) -> bool {
    stem(a) == stem(b) || a.trim_end_matches('s') == b.trim_end_matches('s')
}

/// A text's sentences: a full stop, "!" or "?" ends one where a space or the end follows
/// ("1.7-litre" is one word, "EUR 4.95" one amount).
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = matches!(c, '.' | '!' | '?')
            && chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if end {
            out.push(text[start..=i].trim());
            start = i + 1;
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::super::product;
    use super::*;

    fn described_as(description: &str) -> Product {
        let mut p = product(
            "K",
            "Kettle Pro",
            59.9,
            serde_json::json!({"capacity_l": 1.7}),
        );
        p.description = Some(description.into());
        p
    }

    #[test]
    fn details_come_from_the_description_and_other_questions_stay_away() {
        let kettle = product(
            "K",
            "Kettle Pro",
            59.9,
            serde_json::json!({"capacity_l": 1.7}),
        );
        assert!(asks_detail("does it work with alexa?"));
        assert!(asks_detail("is it dishwasher safe"));
        assert!(asks_detail("and does it have a hood?"));
        assert!(asks_detail("and does it come in black?"));
        assert!(asks_detail("do they come with a case?"));
        for no in [
            "can I return it?",
            "is it here yet?",
            "is it in stock?",
            "is it any good?",
            "how do I reset my password",
            "is it on its way?",
            "has it been dispatched?",
            "when will it come?",
            "will it come in time for christmas?",
            "will it come in the next days?",
            "is that right?",
            "can they call me back?",
            "really? is that true?",
        ] {
            assert!(!asks_detail(no), "{no}");
        }
        assert_eq!(
            detail(&kettle, "does it have a keep-warm function?").as_deref(),
            Some("1.7-litre stainless steel kettle with a keep-warm function.")
        );
        assert_eq!(detail(&kettle, "does it work with alexa?"), None);
        // An attribute asked is answered from the attribute, not the description.
        assert_eq!(detail(&kettle, "what capacity does it have"), None);
    }

    #[test]
    fn a_sentence_must_share_what_is_asked_not_one_common_word() {
        let jacket = described_as("Packable rain jacket. The hood has a stiffened brim, and taped seams keep the rain out.");
        assert!(detail(&jacket, "does it have a hood?").is_some_and(|s| s.starts_with("The hood")));
        assert_eq!(detail(&jacket, "will it keep me warm?"), None);
        let shoe = described_as("Espadrille with a jute sole; not suitable for wet weather.");
        assert_eq!(detail(&shoe, "is it suitable for kids?"), None);
        let boot = described_as("Classic lace-up boot in full-grain leather.");
        assert!(detail(&boot, "does it have laces?").is_some());
    }

    #[test]
    fn sentences_end_at_a_stop_before_a_space() {
        assert_eq!(
            sentences("A 1.7-litre kettle. Boils fast! Really?"),
            ["A 1.7-litre kettle.", "Boils fast!", "Really?"]
        );
        assert_eq!(sentences("No stop at the end"), ["No stop at the end"]);
    }
}
