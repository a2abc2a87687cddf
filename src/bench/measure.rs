//! Runs one sample of a workload and turns the subscribers' reports into a rate.
//!
//! Over ipc and tcp every end runs in its own process with its own context: the runner re-executes
//! a program (the termwatch binary) with the hidden [`ROLE_SUBCOMMAND`], talks to each role in
//! the typed [`super::protocol`] over its stdin/stdout, and kills every role when the sample
//! ends, on success or error. A role also exits by itself when its stdin closes, so none outlives
//! a killed runner. An external proxy program ([`super::external`]) takes the proxy role's place
//! for its engine. Over inproc the same roles run as threads sharing one context.
//!
//! The subscribers report when they have every message; only then is anyone torn down, so the
//! tail of a run never depends on linger (libzmq #4660 loses it over ipc at close).

use super::context::BenchContext;
use super::external::{ExternalError, ExternalProxy, Listen};
use super::protocol::{
    FromRole, ROLE_PROTOCOL_VERSION, ROLE_SUBCOMMAND, Role, ToRole, check_version, decode, encode,
};
use super::roles::{
    self, Attach, JOIN_TIMEOUT, RoleError, STALL_TIMEOUT, SubscriberReport, open_proxy,
    open_publisher, open_subscriber,
};
use super::workload::{Engine, ProxyEngine, Transport, Workload};
use crate::forwarder::ForwarderStats;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a sample may take once the data started before it is abandoned as hung.
const DATA_DEADLINE: Duration = Duration::from_secs(300);
/// How long a role may take to bind or connect.
const SETUP_DEADLINE: Duration = Duration::from_secs(10);

/// One measured run of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Data messages received, summed over the subscribers.
    pub received: u64,
    /// Data messages that should have been received, summed over the subscribers.
    pub expected: u64,
    /// From the earliest first data message to the latest last one, over all subscribers.
    pub elapsed_s: f64,
    /// Messages published per second (each reaching every subscriber); `None` when the run lost
    /// messages or had none to time.
    pub msgs_per_s: Option<f64>,
}

impl Sample {
    /// Messages that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    fn from_reports(reports: &[SubscriberReport], published: u64) -> Sample {
        let received = reports.iter().map(|r| r.received).sum();
        let expected = reports.iter().map(|r| r.expected).sum();
        let first = reports.iter().map(|r| r.first_ns).min().unwrap_or(0);
        let last = reports.iter().map(|r| r.last_ns).max().unwrap_or(0);
        let elapsed_s = last.saturating_sub(first) as f64 * 1e-9;
        let complete = received == expected && reports.iter().all(|r| r.received > 0);
        // The clock starts at the first message, so it times the other `published - 1`.
        let msgs_per_s = (complete && elapsed_s > 0.0 && published > 1)
            .then(|| (published - 1) as f64 / elapsed_s);
        Sample {
            received,
            expected,
            elapsed_s,
            msgs_per_s,
        }
    }
}

/// Why a sample could not be measured (a lossy sample is not an error: see [`Sample::lost`]).
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A role (thread or process) failed.
    #[error("{role}: {source}")]
    Role {
        /// Which role.
        role: String,
        /// What it failed at.
        source: RoleError,
    },
    /// A role process could not be started or talked to.
    #[error("{role}: {action}: {source}")]
    Io {
        /// Which role.
        role: String,
        /// What the runner was doing.
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A role process exited or said something unexpected.
    #[error("{role}: {problem}{}", stderr_suffix(.stderr))]
    Protocol {
        /// Which role.
        role: String,
        /// What went wrong.
        problem: String,
        /// What the role wrote to stderr.
        stderr: String,
    },
    /// The context for an inproc sample could not be created.
    #[error("creating the inproc context: {0}")]
    Context(zmq::Error),
    /// An external proxy program misbehaved.
    #[error(transparent)]
    External(#[from] ExternalError),
    /// The workload cannot be measured as asked.
    #[error("{0}")]
    Unsupported(String),
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(" (its stderr: {trimmed})")
    }
}

