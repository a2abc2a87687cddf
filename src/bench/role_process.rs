//! The role side of an ipc/tcp sample: `termwatch __bench-role proxy|publish|subscribe`, one
//! process per role, talking [`super::protocol`] with the bench over its stdin and stdout.
//!
//! A role ends when its stdin closes (the bench is done with it, or died): a watcher thread
//! `_exit`s the process at once, whatever it is doing, so no role outlives its bench.

use super::context::BenchContext;
use super::protocol::{
    FromRole, ROLE_PROTOCOL_VERSION, Role, RoleArgs, ToRole, check_version, decode, encode,
};
use super::roles::{self, Attach};
use crate::errors::{Ending, exit_code};
use anyhow::Context as _;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the stdin watcher when the bench says [`ToRole::Go`].
static GO: AtomicBool = AtomicBool::new(false);

/// Ends the process at once with `code`.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process without running destructors or atexit handlers, which is
    // what a role wants: its sockets and context go with the process.
    unsafe { libc::_exit(code) }
}

/// Reads the bench's messages on stdin: the first must be a [`ToRole::Hello`] of this protocol
/// version, [`ToRole::Go`] starts the publishers; end of input ends the process.
fn watch_stdin() {
    std::thread::spawn(|| {
        let mut greeted = false;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let problem = match decode::<ToRole>(&line) {
                Ok(ToRole::Hello { version }) => check_version("the bench", version).err(),
                Ok(ToRole::Go) if greeted => {
                    GO.store(true, Ordering::Release);
                    None
                }
                Ok(ToRole::Go) => Some("the bench said `go` before `hello`".to_string()),
                Err(problem) => Some(problem),
            };
            if let Some(problem) = problem {
                eprintln!("termwatch __bench-role: {problem}");
                exit_now(exit_code(Ok(Ending::BadInput)));
            }
            greeted = true;
        }
        exit_now(exit_code(Ok(Ending::Success)))
    });
}

fn say(message: &FromRole) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", encode(message))
        .and_then(|()| stdout.flush())
        .context("writing to the bench")
}

/// Waits for the stdin watcher to end the process.
fn wait_for_teardown() -> ! {
    loop {
        std::thread::park();
    }
}

/// Runs one role of a benchmark sample; it ends when its stdin closes (exit 0), or on an error
/// (returned, after which the caller exits 2).
pub fn run_bench_role(args: &RoleArgs) -> anyhow::Result<Ending> {
    say(&FromRole::Hello {
        version: ROLE_PROTOCOL_VERSION,
    })?;
    watch_stdin();
    let context = BenchContext::new().context("creating the role's context")?;
    match &args.role {
        Role::Proxy {
            engine,
            frontend,
            backend,
        } => {
            let sockets = roles::open_proxy(&context, frontend, backend)?;
            say(&FromRole::ProxyBound {
                frontend: sockets.frontend_endpoint.clone(),
                backend: sockets.backend_endpoint.clone(),
            })?;
            roles::run_proxy(&context, *engine, sockets, &Default::default())?;
        }
        Role::Publish {
            bind,
            connect,
            id,
            size,
            messages,
        } => {
            let attach = match (bind, connect) {
                (Some(endpoint), _) => Attach::Bind(endpoint.clone()),
                (None, Some(endpoint)) => Attach::Connect(endpoint.clone()),
                (None, None) => anyhow::bail!("the publisher needs --bind or --connect"),
            };
            let (mut socket, endpoint) = roles::open_publisher(&context, &attach)?;
            say(&FromRole::PublisherBound { endpoint })?;
            roles::publish(&mut socket, *id, *size, *messages, &GO)?;
            // The socket stays open until the bench is done: closing it could drop the tail.
            wait_for_teardown();
        }
        Role::Subscribe {
            connect,
            publishers,
            messages,
            throttle_percent,
        } => {
            let socket = roles::open_subscriber(&context, connect)?;
            let mut joined = Ok(());
            let report =
                roles::subscribe(&socket, *publishers, *messages, *throttle_percent, || {
                    joined = say(&FromRole::Joined);
                })?;
            joined?;
            say(&FromRole::Report { report })?;
            wait_for_teardown();
        }
    }
    wait_for_teardown()
}
