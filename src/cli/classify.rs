use std::io::{BufRead, Write};
use std::process::ExitCode;

use serde::Serialize;

use super::{io_err, CliError, ModelArgs};
use crate::model::Classifier;
use crate::wire::Prediction;

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Texts per forward pass when reading standard input.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// The text to classify; without it, lines are read from standard input.
    #[arg(allow_hyphen_values = true)]
    pub text: Vec<String>,
}

/// One output line: a prediction, or the reason the input line was rejected.
#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum OutputLine {
    Prediction {
        text: String,
        intent: String,
        confidence: f64,
        top: Vec<(String, f64)>,
    },
    Error {
        line: usize,
        error: String,
    },
}

fn round4(x: f32) -> f64 {
    (x as f64 * 10_000.0).round() / 10_000.0
}

impl OutputLine {
    pub fn prediction(text: String, p: Prediction) -> Self {
        OutputLine::Prediction {
            text,
            intent: p.intent,
            confidence: round4(p.confidence),
            top: p.top.into_iter().map(|(l, x)| (l, round4(x))).collect(),
        }
    }
}

/// Turns one raw input line into the text to classify: a JSON object with a string `text`
/// field, or else the line itself as plain text.
pub fn parse_line(raw: &[u8]) -> Result<String, String> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let line = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "not valid UTF-8 (invalid byte at position {})",
            e.valid_up_to()
        )
    })?;
    // A line that looks like a JSON object must be one; anything else is plain text, so
    // "{urgent} where is my order" is still a message.
    let trimmed = line.trim();
    let text = if trimmed.starts_with('{') && trimmed.ends_with('}') {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        match v.get("text") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err("field \"text\" is not a string".into()),
            None => return Err("JSON object has no \"text\" field".into()),
        }
    } else {
        line.to_string()
    };
    if text.trim().is_empty() {
        return Err("empty text".into());
    }
    Ok(text)
}

/// Classifies a run of parsed lines in one batch and returns output lines in input order.
/// A batch the model cannot run is reported line by line; the caller goes on with the next.
fn classify_pending(
    classifier: &Classifier,
    pending: Vec<(usize, Result<String, String>)>,
) -> Vec<OutputLine> {
    let texts: Vec<&str> = pending
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(String::as_str))
        .collect();
    let preds = if texts.is_empty() {
        Ok(Vec::new())
    } else {
        classifier.classify(&texts)
    };
    let (mut preds, failure) = match preds {
        Ok(p) => (p.into_iter(), None),
        Err(e) => (
            Vec::new().into_iter(),
            Some(format!("classification failed: {e}")),
        ),
    };
    pending
        .into_iter()
        .map(|(line, r)| match (r, &failure) {
            (Ok(text), None) => {
                OutputLine::prediction(text, preds.next().expect("one prediction per text"))
            }
            (Ok(_), Some(error)) => OutputLine::Error {
                line,
                error: error.clone(),
            },
            (Err(error), _) => OutputLine::Error { line, error },
        })
        .collect()
}

pub fn run(a: ClassifyArgs) -> Result<ExitCode, CliError> {
    let classifier = a.model.load()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let write = |out: &mut std::io::BufWriter<_>, l: &OutputLine| -> Result<(), CliError> {
        let json = serde_json::to_string(l).expect("output serialises");
        writeln!(out, "{json}").map_err(io_err("writing to standard output"))
    };
    if !a.text.is_empty() {
        let text = a.text.join(" ");
        if text.trim().is_empty() {
            return Err(CliError::Usage("empty text: nothing to classify".into()));
        }
        let p = classifier.classify(&[text.as_str()])?.remove(0);
        write(&mut out, &OutputLine::prediction(text, p))?;
        out.flush().map_err(io_err("writing to standard output"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let (mut pending, mut rejected, mut line_no) = (Vec::new(), 0usize, 0usize);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(io_err("reading standard input"))?;
        if n > 0 {
            line_no += 1;
            let raw = buf.strip_suffix(b"\n").unwrap_or(&buf);
            pending.push((line_no, parse_line(raw)));
        }
        if (n == 0 && !pending.is_empty()) || pending.len() >= a.batch_size.max(1) {
            for l in classify_pending(&classifier, std::mem::take(&mut pending)) {
                if let OutputLine::Error { line, error } = &l {
                    rejected += 1;
                    tracing::warn!("line {line}: {error}");
                }
                write(&mut out, &l)?;
            }
            out.flush().map_err(io_err("writing to standard output"))?;
        }
        if n == 0 {
            break;
        }
    }
    if rejected > 0 {
        tracing::warn!("{rejected} of {line_no} input lines rejected");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_json_or_plain_text() {
        assert_eq!(
            parse_line(br#"{"text": "where is my parcel", "id": 3}"#).unwrap(),
            "where is my parcel"
        );
        assert_eq!(parse_line(b"cancel my order\r").unwrap(), "cancel my order");
        assert_eq!(parse_line(b"   ").unwrap_err(), "empty text");
        assert_eq!(parse_line(br#"{"text": "  "}"#).unwrap_err(), "empty text");
        assert!(parse_line(b"caf\xe9 au lait")
            .unwrap_err()
            .contains("not valid UTF-8"));
        assert!(parse_line(br#"{"msg": "hi"}"#)
            .unwrap_err()
            .contains("no \"text\""));
        assert!(parse_line(br#"{"text": 5}"#)
            .unwrap_err()
            .contains("not a string"));
        assert!(parse_line(br#"{"text": "x",}"#)
            .unwrap_err()
            .contains("invalid JSON"));
        assert_eq!(
            parse_line(b"{urgent} where is my order").unwrap(),
            "{urgent} where is my order"
        );
    }

    #[test]
    fn output_lines_have_the_documented_shape() {
        let p = Prediction {
            intent: "track_order".into(),
            confidence: 0.987_654,
            top: vec![
                ("track_order".into(), 0.987_654),
                ("track_refund".into(), 0.01),
            ],
        };
        let json = serde_json::to_value(OutputLine::prediction("where is it".into(), p)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"text": "where is it", "intent": "track_order", "confidence": 0.9877,
                               "top": [["track_order", 0.9877], ["track_refund", 0.01]]})
        );
        let e = serde_json::to_value(OutputLine::Error {
            line: 2,
            error: "empty text".into(),
        })
        .unwrap();
        assert_eq!(e, serde_json::json!({"line": 2, "error": "empty text"}));
    }
}
