//! Finding scenario files: the paths given on the command line, folders searched recursively
//! for `*.toml` in a stable order, every file loaded, and every problem in every file reported
//! together (two scenarios with the same name included, each pointed at).
//!
//! Symlinks are followed, but each real folder and file is read once: a second path to the same
//! folder (two links to it) is skipped, and a link back to a folder being searched is reported
//! as a loop, once.

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{Scenario, load};
use crate::errors::{InputError, InputErrors};

/// Loads every scenario under `paths` (files or folders); names are relative to `root`.
pub fn discover(paths: &[PathBuf], root: &Path) -> Result<Vec<Scenario>, InputErrors> {
    let mut walk = Walk::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let before = walk.files.len();
                if walk.folder(path, &mut Vec::new()) && walk.files.len() == before {
                    walk.errors.push(InputError::whole(
                        path,
                        "no scenario files (*.toml) in this folder",
                    ));
                }
            }
            Ok(_) => walk.file(path),
            Err(e) => walk.errors.push(InputError::whole(path, missing(path, &e))),
        }
    }
    let Walk {
        files, mut errors, ..
    } = walk;
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for file in files {
        match load(&file, root) {
            Ok(scenario) => match names.get(&scenario.name) {
                Some(&first) => errors.push(duplicate(&scenarios[first], &scenario)),
                None => {
                    names.insert(scenario.name.clone(), scenarios.len());
                    scenarios.push(scenario);
                }
            },
            Err(file_errors) => errors.extend(file_errors),
        }
    }
    if errors.is_empty() {
        Ok(scenarios)
    } else {
        Err(InputErrors(errors))
    }
}

/// Why `path` cannot be read: missing, or a symlink that leads back to itself.
fn missing(path: &Path, error: &std::io::Error) -> String {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if error.raw_os_error() == Some(libc::ELOOP) {
        "symlink loop: this link leads back to itself".to_owned()
    } else if is_link {
        format!("broken symlink: {error}")
    } else if error.kind() == ErrorKind::NotFound {
        "no such file or folder".to_owned()
    } else {
        format!("cannot read: {error}")
    }
}

/// The error for `second`, whose name `first` already has; both files are named.
fn duplicate(first: &Scenario, second: &Scenario) -> InputError {
    let at = |s: &Scenario| match s.name_position {
        Some(p) => format!("{}:{}:{}", s.file.display(), p.line, p.column),
        None => format!("{} (its path)", s.file.display()),
    };
    let message = format!(
        "scenario name `{}` is already used by {}; names must be unique in a run",
        second.name,
        at(first)
    );
    match second.name_position {
        Some(position) => {
            let text = std::fs::read_to_string(&second.file).unwrap_or_default();
            InputError::at_position(
                &second.file,
                position,
                text.lines().nth(position.line - 1),
                message,
            )
        }
        None => InputError::whole(&second.file, message),
    }
}

/// The state of a search: files found, real paths seen, errors.
#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    errors: Vec<InputError>,
}

impl Walk {
    fn file(&mut self, path: &Path) {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        if self.seen.insert(real) {
            self.files.push(path.to_owned());
        }
    }

    /// Searches `dir`; `ancestors` are the folders being searched above it (real path, path
    /// as reached).
    /// False when it was not searched: unreadable, a loop, or searched before.
    fn folder(&mut self, dir: &Path, ancestors: &mut Vec<(PathBuf, PathBuf)>) -> bool {
        let real = match std::fs::canonicalize(dir) {
            Ok(real) => real,
            Err(e) => {
                self.errors.push(InputError::whole(dir, missing(dir, &e)));
                return false;
            }
        };
        if let Some((_, outer)) = ancestors.iter().find(|(a, _)| *a == real) {
            self.errors.push(InputError::whole(
                dir,
                format!(
                    "symlink loop: this is folder {} again, which contains it; each folder is searched once",
                    outer.display()
                ),
            ));
            return false;
        }
        if !self.seen.insert(real.clone()) {
            return false;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.errors
                    .push(InputError::whole(dir, format!("cannot read folder: {e}")));
                return false;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        ancestors.push((real, dir.to_owned()));
        for path in paths {
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    self.folder(&path, ancestors);
                }
                _ if path.extension().is_none_or(|ext| ext != "toml") => {}
                Ok(_) => self.file(&path),
                Err(e) => self
                    .errors
                    .push(InputError::whole(&path, missing(&path, &e))),
            }
        }
        ancestors.pop();
        true
    }
}
