//! The CI features end to end, through the built binary: sharding, JUnit output (validated
//! against Jenkins' junit-10.xsd when `xmllint` is installed), flake detection with
//! `--repeat`, interruption with SIGINT/SIGTERM, and a child killed from outside.
//!
//! Every test that starts processes has a timeout and a guard that kills whatever it started,
//! found by the test's unique temporary folder in the processes' command lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

/// A run that takes longer than this is stuck: the test fails and kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn termwatch() -> Command {
    let mut command = Command::cargo_bin("termwatch").expect("the termwatch binary is built");
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// Runs to the end (with [`RUN_TIMEOUT`]) and returns exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let output = assert_cmd::Command::from_std(termwatch())
        .args(args)
        .timeout(RUN_TIMEOUT)
        .output()
        .expect("termwatch runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `"type": "scenario"` lines of JSON output.
fn scenario_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every stdout line is JSON"))
        .filter(|v| v["type"] == "scenario")
        .collect()
}

fn names_listed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_scenario_lands_in_exactly_one_shard_of_either_kind() {
    let (code, all, _) = run(&["list", "scenarios"]);
    assert_eq!(code, 0);
    let mut everything = names_listed(&all);
    everything.sort();
    assert!(!everything.is_empty());
    for kind in ["slice", "hash"] {
        for total in [1, 2, 3, 5] {
            let mut union = Vec::new();
            for shard in 1..=total {
                let partition = format!("{kind}:{shard}/{total}");
                let (code, out, err) = run(&["list", "scenarios", "--partition", &partition]);
                assert_eq!(code, 0, "{partition}: {err}");
                union.extend(names_listed(&out));
            }
            union.sort();
            assert_eq!(union, everything, "{kind} over {total} shards");
        }
    }
}

#[test]
fn run_shards_together_run_every_scenario_once() {
    let (_, all, _) = run(&["list", "scenarios"]);
    let everything: BTreeSet<String> = names_listed(&all).into_iter().collect();
    let mut ran = Vec::new();
    for shard in 1..=3 {
        let partition = format!("hash:{shard}/3");
        let (code, out, err) = run(&[
            "run",
            "scenarios",
            "--partition",
            &partition,
            "--format",
            "json",
        ]);
        assert_eq!(code, 0, "{partition}: {err}");
        ran.extend(
            scenario_lines(&out)
                .iter()
                .map(|v| v["name"].as_str().unwrap_or_default().to_owned()),
        );
    }
    let unique: BTreeSet<String> = ran.iter().cloned().collect();
    assert_eq!(unique.len(), ran.len(), "a scenario ran twice: {ran:?}");
    assert_eq!(unique, everything);
}

#[test]
fn bad_partitions_are_bad_input() {
    for bad in [
        "hash:0/3",
        "hash:4/3",
        "slice:1/0",
        "count:1/2",
        "hash:1",
        "slice:x/2",
    ] {
        let (code, _, err) = run(&["list", "scenarios", "--partition", bad]);
        assert_eq!(code, 2, "{bad}");
        assert!(err.contains("invalid partition"), "{bad}: {err}");
    }
}

