//! A BERT encoder built so that the same weights serve training and inference.
//!
//! Why not `candle-transformers`' BertModel: its LayerNorm (on contiguous input) and
//! `softmax_last_dim` are fused kernels without a backward pass, so fine-tuning through it
//! silently trains only the head. Here training uses differentiable compositions of basic ops,
//! and inference keeps the fused kernels (and a fused QKV projection) for speed.

use candle_core::{DType, Module, Tensor, D};
use candle_nn::{Embedding, VarBuilder};
use rand::rngs::StdRng;
use rand::Rng;

use super::cpu::{AddLayerNorm, FusedAttention, FusedLinear, GeluErf};
use super::{BertConfig, Pooling};

/// Whether a forward pass trains (dropout on, differentiable ops) or infers.
pub enum Pass<'a> {
    Infer,
    Train { rng: &'a mut StdRng },
}

impl Pass<'_> {
    pub fn training(&self) -> bool {
        matches!(self, Pass::Train { .. })
    }
}

/// Inverted dropout with a seeded mask, so training runs are reproducible (candle's CPU RNG
/// cannot be seeded).
pub(crate) fn dropout(x: &Tensor, p: f64, pass: &mut Pass) -> candle_core::Result<Tensor> {
    let Pass::Train { rng } = pass else {
        return Ok(x.clone());
    };
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let keep = 1.0 - p as f32;
    let scale = 1.0 / keep;
    let n = x.elem_count();
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.gen::<f32>() < keep { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}

/// A tensor's values as one f32 array.
#[cfg(target_arch = "x86_64")]
fn flat(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

/// A dense layer holding the Hugging Face weight layout `(out, in)`.
#[derive(Clone)]
pub(crate) struct Dense {
    weight: Tensor,
    bias: Tensor,
    /// Inference-only contiguous copy of `weight^T`, so the GEMM reads rows in order.
    weight_t: Option<Tensor>,
    /// Inference-only fused CPU kernel (GEMM + bias, optionally + GELU).
    cpu: Option<std::sync::Arc<FusedLinear>>,
}

impl Dense {
    /// Weights initialised like `transformers` does (normal, std 0.02) when not loaded.
    pub(crate) fn load(vb: VarBuilder, inp: usize, out: usize) -> candle_core::Result<Self> {
        let init = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let weight = vb.get_with_hints((out, inp), "weight", init)?;
        let bias = vb.get_with_hints(out, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self {
            weight,
            bias,
            weight_t: None,
            cpu: None,
        })
    }

    /// Prepares the fastest inference form for the weight's device. `gelu` asks the CPU
    /// kernel to apply GELU too (the caller then must not apply it again).
    fn prepare_inference(&mut self, gelu: bool) -> candle_core::Result<bool> {
        if self.weight.device().is_cpu() && self.weight.dtype() == DType::F32 {
            self.cpu = Some(std::sync::Arc::new(FusedLinear {
                weight: self.weight.flatten_all()?.to_vec1()?,
                bias: self.bias.to_vec1()?,
                gelu,
            }));
            return Ok(gelu);
        }
        self.weight_t = Some(self.weight.t()?.contiguous()?);
        Ok(false)
    }

    #[cfg(target_arch = "x86_64")]
    pub(crate) fn export(&self) -> candle_core::Result<super::int8::DenseWeights> {
        let (outputs, inputs) = self.weight.dims2()?;
        Ok(super::int8::DenseWeights {
            weight: flat(&self.weight)?,
            bias: flat(&self.bias)?,
            inputs,
            outputs,
        })
    }

    fn concat(parts: &[&Dense]) -> candle_core::Result<Dense> {
        let ws: Vec<&Tensor> = parts.iter().map(|d| &d.weight).collect();
        let bs: Vec<&Tensor> = parts.iter().map(|d| &d.bias).collect();
        Ok(Dense {
            weight: Tensor::cat(&ws, 0)?,
            bias: Tensor::cat(&bs, 0)?,
            weight_t: None,
            cpu: None,
        })
    }

    /// `x`: `(n, in)` or `(b, s, in)`.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if let Some(op) = &self.cpu {
            return x.contiguous()?.apply_op1_no_bwd(op.as_ref());
        }
        let dims = x.dims().to_vec();
        let inp = *dims.last().expect("dense input has a last dim");
        let rows = x.elem_count() / inp;
        let x2 = x.reshape((rows, inp))?;
        let y = match &self.weight_t {
            Some(wt) => x2.matmul(wt)?,
            None => x2.matmul(&self.weight.t()?)?,
        };
        let y = y.broadcast_add(&self.bias)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty") = y.dim(1)?;
        y.reshape(out_dims)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    /// Inference-only fused `LayerNorm(x + residual)` CPU kernel.
    cpu: Option<std::sync::Arc<AddLayerNorm>>,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps,
            cpu: None,
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn export(&self) -> candle_core::Result<super::int8::NormWeights> {
        Ok(super::int8::NormWeights {
            weight: flat(&self.weight)?,
            bias: flat(&self.bias)?,
        })
    }

    fn prepare_inference(&mut self) -> candle_core::Result<()> {
        if self.weight.device().is_cpu() && self.weight.dtype() == DType::F32 {
            self.cpu = Some(std::sync::Arc::new(AddLayerNorm {
                weight: self.weight.to_vec1()?,
                bias: self.bias.to_vec1()?,
                eps: self.eps as f32,
            }));
        }
        Ok(())
    }

    /// `LayerNorm(x + residual)`.
    fn forward_residual(
        &self,
        x: &Tensor,
        residual: &Tensor,
        training: bool,
    ) -> candle_core::Result<Tensor> {
        match &self.cpu {
            Some(op) if !training => x
                .contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, op.as_ref()),
            _ => self.forward(&(x + residual)?, training),
        }
    }

    fn forward(&self, x: &Tensor, training: bool) -> candle_core::Result<Tensor> {
        if !training && x.is_contiguous() {
            return candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32);
        }
        // Differentiable composition: the fused kernel has no backward pass.
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    dropout: f64,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            word: candle_nn::embedding(cfg.vocab_size, h, vb.pp("word_embeddings"))?,
            position: candle_nn::embedding(
                cfg.max_position_embeddings,
                h,
                vb.pp("position_embeddings"),
            )?,
            token_type: candle_nn::embedding(
                cfg.type_vocab_size,
                h,
                vb.pp("token_type_embeddings"),
            )?,
            norm: LayerNorm::load(vb.pp("LayerNorm"), h, cfg.layer_norm_eps)?,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        pass: &mut Pass,
    ) -> candle_core::Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let positions = Tensor::arange(0u32, seq as u32, ids.device())?;
        let x = self
            .word
            .forward(ids)?
            .add(&self.token_type.forward(type_ids)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        let x = self.norm.forward(&x, pass.training())?;
        dropout(&x, self.dropout, pass)
    }
}

