//! Dense layers in 8-bit integers: `y = x W^T + b` with `W` quantised once per output channel
//! (symmetric, `i8`) and `x` quantised per row at run time (asymmetric, `u8`), multiplied with
//! AVX-512 VNNI (`vpdpbusd`: 64 `u8 x i8` products summed into 16 `i32` lanes per instruction,
//! four times the multiply-adds of an f32 FMA).
//!
//! The integer sum is exact; the only rounding is the quantisation itself, so a row's result is
//! `s_x * s_w[c] * (sum_k u[k] q[c][k] - z_x * sum_k q[c][k]) + b[c]`, the zero-point term taken
//! from column sums computed when the weights are packed.

use std::arch::x86_64::*;

use super::math::gelu512;
use super::Threads;

/// Output columns per packed panel: four 16-lane registers.
const NR: usize = 64;
/// Rows per register tile: 6 rows x 4 registers = 24 accumulators, leaving room for the four
/// weight registers and a broadcast in the 32 that AVX-512 has.
const MR: usize = 6;

/// What follows the product in the same pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    Bias,
    BiasGelu,
}

/// A weight matrix `(n, k)` quantised per output row and packed for the kernel: panels of 64
/// columns, within a panel one 256-byte block per 4 inputs (`[column][4 inputs]`), which is the
/// operand layout `vpdpbusd` wants.
pub struct QuantLinear {
    n: usize,
    /// `k` rounded up to 4; the padding weights are zero.
    kp: usize,
    panels: usize,
    packed: Vec<i8>,
    scale: Vec<f32>,
    colsum: Vec<i32>,
    bias: Vec<f32>,
}

impl QuantLinear {
    /// `weight` is `(n, k)` row-major, the Hugging Face layout.
    pub fn new(weight: &[f32], bias: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not {n} x {k}");
        assert_eq!(bias.len(), n, "bias is not {n} long");
        let kp = k.div_ceil(4) * 4;
        let panels = n.div_ceil(NR);
        let np = panels * NR;
        let mut q = vec![0i8; np * kp];
        let mut scale = vec![1f32; np];
        let mut colsum = vec![0i32; np];
        for c in 0..n {
            let row = &weight[c * k..(c + 1) * k];
            let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            scale[c] = s;
            for (i, &w) in row.iter().enumerate() {
                let v = (w / s).round().clamp(-127.0, 127.0) as i8;
                q[c * kp + i] = v;
                colsum[c] += v as i32;
            }
        }
        let mut packed = vec![0i8; np * kp];
        for p in 0..panels {
            for k4 in 0..kp / 4 {
                for col in 0..NR {
                    for j in 0..4 {
                        packed[((p * (kp / 4) + k4) * NR + col) * 4 + j] =
                            q[(p * NR + col) * kp + k4 * 4 + j];
                    }
                }
            }
        }
        let mut b = vec![0f32; np];
        b[..n].copy_from_slice(bias);
        Self {
            n,
            kp,
            panels,
            packed,
            scale,
            colsum,
            bias: b,
        }
    }

    pub fn outputs(&self) -> usize {
        self.n
    }

