//! The child's record of everything it created: every socket with its node, type, endpoints,
//! effective linger, context and owning thread; every thread with its tid; each node's owner
//! state and counters; and the phase or step now running. libzmq cannot list a context's
//! sockets, so this registry is the only source of "what is still open" at a hang.
//!
//! Owners update it on their own thread when something changes; the watchdog only reads it.
//! The lock is never held across a libzmq call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::lifecycle;
use crate::scenario::{Mode, NodeBody, NodeSpec, SocketType};
use crate::trace::layer::current_phase;
use crate::trace::{EventKind, Phase, SocketRole};

/// Index of a socket in the registry.
pub type SocketId = usize;

/// Message counters of one node, updated without the registry lock.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Data messages sent.
    pub sent: AtomicU64,
    /// Probe messages sent.
    pub probes_sent: AtomicU64,
    /// Data messages received.
    pub received: AtomicU64,
    /// Probe messages received.
    pub probes_received: AtomicU64,
}

impl NodeCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Acquire)
    }

    /// Adds one to a counter; returns the new count.
    pub fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// Who can close a node's sockets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The main thread owns them (publishers, idle sockets).
    Main,
    /// The node's thread is running its loop.
    ThreadRunning,
    /// The node's loop ended (ETERM or TERMINATE) and its thread returned keeping them.
    ThreadEndedKeeping,
    /// The node's thread ended after closing them.
    ThreadEnded,
    /// The async node's runtime is running.
    RuntimeRunning {
        /// Whether its receive task was cancelled.
        task_cancelled: bool,
    },
    /// The async node's runtime was stopped.
    RuntimeStopped {
        /// Whether its receive task was cancelled before.
        task_cancelled: bool,
    },
}

impl OwnerState {
    /// In words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            OwnerState::Main => "owned by the main thread",
            OwnerState::ThreadRunning => "thread running",
            OwnerState::ThreadEndedKeeping => "thread ended, sockets kept open",
            OwnerState::ThreadEnded => "thread ended",
            OwnerState::RuntimeRunning {
                task_cancelled: false,
            } => "runtime running",
            OwnerState::RuntimeRunning {
                task_cancelled: true,
            } => "runtime running, receive task cancelled",
            OwnerState::RuntimeStopped {
                task_cancelled: false,
            } => "runtime stopped",
            OwnerState::RuntimeStopped {
                task_cancelled: true,
            } => "runtime stopped, receive task cancelled",
        }
    }
}

/// One node's entry.
#[derive(Debug)]
pub struct NodeEntry {
    /// Node name.
    pub name: String,
    /// Whether it is a proxy.
    pub is_proxy: bool,
    /// Who can close its sockets.
    pub owner: OwnerState,
    /// The name of the thread that owns its sockets.
    pub owner_thread: String,
    /// Counters.
    pub counters: Arc<NodeCounters>,
    /// Messages it is to send in the traffic phase.
    pub to_send: u64,
    /// `expect_messages`.
    pub expected: Option<u64>,
    /// Index of its context.
    pub context: usize,
    /// The step that sent a steerable proxy TERMINATE.
    pub terminate_sent_in: Option<Phase>,
    /// Whether an async node's receive task has handled ETERM (closed or kept its socket).
    pub eterm_handled: bool,
}

impl NodeEntry {
    /// A node's entry as setup makes it: owned as its mode says (publishers and idle sockets by
    /// the main thread, loops and proxies by their thread, async nodes by their runtime;
    /// programs, which have no socket here, by the main thread that starts and stops them).
    pub fn at_setup(node: &NodeSpec, counters: Arc<NodeCounters>) -> NodeEntry {
        let endpoint = node.endpoint();
        let mode = endpoint.map(|e| e.mode);
        let owner = match (&node.body, mode) {
            (NodeBody::Program(_), _) | (_, Some(Mode::Idle)) => OwnerState::Main,
            (_, None | Some(Mode::Blocking | Mode::Poll | Mode::Stream)) => {
                OwnerState::ThreadRunning
            }
            (_, Some(Mode::Async)) => OwnerState::RuntimeRunning {
                task_cancelled: false,
            },
        };
        NodeEntry {
            name: node.name.clone(),
            is_proxy: matches!(node.body, NodeBody::Proxy { .. }),
            owner,
            owner_thread: if owner == OwnerState::Main {
                "main".to_owned()
            } else {
                thread_name(&node.name)
            },
            counters,
            to_send: endpoint.map_or(0, |e| e.send),
            expected: endpoint.and_then(|e| e.expect_messages),
            context: node.context,
            terminate_sent_in: None,
            eterm_handled: false,
        }
    }
}

