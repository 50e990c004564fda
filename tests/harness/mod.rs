//! Integration harness: a real Apache Kafka broker (started from the Maven Central jars by
//! `scripts/kafka.sh`, or an external one from `PARLEY_TEST_BROKERS`), the real `parley`
//! binary as a child process, and read_committed readers of its output topics.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Broker {
    bootstrap: String,
    _dir: Option<tempfile::TempDir>,
}

/// The broker shared by every test of this binary.
pub fn brokers() -> String {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            if let Ok(b) = std::env::var("PARLEY_TEST_BROKERS") {
                return Broker {
                    bootstrap: b,
                    _dir: None,
                };
            }
            let dir = tempfile::Builder::new()
                .prefix("parley-kafka-")
                .tempdir()
                .unwrap();
            let bootstrap = kafka_sh(&[
                "start",
                &dir.path().display().to_string(),
                "--watch-pid",
                &std::process::id().to_string(),
                "--cleanup",
            ]);
            Broker {
                bootstrap,
                _dir: Some(dir),
            }
        })
        .bootstrap
        .clone()
}

/// Tests that run the service take turns: each loads a model and two cores are not many.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Topic names unique to one test, so tests never see each other's records.
#[derive(Clone, Debug)]
pub struct Topics {
    pub prefix: String,
}

impl Topics {
    pub fn new(test: &str) -> Self {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        Self {
            prefix: format!("{test}-{nonce}"),
        }
    }
    pub fn inbound(&self) -> String {
        format!("{}.chat.inbound", self.prefix)
    }
    pub fn replies(&self) -> String {
        format!("{}.chat.replies", self.prefix)
    }
    pub fn escalations(&self) -> String {
        format!("{}.chat.escalations", self.prefix)
    }
    pub fn orders(&self) -> String {
        format!("{}.commerce.orders", self.prefix)
    }
    pub fn order_requests(&self) -> String {
        format!("{}.commerce.order-requests", self.prefix)
    }
    pub fn agent_actions(&self) -> String {
        format!("{}.chat.agent-actions", self.prefix)
    }
    pub fn dead_letter(&self) -> String {
        format!("{}.chat.dead-letter", self.prefix)
    }
    pub fn group(&self) -> String {
        format!("{}-group", self.prefix)
    }

