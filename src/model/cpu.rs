//! Fused CPU inference kernels for the encoder's hot path, used only when the model runs on
//! the CPU and will not be trained (none of them has a backward pass).
//!
//! Why: with candle's generic ops, a short chat message spends most of its time outside the
//! matrix multiplies: single-threaded element-wise passes (bias add, an f64 `erf` per GELU
//! element), three transposed copies per attention layer and a padded attention matrix. These
//! kernels do a dense layer as one GEMM with the bias (and GELU) folded in, and attention in one
//! pass over the fused QKV rows, skipping padding.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("{what}: expected f32 input");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

/// `C (m x n) = A (m x k) * B^T` with `B` stored `(n x k)`, added onto what `c` holds.
pub(crate) fn gemm_abt(a: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    if let Some(sgemm) = blas::sgemm() {
        // One thread pool for everything: OpenBLAS runs single-threaded (see `blas::load`) and
        // each product is split across rayon's threads (by rows when there are enough, by
        // columns for the few rows of a small batch), so no BLAS threads spin while rayon works.
        let threads = rayon::current_num_threads().max(1);
        let parts = if m >= 32 * threads { threads } else { 1 };
        let col_parts = if parts == 1 && n >= 256 * threads {
            threads
        } else {
            1
        };
        let rows = m.div_ceil(parts);
        let cols = n.div_ceil(col_parts);
        let c_ptr = SendPtr(c.as_mut_ptr());
        (0..parts * col_parts).into_par_iter().for_each(|task| {
            let (r0, c0) = ((task / col_parts) * rows, (task % col_parts) * cols);
            let (mr, nc) = (rows.min(m - r0.min(m)), cols.min(n - c0.min(n)));
            if mr == 0 || nc == 0 {
                return;
            }
            let c_ptr = &c_ptr;
            // SAFETY: tasks write disjoint blocks C[r0.., c0..] of the m x n output (leading
            // dimension n); A rows r0.. and B rows c0.. are in bounds (asserted above).
            unsafe {
                sgemm(
                    blas::ROW_MAJOR,
                    blas::NO_TRANS,
                    blas::TRANS,
                    mr as i32,
                    nc as i32,
                    k as i32,
                    1.0,
                    a.as_ptr().add(r0 * k),
                    k as i32,
                    b.as_ptr().add(c0 * k),
                    k as i32,
                    1.0,
                    c_ptr.0.add(r0 * n + c0),
                    n as i32,
                );
            }
        });
        return;
    }
    gemm_abt_builtin(a, b, c, m, n, k);
}

/// A raw output pointer shared by tasks that write disjoint parts of it.
struct SendPtr(*mut f32);
// SAFETY: only used for disjoint writes, see `gemm_abt`.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// The pure-Rust fallback of [`gemm_abt`] (`dst := 1 * dst + 1 * a b^T`).
fn gemm_abt_builtin(a: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    // SAFETY: the slices hold m*k, n*k and m*n elements with the strides given.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            true,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        )
    }
}

/// OpenBLAS, loaded at run time. Loading it ourselves (rather than linking) lets Parley pick
/// the right kernels first: OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and
/// falls back to its SSE3 "Prescott" kernels, about 8x slower than its AVX-512 ones on the
/// same machine (measured: 19 vs 167 GFLOP/s). Without the library, the pure-Rust `gemm`
/// crate (AVX2) is used and a line says so.
mod blas {
    use std::sync::OnceLock;

    pub const ROW_MAJOR: i32 = 101;
    pub const NO_TRANS: i32 = 111;
    pub const TRANS: i32 = 112;

    pub type Sgemm = unsafe extern "C" fn(
        i32,
        i32,
        i32,
        i32,
        i32,
        i32,
        f32,
        *const f32,
        i32,
        *const f32,
        i32,
        f32,
        *mut f32,
        i32,
    );

