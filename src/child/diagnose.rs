//! Turning the registry and /proc into words a person can act on: which sockets are still open
//! and why nobody will close them, what every thread is blocked in, and a one-paragraph summary
//! that starts with the step that hung.

use std::time::Duration;

use super::registry::{
    ActiveStep, EndpointKind, NodeCounters, OwnerState, RegistryState, SocketEntry, ThreadOf,
    TrafficStage,
};
use crate::outcome::{Diagnostics, NodeReport, SocketReport, ThreadReport};
use crate::procfs::{self, ProcThread, Syscall};
use crate::scenario::{Action, Engine, Mode, NodeBody, OnEterm, Scenario, StopHow, TRAFFIC_LABEL};
use crate::trace::SocketRole;

fn linger_words(linger_ms: Option<i32>) -> String {
    match linger_ms {
        Some(-1) => "linger -1 (forever)".to_owned(),
        Some(ms) => format!("linger {ms}"),
        None => "linger unknown".to_owned(),
    }
}

/// Whether every endpoint this socket connects to is bound by no socket in the scenario.
fn peers_never_bound<'a>(state: &'a RegistryState, socket: &'a SocketEntry) -> Option<String> {
    let addresses = |s: &'a SocketEntry, how: EndpointKind| {
        s.endpoints
            .iter()
            .filter(move |e| e.how == how)
            .map(|e| e.address.as_str())
    };
    let bound: Vec<&str> = state
        .sockets
        .iter()
        .flat_map(|s| addresses(s, EndpointKind::Bind))
        .collect();
    let connects: Vec<&str> = addresses(socket, EndpointKind::Connect).collect();
    (!connects.is_empty()
        && connects.len() == socket.endpoints.len()
        && connects.iter().all(|c| !bound.contains(c)))
    .then(|| connects.join(", "))
}

/// Why a socket is still open, from its owner's state.
fn why_open(scenario: &Scenario, state: &RegistryState, socket: &SocketEntry) -> String {
    let node = &state.nodes[socket.node];
    if socket.role == SocketRole::MonitorReader {
        return format!(
            "the reader of a socket monitor on node `{}`: it closes itself when the monitor stops (its socket closed) or on ETERM, so it cannot keep term waiting",
            node.name
        );
    }
    let spec = &scenario.nodes[socket.node];
    let thread = &node.owner_thread;
    let mut why = match node.owner {
        OwnerState::Main => format!("it belongs to the main thread, and no `close {}` step ran before this point", node.name),
        OwnerState::ThreadRunning if node.is_proxy => format!("its proxy thread `{thread}` is still inside the proxy call, and closes its sockets only after that returns"),
        OwnerState::ThreadRunning => format!("its thread `{thread}` is still in its receive loop; it closes the socket only when the loop ends"),
        OwnerState::ThreadEndedKeeping => format!("its thread `{thread}` got ETERM and returned without closing it (on_eterm = \"keep\"), so nothing can close it"),
        OwnerState::ThreadEnded => format!("its thread `{thread}` ended without closing it"),
        OwnerState::RuntimeRunning { task_cancelled: true } => "its receive task was cancelled, which does not close the socket; only a `close` step can".to_owned(),
        OwnerState::RuntimeRunning { task_cancelled: false } if spec.on_eterm == OnEterm::Keep => "its runtime is running, but its task keeps the socket after ETERM (on_eterm = \"keep\")".to_owned(),
        OwnerState::RuntimeRunning { task_cancelled: false } => "its runtime is running; its receive task has not closed it".to_owned(),
        OwnerState::RuntimeStopped { task_cancelled: true } => "its receive task was cancelled and its runtime was stopped, so nothing can close it (cancelling a task does not close its socket)".to_owned(),
        OwnerState::RuntimeStopped { task_cancelled: false } => "its runtime was stopped, so nothing can close it".to_owned(),
    };
    let sent = NodeCounters::get(&node.counters.sent);
    if socket.linger_ms != Some(0)
        && sent > 0
        && let Some(peers) = peers_never_bound(state, socket)
    {
        why.push_str(&format!("; and once closed, its {} would still hold the {sent} message(s) sent to {peers}, which nothing in the scenario binds", linger_words(socket.linger_ms)));
    }
    why
}

