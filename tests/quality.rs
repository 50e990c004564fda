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
    let text = parley(&[
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
}
