//! The preload probe, termwatch's side: ships the probe library (built from `probe/src` by the
//! build script, embedded in the binary), prepares a program to load it, reads what it
//! reports into a typed [`ProbeState`], and says in words what a waiting `term()` waits for.
//!
//! ```text
//! ProbeSetup::new(run_dir) ─configure(&mut Command)─▶ spawn ─start()─▶ ProbeMonitor
//!   library in run_dir        LD_PRELOAD + TERMWATCH_PROBE            reader thread: records
//!   channel (SOCK_SEQPACKET)  two descriptors kept across exec        slot table: read on demand
//!   slot table (memfd)                                                 report() / finish()
//! ```
//!
//! Use (the program's runner):
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use termwatch::probe::ProbeSetup;
//!
//! let run_dir = tempfile::tempdir()?; // private (0700), removed afterwards
//! let probe = ProbeSetup::new(run_dir.path())?;
//! let mut command = std::process::Command::new("python3");
//! command.arg("app.py");
//! probe.configure(&mut command)?; // after any env_clear(): LD_PRELOAD is appended
//! let mut child = command.spawn()?;
//! let monitor = probe.start(child.id())?; // closes the program's ends here, starts reading
//! // ... the program outlives its deadline: before killing it,
//! let report = monitor.report(|_view| {}); // the closure may add py-spy thread names
//! println!("{report}");
//! child.kill()?;
//! child.wait()?;
//! let _final_state = monitor.finish(Duration::from_millis(500));
//! # Ok(()) }
//! ```
//!
//! What the probe cannot see it says: a process that loaded the probe but made no libzmq call
//! through it (libzmq linked statically, as the Rust `zmq` crate's vendored build does), and
//! records lost because the channel was full.

pub mod library;
pub mod record;
pub mod report;
pub mod session;
pub mod slots;
pub mod state;
#[path = "../../probe/src/wire.rs"]
pub mod wire;

pub use report::{ProbeReport, ProcessView};
pub use session::{ProbeMonitor, ProbeSetup};
pub use state::ProbeState;

/// Now on the clock the probe stamps its records with (CLOCK_MONOTONIC, ns).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
