//! Errors a user can act on, and the exit codes they map to.
//!
//! Bad input (a scenario file that does not parse or validate, a path that does not exist, a
//! bad flag) is reported with file, line and column and exits with [`exit_code::BAD_INPUT`];
//! nothing runs. A hang is not an error: it is an outcome (see [`crate::outcome`]). Every
//! command ends with an [`Ending`], and [`exit_code`] alone turns it into the process's code.

use std::fmt;
use std::path::{Path, PathBuf};

/// Documented exit codes of every `termwatch` command.
pub mod exit_code {
    /// Every scenario met its expectation (`run`), the input is valid (`check`), no workload
    /// regressed (`compare`).
    pub const OK: i32 = 0;
    /// Some scenario missed its expectation or was flaky; `compare`: a workload is slower.
    pub const FAILED: i32 = 1;
    /// Bad input or usage: nothing ran.
    pub const BAD_INPUT: i32 = 2;
    /// `run` was stopped by SIGHUP (its terminal closed).
    pub const HUNG_UP: i32 = 129;
    /// `run` was interrupted with SIGINT (Ctrl-C).
    pub const INTERRUPTED: i32 = 130;
    /// `run` was stopped with SIGTERM.
    pub const TERMINATED: i32 = 143;
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything met its expectation.
    Success,
    /// Something ran and missed its expectation (or a report could not be written).
    Failure,
    /// Bad input or usage, already reported: nothing ran.
    BadInput,
    /// Stopped by this signal (SIGINT, SIGTERM, SIGHUP) after reporting what was done.
    Signal(i32),
}

/// The process's exit code for a command that ended with `ending`; an error is reported on
/// stderr here and is bad input. The one mapping of every command, `bench` included.
pub fn exit_code(ending: anyhow::Result<Ending>) -> i32 {
    match ending {
        Ok(Ending::Success) => exit_code::OK,
        Ok(Ending::Failure) => exit_code::FAILED,
        Ok(Ending::BadInput) => exit_code::BAD_INPUT,
        Ok(Ending::Signal(signal)) => 128 + signal,
        Err(error) => {
            eprintln!("termwatch: {error:#}");
            exit_code::BAD_INPUT
        }
    }
}

/// Where in a file an error is: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// One problem with one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in it, when the problem has a place.
    pub position: Option<Position>,
    /// What is wrong and what is allowed, as a lowercase sentence fragment.
    pub message: String,
    /// The offending line (or the part of it around the column), to show under the message.
    pub source_line: Option<Excerpt>,
}

/// The part of a source line shown under an error: the whole line when it is short, else a cut
/// around the error's column, marked with `…` where it was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    /// The text shown.
    pub text: String,
    /// Where the caret goes, in characters from the start of `text`.
    pub caret: usize,
    /// Whether `text` is the whole line.
    pub whole: bool,
}

impl Excerpt {
    /// Characters kept on each side of the column when a line is cut.
    pub const CONTEXT: usize = 60;

    /// The excerpt of `line` for an error at 1-based character `column`.
    pub fn of(line: &str, column: usize) -> Self {
        let caret = column.saturating_sub(1);
        let chars = line.chars().count();
        if chars <= 2 * Self::CONTEXT + 1 {
            return Excerpt {
                text: line.to_owned(),
                caret,
                whole: true,
            };
        }
        let start = caret.saturating_sub(Self::CONTEXT);
        let end = (caret + Self::CONTEXT + 1).min(chars);
        let mut text: String = line.chars().skip(start).take(end - start).collect();
        let mut caret = caret - start;
        if start > 0 {
            text.insert(0, '…');
            caret += 1;
        }
        if end < chars {
            text.push('…');
        }
        Excerpt {
            text,
            caret,
            whole: false,
        }
    }
}

impl InputError {
    /// An error at byte span `span` of `text`, the contents of `file`.
    pub fn at(
        file: &Path,
        text: &str,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let position = Position::of_offset(text, span.start);
        let line = text.lines().nth(position.line - 1);
        Self::at_position(file, position, line, message)
    }

    /// An error at `position` of `file`, whose line there is `line`.
    pub fn at_position(
        file: &Path,
        position: Position,
        line: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        InputError {
            file: file.to_owned(),
            position: Some(position),
            message: message.into(),
            source_line: line.map(|line| Excerpt::of(line, position.column)),
        }
    }

    /// An error about a whole file or path, with no position in it.
    pub fn whole(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_owned(),
            position: None,
            message: message.into(),
            source_line: None,
        }
    }

    /// The message with its source line and a caret under the column, for terminals.
    pub fn render(&self) -> String {
        let mut out = format!("error: {self}");
        if let (Some(pos), Some(excerpt)) = (self.position, &self.source_line) {
            let gutter = pos.line.to_string().len();
            out.push_str(&format!(
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}^",
                "",
                pos.line,
                excerpt.text,
                "",
                " ".repeat(excerpt.caret)
            ));
        }
        out
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.column,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every problem found in the input of one command; non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_map_to_the_documented_codes() {
        assert_eq!(exit_code(Ok(Ending::Success)), exit_code::OK);
        assert_eq!(exit_code(Ok(Ending::Failure)), exit_code::FAILED);
        assert_eq!(exit_code(Ok(Ending::BadInput)), exit_code::BAD_INPUT);
        assert_eq!(exit_code(Err(anyhow::anyhow!("no"))), exit_code::BAD_INPUT);
        let signal = |s| exit_code(Ok(Ending::Signal(s)));
        assert_eq!(signal(libc::SIGINT), exit_code::INTERRUPTED);
        assert_eq!(signal(libc::SIGTERM), exit_code::TERMINATED);
        assert_eq!(signal(libc::SIGHUP), exit_code::HUNG_UP);
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = x\n";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::of_offset(text, 6),
            Position { line: 2, column: 1 }
        );
        let x = text.find('x').unwrap();
        assert_eq!(
            Position::of_offset(text, x),
            Position { line: 2, column: 6 }
        );
    }

    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let line = format!("description = \"{}\" x", "é".repeat(800_000));
        let column = line.chars().count();
        let excerpt = Excerpt::of(&line, column);
        assert!(!excerpt.whole);
        assert!(excerpt.text.starts_with('…'));
        assert!(excerpt.text.ends_with("\" x"));
        assert_eq!(excerpt.text.chars().count(), Excerpt::CONTEXT + 2);
        assert_eq!(excerpt.text.chars().nth(excerpt.caret), Some('x'));
        let error = InputError::at_position(
            Path::new("f.toml"),
            Position {
                line: 3,
                column: 20,
            },
            Some(&line),
            "bad",
        );
        let rendered = error.render();
        assert!(rendered.len() < 500, "{} bytes", rendered.len());
        assert!(rendered.starts_with("error: f.toml:3:20: bad\n"));
        let shown: Vec<char> = rendered.lines().nth(2).unwrap().chars().collect();
        let caret = rendered
            .lines()
            .last()
            .unwrap()
            .chars()
            .position(|c| c == '^');
        // The caret sits under column 20 of the line (`3 | ` is 4 characters).
        assert_eq!(caret, Some(4 + 19));
        assert_eq!(shown[4 + 19], line.chars().nth(19).unwrap());
        assert_eq!(shown.last(), Some(&'…'));
    }

    #[test]
    fn a_short_line_is_shown_whole() {
        let excerpt = Excerpt::of("size = 0", 8);
        assert_eq!(
            excerpt,
            Excerpt {
                text: "size = 0".into(),
                caret: 7,
                whole: true
            }
        );
    }
}
