//! Scenario files: what they mean once parsed and validated.
//!
//! Parsing runs in passes (see the `raw` and `validate` submodules): bytes → UTF-8 text (a bad
//! byte is reported at its line and column) → TOML → [`raw::RawScenario`] (spanned) →
//! [`Scenario`] (names resolved, defaults applied, numbers in range, endpoints parsed into
//! [`Endpoint`], every step checked against its node, and what the machine would refuse checked
//! against the [`Environment`]: ipc path lengths under `TMPDIR`, sockets per context, open
//! files). The rest of the crate only ever sees a [`Scenario`]. Name rules and the one function
//! that turns a name into a path are in [`names`]; finding files in folders is [`discover`]. The
//! format is documented in `docs/scenario-format.md`.

pub mod discover;
pub mod endpoint;
pub mod names;
pub mod raw;
mod stop;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::{
    ActionName, Engine, Expect, Mode, NodeKindName, OnEterm, OpenAt, SocketType, SteerCommand,
    Transport,
};

pub use endpoint::Endpoint;

use crate::errors::{InputError, Position};
pub use stop::StopHow;

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
    /// Where `name` is written in the file (none when the name comes from the file's path).
    pub name_position: Option<Position>,
    /// The file it came from.
    pub file: PathBuf,
    /// What it models.
    pub description: String,
    /// Where the case comes from (an issue, an article).
    pub reference: Option<String>,
    /// Commands that must succeed on this machine for the scenario to run (else it is
    /// skipped), e.g. `python3 -c "import zmq"`.
    pub requires: Vec<Requirement>,
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

/// A command that must exit 0 for its scenario to run: the program and its arguments, run in
/// the scenario file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement(pub Vec<String>);

impl std::fmt::Display for Requirement {
    /// The command as a shell would take it: `python3 -c 'import zmq'`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<String> = self
            .0
            .iter()
            .map(|word| {
                let plain = !word.is_empty()
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
                if plain {
                    word.clone()
                } else {
                    format!("'{}'", word.replace('\'', "'\\''"))
                }
            })
            .collect();
        f.write_str(&words.join(" "))
    }
}

/// A ZeroMQ context and the options applied before its first socket.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextSpec {
    /// Its name; `main` always exists.
    pub name: String,
    /// ZMQ_IO_THREADS, when set.
    pub io_threads: Option<i32>,
    /// ZMQ_MAX_SOCKETS, when set.
    pub max_sockets: Option<i32>,
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
    /// A program under test.
    Program(ProgramNode),
}

/// A program node: a process of its own, started at the end of setup.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramNode {
    /// The program and its arguments, each a list of literal text and endpoints.
    pub command: Vec<Vec<CommandPart>>,
    /// Variables added to its environment.
    pub env: Vec<(String, String)>,
    /// Its working folder, resolved against the scenario file's folder.
    pub cwd: Option<PathBuf>,
    /// The names of the endpoints termwatch chooses for it to bind (`binds`), in file order:
    /// each is the ipc file `<node>-<name>` in the run's folder, whatever the transport.
    pub binds: Vec<String>,
    /// When it counts as started.
    pub ready: Readiness,
    /// Stdout lines matching this regular expression become trace events.
    pub trace_lines: Option<String>,
}

/// A piece of a program's argument: text, the endpoint a node is bound to, or termwatch's own
/// executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandPart {
    /// Used as written.
    Text(String),
    /// `{node}`, `{proxy.frontend}` or `{program.bind}`: the bound endpoint, as resolved at setup.
    Endpoint {
        /// Index into [`Scenario::nodes`].
        node: usize,
        /// Which of its endpoints.
        side: Side,
    },
    /// `{termwatch}`: the path of the running termwatch executable.
    Termwatch,
}

/// When a program node counts as started (setup waits for it).
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// As soon as it is spawned.
    Spawned,
    /// At its first stdout line matching this regular expression.
    Line(String),
    /// This long after it is spawned.
    After(Duration),
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
    Explicit(Endpoint),
}

