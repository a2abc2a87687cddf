//! Programs under test: one user program started in a process group of its own with its stdin
//! a pipe and its stdout/stderr captured (bounded, the tail kept), every process it starts
//! tracked, and everything killed and reaped at the end: also when termwatch itself dies, by
//! the kernel (the parent-death signal) and by the run's janitor, told the program's group
//! and every process it started (see [`crate::guard`]).
//!
//! ```text
//! termwatch (child subreaper) ─spawn─▶ program (own pgid, PDEATHSIG) ─fork─▶ its children
//!      └──pipe: group, processes ──▶ janitor (own group): at EOF kill them
//! ```
//! Both `termwatch exec` and `kind = "program"` scenario nodes run programs through this.

mod tree;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::guard::{Janitor, tie_to_run};
use crate::probe::{ProbeMonitor, ProbeReport, ProbeSetup};
use crate::stacks::StackCapture;

/// How much of each output stream is kept.
pub const OUTPUT_TAIL: usize = 16 * 1024;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Variables added to termwatch's environment.
    pub env: Vec<(String, String)>,
    /// Its working folder (default: termwatch's).
    pub cwd: Option<PathBuf>,
}

impl ProgramSpec {
    /// The command line as one string, for reports.
    pub fn display(&self) -> String {
        self.command.join(" ")
    }
}

/// Makes this process the reaper of every orphan among its descendants, so that a process a
/// program started and left behind is still seen, killed and reaped here.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// The processes this process started on purpose (programs and their guards): a process
/// reparented here that is not one of them was left behind by a program.
static OWN_CHILDREN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// The bounded tail of one output stream.
#[derive(Debug, Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > OUTPUT_TAIL {
            self.0.drain(..self.0.len() - OUTPUT_TAIL);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// How long the end of a killed program's output may take to arrive.
const STREAMS_GRACE: Duration = Duration::from_millis(500);

/// A line the program wrote on stdout.
pub type Line = String;

/// A running program.
pub struct Program {
    child: Child,
    /// Its pid, which is also its process group id.
    pub pid: i32,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Tail>>,
    stderr: Arc<Mutex<Tail>>,
    lines: Receiver<Line>,
    /// One message from each stream's reader when it reached the end of its stream.
    streams_ended: Receiver<()>,
    /// How many streams are read.
    streams: usize,
    /// Every process seen in its tree or group, the program itself included.
    seen: BTreeSet<i32>,
    status: Option<ExitStatus>,
    janitor: Option<&'static Janitor>,
    /// Whether everything was killed and reaped.
    done: bool,
    probe: Option<ProbeMonitor>,
    /// Why the probe is not loaded, when it is not.
    pub probe_note: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Copies one stream into its tail; stdout lines also go to `lines`; says on `ended` when the
/// stream is at its end.
fn drain(
    mut pipe: impl Read + Send + 'static,
    tail: Arc<Mutex<Tail>>,
    lines: Option<Sender<Line>>,
    ended: Sender<()>,
) {
    std::thread::spawn(move || {
        copy(&mut pipe, &tail, lines);
        let _ = ended.send(());
    });
}

fn copy(pipe: &mut impl Read, tail: &Mutex<Tail>, lines: Option<Sender<Line>>) {
    match lines {
        Some(lines) => {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                lock(tail).push(&line);
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                let _ = lines.send(text);
                line.clear();
            }
        }
        None => {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lock(tail).push(&buf[..n]);
            }
        }
    }
}

