//! The libzmq context a benchmark owns outright, and the benchmark's socket settings.
//!
//! `zmq::Context` cannot be shut down (no `zmq_ctx_shutdown`) and terminates on drop of its last
//! clone, so the benchmark keeps the raw context itself: sockets are created through `zmq_sys` and
//! wrapped with `zmq::Socket::from_raw`, [`BenchContext::shutdown`] unblocks every thread that is
//! still in a socket call (they get `ETERM`), and dropping the context terminates it once every
//! socket is closed.

use std::os::raw::{c_int, c_void};

/// High-water mark on every benchmark socket, both directions: bounded queues, as in the anchors.
pub const HWM: i32 = 1000;

/// A libzmq context with one I/O thread, terminated on drop.
pub struct BenchContext {
    raw: *mut c_void,
}

// SAFETY: a libzmq context is thread-safe; the pointer is only used through libzmq calls.
unsafe impl Send for BenchContext {}
// SAFETY: as above, every zmq_ctx_* and zmq_socket call may come from any thread.
unsafe impl Sync for BenchContext {}

/// The socket types the benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// Publisher; gets `ZMQ_XPUB_NODROP` so a full queue blocks instead of dropping.
    Pub,
    /// Subscriber (subscribed to everything by the subscriber role).
    Sub,
    /// The proxy's frontend.
    XSub,
    /// The proxy's backend; gets `ZMQ_XPUB_NODROP`.
    XPub,
    /// The steerable proxy's control socket.
    Pair,
}

impl SocketKind {
    fn raw(self) -> c_int {
        (match self {
            SocketKind::Pub => zmq_sys::ZMQ_PUB,
            SocketKind::Sub => zmq_sys::ZMQ_SUB,
            SocketKind::XSub => zmq_sys::ZMQ_XSUB,
            SocketKind::XPub => zmq_sys::ZMQ_XPUB,
            SocketKind::Pair => zmq_sys::ZMQ_PAIR,
        }) as c_int
    }

    fn drops_when_full(self) -> bool {
        matches!(self, SocketKind::Pub | SocketKind::XPub)
    }
}

fn last_error() -> zmq::Error {
    zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })
}

impl BenchContext {
    /// A new context with libzmq's defaults (one I/O thread).
    pub fn new() -> Result<BenchContext, zmq::Error> {
        // SAFETY: plain constructor; a null result is reported through errno.
        let raw = unsafe { zmq_sys::zmq_ctx_new() };
        if raw.is_null() {
            return Err(last_error());
        }
        Ok(BenchContext { raw })
    }

    /// A socket with the benchmark's settings: HWM [`HWM`] both ways and, on PUB and XPUB,
    /// `ZMQ_XPUB_NODROP`.
    pub fn socket(&self, kind: SocketKind) -> Result<zmq::Socket, zmq::Error> {
        // SAFETY: the context is alive for as long as `self`; a null result is reported through errno.
        let raw = unsafe { zmq_sys::zmq_socket(self.raw, kind.raw()) };
        if raw.is_null() {
            return Err(last_error());
        }
        // SAFETY: `raw` is a fresh socket that nothing else owns; the Socket closes it on drop.
        let socket = unsafe { zmq::Socket::from_raw(raw) };
        socket.set_sndhwm(HWM)?;
        socket.set_rcvhwm(HWM)?;
        if kind.drops_when_full() {
            let nodrop: c_int = 1;
            // SAFETY: `raw` is open (owned by `socket`), the option value is a c_int as libzmq expects.
            let rc = unsafe {
                zmq_sys::zmq_setsockopt(
                    raw,
                    zmq_sys::ZMQ_XPUB_NODROP as c_int,
                    (&nodrop as *const c_int).cast(),
                    std::mem::size_of::<c_int>(),
                )
            };
            if rc != 0 {
                return Err(last_error());
            }
        }
        Ok(socket)
    }

    /// Makes every blocking call on this context's sockets return `ETERM`; the sockets must still
    /// be closed (dropped) before the context can terminate.
    pub fn shutdown(&self) {
        // SAFETY: the context is alive; shutdown may be called any number of times.
        unsafe { zmq_sys::zmq_ctx_shutdown(self.raw) };
    }
}

impl Drop for BenchContext {
    fn drop(&mut self) {
        // SAFETY: the context is alive and terminated exactly once; EINTR means "call again".
        while unsafe { zmq_sys::zmq_ctx_term(self.raw) } != 0 {
            if last_error() != zmq::Error::EINTR {
                break;
            }
        }
    }
}
