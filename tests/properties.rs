//! Property tests: whatever bytes arrive on the input topics and whatever customers and agents
//! write (about orders, or about odd products the search found), decoding and the dialogue
//! never panic (one panic stopped the whole service), every
//! refusal says why, and no reply shows a customer another customer's order.
//!
//! Each property runs 10,000 cases (`ProptestConfig::with_cases`, which `PROPTEST_CASES` does
//! not lower), a few seconds in a release build.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use candle_core::Device;
use chrono::{DateTime, Duration, Utc};
use parley::config::{DialogueSettings, Limits};
use parley::dialogue::{step, Action, Context, Conversation, Event, Orders};
use parley::knowledge::Knowledge;
use parley::model::TextEncoder;
use parley::wire::Prediction;
use parley::wire::{
    decode_agent_action, decode_inbound, decode_order, AgentAction, AgentActionKind,
    InboundMessage, Order,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{json, Map, Value};

const CASES: u32 = 10_000;

fn config() -> Config {
    Config {
        // A failing input is kept in tests/properties.proptest-regressions and replayed first
        // on the next run (the default looks for the file beside src/ and warns).
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::with_cases(CASES)
    }
}

// ---------------------------------------------------------------------------------------------
// Text that breaks naive string handling.

/// Characters whose case mapping changes their UTF-8 length (`İ` -> `i̇`, `ẞ` -> `ß`, the
/// Kelvin sign -> `k`), or that expand (`ﬀ`, `ŉ`), direction marks, emoji, NUL and controls.
const AWKWARD: &[&str] = &[
    "İ",
    "ẞ",
    "\u{212A}",
    "\u{2126}",
    "ß",
    "ﬀ",
    "ŉ",
    "ǅ",
    "Σ",
    "i\u{307}",
    "\u{200F}",
    "\u{202E}",
    "\u{200B}",
    "\u{FEFF}",
    "🙂",
    "👩‍👩‍👧",
    "\0",
    "\u{1F}",
    "\u{7F}",
    "\r\n",
    "\t",
    ",",
    ";",
    " to ",
    " TO ",
    " İto ",
    "#",
    ":",
    "\"",
    "\\",
    "{",
    "}",
    "{order.tracking_number}",
    "{{",
];

/// Pieces of what customers really write: order numbers of the test orders (their own and
/// others'), addresses (readable, shifted, unreadable), short answers, requests.
const FRAGMENTS: &[&str] = &[
    "please change the shipping address of order A-10601",
    "change the address of B-20001",
    "to Bağdat Cd. 12, İstanbul, Turkey",
    "to Flat 3, 12 High Street, Leeds, LS1 4AB, United Kingdom",
    "to Hauptstr. 5, 10115 Berlin, Germany",
    "to GROẞE STRAẞE 5, 10115 BERLIN, DEUTSCHLAND",
    "to \u{212A}ing Street 10, London, SW1A 2AA, UK",
    "to a 1, b 2, c 3, d 4, e 5, f 6",
    "12 High Street, Leeds, LS1 4AB, UK",
    "Flat 3, 12 High Street, Leeds, LS1 4AB, Narnia",
    ", , ,",
    "yes",
    "no",
    "yep go ahead",
    "don't",
    "where is my order",
    "track A-10602",
    "cancel order B-20001",
    "refund for A-10603",
    "order 4417823",
    "it's 4417823",
    "#B-20002",
    "A-10601",
    "invoice INV-20931",
    "jane@example.com",
    "€49.99",
    "yesterday",
    "I want a human",
    "this is a SCAM",
    "WHERE IS MY ORDER I PAID WEEKS AGO",
    "!!!",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
        3 => prop::sample::select(AWKWARD).prop_map(str::to_string),
        2 => any::<String>(),
        1 => "[a-zA-Z0-9 ,.]{0,20}",
        // Long runs of length-changing characters.
        1 => (prop::sample::select(&["İ", "ẞ", "\u{212A}", "a"][..]), 1usize..600)
            .prop_map(|(c, n)| c.repeat(n)),
    ]
}

