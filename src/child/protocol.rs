//! The private child → parent wire protocol: one JSON object per line on the child's stdout,
//! written as things happen so that whatever was known survives a child that is killed.
//! Only [`crate::runner`] reads it; it is versioned by [`PROTOCOL_VERSION`] and never public.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::outcome::{Diagnostics, NodeReport, SocketReport};
use crate::trace::LifecycleEvent;

/// Bumped whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 2;

/// One line from the child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ChildMessage {
    /// The child is up.
    Hello {
        /// [`PROTOCOL_VERSION`] of the child.
        version: u32,
        /// The child's pid.
        pid: u32,
    },
    /// A phase (`setup`, `traffic`) or step began, with its deadline.
    PhaseStarted {
        /// Its label.
        label: String,
        /// Index of the step, `None` for the setup and traffic phases.
        step: Option<usize>,
        /// Its deadline in milliseconds.
        timeout_ms: u64,
    },
    /// A phase or step finished within its deadline.
    PhaseFinished {
        /// Its label.
        label: String,
        /// Index of the step, `None` for phases.
        step: Option<usize>,
        /// How long it took, in microseconds.
        duration_us: u64,
    },
    /// The watchdog declared a hang; the child exits right after.
    Hang {
        /// The label of the phase or step that outlived its deadline.
        label: String,
        /// Index of the step, `None` for phases.
        step: Option<usize>,
        /// How long it had run, in microseconds.
        elapsed_us: u64,
        /// What was open and what every thread was doing.
        diagnostics: Diagnostics,
        /// Why the step could never finish, when the child proved it (declared at once, or at
        /// the deadline with `--verify-proofs`).
        #[serde(default)]
        proof: Option<String>,
    },
    /// Every step finished; what was still open is a warning, not a hang.
    Finished {
        /// Sockets still open at exit.
        open_sockets: Vec<SocketReport>,
        /// Traffic counters.
        nodes: Vec<NodeReport>,
    },
    /// The scenario could not be set up or run.
    Failed {
        /// What went wrong.
        message: String,
    },
    /// A lifecycle event, sent as it is recorded.
    Trace {
        /// The event.
        event: Box<LifecycleEvent>,
    },
    /// A thread panicked; the child aborts right after.
    Panicked {
        /// The thread's name.
        thread: String,
        /// The panic message and location.
        message: String,
    },
}

/// Writes [`ChildMessage`]s to stdout, one whole line at a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Emitter;

impl Emitter {
    /// Sends one message and flushes it. A parent that went away is ignored: the child is
    /// about to be killed anyway.
    pub fn send(self, message: &ChildMessage) {
        let Ok(mut line) = serde_json::to_vec(message) else {
            return;
        };
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&line);
        let _ = out.flush();
    }
}
