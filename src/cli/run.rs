//! `parley run`: the stream service.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{is_secret, Config, REDACTED};
use crate::knowledge::Knowledge;
use crate::metrics::{Health, Metrics};
use crate::model::{Classifier, DeviceSpec, Embedder, ModelHandle, Models};
use crate::retrieval::synonyms::Synonyms;
use crate::retrieval::Retriever;
use crate::service::{rebuild, KnowledgeTable, Service, Table, TableLoader};
use crate::state::Store;
use crate::wire::SourceKind;

use super::{io_err, CliError};

/// Every setting can come from the TOML file, a flag or an environment variable (flag and
/// variable win over the file).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// TOML configuration file; without it every setting has its default.
    #[arg(long, env = "PARLEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "PARLEY_BROKERS")]
    pub brokers: Option<String>,
    #[arg(long, env = "PARLEY_GROUP_ID")]
    pub group_id: Option<String>,
    /// Stable per instance, distinct between instances; fences a previous incarnation of
    /// this instance. Unset: the POD_NAME variable, else parley-0 (alone in its group only).
    #[arg(long, env = "PARLEY_TRANSACTIONAL_ID")]
    pub transactional_id: Option<String>,
    /// An instance silent this long loses its partitions to the others.
    #[arg(long, env = "PARLEY_SESSION_TIMEOUT_MS")]
    pub session_timeout_ms: Option<u32>,
    /// Below the session timeout.
    #[arg(long, env = "PARLEY_TRANSACTION_TIMEOUT_MS")]
    pub transaction_timeout_ms: Option<u32>,
    /// Idle conversations are deleted after this long (default 30 days).
    #[arg(long, env = "PARLEY_CONVERSATION_TTL_SECS")]
    pub conversation_ttl_secs: Option<u64>,
    /// How often idle conversations and old warm copies are looked for.
    #[arg(long, env = "PARLEY_EXPIRY_INTERVAL_SECS")]
    pub expiry_interval_secs: Option<u64>,
    /// How long the state of partitions given up is kept for a quick move back.
    #[arg(long, env = "PARLEY_WARM_CACHE_SECS")]
    pub warm_cache_secs: Option<u64>,
    /// RocksDB directory for conversations, orders and offsets.
    #[arg(long, env = "PARLEY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(long, env = "PARLEY_MODEL")]
    pub model: Option<PathBuf>,
    /// Sentence encoder for retrieval over articles and products (`retrieval.encoder`).
    #[arg(long, env = "PARLEY_ENCODER")]
    pub encoder: Option<PathBuf>,
    /// Second encoder blended with it (`retrieval.blend_encoder`).
    #[arg(long, env = "PARLEY_BLEND_ENCODER")]
    pub blend_encoder: Option<PathBuf>,
    /// The second encoder's share of the similarity, 0 for none (`retrieval.blend_weight`).
    #[arg(long, env = "PARLEY_BLEND_WEIGHT")]
    pub blend_weight: Option<f32>,
    /// Synonym file replacing the shipped English one (`retrieval.synonyms`).
    #[arg(long, env = "PARLEY_SYNONYMS")]
    pub synonyms: Option<PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long, env = "PARLEY_DEVICE")]
    pub device: Option<String>,
    /// Knowledge base directory.
    #[arg(long, env = "PARLEY_KB")]
    pub kb: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "PARLEY_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_INBOUND")]
    pub topic_inbound: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_REPLIES")]
    pub topic_replies: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_ESCALATIONS")]
    pub topic_escalations: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_ORDERS")]
    pub topic_orders: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_ARTICLES")]
    pub topic_articles: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_PRODUCTS")]
    pub topic_products: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_ORDER_REQUESTS")]
    pub topic_order_requests: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_AGENT_ACTIONS")]
    pub topic_agent_actions: Option<String>,
    #[arg(long, env = "PARLEY_TOPIC_DEAD_LETTER")]
    pub topic_dead_letter: Option<String>,
    /// The compacted conversation changelog (default <group-id>-conversations-changelog).
    #[arg(long, env = "PARLEY_TOPIC_CHANGELOG")]
    pub topic_changelog: Option<String>,
    /// Partitions of topics Parley creates.
    #[arg(long, env = "PARLEY_PARTITIONS")]
    pub partitions: Option<i32>,
    #[arg(long, env = "PARLEY_REPLICATION_FACTOR")]
    pub replication_factor: Option<i32>,
    #[arg(long, env = "PARLEY_MAX_BATCH_SIZE")]
    pub max_batch_size: Option<usize>,
    #[arg(long, env = "PARLEY_MAX_BATCH_WAIT_MS")]
    pub max_batch_wait_ms: Option<u64>,
    #[arg(long, env = "PARLEY_MAX_BATCHES_PER_TRANSACTION")]
    pub max_batches_per_transaction: Option<usize>,
    #[arg(long, env = "PARLEY_MAX_TEXT_BYTES")]
    pub max_text_bytes: Option<usize>,
    /// A librdkafka property, KEY=VALUE (repeatable), e.g. --kafka security.protocol=SSL.
    /// Give secrets as KEY_file=PATH or KEY_env=VARIABLE (--kafka sasl.password_env=KAFKA_PW):
    /// a value on the command line is visible to every user of the machine.
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    pub kafka: Vec<KafkaArg>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// One `--kafka KEY=VALUE` flag, kept as typed and split by `RunArgs::resolve`. Its `Debug`
/// redacts a secret's value, so that printing the parsed command line shows no password.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaArg(String);

