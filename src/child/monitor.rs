//! Socket monitors (`monitor = true`): each monitored socket reports its events
//! (zmq_socket_monitor) to a unique inproc endpoint, where a reader PAIR socket, one per
//! monitored socket, owned by one reader thread per node, turns them into lifecycle events at
//! that node.
//!
//! The monitor can never be why term waits: each reader closes its socket when its monitor
//! reports MONITOR_STOPPED (libzmq sends it when the monitored socket is closed, and when the
//! context is shut down or termed), or when a call returns ETERM. The readers are in the
//! registry like every other socket, so a hang report would show one left open.

use std::thread::JoinHandle;

use super::fail;
use super::nodes::{OwnedSocket, close_owned};
use super::registry::{EndpointKind, Registry, SocketEntry};
use super::zmq_ctx::ZmqContext;
use crate::lifecycle;
use crate::scenario::{SocketOptions, SocketType};
use crate::trace::EventKind;
use crate::trace::Phase;
use crate::trace::layer::caused_by;
use crate::trace::normalize::MONITOR_READER_ROLE;

/// Every event libzmq 4.3 reports (ZMQ_EVENT_ALL).
const ALL_EVENTS: i32 = 0xFFFF;
/// libzmq's ZMQ_EVENT_MONITOR_STOPPED.
const MONITOR_STOPPED: u16 = 0x0400;

/// A monitored socket's reader, before its thread takes it.
pub struct MonitorReader {
    /// The reader's PAIR socket, connected to the monitor's endpoint.
    pub reader: OwnedSocket,
    /// The role of the socket it watches.
    pub watched_role: &'static str,
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
    watched_role: &'static str,
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
        role: MONITOR_READER_ROLE,
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
        role = watched_role,
        endpoint = endpoint.as_str()
    );
    Ok(MonitorReader {
        reader: OwnedSocket { id, socket },
        watched_role,
    })
}

/// Starts the thread that reads a node's monitors until every reader has closed.
pub fn start_readers(
    registry: std::sync::Arc<Registry>,
    node: usize,
    node_name: String,
    readers: Vec<MonitorReader>,
) -> JoinHandle<()> {
    let mut thread_name = format!("mon-{node_name}");
    while thread_name.len() > 15 {
        thread_name.pop();
    }
    let failure = format!("cannot start the monitor reader of `{node_name}`");
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let _asynchronous = caused_by(Phase::Monitor);
            registry.thread_started(format!("monitor reader of node `{node_name}`"), Some(node));
            read_until_stopped(&registry, &node_name, readers);
            registry.thread_ended();
        })
        .unwrap_or_else(|e| fail(format!("{failure}: {e}")))
}

/// Reads events until each reader saw MONITOR_STOPPED or ETERM, closing each as it does.
fn read_until_stopped(registry: &Registry, node_name: &str, mut readers: Vec<MonitorReader>) {
    while !readers.is_empty() {
        let mut items: Vec<zmq::PollItem> = readers
            .iter()
            .map(|r| r.reader.socket.as_poll_item(zmq::POLLIN))
            .collect();
        let polled = zmq::poll(&mut items, -1);
        let ready: Vec<bool> = items.iter().map(zmq::PollItem::is_readable).collect();
        drop(items);
        let mut stopped: Vec<(usize, &'static str)> = Vec::new();
        match polled {
            Ok(_) => {
                for (i, reader) in readers.iter().enumerate().filter(|(i, _)| ready[*i]) {
                    match read_one(node_name, reader) {
                        Ok(true) => stopped.push((i, "monitor stopped")),
                        Ok(false) => {}
                        Err(zmq::Error::ETERM) => stopped.push((i, "ETERM")),
                        Err(e) => fail(format!("monitor reader of `{node_name}`: {e}")),
                    }
                }
            }
            Err(zmq::Error::EINTR) => {}
            Err(zmq::Error::ETERM) => stopped.extend((0..readers.len()).map(|i| (i, "ETERM"))),
            Err(e) => fail(format!("monitor reader of `{node_name}`: poll failed: {e}")),
        }
        for (i, reason) in stopped.into_iter().rev() {
            let reader = readers.remove(i);
            close_owned(registry, reader.reader);
            lifecycle!(
                EventKind::MonitorReaderClosed,
                node = node_name,
                role = reader.watched_role,
                reason = reason
            );
        }
    }
}

/// Reads one monitor event and traces it; `Ok(true)` when it was MONITOR_STOPPED.
fn read_one(node_name: &str, reader: &MonitorReader) -> Result<bool, zmq::Error> {
    let frames = reader.reader.socket.recv_multipart(0)?;
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
        role = reader.watched_role,
        event = event_name(event).as_str(),
        endpoint = endpoint.as_str()
    );
    Ok(event == MONITOR_STOPPED)
}
