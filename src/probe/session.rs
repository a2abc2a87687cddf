//! One program's probe session: before the spawn, the library, the channel and the slot table
//! and what the program's command needs ([`ProbeSetup`]); after it, the thread that reads the
//! channel and the report of what is known now ([`ProbeMonitor`]).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::report::{ProbeReport, ProcessView};
use super::slots::SlotTable;
use super::state::ProbeState;
use super::{library, now_ns, wire};

/// Everything the program needs to load the probe, made before it is spawned.
#[derive(Debug)]
pub struct ProbeSetup {
    library: PathBuf,
    ours: OwnedFd,
    theirs: OwnedFd,
    table: SlotTable,
}

fn identity(fd: i32) -> io::Result<(u64, u64)> {
    // SAFETY: an all-zero stat is valid to write into.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is a valid stat.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.st_dev, st.st_ino))
}

impl ProbeSetup {
    /// Writes the library into `dir` (the run's private folder, removed with it) and opens the
    /// channel and the slot table (both close-on-exec here).
    pub fn new(dir: &Path) -> io::Result<ProbeSetup> {
        let library = library::materialize(dir)?;
        let mut fds = [0; 2];
        let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both were just opened and belong to nobody else.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let table = SlotTable::create(wire::SLOTS)?;
        Ok(ProbeSetup {
            library,
            ours,
            theirs,
            table,
        })
    }

    /// The library's path.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// The value of [`wire::ENV`]: both descriptors with their identities, and the table size.
    pub fn env_value(&self) -> io::Result<String> {
        let (chan, table) = (self.theirs.as_raw_fd(), self.table.fd());
        let ((cd, ci), (td, ti)) = (identity(chan)?, identity(table)?);
        Ok(format!(
            "{chan}:{cd}:{ci}:{table}:{td}:{ti}:{}",
            self.table.slots()
        ))
    }

    /// `LD_PRELOAD` with the library appended to `existing`.
    pub fn preload(&self, existing: Option<&OsStr>) -> OsString {
        let mut value = OsString::new();
        if let Some(existing) =
            existing.filter(|e| !e.as_bytes().iter().all(u8::is_ascii_whitespace))
        {
            value.push(existing);
            value.push(":");
        }
        value.push(&self.library);
        value
    }

    /// Gives `command` the probe: `LD_PRELOAD` (appended to the one it would have: set on it,
    /// else inherited; call this after any `env_clear`), [`wire::ENV`], and keeps the two
    /// descriptors open across its exec (and only its).
    pub fn configure(&self, command: &mut Command) -> io::Result<()> {
        let set = command
            .get_envs()
            .find(|(key, _)| *key == "LD_PRELOAD")
            .map(|(_, v)| v);
        let existing = match set {
            Some(value) => value.map(OsStr::to_owned),
            None => std::env::var_os("LD_PRELOAD"),
        };
        command.env("LD_PRELOAD", self.preload(existing.as_deref()));
        command.env(wire::ENV, self.env_value()?);
        let keep = [self.theirs.as_raw_fd(), self.table.fd()];
        // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for fd in keep {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// After the spawn: closes the program's ends here and starts reading. `root` is the
    /// program's pid.
    pub fn start(self, root: u32) -> io::Result<ProbeMonitor> {
        let ProbeSetup {
            ours,
            theirs,
            table,
            ..
        } = self;
        drop(theirs);
        let channel = Arc::new(ours);
        let state = Arc::new(Mutex::new(ProbeState::default()));
        let (done_tx, done) = mpsc::channel();
        let reader = {
            let (channel, state) = (Arc::clone(&channel), Arc::clone(&state));
            std::thread::Builder::new()
                .name("probe-reader".into())
                .spawn(move || {
                    let mut buf = [0u8; 2048];
                    loop {
                        // SAFETY: buf is valid for buf.len() bytes.
                        let n = unsafe {
                            libc::recv(channel.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                        };
                        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                        {
                            continue;
                        }
                        if n <= 0 {
                            break;
                        }
                        let line = String::from_utf8_lossy(&buf[..n as usize]);
                        state
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .apply_line(&line);
                    }
                    let _ = done_tx.send(());
                })?
        };
        Ok(ProbeMonitor {
            root: root as i32,
            state,
            table,
            channel,
            reader: Some(reader),
            done,
        })
    }
}

/// A running probe session.
#[derive(Debug)]
pub struct ProbeMonitor {
    root: i32,
    state: Arc<Mutex<ProbeState>>,
    table: SlotTable,
    channel: Arc<OwnedFd>,
    reader: Option<JoinHandle<()>>,
    done: Receiver<()>,
}

impl ProbeMonitor {
    /// What is known now: the records so far, completed with the slot table read now.
    pub fn state(&self) -> ProbeState {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Ok(entries) = self.table.read() {
            state.merge_slots(&entries);
        }
        state
    }

    /// The report now. `name_threads` may add better thread names to the view (py-spy's).
    pub fn report(&self, name_threads: impl FnOnce(&mut ProcessView)) -> ProbeReport {
        let state = self.state();
        let mut view = ProcessView::read(&state, self.root);
        name_threads(&mut view);
        ProbeReport::new(&state, &view, self.root, now_ns())
    }

    /// Waits at most `bound` for every process holding the channel to exit, stops reading,
    /// and returns the final state.
    pub fn finish(mut self, bound: Duration) -> ProbeState {
        let _ = self.done.recv_timeout(bound);
        self.stop();
        self.state()
    }

    fn stop(&mut self) {
        // SAFETY: shutting down our own socket wakes the reader with end-of-file.
        unsafe { libc::shutdown(self.channel.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for ProbeMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_is_appended_and_blank_ones_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let setup = ProbeSetup::new(dir.path()).unwrap();
        let lib = setup.library().to_str().unwrap().to_owned();
        assert_eq!(setup.preload(None), OsString::from(&lib));
        assert_eq!(setup.preload(Some(OsStr::new(" "))), OsString::from(&lib));
        assert_eq!(
            setup.preload(Some(OsStr::new("/x/a.so"))),
            OsString::from(format!("/x/a.so:{lib}"))
        );
        let value = setup.env_value().unwrap();
        assert_eq!(value.split(':').count(), 7, "{value}");
    }

    #[test]
    fn reads_records_a_child_sends_until_it_exits() {
        let dir = tempfile::tempdir().unwrap();
        let setup = ProbeSetup::new(dir.path()).unwrap();
        let mut command = Command::new("sh");
        // The child writes a record itself on the inherited descriptor: bash's /dev/fd cannot
        // send a packet, so python does it when present; otherwise check the plumbing only.
        command.args(["-c", "exit 0"]).env("LD_PRELOAD", "");
        setup.configure(&mut command).unwrap();
        let envs: Vec<_> = command.get_envs().collect();
        assert!(
            envs.iter()
                .any(|(k, v)| *k == "LD_PRELOAD" && *v == Some(setup.library().as_os_str()))
        );
        let mut child = command.spawn().unwrap();
        let monitor = setup.start(child.id()).unwrap();
        child.wait().unwrap();
        let state = monitor.finish(Duration::from_secs(10));
        // sh itself loads the probe: it says hello and makes no libzmq call.
        let process = &state.processes[&(child.id() as i32)];
        assert!(!process.used_zmq());
    }
}
