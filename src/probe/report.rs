//! The probe's report in plain words: for every term in progress, how long it has waited and
//! which sockets hold it (open, or closed but lingering with messages sent), each with its
//! type, endpoints, linger, creating and closing thread (and whether that thread has ended),
//! and its last call. What the probe could not see is said too.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};
use std::fs;
use std::io::Read;
use std::time::Duration;

use serde::Serialize;

use super::record::{EndpointAction, ThreadName};
use super::slots::LastCall;
use super::state::{Origin, ProbeState, ProcessState, SocketState, ThreadRef};

/// Where a process's libzmq is, for a process that made no call the probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Linkage {
    /// A shared libzmq is mapped: the program just made no call yet.
    Shared,
    /// The executable contains libzmq itself: its calls never reach the probe.
    Static,
    /// Neither could be found.
    NotFound,
}

/// One live process as /proc shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveProcess {
    /// Its threads now: tid → comm.
    pub threads: BTreeMap<i32, String>,
    /// Where its libzmq is (only looked up for a process that made no call).
    pub libzmq: Option<Linkage>,
}

/// The processes the probe heard from, as they are now, plus better thread names where a
/// stack tool knows them (py-spy names Python threads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessView {
    /// Live processes by pid; absent = exited.
    pub live: BTreeMap<i32, LiveProcess>,
    /// Thread names by (pid, tid), preferred over kernel names (not over Python names the
    /// probe recorded).
    pub names: BTreeMap<(i32, i32), String>,
}

impl ProcessView {
    /// Reads /proc for every process in `state` and for `root`.
    pub fn read(state: &ProbeState, root: i32) -> ProcessView {
        let mut view = ProcessView::default();
        let pids = state.processes.keys().copied().chain(std::iter::once(root));
        for pid in pids {
            let Some(threads) = live_threads(pid) else {
                continue;
            };
            let used = state
                .processes
                .get(&pid)
                .is_some_and(ProcessState::used_zmq);
            let libzmq = (!used).then(|| linkage(pid));
            view.live.insert(pid, LiveProcess { threads, libzmq });
        }
        view
    }

    /// Names thread `tid` of process `pid` (e.g. `Thread-2 (run_forever)` from py-spy).
    pub fn name_thread(&mut self, pid: i32, tid: i32, name: impl Into<String>) {
        self.names.insert((pid, tid), name.into());
    }
}

/// Threads of a live (not zombie) process.
fn live_threads(pid: i32) -> Option<BTreeMap<i32, String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some(Some('Z' | 'X')) | None) {
        return None;
    }
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(
        tasks
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .map(|tid| {
                let comm =
                    fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
                (tid, comm.trim_end().to_owned())
            })
            .collect(),
    )
}

/// Where process `pid`'s libzmq is.
fn linkage(pid: i32) -> Linkage {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    if maps.lines().any(|l| {
        l.rsplit('/')
            .next()
            .is_some_and(|f| f.starts_with("libzmq"))
    }) {
        return Linkage::Shared;
    }
    match fs::File::open(format!("/proc/{pid}/exe")) {
        Ok(file) if contains(&file, b"zmq_ctx_new") => Linkage::Static,
        _ => Linkage::NotFound,
    }
}

