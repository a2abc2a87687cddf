//! Terminal output: one line per scenario (expected vs got; with `--repeat`, the count of each
//! verdict), the diagnostics of every unexpected result (for a flaky scenario, of its least
//! frequent verdict), then a summary whose last line is the plain `N passed, M failed`.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::{RunState, Sink, Summary};
use crate::events::RunEvent;
use crate::outcome::{Diagnostics, Outcome, ScenarioResult, SnapshotStatus};
use crate::repeat::{Status, Tally};

/// The report for people, as a [`Sink`]: a line per scenario as it finishes (with `verbose`
/// and repeats, a line per attempt too), then the details of what did not pass (with
/// `verbose`, of every hang), the snapshot notes and the summary.
pub struct HumanSink {
    out: Box<dyn Write + Send>,
    to_stdout: bool,
    verbose: bool,
    repeat: usize,
}

impl HumanSink {
    /// Writes to stdout, or to stderr when `to_stdout` is false (a report has stdout).
    pub fn new(to_stdout: bool, verbose: bool, repeat: usize) -> Self {
        let out: Box<dyn Write + Send> = if to_stdout {
            Box::new(io::stdout())
        } else {
            Box::new(io::stderr())
        };
        HumanSink {
            out,
            to_stdout,
            verbose,
            repeat,
        }
    }
}

impl Sink for HumanSink {
    fn describe(&self) -> String {
        format!(
            "the report on {}",
            if self.to_stdout { "stdout" } else { "stderr" }
        )
    }

    fn writes_stdout(&self) -> bool {
        self.to_stdout
    }

    fn event(&mut self, event: &RunEvent) -> io::Result<()> {
        match event {
            RunEvent::ScenarioFinished(result) if self.repeat > 1 && self.verbose => {
                write_result(&mut self.out, result)
            }
            _ => Ok(()),
        }
    }

    fn scenario_finished(&mut self, tally: &Tally, _run: RunState<'_>) -> io::Result<()> {
        write_tally(&mut self.out, tally)
    }

    fn run_finished(&mut self, run: RunState<'_>, summary: Summary) -> io::Result<()> {
        for tally in run.done {
            let shown = tally.representative();
            let unexpected = matches!(tally.status, Status::Failed | Status::Flaky);
            let notable = self.verbose && shown.outcome != Outcome::Clean;
            if unexpected || notable || !shown.leaks.is_empty() {
                write_details(&mut self.out, shown, &tally.failures())?;
            }
        }
        write_snapshot_notes(
            &mut self.out,
            run.done.iter().flat_map(|t| t.attempts.iter()),
        )?;
        write_summary(&mut self.out, summary, run.elapsed.as_secs_f64())?;
        self.out.flush()
    }
}

/// Lists the snapshots written, and the ones missing (which `auto` only notes).
fn write_snapshot_notes<'a>(
    out: &mut (impl Write + ?Sized),
    results: impl Iterator<Item = &'a ScenarioResult> + Clone,
) -> io::Result<()> {
    let with_status = |status| -> Vec<&str> {
        let paths: BTreeSet<&str> = results
            .clone()
            .filter_map(|r| r.snapshot.as_ref().filter(|s| s.status == status))
            .map(|s| s.path.as_str())
            .collect();
        paths.into_iter().collect()
    };
    let written = with_status(SnapshotStatus::Written);
    if !written.is_empty() {
        writeln!(out, "\nsnapshots written: {}", written.join(", "))?;
    }
    let missing = with_status(SnapshotStatus::Missing);
    if !missing.is_empty() {
        writeln!(
            out,
            "\nnote: no snapshot yet for {} scenario(s): {} (`--snapshots update` writes them)",
            missing.len(),
            missing.join(", ")
        )?;
    }
    Ok(())
}

/// The one line of a scenario's verdict.
pub fn result_line(result: &ScenarioResult) -> String {
    let status = match (result.passed, result.outcome) {
        (_, Outcome::Interrupted) => "STOP",
        (true, _) => "PASS",
        (false, _) => "FAIL",
    };
    format!(
        "{status}  {:<44} expected {:<22} got {:<22} {:>8.1} ms",
        result.name,
        result.expected(),
        result.got(),
        result.duration_ms
    )
}

