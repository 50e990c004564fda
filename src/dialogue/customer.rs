//! A customer message: the bot's policy.

use super::agent;
use super::answers;
use super::articles;
use super::courtesy::{self, Courtesy};
use super::entities::{self, YesNo};
use super::kind;
use super::orders::{self, ORDER_INTENTS};
use super::shopping;
use super::turn::{choice_vars, escalate, not_understood, resolved, Turnout};
use super::{
    escalation, push_turn, Action, Context, Conversation, Handoff, Outcome, Pending, Repeat, Step,
};
use crate::knowledge::Vars;
use crate::retrieval::Found;
use crate::wire::{
    Article, ErrorKind, EscalationReason, EscalationType, InboundMessage, Prediction, Priority,
    Product, Role, SourceKind,
};

/// Business rules over the model's label. "When will my order arrive" and "where is my
/// order" sit close together in the training data (Bitext's `delivery_period` and
/// `track_order`); about one specific order of the customer's, it is a tracking request.
fn refine<'a>(intent: &'a str, text: &str, found: &entities::Entities) -> &'a str {
    if intent == "delivery_period"
        && (found.order_id.is_some() || entities::mentions_own_order(text))
    {
        "track_order"
    } else {
        intent
    }
}

/// A confident prediction of a real request, not an answer to the bot's question.
fn is_new_request(text: &str, prediction: &Prediction, ctx: &Context<'_>) -> bool {
    prediction.intent != ctx.oos_label
        && prediction.confidence >= 0.6
        && entities::yes_no(text).is_none()
        && text.split_whitespace().count() >= 3
}

/// A question that neither gives the order number asked for nor answers yes or no, and is
/// no confident request about an order ("can you cancel it?" asks the same again, "actually,
/// cancel A-55102" is for the order flow). Not while an order of the customer's own is
/// offered ("Is this about order A-55102?"): that question is still open. While the bot asks
/// which of two requests was meant, a question that picks neither ("where do I print the
/// label?") is one too.
fn question_aside(
    pending: &Pending,
    text: &str,
    found: &entities::Entities,
    prediction: &Prediction,
    ctx: &Context<'_>,
) -> bool {
    match pending {
        Pending::OrderNumber { offered: None, .. } => {}
        Pending::Choose { options, .. } => {
            let described = [ctx.kb.describe(&options[0]), ctx.kb.describe(&options[1])];
            let sure_of_one = options.contains(&prediction.intent)
                && prediction.confidence >= ctx.settings.clarify_below;
            if entities::pick_option(text, described).is_some()
                || entities::rejects_both(text)
                || sure_of_one
            {
                return false;
            }
        }
        _ => return false,
    }
    found.order_id.is_none()
        && entities::yes_no(text).is_none()
        && answers::is_question(text)
        && !(is_new_request(text, prediction, ctx)
            && ORDER_INTENTS.contains(&prediction.intent.as_str()))
}

/// [`from_knowledge`], and someone waiting for a person is told they still are, as on the
/// intents' path.
fn answer_from_knowledge(
    state: &mut Conversation,
    asked: &Asked<'_>,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Option<Outcome> {
    let said = out.texts.len();
    let outcome = from_knowledge(state, asked, out, ctx)?;
    if outcome == Outcome::Answered && matches!(state.handoff, Handoff::Queued { .. }) {
        out.texts.insert(said, ctx.kb.reply("queued", &Vars::new()));
    }
    Some(outcome)
}

fn is_expired(pending: &Pending, ctx: &Context<'_>) -> bool {
    (ctx.now - pending.asked_at()).num_seconds() > ctx.settings.pending_timeout_secs
}

