//! JSON Lines output, format version 1: one object per line on stdout.
//!
//! Every scenario verdict is `{"type": "scenario", "version": 1, "name", "file", "expect",
//! "expect_hang_at", "outcome", "hang_step", "passed", "failures", "duration_ms", "steps",
//! "diagnostics": {"summary", "open_sockets", "threads", "nodes", "stderr"}, "leaks"}`, plus
//! `"proven"` on a hang (`true`: proven when its step started; `false`: its deadline passed),
//! plus
//! `"snapshot": {"path", "status", "diff"}` when its lifecycle trace was compared with its
//! snapshot (`status`: `matched`, `changed`, `missing`, `written`; see `docs/traces.md`). A
//! scenario not run because a command of its `requires` failed has `"outcome": "skipped"`,
//! `"passed": true` (it did not fail) and the reason as its diagnostics summary. The last line
//! is `{"type": "summary", "version": 1, "total", "passed", "failed", "skipped", "flaky",
//! "interrupted", "not_started", "duration_ms"}` (`skipped` ones are counted in neither `passed`
//! nor `failed`). Fields are only ever added within a version.
//!
//! With `run --repeat N` (N > 1) there is one line per scenario, not per attempt: its fields
//! are those of the attempt that speaks for it (for a flaky scenario, the least frequent
//! verdict; `passed` is false unless every attempt passed), plus `"attempts"`, `"status"`
//! (`passed`, `failed`, `flaky`, `interrupted`, `skipped`) and `"verdicts"`: a list of `{"outcome",
//! "hang_step", "passed", "count"}`.

use std::io::{self, Write};

use serde::Serialize;

use super::output::{self, Target};
use super::{RunState, Sink, Summary};
use crate::outcome::ScenarioResult;
use crate::repeat::{Status, Tally, VerdictCount};

/// JSON Lines as a [`Sink`]: a line per scenario as it finishes, the summary line at the end.
pub struct JsonSink {
    out: Box<dyn Write + Send>,
    target: Target,
    with_counts: bool,
}

impl JsonSink {
    /// Opens `target` (see [`output::open_stream`]); `with_counts` adds the fields of
    /// repeated runs.
    pub fn open(target: Target, with_counts: bool) -> io::Result<Self> {
        Ok(JsonSink {
            out: output::open_stream(&target)?,
            target,
            with_counts,
        })
    }
}

impl Sink for JsonSink {
    fn describe(&self) -> String {
        format!("the JSON report to {}", self.target)
    }

    fn writes_stdout(&self) -> bool {
        self.target.is_stdout()
    }

    fn scenario_finished(&mut self, tally: &Tally, _run: RunState<'_>) -> io::Result<()> {
        write_tally(&mut self.out, tally, self.with_counts)
    }

    fn run_finished(&mut self, run: RunState<'_>, summary: Summary) -> io::Result<()> {
        write_summary(&mut self.out, summary, run.elapsed.as_secs_f64() * 1000.0)?;
        self.out.flush()
    }
}

/// Version of the JSON Lines format.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct ScenarioLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u32,
    #[serde(flatten)]
    result: &'a ScenarioResult,
}

/// The fields of a scenario that stand for all its attempts.
#[derive(Serialize)]
struct TallyFields<'a> {
    passed: bool,
    failures: Vec<String>,
    #[serde(flatten)]
    repeat: Option<RepeatFields<'a>>,
}

#[derive(Serialize)]
struct RepeatFields<'a> {
    attempts: usize,
    status: Status,
    verdicts: &'a [VerdictCount],
}

#[derive(Serialize)]
struct SummaryLine {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u32,
    total: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    flaky: usize,
    interrupted: usize,
    not_started: usize,
    duration_ms: f64,
}

/// Writes one scenario's line; `with_counts` adds the fields of repeated runs.
pub fn write_tally(
    out: &mut (impl Write + ?Sized),
    tally: &Tally,
    with_counts: bool,
) -> std::io::Result<()> {
    let line = ScenarioLine {
        kind: "scenario",
        version: FORMAT_VERSION,
        result: tally.representative(),
    };
    let scenario = TallyFields {
        passed: tally.passed(),
        failures: tally.failures(),
        repeat: with_counts.then(|| RepeatFields {
            attempts: tally.attempts.len(),
            status: tally.status,
            verdicts: &tally.verdicts,
        }),
    };
    // The representative attempt's fields, with those of the scenario in place of its own.
    let mut value = serde_json::to_value(&line)?;
    if let (Some(object), serde_json::Value::Object(scenario)) =
        (value.as_object_mut(), serde_json::to_value(&scenario)?)
    {
        object.extend(scenario);
    }
    serde_json::to_writer(&mut *out, &value)?;
    writeln!(out)
}

/// Writes the summary line.
pub fn write_summary(
    out: &mut (impl Write + ?Sized),
    summary: Summary,
    duration_ms: f64,
) -> std::io::Result<()> {
    let line = SummaryLine {
        kind: "summary",
        version: FORMAT_VERSION,
        total: summary.total,
        passed: summary.passed,
        failed: summary.failed,
        skipped: summary.skipped,
        flaky: summary.flaky,
        interrupted: summary.interrupted,
        not_started: summary.not_started,
        duration_ms,
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)
}
