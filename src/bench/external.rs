//! External proxy programs as bench engines (`termwatch bench --proxy NAME=COMMAND`): start the
//! user's program for one sample with the endpoints it must bind, wait until it is ready, check it
//! is still alive after the sample, stop it and everything it started.
//!
//! ```text
//! start:  sh -c COMMAND ({frontend}, {backend} replaced), own process group, dies with the bench
//! ready:  both endpoints accept a connection (or a stdout line contains the ready text)
//! sample: measured like a built-in engine
//! stop:   SIGTERM to the group, STOP_GRACE to exit, then SIGKILL to the group; reaped
//! ```
//!
//! Every way a program can misbehave — exits at once, never binds, dies during the sample, ignores
//! SIGTERM — is an [`ExternalError`] naming the program, with the end of its output; none can hang
//! the bench (every wait has a deadline) or leave a process behind (the group is killed and
//! checked empty). If the bench itself is killed, the program's leader gets SIGKILL from the
//! kernel ([`guard::tie_to_run`]) and the janitor ([`guard::Janitor`]) kills the whole
//! group; a Ctrl-C of the bench kills the group too.

use crate::guard;
use crate::runner::signals;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a program may take to accept connections (or print its ready line).
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a program may take to exit after SIGTERM before its group is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// How much of a program's output an error quotes.
const OUTPUT_TAIL: usize = 2000;
/// Pause between two readiness checks.
const POLL: Duration = Duration::from_millis(10);

/// A `--proxy NAME=COMMAND` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalProxy {
    /// The engine name in workload ids.
    pub name: String,
    /// A shell command with `{frontend}` and `{backend}` placeholders.
    pub command: String,
    /// When set, the program is ready once a line of its stdout contains this text; otherwise
    /// once both endpoints accept connections.
    pub ready_line: Option<String>,
}

/// Parses `NAME=COMMAND`; COMMAND must name both placeholders.
pub fn parse_proxy_definition(text: &str) -> Result<ExternalProxy, String> {
    let (name, command) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=COMMAND"))?;
    let name = name.trim();
    let engine = super::workload::Engine::parse(name)?;
    if !matches!(engine, super::workload::Engine::External(_)) {
        return Err(format!(
            "`{name}` is a built-in engine; give the external proxy another name"
        ));
    }
    for placeholder in ["{frontend}", "{backend}"] {
        if !command.contains(placeholder) {
            return Err(format!(
                "the command of `{name}` has no {placeholder}: it must bind the endpoints the bench \
                 gives it"
            ));
        }
    }
    Ok(ExternalProxy {
        name: name.to_string(),
        command: command.trim().to_string(),
        ready_line: None,
    })
}

/// Where a program must listen, and how to check that it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A loopback TCP port.
    Tcp(SocketAddr),
    /// A Unix domain socket file.
    Ipc(PathBuf),
}

impl Listen {
    /// A loopback port that was free a moment ago.
    pub fn free_tcp_port() -> std::io::Result<Listen> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        Ok(Listen::Tcp(listener.local_addr()?))
    }

    /// The ZeroMQ endpoint.
    pub fn endpoint(&self) -> String {
        match self {
            Listen::Tcp(address) => format!("tcp://{address}"),
            Listen::Ipc(path) => format!("ipc://{}", path.display()),
        }
    }

    fn accepts_connections(&self) -> bool {
        match self {
            Listen::Tcp(address) => {
                TcpStream::connect_timeout(address, Duration::from_millis(200)).is_ok()
            }
            Listen::Ipc(path) => UnixStream::connect(path).is_ok(),
        }
    }
}

