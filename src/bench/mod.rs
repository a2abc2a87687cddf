//! Proxy throughput benchmarks and the noise-aware comparison of their results.
//!
//! ```text
//! workload ──▶ measure (roles: threads for inproc, re-executed processes for ipc/tcp)
//!          ──▶ suite (interleaved repeats) ──▶ results (JSON) ──▶ compare (Mann–Whitney, verdict)
//!                                                               ──▶ render (table, Markdown, SVG)
//! ```
//!
//! Entry points for the CLI: [`BenchArgs`]/[`run_bench`] (`termwatch bench`),
//! [`CompareArgs`]/[`run_compare`] (`termwatch compare`) and the hidden
//! [`BenchRoleArgs`]/[`run_bench_role`] (`termwatch __bench-role`, see [`ROLE_SUBCOMMAND`]).

mod cli;
pub mod compare;
mod context;
pub mod measure;
pub mod render;
pub mod results;
pub mod roles;
pub mod stats;
pub mod suite;
pub mod workload;

pub use cli::{BenchArgs, BenchRoleArgs, CompareArgs, run_bench, run_bench_role, run_compare};
pub use measure::ROLE_SUBCOMMAND;
