//! Python frames from `py-spy dump --pid PID`: running it (bounded) and parsing what it prints
//! into the Python thread name and frames per kernel thread id.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Frame, run_bounded};

/// How long py-spy may take.
const BUDGET: Duration = Duration::from_secs(20);

/// One Python thread as py-spy shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyThread {
    /// The `threading` name (`MainThread`, `Thread-1 (run)`).
    pub name: Option<String>,
    /// Frames, innermost first.
    pub frames: Vec<Frame>,
}

/// Python threads of `pid` keyed by kernel thread id, or one line saying why there are none.
pub fn capture(py_spy: &Path, pid: i32) -> Result<BTreeMap<i32, PyThread>, String> {
    let mut command = Command::new(py_spy);
    command.args(["dump", "--pid", &pid.to_string()]);
    let output = run_bounded(command, BUDGET)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let threads = parse(&text);
    if threads.is_empty() {
        let errors = String::from_utf8_lossy(&output.stderr);
        let why = errors
            .lines()
            .chain(text.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no output");
        return Err(format!(
            "py-spy found no Python thread in process {pid}: {why}"
        ));
    }
    Ok(threads)
}

/// Parses `Thread TID (status): "name"` headers, each followed by `    function (file:line)`.
pub fn parse(text: &str) -> BTreeMap<i32, PyThread> {
    let mut threads = BTreeMap::new();
    let mut current: Option<(i32, PyThread)> = None;
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("Thread ") {
            if let Some((tid, thread)) = current.take() {
                threads.insert(tid, thread);
            }
            let id = header.split_whitespace().next().unwrap_or("");
            let name = header
                .split_once(": \"")
                .map(|(_, n)| n.trim_end().trim_end_matches('"').to_owned());
            current = id.parse().ok().map(|tid| {
                (
                    tid,
                    PyThread {
                        name,
                        frames: Vec::new(),
                    },
                )
            });
        } else if let (Some((_, thread)), Some(frame)) = (current.as_mut(), frame(line)) {
            thread.frames.push(frame);
        }
    }
    if let Some((tid, thread)) = current {
        threads.insert(tid, thread);
    }
    threads
}

/// `    function (file:line)`; local variables (`--locals`) and other lines are not frames.
fn frame(line: &str) -> Option<Frame> {
    if !line.starts_with("    ") || line.starts_with("        ") {
        return None;
    }
    let line = line.trim();
    let open = line.rfind(" (")?;
    let location = line[open + 2..].strip_suffix(')')?;
    Some(Frame {
        function: line[..open].to_owned(),
        location: Some(location.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_main_thread_in_term_and_a_named_thread() {
        let threads = parse(include_str!(
            "../../tests/fixtures/stacks/pyspy-python-term.txt"
        ));
        assert_eq!(threads.len(), 2);
        let main = &threads[&19929];
        assert_eq!(main.name.as_deref(), Some("MainThread"));
        assert_eq!(main.frames[0].function, "Context.term");
        assert_eq!(
            main.frames[0].location.as_deref(),
            Some("zmq/sugar/context.py:264")
        );
        assert_eq!(main.frames[1].location.as_deref(), Some("app.py:16"));
        assert_eq!(threads[&19931].name.as_deref(), Some("receiver"));
        assert_eq!(threads[&19931].frames.len(), 4);
    }

    #[test]
    fn thread_names_with_spaces_and_parentheses_survive() {
        let threads = parse(include_str!(
            "../../tests/fixtures/stacks/pyspy-python-recv.txt"
        ));
        let worker = &threads[&20078];
        assert_eq!(worker.name.as_deref(), Some("Thread-1 (run)"));
        assert_eq!(worker.frames[0].function, "run");
        assert_eq!(worker.frames[0].location.as_deref(), Some("recv.py:6"));
    }
}
