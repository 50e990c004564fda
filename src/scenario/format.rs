//! The YAML format of scripted conversations (see `tests/conversations/` and the README).

use std::path::Path;

use serde::Deserialize;

/// One scripted conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The customer writing, for every customer turn that does not say otherwise; `null`
    /// for an anonymous visitor.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Orders published on the orders topic before the first step.
    #[serde(default)]
    pub orders: Vec<serde_json::Value>,
    pub steps: Vec<ScenarioStep>,
}

/// One step: exactly one of `customer`, `agent` or `order`, and what must come out of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    /// A customer message text.
    #[serde(default)]
    pub customer: Option<String>,
    /// Overrides the scenario's customer for this message.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// An agent console action: take_over, reply, hand_back or close.
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The text of an agent `reply`.
    #[serde(default)]
    pub text: Option<String>,
    /// An agent's `take_over` of a conversation that another agent holds or that was never
    /// escalated.
    #[serde(default)]
    pub force: bool,
    /// An order record published on the orders topic (an order event mid-conversation).
    #[serde(default)]
    pub order: Option<serde_json::Value>,
    #[serde(default)]
    pub expect: Expect,
}

/// What a step must produce. Anything not listed must not be produced: no `reply` means no
/// reply, no `escalation` means no escalation record, no `order_request` means none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub reply: Option<ExpectReply>,
    #[serde(default)]
    pub escalation: Option<ExpectEscalation>,
    #[serde(default)]
    pub order_request: Option<ExpectOrderRequest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectReply {
    /// `bot` (default for customer steps) or `agent`.
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub intent: Option<String>,
    /// Words or phrases the reply must contain (case-insensitive).
    #[serde(default)]
    pub contains: Vec<String>,
    /// Words or phrases it must not contain (case-insensitive).
    #[serde(default)]
    pub not_contains: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectEscalation {
    /// escalation (default), customer_message or handoff_ended.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub contains: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectOrderRequest {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub order_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    pub path: String,
    pub message: String,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let err = |message: String| ScenarioError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let s: Scenario = serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))?;
        if s.steps.is_empty() {
            return Err(err("no steps".into()));
        }
        for (i, step) in s.steps.iter().enumerate() {
            let kinds = [
                step.customer.is_some(),
                step.agent.is_some(),
                step.order.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if kinds != 1 {
                return Err(err(format!(
                    "step {}: give exactly one of `customer`, `agent` or `order`",
                    i + 1
                )));
            }
            if let Some(a) = &step.agent {
                if !["take_over", "reply", "hand_back", "close"].contains(&a.as_str()) {
                    return Err(err(format!(
                        "step {}: unknown agent action {a:?} (take_over, reply, hand_back, close)",
                        i + 1
                    )));
                }
                if a == "reply" && step.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                    return Err(err(format!("step {}: an agent reply needs `text`", i + 1)));
                }
            }
        }
        for o in s
            .orders
            .iter()
            .chain(s.steps.iter().filter_map(|st| st.order.as_ref()))
        {
            if o.get("order_id").and_then(|v| v.as_str()).is_none() {
                return Err(err("every order needs an `order_id`".into()));
            }
        }
        Ok(s)
    }
}
