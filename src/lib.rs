//! Parley: a Kafka stream processor for AI customer service.
//!
//! This crate holds the intent model (BERT-family classifier on candle: training,
//! evaluation, batch inference) and the command-line front end.

pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod model;
pub mod train;
