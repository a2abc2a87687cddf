//! The command line as a user meets it: exit codes, JSON fields, and a clear `file:line:col`
//! error with exit code 2 for every kind of bad input, with nothing run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use predicates::prelude::*;
use rstest::rstest;
use serde_json::Value;

use crate::support::{COMMAND_TIMEOUT, termwatch, termwatch_process, workspace_path};

/// The first JSON line of `run --format json`'s stdout.
fn first_json_line(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(text.lines().next().expect("a line")).expect("JSON")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("fixture written");
    path
}

const VALID_NODES: &str = r#"
[[nodes]]
name = "pub"
kind = "publisher"
bind = "auto"

[[nodes]]
name = "sub"
kind = "subscriber"
mode = "idle"
connect = "pub"
"#;

#[rstest]
#[case::malformed_toml(
    "expect = \"clean\"\n[[nodes]\nname = 1\n",
    "2:9",
    "unclosed array table"
)]
#[case::unknown_top_level_field(
    "expect = \"clean\"\ncolour = \"red\"\n",
    "2:1",
    "unknown field `colour`"
)]
#[case::unknown_node_field(
    "expect = \"clean\"\n[[nodes]]\nname = \"a\"\nkind = \"publisher\"\nbind = \"auto\"\nlingr_ms = 5\n",
    "6:1",
    "unknown field `lingr_ms`"
)]
#[case::bad_expect("expect = \"maybe\"\n", "1:10", "unknown variant `maybe`")]
#[case::missing_expect("description = \"x\"\n", "1:1", "missing field `expect`")]
#[case::dangling_connect(
    "expect = \"clean\"\n[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nconnect = \"bus\"\n",
    "5:11",
    "connect names no node `bus`"
)]
#[case::connect_to_node_binding_nothing(
    "expect = \"clean\"\n[[nodes]]\nname = \"a\"\nkind = \"publisher\"\nconnect = \"tcp://127.0.0.1:1\"\n[[nodes]]\nname = \"b\"\nkind = \"subscriber\"\nconnect = \"a\"\n",
    "9:11",
    "binds nothing"
)]
#[case::duplicate_node(
    "expect = \"clean\"\n[[nodes]]\nname = \"a\"\nkind = \"publisher\"\nbind = \"auto\"\n[[nodes]]\nname = \"a\"\nkind = \"publisher\"\nbind = \"auto\"\n",
    "7:8",
    "duplicate node name `a`"
)]
#[case::field_of_another_kind(
    "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nconnect = \"tcp://127.0.0.1:1\"\ntopic = \"t\"\n",
    "6:9",
    "field `topic` does not apply to a subscriber node"
)]
#[case::cancel_on_a_blocking_node(
    "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nconnect = \"tcp://127.0.0.1:1\"\n[[steps]]\naction = \"cancel\"\nnode = \"s\"\n",
    "8:8",
    "applies only to async nodes"
)]
#[case::join_on_an_idle_node(&format!("expect = \"clean\"\n{VALID_NODES}\n[[steps]]\naction = \"join\"\nnode = \"pub\"\n"), "16:8", "needs a node with a thread")]
#[case::steer_on_a_plain_proxy(
    "expect = \"clean\"\n[[nodes]]\nname = \"bus\"\nkind = \"proxy\"\n[[steps]]\naction = \"steer\"\nnode = \"bus\"\ncommand = \"TERMINATE\"\n",
    "7:8",
    "steerable"
)]
#[case::step_on_unknown_node(&format!("expect = \"clean\"\n{VALID_NODES}\n[[steps]]\naction = \"close\"\nnode = \"ghost\"\n"), "16:8", "no node named `ghost`")]
#[case::unknown_context(&format!("expect = \"clean\"\n{VALID_NODES}\n[[steps]]\naction = \"term\"\ncontext = \"other\"\n"), "16:11", "no context named `other`")]
#[case::bad_duration(
    "expect = \"clean\"\nstep_timeout = \"2 parsecs\"\n",
    "2:16",
    "invalid duration"
)]
#[case::sleep_longer_than_its_deadline(
    "expect = \"clean\"\n[[steps]]\naction = \"sleep\"\nfor = \"3s\"\n",
    "4:7",
    "would always hang"
)]
#[case::expect_hang_at_no_step(&format!("expect = \"hang\"\nexpect_hang_at = \"trem\"\n{VALID_NODES}\n[[steps]]\naction = \"term\"\n"), "2:18", "matches no step label")]
#[case::expect_hang_at_without_hang(
    "expect = \"clean\"\nexpect_hang_at = \"traffic\"\n",
    "2:18",
    "needs expect = \"hang\""
)]
#[case::expect_at_least_beyond_deadline(&format!("expect = \"clean\"\n{VALID_NODES}\n[[steps]]\naction = \"term\"\ntimeout = \"1s\"\nexpect_at_least = \"2s\"\n"), "17:19", "not shorter than the step's deadline")]
#[case::send_on_a_receive_only_socket(
    "expect = \"clean\"\n[[nodes]]\nname = \"p\"\nkind = \"socket\"\ntype = \"PULL\"\nbind = \"auto\"\nsend = 3\n",
    "7:8",
    "cannot send"
)]
#[case::proxy_side_for_push(
    "expect = \"clean\"\n[[nodes]]\nname = \"bus\"\nkind = \"proxy\"\n[[nodes]]\nname = \"p\"\nkind = \"socket\"\ntype = \"PUSH\"\nconnect = \"bus\"\n",
    "9:11",
    "say which side"
)]
fn bad_input_is_rejected_with_its_position_and_exit_code_2(
    #[case] text: &str,
    #[case] position: &str,
    #[case] message: &str,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "bad.toml", text);
    for command in ["check", "run"] {
        termwatch()
            .arg(command)
            .arg(&file)
            .assert()
            .code(2)
            .stdout(
                predicate::str::contains("PASS")
                    .not()
                    .and(predicate::str::contains("FAIL").not()),
            )
            .stderr(
                predicate::str::contains(format!("bad.toml:{position}"))
                    .and(predicate::str::contains(message)),
            );
    }
}