/// Arbitrary Unicode text mixed with realistic fragments.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..8).prop_map(|p| p.concat())
}

/// A few awkward characters or arbitrary ones (no order numbers or addresses).
fn decoration() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(AWKWARD).prop_map(str::to_string),
            1 => any::<String>(),
        ],
        0..3,
    )
    .prop_map(|p| p.concat())
}

/// A request about an order, with the intent it expresses, awkward text around it and maybe
/// a new address after " to ": the shape of the message that stopped the service.
fn request() -> impl Strategy<Value = (String, &'static str)> {
    const REQUESTS: &[(&str, &str)] = &[
        (
            "please change the shipping address of order A-10601",
            "change_shipping_address",
        ),
        (
            "change the delivery address of B-20001",
            "change_shipping_address",
        ),
        ("new address for 4417823", "change_shipping_address"),
        ("cancel order A-10601", "cancel_order"),
        ("cancel B-20001", "cancel_order"),
        ("where is order #A-10602", "track_order"),
        ("where is B-20002", "track_order"),
        ("refund 4417823", "get_refund"),
        ("refund A-10603", "get_refund"),
        ("invoice for B-20002", "get_invoice"),
    ];
    const ADDRESSES: &[&str] = &[
        "Bağdat Cd. 12, İstanbul, Turkey",
        "Flat 3, 12 High Street, Leeds, LS1 4AB, United Kingdom",
        "Flat 3, 12 High Street, Leeds, LS1 4AB, Narnia",
        "GROẞE STRAẞE 5, 10115 BERLIN, DEUTSCHLAND",
        "\u{212A}ing Street 10, London, SW1A 2AA, UK",
        "a 1, b 2, c 3, d 4, e 5, f 6",
        "12 High Street, Leeds, West Yorkshire, UK",
    ];
    (
        decoration(),
        prop::sample::select(REQUESTS),
        decoration(),
        prop::sample::select(&[" to ", " TO ", " to: ", "", "\n"][..]),
        prop::option::of(prop::sample::select(ADDRESSES)),
        prop::option::weighted(0.3, decoration()),
    )
        .prop_map(|(a, (request, intent), b, to, address, c)| {
            let address = address.unwrap_or_default();
            let c = c.unwrap_or_default();
            (format!("{a}{request}{b}{to}{address}{c}"), intent)
        })
}

/// Ids: realistic, empty, or any Unicode.
fn id(real: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(real).prop_map(str::to_string),
        1 => prop::sample::select(AWKWARD).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Decoding.

fn limits() -> Limits {
    Limits::default()
}

/// A JSON value of any type: strings from [`text`], huge strings, numbers, booleans, null,
/// arrays and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => text().prop_map(Value::from),
        1 => (prop::sample::select(&["x", "İ", "\u{212A}", "🙂", "\0"][..]), 0usize..6000)
            .prop_map(|(c, n)| Value::from(c.repeat(n))),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid record of each type (inbound message, agent action, order), its strings drawn
/// from [`text`] and [`id`].
fn valid_record() -> impl Strategy<Value = Map<String, Value>> {
    let inbound = (
        id(&["m-1", "m-2"]),
        text(),
        prop::option::of(id(&["cust-1", "cust-2"])),
        prop::option::of(prop::sample::select(
            &["2026-11-28T10:00:00Z", "2026-11-28T10:00:00.123+05:30"][..],
        )),
    )
        .prop_map(|(message_id, text, customer, sent_at)| {
            json!({"message_id": message_id, "conversation_id": "c-1", "text": text,
                "customer_id": customer, "channel": "web", "locale": "tr-TR",
                "sent_at": sent_at})
        });
    let agent = (
        id(&["agent-1", "agent-2"]),
        prop::sample::select(&["take_over", "reply", "hand_back", "close"][..]),
        prop::option::of(text()),
        any::<bool>(),
    )
        .prop_map(|(agent, action, text, force)| {
            json!({"conversation_id": "c-1", "agent_id": agent, "action": action,
                "text": text, "force": force, "action_id": "a-1",
                "sent_at": "2026-11-28T10:00:00Z"})
        });
    let order = (
        id(&["A-10601", "4417823"]),
        id(&["cust-1", "cust-2"]),
        prop::sample::select(
            &[
                "placed",
                "processing",
                "shipped",
                "delivered",
                "cancelled",
                "returned",
                "refunded",
            ][..],
        ),
        text(),
        dates(),
    )
        .prop_map(|(order_id, customer, status, free, date)| {
            json!({"order_id": order_id, "customer_id": customer, "status": status,
                "carrier": free, "tracking_number": "1Z999", "delivered_at": date,
                "estimated_delivery": date,
                "shipping_address": {"line1": free, "city": "İstanbul", "country": "TR"},
                "items": [{"name": free, "quantity": 1, "unit_price": 1.5}],
                "total": 12.5, "currency": "EUR"})
        });
    prop_oneof![inbound, agent, order].prop_map(|v| match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    })
}

