//! Snapshots of normalized traces: the one renderer (used by `termwatch run --snapshots` and by
//! `cargo test` through insta), and the `.snap` files in insta's format, which the CLI reads and
//! writes itself (insta's runtime is made for tests: it finds its workspace at compile time and
//! reports by panicking).
//!
//! A snapshot lives at `<snapshot dir>/<scenario name>.snap`; a name with `/` keeps its folders.
//! The file is insta's: a `---` header (`source`, `expression`, `input_file`), `---`, then the
//! rendered trace. Only the rendered body is compared, as insta does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::normalize::{NormalizedTrace, TraceGroup, normalize};
use crate::outcome::{Outcome, ScenarioResult, SnapshotStatus, SnapshotVerdict};
use crate::scenario::Scenario;

/// The test that asserts these snapshots; written in the header as insta would.
pub const SNAPSHOT_SOURCE: &str = "tests/snapshots.rs";
/// The expression that test snapshots; written in the header as insta would.
pub const SNAPSHOT_EXPRESSION: &str = "normalized_trace";

/// Renders a normalized trace as the text of its snapshot.
pub fn render(trace: &NormalizedTrace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {}", trace.scenario);
    let _ = writeln!(out, "outcome: {}", trace.outcome);
    for group in &trace.groups {
        out.push('\n');
        render_group(&mut out, group);
    }
    out
}

/// Column widths of event lines: fixed (longer values push the line), so that a changed event
/// changes only its own line in a diff.
const SCOPE_WIDTH: usize = 12;
const THREAD_WIDTH: usize = 12;
const KIND_WIDTH: usize = 22;

fn render_group(out: &mut String, group: &TraceGroup) {
    let _ = writeln!(
        out,
        "{}{}",
        group.title,
        if group.hung {
            "  ✗ HUNG: did not finish within its deadline"
        } else {
            ""
        }
    );
    for e in &group.events {
        let fields: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let line = format!(
            "  {:<SCOPE_WIDTH$}  {:<THREAD_WIDTH$}  {:<KIND_WIDTH$}  {}",
            e.scope,
            format!("[{}]", e.thread),
            e.kind.words(),
            fields.join(" ")
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if let Some(note) = &group.note {
        let _ = writeln!(out, "  → {note}");
    }
}

/// Where the snapshot of scenario `name` lives under `dir`.
pub fn snapshot_path(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.to_owned();
    path.extend(name.split('/'));
    path.set_extension("snap");
    path
}

/// What is wrong with a snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// It could not be read.
    #[error("cannot read snapshot {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It could not be written.
    #[error("cannot write snapshot {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It has no `---` header.
    #[error("snapshot {path} is not in insta's format (no `---` header)")]
    Format {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a snapshot's body (the rendered trace); `Ok(None)` when there is no snapshot.
pub fn read_body(path: &Path) -> Result<Option<String>, SnapshotError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SnapshotError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let format_error = || SnapshotError::Format {
        path: path.to_owned(),
    };
    let header_and_body = text.strip_prefix("---\n").ok_or_else(format_error)?;
    let end_of_header = header_and_body.find("\n---\n").ok_or_else(format_error)?;
    Ok(Some(
        header_and_body[end_of_header + "\n---\n".len()..].to_owned(),
    ))
}

/// Writes a snapshot in insta's format; `input_file` is the scenario file it came from.
pub fn write(path: &Path, input_file: &str, body: &str) -> Result<(), SnapshotError> {
    let write_error = |source| SnapshotError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(write_error)?;
    }
    let text = format!(
        "---\nsource: {SNAPSHOT_SOURCE}\nexpression: {SNAPSHOT_EXPRESSION}\ninput_file: {input_file}\n---\n{}\n",
        body.trim_end()
    );
    std::fs::write(path, text).map_err(write_error)
}

/// Whether a stored body and a new rendering say the same, as insta compares them.
pub fn same(stored: &str, rendered: &str) -> bool {
    stored.trim_end().replace("\r\n", "\n") == rendered.trim_end()
}

/// A unified diff from the stored snapshot to this run's trace, for people.
pub fn diff(stored: &str, rendered: &str) -> String {
    let stored = format!("{}\n", stored.trim_end());
    let rendered = format!("{}\n", rendered.trim_end());
    similar::TextDiff::from_lines(&stored, &rendered)
        .unified_diff()
        .context_radius(2)
        .header("snapshot", "this run")
        .to_string()
}

/// What `run` does with snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Compare when a snapshot exists; a missing one is only noted.
    #[default]
    Auto,
    /// Compare; a changed or missing snapshot fails the scenario.
    Check,
    /// Write this run's trace as the snapshot.
    Update,
    /// Leave snapshots alone.
    Off,
}

