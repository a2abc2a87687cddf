//! Interruption: SIGINT, SIGTERM and SIGHUP (a closed terminal) of the parent, all alike. The
//! first kills every running scenario's process group and lets the run report what it has
//! (exit 128 + the signal); the second also removes the run folders and exits at once. Children live in process groups of their own, so a terminal's Ctrl-C
//! reaches only the parent: killing them is the parent's job.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

static INTERRUPTED_BY: AtomicI32 = AtomicI32::new(0);
static STOPPED: AtomicBool = AtomicBool::new(false);
static ACTIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static RUN_FOLDERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The signal that interrupted the run, if any.
pub fn interrupted_by() -> Option<i32> {
    match INTERRUPTED_BY.load(Ordering::Acquire) {
        0 => None,
        signal => Some(signal),
    }
}

/// Stops the run without a signal (its report's reader went away): no scenario starts any
/// more and the running ones are killed, as on a first Ctrl-C but quietly.
pub fn stop() {
    if !STOPPED.swap(true, Ordering::AcqRel) {
        for &pgid in lock(&ACTIVE_GROUPS).iter() {
            kill_group(pgid);
        }
    }
}

/// Whether the run is being stopped, by a signal or by [`stop`].
pub fn stopping() -> bool {
    interrupted_by().is_some() || STOPPED.load(Ordering::Acquire)
}

/// Kills a process group; a group that is already gone is fine.
pub fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

/// Records a running child's process group; kills it at once if the run was interrupted.
pub fn register_group(pgid: i32) {
    lock(&ACTIVE_GROUPS).push(pgid);
    if stopping() {
        kill_group(pgid);
    }
}

/// Forgets a process group that has been reaped.
pub fn unregister_group(pgid: i32) {
    lock(&ACTIVE_GROUPS).retain(|&g| g != pgid);
}

/// Records a run folder to remove on a hard exit.
pub fn register_folder(path: PathBuf) {
    lock(&RUN_FOLDERS).push(path);
}

/// Forgets a run folder that was removed.
pub fn unregister_folder(path: &std::path::Path) {
    lock(&RUN_FOLDERS).retain(|p| p != path);
}

/// Installs the handler thread. Safe to call more than once.
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        result = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).and_then(|mut signals| {
            std::thread::Builder::new().name("signals".to_owned()).spawn(move || {
                for signal in signals.forever() {
                    let first = INTERRUPTED_BY.compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire).is_ok();
                    for &pgid in lock(&ACTIVE_GROUPS).iter() {
                        kill_group(pgid);
                    }
                    if !first {
                        for folder in lock(&RUN_FOLDERS).iter() {
                            let _ = std::fs::remove_dir_all(folder);
                        }
                        eprintln!("termwatch: interrupted twice, exiting now");
                        std::process::exit(128 + signal);
                    }
                    eprintln!("termwatch: interrupted; stopping the running scenarios (again to exit at once)");
                }
            })?;
            Ok(())
        });
    });
    result
}

/// For commands that start no scenario process groups (`bench`): the first SIGINT or SIGTERM
/// kills every registered process group, removes `folder` and exits at once with 128 + the
/// signal. Their other helper processes exit by themselves when this process's pipes to them
/// close.
pub fn remove_on_interrupt(folder: PathBuf) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                for &pgid in lock(&ACTIVE_GROUPS).iter() {
                    kill_group(pgid);
                }
                let _ = std::fs::remove_dir_all(&folder);
                eprintln!("termwatch: interrupted; removed {}", folder.display());
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}
