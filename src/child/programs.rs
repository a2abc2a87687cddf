//! The child's program nodes: started at the end of setup (their command's `{node}`
//! endpoints filled in from what setup bound or chose for them to bind, `{termwatch}` with this
//! executable's path), ready on a line or after a delay, stopped by a
//! `stop` step that waits until the program and everything it started have exited. At a hang
//! the watchdog takes every running program's stacks and probe report, then kills it.
//! Shared between the main thread (start, stop) and the watchdog (hang), each holding the lock
//! only briefly.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use regex::Regex;

use super::nodes::Note;
use super::topology::Bound;
use crate::lifecycle;
use crate::outcome::ProgramReport;
use crate::probe::ProbeReport;
use crate::program::{self, Program, ProgramSpec};
use crate::scenario::StopHow;
use crate::scenario::{CommandPart, NodeBody, Readiness, Scenario};
use crate::stacks::{self, Tools};
use crate::trace::EventKind;

/// How often a program is checked while the main thread waits for it.
const TICK: Duration = Duration::from_millis(5);

/// How long, after a program exited, its last stdout lines are waited for.
const LAST_LINES: Duration = Duration::from_secs(1);

/// One program node.
struct Slot {
    node: usize,
    name: String,
    command: Vec<String>,
    program: Program,
    trace_lines: Option<Regex>,
    /// Its report, once it has ended (or been killed).
    ended: Option<ProgramReport>,
}

impl Slot {
    /// Stdout lines since the last look; those matching `trace_lines` become trace events.
    fn lines(&mut self) -> Vec<String> {
        let lines = self.program.new_lines();
        self.trace(lines)
    }

    /// The lines still unread once the program has exited (see [`Program::last_lines`]).
    fn last_lines(&mut self) -> Vec<String> {
        let lines = self.program.last_lines(LAST_LINES);
        self.trace(lines)
    }

    fn trace(&self, lines: Vec<String>) -> Vec<String> {
        if let Some(re) = &self.trace_lines {
            for line in lines.iter().filter(|l| re.is_match(l)) {
                lifecycle!(
                    EventKind::ProgramLine,
                    node = self.name.as_str(),
                    line = line.as_str()
                );
            }
        }
        lines
    }

    /// Kills what is left and records the report; `stacks` and `probe` were taken just before.
    fn end(
        &mut self,
        stacks: Option<stacks::StackCapture>,
        probe: Option<&ProbeReport>,
    ) -> &ProgramReport {
        if self.ended.is_none() {
            let probe = probe.and_then(|p| serde_json::to_value(p).ok());
            let (status, _) = self.program.kill_all();
            let exit = status.map_or_else(
                || "could not be waited for".to_owned(),
                program::describe_status,
            );
            lifecycle!(
                EventKind::ProgramExited,
                node = self.name.as_str(),
                exit = exit.as_str()
            );
            let (stdout, stderr) = self.program.output();
            self.ended = Some(ProgramReport {
                name: self.name.clone(),
                command: self.command.clone(),
                pid: self.program.pid,
                exit,
                exit_status: status.map(program::exit_of),
                stdout,
                stderr,
                stacks,
                probe,
            });
        }
        self.ended.as_ref().expect("just set")
    }
}

/// Held by the watchdog from a hang until the process exits.
pub struct HangGuard<'a>(
    #[expect(dead_code, reason = "held, never read")] MutexGuard<'a, Vec<Slot>>,
);

/// Every program node of the scenario.
#[derive(Default)]
pub struct Programs {
    slots: Mutex<Vec<Slot>>,
}

/// One argument of a program's command, its placeholders filled in.
fn resolve(parts: &[CommandPart], bound: &Bound, exe: &Path) -> Result<String, String> {
    parts
        .iter()
        .map(|part| match part {
            CommandPart::Text(t) => Ok(t.clone()),
            CommandPart::Endpoint { node, side } => bound
                .get(&(*node, *side))
                .cloned()
                .ok_or_else(|| format!("node #{node} bound no endpoint to give a program")),
            CommandPart::Termwatch => exe.to_str().map(str::to_owned).ok_or_else(|| {
                format!(
                    "termwatch's own path {} is not UTF-8, so `{{termwatch}}` cannot name it",
                    exe.display()
                )
            }),
        })
        .collect()
}

