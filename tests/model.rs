//! Loading and running classifiers in the Hugging Face layout.

mod common;

use candle_core::Device;
use parley::model::{Classifier, CpuKernels, Embedder, ModelError, TextEncoder};

#[test]
fn tokenisation_pads_to_the_longest_text_and_truncates() {
    let enc = TextEncoder::from_file(&common::shipped_model().join("tokenizer.json"), 8).unwrap();
    let texts = [
        "hi",
        "where is my order",
        "this sentence is much longer than eight tokens for sure",
    ];
    let batch = enc.encode(&texts, &Device::Cpu).unwrap();
    assert_eq!(
        batch.padded_len(),
        8,
        "padded to the longest, which is truncated to 8"
    );
    assert_eq!(batch.lengths, vec![3, 6, 8]);
    let ids = batch.ids.to_vec2::<u32>().unwrap();
    let mask = batch.mask.to_vec2::<u32>().unwrap();
    // [CLS] hi [SEP] then padding (id 0) with mask 0.
    assert_eq!(ids[0][0], 101);
    assert_eq!(ids[0][2], 102);
    assert_eq!(&ids[0][3..], &[0, 0, 0, 0, 0]);
    assert_eq!(mask[0], vec![1, 1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(mask[2], vec![1; 8]);
    assert_eq!(
        *ids[2].last().unwrap(),
        102,
        "truncation keeps the final [SEP]"
    );

    let short = enc.encode(&["hi", "ok"], &Device::Cpu).unwrap();
    assert_eq!(short.padded_len(), 3, "never padded to a fixed length");
}

#[test]
fn loads_a_classifier_saved_in_transformers_layout() {
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_classifier(dir.path(), &["greet", "track_order", "out_of_scope"]);
    let clf = Classifier::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(clf.labels(), ["greet", "track_order", "out_of_scope"]);
    let texts = [
        "hello there",
        "where is my parcel, it has not arrived yet",
        "x",
    ];
    let probs = clf.probabilities(&texts).unwrap();
    assert_eq!(probs.len(), 3);
    for row in &probs {
        assert_eq!(row.len(), 3);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    let preds = clf.classify(&texts).unwrap();
    assert!(preds
        .iter()
        .all(|p| clf.labels().contains(&p.intent) && p.top.len() == 3));
}

/// Sets `parley.pooling` in a model directory's config.json.
fn set_pooling(dir: &std::path::Path, pooling: &str) {
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["parley"] = serde_json::json!({ "pooling": pooling });
    std::fs::write(&path, cfg.to_string()).unwrap();
}

#[test]
fn mean_pooling_is_read_from_the_config_and_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_classifier(dir.path(), &["a", "b", "c"]);
    let texts = ["hi", "where is my order 4417823, it is late"];
    let cls = Classifier::load_kernels(dir.path(), &Device::Cpu, CpuKernels::F32)
        .unwrap()
        .probabilities(&texts)
        .unwrap();
    set_pooling(dir.path(), "mean");
    let fast = Classifier::load_kernels(dir.path(), &Device::Cpu, CpuKernels::F32).unwrap();
    assert_eq!(fast.settings().pooling, parley::model::Pooling::Mean);
    let mean = fast.probabilities(&texts).unwrap();
    let reference = Classifier::load_reference(dir.path(), &Device::Cpu)
        .unwrap()
        .probabilities(&texts)
        .unwrap();
    let diff = |a: &Vec<Vec<f32>>, b: &Vec<Vec<f32>>| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    assert!(diff(&mean, &reference) < 1e-4);
    assert!(diff(&mean, &cls) > 1e-4, "mean pooling changed nothing");
}

#[test]
fn fused_cpu_kernels_match_the_reference_ops() {
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_classifier(dir.path(), &["a", "b", "c", "d"]);
    let fast = Classifier::load_kernels(dir.path(), &Device::Cpu, CpuKernels::F32).unwrap();
    let reference = Classifier::load_reference(dir.path(), &Device::Cpu).unwrap();
    // Mixed lengths so padding and the attention mask matter.
    let texts = [
        "hi",
        "I want to cancel order 4417823 please",
        "my refund for the broken blender still has not arrived after two weeks",
    ];
    let a = fast.probabilities(&texts).unwrap();
    let b = reference.probabilities(&texts).unwrap();
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() < 1e-4, "fused {x} vs reference {y}");
        }
    }
    // A text classified alone gets the same answer as inside a padded batch.
    let alone = fast.probabilities(&texts[..1]).unwrap();
    for (x, y) in alone[0].iter().zip(&a[0]) {
        assert!((x - y).abs() < 1e-4);
    }
}

