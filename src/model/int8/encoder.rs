//! The BERT encoder forward pass on int8 dense layers, over unpadded sequences: a batch is the
//! concatenation of its texts' tokens, so no work goes to padding (a batch of chat messages
//! pads by about a third when padded to its longest).

use rayon::prelude::*;

use super::gemm::{Epilogue, QuantLinear, QuantRows};
use super::math::{add_layer_norm_in_place, add_layer_norm_row, attention, AttentionScratch};
use super::Threads;
use crate::model::tokenize::TextTokens;

/// An f32 dense layer as stored: `weight (out, in)` row-major.
pub struct DenseWeights {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

pub struct NormWeights {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

pub struct LayerWeights {
    /// Query, key and value stacked: `(3h, h)`.
    pub qkv: DenseWeights,
    pub attention_out: DenseWeights,
    pub attention_norm: NormWeights,
    pub intermediate: DenseWeights,
    pub output: DenseWeights,
    pub output_norm: NormWeights,
}

/// Everything the encoder needs, copied out of the f32 model.
pub struct EncoderWeights {
    pub hidden: usize,
    pub heads: usize,
    pub eps: f32,
    /// `(vocab, h)`, `(positions, h)`, `(types, h)`.
    pub word: Vec<f32>,
    pub position: Vec<f32>,
    pub token_type: Vec<f32>,
    pub embedding_norm: NormWeights,
    pub layers: Vec<LayerWeights>,
}

struct Layer {
    qkv: QuantLinear,
    attention_out: QuantLinear,
    attention_norm: NormWeights,
    intermediate: QuantLinear,
    output: QuantLinear,
    output_norm: NormWeights,
}

/// What a text's vector is made of: its first token's (`[CLS]`) last hidden state, or the
/// mean of all of its tokens' states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Summary {
    First,
    Mean,
}

pub struct Int8Encoder {
    hidden: usize,
    heads: usize,
    eps: f32,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: NormWeights,
    layers: Vec<Layer>,
    /// Work buffers kept between batches: fresh ones would be zeroed pages every time.
    buffers: std::sync::Mutex<Vec<Buffers>>,
}

/// Why a model cannot use the int8 kernels.
#[derive(Debug, thiserror::Error)]
pub enum Unsupported {
    #[error("this CPU has no AVX-512 VNNI")]
    Cpu,
    #[error("hidden size {0} is not a multiple of 16")]
    Hidden(usize),
}

impl Int8Encoder {
    pub fn new(w: EncoderWeights) -> Result<Self, Unsupported> {
        if !super::supported() {
            return Err(Unsupported::Cpu);
        }
        if !w.hidden.is_multiple_of(16) || !w.hidden.is_multiple_of(w.heads) {
            return Err(Unsupported::Hidden(w.hidden));
        }
        let q = |d: &DenseWeights| QuantLinear::new(&d.weight, &d.bias, d.outputs, d.inputs);
        let layers = w
            .layers
            .into_iter()
            .map(|l| Layer {
                qkv: q(&l.qkv),
                attention_out: q(&l.attention_out),
                attention_norm: l.attention_norm,
                intermediate: q(&l.intermediate),
                output: q(&l.output),
                output_norm: l.output_norm,
            })
            .collect();
        Ok(Self {
            hidden: w.hidden,
            heads: w.heads,
            eps: w.eps,
            word: w.word,
            position: w.position,
            token_type: w.token_type,
            embedding_norm: w.embedding_norm,
            layers,
            buffers: Default::default(),
        })
    }

