//! Setup: contexts, sockets (options, bind, connect, subscribe) and node runtimes built from a
//! [`Scenario`], every socket entered in the [`Registry`] with its endpoints, effective linger
//! and owner. Automatic endpoints never collide between parallel runs: tcp binds port 0 and
//! reads the port back, ipc lives in the run's own temporary folder, inproc is per process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fail;
use super::monitor::{self, MonitorReader, MonitorThread};
use super::nodes::Note;
use super::nodes::{
    Latch, NodeEnv, NodeHandle, OwnedSocket, ProxySockets, start_async, start_endpoint_thread,
    start_proxy_thread,
};
use super::registry::{
    ContextEntry, EndpointKind, NodeCounters, NodeEntry, OwnerState, Registry, SocketEntry,
};
use super::zmq_ctx::ZmqContext;
use crate::forwarder::ForwarderStats;
use crate::lifecycle;
use crate::scenario::{
    BindSpec, ConnectTarget, Endpoint, Engine, Mode, NodeBody, OpenAt, ProxySide, Scenario,
    SocketOptions, SocketType, Transport,
};
use crate::trace::EventKind;

/// Everything the scenario built.
pub struct Topology {
    /// Where each node (or proxy side) is bound, for nodes opened later by a step.
    bound: Bound,
    /// The run's temporary folder (automatic ipc endpoints).
    run_dir: PathBuf,
    /// Contexts by index; `None` once termed.
    pub contexts: Vec<Option<ZmqContext>>,
    /// Node handles by index.
    pub nodes: Vec<NodeHandle>,
    /// Counters by node index.
    pub counters: Vec<Arc<NodeCounters>>,
    /// The gate node threads wait on before sending.
    pub go: Arc<Latch>,
    /// Monitor reader threads.
    pub monitors: Vec<MonitorThread>,
}

impl Topology {
    /// The socket of a node the main thread owns (publishers, idle sockets), while it is open.
    pub fn main_socket(&self, node: usize) -> Option<&zmq::Socket> {
        match &self.nodes[node] {
            NodeHandle::Main(sockets) => sockets.first().map(|o| &o.socket),
            _ => None,
        }
    }
}

impl Topology {
    /// The `open` step: makes, binds and connects the node's sockets and hands them to their
    /// owner, as setup does for the other nodes. A context already shut down refuses new
    /// sockets (zmq_socket fails with ETERM): the node then stays without any, and the note
    /// says why.
    pub fn open(&mut self, scenario: &Scenario, registry: &Arc<Registry>, i: usize) -> Note {
        let node = &scenario.nodes[i];
        let Some(ctx) = &self.contexts[node.context] else {
            return "its context was already termed; nothing opened".to_owned();
        };
        let made = make_node(scenario, registry, ctx, i, &self.run_dir, &mut self.bound);
        let (sockets, readers) = match made {
            Ok(made) => made,
            Err(e) if registry.lock().contexts[node.context].ended_in.is_some() => {
                lifecycle!(
                    EventKind::SocketRefused,
                    node = node.name.as_str(),
                    error = e.as_str()
                );
                return format!("refused (the context is shut down): {e}");
            }
            Err(e) => fail(e),
        };
        let started = connect_node(scenario, registry, i, &sockets, &self.bound)
            .and_then(|()| start_node(scenario, registry, i, sockets, &self.counters[i], &self.go));
        self.nodes[i] = started.unwrap_or_else(|e| fail(e));
        if let Some(readers) = readers {
            let name = node.name.clone();
            self.monitors.push(monitor::start_readers(
                Arc::clone(registry),
                i,
                name,
                readers,
            ));
        }
        "sockets made and handed to their owner".to_owned()
    }

    /// Waits for the threads of nodes whose loop has ended (see [`NodeHandle::join_if_ended`])
    /// and for monitor readers that have closed, so that what they record on their way out is
    /// in every run's trace.
    pub fn join_ended_threads(&mut self, registry: &Registry) {
        for (node, handle) in self.nodes.iter_mut().enumerate() {
            handle.join_if_ended(registry, node);
        }
        let (closed, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.monitors)
            .into_iter()
            .partition(|m| registry.monitor_readers_closed(m.node));
        for monitor in closed {
            let _ = monitor.thread.join();
        }
        self.monitors = running;
    }
}

/// Where a node (or a proxy side) is bound.
type Bound = HashMap<(usize, Option<ProxySide>), String>;

