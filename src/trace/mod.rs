//! Lifecycle traces: what happened to every socket, thread, runtime and context of one scenario
//! run, in order, as data.
//!
//! ```text
//! child: lifecycle! ─▶ tracing ─▶ layer::LifecycleLayer ─▶ ChildMessage::Trace (one JSON line each)
//! parent: runner collects LifecycleEvent ─▶ normalize ─▶ snapshot (.snap, check/update)
//!                                        └─▶ timeline (text) · JSON · chrome (trace-event JSON)
//! ```
//! The child records events with the [`lifecycle!`](crate::lifecycle) macro (target
//! [`LIFECYCLE_TARGET`]); the layer streams each one to the parent as it happens, so a child
//! killed at a hang has already delivered everything up to the hang. Nothing is recorded per
//! message: nodes count messages and report the first one and the totals. The harness's own
//! logs (`TERMWATCH_LOG`, stderr) never enter a trace. See `docs/traces.md`.

pub mod chrome;
pub mod layer;
pub mod normalize;
pub mod snapshot;
pub mod timeline;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `tracing` target of lifecycle events; everything else is the harness's own log.
pub const LIFECYCLE_TARGET: &str = "termwatch::lifecycle";

/// Records one lifecycle event: `lifecycle!(EventKind::SocketClosed, node = "sub", role = "socket")`.
/// `node` names the node the event belongs to; the other fields are kept as data.
#[macro_export]
macro_rules! lifecycle {
    ($kind:expr $(, $($fields:tt)*)?) => {
        ::tracing::info!(
            target: $crate::trace::LIFECYCLE_TARGET,
            kind = $crate::trace::EventKind::as_str($kind)
            $(, $($fields)*)?
        )
    };
}

/// Where in a run an event belongs: a phase, a step, or the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Sockets created, bound, connected; threads started.
    Setup,
    /// The slow-joiner wait and the sends.
    Traffic,
    /// Shutdown step, by index.
    Step(usize),
    /// After the last step (or at the hang): final counts.
    End,
    /// Socket monitor readers: libzmq reports these events from its own threads, so they are
    /// ordered per socket, not with the steps.
    Monitor,
}

impl Phase {
    /// The phase of a `PhaseStarted` message: `None` is setup or traffic, told apart by label.
    pub fn of(step: Option<usize>, label: &str) -> Phase {
        match step {
            Some(i) => Phase::Step(i),
            None if label == crate::scenario::SETUP_LABEL => Phase::Setup,
            None => Phase::Traffic,
        }
    }
}

/// What happened. The words of a snapshot are these names with spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A phase or step began (`label`).
    StepStarted,
    /// A phase or step finished in time (`label`, `note`, `duration_us`).
    StepFinished,
    /// The watchdog declared the running phase or step hung (`label`, `elapsed_us`).
    StepHung,
    /// A socket was created (`role`, `socket_type`).
    SocketCreated,
    /// A socket was bound (`role`, `endpoint` as read back).
    Bound,
    /// A socket was connected (`role`, `endpoint`).
    Connected,
    /// A SUB socket subscribed (`role`, `topic`).
    Subscribed,
    /// ZMQ_LINGER was set (`role`, `linger_ms` as read back).
    LingerSet,
    /// A harness thread started (`purpose`).
    ThreadStarted,
    /// A harness thread is about to return.
    ThreadExited,
    /// A node received its first data message.
    FirstMessageReceived,
    /// A node's data-message totals (`sent`, `received`; probes are not counted).
    MessagesCounted,
    /// At the end of the run or at the hang, a socket nobody closed (`role`, `socket_type`,
    /// `owner` state in words).
    SocketStillOpen,
    /// A call on a node's socket returned ETERM (`call`).
    EtermSeen,
    /// A steerable proxy returned after TERMINATE.
    ProxyTerminated,
    /// A socket was closed by the thread in the event (`role`, `socket_type`).
    SocketClosed,
    /// A node's loop ended keeping its sockets open (`sockets`).
    SocketsKept,
    /// A node's thread left its loop on an `exit` request.
    LoopExited,
    /// An `open` step's socket was refused because its context is shut down (`error`).
    SocketRefused,
    /// An async node's receive task ended (aborted by a `close`).
    ReceiveTaskEnded,
    /// An async node's receive task was aborted by a `cancel`.
    TaskCancelled,
    /// An async node's runtime was dropped.
    RuntimeStopped,
    /// A command was sent on a steerable proxy's control pair (`command`).
    SteerSent,
    /// `zmq_ctx_shutdown` returned (`context`).
    ShutdownCalled,
    /// `zmq_ctx_term` was entered (`context`).
    TermEntered,
    /// `zmq_ctx_term` returned (`context`).
    TermReturned,
    /// A socket monitor was attached (`role`, `endpoint` of its inproc pair).
    MonitorStarted,
    /// A socket monitor reported an event (`role`, `event`, `endpoint`).
    MonitorEvent,
    /// A monitor's reader closed its socket (`role`, `reason`).
    MonitorReaderClosed,
}

