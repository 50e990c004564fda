//! Words that say nothing about what a customer asks: pronouns, the pieces of contractions
//! ("i'm" is "i" and "m"), chat ("honestly", "anyway", "something"), the people a customer
//! mentions ("my husband", "my son") and when ("today", "yesterday"). The word index keeps
//! most of them (they are rare in the shop's own text, so they would weigh much), and a
//! long message is full of them: "it's my husband's birthday on friday and I forgot, is
//! there any way to get it faster" asks only about "faster". In the share of a question a
//! document covers ([`super::words::share`]) a filler the document does not use is left out
//! rather than counted against it; one it does use still counts ("can i still return it
//! once used"). Without this, a question written as customers write in a long message got
//! no answer where its short form did.

use std::collections::HashSet;
use std::sync::OnceLock;

use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

/// The English stop words of the Snowball project (pronouns, auxiliaries, the pieces of
/// contractions), less those the word index already drops.
const FUNCTION: &str = "myself ours ourselves yours yourself yourselves he him his himself \
    she her hers herself itself theirs themselves whom those were being having doing \
    because until while against between through during before after above below up down \
    out off over under again further once here all both each few more most other some nor \
    only own same than too very s t don should now d ll m o re ve y ain aren couldn didn \
    doesn hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn";

/// Chat: what a customer says around a question.
const CHAT: &str = "really quite lot lots like want wanted need needed know think wonder \
    wondering maybe perhaps thanks thank hey ok okay yes yeah sure actually honestly \
    basically anyway anyways somehow something anything everything nothing someone anyone \
    somebody anybody thing things stuff bit little getting going went make let say said \
    tell ask asked see look still already also even much many well right way kind today \
    tonight yesterday tomorrow moment guys possible able might must shall whether rather \
    around ago always never every came come put give use idea clue";

/// The people a customer mentions.
const PEOPLE: &str = "husband wife son daughter mum mom mother dad father sister brother \
    friend friends colleague colleagues boyfriend girlfriend partner neighbour neighbor \
    nephew niece grandmother grandma grandfather grandpa aunt uncle cousin";

/// Whether `term` (as the word index analyses it: lower case, stemmed) is a filler.
pub fn is_filler(term: &str) -> bool {
    static FILLERS: OnceLock<HashSet<String>> = OnceLock::new();
    FILLERS
        .get_or_init(|| {
            let mut stem = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(Stemmer::new(Language::English))
                .build();
            let words = [FUNCTION, CHAT, PEOPLE].join(" ");
            let mut set: HashSet<String> = words.split_whitespace().map(String::from).collect();
            set.extend(super::text::terms(&mut stem, &words));
            set
        })
        .contains(term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::text::{analyzer, terms};

    #[test]
    fn a_long_message_keeps_only_what_it_asks_about() {
        let mut a = analyzer();
        let asked: Vec<String> = terms(
            &mut a,
            "it's my husband's birthday on friday and honestly I forgot, is there any way \
             to get the parcel faster",
        )
        .into_iter()
        .filter(|t| !is_filler(t))
        .collect();
        assert_eq!(asked, ["birthday", "friday", "forgot", "parcel", "faster"]);
    }

    #[test]
    fn words_that_name_a_topic_are_no_fillers() {
        let mut a = analyzer();
        for t in terms(
            &mut a,
            "refund returns delivery express wheelchair gift card",
        ) {
            assert!(!is_filler(&t), "{t}");
        }
    }
}
