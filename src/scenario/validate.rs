//! The second parsing pass: [`RawScenario`] → [`Scenario`]. Applies the defaults of the format's
//! contracts, resolves node and context names, and rejects what cannot run: fields that do not
//! apply to a node's kind or a step's action, dangling or duplicate names, a `connect` to a node
//! that binds nothing, steps on nodes that cannot take them, bad durations and deadlines that a
//! step can never meet. Every error points at the offending value.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde_spanned::Spanned;

use super::raw::{RawContext, RawNode, RawScenario, RawStep};
use super::*;

/// Default deadline of steps and phases.
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// Default payload size of a message.
const DEFAULT_SIZE: usize = 64;
/// Default poll timeout of `poll` mode.
const DEFAULT_POLL_MS: u64 = 100;

pub(super) fn validate(
    file: &Path,
    text: &str,
    default_name: &str,
    raw: RawScenario,
) -> Result<Scenario, Vec<InputError>> {
    let mut v = Validator {
        file,
        text,
        errors: Vec::new(),
    };
    let scenario = v.scenario(default_name, raw);
    if v.errors.is_empty() {
        Ok(scenario)
    } else {
        Err(v.errors)
    }
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<InputError>,
}

/// A field of a node or step and where it was written, for "does not apply" messages.
struct FieldUse {
    name: &'static str,
    span: Option<Range<usize>>,
}