/// The node whose sockets are being made, and its monitor readers when it is monitored.
struct NodePlace<'a> {
    ctx: &'a ZmqContext,
    context: usize,
    node: usize,
    name: &'a str,
    monitors: Option<Vec<MonitorReader>>,
}

fn make_socket(
    registry: &Registry,
    place: &mut NodePlace<'_>,
    role: &'static str,
    socket_type: SocketType,
    options: &SocketOptions,
) -> Result<OwnedSocket, String> {
    let (context, node) = (place.context, place.node);
    let socket = place.ctx.socket(socket_type, options).map_err(|e| {
        let which = if role == "socket" {
            socket_type.to_string()
        } else {
            format!("{role} {socket_type}")
        };
        format!(
            "node `{}` cannot create its {which} socket: {e}",
            place.name
        )
    })?;
    let linger_ms = socket.get_linger().ok();
    let id = registry.socket_created(SocketEntry {
        node,
        role,
        socket_type,
        endpoints: Vec::new(),
        linger_ms,
        context,
        open: true,
        closed_by: None,
    });
    let owned = OwnedSocket { id, socket };
    if let Some(monitors) = &mut place.monitors {
        let site = (context, node, place.name);
        monitors.push(monitor::attach(registry, place.ctx, site, &owned, role)?);
    }
    Ok(owned)
}

fn auto_endpoint(
    transport: Transport,
    run_dir: &Path,
    node: &str,
    side: Option<ProxySide>,
) -> Result<String, String> {
    Endpoint::auto(transport, run_dir, node, side)
        .map(|e| e.to_string())
        .map_err(|e| format!("node `{node}` has no automatic endpoint: {e}"))
}

fn bind(
    registry: &Registry,
    made: &OwnedSocket,
    endpoint: &str,
    node: &str,
) -> Result<String, String> {
    made.socket
        .bind(endpoint)
        .map_err(|e| format!("node `{node}` cannot bind {endpoint}: {e}"))?;
    let actual = match made.socket.get_last_endpoint() {
        Ok(Ok(actual)) if !actual.is_empty() => actual,
        _ => endpoint.to_owned(),
    };
    registry.socket_endpoint(made.id, EndpointKind::Bind, &actual);
    Ok(actual)
}

/// Builds the scenario's topology: every socket bound before any connects, threads last.
pub fn build(
    scenario: &Scenario,
    registry: &Arc<Registry>,
    run_dir: &Path,
) -> Result<Topology, String> {
    let mut contexts = Vec::new();
    for spec in &scenario.contexts {
        contexts.push(ZmqContext::new(spec)?);
        registry.lock().contexts.push(ContextEntry {
            name: spec.name.clone(),
            terminated: false,
            ended_in: None,
        });
    }
    let counters: Vec<Arc<NodeCounters>> = scenario.nodes.iter().map(|_| Arc::default()).collect();
    for (i, node) in scenario.nodes.iter().enumerate() {
        let (owner, mode) = match &node.body {
            NodeBody::Proxy { .. } => (OwnerState::ThreadRunning, None),
            NodeBody::Endpoint(e) => (
                match e.mode {
                    Mode::Idle => OwnerState::Main,
                    Mode::Async => OwnerState::RuntimeRunning {
                        task_cancelled: false,
                    },
                    Mode::Blocking | Mode::Poll | Mode::Stream => OwnerState::ThreadRunning,
                },
                Some(e.mode),
            ),
        };
        let owner_thread = if owner == OwnerState::Main {
            "main".to_owned()
        } else {
            node.name.chars().take(15).collect()
        };
        let endpoint = node.endpoint();
        registry.lock().nodes.push(NodeEntry {
            name: node.name.clone(),
            mode,
            is_proxy: endpoint.is_none(),
            owner,
            owner_thread,
            counters: Arc::clone(&counters[i]),
            to_send: endpoint.map_or(0, |e| e.send),
            expected: endpoint.and_then(|e| e.expect_messages),
            context: node.context,
            terminate_sent_in: None,
        });
    }

    // Pass 1: create every socket and bind the binders (nodes opened by a step wait for it).
    let mut bound: Bound = HashMap::new();
    let mut made: Vec<Vec<OwnedSocket>> = Vec::new();
    let mut monitor_readers: Vec<Option<Vec<MonitorReader>>> = Vec::new();
    for (i, node) in scenario.nodes.iter().enumerate() {
        let (sockets, readers) = if node.open == OpenAt::Setup {
            make_node(
                scenario,
                registry,
                &contexts[node.context],
                i,
                run_dir,
                &mut bound,
            )?
        } else {
            (Vec::new(), None)
        };
        made.push(sockets);
        monitor_readers.push(readers);
    }

    // Pass 2: connect, now that every bound endpoint is known.
    for (i, sockets) in made.iter().enumerate() {
        if scenario.nodes[i].open == OpenAt::Setup {
            connect_node(scenario, registry, i, sockets, &bound)?;
        }
    }

    // Pass 3: hand each node's sockets to their owner.
    let go = Arc::new(Latch::default());
    let mut nodes = Vec::new();
    for (i, sockets) in made.into_iter().enumerate() {
        nodes.push(if scenario.nodes[i].open == OpenAt::Setup {
            start_node(scenario, registry, i, sockets, &counters[i], &go)?
        } else {
            NodeHandle::Main(Vec::new())
        });
    }
    let monitors = monitor_readers
        .into_iter()
        .enumerate()
        .filter_map(|(i, readers)| {
            let name = scenario.nodes[i].name.clone();
            readers.map(|r| monitor::start_readers(Arc::clone(registry), i, name, r))
        })
        .collect();
    Ok(Topology {
        contexts: contexts.into_iter().map(Some).collect(),
        monitors,
        nodes,
        counters,
        go,
        bound,
        run_dir: run_dir.to_owned(),
    })
}

