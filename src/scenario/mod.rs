//! Scripted conversations run against a live Parley: publish each step's input, wait until
//! Parley has committed it, and compare what came out with what the script expects.

mod format;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

pub use format::{Expect, Scenario, ScenarioError, ScenarioStep};

use crate::config::Config;
use crate::kafka::{client_config, reader_at_end, KafkaError};
use crate::service::orders_group;

/// The result of one scenario.
#[derive(Debug)]
pub struct Report {
    pub name: String,
    pub failures: Vec<String>,
    /// What was said and done, one line each, for people to read.
    pub transcript: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Connections to the broker, shared by the scenarios of one run.
pub struct Runner {
    cfg: Config,
    rt: tokio::runtime::Runtime,
    producer: FutureProducer,
    /// Reads the service group's committed offsets (does not join the group).
    group_probe: BaseConsumer,
    orders_probe: BaseConsumer,
    outputs: BaseConsumer,
    timeout: Duration,
    nonce: String,
}

fn probe(cfg: &Config, group: &str) -> Result<BaseConsumer, KafkaError> {
    client_config(cfg, &[("group.id", group), ("enable.auto.commit", "false")])
        .create()
        .map_err(KafkaError::client("creating a probe consumer"))
}

impl Runner {
    pub fn new(cfg: Config, timeout: Duration) -> Result<Self, KafkaError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| KafkaError::Other(e.to_string()))?;
        let producer: FutureProducer = client_config(&cfg, &[("enable.idempotence", "true")])
            .create()
            .map_err(KafkaError::client("creating the producer"))?;
        let group_probe = probe(&cfg, &cfg.group_id)?;
        let orders_probe = probe(&cfg, &orders_group(&cfg))?;
        // Read the outputs from their current end: only what this run causes.
        let t = &cfg.topics;
        let outputs = reader_at_end(
            &cfg,
            &format!("{}-converse", cfg.group_id),
            &[&t.replies, &t.escalations, &t.order_requests],
        )?;
        let nonce = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        );
        Ok(Self {
            cfg,
            rt,
            producer,
            group_probe,
            orders_probe,
            outputs,
            timeout,
            nonce,
        })
    }

    fn produce(&self, topic: &str, key: &str, value: &Value) -> Result<(i32, i64), String> {
        let payload = value.to_string();
        let record = FutureRecord::to(topic).key(key).payload(&payload);
        let d = self
            .rt
            .block_on(self.producer.send(record, Duration::from_secs(30)))
            .map_err(|(e, _)| format!("producing to {topic}: {e}"))?;
        Ok((d.partition, d.offset))
    }

    /// Waits until `group` has committed past `offset`: the input has been handled.
    fn wait_handled(
        &self,
        orders: bool,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), String> {
        let probe = if orders {
            &self.orders_probe
        } else {
            &self.group_probe
        };
        let end = Instant::now() + self.timeout;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        loop {
            if let Ok(c) = probe.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
                if let Some(Offset::Offset(o)) =
                    c.find_partition(topic, partition).map(|e| e.offset())
                {
                    if o > offset {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > end {
                return Err(format!(
                    "Parley did not handle {topic}/{partition}@{offset} within {:?} (is it running with the same topics and group?)",
                    self.timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Reads output records of `conversation` until `enough` holds or the wait is over,
    /// then a little longer to catch anything unexpected.
    fn collect(&self, conversation: &str, enough: usize, linger: Duration) -> Vec<OwnedMessage> {
        let mut got = Vec::new();
        let end = Instant::now() + self.timeout;
        let mut quiet_until: Option<Instant> = None;
        loop {
            if got.len() >= enough && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + linger);
            }
            if quiet_until.is_some_and(|q| Instant::now() > q) || Instant::now() > end {
                return got;
            }
            if let Some(Ok(m)) = self.outputs.poll(Duration::from_millis(50)) {
                let m = m.detach();
                if belongs(&m, conversation) {
                    got.push(m);
                }
            }
        }
    }

    /// Plays one scenario.
    pub fn run(&self, s: &Scenario, file_stem: &str) -> Report {
        let conversation = format!("{file_stem}-{}", self.nonce);
        let mut failures = Vec::new();
        let mut transcript = Vec::new();
        let t = self.cfg.topics.clone();
        for o in &s.orders {
            if let Err(e) = self.publish_order(o) {
                failures.push(e);
                return Report {
                    name: s.name.clone(),
                    failures,
                    transcript,
                };
            }
        }
        for (i, step) in s.steps.iter().enumerate() {
            let n = i + 1;
            transcript.push(describe_input(step));
            let sent = if let Some(text) = &step.customer {
                let customer = step.customer_id.clone().or_else(|| s.customer_id.clone());
                let mut m = json!({"message_id": format!("{conversation}-m{n}"),
                    "conversation_id": conversation, "text": text, "channel": "web"});
                if let Some(c) = customer {
                    m["customer_id"] = json!(c);
                }
                self.produce(&t.inbound, &conversation, &m)
                    .and_then(|(p, o)| self.wait_handled(false, &t.inbound, p, o))
            } else if let Some(action) = &step.agent {
                let mut a = json!({"conversation_id": conversation,
                    "agent_id": step.agent_id.clone().unwrap_or_else(|| "agent-1".into()),
                    "action": action});
                if let Some(text) = &step.text {
                    a["text"] = json!(text);
                }
                if step.force {
                    a["force"] = json!(true);
                }
                self.produce(&t.agent_actions, &conversation, &a)
                    .and_then(|(p, o)| self.wait_handled(false, &t.agent_actions, p, o))
            } else if let Some(o) = &step.order {
                self.publish_order(o)
            } else {
                Err("empty step".into())
            };
            if let Err(e) = sent {
                failures.push(format!("step {n}: {e}"));
                break;
            }
            let e = &step.expect;
            let want = e.reply.is_some() as usize
                + e.escalation.is_some() as usize
                + e.order_request.is_some() as usize;
            let linger = Duration::from_millis(if want == 0 { 1500 } else { 300 });
            let outs = self.collect(&conversation, want, linger);
            transcript.extend(outs.iter().map(|m| describe_output(m, &t)));
            check_step(n, step, &outs, &t, &mut failures);
        }
        Report {
            name: s.name.clone(),
            failures,
            transcript,
        }
    }

    fn publish_order(&self, o: &Value) -> Result<(), String> {
        let id = o["order_id"].as_str().unwrap_or_default().to_string();
        let t = &self.cfg.topics.orders;
        let mut o = o.clone();
        relative_dates(&mut o, chrono::Utc::now());
        let (p, off) = self.produce(t, &id, &o)?;
        self.wait_handled(true, t, p, off)
    }
}

/// Replaces `days_ago:N` (and `days_ahead:N`) strings with a date-time that far from now,
/// so scripts about refund windows and deliveries stay true whenever they run.
pub fn relative_dates(v: &mut Value, now: chrono::DateTime<chrono::Utc>) {
    match v {
        Value::String(s) => {
            let shift = |prefix: &str| {
                s.strip_prefix(prefix)
                    .and_then(|n| n.trim().parse::<i64>().ok())
            };
            let when = shift("days_ago:")
                .map(|n| now - chrono::Duration::days(n))
                .or_else(|| shift("days_ahead:").map(|n| now + chrono::Duration::days(n)));
            if let Some(t) = when {
                *s = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| relative_dates(i, now)),
        Value::Object(m) => m.values_mut().for_each(|i| relative_dates(i, now)),
        _ => {}
    }
}

fn belongs(m: &OwnedMessage, conversation: &str) -> bool {
    if m.key() == Some(conversation.as_bytes()) {
        return true;
    }
    // Order requests are keyed by order id.
    m.payload()
        .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        .is_some_and(|v| v["conversation_id"] == conversation)
}

fn has(text: &str, word: &str) -> bool {
    text.to_lowercase().contains(&word.to_lowercase())
}

fn check_step(
    n: usize,
    step: &ScenarioStep,
    outs: &[OwnedMessage],
    t: &crate::config::Topics,
    failures: &mut Vec<String>,
) {
    let of = |topic: &str| -> Vec<Value> {
        outs.iter()
            .filter(|m| m.topic() == topic)
            .filter_map(|m| m.payload().and_then(|p| serde_json::from_slice(p).ok()))
            .collect()
    };
    let replies = of(&t.replies);
    let escalations = of(&t.escalations);
    let requests = of(&t.order_requests);
    let mut fail = |msg: String| failures.push(format!("step {n}: {msg}"));
    let e = &step.expect;
    match (&e.reply, replies.as_slice()) {
        (None, []) => {}
        (None, rs) => fail(format!("expected no reply, got {:?}", texts(rs))),
        (Some(_), []) => fail("expected a reply, got none".into()),
        (Some(want), [r]) => {
            let text = r["text"].as_str().unwrap_or_default();
            if let Some(a) = &want.author {
                if r["author"] != a.as_str() {
                    fail(format!("reply author {} (want {a})", r["author"]));
                }
            }
            if let Some(i) = &want.intent {
                if r["intent"] != i.as_str() {
                    fail(format!(
                        "reply intent {} (want {i}); reply: {text:?}",
                        r["intent"]
                    ));
                }
            }
            for w in &want.contains {
                if !has(text, w) {
                    fail(format!("reply lacks {w:?}: {text:?}"));
                }
            }
            for w in &want.not_contains {
                if has(text, w) {
                    fail(format!("reply must not contain {w:?}: {text:?}"));
                }
            }
        }
        (Some(_), rs) => fail(format!(
            "expected one reply, got {}: {:?}",
            rs.len(),
            texts(rs)
        )),
    }
    match (&e.escalation, escalations.as_slice()) {
        (None, []) => {}
        (None, es) => fail(format!("expected no escalation record, got {es:?}")),
        (Some(_), []) => fail("expected an escalation record, got none".into()),
        (Some(want), [x]) => {
            let kind = want.kind.as_deref().unwrap_or("escalation");
            if x["type"] != kind {
                fail(format!("escalation type {} (want {kind})", x["type"]));
            }
            for (field, value) in [
                ("reason", &want.reason),
                ("priority", &want.priority),
                ("order_id", &want.order_id),
            ] {
                if let Some(v) = value {
                    if x[field] != v.as_str() {
                        fail(format!("escalation {field} {} (want {v})", x[field]));
                    }
                }
            }
            let whole = x.to_string();
            for w in &want.contains {
                if !has(&whole, w) {
                    fail(format!("escalation lacks {w:?}"));
                }
            }
        }
        (Some(_), xs) => fail(format!("expected one escalation record, got {}", xs.len())),
    }
    match (&e.order_request, requests.as_slice()) {
        (None, []) => {}
        (None, rs) => fail(format!("expected no order request, got {rs:?}")),
        (Some(_), []) => fail("expected an order request, got none".into()),
        (Some(want), [r]) => {
            if r["type"] != want.kind.as_str() {
                fail(format!(
                    "order request type {} (want {})",
                    r["type"], want.kind
                ));
            }
            if let Some(o) = &want.order_id {
                if r["order_id"] != o.as_str() {
                    fail(format!("order request for {} (want {o})", r["order_id"]));
                }
            }
        }
        (Some(_), rs) => fail(format!("expected one order request, got {}", rs.len())),
    }
}

fn describe_input(step: &ScenarioStep) -> String {
    if let Some(text) = &step.customer {
        format!("  customer > {text}")
    } else if let Some(action) = &step.agent {
        let agent = step.agent_id.as_deref().unwrap_or("agent-1");
        // An agent's reply text shows as the published reply that follows.
        format!("  [{agent}: {action}]")
    } else if let Some(o) = &step.order {
        format!(
            "  [order {} is now {}]",
            o["order_id"].as_str().unwrap_or("?"),
            o["status"].as_str().unwrap_or("?")
        )
    } else {
        String::new()
    }
}

fn describe_output(m: &OwnedMessage, t: &crate::config::Topics) -> String {
    let v: Value = m
        .payload()
        .and_then(|p| serde_json::from_slice(p).ok())
        .unwrap_or(Value::Null);
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    if m.topic() == t.replies {
        let who = if v["author"] == "agent" {
            s("agent_id")
        } else {
            "bot".into()
        };
        let intent = v["intent"]
            .as_str()
            .map(|i| format!(" [{i}]"))
            .unwrap_or_default();
        format!("  {who}{intent} > {}", s("text"))
    } else if m.topic() == t.escalations {
        format!(
            "      -> {}: {} ({} priority)",
            s("type"),
            s("reason"),
            s("priority")
        )
    } else {
        format!("      -> order request: {} {}", s("type"), s("order_id"))
    }
}

fn texts(rs: &[Value]) -> Vec<String> {
    rs.iter()
        .map(|r| r["text"].as_str().unwrap_or_default().to_string())
        .collect()
}
