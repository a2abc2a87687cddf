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

use crate::support::{
    COMMAND_TIMEOUT as RUN_TIMEOUT, eventually, live_processes, termwatch, termwatch_process,
    workspace_path,
};

/// Runs to the end (bounded) and returns exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let output = termwatch().args(args).output().expect("termwatch runs");
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

    /// `command` (termwatch, or a shell that ends in it) given the arguments that run the
    /// sandbox's scenarios, TMPDIR in the sandbox, its output piped. Hangs wait for their
    /// deadlines (`--no-early`): these tests need scenario processes that are still hanging.
    fn as_run(&self, mut command: Command) -> Command {
        command
            .arg("run")
            .arg("--no-early")
            .arg(self.scenarios())
            .arg("--root")
            .arg(self.scenarios())
            .env("TMPDIR", self.tmp())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `termwatch run` on the sandbox's scenarios, TMPDIR in the sandbox.
    fn start_run(&self, extra: &[&str]) -> Child {
        self.as_run(termwatch_process())
            .args(extra)
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
    live_processes()
        .into_iter()
        .filter(|p| keep(&p.cmdline, p.group))
        .map(|p| p.pid)
        .collect()
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
    let child = sandbox.start_run(&["--jobs", "2", "--format", "junit", "--output", junit_arg]);
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
            xml.contains("<skipped message=\"the run was interrupted before this scenario ended"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"the run was interrupted before this scenario started"),
            "scenarios that never started are listed as skipped: {xml}"
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
        .unwrap_or_else(|| workspace_path("target/junit-schema/junit-10.xsd"));
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

/// Per scenario name, whether it passed: from the human lines, the JSON lines and the JUnit
/// test cases of one run.
type Verdicts = std::collections::BTreeMap<String, bool>;

fn human_verdicts(stdout: &str) -> Verdicts {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let passed = match words.next()? {
                "PASS" => true,
                "FAIL" => false,
                _ => return None,
            };
            Some((words.next()?.to_owned(), passed))
        })
        .collect()
}

fn json_verdicts(text: &str) -> Verdicts {
    scenario_lines(text)
        .iter()
        .map(|v| {
            let name = v["name"].as_str().expect("a name").to_owned();
            (name, v["passed"].as_bool().expect("passed"))
        })
        .collect()
}

