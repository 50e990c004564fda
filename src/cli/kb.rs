//! `parley kb`: publish articles and products to their topics, check what a question finds,
//! and measure retrieval on labelled questions.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::run::RunArgs;
use super::CliError;
use crate::model::Embedder;
use crate::retrieval::content::Content;
use crate::retrieval::eval::{evaluate, fit_articles, load_questions, probe, tune, with_typo};
use crate::retrieval::{article_texts, product_text, Retriever};

#[derive(Debug, clap::Args)]
pub struct KbArgs {
    #[command(subcommand)]
    pub command: KbCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KbCommand {
    /// Publish articles and products (JSON Lines, JSON arrays or YAML lists; a file or a
    /// directory of them) to `kb.articles` and `commerce.products`, keyed by id and SKU.
    Load(Box<LoadArgs>),
    /// Show what a question finds: the ranked articles and products with their scores.
    Search(Box<SearchArgs>),
    /// Measure retrieval on labelled questions (top-1, recall@3, unanswerable refused).
    Eval(Box<EvalArgs>),
    /// Measure a large catalogue: start-up rebuild time, memory, retrieval time per message.
    Bench(Box<super::kb_bench::BenchArgs>),
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Files or directories of articles and products.
    pub paths: Vec<PathBuf>,
    /// Delete an article or product: `article:ID` or `product:SKU` (a tombstone). Repeatable.
    #[arg(long)]
    pub delete: Vec<String>,
    #[command(flatten)]
    pub service: RunArgs,
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// The customer's question.
    pub question: String,
    /// Search these files instead of what is on the topics.
    #[arg(long)]
    pub file: Vec<PathBuf>,
    #[command(flatten)]
    pub service: RunArgs,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Articles and products to search (files or directories).
    #[arg(long, required = true)]
    pub content: Vec<PathBuf>,
    /// Labelled questions (JSON Lines: {"text", "expect": "article:ID"|"product:SKU"|null}).
    #[arg(long, required = true)]
    pub questions: PathBuf,
    /// Calibrate the scoring on these questions first (never the ones evaluated) and print
    /// the settings found; give it more than once to calibrate on several files together.
    #[arg(long)]
    pub tune: Vec<PathBuf>,
    /// With --tune: keep only settings that give no answer to at least this percentage of
    /// the unanswerable calibration questions, and among them answer the most right.
    #[arg(long, value_name = "PERCENT", requires = "tune", value_parser = percent)]
    pub min_refused: Option<f64>,
    /// With --tune: keep the configured products' settings, and fit how articles rank (the
    /// weights of their score's terms) and decide (a logistic model of the best hit's
    /// signals and the question's length).
    #[arg(long, requires = "tune")]
    pub fit_articles: bool,
    /// Give each judged question one typo first (as customers type: a letter dropped,
    /// doubled or swapped in one word of five letters or more), chosen by this seed.
    #[arg(long, value_name = "SEED")]
    pub typos: Option<u64>,
    /// List each question answered wrongly.
    #[arg(long)]
    pub misses: bool,
    /// Write each question's candidates and their signals (JSON Lines), for studying the
    /// scoring.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    #[command(flatten)]
    pub service: RunArgs,
}

pub fn run(a: KbArgs) -> Result<ExitCode, CliError> {
    match a.command {
        KbCommand::Load(a) => super::kb_load::run(*a),
        KbCommand::Search(a) => search(*a),
        KbCommand::Eval(a) => eval(*a),
        KbCommand::Bench(a) => super::kb_bench::run(*a),
    }
}

fn read_content(paths: &[PathBuf]) -> Result<Content, CliError> {
    let mut all = Content::default();
    for p in paths {
        let c = Content::read(p).map_err(|e| CliError::Usage(e.to_string()))?;
        all.articles.extend(c.articles);
        all.products.extend(c.products);
    }
    Ok(all)
}

/// The retrieval encoder (or blend) the configuration names, on its device.
pub(super) fn load_encoder(cfg: &crate::config::Config) -> Result<Embedder, CliError> {
    let device = super::run::config_device(cfg)?;
    Ok(Embedder::blend(&cfg.retrieval.encoders(), &device)?)
}

/// Embeds and indexes `content` in memory.
pub fn build(
    content: &Content,
    embedder: &Embedder,
    cfg: &crate::config::Retrieval,
) -> Result<Retriever, CliError> {
    let retriever = Retriever::with_synonyms(embedder.dims(), cfg.scoring, cfg.synonyms()?)
        .map_err(retrieval)?;
    retriever.set_dictionary(embedder.whole_words());
    for a in &content.articles {
        let v = embedder.embed(&article_texts(a))?;
        retriever.upsert_article(a, &v).map_err(retrieval)?;
    }
    for chunk in content.products.chunks(64) {
        let texts: Vec<String> = chunk.iter().map(product_text).collect();
        let vs = embedder.embed(&texts)?;
        for (p, v) in chunk.iter().zip(&vs) {
            retriever.upsert_product(p, v).map_err(retrieval)?;
        }
    }
    retriever.commit().map_err(retrieval)?;
    Ok(retriever)
}

pub(super) fn retrieval(e: crate::retrieval::RetrievalError) -> CliError {
    CliError::Usage(e.to_string())
}

fn search(a: SearchArgs) -> Result<ExitCode, CliError> {
    let cfg = a.service.resolve()?;
    let content = if a.file.is_empty() {
        super::kb_load::read_topics(&cfg)?
    } else {
        read_content(&a.file)?
    };
    let embedder = load_encoder(&cfg)?;
    let retriever = build(&content, &embedder, &cfg.retrieval)?;
    let question = match retriever.mend(&a.question) {
        Some(mended) => {
            println!("searched as: {mended}");
            mended
        }
        None => a.question.clone(),
    };
    for (phrase, equivalents) in retriever.equivalents(&question) {
        println!("\"{phrase}\" also covered by: {}", equivalents.join(", "));
    }
    let fillers = retriever.fillers(&question);
    if !fillers.is_empty() {
        println!(
            "left out of the covered share where a document does not use them: {}",
            fillers.join(", ")
        );
    }
    let q = embedder.embed(&[question.as_str()])?;
    let found = retriever
        .search(&question, q.first().map(Vec::as_slice))
        .map_err(retrieval)?;
    let s = &cfg.retrieval.scoring;
    let article_rule = match &s.articles.decision {
        Some(_) => "article: the fitted decision".to_string(),
        None => format!("article threshold {:.2}", s.articles.threshold),
    };
    println!(
        "{} articles, {} products; {article_rule}, product threshold {:.2}; each hit: \
         its score, its margin over what answers (* it answers)",
        content.articles.len(),
        content.products.len(),
        s.products.threshold
    );
    for (title, hits) in [("articles", &found.articles), ("products", &found.products)] {
        println!("\n{title}:");
        if hits.is_empty() {
            println!("  (none)");
        }
        for h in hits.iter() {
            let name = match h.kind {
                crate::wire::SourceKind::Article => content
                    .articles
                    .iter()
                    .find(|x| x.id == h.id)
                    .map(|x| x.title.clone()),
                crate::wire::SourceKind::Product => content
                    .products
                    .iter()
                    .find(|x| x.sku == h.id)
                    .map(|x| x.name.clone()),
            }
            .unwrap_or_default();
            let name_share = if h.candidate.name_coverage < 0.0 {
                "another model named".to_string()
            } else {
                format!("{:.2}", h.candidate.name_coverage)
            };
            println!(
                "  {} {:.3} {:+.3}  {:<28} {}  (meaning {:.3}, words {:.2}, name {name_share}, \
                 question covered {:.2})",
                if h.confident { "*" } else { " " },
                h.score,
                h.margin,
                h.id,
                name,
                h.candidate.semantic,
                h.candidate.bm25,
                h.candidate.covered,
            );
        }
    }
    match found.best() {
        Some(h) => println!("\nanswer from {:?} {}", h.kind, h.id),
        None => println!("\nno answer clears its threshold: the intent path answers"),
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

fn eval(a: EvalArgs) -> Result<ExitCode, CliError> {
    // Checked before any work, and by the file itself, however each path is spelt.
    let same_file = |p: &PathBuf| match (p.canonicalize(), a.questions.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => *p == a.questions,
    };
    if a.tune.iter().any(same_file) {
        return Err(CliError::Usage(format!(
            "{} is both calibrated on (--tune) and evaluated (--questions); \
             a calibration set must be apart from the questions it is judged by",
            a.questions.display()
        )));
    }
    let cfg = a.service.resolve()?;
    let content = read_content(&a.content)?;
    let embedder = load_encoder(&cfg)?;
    let started = Instant::now();
    let retriever = build(&content, &embedder, &cfg.retrieval)?;
    println!(
        "indexed {} articles and {} products in {:.1} s",
        content.articles.len(),
        content.products.len(),
        started.elapsed().as_secs_f64()
    );
    let probes_of = |path: &PathBuf, typos: Option<u64>| -> Result<_, CliError> {
        let mut qs = load_questions(path).map_err(|e| CliError::Usage(e.to_string()))?;
        if let Some(seed) = typos {
            for q in &mut qs {
                q.text = with_typo(&q.text, seed);
            }
        }
        let texts: Vec<String> = qs
            .iter()
            .map(|q| retriever.mend(&q.text).unwrap_or_else(|| q.text.clone()))
            .collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            vectors.extend(embedder.embed(chunk)?);
        }
        probe(&retriever, &qs, &texts, &vectors).map_err(retrieval)
    };
    let mut settings = cfg.retrieval.scoring;
    if !a.tune.is_empty() {
        let mut probes = Vec::new();
        for dev in &a.tune {
            probes.extend(probes_of(dev, None)?);
        }
        settings = if a.fit_articles {
            fit_articles(&probes, settings, a.min_refused).ok_or_else(|| {
                CliError::Usage(
                    "cannot fit how articles rank and decide on these calibration questions: \
                     they need at least two right and two wrong articles, and a ranking fitted \
                     on them must weigh the articles' meaning positively"
                        .into(),
                )
            })?
        } else {
            tune(&probes, settings, a.min_refused)
        };
        // Printed as a configuration file takes it, nested under its sections, so that it
        // can be pasted (or saved and given to --config) as it is.
        #[derive(serde::Serialize)]
        struct RetrievalSection<'a> {
            scoring: &'a crate::retrieval::RetrievalSettings,
        }
        #[derive(serde::Serialize)]
        struct ConfigFile<'a> {
            retrieval: RetrievalSection<'a>,
        }
        let nested = ConfigFile {
            retrieval: RetrievalSection { scoring: &settings },
        };
        println!(
            "tuned on {}{}: {}\n# the settings found, for the configuration file:\n{}",
            a.tune
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
            a.min_refused
                .map(|f| format!(" (at least {f}% of unanswerable ones refused)"))
                .unwrap_or_default(),
            evaluate(&probes, &settings).summary(),
            toml::to_string(&nested).expect("settings serialise")
        );
    }
    let probes = probes_of(&a.questions, a.typos)?;
    if let Some(path) = &a.dump {
        let mut out = String::new();
        for p in &probes {
            let c = |cs: &[crate::retrieval::Candidate]| {
                cs.iter()
                    .map(|c| {
                        serde_json::json!([
                            c.id,
                            c.semantic,
                            c.bm25,
                            c.name_coverage,
                            c.second_semantic,
                            c.covered
                        ])
                    })
                    .collect::<Vec<_>>()
            };
            let expect = p.question.expect.as_ref().map(|(k, id)| {
                format!(
                    "{}:{id}",
                    if *k == crate::wire::SourceKind::Article {
                        "article"
                    } else {
                        "product"
                    }
                )
            });
            out.push_str(
                &serde_json::json!({"text": p.question.text, "expect": expect,
                "articles": c(&p.articles), "products": c(&p.products)})
                .to_string(),
            );
            out.push('\n');
        }
        std::fs::write(path, out).map_err(super::io_err(format!("writing {}", path.display())))?;
    }
    let report = evaluate(&probes, &settings);
    println!(
        "encoder {} on {}: {}",
        embedder.fingerprint(),
        a.questions.display(),
        report.summary()
    );
    if a.misses {
        for m in &report.misses {
            println!("  miss: {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
