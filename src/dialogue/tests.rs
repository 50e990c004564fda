//! Every transition of the dialogue, without Kafka: predictions are given, orders are a map.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::wire::{AgentActionKind, OrderStatus};

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

/// Products by SKU, and articles by id.
#[derive(Default)]
struct FakeCatalog(
    HashMap<String, crate::wire::Product>,
    HashMap<String, crate::wire::Article>,
);

impl crate::dialogue::answers::Catalog for FakeCatalog {
    fn article(&self, id: &str) -> Option<crate::wire::Article> {
        self.1.get(id).cloned()
    }
    fn product(&self, sku: &str) -> Option<crate::wire::Product> {
        self.0.get(sku).cloned()
    }
}

fn order(id: &str, customer: &str, status: OrderStatus, extra: serde_json::Value) -> Order {
    let mut v = serde_json::json!({"order_id": id, "customer_id": customer, "status": status,
        "items": [{"name": "Trail running shoes", "quantity": 1, "unit_price": 89.9}],
        "total": 89.9, "currency": "EUR"});
    if let serde_json::Value::Object(m) = extra {
        for (k, x) in m {
            v[k] = x;
        }
    }
    serde_json::from_value(v).unwrap()
}

struct Chat {
    state: Conversation,
    orders: FakeOrders,
    kb: Knowledge,
    settings: DialogueSettings,
    now: DateTime<Utc>,
    n: usize,
    customer: Option<String>,
    /// What retrieval finds for every message (nothing, unless a test sets it).
    found: crate::retrieval::Found,
    catalog: FakeCatalog,
}

impl Chat {
    fn new() -> Self {
        let kb_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kb");
        Self {
            state: Conversation::default(),
            orders: FakeOrders(HashMap::new()),
            kb: Knowledge::load(&kb_dir, &[], "out_of_scope").unwrap(),
            settings: DialogueSettings::default(),
            now: "2026-11-28T10:00:00Z".parse().unwrap(),
            n: 0,
            customer: Some("cust-1".into()),
            found: crate::retrieval::Found::default(),
            catalog: FakeCatalog::default(),
        }
    }

    fn with_order(mut self, o: Order) -> Self {
        self.orders.0.insert(o.order_id.clone(), o);
        self
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            kb: &self.kb,
            orders: &self.orders,
            catalog: &self.catalog,
            retrieval: &crate::retrieval::RetrievalSettings::DEFAULT,
            settings: &self.settings,
            transcript_turns: 20,
            oos_label: "out_of_scope",
            allowed_agents: None,
            now: self.now,
        }
    }

    fn say(&mut self, text: &str, intent: &str) -> Step {
        self.say_predicted(text, intent, 0.95, &[])
    }

    /// A message the model reads as `intent` with `confidence`, with `top` as its three most
    /// probable labels (empty: no runner-up, so never a choice between two).
    fn say_predicted(
        &mut self,
        text: &str,
        intent: &str,
        confidence: f32,
        top: &[(&str, f32)],
    ) -> Step {
        self.n += 1;
        self.now += Duration::seconds(10);
        let message = InboundMessage {
            message_id: format!("m{}", self.n),
            conversation_id: "c1".into(),
            text: text.into(),
            customer_id: self.customer.clone(),
            channel: None,
            sent_at: None,
            locale: None,
        };
        let prediction = Prediction {
            intent: intent.into(),
            confidence,
            top: top.iter().map(|(l, p)| (l.to_string(), *p)).collect(),
        };
        let state = std::mem::take(&mut self.state);
        let s = step(
            state,
            Event::Customer {
                message: &message,
                prediction: &prediction,
                found: &self.found,
            },
            &self.ctx(),
        );
        self.state = s.state.clone();
        s
    }

    fn agent(&mut self, action: AgentActionKind, text: Option<&str>) -> Step {
        self.agent_as("agent-7", action, text, false)
    }

    fn agent_as(
        &mut self,
        agent: &str,
        action: AgentActionKind,
        text: Option<&str>,
        force: bool,
    ) -> Step {
        self.now += Duration::seconds(10);
        let a = AgentAction {
            conversation_id: "c1".into(),
            agent_id: agent.into(),
            action,
            text: text.map(str::to_string),
            action_id: None,
            sent_at: None,
            force,
        };
        let state = std::mem::take(&mut self.state);
        let s = step(state, Event::Agent(&a), &self.ctx());
        self.state = s.state.clone();
        s
    }
}

fn reply(s: &Step) -> &str {
    s.actions
        .iter()
        .find_map(|a| match a {
            Action::Reply { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reply in {:?}", s.actions))
}

fn escalations(s: &Step) -> Vec<(EscalationType, EscalationReason, Priority)> {
    s.actions
        .iter()
        .filter_map(|a| match a {
            Action::Escalate {
                kind,
                reason,
                priority,
                ..
            } => Some((*kind, *reason, *priority)),
            _ => None,
        })
        .collect()
}

fn requests(s: &Step) -> Vec<(OrderRequestType, String)> {
    s.actions
        .iter()
        .filter_map(|a| match a {
            Action::OrderRequest { kind, order_id, .. } => Some((*kind, order_id.clone())),
            _ => None,
        })
        .collect()
}

fn shipped() -> Order {
    order(
        "A-55102",
        "cust-1",
        OrderStatus::Shipped,
        serde_json::json!({"carrier": "DHL", "tracking_number": "JD014600003", "estimated_delivery": "2026-12-01"}),
    )
}

fn processing() -> Order {
    order(
        "A-60001",
        "cust-1",
        OrderStatus::Processing,
        serde_json::json!({}),
    )
}

#[test]
fn simple_intents_are_answered_from_the_knowledge_base() {
    let mut c = Chat::new();
    let s = c.say("what is your refund policy", "check_refund_policy");
    assert_eq!(s.outcome, Outcome::Answered);
    assert!(reply(&s).contains("30 days"), "{}", reply(&s));
    assert_eq!(c.state.transcript.len(), 2);
    assert_eq!(c.state.intents, vec!["check_refund_policy"]);
}

#[test]
fn off_topic_twice_in_a_row_escalates() {
    let mut c = Chat::new();
    let s = c.say("what's the weather", "out_of_scope");
    assert_eq!(s.outcome, Outcome::Clarified);
    assert!(escalations(&s).is_empty());
    let s = c.say("tell me a joke", "out_of_scope");
    assert_eq!(s.outcome, Outcome::Escalated);
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::Escalation,
            EscalationReason::RepeatedFailure,
            Priority::Normal
        )]
    );
    // The escalation carries the transcript, so the agent needs no back-and-forth.
    if let Some(Action::Escalate { transcript, .. }) = s.actions.last() {
        assert!(transcript.iter().any(|t| t.text == "what's the weather"));
    }
}

#[test]
fn courtesy_is_answered_in_kind_and_never_reaches_a_person() {
    let mut c = Chat::new();
    let s = c.say("hi", "out_of_scope");
    assert_eq!(s.outcome, Outcome::Answered);
    assert!(reply(&s).starts_with("Hello!"), "{}", reply(&s));
    let s = c.say("thank you so much!", "out_of_scope");
    assert!(reply(&s).starts_with("You're welcome"), "{}", reply(&s));
    let s = c.say("ok thx, bye", "out_of_scope");
    assert!(reply(&s).contains("Have a great day"), "{}", reply(&s));
    assert!(escalations(&s).is_empty());
    assert_eq!(c.state.failures, 0);

    // A question asked before stays open through a thank-you...
    let mut c = Chat::new();
    let s = c.say("cancel my order", "cancel_order");
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    assert!(c.state.pending.is_some());
    let s = c.say("thanks", "out_of_scope");
    assert!(reply(&s).starts_with("You're welcome"), "{}", reply(&s));
    assert!(c.state.pending.is_some());
    // "ok thanks" while the bot waits for an order number is no failure either.
    let s = c.say("ok thanks", "out_of_scope");
    assert!(reply(&s).starts_with("You're welcome"), "{}", reply(&s));
    assert_eq!(c.state.failures, 0);
    assert!(c.state.pending.is_some());
    // To "Is this about your order A-60001?", "ok thanks" is a yes.
    let mut c = Chat::new().with_order(processing());
    c.say("cancel my order", "cancel_order");
    let s = c.say("ok thanks", "out_of_scope");
    assert!(reply(&s).contains("Shall I cancel"), "{}", reply(&s));
    // "ok bye" cancels nothing.
    let mut c = Chat::new().with_order(processing());
    c.say("cancel order A-60001", "cancel_order");
    let s = c.say("ok bye", "out_of_scope");
    assert!(requests(&s).is_empty());
    assert!(reply(&s).contains("Have a great day"), "{}", reply(&s));
    // A customer waiting for a person is told they still are.
    let mut c = Chat::new();
    c.state.handoff = Handoff::Queued {
        reason: EscalationReason::CustomerRequest,
        since: c.now,
    };
    let s = c.say("hello?", "out_of_scope");
    assert!(reply(&s).contains("in the queue"), "{}", reply(&s));
    // A confident request for a person is not small talk.
    let mut c = Chat::new();
    let s = c.say("hello hello", "contact_human_agent");
    assert!(!reply(&s).starts_with("Hello!"), "{}", reply(&s));
    // ...and "no thanks" to "shall I cancel it?" is a no.
    let mut c = Chat::new().with_order(processing());
    c.say("cancel order A-60001", "cancel_order");
    let s = c.say("no thanks", "out_of_scope");
    assert!(reply(&s).contains("won't change"), "{}", reply(&s));
    assert!(requests(&s).is_empty());
}

#[test]
fn an_answered_message_resets_the_failure_count() {
    let mut c = Chat::new();
    c.say("asdf", "out_of_scope");
    c.say("how can I pay", "check_payment_methods");
    let s = c.say("qwerty", "out_of_scope");
    assert_eq!(s.outcome, Outcome::Clarified);
}

#[test]
fn asking_for_a_person_escalates_once_and_the_bot_keeps_helping() {
    let mut c = Chat::new();
    let s = c.say("I want to talk to a human", "contact_human_agent");
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::Escalation,
            EscalationReason::CustomerRequest,
            Priority::Normal
        )]
    );
    assert!(reply(&s).contains("person"));
    let s = c.say("a real person please", "contact_human_agent");
    assert!(escalations(&s).is_empty());
    assert!(reply(&s).contains("queue"));
    let s = c.say("which payment methods do you take", "check_payment_methods");
    assert!(
        reply(&s).contains("queue") && reply(&s).contains("PayPal"),
        "{}",
        reply(&s)
    );
}

#[test]
fn complaints_and_anger_escalate_with_high_priority() {
    let mut c = Chat::new();
    let s = c.say("I want to file a complaint", "complaint");
    assert_eq!(escalations(&s)[0].1, EscalationReason::Complaint);
    assert_eq!(escalations(&s)[0].2, Priority::High);
    let mut c = Chat::new();
    let s = c.say("this is the worst shop ever, useless", "track_order");
    assert_eq!(escalations(&s)[0].1, EscalationReason::AngryLanguage);
    assert_eq!(escalations(&s)[0].2, Priority::High);
}

#[test]
fn the_same_request_three_times_is_frustration() {
    let mut c = Chat::new();
    c.say("how do I reset my password", "recover_password");
    c.say("password reset?", "recover_password");
    let s = c.say("how do I reset the password", "recover_password");
    assert_eq!(escalations(&s)[0].1, EscalationReason::Frustration);
}

#[test]
fn track_order_asks_for_the_number_then_answers_from_the_orders_table() {
    let mut c = Chat::new().with_order(shipped()).with_order(processing());
    let s = c.say("where is my order?", "track_order");
    assert_eq!(s.outcome, Outcome::Asked);
    assert!(reply(&s).contains("order number"));
    // On its own this would not classify as track_order.
    let s = c.say("it's A-55102", "out_of_scope");
    assert!(matches!(&s.actions[0], Action::Reply { intent: Some(i), .. } if i == "track_order"));
    let text = reply(&s);
    assert!(
        text.contains("shipped") && text.contains("JD014600003") && text.contains("DHL"),
        "{text}"
    );
    assert_eq!(c.state.pending, None);
    assert_eq!(c.state.slots.order_id.as_deref(), Some("A-55102"));
}

#[test]
fn a_delivery_question_about_my_order_is_tracking() {
    let mut c = Chat::new().with_order(shipped());
    let s = c.say("where is my order?", "delivery_period");
    assert!(reply(&s).contains("A-55102"), "{}", reply(&s));
    assert_eq!(c.state.intents, vec!["track_order"]);
    let mut c = Chat::new().with_order(shipped());
    let s = c.say("how long does standard delivery take", "delivery_period");
    assert!(reply(&s).contains("business days"), "{}", reply(&s));
}

#[test]
fn one_open_order_is_offered() {
    let mut c = Chat::new().with_order(shipped());
    let s = c.say("where is my parcel", "track_order");
    assert!(reply(&s).contains("A-55102"), "{}", reply(&s));
    let s = c.say("yes", "out_of_scope");
    assert!(reply(&s).contains("JD014600003"));
    let mut c = Chat::new().with_order(shipped());
    c.say("where is my parcel", "track_order");
    let s = c.say("no", "out_of_scope");
    assert!(reply(&s).contains("order number"));
    assert!(matches!(
        c.state.pending,
        Some(Pending::OrderNumber { offered: None, .. })
    ));
}