fn field<T>(name: &'static str, value: &Option<Spanned<T>>) -> FieldUse {
    FieldUse {
        name,
        span: value.as_ref().map(Spanned::span),
    }
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(InputError::at(self.file, self.text, span, message));
    }

    fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.error(value.span(), format!("{what} must be longer than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    value.span(),
                    format!(
                        "invalid duration {:?} for {what}: {e} (write e.g. \"500ms\", \"2s\")",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn scenario(&mut self, default_name: &str, raw: RawScenario) -> Scenario {
        let step_timeout = raw
            .step_timeout
            .as_ref()
            .and_then(|d| self.duration(d, "step_timeout"))
            .unwrap_or(DEFAULT_STEP_TIMEOUT);
        let transport = raw
            .transport
            .as_ref()
            .map_or(Transport::Tcp, |t| *t.get_ref());
        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.error(n.span(), "name must not be empty");
                String::new()
            }
            Some(n) => n.get_ref().clone(),
            None => default_name.to_owned(),
        };
        let contexts = self.contexts(&raw.contexts);
        let scenario_monitor = raw.monitor.as_ref().is_some_and(|m| *m.get_ref());
        let node_index = self.node_names(&raw.nodes);
        let mut nodes: Vec<NodeSpec> = raw
            .nodes
            .iter()
            .map(|n| self.node(n, &contexts, scenario_monitor))
            .collect();
        self.connects(&raw.nodes, &mut nodes, &node_index);
        let steps: Vec<StepSpec> = raw
            .steps
            .iter()
            .map(|s| self.step(s, step_timeout, &nodes, &node_index, &contexts))
            .collect::<Vec<_>>()
            .into_iter()
            .flatten()
            .collect();
        if raw.steps.len() == steps.len() {
            self.expect_hang_at(&raw, &steps);
            self.open_steps(&raw, &nodes, &steps);
        }
        Scenario {
            name,
            file: self.file.to_owned(),
            description: raw.description.map(|d| d.into_inner()).unwrap_or_default(),
            reference: raw.reference.map(|r| r.into_inner()),
            expect: *raw.expect.get_ref(),
            expect_hang_at: raw.expect_hang_at.map(|e| e.into_inner()),
            transport,
            step_timeout,
            contexts,
            nodes,
            steps,
        }
    }

    fn contexts(&mut self, raw: &[RawContext]) -> Vec<ContextSpec> {
        let mut contexts = vec![ContextSpec {
            name: MAIN_CONTEXT.to_owned(),
            io_threads: None,
            blocky: None,
        }];
        let mut seen_main = false;
        for c in raw {
            let spec = ContextSpec {
                name: c.name.get_ref().clone(),
                io_threads: c.io_threads.as_ref().map(|v| *v.get_ref()),
                blocky: c.blocky.as_ref().map(|v| *v.get_ref()),
            };
            if let Some(io) = &c.io_threads
                && *io.get_ref() < 0
            {
                self.error(io.span(), "io_threads must be 0 or more");
            }
            if spec.name == MAIN_CONTEXT && !seen_main {
                seen_main = true;
                contexts[0] = spec;
            } else if contexts.iter().any(|known| known.name == spec.name) {
                self.error(
                    c.name.span(),
                    format!("duplicate context name `{}`", spec.name),
                );
            } else {
                contexts.push(spec);
            }
        }
        contexts
    }

    fn node_names(&mut self, raw: &[RawNode]) -> HashMap<String, usize> {
        let mut index = HashMap::new();
        for (i, n) in raw.iter().enumerate() {
            let name = n.name.get_ref();
            if name.is_empty() || name.contains(['.', '/', ' ']) || name.contains("://") {
                self.error(
                    n.name.span(),
                    "node names must be non-empty and contain no `.`, `/` or spaces",
                );
            }
            if index.insert(name.clone(), i).is_some() {
                self.error(n.name.span(), format!("duplicate node name `{name}`"));
            }
        }
        index
    }

    fn reject_fields(&mut self, what: &str, fields: &[FieldUse]) {
        for f in fields {
            if let Some(span) = &f.span {
                self.error(
                    span.clone(),
                    format!("field `{}` does not apply to {what}", f.name),
                );
            }
        }
    }

    fn context_ref(&mut self, value: &Option<Spanned<String>>, contexts: &[ContextSpec]) -> usize {
        let Some(value) = value else { return 0 };
        match contexts.iter().position(|c| &c.name == value.get_ref()) {
            Some(i) => i,
            None => {
                let known: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
                self.error(
                    value.span(),
                    format!(
                        "no context named `{}` (known: {})",
                        value.get_ref(),
                        known.join(", ")
                    ),
                );
                0
            }
        }
    }

    fn node(&mut self, n: &RawNode, contexts: &[ContextSpec], scenario_monitor: bool) -> NodeSpec {
        let kind = *n.kind.get_ref();
        let context = self.context_ref(&n.context, contexts);
        let options = SocketOptions {
            linger_ms: n.linger_ms.as_ref().map(|v| *v.get_ref()),
            sndhwm: n.sndhwm.as_ref().map(|v| *v.get_ref()),
            rcvhwm: n.rcvhwm.as_ref().map(|v| *v.get_ref()),
            immediate: n.immediate.as_ref().map(|v| *v.get_ref()),
            nodrop: n.nodrop.as_ref().map(|v| *v.get_ref()),
        };
        if let Some(l) = &n.linger_ms
            && *l.get_ref() < -1
        {
            self.error(
                l.span(),
                "linger_ms must be -1 (forever), 0 or a positive number of milliseconds",
            );
        }
        for hwm in [&n.sndhwm, &n.rcvhwm].into_iter().flatten() {
            if *hwm.get_ref() < 0 {
                self.error(
                    hwm.span(),
                    "a high-water mark must be 0 (unlimited) or more",
                );
            }
        }
        let on_eterm = n.on_eterm.as_ref().map_or(OnEterm::Close, |v| *v.get_ref());
        let open = n.open.as_ref().map_or(OpenAt::Setup, |v| *v.get_ref());
        let monitor = scenario_monitor || n.monitor.as_ref().is_some_and(|m| *m.get_ref());
        let what = format!("a {kind} node");
        let body = match kind {
            NodeKindName::Proxy => {
                self.reject_fields(
                    &what,
                    &[
                        field("type", &n.socket_type),
                        field("mode", &n.mode),
                        field("bind", &n.bind),
                        field("connect", &n.connect),
                        field("topic", &n.topic),
                        field("subscribe", &n.subscribe),
                        field("messages", &n.messages),
                        field("send", &n.send),
                        field("size", &n.size),
                        field("rate", &n.rate),
                        field("expect_messages", &n.expect_messages),
                        field("poll_ms", &n.poll_ms),
                    ],
                );
                let engine = n.engine.as_ref().map_or(Engine::ZmqProxy, |e| *e.get_ref());
                NodeBody::Proxy {
                    engine,
                    capture: self.capture(n, engine),
                }
            }
            NodeKindName::Publisher => {
                self.reject_fields(
                    &what,
                    &[
                        field("engine", &n.engine),
                        field("capture", &n.capture),
                        field("type", &n.socket_type),
                        field("mode", &n.mode),
                        field("subscribe", &n.subscribe),
                        field("send", &n.send),
                        field("expect_messages", &n.expect_messages),
                        field("poll_ms", &n.poll_ms),
                        field("on_eterm", &n.on_eterm),
                    ],
                );
                self.single_endpoint(n, &what);
                NodeBody::Endpoint(self.endpoint(
                    n,
                    SocketType::Pub,
                    Mode::Idle,
                    n.messages.as_ref(),
                ))
            }
            NodeKindName::Subscriber => {
                self.reject_fields(
                    &what,
                    &[
                        field("engine", &n.engine),
                        field("capture", &n.capture),
                        field("type", &n.socket_type),
                        field("topic", &n.topic),
                        field("messages", &n.messages),
                        field("send", &n.send),
                        field("size", &n.size),
                        field("rate", &n.rate),
                        field("nodrop", &n.nodrop),
                    ],
                );
                self.single_endpoint(n, &what);
                let mode = n.mode.as_ref().map_or(Mode::Blocking, |m| *m.get_ref());
                NodeBody::Endpoint(self.endpoint(n, SocketType::Sub, mode, None))
            }
            NodeKindName::Socket => {
                self.reject_fields(
                    &what,
                    &[
                        field("engine", &n.engine),
                        field("capture", &n.capture),
                        field("messages", &n.messages),
                    ],
                );
                let socket_type = match &n.socket_type {
                    Some(t) => *t.get_ref(),
                    None => {
                        self.error(n.kind.span(), "a socket node needs `type` (PUB, SUB, XPUB, XSUB, PUSH, PULL, DEALER, ROUTER, REQ, REP or PAIR)");
                        SocketType::Pair
                    }
                };
                if n.bind.is_none() && n.connect.is_none() {
                    self.error(
                        n.name.span(),
                        "a socket node needs `bind`, `connect` or both",
                    );
                }
                let mode = n.mode.as_ref().map_or(Mode::Idle, |m| *m.get_ref());
                NodeBody::Endpoint(self.endpoint(n, socket_type, mode, n.send.as_ref()))
            }
        };
        if let NodeBody::Endpoint(e) = &body {
            self.endpoint_rules(n, e);
        }
        if open == OpenAt::Step {
            self.opened_by_step_rules(n);
        }
        NodeSpec {
            name: n.name.get_ref().clone(),
            kind,
            context,
            options,
            on_eterm,
            monitor: monitor && open == OpenAt::Setup,
            open,
            body,
        }
    }

    /// `connect = "<node>.monitor"`: a PAIR reading the monitor of a single-socket node that is
    /// made in setup, not watched by termwatch's own monitor, and read by nobody else.
    fn monitor_target(
        &mut self,
        connect: &Spanned<String>,
        target_name: &str,
        target: usize,
        reader: &EndpointSpec,
        watched: &NodeSpec,
        resolved: &[(usize, ConnectTarget)],
    ) -> Option<ConnectTarget> {
        let problem = if reader.socket_type != SocketType::Pair {
            Some(format!(
                "a monitor endpoint is read by a PAIR socket, not a {}",
                reader.socket_type
            ))
        } else if watched.endpoint().is_none() {
            Some(format!(
                "`{target_name}` is a proxy; a monitor endpoint belongs to a node with one socket"
            ))
        } else if watched.open == OpenAt::Step {
            Some(format!(
                "`{target_name}` is opened by a step; its monitor starts with its socket, in setup only"
            ))
        } else if watched.monitor {
            Some(format!(
                "`{target_name}` is already watched by termwatch's monitor (monitor = true), and libzmq keeps one monitor per socket"
            ))
        } else if resolved
            .iter()
            .any(|(_, t)| *t == ConnectTarget::Monitor { node: target })
        {
            Some(format!(
                "another node already reads the monitor of `{target_name}` (a PAIR has one peer)"
            ))
        } else {
            None
        };
        match problem {
            Some(message) => {
                self.error(connect.span(), message);
                None
            }
            None => Some(ConnectTarget::Monitor { node: target }),
        }
    }

    /// Every node with `open = "step"` has exactly one `open` step, and no step acts on it
    /// before that one.
    fn open_steps(&mut self, raw: &RawScenario, nodes: &[NodeSpec], steps: &[StepSpec]) {
        for (i, (node, raw_node)) in nodes.iter().zip(&raw.nodes).enumerate() {
            if node.open != OpenAt::Step {
                continue;
            }
            let opens: Vec<usize> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.action == Action::Open { node: i })
                .map(|(k, _)| k)
                .collect();
            let Some(&first) = opens.first() else {
                let span = raw_node
                    .open
                    .as_ref()
                    .map_or(raw_node.name.span(), Spanned::span);
                self.error(span, format!("node `{}` is opened by a step (open = \"step\"), but no `open` step names it", node.name));
                continue;
            };
            for &k in &opens[1..] {
                self.node_error(
                    &raw.steps[k],
                    format!(
                        "node `{}` is already opened by step {}",
                        node.name,
                        first + 1
                    ),
                );
            }
            for (k, step) in steps.iter().enumerate().take(first) {
                if step.action.node() == Some(i) {
                    self.node_error(
                        &raw.steps[k],
                        format!(
                            "node `{}` has no sockets before its `open` step (step {})",
                            node.name,
                            first + 1
                        ),
                    );
                }
            }
        }
    }

    /// A node opened by a step takes no part in the traffic phase and has no monitor.
    fn opened_by_step_rules(&mut self, n: &RawNode) {
        let traffic = [
            field("messages", &n.messages),
            field("send", &n.send),
            field("expect_messages", &n.expect_messages),
            field("monitor", &n.monitor),
        ];
        for f in traffic {
            if let Some(span) = f.span {
                self.error(span, format!("`{}` does not apply to a node opened by a step (open = \"step\"): the traffic phase and monitors are set up before any step runs", f.name));
            }
        }
    }

    /// A proxy's capture socket type: one zmq_proxy(3) can write copies to, on an engine that
    /// calls libzmq's proxy.
    fn capture(&mut self, n: &RawNode, engine: Engine) -> Option<SocketType> {
        let capture = n.capture.as_ref()?;
        let socket_type = *capture.get_ref();
        if engine == Engine::Forwarder {
            self.error(capture.span(), "`capture` needs engine = \"zmq_proxy\" or \"steerable\" (the forwarder has no capture socket)");
        } else if !matches!(
            socket_type,
            SocketType::Pub | SocketType::Dealer | SocketType::Push | SocketType::Pair
        ) {
            self.error(capture.span(), format!("a capture socket is PUB, DEALER, PUSH or PAIR (zmq_proxy(3)), not {socket_type}"));
        }
        Some(socket_type)
    }

    fn single_endpoint(&mut self, n: &RawNode, what: &str) {
        match (&n.bind, &n.connect) {
            (Some(_), Some(c)) => self.error(
                c.span(),
                format!("{what} takes `bind` or `connect`, not both"),
            ),
            (None, None) => self.error(n.name.span(), format!("{what} needs `bind` or `connect`")),
            _ => {}
        }
    }

    fn endpoint(
        &mut self,
        n: &RawNode,
        socket_type: SocketType,
        mode: Mode,
        send: Option<&Spanned<u64>>,
    ) -> EndpointSpec {
        let bind = n.bind.as_ref().map(|b| match b.get_ref().as_str() {
            "auto" => BindSpec::Auto,
            explicit if explicit.contains("://") => BindSpec::Explicit(explicit.to_owned()),
            other => {
                self.error(b.span(), format!("bind must be \"auto\" or an endpoint like \"tcp://127.0.0.1:*\", not {other:?}"));
                BindSpec::Auto
            }
        });
        let size = match &n.size {
            Some(s) if *s.get_ref() == 0 => {
                self.error(s.span(), "size must be at least 1 byte");
                1
            }
            Some(s) => usize::try_from(*s.get_ref()).unwrap_or(usize::MAX),
            None => DEFAULT_SIZE,
        };
        let poll_ms = n.poll_ms.as_ref().map_or(DEFAULT_POLL_MS, |p| *p.get_ref());
        if let Some(p) = &n.poll_ms {
            if mode != Mode::Poll {
                self.error(p.span(), "poll_ms applies only to mode = \"poll\"");
            } else if poll_ms == 0 {
                self.error(p.span(), "poll_ms must be at least 1");
            }
        }
        if let Some(r) = &n.rate
            && *r.get_ref() == 0
        {
            self.error(r.span(), "rate must be at least 1 message per second");
        }
        EndpointSpec {
            socket_type,
            mode,
            bind,
            connect: None,
            topic: n
                .topic
                .as_ref()
                .map(|t| t.get_ref().clone())
                .unwrap_or_default(),
            subscribe: n
                .subscribe
                .as_ref()
                .map_or_else(|| vec![String::new()], |s| s.get_ref().clone()),
            send: send.map_or(0, |s| *s.get_ref()),
            size,
            rate: n.rate.as_ref().map(|r| *r.get_ref()),
            expect_messages: n.expect_messages.as_ref().map(|e| *e.get_ref()),
            poll_interval: Duration::from_millis(poll_ms),
        }
    }

    /// Rules that depend on the socket type and mode together.
    fn endpoint_rules(&mut self, n: &RawNode, e: &EndpointSpec) {
        let t = e.socket_type;
        let send_only = matches!(t, SocketType::Pub | SocketType::Push);
        let receive_only = matches!(t, SocketType::Sub | SocketType::Pull);
        if let Some(m) = &n.mode {
            if send_only && !matches!(e.mode, Mode::Idle | Mode::Stream) {
                self.error(
                    m.span(),
                    format!(
                        "a {t} socket cannot receive, so its mode must be \"idle\" or \"stream\""
                    ),
                );
            } else if e.mode == Mode::Stream
                && (receive_only || matches!(t, SocketType::Req | SocketType::Rep))
            {
                self.error(
                    m.span(),
                    format!("mode \"stream\" sends without end, which a {t} socket cannot do"),
                );
            }
        }
        if matches!(t, SocketType::Sub | SocketType::Pull)
            && let Some(s) = &n.send
            && *s.get_ref() > 0
        {
            self.error(s.span(), format!("a {t} socket cannot send"));
        }
        if let Some(s) = &n.send
            && *s.get_ref() > 0
        {
            if t == SocketType::Rep {
                self.error(s.span(), "a REP socket only replies (to each request it receives), so it takes no `send`");
            } else if t == SocketType::Req && e.mode == Mode::Idle && *s.get_ref() > 1 {
                self.error(s.span(), "an idle REQ sends one request and never reads the reply, so `send` is at most 1 (a REQ with a thread alternates requests and replies)");
            }
        }
        if let Some(topic) = &n.topic
            && !t.has_topic()
        {
            self.error(
                topic.span(),
                format!("`topic` applies only to PUB and XPUB sockets, not {t}"),
            );
        }
        if let Some(sub) = &n.subscribe
            && !t.subscribes()
        {
            self.error(
                sub.span(),
                format!("`subscribe` applies only to SUB sockets, not {t}"),
            );
        }
        if let Some(nodrop) = &n.nodrop
            && !matches!(t, SocketType::Pub | SocketType::Xpub)
        {
            self.error(
                nodrop.span(),
                format!("`nodrop` (ZMQ_XPUB_NODROP) applies only to PUB and XPUB sockets, not {t}"),
            );
        }
        if let Some(expect) = &n.expect_messages
            && matches!(e.mode, Mode::Idle | Mode::Stream)
        {
            self.error(expect.span(), format!("expect_messages needs a node that reads (mode blocking, poll or async): nobody reads a{} {} socket", if e.mode == Mode::Idle { "n" } else { "" }, e.mode));
        }
        if let Some(on_eterm) = &n.on_eterm
            && e.mode == Mode::Idle
        {
            self.error(on_eterm.span(), "on_eterm applies to nodes with a loop (mode blocking, poll or async): an idle socket has none");
        }
        if e.send > 0
            && e.mode == Mode::Async
            && let Some(s) = &n.send
        {
            self.error(s.span(), "an async node cannot send in the traffic phase; use mode \"blocking\" or \"poll\", or a separate sending node");
        }
    }

    /// Resolves every node's `connect` now that all names are known.
    fn connects(
        &mut self,
        raw: &[RawNode],
        nodes: &mut [NodeSpec],
        index: &HashMap<String, usize>,
    ) {
        let mut resolved = Vec::new();
        for (i, n) in raw.iter().enumerate() {
            let (Some(connect), NodeBody::Endpoint(e)) = (&n.connect, &nodes[i].body) else {
                continue;
            };
            let value = connect.get_ref();
            if value.contains("://") {
                resolved.push((i, ConnectTarget::Explicit(value.clone())));
                continue;
            }
            let (target_name, side_name) = match value.split_once('.') {
                Some((node, side)) => (node, Some(side)),
                None => (value.as_str(), None),
            };
            let Some(&target) = index.get(target_name) else {
                let known: Vec<&str> = raw.iter().map(|n| n.name.get_ref().as_str()).collect();
                self.error(connect.span(), format!("connect names no node `{target_name}` (nodes: {}; an endpoint needs `://`)", known.join(", ")));
                continue;
            };
            if target == i {
                self.error(connect.span(), "a node cannot connect to itself");
                continue;
            }
            if side_name == Some("monitor") {
                if let Some(target) =
                    self.monitor_target(connect, target_name, target, e, &nodes[target], &resolved)
                {
                    resolved.push((i, target));
                }
                continue;
            }
            if nodes[target].open == OpenAt::Step {
                self.error(connect.span(), format!("node `{target_name}` is opened by a step, so nothing of it is bound at setup: give it an explicit `bind` endpoint and connect to that (inproc allows connecting before the bind)"));
                continue;
            }
            let side = match (&nodes[target].body, side_name) {
                (NodeBody::Proxy { .. }, Some("frontend")) => Some(ProxySide::Frontend),
                (NodeBody::Proxy { .. }, Some("backend")) => Some(ProxySide::Backend),
                (
                    NodeBody::Proxy {
                        capture: Some(_), ..
                    },
                    Some("capture"),
                ) => Some(ProxySide::Capture),
                (NodeBody::Proxy { .. }, Some("capture")) => {
                    self.error(
                        connect.span(),
                        format!(
                            "proxy `{target_name}` has no capture socket (set `capture` on it)"
                        ),
                    );
                    continue;
                }
                (NodeBody::Proxy { .. }, Some(other)) => {
                    self.error(
                        connect.span(),
                        format!("a proxy has sides `frontend`, `backend` and, with `capture`, `capture`; not `{other}`"),
                    );
                    continue;
                }
                (NodeBody::Proxy { .. }, None) => match e.socket_type {
                    SocketType::Pub | SocketType::Xpub => Some(ProxySide::Frontend),
                    SocketType::Sub | SocketType::Xsub => Some(ProxySide::Backend),
                    other => {
                        self.error(connect.span(), format!("say which side of proxy `{target_name}` a {other} socket connects to: \"{target_name}.frontend\" or \"{target_name}.backend\""));
                        continue;
                    }
                },
                (NodeBody::Endpoint(_), Some(side)) => {
                    self.error(
                        connect.span(),
                        format!("node `{target_name}` is not a proxy, so it has no side `{side}`"),
                    );
                    continue;
                }
                (NodeBody::Endpoint(t), None) => {
                    if t.bind.is_none() {
                        self.error(connect.span(), format!("node `{target_name}` binds nothing, so there is nothing to connect to (give it `bind = \"auto\"`)"));
                        continue;
                    }
                    None
                }
            };
            resolved.push((i, ConnectTarget::Node { node: target, side }));
        }
        for (i, target) in resolved {
            if let NodeBody::Endpoint(e) = &mut nodes[i].body {
                e.connect = Some(target);
            }
        }
    }

    fn step(
        &mut self,
        s: &RawStep,
        step_timeout: Duration,
        nodes: &[NodeSpec],
        index: &HashMap<String, usize>,
        contexts: &[ContextSpec],
    ) -> Option<StepSpec> {
        let action = *s.action.get_ref();
        let errors_before = self.errors.len();
        let what = format!("a `{action}` step");
        let takes_node = !matches!(
            action,
            ActionName::Term | ActionName::Shutdown | ActionName::Sleep | ActionName::Alarm
        );
        let takes_context = matches!(action, ActionName::Term | ActionName::Shutdown);
        if !takes_node {
            self.reject_fields(&what, &[field("node", &s.node)]);
        }
        if !takes_context {
            self.reject_fields(&what, &[field("context", &s.context)]);
        }
        if action != ActionName::Steer {
            self.reject_fields(&what, &[field("command", &s.command)]);
        }
        if action != ActionName::Sleep {
            self.reject_fields(&what, &[field("for", &s.duration)]);
        }
        if action != ActionName::SetLinger {
            self.reject_fields(&what, &[field("linger_ms", &s.linger_ms)]);
        }
        if action != ActionName::Alarm {
            self.reject_fields(&what, &[field("after", &s.after)]);
        }
        let node = if takes_node {
            self.step_node(s, &what, nodes, index)
        } else {
            None
        };
        let context = if takes_context {
            self.context_ref(&s.context, contexts)
        } else {
            0
        };
        let timeout = s
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, "timeout"))
            .unwrap_or(step_timeout);
        let expect_at_least = s
            .expect_at_least
            .as_ref()
            .and_then(|d| self.duration(d, "expect_at_least"));
        if let (Some(at_least), Some(span)) = (
            expect_at_least,
            s.expect_at_least.as_ref().map(Spanned::span),
        ) && at_least >= timeout
        {
            self.error(span, format!(
                "expect_at_least {} is not shorter than the step's deadline {}: the step would hang before it could pass",
                humantime::format_duration(at_least), humantime::format_duration(timeout)));
        }
        let node_ref = |kind: fn(&NodeSpec) -> bool| node.filter(|&n| kind(&nodes[n]));
        let is_async = |n: &NodeSpec| n.endpoint().is_some_and(|e| e.mode == Mode::Async);
        let action_spec = match action {
            ActionName::Close => node.map(|node| Action::Close { node }),
            ActionName::Cancel | ActionName::StopRuntime => {
                if let Some(n) = node
                    && !is_async(&nodes[n])
                {
                    self.node_error(s, format!("`{action}` applies only to async nodes (mode = \"async\"); `{}` is not one", nodes[n].name));
                }
                node_ref(is_async).map(|node| match action {
                    ActionName::Cancel => Action::Cancel { node },
                    _ => Action::StopRuntime { node },
                })
            }
            ActionName::Open => {
                let by_step: fn(&NodeSpec) -> bool = |n| n.open == OpenAt::Step;
                if let Some(n) = node
                    && !by_step(&nodes[n])
                {
                    self.node_error(s, format!("`open` needs a node with open = \"step\"; setup already made the sockets of `{}`", nodes[n].name));
                }
                node_ref(by_step).map(|node| Action::Open { node })
            }
            ActionName::Exit => {
                let threaded: fn(&NodeSpec) -> bool = |n| {
                    n.has_thread() && n.endpoint().is_none_or(|e| e.mode != Mode::Async)
                };
                if let Some(n) = node
                    && !threaded(&nodes[n])
                {
                    self.node_error(s, format!("`exit` needs a node with a thread of its own (blocking, poll or proxy; an async node's is stopped with `stop_runtime`); `{}` is not one", nodes[n].name));
                }
                node_ref(threaded).map(|node| Action::Exit { node })
            }
            ActionName::Join => {
                if let Some(n) = node
                    && !nodes[n].has_thread()
                {
                    self.node_error(s, format!("`join` needs a node with a thread; `{}` has none (idle sockets and publishers are used by the main thread)", nodes[n].name));
                }
                node_ref(NodeSpec::has_thread).map(|node| Action::Join { node })
            }
            ActionName::Steer => {
                let steerable = |n: &NodeSpec| matches!(n.body, NodeBody::Proxy { engine: Engine::Steerable, .. });
                if let Some(n) = node
                    && !steerable(&nodes[n])
                {
                    self.node_error(s, format!("`steer` applies only to proxies with engine = \"steerable\"; `{}` is not one", nodes[n].name));
                }
                let command = match &s.command {
                    Some(c) => Some(*c.get_ref()),
                    None => {
                        self.error(s.action.span(), "a `steer` step needs `command` (TERMINATE, PAUSE or RESUME)");
                        None
                    }
                };
                node_ref(steerable).zip(command).map(|(node, command)| Action::Steer { node, command })
            }
            ActionName::SetLinger => match &s.linger_ms {
                Some(l) if *l.get_ref() < -1 => {
                    self.error(l.span(), "linger_ms must be -1 (forever), 0 or a positive number of milliseconds");
                    None
                }
                Some(l) => node.map(|node| Action::SetLinger { node, linger_ms: *l.get_ref() }),
                None => {
                    self.error(s.action.span(), "a `set_linger` step needs `linger_ms`");
                    None
                }
            },
            ActionName::Term => Some(Action::Term { context }),
            ActionName::Shutdown => Some(Action::Shutdown { context }),
            ActionName::Alarm => match &s.after {
                Some(a) => self.duration(a, "after").map(|after| Action::Alarm { after }),
                None => {
                    self.error(s.action.span(), "an `alarm` step needs `after` (e.g. after = \"100ms\")");
                    None
                }
            },
            ActionName::Sleep => match &s.duration {
                Some(d) => self.duration(d, "for").map(|duration| {
                    if duration >= timeout {
                        self.error(d.span(), format!(
                            "sleep for {} is not shorter than the step's deadline {}: it would always hang",
                            humantime::format_duration(duration), humantime::format_duration(timeout)));
                    }
                    Action::Sleep { duration }
                }),
                None => {
                    self.error(s.action.span(), "a `sleep` step needs `for` (e.g. for = \"100ms\")");
                    None
                }
            },
        };
        let label = match &s.label {
            Some(l) => l.get_ref().clone(),
            None => default_label(
                action,
                node.map(|n| nodes[n].name.as_str()),
                takes_context.then(|| contexts[context].name.as_str()),
            ),
        };
        if self.errors.len() > errors_before {
            return None;
        }
        action_spec.map(|action| StepSpec {
            label,
            action,
            timeout,
            expect_at_least,
        })
    }

    fn node_error(&mut self, s: &RawStep, message: String) {
        let span = s
            .node
            .as_ref()
            .map_or_else(|| s.action.span(), Spanned::span);
        self.error(span, message);
    }

    fn step_node(
        &mut self,
        s: &RawStep,
        what: &str,
        nodes: &[NodeSpec],
        index: &HashMap<String, usize>,
    ) -> Option<usize> {
        let Some(node) = &s.node else {
            self.error(s.action.span(), format!("{what} needs `node`"));
            return None;
        };
        let found = index.get(node.get_ref()).copied();
        if found.is_none() {
            let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            self.error(
                node.span(),
                format!(
                    "no node named `{}` (nodes: {})",
                    node.get_ref(),
                    known.join(", ")
                ),
            );
        }
        found
    }

    fn expect_hang_at(&mut self, raw: &RawScenario, steps: &[StepSpec]) {
        let Some(at) = &raw.expect_hang_at else {
            return;
        };
        if *raw.expect.get_ref() != Expect::Hang {
            self.error(at.span(), "expect_hang_at needs expect = \"hang\"");
            return;
        }
        let label = at.get_ref();
        if label == TRAFFIC_LABEL {
            return;
        }
        match steps.iter().filter(|s| &s.label == label).count() {
            1 => {}
            0 => {
                let labels: Vec<String> = steps.iter().map(|s| format!("`{}`", s.label)).collect();
                self.error(
                    at.span(),
                    format!(
                        "expect_hang_at `{label}` matches no step label (labels: {}; or `traffic`)",
                        labels.join(", ")
                    ),
                );
            }
            n => self.error(
                at.span(),
                format!("expect_hang_at `{label}` matches {n} steps; give them distinct `label`s"),
            ),
        }
    }
}

