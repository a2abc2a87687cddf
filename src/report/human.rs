//! Terminal output: one line per scenario (expected vs got; with `--repeat`, the count of each
//! verdict), the diagnostics of every unexpected result (for a flaky scenario, of its least
//! frequent verdict), then a summary whose last line is the plain `N passed, M failed`.

use std::io::Write;

use super::Summary;
use crate::outcome::{Diagnostics, Outcome, ScenarioResult};
use crate::repeat::{Status, Tally};

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
