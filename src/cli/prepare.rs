use std::path::PathBuf;
use std::process::ExitCode;

use super::{io_err, CliError};
use crate::data::{self, clinc_off_topic, Columns};
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
    let in_scope_train = train.len();
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
    std::fs::create_dir_all(&a.out).map_err(io_err(format!("creating {}", a.out.display())))?;
    data::write_jsonl(&a.out.join("train.jsonl"), &train)?;
    data::write_jsonl(&a.out.join("test.jsonl"), &test)?;
    if !oos_test.is_empty() {
        data::write_jsonl(&a.out.join("oos_test.jsonl"), &oos_test)?;
    }
    println!(
        "read {read} Bitext rows, {} after de-duplication; train.jsonl: {} ({} in scope, {} off-topic), \
         test.jsonl: {}, oos_test.jsonl: {}",
        all.len(),
        train.len(),
        in_scope_train,
        train.len() - in_scope_train,
        test.len(),
        oos_test.len()
    );
    Ok(ExitCode::SUCCESS)
}
