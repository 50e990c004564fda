//! "Hi", "thanks!", "ok thx, bye": messages that carry nothing but courtesy. The intent
//! model has no label for them (it reads them as out of scope), and answering "Sorry, I
//! didn't get that" to a thank-you is rude; it also counted as a failure, so a customer who
//! thanked the bot twice was handed to a person.

use super::answers::words;

/// What a courtesy message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Courtesy {
    Greeting,
    Thanks,
    Goodbye,
}

impl Courtesy {
    /// The reply template (`kb/templates.yaml`).
    pub fn template(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::Thanks => "thanks",
            Self::Goodbye => "goodbye",
        }
    }
}

// One word per line would make these lists five screens long.
#[rustfmt::skip]
const GREETING: &[&str] = &[
    "hi", "hii", "hiii", "hello", "helloo", "hey", "heyy", "hiya", "heya", "howdy", "morning",
    "afternoon", "evening", "hallo", "yo",
];
#[rustfmt::skip]
const THANKS: &[&str] = &[
    "thanks", "thank", "thx", "thanx", "thnx", "ty", "tysm", "ta", "tnx", "cheers", "thankyou",
    "appreciated", "appreciate",
];
#[rustfmt::skip]
const GOODBYE: &[&str] = &["bye", "goodbye", "byebye", "cya", "ciao", "farewell", "later", "night"];
/// Words that may surround the courtesy without adding a request: "ok great, thank you so
/// much, have a nice day". Nothing that asks for something: "help", "speak", "team" and
/// "please" are not here ("hello, I wanted to speak to the team please" is a request).
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "ok", "okay", "k", "kk", "great", "perfect", "cool", "awesome", "nice", "good", "fine",
    "lovely", "brilliant", "excellent", "super", "wonderful", "amazing", "fantastic", "alright",
    "all", "right", "you", "u", "so", "very", "much", "a", "lot", "many", "the", "that",
    "thats", "it", "its", "is", "was", "i", "we", "have", "day", "weekend", "see", "ya", "then",
    "again", "there", "bot", "oh", "ah", "yes", "yeah", "yep", "no", "nope", "got",
    "understood", "makes", "sense", "sounds", "well", "just", "everyone", "guys", "dear",
    "sir", "madam", "anyway", "anyways", "now", "take", "care", "indeed", "really", "truly",
    "kindly", "and", "or", "but", "too", "also", "me", "my", "mate",
];
/// Words that only belong to a thank-you or a goodbye: "thanks for your help", "just wanted
/// to say thanks", "talk soon, bye"; with a greeting alone ("hi, help") they ask for
/// something.
#[rustfmt::skip]
const THANKING: &[&str] = &[
    "for", "your", "help", "helping", "info", "information", "answer", "answers", "reply",
    "wanted", "to", "say", "soon",
];

/// The courtesy a message is made of, if it is made of nothing else: every word a greeting,
/// a thank-you, a goodbye or a filler around them, and at most a dozen of them. A goodbye
/// wins over thanks ("thanks, bye"), thanks over a greeting ("hi, thanks").
pub fn courtesy(text: &str) -> Option<Courtesy> {
    // `words` splits "that's" into "that" and "s".
    let w: Vec<String> = words(text).into_iter().filter(|x| x != "s").collect();
    if w.is_empty() || w.len() > 12 {
        return None;
    }
    let is = |list: &[&str], x: &str| list.contains(&x);
    let courteous = |x: &str| is(GREETING, x) || is(THANKS, x) || is(GOODBYE, x);
    let thanking = w.iter().any(|x| is(THANKS, x) || is(GOODBYE, x));
    if !w
        .iter()
        .all(|x| courteous(x) || is(FILLER, x) || (thanking && is(THANKING, x)))
    {
        return None;
    }
    // "good morning", "have a nice day", "take care": fillers that are a greeting or a
    // goodbye in their own right.
    let has = |list: &[&str]| w.iter().any(|x| is(list, x));
    let phrase = |a: &str, b: &str| w.windows(2).any(|p| p[0] == a && p[1] == b);
    if has(GOODBYE) || phrase("take", "care") || phrase("nice", "day") || phrase("see", "ya") {
        Some(Courtesy::Goodbye)
    } else if has(THANKS) {
        Some(Courtesy::Thanks)
    } else if has(GREETING) {
        Some(Courtesy::Greeting)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn courtesy_alone_is_recognised() {
        for (text, expected) in [
            ("hi", Courtesy::Greeting),
            ("Hello!", Courtesy::Greeting),
            ("hey there", Courtesy::Greeting),
            ("good morning", Courtesy::Greeting),
            ("thanks", Courtesy::Thanks),
            ("Thank you so much!", Courtesy::Thanks),
            ("ok great, thanks for your help", Courtesy::Thanks),
            ("perfect, thx", Courtesy::Thanks),
            ("cheers mate", Courtesy::Thanks),
            ("that's all, thank you", Courtesy::Thanks),
            ("thx, bye", Courtesy::Goodbye),
            ("bye", Courtesy::Goodbye),
            ("ok thank you, have a nice day", Courtesy::Goodbye),
            ("Thanks! Take care", Courtesy::Goodbye),
            ("just wanted to say thanks for your help", Courtesy::Thanks),
            ("hii", Courtesy::Greeting),
            ("tysm", Courtesy::Thanks),
            ("good night", Courtesy::Goodbye),
        ] {
            assert_eq!(courtesy(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn a_request_with_courtesy_is_a_request() {
        for text in [
            "hi, where is my order?",
            "Hello, I wanted to speak to the team please",
            "hi, help",
            "hello, anyone there? please",
            "thanks, can I also get an invoice",
            "hello I want to cancel",
            "thank you, but the parcel never arrived",
            "no",
            "ok",
            "yes please",
            "",
            "bye bye bye bye bye bye bye bye bye bye bye bye bye",
        ] {
            assert_eq!(courtesy(text), None, "{text}");
        }
    }
}
