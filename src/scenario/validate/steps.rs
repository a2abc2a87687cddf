//! Steps: which fields each action takes, the step's deadlines, the node or context it acts on,
//! and one function per action that has rules of its own.

use std::collections::HashMap;
use std::time::Duration;

use serde_spanned::Spanned;

use super::{Validator, bounds, field};
use crate::scenario::names::NameKind;
use crate::scenario::raw::{RawScenario, RawStep};
use crate::scenario::*;

impl ActionName {
    /// Whether the action acts on a node (`node` required).
    fn takes_node(self) -> bool {
        !matches!(
            self,
            ActionName::Term | ActionName::Shutdown | ActionName::Sleep | ActionName::Alarm
        )
    }

    /// Whether the action acts on a context (`context`, default `main`).
    fn takes_context(self) -> bool {
        matches!(self, ActionName::Term | ActionName::Shutdown)
    }
}

/// What a step acts on, once resolved.
#[derive(Clone, Copy)]
struct Target {
    /// The node, for node actions whose `node` names one.
    node: Option<usize>,
    /// The context, for context actions (`main` otherwise).
    context: usize,
}

impl Validator<'_> {
    /// A validated step, or `None` (with errors recorded) when anything in it is wrong.
    pub(super) fn step(
        &mut self,
        s: &RawStep,
        step_timeout: Duration,
        nodes: &[NodeSpec],
        index: &HashMap<String, usize>,
        contexts: &[ContextSpec],
    ) -> Option<StepSpec> {
        let action = *s.action.get_ref();
        let errors_before = self.errors.len();
        let what = format!("a `{action}` step");
        self.step_fields(s, action, &what);
        let target = Target {
            node: if action.takes_node() {
                self.step_node(s, &what, nodes, index)
            } else {
                None
            },
            context: if action.takes_context() {
                self.context_ref(&s.context, contexts)
            } else {
                0
            },
        };
        let (timeout, expect_at_least) = self.step_deadlines(s, step_timeout);
        let action_spec = self.action(s, target, timeout, nodes);
        let label = self.step_label(s, action, target, nodes, contexts);
        if self.errors.len() > errors_before {
            return None;
        }
        action_spec.map(|action| StepSpec {
            label,
            action,
            timeout,
            expect_at_least,
        })
    }

    /// Rejects the fields the step's action does not take.
    fn step_fields(&mut self, s: &RawStep, action: ActionName, what: &str) {
        let unless = |applies: bool, use_: super::FieldUse| (!applies).then_some(use_);
        let rejected: Vec<super::FieldUse> = [
            unless(action.takes_node(), field("node", &s.node)),
            unless(action.takes_context(), field("context", &s.context)),
            unless(action == ActionName::Steer, field("command", &s.command)),
            unless(action == ActionName::Sleep, field("for", &s.duration)),
            unless(
                action == ActionName::SetLinger,
                field("linger_ms", &s.linger_ms),
            ),
            unless(action == ActionName::Alarm, field("after", &s.after)),
            unless(action == ActionName::Stop, field("how", &s.how)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.reject_fields(what, &rejected);
    }

    /// The step's deadline and the least time it must take, which must be shorter.
    fn step_deadlines(
        &mut self,
        s: &RawStep,
        step_timeout: Duration,
    ) -> (Duration, Option<Duration>) {
        let timeout = s
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, "timeout"))
            .unwrap_or(step_timeout);
        let expect_at_least = s
            .expect_at_least
            .as_ref()
            .and_then(|d| Some((d.span(), self.duration(d, "expect_at_least")?)));
        if let Some((span, at_least)) = &expect_at_least
            && *at_least >= timeout
        {
            self.error(span.clone(), format!(
                "expect_at_least {} is not shorter than the step's deadline {}: the step would hang before it could pass",
                humantime::format_duration(*at_least), humantime::format_duration(timeout)));
        }
        (timeout, expect_at_least.map(|(_, d)| d))
    }

    /// The step's `label`, or action + node or context.
    fn step_label(
        &mut self,
        s: &RawStep,
        action: ActionName,
        target: Target,
        nodes: &[NodeSpec],
        contexts: &[ContextSpec],
    ) -> String {
        match &s.label {
            Some(l) => {
                self.name(NameKind::Label, l);
                l.get_ref().clone()
            }
            None => default_label(
                action,
                target.node.map(|n| nodes[n].name.as_str()),
                action
                    .takes_context()
                    .then(|| contexts[target.context].name.as_str()),
            ),
        }
    }

    /// What the step does; `None` when its node cannot take it or a field it needs is missing.
    fn action(
        &mut self,
        s: &RawStep,
        target: Target,
        timeout: Duration,
        nodes: &[NodeSpec],
    ) -> Option<Action> {
        let node = target.node;
        let action = *s.action.get_ref();
        if let Some(n) = node
            && is_program(&nodes[n])
            && action != ActionName::Stop
        {
            self.node_error(
                s,
                format!(
                    "`{}` is a program: the only step it takes is `stop`",
                    nodes[n].name
                ),
            );
            return None;
        }
        match action {
            ActionName::Close => node.map(|node| Action::Close { node }),
            ActionName::Cancel => self
                .async_node(s, node, nodes)
                .map(|node| Action::Cancel { node }),
            ActionName::StopRuntime => self
                .async_node(s, node, nodes)
                .map(|node| Action::StopRuntime { node }),
            ActionName::Join => self.join(s, node, nodes),
            ActionName::Steer => self.steer(s, node, nodes),
            ActionName::SetLinger => self.set_linger(s, node),
            ActionName::Term => Some(Action::Term {
                context: target.context,
            }),
            ActionName::Shutdown => Some(Action::Shutdown {
                context: target.context,
            }),
            ActionName::Sleep => self.sleep(s, timeout),
            ActionName::Exit => self.exit(s, node, nodes),
            ActionName::Open => self.open(s, node, nodes),
            ActionName::Alarm => self.alarm(s),
            ActionName::Stop => self.stop(s, node, nodes),
        }
    }

    /// `exit` needs a node whose own thread runs its loop (not an async runtime, which
    /// `stop_runtime` stops).
    fn exit(&mut self, s: &RawStep, node: Option<usize>, nodes: &[NodeSpec]) -> Option<Action> {
        let n = node?;
        let spec = &nodes[n];
        if spec.has_thread() && spec.endpoint().is_none_or(|e| e.mode != Mode::Async) {
            return Some(Action::Exit { node: n });
        }
        self.node_error(s, format!("`exit` needs a node with a thread of its own (blocking, poll, stream or proxy; an async node's is stopped with `stop_runtime`); `{}` is not one", spec.name));
        None
    }

    /// `open` needs a node that setup left for it.
    fn open(&mut self, s: &RawStep, node: Option<usize>, nodes: &[NodeSpec]) -> Option<Action> {
        let n = node?;
        if nodes[n].open == OpenAt::Step {
            return Some(Action::Open { node: n });
        }
        self.node_error(
            s,
            format!(
                "`open` needs a node with open = \"step\"; setup already made the sockets of `{}`",
                nodes[n].name
            ),
        );
        None
    }

    fn alarm(&mut self, s: &RawStep) -> Option<Action> {
        let Some(a) = &s.after else {
            self.error(
                s.action.span(),
                "an `alarm` step needs `after` (e.g. after = \"100ms\")",
            );
            return None;
        };
        self.duration(a, "after")
            .map(|after| Action::Alarm { after })
    }

    /// `stop`: a program node, and how it is asked to end.
    fn stop(&mut self, s: &RawStep, node: Option<usize>, nodes: &[NodeSpec]) -> Option<Action> {
        if let Some(n) = node
            && !is_program(&nodes[n])
        {
            self.node_error(
                s,
                format!(
                    "`stop` applies only to program nodes; `{}` is not one",
                    nodes[n].name
                ),
            );
            return None;
        }
        let how = match &s.how {
            Some(h) => match h.get_ref().parse::<StopHow>() {
                Ok(how) => how,
                Err(message) => {
                    self.error(h.span(), message);
                    return None;
                }
            },
            None => StopHow::Wait,
        };
        node.map(|node| Action::Stop { node, how })
    }

    /// The node of `cancel` and `stop_runtime`, which must be async.
    fn async_node(
        &mut self,
        s: &RawStep,
        node: Option<usize>,
        nodes: &[NodeSpec],
    ) -> Option<usize> {
        let n = node?;
        if nodes[n].endpoint().is_some_and(|e| e.mode == Mode::Async) {
            return Some(n);
        }
        self.node_error(
            s,
            format!(
                "`{}` applies only to async nodes (mode = \"async\"); `{}` is not one",
                s.action.get_ref(),
                nodes[n].name
            ),
        );
        None
    }

    fn join(&mut self, s: &RawStep, node: Option<usize>, nodes: &[NodeSpec]) -> Option<Action> {
        let n = node?;
        if nodes[n].has_thread() {
            return Some(Action::Join { node: n });
        }
        self.node_error(s, format!("`join` needs a node with a thread; `{}` has none (idle sockets and publishers are used by the main thread)", nodes[n].name));
        None
    }

    fn steer(&mut self, s: &RawStep, node: Option<usize>, nodes: &[NodeSpec]) -> Option<Action> {
        let node = node.filter(|&n| {
            let steerable = matches!(
                nodes[n].body,
                NodeBody::Proxy {
                    engine: Engine::Steerable,
                    ..
                }
            );
            if !steerable {
                self.node_error(s, format!("`steer` applies only to proxies with engine = \"steerable\"; `{}` is not one", nodes[n].name));
            }
            steerable
        });
        let Some(command) = &s.command else {
            self.error(
                s.action.span(),
                "a `steer` step needs `command` (TERMINATE, PAUSE or RESUME)",
            );
            return None;
        };
        node.map(|node| Action::Steer {
            node,
            command: *command.get_ref(),
        })
    }

    fn set_linger(&mut self, s: &RawStep, node: Option<usize>) -> Option<Action> {
        if s.linger_ms.is_none() {
            self.error(s.action.span(), "a `set_linger` step needs `linger_ms`");
            return None;
        }
        let linger_ms = self.number(&s.linger_ms, "linger_ms", bounds::LINGER_MS)?;
        node.map(|node| Action::SetLinger { node, linger_ms })
    }

    fn sleep(&mut self, s: &RawStep, timeout: Duration) -> Option<Action> {
        let Some(d) = &s.duration else {
            self.error(
                s.action.span(),
                "a `sleep` step needs `for` (e.g. for = \"100ms\")",
            );
            return None;
        };
        let duration = self.duration(d, "for")?;
        if duration >= timeout {
            self.error(
                d.span(),
                format!(
                    "sleep for {} is not shorter than the step's deadline {}: it would always hang",
                    humantime::format_duration(duration),
                    humantime::format_duration(timeout)
                ),
            );
        }
        Some(Action::Sleep { duration })
    }

    /// Every node with `open = "step"` has exactly one `open` step, and no step acts on it
    /// before that one.
    pub(super) fn open_steps(&mut self, raw: &RawScenario, nodes: &[NodeSpec], steps: &[StepSpec]) {
        for (i, (node, raw_node)) in nodes.iter().zip(&raw.nodes).enumerate() {
            if node.open != OpenAt::Step {
                continue;
            }
            let opens: Vec<usize> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.action == Action::Open { node: i })
                .map(|(k, _)| k)
                .collect();
            let Some(&first) = opens.first() else {
                let span = raw_node
                    .open
                    .as_ref()
                    .map_or(raw_node.name.span(), Spanned::span);
                self.error(span, format!("node `{}` is opened by a step (open = \"step\"), but no `open` step names it", node.name));
                continue;
            };
            for &k in &opens[1..] {
                self.node_error(
                    &raw.steps[k],
                    format!(
                        "node `{}` is already opened by step {}",
                        node.name,
                        first + 1
                    ),
                );
            }
            for (k, step) in steps.iter().enumerate().take(first) {
                if step.action.node() == Some(i) {
                    self.node_error(
                        &raw.steps[k],
                        format!(
                            "node `{}` has no sockets before its `open` step (step {})",
                            node.name,
                            first + 1
                        ),
                    );
                }
            }
        }
    }

    /// An error about the step's node, at `node` (or at `action` when it has none).
    fn node_error(&mut self, s: &RawStep, message: String) {
        let span = s
            .node
            .as_ref()
            .map_or_else(|| s.action.span(), Spanned::span);
        self.error(span, message);
    }

    fn step_node(
        &mut self,
        s: &RawStep,
        what: &str,
        nodes: &[NodeSpec],
        index: &HashMap<String, usize>,
    ) -> Option<usize> {
        let Some(node) = &s.node else {
            self.error(s.action.span(), format!("{what} needs `node`"));
            return None;
        };
        let found = index.get(node.get_ref()).copied();
        if found.is_none() {
            let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            self.error(
                node.span(),
                format!(
                    "no node named `{}` (nodes: {})",
                    node.get_ref(),
                    known.join(", ")
                ),
            );
        }
        found
    }
}

/// The label a step gets when it has none: action plus node, or plus context when not `main`.
fn default_label(action: ActionName, node: Option<&str>, context: Option<&str>) -> String {
    match (node, context) {
        (Some(node), _) => format!("{action} {node}"),
        (None, Some(context)) if context != MAIN_CONTEXT => format!("{action} {context}"),
        _ => action.as_str().to_owned(),
    }
}

fn is_program(node: &NodeSpec) -> bool {
    matches!(node.body, NodeBody::Program(_))
}
