//! `termwatch exec`: one program under a deadline, turned into the same [`ScenarioResult`] and
//! [`RunEvent`]s a scenario gives, so every reporter reads it unchanged.
//!
//! ```text
//! start ─▶ run (until --stop-after / --stop-on-line) ─▶ stop (signal | close stdin) ─▶ exit
//!            └── `wait`: no stop; the deadline counts from the start ──────────────────┘
//! deadline passed: capture every thread's stack ─▶ kill everything ─▶ hang
//! ```
//! The program has ended only when it and every process it started have ended.

use std::path::Path;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::events::RunEvent;
use crate::guard;
use crate::outcome::{Diagnostics, Outcome, ProgramReport, ScenarioResult, StepTiming};
use crate::probe::ProbeReport;
use crate::program::{self, Program, ProgramSpec};
use crate::run_dir;
use crate::runner::signals;
use crate::scenario::Expect;
use crate::scenario::StopHow;
use crate::stacks::{self, Tools};
use crate::trace::RecordedTrace;

/// How often the program is checked.
const TICK: Duration = Duration::from_millis(5);
/// How often its process tree is read from /proc.
const TREE_EVERY: u32 = 10;

/// When the stop is sent.
#[derive(Debug, Clone)]
pub enum StopWhen {
    /// This long after the start.
    After(Duration),
    /// At the first stdout line matching this.
    OnLine(Regex),
}

/// One `termwatch exec` run.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    /// The name in reports (the command line).
    pub name: String,
    /// The program.
    pub spec: ProgramSpec,
    /// How long it may take to exit: after the stop, or from the start with `wait`.
    pub deadline: Duration,
    /// How it is asked to end.
    pub stop: StopHow,
    /// When.
    pub when: StopWhen,
    /// The expected outcome.
    pub expect: Expect,
}

/// The label of the phase before the stop.
pub const RUN_LABEL: &str = "run";

/// Where the run is.
enum Stage {
    /// Before the stop.
    Running,
    /// Waiting for everything to exit, since `since`.
    Ending { since: Instant },
}

/// How the watching ended.
enum End {
    /// The program and everything it started ended.
    Exited,
    /// The deadline of `label` passed; stacks captured while it was still running.
    Hung {
        label: String,
        stacks: Box<stacks::StackCapture>,
        probe: Option<Box<ProbeReport>>,
        alive: Vec<i32>,
    },
    /// termwatch was interrupted.
    Interrupted,
}