#[test]
fn another_customers_order_reveals_nothing() {
    let mut c = Chat::new().with_order(order(
        "A-77777",
        "cust-2",
        OrderStatus::Shipped,
        serde_json::json!({"carrier": "UPS", "tracking_number": "1Z999"}),
    ));
    let s = c.say("where is order A-77777", "track_order");
    let text = reply(&s);
    assert!(text.contains("couldn't find"), "{text}");
    assert!(!text.contains("1Z999") && !text.contains("UPS") && !text.contains("shipped"));
    assert_eq!(c.state.slots.order_id, None);
    // Without a customer id there is no order data at all.
    let mut c = Chat::new().with_order(shipped());
    c.customer = None;
    let s = c.say("where is order A-55102", "track_order");
    assert!(!reply(&s).contains("JD014600003"));
    assert!(reply(&s).contains("signed in"));
}

#[test]
fn cancel_asks_to_confirm_and_only_yes_publishes() {
    let mut c = Chat::new().with_order(processing());
    let s = c.say("cancel order A-60001", "cancel_order");
    assert_eq!(s.outcome, Outcome::Asked);
    assert!(reply(&s).contains("Shall I cancel"));
    assert!(requests(&s).is_empty());
    let s = c.say("yep", "out_of_scope");
    assert_eq!(
        requests(&s),
        vec![(OrderRequestType::Cancel, "A-60001".to_string())]
    );
    assert_eq!(s.outcome, Outcome::OrderRequested);

    let mut c = Chat::new().with_order(processing());
    c.say("cancel order A-60001", "cancel_order");
    let s = c.say("don't", "out_of_scope");
    assert!(requests(&s).is_empty());
    assert!(reply(&s).contains("won't change"));
    assert_eq!(c.state.pending, None);
}

#[test]
fn an_unclear_answer_to_a_confirmation_asks_again() {
    let mut c = Chat::new().with_order(processing());
    c.say("cancel order A-60001", "cancel_order");
    let s = c.say("hmm", "out_of_scope");
    assert!(reply(&s).contains("yes or a no"));
    assert!(matches!(c.state.pending, Some(Pending::Confirm { .. })));
    let s = c.say("sure", "out_of_scope");
    assert_eq!(requests(&s).len(), 1);
}

#[test]
fn a_shipped_order_cannot_be_cancelled() {
    let mut c = Chat::new().with_order(shipped());
    let s = c.say("please cancel my order A-55102", "cancel_order");
    assert!(requests(&s).is_empty());
    assert!(reply(&s).contains("already shipped"));
    assert!(reply(&s).contains("refund"));
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_confirmation_checks_the_order_again() {
    let mut c = Chat::new().with_order(processing());
    c.say("cancel order A-60001", "cancel_order");
    c.orders.0.get_mut("A-60001").unwrap().status = OrderStatus::Shipped;
    let s = c.say("yes", "out_of_scope");
    assert!(requests(&s).is_empty());
    assert!(reply(&s).contains("already shipped"));
}

#[test]
fn address_change_collects_the_address_then_confirms() {
    let mut c = Chat::new().with_order(processing());
    let s = c.say(
        "change the delivery address of A-60001",
        "change_shipping_address",
    );
    assert!(reply(&s).contains("new delivery address"));
    let s = c.say("12 High Street, Leeds, LS1 4AB, UK", "out_of_scope");
    assert!(reply(&s).contains("12 High Street"));
    let s = c.say("yes", "out_of_scope");
    let Some(Action::OrderRequest { kind, details, .. }) = s
        .actions
        .iter()
        .find(|a| matches!(a, Action::OrderRequest { .. }))
    else {
        panic!("no request: {:?}", s.actions)
    };
    assert_eq!(*kind, OrderRequestType::ChangeAddress);
    assert_eq!(details["shipping_address"]["city"], "Leeds");
    assert_eq!(details["shipping_address"]["country"], "UK");
    // After shipping it is too late.
    let mut c = Chat::new().with_order(shipped());
    let s = c.say("change address for A-55102", "change_shipping_address");
    assert!(reply(&s).contains("already shipped"));
}

#[test]
fn refunds_follow_the_window() {
    let delivered = |id: &str, at: &str| {
        order(
            id,
            "cust-1",
            OrderStatus::Delivered,
            serde_json::json!({ "delivered_at": at }),
        )
    };
    let mut c = Chat::new()
        .with_order(delivered("A-1001", "2026-11-20T12:00:00Z"))
        .with_order(delivered("A-1002", "2026-09-01T12:00:00Z"));
    let s = c.say("I want a refund for A-1001", "get_refund");
    assert!(
        reply(&s).contains("Shall I request a refund"),
        "{}",
        reply(&s)
    );
    let s = c.say("yes please", "out_of_scope");
    assert_eq!(
        requests(&s),
        vec![(OrderRequestType::Refund, "A-1001".to_string())]
    );
    let s = c.say("and a refund for A-1002", "get_refund");
    assert!(reply(&s).contains("outside the refund window"));
    assert!(requests(&s).is_empty());
    let mut c = Chat::new().with_order(processing());
    let s = c.say("refund A-60001", "get_refund");
    assert!(reply(&s).contains("can't be refunded yet"));
}

#[test]
fn a_question_expires_after_the_idle_time() {
    let mut c = Chat::new().with_order(processing());
    c.say("cancel my order A-60001", "cancel_order");
    c.now += Duration::seconds(c.settings.pending_timeout_secs + 1);
    let s = c.say("yes", "out_of_scope");
    assert!(requests(&s).is_empty());
    assert!(reply(&s).contains("dropped the earlier request"));
}

#[test]
fn a_new_request_replaces_an_open_question() {
    let mut c = Chat::new();
    c.say("where is my order", "track_order");
    let s = c.say(
        "what payment methods do you accept",
        "check_payment_methods",
    );
    assert!(reply(&s).contains("PayPal"));
    assert_eq!(c.state.pending, None);
}

#[test]
fn no_order_number_twice_escalates() {
    let mut c = Chat::new();
    c.say("where is my order", "track_order");
    let s = c.say("hmm", "out_of_scope");
    assert!(reply(&s).contains("still need the order number"));
    let s = c.say("dunno", "out_of_scope");
    assert_eq!(escalations(&s)[0].1, EscalationReason::RepeatedFailure);
}

#[test]
fn a_question_asked_instead_of_the_order_number_is_answered_from_the_articles() {
    let mut c = Chat::new();
    let warranty: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "warranty", "title": "Warranty", "url": "https://help.example/warranty",
        "body": "Every product comes with the 2-year legal guarantee."
    }))
    .unwrap();
    c.catalog.1.insert("warranty".into(), warranty);
    c.say("I want to exchange my kettle", "exchange_item");
    assert!(matches!(c.state.pending, Some(Pending::OrderNumber { .. })));
    c.found = article_hit("warranty");
    let s = c.say("what warranty do i get on that", "out_of_scope");
    assert!(
        reply(&s).contains("2-year legal guarantee"),
        "{}",
        reply(&s)
    );
    assert!(escalations(&s).is_empty());
    assert_eq!(c.state.pending, None);
    // A question nothing answers still gets the order number asked for again.
    let mut c = Chat::new();
    c.say("I want to exchange my kettle", "exchange_item");
    let s = c.say("why do you need that?", "out_of_scope");
    assert!(
        reply(&s).contains("still need the order number"),
        "{}",
        reply(&s)
    );
    // The same request asked again as a question is no aside: the number is still wanted.
    let mut c = Chat::new();
    let warranty = serde_json::json!({"id": "warranty", "title": "Warranty", "body": "2 years."});
    c.catalog
        .1
        .insert("warranty".into(), serde_json::from_value(warranty).unwrap());
    c.say("I want to exchange my kettle", "exchange_item");
    c.found = article_hit("warranty");
    let s = c.say("can you exchange it for me?", "exchange_item");
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    assert!(matches!(c.state.pending, Some(Pending::OrderNumber { .. })));
}

#[test]
fn full_handoff() {
    let mut c = Chat::new().with_order(shipped());
    c.say("where is A-55102", "track_order");
    let s = c.say("I need to speak to someone", "contact_human_agent");
    assert_eq!(escalations(&s).len(), 1);
    if let Some(Action::Escalate {
        order_id, intents, ..
    }) = s.actions.last()
    {
        assert_eq!(order_id.as_deref(), Some("A-55102"));
        assert!(intents.contains(&"track_order".to_string()));
    }
    let s = c.agent(AgentActionKind::TakeOver, None);
    assert!(s.actions.is_empty());
    let s = c.say("hello? is anyone there", "out_of_scope");
    assert_eq!(s.outcome, Outcome::Forwarded);
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::CustomerMessage,
            EscalationReason::CustomerMessage,
            Priority::Normal
        )]
    );
    assert!(!s.actions.iter().any(|a| matches!(a, Action::Reply { .. })));
    let s = c.agent(AgentActionKind::Reply, Some("Hi, I'm Sam. Let me check."));
    match &s.actions[0] {
        Action::Reply {
            author,
            agent_id,
            in_reply_to,
            ..
        } => {
            assert_eq!(*author, Author::Agent);
            assert_eq!(agent_id.as_deref(), Some("agent-7"));
            assert_eq!(in_reply_to.as_deref(), Some("m3"));
        }
        other => panic!("{other:?}"),
    }
    assert!(c
        .state
        .transcript
        .iter()
        .any(|t| t.role == crate::wire::Role::Agent));
    let s = c.agent(AgentActionKind::HandBack, None);
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::HandoffEnded,
            EscalationReason::HandBack,
            Priority::Low
        )]
    );
    assert_eq!(c.state.handoff, Handoff::Bot);
    let s = c.say("what payment methods do you take", "check_payment_methods");
    assert!(reply(&s).contains("PayPal"));
}

#[test]
fn an_agent_reply_to_a_queued_conversation_takes_over_and_close_starts_afresh() {
    let mut c = Chat::new().with_order(shipped());
    c.say("where is A-55102", "track_order");
    c.say("I want a person", "contact_human_agent");
    let s = c.agent(AgentActionKind::Reply, Some("I'm on it."));
    assert_eq!(s.actions.len(), 1);
    assert!(matches!(c.state.handoff, Handoff::Agent { .. }));
    let s = c.agent(AgentActionKind::Close, None);
    assert_eq!(escalations(&s)[0].1, EscalationReason::Close);
    assert!(!s.actions.iter().any(|a| matches!(a, Action::Reply { .. })));
    assert_eq!(c.state.slots.order_id, None);
    // Handing back a conversation the bot already has is refused and changes nothing.
    let before = c.state.clone();
    let s = c.agent(AgentActionKind::HandBack, None);
    assert!(s.actions.is_empty());
    assert_eq!(s.rejection.unwrap().kind, ErrorKind::AgentNotAllowed);
    assert_eq!(c.state, before);
}

fn rejected(s: &Step) -> Option<ErrorKind> {
    s.rejection.as_ref().map(|r| r.kind)
}

#[test]
fn only_the_holder_acts_and_taking_from_a_colleague_needs_force() {
    let mut c = Chat::new();
    // Nothing to take over before the customer has written.
    let s = c.agent_as("ann", AgentActionKind::TakeOver, None, true);
    assert_eq!(rejected(&s), Some(ErrorKind::AgentNotAllowed));
    c.say("how do I reset my password", "recover_password");
    // Never escalated: taking over or replying needs force.
    for action in [AgentActionKind::TakeOver, AgentActionKind::Reply] {
        let s = c.agent_as("ann", action, Some("hi"), false);
        assert_eq!(rejected(&s), Some(ErrorKind::AgentNotAllowed));
        assert!(s.actions.is_empty());
    }
    assert_eq!(c.state.handoff, Handoff::Bot);
    let s = c.agent_as("ann", AgentActionKind::TakeOver, None, true);
    assert_eq!(rejected(&s), None);
    // Bob may not reply, hand back, close or take over without force.
    for action in [
        AgentActionKind::Reply,
        AgentActionKind::HandBack,
        AgentActionKind::Close,
        AgentActionKind::TakeOver,
    ] {
        let before = c.state.clone();
        let s = c.agent_as("bob", action, Some("me too"), false);
        assert_eq!(rejected(&s), Some(ErrorKind::AgentNotAllowed), "{action:?}");
        assert_eq!(c.state, before);
    }
    let s = c.agent_as("ann", AgentActionKind::Reply, Some("Ann here"), false);
    assert_eq!(reply(&s), "Ann here");
    let s = c.agent_as("bob", AgentActionKind::TakeOver, None, true);
    assert_eq!(rejected(&s), None);
    assert!(matches!(&c.state.handoff, Handoff::Agent { agent_id, .. } if agent_id == "bob"));
    let s = c.agent_as("ann", AgentActionKind::Reply, Some("still me"), false);
    assert_eq!(rejected(&s), Some(ErrorKind::AgentNotAllowed));
}