const FIELDS: &[&str] = &[
    "message_id",
    "conversation_id",
    "text",
    "customer_id",
    "channel",
    "sent_at",
    "locale",
    "agent_id",
    "action",
    "action_id",
    "force",
    "order_id",
    "status",
    "carrier",
    "tracking_number",
    "estimated_delivery",
    "delivered_at",
    "shipping_address",
    "items",
    "total",
    "currency",
];

/// A valid record with up to three fields removed or replaced by a value of any type, and
/// maybe an unknown field: each check of a decoder gets its turn.
fn json_record() -> impl Strategy<Value = Vec<u8>> {
    (
        valid_record(),
        prop::collection::vec(
            (
                prop::sample::select(FIELDS),
                prop::option::weighted(0.8, json_value()),
            ),
            0..=3,
        ),
        prop::option::weighted(0.2, (any::<String>(), json_value())),
    )
        .prop_map(|(mut record, changes, extra)| {
            for (field, value) in changes {
                match value {
                    Some(v) => record.insert(field.to_string(), v),
                    None => record.remove(field),
                };
            }
            if let Some((k, v)) = extra {
                record.insert(k, v);
            }
            serde_json::to_vec(&Value::Object(record)).unwrap()
        })
}

/// Decodes `bytes` as each record type: never a panic, every refusal has a reason, and what
/// is accepted keeps the limits.
fn decode_all(bytes: Option<&[u8]>) -> Result<(), TestCaseError> {
    let limits = limits();
    match decode_inbound(bytes, &limits) {
        Ok(m) => {
            prop_assert!(!m.text.trim().is_empty());
            prop_assert!(m.text.len() <= limits.max_text_bytes);
            prop_assert!(m.message_id.len() <= limits.max_id_bytes);
            prop_assert!(m.conversation_id.len() <= limits.max_id_bytes);
        }
        Err(e) => prop_assert!(!e.message.trim().is_empty(), "{:?}", e.kind),
    }
    match decode_agent_action(bytes, &limits) {
        Ok(a) => {
            prop_assert!(a.agent_id.len() <= limits.max_id_bytes);
            if a.action == AgentActionKind::Reply {
                prop_assert!(a.text.is_some_and(|t| !t.trim().is_empty()));
            }
        }
        Err(e) => prop_assert!(!e.message.trim().is_empty(), "{:?}", e.kind),
    }
    if let Some(bytes) = bytes {
        match decode_order(bytes) {
            Ok(o) => prop_assert!(!o.order_id.trim().is_empty()),
            Err(e) => prop_assert!(!e.message.trim().is_empty(), "{:?}", e.kind),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in prop::option::weighted(0.98, prop::collection::vec(any::<u8>(), 0..600))
    ) {
        decode_all(bytes.as_deref())?;
    }

    #[test]
    fn decoding_arbitrary_json_never_panics(bytes in json_record()) {
        decode_all(Some(&bytes))?;
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenising: every text the decoder accepts goes through the model's tokenizer (lower-casing
// and accent handling included) before the dialogue sees it.

fn encoder() -> &'static TextEncoder {
    static E: OnceLock<TextEncoder> = OnceLock::new();
    E.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/intent-en/tokenizer.json");
        TextEncoder::from_file(&path, 128).unwrap()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tokenising_arbitrary_text_never_panics(texts in prop::collection::vec(text(), 1..4)) {
        let encoded = encoder().encode(&texts, &Device::Cpu);
        let encoded = encoded.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(encoded.lengths.len(), texts.len());
        prop_assert!(encoded.lengths.iter().all(|&n| (2..=128).contains(&n)));
    }
}

// ---------------------------------------------------------------------------------------------
// The dialogue.

fn labels() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/intent-en/config.json");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let id2label = config["id2label"].as_object().unwrap();
    let mut labels: Vec<(usize, String)> = id2label
        .iter()
        .map(|(i, l)| (i.parse().unwrap(), l.as_str().unwrap().to_string()))
        .collect();
    labels.sort();
    labels.into_iter().map(|(_, l)| l).collect()
}

struct Shared {
    kb: Knowledge,
    labels: Vec<String>,
}

/// The real knowledge base, loaded once for all cases.
fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let labels = labels();
        let kb_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kb");
        let kb = Knowledge::load(&kb_dir, &labels, "out_of_scope").unwrap();
        Shared { kb, labels }
    })
}

