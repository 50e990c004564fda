//! The scripted conversations in `tests/conversations/`, played by `parley converse` against
//! the real service, broker and model.

#[path = "harness/mod.rs"]
mod harness;

use std::process::Command;

use harness::*;

fn converse(t: &Topics, paths: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .current_dir(repo())
        .arg("converse")
        .args(paths)
        .args(["--brokers", &brokers()])
        .args(t.flags())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_conversation_suite_passes_against_the_real_service() {
    let _turn = serial();
    let t = Topics::new("convo");
    t.create(3);
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&ServiceConfig {
        topics: &t,
        state_dir: &state.path().join("state"),
        max_text_bytes: 4000,
        env: vec![],
        extra: vec![],
    });
    let (ok, text) = converse(&t, &["tests/conversations", "examples/conversations"]);
    println!("{text}");
    assert!(ok, "conversations failed:\n{text}\n{}", service.log_text());
    let passed = text.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(passed >= 25, "only {passed} conversations ran");

    // Everything the suite made Parley write keeps to the contract.
    for (topic, schema, at_least) in [
        (t.replies(), "reply.json", 50),
        (t.escalations(), "escalation.json", 10),
        (t.order_requests(), "order-request.json", 5),
    ] {
        let mut out = Output::new(&topic);
        out.poll_for(std::time::Duration::from_secs(3));
        let records = out.json();
        assert!(
            records.len() >= at_least,
            "{topic}: {} records",
            records.len()
        );
        for r in &records {
            assert_schema(schema, r);
        }
    }

    // The runner itself must fail when a script expects what the service does not do.
    let wrong = state.path().join("wrong.yaml");
    std::fs::write(
        &wrong,
        "name: expects a refund request that never comes\ncustomer_id: c-x\nsteps:\n  - customer: \"what payment methods do you accept\"\n    expect:\n      reply: {contains: [\"PayPal\"]}\n      order_request: {type: refund}\n",
    )
    .unwrap();
    let (ok, text) = converse(&t, &[wrong.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("expected an order request, got none"),
        "{text}"
    );
}