/// The label a step gets when it has none: action plus node, or plus context when not `main`.
fn default_label(action: ActionName, node: Option<&str>, context: Option<&str>) -> String {
    match (node, context) {
        (Some(node), _) => format!("{action} {node}"),
        (None, Some(context)) if context != MAIN_CONTEXT => format!("{action} {context}"),
        _ => action.as_str().to_owned(),
    }
}

#[cfg(test)]
mod vocabulary_tests {
    //! The rules of `exit`, `alarm`, `open`, `mode = "stream"`, a proxy's `capture` and
    //! `connect = "<node>.monitor"`: each rejected use names its line and column.

    use std::path::Path;

    use super::super::{Action, ConnectTarget, NodeBody, OpenAt, ProxySide, SocketType, parse};

    const PUB_SUB: &str = "[[nodes]]\nname = \"pub\"\nkind = \"publisher\"\nbind = \"auto\"\n[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nmode = \"poll\"\nconnect = \"pub\"\n";

    /// The only error of `text`, as (line, column, message).
    fn error(text: &str) -> (usize, usize, String) {
        let errors = parse(Path::new("t.toml"), text, "t").expect_err("rejected");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        let p = e.position.expect("a position");
        (p.line, p.column, e.message.clone())
    }

    fn rejected(text: &str, line: usize, column: usize, fragment: &str) {
        let (l, c, message) = error(text);
        assert_eq!((l, c), (line, column), "{message}");
        assert!(message.contains(fragment), "{message}");
    }