pub(super) fn handle(
    mut state: Conversation,
    message: &InboundMessage,
    prediction: &Prediction,
    retrieved: &Found,
    ctx: &Context<'_>,
) -> Step {
    // A conversation belongs to the customer of its first signed-in message: a message that
    // claims another customer is refused, so nobody can switch identity mid-conversation and
    // read or act on someone else's orders.
    if let (Some(bound), Some(claimed)) = (&state.customer_id, &message.customer_id) {
        if bound != claimed {
            return Step::rejected(
                state,
                ErrorKind::IdentityMismatch,
                "customer_id differs from the customer this conversation belongs to",
            );
        }
    }
    let text = message.text.as_str();
    let found = entities::extract(text);
    let refined = Prediction {
        intent: refine(&prediction.intent, text, &found).to_string(),
        ..prediction.clone()
    };
    let prediction = &refined;
    let intent = prediction.intent.as_str();
    if message.customer_id.is_some() {
        state.customer_id = message.customer_id.clone();
    }
    let slots = &mut state.slots;
    for (slot, value) in [
        (&mut slots.invoice_id, &found.invoice_id),
        (&mut slots.email, &found.email),
        (&mut slots.amount, &found.amount),
        (&mut slots.date, &found.date),
    ] {
        if value.is_some() {
            slot.clone_from(value);
        }
    }
    push_turn(
        &mut state,
        ctx,
        Role::Customer,
        text,
        Some(intent),
        Some(&message.message_id),
    );
    state.last_message_id = Some(message.message_id.clone());
    // Only the reply right after an article is a follow-up on it; every reply that quotes
    // one sets it again.
    let quoted = state.article.take();
    state.intents.push(intent.to_string());
    if state.intents.len() > 10 {
        state.intents.remove(0);
    }
    let mut out = Turnout {
        message,
        prediction,
        texts: Vec::new(),
        intent: None,
        order_id: None,
        escalate: None,
        requests: Vec::new(),
        source: None,
        asked_to_sign_in: false,
    };

    // The agent holding the conversation went quiet: back to the queue with a new
    // escalation, and the bot answers meanwhile, so a stray take-over cannot silence the bot
    // for this customer forever.
    if agent::is_idle(&state.handoff, ctx) {
        state.handoff = Handoff::Queued {
            reason: EscalationReason::AgentTimeout,
            since: ctx.now,
        };
        out.escalate = Some((EscalationReason::AgentTimeout, Priority::High));
    }

    // An agent holds the conversation: the bot stays silent and forwards the message.
    if let Handoff::Agent { agent_id, .. } = &state.handoff {
        let agent_id = agent_id.clone();
        let mut action = escalation(
            &state,
            EscalationType::CustomerMessage,
            EscalationReason::CustomerMessage,
            Priority::Normal,
            Some(intent),
        );
        if let Action::Escalate {
            message: m,
            agent_id: a,
            ..
        } = &mut action
        {
            *m = Some(text.to_string());
            *a = Some(agent_id);
        }
        return Step {
            state,
            actions: vec![action],
            outcome: Outcome::Forwarded,
            rejection: None,
        };
    }

    if let Some(p) = &state.pending {
        if is_expired(p, ctx) {
            // An offer to ask a person lapses without a word: nothing was left undone.
            if !matches!(p, Pending::OfferPerson { .. }) {
                out.say(ctx.kb.reply("pending_expired", &Vars::new()));
            }
            state.pending = None;
        }
    }

    // Queued too long without an agent: back to the bot, so a new problem can escalate again.
    if let Handoff::Queued { since, .. } = &state.handoff {
        if (ctx.now - *since).num_seconds() > ctx.settings.queue_timeout_secs {
            state.handoff = Handoff::Bot;
        }
    }

    // An address typed in capitals is not shouting.
    let awaiting_address = matches!(state.pending, Some(Pending::NewAddress { .. }));
    if !awaiting_address && entities::is_angry(text) {
        state.pending = None;
        let outcome = escalate(
            &mut state,
            &mut out,
            ctx,
            EscalationReason::AngryLanguage,
            Priority::High,
        );
        return out.finish(state, ctx, outcome);
    }

    // Courtesy alone ("thanks!", "hi", "ok bye") is answered in kind and is no failure to
    // understand; a question asked before stays open, unless the message answers it ("no
    // thanks" to "shall I cancel it?").
    if let Some(c) = courtesy::courtesy(text).filter(|_| !wants_person(prediction, ctx)) {
        // Only a thank-you can answer a yes/no question: "ok bye" cancels nothing.
        let yes_no_asked = matches!(
            state.pending,
            Some(
                Pending::Confirm { .. }
                    | Pending::OrderNumber {
                        offered: Some(_),
                        ..
                    }
            )
        ) || (matches!(state.pending, Some(Pending::OfferPerson { .. }))
            && takes_offer(text).is_some());
        if !(c == Courtesy::Thanks && yes_no_asked && entities::yes_no(text).is_some()) {
            // "ok great, thanks": the customer has moved on from an offer of a person.
            if matches!(state.pending, Some(Pending::OfferPerson { .. })) {
                state.pending = None;
            }
            out.say(ctx.kb.reply(c.template(), &Vars::new()));
            // Someone waiting for a person is told they still are.
            if matches!(state.handoff, Handoff::Queued { .. }) {
                out.say(ctx.kb.reply("already_escalated", &Vars::new()));
            }
            return out.finish(state, ctx, Outcome::Answered);
        }
    }

    let knowledge = Asked {
        entities: &found,
        retrieved,
        quoted: quoted.as_deref(),
    };
    if let Some(pending) = state.pending.take() {
        // "what colours does the nordkap come in?" when an order number was asked for: a
        // question of its own, answered when the shop's articles or products answer it (the
        // order number is then no longer waited for), rather than asked for again and counted
        // as not understood until a person takes over.
        if question_aside(&pending, text, &found, prediction, ctx) {
            if let Some(outcome) = answer_from_knowledge(&mut state, &knowledge, &mut out, ctx) {
                return out.finish(state, ctx, outcome);
            }
        }
        if let Some(outcome) = answer_pending(&mut state, pending, &found, retrieved, &mut out, ctx)
        {
            return out.finish(state, ctx, outcome);
        }
    }

    if let Some(outcome) = answer_from_knowledge(&mut state, &knowledge, &mut out, ctx) {
        return out.finish(state, ctx, outcome);
    }

    let outcome = handle_intent(&mut state, intent, &found, &mut out, ctx);
    guide_before_order_number(&mut state, outcome, retrieved, &mut out, ctx);
    out.finish(state, ctx, outcome)
}

/// "returned my jacket 2 weeks ago and still no money on my card": a request about one of
/// the customer's orders goes to the order flow, which asks for the order number. When an
/// article answers the message as well (it clears its threshold, ahead of any product), its
/// answer comes first: what the shop's rules say now, and the order looked into once the
/// number is given. The same before asking a visitor who is not signed in to sign in: the
/// rules answer them now, their order only once they are signed in. Not when the bot offers
/// an open order instead ("is it A-1001?"), which is a question of its own, nor for an
/// article that shares no word with the message.
fn guide_before_order_number(
    state: &mut Conversation,
    outcome: Outcome,
    retrieved: &Found,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) {
    let asks_for_number = outcome == Outcome::Asked
        && matches!(
            state.pending,
            Some(Pending::OrderNumber { offered: None, .. })
        );
    if !asks_for_number && !out.asked_to_sign_in {
        return;
    }
    let Some(hit) = retrieved.best().filter(|h| h.kind == SourceKind::Article) else {
        return;
    };
    // A hit that shares no word with the message is no guide to it.
    let Some(article) = ctx
        .catalog
        .article(&hit.id)
        .filter(|a| articles::speaks_to(a, &out.message.text))
    else {
        return;
    };
    out.texts.insert(0, answers::article_answer(&article).0);
    quote_article(state, &article, out);
}

/// Intents that hand over to a person; a confident one is never answered with an article.
const PERSON_INTENTS: &[&str] = &["contact_human_agent", "complaint"];

/// The model is sure the customer asks for a person or complains: never small talk.
fn wants_person(p: &Prediction, ctx: &Context<'_>) -> bool {
    p.confidence >= ctx.settings.clarify_below && PERSON_INTENTS.contains(&p.intent.as_str())
}

/// The intent a question whether the shop sells something is read as ("I want to buy ...").
const PRODUCT_INTENTS: &[&str] = &["place_order"];

