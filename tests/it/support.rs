//! Helpers shared by every test module: the one way to build a `termwatch` command, waiting
//! for a condition, and the live processes of the machine (to prove nothing is left behind).

use std::path::Path;
use std::time::{Duration, Instant};

/// The crate's folder: tests run `termwatch` from here, so `scenarios/` and `snapshots/` are
/// the shipped ones.
pub const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

/// A `termwatch` that has not ended by then is stuck: far above any deadline a test sets, and
/// above the bench's runs; the test fails and kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The built `termwatch`, run from [`WORKSPACE`], as a plain command: for tests that start it,
/// signal it and reap it themselves (each with its own bound).
pub fn termwatch_process() -> std::process::Command {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("termwatch"));
    command.current_dir(WORKSPACE);
    command
}

/// [`termwatch_process`] for a run that is waited for, bounded by [`COMMAND_TIMEOUT`].
pub fn termwatch() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::from_std(termwatch_process());
    command.timeout(COMMAND_TIMEOUT);
    command
}

/// A path of the crate's folder.
pub fn workspace_path(relative: &str) -> std::path::PathBuf {
    Path::new(WORKSPACE).join(relative)
}

/// Python with pyzmq: `TERMWATCH_PYTHON` (set by `.ci/run`), else `target/venv/bin/python`.
/// When there is none, says in one line that `what` is skipped.
pub fn python(what: &str) -> Option<std::path::PathBuf> {
    let candidate = std::env::var_os("TERMWATCH_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_path("target/venv/bin/python"));
    let works = std::process::Command::new(&candidate)
        .args(["-c", "import zmq"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!(
            "note: no Python with pyzmq at {} (set TERMWATCH_PYTHON): {what} skipped",
            candidate.display()
        );
    }
    works.then_some(candidate)
}

/// Polls `condition` until it holds; false after `timeout`.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// A live (not zombie) process, as /proc shows it.
pub struct Process {
    /// Its pid.
    pub pid: i32,
    /// Its parent.
    pub parent: i32,
    /// Its process group.
    pub group: i32,
    /// Its command line, arguments separated by spaces.
    pub cmdline: String,
    /// Its environment, `NAME=value` entries separated by NUL bytes.
    pub environ: String,
}

impl Process {
    /// Whether its environment holds exactly `entry` (`NAME=value`).
    pub fn has_env(&self, entry: &str) -> bool {
        self.environ.split('\0').any(|e| e == entry)
    }
}

/// Every live process this test can see.
pub fn live_processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.first() == Some(&"Z") {
                return None;
            }
            let read = |what: &str| {
                std::fs::read(format!("/proc/{pid}/{what}"))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            Some(Process {
                pid,
                parent: fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0),
                group: fields.get(2).and_then(|g| g.parse().ok()).unwrap_or(0),
                cmdline: read("cmdline").replace('\0', " "),
                environ: read("environ"),
            })
        })
        .collect()
}
