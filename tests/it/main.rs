//! The integration tests, one binary: each module tests one face of the built `termwatch`
//! (the command line, CI features, shipped scenarios, lifecycle-trace snapshots, the bench) or
//! the scenario parser under fuzzing, with the helpers in [`support`] shared by all.

mod bench_cli;
mod ci;
mod cli;
mod fuzz_scenarios;
mod scenarios;
mod snapshots;
mod support;
