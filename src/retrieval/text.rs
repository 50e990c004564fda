//! What of an article or product is searched, and how text becomes search terms.

use serde_json::Value;
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

use crate::wire::{Article, Product};

/// The analyzer of every searched field and of queries: words, lower case, English stop
/// words out, stemmed ("returns", "returned" -> "return").
pub const ANALYZER: &str = "parley_en";

/// Words too common in customer questions to tell documents apart.
const STOP_WORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
    "could", "did", "do", "does", "for", "from", "get", "got", "had", "has", "have", "hi", "hello",
    "how", "i", "if", "im", "in", "into", "is", "it", "its", "just", "me", "my", "no", "not", "of",
    "on", "or", "our", "please", "so", "such", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "u", "us", "was", "we", "what", "whats", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your",
];

pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The terms of `text` as the index sees them.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// `text` followed by each pair of neighbouring words written together, so that a name
/// written as one word or two ("Trailrunner" / "trail runner") matches either way.
pub fn with_joins(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut out = text.to_string();
    for pair in words.windows(2) {
        out.push(' ');
        out.push_str(&pair[0]);
        out.push_str(&pair[1]);
    }
    out
}

/// The searched fields of one document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LexicalDoc {
    /// Title or product name (with [`with_joins`] applied when indexed).
    pub name: String,
    /// Answer text or description.
    pub body: String,
    /// Everything else worth a match: sample questions, tags, brand, category, SKU, attributes.
    pub extra: String,
    /// The name a question may give in full (a product's name without its brand).
    pub short_name: String,
}

pub fn article_doc(a: &Article) -> LexicalDoc {
    let mut extra = a.questions.join("\n");
    for t in &a.tags {
        extra.push('\n');
        extra.push_str(t);
    }
    LexicalDoc {
        name: a.title.clone(),
        body: a.body.clone(),
        extra,
        short_name: a.title.clone(),
    }
}

pub fn product_doc(p: &Product) -> LexicalDoc {
    let mut name = p.name.clone();
    if let Some(b) = &p.brand {
        name = format!("{b} {name}");
    }
    let mut extra = vec![p.sku.clone()];
    extra.extend(p.category.clone());
    for (key, value) in &p.attributes {
        let words = attribute_words(value);
        // A `true` flag ("waterproof": true) is the key itself; a `false` one says nothing
        // a search should match on.
        if !matches!(value, Value::Bool(false)) {
            extra.push(key.replace('_', " "));
        }
        if !words.is_empty() {
            extra.push(words);
        }
    }
    LexicalDoc {
        name,
        body: p.description.clone().unwrap_or_default(),
        extra: extra.join("\n"),
        short_name: p.name.clone(),
    }
}

fn attribute_words(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items
            .iter()
            .map(attribute_words)
            .collect::<Vec<_>>()
            .join(" "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k} {}", attribute_words(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Bool(_) | Value::Null => String::new(),
    }
}

/// How many characters of an answer go into its embeddings: the opening of an article
/// says what it is about.
const OPENING_CHARS: usize = 400;

/// The texts embedded for an article, one vector each: its title, its title with the
/// opening of its answer, each sample question, and each pair of neighbouring sentences of
/// the answer (a customer often asks about one detail: "can you send it to my packstation"),
/// at most [`MAX_VECTORS`] in all.
pub fn article_texts(a: &Article) -> Vec<String> {
    let opening: String = a.body.chars().take(OPENING_CHARS).collect();
    let mut out = vec![a.title.clone(), format!("{}. {opening}", a.title)];
    out.extend(a.questions.iter().filter(|q| !q.trim().is_empty()).cloned());
    let sentences = sentences(&a.body);
    if sentences.len() > 2 {
        for pair in sentences.windows(2).take(MAX_PASSAGES) {
            out.push(format!("{} {}", pair[0], pair[1]));
        }
    }
    out.truncate(MAX_VECTORS);
    out
}

/// The most vectors one document has: enough for a long article with dozens of sample
/// questions, and a bound on the work of scoring one candidate.
pub const MAX_VECTORS: usize = 64;

/// At most this many passages of one article are embedded.
const MAX_PASSAGES: usize = 24;

fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let boundary = matches!(c, '.' | '!' | '?' | '\n')
            && bytes.get(end).is_none_or(|b| b.is_ascii_whitespace());
        if boundary {
            let s = text[start..end].trim();
            if s.len() > 1 {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The text embedded for a product: what it is, by whom, of which kind.
pub fn product_text(p: &Product) -> String {
    let mut s = p.name.clone();
    if let Some(b) = &p.brand {
        s = format!("{s} by {b}");
    }
    if let Some(c) = &p.category {
        s = format!("{s} ({c})");
    }
    if let Some(d) = &p.description {
        let opening: String = d.chars().take(OPENING_CHARS / 2).collect();
        s = format!("{s}. {opening}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_let_one_word_match_two() {
        let mut a = analyzer();
        let doc = terms(&mut a, &with_joins("Trailrunner 2"));
        let query = terms(&mut a, &with_joins("the trail runner shoes"));
        assert!(doc.iter().any(|t| query.contains(t)), "{doc:?} {query:?}");
    }

    #[test]
    fn stop_words_go_and_words_are_stemmed() {
        let mut a = analyzer();
        assert_eq!(
            terms(&mut a, "Can I return the Headphones?"),
            ["return", "headphon"]
        );
    }
}
