//! `parley loadgen`: measures the running service end to end. It publishes messages across
//! many conversations as fast as the broker takes them (or at `--rate`), reads the replies
//! with read_committed, and prints throughput and latency percentiles.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use super::run::RunArgs;
use super::{io_err, CliError};
use crate::bench::SAMPLE_MESSAGES;
use crate::kafka::{client_config, reader_at_end, KafkaError};

#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 2000)]
    pub messages: usize,
    /// Conversations they are spread over (round robin).
    #[arg(long, default_value_t = 200)]
    pub conversations: usize,
    /// Messages per second to offer; 0 sends as fast as possible (a flood).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Give up waiting for replies after this long.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Also write each reply's timing to this file, one line per reply in the order they
    /// arrived: seconds from the start to its send, then its latency in ms (to see when the
    /// slow ones happen, not only how many there are).
    #[arg(long)]
    pub latencies_out: Option<std::path::PathBuf>,
    /// Brokers, group and topics, as for `parley run`.
    #[command(flatten)]
    pub service: RunArgs,
}

pub fn run(a: LoadgenArgs) -> Result<ExitCode, CliError> {
    let cfg = a.service.resolve()?;
    let replies = reader_at_end(
        &cfg,
        &format!("{}-loadgen", cfg.group_id),
        &[&cfg.topics.replies],
    )?;
    let producer: ThreadedProducer<DefaultProducerContext> =
        client_config(&cfg, &[("linger.ms", "5")])
            .create()
            .map_err(KafkaError::client("creating the producer"))?;

    let run_id = format!(
        "lg{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let conversations = a.conversations.max(1);
    let mut sent: HashMap<String, Instant> = HashMap::with_capacity(a.messages);
    let start = Instant::now();
    // Per reply: when its message was sent (from the start), and how long the reply took.
    let mut timeline: Vec<(Duration, Duration)> = Vec::with_capacity(a.messages);
    let mut last_reply = start;
    let deadline = start + Duration::from_secs(a.timeout_secs);
    let mut next = 0;
    while timeline.len() < a.messages {
        // Offer messages on schedule (or all at once), reading replies in between.
        let due = if a.rate > 0.0 {
            ((start.elapsed().as_secs_f64() * a.rate) as usize).min(a.messages)
        } else {
            a.messages
        };
        while next < due {
            let conv = format!("{run_id}-c{}", next % conversations);
            let id = format!("{run_id}-m{next}");
            let text = SAMPLE_MESSAGES[next % SAMPLE_MESSAGES.len()];
            let value = serde_json::json!({"message_id": id, "conversation_id": conv,
                "customer_id": format!("{conv}-customer"), "text": text,
                "sent_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)})
            .to_string();
            let mut record = BaseRecord::to(&cfg.topics.inbound)
                .key(&conv)
                .payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            sent.insert(id, Instant::now());
            next += 1;
        }
        if let Some(Ok(m)) = replies.poll(Duration::from_millis(5)) {
            let v: serde_json::Value = m
                .payload()
                .and_then(|p| serde_json::from_slice(p).ok())
                .unwrap_or_default();
            if let Some(at) = v["in_reply_to"].as_str().and_then(|id| sent.remove(id)) {
                last_reply = Instant::now();
                timeline.push((at - start, last_reply - at));
            }
        }
        if Instant::now() > deadline {
            tracing::warn!(
                replies = timeline.len(),
                sent = a.messages,
                "loadgen: gave up waiting for replies"
            );
            break;
        }
    }
    producer.flush(Duration::from_secs(10)).ok();
    if let Some(path) = &a.latencies_out {
        let lines: String = timeline
            .iter()
            .map(|(sent, took)| {
                format!(
                    "{:.3} {:.1}\n",
                    sent.as_secs_f64(),
                    took.as_secs_f64() * 1000.0
                )
            })
            .collect();
        std::fs::write(path, lines).map_err(io_err(format!("writing {}", path.display())))?;
    }
    if timeline.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    let mut latencies: Vec<Duration> = timeline.iter().map(|(_, took)| *took).collect();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    let secs = (last_reply - start).as_secs_f64();
    println!(
        "{} messages over {} conversations, {}: {} replies in {:.1} s = {:.0} replies/s",
        a.messages,
        conversations,
        if a.rate > 0.0 {
            format!("offered at {} msgs/s", a.rate)
        } else {
            "sent as a flood".into()
        },
        latencies.len(),
        secs,
        latencies.len() as f64 / secs
    );
    println!(
        "latency from send to committed reply: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
    Ok(if latencies.len() == a.messages {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
