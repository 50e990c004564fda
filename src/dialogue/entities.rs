//! What a message names: order and invoice numbers, e-mail addresses, amounts, dates, and
//! whether it says yes or no. Plain pattern matching, so it is fast and predictable.

use std::collections::HashSet;
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
            // A bare number is an order number unless it reads as money, a date or a
            // measure ("10000 mm", "20000 mAh").
            let without_amounts = p.amount.replace_all(&rest, " ");
            let without_dates = p.date.replace_all(&without_amounts, " ");
            p.bare_number
                .captures_iter(&without_dates)
                .find(|c| !measured(&without_dates[c.get(0).map_or(0, |m| m.end())..]))
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

/// Units after a number that make it a measure, not an order number.
#[rustfmt::skip]
const UNITS: &[&str] = &[
    "mm", "cm", "m", "km", "kg", "g", "mah", "wh", "w", "v", "l", "ml", "gb", "tb", "mb",
    "hz", "lm", "lumen", "lumens", "rpm", "pa", "dpi", "btu", "k",
];

/// The text after a number starts with a unit ("mm waterproof", " mAh").
fn measured(after: &str) -> bool {
    let unit: String = after
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect::<String>()
        .to_lowercase();
    UNITS.contains(&unit.as_str())
}

/// The customer speaks of themselves: "I", "my", "me", "we", "our".
pub fn first_person(text: &str) -> bool {
    words(text).iter().any(|w| {
        matches!(
            w.as_str(),
            "i" | "i'm"
                | "i've"
                | "i'd"
                | "i'll"
                | "im"
                | "my"
                | "me"
                | "mine"
                | "we"
                | "our"
                | "us"
        )
    })
}

/// A message that starts with a verb, as a request to act does: "cancel order 1234", "track
/// A-55102 pls", "change the address".
pub fn imperative(text: &str) -> bool {
    const VERBS: &[&str] = &[
        "cancel", "track", "return", "refund", "change", "exchange", "send", "update", "stop",
        "check", "find", "get", "give", "please", "pls", "plz", "need", "want",
    ];
    words(text)
        .first()
        .is_some_and(|w| VERBS.contains(&w.as_str()))
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

/// "neither", "no", "none of them": the reply turns both offered options down.
pub fn rejects_both(text: &str) -> bool {
    let t = text.to_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    words.contains(&"neither")
        || words.windows(2).any(|w| w == ["none", "of"])
        || (words.len() <= 3 && yes_no(text) == Some(YesNo::No))
}

/// Which of two offered options a reply picks: by position ("the first", "2", "the other
/// one") or by the words of one option's description ("tracking" for "track your order",
/// "how long" for "know how long delivery takes"). `None` when the reply names neither or
/// both.
pub fn pick_option(text: &str, options: [&str; 2]) -> Option<usize> {
    // Words are split at apostrophes too: "don't" arrives as "don" and "t".
    const NEGATIONS: &[&str] = &["not", "no", "don", "dont", "neither", "nor", "never"];
    const FIRST: &[&str] = &["first", "1", "1st", "former", "firstly"];
    const SECOND: &[&str] = &["second", "2", "2nd", "latter", "other", "secondly"];
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    // "not the first", "don't want tracking": a negated answer picks nothing.
    if words.iter().any(|w| NEGATIONS.contains(&w.as_str())) {
        return None;
    }
    // Positions count only in a short answer: "the first one", "2", not "I ordered 2
    // weeks ago" or "my first order".
    let short = words.len() <= 4;
    let first = short && words.iter().any(|w| FIRST.contains(&w.as_str()));
    let second = short && words.iter().any(|w| SECOND.contains(&w.as_str()));
    match (first, second) {
        (true, false) => return Some(0),
        (false, true) => return Some(1),
        (true, true) => return None,
        (false, false) => {}
    }
    // Words shared by both descriptions ("your", "order") tell nothing apart; short words and
    // the frame "want to know" neither. Words compare by their first five letters, so
    // "tracking" meets "track" and "refunds" meets "refund".
    const FRAME: &[&str] = &[
        "want",
        "know",
        "your",
        "about",
        "with",
        "from",
        "something",
        "another",
        "have",
        "didn",
        "that",
        "what",
        "there",
        "some",
    ];
    let stems = |t: &str| -> std::collections::HashSet<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .map(str::to_lowercase)
            .filter(|w| w.chars().count() >= 4 && !FRAME.contains(&w.as_str()))
            .map(|w| w.chars().take(5).collect())
            .collect()
    };
    let a = stems(options[0]);
    let b = stems(options[1]);
    let said = stems(text);
    let hits = |own: &std::collections::HashSet<String>,
                other: &std::collections::HashSet<String>| {
        own.difference(other).filter(|s| said.contains(*s)).count()
    };
    match (hits(&a, &b), hits(&b, &a)) {
        (x, y) if x > y => Some(0),
        (x, y) if y > x => Some(1),
        _ => None,
    }
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

/// Whether a message reads like an attempt at a postal address (a number and at least three
/// words, or a comma-separated line with a number), or is one ([`postal_address`]). Loose on
/// purpose: an attempt that cannot be read is answered by asking again for the address, not
/// by treating it as a new request.
pub fn looks_like_address(text: &str) -> bool {
    let has_digit = text.chars().any(|c| c.is_ascii_digit());
    let w = words(text);
    (has_digit && w.len() >= 3 && (text.contains(',') || w.len() >= 4))
        || postal_address(text).is_some()
}

/// A postal address read from a message, in the fields of the order service's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostalAddress {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postcode: Option<String>,
    pub country: String,
}

