//! One channel record parsed into a typed [`Record`] (the line format is in [`super::wire`]).

use std::str::{FromStr, Split};

use thiserror::Error;

use super::wire::{Kind, NameSource, TermFunction};

/// Who and when, common to every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Process id.
    pub pid: i32,
    /// Thread id of the calling thread.
    pub tid: i32,
    /// CLOCK_MONOTONIC, ns.
    pub ns: u64,
}

/// A thread's name as a record gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadName {
    /// The kernel's (`comm`): all a C program's threads have, and what a Python thread has
    /// when it did not hold the GIL.
    Kernel(String),
    /// Python's `threading` name (`MainThread`, `Thread-2 (run_forever)`), read while the
    /// thread held the GIL.
    Python(String),
}

impl ThreadName {
    /// The name itself.
    pub fn as_str(&self) -> &str {
        match self {
            ThreadName::Kernel(name) | ThreadName::Python(name) => name,
        }
    }
}

/// Binding side of an endpoint call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointAction {
    /// zmq_bind.
    Bind,
    /// zmq_connect.
    Connect,
    /// zmq_unbind.
    Unbind,
    /// zmq_disconnect.
    Disconnect,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The probe was loaded (the process started, or exec'd).
    Hello {
        /// Parent process.
        ppid: i32,
        /// Name of the loading thread.
        thread: ThreadName,
        /// The executable.
        exe: String,
    },
    /// The process was forked from `ppid`.
    Fork {
        /// Parent process.
        ppid: i32,
    },
    /// A context was created.
    Context {
        /// Its address.
        ctx: u64,
    },
    /// zmq_ctx_set.
    ContextSet {
        /// Context.
        ctx: u64,
        /// Option.
        option: i32,
        /// Value.
        value: i32,
        /// Return code.
        rc: i32,
    },
    /// zmq_ctx_shutdown returned.
    Shutdown {
        /// Context.
        ctx: u64,
        /// Return code.
        rc: i32,
    },
    /// A term function was entered.
    Term {
        /// Context.
        ctx: u64,
        /// Which function.
        function: TermFunction,
        /// Name of the calling thread.
        thread: ThreadName,
    },
    /// A term function returned.
    Termed {
        /// Context.
        ctx: u64,
        /// Return code.
        rc: i32,
        /// errno when it failed, else 0.
        errno: i32,
    },
    /// A socket was created.
    Socket {
        /// Context.
        ctx: u64,
        /// Its address.
        socket: u64,
        /// Serial within the process (0: no slot).
        serial: u64,
        /// libzmq socket type.
        kind: i32,
        /// ZMQ_LINGER read back.
        linger: Option<i32>,
        /// Name of the creating thread.
        thread: ThreadName,
    },
    /// zmq_bind / connect / unbind / disconnect.
    Endpoint {
        /// Which.
        action: EndpointAction,
        /// Socket address.
        socket: u64,
        /// Socket serial.
        serial: u64,
        /// Return code.
        rc: i32,
        /// errno when it failed, else 0.
        errno: i32,
        /// The resolved endpoint when it worked, else the one asked for.
        endpoint: String,
    },
    /// ZMQ_LINGER was set.
    Linger {
        /// Socket address.
        socket: u64,
        /// Socket serial.
        serial: u64,
        /// The value read back.
        linger: Option<i32>,
    },
    /// zmq_close returned.
    Close {
        /// Socket address.
        socket: u64,
        /// Socket serial.
        serial: u64,
        /// Return code.
        rc: i32,
        /// ZMQ_LINGER just before.
        linger: Option<i32>,
        /// Messages sent.
        sent: u64,
        /// Messages received.
        received: u64,
        /// Name of the closing thread.
        thread: ThreadName,
    },
    /// zmq_socket_monitor.
    Monitor {
        /// Socket address.
        socket: u64,
        /// Socket serial.
        serial: u64,
        /// Return code.
        rc: i32,
        /// Event mask.
        events: i32,
        /// Monitor endpoint (empty: monitoring stopped).
        endpoint: String,
    },
    /// Records the probe had to drop.
    Lost {
        /// How many.
        count: u64,
    },
}

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who and when.
    pub header: Header,
    /// What.
    pub event: Event,
}

/// A line that is not a record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// Unknown kind word.
    #[error("unknown record kind `{0}`")]
    UnknownKind(String),
    /// A field is missing.
    #[error("`{kind}` record: field {index} missing")]
    Missing {
        /// Record kind.
        kind: &'static str,
        /// 1-based field number after the kind.
        index: usize,
    },
    /// A field does not parse.
    #[error("`{kind}` record: field {index} `{text}` is not valid")]
    Invalid {
        /// Record kind.
        kind: &'static str,
        /// 1-based field number after the kind.
        index: usize,
        /// The field.
        text: String,
    },
    /// More fields than the kind has.
    #[error("`{0}` record: extra fields")]
    Extra(&'static str),
}

