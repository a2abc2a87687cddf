//! Reporters: they read [`RunEvent`]s and results and write them somewhere; they never reach
//! into the runner. `human` is for terminals, `json` is JSON Lines for machines.

pub mod human;
pub mod json;

use crate::outcome::ScenarioResult;

/// Counts of a finished run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenarios that ran to a verdict.
    pub total: usize,
    /// Scenarios that met their expectation.
    pub passed: usize,
    /// Scenarios that did not.
    pub failed: usize,
    /// Scenarios cut short by an interruption.
    pub interrupted: usize,
}

impl Summary {
    /// Counts `results`.
    pub fn of(results: &[ScenarioResult]) -> Self {
        let interrupted = results
            .iter()
            .filter(|r| r.outcome == crate::outcome::Outcome::Interrupted)
            .count();
        let passed = results.iter().filter(|r| r.passed).count();
        Summary {
            total: results.len(),
            passed,
            failed: results.len() - passed - interrupted,
            interrupted,
        }
    }
}