/// A part longer than this (in characters) is not a line of a postal label.
const MAX_ADDRESS_PART_CHARS: usize = 100;

/// Reads "12 High Street, Leeds, LS1 4AB, UK" into its parts: line 1, an optional line 2, the
/// city, an optional postcode and the country, comma-separated, country last. Each part is
/// recognised by what it looks like (a postcode by its shape, a country by name or ISO code),
/// never by its position alone, so a part too many or too few cannot shift the others into
/// the wrong fields. `None` when the parts cannot be told apart (no known country, two
/// postcodes, no city, a county or region besides the city, more than five parts): the bot
/// then asks again rather than confirm an address the customer did not mean.
pub fn postal_address(text: &str) -> Option<PostalAddress> {
    let text = strip_address_lead_in(text);
    let parts: Vec<&str> = text
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if !(3..=5).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.chars().count() > MAX_ADDRESS_PART_CHARS)
    {
        return None;
    }
    let (country, rest) = parts.split_last()?;
    let country = country_name(country)?;
    let (line1, rest) = rest.split_first()?;
    // A postcode on its own must sit next to the city: "Leeds, LS1 4AB" or "10115, Berlin".
    let alone: Vec<usize> = (0..rest.len()).filter(|&i| is_postcode(rest[i])).collect();
    let mut middle = rest.to_vec();
    let postcode = match alone.as_slice() {
        [] => None,
        [i] if i + 2 >= rest.len() => Some(middle.remove(*i)),
        _ => return None,
    };
    let (line2, city_part) = match middle.as_slice() {
        [city] => (None, *city),
        [line2, city] => (Some(*line2), *city),
        _ => return None,
    };
    let (city, postcode) = match (split_postcode(city_part), postcode) {
        (Some(_), Some(_)) => return None,
        (Some((city, code)), None) => (city, Some(code)),
        (None, code) => (city_part, code),
    };
    // A middle part without a number could as well be the city, with a county or region
    // after it ("Leeds, West Yorkshire"); a flat, house or street line has a number.
    if let Some(l2) = line2 {
        if !l2.chars().any(|c| c.is_ascii_digit()) || ends_with_postcode(l2) {
            return None;
        }
    }
    if !line1.chars().any(char::is_alphanumeric) || !is_city(city) {
        return None;
    }
    Some(PostalAddress {
        line1: line1.to_string(),
        line2: line2.map(str::to_string),
        city: city.to_string(),
        postcode: postcode.map(str::to_string),
        country,
    })
}