/// Walks a record's fields.
struct Fields<'a> {
    kind: &'static str,
    index: usize,
    rest: Split<'a, char>,
}

impl<'a> Fields<'a> {
    fn text(&mut self) -> Result<&'a str, RecordError> {
        self.index += 1;
        self.rest.next().ok_or(RecordError::Missing {
            kind: self.kind,
            index: self.index,
        })
    }

    fn parse<T: FromStr>(&mut self) -> Result<T, RecordError> {
        let text = self.text()?;
        text.parse().map_err(|_| self.invalid(text))
    }

    fn invalid(&self, text: &str) -> RecordError {
        RecordError::Invalid {
            kind: self.kind,
            index: self.index,
            text: text.to_owned(),
        }
    }

    fn hex(&mut self) -> Result<u64, RecordError> {
        let text = self.text()?;
        text.strip_prefix("0x")
            .and_then(|digits| u64::from_str_radix(digits, 16).ok())
            .ok_or_else(|| self.invalid(text))
    }

    /// An option value read back; the probe writes `i64::MIN` when it could not read it.
    fn option(&mut self) -> Result<Option<i32>, RecordError> {
        let value: i64 = self.parse()?;
        Ok(i32::try_from(value).ok())
    }

    fn string(&mut self) -> Result<String, RecordError> {
        self.text().map(str::to_owned)
    }

    /// A thread name: its source, then the name.
    fn thread(&mut self) -> Result<ThreadName, RecordError> {
        let text = self.text()?;
        let source = NameSource::from_name(text).ok_or_else(|| self.invalid(text))?;
        let name = self.string()?;
        Ok(match source {
            NameSource::Kernel => ThreadName::Kernel(name),
            NameSource::Python => ThreadName::Python(name),
        })
    }
}

impl FromStr for Record {
    type Err = RecordError;

