//! One searchable collection (the articles, or the products): a BM25 index (tantivy, in
//! memory) and a vector index (usearch HNSW) over the same documents, kept in step on every
//! upsert and delete. Both are rebuilt from RocksDB at start-up; neither is the record.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};
use tantivy::collector::TopDocs;
use tantivy::directory::Directory;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::HasLen;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use usearch::{IndexOptions, MetricKind, ScalarKind};

use super::synonyms::Synonyms;
use super::text::{analyzer, terms, with_joins, LexicalDoc, ANALYZER, MAX_VECTORS};
use super::words::{self, DocFrequencies, WordId};
use super::RetrievalError;

/// How much a filler word of the question ([`super::fillers`]: "husband", "honestly", the
/// "m" of "i'm") counts in the BM25 query beside a word that says what is asked: a long
/// message's story otherwise pulls up whichever document's sample questions share its chat.
/// Judged on the dev sets: half weight ranked one more long message of dev-long first
/// (84.4% -> 85.9%) and left dev and dev-extra as they were; with a broader list of fillers,
/// none at all lost one of dev-extra.
const FILLER_BOOST: f32 = 0.5;

/// A document's key in both indexes: the first 8 bytes of SHA-256 of its id. Collisions
/// among a shop's ids are not a practical concern at 2^-64 per pair, and a collision is
/// detected (the key map holds the id) rather than silently merging two documents.
pub fn key_of(id: &str) -> u64 {
    let h = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// How much each field counts in BM25: a name match is worth most.
const NAME_BOOST: f32 = 3.0;
const EXTRA_BOOST: f32 = 1.5;
const BODY_BOOST: f32 = 1.0;

/// One candidate from one collection, before fusion.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    /// Best cosine similarity of the query with one of the document's vectors.
    pub semantic: f32,
    /// The second best, for a document with several vectors (an article's views); `None`
    /// with one vector.
    pub second_semantic: Option<f32>,
    /// BM25 score (0 when the document did not match a term).
    pub bm25: f32,
    /// Share of the document's name terms the question contains (0..1); -1 when the
    /// question names another model of the same family (see `other_models`).
    pub name_coverage: f32,
    /// Share of the question's words, weighted by rarity, that the document's text has, or
    /// one of their equivalents (0..1, see `words` and `synonyms`): for deciding whether it
    /// answers, and, with `rank_coverage_weight`, for ranking articles.
    pub covered: f32,
}

struct Lexical {
    index: Index,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    key: Field,
    name: Field,
    body: Field,
    extra: Field,
}

struct Entry {
    id: String,
    /// Name terms in order, and each with the next written together (see `with_joins`).
    name_terms: Vec<String>,
    name_pairs: Vec<String>,
    /// Terms of the full name, brand included ("Brewmaster Kettle Pro"), when it differs.
    full_terms: Vec<String>,
    /// Name terms its own description, category and attributes do not use: a model's own
    /// name ("nordkap") rather than what the thing is ("shampoo" of a shampoo bar "for
    /// normal hair").
    own_terms: Vec<String>,
    /// Every word of its searched text (name, body, extra), for [`Candidate::covered`].
    words: Vec<WordId>,
}

pub struct Collection {
    what: &'static str,
    lexical: Lexical,
    vectors: RwLock<usearch::Index>,
    entries: RwLock<HashMap<u64, Entry>>,
    /// Over the entries' words; changed with them, under the entries' lock.
    frequencies: RwLock<DocFrequencies>,
    dims: usize,
    /// A document may have several vectors.
    multi: bool,
    /// Equivalents of a question's words, for [`Candidate::covered`].
    synonyms: Arc<Synonyms>,
}

