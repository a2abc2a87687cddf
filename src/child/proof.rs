//! Proven hangs: when a step that can block forever starts (`term`, a `close`, `set_linger`
//! or `exit` that waits for a node's thread, a `join`), decide from the registry, the nodes' states and
//! the scenario whether it can ever finish. Where it cannot, the [`Proof`] says why in plain
//! words, and the watchdog declares the hang at once instead of at the deadline.
//!
//! Every rule rests on one fact: steps run one after another on the main thread, so while the
//! main thread is blocked in this step no later step can run, and only the node threads and
//! libzmq can still change anything. A hang is proven only from sockets or threads nothing
//! left can close or end; whatever might still end (a finite linger, messages a peer may take,
//! a loop or a receive task that closes its socket on ETERM, a proxy that closes on return, a
//! monitor reader, which closes itself) is never part of a proof. A node opened by a later
//! `open` step (or whose `open` was refused) has no sockets and no owner yet, so it proves
//! nothing. When unsure, there is no proof, and the deadline decides as before.
//!
//! A proof also lists what the step still causes ([`Settle`]): the loops that ETERM wakes and
//! the monitor readers of the context. The verdict waits until they have acted, so that the
//! trace of a proven hang is the trace the deadline would have given. The registry keeps the
//! running step's proof, where the watchdog reads it.

use super::registry::{OwnerState, RegistryState, SocketEntry, ThreadOf};
use super::registry::{Proof, Settle};
use crate::scenario::{Action, Mode, NodeBody, OnEterm, Scenario, SocketType};
use crate::trace::SocketRole;

/// Whether and how hangs are proven (`--no-early`, `--verify-proofs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EarlyVerdicts {
    /// A proven hang is declared as soon as the step's consequences have settled.
    #[default]
    On,
    /// No proofs: every hang waits for its deadline.
    Off,
    /// Proofs are made but the step runs to its deadline anyway; a proven step that finishes
    /// is an error of the harness.
    Verify,
}

impl EarlyVerdicts {
    /// Its value on the child's command line.
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyVerdicts::On => "on",
            EarlyVerdicts::Off => "off",
            EarlyVerdicts::Verify => "verify",
        }
    }

    /// From the two flags (`clap` keeps them apart).
    pub fn from_flags(no_early: bool, verify_proofs: bool) -> Self {
        match (no_early, verify_proofs) {
            (true, _) => EarlyVerdicts::Off,
            (false, true) => EarlyVerdicts::Verify,
            (false, false) => EarlyVerdicts::On,
        }
    }
}

/// Decides whether step `step` of `scenario`, about to start, can never finish.
pub fn prove(scenario: &Scenario, state: &RegistryState, step: usize) -> Option<Proof> {
    if program_running(scenario, step) {
        return None;
    }
    match scenario.steps.get(step)?.action {
        Action::Term { context } => term(scenario, state, step, context),
        Action::Close { node } | Action::SetLinger { node, .. } | Action::Exit { node } => {
            unheard(scenario, state, node)
        }
        Action::Join { node } => join(scenario, state, node),
        Action::Shutdown { .. }
        | Action::Cancel { .. }
        | Action::StopRuntime { .. }
        | Action::Steer { .. }
        | Action::Open { .. }
        | Action::Alarm { .. }
        | Action::Sleep { .. }
        | Action::Stop { .. } => None,
    }
}

/// Whether the node's sockets were made: at setup, or by an `open` step that was not refused.
/// Until then its registry entry holds the owner it will have, not one it has.
fn opened(state: &RegistryState, node: usize) -> bool {
    state.sockets.iter().any(|s| s.node == node)
}

/// Whether a program node may still be running while step `step` runs: one that no earlier
/// `stop` step saw exit. A program is another process, which may connect, send, take messages
/// or end at any moment, so no step that runs beside it is ever proven.
fn program_running(scenario: &Scenario, step: usize) -> bool {
    scenario.nodes.iter().enumerate().any(|(n, node)| {
        matches!(node.body, NodeBody::Program(_))
            && earlier_step(
                scenario,
                step,
                |a| matches!(*a, Action::Stop { node, .. } if node == n),
            )
            .is_none()
    })
}

/// The label of the last step before `step` that matches `what`.
fn earlier_step(scenario: &Scenario, step: usize, what: impl Fn(&Action) -> bool) -> Option<&str> {
    scenario.steps[..step]
        .iter()
        .rev()
        .find(|s| what(&s.action))
        .map(|s| s.label.as_str())
}

