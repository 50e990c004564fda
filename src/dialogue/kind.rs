//! "Do you sell kettles?": a question about a kind of thing, not one product. No single
//! product clears its threshold for it, so the dialogue looks among the products the search
//! found for those of the kind, and offers them, or says there are none.

use super::answers::{self, listed, words, Catalog, REFERENCES};
use crate::retrieval::Found;
use crate::wire::Product;

/// What a "do you sell ...?" question asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Kind {
    /// The noun, as typed: "shoes" of "running shoes".
    pub head: String,
    /// The words before it: "running".
    pub modifiers: Vec<String>,
}

/// Words that open a message before the question ("hi there, do you sell ...").
const GREETINGS: &[&str] = &[
    "hi", "hello", "hey", "hiya", "there", "ok", "okay", "so", "and", "also", "quick", "question",
];
const SELL: &[&str] = &["sell", "stock", "carry", "selling", "stocking", "carrying"];
const ADVERBS: &[&str] = &["still", "also", "even", "actually", "ever", "currently"];
const DETERMINERS: &[&str] = &["a", "an", "the", "any", "some", "such", "other"];
/// Words that end the object's noun phrase: prepositions and what follows a question.
const ENDS: &[&str] = &[
    "for", "with", "in", "from", "that", "which", "to", "on", "at", "like", "by", "near", "under",
    "over", "here", "online", "now", "anymore", "too", "please", "pls", "or", "and", "thanks",
    "thank", "thx", "btw", "because", "if", "anywhere", "there", "as",
];
/// Objects that are not goods: "do you sell my data?", "do you sell abroad?".
const NOT_GOODS: &[&str] = &[
    "my",
    "our",
    "your",
    "their",
    "his",
    "her",
    "out",
    "wholesale",
    "abroad",
    "overseas",
    "worldwide",
    "international",
    "internationally",
    "direct",
    "online",
    "anything",
    "everything",
    "something",
    "stuff",
    "things",
    "gift",
    "gifts",
];
/// Opinions of the customer's, which no record states: "cheap kettles" are kettles.
const OPINIONS: &[&str] = &[
    "cheap",
    "cheaper",
    "cheapest",
    "good",
    "great",
    "nice",
    "best",
    "decent",
    "quality",
    "affordable",
    "cool",
    "new",
    "newest",
    "latest",
    "more",
    "different",
    "other",
    "real",
];

/// The kind of thing "do you sell running shoes?" asks about: the object's words up to a
/// clause end or a preposition ("toys for toddlers": "toys"), the last one its head.
/// `None` when the message does not ask whether the shop sells goods. Only the verbs of
/// selling count: "do you have ..." asks as often about a store, an app or a discount as
/// about a product. "do you sell it in blue" is about the product discussed before.
pub fn sold_kind(text: &str) -> Option<Kind> {
    // Clause by clause: "Hi, do you sell kettles? Thanks!" asks for kettles.
    text.split(['?', '!', ';', ',', '\n'])
        .flat_map(|s| s.split(". "))
        .find_map(clause_kind)
}

/// "what about tablets?" right after "do you sell laptops?": the same question about
/// another kind. `previous` is the customer's message before this one.
pub fn follow_up_kind(text: &str, previous: Option<&str>) -> Option<Kind> {
    sold_kind(previous?)?;
    let object = answers::follow_up(text)?;
    if object.iter().any(|w| NOT_KINDS.contains(&w.as_str())) {
        return None;
    }
    clause_kind(&format!("do you sell {}", object.join(" ")))
}

/// Words of a follow-up that ask about the shop's service, not a kind of goods: "and
/// shipping?", "what about the refund", "and when will it arrive".
#[rustfmt::skip]
const NOT_KINDS: &[&str] = &[
    "shipping", "delivery", "deliveries", "postage", "refund", "refunds", "return", "returns",
    "exchange", "exchanges", "warranty", "guarantee", "payment", "payments", "order", "orders",
    "price", "prices", "discount", "discounts", "stock", "size", "sizes", "colour", "colours",
    "color", "colors", "when", "where", "how", "why", "what", "which", "who", "will", "can",
    "could", "would", "is", "are", "does", "do", "arrive", "cost", "costs", "it", "that", "this",
    "them", "those", "me", "my", "you", "your", "tracking", "invoice", "account",
];

