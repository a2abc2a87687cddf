//! The private contract between the parent and a scenario's process. Parent → child: the
//! command line, [`RUN_SCENARIO`] and [`ChildArgs`], which renders itself
//! ([`ChildArgs::command_line`]) and is parsed back by clap from the same struct. Child →
//! parent: one JSON object per line on the child's stdout ([`ChildMessage`]), written as
//! things happen so that whatever was known survives a child that is killed. Only
//! [`crate::runner`] reads it; both directions are versioned by [`PROTOCOL_VERSION`], and a
//! mismatch is an error on either side. Never public.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::proof::EarlyVerdicts;
use crate::outcome::{Diagnostics, NodeReport, ProgramReport, SocketReport};
use crate::trace::LifecycleEvent;

/// Bumped whenever a message or an argument changes shape.
pub const PROTOCOL_VERSION: u32 = 5;

/// The hidden subcommand that runs one scenario in this process.
pub const RUN_SCENARIO: &str = "__run-scenario";

/// What the parent tells the child to run: the arguments of [`RUN_SCENARIO`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ChildArgs {
    /// The scenario file.
    #[arg(long)]
    pub file: PathBuf,
    /// The root its default name is relative to.
    #[arg(long)]
    pub root: PathBuf,
    /// Replaces every deadline.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// The run's own temporary folder (ipc endpoints).
    #[arg(long)]
    pub run_dir: PathBuf,
    /// The [`PROTOCOL_VERSION`] the parent speaks.
    #[arg(long)]
    pub protocol: u32,
    /// Whether hangs are proven at the start of their step.
    #[arg(long, value_enum, default_value_t)]
    pub early: EarlyVerdicts,
}

impl ChildArgs {
    /// The arguments that run this child: the subcommand, then every field as its flag.
    pub fn command_line(&self) -> Vec<OsString> {
        let mut line: Vec<OsString> = vec![
            RUN_SCENARIO.into(),
            "--file".into(),
            self.file.clone().into(),
            "--root".into(),
            self.root.clone().into(),
            "--run-dir".into(),
            self.run_dir.clone().into(),
            "--protocol".into(),
            self.protocol.to_string().into(),
        ];
        if let Some(timeout) = self.timeout {
            line.push("--timeout".into());
            line.push(humantime::format_duration(timeout).to_string().into());
        }
        line.push("--early".into());
        line.push(self.early.as_str().into());
        line
    }

    /// Whether the parent speaks this child's protocol; the message says both versions.
    pub fn check_protocol(&self) -> Result<(), String> {
        version_matches(self.protocol, "the parent termwatch")
    }
}

/// `Ok` when `theirs` is [`PROTOCOL_VERSION`]; otherwise what `who` speaks, in words.
pub fn version_matches(theirs: u32, who: &str) -> Result<(), String> {
    if theirs == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(format!(
            "{who} speaks protocol version {theirs}, this one {PROTOCOL_VERSION} (the termwatch binary changed during the run?)"
        ))
    }
}

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
        /// Program nodes, as they ended.
        #[serde(default)]
        programs: Vec<ProgramReport>,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Line {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        #[command(name = RUN_SCENARIO)]
        Run(ChildArgs),
    }

    fn round_trip(args: &ChildArgs) -> ChildArgs {
        let line = std::iter::once(OsString::from("termwatch")).chain(args.command_line());
        match Line::try_parse_from(line)
            .expect("the rendered line parses")
            .command
        {
            Sub::Run(parsed) => parsed,
        }
    }

    #[test]
    fn the_command_line_parses_back_to_the_same_args() {
        let mut args = ChildArgs {
            file: "scenarios/a b/ü.toml".into(),
            root: "scenarios".into(),
            timeout: None,
            run_dir: "/tmp/tw-x".into(),
            protocol: PROTOCOL_VERSION,
            early: EarlyVerdicts::On,
        };
        assert_eq!(round_trip(&args), args);
        args.timeout = Some(Duration::from_millis(1500));
        assert_eq!(round_trip(&args), args);
        for early in [EarlyVerdicts::Off, EarlyVerdicts::Verify] {
            args.early = early;
            assert_eq!(round_trip(&args), args);
        }
        assert!(args.check_protocol().is_ok());
        args.protocol = PROTOCOL_VERSION + 1;
        let error = args.check_protocol().unwrap_err();
        assert!(
            error.contains(&format!("version {}", PROTOCOL_VERSION + 1)),
            "{error}"
        );
    }
}
