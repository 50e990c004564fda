use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationParams};

use super::wordpiece::AsciiWordPiece;
use super::ModelError;

/// Batches at least this large are tokenised on all threads.
const PARALLEL_FROM: usize = 64;

/// A batch of token ids padded to its longest member.
pub struct Encoded {
    /// `(b, s)` u32 token ids.
    pub ids: Tensor,
    /// `(b, s)` u32 segment ids (all zero for single sentences).
    pub type_ids: Tensor,
    /// `(b, s)` u32 attention mask: 1 for real tokens, 0 for padding.
    pub mask: Tensor,
    /// Real tokens per text (special tokens included), before padding.
    pub lengths: Vec<usize>,
}

impl Encoded {
    pub fn padded_len(&self) -> usize {
        self.ids.dim(1).unwrap_or(0)
    }
}

/// Tokenises a batch. Character offsets are not computed (nothing here uses them): that is
/// `encode_batch_fast`, the same ids for less work.
fn batch<S: AsRef<str>>(
    tokenizer: &Tokenizer,
    texts: &[S],
) -> Result<Vec<tokenizers::Encoding>, ModelError> {
    if texts.is_empty() {
        return Err(ModelError::Input("empty batch".into()));
    }
    let inputs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
    tokenizer
        .encode_batch_fast(inputs, true)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))
}

/// One text's token ids and segment ids, unpadded.
pub type TextTokens = (Vec<u32>, Vec<u32>);

/// Wraps a Hugging Face tokenizer with Parley's padding and truncation policy: pad to the
/// longest text of the batch (never to a fixed length, which some shipped tokenizer.json files
/// ask for and which would multiply the work for short chat messages), truncate to `max_len`.
#[derive(Clone)]
pub struct TextEncoder {
    /// The library's tokenizer, truncating at `max_len` and never padding (`encode` pads).
    tokenizer: Tokenizer,
    /// The id padding is made of (the tokenizer's own, else 0).
    pad_id: u32,
    /// Exactly the library's ids for most chat messages, for a fraction of the work; `None`
    /// when the tokenizer is not one it reproduces.
    fast: Option<Arc<AsciiWordPiece>>,
}

impl TextEncoder {
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, ModelError> {
        if !path.exists() {
            return Err(ModelError::MissingFile(path.to_path_buf()));
        }
        let tokenizer = Tokenizer::from_file(path).map_err(|e| ModelError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("not a valid tokenizer.json: {e}"),
        })?;
        Self::new(tokenizer, max_len)
    }

    pub fn new(mut tokenizer: Tokenizer, max_len: usize) -> Result<Self, ModelError> {
        if max_len < 2 {
            return Err(ModelError::Input(format!(
                "max sequence length {max_len} is too small"
            )));
        }
        let pad_id = tokenizer.get_padding().map(|p| p.pad_id).unwrap_or(0);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let fast = match AsciiWordPiece::new(&tokenizer, max_len) {
            Ok(fast) => Some(Arc::new(fast)),
            Err(why) => {
                tracing::debug!(%why, "tokenizing with the library only");
                None
            }
        };
        Ok(Self {
            tokenizer,
            pad_id,
            fast,
        })
    }

    /// The vocabulary's whole lowercase words ("return"; not "##s", "[CLS]" or "4"): the
    /// words a question may use that need no mending.
    pub fn whole_words(&self) -> std::collections::HashSet<String> {
        self.tokenizer
            .get_vocab(false)
            .into_keys()
            .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_lowercase()))
            .collect()
    }

    /// Whether the ASCII fast path is in use.
    pub fn fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// Tokenises `texts`, padding to the longest, and moves the ids to `device`.
    pub fn encode<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        device: &Device,
    ) -> Result<Encoded, ModelError> {
        let tokens = self.tokens(texts)?;
        let b = tokens.len();
        let s = tokens.iter().map(|t| t.0.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * s);
        let mut type_ids = Vec::with_capacity(b * s);
        let mut mask = Vec::with_capacity(b * s);
        let mut lengths = Vec::with_capacity(b);
        // Padded on the right (segment id 0), as the library pads.
        for (t_ids, t_types) in &tokens {
            let pad = s - t_ids.len();
            ids.extend_from_slice(t_ids);
            ids.extend(std::iter::repeat_n(self.pad_id, pad));
            type_ids.extend_from_slice(t_types);
            type_ids.extend(std::iter::repeat_n(0, pad));
            mask.extend(std::iter::repeat_n(1u32, t_ids.len()));
            mask.extend(std::iter::repeat_n(0u32, pad));
            lengths.push(t_ids.len());
        }
        Ok(Encoded {
            ids: Tensor::from_vec(ids, (b, s), device)?,
            type_ids: Tensor::from_vec(type_ids, (b, s), device)?,
            mask: Tensor::from_vec(mask, (b, s), device)?,
            lengths,
        })
    }

    /// Tokenises `texts` without padding: each text's ids and segment ids.
    pub fn tokens<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<TextTokens>, ModelError> {
        if texts.is_empty() {
            return Err(ModelError::Input("empty batch".into()));
        }
        let Some(fast) = &self.fast else {
            return self.library_tokens(texts);
        };
        let mut out: Vec<Option<TextTokens>> = if texts.len() >= PARALLEL_FROM {
            texts.par_iter().map(|t| fast.tokens(t.as_ref())).collect()
        } else {
            texts.iter().map(|t| fast.tokens(t.as_ref())).collect()
        };
        // The rest, in one call to the library.
        let rest: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_none()).collect();
        if !rest.is_empty() {
            let texts: Vec<&str> = rest.iter().map(|&i| texts[i].as_ref()).collect();
            for (i, t) in rest.into_iter().zip(self.library_tokens(&texts)?) {
                out[i] = Some(t);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Tokenises `texts` with the library alone, unpadded.
    pub fn library_tokens<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<Vec<TextTokens>, ModelError> {
        let encodings = batch(&self.tokenizer, texts)?;
        Ok(encodings
            .iter()
            .map(|e| {
                // Never padded: every token is the text's.
                (e.get_ids().to_vec(), e.get_type_ids().to_vec())
            })
            .collect())
    }

    /// Number of tokens `text` becomes (special tokens included, after truncation).
    pub fn token_count(&self, text: &str) -> Result<usize, ModelError> {
        Ok(self.tokens(&[text])?.remove(0).0.len())
    }
}
