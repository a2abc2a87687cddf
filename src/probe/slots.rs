//! The shared slot table: created here (a memfd the program inherits), read when termwatch
//! reports. Each used slot gives one open socket's last call and message counts.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use super::wire::{self, Call, IN_FLIGHT, slot};

/// A socket's last call, as its slot holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCall {
    /// Which call.
    pub call: Call,
    /// get/setsockopt: the option; zmq_poll: the number of items.
    pub detail: u16,
    /// Entered and not returned.
    pub in_flight: bool,
    /// When it was entered (in flight) or returned (CLOCK_MONOTONIC_COARSE, ns).
    pub ns: u64,
    /// Its errno when it failed.
    pub errno: Option<i32>,
}

/// One used slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotEntry {
    /// Owning process.
    pub pid: i32,
    /// Socket serial in that process.
    pub serial: u64,
    /// Socket address.
    pub socket: u64,
    /// Last call, if it has a known code.
    pub last: Option<LastCall>,
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
}

/// The table, termwatch's end.
#[derive(Debug)]
pub struct SlotTable {
    file: File,
    slots: usize,
}

impl SlotTable {
    /// A new zeroed table of `slots` slots (a power of two), close-on-exec.
    pub fn create(slots: usize) -> io::Result<SlotTable> {
        assert!(slots.is_power_of_two(), "slot count is a power of two");
        // SAFETY: a NUL-terminated name and valid flags.
        let fd = unsafe { libc::memfd_create(c"termwatch-probe".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len((wire::HEADER + slots * wire::SLOT) as u64)?;
        file.write_all_at(&wire::MAGIC.to_ne_bytes(), 0)?;
        Ok(SlotTable { file, slots })
    }

    /// The memfd.
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Every used slot now.
    pub fn read(&self) -> io::Result<Vec<SlotEntry>> {
        let mut bytes = vec![0u8; self.slots * wire::SLOT];
        self.file.read_exact_at(&mut bytes, wire::HEADER as u64)?;
        Ok(parse(&bytes))
    }
}

/// Used slots in a table's bytes (after the header).
pub fn parse(bytes: &[u8]) -> Vec<SlotEntry> {
    let u64_at = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap());
    let u32_at = |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().unwrap());
    bytes
        .chunks_exact(wire::SLOT)
        .filter_map(|s| {
            let serial = u64_at(s, slot::SERIAL);
            if serial == 0 || serial == u64::MAX {
                return None;
            }
            let word = u32_at(s, slot::CALL);
            let errno = u32_at(s, slot::ERRNO) as i32;
            let last = Call::from_code(word as u8).map(|call| LastCall {
                call,
                detail: (word >> 8) as u16,
                in_flight: word & IN_FLIGHT != 0,
                ns: u64_at(s, slot::NS),
                errno: (errno != 0).then_some(errno),
            });
            Some(SlotEntry {
                pid: u32_at(s, slot::PID) as i32,
                serial,
                socket: u64_at(s, slot::KEY),
                last,
                sent: u64_at(s, slot::SENT),
                received: u64_at(s, slot::RECEIVED),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes of one slot as the probe would write it.
    pub(crate) fn slot_bytes(entry: &SlotEntry) -> Vec<u8> {
        let mut s = vec![0u8; wire::SLOT];
        let mut put = |at: usize, bytes: &[u8]| s[at..at + bytes.len()].copy_from_slice(bytes);
        put(slot::SERIAL, &entry.serial.to_ne_bytes());
        put(slot::KEY, &entry.socket.to_ne_bytes());
        put(slot::PID, &(entry.pid as u32).to_ne_bytes());
        if let Some(last) = entry.last {
            let word = last.call as u32
                | (u32::from(last.detail) << 8)
                | if last.in_flight { IN_FLIGHT } else { 0 };
            put(slot::CALL, &word.to_ne_bytes());
            put(slot::NS, &last.ns.to_ne_bytes());
            put(slot::ERRNO, &(last.errno.unwrap_or(0) as u32).to_ne_bytes());
        }
        put(slot::SENT, &entry.sent.to_ne_bytes());
        put(slot::RECEIVED, &entry.received.to_ne_bytes());
        s
    }

    #[test]
    fn reads_used_slots_and_skips_free_ones() {
        let entry = SlotEntry {
            pid: 42,
            serial: 3,
            socket: 0x7b,
            last: Some(LastCall {
                call: Call::Getsockopt,
                detail: 15,
                in_flight: true,
                ns: 99,
                errno: Some(156384765),
            }),
            sent: 1,
            received: 2,
        };
        let mut bytes = vec![0u8; wire::SLOT];
        bytes.extend(slot_bytes(&entry));
        let mut claiming = entry;
        claiming.serial = u64::MAX;
        bytes.extend(slot_bytes(&claiming));
        assert_eq!(parse(&bytes), vec![entry]);
    }

    #[test]
    fn a_new_table_is_empty_and_marked() {
        let table = SlotTable::create(16).unwrap();
        assert_eq!(table.read().unwrap(), Vec::new());
        let mut magic = [0u8; 8];
        table.file.read_exact_at(&mut magic, 0).unwrap();
        assert_eq!(u64::from_ne_bytes(magic), wire::MAGIC);
    }
}
