//! Creates the topics Parley uses when they are missing.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{client_config, KafkaError};
use crate::config::Config;

/// Creates every missing topic (orders compacted). Existing topics are left as they are.
pub async fn ensure_topics(cfg: &Config) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(cfg, &[])
        .create()
        .map_err(KafkaError::client("creating the admin client"))?;
    // A quick metadata request first, so an unreachable broker is reported as that, in
    // seconds, rather than as a topic-creation timeout.
    tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, Duration::from_secs(10)))
        .map_err(KafkaError::client(format!(
            "cannot reach the Kafka brokers at {} (check --brokers / PARLEY_BROKERS and the [kafka] settings)",
            cfg.brokers
        )))?;
    let t = &cfg.topics;
    let names = t.names();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(
                name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor),
            );
            if *name == &t.orders {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&topics, &opts)
        .await
        .map_err(KafkaError::client(format!(
            "creating topics at {}",
            cfg.brokers
        )))?;
    let mut problems = Vec::new();
    for r in results {
        match r {
            Ok(name) => eprintln!("parley: created topic {name}"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => problems.push(format!("{name}: {code}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(KafkaError::Other(format!(
            "could not create topics: {}",
            problems.join("; ")
        )))
    }
}
