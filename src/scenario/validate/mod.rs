//! The second parsing pass: [`RawScenario`] → [`Scenario`]. Applies the defaults of the format's
//! contracts, resolves node and context names, and rejects what cannot run: fields that do not
//! apply to a node's kind or a step's action, dangling or duplicate names, names that could
//! leave their folder or forge terminal output, numbers outside their documented range,
//! endpoints libzmq would refuse or misread, ipc paths longer than the kernel takes, more
//! sockets in a context than it allows, a `connect` to a node that binds nothing, steps on
//! nodes that cannot take them, bad durations and deadlines that a step can never meet. Every
//! error points at the offending value.
//!
//! ```text
//! validate ── scenario ──┬─ contexts             (this module)
//!                        ├─ node_names, node     (nodes: kind bodies, options, endpoints)
//!                        ├─ connects             (nodes: names → indices, proxy sides, program binds)
//!                        ├─ program_commands     (programs: placeholders → endpoints, `{termwatch}`)
//!                        ├─ machine_limits       (this module: sockets per context, ipc paths)
//!                        ├─ step                 (steps: fields, deadlines, one fn per action)
//!                        └─ expect_hang_at       (this module)
//! ```

mod nodes;
mod programs;
mod steps;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde_spanned::Spanned;

use super::endpoint::{IPC_PATH_MAX, auto_ipc_path};
use super::names::{self, NameKind};
use super::raw::{Int, RawContext, RawScenario};
use super::*;

/// Default deadline of steps and phases.
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest duration the format takes.
pub const MIN_DURATION: Duration = Duration::from_millis(1);
/// The longest duration the format takes.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The most commands a scenario's `requires` may list.
pub const MAX_REQUIREMENTS: usize = 8;
/// libzmq's default ZMQ_MAX_SOCKETS.
pub const DEFAULT_MAX_SOCKETS: usize = 1023;

/// The documented range of an integer field, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The smallest value.
    pub min: i128,
    /// The largest value.
    pub max: i128,
    /// What the value counts, for messages ("bytes"); may be empty.
    pub unit: &'static str,
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from {} to {}", self.min, self.max)?;
        if !self.unit.is_empty() {
            write!(f, " {}", self.unit)?;
        }
        Ok(())
    }
}

/// The range of every integer field of the format (also in `docs/scenario-format.md`).
pub mod bounds {
    use super::Bounds;

    const fn b(min: i128, max: i128, unit: &'static str) -> Bounds {
        Bounds { min, max, unit }
    }
    /// `io_threads` of a context.
    pub const IO_THREADS: Bounds = b(0, 64, "threads");
    /// `max_sockets` of a context (libzmq's ZMQ_SOCKET_LIMIT).
    pub const MAX_SOCKETS: Bounds = b(1, 65535, "sockets");
    /// `linger_ms`, of nodes and `set_linger` steps (-1 = forever).
    pub const LINGER_MS: Bounds = b(-1, i32::MAX as i128, "ms (-1 = forever)");
    /// `sndhwm`, `rcvhwm` (0 = unlimited).
    pub const HWM: Bounds = b(0, i32::MAX as i128, "messages (0 = unlimited)");
    /// `messages`, `send`, `expect_messages`.
    pub const MESSAGES: Bounds = b(0, 100_000_000, "messages");
    /// `size`: 64 MiB at most.
    pub const SIZE: Bounds = b(1, 64 << 20, "bytes");
    /// `rate`.
    pub const RATE: Bounds = b(1, 1_000_000, "messages per second");
    /// `poll_ms`.
    pub const POLL_MS: Bounds = b(1, 60_000, "ms");
}

pub(super) fn validate(
    file: &Path,
    text: &str,
    default_name: &str,
    raw: RawScenario,
    environment: &Environment,
) -> Result<Scenario, Vec<InputError>> {
    let mut v = Validator {
        file,
        text,
        environment,
        errors: Vec::new(),
    };
    let scenario = v.scenario(default_name, raw);
    if v.errors.is_empty() {
        Ok(scenario)
    } else {
        Err(v.errors)
    }
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    environment: &'a Environment,
    errors: Vec<InputError>,
}

/// A field of a node or step and where it was written, for "does not apply" messages.
struct FieldUse {
    name: &'static str,
    span: Option<Range<usize>>,
}

