//! What the probe has reported, per process: contexts (and the terms entered on them),
//! sockets (type, endpoints, linger, creating and closing thread, last call, counts).
//! Built from channel records ([`ProbeState::apply`]) and completed with the slot table
//! ([`ProbeState::merge_slots`]).

use std::collections::BTreeMap;

use super::record::{EndpointAction, Event, Record, ThreadName};
use super::slots::{LastCall, SlotEntry};
use super::wire::TermFunction;
use crate::scenario::raw::SocketType;

/// A thread as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRef {
    /// Kernel thread id.
    pub tid: i32,
    /// Its name at the time: Python's when known (see [`ProcessState::thread`]), else the
    /// kernel's.
    pub name: ThreadName,
}

/// A libzmq socket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// One of the types scenarios use.
    Known(SocketType),
    /// ZMQ_STREAM.
    Stream,
    /// Any other number.
    Other(i32),
}

impl SocketKind {
    /// From libzmq's constant.
    pub fn from_raw(raw: i32) -> SocketKind {
        match SocketType::from_raw(raw) {
            Some(known) => SocketKind::Known(known),
            None if raw == zmq_sys::ZMQ_STREAM as i32 => SocketKind::Stream,
            None => SocketKind::Other(raw),
        }
    }
}

impl std::fmt::Display for SocketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketKind::Known(known) => known.fmt(f),
            SocketKind::Stream => f.write_str("STREAM"),
            SocketKind::Other(raw) => write!(f, "type-{raw}"),
        }
    }
}

/// How a process came to have the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// It started (or exec'd) with the probe preloaded.
    Started {
        /// Its executable.
        exe: String,
    },
    /// It was forked from a process that had it.
    Forked,
}

/// A term function call on a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermCall {
    /// Which function.
    pub function: TermFunction,
    /// The calling thread.
    pub thread: ThreadRef,
    /// When it was entered.
    pub entered_ns: u64,
    /// When it returned, with rc and errno.
    pub returned: Option<(u64, i32, i32)>,
    /// Term calls nested inside it (libzmq's zmq_ctx_destroy calls zmq_ctx_term) not returned.
    nested: u32,
}

/// A context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextState {
    /// Its address.
    pub addr: u64,
    /// When the probe first heard of it.
    pub created_ns: u64,
    /// When zmq_ctx_shutdown was called on it.
    pub shutdown_ns: Option<u64>,
    /// Term calls, in order.
    pub terms: Vec<TermCall>,
}

/// An endpoint of a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointState {
    /// Bind or connect.
    pub action: EndpointAction,
    /// The resolved endpoint.
    pub endpoint: String,
    /// Unbound / disconnected since.
    pub removed: bool,
}

/// How a socket was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The closing thread.
    pub thread: ThreadRef,
    /// When.
    pub ns: u64,
    /// ZMQ_LINGER at the time (what term honours for its unsent messages).
    pub linger: Option<i32>,
}

/// A socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketState {
    /// Serial within the process (0: the probe had no slot for it).
    pub serial: u64,
    /// Its address.
    pub addr: u64,
    /// Its context's address.
    pub ctx: u64,
    /// Its type.
    pub kind: SocketKind,
    /// The creating thread.
    pub created_by: ThreadRef,
    /// When it was created.
    pub created_ns: u64,
    /// Endpoints, in order.
    pub endpoints: Vec<EndpointState>,
    /// Effective ZMQ_LINGER (read back at creation and after every change).
    pub linger: Option<i32>,
    /// Set once zmq_close worked.
    pub closed: Option<Closed>,
    /// Last call (from the slot table).
    pub last: Option<LastCall>,
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Monitor endpoint, if monitored.
    pub monitor: Option<String>,
}

/// One process that had the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessState {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Started or forked.
    pub origin: Origin,
    /// Contexts, in creation order.
    pub contexts: Vec<ContextState>,
    /// Sockets, in creation order.
    pub sockets: Vec<SocketState>,
    /// The main thread's Python name, from the latest record that gave it.
    pub main_thread_name: Option<String>,
}

