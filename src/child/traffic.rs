//! The traffic phase: the slow-joiner wait (publishers send probes until every subscriber they
//! reach has seen one), then every node's sends, then the wait for every `expect_messages`.
//! Anything that cannot complete is left to the watchdog, which turns it into a hang at
//! `traffic` with the counters that show how far it got.

use std::time::Duration;

use super::fail;
use super::nodes::{NodeHandle, send_messages};
use super::registry::{NodeCounters, Registry, TrafficStage};
use super::topology::Topology;
use super::zmq_ctx::{PROBE, message_frames};
use crate::scenario::{
    BindSpec, ConnectTarget, Mode, NodeBody, NodeKindName, OpenAt, ProxySide, Scenario, Side,
};

/// How often the phase re-checks counters; short, since a clean run takes milliseconds.
const CHECK_INTERVAL: Duration = Duration::from_micros(200);
/// Interval between probe rounds.
const PROBE_INTERVAL: Duration = Duration::from_millis(1);

/// Which publishers must probe, and which subscribers must see a probe.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProbePlan {
    /// Publishers that reach at least one waited-for subscriber.
    pub publishers: Vec<usize>,
    /// Subscribers (blocking, poll or async) that some publisher reaches with a matching topic.
    pub subscribers: Vec<usize>,
}

/// Whether data from publisher `p` reaches subscriber `s`: directly (one binds, the other
/// connects to it), through one proxy (publisher on its frontend, subscriber on its backend), or
/// through one program (each connected to a different one of its binds: the program is taken to
/// forward, as a proxy does).
fn reaches(scenario: &Scenario, p: usize, s: usize) -> bool {
    let (Some(pe), Some(se)) = (scenario.nodes[p].endpoint(), scenario.nodes[s].endpoint()) else {
        return false;
    };
    let connects_to = |from: &Option<ConnectTarget>, node: usize, side: Side| matches!(from, Some(ConnectTarget::Node { node: n, side: sd }) if *n == node && *sd == side);
    let explicit_match = |a: &Option<ConnectTarget>, b: &Option<BindSpec>| matches!((a, b), (Some(ConnectTarget::Explicit(x)), Some(BindSpec::Explicit(y))) if x == y);
    let program_bind = |c: &Option<ConnectTarget>| match c {
        Some(ConnectTarget::Node {
            node,
            side: Side::Program(bind),
        }) => Some((*node, *bind)),
        _ => None,
    };
    if connects_to(&pe.connect, s, Side::Bind) || connects_to(&se.connect, p, Side::Bind) {
        return true;
    }
    if explicit_match(&pe.connect, &se.bind) || explicit_match(&se.connect, &pe.bind) {
        return true;
    }
    if let (Some((x, a)), Some((y, b))) = (program_bind(&pe.connect), program_bind(&se.connect))
        && x == y
        && a != b
    {
        return true;
    }
    scenario.nodes.iter().enumerate().any(|(x, node)| {
        matches!(node.body, NodeBody::Proxy { .. })
            && connects_to(&pe.connect, x, Side::Proxy(ProxySide::Frontend))
            && connects_to(&se.connect, x, Side::Proxy(ProxySide::Backend))
    })
}

/// Computes the slow-joiner wait of the format's contract.
pub fn probe_plan(scenario: &Scenario) -> ProbePlan {
    let of_kind = |kind| {
        scenario
            .nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.kind == kind && n.open == OpenAt::Setup)
            .map(|(i, _)| i)
    };
    let mut plan = ProbePlan::default();
    for s in of_kind(NodeKindName::Subscriber) {
        let Some(se) = scenario.nodes[s].endpoint() else {
            continue;
        };
        if se.mode == Mode::Idle {
            continue;
        }
        let matching: Vec<usize> = of_kind(NodeKindName::Publisher)
            .filter(|&p| {
                let topic = scenario.nodes[p]
                    .endpoint()
                    .map_or("", |e| e.topic.as_str());
                se.subscribe
                    .iter()
                    .any(|prefix| topic.starts_with(prefix.as_str()))
                    && reaches(scenario, p, s)
            })
            .collect();
        if !matching.is_empty() {
            plan.subscribers.push(s);
        }
        for p in matching {
            if !plan.publishers.contains(&p) {
                plan.publishers.push(p);
            }
        }
    }
    plan.publishers.sort_unstable();
    plan
}

