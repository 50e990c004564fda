//! No single message can stop Parley: hostile and malformed input against the real service,
//! broker and model. Every bad record is dead-lettered with its kind, the valid message sent
//! after it (in another conversation) is answered, the process keeps running, and nothing
//! about an order reaches a customer who does not own it.

#[path = "harness/mod.rs"]
mod harness;

use std::collections::HashMap;
use std::time::Duration;

use harness::*;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value};

const KEY: &[u8] = b"gateway-key-for-the-hostile-test";
const OWNER: &str = "cust-owner";
const TRACKING: &str = "JD0146HOSTILE";

/// A producer that can set any key (or none) and the signature header.
struct Raw(ThreadedProducer<DefaultProducerContext>);

impl Raw {
    fn new() -> Self {
        Self(
            ClientConfig::new()
                .set("bootstrap.servers", brokers())
                .set("enable.idempotence", "true")
                .set("message.max.bytes", "5000000")
                .create()
                .unwrap(),
        )
    }

    fn send(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, signature: Option<&str>) {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(s) = signature {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "parley.signature",
                value: Some(s),
            }));
        }
        self.0.send(record).map_err(|(e, _)| e).unwrap();
        self.0.flush(Duration::from_secs(30)).unwrap();
    }

    /// A well-formed customer message, correctly signed, keyed by its conversation.
    fn customer(&self, topic: &str, conv: &str, id: &str, customer: Option<&str>, text: &str) {
        let mut m = json!({"message_id": id, "conversation_id": conv, "text": text});
        if let Some(c) = customer {
            m["customer_id"] = json!(c);
        }
        let sig = parley::wire::sign(KEY, conv, customer, id);
        self.send(
            topic,
            Some(conv.as_bytes()),
            Some(m.to_string().as_bytes()),
            Some(&sig),
        );
    }

    fn agent(&self, topic: &str, conv: &str, agent: &str, action: &str, extra: Value) {
        let mut a = json!({"conversation_id": conv, "agent_id": agent, "action": action});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        self.send(
            topic,
            Some(conv.as_bytes()),
            Some(a.to_string().as_bytes()),
            None,
        );
    }
}

