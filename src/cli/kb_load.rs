//! `parley kb load`: publishes content to the knowledge topics; and reading those topics
//! back (for `parley kb search`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::kb::LoadArgs;
use super::CliError;
use crate::config::Config;
use crate::kafka::{client_config, KafkaError};
use crate::retrieval::content::Content;
use crate::wire::{decode_article, decode_product};

pub fn run(a: LoadArgs) -> Result<ExitCode, CliError> {
    let cfg = a.service.resolve()?;
    if a.paths.is_empty() && a.delete.is_empty() {
        return Err(CliError::Usage(
            "nothing to load: give files or directories, or --delete article:ID|product:SKU".into(),
        ));
    }
    // Everything is read and checked before anything is sent: a bad record stops the load
    // with its file and position, and nothing of it reaches the topics.
    let mut content = Content::default();
    for p in &a.paths {
        let c = Content::read(p).map_err(|e| CliError::Usage(e.to_string()))?;
        content.articles.extend(c.articles);
        content.products.extend(c.products);
    }
    let mut deletes = Vec::new();
    for d in &a.delete {
        let topic = match d.split_once(':') {
            Some(("article", id)) if !id.is_empty() => (&cfg.topics.articles, id),
            Some(("product", sku)) if !sku.is_empty() => (&cfg.topics.products, sku),
            _ => {
                return Err(CliError::Usage(format!(
                    "--delete {d:?}: expected article:ID or product:SKU"
                )))
            }
        };
        deletes.push(topic);
    }
    let mut records: Vec<(&str, String, Option<Vec<u8>>)> = Vec::new();
    for x in &content.articles {
        let v = serde_json::to_vec(x).expect("an article serialises");
        records.push((&cfg.topics.articles, x.id.clone(), Some(v)));
    }
    for x in &content.products {
        let v = serde_json::to_vec(x).expect("a product serialises");
        records.push((&cfg.topics.products, x.sku.clone(), Some(v)));
    }
    for (topic, id) in deletes {
        records.push((topic, id.to_string(), None));
    }
    let producer: FutureProducer =
        client_config(&cfg, &[("enable.idempotence", "true"), ("linger.ms", "20")])
            .create()
            .map_err(KafkaError::client("creating the producer"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(super::io_err("starting the runtime"))?;
    let sent = rt.block_on(async {
        let mut pending = Vec::with_capacity(records.len());
        for (topic, key, value) in &records {
            let mut r = FutureRecord::<str, [u8]>::to(topic).key(key.as_str());
            if let Some(v) = value {
                r = r.payload(v.as_slice());
            }
            pending.push(producer.send(r, Duration::from_secs(60)));
        }
        let mut n = 0;
        for (p, (topic, key, _)) in pending.into_iter().zip(&records) {
            p.await.map_err(|(cause, _)| KafkaError::Client {
                context: format!("publishing {key} to {topic}"),
                cause,
            })?;
            n += 1;
        }
        Ok::<usize, KafkaError>(n)
    })?;
    println!(
        "published {} articles to {}, {} products to {}, {} deletions ({sent} records)",
        content.articles.len(),
        cfg.topics.articles,
        content.products.len(),
        cfg.topics.products,
        a.delete.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// What the knowledge topics hold now: each key's last value, deletions applied. Records
/// that would be dead-lettered by the service are skipped with a warning.
pub fn read_topics(cfg: &Config) -> Result<Content, CliError> {
    let consumer: BaseConsumer = client_config(
        cfg,
        &[
            ("group.id", &format!("{}-kb-search", cfg.group_id)),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()
    .map_err(KafkaError::client("creating a reader"))?;
    let timeout = Duration::from_secs(10);
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for topic in [&cfg.topics.articles, &cfg.topics.products] {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(KafkaError::client(format!(
                "reading the partitions of {topic}"
            )))?;
        for p in md.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), timeout)
                .map_err(KafkaError::client(format!("reading the end of {topic}")))?;
            if high > low {
                ends.insert((topic.clone(), p.id()), high);
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .map_err(KafkaError::client("assigning"))?;
            }
        }
    }
    consumer
        .assign(&tpl)
        .map_err(KafkaError::client("assigning the topics"))?;
    let mut articles = BTreeMap::new();
    let mut products = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(CliError::Usage(
                "reading the knowledge topics: not at their end after 120 s".into(),
            ));
        }
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m.map_err(KafkaError::client("reading the knowledge topics"))?;
            let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
            let is_articles = m.topic() == cfg.topics.articles;
            match (key, m.payload()) {
                (Some(k), None) if is_articles => {
                    articles.remove(&k);
                }
                (Some(k), None) => {
                    products.remove(&k);
                }
                (key, Some(v)) if is_articles => match decode_article(v, key.as_deref()) {
                    Ok(a) => {
                        articles.insert(a.id.clone(), a);
                    }
                    Err(e) => tracing::warn!(offset = m.offset(), "skipping an article: {e}"),
                },
                (key, Some(v)) => match decode_product(v, key.as_deref()) {
                    Ok(p) => {
                        products.insert(p.sku.clone(), p);
                    }
                    Err(e) => tracing::warn!(offset = m.offset(), "skipping a product: {e}"),
                },
                (None, None) => {}
            }
        }
        // The position, not the last record, says where reading stands: a transaction
        // marker at the end of a partition is never delivered as a record.
        let position = consumer
            .position()
            .map_err(KafkaError::client("reading the position"))?;
        ends.retain(|(topic, p), end| {
            !matches!(
                position.find_partition(topic, *p).map(|e| e.offset()),
                Some(Offset::Offset(o)) if o >= *end
            )
        });
    }
    Ok(Content {
        articles: articles.into_values().collect(),
        products: products.into_values().collect(),
    })
}