/// Runs the traffic phase on the main thread; it ends once every socket monitor has caught up.
pub fn run(scenario: &Scenario, registry: &Registry, topology: &mut Topology) {
    let plan = probe_plan(scenario);
    registry.traffic_stage(TrafficStage::Probing {
        publishers: plan.publishers.clone(),
        subscribers: plan.subscribers.clone(),
    });
    let probes: Vec<(usize, Vec<Vec<u8>>)> = plan
        .publishers
        .iter()
        .filter_map(|&p| {
            let e = scenario.nodes[p].endpoint()?;
            Some((p, message_frames(e.socket_type, &e.topic, PROBE, 1)))
        })
        .collect();
    let counters = &topology.counters;
    while !plan
        .subscribers
        .iter()
        .all(|&s| NodeCounters::get(&counters[s].probes_received) > 0)
    {
        for (p, frames) in &probes {
            let Some(socket) = topology.main_socket(*p) else {
                continue;
            };
            match socket.send_multipart(frames.iter().map(Vec::as_slice), zmq::DONTWAIT) {
                Ok(()) => {
                    NodeCounters::bump(&counters[*p].probes_sent);
                }
                Err(zmq::Error::EAGAIN) => {}
                Err(e) => fail(format!(
                    "probe from `{}` failed: {e}",
                    scenario.nodes[*p].name
                )),
            }
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
    registry.traffic_stage(TrafficStage::Sending);
    topology.go.open();
    for (i, node) in scenario.nodes.iter().enumerate() {
        let Some(e) = node.endpoint() else { continue };
        if e.send == 0 {
            continue;
        }
        if let NodeHandle::Main(sockets) = &topology.nodes[i]
            && let Some(owned) = sockets.first()
            && let Err(err) = send_messages(&owned.socket, e, &counters[i], || Ok(()))
        {
            fail(format!("node `{}`: send failed: {err}", node.name));
        }
    }
    registry.traffic_stage(TrafficStage::Delivering);
    let done = |i: usize| {
        let Some(e) = scenario.nodes[i].endpoint() else {
            return true;
        };
        NodeCounters::get(&counters[i].sent) >= e.send
            && e.expect_messages
                .is_none_or(|n| NodeCounters::get(&counters[i].received) >= n)
    };
    while !(0..scenario.nodes.len()).all(done) {
        std::thread::sleep(CHECK_INTERVAL);
    }
    for monitor in &mut topology.monitors {
        monitor.catch_up();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse(Path::new("t.toml"), text, "t").expect("valid scenario")
    }

    #[test]
    fn probes_cover_subscribers_reached_through_a_proxy_with_a_matching_topic() {
        let s = scenario(
            r#"
            expect = "clean"
            [[nodes]]
            name = "bus"
            kind = "proxy"
            [[nodes]]
            name = "pub"
            kind = "publisher"
            connect = "bus"
            topic = "weather.eu"
            [[nodes]]
            name = "eu"
            kind = "subscriber"
            connect = "bus"
            subscribe = ["weather"]
            [[nodes]]
            name = "us"
            kind = "subscriber"
            connect = "bus"
            subscribe = ["sports"]
            [[nodes]]
            name = "idle"
            kind = "subscriber"
            mode = "idle"
            connect = "bus"
            "#,
        );
        assert_eq!(
            probe_plan(&s),
            ProbePlan {
                publishers: vec![1],
                subscribers: vec![2]
            }
        );
    }

    #[test]
    fn a_program_between_two_of_its_binds_counts_as_a_forwarder() {
        let s = scenario(
            r#"
            expect = "clean"
            [[nodes]]
            name = "app"
            kind = "program"
            command = ["x"]
            binds = ["frontend", "backend"]
            [[nodes]]
            name = "pub"
            kind = "publisher"
            connect = "app.frontend"
            [[nodes]]
            name = "sub"
            kind = "subscriber"
            connect = "app.backend"
            [[nodes]]
            name = "same"
            kind = "subscriber"
            connect = "app.frontend"
            "#,
        );
        assert_eq!(
            probe_plan(&s),
            ProbePlan {
                publishers: vec![1],
                subscribers: vec![2]
            }
        );
    }

    #[test]
    fn direct_links_count_in_both_directions() {
        let s = scenario(
            r#"
            expect = "clean"
            [[nodes]]
            name = "pub"
            kind = "publisher"
            bind = "auto"
            [[nodes]]
            name = "sub"
            kind = "subscriber"
            connect = "pub"
            "#,
        );
        assert_eq!(
            probe_plan(&s),
            ProbePlan {
                publishers: vec![0],
                subscribers: vec![1]
            }
        );
    }
}
