//! The progress bar of long runs, on stderr and only when stderr is a terminal (CI logs and
//! pipes get none). It counts finished attempts and names the scenario that started last;
//! other output is written through [`Progress::suspend`] so it never tears the bar.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::RunEvent;

/// A progress bar, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `attempts` runs of scenarios; hidden unless stderr is a terminal.
    pub fn new(attempts: usize) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(attempts as u64), target);
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Names the scenario that started last; moves the bar on a finished attempt.
    pub fn on_event(&self, event: &RunEvent) {
        match event {
            RunEvent::ScenarioStarted { name } => self.bar.set_message(name.clone()),
            RunEvent::ScenarioFinished(_) => self.bar.inc(1),
            RunEvent::PhaseStarted { .. } | RunEvent::PhaseFinished { .. } => {}
        }
    }

    /// Runs `write` with the bar cleared, then redraws it.
    pub fn suspend<T>(&self, write: impl FnOnce() -> T) -> T {
        self.bar.suspend(write)
    }

    /// Removes the bar for good.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