impl KafkaArg {
    /// The key and the value, when the flag has the KEY=VALUE form.
    fn split(&self) -> Option<(&str, &str)> {
        self.0.split_once('=').map(|(k, v)| (k.trim(), v.trim()))
    }
}

// Parsing never fails here: a flag without `=` is reported by `resolve`, whose error, unlike
// clap's, does not repeat the flag (it may be a password typed in the wrong place).
impl From<String> for KafkaArg {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for KafkaArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.split() {
            Some((k, _)) if is_direct_secret(k) => write!(f, "{k}={REDACTED}"),
            Some((k, v)) => write!(f, "{k}={v}"),
            None => f.write_str(REDACTED),
        }
    }
}

/// A secret property given by value (not as `_file` / `_env`).
fn is_direct_secret(key: &str) -> bool {
    is_secret(key) && !key.ends_with("_file") && !key.ends_with("_env")
}

impl RunArgs {
    /// The file (or the defaults) with flags and environment variables applied on top,
    /// validated, with the `[kafka]` secrets read from their files and variables and checked
    /// by librdkafka: every configuration error comes here, before anything connects.
    pub fn resolve(&self) -> Result<Config, CliError> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        set(&mut c.brokers, &self.brokers);
        set(&mut c.group_id, &self.group_id);
        if let Some(id) = &self.transactional_id {
            c.transactional_id = id.clone();
            c.transactional_id_given = true;
        } else if !c.transactional_id_given {
            // A StatefulSet's pod name: stable across restarts, distinct between replicas.
            if let Some(pod) = std::env::var("POD_NAME")
                .ok()
                .filter(|p| !p.trim().is_empty())
            {
                c.transactional_id = pod;
                c.transactional_id_given = true;
            }
        }
        let sc = &mut c.scale;
        set(&mut sc.session_timeout_ms, &self.session_timeout_ms);
        set(&mut sc.transaction_timeout_ms, &self.transaction_timeout_ms);
        set(&mut sc.conversation_ttl_secs, &self.conversation_ttl_secs);
        set(&mut sc.warm_cache_secs, &self.warm_cache_secs);
        set(&mut sc.expiry_interval_secs, &self.expiry_interval_secs);
        set(&mut c.state_dir, &self.state_dir);
        set(&mut c.model, &self.model);
        set(&mut c.retrieval.encoder, &self.encoder);
        set(&mut c.retrieval.blend_encoder, &self.blend_encoder);
        set(&mut c.retrieval.blend_weight, &self.blend_weight);
        if let Some(path) = &self.synonyms {
            c.retrieval.synonyms = Some(path.clone());
        }
        set(&mut c.device, &self.device);
        set(&mut c.kb, &self.kb);
        set(&mut c.metrics_addr, &self.metrics_addr);
        let t = &mut c.topics;
        set(&mut t.inbound, &self.topic_inbound);
        set(&mut t.replies, &self.topic_replies);
        set(&mut t.escalations, &self.topic_escalations);
        set(&mut t.orders, &self.topic_orders);
        set(&mut t.articles, &self.topic_articles);
        set(&mut t.products, &self.topic_products);
        set(&mut t.order_requests, &self.topic_order_requests);
        set(&mut t.agent_actions, &self.topic_agent_actions);
        set(&mut t.dead_letter, &self.topic_dead_letter);
        if self.topic_changelog.is_some() {
            t.changelog = self.topic_changelog.clone();
        }
        set(&mut t.partitions, &self.partitions);
        set(&mut t.replication_factor, &self.replication_factor);
        set(&mut c.batching.max_batch_size, &self.max_batch_size);
        set(&mut c.batching.max_batch_wait_ms, &self.max_batch_wait_ms);
        set(
            &mut c.batching.max_batches_per_transaction,
            &self.max_batches_per_transaction,
        );
        set(&mut c.limits.max_text_bytes, &self.max_text_bytes);
        for (i, arg) in self.kafka.iter().enumerate() {
            let (k, v) = arg.split().ok_or_else(|| {
                CliError::Usage(format!(
                    "--kafka flag {} (of {}) is not KEY=VALUE",
                    i + 1,
                    self.kafka.len()
                ))
            })?;
            if is_direct_secret(k) {
                tracing::warn!(
                    key = k,
                    "a secret on the command line is visible to every user of the machine; \
                     give it as --kafka {k}_env=VARIABLE or {k}_file=PATH"
                );
            }
            c.kafka.insert(k, v);
        }
        c.validate()?;
        c.resolve_secrets()?;
        crate::kafka::check_client_config(&c)?;
        Ok(c)
    }
}

pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let cfg = args.resolve()?;
    if args.print_config {
        // Secrets print as "<redacted>" (Config's Serialize); `_file` / `_env` entries as given.
        print!(
            "{}",
            toml::to_string(&cfg).map_err(|e| CliError::Usage(e.to_string()))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Read before the models load: a bad line is reported at once.
    let synonyms = cfg.retrieval.synonyms()?;
    let device = config_device(&cfg)?;
    let classifier = Classifier::load(&cfg.model, &device)?;
    let oos_label = classifier.settings().oos_label.clone();
    let kb = Knowledge::load(&cfg.kb, classifier.labels(), &oos_label)?;
    let embedder = Embedder::blend(&cfg.retrieval.encoders(), &device)?;
    let encoder = Encoder {
        dims: embedder.dims(),
        fingerprint: embedder.fingerprint().to_string(),
        words: embedder.whole_words(),
    };
    let model = ModelHandle::spawn(
        Models {
            classifier,
            embedder,
        },
        2,
    )
    .map_err(io_err("starting the model thread"))?;
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(io_err(format!("creating {}", cfg.state_dir.display())))?;
    let store = Arc::new(Store::open(&cfg.state_dir)?);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io_err("starting the async runtime"))?;
    runtime.block_on(serve(cfg, store, kb, model, encoder, synonyms, oos_label))
}

/// The device the configuration names (`device`, `--device`), ready to load a model on.
pub(super) fn config_device(cfg: &Config) -> Result<candle_core::Device, CliError> {
    let device: DeviceSpec = cfg
        .device
        .parse()
        .map_err(|e: String| CliError::Usage(format!("--device: {e}")))?;
    Ok(crate::model::parse_device(device)?)
}

