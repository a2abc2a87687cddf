//! The three parts of a benchmark run — publisher, subscriber, proxy — as plain functions on
//! sockets, so the same code runs as threads (inproc) and as separate processes (ipc, tcp).
//!
//! Method (the same as the C reference benchmark's): every publisher sends probes (`P` + its id) every millisecond
//! until it is told to go; a subscriber says it has joined once it has a probe from every
//! publisher; then each publisher sends its data messages (first byte `D`). The subscriber's clock
//! runs from its first data message to its last, it counts every one, and it gives up after
//! [`STALL_TIMEOUT`] without a message, reporting what it got (a lossy run, never a fast one).

use super::context::BenchContext;
use super::workload::ProxyEngine;
use crate::forwarder::{ForwarderStats, run_forwarder};
use crate::scenario::SocketType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// First byte of a probe message; the second byte is the publisher's id.
const PROBE_MARK: u8 = b'P';
/// First byte of a data message.
const DATA_MARK: u8 = b'D';
/// Pause between two probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// How long a subscriber waits for probes from every publisher.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a subscriber waits for the next data message before reporting the run as lossy.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Highest accepted throttle: beyond it a run would mostly measure the sleep.
pub const MAX_THROTTLE_PERCENT: u8 = 90;

/// A failed step of a role.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// A libzmq call failed.
    #[error("{step}: {source}")]
    Zmq {
        /// What the role was doing.
        step: String,
        /// libzmq's error.
        source: zmq::Error,
    },
    /// Some publishers never reached the subscriber.
    #[error("no probe from {missing} of {publishers} publisher(s) within {JOIN_TIMEOUT:?}")]
    JoinTimeout {
        /// Publishers without a probe.
        missing: u32,
        /// Publishers expected.
        publishers: u8,
    },
}

trait StepContext<T> {
    fn during(self, step: impl FnOnce() -> String) -> Result<T, RoleError>;
}

