//! termwatch's probe: a library preloaded into a program under test (`LD_PRELOAD`). It defines
//! libzmq's context and socket functions, forwards every call to the real libzmq, and tells
//! termwatch what happened, so that when the program's `zmq_ctx_term` waits forever termwatch
//! can say for which sockets.
//!
//! - Lifecycle (contexts created, term entered and returned, sockets created, bound,
//!   connected, closed, linger set): one record per event on an inherited `SOCK_SEQPACKET`
//!   descriptor, one `send(2)` each, so a hung or killed program has already said everything.
//! - Per-call state (last call and when, in flight or not, messages sent and received): plain
//!   atomic stores into the socket's slot of a shared memory table that termwatch reads when it
//!   reports; a message costs a table lookup, two coarse clock reads and a few stores, no
//!   system call.
//!
//! - Thread names (creating, closing and terming thread): the Python name when the calling
//!   thread is a Python thread holding the GIL ([`python`]), else the kernel's; looked up only
//!   in those three lifecycle wrappers, never per message.
//!
//! Rules it keeps so the program behaves as without it: return values and `errno` pass
//! through; no thread, no signal handler, no lock, no allocation in its own code (reading a
//! Python name calls CPython, which may allocate, only under the conditions [`python`] states);
//! sends never block and never
//! raise SIGPIPE (a full channel drops the record and counts it); each descriptor is checked
//! to still be termwatch's before use; a forked child updates its pid (every record carries
//! it). The real libzmq is found lazily at the first call: `dlsym(RTLD_NEXT)` for a program
//! linked to it, else the loaded object whose path names zmq, opened with `RTLD_NOLOAD`
//! (pyzmq loads libzmq as a dependency of a module opened `RTLD_LOCAL`, out of `RTLD_NEXT`'s
//! reach).
//!
//! Built by termwatch's build script (`rustc --crate-type cdylib`), `no_std`, 64-bit Linux
//! with glibc.
#![no_std]

mod python;
// Shared with termwatch's reader, which uses the parts the probe does not.
#[allow(dead_code)]
mod wire;

use core::ffi::{c_char, c_int, c_long, c_short, c_void};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use wire::{Call, IN_FLIGHT, Kind, NameSource, TermFunction, slot};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { abort() }
}

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// The leading fields of `struct dl_phdr_info`.
#[repr(C)]
struct DlPhdrInfo {
    addr: usize,
    name: *const c_char,
}

#[repr(C)]
struct DlInfo {
    fname: *const c_char,
    fbase: *mut c_void,
    sname: *const c_char,
    saddr: *mut c_void,
}

/// `zmq_pollitem_t`.
#[repr(C)]
pub struct PollItem {
    socket: *mut c_void,
    fd: c_int,
    events: c_short,
    revents: c_short,
}

#[link(name = "c")]
#[link(name = "dl")]
unsafe extern "C" {
    fn abort() -> !;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlopen(path: *const c_char, flags: c_int) -> *mut c_void;
    fn dlclose(handle: *mut c_void) -> c_int;
    fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
    fn dl_iterate_phdr(
        callback: unsafe extern "C" fn(*mut DlPhdrInfo, usize, *mut c_void) -> c_int,
        data: *mut c_void,
    ) -> c_int;
    fn __errno_location() -> *mut c_int;
    fn getenv(name: *const c_char) -> *const c_char;
    fn strnlen(s: *const c_char, max: usize) -> usize;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    fn fstat(fd: c_int, buf: *mut u64) -> c_int;
    fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
    fn gettid() -> c_int;
    fn getpid() -> c_int;
    fn getppid() -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
    fn readlink(path: *const c_char, buf: *mut c_char, size: usize) -> isize;
}

const RTLD_LAZY: c_int = 1;
const RTLD_NOLOAD: c_int = 4;
const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;
const PROT_READ_WRITE: c_int = 3;
const MAP_SHARED: c_int = 1;
const MAP_FAILED: *mut c_void = !0usize as *mut c_void;
const MSG_DONTWAIT: c_int = 0x40;
const MSG_NOSIGNAL: c_int = 0x4000;
const CLOCK_MONOTONIC: c_int = 1;
const CLOCK_MONOTONIC_COARSE: c_int = 6;
const PR_GET_NAME: c_int = 16;
const EAGAIN: c_int = 11;
const ENOSYS: c_int = 38;
const ZMQ_LINGER: c_int = 17;
const ZMQ_LAST_ENDPOINT: c_int = 32;

/// Slots looked at before giving up (a socket without a slot still has its lifecycle records).
const MAX_PROBE: usize = 64;
/// A slot being claimed.
const CLAIMING: u64 = u64::MAX;
/// No slot.
const NO_SLOT: usize = usize::MAX;