    struct Blas {
        sgemm: Sgemm,
        _lib: libloading::Library,
    }

    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();

    /// The kernel family to ask OpenBLAS for on this CPU, if it should be forced.
    fn core_type() -> Option<&'static str> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Some("SkylakeX");
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Some("Haswell");
            }
        }
        None
    }

    fn load() -> Option<Blas> {
        if std::env::var_os("PARLEY_NO_BLAS").is_some() {
            return None;
        }
        if std::env::var_os("OPENBLAS_NUM_THREADS").is_none() {
            // Parley splits each GEMM across its own threads (see `gemm_abt`).
            std::env::set_var("OPENBLAS_NUM_THREADS", "1");
        }
        if std::env::var_os("OPENBLAS_CORETYPE").is_none() {
            if let Some(core) = core_type() {
                // Read by OpenBLAS when the library is loaded, just below.
                std::env::set_var("OPENBLAS_CORETYPE", core);
            }
        }
        for name in ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"] {
            // SAFETY: loading OpenBLAS runs only its own initialisers.
            let Ok(lib) = (unsafe { libloading::Library::new(name) }) else {
                continue;
            };
            // SAFETY: cblas_sgemm has this C signature in every OpenBLAS release.
            let sgemm = unsafe { lib.get::<Sgemm>(b"cblas_sgemm\0").map(|s| *s) };
            if let Ok(sgemm) = sgemm {
                return Some(Blas { sgemm, _lib: lib });
            }
        }
        tracing::warn!(
            "OpenBLAS (libopenblas.so.0) not found; CPU inference uses the slower built-in \
             GEMM (install libopenblas0 for full speed)"
        );
        None
    }

    pub fn sgemm() -> Option<Sgemm> {
        BLAS.get_or_init(load).as_ref().map(|b| b.sgemm)
    }

    /// Loads OpenBLAS now. Call early, while the process has one thread: loading may set
    /// environment variables for OpenBLAS.
    pub fn init() {
        let _ = sgemm();
    }

    pub fn library() -> &'static str {
        if sgemm().is_some() {
            "OpenBLAS sgemm"
        } else {
            "gemm crate"
        }
    }
}

/// `erf` to within 1.5e-7 (Abramowitz and Stegun 7.1.26), in f32.
#[inline]
fn erf(x: f32) -> f32 {
    let sign = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    sign * (1.0 - poly * (-x * x).exp())
}

/// Exact (erf) GELU, as `transformers` computes `"gelu"`.
#[inline]
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// A dense layer `y = x W^T + b`, optionally followed by GELU, as one op.
pub struct FusedLinear {
    /// `(out, in)` row-major, the Hugging Face layout.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub gelu: bool,
}

impl CustomOp1 for FusedLinear {
    fn name(&self) -> &'static str {
        "parley-fused-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let out = self.bias.len();
        let inp = self.weight.len() / out;
        let dims = l.shape().dims();
        if dims.last() != Some(&inp) {
            candle_core::bail!("{}: input {:?} does not end in {inp}", self.name(), dims);
        }
        let rows = x.len() / inp;
        let mut y = Vec::with_capacity(rows * out);
        for _ in 0..rows {
            y.extend_from_slice(&self.bias);
        }
        gemm_abt(x, &self.weight, &mut y, rows, out, inp);
        if self.gelu {
            y.par_chunks_mut(4096)
                .for_each(|c| c.iter_mut().for_each(|v| *v = gelu_erf(*v)));
        }
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("non-empty") = out;
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }
}

