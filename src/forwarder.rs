//! The project's own XSUB→XPUB forwarding loop: what `engine = "forwarder"` runs in a proxy
//! node and what the benchmarks compare against `zmq_proxy`.
//!
//! It does what `zmq_proxy` does for a pub/sub bus (messages frontend → backend, subscriptions
//! backend → frontend, multipart kept whole) but counts what it forwards, so a run can say how
//! many messages went through the bus. It returns like `zmq_proxy`: with `Err(ETERM)` when the
//! context is terminated or shut down.
//!
//! Like `zmq_proxy` it moves every frame through one reused `zmq_msg_t` (libzmq's `zmq_msg_recv`
//! and `zmq_msg_send` directly): the `zmq` crate can only send a `Message` by value, which costs
//! a `zmq_msg_init` and a `zmq_msg_close` per frame — measured at 8% of all CPU samples of an
//! inproc 16 B run, enough to leave the forwarder at 0.85 of `zmq_proxy`'s rate.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::zmq_raw::last_error;

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
    frontend: &mut zmq::Socket,
    backend: &mut zmq::Socket,
    stats: &ForwarderStats,
) -> Result<(), zmq::Error> {
    let front = RawSocket::of(frontend);
    let back = RawSocket::of(backend);
    let mut msg = RawMessage::new();
    let mut items = [
        frontend.as_poll_item(zmq::POLLIN),
        backend.as_poll_item(zmq::POLLIN),
    ];
    loop {
        // Counted even when the batch ends in an error: every message sent is in the stats.
        let mut forwarded = Moved::default();
        let outcome = forward_batch(front, back, &mut msg, &mut forwarded);
        if forwarded.messages > 0 {
            stats
                .messages
                .fetch_add(forwarded.messages, Ordering::Relaxed);
            stats.bytes.fetch_add(forwarded.bytes, Ordering::Relaxed);
        }
        outcome?;
        let mut subscriptions = Moved::default();
        let outcome = forward_batch(back, front, &mut msg, &mut subscriptions);
        if subscriptions.messages > 0 {
            stats
                .subscriptions
                .fetch_add(subscriptions.messages, Ordering::Relaxed);
        }
        outcome?;
        if forwarded.messages == 0 && subscriptions.messages == 0 {
            zmq::poll(&mut items, -1)?;
        }
    }
}

/// What one batch moved: whole messages and their payload bytes.
#[derive(Default)]
struct Moved {
    messages: u64,
    bytes: u64,
}

/// A socket's libzmq handle, borrowed from a `zmq::Socket` that outlives the forwarding loop.
#[derive(Clone, Copy)]
struct RawSocket(*mut c_void);

impl RawSocket {
    /// The handle of `socket`, which the caller keeps alive and uses only on this thread.
    fn of(socket: &mut zmq::Socket) -> RawSocket {
        RawSocket(socket.as_mut_ptr())
    }
}

/// A `zmq_msg_t` initialised once and closed on drop; receives and sends reuse it.
struct RawMessage(zmq_sys::zmq_msg_t);

impl RawMessage {
    fn new() -> RawMessage {
        let mut msg = zmq_sys::zmq_msg_t::default();
        // SAFETY: zmq_msg_init only writes the message; it cannot fail.
        unsafe { zmq_sys::zmq_msg_init(&mut msg) };
        RawMessage(msg)
    }

    /// Receives the next frame from `from`; `Err(EAGAIN)` when `flags` has DONTWAIT and none is
    /// queued.
    fn recv(&mut self, from: RawSocket, flags: c_int) -> Result<(), zmq::Error> {
        // SAFETY: the message is initialised and the socket open (borrowed by run_forwarder).
        let rc = unsafe { zmq_sys::zmq_msg_recv(&mut self.0, from.0, flags) };
        if rc < 0 { Err(last_error()) } else { Ok(()) }
    }