/// Whether and where snapshots are compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// What to do.
    pub mode: SnapshotMode,
    /// The folder snapshots live in (`snapshots`).
    pub dir: PathBuf,
}

/// Normalizes a result's trace for `scenario`.
pub fn normalized(scenario: &Scenario, result: &ScenarioResult) -> NormalizedTrace {
    normalize(
        scenario,
        &result.trace.events,
        &result.got(),
        result.hang_step.as_deref(),
        &result.trace.redactions,
    )
}

/// A path as insta writes it in `input_file`: relative to the current folder, with `/`.
fn input_file(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned))
        .unwrap_or_else(|| path.to_owned());
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Compares (or writes) the snapshot of one result, as `options` say. The comparison says
/// whether it fails the scenario (a changed snapshot, or a missing one under
/// [`SnapshotMode::Check`]); the verdict itself is the runner's. Runs that could not set up or
/// were interrupted have no trace worth comparing: `None`, as with [`SnapshotMode::Off`].
pub fn compare(
    scenario: &Scenario,
    result: &ScenarioResult,
    options: &SnapshotOptions,
) -> Option<SnapshotVerdict> {
    if options.mode == SnapshotMode::Off
        || matches!(result.outcome, Outcome::Error | Outcome::Interrupted)
    {
        return None;
    }
    let path = snapshot_path(&options.dir, &scenario.name);
    let shown = path.display().to_string();
    let verdict = |status, diff, failure| {
        Some(SnapshotVerdict {
            path: shown.clone(),
            status,
            diff,
            failure,
        })
    };
    let rendered = render(&normalized(scenario, result));
    let stored = match read_body(&path) {
        Ok(stored) => stored,
        Err(e) => return verdict(SnapshotStatus::Missing, None, Some(e.to_string())),
    };
    match (options.mode, stored) {
        (_, Some(stored)) if same(&stored, &rendered) => {
            verdict(SnapshotStatus::Matched, None, None)
        }
        (SnapshotMode::Update, _) => match write(&path, &input_file(&scenario.file), &rendered) {
            Ok(()) => verdict(SnapshotStatus::Written, None, None),
            Err(e) => verdict(SnapshotStatus::Missing, None, Some(e.to_string())),
        },
        (_, Some(stored)) => {
            let diff = diff(&stored, &rendered);
            let failure = format!(
                "the lifecycle trace differs from snapshot {shown} (`--snapshots update` accepts it):\n{}",
                indent(&diff, "      ")
            );
            verdict(SnapshotStatus::Changed, Some(diff), Some(failure))
        }
        (mode, None) => {
            let failure = (mode == SnapshotMode::Check)
                .then(|| format!("no snapshot at {shown} (`--snapshots update` writes it)"));
            verdict(SnapshotStatus::Missing, None, failure)
        }
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_snapshot_reads_back_and_matches_its_rendering() {
        let dir = tempfile::tempdir().unwrap();
        let path = snapshot_path(dir.path(), "async/case");
        assert!(path.ends_with("async/case.snap"));
        assert_eq!(read_body(&path).unwrap(), None);
        write(&path, "scenarios/async/case.toml", "line one\nline two\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("---\nsource: tests/snapshots.rs\n"));
        let body = read_body(&path).unwrap().unwrap();
        assert!(same(&body, "line one\nline two"));
        assert!(!same(&body, "line one\nline 2"));
        let diff = diff(&body, "line one\nline 2\n");
        assert!(diff.contains("-line two"));
        assert!(diff.contains("+line 2"));
    }
}
