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