/// Multi-head self-attention over fused QKV rows `(b*s, 3h)` with a `(b, s)` mask; returns the
/// context `(b*s, h)`. Padded keys are skipped, padded query rows are left zero.
pub struct FusedAttention {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl CustomOp2 for FusedAttention {
    fn name(&self) -> &'static str {
        "parley-fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = contiguous(s1, l1, self.name())?;
        let mask = contiguous(s2, l2, self.name())?;
        let (b, s, nh, d) = (self.batch, self.seq, self.heads, self.head_dim);
        let h = nh * d;
        if qkv.len() != b * s * 3 * h || mask.len() != b * s {
            candle_core::bail!("{}: shapes do not match batch {b} x seq {s}", self.name());
        }
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; b * s * h];
        out.par_chunks_mut(s * h)
            .enumerate()
            .for_each(|(i, out_i)| {
                let rows = &qkv[i * s * 3 * h..(i + 1) * s * 3 * h];
                let keep: Vec<usize> = (0..s).filter(|&j| mask[i * s + j] > 0.5).collect();
                let mut scores = vec![0f32; keep.len()];
                for hd in 0..nh {
                    for &t in &keep {
                        let q = &rows[t * 3 * h + hd * d..t * 3 * h + (hd + 1) * d];
                        let mut max = f32::NEG_INFINITY;
                        for (sc, &j) in scores.iter_mut().zip(&keep) {
                            let k = &rows[j * 3 * h + h + hd * d..j * 3 * h + h + (hd + 1) * d];
                            let dot: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum();
                            *sc = dot * scale;
                            max = max.max(*sc);
                        }
                        let mut sum = 0.0;
                        for sc in scores.iter_mut() {
                            *sc = (*sc - max).exp();
                            sum += *sc;
                        }
                        let o = &mut out_i[t * h + hd * d..t * h + (hd + 1) * d];
                        for (p, &j) in scores.iter().zip(&keep) {
                            let w = p / sum;
                            let v =
                                &rows[j * 3 * h + 2 * h + hd * d..j * 3 * h + 2 * h + (hd + 1) * d];
                            o.iter_mut().zip(v).for_each(|(o, v)| *o += w * v);
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b * s, h))))
    }
}

/// `LayerNorm(x + residual)` in one pass per row.
pub struct AddLayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