#[test]
fn agents_off_the_allow_list_are_refused() {
    let mut c = Chat::new();
    c.say("I want a person", "contact_human_agent");
    let allowed: std::collections::HashSet<String> = ["ann".to_string()].into();
    let kb = Knowledge::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kb"),
        &[],
        "out_of_scope",
    )
    .unwrap();
    let ctx = Context {
        kb: &kb,
        orders: &c.orders,
        catalog: &crate::dialogue::answers::NoCatalog,
        retrieval: &crate::retrieval::RetrievalSettings::DEFAULT,
        settings: &c.settings,
        transcript_turns: 20,
        oos_label: "out_of_scope",
        allowed_agents: Some(&allowed),
        now: c.now,
    };
    let action = |agent: &str| AgentAction {
        conversation_id: "c1".into(),
        agent_id: agent.into(),
        action: AgentActionKind::TakeOver,
        text: None,
        action_id: None,
        sent_at: None,
        force: true,
    };
    let s = step(c.state.clone(), Event::Agent(&action("mallory")), &ctx);
    assert_eq!(rejected(&s), Some(ErrorKind::UnknownAgent));
    let s = step(c.state.clone(), Event::Agent(&action("ann")), &ctx);
    assert_eq!(rejected(&s), None);
}

#[test]
fn an_idle_agent_loses_the_conversation_to_the_queue() {
    let mut c = Chat::new();
    c.say("I want a person", "contact_human_agent");
    c.agent_as("ann", AgentActionKind::TakeOver, None, false);
    // Within the timeout the message is forwarded to Ann.
    let s = c.say("hello?", "out_of_scope");
    assert_eq!(s.outcome, Outcome::Forwarded);
    c.now += Duration::seconds(c.settings.agent_idle_timeout_secs + 1);
    let s = c.say(
        "what payment methods do you accept",
        "check_payment_methods",
    );
    assert_ne!(s.outcome, Outcome::Forwarded);
    assert!(!reply(&s).is_empty());
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::Escalation,
            EscalationReason::AgentTimeout,
            Priority::High
        )]
    );
    assert!(matches!(c.state.handoff, Handoff::Queued { .. }));
    // Ann's late reply is refused; she can take the queued conversation again.
    let s = c.agent_as("ann", AgentActionKind::HandBack, None, false);
    assert_eq!(rejected(&s), Some(ErrorKind::AgentNotAllowed));
    let s = c.agent_as("ann", AgentActionKind::Reply, Some("back again"), false);
    assert_eq!(reply(&s), "back again");
}

#[test]
fn a_conversation_keeps_the_customer_of_its_first_message() {
    let mut c = Chat::new().with_order(shipped());
    c.say("where is A-55102", "track_order");
    c.customer = Some("cust-2".into());
    let before = c.state.clone();
    let s = c.say("where is A-55102", "track_order");
    assert_eq!(rejected(&s), Some(ErrorKind::IdentityMismatch));
    assert!(s.actions.is_empty());
    assert_eq!(c.state, before);
    // The signed-out customer is still answered, with no order data.
    c.customer = None;
    let s = c.say("where is A-55102", "track_order");
    assert_eq!(rejected(&s), None);
    assert!(!reply(&s).contains("JD"), "{}", reply(&s));
}

#[test]
fn the_transcript_is_bounded() {
    let mut c = Chat::new();
    for _ in 0..30 {
        c.say("how can I pay", "check_payment_methods");
        c.state.repeat = None;
    }
    assert_eq!(c.state.transcript.len(), 20);
    assert!(c.state.intents.len() <= 10);
}

#[test]
fn steps_are_pure() {
    let a = {
        let mut c = Chat::new().with_order(processing());
        c.say("cancel A-60001", "cancel_order");
        c.say("yes", "out_of_scope")
    };
    let b = {
        let mut c = Chat::new().with_order(processing());
        c.say("cancel A-60001", "cancel_order");
        c.say("yes", "out_of_scope")
    };
    assert_eq!(a, b);
}

#[test]
fn a_new_order_request_replaces_the_question_number_and_all() {
    let mut c = Chat::new().with_order(processing()).with_order(shipped());
    c.say("where is my order", "track_order");
    let s = c.say("actually I want to cancel order A-60001", "cancel_order");
    assert!(reply(&s).contains("Shall I cancel"), "{}", reply(&s));
    assert!(matches!(&s.actions[0], Action::Reply { intent: Some(i), .. } if i == "cancel_order"));
}

#[test]
fn an_address_in_capitals_is_not_anger_and_an_inline_address_is_used() {
    let mut c = Chat::new().with_order(processing());
    c.say(
        "change the delivery address of A-60001",
        "change_shipping_address",
    );
    let s = c.say("221B BAKER STREET, LONDON, NW1 6XE, UK", "out_of_scope");
    assert!(escalations(&s).is_empty());
    assert!(reply(&s).contains("221B BAKER STREET"), "{}", reply(&s));
    let mut c = Chat::new().with_order(processing());
    let s = c.say(
        "change the address of order A-60001 to 5 Elm Road, Bath, BA1 1AA, UK",
        "change_shipping_address",
    );
    assert!(reply(&s).contains("to: 5 Elm Road, Bath"), "{}", reply(&s));
    assert!(!reply(&s).contains("change the address"), "{}", reply(&s));
}

#[test]
fn a_queue_nobody_picks_up_returns_to_the_bot() {
    let mut c = Chat::new();
    c.say("I want a person", "contact_human_agent");
    c.now += Duration::seconds(c.settings.queue_timeout_secs + 1);
    let s = c.say("I want to make a complaint", "complaint");
    assert_eq!(
        escalations(&s).len(),
        1,
        "a new escalation after the queue expired"
    );
}

#[test]
fn an_address_without_city_or_country_is_asked_for_again() {
    let mut c = Chat::new().with_order(processing());
    c.say(
        "change the delivery address of A-60001",
        "change_shipping_address",
    );
    let s = c.say("14 High Street Leeds", "out_of_scope");
    assert!(reply(&s).contains("new delivery address"), "{}", reply(&s));
    assert!(matches!(c.state.pending, Some(Pending::NewAddress { .. })));
    let s = c.say("14 High Street, Leeds, LS1 4AB, UK", "out_of_scope");
    assert!(reply(&s).contains("Is that right"), "{}", reply(&s));
}

#[test]
fn unreadable_addresses_again_and_again_reach_a_person() {
    let mut c = Chat::new().with_order(processing());
    c.say(
        "change the delivery address of A-60001",
        "change_shipping_address",
    );
    let s = c.say(
        "Flat 2, 7 Elm Road, Bath, BA1 1AA, Narnia, Europe",
        "out_of_scope",
    );
    assert!(reply(&s).contains("new delivery address"), "{}", reply(&s));
    let s = c.say(
        "12 Main Street, Springfield, 12345, 67890, Atlantis",
        "out_of_scope",
    );
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::Escalation,
            EscalationReason::RepeatedFailure,
            Priority::Normal
        )]
    );
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_refund_without_a_total_names_no_amount() {
    let o = order(
        "A-2001",
        "cust-1",
        OrderStatus::Delivered,
        serde_json::json!({"delivered_at": "2026-11-25T10:00:00Z", "total": null}),
    );
    let mut c = Chat::new().with_order(o);
    c.say("refund for A-2001 please", "get_refund");
    let s = c.say("yes", "out_of_scope");
    let Some(Action::OrderRequest { details, .. }) = s
        .actions
        .iter()
        .find(|a| matches!(a, Action::OrderRequest { .. }))
    else {
        panic!("{:?}", s.actions)
    };
    assert!(details.get("amount").is_none(), "{details}");
}

// --- Returns, exchanges, damaged items, missing parcels, promo codes ---

/// A delivered order of `cust-1`, carried by DHL.
fn delivered(id: &str, at: &str) -> Order {
    order(
        id,
        "cust-1",
        OrderStatus::Delivered,
        serde_json::json!({"delivered_at": at, "carrier": "DHL", "tracking_number": "JD0146"}),
    )
}

/// Delivered 8 days before the chat: inside the 30-day window.
fn recent(id: &str) -> Order {
    delivered(id, "2026-11-20T12:00:00Z")
}

/// Delivered 88 days before the chat: outside the 30-day window.
fn old(id: &str) -> Order {
    delivered(id, "2026-09-01T12:00:00Z")
}

/// The one order request of a step, with its details.
fn the_request(s: &Step) -> (OrderRequestType, String, serde_json::Value) {
    let found: Vec<_> = s
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::OrderRequest {
                kind,
                order_id,
                customer_id,
                details,
            } => {
                assert_eq!(customer_id, "cust-1");
                Some((*kind, order_id.clone(), details.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "{:?}", s.actions);
    found.into_iter().next().unwrap()
}

/// The intent the bot's reply says it answers.
fn reply_intent(s: &Step) -> Option<&str> {
    s.actions.iter().find_map(|a| match a {
        Action::Reply { intent, .. } => intent.as_deref(),
        _ => None,
    })
}

#[test]
fn a_return_within_the_window_is_confirmed_then_requested() {
    let mut c = Chat::new().with_order(recent("A-1001"));
    let s = c.say("I want to return order A-1001", "return_item");
    assert_eq!(s.outcome, Outcome::Asked);
    let text = reply(&s);
    assert!(
        text.contains("Shall I arrange a return?")
            && text.contains("30-day return window")
            && text.contains("20 November 2026")
            && text.contains("1 x Trail running shoes"),
        "{text}"
    );
    assert!(requests(&s).is_empty());
    assert!(matches!(
        &c.state.pending,
        Some(Pending::Confirm { request, .. })
            if request.kind == OrderRequestType::Return && request.order_id == "A-1001"
    ));
    let s = c.say("yes", "out_of_scope");
    assert_eq!(s.outcome, Outcome::OrderRequested);
    assert_eq!(reply_intent(&s), Some("return_item"));
    assert!(
        reply(&s).contains("I've asked for a return of order A-1001"),
        "{}",
        reply(&s)
    );
    assert_eq!(
        the_request(&s),
        (
            OrderRequestType::Return,
            "A-1001".to_string(),
            serde_json::json!({"reason": "return requested by the customer in chat"})
        )
    );
    assert_eq!(c.state.pending, None);
    assert!(escalations(&s).is_empty());
}

#[test]
fn a_declined_return_requests_nothing() {
    let mut c = Chat::new().with_order(recent("A-1001"));
    c.say("I want to return order A-1001", "return_item");
    let s = c.say("no", "out_of_scope");
    assert!(requests(&s).is_empty());
    assert!(reply(&s).contains("won't change"), "{}", reply(&s));
    assert_eq!(c.state.pending, None);
}

#[test]
fn returns_outside_the_window_not_yet_delivered_or_already_refunded_are_refused() {
    let refunded = order(
        "A-1003",
        "cust-1",
        OrderStatus::Refunded,
        serde_json::json!({"delivered_at": "2026-11-20T12:00:00Z"}),
    );
    let mut c = Chat::new()
        .with_order(old("A-1002"))
        .with_order(shipped())
        .with_order(refunded);
    for (text, want) in [
        (
            "I want to return order A-1002",
            "Order A-1002 was delivered on 1 September 2026, more than 30 days ago, so it's outside the return window",
        ),
        (
            "I want to return order A-55102",
            "Order A-55102 is shipped, so it can't be returned yet",
        ),
        (
            "I want to return order A-1003",
            "Order A-1003 is already refunded, so there's nothing left to return",
        ),
    ] {
        let s = c.say(text, "return_item");
        assert_eq!(s.outcome, Outcome::Answered, "{text}");
        assert!(reply(&s).contains(want), "{text}: {}", reply(&s));
        assert!(requests(&s).is_empty(), "{text}");
        assert!(escalations(&s).is_empty(), "{text}");
        assert_eq!(c.state.pending, None, "{text}");
        assert!(!reply(&s).contains("Shall I"), "{text}: {}", reply(&s));
        c.state.repeat = None;
    }
}

#[test]
fn a_return_confirmation_checks_the_order_again() {
    let mut c = Chat::new().with_order(recent("A-1001"));
    c.say("I want to return order A-1001", "return_item");
    c.orders.0.get_mut("A-1001").unwrap().status = OrderStatus::Returned;
    let s = c.say("yes", "out_of_scope");
    assert!(requests(&s).is_empty());
    assert!(
        reply(&s).contains("already returned, so there's nothing left to return"),
        "{}",
        reply(&s)
    );
}

#[test]
fn an_exchange_within_the_window_is_confirmed_then_requested() {
    let mut c = Chat::new().with_order(recent("A-1001"));
    let s = c.say(
        "can I exchange the shoes from A-1001 for a bigger size",
        "exchange_item",
    );
    assert_eq!(s.outcome, Outcome::Asked);
    assert!(
        reply(&s).contains("Shall I set up the exchange?"),
        "{}",
        reply(&s)
    );
    assert!(requests(&s).is_empty());
    let s = c.say("yes please", "out_of_scope");
    assert_eq!(s.outcome, Outcome::OrderRequested);
    assert_eq!(reply_intent(&s), Some("exchange_item"));
    assert!(
        reply(&s).contains("I've set up an exchange for order A-1001"),
        "{}",
        reply(&s)
    );
    assert_eq!(
        the_request(&s),
        (
            OrderRequestType::Exchange,
            "A-1001".to_string(),
            serde_json::json!({"reason": "exchange requested by the customer in chat"})
        )
    );
}

#[test]
fn an_exchange_outside_the_window_or_before_delivery_is_refused() {
    let mut c = Chat::new().with_order(old("A-1002")).with_order(shipped());
    let s = c.say("I want to exchange order A-1002", "exchange_item");
    assert!(
        reply(&s).contains("outside the return window"),
        "{}",
        reply(&s)
    );
    assert!(requests(&s).is_empty());
    assert_eq!(c.state.pending, None);
    let s = c.say("I want to exchange order A-55102", "exchange_item");
    assert!(reply(&s).contains("can't be returned yet"), "{}", reply(&s));
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_damaged_item_gets_a_free_return_whether_shipped_or_delivered() {
    for o in [shipped(), recent("A-1001")] {
        let id = o.order_id.clone();
        let mut c = Chat::new().with_order(o);
        let s = c.say(
            &format!("the shoes in order {id} arrived broken"),
            "damaged_or_wrong_item",
        );
        assert_eq!(s.outcome, Outcome::Asked, "{id}");
        assert!(
            reply(&s).contains(&format!("I'm sorry order {id}"))
                && reply(&s).contains("I can arrange a free return"),
            "{}",
            reply(&s)
        );
        assert!(requests(&s).is_empty());
        assert!(escalations(&s).is_empty());
        let s = c.say("yes", "out_of_scope");
        assert_eq!(s.outcome, Outcome::OrderRequested, "{id}");
        assert!(
            reply(&s).contains(&format!("I've arranged a free return for order {id}")),
            "{}",
            reply(&s)
        );
        assert!(!reply(&s).contains("EUR 4.95"), "{}", reply(&s));
        assert_eq!(
            the_request(&s),
            (
                OrderRequestType::Return,
                id.clone(),
                serde_json::json!({"reason": "damaged_or_wrong_item", "free_return": true})
            )
        );
    }
}

#[test]
fn a_damaged_item_outside_the_window_goes_to_a_person_as_a_complaint() {
    let mut c = Chat::new().with_order(old("A-1002"));
    let s = c.say(
        "the item in order A-1002 is the wrong colour",
        "damaged_or_wrong_item",
    );
    assert_eq!(s.outcome, Outcome::Escalated);
    assert!(requests(&s).is_empty());
    assert_eq!(c.state.pending, None);
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::Escalation,
            EscalationReason::Complaint,
            Priority::High
        )]
    );
    let text = reply(&s);
    assert!(
        text.contains("outside the return window; our team will look at the fault")
            && text.contains("a person will take over"),
        "{text}"
    );
    assert!(matches!(
        c.state.handoff,
        Handoff::Queued {
            reason: EscalationReason::Complaint,
            ..
        }
    ));
    if let Some(Action::Escalate {
        order_id, intent, ..
    }) = s.actions.last()
    {
        assert_eq!(order_id.as_deref(), Some("A-1002"));
        assert_eq!(intent.as_deref(), Some("damaged_or_wrong_item"));
    } else {
        panic!("{:?}", s.actions)
    }
}

