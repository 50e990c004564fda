//! Every metric Parley exports, in one place, under one prefix; and the small HTTP server
//! that serves them with `/healthz` and `/readyz`.

mod http;
#[cfg(test)]
mod http_tests;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use http::{bind, serve, serve_with, Health, Limits, PROMETHEUS_TEXT};

pub struct Metrics {
    registry: Registry,
    /// Consumed records by topic and outcome (answered, asked, escalated, dead_letter, ...).
    pub messages: IntCounterVec,
    /// Produced records by topic.
    pub records_out: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub escalations: IntCounterVec,
    pub order_requests: IntCounterVec,
    pub batch_size: Histogram,
    pub inference_seconds: Histogram,
    pub end_to_end_seconds: Histogram,
    pub transaction_seconds: Histogram,
    pub transactions: IntCounterVec,
    /// Failures that are not a bad input (model, Kafka, state), by reason.
    pub failures: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub state_store_bytes: IntGauge,
    pub conversations: IntGauge,
    pub orders_applied: IntCounter,
    /// Changelog records applied while restoring partitions' state.
    pub restored_records: IntCounter,
    /// From a partition's assignment to its being served (state restored), by restore kind.
    pub restore_seconds: prometheus::HistogramVec,
    /// Inbound partitions held, by whether they are being served or restored.
    pub partitions: IntGaugeVec,
    /// Conversations deleted after `conversation_ttl` idle.
    pub expired: IntCounter,
    /// Articles and products in the search indexes, by kind.
    pub knowledge_documents: IntGaugeVec,
    /// Retrieval time added per customer message (embedding and search).
    pub retrieval_seconds: Histogram,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).namespace("parley"), labels)
        .expect("metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(
        HistogramOpts::new(name, help)
            .namespace("parley")
            .buckets(buckets),
    )
    .expect("metric definition");
    r.register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let seconds = exponential_buckets(0.001, 2.0, 16).expect("buckets");
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "consumer_lag",
                "Records not yet consumed, per assigned partition",
            )
            .namespace("parley"),
            &["topic", "partition"],
        )
        .expect("metric definition");
        r.register(Box::new(consumer_lag.clone()))
            .expect("registered once");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::with_opts(Opts::new(name, help).namespace("parley")).expect("metric");
            r.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let state_store_bytes = gauge(
            "state_store_bytes",
            "Size of the RocksDB state (SST files and memtables)",
        );
        let conversations = gauge(
            "conversations",
            "Conversations in the state store (estimate)",
        );
        let counter = |name: &str, help: &str| {
            let c =
                IntCounter::with_opts(Opts::new(name, help).namespace("parley")).expect("metric");
            r.register(Box::new(c.clone())).expect("registered once");
            c
        };
        let orders_applied = counter(
            "orders_applied_total",
            "Order records applied to the orders table",
        );
        let restored_records = counter(
            "restored_records_total",
            "Changelog records applied while restoring partitions' conversation state",
        );
        let expired = counter(
            "conversations_expired_total",
            "Conversations deleted after conversation_ttl without activity",
        );
        let restore_seconds = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "restore_duration_seconds",
                "From a partition's assignment to its being served, by restore kind (full, delta)",
            )
            .namespace("parley")
            .buckets(seconds.clone()),
            &["kind"],
        )
        .expect("metric definition");
        r.register(Box::new(restore_seconds.clone()))
            .expect("registered once");
        let partitions = IntGaugeVec::new(
            Opts::new(
                "partitions",
                "Inbound partitions held, by state (active, restoring)",
            )
            .namespace("parley"),
            &["state"],
        )
        .expect("metric definition");
        r.register(Box::new(partitions.clone()))
            .expect("registered once");
        Self {
            messages: counter_vec(
                &r,
                "messages_total",
                "Consumed records by topic and outcome",
                &["topic", "outcome"],
            ),
            records_out: counter_vec(
                &r,
                "records_out_total",
                "Records produced (committed) by topic",
                &["topic"],
            ),
            dead_letters: counter_vec(
                &r,
                "dead_letters_total",
                "Records sent to the dead-letter topic by reason",
                &["reason"],
            ),
            escalations: counter_vec(
                &r,
                "escalations_total",
                "Escalation records by type and reason",
                &["type", "reason"],
            ),
            order_requests: counter_vec(
                &r,
                "order_requests_total",
                "Order requests published by type",
                &["type"],
            ),
            batch_size: histogram(
                &r,
                "batch_size",
                "Messages classified per forward pass",
                exponential_buckets(1.0, 2.0, 9).expect("buckets"),
            ),
            inference_seconds: histogram(
                &r,
                "inference_duration_seconds",
                "Time of one batched forward pass",
                seconds.clone(),
            ),
            end_to_end_seconds: histogram(
                &r,
                "end_to_end_latency_seconds",
                "From the message's sent_at (or record timestamp) to its reply being committed",
                seconds.clone(),
            ),
            transaction_seconds: histogram(
                &r,
                "transaction_duration_seconds",
                "From begin to commit of one output transaction",
                seconds,
            ),
            retrieval_seconds: histogram(
                &r,
                "retrieval_duration_seconds",
                "Retrieval time added per customer message (its share of the batch's embedding, and its search)",
                exponential_buckets(0.0001, 2.0, 14).expect("buckets"),
            ),
            knowledge_documents: {
                let g = IntGaugeVec::new(
                    Opts::new("knowledge_documents", "Articles and products searchable, by kind")
                        .namespace("parley"),
                    &["kind"],
                )
                .expect("metric definition");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            transactions: counter_vec(
                &r,
                "transactions_total",
                "Output transactions by result",
                &["result"],
            ),
            failures: counter_vec(
                &r,
                "failures_total",
                "Failures other than bad input, by reason",
                &["reason"],
            ),
            consumer_lag,
            state_store_bytes,
            conversations,
            orders_applied,
            restored_records,
            restore_seconds,
            partitions,
            expired,
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding our own well-formed metrics into a Vec cannot fail.
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
