//! Whether this machine has what a scenario `requires`: each command is run once per run (in
//! the scenario file's folder, with a deadline, killed with its group when it is over), and
//! its answer is kept for every scenario that lists the same command in the same folder.
//! A scenario with a failing command is skipped, with the first failure's reason.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::guard;
use crate::program::signal_name;
use crate::scenario::{Requirement, Scenario};

/// How long one command may take.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(10);
/// How much of a failing command's output is kept for its reason.
const OUTPUT_KEPT: usize = 4096;
/// How long a failed command's stderr is waited for once its group is killed (a process that
/// left the group may still hold it open).
const OUTPUT_WAIT: Duration = Duration::from_secs(1);

/// Where a command runs, and the command.
type Key = (PathBuf, Requirement);
/// A command's answer, computed by the first scenario that asks.
type Answer = Arc<OnceLock<Result<(), String>>>;

/// The answers of one run: each command in each folder is run at most once, also when several
/// scenarios ask for it at the same time.
#[derive(Debug, Default)]
pub struct Requirements {
    answers: Mutex<HashMap<Key, Answer>>,
}

impl Requirements {
    /// Why `scenario` cannot run here (the first of its commands that fails), or `None`.
    pub fn unmet(&self, scenario: &Scenario) -> Option<String> {
        let folder = scenario
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        scenario.requires.iter().find_map(|requirement| {
            let key = (folder.clone(), requirement.clone());
            let answer = {
                let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
                Arc::clone(answers.entry(key).or_default())
            };
            answer
                .get_or_init(|| check(requirement, &folder))
                .as_ref()
                .err()
                .map(|why| format!("requires `{requirement}`, which {why}"))
        })
    }
}

/// Runs `requirement` in `folder`: `Ok` when it exits 0 within [`CHECK_DEADLINE`], otherwise
/// what went wrong in words (`exited with code 1: ModuleNotFoundError: …`).
fn check(requirement: &Requirement, folder: &Path) -> Result<(), String> {
    let Some((program, args)) = requirement.0.split_first() else {
        return Err("names no program".to_owned());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(folder)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    guard::tie_to_run(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("could not start: `{program}` was not found"));
        }
        Err(e) => return Err(format!("could not start: {e}")),
    };
    let pgid = child.id() as i32;
    let stderr = child.stderr.take();
    let (said_tx, said_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(stderr) = stderr {
            let _ = stderr.take(OUTPUT_KEPT as u64).read_to_end(&mut kept);
        }
        let _ = said_tx.send(kept);
    });
    let deadline = Instant::now() + CHECK_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => break None,
        }
    };
    // Whatever the command started goes with it.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    let last_line = |bytes: Vec<u8>| {
        String::from_utf8_lossy(&bytes)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default()
    };
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => {
            let said = said_rx
                .recv_timeout(OUTPUT_WAIT)
                .map(last_line)
                .unwrap_or_default();
            Err(match s.signal() {
                Some(signal) => format!("was killed by {}{said}", signal_name(signal)),
                None => format!("exited with code {}{said}", s.code().unwrap_or(-1)),
            })
        }
        None => Err(format!(
            "did not finish within {}",
            humantime::format_duration(CHECK_DEADLINE)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(requires: &str) -> Scenario {
        let text = format!(
            "expect = \"clean\"\nrequires = {requires}\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nmode = \"idle\"\nconnect = \"tcp://127.0.0.1:1\"\n[[steps]]\naction = \"term\"\n"
        );
        crate::scenario::parse(Path::new("t.toml"), &text, "t").expect("valid")
    }

    #[test]
    fn commands_that_succeed_let_the_scenario_run() {
        let requirements = Requirements::default();
        assert_eq!(
            requirements.unmet(&scenario(r#"[["true"], ["sh", "-c", "exit 0"]]"#)),
            None
        );
    }

    #[test]
    fn the_first_failing_command_is_the_reason_with_its_last_line_of_stderr() {
        let requirements = Requirements::default();
        let why = requirements
            .unmet(&scenario(
                r#"[["true"], ["sh", "-c", "echo first >&2; echo 'no module zmq' >&2; exit 3"], ["false"]]"#,
            ))
            .expect("unmet");
        assert_eq!(
            why,
            "requires `sh -c 'echo first >&2; echo '\\''no module zmq'\\'' >&2; exit 3'`, which exited with code 3: no module zmq"
        );
    }

    #[test]
    fn a_killed_command_names_its_signal_and_an_escaped_holder_of_stderr_does_not_stall() {
        let started = Instant::now();
        let why = Requirements::default()
            .unmet(&scenario(
                // The escapee leaves the group, then kills the command, and holds its stderr
                // for 5 s.
                r#"[["sh", "-c", "setsid sh -c \"kill -TERM $$; exec sleep 5\" & wait"]]"#,
            ))
            .expect("unmet");
        assert!(why.ends_with("which was killed by SIGTERM"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(4), "{why}");
    }

    #[test]
    fn a_missing_program_is_named() {
        let why = Requirements::default()
            .unmet(&scenario(r#"[["termwatch-no-such-program"]]"#))
            .expect("unmet");
        assert!(
            why.contains("`termwatch-no-such-program` was not found"),
            "{why}"
        );
    }

    #[test]
    fn each_command_runs_once_per_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let counter = dir.path().join("count");
        let command = format!(r#"[["sh", "-c", "echo x >> {}"]]"#, counter.display());
        let requirements = Requirements::default();
        let s = scenario(&command);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| assert_eq!(requirements.unmet(&s), None));
            }
        });
        assert_eq!(requirements.unmet(&s), None);
        let runs = std::fs::read_to_string(&counter).expect("counter");
        assert_eq!(runs.lines().count(), 1);
    }
}
