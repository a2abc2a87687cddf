//! The processes a program started, from /proc: its group, and every process below it (also
//! those that moved to a group or session of their own, and orphans reparented to termwatch,
//! the child subreaper).

use std::collections::BTreeSet;

/// One line of /proc/PID/stat, the fields used here.
struct Stat {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    zombie: bool,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        zombie: matches!(fields.first(), Some(&"Z") | Some(&"X")),
    })
}

fn all() -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(stat)
        .collect()
}

/// The living processes of the program `root` (also its group id): members of its group,
/// descendants of anything in `seen`, which grows with every process found (so that a process
/// reparented after its parent died is still known), and orphans reparented to this process
/// that it did not start itself (`own`).
pub fn alive_descendants(root: i32, seen: &mut BTreeSet<i32>, own: &BTreeSet<i32>) -> Vec<i32> {
    let processes = all();
    let me = std::process::id() as i32;
    loop {
        let before = seen.len();
        for p in &processes {
            let reparented_here = p.ppid == me && !own.contains(&p.pid);
            if p.pgrp == root || seen.contains(&p.ppid) || reparented_here {
                seen.insert(p.pid);
            }
        }
        if seen.len() == before {
            break;
        }
    }
    processes
        .iter()
        .filter(|p| !p.zombie && seen.contains(&p.pid))
        .map(|p| p.pid)
        .collect()
}

/// Reaps ended processes of `seen` that were reparented to this process (`program` itself is
/// reaped by its `Child`).
pub fn reap_orphans(seen: &BTreeSet<i32>, program: i32) {
    for &pid in seen.iter().filter(|&&p| p != program) {
        // SAFETY: waitpid on a specific pid with WNOHANG; a pid that is not our child is ECHILD.
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
}

/// A process's name (comm), or `?`.
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_or_else(|_| "?".to_owned(), |c| c.trim_end().to_owned())
}
