//! CPU inference in 8-bit integers on processors with AVX-512 VNNI: the encoder's dense layers
//! (nearly all of its arithmetic) run as `u8 x i8` products, four times the multiply-adds per
//! instruction of f32; attention, GELU and LayerNorm stay in f32. Chosen at run time by CPU
//! feature (see [`CpuKernels`]); elsewhere the f32 kernels run.
//!
//! Quantisation is per output channel for the weights (done once, at load) and per token for
//! the activations (at run time, asymmetric), which keeps the shipped model's accuracy: see
//! `models/intent-en/README.md` for both kernels' figures on the evaluation sets.

mod encoder;
mod gemm;
mod math;

pub use encoder::{DenseWeights, EncoderWeights, Int8Encoder, LayerWeights, NormWeights, Summary};

/// Whether an operation splits its work across rayon's threads or runs on the calling one
/// (inside a task that already has a share of a batch to itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    All,
    One,
}

impl Threads {
    fn count(self) -> usize {
        match self {
            Threads::All => rayon::current_num_threads().max(1),
            Threads::One => 1,
        }
    }

    /// Runs `f(0..n)`.
    fn for_each(self, n: usize, f: impl Fn(usize) + Sync + Send) {
        use rayon::prelude::*;
        match self {
            Threads::All => (0..n).into_par_iter().for_each(f),
            Threads::One => (0..n).for_each(f),
        }
    }

    /// Runs `f(state, 0..n)`, with one `state` per thread made by `init`.
    fn for_each_init<S>(
        self,
        n: usize,
        init: impl Fn() -> S + Sync + Send,
        f: impl Fn(&mut S, usize) + Sync + Send,
    ) {
        use rayon::prelude::*;
        match self {
            Threads::All => (0..n).into_par_iter().for_each_init(init, f),
            Threads::One => {
                let mut state = init();
                (0..n).for_each(|i| f(&mut state, i));
            }
        }
    }

    /// Runs `f` on every item.
    fn each<I>(self, items: I, f: impl Fn(I::Item) + Sync + Send)
    where
        I: Iterator + Send,
        I::Item: Send,
    {
        use rayon::prelude::*;
        match self {
            Threads::All => items.collect::<Vec<_>>().into_par_iter().for_each(f),
            Threads::One => items.for_each(f),
        }
    }
}

/// Whether this CPU runs the int8 kernels: AVX-512 F, BW and VNNI.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The int8 product's measured speed (billions of multiply-adds per second) on `m` rows of
/// the encoder's feed-forward shape; `None` where the kernels cannot run.
pub fn int8_gmacs(m: usize, min_time: std::time::Duration) -> Option<f64> {
    supported().then(|| gemm::measure_gmacs(m, min_time))
}
