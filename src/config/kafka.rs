//! The `[kafka]` pass-through: librdkafka properties given to every client (TLS, SASL,
//! tuning). A property's value may be given directly, or read at start-up from a file
//! (`KEY_file`) or an environment variable (`KEY_env`), so a password need not be written in
//! the config file or on the command line. Properties that Parley must set itself for
//! exactly-once to hold are refused.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::secret::{read_secret_env, read_secret_file, Secret, REDACTED};
use super::ConfigError;

const BROKERS: &str = "set it with `brokers` (--brokers, PARLEY_BROKERS)";
const AUTO_COMMIT: &str = "offsets are committed in the transaction that carries their \
     outputs; committing them any other way would lose or repeat messages (exactly-once)";
const ACKS: &str = "its producers are idempotent and need acks=all (the default)";

/// Properties Parley sets itself, and why a user may not: each one, set otherwise, would
/// silently break exactly-once, the consumer group or the `brokers` setting.
const OWNED: &[(&str, &str)] = &[
    ("bootstrap.servers", BROKERS),
    ("metadata.broker.list", BROKERS),
    (
        "group.id",
        "set it with `group_id` (--group-id, PARLEY_GROUP_ID); Parley's other consumers \
         derive their groups from it",
    ),
    (
        "group.instance.id",
        "static membership would keep a crashed instance's partitions from moving to the \
         others until its session ends, and would let a second instance with the same id \
         take the first one's place",
    ),
    (
        "client.id",
        "Parley names its clients after `transactional_id`; that is how a second instance \
         with the same id is found and refused",
    ),
    (
        "partition.assignment.strategy",
        "conversation state moves with its partitions through cooperative-sticky rebalances",
    ),
    (
        "session.timeout.ms",
        "set it with `scale.session_timeout_ms` (--session-timeout-ms)",
    ),
    (
        "transactional.id",
        "set it with `transactional_id` (--transactional-id, PARLEY_TRANSACTIONAL_ID)",
    ),
    (
        "isolation.level",
        "its consumers read committed records only; read_uncommitted would handle messages of \
         aborted transactions (exactly-once)",
    ),
    ("enable.auto.commit", AUTO_COMMIT),
    ("auto.commit.enable", AUTO_COMMIT),
    ("enable.auto.offset.store", AUTO_COMMIT),
    ("enable.idempotence", "the transactional producer needs it"),
    ("acks", ACKS),
    ("request.required.acks", ACKS),
    (
        "transaction.timeout.ms",
        "set it with `scale.transaction_timeout_ms` (--transaction-timeout-ms); it must stay \
         below the session timeout",
    ),
    (
        "auto.offset.reset",
        "a new consumer group must start at the beginning of its topics (earliest), or \
         messages would be skipped",
    ),
    (
        "enable.partition.eof",
        "its consumers do not expect end-of-partition events",
    ),
];

/// Why Parley refuses to take `name` from the pass-through, if it does.
pub fn refused(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    OWNED.iter().find(|(k, _)| *k == name).map(|(_, why)| *why)
}

/// Whether a librdkafka property holds a secret: its value is never printed (`--print-config`,
/// `Debug`, errors). Any name with "password", "secret", "passphrase" or "private" in it
/// counts, so new librdkafka properties are covered too.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "ssl.key.pem" | "sasl.oauthbearer.config")
        || ["password", "secret", "passphrase", "private"]
            .iter()
            .any(|w| name.contains(w))
}

/// How a `[kafka]` entry gives its property's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `KEY = value`
    Direct,
    /// `KEY_file = path`: the file's content (one trailing newline dropped).
    File,
    /// `KEY_env = VARIABLE`: the variable's value.
    Env,
}

/// The librdkafka property an entry sets, and how. librdkafka names use dots, never these
/// suffixes, so they cannot clash with a real property.
fn split(key: &str) -> (&str, Form) {
    if let Some(name) = key.strip_suffix("_file") {
        (name, Form::File)
    } else if let Some(name) = key.strip_suffix("_env") {
        (name, Form::Env)
    } else {
        (key, Form::Direct)
    }
}

