//! The wire contract: every example in `schemas/examples/<schema>/` is checked against its
//! schema (valid-* must pass, invalid-* must fail), and the records Parley writes match.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn load(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(schema: &str) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&load(&root().join(format!("{schema}.json"))))
        .unwrap_or_else(|e| panic!("{schema}: {e}"))
}

#[test]
fn examples_match_their_schemas() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let dir = entry.unwrap().path();
        let schema = dir.file_name().unwrap().to_str().unwrap().to_string();
        let v = validator(&schema);
        let mut valid = 0;
        let mut invalid = 0;
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_str().unwrap().to_string();
            let doc = load(&f);
            if name.starts_with("valid") {
                let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{schema}/{name}: {errors:?}");
                valid += 1;
            } else if name.starts_with("invalid") {
                assert!(!v.is_valid(&doc), "{schema}/{name} should fail");
                invalid += 1;
            }
        }
        assert!(
            valid >= 2 && invalid >= 2,
            "{schema}: {valid} valid, {invalid} invalid examples"
        );
        checked += 1;
    }
    assert_eq!(checked, 9, "one example folder per schema");
}

#[test]
fn parley_types_serialise_to_the_contract() {
    use parley::wire::*;
    let reply = Reply {
        reply_id: "r".into(),
        conversation_id: "c".into(),
        in_reply_to: Some("m".into()),
        text: "Your order has shipped.".into(),
        intent: Some("track_order".into()),
        confidence: Some(0.93),
        author: Author::Bot,
        created_at: "2026-11-28T10:00:00.000Z".parse().unwrap(),
        agent_id: None,
        order_id: Some("A-1".into()),
        source: None,
    };
    let v = serde_json::to_value(&reply).unwrap();
    assert!(validator("reply").is_valid(&v), "{v}");
    let answered = Reply {
        source: Some(Source {
            kind: SourceKind::Product,
            id: "NW-SH-0001".into(),
            title: "Trailrunner 2".into(),
        }),
        ..reply.clone()
    };
    let v = serde_json::to_value(&answered).unwrap();
    assert!(validator("reply").is_valid(&v), "{v}");
    // What `parley kb load` publishes passes the topics' schemas.
    let content = parley::retrieval::content::Content::read(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/kb"),
    )
    .unwrap();
    for a in &content.articles {
        let v = serde_json::to_value(a).unwrap();
        assert!(validator("kb-article").is_valid(&v), "{v}");
    }
    for p in &content.products {
        let v = serde_json::to_value(p).unwrap();
        assert!(validator("product").is_valid(&v), "{v}");
    }
    let esc = Escalation {
        escalation_id: "e".into(),
        kind: EscalationType::Escalation,
        conversation_id: "c".into(),
        customer_id: Some("u".into()),
        reason: EscalationReason::Complaint,
        priority: Priority::High,
        intent: Some("complaint".into()),
        intents: vec!["complaint".into()],
        order_id: None,
        transcript: vec![Turn {
            role: Role::Customer,
            text: "this is not ok".into(),
            at: "2026-11-28T10:00:00.000Z".parse().unwrap(),
            intent: Some("complaint".into()),
            message_id: Some("m".into()),
        }],
        created_at: "2026-11-28T10:00:00.000Z".parse().unwrap(),
        message: None,
        agent_id: None,
    };
    let v = serde_json::to_value(&esc).unwrap();
    let errors: Vec<String> = validator("escalation")
        .iter_errors(&v)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let req = OrderRequest {
        request_id: "q".into(),
        kind: OrderRequestType::Cancel,
        order_id: "A-1".into(),
        customer_id: "u".into(),
        conversation_id: "c".into(),
        details: serde_json::json!({}),
        created_at: "2026-11-28T10:00:00.000Z".parse().unwrap(),
    };
    let v = serde_json::to_value(&req).unwrap();
    assert!(validator("order-request").is_valid(&v), "{v}");
}
