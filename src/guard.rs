//! Nothing of a run outlives it, however the parent dies (`kill -9`, a killed process group,
//! a closed terminal). Two mechanisms, neither of which polls while the run goes on:
//!
//! - [`tie_to_run`], applied to every `Command` that starts a process of the run (a scenario
//!   process, a program under test, a bench role or external proxy, a `requires` check):
//!   - the child asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`; the
//!     kernel sends it when the *thread* that forked exits, so spawn from a thread that waits
//!     for the child, as the runner's workers and the bench's main thread do);
//!   - the child carries the run's marker, [`RUN_VARIABLE`]`=<owner>` (the owner: this
//!     process's pid and start time, [`ProcessId`]), which everything it starts inherits.
//!     A termwatch started by a run marks what it starts with its own identity instead, so
//!     each janitor kills only its own run's processes.
//! - The [`Janitor`]: a helper process (the hidden [`JANITOR`] subcommand, in a process group
//!   of its own so a killed group does not take it along, and carrying no marker so another
//!   run's janitor does not kill it before it is done) whose stdin is a pipe that only the
//!   parent can write to. The parent tells it each process group (and each process a program
//!   started) as it starts them, and when they are gone; when the pipe closes (the parent
//!   exited or died), it kills every group and process still listed, then every process of
//!   this user that carries the run's marker (one that left its group between two of the
//!   run's looks at its tree, such as a daemon that forked and called `setsid`), looking again
//!   until two looks in a row find none or a second has passed, then removes every run folder
//!   the parent made (a run folder's name says who made it: [`crate::run_dir`]).
//!
//! A janitor starting up also sweeps the run folders whose owner is provably gone (a run
//! whose janitor died with it), never a live run's.
//!
//! The marker is read from /proc/PID/environ, the environment a process was given when it
//! exec'd: a process that exec'd with that variable removed (`env -i`) is not found by it.
//!
//! ```text
//! parent ──spawn (PDEATHSIG, TERMWATCH_RUN=owner)──▶ scenario process (own group) ─▶ …
//!    └──pipe: group / forget ──▶ janitor (own group): at EOF kill groups and processes,
//!                                then the owner's marked processes; rm the parent's folders
//! ```

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::run_dir::{self, ProcessId};

/// The hidden subcommand that runs the janitor.
pub const JANITOR: &str = "__janitor";

/// The variable that marks every process a run starts, and everything those start: its value
/// is the run's owner ([`ProcessId::render`]), whose janitor kills what still carries it.
pub const RUN_VARIABLE: &str = "TERMWATCH_RUN";

/// How long a janitor whose run ended keeps looking for processes with the run's marker: a
/// marked process may fork while it is being killed, and the next look finds the child.
const MARKED_FOR: Duration = Duration::from_secs(1);
/// The pause between two looks.
const MARKED_EVERY: Duration = Duration::from_millis(10);

/// This process as the owner of its run (what its janitor is told and its marker says);
/// `None` when /proc cannot say.
fn run_owner() -> Option<ProcessId> {
    static OWNER: OnceLock<Option<ProcessId>> = OnceLock::new();
    *OWNER.get_or_init(|| ProcessId::me().ok())
}

/// Ties the process `command` starts to this run: it dies (SIGKILL) when this process dies,
/// and it carries the run's marker, so that whatever it starts, wherever that goes, the
/// janitor finds it. Also closes the race where this process died before the child asked to
/// die with it: the child then exits at once.
pub fn tie_to_run(command: &mut Command) {
    if let Some(owner) = run_owner() {
        command.env(RUN_VARIABLE, owner.render());
    }
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
        let owner = run_owner()
            .ok_or_else(|| std::io::Error::other("cannot read this process's start time"))?;
        let mut child = Command::new(executable)
            .arg(JANITOR)
            .arg(owner.render())
            // Not a process of any run: the janitor of a run that started this one must not
            // kill it before it has killed this run's processes.
            .env_remove(RUN_VARIABLE)
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
/// every group and process still listed, then the processes that carry the run's marker, and
/// removes the run's folders.
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
    let killed = kill_marked(owner);
    tracing::debug!(killed, "killed the processes that carried the run's marker");
    // Every folder the run made that is still there: a run that ended normally removed its
    // own, so these are a dead run's (whatever moment it died at, even before its first
    // notice).
    run_dir::sweep(&std::env::temp_dir(), |o| o == owner);
    Ok(crate::errors::Ending::Success)
}

/// Kills (SIGKILL) every process that carries `owner`'s marker, this one aside, and looks
/// again until two looks in a row find none (a process in the middle of an exec shows no
/// environment for a moment) or [`MARKED_FOR`] has passed; returns how many kills it sent.
fn kill_marked(owner: ProcessId) -> usize {
    let marker = owner.render();
    let me = std::process::id() as i32;
    let deadline = Instant::now() + MARKED_FOR;
    let mut killed = 0;
    let mut quiet_looks = 0;
    loop {
        let marked: Vec<i32> = crate::procfs::processes_with_variable(RUN_VARIABLE, &marker)
            .into_iter()
            .filter(|&pid| pid != me)
            .collect();
        quiet_looks = if marked.is_empty() {
            quiet_looks + 1
        } else {
            0
        };
        if quiet_looks == 2 || Instant::now() >= deadline {
            return killed;
        }
        for pid in marked {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            killed += 1;
        }
        std::thread::sleep(MARKED_EVERY);
    }
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

    #[test]
    fn the_marked_processes_of_a_run_and_what_they_started_are_killed_and_only_those() {
        // An owner no process is: this process's pid with another start time.
        let me = run_owner().unwrap();
        let owner = ProcessId::parse(&format!("{}0", me.render())).unwrap();
        let start = |marker: Option<String>, script: &str| {
            let mut command = Command::new("sh");
            command.args(["-c", script]);
            if let Some(marker) = marker {
                command.env(RUN_VARIABLE, marker);
            }
            command.spawn().unwrap()
        };
        // A marked shell that has started two marked sleepers of its own.
        let mut marked = start(Some(owner.render()), "sleep 30 & sleep 30 & wait");
        let mut other_run = start(Some(me.render()), "exec sleep 30");
        let mut unmarked = start(None, "exec sleep 30");
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::procfs::processes_with_variable(RUN_VARIABLE, &owner.render()).len() < 3
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed = kill_marked(owner);
        let still_running = [other_run.try_wait().unwrap(), unmarked.try_wait().unwrap()];
        for child in [&mut other_run, &mut unmarked] {
            let _ = child.kill();
            let _ = child.wait();
        }
        let status = marked.wait().unwrap();
        assert!(killed >= 3, "{killed}");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert!(crate::procfs::processes_with_variable(RUN_VARIABLE, &owner.render()).is_empty());
        assert_eq!(still_running, [None, None]);
    }
}
