//! Socket monitors (`monitor = true`): each monitored socket reports its events
//! (zmq_socket_monitor) to a unique inproc endpoint, where a reader PAIR socket, one per
//! monitored socket, owned by one reader thread per node, turns them into lifecycle events at
//! that node.
//!
//! The monitor can never be why term waits: each reader closes its socket when its monitor
//! reports MONITOR_STOPPED (libzmq sends it when the monitored socket is closed, and when the
//! context is shut down or termed), or when a call returns ETERM. The readers are in the
//! registry like every other socket, so a hang report would show one left open.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::fail;
use super::nodes::{OwnedSocket, close_owned};
use super::registry::{EndpointKind, Registry, SocketEntry, ThreadOf, thread_name};
use super::zmq_ctx::ZmqContext;
use crate::lifecycle;
use crate::scenario::{SocketOptions, SocketType};
use crate::trace::layer::caused_by;
use crate::trace::{EventKind, Phase, SocketRole};

/// Every event libzmq 4.3 reports (ZMQ_EVENT_ALL).
const ALL_EVENTS: i32 = 0xFFFF;
/// libzmq's ZMQ_EVENT_MONITOR_STOPPED.
const MONITOR_STOPPED: u16 = 0x0400;

/// A monitored socket's reader, before its thread takes it.
pub struct MonitorReader {
    /// The reader's PAIR socket, connected to the monitor's endpoint.
    pub reader: OwnedSocket,
    /// The role of the socket it watches.
    pub watched_role: SocketRole,
}

/// libzmq's name of a monitor event.
fn event_name(event: u16) -> String {
    let name = match event {
        0x0001 => "CONNECTED",
        0x0002 => "CONNECT_DELAYED",
        0x0004 => "CONNECT_RETRIED",
        0x0008 => "LISTENING",
        0x0010 => "BIND_FAILED",
        0x0020 => "ACCEPTED",
        0x0040 => "ACCEPT_FAILED",
        0x0080 => "CLOSED",
        0x0100 => "CLOSE_FAILED",
        0x0200 => "DISCONNECTED",
        MONITOR_STOPPED => "MONITOR_STOPPED",
        0x0800 => "HANDSHAKE_FAILED_NO_DETAIL",
        0x1000 => "HANDSHAKE_SUCCEEDED",
        0x2000 => "HANDSHAKE_FAILED_PROTOCOL",
        0x4000 => "HANDSHAKE_FAILED_AUTH",
        other => return format!("EVENT_{other:#06x}"),
    };
    name.to_owned()
}

/// Attaches a monitor to `watched` (on the thread that owns it, during setup) and creates and
/// connects its reader in the same context.
pub fn attach(
    registry: &Registry,
    ctx: &ZmqContext,
    (context, node, node_name): (usize, usize, &str),
    watched: &OwnedSocket,
    watched_role: SocketRole,
) -> Result<MonitorReader, String> {
    let endpoint = format!("inproc://termwatch-monitor-{node_name}-{watched_role}");
    watched
        .socket
        .monitor(&endpoint, ALL_EVENTS)
        .map_err(|e| format!("cannot monitor the {watched_role} socket of `{node_name}`: {e}"))?;
    let socket = ctx
        .socket(SocketType::Pair, &SocketOptions::default())
        .map_err(|e| format!("cannot create the monitor reader of `{node_name}`: {e}"))?;
    let id = registry.socket_created(SocketEntry {
        node,
        role: SocketRole::MonitorReader,
        socket_type: SocketType::Pair,
        endpoints: Vec::new(),
        linger_ms: socket.get_linger().ok(),
        context,
        open: true,
        closed_by: None,
    });
    socket
        .connect(&endpoint)
        .map_err(|e| format!("cannot connect the monitor reader of `{node_name}`: {e}"))?;
    registry.socket_endpoint(id, EndpointKind::Connect, &endpoint);
    lifecycle!(
        EventKind::MonitorStarted,
        node = node_name,
        role = watched_role.as_str(),
        endpoint = endpoint.as_str()
    );
    Ok(MonitorReader {
        reader: OwnedSocket { id, socket },
        watched_role,
    })
}

/// The monitor endpoint of a node whose monitor a scenario node reads
/// (`connect = "<node>.monitor"`).
pub fn scenario_read_endpoint(node_name: &str) -> String {
    format!("inproc://{node_name}-monitor")
}

/// Starts monitoring a node's socket for a reader the scenario declares: the application's
/// PAIR end of a monitor, an ordinary socket that the scenario itself must close.
pub fn start_for_scenario_reader(watched: &OwnedSocket, node_name: &str) -> Result<(), String> {
    let endpoint = scenario_read_endpoint(node_name);
    watched
        .socket
        .monitor(&endpoint, ALL_EVENTS)
        .map_err(|e| format!("cannot monitor the socket of `{node_name}`: {e}"))?;
    lifecycle!(
        EventKind::MonitorStarted,
        node = node_name,
        role = SocketRole::Socket.as_str(),
        endpoint = endpoint.as_str()
    );
    Ok(())
}

