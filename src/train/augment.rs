//! Training-time text noise, so the model learns the way customers really type: lower case,
//! no punctuation, typos, dropped words and fragments.

use rand::rngs::StdRng;
use rand::Rng;

/// With probability `p`, returns a perturbed copy of `text`; otherwise `text` unchanged.
pub fn augment(text: &str, p: f64, rng: &mut StdRng) -> String {
    if p <= 0.0 || !rng.gen_bool(p.min(1.0)) {
        return text.to_string();
    }
    match rng.gen_range(0..5) {
        0 => casual(text),
        1 => typo(text, rng),
        2 => drop_word(text, rng),
        3 => fragment(text, rng),
        _ => typo(&casual(text), rng),
    }
}

/// Lower case without trailing punctuation: "Where is my order?" -> "where is my order".
fn casual(text: &str) -> String {
    text.to_lowercase()
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_string()
}

/// One keyboard slip in a word of four letters or more: swap, drop or double a letter.
fn typo(text: &str, rng: &mut StdRng) -> String {
    let mut words: Vec<String> = text.split_whitespace().map(String::from).collect();
    let candidates: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .collect();
    if candidates.is_empty() {
        return text.to_string();
    }
    let wi = candidates[rng.gen_range(0..candidates.len())];
    let mut chars: Vec<char> = words[wi].chars().collect();
    let i = rng.gen_range(1..chars.len() - 1);
    match rng.gen_range(0..3) {
        0 => chars.swap(i, i + 1),
        1 => {
            chars.remove(i);
        }
        _ => chars.insert(i, chars[i]),
    }
    words[wi] = chars.into_iter().collect();
    words.join(" ")
}

/// Drops one word from a message of four words or more.
fn drop_word(text: &str, rng: &mut StdRng) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 4 {
        return text.to_string();
    }
    words.remove(rng.gen_range(0..words.len()));
    words.join(" ")
}

/// Keeps the end of a longer message, where the request usually is ("... cancel my order").
fn fragment(text: &str, rng: &mut StdRng) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 5 {
        return casual(text);
    }
    let start = rng.gen_range(1..=(words.len() - 3).min(3));
    words[start..].join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn augment_is_seeded_and_keeps_most_of_the_text() {
        let text = "I would like to cancel my order 12345 please";
        let mut a = StdRng::seed_from_u64(1);
        let mut b = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let x = augment(text, 1.0, &mut a);
            assert_eq!(x, augment(text, 1.0, &mut b));
            assert!(!x.is_empty());
            assert!(x.len() + 20 >= text.len(), "{x}");
        }
        assert_eq!(augment(text, 0.0, &mut a), text);
    }

    #[test]
    fn casual_strips_case_and_trailing_punctuation() {
        assert_eq!(casual("Where is my order?!"), "where is my order");
    }
}
