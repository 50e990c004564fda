//! Asking to buy: the bot places no orders, it says where to.

use super::{about_service_except, REFERENCES};
use crate::dialogue::answers::words;

/// Verbs of buying ("I'll take it", "can I order one?", "I'll take the Q5").
const BUYING: &[&str] = &["take", "buy", "order", "purchase", "grab"];
/// Words that turn a buying phrase down ("I won't take it").
const NOT: &[&str] = &["not", "dont", "don't", "won't", "wont", "never", "no", "t"];
/// Words before "order" that make it a noun ("the order that I placed").
const DETERMINERS: &[&str] = &[
    "the", "my", "an", "a", "this", "that", "your", "our", "his", "her",
];

/// The message asks to buy something: a buying verb, not turned down, not taking something
/// back, and no word of the service around an order ("if I order it today, will it arrive
/// by Friday?", "can I buy it with PayPal?", "I want to cancel the order that I placed").
pub fn buys(text: &str) -> bool {
    let w = words(text);
    if w.iter().any(|x| NOT.contains(&x.as_str()))
        || about_service_except(text, &["order", "ordered"])
    {
        return false;
    }
    w.iter().enumerate().any(|(i, x)| {
        BUYING.contains(&x.as_str())
            && (i == 0 || !DETERMINERS.contains(&w[i - 1].as_str()))
            && !w[i + 1..].iter().take(3).any(|x| x == "back")
    })
}

/// The customer wants to buy the product discussed: "ok I'll take it", "how do I order
/// it?", "I want to buy one", "I'll take the cheaper one", "where can I buy it". Taking it
/// back is a return, and getting it ("when will I get it") a delivery question.
pub fn wants_to_buy(text: &str) -> bool {
    if !buys(text) {
        return false;
    }
    let w = words(text);
    // What is bought comes next ("take it", "buy one"), or is "one" within three words
    // ("order the black one"); "order so it arrives" buys nothing.
    let bought = w.iter().enumerate().any(|(i, x)| {
        let next = w.get(i + 1).is_some_and(|n| {
            REFERENCES.contains(&n.as_str()) || matches!(n.as_str(), "one" | "two")
        });
        let one = w[i + 1..]
            .iter()
            .take(3)
            .any(|x| matches!(x.as_str(), "one" | "ones"));
        BUYING.contains(&x.as_str()) && (next || one)
    });
    let how = w.windows(4).any(|q| {
        matches!(q[0].as_str(), "how" | "where")
            && matches!(q[1].as_str(), "do" | "can" | "could")
            && q[2] == "i"
            && matches!(q[3].as_str(), "order" | "buy" | "purchase")
    });
    bought || how
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buying_is_told_from_returning_waiting_and_paying() {
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
            "If I order it today, will it arrive by Friday?",
            "can I buy it with PayPal?",
            "do I need to take them to the post office?",
            "how long does delivery take for this?",
            "how do I order a replacement part?",
            "I want to cancel the order that I placed yesterday",
            "last day to order so it arrives before christmas",
        ] {
            assert!(!wants_to_buy(no), "{no}");
        }
        assert!(buys("I'll take the Q5"));
        assert!(!buys("I'll take the Q5 back"));
    }
}
