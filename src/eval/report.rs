//! A confusion-matrix picture (SVG) and an HTML page around it.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{ConfusionMatrix, Report};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the matrix with rows normalised by support, so each row reads as "where did this
/// intent's messages go"; cells show raw counts.
pub fn confusion_svg(m: &ConfusionMatrix) -> String {
    let n = m.labels.len();
    let cell = 24usize;
    let label_w = 8 * m.labels.iter().map(|l| l.len()).max().unwrap_or(4) + 16;
    let (left, top) = (label_w, label_w);
    let (w, h) = (left + n * cell + 20, top + n * cell + 40);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    for (i, label) in m.labels.iter().enumerate() {
        let y = top + i * cell + cell / 2 + 4;
        let _ = write!(
            s,
            r#"<text x="{}" y="{y}" text-anchor="end">{}</text>"#,
            left - 6,
            esc(label)
        );
        let x = left + i * cell + cell / 2 + 4;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="start" transform="rotate(-90 {x} {})">{}</text>"#,
            top - 6,
            top - 6,
            esc(label)
        );
    }
    for (t, row) in m.counts.iter().enumerate() {
        let support: usize = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let share = if support > 0 {
                count as f64 / support as f64
            } else {
                0.0
            };
            // Diagonal in blue, errors in red, so mistakes stand out.
            let (r, g, b) = if t == p {
                (
                    255.0 - 200.0 * share,
                    255.0 - 130.0 * share,
                    255.0 - 40.0 * share,
                )
            } else {
                (
                    255.0 - 25.0 * share.sqrt(),
                    255.0 - 200.0 * share.sqrt(),
                    255.0 - 200.0 * share.sqrt(),
                )
            };
            let (x, y) = (left + p * cell, top + t * cell);
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({},{},{})" stroke="#ddd"><title>{} -> {}: {count}</title></rect>"##,
                r as u8,
                g as u8,
                b as u8,
                esc(&m.labels[t]),
                esc(&m.labels[p])
            );
            if count > 0 {
                let fill = if t == p && share > 0.5 {
                    "white"
                } else {
                    "black"
                };
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="middle" font-size="9" fill="{fill}">{count}</text>"#,
                    x + cell / 2,
                    y + cell / 2 + 3
                );
            }
        }
    }
    let _ = write!(
        s,
        r#"<text x="{left}" y="{}">rows: true intent · columns: predicted intent</text></svg>"#,
        top + n * cell + 25
    );
    s
}

/// Writes `confusion.svg`, `report.json` and `index.html` into `dir`; returns the HTML path.
pub fn write_report(
    dir: &Path,
    title: &str,
    matrix: &ConfusionMatrix,
    report: &Report,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let svg = confusion_svg(matrix);
    std::fs::write(dir.join("confusion.svg"), &svg)?;
    let json = serde_json::json!({ "report": report, "confusion_matrix": matrix });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    let mut rows = String::new();
    for m in &report.per_label {
        let weak = if m.f1 < 0.9 { " class=\"weak\"" } else { "" };
        let _ = write!(
            rows,
            "<tr{weak}><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            esc(&m.label),
            m.precision,
            m.recall,
            m.f1,
            m.support
        );
    }
    let mut confusions = String::new();
    for c in report.confusions.iter().take(15) {
        let _ = write!(
            confusions,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.true_label),
            esc(&c.predicted),
            c.count
        );
    }
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.weak {{ background: #fde8e8; }}
.kpi span {{ display: inline-block; margin-right: 2em; font-size: 1.3em; }}
</style></head><body>
<h1>{title}</h1>
<p class="kpi"><span>accuracy <b>{acc:.2}%</b></span><span>macro F1 <b>{f1:.4}</b></span><span>examples <b>{total}</b></span></p>
<h2>Confusion matrix</h2>
<img src="confusion.svg" alt="confusion matrix">
<h2>Per intent</h2>
<table><tr><th>intent</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>
<h2>Most frequent confusions</h2>
<table><tr><th>true</th><th>predicted</th><th>count</th></tr>{confusions}</table>
</body></html>
"#,
        title = esc(title),
        acc = report.accuracy * 100.0,
        f1 = report.macro_f1,
        total = report.total,
    );
    let path = dir.join("index.html");
    std::fs::write(&path, html)?;
    Ok(path)
}