struct FakeOrders(HashMap<String, Order>);

impl Orders for FakeOrders {
    fn get(&self, id: &str) -> Option<Order> {
        self.0.get(id).cloned()
    }
    fn open_orders_of(&self, customer: &str) -> Vec<Order> {
        let mut v: Vec<Order> = self
            .0
            .values()
            .filter(|o| o.customer_id == customer && o.status.is_open())
            .cloned()
            .collect();
        v.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        v
    }
}

/// Tracking numbers and street lines no message or agent text in these tests contains: one
/// in a reply can only have come from the order.
fn order(id: &str, customer: &str, status: &str, dates: &str) -> Order {
    let n = id.replace('-', "");
    serde_json::from_value(json!({
        "order_id": id,
        "customer_id": customer,
        "status": status,
        "carrier": "DHL",
        "tracking_number": format!("TRACK{n}SECRET"),
        "estimated_delivery": dates,
        "delivered_at": dates,
        "updated_at": dates,
        "shipping_address": {
            "line1": format!("{n} Secret Lane"),
            "line2": format!("Hidden Flat {n}"),
            "city": "Leeds",
            "postcode": "LS6 2QA",
            "country": "GB"
        },
        "items": [{"name": "Desk lamp", "quantity": 1, "unit_price": 59.9}],
        "total": 59.9,
        "currency": "EUR"
    }))
    .unwrap()
}

const CUSTOMERS: &[&str] = &["cust-1", "cust-2", "cust-3"];
const ORDER_IDS: &[&str] = &[
    "A-10601", "A-10602", "A-10603", "B-20001", "B-20002", "4417823",
];

/// Orders of three customers in every status that matters; `dates` (delivery and update
/// times) is arbitrary, from valid to nonsense.
fn orders(dates: &str) -> FakeOrders {
    let list = [
        ("A-10601", "cust-1", "processing"),
        ("A-10602", "cust-1", "shipped"),
        ("A-10603", "cust-1", "delivered"),
        ("B-20001", "cust-2", "processing"),
        ("B-20002", "cust-2", "shipped"),
        ("4417823", "cust-3", "delivered"),
    ];
    FakeOrders(
        list.iter()
            .map(|(id, c, s)| (id.to_string(), order(id, c, s, dates)))
            .collect(),
    )
}

#[derive(Debug, Clone)]
enum Input {
    Customer {
        text: String,
        customer: Who,
        message_id: String,
        label: usize,
        confidence: f32,
        hits: Vec<(String, f32, bool)>,
    },
    Agent {
        agent: String,
        kind: AgentActionKind,
        text: Option<String>,
        force: bool,
    },
}

