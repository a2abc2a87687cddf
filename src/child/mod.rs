//! The child side: one scenario run in this process, under the watchdog, reporting to the
//! parent over the [`protocol`]. Entered through the hidden [`protocol::RUN_SCENARIO`] subcommand (the
//! binary re-executes itself, in a process group of its own).
//!
//! ```text
//! load ─▶ setup (topology) ─▶ traffic ─▶ step 1 … step n ─▶ Finished, _exit(0)
//!            └─────────── each under a deadline, watched by watchdog ──▶ Hang, _exit(3)
//! ```
//! A step that can block forever is first checked by [`proof`]: when it can never finish, the
//! watchdog declares the hang at once (marked proven) instead of at the deadline.
//! The watchdog's decision and a step's end are taken under the registry's one lock
//! ([`registry::StepEnd`]): a step that returns after its hang was declared reports nothing
//! more. Whoever ends the process claims the [`FinalReport`] first, so the child sends exactly
//! one of Hang, Finished and Failed.
//! The child never terms or closes anything on its way out: it ends with `_exit`, so a context
//! the scenario never termed is not a hang.

mod alarm;
mod diagnose;
mod monitor;
mod nodes;
mod programs;
pub mod proof;
pub mod protocol;
pub mod registry;
mod topology;
mod traffic;
mod watchdog;
mod zmq_ctx;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nodes::Note;
use programs::Programs;
use proof::EarlyVerdicts;
use protocol::{ChildMessage, Emitter};
use registry::{Proof, Registry, StepEnd};
use topology::Topology;

use crate::lifecycle;
use crate::scenario::{self, Action, SETUP_LABEL, TRAFFIC_LABEL};
use crate::trace::layer::{self, LifecycleLayer};
use crate::trace::{EventKind, Phase};

pub use protocol::ChildArgs;

/// Exit code of a child whose scenario could not be set up or run.
pub const FAILED_EXIT: i32 = 4;

/// Reports a failure of the harness or the environment and ends the process.
pub fn fail(message: String) -> ! {
    FinalReport::claim().send(&ChildMessage::Failed { message }, FAILED_EXIT)
}

/// The right to send the child's one final report (Hang, Finished or Failed) and end the
/// process. The first thread to claim it holds it; a later claimant parks until the process
/// ends, since a second final report would contradict the first (the parent reads only one).
pub struct FinalReport(());

/// Whether the final report was claimed; one per process.
static FINAL_REPORT: Claim = Claim::new();

/// A flag that only its first claimant wins.
struct Claim(AtomicBool);

impl Claim {
    const fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// `true` for the first call only.
    fn win(&self) -> bool {
        !self.0.swap(true, Ordering::SeqCst)
    }
}

/// Parks this thread until the process ends: another thread is sending the final report.
fn park_for_good() -> ! {
    loop {
        std::thread::park();
    }
}

impl FinalReport {
    /// Claims the final report, or parks for good when another thread has it.
    pub fn claim() -> Self {
        if FINAL_REPORT.win() {
            return Self(());
        }
        park_for_good()
    }

    /// Sends the report and ends the process with `code`.
    pub fn send(self, message: &ChildMessage, code: i32) -> ! {
        Emitter.send(message);
        // SAFETY: ends the process without running destructors, which could block on exactly
        // the sockets that hang (see the module docs).
        unsafe { libc::_exit(code) }
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        Emitter.send(&ChildMessage::Panicked {
            thread: registry::current_thread_name(),
            message: info.to_string(),
        });
        std::process::abort();
    }));
}

/// Streams every lifecycle event to the parent as it is recorded, next to the harness's own
/// logs on stderr.
fn install_trace() {
    let sink: layer::Sink = Box::new(|event| {
        Emitter.send(&ChildMessage::Trace {
            event: Box::new(event.clone()),
        });
    });
    layer::install_subscriber(Some(LifecycleLayer::new(sink)));
}

/// Runs one phase or step under its deadline and reports its start and end; `body` returns a
/// note on what it found (empty for the setup and traffic phases), which the trace keeps.
fn phase<T>(
    registry: &Registry,
    label: &str,
    step: Option<usize>,
    timeout: Duration,
    body: impl FnOnce() -> (T, Note),
) -> T {
    Emitter.send(&ChildMessage::PhaseStarted {
        label: label.to_owned(),
        step,
        timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
    });
    layer::enter_phase(Phase::of(step, label));
    lifecycle!(EventKind::StepStarted, label = label);
    let started: Instant = registry.begin(label, step, timeout);
    let (result, note) = body();
    match registry.end() {
        StepEnd::Returned(None) => {}
        StepEnd::Returned(Some(proof)) => fail(format!(
            "harness error: step `{label}` was proven to hang, yet it finished: the proof was wrong ({})",
            proof.words()
        )),
        // The watchdog declared this step hung just before it returned: its report is the
        // verdict, and it ends the process. Any report from here would contradict it.
        StepEnd::Hung => park_for_good(),
    }
    let duration_us: u64 = started.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
    lifecycle!(
        EventKind::StepFinished,
        label = label,
        note = (!note.is_empty()).then_some(note.as_str()),
        duration_us = duration_us
    );
    Emitter.send(&ChildMessage::PhaseFinished {
        label: label.to_owned(),
        step,
        duration_us,
    });
    result
}

