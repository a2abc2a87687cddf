//! The parent side: runs scenarios in child processes (the binary re-executing itself with
//! [`ChildArgs`], each in a process group of its own), turns their streamed messages into
//! [`RunEvent`]s and owns every verdict.
//!
//! ```text
//! worker thread ─spawn─▶ child (own pgid) ──JSON lines──▶ reader thread ─▶ worker
//!      │ backstop: step deadline + grace, no message → parent declares the hang
//!      └─▶ reap, kill the group, check leaks, remove the run folder ─▶ ScenarioFinished
//! ```
//! A hang is an outcome, not an error: only a failure to start a child at all is an `Err`.

pub mod requires;
pub mod signals;
pub mod stress;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::child::proof::EarlyVerdicts;
use crate::child::protocol::{self, ChildArgs, ChildMessage, PROTOCOL_VERSION};
use crate::events::RunEvent;
use crate::guard;
use crate::outcome::{Diagnostics, Outcome, ScenarioResult, StepTiming};
use crate::run_dir;
use crate::scenario::{SETUP_LABEL, Scenario};
use crate::trace::RecordedTrace;
use crate::trace::snapshot::{self, SnapshotOptions};

/// Time a child gets after its deadline to report, and after its report to exit.
const GRACE: Duration = Duration::from_millis(1000);
/// Time the child gets to capture its programs' stacks at a hang (gdb and py-spy, bounded).
const STACK_CAPTURE: Duration = Duration::from_secs(60);
/// Time a child gets to start and say hello.
const STARTUP: Duration = Duration::from_secs(10);
/// How much of a child's stderr is kept.
const STDERR_TAIL: usize = 8 * 1024;

/// How to run scenarios.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenarios run at once.
    pub jobs: usize,
    /// Replaces every deadline.
    pub timeout: Option<Duration>,
    /// The root scenario names are relative to.
    pub root: PathBuf,
    /// The executable to re-run as the child (this binary).
    pub executable: PathBuf,
    /// Whether and where each run's trace is compared with its snapshot.
    pub snapshots: SnapshotOptions,
    /// Whether the child proves hangs at the start of their step.
    pub early: EarlyVerdicts,
    /// The answers to the scenarios' `requires` commands, shared by every scenario of the run.
    pub requirements: Arc<requires::Requirements>,
}

/// Runs every scenario, `jobs` at a time, calling `on_event` on the calling thread in the
/// order events arrive (for each scenario, [`RunEvent::ScenarioStarted`] once its process
/// started, [`RunEvent::ScenarioFinished`] last). Returns the indices of the scenarios that
/// never started because the run was stopped, in order.
pub fn run_all(
    scenarios: &[Scenario],
    options: &RunOptions,
    mut on_event: impl FnMut(&RunEvent),
) -> Vec<usize> {
    let next = Mutex::new(0usize);
    let (tx, rx) = mpsc::channel::<(usize, RunEvent)>();
    let mut finished = vec![false; scenarios.len()];
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1).min(scenarios.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let index = {
                        let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                        let i = *n;
                        *n += 1;
                        i
                    };
                    if index >= scenarios.len() || signals::stopping() {
                        break;
                    }
                    let send = |event| {
                        let _ = tx.send((index, event));
                    };
                    let result = run_one(&scenarios[index], options, &send);
                    send(RunEvent::ScenarioFinished(Box::new(result)));
                }
            });
        }
        drop(tx);
        for (index, event) in rx {
            on_event(&event);
            finished[index] |= matches!(event, RunEvent::ScenarioFinished(_));
        }
    });
    (0..scenarios.len()).filter(|&i| !finished[i]).collect()
}

/// What the reader threads pass to the worker.
enum Incoming {
    Message(ChildMessage),
    Garbage(String),
    Closed,
}

/// The phase or step the child said it began and has not finished yet.
struct Running {
    label: String,
    started: Instant,
}

/// The hang the child's watchdog declared.
struct Hung {
    label: String,
    diagnostics: Diagnostics,
    /// Whether the child proved it rather than waiting out the deadline.
    proven: bool,
}

