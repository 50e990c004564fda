//! The f32 parts of the int8 encoder, vectorised with AVX-512: GELU (exact, erf-based, as
//! `transformers` computes `"gelu"`), `LayerNorm(x + residual)` and attention over the fused
//! QKV rows of unpadded sequences.
//!
//! Why by hand: the scalar `exp` of the standard library stops the compiler from vectorising
//! GELU and softmax, which would then cost as much as the integer matrix products.

use std::arch::x86_64::*;

/// `e^x` to about 2 ulp for `x` in `[-87, 88]` (smaller inputs give 0): `2^n * e^g` with
/// `n = round(x / ln 2)` and `|g| <= ln 2 / 2`, `e^g` by its Taylor series to `g^6`.
///
/// # Safety
/// The CPU has AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn exp512(x: __m512) -> __m512 {
    let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
    let x = _mm512_min_ps(x, _mm512_set1_ps(88.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    // g = x - n ln 2, with ln 2 split in two so the subtraction stays exact.
    let g = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
    let g = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), g);
    let mut p = _mm512_set1_ps(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, g, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// Exact GELU, `x/2 * (1 + erf(x / sqrt 2))`, with erf by Abramowitz and Stegun 7.1.26
/// (error under 1.5e-7), the same formula as the f32 kernels' scalar `gelu_erf`.
///
/// # Safety
/// The CPU has AVX-512 F and DQ.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
pub unsafe fn gelu512(x: __m512) -> __m512 {
    let z = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let az = _mm512_abs_ps(z);
    let t = _mm512_div_ps(
        _mm512_set1_ps(1.0),
        _mm512_fmadd_ps(az, _mm512_set1_ps(0.327_591_1), _mm512_set1_ps(1.0)),
    );
    let mut p = _mm512_set1_ps(1.061_405_4);
    for c in [-1.453_152_1, 1.421_413_7, -0.284_496_74, 0.254_829_6] {
        p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
    }
    p = _mm512_mul_ps(p, t);
    let e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
    // erf(|z|) = 1 - p e; erf keeps the sign of z.
    let erf_abs = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0));
    let sign = _mm512_and_ps(z, _mm512_set1_ps(-0.0));
    let erf = _mm512_or_ps(erf_abs, sign);
    _mm512_mul_ps(
        _mm512_mul_ps(x, _mm512_set1_ps(0.5)),
        _mm512_add_ps(erf, _mm512_set1_ps(1.0)),
    )
}

/// `out = LayerNorm(x + residual)` for one row.
///
/// # Safety
/// The CPU has AVX-512 F; all slices have the same length, a multiple of 16.
#[target_feature(enable = "avx512f")]
pub unsafe fn add_layer_norm_row(
    x: &[f32],
    residual: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    out.copy_from_slice(x);
    add_layer_norm_in_place(out, residual, weight, bias, eps);
}

/// `x = LayerNorm(x + residual)` for one row.
///
/// # Safety
/// The CPU has AVX-512 F; all slices have the same length, a multiple of 16.
#[target_feature(enable = "avx512f")]
pub unsafe fn add_layer_norm_in_place(
    x: &mut [f32],
    residual: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    let h = x.len();
    assert!(h.is_multiple_of(16) && residual.len() == h && weight.len() == h && bias.len() == h);
    let p = x.as_mut_ptr();
    let mut sum = _mm512_setzero_ps();
    for i in (0..h).step_by(16) {
        let v = _mm512_add_ps(
            _mm512_loadu_ps(p.add(i)),
            _mm512_loadu_ps(residual.as_ptr().add(i)),
        );
        _mm512_storeu_ps(p.add(i), v);
        sum = _mm512_add_ps(sum, v);
    }
    let mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / h as f32);
    let mut sq = _mm512_setzero_ps();
    for i in (0..h).step_by(16) {
        let d = _mm512_sub_ps(_mm512_loadu_ps(p.add(i)), mean);
        sq = _mm512_fmadd_ps(d, d, sq);
    }
    let inv = _mm512_set1_ps(1.0 / (_mm512_reduce_add_ps(sq) / h as f32 + eps).sqrt());
    for i in (0..h).step_by(16) {
        let d = _mm512_sub_ps(_mm512_loadu_ps(p.add(i)), mean);
        let y = _mm512_fmadd_ps(
            _mm512_mul_ps(d, inv),
            _mm512_loadu_ps(weight.as_ptr().add(i)),
            _mm512_loadu_ps(bias.as_ptr().add(i)),
        );
        _mm512_storeu_ps(p.add(i), y);
    }
}

