//! No secret given to Parley (in the config file, through an environment variable, in a
//! secret file, or as the identity signing key) shows in `--print-config`, in the logs or in
//! an error message; and the `[kafka]` pass-through refuses the properties Parley owns.
//! No broker is needed: the service is started against an address where none listens.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every secret below contains this, so a partial leak is caught too.
const MARK: &str = "sEcReT";
const IN_CONFIG: &str = "sEcReT-in-config-file-7f3a";
const IN_ENV: &str = "sEcReT-in-env-variable-91bc";
const IN_FILE: &str = "sEcReT-in-secret-file-c2d4";
const KEY_IN_FILE: &str = "sEcReT-identity-key-file-5e6f";
const KEY_IN_ENV: &str = "sEcReT-identity-key-env-0a1b";

const PASSWORD_VAR: &str = "PARLEY_TEST_KAFKA_PASSWORD";
const KEY_VAR: &str = "PARLEY_TEST_GATEWAY_KEY";

/// Where nothing listens: the service fails to reach it and stops.
const NO_BROKER: &str = "127.0.0.1:1";

fn parley(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // What the caller's environment might set would change what is tested.
    for var in [
        "PARLEY_CONFIG",
        "PARLEY_BROKERS",
        "PARLEY_MODEL",
        "PARLEY_STATE_DIR",
        "PARLEY_METRICS_ADDR",
        "PARLEY_LOG",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env(PASSWORD_VAR, IN_ENV).env(KEY_VAR, KEY_IN_ENV);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Runs to the end, or fails the test after `limit`.
fn finish(cmd: Command, limit: Duration) -> Output {
    let (out, ended) = run_for(cmd, limit);
    assert!(
        ended,
        "still running after {limit:?}; stderr:\n{}",
        text(&out.stderr)
    );
    out
}

/// Runs for at most `limit`, then kills it; says whether it ended by itself.
fn run_for(mut cmd: Command, limit: Duration) -> (Output, bool) {
    let mut child = cmd.spawn().unwrap();
    // Read the pipes while waiting, so a chatty child cannot block on a full pipe.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            buf
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let start = Instant::now();
    let (status, ended) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (status, true);
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            break (child.wait().unwrap(), false);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, ended)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_secret(what: &str, shown: &str) {
    for secret in [IN_CONFIG, IN_ENV, IN_FILE, KEY_IN_FILE, KEY_IN_ENV, MARK] {
        assert!(
            !shown.contains(secret),
            "{what} shows a secret ({secret}):\n{shown}"
        );
    }
}

/// A temporary directory with the secret files and two config files:
/// `direct.toml` (a password written in it, the signing key in a file) and `indirect.toml`
/// (the password in a file, the signing key in a variable).
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let setup = Self { dir };
        std::fs::write(setup.path("kafka-password"), format!("{IN_FILE}\n")).unwrap();
        std::fs::write(setup.path("gateway-key"), format!("{KEY_IN_FILE}\n")).unwrap();
        let sasl = "\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
                    \"sasl.mechanisms\" = \"PLAIN\"\n\
                    \"sasl.username\" = \"parley\"\n";
        std::fs::write(
            setup.path("direct.toml"),
            format!(
                "{}[identity]\nmode = \"signed\"\nkey_file = {:?}\n[kafka]\n{sasl}\
                 \"sasl.password\" = \"{IN_CONFIG}\"\n",
                setup.common("direct"),
                setup.path("gateway-key"),
            ),
        )
        .unwrap();
        std::fs::write(
            setup.path("indirect.toml"),
            format!(
                "{}[identity]\nmode = \"signed\"\nkey_env = \"{KEY_VAR}\"\n[kafka]\n{sasl}\
                 \"sasl.password_file\" = {:?}\n",
                setup.common("indirect"),
                setup.path("kafka-password"),
            ),
        )
        .unwrap();
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// The top-level settings: no broker, a port of the system's choosing, own state.
    fn common(&self, name: &str) -> String {
        format!(
            "brokers = \"{NO_BROKER}\"\nmetrics_addr = \"127.0.0.1:0\"\nstate_dir = {:?}\n",
            self.path(&format!("state-{name}"))
        )
    }
}

fn print_config(args: &[&str]) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push("--print-config");
    let out = finish(parley(&all, &[]), Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert_no_secret("--print-config", &shown);
    assert_no_secret("--print-config's stderr", &text(&out.stderr));
    shown
}

#[test]
fn print_config_redacts_secrets_and_shows_indirections_as_given() {
    let s = Setup::new();
    let direct = print_config(&["--config", &s.arg("direct.toml")]);
    assert!(
        direct.contains("\"sasl.password\" = \"<redacted>\""),
        "{direct}"
    );
    assert!(
        direct.contains("\"sasl.username\" = \"parley\""),
        "{direct}"
    );
    assert!(direct.contains(&s.arg("gateway-key")), "{direct}");

    let indirect = print_config(&[
        "--config",
        &s.arg("indirect.toml"),
        "--kafka",
        "ssl.key.password_env=PARLEY_TEST_KAFKA_PASSWORD",
    ]);
    let file_line = format!("\"sasl.password_file\" = {:?}", s.arg("kafka-password"));
    assert!(indirect.contains(&file_line), "{indirect}");
    assert!(
        indirect.contains("\"ssl.key.password_env\" = \"PARLEY_TEST_KAFKA_PASSWORD\""),
        "{indirect}"
    );
    assert!(
        indirect.contains(&format!("key_env = \"{KEY_VAR}\"")),
        "{indirect}"
    );

    // A flag replaces the file's form of the same property.
    let flagged = print_config(&[
        "--config",
        &s.arg("indirect.toml"),
        "--kafka",
        &format!("sasl.password_env={PASSWORD_VAR}"),
    ]);
    assert!(
        flagged.contains(&format!("\"sasl.password_env\" = \"{PASSWORD_VAR}\"")),
        "{flagged}"
    );
    assert!(!flagged.contains("sasl.password_file"), "{flagged}");

    // A password on the command line works (with a warning) and is not printed back.
    let out = finish(
        parley(
            &[
                "run",
                "--kafka",
                &format!("sasl.password={IN_CONFIG}"),
                "--print-config",
            ],
            &[],
        ),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_secret("--print-config", &text(&out.stdout));
    assert_no_secret("stderr", &text(&out.stderr));
    assert!(text(&out.stdout).contains("\"sasl.password\" = \"<redacted>\""));
}

/// Environment variables for one run.
type Envs = &'static [(&'static str, &'static str)];

/// The service, started against no broker, stops with a clear error; no secret is in
/// anything it wrote, at the default log level and at debug, librdkafka's debug log included.
#[test]
fn a_failed_start_logs_no_secret() {
    let s = Setup::new();
    let no_debug: Envs = &[];
    let runs: Vec<(Vec<String>, Envs)> = vec![
        (vec!["--config".into(), s.arg("direct.toml")], no_debug),
        (
            vec!["--config".into(), s.arg("indirect.toml")],
            &[("PARLEY_LOG", "debug")][..],
        ),
        (
            vec![
                "--brokers".into(),
                NO_BROKER.into(),
                "--metrics-addr".into(),
                "127.0.0.1:0".into(),
                "--state-dir".into(),
                s.arg("state-flags"),
                "--kafka".into(),
                "security.protocol=SASL_PLAINTEXT".into(),
                "--kafka".into(),
                "sasl.mechanisms=PLAIN".into(),
                "--kafka".into(),
                "sasl.username=parley".into(),
                "--kafka".into(),
                format!("sasl.password_env={PASSWORD_VAR}"),
                "--kafka".into(),
                "debug=all".into(),
            ],
            &[("RUST_LOG", "debug")][..],
        ),
    ];
    // Side by side: each waits for the broker it cannot reach.
    let handles: Vec<_> = runs
        .into_iter()
        .map(|(args, envs)| {
            let mut all = vec!["run".to_string()];
            all.extend(args);
            let all_refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let cmd = parley(&all_refs, envs);
            let what = all.join(" ");
            std::thread::spawn(move || (what, finish(cmd, Duration::from_secs(240))))
        })
        .collect();
    // Past the topics, the clients log what librdkafka says (at debug, its configuration
    // too); the service would retry for minutes, so it is stopped once it has logged a while.
    let chatty = {
        let config = s.path("chatty.toml");
        std::fs::write(
            &config,
            std::fs::read_to_string(s.path("indirect.toml"))
                .unwrap()
                .replace("state-indirect", "state-chatty")
                .replace("[identity]", "[topics]\ncreate = false\n[identity]"),
        )
        .unwrap();
        let args = [
            "run",
            "--config",
            config.to_str().unwrap(),
            "--kafka",
            "debug=generic,broker,security,conf",
            "--kafka",
            &format!("ssl.key.password={IN_CONFIG}"),
        ];
        let cmd = parley(&args, &[("PARLEY_LOG", "debug")]);
        std::thread::spawn(move || run_for(cmd, Duration::from_secs(60)).0)
    };
    for h in handles {
        let (what, out) = h.join().unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{what}:\n{stderr}");
        assert!(
            stderr.contains(NO_BROKER),
            "{what}: the error names the brokers:\n{stderr}"
        );
        assert_no_secret(&format!("stderr of parley {what}"), &stderr);
        assert_no_secret(&format!("stdout of parley {what}"), &text(&out.stdout));
    }
    let out = chatty.join().unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("librdkafka"),
        "librdkafka's debug log is in the logs:\n{stderr}"
    );
    assert_no_secret("the debug log", &stderr);
}

fn failing(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = finish(parley(args, envs), Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail:\n{stderr}");
    assert_no_secret(&format!("the error of {args:?}"), &stderr);
    assert_no_secret(&format!("the output of {args:?}"), &text(&out.stdout));
    stderr
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_malformed_config_file_is_reported_without_its_content() {
    let s = Setup::new();
    let cases = [
        // Unterminated string: a syntax error on the secret's line.
        (
            "unterminated.toml",
            format!("[kafka]\n\"sasl.password\" = \"{IN_CONFIG}\n"),
            "line 2",
        ),
        // A value of the wrong type, which serde would quote.
        (
            "wrong-type.toml",
            format!("[kafka]\n\"sasl.password\" = [\"{IN_CONFIG}\"]\n"),
            "sasl.password",
        ),
        (
            "wrong-field.toml",
            format!("brokers = \"k:9092\"\n[batching]\nmax_batch_size = \"{IN_CONFIG}\"\n"),
            "batching.max_batch_size",
        ),
        // The secret pasted where a key belongs.
        ("stray.toml", format!("[kafka]\n{IN_CONFIG}\n"), "line 2"),
    ];
    for (name, content, named) in cases {
        let path = write(s.dir.path(), name, &content);
        let stderr = failing(&["run", "--config", &path, "--print-config"], &[]);
        assert!(stderr.contains(name) && stderr.contains(named), "{stderr}");
    }
}

#[test]
fn missing_secret_sources_are_named_and_librdkafka_errors_redacted() {
    let s = Setup::new();
    let missing = s.arg("no-such-file");
    let stderr = failing(
        &[
            "run",
            "--kafka",
            &format!("sasl.password_file={missing}"),
            "--print-config",
        ],
        &[],
    );
    assert!(stderr.contains(&missing) && stderr.contains("sasl.password_file"));
    let stderr = failing(
        &[
            "run",
            "--kafka",
            "sasl.password_env=PARLEY_TEST_NO_SUCH_VARIABLE",
            "--print-config",
        ],
        &[],
    );
    assert!(stderr.contains("PARLEY_TEST_NO_SUCH_VARIABLE") && stderr.contains("not set"));

    // librdkafka refuses an unknown property, naming it, before anything connects; its
    // message would quote a value, which for a secret is left out.
    let stderr = failing(&["run", "--kafka", "sasl.pasword=x", "--print-config"], &[]);
    assert!(stderr.contains("sasl.pasword"), "{stderr}");
    let stderr = failing(
        &[
            "run",
            "--kafka",
            &format!("no.such.secret={IN_CONFIG}"),
            "--print-config",
        ],
        &[],
    );
    assert!(stderr.contains("no.such.secret"), "{stderr}");

    // A flag that is not KEY=VALUE is not repeated (it may be a misplaced password).
    let stderr = failing(&["run", "--kafka", IN_CONFIG, "--print-config"], &[]);
    assert!(stderr.contains("KEY=VALUE"), "{stderr}");
}

#[test]
fn the_pass_through_refuses_what_parley_owns() {
    let s = Setup::new();
    let stderr = failing(
        &[
            "run",
            "--kafka",
            "isolation.level=read_uncommitted",
            "--print-config",
        ],
        &[],
    );
    assert!(
        stderr.contains("isolation.level") && stderr.contains("read_uncommitted would"),
        "{stderr}"
    );
    let path = write(
        s.dir.path(),
        "owned.toml",
        "[kafka]\n\"transactional.id\" = \"mine\"\n",
    );
    let stderr = failing(&["run", "--config", &path, "--print-config"], &[]);
    assert!(
        stderr.contains("transactional.id") && stderr.contains("transactional_id"),
        "{stderr}"
    );
    for key in ["group.id", "enable.auto.commit", "bootstrap.servers"] {
        let stderr = failing(
            &["run", "--kafka", &format!("{key}=x"), "--print-config"],
            &[],
        );
        assert!(stderr.contains(key), "{stderr}");
    }
}