/// Whether `needle` occurs in what `reader` yields (read in chunks).
fn contains(mut reader: impl Read, needle: &[u8]) -> bool {
    let finder = memchr::memmem::Finder::new(needle);
    let mut buf = vec![0u8; 1 << 20];
    let mut kept = 0;
    loop {
        let n = match reader.read(&mut buf[kept..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let filled = kept + n;
        if finder.find(&buf[..filled]).is_some() {
            return true;
        }
        kept = (needle.len() - 1).min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

/// Whether a thread still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadStatus {
    /// It is in /proc now.
    Running,
    /// Its process runs, it does not.
    Ended,
    /// Its process has exited.
    ProcessExited,
}

/// A thread, described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadDesc {
    /// Kernel thread id.
    pub tid: i32,
    /// Best known name.
    pub name: String,
    /// The process's main thread.
    pub main: bool,
    /// Running or not.
    pub status: ThreadStatus,
}

impl Display for ThreadDesc {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let which = if self.main {
            "the main thread"
        } else {
            "thread"
        };
        write!(f, "{which} `{}` (tid {}", self.name, self.tid)?;
        match self.status {
            ThreadStatus::Running => f.write_str(")"),
            ThreadStatus::Ended => f.write_str(", ended)"),
            ThreadStatus::ProcessExited => f.write_str(", process exited)"),
        }
    }
}

/// A socket's last call, described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallDesc {
    /// The call, e.g. `zmq_getsockopt(EVENTS)`.
    pub call: String,
    /// Entered and not returned.
    pub in_flight: bool,
    /// Its error, e.g. `ETERM`.
    pub error: Option<String>,
    /// How long ago it was entered (in flight) or returned.
    #[serde(rename = "ago_ms", serialize_with = "as_ms")]
    pub ago: Duration,
}

impl Display for CallDesc {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ago = seconds(self.ago);
        match (&self.error, self.in_flight) {
            (_, true) => write!(f, "in {} for {ago}, not returned", self.call),
            (Some(error), false) => {
                write!(f, "last call {} failed with {error} {ago} ago", self.call)
            }
            (None, false) => write!(f, "last call {} {ago} ago", self.call),
        }
    }
}

/// Why a socket holds a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holding {
    /// Never closed.
    Open,
    /// Closed with a linger that has not run out, after sending messages.
    Lingering,
}

/// A socket, described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketDesc {
    /// Its type, e.g. `SUB`.
    pub kind: String,
    /// Why it holds the term.
    pub holding: Holding,
    /// Creating thread.
    pub created_by: ThreadDesc,
    /// Closing thread.
    pub closed_by: Option<ThreadDesc>,
    /// `bound to …` / `connected to …`, still in place.
    pub endpoints: Vec<String>,
    /// Effective ZMQ_LINGER (ms, -1 = infinite).
    pub linger: Option<i32>,
    /// Last call.
    pub last_call: Option<CallDesc>,
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
}

impl Display for SocketDesc {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} socket created by {}", self.kind, self.created_by)?;
        if let Some(closer) = &self.closed_by {
            write!(f, ", closed by {closer}")?;
        }
        for endpoint in &self.endpoints {
            write!(f, ", {endpoint}")?;
        }
        match self.linger {
            Some(-1) => f.write_str(", linger -1 (infinite)")?,
            Some(ms) => write!(f, ", linger {ms}")?,
            None => f.write_str(", linger unknown")?,
        }
        if let Some(call) = &self.last_call {
            write!(f, ", {call}")?;
        }
        write!(f, "; {} sent, {} received", self.sent, self.received)?;
        if self.holding == Holding::Lingering {
            f.write_str(": term waits until its unsent messages are delivered")?;
        }
        Ok(())
    }
}

/// A term in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermDesc {
    /// The context's address.
    pub context: String,
    /// zmq_ctx_term / zmq_ctx_destroy / zmq_term.
    pub function: &'static str,
    /// The calling thread.
    pub thread: ThreadDesc,
    /// How long it has waited.
    #[serde(rename = "waited_ms", serialize_with = "as_ms")]
    pub waited: Duration,
    /// What holds it.
    pub holding: Vec<SocketDesc>,
}

/// One process's part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessReport {
    /// Process id.
    pub pid: i32,
    /// Its executable, when known.
    pub exe: Option<String>,
    /// Whether the probe was loaded in it.
    pub probed: bool,
    /// Set when it made no libzmq call the probe saw: where its libzmq is.
    pub unseen_libzmq: Option<Linkage>,
    /// Terms in progress.
    pub terms: Vec<TermDesc>,
    /// Open sockets of contexts no term is in progress on.
    pub open: Vec<SocketDesc>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Per process, the root first.
    pub processes: Vec<ProcessReport>,
    /// Records the probe dropped.
    pub lost: u64,
}