fn texts_of(replies: &[Value], conv: &str) -> Vec<String> {
    replies
        .iter()
        .filter(|r| r["conversation_id"] == conv)
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn hostile_input_is_dead_lettered_and_the_service_keeps_answering() {
    let _turn = serial();
    let t = Topics::new("hostile");
    t.create(3);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.key"),
        format!("{}\n", std::str::from_utf8(KEY).unwrap()),
    )
    .unwrap();
    let config = dir.path().join("parley.toml");
    std::fs::write(
        &config,
        format!(
            "[identity]\nmode = \"signed\"\nkey_file = {:?}\n[agents]\nallow = [\"agent-ann\", \"agent-bob\"]\n[dialogue]\nagent_idle_timeout_secs = 4\n",
            dir.path().join("gateway.key")
        ),
    )
    .unwrap();
    let raw = Raw::new();
    let order = |id: &str, status: &str| {
        json!({"order_id": id, "customer_id": OWNER, "status": status, "carrier": "DHL",
               "tracking_number": TRACKING,
               "shipping_address": {"line1": "1 Secret Lane", "city": "Leeds", "country": "UK"}})
    };
    for (id, status) in [("A-10601", "processing"), ("A-10602", "shipped")] {
        raw.send(
            &t.orders(),
            Some(id.as_bytes()),
            Some(order(id, status).to_string().as_bytes()),
            None,
        );
    }
    let service = Service::start(&ServiceConfig {
        topics: &t,
        state_dir: &dir.path().join("state"),
        max_text_bytes: 2000,
        env: vec![("PARLEY_CONFIG".into(), config.display().to_string())],
        extra: vec![],
    });
    let (inbound, actions) = (t.inbound(), t.agent_actions());
    let ib: &str = &inbound;
    let mut replies = Output::new(&t.replies());
    let mut escalations = Output::new(&t.escalations());

    // Set-up: a conversation of the owner, one escalated and held by agent-ann, one whose
    // agent will go idle.
    raw.customer(
        &inbound,
        "bound",
        "bound-1",
        Some(OWNER),
        "hi there, what payment methods do you accept?",
    );
    raw.customer(
        &inbound,
        "held",
        "held-1",
        Some("cust-held"),
        "I want to speak to a human agent",
    );
    raw.customer(
        &inbound,
        "idle",
        "idle-1",
        Some("cust-idle"),
        "I want to speak to a human agent",
    );
    escalations.until(Duration::from_secs(120), "two escalations", |r| {
        r.len() >= 2
    });
    raw.agent(&actions, "held", "agent-ann", "take_over", json!({}));
    raw.agent(&actions, "idle", "agent-bob", "take_over", json!({}));
    replies.until(Duration::from_secs(60), "set-up replies", |r| r.len() >= 3);

    // (name, expected dead-letter kind or None when it must be answered, how to send it).
    let big = "x".repeat(900_000);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut cases: Vec<(&str, Option<&str>)> = Vec::new();
    let mut sent_ok: Vec<String> = Vec::new();
    let mut n = 0;
    let mut follow_up = |raw: &Raw, sent_ok: &mut Vec<String>| {
        // The valid message after each hostile one, in a conversation of its own.
        n += 1;
        let conv = format!("after-{n}");
        raw.customer(
            &inbound,
            &conv,
            &format!("{conv}-m"),
            Some("cust-x"),
            "do you ship with express delivery?",
        );
        sent_ok.push(conv);
    };
    let mut case = |name: &'static str, kind: Option<&'static str>, send: &dyn Fn(&Raw)| {
        send(&raw);
        cases.push((name, kind));
        follow_up(&raw, &mut sent_ok);
    };
    let bad = |key: &str, value: &[u8]| {
        let (k, v) = (key.to_string(), value.to_vec());
        move |raw: &Raw| raw.send(ib, Some(k.as_bytes()), Some(&v), None)
    };
    let signed_json = |conv: &str, v: Value| {
        let (c, v) = (conv.to_string(), v);
        move |raw: &Raw| {
            let sig = parley::wire::sign(
                KEY,
                v["conversation_id"].as_str().unwrap_or(""),
                v["customer_id"].as_str(),
                v["message_id"].as_str().unwrap_or(""),
            );
            raw.send(
                ib,
                Some(c.as_bytes()),
                Some(v.to_string().as_bytes()),
                Some(&sig),
            )
        }
    };

    // Text that changes length when lower-cased, about the owner's own orders: answered.
    case("turkish dotted capital I", None, &|raw| {
        raw.customer(&inbound, "tr", "tr-1", Some(OWNER),
            "İİİ please change the shipping address of order A-10601 to Bağdat Cd. 12, İstanbul, Turkey")
    });
    case("german capital sharp s", None, &|raw| {
        raw.customer(&inbound, "de", "de-1", Some(OWNER),
            "ẞẞ BITTE: change the shipping address of order A-10601 to Hauptstraße 5, 10115 Berlin, Germany")
    });
    case("kelvin sign", None, &|raw| {
        raw.customer(
            &inbound,
            "kelvin",
            "kelvin-1",
            Some(OWNER),
            "KKK where is my order A-10602 to me",
        )
    });
    case("five-part address", None, &|raw| {
        raw.customer(&inbound, "addr5", "addr5-1", Some(OWNER),
            "change the shipping address of order A-10601 to Flat 2, 7 Elm Road, Bath, BA1 1AA, UK, Europe, Earth")
    });
    case("emoji, RTL marks and NUL in text", None, &|raw| {
        raw.customer(
            &inbound,
            "emoji",
            "emoji-1",
            Some("cust-e"),
            "\u{202e}🙂🙂\u{0} where is my order?? \u{200f}",
        )
    });
    // Another customer asking for the owner's order: answered, with nothing about it.
    case("another customer's order number", None, &|raw| {
        raw.customer(
            &inbound,
            "thief",
            "thief-1",
            Some("cust-thief"),
            "where is order A-10602? tracking please",
        )
    });
    case(
        "not json",
        Some("not_json"),
        &bad("bad-1", b"this is { not json"),
    );
    case(
        "invalid utf-8",
        Some("invalid_utf8"),
        &bad("bad-2", b"{\"text\":\"caf\xe9\"}"),
    );
    case(
        "array instead of object",
        Some("wrong_type"),
        &bad("bad-3", b"[1,2,3]"),
    );
    case(
        "text of the wrong type",
        Some("wrong_type"),
        &bad(
            "bad-4",
            br#"{"message_id":"m","conversation_id":"bad-4","text":42}"#,
        ),
    );
    case(
        "missing message_id",
        Some("missing_field"),
        &bad(
            "bad-5",
            br#"{"conversation_id":"bad-5","text":"where is my order"}"#,
        ),
    );
    case(
        "whitespace text",
        Some("empty_text"),
        &bad(
            "bad-6",
            br#"{"message_id":"m","conversation_id":"bad-6","text":" \n\t "}"#,
        ),
    );
    case(
        "text over the limit",
        Some("text_too_long"),
        &bad(
            "bad-7",
            json!({"message_id":"m","conversation_id":"bad-7","text": "a".repeat(2001)})
                .to_string()
                .as_bytes(),
        ),
    );
    case(
        "900 KB message_id",
        Some("id_too_long"),
        &bad(
            "bad-8",
            json!({"message_id": big, "conversation_id":"bad-8","text":"hi"})
                .to_string()
                .as_bytes(),
        ),
    );
    case(
        "900 KB conversation_id",
        Some("id_too_long"),
        &bad(
            "bad-9",
            json!({"message_id":"m", "conversation_id": big,"text":"hi"})
                .to_string()
                .as_bytes(),
        ),
    );
    case(
        "900 KB customer_id",
        Some("id_too_long"),
        &bad(
            "bad-10",
            json!({"message_id":"m","conversation_id":"bad-10","customer_id": big,"text":"hi"})
                .to_string()
                .as_bytes(),
        ),
    );
    case("900 KB key", Some("key_mismatch"), &{
        let key = "k".repeat(900_000);
        let v = json!({"message_id":"m","conversation_id":"bad-11","customer_id":"c","text":"hi"});
        let sig = parley::wire::sign(KEY, "bad-11", Some("c"), "m");
        move |raw: &Raw| {
            raw.send(
                ib,
                Some(key.as_bytes()),
                Some(v.to_string().as_bytes()),
                Some(&sig),
            )
        }
    });
    case("long channel", Some("field_too_long"),
        &bad("bad-12", json!({"message_id":"m","conversation_id":"bad-12","channel": "w".repeat(5000),"text":"hi"}).to_string().as_bytes()));
    case(
        "bad sent_at",
        Some("invalid_value"),
        &bad(
            "bad-13",
            br#"{"message_id":"m","conversation_id":"bad-13","text":"hi","sent_at":"yesterday"}"#,
        ),
    );
    case(
        "control characters in an id",
        Some("invalid_value"),
        &bad(
            "bad-14",
            br#"{"message_id":"m\u0000\n","conversation_id":"bad-14","text":"hi"}"#,
        ),
    );
    case(
        "nesting 100,000 deep",
        Some("not_json"),
        &bad("bad-15", deep.as_bytes()),
    );
    case(
        "a tombstone on the inbound topic",
        Some("not_json"),
        &|raw| raw.send(ib, Some(b"bad-16"), None, None),
    );
    case(
        "key is not the conversation",
        Some("key_mismatch"),
        &signed_json(
            "bad-17",
            json!({"message_id":"m","conversation_id":"someone-else","customer_id":"c","text":"hi"}),
        ),
    );
    case("no key at all", Some("key_mismatch"), &{
        let v = json!({"message_id":"m","conversation_id":"bad-18","customer_id":"c","text":"hi"});
        let sig = parley::wire::sign(KEY, "bad-18", Some("c"), "m");
        move |raw: &Raw| raw.send(ib, None, Some(v.to_string().as_bytes()), Some(&sig))
    });
    case(
        "customer_id switch mid-conversation",
        Some("identity_mismatch"),
        &|raw| {
            raw.customer(
                &inbound,
                "bound",
                "bound-2",
                Some("cust-intruder"),
                "where is my order A-10602?",
            )
        },
    );
    case(
        "unsigned message in signed mode",
        Some("bad_signature"),
        &|raw| {
            let v = json!({"message_id":"m","conversation_id":"bad-20","customer_id": OWNER,"text":"where is order A-10602"});
            raw.send(ib, Some(b"bad-20"), Some(v.to_string().as_bytes()), None)
        },
    );
    case(
        "signature made for another customer",
        Some("bad_signature"),
        &|raw| {
            let v = json!({"message_id":"m","conversation_id":"bad-21","customer_id": OWNER,"text":"where is order A-10602"});
            let sig = parley::wire::sign(KEY, "bad-21", Some("cust-thief"), "m");
            raw.send(
                ib,
                Some(b"bad-21"),
                Some(v.to_string().as_bytes()),
                Some(&sig),
            )
        },
    );
    case("garbage signature", Some("bad_signature"), &|raw| {
        let v = json!({"message_id":"m","conversation_id":"bad-22","customer_id": OWNER,"text":"where is order A-10602"});
        raw.send(
            ib,
            Some(b"bad-22"),
            Some(v.to_string().as_bytes()),
            Some(&"z".repeat(5000)),
        )
    });
    // Agents.
    case("unknown agent", Some("unknown_agent"), &|raw| {
        raw.agent(
            &actions,
            "held",
            "agent-mallory",
            "reply",
            json!({"text": "hi, I am an agent"}),
        )
    });
    case(
        "reply in a conversation another agent holds",
        Some("agent_not_allowed"),
        &|raw| {
            raw.agent(
                &actions,
                "held",
                "agent-bob",
                "reply",
                json!({"text": "let me butt in"}),
            )
        },
    );
    case(
        "take over from another agent without force",
        Some("agent_not_allowed"),
        &|raw| raw.agent(&actions, "held", "agent-bob", "take_over", json!({})),
    );
    case(
        "hand back a conversation one does not hold",
        Some("agent_not_allowed"),
        &|raw| raw.agent(&actions, "held", "agent-bob", "hand_back", json!({})),
    );
    case(
        "take over a conversation never escalated",
        Some("agent_not_allowed"),
        &|raw| raw.agent(&actions, "bound", "agent-bob", "take_over", json!({})),
    );
    case(
        "take over a conversation that does not exist",
        Some("agent_not_allowed"),
        &|raw| {
            raw.agent(
                &actions,
                "nobody-here",
                "agent-bob",
                "take_over",
                json!({"force": true}),
            )
        },
    );
    case("unknown agent action", Some("invalid_value"), &|raw| {
        raw.agent(&actions, "held", "agent-ann", "delete_customer", json!({}))
    });
    case("agent action key mismatch", Some("key_mismatch"), &|raw| {
        let a = json!({"conversation_id": "held", "agent_id": "agent-ann", "action": "close"});
        raw.send(
            &actions,
            Some(b"bad-30"),
            Some(a.to_string().as_bytes()),
            None,
        )
    });
    case("900 KB agent id", Some("id_too_long"), &|raw| {
        let a =
            json!({"conversation_id": "held", "agent_id": "a".repeat(900_000), "action": "close"});
        raw.send(
            &actions,
            Some(b"held"),
            Some(a.to_string().as_bytes()),
            None,
        )
    });
    let kinds = cases.iter().filter(|(_, k)| k.is_some()).count();
    assert!(
        cases.len() >= 25 && kinds >= 25,
        "{} cases, {kinds} dead-letter kinds",
        cases.len()
    );

    // The agent of "idle" has been silent past the timeout: the customer is answered again.
    std::thread::sleep(Duration::from_secs(5));
    raw.customer(
        &inbound,
        "idle",
        "idle-2",
        Some("cust-idle"),
        "hello? what payment methods do you accept?",
    );
    // A real agent action from the holder still works after all this.
    raw.agent(
        &actions,
        "held",
        "agent-ann",
        "reply",
        json!({"text": "Ann here, sorting it now."}),
    );

    let answered = ["bound", "tr", "de", "kelvin", "addr5", "emoji", "thief"];
    // Set-up (3), one per follow-up, one per answered hostile case (6), idle-2 and Ann's.
    let want = 3 + sent_ok.len() + 6 + 2;
    replies.until(
        Duration::from_secs(240),
        "replies to every valid message",
        |r| r.len() >= want,
    );
    replies.poll_for(Duration::from_secs(3));
    let all = replies.json();
    for r in &all {
        assert_schema("reply.json", r);
    }
    for conv in &sent_ok {
        assert_eq!(texts_of(&all, conv).len(), 1, "one reply in {conv}");
    }
    for conv in &answered {
        assert!(!texts_of(&all, conv).is_empty(), "no reply in {conv}");
    }
    // The Turkish address is read field by field and offered for confirmation.
    let tr = texts_of(&all, "tr").join(" ");
    assert!(
        tr.contains("Bağdat Cd. 12") && tr.contains("İstanbul"),
        "{tr}"
    );
    // The five-part address cannot be read unambiguously: asked again, never confirmed.
    let addr5 = texts_of(&all, "addr5").join(" ");
    assert!(
        !addr5.contains("Earth") || !addr5.to_lowercase().contains("confirm"),
        "{addr5}"
    );
    // Nothing about the owner's orders reaches anyone else.
    for r in &all {
        let conv = r["conversation_id"].as_str().unwrap();
        if ["bound", "tr", "de", "kelvin", "addr5"].contains(&conv) {
            continue;
        }
        let text = r["text"].as_str().unwrap();
        assert!(
            !text.contains(TRACKING) && !text.contains("Secret Lane"),
            "{conv}: {text}"
        );
    }
    let idle = texts_of(&all, "idle");
    assert!(
        idle.len() >= 2,
        "the bot answers again after the agent's idle timeout: {idle:?}"
    );
    assert!(texts_of(&all, "held")
        .iter()
        .any(|t| t.contains("Ann here")));
    escalations.until(
        Duration::from_secs(30),
        "the idle timeout escalation",
        |r| {
            r.iter().any(|m| {
                serde_json::from_slice::<Value>(m.payload().unwrap()).unwrap()["reason"]
                    == "agent_timeout"
            })
        },
    );
    for e in escalations.json() {
        assert_schema("escalation.json", &e);
    }

    // Every hostile record is in the dead-letter topic with its kind.
    let expected: usize = kinds;
    let mut dead = Output::new(&t.dead_letter());
    dead.until(Duration::from_secs(60), "dead letters", |r| {
        r.len() >= expected
    });
    dead.poll_for(Duration::from_secs(2));
    let mut got: HashMap<String, usize> = HashMap::new();
    for m in &dead.records {
        let kind = header(m, "parley.error.kind").unwrap();
        assert!(!header(m, "parley.error").unwrap().is_empty());
        assert!(
            m.key().map_or(0, <[u8]>::len) <= 1024,
            "dead-letter keys are bounded"
        );
        *got.entry(kind).or_default() += 1;
    }
    let mut want_kinds: HashMap<String, usize> = HashMap::new();
    for (_, k) in &cases {
        if let Some(k) = k {
            *want_kinds.entry(k.to_string()).or_default() += 1;
        }
    }
    assert_eq!(got, want_kinds, "dead letters by kind");
    eprintln!(
        "{} hostile inputs: {} dead-lettered, {} answered; {} valid follow-ups answered; dead letters by kind: {got:?}",
        cases.len(),
        kinds,
        cases.len() - kinds,
        sent_ok.len()
    );

    // Still running, healthy, and counting.
    let (code, body) = service.get("/healthz").expect("healthz answers");
    assert_eq!(code, 200, "{body}");
    let metrics = service.metrics();
    let dl: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("parley_dead_letters_total"))
        .map(|(_, v)| v)
        .sum();
    assert!(dl >= expected as f64, "{dl}");
    let log = service.log_text();
    assert!(!log.contains("Bağdat"), "customer text reached the log");
    let status = service.stop();
    assert!(status.success(), "{status}");
}
