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

use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::fail;
use super::registry::{NodeCounters, OwnerState, Registry, SocketId};
use super::zmq_ctx::{DATA, is_probe, message_frames};
use crate::forwarder::{ForwarderStats, run_forwarder};
use crate::lifecycle;
use crate::scenario::{EndpointSpec, Engine, Mode, OnEterm, SteerCommand};
use crate::trace::EventKind;
use crate::trace::layer::{caused_by, current_phase};

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

fn set_linger_owned(registry: &Registry, owned: &OwnedSocket, linger_ms: i32) {
    if let Err(e) = owned.socket.set_linger(linger_ms) {
        fail(format!("set_linger({linger_ms}) failed: {e}"));
    }
    registry.socket_linger(owned.id, owned.socket.get_linger().ok());
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A one-shot gate: node threads that send wait on it until the traffic phase opens it.
#[derive(Debug, Default)]
pub struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    /// Blocks until [`Latch::open`].
    pub fn wait(&self) {
        let mut open = lock(&self.open);
        while !*open {
            open = self
                .opened
                .wait(open)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Lets every waiter through.
    pub fn open(&self) {
        *lock(&self.open) = true;
        self.opened.notify_all();
    }
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

/// A request to a node's thread; the reply is a message on the `Sender`.
#[derive(Debug)]
pub enum Command {
    /// Close the node's sockets.
    Close(Sender<()>),
    /// Set ZMQ_LINGER on them.
    SetLinger(i32, Sender<()>),
}

/// How a node's loop ended.
enum LoopEnd {
    /// A call (named) returned ETERM.
    Eterm(&'static str),
    /// A steerable proxy got TERMINATE.
    Terminated,
    /// A `close` request.
    Close(Sender<()>),
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

/// A node whose thread owns its sockets.
pub struct ThreadedNode {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    kept: Arc<Mutex<Vec<OwnedSocket>>>,
    steer: Option<Arc<Mutex<Option<OwnedSocket>>>>,
}

/// An async node: a runtime thread, its receive task, and the socket the node owns.
pub struct AsyncNode {
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    socket: Arc<Mutex<Option<OwnedSocket>>>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    stopped: bool,
    name: String,
}

/// Linux limits thread names to 15 bytes.
pub fn thread_name(node: &str) -> String {
    let mut name = node.to_owned();
    while name.len() > 15 {
        name.pop();
    }
    name
}

/// Starts a node's thread, which enters itself in the registry (`purpose`) before `body`;
/// returns once it has, so that every thread of a node has started by the end of setup.
fn spawn_node_thread(
    env: &NodeEnv,
    purpose: String,
    body: impl FnOnce() + Send + 'static,
) -> JoinHandle<()> {
    let (started, has_started) = channel();
    let (registry, node) = (Arc::clone(&env.registry), env.node);
    let thread = std::thread::Builder::new()
        .name(thread_name(&env.name))
        .spawn(move || {
            registry.thread_started(purpose, Some(node));
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

/// Counts one received message; the first data message is a lifecycle event.
fn count_received(env: &NodeEnv, frames: &[Vec<u8>]) {
    if is_probe(frames) {
        NodeCounters::bump(&env.counters.probes_received);
    } else if NodeCounters::bump(&env.counters.received) == 1 {
        lifecycle!(EventKind::FirstMessageReceived, node = env.name.as_str());
    }
}

/// Sends a node's traffic-phase messages as blocking sends, paced by `rate`.
pub fn send_messages(
    socket: &zmq::Socket,
    spec: &EndpointSpec,
    counters: &NodeCounters,
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
    }
    Ok(())
}

/// Receives without blocking until nothing is left.
fn drain(socket: &zmq::Socket, env: &NodeEnv) -> Result<(), zmq::Error> {
    loop {
        match socket.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => count_received(env, &frames),
            Err(zmq::Error::EAGAIN) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn unexpected(env: &NodeEnv, what: &str, e: zmq::Error) -> ! {
    fail(format!("node `{}`: {what} failed: {e}", env.name))
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
    let purpose = format!("node `{}` ({} receive loop)", env.name, spec.mode);
    let thread = spawn_node_thread(&env.clone(), purpose, move || {
        let end = endpoint_loop(&env, &spec, &socket, &inbox);
        finish_loop(&env, end, vec![socket], &kept_by_thread, None);
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
    if spec.send > 0 {
        env.go.wait();
        match send_messages(socket, spec, &env.counters) {
            Ok(()) => {}
            Err(zmq::Error::ETERM) => return LoopEnd::Eterm("send"),
            Err(e) => unexpected(env, "send", e),
        }
    }
    loop {
        if spec.mode == Mode::Blocking {
            match socket.recv_multipart(0) {
                Ok(frames) => count_received(env, &frames),
                Err(zmq::Error::ETERM) => return LoopEnd::Eterm("recv"),
                Err(zmq::Error::EINTR) => {}
                Err(e) => unexpected(env, "recv", e),
            }
            continue;
        }
        let timeout_ms = spec
            .poll_interval
            .as_millis()
            .try_into()
            .unwrap_or(i64::MAX);
        match socket
            .poll(zmq::POLLIN, timeout_ms)
            .and_then(|_| drain(socket, env))
        {
            Ok(()) | Err(zmq::Error::EINTR) => {}
            Err(zmq::Error::ETERM) => return LoopEnd::Eterm("poll"),
            Err(e) => unexpected(env, "poll", e),
        }
        while let Ok(command) = inbox.try_recv() {
            match command {
                Command::Close(reply) => return LoopEnd::Close(reply),
                Command::SetLinger(linger_ms, reply) => {
                    set_linger_owned(&env.registry, owned, linger_ms);
                    let _ = reply.send(());
                }
            }
        }
    }
}

/// What a node's thread does when its loop ends: close or keep its sockets, then return.
/// Requests still queued are dropped unanswered, which tells the main thread to act itself.
/// What follows ETERM or TERMINATE is traced to the step that caused it.
fn finish_loop(
    env: &NodeEnv,
    end: LoopEnd,
    sockets: Vec<OwnedSocket>,
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
        LoopEnd::Eterm(_) | LoopEnd::Terminated => match env.on_eterm {
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
        },
    }
    env.registry.thread_ended();
}

/// The sockets of a proxy node.
pub struct ProxySockets {
    /// XSUB, bound.
    pub frontend: OwnedSocket,
    /// XPUB, bound.
    pub backend: OwnedSocket,
    /// The proxy's end of the control pair (steerable engine).
    pub control: Option<OwnedSocket>,
    /// The end `steer` steps send on (steerable engine).
    pub steer: Option<OwnedSocket>,
}

/// Starts a proxy node's thread.
pub fn start_proxy_thread(
    env: NodeEnv,
    engine: Engine,
    sockets: ProxySockets,
    stats: Arc<ForwarderStats>,
) -> ThreadedNode {
    let (commands, inbox) = channel::<Command>();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let steer = sockets.steer.map(|s| Arc::new(Mutex::new(Some(s))));
    let (kept_by_thread, steer_by_thread) = (Arc::clone(&kept), steer.clone());
    let ProxySockets {
        mut frontend,
        mut backend,
        mut control,
        ..
    } = sockets;
    let purpose = format!("node `{}` (proxy, {engine})", env.name);
    let thread = spawn_node_thread(&env.clone(), purpose, move || {
        let result = match (engine, &mut control) {
            (Engine::Steerable, Some(control)) => zmq::proxy_steerable(
                &mut frontend.socket,
                &mut backend.socket,
                &mut control.socket,
            ),
            (Engine::Forwarder, _) => {
                run_forwarder(&mut frontend.socket, &mut backend.socket, &stats)
            }
            _ => zmq::proxy(&frontend.socket, &backend.socket),
        };
        let end = match result {
            Ok(()) => LoopEnd::Terminated,
            Err(zmq::Error::ETERM) => LoopEnd::Eterm("proxy"),
            Err(e) => unexpected(&env, "proxy", e),
        };
        drop(inbox);
        let mut owned = vec![frontend, backend];
        owned.extend(control);
        finish_loop(
            &env,
            end,
            owned,
            &kept_by_thread,
            steer_by_thread.as_deref(),
        );
    });
    ThreadedNode {
        commands,
        thread: Some(thread),
        kept,
        steer,
    }
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
            NodeHandle::Threaded(t) => {
                let (reply, answer) = channel();
                if t.commands.send(Command::Close(reply)).is_ok() && answer.recv().is_ok() {
                    return "closed by its own thread".to_owned();
                }
                let kept = std::mem::take(&mut *lock(&t.kept));
                let steer = t.steer.as_ref().and_then(|s| lock(s).take());
                close_all_on_main(
                    registry,
                    kept.into_iter().chain(steer).collect(),
                    "its thread had ended keeping them; closed by the main thread",
                )
            }
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
            NodeHandle::Threaded(t) => {
                let (reply, answer) = channel();
                if t.commands
                    .send(Command::SetLinger(linger_ms, reply))
                    .is_ok()
                    && answer.recv().is_ok()
                {
                    return "set by its own thread".to_owned();
                }
                lock(&t.kept)
                    .iter()
                    .for_each(|s| set_linger_owned(registry, s, linger_ms));
                "its thread had ended; set by the main thread on the sockets it kept".to_owned()
            }
            NodeHandle::Async(a) => a.set_linger(registry, linger_ms),
        }
    }

    /// `join`: waits for the node's thread to end.
    pub fn join(&mut self) -> Note {
        let thread = match self {
            NodeHandle::Threaded(t) => t.thread.take(),
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
            && let Some(thread) = t.thread.take()
        {
            let _ = thread.join();
        }
    }

    /// `steer`: sends a command on the steerable proxy's control pair; does not wait for a reply.
    pub fn steer(&mut self, registry: &Registry, node: usize, command: SteerCommand) -> Note {
        let NodeHandle::Threaded(ThreadedNode {
            steer: Some(steer), ..
        }) = self
        else {
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

    /// The async part, for `cancel` and `stop_runtime`.
    pub fn as_async(&mut self) -> Option<&mut AsyncNode> {
        match self {
            NodeHandle::Async(a) => Some(a),
            _ => None,
        }
    }
}

fn close_all_on_main(registry: &Registry, sockets: Vec<OwnedSocket>, done: &str) -> Note {
    if sockets.is_empty() {
        return "already closed; nothing to do".to_owned();
    }
    sockets.into_iter().for_each(|s| close_owned(registry, s));
    done.to_owned()
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
        Ok(()) => {}
    }
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

    fn close(&mut self, registry: &Arc<Registry>) -> Note {
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

    fn set_linger(&mut self, registry: &Arc<Registry>, linger_ms: i32) -> Note {
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
