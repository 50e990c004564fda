//! Off-topic examples from CLINC150 for teaching the model what is out of scope.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{DataError, Example};

/// CLINC150 domains that an e-commerce customer-service bot does not serve.
/// `banking` and `credit_cards` are left out because they overlap with payment questions.
const OFF_TOPIC_DOMAINS: &[&str] = &[
    "kitchen_and_dining",
    "home",
    "auto_and_commute",
    "travel",
    "utility",
    "work",
    "small_talk",
];

/// CLINC intents inside those domains that a shop's customers say too, in other words: shop
/// requests ("order"), asking for a person or a phone number ("are_you_a_bot", "make_call"),
/// lost parcels ("lost_luggage") and money arriving ("direct_deposit"). Teaching the model
/// that these are off-topic would teach it to miss real requests. (The `meta` domain, with
/// "yes", "no" and "cancel", is left out whole: the dialogue layer reads those in context.)
const KEEP_OUT: &[&str] = &[
    "order",
    "order_status",
    "shopping_list",
    "shopping_list_update",
    "are_you_a_bot",
    "what_can_i_ask_you",
    "who_do_you_work_for",
    "make_call",
    "text",
    "lost_luggage",
    "direct_deposit",
    "payday",
    "income",
];

/// What was taken from CLINC150.
pub struct ClincOffTopic {
    /// Training examples, all labelled `oos_label`.
    pub train: Vec<Example>,
    /// CLINC's own `oos_test` split, labelled `oos_label`, for evaluation only.
    pub oos_test: Vec<Example>,
}

fn load_json(path: &Path) -> Result<serde_json::Value, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| DataError::Format {
        path: path.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })
}

fn pairs(
    v: &serde_json::Value,
    split: &str,
    path: &Path,
) -> Result<Vec<(String, String)>, DataError> {
    let rows = v
        .get(split)
        .and_then(|r| r.as_array())
        .ok_or_else(|| DataError::Format {
            path: path.to_path_buf(),
            reason: format!("no {split:?} split: is this CLINC150's data_full.json?"),
        })?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let a = r.as_array()?;
            Some((
                a.first()?.as_str()?.to_string(),
                a.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Reads `data_full.json` (and `domains.json` beside it). Training gets CLINC's `oos_train`
/// and `oos_val` plus `per_intent` sampled queries of every off-topic intent; `oos_test` is
/// kept apart untouched.
pub fn clinc_off_topic(
    data_full: &Path,
    per_intent: usize,
    oos_label: &str,
    seed: u64,
) -> Result<ClincOffTopic, DataError> {
    let data = load_json(data_full)?;
    let domains_path = data_full.with_file_name("domains.json");
    let domains = load_json(&domains_path)?;
    let mut off_topic: HashSet<String> = HashSet::new();
    for d in OFF_TOPIC_DOMAINS {
        let intents =
            domains
                .get(*d)
                .and_then(|v| v.as_array())
                .ok_or_else(|| DataError::Format {
                    path: domains_path.clone(),
                    reason: format!("no domain {d:?}"),
                })?;
        off_topic.extend(
            intents
                .iter()
                .filter_map(|i| i.as_str())
                .filter(|i| !KEEP_OUT.contains(i))
                .map(String::from),
        );
    }
    let label = |text: String| Example {
        text,
        label: oos_label.to_string(),
    };
    let mut train: Vec<Example> = pairs(&data, "oos_train", data_full)?
        .into_iter()
        .chain(pairs(&data, "oos_val", data_full)?)
        .map(|(t, _)| label(t))
        .collect();
    let mut by_intent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (text, intent) in pairs(&data, "train", data_full)? {
        if off_topic.contains(&intent) {
            by_intent.entry(intent).or_default().push(text);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for (_, mut texts) in by_intent {
        texts.shuffle(&mut rng);
        train.extend(texts.into_iter().take(per_intent).map(label));
    }
    let oos_test = pairs(&data, "oos_test", data_full)?
        .into_iter()
        .map(|(t, _)| label(t))
        .collect();
    Ok(ClincOffTopic { train, oos_test })
}
