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
use crate::model::ModelHandle;
use crate::retrieval::{article_texts, product_text, RetrievalError, Retriever};
use crate::state::{StateError, Store, StoredVectors};
use crate::wire::{decode_article, decode_product, Article, DecodeError, Product, SourceKind};

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
        let mut last: Vec<(String, Option<Doc>)> = Vec::new();
        for record in records {
            let key = record
                .key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            let change = match (&record.payload, key) {
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
            last.retain(|(id, _)| *id != change.0);
            last.push(change);
        }
        // Which documents need vectors: new text, or vectors of another encoder.
        let mut texts = Vec::new();
        let mut plans = Vec::with_capacity(last.len());
        for (id, doc) in last {
            let Some(doc) = doc else {
                plans.push((id, None));
                continue;
            };
            let doc_texts = doc.texts();
            let hash = text_hash(&doc_texts);
            let stored = tokio::task::block_in_place(|| store.knowledge_vectors(self.kind, &id))?;
            let reuse = stored.filter(|s| s.fingerprint == self.fingerprint && s.text_hash == hash);
            let start = texts.len();
            if reuse.is_none() {
                texts.extend(doc_texts);
            }
            plans.push((id, Some((doc, hash, reuse, start..texts.len()))));
        }
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(EMBED_CHUNK) {
            vectors.extend(self.model.embed(chunk.to_vec()).await?);
        }
        let changes = plans
            .into_iter()
            .map(|(id, plan)| {
                let staged = plan.map(|(doc, hash, reuse, range)| {
                    let v = reuse.unwrap_or_else(|| StoredVectors {
                        fingerprint: self.fingerprint.clone(),
                        text_hash: hash,
                        vectors: vectors[range].to_vec(),
                    });
                    (doc, v)
                });
                (id, staged)
            })
            .collect();
        Ok(Staged {
            bad,
            changes,
            offsets: next_offsets(records),
            topic: self.topic(cfg).to_string(),
        })
    }

    /// Writes a staged batch with its offsets in one RocksDB batch, then into the indexes.
    pub fn write(
        &self,
        store: &Store,
        metrics: &Metrics,
        staged: Staged<'_>,
    ) -> Result<(), ServiceError> {
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
        tokio::task::block_in_place(|| store.write(batch))?;
        for (id, change) in &staged.changes {
            match change {
                None => self.retriever.remove(self.kind, id),
                Some((Doc::Article(a), v)) => self.retriever.upsert_article(a, &v.vectors),
                Some((Doc::Product(p), v)) => self
                    .retriever
                    .upsert_product(p, v.vectors.first().map_or(&[][..], Vec::as_slice)),
            }
            .map_err(ServiceError::Retrieval)?;
        }
        self.retriever.commit().map_err(ServiceError::Retrieval)?;
        let (collection, label) = match self.kind {
            SourceKind::Article => (&self.retriever.articles, "article"),
            SourceKind::Product => (&self.retriever.products, "product"),
        };
        metrics
            .knowledge_documents
            .with_label_values(&[label])
            .set(collection.len() as i64);
        Ok(())
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
    let index = |e: RetrievalError| StateError::Corrupt {
        what: "search index".into(),
        message: e.to_string(),
    };
    tokio::task::block_in_place(|| {
        store.each_knowledge::<Article>(SourceKind::Article, |a, v| {
            out.articles += 1;
            match v.filter(|v| v.fingerprint == fingerprint) {
                Some(v) => retriever.upsert_article(&a, &v.vectors).map_err(index),
                None => {
                    stale.push(Doc::Article(a));
                    Ok(())
                }
            }
        })?;
        store.each_knowledge::<Product>(SourceKind::Product, |p, v| {
            out.products += 1;
            match v.filter(|v| v.fingerprint == fingerprint && !v.vectors.is_empty()) {
                Some(v) => retriever.upsert_product(&p, &v.vectors[0]).map_err(index),
                None => {
                    stale.push(Doc::Product(p));
                    Ok(())
                }
            }
        })
    })?;
    out.embedded = stale.len();
    for chunk in stale.chunks(EMBED_CHUNK) {
        let mut batch = store.batch();
        for doc in chunk {
            let texts = doc.texts();
            let hash = text_hash(&texts);
            let v = StoredVectors {
                fingerprint: fingerprint.to_string(),
                text_hash: hash,
                vectors: model.embed(texts).await?,
            };
            match doc {
                Doc::Article(a) => {
                    retriever
                        .upsert_article(a, &v.vectors)
                        .map_err(ServiceError::Retrieval)?;
                    batch.put_article(a, &v);
                }
                Doc::Product(p) => {
                    retriever
                        .upsert_product(p, &v.vectors[0])
                        .map_err(ServiceError::Retrieval)?;
                    batch.put_product(p, &v);
                }
            }
        }
        tokio::task::block_in_place(|| store.write(batch))?;
    }
    retriever.commit().map_err(ServiceError::Retrieval)?;
    Ok(out)
}