/// The child's whole life; never returns.
pub fn run(args: ChildArgs) -> ! {
    install_panic_hook();
    install_trace();
    if let Err(message) = args.check_protocol() {
        fail(message);
    }
    let mut scenario = match scenario::load(&args.file, &args.root) {
        Ok(s) => s,
        Err(errors) => fail(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    if let Some(timeout) = args.timeout {
        scenario.override_timeouts(timeout);
    }
    Emitter.send(&ChildMessage::Hello {
        version: protocol::PROTOCOL_VERSION,
        pid: std::process::id(),
    });
    let scenario = Arc::new(scenario);
    let registry = Arc::new(Registry::default());
    registry.thread_started(
        "main thread (runs the steps)".to_owned(),
        registry::ThreadOf::Harness,
    );
    let programs = Arc::new(Programs::default());
    watchdog::start(
        Arc::clone(&scenario),
        Arc::clone(&registry),
        Arc::clone(&programs),
        args.early,
    );

    let mut topology = phase(&registry, SETUP_LABEL, None, scenario.step_timeout, || {
        let built = topology::build(&scenario, &registry, &args.run_dir);
        let built = built.unwrap_or_else(|e| fail(e));
        if let Err(e) = programs.start(&scenario, &built.bound, &args.run_dir) {
            fail(e)
        }
        (built, Note::new())
    });
    phase(
        &registry,
        TRAFFIC_LABEL,
        None,
        scenario.step_timeout,
        || {
            (
                traffic::run(&scenario, &registry, &mut topology),
                Note::new(),
            )
        },
    );
    for (i, step) in scenario.steps.iter().enumerate() {
        phase(&registry, &step.label, Some(i), step.timeout, || {
            let proof = (args.early != EarlyVerdicts::Off)
                .then(|| proof::prove(&scenario, &registry.lock(), i))
                .flatten();
            (
                (),
                run_step(
                    &scenario,
                    &registry,
                    &mut topology,
                    &programs,
                    &step.action,
                    proof,
                ),
            )
        });
    }
    let program_reports = programs.finish();
    topology.join_ended_threads(&registry);
    layer::enter_phase(Phase::End);
    let report = FinalReport::claim();
    registry.trace_final_state();
    let state = registry.lock();
    let finished = ChildMessage::Finished {
        open_sockets: diagnose::open_sockets(&scenario, &state),
        nodes: diagnose::node_reports(&state),
        programs: program_reports,
    };
    drop(state);
    report.send(&finished, 0)
}

/// Carries out one step on the main thread; returns a note on what it found. A `proof` that
/// the step can never finish is handed to the watchdog just before the call that blocks.
fn run_step(
    scenario: &scenario::Scenario,
    registry: &Arc<Registry>,
    topology: &mut Topology,
    programs: &Programs,
    action: &Action,
    proof: Option<Proof>,
) -> Note {
    let prove = || {
        if let Some(proof) = proof {
            registry.prove(proof);
        }
    };
    match *action {
        Action::Stop { node, how } => programs.stop(node, how),
        Action::Close { node } => {
            prove();
            topology.nodes[node].close(registry)
        }
        Action::SetLinger { node, linger_ms } => {
            prove();
            topology.nodes[node].set_linger(registry, linger_ms)
        }
        Action::Cancel { node } => match topology.nodes[node].as_async() {
            Some(a) => a.cancel(registry, node),
            None => "not an async node".to_owned(),
        },
        Action::StopRuntime { node } => match topology.nodes[node].as_async() {
            Some(a) => a.stop_runtime(),
            None => "not an async node".to_owned(),
        },
        Action::Join { node } => {
            prove();
            topology.nodes[node].join()
        }
        Action::Exit { node } => {
            prove();
            topology.nodes[node].exit()
        }
        Action::Open { node } => topology.open(scenario, registry, node),
        Action::Steer { node, command } => topology.nodes[node].steer(registry, node, command),
        Action::Alarm { after } => {
            alarm::arm(after);
            format!(
                "SIGALRM due for the main thread in {}",
                humantime::format_duration(after)
            )
        }
        Action::Sleep { duration } => {
            std::thread::sleep(duration);
            "slept".to_owned()
        }
        Action::Shutdown { context } => match &topology.contexts[context] {
            Some(ctx) => {
                registry.context_ending(context);
                ctx.shutdown()
                    .unwrap_or_else(|e| fail(format!("zmq_ctx_shutdown failed: {e}")));
                let state = registry.lock();
                lifecycle!(
                    EventKind::ShutdownCalled,
                    context = state.contexts[context].name.as_str()
                );
                "blocking calls on the context's sockets now return ETERM".to_owned()
            }
            None => "context already termed".to_owned(),
        },
        Action::Term { context } => match topology.contexts[context].take() {
            Some(ctx) => {
                registry.context_ending(context);
                let name = registry.lock().contexts[context].name.clone();
                lifecycle!(EventKind::TermEntered, context = name.as_str());
                prove();
                let interrupted = ctx
                    .term()
                    .unwrap_or_else(|e| fail(format!("zmq_ctx_term failed: {e}")));
                registry.lock().contexts[context].terminated = true;
                lifecycle!(
                    EventKind::TermReturned,
                    context = name.as_str(),
                    interrupted = (interrupted > 0).then_some(u64::from(interrupted))
                );
                match interrupted {
                    0 => "zmq_ctx_term returned".to_owned(),
                    n => format!(
                        "zmq_ctx_term returned, after {n} interruption(s) by a signal (EINTR), each retried"
                    ),
                }
            }
            None => "context already termed".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Claim;

    #[test]
    fn only_the_first_claimant_wins_the_final_report() {
        let claim = Claim::new();
        assert!(claim.win());
        assert!(!claim.win());
        assert!(!claim.win());
    }
}
