//! Scenario files: what they mean once parsed and validated.
//!
//! Parsing runs in passes (see the `raw` and `validate` submodules): TOML → [`raw::RawScenario`]
//! (spanned) → [`Scenario`] (names resolved, defaults applied, every step checked against its
//! node). The rest of the crate only ever sees a [`Scenario`]. The format is documented in
//! `docs/scenario-format.md`.

pub mod discover;
pub mod raw;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::{
    ActionName, Engine, Expect, Mode, NodeKindName, OnEterm, OpenAt, SocketType, SteerCommand,
    Transport,
};

use crate::errors::InputError;

/// The label of the traffic phase, which runs before the steps.
pub const TRAFFIC_LABEL: &str = "traffic";
/// The label of the setup phase (sockets created, bound and connected; threads started).
pub const SETUP_LABEL: &str = "setup";
/// The context every scenario has.
pub const MAIN_CONTEXT: &str = "main";

/// A validated scenario, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Unique name in a run; shards and snapshots key on it.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// What it models.
    pub description: String,
    /// Where the case comes from (an issue, an article).
    pub reference: Option<String>,
    /// The expected outcome.
    pub expect: Expect,
    /// The label of the step expected to hang, or `traffic`.
    pub expect_hang_at: Option<String>,
    /// Transport of automatic endpoints.
    pub transport: Transport,
    /// Deadline of the setup and traffic phases and of steps without their own.
    pub step_timeout: Duration,
    /// Contexts; index 0 is `main`.
    pub contexts: Vec<ContextSpec>,
    /// Nodes in file order.
    pub nodes: Vec<NodeSpec>,
    /// Shutdown steps in order.
    pub steps: Vec<StepSpec>,
}

/// A ZeroMQ context and the options applied before its first socket.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextSpec {
    /// Its name; `main` always exists.
    pub name: String,
    /// ZMQ_IO_THREADS, when set.
    pub io_threads: Option<i32>,
    /// ZMQ_BLOCKY, when set.
    pub blocky: Option<bool>,
}

/// A node: one or more sockets, and the thread or runtime that uses them.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Unique node name.
    pub name: String,
    /// The kind written in the file.
    pub kind: NodeKindName,
    /// Index into [`Scenario::contexts`].
    pub context: usize,
    /// Options applied to each of its sockets.
    pub options: SocketOptions,
    /// What its loop does with its sockets when it ends.
    pub on_eterm: OnEterm,
    /// Whether its sockets are watched with zmq_socket_monitor.
    pub monitor: bool,
    /// When its sockets are made: in setup, or by its `open` step.
    pub open: OpenAt,
    /// Kind-specific parts.
    pub body: NodeBody,
}

/// Socket options a node sets; `None` leaves libzmq's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketOptions {
    /// ZMQ_LINGER in ms (-1 = forever).
    pub linger_ms: Option<i32>,
    /// ZMQ_SNDHWM.
    pub sndhwm: Option<i32>,
    /// ZMQ_RCVHWM.
    pub rcvhwm: Option<i32>,
    /// ZMQ_IMMEDIATE.
    pub immediate: Option<bool>,
    /// ZMQ_XPUB_NODROP (PUB and XPUB sockets).
    pub nodrop: Option<bool>,
}

/// The kind-specific part of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeBody {
    /// An XSUB frontend and XPUB backend, both bound, forwarded by a thread.
    Proxy {
        /// How it forwards.
        engine: Engine,
        /// The type of its capture socket, which gets a copy of every message it forwards.
        capture: Option<SocketType>,
    },
    /// A single socket: publishers, subscribers and `socket` nodes.
    Endpoint(EndpointSpec),
}

/// A node with one socket.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    /// Its socket type (PUB for publishers, SUB for subscribers).
    pub socket_type: SocketType,
    /// How its owner uses it.
    pub mode: Mode,
    /// Where it binds.
    pub bind: Option<BindSpec>,
    /// Where it connects.
    pub connect: Option<ConnectTarget>,
    /// Topic frame of each message sent (pub/sub types).
    pub topic: String,
    /// Subscriptions (SUB).
    pub subscribe: Vec<String>,
    /// Messages sent in the traffic phase.
    pub send: u64,
    /// Payload size of each message, in bytes (at least 1).
    pub size: usize,
    /// Send rate limit, messages per second.
    pub rate: Option<u64>,
    /// Data messages the traffic phase waits for.
    pub expect_messages: Option<u64>,
    /// Poll timeout of `poll` mode.
    pub poll_interval: Duration,
}

/// A bind address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSpec {
    /// Chosen on the scenario's transport so that parallel runs never collide.
    Auto,
    /// Used as written.
    Explicit(String),
}

/// Which socket of a proxy a connect reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxySide {
    /// The XSUB side, where publishers connect.
    Frontend,
    /// The XPUB side, where subscribers connect.
    Backend,
    /// The capture socket, where a reader of the copies connects.
    Capture,
}