/// The kind a clause asks for, when it is the question.
fn clause_kind(clause: &str) -> Option<Kind> {
    let w = words(clause);
    let mut w: Vec<&str> = w.iter().map(String::as_str).collect();
    while w.first().is_some_and(|x| GREETINGS.contains(x)) {
        w.remove(0);
    }
    let rest: &[&str] = match w.as_slice() {
        ["do" | "does", "you", "guys", rest @ ..]
        | ["do" | "does", "y", "all", rest @ ..]
        | ["do" | "does", "you" | "u" | "ya" | "yall", rest @ ..]
        | ["do" | "does", "the" | "your", "shop" | "store", rest @ ..]
        | ["are", "you", "guys", rest @ ..]
        | ["are", "you", rest @ ..] => rest,
        _ => return None,
    };
    let rest = match rest {
        [adverb, rest @ ..] if ADVERBS.contains(adverb) => rest,
        _ => rest,
    };
    match rest {
        [verb, object @ ..] if SELL.contains(verb) => object_kind(object),
        _ => None,
    }
}

/// A kind asked for less directly: "I'm looking for a rain jacket", "I need a waterproof
/// jacket for hiking, what do you have?", "do you have any kettles?", "what backpacks do you
/// have?". These words ask as often for other things ("I need a refund", "do you have any
/// discounts"), so such a kind only counts when the catalogue has products of it: none of
/// it is never said to be missing.
pub fn wanted_kind(text: &str) -> Option<Kind> {
    text.split(['?', '!', ';', ',', '\n'])
        .flat_map(|s| s.split(". "))
        .find_map(|clause| {
            let w = words(clause);
            let mut w: Vec<&str> = w.iter().map(String::as_str).collect();
            while w.first().is_some_and(|x| GREETINGS.contains(x)) {
                w.remove(0);
            }
            match w.as_slice() {
                ["i", "m" | "am", "looking", "for", object @ ..]
                | ["im", "looking", "for", object @ ..]
                | ["looking", "for", object @ ..]
                | ["i", "need" | "want", object @ ..]
                | ["i", "d", "like", object @ ..]
                | ["do" | "does", "you" | "u", "have", "any", object @ ..] => {
                    // "I need to ...", "I want my ...": a determiner or a plain noun only.
                    if object.first().is_some_and(|x| *x == "to") {
                        return None;
                    }
                    object_kind(object)
                }
                // "what's the cheapest tent you have?", "cheapest kettle?"
                ["what", "s" | "is", "the", sup, object @ ..]
                | ["whats", "the", sup, object @ ..]
                | [sup, object @ ..]
                    if SUPERLATIVES.contains(sup) =>
                {
                    let mut object = object.to_vec();
                    while object
                        .last()
                        .is_some_and(|x| matches!(*x, "you" | "u" | "have" | "sell" | "got" | "do"))
                    {
                        object.pop();
                    }
                    object_kind(&object)
                }
                ["what" | "which", object @ .., "do", "you" | "u", "have" | "sell" | "stock"] => {
                    let object: Vec<&str> = object
                        .iter()
                        .skip_while(|x| {
                            matches!(
                                **x,
                                "kind" | "kinds" | "sort" | "sorts" | "type" | "types" | "of"
                            )
                        })
                        .copied()
                        .collect();
                    object_kind(&object)
                }
                _ => None,
            }
        })
}

/// Words before a kind that ask for one of it by a measure ("the cheapest tent").
/// Only those the answer can honour: by price, or none ("best" offers the kind).
const SUPERLATIVES: &[&str] = &["cheapest", "priciest", "best"];

/// The kind an object names: "running shoes" of "do you sell running shoes for trails".
fn object_kind(object: &[&str]) -> Option<Kind> {
    let first_word = object.first()?;
    if REFERENCES.contains(first_word)
        || NOT_GOODS.contains(first_word)
        || first_word.ends_with("ly")
    {
        return None;
    }
    let mut phrase: Vec<String> = object
        .iter()
        .skip_while(|x| DETERMINERS.contains(x))
        .take_while(|x| !ENDS.contains(x))
        .filter(|x| !OPINIONS.contains(x))
        .map(|x| x.to_string())
        .collect();
    let head = phrase.pop()?;
    Some(Kind {
        head,
        modifiers: phrase,
    })
}

