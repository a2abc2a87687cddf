//! A scenario's context (its options applied, sockets created with the scenario's socket
//! options, on the raw layer of [`crate::zmq_raw`]) and the message format of scenario traffic.
//!
//! Wire format: pub/sub types send `[topic, payload]`, other types `[payload]`; the payload's
//! first byte is `P` for a slow-joiner probe and `D` for data, so a receiver classifies a
//! message by the first byte of its last frame.

use crate::scenario::{ContextSpec, SocketOptions, SocketType};
use crate::zmq_raw::{self, ContextOption};

/// First payload byte of a probe.
pub const PROBE: u8 = b'P';
/// First payload byte of a data message.
pub const DATA: u8 = b'D';

/// A scenario's context: a [`zmq_raw::Context`] with the scenario's options, creating sockets
/// with the scenario's socket options.
#[derive(Debug)]
pub struct ZmqContext {
    raw: zmq_raw::Context,
}

impl ZmqContext {
    /// Creates a context and applies its options before any socket exists.
    pub fn new(spec: &ContextSpec) -> Result<Self, String> {
        let raw = zmq_raw::Context::new()
            .map_err(|e| format!("zmq_ctx_new failed for context `{}`: {e}", spec.name))?;
        let options = [
            (ContextOption::IoThreads, spec.io_threads, "io_threads"),
            (ContextOption::MaxSockets, spec.max_sockets, "max_sockets"),
            (ContextOption::Blocky, spec.blocky.map(i32::from), "blocky"),
        ];
        for (option, value, what) in options {
            if let Some(value) = value {
                raw.set(option, value).map_err(|e| {
                    format!(
                        "cannot set {what} = {value} on context `{}`: {e}",
                        spec.name
                    )
                })?;
            }
        }
        Ok(ZmqContext { raw })
    }

    /// Creates a socket of type `t` with `options` applied.
    pub fn socket(
        &self,
        t: SocketType,
        options: &SocketOptions,
    ) -> Result<zmq::Socket, zmq::Error> {
        let mut socket = self.raw.socket(t)?;
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
            zmq_raw::set_xpub_nodrop(&mut socket, v)?;
        }
        Ok(socket)
    }

    /// `zmq_ctx_shutdown`: blocking calls on the context's sockets return ETERM.
    pub fn shutdown(&self) -> Result<(), zmq::Error> {
        self.raw.shutdown()
    }

    /// `zmq_ctx_term`: waits until every socket is closed and has lingered (retried when a
    /// signal interrupts it: the result counts those retries); consumes the context.
    pub fn term(self) -> Result<u32, zmq::Error> {
        self.raw.term()
    }
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