#[test]
fn a_damaged_item_not_yet_shipped_cannot_be_returned() {
    let mut c = Chat::new().with_order(processing());
    let s = c.say("order A-60001 is damaged", "damaged_or_wrong_item");
    assert!(reply(&s).contains("can't be returned yet"), "{}", reply(&s));
    assert!(requests(&s).is_empty());
    assert!(escalations(&s).is_empty());
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_parcel_marked_delivered_but_missing_is_a_high_priority_claim() {
    let mut c = Chat::new().with_order(recent("A-1001"));
    let s = c.say(
        "order A-1001 says delivered but I never got it",
        "delivered_not_received",
    );
    assert_eq!(s.outcome, Outcome::Escalated);
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::Escalation,
            EscalationReason::DeliveryClaim,
            Priority::High
        )]
    );
    assert!(requests(&s).is_empty());
    let text = reply(&s);
    assert!(
        text.contains("Order A-1001 was marked as delivered by DHL on 20 November 2026")
            && text.contains("open a claim with the carrier"),
        "{text}"
    );
    if let Some(Action::Escalate {
        order_id,
        transcript,
        ..
    }) = s.actions.last()
    {
        assert_eq!(order_id.as_deref(), Some("A-1001"));
        assert!(transcript
            .iter()
            .any(|t| t.text.contains("marked as delivered by DHL")));
    } else {
        panic!("{:?}", s.actions)
    }
}

#[test]
fn a_parcel_still_on_its_way_is_not_a_claim() {
    let mut c = Chat::new().with_order(shipped());
    let s = c.say(
        "order A-55102 never arrived, where is it",
        "delivered_not_received",
    );
    assert_eq!(s.outcome, Outcome::Answered);
    assert!(escalations(&s).is_empty());
    assert_eq!(c.state.handoff, Handoff::Bot);
    let text = reply(&s);
    assert!(
        text.contains("Order A-55102 isn't marked as delivered yet.")
            && text.contains("has shipped with DHL, tracking number JD014600003"),
        "{text}"
    );
}

#[test]
fn promo_codes_are_answered_from_the_knowledge_base() {
    let mut c = Chat::new();
    let s = c.say("how do I use my promo code", "promo_code");
    assert_eq!(s.outcome, Outcome::Answered);
    let text = reply(&s);
    assert!(
        text.contains("'Discount code' field") && text.contains("codes can't be combined"),
        "{text}"
    );
    assert!(escalations(&s).is_empty() && requests(&s).is_empty());
    assert_eq!(c.state.pending, None);
}

// --- Asking between two intents ---

/// The model is torn between tracking and delivery time.
const TORN: &[(&str, f32)] = &[
    ("track_order", 0.45),
    ("delivery_period", 0.35),
    ("out_of_scope", 0.1),
];

/// A message the model cannot place at all.
const LOST: &[(&str, f32)] = &[("out_of_scope", 0.3), ("review", 0.2), ("place_order", 0.1)];

fn torn(c: &mut Chat, text: &str) -> Step {
    c.say_predicted(text, "track_order", 0.45, TORN)
}

fn lost(c: &mut Chat, text: &str) -> Step {
    c.say_predicted(text, "out_of_scope", 0.3, LOST)
}

#[test]
fn an_unsure_prediction_asks_which_of_the_two() {
    let mut c = Chat::new().with_order(shipped());
    let s = torn(&mut c, "when is it coming");
    assert_eq!(s.outcome, Outcome::Clarified);
    assert_eq!(
        reply(&s),
        "Just to be sure: do you want to track your order, or know how long delivery takes?"
    );
    assert!(escalations(&s).is_empty() && requests(&s).is_empty());
    assert!(matches!(
        &c.state.pending,
        Some(Pending::Choose { options, order_id: None, .. })
            if options == &["track_order".to_string(), "delivery_period".to_string()]
    ));
    // Asking is no failure.
    assert_eq!(c.state.failures, 0);
    let s = lost(&mut c, "the second");
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(reply_intent(&s), Some("delivery_period"));
    assert!(
        reply(&s).contains("Standard delivery takes 3-5 business days"),
        "{}",
        reply(&s)
    );
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_description_word_picks_the_option() {
    let mut c = Chat::new().with_order(shipped());
    torn(&mut c, "when is it coming");
    let s = lost(&mut c, "tracking");
    assert_eq!(s.outcome, Outcome::Asked);
    assert_eq!(reply_intent(&s), Some("track_order"));
    // The one open order is offered, as for any tracking request.
    assert!(reply(&s).contains("A-55102"), "{}", reply(&s));
    assert!(matches!(
        &c.state.pending,
        Some(Pending::OrderNumber { intent, offered: Some(o), .. })
            if intent == "track_order" && o == "A-55102"
    ));
    let s = c.say("yes", "out_of_scope");
    assert!(reply(&s).contains("JD014600003"), "{}", reply(&s));
    // Without an open order the number is asked for.
    let mut c = Chat::new();
    torn(&mut c, "when is it coming");
    let s = lost(&mut c, "tracking");
    assert_eq!(reply_intent(&s), Some("track_order"));
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    assert!(matches!(
        c.state.pending,
        Some(Pending::OrderNumber { offered: None, .. })
    ));
}

#[test]
fn a_rephrase_the_model_reads_as_one_option_picks_it() {
    let mut c = Chat::new().with_order(shipped());
    torn(&mut c, "when is it coming");
    let s = c.say_predicted(
        "how many days does shipping take",
        "delivery_period",
        0.9,
        &[
            ("delivery_period", 0.9),
            ("delivery_options", 0.05),
            ("track_order", 0.03),
        ],
    );
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(reply_intent(&s), Some("delivery_period"));
    assert!(reply(&s).contains("business days"), "{}", reply(&s));
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_new_request_instead_of_an_answer_drops_the_choice() {
    let mut c = Chat::new();
    torn(&mut c, "when is it coming");
    let s = c.say_predicted(
        "which payment methods do you accept",
        "check_payment_methods",
        0.9,
        &[("check_payment_methods", 0.9), ("payment_issue", 0.05)],
    );
    assert_eq!(s.outcome, Outcome::Answered);
    assert!(reply(&s).contains("PayPal"), "{}", reply(&s));
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_question_an_article_answers_instead_of_picking_is_answered() {
    let mut c = Chat::new();
    torn(&mut c, "when is it coming");
    let label: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "how-to-return", "title": "How to send a return",
        "body": "Select 'Start a return' and we email you a printable return label."
    }))
    .unwrap();
    c.catalog.1.insert("how-to-return".into(), label);
    c.found = article_hit("how-to-return");
    let s = lost(&mut c, "where do i print the label?");
    assert!(
        reply(&s).starts_with("Select 'Start a return'"),
        "{}",
        reply(&s)
    );
    assert_eq!(c.state.pending, None);
    // An answer that picks one is no question aside.
    torn(&mut c, "when is it coming");
    let s = lost(&mut c, "the first one?");
    assert!(!reply(&s).starts_with("Select"), "{}", reply(&s));
}

#[test]
fn two_unclear_answers_to_the_choice_reach_a_person() {
    assert_eq!(DialogueSettings::default().escalate_after_failures, 2);
    let mut c = Chat::new();
    torn(&mut c, "when is it coming");
    let s = lost(&mut c, "hmm");
    assert_eq!(s.outcome, Outcome::Clarified);
    assert!(escalations(&s).is_empty());
    assert!(
        reply(&s).contains("track your order, or know how long delivery takes"),
        "{}",
        reply(&s)
    );
    assert!(matches!(c.state.pending, Some(Pending::Choose { .. })));
    assert_eq!(c.state.failures, 1);
    let s = lost(&mut c, "dunno");
    assert_eq!(s.outcome, Outcome::Escalated);
    assert_eq!(
        escalations(&s),
        vec![(
            EscalationType::Escalation,
            EscalationReason::RepeatedFailure,
            Priority::Normal
        )]
    );
    assert_eq!(c.state.pending, None);
    assert!(
        reply(&s).contains("a person will take over"),
        "{}",
        reply(&s)
    );
}

#[test]
fn a_sure_prediction_or_an_out_of_scope_runner_up_does_not_ask() {
    // Confident: acted on at once.
    let mut c = Chat::new();
    let s = c.say_predicted(
        "where is my parcel",
        "track_order",
        0.9,
        &[("track_order", 0.9), ("delivery_period", 0.05)],
    );
    assert_eq!(s.outcome, Outcome::Asked);
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    assert!(!reply(&s).contains("Just to be sure"), "{}", reply(&s));
    assert!(matches!(c.state.pending, Some(Pending::OrderNumber { .. })));
    // Unsure, but the runner-up is out of scope: nothing to choose between.
    let mut c = Chat::new();
    let s = c.say_predicted(
        "when is it coming",
        "track_order",
        0.45,
        &[
            ("track_order", 0.45),
            ("out_of_scope", 0.35),
            ("delivery_period", 0.1),
        ],
    );
    assert_ne!(s.outcome, Outcome::Clarified);
    assert!(!reply(&s).contains("Just to be sure"), "{}", reply(&s));
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    // Unsure, but the runner-up is too unlikely.
    let mut c = Chat::new();
    let s = c.say_predicted(
        "when is it coming",
        "track_order",
        0.45,
        &[
            ("track_order", 0.45),
            ("delivery_period", 0.15),
            ("out_of_scope", 0.1),
        ],
    );
    assert_ne!(s.outcome, Outcome::Clarified);
    assert!(!matches!(c.state.pending, Some(Pending::Choose { .. })));
}

#[test]
fn an_order_number_in_the_unsure_message_is_used_after_the_answer() {
    let mut c = Chat::new().with_order(order(
        "A-1001",
        "cust-1",
        OrderStatus::Shipped,
        serde_json::json!({"carrier": "UPS", "tracking_number": "1Z999AA1"}),
    ));
    let s = torn(&mut c, "A-1001 where is it or how long");
    assert_eq!(s.outcome, Outcome::Clarified);
    assert!(matches!(
        &c.state.pending,
        Some(Pending::Choose { order_id: Some(o), .. }) if o == "A-1001"
    ));
    let s = lost(&mut c, "the first");
    assert_eq!(reply_intent(&s), Some("track_order"));
    let text = reply(&s);
    assert!(
        text.contains("A-1001") && text.contains("UPS") && text.contains("1Z999AA1"),
        "{text}"
    );
    assert!(!text.contains("order number"), "{text}");
    assert_eq!(c.state.pending, None);
    assert_eq!(c.state.slots.order_id.as_deref(), Some("A-1001"));
}

