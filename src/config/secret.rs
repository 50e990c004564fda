//! Secret values (passwords, keys) and where they come from: a file (a mounted secret) or an
//! environment variable, so they need not be written in the config file or on the command
//! line, where `ps`, shell history and `--print-config` would show them.

use std::fmt;
use std::path::Path;

use super::ConfigError;

/// What `--print-config`, `Debug` and `Display` show instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// A secret value. `Debug`, `Display` and `Serialize` print `<redacted>`, so a secret held in
/// a struct cannot reach a log line or an error message by accident; only [`Secret::expose`]
/// (and [`Secret::expose_bytes`]) give the value, at the one place that hands it to a client
/// or a MAC.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only to hand it to what needs it (librdkafka, an HMAC).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret's bytes (UTF-8), e.g. as an HMAC key.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Reads the secret in `path` for `setting` (named in errors, with the file; never the
/// content). One trailing newline is dropped, since editors and `echo` add one; an empty
/// secret is an error (an empty password or key is a mistake, not a choice).
pub fn read_secret_file(setting: &str, path: &Path) -> Result<Secret, ConfigError> {
    let problem = |problem: String| ConfigError::SecretFile {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| problem(format!("cannot be read: {e}")))?;
    // The UTF-8 error would say at which byte; that is harmless, but a plain sentence is as
    // useful and surely quotes nothing.
    let mut text = String::from_utf8(bytes).map_err(|_| problem("is not UTF-8 text".into()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(problem("is empty".into()));
    }
    Ok(Secret(text))
}

/// Reads the secret in environment variable `var` for `setting` (named in errors, with the
/// variable; never the value). The value is taken as it is; an empty one is an error.
pub fn read_secret_env(setting: &str, var: &str) -> Result<Secret, ConfigError> {
    let problem = |problem: &'static str| ConfigError::SecretEnv {
        setting: setting.to_string(),
        var: var.to_string(),
        problem,
    };
    match std::env::var(var) {
        Ok(v) if v.is_empty() => Err(problem("is empty")),
        Ok(v) => Ok(Secret(v)),
        Err(std::env::VarError::NotPresent) => Err(problem("is not set")),
        Err(std::env::VarError::NotUnicode(_)) => Err(problem("is not valid UTF-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_redacted_everywhere() {
        let s = Secret::new("hunter2");
        assert_eq!(
            format!("{s:?} {s} {s:#?}"),
            "<redacted> <redacted> <redacted>"
        );
        assert_eq!(
            toml::to_string(&std::collections::BTreeMap::from([("k", s.clone())])).unwrap(),
            "k = \"<redacted>\"\n"
        );
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s.expose_bytes(), b"hunter2");
    }

    #[test]
    fn a_file_loses_one_trailing_newline_and_errors_name_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(read_secret_file("x", &path).unwrap().expose(), "s3cret");
        std::fs::write(&path, "s3cret\n\n").unwrap();
        assert_eq!(read_secret_file("x", &path).unwrap().expose(), "s3cret\n");
        std::fs::write(&path, "\n").unwrap();
        let e = read_secret_file("sasl.password_file", &path).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        std::fs::write(&path, b"s3cret\xff").unwrap();
        let e = read_secret_file("sasl.password_file", &path).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("not UTF-8") && text.contains("sasl.password_file"));
        assert!(!text.contains("s3cret"), "{text}");
        let e = read_secret_file("k", &dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = read_secret_env("sasl.password_env", "PARLEY_TEST_SURELY_UNSET_VAR").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("PARLEY_TEST_SURELY_UNSET_VAR") && text.contains("is not set"));
    }
}
