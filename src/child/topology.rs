//! Setup: contexts, sockets (options, bind, connect, subscribe) and node runtimes built from a
//! [`Scenario`], every socket entered in the [`Registry`] with its endpoints, effective linger
//! and owner. Automatic endpoints never collide between parallel runs: tcp binds port 0 and
//! reads the port back, ipc lives in the run's own temporary folder, inproc is per process. The
//! endpoints program nodes bind (`binds`) are chosen here too, in the run's folder, before any
//! socket connects: termwatch's sockets may connect to them before the program binds, and
//! libzmq keeps retrying until it does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fail;
use super::monitor::{self, MonitorReader, MonitorThread};
use super::nodes::{
    Latch, NodeEnv, NodeHandle, Note, OwnedSocket, ProxySockets, start_async,
    start_endpoint_thread, start_proxy_thread,
};
use super::registry::{ContextEntry, EndpointKind, NodeCounters, NodeEntry, Registry, SocketEntry};
use super::zmq_ctx::ZmqContext;
use crate::forwarder::ForwarderStats;
use crate::lifecycle;
use crate::scenario::{
    BindSpec, ConnectTarget, Endpoint, EndpointSpec, Engine, Mode, NodeBody, OpenAt, ProxySide,
    Scenario, Side, SocketOptions, SocketType, Transport,
};
use crate::trace::{EventKind, SocketRole};

