//! Native frames from `gdb -batch -p PID -ex "thread apply all bt"`: running it (bounded) and
//! parsing what it prints into frames per kernel thread id.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Frame, run_bounded};

/// How long gdb may take to attach, walk every thread and detach.
const BUDGET: Duration = Duration::from_secs(30);

/// Native frames of every thread of `pid`, innermost first, keyed by kernel thread id; or one
/// line saying why there are none.
pub fn capture(gdb: &Path, pid: i32) -> Result<BTreeMap<i32, Vec<Frame>>, String> {
    let mut command = Command::new(gdb);
    command.args([
        "-batch",
        "-nx",
        "-p",
        &pid.to_string(),
        "-ex",
        "set pagination off",
        "-ex",
        "thread apply all bt",
    ]);
    let output = run_bounded(command, BUDGET)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    let threads = parse(&text);
    if threads.is_empty() {
        return Err(refusal(&errors).unwrap_or_else(|| {
            format!(
                "gdb printed no stack for process {pid}: {}",
                errors.lines().last().unwrap_or("no output").trim()
            )
        }));
    }
    Ok(threads)
}

/// Why gdb could not attach, in one line, when it says so.
fn refusal(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| l.contains("ptrace:") || l.contains("Could not attach"))
        .map(|l| format!("gdb could not attach ({})", l.trim()))
}

/// Parses `thread apply all bt` output: `Thread N (Thread 0x… (LWP TID) "name"):` headers, each
/// followed by `#K  [0x… in ]function (args) [at file:line | from library]` frames.
pub fn parse(text: &str) -> BTreeMap<i32, Vec<Frame>> {
    let mut threads = BTreeMap::new();
    let mut current: Option<(i32, Vec<Frame>)> = None;
    for line in text.lines() {
        if line.starts_with("Thread ") && line.trim_end().ends_with("):") {
            if let Some((tid, frames)) = current.take() {
                threads.insert(tid, frames);
            }
            current = header_tid(line).map(|tid| (tid, Vec::new()));
        } else if let (Some((_, frames)), Some(frame)) = (current.as_mut(), frame(line)) {
            frames.push(frame);
        }
    }
    if let Some((tid, frames)) = current {
        threads.insert(tid, frames);
    }
    threads
}

/// The kernel thread id in a thread header: `(LWP 123)` or, single-threaded, `(process 123)`.
fn header_tid(line: &str) -> Option<i32> {
    ["(LWP ", "(process "].iter().find_map(|marker| {
        let rest = &line[line.find(marker)? + marker.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// One `#K …` frame line.
fn frame(line: &str) -> Option<Frame> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
    let rest = match rest.split_once(" in ") {
        Some((address, after)) if address.starts_with("0x") => after,
        _ => rest,
    };
    let function = rest.split(" (").next()?.trim().to_owned();
    let location = if let Some(i) = rest.rfind(") at ") {
        Some(rest[i + 5..].trim().to_owned())
    } else {
        rest.rfind(" from ")
            .map(|i| basename(rest[i + 6..].trim()).to_owned())
    };
    Some(Frame { function, location })
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_thread_of_a_python_program_in_term() {
        let threads = parse(include_str!(
            "../../tests/fixtures/stacks/gdb-python-term.txt"
        ));
        assert_eq!(threads.len(), 4);
        let main = &threads[&19929];
        assert_eq!(main[0].function, "__GI___poll");
        assert_eq!(
            main[0].location.as_deref(),
            Some("../sysdeps/unix/sysv/linux/poll.c:29")
        );
        assert_eq!(main[1].function, "??");
        assert_eq!(
            main[1].location.as_deref(),
            Some("libzmq-2f02442c.so.5.2.5")
        );
        assert_eq!(main[4].function, "zmq_ctx_term");
        // Inlined frames have no address: `#2  time_sleep (…) at …`.
        assert_eq!(threads[&19931][2].function, "time_sleep");
        assert_eq!(threads[&19933][0].function, "epoll_wait");
    }

    #[test]
    fn parses_a_thread_in_recv_and_a_single_threaded_header() {
        let threads = parse(include_str!(
            "../../tests/fixtures/stacks/gdb-python-recv.txt"
        ));
        assert_eq!(threads[&20078][5].function, "zmq_msg_recv");
        let single = parse(
            "Thread 1 (process 77 \"sleep\"):\n#0  0x00007f in clock_nanosleep () from /lib/libc.so.6\n#1  main () at sleep.c:3\n",
        );
        assert_eq!(single[&77].len(), 2);
        assert_eq!(single[&77][1].location.as_deref(), Some("sleep.c:3"));
    }

    #[test]
    fn a_refused_attach_is_one_line() {
        let stderr = "Could not attach to process.  If your uid matches the uid of the target\nptrace: Operation not permitted.\n";
        assert_eq!(
            refusal(stderr).as_deref(),
            Some(
                "gdb could not attach (Could not attach to process.  If your uid matches the uid of the target)"
            )
        );
    }
}
