//! Training-time text noise, so the model learns the way customers really type: lower case,
//! no punctuation, typos, dropped words and fragments.

use rand::rngs::StdRng;
use rand::Rng;

/// Generic product phrases in the training data, and concrete ones customers actually write.
/// Swapping them keeps the model from treating a real product name as a sign of an
/// off-topic message.
const GENERIC_PRODUCTS: &[&str] = &[
    "some of your products",
    "some of your product",
    "several items",
    "some articles",
    "some products",
    "some items",
    "an article",
    "a product",
    "an item",
];
const PRODUCTS: &[&str] = &[
    "the running shoes",
    "a coffee machine",
    "the blue jacket in size m",
    "two t-shirts",
    "the wireless headphones",
    "a phone case",
    "the 55 inch tv",
    "a kids bike",
    "the leather boots",
    "a yoga mat",
    "the standing desk",
    "some vitamins",
];

/// With probability `p`, returns a perturbed copy of `text`; otherwise `text` unchanged.
/// With probability `product_swap`, a generic product phrase ("an item") in a perturbed text
/// becomes a concrete product instead.
pub fn augment(text: &str, p: f64, product_swap: f64, rng: &mut StdRng) -> String {
    if p <= 0.0 || !rng.gen_bool(p.min(1.0)) {
        return text.to_string();
    }
    if product_swap > 0.0 {
        if let Some(swapped) = concrete_product(text, product_swap, rng) {
            return swapped;
        }
    }
    match rng.gen_range(0..5) {
        0 => casual(text),
        1 => typo(text, rng),
        2 => drop_word(text, rng),
        3 => fragment(text, rng),
        _ => typo(&casual(text), rng),
    }
}

/// With probability `p`, replaces a generic product phrase ("an item") with a concrete one.
fn concrete_product(text: &str, p: f64, rng: &mut StdRng) -> Option<String> {
    let lower = text.to_lowercase();
    let generic = GENERIC_PRODUCTS.iter().find(|g| lower.contains(*g))?;
    if !rng.gen_bool(p.min(1.0)) {
        return None;
    }
    let at = lower.find(generic)?;
    // Byte offsets of the lower-cased text match the original only for ASCII.
    if !text.is_ascii() {
        return None;
    }
    let product = PRODUCTS[rng.gen_range(0..PRODUCTS.len())];
    Some(format!(
        "{}{}{}",
        &text[..at],
        product,
        &text[at + generic.len()..]
    ))
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
            let x = augment(text, 1.0, 0.0, &mut a);
            assert_eq!(x, augment(text, 1.0, 0.0, &mut b));
            assert!(!x.is_empty());
            assert!(x.len() + 20 >= text.len(), "{x}");
        }
        assert_eq!(augment(text, 0.0, 1.0, &mut a), text);
    }

    #[test]
    fn generic_products_become_concrete_ones() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..40 {
            if let Some(t) = concrete_product("I want to buy an item from you", 0.5, &mut rng) {
                assert!(
                    t.starts_with("I want to buy ") && t.ends_with(" from you"),
                    "{t}"
                );
                assert!(!t.contains("an item"));
                seen.insert(t);
            }
        }
        assert!(seen.len() > 3);
        assert_eq!(concrete_product("where is my order", 1.0, &mut rng), None);
    }

    #[test]
    fn casual_strips_case_and_trailing_punctuation() {
        assert_eq!(casual("Where is my order?!"), "where is my order");
    }
}