fn as_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl ProbeReport {
    /// The report at `now_ns` (CLOCK_MONOTONIC) for the program whose process is `root`.
    pub fn new(state: &ProbeState, view: &ProcessView, root: i32, now_ns: u64) -> ProbeReport {
        let ago = |ns: u64| Duration::from_nanos(now_ns.saturating_sub(ns));
        // A Python name the probe recorded names the thread as it was then; a stack tool's
        // name (py-spy's, for a thread still running) beats the kernel's.
        let thread = |pid: i32, t: &ThreadRef| ThreadDesc {
            tid: t.tid,
            name: match &t.name {
                ThreadName::Python(name) => name.clone(),
                ThreadName::Kernel(name) => view.names.get(&(pid, t.tid)).unwrap_or(name).clone(),
            },
            main: t.tid == pid,
            status: match view.live.get(&pid) {
                None => ThreadStatus::ProcessExited,
                Some(live) if live.threads.contains_key(&t.tid) => ThreadStatus::Running,
                Some(_) => ThreadStatus::Ended,
            },
        };
        let socket = |pid: i32, s: &SocketState, holding| SocketDesc {
            kind: s.kind.to_string(),
            holding,
            created_by: thread(pid, &s.created_by),
            closed_by: s.closed.as_ref().map(|c| thread(pid, &c.thread)),
            endpoints: s
                .endpoints
                .iter()
                .filter(|e| !e.removed)
                .map(|e| match e.action {
                    EndpointAction::Bind => format!("bound to {}", e.endpoint),
                    _ => format!("connected to {}", e.endpoint),
                })
                .collect(),
            linger: s.linger,
            last_call: s.last.map(|last| describe_call(last, ago(last.ns))),
            sent: s.sent,
            received: s.received,
        };
        let holding = |s: &SocketState| match &s.closed {
            None => Some(Holding::Open),
            Some(c) => {
                let linger_left = match c.linger {
                    Some(-1) => true,
                    Some(ms) if ms > 0 => ago(c.ns) < Duration::from_millis(ms as u64),
                    _ => false,
                };
                (linger_left && s.sent > 0).then_some(Holding::Lingering)
            }
        };
        let mut processes: Vec<ProcessReport> = state
            .processes
            .values()
            .map(|p| {
                let terms: Vec<TermDesc> = p
                    .contexts
                    .iter()
                    .flat_map(|c| {
                        c.terms
                            .iter()
                            .filter(|t| t.returned.is_none())
                            .map(move |t| (c, t))
                    })
                    .map(|(c, t)| TermDesc {
                        context: format!("{:#x}", c.addr),
                        function: t.function.name(),
                        thread: thread(p.pid, &t.thread),
                        waited: ago(t.entered_ns),
                        holding: p
                            .sockets
                            .iter()
                            .filter(|s| s.ctx == c.addr && s.created_ns >= c.created_ns)
                            .filter_map(|s| holding(s).map(|h| socket(p.pid, s, h)))
                            .collect(),
                    })
                    .collect();
                let terming: Vec<u64> = p
                    .contexts
                    .iter()
                    .filter(|c| c.terms.iter().any(|t| t.returned.is_none()))
                    .map(|c| c.addr)
                    .collect();
                ProcessReport {
                    pid: p.pid,
                    exe: match &p.origin {
                        Origin::Started { exe } if !exe.is_empty() => Some(exe.clone()),
                        _ => None,
                    },
                    probed: true,
                    unseen_libzmq: view
                        .live
                        .get(&p.pid)
                        .and_then(|l| l.libzmq)
                        .filter(|_| !p.used_zmq()),
                    terms,
                    open: p
                        .sockets
                        .iter()
                        .filter(|s| s.closed.is_none() && !terming.contains(&s.ctx))
                        .map(|s| socket(p.pid, s, Holding::Open))
                        .collect(),
                }
            })
            .collect();
        if !state.processes.contains_key(&root) {
            processes.push(ProcessReport {
                pid: root,
                exe: fs::read_link(format!("/proc/{root}/exe"))
                    .ok()
                    .map(|p| p.display().to_string()),
                probed: false,
                unseen_libzmq: view.live.get(&root).and_then(|l| l.libzmq),
                terms: Vec::new(),
                open: Vec::new(),
            });
        }
        processes.sort_by_key(|p| (p.pid != root, p.pid));
        ProbeReport {
            processes,
            lost: state.lost,
        }
    }

    /// Whether any term is in progress.
    pub fn term_waiting(&self) -> bool {
        self.processes.iter().any(|p| !p.terms.is_empty())
    }
}

