//! Node runtimes: who owns each node's sockets and how the main thread asks that owner to
//! close them, set their linger, cancel, stop or join.
//!
//! Ownership follows the scenario format's contract. Publishers and idle sockets belong to the
//! main thread ([`NodeHandle::Main`]). `blocking`, `poll` and proxy nodes run a thread that
//! holds their sockets and hears requests only when its loop lets it
//! ([`NodeHandle::Threaded`]): a blocking recv or a running proxy never does, which is exactly
//! why a `close` before `term` hangs there. `async` nodes keep their socket in the node, outside
//! the receive task, on a tokio runtime in a background thread ([`NodeHandle::Async`]): stopping
//! the runtime or cancelling the task leaves the socket open, the way a Python object keeps its
//! socket alive after its event loop stops.

mod async_node;
mod endpoint;
mod latch;
mod owned;
mod proxy;
mod threaded;

use std::sync::{Arc, Mutex, MutexGuard};

pub use async_node::{AsyncNode, start_async};
pub use endpoint::{send_messages, start_endpoint_thread};
pub use latch::Latch;
pub use owned::{OwnedSocket, close_owned};
pub use proxy::{ProxySockets, start_proxy_thread};
pub use threaded::ThreadedNode;

use super::registry::{NodeCounters, Registry};
use crate::scenario::{OnEterm, SteerCommand};
use owned::{close_all_on_main, set_linger_owned};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a node's thread shares with it.
#[derive(Debug, Clone)]
pub struct NodeEnv {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The node's index.
    pub node: usize,
    /// The node's name.
    pub name: String,
    /// The node's counters.
    pub counters: Arc<NodeCounters>,
    /// What its loop does with its sockets when it ends.
    pub on_eterm: OnEterm,
    /// The traffic phase's gate for sends.
    pub go: Arc<Latch>,
}

/// The main thread's handle on one node.
pub enum NodeHandle {
    /// Sockets the main thread owns and uses.
    Main(Vec<OwnedSocket>),
    /// A node with its own thread.
    Threaded(ThreadedNode),
    /// An async node on a tokio runtime.
    Async(AsyncNode),
}

/// What a request to a node found, for the trace.
pub type Note = String;

impl NodeHandle {
    /// `close`: the owner closes the node's sockets; waits for it.
    pub fn close(&mut self, registry: &Arc<Registry>) -> Note {
        match self {
            NodeHandle::Main(sockets) => close_all_on_main(
                registry,
                std::mem::take(sockets),
                "closed by the main thread",
            ),
            NodeHandle::Threaded(t) => t.close(registry),
            NodeHandle::Async(a) => a.close(registry),
        }
    }

    /// `set_linger`: the owner sets ZMQ_LINGER on the node's sockets; waits for it.
    pub fn set_linger(&mut self, registry: &Arc<Registry>, linger_ms: i32) -> Note {
        match self {
            NodeHandle::Main(sockets) if sockets.is_empty() => {
                "already closed; nothing to set it on".to_owned()
            }
            NodeHandle::Main(sockets) => {
                sockets
                    .iter()
                    .for_each(|s| set_linger_owned(registry, s, linger_ms));
                "set by the main thread".to_owned()
            }
            NodeHandle::Threaded(t) => t.set_linger(registry, linger_ms),
            NodeHandle::Async(a) => a.set_linger(registry, linger_ms),
        }
    }

    /// `exit`: the node's thread leaves its loop and ends; waits for it.
    pub fn exit(&mut self) -> Note {
        match self {
            NodeHandle::Threaded(t) => t.exit(),
            NodeHandle::Main(_) | NodeHandle::Async(_) => "no thread of its own to exit".to_owned(),
        }
    }

    /// `join`: waits for the node's thread to end.
    pub fn join(&mut self) -> Note {
        let thread = match self {
            NodeHandle::Threaded(t) => t.take_thread(),
            NodeHandle::Async(a) => a.thread.take(),
            NodeHandle::Main(_) => None,
        };
        match thread {
            Some(thread) => match thread.join() {
                Ok(()) => "thread ended".to_owned(),
                Err(_) => "thread ended by panicking".to_owned(),
            },
            None => "already joined".to_owned(),
        }
    }

    /// After the last step: waits for the node's thread if its loop has ended, so that what it
    /// records on its way out is in the trace of every run (a loop still running is left alone).
    pub fn join_if_ended(&mut self, registry: &Registry, node: usize) {
        if let NodeHandle::Threaded(t) = self
            && registry.loop_ended(node)
            && let Some(thread) = t.take_thread()
        {
            let _ = thread.join();
        }
    }

    /// `steer`: sends a command on the steerable proxy's control pair; does not wait for a reply.
    pub fn steer(&mut self, registry: &Registry, node: usize, command: SteerCommand) -> Note {
        match self {
            NodeHandle::Threaded(t) => t.steer(registry, node, command),
            _ => "not a steerable proxy".to_owned(),
        }
    }

    /// The async part, for `cancel` and `stop_runtime`.
    pub fn as_async(&mut self) -> Option<&mut AsyncNode> {
        match self {
            NodeHandle::Async(a) => Some(a),
            _ => None,
        }
    }
}