/// The attention mask in the two forms the kernels want.
struct Mask {
    /// `(b, s)`: 1.0 for tokens, 0.0 for padding.
    keep: Tensor,
    /// `(b, 1, 1, s)`: 0 for tokens, a large negative number for padding.
    bias: Tensor,
}

struct SelfAttention {
    query: Dense,
    key: Dense,
    value: Dense,
    /// Inference-only `[query; key; value]` so one GEMM computes all three.
    qkv: Option<Dense>,
    heads: usize,
    head_dim: usize,
    dropout: f64,
}

impl SelfAttention {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            query: Dense::load(vb.pp("query"), h, h)?,
            key: Dense::load(vb.pp("key"), h, h)?,
            value: Dense::load(vb.pp("value"), h, h)?,
            qkv: None,
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
            dropout: cfg.attention_probs_dropout_prob,
        })
    }

    fn prepare_inference(&mut self) -> candle_core::Result<()> {
        let mut fused = Dense::concat(&[&self.query, &self.key, &self.value])?;
        fused.prepare_inference(false)?;
        self.qkv = Some(fused);
        Ok(())
    }

    fn forward(&self, x: &Tensor, mask: &Mask, pass: &mut Pass) -> candle_core::Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        if let (Some(qkv), false) = (&self.qkv, pass.training()) {
            if qkv.cpu.is_some() {
                let op = FusedAttention {
                    batch: b,
                    seq: s,
                    heads: self.heads,
                    head_dim: self.head_dim,
                };
                return qkv
                    .forward(x)?
                    .apply_op2_no_bwd(&mask.keep, &op)?
                    .reshape((b, s, h));
            }
        }
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, s, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = match (&self.qkv, pass.training()) {
            (Some(qkv), false) => {
                let all = qkv.forward(x)?; // (b, s, 3h)
                (
                    split(all.narrow(2, 0, h)?)?,
                    split(all.narrow(2, h, h)?)?,
                    split(all.narrow(2, 2 * h, h)?)?,
                )
            }
            _ => (
                split(self.query.forward(x)?)?,
                split(self.key.forward(x)?)?,
                split(self.value.forward(x)?)?,
            ),
        };
        let q = (q * (1.0 / (self.head_dim as f64).sqrt()))?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(&mask.bias)?;
        let probs = if pass.training() {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let probs = dropout(&probs, self.dropout, pass)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))
    }
}

