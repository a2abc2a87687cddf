//! Where a program hung: every thread of every process it started, with native frames (gdb),
//! Python frames (py-spy) and what /proc says (name, state, wchan, system call), then the same
//! in plain words ("main thread blocked in zmq_ctx_term (pyzmq `Context.term`, app.py:16):
//! libzmq waits for sockets that are still open"). A missing tool or a refused ptrace is one
//! line in [`StackCapture::notes`]; what is left is still reported.

mod explain;
pub mod gdb;
pub mod pyspy;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::procfs;

/// One stack frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Function name (`zmq_ctx_term`, `Context.term`, `??` when unknown).
    pub function: String,
    /// `file:line`, or the library it is in.
    pub location: Option<String>,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(at) => write!(f, "{} ({at})", self.function),
            None => f.write_str(&self.function),
        }
    }
}

/// One thread of a program's process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadStack {
    /// Kernel thread id.
    pub tid: i32,
    /// Kernel name (comm).
    pub name: String,
    /// Its Python `threading` name, when py-spy saw it.
    pub python_name: Option<String>,
    /// Scheduler state in words.
    pub state: String,
    /// Kernel wait channel.
    pub wchan: String,
    /// The system call it is in, decoded.
    pub syscall: String,
    /// Native frames, innermost first (empty without gdb).
    pub native: Vec<Frame>,
    /// Python frames, innermost first (empty without py-spy or for non-Python threads).
    pub python: Vec<Frame>,
}

impl ThreadStack {
    /// The name a person knows it by: the Python name when there is one.
    pub fn display_name(&self) -> &str {
        self.python_name.as_deref().unwrap_or(&self.name)
    }
}

/// One process of a program: the program itself or something it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStacks {
    /// Its pid.
    pub pid: i32,
    /// Its command line.
    pub command: String,
    /// Every thread, lowest tid first.
    pub threads: Vec<ThreadStack>,
}

/// Everything captured at a hang.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackCapture {
    /// Every process, the program first.
    pub processes: Vec<ProcessStacks>,
    /// What could not be captured and why, one line each.
    pub notes: Vec<String>,
    /// Plain words: what each thread that matters is blocked in.
    pub explanation: Vec<String>,
}

/// The external tools found on this machine.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    /// `gdb`, for native frames.
    pub gdb: Option<PathBuf>,
    /// `py-spy`, for Python frames.
    pub py_spy: Option<PathBuf>,
}

impl Tools {
    /// Looks for gdb on PATH, and for py-spy next to the program's own executable (its virtual
    /// environment), in the `target/venv` beside this binary, then on PATH.
    pub fn find(program: &str) -> Self {
        let beside_program = which(program)
            .and_then(|p| p.parent().map(|d| d.join("py-spy")))
            .filter(|p| is_executable(p));
        let beside_termwatch = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("venv/bin/py-spy")))
            .filter(|p| is_executable(p));
        Tools {
            gdb: which("gdb"),
            py_spy: beside_program
                .or(beside_termwatch)
                .or_else(|| which("py-spy")),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` as the shell would find it (a name with a slash is taken as a path).
fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Runs a tool with its output captured, killed if it takes longer than `budget`.
fn run_bounded(mut command: Command, budget: Duration) -> Result<Output, String> {
    let name = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Dies with this process (this thread waits for it), and carries the run's marker.
    crate::guard::tie_to_run(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + budget;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "{name} took longer than {} and was stopped",
            humantime::format_duration(budget)
        )),
    }
}

/// Whether this system lets us trace the program, from Yama's ptrace_scope: a line for the
/// report when it does not.
fn ptrace_refusal() -> Option<String> {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok()?;
    match scope.trim() {
        "3" => Some(
            "ptrace is disabled on this system (Yama ptrace_scope = 3): no native or Python frames"
                .to_owned(),
        ),
        "2" if !has_ptrace_capability() => Some(
            "ptrace needs CAP_SYS_PTRACE here (Yama ptrace_scope = 2): no native or Python frames"
                .to_owned(),
        ),
        _ => None,
    }
}

fn has_ptrace_capability() -> bool {
    const CAP_SYS_PTRACE: u32 = 19;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_PTRACE) != 0)
}

fn command_line(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Captures every thread of `pids`, the processes of the program whose pid is `program`, with
/// what `tools` allow.
pub fn capture(program: i32, pids: &[i32], tools: &Tools) -> StackCapture {
    let mut notes = Vec::new();
    let refusal = ptrace_refusal();
    let (gdb, py_spy) = match &refusal {
        Some(line) => {
            notes.push(line.clone());
            (None, None)
        }
        None => (tools.gdb.as_deref(), tools.py_spy.as_deref()),
    };
    if refusal.is_none() && gdb.is_none() {
        notes.push("gdb is not installed: no native frames (apt-get install gdb)".to_owned());
    }
    let mut processes = Vec::new();
    let mut python_seen = false;
    for &pid in pids {
        let command = command_line(pid);
        // /proc first: attaching a tracer interrupts the system call each thread is in.
        let proc_threads = procfs::threads_of(pid);
        let is_python = command
            .split_whitespace()
            .next()
            .and_then(|argv0| argv0.rsplit('/').next())
            .is_some_and(|exe| exe.starts_with("python"));
        python_seen |= is_python;
        // py-spy first: both attach with ptrace, so never at the same time.
        let mut python = match py_spy.filter(|_| is_python) {
            Some(tool) => pyspy::capture(tool, pid).unwrap_or_else(|line| {
                notes.push(line);
                Default::default()
            }),
            None => Default::default(),
        };
        let mut native = match gdb {
            Some(tool) => gdb::capture(tool, pid).unwrap_or_else(|line| {
                notes.push(format!("process {pid}: {line}"));
                Default::default()
            }),
            None => Default::default(),
        };
        let threads: Vec<ThreadStack> = proc_threads
            .into_iter()
            .map(|t| {
                let py = python.remove(&t.tid);
                ThreadStack {
                    tid: t.tid,
                    name: t.comm,
                    python_name: py.as_ref().and_then(|p| p.name.clone()),
                    state: t.state,
                    wchan: t.wchan,
                    syscall: t.syscall.describe(),
                    native: native.remove(&t.tid).unwrap_or_default(),
                    python: py.map(|p| p.frames).unwrap_or_default(),
                }
            })
            .collect();
        if !threads.is_empty() {
            processes.push(ProcessStacks {
                pid,
                command,
                threads,
            });
        }
    }
    if python_seen && refusal.is_none() && py_spy.is_none() {
        notes.push("py-spy is not installed: no Python frames (pip install py-spy)".to_owned());
    }
    let explanation = explain::explain(program, &processes);
    StackCapture {
        processes,
        notes,
        explanation,
    }
}