/// Makes one node's sockets (options, subscriptions, monitors) and binds its binders.
fn make_node(
    scenario: &Scenario,
    registry: &Arc<Registry>,
    ctx: &ZmqContext,
    i: usize,
    run_dir: &Path,
    bound: &mut Bound,
) -> Result<(Vec<OwnedSocket>, Option<Vec<MonitorReader>>), String> {
    let node = &scenario.nodes[i];
    let mut place = NodePlace {
        ctx,
        context: node.context,
        node: i,
        name: &node.name,
        monitors: node.monitor.then(Vec::new),
    };
    let mut sockets = Vec::new();
    match &node.body {
        NodeBody::Proxy { engine, capture } => {
            let frontend_options = SocketOptions {
                nodrop: None,
                ..node.options.clone()
            };
            let frontend = make_socket(
                registry,
                &mut place,
                "frontend",
                SocketType::Xsub,
                &frontend_options,
            )?;
            let backend = make_socket(
                registry,
                &mut place,
                "backend",
                SocketType::Xpub,
                &node.options,
            )?;
            for (made, side) in [
                (&frontend, ProxySide::Frontend),
                (&backend, ProxySide::Backend),
            ] {
                let endpoint = auto_endpoint(scenario.transport, run_dir, &node.name, Some(side))?;
                bound.insert(
                    (i, Some(side)),
                    bind(registry, made, &endpoint, &node.name)?,
                );
            }
            sockets.extend([frontend, backend]);
            if *engine == Engine::Steerable {
                let plain = SocketOptions::default();
                let control =
                    make_socket(registry, &mut place, "control", SocketType::Pair, &plain)?;
                let steer = make_socket(registry, &mut place, "steer", SocketType::Pair, &plain)?;
                let endpoint = bind(
                    registry,
                    &control,
                    &format!("inproc://{}-control", node.name),
                    &node.name,
                )?;
                steer.socket.connect(&endpoint).map_err(|e| {
                    format!("cannot connect the control pair of `{}`: {e}", node.name)
                })?;
                registry.socket_endpoint(steer.id, EndpointKind::Connect, &endpoint);
                sockets.extend([control, steer]);
            }
            if let Some(capture_type) = capture {
                let capture = make_socket(
                    registry,
                    &mut place,
                    "capture",
                    *capture_type,
                    &SocketOptions::default(),
                )?;
                let endpoint = auto_endpoint(
                    scenario.transport,
                    run_dir,
                    &node.name,
                    Some(ProxySide::Capture),
                )?;
                bound.insert(
                    (i, Some(ProxySide::Capture)),
                    bind(registry, &capture, &endpoint, &node.name)?,
                );
                sockets.push(capture);
            }
        }
        NodeBody::Endpoint(e) => {
            let socket = make_socket(registry, &mut place, "socket", e.socket_type, &node.options)?;
            if e.socket_type.subscribes() {
                for topic in &e.subscribe {
                    socket
                        .socket
                        .set_subscribe(topic.as_bytes())
                        .map_err(|err| format!("node `{}` cannot subscribe: {err}", node.name))?;
                    lifecycle!(
                        EventKind::Subscribed,
                        node = node.name.as_str(),
                        role = "socket",
                        topic = topic.as_str()
                    );
                }
            }
            if let Some(spec) = &e.bind {
                let endpoint = match spec {
                    BindSpec::Auto => auto_endpoint(scenario.transport, run_dir, &node.name, None)?,
                    BindSpec::Explicit(endpoint) => endpoint.to_string(),
                };
                bound.insert((i, None), bind(registry, &socket, &endpoint, &node.name)?);
            }
            if scenario.monitor_is_read(i) {
                monitor::start_for_scenario_reader(&socket, &node.name)?;
            }
            sockets.push(socket);
        }
    }
    Ok((sockets, place.monitors.take()))
}