/// One socket's entry.
#[derive(Debug, Clone)]
pub struct SocketEntry {
    /// Index of its node.
    pub node: usize,
    /// Role in the node.
    pub role: SocketRole,
    /// Type.
    pub socket_type: SocketType,
    /// Where it is bound or connected, in order.
    pub endpoints: Vec<SocketEndpoint>,
    /// Effective ZMQ_LINGER, read back.
    pub linger_ms: Option<i32>,
    /// Index of its context.
    pub context: usize,
    /// Whether it is still open.
    pub open: bool,
    /// The thread that closed it.
    pub closed_by: Option<String>,
}

/// How a socket reached an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// `zmq_bind`.
    Bind,
    /// `zmq_connect`.
    Connect,
}

/// An endpoint a socket reached, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEndpoint {
    /// Bound or connected.
    pub how: EndpointKind,
    /// The endpoint (as read back after a bind).
    pub address: String,
}

impl std::fmt::Display for SocketEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.how {
            EndpointKind::Bind => "bind",
            EndpointKind::Connect => "connect",
        };
        write!(f, "{verb} {}", self.address)
    }
}

/// What a harness thread is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadOf {
    /// The main thread or the watchdog.
    Harness,
    /// A node's own thread: its loop, its proxy call or its runtime.
    Node(usize),
    /// The reader of a node's socket monitors.
    Monitor(usize),
}

impl ThreadOf {
    /// The node it belongs to, if any.
    pub fn node(self) -> Option<usize> {
        match self {
            ThreadOf::Harness => None,
            ThreadOf::Node(n) | ThreadOf::Monitor(n) => Some(n),
        }
    }
}

/// One thread the harness started.
#[derive(Debug, Clone)]
pub struct ThreadEntry {
    /// Kernel tid.
    pub tid: i32,
    /// What it does, in words.
    pub purpose: String,
    /// What it is for.
    pub of: ThreadOf,
    /// Whether it is still running.
    pub alive: bool,
}

/// What must have happened before a proven hang is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// The node's thread has ended (its loop gets ETERM from this step).
    ThreadEnded(usize),
    /// The async node's receive task has handled ETERM.
    EtermHandled(usize),
    /// The node's monitor reader thread has ended (its readers get ETERM from this step).
    MonitorEnded(usize),
}

/// Why a step can never finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// One clause per reason, each enough on its own.
    pub reasons: Vec<String>,
    /// What the step still causes, which the verdict waits for.
    pub settle: Vec<Settle>,
}

impl Proof {
    /// The proof in plain words.
    pub fn words(&self) -> String {
        self.reasons.join("; ")
    }

    /// Whether everything the step causes has happened.
    pub fn settled(&self, state: &RegistryState) -> bool {
        self.settle.iter().all(|s| match *s {
            Settle::ThreadEnded(node) => state.thread_has_ended(ThreadOf::Node(node)),
            Settle::EtermHandled(node) => state.nodes[node].eterm_handled,
            Settle::MonitorEnded(node) => state.thread_has_ended(ThreadOf::Monitor(node)),
        })
    }
}

/// The phase or step now running.
#[derive(Debug, Clone)]
pub struct ActiveStep {
    /// Its label.
    pub label: String,
    /// Step index, `None` for phases.
    pub step: Option<usize>,
    /// When it started.
    pub started: Instant,
    /// Its deadline.
    pub timeout: Duration,
    /// Why it can never finish, when that is proven.
    pub proof: Option<Proof>,
}

