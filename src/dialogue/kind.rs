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
    // "any idea ...", "any news on my order?"
    "idea",
    "chance",
    "way",
    "news",
    "update",
    "updates",
    "luck",
    "word",
    "info",
    "information",
    "help",
    "reason",
    "problem",
    "issue",
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
    "similar",
    "alternative",
];

/// The kind of thing "do you sell running shoes?" asks about: the object's words up to a
/// clause end or a preposition ("toys for toddlers": "toys"), the last one its head.
/// `None` when the message does not ask whether the shop sells goods. Only the verbs of
/// selling count: "do you have ..." asks as often about a store, an app or a discount as
/// about a product. "do you sell it in blue" is about the product discussed before.
pub fn sold_kind(text: &str) -> Option<Kind> {
    clauses(text).find_map(clause_kind)
}

/// A message clause by clause: "Hi, do you sell kettles? Thanks!" asks for kettles.
fn clauses(text: &str) -> impl Iterator<Item = &str> {
    text.split(['?', '!', ';', ',', '\n'])
        .flat_map(|s| s.split(". "))
}

/// A clause's words, the greetings before them left out.
fn clause_words(clause: &str) -> Vec<String> {
    let mut w = words(clause);
    let greetings = w
        .iter()
        .take_while(|x| GREETINGS.contains(&x.as_str()))
        .count();
    w.drain(..greetings);
    w
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
    let w = clause_words(clause);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
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
/// jacket for hiking, what do you have?", "do you have any kettles?", "do you have warm
/// boots?", "what backpacks do you have?". These words ask as often for other things ("I need a refund", "do you have any
/// discounts"), so such a kind only counts when the catalogue has products of it: none of
/// it is never said to be missing.
pub fn wanted_kind(text: &str) -> Option<Kind> {
    clauses(text).find_map(wanted_in)
}

/// The kind one clause asks for, as [`wanted_kind`] reads it.
fn wanted_in(clause: &str) -> Option<Kind> {
    let w = clause_words(clause);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["i", "m" | "am", "looking", "for", object @ ..]
        | ["im", "looking", "for", object @ ..]
        | ["looking", "for", object @ ..]
        | ["i", "need" | "want", object @ ..]
        | ["i", "d", "like", object @ ..]
        | ["do" | "does", "you" | "u", "have", "any", object @ ..]
        | ["can" | "could", "you" | "u", "recommend" | "suggest", object @ ..]
        | ["recommend" | "suggest", object @ ..]
        | ["any", "recommendations" | "suggestions", "for", object @ ..]
        | ["any" | "anything", "similar" | "like" | "else" | "other", object @ ..]
        | ["any", object @ ..] => {
            // "can you recommend me a tent": the tent.
            let object = match object {
                ["me" | "us", rest @ ..] => rest,
                _ => object,
            };
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
        ["what" | "which", object @ .., "do", "you" | "u", "have" | "sell" | "stock" | "recommend" | "suggest"] =>
        {
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
        // "do you have warm boots?"; "do you have the trailrunner 2?" names one
        // product, for the search.
        ["do" | "does", "you" | "u", "have", object @ ..]
            if object
                .first()
                .is_some_and(|x| !matches!(*x, "the" | "this" | "that" | "these" | "those")) =>
        {
            object_kind(object)
        }
        _ => None,
    }
}

/// The kind a clause "do you have ..." asks for ("do you have warm boots for winter, size
/// 39?"): a question about what the shop has, whatever order request the model reads in it
/// (it reads an exchange, for the size). The kind is that clause's own: "I'd like the jacket
/// in a bigger size, do you have it?" asks for no kind. "do you have the trailrunner 2?"
/// names one product, for the search. Like [`wanted_kind`], it only counts when the
/// catalogue has products of it ("do you have a student discount?").
pub fn stocked_kind(text: &str) -> Option<Kind> {
    clauses(text).find_map(|clause| {
        let w = clause_words(clause);
        let asks = matches!(
            w.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            ["do" | "does", "you" | "u", "have", ..]
        );
        asks.then(|| wanted_in(clause)).flatten()
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
        // "size 42 hiking boots": the size is checked against the listed sizes, apart.
        .filter(|x| !matches!(**x, "size" | "sizes") && !x.chars().all(|c| c.is_ascii_digit()))
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
        (ends_in_head || is_brand) && self.met(p) == self.modifiers.len()
    }

    /// How many of the words before the head a product's record (name, category, brand,
    /// description, attribute names and texts) has.
    fn met(&self, p: &Product) -> usize {
        let category = p.category.as_deref().unwrap_or("");
        let brand = p.brand.as_deref().unwrap_or("");
        let mut record = format!(
            "{} {category} {brand} {}",
            p.name,
            p.description.as_deref().unwrap_or("")
        );
        for (key, value) in &p.attributes {
            // "waterproof": false says the product is not.
            if value == &serde_json::Value::Bool(false) {
                continue;
            }
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
            .filter(|m| record.iter().any(|w| same_word(w, m)))
            .count()
    }

    /// The kind as the customer wrote it: "waterproof hiking boots".
    pub fn phrase(&self) -> String {
        let mut words = self.modifiers.clone();
        words.push(self.head.clone());
        words.join(" ")
    }
}

/// Products of a kind among all the candidates a search found, best first.
pub fn products_of_kind(found: &Found, kind: &Kind, catalog: &dyn Catalog) -> Vec<Product> {
    found
        .products
        .iter()
        .chain(&found.more_products)
        .filter_map(|h| catalog.product(&h.id))
        .filter(|p| kind.fits(p))
        .collect()
}

/// When no product found is all the kind asks ("waterproof hiking boots"), those the shop
/// files under its head alone (category "Boots"), the ones with more of the other words
/// first ("waterproof" boots before "Chelsea" ones), in the search's order otherwise. Only a
/// category that is the head itself: "garden furniture sets" are nothing like the
/// "Cookware sets", nor "sewing machines" like the "Coffee machines". None for a bare head.
pub fn nearest_of_kind(found: &Found, kind: &Kind, catalog: &dyn Catalog) -> Vec<Product> {
    if kind.modifiers.is_empty() {
        return Vec::new();
    }
    let filed_under_head = |p: &Product| {
        let category = words(p.category.as_deref().unwrap_or(""));
        matches!(category.as_slice(), [c] if same_word(c, &kind.head))
    };
    let mut near: Vec<(usize, Product)> = found
        .products
        .iter()
        .chain(&found.more_products)
        .filter_map(|h| catalog.product(&h.id))
        .filter(|p| filed_under_head(p))
        .map(|p| (kind.met(&p), p))
        .collect();
    // Stable: equals keep the search's order.
    near.sort_by_key(|(met, _)| std::cmp::Reverse(*met));
    near.into_iter().map(|(_, p)| p).collect()
}

/// The products nearest to a kind the catalogue does not have as asked.
pub fn nearest(products: &[Product]) -> String {
    let question = match products {
        [_] => "Would you like to know more about it?",
        _ => "Which one would you like to know more about?",
    };
    format!(
        "The closest I found: {}. {question}",
        listed(products, "and")
    )
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
            head("can you recommend headphones for running?"),
            kind("headphones", &[])
        );
        assert_eq!(
            head("could you recommend me a good tent"),
            kind("tent", &[])
        );
        assert_eq!(
            head("any recommendations for hiking boots?"),
            kind("boots", &["hiking"])
        );
        assert_eq!(head("which kettle do you recommend"), kind("kettle", &[]));
        assert_eq!(
            head("any similar tent that's available now?"),
            kind("tent", &[])
        );
        assert_eq!(head("anything like a tent?"), kind("tent", &[]));
        assert_eq!(head("any update on my order?"), None);
        assert_eq!(head("any idea when sold out stuff comes back in"), None);
        // A size is checked against the listed sizes, not looked for in the record's words.
        assert_eq!(
            head("do you have any size 42 hiking boots?"),
            kind("boots", &["hiking"])
        );
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
        let mut wet = runner.clone();
        wet.attributes
            .insert("waterproof".into(), serde_json::json!(false));
        assert!(
            !kind("do you sell waterproof shoes").fits(&wet),
            "an attribute the record says it lacks"
        );
        assert!(!kind("do you sell kayaks").fits(&runner));
    }

    /// Products by SKU.
    struct Shelf(Vec<Product>);

    impl Catalog for Shelf {
        fn article(&self, _: &str) -> Option<crate::wire::Article> {
            None
        }
        fn product(&self, sku: &str) -> Option<Product> {
            self.0.iter().find(|p| p.sku == sku).cloned()
        }
    }

    fn found(skus: &[&str]) -> Found {
        let hit = |id: &str| crate::retrieval::Hit {
            kind: crate::wire::SourceKind::Product,
            id: id.to_string(),
            score: 0.8,
            margin: -0.2,
            confident: false,
            candidate: crate::retrieval::Candidate {
                id: id.to_string(),
                semantic: 0.8,
                second_semantic: None,
                bm25: 0.0,
                name_coverage: 0.0,
                covered: 0.0,
            },
        };
        Found {
            products: skus.iter().map(|s| hit(s)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_nearest_to_a_kind_not_found_share_its_head_more_of_its_words_first() {
        let with = |sku: &str, name: &str, category: &str, waterproof: bool| {
            let mut p = product(name, category, "Leather boot.");
            p.sku = sku.into();
            p.attributes.clear();
            if waterproof {
                p.attributes
                    .insert("waterproof".into(), serde_json::json!(true));
            }
            p
        };
        let shelf = Shelf(vec![
            with("B-1", "Bramley Chelsea Boot", "Boots", false),
            with("B-2", "Commuter Boot", "Boots", true),
            with("S-1", "Trailrunner 2", "Running shoes", true),
        ]);
        let all = found(&["B-1", "S-1", "B-2"]);
        let kind = wanted_kind("do you have any waterproof hiking boots in size 42?").unwrap();
        assert!(products_of_kind(&all, &kind, &shelf).is_empty());
        let near: Vec<String> = nearest_of_kind(&all, &kind, &shelf)
            .into_iter()
            .map(|p| p.sku)
            .collect();
        assert_eq!(near, ["B-2", "B-1"], "the waterproof boot first, no shoes");
        assert_eq!(kind.phrase(), "waterproof hiking boots");
        // A product of the kind ranked after the best five is found all the same.
        let mut later = found(&["B-1"]);
        later.more_products = found(&["S-1", "B-2"]).products;
        let running = sold_kind("do you sell running shoes").unwrap();
        let fit: Vec<String> = products_of_kind(&later, &running, &shelf)
            .into_iter()
            .map(|p| p.sku)
            .collect();
        assert_eq!(fit, ["S-1"]);
        // Only what the shop files under the head itself is near: no "Cookware sets" for
        // garden furniture sets.
        let cookware = Shelf(vec![with(
            "C-1",
            "Stainless Cookware Set",
            "Cookware sets",
            false,
        )]);
        let sets = sold_kind("do you sell garden furniture sets").unwrap();
        assert!(nearest_of_kind(&found(&["C-1"]), &sets, &cookware).is_empty());
        // A bare head has nothing nearer than itself.
        let kayaks = sold_kind("do you sell kayaks").unwrap();
        assert!(nearest_of_kind(&all, &kayaks, &shelf).is_empty());
        assert_eq!(
            nearest(&shelf.0[..2]),
            "The closest I found: the Bramley Chelsea Boot (EUR 129.00) and the Commuter Boot \
             (EUR 129.00). Which one would you like to know more about?"
        );
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