/// The int8 kernels on the shipped model: close to f32 on every probability, the same label
/// on realistic messages, and a text's result does not depend on the batch around it (each
/// token is quantised on its own, and texts are never padded). Checked on CPUs with AVX-512
/// VNNI; elsewhere asking for them is an error that says why.
#[test]
fn int8_kernels_follow_the_f32_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/intent-en");
    let int8 = match Classifier::load_kernels(&dir, &Device::Cpu, CpuKernels::Int8) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().contains("VNNI"), "{e}");
            println!("skipped: {e}");
            return;
        }
    };
    assert_eq!(int8.kernels(), "int8 AVX-512 VNNI kernels");
    let f32 = Classifier::load_kernels(&dir, &Device::Cpu, CpuKernels::F32).unwrap();
    let texts = [
        "hi",
        "where is my parcel? it was supposed to arrive on monday",
        "I want to cancel order 4417823 because I found it cheaper somewhere else",
        "can I talk to a human please",
        "what's the weather like in paris tomorrow",
        "my card was charged twice for the same order, please fix this asap and refund one",
        "do you ship to canada",
        "the zipper on the jacket broke after two days, I want my money back",
    ];
    let (a, b) = (
        f32.probabilities(&texts).unwrap(),
        int8.probabilities(&texts).unwrap(),
    );
    let labels = |p: &Vec<Vec<f32>>| -> Vec<usize> {
        p.iter()
            .map(|r| (0..r.len()).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap())
            .collect()
    };
    assert_eq!(labels(&a), labels(&b), "int8 changes a label");
    let worst = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    println!("largest probability difference, int8 against f32: {worst:.4}");
    assert!(worst < 0.05, "int8 probabilities differ by {worst}");
    // Alone, in a small batch (split by operation) and in a large one (split by text). The
    // encoder's result is the same; the f32 head's summation order may differ with the batch.
    let many: Vec<&str> = texts.iter().cycle().take(40).copied().collect();
    let batch = int8.probabilities(&many).unwrap();
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(x, y)| (x - y).abs() < 1e-5);
    for (i, text) in texts.iter().enumerate() {
        let alone = int8.probabilities(&[*text]).unwrap();
        assert!(
            close(&alone[0], &b[i]),
            "{text:?} alone differs from in a batch of 8"
        );
        assert!(
            close(&alone[0], &batch[i + 8]),
            "{text:?} alone differs in a batch of 40"
        );
    }
}

/// The retrieval encoders (fetched into models/ by scripts/setup.sh: bge-small-en-v1.5, the
/// default, and all-MiniLM-L6-v2) on the int8 kernels give nearly the f32 vectors, unit
/// length, and keep which of two texts is closer.
#[test]
fn int8_sentence_vectors_follow_the_f32_ones() {
    for name in ["bge-small-en-v1.5", "encoder"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(name);
        if !dir.join("model.safetensors").exists() {
            println!("skipped: no models/{name} (scripts/setup.sh fetches it)");
            continue;
        }
        let Ok(int8) = Embedder::load_kernels(&dir, &Device::Cpu, CpuKernels::Int8) else {
            println!("skipped: no AVX-512 VNNI");
            return;
        };
        let f32 = Embedder::load_kernels(&dir, &Device::Cpu, CpuKernels::F32).unwrap();
        let texts = [
            "How long does a refund take to reach my card?",
            "Refunds are paid back to the original payment method within 5 to 10 business \
             days after the returned item reaches our warehouse and passes inspection.",
            "Trailrunner 2 waterproof trail shoe",
        ];
        let (a, b) = (f32.embed(&texts).unwrap(), int8.embed(&texts).unwrap());
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(x, y)| x * y).sum::<f32>();
        for (x, y) in a.iter().zip(&b) {
            assert!((dot(y, y) - 1.0).abs() < 1e-4);
            let cos = dot(x, y);
            println!("{name}: cosine int8 / f32: {cos:.5}");
            assert!(cos > 0.995, "{name}: cosine {cos}");
        }
        assert!(dot(&b[0], &b[1]) > dot(&b[0], &b[2]), "{name}");
    }
}