/// A context's entry.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// Its name.
    pub name: String,
    /// Whether `zmq_ctx_term` returned.
    pub terminated: bool,
    /// The step that called `zmq_ctx_shutdown` or `zmq_ctx_term` first: what the ETERM its
    /// sockets' threads see is traced to.
    pub ended_in: Option<Phase>,
}

/// Where the traffic phase is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrafficStage {
    /// Not started yet.
    #[default]
    NotStarted,
    /// The slow-joiner wait: `publishers` send probes until each of `subscribers` has received
    /// one.
    Probing {
        /// Publishers that probe.
        publishers: Vec<usize>,
        /// Subscribers waited for.
        subscribers: Vec<usize>,
    },
    /// Nodes send their messages (the main thread for the nodes it owns, in file order).
    Sending,
    /// Every send is done or under way; waiting for `expect_messages`.
    Delivering,
}

/// Everything the registry holds.
#[derive(Debug, Default)]
pub struct RegistryState {
    /// Nodes by index.
    pub nodes: Vec<NodeEntry>,
    /// Sockets by [`SocketId`].
    pub sockets: Vec<SocketEntry>,
    /// Threads the harness started (the main thread first).
    pub threads: Vec<ThreadEntry>,
    /// Contexts by index.
    pub contexts: Vec<ContextEntry>,
    /// The phase or step running now.
    pub active: Option<ActiveStep>,
    /// Where the traffic phase is.
    pub traffic: TrafficStage,
    /// Whether the watchdog has declared the running phase or step hung: from then on it can
    /// no longer end (see [`Registry::end`]).
    hang_declared: bool,
}

/// How a phase or step ended, decided under the lock the watchdog decides its hang under, so
/// that exactly one of the two reports a verdict.
#[derive(Debug)]
pub enum StepEnd {
    /// It returned before the watchdog judged it overdue; with its proof, if it had one.
    Returned(Option<Proof>),
    /// The watchdog had already declared it hung: its report is on the way and the process
    /// ends with it, so the step's thread must report nothing more.
    Hung,
}

impl RegistryState {
    /// The watchdog's decision: when `is_due` judges the running phase or step overdue, marks
    /// it hung, so that it can no longer end, and returns it.
    pub fn declare_hang_if(
        &mut self,
        is_due: impl FnOnce(&ActiveStep, &Self) -> bool,
    ) -> Option<ActiveStep> {
        let active = self.active.as_ref().filter(|a| is_due(a, self))?.clone();
        self.hang_declared = true;
        Some(active)
    }

    /// Whether a node's loop has ended, or will end at once: its owner says so, or `term`
    /// returned on its context (so every socket there, the loop's included, is closed). Either
    /// way its thread is returning or gone.
    pub fn loop_ended(&self, node: usize) -> bool {
        let entry = &self.nodes[node];
        self.contexts[entry.context].terminated
            || matches!(
                entry.owner,
                OwnerState::ThreadEnded | OwnerState::ThreadEndedKeeping
            )
    }

    /// Whether the thread started as `of` has ended (false while it has not started).
    pub fn thread_has_ended(&self, of: ThreadOf) -> bool {
        let mut threads = self.threads.iter().filter(|t| t.of == of).peekable();
        threads.peek().is_some() && threads.all(|t| !t.alive)
    }

    /// Whether every monitor reader of a node has closed, or `term` returned on its context
    /// (which means they have), so that its reader thread is returning or gone.
    pub fn monitor_readers_closed(&self, node: usize) -> bool {
        self.contexts[self.nodes[node].context].terminated
            || !self
                .sockets
                .iter()
                .any(|s| s.node == node && s.role == SocketRole::MonitorReader && s.open)
    }
}