/// A node's monitor reader thread, and the channel the main thread asks it to catch up on.
pub struct MonitorThread {
    /// The node's index.
    pub node: usize,
    /// The reader thread.
    pub thread: JoinHandle<()>,
    /// Main's end of the catch-up channel: a byte asks, a byte answers.
    catch_up: UnixStream,
}

impl MonitorThread {
    /// Waits until the reader has traced every event libzmq had already reported; the
    /// traffic phase ends with this, so that connection events are in every run's trace
    /// however late the reader thread got to run. Returns at once when the reader has ended.
    pub fn catch_up(&mut self) {
        let mut answer = [0u8; 1];
        if self.catch_up.write_all(b"?").is_ok() {
            let _ = self.catch_up.read(&mut answer);
        }
    }
}

/// Starts the thread that reads a node's monitors until every reader has closed.
pub fn start_readers(
    registry: Arc<Registry>,
    node: usize,
    node_name: String,
    readers: Vec<MonitorReader>,
) -> MonitorThread {
    let failure = format!("cannot start the monitor reader of `{node_name}`");
    let (catch_up, requests) =
        UnixStream::pair().unwrap_or_else(|e| fail(format!("{failure}: {e}")));
    let thread = std::thread::Builder::new()
        .name(thread_name(&format!("mon-{node_name}")))
        .spawn(move || {
            let _asynchronous = caused_by(Phase::Monitor);
            registry.thread_started(
                format!("monitor reader of node `{node_name}`"),
                ThreadOf::Monitor(node),
            );
            read_until_stopped(&registry, &node_name, readers, requests);
            registry.thread_ended();
        })
        .unwrap_or_else(|e| fail(format!("{failure}: {e}")));
    MonitorThread {
        node,
        thread,
        catch_up,
    }
}

/// Why a reader stopped, or `None` while it reads on.
type Stop = Option<&'static str>;

/// Reads what is there without waiting; the reason to stop, if one came.
fn read_available(node_name: &str, reader: &MonitorReader) -> Stop {
    loop {
        match read_one(node_name, reader, zmq::DONTWAIT) {
            Ok(true) => return Some("monitor stopped"),
            Ok(false) => {}
            Err(zmq::Error::EAGAIN) => return None,
            Err(zmq::Error::ETERM) => return Some("ETERM"),
            Err(e) => fail(format!("monitor reader of `{node_name}`: {e}")),
        }
    }
}

/// Reads events until each reader saw MONITOR_STOPPED or ETERM, closing each as it does, and
/// answers catch-up requests from the main thread.
fn read_until_stopped(
    registry: &Registry,
    node_name: &str,
    mut readers: Vec<MonitorReader>,
    mut requests: UnixStream,
) {
    while !readers.is_empty() {
        let mut items: Vec<zmq::PollItem> = readers
            .iter()
            .map(|r| r.reader.socket.as_poll_item(zmq::POLLIN))
            .collect();
        items.push(zmq::PollItem::from_fd(requests.as_raw_fd(), zmq::POLLIN));
        let polled = zmq::poll(&mut items, -1);
        let ready: Vec<bool> = items.iter().map(zmq::PollItem::is_readable).collect();
        drop(items);
        let catch_up_asked = ready[readers.len()];
        let mut stops: Vec<Stop> = match polled {
            Ok(_) => readers
                .iter()
                .enumerate()
                .map(|(i, reader)| {
                    (ready[i] || catch_up_asked)
                        .then(|| read_available(node_name, reader))
                        .flatten()
                })
                .collect(),
            Err(zmq::Error::EINTR) => vec![None; readers.len()],
            Err(zmq::Error::ETERM) => vec![Some("ETERM"); readers.len()],
            Err(e) => fail(format!("monitor reader of `{node_name}`: poll failed: {e}")),
        };
        if catch_up_asked {
            let mut request = [0u8; 1];
            if !matches!(requests.read(&mut request), Ok(1)) || requests.write_all(b"!").is_err() {
                fail(format!(
                    "monitor reader of `{node_name}`: the main thread went away"
                ));
            }
        }
        for i in (0..readers.len()).rev() {
            let Some(reason) = stops[i].take() else {
                continue;
            };
            let reader = readers.remove(i);
            close_owned(registry, reader.reader);
            lifecycle!(
                EventKind::MonitorReaderClosed,
                node = node_name,
                role = reader.watched_role.as_str(),
                reason = reason
            );
        }
    }
}

/// Reads one monitor event and traces it; `Ok(true)` when it was MONITOR_STOPPED.
fn read_one(node_name: &str, reader: &MonitorReader, flags: i32) -> Result<bool, zmq::Error> {
    let frames = reader.reader.socket.recv_multipart(flags)?;
    let Some(event) = frames
        .first()
        .and_then(|f| f.get(..2))
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    else {
        return Ok(false);
    };
    let endpoint = frames
        .get(1)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default();
    lifecycle!(
        EventKind::MonitorEvent,
        node = node_name,
        role = reader.watched_role.as_str(),
        event = event_name(event).as_str(),
        endpoint = endpoint.as_str()
    );
    Ok(event == MONITOR_STOPPED)
}