/// Everything the child said, gathered.
#[derive(Default)]
struct Transcript {
    steps: Vec<StepTiming>,
    current: Option<Running>,
    hang: Option<Hung>,
    parent_declared_hang: bool,
    finished: Option<Diagnostics>,
    failed: Option<String>,
    /// Why the scenario was not run (a `requires` command failed).
    skipped: Option<String>,
    panicked: Option<String>,
    garbage: Vec<String>,
    trace: RecordedTrace,
}

/// Runs one scenario in a child and returns its verdict. Never panics, never hangs.
pub fn run_one(
    scenario: &Scenario,
    options: &RunOptions,
    send: &dyn Fn(RunEvent),
) -> ScenarioResult {
    let started = Instant::now();
    let name = scenario.name.clone();
    if let Some(reason) = options.requirements.unmet(scenario) {
        let transcript = Transcript {
            skipped: Some(reason),
            ..Transcript::default()
        };
        return verdict_without_child(scenario, started, transcript);
    }
    let janitor = guard::Janitor::get(&options.executable);
    let run_dir = match run_dir::create() {
        Ok(dir) => dir,
        Err(e) => {
            return error_result(
                scenario,
                started,
                format!("cannot create a run folder: {e}"),
            );
        }
    };
    signals::register_folder(run_dir.path().to_owned());
    let args = ChildArgs {
        file: scenario.file.clone(),
        root: options.root.clone(),
        timeout: options.timeout,
        run_dir: run_dir.path().to_owned(),
        protocol: PROTOCOL_VERSION,
        early: options.early,
    };
    let mut command = Command::new(&options.executable);
    command
        .args(args.command_line())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    guard::tie_to_run(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            signals::unregister_folder(run_dir.path());
            return error_result(
                scenario,
                started,
                format!("cannot start the scenario's process: {e}"),
            );
        }
    };
    let pgid = child.id() as i32;
    if let Some(janitor) = janitor {
        janitor.group(pgid);
    }
    signals::register_group(pgid);
    tracing::debug!(scenario = %name, pid = pgid, run_dir = %run_dir.path().display(), "scenario process started");
    send(RunEvent::ScenarioStarted { name: name.clone() });

    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let incoming =
                    serde_json::from_str(&line).map_or(Incoming::Garbage(line), Incoming::Message);
                if tx.send(incoming).is_err() {
                    break;
                }
            }
        }
        let _ = tx.send(Incoming::Closed);
    });
    let stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut tail = Vec::new();
        if let Some(mut stderr) = stderr {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });

    let mut transcript = listen(scenario, &rx, &name, send);
    transcript.trace.redactions.run_dir = run_dir.path().display().to_string();
    let status = reap(
        &mut child,
        pgid,
        transcript.hang.is_some() || transcript.parent_declared_hang,
    );
    let mut leaks = leftover_processes(pgid);
    signals::kill_group(pgid);
    signals::unregister_group(pgid);
    if let Some(janitor) = janitor {
        janitor.forget_group(pgid);
    }
    let _ = reader.join();
    let stderr_text = stderr_reader.join().unwrap_or_default();
    leaks.extend(leftover_explicit_ipc(scenario));
    let run_dir_path = run_dir.path().to_owned();
    if let Err(e) = run_dir.close() {
        leaks.push(format!(
            "could not remove the run folder {}: {e}",
            run_dir_path.display()
        ));
    }
    signals::unregister_folder(&run_dir_path);
    let ending = Ending {
        status,
        stderr: stderr_text,
        leaks,
        interrupted: signals::stopping(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    let garbage = transcript.garbage.len();
    let mut result = observe(scenario, transcript, ending);
    // Runs that could not set up or were interrupted have no trace worth comparing.
    if !matches!(result.outcome, Outcome::Error | Outcome::Interrupted) {
        result.snapshot = snapshot::compare(
            scenario,
            &result.normalized_trace(scenario),
            &options.snapshots,
        );
    }
    judge(&mut result, garbage);
    tracing::debug!(scenario = %name, outcome = %result.outcome, passed = result.passed, "scenario process ended");
    result
}

/// Reads the child's messages until it reports an end, or its deadline plus grace passes.
fn listen(
    scenario: &Scenario,
    rx: &mpsc::Receiver<Incoming>,
    name: &str,
    send: &dyn Fn(RunEvent),
) -> Transcript {
    let mut t = Transcript::default();
    // Program nodes' stacks are captured before the hang report is sent.
    let grace = if scenario.has_programs() {
        GRACE + STACK_CAPTURE
    } else {
        GRACE
    };
    let mut backstop = Instant::now() + STARTUP;
    loop {
        let message = match rx.recv_timeout(backstop.saturating_duration_since(Instant::now())) {
            Ok(Incoming::Message(m)) => m,
            Ok(Incoming::Garbage(line)) => {
                t.garbage.push(line);
                continue;
            }
            Ok(Incoming::Closed) | Err(RecvTimeoutError::Disconnected) => return t,
            Err(RecvTimeoutError::Timeout) => {
                t.parent_declared_hang = true;
                return t;
            }
        };
        match message {
            ChildMessage::Hello { version, pid } => {
                if let Err(message) = protocol::version_matches(version, "the scenario's process") {
                    t.failed = Some(message);
                    return t;
                }
                t.trace.redactions.pid = Some(pid);
            }
            ChildMessage::Trace { event } => t.trace.events.push(*event),
            ChildMessage::PhaseStarted {
                label,
                step: _,
                timeout_ms,
            } => {
                backstop = Instant::now() + Duration::from_millis(timeout_ms) + grace;
                t.current = Some(Running {
                    label: label.clone(),
                    started: Instant::now(),
                });
                send(RunEvent::PhaseStarted {
                    name: name.to_owned(),
                    label,
                    timeout_ms,
                });
            }
            ChildMessage::PhaseFinished {
                label,
                step,
                duration_us,
            } => {
                let duration_ms = duration_us as f64 / 1000.0;
                t.current = None;
                backstop = Instant::now() + scenario.step_timeout + grace;
                t.steps.push(StepTiming {
                    label: label.clone(),
                    duration_ms,
                    finished: true,
                    expect_at_least_ms: at_least_ms(scenario, step),
                });
                send(RunEvent::PhaseFinished {
                    name: name.to_owned(),
                    label,
                    duration_ms,
                });
            }
            ChildMessage::Hang {
                label,
                step,
                elapsed_us,
                diagnostics,
                proof,
            } => {
                let duration_ms = elapsed_us as f64 / 1000.0;
                t.steps.push(StepTiming {
                    label: label.clone(),
                    duration_ms,
                    finished: false,
                    expect_at_least_ms: at_least_ms(scenario, step),
                });
                t.current = None;
                t.hang = Some(Hung {
                    label,
                    diagnostics,
                    proven: proof.is_some(),
                });
                return t;
            }
            ChildMessage::Finished {
                open_sockets,
                nodes,
                programs,
            } => {
                let summary = if open_sockets.is_empty() {
                    "every step finished within its deadline".to_owned()
                } else {
                    format!(
                        "every step finished within its deadline; {} socket(s) were still open at the end (a warning: the scenario ended without closing them)",
                        open_sockets.len()
                    )
                };
                t.finished = Some(Diagnostics {
                    summary,
                    open_sockets,
                    threads: Vec::new(),
                    nodes,
                    programs,
                    ..Diagnostics::default()
                });
                return t;
            }
            ChildMessage::Failed { message } => {
                t.failed = Some(message);
                return t;
            }
            ChildMessage::Panicked { thread, message } => {
                t.panicked = Some(format!("thread `{thread}` panicked: {message}"));
                backstop = Instant::now() + GRACE;
            }
        }
    }
}

fn at_least_ms(scenario: &Scenario, step: Option<usize>) -> Option<f64> {
    step.and_then(|i| scenario.steps.get(i))
        .and_then(|s| s.expect_at_least)
        .map(|d| d.as_secs_f64() * 1000.0)
}

/// A clean run whose program nodes did not all exit with code 0 is not clean: death by a
/// signal is a crash, another code an error (the summary says which program and how).
fn programs_outcome(diagnostics: &mut Diagnostics) -> Outcome {
    use crate::outcome::ProgramExit;
    let mut outcome = Outcome::Clean;
    let mut problems = Vec::new();
    for p in &diagnostics.programs {
        match p.exit_status {
            Some(ProgramExit::Code { code: 0 }) => {}
            Some(ProgramExit::Signal { .. }) => {
                outcome = Outcome::Crash;
                problems.push(format!("program `{}` {}", p.name, p.exit));
            }
            _ => {
                if outcome == Outcome::Clean {
                    outcome = Outcome::Error;
                }
                problems.push(format!("program `{}` {}: not a clean exit", p.name, p.exit));
            }
        }
    }
    if !problems.is_empty() {
        diagnostics.summary = format!("{}; {}", problems.join("; "), diagnostics.summary);
    }
    outcome
}

/// Waits for the child to exit, at most [`GRACE`] (a hanging child is killed at once).
fn reap(child: &mut Child, pgid: i32, hung: bool) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + GRACE;
    if !hung {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => break,
            }
        }
    } else {
        // A child that declared a hang is exiting by itself; give it a moment, then kill.
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    signals::kill_group(pgid);
    child.wait().ok()
}

