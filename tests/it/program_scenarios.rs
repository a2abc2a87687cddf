//! `kind = "program"` scenarios: the pyzmq examples and the standalone proxies under
//! `scenarios/programs/` give their expected verdicts, termwatch's nodes exchange messages with
//! a program that binds the endpoints termwatch chose for it after they connected, and every hang report names the blocked call (from the stacks) and the
//! sockets still open (from the probe); program nodes are validated like every other node.
//! The examples need a Python with pyzmq (`TERMWATCH_PYTHON`, set by `.ci/run`, or
//! `target/venv/bin/python`); without one they are skipped with a note.

use std::path::Path;

use serde_json::Value;

use crate::support::{python, termwatch};

/// The folder of a Python with pyzmq, to put first on PATH (the scenarios run `python3`).
fn python_dir() -> Option<std::path::PathBuf> {
    python("the program scenarios").and_then(|p| p.parent().map(Path::to_owned))
}

/// Writes `text` to `file`, runs it (JSON, no snapshots) and returns its scenario line.
fn run_written(file: &Path, text: &str) -> Value {
    std::fs::write(file, text).expect("written");
    let out = termwatch()
        .args(["run", "--format", "json", "--snapshots", "off"])
        .arg(file)
        .output()
        .expect("ran");
    serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("a line"),
    )
    .expect("JSON")
}

/// Every program scenario that expects a hang, with the pyzmq method its report must find the
/// main thread in (around zmq_ctx_term) and the socket the probe must list as open or waited
/// for, with its creating thread's Python name.
const HANGS: &[(&str, &str, &str)] = &[
    (
        "programs/async-subscriber-bug",
        "Context.term",
        "SUB socket created by thread `Thread-1 (run_forever)` (tid ",
    ),
    (
        "programs/async-subscriber-half-fix",
        "Context.term",
        "SUB socket created by thread `Thread-1 (run_forever)` (tid ",
    ),
    (
        "programs/blocking-receiver-keeps",
        "Context.term",
        "SUB socket created by thread `receiver` (tid ",
    ),
    (
        "programs/exit-term-bug",
        "Context.term",
        "SUB socket created by the main thread `MainThread` (tid ",
    ),
    (
        "programs/linger-publisher-infinite",
        "Context.term",
        "PUB socket created by the main thread `MainThread` (tid ",
    ),
    // destroy closes the sockets it tracks, then terms: the report names the outer method.
    (
        "programs/shadow-context-bug",
        "Context.destroy",
        "SUB socket created by the main thread `MainThread` (tid ",
    ),
    (
        "programs/shared-instance-bug",
        "Context.term",
        "SUB socket created by the main thread `MainThread` (tid ",
    ),
];

#[test]
fn the_pyzmq_examples_give_their_verdicts_and_hangs_name_the_call_and_the_sockets() {
    let Some(dir) = python_dir() else { return };
    let path = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let out = termwatch()
        .env("PATH", path)
        .args([
            "run",
            "scenarios/programs",
            "--format",
            "json",
            "--snapshots",
            "off",
        ])
        .output()
        .expect("ran");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let scenarios: Vec<&Value> = lines.iter().filter(|l| l["type"] == "scenario").collect();
    assert_eq!(scenarios.len(), 17, "{text}");
    let hangs = scenarios.iter().filter(|s| s["outcome"] == "hang").count();
    assert_eq!(hangs, HANGS.len(), "{text}");
    for s in &scenarios {
        assert_eq!(
            s["passed"], true,
            "{}: {}",
            s["name"], s["diagnostics"]["summary"]
        );
        if s["outcome"] != "hang" {
            continue;
        }
        let summary = s["diagnostics"]["summary"].as_str().unwrap();
        let &(_, method, socket) = HANGS
            .iter()
            .find(|(name, _, _)| s["name"] == *name)
            .unwrap_or_else(|| panic!("{}: a hang not listed in HANGS", s["name"]));
        assert!(
            summary.contains(&format!(
                "main thread blocked in zmq_ctx_term (pyzmq `{method}`"
            )),
            "{}: {summary}",
            s["name"]
        );
        // The probe: term's wait (from the main thread, named by Python), and each socket it
        // waits for with type, creator and endpoint.
        assert!(
            summary.contains("still open") || summary.contains("waiting for"),
            "{}: {summary}",
            s["name"]
        );
        assert!(
            summary.contains("from the main thread `MainThread` (tid "),
            "{}: {summary}",
            s["name"]
        );
        assert!(
            summary.contains(&format!("  - {socket}")) && summary.contains("tcp://127.0.0.1:"),
            "{}: {summary}",
            s["name"]
        );
        let program = &s["diagnostics"]["programs"][0];
        assert!(program["probe"].is_object(), "{program}");
        assert!(
            program["stacks"]["processes"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        );
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn program_nodes_are_checked_with_positions() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (text, at, message) in [
        (
            "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"x\"]\nbind = \"auto\"\n",
            "6:8",
            "field `bind` does not apply to a program node",
        ),
        (
            "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"x\", \"{nope}\"]\n",
            "5:11",
            "`{nope}` names no node",
        ),
        (
            "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nmode = \"idle\"\nconnect = \"tcp://127.0.0.1:1\"\n[[steps]]\naction = \"stop\"\nnode = \"s\"\n",
            "9:8",
            "`stop` applies only to program nodes",
        ),
        (
            "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"x\"]\n[[steps]]\naction = \"stop\"\nnode = \"app\"\nhow = \"signal:NOPE\"\n",
            "9:7",
            "`NOPE` is not a signal name",
        ),
        (
            "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"x\"]\nready_line = \"(\"\n",
            "6:14",
            "not a regular expression",
        ),
        (
            "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"x\"]\nopen = \"step\"\n",
            "6:8",
            "field `open` does not apply to a program node",
        ),
        (
            "expect = \"clean\"\ntransport = \"inproc\"\n[[nodes]]\nname = \"late\"\nkind = \"subscriber\"\nbind = \"inproc://late\"\nopen = \"step\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"x\", \"{late}\"]\n[[steps]]\naction = \"open\"\nnode = \"late\"\n",
            "11:11",
            "node `late` is opened by a step",
        ),
    ] {
        let file = dir.path().join("s.toml");
        std::fs::write(&file, text).expect("written");
        let out = termwatch().arg("check").arg(&file).output().expect("ran");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("s.toml:{at}: ")) && stderr.contains(message),
            "{stderr}"
        );
    }
}

