//! Answers from the shop's own knowledge: a help article's text, or a product's live record
//! (price, stock, the attribute asked about). Nothing is invented: an article answer is the
//! article's body, a product answer fills a fixed sentence from the record.

use serde_json::Value;

use super::Context;
use crate::retrieval::Found;
use crate::wire::{Article, Product, Source, SourceKind};

/// Read access to the articles and products, as live as their topics.
pub trait Catalog {
    fn article(&self, id: &str) -> Option<Article>;
    fn product(&self, sku: &str) -> Option<Product>;
}

/// A catalogue with nothing in it (tools and tests that have no knowledge topics).
pub struct NoCatalog;

impl Catalog for NoCatalog {
    fn article(&self, _: &str) -> Option<Article> {
        None
    }
    fn product(&self, _: &str) -> Option<Product> {
        None
    }
}

/// A chat reply quotes at most this much of an article; the link has the rest.
pub(super) const MAX_ANSWER_CHARS: usize = 700;

/// An article's answer: its body, cut at a sentence end to chat size, with its title and
/// link.
pub fn article_answer(a: &Article) -> (String, Source) {
    let body = a.body.trim();
    let mut text = if body.chars().count() <= MAX_ANSWER_CHARS {
        body.to_string()
    } else {
        let cut: String = body.chars().take(MAX_ANSWER_CHARS).collect();
        // A sentence ends at . ! or ? followed by a space: never inside "EUR 4.95" or a link.
        let end = cut
            .char_indices()
            .zip(cut.chars().skip(1))
            .filter(|((_, c), next)| matches!(c, '.' | '!' | '?') && next.is_whitespace())
            .map(|((i, c), _)| i + c.len_utf8())
            .last();
        match end {
            Some(end) if cut[..end].chars().count() > MAX_ANSWER_CHARS / 3 => {
                cut[..end].to_string()
            }
            _ => format!("{}...", cut.trim_end()),
        }
    };
    text.push_str(&super::articles::more(a));
    (text, article_source(a))
}

/// Where an article answer came from, for the reply's `source`.
pub fn article_source(a: &Article) -> Source {
    Source {
        kind: SourceKind::Article,
        id: a.id.clone(),
        title: a.title.clone(),
    }
}

/// Words of the question, lower case.
pub(super) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '.')
        .map(|w| w.trim_matches('.').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Question words that point at an attribute key, beyond the key's own words.
const SYNONYMS: &[(&str, &[&str])] = &[
    ("colour", &["color", "colors", "colours"]),
    ("colours", &["color", "colors"]),
    ("color", &["colors", "colour"]),
    ("size", &["sizes"]),
    ("fit", &["sizes"]),
    ("battery", &["battery_life_h", "battery_life"]),
    ("rain", &["waterproof", "water_resistance"]),
    ("wet", &["waterproof", "water_resistance"]),
    ("water", &["waterproof", "water_resistance"]),
    ("waterproof", &["water_resistance"]),
    ("heavy", &["weight_g", "weight_kg", "weight"]),
    ("heavier", &["weight_g", "weight_kg", "weight"]),
    ("heaviest", &["weight_g", "weight_kg", "weight"]),
    ("lighter", &["weight_g", "weight_kg", "weight"]),
    ("lightest", &["weight_g", "weight_kg", "weight"]),
    ("bigger", &["dimensions_cm", "capacity_l", "size"]),
    ("biggest", &["dimensions_cm", "capacity_l", "size"]),
    ("larger", &["dimensions_cm", "capacity_l", "size"]),
    ("smaller", &["dimensions_cm", "capacity_l", "size"]),
    ("weigh", &["weight_g", "weight_kg", "weight"]),
    ("big", &["dimensions_cm", "capacity_l", "size"]),
    ("hold", &["capacity_l", "capacity"]),
    ("capacity", &["capacity_l"]),
    ("litres", &["capacity_l"]),
    ("liters", &["capacity_l"]),
    ("power", &["wattage_w", "power_w"]),
    ("watts", &["wattage_w", "power_w"]),
    ("made", &["material", "materials"]),
    ("age", &["age", "age_range"]),
    ("old", &["age", "age_range"]),
    ("noise", &["noise_cancelling"]),
    ("people", &["persons", "capacity_persons"]),
    ("sleep", &["persons", "capacity_persons"]),
    ("sleeps", &["persons", "capacity_persons"]),
    ("anc", &["noise_cancelling"]),
    ("warm", TEMPERATURE_RATINGS),
    ("warmer", TEMPERATURE_RATINGS),
    ("warmest", TEMPERATURE_RATINGS),
    ("cold", TEMPERATURE_RATINGS),
    ("degrees", TEMPERATURE_RATINGS),
    ("temperature", TEMPERATURE_RATINGS),
];

/// How cold a sleeping bag or a jacket is rated for ("is it warm enough for -10?"); not a
/// kettle's temperature control or a lamp's colour temperature.
const TEMPERATURE_RATINGS: &[&str] = &["comfort_temp_c", "limit_temp_c", "temperature_rating_c"];

/// Unit suffixes in attribute keys (`capacity_l`, `weight_g`) that say nothing about what
/// the customer asks.
const UNIT_PARTS: &[&str] = &["l", "g", "kg", "w", "h", "cm", "mm", "ml", "v", "mah", "in"];

fn key_words(key: &str) -> Vec<String> {
    key.split(['_', '-', ' '])
        .map(str::to_lowercase)
        .filter(|p| !p.is_empty() && !UNIT_PARTS.contains(&p.as_str()))
        .collect()
}

/// The attributes the question asks about, by key: by name ("what sizes"), by a synonym
/// ("is it heavy"), or by one of the values listed ("do you have it in blue", "in 42").
pub(super) fn asked_attributes<'p>(
    p: &'p Product,
    question: &[String],
    name: &[String],
) -> Vec<(&'p String, &'p Value)> {
    let stems: Vec<String> = question.iter().map(|w| stem(w)).collect();
    p.attributes
        .iter()
        .filter(|(key, value)| {
            let kw = key_words(key);
            kw.iter().any(|k| stems.contains(&stem(k)))
                || SYNONYMS
                    .iter()
                    .any(|(word, keys)| stems.contains(&stem(word)) && keys.contains(&key.as_str()))
                || named_value(value, question, name).is_some()
                || (is_size(key) && asked_size(question, name).is_some())
                || (key.to_lowercase().contains("colo") && colour_asked(question, name).is_some())
        })
        .collect()
}