/// Sockets still open, and closed ones that may be lingering on undeliverable messages.
pub fn open_sockets(scenario: &Scenario, state: &RegistryState) -> Vec<SocketReport> {
    state
        .sockets
        .iter()
        .filter_map(|s| {
            let node = &state.nodes[s.node];
            let sent = NodeCounters::get(&node.counters.sent) + NodeCounters::get(&node.counters.probes_sent);
            let lingering = !s.open && s.role != SocketRole::MonitorReader && s.linger_ms != Some(0) && sent > 0 && peers_never_bound(state, s).is_some();
            if !s.open && !lingering {
                return None;
            }
            let why = if s.open {
                why_open(scenario, state, s)
            } else {
                format!(
                    "closed by `{}` with {}, after sending {sent} message(s) to {} where nothing in the scenario is bound: term waits for them{}",
                    s.closed_by.as_deref().unwrap_or("?"),
                    linger_words(s.linger_ms),
                    peers_never_bound(state, s).unwrap_or_default(),
                    if s.linger_ms == Some(-1) { " forever" } else { " until the linger runs out" },
                )
            };
            Some(SocketReport {
                node: node.name.clone(),
                role: s.role.to_string(),
                socket_type: s.socket_type.to_string(),
                endpoints: s.endpoints.iter().map(ToString::to_string).collect(),
                linger_ms: s.linger_ms,
                context: state.contexts.get(s.context).map(|c| c.name.clone()).unwrap_or_default(),
                owner: node.owner_thread.clone(),
                state: if s.open { "open" } else { "closed, lingering" }.to_owned(),
                messages_sent: sent,
                messages_received: NodeCounters::get(&node.counters.received),
                why,
            })
        })
        .collect()
}

/// Traffic counters and owner states.
pub fn node_reports(state: &RegistryState) -> Vec<NodeReport> {
    state
        .nodes
        .iter()
        .map(|n| NodeReport {
            name: n.name.clone(),
            sent: NodeCounters::get(&n.counters.sent),
            to_send: n.to_send,
            received: NodeCounters::get(&n.counters.received),
            expected: n.expected,
            owner_state: n.owner.describe().to_owned(),
        })
        .collect()
}

/// What a thread is for and what it is blocked in.
fn thread_report(
    scenario: &Scenario,
    state: &RegistryState,
    active: Option<&ActiveStep>,
    t: &ProcThread,
    pid: i32,
) -> ThreadReport {
    let known = state.threads.iter().rev().find(|k| k.tid == t.tid);
    let waits_forever = t.syscall.waits_forever();
    let (role, blocked_in) = if t.tid == pid {
        let step = active.map_or("between steps".to_owned(), |a| {
            format!("running `{}`", a.label)
        });
        let action = active
            .and_then(|a| a.step)
            .map(|i| &scenario.steps[i].action);
        let blocked = match action {
            Some(Action::Term { .. }) if waits_forever => "zmq_ctx_term: waiting, with no timeout, for every socket of the context to be closed".to_owned(),
            Some(Action::Close { .. } | Action::SetLinger { .. } | Action::Exit { .. }) => "waiting for the node's owner to answer the request".to_owned(),
            Some(Action::Join { .. } | Action::StopRuntime { .. }) => "waiting for the node's thread to end".to_owned(),
            _ => t.syscall.describe(),
        };
        (format!("main thread ({step})"), blocked)
    } else if let Some(k) = known {
        let own_node = match k.of {
            ThreadOf::Node(n) => Some(&scenario.nodes[n]),
            ThreadOf::Harness | ThreadOf::Monitor(_) => None,
        };
        let node_mode = own_node.and_then(|n| n.endpoint().map(|e| e.mode));
        let is_proxy = own_node.is_some_and(|n| matches!(n.body, NodeBody::Proxy { .. }));
        let blocked = match (&t.syscall, node_mode) {
            (Syscall::Blocked(_), Some(Mode::Blocking)) if waits_forever => "zmq_recv, blocking with no timeout: only a message or ETERM wakes it".to_owned(),
            (Syscall::Blocked(_), Some(Mode::Stream)) if waits_forever => "zmq_send, blocking with no timeout: its pipes are full or it has none; only room in a pipe or ETERM wakes it".to_owned(),
            (Syscall::Blocked(_), Some(Mode::Async)) => format!("the tokio runtime, waiting for events ({})", t.syscall.describe()),
            (Syscall::Blocked(_), _) if is_proxy && waits_forever => "the proxy call, waiting for messages with no timeout: only ETERM (or TERMINATE) ends it".to_owned(),
            _ => t.syscall.describe(),
        };
        (k.purpose.clone(), blocked)
    } else {
        (
            "libzmq background thread (reaper or I/O; unnamed in this libzmq build, it takes the name of the thread that created the first socket)".to_owned(),
            t.syscall.describe(),
        )
    };
    ThreadReport {
        tid: t.tid,
        name: t.comm.clone(),
        role,
        state: t.state.clone(),
        wchan: t.wchan.clone(),
        syscall: t.syscall.describe(),
        blocked_in,
    }
}