impl ProcessState {
    fn new(pid: i32, ppid: i32, origin: Origin) -> ProcessState {
        ProcessState {
            pid,
            ppid,
            origin,
            contexts: Vec::new(),
            sockets: Vec::new(),
            main_thread_name: None,
        }
    }

    /// Thread `tid` named `name` by a record. The main thread (tid = pid, which no other thread
    /// of the process can ever have) keeps the Python name an earlier record gave it where a
    /// later one has only the kernel's: a Python main thread that released the GIL (as pyzmq
    /// does around `zmq_ctx_destroy`) is still `MainThread`.
    fn thread(&mut self, tid: i32, name: ThreadName) -> ThreadRef {
        let name = match name {
            ThreadName::Python(python) if tid == self.pid => {
                self.main_thread_name = Some(python.clone());
                ThreadName::Python(python)
            }
            ThreadName::Kernel(_) if tid == self.pid => match &self.main_thread_name {
                Some(python) => ThreadName::Python(python.clone()),
                None => name,
            },
            name => name,
        };
        ThreadRef { tid, name }
    }

    /// Whether any libzmq call reached the probe.
    pub fn used_zmq(&self) -> bool {
        !self.contexts.is_empty() || !self.sockets.is_empty()
    }

    /// The live context at `addr` (one whose term worked is gone), else a new one.
    fn context(&mut self, addr: u64, ns: u64) -> &mut ContextState {
        let live = self.contexts.iter().rposition(|c| {
            c.addr == addr
                && !c
                    .terms
                    .iter()
                    .any(|t| t.nested == 0 && t.returned.is_some_and(|r| r.1 == 0))
        });
        let index = live.unwrap_or_else(|| {
            self.contexts.push(ContextState {
                addr,
                created_ns: ns,
                shutdown_ns: None,
                terms: Vec::new(),
            });
            self.contexts.len() - 1
        });
        &mut self.contexts[index]
    }

    /// The socket a record names: by serial, else the latest open one at that address.
    fn socket(&mut self, addr: u64, serial: u64) -> Option<&mut SocketState> {
        self.sockets.iter_mut().rev().find(|s| {
            if serial != 0 {
                s.serial == serial
            } else {
                s.addr == addr && s.closed.is_none()
            }
        })
    }
}

/// Everything reported so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// Per process id.
    pub processes: BTreeMap<i32, ProcessState>,
    /// Records the probe dropped (channel full).
    pub lost: u64,
    /// Lines that were not records.
    pub malformed: u64,
}

impl ProbeState {
    /// Applies one channel line; a bad one is counted in `malformed`.
    pub fn apply_line(&mut self, line: &str) {
        match line.parse::<Record>() {
            Ok(record) => self.apply(record),
            Err(_) => self.malformed += 1,
        }
    }