    /// `out (m, n) = epilogue(x W^T + b)` for the quantised rows `x`.
    pub fn forward(&self, x: &QuantRows, out: &mut [f32], epilogue: Epilogue, threads: Threads) {
        assert_eq!(x.kp, self.kp, "input width differs from the layer's");
        let m = x.rows;
        assert!(out.len() >= m * self.n, "output buffer too small");
        if m == 0 {
            return;
        }
        let out_ptr = SendPtr(out.as_mut_ptr());
        let row_tiles = m.div_ceil(MR);
        // Split by column panels, and by rows too when there are few panels: each task reads
        // its panel (at most k x 64 bytes) from cache for all of its rows.
        let workers = threads.count();
        let row_parts = if self.panels >= 2 * workers {
            1
        } else {
            workers.min(row_tiles).max(1)
        };
        let tiles_per_part = row_tiles.div_ceil(row_parts);
        threads.for_each(self.panels * row_parts, |task| {
            let (p, part) = (task / row_parts, task % row_parts);
            let first = part * tiles_per_part * MR;
            let last = ((part + 1) * tiles_per_part * MR).min(m);
            let out_ptr = &out_ptr;
            let mut r = first;
            while r < last {
                let rows = (last - r).min(MR);
                // SAFETY: VNNI was detected before any QuantLinear was built (see
                // `Int8Encoder::new`); every task writes its own rows x columns block of
                // `out`, which holds m x n floats (asserted above).
                unsafe { self.tile(x, r, rows, p, out_ptr.0, epilogue) };
                r += rows;
            }
        });
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW/VNNI; rows `r..r + rows` exist in `x` and `out`.
    unsafe fn tile(
        &self,
        x: &QuantRows,
        r: usize,
        rows: usize,
        panel: usize,
        out: *mut f32,
        epilogue: Epilogue,
    ) {
        let args = TileArgs {
            a: x.data.as_ptr().add(r * self.kp),
            lda: self.kp,
            steps: self.kp / 4,
            panel: self.packed.as_ptr().add(panel * (self.kp / 4) * NR * 4),
            row_scale: x.scale.as_ptr().add(r),
            row_zero: x.zero.as_ptr().add(r),
            col: panel * NR,
            n: self.n,
            col_scale: self.scale.as_ptr().add(panel * NR),
            col_sum: self.colsum.as_ptr().add(panel * NR),
            bias: self.bias.as_ptr().add(panel * NR),
            out: out.add(r * self.n + panel * NR),
            ldo: self.n,
            gelu: epilogue == Epilogue::BiasGelu,
        };
        match rows {
            6 => tile_vnni::<6>(&args),
            5 => tile_vnni::<5>(&args),
            4 => tile_vnni::<4>(&args),
            3 => tile_vnni::<3>(&args),
            2 => tile_vnni::<2>(&args),
            _ => tile_vnni::<1>(&args),
        }
    }
}

/// Rows quantised to `u8` with a scale and zero point each: `x ~= scale * (u - zero)`. The
/// range always includes 0, so padding and exact zeros stay exact.
#[derive(Default)]
pub struct QuantRows {
    rows: usize,
    kp: usize,
    data: Vec<u8>,
    scale: Vec<f32>,
    zero: Vec<i32>,
}

impl QuantRows {
    /// Quantises `m` rows of width `k` from `x` (row-major), reusing this buffer.
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize, threads: Threads) {
        assert!(x.len() >= m * k);
        let kp = k.div_ceil(4) * 4;
        self.rows = m;
        self.kp = kp;
        // Grown, never cleared: every row is written in full below (padding included).
        if self.data.len() < m * kp {
            self.data.resize(m * kp, 0);
        }
        self.scale.resize(m, 1.0);
        self.zero.resize(m, 0);
        let chunk = if m >= 64 {
            m.div_ceil(threads.count())
        } else {
            m.max(1)
        };
        let parts = self.data[..m * kp]
            .chunks_mut(chunk * kp)
            .zip(self.scale.chunks_mut(chunk))
            .zip(self.zero.chunks_mut(chunk));
        threads.each(parts.enumerate(), |(c, ((data, scale), zero))| {
            for (i, (s, z)) in scale.iter_mut().zip(zero.iter_mut()).enumerate() {
                let row = c * chunk + i;
                let src = &x[row * k..(row + 1) * k];
                // SAFETY: callers build QuantRows only after detecting AVX-512.
                let row = &mut data[i * kp..(i + 1) * kp];
                let (rs, rz) = unsafe { quantize_row(src, &mut row[..k]) };
                row[k..].fill(0);
                *s = rs;
                *z = rz;
            }
        });
    }
}

/// # Safety
/// The CPU has AVX-512 F and BW.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row(x: &[f32], out: &mut [u8]) -> (f32, i32) {
    let n = x.len();
    let full = n / 16 * 16;
    let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    for i in (0..full).step_by(16) {
        let v = _mm512_loadu_ps(x.as_ptr().add(i));
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
    }
    let mut min = _mm512_reduce_min_ps(lo);
    let mut max = _mm512_reduce_max_ps(hi);
    for &v in &x[full..] {
        min = min.min(v);
        max = max.max(v);
    }
    let scale = if max > min { (max - min) / 255.0 } else { 1.0 };
    let zero = (-min / scale).round().clamp(0.0, 255.0) as i32;
    let inv = _mm512_set1_ps(1.0 / scale);
    let zv = _mm512_set1_epi32(zero);
    for i in (0..full).step_by(16) {
        let v = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr().add(i)), inv);
        // Round to nearest (the default MXCSR mode), shift by the zero point, clamp to 0..255.
        let q = _mm512_max_epi32(
            _mm512_add_epi32(_mm512_cvtps_epi32(v), zv),
            _mm512_setzero_si512(),
        );
        _mm_storeu_si128(
            out.as_mut_ptr().add(i) as *mut __m128i,
            _mm512_cvtusepi32_epi8(q),
        );
    }
    for i in full..n {
        out[i] = ((x[i] / scale).round() as i32 + zero).clamp(0, 255) as u8;
    }
    (scale, zero)
}

