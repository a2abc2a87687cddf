//! The first parsing pass: a serde mirror of a scenario file, every field spanned so that the
//! second pass (`validate`) can point at the line and column of whatever it rejects.
//!
//! Nodes are one flat struct with optional fields, not a tagged enum: serde's internally tagged
//! enums lose spans, and "field `topic` is not allowed on a subscriber" is a better message than
//! serde's "unknown field" anyway.

#![expect(
    missing_docs,
    reason = "each field is a key of the file format, documented in docs/scenario-format.md"
)]

use serde::Deserialize;
use serde_spanned::Spanned;

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub reference: Option<Spanned<String>>,
    pub expect: Spanned<Expect>,
    pub expect_hang_at: Option<Spanned<String>>,
    pub transport: Option<Spanned<Transport>>,
    pub step_timeout: Option<Spanned<String>>,
    pub monitor: Option<Spanned<bool>>,
    #[serde(default)]
    pub requires: Vec<Spanned<Vec<String>>>,
    #[serde(default)]
    pub contexts: Vec<RawContext>,
    #[serde(default)]
    pub nodes: Vec<RawNode>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

/// A `[[contexts]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContext {
    pub name: Spanned<String>,
    pub io_threads: Option<Spanned<Int>>,
    pub max_sockets: Option<Spanned<Int>>,
    pub blocky: Option<Spanned<bool>>,
}

/// A `[[nodes]]` table: every field any kind takes; `validate` checks which apply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: Spanned<String>,
    pub kind: Spanned<NodeKindName>,
    pub engine: Option<Spanned<Engine>>,
    pub capture: Option<Spanned<SocketType>>,
    #[serde(rename = "type")]
    pub socket_type: Option<Spanned<SocketType>>,
    pub mode: Option<Spanned<Mode>>,
    pub bind: Option<Spanned<String>>,
    pub connect: Option<Spanned<String>>,
    pub topic: Option<Spanned<String>>,
    pub subscribe: Option<Spanned<Vec<String>>>,
    pub messages: Option<Spanned<Int>>,
    pub send: Option<Spanned<Int>>,
    pub size: Option<Spanned<Int>>,
    pub rate: Option<Spanned<Int>>,
    pub expect_messages: Option<Spanned<Int>>,
    pub context: Option<Spanned<String>>,
    pub linger_ms: Option<Spanned<Int>>,
    pub sndhwm: Option<Spanned<Int>>,
    pub rcvhwm: Option<Spanned<Int>>,
    pub immediate: Option<Spanned<bool>>,
    pub nodrop: Option<Spanned<bool>>,
    pub monitor: Option<Spanned<bool>>,
    pub poll_ms: Option<Spanned<Int>>,
    pub on_eterm: Option<Spanned<OnEterm>>,
    pub open: Option<Spanned<OpenAt>>,
    pub command: Option<Spanned<Vec<String>>>,
    pub env: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    pub cwd: Option<Spanned<String>>,
    pub ready_line: Option<Spanned<String>>,
    pub ready_after: Option<Spanned<String>>,
    pub trace_lines: Option<Spanned<String>>,
    pub binds: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A `[[steps]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub action: Spanned<ActionName>,
    pub label: Option<Spanned<String>>,
    pub node: Option<Spanned<String>>,
    pub context: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub command: Option<Spanned<SteerCommand>>,
    #[serde(rename = "for")]
    pub duration: Option<Spanned<String>>,
    pub after: Option<Spanned<String>>,
    pub linger_ms: Option<Spanned<Int>>,
    pub expect_at_least: Option<Spanned<String>>,
    pub how: Option<Spanned<String>>,
}

/// An integer as written, whatever its size: the second pass checks it against the field's
/// documented range, so that every out-of-range number gets the same message with the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Int(pub i128);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl serde::de::Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

macro_rules! keyword_enum {
    ($(#[$doc:meta])* $name:ident, $case:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
        #[serde(rename_all = $case)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// The word used for it in scenario files.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum!(
    /// The outcome a scenario's author expects.
    Expect, "lowercase" {
        /// Every step finishes in time.
        Clean => "clean",
        /// Some step outlives its deadline.
        Hang => "hang",
        /// The scenario's process dies.
        Crash => "crash",
    }
);

keyword_enum!(
    /// Transport of automatic endpoints.
    Transport, "lowercase" {
        /// `inproc://`, unique names.
        Inproc => "inproc",
        /// `ipc://` in the run's temporary folder.
        Ipc => "ipc",
        /// `tcp://127.0.0.1`, port chosen by the system.
        Tcp => "tcp",
    }
);

keyword_enum!(
    /// What a node is.
    NodeKindName, "lowercase" {
        /// XSUB frontend + XPUB backend forwarded by a thread.
        Proxy => "proxy",
        /// A PUB socket owned by the main thread.
        Publisher => "publisher",
        /// A SUB socket used in one of the modes.
        Subscriber => "subscriber",
        /// Any socket type.
        Socket => "socket",
        /// A program under test, run as a process of its own.
        Program => "program",
    }
);

keyword_enum!(
    /// How a proxy node forwards.
    Engine, "snake_case" {
        /// `zmq_proxy`.
        ZmqProxy => "zmq_proxy",
        /// `zmq_proxy_steerable` with an inproc PAIR control socket.
        Steerable => "steerable",
        /// The project's own loop, [`crate::forwarder`].
        Forwarder => "forwarder",
    }
);

