//! termwatch: a testing and diagnostics harness for ZeroMQ shutdown hangs.
//!
//! ```text
//! scenario files ──parse──▶ raw ──validate──▶ Scenario ──plan──▶ child process (re-exec)
//!                                                                  │ events (JSON lines)
//!                                   reporters ◀── RunEvent ◀── runner (parent, owns verdicts)
//! ```
#![warn(missing_docs)]

pub mod bench;
pub(crate) mod child;
pub mod cli;
pub mod errors;
pub(crate) mod events;
pub(crate) mod exec;
pub(crate) mod forwarder;
pub(crate) mod guard;
pub(crate) mod outcome;
pub(crate) mod partition;
pub mod probe;
pub(crate) mod procfs;
pub(crate) mod program;
pub(crate) mod repeat;
pub(crate) mod report;
pub(crate) mod run_dir;
pub(crate) mod runner;
pub mod scenario;
pub(crate) mod stacks;
pub mod trace;
pub(crate) mod zmq_raw;
