//! Creates the topics Parley uses when they are missing, and waits until they can be used.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{client_config, KafkaError};
use crate::config::Config;
use crate::service::retry::{self, Backoff, STARTUP_DEADLINE};

/// How long a broker that cannot be reached at all is waited for: one that is still starting
/// comes up within it, and a wrong address still ends start-up with a clear line.
const REACH_DEADLINE: Duration = Duration::from_secs(30);

/// Creates every missing topic (orders compacted), then waits until every partition of
/// every topic has a leader, so that what follows (reading partition ends, subscribing)
/// does not trip over partitions still electing theirs. Existing topics are left as they are.
pub async fn ensure_topics(cfg: &Config) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(cfg, &[])
        .create()
        .map_err(KafkaError::client("creating the admin client"))?;
    // A quick metadata request first, so an unreachable broker is reported as that rather
    // than as a topic-creation timeout.
    tokio::task::block_in_place(|| {
        retry::blocking(
            &format!("reaching the Kafka brokers at {}", cfg.brokers),
            Backoff::within(REACH_DEADLINE).max(Duration::from_secs(5)),
            || admin.inner().fetch_metadata(None, Duration::from_secs(5)),
        )
    })
    .map_err(KafkaError::client(format!(
        "cannot reach the Kafka brokers at {} (check --brokers / PARLEY_BROKERS and the [kafka] settings)",
        cfg.brokers
    )))?;
    let t = &cfg.topics;
    let names = t.names();
    let mut missing: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut backoff = Backoff::within(STARTUP_DEADLINE);
    loop {
        let topics: Vec<NewTopic> = missing
            .iter()
            .map(|name| {
                let topic = NewTopic::new(
                    name,
                    t.partitions,
                    TopicReplication::Fixed(t.replication_factor),
                );
                if *name == t.orders || *name == t.articles || *name == t.products {
                    topic.set("cleanup.policy", "compact")
                } else {
                    topic
                }
            })
            .collect();
        let context = format!("creating topics at {}", cfg.brokers);
        let mut retry_names = Vec::new();
        let mut last_error = None;
        match admin.create_topics(&topics, &opts).await {
            Ok(results) => {
                let mut problems = Vec::new();
                for r in results {
                    match r {
                        Ok(name) => tracing::info!("created topic {name}"),
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((name, code)) if retry::retriable_code(code) => {
                            last_error = Some(format!("{name}: {code}"));
                            retry_names.push(name);
                        }
                        Err((name, code)) => problems.push(format!("{name}: {code}")),
                    }
                }
                if !problems.is_empty() {
                    return Err(KafkaError::Other(format!(
                        "could not create topics: {}",
                        problems.join("; ")
                    )));
                }
            }
            Err(e) if retry::is_retriable(&e) => {
                last_error = Some(e.to_string());
                retry_names = missing.iter().map(|n| n.to_string()).collect();
            }
            Err(cause) => return Err(KafkaError::Client { context, cause }),
        }
        let Some(error) = last_error else { break };
        let Some(delay) = backoff.next_delay() else {
            return Err(KafkaError::Other(format!(
                "could not create topics within {STARTUP_DEADLINE:?}: {error}"
            )));
        };
        retry::warn(&context, &error, delay, backoff.attempts);
        tokio::time::sleep(delay).await;
        missing = names
            .iter()
            .map(|n| n.as_str())
            .filter(|n| retry_names.iter().any(|r| r.as_str() == *n))
            .collect();
    }
    // New partitions elect their leaders a moment after the creation returns.
    for name in &names {
        tokio::task::block_in_place(|| {
            retry::blocking(
                &format!("waiting for the partitions of {name}"),
                Backoff::within(STARTUP_DEADLINE),
                || retry::ready_partitions(admin.inner(), name, Duration::from_secs(10)),
            )
        })
        .map_err(KafkaError::client(format!(
            "reading the partitions of {name}"
        )))?;
    }
    Ok(())
}

/// Partitions of `topic`, or `None` when it does not exist.
fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<Option<usize>, KafkaError> {
    let md = tokio::task::block_in_place(|| {
        retry::blocking(
            &format!("reading the partitions of {topic}"),
            Backoff::within(STARTUP_DEADLINE),
            || {
                admin
                    .inner()
                    .fetch_metadata(Some(topic), Duration::from_secs(10))
            },
        )
    })
    .map_err(KafkaError::client(format!(
        "reading the partitions of {topic}"
    )))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0))
}

