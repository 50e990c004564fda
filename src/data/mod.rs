//! Labelled text data: reading CSV/JSONL, de-duplication, stratified splits.

mod clinc;
mod templates;

pub use clinc::{clinc_off_topic, ClincOffTopic};
pub use templates::TemplateSet;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// One labelled utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    #[serde(rename = "intent")]
    pub label: String,
}

impl Example {
    pub fn new(text: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            label: label.into(),
        }
    }
}

/// Which columns (CSV) or fields (JSONL) hold the text and the label.
#[derive(Debug, Clone)]
pub struct Columns {
    pub text: String,
    pub label: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            text: "text".into(),
            label: "intent".into(),
        }
    }
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads examples from a `.csv` file (with a header row) or a `.jsonl` file (one object per line).
pub fn read_examples(path: &Path, cols: &Columns) -> Result<Vec<Example>, DataError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => read_csv(path, cols),
        "jsonl" | "ndjson" => read_jsonl(path, cols),
        _ => Err(DataError::Format {
            path: path.to_path_buf(),
            reason: "unknown data format: expected a .csv or .jsonl file".into(),
        }),
    }
}

fn read_csv(path: &Path, cols: &Columns) -> Result<Vec<Example>, DataError> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| DataError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let headers = rdr
        .headers()
        .map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .clone();
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "no column {name:?} (columns: {}); choose with --text-column/--label-column",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            })
    };
    let (ti, li) = (find(&cols.text)?, find(&cols.label)?);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| DataError::Line {
            path: path.to_path_buf(),
            line: i + 2,
            reason: e.to_string(),
        })?;
        push_example(&mut out, rec.get(ti), rec.get(li), path, i + 2)?;
    }
    Ok(out)
}

fn read_jsonl(path: &Path, cols: &Columns) -> Result<Vec<Example>, DataError> {
    let file = std::fs::File::open(path).map_err(read_err(path))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read_err(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| DataError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason: format!("invalid JSON: {e}"),
        })?;
        push_example(
            &mut out,
            v.get(&cols.text).and_then(|t| t.as_str()),
            v.get(&cols.label).and_then(|t| t.as_str()),
            path,
            i + 1,
        )?;
    }
    Ok(out)
}

fn push_example(
    out: &mut Vec<Example>,
    text: Option<&str>,
    label: Option<&str>,
    path: &Path,
    line: usize,
) -> Result<(), DataError> {
    let line_err = |reason: &str| DataError::Line {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    };
    let text = text.ok_or_else(|| line_err("missing text"))?.trim();
    let label = label.ok_or_else(|| line_err("missing label"))?.trim();
    if label.is_empty() {
        return Err(line_err("empty label"));
    }
    // Empty texts carry no signal; they are skipped rather than failing a whole data set.
    if !text.is_empty() {
        out.push(Example {
            text: text.to_string(),
            label: label.to_string(),
        });
    }
    Ok(())
}

/// Writes examples as JSONL (`{"text", "intent"}` per line).
pub fn write_jsonl(path: &Path, examples: &[Example]) -> Result<(), DataError> {
    let file = std::fs::File::create(path).map_err(read_err(path))?;
    let mut w = std::io::BufWriter::new(file);
    for e in examples {
        let line = serde_json::to_string(e).expect("example serialises");
        writeln!(w, "{line}").map_err(read_err(path))?;
    }
    w.flush().map_err(read_err(path))
}

/// The key two texts share when they are the same utterance up to case and spacing.
pub fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Drops repeated texts (compared after [`normalise`]), keeping the first occurrence.
pub fn dedup(examples: Vec<Example>) -> Vec<Example> {
    let mut seen = HashSet::new();
    examples
        .into_iter()
        .filter(|e| seen.insert(normalise(&e.text)))
        .collect()
}

/// At most `cap` examples per label, the first ones kept.
pub fn cap_per_label(examples: Vec<Example>, cap: usize) -> Vec<Example> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    examples
        .into_iter()
        .filter(|e| {
            let n = count.entry(e.label.clone()).or_default();
            *n += 1;
            *n <= cap
        })
        .collect()
}

/// The lower-cased words of a text, without punctuation.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Drops training examples that are near-copies of evaluation messages (word sets that
/// overlap by 80% or more, Jaccard), so an evaluation set measures what the model learned,
/// not what it memorised.
pub fn drop_near_copies(train: Vec<Example>, eval: &[Example]) -> Vec<Example> {
    let eval: Vec<HashSet<String>> = eval.iter().map(|e| words(&e.text)).collect();
    train
        .into_iter()
        .filter(|e| {
            let w = words(&e.text);
            !eval.iter().any(|v| {
                let shared = w.intersection(v).count();
                // Short messages ("refund??") only count when their words are the same.
                if v.len() < 3 {
                    return w == *v;
                }
                shared * 5 >= (w.len() + v.len() - shared) * 4
            })
        })
        .collect()
}