#[test]
fn a_program_reads_the_endpoint_of_a_bound_node_and_its_exit_code_decides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("s.toml");
    let scenario = |exit: u8| {
        format!(
            "expect = \"clean\"\n[[nodes]]\nname = \"pub\"\nkind = \"publisher\"\nbind = \"auto\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"sh\", \"-c\", \"echo at {{pub}}; read line; exit {exit}\"]\nready_line = \"^at tcp://127.0.0.1:[0-9]+$\"\ntrace_lines = \"^at \"\n[[steps]]\naction = \"stop\"\nnode = \"app\"\nhow = \"stdin-close\"\n[[steps]]\naction = \"close\"\nnode = \"pub\"\n[[steps]]\naction = \"term\"\n"
        )
    };
    let line = run_written(&file, &scenario(0));
    assert_eq!(line["outcome"], "clean", "{line}");
    let stdout = line["diagnostics"]["programs"][0]["stdout"]
        .as_str()
        .unwrap();
    assert!(stdout.starts_with("at tcp://127.0.0.1:"), "{stdout}");
    let line = run_written(&file, &scenario(5));
    assert_eq!(line["outcome"], "error", "{line}");
    assert!(
        line["diagnostics"]["summary"]
            .as_str()
            .unwrap()
            .contains("program `app` exited with code 5")
    );
}

#[test]
fn a_ready_line_written_around_the_exit_still_counts_and_a_missing_one_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("s.toml");
    let run = |script: &str| -> Value {
        run_written(
            &file,
            &format!(
                "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"sh\", \"-c\", \"{script}\"]\nready_line = \"^ready$\"\n[[steps]]\naction = \"stop\"\nnode = \"app\"\n"
            ),
        )
    };
    // The program exits at once; the line comes 200 ms later from the process it started,
    // which still holds stdout: the exit is always seen first.
    let line = run("(sleep 0.2; echo ready) & exit 0");
    assert_eq!(line["outcome"], "clean", "{line}");
    // Its stdout closes without the line: not ready.
    let line = run("echo nope; exit 0");
    assert_eq!(line["outcome"], "error", "{line}");
    assert!(
        line["diagnostics"]["summary"]
            .as_str()
            .unwrap()
            .contains("program `app` exited with code 0 before it was ready"),
        "{line}"
    );
}

#[test]
fn termwatch_s_nodes_reach_a_program_that_binds_after_they_connected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("s.toml");
    // The proxy binds half a second after termwatch's sockets connected to its endpoints.
    let scenario = "expect = \"clean\"\nstep_timeout = \"10s\"\n[[nodes]]\nname = \"late\"\nkind = \"program\"\ncommand = [\"sh\", \"-c\", \"sleep 0.5; exec \\\"$0\\\" proxy --frontend \\\"$1\\\" --backend \\\"$2\\\"\", \"{termwatch}\", \"{late.in}\", \"{late.out}\"]\nbinds = [\"in\", \"out\"]\nready_line = \"^termwatch proxy: \"\n[[nodes]]\nname = \"pub\"\nkind = \"publisher\"\nconnect = \"late.in\"\nmessages = 50\n[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nmode = \"poll\"\nconnect = \"late.out\"\nexpect_messages = 50\n[[steps]]\naction = \"stop\"\nnode = \"late\"\nhow = \"signal:SIGINT\"\ntimeout = \"2s\"\n";
    let line = run_written(&file, scenario);
    assert_eq!(line["outcome"], "clean", "{line}");
    let program = &line["diagnostics"]["programs"][0];
    let stdout = program["stdout"].as_str().unwrap();
    assert!(
        stdout.contains("forwarding ipc://") && stdout.contains("/late-in -> ipc://"),
        "{stdout}"
    );
    assert_eq!(program["exit"], "exited with code 0", "{program}");
}
