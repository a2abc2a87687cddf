//! Flake detection (`run --repeat N`): the attempts of each scenario gathered into one
//! [`Tally`], with the count of each distinct verdict and a status. A scenario whose verdict
//! varies between attempts is [`Status::Flaky`], which fails the run, and the tally keeps the
//! attempt of the least frequent verdict: the one whose diagnostics explain the flake.
//!
//! A plain run is the case `N = 1`, so every reporter reads tallies the same way.

use std::collections::HashMap;

use serde::Serialize;

use crate::outcome::{Outcome, ScenarioResult, in_words};

/// One verdict: what happened, and whether that met the scenario's expectations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// The label of the step that hung.
    pub hang_step: Option<String>,
    /// Whether it met every expectation.
    pub passed: bool,
}

impl Verdict {
    fn of(result: &ScenarioResult) -> Self {
        Verdict {
            outcome: result.outcome,
            hang_step: result.hang_step.clone(),
            passed: result.passed,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&in_words(self.outcome, self.hang_step.as_deref()))?;
        if !self.passed {
            f.write_str(" (failed)")?;
        }
        Ok(())
    }
}

/// How many attempts ended with one verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictCount {
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How many attempts ended with it.
    pub count: usize,
}

/// What the attempts of one scenario say together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every attempt met the expectations, with the same verdict.
    Passed,
    /// Every attempt ended with the same verdict, which missed the expectations.
    Failed,
    /// The verdict varied between attempts.
    Flaky,
    /// The run was interrupted before any attempt ended.
    Interrupted,
    /// The scenario was not run: this machine lacks what it `requires`.
    Skipped,
}

/// The attempts of one scenario, counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    /// Every attempt's result, in the order they finished.
    pub attempts: Vec<ScenarioResult>,
    /// Distinct verdicts in the order they first appeared; interrupted attempts not included.
    pub verdicts: Vec<VerdictCount>,
    /// What the attempts say together.
    pub status: Status,
}

impl Tally {
    /// Counts `attempts` (at least one).
    pub fn of(attempts: Vec<ScenarioResult>) -> Self {
        let mut verdicts: Vec<VerdictCount> = Vec::new();
        for attempt in attempts
            .iter()
            .filter(|a| a.outcome != Outcome::Interrupted)
        {
            let verdict = Verdict::of(attempt);
            match verdicts.iter_mut().find(|v| v.verdict == verdict) {
                Some(seen) => seen.count += 1,
                None => verdicts.push(VerdictCount { verdict, count: 1 }),
            }
        }
        let status = match verdicts.as_slice() {
            [] => Status::Interrupted,
            [only] if only.verdict.outcome == Outcome::Skipped => Status::Skipped,
            [only] if only.verdict.passed => Status::Passed,
            [_] => Status::Failed,
            _ => Status::Flaky,
        };
        Tally {
            attempts,
            verdicts,
            status,
        }
    }

    /// The attempt that speaks for the scenario: for a flaky one, the first attempt with the
    /// least frequent verdict (a failing one when counts tie); otherwise the first attempt that
    /// missed the expectations, or the first attempt.
    pub fn representative(&self) -> &ScenarioResult {
        let minority = (self.status == Status::Flaky)
            .then(|| {
                self.verdicts
                    .iter()
                    .min_by_key(|v| (v.count, v.verdict.passed))
                    .map(|v| &v.verdict)
            })
            .flatten();
        let chosen = match minority {
            Some(verdict) => self.attempts.iter().find(|a| &Verdict::of(a) == verdict),
            None => self
                .attempts
                .iter()
                .find(|a| !a.passed && a.outcome != Outcome::Interrupted),
        };
        chosen.unwrap_or(&self.attempts[0])
    }

    /// Why the scenario did not pass, one line each: the representative attempt's failures,
    /// after, for a flaky scenario, a first line with the counts.
    pub fn failures(&self) -> Vec<String> {
        let flaky = (self.status == Status::Flaky).then(|| {
            format!(
                "flaky: {} in {} attempts; what follows is the least frequent verdict",
                self.describe_counts(),
                self.attempts.len()
            )
        });
        flaky
            .into_iter()
            .chain(self.representative().failures.iter().cloned())
            .collect()
    }

    /// Whether the scenario did not fail: every attempt passed with the same verdict, or it
    /// was skipped.
    pub fn passed(&self) -> bool {
        matches!(self.status, Status::Passed | Status::Skipped)
    }

