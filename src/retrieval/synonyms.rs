//! Words a customer uses for what a shop's text says otherwise ("amex" for "American
//! Express", "mailing list" for "newsletter", "postage" for "shipping"): groups of
//! equivalent words and phrases, in the format of Solr's and Elasticsearch's synonym files
//! (one group per line, comma-separated; `#` starts a comment). A question's word that a
//! document does not use counts as used when the document has one of the word's
//! equivalents, so the share of the question a document covers ([`super::words`]) does not
//! punish a paraphrase for its vocabulary. Synonyms never rank: they only help decide
//! whether the best document answers.

use std::collections::HashMap;

use super::text::terms;
use super::words::{word_id, WordId};

/// The groups shipped with Parley: general English customer-service and shopping
/// vocabulary, no shop's own names. A deployment may replace them (`retrieval.synonyms`).
pub const ENGLISH: &str = include_str!("../../kb/synonyms.txt");

/// A bad line of a synonym file.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {reason}")]
pub struct SynonymError {
    pub line: usize,
    pub reason: String,
}

/// Groups of equivalent phrases, each phrase as the index analyses it.
#[derive(Debug, Default, Clone)]
pub struct Synonyms {
    /// Each group's phrases, as word ids.
    groups: Vec<Vec<Vec<WordId>>>,
    /// The same, as written in the file.
    written: Vec<Vec<String>>,
    /// The phrases (group, phrase) starting with a word.
    by_first: HashMap<WordId, Vec<(usize, usize)>>,
}