/// Colour names: a question naming one asks for the colours ("in light blue?"), even one
/// the record does not list.
#[rustfmt::skip]
const COLOURS: &[&str] = &[
    "black", "white", "grey", "gray", "silver", "gold", "red", "pink", "orange", "yellow",
    "green", "blue", "navy", "purple", "violet", "brown", "beige", "cream", "olive", "teal",
    "turquoise", "khaki", "burgundy", "charcoal", "ivory", "rose", "copper", "bronze",
];

fn is_size(key: &str) -> bool {
    key.to_lowercase().contains("size")
}

/// Words too common to name a listed value ("the", "have") on their own.
const NOT_VALUES: &[&str] = &[
    "the", "and", "for", "with", "you", "your", "have", "has", "does", "come", "comes", "any",
    "one", "them", "they", "this", "that", "can", "get", "are", "what", "which", "how", "much",
    "size", "sizes", "colour", "colours", "color", "colors", "also", "still", "too", "there",
];

/// The value of a listed attribute (sizes, colours, uses) that the question names, as the
/// record writes it: "matt black" for "in black". Words of the product's own name do not
/// count ("Trailrunner 2" does not ask for size 2); a short word only names a value that is
/// exactly that word ("XL"), and a single letter only after "in" or "size" ("in M", not the
/// "s" of "what's").
fn named_value(v: &Value, question: &[String], name: &[String]) -> Option<String> {
    let Value::Array(items) = v else {
        return None;
    };
    let listed: Vec<(String, Vec<String>)> = items
        .iter()
        .map(value_text)
        .map(|text| {
            let w = words(&text);
            (text, w)
        })
        .filter(|(_, w)| !w.is_empty() && w.len() <= 3)
        .collect();
    question.iter().enumerate().find_map(|(i, w)| {
        if name.contains(w) || NOT_VALUES.contains(&w.as_str()) {
            return None;
        }
        let number = w.chars().all(|c| c.is_ascii_digit());
        if number && counts_something(question, i) {
            return None;
        }
        let before = i.checked_sub(1).map(|j| question[j].as_str());
        let after_in = matches!(before, Some("in" | "size"));
        // A value of several words named in part ("black" for "matt black") counts unless
        // the question says which variant it means ("light blue" is not "slate blue") or a
        // number of the value is missing ("iphone 12" is not "iPhone 15").
        let in_part = |lw: &Vec<String>| {
            lw.contains(w)
                && lw
                    .iter()
                    .all(|x| question.contains(x) || !x.chars().any(|c| c.is_ascii_digit()))
                && (lw.iter().all(|x| question.contains(x))
                    || before.is_none_or(|b| lw.contains(&b.to_string()) || LEADS.contains(&b)))
        };
        let fits = |lw: &Vec<String>| match w.chars().count() {
            _ if number => lw.len() == 1 && &lw[0] == w,
            1 => after_in && lw.len() == 1 && &lw[0] == w,
            2 => lw.len() == 1 && &lw[0] == w,
            _ => in_part(lw),
        };
        listed
            .iter()
            .find(|(_, lw)| fits(lw))
            .map(|(text, _)| text.clone())
    })
}

/// Words that may come right before a listed value without saying which variant: "come in
/// black", "any black ones", "is it black".
const LEADS: &[&str] = &[
    "in",
    "a",
    "an",
    "the",
    "any",
    "it",
    "come",
    "comes",
    "have",
    "has",
    "got",
    "available",
    "also",
    "or",
    "and",
    "with",
    "is",
    "do",
    "does",
    "get",
    "for",
    "of",
    "my",
];

/// Words after a number that make it a count, not a size or a listed value: "in 2 days",
/// "within 30 days", "3 times".
const QUANTITIES: &[&str] = &[
    "day", "days", "week", "weeks", "hour", "hours", "hrs", "minute", "minutes", "min", "mins",
    "month", "months", "year", "years", "working", "business", "times", "pieces", "pcs", "items",
    "euro", "euros", "eur", "percent", "am", "pm", "kg", "g", "km", "cm", "mm",
];

/// Whether the number at `i` counts something ("in 2 days").
fn counts_something(question: &[String], i: usize) -> bool {
    question
        .get(i + 1)
        .is_some_and(|next| QUANTITIES.contains(&next.as_str()))
}

/// A size the question asks for, listed or not: a short number after "in" or "size" ("do
/// you have it in 42", "size 48?") that is not part of the product's name or a count ("in
/// 2 days").
fn asked_size<'q>(question: &'q [String], name: &[String]) -> Option<&'q String> {
    question.iter().enumerate().find_map(|(i, w)| {
        let number =
            w.len() <= 4 && w.chars().all(|c| c.is_ascii_digit()) && !counts_something(question, i);
        let after = i
            .checked_sub(1)
            .is_some_and(|j| matches!(question[j].as_str(), "in" | "size" | "eu" | "uk" | "us"));
        (number && after && !name.contains(w)).then_some(w)
    })
}