static CHANNEL: AtomicI32 = AtomicI32::new(-1);
static CHANNEL_DEV: AtomicU64 = AtomicU64::new(0);
static CHANNEL_INO: AtomicU64 = AtomicU64::new(0);
static TABLE: AtomicUsize = AtomicUsize::new(0);
static TABLE_SLOTS: AtomicUsize = AtomicUsize::new(0);
static PID: AtomicU32 = AtomicU32::new(0);
static SERIALS: AtomicU64 = AtomicU64::new(1);
static LOST: AtomicU64 = AtomicU64::new(0);
static LIBZMQ: AtomicUsize = AtomicUsize::new(0);

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: unsafe extern "C" fn() = init;

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *__errno_location() }
}

fn set_errno(value: c_int) {
    // SAFETY: as above.
    unsafe { *__errno_location() = value }
}

/// Restores the `errno` it saw when dropped.
struct KeepErrno(c_int);

impl KeepErrno {
    fn now() -> Self {
        KeepErrno(errno())
    }
}

impl Drop for KeepErrno {
    fn drop(&mut self) {
        set_errno(self.0)
    }
}

fn clock(id: c_int) -> u64 {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { clock_gettime(id, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// `(device, inode)` of an open descriptor.
fn identity(fd: c_int) -> Option<(u64, u64)> {
    // struct stat on x86_64 and aarch64: st_dev at byte 0, st_ino at byte 8.
    let mut st = [0u64; 32];
    // SAFETY: st is larger than struct stat on every 64-bit Linux.
    (unsafe { fstat(fd, st.as_mut_ptr()) } == 0).then_some((st[0], st[1]))
}

/// Parses `a:b:c...` into numbers.
fn parse_numbers<const N: usize>(text: &[u8]) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    let mut fields = text.split(|&b| b == b':');
    for value in out.iter_mut() {
        let field = fields.next()?;
        if field.is_empty() {
            return None;
        }
        for &b in field {
            if !b.is_ascii_digit() {
                return None;
            }
            *value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
    }
    fields.next().is_none().then_some(out)
}

fn cstr<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: p is a NUL-terminated string; at most MAX_TEXT bytes are read.
    unsafe {
        let len = strnlen(p, wire::MAX_TEXT);
        core::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

unsafe extern "C" fn init() {
    let _errno = KeepErrno::now();
    // SAFETY: getenv returns NULL or a NUL-terminated string.
    let value = cstr(unsafe { getenv(c"TERMWATCH_PROBE".as_ptr()) });
    let Some([chan, chan_dev, chan_ino, shm, shm_dev, shm_ino, slots]) = parse_numbers::<7>(value)
    else {
        return;
    };
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { getpid() } as u32, Ordering::Relaxed);
    if identity(chan as c_int) == Some((chan_dev, chan_ino)) {
        CHANNEL_DEV.store(chan_dev, Ordering::Relaxed);
        CHANNEL_INO.store(chan_ino, Ordering::Relaxed);
        CHANNEL.store(chan as c_int, Ordering::Relaxed);
    }
    let slots = slots as usize;
    if identity(shm as c_int) == Some((shm_dev, shm_ino)) && slots.is_power_of_two() {
        let len = wire::HEADER + slots * wire::SLOT;
        // SAFETY: a fresh shared mapping of the table termwatch sized.
        let base = unsafe {
            mmap(
                core::ptr::null_mut(),
                len,
                PROT_READ_WRITE,
                MAP_SHARED,
                shm as c_int,
                0,
            )
        };
        // SAFETY: the header is mapped and 8-aligned.
        if base != MAP_FAILED && unsafe { *base.cast::<u64>() } == wire::MAGIC {
            TABLE_SLOTS.store(slots, Ordering::Relaxed);
            TABLE.store(base as usize, Ordering::Release);
        }
    }
    // SAFETY: after_fork is a plain function that stays loaded as long as the handler.
    unsafe { pthread_atfork(None, None, Some(after_fork)) };
    let mut rec = Rec::new(Kind::Hello);
    // SAFETY: getppid has no preconditions.
    rec.int(i64::from(unsafe { getppid() }));
    // Loaded before the program runs: no Python thread yet.
    rec.kernel_thread_name();
    let mut exe = [0u8; wire::MAX_TEXT];
    // SAFETY: exe is a buffer of exe.len() bytes.
    let n = unsafe {
        readlink(
            c"/proc/self/exe".as_ptr(),
            exe.as_mut_ptr().cast(),
            exe.len(),
        )
    };
    rec.text(exe.get(..n.max(0) as usize).unwrap_or(&[]));
    rec.emit();
}

unsafe extern "C" fn after_fork() {
    let _errno = KeepErrno::now();
    let parent = PID.load(Ordering::Relaxed);
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { getpid() } as u32, Ordering::Relaxed);
    let mut rec = Rec::new(Kind::Fork);
    rec.int(i64::from(parent));
    rec.emit();
}

/// One channel record, built on the stack.
struct Rec {
    buf: [u8; 1024],
    len: usize,
}

impl Rec {
    fn new(kind: Kind) -> Rec {
        let mut rec = Rec {
            buf: [0; 1024],
            len: 0,
        };
        for &b in kind.name().as_bytes() {
            rec.byte(b);
        }
        rec.int(i64::from(PID.load(Ordering::Relaxed)));
        // SAFETY: gettid has no preconditions.
        rec.int(i64::from(unsafe { gettid() }));
        rec.int(clock(CLOCK_MONOTONIC) as i64);
        rec
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn int(&mut self, value: i64) {
        self.byte(b'\t');
        if value < 0 {
            self.byte(b'-');
        }
        self.digits(value.unsigned_abs(), 10);
    }

    fn hex(&mut self, value: u64) {
        self.byte(b'\t');
        self.byte(b'0');
        self.byte(b'x');
        self.digits(value, 16);
    }

    fn digits(&mut self, mut value: u64, base: u64) {
        let mut tmp = [0u8; 20];
        let mut n = 0;
        loop {
            let digit = (value % base) as u8;
            tmp[n] = if digit < 10 {
                b'0' + digit
            } else {
                b'a' + digit - 10
            };
            n += 1;
            value /= base;
            if value == 0 {
                break;
            }
        }
        for &b in tmp[..n].iter().rev() {
            self.byte(b);
        }
    }

    fn text(&mut self, text: &[u8]) {
        self.byte(b'\t');
        for &b in text.iter().take(wire::MAX_TEXT) {
            self.byte(if b.is_ascii_graphic() || b == b' ' {
                b
            } else {
                b'?'
            });
        }
    }

    /// The calling thread's name: its Python name when it is a Python thread holding the GIL
    /// (see [`python`]), else the kernel's.
    fn thread_name(&mut self) {
        let mut name = [0u8; wire::MAX_TEXT];
        match python::thread_name(&mut name) {
            Some(len) => {
                self.text(NameSource::Python.name().as_bytes());
                self.text(&name[..len]);
            }
            None => self.kernel_thread_name(),
        }
    }

    /// The calling thread's kernel name (comm).
    fn kernel_thread_name(&mut self) {
        let mut name = [0u8; 17];
        // SAFETY: PR_GET_NAME writes at most 16 bytes.
        unsafe { prctl(PR_GET_NAME, name.as_mut_ptr()) };
        let len = name.iter().position(|&b| b == 0).unwrap_or(16);
        self.text(NameSource::Kernel.name().as_bytes());
        self.text(&name[..len]);
    }

    /// Sends the record; never blocks, never raises SIGPIPE.
    fn emit(mut self) {
        let fd = CHANNEL.load(Ordering::Relaxed);
        if fd < 0 {
            return;
        }
        let expected = (
            CHANNEL_DEV.load(Ordering::Relaxed),
            CHANNEL_INO.load(Ordering::Relaxed),
        );
        if identity(fd) != Some(expected) {
            // The program closed the descriptor (and maybe reused its number): stop.
            CHANNEL.store(-1, Ordering::Relaxed);
            return;
        }
        let lost = LOST.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let mut note = Rec::new(Kind::Lost);
            note.int(lost as i64);
            if !note.send(fd) {
                LOST.fetch_add(lost, Ordering::Relaxed);
            }
        }
        self.byte(b'\n');
        if !self.send(fd) {
            LOST.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn send(&self, fd: c_int) -> bool {
        // SAFETY: buf holds len initialised bytes.
        let sent = unsafe {
            send(
                fd,
                self.buf.as_ptr().cast(),
                self.len,
                MSG_DONTWAIT | MSG_NOSIGNAL,
            )
        };
        if sent < 0 && errno() != EAGAIN {
            // termwatch is gone: nobody reads any more.
            CHANNEL.store(-1, Ordering::Relaxed);
        }
        sent >= 0
    }
}

/// A libzmq function, resolved at its first call.
struct Real {
    name: &'static core::ffi::CStr,
    addr: AtomicUsize,
}

impl Real {
    const fn new(name: &'static core::ffi::CStr) -> Real {
        Real {
            name,
            addr: AtomicUsize::new(0),
        }
    }

    /// The real function's address, 0 if libzmq cannot be found.
    fn get(&self) -> usize {
        let addr = self.addr.load(Ordering::Relaxed);
        if addr != 0 {
            return addr;
        }
        let addr = resolve(self.name);
        self.addr.store(addr, Ordering::Relaxed);
        addr
    }
}

/// The real function named `name`, not this library's.
fn resolve(name: &core::ffi::CStr) -> usize {
    let _errno = KeepErrno::now();
    // SAFETY: RTLD_NEXT lookup of a NUL-terminated name.
    let next = unsafe { dlsym(RTLD_NEXT, name.as_ptr()) };
    if !next.is_null() && !is_ours(next) {
        return next as usize;
    }
    let cached = LIBZMQ.load(Ordering::Relaxed);
    if cached != 0 {
        // SAFETY: a handle kept open.
        let sym = unsafe { dlsym(cached as *mut c_void, name.as_ptr()) };
        if !sym.is_null() && !is_ours(sym) {
            return sym as usize;
        }
    }
    let mut found = Candidates {
        paths: [[0; 512]; 4],
        count: 0,
    };
    // SAFETY: the callback only copies names into `found`.
    unsafe { dl_iterate_phdr(collect_zmq_objects, (&raw mut found).cast()) };
    for path in found.paths.iter().take(found.count) {
        // SAFETY: path is NUL-terminated; RTLD_NOLOAD never loads anything.
        let handle = unsafe { dlopen(path.as_ptr().cast(), RTLD_LAZY | RTLD_NOLOAD) };
        if handle.is_null() {
            continue;
        }
        // SAFETY: a valid handle and name.
        let sym = unsafe { dlsym(handle, name.as_ptr()) };
        if !sym.is_null() && !is_ours(sym) {
            LIBZMQ.store(handle as usize, Ordering::Relaxed);
            return sym as usize;
        }
        // SAFETY: balances the dlopen above.
        unsafe { dlclose(handle) };
    }
    0
}

/// Paths of loaded objects whose name contains `zmq`.
struct Candidates {
    paths: [[u8; 512]; 4],
    count: usize,
}

unsafe extern "C" fn collect_zmq_objects(
    info: *mut DlPhdrInfo,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our data pointer.
    let (info, found) = unsafe { (&*info, &mut *data.cast::<Candidates>()) };
    // SAFETY: dlpi_name is NUL-terminated.
    let name = unsafe {
        let len = if info.name.is_null() {
            0
        } else {
            strnlen(info.name, 511)
        };
        core::slice::from_raw_parts(info.name.cast::<u8>(), len)
    };
    let mentions_zmq = name.windows(3).any(|w| w == b"zmq");
    if let Some(path) = found.paths.get_mut(found.count).filter(|_| mentions_zmq) {
        path[..name.len()].copy_from_slice(name);
        path[name.len()] = 0;
        found.count += 1;
    }
    0
}

/// Whether `addr` lies in this library.
fn is_ours(addr: *mut c_void) -> bool {
    let base = |p: *const c_void| {
        let mut info = DlInfo {
            fname: core::ptr::null(),
            fbase: core::ptr::null_mut(),
            sname: core::ptr::null(),
            saddr: core::ptr::null_mut(),
        };
        // SAFETY: info is a valid Dl_info.
        (unsafe { dladdr(p, &mut info) } != 0).then_some(info.fbase)
    };
    let ours = base((&raw const CHANNEL).cast());
    ours.is_some() && base(addr) == ours
}

/// Calls the real function `$name` of type `$ty`, or returns `$missing` with errno ENOSYS
/// when libzmq cannot be found.
macro_rules! real {
    ($name:literal as $ty:ty, or $missing:expr) => {{
        static REAL: Real = Real::new($name);
        match REAL.get() {
            0 => {
                set_errno(ENOSYS);
                return $missing;
            }
            // SAFETY: the symbol named $name in libzmq has type $ty.
            addr => unsafe { core::mem::transmute::<usize, $ty>(addr) },
        }
    }};
}

type Ptr = *mut c_void;

// ---- the slot table -----------------------------------------------------------------------

fn table() -> Option<(*mut u8, usize)> {
    let base = TABLE.load(Ordering::Acquire);
    (base != 0).then(|| (base as *mut u8, TABLE_SLOTS.load(Ordering::Relaxed)))
}

fn field64(base: *mut u8, index: usize, offset: usize) -> &'static AtomicU64 {
    // SAFETY: index < slots; the field is 8-aligned inside the mapping, which is never unmapped.
    unsafe { AtomicU64::from_ptr(base.add(wire::HEADER + index * wire::SLOT + offset).cast()) }
}

fn field32(base: *mut u8, index: usize, offset: usize) -> &'static AtomicU32 {
    // SAFETY: as field64, 4-aligned.
    unsafe { AtomicU32::from_ptr(base.add(wire::HEADER + index * wire::SLOT + offset).cast()) }
}

fn home(key: Ptr, slots: usize) -> usize {
    ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & (slots - 1)
}

/// The slot of this process's live socket `key`.
fn lookup(key: Ptr) -> usize {
    let Some((base, slots)) = table() else {
        return NO_SLOT;
    };
    let pid = PID.load(Ordering::Relaxed);
    let mut index = home(key, slots);
    for _ in 0..MAX_PROBE {
        let serial = field64(base, index, slot::SERIAL).load(Ordering::Acquire);
        let owner = field64(base, index, slot::KEY).load(Ordering::Relaxed);
        if serial == 0 && owner == 0 {
            break;
        }
        if serial != 0
            && serial != CLAIMING
            && owner == key as u64
            && field32(base, index, slot::PID).load(Ordering::Relaxed) == pid
        {
            return index;
        }
        index = (index + 1) & (slots - 1);
    }
    NO_SLOT
}

/// Gives the new socket `key` a slot: the one a stale entry for the same address holds (its
/// close is still being recorded), else the first free one.
fn claim(key: Ptr, serial: u64) {
    let Some((base, slots)) = table() else { return };
    let stale = lookup(key);
    let taken = |index: usize, from: u64| {
        field64(base, index, slot::SERIAL)
            .compare_exchange(from, CLAIMING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    };
    let mut chosen = NO_SLOT;
    if stale != NO_SLOT {
        let old = field64(base, stale, slot::SERIAL).load(Ordering::Relaxed);
        if old != CLAIMING && taken(stale, old) {
            chosen = stale;
        }
    }
    let mut index = home(key, slots);
    for _ in 0..MAX_PROBE {
        if chosen != NO_SLOT {
            break;
        }
        if taken(index, 0) {
            chosen = index;
        }
        index = (index + 1) & (slots - 1);
    }
    if chosen == NO_SLOT {
        return;
    }
    field64(base, chosen, slot::KEY).store(key as u64, Ordering::Relaxed);
    field32(base, chosen, slot::PID).store(PID.load(Ordering::Relaxed), Ordering::Relaxed);
    field32(base, chosen, slot::CALL).store(Call::Socket as u32, Ordering::Relaxed);
    field64(base, chosen, slot::NS).store(clock(CLOCK_MONOTONIC_COARSE), Ordering::Relaxed);
    field64(base, chosen, slot::SENT).store(0, Ordering::Relaxed);
    field64(base, chosen, slot::RECEIVED).store(0, Ordering::Relaxed);
    field32(base, chosen, slot::ERRNO).store(0, Ordering::Relaxed);
    field64(base, chosen, slot::SERIAL).store(serial, Ordering::Release);
}

/// The serial of the live socket `key` (0 when it has no slot) and its slot.
fn serial_of(key: Ptr) -> (u64, usize) {
    let index = lookup(key);
    match table() {
        Some((base, _)) if index != NO_SLOT => (
            field64(base, index, slot::SERIAL).load(Ordering::Relaxed),
            index,
        ),
        _ => (0, NO_SLOT),
    }
}

/// Frees the slot if it still belongs to `serial`.
fn release(index: usize, serial: u64) {
    if let Some((base, _)) = table().filter(|_| index != NO_SLOT) {
        let _ = field64(base, index, slot::SERIAL).compare_exchange(
            serial,
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

fn call_word(call: Call, detail: u32) -> u32 {
    call as u32 | ((detail & 0xffff) << 8)
}

/// Marks `call` as entered on socket `key`; returns its slot for [`leave`].
#[inline]
fn enter(key: Ptr, call: Call, detail: u32) -> usize {
    let index = lookup(key);
    if let Some((base, _)) = table().filter(|_| index != NO_SLOT) {
        field32(base, index, slot::CALL)
            .store(call_word(call, detail) | IN_FLIGHT, Ordering::Relaxed);
        field64(base, index, slot::NS).store(clock(CLOCK_MONOTONIC_COARSE), Ordering::Relaxed);
    }
    index
}

/// Marks `call` as returned, with its `errno` when `rc` says it failed.
#[inline]
fn leave(index: usize, call: Call, detail: u32, rc: c_int) {
    if let Some((base, _)) = table().filter(|_| index != NO_SLOT) {
        let failure = if rc < 0 { errno() as u32 } else { 0 };
        field32(base, index, slot::ERRNO).store(failure, Ordering::Relaxed);
        field32(base, index, slot::CALL).store(call_word(call, detail), Ordering::Relaxed);
        field64(base, index, slot::NS).store(clock(CLOCK_MONOTONIC_COARSE), Ordering::Relaxed);
    }
}

/// The message counter at `offset` of slot `index`.
#[inline]
fn counter(index: usize, offset: usize) -> Option<&'static AtomicU64> {
    table()
        .filter(|_| index != NO_SLOT)
        .map(|(base, _)| field64(base, index, offset))
}

/// An int socket option read through the real libzmq, `i64::MIN` when unreadable.
fn int_option(socket: Ptr, option: c_int) -> i64 {
    let getsockopt = real!(c"zmq_getsockopt" as GetsockoptFn, or i64::MIN);
    let mut value: c_int = 0;
    let mut len = core::mem::size_of::<c_int>();
    // SAFETY: value and len are valid for an int option.
    let rc = unsafe { getsockopt(socket, option, (&raw mut value).cast(), &mut len) };
    if rc == 0 { i64::from(value) } else { i64::MIN }
}

type GetsockoptFn = unsafe extern "C" fn(Ptr, c_int, Ptr, *mut usize) -> c_int;
type SetsockoptFn = unsafe extern "C" fn(Ptr, c_int, *const c_void, usize) -> c_int;
type EndpointFn = unsafe extern "C" fn(Ptr, *const c_char) -> c_int;
type CtxFn = unsafe extern "C" fn(Ptr) -> c_int;
type MsgFn = unsafe extern "C" fn(Ptr, Ptr, c_int) -> c_int;
type BufFn = unsafe extern "C" fn(Ptr, Ptr, usize, c_int) -> c_int;
type ConstBufFn = unsafe extern "C" fn(Ptr, *const c_void, usize, c_int) -> c_int;

// ---- contexts ------------------------------------------------------------------------------

fn context_created(ctx: Ptr) -> Ptr {
    if !ctx.is_null() {
        let _errno = KeepErrno::now();
        let mut rec = Rec::new(Kind::Context);
        rec.hex(ctx as u64);
        rec.emit();
    }
    ctx
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_ctx_new() -> Ptr {
    let real = real!(c"zmq_ctx_new" as unsafe extern "C" fn() -> Ptr, or core::ptr::null_mut());
    // SAFETY: forwarded as called.
    context_created(unsafe { real() })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_init(io_threads: c_int) -> Ptr {
    let real = real!(c"zmq_init" as unsafe extern "C" fn(c_int) -> Ptr, or core::ptr::null_mut());
    // SAFETY: forwarded as called.
    context_created(unsafe { real(io_threads) })
}

fn term(ctx: Ptr, function: TermFunction, real: CtxFn) -> c_int {
    let saved = KeepErrno::now();
    let mut rec = Rec::new(Kind::Term);
    rec.hex(ctx as u64);
    rec.text(function.name().as_bytes());
    rec.thread_name();
    rec.emit();
    drop(saved);
    // SAFETY: forwarded as called.
    let rc = unsafe { real(ctx) };
    let saved = KeepErrno::now();
    let mut rec = Rec::new(Kind::Termed);
    rec.hex(ctx as u64);
    rec.int(i64::from(rc));
    rec.int(i64::from(if rc == 0 { 0 } else { saved.0 }));
    rec.emit();
    rc
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_ctx_term(ctx: Ptr) -> c_int {
    term(
        ctx,
        TermFunction::CtxTerm,
        real!(c"zmq_ctx_term" as CtxFn, or - 1),
    )
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_ctx_destroy(ctx: Ptr) -> c_int {
    term(
        ctx,
        TermFunction::CtxDestroy,
        real!(c"zmq_ctx_destroy" as CtxFn, or - 1),
    )
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_term(ctx: Ptr) -> c_int {
    term(ctx, TermFunction::Term, real!(c"zmq_term" as CtxFn, or - 1))
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_ctx_shutdown(ctx: Ptr) -> c_int {
    let real = real!(c"zmq_ctx_shutdown" as CtxFn, or - 1);
    // SAFETY: forwarded as called.
    let rc = unsafe { real(ctx) };
    let _errno = KeepErrno::now();
    let mut rec = Rec::new(Kind::Shutdown);
    rec.hex(ctx as u64);
    rec.int(i64::from(rc));
    rec.emit();
    rc
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_ctx_set(ctx: Ptr, option: c_int, value: c_int) -> c_int {
    let real = real!(
        c"zmq_ctx_set" as unsafe extern "C" fn(Ptr, c_int, c_int) -> c_int,
        or - 1
    );
    // SAFETY: forwarded as called.
    let rc = unsafe { real(ctx, option, value) };
    let _errno = KeepErrno::now();
    let mut rec = Rec::new(Kind::ContextSet);
    rec.hex(ctx as u64);
    rec.int(i64::from(option));
    rec.int(i64::from(value));
    rec.int(i64::from(rc));
    rec.emit();
    rc
}

// ---- socket lifecycle ----------------------------------------------------------------------

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_socket(ctx: Ptr, kind: c_int) -> Ptr {
    let real =
        real!(c"zmq_socket" as unsafe extern "C" fn(Ptr, c_int) -> Ptr, or core::ptr::null_mut());
    // SAFETY: forwarded as called.
    let socket = unsafe { real(ctx, kind) };
    if socket.is_null() {
        return socket;
    }
    let _errno = KeepErrno::now();
    let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
    claim(socket, serial);
    let mut rec = Rec::new(Kind::Socket);
    rec.hex(ctx as u64);
    rec.hex(socket as u64);
    rec.int(serial as i64);
    rec.int(i64::from(kind));
    rec.int(int_option(socket, ZMQ_LINGER));
    rec.thread_name();
    rec.emit();
    socket
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_close(socket: Ptr) -> c_int {
    let real = real!(c"zmq_close" as unsafe extern "C" fn(Ptr) -> c_int, or - 1);
    let saved = KeepErrno::now();
    let (serial, index) = serial_of(socket);
    let linger = int_option(socket, ZMQ_LINGER);
    let count = |offset| counter(index, offset).map_or(0, |c| c.load(Ordering::Relaxed));
    let (sent, received) = (count(slot::SENT), count(slot::RECEIVED));
    drop(saved);

    // SAFETY: forwarded as called.
    let rc = unsafe { real(socket) };
    let _errno = KeepErrno::now();
    let mut rec = Rec::new(Kind::Close);
    rec.hex(socket as u64);
    rec.int(serial as i64);
    rec.int(i64::from(rc));
    rec.int(linger);
    rec.int(sent as i64);
    rec.int(received as i64);
    rec.thread_name();
    rec.emit();
    if rc == 0 {
        release(index, serial);
    }
    rc
}

/// Records an endpoint call: the resolved endpoint (ZMQ_LAST_ENDPOINT) when it worked.
fn endpoint_call(
    kind: Kind,
    call: Call,
    real: EndpointFn,
    socket: Ptr,
    addr: *const c_char,
) -> c_int {
    let index = enter(socket, call, 0);
    // SAFETY: forwarded as called.
    let rc = unsafe { real(socket, addr) };
    leave(index, call, 0, rc);
    let saved = KeepErrno::now();
    let mut rec = Rec::new(kind);
    rec.hex(socket as u64);
    rec.int(serial_of(socket).0 as i64);
    rec.int(i64::from(rc));
    rec.int(i64::from(if rc == 0 { 0 } else { saved.0 }));
    let mut resolved = [0u8; wire::MAX_TEXT + 1];
    let mut len = resolved.len();
    let getsockopt = real!(c"zmq_getsockopt" as GetsockoptFn, or rc);
    let readable = matches!(call, Call::Bind | Call::Connect)
        && rc == 0
        // SAFETY: resolved holds len bytes.
        && unsafe { getsockopt(socket, ZMQ_LAST_ENDPOINT, resolved.as_mut_ptr().cast(), &mut len) }
            == 0;
    if readable {
        let text = &resolved[..len.min(resolved.len())];
        rec.text(text.split(|&b| b == 0).next().unwrap_or(&[]));
    } else {
        rec.text(cstr(addr));
    }
    rec.emit();
    rc
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_bind(socket: Ptr, addr: *const c_char) -> c_int {
    endpoint_call(
        Kind::Bind,
        Call::Bind,
        real!(c"zmq_bind" as EndpointFn, or - 1),
        socket,
        addr,
    )
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_connect(socket: Ptr, addr: *const c_char) -> c_int {
    let real = real!(c"zmq_connect" as EndpointFn, or - 1);
    endpoint_call(Kind::Connect, Call::Connect, real, socket, addr)
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_unbind(socket: Ptr, addr: *const c_char) -> c_int {
    let real = real!(c"zmq_unbind" as EndpointFn, or - 1);
    endpoint_call(Kind::Unbind, Call::Unbind, real, socket, addr)
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_disconnect(socket: Ptr, addr: *const c_char) -> c_int {
    let real = real!(c"zmq_disconnect" as EndpointFn, or - 1);
    endpoint_call(Kind::Disconnect, Call::Disconnect, real, socket, addr)
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_setsockopt(
    socket: Ptr,
    option: c_int,
    value: *const c_void,
    len: usize,
) -> c_int {
    let real = real!(c"zmq_setsockopt" as SetsockoptFn, or - 1);
    let index = enter(socket, Call::Setsockopt, option as u32);
    // SAFETY: forwarded as called.
    let rc = unsafe { real(socket, option, value, len) };
    leave(index, Call::Setsockopt, option as u32, rc);
    if option == ZMQ_LINGER && rc == 0 {
        let _errno = KeepErrno::now();
        let mut rec = Rec::new(Kind::Linger);
        rec.hex(socket as u64);
        rec.int(serial_of(socket).0 as i64);
        rec.int(int_option(socket, ZMQ_LINGER));
        rec.emit();
    }
    rc
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_socket_monitor(
    socket: Ptr,
    addr: *const c_char,
    events: c_int,
) -> c_int {
    let real = real!(
        c"zmq_socket_monitor" as unsafe extern "C" fn(Ptr, *const c_char, c_int) -> c_int,
        or - 1
    );
    let index = enter(socket, Call::SocketMonitor, 0);
    // SAFETY: forwarded as called.
    let rc = unsafe { real(socket, addr, events) };
    leave(index, Call::SocketMonitor, 0, rc);
    let _errno = KeepErrno::now();
    let mut rec = Rec::new(Kind::Monitor);
    rec.hex(socket as u64);
    rec.int(serial_of(socket).0 as i64);
    rec.int(i64::from(rc));
    rec.int(i64::from(events));
    rec.text(cstr(addr));
    rec.emit();
    rc
}

// ---- per-call: slot stores only ------------------------------------------------------------

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_getsockopt(
    socket: Ptr,
    option: c_int,
    value: Ptr,
    len: *mut usize,
) -> c_int {
    let real = real!(c"zmq_getsockopt" as GetsockoptFn, or - 1);
    let index = enter(socket, Call::Getsockopt, option as u32);
    // SAFETY: forwarded as called.
    let rc = unsafe { real(socket, option, value, len) };
    leave(index, Call::Getsockopt, option as u32, rc);
    rc
}

/// A message call on `socket`, counted in the counter at `offset` when it worked, unless a
/// nested call already counted it (libzmq's `zmq_sendmsg` calls `zmq_msg_send` through its
/// exported symbol, which lands here too).
#[inline]
fn message_call(socket: Ptr, call: Call, offset: usize, forward: impl FnOnce() -> c_int) -> c_int {
    let index = enter(socket, call, 0);
    let count = counter(index, offset);
    let before = count.map(|c| c.load(Ordering::Relaxed));
    let rc = forward();
    leave(index, call, 0, rc);
    if let (Some(count), Some(before)) = (count, before) {
        // One thread uses a socket at a time: a load and a store, no locked instruction.
        if rc >= 0 && count.load(Ordering::Relaxed) == before {
            count.store(before + 1, Ordering::Relaxed);
        }
    }
    rc
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_msg_send(msg: Ptr, socket: Ptr, flags: c_int) -> c_int {
    let real = real!(c"zmq_msg_send" as MsgFn, or - 1);
    // SAFETY: forwarded as called.
    message_call(socket, Call::MsgSend, slot::SENT, || unsafe {
        real(msg, socket, flags)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_msg_recv(msg: Ptr, socket: Ptr, flags: c_int) -> c_int {
    let real = real!(c"zmq_msg_recv" as MsgFn, or - 1);
    // SAFETY: forwarded as called.
    message_call(socket, Call::MsgRecv, slot::RECEIVED, || unsafe {
        real(msg, socket, flags)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_sendmsg(socket: Ptr, msg: Ptr, flags: c_int) -> c_int {
    let real = real!(c"zmq_sendmsg" as MsgFn, or - 1);
    // SAFETY: forwarded as called.
    message_call(socket, Call::Sendmsg, slot::SENT, || unsafe {
        real(socket, msg, flags)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_recvmsg(socket: Ptr, msg: Ptr, flags: c_int) -> c_int {
    let real = real!(c"zmq_recvmsg" as MsgFn, or - 1);
    // SAFETY: forwarded as called.
    message_call(socket, Call::Recvmsg, slot::RECEIVED, || unsafe {
        real(socket, msg, flags)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_send(
    socket: Ptr,
    buf: *const c_void,
    len: usize,
    flags: c_int,
) -> c_int {
    let real = real!(c"zmq_send" as ConstBufFn, or - 1);
    // SAFETY: forwarded as called.
    message_call(socket, Call::Send, slot::SENT, || unsafe {
        real(socket, buf, len, flags)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_send_const(
    socket: Ptr,
    buf: *const c_void,
    len: usize,
    flags: c_int,
) -> c_int {
    let real = real!(c"zmq_send_const" as ConstBufFn, or - 1);
    // SAFETY: forwarded as called.
    message_call(socket, Call::SendConst, slot::SENT, || unsafe {
        real(socket, buf, len, flags)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_recv(socket: Ptr, buf: Ptr, len: usize, flags: c_int) -> c_int {
    let real = real!(c"zmq_recv" as BufFn, or - 1);
    // SAFETY: forwarded as called.
    message_call(socket, Call::Recv, slot::RECEIVED, || unsafe {
        real(socket, buf, len, flags)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_poll(items: *mut PollItem, count: c_int, timeout: c_long) -> c_int {
    let real = real!(
        c"zmq_poll" as unsafe extern "C" fn(*mut PollItem, c_int, c_long) -> c_int,
        or - 1
    );
    let items_slice = || {
        if items.is_null() || count <= 0 {
            &[][..]
        } else {
            // SAFETY: the caller passes `count` items.
            unsafe { core::slice::from_raw_parts(items, count as usize) }
        }
    };
    for item in items_slice().iter().filter(|item| !item.socket.is_null()) {
        enter(item.socket, Call::Poll, count as u32);
    }
    // SAFETY: forwarded as called.
    let rc = unsafe { real(items, count, timeout) };
    for item in items_slice().iter().filter(|item| !item.socket.is_null()) {
        leave(lookup(item.socket), Call::Poll, count as u32, rc);
    }
    rc
}

/// A proxy call: in flight on every socket it runs on until it returns.
fn proxy(call: Call, sockets: [Ptr; 4], forward: impl FnOnce() -> c_int) -> c_int {
    let live = sockets.iter().filter(|s| !s.is_null());
    live.clone().for_each(|&s| {
        enter(s, call, 0);
    });
    let rc = forward();
    live.for_each(|&s| leave(lookup(s), call, 0, rc));
    rc
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_proxy(frontend: Ptr, backend: Ptr, capture: Ptr) -> c_int {
    let real = real!(
        c"zmq_proxy" as unsafe extern "C" fn(Ptr, Ptr, Ptr) -> c_int,
        or - 1
    );
    let sockets = [frontend, backend, capture, core::ptr::null_mut()];
    // SAFETY: forwarded as called.
    proxy(Call::Proxy, sockets, || unsafe {
        real(frontend, backend, capture)
    })
}

/// # Safety
/// As libzmq's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zmq_proxy_steerable(
    frontend: Ptr,
    backend: Ptr,
    capture: Ptr,
    control: Ptr,
) -> c_int {
    let real = real!(
        c"zmq_proxy_steerable" as unsafe extern "C" fn(Ptr, Ptr, Ptr, Ptr) -> c_int,
        or - 1
    );
    let sockets = [frontend, backend, capture, control];
    // SAFETY: forwarded as called.
    proxy(Call::ProxySteerable, sockets, || unsafe {
        real(frontend, backend, capture, control)
    })
}
