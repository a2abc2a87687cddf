//! Sockets with their registry id, and the only way the child closes or re-lingers one, so that
//! the registry always knows who closed what.

use crate::child::fail;
use crate::child::registry::{Registry, SocketId};

use super::Note;

/// A socket and its registry id; closing it through [`close_owned`] keeps the registry true.
pub struct OwnedSocket {
    /// Registry id.
    pub id: SocketId,
    /// The socket.
    pub socket: zmq::Socket,
}

/// Closes a socket on the calling thread and records who closed it.
pub fn close_owned(registry: &Registry, owned: OwnedSocket) {
    drop(owned.socket);
    registry.socket_closed(owned.id);
}

pub(super) fn set_linger_owned(registry: &Registry, owned: &OwnedSocket, linger_ms: i32) {
    if let Err(e) = owned.socket.set_linger(linger_ms) {
        fail(format!("set_linger({linger_ms}) failed: {e}"));
    }
    registry.socket_linger(owned.id, owned.socket.get_linger().ok());
}

pub(super) fn close_all_on_main(
    registry: &Registry,
    sockets: Vec<OwnedSocket>,
    done: &str,
) -> Note {
    if sockets.is_empty() {
        return "already closed; nothing to do".to_owned();
    }
    sockets.into_iter().for_each(|s| close_owned(registry, s));
    done.to_owned()
}
