//! Proxy throughput benchmarks, the noise-aware comparison of their results, and the standalone
//! proxy they measure.
//!
//! ```text
//! workload ──▶ measure (roles: threads for inproc, re-executed processes for ipc/tcp,
//!                       external proxy programs)
//!          ──▶ suite (interleaved repeats) ──▶ results (JSON) ──▶ compare (Mann–Whitney for two
//!                                                                 runs, Wilcoxon signed-rank for
//!                                                                 two engines of one run)
//!                                                               ──▶ render (table, Markdown, SVG)
//! ```
//!
//! Entry points for the CLI: [`BenchArgs`]/[`run_bench`] (`termwatch bench`),
//! [`CompareArgs`]/[`run_compare`] (`termwatch compare`), [`ProxyArgs`]/[`run_proxy_command`]
//! (`termwatch proxy`) and the hidden [`RoleArgs`]/[`run_bench_role`] (`termwatch __bench-role`,
//! see [`ROLE_SUBCOMMAND`]).

mod cli;
pub mod compare;
mod context;
pub mod external;
pub mod measure;
pub mod protocol;
pub mod render;
pub mod results;
mod role_process;
pub mod roles;
mod standalone;
pub mod stats;
pub mod suite;
pub mod workload;

pub use cli::{BenchArgs, CompareArgs, run_bench, run_compare};
pub use protocol::{ROLE_SUBCOMMAND, RoleArgs};
pub use role_process::run_bench_role;
pub use standalone::{ProxyArgs, run_proxy_command};
