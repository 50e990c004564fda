//! Logs: `tracing` events to standard error, filtered by `PARLEY_LOG` (or `RUST_LOG`), as text
//! for people or as JSON lines for a log pipeline.
//!
//! What goes where: lifecycle (start, stop, topics created) at `info`, problems that are retried
//! or skipped at `warn`, what stops the service at `error`. Customer message text is never
//! logged at `info` or above, only ids: logs are kept and shipped more widely than the topics.

use std::io::IsTerminal;

use tracing_subscriber::filter::ParseError;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{var}: invalid log filter {value:?}: {source}")]
    Filter {
        var: &'static str,
        value: String,
        source: ParseError,
    },
    #[error("a log subscriber is already installed")]
    AlreadyInstalled,
}

/// The filter used when neither variable is set. tantivy logs every commit of the word
/// indexes at `info` (several lines per applied batch of articles or products), which would
/// bury Parley's own events.
pub const DEFAULT_FILTER: &str = "info,tantivy=warn";

/// Installs the global subscriber; call once, before anything logs.
pub fn init(format: LogFormat) -> Result<(), TelemetryError> {
    let filter = env_filter(
        std::env::var("PARLEY_LOG").ok(),
        std::env::var("RUST_LOG").ok(),
    )?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        // Colours only for a person at a terminal, never into a file or a pipe.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
}

/// The filter from `PARLEY_LOG`, else `RUST_LOG`, else [`DEFAULT_FILTER`]; an empty variable
/// counts as unset. A filter that does not parse is an error rather than silently ignored, so
/// a typo cannot hide the logs someone asked for.
fn env_filter(
    parley_log: Option<String>,
    rust_log: Option<String>,
) -> Result<EnvFilter, TelemetryError> {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (var, value) = match (set(parley_log), set(rust_log)) {
        (Some(v), _) => ("PARLEY_LOG", v),
        (None, Some(v)) => ("RUST_LOG", v),
        (None, None) => return Ok(EnvFilter::new(DEFAULT_FILTER)),
    };
    EnvFilter::try_new(&value).map_err(|source| TelemetryError::Filter { var, value, source })
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`), for logs and errors.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(f: Result<EnvFilter, TelemetryError>) -> String {
        f.expect("a valid filter").to_string()
    }

    #[test]
    fn parley_log_wins_then_rust_log_then_the_default() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(shown(env_filter(s("debug"), s("warn"))), "debug");
        assert_eq!(shown(env_filter(None, s("warn"))), "warn");
        assert_eq!(shown(env_filter(s(" "), s("warn"))), "warn");
        let default = shown(env_filter(None, None));
        assert!(
            default.contains("tantivy=warn") && default.split(',').any(|d| d == "info"),
            "{default}"
        );
        // Directives are kept, in the filter's own order.
        let both = shown(env_filter(s("parley=debug,rdkafka=warn"), None));
        assert!(
            both.contains("parley=debug") && both.contains("rdkafka=warn"),
            "{both}"
        );
    }

    #[test]
    fn a_bad_filter_is_an_error_naming_its_variable() {
        let e = env_filter(Some("parley=loud".into()), None).unwrap_err();
        assert!(
            e.to_string().starts_with("PARLEY_LOG: invalid log filter"),
            "{e}"
        );
    }
}