/// Everything the scenario built.
pub struct Topology {
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
    /// Where each node (or proxy side) is bound, as resolved: what program commands name, and
    /// what nodes opened later by a step connect to.
    pub bound: Bound,
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

/// Where each endpoint of a node is bound (a program's: where it is to bind).
pub type Bound = HashMap<(usize, Side), String>;

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
    role: SocketRole,
    socket_type: SocketType,
    options: &SocketOptions,
) -> Result<OwnedSocket, String> {
    let (context, node) = (place.context, place.node);
    let socket = place.ctx.socket(socket_type, options).map_err(|e| {
        let which = if role == SocketRole::Socket {
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
    side: &str,
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
/// Nodes opened by a step are left without sockets (an empty [`NodeHandle::Main`]) until it.
pub fn build(
    scenario: &Scenario,
    registry: &Arc<Registry>,
    run_dir: &Path,
) -> Result<Topology, String> {
    let contexts = create_contexts(scenario, registry)?;
    let counters = register_nodes(scenario, registry);
    let Made {
        sockets,
        bound,
        monitor_readers,
    } = create_and_bind(scenario, registry, &contexts, run_dir)?;
    connect_all(scenario, registry, &sockets, &bound)?;
    let go = Arc::new(Latch::default());
    let nodes = hand_over(scenario, registry, &counters, &go, sockets)?;
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

/// Creates every context with its options and enters it in the registry.
fn create_contexts(scenario: &Scenario, registry: &Registry) -> Result<Vec<ZmqContext>, String> {
    let mut contexts = Vec::new();
    for spec in &scenario.contexts {
        contexts.push(ZmqContext::new(spec)?);
        registry.lock().contexts.push(ContextEntry {
            name: spec.name.clone(),
            terminated: false,
            ended_in: None,
        });
    }
    Ok(contexts)
}

/// Enters every node in the registry with its initial owner; returns its counters.
fn register_nodes(scenario: &Scenario, registry: &Registry) -> Vec<Arc<NodeCounters>> {
    let counters: Vec<Arc<NodeCounters>> = scenario.nodes.iter().map(|_| Arc::default()).collect();
    let mut state = registry.lock();
    for (node, counters) in scenario.nodes.iter().zip(&counters) {
        state
            .nodes
            .push(NodeEntry::at_setup(node, Arc::clone(counters)));
    }
    counters
}

/// What the first pass made: each node's sockets, where each binder is bound, and monitor
/// readers of monitored nodes.
struct Made {
    sockets: Vec<Vec<OwnedSocket>>,
    bound: Bound,
    monitor_readers: Vec<Option<Vec<MonitorReader>>>,
}

/// Creates every socket and binds the binders (nodes opened by a step wait for it).
fn create_and_bind(
    scenario: &Scenario,
    registry: &Registry,
    contexts: &[ZmqContext],
    run_dir: &Path,
) -> Result<Made, String> {
    let mut made = Made {
        sockets: Vec::new(),
        bound: HashMap::new(),
        monitor_readers: Vec::new(),
    };
    for (i, node) in scenario.nodes.iter().enumerate() {
        let (sockets, readers) = if node.open == OpenAt::Setup {
            let ctx = &contexts[node.context];
            make_node(scenario, registry, ctx, i, run_dir, &mut made.bound)?
        } else {
            (Vec::new(), None)
        };
        made.sockets.push(sockets);
        made.monitor_readers.push(readers);
    }
    Ok(made)
}

/// Makes one node's sockets (options, subscriptions, monitors) and binds its binders; returns
/// them with the node's monitor readers when it is monitored.
fn make_node(
    scenario: &Scenario,
    registry: &Registry,
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
    let sockets = match &node.body {
        NodeBody::Proxy { engine, capture } => make_proxy(
            scenario,
            registry,
            &mut place,
            (*engine, *capture),
            run_dir,
            bound,
        )?,
        NodeBody::Endpoint(e) => {
            vec![make_endpoint(
                scenario, registry, &mut place, e, run_dir, bound,
            )?]
        }
        NodeBody::Program(p) => {
            for (k, name) in p.binds.iter().enumerate() {
                let endpoint = Endpoint::in_run_dir(run_dir, &node.name, name)
                    .map_err(|e| format!("node `{}` has no endpoint `{name}`: {e}", node.name))?;
                bound.insert((i, Side::Program(k)), endpoint.to_string());
            }
            Vec::new()
        }
    };
    Ok((sockets, place.monitors.take()))
}

/// A proxy's XSUB and XPUB, bound, the control pair of a steerable one, and its capture
/// socket, bound, when it has one.
fn make_proxy(
    scenario: &Scenario,
    registry: &Registry,
    place: &mut NodePlace<'_>,
    (engine, capture): (Engine, Option<SocketType>),
    run_dir: &Path,
    bound: &mut Bound,
) -> Result<Vec<OwnedSocket>, String> {
    let node = &scenario.nodes[place.node];
    let frontend_options = SocketOptions {
        nodrop: None,
        ..node.options.clone()
    };
    let frontend = make_socket(
        registry,
        place,
        SocketRole::Frontend,
        SocketType::Xsub,
        &frontend_options,
    )?;
    let backend = make_socket(
        registry,
        place,
        SocketRole::Backend,
        SocketType::Xpub,
        &node.options,
    )?;
    for (made, side) in [
        (&frontend, ProxySide::Frontend),
        (&backend, ProxySide::Backend),
    ] {
        let endpoint = auto_endpoint(scenario.transport, run_dir, &node.name, side.as_str())?;
        bound.insert(
            (place.node, Side::Proxy(side)),
            bind(registry, made, &endpoint, &node.name)?,
        );
    }
    let mut sockets = vec![frontend, backend];
    if engine == Engine::Steerable {
        let plain = SocketOptions::default();
        let control = make_socket(
            registry,
            place,
            SocketRole::Control,
            SocketType::Pair,
            &plain,
        )?;
        let steer = make_socket(registry, place, SocketRole::Steer, SocketType::Pair, &plain)?;
        let endpoint = bind(
            registry,
            &control,
            &format!("inproc://{}-control", node.name),
            &node.name,
        )?;
        steer
            .socket
            .connect(&endpoint)
            .map_err(|e| format!("cannot connect the control pair of `{}`: {e}", node.name))?;
        registry.socket_endpoint(steer.id, EndpointKind::Connect, &endpoint);
        sockets.extend([control, steer]);
    }
    if let Some(capture_type) = capture {
        let capture = make_socket(
            registry,
            place,
            SocketRole::Capture,
            capture_type,
            &SocketOptions::default(),
        )?;
        let side = ProxySide::Capture;
        let endpoint = auto_endpoint(scenario.transport, run_dir, &node.name, side.as_str())?;
        bound.insert(
            (place.node, Side::Proxy(side)),
            bind(registry, &capture, &endpoint, &node.name)?,
        );
        sockets.push(capture);
    }
    Ok(sockets)
}

/// An endpoint node's socket, subscribed and, if it binds, bound.
fn make_endpoint(
    scenario: &Scenario,
    registry: &Registry,
    place: &mut NodePlace<'_>,
    e: &EndpointSpec,
    run_dir: &Path,
    bound: &mut Bound,
) -> Result<OwnedSocket, String> {
    let node = &scenario.nodes[place.node];
    let socket = make_socket(
        registry,
        place,
        SocketRole::Socket,
        e.socket_type,
        &node.options,
    )?;
    if e.socket_type.subscribes() {
        for topic in &e.subscribe {
            socket
                .socket
                .set_subscribe(topic.as_bytes())
                .map_err(|err| format!("node `{}` cannot subscribe: {err}", node.name))?;
            lifecycle!(
                EventKind::Subscribed,
                node = node.name.as_str(),
                role = SocketRole::Socket.as_str(),
                topic = topic.as_str()
            );
        }
    }
    if let Some(spec) = &e.bind {
        let endpoint = match spec {
            BindSpec::Auto => auto_endpoint(scenario.transport, run_dir, &node.name, "bind")?,
            BindSpec::Explicit(endpoint) => endpoint.to_string(),
        };
        bound.insert(
            (place.node, Side::Bind),
            bind(registry, &socket, &endpoint, &node.name)?,
        );
    }
    if scenario.monitor_is_read(place.node) {
        monitor::start_for_scenario_reader(&socket, &node.name)?;
    }
    Ok(socket)
}

/// Connects every connecting node opened at setup, now that every bound endpoint is known.
fn connect_all(
    scenario: &Scenario,
    registry: &Registry,
    sockets: &[Vec<OwnedSocket>],
    bound: &Bound,
) -> Result<(), String> {
    for (i, made) in sockets.iter().enumerate() {
        if scenario.nodes[i].open == OpenAt::Setup {
            connect_node(scenario, registry, i, made, bound)?;
        }
    }
    Ok(())
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

/// Hands each node's sockets to their owner; a node opened by a step has none yet.
fn hand_over(
    scenario: &Scenario,
    registry: &Arc<Registry>,
    counters: &[Arc<NodeCounters>],
    go: &Arc<Latch>,
    sockets: Vec<Vec<OwnedSocket>>,
) -> Result<Vec<NodeHandle>, String> {
    let mut nodes = Vec::new();
    for (i, sockets) in sockets.into_iter().enumerate() {
        nodes.push(if scenario.nodes[i].open == OpenAt::Setup {
            start_node(scenario, registry, i, sockets, &counters[i], go)?
        } else {
            NodeHandle::Main(Vec::new())
        });
    }
    Ok(nodes)
}

/// Hands one node's sockets to their owner: the main thread, a node thread, or a runtime.
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
            // Made in this order by `make_proxy`: the control pair (steerable), then capture.
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
        // A program's process is started and owned by the child's program set.
        NodeBody::Program(_) => NodeHandle::Main(Vec::new()),
    };
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::registry::{OwnerState, SocketEndpoint};

    #[test]
    fn every_socket_is_registered_with_its_role_and_endpoints_binds_first() {
        let scenario = crate::scenario::parse(
            Path::new("t.toml"),
            r#"
            expect = "clean"
            transport = "inproc"
            [[nodes]]
            name = "pub"
            kind = "publisher"
            connect = "bus"
            [[nodes]]
            name = "bus"
            kind = "proxy"
            engine = "steerable"
            [[nodes]]
            name = "sub"
            kind = "subscriber"
            mode = "idle"
            connect = "bus"
            "#,
            "t",
        )
        .expect("valid scenario");
        let registry = Arc::new(Registry::default());
        let topology = build(&scenario, &registry, Path::new("/nonexistent")).expect("built");
        let state = registry.lock();
        let sockets: Vec<(&str, SocketRole, String, Vec<String>)> = state
            .sockets
            .iter()
            .map(|s| {
                (
                    state.nodes[s.node].name.as_str(),
                    s.role,
                    s.socket_type.to_string(),
                    s.endpoints.iter().map(SocketEndpoint::to_string).collect(),
                )
            })
            .collect();
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            sockets,
            [
                (
                    "pub",
                    SocketRole::Socket,
                    "PUB".to_owned(),
                    strings(&["connect inproc://bus-frontend"])
                ),
                (
                    "bus",
                    SocketRole::Frontend,
                    "XSUB".to_owned(),
                    strings(&["bind inproc://bus-frontend"])
                ),
                (
                    "bus",
                    SocketRole::Backend,
                    "XPUB".to_owned(),
                    strings(&["bind inproc://bus-backend"])
                ),
                (
                    "bus",
                    SocketRole::Control,
                    "PAIR".to_owned(),
                    strings(&["bind inproc://bus-control"])
                ),
                (
                    "bus",
                    SocketRole::Steer,
                    "PAIR".to_owned(),
                    strings(&["connect inproc://bus-control"])
                ),
                (
                    "sub",
                    SocketRole::Socket,
                    "SUB".to_owned(),
                    strings(&["connect inproc://bus-backend"])
                ),
            ]
        );
        let owners: Vec<(OwnerState, &str)> = state
            .nodes
            .iter()
            .map(|n| (n.owner, n.owner_thread.as_str()))
            .collect();
        assert_eq!(
            owners,
            [
                (OwnerState::Main, "main"),
                (OwnerState::ThreadRunning, "bus"),
                (OwnerState::Main, "main"),
            ]
        );
        assert!(topology.main_socket(0).is_some() && topology.main_socket(1).is_none());
        drop(state);
        // The proxy's thread stays in its proxy call; terming here would wait for it, so the
        // topology is left to the end of the test process, as the child leaves it to `_exit`.
        std::mem::forget(topology);
    }
}