/// The forms a word may stand for with a plural taken off, the word itself first: a
/// question's "knives" and a name's "Knife" share "knife", "lenses" and "Lens" share "lens",
/// "hoodies" and "Hoodie" share "hoodie". Crude, so both sides are folded and any shared
/// form counts.
fn forms(word: &str) -> Vec<String> {
    let w = word.to_lowercase();
    let mut out = vec![w.clone()];
    let cut = |n: usize| w[..w.len() - n].to_string();
    if w.len() > 4 && w.ends_with("ies") {
        out.push(format!("{}y", cut(3)));
    }
    if w.len() > 4 && w.ends_with("ves") {
        out.push(format!("{}f", cut(3)));
        out.push(format!("{}fe", cut(3)));
    }
    if w.len() > 3 && w.ends_with("es") {
        out.push(cut(2));
    }
    if w.len() > 2 && w.ends_with('s') && !w.ends_with("ss") {
        out.push(cut(1));
    }
    out
}

fn same_word(a: &str, b: &str) -> bool {
    let fb = forms(b);
    forms(a).iter().any(|f| fb.contains(f))
}

impl Kind {
    /// A product is of the kind when its name or category ends in the head ("Running
    /// shoes", "Hydrating Day Cream": a "Dress shoe" is no dress), or, for a bare name, its
    /// brand is the head ("do you sell stridewell?"); and its record (name, category, brand,
    /// description, attribute names and texts) has every other word ("wedding dresses" are
    /// not the Wrap Dress unless its record says wedding).
    pub fn fits(&self, p: &Product) -> bool {
        let category = p.category.as_deref().unwrap_or("");
        let brand = p.brand.as_deref().unwrap_or("");
        let ends_in_head = [p.name.as_str(), category]
            .iter()
            .any(|t| words(t).last().is_some_and(|w| same_word(w, &self.head)));
        let is_brand =
            self.modifiers.is_empty() && words(brand).iter().any(|w| same_word(w, &self.head));
        if !ends_in_head && !is_brand {
            return false;
        }
        let mut record = format!(
            "{} {category} {brand} {}",
            p.name,
            p.description.as_deref().unwrap_or("")
        );
        for (key, value) in &p.attributes {
            record.push(' ');
            record.push_str(&key.replace('_', " "));
            if let Some(text) = value.as_str() {
                record.push(' ');
                record.push_str(text);
            }
        }
        let record = words(&record);
        self.modifiers
            .iter()
            .all(|m| record.iter().any(|w| same_word(w, m)))
    }
}

/// Products of a kind among those a search found (its best few), best first, at most
/// three (the ones a customer can pick by position).
pub fn products_of_kind(found: &Found, kind: &Kind, catalog: &dyn Catalog) -> Vec<Product> {
    found
        .products
        .iter()
        .filter_map(|h| catalog.product(&h.id))
        .filter(|p| kind.fits(p))
        .collect()
}