/// Connects one node's connecting socket to its target.
fn connect_node(
    scenario: &Scenario,
    registry: &Registry,
    i: usize,
    made: &[OwnedSocket],
    bound: &Bound,
) -> Result<(), String> {
    let node = &scenario.nodes[i];
    let Some(target) = node.endpoint().and_then(|e| e.connect.as_ref()) else {
        return Ok(());
    };
    let endpoint = match target {
        ConnectTarget::Explicit(endpoint) => endpoint.to_string(),
        ConnectTarget::Monitor { node: target } => {
            monitor::scenario_read_endpoint(&scenario.nodes[*target].name)
        }
        ConnectTarget::Node { node: target, side } => {
            bound.get(&(*target, *side)).cloned().ok_or_else(|| {
                format!(
                    "node `{}` connects to `{}`, which bound nothing",
                    node.name, scenario.nodes[*target].name
                )
            })?
        }
    };
    let Some(socket) = made.first() else {
        return Err(format!("node `{}` has no socket to connect", node.name));
    };
    socket
        .socket
        .connect(&endpoint)
        .map_err(|e| format!("node `{}` cannot connect to {endpoint}: {e}", node.name))?;
    registry.socket_endpoint(socket.id, EndpointKind::Connect, &endpoint);
    Ok(())
}

/// Hands one node's sockets to their owner: the main thread, a thread of the node's own, or an
/// async runtime.
fn start_node(
    scenario: &Scenario,
    registry: &Arc<Registry>,
    i: usize,
    sockets: Vec<OwnedSocket>,
    counters: &Arc<NodeCounters>,
    go: &Arc<Latch>,
) -> Result<NodeHandle, String> {
    let node = &scenario.nodes[i];
    let env = NodeEnv {
        registry: Arc::clone(registry),
        node: i,
        name: node.name.clone(),
        counters: Arc::clone(counters),
        on_eterm: node.on_eterm,
        go: Arc::clone(go),
    };
    let mut owned = sockets.into_iter();
    let handle = match &node.body {
        NodeBody::Proxy { engine, capture } => {
            let (Some(frontend), Some(backend)) = (owned.next(), owned.next()) else {
                return Err(format!(
                    "proxy `{}` lost its sockets during setup",
                    node.name
                ));
            };
            // Made in this order in pass 1: control pair (steerable), then capture.
            let (control, steer) = if *engine == Engine::Steerable {
                (owned.next(), owned.next())
            } else {
                (None, None)
            };
            let capture = capture.and_then(|_| owned.next());
            let sockets = ProxySockets {
                frontend,
                backend,
                control,
                steer,
                capture,
            };
            NodeHandle::Threaded(start_proxy_thread(
                env,
                *engine,
                sockets,
                Arc::new(ForwarderStats::default()),
            ))
        }
        NodeBody::Endpoint(e) => {
            let Some(socket) = owned.next() else {
                return Err(format!("node `{}` lost its socket during setup", node.name));
            };
            match e.mode {
                Mode::Idle => NodeHandle::Main(vec![socket]),
                Mode::Blocking | Mode::Poll | Mode::Stream => {
                    NodeHandle::Threaded(start_endpoint_thread(env, e.clone(), socket))
                }
                Mode::Async => NodeHandle::Async(start_async(env, socket)),
            }
        }
    };
    Ok(handle)
}
