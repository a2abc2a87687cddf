//! Terminal output: one line per scenario (expected vs got; with `--repeat`, the count of each
//! verdict), the diagnostics of every unexpected result (for a flaky scenario, of its least
//! frequent verdict), then a summary whose last line is the plain `N passed, M failed`.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{self, Write};

use super::{RunState, Sink, Summary};
use crate::events::RunEvent;
use crate::outcome::{Diagnostics, Outcome, ProgramReport, ScenarioResult};
use crate::repeat::{Status, Tally};
use crate::trace::snapshot::SnapshotStatus;

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
            .filter(|path| !path.is_empty())
            .collect();
        paths.into_iter().collect()
    };
    let written = with_status(SnapshotStatus::Written);
    if !written.is_empty() {
        writeln!(out, "\nsnapshots written: {}", escaped(&written.join(", ")))?;
    }
    let missing = with_status(SnapshotStatus::Missing);
    if !missing.is_empty() {
        writeln!(
            out,
            "\nnote: no snapshot yet for {} scenario(s): {} (`--snapshots update` writes them)",
            missing.len(),
            escaped(&missing.join(", "))
        )?;
    }
    Ok(())
}

/// `text` for a terminal: every control character, a newline too, escaped as Rust writes it
/// (`\n`, `\u{1b}`), so a name or an endpoint cannot start a line of its own (a fake `FAIL`)
/// or move the cursor.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A block of text for a terminal: each line [`escaped`] (a tab kept), and every line after
/// the first indented by `indent`, so that none starts at the left margin.
pub fn escaped_block(text: &str, indent: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let line: String = line
                .split('\t')
                .map(|part| escaped(part).into_owned())
                .collect::<Vec<_>>()
                .join("\t");
            if i == 0 || line.starts_with(' ') {
                line
            } else {
                format!("{indent}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one line of a scenario's verdict.
pub fn result_line(result: &ScenarioResult) -> String {
    if result.outcome == Outcome::Skipped {
        return format!(
            "SKIP  {:<44} {}",
            escaped(&result.name),
            escaped(&result.diagnostics.summary)
        );
    }
    let status = match (result.passed, result.outcome) {
        (_, Outcome::Interrupted) => "STOP",
        (true, _) => "PASS",
        (false, _) => "FAIL",
    };
    let got = match result.proven {
        Some(true) => format!("{} (proven)", result.got()),
        Some(false) => format!("{} (timed out)", result.got()),
        None => result.got(),
    };
    format!(
        "{status}  {:<44} expected {:<22} got {:<22} {:>8.1} ms",
        escaped(&result.name),
        escaped(&result.expected()),
        escaped(&got),
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
    if tally.attempts.len() == 1 || tally.status == Status::Skipped {
        return result_line(&tally.attempts[0]);
    }
    let status = match tally.status {
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
        Status::Flaky => "FLAKY",
        Status::Interrupted => "STOP",
        Status::Skipped => "SKIP",
    };
    format!(
        "{status:<5} {:<44} expected {:<22} got {}",
        escaped(&tally.attempts[0].name),
        escaped(&tally.attempts[0].expected()),
        escaped(&tally.describe_counts())
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
    writeln!(
        out,
        "\n── {} ({}) ──",
        escaped(&result.name),
        escaped(&result.file)
    )?;
    for failure in failures {
        writeln!(out, "  ✗ {}", escaped_block(failure, "    "))?;
    }
    write_diagnostics(out, &result.diagnostics)?;
    if !result.steps.is_empty() {
        let timings: Vec<String> = result
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1} ms{}",
                    escaped(&s.label),
                    s.duration_ms,
                    if s.finished { "" } else { " (did not finish)" }
                )
            })
            .collect();
        writeln!(out, "  steps: {}", timings.join(" · "))?;
    }
    for leak in &result.leaks {
        writeln!(out, "  leak: {}", escaped_block(leak, "    "))?;
    }
    Ok(())
}

fn write_diagnostics(out: &mut (impl Write + ?Sized), d: &Diagnostics) -> std::io::Result<()> {
    writeln!(out, "  {}", escaped_block(&d.summary, "  "))?;
    if !d.open_sockets.is_empty() {
        writeln!(out, "  sockets still open:")?;
        for s in &d.open_sockets {
            let linger = s.linger_ms.map_or("?".to_owned(), |l| l.to_string());
            writeln!(
                out,
                "    {} {} of node `{}` [{}] context `{}`, owner `{}`, linger {linger}, sent {}, received {}; {}",
                s.socket_type,
                s.role,
                escaped(&s.node),
                escaped(&s.endpoints.join(", ")),
                escaped(&s.context),
                escaped(&s.owner),
                s.messages_sent,
                s.messages_received,
                s.state
            )?;
            writeln!(out, "      why: {}", escaped_block(&s.why, "        "))?;
        }
    }
    if !d.threads.is_empty() {
        writeln!(out, "  threads:")?;
        for t in &d.threads {
            writeln!(
                out,
                "    {:>7} {:<15} {:<16} {}",
                t.tid,
                escaped(&t.name),
                t.state,
                escaped(&t.role)
            )?;
            writeln!(
                out,
                "            blocked in: {} [syscall {}, wchan {}]",
                escaped(&t.blocked_in),
                t.syscall,
                if t.wchan.is_empty() { "-" } else { &t.wchan }
            )?;
        }
    }
    for program in &d.programs {
        write_program(out, program)?;
    }
    if let Some(stderr) = &d.stderr {
        writeln!(out, "  stderr of the scenario's process:")?;
        for line in stderr.lines() {
            writeln!(out, "    | {}", escaped_block(line, ""))?;
        }
    }
    Ok(())
}

/// How many frames of each stack are shown (the innermost ones).
const FRAMES_SHOWN: usize = 12;

/// A program under test: how it ended, its stacks at the hang, the tail of its output.
fn write_program(out: &mut (impl Write + ?Sized), p: &ProgramReport) -> std::io::Result<()> {
    writeln!(out, "  program `{}` (pid {}) {}", p.name, p.pid, p.exit)?;
    if let Some(stacks) = &p.stacks {
        for note in &stacks.notes {
            writeln!(out, "    note: {note}")?;
        }
        for process in &stacks.processes {
            writeln!(
                out,
                "    process {}: {}",
                process.pid,
                escaped(&process.command)
            )?;
            for t in &process.threads {
                writeln!(
                    out,
                    "      thread {} `{}` {} [syscall {}, wchan {}]",
                    t.tid,
                    t.display_name(),
                    t.state,
                    t.syscall,
                    if t.wchan.is_empty() { "-" } else { &t.wchan }
                )?;
                for f in t.python.iter().take(FRAMES_SHOWN) {
                    writeln!(out, "        py  {f}")?;
                }
                // Below the Python frames, only the native ones under the interpreter.
                let native = t.native.iter().take_while(|f| {
                    t.python.is_empty()
                        || !f.function.contains("PyEval_") && !f.function.contains("PyObject_")
                });
                for f in native.take(FRAMES_SHOWN) {
                    writeln!(out, "        native {f}")?;
                }
            }
        }
    }
    for (stream, text) in [("stdout", &p.stdout), ("stderr", &p.stderr)] {
        if !text.trim().is_empty() {
            writeln!(out, "    {stream} (tail):")?;
            for line in text.lines() {
                writeln!(out, "    | {}", escaped(line))?;
            }
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
    if summary.skipped > 0 {
        writeln!(
            out,
            "skipped: {} scenario(s) whose `requires` failed on this machine (not counted as passed or failed)",
            summary.skipped
        )?;
    }
    writeln!(out, "{} scenario(s) in {seconds:.2} s", summary.total)?;
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::SocketReport;
    use crate::scenario::Expect;

    fn result(name: &str) -> ScenarioResult {
        ScenarioResult {
            proven: None,
            name: name.to_owned(),
            file: format!("{name}.toml"),
            expect: Expect::Clean,
            expect_hang_at: None,
            outcome: Outcome::Hang,
            hang_step: Some("te\nrm".to_owned()),
            passed: false,
            failures: vec!["expected clean, got hang at `te\nFAIL  rm`".to_owned()],
            duration_ms: 1.0,
            steps: Vec::new(),
            diagnostics: Diagnostics {
                summary: "first line\nsecond line\u{1b}[2J".to_owned(),
                open_sockets: vec![SocketReport {
                    node: "n\rFAIL".to_owned(),
                    role: "socket".to_owned(),
                    socket_type: "SUB".to_owned(),
                    endpoints: vec!["connect ipc:///tmp/a\nFAIL  b".to_owned()],
                    linger_ms: Some(0),
                    context: "main".to_owned(),
                    owner: "main".to_owned(),
                    state: "open".to_owned(),
                    messages_sent: 0,
                    messages_received: 0,
                    why: "why".to_owned(),
                }],
                ..Diagnostics::default()
            },
            leaks: Vec::new(),
            trace: crate::trace::RecordedTrace::default(),
            snapshot: None,
        }
    }

    #[test]
    fn control_characters_in_names_and_endpoints_are_escaped() {
        assert_eq!(escaped("plain"), "plain");
        assert_eq!(escaped("a\nFAIL\u{1b}[31m"), "a\\nFAIL\\u{1b}[31m");
        let r = result("x\nFAIL  fake/scenario");
        let line = result_line(&r);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("x\\nFAIL  fake/scenario"), "{line}");
        let mut details = Vec::new();
        write_details(&mut details, &r, &r.failures).unwrap();
        let text = String::from_utf8(details).unwrap();
        for line in text.lines() {
            assert!(
                !line.starts_with("FAIL"),
                "a line of its own: {line:?} in\n{text}"
            );
            assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
        }
        assert!(text.contains("ipc:///tmp/a\\nFAIL  b"), "{text}");
        assert!(
            text.contains("\n  second line"),
            "a summary keeps its lines: {text}"
        );
    }
}