impl Collection {
    /// `multi`: a document may have several vectors (an article's title, questions...).
    pub fn new(what: &'static str, dims: usize, multi: bool) -> Result<Self, RetrievalError> {
        let mut schema = Schema::builder();
        let key = schema.add_u64_field("key", NumericOptions::default().set_indexed().set_stored());
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let name = schema.add_text_field("name", text.clone());
        let body = schema.add_text_field("body", text.clone());
        let extra = schema.add_text_field("extra", text);
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(ANALYZER, analyzer());
        // One indexing thread with the smallest arena tantivy allows: updates come in
        // batches of at most a few hundred records.
        let writer = index
            .writer_with_num_threads(1, 15_000_000)
            .map_err(RetrievalError::lexical(what))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(RetrievalError::lexical(what))?;
        let options = IndexOptions {
            dimensions: dims,
            metric: MetricKind::IP,
            // Half precision halves the memory of a large catalogue; the cosine it gives
            // differs from f32 in the fourth decimal.
            quantization: ScalarKind::F16,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
            multi,
        };
        let vectors = usearch::Index::new(&options).map_err(RetrievalError::vector(what))?;
        Ok(Self {
            what,
            lexical: Lexical {
                index,
                writer: Mutex::new(writer),
                reader,
                key,
                name,
                body,
                extra,
            },
            vectors: RwLock::new(vectors),
            entries: RwLock::new(HashMap::new()),
            frequencies: RwLock::default(),
            dims,
            multi,
            synonyms: Arc::default(),
        })
    }

    /// The equivalents a question's words may be covered by (none until set).
    pub fn set_synonyms(&mut self, synonyms: Arc<Synonyms>) {
        self.synonyms = synonyms;
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("entries lock").len()
    }

    /// Whether a document of this id is indexed.
    pub fn contains(&self, id: &str) -> bool {
        self.entries
            .read()
            .expect("entries lock")
            .contains_key(&key_of(id))
    }

