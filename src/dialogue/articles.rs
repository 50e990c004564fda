//! A follow-up on the article just quoted ("and on sundays?" after the stores' opening
//! hours): what the article says on it, in its own sentences, or that it says nothing on it.
//! Never the same answer again, and never words the article does not have.

use super::answers::{stem, MAX_ANSWER_CHARS};
use super::shopping::sentences;
use crate::knowledge::Vars;
use crate::wire::Article;

/// Words of a follow-up that say nothing of what is asked about ("and for the teachers?").
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "a", "an", "the", "for", "in", "on", "at", "to", "of", "with", "about", "by", "from", "my",
    "your", "our", "it", "its", "is", "are", "do", "does", "you", "i", "me", "we", "us", "there",
    "any", "also", "too", "then", "that", "this", "those", "these", "same", "what", "how",
    "when", "where", "which", "who", "can", "could", "please", "pls", "one", "ones", "if", "or",
    "and", "as", "well", "get", "have", "has", "will", "would", "should", "be", "am", "was",
    "need", "want", "know", "tell", "still", "just", "so", "s", "t", "not", "dont", "don",
    "many", "much", "they", "them", "their", "m", "im", "ll", "ve", "re", "d", "did", "why",
    "go", "goes", "going", "got", "put",
];

/// The words asked about, without the filler ("teachers" of "and for teachers?").
pub(super) fn subject_words(follow_up: &[String]) -> Vec<String> {
    follow_up
        .iter()
        .filter(|w| !FILLER.contains(&w.as_str()))
        .cloned()
        .collect()
}

/// The article's sentences that mention the most of the words asked about, in the article's
/// order and to chat size; `None` when no sentence mentions any.
pub(super) fn sentences_on(article: &Article, asked: &[String]) -> Option<String> {
    sentences_sharing(article, asked, 1)
}