#[cfg(test)]
impl RegistryState {
    /// For tests: the registry as setup leaves it for `scenario`, its contexts and nodes, each
    /// node's sockets open (an endpoint node's one socket, a proxy's XSUB and XPUB) and the
    /// thread of each node that has one running; a node opened by a step has neither.
    pub fn at_setup(scenario: &crate::scenario::Scenario) -> RegistryState {
        let mut state = RegistryState::default();
        for c in &scenario.contexts {
            state.contexts.push(ContextEntry {
                name: c.name.clone(),
                terminated: false,
                ended_in: None,
            });
        }
        for (i, node) in scenario.nodes.iter().enumerate() {
            let entry = NodeEntry::at_setup(node, Arc::default());
            if node.open != crate::scenario::OpenAt::Setup {
                // Opened by a step: neither sockets nor a thread yet.
                state.nodes.push(entry);
                continue;
            }
            if entry.owner != OwnerState::Main {
                state.threads.push(ThreadEntry {
                    tid: 1000 + i as i32,
                    purpose: String::new(),
                    of: ThreadOf::Node(i),
                    alive: true,
                });
            }
            state.nodes.push(entry);
            let sockets = match &node.body {
                NodeBody::Endpoint(e) => vec![(SocketRole::Socket, e.socket_type)],
                NodeBody::Program(_) => vec![],
                NodeBody::Proxy { .. } => vec![
                    (SocketRole::Frontend, SocketType::Xsub),
                    (SocketRole::Backend, SocketType::Xpub),
                ],
            };
            for (role, socket_type) in sockets {
                state.sockets.push(SocketEntry {
                    node: i,
                    role,
                    socket_type,
                    endpoints: Vec::new(),
                    linger_ms: Some(-1),
                    context: node.context,
                    open: true,
                    closed_by: None,
                });
            }
        }
        state
    }
}

/// The shared registry.
#[derive(Debug, Default)]
pub struct Registry {
    state: Mutex<RegistryState>,
}

/// The current thread's kernel tid.
pub fn current_tid() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// Linux limits thread names to 15 bytes.
pub fn thread_name(node: &str) -> String {
    let mut name = node.to_owned();
    while name.len() > 15 {
        name.pop();
    }
    name
}

/// The current thread's name, or `main` for the main thread.
pub fn current_thread_name() -> String {
    std::thread::current().name().unwrap_or("main").to_owned()
}

impl Registry {
    /// Locks the registry; a thread that panicked while holding it aborts the process anyway.
    pub fn lock(&self) -> MutexGuard<'_, RegistryState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the calling thread as started.
    pub fn thread_started(&self, purpose: String, of: ThreadOf) {
        let mut state = self.lock();
        let node_name = of.node().map(|n| state.nodes[n].name.clone());
        lifecycle!(
            EventKind::ThreadStarted,
            node = node_name,
            purpose = purpose.as_str()
        );
        state.threads.push(ThreadEntry {
            tid: current_tid(),
            purpose,
            of,
            alive: true,
        });
    }

    /// Records the calling thread as ended.
    pub fn thread_ended(&self) {
        let tid = current_tid();
        let mut state = self.lock();
        let RegistryState { threads, nodes, .. } = &mut *state;
        if let Some(t) = threads.iter_mut().find(|t| t.tid == tid && t.alive) {
            t.alive = false;
            let node_name = t.of.node().map(|n| nodes[n].name.as_str());
            lifecycle!(EventKind::ThreadExited, node = node_name);
        }
    }

    /// Sets a node's owner state.
    pub fn set_owner(&self, node: usize, owner: OwnerState) {
        self.lock().nodes[node].owner = owner;
    }

    /// Marks an async node's receive task as cancelled.
    pub fn task_cancelled(&self, node: usize) {
        let mut state = self.lock();
        lifecycle!(
            EventKind::TaskCancelled,
            node = state.nodes[node].name.as_str()
        );
        let owner = &mut state.nodes[node].owner;
        *owner = match *owner {
            OwnerState::RuntimeRunning { .. } => OwnerState::RuntimeRunning {
                task_cancelled: true,
            },
            OwnerState::RuntimeStopped { .. } => OwnerState::RuntimeStopped {
                task_cancelled: true,
            },
            other => other,
        };
    }

    /// Marks an async node's runtime as stopped.
    pub fn runtime_stopped(&self, node: usize) {
        let mut state = self.lock();
        lifecycle!(
            EventKind::RuntimeStopped,
            node = state.nodes[node].name.as_str()
        );
        let owner = &mut state.nodes[node].owner;
        let task_cancelled = matches!(
            *owner,
            OwnerState::RuntimeRunning {
                task_cancelled: true
            } | OwnerState::RuntimeStopped {
                task_cancelled: true
            }
        );
        *owner = OwnerState::RuntimeStopped { task_cancelled };
    }

