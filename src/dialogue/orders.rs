//! Requests about one order: status, cancel, address change, refund, return, exchange, a
//! damaged or missing parcel, invoice. Order data is only ever used when the order's customer
//! is the one writing.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::turn::{escalate, not_understood, resolved, Turnout};
use super::{entities, Action, Context, Conversation, Outcome, Pending, PlannedRequest};
use crate::knowledge::Vars;
use crate::wire::{EscalationReason, Order, OrderRequestType, OrderStatus, Priority};

/// Intents that are about one specific order.
pub(super) const ORDER_INTENTS: &[&str] = &[
    "track_order",
    "cancel_order",
    "change_order",
    "change_shipping_address",
    "get_refund",
    "track_refund",
    "get_invoice",
    "check_invoice",
    "return_item",
    "exchange_item",
    "damaged_or_wrong_item",
    "delivered_not_received",
];

/// Intents about an order that has arrived.
const AFTER_DELIVERY: &[&str] = &[
    "return_item",
    "exchange_item",
    "damaged_or_wrong_item",
    "delivered_not_received",
];

/// `details.reason` of a free return for a damaged, faulty or wrong item.
const DAMAGED: &str = "damaged_or_wrong_item";

fn money(order: &Order) -> Option<String> {
    let total = order.total?;
    Some(match order.currency.as_deref() {
        Some(c) => format!("{total:.2} {c}"),
        None => format!("{total:.2}"),
    })
}

fn day(text: &str) -> String {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.format("%-d %B %Y").to_string(),
        Err(_) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => d.format("%-d %B %Y").to_string(),
            Err(_) => text.to_string(),
        },
    }
}

/// Template values for an order.
pub(super) fn order_vars(order: &Order) -> Vars {
    let mut v = Vars::from([
        ("order.order_id", order.order_id.clone()),
        ("order.status", order.status.as_str().to_string()),
    ]);
    let mut set = |k: &'static str, val: Option<String>| {
        if let Some(val) = val {
            v.insert(k, val);
        }
    };
    set("order.carrier", order.carrier.clone());
    set("order.tracking_number", order.tracking_number.clone());
    set(
        "order.estimated_delivery",
        order.estimated_delivery.as_deref().map(day),
    );
    set("order.delivered_at", order.delivered_at.as_deref().map(day));
    // " by DHL on 20 November 2026", or as much of it as the order has.
    let mut note = String::new();
    if let Some(c) = &order.carrier {
        note.push_str(&format!(" by {c}"));
    }
    if let Some(d) = &order.delivered_at {
        note.push_str(&format!(" on {}", day(d)));
    }
    set("order.delivery_note", Some(note));
    set("order.total", money(order));
    let items = (!order.items.is_empty()).then(|| {
        order
            .items
            .iter()
            .map(|i| format!("{} x {}", i.quantity, i.name))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let parts: Vec<String> = [items.clone(), money(order)]
        .into_iter()
        .flatten()
        .collect();
    set("order.items", items);
    // Reads well with or without items and total: " (1 x Desk lamp, 59.90 EUR)" or nothing.
    let summary = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    set("order.summary", Some(summary));
    set(
        "order.address",
        order.shipping_address.as_ref().map(|a| {
            [
                Some(a.line1.as_str()),
                a.line2.as_deref(),
                Some(a.city.as_str()),
                a.postcode.as_deref(),
                Some(a.country.as_str()),
            ]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
        }),
    );
    v
}

/// The order, if it exists and belongs to `customer_id`; otherwise nothing, so another
/// customer's order cannot be told apart from one that does not exist.
fn owned(ctx: &Context<'_>, order_id: &str, customer_id: &str) -> Option<Order> {
    ctx.orders
        .get(order_id)
        .filter(|o| o.customer_id == customer_id)
}

/// The intent an order request fulfils.
pub(super) fn request_intent(request: &PlannedRequest) -> &'static str {
    match request.kind {
        OrderRequestType::Cancel => "cancel_order",
        OrderRequestType::ChangeAddress => "change_shipping_address",
        OrderRequestType::Refund => "get_refund",
        OrderRequestType::Return if is_damaged(request) => "damaged_or_wrong_item",
        OrderRequestType::Return => "return_item",
        OrderRequestType::Exchange => "exchange_item",
    }
}