/// Runs the program once and gives its verdict. Only a program that cannot start is an `Err`
/// (nothing ran: bad input).
pub fn run_once(
    plan: &ExecPlan,
    exe: &Path,
    send: &dyn Fn(RunEvent),
) -> Result<ScenarioResult, String> {
    let started = Instant::now();
    // Started before the run folder exists, so that it removes the folder if this dies.
    guard::Janitor::get(exe);
    let run_dir = run_dir::create().map_err(|e| format!("cannot create a run folder: {e}"))?;
    signals::register_folder(run_dir.path().to_owned());
    let spawned = Program::spawn(&plan.spec, exe, run_dir.path());
    let mut program = match spawned {
        Ok(program) => program,
        Err(e) => {
            signals::unregister_folder(run_dir.path());
            return Err(format!("cannot start `{}`: {e}", plan.spec.display()));
        }
    };
    signals::register_group(program.pid);
    send(RunEvent::ScenarioStarted {
        name: plan.name.clone(),
    });
    let exit_label = plan.stop.label();
    let mut steps = Vec::new();
    let mut stage = if plan.stop == StopHow::Wait {
        phase_started(plan, &exit_label, send);
        Stage::Ending { since: started }
    } else {
        phase_started(plan, RUN_LABEL, send);
        Stage::Running
    };
    let mut stop_note = None;
    let mut tick = 0u32;
    let end = loop {
        std::thread::sleep(TICK);
        tick += 1;
        if signals::interrupted_by().is_some() {
            break End::Interrupted;
        }
        let lines = program.new_lines();
        let main_exited = program.exited().is_some();
        if main_exited || tick.is_multiple_of(TREE_EVERY) {
            let alive = program.alive();
            if alive.is_empty() {
                break End::Exited;
            }
        }
        match stage {
            Stage::Running => {
                let triggered = match &plan.when {
                    StopWhen::After(after) => started.elapsed() >= *after,
                    StopWhen::OnLine(re) => lines.iter().any(|l| re.is_match(l)),
                };
                let line_overdue =
                    matches!(plan.when, StopWhen::OnLine(_)) && started.elapsed() > plan.deadline;
                if line_overdue {
                    steps.push(timing(RUN_LABEL, started, false));
                    break hung(&mut program, plan, RUN_LABEL);
                }
                if triggered || main_exited {
                    steps.push(timing(RUN_LABEL, started, true));
                    send(RunEvent::PhaseFinished {
                        name: plan.name.clone(),
                        label: RUN_LABEL.to_owned(),
                        duration_ms: ms(started),
                    });
                    if main_exited {
                        stop_note = Some("the program ended before the stop was sent".to_owned());
                    } else {
                        stop_note = send_stop(&mut program, plan.stop);
                    }
                    phase_started(plan, &exit_label, send);
                    stage = Stage::Ending {
                        since: Instant::now(),
                    };
                }
            }
            Stage::Ending { since } => {
                if since.elapsed() > plan.deadline {
                    steps.push(timing(&exit_label, since, false));
                    break hung(&mut program, plan, &exit_label);
                }
            }
        }
    };
    if let (End::Exited, Stage::Ending { since }) = (&end, &stage) {
        steps.push(timing(&exit_label, *since, true));
        send(RunEvent::PhaseFinished {
            name: plan.name.clone(),
            label: exit_label.clone(),
            duration_ms: ms(*since),
        });
    }
    let (status, killed) = program.kill_all();
    signals::unregister_group(program.pid);
    let mut leaks = Vec::new();
    let run_dir_path = run_dir.path().to_owned();
    if let Err(e) = run_dir.close() {
        leaks.push(format!(
            "could not remove the run folder {}: {e}",
            run_dir_path.display()
        ));
    }
    signals::unregister_folder(&run_dir_path);
    let (stdout, stderr) = program.output();
    let exit = status.map_or_else(
        || "could not be waited for".to_owned(),
        program::describe_status,
    );
    let mut report = ProgramReport {
        name: "program".to_owned(),
        command: plan.spec.command.clone(),
        pid: program.pid,
        exit: exit.clone(),
        exit_status: status.map(program::exit_of),
        stdout,
        stderr,
        stacks: None,
        probe: None,
    };
    let (outcome, hang_step, summary) = match end {
        End::Interrupted => (
            Outcome::Interrupted,
            None,
            "the run was interrupted before the program ended".to_owned(),
        ),
        End::Hung {
            label,
            stacks,
            probe,
            alive,
        } => {
            let who = if alive.contains(&program.pid) {
                "the program was still running".to_owned()
            } else {
                format!(
                    "the program {exit}, but what it started was still running: {}",
                    killed.join(", ")
                )
            };
            let mut summary = format!(
                "hang at step `{label}` (deadline {}): {who}",
                humantime::format_duration(plan.deadline)
            );
            if label == RUN_LABEL
                && let StopWhen::OnLine(re) = &plan.when
            {
                summary = format!(
                    "{summary}; it never printed a line matching `{re}`, so the stop was never sent"
                );
            }
            if let Some(note) = stop_note {
                summary.push_str(&format!(" ({note})"));
            }
            for line in &stacks.explanation {
                summary.push_str(&format!("\n{line}"));
            }
            match &probe {
                Some(probe) => summary.push_str(&format!("\n{probe}")),
                None => summary.push_str(&format!(
                    "\n{}",
                    program.probe_note.as_deref().unwrap_or("no probe report")
                )),
            }
            report.stacks = Some(*stacks);
            report.probe = probe.and_then(|p| serde_json::to_value(&*p).ok());
            (Outcome::Hang, Some(label), summary)
        }
        End::Exited => match status {
            Some(s) if s.success() => (
                Outcome::Clean,
                None,
                format!(
                    "the program exited with code 0 within its deadline{}",
                    stop_note.map(|n| format!(" ({n})")).unwrap_or_default()
                ),
            ),
            Some(s) if s.code().is_some() => (
                Outcome::Error,
                None,
                format!("the program {exit}: not a clean exit"),
            ),
            Some(s) => {
                let sent = matches!(plan.stop, StopHow::Signal(sig) if Some(sig as i32) == s.signal_number());
                let note = if sent {
                    " (the stop signal termwatch sent: the program has no handler for it)"
                } else {
                    ""
                };
                (
                    Outcome::Crash,
                    None,
                    format!("crash: the program {exit}{note}"),
                )
            }
            None => (
                Outcome::Error,
                None,
                "the program could not be waited for".to_owned(),
            ),
        },
    };
    let failures = if outcome.matches(plan.expect) {
        Vec::new()
    } else {
        vec![format!(
            "expected {}, got {}",
            plan.expect,
            hang_step
                .as_ref()
                .map_or_else(|| outcome.to_string(), |s| format!("hang at `{s}`"))
        )]
    };
    Ok(ScenarioResult {
        name: plan.name.clone(),
        file: plan.spec.command[0].clone(),
        expect: plan.expect,
        expect_hang_at: None,
        // A program is never proven to hang: its deadline decides.
        proven: (outcome == Outcome::Hang).then_some(false),
        outcome,
        hang_step,
        passed: failures.is_empty(),
        failures,
        duration_ms: ms(started),
        steps,
        diagnostics: Diagnostics {
            summary,
            programs: vec![report],
            ..Diagnostics::default()
        },
        leaks,
        trace: RecordedTrace::default(),
        snapshot: None,
    })
}

/// The signal number of a status killed by a signal.
trait SignalNumber {
    fn signal_number(&self) -> Option<i32>;
}

impl SignalNumber for std::process::ExitStatus {
    fn signal_number(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(self)
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn timing(label: &str, since: Instant, finished: bool) -> StepTiming {
    StepTiming {
        label: label.to_owned(),
        duration_ms: ms(since),
        finished,
        expect_at_least_ms: None,
    }
}

fn phase_started(plan: &ExecPlan, label: &str, send: &dyn Fn(RunEvent)) {
    let timeout_ms = plan.deadline.as_millis().try_into().unwrap_or(u64::MAX);
    send(RunEvent::PhaseStarted {
        name: plan.name.clone(),
        label: label.to_owned(),
        timeout_ms,
    });
}

/// Sends the stop; a note when it could not be sent.
fn send_stop(program: &mut Program, stop: StopHow) -> Option<String> {
    match stop {
        StopHow::Wait => None,
        StopHow::Signal(signal) => program
            .signal(signal)
            .err()
            .map(|e| format!("{signal} could not be sent: {e}")),
        StopHow::StdinClose => {
            program.close_stdin();
            None
        }
    }
}

/// At a deadline: stacks of everything still alive, before it is killed.
fn hung(program: &mut Program, plan: &ExecPlan, label: &str) -> End {
    let alive = program.alive();
    let tools = Tools::find(&plan.spec.command[0]);
    let stacks = stacks::capture(program.pid, &alive, &tools);
    let probe = program.probe_report(&stacks).map(Box::new);
    End::Hung {
        label: label.to_owned(),
        stacks: Box::new(stacks),
        probe,
        alive,
    }
}
