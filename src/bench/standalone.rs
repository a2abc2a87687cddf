//! `termwatch proxy`: a standalone bus proxy — XSUB bound on the frontend, XPUB bound on the
//! backend, one of the bench's engines between them — for production, for tests, and as an
//! external engine of `termwatch bench --proxy`.
//!
//! It stops cleanly on SIGINT or SIGTERM: the signal shuts the context down, the engine returns,
//! both sockets are closed, then the context is terminated (nothing is left open for
//! `zmq_ctx_term` to wait on), the socket files of its `ipc://` endpoints are removed, and it
//! exits 0. The signals are blocked in every thread but the
//! one that waits for them, so no socket call is cut short by `EINTR`. Sockets have the bench's settings (HWM 1000 both
//! ways, `ZMQ_XPUB_NODROP` on the XPUB), so it measures exactly like the built-in engines.

use super::context::BenchContext;
use super::roles::{self, ProxySockets, RoleError};
use super::workload::ProxyEngine;
use crate::errors::Ending;
use crate::forwarder::ForwarderStats;
use anyhow::Context as _;
use nix::sys::signal::{SigSet, Signal};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::io::Write;
use std::sync::atomic::Ordering;

/// `termwatch proxy`: run a bus proxy until SIGINT or SIGTERM.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Endpoint the XSUB binds, where publishers connect (e.g. tcp://*:5555).
    #[arg(long)]
    pub frontend: String,
    /// Endpoint the XPUB binds, where subscribers connect (e.g. tcp://*:5556).
    #[arg(long)]
    pub backend: String,
    /// What forwards between them.
    #[arg(long, value_enum, default_value_t = ProxyEngine::ZmqProxy)]
    pub engine: ProxyEngine,
    /// Print what the forwarder forwarded when it stops (needs --engine forwarder).
    #[arg(long)]
    pub counts: bool,
    /// Test only: forward like zmq_proxy but drop every Nth message from the frontend, to check
    /// that the bench reports a lossy proxy.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub drop_every: Option<u64>,
}

/// Runs `termwatch proxy`: 0 once stopped by a signal, 2 on bad flags or an endpoint it cannot
/// bind.
pub fn run_proxy_command(args: &ProxyArgs) -> anyhow::Result<Ending> {
    if args.counts && args.engine != ProxyEngine::Forwarder {
        eprintln!(
            "termwatch proxy: --counts needs --engine forwarder ({} does not count)",
            args.engine
        );
        return Ok(Ending::BadInput);
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing the signal handler")?;
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGINT);
    stop_signals.add(Signal::SIGTERM);
    // Blocked before the context exists: libzmq's threads inherit the mask.
    stop_signals
        .thread_block()
        .context("blocking SIGINT and SIGTERM")?;
    let context = BenchContext::new().context("creating the proxy's context")?;
    let sockets = roles::open_proxy(&context, &args.frontend, &args.backend)?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "termwatch proxy: {} forwarding {} -> {}",
            args.engine, sockets.frontend_endpoint, sockets.backend_endpoint
        )
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    }
    let bound = [
        sockets.frontend_endpoint.clone(),
        sockets.backend_endpoint.clone(),
    ];
    let stats = ForwarderStats::default();
    let handle = signals.handle();
    let outcome = std::thread::scope(|scope| {
        let context = &context;
        scope.spawn(move || {
            // A signal that came while blocked is delivered here, now.
            if stop_signals.thread_unblock().is_ok() && signals.forever().next().is_some() {
                // Fails only for a context that is not live, which a borrowed one is.
                if let Err(error) = context.shutdown() {
                    eprintln!("termwatch proxy: cannot stop the engine: {error}");
                }
            }
        });
        let outcome = match args.drop_every {
            Some(every) => drop_every(sockets, every),
            None => roles::run_proxy(context, args.engine, sockets, &stats),
        };
        // The engine returned (stopped by a signal, or failed): end the signal thread either way.
        handle.close();
        outcome
    });
    drop(context);
    for endpoint in &bound {
        remove_ipc_file(endpoint);
    }
    outcome?;
    if args.counts {
        println!(
            "termwatch proxy: forwarded {} messages ({} bytes) and {} subscriptions",
            stats.messages.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed),
            stats.subscriptions.load(Ordering::Relaxed)
        );
    }
    Ok(Ending::Success)
}

/// Removes the socket file of an `ipc://` endpoint this process bound: libzmq leaves it behind
/// when the socket closes (it removes only the files of wildcard binds).
fn remove_ipc_file(endpoint: &str) {
    if let Some(path) = endpoint.strip_prefix("ipc://")
        && !path.starts_with('@')
    {
        let _ = std::fs::remove_file(path);
    }
}

/// The test-only lossy engine: subscriptions go backend → frontend, messages frontend → backend
/// except every `every`-th; returns once the context is shut down.
fn drop_every(sockets: ProxySockets, every: u64) -> Result<(), RoleError> {
    let ProxySockets {
        frontend, backend, ..
    } = sockets;
    let forward = || -> Result<(), zmq::Error> {
        let mut received = 0u64;
        loop {
            let mut items = [
                frontend.as_poll_item(zmq::POLLIN),
                backend.as_poll_item(zmq::POLLIN),
            ];
            zmq::poll(&mut items, -1)?;
            let (front_ready, back_ready) = (items[0].is_readable(), items[1].is_readable());
            if front_ready {
                let message = frontend.recv_multipart(0)?;
                received += 1;
                if !received.is_multiple_of(every) {
                    backend.send_multipart(message, 0)?;
                }
            }
            if back_ready {
                frontend.send_multipart(backend.recv_multipart(0)?, 0)?;
            }
        }
    };
    match forward() {
        Ok(()) | Err(zmq::Error::ETERM) => Ok(()),
        Err(source) => Err(RoleError::Zmq {
            step: "forwarding with drops".into(),
            source,
        }),
    }
}