    #[test]
    fn exit_takes_a_node_with_a_thread_that_is_not_a_runtime() {
        let ok = parse(
            Path::new("t.toml"),
            &format!("expect = \"clean\"\n{PUB_SUB}[[steps]]\naction = \"exit\"\nnode = \"sub\"\n"),
            "t",
        )
        .expect("valid");
        assert_eq!(ok.steps[0].action, Action::Exit { node: 1 });
        assert_eq!(ok.steps[0].label, "exit sub");
        rejected(
            &format!("expect = \"clean\"\n{PUB_SUB}[[steps]]\naction = \"exit\"\nnode = \"pub\"\n"),
            13,
            8,
            "needs a node with a thread of its own",
        );
        let async_sub = PUB_SUB.replace("\"poll\"", "\"async\"");
        rejected(
            &format!(
                "expect = \"clean\"\n{async_sub}[[steps]]\naction = \"exit\"\nnode = \"sub\"\n"
            ),
            13,
            8,
            "stop_runtime",
        );
    }

    #[test]
    fn alarm_needs_after_and_nothing_else_takes_it() {
        let ok = parse(
            Path::new("t.toml"),
            "expect = \"clean\"\n[[steps]]\naction = \"alarm\"\nafter = \"100ms\"\n",
            "t",
        )
        .expect("valid");
        assert_eq!(
            ok.steps[0].action,
            Action::Alarm {
                after: std::time::Duration::from_millis(100)
            }
        );
        rejected(
            "expect = \"clean\"\n[[steps]]\naction = \"alarm\"\n",
            3,
            10,
            "needs `after`",
        );
        rejected(
            "expect = \"clean\"\n[[steps]]\naction = \"term\"\nafter = \"1s\"\n",
            4,
            9,
            "field `after` does not apply",
        );
    }

