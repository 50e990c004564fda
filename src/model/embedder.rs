//! Sentence embeddings for retrieval: the mean of a BERT encoder's last hidden states
//! (padding excluded), or its first token's state where the encoder directory says so,
//! L2-normalised so that a dot product is the cosine similarity. The
//! encoder is either a dedicated sentence encoder (a bare `embeddings.*` checkpoint, such as
//! all-MiniLM-L6-v2) or the encoder inside the shipped intent model (`bert.*`). Its pooling
//! is read from `1_Pooling/config.json` as sentence-transformers writes it; without that
//! file it is the mean.

use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use sha2::{Digest, Sha256};

use super::bert::{BertEncoder, Pass};
use super::{load_weights, BertConfig, ModelError, ModelFiles, Pooling, TextEncoder};

/// Longer texts are cut: retrieval embeds titles, questions and the opening of an answer.
pub const EMBED_MAX_TOKENS: usize = 128;

/// Sentence embeddings on the kernels the process was told to use (`--cpu-kernels`). Vectors
/// from the int8 and f32 kernels differ by quantisation noise only (cosine above 0.999), so
/// stored ones stay valid when a deployment moves between CPUs.
///
/// Several encoders can be blended: each one's unit vector is scaled by the square root of
/// its weight and the pieces are joined, so the joined vector has unit length and a dot
/// product of two is exactly the weighted mean of the encoders' cosine similarities. The
/// index, the stored vectors and the scoring need nothing else. Two small encoders trained
/// on different data disagree on different questions; their mean ranked better on the dev
/// sets but not on the test set, so blending is off by default (README, "Blending two
/// encoders").
pub struct Embedder {
    parts: Vec<Part>,
    dims: usize,
    fingerprint: String,
}

/// One encoder of a blend, with the scale its vectors get.
struct Part {
    encoder: Encoder,
    scale: f32,
}

impl Embedder {
    /// Loads an encoder for the CPU kernels named.
    pub fn load_kernels(
        dir: &Path,
        device: &Device,
        kernels: super::CpuKernels,
    ) -> Result<Self, ModelError> {
        Self::blend_kernels(&[(dir, 1.0)], device, kernels)
    }

    /// Loads encoders whose similarities are averaged with these weights (positive; they
    /// need not sum to one), for the kernels the process was told to use.
    pub fn blend(parts: &[(&Path, f32)], device: &Device) -> Result<Self, ModelError> {
        Self::blend_kernels(parts, device, super::cpu_kernels())
    }

    /// Loads a blend of encoders for the CPU kernels named.
    pub fn blend_kernels(
        parts: &[(&Path, f32)],
        device: &Device,
        kernels: super::CpuKernels,
    ) -> Result<Self, ModelError> {
        let total: f32 = parts.iter().map(|(_, w)| *w).sum();
        if parts.is_empty() || parts.iter().any(|(_, w)| !w.is_finite() || *w <= 0.0) {
            return Err(ModelError::Input(
                "a blend of encoders needs at least one encoder, each with a weight above 0".into(),
            ));
        }
        let mut loaded = Vec::with_capacity(parts.len());
        for (dir, weight) in parts {
            loaded.push(Part {
                encoder: Encoder::load(dir, device, kernels)?,
                scale: (weight / total).sqrt(),
            });
        }
        let dims = loaded.iter().map(|p| p.encoder.dims).sum();
        // One encoder keeps its own fingerprint, so vectors stored before blending existed
        // stay valid; a blend names each encoder and its weight.
        let fingerprint = match loaded.as_slice() {
            [one] => one.encoder.fingerprint.clone(),
            many => {
                let mut hash = Sha256::new();
                for p in many {
                    hash.update(format!("{}*{:.4};", p.encoder.fingerprint, p.scale));
                }
                hex::encode(&hash.finalize()[..8])
            }
        };
        Ok(Self {
            parts: loaded,
            dims,
            fingerprint,
        })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The whole words of the (first) encoder's vocabulary.
    pub fn whole_words(&self) -> std::collections::HashSet<String> {
        self.parts
            .first()
            .map(|p| p.encoder.text.whole_words())
            .unwrap_or_default()
    }

    /// Identifies the weights, pooling and blend: stored vectors made otherwise are made
    /// again.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// One unit-length vector per text, in input order.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, ModelError> {
        if let [one] = self.parts.as_slice() {
            return one.encoder.embed(texts);
        }
        // Not `vec![..; n]`: its clones would not keep the capacity.
        let mut joined: Vec<Vec<f32>> = (0..texts.len())
            .map(|_| Vec::with_capacity(self.dims))
            .collect();
        for part in &self.parts {
            for (out, v) in joined.iter_mut().zip(part.encoder.embed(texts)?) {
                out.extend(v.iter().map(|x| x * part.scale));
            }
        }
        Ok(joined)
    }
}

