//! The project's own XSUB→XPUB forwarding loop: what `engine = "forwarder"` runs in a proxy
//! node and what the benchmarks compare against `zmq_proxy`.
//!
//! It does what `zmq_proxy` does for a pub/sub bus (messages frontend → backend, subscriptions
//! backend → frontend, multipart kept whole) but counts what it forwards, so a run can say how
//! many messages went through the bus. It returns like `zmq_proxy`: with `Err(ETERM)` when the
//! context is terminated or shut down.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the forwarder keeps; read from any thread.
#[derive(Debug, Default)]
pub struct ForwarderStats {
    /// Whole messages (all frames) forwarded frontend → backend.
    pub messages: AtomicU64,
    /// Payload bytes of those messages.
    pub bytes: AtomicU64,
    /// Subscription messages forwarded backend → frontend.
    pub subscriptions: AtomicU64,
}

/// How many messages one pass forwards at most in one direction before turning to the other, so
/// neither direction starves the other (zmq_proxy's burst is 1000).
const BATCH: usize = 1024;

/// Forwards until the context is terminated; returns `Err(zmq::Error::ETERM)` then, or any other
/// error a socket call gave.
///
/// While messages flow it only alternates non-blocking batches in both directions; it blocks in
/// `zmq_poll` only once both directions came back empty, so a busy bus costs no poll per batch.
pub fn run_forwarder(
    frontend: &zmq::Socket,
    backend: &zmq::Socket,
    stats: &ForwarderStats,
) -> Result<(), zmq::Error> {
    let mut msg = zmq::Message::new();
    let mut items = [
        frontend.as_poll_item(zmq::POLLIN),
        backend.as_poll_item(zmq::POLLIN),
    ];
    loop {
        let (messages, bytes) = forward_batch(frontend, backend, &mut msg)?;
        if messages > 0 {
            stats.messages.fetch_add(messages, Ordering::Relaxed);
            stats.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        let (subscriptions, _) = forward_batch(backend, frontend, &mut msg)?;
        if subscriptions > 0 {
            stats
                .subscriptions
                .fetch_add(subscriptions, Ordering::Relaxed);
        }
        if messages == 0 && subscriptions == 0 {
            zmq::poll(&mut items, -1)?;
        }
    }
}

/// Moves up to `BATCH` whole messages from `from` to `to` without blocking on `from`; returns
/// the number of messages and payload bytes moved.
fn forward_batch(
    from: &zmq::Socket,
    to: &zmq::Socket,
    msg: &mut zmq::Message,
) -> Result<(u64, u64), zmq::Error> {
    let (mut messages, mut bytes) = (0u64, 0u64);
    while (messages as usize) < BATCH {
        match from.recv(msg, zmq::DONTWAIT) {
            Ok(()) => {}
            Err(zmq::Error::EAGAIN) => break,
            Err(e) => return Err(e),
        }
        loop {
            bytes += msg.len() as u64;
            let more = msg.get_more();
            to.send(
                std::mem::replace(msg, zmq::Message::new()),
                if more { zmq::SNDMORE } else { 0 },
            )?;
            if !more {
                break;
            }
            from.recv(msg, 0)?;
        }
        messages += 1;
    }
    Ok((messages, bytes))
}