    /// Applies one record.
    pub fn apply(&mut self, record: Record) {
        let Record { header, event } = record;
        match event {
            Event::Hello { ppid, exe, .. } => {
                self.processes.insert(
                    header.pid,
                    ProcessState::new(header.pid, ppid, Origin::Started { exe }),
                );
                return;
            }
            Event::Fork { ppid } => {
                self.processes.insert(
                    header.pid,
                    ProcessState::new(header.pid, ppid, Origin::Forked),
                );
                return;
            }
            Event::Lost { count } => {
                self.lost += count;
                return;
            }
            _ => {}
        }
        // A record from a process whose hello was lost still counts.
        let process = self.processes.entry(header.pid).or_insert_with(|| {
            ProcessState::new(header.pid, 0, Origin::Started { exe: String::new() })
        });
        match event {
            Event::Hello { .. } | Event::Fork { .. } | Event::Lost { .. } => {}
            Event::Context { ctx } => {
                process.context(ctx, header.ns);
            }
            Event::ContextSet { ctx, .. } => {
                process.context(ctx, header.ns);
            }
            Event::Shutdown { ctx, rc } => {
                let context = process.context(ctx, header.ns);
                if rc == 0 {
                    context.shutdown_ns.get_or_insert(header.ns);
                }
            }
            Event::Term {
                ctx,
                function,
                thread: name,
            } => {
                let thread = process.thread(header.tid, name);
                let context = process.context(ctx, header.ns);
                let running = context
                    .terms
                    .iter_mut()
                    .find(|t| t.returned.is_none() && t.thread.tid == header.tid);
                match running {
                    Some(outer) => outer.nested += 1,
                    None => context.terms.push(TermCall {
                        function,
                        thread,
                        entered_ns: header.ns,
                        returned: None,
                        nested: 0,
                    }),
                }
            }
            Event::Termed { ctx, rc, errno } => {
                let context = process.context(ctx, header.ns);
                let running = context
                    .terms
                    .iter_mut()
                    .find(|t| t.returned.is_none() && t.thread.tid == header.tid);
                if let Some(call) = running {
                    if call.nested > 0 {
                        call.nested -= 1;
                    } else {
                        call.returned = Some((header.ns, rc, errno));
                    }
                }
            }
            Event::Socket {
                ctx,
                socket,
                serial,
                kind,
                linger,
                thread: name,
            } => {
                process.context(ctx, header.ns);
                let created_by = process.thread(header.tid, name);
                process.sockets.push(SocketState {
                    serial,
                    addr: socket,
                    ctx,
                    kind: SocketKind::from_raw(kind),
                    created_by,
                    created_ns: header.ns,
                    endpoints: Vec::new(),
                    linger,
                    closed: None,
                    last: None,
                    sent: 0,
                    received: 0,
                    monitor: None,
                });
            }
            Event::Endpoint {
                action,
                socket,
                serial,
                rc,
                endpoint,
                ..
            } => {
                let Some(state) = process.socket(socket, serial).filter(|_| rc == 0) else {
                    return;
                };
                match action {
                    EndpointAction::Bind | EndpointAction::Connect => {
                        state.endpoints.push(EndpointState {
                            action,
                            endpoint,
                            removed: false,
                        })
                    }
                    EndpointAction::Unbind | EndpointAction::Disconnect => {
                        let side = match action {
                            EndpointAction::Unbind => EndpointAction::Bind,
                            _ => EndpointAction::Connect,
                        };
                        if let Some(e) = state
                            .endpoints
                            .iter_mut()
                            .find(|e| e.action == side && e.endpoint == endpoint && !e.removed)
                        {
                            e.removed = true;
                        }
                    }
                }
            }
            Event::Linger {
                socket,
                serial,
                linger,
            } => {
                if let Some(state) = process.socket(socket, serial) {
                    state.linger = linger;
                }
            }
            Event::Close {
                socket,
                serial,
                rc,
                linger,
                sent,
                received,
                thread: name,
            } => {
                let thread = process.thread(header.tid, name);
                if let Some(state) = process.socket(socket, serial).filter(|_| rc == 0) {
                    state.closed = Some(Closed {
                        thread,
                        ns: header.ns,
                        linger,
                    });
                    state.linger = linger.or(state.linger);
                    state.sent = state.sent.max(sent);
                    state.received = state.received.max(received);
                }
            }
            Event::Monitor {
                socket,
                serial,
                rc,
                endpoint,
                ..
            } => {
                if let Some(state) = process.socket(socket, serial).filter(|_| rc == 0) {
                    state.monitor = (!endpoint.is_empty()).then_some(endpoint);
                }
            }
        }
    }