/// What computes the vectors.
enum Engine {
    Candle(BertEncoder),
    #[cfg(target_arch = "x86_64")]
    Int8(super::int8::Int8Encoder),
}

/// One sentence encoder: its engine, pooling and tokenizer.
struct Encoder {
    engine: Engine,
    pooling: Pooling,
    text: TextEncoder,
    device: Device,
    dims: usize,
    fingerprint: String,
}

impl Encoder {
    fn load(dir: &Path, device: &Device, kernels: super::CpuKernels) -> Result<Self, ModelError> {
        let files = ModelFiles::locate(dir)?;
        let config = BertConfig::from_file(&files.config)?;
        let pooling = pooling_of(dir)?;
        let text = TextEncoder::from_file(&files.tokenizer, EMBED_MAX_TOKENS)?;
        let weights = load_weights(&files.weights, device)?;
        let vb = VarBuilder::from_tensors(weights, DType::F32, device);
        let mut encoder =
            BertEncoder::load(vb.pp("bert"), &config).map_err(|e| ModelError::Corrupt {
                path: files.weights.clone(),
                reason: format!("does not hold a BERT encoder: {e}"),
            })?;
        let engine = if super::kernels::int8_for(&encoder, dir, device, kernels)? {
            int8_engine(&encoder)?
        } else {
            encoder.prepare_inference()?;
            Engine::Candle(encoder)
        };
        Ok(Self {
            engine,
            pooling,
            text,
            device: device.clone(),
            dims: config.hidden_size,
            fingerprint: fingerprint(&files.weights, pooling)?,
        })
    }

    fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encoder = match &self.engine {
            Engine::Candle(encoder) => encoder,
            #[cfg(target_arch = "x86_64")]
            Engine::Int8(encoder) => {
                let tokens = self.text.tokens(texts)?;
                let summary = match self.pooling {
                    Pooling::Cls => super::int8::Summary::First,
                    Pooling::Mean => super::int8::Summary::Mean,
                };
                let pooled = encoder.forward(&tokens, summary);
                return Ok(pooled
                    .chunks(self.dims)
                    .map(|m| {
                        let norm = m.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                        m.iter().map(|v| v / norm).collect()
                    })
                    .collect());
            }
        };
        let enc = self.text.encode(texts, &self.device)?;
        let hidden = encoder.forward(&enc.ids, &enc.type_ids, &enc.mask, &mut Pass::Infer)?;
        let pooled = match self.pooling {
            Pooling::Cls => normalised(&hidden.narrow(1, 0, 1)?.squeeze(1)?.to_dtype(DType::F32)?)?,
            Pooling::Mean => mean_normalised(&hidden, &enc.mask)?,
        };
        Ok(pooled.to_vec2::<f32>()?)
    }
}

#[cfg(target_arch = "x86_64")]
fn int8_engine(encoder: &BertEncoder) -> Result<Engine, ModelError> {
    let int8 = super::int8::Int8Encoder::new(encoder.export()?)
        .map_err(|e| ModelError::Device(format!("cannot run the int8 kernels: {e}")))?;
    Ok(Engine::Int8(int8))
}