    fn from_str(line: &str) -> Result<Record, RecordError> {
        let mut rest = line.strip_suffix('\n').unwrap_or(line).split('\t');
        let word = rest.next().unwrap_or_default();
        let kind =
            Kind::from_name(word).ok_or_else(|| RecordError::UnknownKind(word.to_owned()))?;
        let mut f = Fields {
            kind: kind.name(),
            index: 0,
            rest,
        };
        let header = Header {
            pid: f.parse()?,
            tid: f.parse()?,
            ns: f.parse()?,
        };
        let endpoint = |action, f: &mut Fields| -> Result<Event, RecordError> {
            Ok(Event::Endpoint {
                action,
                socket: f.hex()?,
                serial: f.parse()?,
                rc: f.parse()?,
                errno: f.parse()?,
                endpoint: f.string()?,
            })
        };
        let event = match kind {
            Kind::Hello => Event::Hello {
                ppid: f.parse()?,
                thread: f.thread()?,
                exe: f.string()?,
            },
            Kind::Fork => Event::Fork { ppid: f.parse()? },
            Kind::Context => Event::Context { ctx: f.hex()? },
            Kind::ContextSet => Event::ContextSet {
                ctx: f.hex()?,
                option: f.parse()?,
                value: f.parse()?,
                rc: f.parse()?,
            },
            Kind::Shutdown => Event::Shutdown {
                ctx: f.hex()?,
                rc: f.parse()?,
            },
            Kind::Term => {
                let ctx = f.hex()?;
                let name = f.text()?;
                let function = TermFunction::from_name(name).ok_or_else(|| f.invalid(name))?;
                Event::Term {
                    ctx,
                    function,
                    thread: f.thread()?,
                }
            }
            Kind::Termed => Event::Termed {
                ctx: f.hex()?,
                rc: f.parse()?,
                errno: f.parse()?,
            },
            Kind::Socket => Event::Socket {
                ctx: f.hex()?,
                socket: f.hex()?,
                serial: f.parse()?,
                kind: f.parse()?,
                linger: f.option()?,
                thread: f.thread()?,
            },
            Kind::Bind => endpoint(EndpointAction::Bind, &mut f)?,
            Kind::Connect => endpoint(EndpointAction::Connect, &mut f)?,
            Kind::Unbind => endpoint(EndpointAction::Unbind, &mut f)?,
            Kind::Disconnect => endpoint(EndpointAction::Disconnect, &mut f)?,
            Kind::Linger => Event::Linger {
                socket: f.hex()?,
                serial: f.parse()?,
                linger: f.option()?,
            },
            Kind::Close => Event::Close {
                socket: f.hex()?,
                serial: f.parse()?,
                rc: f.parse()?,
                linger: f.option()?,
                sent: f.parse()?,
                received: f.parse()?,
                thread: f.thread()?,
            },
            Kind::Monitor => Event::Monitor {
                socket: f.hex()?,
                serial: f.parse()?,
                rc: f.parse()?,
                events: f.parse()?,
                endpoint: f.string()?,
            },
            Kind::Lost => Event::Lost { count: f.parse()? },
        };
        match f.rest.next() {
            Some(_) => Err(RecordError::Extra(f.kind)),
            None => Ok(Record { header, event }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_the_probe_writes() {
        let socket: Record = "socket\t10\t11\t12\t0x5a\t0x7b\t3\t2\t0\tpython\tThread-2 (run)\n"
            .parse()
            .unwrap();
        assert_eq!(
            socket.header,
            Header {
                pid: 10,
                tid: 11,
                ns: 12
            }
        );
        assert_eq!(
            socket.event,
            Event::Socket {
                ctx: 0x5a,
                socket: 0x7b,
                serial: 3,
                kind: 2,
                linger: Some(0),
                thread: ThreadName::Python("Thread-2 (run)".into())
            }
        );
        let bind: Record = "connect\t1\t1\t5\t0x7b\t3\t0\t0\ttcp://127.0.0.1:4000"
            .parse()
            .unwrap();
        assert!(matches!(
            bind.event,
            Event::Endpoint { action: EndpointAction::Connect, ref endpoint, .. }
                if endpoint == "tcp://127.0.0.1:4000"
        ));
        let term: Record = "term\t1\t1\t5\t0x5a\tzmq_ctx_destroy\tcomm\tpython3"
            .parse()
            .unwrap();
        assert_eq!(
            term.event,
            Event::Term {
                ctx: 0x5a,
                function: TermFunction::CtxDestroy,
                thread: ThreadName::Kernel("python3".into()),
            }
        );
        let close: Record =
            "close\t1\t1\t5\t0x7b\t3\t0\t-9223372036854775808\t4\t0\tpython\tMainThread"
                .parse()
                .unwrap();
        assert!(matches!(
            close.event,
            Event::Close {
                linger: None,
                sent: 4,
                ref thread,
                ..
            } if thread.as_str() == "MainThread"
        ));
        let hello: Record = "hello\t1\t1\t5\t0\tcomm\tpython3\t/usr/bin/python3"
            .parse()
            .unwrap();
        assert!(matches!(hello.event, Event::Hello { ref exe, .. } if exe == "/usr/bin/python3"));
        for line in [
            "fork\t2\t2\t5\t1",
            "ctx\t1\t1\t5\t0x5a",
            "ctxset\t1\t1\t5\t0x5a\t70\t0\t0",
            "shutdown\t1\t1\t5\t0x5a\t0",
            "termed\t1\t1\t5\t0x5a\t-1\t4",
            "linger\t1\t1\t5\t0x7b\t3\t-1",
            "monitor\t1\t1\t5\t0x7b\t3\t0\t65535\tinproc://m",
            "lost\t1\t1\t5\t7",
            "unbind\t1\t1\t5\t0x7b\t3\t-1\t2\ttcp://*:1",
        ] {
            line.parse::<Record>()
                .unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn says_what_is_wrong_with_a_bad_line() {
        assert_eq!(
            "nope\t1".parse::<Record>().unwrap_err(),
            RecordError::UnknownKind("nope".into())
        );
        assert_eq!(
            "ctx\t1\t1".parse::<Record>().unwrap_err(),
            RecordError::Missing {
                kind: "ctx",
                index: 3
            }
        );
        assert_eq!(
            "ctx\t1\t1\t5\t5a".parse::<Record>().unwrap_err(),
            RecordError::Invalid {
                kind: "ctx",
                index: 4,
                text: "5a".into()
            }
        );
        assert_eq!(
            "term\t1\t1\t5\t0x5a\tzmq_other\tcomm\tpython"
                .parse::<Record>()
                .unwrap_err(),
            RecordError::Invalid {
                kind: "term",
                index: 5,
                text: "zmq_other".into()
            }
        );
        assert_eq!(
            "term\t1\t1\t5\t0x5a\tzmq_term\tpy\tMainThread"
                .parse::<Record>()
                .unwrap_err(),
            RecordError::Invalid {
                kind: "term",
                index: 6,
                text: "py".into()
            },
            "a thread name says where it comes from"
        );
        assert_eq!(
            "lost\t1\t1\t5\t7\t8".parse::<Record>().unwrap_err(),
            RecordError::Extra("lost")
        );
    }
}