/// A connect address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTarget {
    /// The bound endpoint of another node (for a proxy, of one of its sides).
    Node {
        /// Index into [`Scenario::nodes`].
        node: usize,
        /// For a proxy, which side.
        side: Option<ProxySide>,
    },
    /// Used as written.
    Explicit(String),
    /// The monitor endpoint of another single-socket node: setup starts zmq_socket_monitor on
    /// that node's socket and this node (a PAIR) is its reader.
    Monitor {
        /// Index into [`Scenario::nodes`].
        node: usize,
    },
}

/// One shutdown step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// Its label (defaults to action + node or context).
    pub label: String,
    /// What it does.
    pub action: Action,
    /// Its deadline.
    pub timeout: Duration,
    /// The step passes only if it took at least this long.
    pub expect_at_least: Option<Duration>,
}

/// What a step does. `node` and `context` fields are indices into [`Scenario::nodes`] and
/// [`Scenario::contexts`]; the other fields are the step's own values from the file.
#[expect(missing_docs, reason = "field meanings are given once, above")]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Close the node's sockets on the thread that owns them.
    Close { node: usize },
    /// Abort an async node's receive task.
    Cancel { node: usize },
    /// Stop an async node's runtime.
    StopRuntime { node: usize },
    /// `zmq_ctx_term` from the main thread.
    Term { context: usize },
    /// `zmq_ctx_shutdown` from the main thread.
    Shutdown { context: usize },
    /// Wait for the node's thread to end.
    Join { node: usize },
    /// Send a command to a steerable proxy.
    Steer { node: usize, command: SteerCommand },
    /// Sleep.
    Sleep { duration: Duration },
    /// Set ZMQ_LINGER on the node's sockets, on the thread that owns them.
    SetLinger { node: usize, linger_ms: i32 },
    /// Ask the node's thread to leave its loop and end; `on_eterm` says what it does with its
    /// sockets on the way out.
    Exit { node: usize },
    /// Interrupt the main thread with SIGALRM `after` from now, whatever step runs then.
    Alarm { after: Duration },
    /// Make the node's sockets and hand them to their owner (a node with `open = "step"`).
    Open { node: usize },
}

impl Action {
    /// The node the step acts on, if any.
    pub fn node(&self) -> Option<usize> {
        match *self {
            Action::Close { node }
            | Action::Cancel { node }
            | Action::StopRuntime { node }
            | Action::Join { node }
            | Action::Exit { node }
            | Action::Open { node }
            | Action::Steer { node, .. }
            | Action::SetLinger { node, .. } => Some(node),
            Action::Term { .. }
            | Action::Shutdown { .. }
            | Action::Sleep { .. }
            | Action::Alarm { .. } => None,
        }
    }
}

impl NodeSpec {
    /// Whether the node has a thread of its own (what `join` waits for).
    pub fn has_thread(&self) -> bool {
        match &self.body {
            NodeBody::Proxy { .. } => true,
            NodeBody::Endpoint(e) => e.mode != Mode::Idle,
        }
    }

    /// The endpoint part, for single-socket nodes.
    pub fn endpoint(&self) -> Option<&EndpointSpec> {
        match &self.body {
            NodeBody::Endpoint(e) => Some(e),
            NodeBody::Proxy { .. } => None,
        }
    }
}

impl Scenario {
    /// Whether some node reads node `i`'s monitor (`connect = "<node>.monitor"`).
    pub fn monitor_is_read(&self, i: usize) -> bool {
        self.nodes.iter().any(|n| {
            n.endpoint()
                .is_some_and(|e| e.connect == Some(ConnectTarget::Monitor { node: i }))
        })
    }

    /// The deadline of the whole run: setup, traffic and every step, used by the parent as a
    /// backstop.
    pub fn total_deadline(&self) -> Duration {
        self.step_timeout * 2 + self.steps.iter().map(|s| s.timeout).sum::<Duration>()
    }

    /// Replaces every deadline (the CLI's `--timeout`).
    pub fn override_timeouts(&mut self, timeout: Duration) {
        self.step_timeout = timeout;
        for step in &mut self.steps {
            step.timeout = timeout;
        }
    }
}

/// Reads, parses and validates one scenario file. `root` is the folder names are relative to.
pub fn load(file: &Path, root: &Path) -> Result<Scenario, Vec<InputError>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![InputError::whole(
            file,
            format!("cannot read scenario file: {e}"),
        )]
    })?;
    parse(file, &text, &default_name(file, root))
}

/// Parses and validates scenario text that came from `file`; `default_name` is used when the
/// file has no `name`.
pub fn parse(file: &Path, text: &str, default_name: &str) -> Result<Scenario, Vec<InputError>> {
    let raw: raw::RawScenario = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        vec![match e.span() {
            Some(span) => InputError::at(file, text, span, message),
            None => InputError::whole(file, message),
        }]
    })?;
    validate::validate(file, text, default_name, raw)
}

/// The name a file gets when it has none: its path below `root` without `.toml`, or its stem
/// when it is not below `root`.
pub fn default_name(file: &Path, root: &Path) -> String {
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let (file_abs, root_abs) = (absolute(file), absolute(root));
    match file_abs.strip_prefix(&root_abs) {
        Ok(relative) => relative
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}
