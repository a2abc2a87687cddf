//! The private wire protocol between `termwatch bench` and its role processes: one JSON object
//! per line, [`ToRole`] on the role's stdin and [`FromRole`] on its stdout, and the role's command
//! line ([`RoleArgs`]), rendered by the bench and parsed by the role from one type.
//!
//! ```text
//! bench                                     role (termwatch __bench-role ...)
//!   ── ToRole::Hello { version } ──────────▶  checks the version (exits 2 on a mismatch)
//!   ◀──────── FromRole::Hello { version } ──  first line; the bench checks it
//!   ◀──── ProxyBound / PublisherBound / Joined / Report ──
//!   ── ToRole::Go ─────────────────────────▶  (publishers: send the data)
//!   stdin closed ──────────────────────────▶  the role exits at once
//! ```
//!
//! Both sides are the same binary in practice, but a bench started from one build can re-execute
//! another (`cargo bench` against a stale binary): the version makes that an error, not garbage.

use super::roles::SubscriberReport;
use super::workload::{ProxyEngine, parse_size};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;

/// The hidden subcommand a role process is started with.
pub const ROLE_SUBCOMMAND: &str = "__bench-role";

/// Version of this protocol; both sides refuse to talk to another.
pub const ROLE_PROTOCOL_VERSION: u32 = 1;

/// What the bench tells a role, on the role's stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToRole {
    /// The first line: the bench's protocol version.
    Hello {
        /// [`ROLE_PROTOCOL_VERSION`] of the bench.
        version: u32,
    },
    /// Publishers: stop probing, send the data.
    Go,
}

/// What a role tells the bench, on the role's stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromRole {
    /// The first line: the role's protocol version.
    Hello {
        /// [`ROLE_PROTOCOL_VERSION`] of the role.
        version: u32,
    },
    /// The proxy bound both sockets (endpoints resolved after a wildcard bind).
    ProxyBound {
        /// Where the publishers connect.
        frontend: String,
        /// Where the subscribers connect.
        backend: String,
    },
    /// The publisher bound or connected and probes.
    PublisherBound {
        /// Where it is reachable (its peer's endpoint when it connected).
        endpoint: String,
    },
    /// The subscriber has a probe from every publisher.
    Joined,
    /// The subscriber's count and clock.
    Report {
        /// What it saw.
        report: SubscriberReport,
    },
}

/// One message as a line (without the newline).
pub fn encode<T: Serialize>(message: &T) -> String {
    // Serialising these plain enums cannot fail: no maps with non-string keys, no custom code.
    serde_json::to_string(message).unwrap_or_else(|error| unreachable!("{error}"))
}

/// A line as a message, or what is wrong with it.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    serde_json::from_str(line).map_err(|error| format!("unreadable line `{line}`: {error}"))
}

/// A version mismatch, worded the same on both sides.
pub fn check_version(peer: &str, version: u32) -> Result<(), String> {
    if version == ROLE_PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(format!(
            "{peer} speaks bench protocol version {version}, this termwatch speaks \
             {ROLE_PROTOCOL_VERSION}: run the bench and its roles from the same build"
        ))
    }
}

/// `termwatch __bench-role`: one process of an ipc/tcp sample (internal).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct RoleArgs {
    /// The role.
    #[command(subcommand)]
    pub role: Role,
}

/// A role and its parameters.
#[derive(Debug, Clone, PartialEq, clap::Subcommand)]
pub enum Role {
    /// Bind XSUB/XPUB, say `proxy_bound`, run the engine until stdin closes.
    Proxy {
        /// The engine.
        #[arg(long, value_enum)]
        engine: ProxyEngine,
        /// Endpoint the XSUB binds.
        #[arg(long)]
        frontend: String,
        /// Endpoint the XPUB binds.
        #[arg(long)]
        backend: String,
    },
    /// Bind or connect a PUB, say `publisher_bound`, probe until `go`, send.
    Publish {
        /// Endpoint to bind.
        #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
        bind: Option<String>,
        /// Endpoint to connect to.
        #[arg(long)]
        connect: Option<String>,
        /// Publisher id, in its probes.
        #[arg(long)]
        id: u8,
        /// Bytes per message.
        #[arg(long, value_parser = parse_size)]
        size: usize,
        /// Data messages to send.
        #[arg(long)]
        messages: u64,
    },
    /// Connect a SUB, say `joined` once every publisher's probe arrived, then `report`.
    Subscribe {
        /// Endpoints to connect to.
        #[arg(long, required = true)]
        connect: Vec<String>,
        /// Publishers whose probes to wait for.
        #[arg(long)]
        publishers: u8,
        /// Data messages to expect.
        #[arg(long)]
        messages: u64,
        /// Test only: lower the measured rate by this percentage.
        #[arg(long, default_value_t = 0)]
        throttle_percent: u8,
    },
}

