//! JSON Lines output, format version 1: one object per line on stdout.
//!
//! Every scenario verdict is `{"type": "scenario", "version": 1, "name", "file", "expect",
//! "expect_hang_at", "outcome", "hang_step", "passed", "failures", "duration_ms", "steps",
//! "diagnostics": {"summary", "open_sockets", "threads", "nodes", "stderr"}, "leaks"}`; the
//! last line is `{"type": "summary", "version": 1, "total", "passed", "failed", "interrupted",
//! "duration_ms"}`. Fields are only ever added within a version.

use std::io::Write;

use serde::Serialize;

use super::Summary;
use crate::outcome::ScenarioResult;

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

#[derive(Serialize)]
struct SummaryLine {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u32,
    total: usize,
    passed: usize,
    failed: usize,
    interrupted: usize,
    duration_ms: f64,
}

/// Writes one scenario's line.
pub fn write_result(
    out: &mut (impl Write + ?Sized),
    result: &ScenarioResult,
) -> std::io::Result<()> {
    let line = ScenarioLine {
        kind: "scenario",
        version: FORMAT_VERSION,
        result,
    };
    serde_json::to_writer(&mut *out, &line)?;
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
        interrupted: summary.interrupted,
        duration_ms,
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)
}