#[derive(Debug, Clone)]
struct Timed {
    input: Input,
    /// Seconds since the previous event: sometimes past the question and queue timeouts.
    after_secs: i64,
}

/// Whole messages that answer the bot's questions.
const ANSWERS: &[&str] = &[
    "yes",
    "yes please",
    "no",
    "A-10601",
    "it's B-20001",
    "12 High Street, Leeds, LS1 4AB, UK",
    "Bağdat Cd. 12, İstanbul, Turkey",
    "Flat 3, 12 High Street, Leeds, LS1 4AB, Narnia",
    // About the products of `catalog` (found or not by the search of `hits`).
    "ok I'll take it",
    "I'll take the cheaper one",
    "which is lighter, the q7 or the summit 30?",
    "what's the difference between them",
    "does it have a hood?",
    "is it waterproof?",
    "what sizes?",
    "anything under 50?",
    "what's the cheapest tent you have?",
    "do you sell tents under 0.5 euros",
    "how much is the q7?",
    "ok what about the q7?",
    "the first one. does it come in red?",
    "is it better than the Ünïcødé 9000?",
    "can I return the Summit 30 if it doesn't fit?",
    "under €99999999999999999999999999 please",
];

/// Products with odd records: an empty name, unicode, every JSON kind of attribute value,
/// prices of 0 and near the largest float, nothing in stock, descriptions with and without
/// sentences.
fn catalog() -> &'static HashMap<String, parley::wire::Product> {
    static CATALOG: OnceLock<HashMap<String, parley::wire::Product>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        [
            json!({"sku": "P-1", "name": "Q7 ANC Headphones", "price": {"amount": 249.0, "currency": "EUR"},
                   "stock": 3, "description": "Over-ear. 40 h battery! Foldable?",
                   "attributes": {"noise_cancelling": true, "colors": ["black", "rose gold"], "weight_g": 254}}),
            json!({"sku": "P-2", "name": "Summit 30 Daypack", "price": {"amount": 0.0, "currency": "EUR"},
                   "stock": 0, "description": "",
                   "attributes": {"sizes": [], "weight_kg": null, "nested": {"a": [1, {"b": 2}]}, "sizes_eu": [40, "41½", true]}}),
            json!({"sku": "P-3", "name": "Ünïcødé 9000 Tent", "price": {"amount": 1.7e308, "currency": "€"},
                   "stock": 18446744073709551615u64, "description": "…", "url": "https://x.example/p/🏕",
                   "attributes": {"persons": 2, "": "empty key", "colour": "r\u{0}ed"}}),
            json!({"sku": "P-4", "name": "", "price": {"amount": 5.0, "currency": ""},
                   "stock": 1, "attributes": {}}),
        ]
        .into_iter()
        .map(|v| {
            let p: parley::wire::Product = serde_json::from_value(v).unwrap();
            (p.sku.clone(), p)
        })
        .collect()
    })
}

struct FakeCatalog;

impl parley::dialogue::answers::Catalog for FakeCatalog {
    fn article(&self, _: &str) -> Option<parley::wire::Article> {
        None
    }
    fn product(&self, sku: &str) -> Option<parley::wire::Product> {
        catalog().get(sku).cloned()
    }
}

/// What the search found for a message: some of the catalogue's products (and one it no
/// longer has), each confident or not.
fn hits() -> impl Strategy<Value = Vec<(String, f32, bool)>> {
    prop::collection::vec(
        (
            prop::sample::select(&["P-1", "P-2", "P-3", "P-4", "P-gone"][..])
                .prop_map(str::to_string),
            prop_oneof![0.0f32..2.0, Just(f32::NAN), Just(-1.0f32)],
            any::<bool>(),
        ),
        0..4,
    )
}

