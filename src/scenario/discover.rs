//! Finding scenario files: the paths given on the command line, folders searched recursively
//! for `*.toml` in a stable order, every file loaded, and every problem in every file reported
//! together (two scenarios with the same name included).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Scenario, load};
use crate::errors::{InputError, InputErrors};

/// Loads every scenario under `paths` (files or folders); names are relative to `root`.
pub fn discover(paths: &[PathBuf], root: &Path) -> Result<Vec<Scenario>, InputErrors> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            collect_toml(path, &mut files, &mut errors);
            if files.len() == before {
                errors.push(InputError::whole(
                    path,
                    "no scenario files (*.toml) in this folder",
                ));
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            errors.push(InputError::whole(path, "no such file or folder"));
        }
    }
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load(&file, root) {
            Ok(scenario) => {
                if let Some(first) = names.insert(scenario.name.clone(), file.clone()) {
                    if first != file {
                        errors.push(InputError::whole(
                            &file,
                            format!(
                                "scenario name `{}` is already used by {}",
                                scenario.name,
                                first.display()
                            ),
                        ));
                    }
                    continue;
                }
                scenarios.push(scenario);
            }
            Err(file_errors) => errors.extend(file_errors),
        }
    }
    if errors.is_empty() {
        Ok(scenarios)
    } else {
        Err(InputErrors(errors))
    }
}

fn collect_toml(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(InputError::whole(dir, format!("cannot read folder: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_toml(&path, files, errors);
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            files.push(path);
        }
    }
}