/// "the new address is 12 High Street, ..." -> "12 High Street, ...". The offset comes from a
/// match on `text` itself, so it is always a character boundary of `text`.
fn strip_address_lead_in(text: &str) -> &str {
    static P: OnceLock<Regex> = OnceLock::new();
    let p = P.get_or_init(|| {
        Regex::new(
            r"(?i)^\s*(?:(?:it'?s|it is)\s+)?(?:(?:the|my|our)\s+)?(?:new\s+)?(?:(?:delivery|shipping)\s+)?address(?:\s+is\b\s*:?|\s*:)\s*|^\s*(?:please\s+)?(?:send|deliver|ship)\s+it\s+to\b\s*:?\s*",
        )
        .unwrap()
    });
    let rest = match p.find(text) {
        Some(m) => &text[m.end()..],
        None => text,
    };
    // "to: 5 Elm Road, ..." after the " to " that introduced it.
    rest.trim_start_matches(|c: char| c == ':' || c.is_whitespace())
}

/// Postcode shapes: digits ("34710", "8001", "110001"), digits with a dash ("12345-6789",
/// "01310-100", "00-950"), Swedish/Czech/Greek "114 55", Dutch "1012 AB", Canadian "K1A 0B1",
/// British "LS1 4AB" / "SW1A 1AA", Irish "D02 X285", US state and ZIP "DC 20500", each with an
/// optional country prefix ("D-10115", "CH-8001"). Letters are ASCII only, so case-insensitive
/// Unicode matching (the Kelvin sign matches `k`) cannot make one of them.
const POSTCODE: &str = r"(?:[A-Z]{1,2}-)?(?:\d{4} ?[A-Za-z]{2}|\d{2,5}-\d{3,4}|\d{3} \d{2}|\d{4,6}|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d|[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}|[A-Za-z]\d[\dWw] ?[A-Za-z\d]{4}|[A-Z]{2} \d{5}(?:-\d{4})?)";

struct PostcodePatterns {
    alone: Regex,
    leading: Regex,
    trailing: Regex,
}

fn postcode_patterns() -> &'static PostcodePatterns {
    static P: OnceLock<PostcodePatterns> = OnceLock::new();
    P.get_or_init(|| PostcodePatterns {
        alone: Regex::new(&format!(r"^{POSTCODE}$")).unwrap(),
        // "10115 Berlin", "D-10115 Berlin", "1012 AB Amsterdam"
        leading: Regex::new(&format!(r"^({POSTCODE})\s+(\S.*)$")).unwrap(),
        // "Leeds LS1 4AB", "Washington DC 20500"
        trailing: Regex::new(&format!(r"^(.*?\S)\s+({POSTCODE})$")).unwrap(),
    })
}

/// Whether `part` is a postcode and nothing else.
pub fn is_postcode(part: &str) -> bool {
    postcode_patterns().alone.is_match(part.trim())
}

fn ends_with_postcode(part: &str) -> bool {
    postcode_patterns().trailing.is_match(part.trim())
}

/// A city with its postcode, either way round: "10115 Berlin", "Leeds LS1 4AB" ->
/// (city, postcode).
fn split_postcode(part: &str) -> Option<(&str, &str)> {
    let p = postcode_patterns();
    let part = part.trim();
    let (city, code) = if let Some(c) = p.leading.captures(part) {
        (c.get(2)?.as_str(), c.get(1)?.as_str())
    } else {
        let c = p.trailing.captures(part)?;
        (c.get(1)?.as_str(), c.get(2)?.as_str())
    };
    // "1600 Pennsylvania Ave" is a street, not a postcode and a city.
    is_city(city).then_some((city, code))
}

/// Whether `part` can be a city: it starts with a letter and does not end like a street
/// ("Pennsylvania Ave", "Hauptstr.").
fn is_city(part: &str) -> bool {
    const STREET: &[&str] = &[
        "street",
        "st",
        "road",
        "rd",
        "avenue",
        "ave",
        "av",
        "lane",
        "ln",
        "drive",
        "dr",
        "boulevard",
        "blvd",
        "way",
        "crescent",
        "terrace",
        "court",
        "ct",
        "highway",
        "hwy",
        "straße",
        "strasse",
        "str",
        "gasse",
        "weg",
        "allee",
        "rue",
        "calle",
        "rua",
        "caddesi",
        "cd",
        "cad",
        "sokak",
        "sok",
        "sk",
        "mahallesi",
        "mah",
        "nw",
        "ne",
        "sw",
        "se",
    ];
    let starts_with_letter = part.chars().next().is_some_and(char::is_alphabetic);
    let last = part
        .rsplit(|c: char| c.is_whitespace() || c == '.')
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_lowercase();
    starts_with_letter && !STREET.contains(&last.as_str()) && !is_postcode(part)
}