/// The test-only slowdown: every subscriber of the throttled samples waits so that their rate
/// drops by `percent`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Throttle {
    /// How much lower the rate gets (0: no throttle).
    pub percent: u8,
    /// Only samples of this engine; every sample when `None`.
    pub engine: Option<Engine>,
}

impl Throttle {
    /// The percentage for a sample of `engine`.
    fn percent_for(&self, engine: &Engine) -> u8 {
        match &self.engine {
            Some(only) if only != engine => 0,
            _ => self.percent,
        }
    }
}

/// Measures samples; owns the scratch directory for ipc endpoints (removed on drop).
pub struct Runner {
    role_program: PathBuf,
    scratch: tempfile::TempDir,
    samples_started: u64,
    throttle: Throttle,
    externals: Vec<ExternalProxy>,
}

impl Runner {
    /// A runner that starts ipc/tcp roles as `role_program __bench-role ...` and the external
    /// proxy engines from `externals`; `throttle` (tests only) makes subscribers report a lower
    /// rate.
    pub fn new(
        role_program: &Path,
        throttle: Throttle,
        externals: Vec<ExternalProxy>,
    ) -> std::io::Result<Runner> {
        Ok(Runner {
            role_program: role_program.to_path_buf(),
            scratch: tempfile::Builder::new()
                .prefix("termwatch-bench")
                .tempdir()?,
            samples_started: 0,
            throttle,
            externals,
        })
    }

    /// The scratch directory where ipc endpoints live.
    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// The throttle this runner applies (none outside tests).
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The external proxy programs this runner knows.
    pub fn externals(&self) -> &[ExternalProxy] {
        &self.externals
    }

    /// Runs `workload` once, each publisher sending `messages`.
    pub fn run(&mut self, workload: &Workload, messages: u64) -> Result<Sample, MeasureError> {
        self.samples_started += 1;
        let plan = Plan::new(self, workload, messages);
        let reports = match (&workload.transport, &workload.engine) {
            (Transport::Inproc, Engine::External(name)) => {
                return Err(MeasureError::Unsupported(format!(
                    "{}: the external proxy `{name}` cannot share the bench's inproc context; \
                     measure it over ipc or tcp",
                    workload.id()
                )));
            }
            (Transport::Inproc, _) => plan.run_in_threads()?,
            (Transport::Ipc | Transport::Tcp, engine) => {
                let middle = match engine {
                    Engine::Direct => Middle::Nothing,
                    Engine::Proxy(engine) => Middle::Role(*engine),
                    Engine::External(name) => Middle::Program(
                        self.externals
                            .iter()
                            .find(|e| &e.name == name)
                            .ok_or_else(|| {
                                MeasureError::Unsupported(format!(
                                    "no --proxy defines the engine `{name}`"
                                ))
                            })?,
                    ),
                };
                plan.run_in_processes(&self.role_program, middle)?
            }
        };
        Ok(Sample::from_reports(
            &reports,
            messages * u64::from(workload.fan.publishers),
        ))
    }
}

/// What runs between the publishers and the subscribers of a sample over processes.
enum Middle<'a> {
    /// Nothing: the publishers bind, the subscribers connect to them.
    Nothing,
    /// A proxy role process running a built-in engine.
    Role(ProxyEngine),
    /// An external proxy program.
    Program(&'a ExternalProxy),
}

/// Endpoints and parameters of one sample.
struct Plan {
    workload: Workload,
    messages: u64,
    throttle_percent: u8,
    scratch: PathBuf,
    sample: u64,
    proxy_frontend: String,
    proxy_backend: String,
    publisher_binds: Vec<String>,
}

impl Plan {
    fn new(runner: &Runner, workload: &Workload, messages: u64) -> Plan {
        let sample = runner.samples_started;
        let endpoint = |name: &str| match workload.transport {
            Transport::Inproc => format!("inproc://termwatch-bench-{sample}-{name}"),
            Transport::Ipc => format!("ipc://{}/{sample}-{name}", runner.scratch.path().display()),
            Transport::Tcp => "tcp://127.0.0.1:*".to_string(),
        };
        Plan {
            workload: workload.clone(),
            messages,
            throttle_percent: runner.throttle.percent_for(&workload.engine),
            scratch: runner.scratch.path().to_path_buf(),
            sample,
            proxy_frontend: endpoint("front"),
            proxy_backend: endpoint("back"),
            publisher_binds: (0..workload.fan.publishers)
                .map(|id| endpoint(&format!("pub{id}")))
                .collect(),
        }
    }