    /// Whether any document's text has one of `words` (as the index analyses them).
    pub fn uses(&self, words: &[String]) -> Vec<bool> {
        let l = &self.lexical;
        let searcher = l.reader.searcher();
        let mut a = analyzer();
        words
            .iter()
            .map(|w| {
                terms(&mut a, w).iter().any(|t| {
                    [l.name, l.body, l.extra].iter().any(|&field| {
                        searcher
                            .doc_freq(&Term::from_field_text(field, t))
                            .is_ok_and(|n| n > 0)
                    })
                })
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces (or adds) a document. Visible to searches after [`Collection::commit`]
    /// for the lexical part, at once for the vectors.
    pub fn upsert(
        &self,
        id: &str,
        doc: &LexicalDoc,
        vectors: &[Vec<f32>],
    ) -> Result<(), RetrievalError> {
        let key = key_of(id);
        {
            let entries = self.entries.read().expect("entries lock");
            if let Some(e) = entries.get(&key) {
                if e.id != id {
                    return Err(RetrievalError::KeyCollision {
                        what: self.what,
                        first: e.id.clone(),
                        second: id.to_string(),
                    });
                }
            }
        }
        // Checked before anything changes: a bad vector leaves the stored version whole.
        // (An index failing below, out of memory say, can still leave it half replaced.)
        if let Some(v) = vectors.iter().find(|v| v.len() != self.dims) {
            return Err(RetrievalError::Dimensions {
                expected: self.dims,
                got: v.len(),
            });
        }
        self.remove_key(key)?;
        let l = &self.lexical;
        let mut d = TantivyDocument::default();
        d.add_u64(l.key, key);
        d.add_text(l.name, with_joins(&doc.name));
        d.add_text(l.body, &doc.body);
        d.add_text(l.extra, &doc.extra);
        l.writer
            .lock()
            .expect("writer lock")
            .add_document(d)
            .map_err(RetrievalError::lexical(self.what))?;
        {
            let index = self.vectors.write().expect("vectors lock");
            let needed = index.size() + vectors.len();
            if needed > index.capacity() {
                index
                    .reserve((index.capacity() * 2).max(needed).max(64))
                    .map_err(RetrievalError::vector(self.what))?;
            }
            for v in vectors {
                index
                    .add(key, v)
                    .map_err(RetrievalError::vector(self.what))?;
            }
        }
        let mut a = analyzer();
        let raw: Vec<String> = doc
            .short_name
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let name_terms = terms(&mut a, &doc.short_name);
        let full_terms = if doc.name == doc.short_name {
            Vec::new()
        } else {
            terms(&mut a, &doc.name)
        };
        let name_pairs = raw
            .windows(2)
            .flat_map(|p| terms(&mut a, &format!("{}{}", p[0], p[1])))
            .collect();
        // What the description, category and attributes say is what the product is or has
        // ("shampoo", "anthracite"), not what it is called.
        let said: HashSet<String> = terms(&mut a, &doc.body)
            .into_iter()
            .chain(terms(&mut a, &doc.extra))
            .collect();
        let own_terms = name_terms
            .iter()
            .filter(|t| !said.contains(*t))
            .cloned()
            .collect();
        // The whole name's terms are the short name's when the two are one.
        let whole_name = if full_terms.is_empty() {
            &name_terms
        } else {
            &full_terms
        };
        // With the name's neighbouring words written together: "trailrunner" of "Trail
        // Runner" is a word of the name.
        let doc_words = words::word_set(whole_name.iter().chain(&name_pairs).chain(&said));
        let mut entries = self.entries.write().expect("entries lock");
        let mut frequencies = self.frequencies.write().expect("frequencies lock");
        frequencies.add(&doc_words);
        let old = entries.insert(
            key,
            Entry {
                id: id.to_string(),
                name_terms,
                name_pairs,
                full_terms,
                own_terms,
                words: doc_words,
            },
        );
        if let Some(old) = old {
            frequencies.remove(&old.words);
        }
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<(), RetrievalError> {
        let key = key_of(id);
        self.remove_key(key)?;
        let mut entries = self.entries.write().expect("entries lock");
        if let Some(old) = entries.remove(&key) {
            self.frequencies
                .write()
                .expect("frequencies lock")
                .remove(&old.words);
        }
        Ok(())
    }

    fn remove_key(&self, key: u64) -> Result<(), RetrievalError> {
        self.lexical
            .writer
            .lock()
            .expect("writer lock")
            .delete_term(Term::from_field_u64(self.lexical.key, key));
        let index = self.vectors.write().expect("vectors lock");
        if index.contains(key) {
            index
                .remove(key)
                .map_err(RetrievalError::vector(self.what))?;
        }
        Ok(())
    }

    /// Makes the lexical changes since the last commit visible.
    pub fn commit(&self) -> Result<(), RetrievalError> {
        self.lexical
            .writer
            .lock()
            .expect("writer lock")
            .commit()
            .map_err(RetrievalError::lexical(self.what))?;
        self.lexical
            .reader
            .reload()
            .map_err(RetrievalError::lexical(self.what))
    }

    /// The id of a document written out in `text` ("NW-KT-0001 price?", "nw-kt-0001"): a
    /// word with a letter and a digit in it that is an id here, as typed or in upper or
    /// lower case. A bare number may as well be an order number, a year or a price.
    pub fn id_in(&self, text: &str) -> Option<String> {
        let entries = self.entries.read().expect("entries lock");
        text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '?' | '!' | ';' | '(' | ')'))
            .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric()))
            .filter(|t| {
                t.len() >= 3
                    && t.chars().any(|c| c.is_ascii_digit())
                    && t.chars().any(char::is_alphabetic)
            })
            .find_map(|t| {
                [t.to_string(), t.to_uppercase(), t.to_lowercase()]
                    .into_iter()
                    .find_map(|id| {
                        entries
                            .get(&key_of(&id))
                            .filter(|e| e.id == id)
                            .map(|e| e.id.clone())
                    })
            })
    }

    /// The documents either signal finds among its best `k`, each scored by both.
    pub fn candidates(
        &self,
        text: &str,
        vector: Option<&[f32]>,
        k: usize,
    ) -> Result<Vec<Candidate>, RetrievalError> {
        self.candidates_named(text, vector, k, &[])
    }

