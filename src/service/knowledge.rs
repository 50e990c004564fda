//! The knowledge tables: `kb.articles` and `commerce.products` applied in batches into
//! RocksDB (record and vectors) and then into the search indexes, so the next message
//! searches what was just published. Vectors are made only for new or changed text: a price
//! or stock update re-uses the stored ones.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::tables::next_offsets;
use super::ServiceError;
use crate::config::Config;
use crate::kafka::Record;
use crate::metrics::Metrics;
use crate::model::{ModelError, ModelHandle};
use crate::retrieval::{article_texts, product_text, RetrievalError, Retriever};
use crate::state::{Store, StoredVectors};
use crate::wire::{
    decode_article, decode_product, Article, DecodeError, ErrorKind, Product, SourceKind,
};

/// Texts embedded in one forward pass.
const EMBED_CHUNK: usize = 64;

/// One knowledge topic's table.
pub struct KnowledgeTable {
    pub kind: SourceKind,
    pub retriever: Arc<Retriever>,
    pub model: ModelHandle,
    /// The encoder's fingerprint (see `Embedder::fingerprint`).
    pub fingerprint: String,
}

/// A document as a batch leaves it.
enum Doc {
    Article(Article),
    Product(Product),
}

impl Doc {
    fn id(&self) -> &str {
        match self {
            Doc::Article(a) => &a.id,
            Doc::Product(p) => &p.sku,
        }
    }
    fn texts(&self) -> Vec<String> {
        match self {
            Doc::Article(a) => article_texts(a),
            Doc::Product(p) => vec![product_text(p)],
        }
    }
}

fn text_hash(texts: &[String]) -> u64 {
    // Within one release std's hasher is stable, and the stored hash only ever decides
    // whether to embed again: a changed hasher costs one re-embedding, never a wrong vector.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    texts.hash(&mut h);
    h.finish()
}

/// A batch decoded and embedded, ready to write.
pub struct Staged<'r> {
    pub bad: Vec<(&'r Record, DecodeError)>,
    changes: Vec<(String, Option<(Doc, StoredVectors)>)>,
    offsets: HashMap<i32, i64>,
    topic: String,
}

