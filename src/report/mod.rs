//! Reporting: the [`Reporter`] receives every [`RunEvent`] of a run, gathers the attempts of
//! each scenario into a [`Tally`], and fans events, tallies and the end of the run out to
//! [`Sink`]s: `human` for terminals, `json` for JSON Lines, `junit` for JUnit XML, any number
//! at once (each to its own [`output::Target`]). The `progress` bar is drawn beside them and
//! cleared whenever a sink writes. Reporters never reach into the runner.
//!
//! ```text
//! runner ──RunEvent──▶ Reporter ──┬─▶ progress bar
//!                        │ tallies ├─▶ HumanSink  (stdout, or stderr when a report has stdout)
//!                        ▼         ├─▶ JsonSink   (--format json, --json FILE)
//!                   RunSummary     └─▶ JunitSink  (--format junit, --junit FILE)
//! ```
//!
//! Apart from runs, `catalogue` renders the scenario files themselves as a Markdown page
//! (`termwatch list --format markdown`).

pub mod catalogue;
pub mod human;
pub mod json;
pub mod junit;
pub mod output;
pub mod progress;

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use crate::events::RunEvent;
use crate::outcome::ScenarioResult;
use crate::repeat::{Status, Tallies, Tally};
use progress::Progress;

/// Counts of a finished run, one per scenario (however many attempts it had).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenarios that ran to a verdict.
    pub total: usize,
    /// Scenarios that met their expectation (every attempt).
    pub passed: usize,
    /// Scenarios that did not, flaky ones included.
    pub failed: usize,
    /// Scenarios not run because this machine lacks what they `requires`.
    pub skipped: usize,
    /// Scenarios whose verdict varied between attempts (counted in `failed` too).
    pub flaky: usize,
    /// Scenarios cut short by an interruption before any verdict.
    pub interrupted: usize,
    /// Scenarios an interruption kept from starting at all.
    pub not_started: usize,
}

impl Summary {
    /// Counts `tallies`, and the `not_started` scenarios.
    pub fn of(tallies: &[Tally], not_started: usize) -> Self {
        let count = |status| tallies.iter().filter(|t| t.status == status).count();
        let interrupted = count(Status::Interrupted);
        let passed = count(Status::Passed);
        let skipped = count(Status::Skipped);
        Summary {
            total: tallies.len(),
            passed,
            failed: tallies.len() - passed - interrupted - skipped,
            skipped,
            flaky: count(Status::Flaky),
            interrupted,
            not_started,
        }
    }
}

/// What a sink can see of the run when it is told something.
#[derive(Debug, Clone, Copy)]
pub struct RunState<'a> {
    /// The tallies of the scenarios done so far: in the order they finished, and at the end
    /// in the order the scenarios were selected.
    pub done: &'a [Tally],
    /// Names of the selected scenarios that never started (known at the end only).
    pub not_started: &'a [String],
    /// Time since the run started.
    pub elapsed: Duration,
}

/// A destination of a run's report. Every method has a default that ignores what it is told.
pub trait Sink {
    /// Where it writes, for error messages (`stdout`, `--junit a.xml`).
    fn describe(&self) -> String;

    /// Whether it writes to stdout.
    fn writes_stdout(&self) -> bool;

    /// The run begins.
    fn run_started(&mut self, _run: RunState<'_>) -> io::Result<()> {
        Ok(())
    }

    /// An event of the runner, as it arrived.
    fn event(&mut self, _event: &RunEvent) -> io::Result<()> {
        Ok(())
    }

    /// A scenario's tally, once all its attempts are in; `run.done` ends with it.
    fn scenario_finished(&mut self, _tally: &Tally, _run: RunState<'_>) -> io::Result<()> {
        Ok(())
    }

    /// The run ended (finished, or interrupted).
    fn run_finished(&mut self, _run: RunState<'_>, _summary: Summary) -> io::Result<()> {
        Ok(())
    }
}

/// How the reporting of a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// The counts.
    pub summary: Summary,
    /// Some report could not be written (and an error was printed).
    pub write_failed: bool,
    /// stdout was closed by its reader (`| head -1`): reporting stopped quietly.
    pub stdout_closed: bool,
}

/// Receives every event of a run and fans it out to its sinks.
pub struct Reporter {
    progress: Progress,
    /// `None` once a sink failed to write: it is told nothing more.
    sinks: Vec<Option<Box<dyn Sink>>>,
    tallies: Tallies,
    done: Vec<Tally>,
    /// The selected scenarios, in order.
    selected: Vec<String>,
    started: Instant,
    write_failed: bool,
    stdout_closed: bool,
}

