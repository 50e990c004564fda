//! `parley converse`: plays scripted conversations against a running Parley and reports
//! which behave as written.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::scenario::{Runner, Scenario};

use super::run::RunArgs;
use super::CliError;

#[derive(Debug, clap::Args)]
pub struct ConverseArgs {
    /// Scenario files (YAML) or directories of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print each conversation as a transcript.
    #[arg(long)]
    pub transcript: bool,
    /// How long to wait for Parley to handle one step.
    #[arg(long, default_value_t = 30)]
    pub step_timeout_secs: u64,
    /// The same settings as `parley run` (brokers, group, topics), so the runner talks to
    /// the service as configured.
    #[command(flatten)]
    pub service: RunArgs,
}

fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(super::io_err(format!("reading {}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err(CliError::Usage("no scenario files found".into()));
    }
    Ok(out)
}

pub fn run(args: ConverseArgs) -> Result<ExitCode, CliError> {
    let cfg = args.service.resolve()?;
    let files = files(&args.paths)?;
    let mut scenarios = Vec::new();
    for f in &files {
        let s = Scenario::load(f).map_err(|e| CliError::Usage(e.to_string()))?;
        let stem = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario")
            .to_string();
        scenarios.push((stem, s));
    }
    let runner = Runner::new(cfg, Duration::from_secs(args.step_timeout_secs))?;
    let mut failed = 0;
    for (stem, s) in &scenarios {
        let report = runner.run(s, stem);
        if args.transcript {
            println!("\n{}", s.name);
            for line in &report.transcript {
                println!("{line}");
            }
        }
        if report.passed() {
            println!("ok    {stem}: {}", report.name);
        } else {
            failed += 1;
            println!("FAIL  {stem}: {}", report.name);
            for f in &report.failures {
                println!("        {f}");
            }
        }
    }
    println!(
        "\n{} conversations: {} passed, {failed} failed",
        scenarios.len(),
        scenarios.len() - failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