fn is_damaged(request: &PlannedRequest) -> bool {
    request.details.get("reason").and_then(|r| r.as_str()) == Some(DAMAGED)
}

/// Whether the order was delivered no longer than `window_days` ago. An order not marked
/// delivered yet (a damaged item reported before the carrier's scan reached us) and one
/// without any date count as within it: the order system checks again.
fn within_window(order: &Order, window_days: i64, ctx: &Context<'_>) -> bool {
    let delivered = match order.status {
        OrderStatus::Delivered => order
            .delivered_at
            .as_deref()
            .or(order.updated_at.as_deref()),
        _ => order.delivered_at.as_deref(),
    };
    delivered
        .and_then(parse_time)
        .is_none_or(|d| (ctx.now - d).num_days() <= window_days)
}

/// Handles an order intent; asks for the order number when there is none.
pub(super) fn handle(
    state: &mut Conversation,
    intent: &str,
    order_id: Option<String>,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    out.intent = Some(intent.to_string());
    let Some(customer_id) = out.message.customer_id.clone() else {
        out.say(ctx.kb.reply("order_needs_sign_in", &Vars::new()));
        out.asked_to_sign_in = true;
        resolved(state);
        return Outcome::Answered;
    };
    let Some(order_id) = order_id else {
        // An open order (not yet delivered) is worth offering only for what can be done to
        // one; a return or a missing parcel is about a delivered order, so ask for its number.
        let open = if AFTER_DELIVERY.contains(&intent) {
            Vec::new()
        } else {
            ctx.orders.open_orders_of(&customer_id)
        };
        let offered = if open.len() == 1 {
            Some(&open[0])
        } else {
            None
        };
        match offered {
            Some(o) => out.say(ctx.kb.reply("offer_open_order", &order_vars(o))),
            None => out.say(ctx.kb.reply("ask_order_number", &Vars::new())),
        }
        state.pending = Some(Pending::OrderNumber {
            intent: intent.to_string(),
            offered: offered.map(|o| o.order_id.clone()),
            asked_at: ctx.now,
        });
        return Outcome::Asked;
    };
    let Some(order) = owned(ctx, &order_id, &customer_id) else {
        // Forget the number so a later "cancel it" cannot pick it up.
        state.slots.order_id = None;
        let vars = Vars::from([("order_ref", order_id)]);
        out.say(ctx.kb.reply("order_not_found", &vars));
        return Outcome::Answered;
    };
    state.slots.order_id = Some(order.order_id.clone());
    out.order_id = Some(order.order_id.clone());
    let vars = order_vars(&order);
    let status_template = format!("status_{}", order.status.as_str());
    use OrderStatus::*;
    let outcome = match intent {
        "cancel_order" => match order.status {
            Placed | Processing => {
                return plan(
                    state,
                    OrderRequestType::Cancel,
                    &order,
                    json!({}),
                    "confirm_cancel",
                    out,
                    ctx,
                )
            }
            Shipped | Delivered => {
                out.say(ctx.kb.reply("cancel_too_late", &vars));
                Outcome::Answered
            }
            Cancelled | Returned | Refunded => {
                out.say(ctx.kb.reply("cancel_not_possible", &vars));
                Outcome::Answered
            }
        },
        "change_shipping_address" => match order.status {
            Placed | Processing => {
                // "change the address of A-1 to 5 Elm Road, Bath, UK": the part after " to ".
                let message = out.message;
                if let Some(address) = address_after_to(&message.text)
                    .filter(|a| entities::looks_like_address(a) && a.contains(','))
                {
                    return plan_address_change(state, &order.order_id, address, false, out, ctx);
                }
                state.pending = Some(Pending::NewAddress {
                    order_id: order.order_id.clone(),
                    asked_at: ctx.now,
                });
                out.say(ctx.kb.reply("ask_new_address", &vars));
                return Outcome::Asked;
            }
            _ => {
                out.say(ctx.kb.reply("address_change_too_late", &vars));
                Outcome::Answered
            }
        },
        "get_refund" => match order.status {
            Delivered => {
                if within_window(&order, ctx.kb.refund_window_days(), ctx) {
                    let mut details = json!({ "reason": "requested by the customer in chat" });
                    if let Some(total) = order.total.filter(|t| *t > 0.0) {
                        details["amount"] = json!(total);
                    }
                    return plan(
                        state,
                        OrderRequestType::Refund,
                        &order,
                        details,
                        "confirm_refund",
                        out,
                        ctx,
                    );
                }
                out.say(ctx.kb.reply("refund_outside_window", &vars));
                Outcome::Answered
            }
            Returned | Refunded => {
                out.say(ctx.kb.reply("refund_already", &vars));
                Outcome::Answered
            }
            Cancelled => {
                out.say(ctx.kb.reply(&status_template, &vars));
                Outcome::Answered
            }
            Placed | Processing | Shipped => {
                out.say(ctx.kb.reply("refund_not_delivered", &vars));
                Outcome::Answered
            }
        },
        "track_refund" => {
            out.say(ctx.kb.reply("track_refund_status", &vars));
            Outcome::Answered
        }
        "return_item" | "exchange_item" | "damaged_or_wrong_item" => {
            let damaged = intent == "damaged_or_wrong_item";
            // A broken item may be reported before the carrier's scan reaches the order system.
            let arrived = order.status == Delivered || (damaged && order.status == Shipped);
            match order.status {
                _ if arrived && within_window(&order, ctx.kb.return_window_days(), ctx) => {
                    let (kind, details, template) = match intent {
                        "exchange_item" => (
                            OrderRequestType::Exchange,
                            json!({ "reason": "exchange requested by the customer in chat" }),
                            "confirm_exchange",
                        ),
                        "return_item" => (
                            OrderRequestType::Return,
                            json!({ "reason": "return requested by the customer in chat" }),
                            "confirm_return",
                        ),
                        _ => (
                            OrderRequestType::Return,
                            json!({ "reason": DAMAGED, "free_return": true }),
                            "confirm_damaged",
                        ),
                    };
                    return plan(state, kind, &order, details, template, out, ctx);
                }
                _ if arrived && damaged => {
                    out.say(ctx.kb.reply("damaged_outside_window", &vars));
                    return escalate(state, out, ctx, EscalationReason::Complaint, Priority::High);
                }
                _ => {}
            }
            let template = match order.status {
                Delivered => "return_outside_window",
                Returned | Refunded => "return_already",
                Cancelled => &status_template,
                Placed | Processing | Shipped => "return_not_delivered",
            };
            out.say(ctx.kb.reply(template, &vars));
            Outcome::Answered
        }
        "delivered_not_received" => match order.status {
            Delivered => {
                out.say(ctx.kb.reply("delivered_missing", &vars));
                return escalate(
                    state,
                    out,
                    ctx,
                    EscalationReason::DeliveryClaim,
                    Priority::High,
                );
            }
            status => {
                if matches!(status, Placed | Processing | Shipped) {
                    out.say(ctx.kb.reply("not_delivered_yet", &vars));
                }
                out.say(ctx.kb.reply(&status_template, &vars));
                Outcome::Answered
            }
        },
        "get_invoice" | "check_invoice" => {
            out.say(ctx.kb.reply("invoice_for_order", &vars));
            Outcome::Answered
        }
        "change_order" => {
            out.say(ctx.kb.reply(&status_template, &vars));
            if let Some(a) = ctx.kb.answer("change_order", &vars) {
                out.say(a);
            }
            Outcome::Answered
        }
        // track_order
        _ => {
            out.say(ctx.kb.reply(&status_template, &vars));
            Outcome::Answered
        }
    };
    resolved(state);
    state.repeat = None;
    outcome
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// States what the bot will do and waits for a yes or a no.
fn plan(
    state: &mut Conversation,
    kind: OrderRequestType,
    order: &Order,
    details: serde_json::Value,
    template: &str,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    let mut vars = order_vars(order);
    if let Some(a) = details.get("shipping_address") {
        vars.insert("address", address_line(a));
    }
    out.say(ctx.kb.reply(template, &vars));
    out.order_id = Some(order.order_id.clone());
    state.pending = Some(Pending::Confirm {
        request: PlannedRequest {
            kind,
            order_id: order.order_id.clone(),
            details,
        },
        asked_at: ctx.now,
    });
    resolved(state);
    Outcome::Asked
}

/// The text after the last " to " (any case), trimmed. The offset is found in a copy that
/// only ASCII letters were lower-cased in, which keeps every byte where it was: full Unicode
/// lower-casing changes lengths ("İ" becomes "i̇", two bytes to three; the Kelvin sign U+212A
/// becomes "k", three bytes to one), and an offset found in such a copy cuts the original
/// in the wrong place or inside a character.
fn address_after_to(text: &str) -> Option<&str> {
    let i = text.to_ascii_lowercase().rfind(" to ")?;
    text.get(i + " to ".len()..).map(str::trim)
}

/// The address as the confirmation shows it: every part the request carries, in label order.
fn address_line(a: &serde_json::Value) -> String {
    ["line1", "line2", "city", "postcode", "country"]
        .iter()
        .filter_map(|k| a.get(*k).and_then(|v| v.as_str()))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads "12 High Street, Leeds, LS1 4AB, UK" into the address shape of the contract
/// (`line1`, `line2`, `city`, `postcode`, `country`); `None` when the parts cannot be told
/// apart (see [`entities::postal_address`]).
fn parse_address(text: &str) -> Option<serde_json::Value> {
    let a = entities::postal_address(text)?;
    let mut v = json!({ "line1": a.line1, "city": a.city, "country": a.country });
    if let Some(l2) = a.line2 {
        v["line2"] = json!(l2);
    }
    if let Some(p) = a.postcode {
        v["postcode"] = json!(p);
    }
    Some(v)
}

/// The customer gave a new address for an order that has not shipped: confirm it.
pub(super) fn plan_address_change(
    state: &mut Conversation,
    order_id: &str,
    text: &str,
    answering: bool,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    let Some(customer_id) = out.message.customer_id.clone() else {
        out.say(ctx.kb.reply("order_needs_sign_in", &Vars::new()));
        out.asked_to_sign_in = true;
        return Outcome::Answered;
    };
    let Some(order) = owned(ctx, order_id, &customer_id) else {
        out.say(ctx.kb.reply(
            "order_not_found",
            &Vars::from([("order_ref", order_id.to_string())]),
        ));
        return Outcome::Answered;
    };
    // Unreadable or incomplete (the order service needs a street, a city and a country): ask
    // again rather than confirm an address with its parts in the wrong fields.
    // An unreadable answer to "what's the new address?" counts as a failure, so a customer
    // stuck here reaches a person instead of being asked forever.
    let Some(address) = parse_address(text) else {
        state.pending = Some(Pending::NewAddress {
            order_id: order.order_id.clone(),
            asked_at: ctx.now,
        });
        if answering {
            return not_understood(state, out, ctx, "ask_new_address");
        }
        out.say(ctx.kb.reply("ask_new_address", &order_vars(&order)));
        return Outcome::Asked;
    };
    let details = json!({ "shipping_address": address });
    plan(
        state,
        OrderRequestType::ChangeAddress,
        &order,
        details,
        "confirm_address_change",
        out,
        ctx,
    )
}

/// The customer said yes: check the order again (it may have shipped meanwhile) and publish
/// the request.
pub(super) fn confirmed(
    state: &mut Conversation,
    request: PlannedRequest,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    resolved(state);
    state.repeat = None;
    out.order_id = Some(request.order_id.clone());
    let customer = out.message.customer_id.clone();
    let order = customer
        .as_deref()
        .and_then(|c| owned(ctx, &request.order_id, c));
    let (Some(customer_id), Some(order)) = (customer, order) else {
        out.say(ctx.kb.reply(
            "order_not_found",
            &Vars::from([("order_ref", request.order_id)]),
        ));
        return Outcome::Answered;
    };
    let mut vars = order_vars(&order);
    use OrderStatus::*;
    let (still_possible, done, too_late) = match request.kind {
        OrderRequestType::Cancel => (
            matches!(order.status, Placed | Processing),
            "cancel_requested",
            "cancel_too_late",
        ),
        OrderRequestType::ChangeAddress => (
            matches!(order.status, Placed | Processing),
            "address_change_requested",
            "address_change_too_late",
        ),
        OrderRequestType::Refund => (
            order.status == Delivered,
            "refund_requested",
            "refund_already",
        ),
        OrderRequestType::Return | OrderRequestType::Exchange => {
            let damaged = is_damaged(&request);
            let done = match request.kind {
                OrderRequestType::Exchange => "exchange_requested",
                _ if damaged => "damaged_requested",
                _ => "return_requested",
            };
            (
                order.status == Delivered || (damaged && order.status == Shipped),
                done,
                "return_already",
            )
        }
    };
    if !still_possible {
        out.say(ctx.kb.reply(too_late, &vars));
        return Outcome::Answered;
    }
    if let Some(a) = request.details.get("shipping_address") {
        vars.insert("address", address_line(a));
    }
    out.say(ctx.kb.reply(done, &vars));
    out.requests.push(Action::OrderRequest {
        kind: request.kind,
        order_id: request.order_id,
        customer_id,
        details: request.details,
    });
    Outcome::OrderRequested
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::DialogueSettings;
    use crate::dialogue::{step, Event, Orders, Step};
    use crate::knowledge::Knowledge;
    use crate::wire::{InboundMessage, Prediction};

    struct OneOrder(Order);

    impl Orders for OneOrder {
        fn get(&self, id: &str) -> Option<Order> {
            (id == self.0.order_id).then(|| self.0.clone())
        }
        fn open_orders_of(&self, customer: &str) -> Vec<Order> {
            (customer == self.0.customer_id)
                .then(|| self.0.clone())
                .into_iter()
                .collect()
        }
    }

    /// Customer `cust-1` writes `texts` in turn about their `processing` order A-10601;
    /// the model reads each as a change of shipping address.
    fn chat(texts: &[&str]) -> Vec<Step> {
        let kb_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kb");
        let kb = Knowledge::load(&kb_dir, &[], "out_of_scope").unwrap();
        let orders = OneOrder(
            serde_json::from_value(json!({"order_id": "A-10601", "customer_id": "cust-1",
                "status": "processing"}))
            .unwrap(),
        );
        let settings = DialogueSettings::default();
        let ctx = Context {
            kb: &kb,
            orders: &orders,
            catalog: &crate::dialogue::answers::NoCatalog,
            retrieval: &crate::retrieval::RetrievalSettings::DEFAULT,
            settings: &settings,
            transcript_turns: 20,
            oos_label: "out_of_scope",
            allowed_agents: None,
            now: "2026-11-28T10:00:00Z".parse().unwrap(),
        };
        let mut state = Conversation::default();
        let mut steps = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let message = InboundMessage {
                message_id: format!("m{i}"),
                conversation_id: "c1".into(),
                text: (*text).into(),
                customer_id: Some("cust-1".into()),
                channel: None,
                sent_at: None,
                locale: None,
            };
            let prediction = Prediction {
                intent: "change_shipping_address".into(),
                confidence: 0.97,
                top: vec![],
            };
            let s = step(
                state,
                Event::Customer {
                    message: &message,
                    prediction: &prediction,
                    found: &crate::retrieval::Found::default(),
                },
                &ctx,
            );
            state = s.state.clone();
            steps.push(s);
        }
        steps
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

    /// The address the bot asks the customer to confirm.
    fn planned_address(s: &Step) -> serde_json::Value {
        match &s.state.pending {
            Some(Pending::Confirm { request, .. }) => {
                assert_eq!(request.kind, OrderRequestType::ChangeAddress);
                assert_eq!(request.order_id, "A-10601");
                request.details["shipping_address"].clone()
            }
            other => panic!(
                "no confirmation pending: {other:?}; replied {:?}",
                s.actions
            ),
        }
    }

    fn asks_again(s: &Step) {
        assert!(
            matches!(&s.state.pending, Some(Pending::NewAddress { order_id, .. }) if order_id == "A-10601"),
            "{:?}",
            s.state.pending
        );
        assert!(
            reply(s).contains("What's the new delivery address"),
            "{}",
            reply(s)
        );
    }

    #[test]
    fn the_turkish_message_from_the_issue_is_confirmed_not_a_crash() {
        let s = chat(&[
            "İİİ please change the shipping address of order A-10601 to Bağdat Cd. 12, İstanbul, Turkey",
        ]);
        assert_eq!(
            planned_address(&s[0]),
            json!({"line1": "Bağdat Cd. 12", "city": "İstanbul", "country": "Turkey"})
        );
        assert!(
            reply(&s[0]).contains("to: Bağdat Cd. 12, İstanbul, Turkey."),
            "{}",
            reply(&s[0])
        );
    }

    #[test]
    fn sharp_s_and_kelvin_sign_messages() {
        let s = chat(&[
            "ẞẞẞ please change the shipping address of order A-10601 TO Große Straẞe 5, 10115 Berlin, Germany",
        ]);
        assert_eq!(
            planned_address(&s[0]),
            json!({"line1": "Große Straẞe 5", "city": "Berlin", "postcode": "10115",
                "country": "Germany"})
        );
        let s = chat(&[
            "\u{212A}\u{212A} change the shipping address of order A-10601 to \u{212A}ing Street 10, London, SW1A 2AA, UK",
        ]);
        assert_eq!(
            planned_address(&s[0]),
            json!({"line1": "\u{212A}ing Street 10", "city": "London", "postcode": "SW1A 2AA",
                "country": "UK"})
        );
        // Every mix of length-changing letters before " to ": no offset lands inside a letter.
        for prefix in ["İ", "ẞ", "\u{212A}", "ﬀ", "Σ", "ǅ"] {
            for n in 0..8 {
                let text = format!(
                    "{} change the shipping address of order A-10601 to Bağdat Cd. 12, İstanbul, Turkey",
                    prefix.repeat(n)
                );
                let s = chat(&[&text]);
                assert_eq!(planned_address(&s[0])["city"], "İstanbul", "{text}");
            }
        }
    }

    #[test]
    fn five_parts_with_a_line_two_are_read_and_unreadable_ones_asked_again() {
        // The issue's case: five parts, which used to shift the postcode into the country.
        let s = chat(&[
            "please change the shipping address of order A-10601 to Flat 3, 12 High Street, Leeds, LS1 4AB, United Kingdom",
        ]);
        assert_eq!(
            planned_address(&s[0]),
            json!({"line1": "Flat 3", "line2": "12 High Street", "city": "Leeds",
                "postcode": "LS1 4AB", "country": "United Kingdom"})
        );
        assert!(
            reply(&s[0]).contains("to: Flat 3, 12 High Street, Leeds, LS1 4AB, United Kingdom."),
            "{}",
            reply(&s[0])
        );
        // Parts that cannot be told apart: ask again, then take a readable answer.
        let s = chat(&[
            "please change the shipping address of order A-10601 to Flat 3, 12 High Street, Leeds, LS1 4AB, Narnia",
            "Flat 3, 12 High Street, Leeds, West Yorkshire, UK",
            "Flat 3, 12 High Street, Leeds, LS1 4AB, UK",
        ]);
        asks_again(&s[0]);
        asks_again(&s[1]);
        assert_eq!(planned_address(&s[2])["postcode"], "LS1 4AB");
        assert_eq!(planned_address(&s[2])["country"], "UK");
    }

    #[test]
    fn the_text_after_to_is_cut_where_it_is_found() {
        assert_eq!(
            address_after_to("İİİ move A-1 TO 5 Elm Road, Bath, UK"),
            Some("5 Elm Road, Bath, UK")
        );
        assert_eq!(address_after_to("\u{212A}\u{212A}\u{212A} to x"), Some("x"));
        assert_eq!(address_after_to("İstanbul"), None);
        assert_eq!(address_after_to(" to "), Some(""));
    }
}
