//! JUnit XML for CI systems (Jenkins, GitLab, GitHub test reporters), built with quick-junit.
//!
//! One `<testsuite name="termwatch">` holds one `<testcase>` per scenario: its name is the
//! scenario's name, its classname the folder part of that name. A scenario that missed its
//! expectation, or was flaky, has a `<failure>` whose `message` says expected vs got and the
//! diagnostics summary (what CI pages show first), whose `type` is the outcome (`hang`,
//! `crash`, …) or `flaky`, and whose text is the full diagnostics: sockets still open, threads
//! and what they were blocked in. The scenario process's stderr goes to `<system-err>`.
//!
//! Repeated runs (`--repeat N`) follow the Surefire/nextest conventions that Jenkins reads: a
//! flaky scenario's `<failure>` describes the minority outcome and every other attempt that
//! missed its expectation is a `<flakyFailure>`; a scenario that failed every attempt has one
//! `<failure>` and a `<rerunFailure>` per further attempt. The verdict counts are in the
//! testcase's `<system-out>`. An interrupted scenario is `<skipped>`, and so is one that an
//! interruption kept from starting.
//!
//! A report file is a whole, valid document from the moment the run starts (zero test cases)
//! and is replaced by the next whole document as each scenario finishes, so a killed run
//! leaves valid XML (see [`super::output::Document`]).
//!
//! The document validates against Jenkins' `junit-10.xsd` (xunit-plugin), which declares no
//! `skipped` attribute on the `<testsuites>` root; quick-junit always writes one there, so it
//! is removed (the count is on `<testsuite>`, where the schema has it).

use std::io;
use std::time::Duration;

use quick_junit::{
    FlakyOrRerun, NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::output::{Document, Target};
use super::{RunState, Sink, Summary, human};
use crate::outcome::ScenarioResult;
use crate::repeat::{Status, Tally};

/// The name of the report and of its one test suite.
pub const SUITE_NAME: &str = "termwatch";

/// JUnit XML as a [`Sink`].
pub struct JunitSink {
    document: Document,
    target: Target,
    properties: Vec<(&'static str, String)>,
}

impl JunitSink {
    /// Opens `target` (see [`Document::open`]); `properties` are the run's facts.
    pub fn open(target: Target, properties: Vec<(&'static str, String)>) -> io::Result<Self> {
        Ok(JunitSink {
            document: Document::open(&target)?,
            target,
            properties,
        })
    }

    fn render(&self, run: RunState<'_>) -> io::Result<String> {
        render(run.done, run.not_started, &self.properties, run.elapsed).map_err(io::Error::other)
    }
}

impl Sink for JunitSink {
    fn describe(&self) -> String {
        format!("the JUnit report to {}", self.target)
    }

    fn writes_stdout(&self) -> bool {
        self.target.is_stdout()
    }

    fn run_started(&mut self, run: RunState<'_>) -> io::Result<()> {
        let xml = self.render(run)?;
        self.document.write(&xml)
    }

    fn scenario_finished(&mut self, _tally: &Tally, run: RunState<'_>) -> io::Result<()> {
        let xml = self.render(run)?;
        self.document.write(&xml)
    }

    fn run_finished(&mut self, run: RunState<'_>, _summary: Summary) -> io::Result<()> {
        let xml = self.render(run)?;
        self.document.write_last(&xml)
    }
}

/// The whole JUnit document for `tallies` and the `not_started` scenarios, with `properties`
/// on the test suite.
pub fn render(
    tallies: &[Tally],
    not_started: &[String],
    properties: &[(&str, String)],
    elapsed: Duration,
) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(SUITE_NAME);
    suite.set_time(elapsed);
    suite.add_properties(
        properties
            .iter()
            .map(|(name, value)| (*name, value.as_str())),
    );
    suite.add_test_cases(tallies.iter().map(test_case));
    suite.add_test_cases(not_started.iter().map(|name| {
        let mut status = TestCaseStatus::skipped();
        status.set_message("the run was interrupted before this scenario started");
        let mut case = TestCase::new(name.as_str(), status);
        case.set_classname(classname(name));
        case
    }));
    let mut report = Report::new(SUITE_NAME);
    report.set_time(elapsed);
    report.add_test_suite(suite);
    report.to_string().map(without_root_skipped)
}

fn test_case(tally: &Tally) -> TestCase {
    let shown = tally.representative();
    let status = match tally.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(shown.diagnostics.summary.as_str());
            status
        }
        Status::Interrupted => {
            let mut status = TestCaseStatus::skipped();
            status.set_message("the run was interrupted before this scenario ended");
            status
        }
        Status::Failed | Status::Flaky => failure(tally),
    };
    let mut case = TestCase::new(shown.name.as_str(), status);
    case.set_classname(classname(&shown.name));
    case.set_time(Duration::from_secs_f64(shown.duration_ms.max(0.0) / 1000.0));
    if tally.attempts.len() > 1 {
        case.set_system_out(format!(
            "{} attempts: {}\n",
            tally.attempts.len(),
            tally.describe_counts()
        ));
    }
    if let Some(stderr) = &shown.diagnostics.stderr {
        case.set_system_err(stderr.as_str());
    }
    case
}

/// The folder part of a scenario's name.
fn classname(name: &str) -> &str {
    name.rsplit_once('/')
        .map_or(SUITE_NAME, |(folder, _)| folder)
}

