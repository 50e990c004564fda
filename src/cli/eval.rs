use std::path::PathBuf;
use std::process::ExitCode;

use super::{io_err, CliError, ModelArgs};
use crate::data::{self, Columns};
use crate::eval::{evaluate, write_report};

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
    let matrix = evaluate(&classifier, &examples, a.batch_size, |_| {})?;
    let report = matrix.report_with_scope(&classifier.settings().oos_label);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        println!(
            "model {} on {} ({} examples)\n",
            a.model.model.display(),
            a.data
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            examples.len()
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
