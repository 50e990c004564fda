//! The shipped model keeps the figures its model card states: on the realistic test half, the
//! Bitext held-out split (rebuilt by `parley prepare-data` from `../shared/data`) and CLINC150's
//! `oos_test`. A retrained or swapped model that falls below them fails here, not in front of
//! customers.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parley(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .current_dir(repo())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "parley {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `parley eval --json` on one file: (accuracy, scope summary).
fn eval(data: &Path) -> serde_json::Value {
    eval_with(data, "auto")
}

/// The same, with the CPU kernels chosen (`auto`, `int8` or `f32`).
fn eval_with(data: &Path, kernels: &str) -> serde_json::Value {
    let text = parley(&[
        "--cpu-kernels",
        kernels,
        "eval",
        "--model",
        "models/intent-en",
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    serde_json::from_str(&text).unwrap()
}

fn share(v: &serde_json::Value, key: &str) -> f64 {
    v["scope"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn the_realistic_test_half_meets_the_model_card() {
    let r = eval(&repo().join("data/eval/test.jsonl"));
    assert!(r["total"].as_u64().unwrap() >= 300);
    let (right, turned_away, caught) = (
        share(&r, "in_scope_accuracy"),
        share(&r, "in_scope_called_off_topic"),
        share(&r, "off_topic_recall"),
    );
    println!("realistic test half: in scope {right:.4}, called off-topic {turned_away:.4}, off-topic caught {caught:.4}");
    assert!(right >= 0.95, "in-scope accuracy {right}");
    assert!(
        turned_away <= 0.02,
        "in-scope called off-topic {turned_away}"
    );
    assert!(caught >= 0.90, "off-topic recall {caught}");
}

#[test]
fn bitext_held_out_and_clinc_oos_test_meet_the_model_card() {
    let shared = repo().join("../shared/data");
    let out = tempfile::tempdir().unwrap();
    let bitext = shared.join("bitext");
    parley(&[
        "prepare-data",
        "--bitext",
        bitext
            .join("customer_support_intents_v1.csv")
            .to_str()
            .unwrap(),
        "--bitext",
        bitext
            .join("customer_support_intents_v2.csv")
            .to_str()
            .unwrap(),
        "--clinc",
        shared.join("clinc150/data_full.json").to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let bitext = eval(&out.path().join("test.jsonl"));
    let accuracy = bitext["accuracy"].as_f64().unwrap();
    assert_eq!(
        bitext["total"].as_u64(),
        Some(1301),
        "not the same held-out split"
    );
    let oos = eval(&out.path().join("oos_test.jsonl"));
    let caught = share(&oos, "off_topic_recall");
    println!("Bitext held-out {accuracy:.4}, CLINC150 oos_test caught {caught:.4}");
    // The model card's figure is 99.00% (1,288 of 1,301) on the machine it was trained on; the
    // guard sits one point lower because summation order differs between CPUs (AVX-512 or
    // AVX2 kernels) and can turn a message or two near the decision boundary.
    assert!(accuracy >= 0.98, "Bitext held-out accuracy {accuracy}");
    assert!(caught >= 0.90, "CLINC150 oos_test recall {caught}");
    if int8_runs_here() {
        let f32 = eval_with(&out.path().join("test.jsonl"), "f32");
        let int8 = eval_with(&out.path().join("test.jsonl"), "int8");
        let (a, b) = (
            f32["accuracy"].as_f64().unwrap(),
            int8["accuracy"].as_f64().unwrap(),
        );
        println!("Bitext held-out: f32 kernels {a:.4}, int8 kernels {b:.4}");
        assert!(b >= a - 0.005, "int8 loses accuracy: {b} against f32's {a}");
    }
}

/// Whether this CPU runs the int8 kernels (AVX-512 VNNI); elsewhere `--cpu-kernels int8` is
/// an error, and the comparison is skipped, saying so.
fn int8_runs_here() -> bool {
    #[cfg(target_arch = "x86_64")]
    let yes = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vnni");
    #[cfg(not(target_arch = "x86_64"))]
    let yes = false;
    if !yes {
        println!("skipped the int8 comparison: this CPU has no AVX-512 VNNI");
    }
    yes
}

/// The int8 kernels (the default where the CPU has VNNI) keep the f32 model's accuracy on the
/// hand-written sets, to half a point, and agree with it on nearly every message.
#[test]
fn int8_kernels_keep_the_f32_accuracy() {
    if !int8_runs_here() {
        return;
    }
    for set in [
        "data/eval/test.jsonl",
        "data/eval/dev.jsonl",
        "examples/realistic.jsonl",
    ] {
        let path = repo().join(set);
        let (f32, int8) = (eval_with(&path, "f32"), eval_with(&path, "int8"));
        let (a, b) = (
            f32["accuracy"].as_f64().unwrap(),
            int8["accuracy"].as_f64().unwrap(),
        );
        println!("{set}: f32 kernels {a:.4}, int8 kernels {b:.4}");
        assert!(b >= a - 0.005, "{set}: int8 {b} against f32 {a}");
        for key in ["in_scope_accuracy", "off_topic_recall"] {
            let (x, y) = (share(&f32, key), share(&int8, key));
            assert!(y >= x - 0.005, "{set} {key}: int8 {y} against f32 {x}");
        }
    }
}
