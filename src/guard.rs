//! Nothing of a run outlives it, however the parent dies (`kill -9`, a killed process group,
//! a closed terminal). Two mechanisms, neither of which polls:
//!
//! - [`die_with_parent`], applied to a `Command`: the child asks the kernel for SIGKILL when
//!   its parent dies (`PR_SET_PDEATHSIG`; the kernel sends it when the *thread* that forked
//!   exits, so spawn from a thread that waits for the child, as the runner's workers and the
//!   bench's main thread do). Used for scenario processes and bench roles.
//! - The [`Janitor`]: a helper process (the hidden [`JANITOR`] subcommand, in a process group
//!   of its own so a killed group does not take it along) whose stdin is a pipe that only the
//!   parent can write to. The parent tells it each run folder and process group as it makes
//!   them, and when they are gone; when the pipe closes (the parent exited or died), it kills
//!   every group still listed (with anything a scenario started) and removes every folder.
//!
//! Each run folder holds an [`OWNER_FILE`] naming the run's process (pid and start time); a
//! janitor starting up sweeps the folders whose owner is provably gone, never a live run's.
//!
//! ```text
//! parent ──spawn (PDEATHSIG)──▶ scenario process (own group)
//!    └──pipe: folder / group / forget ──▶ janitor (own group): at EOF kill groups, rm folders
//! ```

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::scenario::endpoint::RUN_DIR_PREFIX;

/// The hidden subcommand that runs the janitor.
pub const JANITOR: &str = "__janitor";

/// The file in each run folder that names the run it belongs to.
pub const OWNER_FILE: &str = ".termwatch-owner";

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
    /// A run folder now exists.
    Folder { path: PathBuf },
    /// The run folder is removed.
    ForgetFolder { path: PathBuf },
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

    /// A run folder was made.
    pub fn folder(&self, path: &Path) {
        self.tell(&Notice::Folder {
            path: path.to_owned(),
        });
    }

    /// A run folder was removed.
    pub fn forget_folder(&self, path: &Path) {
        self.tell(&Notice::ForgetFolder {
            path: path.to_owned(),
        });
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

/// A process, named so that a reused pid is not mistaken for it: its pid and start time (in
/// clock ticks since boot, from /proc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcessId {
    pid: u32,
    start_time: u64,
}

impl ProcessId {
    fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Field 22, counted after the parenthesised command name (which may hold spaces).
        let (_, rest) = stat.rsplit_once(')')?;
        let start_time = rest.split_whitespace().nth(19)?.parse().ok()?;
        Some(ProcessId { pid, start_time })
    }

    fn render(self) -> String {
        format!("{} {}\n", self.pid, self.start_time)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        Some(ProcessId {
            pid: words.next()?.parse().ok()?,
            start_time: words.next()?.parse().ok()?,
        })
    }

    /// Whether this very process still exists (zombies included: its owner may reap it yet).
    fn alive(self) -> bool {
        ProcessId::of(self.pid) == Some(self)
    }
}

/// Marks a new run folder as this process's, for [`sweep`].
pub fn claim(folder: &Path) -> std::io::Result<()> {
    let me = ProcessId::of(std::process::id())
        .ok_or_else(|| std::io::Error::other("cannot read this process's start time"))?;
    std::fs::write(folder.join(OWNER_FILE), me.render())
}

/// Removes the run folders under `temp` whose owner is provably gone: the folder has an
/// [`OWNER_FILE`] and the process it names no longer exists. Returns the folders removed.
pub fn sweep(temp: &Path) -> Vec<PathBuf> {
    sweep_where(temp, |owner| !owner.alive())
}

/// Removes the run folders under `temp` whose [`OWNER_FILE`] names an owner for which `gone`
/// holds. Returns the folders removed.
fn sweep_where(temp: &Path, gone: impl Fn(ProcessId) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(RUN_DIR_PREFIX))
        })
        .map(|e| e.path())
        .filter(|folder| {
            let owner = std::fs::read_to_string(folder.join(OWNER_FILE)).ok();
            owner
                .as_deref()
                .and_then(ProcessId::parse)
                .is_some_and(&gone)
        })
        .filter(|folder| std::fs::remove_dir_all(folder).is_ok())
        .collect()
}

/// The janitor's whole life: sweeps the run folders of dead runs, then follows the parent's
/// notices on stdin; when stdin closes, kills every group and removes every folder still
/// listed.
pub fn janitor_main() -> anyhow::Result<crate::errors::Ending> {
    let parent = ProcessId::of(std::os::unix::process::parent_id());
    for folder in sweep(&std::env::temp_dir()) {
        tracing::debug!(folder = %folder.display(), "swept the run folder of a dead run");
    }
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut groups: Vec<i32> = Vec::new();
    let mut processes: Vec<i32> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str(&line) {
            Ok(Notice::Folder { path }) => folders.push(path),
            Ok(Notice::ForgetFolder { path }) => folders.retain(|f| f != &path),
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
    for folder in folders {
        let _ = std::fs::remove_dir_all(folder);
    }
    // A folder the parent claimed but died before announcing: its stdin is closed, so every
    // folder it still owns is left over (a parent that ended normally has removed its own).
    if let Some(parent) = parent {
        sweep_where(&std::env::temp_dir(), |owner| owner == parent);
    }
    Ok(crate::errors::Ending::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        for notice in [
            Notice::Folder {
                path: "/tmp/tw-a".into(),
            },
            Notice::ForgetFolder {
                path: "/tmp/tw-a".into(),
            },
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
    fn only_folders_of_dead_owners_are_swept() {
        let temp = tempfile::tempdir().unwrap();
        let folder = |name: &str, owner: Option<String>| {
            let path = temp.path().join(name);
            std::fs::create_dir(&path).unwrap();
            if let Some(owner) = owner {
                std::fs::write(path.join(OWNER_FILE), owner).unwrap();
            }
            path
        };
        let me = ProcessId::of(std::process::id()).unwrap();
        let live = folder("tw-live", Some(me.render()));
        let reused_pid = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        let dead = folder("tw-dead", Some(reused_pid.render()));
        let unowned = folder("tw-unowned", None);
        let other = folder("other", Some(reused_pid.render()));
        assert_eq!(sweep(temp.path()), vec![dead.clone()]);
        assert!(live.exists() && unowned.exists() && other.exists() && !dead.exists());
        // What the janitor does once its parent's pipe closed: the parent's own folders go.
        assert_eq!(
            sweep_where(temp.path(), |owner| owner == me),
            vec![live.clone()]
        );
        assert!(!live.exists() && unowned.exists() && other.exists());
    }
}
