//! Waiting out Kafka errors that heal by themselves: a broker restarting, partitions of a
//! topic just created electing their leaders, a coordinator moving. Such calls are retried
//! with exponential back-off (100 ms doubling up to 10 s), each retry logged at warn; errors
//! that no retry can fix (authorization, authentication, a fenced producer, bad settings) are
//! returned at once so the caller stops with a clear message.

use std::time::Duration;

use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode as Code;
use std::time::Instant;

/// How long start-up keeps retrying before it gives up with the last error: enough for a
/// broker that is still starting, or for new partitions to elect leaders, and short enough
/// that a wrong address or a missing topic still ends in a clear error.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(120);

/// Exponential back-off, optionally bounded by a deadline.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
    deadline: Option<Instant>,
    pub attempts: u32,
}

impl Backoff {
    /// 100 ms doubling to 10 s, for as long as it takes.
    pub fn unbounded() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10), None)
    }

    /// 100 ms doubling to 10 s, giving up once `within` has passed.
    pub fn within(within: Duration) -> Self {
        Self::new(
            Duration::from_millis(100),
            Duration::from_secs(10),
            Some(Instant::now() + within),
        )
    }

    pub fn new(initial: Duration, max: Duration, deadline: Option<Instant>) -> Self {
        Self {
            next: initial,
            initial,
            max,
            deadline,
            attempts: 0,
        }
    }

    /// A lower ceiling, for loops where a long pause would delay the recovery itself.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The pause before the next attempt, or `None` once the deadline has passed.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let mut delay = self.next;
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            delay = delay.min(left);
        }
        self.attempts += 1;
        self.next = (self.next * 2).min(self.max);
        Some(delay)
    }

    /// Back to the first, short pause (after a success).
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempts = 0;
    }
}

/// Whether waiting and calling again can succeed. Transaction errors carry librdkafka's own
/// verdict (and a retriable commit or abort must be *resumed*, never replaced by something
/// else); for every other error the code decides.
pub fn is_retriable(e: &RdError) -> bool {
    match e {
        RdError::Transaction(r) => r.is_retriable() && !r.is_fatal(),
        RdError::MessageConsumptionFatal(_) => false,
        other => other.rdkafka_error_code().is_some_and(retriable_code),
    }
}

/// Codes of conditions that pass: the broker or a leader unreachable or moving, timeouts,
/// coordinators loading, topics just created (their metadata and leaders arrive a moment
/// after the creation succeeds).
pub fn retriable_code(code: Code) -> bool {
    matches!(
        code,
        Code::BrokerTransportFailure
            | Code::AllBrokersDown
            | Code::Resolve
            | Code::MessageTimedOut
            | Code::OperationTimedOut
            | Code::TimedOutQueue
            | Code::UnknownPartition
            | Code::UnknownTopic
            | Code::WaitingForCoordinator
            | Code::InProgress
            | Code::Retry
            | Code::UnknownTopicOrPartition
            | Code::LeaderNotAvailable
            | Code::NotLeaderForPartition
            | Code::RequestTimedOut
            | Code::BrokerNotAvailable
            | Code::ReplicaNotAvailable
            | Code::NetworkException
            | Code::CoordinatorLoadInProgress
            | Code::CoordinatorNotAvailable
            | Code::NotCoordinator
            | Code::NotEnoughReplicas
            | Code::NotEnoughReplicasAfterAppend
            | Code::NotController
            | Code::RebalanceInProgress
            | Code::ConcurrentTransactions
            | Code::KafkaStorageError
            | Code::FencedLeaderEpoch
            | Code::UnknownLeaderEpoch
            | Code::OffsetNotAvailable
            | Code::PreferredLeaderNotAvailable
            | Code::EligibleLeadersNotAvailable
            | Code::UnstableOffsetCommit
            | Code::ThrottlingQuotaExceeded
            | Code::UnknownTopicId
    )
}

/// Errors that say this client may not do what it does, or is no longer the instance it
/// was: retrying (or aborting and re-reading) would loop for ever, so the service stops and
/// says why. Not `FencedInstanceId`: adding offsets to a transaction fails with it after the
/// consumer itself rejoined its group (a broker outage longer than the session timeout),
/// which an abort and a re-read heal; another instance taking the id is reported by the
/// consumer as a fatal error.
pub fn is_permanent(e: &RdError) -> bool {
    e.rdkafka_error_code().is_some_and(|code| {
        matches!(
            code,
            Code::TopicAuthorizationFailed
                | Code::GroupAuthorizationFailed
                | Code::ClusterAuthorizationFailed
                | Code::TransactionalIdAuthorizationFailed
                | Code::DelegationTokenAuthorizationFailed
                | Code::SaslAuthenticationFailed
                | Code::Authentication
                | Code::UnsupportedSASLMechanism
                | Code::IllegalSASLState
                | Code::ProducerFenced
                | Code::Fenced
        )
    })
}