/// Writes a scenario's verdict line.
pub fn write_result(
    out: &mut (impl Write + ?Sized),
    result: &ScenarioResult,
) -> std::io::Result<()> {
    writeln!(out, "{}", result_line(result))
}

/// The one line of a scenario's attempts: the plain result line for a single attempt,
/// otherwise the status and the count of each verdict.
pub fn tally_line(tally: &Tally) -> String {
    if tally.attempts.len() == 1 {
        return result_line(&tally.attempts[0]);
    }
    let status = match tally.status {
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
        Status::Flaky => "FLAKY",
        Status::Interrupted => "STOP",
    };
    format!(
        "{status:<5} {:<44} expected {:<22} got {}",
        tally.attempts[0].name,
        tally.attempts[0].expected(),
        tally.describe_counts()
    )
}

/// Writes a scenario's line.
pub fn write_tally(out: &mut (impl Write + ?Sized), tally: &Tally) -> std::io::Result<()> {
    writeln!(out, "{}", tally_line(tally))
}

/// Writes everything known about one result: `failures` (the result's own, or its
/// scenario's: see [`Tally::failures`]), summary, sockets, threads, stderr.
pub fn write_details(
    out: &mut (impl Write + ?Sized),
    result: &ScenarioResult,
    failures: &[String],
) -> std::io::Result<()> {
    writeln!(out, "\n── {} ({}) ──", result.name, result.file)?;
    for failure in failures {
        writeln!(out, "  ✗ {failure}")?;
    }
    write_diagnostics(out, &result.diagnostics)?;
    if !result.steps.is_empty() {
        let timings: Vec<String> = result
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1} ms{}",
                    s.label,
                    s.duration_ms,
                    if s.finished { "" } else { " (did not finish)" }
                )
            })
            .collect();
        writeln!(out, "  steps: {}", timings.join(" · "))?;
    }
    for leak in &result.leaks {
        writeln!(out, "  leak: {leak}")?;
    }
    Ok(())
}

fn write_diagnostics(out: &mut (impl Write + ?Sized), d: &Diagnostics) -> std::io::Result<()> {
    writeln!(out, "  {}", d.summary)?;
    if !d.open_sockets.is_empty() {
        writeln!(out, "  sockets still open:")?;
        for s in &d.open_sockets {
            let linger = s.linger_ms.map_or("?".to_owned(), |l| l.to_string());
            writeln!(
                out,
                "    {} {} of node `{}` [{}] context `{}`, owner `{}`, linger {linger}, sent {}, received {}; {}",
                s.socket_type,
                s.role,
                s.node,
                s.endpoints.join(", "),
                s.context,
                s.owner,
                s.messages_sent,
                s.messages_received,
                s.state
            )?;
            writeln!(out, "      why: {}", s.why)?;
        }
    }
    if !d.threads.is_empty() {
        writeln!(out, "  threads:")?;
        for t in &d.threads {
            writeln!(
                out,
                "    {:>7} {:<15} {:<16} {}",
                t.tid, t.name, t.state, t.role
            )?;
            writeln!(
                out,
                "            blocked in: {} [syscall {}, wchan {}]",
                t.blocked_in,
                t.syscall,
                if t.wchan.is_empty() { "-" } else { &t.wchan }
            )?;
        }
    }
    if let Some(stderr) = &d.stderr {
        writeln!(out, "  stderr of the scenario's process:")?;
        for line in stderr.lines() {
            writeln!(out, "    | {line}")?;
        }
    }
    Ok(())
}

/// Writes the summary; the last line is the plain `N passed, M failed` that CI reads.
pub fn write_summary(
    out: &mut (impl Write + ?Sized),
    summary: Summary,
    seconds: f64,
) -> std::io::Result<()> {
    writeln!(out)?;
    if summary.interrupted > 0 || summary.not_started > 0 {
        writeln!(
            out,
            "interrupted: {} scenario(s) cut short, {} not started",
            summary.interrupted, summary.not_started
        )?;
    }
    if summary.flaky > 0 {
        writeln!(
            out,
            "flaky: {} scenario(s) with a verdict that varied (counted as failed)",
            summary.flaky
        )?;
    }
    writeln!(out, "{} scenario(s) in {seconds:.2} s", summary.total)?;
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)
}
