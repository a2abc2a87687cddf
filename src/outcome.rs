//! What a scenario run produced: its outcome, the verdict against its expectation, how its
//! trace compared with its snapshot, and the diagnostics that explain a hang. Plain data: the
//! child sends the diagnostics, the parent ([`crate::runner`]) decides the verdict, reporters
//! only read them. The words for an outcome or an expectation (`hang at `term``) are made
//! here, by [`in_words`], and nowhere else.

use serde::{Deserialize, Serialize};

use crate::scenario::Expect;
use crate::scenario::Scenario;
use crate::stacks::StackCapture;
use crate::trace::RecordedTrace;
use crate::trace::normalize::{NormalizedTrace, normalize};
use crate::trace::snapshot::SnapshotVerdict;

/// How a scenario's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every phase and step finished within its deadline.
    Clean,
    /// A phase or step outlived its deadline.
    Hang,
    /// The scenario's process died (signal, abort, panic).
    Crash,
    /// The scenario could not be set up or run (the harness's or environment's fault).
    Error,
    /// The run was interrupted (Ctrl-C, SIGTERM) before it ended.
    Interrupted,
    /// The scenario did not run: a command of its `requires` failed (a tool or module this
    /// machine lacks). Neither passed nor failed.
    Skipped,
}

impl Outcome {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Clean => "clean",
            Outcome::Hang => "hang",
            Outcome::Crash => "crash",
            Outcome::Error => "error",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped => "skipped",
        }
    }

    /// Whether this outcome is what `expect` asks for.
    pub fn matches(self, expect: Expect) -> bool {
        matches!(
            (self, expect),
            (Outcome::Clean, Expect::Clean)
                | (Outcome::Hang, Expect::Hang)
                | (Outcome::Crash, Expect::Crash)
        )
    }
}

/// An outcome or an expectation in words: ``hang at `step` `` when a step is named, otherwise
/// `word` (`clean`, `hang`, `crash`, …).
pub fn in_words(word: impl std::fmt::Display, hang_step: Option<&str>) -> String {
    match hang_step {
        Some(step) => format!("hang at `{step}`"),
        None => word.to_string(),
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A socket that was still open (or still lingering) when the report was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketReport {
    /// The node it belongs to.
    pub node: String,
    /// Its role in the node: `socket`, `frontend`, `backend`, `control`, `steer`.
    pub role: String,
    /// ZeroMQ socket type, e.g. `SUB`.
    pub socket_type: String,
    /// `bind tcp://…` / `connect ipc://…`, as resolved.
    pub endpoints: Vec<String>,
    /// ZMQ_LINGER read back from the socket by its owner (-1 = forever).
    pub linger_ms: Option<i32>,
    /// The context it was created in.
    pub context: String,
    /// The thread that owns it (`main` or a node's thread).
    pub owner: String,
    /// `open`, or `closed` for a closed socket that may still be lingering.
    pub state: String,
    /// Messages the node sent (probes included), as counted by the harness.
    pub messages_sent: u64,
    /// Data messages the node received.
    pub messages_received: u64,
    /// Plain words: why it is still open and who could close it.
    pub why: String,
}

/// A thread of the scenario's process, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadReport {
    /// Kernel thread id.
    pub tid: i32,
    /// The thread's name (comm), at most 15 bytes.
    pub name: String,
    /// What the thread is for: the main thread, a node's thread, a libzmq background thread.
    pub role: String,
    /// Scheduler state in words (`sleeping`, `running`, …).
    pub state: String,
    /// The kernel function it waits in (wchan), when asleep.
    pub wchan: String,
    /// The system call it is in, decoded (`poll(1 fd, no timeout)`).
    pub syscall: String,
    /// Plain words: what it is blocked in.
    pub blocked_in: String,
}

/// Per node: how far its traffic got and what its loop was doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Node name.
    pub name: String,
    /// Messages it sent (data only).
    pub sent: u64,
    /// Messages it was to send.
    pub to_send: u64,
    /// Data messages it received.
    pub received: u64,
    /// `expect_messages`, if set.
    pub expected: Option<u64>,
    /// Its owner's state in words (`thread running`, `runtime stopped`, …).
    pub owner_state: String,
}