/// [`sentences_on`], of sentences that mention at least `least` of the words asked about.
fn sentences_sharing(article: &Article, asked: &[String], least: usize) -> Option<String> {
    let asked: Vec<String> = asked.iter().map(|w| stem(w)).collect();
    let scored: Vec<(&str, usize)> = sentences(&article.body)
        .into_iter()
        .map(|s| {
            let words: Vec<String> = super::answers::words(s).iter().map(|w| stem(w)).collect();
            (s, asked.iter().filter(|a| words.contains(a)).count())
        })
        .collect();
    let best = scored
        .iter()
        .map(|(_, n)| *n)
        .max()
        .filter(|n| *n >= least.max(1))?;
    let mut text = String::new();
    for (s, _) in scored.iter().filter(|(_, n)| *n == best) {
        if !text.is_empty() && text.chars().count() + s.chars().count() > MAX_ANSWER_CHARS {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(s);
    }
    // One "sentence" may be a whole list without a full stop: cut to chat size too.
    if text.chars().count() > MAX_ANSWER_CHARS {
        let cut: String = text.chars().take(MAX_ANSWER_CHARS).collect();
        text = format!("{}...", cut.trim_end());
    }
    text.push_str(&more(article));
    Some(text)
}

/// A question on one thing the article just quoted says ("do points expire?" after the
/// loyalty programme): the sentences that mention two of its words (or its one word), when
/// they are fewer than the whole answer and not the reply just given. One word of several
/// is not enough: "where do I print the label?" is not answered by a sentence on the label's
/// cost.
pub(super) fn narrowed(
    article: &Article,
    question: &str,
    last_reply: Option<&str>,
) -> Option<String> {
    let asked = subject_words(&super::answers::words(question));
    let whole = super::answers::article_answer(article).0;
    sentences_sharing(article, &asked, asked.len().min(2))
        .filter(|s| s.chars().count() < whole.chars().count())
        .filter(|s| Some(s.as_str()) != last_reply)
}

/// The question shares a word with the article (its title, body or sample questions), filler
/// aside: "what if I'm not home?" and the article on missed deliveries ("If you're not home,
/// ..."), not "can you help me with something else?" and the article on shipping.
pub(super) fn speaks_to(article: &Article, question: &str) -> bool {
    let asked: Vec<String> = subject_words(&super::answers::words(question))
        .iter()
        .map(|w| stem(w))
        .collect();
    let mut text = format!("{} {}", article.title, article.body);
    for q in &article.questions {
        text.push(' ');
        text.push_str(q);
    }
    super::answers::words(&text)
        .iter()
        .any(|w| asked.contains(&stem(w)))
}

/// The placeholders of `article_detail_unknown`.
pub(super) fn unknown_vars(article: &Article, asked: &[String]) -> Vars {
    let page = article
        .url
        .clone()
        .unwrap_or_else(|| "our help pages".to_string());
    Vars::from([
        ("article.title", article.title.clone()),
        ("article.page", page),
        ("asked", asked.join(" ")),
    ])
}

/// Where the rest of an article is: its title and link.
pub(super) fn more(a: &Article) -> String {
    match &a.url {
        Some(url) => format!(" (More: \"{}\", {url})", a.title),
        None => format!(" (From our help article \"{}\".)", a.title),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article() -> Article {
        serde_json::from_value(serde_json::json!({
            "id": "store-locations-hours", "title": "Our stores",
            "body": "Hamburg: Spitalerstrasse 12. Both stores are open Monday to Saturday from \
                     10:00 to 20:00 and closed on Sundays and public holidays. Parking costs \
                     EUR 2.50 an hour!",
            "url": "https://example.com/stores"
        }))
        .unwrap()
    }

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_question_on_the_article_just_quoted_needs_two_of_its_words_in_a_sentence() {
        let a = article();
        let whole = crate::dialogue::answers::article_answer(&a).0;
        assert!(narrowed(&a, "how much does parking cost?", Some(&whole))
            .unwrap()
            .starts_with("Parking costs EUR 2.50"));
        assert!(narrowed(&a, "when are the stores open on sundays?", None)
            .unwrap()
            .starts_with("Both stores are open"));
        // One of two words: not enough.
        assert_eq!(
            narrowed(&a, "where do i print the parking ticket?", None),
            None
        );
        // The reply just given is not given again.
        let parking = narrowed(&a, "how much does parking cost?", None).unwrap();
        assert_eq!(
            narrowed(&a, "how much does parking cost?", Some(&parking)),
            None
        );
    }

    #[test]
    fn a_follow_up_gets_the_sentences_on_what_it_asks() {
        let a = article();
        let asked = subject_words(&words("opening hours on sunday"));
        assert_eq!(asked, ["opening", "hours", "sunday"]);
        assert_eq!(
            sentences_on(&a, &asked).unwrap(),
            "Both stores are open Monday to Saturday from 10:00 to 20:00 and closed on Sundays \
             and public holidays. (More: \"Our stores\", https://example.com/stores)"
        );
        // A price inside a sentence does not end it.
        assert!(sentences_on(&a, &subject_words(&words("parking")))
            .unwrap()
            .starts_with("Parking costs EUR 2.50 an hour!"));
        // Nothing on it: said so by the caller, not a sentence that happens to be there.
        assert_eq!(
            sentences_on(&a, &subject_words(&words("for the teachers"))),
            None
        );
        assert_eq!(
            unknown_vars(&a, &["teachers".to_string()])
                .get("asked")
                .map(String::as_str),
            Some("teachers")
        );
        // A list without a full stop is still cut to chat size.
        let long = Article {
            body: format!("Stores: {}", "Hamburg, Berlin, ".repeat(100)),
            ..article()
        };
        let text = sentences_on(&long, &subject_words(&words("hamburg"))).unwrap();
        assert!(text.chars().count() < MAX_ANSWER_CHARS + 60, "{text}");
        assert!(text.contains("...") && text.ends_with("https://example.com/stores)"));
    }
}