struct TileArgs {
    a: *const u8,
    lda: usize,
    steps: usize,
    panel: *const i8,
    row_scale: *const f32,
    row_zero: *const i32,
    /// First output column of the panel, and the number of real columns.
    col: usize,
    n: usize,
    col_scale: *const f32,
    col_sum: *const i32,
    bias: *const f32,
    out: *mut f32,
    ldo: usize,
    gelu: bool,
}

/// One `R x 64` tile of the output: the whole `k` reduction in registers, then dequantise,
/// bias (and GELU), store.
///
/// # Safety
/// AVX-512 F/BW/VNNI are present and the pointers in `t` cover `R` rows and the panel.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
unsafe fn tile_vnni<const R: usize>(t: &TileArgs) {
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    for s in 0..t.steps {
        let bp = t.panel.add(s * NR * 4) as *const __m512i;
        let b0 = _mm512_loadu_si512(bp);
        let b1 = _mm512_loadu_si512(bp.add(1));
        let b2 = _mm512_loadu_si512(bp.add(2));
        let b3 = _mm512_loadu_si512(bp.add(3));
        for (r, acc) in acc.iter_mut().enumerate() {
            let a = _mm512_set1_epi32((t.a.add(r * t.lda + s * 4) as *const i32).read_unaligned());
            acc[0] = _mm512_dpbusd_epi32(acc[0], a, b0);
            acc[1] = _mm512_dpbusd_epi32(acc[1], a, b1);
            acc[2] = _mm512_dpbusd_epi32(acc[2], a, b2);
            acc[3] = _mm512_dpbusd_epi32(acc[3], a, b3);
        }
    }
    for c in 0..4 {
        let first = t.col + c * 16;
        if first >= t.n {
            break;
        }
        let left = t.n - first;
        let mask: __mmask16 = if left >= 16 {
            0xffff
        } else {
            (1u16 << left) - 1
        };
        let sum = _mm512_loadu_si512(t.col_sum.add(c * 16) as *const __m512i);
        let cscale = _mm512_loadu_ps(t.col_scale.add(c * 16));
        let bias = _mm512_loadu_ps(t.bias.add(c * 16));
        for (r, acc) in acc.iter().enumerate() {
            // Exact in i32: |zero * sum| <= 255 * 127 * k.
            let zs = _mm512_mullo_epi32(_mm512_set1_epi32(*t.row_zero.add(r)), sum);
            let dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[c], zs));
            let scale = _mm512_mul_ps(cscale, _mm512_set1_ps(*t.row_scale.add(r)));
            let mut y = _mm512_fmadd_ps(dot, scale, bias);
            if t.gelu {
                y = gelu512(y);
            }
            _mm512_mask_storeu_ps(t.out.add(r * t.ldo + c * 16), mask, y);
        }
    }
}

