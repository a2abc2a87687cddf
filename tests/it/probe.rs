//! The probe inside real pyzmq programs (the examples): each runs with the probe preloaded;
//! a hang is declared when the program has not exited a deadline after it says `terminating`,
//! and the report made then must name what term waits for. Needs Python with pyzmq
//! ([`python`]); the tests say so in one line and pass when it is missing.
//! `TERMWATCH_PROBE_REPEAT=N` runs each N times; `TERMWATCH_PROBE_SHOW=1` prints the reports.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use termwatch::probe::record::ThreadName;
use termwatch::probe::{ProbeReport, ProbeSetup, ProbeState};

use crate::support::{python, workspace_path};

/// How long a program may take from `terminating` to its exit.
const DEADLINE: Duration = Duration::from_millis(1500);
/// How long a program may take to get to `terminating`.
const STARTUP: Duration = Duration::from_secs(30);

/// What one run gave.
struct Run {
    /// Lines the program printed.
    lines: Vec<String>,
    /// The report at the deadline, when it hung.
    hang: Option<ProbeReport>,
    /// Everything the probe reported, after the program ended.
    state: ProbeState,
    /// The program's pid.
    pid: i32,
}

/// Kills the program's process group when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: signalling our child's own process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn run_example(python: &Path, script: &str, args: &[&str]) -> Run {
    let mut command = Command::new(python);
    command
        .arg(workspace_path("examples").join(script))
        .args(args);
    run_program(command)
}

/// Runs `command` with the probe until it exits, or hangs after saying `terminating`.
fn run_program(mut command: Command) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let probe = ProbeSetup::new(dir.path()).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    probe.configure(&mut command).unwrap();
    let mut group = Group(command.spawn().unwrap());
    let pid = group.0.id() as i32;
    let monitor = probe.start(pid as u32).unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = group.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let mut deadline = Instant::now() + STARTUP;
    let hang = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if line == "terminating" {
                    deadline = Instant::now() + DEADLINE;
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(mpsc::RecvTimeoutError::Timeout) => break Some(monitor.report(|_| {})),
        }
    };
    drop(group);
    let state = monitor.finish(Duration::from_secs(5));
    Run {
        lines,
        hang,
        state,
        pid,
    }
}

fn endpoint(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("ready "))
        .expect("a ready line")
        .to_owned()
}

/// Runs `script args` `TERMWATCH_PROBE_REPEAT` times (default 1), expecting a hang whose
/// report holds every piece of `expect(endpoint)`.
fn expect_hang(script: &str, args: &[&str], expect: impl Fn(&str) -> Vec<String>) {
    let Some(python) = python("probe example test") else {
        return;
    };
    for _ in 0..repeats() {
        let run = run_example(&python, script, args);
        let report = run
            .hang
            .unwrap_or_else(|| panic!("{script} {args:?} did not hang: {:?}", run.lines));
        assert!(report.term_waiting(), "{report}");
        let text = report.to_string();
        if std::env::var_os("TERMWATCH_PROBE_SHOW").is_some() {
            eprintln!("{script} {args:?}:\n{text}");
        }
        for piece in expect(&endpoint(&run.lines)) {
            assert!(text.contains(&piece), "`{piece}` missing from:\n{text}");
        }
        let process = &run.state.processes[&run.pid];
        assert!(process.used_zmq());
    }
}

/// Runs `script args`, expecting a clean exit with every socket closed and term returned.
fn expect_clean(script: &str, args: &[&str]) {
    let Some(python) = python("probe example test") else {
        return;
    };
    for _ in 0..repeats() {
        let run = run_example(&python, script, args);
        assert!(
            run.hang.is_none(),
            "{script} {args:?} hung:\n{}",
            run.hang.unwrap()
        );
        assert_eq!(
            run.lines.last().map(String::as_str),
            Some("terminated"),
            "{:?}",
            run.lines
        );
        let process = &run.state.processes[&run.pid];
        assert!(
            process.sockets.iter().all(|s| s.closed.is_some()),
            "{process:?}"
        );
        let terms = process.contexts.iter().flat_map(|c| &c.terms);
        assert!(terms.clone().count() >= 1 && terms.clone().all(|t| t.returned.is_some()));
    }
}