    #[test]
    fn stream_is_for_types_that_send_and_reads_nothing() {
        let node = |t: &str, extra: &str| {
            format!(
                "expect = \"clean\"\n[[nodes]]\nname = \"n\"\nkind = \"socket\"\ntype = \"{t}\"\nbind = \"auto\"\nmode = \"stream\"\n{extra}"
            )
        };
        parse(Path::new("t.toml"), &node("PUSH", "send = 3\n"), "t").expect("PUSH streams");
        parse(Path::new("t.toml"), &node("DEALER", ""), "t").expect("DEALER streams");
        rejected(&node("PULL", ""), 7, 8, "which a PULL socket cannot do");
        rejected(&node("REQ", ""), 7, 8, "which a REQ socket cannot do");
        rejected(
            &node("DEALER", "expect_messages = 1\n"),
            8,
            19,
            "nobody reads a stream socket",
        );
    }

    #[test]
    fn req_and_rep_sends_follow_their_state_machine() {
        let node = |t: &str, mode: &str, send: u64| {
            format!(
                "expect = \"clean\"\n[[nodes]]\nname = \"n\"\nkind = \"socket\"\ntype = \"{t}\"\nbind = \"auto\"\nmode = \"{mode}\"\nsend = {send}\n"
            )
        };
        parse(Path::new("t.toml"), &node("REQ", "blocking", 5), "t")
            .expect("a REQ thread alternates");
        parse(Path::new("t.toml"), &node("REQ", "idle", 1), "t").expect("one request");
        rejected(&node("REQ", "idle", 2), 8, 8, "at most 1");
        rejected(&node("REP", "blocking", 1), 8, 8, "only replies");
    }