/// `term` of `context`: some open socket of it has an owner that can never close it.
fn term(scenario: &Scenario, state: &RegistryState, step: usize, context: usize) -> Option<Proof> {
    let alive = |of: ThreadOf| state.threads.iter().any(|t| t.of == of && t.alive);
    let mut settle = Vec::new();
    for (n, node) in state.nodes.iter().enumerate() {
        if node.context != context || !opened(state, n) {
            continue;
        }
        match node.owner {
            // A runtime's thread does not end on ETERM; its receive task handles it.
            OwnerState::RuntimeRunning {
                task_cancelled: false,
            } if !node.eterm_handled => settle.push(Settle::EtermHandled(n)),
            OwnerState::RuntimeRunning { .. } | OwnerState::RuntimeStopped { .. } => {}
            _ if alive(ThreadOf::Node(n)) => settle.push(Settle::ThreadEnded(n)),
            _ => {}
        }
        if alive(ThreadOf::Monitor(n)) {
            settle.push(Settle::MonitorEnded(n));
        }
    }
    let open = |s: &&SocketEntry| s.open && s.context == context;
    let reasons: Vec<String> = state
        .sockets
        .iter()
        .filter(open)
        .filter(|s| s.role != SocketRole::MonitorReader)
        .filter_map(|s| {
            let why = never_closed(scenario, state, step, s)?;
            let node = &state.nodes[s.node];
            let role = match s.role {
                SocketRole::Socket => String::new(),
                role => format!(" {role}"),
            };
            Some(format!(
                "{}{role} socket of node `{}` is open; {why}",
                s.socket_type, node.name
            ))
        })
        .collect();
    (!reasons.is_empty()).then_some(Proof { reasons, settle })
}

/// Why nothing can ever close an open socket while the main thread is inside `term`, or
/// `None` when something still might.
fn never_closed(
    scenario: &Scenario,
    state: &RegistryState,
    step: usize,
    socket: &SocketEntry,
) -> Option<String> {
    let node = &state.nodes[socket.node];
    let name = node.name.as_str();
    let thread = node.owner_thread.as_str();
    let keeps = scenario.nodes[socket.node].on_eterm == OnEterm::Keep;
    let no_later_step = "no later step can close it while the main thread is inside term";
    let stopped_at = |cancel: bool| {
        earlier_step(scenario, step, |a| match *a {
            Action::StopRuntime { node } => !cancel && node == socket.node,
            Action::Cancel { node } => cancel && node == socket.node,
            _ => false,
        })
        .map(|label| format!(" at step `{label}`"))
        .unwrap_or_default()
    };
    match node.owner {
        OwnerState::Main => Some(format!(
            "it belongs to the main thread, which is inside this term, so no `close {name}` step can run"
        )),
        OwnerState::ThreadRunning => keeps.then(|| {
            format!(
                "its thread `{thread}` returns on ETERM without closing it (on_eterm = \"keep\"), and {no_later_step}"
            )
        }),
        OwnerState::ThreadEndedKeeping => Some(format!(
            "its thread `{thread}` has returned without closing it (on_eterm = \"keep\"), and {no_later_step}"
        )),
        OwnerState::ThreadEnded => None,
        OwnerState::RuntimeRunning {
            task_cancelled: true,
        } => Some(format!(
            "its receive task was cancelled{}, which does not close it, and {no_later_step}",
            stopped_at(true)
        )),
        OwnerState::RuntimeRunning {
            task_cancelled: false,
        } => keeps.then(|| {
            format!(
                "its receive task keeps it after ETERM (on_eterm = \"keep\"), and {no_later_step}"
            )
        }),
        OwnerState::RuntimeStopped { .. } => Some(format!(
            "its runtime was stopped{}; {no_later_step}",
            stopped_at(false)
        )),
    }
}