impl Reporter {
    /// A reporter for `selected` scenarios (names, in order), each run `repeat` times, with a
    /// progress bar for all attempts; tells every sink that the run begins.
    pub fn new(selected: Vec<String>, repeat: usize, sinks: Vec<Box<dyn Sink>>) -> Self {
        let mut reporter = Reporter {
            progress: Progress::new(selected.len() * repeat),
            sinks: sinks.into_iter().map(Some).collect(),
            tallies: Tallies::new(repeat),
            done: Vec::new(),
            selected,
            started: Instant::now(),
            write_failed: false,
            stdout_closed: false,
        };
        reporter.tell(|sink, run| sink.run_started(run));
        reporter
    }

    /// Whether stdout was closed by its reader, so the run should stop.
    pub fn stdout_closed(&self) -> bool {
        self.stdout_closed
    }

    /// Calls `f` on every sink still writing, with the bar cleared; a sink that fails is
    /// reported once and dropped.
    fn tell(&mut self, mut f: impl FnMut(&mut dyn Sink, RunState<'_>) -> io::Result<()>) {
        self.tell_with(&[], |sink, run| f(sink, run));
    }

    fn tell_with(
        &mut self,
        not_started: &[String],
        mut f: impl FnMut(&mut dyn Sink, RunState<'_>) -> io::Result<()>,
    ) {
        let run = RunState {
            done: &self.done,
            not_started,
            elapsed: self.started.elapsed(),
        };
        let (sinks, progress) = (&mut self.sinks, &self.progress);
        let mut stdout_closed = false;
        let mut write_failed = false;
        progress.suspend(|| {
            for slot in sinks.iter_mut() {
                let Some(sink) = slot else { continue };
                let Err(error) = f(sink.as_mut(), run) else {
                    continue;
                };
                if error.kind() == io::ErrorKind::BrokenPipe && sink.writes_stdout() {
                    stdout_closed = true;
                } else {
                    eprintln!("error: could not write {}: {error}", sink.describe());
                    write_failed = true;
                }
                *slot = None;
            }
        });
        if stdout_closed {
            // Nothing more is written anywhere: the reader of the report went away.
            self.sinks.iter_mut().for_each(|slot| *slot = None);
            self.progress.finish();
        }
        self.stdout_closed |= stdout_closed;
        self.write_failed |= write_failed;
    }

    /// One event of the runner.
    pub fn on_event(&mut self, event: &RunEvent) {
        self.progress.on_event(event);
        self.tell(|sink, _| sink.event(event));
        if let RunEvent::ScenarioFinished(result) = event {
            self.attempt_finished(result);
        }
    }

    fn attempt_finished(&mut self, result: &ScenarioResult) {
        let Some(tally) = self.tallies.add(result.clone()) else {
            return;
        };
        self.done.push(tally);
        self.tell(|sink, run| match run.done.last() {
            Some(tally) => sink.scenario_finished(tally, run),
            None => Ok(()),
        });
    }

    /// Ends the run: the scenarios that did not get all their attempts are tallied, the
    /// tallies put in the order of the selection, and every sink told, with the scenarios
    /// that never started (`not_started`: the runner's word, one name per attempt it never
    /// started; a scenario with any attempt done is not among them); returns the summary.
    pub fn finish(mut self, not_started: &[String]) -> RunSummary {
        self.progress.finish();
        let rest = std::mem::replace(&mut self.tallies, Tallies::new(1)).finish();
        for tally in rest {
            self.done.push(tally);
            self.tell(|sink, run| match run.done.last() {
                Some(tally) => sink.scenario_finished(tally, run),
                None => Ok(()),
            });
        }
        let order: HashMap<&str, usize> = self
            .selected
            .iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), i))
            .collect();
        self.done
            .sort_by_key(|t| order.get(t.attempts[0].name.as_str()).copied());
        let mut never_started: Vec<String> = Vec::new();
        for name in not_started {
            let done = self.done.iter().any(|t| &t.attempts[0].name == name);
            if !done && !never_started.contains(name) {
                never_started.push(name.clone());
            }
        }
        never_started.sort_by_key(|name| order.get(name.as_str()).copied());
        let summary = Summary::of(&self.done, never_started.len());
        self.tell_with(&never_started, |sink, run| sink.run_finished(run, summary));
        RunSummary {
            summary,
            write_failed: self.write_failed,
            stdout_closed: self.stdout_closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::outcome::{Diagnostics, Outcome};
    use crate::scenario::Expect;

    fn result(name: &str, passed: bool) -> ScenarioResult {
        ScenarioResult {
            proven: None,
            name: name.to_owned(),
            file: format!("{name}.toml"),
            expect: Expect::Clean,
            expect_hang_at: None,
            outcome: Outcome::Clean,
            hang_step: None,
            passed,
            failures: Vec::new(),
            duration_ms: 1.0,
            steps: Vec::new(),
            diagnostics: Diagnostics::default(),
            leaks: Vec::new(),
            trace: crate::trace::RecordedTrace::default(),
            snapshot: None,
        }
    }

    /// A sink that writes down what it is told.
    struct Recorder {
        told: Arc<Mutex<Vec<String>>>,
        fail_with: Option<io::ErrorKind>,
        stdout: bool,
    }

    impl Sink for Recorder {
        fn describe(&self) -> String {
            "the recorder".to_owned()
        }
        fn writes_stdout(&self) -> bool {
            self.stdout
        }
        fn run_started(&mut self, run: RunState<'_>) -> io::Result<()> {
            self.told
                .lock()
                .unwrap()
                .push(format!("start {}", run.done.len()));
            Ok(())
        }
        fn event(&mut self, event: &RunEvent) -> io::Result<()> {
            if let RunEvent::ScenarioStarted { name } = event {
                self.told.lock().unwrap().push(format!("started {name}"));
            }
            Ok(())
        }
        fn scenario_finished(&mut self, tally: &Tally, _run: RunState<'_>) -> io::Result<()> {
            self.told
                .lock()
                .unwrap()
                .push(format!("tally {}", tally.attempts[0].name));
            match self.fail_with {
                Some(kind) => Err(io::Error::from(kind)),
                None => Ok(()),
            }
        }
        fn run_finished(&mut self, run: RunState<'_>, summary: Summary) -> io::Result<()> {
            let names: Vec<&str> = run
                .done
                .iter()
                .map(|t| t.attempts[0].name.as_str())
                .collect();
            self.told.lock().unwrap().push(format!(
                "end {} not started {:?}, {} passed",
                names.join(","),
                run.not_started,
                summary.passed
            ));
            Ok(())
        }
    }

    fn recorder(
        fail_with: Option<io::ErrorKind>,
        stdout: bool,
    ) -> (Box<dyn Sink>, Arc<Mutex<Vec<String>>>) {
        let told = Arc::new(Mutex::new(Vec::new()));
        let sink = Recorder {
            told: Arc::clone(&told),
            fail_with,
            stdout,
        };
        (Box::new(sink), told)
    }

    #[test]
    fn every_sink_is_told_every_event_tally_and_the_end_in_selection_order() {
        let (a, told_a) = recorder(None, false);
        let (b, told_b) = recorder(None, true);
        let names = vec!["one".to_owned(), "two".to_owned(), "three".to_owned()];
        let mut reporter = Reporter::new(names, 2, vec![a, b]);
        for name in ["two", "one", "two"] {
            reporter.on_event(&RunEvent::ScenarioStarted {
                name: name.to_owned(),
            });
            reporter.on_event(&RunEvent::ScenarioFinished(Box::new(result(name, true))));
        }
        let run = reporter.finish(&["three".to_owned(), "three".to_owned()]);
        assert_eq!(run.summary.total, 2);
        assert_eq!(run.summary.not_started, 1);
        let expected = vec![
            "start 0",
            "started two",
            "started one",
            "started two",
            "tally two",
            "tally one",
            "end one,two not started [\"three\"], 2 passed",
        ];
        assert_eq!(*told_a.lock().unwrap(), expected);
        assert_eq!(*told_b.lock().unwrap(), expected);
        assert!(!run.write_failed && !run.stdout_closed);
    }

    #[test]
    fn a_sink_that_fails_is_dropped_and_a_closed_stdout_stops_all_quietly() {
        let (failing, told_failing) = recorder(Some(io::ErrorKind::PermissionDenied), false);
        let (fine, told_fine) = recorder(None, false);
        let mut reporter = Reporter::new(vec!["a".into(), "b".into()], 1, vec![failing, fine]);
        reporter.on_event(&RunEvent::ScenarioFinished(Box::new(result("a", true))));
        reporter.on_event(&RunEvent::ScenarioFinished(Box::new(result("b", true))));
        let run = reporter.finish(&[]);
        assert!(run.write_failed && !run.stdout_closed);
        assert_eq!(
            told_failing.lock().unwrap().len(),
            2,
            "start, then one tally"
        );
        assert_eq!(told_fine.lock().unwrap().len(), 4);

        let (closed, _) = recorder(Some(io::ErrorKind::BrokenPipe), true);
        let (other, told_other) = recorder(None, false);
        let mut reporter = Reporter::new(vec!["a".into(), "b".into()], 1, vec![closed, other]);
        reporter.on_event(&RunEvent::ScenarioFinished(Box::new(result("a", false))));
        assert!(reporter.stdout_closed());
        let run = reporter.finish(&["b".to_owned()]);
        assert!(run.stdout_closed && !run.write_failed);
        assert_eq!(
            told_other.lock().unwrap().len(),
            2,
            "nothing after stdout closed"
        );
    }
}