/// The country as the customer wrote it, when `part` names one: an English or local name
/// ("Turkey", "Türkiye", "Deutschland", "United Kingdom", "UK", "U.S.A.") in any case, or an
/// ISO 3166-1 code in capitals ("TR", "DEU"; in lower case "de" or "no" is a word, not a
/// country).
fn country_name(part: &str) -> Option<String> {
    let shown = part.trim().trim_end_matches(['!', '?']).trim_end();
    // "Turkey." ends a sentence; "U.S.A." is an abbreviation and keeps its dot.
    let shown = match shown.strip_suffix('.') {
        Some(s) if !s.contains('.') => s.trim_end(),
        _ => shown,
    };
    let key = country_key(shown);
    let known = countries().names.contains(&key)
        || (shown.len() <= 3
            && shown.bytes().all(|b| b.is_ascii_uppercase())
            && countries().codes.contains(shown));
    known.then(|| shown.to_string())
}

/// How names are compared: lower case, single spaces, without dots and a leading "the".
fn country_key(text: &str) -> String {
    let lower = text.to_lowercase().replace('.', "");
    let words: Vec<&str> = lower.split_whitespace().collect();
    let words = match words.split_first() {
        Some((&"the", rest)) if !rest.is_empty() => rest,
        _ => &words[..],
    };
    words.join(" ")
}

struct Countries {
    names: HashSet<String>,
    codes: HashSet<&'static str>,
}

fn countries() -> &'static Countries {
    static C: OnceLock<Countries> = OnceLock::new();
    C.get_or_init(|| Countries {
        names: COUNTRY_NAMES.split('|').map(country_key).collect(),
        codes: COUNTRY_CODES.split_whitespace().collect(),
    })
}