fn junit_verdicts(xml: &str) -> Verdicts {
    xml.split("<testcase ")
        .skip(1)
        .map(|case| {
            let name = case
                .split_once("name=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .expect("a testcase name")
                .0;
            let passed = !case.contains("<failure") && !case.contains("<skipped");
            (name.to_owned(), passed)
        })
        .collect()
}

/// One run writes the human report to stdout, JSON Lines and JUnit XML to files, and the
/// three say the same about every scenario.
#[test]
fn one_run_writes_human_json_and_junit_that_agree() {
    let out = tempfile::tempdir().expect("a temporary folder");
    let (json, xml) = (out.path().join("a.json"), out.path().join("a.xml"));
    let (code, stdout, stderr) = run(&[
        "run",
        "scenarios/",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--junit",
        xml.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let human = human_verdicts(&stdout);
    let json_text = std::fs::read_to_string(&json).expect("the JSON file is written");
    let xml_text = std::fs::read_to_string(&xml).expect("the JUnit file is written");
    assert!(human.len() > 10, "{stdout}");
    assert_eq!(human, json_verdicts(&json_text));
    assert_eq!(human, junit_verdicts(&xml_text));
    let summary: serde_json::Value =
        serde_json::from_str(json_text.lines().last().expect("a summary line")).expect("JSON");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["total"], human.len());
    assert!(
        stdout.contains(&format!("{} passed, 0 failed", human.len())),
        "{stdout}"
    );
    assert_valid_junit(&xml);
}

/// A scenario that fails shows as failed in all three reports, with `--format json` on stdout
/// beside both files (the human report then on stderr).
#[test]
fn reports_agree_on_a_failure_with_json_on_stdout_too() {
    let sandbox = Sandbox::new();
    sandbox.add(
        "unexpected-hang",
        &HANGING
            .replace(
                "expect = \"hang\"\nexpect_hang_at = \"term\"",
                "expect = \"clean\"",
            )
            .replace("timeout = \"60s\"", "timeout = \"200ms\""),
    );
    sandbox.add(
        "expected-hang",
        &HANGING.replace("timeout = \"60s\"", "timeout = \"200ms\""),
    );
    let (json, xml) = (
        sandbox.root.path().join("a.json"),
        sandbox.root.path().join("a.xml"),
    );
    let child = sandbox.start_run(&[
        "--format",
        "json",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--junit",
        xml.to_str().expect("utf-8 path"),
    ]);
    let (status, stdout, stderr) = finish(child);
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    let human = human_verdicts(&stderr);
    let expected: Verdicts = [
        ("expected-hang".to_owned(), true),
        ("unexpected-hang".to_owned(), false),
    ]
    .into();
    assert_eq!(human, expected, "{stderr}");
    assert_eq!(json_verdicts(&stdout), expected);
    let file = std::fs::read_to_string(&json).expect("the JSON file is written");
    assert_eq!(json_verdicts(&file), expected);
    let xml_text = std::fs::read_to_string(&xml).expect("the JUnit file is written");
    assert_eq!(junit_verdicts(&xml_text), expected);
}

#[test]
fn two_reports_on_stdout_are_bad_input() {
    let (code, _, err) = run(&["run", "scenarios/", "--format", "json", "--junit", "-"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("only one report can go to stdout"), "{err}");
}

/// How the parent of a run is made to die.
#[derive(Debug, Clone, Copy)]
enum Death {
    /// `kill -9 PID`.
    Kill9,
    /// `kill -9 -PGID`: the parent's whole process group.
    Kill9Group,
    /// SIGHUP: its terminal closed.
    HangUp,
}

/// Live processes that belong to the sandbox's runs: their command line or their environment
/// (TMPDIR) names the sandbox, so the janitor is found too.
fn run_processes(sandbox: &Sandbox) -> Vec<i32> {
    let needle = sandbox.root.path().to_string_lossy().into_owned();
    live_processes()
        .into_iter()
        .filter(|p| p.cmdline.contains(&needle) || p.environ.contains(&needle))
        .map(|p| p.pid)
        .collect()
}

/// Starts a suite of four scenarios that hang for an hour (two at a time), lets it run for
/// `after`, makes its parent die as `death` says, and returns how long it took until no
/// process of the run and no run folder was left (at most 1 s, or the test fails), and how
/// many scenario processes were running when it died.
fn die_during_hanging_suite(death: Death, after: Duration) -> (Duration, usize) {
    let sandbox = Sandbox::new();
    for i in 0..4 {
        sandbox.add(
            &format!("hang-{i}"),
            &HANGING.replace("timeout = \"60s\"", "timeout = \"1h\""),
        );
    }
    let mut command = sandbox.as_run(termwatch_process());
    command.args(["--jobs", "2"]);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().expect("termwatch starts");
    std::thread::sleep(after);
    let pid = child.id() as i32;
    let running = sandbox.children().len();
    let killed = Instant::now();
    // SAFETY: kill(2) on our own child (or its own process group), not reaped yet.
    unsafe {
        match death {
            Death::Kill9 => libc::kill(pid, libc::SIGKILL),
            Death::Kill9Group => libc::kill(-pid, libc::SIGKILL),
            Death::HangUp => libc::kill(pid, libc::SIGHUP),
        };
    }
    let exited = eventually(Duration::from_secs(1), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let tmp_empty = || {
        std::fs::read_dir(sandbox.tmp())
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false)
    };
    let clean = eventually(Duration::from_secs(1), || {
        run_processes(&sandbox).is_empty() && tmp_empty()
    });
    let took = killed.elapsed();
    let left = run_processes(&sandbox);
    let folders: Vec<_> = std::fs::read_dir(sandbox.tmp())
        .expect("tmp readable")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    for &pid in &left {
        // SAFETY: kill(2) of a process this test's run left behind.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let output = child.wait_with_output().expect("reaped");
    assert!(exited, "{death:?} after {after:?}: termwatch did not exit");
    assert!(
        clean && took <= Duration::from_secs(1),
        "{death:?} after {after:?}: after {took:?}, processes {left:?}, folders {folders:?}"
    );
    if let Death::HangUp = death {
        let stdout = String::from_utf8_lossy(&output.stdout);
        // A SIGHUP before the handler is installed kills it the default way: also 129 to a
        // shell, and nothing had started.
        let by_default =
            std::os::unix::process::ExitStatusExt::signal(&output.status) == Some(libc::SIGHUP);
        if !by_default {
            assert_eq!(output.status.code(), Some(129), "{stdout}");
            assert!(
                stdout.contains("passed,"),
                "results so far printed: {stdout}"
            );
        }
    }
    (took, running)
}

/// The moments at which the parent dies: before, while and after its children start and
/// reach their hang.
const MOMENTS_MS: [u64; 10] = [0, 5, 15, 30, 60, 100, 200, 350, 600, 1000];

fn die_at_every_moment(death: Death) {
    let runs: Vec<(Duration, usize)> = MOMENTS_MS
        .iter()
        .map(|&ms| die_during_hanging_suite(death, Duration::from_millis(ms)))
        .collect();
    let worst = runs.iter().map(|r| r.0).max().unwrap_or_default();
    eprintln!(
        "{death:?}: everything gone within {worst:?} at worst; (time, scenario processes running) per moment: {runs:?}"
    );
    assert!(
        runs.iter().any(|r| r.1 == 2),
        "the parent never died with two hanging children: {runs:?}"
    );
}

#[test]
fn kill_9_of_the_parent_leaves_no_process_and_no_folder() {
    die_at_every_moment(Death::Kill9);
}

#[test]
fn kill_9_of_the_process_group_leaves_no_process_and_no_folder() {
    die_at_every_moment(Death::Kill9Group);
}

#[test]
fn sighup_reports_exits_129_and_leaves_nothing() {
    die_at_every_moment(Death::HangUp);
}

/// An expected hang that ends quickly.
fn quick_hang() -> String {
    HANGING.replace("timeout = \"60s\"", "timeout = \"200ms\"")
}

/// Runs the sandbox's scenarios through `sh` with `umask` and `extra` arguments; returns exit
/// code, stdout and stderr.
fn run_with_umask(sandbox: &Sandbox, umask: &str, extra: &[&Path]) -> (i32, String, String) {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$@\""))
        .arg("sh")
        .arg(termwatch_process().get_program());
    let child = sandbox
        .as_run(shell)
        .args(extra)
        .spawn()
        .expect("sh starts");
    let (status, stdout, stderr) = finish(child);
    (status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn report_files_are_replaced_with_the_umask_mode_and_links_are_followed() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let sandbox = Sandbox::new();
    sandbox.add("quick", &quick_hang());
    let dir = sandbox.root.path();
    let (json, real, link) = (dir.join("a.json"), dir.join("real.xml"), dir.join("a.xml"));
    std::fs::write(&json, "old").expect("written");
    std::fs::set_permissions(&json, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(&real, "old").expect("written");
    symlink("real.xml", &link).expect("link");
    let (code, stdout, stderr) = run_with_umask(
        &sandbox,
        "027",
        &[Path::new("--json"), &json, Path::new("--junit"), &link],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&json), 0o640, "the umask's mode, not the old file's");
    assert_eq!(
        json_verdicts(&std::fs::read_to_string(&json).expect("json")).len(),
        1
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink(),
        "the link is kept"
    );
    assert_eq!(mode(&real), 0o640);
    let xml = std::fs::read_to_string(&real).expect("the link's target is replaced");
    assert_eq!(junit_verdicts(&xml).len(), 1, "{xml}");
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("readable")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "temporary files left: {names:?}");
}

#[test]
fn a_fifo_a_device_and_dash_are_written_as_streams() {
    let sandbox = Sandbox::new();
    sandbox.add("quick", &quick_hang());
    let fifo = sandbox.root.path().join("fifo.xml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("the FIFO is read"))
    };
    let (code, stdout, stderr) = run_with_umask(
        &sandbox,
        "022",
        &[
            Path::new("--junit"),
            &fifo,
            Path::new("--json"),
            Path::new("/dev/null"),
            Path::new("--format"),
            Path::new("json"),
            Path::new("--output"),
            Path::new("-"),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let xml = reader.join().expect("reader");
    assert_eq!(junit_verdicts(&xml).len(), 1, "{xml}");
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo)
            .expect("fifo")
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::metadata("/dev/null")
            .expect("null")
            .file_type()
            .is_char_device()
    );
    assert_eq!(json_verdicts(&stdout).len(), 1, "`-` is stdout: {stdout}");
    assert!(
        stderr.contains("1 passed, 0 failed"),
        "human on stderr: {stderr}"
    );
}

/// A run killed before any scenario ended leaves a valid JUnit document with no test case.
#[test]
fn a_run_killed_before_its_first_verdict_leaves_valid_junit() {
    let sandbox = Sandbox::new();
    sandbox.add(
        "hang",
        &HANGING.replace("timeout = \"60s\"", "timeout = \"1h\""),
    );
    let xml = sandbox.root.path().join("a.xml");
    let child = sandbox.start_run(&["--junit", xml.to_str().expect("utf-8 path")]);
    let running = eventually(RUN_TIMEOUT, || !sandbox.children().is_empty());
    assert!(running, "no scenario started");
    signal(&child, libc::SIGKILL);
    let _ = finish(child);
    let text = std::fs::read_to_string(&xml).expect("the JUnit file exists from the start");
    assert!(text.contains(r#"tests="0""#), "{text}");
    assert_valid_junit(&xml);
}
