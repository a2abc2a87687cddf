//! `async` nodes: a current-thread tokio runtime on a thread of its own runs one receive task;
//! the socket belongs to the node, outside the task, so stopping the runtime or cancelling the
//! task leaves it open.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::child::fail;
use crate::child::registry::Registry;
use crate::lifecycle;
use crate::scenario::OnEterm;
use crate::trace::EventKind;
use crate::trace::layer::caused_by;

use super::endpoint::count_received;
use super::owned::{OwnedSocket, close_all_on_main, close_owned, set_linger_owned};
use super::threaded::{spawn_node_thread, unexpected};
use super::{NodeEnv, Note, lock};

/// An async node: a runtime thread, its receive task, and the socket the node owns.
pub struct AsyncNode {
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(super) thread: Option<JoinHandle<()>>,
    socket: Arc<Mutex<Option<OwnedSocket>>>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    stopped: bool,
    name: String,
}

/// ZMQ_FD, for registration with tokio. It belongs to the socket: never closed here.
struct ZmqFd(RawFd);

impl AsRawFd for ZmqFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Starts an async node: a current-thread tokio runtime on a thread of its own, running one
/// receive task woken through the socket's ZMQ_FD.
pub fn start_async(env: NodeEnv, socket: OwnedSocket) -> AsyncNode {
    let socket = Arc::new(Mutex::new(Some(socket)));
    let task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>> = Arc::default();
    let (runtime_tx, runtime_rx) = channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (socket_for_runtime, task_slot) = (Arc::clone(&socket), Arc::clone(&task));
    let name = env.name.clone();
    let purpose = format!("node `{}` (tokio runtime, async receive task)", env.name);
    let thread = spawn_node_thread(&env.clone(), purpose, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                fail(format!(
                    "cannot build a tokio runtime for node `{}`: {e}",
                    env.name
                ))
            });
        *lock(&task_slot) = Some(runtime.spawn(receive_task(env.clone(), socket_for_runtime)));
        let _ = runtime_tx.send(runtime.handle().clone());
        runtime.block_on(async {
            let _ = stopped.await;
        });
        // Dropping the runtime drops its tasks (and their AsyncFd), never the node's socket.
        drop(runtime);
        env.registry.runtime_stopped(env.node);
        env.registry.thread_ended();
    });
    let runtime = runtime_rx
        .recv()
        .unwrap_or_else(|_| fail("an async node's runtime thread ended during setup".to_owned()));
    AsyncNode {
        runtime,
        stop: Some(stop),
        thread: Some(thread),
        socket,
        task,
        stopped: false,
        name,
    }
}

/// Receives until ETERM. Per wake-up it drains until ZMQ_EVENTS shows nothing to read and only
/// then clears readiness: ZMQ_FD is edge-triggered, so one recv per wake-up would stall.
async fn receive_task(env: NodeEnv, slot: Arc<Mutex<Option<OwnedSocket>>>) {
    let fd = match lock(&slot).as_ref().map(|owned| owned.socket.get_fd()) {
        Some(Ok(fd)) => fd,
        Some(Err(e)) => unexpected(&env, "getting ZMQ_FD", e),
        None => return,
    };
    // SAFETY: ZMQ_FD stays open as long as its socket, and the socket is closed only after this
    // AsyncFd is gone: the ETERM path below drops it first, and `close` awaits this task first.
    let registered = unsafe { AsyncFd::register_with_interest(ZmqFd(fd), Interest::READABLE) };
    let async_fd = registered.unwrap_or_else(|e| {
        fail(format!(
            "node `{}`: cannot register ZMQ_FD with tokio: {e}",
            env.name
        ))
    });
    let mut result = drain_ready(&slot, &env);
    while result.is_ok() {
        let mut guard = match async_fd.readable().await {
            Ok(guard) => guard,
            Err(e) => fail(format!(
                "node `{}`: waiting on ZMQ_FD failed: {e}",
                env.name
            )),
        };
        result = drain_ready(&slot, &env);
        guard.clear_ready();
    }
    drop(async_fd);
    match result {
        Err(zmq::Error::ETERM) => {
            let _cause = env.registry.end_cause(env.node, false).map(caused_by);
            lifecycle!(
                EventKind::EtermSeen,
                node = env.name.as_str(),
                call = "recv"
            );
            match env.on_eterm {
                OnEterm::Close => {
                    if let Some(owned) = lock(&slot).take() {
                        close_owned(&env.registry, owned);
                    }
                }
                OnEterm::Keep => {
                    lifecycle!(
                        EventKind::SocketsKept,
                        node = env.name.as_str(),
                        sockets = 1u64
                    );
                }
            }
        }
        Err(e) => unexpected(&env, "recv", e),
        Ok(()) => return,
    }
    env.registry.eterm_handled(env.node);
}

