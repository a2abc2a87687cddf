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
use crate::scenario::{Mode, SocketType};
use crate::trace::layer::current_phase;
use crate::trace::normalize::MONITOR_READER_ROLE;
use crate::trace::{EventKind, Phase};

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
    /// Its mode (`None` for proxies).
    pub mode: Option<Mode>,
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
}

/// One socket's entry.
#[derive(Debug, Clone)]
pub struct SocketEntry {
    /// Index of its node.
    pub node: usize,
    /// Role in the node.
    pub role: &'static str,
    /// Type.
    pub socket_type: SocketType,
    /// `bind …` / `connect …`.
    pub endpoints: Vec<String>,
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

/// One thread the harness started.
#[derive(Debug, Clone)]
pub struct ThreadEntry {
    /// Kernel tid.
    pub tid: i32,
    /// Its name.
    pub name: String,
    /// What it does, in words.
    pub purpose: String,
    /// Index of its node, if any.
    pub node: Option<usize>,
    /// Whether it is still running.
    pub alive: bool,
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
    pub fn thread_started(&self, purpose: String, node: Option<usize>) {
        let mut state = self.lock();
        let node_name = node.map(|n| state.nodes[n].name.clone());
        lifecycle!(
            EventKind::ThreadStarted,
            node = node_name,
            purpose = purpose.as_str()
        );
        state.threads.push(ThreadEntry {
            tid: current_tid(),
            name: current_thread_name(),
            purpose,
            node,
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
            let node_name = t.node.map(|n| nodes[n].name.as_str());
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
            role = entry.role,
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
            role = sockets[id].role,
            linger_ms = linger_ms.map(i64::from)
        );
    }

    /// Enters a socket just created on the calling thread; returns its id.
    pub fn socket_created(&self, entry: SocketEntry) -> SocketId {
        let mut state = self.lock();
        lifecycle!(
            EventKind::SocketCreated,
            node = state.nodes[entry.node].name.as_str(),
            role = entry.role,
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
        let (event, verb) = match kind {
            EndpointKind::Bind => (EventKind::Bound, "bind"),
            EndpointKind::Connect => (EventKind::Connected, "connect"),
        };
        entry.endpoints.push(format!("{verb} {endpoint}"));
        lifecycle!(
            event,
            node = nodes[entry.node].name.as_str(),
            role = entry.role,
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
        let watched = |s: &&SocketEntry| s.role != MONITOR_READER_ROLE;
        for socket in state.sockets.iter().filter(|s| s.open).filter(watched) {
            let node = &state.nodes[socket.node];
            lifecycle!(
                EventKind::SocketStillOpen,
                node = node.name.as_str(),
                role = socket.role,
                socket_type = %socket.socket_type,
                owner = node.owner.describe()
            );
        }
    }

    /// Whether a node's loop has ended, or will end at once: its owner says so, or `term`
    /// returned on its context (so every socket there, the loop's included, is closed). Either
    /// way its thread is returning or gone.
    pub fn loop_ended(&self, node: usize) -> bool {
        let state = self.lock();
        let entry = &state.nodes[node];
        state.contexts[entry.context].terminated
            || matches!(
                entry.owner,
                OwnerState::ThreadEnded | OwnerState::ThreadEndedKeeping
            )
    }

    /// Whether every monitor reader of a node has closed, or `term` returned on its context
    /// (which means they have), so that its reader thread is returning or gone.
    pub fn monitor_readers_closed(&self, node: usize) -> bool {
        let state = self.lock();
        state.contexts[state.nodes[node].context].terminated
            || !state
                .sockets
                .iter()
                .any(|s| s.node == node && s.role == MONITOR_READER_ROLE && s.open)
    }

    /// Starts the watchdog's clock on a phase or step.
    pub fn begin(&self, label: &str, step: Option<usize>, timeout: Duration) -> Instant {
        let started = Instant::now();
        self.lock().active = Some(ActiveStep {
            label: label.to_owned(),
            step,
            started,
            timeout,
        });
        started
    }

    /// Stops the watchdog's clock.
    pub fn end(&self) {
        self.lock().active = None;
    }
}