#[test]
fn repeating_the_unsure_message_or_saying_neither_picks_nothing() {
    let mut c = Chat::new().with_order(shipped());
    torn(&mut c, "when is it coming");
    // The same unsure guess again is not an answer: the question is asked again.
    let s = torn(&mut c, "when is it coming");
    assert_eq!(s.outcome, Outcome::Clarified);
    assert!(reply(&s).contains("track your order"), "{}", reply(&s));
    assert!(matches!(c.state.pending, Some(Pending::Choose { .. })));
    // "neither": both guesses were wrong; an open question, no failure counted.
    let failures = c.state.failures;
    let s = lost(&mut c, "neither");
    assert_eq!(s.outcome, Outcome::Clarified);
    assert!(
        reply(&s).contains("Could you say a bit more"),
        "{}",
        reply(&s)
    );
    assert_eq!(c.state.pending, None);
    assert_eq!(c.state.failures, failures);
    assert!(escalations(&s).is_empty());
}

#[test]
fn a_return_without_a_number_asks_for_it_instead_of_offering_an_open_order() {
    let mut c = Chat::new().with_order(shipped());
    let s = c.say("I want to send something back", "return_item");
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    assert!(
        !reply(&s).contains("Is this about your order"),
        "{}",
        reply(&s)
    );
}

/// Products in the catalogue, and what a search finds: each of them, best first, none
/// clearing its threshold (as for a question naming a kind rather than one product).
fn searched(c: &mut Chat, products: &[(&str, &str, &str, f64)]) {
    let mut hits = Vec::new();
    for (i, (sku, name, category, price)) in products.iter().enumerate() {
        let p: crate::wire::Product = serde_json::from_value(serde_json::json!({
            "sku": sku, "name": name, "category": category,
            "price": {"amount": price, "currency": "EUR"}, "stock": 5}))
        .unwrap();
        c.catalog.0.insert(sku.to_string(), p);
        let score = 0.8 - 0.05 * i as f32;
        hits.push(crate::retrieval::Hit {
            kind: crate::wire::SourceKind::Product,
            id: sku.to_string(),
            score,
            margin: score - 1.0,
            confident: false,
            candidate: crate::retrieval::Candidate {
                id: sku.to_string(),
                semantic: score,
                second_semantic: None,
                bm25: 0.0,
                name_coverage: 0.0,
                covered: 0.0,
            },
        });
    }
    c.found = crate::retrieval::Found {
        products: hits,
        ..Default::default()
    };
}

fn source_id(s: &Step) -> Option<&str> {
    s.actions.iter().find_map(|a| match a {
        Action::Reply { source, .. } => source.as_ref().map(|x| x.id.as_str()),
        _ => None,
    })
}

#[test]
fn asking_whether_the_shop_sells_a_kind_offers_products_of_it_or_says_there_are_none() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("KT-1", "Kettle Pro", "Kettles", 59.9),
            ("RC-1", "Rice Cooker", "Kitchen", 79.0),
            ("KT-2", "Kettle Pro Mini", "Kettles", 44.9),
            ("KT-3", "Clearview Glass Kettle", "Kettles", 39.9),
            ("KT-4", "Gooseneck Kettle", "Kettles", 49.9),
        ],
    );
    // Several: the best three of the kind, to pick from; the pick answers.
    let s = c.say("do you sell kettles?", "place_order");
    assert_eq!(
        reply(&s),
        "We do, for example the Kettle Pro (EUR 59.90), the Kettle Pro Mini (EUR 44.90) and \
         the Clearview Glass Kettle (EUR 39.90). Which one would you like to know more about?"
    );
    assert_eq!(source_id(&s), None);
    let s = c.say("the glass one", "out_of_scope");
    assert_eq!(source_id(&s), Some("KT-3"), "{}", reply(&s));
    assert!(reply(&s).contains("EUR 39.90"), "{}", reply(&s));
    // One of the kind: its answer.
    let s = c.say("do you stock rice cookers", "place_order");
    assert_eq!(source_id(&s), Some("RC-1"), "{}", reply(&s));
    // None of the kind in a catalogue that has products: said so, not how to check out.
    let s = c.say("do you sell kayaks?", "place_order");
    assert!(
        reply(&s).contains("couldn't find anything like that"),
        "{}",
        reply(&s)
    );
    assert_eq!(source_id(&s), None);
    // Unless the model reads it confidently as another request, which keeps its answer.
    let s = c.say("do you sell kayaks?", "delivery_options");
    assert!(!reply(&s).contains("catalogue"), "{}", reply(&s));
    // Other questions keep the intent path, and so does a shop with no catalogue loaded.
    let s = c.say("how do i place an order", "place_order");
    assert!(reply(&s).contains("Checkout"), "{}", reply(&s));
    let s = c.say("do you have a student discount", "promo_code");
    assert!(!reply(&s).contains("catalogue"), "{}", reply(&s));
    // An article on a word of the question does not answer for a kind the catalogue has.
    let article = crate::retrieval::Hit {
        kind: crate::wire::SourceKind::Article,
        id: "returns-opened-items".into(),
        ..c.found.products[0].clone()
    };
    c.found.articles = vec![crate::retrieval::Hit {
        score: 0.95,
        margin: 0.2,
        confident: true,
        ..article
    }];
    let s = c.say("do you sell kettles?", "place_order");
    assert!(reply(&s).starts_with("We do, for example"), "{}", reply(&s));
    c.found = crate::retrieval::Found::default();
    let s = c.say("do you sell kayaks?", "place_order");
    assert!(reply(&s).contains("Checkout"), "{}", reply(&s));
}

#[test]
fn what_about_asks_the_last_question_again_of_something_else() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("KT-1", "Kettle Pro", "Kettles", 59.9),
            ("TB-1", "Slate Tablet 10", "Tablets", 299.0),
        ],
    );
    // "do you sell kayaks?" then "what about tablets": the same question about tablets.
    c.say("do you sell kayaks?", "place_order");
    let s = c.say("ok what about tablets", "out_of_scope");
    assert_eq!(source_id(&s), Some("TB-1"), "{}", reply(&s));
    // Also while the bot waits for a pick among products of the kind offered before.
    c.catalog.0.insert("KT-2".into(), {
        let mut p = c.catalog.0["KT-1"].clone();
        p.sku = "KT-2".into();
        p.name = "Kettle Pro Mini".into();
        p
    });
    c.found.products.insert(1, {
        let mut h = c.found.products[0].clone();
        h.id = "KT-2".into();
        h
    });
    let s = c.say("do you sell kettles?", "place_order");
    assert!(reply(&s).starts_with("We do"), "{}", reply(&s));
    let s = c.say("what about tablets?", "out_of_scope");
    assert_eq!(source_id(&s), Some("TB-1"), "{}", reply(&s));
    // A product discussed before: "what about 45?" asks its sizes again, when they list 45.
    let mut shoe = c.catalog.0["KT-1"].clone();
    shoe.sku = "SH-1".into();
    shoe.name = "Trailrunner 2".into();
    shoe.attributes
        .insert("sizes".into(), serde_json::json!([40, 41, 42, 43, 44, 45]));
    c.catalog.0.insert("SH-1".into(), shoe);
    c.state.product = Some("SH-1".into());
    c.found = crate::retrieval::Found::default();
    let s = c.say("what about 45?", "out_of_scope");
    assert!(reply(&s).contains("(45 is one of them)"), "{}", reply(&s));
    // Something the record does not list is not taken for the product.
    let s = c.say("what about 47 days", "out_of_scope");
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

#[test]
fn a_kind_wanted_in_other_words_is_offered_but_never_said_to_be_missing() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("KT-1", "Kettle Pro", "Kettles", 59.9),
            ("KT-2", "Kettle Pro Mini", "Kettles", 44.9),
        ],
    );
    let s = c.say("hi, I'm looking for a kettle", "place_order");
    assert!(reply(&s).starts_with("We do, for example"), "{}", reply(&s));
    // "I need a refund" names no kind the catalogue has: the intent answers, as before.
    let mut c = Chat::new();
    searched(&mut c, &[("KT-1", "Kettle Pro", "Kettles", 59.9)]);
    let s = c.say("I need a refund", "get_refund");
    assert!(!reply(&s).contains("catalogue"), "{}", reply(&s));
    let s = c.say("do you have any kayaks", "out_of_scope");
    assert!(!reply(&s).contains("catalogue"), "{}", reply(&s));
}

#[test]
fn any_of_a_kind_available_now_offers_those_in_stock() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("TN-1", "Skyline 3 Tent", "Tents", 299.0),
            ("TN-2", "Basecamp 4 Family Tent", "Tents", 399.0),
            ("TN-3", "Solo Bivvy Tent", "Tents", 149.0),
        ],
    );
    c.catalog.0.get_mut("TN-1").unwrap().stock = 0;
    let s = c.say("any similar tent that's available now?", "place_order");
    assert!(
        reply(&s).starts_with("We do, for example the Basecamp 4 Family Tent"),
        "{}",
        reply(&s)
    );
    assert!(!reply(&s).contains("Skyline"), "{}", reply(&s));
    // Not asked for stock: all of them.
    c.state = Default::default();
    let s = c.say("any tents?", "place_order");
    assert!(reply(&s).contains("Skyline"), "{}", reply(&s));
}

#[test]
fn a_follow_up_naming_a_sibling_of_the_product_discussed_asks_again_of_it() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("KT-1", "Kettle Pro", "Kettles", 59.9),
            ("KT-2", "Kettle Pro Mini", "Kettles", 44.9),
            ("SH-1", "Metro Mini", "Sneakers", 89.0),
        ],
    );
    let alone = c.found.clone();
    let mut together = c.found.clone();
    c.found.products[0].confident = true;
    c.found.products.truncate(1);
    // Searched with the question before it, the two kettles are found confidently and
    // another "mini" below them.
    for h in &mut together.products[..2] {
        h.confident = true;
    }
    let s = c.say("is the kettle pro in stock", "place_order");
    assert!(reply(&s).starts_with("The Kettle Pro "), "{}", reply(&s));
    // Alone, "mini" names three products; with the question before it, one.
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(together)),
        ..alone
    };
    let s = c.say("and the mini?", "exchange_item");
    assert!(
        reply(&s).starts_with("The Kettle Pro Mini is in stock"),
        "{}",
        reply(&s)
    );
}

#[test]
fn a_product_named_by_its_sku_is_not_taken_for_an_order() {
    let mut c = Chat::new();
    searched(&mut c, &[("NW-KT-0001", "Kettle Pro", "Kettles", 59.9)]);
    c.found.products[0].confident = true;
    let s = c.say("NW-KT-0001 price?", "check_cancellation_fee");
    assert_eq!(source_id(&s), Some("NW-KT-0001"), "{}", reply(&s));
    // An order number is still an order number.
    let s = c.say("where is order A-55102?", "track_order");
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

#[test]
fn a_product_is_forgotten_once_the_subject_changes() {
    let mut c = Chat::new();
    searched(&mut c, &[("KT-1", "Kettle Pro", "Kettles", 59.9)]);
    c.found = crate::retrieval::Found::default();
    c.state.product = Some("KT-1".into());
    let s = c.say("how much?", "out_of_scope");
    assert_eq!(source_id(&s), Some("KT-1"), "{}", reply(&s));
    c.say("what is your refund policy", "check_refund_policy");
    assert_eq!(c.state.product, None);
    let s = c.say("how much?", "out_of_scope");
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

#[test]
fn asking_what_the_shop_has_is_no_request_to_act_whatever_the_model_reads() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("BT-1", "Nordkap Winter Boot", "Winter boots", 149.0),
            ("BT-2", "Snowpup Winter Boot", "Winter boots", 69.0),
        ],
    );
    // The model reads an exchange in the size asked for.
    let s = c.say(
        "do you have boots for winter that are warm, size 39?",
        "exchange_item",
    );
    assert!(reply(&s).starts_with("We do, for example"), "{}", reply(&s));
    assert_eq!(
        c.state
            .pending
            .as_ref()
            .map(|p| matches!(p, Pending::OrderNumber { .. })),
        Some(false)
    );
    // "do you have the ..." names one product, not a kind; the kind is the asking clause's.
    assert!(kind::stocked_kind("do you have the nordkap in 44").is_none());
    assert!(kind::stocked_kind("hi, do you have warm boots?").is_some());
    assert!(kind::stocked_kind("I'd like the jacket in a bigger size, do you have it?").is_none());
    let mut c = Chat::new();
    searched(&mut c, &[("JK-1", "Stormshell Jacket", "Jackets", 229.0)]);
    let s = c.say(
        "I'd like the jacket in a bigger size, do you have it?",
        "exchange_item",
    );
    assert!(!reply(&s).starts_with("We do"), "{}", reply(&s));
}

