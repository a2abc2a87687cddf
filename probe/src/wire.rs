//! The probe's wire format, shared word for word by the probe library (which writes it) and
//! termwatch (which reads it): the environment variable that hands the probe its two
//! descriptors, the record kinds streamed over the channel, and the layout of the shared slot
//! table. Only `core` is used here: the probe is `no_std`.
//!
//! Channel: a `SOCK_SEQPACKET` socket; one record per packet, one line of tab-separated fields:
//! `KIND PID TID MONOTONIC_NS FIELDS...`. Text fields (thread names, endpoints, paths) never
//! contain a tab or a newline (the probe replaces them, and bytes outside printable ASCII, by
//! `?`), and are cut at [`MAX_TEXT`] bytes. A thread is named by two fields, `SOURCE NAME`:
//! where the name comes from ([`NameSource`]) and the name.
//!
//! Slot table: a memfd of [`HEADER`] + `slots` × [`SLOT`] bytes. Each slot belongs to one open
//! socket of one process (`serial` ≠ 0) and holds its last call and message counters, written
//! by the socket's own calls with plain atomic stores (no lock, no system call) and read by
//! termwatch when it reports.

/// Environment variable: `CHANNEL_FD:DEV:INO:SLOTS_FD:DEV:INO:SLOTS`. The probe checks that
/// each descriptor still is the file termwatch opened (device and inode) before using it, so
/// a program that closed the descriptor and reused its number is never written to.
pub const ENV: &str = "TERMWATCH_PROBE";

/// First eight bytes of the slot table.
pub const MAGIC: u64 = 0x7477_7072_6f62_6531;
/// Bytes before the first slot.
pub const HEADER: usize = 64;
/// Bytes per slot.
pub const SLOT: usize = 64;
/// Default number of slots (a power of two).
pub const SLOTS: usize = 4096;
/// Longest text field, in bytes.
pub const MAX_TEXT: usize = 300;

/// Byte offsets of a slot's fields (all native-endian; u64 unless noted).
pub mod slot {
    /// The socket's serial within its process; 0 = free, `u64::MAX` = being claimed.
    pub const SERIAL: usize = 0;
    /// The socket's address (`void *`).
    pub const KEY: usize = 8;
    /// The owning process (u32).
    pub const PID: usize = 16;
    /// The last call: [`super::Call`] code in bits 0..8, the option (get/setsockopt) or item
    /// count (poll) in bits 8..24, [`super::IN_FLIGHT`] while the call has not returned (u32).
    pub const CALL: usize = 24;
    /// When the last call was entered or returned (CLOCK_MONOTONIC_COARSE, ns).
    pub const NS: usize = 32;
    /// Messages (frames) sent.
    pub const SENT: usize = 40;
    /// Messages (frames) received.
    pub const RECEIVED: usize = 48;
    /// `errno` of the last call when it failed, 0 when it worked (u32).
    pub const ERRNO: usize = 56;
}