/// A blend of the two retrieval encoders: joined unit vectors whose dot product is the
/// weighted mean of each encoder's cosine similarity, and a fingerprint of its own (so
/// vectors stored by one encoder are made again), while one encoder alone keeps its own.
#[test]
fn a_blend_of_encoders_averages_their_similarities() {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let (bge, mini) = (models.join("bge-small-en-v1.5"), models.join("encoder"));
    if !bge.join("model.safetensors").exists() || !mini.join("model.safetensors").exists() {
        println!("skipped: scripts/setup.sh fetches both encoders into models/");
        return;
    }
    let k = CpuKernels::F32;
    let a = Embedder::load_kernels(&bge, &Device::Cpu, k).unwrap();
    let b = Embedder::load_kernels(&mini, &Device::Cpu, k).unwrap();
    // Weights need not sum to one: 1.4 and 0.6 are 0.7 and 0.3.
    let blend = Embedder::blend_kernels(&[(&bge, 1.4), (&mini, 0.6)], &Device::Cpu, k).unwrap();
    assert_eq!(blend.dims(), a.dims() + b.dims());
    assert_ne!(blend.fingerprint(), a.fingerprint());
    let alone = Embedder::blend_kernels(&[(&bge, 0.5)], &Device::Cpu, k).unwrap();
    assert_eq!(alone.fingerprint(), a.fingerprint());
    let texts = [
        "can i send back headphones i opened",
        "Returning opened or used items: you may open the packaging to inspect an item.",
        "Kettle Pro 1.7 l stainless steel",
    ];
    let (va, vb, vj) = (
        a.embed(&texts).unwrap(),
        b.embed(&texts).unwrap(),
        blend.embed(&texts).unwrap(),
    );
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(x, y)| x * y).sum::<f32>();
    for v in &vj {
        assert!((dot(v, v) - 1.0).abs() < 1e-4);
    }
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let want = 0.7 * dot(&va[i], &va[j]) + 0.3 * dot(&vb[i], &vb[j]);
        let got = dot(&vj[i], &vj[j]);
        assert!(
            (got - want).abs() < 1e-4,
            "texts {i} and {j}: {got} against {want}"
        );
    }
    let e = Embedder::blend_kernels(&[(&bge, 1.0), (&mini, 0.0)], &Device::Cpu, k)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("weight above 0"), "{e}");
}

/// The tiny test model (hidden 32, 4 heads of 8) on the int8 kernels: its odd head size takes
/// the attention's scalar path.
#[test]
fn int8_kernels_run_small_models() {
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_classifier(dir.path(), &["a", "b", "c", "d"]);
    let Ok(int8) = Classifier::load_kernels(dir.path(), &Device::Cpu, CpuKernels::Int8) else {
        println!("skipped: no AVX-512 VNNI");
        return;
    };
    let f32 = Classifier::load_kernels(dir.path(), &Device::Cpu, CpuKernels::F32).unwrap();
    let texts = ["hi", "I want to cancel order 4417823 please"];
    let (a, b) = (
        f32.probabilities(&texts).unwrap(),
        int8.probabilities(&texts).unwrap(),
    );
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() < 0.02, "f32 {x} vs int8 {y}");
    }
}

