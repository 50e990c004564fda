//! What a message names: order and invoice numbers, e-mail addresses, amounts, dates, and
//! whether it says yes or no. Plain pattern matching, so it is fast and predictable.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Entities found in one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entities {
    pub order_id: Option<String>,
    pub invoice_id: Option<String>,
    pub email: Option<String>,
    pub amount: Option<String>,
    pub date: Option<String>,
}

struct Patterns {
    order_with_prefix: Regex,
    order_after_word: Regex,
    bare_number: Regex,
    invoice: Regex,
    email: Regex,
    amount: Regex,
    date: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // A-55102, #A-55102, ORD-2024-0042
        order_with_prefix: Regex::new(r"(?i)#?\b([A-Z]{1,4}-\d{3,}(?:-\d+)?)\b").unwrap(),
        // "order 4417823", "order #4417823", "order number: 4417823"
        order_after_word: Regex::new(r"(?i)\border(?:\s+(?:no\.?|number|num|nr\.?|id))?\s*[:#]?\s*#?(\d{4,12})\b").unwrap(),
        // "it's 4417823", "#4417823": a lone long number
        bare_number: Regex::new(r"#?\b(\d{5,12})\b").unwrap(),
        invoice: Regex::new(r"(?i)\b(?:(INV-?\d{3,})|invoice\s*(?:no\.?|number|#)?\s*[:#]?\s*(\d{4,12}))\b").unwrap(),
        email: Regex::new(r"(?i)\b[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}\b").unwrap(),
        amount: Regex::new(r"(?i)(?:[$€£]\s?\d+(?:[.,]\d{1,2})?|\b\d+(?:[.,]\d{1,2})?\s?(?:usd|eur|gbp|dollars?|euros?|pounds?)\b)").unwrap(),
        date: Regex::new(r"(?i)\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?|today|yesterday|last (?:week|month)|(?:last |this )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)\b").unwrap(),
    })
}

/// Finds the entities in `text`.
pub fn extract(text: &str) -> Entities {
    let p = patterns();
    let invoice_id = p
        .invoice
        .captures(text)
        .and_then(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str().to_uppercase());
    let email = p.email.find(text).map(|m| m.as_str().to_string());
    // Numbers inside an e-mail address or an invoice reference are not order numbers.
    let mut rest = text.to_string();
    if let Some(e) = &email {
        rest = rest.replace(e.as_str(), " ");
    }
    if let Some(m) = p.invoice.find(&rest.clone()) {
        rest.replace_range(m.range(), " ");
    }
    // "order 4417823" beats a product code such as "XPS-9310" elsewhere in the message.
    let order_id = p
        .order_after_word
        .captures(&rest)
        .map(|c| c[1].to_string())
        .or_else(|| {
            p.order_with_prefix
                .captures(&rest)
                .filter(|c| !c[1].to_uppercase().starts_with("INV"))
                .map(|c| c[1].to_uppercase())
        })
        .or_else(|| {
            // A bare number is an order number unless it reads as money or a date.
            let without_amounts = p.amount.replace_all(&rest, " ");
            let without_dates = p.date.replace_all(&without_amounts, " ");
            p.bare_number
                .captures(&without_dates)
                .map(|c| c[1].to_string())
        });
    Entities {
        order_id,
        invoice_id,
        email,
        amount: p.amount.find(text).map(|m| m.as_str().trim().to_string()),
        date: p.date.find(text).map(|m| m.as_str().to_lowercase()),
    }
}

/// A short answer to a yes/no question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\u{2019}', "'"))
        .collect()
}

/// Reads "yes", "yep", "sure, go ahead", "no", "don't", "no thanks" and the like. Only short
/// answers count: a long message is a new request, not a reply to the question.
pub fn yes_no(text: &str) -> Option<YesNo> {
    const NO_PHRASES: &[&str] = &[
        "don't",
        "dont",
        "do not",
        "no",
        "nope",
        "nah",
        "not",
        "never",
        "cancel that",
        "stop",
        "wait",
        "hold on",
        "negative",
        "keep it",
        "leave it",
        "n",
    ];
    const YES_PHRASES: &[&str] = &[
        "yes",
        "yep",
        "yeah",
        "yea",
        "ya",
        "yup",
        "sure",
        "ok",
        "okay",
        "k",
        "y",
        "correct",
        "right",
        "confirm",
        "confirmed",
        "please",
        "please do",
        "do it",
        "go ahead",
        "go for it",
        "that's right",
        "thats right",
        "absolutely",
        "definitely",
        "of course",
        "affirmative",
        "sounds good",
        "perfect",
        "fine",
        "alright",
        "agreed",
        "exactly",
        "that one",
        "it is",
    ];
    let w = words(text);
    if w.is_empty() || w.len() > 8 {
        return None;
    }
    let joined = format!(" {} ", w.join(" "));
    let has = |phrases: &[&str]| phrases.iter().any(|p| joined.contains(&format!(" {p} ")));
    // A negated verb is a no whatever else is said: "don't", "won't", "please don't do it".
    if w.iter()
        .any(|x| x.ends_with("n't") || x == "not" || x == "dont")
    {
        return Some(YesNo::No);
    }
    if joined.starts_with(" no problem ") || joined.starts_with(" no worries ") {
        return Some(YesNo::Yes);
    }
    // The first word decides when it is a plain yes or no: "yes, cancel that", "no, thanks".
    let first = format!(" {} ", w[0]);
    let starts = |phrases: &[&str]| {
        phrases
            .iter()
            .any(|p| !p.contains(' ') && first == format!(" {p} "))
    };
    if starts(NO_PHRASES) {
        Some(YesNo::No)
    } else if starts(YES_PHRASES) {
        Some(YesNo::Yes)
    } else if has(NO_PHRASES) {
        Some(YesNo::No)
    } else if has(YES_PHRASES) {
        Some(YesNo::Yes)
    } else {
        None
    }
}