/// Every thread of this process.
fn thread_reports(
    scenario: &Scenario,
    state: &RegistryState,
    active: Option<&ActiveStep>,
    threads: &[ProcThread],
) -> Vec<ThreadReport> {
    let pid = std::process::id() as i32;
    threads
        .iter()
        .map(|t| thread_report(scenario, state, active, t, pid))
        .collect()
}

fn socket_line(s: &SocketReport) -> String {
    let endpoints = if s.endpoints.is_empty() {
        String::new()
    } else {
        format!(" ({})", s.endpoints.join(", "))
    };
    let role = if s.role == "socket" {
        String::new()
    } else {
        format!(" {}", s.role)
    };
    format!(
        "{}{role} socket of node `{}`{endpoints} {}, {}; {}.",
        s.socket_type,
        s.node,
        s.state,
        linger_words(s.linger_ms),
        s.why
    )
}

/// The summary of a hang at `active`.
fn hang_summary(
    scenario: &Scenario,
    state: &RegistryState,
    active: &ActiveStep,
    elapsed: Duration,
    sockets: &[SocketReport],
    threads: &[ProcThread],
) -> String {
    let waited = humantime::format_duration(active.timeout).to_string();
    let head = match &active.proof {
        Some(proof) if elapsed < active.timeout => format!(
            "hang at step `{}` (proven after {:.1} ms: {})",
            active.label,
            elapsed.as_secs_f64() * 1000.0,
            proof.words()
        ),
        Some(proof) => format!(
            "hang at step `{}` (deadline {waited}; proven at its start: {})",
            active.label,
            proof.words()
        ),
        None => format!("hang at step `{}` (deadline {waited})", active.label),
    };
    let action = active.step.map(|i| &scenario.steps[i].action);
    let node_name = |n: usize| scenario.nodes[n].name.as_str();
    let body = match action {
        Some(Action::Term { context }) => {
            let ctx = &scenario.contexts[*context].name;
            let in_ctx: Vec<String> = sockets
                .iter()
                .filter(|s| &s.context == ctx)
                .map(socket_line)
                .collect();
            if in_ctx.is_empty() {
                format!(
                    "zmq_ctx_term on context `{ctx}` is still waiting, yet every socket the scenario created in it is closed without pending messages."
                )
            } else {
                format!(
                    "zmq_ctx_term on context `{ctx}` waits until every socket is closed. {}",
                    in_ctx.join(" ")
                )
            }
        }
        Some(Action::Close { node } | Action::SetLinger { node, .. } | Action::Exit { node }) => {
            owner_cannot_hear(scenario, *node)
        }
        Some(Action::Join { node }) => format!(
            "the thread of node `{}` has not ended. {}",
            node_name(*node),
            owner_cannot_hear(scenario, *node)
        ),
        Some(Action::StopRuntime { node }) => format!(
            "the runtime thread of node `{}` did not stop: something on it is blocking.",
            node_name(*node)
        ),
        Some(Action::Steer { node, command }) => format!(
            "sending {command} to the control socket of `{}` did not complete.",
            node_name(*node)
        ),
        Some(Action::Cancel { node }) => format!(
            "the receive task of node `{}` did not end after abort.",
            node_name(*node)
        ),
        Some(Action::Stop { node, how }) => format!(
            "program `{}` did not exit after the stop ({}); what it was doing is below.",
            node_name(*node),
            match how {
                StopHow::Wait => "waiting for it to end by itself".to_owned(),
                StopHow::Signal(signal) => format!("{signal} sent to its process group"),
                StopHow::StdinClose => "its stdin closed".to_owned(),
            }
        ),
        None if active.label == TRAFFIC_LABEL => traffic_summary(scenario, state, threads, &waited),
        _ => "the phase did not finish.".to_owned(),
    };
    format!("{head}: {body}")
}

