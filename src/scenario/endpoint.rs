//! ZeroMQ endpoints as a type: parsed and checked once, when a scenario is validated, and
//! rendered back as libzmq's string by `Display` where a socket binds or connects.
//!
//! The format allows three transports, checked as libzmq would (and a little stricter, so that
//! nothing passes `check` that binds somewhere else than written or fails only at run time):
//!
//! ```text
//! tcp://HOST:PORT     HOST: `*` (bind only), IPv4, [IPv6], or a host/interface name
//!                     PORT: 1-65535, or `*` (bind only: the system picks one)
//! ipc://PATH          PATH: non-empty, at most 107 bytes (the kernel's sun_path limit);
//!                     `@name` is Linux's abstract namespace
//! inproc://NAME       NAME: non-empty
//! ```
//!
//! Automatic endpoints (`bind = "auto"`, proxies) are built here too, by [`Endpoint::auto`], and
//! the endpoints a program node binds (always ipc) by [`Endpoint::in_run_dir`], so that their ipc
//! paths, which live in the run folder under the temporary directory, can be measured before
//! running ([`auto_ipc_path`]). Each is the file `<node>-<side>`, where the side (`bind`, a
//! proxy's side, a program's bind name) never contains `-`, so two nodes never share one.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};

use super::Transport;
use super::names::{PathEscape, path_under};

/// The longest ipc path the kernel takes: `sun_path` is 108 bytes, one for the final NUL.
pub const IPC_PATH_MAX: usize = 107;

/// Whether an endpoint is bound or connected: wildcards are for binding only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `bind`.
    Bind,
    /// `connect`.
    Connect,
}

/// A ZeroMQ endpoint. `Display` renders libzmq's string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `tcp://host:port`.
    Tcp {
        /// The interface or peer.
        host: TcpHost,
        /// The port.
        port: TcpPort,
    },
    /// `ipc://path`; a path starting with `@` is in the abstract namespace (no file).
    Ipc(PathBuf),
    /// `inproc://name`, visible inside one context.
    Inproc(String),
}

/// The host part of a tcp endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TcpHost {
    /// `*`: every interface (bind only).
    Any,
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address, written in brackets.
    V6(Ipv6Addr),
    /// A host or interface name (`localhost`, `lo`).
    Name(String),
}

/// The port of a tcp endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpPort {
    /// `*`: the system picks a free port (bind only); the bound port is read back.
    Any,
    /// A port number, 1-65535.
    Number(NonZeroU16),
}