/// ISO 3166-1 names (short and common), then the names customers use: local ones, older ones
/// and the parts of the United Kingdom.
const COUNTRY_NAMES: &str = "\
    Aruba|Afghanistan|Angola|Anguilla|Åland Islands|Albania|Andorra|United Arab Emirates|\
    Argentina|Armenia|American Samoa|Antarctica|French Southern Territories|\
    Antigua and Barbuda|Australia|Austria|Azerbaijan|Burundi|Belgium|Benin|Bonaire|\
    Burkina Faso|Bangladesh|Bulgaria|Bahrain|Bahamas|Bosnia and Herzegovina|Saint Barthélemy|\
    Belarus|Belize|Bermuda|Bolivia|Brazil|Barbados|Brunei Darussalam|Bhutan|Bouvet Island|\
    Botswana|Central African Republic|Canada|Cocos|Switzerland|Chile|China|Côte d'Ivoire|\
    Cameroon|Congo|Cook Islands|Colombia|Comoros|Cabo Verde|Costa Rica|Cuba|Curaçao|\
    Christmas Island|Cayman Islands|Cyprus|Czechia|Germany|Djibouti|Dominica|Denmark|\
    Dominican Republic|Algeria|Ecuador|Egypt|Eritrea|Western Sahara|Spain|Estonia|Ethiopia|\
    Finland|Fiji|Falkland Islands|France|Faroe Islands|Micronesia|Gabon|United Kingdom|Georgia|\
    Guernsey|Ghana|Gibraltar|Guinea|Guadeloupe|Gambia|Guinea-Bissau|Equatorial Guinea|Greece|\
    Grenada|Greenland|Guatemala|French Guiana|Guam|Guyana|Hong Kong|\
    Heard Island and McDonald Islands|Honduras|Croatia|Haiti|Hungary|Indonesia|Isle of Man|\
    India|British Indian Ocean Territory|Ireland|Iran|Iraq|Iceland|Israel|Italy|Jamaica|Jersey|\
    Jordan|Japan|Kazakhstan|Kenya|Kyrgyzstan|Cambodia|Kiribati|Saint Kitts and Nevis|\
    South Korea|Kuwait|Lao People's Democratic Republic|Laos|Lebanon|Liberia|Libya|Saint Lucia|\
    Liechtenstein|Sri Lanka|Lesotho|Lithuania|Luxembourg|Latvia|Macao|Saint Martin|Morocco|\
    Monaco|Moldova|Madagascar|Maldives|Mexico|Marshall Islands|North Macedonia|Mali|Malta|\
    Myanmar|Montenegro|Mongolia|Northern Mariana Islands|Mozambique|Mauritania|Montserrat|\
    Martinique|Mauritius|Malawi|Malaysia|Mayotte|Namibia|New Caledonia|Niger|Norfolk Island|\
    Nigeria|Nicaragua|Niue|Netherlands|Norway|Nepal|Nauru|New Zealand|Oman|Pakistan|Panama|\
    Pitcairn|Peru|Philippines|Palau|Papua New Guinea|Poland|Puerto Rico|North Korea|Portugal|\
    Paraguay|Palestine|French Polynesia|Qatar|Réunion|Romania|Russian Federation|Rwanda|\
    Saudi Arabia|Sudan|Senegal|Singapore|South Georgia and the South Sandwich Islands|\
    Saint Helena|Svalbard and Jan Mayen|Solomon Islands|Sierra Leone|El Salvador|San Marino|\
    Somalia|Saint Pierre and Miquelon|Serbia|South Sudan|Sao Tome and Principe|Suriname|\
    Slovakia|Slovenia|Sweden|Eswatini|Sint Maarten|Seychelles|Syrian Arab Republic|Syria|\
    Turks and Caicos Islands|Chad|Togo|Thailand|Tajikistan|Tokelau|Turkmenistan|Timor-Leste|\
    Tonga|Trinidad and Tobago|Tunisia|Türkiye|Tuvalu|Taiwan|Tanzania|Uganda|Ukraine|\
    United States Minor Outlying Islands|Uruguay|United States|Uzbekistan|Holy See|\
    Saint Vincent and the Grenadines|Venezuela|Viet Nam|Vietnam|Vanuatu|Wallis and Futuna|\
    Samoa|Yemen|South Africa|Zambia|Zimbabwe|UK|U.K.|USA|U.S.A.|US|U.S.|America|\
    United States of America|Great Britain|Britain|England|Scotland|Wales|Northern Ireland|\
    Turkey|Turkiye|Deutschland|Österreich|Osterreich|Schweiz|Suisse|Svizzera|España|Espana|\
    Italia|Nederland|Holland|The Netherlands|Belgique|België|Belgien|Luxemburg|Lëtzebuerg|\
    Danmark|Norge|Sverige|Suomi|Ísland|Island|Éire|Polska|Česko|Česká republika|Czech Republic|\
    Slovensko|Slovenija|Hrvatska|Srbija|Magyarország|România|България|Bulgariya|Ελλάδα|Hellas|\
    Κύπρος|Kıbrıs|Eesti|Latvija|Lietuva|Україна|Ukraina|Россия|Russia|Беларусь|Brasil|México|\
    Perú|Panamá|Ivory Coast|Cape Verde|Swaziland|Burma|Macedonia|Vatican|Vatican City|UAE|\
    Emirates|Korea|대한민국|日本|中国|中國|Nippon|Brunei|Democratic Republic of the Congo|DR Congo|DRC|\
    Republic of Ireland|Bosnia|Trinidad|Macau";

/// ISO 3166-1 alpha-2 and alpha-3 codes, plus "UK" (not ISO, but what the British write).
const COUNTRY_CODES: &str = "\
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM \
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS \
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN \
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM \
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV \
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI \
    VN VU WF WS YE YT ZA ZM ZW \
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA \
    BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN \
    CIV CMR COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU \
    EGY ERI ESH ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB \
    GNQ GRC GRD GRL GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL \
    ISR ITA JAM JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO \
    LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR \
    MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER \
    PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM \
    SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK \
    TKL TKM TLS TON TTO TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM \
    VUT WLF WSM YEM ZAF ZMB ZWE UK";