    /// One summary vector per text, `(texts, h)`, from the last hidden states. Token ids must
    /// be in the vocabulary and texts no longer than the position table (the tokenizer
    /// guarantees both).
    pub fn forward(&self, texts: &[TextTokens], summary: Summary) -> Vec<f32> {
        let h = self.hidden;
        let mut out = vec![0f32; texts.len() * h];
        let workers = rayon::current_num_threads();
        if workers > 1 && texts.len() >= 4 * workers {
            // Enough texts: each thread runs the whole encoder on its share of them, so the
            // threads never wait for each other between operations (a batch of short messages
            // has about a hundred operations, each too small to split well).
            let bounds = split_by_tokens(&starts_of(texts), workers);
            let mut parts = Vec::with_capacity(workers);
            let mut rest: &mut [f32] = &mut out;
            for w in bounds.windows(2) {
                let (part, tail) = rest.split_at_mut((w[1] - w[0]) * h);
                parts.push((&texts[w[0]..w[1]], part));
                rest = tail;
            }
            parts
                .into_par_iter()
                .for_each(|(texts, out)| self.run(texts, summary, out, Threads::One));
        } else {
            self.run(texts, summary, &mut out, Threads::All);
        }
        out
    }

    fn run(&self, texts: &[TextTokens], summary: Summary, out: &mut [f32], threads: Threads) {
        let h = self.hidden;
        let starts = starts_of(texts);
        let m = *starts.last().unwrap_or(&0);
        // Work buffers: one set per concurrent caller, kept for the next batch (fresh ones
        // would be zeroed pages every time).
        let mut buf = self
            .buffers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let width = self
            .layers
            .iter()
            .map(|l| l.intermediate.outputs())
            .max()
            .unwrap_or(h);
        grow(&mut buf.states, m * h);
        grow(&mut buf.wide, m * width.max(3 * h));
        grow(&mut buf.ctx, m * h);
        grow(&mut buf.tmp, m * h);
        let mut x = std::mem::take(&mut buf.states);
        let states = &mut x[..m * h];
        self.embed(texts, &starts, states, threads);
        for layer in &self.layers {
            self.layer(layer, states, &starts, &mut buf, threads);
        }
        for (i, o) in out.chunks_mut(h).enumerate() {
            let rows = &states[starts[i] * h..starts[i + 1] * h];
            match summary {
                Summary::First => o.copy_from_slice(&rows[..h]),
                Summary::Mean => {
                    o.fill(0.0);
                    for row in rows.chunks(h) {
                        o.iter_mut().zip(row).for_each(|(o, v)| *o += v);
                    }
                    let n = (starts[i + 1] - starts[i]).max(1) as f32;
                    o.iter_mut().for_each(|v| *v /= n);
                }
            }
        }
        buf.states = x;
        self.buffers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(buf);
    }

    fn embed(&self, texts: &[TextTokens], starts: &[usize], x: &mut [f32], threads: Threads) {
        let h = self.hidden;
        let rows = x.chunks_mut(h).enumerate();
        threads.each(rows, |(row, out)| {
            let text = starts.partition_point(|&s| s <= row) - 1;
            let pos = row - starts[text];
            let (id, ty) = (texts[text].0[pos] as usize, texts[text].1[pos] as usize);
            let word = &self.word[id * h..(id + 1) * h];
            let p = &self.position[pos * h..(pos + 1) * h];
            let t = &self.token_type[ty * h..(ty + 1) * h];
            out.iter_mut()
                .zip(word.iter().zip(t))
                .for_each(|(o, (a, b))| *o = a + b);
            // SAFETY: AVX-512 was checked in `new`; all rows are h long, h % 16 == 0.
            unsafe {
                add_layer_norm_in_place(
                    out,
                    p,
                    &self.embedding_norm.weight,
                    &self.embedding_norm.bias,
                    self.eps,
                )
            };
        });
    }

