//! Reply templates: text with `{name}` placeholders. Policy values are filled in when the
//! knowledge base loads; the rest (order fields) when a reply is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Values for a template's run-time placeholders.
pub type Vars = HashMap<&'static str, String>;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, filling `policy` values now and checking that every other placeholder
    /// is one the dialogue fills. `{{` and `}}` stand for literal braces.
    pub fn compile(
        text: &str,
        policy: &BTreeMap<String, String>,
        runtime: &BTreeSet<&str>,
    ) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("is empty".into());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed placeholder `{{{name}`")),
                        }
                    }
                    let name = name.trim().to_string();
                    if let Some(value) = policy.get(&name) {
                        literal.push_str(value);
                    } else if runtime.contains(name.as_str()) {
                        if !literal.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut literal)));
                        }
                        parts.push(Part::Var(name));
                    } else if name.starts_with("policy.") {
                        return Err(format!("unknown policy `{name}` (not in policies.yaml)"));
                    } else {
                        return Err(format!(
                            "unknown placeholder `{name}` (known: policy.*, {})",
                            runtime.iter().copied().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
                '}' => return Err("a lone `}` (write `}}` for a brace)".into()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// Fills the run-time placeholders; one without a value reads "not available yet".
    pub fn render(&self, vars: &Vars) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(name) => match vars.get(name.as_str()) {
                    Some(v) => out.push_str(v),
                    None => out.push_str("not available yet"),
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_fill_at_compile_time_and_vars_at_render() {
        let policy = BTreeMap::from([("policy.days".to_string(), "30".to_string())]);
        let runtime = BTreeSet::from(["order.order_id"]);
        let t = Template::compile(
            "Order {order.order_id}: {policy.days} days {{ok}}",
            &policy,
            &runtime,
        )
        .unwrap();
        let vars = Vars::from([("order.order_id", "A-1".to_string())]);
        assert_eq!(t.render(&vars), "Order A-1: 30 days {ok}");
        assert_eq!(
            t.render(&Vars::new()),
            "Order not available yet: 30 days {ok}"
        );
        assert!(Template::compile("{nope}", &policy, &runtime).is_err());
        assert!(Template::compile("{policy.dayz}", &policy, &runtime)
            .unwrap_err()
            .contains("policy.dayz"));
        assert!(Template::compile("{open", &policy, &runtime).is_err());
    }
}
