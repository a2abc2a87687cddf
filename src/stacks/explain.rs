//! Stacks in plain words: for every thread that waits in libzmq (and always for the main
//! thread), the libzmq call it is blocked in, the pyzmq method and the line of the program that
//! called it, and what that call waits for. libzmq's own background threads (`ZMQbg/…`) are
//! left out: they always wait in epoll.

use super::{Frame, ProcessStacks, ThreadStack};

/// What a libzmq call, or the pyzmq method around it, waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Term,
    Recv,
    Send,
    Poll,
    Proxy,
    Other,
}

impl Wait {
    fn of_libzmq(function: &str) -> Self {
        match function {
            "zmq_ctx_term" | "zmq_ctx_destroy" | "zmq_term" => Wait::Term,
            "zmq_msg_recv" | "zmq_recv" | "zmq_recvmsg" | "zmq_recviov" => Wait::Recv,
            "zmq_msg_send" | "zmq_send" | "zmq_sendmsg" | "zmq_send_const" | "zmq_sendiov" => {
                Wait::Send
            }
            f if f.starts_with("zmq_poll") => Wait::Poll,
            "zmq_proxy" | "zmq_proxy_steerable" => Wait::Proxy,
            _ => Wait::Other,
        }
    }

    fn of_pyzmq(method: &str) -> Self {
        let name = method.rsplit('.').next().unwrap_or(method);
        match name {
            "term" | "destroy" => Wait::Term,
            n if n.starts_with("recv") => Wait::Recv,
            n if n.starts_with("send") => Wait::Send,
            "poll" => Wait::Poll,
            "proxy" | "proxy_steerable" => Wait::Proxy,
            _ => Wait::Other,
        }
    }

    fn meaning(self) -> &'static str {
        match self {
            Wait::Term => {
                "libzmq waits for sockets that are still open (and for what they still have to send, as long as their linger allows)"
            }
            Wait::Recv => {
                "waits for a message; only a message, a receive timeout or ETERM (the context being terminated) ends it"
            }
            Wait::Send => {
                "waits until the message can be queued: the high-water mark is reached, or no peer is connected"
            }
            Wait::Poll => "waits for an event on the polled sockets",
            Wait::Proxy => "forwards messages until its context is terminated",
            Wait::Other => "inside libzmq",
        }
    }
}

fn is_pyzmq(frame: &Frame) -> bool {
    frame
        .location
        .as_deref()
        .is_some_and(|l| l.starts_with("zmq/") || l.contains("/zmq/"))
}

/// One sentence per thread that matters, for every process; `program` is the program's own pid
/// (a process it started is named by its pid and command).
pub fn explain(program: i32, processes: &[ProcessStacks]) -> Vec<String> {
    let mut lines = Vec::new();
    for process in processes {
        let several = processes.len() > 1 || process.pid != program;
        for thread in &process.threads {
            if thread.name.starts_with("ZMQbg") {
                continue;
            }
            let main = thread.tid == process.pid;
            let who = match (main, several) {
                (true, false) => "main thread".to_owned(),
                (true, true) => format!(
                    "process {} ({}): main thread",
                    process.pid,
                    short_command(&process.command)
                ),
                (false, false) => format!("thread `{}`", thread.display_name()),
                (false, true) => format!(
                    "process {} ({}): thread `{}`",
                    process.pid,
                    short_command(&process.command),
                    thread.display_name()
                ),
            };
            if let Some(line) = sentence(&who, thread, main) {
                lines.push(line);
            }
        }
    }
    lines
}