/// Whether a product comes in the size the question asks for ("boots in size 42"): `None`
/// when it asks for none or the record lists no sizes.
pub fn comes_in_asked_size(p: &Product, text: &str) -> Option<bool> {
    let question = words(text);
    let size = asked_size(&question, &words(&p.name))?;
    let listed: Vec<String> = p
        .attributes
        .iter()
        .filter(|(key, _)| is_size(key))
        .filter_map(|(_, v)| v.as_array())
        .flatten()
        .map(value_text)
        .collect();
    (!listed.is_empty()).then(|| listed.iter().any(|s| s.eq_ignore_ascii_case(size)))
}

/// Crude English stemming for matching attribute names: "sizes" / "size", "colours".
pub(super) fn stem(w: &str) -> String {
    let w = w.to_lowercase();
    // "-es" only after a hissing sound ("boxes", "watches"): "stores" and "sizes" are
    // "store" and "size", not "stor" and "siz", so they share a stem with the singular.
    let hissing = ["sses", "xes", "zzes", "ches", "shes"]
        .iter()
        .any(|e| w.ends_with(e));
    for suffix in ["ing", "es", "s"] {
        // "glass" and "dress" are no plurals.
        if (suffix == "es" && !hissing) || (suffix == "s" && w.ends_with("ss")) {
            continue;
        }
        if w.len() > suffix.len() + 2 && w.ends_with(suffix) {
            return w[..w.len() - suffix.len()].to_string();
        }
    }
    w
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_text).collect();
            let numbers: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
            match numbers {
                // Consecutive whole sizes read as a range: "40-46".
                Some(n)
                    if n.len() > 2
                        && n.iter().all(|x| x.fract() == 0.0)
                        && n.windows(2).all(|w| w[1] - w[0] == 1.0) =>
                {
                    format!("{}-{}", parts[0], parts[parts.len() - 1])
                }
                _ => parts.join(", "),
            }
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), value_text(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => "not given".into(),
    }
}

/// An attribute value quoted in a reply is cut to this length: the record is the shop's,
/// its size is not bounded.
const MAX_VALUE_CHARS: usize = 200;

/// Unit suffixes of attribute keys and how a reply writes them after the value:
/// `weight_g: 1050` reads "weight: 1050 g", `battery_life_months: 6` "battery life: 6 months".
/// Single letters are units only beside words that go with them: `dimensions_w` is a width,
/// not watts, and `bluetooth_v` a version, not volts.
const UNITS: &[(&str, &str, &[&str])] = &[
    (
        "l",
        "l",
        &["capacity", "volume", "tank", "litres", "liters"],
    ),
    ("w", "W", &["power", "wattage", "output", "watts"]),
    ("v", "V", &["voltage", "input", "output", "battery"]),
    (
        "h",
        "hours",
        &["battery", "life", "runtime", "playtime", "charging", "time"],
    ),
    ("ml", "ml", &[]),
    ("g", "g", &[]),
    ("kg", "kg", &[]),
    ("mah", "mAh", &[]),
    ("hours", "hours", &[]),
    ("minutes", "minutes", &[]),
    ("days", "days", &[]),
    ("months", "months", &[]),
    ("years", "years", &[]),
    ("cm", "cm", &[]),
    ("mm", "mm", &[]),
    ("in", "inches", &[]),
    ("inches", "inches", &[]),
    ("db", "dB", &[]),
    ("hz", "Hz", &[]),
    ("gb", "GB", &[]),
    ("tb", "TB", &[]),
    ("pct", "%", &[]),
    ("c", "°C", &["temp", "temperature"]),
    ("percent", "%", &[]),
];

/// An attribute key as words for the reply, and the unit its values are in.
fn label_and_unit(key: &str) -> (String, Option<&'static str>) {
    let parts: Vec<String> = key
        .split(['_', '-', ' '])
        .map(str::to_lowercase)
        .filter(|p| !p.is_empty())
        .collect();
    let unit = match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => UNITS
            .iter()
            .find(|(suffix, _, with)| {
                suffix == last
                    && (with.is_empty() || rest.iter().any(|r| with.contains(&r.as_str())))
            })
            .map(|(_, unit, _)| *unit),
        _ => None,
    };
    match unit {
        Some(_) => (parts[..parts.len() - 1].join(" "), unit),
        None => (spelled(&parts), None),
    }
}

