//! A customer shopping among products: picking one of several by price or budget, comparing
//! them, asking to buy the one discussed, and asking about it what its record does not list.
//! Every answer comes from the live records; what they do not say is said not to be known.

mod budget;
mod buying;
mod compare;
mod details;

pub use budget::{by_price, cheap_first, cheapest, none_within, one_by_price, price_cap, within};
pub use buying::{buys, wants_to_buy};
pub use compare::{asked_of_all, compared, compares, comparison};
pub use details::{asked_words, asks_detail, detail, sentences};

use super::answers::{words, Catalog, FUNCTION_WORDS, REFERENCES};
use crate::knowledge::Vars;
use crate::retrieval::Found;
use crate::wire::Product;

/// Words of the shop's service around a product: a question with one is for articles and
/// intents, not the product's record ("can I return it?", "is it shipped yet?").
#[rustfmt::skip]
const SERVICE: &[&str] = &[
    "return", "returns", "returned", "returning", "returnable", "refund", "refunds",
    "refunded", "refundable", "exchange", "exchanged", "exchangeable", "cancel", "cancelled",
    "canceled", "cancellation", "deliver", "delivers", "delivered", "delivery", "arrive",
    "arrives", "arrived", "arriving", "ship", "ships", "shipped", "shipping", "dispatch",
    "dispatched", "postage", "post", "send", "sent", "track", "tracking", "order", "ordered",
    "pay", "paid", "payment",
    "paypal", "klarna", "instalments", "invoice", "receipt", "warranty", "guarantee",
    "discount", "voucher", "coupon", "code", "account", "address", "broken", "faulty",
    "damaged", "missing", "replacement", "customs", "duty", "duties", "import", "vat",
    "tax", "taxes",
];

/// Service words that are also what a product does, when the product is the subject:
/// "does it cancel noise?", "does the Helix track sleep?", "does it send alerts?".
const FEATURE_VERBS: &[&str] = &["cancel", "track", "send"];
/// Words that ask a yes/no question, before its subject.
const AUXILIARIES: &[&str] = &[
    "does", "do", "did", "can", "could", "will", "would", "is", "are", "has",
];
/// Subjects that make the customer, or the shop, the one acting ("can I cancel it?").
const PEOPLE: &[&str] = &["i", "we", "you", "u", "me"];

/// The question is about the shop's service around the product rather than the product
/// ("can I take it back if it doesn't fit?", "how much is shipping for it?"): for articles
/// and intents, even when it names one of the product's attributes. Words in `except` do
/// not count.
pub fn about_service_except(text: &str, except: &[&str]) -> bool {
    let w = words(text);
    let service = |k: usize| {
        let x = w[k].as_str();
        if !SERVICE.contains(&x) || except.contains(&x) {
            return false;
        }
        // "power delivery" is a way of charging.
        if x == "delivery" && k > 0 && w[k - 1] == "power" {
            return false;
        }
        if FEATURE_VERBS.contains(&x) {
            let aux = (k.saturating_sub(5)..k)
                .rev()
                .find(|&a| AUXILIARIES.contains(&w[a].as_str()));
            if aux.is_some_and(|a| w.get(a + 1).is_some_and(|s| !PEOPLE.contains(&s.as_str()))) {
                return false;
            }
        }
        true
    };
    (0..w.len()).any(service)
        || w.windows(3).any(|t| {
            matches!(t[0].as_str(), "take" | "send" | "bring" | "give" | "post")
                && REFERENCES.contains(&t[1].as_str())
                && t[2] == "back"
        })
        || w.windows(2).any(|t| price_policy(&t[0], &t[1]))
}

/// "the difference back", "price match", "the price dropped": the shop's price policies,
/// not the product's price.
pub(super) fn price_policy(a: &str, b: &str) -> bool {
    matches!(
        (a, b),
        ("difference", "back")
            | (
                "price",
                "dropped" | "match" | "matching" | "matched" | "protection"
            )
    )
}

pub fn about_service(text: &str) -> bool {
    about_service_except(text, &[])
}

/// The message asks for what can be had now: "available", "in stock".
pub fn wants_in_stock(text: &str) -> bool {
    let w = words(text);
    w.iter().any(|x| x == "available") || w.windows(2).any(|t| t[0] == "in" && t[1] == "stock")
}

/// Of `products`, those the question names: in full ("the Kettle Pro and the Kettle Pro
/// Mini"), by a word of its name no other of them has ("is the Q5 better than the Q7?"), or
/// by two words of its name ("the summit 30", whose "30" alone the GaN Charger 30 W shares).
pub fn named_in(products: &[Product], question: &str) -> Vec<Product> {
    let q = words(question);
    let names: Vec<Vec<String>> = products.iter().map(|p| words(&p.name)).collect();
    products
        .iter()
        .zip(&names)
        .filter(|(_, name)| {
            let full = !name.is_empty() && name.iter().all(|w| q.contains(w));
            let own = name
                .iter()
                .any(|w| q.contains(w) && own_word(w, name, &names));
            let several = words_said(name, |w| q.iter().any(|x| x == w)) >= 2;
            full || own || several
        })
        .map(|(p, _)| p.clone())
        .collect()
}

