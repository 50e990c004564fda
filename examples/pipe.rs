//! The minimal exactly-once Kafka pipe, as a baseline for Parley's transport costs: consume an
//! inbound topic (read_committed), write one small JSON reply per message to a replies topic,
//! and commit the consumed offsets inside the same transaction, one transaction per batch.
//! No model, no state: what is left is the Kafka round trip.
//!
//! cargo run --release --example pipe -- BROKERS IN_TOPIC OUT_TOPIC GROUP
//!
//! Batches are whatever has arrived: up to 500 messages, or what the consumer hands over
//! within a few milliseconds of the first one. Prints "ready" to stderr once it has
//! partitions, and a line per 10 s of work.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

// Large batches for a fast pipe; bench/compare/e2e.sh gives `parley run` the same
// (--max-batch-size 500 --max-batch-wait-ms 5), so the comparison is of the work per batch.
const MAX_BATCH: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(5);
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, in_topic, out_topic, group] = args.as_slice() else {
        eprintln!("usage: pipe BROKERS IN_TOPIC OUT_TOPIC GROUP");
        std::process::exit(2);
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("transactional.id", format!("{group}-pipe"))
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()?;
    producer.init_transactions(TIMEOUT)?;
    consumer.subscribe(&[in_topic.as_str()])?;

    let mut ready = false;
    let (mut total, mut window, mut window_start) = (0u64, 0u64, Instant::now());
    loop {
        let Some(first) = consumer.poll(Duration::from_millis(100)) else {
            if !ready && consumer.assignment()?.count() > 0 {
                ready = true;
                eprintln!("pipe: ready");
            }
            continue;
        };
        let mut batch = vec![first?];
        let deadline = Instant::now() + BATCH_WAIT;
        while batch.len() < MAX_BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            match consumer.poll(left) {
                Some(m) => batch.push(m?),
                None => break,
            }
        }
        process(&consumer, &producer, out_topic, &batch)?;
        total += batch.len() as u64;
        window += batch.len() as u64;
        if window_start.elapsed() >= Duration::from_secs(10) {
            let secs = window_start.elapsed().as_secs_f64();
            eprintln!("pipe: {total} messages, {:.0} msgs/s", window as f64 / secs);
            (window, window_start) = (0, Instant::now());
        }
    }
}

/// One transaction: a reply per message and the batch's next offsets.
fn process(
    consumer: &BaseConsumer,
    producer: &BaseProducer,
    out_topic: &str,
    batch: &[BorrowedMessage<'_>],
) -> Result<(), KafkaError> {
    producer.begin_transaction()?;
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for m in batch {
        let inbound: serde_json::Value = m
            .payload()
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or_default();
        let conversation = inbound["conversation_id"].as_str().unwrap_or_default();
        let reply = serde_json::json!({
            "reply_id": format!("{}-r", inbound["message_id"].as_str().unwrap_or_default()),
            "conversation_id": conversation,
            "in_reply_to": inbound["message_id"],
            "text": "Thanks, we got your message.",
            "intent": null,
            "confidence": null,
            "author": "bot",
            "created_at": chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
        .to_string();
        let mut record = BaseRecord::to(out_topic).key(conversation).payload(&reply);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // Queue full: serve delivery reports, then retry.
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e),
            }
        }
        next.insert((m.topic(), m.partition()), m.offset() + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        offsets.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    let group = consumer
        .group_metadata()
        .ok_or_else(|| KafkaError::Subscription("no group metadata".into()))?;
    producer.send_offsets_to_transaction(&offsets, &group, TIMEOUT)?;
    // Every reply delivered before the commit, as Parley does: the commit's own flush
    // would otherwise poll in steps of 100 ms.
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(1));
    }
    producer.commit_transaction(TIMEOUT)
}
