//! The catalogue pages: `docs/catalogue.md` is what `termwatch list --format markdown`
//! generates from the shipped scenarios, and every scenario `docs/hang-classes.md` names
//! exists.

use crate::support::{termwatch, workspace_path};

#[test]
fn the_committed_catalogue_page_is_what_the_scenarios_generate() {
    let output = termwatch()
        .args(["list", "--format", "markdown"])
        .output()
        .expect("termwatch runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).expect("UTF-8 output");
    let committed = std::fs::read_to_string(workspace_path("docs/catalogue.md"))
        .expect("docs/catalogue.md is committed");
    assert!(
        generated == committed,
        "docs/catalogue.md is out of date: regenerate it with \
         `cargo run --release -- list --format markdown > docs/catalogue.md`"
    );
}

/// The scenario names in backticks on a page (`folder/name`, with `{a,b}` alternatives
/// expanded).
fn scenario_names_in(page: &str) -> Vec<String> {
    let mut named = Vec::new();
    for (i, chunk) in page.split('`').enumerate() {
        let is_code = i % 2 == 1;
        let looks_like_a_name = chunk
            .split_once('/')
            .is_some_and(|(folder, name)| !folder.is_empty() && !name.is_empty());
        if !is_code || !looks_like_a_name || chunk.contains([' ', ':', '.', '(']) {
            continue;
        }
        match (chunk.find('{'), chunk.find('}')) {
            (Some(open), Some(close)) => {
                for alternative in chunk[open + 1..close].split(',') {
                    named.push(format!(
                        "{}{alternative}{}",
                        &chunk[..open],
                        &chunk[close + 1..]
                    ));
                }
            }
            _ => named.push(chunk.to_owned()),
        }
    }
    named
}

#[test]
fn names_are_read_from_code_spans_with_alternatives_expanded() {
    let page = "see `linger/push-{tcp,ipc}` and `a/b`, not `scenarios/`, `x.toml/y` or a/b";
    assert_eq!(
        scenario_names_in(page),
        ["linger/push-tcp", "linger/push-ipc", "a/b"]
    );
}

#[test]
fn every_scenario_the_hang_classes_page_names_exists() {
    let page = std::fs::read_to_string(workspace_path("docs/hang-classes.md"))
        .expect("docs/hang-classes.md is committed");
    let named = scenario_names_in(&page);
    assert!(named.len() > 40, "found only {named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| !workspace_path(&format!("scenarios/{name}.toml")).is_file())
        .collect();
    assert!(missing.is_empty(), "named but not shipped: {missing:?}");
}
