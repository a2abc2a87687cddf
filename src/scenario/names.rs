//! What the names of a scenario may contain, and the one way to turn a name into a path.
//!
//! A scenario's name becomes a file path (its snapshot under `snapshots/`), a node's name (and a
//! program's bind name) becomes part of an ipc path in the run folder and of inproc endpoints,
//! and every name is printed. So a
//! name is checked once, when the scenario is validated ([`check`]), and every path built from a
//! name goes through [`path_under`], which refuses anything that would land outside its root
//! (`..`, an absolute path, a symlink pointing out) before anything is written.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The kinds of names a scenario has, each with its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A scenario's name: `/`-separated folders and a file name, relative, no `.` or `..`.
    Scenario,
    /// A node's name: one word, no `.` (it separates a proxy's side), `/` or spaces.
    Node,
    /// A context's name.
    Context,
    /// A step's label, or what `expect_hang_at` names.
    Label,
    /// A program node's bind: part of an ipc file name and of `connect = "<node>.<bind>"`.
    Bind,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Scenario => "a scenario name",
            NameKind::Node => "a node name",
            NameKind::Context => "a context name",
            NameKind::Label => "a step label",
            NameKind::Bind => "a bind name",
        })
    }
}

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty, or only spaces.
    Empty,
    /// A control character (newline, tab, escape, NUL…), which would forge terminal output.
    Control(char),
    /// A character the kind of name forbids.
    Forbidden(char),
    /// Starts with `/`.
    Absolute,
    /// A `/`-separated part that is empty, `.` or `..`.
    BadPart(String),
    /// A `/`-separated part longer than a file name can be (with its suffix), in bytes.
    LongPart(usize),
    /// Longer than its kind allows, in bytes.
    Long(usize),
    /// A first character the kind of name forbids there.
    Start(char),
}

/// The longest part of a scenario name, in bytes: a file name is at most 255 bytes, and a
/// snapshot adds `.snap`.
pub const PART_MAX: usize = 250;

/// The longest bind name, in bytes: it is part of an ipc path, which the kernel limits.
pub const BIND_MAX: usize = 32;

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::Control(c) => write!(f, "it contains the control character {c:?}"),
            NameProblem::Forbidden(c) => write!(f, "it contains {c:?}"),
            NameProblem::Absolute => f.write_str("it starts with `/` (names are relative)"),
            NameProblem::BadPart(part) if part.is_empty() => {
                f.write_str("it has an empty part between `/`s")
            }
            NameProblem::BadPart(part) => {
                write!(
                    f,
                    "it has a `{part}` part (names cannot leave their folder)"
                )
            }
            NameProblem::LongPart(len) => write!(
                f,
                "a part between `/`s is {len} bytes, longer than the {PART_MAX} a file name can take"
            ),
            NameProblem::Long(len) => write!(f, "it is {len} bytes long"),
            NameProblem::Start(c) => write!(f, "it starts with {c:?}"),
        }
    }
}

impl NameKind {
    /// What this kind of name allows, for messages.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::Scenario => {
                "non-empty, relative, `/`-separated parts that are not empty, `.` or `..` and at most 250 bytes, no control characters"
            }
            NameKind::Node => "non-empty, no `.`, `/`, `\\`, spaces or control characters",
            NameKind::Context | NameKind::Label => "non-empty, no control characters",
            NameKind::Bind => {
                "a lowercase identifier: a letter a-z, then letters a-z, digits or `_`, at most 32 bytes"
            }
        }
    }
}

/// Checks `name` against the rule of its kind.
pub fn check(kind: NameKind, name: &str) -> Result<(), NameProblem> {
    if name.trim().is_empty() {
        return Err(NameProblem::Empty);
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameProblem::Control(c));
    }
    match kind {
        NameKind::Scenario => relative_parts(name).map(|_| ()),
        NameKind::Node => match name
            .chars()
            .find(|&c| matches!(c, '.' | '/' | '\\') || c.is_whitespace())
        {
            Some(c) => Err(NameProblem::Forbidden(c)),
            None => Ok(()),
        },
        NameKind::Context | NameKind::Label => Ok(()),
        NameKind::Bind => lowercase_identifier(name),
    }
}

/// A letter a-z, then letters a-z, digits or `_`; at most [`BIND_MAX`] bytes.
fn lowercase_identifier(name: &str) -> Result<(), NameProblem> {
    let mut chars = name.chars();
    if let Some(first) = chars.next().filter(|c| !c.is_ascii_lowercase()) {
        return Err(NameProblem::Start(first));
    }
    if let Some(c) = chars.find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')) {
        return Err(NameProblem::Forbidden(c));
    }
    if name.len() > BIND_MAX {
        return Err(NameProblem::Long(name.len()));
    }
    Ok(())
}

/// The `/`-separated parts of a relative name, each a plain file name.
fn relative_parts(name: &str) -> Result<Vec<&str>, NameProblem> {
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameProblem::Control(c));
    }
    name.split('/')
        .map(|part| {
            let mut components = Path::new(part).components();
            match (components.next(), components.next()) {
                _ if part.len() > PART_MAX => Err(NameProblem::LongPart(part.len())),
                (Some(Component::Normal(_)), None) if !part.is_empty() => Ok(part),
                _ => Err(NameProblem::BadPart(part.to_owned())),
            }
        })
        .collect()
}

/// A path that would leave the folder it must stay in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathEscape {
    /// The name itself climbs out or is absolute.
    #[error("`{name}` cannot be a path below {}: {problem}", root.display())]
    BadName {
        /// The folder.
        root: PathBuf,
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// A symlink on the way leads outside.
    #[error("{} is outside {} (through a symlink)", path.display(), root.display())]
    Outside {
        /// The folder.
        root: PathBuf,
        /// The path, resolved.
        path: PathBuf,
    },
}