#[test]
fn a_product_the_search_found_named_in_full_is_answered_below_its_threshold() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("BT-1", "Nordkap Winter Boot", "Winter boots", 149.0),
            ("BT-2", "Snowpup Winter Boot", "Winter boots", 69.0),
        ],
    );
    // "nordkap" is a coined word of its name: the search counts the name as given.
    c.found.products[0].candidate.name_coverage = 1.0;
    let s = c.say("how much is the nordkap", "out_of_scope");
    assert_eq!(source_id(&s), Some("BT-1"), "{}", reply(&s));
    assert!(reply(&s).contains("EUR 149.00"), "{}", reply(&s));
    // Two named in full name neither for sure.
    c.found.products[1].candidate.name_coverage = 1.0;
    c.state.product = None;
    let s = c.say("how much is the winter boot", "out_of_scope");
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

#[test]
fn the_black_one_names_no_product_called_one() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("BT-1", "Nordkap Winter Boot", "Winter boots", 149.0),
            (
                "KT-8",
                "Barista One Espresso Machine",
                "Coffee machines",
                449.0,
            ),
        ],
    );
    c.state.product = Some("BT-1".into());
    let s = c.say("i'll take the black one", "place_order");
    assert_eq!(source_id(&s), Some("BT-1"), "{}", reply(&s));
}

#[test]
fn a_request_to_act_on_an_order_is_not_a_kind_wanted() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("JK-1", "Stormshell Jacket", "Jackets", 229.0),
            ("JK-2", "Drizzle Rain Jacket", "Jackets", 99.0),
        ],
    );
    let s = c.say(
        "I'd like the jacket in a bigger size, can I exchange it?",
        "exchange_item",
    );
    assert!(!reply(&s).starts_with("We do"), "{}", reply(&s));
}

/// A product in the catalogue with attributes and a description, found by no search.
fn stocked(
    c: &mut Chat,
    sku: &str,
    name: &str,
    price: f64,
    stock: u64,
    attributes: serde_json::Value,
) {
    let p: crate::wire::Product = serde_json::from_value(serde_json::json!({
        "sku": sku, "name": name, "price": {"amount": price, "currency": "EUR"},
        "stock": stock, "attributes": attributes, "url": format!("https://shop.example/p/{sku}"),
        "description": "Packable rain jacket. The hood has a stiffened brim."}))
    .unwrap();
    c.catalog.0.insert(sku.to_string(), p);
}

#[test]
fn taking_the_product_discussed_says_where_to_order_it() {
    let mut c = Chat::new();
    stocked(
        &mut c,
        "JK-1",
        "Drizzle Rain Jacket",
        99.0,
        27,
        serde_json::json!({}),
    );
    c.state.product = Some("JK-1".into());
    let s = c.say("ok I'll take it", "out_of_scope");
    let text = reply(&s);
    assert!(
        text.contains("order the Drizzle Rain Jacket here: https://shop.example/p/JK-1"),
        "{text}"
    );
    assert_eq!(source_id(&s), Some("JK-1"));
    assert_eq!(s.outcome, Outcome::Answered);
    // Sold out: it cannot be ordered, and that is said.
    stocked(
        &mut c,
        "TN-1",
        "Skyline 3 Tent",
        299.0,
        0,
        serde_json::json!({}),
    );
    c.state.product = Some("TN-1".into());
    let s = c.say("great, how do I order it?", "place_order");
    assert!(
        reply(&s).contains("out of stock at the moment"),
        "{}",
        reply(&s)
    );
    // Taking it back is a return, not a purchase.
    let s = c.say("I'll take it back", "return_item");
    assert!(!reply(&s).contains("order the"), "{}", reply(&s));
}

/// A conversation about the Drizzle Rain Jacket (sizes S, M, L; its description says it has
/// a hood).
fn jacket_discussed() -> Chat {
    let mut c = Chat::new();
    stocked(
        &mut c,
        "JK-1",
        "Drizzle Rain Jacket",
        99.0,
        27,
        serde_json::json!({"sizes": ["S", "M", "L"]}),
    );
    c.state.product = Some("JK-1".into());
    c
}

#[test]
fn what_a_product_comes_in_is_asked_of_the_product_discussed() {
    // "does it come in black?" read as place_order: about the jacket, not how to check out.
    let mut c = jacket_discussed();
    let s = c.say("and does it come in black?", "place_order");
    assert!(
        reply(&s).contains("product details of the Drizzle Rain Jacket don't say"),
        "{}",
        reply(&s)
    );
    assert_eq!(source_id(&s), Some("JK-1"));
    let s = c.say("does it come in size M?", "place_order");
    assert!(reply(&s).contains("M is one of them"), "{}", reply(&s));
}

#[test]
fn a_detail_of_the_product_comes_from_its_description_or_is_said_to_be_unknown() {
    let mut c = jacket_discussed();
    let s = c.say("does it have a hood?", "out_of_scope");
    assert!(
        reply(&s).contains("The hood has a stiffened brim."),
        "{}",
        reply(&s)
    );
    let s = c.say("does it work with alexa?", "contact_customer_service");
    assert!(
        reply(&s).contains("product details of the Drizzle Rain Jacket don't say"),
        "{}",
        reply(&s)
    );
    assert_eq!(source_id(&s), Some("JK-1"));
    // "what sizes?" with no "it" is about the jacket too.
    let s = c.say("what sizes?", "place_order");
    assert!(reply(&s).contains("sizes: S, M, L"), "{}", reply(&s));
    // A return question that names an attribute ("fit") is not about the record.
    let s = c.say(
        "can I take it back if it doesn't fit?",
        "check_refund_policy",
    );
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

#[test]
fn offered_products_are_picked_by_price_and_compared_on_what_is_asked() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("HP-1", "Q3 Headphones", "Headphones", 69.0),
            ("HP-2", "Studio 80 Headphones", "Headphones", 149.0),
            ("HP-3", "Q5 Headphones", "Headphones", 129.0),
        ],
    );
    for (sku, anc) in [("HP-1", false), ("HP-2", false), ("HP-3", true)] {
        let p = c.catalog.0.get_mut(sku).unwrap();
        p.attributes
            .insert("noise_cancelling".into(), serde_json::json!(anc));
    }
    let s = c.say("do you sell headphones?", "place_order");
    assert!(reply(&s).starts_with("We do"), "{}", reply(&s));
    // Asked of all three: answered for each, and the pick stays open.
    let s = c.say("do they have noise cancelling?", "check_cancellation_fee");
    let text = reply(&s);
    assert!(
        text.contains("Q3 Headphones: noise cancelling: no")
            && text.contains("Q5 Headphones: noise cancelling: yes"),
        "{text}"
    );
    assert!(matches!(
        c.state.pending,
        Some(Pending::ChooseProduct { .. })
    ));
    let s = c.say("which one is the cheapest?", "place_order");
    assert_eq!(source_id(&s), Some("HP-1"), "{}", reply(&s));
}

#[test]
fn two_products_named_to_compare_are_compared_not_asked_about() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("BP-45", "Summit 45 Trekking Pack", "Backpacks", 159.0),
            ("BP-30", "Summit 30 Daypack", "Backpacks", 89.0),
            ("CH-30", "GaN Charger 30 W", "Chargers", 35.0),
        ],
    );
    c.found.products[0].confident = true;
    c.found.products[1].confident = true;
    for (sku, grams) in [("BP-45", 1750), ("BP-30", 1050)] {
        let p = c.catalog.0.get_mut(sku).unwrap();
        p.attributes
            .insert("weight_g".into(), serde_json::json!(grams));
    }
    let s = c.say(
        "which is lighter, the summit 45 or the summit 30?",
        "out_of_scope",
    );
    let text = reply(&s);
    assert!(
        text.contains("Summit 45 Trekking Pack: weight: 1750 g")
            && text.contains("Summit 30 Daypack: weight: 1050 g")
            && !text.contains("Charger"),
        "{text}"
    );
    assert_eq!(s.outcome, Outcome::Answered);
    // Then one of them is taken.
    let s = c.say("I'll take the cheaper one", "place_order");
    assert!(
        reply(&s).contains("order the Summit 30 Daypack"),
        "{}",
        reply(&s)
    );
}

#[test]
fn buying_names_the_product_meant_and_answers_a_size_first() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("KT-2", "Kettle Pro Mini", "Kettles", 44.9),
            ("KT-1", "Kettle Pro", "Kettles", 59.9),
        ],
    );
    c.state.product = Some("KT-1".into());
    // The Mini is found, if not confidently, and named by its own word.
    let s = c.say("I'll take the mini one", "place_order");
    assert!(
        reply(&s).contains("order the Kettle Pro Mini"),
        "{}",
        reply(&s)
    );
    stocked(
        &mut c,
        "SH-1",
        "Trailrunner 2",
        129.0,
        14,
        serde_json::json!({"sizes": [40, 41, 42, 43, 44, 45, 46]}),
    );
    c.found = crate::retrieval::Found::default();
    c.state.product = Some("SH-1".into());
    let s = c.say("can I order it in size 47?", "place_order");
    assert!(reply(&s).contains("47 is not one of them"), "{}", reply(&s));
    // Paying or delivery is not buying.
    let s = c.say("can I buy it with PayPal?", "check_payment_methods");
    assert!(!reply(&s).contains("order the"), "{}", reply(&s));
}

#[test]
fn a_service_question_naming_a_product_is_not_answered_from_its_record() {
    let mut c = Chat::new();
    searched(&mut c, &[("JK-1", "Drizzle Rain Jacket", "Jackets", 99.0)]);
    c.found.products[0].confident = true;
    c.found.products[0].score = 1.2;
    c.found.products[0].margin = 0.2;
    let p = c.catalog.0.get_mut("JK-1").unwrap();
    p.attributes
        .insert("sizes".into(), serde_json::json!(["S", "M", "L"]));
    let s = c.say(
        "can I return the Drizzle Rain Jacket if it doesn't fit?",
        "check_refund_policy",
    );
    assert_eq!(source_id(&s), None, "{}", reply(&s));
    // While a pick is open, asking for a person is not a question about the products.
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("HP-1", "Q3 Headphones", "Headphones", 69.0),
            ("HP-2", "Q5 Headphones", "Headphones", 129.0),
        ],
    );
    c.say("do you sell headphones?", "place_order");
    let s = c.say("is anyone available to help me?", "contact_human_agent");
    assert!(!reply(&s).contains("Side by side"), "{}", reply(&s));
}

#[test]
fn a_product_named_for_sure_is_answered_though_no_score_was_confident() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("HP-7", "Q7 ANC Headphones", "Headphones", 249.0),
            ("HP-5", "Q5 Headphones", "Headphones", 129.0),
        ],
    );
    for (sku, anc) in [("HP-7", true), ("HP-5", false)] {
        let p = c.catalog.0.get_mut(sku).unwrap();
        p.attributes
            .insert("noise_cancelling".into(), serde_json::json!(anc));
    }
    let s = c.say("how much is the q7?", "check_payment_methods");
    assert_eq!(source_id(&s), Some("HP-7"), "{}", reply(&s));
    // A yes/no question its record does not answer is said to be unknown, not guessed.
    let s = c.say("is the q7 waterproof?", "check_refund_policy");
    assert!(
        reply(&s).contains("product details of the Q7 ANC Headphones don't say"),
        "{}",
        reply(&s)
    );
    // "ok what about the q5?" asks the question before it again, of the Q5.
    c.say(
        "are the q7 headphones noise cancelling?",
        "check_cancellation_fee",
    );
    let s = c.say("ok what about the q5?", "out_of_scope");
    assert_eq!(source_id(&s), Some("HP-5"), "{}", reply(&s));
    assert!(reply(&s).contains("noise cancelling: no"), "{}", reply(&s));
}

#[test]
fn the_cheapest_of_a_kind_is_answered_and_a_missing_colour_is_said() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("TN-2", "Skyline 2 Tent", "Tents", 249.0),
            ("TN-1", "Solo Bivvy Tent", "Tents", 149.0),
        ],
    );
    let s = c.say("what's the cheapest tent you have?", "out_of_scope");
    assert_eq!(source_id(&s), Some("TN-1"), "{}", reply(&s));
    stocked(
        &mut c,
        "JK-1",
        "Drizzle Rain Jacket",
        99.0,
        27,
        serde_json::json!({"colors": ["yellow", "navy", "olive"]}),
    );
    c.found = crate::retrieval::Found::default();
    c.state.product = Some("JK-1".into());
    let s = c.say("do you have it in red?", "out_of_scope");
    assert!(
        reply(&s).contains("colors: yellow, navy, olive (not in red)"),
        "{}",
        reply(&s)
    );
}

/// A confident hit on the article `id`.
fn article_hit(id: &str) -> crate::retrieval::Found {
    crate::retrieval::Found {
        articles: vec![crate::retrieval::Hit {
            kind: crate::wire::SourceKind::Article,
            id: id.to_string(),
            score: 1.0,
            margin: 0.2,
            confident: true,
            candidate: crate::retrieval::Candidate {
                id: id.to_string(),
                semantic: 0.9,
                second_semantic: None,
                bm25: 0.0,
                name_coverage: 0.0,
                covered: 0.0,
            },
        }],
        ..Default::default()
    }
}

