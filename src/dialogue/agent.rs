//! An action from a human agent's console: take over, reply, hand back, close.
//!
//! Rights: an agent on the allow-list (when there is one) may take over a conversation that
//! was handed to a person (queued), or one it already holds. Taking a conversation from
//! another agent, or one that was never escalated, needs `force`. Only the agent holding a
//! conversation may reply, hand it back or close it; a reply to a queued conversation takes
//! it over. Anything else is refused and dead-lettered, so a stray or forged action cannot
//! silence the bot or talk across a colleague.

use super::{
    escalation, push_turn, Action, Context, Conversation, Handoff, Outcome, Rejection, Step,
};
use crate::knowledge::Vars;
use crate::wire::{
    AgentAction, AgentActionKind, Author, ErrorKind, EscalationReason, EscalationType, Priority,
    Role,
};

/// Whether `action` is allowed on a conversation in `state`; the reason when it is not.
fn check(state: &Conversation, action: &AgentAction, ctx: &Context<'_>) -> Option<Rejection> {
    let me = action.agent_id.as_str();
    let refuse = |kind, reason: String| Some(Rejection { kind, reason });
    if ctx
        .allowed_agents
        .is_some_and(|allowed| !allowed.contains(me))
    {
        return refuse(
            ErrorKind::UnknownAgent,
            "agent_id is not on the agent allow-list".into(),
        );
    }
    if state.transcript.is_empty() && state.handoff == Handoff::Bot {
        return refuse(
            ErrorKind::AgentNotAllowed,
            "no such conversation: the customer has not written yet".into(),
        );
    }
    let holder = match &state.handoff {
        Handoff::Agent { agent_id, .. } => Some(agent_id.as_str()),
        _ => None,
    };
    match (action.action, &state.handoff) {
        (_, Handoff::Agent { .. }) if holder == Some(me) => None,
        (AgentActionKind::TakeOver, _) if action.force => None,
        (AgentActionKind::TakeOver | AgentActionKind::Reply, Handoff::Queued { .. }) => None,
        (_, Handoff::Agent { .. }) => refuse(
            ErrorKind::AgentNotAllowed,
            format!(
                "the conversation is held by another agent ({}); take it over with \"force\": true first",
                holder.unwrap_or_default()
            ),
        ),
        (AgentActionKind::TakeOver | AgentActionKind::Reply, Handoff::Bot) => refuse(
            ErrorKind::AgentNotAllowed,
            "the conversation was not handed to a person; take it over with \"force\": true first"
                .into(),
        ),
        (AgentActionKind::HandBack | AgentActionKind::Close, _) => refuse(
            ErrorKind::AgentNotAllowed,
            "only the agent holding the conversation may hand it back or close it; take it over first"
                .into(),
        ),
    }
}

pub(super) fn handle(mut state: Conversation, action: &AgentAction, ctx: &Context<'_>) -> Step {
    if let Some(r) = check(&state, action, ctx) {
        return Step::rejected(state, r.kind, r.reason);
    }
    let mut actions = Vec::new();
    let agent_id = action.agent_id.clone();
    match action.action {
        AgentActionKind::TakeOver => {
            take_over(&mut state, &agent_id, ctx);
        }
        AgentActionKind::Reply => {
            // Replying is taking over (or staying active): the bot must not talk across
            // the agent.
            take_over(&mut state, &agent_id, ctx);
            let text = action.text.clone().unwrap_or_default();
            push_turn(&mut state, ctx, Role::Agent, &text, None, None);
            actions.push(Action::Reply {
                author: Author::Agent,
                text,
                intent: None,
                confidence: None,
                in_reply_to: state.last_message_id.clone(),
                agent_id: Some(agent_id),
                source: None,
                order_id: state.slots.order_id.clone(),
            });
        }
        AgentActionKind::HandBack | AgentActionKind::Close => {
            let close = action.action == AgentActionKind::Close;
            state.handoff = Handoff::Bot;
            state.failures = 0;
            state.repeat = None;
            state.pending = None;
            if close {
                // The case is done: the next message starts afresh.
                state.slots = Default::default();
            } else {
                let text = ctx.kb.reply("handed_back", &Vars::new());
                push_turn(&mut state, ctx, Role::Bot, &text, None, None);
                actions.push(Action::Reply {
                    author: Author::Bot,
                    text,
                    intent: None,
                    confidence: None,
                    in_reply_to: state.last_message_id.clone(),
                    agent_id: None,
                    source: None,
                    order_id: None,
                });
            }
            let reason = if close {
                EscalationReason::Close
            } else {
                EscalationReason::HandBack
            };
            let mut ended = escalation(
                &state,
                EscalationType::HandoffEnded,
                reason,
                Priority::Low,
                None,
            );
            if let Action::Escalate { agent_id: a, .. } = &mut ended {
                *a = Some(agent_id);
            }
            actions.push(ended);
        }
    }
    Step {
        state,
        actions,
        outcome: Outcome::AgentAction,
        rejection: None,
    }
}

/// The agent holds the conversation from now (or stays holding it, active now).
fn take_over(state: &mut Conversation, agent_id: &str, ctx: &Context<'_>) {
    let since = match &state.handoff {
        Handoff::Agent {
            agent_id: holder,
            since,
            ..
        } if holder == agent_id => *since,
        _ => {
            // The agent decides now; a question the bot asked is void.
            state.pending = None;
            ctx.now
        }
    };
    state.handoff = Handoff::Agent {
        agent_id: agent_id.to_string(),
        since,
        last_active: Some(ctx.now),
    };
}

/// The holder has been silent longer than the idle timeout: whether to re-queue.
pub(super) fn is_idle(handoff: &Handoff, ctx: &Context<'_>) -> bool {
    let Handoff::Agent {
        since, last_active, ..
    } = handoff
    else {
        return false;
    };
    let last = last_active.unwrap_or(*since);
    (ctx.now - last).num_seconds() > ctx.settings.agent_idle_timeout_secs
}