impl Synonyms {
    /// Reads a synonym file: each line a group of at least two phrases separated by commas.
    /// Refused, with the line and why: a group of one; a phrase that is only stop words
    /// ("where is": it would match any question) or that they leave one word of ("log in"
    /// is "log"); a phrase with "no" or "not" (the analysis drops them: "not working" would
    /// be "work"); a phrase another group has (the groups would merge).
    pub fn parse(text: &str) -> Result<Self, SynonymError> {
        let analyzer = &mut super::text::analyzer();
        let mut out = Self::default();
        // Each phrase's analysed form and the line of its group.
        let mut seen: HashMap<Vec<WordId>, usize> = HashMap::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let err = |reason: String| SynonymError {
                line: n + 1,
                reason,
            };
            if line.contains("=>") {
                return Err(err(
                    "one-way rules (a => b) are not supported: list equivalent phrases".into(),
                ));
            }
            let mut group: Vec<Vec<WordId>> = Vec::new();
            let mut written: Vec<String> = Vec::new();
            for phrase in line.split(',').map(str::trim) {
                if phrase.is_empty() {
                    return Err(err("an empty phrase (two commas in a row?)".into()));
                }
                let said: Vec<String> = phrase
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_lowercase)
                    .collect();
                if said.iter().any(|w| w == "no" || w == "not") {
                    return Err(err(format!(
                        "'{phrase}': \"no\" and \"not\" are dropped as stop words, so the \
                         phrase would mean its opposite too"
                    )));
                }
                let analysed = terms(analyzer, phrase);
                let ids: Vec<WordId> = analysed.iter().map(|t| word_id(t)).collect();
                if ids.is_empty() {
                    return Err(err(format!(
                        "'{phrase}' has only stop words: it would match any question"
                    )));
                }
                if ids.len() == 1 && said.len() > 1 {
                    return Err(err(format!(
                        "'{phrase}' is only '{}' once stop words are out: too broad",
                        analysed[0]
                    )));
                }
                if let Some(other) = seen.get(&ids).filter(|l| **l != n + 1) {
                    return Err(err(format!(
                        "'{phrase}' ('{}' once analysed) is in the group of line {other} too: \
                         a phrase belongs to one group",
                        analysed.join(" ")
                    )));
                }
                if !group.contains(&ids) {
                    seen.insert(ids.clone(), n + 1);
                    group.push(ids);
                    written.push(phrase.to_string());
                }
            }
            if group.len() < 2 {
                return Err(err(
                    "a group needs at least two phrases that differ once analysed".into(),
                ));
            }
            let g = out.groups.len();
            for (p, ids) in group.iter().enumerate() {
                out.by_first.entry(ids[0]).or_default().push((g, p));
            }
            out.groups.push(group);
            out.written.push(written);
        }
        Ok(out)
    }

    pub fn english() -> Self {
        Self::parse(ENGLISH).expect("the shipped synonyms parse")
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The (group, phrase) of each phrase that occurs in `question` (analysed terms as ids,
    /// in order), but not one that lies inside a longer one found: "personal data" is not
    /// also "person", nor "american express" "express".
    fn matches(&self, question: &[WordId]) -> Vec<(usize, usize)> {
        // (start, end, group, phrase)
        let mut found: Vec<(usize, usize, usize, usize)> = Vec::new();
        for start in 0..question.len() {
            for &(g, p) in self.by_first.get(&question[start]).into_iter().flatten() {
                let phrase = &self.groups[g][p];
                if question[start..].starts_with(phrase) {
                    found.push((start, start + phrase.len(), g, p));
                }
            }
        }
        let inside_longer = |&(s, e, _, _): &(usize, usize, usize, usize)| {
            found
                .iter()
                .any(|&(s2, e2, _, _)| s2 <= s && e <= e2 && e2 - s2 > e - s)
        };
        found
            .iter()
            .filter(|m| !inside_longer(m))
            .map(|&(_, _, g, p)| (g, p))
            .collect()
    }

    /// Each phrase of `question` (analysed terms as ids, in order) that has equivalents,
    /// with them, as written in the file: what `parley kb search` shows.
    pub fn explain(&self, question: &[WordId]) -> Vec<(&str, Vec<&str>)> {
        let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
        for (g, p) in self.matches(question) {
            let others = (0..self.written[g].len()).filter(|&q| q != p);
            let line = (
                self.written[g][p].as_str(),
                others.map(|q| self.written[g][q].as_str()).collect(),
            );
            if !out.contains(&line) {
                out.push(line);
            }
        }
        out
    }

    /// For each word of `question` (analysed terms as ids, in order) the other phrases of
    /// every group one of its phrases occurs in, where they cover that word.
    pub fn alternatives(&self, question: &[WordId]) -> HashMap<WordId, Vec<&[WordId]>> {
        let mut out: HashMap<WordId, Vec<&[WordId]>> = HashMap::new();
        for (g, p) in self.matches(question) {
            for (q, other) in self.groups[g].iter().enumerate() {
                if q == p {
                    continue;
                }
                for word in &self.groups[g][p] {
                    out.entry(*word).or_default().push(other);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::text::analyzer;
    use tantivy::tokenizer::TextAnalyzer;

    fn ids(a: &mut TextAnalyzer, text: &str) -> Vec<WordId> {
        terms(a, text).iter().map(|t| word_id(t)).collect()
    }

    #[test]
    fn a_phrase_in_the_question_brings_its_group() {
        let mut a = analyzer();
        let s = Synonyms::parse(
            "# payment\namex, american express\nnewsletter, mailing list, marketing emails\n",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        let q = ids(&mut a, "how do I get off your mailing list");
        let alt = s.alternatives(&q);
        let newsletter = ids(&mut a, "newsletter");
        for w in ids(&mut a, "mailing list") {
            assert!(alt[&w].contains(&newsletter.as_slice()));
        }
        // "list" alone is not "mailing list".
        assert!(s.alternatives(&ids(&mut a, "a list of stores")).is_empty());
        assert_eq!(
            s.explain(&q),
            [("mailing list", vec!["newsletter", "marketing emails"])]
        );
        let amex = ids(&mut a, "do you take amex");
        let alt = s.alternatives(&amex);
        assert_eq!(alt[&word_id("amex")], [ids(&mut a, "american express")]);
    }

    #[test]
    fn the_longest_phrase_wins_where_two_overlap() {
        let mut a = analyzer();
        let s = Synonyms::parse(
            "personal data, gdpr\nhuman, person\nfast, express\namex, american express",
        )
        .unwrap();
        let data = ids(&mut a, "delete my personal data");
        let alt = s.alternatives(&data);
        let person = word_id(&terms(&mut a, "personal")[0]);
        assert_eq!(alt[&person], [ids(&mut a, "gdpr")]);
        let amex = s.alternatives(&ids(&mut a, "american express card"));
        assert_eq!(amex[&word_id("express")], [ids(&mut a, "amex")]);
        let fast = s.alternatives(&ids(&mut a, "express delivery"));
        assert_eq!(fast[&word_id("express")], [ids(&mut a, "fast")]);
    }

    #[test]
    fn bad_lines_say_which_and_why() {
        for (text, line, why) in [
            ("amex\n", 1, "at least two"),
            ("gift, voucher\nreturn, , refund", 2, "empty phrase"),
            ("\n\nwhere is, track", 3, "only stop words"),
            ("refund => money back", 1, "one-way"),
            ("returns, returned", 1, "at least two"),
            ("account, log in", 1, "only 'log'"),
            ("broken, not working", 1, "\"not\""),
            ("parcel, package\nbox, packages", 2, "line 1"),
        ] {
            let e = Synonyms::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.reason.contains(why), "{text}: {e}");
        }
        assert!(Synonyms::english().len() > 20);
    }
}