keyword_enum!(
    /// How a socket's owner uses it.
    Mode, "lowercase" {
        /// A thread in a blocking recv.
        Blocking => "blocking",
        /// A thread polling with a timeout, which hears requests between polls.
        Poll => "poll",
        /// Open, and nobody calls it.
        Idle => "idle",
        /// A tokio runtime on a background thread, woken through ZMQ_FD.
        Async => "async",
        /// A thread that sends without end, hearing requests between sends.
        Stream => "stream",
    }
);

keyword_enum!(
    /// What a node's loop does with its sockets when it ends (ETERM, or a TERMINATE).
    OnEterm, "lowercase" {
        /// Close them.
        Close => "close",
        /// Keep them open: code that catches ETERM and forgets to close.
        Keep => "keep",
    }
);

keyword_enum!(
    /// Step actions.
    ActionName, "snake_case" {
        /// Close a node's sockets, on the thread that owns them.
        Close => "close",
        /// Abort an async node's receive task.
        Cancel => "cancel",
        /// Stop an async node's runtime.
        StopRuntime => "stop_runtime",
        /// `zmq_ctx_term`.
        Term => "term",
        /// `zmq_ctx_shutdown`.
        Shutdown => "shutdown",
        /// Wait for a node's thread to end.
        Join => "join",
        /// Send a command to a steerable proxy.
        Steer => "steer",
        /// Sleep.
        Sleep => "sleep",
        /// Set ZMQ_LINGER on a node's sockets.
        SetLinger => "set_linger",
        /// Ask a program node to end, and wait for it to exit.
        Stop => "stop",
        /// Ask a node's thread to leave its loop and end.
        Exit => "exit",
        /// Interrupt the main thread with SIGALRM a while from now.
        Alarm => "alarm",
        /// Make a node's sockets, which setup left for this step.
        Open => "open",
    }
);

keyword_enum!(
    /// When a node's sockets are made.
    OpenAt, "lowercase" {
        /// In the setup phase, with every other node's.
        Setup => "setup",
        /// By the node's `open` step.
        Step => "step",
    }
);

keyword_enum!(
    /// Commands of `zmq_proxy_steerable`.
    SteerCommand, "UPPERCASE" {
        /// Stop the proxy: it returns.
        Terminate => "TERMINATE",
        /// Stop forwarding.
        Pause => "PAUSE",
        /// Forward again.
        Resume => "RESUME",
    }
);

keyword_enum!(
    /// ZeroMQ socket types.
    SocketType, "UPPERCASE" {
        /// ZMQ_PUB.
        Pub => "PUB",
        /// ZMQ_SUB.
        Sub => "SUB",
        /// ZMQ_XPUB.
        Xpub => "XPUB",
        /// ZMQ_XSUB.
        Xsub => "XSUB",
        /// ZMQ_PUSH.
        Push => "PUSH",
        /// ZMQ_PULL.
        Pull => "PULL",
        /// ZMQ_DEALER.
        Dealer => "DEALER",
        /// ZMQ_ROUTER.
        Router => "ROUTER",
        /// ZMQ_REQ.
        Req => "REQ",
        /// ZMQ_REP.
        Rep => "REP",
        /// ZMQ_PAIR.
        Pair => "PAIR",
    }
);

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 3] = [Transport::Inproc, Transport::Ipc, Transport::Tcp];
}

/// `Transport` as a command-line value (`termwatch bench --transport`).
impl clap::ValueEnum for Transport {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            Transport::Inproc => "Threads sharing one context",
            Transport::Ipc => "Unix domain sockets between processes",
            Transport::Tcp => "Loopback TCP between processes",
        };
        Some(clap::builder::PossibleValue::new(self.as_str()).help(help))
    }
}

impl SocketType {
    /// The libzmq constant for `zmq_socket`.
    pub fn raw(self) -> i32 {
        (match self {
            Self::Pub => zmq_sys::ZMQ_PUB,
            Self::Sub => zmq_sys::ZMQ_SUB,
            Self::Xpub => zmq_sys::ZMQ_XPUB,
            Self::Xsub => zmq_sys::ZMQ_XSUB,
            Self::Push => zmq_sys::ZMQ_PUSH,
            Self::Pull => zmq_sys::ZMQ_PULL,
            Self::Dealer => zmq_sys::ZMQ_DEALER,
            Self::Router => zmq_sys::ZMQ_ROUTER,
            Self::Req => zmq_sys::ZMQ_REQ,
            Self::Rep => zmq_sys::ZMQ_REP,
            Self::Pair => zmq_sys::ZMQ_PAIR,
        }) as i32
    }

    /// The type with libzmq constant `raw`.
    pub fn from_raw(raw: i32) -> Option<SocketType> {
        use SocketType::*;
        [
            Pub, Sub, Xpub, Xsub, Push, Pull, Dealer, Router, Req, Rep, Pair,
        ]
        .into_iter()
        .find(|t| t.raw() == raw)
    }

    /// Whether messages of this type carry a topic frame first (pub/sub family).
    pub fn has_topic(self) -> bool {
        matches!(self, Self::Pub | Self::Xpub)
    }

    /// Whether this type takes subscriptions.
    pub fn subscribes(self) -> bool {
        matches!(self, Self::Sub)
    }
}
