//! The `alarm` step: a SIGALRM sent to the main thread after a delay, caught by a handler that
//! does nothing, so that the blocking call the main thread is in at that moment (typically
//! `zmq_ctx_term` in a later step) returns EINTR, as it does when a real program is signalled.

use std::sync::Once;
use std::time::Duration;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use super::fail;

extern "C" fn do_nothing(_: libc::c_int) {}

static HANDLER: Once = Once::new();

/// Installs the handler (once) and starts a thread that signals the calling thread, which must
/// be the main thread (it lives as long as the process), `after` from now.
pub fn arm(after: Duration) {
    HANDLER.call_once(|| {
        // No SA_RESTART: an interrupted system call fails with EINTR (poll(2), which libzmq
        // waits in, is never restarted anyway).
        let action = SigAction::new(
            SigHandler::Handler(do_nothing),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(Signal::SIGALRM, &action) } {
            fail(format!("cannot install the SIGALRM handler: {e}"));
        }
    });
    // SAFETY: pthread_self has no preconditions.
    let main = unsafe { libc::pthread_self() };
    let spawned = std::thread::Builder::new()
        .name("alarm".to_owned())
        .spawn(move || {
            std::thread::sleep(after);
            // SAFETY: `main` is the main thread, which outlives this one: the process ends with
            // `_exit` from it, never by it returning.
            unsafe { libc::pthread_kill(main, libc::SIGALRM) };
        });
    if let Err(e) = spawned {
        fail(format!("cannot start the alarm thread: {e}"));
    }
}