    /// `48× clean, 2× hang at `term` (failed)`.
    pub fn describe_counts(&self) -> String {
        self.verdicts
            .iter()
            .map(|v| format!("{}× {}", v.count, v.verdict))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Gathers attempts as they finish and hands out each scenario's tally once all its attempts
/// are in.
#[derive(Debug)]
pub struct Tallies {
    repeat: usize,
    pending: HashMap<String, Vec<ScenarioResult>>,
    /// Scenario names in the order their first attempt arrived, for [`Tallies::finish`].
    order: Vec<String>,
}

impl Tallies {
    /// Expects `repeat` attempts of every scenario.
    pub fn new(repeat: usize) -> Self {
        Tallies {
            repeat: repeat.max(1),
            pending: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// Adds one attempt; returns its scenario's tally when that was the last attempt.
    pub fn add(&mut self, result: ScenarioResult) -> Option<Tally> {
        let name = result.name.clone();
        let attempts = self.pending.entry(name.clone()).or_insert_with(|| {
            self.order.push(name.clone());
            Vec::new()
        });
        attempts.push(result);
        if attempts.len() < self.repeat {
            return None;
        }
        self.order.retain(|n| n != &name);
        self.pending.remove(&name).map(Tally::of)
    }

    /// The tallies of scenarios that did not get all their attempts (an interrupted run).
    pub fn finish(mut self) -> Vec<Tally> {
        self.order
            .iter()
            .filter_map(|name| self.pending.remove(name).map(Tally::of))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Diagnostics;
    use crate::scenario::Expect;

    fn attempt(outcome: Outcome, passed: bool, summary: &str) -> ScenarioResult {
        ScenarioResult {
            proven: None,
            name: "s".to_owned(),
            file: "s.toml".to_owned(),
            expect: Expect::Clean,
            expect_hang_at: None,
            outcome,
            hang_step: (outcome == Outcome::Hang).then(|| "sleep".to_owned()),
            passed,
            failures: Vec::new(),
            duration_ms: 1.0,
            steps: Vec::new(),
            diagnostics: Diagnostics {
                summary: summary.to_owned(),
                ..Diagnostics::default()
            },
            leaks: Vec::new(),
            trace: crate::trace::RecordedTrace::default(),
            snapshot: None,
        }
    }

    #[test]
    fn one_verdict_is_passed_or_failed() {
        let passed = Tally::of(vec![attempt(Outcome::Clean, true, "a"); 3]);
        assert_eq!(passed.status, Status::Passed);
        assert_eq!(passed.describe_counts(), "3× clean");
        let failed = Tally::of(vec![attempt(Outcome::Hang, false, "h"); 2]);
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(failed.describe_counts(), "2× hang at `sleep` (failed)");
    }

    #[test]
    fn a_varying_verdict_is_flaky_and_the_minority_speaks_for_it() {
        let mut attempts = vec![attempt(Outcome::Clean, true, "clean"); 4];
        attempts.insert(2, attempt(Outcome::Hang, false, "minority"));
        let tally = Tally::of(attempts);
        assert_eq!(tally.status, Status::Flaky);
        assert!(!tally.passed());
        assert_eq!(tally.representative().diagnostics.summary, "minority");
        assert_eq!(
            tally.describe_counts(),
            "4× clean, 1× hang at `sleep` (failed)"
        );
    }

    #[test]
    fn interrupted_attempts_are_not_verdicts() {
        let tally = Tally::of(vec![
            attempt(Outcome::Clean, true, "a"),
            attempt(Outcome::Interrupted, false, "stop"),
        ]);
        assert_eq!(tally.status, Status::Passed);
        let none = Tally::of(vec![attempt(Outcome::Interrupted, false, "stop")]);
        assert_eq!(none.status, Status::Interrupted);
    }

    #[test]
    fn tallies_come_out_when_complete_and_the_rest_at_the_finish() {
        let mut tallies = Tallies::new(2);
        assert!(tallies.add(attempt(Outcome::Clean, true, "a")).is_none());
        let done = tallies.add(attempt(Outcome::Clean, true, "a"));
        assert_eq!(done.map(|t| t.attempts.len()), Some(2));
        assert!(tallies.add(attempt(Outcome::Clean, true, "a")).is_none());
        let rest = tallies.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].attempts.len(), 1);
    }
}
