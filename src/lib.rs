//! termwatch: a testing and diagnostics harness for ZeroMQ shutdown hangs.
//!
//! ```text
//! scenario files ──parse──▶ raw ──validate──▶ Scenario ──plan──▶ child process (re-exec)
//!                                                                  │ events (JSON lines)
//!                                   reporters ◀── RunEvent ◀── runner (parent, owns verdicts)
//! ```
#![warn(missing_docs)]

pub mod bench;
pub mod child;
pub mod cli;
pub mod errors;
pub mod events;
pub mod exec;
pub mod forwarder;
pub mod outcome;
pub mod partition;
pub mod probe;
pub mod procfs;
pub mod program;
pub mod repeat;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod stacks;
pub mod trace;
pub mod zmq_raw;