/// Bit of [`slot::CALL`]: the call was entered and has not returned.
pub const IN_FLIGHT: u32 = 1 << 31;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident : $repr:ty { $($(#[$vdoc:meta])* $variant:ident = $code:literal => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr($repr)]
        pub enum $name { $($(#[$vdoc])* $variant = $code),+ }

        impl $name {
            /// Its name on the wire and in reports.
            pub const fn name(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The variant with this code.
            pub fn from_code(code: $repr) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }

            /// The variant with this name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name.as_bytes() { $(n if n == $text.as_bytes() => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

wire_enum!(
    /// A libzmq socket call, as kept in a slot's last call.
    Call: u8 {
        /// zmq_socket.
        Socket = 1 => "zmq_socket",
        /// zmq_close.
        Close = 2 => "zmq_close",
        /// zmq_bind.
        Bind = 3 => "zmq_bind",
        /// zmq_connect.
        Connect = 4 => "zmq_connect",
        /// zmq_unbind.
        Unbind = 5 => "zmq_unbind",
        /// zmq_disconnect.
        Disconnect = 6 => "zmq_disconnect",
        /// zmq_setsockopt.
        Setsockopt = 7 => "zmq_setsockopt",
        /// zmq_getsockopt.
        Getsockopt = 8 => "zmq_getsockopt",
        /// zmq_msg_send.
        MsgSend = 9 => "zmq_msg_send",
        /// zmq_msg_recv.
        MsgRecv = 10 => "zmq_msg_recv",
        /// zmq_send.
        Send = 11 => "zmq_send",
        /// zmq_recv.
        Recv = 12 => "zmq_recv",
        /// zmq_send_const.
        SendConst = 13 => "zmq_send_const",
        /// zmq_sendmsg.
        Sendmsg = 14 => "zmq_sendmsg",
        /// zmq_recvmsg.
        Recvmsg = 15 => "zmq_recvmsg",
        /// zmq_poll.
        Poll = 16 => "zmq_poll",
        /// zmq_proxy.
        Proxy = 17 => "zmq_proxy",
        /// zmq_proxy_steerable.
        ProxySteerable = 18 => "zmq_proxy_steerable",
        /// zmq_socket_monitor.
        SocketMonitor = 19 => "zmq_socket_monitor",
    }
);

wire_enum!(
    /// What a channel record says. Fields after the common `KIND PID TID NS`:
    Kind: u8 {
        /// `PPID SOURCE THREAD EXE`: the probe was loaded into a process (THREAD: the loading
        /// thread, SOURCE THREAD as every thread name, see [`NameSource`]).
        Hello = 1 => "hello",
        /// `PPID`: the process was forked from PPID (which had the probe).
        Fork = 2 => "fork",
        /// `CTX`: zmq_ctx_new / zmq_init returned a context.
        Context = 3 => "ctx",
        /// `CTX OPTION VALUE RC`: zmq_ctx_set.
        ContextSet = 4 => "ctxset",
        /// `CTX RC`: zmq_ctx_shutdown.
        Shutdown = 5 => "shutdown",
        /// `CTX FUNCTION SOURCE THREAD`: a term function was entered.
        Term = 6 => "term",
        /// `CTX RC ERRNO`: it returned.
        Termed = 7 => "termed",
        /// `CTX SOCKET SERIAL TYPE LINGER SOURCE THREAD`: zmq_socket returned a socket.
        Socket = 8 => "socket",
        /// `SOCKET SERIAL RC ERRNO ENDPOINT` (the resolved one when it worked).
        Bind = 9 => "bind",
        /// Same fields as `bind`.
        Connect = 10 => "connect",
        /// Same fields as `bind`.
        Unbind = 11 => "unbind",
        /// Same fields as `bind`.
        Disconnect = 12 => "disconnect",
        /// `SOCKET SERIAL LINGER`: ZMQ_LINGER was set (the value read back).
        Linger = 13 => "linger",
        /// `SOCKET SERIAL RC LINGER SENT RECEIVED SOURCE THREAD`: zmq_close (linger and message
        /// counts read just before).
        Close = 14 => "close",
        /// `SOCKET SERIAL RC EVENTS ENDPOINT`: zmq_socket_monitor.
        Monitor = 15 => "monitor",
        /// `COUNT`: records dropped because the channel was full.
        Lost = 16 => "lost",
    }
);

wire_enum!(
    /// The function a term record names.
    TermFunction: u8 {
        /// zmq_ctx_term.
        CtxTerm = 1 => "zmq_ctx_term",
        /// zmq_ctx_destroy (what pyzmq's `Context.term()` calls).
        CtxDestroy = 2 => "zmq_ctx_destroy",
        /// zmq_term (the old name).
        Term = 3 => "zmq_term",
    }
);

wire_enum!(
    /// Where a thread name in a record comes from.
    NameSource: u8 {
        /// The kernel's name of the thread (`comm`, `PR_GET_NAME`).
        Kernel = 1 => "comm",
        /// Python's: `threading`'s name of the thread, read while it held the GIL.
        Python = 2 => "python",
    }
);
