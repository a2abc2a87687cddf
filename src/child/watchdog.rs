//! The child's watchdog: a thread that checks the running phase or step against its deadline
//! and, when one passes, sends the hang verdict with its diagnostics and ends the process at
//! once. It only reads the registry and /proc; it never touches a socket another thread owns.

use std::sync::Arc;
use std::time::Duration;

use super::FinalReport;
use super::diagnose::hang_diagnostics;
use super::programs::Programs;
use super::proof::EarlyVerdicts;
use super::protocol::ChildMessage;
use super::registry::{Proof, Registry, ThreadOf};
use crate::lifecycle;
use crate::scenario::Scenario;
use crate::trace::layer::caused_by;
use crate::trace::{EventKind, Phase};

/// How often the deadline is checked.
const TICK: Duration = Duration::from_millis(2);
/// Exit code of a child that declared a hang.
pub const HANG_EXIT: i32 = 3;

/// Starts the watchdog thread; returns once it has entered itself in the registry, so that
/// every run's trace and hang report list it.
pub fn start(
    scenario: Arc<Scenario>,
    registry: Arc<Registry>,
    programs: Arc<Programs>,
    early: EarlyVerdicts,
) {
    let (started, has_started) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("watchdog".to_owned())
        .spawn(move || {
            registry.thread_started(
                "termwatch watchdog (checks deadlines, reads /proc)".to_owned(),
                ThreadOf::Harness,
            );
            let _ = started.send(());
            loop {
                std::thread::sleep(TICK);
                let mut state = registry.lock();
                let Some(active) = state.declare_hang_if(|a, state| {
                    a.started.elapsed() > a.timeout
                        || (early == EarlyVerdicts::On
                            && a.proof.as_ref().is_some_and(|p| p.settled(state)))
                }) else {
                    continue;
                };
                // Parks for good when another thread is already ending the process.
                let report = FinalReport::claim();
                let elapsed = active.started.elapsed();
                let elapsed_us: u64 = elapsed.as_micros().try_into().unwrap_or(u64::MAX);
                let in_hung_step = caused_by(Phase::of(active.step, &active.label));
                lifecycle!(
                    EventKind::StepHung,
                    label = active.label.as_str(),
                    elapsed_us = elapsed_us
                );
                drop(in_hung_step);
                let mut diagnostics = hang_diagnostics(&scenario, &state, &active, elapsed);
                drop(state);
                let (reports, words, _programs_held) = programs.at_hang();
                for line in words {
                    diagnostics.summary.push_str(&format!("\n{line}"));
                }
                diagnostics.programs = reports;
                let _end = caused_by(Phase::End);
                registry.trace_final_state();
                let hang = ChildMessage::Hang {
                    label: active.label,
                    step: active.step,
                    elapsed_us,
                    diagnostics,
                    proof: active.proof.as_ref().map(Proof::words),
                };
                report.send(&hang, HANG_EXIT);
            }
        });
    if let Err(e) = spawned {
        super::fail(format!("cannot start the watchdog thread: {e}"));
    }
    if has_started.recv().is_err() {
        super::fail("the watchdog thread ended as it started".to_owned());
    }
}
