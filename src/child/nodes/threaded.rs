//! Nodes with a thread of their own (`blocking`, `poll`, proxy): starting the thread, the
//! requests the main thread sends it, and what the thread does with its sockets when its loop
//! ends.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::child::fail;
use crate::child::registry::{OwnerState, Registry, ThreadOf, thread_name};
use crate::lifecycle;
use crate::scenario::{OnEterm, SteerCommand};
use crate::trace::EventKind;
use crate::trace::layer::{caused_by, current_phase};

use super::owned::{OwnedSocket, close_all_on_main, close_owned, set_linger_owned};
use super::{NodeEnv, Note, lock};

/// A request to a node's thread; the reply is a message on the `Sender`.
#[derive(Debug)]
pub enum Command {
    /// Close the node's sockets.
    Close(Sender<()>),
    /// Set ZMQ_LINGER on them.
    SetLinger(i32, Sender<()>),
    /// Leave the loop and end; the reply says whether the sockets were closed or kept.
    Exit(Sender<OnEterm>),
}

/// How a node's loop ended.
pub(super) enum LoopEnd {
    /// A call (named) returned ETERM.
    Eterm(&'static str),
    /// A steerable proxy got TERMINATE.
    Terminated,
    /// A `close` request.
    Close(Sender<()>),
    /// An `exit` request.
    Exit(Sender<OnEterm>),
}

/// A node whose thread owns its sockets.
pub struct ThreadedNode {
    pub(super) commands: Sender<Command>,
    pub(super) thread: Option<JoinHandle<()>>,
    pub(super) kept: Arc<Mutex<Vec<OwnedSocket>>>,
    pub(super) steer: Option<Arc<Mutex<Option<OwnedSocket>>>>,
}

/// Starts a node's thread, which enters itself in the registry (`purpose`) before `body`;
/// returns once it has, so that every thread of a node has started by the end of setup.
pub(super) fn spawn_node_thread(
    env: &NodeEnv,
    purpose: String,
    body: impl FnOnce() + Send + 'static,
) -> JoinHandle<()> {
    let (started, has_started) = channel();
    let (registry, node) = (Arc::clone(&env.registry), env.node);
    let thread = std::thread::Builder::new()
        .name(thread_name(&env.name))
        .spawn(move || {
            registry.thread_started(purpose, ThreadOf::Node(node));
            let _ = started.send(());
            body();
        })
        .unwrap_or_else(|e| {
            fail(format!(
                "cannot start a thread for node `{}`: {e}",
                env.name
            ))
        });
    if has_started.recv().is_err() {
        fail(format!(
            "the thread of node `{}` ended as it started",
            env.name
        ));
    }
    thread
}

pub(super) fn unexpected(env: &NodeEnv, what: &str, e: zmq::Error) -> ! {
    fail(format!("node `{}`: {what} failed: {e}", env.name))
}

/// What a node's thread does when its loop ends: close or keep its sockets, then return.
/// Requests still queued are dropped unanswered, which tells the main thread to act itself;
/// the inbox is dropped last, once the sockets are closed or in `kept` and the thread's end is
/// recorded, so that a main thread told to act finds every socket the loop kept.
/// What follows ETERM or TERMINATE is traced to the step that caused it.
pub(super) fn finish_loop(
    env: &NodeEnv,
    end: LoopEnd,
    sockets: Vec<OwnedSocket>,
    inbox: Receiver<Command>,
    kept: &Mutex<Vec<OwnedSocket>>,
    steer: Option<&Mutex<Option<OwnedSocket>>>,
) {
    let close_all = |sockets: Vec<OwnedSocket>| {
        for owned in sockets {
            close_owned(&env.registry, owned);
        }
        if let Some(steer) = steer
            && let Some(owned) = lock(steer).take()
        {
            close_owned(&env.registry, owned);
        }
        env.registry.set_owner(env.node, OwnerState::ThreadEnded);
    };
    let _cause = match &end {
        // The main thread waits in the `close` step for the reply, but not for what follows it.
        LoopEnd::Close(_) => Some(caused_by(current_phase())),
        LoopEnd::Exit(_) => {
            let cause = caused_by(current_phase());
            lifecycle!(EventKind::LoopExited, node = env.name.as_str());
            Some(cause)
        }
        LoopEnd::Eterm(call) => {
            let cause = env.registry.end_cause(env.node, false).map(caused_by);
            lifecycle!(EventKind::EtermSeen, node = env.name.as_str(), call = *call);
            cause
        }
        LoopEnd::Terminated => {
            let cause = env.registry.end_cause(env.node, true).map(caused_by);
            lifecycle!(EventKind::ProxyTerminated, node = env.name.as_str());
            cause
        }
    };
    match end {
        LoopEnd::Close(reply) => {
            close_all(sockets);
            let _ = reply.send(());
        }
        LoopEnd::Eterm(_) | LoopEnd::Terminated | LoopEnd::Exit(_) => {
            match env.on_eterm {
                OnEterm::Close => close_all(sockets),
                OnEterm::Keep => {
                    lifecycle!(
                        EventKind::SocketsKept,
                        node = env.name.as_str(),
                        sockets = sockets.len() as u64
                    );
                    lock(kept).extend(sockets);
                    env.registry
                        .set_owner(env.node, OwnerState::ThreadEndedKeeping);
                }
            }
            if let LoopEnd::Exit(reply) = end {
                let _ = reply.send(env.on_eterm);
            }
        }
    }
    env.registry.thread_ended();
    drop(inbox);
}

impl ThreadedNode {
    /// Takes the thread's handle, for joining it.
    pub(super) fn take_thread(&mut self) -> Option<JoinHandle<()>> {
        self.thread.take()
    }