/// Why the owner of `node` cannot act on a request now.
fn owner_cannot_hear(scenario: &Scenario, node: usize) -> String {
    let spec = &scenario.nodes[node];
    match &spec.body {
        NodeBody::Proxy { engine, .. } => {
            let how = if *engine == Engine::Steerable {
                "`shutdown`/`term`, or `steer` TERMINATE"
            } else {
                "`shutdown` or `term`"
            };
            format!(
                "the proxy thread of `{}` is inside the proxy call ({engine}) and acts on its sockets only after that returns, which takes {how}.",
                spec.name
            )
        }
        NodeBody::Endpoint(e) if e.mode == Mode::Blocking => format!(
            "the thread of node `{}` is blocked in a blocking recv and cannot hear the request; only a message or ETERM (from `shutdown` or `term`) wakes it.",
            spec.name
        ),
        NodeBody::Endpoint(e) if e.mode == Mode::Stream => format!(
            "the thread of node `{}` hears requests only between sends, and is blocked in one (its pipes are full or it has none); only room in a pipe or ETERM (from `shutdown` or `term`) wakes it.",
            spec.name
        ),
        NodeBody::Endpoint(_) => format!("the owner of node `{}` did not answer.", spec.name),
        NodeBody::Program(_) => format!("program `{}` takes no step but `stop`.", spec.name),
    }
}

/// `` `a`, `b` `` for node indices.
fn node_names(state: &RegistryState, nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|&n| format!("`{}`", state.nodes[n].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a subscriber can never see a publisher's probe, when the registry shows it: its inproc
/// endpoint's peers are all in another context.
fn unreachable_hint(state: &RegistryState, node: usize) -> Option<String> {
    let socket = state
        .sockets
        .iter()
        .find(|x| x.node == node && x.role == SocketRole::Socket)?;
    let name = &state.nodes[node].name;
    socket
        .endpoints
        .iter()
        .filter(|e| e.address.starts_with("inproc://"))
        .find_map(|e| {
            let peers: Vec<&SocketEntry> = state
                .sockets
                .iter()
                .filter(|x| {
                    x.endpoints
                        .iter()
                        .any(|pe| pe.address == e.address && pe.how != e.how)
                })
                .collect();
            let peer = peers.first()?;
            peers.iter().all(|p| p.context != socket.context).then(|| {
                let (verb, context_name) = (
                    match e.how {
                        EndpointKind::Bind => "connected to",
                        EndpointKind::Connect => "bound",
                    },
                    |c: usize| state.contexts[c].name.as_str(),
                );
                format!(
                    "inproc endpoints are visible only inside one context, and `{name}` is in context `{}` while `{}` is {verb} in context `{}`",
                    context_name(socket.context),
                    e.address,
                    context_name(peer.context)
                )
            })
        })
}

/// The thread that sends a node's traffic: the main thread for nodes it owns, else the node's.
fn sender<'a>(
    state: &RegistryState,
    threads: &'a [ProcThread],
    node: usize,
) -> Option<&'a ProcThread> {
    let tid = if state.nodes[node].owner == OwnerState::Main {
        std::process::id() as i32
    } else {
        state
            .threads
            .iter()
            .rev()
            .find(|t| t.of == ThreadOf::Node(node) && t.alive)?
            .tid
    };
    threads.iter().find(|t| t.tid == tid)
}