fn found(hits: &[(String, f32, bool)]) -> parley::retrieval::Found {
    let products = hits
        .iter()
        .map(|(id, score, confident)| parley::retrieval::Hit {
            kind: parley::wire::SourceKind::Product,
            id: id.clone(),
            score: *score,
            margin: if *confident { 0.1 } else { -0.1 },
            confident: *confident,
            candidate: parley::retrieval::Candidate {
                id: id.clone(),
                semantic: *score,
                second_semantic: None,
                bm25: 0.0,
                name_coverage: 0.0,
                covered: 0.0,
            },
        })
        .collect();
    parley::retrieval::Found {
        products,
        ..Default::default()
    }
}

/// Who writes a message: mostly the customer the conversation belongs to (a conversation is
/// bound to its first customer and refuses others), sometimes nobody signed in, sometimes
/// someone else.
#[derive(Debug, Clone)]
enum Who {
    Owner,
    Nobody,
    Other(String),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        8 => Just(Who::Owner),
        1 => Just(Who::Nobody),
        1 => prop_oneof![
            prop::sample::select(CUSTOMERS).prop_map(str::to_string),
            any::<String>(),
        ]
        .prop_map(Who::Other),
    ]
}

/// Index of the predicted label: often an order intent, now and then one past the model's
/// labels (see [`converse`]).
fn label() -> impl Strategy<Value = usize> {
    let order_intents: Vec<usize> = shared()
        .labels
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.contains("order")
                || l.contains("address")
                || l.contains("refund")
                || l.contains("invoice")
        })
        .map(|(i, _)| i)
        .collect();
    let n = shared().labels.len();
    prop_oneof![
        1 => prop::sample::select(order_intents),
        1 => 0..n + 2,
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let kinds = prop::sample::select(
        &[
            AgentActionKind::TakeOver,
            AgentActionKind::Reply,
            AgentActionKind::HandBack,
            AgentActionKind::Close,
        ][..],
    );
    prop_oneof![
        3 => (
            prop_oneof![
                2 => (text(), label()),
                2 => (request(), label(), any::<bool>()).prop_map(|((text, intent), other, fits)| {
                    // Mostly the intent the request expresses, sometimes any.
                    let fitting = shared().labels.iter().position(|l| l == intent);
                    (text, fitting.filter(|_| fits).unwrap_or(other))
                }),
                1 => (prop::sample::select(ANSWERS).prop_map(str::to_string), label()),
            ],
            who(),
            id(&["m-1", "m-2"]),
            prop_oneof![0.0f32..=1.0, Just(0.0f32), Just(1.0f32)],
            hits(),
        )
            .prop_map(|((text, label), customer, message_id, confidence, hits)| Input::Customer {
                text,
                customer,
                message_id,
                label,
                confidence,
                hits,
            }),
        1 => (
            id(&["agent-1", "agent-2"]),
            kinds,
            prop::option::of(text()),
            any::<bool>(),
        )
            .prop_map(|(agent, kind, text, force)| Input::Agent {
                agent,
                kind,
                text,
                force,
            }),
    ]
}

fn events() -> impl Strategy<Value = Vec<Timed>> {
    prop::collection::vec(
        (
            input(),
            prop_oneof![6 => 0i64..120, 2 => 0i64..5000, 1 => Just(86_400i64 * 400)],
        )
            .prop_map(|(input, after_secs)| Timed { input, after_secs }),
        1..=6,
    )
}

fn dates() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(
            &[
                "2026-11-20T09:00:00Z",
                "2026-01-01",
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59+14:00",
                "+262142-12-31",
                "-262143-01-01",
                "",
                "not a date",
            ][..]
        )
        .prop_map(str::to_string),
        1 => text(),
    ]
}