fn offer_tents(c: &mut Chat) {
    searched(
        c,
        &[
            ("TN-1", "Basecamp 4 Family Tent", "Tents", 399.0),
            ("TN-2", "Skyline 3 Tent", "Tents", 299.0),
        ],
    );
    let s = c.say("do you sell tents for 4 people", "place_order");
    assert!(reply(&s).starts_with("We do"), "{}", reply(&s));
}

#[test]
fn a_pick_with_a_question_on_the_service_gets_the_article() {
    let mut c = Chat::new();
    offer_tents(&mut c);
    let student: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "student-discount", "title": "Student discount",
        "body": "Students get 10% off full-price items."
    }))
    .unwrap();
    c.catalog.1.insert("student-discount".into(), student);
    c.found = article_hit("student-discount");
    let s = c.say(
        "ok the skyline then, is there a student discount?",
        "promo_code",
    );
    assert!(reply(&s).starts_with("Students get 10%"), "{}", reply(&s));
}

#[test]
fn a_question_an_article_answers_while_products_are_offered_is_a_new_one() {
    let mut c = Chat::new();
    offer_tents(&mut c);
    let warranty: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "warranty", "title": "Warranty", "url": "https://help.example/warranty",
        "body": "Every product comes with the 2-year legal guarantee."
    }))
    .unwrap();
    c.catalog.1.insert("warranty".into(), warranty);
    c.found = article_hit("warranty");
    let s = c.say("and what about the warranty on tents", "out_of_scope");
    assert!(
        reply(&s).starts_with("Every product comes with"),
        "{}",
        reply(&s)
    );
    // Without an article for it, an unclear message still asks which one.
    offer_tents(&mut c);
    let s = c.say("hmm not sure about that really", "out_of_scope");
    assert!(reply(&s).starts_with("Do you mean"), "{}", reply(&s));
}

#[test]
fn a_question_on_one_thing_the_article_just_quoted_says_gets_those_sentences() {
    let mut c = Chat::new();
    let club: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "club", "title": "Northwind Club", "url": "https://help.example/club",
        "body": "Joining the Club is free. You earn 1 point per euro spent. Points expire after \
                 24 months without a purchase. Spend EUR 500 in a year to reach Gold status."
    }))
    .unwrap();
    c.catalog.1.insert("club".into(), club);
    c.found = article_hit("club");
    let s = c.say("do you have a loyalty program", "out_of_scope");
    assert!(
        reply(&s).starts_with("Joining the Club is free."),
        "{}",
        reply(&s)
    );
    let s = c.say("how do i get gold status", "out_of_scope");
    assert!(
        reply(&s).starts_with("Spend EUR 500 in a year to reach Gold status. (More:"),
        "{}",
        reply(&s)
    );
    // Three questions on one article are no frustration.
    let s = c.say("do points expire?", "check_cancellation_fee");
    assert!(
        reply(&s).starts_with("Points expire after 24 months"),
        "{}",
        reply(&s)
    );
    assert!(escalations(&s).is_empty());
    // The same question again and again still is.
    c.say("do points expire?", "check_cancellation_fee");
    let s = c.say("do points expire?", "check_cancellation_fee");
    assert_eq!(
        escalations(&s),
        [(
            EscalationType::Escalation,
            EscalationReason::Frustration,
            Priority::High
        )]
    );
}

#[test]
fn a_question_leaning_on_the_last_subject_is_answered_from_another_article_not_the_same_again() {
    let mut c = Chat::new();
    for (id, body) in [
        (
            "express",
            "Choose Express at checkout. Saturday delivery costs EUR 14.95.",
        ),
        (
            "missed",
            "If you're not home, DHL leaves a card and takes the parcel to a post office.",
        ),
    ] {
        let a: crate::wire::Article = serde_json::from_value(serde_json::json!({
            "id": id, "title": id, "url": format!("https://help.example/{id}"), "body": body
        }))
        .unwrap();
        c.catalog.1.insert(id.into(), a);
    }
    c.found = article_hit("express");
    let s = c.say("can i choose a delivery day", "delivery_options");
    assert!(reply(&s).starts_with("Choose Express"), "{}", reply(&s));
    // Searched with the question before it, both articles clear the threshold and the one
    // just quoted comes first: the other one answers.
    let mut both = article_hit("express");
    both.articles.extend(article_hit("missed").articles);
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(both)),
        ..Default::default()
    };
    let s = c.say("what if im not home", "out_of_scope");
    assert!(reply(&s).starts_with("If you're not home"), "{}", reply(&s));
    // Only the article just quoted, with no sentence on what is asked: not the whole
    // article again.
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("missed"))),
        ..Default::default()
    };
    let s = c.say("can you let me know when it is", "out_of_scope");
    assert_eq!(source_id(&s), None, "{}", reply(&s));
    // An article that has nothing on what is asked does not answer it.
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("express"))),
        ..Default::default()
    };
    let s = c.say("can you help me with something else?", "out_of_scope");
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

fn club_and_gift_cards(c: &mut Chat) {
    for (id, body) in [
        (
            "gift-cards",
            "Gift cards are valid for 3 years. They can be used online and in store.",
        ),
        (
            "loyalty",
            "Points expire after 24 months without a purchase.",
        ),
    ] {
        let a: crate::wire::Article = serde_json::from_value(serde_json::json!({
            "id": id, "title": id, "body": body
        }))
        .unwrap();
        c.catalog.1.insert(id.into(), a);
    }
}

#[test]
fn a_question_pointing_back_is_answered_from_the_subject_before_it() {
    let mut c = Chat::new();
    club_and_gift_cards(&mut c);
    c.found = article_hit("gift-cards");
    let s = c.say("do you do gift cards", "check_payment_methods");
    assert!(
        reply(&s).starts_with("Gift cards are valid"),
        "{}",
        reply(&s)
    );
    // Alone it finds the loyalty article by a weak margin; with the question before it,
    // the gift cards.
    let mut weak = article_hit("loyalty");
    weak.articles[0].margin = 0.01;
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("gift-cards"))),
        ..weak.clone()
    };
    let s = c.say("can they be used in store?", "check_payment_methods");
    assert!(
        reply(&s).starts_with("They can be used online and in store."),
        "{}",
        reply(&s)
    );
    // An article of its own clearly above the threshold: a question on that ("can I pay for them
    // with points?").
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("gift-cards"))),
        ..article_hit("loyalty")
    };
    let s = c.say("do they expire?", "check_cancellation_fee");
    assert!(reply(&s).starts_with("Points expire"), "{}", reply(&s));
    // Not pointing back: its own article.
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("gift-cards"))),
        ..article_hit("loyalty")
    };
    let s = c.say("do loyalty points expire?", "check_cancellation_fee");
    assert!(reply(&s).starts_with("Points expire"), "{}", reply(&s));
}

#[test]
fn an_unsure_question_on_my_order_that_an_article_answers_gets_the_article() {
    let mut c = Chat::new();
    let collect: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "click-and-collect", "title": "Click & Collect",
        "body": "Choose Click & Collect at checkout to pick up your order in our stores."
    }))
    .unwrap();
    c.catalog.1.insert("click-and-collect".into(), collect);
    c.found = article_hit("click-and-collect");
    let s = c.say_predicted(
        "hello, can i collect my order in the store?",
        "delivery_options",
        0.58,
        &[("delivery_options", 0.58), ("place_order", 0.34)],
    );
    assert!(
        reply(&s).starts_with("Choose Click & Collect"),
        "{}",
        reply(&s)
    );
    // Unsure of a request about an order: the order flow, as before.
    let s = c.say_predicted(
        "where is my order, can i collect it?",
        "track_order",
        0.5,
        &[("track_order", 0.5), ("delivery_options", 0.3)],
    );
    assert!(
        !reply(&s).starts_with("Choose Click & Collect"),
        "{}",
        reply(&s)
    );
}

#[test]
fn a_follow_up_on_an_article_gets_what_it_says_on_that_or_that_it_says_nothing() {
    let mut c = Chat::new();
    let stores: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "stores", "title": "Our stores", "url": "https://help.example/stores",
        "body": "Berlin: Kastanienallee 48. Open Monday to Saturday, closed on Sundays."
    }))
    .unwrap();
    c.catalog.1.insert("stores".into(), stores);
    c.found = article_hit("stores");
    let s = c.say("where is your berlin store?", "delivery_options");
    assert!(
        reply(&s).starts_with("Berlin: Kastanienallee 48. Open"),
        "{}",
        reply(&s)
    );
    // The follow-up alone finds nothing; searched with the question before it, the article
    // just quoted: what it says on that, not the whole answer again.
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("stores"))),
        ..Default::default()
    };
    let s = c.say("and on sundays?", "out_of_scope");
    assert_eq!(
        reply(&s),
        "Open Monday to Saturday, closed on Sundays. (More: \"Our stores\", https://help.example/stores)"
    );
    assert_eq!(source_id(&s), Some("stores"));
    assert_eq!(s.outcome, Outcome::Answered);
    let s = c.say("what about parking?", "out_of_scope");
    assert!(
        reply(&s).starts_with(
            "Our help article \"Our stores\" doesn't say anything about parking, and I'd rather not guess."
        ),
        "{}",
        reply(&s)
    );
    assert_eq!(source_id(&s), Some("stores"));
    // After another reply, the article is no longer the one just quoted: its answer.
    c.found = crate::retrieval::Found::default();
    c.say("thanks", "out_of_scope");
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("stores"))),
        ..Default::default()
    };
    let s = c.say("and on sundays?", "out_of_scope");
    assert!(
        reply(&s).starts_with("Berlin: Kastanienallee 48."),
        "{}",
        reply(&s)
    );
    // Nothing found with the question before either: the intent's path.
    c.found = crate::retrieval::Found::default();
    let s = c.say("and on sundays?", "out_of_scope");
    assert_eq!(source_id(&s), None);
    // Nor for a confident request to act: "and can I cancel?" is the cancelling path.
    c.found = crate::retrieval::Found {
        with_previous: Some(Box::new(article_hit("stores"))),
        ..Default::default()
    };
    let s = c.say("and can I cancel?", "cancel_order");
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

#[test]
fn the_same_article_asked_for_again_and_again_hands_over_and_a_queued_customer_is_reminded() {
    let mut c = Chat::new();
    let reset: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "password-reset", "title": "Resetting your password",
        "body": "Click 'Forgot password?' on the login page."
    }))
    .unwrap();
    c.catalog.1.insert("password-reset".into(), reset);
    c.found = article_hit("password-reset");
    // Read as other intents each time: the article is what repeats.
    for intent in ["recover_password", "edit_account"] {
        let s = c.say("how do I reset my password", intent);
        assert!(
            reply(&s).starts_with("Click 'Forgot password?'"),
            "{}",
            reply(&s)
        );
        assert!(escalations(&s).is_empty());
    }
    let s = c.say("how do I reset my password", "recover_password");
    assert_eq!(
        escalations(&s),
        [(
            EscalationType::Escalation,
            EscalationReason::Frustration,
            Priority::High
        )]
    );
    // Queued for a person, the customer still gets answers, told they are still queued.
    let s = c.say("ok and how do I reset my password", "recover_password");
    assert!(
        reply(&s).starts_with("You're still in the queue for a person.")
            && reply(&s).contains("Click 'Forgot password?'"),
        "{}",
        reply(&s)
    );
    assert!(escalations(&s).is_empty());
    // Different articles one after another are no repeat.
    let mut c = Chat::new();
    for id in ["a", "b", "a", "b"] {
        c.catalog.1.insert(
            id.into(),
            serde_json::from_value(serde_json::json!({"id": id, "title": id, "body": "Yes."}))
                .unwrap(),
        );
        c.found = article_hit(id);
        let s = c.say("a question", "delivery_options");
        assert!(escalations(&s).is_empty());
    }
}