/// Why an endpoint string is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// No `scheme://`.
    NoScheme,
    /// A scheme the format does not take.
    UnknownScheme(String),
    /// A control character.
    Control(char),
    /// `tcp://` without `:port`.
    NoPort,
    /// A port that is not a number in range.
    BadPort(String),
    /// A host that is not `*`, an address or a name.
    BadHost(String),
    /// A wildcard on a connect.
    WildcardConnect,
    /// `ipc://` or `inproc://` with nothing after it.
    EmptyName(&'static str),
    /// `ipc://*`, which makes libzmq create a file outside the run folder.
    IpcWildcard,
    /// An ipc path longer than the kernel takes.
    IpcTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::NoScheme => {
                f.write_str("an endpoint starts with tcp://, ipc:// or inproc://")
            }
            EndpointError::UnknownScheme(s) => write!(
                f,
                "unknown transport `{s}://` (the format takes tcp, ipc and inproc)"
            ),
            EndpointError::Control(c) => write!(f, "it contains the control character {c:?}"),
            EndpointError::NoPort => {
                f.write_str("a tcp endpoint is tcp://HOST:PORT, e.g. \"tcp://127.0.0.1:5555\"")
            }
            EndpointError::BadPort(p) => write!(
                f,
                "port `{p}` is not a number from 1 to 65535 (or `*` on a bind, to let the system choose)"
            ),
            EndpointError::BadHost(h) => write!(
                f,
                "host `{h}` is not an IPv4 address, a bracketed IPv6 address, a host or interface name, or `*`"
            ),
            EndpointError::WildcardConnect => f.write_str(
                "`*` means \"any\" and works only on a bind: a connect needs a host and a port",
            ),
            EndpointError::EmptyName(scheme) => {
                write!(f, "{scheme}:// needs a name after it")
            }
            EndpointError::IpcWildcard => f.write_str(
                "ipc://* makes libzmq create a file outside the run folder; use bind = \"auto\"",
            ),
            EndpointError::IpcTooLong { path, len } => write!(
                f,
                "ipc path {} is {len} bytes, longer than the kernel's limit of {IPC_PATH_MAX} bytes",
                path.display()
            ),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Ipc(path) => write!(f, "ipc://{}", path.display()),
            Endpoint::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

impl fmt::Display for TcpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpHost::Any => f.write_str("*"),
            TcpHost::V4(a) => write!(f, "{a}"),
            TcpHost::V6(a) => write!(f, "[{a}]"),
            TcpHost::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for TcpPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpPort::Any => f.write_str("*"),
            TcpPort::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Endpoint {
    /// Parses an endpoint written in a scenario, to be used in `direction`.
    pub fn parse(text: &str, direction: Direction) -> Result<Self, EndpointError> {
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(EndpointError::Control(c));
        }
        let (scheme, rest) = text.split_once("://").ok_or(EndpointError::NoScheme)?;
        match scheme {
            "tcp" => tcp(rest, direction),
            "ipc" => match rest {
                "" => Err(EndpointError::EmptyName("ipc")),
                "*" => Err(EndpointError::IpcWildcard),
                path => Endpoint::ipc(PathBuf::from(path)),
            },
            "inproc" if rest.is_empty() => Err(EndpointError::EmptyName("inproc")),
            "inproc" => Ok(Endpoint::Inproc(rest.to_owned())),
            other => Err(EndpointError::UnknownScheme(other.to_owned())),
        }
    }

    /// An ipc endpoint at `path`, if the kernel can take a path that long.
    fn ipc(path: PathBuf) -> Result<Self, EndpointError> {
        let len = path.as_os_str().len();
        if len > IPC_PATH_MAX {
            return Err(EndpointError::IpcTooLong { path, len });
        }
        Ok(Endpoint::Ipc(path))
    }

    /// The automatic endpoint of `node`'s `side` (`bind`, or a proxy's side) on `transport`: tcp
    /// on 127.0.0.1 with a system-chosen port, ipc in `run_dir`, inproc named after the node. The
    /// ipc path is checked to stay in `run_dir`; its length is checked before running, by
    /// [`auto_ipc_path`].
    pub fn auto(
        transport: Transport,
        run_dir: &Path,
        node: &str,
        side: &str,
    ) -> Result<Self, PathEscape> {
        Ok(match transport {
            Transport::Tcp => Endpoint::Tcp {
                host: TcpHost::V4(Ipv4Addr::LOCALHOST),
                port: TcpPort::Any,
            },
            Transport::Inproc => Endpoint::Inproc(auto_name(node, side)),
            Transport::Ipc => Endpoint::in_run_dir(run_dir, node, side)?,
        })
    }

    /// The ipc endpoint `<node>-<side>` in `run_dir`, checked to stay there: an automatic ipc
    /// endpoint, and every endpoint a program node binds (`binds`), whatever the transport.
    pub fn in_run_dir(run_dir: &Path, node: &str, side: &str) -> Result<Self, PathEscape> {
        Ok(Endpoint::Ipc(path_under(
            run_dir,
            &auto_name(node, side),
            "",
        )?))
    }

    /// The file of an ipc endpoint, when it has one (not in the abstract namespace).
    pub fn ipc_file(&self) -> Option<&Path> {
        match self {
            Endpoint::Ipc(path) if !path.as_os_str().as_encoded_bytes().starts_with(b"@") => {
                Some(path)
            }
            _ => None,
        }
    }
}

/// `node-bind`, `node-frontend`, `node-backend`, or `node-<program bind>`.
fn auto_name(node: &str, side: &str) -> String {
    format!("{node}-{side}")
}

/// The path the ipc endpoint `<node>-<side>` will have when the run folder is made in
/// `temp_dir`, with the folder's name as long as it can be.
pub fn auto_ipc_path(temp_dir: &Path, node: &str, side: &str) -> PathBuf {
    temp_dir
        .join(crate::run_dir::longest_name())
        .join(auto_name(node, side))
}

fn tcp(rest: &str, direction: Direction) -> Result<Endpoint, EndpointError> {
    let (host, port) = rest.rsplit_once(':').ok_or(EndpointError::NoPort)?;
    let port = match port {
        "*" => TcpPort::Any,
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .parse::<u16>()
            .ok()
            .and_then(NonZeroU16::new)
            .map(TcpPort::Number)
            .ok_or_else(|| EndpointError::BadPort(port.to_owned()))?,
        _ => return Err(EndpointError::BadPort(port.to_owned())),
    };
    let host = match host {
        "*" => TcpHost::Any,
        bracketed if bracketed.starts_with('[') && bracketed.ends_with(']') => bracketed
            [1..bracketed.len() - 1]
            .parse()
            .map(TcpHost::V6)
            .map_err(|_| EndpointError::BadHost(host.to_owned()))?,
        name if is_host_name(name) => match name.parse::<Ipv4Addr>() {
            Ok(address) => TcpHost::V4(address),
            // All digits and dots but not an address: `300.1.1.1`, `1.2.3`.
            Err(_) if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                return Err(EndpointError::BadHost(host.to_owned()));
            }
            Err(_) => TcpHost::Name(name.to_owned()),
        },
        _ => return Err(EndpointError::BadHost(host.to_owned())),
    };
    if direction == Direction::Connect && (host == TcpHost::Any || port == TcpPort::Any) {
        return Err(EndpointError::WildcardConnect);
    }
    Ok(Endpoint::Tcp { host, port })
}