impl KnowledgeTable {
    pub fn topic<'c>(&self, cfg: &'c Config) -> &'c str {
        match self.kind {
            SourceKind::Article => &cfg.topics.articles,
            SourceKind::Product => &cfg.topics.products,
        }
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            SourceKind::Article => "articles",
            SourceKind::Product => "products",
        }
    }

    /// Decodes `records` (the last record of an id wins) and embeds what changed.
    pub async fn stage<'r>(
        &self,
        store: &Store,
        cfg: &Config,
        records: &'r [Record],
    ) -> Result<Staged<'r>, ServiceError> {
        let mut bad = Vec::new();
        // Each id's last record in the batch, with the record it came from.
        let mut last: Vec<(String, Option<Doc>, &'r Record)> = Vec::new();
        for record in records {
            let key = record
                .key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            let (id, doc) = match (&record.payload, key) {
                (None, Some(id)) => (id, None),
                (None, None) => continue,
                (Some(bytes), key) => {
                    let doc = match self.kind {
                        SourceKind::Article => {
                            decode_article(bytes, key.as_deref()).map(Doc::Article)
                        }
                        SourceKind::Product => {
                            decode_product(bytes, key.as_deref()).map(Doc::Product)
                        }
                    };
                    match doc {
                        Ok(d) => (d.id().to_string(), Some(d)),
                        Err(e) => {
                            bad.push((record, e));
                            continue;
                        }
                    }
                }
            };
            last.retain(|(other, _, _)| *other != id);
            last.push((id, doc, record));
        }
        // Which documents need vectors: new text, or vectors of another encoder.
        let mut changes = Vec::with_capacity(last.len());
        let mut needed: Vec<(usize, Vec<String>, &'r Record)> = Vec::new();
        for (id, doc, record) in last {
            let Some(doc) = doc else {
                changes.push((id, None));
                continue;
            };
            let texts = doc.texts();
            let hash = text_hash(&texts);
            let stored = tokio::task::block_in_place(|| store.knowledge_vectors(self.kind, &id))?;
            let vectors = stored
                .filter(|s| s.fingerprint == self.fingerprint && s.text_hash == hash)
                .unwrap_or_else(|| {
                    needed.push((changes.len(), texts, record));
                    StoredVectors {
                        fingerprint: self.fingerprint.clone(),
                        text_hash: hash,
                        vectors: Vec::new(),
                    }
                });
            changes.push((id, Some((doc, vectors))));
        }
        // All of the batch's texts in as few forward passes as possible; if that fails, one
        // document at a time, so that a text the encoder fails on costs its own record
        // (dead-lettered), never the table.
        let all: Vec<String> = needed.iter().flat_map(|(_, t, _)| t.clone()).collect();
        let together = match self.embed(all).await {
            Err(ModelError::BackendStopped) => return Err(ModelError::BackendStopped.into()),
            other => other.ok(),
        };
        let mut together = together.map(Vec::into_iter);
        let mut failed = Vec::new();
        for (at, texts, record) in needed {
            let vectors = match together.as_mut() {
                Some(v) => Ok(v.by_ref().take(texts.len()).collect()),
                None => self.embed(texts).await,
            };
            match vectors {
                Ok(v) => {
                    if let Some((_, Some((_, stored)))) = changes.get_mut(at) {
                        stored.vectors = v;
                    }
                }
                Err(ModelError::BackendStopped) => return Err(ModelError::BackendStopped.into()),
                Err(e) => {
                    failed.push(at);
                    bad.push((
                        record,
                        DecodeError::new(
                            ErrorKind::ProcessingError,
                            format!("the retrieval encoder failed on this {}: {e}", self.name()),
                        ),
                    ));
                }
            }
        }
        let changes = changes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !failed.contains(i))
            .map(|(_, c)| c)
            .collect();
        Ok(Staged {
            bad,
            changes,
            offsets: next_offsets(records),
            topic: self.topic(cfg).to_string(),
        })
    }

    /// One vector per text, or an error.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ModelError> {
        let n = texts.len();
        let mut out = Vec::with_capacity(n);
        for chunk in texts.chunks(EMBED_CHUNK) {
            out.extend(self.model.embed(chunk.to_vec()).await?);
        }
        if out.len() != n || out.iter().any(|v| v.is_empty()) {
            return Err(ModelError::Input(format!(
                "{} vectors for {n} texts",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Writes a staged batch with its offsets in one RocksDB batch, then into the indexes.
    /// The store is the record: an index update that fails is logged and counted, and the
    /// document is indexed from the store at the next start.
    pub fn write(
        &self,
        store: &Store,
        metrics: &Metrics,
        staged: Staged<'_>,
    ) -> Result<(), ServiceError> {
        tokio::task::block_in_place(|| {
            let mut batch = store.batch();
            for (id, change) in &staged.changes {
                match change {
                    None => batch.delete_knowledge(self.kind, id),
                    Some((Doc::Article(a), v)) => batch.put_article(a, v),
                    Some((Doc::Product(p), v)) => batch.put_product(p, v),
                }
            }
            for (partition, next) in &staged.offsets {
                batch.put_offset(&staged.topic, *partition, *next);
            }
            store.write(batch)?;
            for (id, change) in &staged.changes {
                let indexed = match change {
                    None => self.retriever.remove(self.kind, id),
                    Some((Doc::Article(a), v)) => self.retriever.upsert_article(a, &v.vectors),
                    Some((Doc::Product(p), v)) => self.retriever.upsert_product(p, &v.vectors[0]),
                };
                if let Err(e) = indexed {
                    tracing::error!(id = %id, "{} index: {e}", self.name());
                    metrics
                        .failures
                        .with_label_values(&["knowledge_index"])
                        .inc();
                }
            }
            if let Err(e) = self.retriever.commit() {
                tracing::error!("{} index: {e}", self.name());
                metrics
                    .failures
                    .with_label_values(&["knowledge_index"])
                    .inc();
            }
            let (collection, label) = match self.kind {
                SourceKind::Article => (&self.retriever.articles, "article"),
                SourceKind::Product => (&self.retriever.products, "product"),
            };
            metrics
                .knowledge_documents
                .with_label_values(&[label])
                .set(collection.len() as i64);
            Ok(())
        })
    }
}

/// What a start-up rebuild did.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub articles: usize,
    pub products: usize,
    /// Documents whose vectors were made again (another encoder, or none stored).
    pub embedded: usize,
}

/// Rebuilds the search indexes from the store at start-up. Stored vectors of the current
/// encoder are used as they are; others are made again (and stored).
pub async fn rebuild(
    store: &Store,
    retriever: &Retriever,
    model: &ModelHandle,
    fingerprint: &str,
) -> Result<Rebuilt, ServiceError> {
    let mut out = Rebuilt::default();
    let mut stale: Vec<Doc> = Vec::new();
    // A document the index refuses (a key collision) is skipped with an error logged: one
    // document must not keep the service from starting.
    let index = |what: &str, id: &str, r: Result<(), RetrievalError>| {
        if let Err(e) = r {
            tracing::error!(id, "{what} index: {e}; not searchable until republished");
        }
    };
    tokio::task::block_in_place(|| {
        store.each_knowledge::<Article>(SourceKind::Article, |a, v| {
            out.articles += 1;
            match v.filter(|v| v.fingerprint == fingerprint && !v.vectors.is_empty()) {
                Some(v) => index("articles", &a.id, retriever.upsert_article(&a, &v.vectors)),
                None => stale.push(Doc::Article(a)),
            }
            Ok(())
        })?;
        store.each_knowledge::<Product>(SourceKind::Product, |p, v| {
            out.products += 1;
            match v.filter(|v| v.fingerprint == fingerprint && !v.vectors.is_empty()) {
                Some(v) => index(
                    "products",
                    &p.sku,
                    retriever.upsert_product(&p, &v.vectors[0]),
                ),
                None => stale.push(Doc::Product(p)),
            }
            Ok(())
        })
    })?;
    out.embedded = stale.len();
    if !stale.is_empty() {
        tracing::info!(
            documents = stale.len(),
            "embedding articles and products again (new encoder, or none stored)"
        );
    }
    for chunk in stale.chunks(EMBED_CHUNK) {
        // One forward pass per chunk of documents, split back per document.
        let texts: Vec<Vec<String>> = chunk.iter().map(Doc::texts).collect();
        let flat: Vec<String> = texts.iter().flatten().cloned().collect();
        let mut vectors = model.embed(flat).await?.into_iter();
        let mut batch = store.batch();
        for (doc, texts) in chunk.iter().zip(texts) {
            let v = StoredVectors {
                fingerprint: fingerprint.to_string(),
                text_hash: text_hash(&texts),
                vectors: vectors.by_ref().take(texts.len()).collect(),
            };
            if v.vectors.len() != texts.len() || v.vectors.iter().any(Vec::is_empty) {
                tracing::error!(
                    id = doc.id(),
                    "the encoder returned no vectors; not searchable"
                );
                continue;
            }
            match doc {
                Doc::Article(a) => {
                    index("articles", &a.id, retriever.upsert_article(a, &v.vectors));
                    batch.put_article(a, &v);
                }
                Doc::Product(p) => {
                    index(
                        "products",
                        &p.sku,
                        retriever.upsert_product(p, &v.vectors[0]),
                    );
                    batch.put_product(p, &v);
                }
            }
        }
        tokio::task::block_in_place(|| store.write(batch))?;
    }
    retriever.commit().map_err(ServiceError::Retrieval)?;
    Ok(out)
}