/// `close`, `set_linger` or `exit` of a node whose thread never reads requests: a blocking
/// receive loop (a REQ's blocking wait for a reply or a request) or a proxy call, which only
/// ETERM (or TERMINATE, also sent by the main thread) ends. A poll or stream loop hears
/// requests between two turns, so it proves nothing.
fn unheard(scenario: &Scenario, state: &RegistryState, node: usize) -> Option<Proof> {
    let entry = &state.nodes[node];
    let context = &state.contexts[entry.context];
    let can_end = context.ended_in.is_some() || entry.terminate_sent_in.is_some();
    if entry.owner != OwnerState::ThreadRunning || can_end || !opened(state, node) {
        return None;
    }
    let inside = match &scenario.nodes[node].body {
        NodeBody::Proxy { engine, .. } => format!("inside the proxy call ({engine})"),
        NodeBody::Endpoint(e) if e.mode == Mode::Blocking && e.socket_type == SocketType::Req => {
            "in a blocking recv or poll (a REQ waits there for its reply or for ever)".to_owned()
        }
        NodeBody::Endpoint(e) if e.mode == Mode::Blocking => "in a blocking recv".to_owned(),
        NodeBody::Endpoint(_) | NodeBody::Program(_) => return None,
    };
    Some(Proof {
        reasons: vec![format!(
            "the thread `{}` of node `{}` is {inside} and reads requests only after its loop ends, which takes ETERM from a `shutdown` or `term` of context `{}`; the main thread, which alone could run those, is waiting here for the answer",
            entry.owner_thread, entry.name, context.name
        )],
        settle: Vec::new(),
    })
}