#[test]
fn when_the_content_does_not_say_a_person_is_offered_and_yes_hands_over() {
    let mut c = jacket_discussed();
    let s = c.say("does it work with alexa?", "out_of_scope");
    assert!(
        reply(&s).ends_with("Shall I ask a member of our team to find out for you?"),
        "{}",
        reply(&s)
    );
    let s = c.say("yes please", "out_of_scope");
    assert_eq!(
        escalations(&s),
        [(
            EscalationType::Escalation,
            EscalationReason::CustomerRequest,
            Priority::Normal
        )]
    );
    // "no thanks" declines; nothing is handed over.
    let mut c = Chat::new();
    stocked(
        &mut c,
        "JK-1",
        "Drizzle Rain Jacket",
        99.0,
        27,
        serde_json::json!({}),
    );
    c.state.product = Some("JK-1".into());
    c.say("does it work with alexa?", "out_of_scope");
    let s = c.say("no thanks", "out_of_scope");
    assert_eq!(
        reply(&s),
        "All right. Is there anything else I can help you with?"
    );
    assert!(escalations(&s).is_empty());
    assert_eq!(c.state.pending, None);
    // Anything else is a new message: answered as one, and the offer lapses; a yes or no
    // word inside a question or a longer message does not take it up.
    c.say("does it work with alexa?", "out_of_scope");
    let s = c.say("what sizes?", "place_order");
    assert!(escalations(&s).is_empty());
    assert_eq!(c.state.pending, None);
    c.state.product = Some("JK-1".into());
    c.say("does it work with alexa?", "out_of_scope");
    let s = c.say("how much is it please?", "out_of_scope");
    assert!(escalations(&s).is_empty(), "{}", reply(&s));
    assert!(reply(&s).contains("EUR 99.00"), "{}", reply(&s));
    c.say("does it work with alexa?", "out_of_scope");
    let s = c.say("ok great, thanks for your help", "out_of_scope");
    assert!(escalations(&s).is_empty(), "{}", reply(&s));
    assert_eq!(c.state.pending, None);
    // Left unanswered past the pending timeout, it lapses without a word.
    c.state.product = Some("JK-1".into());
    c.say("does it work with alexa?", "out_of_scope");
    assert!(matches!(c.state.pending, Some(Pending::OfferPerson { .. })));
    c.now += Duration::seconds(c.settings.pending_timeout_secs + 1);
    let s = c.say("yes", "out_of_scope");
    assert!(
        escalations(&s).is_empty(),
        "{:?} {}",
        escalations(&s),
        reply(&s)
    );
    assert!(!reply(&s).contains("dropped"), "{}", reply(&s));
    // Someone already waiting for a person is not offered one.
    c.state.product = Some("JK-1".into());
    c.state.handoff = Handoff::Queued {
        reason: EscalationReason::CustomerRequest,
        since: c.now,
    };
    let s = c.say("does it work with alexa?", "out_of_scope");
    assert!(!reply(&s).contains("Shall I ask"), "{}", reply(&s));
    assert_eq!(c.state.pending, None);
}

#[test]
fn a_yes_no_question_on_a_product_found_gets_its_answer_or_that_its_record_does_not_say() {
    let mut c = Chat::new();
    stocked(
        &mut c,
        "SP-1",
        "Boom Mini Speaker",
        49.0,
        38,
        serde_json::json!({"water_resistance": "IP67", "weight_g": 210}),
    );
    let found = |c: &mut Chat| {
        let mut f = article_hit("SP-1");
        f.articles[0].kind = crate::wire::SourceKind::Product;
        c.found = crate::retrieval::Found {
            products: std::mem::take(&mut f.articles),
            ..Default::default()
        };
    };
    found(&mut c);
    // "waterproof" asks for the water resistance the record lists.
    let s = c.say("is the boom mini speaker waterproof", "out_of_scope");
    assert!(
        reply(&s).contains("water resistance: IP67"),
        "{}",
        reply(&s)
    );
    // What neither its record nor its description says: said so, not its price alone.
    let s = c.say("is the boom mini speaker dishwasher safe?", "out_of_scope");
    assert!(
        reply(&s).starts_with("The product details of the Boom Mini Speaker don't say"),
        "{}",
        reply(&s)
    );
    assert_eq!(source_id(&s), Some("SP-1"));
    // Its description may say ("hood"); price and stock are the record's answer.
    c.say("no", "out_of_scope");
    let s = c.say("is the boom mini speaker in stock?", "out_of_scope");
    assert!(
        reply(&s).starts_with("The Boom Mini Speaker is in stock, EUR 49.00."),
        "{}",
        reply(&s)
    );
    let s = c.say("does the boom mini speaker have a hood?", "out_of_scope");
    assert!(
        reply(&s).contains("The hood has a stiffened brim."),
        "{}",
        reply(&s)
    );
}

#[test]
fn a_policy_question_that_says_my_order_is_answered_from_the_article() {
    let mut c = Chat::new();
    let wrapping: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "gift-wrapping", "title": "Gift wrapping", "url": "https://help.example/wrap",
        "body": "Gift wrapping costs EUR 3.95 per item; choose it at checkout."
    }))
    .unwrap();
    c.catalog.1.insert("gift-wrapping".into(), wrapping);
    c.found = article_hit("gift-wrapping");
    let s = c.say("can i get my order gift wrapped?", "place_order");
    assert_eq!(source_id(&s), Some("gift-wrapping"), "{}", reply(&s));
    assert!(reply(&s).starts_with("Gift wrapping costs EUR 3.95"));
    // About one of the customer's orders, it is the order flow's; an article that shares no
    // word with it adds nothing.
    let s = c.say("where is my order?", "track_order");
    assert_eq!(source_id(&s), None);
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    // So is a message the model is unsure of: it may be about the order itself.
    let s = c.say_predicted("my parcel gift wrapping is torn", "place_order", 0.4, &[]);
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

/// An article in the catalogue, found (confidently) for the next message.
fn found_article(c: &mut Chat, id: &str, title: &str, body: &str) {
    let article: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": id, "title": title, "url": format!("https://help.example/{id}"), "body": body
    }))
    .unwrap();
    c.catalog.1.insert(id.into(), article);
    c.found = article_hit(id);
}

/// "Still no refund" with the refund article found: the article's answer comes first.
fn asks_after_a_refund_with_its_article_found(c: &mut Chat) -> Step {
    found_article(
        c,
        "refund-timing",
        "When will I get my refund?",
        "Refunds go back to your original payment method within 5 working days of your return \
         reaching our warehouse.",
    );
    let s = c.say(
        "returned my jacket 2 weeks ago and still no money back from the refund",
        "track_refund",
    );
    assert_eq!(source_id(&s), Some("refund-timing"), "{}", reply(&s));
    assert!(reply(&s).starts_with("Refunds go back"), "{}", reply(&s));
    s
}

#[test]
fn a_request_about_an_order_gets_the_article_that_answers_it_before_the_order_number() {
    // No open order to offer: the number is asked for.
    let mut c = Chat::new();
    let s = asks_after_a_refund_with_its_article_found(&mut c);
    assert!(reply(&s).contains("order number"), "{}", reply(&s));
    // The order flow goes on: the number given is taken for the refund.
    let order = shipped();
    c.orders.0.insert(order.order_id.clone(), order);
    c.found = crate::retrieval::Found::default();
    let s = c.say("it's A-55102", "out_of_scope");
    assert!(
        matches!(&s.actions[0], Action::Reply { intent: Some(i), .. } if i == "track_refund"),
        "{:?}",
        s.actions
    );
    assert_eq!(c.state.slots.order_id.as_deref(), Some("A-55102"));
}

#[test]
fn a_visitor_not_signed_in_gets_the_article_before_being_asked_to_sign_in() {
    let mut c = Chat::new();
    c.customer = None;
    let s = asks_after_a_refund_with_its_article_found(&mut c);
    assert!(reply(&s).contains("signed in"), "{}", reply(&s));
    // Nothing found that speaks to it: the sign-in request alone, as before.
    c.found = crate::retrieval::Found::default();
    let s = c.say("where is my order?", "track_order");
    assert_eq!(source_id(&s), None);
    assert!(
        reply(&s).starts_with("I can only look at order details"),
        "{}",
        reply(&s)
    );
}

#[test]
fn a_message_about_my_parcel_read_as_off_topic_gets_the_article_found() {
    let mut c = Chat::new();
    found_article(
        &mut c,
        "missed-delivery",
        "Missed a delivery?",
        "If you weren't home, the carrier leaves a card and tries again the next working day; \
         after that your package waits at the nearest pick-up point for 7 days.",
    );
    // No question mark, no question word first: the model reads it as off-topic, and no
    // order flow would take it up.
    let s = c.say(
        "the driver came while i was at work and left a card, what happens to my package now",
        "out_of_scope",
    );
    assert_eq!(source_id(&s), Some("missed-delivery"), "{}", reply(&s));
    // Found nothing: still "didn't get that".
    c.found = crate::retrieval::Found::default();
    let s = c.say(
        "my package and the thing with the neighbour",
        "out_of_scope",
    );
    assert_eq!(source_id(&s), None, "{}", reply(&s));
}

#[test]
fn a_kind_not_found_as_asked_offers_the_nearest_of_its_head() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("BT-1", "Bramley Chelsea Boot", "Boots", 149.0),
            ("SH-1", "Trailrunner 2", "Running shoes", 129.0),
            ("BT-2", "Commuter Boot", "Boots", 139.0),
        ],
    );
    c.catalog
        .0
        .get_mut("BT-2")
        .unwrap()
        .attributes
        .insert("waterproof".into(), serde_json::json!(true));
    let s = c.say(
        "hi, do you have any waterproof hiking boots in size 42?",
        "place_order",
    );
    assert_eq!(
        reply(&s),
        "I couldn't find any waterproof hiking boots in our catalogue. The closest I found: the \
         Commuter Boot (EUR 139.00) and the Bramley Chelsea Boot (EUR 149.00). Which one would \
         you like to know more about?"
    );
    let s = c.say("the first", "out_of_scope");
    assert_eq!(source_id(&s), Some("BT-2"), "{}", reply(&s));
    // One nearest: offered too, not answered as if it were what was asked; a yes takes it.
    let boots = c.found.clone();
    searched(&mut c, &[("BT-1", "Bramley Chelsea Boot", "Boots", 149.0)]);
    let s = c.say("do you sell suede hiking boots?", "place_order");
    assert_eq!(
        reply(&s),
        "I couldn't find any suede hiking boots in our catalogue. The closest I found: the Bramley \
         Chelsea Boot (EUR 149.00). Would you like to know more about it?"
    );
    assert_eq!(source_id(&s), None);
    let s = c.say("yes please", "out_of_scope");
    assert_eq!(source_id(&s), Some("BT-1"), "{}", reply(&s));
    // A no closes the offer.
    c.say("do you sell suede hiking boots?", "place_order");
    let s = c.say("no", "out_of_scope");
    assert_eq!(
        reply(&s),
        "All right. Is there anything else I can help you with?"
    );
    assert!(c.state.pending.is_none());
    c.found = boots;
    // A confident article answers instead: it may say why there are none.
    c.found.articles = vec![crate::retrieval::Hit {
        kind: crate::wire::SourceKind::Article,
        id: "hiking".into(),
        score: 1.2,
        margin: 0.4,
        confident: true,
        ..c.found.products[0].clone()
    }];
    let s = c.say("do you have any waterproof hiking boots?", "place_order");
    assert!(!reply(&s).contains("closest"), "{}", reply(&s));
}

#[test]
fn a_question_on_the_product_discussed_is_about_it_whatever_article_shares_a_word() {
    let mut c = jacket_discussed();
    let ratings: crate::wire::Article = serde_json::from_value(serde_json::json!({
        "id": "waterproof-ratings", "title": "Waterproof ratings",
        "body": "Jackets state a hydrostatic head in mm."
    }))
    .unwrap();
    c.catalog.1.insert("waterproof-ratings".into(), ratings);
    c.found = article_hit("waterproof-ratings");
    let s = c.say("is it good for hiking?", "out_of_scope");
    assert!(
        reply(&s).contains("product details of the Drizzle Rain Jacket don't say"),
        "{}",
        reply(&s)
    );
    assert_eq!(source_id(&s), Some("JK-1"));
    // Not a question on "it", nor on the shop's service around it: the article.
    let s = c.say("is it subject to customs in switzerland?", "out_of_scope");
    assert_eq!(source_id(&s), Some("waterproof-ratings"), "{}", reply(&s));
    let s = c.say("what do the waterproof ratings mean?", "out_of_scope");
    assert_eq!(source_id(&s), Some("waterproof-ratings"), "{}", reply(&s));
}

#[test]
fn a_product_named_while_others_are_offered_is_a_new_question_about_it() {
    let mut c = Chat::new();
    searched(
        &mut c,
        &[
            ("HP-3", "Q3 On-Ear Headphones", "Headphones", 69.0),
            ("HP-8", "Studio 80 Headphones", "Headphones", 149.0),
            ("HP-5", "Q5 Headphones", "Headphones", 129.0),
            ("HP-7", "Q7 ANC Headphones", "Headphones", 249.0),
        ],
    );
    c.catalog
        .0
        .get_mut("HP-7")
        .unwrap()
        .attributes
        .insert("battery_life".into(), serde_json::json!("40 hours"));
    let s = c.say("do you sell headphones?", "place_order");
    assert!(!reply(&s).contains("Q7"), "{}", reply(&s));
    let s = c.say("how long does the battery last on the q7", "out_of_scope");
    assert_eq!(source_id(&s), Some("HP-7"), "{}", reply(&s));
    assert!(reply(&s).contains("40 hours"), "{}", reply(&s));
}

#[test]
fn a_message_is_read_as_searched_with_its_typos_mended() {
    let mut c = Chat::new();
    stocked(
        &mut c,
        "SH-1",
        "Trailrunner 2",
        129.0,
        14,
        serde_json::json!({"waterproof": true}),
    );
    c.state.product = Some("SH-1".into());
    c.found.searched_as = Some("is it waterproof?".into());
    let s = c.say("is it waterprof?", "out_of_scope");
    assert!(reply(&s).contains("waterproof: yes"), "{}", reply(&s));
    // The transcript keeps what the customer wrote.
    assert!(c
        .state
        .transcript
        .iter()
        .any(|t| t.text == "is it waterprof?"));
}