/// Splits each label's examples with the same ratio, so rare labels appear on both sides.
/// Returns `(kept, held_out)`; `fraction` is the held-out share.
pub fn stratified_split(
    examples: &[Example],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<Example>, Vec<Example>), DataError> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(DataError::Invalid(format!(
            "split fraction {fraction} must be in [0, 1)"
        )));
    }
    let mut by_label: BTreeMap<&str, Vec<&Example>> = BTreeMap::new();
    for e in examples {
        by_label.entry(&e.label).or_default().push(e);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for (_, mut group) in by_label {
        group.shuffle(&mut rng);
        let mut n_held = (group.len() as f64 * fraction).round() as usize;
        if fraction > 0.0 && n_held == 0 && group.len() >= 2 {
            n_held = 1;
        }
        held.extend(group[..n_held].iter().map(|e| (*e).clone()));
        kept.extend(group[n_held..].iter().map(|e| (*e).clone()));
    }
    kept.shuffle(&mut rng);
    held.shuffle(&mut rng);
    Ok((kept, held))
}

/// Sorted distinct labels.
pub fn label_set(examples: &[Example]) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = examples.iter().map(|e| e.label.as_str()).collect();
    set.into_iter().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, label: &str) -> Example {
        Example::new(text, label)
    }

    #[test]
    fn near_copies_of_evaluation_messages_are_dropped() {
        let eval = [
            ex(
                "ordered a blender last week still nothing where is it",
                "track_order",
            ),
            ex("refund??", "get_refund"),
        ];
        let train = vec![
            ex(
                "Ordered a blender last week. Still nothing, where is it?",
                "track_order",
            ),
            ex(
                "ordered a kettle last week still nothing where is it",
                "track_order",
            ),
            ex("REFUND", "get_refund"),
            ex("refund please", "get_refund"),
            ex("where is my blender", "track_order"),
        ];
        let kept: Vec<String> = drop_near_copies(train, &eval)
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(kept, ["refund please", "where is my blender"]);
    }

    #[test]
    fn cap_keeps_the_first_per_label() {
        let v = vec![ex("a", "x"), ex("b", "x"), ex("c", "y"), ex("d", "x")];
        let kept: Vec<String> = cap_per_label(v, 2).into_iter().map(|e| e.text).collect();
        assert_eq!(kept, ["a", "b", "c"]);
    }

    #[test]
    fn dedup_ignores_case_and_spacing() {
        let out = dedup(vec![
            ex("Track my order", "a"),
            ex("track  my ORDER ", "a"),
            ex("x", "b"),
        ]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let mut data = Vec::new();
        for i in 0..50 {
            data.push(ex(&format!("a{i}"), "a"));
        }
        for i in 0..10 {
            data.push(ex(&format!("b{i}"), "b"));
        }
        let (train, test) = stratified_split(&data, 0.2, 7).unwrap();
        assert_eq!(test.iter().filter(|e| e.label == "a").count(), 10);
        assert_eq!(test.iter().filter(|e| e.label == "b").count(), 2);
        assert_eq!(train.len() + test.len(), 60);
        let train_texts: HashSet<_> = train.iter().map(|e| &e.text).collect();
        assert!(test.iter().all(|e| !train_texts.contains(&e.text)));
        let (_, again) = stratified_split(&data, 0.2, 7).unwrap();
        assert_eq!(test, again);
    }

    #[test]
    fn csv_and_jsonl_read_with_configurable_columns() {
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("d.csv");
        std::fs::write(
            &csv_path,
            "utterance,category\n\"hi, there\",greet\n,empty\n",
        )
        .unwrap();
        let cols = Columns {
            text: "utterance".into(),
            label: "category".into(),
        };
        let got = read_examples(&csv_path, &cols).unwrap();
        assert_eq!(got, vec![ex("hi, there", "greet")]);
        let err = read_examples(&csv_path, &Columns::default()).unwrap_err();
        assert!(err.to_string().contains("no column \"text\""), "{err}");

        let jl = dir.path().join("d.jsonl");
        std::fs::write(
            &jl,
            "{\"text\":\"where is it\",\"intent\":\"track_order\"}\n\nnot json\n",
        )
        .unwrap();
        let err = read_examples(&jl, &Columns::default()).unwrap_err();
        assert!(err.to_string().contains("d.jsonl:3: invalid JSON"), "{err}");
    }
}