    /// The `parley run` / `parley converse` flags naming these topics and the group.
    pub fn flags(&self) -> Vec<String> {
        [
            ("--group-id", self.group()),
            ("--topic-inbound", self.inbound()),
            ("--topic-replies", self.replies()),
            ("--topic-escalations", self.escalations()),
            ("--topic-orders", self.orders()),
            ("--topic-order-requests", self.order_requests()),
            ("--topic-agent-actions", self.agent_actions()),
            ("--topic-dead-letter", self.dead_letter()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }

    /// Creates the topics before the service does, so the test can produce first.
    pub fn create(&self, partitions: i32) {
        self.create_on(&brokers(), partitions);
    }

    /// `create` on `brokers` instead of the shared broker.
    pub fn create_on(&self, brokers: &str, partitions: i32) {
        let names = [
            self.inbound(),
            self.replies(),
            self.escalations(),
            self.orders(),
            self.order_requests(),
            self.agent_actions(),
            self.dead_letter(),
        ];
        for name in &names {
            create_topic(brokers, name, partitions, &[]);
        }
    }
}

/// Creates one topic with `partitions` and the given topic settings (e.g. a compaction
/// policy), failing the test if it cannot.
pub fn create_topic(brokers: &str, name: &str, partitions: i32, settings: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in settings {
        topic = topic.set(k, v);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// A plain producer for test input.
pub struct Input {
    producer: ThreadedProducer<DefaultProducerContext>,
}

impl Input {
    pub fn new() -> Self {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        Self { producer }
    }

    pub fn send(&self, topic: &str, key: &str, value: &[u8]) {
        let mut record = BaseRecord::to(topic).key(key).payload(value);
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    pub fn send_json(&self, topic: &str, key: &str, value: &serde_json::Value) {
        self.send(topic, key, value.to_string().as_bytes());
    }

    pub fn tombstone(&self, topic: &str, key: &str) {
        let record: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic).key(key);
        self.producer.send(record).map_err(|(e, _)| e).unwrap();
    }

    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }
}

/// A read_committed reader of one topic from its beginning.
pub struct Output {
    consumer: BaseConsumer,
    pub records: Vec<OwnedMessage>,
}

impl Output {
    pub fn new(topic: &str) -> Self {
        Self::connect(&brokers(), topic)
    }

    /// Reads whatever arrives within `for_at_most`.
    pub fn poll_for(&mut self, for_at_most: Duration) {
        let end = Instant::now() + for_at_most;
        while Instant::now() < end {
            if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(100)) {
                self.records.push(m.detach());
            }
        }
    }

    /// Reads until `done(records)` holds, or panics after `timeout`.
    pub fn until(&mut self, timeout: Duration, what: &str, done: impl Fn(&[OwnedMessage]) -> bool) {
        let end = Instant::now() + timeout;
        while !done(&self.records) {
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}: have {} records",
                self.records.len()
            );
            if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(100)) {
                self.records.push(m.detach());
            }
        }
    }

    /// Takes what has already arrived, without waiting; returns how many records came.
    pub fn drain(&mut self) -> usize {
        let before = self.records.len();
        // Bounded: a run of client errors (a broker outage) must not keep the caller here.
        for _ in 0..100_000 {
            match self.consumer.poll(Duration::ZERO) {
                Some(Ok(m)) => self.records.push(m.detach()),
                Some(Err(_)) => {}
                None => break,
            }
        }
        self.records.len() - before
    }

    pub fn json(&self) -> Vec<serde_json::Value> {
        self.records
            .iter()
            .map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap())
            .collect()
    }
}

pub fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    parley::kafka::header(m, name)
}

/// The `parley run` child process.
pub struct Service {
    child: Child,
    pub metrics_addr: String,
    pub log: PathBuf,
}