    fn expected_per_subscriber(&self) -> u64 {
        self.messages * u64::from(self.workload.fan.publishers)
    }

    /// Direct: every publisher binds its own endpoint.
    fn publishers_binding(&self) -> Vec<Attach> {
        self.publisher_binds
            .iter()
            .cloned()
            .map(Attach::Bind)
            .collect()
    }

    /// Through a proxy: every publisher connects to its frontend.
    fn publishers_connecting_to(&self, frontend: &str) -> Vec<Attach> {
        vec![Attach::Connect(frontend.to_string()); self.publisher_binds.len()]
    }

    fn publisher_count(&self) -> u8 {
        self.workload.fan.publishers
    }

    fn run_in_threads(&self) -> Result<Vec<SubscriberReport>, MeasureError> {
        let context = BenchContext::new().map_err(MeasureError::Context)?;
        let role_error = |role: &str| {
            let role = role.to_string();
            move |source| MeasureError::Role { role, source }
        };
        let go = AtomicBool::new(false);
        let (joined_tx, joined_rx) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            // Every exit from this closure shuts the context down first, so no thread stays
            // blocked in a socket call and the scope can join them all.
            let shutdown_guard = ShutdownOnDrop(&context);
            let mut proxy_thread = None;
            let (publisher_attach, subscriber_endpoints): (Vec<Attach>, Vec<String>) =
                if let Engine::Proxy(engine) = self.workload.engine {
                    let sockets = open_proxy(&context, &self.proxy_frontend, &self.proxy_backend)
                        .map_err(role_error("proxy"))?;
                    let attach = self.publishers_connecting_to(&sockets.frontend_endpoint);
                    let backend = vec![sockets.backend_endpoint.clone()];
                    let context = &context;
                    proxy_thread = Some(scope.spawn(move || {
                        roles::run_proxy(context, engine, sockets, &ForwarderStats::default())
                    }));
                    (attach, backend)
                } else {
                    (self.publishers_binding(), self.publisher_binds.clone())
                };
            let mut publisher_threads = Vec::new();
            for (id, attach) in publisher_attach.iter().enumerate() {
                let (mut socket, _) =
                    open_publisher(&context, attach).map_err(role_error("publisher"))?;
                let (go, size, messages) = (&go, self.workload.size, self.messages);
                publisher_threads.push(scope.spawn(move || {
                    roles::publish(&mut socket, id as u8, size, messages, go).map(|()| socket)
                }));
            }
            let mut subscriber_threads = Vec::new();
            for _ in 0..self.workload.fan.subscribers {
                let socket = open_subscriber(&context, &subscriber_endpoints)
                    .map_err(role_error("subscriber"))?;
                let joined = joined_tx.clone();
                let (publishers, expected, throttle) = (
                    self.publisher_count(),
                    self.expected_per_subscriber(),
                    self.throttle_percent,
                );
                subscriber_threads.push(scope.spawn(move || {
                    roles::subscribe(&socket, publishers, expected, throttle, || {
                        let _ = joined.send(());
                    })
                }));
            }
            let join_deadline = Instant::now() + JOIN_TIMEOUT + SETUP_DEADLINE;
            let mut joined = 0;
            while joined < subscriber_threads.len() && Instant::now() < join_deadline {
                if joined_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                    joined += 1;
                } else if subscriber_threads.iter().any(|t| t.is_finished()) {
                    break;
                }
            }
            go.store(true, Ordering::Release);
            let mut reports = Vec::new();
            for thread in subscriber_threads {
                reports.push(join_role(thread, "subscriber")?);
            }
            drop(shutdown_guard);
            for thread in publisher_threads {
                match thread.join() {
                    Ok(Ok(_socket)) => {}
                    // Blocked on a full queue when the context shut down: a lossy run, which the
                    // subscribers' counts already show.
                    Ok(Err(RoleError::Zmq {
                        source: zmq::Error::ETERM,
                        ..
                    })) => {}
                    Ok(Err(source)) => return Err(role_error("publisher")(source)),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            if let Some(thread) = proxy_thread {
                join_role(thread, "proxy")?;
            }
            Ok(reports)
        })
    }

    /// The sample over processes: the proxy role (or the external program for its engine), the
    /// publishers and the subscribers, each its own process.
    fn run_in_processes(
        &self,
        program: &Path,
        middle: Middle<'_>,
    ) -> Result<Vec<SubscriberReport>, MeasureError> {
        let mut roles = RoleProcesses::new(program);
        let mut external_proxy = None;
        let (publisher_attach, subscriber_endpoints) = match middle {
            Middle::Program(external) => {
                let (frontend, backend) = self.external_listens()?;
                let janitor = crate::guard::Janitor::get(program);
                external_proxy = Some(external.start(&frontend, &backend, janitor)?);
                (
                    self.publishers_connecting_to(&frontend.endpoint()),
                    vec![backend.endpoint()],
                )
            }
            Middle::Role(engine) => {
                let proxy = roles.spawn(
                    "proxy",
                    Role::Proxy {
                        engine,
                        frontend: self.proxy_frontend.clone(),
                        backend: self.proxy_backend.clone(),
                    },
                )?;
                let (frontend, backend) = roles.expect(
                    proxy,
                    "proxy_bound",
                    SETUP_DEADLINE,
                    |message| match message {
                        FromRole::ProxyBound { frontend, backend } => Some((frontend, backend)),
                        _ => None,
                    },
                )?;
                (self.publishers_connecting_to(&frontend), vec![backend])
            }
            // The subscribers learn the endpoints once the publishers have bound them.
            Middle::Nothing => (self.publishers_binding(), Vec::new()),
        };
        let outcome = self.run_ends(&mut roles, &publisher_attach, subscriber_endpoints);
        let Some(mut proxy) = external_proxy else {
            return outcome;
        };
        // A program that died explains whatever else went wrong; the ends go before it is asked
        // to stop, so it stops with nothing attached, like a built-in engine's process.
        let alive = proxy.check_alive();
        drop(roles);
        alive?;
        let reports = outcome?;
        proxy.stop()?;
        Ok(reports)
    }

    /// Starts the publishers and subscribers, lets them join, starts the data and collects the
    /// subscribers' reports.
    fn run_ends(
        &self,
        roles: &mut RoleProcesses,
        publisher_attach: &[Attach],
        mut subscriber_endpoints: Vec<String>,
    ) -> Result<Vec<SubscriberReport>, MeasureError> {
        let mut publishers = Vec::new();
        for (id, attach) in publisher_attach.iter().enumerate() {
            let (bind, connect) = match attach {
                Attach::Bind(endpoint) => (Some(endpoint.clone()), None),
                Attach::Connect(endpoint) => (None, Some(endpoint.clone())),
            };
            let publisher = roles.spawn(
                &format!("publisher {id}"),
                Role::Publish {
                    bind,
                    connect,
                    id: id as u8,
                    size: self.workload.size,
                    messages: self.messages,
                },
            )?;
            let endpoint = roles.expect(
                publisher,
                "publisher_bound",
                SETUP_DEADLINE,
                |message| match message {
                    FromRole::PublisherBound { endpoint } => Some(endpoint),
                    _ => None,
                },
            )?;
            if matches!(attach, Attach::Bind(_)) {
                subscriber_endpoints.push(endpoint);
            }
            publishers.push(publisher);
        }
        let mut subscribers = Vec::new();
        for index in 0..self.workload.fan.subscribers {
            subscribers.push(roles.spawn(
                &format!("subscriber {index}"),
                Role::Subscribe {
                    connect: subscriber_endpoints.clone(),
                    publishers: self.publisher_count(),
                    messages: self.expected_per_subscriber(),
                    throttle_percent: self.throttle_percent,
                },
            )?);
        }
        for &subscriber in &subscribers {
            roles.expect(
                subscriber,
                "joined",
                JOIN_TIMEOUT + SETUP_DEADLINE,
                |message| (message == FromRole::Joined).then_some(()),
            )?;
        }
        for &publisher in &publishers {
            roles.send(publisher, &ToRole::Go)?;
        }
        let mut reports = Vec::new();
        for &subscriber in &subscribers {
            let report = roles.expect(
                subscriber,
                "report",
                DATA_DEADLINE + STALL_TIMEOUT,
                |message| match message {
                    FromRole::Report { report } => Some(report),
                    _ => None,
                },
            )?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// Where an external program must listen: fresh loopback ports, or files in the scratch
    /// directory.
    fn external_listens(&self) -> Result<(Listen, Listen), MeasureError> {
        let listen = |name: &str| match self.workload.transport {
            Transport::Tcp => Listen::free_tcp_port().map_err(|source| MeasureError::Io {
                role: "proxy".to_string(),
                action: "finding a free loopback port",
                source,
            }),
            Transport::Ipc | Transport::Inproc => Ok(Listen::Ipc(
                self.scratch.join(format!("{}-{name}", self.sample)),
            )),
        };
        Ok((listen("front")?, listen("back")?))
    }
}

/// Shuts the context down when dropped.
struct ShutdownOnDrop<'a>(&'a BenchContext);

