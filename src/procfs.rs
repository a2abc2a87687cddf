//! Reading a process's threads from /proc: name, scheduler state, wchan and the system call
//! each one is in, decoded into words ("poll on 1 fd, no timeout"). /proc gives no user-space
//! stack: the scenario child reads its own threads to corroborate the step that hung, and
//! [`crate::stacks`] reads a program's threads beside its native and Python frames. Also which
//! processes of this user carry a variable in their environment, which the janitor
//! ([`crate::guard`]) uses to find what a dead run left behind.

use std::fs;
use std::os::unix::fs::MetadataExt;

/// One thread as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcThread {
    /// Kernel tid.
    pub tid: i32,
    /// comm (at most 15 bytes).
    pub comm: String,
    /// Scheduler state letter and its meaning.
    pub state: String,
    /// Kernel wait channel, `0` when running.
    pub wchan: String,
    /// The decoded system call.
    pub syscall: Syscall,
}

/// What /proc/TID/syscall says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Syscall {
    /// The thread is running in user space.
    Running,
    /// Blocked in a system call.
    Blocked(Call),
    /// Not readable.
    Unknown,
}

/// How long a blocking call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// No timeout.
    Forever,
    /// At most this many milliseconds.
    Ms(i32),
    /// A timeout the call's arguments give only by pointer (ppoll).
    Bounded,
}

/// A decoded blocking system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `poll` on this many fds.
    Poll {
        /// Number of fds.
        fds: u64,
        /// Its timeout.
        wait: Wait,
    },
    /// `ppoll` on this many fds.
    Ppoll {
        /// Number of fds.
        fds: u64,
        /// Its timeout.
        wait: Wait,
    },
    /// `epoll_wait` or `epoll_pwait`.
    EpollWait {
        /// Its timeout.
        wait: Wait,
    },
    /// `futex`: a lock or condition variable.
    Futex,
    /// `read` on an fd.
    Read {
        /// The fd.
        fd: u64,
    },
    /// `recvfrom` on an fd.
    Recvfrom {
        /// The fd.
        fd: u64,
    },
    /// `nanosleep` or `clock_nanosleep`.
    Sleep,
    /// `wait4`.
    Wait4,
    /// Any other call, by number.
    Other(i64),
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::Forever => f.write_str("no timeout"),
            Wait::Ms(ms) => write!(f, "timeout {ms} ms"),
            Wait::Bounded => f.write_str("with a timeout"),
        }
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::Poll { fds, wait } => write!(f, "poll({fds} fd, {wait})"),
            Call::Ppoll {
                fds,
                wait: Wait::Forever,
            } => write!(f, "ppoll({fds} fd, no timeout)"),
            Call::Ppoll { fds, .. } => write!(f, "ppoll({fds} fd)"),
            Call::EpollWait { wait } => write!(f, "epoll_wait({wait})"),
            Call::Futex => f.write_str("futex(a lock or condition variable)"),
            Call::Read { fd } => write!(f, "read(fd {fd})"),
            Call::Recvfrom { fd } => write!(f, "recvfrom(fd {fd})"),
            Call::Sleep => f.write_str("sleep"),
            Call::Wait4 => f.write_str("wait4"),
            Call::Other(n) => write!(f, "syscall {n}"),
        }
    }
}

impl Syscall {
    /// In words: `poll(1 fd, no timeout)`.
    pub fn describe(&self) -> String {
        match self {
            Syscall::Running => "running (no system call)".to_owned(),
            Syscall::Blocked(call) => call.to_string(),
            Syscall::Unknown => "unknown".to_owned(),
        }
    }

    /// Whether the thread waits with no timeout.
    pub fn waits_forever(&self) -> bool {
        matches!(
            self,
            Syscall::Blocked(
                Call::Poll {
                    wait: Wait::Forever,
                    ..
                } | Call::Ppoll {
                    wait: Wait::Forever,
                    ..
                } | Call::EpollWait {
                    wait: Wait::Forever
                }
            )
        )
    }