/// Swearing, insults and shouting: reasons to bring in a person at once.
pub fn is_angry(text: &str) -> bool {
    const ANGRY: &[&str] = &[
        "fuck",
        "fucking",
        "shit",
        "crap",
        "damn",
        "wtf",
        "idiot",
        "idiots",
        "stupid",
        "useless",
        "pathetic",
        "ridiculous",
        "disgrace",
        "disgusting",
        "scam",
        "scammers",
        "worst",
        "terrible",
        "unacceptable",
        "furious",
        "sick of",
        "fed up",
        "hate",
        "joke of a",
    ];
    let w = words(text);
    let joined = format!(" {} ", w.join(" "));
    let swearing = ANGRY.iter().any(|a| joined.contains(&format!(" {a} ")));
    // Shouting: at least three words of capitals, not counting codes with digits (postcodes,
    // order numbers) and a lone acronym.
    let caps: Vec<&str> = text
        .split_whitespace()
        .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|t| t.chars().count() >= 2 && t.chars().all(char::is_alphabetic))
        .collect();
    let shouting = caps.len() >= 3
        && caps.iter().map(|t| t.len()).sum::<usize>() >= 12
        && caps.iter().all(|t| t.chars().all(char::is_uppercase));
    swearing || shouting || text.contains("!!!")
}

/// "my order", "my parcel", "where is my package": the customer means an order of theirs.
pub fn mentions_own_order(text: &str) -> bool {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| {
        Regex::new(r"(?i)\b(?:my|our)\s+(?:\w+\s+){0,2}(?:order|package|parcel|delivery|shipment|purchase|stuff)s?\b")
            .unwrap()
    })
    .is_match(text)
}

/// Whether a message reads like a postal address (a number and at least three words, or a
/// comma-separated line with a number).
pub fn looks_like_address(text: &str) -> bool {
    let has_digit = text.chars().any(|c| c.is_ascii_digit());
    let w = words(text);
    has_digit && w.len() >= 3 && (text.contains(',') || w.len() >= 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_in_the_ways_customers_write_them() {
        for (text, want) in [
            ("order #A-55102 hasn't arrived", "A-55102"),
            ("it's 4417823", "4417823"),
            ("my order 4417823 from last week", "4417823"),
            ("Order number: 99812", "99812"),
            ("#ord-2024-0042 please", "ORD-2024-0042"),
            ("where is a-55102", "A-55102"),
            ("Where is order 4417823? It's the XPS-9310", "4417823"),
        ] {
            assert_eq!(extract(text).order_id.as_deref(), Some(want), "{text}");
        }
        for text in [
            "i paid $120.50 yesterday",
            "where is my parcel",
            "call me at 10",
        ] {
            assert_eq!(extract(text).order_id, None, "{text}");
        }
    }

    #[test]
    fn other_entities() {
        let e = extract("invoice INV-20931 for jane.doe@example.com, charged €49.99 on 2026-11-02");
        assert_eq!(e.invoice_id.as_deref(), Some("INV-20931"));
        assert_eq!(e.email.as_deref(), Some("jane.doe@example.com"));
        assert_eq!(e.amount.as_deref(), Some("€49.99"));
        assert_eq!(e.date.as_deref(), Some("2026-11-02"));
        assert_eq!(e.order_id, None);
        assert_eq!(
            extract("invoice number 558812").invoice_id.as_deref(),
            Some("558812")
        );
        assert_eq!(
            extract("my order 4417823 from last week").date.as_deref(),
            Some("last week")
        );
    }

    #[test]
    fn short_answers() {
        for t in [
            "yes",
            "Yep!",
            "sure",
            "ok go ahead",
            "Yes please",
            "y",
            "that's right",
        ] {
            assert_eq!(yes_no(t), Some(YesNo::Yes), "{t}");
        }
        for t in [
            "no",
            "Nope",
            "don't",
            "no thanks",
            "do not cancel it",
            "wait",
        ] {
            assert_eq!(yes_no(t), Some(YesNo::No), "{t}");
        }
        for t in [
            "where is my order",
            "what is your refund policy for shoes bought online today",
        ] {
            assert_eq!(yes_no(t), None, "{t}");
        }
    }

    #[test]
    fn own_orders() {
        assert!(mentions_own_order("where is my order?"));
        assert!(mentions_own_order("has my package shipped yet"));
        assert!(mentions_own_order("when does my new laptop order arrive"));
        assert!(!mentions_own_order("how long does standard delivery take"));
        assert!(!mentions_own_order("what are your delivery options"));
        assert!(!mentions_own_order("how long does the delivery take"));
    }

    #[test]
    fn anger_and_addresses() {
        assert!(is_angry("this is a SCAM"));
        assert!(is_angry("WHERE IS MY ORDER I PAID WEEKS AGO"));
        assert!(is_angry("still nothing!!!"));
        assert!(!is_angry("where is my order?"));
        assert!(!is_angry("221B BAKER STREET, NW1 6XE"));
        assert!(!is_angry("my UPS tracking says DHL"));
        assert!(looks_like_address("12 High Street, Leeds LS1 4AB, UK"));
        assert!(!looks_like_address("yes please"));
    }
}