/// What the knowledge base is asked with: the message's entities, what the search found,
/// and the article the bot's previous reply quoted.
struct Asked<'a> {
    entities: &'a entities::Entities,
    retrieved: &'a Found,
    quoted: Option<&'a str>,
}

/// Answers from the shop's articles and products, when they answer the message: a product
/// question, a policy question, or what would otherwise be "I didn't get that". Requests
/// about the customer's own orders, and confident requests to act (cancel, return...) not
/// phrased as a question, keep to their own path.
fn from_knowledge(
    state: &mut Conversation,
    asked: &Asked<'_>,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Option<Outcome> {
    let (entities, retrieved) = (asked.entities, asked.retrieved);
    // Read as searched, typos mended: "is the trailrunner 2 waterprof?" asks about
    // waterproofness.
    let text = retrieved
        .searched_as
        .as_deref()
        .unwrap_or(out.message.text.as_str());
    let p = out.prediction;
    let confident = p.confidence >= 0.6 && p.intent != ctx.oos_label;
    // An SKU looks like an order number ("NW-KT-0001 price?"): when what was read as an
    // order number is part of the SKU of the product found first, and no "order" word
    // says otherwise, the message is about the product.
    // So does a number of the product's name ("can i take the voltix 10000 power bank on a
    // plane?").
    let sku = match (&entities.order_id, retrieved.products.first()) {
        (Some(id), Some(h)) => {
            let id = id.to_lowercase();
            let named = ctx
                .catalog
                .product(&h.id)
                .is_some_and(|p| answers::words(&p.name).contains(&id));
            h.confident
                && (h.id.to_lowercase().contains(&id) || named)
                && !answers::words(text).iter().any(|w| w.starts_with("order"))
        }
        _ => false,
    };
    // "where is my order?", "my parcel never came": about one of the customer's orders, for
    // the order flow. A question on the rules that says "my order" ("can I get my order gift
    // wrapped?", "do I pay customs on my order to Switzerland?") is read by the model as the
    // policy it asks about, and an article answers it better than that intent's canned reply.
    // Unsure, the model's reading decides unless it is no request about an order and a
    // question an article answers ("can i collect my order in the store?": Click & Collect;
    // "my parcel says delivered but never came" stays for the order flow).
    let order_intent = ORDER_INTENTS.contains(&p.intent.as_str());
    // The model is sure of a request to act on an order.
    let acting = confident && order_intent;
    // Read as off-topic, no order flow would take it up: "he left a note in my letterbox,
    // what happens to my package now" gets the article found rather than "didn't get that".
    let off_topic = p.intent == ctx.oos_label;
    let about_own_order = entities::mentions_own_order(text)
        && (order_intent
            || (!confident
                && !off_topic
                && (retrieved.article().is_none() || !answers::is_question(text))));
    if (entities.order_id.is_some() && !sku) || about_own_order {
        return None;
    }
    if wants_person(p, ctx) {
        return None;
    }
    let best = retrieved.best();
    let discussed = state
        .product
        .as_deref()
        .and_then(|sku| ctx.catalog.product(sku));
    // A request to act on an order is made in the first person or as an order ("cancel my
    // order pls", "I want to return the shoes", "track A-55102"); "address of the berlin
    // shop" is no request, whatever intent the model reads in it.
    if acting
        && !answers::is_question(text)
        && (entities::first_person(text)
            || entities::imperative(text)
            || entities.order_id.is_some())
    {
        return None;
    }
    let found = shopping::found_records(retrieved, ctx.catalog);
    // "ok I'll take it" after a product: where to buy it (the bot takes no orders itself).
    // "I'll take the mini one" names another product found. Words of the service around an
    // order ("can I buy it with PayPal?") make it no purchase, whatever article is found
    // ("how do I order it" finds the article on tracking orders).
    if shopping::wants_to_buy(text) {
        // Named for sure, or by a word of its name no other found product has when another
        // product is being discussed ("the mini one" after the Kettle Pro): not "last day"
        // for the Hydrating Day Cream.
        let named = shopping::named_for_sure(&found, text).or_else(|| {
            discussed.as_ref()?;
            match shopping::named_in(&found, text).as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            }
        });
        let bought = match named {
            Some(p) if discussed.as_ref().is_none_or(|d| d.sku != p.sku) => Some(p),
            _ => discussed.clone(),
        };
        if let Some(product) = bought {
            return Some(sell(state, &product, text, out, ctx));
        }
    }
    // "is it waterproof?" after the Trailrunner 2: the product discussed, when the question
    // asks about something its record says, wins over an article on the same word.
    // "what about 45?" is about it too, when its record says something about 45.
    let refers = answers::refers_to_product(text);
    let remembered = discussed
        .clone()
        .filter(|_| !shopping::about_service(text))
        .filter(|_| refers || answers::follow_up(text).is_some())
        .filter(|p| refers || answers::asks_about(p, text));
    if let Some(p) = remembered.as_ref().filter(|p| answers::asks_about(p, text)) {
        if retrieved.best().map(|h| h.kind) != Some(SourceKind::Product) {
            return Some(answer_product(state, p, text, out));
        }
    }
    // "do they expire?" right after gift cards: a question pointing back is about the
    // subject before it, so an article the two find together wins over another one the
    // question alone finds (loyalty points expire too). Not when a product is discussed, nor
    // for a confident request to act on an order.
    if discussed.is_none() && !acting && crate::dialogue::points_back(&out.message.text) {
        // Only over an article of its own found by a weak margin: "can I pay for them with
        // paypal?" after gift cards is a question on payment.
        let own = retrieved
            .article()
            .filter(|h| h.weak())
            .map(|h| h.id.as_str());
        let subject = retrieved.with_previous.as_deref().and_then(Found::article);
        if let Some(article) = subject
            .filter(|h| own.is_some_and(|own| own != h.id))
            .and_then(|h| ctx.catalog.article(&h.id))
            .filter(|a| articles::speaks_to(a, &out.message.text))
        {
            return Some(answer_article(state, &article, asked.quoted, out, ctx));
        }
    }
    // "do you sell kettles?" names a kind, not one product: no single product clears its
    // threshold, and an article on a word of it may ("do you sell headphones?" is not about
    // returning opened ones). The products of that kind the search found answer it first.
    // Only when the search found products at all: a shop may keep no catalogue here.
    // "what about tablets?" after "do you sell laptops?" asks the same of tablets.
    let previous = previous_message(state);
    let catalogue = !retrieved.products.is_empty();
    let sold = kind::sold_kind(text)
        .or_else(|| kind::follow_up_kind(text, previous))
        .filter(|_| catalogue);
    // "I'd like the jacket in a bigger size, can I exchange it?" is an exchange.
    let kind = sold.clone().or_else(|| {
        kind::stocked_kind(text)
            .or_else(|| kind::wanted_kind(text).filter(|_| !acting))
            .filter(|_| catalogue)
    });
    if let Some(kind) = kind
        .as_ref()
        .filter(|_| best.map(|h| h.kind) != Some(SourceKind::Product))
    {
        let fitting = kind::products_of_kind(retrieved, kind, ctx.catalog);
        // "waterproof hiking boots" that no product found is: said so, and the boots nearest
        // to them offered (not the intent's "how to check out"), unless an article answers.
        let (fitting, exact) = if fitting.is_empty() && best.is_none() {
            (kind::nearest_of_kind(retrieved, kind, ctx.catalog), false)
        } else {
            (fitting, true)
        };
        // "... in size 42": not those that do not come in it, when some do.
        let sized: Vec<Product> = fitting
            .iter()
            .filter(|p| answers::comes_in_asked_size(p, text) != Some(false))
            .cloned()
            .collect();
        let fitting = if sized.is_empty() { fitting } else { sized };
        // "... that's available now?": not those sold out, when some are not.
        let stocked: Vec<Product> = fitting.iter().filter(|p| p.stock > 0).cloned().collect();
        let fitting = if stocked.is_empty() || !shopping::wants_in_stock(text) {
            fitting
        } else {
            stocked
        };
        if !fitting.is_empty() {
            if !exact {
                let vars = Vars::from([("asked", kind.phrase())]);
                out.say(ctx.kb.reply("kind_nearest", &vars));
            }
            // "headphones under 100 euros": those over the budget are not offered.
            let cap = shopping::price_cap(text);
            let mut products = shopping::within(fitting.clone(), cap);
            if let (true, Some(cap)) = (products.is_empty(), cap) {
                return Some(nothing_within(state, cap, &fitting, out));
            }
            // "what's the cheapest tent you have?": that one, of those found; "any cheap
            // kettles?": the cheapest first.
            if shopping::one_by_price(text) {
                // Of those in stock, when any is.
                let in_stock: Vec<Product> =
                    products.iter().filter(|p| p.stock > 0).cloned().collect();
                let among = if in_stock.is_empty() {
                    &products
                } else {
                    &in_stock
                };
                if let Some(i) = shopping::by_price(text, among) {
                    out.say("Of those I found:".to_string());
                    return Some(answer_product(state, &among[i], text, out));
                }
            }
            if shopping::cheap_first(text) {
                products.sort_by(|a, b| a.price.amount.total_cmp(&b.price.amount));
            }
            products.truncate(OFFERED);
            return Some(offer_products_of_kind(
                state, &products, exact, text, out, ctx,
            ));
        }
    }
    // "can I return the Drizzle Rain Jacket if it doesn't fit?" names a product but asks
    // about the service: an article that answers it, or the intent's path.
    let best = match best {
        Some(h)
            if h.kind == SourceKind::Product
                && shopping::about_service(text)
                && !shopping::buys(text) =>
        {
            retrieved.article()
        }
        other => other,
    };
    // "what's the difference between the Kettle Pro and the Kettle Pro Mini?"
    // The products are named in the question, so none need clear a threshold; an article
    // that does wins ("is express faster than standard delivery?").
    let compared = match best.map(|h| h.kind) {
        Some(SourceKind::Article) => Vec::new(),
        _ if shopping::compares(text) => shopping::compared(&found, text, discussed.as_ref()),
        _ => Vec::new(),
    };
    match best.map(|h| h.kind) {
        _ if !compared.is_empty() => {
            let products = compared;
            out.say(
                shopping::comparison(&products, text)
                    .unwrap_or_else(|| answers::which_product(&products)),
            );
            out.source = products.first().map(answers::product_source);
            state.product = None;
            offer_choice(state, &products, text, ctx);
            resolved(state);
            Some(Outcome::Answered)
        }
        Some(SourceKind::Product) => {
            let products = answers::found_products(retrieved, text, ctx);
            match products.len() {
                0 => None,
                1 if shopping::buys(text) => Some(sell(state, &products[0], text, out, ctx)),
                // "is the kettle pro dishwasher safe?": one or two words its record may not
                // answer; not its price and stock alone as if that were the answer.
                1 if shopping::yes_no_about_product(text)
                    && (1..=2).contains(&shopping::asked_words(&products[0], text).len()) =>
                {
                    Some(answer_detail(state, &products[0], text, out, ctx))
                }
                1 => Some(answer_product(state, &products[0], text, out)),
                _ => {
                    out.say(answers::which_product(&products));
                    offer_choice(state, &products, text, ctx);
                    Some(Outcome::Clarified)
                }
            }
        }
        Some(SourceKind::Article) => {
            // "is it good for hiking?" after the Commuter Boot is about the boot, whatever
            // article shares a word with it: what its record says, or that it does not.
            let on_product = discussed
                .as_ref()
                .filter(|_| shopping::asks_detail(text) && !acting);
            if let Some(product) = on_product {
                return Some(answer_detail(state, product, text, out, ctx));
            }
            let article = ctx.catalog.article(&best?.id)?;
            Some(answer_article(state, &article, asked.quoted, out, ctx))
        }
        // Nothing found for the message itself: "is it waterproof?" is about the product
        // discussed before, if it is still in the catalogue.
        None => {
            // "how much is the q7?", "do you have the oakridge boots in 45": a product the
            // message names for sure, though no score was confident of it. A yes/no question
            // about it ("is the q7 waterproof?") is answered like one about the product
            // discussed. "ok what about the q3?" after "do the q5 fold?" asks that again, of
            // the Q3, and its price and stock when that does not apply to it.
            let named = shopping::named_product(&found, retrieved, text, ctx.catalog)
                .or_else(|| named_in_follow_up(retrieved, discussed.as_ref(), text, ctx));
            if let Some(named) = named.filter(|_| sold.is_none()) {
                let again = match (answers::follow_up(text), previous) {
                    (Some(_), Some(before)) => {
                        let name = discussed.as_ref().map_or("", |d| d.name.as_str());
                        Some(shopping::without_name(before, name))
                    }
                    _ => None,
                };
                let asked = again.as_deref().unwrap_or(text);
                if !shopping::about_service(asked) {
                    if answers::asks_about(&named, asked)
                        || shopping::detail(&named, asked).is_some()
                    {
                        return Some(answer_product(state, &named, asked, out));
                    }
                    if again.is_some() {
                        return Some(answer_product(state, &named, text, out));
                    }
                    let words = shopping::asked_words(&named, asked).len();
                    if shopping::yes_no_about_product(asked) && (1..=2).contains(&words) {
                        return Some(answer_detail(state, &named, asked, out, ctx));
                    }
                }
            }
            // "is it waterproof?" of a product whose record has no such attribute: its
            // description, or that its details do not say; not its price alone. "can I have
            // it gift wrapped?" is no such question: the intent's path.
            if let Some(product) = remembered {
                if answers::asks_about(&product, text) {
                    return Some(answer_product(state, &product, text, out));
                }
                if shopping::asks_detail(text) {
                    return Some(answer_detail(state, &product, text, out, ctx));
                }
            }
            // "does it work with alexa?": about the product discussed, but nothing its
            // record lists; its description may say, and otherwise that is said.
            // Not when the model is sure of a request about an order or the account.
            if let Some(product) = discussed.filter(|_| !acting && shopping::asks_detail(text)) {
                return Some(answer_detail(state, &product, text, out, ctx));
            }
            // "and for teachers?" after "do you offer a student discount?": an article the
            // last question on the subject and this one find together.
            // A confident request to act ("and can I cancel?" after a shipping question) keeps
            // its own path unless the article speaks of it ("and for a faulty one?").
            let speaks_of = |a: &Article| {
                answers::follow_up(text)
                    .map(|w| articles::subject_words(&w))
                    .is_some_and(|w| articles::sentences_on(a, &w).is_some())
            };
            let subject = retrieved
                .with_previous
                .as_deref()
                .and_then(|f| leaned_on(f, state, asked.quoted, &out.message.text, ctx));
            if let Some(article) = subject.filter(|a| !acting || speaks_of(a)) {
                return Some(answer_article(state, &article, asked.quoted, out, ctx));
            }
            // A kind of thing none of the products found is: said so, rather than the
            // intent's answer on how to check out. A confident other intent keeps its own
            // answer: "do you carry a warranty?" may be read as a question on guarantees.
            let for_sale = !confident || PRODUCT_INTENTS.contains(&p.intent.as_str());
            if sold.is_none() || !for_sale {
                return None;
            }
            out.say(ctx.kb.reply("product_not_found", &Vars::new()));
            resolved(state);
            Some(Outcome::Answered)
        }
    }
}