/// A word of `name` that no other of `names` has; not a letter alone (the "s" of "what's"
/// is not the Helix Watch S).
fn own_word(w: &str, name: &Vec<String>, names: &[Vec<String>]) -> bool {
    w.len() > 1
        && !FUNCTION_WORDS.contains(&w)
        && !names
            .iter()
            .filter(|n| *n != name)
            .any(|n| n.iter().any(|x| x == w))
}

/// How many words of `name`, not single letters, the question says.
fn words_said(name: &[String], said: impl Fn(&str) -> bool) -> usize {
    name.iter().filter(|w| w.len() > 1 && said(w)).count()
}

/// The one product of those found that the message names for sure, though no score was
/// confident of it: by a word of its name no other found product has, that is a model code
/// ("how much is the q7?"), or with two words of its name, one its last ("do you have the
/// oakridge boots in 45": "Oakridge Work Boot"). A single word is not enough ("my car" is
/// no RC Race Car, "the uk" no Travel Adapter EU to UK), nor is a word after "not" ("the
/// regular auralis buds, not the pro"), nor any when another found product is named in full.
/// "the iphone 15 in stock" does not name the "iPhone 15 Case".
pub fn named_for_sure(found: &[Product], question: &str) -> Option<Product> {
    let q = words(question);
    let names: Vec<Vec<String>> = found.iter().map(|p| words(&p.name)).collect();
    // A question word, not right after "not", in either number.
    let said = |w: &str| {
        q.iter().enumerate().any(|(i, x)| {
            (x == w || x.trim_end_matches('s') == w)
                && (i == 0 || !matches!(q[i - 1].as_str(), "not" | "no"))
        })
    };
    let full = |name: &Vec<String>| !name.is_empty() && name.iter().all(|w| said(w));
    let sure: Vec<&Product> = found
        .iter()
        .zip(&names)
        .filter(|(_, name)| {
            if names.iter().any(|n| n != *name && full(n)) {
                return false;
            }
            let own: Vec<&String> = name
                .iter()
                .filter(|w| said(w) && own_word(w, name, &names))
                .collect();
            let code = own.iter().any(|w| {
                w.starts_with(|c: char| c.is_alphabetic())
                    && w.contains(|c: char| c.is_ascii_digit())
            });
            let head = name.last().is_some_and(|h| said(h));
            // "the summit 45" among the Summit 30 and 65: a product line's word, shared with
            // another product found, and its own number after it, as in the name. Not "the
            // iphone 15" for the only iPhone 15 Case: that names another product.
            let numbered = name.windows(2).any(|pair| {
                pair[1].chars().all(|c| c.is_ascii_digit())
                    && own.contains(&&pair[1])
                    && !own_word(&pair[0], name, &names)
                    && q.windows(2).any(|said| said == pair)
            });
            code || numbered || (!own.is_empty() && head && words_said(name, said) >= 2)
        })
        .map(|(p, _)| p)
        .collect();
    match sure.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// `text` without the words of `name`: "do the q5 fold?" asked again of the Q3 asks "do the
/// fold?".
pub fn without_name(text: &str, name: &str) -> String {
    let name = words(name);
    words(text)
        .into_iter()
        .filter(|w| !name.contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "is the q7 waterproof?", "does the Summit 30 have a rain cover?": a yes/no question with
/// a product, not the customer, as its subject.
pub fn yes_no_about_product(text: &str) -> bool {
    let w = words(text);
    w.first().is_some_and(|x| AUXILIARIES.contains(&x.as_str()))
        && w.get(1).is_some_and(|x| !PEOPLE.contains(&x.as_str()))
}

/// The one product a message names, though no score was confident of it: named for sure
/// among the `records` found ([`named_for_sure`]), or the one the search found named in full.
pub fn named_product(
    records: &[Product],
    found: &Found,
    question: &str,
    catalog: &dyn Catalog,
) -> Option<Product> {
    named_for_sure(records, question).or_else(|| named_by_search(found, question, catalog))
}

/// The one product the search found named in full ("the kettle pro"), or by a coined word
/// of its name alone ("the nordkap"), however low its score. As for [`named_for_sure`], a
/// name of one word is not enough (a "Case" is named by any question about cases), nor a
/// name said after "not" ("anything cheaper? not the nordkap").
fn named_by_search(found: &Found, question: &str, catalog: &dyn Catalog) -> Option<Product> {
    let mut full = found
        .products
        .iter()
        .filter(|h| h.candidate.name_coverage >= 1.0);
    let (Some(one), None) = (full.next(), full.next()) else {
        return None;
    };
    let product = catalog.product(&one.id)?;
    let name = words(&product.name);
    let q = words(question);
    let negated = q.iter().enumerate().any(|(i, w)| {
        matches!(w.as_str(), "not" | "no")
            && q[i + 1..].iter().take(2).any(|next| name.contains(next))
    });
    (name.len() >= 2 && !negated).then_some(product)
}

/// The products the search found, as the catalogue has them now.
pub fn found_records(found: &Found, catalog: &dyn Catalog) -> Vec<Product> {
    found
        .products
        .iter()
        .filter_map(|h| catalog.product(&h.id))
        .collect()
}

/// The placeholders of the buying replies.
pub fn product_vars(p: &Product) -> Vars {
    let page = match &p.url {
        Some(url) => url.clone(),
        None => format!("our online shop (article number {})", p.sku),
    };
    Vars::from([("product.name", p.name.clone()), ("product.page", page)])
}

/// Stock in words, as product answers say it.
pub(super) fn stock_phrase(stock: u64) -> String {
    match stock {
        0 => "out of stock at the moment".to_string(),
        n if n < 5 => format!("in stock (only {n} left)"),
        _ => "in stock".to_string(),
    }
}

#[cfg(test)]
fn product(sku: &str, name: &str, price: f64, attributes: serde_json::Value) -> Product {
    serde_json::from_value(serde_json::json!({
        "sku": sku, "name": name, "price": {"amount": price, "currency": "EUR"},
        "stock": 5, "attributes": attributes,
        "description": "1.7-litre stainless steel kettle with a keep-warm function. Boils in 3 minutes!"
    }))
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_questions_are_told_from_what_a_product_does() {
        assert!(about_service("can I take it back if it doesn't fit?"));
        assert!(about_service("how much is shipping for it?"));
        assert!(about_service("can I cancel it?"));
        assert!(about_service("is it returnable?"));
        assert!(!about_service("does it have a hood?"));
        assert!(!about_service("does it cancel noise?"));
        assert!(!about_service("does the helix fit 3 track sleep?"));
        assert!(!about_service("does it support power delivery?"));
        assert!(!about_service("does it send alerts to my phone"));
        assert!(about_service(
            "the kettle pro was cheaper last week, can I get the difference back?"
        ));
        assert!(about_service("do you price match the kettle pro?"));
        assert!(!about_service("what's the price of the kettle pro?"));
    }

    #[test]
    fn a_product_is_named_for_sure_by_a_model_code_or_its_own_word_and_kind() {
        let found = [
            product("Q7", "Q7 ANC Headphones", 249.0, serde_json::json!({})),
            product("Q5", "Q5 Headphones", 129.0, serde_json::json!({})),
            product("OB", "Oakridge Work Boot", 189.0, serde_json::json!({})),
            product("IC", "iPhone 15 Case", 29.0, serde_json::json!({})),
        ];
        let sku = |q: &str| named_for_sure(&found, q).map(|p| p.sku);
        assert_eq!(sku("how much is the q7?").as_deref(), Some("Q7"));
        assert_eq!(
            sku("do you have the oakridge boots in 45").as_deref(),
            Some("OB")
        );
        assert_eq!(sku("do you have the iphone 15 in stock"), None);
        let line = [
            product(
                "P45",
                "Summit 45 Trekking Pack",
                159.0,
                serde_json::json!({}),
            ),
            product("P30", "Summit 30 Daypack", 89.0, serde_json::json!({})),
        ];
        let in_line = named_for_sure(&line, "do you have the summit 45 in stock?");
        assert_eq!(in_line.map(|p| p.sku).as_deref(), Some("P45"));
        assert_eq!(sku("how much are the headphones"), None);
        let more = [
            product("RC", "RC Race Car", 49.0, serde_json::json!({})),
            product("BP", "Auralis Buds Pro", 149.0, serde_json::json!({})),
            product("B", "Auralis Buds", 99.0, serde_json::json!({})),
        ];
        let sku = |q: &str| named_for_sure(&more, q).map(|p| p.sku);
        assert_eq!(sku("where can i get my car serviced in hamburg"), None);
        assert_eq!(sku("do you sell car seats for babies"), None);
        assert_eq!(sku("price of the regular auralis buds, not the pro"), None);
        assert!(yes_no_about_product("is the q7 waterproof?"));
        assert!(!yes_no_about_product("can i get the q7 gift wrapped?"));
        assert!(!yes_no_about_product("my q7 won't turn on, what do i do?"));
        assert_eq!(
            without_name("do the q5 fold?", "Q5 Headphones"),
            "do the fold"
        );
    }

    #[test]
    fn products_are_named_in_full_by_their_own_word_or_by_two_words() {
        let found = [
            product(
                "P45",
                "Summit 45 Trekking Pack",
                159.0,
                serde_json::json!({}),
            ),
            product("P30", "Summit 30 Daypack", 89.0, serde_json::json!({})),
            product("CH", "GaN Charger 30 W", 35.0, serde_json::json!({})),
            product("W", "Helix Watch S", 229.0, serde_json::json!({})),
        ];
        let named = named_in(
            &found,
            "what's the difference between the summit 45 and the summit 30?",
        );
        let skus: Vec<&str> = named.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(skus, ["P45", "P30"]);
    }
}