impl Role {
    /// The arguments after [`ROLE_SUBCOMMAND`] that parse back into this role.
    pub fn command_line(&self) -> Vec<OsString> {
        let mut args: Vec<String> = Vec::new();
        let mut flag = |name: &str, value: String| {
            args.push(format!("--{name}"));
            args.push(value);
        };
        let subcommand = match self {
            Role::Proxy {
                engine,
                frontend,
                backend,
            } => {
                flag("engine", engine.as_str().to_string());
                flag("frontend", frontend.clone());
                flag("backend", backend.clone());
                "proxy"
            }
            Role::Publish {
                bind,
                connect,
                id,
                size,
                messages,
            } => {
                if let Some(endpoint) = bind {
                    flag("bind", endpoint.clone());
                }
                if let Some(endpoint) = connect {
                    flag("connect", endpoint.clone());
                }
                flag("id", id.to_string());
                flag("size", size.to_string());
                flag("messages", messages.to_string());
                "publish"
            }
            Role::Subscribe {
                connect,
                publishers,
                messages,
                throttle_percent,
            } => {
                for endpoint in connect {
                    flag("connect", endpoint.clone());
                }
                flag("publishers", publishers.to_string());
                flag("messages", messages.to_string());
                flag("throttle-percent", throttle_percent.to_string());
                "subscribe"
            }
        };
        std::iter::once(subcommand.to_string())
            .chain(args)
            .map(OsString::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        args: RoleArgs,
    }

    fn round_trip(role: Role) {
        let mut argv = vec![OsString::from("role")];
        argv.extend(role.command_line());
        let parsed = Harness::try_parse_from(&argv).expect("the rendered line parses");
        assert_eq!(parsed.args.role, role);
    }

    #[test]
    fn every_role_renders_a_command_line_that_parses_back() {
        round_trip(Role::Proxy {
            engine: ProxyEngine::Steerable,
            frontend: "tcp://127.0.0.1:*".into(),
            backend: "ipc:///tmp/x y/back".into(),
        });
        round_trip(Role::Publish {
            bind: None,
            connect: Some("tcp://127.0.0.1:5555".into()),
            id: 3,
            size: 1024,
            messages: 10,
        });
        round_trip(Role::Publish {
            bind: Some("ipc:///tmp/pub0".into()),
            connect: None,
            id: 0,
            size: 16,
            messages: 2,
        });
        round_trip(Role::Subscribe {
            connect: vec!["tcp://a:1".into(), "tcp://b:2".into()],
            publishers: 2,
            messages: 20,
            throttle_percent: 20,
        });
    }

    #[test]
    fn messages_round_trip_as_one_json_line() {
        let messages = [
            FromRole::Hello {
                version: ROLE_PROTOCOL_VERSION,
            },
            FromRole::ProxyBound {
                frontend: "tcp://127.0.0.1:1".into(),
                backend: "tcp://127.0.0.1:2".into(),
            },
            FromRole::PublisherBound {
                endpoint: "ipc:///tmp/p".into(),
            },
            FromRole::Joined,
            FromRole::Report {
                report: SubscriberReport {
                    received: 5,
                    expected: 6,
                    first_ns: 7,
                    last_ns: 8,
                },
            },
        ];
        for message in messages {
            let line = encode(&message);
            assert!(!line.contains('\n'));
            assert_eq!(decode::<FromRole>(&line), Ok(message));
        }
        for message in [ToRole::Hello { version: 9 }, ToRole::Go] {
            assert_eq!(decode::<ToRole>(&encode(&message)), Ok(message));
        }
        assert_eq!(
            encode(&ToRole::Go),
            r#"{"type":"go"}"#,
            "the wire format is stable"
        );
        assert!(decode::<FromRole>("bound tcp://x").is_err());
    }

    #[test]
    fn another_version_is_refused() {
        assert!(check_version("the role", ROLE_PROTOCOL_VERSION).is_ok());
        let error = check_version("the role", ROLE_PROTOCOL_VERSION + 1).unwrap_err();
        assert!(error.contains("same build"), "{error}");
    }
}
