//! `docs/catalogue.md` is generated from the scenario files by `termwatch list --format
//! markdown`; this test fails when the committed page no longer matches what the shipped
//! scenarios generate.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;

#[test]
fn the_committed_catalogue_page_is_what_the_scenarios_generate() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::cargo_bin("termwatch")
        .expect("the termwatch binary is built")
        .current_dir(&workspace)
        .args(["list", "--format", "markdown"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("termwatch runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).expect("UTF-8 output");
    let committed = std::fs::read_to_string(workspace.join("docs/catalogue.md"))
        .expect("docs/catalogue.md is committed");
    assert!(
        generated == committed,
        "docs/catalogue.md is out of date: regenerate it with \
         `cargo run --release -- list --format markdown > docs/catalogue.md`"
    );
}

/// Every scenario `docs/hang-classes.md` names (a backticked `folder/name`, with `{a,b}`
/// alternatives expanded) is a shipped scenario file.
#[test]
fn every_scenario_the_hang_classes_page_names_exists() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(workspace.join("docs/hang-classes.md"))
        .expect("docs/hang-classes.md is committed");
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
    assert!(named.len() > 40, "found only {named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| !workspace.join(format!("scenarios/{name}.toml")).is_file())
        .collect();
    assert!(missing.is_empty(), "named but not shipped: {missing:?}");
}