/// Processes still in the child's group after the child itself exited.
fn leftover_processes(pgid: i32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (comm_part, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let (state, pgrp) = (fields.first()?, fields.get(2)?.parse::<i32>().ok()?);
            (pgrp == pgid && *state != "Z").then(|| {
                let comm = comm_part.split_once('(').map_or("", |(_, c)| c);
                format!("process {pid} ({comm}) was still running in the scenario's process group; killed")
            })
        })
        .collect()
}

/// ipc files at explicit `ipc://` endpoints of the scenario that still exist; removed.
fn leftover_explicit_ipc(scenario: &Scenario) -> Vec<String> {
    use crate::scenario::{BindSpec, NodeBody};
    scenario
        .nodes
        .iter()
        .filter_map(|n| match &n.body {
            NodeBody::Endpoint(e) => match &e.bind {
                Some(BindSpec::Explicit(ep)) => ep.ipc_file().map(Path::to_owned),
                _ => None,
            },
            NodeBody::Proxy { .. } | NodeBody::Program(_) => None,
        })
        .filter(|path: &PathBuf| path.exists())
        .map(|path| {
            let removed = std::fs::remove_file(&path).is_ok();
            format!(
                "ipc socket file {} was left behind{}",
                path.display(),
                if removed { "; removed" } else { "" }
            )
        })
        .collect()
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}

