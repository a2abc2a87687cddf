//! The libzmq calls the `zmq` crate does not offer, in one place, for the scenario child and the
//! benchmark alike: a context that can be shut down and is termed exactly once, sockets created
//! in it (wrapped as `zmq::Socket`), the ZMQ_XPUB_NODROP option, and libzmq's `errno`.
//!
//! `zmq::Context` has no `zmq_ctx_shutdown`, no ZMQ_BLOCKY and no raw pointer, and terms itself
//! when its last clone drops; the harness needs to choose the moment. [`Context::term`] takes the
//! context by value, so no call can reach it after it is termed; dropping a context that was
//! never termed terms it (waiting for its sockets, like `zmq::Context`).

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::scenario::SocketType;

/// libzmq's error for the last failed call on this thread.
pub fn last_error() -> zmq::Error {
    // SAFETY: zmq_errno has no preconditions; it reads the calling thread's errno.
    zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })
}

/// Context options set through `zmq_ctx_set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextOption {
    /// ZMQ_IO_THREADS.
    IoThreads,
    /// ZMQ_BLOCKY.
    Blocky,
    /// ZMQ_MAX_SOCKETS.
    MaxSockets,
}

impl ContextOption {
    fn raw(self) -> i32 {
        (match self {
            ContextOption::IoThreads => zmq_sys::ZMQ_IO_THREADS,
            ContextOption::Blocky => zmq_sys::ZMQ_BLOCKY,
            ContextOption::MaxSockets => zmq_sys::ZMQ_MAX_SOCKETS,
        }) as i32
    }
}

/// A libzmq context, owned: termed by [`Context::term`] or, failing that, on drop.
#[derive(Debug)]
pub struct Context {
    ptr: NonNull<c_void>,
}

// SAFETY: libzmq contexts may be used from any thread; the pointer is only passed to libzmq.
unsafe impl Send for Context {}
// SAFETY: as above; every zmq_ctx_* and zmq_socket call is thread-safe.
unsafe impl Sync for Context {}

impl Context {
    /// `zmq_ctx_new`.
    pub fn new() -> Result<Self, zmq::Error> {
        // SAFETY: plain constructor; a null result is reported through errno.
        let ptr = unsafe { zmq_sys::zmq_ctx_new() };
        NonNull::new(ptr)
            .map(|ptr| Context { ptr })
            .ok_or_else(last_error)
    }

    /// `zmq_ctx_set`; options take effect for sockets created afterwards.
    pub fn set(&self, option: ContextOption, value: i32) -> Result<(), zmq::Error> {
        // SAFETY: `ptr` is a live context (only `term` and drop end it, both consuming it).
        let rc = unsafe { zmq_sys::zmq_ctx_set(self.ptr.as_ptr(), option.raw(), value) };
        if rc == 0 { Ok(()) } else { Err(last_error()) }
    }

    /// `zmq_socket`: a new socket of type `t`, closed when the `zmq::Socket` drops.
    pub fn socket(&self, t: SocketType) -> Result<zmq::Socket, zmq::Error> {
        // SAFETY: `ptr` is a live context; a null result is reported through errno.
        let raw = unsafe { zmq_sys::zmq_socket(self.ptr.as_ptr(), t.raw()) };
        if raw.is_null() {
            return Err(last_error());
        }
        // SAFETY: `raw` is a socket just created that nothing else owns.
        Ok(unsafe { zmq::Socket::from_raw(raw) })
    }

    /// `zmq_ctx_shutdown`: every blocking call on the context's sockets returns ETERM; the
    /// sockets must still be closed before the context can be termed.
    pub fn shutdown(&self) -> Result<(), zmq::Error> {
        // SAFETY: `ptr` is a live context; shutdown may be called any number of times.
        if unsafe { zmq_sys::zmq_ctx_shutdown(self.ptr.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(last_error())
        }
    }

    /// `zmq_ctx_term`, retried on EINTR: waits until every socket of the context is closed and
    /// has lingered; returns how many times a signal interrupted it. Consumes the context,
    /// whatever the result: libzmq has released it or it was never valid, so nothing may use it
    /// again.
    pub fn term(self) -> Result<u32, zmq::Error> {
        let this = ManuallyDrop::new(self);
        term_raw(this.ptr)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Err(e) = term_raw(self.ptr) {
            tracing::error!("zmq_ctx_term failed on drop: {e}");
        }
    }
}

/// Terms a live context once, retrying on EINTR; returns the number of retries.
fn term_raw(ptr: NonNull<c_void>) -> Result<u32, zmq::Error> {
    let mut interrupted = 0;
    loop {
        // SAFETY: callers pass a live context and never use it again afterwards (`term`
        // consumes the `Context` without dropping it; `drop` runs at most once).
        if unsafe { zmq_sys::zmq_ctx_term(ptr.as_ptr()) } == 0 {
            return Ok(interrupted);
        }
        match last_error() {
            zmq::Error::EINTR => interrupted += 1,
            e => return Err(e),
        }
    }
}

/// Sets ZMQ_XPUB_NODROP (PUB and XPUB): a full queue blocks the sender instead of dropping.
/// The `zmq` crate has no setter for it.
pub fn set_xpub_nodrop(socket: &mut zmq::Socket, on: bool) -> Result<(), zmq::Error> {
    let value = i32::from(on);
    // SAFETY: the socket is open and used by this thread alone (`&mut`); `value` is the c_int
    // libzmq expects and outlives the call.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as i32,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<i32>(),
        )
    };
    if rc == 0 { Ok(()) } else { Err(last_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_returns_once_every_socket_is_closed() {
        let ctx = Context::new().expect("a context");
        ctx.set(ContextOption::Blocky, 0).expect("blocky");
        let mut socket = ctx.socket(SocketType::Xpub).expect("a socket");
        set_xpub_nodrop(&mut socket, true).expect("nodrop on XPUB");
        ctx.shutdown().expect("shutdown");
        assert_eq!(socket.recv_bytes(0), Err(zmq::Error::ETERM));
        drop(socket);
        ctx.term().expect("term");
    }

    #[test]
    fn nodrop_on_a_sub_socket_is_an_error() {
        let ctx = Context::new().expect("a context");
        let mut socket = ctx.socket(SocketType::Sub).expect("a socket");
        assert_eq!(set_xpub_nodrop(&mut socket, true), Err(zmq::Error::EINVAL));
    }
}