fn field<T>(name: &'static str, value: &Option<Spanned<T>>) -> FieldUse {
    FieldUse {
        name,
        span: value.as_ref().map(Spanned::span),
    }
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(InputError::at(self.file, self.text, span, message));
    }

    /// The value of an integer field, if it is written and within `bounds`.
    fn number<T: TryFrom<i128>>(
        &mut self,
        value: &Option<Spanned<Int>>,
        name: &str,
        bounds: Bounds,
    ) -> Option<T> {
        let value = value.as_ref()?;
        let Int(n) = *value.get_ref();
        if n < bounds.min || n > bounds.max {
            self.error(value.span(), format!("{name} must be {bounds}, not {n}"));
            return None;
        }
        T::try_from(n).ok()
    }

    fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        let range = || {
            format!(
                "from {} to {}",
                humantime::format_duration(MIN_DURATION),
                humantime::format_duration(MAX_DURATION)
            )
        };
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) if (MIN_DURATION..=MAX_DURATION).contains(&d) => Some(d),
            Ok(d) => {
                self.error(
                    value.span(),
                    format!(
                        "{what} must be {}, not {}",
                        range(),
                        humantime::format_duration(d)
                    ),
                );
                None
            }
            Err(e) => {
                self.error(
                    value.span(),
                    format!(
                        "invalid duration {:?} for {what}: {e} (write e.g. \"500ms\", \"2s\"; {})",
                        value.get_ref(),
                        range()
                    ),
                );
                None
            }
        }
    }

    /// Checks a name written in the file against the rule of its kind; false if it breaks it.
    fn name(&mut self, kind: NameKind, value: &Spanned<String>) -> bool {
        let problem = names::check(kind, value.get_ref()).err();
        if let Some(problem) = &problem {
            self.error(
                value.span(),
                format!("{kind} must be {}: {problem}", kind.rule()),
            );
        }
        problem.is_none()
    }

    fn scenario(&mut self, default_name: &str, raw: RawScenario) -> Scenario {
        let step_timeout = raw
            .step_timeout
            .as_ref()
            .and_then(|d| self.duration(d, "step_timeout"))
            .unwrap_or(DEFAULT_STEP_TIMEOUT);
        let transport = raw
            .transport
            .as_ref()
            .map_or(Transport::Tcp, |t| *t.get_ref());
        let name = self.scenario_name(default_name, &raw);
        let requires = self.requires(&raw.requires);
        let contexts = self.contexts(&raw.contexts);
        let scenario_monitor = raw.monitor.as_ref().is_some_and(|m| *m.get_ref());
        let node_index = self.node_names(&raw.nodes);
        let mut nodes: Vec<NodeSpec> = raw
            .nodes
            .iter()
            .map(|n| self.node(n, &contexts, scenario_monitor))
            .collect();
        self.connects(&raw.nodes, &mut nodes, &node_index);
        self.program_commands(&raw.nodes, &mut nodes, &node_index);
        self.machine_limits(&raw, transport, &contexts, &nodes);
        let steps: Vec<StepSpec> = raw
            .steps
            .iter()
            .filter_map(|s| self.step(s, step_timeout, &nodes, &node_index, &contexts))
            .collect();
        if raw.steps.len() == steps.len() {
            self.expect_hang_at(&raw, &steps);
            self.open_steps(&raw, &nodes, &steps);
        }
        Scenario {
            name,
            name_position: raw
                .name
                .as_ref()
                .map(|n| Position::of_offset(self.text, n.span().start)),
            file: self.file.to_owned(),
            description: raw.description.map(|d| d.into_inner()).unwrap_or_default(),
            reference: raw.reference.map(|r| r.into_inner()),
            requires,
            expect: *raw.expect.get_ref(),
            expect_hang_at: raw.expect_hang_at.map(|e| e.into_inner()),
            transport,
            step_timeout,
            contexts,
            nodes,
            steps,
        }
    }

    /// The `requires` commands: each names a program; at most [`MAX_REQUIREMENTS`].
    fn requires(&mut self, raw: &[Spanned<Vec<String>>]) -> Vec<Requirement> {
        if let Some(extra) = raw.get(MAX_REQUIREMENTS) {
            self.error(
                extra.span(),
                format!("at most {MAX_REQUIREMENTS} commands in `requires`"),
            );
        }
        raw.iter()
            .filter_map(|command| match command.get_ref().first() {
                Some(program) if !program.is_empty() => Some(Requirement(command.get_ref().clone())),
                _ => {
                    self.error(
                        command.span(),
                        "a command of `requires` must name a program, e.g. [\"python3\", \"-c\", \"import zmq\"]",
                    );
                    None
                }
            })
            .collect()
    }

    /// The written name, or the one from the file's path; both become a snapshot path.
    fn scenario_name(&mut self, default_name: &str, raw: &RawScenario) -> String {
        match &raw.name {
            Some(n) => {
                self.name(NameKind::Scenario, n);
                n.get_ref().clone()
            }
            None => {
                if let Err(problem) = names::check(NameKind::Scenario, default_name) {
                    self.errors.push(InputError::whole(
                        self.file,
                        format!(
                            "the name this file gets from its path, {default_name:?}, is not usable: {problem}; give it a `name`"
                        ),
                    ));
                }
                default_name.to_owned()
            }
        }
    }

    fn contexts(&mut self, raw: &[RawContext]) -> Vec<ContextSpec> {
        let mut contexts = vec![ContextSpec {
            name: MAIN_CONTEXT.to_owned(),
            io_threads: None,
            max_sockets: None,
            blocky: None,
        }];
        let mut seen_main = false;
        for c in raw {
            self.name(NameKind::Context, &c.name);
            let spec = ContextSpec {
                name: c.name.get_ref().clone(),
                io_threads: self.number(&c.io_threads, "io_threads", bounds::IO_THREADS),
                max_sockets: self.number(&c.max_sockets, "max_sockets", bounds::MAX_SOCKETS),
                blocky: c.blocky.as_ref().map(|v| *v.get_ref()),
            };
            if spec.name == MAIN_CONTEXT && !seen_main {
                seen_main = true;
                contexts[0] = spec;
            } else if contexts.iter().any(|known| known.name == spec.name) {
                self.error(
                    c.name.span(),
                    format!("duplicate context name `{}`", spec.name),
                );
            } else {
                contexts.push(spec);
            }
        }
        contexts
    }

    fn context_ref(&mut self, value: &Option<Spanned<String>>, contexts: &[ContextSpec]) -> usize {
        let Some(value) = value else { return 0 };
        match contexts.iter().position(|c| &c.name == value.get_ref()) {
            Some(i) => i,
            None => {
                let known: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
                self.error(
                    value.span(),
                    format!(
                        "no context named `{}` (known: {})",
                        value.get_ref(),
                        known.join(", ")
                    ),
                );
                0
            }
        }
    }

    fn reject_fields(&mut self, what: &str, fields: &[FieldUse]) {
        for f in fields {
            if let Some(span) = &f.span {
                self.error(
                    span.clone(),
                    format!("field `{}` does not apply to {what}", f.name),
                );
            }
        }
    }

    /// What the machine will refuse at run time: more sockets in a context than libzmq allows,
    /// and automatic ipc paths longer than the kernel takes in the temporary directory in use.
    fn machine_limits(
        &mut self,
        raw: &RawScenario,
        transport: Transport,
        contexts: &[ContextSpec],
        nodes: &[NodeSpec],
    ) {
        for (c, context) in contexts.iter().enumerate() {
            let limit = context
                .max_sockets
                .and_then(|m| usize::try_from(m).ok())
                .unwrap_or(DEFAULT_MAX_SOCKETS);
            let mut count = 0;
            let mut first_over = None;
            for (i, node) in nodes.iter().enumerate().filter(|(_, n)| n.context == c) {
                count += node.socket_count();
                if count > limit && first_over.is_none() {
                    first_over = Some(i);
                }
            }
            if let Some(i) = first_over {
                let source = if context.max_sockets.is_some() {
                    "its `max_sockets`"
                } else {
                    "libzmq's default"
                };
                self.error(
                    raw.nodes[i].name.span(),
                    format!(
                        "context `{}` needs {count} sockets, more than {source} limit of {limit} (ZMQ_MAX_SOCKETS; this node is the first over it); raise it with `max_sockets = {count}` in a [[contexts]] table named \"{}\" (at most {})",
                        context.name, context.name, bounds::MAX_SOCKETS.max
                    ),
                );
            }
        }
        if let Some(limit) = self.environment.open_files {
            self.open_files(raw, contexts, nodes, limit);
        }
        self.auto_ipc_paths(raw, transport, nodes);
    }

    /// Every socket holds a file descriptor (its mailbox), and every context a few of its own
    /// once it has a socket (its reaper's mailbox and poller, its own mailbox, two per I/O
    /// thread): a scenario that needs more than the process may open fails with "Too many open
    /// files" at some node. This counts the least it needs, so it never refuses a scenario that
    /// could run.
    fn open_files(
        &mut self,
        raw: &RawScenario,
        contexts: &[ContextSpec],
        nodes: &[NodeSpec],
        limit: u64,
    ) {
        const STDIO: usize = 3;
        let per_context = |c: &ContextSpec| 3 + 2 * c.io_threads.map_or(1, |n| n.max(0) as usize);
        // libzmq starts a context's threads with its first socket: unused contexts take none.
        let used = contexts
            .iter()
            .enumerate()
            .filter(|(c, _)| nodes.iter().any(|n| n.context == *c));
        let mut needed = STDIO + used.map(|(_, c)| per_context(c)).sum::<usize>();
        for (i, node) in nodes.iter().enumerate() {
            needed += node.socket_count();
            if needed as u64 > limit {
                let total = needed
                    + nodes[i + 1..]
                        .iter()
                        .map(NodeSpec::socket_count)
                        .sum::<usize>();
                self.error(
                    raw.nodes[i].name.span(),
                    format!(
                        "the scenario needs at least {total} file descriptors (one per socket, a few per context), more than this process may open ({limit}, `ulimit -n`; this node is the first over it): raise the limit or use fewer sockets"
                    ),
                );
                return;
            }
        }
    }

    /// Automatic ipc endpoints (on the ipc transport) and the endpoints of program nodes'
    /// `binds` (always) live in a run folder under the temporary directory, so `TMPDIR` decides
    /// whether their paths fit. The longest side of each node is measured.
    fn auto_ipc_paths(&mut self, raw: &RawScenario, transport: Transport, nodes: &[NodeSpec]) {
        let ipc = transport == Transport::Ipc;
        for (raw_node, node) in raw.nodes.iter().zip(nodes) {
            let (side, field) = match &node.body {
                NodeBody::Proxy { .. } if ipc => (ProxySide::Frontend.as_str(), None),
                NodeBody::Endpoint(e) if ipc && e.bind == Some(BindSpec::Auto) => {
                    ("bind", raw_node.bind.as_ref().map(Spanned::span))
                }
                NodeBody::Program(p) => match p.binds.iter().max_by_key(|b| b.len()) {
                    Some(longest) => (longest.as_str(), raw_node.binds.as_ref().map(Spanned::span)),
                    None => continue,
                },
                NodeBody::Proxy { .. } | NodeBody::Endpoint(_) => continue,
            };
            let path = auto_ipc_path(&self.environment.temp_dir, &node.name, side);
            let len = path.as_os_str().len();
            let program = matches!(node.body, NodeBody::Program(_));
            let what = if program {
                format!(
                    "the ipc endpoint of bind `{side}` of program `{}`",
                    node.name
                )
            } else {
                format!("the automatic ipc endpoint of node `{}`", node.name)
            };
            if len > IPC_PATH_MAX {
                let span = field.unwrap_or_else(|| raw_node.name.span());
                self.error(
                    span,
                    format!(
                        "{what} would be {} ({len} bytes), longer than the kernel's limit of {IPC_PATH_MAX} bytes for ipc paths; the folder comes from TMPDIR (now {}): set TMPDIR to a shorter folder, or shorten the node's name{}",
                        path.display(),
                        self.environment.temp_dir.display(),
                        if program { " or the bind's" } else { "" }
                    ),
                );
            }
        }
    }

    fn expect_hang_at(&mut self, raw: &RawScenario, steps: &[StepSpec]) {
        let Some(at) = &raw.expect_hang_at else {
            return;
        };
        if !self.name(NameKind::Label, at) {
            return;
        }
        if *raw.expect.get_ref() != Expect::Hang {
            self.error(at.span(), "expect_hang_at needs expect = \"hang\"");
            return;
        }
        let label = at.get_ref();
        if label == TRAFFIC_LABEL {
            return;
        }
        match steps.iter().filter(|s| &s.label == label).count() {
            1 => {}
            0 => {
                let labels: Vec<String> = steps.iter().map(|s| format!("`{}`", s.label)).collect();
                self.error(
                    at.span(),
                    format!(
                        "expect_hang_at `{label}` matches no step label (labels: {}; or `traffic`)",
                        labels.join(", ")
                    ),
                );
            }
            n => self.error(
                at.span(),
                format!("expect_hang_at `{label}` matches {n} steps; give them distinct `label`s"),
            ),
        }
    }
}