/// The slow-joiner wait, from who has not yet received a probe.
fn probing_summary(
    state: &RegistryState,
    publishers: &[usize],
    subscribers: &[usize],
    deadline: &str,
) -> String {
    let waiting: Vec<usize> = subscribers
        .iter()
        .copied()
        .filter(|&s| NodeCounters::get(&state.nodes[s].counters.probes_received) == 0)
        .collect();
    if waiting.is_empty() {
        return "the slow-joiner wait did not finish, although every subscriber has received a probe.".to_owned();
    }
    let senders = match publishers {
        [_] => format!("the publisher {}", node_names(state, publishers)),
        _ => format!("the publishers {}", node_names(state, publishers)),
    };
    let who = match waiting.len() {
        1 => format!("subscriber {}", node_names(state, &waiting)),
        2..=3 => format!("subscribers {}", node_names(state, &waiting)),
        n => format!(
            "{n} of {} subscribers ({}, …)",
            subscribers.len(),
            node_names(state, &waiting[..3])
        ),
    };
    let mut text = format!("{senders} is still waiting for {who} to receive a probe (slow joiner)");
    let hints: Vec<String> = waiting
        .iter()
        .filter_map(|&s| unreachable_hint(state, s))
        .collect();
    if hints.is_empty() {
        text.push_str(&format!(
            "; a subscriber receives only once its connection is up and its subscription has reached the publisher, and for {} subscriber(s) that took longer than the deadline ({deadline})",
            subscribers.len()
        ));
    } else {
        text.push_str("; ");
        text.push_str(&hints.join("; "));
    }
    text.push('.');
    text
}

/// A node that has not sent everything: from what its sending thread is doing.
fn unsent(
    scenario: &Scenario,
    state: &RegistryState,
    threads: &[ProcThread],
    node: usize,
    deadline: &str,
) -> String {
    let n = &state.nodes[node];
    let sent = NodeCounters::get(&n.counters.sent);
    let head = format!("node `{}` sent {sent} of {} messages", n.name, n.to_send);
    let rate = scenario.nodes[node].endpoint().and_then(|e| e.rate);
    let syscall = sender(state, threads, node).map(|t| &t.syscall);
    match (syscall, rate) {
        (Some(s), Some(rate)) if s.is_sleep() => format!(
            "{head}: its thread is sleeping between sends, paced by rate = {rate} per second, so all {} take about {} s, longer than the deadline ({deadline})",
            n.to_send,
            n.to_send.div_ceil(rate.max(1))
        ),
        (Some(s), _) if s.waits_forever() => format!(
            "{head}: its thread is in a blocking send that cannot complete (high-water mark full, or no peer with immediate = true)"
        ),
        _ => format!("{head} and is still sending"),
    }
}

