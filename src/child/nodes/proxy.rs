//! The proxy node's thread: `zmq_proxy`, `zmq_proxy_steerable` or the harness's forwarder
//! between an XSUB frontend and an XPUB backend.

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};

use crate::forwarder::{ForwarderStats, run_forwarder};
use crate::scenario::Engine;

use super::NodeEnv;
use super::owned::OwnedSocket;
use super::threaded::{Command, LoopEnd, ThreadedNode, finish_loop, spawn_node_thread, unexpected};

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
    /// Where the proxy writes a copy of every message it forwards, bound.
    pub capture: Option<OwnedSocket>,
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
        mut capture,
        ..
    } = sockets;
    let purpose = format!("node `{}` (proxy, {engine})", env.name);
    let thread = spawn_node_thread(&env.clone(), purpose, move || {
        let (front, back) = (&mut frontend.socket, &mut backend.socket);
        let result = match (engine, &mut control, &mut capture) {
            (Engine::Steerable, Some(control), Some(capture)) => zmq::proxy_steerable_with_capture(
                front,
                back,
                &mut capture.socket,
                &mut control.socket,
            ),
            (Engine::Steerable, Some(control), None) => {
                zmq::proxy_steerable(front, back, &mut control.socket)
            }
            (Engine::Forwarder, _, _) => run_forwarder(front, back, &stats),
            (_, _, Some(capture)) => zmq::proxy_with_capture(front, back, &mut capture.socket),
            _ => zmq::proxy(front, back),
        };
        let end = match result {
            Ok(()) => LoopEnd::Terminated,
            Err(zmq::Error::ETERM) => LoopEnd::Eterm("proxy"),
            Err(e) => unexpected(&env, "proxy", e),
        };
        let mut owned = vec![frontend, backend];
        owned.extend(control);
        owned.extend(capture);
        finish_loop(
            &env,
            end,
            owned,
            inbox,
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
