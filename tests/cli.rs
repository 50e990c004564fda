//! The `parley` binary as a user runs it, on the shipped model.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn parley(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(args)
        .env_remove("PARLEY_MODEL")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// The JSON a successful command printed; its standard error when it failed.
fn json_of_success(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn classify_one_text_prints_one_prediction() {
    let out = parley(
        &["classify", "where is my package? it was due yesterday"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1);
    let p = &lines[0];
    assert_eq!(p["text"], "where is my package? it was due yesterday");
    let conf = p["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&conf));
    let top = p["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    assert!(top[0][0].is_string() && top[0][1].is_number());
    assert!(p["intent"].is_string());
}

#[test]
fn classify_stdin_keeps_order_and_reports_bad_lines() {
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"text\": \"I want to cancel my order\", \"id\": 1}\n");
    input.extend_from_slice(b"how do I get a refund\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"   \n");
    input.extend_from_slice(b"caf\xe9 order\n");
    input.extend_from_slice(b"{\"text\": 42}\n");
    input.extend_from_slice(b"i need the invoice for my last purchase");
    let out = parley(&["classify", "--batch-size", "2"], Some(&input));
    assert_eq!(
        out.status.code(),
        Some(1),
        "rejected lines make the exit status non-zero"
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 7, "one output line per input line");
    assert_eq!(lines[0]["text"], "I want to cancel my order");
    assert_eq!(lines[1]["text"], "how do I get a refund");
    assert_eq!(
        lines[2],
        serde_json::json!({"line": 3, "error": "empty text"})
    );
    assert_eq!(
        lines[3],
        serde_json::json!({"line": 4, "error": "empty text"})
    );
    assert_eq!(lines[4]["line"], 5);
    assert!(lines[4]["error"]
        .as_str()
        .unwrap()
        .contains("not valid UTF-8"));
    assert!(lines[5]["error"].as_str().unwrap().contains("not a string"));
    assert_eq!(lines[6]["text"], "i need the invoice for my last purchase");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 5: not valid UTF-8"), "{stderr}");
    assert!(
        stderr.contains("3 of 7 input lines rejected")
            || stderr.contains("4 of 7 input lines rejected"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_model_understands_everyday_requests() {
    let cases = [
        ("where is my parcel", "track_order"),
        ("i want to cancel my order", "cancel_order"),
        ("how do i get my money back", "get_refund"),
        ("can i talk to a real person", "contact_human_agent"),
        ("i forgot my password", "recover_password"),
        (
            "what payment methods do you accept",
            "check_payment_methods",
        ),
        (
            "i need to change my shipping address",
            "change_shipping_address",
        ),
        ("what's the weather like in paris tomorrow", "out_of_scope"),
        ("tell me a joke", "out_of_scope"),
        ("how long does delivery take", "delivery_period"),
    ];
    let input: String = cases.iter().map(|(t, _)| format!("{t}\n")).collect();
    let out = parley(&["classify"], Some(input.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let right = lines
        .iter()
        .zip(&cases)
        .filter(|(p, (_, want))| p["intent"] == *want)
        .count();
    assert!(right >= 9, "only {right}/10 right: {lines:#?}");
}

#[test]
fn missing_or_corrupt_model_fails_with_the_file_named() {
    let out = parley(
        &["classify", "--model", "/nonexistent/model", "hello"],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/model"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_classifier(dir.path(), &["a", "b"]);
    std::fs::write(dir.path().join("tokenizer.json"), b"{ broken").unwrap();
    let out = parley(
        &["classify", "--model", dir.path().to_str().unwrap(), "hello"],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tokenizer.json") && stderr.contains("corrupt"),
        "{stderr}"
    );
}

#[test]
fn eval_prints_metrics_and_writes_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("eval.csv");
    std::fs::write(
        &data,
        "utterance,label\nwhere is my order,track_order\ncancel my purchase please,cancel_order\n\
         I want a refund,get_refund\nwhat's the capital of France,out_of_scope\n",
    )
    .unwrap();
    let report = dir.path().join("report");
    let out = parley(
        &[
            "eval",
            "--data",
            data.to_str().unwrap(),
            "--text-column",
            "utterance",
            "--label-column",
            "label",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ],
        None,
    );
    let v = json_of_success(&out);
    assert_eq!(v["total"], 4);
    assert!(v["accuracy"].as_f64().unwrap() >= 0.75, "{v}");
    assert!(v["per_label"].as_array().unwrap().len() >= 4);
    for f in ["confusion.svg", "index.html", "report.json"] {
        assert!(report.join(f).is_file(), "{f} missing");
    }
    let svg = std::fs::read_to_string(report.join("confusion.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("track_order"));

    let out = parley(&["eval", "--data", data.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column \"text\""));
}

#[test]
fn eval_sweeps_the_off_topic_threshold_and_chooses_one() {
    let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/data/eval/dev.jsonl");
    let out = parley(
        &[
            "eval",
            "--data",
            dev,
            "--sweep",
            "0,0.5,0.99",
            "--target-recall",
            "0.5",
            "--json",
        ],
        None,
    );
    let v = json_of_success(&out);
    assert_eq!(v["off_topic"], 45, "{v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let f = |i: usize, k: &str| rows[i][k].as_f64().unwrap();
    // A higher threshold turns more away: off-topic recall and in-scope messages called
    // off-topic can only grow, in-scope accuracy can only fall.
    for i in 1..3 {
        assert!(
            f(i, "off_topic_recall") >= f(i - 1, "off_topic_recall"),
            "{v}"
        );
        assert!(
            f(i, "in_scope_called_off_topic") >= f(i - 1, "in_scope_called_off_topic"),
            "{v}"
        );
        assert!(
            f(i, "in_scope_accuracy") <= f(i - 1, "in_scope_accuracy"),
            "{v}"
        );
    }
    for i in 0..3 {
        assert!(
            f(i, "off_topic_recall_low") <= f(i, "off_topic_recall"),
            "{v}"
        );
        assert!(
            f(i, "off_topic_recall_high") >= f(i, "off_topic_recall"),
            "{v}"
        );
    }
    // The shipped model catches most off-topic messages with its own class alone, so 0
    // already reaches 50% at 95% confidence.
    assert_eq!(v["chosen"].as_f64(), Some(0.0), "{v}");

    // The report at a threshold given on the command line says which one it used.
    let out = parley(&["eval", "--data", dev, "--oos-threshold", "0.99"], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("off-topic threshold 0.99"));

    let out = parley(&["eval", "--data", dev, "--sweep", "0,1.5"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1.5 is not between 0 and 1"));

    let dir = tempfile::tempdir().unwrap();
    let in_scope_only = dir.path().join("in.jsonl");
    std::fs::write(
        &in_scope_only,
        "{\"text\": \"where is my order\", \"intent\": \"track_order\"}\n",
    )
    .unwrap();
    let out = parley(
        &[
            "eval",
            "--data",
            in_scope_only.to_str().unwrap(),
            "--sweep",
            "0.5",
        ],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a sweep needs both in-scope and off-topic"),
        "{stderr}"
    );
}

/// The lines of a successful command's standard output.
fn stdout_of_success(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn kb_eval_calibrates_apart_from_what_it_judges_and_prints_settings_a_config_takes() {
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "kb",
            "eval",
            "--content",
            "examples/kb",
            "--questions",
            "data/kb-eval/dev.jsonl",
        ];
        args.extend_from_slice(extra);
        parley(&args, None)
    };
    // The questions judged are never among those calibrated on.
    let out = eval(&[
        "--tune",
        "data/kb-eval/dev-extra.jsonl",
        "--tune",
        "data/kb-eval/dev.jsonl",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("data/kb-eval/dev.jsonl is both calibrated on (--tune) and evaluated"),
        "{err}"
    );
    // The same file under another spelling too.
    let out = eval(&["--tune", "./data/kb-eval/../kb-eval/dev.jsonl"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is both calibrated on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Calibrated on another file, the settings found are printed as a configuration file
    // takes them: saved and given to --config, they judge the same questions the same way.
    let tuned = stdout_of_success(&eval(&["--tune", "data/kb-eval/dev-extra.jsonl"]));
    assert!(
        tuned
            .lines()
            .any(|l| l.starts_with("tuned on data/kb-eval/dev-extra.jsonl: top-1 correct")),
        "{tuned}"
    );
    let settings_of = |out: &str| {
        out.lines()
            .skip_while(|l| !l.starts_with("# the settings found"))
            .skip(1)
            .take_while(|l| !l.starts_with("encoder "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let settings = settings_of(&tuned);
    assert!(
        settings.contains("[retrieval.scoring.articles]")
            && settings.contains("[retrieval.scoring.products]"),
        "{tuned}"
    );
    let judged = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("encoder ") && l.contains("data/kb-eval/dev.jsonl: top-1"))
            .unwrap_or_else(|| panic!("no evaluation line in {out}"))
            .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tuned.toml");
    std::fs::write(&config, &settings).unwrap();
    let again = stdout_of_success(&eval(&["--config", config.to_str().unwrap()]));
    assert_eq!(judged(&again), judged(&tuned));
    // The shipped settings were calibrated on other questions, so they judge differently:
    // the configuration file was read, not ignored.
    let shipped = stdout_of_success(&eval(&[]));
    assert_ne!(judged(&shipped), judged(&tuned));

    // Fitting only the articles' decision prints it under its own section, and a
    // configuration file with it judges as the fit did.
    let fitted = stdout_of_success(&eval(&[
        "--tune",
        "data/kb-eval/dev-extra.jsonl",
        "--min-refused",
        "96",
        "--fit-articles",
    ]));
    let settings = settings_of(&fitted);
    assert!(
        settings.contains("[retrieval.scoring.articles.decision]")
            && settings.contains("length = "),
        "{fitted}"
    );
    std::fs::write(&config, &settings).unwrap();
    let again = stdout_of_success(&eval(&["--config", config.to_str().unwrap()]));
    assert_eq!(judged(&again), judged(&fitted));
    // Without calibration questions there is nothing to fit on.
    assert!(!eval(&["--fit-articles"]).status.success());
}

#[test]
fn kb_search_shows_synonyms_and_filler_words_of_the_question() {
    let out = parley(
        &[
            "kb",
            "search",
            "--file",
            "examples/kb",
            "honestly my husband wants to know if you take amex",
        ],
        None,
    );
    let text = stdout_of_success(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("\"amex\" also covered by:") && l.contains("american express")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l
            == "left out of the covered share where a document does not use them: honestly, husband, wants, know"),
        "{text}"
    );
    assert!(text.contains("payment-methods"), "{text}");
}