fn failure(tally: &Tally) -> TestCaseStatus {
    let shown = tally.representative();
    let failures = tally.failures();
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(message(&failures, shown));
    status.set_type(if tally.status == Status::Flaky {
        "flaky"
    } else {
        shown.outcome.as_str()
    });
    status.set_description(details(shown, &failures));
    status.set_rerun_kind(if tally.status == Status::Flaky {
        FlakyOrRerun::Flaky
    } else {
        FlakyOrRerun::Rerun
    });
    status.add_reruns(
        tally
            .attempts
            .iter()
            .filter(|a| !a.passed && !std::ptr::eq(*a, shown))
            .map(rerun),
    );
    status
}

/// Another attempt that missed its expectation. No `time`: junit-10.xsd does not declare it on
/// rerun elements.
fn rerun(attempt: &ScenarioResult) -> TestRerun {
    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
    rerun.set_type(attempt.outcome.as_str());
    rerun.set_message(message(&attempt.failures, attempt));
    if let Some(stderr) = &attempt.diagnostics.stderr {
        rerun.set_system_err(stderr.as_str());
    }
    rerun
}

/// `expected clean, got hang at `term`: <diagnostics summary>`.
fn message(failures: &[String], result: &ScenarioResult) -> String {
    format!("{}: {}", failures.join("; "), result.diagnostics.summary)
}

/// The same full diagnostics the terminal shows.
fn details(result: &ScenarioResult, failures: &[String]) -> String {
    let mut text = Vec::new();
    // Writing into memory cannot fail.
    let _ = human::write_details(&mut text, result, failures);
    String::from_utf8_lossy(&text).trim().to_owned()
}

/// Removes the `skipped` attribute of the `<testsuites>` start tag (see the module docs).
fn without_root_skipped(xml: String) -> String {
    let Some(root) = xml.find("<testsuites") else {
        return xml;
    };
    let tag_end = xml[root..].find('>').map_or(xml.len(), |i| root + i);
    let Some(attribute) = xml[root..tag_end].find(" skipped=\"").map(|i| root + i) else {
        return xml;
    };
    let value_start = attribute + " skipped=\"".len();
    let Some(value_end) = xml[value_start..tag_end].find('"').map(|i| value_start + i) else {
        return xml;
    };
    format!("{}{}", &xml[..attribute], &xml[value_end + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Diagnostics, Outcome};
    use crate::scenario::Expect;

    fn attempt(outcome: Outcome, passed: bool) -> ScenarioResult {
        ScenarioResult {
            proven: None,
            name: "shutdown/linger <&> \"quoted\"".to_owned(),
            file: "scenarios/shutdown/linger.toml".to_owned(),
            expect: Expect::Clean,
            expect_hang_at: None,
            outcome,
            hang_step: (outcome == Outcome::Hang).then(|| "term".to_owned()),
            passed,
            failures: if passed {
                Vec::new()
            } else {
                vec!["expected clean, got hang at `term`".to_owned()]
            },
            duration_ms: 512.5,
            steps: Vec::new(),
            diagnostics: Diagnostics {
                summary: "hang at step `term`: 1 socket still open".to_owned(),
                stderr: Some("\u{1b}[31mred\u{1b}[0m and a bell \u{7}".to_owned()),
                ..Diagnostics::default()
            },
            leaks: Vec::new(),
            trace: crate::trace::RecordedTrace::default(),
            snapshot: None,
        }
    }

    #[test]
    fn a_failure_carries_verdict_hang_step_and_summary_in_its_message() {
        let tally = Tally::of(vec![attempt(Outcome::Hang, false)]);
        let xml = render(&[tally], &[], &[], Duration::from_millis(600)).expect("renders");
        assert!(xml.contains(r#"<testcase name="shutdown/linger &lt;&amp;&gt; &quot;quoted&quot;" classname="shutdown""#), "{xml}");
        assert!(xml.contains(r#"message="expected clean, got hang at `term`: hang at step `term`: 1 socket still open" type="hang""#), "{xml}");
        assert!(
            xml.contains("<system-err>red and a bell </system-err>"),
            "{xml}"
        );
        assert!(!xml[..xml.find("<testsuite ").unwrap_or(0)].contains("skipped"));
    }

    #[test]
    fn a_flaky_scenario_fails_with_flaky_failures_and_counts() {
        let tally = Tally::of(vec![
            attempt(Outcome::Clean, true),
            attempt(Outcome::Hang, false),
            attempt(Outcome::Clean, true),
            attempt(Outcome::Hang, false),
            attempt(Outcome::Clean, true),
        ]);
        let xml =
            render(&[tally], &[], &[("repeat", "5".to_owned())], Duration::ZERO).expect("renders");
        assert!(xml.contains(r#"type="flaky""#), "{xml}");
        assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
        assert!(
            xml.contains("5 attempts: 3× clean, 2× hang at `term` (failed)"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="repeat" value="5"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn only_the_root_skipped_attribute_is_removed() {
        let xml = r#"<testsuites name="t" tests="1" skipped="2" failures="0"><testsuite skipped="2"/></testsuites>"#;
        assert_eq!(
            without_root_skipped(xml.to_owned()),
            r#"<testsuites name="t" tests="1" failures="0"><testsuite skipped="2"/></testsuites>"#
        );
    }
}