    /// Sends the frame to `to`, leaving this message empty and ready for the next receive.
    fn send(&mut self, to: RawSocket, flags: c_int) -> Result<(), zmq::Error> {
        // SAFETY: as in `recv`; on success libzmq takes the content and re-initialises the message.
        let rc = unsafe { zmq_sys::zmq_msg_send(&mut self.0, to.0, flags) };
        if rc < 0 { Err(last_error()) } else { Ok(()) }
    }

    fn len(&self) -> usize {
        // SAFETY: the message is initialised; zmq_msg_size only reads it.
        unsafe { zmq_sys::zmq_msg_size(&self.0) }
    }

    fn has_more(&self) -> bool {
        // SAFETY: the message is initialised; zmq_msg_more only reads it.
        unsafe { zmq_sys::zmq_msg_more(&self.0) != 0 }
    }
}

impl Drop for RawMessage {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, closed exactly once here.
        unsafe { zmq_sys::zmq_msg_close(&mut self.0) };
    }
}

/// Moves up to `BATCH` whole messages from `from` to `to` without blocking on `from`, adding
/// each one to `moved` once its last frame is sent.
fn forward_batch(
    from: RawSocket,
    to: RawSocket,
    msg: &mut RawMessage,
    moved: &mut Moved,
) -> Result<(), zmq::Error> {
    while (moved.messages as usize) < BATCH {
        match msg.recv(from, zmq::DONTWAIT) {
            Ok(()) => {}
            Err(zmq::Error::EAGAIN) => break,
            Err(e) => return Err(e),
        }
        let mut bytes = 0;
        loop {
            bytes += msg.len() as u64;
            let more = msg.has_more();
            msg.send(to, if more { zmq::SNDMORE } else { 0 })?;
            if !more {
                break;
            }
            msg.recv(from, 0)?;
        }
        moved.messages += 1;
        moved.bytes += bytes;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// Multipart messages arrive whole and counted, subscriptions flow upstream, and the loop
    /// ends with ETERM when the context is terminated.
    #[test]
    fn forwards_whole_messages_counts_them_and_ends_at_term() {
        let mut context = zmq::Context::new();
        let mut frontend = context.socket(zmq::XSUB).expect("xsub");
        let mut backend = context.socket(zmq::XPUB).expect("xpub");
        frontend
            .bind("inproc://forwarder-front")
            .expect("bind front");
        backend.bind("inproc://forwarder-back").expect("bind back");
        let stats = Arc::new(ForwarderStats::default());
        let thread_stats = Arc::clone(&stats);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let outcome = run_forwarder(&mut frontend, &mut backend, &thread_stats);
            drop((frontend, backend));
            let _ = done_tx.send(outcome);
        });
        let subscriber = context.socket(zmq::SUB).expect("sub");
        subscriber.set_subscribe(b"").expect("subscribe");
        subscriber.set_rcvtimeo(100).expect("timeout");
        subscriber
            .connect("inproc://forwarder-back")
            .expect("connect sub");
        let publisher = context.socket(zmq::PUB).expect("pub");
        publisher
            .connect("inproc://forwarder-front")
            .expect("connect pub");
        let received = (0..200).find_map(|_| {
            publisher
                .send_multipart([&b"topic"[..], &b"body!"[..]], 0)
                .expect("send");
            subscriber.recv_multipart(0).ok()
        });
        assert_eq!(received, Some(vec![b"topic".to_vec(), b"body!".to_vec()]));
        drop((publisher, subscriber));
        // Terminate on another thread, so a forwarder that never returns fails the test below
        // instead of hanging it in zmq_ctx_term.
        std::thread::spawn(move || {
            if context.destroy().is_ok() {
                // destroy() terminated the context; dropping it would terminate it again.
                std::mem::forget(context);
            }
        });
        let outcome = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the forwarder returns after term");
        assert_eq!(outcome, Err(zmq::Error::ETERM));
        // The loop adds a batch to the counters after forwarding it: read them once it returned.
        assert!(stats.messages.load(Ordering::Relaxed) >= 1);
        assert_eq!(
            stats.bytes.load(Ordering::Relaxed),
            10 * stats.messages.load(Ordering::Relaxed)
        );
        assert!(stats.subscriptions.load(Ordering::Relaxed) >= 1);
    }
}
