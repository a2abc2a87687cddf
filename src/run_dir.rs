//! Run folders: the private folder under the temporary directory that holds one scenario's
//! (or one program's) ipc files and probe output. A folder's name says which process made it,
//! by pid and start time, so that a reused pid is not mistaken for its owner: whoever finds a
//! folder can tell whether its owner is gone, and no folder ever exists unclaimed, not even
//! for the moment between making it and writing something into it.
//!
//! ```text
//! tw-<pid>.<start time>-<random>      numbers in base 36: /tmp/tw-2n9c.1ekv3-a8Zq
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The prefix of every run folder's name.
pub const PREFIX: &str = "tw-";
/// How many random characters end a name (the owner's own folders differ there).
const RANDOM_LEN: usize = 4;
/// Base-36 digits of the largest pid Linux gives (`pid_max` is at most 2^22: `2hyo0`).
const PID_DIGITS_MAX: usize = 5;
/// Base-36 digits of a start time, in clock ticks since boot (100 per second): 36^8 ticks
/// is 890 years of uptime.
const START_DIGITS_MAX: usize = 8;

/// The longest name a run folder can have, with `X` for every character that varies; what
/// checks made before running measure ipc paths with.
pub fn longest_name() -> String {
    format!(
        "{PREFIX}{}.{}-{}",
        "X".repeat(PID_DIGITS_MAX),
        "X".repeat(START_DIGITS_MAX),
        "X".repeat(RANDOM_LEN)
    )
}

/// A process, named so that a reused pid is not mistaken for it: its pid and start time (in
/// clock ticks since boot, from /proc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pid: u32,
    start_time: u64,
}

impl ProcessId {
    /// The process `pid` as it is now, or `None` when there is none.
    fn of(pid: u32) -> Option<Self> {
        let (_, start_time) = stat(pid)?;
        Some(ProcessId { pid, start_time })
    }

    /// This process.
    pub fn me() -> io::Result<Self> {
        ProcessId::of(std::process::id())
            .ok_or_else(|| io::Error::other("cannot read this process's start time"))
    }

    /// Whether this very process still runs. A zombie does not: it will never again remove
    /// anything, whoever reaps it.
    pub fn alive(self) -> bool {
        matches!(stat(self.pid), Some((state, start)) if start == self.start_time && !matches!(state, 'Z' | 'X'))
    }

    /// `<pid>.<start time>` in base 36, as in a folder's name.
    pub fn render(self) -> String {
        format!(
            "{}.{}",
            base36(u64::from(self.pid)),
            base36(self.start_time)
        )
    }

    /// Reads what [`ProcessId::render`] wrote.
    pub fn parse(text: &str) -> Option<Self> {
        let (pid, start) = text.split_once('.')?;
        Some(ProcessId {
            pid: u32::try_from(from_base36(pid)?).ok()?,
            start_time: from_base36(start)?,
        })
    }
}

impl std::str::FromStr for ProcessId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ProcessId::parse(text)
            .ok_or_else(|| format!("not a process (`<pid>.<start>` in base 36): {text:?}"))
    }
}

/// The state letter and start time of process `pid`, from field 3 and field 22 of
/// /proc/PID/stat (counted after the parenthesised command name, which may hold spaces).
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

fn from_base36(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return None;
    }
    u64::from_str_radix(text, 36).ok()
}

/// Makes a new run folder for this process under the temporary directory.
pub fn create() -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", ProcessId::me()?.render()))
        .rand_bytes(RANDOM_LEN)
        .tempdir_in(std::env::temp_dir())
}

/// The process that made the run folder called `name`, or `None` when `name` is not a run
/// folder's.
pub fn owner(name: &str) -> Option<ProcessId> {
    let (owner, random) = name.strip_prefix(PREFIX)?.rsplit_once('-')?;
    (random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| ProcessId::parse(owner))
        .flatten()
}

/// Removes the run folders under `temp` whose owner is one for which `gone` holds; returns
/// the folders removed.
pub fn sweep(temp: &Path, gone: impl Fn(ProcessId) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_str().and_then(owner).is_some_and(&gone)
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
        .filter(|folder| remove(folder).is_ok())
        .collect()
}

/// Removes `folder` and everything in it. A process that was killed a moment ago may still
/// be making a file in it (an ipc socket's), which makes one pass fail: tries again for up to
/// a second.
pub fn remove(folder: &Path) -> io::Result<()> {
    const TRIES: u32 = 100;
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(folder) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if tries == TRIES => return Err(e),
            Err(_) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ids_round_trip_through_names() {
        let me = ProcessId::me().unwrap();
        assert!(me.alive());
        assert_eq!(ProcessId::parse(&me.render()), Some(me));
        let largest = ProcessId {
            pid: 1 << 22,
            start_time: 36u64.pow(8) - 1,
        };
        assert_eq!(ProcessId::parse(&largest.render()), Some(largest));
        assert_eq!(
            format!("{PREFIX}{}-abcd", largest.render()).len(),
            longest_name().len()
        );
        for bad in [
            "",
            ".",
            "1",
            "1.",
            ".1",
            "1.2.3",
            "A.1",
            "1.-2",
            "zzzzzzzzzzzzzzzzzzzz.1",
        ] {
            assert_eq!(ProcessId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_folder_is_made_with_its_owner_in_its_name() {
        let folder = create().unwrap();
        let name = folder.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(owner(name), Some(ProcessId::me().unwrap()));
        assert!(name.len() <= longest_name().len());
        for other in [
            "tw-",
            "tw-1.2",
            "tw-1.2-abc",
            "tw-1.2-abc!",
            "xx-1.2-abcd",
            "tw-abcdef",
        ] {
            assert_eq!(owner(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_reused_pid_or_a_zombie_is_not_the_owner() {
        let me = ProcessId::me().unwrap();
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.alive());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let zombie = ProcessId::of(pid).unwrap();
        // Not reaped yet: wait until it has exited and is a zombie.
        while stat(pid).is_some_and(|(state, _)| state != 'Z') {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!zombie.alive());
        child.wait().unwrap();
    }

    #[test]
    fn only_folders_whose_owner_is_gone_are_swept() {
        let temp = tempfile::tempdir().unwrap();
        let me = ProcessId::me().unwrap();
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        let folder = |name: String| {
            let path = temp.path().join(name);
            std::fs::create_dir(&path).unwrap();
            std::fs::write(path.join("sub-bind"), "").unwrap();
            path
        };
        let live = folder(format!("{PREFIX}{}-live", me.render()));
        let dead = folder(format!("{PREFIX}{}-dead", reused.render()));
        let unnamed = folder(format!("{PREFIX}abcdef"));
        let other = folder(format!("other-{}-dead", reused.render()));
        assert_eq!(sweep(temp.path(), |o| !o.alive()), vec![dead.clone()]);
        assert!(live.exists() && unnamed.exists() && other.exists() && !dead.exists());
        // What a janitor does once its run's pipe closed: that run's folders go.
        assert_eq!(sweep(temp.path(), |o| o == me), vec![live.clone()]);
        assert!(!live.exists() && unnamed.exists() && other.exists());
    }
}
