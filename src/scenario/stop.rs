//! How a program under test is asked to end: the `stop` of a program node and of
//! `termwatch exec`.

use nix::sys::signal::Signal;

/// How the program is asked to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopHow {
    /// Not at all: it ends by itself.
    Wait,
    /// A signal to its process group.
    Signal(Signal),
    /// Its stdin is closed.
    StdinClose,
}

impl StopHow {
    /// The label of `termwatch exec`'s step that waits for the program to exit.
    pub fn label(self) -> String {
        match self {
            StopHow::Wait => "exit".to_owned(),
            StopHow::Signal(s) => format!("stop ({s})"),
            StopHow::StdinClose => "stop (stdin-close)".to_owned(),
        }
    }
}

impl std::str::FromStr for StopHow {
    type Err = String;

    /// `wait`, `stdin-close`, `signal:NAME` (`SIGINT` or `INT`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "wait" => Ok(StopHow::Wait),
            "stdin-close" => Ok(StopHow::StdinClose),
            _ => {
                let name = text.strip_prefix("signal:").ok_or_else(|| {
                    format!("`{text}` is not a stop: use wait, signal:NAME (e.g. signal:SIGINT) or stdin-close")
                })?;
                let full = if name.starts_with("SIG") {
                    name.to_owned()
                } else {
                    format!("SIG{name}")
                };
                full.parse::<Signal>()
                    .map(StopHow::Signal)
                    .map_err(|_| format!("`{name}` is not a signal name (e.g. SIGINT, SIGTERM)"))
            }
        }
    }
}
