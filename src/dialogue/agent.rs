//! An action from a human agent's console: take over, reply, hand back, close.

use super::{escalation, push_turn, Action, Context, Conversation, Handoff, Outcome, Step};
use crate::knowledge::Vars;
use crate::wire::{
    AgentAction, AgentActionKind, Author, EscalationReason, EscalationType, Priority, Role,
};

pub(super) fn handle(mut state: Conversation, action: &AgentAction, ctx: &Context<'_>) -> Step {
    let mut actions = Vec::new();
    let agent_id = action.agent_id.clone();
    match action.action {
        AgentActionKind::TakeOver => {
            take_over(&mut state, &agent_id, ctx);
        }
        AgentActionKind::Reply => {
            // Replying is taking over: the bot must not talk across the agent.
            if !matches!(&state.handoff, Handoff::Agent { agent_id: a, .. } if *a == agent_id) {
                take_over(&mut state, &agent_id, ctx);
            }
            let text = action.text.clone().unwrap_or_default();
            push_turn(&mut state, ctx, Role::Agent, &text, None, None);
            actions.push(Action::Reply {
                author: Author::Agent,
                text,
                intent: None,
                confidence: None,
                in_reply_to: state.last_message_id.clone(),
                agent_id: Some(agent_id),
                order_id: state.slots.order_id.clone(),
            });
        }
        AgentActionKind::HandBack | AgentActionKind::Close => {
            let close = action.action == AgentActionKind::Close;
            if state.handoff != Handoff::Bot {
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
    }
    Step {
        state,
        actions,
        outcome: Outcome::AgentAction,
    }
}

fn take_over(state: &mut Conversation, agent_id: &str, ctx: &Context<'_>) {
    state.handoff = Handoff::Agent {
        agent_id: agent_id.to_string(),
        since: ctx.now_text(),
    };
    // The agent decides now; a question the bot asked is void.
    state.pending = None;
}
