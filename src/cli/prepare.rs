use std::path::PathBuf;
use std::process::ExitCode;

use super::{io_err, CliError};
use crate::data::{self, clinc_off_topic, Columns, TemplateSet};
use crate::model::DEFAULT_OOS_LABEL;

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// Bitext customer-support CSV files (all versions; they are merged and de-duplicated).
    #[arg(long, required = true)]
    pub bitext: Vec<PathBuf>,
    /// CLINC150 `data_full.json` (with `domains.json` beside it), for off-topic examples.
    #[arg(long)]
    pub clinc: Option<PathBuf>,
    /// Output directory for train.jsonl, test.jsonl and oos_test.jsonl.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of the Bitext data held out for testing (stratified by intent).
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Off-topic CLINC150 queries taken per off-topic intent for training.
    #[arg(long, default_value_t = 30)]
    pub clinc_per_intent: usize,
    /// More labelled messages (JSONL, `text` and `intent`), all used for training: hand-written
    /// messages and hard negatives. Repeat for several files.
    #[arg(long)]
    pub extra: Vec<PathBuf>,
    /// Slot templates and lexicons (YAML, see `data/train/templates.yaml`) expanded into
    /// training messages.
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Messages generated from the templates per intent.
    #[arg(long, default_value_t = 120)]
    pub template_examples: usize,
    /// Bitext training utterances kept per intent (Bitext is templated: a few hundred per
    /// intent say the same thing, and more of them only outweighs the varied data).
    #[arg(long)]
    pub bitext_per_intent: Option<usize>,
    /// Evaluation sets (JSONL) whose messages, and near-copies of them, must never be trained
    /// on. Repeat for several files.
    #[arg(long)]
    pub exclude: Vec<PathBuf>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(a: PrepareArgs) -> Result<ExitCode, CliError> {
    let cols = Columns {
        text: "instruction".into(),
        label: "intent".into(),
    };
    let mut all = Vec::new();
    for f in &a.bitext {
        all.extend(data::read_examples(f, &cols)?);
    }
    let read = all.len();
    let all = data::dedup(all);
    let (mut train, test) = data::stratified_split(&all, a.test_fraction, a.seed)?;
    if let Some(cap) = a.bitext_per_intent {
        train = data::cap_per_label(train, cap);
    }
    let bitext_train = train.len();
    let mut labels: std::collections::BTreeSet<String> =
        train.iter().map(|e| e.label.clone()).collect();
    labels.insert(DEFAULT_OOS_LABEL.to_string());
    let mut generated = 0;
    if let Some(path) = &a.templates {
        let set = TemplateSet::load(path)?;
        labels.extend(set.templates.keys().cloned());
        let made = set.expand(a.template_examples, a.seed);
        generated = made.len();
        train.extend(made);
    }
    let mut written = 0;
    for path in &a.extra {
        let extra = data::read_examples(path, &Columns::default())?;
        if let Some(e) = extra.iter().find(|e| !labels.contains(&e.label)) {
            return Err(CliError::Usage(format!(
                "{}: label {:?} is not one of the model's labels ({}); a typo?",
                path.display(),
                e.label,
                labels.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        written += extra.len();
        train.extend(extra);
    }
    let mut oos_test = Vec::new();
    if let Some(clinc) = &a.clinc {
        let off = clinc_off_topic(clinc, a.clinc_per_intent, DEFAULT_OOS_LABEL, a.seed)?;
        train.extend(off.train);
        oos_test = off.oos_test;
    }
    // Nothing of the test side may reach training, not even as a near-duplicate.
    let test_keys: std::collections::HashSet<String> = test
        .iter()
        .chain(&oos_test)
        .map(|e| data::normalise(&e.text))
        .collect();
    train.retain(|e| !test_keys.contains(&data::normalise(&e.text)));
    let mut excluded = Vec::new();
    for path in &a.exclude {
        excluded.extend(data::read_examples(path, &Columns::default())?);
    }
    let before = train.len();
    let train = data::drop_near_copies(data::dedup(train), &excluded);
    let near_copies = before - train.len();
    std::fs::create_dir_all(&a.out).map_err(io_err(format!("creating {}", a.out.display())))?;
    data::write_jsonl(&a.out.join("train.jsonl"), &train)?;
    data::write_jsonl(&a.out.join("test.jsonl"), &test)?;
    if !oos_test.is_empty() {
        data::write_jsonl(&a.out.join("oos_test.jsonl"), &oos_test)?;
    }
    let off_topic = train
        .iter()
        .filter(|e| e.label == DEFAULT_OOS_LABEL)
        .count();
    println!(
        "read {read} Bitext rows, {} after de-duplication ({bitext_train} for training); \
         {generated} from templates, {written} from --extra files; train.jsonl: {} ({} in scope, \
         {off_topic} off-topic, {} labels), dropped {near_copies} duplicates or near-copies of \
         evaluation messages; test.jsonl: {}, oos_test.jsonl: {}",
        all.len(),
        train.len(),
        train.len() - off_topic,
        data::label_set(&train).len(),
        test.len(),
        oos_test.len()
    );
    Ok(ExitCode::SUCCESS)
}
