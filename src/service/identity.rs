//! One transactional id per live instance. Two instances with the same id would fence each
//! other in a loop (each start's `init_transactions` bumps the epoch of the other's
//! producer), so before this instance touches its producer it looks at the group's members:
//! every conversation consumer's `client.id` is `parley-<transactional_id>`.
//!
//! A member with this id may be a previous incarnation that crashed: its membership lasts
//! until its session times out. So a start waits up to the session timeout for it to go;
//! a member still there after that is alive, and this start is refused.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::time::Instant;

use super::ServiceError;
use crate::config::Config;
use crate::kafka::{client_config, KafkaError};

/// The conversation consumer's `client.id`, by which an instance is recognised.
pub fn client_id(transactional_id: &str) -> String {
    format!("parley-{transactional_id}")
}

/// What the group looks like to an instance that is about to join it.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    Free,
    /// A member with this id is there (alive, or dead and not yet timed out).
    Taken {
        host: String,
    },
    /// No id was given and other instances are there: they would share the default id.
    Unnamed {
        others: usize,
    },
}

/// Judges the members (client id, host) of the group.
pub(super) fn judge(cfg: &Config, members: &[(String, String)]) -> Verdict {
    let me = client_id(&cfg.transactional_id);
    if let Some((_, host)) = members.iter().find(|(id, _)| *id == me) {
        return Verdict::Taken { host: host.clone() };
    }
    if !cfg.transactional_id_given && !members.is_empty() {
        return Verdict::Unnamed {
            others: members.len(),
        };
    }
    Verdict::Free
}

/// Refuses to start when another live instance uses this transactional id, or when no id
/// was given and the group has other members.
pub async fn check(cfg: &Config) -> Result<(), ServiceError> {
    let probe: BaseConsumer =
        client_config(cfg, &[("group.id", &format!("{}-probe", cfg.group_id))])
            .create()
            .map_err(KafkaError::client("creating the group probe"))?;
    let session = Duration::from_millis(cfg.scale.session_timeout_ms.into());
    let deadline = Instant::now() + session + Duration::from_secs(3);
    let mut told = false;
    loop {
        let members = tokio::task::block_in_place(|| members(&probe, &cfg.group_id))?;
        match judge(cfg, &members) {
            Verdict::Free => return Ok(()),
            Verdict::Unnamed { others } => {
                return Err(KafkaError::Fatal(format!(
                    "no transactional_id was given, and group {:?} already has {others} \
                     member(s): each instance needs its own stable transactional_id \
                     (--transactional-id, PARLEY_TRANSACTIONAL_ID or POD_NAME), or they \
                     would fence each other",
                    cfg.group_id
                ))
                .into())
            }
            Verdict::Taken { host } if Instant::now() >= deadline => {
                return Err(KafkaError::Fatal(format!(
                    "transactional_id {:?} is already in use by a live member of group {:?} \
                     (at {host}); give each instance its own --transactional-id",
                    cfg.transactional_id, cfg.group_id
                ))
                .into())
            }
            Verdict::Taken { host } => {
                if !told {
                    tracing::warn!(
                        transactional_id = %cfg.transactional_id,
                        %host,
                        "a member with this transactional_id is in the group; waiting up to \
                         the session timeout ({} ms) in case it is a crashed earlier run",
                        cfg.scale.session_timeout_ms
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn members(probe: &BaseConsumer, group: &str) -> Result<Vec<(String, String)>, KafkaError> {
    let list = super::retry::blocking(
        &format!("describing group {group}"),
        super::retry::Backoff::within(super::retry::STARTUP_DEADLINE),
        || probe.fetch_group_list(Some(group), Duration::from_secs(10)),
    )
    .map_err(KafkaError::client(format!("describing group {group}")))?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| (m.client_id().to_string(), m.client_host().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: &str, given: bool) -> Config {
        Config {
            transactional_id: id.into(),
            transactional_id_given: given,
            ..Config::default()
        }
    }

    fn member(id: &str) -> (String, String) {
        (client_id(id), "/10.0.0.7".into())
    }

    #[test]
    fn the_same_id_is_taken_and_an_unnamed_instance_must_be_alone() {
        assert_eq!(judge(&cfg("a", true), &[]), Verdict::Free);
        assert_eq!(judge(&cfg("a", true), &[member("b")]), Verdict::Free);
        assert_eq!(
            judge(&cfg("a", true), &[member("b"), member("a")]),
            Verdict::Taken {
                host: "/10.0.0.7".into()
            }
        );
        assert_eq!(judge(&cfg("parley-0", false), &[]), Verdict::Free);
        assert_eq!(
            judge(&cfg("parley-0", false), &[member("x"), member("y")]),
            Verdict::Unnamed { others: 2 }
        );
        // A crashed earlier run of the unnamed instance is itself, not another instance.
        assert!(matches!(
            judge(&cfg("parley-0", false), &[member("parley-0")]),
            Verdict::Taken { .. }
        ));
    }
}