/// Dot-separated labels of letters, digits, `-` and `_` (interface names like `eth0` too).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(text: &str) -> Result<Endpoint, EndpointError> {
        Endpoint::parse(text, Direction::Bind)
    }

    #[test]
    fn endpoints_render_as_written() {
        for text in [
            "tcp://127.0.0.1:5555",
            "tcp://*:*",
            "tcp://127.0.0.1:*",
            "tcp://[::1]:65535",
            "tcp://localhost:1",
            "tcp://eth0:80",
            "ipc:///tmp/x.ipc",
            "ipc://@abstract",
            "ipc://relative/x",
            "inproc://bus-frontend",
        ] {
            assert_eq!(bind(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:1", Direction::Connect),
            Ok(Endpoint::Tcp {
                host: TcpHost::V4(Ipv4Addr::LOCALHOST),
                port: TcpPort::Number(NonZeroU16::new(1).unwrap()),
            })
        );
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        let cases = [
            (
                "tcp://127.0.0.1:99999",
                EndpointError::BadPort("99999".into()),
            ),
            ("tcp://127.0.0.1:0", EndpointError::BadPort("0".into())),
            ("tcp://127.0.0.1:", EndpointError::BadPort(String::new())),
            ("tcp://127.0.0.1:-1", EndpointError::BadPort("-1".into())),
            ("foo://bar", EndpointError::UnknownScheme("foo".into())),
            ("tcp://garbage!!", EndpointError::NoPort),
            (
                "tcp://garbage!!:1",
                EndpointError::BadHost("garbage!!".into()),
            ),
            (
                "tcp://300.1.1.1:1",
                EndpointError::BadHost("300.1.1.1".into()),
            ),
            ("tcp://[::zz]:1", EndpointError::BadHost("[::zz]".into())),
            ("tcp://:5", EndpointError::BadHost(String::new())),
            ("ipc://", EndpointError::EmptyName("ipc")),
            ("ipc://*", EndpointError::IpcWildcard),
            ("inproc://", EndpointError::EmptyName("inproc")),
            ("127.0.0.1:5", EndpointError::NoScheme),
            ("inproc://a\nb", EndpointError::Control('\n')),
        ];
        for (text, error) in cases {
            assert_eq!(bind(text), Err(error), "{text}");
        }
        for text in ["tcp://*:5", "tcp://127.0.0.1:*"] {
            assert_eq!(
                Endpoint::parse(text, Direction::Connect),
                Err(EndpointError::WildcardConnect)
            );
        }
    }

    #[test]
    fn ipc_paths_stop_at_the_kernel_limit() {
        let longest = format!("/{}", "a".repeat(IPC_PATH_MAX - 1));
        assert!(bind(&format!("ipc://{longest}")).is_ok());
        let error = bind(&format!("ipc://{longest}b")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "ipc path {longest}b is 108 bytes, longer than the kernel's limit of 107 bytes"
            )
        );
    }

    #[test]
    fn automatic_endpoints_live_in_the_run_folder() {
        let run_dir = Path::new("/tmp/tw-abc123");
        let auto = |t, side| Endpoint::auto(t, run_dir, "bus", side).unwrap().to_string();
        assert_eq!(auto(Transport::Tcp, "bind"), "tcp://127.0.0.1:*");
        assert_eq!(
            auto(Transport::Ipc, "frontend"),
            "ipc:///tmp/tw-abc123/bus-frontend"
        );
        assert_eq!(auto(Transport::Inproc, "backend"), "inproc://bus-backend");
        assert!(
            Endpoint::auto(Transport::Ipc, run_dir, "..", "bind")
                .is_ok_and(|e| e.ipc_file().is_some_and(|f| f.starts_with(run_dir)))
        );
        assert!(Endpoint::auto(Transport::Ipc, run_dir, "../x", "bind").is_err());
        assert_eq!(
            auto_ipc_path(Path::new("/tmp/"), "bus", "bind"),
            Path::new("/tmp/tw-XXXXX.XXXXXXXX-XXXX/bus-bind")
        );
        assert_eq!(
            Endpoint::in_run_dir(run_dir, "app", "out")
                .unwrap()
                .to_string(),
            "ipc:///tmp/tw-abc123/app-out"
        );
        assert!(Endpoint::in_run_dir(run_dir, "../x", "out").is_err());
    }
}