fn traffic_summary(
    scenario: &Scenario,
    state: &RegistryState,
    threads: &[ProcThread],
    deadline: &str,
) -> String {
    match &state.traffic {
        TrafficStage::NotStarted => return "the traffic phase did not start.".to_owned(),
        TrafficStage::Probing {
            publishers,
            subscribers,
        } => return probing_summary(state, publishers, subscribers, deadline),
        TrafficStage::Sending | TrafficStage::Delivering => {}
    }
    let mut problems = Vec::new();
    for (i, n) in state.nodes.iter().enumerate() {
        if NodeCounters::get(&n.counters.sent) < n.to_send {
            problems.push(unsent(scenario, state, threads, i, deadline));
        }
        let received = NodeCounters::get(&n.counters.received);
        if let Some(expected) = n.expected
            && received < expected
        {
            let probes = NodeCounters::get(&n.counters.probes_received);
            let hint = if probes == 0 && received == 0 {
                " and no slow-joiner probe either: is it connected to the right place and subscribed to the topic?"
            } else {
                ""
            };
            problems.push(format!(
                "node `{}` received {received} of {expected} expected messages{hint}",
                n.name
            ));
        }
    }
    if problems.is_empty() {
        "the traffic phase did not finish.".to_owned()
    } else {
        format!("{}.", problems.join("; "))
    }
}