/// The `[kafka]` table: the entries as given (by the file, then `--kafka` flags), and the
/// secrets read for the `_file` / `_env` entries by [`KafkaProperties::resolve_secrets`].
/// `Debug` and `Serialize` show the entries with every direct secret value `<redacted>`
/// (indirections as given: a path or a variable name is not a secret).
#[derive(Clone, Default, PartialEq)]
pub struct KafkaProperties {
    given: BTreeMap<String, String>,
    /// By librdkafka property name (without the suffix).
    resolved: BTreeMap<String, Secret>,
}

impl KafkaProperties {
    /// Sets an entry, replacing any other form of the same property (a `--kafka
    /// sasl.password_env=...` flag overrides the file's `sasl.password_file`).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let (name, _) = split(&key);
        for other in [
            name.to_string(),
            format!("{name}_file"),
            format!("{name}_env"),
        ] {
            self.given.remove(&other);
        }
        self.resolved.remove(name);
        self.given.insert(key, value.into());
    }

    /// An entry as given (for a `_file` entry: the path).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.given.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }

    /// The entries as `--print-config` and `Debug` show them.
    pub fn redacted(&self) -> impl Iterator<Item = (&str, &str)> {
        self.given.iter().map(|(k, v)| match split(k) {
            (_, Form::Direct) if is_secret(k) => (k.as_str(), REDACTED),
            _ => (k.as_str(), v.as_str()),
        })
    }

    /// Refuses the properties Parley owns, an entry given in two forms, and an empty path or
    /// variable name; every error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let error = |key: &str, message: String| {
            Err(ConfigError::Kafka {
                key: key.to_string(),
                message,
            })
        };
        for (key, value) in &self.given {
            let (name, form) = split(key);
            if name.trim().is_empty() {
                return error(key, "is not a librdkafka property".into());
            }
            if let Some(why) = refused(name) {
                return error(key, format!("Parley sets this property itself: {why}"));
            }
            let forms: Vec<String> = [
                name.to_string(),
                format!("{name}_file"),
                format!("{name}_env"),
            ]
            .into_iter()
            .filter(|k| self.given.contains_key(k))
            .collect();
            if forms.len() > 1 {
                return error(
                    key,
                    format!("is given as {}: keep one", forms.join(" and as ")),
                );
            }
            match form {
                Form::File if value.trim().is_empty() => return error(key, "names no file".into()),
                Form::Env if value.trim().is_empty() => {
                    return error(key, "names no environment variable".into())
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads every `_file` and `_env` entry now, so a missing file or variable stops start-up
    /// with an error naming it, before any client connects. The values are kept as
    /// [`Secret`]s, whatever the property (a value kept out of the config file is treated as
    /// one).
    pub fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        let mut resolved = BTreeMap::new();
        for (key, value) in &self.given {
            let setting = format!("[kafka] {key}");
            let secret = match split(key) {
                (_, Form::Direct) => continue,
                (_, Form::File) => read_secret_file(&setting, Path::new(value))?,
                (_, Form::Env) => read_secret_env(&setting, value)?,
            };
            resolved.insert(split(key).0.to_string(), secret);
        }
        self.resolved = resolved;
        Ok(())
    }

    /// The librdkafka properties with their values, secrets included: only for building a
    /// client (`kafka::client_config`). A `_file` / `_env` entry that `resolve_secrets` has not
    /// read is passed on under its own name, which librdkafka refuses ("No such configuration
    /// property"), so a client is never made silently without its credential.
    pub fn expose(&self) -> impl Iterator<Item = (&str, &str)> {
        self.given.iter().map(|(k, v)| match split(k) {
            (name, Form::File | Form::Env) => match self.resolved.get_key_value(name) {
                Some((name, secret)) => (name.as_str(), secret.expose()),
                None => (k.as_str(), v.as_str()),
            },
            (_, Form::Direct) => (k.as_str(), v.as_str()),
        })
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

impl Serialize for KafkaProperties {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.redacted())
    }
}

impl<'de> Deserialize<'de> for KafkaProperties {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let given = BTreeMap::<String, Scalar>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        Ok(Self {
            given,
            resolved: BTreeMap::new(),
        })
    }
}