    /// Records a socket as closed by the calling thread.
    pub fn socket_closed(&self, id: SocketId) {
        let mut state = self.lock();
        let RegistryState { sockets, nodes, .. } = &mut *state;
        let entry = &mut sockets[id];
        entry.open = false;
        entry.closed_by = Some(current_thread_name());
        lifecycle!(
            EventKind::SocketClosed,
            node = nodes[entry.node].name.as_str(),
            role = entry.role.as_str(),
            socket_type = %entry.socket_type
        );
    }

    /// Records a socket's linger as read back after a change.
    pub fn socket_linger(&self, id: SocketId, linger_ms: Option<i32>) {
        let mut state = self.lock();
        let RegistryState { sockets, nodes, .. } = &mut *state;
        sockets[id].linger_ms = linger_ms;
        lifecycle!(
            EventKind::LingerSet,
            node = nodes[sockets[id].node].name.as_str(),
            role = sockets[id].role.as_str(),
            linger_ms = linger_ms.map(i64::from)
        );
    }

    /// Enters a socket just created on the calling thread; returns its id.
    pub fn socket_created(&self, entry: SocketEntry) -> SocketId {
        let mut state = self.lock();
        lifecycle!(
            EventKind::SocketCreated,
            node = state.nodes[entry.node].name.as_str(),
            role = entry.role.as_str(),
            socket_type = %entry.socket_type
        );
        state.sockets.push(entry);
        state.sockets.len() - 1
    }

    /// Records an endpoint a socket was bound or connected to (`kind` says which).
    pub fn socket_endpoint(&self, id: SocketId, kind: EndpointKind, endpoint: &str) {
        let mut state = self.lock();
        let RegistryState { sockets, nodes, .. } = &mut *state;
        let entry = &mut sockets[id];
        let event = match kind {
            EndpointKind::Bind => EventKind::Bound,
            EndpointKind::Connect => EventKind::Connected,
        };
        entry.endpoints.push(SocketEndpoint {
            how: kind,
            address: endpoint.to_owned(),
        });
        lifecycle!(
            event,
            node = nodes[entry.node].name.as_str(),
            role = entry.role.as_str(),
            endpoint = endpoint
        );
    }

    /// Records that the current step ends `context` (`shutdown` or `term`), before it does.
    pub fn context_ending(&self, context: usize) {
        let ended_in = &mut self.lock().contexts[context].ended_in;
        ended_in.get_or_insert(current_phase());
    }

    /// Records that the current step sends TERMINATE to a steerable proxy, before it does.
    pub fn terminate_sent(&self, node: usize) {
        let terminate_sent_in = &mut self.lock().nodes[node].terminate_sent_in;
        terminate_sent_in.get_or_insert(current_phase());
    }

    /// The step that caused a node's loop to end with ETERM (its context's shutdown or term),
    /// or with TERMINATE (`terminated`).
    pub fn end_cause(&self, node: usize, terminated: bool) -> Option<Phase> {
        let state = self.lock();
        let entry = &state.nodes[node];
        if terminated {
            entry.terminate_sent_in
        } else {
            state.contexts[entry.context].ended_in
        }
    }

    /// Records the final state in the trace: every node's data-message totals (probes are not
    /// counted) and every socket still open.
    pub fn trace_final_state(&self) {
        let state = self.lock();
        for node in &state.nodes {
            lifecycle!(
                EventKind::MessagesCounted,
                node = node.name.as_str(),
                sent = NodeCounters::get(&node.counters.sent),
                received = NodeCounters::get(&node.counters.received)
            );
        }
        // A monitor's reader closes on its own, when libzmq tells it: not part of the record.
        let watched = |s: &&SocketEntry| s.role != SocketRole::MonitorReader;
        for socket in state.sockets.iter().filter(|s| s.open).filter(watched) {
            let node = &state.nodes[socket.node];
            lifecycle!(
                EventKind::SocketStillOpen,
                node = node.name.as_str(),
                role = socket.role.as_str(),
                socket_type = %socket.socket_type,
                owner = node.owner.describe()
            );
        }
    }

