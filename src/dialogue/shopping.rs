//! A customer shopping among products: picking one of several by price, comparing them,
//! asking to buy the one discussed, and asking about it what its record does not list.
//! Every answer comes from the live records; what they do not say is said not to be known.

use super::answers::Catalog;
use super::answers::{asked_attributes, attribute_sentence, stem, words, REFERENCES};
use crate::knowledge::Vars;
use crate::retrieval::Found;
use crate::wire::Product;

/// "which one is the cheapest?", "the more expensive one": one of the offered products by
/// its price.
pub fn by_price(text: &str, offered: &[Product]) -> Option<usize> {
    let w = words(text);
    let has = |s: &str| w.iter().any(|x| x == s);
    let lowest = has("cheapest")
        || has("cheaper")
        || has("cheap")
        || (has("least") && has("expensive"))
        || (has("lowest") && has("price"))
        || (has("less") && has("expensive"));
    let highest = !lowest
        && (has("priciest")
            || has("dearest")
            || has("expensive")
            || (has("highest") && has("price")));
    let by = |a: &&Product, b: &&Product| a.price.amount.total_cmp(&b.price.amount);
    let chosen = if lowest {
        offered.iter().min_by(by)
    } else if highest {
        offered.iter().max_by(by)
    } else {
        None
    }?;
    offered.iter().position(|p| p.sku == chosen.sku)
}

/// Words that say a message compares products ("what's the difference between ...").
const COMPARING: &[&str] = &[
    "difference",
    "differences",
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
    w.iter().any(|x| COMPARING.contains(&x.as_str()))
        || (has("which") && has("or"))
        || (w.iter().any(|x| COMPARATIVES.contains(&x.as_str())) && (has("or") || has("than")))
}

fn asks_stock(w: &[String]) -> bool {
    w.iter()
        .any(|x| matches!(x.as_str(), "stock" | "available"))
}