    #[test]
    fn a_capture_socket_is_pub_dealer_push_or_pair_on_a_libzmq_proxy() {
        let proxy = |extra: &str| {
            format!("expect = \"clean\"\n[[nodes]]\nname = \"bus\"\nkind = \"proxy\"\n{extra}")
        };
        let ok = parse(
            Path::new("t.toml"),
            &(proxy("capture = \"PAIR\"\n")
                + "[[nodes]]\nname = \"r\"\nkind = \"socket\"\ntype = \"PAIR\"\nconnect = \"bus.capture\"\n"),
            "t",
        )
        .expect("valid");
        assert!(matches!(
            ok.nodes[0].body,
            NodeBody::Proxy {
                capture: Some(SocketType::Pair),
                ..
            }
        ));
        assert_eq!(
            ok.nodes[1].endpoint().and_then(|e| e.connect.clone()),
            Some(ConnectTarget::Node {
                node: 0,
                side: Some(ProxySide::Capture)
            })
        );
        rejected(&proxy("capture = \"SUB\"\n"), 5, 11, "not SUB");
        rejected(
            &proxy("engine = \"forwarder\"\ncapture = \"PUSH\"\n"),
            6,
            11,
            "the forwarder has no capture socket",
        );
        rejected(
            &(proxy("")
                + "[[nodes]]\nname = \"r\"\nkind = \"socket\"\ntype = \"PAIR\"\nconnect = \"bus.capture\"\n"),
            9,
            11,
            "has no capture socket",
        );
    }

