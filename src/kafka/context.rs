//! The client context of consumers that read partitions to their end.

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// For consumers with `enable.partition.eof` (the global tables and the changelog restore):
/// they ask to be told when a partition is read to its end, because that is how they know
/// they are caught up. librdkafka also reports each such end as a client error, which the
/// default context logs at ERROR level: hundreds of alarming lines whenever content is
/// loaded. Here the end of a partition is a debug event; every other error is still an
/// error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadToEnd;

impl ClientContext for ReadToEnd {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_end_of_partition(&error) {
            tracing::debug!(target: "librdkafka", "librdkafka: {error}: {reason}");
        } else {
            tracing::error!(target: "librdkafka", "librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ReadToEnd {}

fn is_end_of_partition(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_))
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_partition_is_not_an_error_but_others_are() {
        assert!(is_end_of_partition(&KafkaError::Global(
            RDKafkaErrorCode::PartitionEOF
        )));
        assert!(is_end_of_partition(&KafkaError::PartitionEOF(2)));
        assert!(!is_end_of_partition(&KafkaError::Global(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
        assert!(!is_end_of_partition(&KafkaError::MessageConsumption(
            RDKafkaErrorCode::UnknownTopicOrPartition
        )));
    }
}