/// A folder for one test: `scenarios/` for its files, `tmp/` as the runs' TMPDIR. Dropping it
/// kills every process whose command line names it.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("termwatch-ci-test-")
            .tempdir()
            .expect("a temporary folder");
        std::fs::create_dir(root.path().join("scenarios")).expect("scenarios folder");
        std::fs::create_dir(root.path().join("tmp")).expect("tmp folder");
        Sandbox { root }
    }

    fn scenarios(&self) -> PathBuf {
        self.root.path().join("scenarios")
    }

    fn tmp(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    fn add(&self, name: &str, text: &str) {
        std::fs::write(self.scenarios().join(format!("{name}.toml")), text)
            .expect("scenario written");
    }

    /// `termwatch run` on the sandbox's scenarios, TMPDIR in the sandbox.
    fn start_run(&self, extra: &[&str]) -> Child {
        termwatch()
            .arg("run")
            .arg(self.scenarios())
            .arg("--root")
            .arg(self.scenarios())
            .args(extra)
            .env("TMPDIR", self.tmp())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("termwatch starts")
    }

    /// Pids of live processes whose command line names the sandbox.
    fn processes(&self) -> Vec<i32> {
        let needle = self.root.path().to_string_lossy().into_owned();
        processes_where(|cmdline, _| cmdline.contains(&needle))
    }

    /// Scenario children (`__run-scenario`) of this sandbox that are running.
    fn children(&self) -> Vec<i32> {
        let needle = self.root.path().to_string_lossy().into_owned();
        processes_where(|cmdline, _| {
            cmdline.contains(&needle) && cmdline.contains("__run-scenario")
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for pid in self.processes() {
            // SAFETY: kill(2) with a pid read from /proc; at worst the process is gone.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Live (not zombie) processes for which `keep(cmdline, process group)` holds.
fn processes_where(keep: impl Fn(&str, i32) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let zombie = fields.first() == Some(&"Z");
            let group = fields.get(2).and_then(|g| g.parse().ok()).unwrap_or(0);
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            !zombie && keep(&cmdline, group)
        })
        .collect()
}

/// Polls `condition` until it holds; false after `timeout`.
fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Waits for `child` to exit, at most [`RUN_TIMEOUT`]; returns its status and output.
fn finish(mut child: Child) -> (ExitStatus, String, String) {
    let exited = eventually(RUN_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("termwatch is reaped");
    assert!(exited, "termwatch did not exit within {RUN_TIMEOUT:?}");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// A real hang with a long deadline: term waits for a blocking subscriber's socket, which its
/// thread keeps after ETERM.
const HANGING: &str = r#"
description = "term waits a minute for a socket kept after ETERM"
expect = "hang"
expect_hang_at = "term"

[[nodes]]
name = "pub"
kind = "publisher"
bind = "auto"
topic = "t"
messages = 1

[[nodes]]
name = "sub"
kind = "subscriber"
connect = "pub"
subscribe = ["t"]
on_eterm = "keep"

[[steps]]
action = "close"
node = "pub"

[[steps]]
action = "term"
timeout = "60s"
"#;

/// Interrupts a run of hanging scenarios with `signals` once two children are in their
/// hang; checks the exit code, the report (summary and a valid JUnit file), and that nothing
/// is left behind.
fn interrupt_hanging_suite(signals: &[i32], expected_code: i32) {
    let sandbox = Sandbox::new();
    for i in 0..4 {
        sandbox.add(&format!("hang-{i}"), HANGING);
    }
    let junit = sandbox.root.path().join("junit.xml");
    let junit_arg = junit.to_str().expect("utf-8 path");
    // `--no-early`: the hang is provable at once; the test needs children still hanging.
    let child = sandbox.start_run(&[
        "--jobs",
        "2",
        "--no-early",
        "--format",
        "junit",
        "--output",
        junit_arg,
    ]);
    let mut groups = BTreeSet::new();
    let running = eventually(RUN_TIMEOUT, || {
        groups.extend(sandbox.children());
        sandbox.children().len() >= 2
    });
    assert!(running, "no scenario process started");
    // Let both children reach their hanging `term` (setup and traffic take milliseconds).
    std::thread::sleep(Duration::from_millis(300));
    groups.extend(sandbox.children());
    for &s in signals {
        signal(&child, s);
    }
    let (status, stdout, stderr) = finish(child);
    assert_eq!(status.code(), Some(expected_code), "{stdout}\n{stderr}");
    if signals.len() == 1 {
        assert!(stdout.contains("interrupted:"), "{stdout}");
        assert!(stdout.contains("passed,"), "no summary: {stdout}");
        let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written");
        assert!(
            xml.contains("<skipped message=\"the run was interrupted"),
            "{xml}"
        );
        assert_valid_junit(&junit);
    }
    let cleaned = eventually(Duration::from_secs(5), || {
        sandbox.processes().is_empty()
            && processes_where(|_, group| groups.contains(&group)).is_empty()
    });
    assert!(cleaned, "processes left: {:?}", sandbox.processes());
    let left: Vec<_> = std::fs::read_dir(sandbox.tmp())
        .expect("tmp readable")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn sigint_mid_run_reports_exits_130_and_leaves_nothing() {
    interrupt_hanging_suite(&[libc::SIGINT], 130);
}

#[test]
fn sigterm_mid_run_exits_143_and_leaves_nothing() {
    interrupt_hanging_suite(&[libc::SIGTERM], 143);
}

/// Two SIGINTs back to back: the second may find the run already ending (or be merged with the
/// first by the kernel), so this checks the outcome either way (130, nothing left behind), not
/// which path the second one took.
#[test]
fn two_sigints_in_a_row_exit_130_and_leave_nothing() {
    interrupt_hanging_suite(&[libc::SIGINT, libc::SIGINT], 130);
}

#[test]
fn a_child_killed_from_outside_is_a_crash() {
    let sandbox = Sandbox::new();
    sandbox.add(
        "long-sleep",
        r#"
description = "sleeps long enough to be killed from outside"
expect = "crash"

[[nodes]]
name = "lonely"
kind = "socket"
type = "PAIR"
bind = "auto"

[[steps]]
action = "sleep"
for = "30s"
timeout = "60s"
"#,
    );
    let child = sandbox.start_run(&["--format", "json"]);
    let mut victims = Vec::new();
    let found = eventually(RUN_TIMEOUT, || {
        victims = sandbox.children();
        !victims.is_empty()
    });
    assert!(found, "the scenario's process never started");
    // SAFETY: kill(2) on the scenario's process, found by our sandbox path.
    unsafe { libc::kill(victims[0], libc::SIGKILL) };
    let (status, stdout, stderr) = finish(child);
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    let lines = scenario_lines(&stdout);
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["outcome"], "crash", "{stdout}");
    let summary = lines[0]["diagnostics"]["summary"]
        .as_str()
        .unwrap_or_default();
    assert!(summary.contains("SIGKILL"), "{summary}");
}

/// The fixture hangs in roughly half its attempts on an idle machine, and more often on a
/// loaded one; 50 attempts that all end alike are then very unlikely but not impossible, so a
/// run that saw one verdict only is tried again (at most three runs). Whatever the counts, a
/// scenario with two verdicts must be flaky, and one with one verdict must not.
#[test]
fn a_timing_dependent_scenario_is_reported_flaky() {
    let mut flaky_runs = 0;
    for _ in 0..3 {
        let (code, out, err) = run(&[
            "run",
            "tests/fixtures/flaky",
            "--root",
            "tests/fixtures",
            "--repeat",
            "50",
            "--timeout",
            "100ms",
            "--format",
            "json",
        ]);
        let lines = scenario_lines(&out);
        assert_eq!(lines.len(), 1, "{out}");
        let line = &lines[0];
        assert_eq!(line["attempts"], 50);
        let verdicts = line["verdicts"].as_array().expect("verdict counts");
        let counted: u64 = verdicts
            .iter()
            .map(|v| v["count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(counted, 50);
        let outcomes: BTreeSet<&str> = verdicts
            .iter()
            .filter_map(|v| v["outcome"].as_str())
            .collect();
        if outcomes.len() == 2 {
            assert_eq!(outcomes, BTreeSet::from(["clean", "hang"]));
            assert_eq!(line["status"], "flaky", "{line}");
            assert_eq!(line["passed"], false, "{line}");
            assert_eq!(code, 1, "{err}");
            assert!(err.contains("FLAKY"), "{err}");
            flaky_runs += 1;
            break;
        }
        let expected = if outcomes.contains("clean") {
            "passed"
        } else {
            "failed"
        };
        assert_eq!(line["status"], expected, "one verdict only: {line}");
    }
    assert_eq!(flaky_runs, 1, "three runs of 50 attempts never varied");
}

/// Validates `xml_file` with `xmllint --schema` against Jenkins' junit-10.xsd, found through
/// `TERMWATCH_JUNIT_XSD` (set by `.ci/run` from `ci/junit-schema.sh`) or where that script
/// leaves it; skipped with a note when the schema or xmllint is not there (see
/// tests/fixtures/junit/README.md).
fn assert_valid_junit(xml_file: &Path) {
    let schema = std::env::var_os("TERMWATCH_JUNIT_XSD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/junit-schema/junit-10.xsd")
        });
    if !schema.is_file() {
        eprintln!(
            "note: JUnit schema validation skipped: no schema at {} (run ci/junit-schema.sh)",
            schema.display()
        );
        return;
    }
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(xml_file)
        .output()
    {
        Ok(output) => assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => eprintln!(
            "note: schema validation skipped, xmllint unavailable ({e}); apt-get install libxml2-utils"
        ),
    }
}

#[test]
fn junit_output_validates_and_carries_the_hang_diagnostics() {
    let sandbox = Sandbox::new();
    let mut unexpected = HANGING.replace(
        "expect = \"hang\"\nexpect_hang_at = \"term\"",
        "expect = \"clean\"",
    );
    unexpected = unexpected.replace("timeout = \"60s\"", "timeout = \"200ms\"");
    sandbox.add("unexpected-hang", &unexpected);
    sandbox.add(
        "expected-hang",
        &HANGING.replace("timeout = \"60s\"", "timeout = \"200ms\""),
    );
    let report = sandbox.root.path().join("junit.xml");
    let child = sandbox.start_run(&[
        "--format",
        "junit",
        "--output",
        report.to_str().expect("utf-8 path"),
    ]);
    let (status, stdout, stderr) = finish(child);
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed, 1 failed"),
        "human output still on stdout: {stdout}"
    );
    let xml = std::fs::read_to_string(&report).expect("the JUnit file is written");
    assert!(xml.contains(r#"<testcase name="expected-hang""#), "{xml}");
    assert!(
        xml.contains("message=\"expected clean, got hang at `term`: hang at step `term`"),
        "{xml}"
    );
    assert!(xml.contains(r#"type="hang""#), "{xml}");
    assert!(
        xml.contains("sockets still open:"),
        "full diagnostics in the text: {xml}"
    );
    assert_valid_junit(&report);

    let flaky_report = sandbox.root.path().join("flaky.xml");
    let (code, _, err) = run(&[
        "run",
        "tests/fixtures/flaky",
        "--root",
        "tests/fixtures",
        "--repeat",
        "20",
        "--timeout",
        "100ms",
        "--format",
        "junit",
        "--output",
        flaky_report.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_valid_junit(&flaky_report);
}