impl Programs {
    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts every program node and waits until each is ready (the setup phase's deadline
    /// bounds the wait).
    pub fn start(&self, scenario: &Scenario, bound: &Bound, run_dir: &Path) -> Result<(), String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find termwatch's own executable: {e}"))?;
        program::become_subreaper();
        for (node, spec) in scenario.nodes.iter().enumerate() {
            let NodeBody::Program(p) = &spec.body else {
                continue;
            };
            let command = p
                .command
                .iter()
                .map(|parts| resolve(parts, bound, &exe))
                .collect::<Result<Vec<_>, _>>()?;
            let dir: PathBuf = run_dir.join(format!("program-{node}"));
            std::fs::create_dir(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let program_spec = ProgramSpec {
                command: command.clone(),
                env: p.env.clone(),
                cwd: p.cwd.clone(),
            };
            let program = Program::spawn(&program_spec, &exe, &dir).map_err(|e| {
                format!(
                    "cannot start program `{}` ({}): {e}",
                    spec.name,
                    program_spec.display()
                )
            })?;
            lifecycle!(
                EventKind::ProgramStarted,
                node = spec.name.as_str(),
                command = program_spec.display().as_str()
            );
            let trace_lines = p.trace_lines.as_deref().and_then(|t| Regex::new(t).ok());
            self.lock().push(Slot {
                node,
                name: spec.name.clone(),
                command,
                program,
                trace_lines,
                ended: None,
            });
            self.wait_ready(node, &p.ready)?;
        }
        Ok(())
    }

    fn wait_ready(&self, node: usize, ready: &Readiness) -> Result<(), String> {
        let started = Instant::now();
        let pattern = match ready {
            Readiness::Line(p) => Regex::new(p).ok(),
            _ => None,
        };
        loop {
            {
                let mut slots = self.lock();
                let Some(slot) = slots.iter_mut().find(|s| s.node == node) else {
                    return Ok(());
                };
                let ready_in = |lines: &[String]| match ready {
                    Readiness::Spawned => true,
                    Readiness::After(after) => started.elapsed() >= *after,
                    Readiness::Line(_) => pattern
                        .as_ref()
                        .is_some_and(|re| lines.iter().any(|l| re.is_match(l))),
                };
                if ready_in(&slot.lines()) {
                    return Ok(());
                }
                // A program that prints its ready line and exits at once is ready: its exit
                // can be seen before the line is read.
                if slot.program.exited().is_some() {
                    if ready_in(&slot.last_lines()) {
                        return Ok(());
                    }
                    let report = slot.end(None, None);
                    return Err(format!(
                        "program `{}` {} before it was ready{}",
                        report.name,
                        report.exit,
                        tail_note(&report.stderr)
                    ));
                }
            }
            std::thread::sleep(TICK);
        }
    }

    /// The `stop` step: asks the program to end and waits until it and everything it started
    /// have exited (the step's deadline bounds the wait).
    pub fn stop(&self, node: usize, how: StopHow) -> Note {
        {
            let mut slots = self.lock();
            let Some(slot) = slots.iter_mut().find(|s| s.node == node) else {
                return "not a program".to_owned();
            };
            match how {
                StopHow::Wait => {}
                StopHow::Signal(signal) => {
                    let _ = slot.program.signal(signal);
                }
                StopHow::StdinClose => slot.program.close_stdin(),
            }
        }
        loop {
            {
                let mut slots = self.lock();
                let Some(slot) = slots.iter_mut().find(|s| s.node == node) else {
                    return "not a program".to_owned();
                };
                slot.lines();
                if slot.ended.is_some() || slot.program.alive().is_empty() {
                    return format!("program {}", slot.end(None, None).exit);
                }
            }
            std::thread::sleep(TICK);
        }
    }

    /// At a hang: the stacks (and probe report) of every program still running, taken before
    /// it is killed, then every program's report, and the plain-words lines. The returned
    /// guard keeps the main thread out of [`Programs::stop`] (which would see the killed
    /// program as ended and finish the step) until the watchdog has reported and exited.
    pub fn at_hang(&self) -> (Vec<ProgramReport>, Vec<String>, HangGuard<'_>) {
        let mut slots = self.lock();
        let mut words = Vec::new();
        for slot in slots.iter_mut().filter(|s| s.ended.is_none()) {
            let alive = slot.program.alive();
            if alive.is_empty() {
                slot.end(None, None);
                continue;
            }
            let tools = Tools::find(&slot.command[0]);
            let captured = stacks::capture(slot.program.pid, &alive, &tools);
            let probe = slot.program.probe_report(&captured);
            let probe_words = match &probe {
                Some(p) => p.to_string(),
                None => slot.program.probe_note.clone().unwrap_or_default(),
            };
            let report = slot.end(Some(captured), probe.as_ref());
            if let Some(stacks) = &report.stacks {
                words.extend(
                    stacks
                        .explanation
                        .iter()
                        .map(|l| format!("program `{}`: {l}", report.name)),
                );
            }
            words.extend(probe_words.lines().map(str::to_owned));
        }
        let reports = slots.iter().filter_map(|s| s.ended.clone()).collect();
        (reports, words, HangGuard(slots))
    }

    /// At the end of the run: every program's report; one still running (no `stop` step) is
    /// killed.
    pub fn finish(&self) -> Vec<ProgramReport> {
        let mut slots = self.lock();
        slots
            .iter_mut()
            .map(|s| s.end(None, None).clone())
            .collect()
    }
}

fn tail_note(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!("; its stderr ends: {}", l.trim()))
        .unwrap_or_default()
}
