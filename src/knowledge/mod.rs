//! The knowledge base in `kb/`: store policies, an answer per intent and the reply templates
//! the dialogue fills in. Loaded and checked once at start-up, so a broken placeholder or a
//! missing answer stops the service with the file and key named, not a customer mid-chat.

mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use template::{Template, Vars};

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("knowledge base {path}: cannot read: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("knowledge base {path}: not valid YAML for this file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("knowledge base {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Names of the templates the dialogue uses; each must be in `templates.yaml`.
pub const REQUIRED_TEMPLATES: &[&str] = &[
    "clarify",
    "escalated",
    "already_escalated",
    "queued",
    "handed_back",
    "ask_order_number",
    "ask_order_number_again",
    "offer_open_order",
    "order_not_found",
    "order_needs_sign_in",
    "status_placed",
    "status_processing",
    "status_shipped",
    "status_delivered",
    "status_cancelled",
    "status_returned",
    "status_refunded",
    "confirm_cancel",
    "cancel_requested",
    "cancel_too_late",
    "cancel_not_possible",
    "ask_new_address",
    "confirm_address_change",
    "address_change_requested",
    "address_change_too_late",
    "confirm_refund",
    "refund_requested",
    "refund_not_delivered",
    "refund_outside_window",
    "refund_already",
    "track_refund_status",
    "invoice_for_order",
    "declined",
    "confirm_yes_no",
    "pending_expired",
    "clarify_between",
    "confirm_return",
    "return_requested",
    "confirm_exchange",
    "exchange_requested",
    "confirm_damaged",
    "damaged_requested",
    "damaged_outside_window",
    "return_not_delivered",
    "return_outside_window",
    "return_already",
    "delivered_missing",
    "not_delivered_yet",
    "product_not_found",
    "kind_nearest",
    "greeting",
    "thanks",
    "goodbye",
    "buy_product",
    "buy_product_sold_out",
    "product_detail_unknown",
    "article_detail_unknown",
    "offer_person",
    "person_not_wanted",
];

/// Placeholders the dialogue fills at run time; `policy.*` ones are filled at load time.
pub const RUNTIME_VARS: &[&str] = &[
    "order.order_id",
    "order.status",
    "order.carrier",
    "order.tracking_number",
    "order.estimated_delivery",
    "order.delivered_at",
    "order.total",
    "order.items",
    "order.summary",
    "order.address",
    "order.delivery_note",
    "order_ref",
    "address",
    "first",
    "second",
    "product.name",
    "product.page",
    "article.title",
    "article.page",
    "asked",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswersFile {
    answers: BTreeMap<String, String>,
    /// What each intent asks for, in words that follow "Do you want to": the dialogue names
    /// two of them when it is not sure which one the customer means.
    descriptions: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplatesFile {
    templates: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoliciesFile {
    policies: BTreeMap<String, serde_yaml::Value>,
}

/// The loaded, checked knowledge base.
#[derive(Debug, Clone)]
pub struct Knowledge {
    answers: HashMap<String, Template>,
    descriptions: HashMap<String, String>,
    templates: HashMap<String, Template>,
    refund_window_days: i64,
    return_window_days: i64,
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, KnowledgeError> {
    let text = std::fs::read_to_string(path).map_err(|cause| KnowledgeError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    serde_yaml::from_str(&text).map_err(|e| KnowledgeError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn policy_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Sequence(items) => {
            let parts: Option<Vec<String>> = items.iter().map(policy_text).collect();
            parts.map(|p| p.join(", "))
        }
        _ => None,
    }
}

impl Knowledge {
    /// Loads `policies.yaml`, `answers.yaml` and `templates.yaml` from `dir`, and checks that
    /// every intent in `intents` (bar `oos_label`) has an answer.
    pub fn load(dir: &Path, intents: &[String], oos_label: &str) -> Result<Self, KnowledgeError> {
        if !dir.is_dir() {
            return Err(KnowledgeError::Invalid {
                path: dir.to_path_buf(),
                message: "is not a directory (pass --kb DIR or set PARLEY_KB)".into(),
            });
        }
        let policies_path = dir.join("policies.yaml");
        let policies: PoliciesFile = read(&policies_path)?;
        let mut policy = BTreeMap::new();
        for (key, value) in &policies.policies {
            let text = policy_text(value).ok_or_else(|| KnowledgeError::Invalid {
                path: policies_path.clone(),
                message: format!("policy `{key}` must be a text, a number or a list of them"),
            })?;
            policy.insert(format!("policy.{key}"), text);
        }
        let days = |key: &str| {
            policies
                .policies
                .get(key)
                .and_then(|v| v.as_i64())
                .filter(|d| *d >= 0)
                .ok_or_else(|| KnowledgeError::Invalid {
                    path: policies_path.clone(),
                    message: format!("policy `{key}` must be a whole number of days"),
                })
        };
        let refund_window_days = days("refund_window_days")?;
        // Older knowledge bases have one window for both.
        let return_window_days = if policies.policies.contains_key("return_window_days") {
            days("return_window_days")?
        } else {
            refund_window_days
        };

        let runtime: BTreeSet<&str> = RUNTIME_VARS.iter().copied().collect();
        let compile = |path: &Path, key: &str, text: &str| {
            Template::compile(text, &policy, &runtime).map_err(|message| KnowledgeError::Invalid {
                path: path.to_path_buf(),
                message: format!("`{key}`: {message}"),
            })
        };

        let answers_path = dir.join("answers.yaml");
        let answers_file: AnswersFile = read(&answers_path)?;
        let mut answers = HashMap::new();
        for (intent, text) in &answers_file.answers {
            answers.insert(intent.clone(), compile(&answers_path, intent, text)?);
        }
        for (what, known) in [
            ("answer", answers.keys().collect::<BTreeSet<_>>()),
            ("description", answers_file.descriptions.keys().collect()),
        ] {
            let missing: Vec<&str> = intents
                .iter()
                .filter(|i| i.as_str() != oos_label && !known.contains(i))
                .map(|s| s.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(KnowledgeError::Invalid {
                    path: answers_path,
                    message: format!("no {what} for the model's intents: {}", missing.join(", ")),
                });
            }
        }
        let descriptions = answers_file.descriptions.into_iter().collect();

        let templates_path = dir.join("templates.yaml");
        let templates_file: TemplatesFile = read(&templates_path)?;
        let mut templates = HashMap::new();
        for (name, text) in &templates_file.templates {
            templates.insert(name.clone(), compile(&templates_path, name, text)?);
        }
        let missing: Vec<&str> = REQUIRED_TEMPLATES
            .iter()
            .copied()
            .filter(|t| !templates.contains_key(*t))
            .collect();
        if !missing.is_empty() {
            return Err(KnowledgeError::Invalid {
                path: templates_path,
                message: format!("missing templates: {}", missing.join(", ")),
            });
        }
        Ok(Self {
            answers,
            descriptions,
            templates,
            refund_window_days,
            return_window_days,
        })
    }

    /// The answer for an intent, if the knowledge base has one.
    pub fn answer(&self, intent: &str, vars: &Vars) -> Option<String> {
        self.answers.get(intent).map(|t| t.render(vars))
    }

    /// The intent in plain words ("track your order"); the intent's name when the
    /// knowledge base has none (only for a label the model was not checked against).
    pub fn describe<'a>(&'a self, intent: &'a str) -> &'a str {
        self.descriptions
            .get(intent)
            .map(String::as_str)
            .unwrap_or(intent)
    }

    /// A reply template by name (every name in [`REQUIRED_TEMPLATES`] exists).
    pub fn reply(&self, name: &str, vars: &Vars) -> String {
        match self.templates.get(name) {
            Some(t) => t.render(vars),
            None => format!("[missing template {name}]"),
        }
    }

    pub fn refund_window_days(&self) -> i64 {
        self.refund_window_days
    }

    /// Days after delivery an item can be returned or exchanged.
    pub fn return_window_days(&self) -> i64 {
        self.return_window_days
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_kb() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kb")
    }

    #[test]
    fn the_shipped_knowledge_base_loads_and_fills_policies() {
        let intents = vec!["get_refund".to_string(), "out_of_scope".to_string()];
        let kb = Knowledge::load(&shipped_kb(), &intents, "out_of_scope").unwrap();
        let text = kb.answer("check_refund_policy", &Vars::new()).unwrap();
        assert!(
            text.contains(&kb.refund_window_days().to_string()),
            "{text}"
        );
        assert!(!text.contains('{'), "{text}");
    }

    #[test]
    fn missing_answers_and_unknown_placeholders_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["policies.yaml", "answers.yaml", "templates.yaml"] {
            std::fs::copy(shipped_kb().join(f), dir.path().join(f)).unwrap();
        }
        let intents = vec!["teleport_parcel".to_string()];
        let e = Knowledge::load(dir.path(), &intents, "out_of_scope").unwrap_err();
        assert!(e.to_string().contains("teleport_parcel"), "{e}");
        std::fs::write(
            dir.path().join("answers.yaml"),
            "answers:\n  get_refund: \"Yes.\"\ndescriptions: {}\n",
        )
        .unwrap();
        let intents = vec!["get_refund".to_string()];
        let e = Knowledge::load(dir.path(), &intents, "out_of_scope").unwrap_err();
        assert!(
            e.to_string().contains("no description") && e.to_string().contains("get_refund"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("answers.yaml"),
            "answers:\n  get_refund: \"within {policy.refund_windw_days} days\"\n\
             descriptions:\n  get_refund: get a refund\n",
        )
        .unwrap();
        let e = Knowledge::load(dir.path(), &[], "out_of_scope").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("refund_windw_days") && msg.contains("answers.yaml"),
            "{msg}"
        );
    }
}