/// Key parts as words: the single letters of dimensions spelled out (`dimensions_w` reads
/// "dimensions width"), units without a number dropped.
fn spelled(parts: &[String]) -> String {
    parts
        .iter()
        .filter_map(|p| match p.as_str() {
            "w" => Some("width"),
            "h" => Some("height"),
            "l" => Some("length"),
            "d" => Some("depth"),
            "v" => Some("version"),
            p if UNIT_PARTS.contains(&p) => None,
            p => Some(p),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_numeric(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_number),
        Value::String(s) => s.trim().parse::<f64>().is_ok(),
        _ => false,
    }
}

/// A number (or numbers) with its unit: "6 months", "30, 50 l", "1 year", "80%".
fn with_unit(v: &Value, text: String, unit: &str) -> String {
    if unit == "%" {
        return format!("{text}%");
    }
    let one = v.as_f64() == Some(1.0) || text.trim() == "1";
    let unit = match unit.strip_suffix('s') {
        Some(singular) if one && unit.len() > 3 => singular,
        _ => unit,
    };
    format!("{text} {unit}")
}

/// One sentence about an attribute. For a list (sizes, colours), it also says whether what
/// the customer named is one of them; for sizes, a number the customer asked for that is
/// not listed is said not to be.
pub(super) fn attribute_sentence(
    key: &str,
    v: &Value,
    question: &[String],
    name: &[String],
) -> String {
    let (label, unit) = label_and_unit(key);
    let mut value = value_text(v);
    if value.chars().count() > MAX_VALUE_CHARS {
        value = format!(
            "{}...",
            value.chars().take(MAX_VALUE_CHARS).collect::<String>()
        );
    }
    // A unit goes after a number; with any other value the key keeps all its words
    // (`delivery_days: "2-3"` reads "delivery days: 2-3").
    let (label, value) = match unit {
        Some(unit) if is_numeric(v) => (label, with_unit(v, value, unit)),
        Some(_) => (
            spelled(
                &key.split(['_', '-', ' '])
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>(),
            ),
            value,
        ),
        None => (label, value),
    };
    let mut s = format!("{label}: {value}");
    if let Some(listed) = named_value(v, question, name) {
        s.push_str(&format!(" ({listed} is one of them)"));
    } else if let (Value::Array(_), true) = (v, is_size(key)) {
        let unlisted = asked_size(question, name).or_else(|| {
            question.iter().enumerate().find_map(|(i, w)| {
                let number = w.len() <= 4 && w.chars().all(|c| c.is_ascii_digit());
                (number && !name.contains(w) && !counts_something(question, i)).then_some(w)
            })
        });
        if let Some(w) = unlisted {
            s.push_str(&format!(" ({w} is not one of them)"));
        }
    } else if matches!(
        key.to_lowercase().as_str(),
        "color" | "colors" | "colour" | "colours"
    ) {
        if let Some(asked) = colour_asked(question, name) {
            let listed: Vec<String> = words(&value_text(v)).iter().map(|w| grey(w)).collect();
            // A colour some listed value has ("blue" of "slate blue") is not missing.
            if !asked.split(' ').any(|w| listed.contains(&grey(w))) {
                s.push_str(&format!(" (not in {asked})"));
            }
        }
    }
    s
}

/// The colour asked for after "in" ("in red?", "do you have it in rose gold") or before
/// "one" ("the light blue one"), not a colour word in passing ("for green tea", "on black
/// friday", "white noise").
fn colour_asked(question: &[String], name: &[String]) -> Option<String> {
    #[rustfmt::skip]
    const SHADES: &[&str] = &["light", "dark", "pale", "bright", "deep", "matt", "metallic"];
    let shade = |w: &String| COLOURS.contains(&w.as_str()) || SHADES.contains(&w.as_str());
    let phrase: Vec<&str> = match question.iter().position(|w| w == "in") {
        Some(at) if question.get(at + 1).is_some_and(shade) => question[at + 1..]
            .iter()
            .take_while(|w| shade(w))
            .map(String::as_str)
            .collect(),
        _ => {
            let one = question
                .iter()
                .position(|w| matches!(w.as_str(), "one" | "version" | "colour" | "color"))?;
            let start = question[..one]
                .iter()
                .rposition(|w| !shade(w))
                .map_or(0, |i| i + 1);
            question[start..one].iter().map(String::as_str).collect()
        }
    };
    let colour = phrase.iter().any(|w| COLOURS.contains(w))
        && !phrase.iter().any(|w| name.iter().any(|n| n == w));
    colour.then(|| phrase.join(" "))
}

/// One spelling of grey.
fn grey(w: &str) -> String {
    if w == "gray" {
        "grey".into()
    } else {
        w.to_string()
    }
}

/// A product answer from its live record: what was asked (if an attribute), stock, price.
/// The caller names the product as the reply's source ([`product_source`]).
pub fn product_answer(p: &Product, question: &str) -> String {
    let q = words(question);
    let mut parts = Vec::new();
    let name = words(&p.name);
    for (key, value) in asked_attributes(p, &q, &name) {
        parts.push(attribute_sentence(key, value, &q, &name));
    }
    let stock = super::shopping::stock_phrase(p.stock);
    let name = match &p.brand {
        Some(b) => format!("The {} by {b}", p.name),
        None => format!("The {}", p.name),
    };
    // Nothing asked of its attributes, but its description may answer ("does the Kettle
    // Pro keep the water warm?").
    let detail = parts
        .is_empty()
        .then(|| super::shopping::detail(p, question))
        .flatten();
    let mut text = if let Some(sentence) = detail {
        format!("{name}: {sentence} It is {stock}, {}.", p.price)
    } else if parts.is_empty() {
        format!("{name} is {stock}, {}.", p.price)
    } else {
        format!("{name}: {}. It is {stock}, {}.", parts.join("; "), p.price)
    };
    if let Some(url) = &p.url {
        text.push_str(&format!(" {url}"));
    }
    text
}

/// A reply's source when it speaks of this product.
pub fn product_source(p: &Product) -> Source {
    Source {
        kind: SourceKind::Product,
        id: p.sku.clone(),
        title: p.name.clone(),
    }
}

/// "Which one do you mean?" between products.
pub fn which_product(products: &[Product]) -> String {
    format!("Do you mean {}?", listed(products, "or"))
}

/// "the Kettle Pro (EUR 59.90), the Kettle Pro Mini (EUR 44.90) or the ...": each product
/// by name and price, the last one after `conjunction`.
pub(super) fn listed(products: &[Product], conjunction: &str) -> String {
    let names: Vec<String> = products
        .iter()
        .map(|p| format!("the {} ({})", p.name, p.price))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} {conjunction} {last}", rest.join(", "))
        }
        _ => names.concat(),
    }
}

/// Which of the offered products the customer picked: by position ("the first", "2") or
/// by the words that tell the names apart ("the mini").
pub fn pick_product(text: &str, offered: &[Product]) -> Option<usize> {
    let w = words(text);
    let ordinals = [
        ["first", "1", "1st", "former"],
        ["second", "2", "2nd", "latter"],
        ["third", "3", "3rd", "third"],
    ];
    // A name first: "trailrunner 2" is the Trailrunner 2, not the second offered.
    if let Some(i) = named(text, offered) {
        return Some(i);
    }
    // "one" is not an ordinal here: "the mini one". In a longer message only "the first
    // one" picks ("what age is the first one for?"), not "the 2 of them" or "size 1".
    let the_one = |n: &str| {
        w.windows(3)
            .any(|t| t[0] == "the" && t[1] == n && t[2] == "one")
    };
    ordinals.iter().take(offered.len()).position(|names| {
        names
            .iter()
            .any(|n| (w.len() <= 4 && w.iter().any(|x| x == n)) || the_one(n))
    })
}