impl Program {
    /// Starts `spec` with the probe preloaded; `exe` is this binary (the janitor runs it);
    /// `run_dir` is a private folder the probe library is written to. An error means nothing
    /// runs.
    pub fn spawn(spec: &ProgramSpec, exe: &Path, run_dir: &Path) -> std::io::Result<Program> {
        let (program, args) = spec
            .command
            .split_first()
            .ok_or_else(|| std::io::Error::other("the command is empty"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        tie_to_run(&mut command);
        let parent = std::process::id() as libc::c_ulong;
        // SAFETY: only prctl(2), async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Our descendants (gdb, py-spy) may trace it under Yama's default scope.
                libc::prctl(libc::PR_SET_PTRACER, parent, 0, 0, 0);
                Ok(())
            });
        }
        let janitor = Janitor::get(exe);
        if let Some(janitor) = janitor {
            lock(&OWN_CHILDREN).insert(janitor.pid());
        }
        let probe = ProbeSetup::new(run_dir).and_then(|probe| {
            probe.configure(&mut command)?;
            Ok(probe)
        });
        let mut child = command.spawn()?;
        let pid = child.id() as i32;
        lock(&OWN_CHILDREN).insert(pid);
        let (probe, probe_note) = match probe.and_then(|p| p.start(pid as u32)) {
            Ok(monitor) => (Some(monitor), None),
            Err(e) => (
                None,
                Some(format!(
                    "the probe could not be loaded: {e}; no socket report"
                )),
            ),
        };
        if let Some(janitor) = janitor {
            janitor.group(pid);
        }
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let (tx, lines) = mpsc::channel();
        let (ended, streams_ended) = mpsc::channel();
        let mut streams = 0;
        if let Some(pipe) = child.stdout.take() {
            drain(pipe, Arc::clone(&stdout), Some(tx), ended.clone());
            streams += 1;
        }
        if let Some(pipe) = child.stderr.take() {
            drain(pipe, Arc::clone(&stderr), None, ended);
            streams += 1;
        }
        Ok(Program {
            stdin: child.stdin.take(),
            child,
            pid,
            stdout,
            stderr,
            lines,
            streams_ended,
            streams,
            seen: BTreeSet::from([pid]),
            status: None,
            janitor,
            done: false,
            probe,
            probe_note,
        })
    }

    /// Stdout lines written since the last call.
    pub fn new_lines(&self) -> Vec<Line> {
        self.lines.try_iter().collect()
    }

    /// Stdout lines not yet taken, after the program exited: waits for the reading thread to
    /// reach the end of stdout (every writer closed it), or `within` at most (a process the
    /// program started may keep stdout open). A line written just before the exit may not have
    /// been read when the exit is seen.
    pub fn last_lines(&self, within: Duration) -> Vec<Line> {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    /// The program's own exit status, once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Processes of the program still alive: itself and every process it started (in its group
    /// or below it), lowest pid first. Reaps those that ended and were reparented here.
    pub fn alive(&mut self) -> Vec<i32> {
        self.exited();
        let known = self.seen.len();
        let own = lock(&OWN_CHILDREN).clone();
        let alive = tree::alive_descendants(self.pid, &mut self.seen, &own);
        if self.seen.len() > known
            && let Some(janitor) = self.janitor
        {
            for &pid in alive.iter().filter(|&&p| p != self.pid) {
                janitor.process(pid);
            }
        }
        tree::reap_orphans(&self.seen, self.pid);
        alive
    }

    /// Sends `signal` to the program's process group (as a terminal's Ctrl-C would).
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        killpg(Pid::from_raw(self.pid), signal)
    }

    /// Closes the program's stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills every process of the program and reaps it; returns the program's status and the
    /// processes that were still alive (`pid (comm)`), the program itself left out.
    pub fn kill_all(&mut self) -> (Option<ExitStatus>, Vec<String>) {
        let alive = self.alive();
        let others: Vec<String> = alive
            .iter()
            .filter(|&&p| p != self.pid)
            .map(|&p| format!("{p} ({})", tree::comm(p)))
            .collect();
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        for &pid in &alive {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        // Orphans end a moment after the kill; reap them before saying what is left.
        for _ in 0..200 {
            if self.alive().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // What the program wrote just before it ended may still be in the pipes: read it all
        // (the pipes end once every process that held them is gone; one that escaped the
        // group may hold them longer, so not forever).
        let deadline = Instant::now() + STREAMS_GRACE;
        for _ in 0..std::mem::take(&mut self.streams) {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.streams_ended.recv_timeout(left).is_err() {
                break;
            }
        }
        if let Some(probe) = self.probe.take() {
            probe.finish(Duration::from_millis(200));
        }
        if let Some(janitor) = self.janitor {
            janitor.forget_group(self.pid);
            for &pid in self.seen.iter().filter(|&&p| p != self.pid) {
                janitor.forget_process(pid);
            }
        }
        lock(&OWN_CHILDREN).remove(&self.pid);
        self.done = true;
        (self.status, others)
    }

    /// What the probe knows now, with the Python thread names of `stacks`; `None` without a
    /// probe.
    pub fn probe_report(&self, stacks: &StackCapture) -> Option<ProbeReport> {
        self.probe.as_ref().map(|monitor| {
            monitor.report(|view| {
                for process in &stacks.processes {
                    for thread in &process.threads {
                        if let Some(name) = &thread.python_name {
                            view.name_thread(process.pid, thread.tid, name.clone());
                        }
                    }
                }
            })
        })
    }

    /// The tails of stdout and stderr so far.
    pub fn output(&self) -> (String, String) {
        (lock(&self.stdout).text(), lock(&self.stderr).text())
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if !self.done {
            self.kill_all();
        }
    }
}

/// An exit status as data.
pub fn exit_of(status: ExitStatus) -> crate::outcome::ProgramExit {
    match status.code() {
        Some(code) => crate::outcome::ProgramExit::Code { code },
        None => crate::outcome::ProgramExit::Signal {
            signal: status.signal().unwrap_or(0),
            core_dumped: status.core_dumped(),
        },
    }
}

/// An exit status in words: `exited with code 3`, `was killed by SIGSEGV (core dumped)`.
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!(
            "was killed by {}{}",
            signal_name(signal),
            if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        (None, None) => "ended".to_owned(),
    }
}

/// `SIGINT`, or `signal 42`.
pub fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}
