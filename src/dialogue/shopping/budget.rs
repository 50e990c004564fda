//! A budget, and picks by price.

use super::about_service;
use crate::dialogue::answers::words;
use crate::wire::Product;

/// "which one is the cheapest?", "the more expensive one": one of the offered products by
/// its price.
pub fn by_price(text: &str, offered: &[Product]) -> Option<usize> {
    // "why is delivery so expensive?" is about delivery; "not the most expensive one" is
    // not a pick by price.
    let w = words(text);
    if about_service(text) || w.iter().any(|x| x == "not") {
        return None;
    }
    let has = |s: &str| w.iter().any(|x| x == s);
    let lowest = has("cheapest")
        || has("cheaper")
        || has("cheap")
        || ((has("least") || has("less")) && has("expensive"))
        || (has("lowest") && has("price"));
    let highest = !lowest
        && (has("priciest")
            || has("dearest")
            || ((has("most") || has("more")) && has("expensive"))
            || (has("highest") && has("price")));
    // "is the Q5 more expensive than the Q3?": between those two only.
    let named = super::named_in(offered, text);
    let among: Vec<&Product> = if named.len() >= 2 {
        offered
            .iter()
            .filter(|p| named.iter().any(|n| n.sku == p.sku))
            .collect()
    } else {
        offered.iter().collect()
    };
    let by = |a: &&&Product, b: &&&Product| a.price.amount.total_cmp(&b.price.amount);
    let chosen = if lowest {
        among.iter().min_by(by)
    } else if highest {
        among.iter().max_by(by)
    } else {
        None
    }?;
    offered.iter().position(|p| p.sku == chosen.sku)
}

/// The message asks for the one cheapest or dearest ("what's the cheapest tent you have?"),
/// not for cheap ones in general.
pub fn one_by_price(text: &str) -> bool {
    let w = words(text);
    let has = |s: &str| w.iter().any(|x| x == s);
    has("cheapest") || has("priciest") || (has("most") || has("least")) && has("expensive")
}

/// The message asks for cheap ones ("do you have any cheap kettles?"): cheapest first.
pub fn cheap_first(text: &str) -> bool {
    words(text).iter().any(|x| {
        matches!(
            x.as_str(),
            "cheap" | "cheaper" | "budget" | "affordable" | "inexpensive"
        )
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

/// The cheapest of `products`.
pub fn cheapest(products: &[Product]) -> Option<&Product> {
    products
        .iter()
        .min_by(|a, b| a.price.amount.total_cmp(&b.price.amount))
}

/// Nothing of what was found is within the ceiling: said so, with the cheapest of them.
pub fn none_within(cap: f64, found: &[Product]) -> String {
    match cheapest(found) {
        Some(p) => format!(
            "I couldn't find one for {} {cap:.2} or less. The cheapest I found is the {} ({}).",
            p.price.currency, p.name, p.price
        ),
        None => format!("I couldn't find one for {cap:.2} or less."),
    }
}

#[cfg(test)]
mod tests {
    use super::super::product;
    use super::*;

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
        assert_eq!(by_price("why is delivery so expensive?", &offered), None);
        // Two named: between them only.
        assert_eq!(
            by_price(
                "is the glass kettle cheaper than the kettle pro mini?",
                &offered
            ),
            Some(1)
        );
        assert_eq!(
            by_price(
                "which is more expensive, the glass kettle or the mini?",
                &offered
            ),
            Some(2)
        );
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
}