/// A raw output pointer shared by tasks that write disjoint parts of it.
struct SendPtr(*mut f32);
// SAFETY: only used for disjoint writes, see `QuantLinear::forward`.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Measured speed of the int8 product in billions of multiply-adds per second, on the
/// encoder's feed-forward shape (`m` rows, 384 -> 1536).
pub fn measure_gmacs(m: usize, min_time: std::time::Duration) -> f64 {
    let (n, k) = (1536, 384);
    let w: Vec<f32> = (0..n * k).map(|i| ((i % 13) as f32 - 6.0) / 7.0).collect();
    let x: Vec<f32> = (0..m * k).map(|i| ((i % 11) as f32 - 5.0) / 9.0).collect();
    let layer = QuantLinear::new(&w, &vec![0.0; n], n, k);
    let mut q = QuantRows::default();
    q.quantize(&x, m, k, Threads::All);
    let mut y = vec![0f32; m * n];
    layer.forward(&q, &mut y, Epilogue::Bias, Threads::All);
    let start = std::time::Instant::now();
    let mut reps = 0usize;
    while start.elapsed() < min_time || reps < 3 {
        layer.forward(&q, &mut y, Epilogue::Bias, Threads::All);
        reps += 1;
    }
    (m * n * k) as f64 * reps as f64 / start.elapsed().as_secs_f64() / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have_vnni() -> bool {
        let ok = super::super::supported();
        if !ok {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
        }
        ok
    }

    /// `x W^T + b` through quantisation and the kernel.
    fn product(w: &[f32], b: &[f32], x: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f32> {
        let layer = QuantLinear::new(w, b, n, k);
        let mut q = QuantRows::default();
        q.quantize(x, m, k, Threads::All);
        let mut y = vec![0f32; m * n];
        layer.forward(&q, &mut y, Epilogue::Bias, Threads::All);
        y
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let v = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (v % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Against f32 arithmetic on the same numbers: odd sizes exercise the padding of `k`, the
    /// masked last columns and the row tiles of every height.
    #[test]
    fn matches_f32_within_quantisation_error() {
        if !have_vnni() {
            return;
        }
        for (m, n, k) in [
            (1, 64, 4),
            (7, 70, 9),
            (13, 384, 384),
            (20, 1152, 384),
            (3, 5, 1536),
        ] {
            let (w, b, x) = (data(n * k, 1), data(n, 2), data(m * k, 3));
            let y = product(&w, &b, &x, (m, n, k));
            for r in 0..m {
                for c in 0..n {
                    let want: f32 = b[c] + (0..k).map(|i| x[r * k + i] * w[c * k + i]).sum::<f32>();
                    // Each operand is off by at most half a step: 1/255 of the row's range
                    // (2) and 1/127 of the weight's (1); the errors are independent.
                    let tol = 0.02 * (k as f32).sqrt() + 1e-3;
                    let got = y[r * n + c];
                    assert!(
                        (got - want).abs() < tol,
                        "m{m} n{n} k{k} [{r},{c}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn exact_on_values_the_grids_hold() {
        if !have_vnni() {
            return;
        }
        // Weights are multiples of 1/127 of the row maximum and inputs integers 0..255 with
        // min 0: both quantise exactly, so the result must equal the f32 product.
        let (m, n, k) = (5, 64, 8);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i % 255) as f32 - 127.0) / 127.0)
            .collect();
        let mut w = w;
        for c in 0..n {
            w[c * k] = 1.0; // row maximum 1 for every row
        }
        let x: Vec<f32> = (0..m * k).map(|i| (i * 37 % 256) as f32).collect();
        let mut x = x;
        for r in 0..m {
            x[r * k] = 255.0;
            x[r * k + 1] = 0.0;
        }
        let y = product(&w, &vec![0.5; n], &x, (m, n, k));
        for r in 0..m {
            for c in 0..n {
                let want: f64 = 0.5
                    + (0..k)
                        .map(|i| x[r * k + i] as f64 * w[c * k + i] as f64)
                        .sum::<f64>();
                assert!((y[r * n + c] as f64 - want).abs() < 1e-3 * want.abs().max(1.0));
            }
        }
    }

    #[test]
    fn gelu_epilogue_applies_gelu() {
        if !have_vnni() {
            return;
        }
        let (m, n, k) = (2, 64, 16);
        let (w, b, x) = (data(n * k, 5), data(n, 6), data(m * k, 7));
        let layer = QuantLinear::new(&w, &b, n, k);
        let mut q = QuantRows::default();
        q.quantize(&x, m, k, Threads::All);
        let (mut plain, mut act) = (vec![0f32; m * n], vec![0f32; m * n]);
        layer.forward(&q, &mut plain, Epilogue::Bias, Threads::All);
        layer.forward(&q, &mut act, Epilogue::BiasGelu, Threads::One);
        for (p, a) in plain.iter().zip(&act) {
            assert!(
                (crate::model::cpu::gelu_erf(*p) - a).abs() < 1e-5,
                "{p} {a}"
            );
        }
    }
}