#[derive(Clone, Copy)]
enum Activation {
    GeluErf,
    GeluTanh,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> Self {
        match name {
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            _ => Activation::GeluErf,
        }
    }

    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::GeluErf if x.device().is_cpu() && x.dtype() == DType::F32 => {
                x.contiguous()?.apply_op1(GeluErf)
            }
            Activation::GeluErf => x.gelu_erf(),
            Activation::GeluTanh => x.gelu(),
            Activation::Relu => x.relu(),
        }
    }
}

struct Layer {
    attention: SelfAttention,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
    act: Activation,
    /// The intermediate layer's kernel already applies the activation.
    act_fused: bool,
    dropout: f64,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let att = vb.pp("attention");
        Ok(Self {
            attention: SelfAttention::load(att.pp("self"), cfg)?,
            attention_out: Dense::load(att.pp("output").pp("dense"), h, h)?,
            attention_norm: LayerNorm::load(att.pp("output").pp("LayerNorm"), h, eps)?,
            intermediate: Dense::load(vb.pp("intermediate").pp("dense"), h, i)?,
            output: Dense::load(vb.pp("output").pp("dense"), i, h)?,
            output_norm: LayerNorm::load(vb.pp("output").pp("LayerNorm"), h, eps)?,
            act: Activation::from_name(&cfg.hidden_act),
            act_fused: false,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    fn prepare_inference(&mut self) -> candle_core::Result<()> {
        self.attention.prepare_inference()?;
        self.attention_out.prepare_inference(false)?;
        let gelu = matches!(self.act, Activation::GeluErf);
        self.act_fused = self.intermediate.prepare_inference(gelu)?;
        self.output.prepare_inference(false)?;
        self.attention_norm.prepare_inference()?;
        self.output_norm.prepare_inference()
    }

    fn forward(&self, x: &Tensor, mask: &Mask, pass: &mut Pass) -> candle_core::Result<Tensor> {
        let training = pass.training();
        let a = self.attention.forward(x, mask, pass)?;
        let a = dropout(&self.attention_out.forward(&a)?, self.dropout, pass)?;
        let h1 = self.attention_norm.forward_residual(&a, x, training)?;
        let i = self.intermediate.forward(&h1)?;
        let i = if self.act_fused && !training {
            i
        } else {
            self.act.apply(&i)?
        };
        let o = dropout(&self.output.forward(&i)?, self.dropout, pass)?;
        self.output_norm.forward_residual(&o, &h1, training)
    }
}

/// BERT embeddings, encoder layers and pooler, with Hugging Face weight names.
pub struct BertEncoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pooler: Dense,
}

impl BertEncoder {
    /// `vb` is rooted at the encoder (the `bert.` prefix already applied).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> candle_core::Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i.to_string()), cfg))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), cfg)?,
            layers,
            pooler: Dense::load(
                vb.pp("pooler").pp("dense"),
                cfg.hidden_size,
                cfg.hidden_size,
            )?,
        })
    }

    /// Precomputes fused and transposed weights. Only for models that will not be trained.
    /// Stops training the word embeddings: they are most of the parameters, and for
    /// classification fine-tuning leaving them as pretrained costs nothing in accuracy while
    /// saving the (vocab x hidden) gradient and optimiser update on every step.
    pub fn freeze_word_embeddings(&mut self) {
        let frozen = self.embeddings.word.embeddings().detach();
        let hidden = frozen.dim(1).unwrap_or(0);
        self.embeddings.word = Embedding::new(frozen, hidden);
    }

    /// The weights as plain f32 arrays, for the int8 kernels (which quantise them).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn export(&self) -> candle_core::Result<super::int8::EncoderWeights> {
        use super::int8::{EncoderWeights, LayerWeights};
        let first = self.layers.first();
        Ok(EncoderWeights {
            hidden: self.pooler.weight.dim(0)?,
            heads: first.map(|l| l.attention.heads).unwrap_or(1),
            eps: self.embeddings.norm.eps as f32,
            word: flat(self.embeddings.word.embeddings())?,
            position: flat(self.embeddings.position.embeddings())?,
            token_type: flat(self.embeddings.token_type.embeddings())?,
            embedding_norm: self.embeddings.norm.export()?,
            layers: self
                .layers
                .iter()
                .map(|l| {
                    let a = &l.attention;
                    Ok(LayerWeights {
                        qkv: Dense::concat(&[&a.query, &a.key, &a.value])?.export()?,
                        attention_out: l.attention_out.export()?,
                        attention_norm: l.attention_norm.export()?,
                        intermediate: l.intermediate.export()?,
                        output: l.output.export()?,
                        output_norm: l.output_norm.export()?,
                    })
                })
                .collect::<candle_core::Result<_>>()?,
        })
    }

    /// The pooler's weights, for the int8 path's head.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn export_pooler(&self) -> candle_core::Result<super::int8::DenseWeights> {
        self.pooler.export()
    }

    /// Whether `prepare_inference` has run (the fused kernels are in place).
    pub(crate) fn is_prepared(&self) -> bool {
        self.layers.iter().all(|l| l.attention.qkv.is_some())
    }

    /// Why the int8 kernels cannot run this encoder, if they cannot: they implement the exact
    /// (erf) GELU only, and rows of a multiple of 16 values.
    pub(crate) fn int8_blocker(&self) -> Option<String> {
        if !self
            .layers
            .iter()
            .all(|l| matches!(l.act, Activation::GeluErf))
        {
            return Some("they implement the exact (erf) GELU only".into());
        }
        let hidden = self.pooler.weight.dim(0).unwrap_or(0);
        if !hidden.is_multiple_of(16) {
            return Some(format!("hidden size {hidden} is not a multiple of 16"));
        }
        None
    }

    pub fn prepare_inference(&mut self) -> candle_core::Result<()> {
        for layer in &mut self.layers {
            layer.prepare_inference()?;
        }
        self.pooler.prepare_inference(false)?;
        Ok(())
    }

    /// Hidden states `(b, s, h)`. `mask` is the `(b, s)` attention mask (1 = token, 0 = pad).
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        pass: &mut Pass,
    ) -> candle_core::Result<Tensor> {
        let (b, s) = mask.dims2()?;
        let keep = mask.to_dtype(DType::F32)?;
        // Padding positions get a large negative score before the softmax.
        let bias = ((&keep - 1.0)? * 10_000.0)?.reshape((b, 1, 1, s))?;
        let mask = Mask { keep, bias };
        let mut x = self.embeddings.forward(ids, type_ids, pass)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask, pass)?;
        }
        Ok(x)
    }

    /// The pooled representation `(b, h)` used by sequence classification: the pooler
    /// (dense + tanh) over the `[CLS]` state, as `BertForSequenceClassification` does, or over
    /// the mean of the token states (padding excluded).
    pub fn pool(
        &self,
        hidden: &Tensor,
        mask: &Tensor,
        pooling: Pooling,
    ) -> candle_core::Result<Tensor> {
        let summary = match pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?; // (b, s, 1)
                let sum = hidden.broadcast_mul(&m)?.sum(1)?;
                sum.broadcast_div(&m.sum(1)?.clamp(1.0, f64::MAX)?)?
            }
        };
        self.pooler.forward(&summary)?.tanh()
    }
}
