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
    /// The text of the offending line, to show under the message.
    pub source_line: Option<String>,
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
        let source_line = text.lines().nth(position.line - 1).map(str::to_owned);
        InputError {
            file: file.to_owned(),
            position: Some(position),
            message: message.into(),
            source_line,
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
        if let (Some(pos), Some(line)) = (self.position, &self.source_line) {
            let gutter = pos.line.to_string().len();
            out.push_str(&format!(
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}^",
                "",
                pos.line,
                line,
                "",
                " ".repeat(pos.column - 1)
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
}