/// Reads while ZMQ_EVENTS says there is something to read. `Ok` when drained or closed.
fn drain_ready(slot: &Mutex<Option<OwnedSocket>>, env: &NodeEnv) -> Result<(), zmq::Error> {
    let guard = lock(slot);
    let Some(owned) = guard.as_ref() else {
        return Ok(());
    };
    while owned.socket.get_events()?.contains(zmq::POLLIN) {
        match owned.socket.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => count_received(env, &frames),
            Err(zmq::Error::EAGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl AsyncNode {
    /// Runs `job` on the runtime's thread and waits for it; `None` when the runtime is gone.
    fn on_runtime<T: Send + 'static>(
        &self,
        job: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        if self.stopped {
            return None;
        }
        let (reply, answer) = channel();
        self.runtime.spawn(async move {
            let _ = reply.send(job.await);
        });
        answer.recv().ok()
    }

    pub(super) fn close(&mut self, registry: &Arc<Registry>) -> Note {
        let task = lock(&self.task).take();
        let (slot, reg, name) = (
            Arc::clone(&self.socket),
            Arc::clone(registry),
            self.name.clone(),
        );
        let closed_on_runtime = self.on_runtime(async move {
            if let Some(task) = task {
                task.abort();
                let _ = task.await;
                lifecycle!(EventKind::ReceiveTaskEnded, node = name.as_str());
            }
            let owned = lock(&slot).take();
            let had_socket = owned.is_some();
            owned.into_iter().for_each(|o| close_owned(&reg, o));
            had_socket
        });
        match closed_on_runtime {
            Some(true) => "receive task ended; socket closed on the runtime's thread".to_owned(),
            Some(false) => "already closed; nothing to do".to_owned(),
            None => {
                let owned = lock(&self.socket).take();
                close_all_on_main(
                    registry,
                    owned.into_iter().collect(),
                    "runtime already stopped; closed by the main thread",
                )
            }
        }
    }

    pub(super) fn set_linger(&mut self, registry: &Arc<Registry>, linger_ms: i32) -> Note {
        let (slot, reg) = (Arc::clone(&self.socket), Arc::clone(registry));
        let set = move || {
            lock(&slot)
                .as_ref()
                .map(|owned| set_linger_owned(&reg, owned, linger_ms))
                .is_some()
        };
        let set_on_main = set.clone();
        match self.on_runtime(async move { set() }) {
            Some(true) => "set on the runtime's thread".to_owned(),
            Some(false) => "socket already closed".to_owned(),
            None if set_on_main() => "runtime stopped; set by the main thread".to_owned(),
            None => "socket already closed".to_owned(),
        }
    }

    /// `cancel`: aborts the receive task and waits until it is gone; the socket stays open.
    pub fn cancel(&mut self, registry: &Registry, node: usize) -> Note {
        let Some(task) = lock(&self.task).take() else {
            return "no receive task left to cancel".to_owned();
        };
        task.abort();
        registry.task_cancelled(node);
        match self.on_runtime(async move {
            let _ = task.await;
        }) {
            Some(()) => "receive task aborted; the socket stays open".to_owned(),
            None => "runtime already stopped, which had dropped the task".to_owned(),
        }
    }

    /// `stop_runtime`: stops the runtime and waits for its thread; the socket stays open.
    pub fn stop_runtime(&mut self) -> Note {
        let Some(stop) = self.stop.take() else {
            return "runtime already stopped".to_owned();
        };
        let _ = stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.stopped = true;
        if lock(&self.socket).is_some() {
            "runtime stopped (its tasks dropped); the socket stays open".to_owned()
        } else {
            "runtime stopped (its tasks dropped)".to_owned()
        }
    }
}