    fn layer(&self, l: &Layer, x: &mut [f32], starts: &[usize], buf: &mut Buffers, th: Threads) {
        // Buffers may be longer than this batch needs: every use below slices to `m` rows.
        let h = self.hidden;
        let m = x.len() / h;
        let (heads, head_dim) = (self.heads, h / self.heads);
        // Attention: fused QKV product, then each text's attention on its own rows.
        buf.quant.quantize(x, m, h, th);
        let qkv = &mut buf.wide[..m * 3 * h];
        l.qkv.forward(&buf.quant, qkv, Epilogue::Bias, th);
        let qkv: &[f32] = qkv;
        // One task per text, or per text and group of heads when there are fewer texts than
        // threads (a single message still uses every core).
        let texts = starts.len() - 1;
        let workers = th.count();
        let groups = if texts >= 2 * workers {
            1
        } else {
            workers.min(heads)
        };
        let per_group = heads.div_ceil(groups);
        let ctx = SendPtr(buf.ctx.as_mut_ptr());
        th.for_each_init(
            texts * groups,
            AttentionScratch::default,
            |scratch, task| {
                let (text, group) = (task / groups, task % groups);
                let (start, s) = (starts[text], starts[text + 1] - starts[text]);
                let first = (group * per_group).min(heads);
                let last = ((group + 1) * per_group).min(heads);
                let rows = &qkv[start * 3 * h..(start + s) * 3 * h];
                let ctx = &ctx;
                // SAFETY: AVX-512 checked in `new`; this task alone writes these heads' columns
                // of this text's rows of `ctx`, which holds m x h floats.
                unsafe {
                    attention(
                        rows,
                        s,
                        heads,
                        head_dim,
                        (first, last),
                        scratch,
                        ctx.0.add(start * h),
                    )
                };
            },
        );
        buf.quant.quantize(&buf.ctx, m, h, th);
        l.attention_out
            .forward(&buf.quant, &mut buf.tmp[..m * h], Epilogue::Bias, th);
        norm_rows(
            &buf.tmp[..m * h],
            x,
            &l.attention_norm,
            self.eps,
            &mut buf.ctx[..m * h],
            th,
        );
        // Feed-forward: GELU folded into the first product.
        let width = l.intermediate.outputs();
        buf.quant.quantize(&buf.ctx, m, h, th);
        let inter = &mut buf.wide[..m * width];
        l.intermediate
            .forward(&buf.quant, inter, Epilogue::BiasGelu, th);
        buf.quant.quantize(inter, m, width, th);
        l.output
            .forward(&buf.quant, &mut buf.tmp[..m * h], Epilogue::Bias, th);
        norm_rows(
            &buf.tmp[..m * h],
            &buf.ctx[..m * h],
            &l.output_norm,
            self.eps,
            x,
            th,
        );
    }
}

/// Where each text's rows start, and the total at the end.
fn starts_of(texts: &[TextTokens]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(texts.len() + 1);
    starts.push(0);
    for t in texts {
        starts.push(starts.last().copied().unwrap_or(0) + t.0.len());
    }
    starts
}

/// Text indices cutting the batch into `parts` runs of about equal token counts.
fn split_by_tokens(starts: &[usize], parts: usize) -> Vec<usize> {
    let texts = starts.len() - 1;
    let total = starts[texts];
    let mut bounds = vec![0];
    for p in 1..parts {
        let target = total * p / parts;
        let cut = starts
            .partition_point(|&s| s < target)
            .clamp(bounds[p - 1], texts);
        bounds.push(cut);
    }
    bounds.push(texts);
    bounds
}

#[derive(Default)]
struct Buffers {
    /// The hidden states, `(tokens, h)`.
    states: Vec<f32>,
    quant: QuantRows,
    /// QKV rows, then the feed-forward's inner rows.
    wide: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// A raw output pointer shared by tasks that write disjoint parts of it.
struct SendPtr(*mut f32);
// SAFETY: only used for disjoint writes, see `Int8Encoder::layer`.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// `out = LayerNorm(a + b)` row by row.
fn norm_rows(a: &[f32], b: &[f32], norm: &NormWeights, eps: f32, out: &mut [f32], th: Threads) {
    let h = norm.weight.len();
    th.each(out.chunks_mut(h).enumerate(), |(row, o)| {
        // SAFETY: AVX-512 was checked when the encoder was built; rows are h long.
        unsafe {
            add_layer_norm_row(
                &a[row * h..(row + 1) * h],
                &b[row * h..(row + 1) * h],
                &norm.weight,
                &norm.bias,
                eps,
                o,
            )
        }
    });
}
