//! Nothing of a run outlives it, however the parent dies (`kill -9`, a killed process group,
//! a closed terminal). Two mechanisms, neither of which polls:
//!
//! - [`die_with_parent`], applied to a `Command`: the child asks the kernel for SIGKILL when
//!   its parent dies (`PR_SET_PDEATHSIG`; the kernel sends it when the *thread* that forked
//!   exits, so spawn from a thread that waits for the child, as the runner's workers and the
//!   bench's main thread do). Used for scenario processes and bench roles.
//! - The [`Janitor`]: a helper process (the hidden [`JANITOR`] subcommand, in a process group
//!   of its own so a killed group does not take it along) whose stdin is a pipe that only the
//!   parent can write to. The parent tells it each process group (and each process a program
//!   started) as it starts them, and when they are gone; when the pipe closes (the parent
//!   exited or died), it kills every group and process still listed, then removes every run
//!   folder the parent made (a run folder's name says who made it: [`crate::run_dir`]).
//!
//! A janitor starting up also sweeps the run folders whose owner is provably gone (a run
//! whose janitor died with it), never a live run's.
//!
//! ```text
//! parent ──spawn (PDEATHSIG)──▶ scenario process (own group)
//!    └──pipe: group / forget ──▶ janitor (own group): at EOF kill groups, rm the parent's folders
//! ```

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::run_dir::{self, ProcessId};

/// The hidden subcommand that runs the janitor.
pub const JANITOR: &str = "__janitor";

/// Makes the process `command` starts die (SIGKILL) when this process dies. Also closes the
/// race where this process died before the child asked: the child then exits at once.
pub fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // getppid(2) and _exit(2), which are async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// What the parent tells the janitor, one JSON line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum Notice {
    /// A process group now runs a scenario.
    Group { pgid: i32 },
    /// The process group is reaped and killed.
    ForgetGroup { pgid: i32 },
    /// A process a program under test started, which may have left its group.
    Process { pid: i32 },
    /// That process is reaped.
    ForgetProcess { pid: i32 },
}

/// The parent's end of the janitor's pipe.
pub struct Janitor {
    pipe: Mutex<ChildStdin>,
    pid: i32,
}

static JANITOR_PROCESS: OnceLock<Option<Janitor>> = OnceLock::new();

impl Janitor {
    /// The run's janitor, started on first use with `executable` (this binary); `None` when it
    /// could not start (a warning is logged: the run goes on, without that backstop).
    pub fn get(executable: &Path) -> Option<&'static Janitor> {
        JANITOR_PROCESS
            .get_or_init(|| match Janitor::start(executable) {
                Ok(janitor) => Some(janitor),
                Err(e) => {
                    tracing::warn!("cannot start the janitor process: {e}; a killed run may leave processes and folders behind");
                    None
                }
            })
            .as_ref()
    }

    fn start(executable: &Path) -> std::io::Result<Janitor> {
        let mut child = Command::new(executable)
            .arg(JANITOR)
            .arg(ProcessId::me()?.render())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let pipe = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no pipe to the janitor"))?;
        tracing::debug!(pid = child.id(), "janitor started");
        let pid = child.id() as i32;
        // Never waited for: it outlives this process by design and exits when the pipe closes.
        drop(child);
        Ok(Janitor {
            pipe: Mutex::new(pipe),
            pid,
        })
    }

    fn tell(&self, notice: &Notice) {
        let Ok(mut line) = serde_json::to_vec(notice) else {
            return;
        };
        line.push(b'\n');
        let mut pipe = self.pipe.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = pipe.write_all(&line) {
            tracing::warn!("cannot reach the janitor: {e}");
        }
    }

    /// The janitor's pid (a child of this process that is no one else's business).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A scenario's process group started.
    pub fn group(&self, pgid: i32) {
        self.tell(&Notice::Group { pgid });
    }

    /// A scenario's process group is gone.
    pub fn forget_group(&self, pgid: i32) {
        self.tell(&Notice::ForgetGroup { pgid });
    }

    /// A process a program started (killed with the groups if the parent dies).
    pub fn process(&self, pid: i32) {
        self.tell(&Notice::Process { pid });
    }

    /// The process is reaped.
    pub fn forget_process(&self, pid: i32) {
        self.tell(&Notice::ForgetProcess { pid });
    }
}

/// The janitor's whole life, on behalf of `owner` (the run that started it): sweeps the run
/// folders of dead runs, then follows the run's notices on stdin; when stdin closes, kills
/// every group and process still listed and removes the run's folders.
pub fn janitor_main(owner: ProcessId) -> anyhow::Result<crate::errors::Ending> {
    for folder in run_dir::sweep(&std::env::temp_dir(), |o| !o.alive()) {
        tracing::debug!(folder = %folder.display(), "swept the run folder of a dead run");
    }
    let mut groups: Vec<i32> = Vec::new();
    let mut processes: Vec<i32> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str(&line) {
            Ok(Notice::Group { pgid }) => groups.push(pgid),
            Ok(Notice::ForgetGroup { pgid }) => groups.retain(|&g| g != pgid),
            Ok(Notice::Process { pid }) => processes.push(pid),
            Ok(Notice::ForgetProcess { pid }) => processes.retain(|&p| p != pid),
            Err(e) => tracing::warn!("janitor: unreadable notice {line:?}: {e}"),
        }
    }
    for pgid in groups {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    for pid in processes {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    // Every folder the run made that is still there: a run that ended normally removed its
    // own, so these are a dead run's (whatever moment it died at, even before its first
    // notice).
    run_dir::sweep(&std::env::temp_dir(), |o| o == owner);
    Ok(crate::errors::Ending::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        for notice in [
            Notice::Group { pgid: 12 },
            Notice::ForgetGroup { pgid: 12 },
            Notice::Process { pid: 13 },
            Notice::ForgetProcess { pid: 13 },
        ] {
            let line = serde_json::to_string(&notice).unwrap();
            assert_eq!(serde_json::from_str::<Notice>(&line).unwrap(), notice);
        }
    }
}