#[cfg(not(target_arch = "x86_64"))]
fn int8_engine(_encoder: &BertEncoder) -> Result<Engine, ModelError> {
    Err(ModelError::Device(
        "the int8 kernels need an x86-64 CPU".into(),
    ))
}

/// Mean over the real tokens, then L2 normalisation: `(b, s, h)` -> `(b, h)`.
fn mean_normalised(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let hidden = hidden.to_dtype(DType::F32)?;
    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
    normalised(&sum.broadcast_div(&m.sum(1)?.clamp(1.0, f64::MAX)?)?)
}

/// L2 normalisation of each row of `(b, h)`.
fn normalised(v: &Tensor) -> candle_core::Result<Tensor> {
    let norm = v
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    v.broadcast_div(&norm)
}

/// The pooling `dir/1_Pooling/config.json` names (sentence-transformers' layout), else mean.
fn pooling_of(dir: &Path) -> Result<Pooling, ModelError> {
    let path = dir.join("1_Pooling").join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pooling::Mean),
        Err(e) => {
            return Err(ModelError::Corrupt {
                path,
                reason: format!("cannot read: {e}"),
            })
        }
    };
    let corrupt = |reason: String| ModelError::Corrupt {
        path: path.clone(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    let on = |key: &str| v.get(key).and_then(|x| x.as_bool()).unwrap_or(false);
    match (on("pooling_mode_cls_token"), on("pooling_mode_mean_tokens")) {
        (true, false) => Ok(Pooling::Cls),
        (false, true) => Ok(Pooling::Mean),
        _ => Err(corrupt(
            "names neither CLS nor mean pooling alone (the ones supported)".into(),
        )),
    }
}

/// The weights' hash; CLS pooling is part of it, mean pooling is not (so vectors stored
/// before pooling was configurable stay valid).
fn fingerprint(path: &Path, pooling: Pooling) -> Result<String, ModelError> {
    let io = |e: std::io::Error| ModelError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot read: {e}"),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    if pooling == Pooling::Cls {
        hash.update(b"pooling=cls");
    }
    Ok(hex::encode(&hash.finalize()[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_is_read_from_the_sentence_transformers_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pooling_of(dir.path()).unwrap(), Pooling::Mean);
        let sub = dir.path().join("1_Pooling");
        std::fs::create_dir(&sub).unwrap();
        let write = |json: &str| std::fs::write(sub.join("config.json"), json).unwrap();
        write(
            r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        );
        assert_eq!(pooling_of(dir.path()).unwrap(), Pooling::Cls);
        write(r#"{"pooling_mode_mean_tokens": true}"#);
        assert_eq!(pooling_of(dir.path()).unwrap(), Pooling::Mean);
        write(r#"{"pooling_mode_max_tokens": true}"#);
        let e = pooling_of(dir.path()).unwrap_err().to_string();
        assert!(e.contains("neither CLS nor mean"), "{e}");
        write("{");
        let e = pooling_of(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
    }

    #[test]
    fn mean_pooling_ignores_padding_and_normalises() {
        let d = Device::Cpu;
        // Two texts, the second with one padding position holding garbage.
        let hidden = Tensor::new(
            &[[[3.0f32, 4.0], [3.0, 4.0]], [[1.0, 0.0], [100.0, 100.0]]],
            &d,
        )
        .unwrap();
        let mask = Tensor::new(&[[1u32, 1], [1, 0]], &d).unwrap();
        let v = mean_normalised(&hidden, &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!((v[0][0] - 0.6).abs() < 1e-6 && (v[0][1] - 0.8).abs() < 1e-6);
        assert!((v[1][0] - 1.0).abs() < 1e-6 && v[1][1].abs() < 1e-6);
    }
}