/// Words that ask for a product's price or stock, which every product record has.
const PRICE_OR_STOCK: &[&str] = &[
    "price",
    "cost",
    "costs",
    "much",
    "stock",
    "available",
    "availability",
    "sold",
];

/// Further words that make a short message a question about "it": the product discussed
/// before.
const PRODUCT_CUES: &[&str] = &[
    "size",
    "sizes",
    "colour",
    "colours",
    "color",
    "colors",
    "waterproof",
    "battery",
    "weight",
    "heavy",
    "material",
    "dishwasher",
    "warranty",
    "fit",
    "come",
    "comes",
    "have",
    "capacity",
    "big",
    "wide",
    "noise",
    "wireless",
];
pub(super) const REFERENCES: &[&str] = &[
    "it", "its", "they", "them", "this", "that", "these", "those",
];

/// "what about 45?", "and in black?", "ok how about tablets": a short follow-up that asks
/// the last question again about something else; what it asks about (1 to 4 words).
pub(super) fn follow_up(text: &str) -> Option<Vec<String>> {
    let w = words(text);
    let mut w: &[String] = &w;
    while let [first, rest @ ..] = w {
        if !matches!(
            first.as_str(),
            "ok" | "okay"
                | "so"
                | "hmm"
                | "right"
                | "thanks"
                | "great"
                | "cool"
                | "nice"
                | "perfect"
                | "alright"
                | "oh"
                | "ah"
        ) {
            break;
        }
        w = rest;
    }
    let rest = match w {
        [what, about, rest @ ..] if (what == "what" || what == "how") && about == "about" => rest,
        [and, rest @ ..] if and == "and" => rest,
        _ => return None,
    };
    (1..=4).contains(&rest.len()).then(|| rest.to_vec())
}

/// "is it waterproof?", "how much is it?", "do you have it in 44?": a follow-up about the
/// product discussed before, not a new subject.
pub fn refers_to_product(text: &str) -> bool {
    let w = words(text);
    // "how much?", "price?", "in stock?": nothing but the price or stock asked for.
    const BARE: &[&str] = &[
        "how", "what", "whats", "s", "is", "the", "in", "and", "ok", "so",
    ];
    if w.len() <= 4
        && w.iter().any(|x| PRICE_OR_STOCK.contains(&x.as_str()))
        && w.iter()
            .all(|x| PRICE_OR_STOCK.contains(&x.as_str()) || BARE.contains(&x.as_str()))
    {
        return true;
    }
    // "what sizes?", "which colours do you have": nothing but an attribute asked for.
    #[rustfmt::skip]
    const ATTRIBUTES: &[&str] = &[
        "size", "sizes", "colour", "colours", "color", "colors", "weight", "material",
        "materials", "capacity", "battery", "dimensions", "measurements",
    ];
    const ASKING: &[&str] = &[
        "which", "do", "you", "have", "are", "there", "does", "it", "come", "any", "other",
    ];
    if w.len() <= 5
        && w.iter().any(|x| ATTRIBUTES.contains(&x.as_str()))
        && w.iter().all(|x| {
            [ATTRIBUTES, BARE, ASKING, PRICE_OR_STOCK]
                .iter()
                .any(|list| list.contains(&x.as_str()))
        })
    {
        return true;
    }
    w.len() <= 12
        && w.iter().any(|x| REFERENCES.contains(&x.as_str()))
        && w.iter().enumerate().any(|(i, x)| {
            PRICE_OR_STOCK.contains(&x.as_str())
                || PRODUCT_CUES.contains(&x.as_str())
                || (x.chars().all(|c| c.is_ascii_digit()) && !counts_something(&w, i))
        })
}

/// Whether a question asks about something this product's record says: one of its
/// attributes, its price or its stock. "is it waterproof?" about a shoe with a `waterproof`
/// attribute is about the shoe; "how long does it take to get a refund?" is not.
pub fn asks_about(p: &Product, question: &str) -> bool {
    let q = words(question);
    q.iter().any(|w| PRICE_OR_STOCK.contains(&w.as_str()))
        || !asked_attributes(p, &q, &words(&p.name)).is_empty()
}

/// A message phrased as a question ("can I return opened headphones?"), also after a clause
/// that sets the scene ("it already says shipped, can i still cancel", "ordered as guest,
/// where do i start a return"): customers often give the context first.
pub fn is_question(text: &str) -> bool {
    const OPENERS: &[&str] = &[
        "can", "could", "do", "does", "did", "is", "are", "how", "what", "when", "where", "which",
        "who", "why", "will", "would", "may", "should", "whats", "what's", "hows",
    ];
    let text = text.replace(" - ", ",");
    let mut clauses = text.split([',', ';', '.', '!', ':', '\n']);
    text.contains('?')
        || clauses
            .next()
            .and_then(|c| words(c).into_iter().next())
            .is_some_and(|w| OPENERS.contains(&w.as_str()))
        || clauses.any(|c| later_clause_asks(&words(c)))
}

