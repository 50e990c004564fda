//! What keeps one record from stopping the service: a panic caught per record, the
//! gateway-signature and agent allow-list checks, and the health of the loop (aborted
//! transactions in a row, time without a commit while input waits).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use super::retry::Backoff;
use crate::config::{Config, HealthSettings, IdentityMode};
use crate::metrics::Health;
use crate::wire::{DecodeError, ErrorKind, InboundMessage};

pub(super) struct Guard {
    /// The gateway's key, in signed identity mode.
    key: Option<Vec<u8>>,
    /// Agent ids allowed to act; `None` allows any.
    pub allowed_agents: Option<HashSet<String>>,
    settings: HealthSettings,
    aborts: AtomicU32,
    /// The pause before re-reading an aborted batch.
    backoff: Mutex<Backoff>,
    last_abort: Mutex<String>,
    /// When the batch in hand started waiting for a commit; `None` when idle.
    busy_since: Mutex<Option<Instant>>,
    watchdog: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Guard {
    pub fn new(cfg: &Config) -> Result<Self, crate::config::ConfigError> {
        install_panic_hook();
        let key = match cfg.identity.mode {
            IdentityMode::Trusted => None,
            IdentityMode::Signed => cfg.identity_key()?.map(|k| k.expose().as_bytes().to_vec()),
        };
        Ok(Self {
            key,
            allowed_agents: cfg.allowed_agents()?,
            settings: cfg.health.clone(),
            aborts: AtomicU32::new(0),
            backoff: Mutex::new(Backoff::unbounded()),
            last_abort: Mutex::new(String::new()),
            busy_since: Mutex::new(None),
            watchdog: AtomicBool::new(false),
        })
    }

    /// Signed mode: the message's `parley.signature` must verify.
    pub fn verify(
        &self,
        message: &InboundMessage,
        header: Option<&[u8]>,
    ) -> Result<(), DecodeError> {
        match &self.key {
            None => Ok(()),
            Some(key) => crate::wire::verify(key, message, header),
        }
    }

    /// A batch is in hand: from now on the stall clock runs until it commits.
    pub fn busy(self: &Arc<Self>, health: &Arc<Health>) {
        if !self.watchdog.swap(true, Ordering::Relaxed) {
            tokio::spawn(watchdog(self.clone(), health.clone()));
        }
        lock(&self.busy_since).get_or_insert_with(Instant::now);
    }

    pub fn committed(&self, health: &Health) {
        self.aborts.store(0, Ordering::Relaxed);
        lock(&self.backoff).reset();
        *lock(&self.busy_since) = None;
        health.set_stuck(None);
    }

    /// Counts an aborted transaction; returns how long to wait before the batch is re-read:
    /// 100 ms, doubling to 10 s, so a persistent error (an ACL, a full disk on the broker)
    /// does not spin begin/abort at full speed.
    pub fn aborted(&self, health: &Health, error: &str) -> Duration {
        self.aborts.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_abort) = error.to_string();
        if let Some(why) = self.stuck_reason() {
            health.set_stuck(Some(why));
        }
        // Unbounded: it always has a next pause.
        lock(&self.backoff)
            .next_delay()
            .unwrap_or(Duration::from_secs(10))
    }

    fn stuck_reason(&self) -> Option<String> {
        let aborts = self.aborts.load(Ordering::Relaxed);
        if aborts >= self.settings.max_consecutive_aborts {
            return Some(format!(
                "{aborts} transactions aborted in a row (last: {})",
                lock(&self.last_abort)
            ));
        }
        let waited = lock(&self.busy_since).map(|t| t.elapsed())?;
        (waited > Duration::from_secs(self.settings.stall_timeout_secs)).then(|| {
            format!(
                "input is waiting and nothing has committed for {} s",
                waited.as_secs()
            )
        })
    }
}

/// Marks the loop stuck while a batch cannot commit, even when the loop itself is blocked
/// inside a Kafka call.
async fn watchdog(guard: Arc<Guard>, health: Arc<Health>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(why) = guard.stuck_reason() {
            health.set_stuck(Some(why));
        }
    }
}

/// Runs `f`, turning a panic into an `internal_error` for the record in hand.
pub(super) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, DecodeError> {
    IN_GUARD.with(|g| g.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    IN_GUARD.with(|g| g.set(false));
    result.map_err(|panic| {
        let message = crate::telemetry::panic_message(&*panic);
        DecodeError::new(
            ErrorKind::InternalError,
            format!("Parley failed on this record: {message}"),
        )
    })
}

thread_local! {
    /// Set while [`guarded`] runs a record's work on this thread.
    static IN_GUARD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A record's panic message can quote customer text (a string slice error prints the
/// string), so for those the log gets the place only and the message goes to the dead
/// letter's `parley.error` header. Any other panic is logged with its message.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            if IN_GUARD.with(|g| g.get()) {
                tracing::error!(%place, "panic while handling a record; it is dead-lettered as internal_error");
            } else {
                let message = crate::telemetry::panic_message(info.payload());
                tracing::error!(%place, %message, "panic");
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let e = guarded(|| {
            let s = "İİİ";
            s[..1].len()
        })
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InternalError);
        assert!(e.message.contains("char boundary"), "{}", e.message);
        assert_eq!(guarded(|| 7).unwrap(), 7);
    }

    #[test]
    fn aborts_in_a_row_make_the_loop_unhealthy_until_a_commit() {
        let mut cfg = Config::default();
        cfg.health.max_consecutive_aborts = 3;
        let guard = Guard::new(&cfg).unwrap();
        let health = Health::default();
        let waits: Vec<Duration> = (0..2)
            .map(|_| guard.aborted(&health, "broker down"))
            .collect();
        assert_eq!(
            waits,
            [Duration::from_millis(100), Duration::from_millis(200)]
        );
        assert_eq!(health.stuck(), None);
        guard.aborted(&health, "broker down");
        assert!(health.stuck().unwrap().contains("3 transactions aborted"));
        guard.committed(&health);
        assert_eq!(health.stuck(), None);
        assert_eq!(guard.aborted(&health, "again"), Duration::from_millis(100));
    }
}