#[test]
fn every_error_in_every_file_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "a.toml", "expect = \"clean\"\ncolour = 1\n");
    write(
        dir.path(),
        "b.toml",
        "expect = \"clean\"\n[[steps]]\naction = \"close\"\nnode = \"x\"\n",
    );
    termwatch()
        .args(["check"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("a.toml:2:1")
                .and(predicate::str::contains("b.toml:4:8"))
                .and(predicate::str::contains("2 error(s)")),
        );
}

#[test]
fn two_scenarios_with_one_name_are_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "a.toml",
        "name = \"same\"\nexpect = \"clean\"\n",
    );
    write(
        dir.path(),
        "b.toml",
        "name = \"same\"\nexpect = \"clean\"\n",
    );
    termwatch()
        .arg("run")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already used"));
}

#[test]
fn missing_paths_and_bad_flags_are_usage_errors() {
    termwatch()
        .args(["run", "no/such/folder"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such file or folder"));
    termwatch()
        .args(["run", "--format", "yaml"])
        .assert()
        .code(2);
    termwatch()
        .args(["run", "--timeout", "soon"])
        .assert()
        .code(2);
    termwatch().arg("explode").assert().code(2);
}

#[test]
fn shipped_scenarios_are_valid() {
    termwatch()
        .arg("check")
        .assert()
        .success()
        .stdout(predicate::str::contains("scenario(s) valid"));
}

const HANGS_BUT_EXPECTS_CLEAN: &str = r#"
description = "An idle subscriber left open, but the author expects clean."
expect = "clean"

[[nodes]]
name = "sub"
kind = "subscriber"
mode = "idle"
connect = "tcp://127.0.0.1:1"

[[steps]]
action = "term"
timeout = "200ms"
"#;

#[test]
fn json_lines_carry_the_contract_fields_and_a_missed_expectation_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "wrong.toml", HANGS_BUT_EXPECTS_CLEAN);
    let output = termwatch()
        .args(["run", "--format", "json"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "one scenario line and one summary line: {stdout}"
    );
    let r = &lines[0];
    assert_eq!(r["type"], "scenario");
    for field in [
        "name",
        "file",
        "expect",
        "outcome",
        "hang_step",
        "passed",
        "duration_ms",
        "diagnostics",
    ] {
        assert!(r.get(field).is_some(), "field `{field}` missing from {r}");
    }
    assert_eq!(r["name"], "wrong");
    assert_eq!(r["expect"], "clean");
    assert_eq!(r["outcome"], "hang");
    assert_eq!(r["hang_step"], "term");
    assert_eq!(r["passed"], false);
    let diagnostics = &r["diagnostics"];
    assert!(
        diagnostics["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("hang at step `term`")
    );
    assert_eq!(diagnostics["open_sockets"][0]["node"], "sub");
    assert_eq!(diagnostics["open_sockets"][0]["socket_type"], "SUB");
    assert_eq!(diagnostics["open_sockets"][0]["linger_ms"], 0);
    assert!(
        diagnostics["threads"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(lines[1]["type"], "summary");
    assert_eq!(lines[1]["failed"], 1);
    // Human output goes to stderr in JSON mode.
    assert!(String::from_utf8_lossy(&output.stderr).contains("FAIL"));
}

#[test]
fn the_timeout_flag_overrides_every_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "wrong.toml",
        &HANGS_BUT_EXPECTS_CLEAN.replace("200ms", "30s"),
    );
    let output = termwatch()
        .args([
            "run",
            "--no-early",
            "--format",
            "json",
            "--timeout",
            "100ms",
        ])
        .arg(&file)
        .output()
        .expect("runs");
    let line = first_json_line(&output.stdout);
    assert_eq!(line["hang_step"], "term");
    assert_eq!(line["proven"], false);
    assert!(
        line["diagnostics"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("deadline 100ms")
    );
}

#[test]
fn repro_stops_at_the_first_hang_and_prints_everything() {
    let root = workspace_path("scenarios");
    termwatch()
        .args(["repro", "--repeat", "3", "--root"])
        .arg(&root)
        .arg(root.join("async-subscriber/runtime-stopped.toml"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("▶ term")
                .and(predicate::str::contains(
                    "its runtime was stopped, so nothing can close it",
                ))
                .and(predicate::str::contains(
                    "stopped at the first hang (run 1 of at most 3)",
                )),
        );
}

#[test]
fn filter_selects_by_name() {
    termwatch()
        .args(["list", "--filter", "async-subscriber/"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("async-subscriber/runtime-stopped")
                .and(predicate::str::contains("linger/").not()),
        );
}

#[test]
fn a_scenario_that_cannot_be_set_up_is_an_error_never_a_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A valid address no host here has (TEST-NET-1, RFC 5737): the bind fails at run time.
    let text = "expect = \"clean\"\n[[nodes]]\nname = \"pub\"\nkind = \"publisher\"\nbind = \"tcp://192.0.2.1:5\"\n";
    let file = write(dir.path(), "unbindable.toml", text);
    let output = termwatch()
        .args(["run", "--format", "json"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let line = first_json_line(&output.stdout);
    assert_eq!(line["outcome"], "error");
    assert_eq!(line["passed"], false);
    assert!(
        line["diagnostics"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("cannot bind tcp://192.0.2.1:5"),
        "{line}"
    );
}

#[test]
fn a_scenario_process_refuses_a_parent_of_another_protocol_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "ok.toml",
        &format!("expect = \"clean\"\n{VALID_NODES}"),
    );
    let output = termwatch()
        .args(["__run-scenario", "--root"])
        .arg(dir.path())
        .arg("--file")
        .arg(&file)
        .arg("--run-dir")
        .arg(dir.path())
        .args(["--protocol", "999"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(4));
    let message = first_json_line(&output.stdout);
    assert_eq!(message["msg"], "failed");
    assert!(
        message["message"]
            .as_str()
            .is_some_and(|m| m.contains("protocol version 999")),
        "{message}"
    );
}

#[rstest]
#[case::zero_timeout(&["run", "--timeout", "0s"], "a deadline must be longer than zero")]
#[case::zero_jobs(&["run", "--jobs", "0"], "must be at least 1")]
#[case::zero_repro_repeat(&["repro", "scenarios/linger/blocky-false.toml", "--repeat", "0"], "--repeat")]
#[case::missing_root(&["run", "--root", "/nonexistent"], "no such folder")]
#[case::missing_trace_root(&["trace", "x.toml", "--root", "/nonexistent"], "no such folder")]
#[case::zero_trace_timeout(&["trace", "x.toml", "--timeout", "0ms"], "longer than zero")]
fn meaningless_numbers_and_missing_roots_are_usage_errors(
    #[case] args: &[&str],
    #[case] message: &str,
) {
    termwatch()
        .args(args)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(message));
}

/// `| head -1`: once the reader of stdout is gone the run stops, quietly, with 0.
#[test]
fn json_to_a_closed_pipe_ends_quietly_with_0() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = termwatch_process()
        .args(["run", "scenarios/", "--format", "json", "--jobs", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a first line");
    // The reader is dropped here: stdout is closed.
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while child.try_wait().expect("waits").is_none() {
        assert!(std::time::Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("reaped");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(first.starts_with('{'), "{first}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn the_log_variable_shows_debug_logs_and_rejects_nonsense() {
    termwatch()
        .env("TERMWATCH_LOG", "debug")
        .args([
            "run",
            "scenarios/linger/blocky-false.toml",
            "--snapshots",
            "off",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("scenario process started"));
    termwatch()
        .env("TERMWATCH_LOG", "verbose")
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "TERMWATCH_LOG: `verbose` is not a level",
        ));
}

#[test]
fn every_bad_input_fixture_is_exit_2_with_short_excerpts() {
    let output = termwatch()
        .args([
            "check",
            "--root",
            "tests/fixtures/bad-input",
            "tests/fixtures/bad-input",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "long-line.toml:2:20018:",
        "not-utf8.toml:2:19: byte 0xE9 is not UTF-8",
        "size-too-large.toml:6:8: size must be from 1 to 67108864 bytes",
        "name-climbs-out.toml:1:8:",
    ] {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
    // The 20 000-character line is cut around its column, never echoed whole.
    let longest = stderr.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1000, "a {longest}-byte line in the output");
}

#[test]
fn a_symlink_loop_is_named_once_as_a_loop() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "a.toml", "expect = \"clean\"\n");
    std::fs::create_dir(dir.path().join("sub")).expect("folder");
    std::os::unix::fs::symlink("..", dir.path().join("sub/up")).expect("symlink");
    std::os::unix::fs::symlink("self.toml", dir.path().join("self.toml")).expect("symlink");
    let output = termwatch()
        .arg("check")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sub/up: symlink loop: this is folder"),
        "{stderr}"
    );
    assert!(
        stderr.contains("self.toml: symlink loop: this link leads back to itself"),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn automatic_ipc_paths_are_measured_in_the_temporary_directory_in_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "ipc.toml",
        "expect = \"clean\"\ntransport = \"ipc\"\n[[nodes]]\nname = \"bus\"\nkind = \"proxy\"\n",
    );
    let long_tmp = dir.path().join("t".repeat(100));
    termwatch()
        .arg("check")
        .arg(&file)
        .env("TMPDIR", &long_tmp)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("ipc.toml:4:8: the automatic ipc endpoint of node `bus`")
                .and(predicate::str::contains("limit of 107 bytes"))
                .and(predicate::str::contains("TMPDIR")),
        );
    termwatch().arg("check").arg(&file).assert().code(0);
}

#[test]
fn a_name_that_climbs_out_writes_nothing_anywhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenarios = dir.path().join("a/b/scenarios");
    std::fs::create_dir_all(&scenarios).expect("folders");
    let file = write(
        &scenarios,
        "x.toml",
        "name = \"../../../escaped\"\nexpect = \"clean\"\n",
    );
    termwatch()
        .args(["run", "--snapshots", "update", "--snapshot-dir"])
        .arg(dir.path().join("a/b/snapshots"))
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("x.toml:1:8:").and(predicate::str::contains("`..`")));
    let mut written = Vec::new();
    let mut stack = vec![dir.path().to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path != file {
                written.push(path);
            }
        }
    }
    assert!(written.is_empty(), "written: {written:?}");
}

/// A scenario whose `requires` command fails is not run: `SKIP` with the command and its last
/// line of stderr, `skipped` in JSON and JUnit, counted as neither passed nor failed (exit 0);
/// the commands run in the scenario file's folder.
#[test]
fn a_scenario_whose_requirement_fails_is_skipped_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Run, it would fail: the idle SUB keeps term waiting, and it expects clean.
    write(
        dir.path(),
        "lacking.toml",
        "expect = \"clean\"\nrequires = [[\"true\"], [\"sh\", \"-c\", \"echo first >&2; echo 'No module named zmq' >&2; exit 1\"]]\n[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nmode = \"idle\"\nconnect = \"tcp://127.0.0.1:1\"\n[[steps]]\naction = \"term\"\ntimeout = \"100ms\"\n",
    );
    write(dir.path(), "marker", "");
    write(
        dir.path(),
        "present.toml",
        &format!("expect = \"clean\"\nrequires = [[\"test\", \"-f\", \"marker\"]]\n{VALID_NODES}"),
    );
    let junit = dir.path().join("out.xml");
    let output = termwatch()
        .args(["run", "--format", "json", "--junit"])
        .arg(&junit)
        .arg("--root")
        .arg(dir.path())
        .arg(dir.path())
        .output()
        .expect("ran");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let reason = "requires `sh -c 'echo first >&2; echo '\\''No module named zmq'\\'' >&2; exit 1'`, which exited with code 1: No module named zmq";
    let lacking = lines
        .iter()
        .find(|l| l["name"] == "lacking")
        .expect("lacking");
    assert_eq!(lacking["outcome"], "skipped", "{text}");
    assert_eq!(lacking["passed"], true);
    assert_eq!(lacking["diagnostics"]["summary"], reason);
    assert!(lacking["steps"].as_array().is_some_and(Vec::is_empty));
    let present = lines
        .iter()
        .find(|l| l["name"] == "present")
        .expect("present");
    assert_eq!(present["outcome"], "clean", "{text}");
    let summary = lines.last().expect("summary");
    assert_eq!(
        (&summary["passed"], &summary["failed"], &summary["skipped"]),
        (&Value::from(1), &Value::from(0), &Value::from(1)),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        xml.contains("<skipped message=\"requires `sh -c &apos;echo first")
            || xml.contains("<skipped message=\"requires `sh -c 'echo first"),
        "{xml}"
    );

    let human = termwatch()
        .arg("run")
        .arg("--root")
        .arg(dir.path())
        .arg(dir.path())
        .output()
        .expect("ran");
    let text = String::from_utf8_lossy(&human.stdout);
    assert_eq!(human.status.code(), Some(0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("SKIP  lacking") && l.ends_with(reason)),
        "{text}"
    );
    assert!(text.contains("skipped: 1 scenario(s)"), "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 0 failed"), "{text}");
}
