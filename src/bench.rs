//! Throughput measurement: messages per second at several batch sizes, and the machine's
//! matrix-multiply speed through the same library, so the two can be compared.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::model::{BertConfig, Classifier, ModelError};

/// Realistic customer messages of typical chat length (about 18 tokens each).
pub const SAMPLE_MESSAGES: &[&str] = &[
    "hi, I ordered a pair of running shoes last week and they still haven't arrived",
    "can you tell me where my package is? the tracking number doesn't work",
    "I want to cancel order 4417823 because I found it cheaper somewhere else",
    "how long does standard shipping usually take to reach Canada from your warehouse",
    "my card was charged twice for the same order, please fix this asap",
    "I need to change the delivery address on my order to my office instead",
    "what payment methods do you accept? do you take PayPal or Apple Pay",
    "the jacket I received is the wrong size, how do I get a refund for it",
    "I forgot my password and the reset email never shows up in my inbox",
    "please let me speak to a real person, this chatbot is not helping me at all",
    "is there a fee if I cancel my order before it ships out tomorrow",
    "I'd like to get the invoice for my last purchase for my company expenses",
    "how do I delete my account and all the personal data you have on me",
    "your delivery guy left my parcel in the rain and everything is soaked",
    "when will my refund show up on my credit card statement? it's been ten days",
    "can I sign up for your newsletter to get discounts on new arrivals",
];

/// Results of one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    pub batch_size: usize,
    pub messages_per_second: f64,
    pub mean_tokens: f64,
    pub tokenize_share: f64,
    pub model_gflops: f64,
    pub share_of_peak: f64,
}

/// Approximate floating-point operations for one forward pass over `tokens` tokens of one
/// message: the dense layers (QKV, output, two FFN matrices) and the attention products.
pub fn flops_per_message(cfg: &BertConfig, tokens: f64) -> f64 {
    let (h, i, l) = (
        cfg.hidden_size as f64,
        cfg.intermediate_size as f64,
        cfg.num_hidden_layers as f64,
    );
    let dense = 2.0 * tokens * (4.0 * h * h + 2.0 * h * i);
    let attention = 2.0 * 2.0 * tokens * tokens * h;
    l * (dense + attention) + 2.0 * h * h
}

/// Shapes for the matrix-multiply measurement: the encoder's own (128 messages of 18 tokens
/// by hidden 384 by intermediate 1536) and two square ones.
const MATMUL_SHAPES: [(usize, usize, usize); 3] =
    [(2304, 384, 1536), (1024, 1024, 1024), (2048, 2048, 2048)];

/// Best f32 matrix-multiply speed in GFLOP/s of the CPU kernels' GEMM library.
pub fn kernel_gflops(min_time: Duration) -> f64 {
    MATMUL_SHAPES
        .iter()
        .map(|&(m, k, n)| crate::model::gemm_gflops(m, n, k, min_time))
        .fold(0.0, f64::max)
}

/// Best f32 matrix-multiply speed in GFLOP/s of candle's `matmul` on `device`.
pub fn matmul_gflops(device: &Device, min_time: Duration) -> Result<f64, ModelError> {
    let shapes = MATMUL_SHAPES;
    let mut best = 0.0f64;
    for (m, k, n) in shapes {
        let a = Tensor::randn(0f32, 1.0, (m, k), device)?;
        let b = Tensor::randn(0f32, 1.0, (k, n), device)?;
        a.matmul(&b)?; // warm-up
        let start = Instant::now();
        let mut reps = 0usize;
        while start.elapsed() < min_time || reps < 3 {
            let c = a.matmul(&b)?;
            device.synchronize()?;
            drop(c);
            reps += 1;
        }
        let flops = 2.0 * (m * k * n) as f64 * reps as f64;
        best = best.max(flops / start.elapsed().as_secs_f64() / 1e9);
    }
    Ok(best)
}

/// Classifies `messages` (cycled) in batches of `batch_size` for at least `min_time`.
pub fn throughput(
    classifier: &Classifier,
    messages: &[&str],
    batch_size: usize,
    min_time: Duration,
    peak_gflops: f64,
) -> Result<ThroughputRow, ModelError> {
    let batch: Vec<&str> = messages.iter().cycle().take(batch_size).copied().collect();
    let tokens: usize = batch
        .iter()
        .map(|m| classifier.text_encoder().token_count(m))
        .sum::<Result<usize, _>>()?;
    let mean_tokens = tokens as f64 / batch_size as f64;
    classifier.classify(&batch)?; // warm-up
    let (mut done, mut tokenize) = (0usize, Duration::ZERO);
    let start = Instant::now();
    while start.elapsed() < min_time || done < 2 * batch_size {
        let t = Instant::now();
        classifier
            .text_encoder()
            .encode(&batch, classifier.device())?;
        tokenize += t.elapsed();
        classifier.classify(&batch)?;
        done += batch_size;
    }
    // The loop tokenised twice per batch (once alone, once inside classify): remove one.
    let total = start.elapsed().as_secs_f64() - tokenize.as_secs_f64();
    let rate = done as f64 / total;
    let gflops = rate * flops_per_message(classifier.config(), mean_tokens) / 1e9;
    Ok(ThroughputRow {
        batch_size,
        messages_per_second: rate,
        mean_tokens,
        tokenize_share: tokenize.as_secs_f64() / total,
        model_gflops: gflops,
        share_of_peak: if peak_gflops > 0.0 {
            gflops / peak_gflops
        } else {
            0.0
        },
    })
}
