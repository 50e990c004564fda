use std::path::PathBuf;
use std::process::ExitCode;

use super::{io_err, CliError, ModelArgs};
use crate::data::{self, Columns};
use crate::eval::{matrix_from_probs, probabilities, sweep, write_report};
use crate::model::ParleySettings;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Labelled data, .csv or .jsonl; repeat for several files.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    #[arg(long, default_value = "text")]
    pub text_column: String,
    #[arg(long, default_value = "intent")]
    pub label_column: String,
    /// Print the metrics as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write confusion.svg, report.json and index.html into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// How many of the most frequent confusions to list.
    #[arg(long, default_value_t = 10)]
    pub top_confusions: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Decide with this off-topic threshold instead of the model's own.
    #[arg(long, value_parser = parse_share)]
    pub oos_threshold: Option<f32>,
    /// Instead of the report, show in-scope accuracy and off-topic recall (with its 95%
    /// interval) at each of these thresholds, e.g. `0,0.1,0.2,0.3`. The data needs both
    /// in-scope and off-topic messages. Sweep validation data, not the test data.
    #[arg(long, value_delimiter = ',', value_parser = parse_share)]
    pub sweep: Vec<f32>,
    /// With `--sweep`: choose the lowest threshold whose off-topic recall reaches this share
    /// at 95% confidence (e.g. 0.6).
    #[arg(long, requires = "sweep", value_parser = parse_share_f64)]
    pub target_recall: Option<f64>,
}

fn parse_share(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn parse_share_f64(s: &str) -> Result<f64, String> {
    parse_share(s).map(f64::from)
}

pub fn run(a: EvalArgs) -> Result<ExitCode, CliError> {
    let cols = Columns {
        text: a.text_column,
        label: a.label_column,
    };
    let mut examples = Vec::new();
    for f in &a.data {
        examples.extend(data::read_examples(f, &cols)?);
    }
    if examples.is_empty() {
        return Err(CliError::Usage(
            "the evaluation data holds no examples".into(),
        ));
    }
    let classifier = a.model.load()?;
    let settings = ParleySettings {
        oos_threshold: a
            .oos_threshold
            .unwrap_or(classifier.settings().oos_threshold),
        ..classifier.settings().clone()
    };
    let probs = probabilities(&classifier, &examples, a.batch_size, |_| {})?;
    if !a.sweep.is_empty() {
        let mut swept = sweep(classifier.labels(), &examples, &probs, &settings, &a.sweep)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "a sweep needs both in-scope and off-topic (`{}`) messages in the data",
                    settings.oos_label
                ))
            })?;
        if let Some(target) = a.target_recall {
            swept.choose(target);
        }
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&swept).expect("sweep serialises")
            );
        } else {
            print!("{}", swept.to_text());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let matrix = matrix_from_probs(classifier.labels(), &examples, &probs, &settings);
    let report = matrix.report_with_scope(&settings.oos_label);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        println!(
            "model {} on {} ({} examples), off-topic threshold {}\n",
            a.model.model.display(),
            a.data
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            examples.len(),
            settings.oos_threshold
        );
        print!("{}", report.to_text(a.top_confusions));
    }
    if let Some(dir) = &a.report {
        let title = format!("Parley intent model {}", a.model.model.display());
        let html = write_report(dir, &title, &matrix, &report)
            .map_err(io_err(format!("writing the report to {}", dir.display())))?;
        tracing::info!(path = %html.display(), "report written");
    }
    Ok(ExitCode::SUCCESS)
}