/// The path of `name` (a `/`-separated relative name) below `root`, with `suffix` appended to
/// its last part (`".snap"`), or an error if it would be outside `root`: a `..`, `.` or empty
/// part, an absolute name, a control character, or an existing symlink on the way (or at the
/// path itself) that resolves outside `root`. Nothing is created.
pub fn path_under(root: &Path, name: &str, suffix: &str) -> Result<PathBuf, PathEscape> {
    let bad = |problem| PathEscape::BadName {
        root: root.to_owned(),
        name: name.to_owned(),
        problem,
    };
    let parts = relative_parts(name).map_err(bad)?;
    let mut path = root.to_owned();
    path.extend(&parts);
    let mut file_name = path.file_name().unwrap_or_default().to_owned();
    file_name.push(suffix);
    path.set_file_name(file_name);
    let Ok(real_root) = std::fs::canonicalize(root) else {
        // Nothing exists below a root that does not exist, so nothing can lead out.
        return Ok(path);
    };
    // The deepest part of the path that exists, resolved, must still be inside the root.
    let existing = path
        .ancestors()
        .take(parts.len() + 1)
        .find_map(|p| std::fs::canonicalize(p).ok());
    match existing {
        Some(real) if !real.starts_with(&real_root) => Err(PathEscape::Outside {
            root: root.to_owned(),
            path: real,
        }),
        _ => Ok(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_relative_folders() {
        assert_eq!(check(NameKind::Scenario, "async/motivating"), Ok(()));
        assert_eq!(check(NameKind::Scenario, "v1.2 case"), Ok(()));
        assert_eq!(check(NameKind::Scenario, " "), Err(NameProblem::Empty));
        assert_eq!(
            check(NameKind::Scenario, "/etc/x"),
            Err(NameProblem::Absolute)
        );
        assert_eq!(
            check(NameKind::Scenario, "a/../../x"),
            Err(NameProblem::BadPart("..".into()))
        );
        assert_eq!(
            check(NameKind::Scenario, "a/./x"),
            Err(NameProblem::BadPart(".".into()))
        );
        assert_eq!(
            check(NameKind::Scenario, "a//x"),
            Err(NameProblem::BadPart(String::new()))
        );
        assert_eq!(check(NameKind::Scenario, &"n".repeat(PART_MAX)), Ok(()));
        assert_eq!(
            check(
                NameKind::Scenario,
                &format!("a/{}", "n".repeat(PART_MAX + 1))
            ),
            Err(NameProblem::LongPart(PART_MAX + 1))
        );
        assert_eq!(
            check(NameKind::Scenario, "ok\nFAIL x"),
            Err(NameProblem::Control('\n'))
        );
    }

    #[test]
    fn node_names_are_one_word() {
        assert_eq!(check(NameKind::Node, "sub-1_a"), Ok(()));
        for (name, c) in [("a.b", '.'), ("a/b", '/'), ("a b", ' '), ("a\\b", '\\')] {
            assert_eq!(check(NameKind::Node, name), Err(NameProblem::Forbidden(c)));
        }
        assert_eq!(
            check(NameKind::Node, "a\u{1b}[2J"),
            Err(NameProblem::Control('\u{1b}'))
        );
        assert_eq!(check(NameKind::Label, "close pub"), Ok(()));
        assert_eq!(
            check(NameKind::Label, "x\r"),
            Err(NameProblem::Control('\r'))
        );
    }

    #[test]
    fn bind_names_are_lowercase_identifiers() {
        assert_eq!(check(NameKind::Bind, "frontend"), Ok(()));
        assert_eq!(check(NameKind::Bind, "out_2"), Ok(()));
        assert_eq!(check(NameKind::Bind, &"b".repeat(BIND_MAX)), Ok(()));
        assert_eq!(
            check(NameKind::Bind, &"b".repeat(BIND_MAX + 1)),
            Err(NameProblem::Long(BIND_MAX + 1))
        );
        assert_eq!(check(NameKind::Bind, "Front"), Err(NameProblem::Start('F')));
        assert_eq!(check(NameKind::Bind, "2nd"), Err(NameProblem::Start('2')));
        assert_eq!(check(NameKind::Bind, "_x"), Err(NameProblem::Start('_')));
        assert_eq!(
            check(NameKind::Bind, "a-b"),
            Err(NameProblem::Forbidden('-'))
        );
        assert_eq!(
            check(NameKind::Bind, "a.b"),
            Err(NameProblem::Forbidden('.'))
        );
        assert_eq!(check(NameKind::Bind, ""), Err(NameProblem::Empty));
    }

    #[test]
    fn paths_stay_under_their_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("snapshots");
        assert_eq!(
            path_under(&root, "async/case.v2", ".snap").unwrap(),
            root.join("async").join("case.v2.snap")
        );
        for name in ["../x", "a/../../x", "/etc/passwd", "a/", "..", "x\0y"] {
            assert!(
                matches!(
                    path_under(&root, name, ".snap"),
                    Err(PathEscape::BadName { .. })
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("snapshots");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("f.snap"), root.join("f.snap")).unwrap();
        std::fs::write(outside.join("f.snap"), "").unwrap();
        let escape = path_under(&root, "link/new/case", ".snap").unwrap_err();
        assert!(matches!(escape, PathEscape::Outside { .. }), "{escape}");
        assert!(escape.to_string().contains("through a symlink"));
        assert!(matches!(
            path_under(&root, "f", ".snap"),
            Err(PathEscape::Outside { .. })
        ));
        // A symlink that stays inside is fine.
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("alias")).unwrap();
        assert!(path_under(&root, "alias/case", ".snap").is_ok());
    }
}