fn short_command(command: &str) -> String {
    command
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one thread is blocked in; `None` for a thread outside libzmq that is not the main one.
fn sentence(who: &str, thread: &ThreadStack, main: bool) -> Option<String> {
    let libzmq = thread
        .native
        .iter()
        .find(|f| f.function.starts_with("zmq_"))
        .map(|f| f.function.as_str());
    let pyzmq = thread
        .python
        .iter()
        .take_while(|f| is_pyzmq(f))
        .last()
        .map(|f| f.function.as_str());
    // The program's own line: the innermost Python frame outside pyzmq.
    let call_site = thread
        .python
        .iter()
        .find(|f| !is_pyzmq(f))
        .and_then(|f| f.location.as_deref());
    let wait = match (libzmq, pyzmq) {
        (Some(call), _) => Wait::of_libzmq(call),
        (None, Some(method)) => Wait::of_pyzmq(method),
        (None, None) => Wait::Other,
    };
    let context: Vec<String> = pyzmq
        .map(|m| format!("pyzmq `{m}`"))
        .into_iter()
        .chain(call_site.map(str::to_owned))
        .collect();
    let context = if context.is_empty() {
        String::new()
    } else {
        format!(" ({})", context.join(", "))
    };
    match (libzmq, pyzmq) {
        (Some(call), _) => Some(format!(
            "{who} blocked in {call}{context}: {}",
            wait.meaning()
        )),
        (None, Some(method)) => Some(format!(
            "{who} blocked in pyzmq `{method}`{}: {}",
            call_site.map(|s| format!(" ({s})")).unwrap_or_default(),
            wait.meaning()
        )),
        (None, None) if main => {
            let innermost = thread
                .python
                .first()
                .or_else(|| thread.native.iter().find(|f| f.function != "??"))
                .map(|f| format!(" in {f}"))
                .unwrap_or_default();
            Some(format!(
                "{who} is not in libzmq{innermost}; system call: {}",
                thread.syscall
            ))
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::{gdb, pyspy};

    /// A process built from captured gdb and py-spy outputs, as [`super::super::capture`] joins them.
    fn process(pid: i32, gdb_text: &str, pyspy_text: &str, names: &[(i32, &str)]) -> ProcessStacks {
        let mut native = gdb::parse(gdb_text);
        let mut python = pyspy::parse(pyspy_text);
        let threads = names
            .iter()
            .map(|&(tid, name)| {
                let py = python.remove(&tid);
                ThreadStack {
                    tid,
                    name: name.to_owned(),
                    python_name: py.as_ref().and_then(|p| p.name.clone()),
                    state: "S (sleeping)".to_owned(),
                    wchan: "do_sys_poll".to_owned(),
                    syscall: "poll(1 fd, no timeout)".to_owned(),
                    native: native.remove(&tid).unwrap_or_default(),
                    python: py.map(|p| p.frames).unwrap_or_default(),
                }
            })
            .collect();
        ProcessStacks {
            pid,
            command: "python app.py".to_owned(),
            threads,
        }
    }

    #[test]
    fn names_the_term_call_the_pyzmq_method_and_the_line() {
        let p = process(
            19929,
            include_str!("../../tests/fixtures/stacks/gdb-python-term.txt"),
            include_str!("../../tests/fixtures/stacks/pyspy-python-term.txt"),
            &[
                (19929, "python"),
                (19931, "python"),
                (19932, "ZMQbg/Reaper"),
                (19933, "ZMQbg/IO/0"),
            ],
        );
        let lines = explain(p.pid, std::slice::from_ref(&p));
        assert_eq!(
            lines,
            vec!["main thread blocked in zmq_ctx_term (pyzmq `Context.term`, app.py:16): libzmq waits for sockets that are still open (and for what they still have to send, as long as their linger allows)".to_owned()],
        );
    }

    #[test]
    fn a_receiving_thread_is_named_by_its_python_name() {
        let p = process(
            20076,
            include_str!("../../tests/fixtures/stacks/gdb-python-recv.txt"),
            include_str!("../../tests/fixtures/stacks/pyspy-python-recv.txt"),
            &[(20076, "python"), (20078, "python")],
        );
        let lines = explain(p.pid, std::slice::from_ref(&p));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "main thread is not in libzmq in Thread._wait_for_tstate_lock (threading.py:1139)"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with(
                "thread `Thread-1 (run)` blocked in zmq_msg_recv (recv.py:6): waits for a message"
            ),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn without_gdb_the_pyzmq_method_still_says_what_it_waits_for() {
        let p = process(
            19929,
            "",
            include_str!("../../tests/fixtures/stacks/pyspy-python-term.txt"),
            &[(19929, "python")],
        );
        assert_eq!(
            explain(p.pid, std::slice::from_ref(&p))[0],
            "main thread blocked in pyzmq `Context.term` (app.py:16): libzmq waits for sockets that are still open (and for what they still have to send, as long as their linger allows)"
        );
    }
}