    /// `close`: the thread closes its sockets between two turns of its loop; when its loop has
    /// ended, the main thread closes what it kept.
    pub(super) fn close(&mut self, registry: &Registry) -> Note {
        let (reply, answer) = channel();
        if self.commands.send(Command::Close(reply)).is_ok() && answer.recv().is_ok() {
            return "closed by its own thread".to_owned();
        }
        let kept = std::mem::take(&mut *lock(&self.kept));
        let steer = self.steer.as_ref().and_then(|s| lock(s).take());
        close_all_on_main(
            registry,
            kept.into_iter().chain(steer).collect(),
            "its thread had ended keeping them; closed by the main thread",
        )
    }

    /// `exit`: the thread leaves its loop between two turns of it and ends, closing or keeping
    /// its sockets as its `on_eterm` says.
    pub(super) fn exit(&mut self) -> Note {
        let (reply, answer) = channel();
        if self.commands.send(Command::Exit(reply)).is_err() {
            return "its thread had already ended".to_owned();
        }
        match answer.recv() {
            Ok(OnEterm::Close) => {
                "its thread left its loop, closed its sockets and ended".to_owned()
            }
            Ok(OnEterm::Keep) => {
                "its thread left its loop and ended, keeping its sockets open".to_owned()
            }
            Err(_) => "its thread had already ended".to_owned(),
        }
    }

    /// `set_linger`: the thread sets it between two turns of its loop; when its loop has ended,
    /// the main thread sets it on what it kept.
    pub(super) fn set_linger(&mut self, registry: &Registry, linger_ms: i32) -> Note {
        let (reply, answer) = channel();
        if self
            .commands
            .send(Command::SetLinger(linger_ms, reply))
            .is_ok()
            && answer.recv().is_ok()
        {
            return "set by its own thread".to_owned();
        }
        lock(&self.kept)
            .iter()
            .for_each(|s| set_linger_owned(registry, s, linger_ms));
        "its thread had ended; set by the main thread on the sockets it kept".to_owned()
    }

    /// `steer`: sends a command on the steerable proxy's control pair; does not wait for a reply.
    pub(super) fn steer(
        &mut self,
        registry: &Registry,
        node: usize,
        command: SteerCommand,
    ) -> Note {
        let Some(steer) = &self.steer else {
            return "not a steerable proxy".to_owned();
        };
        let guard = lock(steer);
        let Some(owned) = guard.as_ref() else {
            return "control socket already closed".to_owned();
        };
        if command == SteerCommand::Terminate {
            registry.terminate_sent(node);
        }
        // Recorded before the send: after it, the proxy's thread may already be recording.
        lifecycle!(
            EventKind::SteerSent,
            node = registry.lock().nodes[node].name.as_str(),
            command = command.as_str()
        );
        if let Err(e) = owned.socket.send(command.as_str(), 0) {
            fail(format!("steer {command} failed: {e}"));
        }
        format!("sent {command}")
    }
}