pub struct ServiceConfig<'a> {
    pub topics: &'a Topics,
    /// Environment for the child (e.g. PARLEY_CRASH_BEFORE_COMMIT).
    pub env: Vec<(String, String)>,
    pub state_dir: &'a Path,
    pub max_text_bytes: usize,
    pub extra: Vec<(String, String)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Service {
    /// Starts `parley run` without waiting for it.
    pub fn launch(cfg: &ServiceConfig<'_>) -> Self {
        Self::launch_on(&brokers(), cfg)
    }

    /// Starts `parley run` and waits until `/readyz` says ready.
    pub fn start(cfg: &ServiceConfig<'_>) -> Self {
        let mut s = Self::launch(cfg);
        s.wait_ready(Duration::from_secs(120));
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("parley exited with {status}:\n{}", self.log_text());
            }
            if let Some((code, _)) = self.get("/readyz") {
                if code == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < end,
                "parley not ready:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A GET on the metrics server: (status code, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(&self.metrics_addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((code, body))
    }

    /// Metric samples by `name{labels}` as printed.
    pub fn metrics(&self) -> HashMap<String, f64> {
        let (_, body) = self.get("/metrics").expect("metrics endpoint");
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    /// Waits for the process to exit by itself (a crash point), up to `timeout`.
    pub fn wait_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < end,
                "parley did not exit:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `STOP`, `CONT`, `KILL`, ...) without waiting; false when it
    /// could not be sent (the process is gone).
    pub fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    pub fn kill(mut self) {
        // SIGKILL: no chance to finish the batch or close anything.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.wait_exit(Duration::from_secs(60))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Validates a record against a schema in `schemas/`.
pub fn assert_schema(schema_file: &str, value: &serde_json::Value) {
    static CACHE: OnceLock<Mutex<HashMap<String, serde_json::Value>>> = OnceLock::new();
    let schema = {
        let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
        cache
            .entry(schema_file.to_string())
            .or_insert_with(|| {
                let text =
                    std::fs::read_to_string(repo().join("schemas").join(schema_file)).unwrap();
                serde_json::from_str(&text).unwrap()
            })
            .clone()
    };
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{schema_file}: {errors:?}\n{value}");
}

/// A broker of one test's own (not the shared one), which the test may stop and start again
/// on the same port with the same data: for outage tests. Stopped when dropped.
pub struct OwnBroker {
    dir: tempfile::TempDir,
    pub bootstrap: String,
}

impl OwnBroker {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("parley-kafka-own-")
            .tempdir()
            .unwrap();
        let bootstrap = kafka_sh(&[
            "start",
            &dir.path().join("kafka").display().to_string(),
            "--watch-pid",
            &std::process::id().to_string(),
        ]);
        Self { dir, bootstrap }
    }

    fn kafka_dir(&self) -> String {
        self.dir.path().join("kafka").display().to_string()
    }

    /// Stops the broker (TERM, as an orderly shutdown would), keeping its data.
    pub fn stop(&self) {
        kafka_sh(&["stop", &self.kafka_dir()]);
    }

    /// Starts it again on the same port with the same data, and waits until it serves.
    pub fn restart(&self) {
        let bootstrap = kafka_sh(&["restart", &self.kafka_dir()]);
        assert_eq!(bootstrap, self.bootstrap, "the broker came back elsewhere");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/kafka.sh"))
            .args(["stop", &self.kafka_dir()])
            .output();
    }
}

/// Runs `scripts/kafka.sh ARGS` and returns the last line it printed.
fn kafka_sh(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo().join("scripts/kafka.sh"))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/kafka.sh");
    assert!(out.status.success(), "scripts/kafka.sh {args:?} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string()
}

impl Input {
    /// A producer to `brokers` that keeps what it is given through an outage of up to five
    /// minutes (delivering it once the broker is back).
    pub fn connect(brokers: &str) -> Self {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "300000")
            .create()
            .unwrap();
        Self { producer }
    }
}

impl Output {
    /// A read_committed reader of `topic` at `brokers`, from its beginning.
    pub fn connect(brokers: &str, topic: &str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("reader-{topic}"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in md.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        Self {
            consumer,
            records: Vec::new(),
        }
    }
}

impl Service {
    /// `launch` against `brokers` instead of the shared broker.
    pub fn launch_on(brokers: &str, cfg: &ServiceConfig<'_>) -> Self {
        let t = cfg.topics;
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let log = cfg.state_dir.with_extension(format!("{}.log", free_port()));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley"));
        cmd.current_dir(repo())
            .arg("run")
            .args(["--brokers", brokers]);
        // Instances of one group need transactional ids of their own: `extra` may name one.
        if !cfg.extra.iter().any(|(k, _)| k == "--transactional-id") {
            cmd.args(["--transactional-id", &format!("{}-txn", t.prefix)]);
        }
        cmd.arg("--state-dir")
            .arg(cfg.state_dir)
            .args(["--metrics-addr", &metrics_addr])
            .args(t.flags())
            .args(["--max-text-bytes", &cfg.max_text_bytes.to_string()])
            .env_remove("PARLEY_CONFIG")
            .env_remove("PARLEY_CRASH_BEFORE_COMMIT")
            .env_remove("PARLEY_CRASH_DURING_RESTORE")
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in &cfg.extra {
            cmd.arg(k).arg(v);
        }
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting parley run");
        Self {
            child,
            metrics_addr,
            log,
        }
    }

    /// `start` against `brokers` instead of the shared broker.
    pub fn start_on(brokers: &str, cfg: &ServiceConfig<'_>) -> Self {
        let mut s = Self::launch_on(brokers, cfg);
        s.wait_ready(Duration::from_secs(180));
        s
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}