    /// See [`RegistryState::loop_ended`].
    pub fn loop_ended(&self, node: usize) -> bool {
        self.lock().loop_ended(node)
    }

    /// See [`RegistryState::monitor_readers_closed`].
    pub fn monitor_readers_closed(&self, node: usize) -> bool {
        self.lock().monitor_readers_closed(node)
    }

    /// Records that an async node's receive task has handled ETERM.
    pub fn eterm_handled(&self, node: usize) {
        self.lock().nodes[node].eterm_handled = true;
    }

    /// Records why the running step can never finish.
    pub fn prove(&self, proof: Proof) {
        if let Some(active) = &mut self.lock().active {
            active.proof = Some(proof);
        }
    }

    /// Records where the traffic phase is.
    pub fn traffic_stage(&self, stage: TrafficStage) {
        self.lock().traffic = stage;
    }

    /// Starts the watchdog's clock on a phase or step.
    pub fn begin(&self, label: &str, step: Option<usize>, timeout: Duration) -> Instant {
        let started = Instant::now();
        self.lock().active = Some(ActiveStep {
            label: label.to_owned(),
            step,
            started,
            timeout,
            proof: None,
        });
        started
    }

    /// Stops the watchdog's clock, unless the watchdog has already declared the phase or step
    /// hung.
    pub fn end(&self) -> StepEnd {
        let mut state = self.lock();
        if state.hang_declared {
            return StepEnd::Hung;
        }
        StepEnd::Returned(state.active.take().and_then(|a| a.proof))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_with_one_node() -> Registry {
        let registry = Registry::default();
        {
            let mut state = registry.lock();
            state.contexts.push(ContextEntry {
                name: "main".to_owned(),
                terminated: false,
                ended_in: None,
            });
            state.nodes.push(NodeEntry {
                name: "sub".to_owned(),
                is_proxy: false,
                owner: OwnerState::RuntimeRunning {
                    task_cancelled: false,
                },
                owner_thread: "sub".to_owned(),
                counters: Arc::default(),
                to_send: 0,
                expected: None,
                context: 0,
                terminate_sent_in: None,
                eterm_handled: false,
            });
        }
        registry
    }

    fn socket(role: SocketRole) -> SocketEntry {
        SocketEntry {
            node: 0,
            role,
            socket_type: SocketType::Sub,
            endpoints: Vec::new(),
            linger_ms: Some(-1),
            context: 0,
            open: true,
            closed_by: None,
        }
    }

    #[test]
    fn endpoints_are_kept_typed_in_order_and_closing_records_the_thread() {
        let registry = registry_with_one_node();
        let id = registry.socket_created(socket(SocketRole::Socket));
        registry.socket_endpoint(id, EndpointKind::Bind, "inproc://a");
        registry.socket_endpoint(id, EndpointKind::Connect, "tcp://127.0.0.1:5");
        registry.socket_closed(id);
        let state = registry.lock();
        let entry = &state.sockets[id];
        let shown: Vec<String> = entry.endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["bind inproc://a", "connect tcp://127.0.0.1:5"]);
        assert!(!entry.open);
        assert_eq!(entry.closed_by, Some(current_thread_name()));
    }

    #[test]
    fn a_cancelled_task_stays_cancelled_when_the_runtime_stops() {
        let registry = registry_with_one_node();
        registry.task_cancelled(0);
        registry.runtime_stopped(0);
        assert_eq!(
            registry.lock().nodes[0].owner,
            OwnerState::RuntimeStopped {
                task_cancelled: true
            }
        );
    }

    #[test]
    fn the_first_step_that_ends_a_context_is_its_cause() {
        let registry = registry_with_one_node();
        registry.lock().contexts[0].ended_in = Some(Phase::Step(1));
        registry.context_ending(0);
        registry.terminate_sent(0);
        assert_eq!(registry.end_cause(0, false), Some(Phase::Step(1)));
        assert_eq!(registry.end_cause(0, true), Some(current_phase()));
        let registry = registry_with_one_node();
        assert_eq!(registry.end_cause(0, true), None);
    }

