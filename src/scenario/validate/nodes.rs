//! Nodes: names, the body of each kind, socket options, endpoints, the rules that tie a
//! socket's type to its mode and fields, and `connect` targets resolved once every name is known
//! (a node's bind, a proxy's side, a program's bind).

use std::collections::HashMap;
use std::time::Duration;

use serde_spanned::Spanned;

use super::programs::program_side;
use super::{Validator, bounds, field};
use crate::scenario::endpoint::{Direction, Endpoint};
use crate::scenario::names::NameKind;
use crate::scenario::raw::{Int, RawNode};
use crate::scenario::*;

/// Default payload size of a message.
const DEFAULT_SIZE: usize = 64;
/// Default poll timeout of `poll` mode.
const DEFAULT_POLL: Duration = Duration::from_millis(100);

impl Validator<'_> {
    /// Node names and their indices; duplicates and bad names are errors.
    pub(super) fn node_names(&mut self, raw: &[RawNode]) -> HashMap<String, usize> {
        let mut index = HashMap::new();
        for (i, n) in raw.iter().enumerate() {
            self.name(NameKind::Node, &n.name);
            let name = n.name.get_ref();
            if index.insert(name.clone(), i).is_some() {
                self.error(n.name.span(), format!("duplicate node name `{name}`"));
            }
        }
        index
    }

    pub(super) fn node(
        &mut self,
        n: &RawNode,
        contexts: &[ContextSpec],
        scenario_monitor: bool,
    ) -> NodeSpec {
        let kind = *n.kind.get_ref();
        let what = format!("a {kind} node");
        if kind != NodeKindName::Program {
            self.reject_program_fields(n, &what);
        }
        let body = match kind {
            NodeKindName::Program => self.program_node(n, &what),
            NodeKindName::Proxy => self.proxy(n, &what),
            NodeKindName::Publisher => self.publisher(n, &what),
            NodeKindName::Subscriber => self.subscriber(n, &what),
            NodeKindName::Socket => self.socket(n, &what),
        };
        if let NodeBody::Endpoint(e) = &body {
            self.endpoint_rules(n, e);
        }
        // A program is started at setup's end whatever it says (its `open` is rejected above).
        let open = match (&body, &n.open) {
            (NodeBody::Program(_), _) | (_, None) => OpenAt::Setup,
            (_, Some(v)) => *v.get_ref(),
        };
        if open == OpenAt::Step {
            self.opened_by_step_rules(n);
        }
        let monitor = scenario_monitor || n.monitor.as_ref().is_some_and(|m| *m.get_ref());
        NodeSpec {
            name: n.name.get_ref().clone(),
            kind,
            context: self.context_ref(&n.context, contexts),
            options: self.socket_options(n),
            on_eterm: n.on_eterm.as_ref().map_or(OnEterm::Close, |v| *v.get_ref()),
            monitor: monitor && open == OpenAt::Setup,
            open,
            body,
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

    fn socket_options(&mut self, n: &RawNode) -> SocketOptions {
        SocketOptions {
            linger_ms: self.number(&n.linger_ms, "linger_ms", bounds::LINGER_MS),
            sndhwm: self.number(&n.sndhwm, "sndhwm", bounds::HWM),
            rcvhwm: self.number(&n.rcvhwm, "rcvhwm", bounds::HWM),
            immediate: n.immediate.as_ref().map(|v| *v.get_ref()),
            nodrop: n.nodrop.as_ref().map(|v| *v.get_ref()),
        }
    }

    fn proxy(&mut self, n: &RawNode, what: &str) -> NodeBody {
        self.reject_fields(
            what,
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

    fn publisher(&mut self, n: &RawNode, what: &str) -> NodeBody {
        self.reject_fields(
            what,
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
        self.single_endpoint(n, what);
        NodeBody::Endpoint(self.endpoint(n, SocketType::Pub, Mode::Idle, ("messages", &n.messages)))
    }

    fn subscriber(&mut self, n: &RawNode, what: &str) -> NodeBody {
        self.reject_fields(
            what,
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
        self.single_endpoint(n, what);
        let mode = n.mode.as_ref().map_or(Mode::Blocking, |m| *m.get_ref());
        NodeBody::Endpoint(self.endpoint(n, SocketType::Sub, mode, ("send", &None)))
    }

    fn socket(&mut self, n: &RawNode, what: &str) -> NodeBody {
        self.reject_fields(
            what,
            &[
                field("engine", &n.engine),
                field("capture", &n.capture),
                field("messages", &n.messages),
            ],
        );
        let socket_type = match &n.socket_type {
            Some(t) => *t.get_ref(),
            None => {
                self.error(
                    n.kind.span(),
                    "a socket node needs `type` (PUB, SUB, XPUB, XSUB, PUSH, PULL, DEALER, ROUTER, REQ, REP or PAIR)",
                );
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
        NodeBody::Endpoint(self.endpoint(n, socket_type, mode, ("send", &n.send)))
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

    /// The single-socket part of a node; `send` is the field that counts its messages.
    fn endpoint(
        &mut self,
        n: &RawNode,
        socket_type: SocketType,
        mode: Mode,
        send: (&'static str, &Option<Spanned<Int>>),
    ) -> EndpointSpec {
        let poll_ms: Option<u64> = self.number(&n.poll_ms, "poll_ms", bounds::POLL_MS);
        if let Some(p) = &n.poll_ms
            && mode != Mode::Poll
        {
            self.error(p.span(), "poll_ms applies only to mode = \"poll\"");
        }
        EndpointSpec {
            socket_type,
            mode,
            bind: n.bind.as_ref().map(|b| self.bind(b)),
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
            send: self.number(send.1, send.0, bounds::MESSAGES).unwrap_or(0),
            size: self
                .number(&n.size, "size", bounds::SIZE)
                .unwrap_or(DEFAULT_SIZE),
            rate: self.number(&n.rate, "rate", bounds::RATE),
            expect_messages: self.number(&n.expect_messages, "expect_messages", bounds::MESSAGES),
            poll_interval: poll_ms.map_or(DEFAULT_POLL, Duration::from_millis),
        }
    }

    fn bind(&mut self, value: &Spanned<String>) -> BindSpec {
        let text = value.get_ref();
        if text == "auto" {
            return BindSpec::Auto;
        }
        if !text.contains("://") {
            self.error(
                value.span(),
                format!(
                    "bind must be \"auto\" or an endpoint like \"tcp://127.0.0.1:*\", not {text:?}"
                ),
            );
            return BindSpec::Auto;
        }
        match Endpoint::parse(text, Direction::Bind) {
            Ok(endpoint) => BindSpec::Explicit(endpoint),
            Err(e) => {
                self.error(value.span(), format!("bad endpoint {text:?}: {e}"));
                BindSpec::Auto
            }
        }
    }

    /// Rules that depend on the socket type and mode together.
    fn endpoint_rules(&mut self, n: &RawNode, e: &EndpointSpec) {
        self.direction_rules(n, e);
        self.type_field_rules(n, e.socket_type);
        self.loop_rules(n, e);
    }

    /// Send-only types do not read (they are idle or stream), receive-only types do not send,
    /// and REQ/REP sends follow their state machine.
    fn direction_rules(&mut self, n: &RawNode, e: &EndpointSpec) {
        let t = e.socket_type;
        let receive_only = matches!(t, SocketType::Sub | SocketType::Pull);
        if let Some(m) = &n.mode {
            if matches!(t, SocketType::Pub | SocketType::Push)
                && !matches!(e.mode, Mode::Idle | Mode::Stream)
            {
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
        let Some(s) = n.send.as_ref().filter(|s| s.get_ref().0 > 0) else {
            return;
        };
        if receive_only {
            self.error(s.span(), format!("a {t} socket cannot send"));
        } else if t == SocketType::Rep {
            self.error(
                s.span(),
                "a REP socket only replies (to each request it receives), so it takes no `send`",
            );
        } else if t == SocketType::Req && e.mode == Mode::Idle && s.get_ref().0 > 1 {
            self.error(s.span(), "an idle REQ sends one request and never reads the reply, so `send` is at most 1 (a REQ with a thread alternates requests and replies)");
        }
    }

    /// `topic`, `subscribe` and `nodrop` belong to some socket types only.
    fn type_field_rules(&mut self, n: &RawNode, t: SocketType) {
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
    }

    /// Fields that need a thread or task that reads.
    fn loop_rules(&mut self, n: &RawNode, e: &EndpointSpec) {
        if let Some(expect) = &n.expect_messages
            && matches!(e.mode, Mode::Idle | Mode::Stream)
        {
            let article = if e.mode == Mode::Idle { "an" } else { "a" };
            self.error(expect.span(), format!("expect_messages needs a node that reads (mode blocking, poll or async): nobody reads {article} {} socket", e.mode));
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
    pub(super) fn connects(
        &mut self,
        raw: &[RawNode],
        nodes: &mut [NodeSpec],
        index: &HashMap<String, usize>,
    ) {
        let resolved: Vec<(usize, ConnectTarget)> = raw
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let connect = n.connect.as_ref()?;
                let NodeBody::Endpoint(e) = &nodes[i].body else {
                    return None;
                };
                let target = self.connect_target(connect, i, e.socket_type, raw, nodes, index)?;
                Some((i, target))
            })
            .collect();
        for (k, (i, target)) in resolved.iter().enumerate() {
            if let ConnectTarget::Monitor { node } = target
                && resolved[..k].iter().any(|(_, earlier)| earlier == target)
                && let Some(connect) = &raw[*i].connect
            {
                self.error(
                    connect.span(),
                    format!(
                        "another node already reads the monitor of `{}` (a PAIR has one peer)",
                        nodes[*node].name
                    ),
                );
            }
        }
        for (i, target) in resolved {
            if let NodeBody::Endpoint(e) = &mut nodes[i].body {
                e.connect = Some(target);
            }
        }
    }

    /// `connect = "<node>.monitor"`: a PAIR reading the monitor of a single-socket node that is
    /// made in setup and not watched by termwatch's own monitor.
    fn monitor_target(
        &mut self,
        connect: &Spanned<String>,
        target_name: &str,
        reader: SocketType,
        watched: &NodeSpec,
    ) -> bool {
        let problem = if reader != SocketType::Pair {
            format!("a monitor endpoint is read by a PAIR socket, not a {reader}")
        } else if watched.endpoint().is_none() {
            format!(
                "`{target_name}` is a {} node; a monitor endpoint belongs to a node with one socket",
                watched.kind
            )
        } else if watched.open == OpenAt::Step {
            format!(
                "`{target_name}` is opened by a step; its monitor starts with its socket, in setup only"
            )
        } else if watched.monitor {
            format!(
                "`{target_name}` is already watched by termwatch's monitor (monitor = true), and libzmq keeps one monitor per socket"
            )
        } else {
            return true;
        };
        self.error(connect.span(), problem);
        false
    }

    /// What node `from` (of type `from_type`) connects to: an endpoint, or a node's bound one.
    fn connect_target(
        &mut self,
        connect: &Spanned<String>,
        from: usize,
        from_type: SocketType,
        raw: &[RawNode],
        nodes: &[NodeSpec],
        index: &HashMap<String, usize>,
    ) -> Option<ConnectTarget> {
        let value = connect.get_ref();
        if value.contains("://") {
            return match Endpoint::parse(value, Direction::Connect) {
                Ok(endpoint) => Some(ConnectTarget::Explicit(endpoint)),
                Err(e) => {
                    self.error(connect.span(), format!("bad endpoint {value:?}: {e}"));
                    None
                }
            };
        }
        let (target_name, side_name) = match value.split_once('.') {
            Some((node, side)) => (node, Some(side)),
            None => (value.as_str(), None),
        };
        let Some(&target) = index.get(target_name) else {
            let known: Vec<&str> = raw.iter().map(|n| n.name.get_ref().as_str()).collect();
            self.error(
                connect.span(),
                format!(
                    "connect names no node `{target_name}` (nodes: {}; an endpoint needs `://`)",
                    known.join(", ")
                ),
            );
            return None;
        };
        if target == from {
            self.error(connect.span(), "a node cannot connect to itself");
            return None;
        }
        if side_name == Some("monitor") {
            return self
                .monitor_target(connect, target_name, from_type, &nodes[target])
                .then_some(ConnectTarget::Monitor { node: target });
        }
        if nodes[target].open == OpenAt::Step {
            self.error(connect.span(), format!("node `{target_name}` is opened by a step, so nothing of it is bound at setup: give it an explicit `bind` endpoint and connect to that (inproc allows connecting before the bind)"));
            return None;
        }
        let side = self.connect_side(
            connect,
            target_name,
            &nodes[target].body,
            side_name,
            from_type,
        )?;
        Some(ConnectTarget::Node { node: target, side })
    }

    /// Which endpoint of the target a connect reaches; `None` when there is none to reach.
    fn connect_side(
        &mut self,
        connect: &Spanned<String>,
        target_name: &str,
        target: &NodeBody,
        side_name: Option<&str>,
        from_type: SocketType,
    ) -> Option<Side> {
        let message = match (target, side_name) {
            (NodeBody::Proxy { .. }, Some("frontend")) => {
                return Some(Side::Proxy(ProxySide::Frontend));
            }
            (NodeBody::Proxy { .. }, Some("backend")) => {
                return Some(Side::Proxy(ProxySide::Backend));
            }
            (
                NodeBody::Proxy {
                    capture: Some(_), ..
                },
                Some("capture"),
            ) => {
                return Some(Side::Proxy(ProxySide::Capture));
            }
            (NodeBody::Proxy { .. }, Some("capture")) => {
                format!("proxy `{target_name}` has no capture socket (set `capture` on it)")
            }
            (NodeBody::Proxy { .. }, Some(other)) => format!(
                "a proxy has sides `frontend`, `backend` and, with `capture`, `capture`; not `{other}`"
            ),
            (NodeBody::Proxy { .. }, None) => match from_type {
                SocketType::Pub | SocketType::Xpub => {
                    return Some(Side::Proxy(ProxySide::Frontend));
                }
                SocketType::Sub | SocketType::Xsub => {
                    return Some(Side::Proxy(ProxySide::Backend));
                }
                other => format!(
                    "say which side of proxy `{target_name}` a {other} socket connects to: \"{target_name}.frontend\" or \"{target_name}.backend\""
                ),
            },
            (NodeBody::Program(p), _) => match program_side(target_name, &p.binds, side_name) {
                Ok(side) => return Some(side),
                Err(message) => message,
            },
            (NodeBody::Endpoint(_), Some(side)) => {
                format!("node `{target_name}` is not a proxy, so it has no side `{side}`")
            }
            (NodeBody::Endpoint(t), None) if t.bind.is_some() => return Some(Side::Bind),
            (NodeBody::Endpoint(_), None) => format!(
                "node `{target_name}` binds nothing, so there is nothing to connect to (give it `bind = \"auto\"`)"
            ),
        };
        self.error(connect.span(), message);
        None
    }
}
