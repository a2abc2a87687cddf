//! What one benchmark measures: the engine between publishers and subscribers, the transport,
//! the message size and the fan-in/fan-out, plus the stable id that names a workload in result
//! files and comparisons.

use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::scenario::{Engine as ProxyEngine, Transport};

/// Every built-in proxy engine, in the order the bench measures them.
pub const PROXY_ENGINES: [ProxyEngine; 3] = [
    ProxyEngine::ZmqProxy,
    ProxyEngine::Steerable,
    ProxyEngine::Forwarder,
];

/// `ProxyEngine` as a command-line value (`termwatch proxy --engine`).
impl clap::ValueEnum for ProxyEngine {
    fn value_variants<'a>() -> &'a [Self] {
        &PROXY_ENGINES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            ProxyEngine::ZmqProxy => "libzmq's zmq_proxy",
            ProxyEngine::Steerable => "libzmq's zmq_proxy_steerable with an idle control socket",
            ProxyEngine::Forwarder => "termwatch's own counting loop",
        };
        Some(clap::builder::PossibleValue::new(self.as_str()).help(help))
    }
}

/// What sits between the publishers and the subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    /// No proxy: the publishers bind, the subscribers connect to them (the baseline).
    Direct,
    /// A built-in proxy engine, run by termwatch itself.
    Proxy(ProxyEngine),
    /// An external proxy program defined with `--proxy NAME=COMMAND`, by its name.
    External(String),
}

impl Engine {
    /// Every built-in engine, the baseline first.
    pub const BUILT_IN: [Engine; 4] = [
        Engine::Direct,
        Engine::Proxy(ProxyEngine::ZmqProxy),
        Engine::Proxy(ProxyEngine::Steerable),
        Engine::Proxy(ProxyEngine::Forwarder),
    ];

    /// The name used on the command line, in workload ids and in result files.
    pub fn name(&self) -> &str {
        match self {
            Engine::Direct => "direct",
            Engine::Proxy(engine) => engine.as_str(),
            Engine::External(name) => name,
        }
    }

    /// Whether this engine runs a proxy between publishers and subscribers.
    pub fn is_proxy(&self) -> bool {
        *self != Engine::Direct
    }

    /// The engine a name stands for: a built-in one, else an external proxy of that name (which
    /// must be a word of letters, digits, `_`, `-` and `.`, so it fits in a workload id).
    pub fn parse(name: &str) -> Result<Engine, String> {
        if let Some(engine) = Engine::BUILT_IN.iter().find(|e| e.name() == name) {
            return Ok(engine.clone());
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if name.is_empty() || !name.chars().all(valid) {
            return Err(format!(
                "`{name}` is not an engine name: use direct, zmq_proxy, steerable, forwarder or \
                 the NAME of a --proxy NAME=COMMAND (letters, digits, `_`, `-`, `.`)"
            ));
        }
        Ok(Engine::External(name.to_string()))
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Result files store an engine as its name.
impl Serialize for Engine {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Engine {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Engine, D::Error> {
        let name = String::deserialize(deserializer)?;
        Engine::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// The standard message sizes of the matrix, in bytes.
pub const STANDARD_SIZES: [usize; 4] = [16, 256, 1024, 64 * 1024];

/// How many publishers feed how many subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fan {
    /// Publishers (fan-in), 1 to 64.
    pub publishers: u8,
    /// Subscribers (fan-out), each receiving every message.
    pub subscribers: u8,
}

impl Fan {
    /// One publisher, one subscriber.
    pub const ONE_TO_ONE: Fan = Fan {
        publishers: 1,
        subscribers: 1,
    };
}

impl fmt::Display for Fan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.publishers, self.subscribers)
    }
}

/// Most publishers a workload may have: the subscriber tracks their probes in a 64-bit mask.
pub const MAX_PUBLISHERS: u8 = 64;

/// One cell of the benchmark matrix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Workload {
    /// Transport between every pair of sockets.
    pub transport: Transport,
    /// Payload bytes per message (at least 1: the first byte marks data).
    pub size: usize,
    /// Publishers and subscribers.
    pub fan: Fan,
    /// Engine in the middle.
    pub engine: Engine,
}

impl Workload {
    /// The id used as the key in result files and comparisons, e.g. `tcp/1KiB/1x1/zmq_proxy`.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.transport,
            format_size(self.size),
            self.fan,
            self.engine
        )
    }

    /// The same workload with another engine (used to pair a proxy with its direct baseline).
    pub fn with_engine(&self, engine: Engine) -> Workload {
        Workload {
            engine,
            ..self.clone()
        }
    }
}

