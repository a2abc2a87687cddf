//! Every file in `scenarios/` is its own test case: it runs through the real binary (so in a
//! child process, under its own deadlines) and must meet its expectation. A hang can never hang
//! this test: the harness turns it into a verdict, and the command itself has a timeout.

use std::path::{Path, PathBuf};

use rstest::rstest;
use serde_json::Value;

use crate::support::{termwatch, workspace_path};

fn run_json(file: &Path) -> Vec<Value> {
    let output = termwatch()
        .args(["run", "--format", "json", "--root"])
        .arg(workspace_path("scenarios"))
        .arg(file)
        .output()
        .expect("termwatch runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.code().is_some(),
        "termwatch did not exit by itself (timeout or signal); stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect()
}

#[rstest]
fn shipped_scenario_meets_its_expectation(#[files("scenarios/**/*.toml")] file: PathBuf) {
    let lines = run_json(&file);
    let result = lines
        .iter()
        .find(|l| l["type"] == "scenario")
        .expect("one scenario line");
    assert_eq!(
        result["passed"],
        Value::Bool(true),
        "{} did not meet its expectation:\n{}",
        file.display(),
        serde_json::to_string_pretty(result).unwrap_or_default()
    );
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["failed"], 0);
}
