//! The integration tests, one binary: each module tests one face of the built `termwatch`
//! (the command line, CI features, shipped scenarios, lifecycle-trace snapshots, the catalogue
//! pages, the bench, the preload probe inside the example programs) or the scenario parser
//! under fuzzing, with the helpers in [`support`] shared by all.

mod bench_cli;
mod catalogue;
mod ci;
mod cli;
mod exec;
mod fuzz_scenarios;
mod probe;
mod program_scenarios;
mod scenarios;
mod snapshots;
mod support;
