//! Reporters: they read [`RunEvent`](crate::events::RunEvent)s, results and tallies and write
//! them somewhere; they never reach into the runner. `human` is for terminals, `progress` is
//! the terminal's progress bar, `json` is JSON Lines for machines, `junit` is JUnit XML for CI;
//! `catalogue` renders the scenario files themselves as a Markdown page.

pub mod catalogue;
pub mod human;
pub mod json;
pub mod junit;
pub mod progress;

use crate::repeat::{Status, Tally};

/// Counts of a finished run, one per scenario (however many attempts it had).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenarios that ran to a verdict.
    pub total: usize,
    /// Scenarios that met their expectation (every attempt).
    pub passed: usize,
    /// Scenarios that did not, flaky ones included.
    pub failed: usize,
    /// Scenarios whose verdict varied between attempts (counted in `failed` too).
    pub flaky: usize,
    /// Scenarios cut short by an interruption before any verdict.
    pub interrupted: usize,
    /// Scenarios an interruption kept from starting at all (set by the caller, which knows
    /// what was selected).
    pub not_started: usize,
}

impl Summary {
    /// Counts `tallies`.
    pub fn of(tallies: &[Tally]) -> Self {
        let count = |status| tallies.iter().filter(|t| t.status == status).count();
        let interrupted = count(Status::Interrupted);
        let passed = count(Status::Passed);
        Summary {
            total: tallies.len(),
            passed,
            failed: tallies.len() - passed - interrupted,
            flaky: count(Status::Flaky),
            interrupted,
            not_started: 0,
        }
    }
}