    #[test]
    fn a_loop_has_ended_when_its_thread_did_or_its_context_was_termed() {
        let registry = registry_with_one_node();
        assert!(!registry.loop_ended(0));
        registry.set_owner(0, OwnerState::ThreadEndedKeeping);
        assert!(registry.loop_ended(0));
        registry.set_owner(0, OwnerState::ThreadRunning);
        registry.lock().contexts[0].terminated = true;
        assert!(registry.loop_ended(0));
    }

    #[test]
    fn monitor_readers_count_as_closed_once_none_is_open() {
        let registry = registry_with_one_node();
        registry.socket_created(socket(SocketRole::Socket));
        let reader = registry.socket_created(socket(SocketRole::MonitorReader));
        assert!(!registry.monitor_readers_closed(0));
        registry.socket_closed(reader);
        assert!(registry.monitor_readers_closed(0));
    }

    #[test]
    fn thread_names_are_cut_to_15_bytes_on_a_character_boundary() {
        assert_eq!(thread_name("sub"), "sub");
        assert_eq!(thread_name("a-very-long-node-name"), "a-very-long-nod");
        // 'é' is two bytes: 7 of them are 14 bytes, an 8th would make 16.
        assert_eq!(thread_name("éééééééé"), "ééééééé");
        assert!(thread_name("ñandú-ñandú-ñandú").len() <= 15);
    }

    #[test]
    fn a_step_that_returns_before_the_watchdog_judges_it_ends_and_cannot_be_declared_hung() {
        let registry = Registry::default();
        registry.begin("sleep", Some(0), Duration::ZERO);
        assert!(matches!(registry.end(), StepEnd::Returned(None)));
        assert!(registry.lock().declare_hang_if(|_, _| true).is_none());
    }

    #[test]
    fn a_step_declared_hung_can_no_longer_end() {
        let registry = Registry::default();
        registry.begin("sleep", Some(0), Duration::ZERO);
        let hung = registry
            .lock()
            .declare_hang_if(|a, _| a.timeout == Duration::ZERO);
        assert_eq!(hung.map(|a| a.label), Some("sleep".to_owned()));
        assert!(matches!(registry.end(), StepEnd::Hung));
        assert!(matches!(registry.end(), StepEnd::Hung));
    }

    #[test]
    fn the_watchdog_leaves_a_step_that_is_not_due_alone() {
        let registry = Registry::default();
        registry.begin("sleep", Some(0), Duration::from_secs(60));
        assert!(registry.lock().declare_hang_if(|_, _| false).is_none());
        assert!(matches!(registry.end(), StepEnd::Returned(None)));
    }

    #[test]
    fn a_step_that_returns_while_the_watchdog_is_declaring_its_hang_waits_for_the_decision() {
        // The interleaving that once lost a verdict: the watchdog holds the lock and declares
        // the hang while the step's thread returns and asks to end the step.
        let registry = std::sync::Arc::new(Registry::default());
        registry.begin("sleep", Some(0), Duration::ZERO);
        let mut state = registry.lock();
        let ender = {
            let registry = std::sync::Arc::clone(&registry);
            std::thread::spawn(move || registry.end())
        };
        // Whether or not the thread has reached the lock yet, it must see the decision.
        std::thread::yield_now();
        assert!(state.declare_hang_if(|_, _| true).is_some());
        drop(state);
        assert!(matches!(ender.join().ok(), Some(StepEnd::Hung)));
    }

    #[test]
    fn a_proof_is_handed_back_when_the_step_returns_anyway() {
        let registry = Registry::default();
        registry.begin("close", Some(1), Duration::from_secs(60));
        registry.prove(Proof {
            reasons: vec!["no peer".to_owned()],
            settle: Vec::new(),
        });
        match registry.end() {
            StepEnd::Returned(Some(proof)) => assert_eq!(proof.words(), "no peer"),
            other => panic!("expected the proof back, got {other:?}"),
        }
    }
}