/// Everything known about a run that did not end cleanly, or about what it left open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// One paragraph a person can act on.
    pub summary: String,
    /// Sockets still open (or lingering) at the hang, or at the end of a clean run.
    pub open_sockets: Vec<SocketReport>,
    /// Every thread of the child at the hang.
    pub threads: Vec<ThreadReport>,
    /// Traffic counters and owner states per node.
    pub nodes: Vec<NodeReport>,
    /// The child's stderr (tail), when it crashed or failed.
    pub stderr: Option<String>,
    /// Programs under test (`termwatch exec`, `program` nodes): how each ended, its output and,
    /// at a hang, the stacks of every thread.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<ProgramReport>,
}

/// How a program's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum ProgramExit {
    /// It exited with this code.
    Code {
        /// The exit code.
        code: i32,
    },
    /// A signal ended it.
    Signal {
        /// The signal's number.
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
}

/// A program under test, as it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramReport {
    /// Its node, or `program` for `termwatch exec`.
    pub name: String,
    /// The command line it ran.
    pub command: Vec<String>,
    /// Its pid (also its process group).
    pub pid: i32,
    /// How it ended, in words (`exited with code 0`, `was killed by SIGKILL`).
    pub exit: String,
    /// How it ended, as data; `None` when it could not be waited for.
    pub exit_status: Option<ProgramExit>,
    /// The tail of its stdout.
    pub stdout: String,
    /// The tail of its stderr.
    pub stderr: String,
    /// Every thread of it and of what it started, captured at the hang before it was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<StackCapture>,
    /// At the hang, the preloaded probe's report (contexts, terms in progress, every socket
    /// still open with its type, endpoints, linger and creating thread), as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<serde_json::Value>,
}

/// How long one phase or step took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// `setup`, `traffic`, or the step's label.
    pub label: String,
    /// Wall time in milliseconds; for the step that hung, the time until the hang was declared.
    pub duration_ms: f64,
    /// Whether it finished within its deadline.
    pub finished: bool,
    /// The step's `expect_at_least`, in milliseconds.
    pub expect_at_least_ms: Option<f64>,
}

/// The verdict on one run of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The expected outcome.
    pub expect: Expect,
    /// The step expected to hang.
    pub expect_hang_at: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// The label of the step that hung.
    pub hang_step: Option<String>,
    /// For a hang: whether it was proven at its step's start (`true`) or declared when the
    /// deadline passed (`false`); absent for other outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven: Option<bool>,
    /// Whether the outcome met every expectation.
    pub passed: bool,
    /// Why it did not pass, one line each.
    pub failures: Vec<String>,
    /// Wall time of the whole child process, in milliseconds.
    pub duration_ms: f64,
    /// Phase and step timings.
    pub steps: Vec<StepTiming>,
    /// Diagnostics (open sockets, threads, a summary).
    pub diagnostics: Diagnostics,
    /// Processes, files or folders the run left behind (removed by the harness).
    pub leaks: Vec<String>,
    /// The run's lifecycle trace, as streamed by the child (not in the JSON report: see
    /// `termwatch trace`).
    #[serde(skip)]
    pub trace: RecordedTrace,
    /// How the trace compared with its snapshot, when it was compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotVerdict>,
}

impl ScenarioResult {
    /// What happened, in words: `clean`, `hang at `term``, `crash`, …
    pub fn got(&self) -> String {
        in_words(self.outcome, self.hang_step.as_deref())
    }

    /// What was expected, in words: `clean`, `hang`, `hang at `term``, …
    pub fn expected(&self) -> String {
        in_words(self.expect, self.expect_hang_at.as_deref())
    }

    /// This run's trace, normalized for `scenario`.
    pub fn normalized_trace(&self, scenario: &Scenario) -> NormalizedTrace {
        normalize(
            scenario,
            &self.trace.events,
            &self.got(),
            self.hang_step.as_deref(),
            &self.trace.redactions,
        )
    }
}