/// What the tables need to know of the retrieval encoder.
struct Encoder {
    dims: usize,
    fingerprint: String,
    /// Its vocabulary's whole words, which typo mending leaves alone.
    words: std::collections::HashSet<String>,
}

async fn serve(
    cfg: Config,
    store: Arc<Store>,
    kb: Knowledge,
    model: ModelHandle,
    encoder: Encoder,
    synonyms: Synonyms,
    oos_label: String,
) -> Result<ExitCode, CliError> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let listener = crate::metrics::bind(&cfg.metrics_addr)
        .await
        .map_err(io_err(format!("listening on {}", cfg.metrics_addr)))?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::metrics::serve(
        listener,
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    if cfg.topics.create {
        crate::kafka::ensure_topics(&cfg).await?;
    }
    // The search indexes live in memory: rebuilt from the store before anything is served.
    let retriever = Arc::new(
        Retriever::with_synonyms(encoder.dims, cfg.retrieval.scoring, synonyms)
            .map_err(|e| CliError::Usage(e.to_string()))?,
    );
    retriever.set_dictionary(encoder.words);
    let started = std::time::Instant::now();
    let rebuilt = rebuild(&store, &retriever, &model, &encoder.fingerprint).await?;
    tracing::info!(
        articles = rebuilt.articles,
        products = rebuilt.products,
        embedded = rebuilt.embedded,
        seconds = started.elapsed().as_secs_f64(),
        memory_mb = retriever.memory_bytes() / (1 << 20),
        "search indexes rebuilt"
    );
    for (label, n) in [("article", rebuilt.articles), ("product", rebuilt.products)] {
        metrics
            .knowledge_documents
            .with_label_values(&[label])
            .set(n as i64);
    }
    let loader = |table| {
        tokio::task::block_in_place(|| {
            TableLoader::new(
                cfg.clone(),
                store.clone(),
                metrics.clone(),
                health.clone(),
                table,
            )
        })
    };
    let knowledge = |kind| {
        Table::Knowledge(KnowledgeTable {
            kind,
            retriever: retriever.clone(),
            model: model.clone(),
            fingerprint: encoder.fingerprint.clone(),
        })
    };
    let orders = loader(Table::Orders)?;
    let articles = loader(knowledge(SourceKind::Article))?;
    let products = loader(knowledge(SourceKind::Product))?;
    crate::kafka::ensure_changelog(&cfg).await?;
    let service = tokio::task::block_in_place(|| {
        Service::new(
            cfg.clone(),
            store.clone(),
            kb,
            model,
            retriever,
            oos_label,
            metrics,
            health,
        )
    })?;
    tracing::info!(
        inbound = %cfg.topics.inbound,
        agent_actions = %cfg.topics.agent_actions,
        brokers = %cfg.brokers,
        group_id = %cfg.group_id,
        metrics = %format_args!("http://{}/metrics", cfg.metrics_addr),
        "running"
    );
    let stop = std::sync::Arc::new(stop);
    let (s1, s2, s3) = (shutdown.clone(), shutdown.clone(), shutdown.clone());
    let mut orders_task = tokio::spawn(async move {
        tokio::try_join!(orders.run(s1), articles.run(s2), products.run(s3)).map(|_| ())
    });
    let on_signal = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = on_signal.send(true);
    });
    let service_run = service.run(shutdown);
    tokio::pin!(service_run);
    // Both loops must live: if the orders loader stops on an error, the orders table would go
    // stale behind a service that looks healthy, so the service stops too.
    let (result, orders_result) = tokio::select! {
        r = &mut service_run => {
            let _ = stop.send(true);
            (r, (&mut orders_task).await)
        }
        o = &mut orders_task => {
            let _ = stop.send(true);
            (service_run.await, o)
        }
    };
    tokio::task::block_in_place(|| store.flush())?;
    result?;
    match orders_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => {
            return Err(CliError::Usage(format!("the orders loader stopped: {e}")));
        }
    }
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