/// Scratch space for one sequence's attention, reused across heads and layers.
#[derive(Default)]
pub struct AttentionScratch {
    /// The head's keys transposed, `(head_dim, s)` padded to 16 columns.
    keys_t: Vec<f32>,
    scores: Vec<f32>,
}

/// Self-attention for one unpadded sequence, heads `first..last`: `qkv` is `(s, 3h)` (query,
/// key, value of each token side by side); the context goes to `out`, `(s, h)` row-major, of
/// which only these heads' columns are written (so tasks may split one sequence by heads).
///
/// # Safety
/// The CPU has AVX-512 F; `qkv` holds `s * 3 * heads * head_dim` values and `out` points to
/// `s * heads * head_dim` writable ones, no other task writing these heads' columns.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub unsafe fn attention(
    qkv: &[f32],
    s: usize,
    heads: usize,
    head_dim: usize,
    (first, last): (usize, usize),
    scratch: &mut AttentionScratch,
    out: *mut f32,
) {
    debug_assert!(qkv.len() >= s * 3 * heads * head_dim && last <= heads);
    let h = heads * head_dim;
    let sp = s.div_ceil(16) * 16;
    let scale = _mm512_set1_ps(1.0 / (head_dim as f32).sqrt());
    if scratch.keys_t.len() < head_dim * sp {
        scratch.keys_t.resize(head_dim * sp, 0.0);
    }
    if scratch.scores.len() < sp {
        scratch.scores.resize(sp, 0.0);
    }
    let kt = scratch.keys_t.as_mut_ptr();
    let sc = scratch.scores.as_mut_ptr();
    let rows = qkv.as_ptr();
    for hd in first..last {
        let (q_off, k_off, v_off) = (hd * head_dim, h + hd * head_dim, 2 * h + hd * head_dim);
        // The head's keys transposed, `(head_dim, sp)`, the columns past `s` zero.
        for d in 0..head_dim {
            for j in s..sp {
                *kt.add(d * sp + j) = 0.0;
            }
        }
        for j in 0..s {
            let k = rows.add(j * 3 * h + k_off);
            for d in 0..head_dim {
                *kt.add(d * sp + j) = *k.add(d);
            }
        }
        for t in 0..s {
            let q = rows.add(t * 3 * h + q_off);
            // scores[j] = q . k_j / sqrt(d): up to 64 keys at a time, sixteen per register,
            // each query value broadcast once per group; running maximum.
            let mut maxv = _mm512_set1_ps(f32::NEG_INFINITY);
            for j0 in (0..sp).step_by(64) {
                let blocks = ((sp - j0) / 16).min(4);
                let mut acc = [_mm512_setzero_ps(); 4];
                for d in 0..head_dim {
                    let qd = _mm512_set1_ps(*q.add(d));
                    let row = kt.add(d * sp + j0);
                    for (b, acc) in acc.iter_mut().enumerate().take(blocks) {
                        *acc = _mm512_fmadd_ps(qd, _mm512_loadu_ps(row.add(16 * b)), *acc);
                    }
                }
                for (b, acc) in acc.iter().enumerate().take(blocks) {
                    let j = j0 + 16 * b;
                    let v = _mm512_mul_ps(*acc, scale);
                    _mm512_storeu_ps(sc.add(j), v);
                    maxv = _mm512_mask_max_ps(maxv, lanes(s, j), maxv, v);
                }
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(maxv));
            let mut total = _mm512_setzero_ps();
            for j in (0..sp).step_by(16) {
                let v = _mm512_loadu_ps(sc.add(j));
                let e = _mm512_maskz_mov_ps(lanes(s, j), exp512(_mm512_sub_ps(v, max)));
                total = _mm512_add_ps(total, e);
                _mm512_storeu_ps(sc.add(j), e);
            }
            let inv = 1.0 / _mm512_reduce_add_ps(total);
            let o = out.add(t * h + q_off);
            // context = sum_j p_j v_j / total, sixteen dimensions per register (the last
            // register masked when the head is not a multiple of 16 wide).
            for c in (0..head_dim).step_by(16) {
                let mask = lanes(head_dim, c);
                let mut acc = _mm512_setzero_ps();
                for j in 0..s {
                    let v = _mm512_maskz_loadu_ps(mask, rows.add(j * 3 * h + v_off + c));
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(*sc.add(j)), v, acc);
                }
                _mm512_mask_storeu_ps(o.add(c), mask, _mm512_mul_ps(acc, _mm512_set1_ps(inv)));
            }
        }
    }
}

