//! A fast path for BERT's WordPiece tokenizer on printable-ASCII text, giving exactly the
//! ids the Hugging Face tokenizer gives.
//!
//! Why: with a small model, tokenising is most of a batch's model time (`parley bench` shows
//! it); the library's general pipeline tracks character alignments through normalisation
//! and looks up Unicode tables for every character, none of which matters for the chat
//! messages most shops see. Anything else (a character outside printable ASCII, the text of
//! an added token such as `[CLS]`, a tokenizer that is not BERT's pipeline) goes to the
//! library, and at load time the fast path must agree with the library on a set of probes
//! or it is not used at all.

use std::collections::HashMap;

use tokenizers::Tokenizer;

use super::tokenize::TextTokens;

/// The tokenizer settings the fast path reproduces.
pub(crate) struct AsciiWordPiece {
    vocab: HashMap<String, u32>,
    lowercase: bool,
    unk: u32,
    prefix: String,
    max_word_chars: usize,
    /// Ids (and segment ids) the post-processor puts before and after the text's.
    before: Vec<(u32, u32)>,
    after: Vec<(u32, u32)>,
    /// Most word pieces kept (the truncation length less the special tokens).
    max_pieces: usize,
    /// Added tokens' texts: a text holding one is split on it by the library first.
    added: Vec<String>,
}

/// Texts the fast path must tokenise exactly as the library does before it is used.
const PROBES: &[&str] = &[
    "",
    "   ",
    "a",
    "Hello, World!",
    "where is my order #12345? it's been 3 weeks...",
    "I can't log-in to my account (again) :-(",
    "refund pls!!! $49.99 charged twice @ checkout",
    "e-mail: someone@example.com / phone 555-0100",
    "UNAFFABLE unaffable Unaffable",
    "##ing [x] {y} <z> ~`^_|\\\"'",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    "xzqv bbbbbbbbq 0x1F 3.14159 1,000,000",
];

impl AsciiWordPiece {
    /// The fast path for `tokenizer` (already set to truncate at `max_len`), or why not.
    pub(crate) fn new(tokenizer: &Tokenizer, max_len: usize) -> Result<Self, String> {
        let json = serde_json::to_value(tokenizer)
            .map_err(|e| format!("cannot read the tokenizer's settings: {e}"))?;
        let kind = |part: &str| json[part]["type"].as_str().unwrap_or("none").to_string();
        if kind("normalizer") != "BertNormalizer" {
            return Err(format!("normalizer {}", kind("normalizer")));
        }
        if kind("pre_tokenizer") != "BertPreTokenizer" {
            return Err(format!("pre-tokenizer {}", kind("pre_tokenizer")));
        }
        let model = &json["model"];
        if kind("model") != "WordPiece" {
            return Err(format!("model {}", kind("model")));
        }
        let vocab = tokenizer.get_vocab(false);
        let unk_token = model["unk_token"].as_str().unwrap_or("[UNK]");
        let unk = *vocab
            .get(unk_token)
            .ok_or_else(|| format!("unknown token {unk_token} not in the vocabulary"))?;
        // The special tokens around a text: where "a" lands among its ids.
        let probe = tokenizer
            .encode("a", true)
            .map_err(|e| format!("tokenizing a probe: {e}"))?;
        let a = vocab.get("a").ok_or("no \"a\" in the vocabulary")?;
        let at = probe
            .get_ids()
            .iter()
            .position(|id| id == a)
            .ok_or("cannot place the special tokens")?;
        let pairs: Vec<(u32, u32)> = probe
            .get_ids()
            .iter()
            .copied()
            .zip(probe.get_type_ids().iter().copied())
            .collect();
        let special = pairs.len() - 1;
        let fast = Self {
            lowercase: json["normalizer"]["lowercase"].as_bool().unwrap_or(false),
            unk,
            prefix: model["continuing_subword_prefix"]
                .as_str()
                .unwrap_or("##")
                .to_string(),
            max_word_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
            before: pairs[..at].to_vec(),
            after: pairs[at + 1..].to_vec(),
            max_pieces: max_len.saturating_sub(special),
            added: tokenizer
                .get_added_tokens_decoder()
                .values()
                .map(|t| t.content.clone())
                .filter(|c| !c.is_empty())
                .collect(),
            vocab,
        };
        // Truncation at max_len, too: the longest probe repeated past it.
        let long = PROBES.join(" ").repeat(1 + max_len / 20);
        for text in PROBES.iter().copied().chain([long.as_str()]) {
            let want = tokenizer
                .encode(text, true)
                .map_err(|e| format!("tokenizing a probe: {e}"))?;
            let want = (want.get_ids().to_vec(), want.get_type_ids().to_vec());
            if fast.tokens(text).as_ref() != Some(&want) {
                return Err(format!("it disagrees with the tokenizer on {text:?}"));
            }
        }
        Ok(fast)
    }

