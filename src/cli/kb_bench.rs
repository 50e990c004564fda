//! `parley kb bench`: a large catalogue through the real store, encoder and indexes. Fills
//! a state directory with N products (variants of the given ones, each embedded), then
//! measures what a start of `parley run` costs (the index rebuild, its memory) and what
//! retrieval adds to each message.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::kb::retrieval;
use super::run::RunArgs;
use super::CliError;
use crate::model::{Classify, Embedder, ModelError, ModelHandle};
use crate::retrieval::content::Content;
use crate::retrieval::eval::load_questions;
use crate::retrieval::{product_text, Retriever};
use crate::service::rebuild;
use crate::state::{Store, StoredVectors};
use crate::wire::{Prediction, Product};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Products to hold.
    #[arg(long, default_value_t = 100_000)]
    pub products: usize,
    /// Products the catalogue is varied from (and articles to add).
    #[arg(long, default_value = "examples/kb")]
    pub content: PathBuf,
    /// Questions to time (JSON Lines with `text`).
    #[arg(long, default_value = "data/kb-eval/test.jsonl")]
    pub questions: PathBuf,
    /// Messages embedded together, as the service batches them.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[command(flatten)]
    pub service: RunArgs,
}

/// The encoder alone on the model thread.
struct EncoderOnly(Embedder);