/// The lanes of the 16 values from `j` that exist (of `s`).
#[inline]
fn lanes(s: usize, j: usize) -> __mmask16 {
    let valid = s.saturating_sub(j);
    if valid >= 16 {
        0xffff
    } else {
        (1u16 << valid) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::gelu_erf;

    fn have_avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    fn lanes(f: impl Fn(__m512) -> __m512, xs: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        for c in xs.chunks(16) {
            let mut buf = [0f32; 16];
            buf[..c.len()].copy_from_slice(c);
            let mut res = [0f32; 16];
            // SAFETY: callers checked AVX-512 F.
            unsafe { _mm512_storeu_ps(res.as_mut_ptr(), f(_mm512_loadu_ps(buf.as_ptr()))) };
            out.extend_from_slice(&res[..c.len()]);
        }
        out
    }

    #[test]
    fn exp_and_gelu_match_the_scalar_functions() {
        if !have_avx512() {
            return;
        }
        let xs: Vec<f32> = (-800..=800).map(|i| i as f32 / 10.0).collect();
        // SAFETY: AVX-512 F checked above.
        let e = lanes(|v| unsafe { exp512(v) }, &xs);
        for (x, e) in xs.iter().zip(&e) {
            let want = x.exp();
            assert!(
                (e - want).abs() <= 4e-7 * want,
                "exp({x}) = {e}, want {want}"
            );
        }
        let g = lanes(|v| unsafe { gelu512(v) }, &xs);
        for (x, g) in xs.iter().zip(&g) {
            assert!(
                (g - gelu_erf(*x)).abs() < 2e-6 * x.abs().max(1.0),
                "gelu({x})"
            );
        }
    }

    #[test]
    fn attention_matches_a_direct_computation() {
        if !have_avx512() {
            return;
        }
        // Head widths of one register, of half of one (masked), of two and a half.
        for d in [16, 8, 40] {
            let (s, heads) = (19, 3);
            let h = heads * d;
            let qkv: Vec<f32> = (0..s * 3 * h)
                .map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0)
                .collect();
            let mut out = vec![0f32; s * h];
            let mut scratch = AttentionScratch::default();
            // SAFETY: AVX-512 F checked above; sizes as documented.
            unsafe {
                attention(
                    &qkv,
                    s,
                    heads,
                    d,
                    (0, heads),
                    &mut scratch,
                    out.as_mut_ptr(),
                )
            };
            for hd in 0..heads {
                for t in 0..s {
                    let q = &qkv[t * 3 * h + hd * d..][..d];
                    let scores: Vec<f64> = (0..s)
                        .map(|j| {
                            let k = &qkv[j * 3 * h + h + hd * d..][..d];
                            q.iter().zip(k).map(|(a, b)| (a * b) as f64).sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let ex: Vec<f64> = scores.iter().map(|v| (v - max).exp()).collect();
                    let total: f64 = ex.iter().sum();
                    for c in 0..d {
                        let want: f64 = (0..s)
                            .map(|j| ex[j] / total * qkv[j * 3 * h + 2 * h + hd * d + c] as f64)
                            .sum();
                        let got = out[t * h + hd * d + c] as f64;
                        assert!((got - want).abs() < 1e-5, "head {hd} token {t} dim {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn layer_norm_of_a_sum() {
        if !have_avx512() {
            return;
        }
        let h = 32;
        let x: Vec<f32> = (0..h).map(|i| i as f32).collect();
        let r: Vec<f32> = (0..h).map(|i| (i % 3) as f32).collect();
        let (w, b) = (vec![2.0; h], vec![0.5; h]);
        let mut out = vec![0f32; h];
        // SAFETY: AVX-512 F checked above; h is a multiple of 16.
        unsafe { add_layer_norm_row(&x, &r, &w, &b, 1e-12, &mut out) };
        let sum: Vec<f64> = x.iter().zip(&r).map(|(a, b)| (a + b) as f64).collect();
        let mean = sum.iter().sum::<f64>() / h as f64;
        let var = sum.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
        for (o, v) in out.iter().zip(&sum) {
            let want = (v - mean) / var.sqrt() * 2.0 + 0.5;
            assert!((*o as f64 - want).abs() < 1e-4);
        }
    }
}