fn error_result(scenario: &Scenario, started: Instant, message: String) -> ScenarioResult {
    let transcript = Transcript {
        failed: Some(message),
        ..Transcript::default()
    };
    verdict_without_child(scenario, started, transcript)
}

/// The verdict on a scenario whose process never started: `transcript` says why.
fn verdict_without_child(
    scenario: &Scenario,
    started: Instant,
    transcript: Transcript,
) -> ScenarioResult {
    let ending = Ending {
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        ..Ending::default()
    };
    let mut result = observe(scenario, transcript, ending);
    judge(&mut result, 0);
    result
}

/// How the child's process ended, as the parent saw it.
#[derive(Debug, Default)]
struct Ending {
    /// Its exit status, when it could be waited for.
    status: Option<std::process::ExitStatus>,
    /// The tail of its stderr.
    stderr: String,
    /// What it left behind.
    leaks: Vec<String>,
    /// Whether the run was interrupted by then.
    interrupted: bool,
    /// Wall time of the whole child process.
    duration_ms: f64,
}

/// What happened: the outcome, the step that hung and the diagnostics, from what the child said
/// and how it ended. The verdict is not decided here: see [`judge`].
fn observe(scenario: &Scenario, t: Transcript, ending: Ending) -> ScenarioResult {
    let Ending {
        status,
        stderr,
        leaks,
        interrupted,
        duration_ms,
    } = ending;
    let stderr_if_any = (!stderr.trim().is_empty()).then_some(stderr);
    let mut steps = t.steps;
    let failed = |summary: String, stderr: Option<String>| Diagnostics {
        summary,
        stderr,
        ..Diagnostics::default()
    };
    let proven = match (&t.hang, t.parent_declared_hang) {
        (Some(hung), _) => Some(hung.proven),
        (None, true) => Some(false),
        (None, false) => None,
    };
    let (outcome, hang_step, diagnostics) = if let Some(reason) = t.skipped {
        (Outcome::Skipped, None, failed(reason, None))
    } else if let Some(hung) = t.hang {
        (Outcome::Hang, Some(hung.label), hung.diagnostics)
    } else if let Some(mut diagnostics) = t.finished.filter(|_| status.is_some_and(|s| s.success()))
    {
        let outcome = programs_outcome(&mut diagnostics);
        (outcome, None, diagnostics)
    } else if let Some(message) = t.failed {
        let summary = format!("the scenario could not run: {message}");
        (Outcome::Error, None, failed(summary, stderr_if_any))
    } else if interrupted {
        let summary = "the run was interrupted before this scenario ended".to_owned();
        (Outcome::Interrupted, None, failed(summary, None))
    } else if t.parent_declared_hang {
        let label = match t.current {
            Some(running) => {
                steps.push(StepTiming {
                    label: running.label.clone(),
                    duration_ms: running.started.elapsed().as_secs_f64() * 1000.0,
                    finished: false,
                    expect_at_least_ms: None,
                });
                running.label
            }
            None => SETUP_LABEL.to_owned(),
        };
        let summary = format!(
            "hang at step `{label}`: the scenario's process sent no report by its deadline plus {} of grace (its watchdog could not run), so the harness killed it; no diagnostics from inside",
            humantime::format_duration(GRACE)
        );
        (Outcome::Hang, Some(label), failed(summary, stderr_if_any))
    } else {
        let how = match status {
            Some(s) if s.signal().is_some() => {
                format!("was killed by {}", signal_name(s.signal().unwrap_or(0)))
            }
            Some(s) => format!(
                "exited with code {} without a report",
                s.code().unwrap_or(-1)
            ),
            None => "could not be waited for".to_owned(),
        };
        let during = t
            .current
            .map(|running| format!(" during `{}`", running.label))
            .unwrap_or_default();
        let panic = t.panicked.map(|p| format!(": {p}")).unwrap_or_default();
        let summary = format!("crash: the scenario's process {how}{during}{panic}");
        (Outcome::Crash, None, failed(summary, stderr_if_any))
    };
    ScenarioResult {
        name: scenario.name.clone(),
        file: scenario.file.display().to_string(),
        expect: scenario.expect,
        expect_hang_at: scenario.expect_hang_at.clone(),
        outcome,
        proven: proven.filter(|_| outcome == Outcome::Hang),
        hang_step,
        passed: false,
        failures: Vec::new(),
        duration_ms,
        steps,
        diagnostics,
        leaks,
        trace: t.trace,
        snapshot: None,
    }
}