fn describe_call(last: LastCall, ago: Duration) -> CallDesc {
    use super::wire::Call;
    let detail = match last.call {
        Call::Getsockopt | Call::Setsockopt => {
            let option = i32::from(last.detail);
            Some(option_name(option).map_or_else(|| option.to_string(), str::to_owned))
        }
        Call::Poll => Some(format!("{} items", last.detail)),
        _ => None,
    };
    CallDesc {
        call: match detail {
            Some(detail) => format!("{}({detail})", last.call.name()),
            None => last.call.name().to_owned(),
        },
        in_flight: last.in_flight,
        error: last.errno.map(errno_name),
        ago,
    }
}

/// Name of a socket option, for the common ones.
fn option_name(option: i32) -> Option<&'static str> {
    Some(match option {
        5 => "ROUTING_ID",
        6 => "SUBSCRIBE",
        7 => "UNSUBSCRIBE",
        13 => "RCVMORE",
        14 => "FD",
        15 => "EVENTS",
        16 => "TYPE",
        17 => "LINGER",
        23 => "SNDHWM",
        24 => "RCVHWM",
        27 => "RCVTIMEO",
        28 => "SNDTIMEO",
        32 => "LAST_ENDPOINT",
        39 => "IMMEDIATE",
        _ => return None,
    })
}

/// Name of an errno value, libzmq's own included.
fn errno_name(errno: i32) -> String {
    const ZMQ_HAUSNUMERO: i32 = 156_384_712;
    match errno {
        libc::EAGAIN => "EAGAIN".into(),
        libc::EINTR => "EINTR".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOTSOCK => "ENOTSOCK".into(),
        libc::EHOSTUNREACH => "EHOSTUNREACH".into(),
        n if n == ZMQ_HAUSNUMERO + 51 => "EFSM".into(),
        n if n == ZMQ_HAUSNUMERO + 53 => "ETERM".into(),
        n => format!("errno {n}"),
    }
}