/// An article's answer. A follow-up on the article the previous reply quoted ("and on
/// sundays?") gets the article's sentences on what it asks, or that the article says nothing
/// on it: not the same answer again. Another question on it ("do points expire?") gets the
/// sentences that share two of its words, when there are such ([`articles::narrowed`]).
fn answer_article(
    state: &mut Conversation,
    article: &Article,
    quoted: Option<&str>,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    let again = answers::follow_up(&out.message.text)
        .filter(|_| quoted == Some(article.id.as_str()))
        .map(|w| articles::subject_words(&w))
        .filter(|w| !w.is_empty());
    // "do points expire?" right after the loyalty programme's article: a question on one
    // thing it says gets those sentences, not the whole article again, and is no repeat.
    // The same question again, or the same narrow answer twice, is.
    let asked_before = previous_message(state)
        .is_some_and(|t| answers::words(t) == answers::words(&out.message.text));
    let narrowed = match (&again, quoted) {
        (None, Some(id)) if id == article.id && !asked_before => {
            articles::narrowed(article, &out.message.text, last_reply(state))
        }
        _ => None,
    };
    // The same article asked for again and again has not helped: a person takes over, as
    // for the same request made again and again on the intents' path. Only in a row: another
    // reply in between starts the count again.
    if again.is_none() && narrowed.is_none() && matches!(state.handoff, Handoff::Bot) {
        if quoted != Some(article.id.as_str()) {
            state.repeat = None;
        }
        let intent = out.prediction.intent.clone();
        if let Some(outcome) = count_repeat(state, &intent, Some(&article.id), out, ctx) {
            return outcome;
        }
    }
    let answer = match again {
        Some(asked) => articles::sentences_on(article, &asked).ok_or_else(|| {
            ctx.kb.reply(
                "article_detail_unknown",
                &articles::unknown_vars(article, &asked),
            )
        }),
        None => Ok(narrowed.unwrap_or_else(|| answers::article_answer(article).0)),
    };
    match answer {
        Ok(answer) => out.say(answer),
        Err(unknown) => {
            out.say(unknown);
            offer_person(state, out, ctx);
        }
    }
    quote_article(state, article, out);
    resolved(state);
    Outcome::Answered
}