/// A clause after the first that asks something: a question word with an auxiliary ("where
/// do i start"), or an auxiliary with its subject ("can i still cancel", "does it fit").
/// Not a request to the bot ("..., can you cancel it"), an answer ("yes, do it", "sure, why
/// not", "ok, will do") or a relative clause ("..., which i bought monday").
fn later_clause_asks(w: &[String]) -> bool {
    const AUXILIARIES: &[&str] = &[
        "can", "could", "do", "does", "did", "is", "are", "was", "were", "will", "would", "should",
        "may", "might", "have", "has", "am", "shall",
    ];
    const SUBJECTS: &[&str] = &[
        "i", "we", "you", "u", "they", "it", "he", "she", "my", "the", "this", "that", "these",
        "those", "there", "your", "our", "their", "its",
    ];
    const ASKING: &[&str] = &["how", "what", "when", "where", "which", "who", "why"];
    const DEGREE: &[&str] = &["long", "much", "many", "soon", "often", "far"];
    let (Some(first), Some(second)) = (w.first(), w.get(1)) else {
        return false;
    };
    let (f, s) = (first.as_str(), second.as_str());
    if matches!(f, "whats" | "hows") || (matches!(f, "what" | "how") && s == "s") {
        return true;
    }
    if ASKING.contains(&f) {
        return AUXILIARIES.contains(&s) || DEGREE.contains(&s);
    }
    let asks_to_act = matches!(f, "can" | "could" | "would" | "will") && matches!(s, "you" | "u");
    let imperative = f == "do" && !matches!(s, "i" | "we" | "you" | "u" | "they");
    AUXILIARIES.contains(&f) && SUBJECTS.contains(&s) && !asks_to_act && !imperative
}

/// The products a message is about: confident hits close to the best one, their live
/// records read from the catalogue (a product deleted since the search drops out). Of
/// several, the question's words decide when they can ("the Kettle Pro" names one in full,
/// "mini" belongs to one only); a family named loosely ("the brewmaster kettle") stays
/// several, to ask which; close scores of unrelated products keep only the best.
pub fn found_products(found: &Found, question: &str, ctx: &Context<'_>) -> Vec<Product> {
    let products: Vec<Product> = found
        .products(ctx.retrieval.ambiguity_margin)
        .into_iter()
        .filter_map(|h| ctx.catalog.product(&h.id))
        .take(3)
        .collect();
    if products.len() < 2 {
        return products;
    }
    if let Some(i) = named(question, &products) {
        return vec![products[i].clone()];
    }
    let family: Vec<String> = words(&products[0].name);
    let related: Vec<Product> = products
        .iter()
        .filter(|p| {
            words(&p.name)
                .iter()
                .any(|w| family.contains(w) && w.len() > 2)
        })
        .cloned()
        .collect();
    if related.len() >= 2 {
        related
    } else {
        products[..1].to_vec()
    }
}

