//! Reading articles and products from files (JSON Lines, a JSON array, or a YAML list), for
//! `parley kb load` and the evaluation. Each record is checked exactly as the topics check
//! it, and a bad one is named by file and position.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::wire::{decode_article, decode_product, Article, Product};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{path}: cannot read: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: record {index}: {message}")]
    Record {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// Articles and products read from files.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub articles: Vec<Article>,
    pub products: Vec<Product>,
}

impl Content {
    /// Reads a file, or every `.jsonl`, `.json`, `.yaml` and `.yml` file of a directory
    /// (in name order).
    pub fn read(path: &Path) -> Result<Self, ContentError> {
        let mut content = Content::default();
        let read_err = |cause| ContentError::Read {
            path: path.to_path_buf(),
            cause,
        };
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("jsonl" | "json" | "yaml" | "yml")
                    )
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(ContentError::Format {
                    path: path.to_path_buf(),
                    message: "no .jsonl, .json, .yaml or .yml files in this directory".into(),
                });
            }
            for f in files {
                content.add_file(&f)?;
            }
        } else {
            content.add_file(path)?;
        }
        Ok(content)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), ContentError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ContentError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let format = |message: String| ContentError::Format {
            path: path.to_path_buf(),
            message,
        };
        let records: Vec<Value> =
            match path.extension().and_then(|e| e.to_str()) {
                Some("yaml" | "yml") => serde_yaml::from_str(&text)
                    .map_err(|e| format(format!("not a YAML list: {e}")))?,
                Some("json") => serde_json::from_str(&text)
                    .map_err(|e| format(format!("not a JSON array: {e}")))?,
                _ => text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(n, l)| {
                        serde_json::from_str(l).map_err(|e| format(format!("line {}: {e}", n + 1)))
                    })
                    .collect::<Result<_, _>>()?,
            };
        for (i, record) in records.into_iter().enumerate() {
            let bad = |message: String| ContentError::Record {
                path: path.to_path_buf(),
                index: i + 1,
                message,
            };
            let bytes = serde_json::to_vec(&record).expect("a JSON value serialises");
            if record.get("sku").is_some() {
                self.products
                    .push(decode_product(&bytes, None).map_err(|e| bad(e.to_string()))?);
            } else if record.get("body").is_some() || record.get("title").is_some() {
                self.articles
                    .push(decode_article(&bytes, None).map_err(|e| bad(e.to_string()))?);
            } else {
                return Err(bad(
                    "neither a product (it has no `sku`) nor an article (no `title` or `body`)"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}