/// The reply quotes `article`: its source, and the subject from now on. A later "how
/// much?" is not about a product discussed before it.
fn quote_article(state: &mut Conversation, article: &Article, out: &mut Turnout<'_>) {
    out.source = Some(answers::article_source(article));
    state.product = None;
    state.article = Some(article.id.clone());
}

/// The article a message that leans on the subject before it is answered from, of those
/// found for the two together. A follow-up ("and for teachers?") takes the first. Another
/// question ("what if I'm not home?" after express delivery) takes the first that shares a
/// word with it and is not the article just quoted, or that one when it has sentences on
/// what is asked: never the whole article again, which would count as the same question
/// asked again, nor an article that has nothing on what is asked ("why?").
fn leaned_on(
    found: &Found,
    state: &Conversation,
    quoted: Option<&str>,
    text: &str,
    ctx: &Context<'_>,
) -> Option<Article> {
    if answers::follow_up(text).is_some() {
        return found.article().and_then(|h| ctx.catalog.article(&h.id));
    }
    found
        .articles
        .iter()
        .filter(|h| h.confident)
        .filter_map(|h| ctx.catalog.article(&h.id))
        .filter(|a| articles::speaks_to(a, text))
        .find(|a| {
            quoted != Some(a.id.as_str())
                || articles::narrowed(a, text, last_reply(state)).is_some()
        })
}