/// Which bound endpoint of a node a `connect` or a command placeholder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The one bind of a single-socket node.
    Bind,
    /// One socket of a proxy.
    Proxy(ProxySide),
    /// A program node's bind: index into [`ProgramNode::binds`].
    Program(usize),
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

impl ProxySide {
    /// The side's name in the format: `frontend`, `backend` or `capture`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxySide::Frontend => "frontend",
            ProxySide::Backend => "backend",
            ProxySide::Capture => "capture",
        }
    }
}

/// A connect address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTarget {
    /// The bound endpoint of another node (of a proxy's side, of a program's bind).
    Node {
        /// Index into [`Scenario::nodes`].
        node: usize,
        /// Which of its endpoints.
        side: Side,
    },
    /// Used as written.
    Explicit(Endpoint),
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
    /// Ask a program node to end (`how`), and wait until it and everything it started exit.
    Stop { node: usize, how: StopHow },
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
            | Action::SetLinger { node, .. }
            | Action::Stop { node, .. } => Some(node),
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
            NodeBody::Program(_) => false,
        }
    }

    /// How many sockets the node opens in its context: one per socket node, two for a proxy
    /// (four when steerable: its control pair), and for a monitored node two more per socket
    /// (libzmq's monitor socket and the reader's).
    pub fn socket_count(&self) -> usize {
        let sockets = match &self.body {
            NodeBody::Proxy { engine, capture } => {
                let control_pair = if *engine == Engine::Steerable { 2 } else { 0 };
                2 + control_pair + usize::from(capture.is_some())
            }
            NodeBody::Endpoint(_) => 1,
            NodeBody::Program(_) => 0,
        };
        if self.monitor { sockets * 3 } else { sockets }
    }

    /// The endpoint part, for single-socket nodes.
    pub fn endpoint(&self) -> Option<&EndpointSpec> {
        match &self.body {
            NodeBody::Endpoint(e) => Some(e),
            NodeBody::Proxy { .. } | NodeBody::Program(_) => None,
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

    /// Whether some node is a program (its hang report takes longer: stacks are captured).
    pub fn has_programs(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n.body, NodeBody::Program(_)))
    }

    /// Replaces every deadline (the CLI's `--timeout`).
    pub fn override_timeouts(&mut self, timeout: Duration) {
        self.step_timeout = timeout;
        for step in &mut self.steps {
            step.timeout = timeout;
        }
    }
}

/// What validation needs to know about the machine it will run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The temporary directory run folders (and automatic ipc endpoints) are made in.
    pub temp_dir: PathBuf,
    /// How many files a process may open (the soft `RLIMIT_NOFILE`, `ulimit -n`); `None` when
    /// unlimited or unknown. The scenario's process inherits it.
    pub open_files: Option<u64>,
}