/// The products a comparison names, of those the search found: each named in full ("the
/// Kettle Pro and the Kettle Pro Mini"), by a word of its name no other has ("is the Q5
/// better than the Q7?") or by two words of its name. Fewer than two: not a comparison of products found.
pub fn compared(
    found: &Found,
    question: &str,
    discussed: Option<&Product>,
    catalog: &dyn Catalog,
) -> Vec<Product> {
    let q = words(question);
    let products: Vec<Product> = found
        .products
        .iter()
        .filter_map(|h| catalog.product(&h.id))
        .collect();
    let names: Vec<Vec<String>> = products.iter().map(|p| words(&p.name)).collect();
    let mentioned: Vec<Product> = products
        .iter()
        .zip(&names)
        .filter(|(_, name)| {
            let full = !name.is_empty() && name.iter().all(|w| q.contains(w));
            // Not a letter alone: the "s" of "what's" is not the Helix Watch S.
            let own = name.iter().any(|w| {
                w.len() > 1
                    && q.contains(w)
                    && !names.iter().filter(|n| *n != *name).any(|n| n.contains(w))
            });
            // "the summit 30": two words of its name, when the "30" alone is shared with
            // the GaN Charger 30 W.
            let several = name.iter().filter(|w| w.len() > 1 && q.contains(w)).count() >= 2;
            full || own || several
        })
        .map(|(p, _)| p.clone())
        .collect();
    match (mentioned.as_slice(), discussed) {
        ([_, _, ..], _) => mentioned,
        // "is it better than the Q7?" after the Q5.
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

/// Stock in words, as product answers say it.
pub(super) fn stock_phrase(stock: u64) -> String {
    match stock {
        0 => "out of stock at the moment".to_string(),
        n if n < 5 => format!("in stock (only {n} left)"),
        _ => "in stock".to_string(),
    }
}

fn upper_first(s: String) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// Verbs of buying, followed by what is bought ("I'll take it", "can I order one?").
const BUYING: &[&str] = &["take", "buy", "order", "purchase", "grab"];
/// Words that turn a buying phrase down ("I won't take it").
const NOT: &[&str] = &["not", "dont", "don't", "won't", "wont", "never", "no", "t"];

/// The customer wants to buy the product discussed: "ok I'll take it", "how do I order
/// it?", "I want to buy one", "I'll take the cheaper one", "where can I buy it". Taking it back is a return, and getting
/// it ("when will I get it") is a delivery question.
pub fn wants_to_buy(text: &str) -> bool {
    let w = words(text);
    if w.iter().any(|x| NOT.contains(&x.as_str())) {
        return false;
    }
    // What is bought comes within three words: "take it", "order the black one".
    let bought = w.iter().enumerate().any(|(i, x)| {
        BUYING.contains(&x.as_str())
            && (i + 1..(i + 4).min(w.len())).any(|j| {
                (REFERENCES.contains(&w[j].as_str()) || matches!(w[j].as_str(), "one" | "two"))
                    && w.get(j + 1).is_none_or(|after| after != "back")
            })
    });
    let how = w.windows(4).any(|q| {
        matches!(q[0].as_str(), "how" | "where")
            && matches!(q[1].as_str(), "do" | "can" | "could")
            && q[2] == "i"
            && matches!(q[3].as_str(), "order" | "buy" | "purchase")
    });
    bought || how
}

/// The placeholders of the buying replies.
pub fn product_vars(p: &Product) -> Vars {
    let page = match &p.url {
        Some(url) => url.clone(),
        None => format!("our online shop (article number {})", p.sku),
    };
    Vars::from([("product.name", p.name.clone()), ("product.page", page)])
}

/// Words that make a question about the product one for the shop's service instead ("can I
/// return it?", "is it shipped yet?"): those go to articles and intents.
#[rustfmt::skip]
const SERVICE: &[&str] = &[
    "return", "returns", "returned", "returning", "refund", "refunds", "refunded", "exchange",
    "cancel", "cancelled", "canceled", "cancellation", "deliver", "delivered", "delivery",
    "arrive", "arrived", "arriving", "ship", "shipped", "shipping", "send", "sent", "track",
    "tracking", "order", "ordered", "pay", "paid", "payment", "invoice", "receipt", "warranty",
    "guarantee", "discount", "voucher", "coupon", "code", "account", "address", "broken",
    "faulty", "damaged", "missing",
];

/// Words that make a question about "it" one that product answers already cover (price,
/// stock) or one about an order on its way ("is it here yet?").
#[rustfmt::skip]
const NOT_DETAILS: &[&str] = &[
    "price", "cost", "costs", "stock", "available", "availability", "here", "yet", "sell",
    "sold", "buy", "left", "now", "today", "euros", "eur",
];

/// A question put to several offered products at once: one of their attributes ("does it
/// have noise cancelling?", "what colours?"), their stock, or a comparison; not a question
/// for the shop's service ("can I return the black one?").
pub fn asked_of_all(offered: &[Product], text: &str) -> bool {
    let w = words(text);
    if about_service(text) {
        return false;
    }
    compares(text)
        || asks_stock(&w)
        || offered
            .iter()
            .any(|p| !asked_attributes(p, &w, &words(&p.name)).is_empty())
}

/// Words a question about a product is built of that name nothing about it.
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "does", "do", "did", "is", "are", "was", "can", "could", "will", "would", "has", "have",
    "had", "it", "its", "they", "them", "this", "that", "these", "those", "a", "an", "the",
    "with", "for", "in", "on", "of", "to", "and", "or", "any", "some", "me", "my", "i", "you",
    "work", "works", "use", "used", "come", "comes", "be", "get", "go", "goes", "also",
    "too", "really", "still", "good", "ok", "okay", "so", "well", "there", "what", "how",
    "if", "by", "at", "from", "as", "s", "than", "much", "very", "need", "want",
];

/// "does it work with alexa?", "is it dishwasher safe?": a question about the product
/// discussed ("it" as its subject) that is not about the shop's service and asks about
/// something in particular.
pub fn asks_detail(text: &str) -> bool {
    let w = words(text);
    let about_it = w.windows(2).take(3).any(|p| {
        matches!(
            p[0].as_str(),
            "does" | "is" | "can" | "will" | "has" | "do" | "are" | "would" | "could"
        ) && REFERENCES.contains(&p[1].as_str())
    });
    about_it
        && w.len() <= 12
        && !about_service(text)
        && !w.iter().any(|x| NOT_DETAILS.contains(&x.as_str()))
        && w.iter()
            .any(|x| x.len() > 1 && !FILLER.contains(&x.as_str()))
}

/// For a question about a product that asks none of its attributes ("does the Kettle Pro
/// have a keep-warm function?"), the sentence of its description that answers it.
pub fn detail(p: &Product, question: &str) -> Option<String> {
    let q = words(question);
    let name = words(&p.name);
    if !asked_attributes(p, &q, &name).is_empty() {
        return None;
    }
    let asked: Vec<String> = q
        .into_iter()
        .filter(|x| {
            x.len() > 1
                && !FILLER.contains(&x.as_str())
                && !NOT_DETAILS.contains(&x.as_str())
                && !SERVICE.contains(&x.as_str())
                && !name.contains(x)
        })
        .collect();
    described(p, &asked)
}

/// The sentence of the product's description that speaks of what was asked ("keep warm"
/// finds "... keep-warm function and a 360° base."), or of its attributes' words.
pub fn described(p: &Product, asked: &[String]) -> Option<String> {
    let name = words(&p.name);
    let wanted: Vec<String> = asked
        .iter()
        .filter(|w| !name.contains(w))
        .map(|w| stem(w))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    sentences(p.description.as_deref()?)
        .into_iter()
        .find(|sentence| words(sentence).iter().any(|w| wanted.contains(&stem(w))))
        .map(str::to_string)
}

/// A text's sentences: a full stop, "!" or "?" ends one where a space or the end follows
/// ("1.7-litre" is one word).
fn sentences(text: &str) -> Vec<&str> {
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

/// The question is about the shop's service around the product rather than the product
/// ("can I take it back if it doesn't fit?", "how much is shipping for it?"): for articles
/// and intents, even when it names one of the product's attributes.
pub fn about_service(text: &str) -> bool {
    let w = words(text);
    w.iter().any(|x| SERVICE.contains(&x.as_str()))
        || w.windows(3).any(|t| {
            matches!(t[0].as_str(), "take" | "send" | "bring" | "give" | "post")
                && REFERENCES.contains(&t[1].as_str())
                && t[2] == "back"
        })
}

/// Words that put a ceiling on the price ("under 50", "max 120 eur", "less than EUR 80").
const CEILINGS: &[&[&str]] = &[
    &["under"],
    &["below"],
    &["less", "than"],
    &["up", "to"],
    &["max"],
    &["maximum"],
    &["no", "more", "than"],
    &["not", "more", "than"],
    &["cheaper", "than"],
    &["budget", "is"],
    &["budget", "of"],
    &["budget"],
];
/// Money words around a price.
const MONEY: &[&str] = &[
    "eur", "euro", "euros", "e", "bucks", "usd", "dollars", "gbp", "pounds",
];
/// Words before a ceiling that make it an age ("toys for kids under 5").
const AGES: &[&str] = &[
    "kids", "kid", "children", "child", "baby", "babies", "toddler", "toddlers", "aged", "age",
    "boy", "girl", "son", "daughter",
];

/// The most the customer wants to pay, when the message says so: "headphones under 100
/// euros", "max 120 eur", "anything below €50?". Not a weight, a size or an age ("under 2
/// kg", "for kids under 5").
pub fn price_cap(text: &str) -> Option<f64> {
    let w = words(text);
    (0..w.len()).find_map(|i| {
        let lead = CEILINGS
            .iter()
            .find(|c| w.len() >= i + c.len() && w[i..].iter().zip(c.iter()).all(|(a, b)| a == b))?;
        if w[i.saturating_sub(2)..i]
            .iter()
            .any(|x| AGES.contains(&x.as_str()))
        {
            return None;
        }
        let mut j = i + lead.len();
        if w.get(j).is_some_and(|x| MONEY.contains(&x.as_str())) {
            j += 1;
        }
        let amount = money_amount(w.get(j)?)?;
        // "under 2 kg" is a weight; "under 100 euros", "under 50?" a price.
        match w.get(j + 1) {
            Some(next) if !MONEY.contains(&next.as_str()) && UNITS.contains(&next.as_str()) => None,
            _ => Some(amount),
        }
    })
}

/// Units a number under a ceiling may be measured in, which make it no price.
#[rustfmt::skip]
const UNITS: &[&str] = &[
    "kg", "g", "grams", "kilos", "l", "litres", "liters", "ml", "cm", "mm", "m", "inch",
    "inches", "w", "watts", "hours", "h", "days", "weeks", "years", "months", "km", "db",
    "minutes", "mins", "lbs",
];

/// "50", "49.99", "50eur", "50e": the amount.
fn money_amount(word: &str) -> Option<f64> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &word[digits.len()..];
    if !(unit.is_empty() || MONEY.contains(&unit)) {
        return None;
    }
    digits.parse::<f64>().ok().filter(|a| *a > 0.0)
}

/// The products at or under the price ceiling.
pub fn within(products: Vec<Product>, cap: Option<f64>) -> Vec<Product> {
    match cap {
        Some(cap) => products
            .into_iter()
            .filter(|p| p.price.amount <= cap)
            .collect(),
        None => products,
    }
}

/// Nothing of what was found is within the ceiling: said so, with the cheapest of them.
pub fn none_within(cap: f64, found: &[Product]) -> String {
    let cheapest = found
        .iter()
        .min_by(|a, b| a.price.amount.total_cmp(&b.price.amount));
    match cheapest {
        Some(p) => format!(
            "I couldn't find one for {} {cap:.2} or less. The cheapest I found is the {} ({}).",
            p.price.currency, p.name, p.price
        ),
        None => format!("I couldn't find one for {cap:.2} or less."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(sku: &str, name: &str, price: f64, attributes: serde_json::Value) -> Product {
        serde_json::from_value(serde_json::json!({
            "sku": sku, "name": name, "price": {"amount": price, "currency": "EUR"},
            "stock": 5, "attributes": attributes,
            "description": "1.7-litre stainless steel kettle with a keep-warm function. Boils in 3 minutes!"
        }))
        .unwrap()
    }

    #[test]
    fn buying_is_told_from_returning_and_waiting() {
        for yes in [
            "ok I'll take it",
            "great, how do I order it",
            "I want to buy one",
            "I'll take the cheaper one",
            "where can I buy it?",
            "can i order it in black",
        ] {
            assert!(wants_to_buy(yes), "{yes}");
        }
        for no in [
            "I'll take it back",
            "can I send it back?",
            "when will I get it",
            "I don't want to buy it",
            "how long will it take",
            "where is my order",
            "I won't order it",
        ] {
            assert!(!wants_to_buy(no), "{no}");
        }
    }

    #[test]
    fn a_pick_by_price_takes_the_cheapest_or_the_dearest() {
        let offered = [
            product("A", "Kettle Pro", 59.9, serde_json::json!({})),
            product("B", "Glass Kettle", 39.9, serde_json::json!({})),
            product("C", "Kettle Pro Mini", 44.9, serde_json::json!({})),
        ];
        assert_eq!(by_price("which one is the cheapest?", &offered), Some(1));
        assert_eq!(by_price("the least expensive one", &offered), Some(1));
        assert_eq!(by_price("the more expensive one", &offered), Some(0));
        assert_eq!(by_price("the glass one", &offered), None);
    }

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
        assert!(compares("is it better than the Q7?"));
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
    }

    #[test]
    fn details_come_from_the_description_and_service_questions_stay_away() {
        let kettle = product(
            "K",
            "Kettle Pro",
            59.9,
            serde_json::json!({"capacity_l": 1.7}),
        );
        assert!(asks_detail("does it work with alexa?"));
        assert!(asks_detail("is it dishwasher safe"));
        assert!(!asks_detail("can I return it?"));
        assert!(!asks_detail("is it here yet?"));
        assert!(!asks_detail("is it in stock?"));
        assert!(!asks_detail("is it any good?"));
        assert!(!asks_detail("how do I reset my password"));
        assert_eq!(
            detail(&kettle, "does it keep the water warm?").as_deref(),
            Some("1.7-litre stainless steel kettle with a keep-warm function.")
        );
        assert_eq!(detail(&kettle, "does it work with alexa?"), None);
        // An attribute asked is answered from the attribute, not the description.
        assert_eq!(detail(&kettle, "what capacity does it have"), None);
        assert!(about_service("can I take it back if it doesn't fit?"));
        assert!(about_service("how much is shipping for it?"));
        assert!(!about_service("does it have a hood?"));
    }

    #[test]
    fn a_budget_is_read_but_not_a_weight_or_an_age() {
        for (text, cap) in [
            ("do you sell headphones under 100 euros?", Some(100.0)),
            ("I'm looking for running shoes, max 120 eur", Some(120.0)),
            ("anything under 50?", Some(50.0)),
            ("anything below €49.99", Some(49.99)),
            ("less than EUR 80 please", Some(80.0)),
            ("my budget is 60", Some(60.0)),
            ("under 50eur", Some(50.0)),
            ("a tent under 2 kg", None),
            ("toys for kids under 5", None),
            ("do you sell headphones", None),
            ("under the bed storage", None),
        ] {
            assert_eq!(price_cap(text), cap, "{text}");
        }
        let offered = vec![
            product("A", "Kettle Pro", 59.9, serde_json::json!({})),
            product("B", "Glass Kettle", 39.9, serde_json::json!({})),
        ];
        assert_eq!(within(offered.clone(), Some(50.0)).len(), 1);
        assert_eq!(within(offered.clone(), None).len(), 2);
        let text = none_within(30.0, &offered);
        assert!(
            text.contains("EUR 30.00 or less") && text.contains("Glass Kettle (EUR 39.90)"),
            "{text}"
        );
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
