//! `termwatch exec`: programs that misbehave in every way a shutdown can (ignore SIGINT, exit
//! with an error code, crash, print nothing, leave a child running) each get a clear verdict,
//! and nothing they started is left running afterwards, also when termwatch itself is killed
//! (`exec`, or the `run` of a scenario that runs the program).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{eventually, live_processes, termwatch, termwatch_process};

/// Runs `exec --format json ARGS`; returns the exit code and the scenario line.
fn exec_json(args: &[&str]) -> (i32, Value) {
    let out = termwatch()
        .arg("exec")
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("termwatch ran");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_else(|| {
        panic!(
            "no JSON line; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(line).expect("JSON"),
    )
}

/// The state letter of process `pid` (`R`, `S`, `T` stopped, `Z` zombie…), `None` when gone.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn is_alive(pid: i32) -> bool {
    state(pid).is_some_and(|s| !matches!(s, 'Z' | 'X'))
}

/// Waits (bounded) until none of `pids` runs any more.
fn assert_all_gone(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| is_alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive: Vec<i32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
    assert!(alive.is_empty(), "still running: {alive:?}");
}

/// The pids a test program wrote into `file`, one per line.
fn pids_in(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn program_pid(line: &Value) -> i32 {
    line["diagnostics"]["programs"][0]["pid"]
        .as_i64()
        .expect("pid") as i32
}

#[test]
fn a_program_that_ignores_sigint_hangs_at_its_stop_and_is_killed() {
    let (code, line) = exec_json(&[
        "--deadline",
        "500ms",
        "--stop",
        "signal:SIGINT",
        "--stop-on-line",
        "^ready$",
        "--expect",
        "hang",
        "--",
        "sh",
        "-c",
        "trap '' INT; echo ready; while :; do sleep 1; done",
    ]);
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["type"], "scenario");
    assert_eq!(line["outcome"], "hang");
    assert_eq!(line["hang_step"], "stop (SIGINT)");
    let summary = line["diagnostics"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("the program was still running"),
        "{summary}"
    );
    let stacks = &line["diagnostics"]["programs"][0]["stacks"];
    assert!(
        stacks["processes"][0]["threads"][0]["syscall"].is_string(),
        "{stacks}"
    );
    assert_all_gone(&[program_pid(&line)]);
}

#[test]
fn an_error_exit_code_is_an_error_that_names_the_code_and_keeps_stderr() {
    let (code, line) = exec_json(&["--", "sh", "-c", "echo 'cannot open config' >&2; exit 3"]);
    assert_eq!(code, 1);
    assert_eq!(line["outcome"], "error");
    assert!(
        line["diagnostics"]["summary"]
            .as_str()
            .unwrap()
            .contains("exited with code 3")
    );
    assert_eq!(
        line["diagnostics"]["programs"][0]["stderr"],
        "cannot open config\n"
    );
}

#[test]
fn death_by_a_signal_is_a_crash_that_names_the_signal() {
    let (code, line) = exec_json(&["--", "sh", "-c", "kill -SEGV $$"]);
    assert_eq!(code, 1);
    assert_eq!(line["outcome"], "crash");
    let summary = line["diagnostics"]["summary"].as_str().unwrap();
    assert!(summary.contains("killed by SIGSEGV"), "{summary}");
}

#[test]
fn a_silent_program_never_gets_its_stop_line_and_hangs_at_run() {
    let (code, line) = exec_json(&[
        "--deadline",
        "300ms",
        "--stop",
        "signal:SIGTERM",
        "--stop-on-line",
        "listening",
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(code, 1);
    assert_eq!(line["hang_step"], "run");
    let summary = line["diagnostics"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("never printed a line matching `listening`"),
        "{summary}"
    );
    assert_eq!(line["diagnostics"]["programs"][0]["stdout"], "");
    assert_all_gone(&[program_pid(&line)]);
}

#[test]
fn a_quiet_program_that_exits_zero_is_clean_and_stdin_close_stops_a_reader() {
    let (code, line) = exec_json(&["--", "true"]);
    assert_eq!((code, line["outcome"].as_str()), (0, Some("clean")));
    let (code, line) = exec_json(&["--stop", "stdin-close", "--deadline", "5s", "--", "cat"]);
    assert_eq!(
        (code, line["outcome"].as_str()),
        (0, Some("clean")),
        "{line}"
    );
}

#[test]
fn a_child_that_outlives_the_program_is_a_hang_that_names_it_and_is_killed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 300 & echo $! > {p}; setsid sleep 301 & echo $! >> {p}; exit 0",
        p = pids.display()
    );
    let (code, line) = exec_json(&["--deadline", "500ms", "--", "sh", "-c", &script]);
    assert_eq!(code, 1);
    assert_eq!(line["hang_step"], "exit");
    let summary = line["diagnostics"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("the program exited with code 0, but what it started was still running")
            && summary.contains("(sleep)"),
        "{summary}"
    );
    let started = pids_in(&pids);
    assert_eq!(started.len(), 2);
    assert_all_gone(&started);
}

#[test]
fn nothing_is_left_running_when_termwatch_itself_is_killed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pids = dir.path().join("pids");
    let script = format!(
        "echo $$ > {p}; sleep 300 & echo $! >> {p}; setsid sleep 301 & echo $! >> {p}; wait",
        p = pids.display()
    );
    let mut termwatch = termwatch_process()
        .args(["exec", "--deadline", "60s", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("termwatch started");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids_in(&pids).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let termwatch see the process that left the group, then kill it with no chance to clean up.
    std::thread::sleep(Duration::from_millis(300));
    termwatch.kill().expect("SIGKILL sent");
    termwatch.wait().expect("reaped");
    let started = pids_in(&pids);
    assert_eq!(started.len(), 3, "the program did not start in time");
    assert_all_gone(&started);
}

/// Kills what a test started and did not see end: termwatch, a decoy, and every process that
/// carries the program's marker (`TERMWATCH_RUN=…`, once known).
struct Cleanup {
    termwatch: std::process::Child,
    decoy: std::process::Child,
    marker: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in [&mut self.termwatch, &mut self.decoy] {
            let _ = child.kill();
            let _ = child.wait();
        }
        let Some(marker) = &self.marker else { return };
        for process in live_processes().iter().filter(|p| p.has_env(marker)) {
            // SAFETY: kill(2) of a process this test's termwatch started.
            unsafe { libc::kill(process.pid, libc::SIGKILL) };
        }
    }
}

/// The variable that marks every process a run starts (see docs/ci.md).
const RUN_VARIABLE: &str = "TERMWATCH_RUN";

/// The marker entry (`TERMWATCH_RUN=…`) of an environment as /proc gives it.
fn marker_of(environ: &str) -> Option<&str> {
    environ.split('\0').find(|e| {
        e.strip_prefix(RUN_VARIABLE)
            .is_some_and(|rest| rest.starts_with('='))
    })
}

/// Runs `termwatch ARGS`, where `args` makes the command line from a shell script that waits
/// for a file and then double-forks a daemon (fork, setsid, fork; the middle one exits) that
/// sleeps. termwatch runs as if started by another termwatch's run, beside a process of that
/// run. Once the program runs, the process that watches its tree (its parent) is frozen, so the
/// daemon leaves the group unseen and only its marker tells the janitor about it; then
/// termwatch is SIGKILLed. The program, the daemon and the janitors must end, the other run's
/// process must not.
fn a_daemon_that_left_unseen_dies_with_termwatch(args: impl Fn(&str) -> Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (go, pid_file) = (dir.path().join("go"), dir.path().join("daemon"));
    let script = format!(
        "echo ready; while [ ! -e {go} ]; do sleep 0.01; done; \
         sh -c 'setsid sh -c \"echo \\$\\$ > {pid}.new && mv {pid}.new {pid}; exec sleep 317\" &'; \
         exec sleep 316",
        go = go.display(),
        pid = pid_file.display()
    );
    let value = format!("outer-{}", std::process::id());
    let outer = format!("{RUN_VARIABLE}={value}");
    let decoy = std::process::Command::new("sleep")
        .arg("318")
        .env(RUN_VARIABLE, &value)
        .spawn()
        .expect("decoy started");
    let termwatch = termwatch_process()
        .args(args(&script))
        .env(RUN_VARIABLE, &value)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut cleanup = Cleanup {
        termwatch: termwatch.expect("termwatch started"),
        decoy,
        marker: None,
    };
    // The program once it has exec'd (between fork and exec a child still shows its parent's
    // command line and environment), and its watcher's janitor.
    let program = || {
        live_processes()
            .into_iter()
            .find(|p| p.cmdline.starts_with("sh -c echo ready;") && p.cmdline.contains(&script))
    };
    let janitor = |watcher: i32| {
        live_processes()
            .into_iter()
            .find(|p| p.parent == watcher && p.cmdline.contains(" __janitor "))
    };
    assert!(
        eventually(Duration::from_secs(30), || program()
            .is_some_and(|p| janitor(p.parent).is_some())),
        "the program did not start"
    );
    let program = program().unwrap();
    let watcher = program.parent;
    let janitor = janitor(watcher).unwrap();
    let marker = marker_of(&program.environ)
        .expect("the program carries a marker")
        .to_owned();
    cleanup.marker = Some(marker.clone());
    let watcher_environ = live_processes()
        .into_iter()
        .find(|p| p.pid == watcher)
        .expect("the watcher runs")
        .environ;
    assert_ne!(
        marker_of(&watcher_environ),
        Some(marker.as_str()),
        "the program carries its watcher's own marker, not the one the watcher inherited"
    );
    assert_ne!(marker, outer);
    // `<pid>.<start time>` in base 36: the watcher's own.
    let named = marker
        .strip_prefix(&format!("{RUN_VARIABLE}="))
        .and_then(|owner| owner.split_once('.'))
        .and_then(|(pid, _)| i32::from_str_radix(pid, 36).ok());
    assert_eq!(named, Some(watcher), "{marker} names the watcher {watcher}");
    assert_eq!(marker_of(&janitor.environ), None, "the janitor is no run's");
    // SAFETY: kill(2) of the watcher, a process this test's termwatch started (or termwatch).
    unsafe { libc::kill(watcher, libc::SIGSTOP) };
    assert!(
        eventually(Duration::from_secs(30), || state(watcher) == Some('T')),
        "the watcher did not stop"
    );
    std::fs::write(&go, "").expect("go");
    let daemon = || {
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        live_processes().into_iter().find(|p| p.pid == pid)
    };
    // Reparented to the watcher (a subreaper) once the middle process is gone; exec'd sleep.
    assert!(
        eventually(Duration::from_secs(30), || daemon()
            .is_some_and(
                |d| d.parent == watcher && d.cmdline.trim_end() == "sleep 317"
            )),
        "the daemon did not start"
    );
    let daemon = daemon().unwrap();
    assert!(daemon.has_env(&marker));
    assert_ne!(daemon.group, program.group, "the daemon left the group");
    cleanup.termwatch.kill().expect("SIGKILL sent");
    cleanup.termwatch.wait().expect("reaped");
    assert_all_gone(&[program.pid, daemon.pid, janitor.pid, watcher]);
    assert_eq!(
        cleanup.decoy.try_wait().expect("decoy"),
        None,
        "a janitor killed a process of another run"
    );
}

#[test]
fn a_daemon_that_left_the_group_unseen_dies_with_a_killed_termwatch_and_nothing_else_does() {
    a_daemon_that_left_unseen_dies_with_termwatch(|script| {
        ["exec", "--deadline", "60s", "--", "sh", "-c", script]
            .map(str::to_owned)
            .to_vec()
    });
}

#[test]
fn a_daemon_of_a_scenario_s_program_dies_with_a_killed_termwatch_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("daemon.toml");
    let file_name = file.display().to_string();
    a_daemon_that_left_unseen_dies_with_termwatch(|script| {
        let scenario = format!(
            "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = [\"sh\", \"-c\", {script:?}]\nready_line = \"^ready\"\n[[steps]]\naction = \"stop\"\nnode = \"app\"\nhow = \"stdin-close\"\n"
        );
        std::fs::write(&file, scenario).expect("scenario written");
        ["run", "--snapshots", "off", &file_name]
            .map(str::to_owned)
            .to_vec()
    });
}

#[test]
fn repeat_counts_verdicts_and_bad_usage_is_exit_2() {
    let (code, line) = exec_json(&["--repeat", "3", "--", "true"]);
    assert_eq!(code, 0);
    assert_eq!(line["attempts"], 3);
    assert_eq!(line["verdicts"][0]["count"], 3);
    for args in [
        vec!["exec", "--stop-after", "1s", "--", "true"],
        vec!["exec", "--stop", "signal:NOPE", "--", "true"],
        vec!["exec", "--", "/nonexistent/program"],
        vec![
            "exec",
            "--stop",
            "signal:INT",
            "--stop-on-line",
            "(",
            "--",
            "true",
        ],
    ] {
        let out = termwatch().args(&args).output().expect("ran");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
