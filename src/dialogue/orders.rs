//! Requests about one order: status, cancel, address change, refund, invoice. Order data is
//! only ever used when the order's customer is the one writing.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::customer::{resolved, Turnout};
use super::{entities, Action, Context, Conversation, Outcome, Pending, PlannedRequest};
use crate::knowledge::Vars;
use crate::wire::{Order, OrderRequestType, OrderStatus};

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
];

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
pub(super) fn request_intent(kind: OrderRequestType) -> &'static str {
    match kind {
        OrderRequestType::Cancel => "cancel_order",
        OrderRequestType::ChangeAddress => "change_shipping_address",
        OrderRequestType::Refund => "get_refund",
    }
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
        resolved(state);
        return Outcome::Answered;
    };
    let Some(order_id) = order_id else {
        let open = ctx.orders.open_orders_of(&customer_id);
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
            asked_at: ctx.now_text(),
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
                let text = out.message.text.clone();
                let lower = text.to_lowercase();
                let given = lower
                    .rfind(" to ")
                    .map(|i| text[i + 4..].trim().to_string());
                if let Some(address) =
                    given.filter(|a| entities::looks_like_address(a) && a.contains(','))
                {
                    return plan_address_change(state, &order.order_id, &address, out, ctx);
                }
                state.pending = Some(Pending::NewAddress {
                    order_id: order.order_id.clone(),
                    asked_at: ctx.now_text(),
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
                let window = ctx.kb.refund_window_days();
                let delivered = order
                    .delivered_at
                    .as_deref()
                    .or(order.updated_at.as_deref())
                    .and_then(parse_time);
                let within = delivered.is_none_or(|d| (ctx.now - d).num_days() <= window);
                if within {
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
        asked_at: ctx.now_text(),
    });
    resolved(state);
    Outcome::Asked
}

fn address_line(a: &serde_json::Value) -> String {
    ["line1", "city", "postcode", "country"]
        .iter()
        .filter_map(|k| a.get(*k).and_then(|v| v.as_str()))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads "12 High Street, Leeds, LS1 4AB, UK" into the address shape of the contract.
fn parse_address(text: &str) -> serde_json::Value {
    let parts: Vec<&str> = text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let (line1, city, postcode, country) = match parts.as_slice() {
        [l, c, p, k, ..] => (*l, *c, Some(*p), *k),
        [l, c, k] => (*l, *c, None, *k),
        [l, c] => (*l, *c, None, ""),
        _ => (text.trim(), "", None, ""),
    };
    let mut a = json!({ "line1": line1, "city": city, "country": country });
    if let Some(p) = postcode {
        a["postcode"] = json!(p);
    }
    a
}

/// The customer gave a new address for an order that has not shipped: confirm it.
pub(super) fn plan_address_change(
    state: &mut Conversation,
    order_id: &str,
    text: &str,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    let Some(customer_id) = out.message.customer_id.clone() else {
        out.say(ctx.kb.reply("order_needs_sign_in", &Vars::new()));
        return Outcome::Answered;
    };
    let Some(order) = owned(ctx, order_id, &customer_id) else {
        out.say(ctx.kb.reply(
            "order_not_found",
            &Vars::from([("order_ref", order_id.to_string())]),
        ));
        return Outcome::Answered;
    };
    let address = parse_address(text);
    // The order service needs at least a street, a city and a country.
    let complete = ["line1", "city", "country"]
        .iter()
        .all(|k| address[*k].as_str().is_some_and(|v| !v.is_empty()));
    if !complete {
        state.pending = Some(Pending::NewAddress {
            order_id: order.order_id.clone(),
            asked_at: ctx.now_text(),
        });
        out.say(ctx.kb.reply("ask_new_address", &order_vars(&order)));
        return Outcome::Asked;
    }
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
