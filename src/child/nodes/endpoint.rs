//! The loops of `blocking` and `poll` nodes: send the traffic phase's messages, then receive
//! until ETERM (or, between polls, a request from the main thread).

use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::child::registry::NodeCounters;
use crate::child::zmq_ctx::{DATA, is_probe, message_frames};
use crate::lifecycle;
use crate::scenario::{EndpointSpec, Mode, SocketType};
use crate::trace::EventKind;

use super::NodeEnv;
use super::owned::{OwnedSocket, set_linger_owned};
use super::threaded::{Command, LoopEnd, ThreadedNode, finish_loop, spawn_node_thread, unexpected};

/// Counts one received message; the first data message is a lifecycle event.
pub(super) fn count_received(env: &NodeEnv, frames: &[Vec<u8>]) {
    if is_probe(frames) {
        NodeCounters::bump(&env.counters.probes_received);
    } else if NodeCounters::bump(&env.counters.received) == 1 {
        lifecycle!(EventKind::FirstMessageReceived, node = env.name.as_str());
    }
}

/// Sends a node's traffic-phase messages as blocking sends, paced by `rate`; `after_each`
/// runs after every send (a REQ receives its reply there).
pub fn send_messages(
    socket: &zmq::Socket,
    spec: &EndpointSpec,
    counters: &NodeCounters,
    mut after_each: impl FnMut() -> Result<(), zmq::Error>,
) -> Result<(), zmq::Error> {
    let frames = message_frames(spec.socket_type, &spec.topic, DATA, spec.size);
    let started = Instant::now();
    for i in 0..spec.send {
        if let Some(rate) = spec.rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        socket.send_multipart(frames.iter().map(Vec::as_slice), 0)?;
        NodeCounters::bump(&counters.sent);
        after_each()?;
    }
    Ok(())
}

/// Counts a received message; a REP answers it (with the same frames), as its state machine
/// requires before it may receive again.
fn on_received(
    env: &NodeEnv,
    spec: &EndpointSpec,
    socket: &zmq::Socket,
    frames: Vec<Vec<u8>>,
) -> Result<(), zmq::Error> {
    count_received(env, &frames);
    if spec.socket_type == SocketType::Rep {
        socket.send_multipart(frames, 0)?;
        NodeCounters::bump(&env.counters.sent);
    }
    Ok(())
}

/// Receives without blocking until nothing is left.
fn drain(socket: &zmq::Socket, spec: &EndpointSpec, env: &NodeEnv) -> Result<(), zmq::Error> {
    loop {
        match socket.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => on_received(env, spec, socket, frames)?,
            Err(zmq::Error::EAGAIN) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Starts a `blocking` or `poll` node's thread.
pub fn start_endpoint_thread(
    env: NodeEnv,
    spec: EndpointSpec,
    socket: OwnedSocket,
) -> ThreadedNode {
    let (commands, inbox) = channel();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let kept_by_thread = Arc::clone(&kept);
    let purpose = match spec.mode {
        Mode::Stream => format!("node `{}` (stream send loop)", env.name),
        mode => format!("node `{}` ({mode} receive loop)", env.name),
    };
    let thread = spawn_node_thread(&env.clone(), purpose, move || {
        let end = endpoint_loop(&env, &spec, &socket, &inbox);
        finish_loop(&env, end, vec![socket], inbox, &kept_by_thread, None);
    });
    ThreadedNode {
        commands,
        thread: Some(thread),
        kept,
        steer: None,
    }
}

fn endpoint_loop(
    env: &NodeEnv,
    spec: &EndpointSpec,
    owned: &OwnedSocket,
    inbox: &Receiver<Command>,
) -> LoopEnd {
    let socket = &owned.socket;
    if spec.mode == Mode::Stream {
        return stream_loop(env, spec, owned, inbox);
    }
    // A REQ alternates: each request is followed by its reply.
    let is_req = spec.socket_type == SocketType::Req;
    if spec.send > 0 {
        env.go.wait();
        let reply = || {
            if is_req {
                let frames = socket.recv_multipart(0)?;
                count_received(env, &frames);
            }
            Ok(())
        };
        let call = if is_req { "request" } else { "send" };
        match send_messages(socket, spec, &env.counters, reply) {
            Ok(()) => {}
            Err(zmq::Error::ETERM) => return LoopEnd::Eterm(call),
            Err(e) => unexpected(env, call, e),
        }
    }
    loop {
        if spec.mode == Mode::Blocking && !is_req {
            match socket
                .recv_multipart(0)
                .and_then(|frames| on_received(env, spec, socket, frames))
            {
                Ok(()) | Err(zmq::Error::EINTR) => {}
                Err(zmq::Error::ETERM) => return LoopEnd::Eterm("recv"),
                Err(e) => unexpected(env, "recv", e),
            }
            continue;
        }
        // A REQ with no request outstanding may not receive: it only waits (for ever, when
        // blocking) until ETERM or, between polls, a request from the main thread.
        let timeout_ms = match spec.mode {
            Mode::Blocking => -1,
            _ => spec
                .poll_interval
                .as_millis()
                .try_into()
                .unwrap_or(i64::MAX),
        };
        let waited = socket.poll(zmq::POLLIN, timeout_ms);
        match waited.and_then(|_| {
            if is_req {
                Ok(())
            } else {
                drain(socket, spec, env)
            }
        }) {
            Ok(()) | Err(zmq::Error::EINTR) => {}
            Err(zmq::Error::ETERM) => return LoopEnd::Eterm("poll"),
            Err(e) => unexpected(env, "poll", e),
        }
        if let Some(end) = serve_requests(env, owned, inbox) {
            return end;
        }
    }
}

/// Serves the requests queued for a loop between two turns of it; `Some` when one ends it.
fn serve_requests(
    env: &NodeEnv,
    owned: &OwnedSocket,
    inbox: &Receiver<Command>,
) -> Option<LoopEnd> {
    while let Ok(command) = inbox.try_recv() {
        match command {
            Command::Close(reply) => return Some(LoopEnd::Close(reply)),
            Command::Exit(reply) => return Some(LoopEnd::Exit(reply)),
            Command::SetLinger(linger_ms, reply) => {
                set_linger_owned(&env.registry, owned, linger_ms);
                let _ = reply.send(());
            }
        }
    }
    None
}

/// A `stream` node's loop: from the traffic phase on, blocking sends without end (paced by
/// `rate`), requests heard between sends. A send that cannot complete (pipes full, or none)
/// blocks until there is room or ETERM.
fn stream_loop(
    env: &NodeEnv,
    spec: &EndpointSpec,
    owned: &OwnedSocket,
    inbox: &Receiver<Command>,
) -> LoopEnd {
    let frames = message_frames(spec.socket_type, &spec.topic, DATA, spec.size);
    env.go.wait();
    let started = Instant::now();
    let mut sent: u64 = 0;
    loop {
        if let Some(end) = serve_requests(env, owned, inbox) {
            return end;
        }
        if let Some(rate) = spec.rate {
            let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        match owned
            .socket
            .send_multipart(frames.iter().map(Vec::as_slice), 0)
        {
            Ok(()) => sent = NodeCounters::bump(&env.counters.sent),
            Err(zmq::Error::ETERM) => return LoopEnd::Eterm("send"),
            Err(zmq::Error::EINTR) => {}
            Err(e) => unexpected(env, "send", e),
        }
    }
}
