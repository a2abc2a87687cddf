//! The guard: a small process (this binary, `__guard`) in a process group of its own that
//! kills a program's processes when termwatch dies without saying goodbye. It reads its stdin,
//! a pipe whose only writer is termwatch: `pid N` lines name processes the program started
//! (also those that left its group), `done` means "leave them"; the end of the pipe without
//! `done` (termwatch was killed) means "kill the group and every process named, and remove the
//! run folder". The kernel's parent-death signal already kills the program itself.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// A running guard of one program.
#[derive(Debug)]
pub struct Guard {
    child: Child,
    stdin: ChildStdin,
}

impl Guard {
    /// Starts a guard of the program whose process group is `pgid` and of its run folder.
    pub fn start(exe: &Path, pgid: i32, run_dir: &Path) -> std::io::Result<Guard> {
        let mut child = Command::new(exe)
            .arg("__guard")
            .arg("--pgid")
            .arg(pgid.to_string())
            .arg("--remove")
            .arg(run_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no pipe to the guard"))?;
        Ok(Guard { child, stdin })
    }

    /// The guard's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Names a process of the program that may leave its group.
    pub fn watch(&mut self, pid: i32) {
        let _ = writeln!(self.stdin, "pid {pid}");
    }

    /// Tells the guard everything is gone, and reaps it.
    pub fn disarm(mut self) {
        let _ = writeln!(self.stdin, "done");
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// The guard's whole life: reads its stdin to the end, then kills `pgid` and every process
/// named and removes `run_dir`, unless told `done`. Returns the exit code.
pub fn run(pgid: i32, run_dir: &Path) -> i32 {
    let mut pids = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line == "done" {
            return 0;
        }
        if let Some(pid) = line.strip_prefix("pid ").and_then(|p| p.parse().ok()) {
            pids.push(pid);
        }
    }
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = std::fs::remove_dir_all(run_dir);
    0
}
