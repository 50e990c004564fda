//! What one customer message produces: the bot's reply being built, and the moves every
//! policy shares (ask again, escalate, reset the counters). Both the general policy
//! (`customer`) and the order requests (`orders`) use them, so neither imports the other's
//! internals.

use super::{
    escalation, push_turn, Action, Context, Conversation, Handoff, Outcome, Pending, Step,
};
use crate::knowledge::Vars;
use crate::wire::{
    Author, EscalationReason, EscalationType, InboundMessage, Prediction, Priority, Role,
};

/// Collects the bot's reply to one message.
pub(super) struct Turnout<'a> {
    pub message: &'a InboundMessage,
    pub prediction: &'a Prediction,
    pub texts: Vec<String>,
    /// The intent the reply answers when it is not the message's own (an order number given
    /// in answer to "which order?" answers `track_order`, not `out_of_scope`).
    pub intent: Option<String>,
    pub order_id: Option<String>,
    /// Hand the conversation to a person, with this reason and priority.
    pub escalate: Option<(EscalationReason, Priority)>,
    /// Order requests the customer confirmed.
    pub requests: Vec<Action>,
    /// The article or product the reply quotes.
    pub source: Option<crate::wire::Source>,
    /// The order flow asked a visitor who is not signed in to sign in first.
    pub asked_to_sign_in: bool,
}

impl Turnout<'_> {
    pub fn say(&mut self, text: String) {
        self.texts.push(text);
    }

    pub(super) fn finish(
        mut self,
        mut state: Conversation,
        ctx: &Context<'_>,
        outcome: Outcome,
    ) -> Step {
        let mut actions = Vec::new();
        // What the reply (and an escalation) answers: "A-13301" given for "which order?"
        // completes a delivery claim, not an off-topic message.
        let intent = self
            .intent
            .take()
            .unwrap_or_else(|| self.prediction.intent.clone());
        if !self.texts.is_empty() {
            let text = self.texts.join(" ");
            push_turn(&mut state, ctx, Role::Bot, &text, None, None);
            actions.push(Action::Reply {
                author: Author::Bot,
                text,
                intent: Some(intent.clone()),
                confidence: Some(self.prediction.confidence),
                in_reply_to: Some(self.message.message_id.clone()),
                agent_id: None,
                order_id: self.order_id.take(),
                source: self.source.take(),
            });
        }
        // Built last, so the escalation's transcript includes the bot's answer.
        if let Some((reason, priority)) = self.escalate {
            actions.push(escalation(
                &state,
                EscalationType::Escalation,
                reason,
                priority,
                Some(&intent),
            ));
        }
        actions.append(&mut self.requests);
        Step {
            state,
            actions,
            outcome,
            rejection: None,
        }
    }
}

/// `{first}` and `{second}` of the question between two intents, in plain words.
pub(super) fn choice_vars(ctx: &Context<'_>, options: &[String; 2]) -> Vars {
    Vars::from([
        ("first", ctx.kb.describe(&options[0]).to_string()),
        ("second", ctx.kb.describe(&options[1]).to_string()),
    ])
}

/// The bot could not use the message: ask again, or escalate after too many failures.
pub(super) fn not_understood(
    state: &mut Conversation,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
    template: &str,
) -> Outcome {
    state.failures += 1;
    if state.failures >= ctx.settings.escalate_after_failures {
        state.pending = None;
        return escalate(
            state,
            out,
            ctx,
            EscalationReason::RepeatedFailure,
            Priority::Normal,
        );
    }
    let mut vars = Vars::new();
    match &state.pending {
        Some(Pending::NewAddress { order_id, .. }) => {
            vars.insert("order.order_id", order_id.clone());
        }
        Some(Pending::Choose { options, .. }) => vars = choice_vars(ctx, options),
        _ => {}
    }
    out.say(ctx.kb.reply(template, &vars));
    if template.starts_with("clarify") {
        Outcome::Clarified
    } else {
        Outcome::Asked
    }
}

/// The request was dealt with: the failure and repeat counters start again.
pub(super) fn resolved(state: &mut Conversation) {
    state.failures = 0;
}

/// Hands the conversation to a person, once: a second request while queued only reassures.
pub(super) fn escalate(
    state: &mut Conversation,
    out: &mut Turnout<'_>,
    ctx: &Context<'_>,
    reason: EscalationReason,
    priority: Priority,
) -> Outcome {
    state.failures = 0;
    state.repeat = None;
    if let Handoff::Queued { .. } = state.handoff {
        out.say(ctx.kb.reply("already_escalated", &Vars::new()));
        return Outcome::Answered;
    }
    state.handoff = Handoff::Queued {
        reason,
        since: ctx.now,
    };
    out.say(ctx.kb.reply("escalated", &Vars::new()));
    out.escalate = Some((reason, priority));
    Outcome::Escalated
}