    /// [`Collection::candidates`], where a document whose name (brand aside) has one of
    /// `coined` (coined words of the question, see `Speller::coined`) counts as named in
    /// full: "the nordkap" names the Nordkap Winter Boot as surely as its whole name does.
    pub fn candidates_named(
        &self,
        text: &str,
        vector: Option<&[f32]>,
        k: usize,
        coined: &[String],
    ) -> Result<Vec<Candidate>, RetrievalError> {
        let mut a = analyzer();
        // A word in the names of more products than a product line has is a brand's or a
        // kind's, whatever else it is.
        let coined: HashSet<String> = if coined.is_empty() {
            HashSet::new()
        } else {
            let searcher = self.lexical.reader.searcher();
            coined
                .iter()
                .flat_map(|w| terms(&mut a, w))
                .filter(|t| {
                    searcher
                        .doc_freq(&Term::from_field_text(self.lexical.name, t))
                        .is_ok_and(|n| n <= LINE)
                })
                .collect()
        };
        let plain = terms(&mut a, text);
        let joined = terms(&mut a, &with_joins(text));
        let filler_terms = super::fillers::filler_terms(&mut a, text);
        let mut bm25: HashMap<u64, f32> = HashMap::new();
        if !plain.is_empty() {
            let l = &self.lexical;
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            // Fillers weigh less in the text but not in a name ("Little Explorer Backpack").
            let mut add = |field: Field, words: &[String], boost: f32, filler_boost: f32| {
                let mut seen = std::collections::HashSet::new();
                for w in words.iter().filter(|w| seen.insert(*w)) {
                    let q = TermQuery::new(
                        Term::from_field_text(field, w),
                        IndexRecordOption::WithFreqs,
                    );
                    let boost = if filler_terms.contains(w) {
                        boost * filler_boost
                    } else {
                        boost
                    };
                    clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
                }
            };
            add(l.name, &joined, NAME_BOOST, 1.0);
            add(l.body, &plain, BODY_BOOST, FILLER_BOOST);
            add(l.extra, &plain, EXTRA_BOOST, FILLER_BOOST);
            let searcher = l.reader.searcher();
            let top = searcher
                .search(&BooleanQuery::new(clauses), &TopDocs::with_limit(k))
                .map_err(RetrievalError::lexical(self.what))?;
            for (score, address) in top {
                let doc: TantivyDocument = searcher
                    .doc(address)
                    .map_err(RetrievalError::lexical(self.what))?;
                if let Some(key) = doc.get_first(l.key).and_then(|v| v.as_u64()) {
                    bm25.insert(key, score);
                }
            }
        }
        let index = self.vectors.read().expect("vectors lock");
        // Each candidate's best and second best similarity, from its stored vectors: the
        // HNSW search finds the candidates, but an article's second view may lie outside
        // its best `k`, and a lexical-only candidate has none there.
        let mut semantic: HashMap<u64, (f32, Option<f32>)> = HashMap::new();
        if let Some(q) = vector.filter(|_| index.size() > 0) {
            let found = index
                .search(q, k)
                .map_err(RetrievalError::vector(self.what))?;
            // Read back in the stored half precision: usearch 2.26 places the second and
            // later vectors of a multi-vector key at the stored width in an f32 buffer,
            // overlapping them, so only a buffer of the stored type reads them whole.
            // A single-vector collection (the products) takes HNSW's similarity as it is.
            if !self.multi {
                for (key, distance) in found.keys.iter().zip(&found.distances) {
                    semantic.insert(*key, (1.0 - distance, None));
                }
            }
            let mut bits = vec![0i16; self.dims * MAX_VECTORS];
            for key in found.keys.iter().chain(bm25.keys()) {
                if semantic.contains_key(key) {
                    continue;
                }
                let n = index
                    .get(*key, usearch::f16::from_mut_i16s(&mut bits))
                    .map_err(RetrievalError::vector(self.what))?;
                if n == 0 {
                    continue;
                }
                let (mut first, mut second) = (f32::MIN, None::<f32>);
                for v in bits.chunks(self.dims).take(n) {
                    let s: f32 = v
                        .iter()
                        .zip(q)
                        .map(|(h, b)| half::f16::from_bits(*h as u16).to_f32() * b)
                        .sum();
                    if s > first {
                        second = (first > f32::MIN).then_some(first);
                        first = s;
                    } else if second.is_none_or(|x| s > x) {
                        second = Some(s);
                    }
                }
                semantic.insert(*key, (first, second));
            }
        }
        drop(index);
        let entries = self.entries.read().expect("entries lock");
        let query_terms: HashSet<&String> = joined.iter().collect();
        let mut keys: Vec<u64> = bm25.keys().chain(semantic.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        let found: Vec<(u64, &Entry)> = keys
            .iter()
            .filter_map(|&key| Some((key, entries.get(&key)?)))
            .collect();
        let other_model = other_models(found.iter().map(|(_, e)| *e), &query_terms);
        let weights = self
            .frequencies
            .read()
            .expect("frequencies lock")
            .weights(&words::word_set(&plain), entries.len());
        let in_order: Vec<WordId> = plain.iter().map(|t| words::word_id(t)).collect();
        let equivalents = self.synonyms.alternatives(&in_order);
        let fillers: HashSet<WordId> = filler_terms.iter().map(|t| words::word_id(t)).collect();
        Ok(found
            .into_iter()
            .zip(other_model)
            .map(|((key, e), other_model)| Candidate {
                id: e.id.clone(),
                semantic: semantic.get(&key).map_or(0.0, |s| s.0),
                second_semantic: semantic.get(&key).and_then(|s| s.1),
                bm25: bm25.get(&key).copied().unwrap_or(0.0),
                name_coverage: if other_model {
                    -1.0
                } else if named_by_coined(e, &coined) {
                    1.0
                } else {
                    coverage(e, &query_terms)
                },
                covered: words::share(&weights, &equivalents, &fillers, &e.words),
            })
            .collect())
    }

    /// Bytes held by both indexes (approximate for the lexical one: its segments in RAM) and
    /// the documents' word sets.
    pub fn memory_bytes(&self) -> usize {
        let vectors = self.vectors.read().expect("vectors lock").memory_usage();
        let words: usize = self
            .entries
            .read()
            .expect("entries lock")
            .values()
            .map(|e| e.words.capacity() * std::mem::size_of::<WordId>())
            .sum::<usize>()
            + self
                .frequencies
                .read()
                .expect("frequencies lock")
                .memory_bytes();
        let lexical: usize = self
            .lexical
            .index
            .searchable_segment_metas()
            .map(|metas| {
                metas
                    .iter()
                    .flat_map(|m| m.list_files())
                    .filter_map(|p| {
                        self.lexical
                            .index
                            .directory()
                            .open_read(&p)
                            .ok()
                            .map(|f| f.len())
                    })
                    .sum()
            })
            .unwrap_or(0);
        vectors + lexical + words
    }
}

/// A name word with a digit in it names a model: "Q5", "10000", the "2" of "Trailrunner 2".
fn is_model_code(term: &str) -> bool {
    term.bytes().any(|b| b.is_ascii_digit())
}

/// For each entry: the question names a model code that a product of the same family (one
/// sharing another name word) has and this one lacks, so this one is the wrong model however
/// close its text is ("is the trailrunner 2 waterproof" against the original Trailrunner,
/// "the voltix 10000" against the Power Bank 20000). Words alone cannot tell them apart: the
/// names differ in one short token and the descriptions are alike. Entries of other
/// families are left alone, so a number that only counts something ("2 of the kettles") does
/// not push unrelated products down.
fn other_models<'a>(found: impl Iterator<Item = &'a Entry>, query: &HashSet<&String>) -> Vec<bool> {
    // Each entry's family words, and whether the question names one of its model codes.
    let entries: Vec<(HashSet<&str>, bool)> = found
        .map(|e| {
            let (codes, family): (Vec<&String>, Vec<&String>) =
                e.name_terms.iter().partition(|t| is_model_code(t));
            let named = codes.iter().any(|c| query.contains(c));
            (family.into_iter().map(String::as_str).collect(), named)
        })
        .collect();
    entries
        .iter()
        .map(|(mine, named)| {
            !named
                && entries
                    .iter()
                    .any(|(theirs, named)| *named && !mine.is_disjoint(theirs))
        })
        .collect()
}