    /// Whether the thread sleeps (`nanosleep`): pacing or waiting between checks, not blocked
    /// on a socket.
    pub fn is_sleep(&self) -> bool {
        matches!(self, Syscall::Blocked(Call::Sleep))
    }
}

/// Every thread of this process, lowest tid first.
pub fn threads() -> Vec<ProcThread> {
    threads_in("/proc/self")
}

/// Every thread of process `pid`, lowest tid first; empty when it is gone.
pub fn threads_of(pid: i32) -> Vec<ProcThread> {
    threads_in(&format!("/proc/{pid}"))
}

fn threads_in(process: &str) -> Vec<ProcThread> {
    let Ok(entries) = fs::read_dir(format!("{process}/task")) else {
        return Vec::new();
    };
    let mut tids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids.into_iter()
        .filter_map(|tid| read_thread(process, tid))
        .collect()
}

fn read_thread(process: &str, tid: i32) -> Option<ProcThread> {
    let dir = format!("{process}/task/{tid}");
    let comm = fs::read_to_string(format!("{dir}/comm"))
        .ok()?
        .trim_end()
        .to_owned();
    let stat = fs::read_to_string(format!("{dir}/stat")).unwrap_or_default();
    // The state letter follows the parenthesised comm, which may itself contain spaces.
    let state_letter = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?");
    let wchan = fs::read_to_string(format!("{dir}/wchan"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let syscall = fs::read_to_string(format!("{dir}/syscall"))
        .map_or(Syscall::Unknown, |s| decode_syscall(&s));
    Some(ProcThread {
        tid,
        comm,
        state: describe_state(state_letter),
        wchan,
        syscall,
    })
}

fn describe_state(letter: &str) -> String {
    let words = match letter {
        "R" => "running",
        "S" => "sleeping",
        "D" => "uninterruptible wait",
        "T" | "t" => "stopped",
        "Z" => "zombie",
        _ => "other",
    };
    format!("{letter} ({words})")
}

/// Decodes the contents of /proc/TID/syscall: `nr arg1 … arg6 sp pc`, or `running`.
pub fn decode_syscall(text: &str) -> Syscall {
    let mut fields = text.split_whitespace();
    let Some(first) = fields.next() else {
        return Syscall::Unknown;
    };
    if first == "running" {
        return Syscall::Running;
    }
    let Ok(number) = first.parse::<i64>() else {
        return Syscall::Unknown;
    };
    if number < 0 {
        return Syscall::Running;
    }
    let args: Vec<u64> = fields
        .take(6)
        .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap_or(0))
        .collect();
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    let wait = |raw: u64| match raw as u32 as i32 {
        t if t < 0 => Wait::Forever,
        t => Wait::Ms(t),
    };
    let call = match number {
        n if Some(n) == sys::POLL => Call::Poll {
            fds: arg(1),
            wait: wait(arg(2)),
        },
        n if n == libc::SYS_ppoll => Call::Ppoll {
            fds: arg(1),
            wait: if arg(2) == 0 {
                Wait::Forever
            } else {
                Wait::Bounded
            },
        },
        n if Some(n) == sys::EPOLL_WAIT || n == libc::SYS_epoll_pwait => {
            Call::EpollWait { wait: wait(arg(3)) }
        }
        n if n == libc::SYS_futex => Call::Futex,
        n if n == libc::SYS_read => Call::Read { fd: arg(0) },
        n if n == libc::SYS_recvfrom => Call::Recvfrom { fd: arg(0) },
        n if n == libc::SYS_clock_nanosleep || Some(n) == sys::NANOSLEEP => Call::Sleep,
        n if n == libc::SYS_wait4 => Call::Wait4,
        n => Call::Other(n),
    };
    Syscall::Blocked(call)
}

/// The processes of this user whose environment holds `name=value`, lowest pid first. The
/// environment is the one the process was given when it exec'd (/proc/PID/environ): a process
/// that exec'd with that variable removed does not carry it. A process whose environment cannot
/// be read (gone, another user's, not dumpable, a zombie) is left out.
pub fn processes_with_variable(name: &str, value: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid = e.file_name().to_str()?.parse().ok()?;
            (e.metadata().ok()?.uid() == me).then_some(pid)
        })
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|environ| environ_holds(&environ, name, value))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Whether an environment as /proc/PID/environ gives it (`NAME=value` entries, each ended by a
/// NUL) holds exactly `name=value`.
fn environ_holds(environ: &[u8], name: &str, value: &str) -> bool {
    environ.split(|&b| b == 0).any(|entry| {
        entry
            .strip_prefix(name.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
            .is_some_and(|rest| rest == value.as_bytes())
    })
}

/// System call numbers that only some architectures have.
mod sys {
    #[cfg(target_arch = "x86_64")]
    pub const POLL: Option<i64> = Some(libc::SYS_poll);
    #[cfg(not(target_arch = "x86_64"))]
    pub const POLL: Option<i64> = None;
    #[cfg(target_arch = "x86_64")]
    pub const EPOLL_WAIT: Option<i64> = Some(libc::SYS_epoll_wait);
    #[cfg(not(target_arch = "x86_64"))]
    pub const EPOLL_WAIT: Option<i64> = None;
    #[cfg(target_arch = "x86_64")]
    pub const NANOSLEEP: Option<i64> = Some(libc::SYS_nanosleep);
    #[cfg(not(target_arch = "x86_64"))]
    pub const NANOSLEEP: Option<i64> = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn decodes_an_infinite_poll_like_a_thread_in_term() {
        let s = decode_syscall("7 0x7ffc 0x1 0xffffffff 0x0 0x0 0x0 0x7ffc 0x7f00\n");
        assert_eq!(s.describe(), "poll(1 fd, no timeout)");
        assert!(s.waits_forever());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn decodes_epoll_wait_with_a_timer_and_running_threads() {
        assert_eq!(
            decode_syscall("232 0x5 0x7f 0x100 0x8a 0 0 0 0").describe(),
            "epoll_wait(timeout 138 ms)"
        );
        assert_eq!(decode_syscall("running"), Syscall::Running);
    }

    #[test]
    fn reads_its_own_threads() {
        let me = threads();
        assert!(me.iter().any(|t| t.tid == nix::unistd::gettid().as_raw()));
    }

    #[test]
    fn an_environment_holds_a_variable_only_with_that_exact_value() {
        let environ = b"PATH=/bin\0XRUN=a\0RUN=ab\0RUN\0RUN=a=b\0=a\0";
        assert!(environ_holds(environ, "RUN", "ab"));
        assert!(environ_holds(environ, "RUN", "a=b"));
        assert!(environ_holds(environ, "PATH", "/bin"));
        for (name, value) in [
            ("RUN", "a"),
            ("RUN", "abc"),
            ("RUN", ""),
            ("UN", "ab"),
            ("XRUN", "ab"),
        ] {
            assert!(!environ_holds(environ, name, value), "{name}={value}");
        }
        assert!(!environ_holds(b"", "RUN", "ab"));
        assert!(
            environ_holds(b"RUN=ab", "RUN", "ab"),
            "the last entry without its NUL"
        );
    }

    #[test]
    fn finds_the_processes_that_carry_a_variable_and_only_those() {
        let value = format!("{}-{:?}", std::process::id(), std::time::Instant::now());
        let start = |value: Option<&str>| {
            let mut command = std::process::Command::new("sleep");
            command.arg("30");
            if let Some(value) = value {
                command.env("TERMWATCH_PROCFS_TEST", value);
            }
            command.spawn().unwrap()
        };
        let mut marked = start(Some(&value));
        let mut other = start(Some("something else"));
        let mut unmarked = start(None);
        // A process shows its environment once its exec has set it up, which may be a moment
        // after `spawn` returned.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut found = processes_with_variable("TERMWATCH_PROCFS_TEST", &value);
        while found.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
            found = processes_with_variable("TERMWATCH_PROCFS_TEST", &value);
        }
        for child in [&mut marked, &mut other, &mut unmarked] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert_eq!(found, vec![marked.id() as i32]);
        assert!(
            processes_with_variable("TERMWATCH_PROCFS_TEST", &value).is_empty(),
            "a reaped process is gone"
        );
    }
}