#[test]
fn missing_and_corrupt_model_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = Classifier::load(&missing, &Device::Cpu).err().unwrap();
    assert!(matches!(err, ModelError::MissingDir(_)));
    assert!(err.to_string().contains("nope"), "{err}");

    let model = dir.path().join("m");
    common::write_tiny_classifier(&model, &["a", "b"]);
    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    let err = Classifier::load(&model, &Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    common::write_tiny_classifier(&model, &["a", "b"]);
    std::fs::write(model.join("model.safetensors"), b"not safetensors at all").unwrap();
    let err = Classifier::load(&model, &Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");

    common::write_tiny_classifier(&model, &["a", "b"]);
    std::fs::write(model.join("config.json"), b"{\"hidden_size\": ").unwrap();
    let err = Classifier::load(&model, &Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn a_bare_encoder_is_not_taken_for_a_classifier() {
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_encoder(dir.path());
    let err = Classifier::load(dir.path(), &Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("bare encoder"), "{err}");
}

#[test]
fn asking_for_cuda_without_it_is_an_error_not_a_fallback() {
    if cfg!(feature = "cuda") {
        return;
    }
    let err = parley::model::parse_device(parley::model::DeviceSpec::Cuda(0)).unwrap_err();
    assert!(err.to_string().contains("no CUDA support"), "{err}");
}

/// Every text of the public intent data, the repository's eval sets and Bitext's long answers
/// (punctuation, numbers, truncation), and some that must go to the library.
fn all_texts() -> Vec<String> {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = repo.join("../shared/data");
    let mut texts = Vec::new();
    let mut csv_column = |path: std::path::PathBuf, columns: &[&str]| {
        let mut r = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let headers = r.headers().unwrap().clone();
        let at: Vec<usize> = columns
            .iter()
            .map(|c| headers.iter().position(|h| h == *c).unwrap())
            .collect();
        for row in r.records() {
            let row = row.unwrap();
            texts.extend(at.iter().map(|&i| row[i].to_string()));
        }
    };
    for v in ["v1", "v2"] {
        csv_column(
            shared.join(format!("bitext/customer_support_intents_{v}.csv")),
            &["instruction", "response"],
        );
    }
    for split in ["train", "test"] {
        csv_column(shared.join(format!("banking77/{split}.csv")), &["text"]);
    }
    let clinc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("clinc150/data_full.json")).unwrap(),
    )
    .unwrap();
    for split in clinc.as_object().unwrap().values() {
        for pair in split.as_array().unwrap() {
            texts.push(pair[0].as_str().unwrap().to_string());
        }
    }
    for file in [
        "data/eval/test.jsonl",
        "data/eval/dev.jsonl",
        "examples/realistic.jsonl",
    ] {
        for line in std::fs::read_to_string(repo.join(file)).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            texts.push(v["text"].as_str().unwrap().to_string());
        }
    }
    texts.extend(
        [
            "",
            " ",
            "tab\there",
            "line\nbreak",
            "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e",
            "\u{4f60}\u{597d} order",
            "emoji \u{1f600} refund",
            "[CLS] injected [SEP] tokens [MASK]",
            "[cls] lower case [unk]",
            "del\u{7f}char",
            "nbsp\u{a0}space",
        ]
        .map(String::from),
    );
    texts
}

#[test]
fn the_fast_tokenizer_gives_the_library_ids_on_every_text() {
    let texts = all_texts();
    assert!(texts.len() > 50_000, "only {} texts", texts.len());
    // The truncation the models use, and a short one that cuts most texts.
    for max_len in [128, 12] {
        let enc = TextEncoder::from_file(&common::shipped_model().join("tokenizer.json"), max_len)
            .unwrap();
        assert!(enc.fast_path(), "the shipped tokenizer takes the fast path");
        for chunk in texts.chunks(4096) {
            let fast = enc.tokens(chunk).unwrap();
            let library = enc.library_tokens(chunk).unwrap();
            for ((text, f), l) in chunk.iter().zip(&fast).zip(&library) {
                assert_eq!(f, l, "max_len {max_len}: {text:?}");
            }
        }
    }
}
