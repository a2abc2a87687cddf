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

use super::normalize::{NormalizedTrace, TraceGroup};
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;
use crate::scenario::names::{PathEscape, path_under};

/// The test that asserts these snapshots; written in the header as insta would.
pub const SNAPSHOT_SOURCE: &str = "tests/it/snapshots.rs";
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

/// Where the snapshot of scenario `name` lives under `dir`; an error if that would be outside.
pub fn snapshot_path(dir: &Path, name: &str) -> Result<PathBuf, PathEscape> {
    path_under(dir, name, ".snap")
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
    match std::fs::read_to_string(path) {
        Ok(text) => body_of(&text)
            .map(Some)
            .ok_or_else(|| SnapshotError::Format {
                path: path.to_owned(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SnapshotError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The body of a snapshot file's text, split from its header as insta does: a header between
/// two lines that are `---` (trailing white space, a `\r` too, ignored), or, in insta's legacy
/// format, `key: value` lines up to the first blank line. The body's lines are joined with
/// `\n`. `None` when the header never ends.
fn body_of(text: &str) -> Option<String> {
    let mut lines = text.lines();
    let first = lines.next()?;
    let header_ends = |line: &str| line.trim_end() == "---";
    if header_ends(first) {
        lines.by_ref().find(|line| header_ends(line))?;
    } else if !first.trim_end().is_empty() {
        lines.by_ref().find(|line| line.trim_end().is_empty())?;
    }
    Some(lines.collect::<Vec<_>>().join("\n"))
}

/// A string as insta's YAML emitter writes it in a header: plain when YAML reads it back as
/// the same string, otherwise double-quoted with escapes (the same rules).
fn yaml_scalar(value: &str) -> String {
    let needs_quotes = value.is_empty()
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.starts_with(['&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@', '.'])
        || value.contains(|c: char| {
            matches!(c,
                ':' | '{' | '}' | '[' | ']' | ',' | '#' | '`' | '"' | '\'' | '\\' | '\t' | '\n'
                | '\r' | '\0'..='\x06' | '\x0e'..='\x1a' | '\x1c'..='\x1f')
        })
        || [
            "yes", "Yes", "YES", "no", "No", "NO", "True", "TRUE", "true", "False", "FALSE",
            "false", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
        ]
        .contains(&value)
        || value.starts_with("0x")
        || value.parse::<i64>().is_ok()
        || value.parse::<f64>().is_ok();
    if !needs_quotes {
        return value.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\x08' => quoted.push_str("\\b"),
            '\t' => quoted.push_str("\\t"),
            '\n' => quoted.push_str("\\n"),
            '\x0c' => quoted.push_str("\\f"),
            '\r' => quoted.push_str("\\r"),
            '\0'..='\x1f' | '\x7f' => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
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
        "---\nsource: {}\nexpression: {}\ninput_file: {}\n---\n{}\n",
        yaml_scalar(SNAPSHOT_SOURCE),
        yaml_scalar(SNAPSHOT_EXPRESSION),
        yaml_scalar(input_file),
        body.trim_end()
    );
    std::fs::write(path, text).map_err(write_error)
}

/// Whether a stored body and a new rendering say the same, as insta compares them.
pub fn same(stored: &str, rendered: &str) -> bool {
    stored.trim_end() == rendered.trim_end()
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

/// How a run's trace compared with its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotStatus {
    /// The trace says what the snapshot says.
    Matched,
    /// The trace differs from the snapshot.
    Changed,
    /// There is no snapshot.
    Missing,
    /// The snapshot was written from this run.
    Written,
}

/// The snapshot part of a scenario's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotVerdict {
    /// The snapshot file.
    pub path: String,
    /// How it compared.
    pub status: SnapshotStatus,
    /// From the snapshot to this run, when it changed.
    pub diff: Option<String>,
    /// Why the comparison fails the scenario (a changed snapshot, a missing one that was
    /// required, a snapshot that could not be read or written); already one of the result's
    /// `failures` once the verdict is decided.
    #[serde(skip)]
    pub failure: Option<String>,
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

/// Compares (or writes) the snapshot of one run's normalized `trace`, as `options` say. The
/// comparison says whether it fails the scenario (a changed snapshot, or a missing one under
/// [`SnapshotMode::Check`]); the verdict itself is the runner's. `None` under
/// [`SnapshotMode::Off`].
pub fn compare(
    scenario: &Scenario,
    trace: &NormalizedTrace,
    options: &SnapshotOptions,
) -> Option<SnapshotVerdict> {
    if options.mode == SnapshotMode::Off {
        return None;
    }
    let path = match snapshot_path(&options.dir, &scenario.name) {
        Ok(path) => path,
        Err(e) => {
            return Some(SnapshotVerdict {
                path: options.dir.display().to_string(),
                status: SnapshotStatus::Missing,
                diff: None,
                failure: Some(e.to_string()),
            });
        }
    };
    let shown = path.display().to_string();
    let verdict = |status, diff, failure| {
        Some(SnapshotVerdict {
            path: shown.clone(),
            status,
            diff,
            failure,
        })
    };
    let rendered = render(trace);
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
    fn headers_are_split_as_insta_does_crlf_and_legacy_included() {
        let lf = "---\nsource: a\ninput_file: b\n---\nline one\nline two\n";
        assert_eq!(body_of(lf).as_deref(), Some("line one\nline two"));
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(body_of(&crlf).as_deref(), Some("line one\nline two"));
        let trailing_space = "--- \nsource: a\n---  \nbody\n";
        assert_eq!(body_of(trailing_space).as_deref(), Some("body"));
        let legacy = "Created: x\nSource: y\n\nbody\n";
        assert_eq!(body_of(legacy).as_deref(), Some("body"));
        assert_eq!(body_of("---\nno end\n"), None);
    }

    #[test]
    fn header_values_are_quoted_as_insta_quotes_them() {
        assert_eq!(yaml_scalar("scenarios/a/b.toml"), "scenarios/a/b.toml");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
        assert_eq!(yaml_scalar("odd\"name\\x\n"), r#""odd\"name\\x\n""#);
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar("-x"), "\"-x\"");
        assert_eq!(yaml_scalar("12"), "\"12\"");
        assert_eq!(
            yaml_scalar("\u{1b}"),
            "\u{1b}",
            "not quoted by insta either"
        );
        assert_eq!(yaml_scalar("\u{1}"), r#""\u0001""#);
    }

    #[test]
    fn a_written_snapshot_reads_back_and_matches_its_rendering() {
        let dir = tempfile::tempdir().unwrap();
        let path = snapshot_path(dir.path(), "async/case").unwrap();
        assert!(path.ends_with("async/case.snap"));
        assert!(
            snapshot_path(dir.path(), "v1.2")
                .unwrap()
                .ends_with("v1.2.snap")
        );
        for outside in ["../x", "a/../../x", "/etc/x", "a//b", "./x", ""] {
            assert!(snapshot_path(dir.path(), outside).is_err(), "{outside}");
        }
        assert_eq!(read_body(&path).unwrap(), None);
        write(&path, "scenarios/async/case.toml", "line one\nline two\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("---\nsource: tests/it/snapshots.rs\n"));
        let body = read_body(&path).unwrap().unwrap();
        assert!(same(&body, "line one\nline two"));
        assert!(!same(&body, "line one\nline 2"));
        let diff = diff(&body, "line one\nline 2\n");
        assert!(diff.contains("-line two"));
        assert!(diff.contains("+line 2"));
    }
}
