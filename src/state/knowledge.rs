//! The knowledge family: articles and products as last published, each with the vectors
//! its texts were embedded into, so that a restart rebuilds the search indexes without
//! embedding the catalogue again.

use rocksdb::IteratorMode;

use super::{decode, encode, StateBatch, StateError, Store, CF_KNOWLEDGE};
use crate::wire::{Article, Product, SourceKind};

/// Vectors and what they were made from: a change of encoder or of the embedded text (not
/// of a price or a stock level) makes them again.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVectors {
    pub fingerprint: String,
    pub text_hash: u64,
    pub vectors: Vec<Vec<f32>>,
}

impl StoredVectors {
    fn encode(&self) -> Vec<u8> {
        let dims = self.vectors.first().map_or(0, Vec::len);
        let fp = self.fingerprint.as_bytes();
        let mut out = Vec::with_capacity(1 + fp.len() + 16 + self.vectors.len() * dims * 4);
        out.push(fp.len() as u8);
        out.extend_from_slice(fp);
        out.extend_from_slice(&self.text_hash.to_le_bytes());
        out.extend_from_slice(&(self.vectors.len() as u32).to_le_bytes());
        out.extend_from_slice(&(dims as u32).to_le_bytes());
        for v in &self.vectors {
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8], what: &str) -> Result<Self, StateError> {
        let corrupt = || StateError::Corrupt {
            what: what.to_string(),
            message: format!("{} bytes of vectors do not parse", bytes.len()),
        };
        let fp_len = *bytes.first().ok_or_else(corrupt)? as usize;
        let rest = bytes.get(1 + fp_len..).ok_or_else(corrupt)?;
        let fingerprint = String::from_utf8_lossy(&bytes[1..1 + fp_len]).into_owned();
        let u64_at = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let u32_at = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
        if rest.len() < 16 {
            return Err(corrupt());
        }
        let text_hash = u64_at(rest);
        let (n, dims) = (u32_at(&rest[8..]), u32_at(&rest[12..]));
        let data = &rest[16..];
        if data.len() != n * dims * 4 {
            return Err(corrupt());
        }
        let floats: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(Self {
            fingerprint,
            text_hash,
            vectors: floats.chunks(dims.max(1)).map(<[f32]>::to_vec).collect(),
        })
    }
}

fn record_key(kind: SourceKind, id: &str) -> Vec<u8> {
    let mut k = match kind {
        SourceKind::Article => b"a/".to_vec(),
        SourceKind::Product => b"p/".to_vec(),
    };
    k.extend_from_slice(id.as_bytes());
    k
}

fn vectors_key(kind: SourceKind, id: &str) -> Vec<u8> {
    let mut k = match kind {
        SourceKind::Article => b"A/".to_vec(),
        SourceKind::Product => b"P/".to_vec(),
    };
    k.extend_from_slice(id.as_bytes());
    k
}

impl Store {
    pub fn article(&self, id: &str) -> Result<Option<Article>, StateError> {
        self.knowledge_record(SourceKind::Article, id)
    }

    pub fn product(&self, sku: &str) -> Result<Option<Product>, StateError> {
        self.knowledge_record(SourceKind::Product, sku)
    }

    fn knowledge_record<T: serde::de::DeserializeOwned>(
        &self,
        kind: SourceKind,
        id: &str,
    ) -> Result<Option<T>, StateError> {
        match self
            .db
            .get_pinned_cf(self.cf(CF_KNOWLEDGE), record_key(kind, id))?
        {
            None => Ok(None),
            Some(bytes) => decode(&bytes, &format!("{kind:?} {id}")).map(Some),
        }
    }

    pub fn knowledge_vectors(
        &self,
        kind: SourceKind,
        id: &str,
    ) -> Result<Option<StoredVectors>, StateError> {
        match self
            .db
            .get_pinned_cf(self.cf(CF_KNOWLEDGE), vectors_key(kind, id))?
        {
            None => Ok(None),
            Some(bytes) => {
                StoredVectors::decode(&bytes, &format!("vectors of {kind:?} {id}")).map(Some)
            }
        }
    }

    /// Calls `f` with every stored record of `kind` and its vectors, in key order.
    pub fn each_knowledge<T: serde::de::DeserializeOwned>(
        &self,
        kind: SourceKind,
        mut f: impl FnMut(T, Option<StoredVectors>) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let prefix = record_key(kind, "");
        let cf = self.cf(CF_KNOWLEDGE);
        let mode = IteratorMode::From(&prefix, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(cf, mode) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let record: T = decode(&v, &format!("{kind:?} {id}"))?;
            f(record, self.knowledge_vectors(kind, &id)?)?;
        }
        Ok(())
    }
}

impl StateBatch<'_> {
    pub fn put_article(&mut self, a: &Article, vectors: &StoredVectors) {
        self.put_knowledge(SourceKind::Article, &a.id, encode(a), vectors);
    }

    pub fn put_product(&mut self, p: &Product, vectors: &StoredVectors) {
        self.put_knowledge(SourceKind::Product, &p.sku, encode(p), vectors);
    }

    fn put_knowledge(&mut self, kind: SourceKind, id: &str, value: Vec<u8>, v: &StoredVectors) {
        let cf = self.store.cf(CF_KNOWLEDGE);
        self.wb.put_cf(cf, record_key(kind, id), value);
        self.wb.put_cf(cf, vectors_key(kind, id), v.encode());
    }

    pub fn delete_knowledge(&mut self, kind: SourceKind, id: &str) {
        let cf = self.store.cf(CF_KNOWLEDGE);
        self.wb.delete_cf(cf, record_key(kind, id));
        self.wb.delete_cf(cf, vectors_key(kind, id));
    }
}

/// The dialogue reads live articles and products through this; a read error is logged and
/// reads as "not there", so the question goes the intent path instead.
impl crate::dialogue::answers::Catalog for Store {
    fn article(&self, id: &str) -> Option<Article> {
        Store::article(self, id).unwrap_or_else(|error| {
            tracing::warn!(id, %error, "reading an article failed; reads as none");
            None
        })
    }

    fn product(&self, sku: &str) -> Option<Product> {
        Store::product(self, sku).unwrap_or_else(|error| {
            tracing::warn!(sku, %error, "reading a product failed; reads as none");
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_vectors_round_trip_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a: Article = serde_json::from_value(serde_json::json!(
            {"id": "returns", "title": "Returns", "body": "30 days."}))
        .unwrap();
        let v = StoredVectors {
            fingerprint: "abc".into(),
            text_hash: 7,
            vectors: vec![vec![0.5, -1.0], vec![2.0, 0.25]],
        };
        let mut b = store.batch();
        b.put_article(&a, &v);
        store.write(b).unwrap();
        assert_eq!(store.article("returns").unwrap().unwrap(), a);
        assert_eq!(
            store
                .knowledge_vectors(SourceKind::Article, "returns")
                .unwrap()
                .unwrap(),
            v
        );
        let mut seen = Vec::new();
        store
            .each_knowledge::<Article>(SourceKind::Article, |a, v| {
                seen.push((a.id, v.is_some()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [("returns".to_string(), true)]);
        let mut b = store.batch();
        b.delete_knowledge(SourceKind::Article, "returns");
        store.write(b).unwrap();
        assert!(store.article("returns").unwrap().is_none());
        assert!(StoredVectors::decode(&[3, b'a'], "x").is_err());
    }
}
