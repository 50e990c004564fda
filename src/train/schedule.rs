/// Linear warm-up to `peak` over `warmup` steps, then linear decay to zero at `total`.
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if total == 0 {
        return peak;
    }
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let left = total.saturating_sub(step) as f64;
    let span = (total - warmup).max(1) as f64;
    peak * (left / span).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::learning_rate;

    #[test]
    fn warms_up_then_decays() {
        let lr = |s| learning_rate(s, 100, 10, 1.0);
        assert!((lr(0) - 0.1).abs() < 1e-9);
        assert!((lr(9) - 1.0).abs() < 1e-9);
        assert!((lr(10) - 1.0).abs() < 1e-9);
        assert!((lr(55) - 0.5).abs() < 1e-9);
        assert!(lr(100).abs() < 1e-9);
        assert!(lr(30) > lr(60));
    }
}