    /// Completes open sockets with their slots (last call, message counts).
    pub fn merge_slots(&mut self, entries: &[SlotEntry]) {
        for entry in entries {
            let Some(process) = self.processes.get_mut(&entry.pid) else {
                continue;
            };
            let found =
                process.sockets.iter_mut().rev().find(|s| {
                    s.serial == entry.serial && s.addr == entry.socket && s.closed.is_none()
                });
            if let Some(socket) = found {
                socket.last = entry.last;
                socket.sent = entry.sent;
                socket.received = entry.received;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Applies lines written as the probe writes them.
    pub(crate) fn state_of(lines: &[&str]) -> ProbeState {
        let mut state = ProbeState::default();
        for line in lines {
            state.apply_line(line);
        }
        state
    }

    /// The asynchronous subscriber bug as the probe reports it: the SUB socket made on the
    /// loop thread (tid 101) stays open while the main thread's zmq_ctx_destroy (which calls
    /// zmq_ctx_term) waits. Sockets are made and closed holding the GIL (Python names); pyzmq
    /// releases it around term (kernel names).
    pub(crate) const ASYNC_BUG: &[&str] = &[
        "hello\t100\t100\t1000\t1\tcomm\tpython3\t/usr/bin/python3.11",
        "ctx\t100\t100\t2000\t0xaa",
        "socket\t100\t101\t3000\t0xaa\t0xb1\t1\t2\t0\tpython\tThread-1 (run_forever)",
        "connect\t100\t101\t3100\t0xb1\t1\t0\t0\ttcp://127.0.0.1:41234",
        "socket\t100\t100\t3200\t0xaa\t0xb2\t2\t1\t-1\tpython\tMainThread",
        "bind\t100\t100\t3300\t0xb2\t2\t0\t0\ttcp://127.0.0.1:41234",
        "close\t100\t100\t4000\t0xb2\t2\t0\t0\t5\t0\tpython\tMainThread",
        "term\t100\t100\t5000\t0xaa\tzmq_ctx_destroy\tcomm\tpython3",
        "term\t100\t100\t5001\t0xaa\tzmq_ctx_term\tcomm\tpython3",
    ];

    #[test]
    fn a_term_in_progress_with_its_open_socket() {
        let state = state_of(ASYNC_BUG);
        let process = &state.processes[&100];
        assert_eq!(
            process.origin,
            Origin::Started {
                exe: "/usr/bin/python3.11".into()
            }
        );
        assert_eq!(process.contexts.len(), 1);
        let term = &process.contexts[0].terms;
        assert_eq!(
            term.len(),
            1,
            "the nested zmq_ctx_term is one call: {term:?}"
        );
        assert_eq!(term[0].function, TermFunction::CtxDestroy);
        assert_eq!(term[0].returned, None);
        let sub = &process.sockets[0];
        assert_eq!(sub.kind, SocketKind::Known(SocketType::Sub));
        assert_eq!(
            sub.created_by,
            ThreadRef {
                tid: 101,
                name: ThreadName::Python("Thread-1 (run_forever)".into())
            }
        );
        assert_eq!(sub.endpoints[0].endpoint, "tcp://127.0.0.1:41234");
        assert_eq!(sub.closed, None);
        let publisher = &process.sockets[1];
        assert_eq!(publisher.closed.as_ref().map(|c| c.linger), Some(Some(0)));
        assert_eq!(publisher.sent, 5);
        assert_eq!(state.malformed, 0);
    }

    #[test]
    fn nested_term_returns_once_and_a_later_context_at_the_same_address_is_new() {
        let mut lines = ASYNC_BUG.to_vec();
        lines.extend([
            "close\t100\t101\t6000\t0xb1\t1\t0\t0\t0\t0\tcomm\tpython3",
            "termed\t100\t100\t6100\t0xaa\t0\t0",
            "termed\t100\t100\t6101\t0xaa\t0\t0",
            "ctx\t100\t100\t7000\t0xaa",
        ]);
        let state = state_of(&lines);
        let process = &state.processes[&100];
        assert_eq!(process.contexts.len(), 2);
        assert_eq!(process.contexts[0].terms[0].returned, Some((6101, 0, 0)));
        assert_eq!(process.sockets[0].closed.as_ref().unwrap().thread.tid, 101);
    }

    #[test]
    fn the_main_thread_keeps_its_python_name_where_it_released_the_gil_and_others_do_not() {
        let state = state_of(ASYNC_BUG);
        let process = &state.processes[&100];
        assert_eq!(
            process.contexts[0].terms[0].thread,
            ThreadRef {
                tid: 100,
                name: ThreadName::Python("MainThread".into())
            },
            "the term record itself has the kernel name"
        );
        let mut lines = ASYNC_BUG.to_vec();
        lines.push("close\t100\t101\t6000\t0xb1\t1\t0\t0\t0\t0\tcomm\tpython3");
        let state = state_of(&lines);
        assert_eq!(
            state.processes[&100].sockets[0]
                .closed
                .as_ref()
                .unwrap()
                .thread
                .name,
            ThreadName::Kernel("python3".into()),
            "another thread's id may have been reused: its Python name is not carried over"
        );
        let state = state_of(&["term\t7\t7\t1\t0xaa\tzmq_ctx_term\tcomm\tapp"]);
        assert_eq!(
            state.processes[&7].contexts[0].terms[0].thread.name,
            ThreadName::Kernel("app".into())
        );
    }

    #[test]
    fn pointer_reuse_is_told_apart_by_serial_and_unbind_removes_the_endpoint() {
        let state = state_of(&[
            "ctx\t7\t7\t1\t0xaa",
            "socket\t7\t7\t2\t0xaa\t0xb1\t1\t8\t-1\tcomm\tmain",
            "socket\t7\t8\t3\t0xaa\t0xb1\t2\t7\t-1\tcomm\tworker",
            "close\t7\t7\t4\t0xb1\t1\t0\t-1\t0\t0\tcomm\tmain",
            "bind\t7\t8\t5\t0xb1\t2\t0\t0\tipc:///tmp/x",
            "unbind\t7\t8\t6\t0xb1\t2\t0\t0\tipc:///tmp/x",
            "bind\t7\t8\t7\t0xb1\t2\t-1\t98\ttcp://127.0.0.1:1",
            "garbage",
            "lost\t7\t7\t8\t3",
        ]);
        let sockets = &state.processes[&7].sockets;
        assert!(sockets[0].closed.is_some());
        assert!(sockets[1].closed.is_none());
        assert_eq!(sockets[1].kind, SocketKind::Known(SocketType::Pull));
        assert_eq!(
            sockets[1].endpoints.len(),
            1,
            "a failed bind is not an endpoint"
        );
        assert!(sockets[1].endpoints[0].removed);
        assert_eq!((state.lost, state.malformed), (3, 1));
    }

    #[test]
    fn slots_fill_in_last_call_and_counts_of_open_sockets_only() {
        use crate::probe::wire::Call;
        let mut state = state_of(ASYNC_BUG);
        let last = LastCall {
            call: Call::Getsockopt,
            detail: 15,
            in_flight: false,
            ns: 4500,
            errno: None,
        };
        state.merge_slots(&[
            SlotEntry {
                pid: 100,
                serial: 1,
                socket: 0xb1,
                last: Some(last),
                sent: 0,
                received: 3,
            },
            SlotEntry {
                pid: 100,
                serial: 2,
                socket: 0xb2,
                last: Some(last),
                sent: 9,
                received: 0,
            },
            SlotEntry {
                pid: 555,
                serial: 1,
                socket: 0xb1,
                last: Some(last),
                sent: 0,
                received: 0,
            },
        ]);
        let sockets = &state.processes[&100].sockets;
        assert_eq!((sockets[0].last, sockets[0].received), (Some(last), 3));
        assert_eq!(
            (sockets[1].last, sockets[1].sent),
            (None, 5),
            "closed: its close record counts"
        );
    }
}
