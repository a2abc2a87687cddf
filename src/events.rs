//! The public events of a run. The runner produces them in order; reporters only read them.

use crate::outcome::ScenarioResult;

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// A scenario's child process started.
    ScenarioStarted {
        /// Scenario name.
        name: String,
    },
    /// A phase or step of a running scenario began.
    PhaseStarted {
        /// Scenario name.
        name: String,
        /// Phase or step label.
        label: String,
        /// Its deadline in milliseconds.
        timeout_ms: u64,
    },
    /// A phase or step finished in time.
    PhaseFinished {
        /// Scenario name.
        name: String,
        /// Phase or step label.
        label: String,
        /// How long it took, in milliseconds.
        duration_ms: f64,
    },
    /// A scenario's verdict.
    ScenarioFinished(Box<ScenarioResult>),
}
