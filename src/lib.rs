//! Parley: a Kafka stream processor for AI customer service.
//!
//! Modules by responsibility: `config` (settings), `kafka` (clients, topics), `service` (the
//! batching and transactional loop), `model` (BERT classifier on candle), `dialogue` (the pure
//! policy), `knowledge` (the knowledge base), `state` (RocksDB), `metrics`, `telemetry` (logs),
//! `wire` (the records on the wire), `scenario` (scripted conversations), `cli`; plus `train`,
//! `eval`, `data` and `bench` for the model's life cycle.

pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod dialogue;
pub mod eval;
pub mod kafka;
pub mod knowledge;
pub mod metrics;
pub mod model;
pub mod retrieval;
pub mod scenario;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod train;
pub mod wire;
