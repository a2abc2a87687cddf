//! The libzmq context a benchmark owns outright, and the benchmark's socket settings.
//!
//! The context is a [`zmq_raw::Context`]: [`BenchContext::shutdown`] unblocks every thread that is
//! still in a socket call (they get `ETERM`), and dropping the context terms it once every socket
//! is closed.

use crate::scenario::SocketType;
use crate::zmq_raw;

/// High-water mark on every benchmark socket, both directions: bounded queues, as in the C
/// reference benchmark.
pub const HWM: i32 = 1000;

/// A libzmq context with one I/O thread, termed on drop.
pub struct BenchContext {
    raw: zmq_raw::Context,
}

impl BenchContext {
    /// A new context with libzmq's defaults (one I/O thread).
    pub fn new() -> Result<BenchContext, zmq::Error> {
        Ok(BenchContext {
            raw: zmq_raw::Context::new()?,
        })
    }

    /// A socket with the benchmark's settings: HWM [`HWM`] both ways and, on PUB and XPUB,
    /// `ZMQ_XPUB_NODROP` (a full queue blocks instead of dropping).
    pub fn socket(&self, t: SocketType) -> Result<zmq::Socket, zmq::Error> {
        let mut socket = self.raw.socket(t)?;
        socket.set_sndhwm(HWM)?;
        socket.set_rcvhwm(HWM)?;
        if matches!(t, SocketType::Pub | SocketType::Xpub) {
            zmq_raw::set_xpub_nodrop(&mut socket, true)?;
        }
        Ok(socket)
    }

    /// Makes every blocking call on this context's sockets return `ETERM`; the sockets must still
    /// be closed (dropped) before the context can terminate.
    pub fn shutdown(&self) -> Result<(), zmq::Error> {
        self.raw.shutdown()
    }
}