/// "Yes, we have these" for several products of the kind asked about.
pub fn some_of_kind(products: &[Product]) -> String {
    format!(
        "We do, for example {}. Which one would you like to know more about?",
        listed(products, "and")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str, category: &str, description: &str) -> Product {
        serde_json::from_value(serde_json::json!({
            "sku": "S-1", "name": name, "brand": "Stridewell", "category": category,
            "description": description, "price": {"amount": 129.0, "currency": "EUR"},
            "stock": 14, "attributes": {"waterproof": true, "terrain": "trail"}
        }))
        .unwrap()
    }

    #[test]
    fn questions_whether_the_shop_sells_a_kind_of_thing_name_the_kind() {
        for (text, head, modifiers) in [
            ("do you sell kayaks?", "kayaks", &[][..]),
            ("Hi, do you guys sell golf clubs", "clubs", &["golf"][..]),
            ("does your shop stock pet food", "food", &["pet"]),
            (
                "do you still carry espresso machines",
                "machines",
                &["espresso"],
            ),
            (
                "hi there, are you guys selling electric scooters",
                "scooters",
                &["electric"],
            ),
            ("do u sell any toys for toddlers?", "toys", &[]),
            ("do y'all sell batteries", "batteries", &[]),
            ("do you sell running shoes online", "shoes", &["running"]),
            ("Do you sell kettles? Thanks!", "kettles", &[]),
            (
                "Do you sell cheap kettles? I need one for work",
                "kettles",
                &[],
            ),
            ("do you sell stridewell", "stridewell", &[]),
        ] {
            let kind = sold_kind(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(kind.head, head, "{text}");
            assert_eq!(kind.modifiers, modifiers, "{text}");
        }
        for no in [
            "do you have a store in munich",
            "do you have a student discount",
            "do you sell it in blue?",
            "can I sell my old phone to you",
            "do you ship to norway",
            "where do you sell the trailrunner",
            "do you sell",
            "do you sell my data?",
            "do you sell internationally",
            "do you carry out repairs",
            "do you sell wholesale",
            "do you sell gift cards",
            "💡 do you sell ✨",
        ] {
            assert_eq!(sold_kind(no), None, "{no}");
        }
    }

    #[test]
    fn a_kind_wanted_in_other_words_is_read_too() {
        let head = |text: &str| wanted_kind(text).map(|k| (k.head, k.modifiers));
        assert_eq!(
            head("what's the cheapest tent you have?"),
            Some(("tent".into(), vec![]))
        );
        assert_eq!(head("cheapest kettle?"), Some(("kettle".into(), vec![])));
        assert_eq!(
            head("best running shoes"),
            Some(("shoes".into(), vec!["running".into()]))
        );
        let kind =
            |h: &str, m: &[&str]| Some((h.to_string(), m.iter().map(|x| x.to_string()).collect()));
        assert_eq!(
            head("I need a waterproof jacket for hiking, what do you have?"),
            kind("jacket", &["waterproof"])
        );
        assert_eq!(
            head("hi, I'm looking for a rain jacket"),
            kind("jacket", &["rain"])
        );
        assert_eq!(head("do you have any kettles?"), kind("kettles", &[]));
        assert_eq!(
            head("I'm looking for running shoes"),
            kind("shoes", &["running"])
        );
        assert_eq!(head("what backpacks do you have"), kind("backpacks", &[]));
        assert_eq!(
            head("what kind of headphones do you sell"),
            kind("headphones", &[])
        );
        for text in [
            "I need to return my order",
            "I want my money back",
            "I'm looking for my order",
            "where is my order",
        ] {
            assert_eq!(head(text), None, "{text}");
        }
    }

    #[test]
    fn what_about_follows_a_question_on_a_kind_only_for_goods() {
        let before = Some("do you sell laptops?");
        let kind = |text: &str| follow_up_kind(text, before).map(|k| k.head);
        assert_eq!(kind("ok what about tablets"), Some("tablets".to_string()));
        assert_eq!(kind("and gaming mice?"), Some("mice".to_string()));
        for text in [
            "what about the refund",
            "and shipping?",
            "and when will it arrive",
        ] {
            assert_eq!(kind(text), None, "{text}");
        }
        assert_eq!(
            follow_up_kind("what about tablets", Some("where is my order")),
            None
        );
        assert_eq!(follow_up_kind("what about tablets", None), None);
    }

    #[test]
    fn plurals_fold_on_both_sides() {
        for (asked, named) in [
            ("kettles", "Kettle"),
            ("glasses", "glass"),
            ("watches", "Watch"),
            ("shoes", "shoe"),
            ("knives", "Knife"),
            ("lenses", "Lens"),
            ("hoodies", "Hoodie"),
            ("batteries", "battery"),
            ("axes", "Axe"),
            ("tvs", "TV"),
            ("dresses", "Dress"),
            ("Größen", "größen"),
        ] {
            assert!(same_word(asked, named), "{asked} / {named}");
        }
        assert!(!same_word("dress", "dresser"));
        assert!(!same_word("cap", "cape"));
    }

    #[test]
    fn a_product_is_of_a_kind_by_the_head_its_name_or_category_ends_in_and_every_other_word() {
        let kind = |q: &str| sold_kind(q).unwrap();
        let oxford = product(
            "Ashford Oxford",
            "Dress shoes",
            "Leather oxford for weddings and the office.",
        );
        let runner = product("Trailrunner 2", "Running shoes", "Trail shoe.");
        assert!(kind("do you sell running shoes").fits(&runner));
        assert!(
            kind("do you sell waterproof shoes").fits(&runner),
            "an attribute"
        );
        assert!(kind("do you sell shoes").fits(&oxford));
        assert!(kind("do you sell stridewell").fits(&oxford), "the brand");
        assert!(!kind("do you sell wedding dresses").fits(&oxford));
        assert!(!kind("do you sell hiking shoes").fits(&runner));
        assert!(!kind("do you sell kayaks").fits(&runner));
    }

    #[test]
    fn several_products_of_a_kind_are_listed_to_pick_from() {
        let a = product("Trailrunner 2", "Running shoes", "");
        let b = product("Roadglide 5", "Running shoes", "");
        assert_eq!(
            some_of_kind(&[a, b]),
            "We do, for example the Trailrunner 2 (EUR 129.00) and the Roadglide 5 (EUR 129.00). \
             Which one would you like to know more about?"
        );
    }
}