/// The most products one coined name word may name: a product line ("Roadglide 4",
/// "Roadglide 5"), not a brand's range.
const LINE: u64 = 3;

/// The name has a coined word of the question that its description does not use:
/// "Nordkap" of the Nordkap Winter Boot, "Oakridge" of the Oakridge Boot; not "Shampoo" of
/// the Solid Shampoo Bar ("plastic-free shampoo bar for normal hair"), an English word that
/// the encoder's vocabulary happens to split.
fn named_by_coined(e: &Entry, coined: &HashSet<String>) -> bool {
    e.own_terms.iter().any(|t| coined.contains(t))
}

/// Share of a name's terms found in the question, counting a pair of name words that the
/// question writes as one ("Trail Runner" asked as "trailrunner").
fn coverage(e: &Entry, query: &HashSet<&String>) -> f32 {
    if e.name_terms.is_empty() {
        return 0.0;
    }
    let covered = e.name_terms.iter().filter(|t| query.contains(t)).count();
    let joined = e.name_pairs.iter().filter(|t| query.contains(t)).count();
    let name = ((covered + 2 * joined) as f32 / e.name_terms.len() as f32).min(1.0);
    if e.full_terms.is_empty() {
        return name;
    }
    // The brand counts when the question gives it ("the brewmaster kettle" is one of
    // Brewmaster's kettles), never against a question that leaves it out.
    let full_covered = e.full_terms.iter().filter(|t| query.contains(t)).count();
    let full = ((full_covered + 2 * joined) as f32 / e.full_terms.len() as f32).min(1.0);
    name.max(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            id: name.to_string(),
            name_terms: name.split(' ').map(str::to_lowercase).collect(),
            name_pairs: Vec::new(),
            full_terms: Vec::new(),
            own_terms: Vec::new(),
            words: Vec::new(),
        }
    }

    fn others(names: &[&str], question: &str) -> Vec<bool> {
        let entries: Vec<Entry> = names.iter().map(|n| entry(n)).collect();
        let words: Vec<String> = question.split(' ').map(String::from).collect();
        other_models(entries.iter(), &words.iter().collect())
    }

    #[test]
    fn every_vector_of_a_document_is_scored_whole() {
        // Half precision stores these exactly; the query matches the third vector.
        let c = Collection::new("articles", 4, true).unwrap();
        let doc = LexicalDoc {
            name: "Returns".into(),
            ..LexicalDoc::default()
        };
        let vectors = [
            vec![1.0, 0.0, 0.0, 0.0],
            vec![0.0, 0.6, 0.8, 0.0],
            vec![0.0, 0.0, 0.0, 1.0],
        ];
        c.upsert("returns", &doc, &vectors).unwrap();
        c.commit().unwrap();
        let q = [0.0, 0.0, 0.6, 0.8];
        let found = c.candidates("returns", Some(&q), 30).unwrap();
        assert_eq!(found.len(), 1);
        assert!((found[0].semantic - 0.8).abs() < 1e-3, "{found:?}");
        assert!(
            (found[0].second_semantic.unwrap() - 0.48).abs() < 1e-3,
            "{found:?}"
        );
        // A document with one vector has no second.
        c.upsert("returns", &doc, &vectors[..1]).unwrap();
        let found = c.candidates("returns", Some(&q), 30).unwrap();
        assert_eq!(found[0].second_semantic, None);
        // In a single-vector collection the similarity comes from the HNSW search.
        let p = Collection::new("products", 4, false).unwrap();
        p.upsert("kettle", &doc, &vectors[1..2]).unwrap();
        p.commit().unwrap();
        let found = p.candidates("returns", Some(&q), 30).unwrap();
        assert!((found[0].semantic - 0.48).abs() < 1e-3, "{found:?}");
        assert_eq!(found[0].second_semantic, None);
    }

    #[test]
    fn a_brand_given_counts_and_a_brand_left_out_costs_nothing() {
        let strings = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let kettle = Entry {
            id: "NW-KT-0001".into(),
            name_terms: strings(&["kettle", "pro"]),
            name_pairs: Vec::new(),
            full_terms: strings(&["brewmaster", "kettle", "pro"]),
            own_terms: Vec::new(),
            words: Vec::new(),
        };
        let share = |q: &[&str]| {
            let q = strings(q);
            coverage(&kettle, &q.iter().collect())
        };
        assert_eq!(share(&["kettle", "pro"]), 1.0);
        assert!((share(&["brewmaster", "kettle"]) - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(share(&["kettle"]), 0.5);
        assert_eq!(share(&["toaster"]), 0.0);
        // Without a brand the name share alone counts: a joined pair ("trailrunner" for
        // "Trail Runner Pro") covers its two words, not the whole name.
        let shoe = Entry {
            id: "NW-SH-0009".into(),
            name_terms: strings(&["trail", "runner", "pro", "max"]),
            name_pairs: strings(&["trailrunner"]),
            full_terms: Vec::new(),
            own_terms: Vec::new(),
            words: Vec::new(),
        };
        let q = strings(&["trailrunner"]);
        assert_eq!(coverage(&shoe, &q.iter().collect()), 0.5);
    }

    /// An article of a title and an answer.
    fn doc(name: &str, body: &str) -> LexicalDoc {
        LexicalDoc {
            name: name.into(),
            short_name: name.into(),
            body: body.into(),
            ..LexicalDoc::default()
        }
    }

    /// Articles of (id, title, body), all with one vector: only the words tell them apart.
    fn articles(docs: &[(&str, &str, &str)]) -> (Collection, [Vec<f32>; 1]) {
        let c = Collection::new("articles", 4, true).unwrap();
        let v = [vec![1.0, 0.0, 0.0, 0.0]];
        for (id, title, body) in docs {
            c.upsert(id, &doc(title, body), &v).unwrap();
        }
        c.commit().unwrap();
        (c, v)
    }

    #[test]
    fn the_share_of_the_question_a_document_covers_follows_updates_and_deletes() {
        let (c, v) = articles(&[
            ("stores", "Our stores", "Stores in Berlin and Hamburg."),
            ("returns", "Returns", "Return items in any store."),
        ]);
        let covered = |q: &str, id: &str| {
            c.candidates(q, None, 10)
                .unwrap()
                .into_iter()
                .find(|x| x.id == id)
                .map(|x| x.covered)
        };
        let parking = covered("is there parking at the hamburg store", "stores").unwrap();
        assert!(parking > 0.3 && parking < 0.8, "{parking}");
        assert_eq!(covered("hamburg store", "stores"), Some(1.0));
        // Rewritten to speak of parking, it accounts for the whole question.
        c.upsert(
            "stores",
            &doc("Our stores", "Stores in Hamburg, with free parking."),
            &v,
        )
        .unwrap();
        c.commit().unwrap();
        assert_eq!(
            covered("is there parking at the hamburg store", "stores"),
            Some(1.0)
        );
        // "store" alone: in both documents, then in one; its share is whole either way.
        c.remove("returns").unwrap();
        c.commit().unwrap();
        assert_eq!(covered("store", "stores"), Some(1.0));
        assert_eq!(covered("returns", "returns"), None);
    }

    #[test]
    fn a_long_message_is_found_by_what_it_asks_rather_than_by_its_chat() {
        let (c, _) = articles(&[
            (
                "chat",
                "Your account",
                "Honestly, we really want to know what you like.",
            ),
            ("express", "Express", "Express delivery is faster."),
        ]);
        let bm25 = |id: &str| {
            c.candidates(
                "honestly i really want to know, is delivery faster",
                None,
                10,
            )
            .unwrap()
            .into_iter()
            .find(|x| x.id == id)
            .map_or(0.0, |x| x.bm25)
        };
        // Four chat words against two that say what is asked: at full weight the chat
        // document wins; at half the two sides weigh about the same, and the shorter
        // document's length normalisation decides.
        assert!(
            bm25("express") > bm25("chat"),
            "{} {}",
            bm25("express"),
            bm25("chat")
        );
        // The fillers the chat document does not share count for nothing in its share,
        // those it shares do.
        let covered = |id: &str| {
            c.candidates("honestly, is delivery faster", None, 10)
                .unwrap()
                .into_iter()
                .find(|x| x.id == id)
                .map(|x| x.covered)
        };
        assert_eq!(covered("express"), Some(1.0));
        assert!(covered("chat").unwrap() < 0.5);
    }

    #[test]
    fn a_vector_of_the_wrong_size_leaves_the_stored_version_whole() {
        let c = Collection::new("articles", 4, true).unwrap();
        let v = vec![1.0, 0.0, 0.0, 0.0];
        c.upsert(
            "stores",
            &doc("Our stores", "Stores in Hamburg."),
            std::slice::from_ref(&v),
        )
        .unwrap();
        c.commit().unwrap();
        let before = c.candidates("hamburg stores", Some(&v), 10).unwrap();
        let e = c
            .upsert(
                "stores",
                &doc("Our shops", "Shops in Berlin."),
                &[v.clone(), vec![1.0, 0.0]],
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                RetrievalError::Dimensions {
                    expected: 4,
                    got: 2
                }
            ),
            "{e}"
        );
        c.commit().unwrap();
        assert_eq!(
            c.candidates("hamburg stores", Some(&v), 10).unwrap(),
            before
        );
        assert!(c.candidates("berlin shops", None, 10).unwrap().is_empty());
    }

    #[test]
    fn a_word_counts_as_covered_by_its_equivalent_but_the_ranking_stays() {
        let mut c = Collection::new("articles", 4, true).unwrap();
        let v = [vec![1.0, 0.0, 0.0, 0.0]];
        c.upsert(
            "payment",
            &doc("Payment methods", "We accept Visa and American Express."),
            &v,
        )
        .unwrap();
        c.upsert("news", &doc("Newsletter", "Unsubscribe at any time."), &v)
            .unwrap();
        c.commit().unwrap();
        let found = |c: &Collection, q: &str, id: &str| {
            c.candidates(q, Some(&v[0]), 10)
                .unwrap()
                .into_iter()
                .find(|x| x.id == id)
                .unwrap()
        };
        let before = found(&c, "do you accept amex", "payment");
        // "accept" is there, "amex" (in no document: the rarest word) is not.
        assert!(before.covered < 0.5, "{}", before.covered);
        let list = Synonyms::parse("amex, american express\nnewsletter, mailing list").unwrap();
        c.set_synonyms(Arc::new(list));
        let after = found(&c, "do you accept amex", "payment");
        assert_eq!(after.covered, 1.0);
        assert_eq!((after.semantic, after.bm25), (before.semantic, before.bm25));
        // Both words of the phrase count; "list" alone has no equivalent.
        assert_eq!(found(&c, "on your mailing list", "news").covered, 1.0);
        assert_eq!(found(&c, "a list of payment methods", "news").covered, 0.0);
    }

    #[test]
    fn a_coined_name_word_its_description_does_not_use_names_the_product() {
        let c = Collection::new("products", 4, false).unwrap();
        let doc = |name: &str, body: &str| LexicalDoc {
            name: format!("Alpenkraft {name}"),
            short_name: name.into(),
            body: body.into(),
            ..LexicalDoc::default()
        };
        c.upsert(
            "boot",
            &doc(
                "Nordkap Winter Boot",
                "Lined winter boot in waterproof leather.",
            ),
            &[vec![1.0, 0.0, 0.0, 0.0]],
        )
        .unwrap();
        c.upsert(
            "bar",
            &doc(
                "Solid Shampoo Bar",
                "Plastic-free shampoo bar for normal hair.",
            ),
            &[vec![0.0, 1.0, 0.0, 0.0]],
        )
        .unwrap();
        c.commit().unwrap();
        let coverage_of = |q: &str, coined: &[&str], id: &str| {
            let coined: Vec<String> = coined.iter().map(|w| w.to_string()).collect();
            c.candidates_named(q, None, 10, &coined)
                .unwrap()
                .into_iter()
                .find(|x| x.id == id)
                .map(|x| x.name_coverage)
        };
        assert_eq!(
            coverage_of("how much is the nordkap", &["nordkap"], "boot"),
            Some(1.0)
        );
        // Not coined: a third of the name.
        let third = coverage_of("how much is the nordkap", &[], "boot").unwrap();
        assert!((third - 1.0 / 3.0).abs() < 1e-6, "{third}");
        // The bar's description says it is a shampoo: a kind of goods, not its own name.
        let bar = coverage_of("ingredients of a shampoo", &["shampoo"], "bar").unwrap();
        assert!(bar < 1.0, "{bar}");
    }

    #[test]
    fn a_named_model_number_marks_its_siblings_as_other_models() {
        let names = [
            "Trailrunner 2",
            "Trailrunner",
            "Trail Gaiters",
            "Kettle Pro",
        ];
        // "2" names the Trailrunner 2: the original is another model of its family; the
        // gaiters share no name word with it, the kettle neither.
        assert_eq!(
            others(&names, "is the trailrunner 2 waterproof"),
            [false, true, false, false]
        );
        // Without a model code nothing is marked.
        assert_eq!(others(&names, "is the trailrunner waterproof"), [false; 4]);
        let names = ["Q7 ANC Headphones", "Q5 Headphones", "Buds Pro"];
        assert_eq!(
            others(&names, "does the sonique q5 have anc"),
            [true, false, false]
        );
        // A number that names no product's model changes nothing.
        assert_eq!(others(&names, "2 pairs of q9 headphones"), [false; 3]);
    }
}