fn repeats() -> usize {
    std::env::var("TERMWATCH_PROBE_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[test]
fn async_subscriber_bug_names_the_open_sub_socket_of_the_ended_loop_thread() {
    expect_hang("async_subscriber.py", &["bug"], |endpoint| {
        vec![
            "term() (zmq_ctx_destroy) on context 0x".into(),
            "from the main thread `MainThread`".into(),
            "still open:\n  - SUB socket created by thread `Thread-".into(),
            " (run_forever)` (tid ".into(),
            ", ended), connected to ".to_owned() + endpoint,
            "linger 0".into(),
            "last call zmq_getsockopt(".into(),
        ]
    });
}

#[test]
fn async_subscriber_half_fix_still_leaves_the_socket_open() {
    expect_hang("async_subscriber.py", &["half-fix"], |endpoint| {
        vec![
            "still open:\n  - SUB socket created by thread `Thread-".into(),
            " (run_forever)` ".into(),
            format!("ended), connected to {endpoint}"),
        ]
    });
}

#[test]
fn async_subscriber_fix_is_clean() {
    expect_clean("async_subscriber.py", &["fix"]);
}

#[test]
fn blocking_receiver_that_keeps_its_socket_is_named_with_its_eterm() {
    expect_hang("blocking_receiver.py", &["keeps"], |endpoint| {
        vec![
            "still open:\n  - SUB socket created by thread `receiver` (tid ".into(),
            format!("ended), connected to {endpoint}"),
            "last call zmq_msg_recv failed with ETERM".into(),
        ]
    });
}

#[test]
fn blocking_receiver_that_closes_is_clean() {
    expect_clean("blocking_receiver.py", &["closes"]);
}

#[test]
fn publisher_lingering_for_a_dead_subscriber_is_named() {
    expect_hang("linger_publisher.py", &["infinite"], |endpoint| {
        vec![
            "waiting for:\n  - PUB socket created by the main thread `MainThread`".into(),
            format!("connected to {endpoint}, linger -1 (infinite)"),
            "term waits until its unsent messages are delivered".into(),
        ]
    });
}

#[test]
fn publisher_with_zero_linger_is_clean() {
    expect_clean("linger_publisher.py", &["zero"]);
}

/// The socket a named Python thread made and left open is reported with that name (pyzmq
/// holds the GIL in `zmq_socket` and `zmq_close`); the main thread, which releases the GIL
/// around `zmq_ctx_destroy`, keeps the Python name its earlier calls gave it.
#[test]
fn a_socket_left_open_by_a_python_thread_is_reported_with_its_python_name() {
    let Some(python) = python("probe thread name test") else {
        return;
    };
    let script = r#"
import threading, zmq
ctx = zmq.Context()
ctx.socket(zmq.PUSH).close()
kept = []
def subscribe():
    sub = ctx.socket(zmq.SUB)
    sub.connect("tcp://127.0.0.1:9")
    kept.append(sub)
thread = threading.Thread(target=subscribe, name="subscriber-thread")
thread.start()
thread.join()
print("terminating", flush=True)
ctx.term()
print("terminated", flush=True)
"#;
    for _ in 0..repeats() {
        let mut command = Command::new(&python);
        command.args(["-c", script]);
        let run = run_program(command);
        let report = run
            .hang
            .unwrap_or_else(|| panic!("did not hang: {:?}", run.lines));
        let text = report.to_string();
        for piece in [
            "from the main thread `MainThread` (tid ",
            "still open:\n  - SUB socket created by thread `subscriber-thread` (tid ",
            ", ended), connected to tcp://127.0.0.1:9, ",
        ] {
            assert!(text.contains(piece), "`{piece}` missing from:\n{text}");
        }
        let process = &run.state.processes[&run.pid];
        let names: Vec<&ThreadName> = process
            .sockets
            .iter()
            .flat_map(|s| [Some(&s.created_by), s.closed.as_ref().map(|c| &c.thread)])
            .flatten()
            .map(|t| &t.name)
            .collect();
        assert_eq!(
            names,
            [
                &ThreadName::Python("MainThread".into()),
                &ThreadName::Python("MainThread".into()),
                &ThreadName::Python("subscriber-thread".into()),
            ]
        );
    }
}

/// Reading Python names changes nothing in the program: no reference kept, no exception left
/// behind (also where `_name` is not a string, or missing), the exception being handled kept.
/// A thread `threading` does not know, or one whose name cannot be read, has its kernel name
/// (the main thread would keep its earlier Python name, so these run on other threads); a
/// renamed thread has its new name.
#[test]
fn python_names_leave_the_program_as_it_was() {
    let Some(python) = python("probe thread name test") else {
        return;
    };
    let script = r#"
import sys, threading, _thread, zmq
ctx = zmq.Context()
me = threading.current_thread()
def counts():
    return [sys.getrefcount(o) for o in (me, me._name, threading._active, threading)]
before = counts()
for _ in range(20):
    ctx.socket(zmq.PUSH).close()
assert counts() == before, (before, counts())
def unreadable():
    me = threading.current_thread()
    me._name = 42
    ctx.socket(zmq.PUSH).close()
    del me._name
    ctx.socket(zmq.PUSH).close()
    me._name = "worker"
    finished.append("unreadable")
finished = []
worker = threading.Thread(target=unreadable)
worker.start()
worker.join()
done = threading.Event()
def unknown():
    try:
        ctx.socket(zmq.PUSH).close()
        finished.append("unknown")
    finally:
        done.set()
_thread.start_new_thread(unknown, ())
done.wait()
assert finished == ["unreadable", "unknown"], finished
me.name = "renamed"
try:
    raise ValueError("handled")
except ValueError as e:
    ctx.socket(zmq.PUSH).close()
    assert sys.exc_info()[1] is e
ctx.term()
print("terminated", flush=True)
"#;
    let mut command = Command::new(&python);
    command.args(["-c", script]);
    let run = run_program(command);
    assert!(run.hang.is_none(), "hung: {:?}", run.lines);
    assert_eq!(run.lines, ["terminated"], "the script failed");
    let sockets = &run.state.processes[&run.pid].sockets;
    let name = |i: usize| &sockets[sockets.len() - 4 + i].created_by.name;
    let kernel = |name: &ThreadName| matches!(name, ThreadName::Kernel(_));
    assert!(kernel(name(0)), "`_name` not a string: {:?}", name(0));
    assert!(kernel(name(1)), "no `_name`: {:?}", name(1));
    assert!(kernel(name(2)), "unknown to threading: {:?}", name(2));
    assert_eq!(name(3), &ThreadName::Python("renamed".into()));
    assert_eq!(run.state.lost, 0);
}

/// Errors pass through unchanged, a forked child reports as its own process, and the probe
/// loads with every symbol bound at once (`LD_BIND_NOW`).
#[test]
fn errno_passes_through_and_a_forked_child_is_its_own_process() {
    let Some(python) = python("probe fork test") else {
        return;
    };
    let script = r#"
import os, zmq
ctx = zmq.Context()
a = ctx.socket(zmq.PULL)
port = a.bind_to_random_port("tcp://127.0.0.1")
b = ctx.socket(zmq.PULL)
try:
    b.bind(f"tcp://127.0.0.1:{port}")
    raise SystemExit("second bind worked")
except zmq.ZMQError as e:
    assert e.errno == zmq.EADDRINUSE, e.errno
try:
    a.recv(zmq.NOBLOCK)
    raise SystemExit("recv worked")
except zmq.Again:
    pass
pid = os.fork()
if pid == 0:
    c = zmq.Context()
    s = c.socket(zmq.PUSH)
    s.close()
    c.term()
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
print(pid, flush=True)
a.close(); b.close(); ctx.term()
"#;
    let dir = tempfile::tempdir().unwrap();
    let probe = ProbeSetup::new(dir.path()).unwrap();
    let mut command = Command::new(python);
    command
        .args(["-c", script])
        .env("LD_BIND_NOW", "1")
        .stdout(Stdio::piped());
    command.process_group(0);
    probe.configure(&mut command).unwrap();
    let mut group = Group(command.spawn().unwrap());
    let monitor = probe.start(group.0.id()).unwrap();
    let pid = group.0.id() as i32;
    let (tx, rx) = mpsc::channel();
    let mut stdout = BufReader::new(group.0.stdout.take().unwrap());
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(STARTUP).expect("the script finishes");
    let child: i32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("script failed: {line:?}"));
    drop(group);
    let state = monitor.finish(Duration::from_secs(5));
    let parent = &state.processes[&pid];
    assert_eq!(parent.sockets.len(), 2);
    assert!(
        parent.sockets[1].endpoints.is_empty(),
        "the failed bind is no endpoint"
    );
    let forked = &state.processes[&child];
    assert_eq!(forked.origin, termwatch::probe::state::Origin::Forked);
    assert_eq!(forked.ppid, pid);
    assert_eq!(forked.sockets.len(), 1);
    assert!(forked.sockets[0].closed.is_some());
    assert_eq!(state.malformed, 0);
}