    #[test]
    fn a_node_opened_by_a_step_has_one_open_step_before_anything_else() {
        let late = "[[nodes]]\nname = \"late\"\nkind = \"socket\"\ntype = \"DEALER\"\nconnect = \"tcp://127.0.0.1:1\"\nopen = \"step\"\n";
        let ok = parse(
            Path::new("t.toml"),
            &format!("expect = \"clean\"\n{late}[[steps]]\naction = \"open\"\nnode = \"late\"\n[[steps]]\naction = \"close\"\nnode = \"late\"\n"),
            "t",
        )
        .expect("valid");
        assert_eq!(ok.nodes[0].open, OpenAt::Step);
        assert_eq!(ok.steps[0].action, Action::Open { node: 0 });
        rejected(
            &format!("expect = \"clean\"\n{late}"),
            7,
            8,
            "no `open` step names it",
        );
        rejected(
            &format!(
                "expect = \"clean\"\n{late}[[steps]]\naction = \"close\"\nnode = \"late\"\n[[steps]]\naction = \"open\"\nnode = \"late\"\n"
            ),
            10,
            8,
            "no sockets before its `open` step (step 2)",
        );
        rejected(
            &format!("expect = \"clean\"\n{PUB_SUB}[[steps]]\naction = \"open\"\nnode = \"pub\"\n"),
            13,
            8,
            "needs a node with open = \"step\"",
        );
        rejected(
            &format!(
                "expect = \"clean\"\n{late}send = 1\n[[steps]]\naction = \"open\"\nnode = \"late\"\n"
            ),
            8,
            8,
            "does not apply to a node opened by a step",
        );
        let bound_late = late.replace("connect = \"tcp://127.0.0.1:1\"", "bind = \"auto\"");
        rejected(
            &format!(
                "expect = \"clean\"\n{bound_late}[[nodes]]\nname = \"d\"\nkind = \"socket\"\ntype = \"DEALER\"\nconnect = \"late\"\n[[steps]]\naction = \"open\"\nnode = \"late\"\n"
            ),
            12,
            11,
            "give it an explicit `bind` endpoint",
        );
    }