/// A `[kafka]` value as written: librdkafka takes text, but `"linger.ms" = 5` or
/// `"enable.ssl.certificate.verification" = false` should work as well as their quoted forms.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(entries: &[(&str, &str)]) -> KafkaProperties {
        let mut p = KafkaProperties::default();
        for (k, v) in entries {
            p.given.insert(k.to_string(), v.to_string());
        }
        p
    }

    #[test]
    fn secrets_are_recognised_by_name() {
        for name in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "some.future.Secret.thing",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            "sasl.username",
            "security.protocol",
            "ssl.ca.location",
            "linger.ms",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }

    #[test]
    fn owned_properties_are_refused_with_the_key_and_why() {
        for key in [
            "group.id",
            "group.instance.id",
            "transactional.id",
            "isolation.level",
            "enable.auto.commit",
            "enable.auto.offset.store",
            "enable.idempotence",
            "transaction.timeout.ms",
            "bootstrap.servers",
            "auto.offset.reset",
            "enable.partition.eof",
            "Isolation.Level",
            "group.id_env",
        ] {
            let e = props(&[(key, "x")]).validate().unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("Parley sets"), "{e}");
        }
        props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("ssl.ca.location", "/etc/ca.pem"),
            ("linger.ms", "5"),
            ("sasl.password_file", "/run/secrets/kafka"),
        ])
        .validate()
        .unwrap();
    }

    #[test]
    fn one_property_in_two_forms_is_refused() {
        let e = props(&[("sasl.password", "a"), ("sasl.password_env", "B")])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sasl.password_env") && e.contains("keep one"),
            "{e}"
        );
        assert!(!e.contains("\"a\""), "{e}");
        let e = props(&[("sasl.password_file", " ")])
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("names no file"), "{e}");
    }

    #[test]
    fn a_flag_replaces_the_other_forms_of_its_property() {
        let mut p = props(&[("sasl.password_file", "/f"), ("sasl.username", "u")]);
        p.insert("sasl.password_env", "V");
        assert_eq!(p.get("sasl.password_file"), None);
        assert_eq!(p.get("sasl.password_env"), Some("V"));
        p.validate().unwrap();
    }

    #[test]
    fn indirections_are_read_and_exposed_under_the_property_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let mut p = props(&[
            ("sasl.password_file", file.to_str().unwrap()),
            ("ssl.key.password", "direct-value"),
            ("sasl.username", "parley"),
        ]);
        // Unread, the indirection goes to librdkafka under its own name, which it refuses.
        assert!(p.expose().any(|(k, _)| k == "sasl.password_file"));
        p.resolve_secrets().unwrap();
        let exposed: BTreeMap<&str, &str> = p.expose().collect();
        assert_eq!(
            exposed,
            BTreeMap::from([
                ("sasl.password", "from-the-file"),
                ("sasl.username", "parley"),
                ("ssl.key.password", "direct-value"),
            ])
        );
        let shown = format!("{p:?}");
        assert!(!shown.contains("from-the-file") && !shown.contains("direct-value"));
        assert!(
            shown.contains("\"ssl.key.password\": \"<redacted>\""),
            "{shown}"
        );
        assert!(shown.contains(file.to_str().unwrap()), "{shown}");
    }

    #[test]
    fn a_missing_variable_stops_resolution_naming_it() {
        let mut p = props(&[("sasl.password_env", "PARLEY_TEST_NO_SUCH_VARIABLE")]);
        let e = p.resolve_secrets().unwrap_err().to_string();
        assert!(
            e.contains("PARLEY_TEST_NO_SUCH_VARIABLE") && e.contains("sasl.password_env"),
            "{e}"
        );
    }

    #[test]
    fn numbers_and_booleans_are_taken_as_text() {
        #[derive(Deserialize)]
        struct T {
            kafka: KafkaProperties,
        }
        let t: T = toml::from_str(
            "[kafka]\n\"linger.ms\" = 5\n\"enable.ssl.certificate.verification\" = false\n",
        )
        .unwrap();
        assert_eq!(t.kafka.get("linger.ms"), Some("5"));
        assert_eq!(
            t.kafka.get("enable.ssl.certificate.verification"),
            Some("false")
        );
    }
}
