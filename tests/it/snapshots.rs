//! Lifecycle-trace snapshots: every scenario under `scenarios/` runs once through
//! `termwatch trace --format json`, and its normalized trace, rendered by the same renderer as
//! `termwatch run --snapshots`, must match `snapshots/<scenario name>.snap` (insta; a change
//! fails and leaves `.snap.new` for `cargo insta review`). Also: a changed scenario fails the
//! CLI's check with a diff, and a hang's Chrome trace is valid JSON.

use std::path::{Path, PathBuf};
use std::process::Output;

use termwatch::trace::normalize::NormalizedTrace;
use termwatch::trace::snapshot::render;

use crate::support::{termwatch, workspace_path};

fn scenario_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            scenario_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            found.push(path);
        }
    }
}

fn run(args: &[&str]) -> Output {
    termwatch().args(args).output().expect("termwatch runs")
}

/// The rendered normalized trace of one run of `file`.
fn normalized_trace_of(file: &Path) -> String {
    let output = run(&[
        "trace",
        file.to_str().expect("utf-8 path"),
        "--root",
        "scenarios",
        "--format",
        "json",
    ]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "`termwatch trace {}` printed no JSON ({e}); stderr:\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let trace: NormalizedTrace = serde_json::from_value(document["normalized"].clone())
        .expect("the JSON carries a normalized trace");
    render(&trace)
}

#[test]
fn every_scenario_matches_its_snapshot() {
    let root = workspace_path("scenarios");
    let mut files = Vec::new();
    scenario_files(&root, &mut files);
    assert!(!files.is_empty(), "no scenarios under {}", root.display());
    let mut failed = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under scenarios/");
        let name = relative
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/");
        let (folder, snapshot_name) = match name.rsplit_once('/') {
            Some((folder, base)) => (format!("../../snapshots/{folder}"), base.to_owned()),
            None => ("../../snapshots".to_owned(), name.clone()),
        };
        let normalized_trace = normalized_trace_of(file);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(folder);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(file);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!(snapshot_name, normalized_trace));
        }));
        if outcome.is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "lifecycle traces changed (review with `cargo insta review`, or accept with `termwatch run --snapshots update`): {failed:?}"
    );
}

/// Copies a shipped scenario and its snapshot into a temporary tree, with `edit` applied to the
/// scenario's text.
fn temp_copy(name: &str, edit: impl FnOnce(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    let scenario = dir.path().join("scenarios").join(format!("{name}.toml"));
    let snapshot = dir.path().join("snapshots").join(format!("{name}.snap"));
    for path in [&scenario, &snapshot] {
        std::fs::create_dir_all(path.parent().expect("has a folder")).expect("folder created");
    }
    let text = std::fs::read_to_string(workspace_path("scenarios").join(format!("{name}.toml")))
        .expect("shipped scenario");
    std::fs::write(&scenario, edit(&text)).expect("scenario copied");
    std::fs::copy(
        workspace_path("snapshots").join(format!("{name}.snap")),
        &snapshot,
    )
    .expect("snapshot copied");
    dir
}

fn check_snapshots_in(dir: &Path) -> Output {
    let scenarios = dir.join("scenarios");
    let scenarios = scenarios.to_str().expect("utf-8 path");
    let snapshots = dir.join("snapshots");
    run(&[
        "run",
        scenarios,
        "--root",
        scenarios,
        "--snapshots",
        "check",
        "--snapshot-dir",
        snapshots.to_str().expect("utf-8 path"),
        "--timeout",
        "300ms",
    ])
}

#[test]
fn an_unchanged_copy_passes_the_cli_check() {
    let dir = temp_copy("async-subscriber/close-on-runtime", str::to_owned);
    let output = check_snapshots_in(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

#[test]
fn dropping_a_close_step_fails_the_cli_check_with_a_diff_of_the_changed_events() {
    let close_sub = "[[steps]]\naction = \"close\"\nnode = \"sub\"\n";
    let dir = temp_copy("async-subscriber/close-on-runtime", |text| {
        assert!(
            text.contains(close_sub),
            "the scenario has a `close sub` step"
        );
        text.replace(close_sub, "")
    });
    let output = check_snapshots_in(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("differs from snapshot"), "{stdout}");
    let diff_line = |sign: char, parts: &[&str]| {
        stdout.lines().any(|line| {
            line.trim_start().starts_with(sign) && parts.iter().all(|part| line.contains(part))
        })
    };
    let removed = |parts: &[&str]| diff_line('-', parts);
    let added = |parts: &[&str]| diff_line('+', parts);
    assert!(removed(&["step 3: close sub"]), "{stdout}");
    assert!(
        removed(&["sub", "socket closed", "socket_type=SUB"]),
        "{stdout}"
    );
    assert!(removed(&["context main", "term returned"]), "{stdout}");
    assert!(added(&["step 4: term", "HUNG"]), "{stdout}");
    assert!(
        added(&["sub", "socket still open", "socket_type=SUB"]),
        "{stdout}"
    );
}

#[test]
fn the_chrome_trace_of_a_hang_is_valid_and_marks_the_hang() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("trace.json");
    let output = run(&[
        "trace",
        "scenarios/async-subscriber/runtime-stopped.toml",
        "--format",
        "chrome",
        "--output",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = std::fs::read_to_string(&out).expect("trace written");
    let document: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let events = document["traceEvents"]
        .as_array()
        .expect("a traceEvents array");
    let with = |ph: &'static str| events.iter().filter(move |e| e["ph"] == ph);
    let thread_names: Vec<&str> = with("M")
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    for thread in ["main", "bus", "sub", "watchdog"] {
        assert!(thread_names.contains(&thread), "{thread_names:?}");
    }
    let steps: Vec<&str> = with("X").filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        steps,
        ["setup", "traffic", "close pub", "stop_runtime sub", "term"]
    );
    assert!(with("X").all(|e| e["ts"].is_u64() && e["dur"].is_u64()));
    let main_lane = with("M")
        .find(|e| e["name"] == "thread_name" && e["args"]["name"] == "main")
        .map(|e| e["tid"].clone())
        .expect("a lane for the main thread");
    assert!(
        with("X").all(|e| e["tid"] == main_lane),
        "steps on the main lane"
    );
    let hang: Vec<&serde_json::Value> = with("i").filter(|e| e["s"] == "g").collect();
    assert_eq!(hang.len(), 1);
    assert_eq!(hang[0]["name"], "hang at `term`");
}
