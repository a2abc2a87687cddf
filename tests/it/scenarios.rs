//! Every file in `scenarios/` is its own test case: it runs through the real binary (so in a
//! child process, under its own deadlines) and must meet its expectation. A hang can never hang
//! this test: the harness turns it into a verdict, and the command itself has a timeout.

use std::path::{Path, PathBuf};

use rstest::rstest;
use serde_json::Value;

use crate::support::{termwatch, workspace_path};

fn run_json(file: &Path, extra: &[&str]) -> Vec<Value> {
    run_json_in(workspace_path("scenarios"), file, extra)
}

fn run_json_in(root: PathBuf, file: &Path, extra: &[&str]) -> Vec<Value> {
    let output = termwatch()
        .args(["run", "--format", "json"])
        .args(extra)
        .arg("--root")
        .arg(&root)
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

/// Also without early verdicts and with proofs verified at the deadline: a proof never changes
/// a verdict.
#[rstest]
fn shipped_scenario_meets_its_expectation(
    #[files("scenarios/**/*.toml")] file: PathBuf,
    #[values(&[], &["--no-early"], &["--verify-proofs"])] early: &[&str],
) {
    let lines = run_json(&file, early);
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
    if result["outcome"] == "skipped" {
        eprintln!(
            "note: {} skipped: {}",
            file.display(),
            result["diagnostics"]["summary"]
        );
        assert_eq!(summary["skipped"], 1);
        return;
    }
    match result["outcome"].as_str() {
        Some("hang") if early == ["--no-early"] => assert_eq!(result["proven"], false),
        Some("hang") => assert!(result["proven"].is_boolean()),
        _ => assert!(result.get("proven").is_none()),
    }
}

/// A hang certain when its step starts is declared at once and says why; the same scenario
/// with `--no-early` waits for its deadline.
#[test]
fn a_certain_hang_is_proven_with_its_reason() {
    let file = workspace_path("scenarios/ownership/idle-subscriber-left-open.toml");
    let proven = &run_json(&file, &[])[0];
    assert_eq!(proven["proven"], true);
    let summary = proven["diagnostics"]["summary"]
        .as_str()
        .unwrap_or_default();
    assert!(
        summary.starts_with("hang at step `term` (proven after ")
            && summary.contains("SUB socket of node `sub` is open; it belongs to the main thread, which is inside this term"),
        "{summary}"
    );
    let timed_out = &run_json(&file, &["--no-early"])[0];
    assert_eq!(timed_out["proven"], false);
    assert_eq!(timed_out["hang_step"], proven["hang_step"]);
}

/// A traffic-phase hang is blamed on what the threads are doing: the slow-joiner wait or the
/// pacing of `rate` (the main thread asleep), not a blocking send.
#[rstest]
#[case::inproc_across_contexts(
    "tests/fixtures/diagnoses/inproc-other-context.toml",
    "the publisher `pub` is still waiting for subscriber `s` to receive a probe (slow joiner); \
     inproc endpoints are visible only inside one context, and `s` is in context `aux` while \
     `inproc://pub-bind` is bound in context `main`."
)]
#[case::rate_longer_than_the_deadline(
    "tests/fixtures/diagnoses/rate-longer-than-deadline.toml",
    "its thread is sleeping between sends, paced by rate = 1 per second, so all 5 take about \
     5 s, longer than the deadline (300ms)"
)]
#[case::blocking_send(
    "scenarios/linger/immediate-send-blocks.toml",
    "node `push` sent 0 of 1 messages: its thread is in a blocking send that cannot complete"
)]
fn a_traffic_hang_names_what_the_threads_wait_for(#[case] file: &str, #[case] expected: &str) {
    let file = workspace_path(file);
    let root = file.parent().expect("a folder").to_path_buf();
    let lines = run_json_in(root, &file, &[]);
    let summary = lines[0]["diagnostics"]["summary"]
        .as_str()
        .expect("a hang has a summary");
    assert!(
        summary.contains(expected),
        "{}: summary was\n{summary}\nexpected it to contain\n{expected}",
        file.display()
    );
}

/// Proofs beyond the shipped scenarios: a join only the main thread could end, and a term whose
/// proof comes from one socket while a loop that closes on ETERM is waited for.
#[rstest]
#[case::join_before_term(
    "join-before-term.toml",
    "join sub",
    "the thread `sub` of node `sub` ends only on ETERM (a `shutdown` or `term` of context \
     `main`); the main thread, which alone runs those steps, is waiting in this join"
)]
#[case::poll_closes_on_eterm(
    "poll-closes-on-eterm.toml",
    "term",
    "SUB socket of node `idle` is open; it belongs to the main thread"
)]
fn a_proof_names_what_can_never_happen(
    #[case] file: &str,
    #[case] step: &str,
    #[case] reason: &str,
) {
    let root = workspace_path("tests/fixtures/proofs");
    let file = root.join(file);
    for extra in [&[][..], &["--verify-proofs"][..]] {
        let row = &run_json_in(root.clone(), &file, extra)[0];
        assert_eq!(row["hang_step"], step, "{extra:?}");
        assert_eq!(row["proven"], true, "{extra:?}");
        let summary = row["diagnostics"]["summary"].as_str().unwrap_or_default();
        assert!(summary.contains(reason), "{extra:?}: {summary}");
        assert!(!summary.contains("`poller` is open"), "{summary}");
    }
}