    /// `text`'s ids and segment ids, or `None` when the library must do it.
    pub(crate) fn tokens(&self, text: &str) -> Option<TextTokens> {
        // Printable ASCII only: the library's normalisation changes nothing else then
        // (control characters, other spaces, accents and CJK all need it).
        if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return None;
        }
        // An added token is split out before everything else (matched on the text as it
        // is, or as normalised, depending on the token).
        let lowered;
        let normalized = if self.lowercase {
            lowered = text.to_ascii_lowercase();
            lowered.as_str()
        } else {
            text
        };
        if self
            .added
            .iter()
            .any(|t| text.contains(t.as_str()) || normalized.contains(t.as_str()))
        {
            return None;
        }
        let text = normalized;
        let mut ids: Vec<u32> = self.before.iter().map(|p| p.0).collect();
        // Truncated as the library truncates: the text's pieces, within the special tokens.
        let limit = ids.len() + self.max_pieces;
        let mut key = String::with_capacity(32);
        for word in words(text) {
            if ids.len() >= limit {
                break;
            }
            self.word_pieces(word, &mut key, &mut ids);
        }
        ids.truncate(limit);
        let mut types: Vec<u32> = self.before.iter().map(|p| p.1).collect();
        types.resize(ids.len(), 0);
        ids.extend(self.after.iter().map(|p| p.0));
        types.extend(self.after.iter().map(|p| p.1));
        Some((ids, types))
    }

    /// Appends `word`'s pieces to `out`, greedy longest-match-first as WordPiece does: the
    /// word is one unknown token if any part of it matches nothing, or if it is too long.
    fn word_pieces(&self, word: &str, key: &mut String, out: &mut Vec<u32>) {
        if word.len() > self.max_word_chars {
            out.push(self.unk);
            return;
        }
        let first = out.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let found = loop {
                key.clear();
                if start > 0 {
                    key.push_str(&self.prefix);
                }
                key.push_str(&word[start..end]);
                if let Some(id) = self.vocab.get(key.as_str()) {
                    break Some(*id);
                }
                end -= 1;
                if end == start {
                    break None;
                }
            };
            match found {
                Some(id) => out.push(id),
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
            start = end;
        }
    }
}

/// BERT's pre-tokenisation on printable ASCII: split on spaces, and every punctuation
/// character is a word of its own. Borrowed slices only: this runs for every message.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ')
        .flat_map(|chunk| chunk.split_inclusive(|c: char| c.is_ascii_punctuation()))
        .flat_map(|piece| {
            // Each piece is a run of word characters, then at most one punctuation mark.
            let cut = match piece.as_bytes().last() {
                Some(b) if b.is_ascii_punctuation() => piece.len() - 1,
                _ => piece.len(),
            };
            let (word, mark) = piece.split_at(cut);
            [word, mark].into_iter().filter(|w| !w.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_spaces_and_punctuation() {
        let got: Vec<&str> = words("it's  $4.99, ok?!").collect();
        assert_eq!(
            got,
            ["it", "'", "s", "$", "4", ".", "99", ",", "ok", "?", "!"]
        );
        assert_eq!(words("").count(), 0);
        assert_eq!(words("   ").count(), 0);
    }
}
