//! Turning the registry and /proc into words a person can act on: which sockets are still open
//! and why nobody will close them, what every thread is blocked in, and a one-paragraph summary
//! that starts with the step that hung.

use super::procfs::{self, ProcThread, Syscall};
use super::registry::{ActiveStep, NodeCounters, OwnerState, RegistryState, SocketEntry};
use crate::outcome::{Diagnostics, NodeReport, SocketReport, ThreadReport};
use crate::scenario::{Action, Engine, Mode, NodeBody, OnEterm, Scenario, TRAFFIC_LABEL};
use crate::trace::normalize::MONITOR_READER_ROLE;

fn linger_words(linger_ms: Option<i32>) -> String {
    match linger_ms {
        Some(-1) => "linger -1 (forever)".to_owned(),
        Some(ms) => format!("linger {ms}"),
        None => "linger unknown".to_owned(),
    }
}

/// Whether every endpoint this socket connects to is bound by no socket in the scenario.
fn peers_never_bound(state: &RegistryState, socket: &SocketEntry) -> Option<String> {
    let bound: Vec<&str> = state
        .sockets
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter_map(|e| e.strip_prefix("bind "))
        .collect();
    let connects: Vec<&str> = socket
        .endpoints
        .iter()
        .filter_map(|e| e.strip_prefix("connect "))
        .collect();
    (!connects.is_empty()
        && socket.endpoints.iter().all(|e| e.starts_with("connect "))
        && connects.iter().all(|c| !bound.contains(c)))
    .then(|| connects.join(", "))
}

/// Why a socket is still open, from its owner's state.
fn why_open(scenario: &Scenario, state: &RegistryState, socket: &SocketEntry) -> String {
    let node = &state.nodes[socket.node];
    if socket.role == MONITOR_READER_ROLE {
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
            let lingering = !s.open && s.role != MONITOR_READER_ROLE && s.linger_ms != Some(0) && sent > 0 && peers_never_bound(state, s).is_some();
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
                role: s.role.to_owned(),
                socket_type: s.socket_type.to_string(),
                endpoints: s.endpoints.clone(),
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
        let node_mode = k
            .node
            .and_then(|n| scenario.nodes[n].endpoint().map(|e| e.mode));
        let is_proxy = k
            .node
            .is_some_and(|n| matches!(scenario.nodes[n].body, NodeBody::Proxy { .. }));
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
pub fn thread_reports(
    scenario: &Scenario,
    state: &RegistryState,
    active: Option<&ActiveStep>,
) -> Vec<ThreadReport> {
    let pid = std::process::id() as i32;
    procfs::threads()
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
    sockets: &[SocketReport],
) -> String {
    let waited = humantime::format_duration(active.timeout);
    let head = format!("hang at step `{}` (deadline {waited})", active.label);
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
        None if active.label == TRAFFIC_LABEL => traffic_summary(state),
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
    }
}

fn traffic_summary(state: &RegistryState) -> String {
    let mut problems = Vec::new();
    for n in &state.nodes {
        let sent = NodeCounters::get(&n.counters.sent);
        if sent < n.to_send {
            problems.push(format!("node `{}` sent {sent} of {} messages (a blocking send that cannot complete: high-water mark full, or no peer with immediate = true)", n.name, n.to_send));
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
) -> Diagnostics {
    let open_sockets = open_sockets(scenario, state);
    Diagnostics {
        summary: hang_summary(scenario, state, active, &open_sockets),
        threads: thread_reports(scenario, state, Some(active)),
        nodes: node_reports(state),
        open_sockets,
        stderr: None,
    }
}