impl EventKind {
    /// The snake_case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::StepStarted => "step_started",
            EventKind::StepFinished => "step_finished",
            EventKind::StepHung => "step_hung",
            EventKind::SocketCreated => "socket_created",
            EventKind::Bound => "bound",
            EventKind::Connected => "connected",
            EventKind::Subscribed => "subscribed",
            EventKind::LingerSet => "linger_set",
            EventKind::ThreadStarted => "thread_started",
            EventKind::ThreadExited => "thread_exited",
            EventKind::FirstMessageReceived => "first_message_received",
            EventKind::MessagesCounted => "messages_counted",
            EventKind::SocketStillOpen => "socket_still_open",
            EventKind::EtermSeen => "eterm_seen",
            EventKind::ProxyTerminated => "proxy_terminated",
            EventKind::SocketClosed => "socket_closed",
            EventKind::SocketsKept => "sockets_kept",
            EventKind::LoopExited => "loop_exited",
            EventKind::SocketRefused => "socket_refused",
            EventKind::ReceiveTaskEnded => "receive_task_ended",
            EventKind::TaskCancelled => "task_cancelled",
            EventKind::RuntimeStopped => "runtime_stopped",
            EventKind::SteerSent => "steer_sent",
            EventKind::ShutdownCalled => "shutdown_called",
            EventKind::TermEntered => "term_entered",
            EventKind::TermReturned => "term_returned",
            EventKind::MonitorStarted => "monitor_started",
            EventKind::MonitorEvent => "monitor_event",
            EventKind::MonitorReaderClosed => "monitor_reader_closed",
        }
    }

    /// The name in words, for timelines and snapshots.
    pub fn words(self) -> String {
        self.as_str().replace('_', " ")
    }

    /// Parses the name written by [`EventKind::as_str`].
    pub fn parse(name: &str) -> Option<EventKind> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// One lifecycle event, as recorded in the child and streamed to the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// Order of recording in the child, from 0, without gaps.
    pub seq: u64,
    /// Microseconds since the child's trace began.
    pub t_us: u64,
    /// Name of the thread that recorded it.
    pub thread: String,
    /// Kernel tid of that thread.
    pub tid: i32,
    /// The node it belongs to, if any.
    pub node: Option<String>,
    /// The phase or step it belongs to: the one running, or the one that caused it (an ETERM
    /// belongs to the `shutdown` or `term` step, not to whatever runs when a thread notices).
    pub phase: Phase,
    /// What happened.
    pub kind: EventKind,
    /// Everything else it carries.
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl LifecycleEvent {
    /// A field as text (strings without quotes).
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields.get(name).map(value_text)
    }
}

/// A field value as text: strings without their quotes, everything else as JSON.
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A run's raw trace as the parent received it, and what normalizing it needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordedTrace {
    /// Every event the child streamed, in arrival (= `seq`) order.
    pub events: Vec<LifecycleEvent>,
    /// The run's pid and temporary folder.
    pub redactions: normalize::Redactions,
}
