//! Products side by side.

use super::{about_service, named_in, stock_phrase};
use crate::dialogue::answers::{asked_attributes, attribute_sentence, words};
use crate::wire::Product;

/// Words that say a message compares products ("what's the difference between ...").
/// Customers' common misspellings of "difference" count too.
const COMPARING: &[&str] = &[
    "difference",
    "differences",
    "diffrence",
    "difrence",
    "differnce",
    "diference",
    "diff",
    "compare",
    "compared",
    "comparison",
    "vs",
    "versus",
    "better",
];

/// Comparatives that ask which of two products has more of something ("which is lighter,
/// the Summit 45 or the Summit 30?").
const COMPARATIVES: &[&str] = &[
    "lighter", "heavier", "bigger", "smaller", "larger", "cheaper", "longer", "shorter", "warmer",
    "quieter", "louder", "stronger", "faster", "lightest", "heaviest", "biggest", "smallest",
    "largest", "cheapest", "longest",
];

/// The message compares products rather than naming one loosely.
pub fn compares(text: &str) -> bool {
    let w = words(text);
    let has = |s: &str| w.iter().any(|x| x == s);
    // "can I get the difference back?" asks for money, not a comparison.
    if w.windows(2).any(|t| super::price_policy(&t[0], &t[1])) {
        return false;
    }
    w.iter().any(|x| COMPARING.contains(&x.as_str()))
        || (has("which") && has("or"))
        || (has("between") && has("and"))
        || (w.iter().any(|x| COMPARATIVES.contains(&x.as_str())) && (has("or") || has("than")))
}

fn asks_stock(w: &[String]) -> bool {
    w.iter()
        .any(|x| matches!(x.as_str(), "stock" | "available"))
}

/// The products a comparison names ([`named_in`]) among those found; with one named, the
/// product discussed is the other ("is it better than the Q7?" after the Q5). Fewer than
/// two: not a comparison of products.
pub fn compared(found: &[Product], question: &str, discussed: Option<&Product>) -> Vec<Product> {
    let mentioned = named_in(found, question);
    match (mentioned.as_slice(), discussed) {
        ([_, _, ..], _) => mentioned,
        ([other], Some(it)) if other.sku != it.sku => vec![it.clone(), other.clone()],
        _ => Vec::new(),
    }
}

/// How many attributes a comparison shows when the question names none.
const COMPARED_ATTRIBUTES: usize = 4;

/// Several products side by side: what the question asks about each (or, when it names
/// nothing, the attributes they differ in), stock and price. `None` when the records give
/// nothing to compare.
pub fn comparison(products: &[Product], question: &str) -> Option<String> {
    let q = words(question);
    let asked: Vec<Vec<String>> = products
        .iter()
        .map(|p| {
            let name = words(&p.name);
            asked_attributes(p, &q, &name)
                .into_iter()
                .map(|(k, v)| attribute_sentence(k, v, &q, &name))
                .collect()
        })
        .collect();
    let any_asked = asked.iter().any(|a| !a.is_empty());
    // "which ones are in stock?" needs no list of their differences.
    let comparing = compares(question);
    let differing = differing_keys(products);
    let lines: Vec<String> = products
        .iter()
        .zip(&asked)
        .map(|(p, asked)| {
            let parts: Vec<String> = if any_asked {
                if asked.is_empty() {
                    vec!["not stated".to_string()]
                } else {
                    asked.clone()
                }
            } else if comparing {
                let name = words(&p.name);
                differing
                    .iter()
                    .filter_map(|k| p.attributes.get_key_value(*k))
                    .map(|(k, v)| attribute_sentence(k, v, &q, &name))
                    .collect()
            } else {
                Vec::new()
            };
            let mut line = format!("the {}: ", p.name);
            if !parts.is_empty() {
                line.push_str(&parts.join("; "));
                line.push_str("; ");
            }
            line.push_str(&format!("{}, {}", stock_phrase(p.stock), p.price));
            line
        })
        .collect();
    if !any_asked && !comparing && !asks_stock(&q) {
        return None;
    }
    let mut text = String::from("Side by side: ");
    text.push_str(&lines.join(". And "));
    text.push_str(". Which one would you like?");
    Some(upper_first(text))
}

/// Attribute keys every product has, with values that are not all the same, in the first
/// product's order: what tells them apart.
fn differing_keys(products: &[Product]) -> Vec<&str> {
    let Some(first) = products.first() else {
        return Vec::new();
    };
    first
        .attributes
        .iter()
        .filter(|(k, v)| {
            products.iter().all(|p| p.attributes.contains_key(*k))
                && products.iter().any(|p| p.attributes.get(*k) != Some(*v))
        })
        .map(|(k, _)| k.as_str())
        .take(COMPARED_ATTRIBUTES)
        .collect()
}

fn upper_first(s: String) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// Words that ask for a person, not about the products ("is anyone available to help?").
const PERSON: &[&str] = &[
    "anyone", "anybody", "someone", "somebody", "person", "human", "agent", "staff",
];

/// A question put to several offered products at once: one of their attributes ("does it
/// have noise cancelling?", "what colours?"), their stock, or a comparison; not a question
/// for the shop's service ("can I return the black one?") or for a person.
pub fn asked_of_all(offered: &[Product], text: &str) -> bool {
    let w = words(text);
    if about_service(text) || w.iter().any(|x| PERSON.contains(&x.as_str())) {
        return false;
    }
    compares(text)
        || asks_stock(&w)
        || offered
            .iter()
            .any(|p| !asked_attributes(p, &w, &words(&p.name)).is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::product;
    use super::*;

    #[test]
    fn comparisons_show_what_is_asked_or_what_differs() {
        let packs = [
            product(
                "P45",
                "Summit 45",
                159.0,
                serde_json::json!({"weight_g": 1750, "color": "green"}),
            ),
            product(
                "P30",
                "Summit 30",
                89.0,
                serde_json::json!({"weight_g": 1050, "color": "green"}),
            ),
        ];
        assert!(compares(
            "which is lighter, the summit 45 or the summit 30?"
        ));
        assert!(compares("what's the difference between them"));
        assert!(compares("whats the diffrence between the q5 and q7"));
        assert!(compares("choosing between the summit 30 and the summit 45"));
        assert!(compares("is it better than the Q7?"));
        assert!(!compares(
            "the kettle pro was cheaper last week, can I get the difference back?"
        ));
        assert!(!compares("is the summit 45 light?"));
        let text = comparison(&packs, "which is lighter, the summit 45 or the summit 30?").unwrap();
        assert!(
            text.contains("Summit 45: weight: 1750 g")
                && text.contains("Summit 30: weight: 1050 g"),
            "{text}"
        );
        // Nothing named: what tells them apart, not what they share.
        let text = comparison(&packs, "what's the difference?").unwrap();
        assert!(text.contains("weight") && !text.contains("green"), "{text}");
        // A stock question needs no list of differences.
        let text = comparison(&packs, "which ones are in stock?").unwrap();
        assert!(
            !text.contains("weight") && text.contains("in stock, EUR 89.00"),
            "{text}"
        );
        assert!(asked_of_all(&packs, "which ones are in stock?"));
        assert!(asked_of_all(&packs, "how heavy are they"));
        assert!(!asked_of_all(&packs, "can I return the green one?"));
        assert!(!asked_of_all(&packs, "is anyone available to help me?"));
    }
}
