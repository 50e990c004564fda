//! Restoring many conversations: an instance with an empty state directory takes over a
//! changelog of 20,000 conversations, each waiting for the customer to confirm a cancel, and
//! then acts on the restored state. Prints the restore speed (conversations per second); the
//! assertions are on what was restored and done, never on time.

#[path = "harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::*;
use rdkafka::message::Message;
use serde_json::json;

const CONVERSATIONS: usize = 20_000;
const PARTITIONS: i32 = 12;

fn msg(id: &str, conv: &str, customer: &str, text: &str) -> serde_json::Value {
    json!({"message_id": id, "conversation_id": conv, "customer_id": customer, "text": text})
}

#[test]
fn an_empty_instance_restores_twenty_thousand_conversations_and_acts_on_them() {
    let _turn = serial();
    let t = Topics::new("restore");
    t.create(PARTITIONS);
    let input = Input::new();
    input.send_json(
        &t.orders(),
        "A-70001",
        &json!({"order_id": "A-70001", "customer_id": "cust-1", "status": "processing",
                "total": 59.90, "currency": "EUR"}),
    );
    input.flush();
    let dirs = tempfile::tempdir().unwrap();
    let cfg = |name: &str, txn: &str| ServiceConfig {
        topics: &t,
        state_dir: dirs.path().join(name).leak(),
        max_text_bytes: 4000,
        env: vec![],
        extra: vec![("--transactional-id".into(), txn.into())],
    };

    // One real conversation left waiting for a yes: its state is the template.
    let first = Service::start(&cfg("first", "restore-first"));
    let changelog = format!("{}-conversations-changelog", t.group());
    let mut log = Output::new(&changelog);
    input.send_json(
        &t.inbound(),
        "seed",
        &msg("seed-1", "seed", "cust-1", "please cancel my order A-70001"),
    );
    input.flush();
    log.until(Duration::from_secs(60), "the seed's state", |r| {
        r.iter().any(|m| m.key() == Some(b"seed".as_slice()))
    });
    let template = log.records[0].payload().unwrap().to_vec();
    let state: serde_json::Value = serde_json::from_slice(&template[1..]).unwrap();
    assert!(
        state["pending"]["kind"] == "confirm",
        "the seed should wait for a confirmation: {state}"
    );
    assert_eq!(first.stop().code(), Some(0));

    // The same state under 20,000 keys, on the partitions their keys hash to (the same
    // partitioner as the inbound messages'), as the changelog of a busy instance would be.
    for c in 0..CONVERSATIONS {
        input.send(&changelog, &format!("conv-{c}"), &template);
    }
    input.flush();

    // A new instance with nothing on disk restores them all before it answers.
    let started = Instant::now();
    let second = Service::start(&cfg("second", "restore-second"));
    let ready_after = started.elapsed();
    let text = second.log_text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("restored conversation state"))
        .collect();
    assert_eq!(lines.len(), PARTITIONS as usize, "{text}");
    assert!(lines.iter().all(|l| l.contains("kind=\"full\"")), "{text}");
    let field = |line: &str, name: &str| -> u64 {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let conversations: u64 = lines.iter().map(|l| field(l, "conversations")).sum();
    let slowest_ms = lines.iter().map(|l| field(l, "ms")).max().unwrap();
    assert_eq!(conversations, CONVERSATIONS as u64 + 1, "{text}");
    let restored = second.metrics()["parley_restored_records_total"];
    assert_eq!(restored, CONVERSATIONS as f64 + 1.0);

    // The restored state is live: a "yes" on a restored conversation cancels its order, once.
    let mut requests = Output::new(&t.order_requests());
    let mut replies = Output::new(&t.replies());
    for c in [7, 12_345] {
        let conv = format!("conv-{c}");
        input.send_json(
            &t.inbound(),
            &conv,
            &msg(&format!("{conv}-yes"), &conv, "cust-1", "yes"),
        );
    }
    input.flush();
    requests.until(Duration::from_secs(60), "two cancel requests", |r| {
        r.len() >= 2
    });
    replies.until(Duration::from_secs(60), "two replies", |r| r.len() >= 2);
    requests.poll_for(Duration::from_secs(2));
    let cancels = requests.json();
    assert_eq!(cancels.len(), 2, "{cancels:?}");
    for r in &cancels {
        assert_eq!(r["type"], "cancel", "{r}");
        assert_eq!(r["order_id"], "A-70001", "{r}");
    }
    println!(
        "full restore of {conversations} conversations on {PARTITIONS} partitions: the slowest \
         partition took {slowest_ms} ms ({:.0} conversations/s over the whole restore); \
         start to ready {:.1} s",
        conversations as f64 / (slowest_ms as f64 / 1000.0),
        ready_after.as_secs_f64()
    );
}