#[cfg(test)]
mod pick_tests {
    use super::pick_option;

    const TRACK_OR_WHEN: [&str; 2] = ["track your order", "know how long delivery takes"];

    #[test]
    fn position_words_pick_an_option() {
        for (text, want) in [
            ("the first", Some(0)),
            ("1", Some(0)),
            ("first one pls", Some(0)),
            ("the second", Some(1)),
            ("2nd", Some(1)),
            ("the other one", Some(1)),
            ("first or second, not sure", None),
            ("not the first", None),
            ("give me 2 minutes to find it", None),
            ("this is my first time shopping here", None),
        ] {
            assert_eq!(pick_option(text, TRACK_OR_WHEN), want, "{text}");
        }
    }

    #[test]
    fn description_words_pick_an_option() {
        for (text, want) in [
            ("tracking", Some(0)),
            ("TRACK IT", Some(0)),
            ("how long delivery takes", Some(1)),
            ("how long", Some(1)),
            ("delivery time", Some(1)),
            ("hmm", None),
            ("ok thanks", None),
        ] {
            assert_eq!(pick_option(text, TRACK_OR_WHEN), want, "{text}");
        }
        let refund_or_return = ["get your money back", "return an item"];
        assert_eq!(pick_option("returning it", refund_or_return), Some(1));
        assert_eq!(pick_option("money back", refund_or_return), Some(0));
        assert_eq!(pick_option("I don't want tracking", TRACK_OR_WHEN), None);
        let open_or_switch = ["open an account", "switch to another account"];
        assert_eq!(pick_option("I want another account", open_or_switch), None);
    }

    #[test]
    fn neither_and_no_turn_both_down() {
        for t in ["neither", "no", "nope", "none of them", "neither of those"] {
            assert!(super::rejects_both(t), "{t}");
        }
        for t in [
            "the first",
            "tracking",
            "no idea what you mean, my parcel is late",
        ] {
            assert!(!super::rejects_both(t), "{t}");
        }
    }
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
            "what does 10000 mm waterproof mean",
            "a 20000 mAh power bank",
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

    type Parts = Option<(String, Option<String>, String, Option<String>, String)>;

    fn address(text: &str) -> Parts {
        postal_address(text).map(|a| (a.line1, a.line2, a.city, a.postcode, a.country))
    }

    fn parts(
        line1: &str,
        line2: Option<&str>,
        city: &str,
        postcode: Option<&str>,
        country: &str,
    ) -> Parts {
        Some((
            line1.into(),
            line2.map(Into::into),
            city.into(),
            postcode.map(Into::into),
            country.into(),
        ))
    }

    #[test]
    fn addresses_by_what_each_part_looks_like() {
        assert_eq!(
            address("12 High Street, Leeds, LS1 4AB, UK"),
            parts("12 High Street", None, "Leeds", Some("LS1 4AB"), "UK")
        );
        assert_eq!(
            address("Bağdat Cd. 12, İstanbul, Turkey"),
            parts("Bağdat Cd. 12", None, "İstanbul", None, "Turkey")
        );
        // Five parts: the street is line 2, not the city, and the postcode is not the country.
        assert_eq!(
            address("Flat 3, 12 High Street, Leeds, LS1 4AB, United Kingdom"),
            parts(
                "Flat 3",
                Some("12 High Street"),
                "Leeds",
                Some("LS1 4AB"),
                "United Kingdom"
            )
        );
        // Postcode and city in one part, either way round.
        assert_eq!(
            address("Hauptstr. 5, 10115 Berlin, Germany"),
            parts("Hauptstr. 5", None, "Berlin", Some("10115"), "Germany")
        );
        assert_eq!(
            address("12 High Street, Leeds LS1 4AB, UK"),
            parts("12 High Street", None, "Leeds", Some("LS1 4AB"), "UK")
        );
        assert_eq!(
            address("Hauptstr. 5, D-10115 Berlin, Deutschland"),
            parts(
                "Hauptstr. 5",
                None,
                "Berlin",
                Some("D-10115"),
                "Deutschland"
            )
        );
        assert_eq!(
            address("14 Rue de la Paix, Paris, 75002, France"),
            parts("14 Rue de la Paix", None, "Paris", Some("75002"), "France")
        );
        assert_eq!(
            address("Damrak 1, 1012 AB Amsterdam, NL"),
            parts("Damrak 1", None, "Amsterdam", Some("1012 AB"), "NL")
        );
        assert_eq!(
            address("24 Sussex Drive, Ottawa, K1A 0B1, Canada"),
            parts("24 Sussex Drive", None, "Ottawa", Some("K1A 0B1"), "Canada")
        );
        assert_eq!(
            address("1600 Pennsylvania Ave NW, Washington, DC 20500, U.S.A."),
            parts(
                "1600 Pennsylvania Ave NW",
                None,
                "Washington",
                Some("DC 20500"),
                "U.S.A."
            )
        );
        assert_eq!(
            address("Bağdat Cd. 12, 34710, İstanbul, Türkiye."),
            parts("Bağdat Cd. 12", None, "İstanbul", Some("34710"), "Türkiye")
        );
        assert_eq!(
            address("The new address is: 5 Elm Road, Bath, BA1 1AA, the United Kingdom"),
            parts(
                "5 Elm Road",
                None,
                "Bath",
                Some("BA1 1AA"),
                "the United Kingdom"
            )
        );
        assert_eq!(
            address("c/o Vogt Design GmbH, Landwehrstr. 10, 80336 München, DE"),
            parts(
                "c/o Vogt Design GmbH",
                Some("Landwehrstr. 10"),
                "München",
                Some("80336"),
                "DE"
            )
        );
    }