/// What went wrong with an external proxy program.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// It could not be started at all.
    #[error("proxy `{name}`: cannot run `{command}`: {source}")]
    Start {
        /// Engine name.
        name: String,
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It exited before it was ready.
    #[error("proxy `{name}` {status} before it was ready{}", output_suffix(.output))]
    ExitedEarly {
        /// Engine name.
        name: String,
        /// How it exited.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// It was still not ready at the deadline.
    #[error("proxy `{name}` {problem} within {READY_DEADLINE:?}{}", output_suffix(.output))]
    NeverReady {
        /// Engine name.
        name: String,
        /// What it did not do.
        problem: String,
        /// The end of its output.
        output: String,
    },
    /// It exited during the sample.
    #[error("proxy `{name}` {status} during the sample{}", output_suffix(.output))]
    DiedDuringSample {
        /// Engine name.
        name: String,
        /// How it exited.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// It (or something it started) was still running [`STOP_GRACE`] after SIGTERM.
    #[error(
        "proxy `{name}` did not stop within {STOP_GRACE:?} of SIGTERM ({remaining}); its process \
         group was killed"
    )]
    IgnoredTerm {
        /// Engine name.
        name: String,
        /// Which processes were left.
        remaining: String,
    },
}

fn output_suffix(output: &str) -> String {
    let trimmed = output.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(" (its output: {trimmed})")
    }
}