impl Classify for EncoderOnly {
    fn classify_batch(&mut self, _: &[String]) -> Result<Vec<Prediction>, ModelError> {
        Err(ModelError::Input("this model thread only embeds".into()))
    }
    fn embed_batch(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.0.embed(texts)
    }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The `i`-th variant of a base product: another model of the same family.
fn variant(base: &Product, i: usize) -> Product {
    const COLOURS: &[&str] = &[
        "black", "white", "navy", "olive", "sand", "red", "grey", "teal", "plum", "amber",
    ];
    const LINES: &[&str] = &[
        "Lite", "Plus", "Max", "Sport", "Classic", "Eco", "Pro", "XL",
    ];
    let mut p = base.clone();
    p.sku = format!("{}-V{i:06}", base.sku);
    p.name = format!(
        "{} {} {}",
        base.name,
        LINES[i % LINES.len()],
        2 + i / 1000 % 40
    );
    let colour = COLOURS[i / LINES.len() % COLOURS.len()];
    p.attributes.insert("color".into(), colour.into());
    p.price.amount = (base.price.amount * (0.8 + (i % 9) as f64 * 0.05) * 100.0).round() / 100.0;
    p.stock = (i % 23) as u64;
    p
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(a: BenchArgs) -> Result<ExitCode, CliError> {
    let cfg = a.service.resolve()?;
    let embedder = super::kb::load_encoder(&cfg)?;
    let fingerprint = embedder.fingerprint().to_string();
    let dims = embedder.dims();
    let base = Content::read(&a.content).map_err(|e| CliError::Usage(e.to_string()))?;
    if base.products.is_empty() {
        return Err(CliError::Usage(
            "the content holds no products to vary".into(),
        ));
    }
    std::fs::create_dir_all(&cfg.state_dir).map_err(super::io_err(format!(
        "creating {}",
        cfg.state_dir.display()
    )))?;
    let store = Store::open(&cfg.state_dir)?;

    // Fill the store up to the size asked (a second run re-uses it).
    let mut held = 0;
    store.each_knowledge::<Product>(crate::wire::SourceKind::Product, |_, _| {
        held += 1;
        Ok(())
    })?;
    let started = Instant::now();
    let mut made = 0;
    while held < a.products {
        let n = (a.products - held).min(256);
        let products: Vec<Product> = (held..held + n)
            .map(|i| variant(&base.products[i % base.products.len()], i))
            .collect();
        let texts: Vec<String> = products.iter().map(product_text).collect();
        let vectors = embedder.embed(&texts)?;
        let mut batch = store.batch();
        for (p, v) in products.iter().zip(vectors) {
            batch.put_product(
                p,
                &StoredVectors {
                    fingerprint: fingerprint.clone(),
                    text_hash: 0,
                    vectors: vec![v],
                },
            );
        }
        store.write(batch)?;
        held += n;
        made += n;
        if made % 4096 < 256 {
            eprintln!(
                "embedded {made} products ({:.0}/s)",
                made as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    // The articles too, so that each message searches both collections as in the service.
    let mut batch = store.batch();
    for article in &base.articles {
        if store.article(&article.id)?.is_none() {
            let texts = crate::retrieval::article_texts(article);
            let vectors = embedder.embed(&texts)?;
            batch.put_article(
                article,
                &StoredVectors {
                    fingerprint: fingerprint.clone(),
                    text_hash: 0,
                    vectors,
                },
            );
        }
    }
    store.write(batch)?;
    if made > 0 {
        println!(
            "filled the store with {made} products in {:.0} s ({:.0} products/s embedded)",
            started.elapsed().as_secs_f64(),
            made as f64 / started.elapsed().as_secs_f64()
        );
    }

    // What a start of `parley run` does before serving.
    let words = embedder.whole_words();
    let model = ModelHandle::spawn(EncoderOnly(embedder), 2)
        .map_err(super::io_err("starting the model thread"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(super::io_err("starting the runtime"))?;
    let rss_before = rss_mb();
    let retriever = Arc::new(
        Retriever::with_synonyms(dims, cfg.retrieval.scoring, cfg.retrieval.synonyms()?)
            .map_err(retrieval)?,
    );
    retriever.set_dictionary(words);
    let started = Instant::now();
    let rebuilt = rt.block_on(rebuild(&store, &retriever, &model, &fingerprint))?;
    let rebuild_s = started.elapsed().as_secs_f64();
    println!(
        "start-up rebuild: {} products, {} articles in {rebuild_s:.1} s ({} embedded again); \
         index memory {:.0} MB (usearch, tantivy, word sets), process RSS +{:.0} MB",
        rebuilt.products,
        rebuilt.articles,
        rebuilt.embedded,
        retriever.memory_bytes() as f64 / 1048576.0,
        rss_mb() - rss_before
    );

    // Per message: its share of the batch's embedding, and its search.
    let questions = load_questions(&a.questions).map_err(|e| CliError::Usage(e.to_string()))?;
    let texts: Vec<String> = questions.iter().map(|q| q.text.clone()).collect();
    let mut embed_ms = Vec::new();
    let mut search_ms = Vec::new();
    for chunk in texts.chunks(a.batch.max(1)) {
        // Typos are mended before embedding; that counts as search time.
        let t = Instant::now();
        let chunk: Vec<String> = chunk
            .iter()
            .map(|q| retriever.mend(q).unwrap_or_else(|| q.clone()))
            .collect();
        let mending = t.elapsed().as_secs_f64() * 1000.0 / chunk.len() as f64;
        let t = Instant::now();
        let vectors = rt.block_on(model.embed(chunk.clone()))?;
        let share = t.elapsed().as_secs_f64() * 1000.0 / chunk.len() as f64;
        for (text, v) in chunk.iter().zip(&vectors) {
            let t = Instant::now();
            retriever.search(text, Some(v)).map_err(retrieval)?;
            search_ms.push(t.elapsed().as_secs_f64() * 1000.0 + mending);
            embed_ms.push(share);
        }
    }
    let total: Vec<f64> = {
        let mut t: Vec<f64> = embed_ms
            .iter()
            .zip(&search_ms)
            .map(|(a, b)| a + b)
            .collect();
        t.sort_by(f64::total_cmp);
        t
    };
    search_ms.sort_by(f64::total_cmp);
    embed_ms.sort_by(f64::total_cmp);
    println!(
        "per message over {} questions (batches of {}): search p50 {:.2} ms, p99 {:.2} ms; \
         embedding share p50 {:.2} ms, p99 {:.2} ms; added in all p50 {:.2} ms, p99 {:.2} ms",
        total.len(),
        a.batch,
        pct(&search_ms, 0.5),
        pct(&search_ms, 0.99),
        pct(&embed_ms, 0.5),
        pct(&embed_ms, 0.99),
        pct(&total, 0.5),
        pct(&total, 0.99)
    );
    Ok(ExitCode::SUCCESS)
}