    #[test]
    fn addresses_whose_parts_cannot_be_told_apart() {
        for text in [
            // No country the bot knows; with five parts anything could be anything.
            "Flat 3, 12 High Street, Leeds, LS1 4AB, Narnia",
            "12 High Street, Leeds, LS1 4AB",
            // A county besides the city.
            "12 High Street, Leeds, West Yorkshire, UK",
            "12 High Street, Leeds, West Yorkshire, LS1 4AB, UK",
            // Two postcodes, or a postcode away from the city.
            "12 High Street, LS1 4AB, Leeds, LS1 4AB, UK",
            "12 High Street, LS1 4AB, Flat 3, Leeds, UK",
            "Hauptstr. 5, 10115 Berlin, 10115, Germany",
            // No city.
            "12 High Street, LS1 4AB, UK",
            "Flat 3, 12 High Street, UK",
            "12 High Street, UK",
            // A lower-case ISO code is a word.
            "12 High Street, Leeds, no",
            // Too many parts.
            "a 1, b 2, c 3, d 4, Leeds, LS1 4AB, UK",
            "",
            ",,,",
            "yes please",
            "İİİ ẞẞẞ \u{212A}\u{212A}, \u{202E}, 🙂",
        ] {
            assert_eq!(address(text), None, "{text}");
        }
        let long = format!("{} 1, Leeds, UK", "x".repeat(200));
        assert_eq!(address(&long), None);
    }

    #[test]
    fn addresses_in_scripts_where_case_changes_length() {
        // "ẞ" lower-cases to "ß", "İ" to "i̇" and the Kelvin sign to "k": none of that may move
        // a part or a character boundary.
        assert_eq!(
            address("Große Straße 5, 10115 Berlin, DEUTSCHLAND"),
            parts(
                "Große Straße 5",
                None,
                "Berlin",
                Some("10115"),
                "DEUTSCHLAND"
            )
        );
        assert_eq!(
            address("GROẞE STRAẞE 5, 10115 BERLIN, GERMANY"),
            parts("GROẞE STRAẞE 5", None, "BERLIN", Some("10115"), "GERMANY")
        );
        assert_eq!(
            address("\u{212A}ing Street 10, London, SW1A 2AA, UK"),
            parts(
                "\u{212A}ing Street 10",
                None,
                "London",
                Some("SW1A 2AA"),
                "UK"
            )
        );
        // The Kelvin sign matches `k` case-insensitively; it must not make a postcode.
        assert!(!is_postcode("\u{212A}1A 0B1"));
        assert!(looks_like_address("Bağdat Cd. 12, İstanbul, Turkey"));
    }
}