/// Everything known at a hang.
pub fn hang_diagnostics(
    scenario: &Scenario,
    state: &RegistryState,
    active: &ActiveStep,
    elapsed: Duration,
) -> Diagnostics {
    let open_sockets = open_sockets(scenario, state);
    let threads = procfs::threads();
    Diagnostics {
        summary: hang_summary(scenario, state, active, elapsed, &open_sockets, &threads),
        threads: thread_reports(scenario, state, Some(active), &threads),
        nodes: node_reports(state),
        open_sockets,
        ..Diagnostics::default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::child::registry::{SocketEndpoint, ThreadEntry};
    use crate::procfs::{Call, Wait};
    use crate::scenario::SocketType;

    const DEADLINE: Duration = Duration::from_millis(300);

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse(Path::new("t.toml"), text, "t").expect("valid scenario")
    }

    /// The registry as setup leaves it, without sockets (each test adds its own).
    fn state_of(scenario: &Scenario) -> RegistryState {
        let mut state = RegistryState::at_setup(scenario);
        state.sockets.clear();
        state
    }

    fn socket(
        node: usize,
        socket_type: SocketType,
        endpoints: &[(EndpointKind, &str)],
    ) -> SocketEntry {
        SocketEntry {
            node,
            role: SocketRole::Socket,
            socket_type,
            endpoints: endpoints
                .iter()
                .map(|(how, address)| SocketEndpoint {
                    how: *how,
                    address: (*address).to_owned(),
                })
                .collect(),
            linger_ms: Some(-1),
            context: 0,
            open: true,
            closed_by: None,
        }
    }

    fn closed_by_main(socket: SocketEntry) -> SocketEntry {
        SocketEntry {
            open: false,
            closed_by: Some("main".to_owned()),
            ..socket
        }
    }

    fn active(scenario: &Scenario, step: Option<usize>) -> ActiveStep {
        ActiveStep {
            label: step.map_or(TRAFFIC_LABEL.to_owned(), |i| {
                scenario.steps[i].label.clone()
            }),
            step,
            started: Instant::now(),
            timeout: DEADLINE,
            proof: None,
        }
    }

    #[test]
    fn a_term_hang_names_each_open_socket_and_why_nothing_closes_it() {
        let s = scenario(
            r#"
            expect = "hang"
            [[nodes]]
            name = "pub"
            kind = "publisher"
            bind = "auto"
            [[nodes]]
            name = "sub"
            kind = "subscriber"
            mode = "async"
            connect = "pub"
            [[steps]]
            action = "close"
            node = "pub"
            [[steps]]
            action = "stop_runtime"
            node = "sub"
            [[steps]]
            action = "term"
            "#,
        );
        let mut state = state_of(&s);
        state.nodes[1].owner = OwnerState::RuntimeStopped {
            task_cancelled: false,
        };
        state.sockets.push(closed_by_main(socket(
            0,
            SocketType::Pub,
            &[(EndpointKind::Bind, "tcp://127.0.0.1:5555")],
        )));
        state.sockets.push(socket(
            1,
            SocketType::Sub,
            &[(EndpointKind::Connect, "tcp://127.0.0.1:5555")],
        ));
        let sockets = open_sockets(&s, &state);
        insta::assert_snapshot!(hang_summary(
            &s,
            &state,
            &active(&s, Some(2)),
            DEADLINE,
            &sockets,
            &[]
        ));
    }

    #[test]
    fn a_closed_push_lingering_on_an_endpoint_nobody_binds_keeps_term_waiting() {
        let s = scenario(
            r#"
            expect = "hang"
            [[nodes]]
            name = "push"
            kind = "socket"
            type = "PUSH"
            connect = "tcp://127.0.0.1:1"
            send = 3
            [[steps]]
            action = "close"
            node = "push"
            [[steps]]
            action = "term"
            "#,
        );
        let mut state = state_of(&s);
        state.nodes[0].counters.sent.store(3, Ordering::Release);
        state.sockets.push(closed_by_main(socket(
            0,
            SocketType::Push,
            &[(EndpointKind::Connect, "tcp://127.0.0.1:1")],
        )));
        let sockets = open_sockets(&s, &state);
        insta::assert_snapshot!(hang_summary(
            &s,
            &state,
            &active(&s, Some(1)),
            DEADLINE,
            &sockets,
            &[]
        ));
    }

    #[test]
    fn a_slow_joiner_wait_with_many_subscribers_counts_the_ones_without_a_probe() {
        let mut text = String::from(
            r#"
            expect = "hang"
            expect_hang_at = "traffic"
            [[nodes]]
            name = "pub"
            kind = "publisher"
            bind = "auto"
            "#,
        );
        for i in 0..6 {
            text.push_str(&format!(
                "[[nodes]]\nname = \"s{i}\"\nkind = \"subscriber\"\nmode = \"poll\"\nconnect = \"pub\"\n"
            ));
        }
        text.push_str("[[steps]]\naction = \"term\"\n");
        let s = scenario(&text);
        let mut state = state_of(&s);
        state.nodes[1]
            .counters
            .probes_received
            .store(1, Ordering::Release);
        state.nodes[2]
            .counters
            .probes_received
            .store(4, Ordering::Release);
        state.traffic = TrafficStage::Probing {
            publishers: vec![0],
            subscribers: (1..=6).collect(),
        };
        let summary = hang_summary(&s, &state, &active(&s, None), DEADLINE, &[], &[]);
        assert!(!summary.contains("blocking send"));
        insta::assert_snapshot!(summary);
    }

    #[test]
    fn a_paced_sender_asleep_is_not_a_blocked_one() {
        let s = scenario(
            r#"
            expect = "hang"
            expect_hang_at = "traffic"
            [[nodes]]
            name = "pub"
            kind = "publisher"
            bind = "auto"
            messages = 10
            rate = 2
            [[nodes]]
            name = "push"
            kind = "socket"
            type = "DEALER"
            mode = "blocking"
            connect = "tcp://127.0.0.1:1"
            send = 1
            [[steps]]
            action = "term"
            "#,
        );
        let mut state = state_of(&s);
        state.traffic = TrafficStage::Delivering;
        state.nodes[0].counters.sent.store(2, Ordering::Release);
        state.nodes[1].owner = OwnerState::ThreadRunning;
        state.threads.push(ThreadEntry {
            tid: 4242,
            purpose: "node `push` (blocking receive loop)".to_owned(),
            of: ThreadOf::Node(1),
            alive: true,
        });
        let thread = |tid: i32, call: Call| ProcThread {
            tid,
            comm: String::new(),
            state: "S (sleeping)".to_owned(),
            wchan: String::new(),
            syscall: Syscall::Blocked(call),
        };
        let threads = [
            thread(std::process::id() as i32, Call::Sleep),
            thread(
                4242,
                Call::Poll {
                    fds: 1,
                    wait: Wait::Forever,
                },
            ),
        ];
        insta::assert_snapshot!(hang_summary(
            &s,
            &state,
            &active(&s, None),
            DEADLINE,
            &[],
            &threads
        ));
    }
}