/// `join` of a thread that only the main thread could end.
fn join(scenario: &Scenario, state: &RegistryState, node: usize) -> Option<Proof> {
    let entry = &state.nodes[node];
    let context = &state.contexts[entry.context];
    let can_end = context.ended_in.is_some() || entry.terminate_sent_in.is_some();
    if !opened(state, node) {
        return None;
    }
    let reason = match entry.owner {
        OwnerState::ThreadRunning if !can_end => {
            let or_close = match &scenario.nodes[node].body {
                NodeBody::Endpoint(e) if matches!(e.mode, Mode::Poll | Mode::Stream) => {
                    " or a `close` or `exit` request"
                }
                _ => "",
            };
            format!(
                "the thread `{}` of node `{}` ends only on ETERM (a `shutdown` or `term` of context `{}`){or_close}; the main thread, which alone runs those steps, is waiting in this join",
                entry.owner_thread, entry.name, context.name
            )
        }
        OwnerState::RuntimeRunning { .. } => format!(
            "the runtime thread of node `{}` ends only at a `stop_runtime {}` step, which the main thread, waiting in this join, cannot run",
            entry.name, entry.name
        ),
        _ => return None,
    };
    Some(Proof {
        reasons: vec![reason],
        settle: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::child::registry::ThreadEntry;
    use crate::trace::Phase;

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse(Path::new("t.toml"), text, "t").expect("valid scenario")
    }

    const SUBSCRIBER_AND_TERM: &str = r#"
        expect = "hang"
        [[nodes]]
        name = "sub"
        kind = "subscriber"
        mode = "MODE"
        on_eterm = "ON_ETERM"
        bind = "auto"
        [[steps]]
        action = "stop_runtime"
        node = "sub"
        [[steps]]
        action = "term"
    "#;

    fn subscriber(mode: &str, on_eterm: Option<&str>) -> Scenario {
        let text = SUBSCRIBER_AND_TERM.replace("MODE", mode).replace(
            "on_eterm = \"ON_ETERM\"",
            &on_eterm.map_or(String::new(), |o| format!("on_eterm = \"{o}\"")),
        );
        let text = if mode == "async" {
            text
        } else {
            text.replace(
                "action = \"stop_runtime\"\n        node = \"sub\"",
                "action = \"sleep\"\n        for = \"1ms\"",
            )
        };
        scenario(&text)
    }

    #[test]
    fn a_loop_that_closes_on_eterm_proves_nothing_but_is_waited_for() {
        for mode in ["blocking", "poll"] {
            let s = subscriber(mode, Some("close"));
            assert_eq!(prove(&s, &RegistryState::at_setup(&s), 1), None, "{mode}");
        }
        let s = subscriber("async", Some("close"));
        assert_eq!(prove(&s, &RegistryState::at_setup(&s), 1), None);
    }

    #[test]
    fn a_loop_that_keeps_its_socket_on_eterm_is_a_proof_settled_when_the_loop_ends() {
        let s = subscriber("blocking", Some("keep"));
        let mut state = RegistryState::at_setup(&s);
        let proof = prove(&s, &state, 1).expect("proven");
        assert_eq!(
            proof.words(),
            "SUB socket of node `sub` is open; its thread `sub` returns on ETERM without closing it (on_eterm = \"keep\"), and no later step can close it while the main thread is inside term"
        );
        assert_eq!(proof.settle, [Settle::ThreadEnded(0)]);
        assert!(!proof.settled(&state));
        state.nodes[0].owner = OwnerState::ThreadEndedKeeping;
        assert!(!proof.settled(&state), "its end is not yet recorded");
        state.threads[0].alive = false;
        assert!(proof.settled(&state));
    }

    #[test]
    fn a_stopped_runtime_is_a_proof_naming_the_step_that_stopped_it() {
        let s = subscriber("async", Some("close"));
        let mut state = RegistryState::at_setup(&s);
        state.nodes[0].owner = OwnerState::RuntimeStopped {
            task_cancelled: false,
        };
        let proof = prove(&s, &state, 1).expect("proven");
        assert_eq!(
            proof.words(),
            "SUB socket of node `sub` is open; its runtime was stopped at step `stop_runtime sub`; no later step can close it while the main thread is inside term"
        );
        assert!(proof.settle.is_empty());
    }

    #[test]
    fn a_socket_of_the_main_thread_left_open_is_a_proof_but_not_in_another_context() {
        let s = scenario(
            r#"
            expect = "hang"
            [[contexts]]
            name = "aux"
            [[nodes]]
            name = "idle"
            kind = "subscriber"
            mode = "idle"
            context = "aux"
            bind = "auto"
            [[steps]]
            action = "term"
            [[steps]]
            action = "term"
            context = "aux"
            "#,
        );
        let state = RegistryState::at_setup(&s);
        assert_eq!(prove(&s, &state, 0), None, "term of `main`");
        let proof = prove(&s, &state, 1).expect("term of `aux`");
        assert!(proof.words().contains("it belongs to the main thread"));
    }

    #[test]
    fn closed_sockets_prove_nothing_whatever_their_linger() {
        let s = subscriber("idle", None);
        let mut state = RegistryState::at_setup(&s);
        state.sockets[0].open = false;
        assert_eq!(prove(&s, &state, 1), None);
    }

    #[test]
    fn a_close_a_blocking_loop_cannot_hear_is_proven_until_its_context_is_shut_down() {
        let s = scenario(
            r#"
            expect = "hang"
            [[nodes]]
            name = "sub"
            kind = "subscriber"
            bind = "auto"
            [[nodes]]
            name = "poller"
            kind = "subscriber"
            mode = "poll"
            bind = "auto"
            [[steps]]
            action = "close"
            node = "sub"
            [[steps]]
            action = "close"
            node = "poller"
            "#,
        );
        let mut state = RegistryState::at_setup(&s);
        let proof = prove(&s, &state, 0).expect("proven");
        assert!(
            proof
                .words()
                .starts_with("the thread `sub` of node `sub` is in a blocking recv")
        );
        assert_eq!(prove(&s, &state, 1), None, "a poll loop hears requests");
        state.contexts[0].ended_in = Some(Phase::Step(0));
        assert_eq!(prove(&s, &state, 0), None, "ETERM ends the loop");
    }

    #[test]
    fn a_node_opened_by_a_step_proves_nothing_until_its_sockets_are_made() {
        let text = r#"
            expect = "hang"
            [[nodes]]
            name = "late"
            kind = "subscriber"
            bind = "auto"
            open = "step"
            [[steps]]
            action = "open"
            node = "late"
            [[steps]]
            action = "close"
            node = "late"
            [[steps]]
            action = "join"
            node = "late"
        "#;
        let s = scenario(text);
        let mut state = RegistryState::at_setup(&s);
        assert!(state.sockets.is_empty() && state.threads.is_empty());
        // Before the `open` step runs, or after one that was refused: nothing to wait for.
        for step in 0..3 {
            assert_eq!(prove(&s, &state, step), None, "step {step}");
        }
        // What the `open` step makes: the socket, and the thread in its blocking recv.
        let made_at_setup = text
            .replace("open = \"step\"", "")
            .replace("action = \"open\"", "action = \"close\"");
        let opened = RegistryState::at_setup(&scenario(&made_at_setup));
        state.sockets = opened.sockets;
        state.threads = opened.threads;
        assert_eq!(prove(&s, &state, 0), None);
        assert!(
            prove(&s, &state, 1).is_some(),
            "a blocking recv cannot hear it"
        );
        assert!(prove(&s, &state, 2).is_some(), "only ETERM ends the thread");
    }

    #[test]
    fn a_term_before_an_open_step_waits_for_nothing_of_that_node() {
        let s = scenario(
            r#"
            expect = "hang"
            [[nodes]]
            name = "idle"
            kind = "subscriber"
            mode = "idle"
            bind = "auto"
            [[nodes]]
            name = "late"
            kind = "subscriber"
            mode = "async"
            bind = "auto"
            open = "step"
            [[steps]]
            action = "term"
            [[steps]]
            action = "open"
            node = "late"
            "#,
        );
        let proof = prove(&s, &RegistryState::at_setup(&s), 0).expect("the idle socket");
        assert!(
            proof
                .words()
                .starts_with("SUB socket of node `idle` is open")
        );
        assert!(
            proof.settle.is_empty(),
            "no receive task of `late` to wait for"
        );
    }

    #[test]
    fn an_exit_is_proven_like_a_close_and_a_stream_thread_ends_only_on_a_request_or_eterm() {
        let s = scenario(
            r#"
            expect = "hang"
            [[nodes]]
            name = "sub"
            kind = "subscriber"
            bind = "auto"
            [[nodes]]
            name = "poller"
            kind = "subscriber"
            mode = "poll"
            bind = "auto"
            [[nodes]]
            name = "streamer"
            kind = "socket"
            type = "PUSH"
            mode = "stream"
            bind = "auto"
            [[steps]]
            action = "exit"
            node = "sub"
            [[steps]]
            action = "exit"
            node = "poller"
            [[steps]]
            action = "exit"
            node = "streamer"
            [[steps]]
            action = "join"
            node = "streamer"
            "#,
        );
        let state = RegistryState::at_setup(&s);
        let proof = prove(&s, &state, 0).expect("a blocking recv cannot hear the exit");
        assert!(proof.words().contains("is in a blocking recv"));
        assert_eq!(prove(&s, &state, 1), None, "a poll loop hears it");
        assert_eq!(
            prove(&s, &state, 2),
            None,
            "a stream loop hears it between sends"
        );
        let proof = prove(&s, &state, 3).expect("nothing left can end the stream loop");
        assert!(proof.words().contains("or a `close` or `exit` request"));
    }

    #[test]
    fn a_join_of_a_proxy_is_proven_unless_terminate_or_eterm_can_end_it() {
        let s = scenario(
            r#"
            expect = "hang"
            [[nodes]]
            name = "bus"
            kind = "proxy"
            engine = "steerable"
            [[steps]]
            action = "join"
            node = "bus"
            "#,
        );
        let mut state = RegistryState::at_setup(&s);
        assert!(prove(&s, &state, 0).is_some());
        state.nodes[0].terminate_sent_in = Some(Phase::Step(0));
        assert_eq!(prove(&s, &state, 0), None);
    }

    #[test]
    fn monitor_readers_are_waited_for_and_never_part_of_a_proof() {
        let s = subscriber("idle", None);
        let mut state = RegistryState::at_setup(&s);
        state.threads.push(ThreadEntry {
            tid: 7,
            purpose: String::new(),
            of: ThreadOf::Monitor(0),
            alive: true,
        });
        state.sockets[0].open = false;
        let mut reader = state.sockets[0].clone();
        reader.role = SocketRole::MonitorReader;
        reader.open = true;
        state.sockets.push(reader);
        assert_eq!(prove(&s, &state, 1), None);
        state.sockets[0].open = true;
        let proof = prove(&s, &state, 1).expect("proven by the idle socket");
        assert_eq!(proof.settle, [Settle::MonitorEnded(0)]);
        assert!(!proof.settled(&state));
        state.threads[0].alive = false;
        assert!(proof.settled(&state));
    }

    #[test]
    fn no_step_is_proven_while_a_program_may_still_run() {
        let text = r#"
            expect = "hang"
            [[nodes]]
            name = "pub"
            kind = "publisher"
            bind = "auto"
            [[nodes]]
            name = "app"
            kind = "program"
            command = ["sh", "-c", "read line"]
            [[steps]]
            FIRST
            [[steps]]
            action = "term"
        "#;
        let running = scenario(&text.replace("FIRST", "action = \"sleep\"\nfor = \"1ms\""));
        let state = RegistryState::at_setup(&running);
        assert_eq!(prove(&running, &state, 1), None);
        let stopped = scenario(&text.replace(
            "FIRST",
            "action = \"stop\"\nnode = \"app\"\nhow = \"stdin-close\"",
        ));
        assert_eq!(prove(&stopped, &state, 0), None, "a stop is never proven");
        let proof = prove(&stopped, &state, 1).expect("proven once the program has exited");
        assert_eq!(
            proof.words(),
            "PUB socket of node `pub` is open; it belongs to the main thread, which is inside this term, so no `close pub` step can run"
        );
    }
}
