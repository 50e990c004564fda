//! A broker outage of a minute in the middle of a steady stream: the service must ride it
//! out (no exit) and, once the broker is back, answer every message exactly once and in
//! order, as read with read_committed. The test has its own broker, since it stops it.
//!
//! It takes about three minutes: ~15 s of traffic, 60 s without a broker, ~20 s of traffic
//! after it is back, and the backlog.

#[path = "harness/mod.rs"]
mod harness;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::json;

const RATE_PER_SEC: u64 = 20;
const CONVERSATIONS: usize = 40;
const OUTAGE: Duration = Duration::from_secs(60);

/// Texts the model answers from the knowledge base; rotated per conversation so no request
/// repeats often enough to count as frustration.
const TEXTS: [&str; 4] = [
    "hi, what payment methods do you accept?",
    "how long does standard delivery take",
    "how do I reset my password",
    "can I get an invoice for my purchase",
];

#[test]
fn a_minute_without_the_broker_heals_with_every_message_answered_once() {
    let _turn = serial();
    let broker = OwnBroker::start();
    let t = Topics::new("outage");
    let state = tempfile::tempdir().unwrap();
    // The service creates the topics itself: on this fresh broker that is the start-up path
    // where new partitions are still electing leaders.
    let mut service = Service::start_on(
        &broker.bootstrap,
        &ServiceConfig {
            topics: &t,
            state_dir: &state.path().join("state"),
            max_text_bytes: 4000,
            env: vec![],
            // A minute without a broker is ridden out in-process only when the transaction
            // it interrupts outlives it (the defaults fail over in 45 s instead).
            extra: vec![
                ("--partitions".into(), "3".into()),
                ("--session-timeout-ms".into(), "240000".into()),
                ("--transaction-timeout-ms".into(), "180000".into()),
            ],
        },
    );
    let mut replies = Output::connect(&broker.bootstrap, &t.replies());

    // A steady stream from another thread, on schedule whether the broker is there or not
    // (the producer holds what it cannot deliver yet).
    let input = Input::connect(&broker.bootstrap);
    let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop_sending = Arc::new(AtomicBool::new(false));
    let sender = {
        let (sent, stop, inbound) = (sent.clone(), stop_sending.clone(), t.inbound());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let due = start.elapsed().as_millis() as u64 * RATE_PER_SEC / 1000;
                while n < due {
                    let c = n as usize % CONVERSATIONS;
                    let turn = n as usize / CONVERSATIONS;
                    let conv = format!("conv-{c}");
                    let id = format!("m-{c}-{turn}");
                    let now =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                    let text = TEXTS[(turn + c) % TEXTS.len()];
                    let msg = json!({"message_id": id, "conversation_id": conv,
                        "customer_id": format!("cust-{c}"), "text": text,
                        "channel": "web", "sent_at": now});
                    input.send_json(&inbound, &conv, &msg);
                    sent.lock().unwrap().push((conv, id));
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            input.flush();
        })
    };

    // Traffic flowing before the outage.
    read_until(
        &mut replies,
        &mut service,
        120,
        "replies before the outage",
        |n| n >= 200,
    );
    let before = replies.records.len();
    let sent_before = sent.lock().unwrap().len();

    let down_at = Instant::now();
    broker.stop();
    // The service must stay up for the whole outage.
    while down_at.elapsed() < OUTAGE {
        if let Some(status) = service.exited() {
            panic!(
                "parley exited during the outage ({status}):\n{}",
                service.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let sent_during = sent.lock().unwrap().len() - sent_before;
    broker.restart();
    let back_at = Instant::now();

    // Traffic after the outage, then everything sent must be answered.
    read_until(
        &mut replies,
        &mut service,
        120,
        "the first reply after the outage",
        |n| n > before,
    );
    let first_reply_after = back_at.elapsed();
    read_until(&mut replies, &mut service, 20, "", |_| false);
    stop_sending.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let sent = sent.lock().unwrap().clone();
    let total = sent.len();
    read_until(
        &mut replies,
        &mut service,
        300,
        "a reply to every message",
        |n| n >= total,
    );
    let all_replied_after = back_at.elapsed();
    // Anything answered twice would show up now.
    replies.poll_for(Duration::from_secs(5));

    if let Some(status) = service.exited() {
        panic!("parley exited ({status}):\n{}", service.log_text());
    }
    let health = service.get("/healthz").map(|(code, _)| code);
    let metrics = service.metrics();
    let metric = |name: &str| metrics.get(name).copied().unwrap_or(0.0);
    let aborted = metric("parley_transactions_total{result=\"aborted\"}");
    let consumer_failures = metric("parley_failures_total{reason=\"consumer\"}");

    let replies = replies.json();
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    let mut by_conv: HashMap<String, Vec<String>> = HashMap::new();
    for r in &replies {
        let id = r["in_reply_to"].as_str().unwrap().to_string();
        if !seen.insert(id.clone()) {
            duplicates.push(id.clone());
        }
        by_conv
            .entry(r["conversation_id"].as_str().unwrap().to_string())
            .or_default()
            .push(id);
    }
    let missing: Vec<&String> = sent
        .iter()
        .map(|(_, id)| id)
        .filter(|id| !seen.contains(*id))
        .collect();
    // What the service said about the outage (its own lines, not librdkafka's).
    let log = service.log_text();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && l.contains(" parley"))
        .collect();
    eprintln!(
        "parley logged {} warnings and errors, among them:",
        said.len()
    );
    for (i, l) in said.iter().enumerate() {
        if i < 15 || i + 5 >= said.len() {
            eprintln!("  {}", l.chars().take(300).collect::<String>());
        }
    }
    eprintln!(
        "outage test: {total} messages sent ({sent_during} during the {OUTAGE:?} outage), \
         {} replies, {} duplicates, {} missing; first reply {first_reply_after:.1?} after the \
         broker was back, all replies after {all_replied_after:.1?}; {aborted} transactions \
         aborted, {consumer_failures} consumer errors; /healthz {health:?}",
        replies.len(),
        duplicates.len(),
        missing.len()
    );
    assert!(duplicates.is_empty(), "answered twice: {duplicates:?}");
    assert!(missing.is_empty(), "never answered: {missing:?}");
    assert_eq!(replies.len(), total, "one reply per message");
    let mut want: HashMap<String, Vec<String>> = HashMap::new();
    for (conv, id) in &sent {
        want.entry(conv.clone()).or_default().push(id.clone());
    }
    assert_eq!(by_conv, want, "replies in each conversation's order");
    assert_eq!(health, Some(200), "/healthz after the outage");
    drop(service);
}

/// Reads replies until `done(count)` holds; fails at once if parley exits, or after
/// `seconds` (with an empty `what`, simply reads for that long).
fn read_until(
    replies: &mut Output,
    service: &mut Service,
    seconds: u64,
    what: &str,
    done: impl Fn(usize) -> bool,
) {
    let end = Instant::now() + Duration::from_secs(seconds);
    while !done(replies.records.len()) {
        if let Some(status) = service.exited() {
            panic!("parley exited ({status}):\n{}", service.log_text());
        }
        if Instant::now() >= end {
            if !what.is_empty() {
                // The service's own last lines say where it stood.
                let log = service.log_text();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "timed out waiting for {what}: have {} replies; the service's log ends:\n{}",
                    replies.records.len(),
                    tail.join("\n")
                );
            }
            return;
        }
        replies.poll_for(Duration::from_millis(500));
    }
}