impl<T> StepContext<T> for Result<T, zmq::Error> {
    fn during(self, step: impl FnOnce() -> String) -> Result<T, RoleError> {
        self.map_err(|source| RoleError::Zmq {
            step: step(),
            source,
        })
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine, so
/// subscribers in different processes can be put on one time line.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// How a socket reaches its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// Bind to this endpoint (`tcp://127.0.0.1:*` picks a free port).
    Bind(String),
    /// Connect to this endpoint.
    Connect(String),
}

/// Opens a publisher; returns it with the endpoint it is reachable at (the resolved one after a
/// wildcard bind, the peer's after a connect).
pub fn open_publisher(
    context: &BenchContext,
    attach: &Attach,
) -> Result<(zmq::Socket, String), RoleError> {
    let socket = context
        .socket(SocketType::Pub)
        .during(|| "creating the PUB socket".into())?;
    let endpoint = match attach {
        Attach::Bind(endpoint) => {
            socket
                .bind(endpoint)
                .during(|| format!("binding the PUB to {endpoint}"))?;
            last_endpoint(&socket)?
        }
        Attach::Connect(endpoint) => {
            socket
                .connect(endpoint)
                .during(|| format!("connecting the PUB to {endpoint}"))?;
            endpoint.clone()
        }
    };
    Ok((socket, endpoint))
}

fn last_endpoint(socket: &zmq::Socket) -> Result<String, RoleError> {
    let endpoint = socket
        .get_last_endpoint()
        .during(|| "reading the bound endpoint".into())?;
    Ok(endpoint.unwrap_or_else(|raw| String::from_utf8_lossy(&raw).into_owned()))
}

/// Sends probes until `go` is set, then `messages` data messages of `size` bytes. Returns once
/// all are queued; the caller keeps the socket open until the subscribers have them all.
pub fn publish(
    socket: &mut zmq::Socket,
    id: u8,
    size: usize,
    messages: u64,
    go: &AtomicBool,
) -> Result<(), RoleError> {
    let probe = [PROBE_MARK, id];
    while !go.load(Ordering::Acquire) {
        match socket.send(&probe[..], zmq::DONTWAIT) {
            Ok(()) | Err(zmq::Error::EAGAIN) => {}
            Err(source) => {
                return Err(RoleError::Zmq {
                    step: "sending a probe".into(),
                    source,
                });
            }
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
    let raw = socket.as_mut_ptr();
    let payload = payload(size);
    for sent in 0..messages {
        send_data_message(raw, payload)
            .during(|| format!("sending data message {sent} of {messages}"))?;
    }
    Ok(())
}

/// The payload of every data message of `size` bytes: [`DATA_MARK`], then the bytes `1, 2, 3, …`
/// (wrapping). Filled once per size and process, and kept for the life of the process: data
/// messages point at it instead of owning a copy, so a message costs the publisher no allocation
/// and no byte written, whatever its size, and every byte on the wire is defined.
fn payload(size: usize) -> &'static [u8] {
    static PAYLOADS: Mutex<BTreeMap<usize, &'static [u8]>> = Mutex::new(BTreeMap::new());
    let mut payloads = PAYLOADS.lock().unwrap_or_else(PoisonError::into_inner);
    payloads.entry(size.max(1)).or_insert_with_key(|&size| {
        let mut bytes: Vec<u8> = (0..size).map(|i| i as u8).collect();
        bytes[0] = DATA_MARK;
        Vec::leak(bytes)
    })
}

/// Sends one data message: a constant libzmq message (`zmq_msg_init_data` without a free
/// function) over the shared [`payload`], then `zmq_msg_send`.
fn send_data_message(
    socket: *mut std::os::raw::c_void,
    payload: &'static [u8],
) -> Result<(), zmq::Error> {
    let mut message = zmq_sys::zmq_msg_t::default();
    // SAFETY: `payload` lives for the rest of the process and is never written again, so libzmq
    // may read it from any thread for as long as any message refers to it; with no free function
    // libzmq never frees it. `socket` is the open socket the caller holds mutably. On a failed
    // send the message is still ours and is closed; on success libzmq owns it.
    unsafe {
        if zmq_sys::zmq_msg_init_data(
            &mut message,
            payload.as_ptr().cast_mut().cast(),
            payload.len(),
            None,
            std::ptr::null_mut(),
        ) != 0
        {
            return Err(crate::zmq_raw::last_error());
        }
        if zmq_sys::zmq_msg_send(&mut message, socket, 0) < 0 {
            let error = crate::zmq_raw::last_error();
            zmq_sys::zmq_msg_close(&mut message);
            return Err(error);
        }
    }
    Ok(())
}

/// What one subscriber saw of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberReport {
    /// Data messages received.
    pub received: u64,
    /// Data messages it should have received.
    pub expected: u64,
    /// [`monotonic_ns`] at the first data message (0 when none came).
    pub first_ns: u64,
    /// [`monotonic_ns`] at the last data message (plus the throttle, if any).
    pub last_ns: u64,
}

/// Opens a subscriber on everything, connected to every endpoint.
pub fn open_subscriber(
    context: &BenchContext,
    endpoints: &[String],
) -> Result<zmq::Socket, RoleError> {
    let socket = context
        .socket(SocketType::Sub)
        .during(|| "creating the SUB socket".into())?;
    socket
        .set_subscribe(b"")
        .during(|| "subscribing to everything".into())?;
    for endpoint in endpoints {
        socket
            .connect(endpoint)
            .during(|| format!("connecting the SUB to {endpoint}"))?;
    }
    Ok(socket)
}

/// Waits for a probe from each of `publishers`, calls `on_joined`, then counts data messages
/// until `expected` arrived or none came for [`STALL_TIMEOUT`].
///
/// `throttle_percent` (tests only) stretches the measured time so the rate drops by that share:
/// after the last message the subscriber waits `elapsed × p / (100 − p)` more, clock running.
pub fn subscribe(
    socket: &zmq::Socket,
    publishers: u8,
    expected: u64,
    throttle_percent: u8,
    on_joined: impl FnOnce(),
) -> Result<SubscriberReport, RoleError> {
    await_probes(socket, publishers)?;
    on_joined();
    socket
        .set_rcvtimeo(STALL_TIMEOUT.as_millis() as i32)
        .during(|| "setting the stall timeout".into())?;
    let mut message = zmq::Message::new();
    let mut report = SubscriberReport {
        received: 0,
        expected,
        first_ns: 0,
        last_ns: 0,
    };
    while report.received < expected {
        match socket.recv(&mut message, 0) {
            Ok(()) => {}
            Err(zmq::Error::EAGAIN) => break,
            Err(source) => {
                return Err(RoleError::Zmq {
                    step: format!("receiving data message {}", report.received),
                    source,
                });
            }
        }
        if message.first() != Some(&DATA_MARK) {
            continue;
        }
        report.last_ns = monotonic_ns();
        if report.received == 0 {
            report.first_ns = report.last_ns;
        }
        report.received += 1;
    }
    let throttle = u64::from(throttle_percent.min(MAX_THROTTLE_PERCENT));
    if throttle > 0 && report.received > 0 {
        let elapsed = report.last_ns - report.first_ns;
        std::thread::sleep(Duration::from_nanos(elapsed * throttle / (100 - throttle)));
        report.last_ns = monotonic_ns();
    }
    Ok(report)
}

fn await_probes(socket: &zmq::Socket, publishers: u8) -> Result<(), RoleError> {
    let all: u64 = if publishers >= 64 {
        u64::MAX
    } else {
        (1u64 << publishers) - 1
    };
    let mut seen = 0u64;
    socket
        .set_rcvtimeo(100)
        .during(|| "setting the probe timeout".into())?;
    let deadline = std::time::Instant::now() + JOIN_TIMEOUT;
    let mut message = zmq::Message::new();
    while seen != all {
        if std::time::Instant::now() > deadline {
            return Err(RoleError::JoinTimeout {
                missing: (all & !seen).count_ones(),
                publishers,
            });
        }
        match socket.recv(&mut message, 0) {
            Ok(()) => {
                if let [PROBE_MARK, id] = message[..]
                    && id < 64
                {
                    seen |= 1u64 << id;
                }
            }
            Err(zmq::Error::EAGAIN) => {}
            Err(source) => {
                return Err(RoleError::Zmq {
                    step: "waiting for probes".into(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// A proxy's two bound sockets.
pub struct ProxySockets {
    /// XSUB the publishers connect to.
    pub frontend: zmq::Socket,
    /// XPUB the subscribers connect to.
    pub backend: zmq::Socket,
    /// Where the frontend is reachable (resolved after a wildcard bind).
    pub frontend_endpoint: String,
    /// Where the backend is reachable.
    pub backend_endpoint: String,
}

/// Creates and binds the proxy's XSUB (frontend) and XPUB (backend).
pub fn open_proxy(
    context: &BenchContext,
    frontend: &str,
    backend: &str,
) -> Result<ProxySockets, RoleError> {
    let xsub = context
        .socket(SocketType::Xsub)
        .during(|| "creating the XSUB socket".into())?;
    let xpub = context
        .socket(SocketType::Xpub)
        .during(|| "creating the XPUB socket".into())?;
    xsub.bind(frontend)
        .during(|| format!("binding the XSUB to {frontend}"))?;
    xpub.bind(backend)
        .during(|| format!("binding the XPUB to {backend}"))?;
    Ok(ProxySockets {
        frontend_endpoint: last_endpoint(&xsub)?,
        backend_endpoint: last_endpoint(&xpub)?,
        frontend: xsub,
        backend: xpub,
    })
}

/// Runs `engine` on the proxy sockets until the context is shut down (then returns `Ok`); the
/// forwarder counts what it forwards in `stats`.
pub fn run_proxy(
    context: &BenchContext,
    engine: ProxyEngine,
    sockets: ProxySockets,
    stats: &ForwarderStats,
) -> Result<(), RoleError> {
    let ProxySockets {
        mut frontend,
        mut backend,
        ..
    } = sockets;
    let outcome = match engine {
        ProxyEngine::ZmqProxy => zmq::proxy(&frontend, &backend),
        ProxyEngine::Steerable => {
            let mut control = context
                .socket(SocketType::Pair)
                .during(|| "creating the steerable proxy's control socket".into())?;
            zmq::proxy_steerable(&mut frontend, &mut backend, &mut control)
        }
        ProxyEngine::Forwarder => run_forwarder(&mut frontend, &mut backend, stats),
    };
    match outcome {
        Ok(()) | Err(zmq::Error::ETERM) => Ok(()),
        Err(source) => Err(RoleError::Zmq {
            step: format!("running the {engine} engine"),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_filled_once_per_size_and_marked_as_data() {
        let first = payload(300);
        assert_eq!(first.len(), 300);
        assert_eq!(first[0], DATA_MARK);
        assert_eq!(&first[1..4], &[1, 2, 3]);
        assert_eq!(first[256], 0, "the pattern wraps");
        assert!(std::ptr::eq(first, payload(300)), "one buffer per size");
        assert_eq!(payload(1), &[DATA_MARK]);
    }
}
