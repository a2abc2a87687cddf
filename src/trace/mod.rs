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

/// Declares a fieldless enum whose every variant has one wire name, written once: `as_str`,
/// `ALL`, `Display`, `FromStr` (an unknown name is an error) and serde as that name.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<Self, UnknownName> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| UnknownName {
                        what: stringify!($name),
                        name: text.to_owned(),
                    })
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is not one of an enum's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`")]
pub struct UnknownName {
    /// The enum.
    pub what: &'static str,
    /// The name found.
    pub name: String,
}

named_enum! {
    /// A socket's role in its node, as events and reports name it.
    pub enum SocketRole {
        /// The one socket of a publisher or subscriber node.
        Socket = "socket",
        /// A proxy's XSUB.
        Frontend = "frontend",
        /// A proxy's XPUB.
        Backend = "backend",
        /// A steerable proxy's end of its control pair.
        Control = "control",
        /// The end of the control pair `steer` steps send on.
        Steer = "steer",
        /// A proxy's capture socket, which gets a copy of every message it forwards.
        Capture = "capture",
        /// The PAIR socket that reads a socket monitor's events.
        MonitorReader = "monitor reader",
    }
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

named_enum! {
    /// What happened. The words of a snapshot are these names with spaces.
    pub enum EventKind {
        /// A phase or step began (`label`).
        StepStarted = "step_started",
        /// A phase or step finished in time (`label`, `note`, `duration_us`).
        StepFinished = "step_finished",
        /// The watchdog declared the running phase or step hung (`label`, `elapsed_us`).
        StepHung = "step_hung",
        /// A socket was created (`role`, `socket_type`).
        SocketCreated = "socket_created",
        /// A socket was bound (`role`, `endpoint` as read back).
        Bound = "bound",
        /// A socket was connected (`role`, `endpoint`).
        Connected = "connected",
        /// A SUB socket subscribed (`role`, `topic`).
        Subscribed = "subscribed",
        /// ZMQ_LINGER was set (`role`, `linger_ms` as read back).
        LingerSet = "linger_set",
        /// A harness thread started (`purpose`).
        ThreadStarted = "thread_started",
        /// A harness thread is about to return.
        ThreadExited = "thread_exited",
        /// A node received its first data message.
        FirstMessageReceived = "first_message_received",
        /// A node's data-message totals (`sent`, `received`; probes are not counted).
        MessagesCounted = "messages_counted",
        /// At the end of the run or at the hang, a socket nobody closed (`role`, `socket_type`,
        /// `owner` state in words).
        SocketStillOpen = "socket_still_open",
        /// A call on a node's socket returned ETERM (`call`).
        EtermSeen = "eterm_seen",
        /// A steerable proxy returned after TERMINATE.
        ProxyTerminated = "proxy_terminated",
        /// A socket was closed by the thread in the event (`role`, `socket_type`).
        SocketClosed = "socket_closed",
        /// A node's loop ended keeping its sockets open (`sockets`).
        SocketsKept = "sockets_kept",
        /// A node's thread left its loop on an `exit` request.
        LoopExited = "loop_exited",
        /// An `open` step's socket was refused because its context is shut down (`error`).
        SocketRefused = "socket_refused",
        /// An async node's receive task ended (aborted by a `close`).
        ReceiveTaskEnded = "receive_task_ended",
        /// An async node's receive task was aborted by a `cancel`.
        TaskCancelled = "task_cancelled",
        /// An async node's runtime was dropped.
        RuntimeStopped = "runtime_stopped",
        /// A command was sent on a steerable proxy's control pair (`command`).
        SteerSent = "steer_sent",
        /// `zmq_ctx_shutdown` returned (`context`).
        ShutdownCalled = "shutdown_called",
        /// `zmq_ctx_term` was entered (`context`).
        TermEntered = "term_entered",
        /// `zmq_ctx_term` returned (`context`; `interrupted`, the EINTRs it retried, if any).
        TermReturned = "term_returned",
        /// A socket monitor was attached (`role`, `endpoint` of its inproc pair).
        MonitorStarted = "monitor_started",
        /// A socket monitor reported an event (`role`, `event`, `endpoint`).
        MonitorEvent = "monitor_event",
        /// A monitor's reader closed its socket (`role`, `reason`).
        MonitorReaderClosed = "monitor_reader_closed",
        /// A program node's process started (`command`).
        ProgramStarted = "program_started",
        /// A program node printed a line matching its `trace_lines` (`line`).
        ProgramLine = "program_line",
        /// A program node's process ended (`exit`, in words).
        ProgramExited = "program_exited",
    }
}

impl EventKind {
    /// The name in words, for timelines and snapshots.
    pub fn words(self) -> String {
        self.as_str().replace('_', " ")
    }
}

/// What an event carries besides its kind and node; which fields each kind has is documented on
/// [`EventKind`]. A field absent from an event is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFields {
    /// The phase or step (`step started`, `step finished`, `step hung`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What a finished step found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How long a step took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// How long a hung step had run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_us: Option<u64>,
    /// The socket's role in its node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<SocketRole>,
    /// The socket's type (`XSUB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<String>,
    /// An endpoint bound or connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A subscription's topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// ZMQ_LINGER as read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linger_ms: Option<i64>,
    /// What a thread is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Data messages sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    /// Data messages received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
    /// The owner's state, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The call that returned ETERM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// How many sockets a loop kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u64>,
    /// A steer command, or the command line a program was started with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The context's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// A socket monitor's event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Why a monitor's reader closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many times a signal interrupted `zmq_ctx_term` (EINTR) before it returned; absent
    /// when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<u64>,
    /// Why a socket was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A line a program printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// How a program ended, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
}