impl CustomOp2 for AddLayerNorm {
    fn name(&self) -> &'static str {
        "parley-add-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, r) = f32_pair(s1, l1, s2, l2, self.name())?;
        let h = self.weight.len();
        if x.len() % h != 0 {
            candle_core::bail!("{}: rows are not {h} wide", self.name());
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(h).enumerate().for_each(|(row, o)| {
            let (xr, rr) = (&x[row * h..(row + 1) * h], &r[row * h..(row + 1) * h]);
            let mut mean = 0.0f32;
            for ((o, a), b) in o.iter_mut().zip(xr).zip(rr) {
                *o = a + b;
                mean += *o;
            }
            mean /= h as f32;
            let var = o.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((o, w), b) in o.iter_mut().zip(&self.weight).zip(&self.bias) {
                *o = (*o - mean) * inv * w + b;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Exact GELU for training on the CPU: one parallel pass forward, one backward. Candle's own
/// `gelu_erf` computes `erf` element by element on one thread in both directions.
pub struct GeluErf;

/// `d gelu(x) / dx = Phi(x) + x * phi(x)`, multiplied by the incoming gradient.
struct GeluErfGrad;

fn f32_pair<'a>(
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
    what: &str,
) -> candle_core::Result<(&'a [f32], &'a [f32])> {
    let a = contiguous(s1, l1, what)?;
    let b = contiguous(s2, l2, what)?;
    if a.len() != b.len() {
        candle_core::bail!("{what}: operands differ in size");
    }
    Ok((a, b))
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "parley-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let mut y = x.to_vec();
        y.par_chunks_mut(4096)
            .for_each(|c| c.iter_mut().for_each(|v| *v = gelu_erf(*v)));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = arg
            .contiguous()?
            .apply_op2_no_bwd(&grad_res.contiguous()?, &GeluErfGrad)?;
        Ok(Some(grad))
    }
}

impl CustomOp2 for GeluErfGrad {
    fn name(&self) -> &'static str {
        "parley-gelu-erf-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = f32_pair(s1, l1, s2, l2, self.name())?;
        let inv_sqrt_2pi = 0.398_942_3_f32;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(4096).enumerate().for_each(|(c, o)| {
            let base = c * 4096;
            for (i, o) in o.iter_mut().enumerate() {
                let v = x[base + i];
                let cdf = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = inv_sqrt_2pi * (-0.5 * v * v).exp();
                *o = g[base + i] * (cdf + v * pdf);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Measured speed (GFLOP/s) of the GEMM these kernels use, on an `(m x k) * (k x n)` product.
pub fn gemm_gflops(m: usize, n: usize, k: usize, min_time: std::time::Duration) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| ((i % 13) as f32 - 6.0) / 7.0).collect();
    let b: Vec<f32> = (0..n * k).map(|i| ((i % 11) as f32 - 5.0) / 9.0).collect();
    let mut c = vec![0f32; m * n];
    gemm_abt(&a, &b, &mut c, m, n, k);
    let start = std::time::Instant::now();
    let mut reps = 0usize;
    while start.elapsed() < min_time || reps < 3 {
        gemm_abt(&a, &b, &mut c, m, n, k);
        reps += 1;
    }
    2.0 * (m * n * k) as f64 * reps as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// Loads the GEMM library now; programs call this first thing in `main`, while they still have
/// one thread, because choosing OpenBLAS's kernels sets environment variables.
pub fn init_cpu_backend() {
    blas::init();
}

/// The GEMM library behind the CPU kernels, for reports.
pub fn gemm_library() -> &'static str {
    blas::library()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::cpu::erf::erf_f64;

    #[test]
    fn erf_gelu_matches_the_exact_function() {
        for i in -60..=60 {
            let x = i as f32 / 10.0;
            let exact = 0.5 * x as f64 * (1.0 + erf_f64(x as f64 / std::f64::consts::SQRT_2));
            assert!((gelu_erf(x) as f64 - exact).abs() < 2e-6, "x={x}");
        }
    }

    #[test]
    fn gelu_op_gradient_matches_finite_differences() {
        let dev = candle_core::Device::Cpu;
        let xs: Vec<f32> = (-30..=30).map(|i| i as f32 / 8.0).collect();
        let var = candle_core::Var::new(xs.as_slice(), &dev).unwrap();
        let y = var.as_tensor().apply_op1(GeluErf).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads.get(var.as_tensor()).unwrap().to_vec1().unwrap();
        for (x, g) in xs.iter().zip(g) {
            let h = 1e-3f32;
            let fd = (gelu_erf(x + h) - gelu_erf(x - h)) / (2.0 * h);
            assert!(
                (fd - g).abs() < 2e-3,
                "x={x}: finite difference {fd}, op {g}"
            );
        }
    }

    #[test]
    fn both_gemm_paths_add_a_b_transposed_onto_c() {
        // Many rows (split by rows), few rows and many columns (split by columns), and small.
        for (m, n, k) in [(70, 5, 3), (3, 1100, 7), (2, 3, 4)] {
            check_gemm(m, n, k);
        }
    }

    fn check_gemm(m: usize, n: usize, k: usize) {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.5).collect();
        let mut want = vec![1.5f32; m * n];
        for r in 0..m {
            for c in 0..n {
                want[r * n + c] += (0..k).map(|x| a[r * k + x] * b[c * k + x]).sum::<f32>();
            }
        }
        let mut builtin = vec![1.5f32; m * n];
        gemm_abt_builtin(&a, &b, &mut builtin, m, n, k);
        let mut chosen = vec![1.5f32; m * n];
        gemm_abt(&a, &b, &mut chosen, m, n, k);
        for ((w, x), y) in want.iter().zip(&builtin).zip(&chosen) {
            assert!((w - x).abs() < 1e-4 && (w - y).abs() < 1e-4, "{w} {x} {y}");
        }
    }
}