/// The verdict: every way `result` missed its scenario's expectations (the outcome and step,
/// each step's `expect_at_least`, `garbage` unreadable lines from the child, its snapshot), and
/// whether it passed. The one place `passed` is decided.
fn judge(result: &mut ScenarioResult, garbage: usize) {
    let mut failures = Vec::new();
    if result.outcome == Outcome::Skipped {
        // Nothing ran, so nothing could miss: a skipped scenario neither passes nor fails.
        result.passed = true;
        result.failures = failures;
        return;
    }
    let step_missed = result
        .expect_hang_at
        .as_ref()
        .is_some_and(|step| result.hang_step.as_ref() != Some(step));
    if !result.outcome.matches(result.expect) || step_missed {
        failures.push(format!(
            "expected {}, got {}",
            result.expected(),
            result.got()
        ));
    }
    for s in &result.steps {
        if let Some(at_least) = s.expect_at_least_ms
            && s.finished
            && s.duration_ms < at_least
        {
            failures.push(format!(
                "step `{}` took {:.1} ms, expected at least {at_least:.0} ms",
                s.label, s.duration_ms
            ));
        }
    }
    if garbage > 0 {
        failures.push(format!(
            "the scenario's process wrote {garbage} line(s) the harness could not read"
        ));
    }
    failures.extend(result.snapshot.as_ref().and_then(|s| s.failure.clone()));
    result.passed = failures.is_empty();
    result.failures = failures;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::process::ExitStatus;

    fn scenario(expect: &str) -> Scenario {
        let text = format!(
            "expect = \"{expect}\"\n{}\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nmode = \"idle\"\nconnect = \"tcp://127.0.0.1:1\"\n[[steps]]\naction = \"term\"\nexpect_at_least = \"100ms\"\n",
            if expect == "hang" {
                "expect_hang_at = \"term\""
            } else {
                ""
            }
        );
        crate::scenario::parse(Path::new("t.toml"), &text, "t").expect("valid")
    }

    /// The verdict on a transcript, as [`run_one`] makes it (without snapshots).
    fn verdict(
        scenario: &Scenario,
        t: Transcript,
        status: Option<ExitStatus>,
        stderr: &str,
    ) -> ScenarioResult {
        let ending = Ending {
            status,
            stderr: stderr.to_owned(),
            ..Ending::default()
        };
        let mut result = observe(scenario, t, ending);
        judge(&mut result, 0);
        result
    }

    fn timing(label: &str, duration_ms: f64, finished: bool) -> StepTiming {
        StepTiming {
            label: label.to_owned(),
            duration_ms,
            finished,
            expect_at_least_ms: Some(100.0),
        }
    }

    #[test]
    fn a_clean_run_that_was_too_fast_fails_its_expect_at_least() {
        let t = Transcript {
            steps: vec![timing("term", 3.0, true)],
            finished: Some(Diagnostics::default()),
            ..Transcript::default()
        };
        let r = verdict(&scenario("clean"), t, Some(ExitStatus::from_raw(0)), "");
        assert_eq!(r.outcome, Outcome::Clean);
        assert!(!r.passed);
        assert!(
            r.failures[0].contains("expected at least 100 ms"),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn a_hang_at_the_expected_step_passes_and_elsewhere_fails() {
        let hang_at = |label: &str| Transcript {
            hang: Some(Hung {
                label: label.to_owned(),
                diagnostics: Diagnostics::default(),
                proven: false,
            }),
            ..Transcript::default()
        };
        let s = scenario("hang");
        let ok = verdict(&s, hang_at("term"), None, "");
        assert!(ok.passed, "{:?}", ok.failures);
        let wrong = verdict(&s, hang_at("traffic"), None, "");
        assert_eq!(
            wrong.failures,
            vec!["expected hang at `term`, got hang at `traffic`".to_owned()]
        );
    }

    #[test]
    fn a_child_killed_by_a_signal_is_a_crash_with_its_stderr() {
        let t = Transcript {
            current: Some(Running {
                label: "traffic".to_owned(),
                started: Instant::now(),
            }),
            ..Transcript::default()
        };
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        let r = verdict(&scenario("clean"), t, Some(killed), "last words\n");
        assert_eq!(r.outcome, Outcome::Crash);
        assert!(
            r.diagnostics
                .summary
                .contains("killed by SIGKILL during `traffic`"),
            "{}",
            r.diagnostics.summary
        );
        assert_eq!(r.diagnostics.stderr.as_deref(), Some("last words\n"));
    }

    #[test]
    fn an_interrupted_run_is_told_to_the_verdict_not_read_from_a_global() {
        let ending = Ending {
            interrupted: true,
            ..Ending::default()
        };
        let r = observe(&scenario("clean"), Transcript::default(), ending);
        assert_eq!(r.outcome, Outcome::Interrupted);
    }

    #[test]
    fn a_snapshot_failure_fails_the_verdict() {
        let t = Transcript {
            finished: Some(Diagnostics::default()),
            ..Transcript::default()
        };
        let ending = Ending {
            status: Some(ExitStatus::from_raw(0)),
            ..Ending::default()
        };
        let mut r = observe(&scenario("clean"), t, ending);
        r.snapshot = Some(snapshot::SnapshotVerdict {
            path: "snapshots/t.snap".to_owned(),
            status: snapshot::SnapshotStatus::Missing,
            diff: None,
            failure: Some("no snapshot at snapshots/t.snap".to_owned()),
        });
        judge(&mut r, 0);
        assert!(!r.passed);
        assert_eq!(
            r.failures,
            vec!["no snapshot at snapshots/t.snap".to_owned()]
        );
    }

    #[test]
    fn a_silent_child_past_its_backstop_is_a_hang_declared_by_the_parent() {
        let t = Transcript {
            current: Some(Running {
                label: "term".to_owned(),
                started: Instant::now(),
            }),
            parent_declared_hang: true,
            ..Transcript::default()
        };
        let r = verdict(&scenario("hang"), t, None, "");
        assert_eq!(
            (r.outcome, r.hang_step.as_deref(), r.passed),
            (Outcome::Hang, Some("term"), true)
        );
        assert!(r.diagnostics.summary.contains("sent no report"));
    }
}