/// `text` quoted for `sh` when it holds anything but safe characters.
fn shell_quote(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-:+=@,%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The command with its placeholders replaced by the (quoted) endpoints.
pub fn render_command(command: &str, frontend: &str, backend: &str) -> String {
    command
        .replace("{frontend}", &shell_quote(frontend))
        .replace("{backend}", &shell_quote(backend))
}

/// The last [`OUTPUT_TAIL`] bytes a program wrote (stdout and stderr interleaved by line).
#[derive(Clone, Default)]
struct OutputTail(Arc<Mutex<String>>);

impl OutputTail {
    fn push(&self, line: &str) {
        let mut text = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        text.push_str(line);
        text.push('\n');
        if text.len() > OUTPUT_TAIL {
            let mut cut = text.len() - OUTPUT_TAIL;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn read_lines(
    pipe: impl Read + Send + 'static,
    tail: OutputTail,
    lines: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            tail.push(&line);
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    });
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// Processes (pid, command name) still in process group `pgid`, zombies excepted.
fn group_members(pgid: i32) -> Vec<(i32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
            let (head, rest) = stat.rsplit_once(") ")?;
            let comm = head.split_once(" (")?.1.to_string();
            let mut fields = rest.split_whitespace();
            let state = fields.next()?;
            let pgrp: i32 = fields.nth(1)?.parse().ok()?;
            (pgrp == pgid && state != "Z" && state != "X").then_some((pid, comm))
        })
        .collect()
}

/// A started external proxy; its process group is killed and reaped when dropped.
pub struct RunningProxy {
    name: String,
    child: Child,
    pgid: i32,
    janitor: Option<&'static guard::Janitor>,
    output: OutputTail,
    stdout_lines: Receiver<String>,
}

impl ExternalProxy {
    /// Starts the program for one sample, told to bind `frontend` and `backend`, and waits until
    /// it is ready.
    /// `janitor` (when one could be started) kills the program's group if the bench dies.
    pub fn start(
        &self,
        frontend: &Listen,
        backend: &Listen,
        janitor: Option<&'static guard::Janitor>,
    ) -> Result<RunningProxy, ExternalError> {
        let command = render_command(&self.command, &frontend.endpoint(), &backend.endpoint());
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // The kernel kills the program when the thread that started it ends: the bench's main
        // thread, which waits for it.
        guard::tie_to_run(&mut shell);
        let mut child = shell.spawn().map_err(|source| ExternalError::Start {
            name: self.name.clone(),
            command: command.clone(),
            source,
        })?;
        let pgid = child.id() as i32;
        signals::register_group(pgid);
        if let Some(janitor) = janitor {
            janitor.group(pgid);
        }
        let output = OutputTail::default();
        let (lines_tx, stdout_lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            read_lines(stdout, output.clone(), Some(lines_tx));
        }
        if let Some(stderr) = child.stderr.take() {
            read_lines(stderr, output.clone(), None);
        }
        let mut running = RunningProxy {
            name: self.name.clone(),
            child,
            pgid,
            janitor,
            output,
            stdout_lines,
        };
        running.await_ready(self.ready_line.as_deref(), &[frontend, backend])?;
        Ok(running)
    }
}

impl RunningProxy {
    fn await_ready(
        &mut self,
        ready_line: Option<&str>,
        listens: &[&Listen],
    ) -> Result<(), ExternalError> {
        let deadline = Instant::now() + READY_DEADLINE;
        let mut pending: Vec<&Listen> = listens.to_vec();
        loop {
            if let Some(status) = self.exit_status() {
                // Let the reader threads catch the last words.
                std::thread::sleep(Duration::from_millis(50));
                return Err(ExternalError::ExitedEarly {
                    name: self.name.clone(),
                    status: describe(status),
                    output: self.output.text(),
                });
            }
            match ready_line {
                Some(text) => {
                    while let Ok(line) = self.stdout_lines.try_recv() {
                        if line.contains(text) {
                            return Ok(());
                        }
                    }
                }
                None => {
                    pending.retain(|listen| !listen.accepts_connections());
                    if pending.is_empty() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                let problem = match ready_line {
                    Some(text) => format!("printed no line containing `{text}`"),
                    None => format!(
                        "did not accept connections on {}",
                        pending
                            .iter()
                            .map(|l| l.endpoint())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                };
                return Err(ExternalError::NeverReady {
                    name: self.name.clone(),
                    problem,
                    output: self.output.text(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// An error if the program exited during the sample.
    pub fn check_alive(&mut self) -> Result<(), ExternalError> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(ExternalError::DiedDuringSample {
                name: self.name.clone(),
                status: describe(status),
                output: self.output.text(),
            }),
        }
    }

    /// Stops the program: SIGTERM to its group, then SIGKILL after [`STOP_GRACE`]; an error if it
    /// needed the SIGKILL.
    pub fn stop(mut self) -> Result<(), ExternalError> {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let leader_done = self.exit_status().is_some();
            let members = group_members(self.pgid);
            if leader_done && members.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let remaining = members
                    .iter()
                    .map(|(pid, comm)| format!("{comm} [{pid}]"))
                    .collect::<Vec<_>>()
                    .join(", ");
                // Drop kills the group and reaps the leader.
                return Err(ExternalError::IgnoredTerm {
                    name: self.name.clone(),
                    remaining,
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        let _ = self.child.wait();
        // Members other than the leader are reparented and reaped elsewhere; wait until the
        // kernel has taken them down, so nothing of this sample runs into the next.
        let deadline = Instant::now() + STOP_GRACE;
        while !group_members(self.pgid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        signals::unregister_group(self.pgid);
        if let Some(janitor) = self.janitor {
            janitor.forget_group(self.pgid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_need_a_new_name_and_both_placeholders() {
        let proxy = parse_proxy_definition("py=python3 p.py {frontend} {backend}").expect("valid");
        assert_eq!(proxy.name, "py");
        assert_eq!(proxy.command, "python3 p.py {frontend} {backend}");
        assert!(parse_proxy_definition("zmq_proxy=x {frontend} {backend}").is_err());
        assert!(parse_proxy_definition("py=python3 p.py {frontend}").is_err());
        assert!(parse_proxy_definition("no equals sign").is_err());
        assert!(parse_proxy_definition("bad name=x {frontend} {backend}").is_err());
    }

    #[test]
    fn endpoints_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(
            render_command(
                "p {frontend} {backend}",
                "tcp://127.0.0.1:5",
                "ipc:///tmp/a b"
            ),
            "p tcp://127.0.0.1:5 'ipc:///tmp/a b'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn group_members_finds_a_running_group_and_not_an_empty_one() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep starts");
        let pgid = child.id() as i32;
        assert_eq!(group_members(pgid).len(), 1);
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(group_members(pgid).is_empty());
    }
}