    #[test]
    fn a_monitor_is_read_by_one_pair_of_a_single_socket_node_without_termwatch_s_monitor() {
        let dealer = |extra: &str| {
            format!(
                "expect = \"clean\"\n[[nodes]]\nname = \"d\"\nkind = \"socket\"\ntype = \"DEALER\"\nbind = \"auto\"\n{extra}"
            )
        };
        let reader = |name: &str, t: &str| {
            format!(
                "[[nodes]]\nname = \"{name}\"\nkind = \"socket\"\ntype = \"{t}\"\nconnect = \"d.monitor\"\n"
            )
        };
        let ok = parse(
            Path::new("t.toml"),
            &(dealer("") + &reader("m", "PAIR")),
            "t",
        )
        .expect("valid");
        assert!(ok.monitor_is_read(0));
        assert_eq!(
            ok.nodes[1].endpoint().and_then(|e| e.connect.clone()),
            Some(ConnectTarget::Monitor { node: 0 })
        );
        rejected(
            &(dealer("") + &reader("m", "PULL")),
            11,
            11,
            "read by a PAIR socket",
        );
        rejected(
            &(dealer("monitor = true\n") + &reader("m", "PAIR")),
            12,
            11,
            "already watched by termwatch's monitor",
        );
        rejected(
            &(dealer("") + &reader("m", "PAIR") + &reader("n", "PAIR")),
            16,
            11,
            "another node already reads",
        );
    }
}