/// `16B`, `256B`, `1KiB`, `64KiB`: whole KiB when the size is a multiple of 1024.
pub fn format_size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{}KiB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

/// Parses `16`, `16B`, `1KiB`, `1k`, `64KiB` into bytes; the size must be at least 1.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 16, 256B, 1KiB, 64KiB)"))?;
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}` (use B, KiB or MiB)"
            ));
        }
    };
    match number.checked_mul(multiplier) {
        Some(0) => Err("a message needs at least 1 byte".to_string()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{text}` is too large")),
    }
}

/// Parses `PxS`, e.g. `4x1` for four publishers and one subscriber.
pub fn parse_fan(text: &str) -> Result<Fan, String> {
    let (publishers, subscribers) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{text}` is not PUBLISHERSxSUBSCRIBERS, e.g. 4x1"))?;
    let parse = |part: &str| -> Result<u8, String> {
        match part.trim().parse::<u8>() {
            Ok(n) if (1..=MAX_PUBLISHERS).contains(&n) => Ok(n),
            _ => Err(format!(
                "`{part}` in `{text}` must be a count from 1 to {MAX_PUBLISHERS}"
            )),
        }
    };
    Ok(Fan {
        publishers: parse(publishers)?,
        subscribers: parse(subscribers)?,
    })
}

/// Default message count for a size: about 256 MiB of payload, between 10 000 and 1 000 000
/// messages, so one run lasts a fraction of a second at the rates measured on this project's
/// machines.
pub fn default_messages(size: usize) -> u64 {
    ((256u64 << 20) / size.max(1) as u64).clamp(10_000, 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_through_their_names() {
        for size in STANDARD_SIZES.into_iter().chain([1, 100, 1500]) {
            assert_eq!(parse_size(&format_size(size)), Ok(size));
        }
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn fans_parse_and_reject_out_of_range_counts() {
        assert_eq!(
            parse_fan("4x1"),
            Ok(Fan {
                publishers: 4,
                subscribers: 1
            })
        );
        assert!(parse_fan("0x1").is_err());
        assert!(parse_fan("65x1").is_err());
        assert!(parse_fan("4").is_err());
    }

    #[test]
    fn workload_ids_name_every_dimension() {
        let workload = Workload {
            transport: Transport::Tcp,
            size: 1024,
            fan: Fan::ONE_TO_ONE,
            engine: Engine::Proxy(ProxyEngine::ZmqProxy),
        };
        assert_eq!(workload.id(), "tcp/1KiB/1x1/zmq_proxy");
        assert_eq!(
            workload.with_engine(Engine::Direct).id(),
            "tcp/1KiB/1x1/direct"
        );
    }

    #[test]
    fn engines_round_trip_through_their_names() {
        for engine in Engine::BUILT_IN {
            assert_eq!(Engine::parse(engine.name()), Ok(engine.clone()));
            let json = serde_json::to_string(&engine).expect("serialises");
            assert_eq!(json, format!("\"{}\"", engine.name()));
            assert_eq!(serde_json::from_str::<Engine>(&json).ok(), Some(engine));
        }
        assert_eq!(
            Engine::parse("pyzmq"),
            Ok(Engine::External("pyzmq".to_string()))
        );
        assert!(Engine::parse("my proxy").is_err());
        assert!(Engine::parse("a/b").is_err());
        assert!(Engine::parse("").is_err());
    }

    #[test]
    fn default_message_counts_stay_in_bounds() {
        assert_eq!(default_messages(16), 1_000_000);
        assert_eq!(default_messages(1024), 262_144);
        assert_eq!(default_messages(64 * 1024), 10_000);
    }
}
