//! The guard: a small process (this binary, `__guard`) in a process group of its own that
//! kills a program's process group when termwatch dies without saying goodbye. It reads its
//! stdin, a pipe whose only writer is termwatch: one byte means "done, leave it"; the end of
//! the pipe (termwatch was killed) means "kill the group". The kernel's parent-death signal
//! already kills the program itself; the guard gets what the program started.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The byte that disarms a guard.
const DONE: u8 = b'd';

/// A running guard of one process group.
#[derive(Debug)]
pub struct Guard {
    child: Child,
    stdin: ChildStdin,
}

impl Guard {
    /// Starts a guard of process group `pgid`.
    pub fn start(exe: &Path, pgid: i32) -> std::io::Result<Guard> {
        let mut child = Command::new(exe)
            .arg("__guard")
            .arg("--pgid")
            .arg(pgid.to_string())
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

    /// Tells the guard the group is gone, and reaps it.
    pub fn disarm(mut self) {
        let _ = self.stdin.write_all(&[DONE]);
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;

/// The guard's whole life: waits on stdin, kills `pgid` unless told it is done. Returns the
/// exit code.
pub fn run(pgid: i32) -> i32 {
    let mut byte = [0u8; 1];
    let done = matches!(std::io::stdin().read(&mut byte), Ok(1) if byte[0] == DONE);
    if !done {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    0
}
