//! A ZeroMQ context owned through `zmq_sys` (the `zmq` crate's `Context` has no shutdown, no
//! BLOCKY and no raw pointer), sockets created in it and wrapped as `zmq::Socket`, and the
//! message format of scenario traffic.
//!
//! Wire format: pub/sub types send `[topic, payload]`, other types `[payload]`; the payload's
//! first byte is `P` for a slow-joiner probe and `D` for data, so a receiver classifies a
//! message by the first byte of its last frame.

use std::ffi::c_void;

use crate::scenario::{ContextSpec, SocketOptions, SocketType};

/// First payload byte of a probe.
pub const PROBE: u8 = b'P';
/// First payload byte of a data message.
pub const DATA: u8 = b'D';

/// A libzmq context. Contexts are thread-safe; this owns the pointer until `term` returns.
#[derive(Debug)]
pub struct ZmqContext {
    ptr: *mut c_void,
}

// SAFETY: libzmq contexts may be used from any thread.
unsafe impl Send for ZmqContext {}
// SAFETY: as above; every context function is thread-safe.
unsafe impl Sync for ZmqContext {}

fn last_error() -> zmq::Error {
    // SAFETY: zmq_errno has no preconditions.
    zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })
}

impl ZmqContext {
    /// Creates a context and applies its options before any socket exists.
    pub fn new(spec: &ContextSpec) -> Result<Self, String> {
        // SAFETY: plain constructor.
        let ptr = unsafe { zmq_sys::zmq_ctx_new() };
        if ptr.is_null() {
            return Err(format!(
                "zmq_ctx_new failed for context `{}`: {}",
                spec.name,
                last_error()
            ));
        }
        let ctx = ZmqContext { ptr };
        if let Some(io) = spec.io_threads {
            ctx.set(zmq_sys::ZMQ_IO_THREADS as i32, io, &spec.name, "io_threads")?;
        }
        if let Some(max) = spec.max_sockets {
            ctx.set(
                zmq_sys::ZMQ_MAX_SOCKETS as i32,
                max,
                &spec.name,
                "max_sockets",
            )?;
        }
        if let Some(blocky) = spec.blocky {
            ctx.set(
                zmq_sys::ZMQ_BLOCKY as i32,
                i32::from(blocky),
                &spec.name,
                "blocky",
            )?;
        }
        Ok(ctx)
    }

    fn set(&self, option: i32, value: i32, name: &str, what: &str) -> Result<(), String> {
        // SAFETY: `ptr` is a live context.
        let rc = unsafe { zmq_sys::zmq_ctx_set(self.ptr, option, value) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!(
                "cannot set {what} = {value} on context `{name}`: {}",
                last_error()
            ))
        }
    }

    /// Creates a socket of type `t` with `options` applied.
    pub fn socket(
        &self,
        t: SocketType,
        options: &SocketOptions,
    ) -> Result<zmq::Socket, zmq::Error> {
        // SAFETY: `ptr` is a live context.
        let raw = unsafe { zmq_sys::zmq_socket(self.ptr, t.raw()) };
        if raw.is_null() {
            return Err(last_error());
        }
        // SAFETY: `raw` is a socket just created and owned by nobody else.
        let mut socket = unsafe { zmq::Socket::from_raw(raw) };
        if let Some(v) = options.linger_ms {
            socket.set_linger(v)?;
        }
        if let Some(v) = options.sndhwm {
            socket.set_sndhwm(v)?;
        }
        if let Some(v) = options.rcvhwm {
            socket.set_rcvhwm(v)?;
        }
        if let Some(v) = options.immediate {
            socket.set_immediate(v)?;
        }
        if let Some(v) = options.nodrop {
            set_int_option(&mut socket, zmq_sys::ZMQ_XPUB_NODROP as i32, i32::from(v))?;
        }
        Ok(socket)
    }

    /// `zmq_ctx_shutdown`: blocking calls on the context's sockets return ETERM.
    pub fn shutdown(&self) -> Result<(), zmq::Error> {
        // SAFETY: `ptr` is a live context.
        if unsafe { zmq_sys::zmq_ctx_shutdown(self.ptr) } == 0 {
            Ok(())
        } else {
            Err(last_error())
        }
    }

    /// `zmq_ctx_term`, retried on EINTR. Waits until every socket is closed and has lingered.
    /// The caller must never use the context again after it returns `Ok`.
    pub fn term(&self) -> Result<(), zmq::Error> {
        loop {
            // SAFETY: `ptr` is a live context; callers never term it twice.
            if unsafe { zmq_sys::zmq_ctx_term(self.ptr) } == 0 {
                return Ok(());
            }
            match last_error() {
                zmq::Error::EINTR => continue,
                e => return Err(e),
            }
        }
    }
}

/// Sets an integer socket option the `zmq` crate has no setter for (ZMQ_XPUB_NODROP).
pub fn set_int_option(socket: &mut zmq::Socket, option: i32, value: i32) -> Result<(), zmq::Error> {
    // SAFETY: the socket is live and owned by the caller's thread; `value` outlives the call.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            option,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<i32>(),
        )
    };
    if rc == 0 { Ok(()) } else { Err(last_error()) }
}

/// Builds one message's frames for a socket of type `t`.
pub fn message_frames(t: SocketType, topic: &str, kind: u8, size: usize) -> Vec<Vec<u8>> {
    let mut payload = vec![0u8; size.max(1)];
    payload[0] = kind;
    if t.has_topic() {
        vec![topic.as_bytes().to_vec(), payload]
    } else {
        vec![payload]
    }
}

/// Whether received frames are a probe (first byte of the last frame).
pub fn is_probe(frames: &[Vec<u8>]) -> bool {
    frames.last().and_then(|f| f.first()) == Some(&PROBE)
}