impl EventFields {
    /// The fields present, by name in name order, as JSON values: what timelines, snapshots
    /// and the Chrome trace print.
    pub fn entries(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
            _ => std::collections::BTreeMap::new(),
        }
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
    pub fields: EventFields,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_round_trips_through_its_name_and_json() {
        for &kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<EventKind>(&json).ok(), Some(kind));
        }
        let names: std::collections::HashSet<&str> =
            EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), EventKind::ALL.len(), "names are unique");
    }

    #[test]
    fn an_unknown_kind_or_field_is_an_error() {
        assert_eq!(
            "socket_exploded".parse::<EventKind>(),
            Err(UnknownName {
                what: "EventKind",
                name: "socket_exploded".to_owned()
            })
        );
        let event = |kind: &str, fields: &str| {
            format!(
                r#"{{"seq":0,"t_us":1,"thread":"main","tid":1,"node":null,"phase":"setup","kind":"{kind}","fields":{fields}}}"#
            )
        };
        let good: LifecycleEvent = serde_json::from_str(&event(
            "bound",
            r#"{"role":"frontend","endpoint":"inproc://x"}"#,
        ))
        .expect("a known kind with known fields");
        assert_eq!(good.fields.role, Some(SocketRole::Frontend));
        assert!(serde_json::from_str::<LifecycleEvent>(&event("exploded", "{}")).is_err());
        assert!(
            serde_json::from_str::<LifecycleEvent>(&event("bound", r#"{"colour":"red"}"#)).is_err()
        );
        assert!(
            serde_json::from_str::<LifecycleEvent>(&event("bound", r#"{"role":"sidecar"}"#))
                .is_err()
        );
    }

    #[test]
    fn fields_print_in_name_order_without_the_absent_ones() {
        let fields = EventFields {
            socket_type: Some("XSUB".to_owned()),
            role: Some(SocketRole::MonitorReader),
            linger_ms: Some(-1),
            ..EventFields::default()
        };
        let printed: Vec<String> = fields
            .entries()
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect();
        assert_eq!(
            printed,
            ["linger_ms=-1", "role=monitor reader", "socket_type=XSUB"]
        );
    }
}