/// The customer's message before this one. The transcript already holds this message, so
/// the one before it is second from the end.
fn previous_message(state: &Conversation) -> Option<&str> {
    state
        .transcript
        .iter()
        .rev()
        .filter(|t| t.role == Role::Customer)
        .nth(1)
        .map(|t| t.text.as_str())
}

/// "and the mini?" after "is the kettle pro in stock?": the product a follow-up names by a
/// word of its name among those the question before it and this one find together (alone,
/// "mini" is a word of four products' names), when it is not the one discussed.
fn named_in_follow_up(
    retrieved: &Found,
    discussed: Option<&Product>,
    text: &str,
    ctx: &Context<'_>,
) -> Option<Product> {
    let discussed = discussed?;
    answers::follow_up(text)?;
    // Those the two find confidently: the fifth hit may be another "mini".
    let together: Vec<Product> = retrieved
        .with_previous
        .as_deref()?
        .products
        .iter()
        .filter(|h| h.confident)
        .filter_map(|h| ctx.catalog.product(&h.id))
        .collect();
    match shopping::named_in(&together, text).as_slice() {
        [one] if one.sku != discussed.sku => Some(one.clone()),
        _ => None,
    }
}

/// The bot's last reply in the conversation.
fn last_reply(state: &Conversation) -> Option<&str> {
    state
        .transcript
        .iter()
        .rev()
        .find(|t| t.role == Role::Bot)
        .map(|t| t.text.as_str())
}

/// How many products of a kind are offered to pick from.
const OFFERED: usize = 3;

/// Nothing found within the customer's budget: said so, with the cheapest found, which is
/// then the product discussed ("how much is it in black?").
fn nothing_within(
    state: &mut Conversation,
    cap: f64,
    found: &[Product],
    out: &mut Turnout<'_>,
) -> Outcome {
    out.say(shopping::none_within(cap, found));
    match shopping::cheapest(found) {
        Some(p) => answered_about(state, p, out),
        None => {
            resolved(state);
            Outcome::Answered
        }
    }
}

/// Products of the kind asked about: one is answered, several offered to pick from.
/// `exact`: the products are all the kind asks; otherwise the nearest to it.
fn offer_products_of_kind(
    state: &mut Conversation,
    products: &[Product],
    exact: bool,
    text: &str,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    if let ([one], true) = (products, exact) {
        return answer_product(state, one, text, out);
    }
    out.say(if exact {
        kind::some_of_kind(products)
    } else {
        kind::nearest(products)
    });
    offer_choice(state, products, text, ctx);
    Outcome::Clarified
}

/// The bot waits for the customer to pick one of `products`; `question` is answered for it.
fn offer_choice(state: &mut Conversation, products: &[Product], question: &str, ctx: &Context<'_>) {
    state.pending = Some(Pending::ChooseProduct {
        skus: products.iter().map(|p| p.sku.clone()).collect(),
        question: question.to_string(),
        asked_at: ctx.now,
    });
}

fn answer_product(
    state: &mut Conversation,
    product: &Product,
    question: &str,
    out: &mut Turnout<'_>,
) -> Outcome {
    out.say(answers::product_answer(product, question));
    answered_about(state, product, out)
}

/// A reply about `product` is said: it is the reply's source and the product discussed.
fn answered_about(state: &mut Conversation, product: &Product, out: &mut Turnout<'_>) -> Outcome {
    out.source = Some(answers::product_source(product));
    state.product = Some(product.sku.clone());
    resolved(state);
    Outcome::Answered
}

/// Where to buy the product: the bot takes no orders itself. "can I order it in size 47?"
/// asks about a size first: the product's answer says whether it is one, with the link.
fn sell(
    state: &mut Conversation,
    product: &Product,
    text: &str,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    let q = answers::words(text);
    if !answers::asked_attributes(product, &q, &answers::words(&product.name)).is_empty() {
        return answer_product(state, product, text, out);
    }
    let template = if product.stock == 0 {
        "buy_product_sold_out"
    } else {
        "buy_product"
    };
    out.say(ctx.kb.reply(template, &shopping::product_vars(product)));
    answered_about(state, product, out)
}

/// A question about the product discussed that its attributes do not answer: the sentence
/// of its description that does, or that its details do not say (never a guess).
fn answer_detail(
    state: &mut Conversation,
    product: &Product,
    text: &str,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    if answers::asks_about(product, text) || shopping::detail(product, text).is_some() {
        return answer_product(state, product, text, out);
    }
    out.say(
        ctx.kb
            .reply("product_detail_unknown", &shopping::product_vars(product)),
    );
    offer_person(state, out, ctx);
    answered_about(state, product, out)
}

/// What the shop's content does not say, a person may know: offered, unless one has been
/// asked for already.
fn offer_person(state: &mut Conversation, out: &mut Turnout<'_>, ctx: &Context<'_>) {
    if matches!(state.handoff, Handoff::Bot) {
        out.say(ctx.kb.reply("offer_person", &Vars::new()));
        state.pending = Some(Pending::OfferPerson { asked_at: ctx.now });
    }
}