impl Drop for ShutdownOnDrop<'_> {
    fn drop(&mut self) {
        // Fails only for a context that is not live, which a borrowed one always is; a failure
        // would leave threads blocked and the scope waiting, so it is logged where it happens.
        if let Err(e) = self.0.shutdown() {
            tracing::error!("zmq_ctx_shutdown failed: {e}");
        }
    }
}

fn join_role<T>(
    thread: std::thread::ScopedJoinHandle<'_, Result<T, RoleError>>,
    role: &str,
) -> Result<T, MeasureError> {
    match thread.join() {
        Ok(outcome) => outcome.map_err(|source| MeasureError::Role {
            role: role.to_string(),
            source,
        }),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A role process, killed and reaped when dropped.
struct RoleProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The role processes of one sample and the lines they printed, per process.
struct RoleProcesses {
    program: PathBuf,
    processes: Vec<RoleProcess>,
    lines_tx: Sender<(usize, Option<String>)>,
    lines_rx: Receiver<(usize, Option<String>)>,
    pending: Vec<VecDeque<Option<String>>>,
}

impl RoleProcesses {
    fn new(program: &Path) -> RoleProcesses {
        let (lines_tx, lines_rx) = mpsc::channel();
        RoleProcesses {
            program: program.to_path_buf(),
            processes: Vec::new(),
            lines_tx,
            lines_rx,
            pending: Vec::new(),
        }
    }

    /// Starts a role and exchanges protocol versions with it.
    fn spawn(&mut self, name: &str, role: Role) -> Result<usize, MeasureError> {
        let mut command = Command::new(&self.program);
        command
            .arg(ROLE_SUBCOMMAND)
            .args(role.command_line())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::guard::tie_to_run(&mut command);
        let mut child = command.spawn().map_err(|source| MeasureError::Io {
            role: name.to_string(),
            action: "starting the role process",
            source,
        })?;
        let index = self.processes.len();
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(stdout) = child.stdout.take() {
            let lines = self.lines_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    match line {
                        Ok(line) => {
                            let _ = lines.send((index, Some(line)));
                        }
                        Err(_) => break,
                    }
                }
                let _ = lines.send((index, None));
            });
        }
        if let Some(mut pipe) = child.stderr.take() {
            let collected = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                if let Ok(mut stderr) = collected.lock() {
                    stderr.push_str(&text);
                }
            });
        }
        self.processes.push(RoleProcess {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            stderr,
        });
        self.pending.push(VecDeque::new());
        self.send(
            index,
            &ToRole::Hello {
                version: ROLE_PROTOCOL_VERSION,
            },
        )?;
        let version = self.expect(index, "hello", SETUP_DEADLINE, |message| match message {
            FromRole::Hello { version } => Some(version),
            _ => None,
        })?;
        check_version("the role", version)
            .map_err(|problem| self.protocol_error(index, problem))?;
        Ok(index)
    }

    /// Waits for the next message of role `index`, which `pick` must accept (it is called
    /// `expected` in errors).
    fn expect<T>(
        &mut self,
        index: usize,
        expected: &str,
        timeout: Duration,
        pick: impl FnOnce(FromRole) -> Option<T>,
    ) -> Result<T, MeasureError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.pending[index].pop_front() {
                let Some(line) = line else {
                    return Err(
                        self.protocol_error(index, format!("exited before saying `{expected}`"))
                    );
                };
                let message = decode::<FromRole>(&line)
                    .map_err(|problem| self.protocol_error(index, problem))?;
                return pick(message).ok_or_else(|| {
                    self.protocol_error(index, format!("said `{line}` instead of `{expected}`"))
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines_rx.recv_timeout(left) {
                Ok((from, line)) => self.pending[from].push_back(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return Err(self.protocol_error(
                        index,
                        format!("did not say `{expected}` within {timeout:?}"),
                    ));
                }
            }
        }
    }

    fn send(&mut self, index: usize, message: &ToRole) -> Result<(), MeasureError> {
        let process = &mut self.processes[index];
        let outcome = match process.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{}", encode(message)).and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        outcome.map_err(|source| MeasureError::Io {
            role: process.name.clone(),
            action: "writing to the role's stdin",
            source,
        })
    }

    fn protocol_error(&mut self, index: usize, problem: String) -> MeasureError {
        let process = &mut self.processes[index];
        // Give a dying role a moment to finish its stderr before reading it.
        if process.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let stderr = process
            .stderr
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default();
        MeasureError::Protocol {
            role: process.name.clone(),
            problem,
            stderr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(received: u64, expected: u64, first_ns: u64, last_ns: u64) -> SubscriberReport {
        SubscriberReport {
            received,
            expected,
            first_ns,
            last_ns,
        }
    }

    #[test]
    fn a_complete_sample_times_from_the_earliest_first_to_the_latest_last_message() {
        let sample = Sample::from_reports(
            &[
                report(1001, 1001, 10, 1_000_000_010),
                report(1001, 1001, 5, 500),
            ],
            1001,
        );
        assert_eq!(sample.lost(), 0);
        let rate = sample.msgs_per_s.expect("complete runs have a rate");
        assert!((rate - 1000.0 / 1.000_000_005).abs() < 1e-6, "{rate}");
    }

    #[test]
    fn a_lossy_sample_has_no_rate() {
        let sample = Sample::from_reports(&[report(900, 1000, 0, 1_000_000)], 1000);
        assert_eq!(sample.lost(), 100);
        assert_eq!(sample.msgs_per_s, None);
    }

    #[test]
    fn inproc_samples_deliver_every_message_with_every_engine() {
        use super::super::workload::Fan;
        let (done_tx, done_rx) = mpsc::channel();
        // The sample runs on its own thread so a hang fails the test instead of stalling it.
        std::thread::spawn(move || {
            let mut runner = Runner::new(
                Path::new("unused-for-inproc"),
                Throttle::default(),
                Vec::new(),
            )
            .expect("scratch dir");
            for engine in Engine::BUILT_IN {
                let workload = Workload {
                    transport: Transport::Inproc,
                    size: 16,
                    fan: Fan {
                        publishers: 2,
                        subscribers: 2,
                    },
                    engine: engine.clone(),
                };
                let sample = runner.run(&workload, 2000).map_err(|e| e.to_string());
                let _ = done_tx.send((engine, sample));
            }
        });
        for _ in Engine::BUILT_IN {
            let (engine, sample) = done_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("an inproc sample finishes within 60 s");
            let sample = sample.expect("inproc sample");
            assert_eq!((sample.received, sample.lost()), (8000, 0), "{engine}");
            assert!(sample.msgs_per_s.is_some());
        }
    }
}
