//! Fine-tuning: the loss falls and the encoder (not only the head) learns.

mod common;

use candle_core::{DType, Device};
use candle_nn::ParamsAdamW;
use parley::data::{write_jsonl, Example};
use parley::model::{Classifier, DeviceSpec};
use parley::train::{train, TrainOptions, Trainer, TrainerSettings};

fn dataset() -> Vec<(String, u32)> {
    let a = [
        "where is my parcel",
        "track my order",
        "has my package shipped",
        "order status please",
    ];
    let b = [
        "i want my money back",
        "refund please",
        "give me a refund",
        "return this for a refund",
    ];
    let c = [
        "what's the weather",
        "tell me a joke",
        "who won the game",
        "play some music",
    ];
    a.iter()
        .map(|t| (t.to_string(), 0))
        .chain(b.iter().map(|t| (t.to_string(), 1)))
        .chain(c.iter().map(|t| (t.to_string(), 2)))
        .collect()
}

#[test]
fn a_tiny_training_run_lowers_the_loss_and_changes_the_encoder() {
    let base = tempfile::tempdir().unwrap();
    common::write_tiny_encoder(base.path());
    let labels: Vec<String> = ["track", "refund", "oos"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let params = ParamsAdamW {
        lr: 3e-3,
        weight_decay: 0.0,
        ..Default::default()
    };
    let settings = TrainerSettings {
        max_seq_len: 32,
        seed: 7,
        adamw: params,
        label_smoothing: 0.0,
        train_embeddings: false,
        pooling: None,
    };
    let (mut trainer, init) =
        Trainer::from_base(base.path(), &labels, &Device::Cpu, settings).unwrap();
    assert_eq!(
        init.initialised,
        vec!["classifier.bias", "classifier.weight"]
    );
    let names = [
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.1.output.LayerNorm.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.word_embeddings.weight",
    ];
    let before: Vec<Vec<f32>> = names
        .iter()
        .map(|n| {
            trainer
                .weight(n)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        })
        .collect();
    let data = dataset();
    let texts: Vec<&str> = data.iter().map(|(t, _)| t.as_str()).collect();
    let targets: Vec<u32> = data.iter().map(|(_, l)| *l).collect();
    let mut losses = Vec::new();
    for _ in 0..40 {
        losses.push(trainer.step(&texts, &targets, 3e-3).unwrap());
    }
    let first: f32 = losses[..3].iter().sum::<f32>() / 3.0;
    let last: f32 = losses[losses.len() - 3..].iter().sum::<f32>() / 3.0;
    // 40 steps, not fewer: on some CPUs the GEMM kernels round differently and 25 steps
    // left the loss just above half.
    assert!(last < 0.5 * first, "loss did not fall enough: {losses:?}");
    let changed = |i: usize| {
        let after: Vec<f32> = trainer
            .weight(names[i])
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        before[i]
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max)
    };
    // Gradients reach through attention, the differentiable LayerNorm and the embeddings' norm.
    assert!(changed(0) > 1e-4, "attention weights did not change");
    assert!(changed(1) > 1e-4, "LayerNorm weights did not change");
    assert!(changed(2) > 1e-4, "embedding LayerNorm did not change");
    // Word embeddings are frozen by default.
    assert_eq!(changed(3), 0.0);
    let probs = trainer.probabilities(&texts, 8).unwrap();
    let correct = probs
        .iter()
        .zip(&targets)
        .filter(|(p, &t)| p.iter().cloned().fold(f32::MIN, f32::max) == p[t as usize])
        .count();
    assert!(correct >= 10, "only {correct}/12 training texts fit");
}

#[test]
fn train_writes_a_loadable_model_with_metrics() {
    let base = tempfile::tempdir().unwrap();
    common::write_tiny_encoder(base.path());
    let work = tempfile::tempdir().unwrap();
    let mut examples = Vec::new();
    for (text, label) in dataset() {
        for suffix in ["", " now", " please", " thanks", " asap"] {
            let label = ["track_order", "get_refund", "out_of_scope"][label as usize];
            examples.push(Example {
                text: format!("{text}{suffix}"),
                label: label.into(),
            });
        }
    }
    let data = work.path().join("train.jsonl");
    write_jsonl(&data, &examples).unwrap();
    let out = work.path().join("model");
    let opts = TrainOptions {
        base: base.path().to_path_buf(),
        data: vec![data],
        columns: Default::default(),
        out: out.clone(),
        epochs: 3,
        batch_size: 8,
        lr: 3e-3,
        weight_decay: 0.01,
        warmup_ratio: 0.1,
        dev_fraction: 0.2,
        seed: 3,
        patience: 3,
        max_seq_len: 32,
        augment: 0.3,
        product_swap: 0.5,
        label_smoothing: 0.0,
        train_embeddings: false,
        pooling: Some(parley::model::Pooling::Mean),
        oos_label: "out_of_scope".into(),
        oos_threshold: None,
        save_dtype: DType::F16,
        device: DeviceSpec::Cpu,
        max_steps: None,
        progress: false,
    };
    let summary = train(&opts).unwrap();
    assert_eq!(summary.labels, 3);
    assert_eq!(summary.train_examples + summary.dev_examples, 60);
    assert!(!summary.history.is_empty());
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    // A 2-layer random encoder on 48 examples is too small for a stable dev-accuracy bar (the
    // learning itself is checked above); here the run must report its figures and its loss fall.
    let dev = metrics["dev_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&dev), "{metrics}");
    let history = metrics["history"].as_array().unwrap();
    let loss = |i: usize| history[i]["train_loss"].as_f64().unwrap();
    assert!(loss(history.len() - 1) < loss(0), "{metrics}");
    let clf = Classifier::load(&out, &Device::Cpu).unwrap();
    assert_eq!(clf.labels(), ["get_refund", "out_of_scope", "track_order"]);
    assert_eq!(clf.settings().max_seq_len, 32);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["label2id"]["track_order"], 2);
    assert_eq!(config["torch_dtype"], "float16");
    assert!(config["parley"]["oos_threshold"].is_number());
    assert_eq!(config["parley"]["pooling"], "mean");
}

#[test]
fn a_classifier_with_the_same_labels_resumes_with_its_head() {
    let base = tempfile::tempdir().unwrap();
    common::write_tiny_classifier(base.path(), &["refund", "track"]);
    let settings = |seed| TrainerSettings {
        max_seq_len: 32,
        seed,
        adamw: ParamsAdamW::default(),
        label_smoothing: 0.0,
        train_embeddings: false,
        pooling: None,
    };
    let same: Vec<String> = vec!["refund".into(), "track".into()];
    let (trainer, init) =
        Trainer::from_base(base.path(), &same, &Device::Cpu, settings(1)).unwrap();
    assert!(init.initialised.is_empty(), "{:?}", init.initialised);
    let saved = candle_core::safetensors::load(base.path().join("model.safetensors"), &Device::Cpu)
        .unwrap();
    let head: Vec<f32> = saved["classifier.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let loaded: Vec<f32> = trainer
        .weight("classifier.weight")
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(head, loaded);

    let other: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    let (_, init) = Trainer::from_base(base.path(), &other, &Device::Cpu, settings(1)).unwrap();
    assert_eq!(
        init.initialised,
        vec!["classifier.bias", "classifier.weight"]
    );
}