/// A reply to an offer of a person: a short yes or no, not a question or a follow-up that
/// happens to hold one ("ok what about the q3?", "how much is it please?", "no, I meant for
/// teachers").
fn takes_offer(text: &str) -> Option<YesNo> {
    let short = text.split_whitespace().count() <= 4;
    let asks = answers::is_question(text) || answers::follow_up(text).is_some();
    entities::yes_no(text).filter(|_| short && !asks)
}

/// The customer's message as an answer to the bot's question; `None` when it is a new
/// request instead (the question is then dropped).
fn answer_pending(
    state: &mut Conversation,
    pending: Pending,
    found: &entities::Entities,
    retrieved: &Found,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Option<Outcome> {
    let text = out.message.text.as_str();
    match pending {
        // "yes please" hands over; "no" is taken as said; anything else is a new message,
        // and the offer lapses.
        Pending::OfferPerson { .. } => match takes_offer(text) {
            Some(YesNo::Yes) => Some(escalate(
                state,
                out,
                ctx,
                EscalationReason::CustomerRequest,
                Priority::Normal,
            )),
            Some(YesNo::No) => {
                out.say(ctx.kb.reply("person_not_wanted", &Vars::new()));
                resolved(state);
                Some(Outcome::Answered)
            }
            None => None,
        },
        Pending::Confirm { request, asked_at } => {
            out.intent = Some(orders::request_intent(&request).to_string());
            match entities::yes_no(text) {
                Some(YesNo::Yes) => Some(orders::confirmed(state, request, out, ctx)),
                Some(YesNo::No) => {
                    out.say(ctx.kb.reply("declined", &Vars::new()));
                    out.order_id = Some(request.order_id.clone());
                    resolved(state);
                    Some(Outcome::Answered)
                }
                None if is_new_request(text, out.prediction, ctx) => {
                    out.intent = None;
                    None
                }
                None => {
                    let vars = Vars::from([("order.order_id", request.order_id.clone())]);
                    out.say(ctx.kb.reply("confirm_yes_no", &vars));
                    state.pending = Some(Pending::Confirm { request, asked_at });
                    Some(Outcome::Asked)
                }
            }
        }
        Pending::OrderNumber {
            intent,
            offered,
            asked_at,
        } => {
            let yes_no = entities::yes_no(text);
            // "actually I want to cancel order 4417823" is a new request, number and all.
            if is_new_request(text, out.prediction, ctx) && out.prediction.intent != intent {
                out.intent = None;
                return None;
            }
            if let Some(id) = &found.order_id {
                Some(orders::handle(state, &intent, Some(id.clone()), out, ctx))
            } else if offered.is_some() && yes_no == Some(YesNo::Yes) {
                Some(orders::handle(state, &intent, offered, out, ctx))
            } else if offered.is_some() && yes_no == Some(YesNo::No) {
                out.say(ctx.kb.reply("ask_order_number", &Vars::new()));
                state.pending = Some(Pending::OrderNumber {
                    intent,
                    offered: None,
                    asked_at: ctx.now,
                });
                Some(Outcome::Asked)
            } else {
                state.pending = Some(Pending::OrderNumber {
                    intent,
                    offered,
                    asked_at,
                });
                Some(not_understood(state, out, ctx, "ask_order_number_again"))
            }
        }
        Pending::Choose {
            options,
            order_id,
            asked_at,
        } => {
            let described = [ctx.kb.describe(&options[0]), ctx.kb.describe(&options[1])];
            // "neither" or "no": the guess was wrong; ask openly, without counting a failure.
            if entities::rejects_both(text) {
                out.say(ctx.kb.reply("clarify", &Vars::new()));
                return Some(Outcome::Clarified);
            }
            // "the first", "tracking", or a rephrase the model reads as one of the two with
            // the confidence the first message lacked (repeating that message does not pick).
            let picked = entities::pick_option(text, described).or_else(|| {
                options
                    .iter()
                    .position(|o| *o == out.prediction.intent)
                    .filter(|_| out.prediction.confidence >= ctx.settings.clarify_below)
            });
            if let Some(i) = picked {
                let intent = options[i].clone();
                out.intent = Some(intent.clone());
                let order_id = found
                    .order_id
                    .clone()
                    .or(order_id)
                    .or_else(|| state.slots.order_id.clone());
                return Some(act(state, &intent, order_id, out, ctx));
            }
            if is_new_request(text, out.prediction, ctx) {
                return None;
            }
            state.pending = Some(Pending::Choose {
                options,
                order_id: found.order_id.clone().or(order_id),
                asked_at,
            });
            Some(not_understood(state, out, ctx, "clarify_between"))
        }
        Pending::ChooseProduct {
            skus,
            question,
            asked_at,
        } => {
            // "is anyone available to help me?" asks for a person, not about the products.
            if wants_person(out.prediction, ctx) {
                return None;
            }
            // Read as searched, typos mended ("the glas one").
            let text = retrieved.searched_as.as_deref().unwrap_or(text);
            // "how long does the battery last on the q7?" while others are offered: a new
            // question about that one.
            let records = shopping::found_records(retrieved, ctx.catalog);
            let named = shopping::named_product(&records, retrieved, text, ctx.catalog);
            if named.is_some_and(|p| !skus.contains(&p.sku)) {
                return None;
            }
            let offered: Vec<Product> =
                skus.iter().filter_map(|s| ctx.catalog.product(s)).collect();
            // "anything under 50?": those within the budget, or the cheapest and that
            // none is.
            if let Some(cap) = shopping::price_cap(text) {
                let within = shopping::within(offered.clone(), Some(cap));
                return Some(match within.as_slice() {
                    [] => {
                        out.say(shopping::none_within(cap, &offered));
                        state.pending = Some(Pending::ChooseProduct {
                            skus,
                            question,
                            asked_at,
                        });
                        Outcome::Answered
                    }
                    [one] => answer_product(state, one, &question, out),
                    several => offer_products_of_kind(state, several, true, &question, out, ctx),
                });
            }
            // "yes" to the one product offered ("would you like to know more about it?");
            // "no" closes the offer, in the words that close a declined offer of a person.
            let one_answer = match offered.as_slice() {
                [_] if text.split_whitespace().count() <= 4 => entities::yes_no(text),
                _ => None,
            };
            if one_answer == Some(YesNo::No) {
                out.say(ctx.kb.reply("person_not_wanted", &Vars::new()));
                resolved(state);
                return Some(Outcome::Answered);
            }
            let yes = one_answer == Some(YesNo::Yes);
            let picked = answers::pick_product(text, &offered)
                .or_else(|| shopping::by_price(text, &offered))
                .or(yes.then_some(0));
            match picked {
                Some(i) if shopping::buys(text) => Some(sell(state, &offered[i], text, out, ctx)),
                // "ok the q7 then, is there a student discount?": the pick comes with a
                // question on the shop's service that an article answers; that is the answer.
                Some(_) if shopping::about_service(text) && retrieved.article().is_some() => None,
                // "the pro one. does it come in black?" asks its own question.
                Some(i) => {
                    let asks = answers::asks_about(&offered[i], text)
                        || shopping::detail(&offered[i], text).is_some();
                    let asked = if asks { text } else { question.as_str() };
                    Some(answer_product(state, &offered[i], asked, out))
                }
                // "does it have noise cancelling?", "which ones are in stock?": asked of
                // all of them, answered for each.
                None if offered.len() >= 2 && shopping::asked_of_all(&offered, text) => {
                    let compared = shopping::comparison(&offered, text)?;
                    out.say(compared);
                    state.pending = Some(Pending::ChooseProduct {
                        skus,
                        question,
                        asked_at,
                    });
                    resolved(state);
                    Some(Outcome::Answered)
                }
                // "what about tablets?" after "do you sell laptops?" is a new question, and
                // so is one an article answers ("and what about the warranty on tents?").
                None if offered.len() >= 2
                    && !is_new_request(text, out.prediction, ctx)
                    && answers::follow_up(text).is_none()
                    && retrieved.article().is_none() =>
                {
                    out.say(answers::which_product(&offered));
                    state.pending = Some(Pending::ChooseProduct {
                        skus,
                        question,
                        asked_at,
                    });
                    Some(Outcome::Clarified)
                }
                None => None,
            }
        }
        Pending::NewAddress { order_id, asked_at } => {
            out.intent = Some("change_shipping_address".into());
            if entities::looks_like_address(text) {
                Some(orders::plan_address_change(
                    state, &order_id, text, true, out, ctx,
                ))
            } else if is_new_request(text, out.prediction, ctx) {
                out.intent = None;
                None
            } else {
                state.pending = Some(Pending::NewAddress { order_id, asked_at });
                Some(not_understood(state, out, ctx, "ask_new_address"))
            }
        }
    }
}

fn handle_intent(
    state: &mut Conversation,
    intent: &str,
    found: &entities::Entities,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    if intent == ctx.oos_label {
        state.repeat = None;
        return not_understood(state, out, ctx, "clarify");
    }
    // Another subject: the product discussed before is no longer "it".
    state.product = None;
    if let Some(options) = ambiguous(out.prediction, intent, ctx) {
        out.say(ctx.kb.reply("clarify_between", &choice_vars(ctx, &options)));
        // An in-scope question was understood this far: earlier failures do not count
        // against the answer to it.
        resolved(state);
        state.pending = Some(Pending::Choose {
            options,
            order_id: found.order_id.clone(),
            asked_at: ctx.now,
        });
        return Outcome::Clarified;
    }
    let order_id = found
        .order_id
        .clone()
        .or_else(|| state.slots.order_id.clone());
    act(state, intent, order_id, out, ctx)
}

/// The two intents to ask between, when the model is unsure between them: the best one is
/// under `clarify_below` and the runner-up at least `clarify_runner_up`, both in scope. Not
/// when a business rule changed the label (the best guess is then not the model's).
fn ambiguous(prediction: &Prediction, intent: &str, ctx: &Context<'_>) -> Option<[String; 2]> {
    let [(a, pa), (b, pb), ..] = prediction.top.as_slice() else {
        return None;
    };
    let s = ctx.settings;
    (a == intent && b != ctx.oos_label && *pa < s.clarify_below && *pb >= s.clarify_runner_up)
        .then(|| [a.clone(), b.clone()])
}

/// One more of the same request in a row: the article that answers it, when one does (the
/// article is what repeats then, whatever intent the model reads), else the intent. The
/// `frustration_repeats`th in a row hands over to a person.
fn count_repeat(
    state: &mut Conversation,
    intent: &str,
    article: Option<&str>,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Option<Outcome> {
    let count = match &state.repeat {
        Some(r) if r.article.as_deref() == article && (article.is_some() || r.intent == intent) => {
            r.count + 1
        }
        _ => 1,
    };
    state.repeat = Some(Repeat {
        intent: intent.to_string(),
        count,
        article: article.map(str::to_string),
    });
    (count >= ctx.settings.frustration_repeats).then(|| {
        escalate(
            state,
            out,
            ctx,
            EscalationReason::Frustration,
            Priority::High,
        )
    })
}

/// Acts on an intent the bot is sure of.
fn act(
    state: &mut Conversation,
    intent: &str,
    order_id: Option<String>,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
) -> Outcome {
    if let Some(outcome) = count_repeat(state, intent, None, out, ctx) {
        return outcome;
    }
    match intent {
        "contact_human_agent" => escalate(
            state,
            out,
            ctx,
            EscalationReason::CustomerRequest,
            Priority::Normal,
        ),
        "complaint" => escalate(state, out, ctx, EscalationReason::Complaint, Priority::High),
        i if ORDER_INTENTS.contains(&i) => orders::handle(state, i, order_id, out, ctx),
        _ => {
            if matches!(state.handoff, Handoff::Queued { .. }) {
                out.say(ctx.kb.reply("queued", &Vars::new()));
            }
            match ctx.kb.answer(intent, &Vars::new()) {
                Some(answer) => {
                    out.say(answer);
                    resolved(state);
                    Outcome::Answered
                }
                // A model label the knowledge base does not know (checked at start-up for the
                // shipped model, but a model swapped underneath may differ).
                None => not_understood(state, out, ctx, "clarify"),
            }
        }
    }
}
