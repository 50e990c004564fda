//! Training messages from slot templates: "where is my {product}, it's been {when}" filled
//! from lexicons of products, brands, payment methods, carriers and places, so the model sees
//! the nouns real customers use and learns that an unfamiliar noun in a shop request is still
//! a shop request.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use super::{normalise, DataError, Example};

/// `templates.yaml`: lexicons by slot name, and templates by intent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSet {
    pub lexicons: BTreeMap<String, Vec<String>>,
    pub templates: BTreeMap<String, Vec<String>>,
}

/// The slot names in a template, in order: "{product}" gives "product".
fn slots(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in {template:?}"))?;
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("'}}' without '{{' in {template:?}"));
    }
    Ok(out)
}

impl TemplateSet {
    /// Reads and checks the file: every slot a template uses has a non-empty lexicon.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let set: Self = serde_yaml::from_str(&text).map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            reason: format!("not a template file (lexicons:, templates:): {e}"),
        })?;
        set.check().map_err(|reason| DataError::Format {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(set)
    }

    fn check(&self) -> Result<(), String> {
        for (intent, list) in &self.templates {
            if list.is_empty() {
                return Err(format!("intent {intent:?} has no templates"));
            }
            for t in list {
                for slot in slots(t)? {
                    match self.lexicons.get(slot) {
                        Some(words) if !words.is_empty() => {}
                        _ => {
                            return Err(format!(
                                "template {t:?} of {intent:?} uses {{{slot}}}, which has no lexicon"
                            ))
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Up to `per_intent` distinct messages for every intent, each template used in turn
    /// (so every template is used about equally) with slots filled at random. Seeded.
    pub fn expand(&self, per_intent: usize, seed: u64) -> Vec<Example> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        for (intent, list) in &self.templates {
            let mut seen = HashSet::new();
            let mut order: Vec<&String> = list.iter().collect();
            order.shuffle(&mut rng);
            // A template without slots yields one message; give up on an intent whose
            // templates cannot make `per_intent` distinct ones.
            let mut attempts = 0;
            while seen.len() < per_intent && attempts < per_intent * 20 {
                let t = order[attempts % order.len()];
                attempts += 1;
                let text = self.fill(t, &mut rng);
                if seen.insert(normalise(&text)) {
                    out.push(Example {
                        text,
                        label: intent.clone(),
                    });
                }
            }
        }
        out
    }

    fn fill(&self, template: &str, rng: &mut StdRng) -> String {
        let mut text = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            text.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').unwrap_or(after.len());
            let words = &self.lexicons[&after[..close]];
            text.push_str(&words[rng.gen_range(0..words.len())]);
            rest = after.get(close + 1..).unwrap_or("");
        }
        text.push_str(rest);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(yaml: &str) -> Result<TemplateSet, String> {
        let s: TemplateSet = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        s.check()?;
        Ok(s)
    }

    #[test]
    fn fills_every_slot_from_its_lexicon() {
        let s = set("lexicons:\n  product: [kettle, kayak paddle]\n  carrier: [DHL]\n\
                     templates:\n  track_order: [\"where is my {product}, {carrier} says nothing\"]\n")
        .unwrap();
        let out = s.expand(2, 1);
        assert_eq!(out.len(), 2);
        let texts: HashSet<&str> = out.iter().map(|e| e.text.as_str()).collect();
        assert!(texts.contains("where is my kettle, DHL says nothing"));
        assert!(texts.contains("where is my kayak paddle, DHL says nothing"));
        assert!(out.iter().all(|e| e.label == "track_order"));
    }

    #[test]
    fn stops_when_templates_cannot_make_more_distinct_messages() {
        let s = set("lexicons: {}\ntemplates:\n  review: [\"5 stars\", \"loved it\"]\n").unwrap();
        assert_eq!(s.expand(50, 1).len(), 2);
    }

    #[test]
    fn unknown_slot_and_broken_braces_are_named() {
        let e =
            set("lexicons: {}\ntemplates:\n  review: [\"my {prodct} is great\"]\n").unwrap_err();
        assert!(e.contains("{prodct}") && e.contains("review"), "{e}");
        let e =
            set("lexicons: {}\ntemplates:\n  review: [\"my {product is great\"]\n").unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
    }

    #[test]
    fn same_seed_same_messages() {
        let y = "lexicons:\n  p: [a, b, c, d, e, f]\ntemplates:\n  x: [\"{p} {p}\"]\n";
        assert_eq!(set(y).unwrap().expand(5, 7), set(y).unwrap().expand(5, 7));
    }
}