/// Makes sure the conversation changelog exists, compacted, with exactly as many
/// partitions as the inbound topic, and that agent actions are co-partitioned with the
/// inbound topic: conversation state lives with its inbound partition, so partition P of
/// each must hold the same conversations. Anything else is refused: state would be
/// restored to the wrong owner, or agent actions would miss their conversation.
pub async fn ensure_changelog(cfg: &Config) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(cfg, &[])
        .create()
        .map_err(KafkaError::client("creating the admin client"))?;
    let t = &cfg.topics;
    let Some(inbound) = partition_count(&admin, &t.inbound)? else {
        return Err(KafkaError::Other(format!(
            "the inbound topic {} does not exist (create it, or set topics.create)",
            t.inbound
        )));
    };
    let changelog = cfg.changelog_topic();
    if partition_count(&admin, &changelog)?.is_none() {
        if !t.create {
            return Err(KafkaError::Other(format!(
                "the changelog topic {changelog} does not exist: create it compacted \
                 (cleanup.policy=compact) with {inbound} partitions, as many as {}",
                t.inbound
            )));
        }
        let topic = NewTopic::new(
            &changelog,
            inbound as i32,
            TopicReplication::Fixed(t.replication_factor),
        )
        .set("cleanup.policy", "compact");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(&[topic], &opts)
            .await
            .map_err(KafkaError::client(format!("creating {changelog}")))?;
        for r in results {
            match r {
                Ok(name) => {
                    tracing::info!("created topic {name} ({inbound} partitions, compacted)")
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(KafkaError::Other(format!(
                        "could not create {name}: {code}"
                    )))
                }
            }
        }
        tokio::task::block_in_place(|| {
            retry::blocking(
                &format!("waiting for the partitions of {changelog}"),
                Backoff::within(STARTUP_DEADLINE),
                || retry::ready_partitions(admin.inner(), &changelog, Duration::from_secs(10)),
            )
        })
        .map_err(KafkaError::client(format!(
            "reading the partitions of {changelog}"
        )))?;
    }
    check_compacted(&admin, &changelog).await?;
    for (name, why) in [
        (changelog.as_str(), "the changelog"),
        (t.agent_actions.as_str(), "agent actions"),
    ] {
        match partition_count(&admin, name)? {
            Some(n) if n == inbound => {}
            Some(n) => {
                return Err(KafkaError::Other(format!(
                    "{name} has {n} partitions and {} has {inbound}: {why} must have exactly \
                     as many partitions as the inbound topic (conversation state follows the \
                     inbound partitions); partitions cannot be added to these topics later",
                    t.inbound
                )))
            }
            None if name == t.agent_actions => {
                return Err(KafkaError::Other(format!(
                    "the agent-actions topic {name} does not exist: create it with {inbound} \
                     partitions, as many as {}",
                    t.inbound
                )))
            }
            None => {
                return Err(KafkaError::Other(format!("{name} is not ready yet")));
            }
        }
    }
    Ok(())
}

/// A changelog that deletes by age would lose the state of every conversation older than its
/// retention at the next full restore: refuse anything but compaction.
async fn check_compacted(
    admin: &AdminClient<DefaultClientContext>,
    changelog: &str,
) -> Result<(), KafkaError> {
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let resource = ResourceSpecifier::Topic(changelog);
    let results = admin
        .describe_configs([&resource], &opts)
        .await
        .map_err(KafkaError::client(format!("describing {changelog}")))?;
    let policy = results
        .into_iter()
        .flatten()
        .find_map(|r| r.get("cleanup.policy").and_then(|e| e.value.clone()));
    match policy {
        Some(p) if p.split(',').map(str::trim).any(|x| x == "compact") => Ok(()),
        Some(p) => Err(KafkaError::Other(format!(
            "the changelog topic {changelog} has cleanup.policy={p}: it must be compacted \
             (cleanup.policy=compact), or conversation state would be deleted by age"
        ))),
        // The broker did not say (an ACL without DescribeConfigs): nothing to check.
        None => Ok(()),
    }
}
