//! The stream service end to end, against a real Kafka broker and the real model.

#[path = "harness/mod.rs"]
mod harness;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use harness::*;
use rdkafka::Message;
use serde_json::json;

fn msg(id: &str, conv: &str, customer: &str, text: &str) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"message_id": id, "conversation_id": conv, "customer_id": customer, "text": text,
           "channel": "web", "sent_at": now})
}

#[test]
fn replies_in_order_dead_letters_orders_and_metrics() {
    let _turn = serial();
    let t = Topics::new("flow");
    t.create(3);
    let input = Input::new();
    input.send_json(
        &t.orders(),
        "A-55102",
        &json!({"order_id": "A-55102", "customer_id": "cust-1", "status": "shipped",
                "carrier": "DHL", "tracking_number": "JD014600003",
                "estimated_delivery": "2026-12-01"}),
    );
    input.flush();
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&ServiceConfig {
        topics: &t,
        state_dir: &state.path().join("state"),
        max_text_bytes: 500,
        env: vec![],
        extra: vec![],
    });

    // Five conversations of four messages, sent interleaved.
    let texts = [
        "hi, what payment methods do you accept?",
        "how long does standard delivery take",
        "how do I reset my password",
        "can I get an invoice for my purchase",
    ];
    let mut expected: Vec<(String, String)> = Vec::new();
    for (turn, text) in texts.iter().enumerate() {
        for c in 0..5 {
            let conv = format!("conv-{c}");
            let id = format!("m-{c}-{turn}");
            input.send_json(&t.inbound(), &conv, &msg(&id, &conv, "cust-9", text));
            expected.push((conv, id));
        }
    }
    // Each kind of bad input, each followed by a good message in the same conversation.
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not_json", b"this is not json".to_vec()),
        (
            "wrong_type",
            br#"{"message_id":"b2","conversation_id":"conv-bad","text":42}"#.to_vec(),
        ),
        (
            "missing_field",
            br#"{"conversation_id":"conv-bad","text":"where is my order"}"#.to_vec(),
        ),
        (
            "empty_text",
            br#"{"message_id":"b4","conversation_id":"conv-bad","text":"   "}"#.to_vec(),
        ),
        (
            "text_too_long",
            format!(
                r#"{{"message_id":"b5","conversation_id":"conv-bad","text":"{}"}}"#,
                "a".repeat(600)
            )
            .into_bytes(),
        ),
        (
            "invalid_utf8",
            b"{\"message_id\":\"b6\",\"conversation_id\":\"conv-bad\",\"text\":\"caf\xe9\"}"
                .to_vec(),
        ),
    ];
    for (i, (_, bytes)) in bad.iter().enumerate() {
        input.send(&t.inbound(), "conv-bad", bytes);
        let id = format!("after-bad-{i}");
        input.send_json(
            &t.inbound(),
            "conv-bad",
            &msg(
                &id,
                "conv-bad",
                "cust-9",
                "do you ship with express delivery?",
            ),
        );
        expected.push(("conv-bad".into(), id));
    }
    // Live order data, for its owner and for someone else.
    input.send_json(
        &t.inbound(),
        "conv-own",
        &msg("own-1", "conv-own", "cust-1", "where is my order A-55102?"),
    );
    input.send_json(
        &t.inbound(),
        "conv-other",
        &msg(
            "other-1",
            "conv-other",
            "cust-2",
            "where is my order A-55102?",
        ),
    );
    expected.push(("conv-own".into(), "own-1".into()));
    expected.push(("conv-other".into(), "other-1".into()));
    input.flush();

    let mut replies = Output::new(&t.replies());
    replies.until(Duration::from_secs(180), "every reply", |r| {
        r.len() >= expected.len()
    });
    replies.poll_for(Duration::from_secs(2));
    let replies = replies.json();
    assert_eq!(
        replies.len(),
        expected.len(),
        "exactly one reply per valid message"
    );
    for r in &replies {
        assert_schema("reply.json", r);
    }
    // Exactly one reply per message, and per conversation in the order sent.
    let mut by_conv: HashMap<String, Vec<String>> = HashMap::new();
    for r in &replies {
        by_conv
            .entry(r["conversation_id"].as_str().unwrap().into())
            .or_default()
            .push(r["in_reply_to"].as_str().unwrap().into());
    }
    let mut want: HashMap<String, Vec<String>> = HashMap::new();
    for (c, id) in &expected {
        want.entry(c.clone()).or_default().push(id.clone());
    }
    assert_eq!(by_conv, want);

    let reply_to = |id: &str| {
        replies.iter().find(|r| r["in_reply_to"] == id).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let own = reply_to("own-1");
    assert!(own.contains("JD014600003") && own.contains("DHL"), "{own}");
    let other = reply_to("other-1");
    assert!(
        !other.contains("JD014600003") && !other.contains("DHL") && !other.contains("shipped"),
        "{other}"
    );
    assert!(reply_to("m-0-0").contains("PayPal"));

    let mut dead = Output::new(&t.dead_letter());
    dead.until(Duration::from_secs(30), "dead letters", |r| {
        r.len() >= bad.len()
    });
    dead.poll_for(Duration::from_secs(1));
    assert_eq!(dead.records.len(), bad.len());
    for (m, (kind, bytes)) in dead.records.iter().zip(&bad) {
        use rdkafka::message::Message;
        assert_eq!(header(m, "parley.error.kind").as_deref(), Some(*kind));
        assert!(!header(m, "parley.error").unwrap().is_empty());
        assert_eq!(header(m, "parley.source.topic").unwrap(), t.inbound());
        assert!(header(m, "parley.source.offset")
            .unwrap()
            .parse::<i64>()
            .is_ok());
        assert_eq!(
            m.payload().unwrap(),
            &bytes[..],
            "the original bytes are kept"
        );
        assert_eq!(m.key().unwrap(), b"conv-bad");
        let headers: serde_json::Map<String, serde_json::Value> = [
            "parley.error",
            "parley.error.kind",
            "parley.source.topic",
            "parley.source.partition",
            "parley.source.offset",
            "parley.failed_at",
        ]
        .iter()
        .map(|h| (h.to_string(), json!(header(m, h).unwrap())))
        .collect();
        assert_schema("dead-letter.json", &serde_json::Value::Object(headers));
    }

    // Metrics after the run (the gauges refresh every few seconds).
    std::thread::sleep(Duration::from_secs(6));
    let m = service.metrics();
    let sum = |prefix: &str| -> f64 {
        m.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    for name in [
        "parley_messages_total",
        "parley_records_out_total",
        "parley_dead_letters_total",
        "parley_batch_size_count",
        "parley_inference_duration_seconds_count",
        "parley_end_to_end_latency_seconds_count",
        "parley_transactions_total",
        "parley_state_store_bytes",
        "parley_orders_applied_total",
    ] {
        assert!(sum(name) > 0.0, "{name} is zero: {m:?}");
    }
    assert!(
        m.keys().any(|k| k.starts_with("parley_consumer_lag{")),
        "no lag gauge: {m:?}"
    );
    assert_eq!(
        sum("parley_dead_letters_total{reason=\"invalid_utf8\"}"),
        1.0
    );
    assert_eq!(service.get("/healthz").unwrap().0, 200);
    assert_eq!(service.get("/readyz").unwrap().0, 200);
    let status = service.stop();
    assert!(
        status.success(),
        "SIGTERM should stop parley cleanly: {status}"
    );
}

#[test]
fn sigkill_mid_stream_then_restart_answers_every_message_exactly_once() {
    let _turn = serial();
    let t = Topics::new("crash");
    t.create(4);
    let input = Input::new();
    let conversations = 100;
    let per_conversation = 10;
    for c in 0..conversations {
        let order = format!("A-{}", 10000 + c);
        input.send_json(
            &t.orders(),
            &order,
            &json!({"order_id": order, "customer_id": format!("cust-{c}"), "status": "shipped",
                    "carrier": "DHL", "tracking_number": format!("TRK{c:05}")}),
        );
    }
    input.flush();
    let script = |c: usize, i: usize| -> String {
        match i {
            // Turn 0 asks (offers the one open order); turn 1 answers it, which needs the
            // pending question from the state; turn 5 needs the order number remembered.
            0 | 5 => "where is my order?".into(),
            1 => format!("it's A-{}", 10000 + c),
            6 => "which payment methods do you accept".into(),
            2 => "what payment methods do you accept".into(),
            3 => "how long does delivery take".into(),
            4 => "how do I create an account".into(),
            7 => "how do I change my password".into(),
            8 => "what is your refund policy".into(),
            _ => "can I pay with paypal".into(),
        }
    };
    for i in 0..per_conversation {
        for c in 0..conversations {
            let conv = format!("conv-{c}");
            input.send_json(
                &t.inbound(),
                &conv,
                &msg(
                    &format!("m-{c}-{i}"),
                    &conv,
                    &format!("cust-{c}"),
                    &script(c, i),
                ),
            );
        }
    }
    input.flush();
    let total = conversations * per_conversation;

    let state = tempfile::tempdir().unwrap();
    let cfg = |env: Vec<(String, String)>| ServiceConfig {
        topics: &t,
        state_dir: state.path().join("state").leak(),
        max_text_bytes: 4000,
        env,
        // One batch per transaction: the crash and the kill below must land mid-stream,
        // several transactions in (with the default of up to 4 batches per transaction the
        // backlog of 1,000 messages is two or three transactions).
        extra: vec![("--max-batches-per-transaction".into(), "1".into())],
    };
    let mut replies = Output::new(&t.replies());

    // 1. A crash in the worst place: outputs and state changes produced in the transaction,
    //    not committed.
    let crashing = Service::launch(&cfg(vec![(
        "PARLEY_CRASH_BEFORE_COMMIT".into(),
        "4".into(),
    )]));
    let status = crashing.wait_exit(Duration::from_secs(300));
    assert!(!status.success(), "the crash point should abort: {status}");
    replies.poll_for(Duration::from_secs(1));
    let after_crash = replies.records.len();

    // 2. Restart, then SIGKILL in the middle of the stream.
    let service = Service::start(&cfg(vec![]));
    replies.until(Duration::from_secs(300), "a third of the replies", |r| {
        r.len() >= total / 3
    });
    // The restart found its local copy current: the crashed transaction's changelog records
    // were aborted, so there was nothing to restore but a (possibly empty) delta.
    let log = service.log_text();
    assert!(
        log.contains("restored conversation state") && log.contains("kind=\"delta\""),
        "no delta restore after the crash:\n{log}"
    );
    assert!(
        !log.contains("kind=\"full\""),
        "a full restore was not needed:\n{log}"
    );
    service.kill();
    let before = replies.records.len();
    assert!(before < total, "the kill came too late to test anything");

    // 3. Restart and finish.
    let service = Service::start(&cfg(vec![]));
    replies.until(Duration::from_secs(600), "every reply", |r| {
        r.len() >= total
    });
    replies.poll_for(Duration::from_secs(3));
    let replies = replies.json();
    let mut seen = HashSet::new();
    for r in &replies {
        let id = r["in_reply_to"].as_str().unwrap().to_string();
        assert!(seen.insert(id.clone()), "{id} answered twice");
    }
    assert_eq!(replies.len(), total, "every message answered exactly once");
    // In order per conversation, and the order-number answers (which need the pending
    // question from the state) carry the order's data.
    let mut by_conv: HashMap<&str, Vec<&serde_json::Value>> = HashMap::new();
    for r in &replies {
        by_conv
            .entry(r["conversation_id"].as_str().unwrap())
            .or_default()
            .push(r);
    }
    for c in 0..conversations {
        let conv = format!("conv-{c}");
        let rs = &by_conv[conv.as_str()];
        let ids: Vec<String> = rs
            .iter()
            .map(|r| r["in_reply_to"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (0..per_conversation)
            .map(|i| format!("m-{c}-{i}"))
            .collect();
        assert_eq!(ids, want, "order of {conv}");
        for i in [1, 5] {
            let text = rs[i]["text"].as_str().unwrap();
            assert!(
                text.contains(&format!("TRK{c:05}")),
                "{conv} turn {i}: {text}"
            );
        }
    }
    eprintln!(
        "replies committed before the crash point: {after_crash}; before the SIGKILL: {before}"
    );
    drop(service);
}

#[test]
fn a_second_instance_with_the_same_transactional_id_is_refused() {
    let _turn = serial();
    let t = Topics::new("fence");
    t.create(2);
    let input = Input::new();
    let dirs = tempfile::tempdir().unwrap();
    let cfg = |name: &str| ServiceConfig {
        topics: &t,
        state_dir: dirs.path().join(name).leak(),
        max_text_bytes: 4000,
        env: vec![],
        // The newcomer waits one session for the member it sees to go (it could be a
        // crashed earlier run); a short session keeps the test short.
        extra: vec![
            ("--session-timeout-ms".into(), "6000".into()),
            ("--transaction-timeout-ms".into(), "5000".into()),
        ],
    };
    let first = Service::start(&cfg("a"));
    let mut replies = Output::new(&t.replies());
    let send = |prefix: &str, conv: &str| {
        for i in 0..5 {
            input.send_json(
                &t.inbound(),
                conv,
                &msg(&format!("{prefix}-{i}"), conv, "u-1", "how can I pay"),
            );
        }
        input.flush();
    };
    send("a", "c-1");
    replies.until(
        Duration::from_secs(120),
        "the first instance's replies",
        |r| r.len() >= 5,
    );

    // The same transactional id again, on another state directory: refused with a clear
    // error, before its producer could fence the first instance.
    let mut second = Service::launch(&cfg("b"));
    let log = second.log.clone();
    let mut round = 0;
    let status = loop {
        if let Some(status) = second.exited() {
            break status;
        }
        round += 1;
        send(&format!("w{round}"), "c-3");
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(!status.success(), "the second instance should be refused");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("transactional_id") && text.contains("already in use"),
        "{text}"
    );

    // The first one never noticed: it answers on.
    send("b", "c-2");
    replies.until(
        Duration::from_secs(120),
        "the first instance's later replies",
        |r| {
            r.iter()
                .filter(|m| {
                    serde_json::from_slice::<serde_json::Value>(m.payload().unwrap()).unwrap()
                        ["in_reply_to"]
                        .as_str()
                        .unwrap()
                        .starts_with("b-")
                })
                .count()
                >= 5
        },
    );
    replies.poll_for(Duration::from_secs(2));
    let ids: Vec<String> = replies
        .json()
        .iter()
        .map(|r| r["in_reply_to"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "each message answered once: {ids:?}"
    );
    assert!(!first.log_text().contains("fenced"), "{}", first.log_text());
    drop(first);
}

#[test]
fn a_closed_or_idle_conversation_becomes_a_changelog_tombstone() {
    let _turn = serial();
    let t = Topics::new("expiry");
    t.create(2);
    let input = Input::new();
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&ServiceConfig {
        topics: &t,
        state_dir: &state.path().join("state"),
        max_text_bytes: 4000,
        env: vec![],
        extra: vec![
            ("--conversation-ttl-secs".into(), "20".into()),
            ("--expiry-interval-secs".into(), "1".into()),
        ],
    });
    let changelog = format!("{}-conversations-changelog", t.group());
    let mut log = Output::new(&changelog);
    let mut replies = Output::new(&t.replies());
    for conv in ["c-idle", "c-closed"] {
        input.send_json(
            &t.inbound(),
            conv,
            &msg(&format!("{conv}-1"), conv, "u-1", "how can I pay"),
        );
    }
    input.flush();
    replies.until(Duration::from_secs(60), "two replies", |r| r.len() >= 2);
    let state_of = |records: &[rdkafka::message::OwnedMessage], key: &str| {
        records
            .iter()
            .filter(|m| m.key() == Some(key.as_bytes()))
            .map(|m| m.payload().is_some())
            .collect::<Vec<bool>>()
    };
    log.until(Duration::from_secs(30), "both conversations", |r| {
        !state_of(r, "c-idle").is_empty() && !state_of(r, "c-closed").is_empty()
    });
    // An agent closes one: its state goes at once.
    for action in ["take_over", "close"] {
        input.send_json(
            &t.agent_actions(),
            "c-closed",
            &json!({"conversation_id": "c-closed", "agent_id": "ann", "action": action,
                    "force": true}),
        );
    }
    input.flush();
    log.until(Duration::from_secs(30), "the close's tombstone", |r| {
        state_of(r, "c-closed").last() == Some(&false)
    });
    assert_ne!(
        state_of(&log.records, "c-idle").last(),
        Some(&false),
        "the idle conversation went before its time"
    );
    // The other one, after 20 s without a message.
    log.until(
        Duration::from_secs(60),
        "the idle conversation's tombstone",
        |r| state_of(r, "c-idle").last() == Some(&false),
    );
    let expired = service
        .metrics()
        .get("parley_conversations_expired_total")
        .copied()
        .unwrap_or(0.0);
    assert_eq!(expired, 1.0);
    // A new message starts afresh: the bot greets a conversation it does not know.
    input.send_json(
        &t.inbound(),
        "c-idle",
        &msg("c-idle-2", "c-idle", "u-1", "how can I pay"),
    );
    input.flush();
    log.until(Duration::from_secs(30), "the new state", |r| {
        state_of(r, "c-idle").last() == Some(&true)
    });
    let last = log
        .records
        .iter()
        .rev()
        .find(|m| m.key() == Some(b"c-idle".as_slice()))
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&last.payload().unwrap()[1..]).unwrap();
    assert_eq!(value["transcript"].as_array().unwrap().len(), 2, "{value}");
}

#[test]
fn a_changelog_with_another_partition_count_is_refused() {
    let _turn = serial();
    let t = Topics::new("mismatch");
    t.create(3);
    // A changelog left from a run with another partition count.
    let changelog = format!("{}-conversations-changelog", t.group());
    create_topic(&brokers(), &changelog, 2, &[("cleanup.policy", "compact")]);
    let state = tempfile::tempdir().unwrap();
    let service = Service::launch(&ServiceConfig {
        topics: &t,
        state_dir: &state.path().join("state"),
        max_text_bytes: 4000,
        env: vec![],
        extra: vec![],
    });
    let log = service.log.clone();
    let status = service.wait_exit(Duration::from_secs(120));
    assert!(!status.success());
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains(&format!("{changelog} has 2 partitions"))
            && text.contains("exactly as many partitions as the inbound topic"),
        "{text}"
    );
}