impl Environment {
    /// This process's environment: `TMPDIR`, or `/tmp`.
    pub fn current() -> Self {
        Environment {
            temp_dir: std::env::temp_dir(),
            open_files: open_files_limit(),
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process.
fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer to a local.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Reads, parses and validates one scenario file. `root` is the folder names are relative to.
pub fn load(file: &Path, root: &Path) -> Result<Scenario, Vec<InputError>> {
    load_in(file, root, &Environment::current())
}

/// [`load`], checked against `environment`.
fn load_in(
    file: &Path,
    root: &Path,
    environment: &Environment,
) -> Result<Scenario, Vec<InputError>> {
    let bytes = std::fs::read(file).map_err(|e| {
        vec![InputError::whole(
            file,
            format!("cannot read scenario file: {e}"),
        )]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| vec![not_utf8(file, e.as_bytes(), &e)])?;
    parse_in(file, &text, &default_name(file, root), environment)
}

/// The error for a file that is not UTF-8, at the first bad byte.
fn not_utf8(file: &Path, bytes: &[u8], error: &std::string::FromUtf8Error) -> InputError {
    let at = error.utf8_error().valid_up_to();
    let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
    let position = Position::of_offset(valid, valid.len());
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    let line_end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    let line = String::from_utf8_lossy(&bytes[line_start..line_end]);
    let line = line.trim_end_matches('\r');
    InputError::at_position(
        file,
        position,
        Some(line),
        format!(
            "byte 0x{:02X} is not UTF-8: scenario files are UTF-8 text",
            bytes[at]
        ),
    )
}

/// Parses and validates scenario text that came from `file`; `default_name` is used when the
/// file has no `name`.
pub fn parse(file: &Path, text: &str, default_name: &str) -> Result<Scenario, Vec<InputError>> {
    parse_in(file, text, default_name, &Environment::current())
}

/// [`parse`], checked against `environment`.
fn parse_in(
    file: &Path,
    text: &str,
    default_name: &str,
    environment: &Environment,
) -> Result<Scenario, Vec<InputError>> {
    let raw: raw::RawScenario = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        vec![match e.span() {
            Some(span) => InputError::at(file, text, span, message),
            None => InputError::whole(file, message),
        }]
    })?;
    validate::validate(file, text, default_name, raw, environment)
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

#[cfg(test)]
mod fixture_tests {
    //! Every file and folder in `tests/fixtures/bad-input/` is rejected with exactly the errors
    //! in its `.expected` file (paths shown relative to that folder), checked with a long
    //! temporary directory and a small `ulimit -n`.

    use super::*;

    /// A temporary directory as long as some CI runners' (automatic ipc paths are checked in it).
    const LONG_TEMP_DIR: &str =
        "/home/runner/work/_temp/a-temporary-folder-with-a-long-name-chosen-by-the-ci-runner";

    /// A small `ulimit -n`, as some CI runners have.
    const OPEN_FILES: u64 = 1100;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input")
    }

    /// The errors of a fixture file, or of a fixture folder copied to a temporary folder with
    /// the symlinks its `.links` file lists (`link -> target`, relative to the folder), shown
    /// with paths relative to the folder they are in.
    fn errors_of(path: &Path) -> Vec<String> {
        let environment = Environment {
            temp_dir: PathBuf::from(LONG_TEMP_DIR),
            open_files: Some(OPEN_FILES),
        };
        let relative = |errors: Vec<InputError>, dir: &Path| {
            let prefix = format!("{}/", dir.display());
            errors
                .iter()
                .inspect(|e| assert!(e.render().len() < 2000, "{e}: rendered whole"))
                .map(|e| e.to_string().replace(&prefix, ""))
                .collect()
        };
        if !path.is_dir() {
            let errors = load_in(path, &fixtures(), &environment).expect_err("rejected");
            return relative(errors, &fixtures());
        }
        let temp = tempfile::tempdir().expect("a temporary folder");
        let copy = temp.path().join(path.file_name().expect("a folder name"));
        copy_folder(path, &copy);
        let links = std::fs::read_to_string(path.with_extension("links")).unwrap_or_default();
        for line in links.lines() {
            let (link, target) = line.split_once(" -> ").expect("`link -> target`");
            std::os::unix::fs::symlink(target, copy.join(link)).expect("a symlink");
        }
        let errors = discover::discover(&[copy], temp.path()).expect_err("rejected");
        relative(errors.0, temp.path())
    }

    fn copy_folder(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("a folder");
        for entry in std::fs::read_dir(from).expect("a fixture folder") {
            let path = entry.expect("an entry").path();
            let target = to.join(path.file_name().expect("a name"));
            if path.is_dir() {
                copy_folder(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("a copy");
            }
        }
    }

    #[test]
    fn every_bad_input_fixture_gives_its_expected_errors() {
        let dir = fixtures();
        let mut checked = 0;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the fixture folder")
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "toml"))
            .collect();
        entries.sort();
        for path in entries {
            let expected_file = path.with_extension("expected");
            let expected = std::fs::read_to_string(&expected_file)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
            let shown = errors_of(&path);
            assert_eq!(shown.join("\n"), expected.trim_end(), "{}", path.display());
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} fixtures");
    }
}
