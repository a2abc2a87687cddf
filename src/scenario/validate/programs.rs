//! Program nodes: their own fields (command, env, cwd, binds, readiness, trace lines), the
//! placeholders of their command (`{node}`, `{proxy.side}`, `{program.bind}` endpoints and
//! `{termwatch}`), resolved once every node is known, and which bind of a program a name reaches
//! (for placeholders and `connect` alike).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde_spanned::Spanned;

use super::{Validator, field};
use crate::scenario::names::NameKind;
use crate::scenario::raw::RawNode;
use crate::scenario::*;

/// The most endpoints one program node may have termwatch choose for it.
pub const MAX_BINDS: usize = 16;

/// The placeholder for termwatch's own executable.
const TERMWATCH: &str = "termwatch";

/// Which bind of program `name` (binding `binds`) `side` names, in `connect = "name.side"` or
/// `{name.side}`; the error says what is wrong.
pub(super) fn program_side(
    name: &str,
    binds: &[String],
    side: Option<&str>,
) -> Result<Side, String> {
    let listed = || {
        binds
            .iter()
            .map(|b| format!("`{name}.{b}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match side {
        _ if binds.is_empty() => Err(format!(
            "program `{name}` binds nothing termwatch knows of: give it `binds = [\"frontend\"]` to have termwatch choose an endpoint it can reach"
        )),
        None => Err(format!("say which bind of program `{name}`: {}", listed())),
        Some(side) => binds
            .iter()
            .position(|b| b == side)
            .map(Side::Program)
            .ok_or_else(|| {
                format!(
                    "program `{name}` has no bind `{side}` (its binds: {})",
                    listed()
                )
            }),
    }
}

impl Validator<'_> {
    /// Rejects the fields only program nodes take, on a node of another kind.
    pub(super) fn reject_program_fields(&mut self, n: &RawNode, what: &str) {
        self.reject_fields(
            what,
            &[
                field("command", &n.command),
                field("env", &n.env),
                field("cwd", &n.cwd),
                field("ready_line", &n.ready_line),
                field("ready_after", &n.ready_after),
                field("trace_lines", &n.trace_lines),
                field("binds", &n.binds),
            ],
        );
    }

    /// A program node: none of the socket fields, its own fields checked.
    pub(super) fn program_node(&mut self, n: &RawNode, what: &str) -> NodeBody {
        self.reject_fields(
            what,
            &[
                field("engine", &n.engine),
                field("capture", &n.capture),
                field("type", &n.socket_type),
                field("mode", &n.mode),
                field("bind", &n.bind),
                field("connect", &n.connect),
                field("topic", &n.topic),
                field("subscribe", &n.subscribe),
                field("messages", &n.messages),
                field("send", &n.send),
                field("size", &n.size),
                field("rate", &n.rate),
                field("expect_messages", &n.expect_messages),
                field("context", &n.context),
                field("linger_ms", &n.linger_ms),
                field("sndhwm", &n.sndhwm),
                field("rcvhwm", &n.rcvhwm),
                field("immediate", &n.immediate),
                field("nodrop", &n.nodrop),
                field("monitor", &n.monitor),
                field("poll_ms", &n.poll_ms),
                field("on_eterm", &n.on_eterm),
                field("open", &n.open),
            ],
        );
        NodeBody::Program(self.program(n))
    }

    /// A program node's own fields; its command's endpoints are resolved by
    /// [`Self::program_commands`] once every node is known.
    fn program(&mut self, n: &RawNode) -> ProgramNode {
        match &n.command {
            Some(c) if c.get_ref().is_empty() || c.get_ref()[0].is_empty() => {
                self.error(c.span(), "command must name a program, e.g. [\"python3\", \"app.py\"]")
            }
            Some(_) => {}
            None => self.error(
                n.name.span(),
                "a program node needs `command`, e.g. [\"python3\", \"app.py\", \"{bus.frontend}\"]",
            ),
        }
        for pattern in [&n.ready_line, &n.trace_lines].into_iter().flatten() {
            if let Err(e) = regex::Regex::new(pattern.get_ref()) {
                let first = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                self.error(pattern.span(), format!("not a regular expression: {first}"));
            }
        }
        let ready = match (&n.ready_line, &n.ready_after) {
            (Some(_), Some(after)) => {
                self.error(after.span(), "a program is ready on a line (`ready_line`) or after a delay (`ready_after`), not both");
                Readiness::Spawned
            }
            (Some(line), None) => Readiness::Line(line.get_ref().clone()),
            (None, Some(after)) => self
                .duration(after, "ready_after")
                .map_or(Readiness::Spawned, Readiness::After),
            (None, None) => Readiness::Spawned,
        };
        let cwd = n.cwd.as_ref().map(|c| {
            let folder = self.file.parent().unwrap_or(Path::new("."));
            folder.join(c.get_ref())
        });
        ProgramNode {
            command: Vec::new(),
            binds: n.binds.as_ref().map(|b| self.binds(b)).unwrap_or_default(),
            env: n
                .env
                .as_ref()
                .map(|e| {
                    e.get_ref()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            cwd,
            ready,
            trace_lines: n.trace_lines.as_ref().map(|t| t.get_ref().clone()),
        }
    }

    /// A program's `binds`: lowercase identifiers, unique, not `monitor`, at most [`MAX_BINDS`].
    fn binds(&mut self, binds: &Spanned<Vec<Spanned<String>>>) -> Vec<String> {
        if binds.get_ref().len() > MAX_BINDS {
            self.error(
                binds.span(),
                format!(
                    "a program binds at most {MAX_BINDS} endpoints, not {}",
                    binds.get_ref().len()
                ),
            );
        }
        let mut names: Vec<String> = Vec::new();
        for bind in binds.get_ref() {
            let name = bind.get_ref();
            if !self.name(NameKind::Bind, bind) {
                continue;
            }
            if name == "monitor" {
                self.error(bind.span(), "`monitor` cannot be a bind name: `connect = \"<node>.monitor\"` reads a node's monitor");
            } else if names.contains(name) {
                self.error(bind.span(), format!("duplicate bind name `{name}`"));
            } else {
                names.push(name.clone());
            }
        }
        names
    }

    /// Splits every program command's arguments into text, `{node}` / `{proxy.side}` /
    /// `{program.bind}` endpoints, each naming a node that binds, and `{termwatch}`.
    pub(super) fn program_commands(
        &mut self,
        raw: &[RawNode],
        nodes: &mut [NodeSpec],
        index: &HashMap<String, usize>,
    ) {
        for (i, n) in raw.iter().enumerate() {
            let (Some(command), NodeBody::Program(_)) = (&n.command, &nodes[i].body) else {
                continue;
            };
            let mut parts = Vec::new();
            for arg in command.get_ref() {
                match split_placeholders(arg) {
                    Ok(pieces) => {
                        let resolved: Vec<CommandPart> = pieces
                            .into_iter()
                            .filter_map(|piece| match piece {
                                Piece::Text(t) => Some(CommandPart::Text(t)),
                                Piece::Name(name) => {
                                    self.placeholder(command.span(), &name, nodes, index)
                                }
                            })
                            .collect();
                        parts.push(resolved);
                    }
                    Err(message) => self.error(command.span(), message),
                }
            }
            if let NodeBody::Program(p) = &mut nodes[i].body {
                p.command = parts;
            }
        }
    }

    fn placeholder(
        &mut self,
        span: Range<usize>,
        name: &str,
        nodes: &[NodeSpec],
        index: &HashMap<String, usize>,
    ) -> Option<CommandPart> {
        let (node_name, side) = match name.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (name, None),
        };
        if name == TERMWATCH {
            if index.contains_key(TERMWATCH) {
                self.error(span, format!("`{{{TERMWATCH}}}` is termwatch's own executable, so node `{TERMWATCH}` cannot be given to a program that way: rename the node"));
                return None;
            }
            return Some(CommandPart::Termwatch);
        }
        let Some(&node) = index.get(node_name) else {
            let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            self.error(
                span,
                format!("`{{{name}}}` names no node (nodes: {})", known.join(", ")),
            );
            return None;
        };
        if nodes[node].open == OpenAt::Step {
            self.error(span, format!("`{{{name}}}`: node `{node_name}` is opened by a step, after the program starts, so it has no endpoint to give it yet"));
            return None;
        }
        let side = match (&nodes[node].body, side) {
            (NodeBody::Proxy { .. }, Some("frontend")) => Side::Proxy(ProxySide::Frontend),
            (NodeBody::Proxy { .. }, Some("backend")) => Side::Proxy(ProxySide::Backend),
            (NodeBody::Proxy { .. }, _) => {
                self.error(span, format!("`{{{name}}}`: say which side of proxy `{node_name}`: `{{{node_name}.frontend}}` or `{{{node_name}.backend}}`"));
                return None;
            }
            (NodeBody::Program(p), side) => match program_side(node_name, &p.binds, side) {
                Ok(side) => side,
                Err(message) => {
                    self.error(span, format!("`{{{name}}}`: {message}"));
                    return None;
                }
            },
            (NodeBody::Endpoint(e), None) if e.bind.is_some() => Side::Bind,
            _ => {
                self.error(span, format!("`{{{name}}}`: node `{node_name}` binds nothing, so it has no endpoint to give a program"));
                return None;
            }
        };
        Some(CommandPart::Endpoint { node, side })
    }
}

/// A piece of a program argument before names are resolved.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Name(String),
}

/// `"--connect={bus.frontend}"` → text `--connect=`, name `bus.frontend`; `{{` and `}}` are
/// literal braces.
fn split_placeholders(arg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if name.is_empty() {
                    return Err(format!(
                        "`{arg}`: an empty `{{}}` (write `{{{{` for a literal brace)"
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Name(name));
            }
            '}' => {
                return Err(format!(
                    "`{arg}`: a `}}` without `{{` (write `}}}}` for a literal brace)"
                ));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_split_from_text_and_double_braces_are_literal() {
        assert_eq!(
            split_placeholders("--connect={bus.frontend}").unwrap(),
            vec![
                Piece::Text("--connect=".into()),
                Piece::Name("bus.frontend".into())
            ]
        );
        assert_eq!(
            split_placeholders("print({{}})").unwrap(),
            vec![Piece::Text("print({})".into())]
        );
        assert_eq!(
            split_placeholders("").unwrap(),
            vec![Piece::Text(String::new())]
        );
        assert!(split_placeholders("a}b").is_err());
        assert!(split_placeholders("{}").is_err());
    }
}