impl Display for ProbeReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for p in &self.processes {
            let exe = p
                .exe
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            if !p.probed {
                writeln!(
                    f,
                    "process {}{exe}: the probe was not loaded (a static executable, a setuid \
                     one, or LD_PRELOAD removed): its sockets cannot be listed",
                    p.pid
                )?;
                continue;
            }
            match p.unseen_libzmq {
                Some(Linkage::Static) => writeln!(
                    f,
                    "process {}{exe}: libzmq is linked statically into the executable, so the \
                     probe sees none of its calls; link it against a shared libzmq to make its \
                     sockets visible (the Rust zmq crate: build zmq-sys with a system libzmq \
                     instead of the vendored one)",
                    p.pid
                )?,
                Some(Linkage::NotFound) => writeln!(
                    f,
                    "process {}{exe}: made no libzmq call the probe could see; if it uses \
                     libzmq, it is linked statically (link a shared libzmq to make it visible)",
                    p.pid
                )?,
                Some(Linkage::Shared) => writeln!(
                    f,
                    "process {}{exe}: has libzmq loaded but made no call yet",
                    p.pid
                )?,
                None => {}
            }
            for term in &p.terms {
                write!(
                    f,
                    "process {}{exe}: term() ({}) on context {} from {} has waited {}",
                    p.pid,
                    term.function,
                    term.context,
                    term.thread,
                    seconds(term.waited)
                )?;
                if term.holding.is_empty() {
                    writeln!(f, "; the probe saw no socket of this context still open")?;
                }
                let all_open = term.holding.iter().all(|s| s.holding == Holding::Open);
                let header = if all_open {
                    "; still open:\n"
                } else {
                    "; waiting for:\n"
                };
                for (i, socket) in term.holding.iter().enumerate() {
                    let lead = if i == 0 { header } else { "" };
                    writeln!(f, "{lead}  - {socket}")?;
                }
            }
            if !p.open.is_empty() {
                writeln!(
                    f,
                    "process {}{exe}: open sockets (no term() in progress on them):",
                    p.pid
                )?;
                for socket in &p.open {
                    writeln!(f, "  - {socket}")?;
                }
            }
        }
        if self.lost > 0 {
            writeln!(
                f,
                "note: the probe dropped {} records (its channel was full); this may be incomplete",
                self.lost
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::slots::SlotEntry;
    use crate::probe::state::tests::{ASYNC_BUG, state_of};
    use crate::probe::wire::Call;

    fn view_with(threads: &[i32]) -> ProcessView {
        let mut view = ProcessView::default();
        let threads = threads.iter().map(|&t| (t, "python".to_owned())).collect();
        view.live.insert(
            100,
            LiveProcess {
                threads,
                libzmq: None,
            },
        );
        view
    }

    #[test]
    fn names_the_open_socket_term_waits_for() {
        let mut state = state_of(ASYNC_BUG);
        let last = LastCall {
            call: Call::Getsockopt,
            detail: 15,
            in_flight: false,
            ns: 100_000_000,
            errno: None,
        };
        state.merge_slots(&[SlotEntry {
            pid: 100,
            serial: 1,
            socket: 0xb1,
            last: Some(last),
            sent: 0,
            received: 3,
        }]);
        // No stack tool: the main thread's name comes from its own earlier records.
        let view = view_with(&[100]);
        let report = ProbeReport::new(&state, &view, 100, 2_000_005_000);
        assert!(report.term_waiting());
        let text = report.to_string();
        assert_eq!(
            text,
            "process 100 (/usr/bin/python3.11): term() (zmq_ctx_destroy) on context 0xaa from \
             the main thread `MainThread` (tid 100) has waited 2.0 s; still open:\n  - SUB socket \
             created by thread `Thread-1 (run_forever)` (tid 101, ended), connected to \
             tcp://127.0.0.1:41234, \
             linger 0, last call zmq_getsockopt(EVENTS) 1.9 s ago; 0 sent, 3 received\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["processes"][0]["terms"][0]["waited_ms"], 2000);
        assert_eq!(
            json["processes"][0]["terms"][0]["holding"][0]["created_by"]["status"],
            "ended"
        );
    }

    #[test]
    fn a_lingering_publisher_holds_term_and_a_failed_call_says_its_error() {
        let mut lines: Vec<&str> = ASYNC_BUG
            .iter()
            .copied()
            .filter(|l| !l.starts_with("close"))
            .collect();
        lines.push("close\t100\t100\t4000\t0xb2\t2\t0\t-1\t5\t0\tpython\tMainThread");
        lines.push("close\t100\t101\t4500\t0xb1\t1\t0\t0\t0\t3\tpython\tThread-1 (run_forever)");
        let mut state = state_of(&lines);
        state.processes.get_mut(&100).unwrap().sockets[1].last = None;
        let report = ProbeReport::new(&state, &view_with(&[100, 101]), 100, 1_000_000_000);
        let holding = &report.processes[0].terms[0].holding;
        assert_eq!(holding.len(), 1);
        assert_eq!(holding[0].kind, "PUB");
        assert_eq!(holding[0].holding, Holding::Lingering);
        assert!(
            holding[0].to_string().contains("linger -1 (infinite)"),
            "{}",
            holding[0]
        );
        assert!(
            holding[0]
                .to_string()
                .ends_with("term waits until its unsent messages are delivered")
        );

        let call = describe_call(
            LastCall {
                call: Call::MsgRecv,
                detail: 0,
                in_flight: false,
                ns: 0,
                errno: Some(156_384_765),
            },
            Duration::from_millis(1500),
        );
        assert_eq!(
            call.to_string(),
            "last call zmq_msg_recv failed with ETERM 1.5 s ago"
        );
        let call = describe_call(
            LastCall {
                call: Call::Poll,
                detail: 2,
                in_flight: true,
                ns: 0,
                errno: None,
            },
            Duration::from_millis(300),
        );
        assert_eq!(
            call.to_string(),
            "in zmq_poll(2 items) for 0.3 s, not returned"
        );
    }

    #[test]
    fn a_recorded_python_name_beats_a_stack_tools_which_beats_the_kernels() {
        let state = state_of(&[
            "socket\t100\t101\t3000\t0xaa\t0xb1\t1\t2\t0\tpython\tsubscriber",
            "socket\t100\t102\t3100\t0xaa\t0xb2\t2\t2\t0\tcomm\tpython3",
            "socket\t100\t103\t3200\t0xaa\t0xb3\t3\t2\t0\tcomm\tworker",
            "term\t100\t100\t5000\t0xaa\tzmq_ctx_term\tcomm\tpython3",
        ]);
        let mut view = view_with(&[100, 101, 102, 103]);
        view.name_thread(100, 101, "renamed since");
        view.name_thread(100, 102, "Thread-3 (poll)");
        let report = ProbeReport::new(&state, &view, 100, 10_000);
        let term = &report.processes[0].terms[0];
        let names: Vec<&str> = term.holding.iter().map(|s| &*s.created_by.name).collect();
        assert_eq!(names, ["subscriber", "Thread-3 (poll)", "worker"]);
        assert_eq!(
            term.thread.name, "python3",
            "a main thread never named by Python keeps its kernel name"
        );
    }

    #[test]
    fn says_what_it_could_not_see() {
        let state = state_of(&[
            "hello\t7\t7\t1\t1\tcomm\tmain\t/usr/local/bin/app",
            "lost\t7\t7\t2\t4",
        ]);
        let mut view = ProcessView::default();
        view.live.insert(
            7,
            LiveProcess {
                threads: BTreeMap::new(),
                libzmq: Some(Linkage::Static),
            },
        );
        let text = ProbeReport::new(&state, &view, 7, 10).to_string();
        assert!(
            text.starts_with("process 7 (/usr/local/bin/app): libzmq is linked statically"),
            "{text}"
        );
        assert!(text.contains("link it against a shared libzmq"), "{text}");
        assert!(
            text.ends_with("dropped 4 records (its channel was full); this may be incomplete\n")
        );

        let text =
            ProbeReport::new(&ProbeState::default(), &ProcessView::default(), 9, 10).to_string();
        assert!(
            text.starts_with("process 9: the probe was not loaded"),
            "{text}"
        );
    }

    #[test]
    fn finds_a_needle_across_chunk_boundaries() {
        let mut hay = vec![b'x'; (1 << 20) - 3];
        hay.extend_from_slice(b"zmq_ctx_new");
        assert!(contains(&hay[..], b"zmq_ctx_new"));
        assert!(!contains(&hay[..hay.len() - 1], b"zmq_ctx_new"));
    }

    #[test]
    fn this_test_binary_links_libzmq_statically() {
        let state = state_of(&["hello\t1\t1\t1\t0\tcomm\tmain\tx"]);
        let me = std::process::id() as i32;
        let view = ProcessView::read(&state, me);
        assert_eq!(view.live[&me].libzmq, Some(Linkage::Static));
        assert!(view.live[&me].threads.contains_key(&me));
    }
}