/// The one product the question names: the most specific name it contains in full, or the
/// only one whose distinguishing words it uses.
fn named(question: &str, offered: &[Product]) -> Option<usize> {
    let q = words(question);
    let names: Vec<Vec<String>> = offered.iter().map(|p| words(&p.name)).collect();
    let full = (0..offered.len())
        .filter(|&i| !names[i].is_empty() && names[i].iter().all(|w| q.contains(w)))
        .max_by_key(|&i| names[i].len());
    if full.is_some() {
        return full;
    }
    let distinct: Vec<usize> = (0..offered.len())
        .filter(|&i| {
            names[i]
                .iter()
                .filter(|w| !FUNCTION_WORDS.contains(&w.as_str()))
                .filter(|w| {
                    names
                        .iter()
                        .enumerate()
                        .all(|(j, o)| j == i || !o.contains(w))
                })
                .any(|w| q.contains(w))
        })
        .collect();
    match distinct.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Words of a product's name that name nothing on their own: "on" of "Q3 On-Ear
/// Headphones" ("how long does it last on the q7"), "one" of "Barista One" ("I'll take the
/// black one").
pub const FUNCTION_WORDS: &[&str] = &[
    "on", "in", "of", "to", "for", "the", "and", "with", "by", "at", "from", "a", "an", "or",
    "one", "ones",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn shoe() -> Product {
        serde_json::from_value(serde_json::json!({
            "sku": "NW-SH-0001", "name": "Trailrunner 2", "brand": "Stridewell",
            "price": {"amount": 129.0, "currency": "EUR"}, "stock": 14,
            "attributes": {"sizes": [40, 41, 42, 43, 44, 45, 46], "waterproof": true, "color": "slate blue"}
        }))
        .unwrap()
    }

    #[test]
    fn a_size_asked_for_is_checked_against_the_listed_sizes() {
        assert_eq!(
            comes_in_asked_size(&shoe(), "running shoes in size 42?"),
            Some(true)
        );
        assert_eq!(comes_in_asked_size(&shoe(), "any in 38"), Some(false));
        assert_eq!(comes_in_asked_size(&shoe(), "running shoes"), None);
        assert_eq!(comes_in_asked_size(&shoe(), "delivered in 2 days?"), None);
        let mut kettle = shoe();
        kettle.attributes.clear();
        assert_eq!(comes_in_asked_size(&kettle, "in size 42"), None);
    }

    #[test]
    fn a_product_answer_fills_the_asked_attribute_from_the_record() {
        let text = product_answer(&shoe(), "do you have the trailrunner 2 in size 44?");
        let source = product_source(&shoe());
        assert_eq!(
            text,
            "The Trailrunner 2 by Stridewell: sizes: 40-46 (44 is one of them). It is in stock, EUR 129.00."
        );
        assert_eq!(source.id, "NW-SH-0001");
        let text = product_answer(&shoe(), "is it waterproof");
        assert!(text.contains("waterproof: yes"), "{text}");
        let text = product_answer(&shoe(), "size 48?");
        assert!(text.contains("48 is not one of them"), "{text}");
        let mut gone = shoe();
        gone.stock = 0;
        let text = product_answer(&gone, "how much is the trailrunner 2");
        assert_eq!(
            text,
            "The Trailrunner 2 by Stridewell is out of stock at the moment, EUR 129.00."
        );
    }

    #[test]
    fn how_warm_is_answered_from_the_temperature_ratings() {
        let bag: Product = serde_json::from_value(serde_json::json!({
            "sku": "NW-OD-0014", "name": "Down 0 Sleeping Bag",
            "price": {"amount": 249.0, "currency": "EUR"}, "stock": 6,
            "attributes": {"comfort_temp_c": 0, "limit_temp_c": -6, "weight_g": 1050}
        }))
        .unwrap();
        let text = product_answer(&bag, "is the down 0 sleeping bag warm enough for -10?");
        assert!(
            text.contains("comfort temp: 0 °C") && text.contains("limit temp: -6 °C"),
            "{text}"
        );
        assert!(!text.contains("weight"), "{text}");
    }

    #[test]
    fn a_value_named_in_the_question_is_answered_from_its_list() {
        let mut p = shoe();
        p.attributes.insert(
            "colors".into(),
            serde_json::json!(["matt black", "slate blue"]),
        );
        p.attributes
            .insert("apparel_sizes".into(), serde_json::json!(["S", "M", "XL"]));
        let text = product_answer(&p, "do you have it in 42");
        assert!(text.contains("sizes: 40-46 (42 is one of them)"), "{text}");
        let text = product_answer(&p, "do you have it in 47");
        assert!(text.contains("(47 is not one of them)"), "{text}");
        let text = product_answer(&p, "does it come in black?");
        assert!(
            text.contains("colors: matt black, slate blue (matt black is one of them)"),
            "{text}"
        );
        let text = product_answer(&p, "in XL?");
        assert!(
            text.contains("apparel sizes: S, M, XL (XL is one of them)"),
            "{text}"
        );
        let text = product_answer(&p, "do you have it in m");
        assert!(text.contains("(M is one of them)"), "{text}");
        // The "s" of "what's" and the "2" of "Trailrunner 2" name no value.
        let text = product_answer(&p, "what's the price of the trailrunner 2");
        assert!(
            !text.contains("one of them") && !text.contains("sizes"),
            "{text}"
        );
    }

    #[test]
    fn counts_partial_names_and_dimensions_are_not_misread() {
        let mut p = shoe();
        p.attributes = serde_json::from_value(serde_json::json!({
            "sizes": [28, 30, 32], "colors": ["slate blue", "matt black"],
            "compatible_with": ["iPhone 15", "iPhone 14"],
            "age_min": 3, "dimensions_w": 40, "bluetooth_v": 5.3, "delivery_days": "2-3",
            "screen_size_in": 13.3
        }))
        .unwrap();
        // A count is not a size.
        let text = product_answer(&p, "can it arrive in 2 days");
        assert!(!text.contains("one of them"), "{text}");
        let text = product_answer(&p, "can I return it within 30 days");
        assert!(!text.contains("one of them"), "{text}");
        // A variant the record does not list is not claimed.
        let text = product_answer(&p, "do you have it in light blue");
        assert!(!text.contains("is one of them"), "{text}");
        assert!(text.contains("colors: slate blue, matt black."), "{text}");
        let text = product_answer(&p, "does it work with my iphone 12");
        assert!(!text.contains("is one of them"), "{text}");
        let text = product_answer(&p, "does it work with the iphone 14");
        assert!(text.contains("(iPhone 14 is one of them)"), "{text}");
        // Letters that are not units, and units without a number.
        let text = product_answer(&p, "what age is it for");
        assert!(
            text.contains("age min: 3") && !text.contains("minutes"),
            "{text}"
        );
        let text = product_answer(&p, "what are the dimensions");
        assert!(text.contains("dimensions width: 40"), "{text}");
        let text = product_answer(&p, "which bluetooth");
        assert!(text.contains("bluetooth version: 5.3"), "{text}");
        let text = product_answer(&p, "how many delivery days");
        assert!(text.contains("delivery days: 2-3"), "{text}");
        let text = product_answer(&p, "how big is the screen");
        assert!(text.contains("screen size: 13.3 inches"), "{text}");
        // "in black" does not ask for the screen size.
        let text = product_answer(&p, "is it in black");
        assert!(!text.contains("screen"), "{text}");
    }

    #[test]
    fn units_in_attribute_keys_follow_the_value() {
        let mut p = shoe();
        p.attributes = serde_json::from_value(serde_json::json!({
            "weight_g": 1050, "battery_life_months": 6, "warranty_years": 1,
            "fits_capacity_l": [30, 50], "recycled_pct": 80, "finish": "matt"
        }))
        .unwrap();
        let text = product_answer(&p, "how heavy is it");
        assert!(text.contains(": weight: 1050 g."), "{text}");
        let text = product_answer(&p, "how long does the battery last");
        assert!(text.contains("battery life: 6 months"), "{text}");
        let text = product_answer(&p, "what warranty does it have");
        assert!(text.contains("warranty: 1 year."), "{text}");
        let text = product_answer(&p, "what capacity does it fit");
        assert!(text.contains("fits capacity: 30, 50 l"), "{text}");
        let text = product_answer(&p, "how much is recycled");
        assert!(text.contains("recycled: 80%"), "{text}");
        let text = product_answer(&p, "what finish is it");
        assert!(text.contains("finish: matt."), "{text}");
    }

    #[test]
    fn the_customer_picks_a_product_by_its_distinct_words_or_position() {
        let mk = |sku: &str, name: &str| {
            let mut p = shoe();
            p.sku = sku.into();
            p.name = name.into();
            p
        };
        let offered = [mk("a", "Kettle Pro"), mk("b", "Kettle Pro Mini")];
        assert_eq!(pick_product("the mini one", &offered), Some(1));
        assert_eq!(pick_product("the kettle pro", &offered), Some(0));
        assert_eq!(pick_product("the first", &offered), Some(0));
        assert_eq!(
            pick_product("what age is the second one for", &offered),
            Some(1)
        );
        assert_eq!(pick_product("how many of the 2 are left", &offered), None);
        assert_eq!(pick_product("no idea", &offered), None);
        // A function word of one name picks nothing: "on" of "Q3 On-Ear Headphones".
        let headphones = [mk("q3", "Q3 On-Ear Headphones"), mk("q5", "Q5 Headphones")];
        assert_eq!(
            pick_product("how long does the battery last on the q7", &headphones),
            None
        );
        assert_eq!(pick_product("the on-ear ones", &headphones), Some(0));
        assert!(which_product(&offered).starts_with("Do you mean the Kettle Pro (EUR 129.00) or"));
    }

    #[test]
    fn long_articles_are_cut_at_a_sentence_with_their_link() {
        let a: Article = serde_json::from_value(serde_json::json!({
            "id": "x", "title": "Returns", "url": "https://help.example/x",
            "body": format!("{} End.", "This sentence is long enough to count. ".repeat(30))
        }))
        .unwrap();
        let (text, source) = article_answer(&a);
        assert!(
            text.len() < 800 && text.contains(". (More: \"Returns\", https://help.example/x)"),
            "{text}"
        );
        assert_eq!(source.kind, SourceKind::Article);
    }

    #[test]
    fn a_follow_up_is_about_the_product_only_when_its_record_answers_it() {
        assert!(asks_about(&shoe(), "is it waterproof?"));
        assert!(asks_about(&shoe(), "how much is it now"));
        assert!(!asks_about(
            &shoe(),
            "how long does it take to get a refund?"
        ));
    }

    #[test]
    fn a_colour_asked_for_and_not_listed_is_said_not_to_be_there() {
        let q = |t: &str| words(t);
        let none: [String; 0] = [];
        assert_eq!(
            colour_asked(&q("do you have it in red?"), &none).as_deref(),
            Some("red")
        );
        assert_eq!(
            colour_asked(&q("q7 in rose gold?"), &none).as_deref(),
            Some("rose gold")
        );
        assert_eq!(colour_asked(&q("can i set it for green tea?"), &none), None);
        assert_eq!(colour_asked(&q("cheaper on black friday?"), &none), None);
        assert_eq!(colour_asked(&q("does it play white noise"), &none), None);
        assert_eq!(
            colour_asked(&q("is the light blue one in stock"), &none).as_deref(),
            Some("light blue")
        );
        assert_eq!(colour_asked(&q("is this one in stock"), &none), None);
        let colours = serde_json::json!(["grey", "slate blue"]);
        let line = |t: &str| attribute_sentence("colors", &colours, &q(t), &none);
        assert!(!line("in gray?").contains("not in"), "{}", line("in gray?"));
        assert!(!line("in blue?").contains("not in"), "{}", line("in blue?"));
        assert!(
            line("in red?").ends_with("(not in red)"),
            "{}",
            line("in red?")
        );
        // Only a colour list says so: "color screen: yes" is no colour list.
        let screen = attribute_sentence(
            "color_screen",
            &serde_json::json!(true),
            &q("in black?"),
            &none,
        );
        assert!(!screen.contains("not in"), "{screen}");
    }

    #[test]
    fn plurals_share_a_stem_with_their_word() {
        for (a, b) in [
            ("stores", "store"),
            ("sizes", "size"),
            ("cases", "case"),
            ("boxes", "box"),
            ("watches", "watch"),
            ("glasses", "glass"),
            ("shoes", "shoe"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} {b}");
        }
    }

    #[test]
    fn follow_ups_and_questions_are_told_apart() {
        assert!(refers_to_product("is it waterproof?"));
        assert!(refers_to_product("do you have it in 44"));
        assert!(!refers_to_product("can it arrive in 2 days?"));
        assert!(refers_to_product("how much?"));
        assert!(refers_to_product("what's the price"));
        assert!(refers_to_product("in stock?"));
        assert!(!refers_to_product("how much is shipping"));
        assert!(!refers_to_product("where is my order"));
        assert_eq!(follow_up("ok what about 45?"), Some(vec!["45".to_string()]));
        assert_eq!(
            follow_up("great, and in navy?"),
            Some(vec!["in".to_string(), "navy".to_string()])
        );
        assert_eq!(
            follow_up("and in black"),
            Some(vec!["in".to_string(), "black".to_string()])
        );
        assert_eq!(follow_up("what about it"), Some(vec!["it".to_string()]));
        assert_eq!(
            follow_up("what about my refund for the order I sent back"),
            None
        );
        assert_eq!(follow_up("where is my order"), None);
        assert!(is_question("can I return opened headphones"));
        assert!(!is_question("I want to return my headphones"));
        assert!(is_question("it already says shipped, can i still cancel"));
        assert!(is_question("ordered as guest. where do i start a return"));
        assert!(is_question("hi there, do you ship to iceland"));
        assert!(!is_question("I want to return these shoes, can you help"));
        assert!(!is_question("cancel it please, could you"));
        assert!(is_question("hi\ncan i cancel"));
        assert!(is_question("ordered as guest - where do i start"));
        assert!(is_question("bought it last week, how long does it take"));
        assert!(is_question("saw it online, what's the price"));
        for answer_or_request in [
            "yes, do it",
            "sure, why not",
            "ok, will do",
            "yes, would be great",
            "no, do not",
            "return these, which I bought Monday",
            "please refund me, when possible",
            "I want to cancel, do it now",
            "cancel it, can u",
            "3. May, cancel it",
        ] {
            assert!(!is_question(answer_or_request), "{answer_or_request}");
        }
    }
}