/// Runs `events` through the dialogue, state carried from step to step, checking the security
/// invariant after each.
fn converse(
    owner: &str,
    events: &[Timed],
    dates: &str,
    restrict_agents: bool,
) -> Result<(), TestCaseError> {
    let shared = shared();
    let orders = orders(dates);
    let settings = DialogueSettings::default();
    let allowed: HashSet<String> = ["agent-1".to_string()].into();
    let mut now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
    let mut state = Conversation::default();
    for event in events {
        now += Duration::seconds(event.after_secs);
        let ctx = Context {
            kb: &shared.kb,
            orders: &orders,
            catalog: &FakeCatalog,
            retrieval: &parley::retrieval::RetrievalSettings::DEFAULT,
            settings: &settings,
            transcript_turns: 20,
            oos_label: "out_of_scope",
            allowed_agents: restrict_agents.then_some(&allowed),
            now,
        };
        let (result, customer) = match &event.input {
            Input::Customer {
                text,
                customer,
                message_id,
                label,
                confidence,
                hits,
            } => {
                let customer = match customer {
                    Who::Owner => Some(owner.to_string()),
                    Who::Nobody => None,
                    Who::Other(c) => Some(c.clone()),
                };
                let message = InboundMessage {
                    message_id: message_id.clone(),
                    conversation_id: "c-1".into(),
                    text: text.clone(),
                    customer_id: customer.clone(),
                    channel: None,
                    sent_at: None,
                    locale: None,
                };
                // A label the knowledge base does not know now and then (a swapped model).
                let intent = shared
                    .labels
                    .get(*label)
                    .cloned()
                    .unwrap_or_else(|| "unknown_label".into());
                let prediction = Prediction {
                    intent,
                    confidence: *confidence,
                    top: vec![],
                };
                let found = found(hits);
                let event = Event::Customer {
                    message: &message,
                    prediction: &prediction,
                    found: &found,
                };
                (step(state.clone(), event, &ctx), customer)
            }
            Input::Agent {
                agent,
                kind,
                text,
                force,
            } => {
                let action = AgentAction {
                    conversation_id: "c-1".into(),
                    agent_id: agent.clone(),
                    action: *kind,
                    text: text.clone(),
                    action_id: None,
                    sent_at: None,
                    force: *force,
                };
                (step(state.clone(), Event::Agent(&action), &ctx), None)
            }
        };
        for action in &result.actions {
            match action {
                Action::Reply { text, .. } => {
                    for o in orders.0.values() {
                        if customer.as_deref() == Some(o.customer_id.as_str()) {
                            continue;
                        }
                        let secret = o.tracking_number.as_deref().unwrap();
                        let street = &o.shipping_address.as_ref().unwrap().line1;
                        prop_assert!(
                            !text.contains(secret) && !text.contains(street.as_str()),
                            "a reply to {customer:?} shows order {} of {}: {text}",
                            o.order_id,
                            o.customer_id
                        );
                    }
                }
                Action::OrderRequest {
                    order_id,
                    customer_id,
                    ..
                } => {
                    prop_assert_eq!(Some(customer_id), customer.as_ref());
                    let owner = orders.get(order_id).map(|o| o.customer_id);
                    prop_assert_eq!(owner.as_ref(), Some(customer_id));
                }
                Action::Escalate { .. } => {}
            }
        }
        state = result.state;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_dialogue_never_panics_nor_shows_another_customers_order(
        owner in prop::sample::select(&["cust-1", "cust-1", "cust-2", "cust-3"][..]),
        events in events(),
        dates in dates(),
        restrict_agents in any::<bool>(),
    ) {
        converse(owner, &events, &dates, restrict_agents)?;
    }
}

/// The message from the issue that stopped the service, for every customer and every order.
#[test]
fn the_turkish_address_change_from_the_issue() {
    let label = shared()
        .labels
        .iter()
        .position(|l| l == "change_shipping_address")
        .unwrap();
    for id in ORDER_IDS {
        for customer in CUSTOMERS {
            let text = format!(
                "İİİ please change the shipping address of order {id} to Bağdat Cd. 12, İstanbul, Turkey"
            );
            let events = [Timed {
                input: Input::Customer {
                    text,
                    customer: Who::Owner,
                    message_id: "m-1".into(),
                    label,
                    confidence: 0.97,
                    hits: Vec::new(),
                },
                after_secs: 1,
            }];
            converse(customer, &events, "2026-11-20T09:00:00Z", false).unwrap();
        }
    }
}