/// Runs the blocking `op` until it succeeds, fails with an error that is not retriable, or
/// the back-off's deadline passes (then the last error is returned).
pub fn blocking<T>(
    what: &str,
    mut backoff: Backoff,
    mut op: impl FnMut() -> Result<T, RdError>,
) -> Result<T, RdError> {
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if is_retriable(&e) => match backoff.next_delay() {
                Some(delay) => {
                    warn(what, &e, delay, backoff.attempts);
                    std::thread::sleep(delay);
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// [`blocking`] for async operations.
pub async fn retry<T, F, Fut>(what: &str, mut backoff: Backoff, mut op: F) -> Result<T, RdError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RdError>>,
{
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if is_retriable(&e) => match backoff.next_delay() {
                Some(delay) => {
                    warn(what, &e, delay, backoff.attempts);
                    tokio::time::sleep(delay).await;
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// The partitions of `topic`, once the topic exists and every partition has a leader. Right
/// after a topic is created its metadata may still be missing, or its partitions may still be
/// electing leaders (reading their ends then fails with `NotLeaderForPartition`): those come
/// back as retriable errors.
pub fn ready_partitions<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, RdError> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(RdError::MetadataFetch(Code::UnknownTopicOrPartition));
    };
    if let Some(e) = t.error() {
        return Err(RdError::MetadataFetch(e.into()));
    }
    if t.partitions().is_empty() {
        return Err(RdError::MetadataFetch(Code::UnknownTopicOrPartition));
    }
    for p in t.partitions() {
        // A replica being down is no reason to wait while the partition has a leader.
        match p.error().map(Code::from) {
            None | Some(Code::ReplicaNotAvailable) => {}
            Some(code) => return Err(RdError::MetadataFetch(code)),
        }
        if p.leader() < 0 {
            return Err(RdError::MetadataFetch(Code::LeaderNotAvailable));
        }
    }
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

pub fn warn(what: &str, e: &dyn std::fmt::Display, delay: Duration, attempt: u32) {
    tracing::warn!(
        attempt,
        retry_in_ms = delay.as_millis() as u64,
        "{what}: {e}; retrying in {delay:.1?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling() {
        let mut b = Backoff::unbounded();
        let delays: Vec<u128> = (0..10)
            .map(|_| b.next_delay().unwrap().as_millis())
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]
        );
        b.reset();
        assert_eq!(b.next_delay(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn backoff_stops_at_its_deadline() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(10),
            Some(Instant::now()),
        );
        assert_eq!(b.next_delay(), None);
        let mut b = Backoff::within(Duration::from_millis(150));
        assert_eq!(b.next_delay(), Some(Duration::from_millis(100)));
        // Never sleeps past the deadline.
        assert!(b.next_delay().unwrap() <= Duration::from_millis(150));
    }

    #[test]
    fn leader_elections_and_outages_are_retried_authorization_is_not() {
        for code in [
            Code::NotLeaderForPartition,
            Code::LeaderNotAvailable,
            Code::UnknownTopicOrPartition,
            Code::AllBrokersDown,
            Code::BrokerTransportFailure,
            Code::OperationTimedOut,
        ] {
            assert!(is_retriable(&RdError::MetadataFetch(code)), "{code:?}");
            assert!(is_retriable(&RdError::OffsetFetch(code)), "{code:?}");
        }
        for code in [
            Code::TopicAuthorizationFailed,
            Code::SaslAuthenticationFailed,
            Code::ProducerFenced,
            Code::InvalidReplicationFactor,
        ] {
            assert!(!is_retriable(&RdError::MetadataFetch(code)), "{code:?}");
        }
        assert!(is_permanent(&RdError::MessageProduction(
            Code::TopicAuthorizationFailed
        )));
        assert!(!is_permanent(&RdError::MessageProduction(
            Code::MessageTimedOut
        )));
        assert!(!is_permanent(&RdError::MessageConsumption(
            Code::FencedInstanceId
        )));
        // A fatal consumer error (another member took this static id) never is.
        assert!(!is_retriable(&RdError::MessageConsumptionFatal(
            Code::FencedInstanceId
        )));
    }

    #[test]
    fn blocking_retries_until_success_and_stops_on_a_permanent_error() {
        let mut calls = 0;
        let fast = Backoff::new(Duration::from_millis(1), Duration::from_millis(2), None);
        let r = blocking("test", fast.clone(), || {
            calls += 1;
            if calls < 3 {
                Err(RdError::MetadataFetch(Code::LeaderNotAvailable))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), _> = blocking("test", fast, || {
            calls += 1;
            Err(RdError::MetadataFetch(Code::TopicAuthorizationFailed))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
