//! Fuzzed input for the scenario parser and validator (proptest, stable Rust): arbitrary text,
//! and near-valid scenarios with one or more fields, lines or values mutated. No input may
//! panic, and every error that has a position must point inside the text, on the line it
//! quotes.
//!
//! The default case count is small so `cargo test` stays fast; a long run is
//! `PROPTEST_CASES=20000 cargo test --release --test it fuzz_scenarios::`. Inputs that once found a
//! bug are in `tests/fixtures/fuzz-corpus/` and replayed by `the_corpus_still_parses_without_panic`.

use std::path::Path;

use proptest::prelude::*;
use termwatch::errors::InputError;
use termwatch::scenario::parse;

/// Parses `text` and checks every error's position against it.
fn check(text: &str) -> Result<(), TestCaseError> {
    let Err(errors) = parse(Path::new("fuzz.toml"), text, "fuzz") else {
        return Ok(());
    };
    prop_assert!(!errors.is_empty(), "an Err without errors");
    for error in &errors {
        check_position(text, error)?;
    }
    Ok(())
}

fn check_position(text: &str, error: &InputError) -> Result<(), TestCaseError> {
    let Some(position) = error.position else {
        return Ok(());
    };
    let lines: Vec<&str> = text.lines().collect();
    prop_assert!(position.line >= 1 && position.column >= 1, "{error}");
    // An error at the very end of a text that ends in a newline sits on the line after it.
    prop_assert!(
        position.line <= lines.len() + 1,
        "{error}: line out of the text"
    );
    if let Some(line) = lines.get(position.line - 1) {
        prop_assert!(
            position.column <= line.chars().count() + 1,
            "{error}: column past the end of `{line}`"
        );
        prop_assert_eq!(error.source_line.as_deref(), Some(*line));
    }
    let rendered = error.render();
    prop_assert!(rendered.contains(&error.message));
    Ok(())
}

/// A valid scenario touching most of the format: contexts, every node kind, most step actions.
const BASE: &str = r#"name = "fuzz/base"
description = "base of the mutations"
expect = "hang"
expect_hang_at = "term"
transport = "tcp"
step_timeout = "2s"
monitor = false

[[contexts]]
name = "main"
io_threads = 1
blocky = true

[[contexts]]
name = "other"

[[nodes]]
name = "bus"
kind = "proxy"
engine = "steerable"
on_eterm = "close"
sndhwm = 1000
nodrop = false

[[nodes]]
name = "pub"
kind = "publisher"
connect = "bus"
topic = "t"
messages = 10
size = 64
rate = 1000
linger_ms = 0

[[nodes]]
name = "sub"
kind = "subscriber"
mode = "async"
connect = "bus.backend"
subscribe = ["t", ""]
expect_messages = 10

[[nodes]]
name = "poller"
kind = "subscriber"
mode = "poll"
poll_ms = 20
connect = "bus"
subscribe = ["t"]

[[nodes]]
name = "raw"
kind = "socket"
type = "PUSH"
context = "other"
bind = "auto"
send = 0
immediate = true

[[steps]]
action = "close"
node = "pub"

[[steps]]
action = "cancel"
node = "sub"

[[steps]]
label = "stop it"
action = "stop_runtime"
node = "sub"

[[steps]]
action = "set_linger"
node = "raw"
linger_ms = 0

[[steps]]
action = "steer"
node = "bus"
command = "TERMINATE"

[[steps]]
action = "sleep"
for = "10ms"

[[steps]]
action = "shutdown"
context = "other"

[[steps]]
action = "term"
timeout = "500ms"
expect_at_least = "1ms"

[[steps]]
action = "join"
node = "poller"
"#;

/// Values a mutated field may take: other types, edge numbers, bad durations, odd strings.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("2147483648".to_owned()),
        Just("1.5e309".to_owned()),
        Just("nan".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("[[]]".to_owned()),
        Just("{}".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("\"\"".to_owned()),
        Just("\"0s\"".to_owned()),
        Just("\"1ns\"".to_owned()),
        Just("\"18446744073709551615s\"".to_owned()),
        Just("\"99999999999999999999h\"".to_owned()),
        Just("\"584942417355y\"".to_owned()),
        Just("\"2s 2s\"".to_owned()),
        Just("\"tcp://\"".to_owned()),
        Just("\"ipc://\"".to_owned()),
        Just("\"inproc://\"".to_owned()),
        Just("\"bus.\"".to_owned()),
        Just("\".backend\"".to_owned()),
        Just("\"main\"".to_owned()),
        Just("\"bus\"".to_owned()),
        Just("\"traffic\"".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        "[a-z_.]{0,12}".prop_map(|s| format!("\"{s}\"")),
        "\\PC{0,8}".prop_map(|s| format!("{s:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// Keys a mutation may add or rename to: real ones in the wrong place, and unknown ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name"),
        Just("kind"),
        Just("node"),
        Just("context"),
        Just("connect"),
        Just("bind"),
        Just("action"),
        Just("timeout"),
        Just("for"),
        Just("expect"),
        Just("expect_hang_at"),
        Just("label"),
        Just("mode"),
        Just("engine"),
        Just("type"),
        Just("linger_ms"),
        Just("subscribe"),
        Just("command"),
        Just("step_timeout"),
        Just("messages"),
        Just("size"),
        Just("poll_ms"),
        Just("io_threads"),
        Just("unknown_field"),
    ]
    .prop_map(str::to_owned)
}

/// One edit of a scenario's lines.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value of the line's `key = value`.
    SetValue(usize, String),
    /// Insert `key = value` before the line.
    Insert(usize, String, String),
    /// Remove the line.
    Delete(usize),
    /// Copy the line after the other one.
    Duplicate(usize, usize),
    /// Swap two lines.
    Swap(usize, usize),
    /// Cut the line at a character.
    Truncate(usize, usize),
    /// Insert a table header before the line.
    Header(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = any::<usize>();
    prop_oneof![
        4 => (line, value()).prop_map(|(l, v)| Mutation::SetValue(l, v)),
        2 => (line, key(), value()).prop_map(|(l, k, v)| Mutation::Insert(l, k, v)),
        2 => line.prop_map(Mutation::Delete),
        1 => (line, line).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
        1 => (line, line).prop_map(|(a, b)| Mutation::Swap(a, b)),
        1 => (line, any::<usize>()).prop_map(|(l, c)| Mutation::Truncate(l, c)),
        1 => (line, prop_oneof![
            Just("[[nodes]]"), Just("[[steps]]"), Just("[[contexts]]"), Just("[nodes]"), Just("[x]")
        ]).prop_map(|(l, h)| Mutation::Header(l, h)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for m in mutations {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match m {
            Mutation::SetValue(l, v) => {
                let line = &mut lines[l % n];
                if let Some((k, _)) = line.split_once('=') {
                    *line = format!("{k}= {v}");
                }
            }
            Mutation::Insert(l, k, v) => lines.insert(l % n, format!("{k} = {v}")),
            Mutation::Delete(l) => {
                lines.remove(l % n);
            }
            Mutation::Duplicate(a, b) => {
                let copy = lines[a % n].clone();
                lines.insert(b % n + 1, copy);
            }
            Mutation::Swap(a, b) => lines.swap(a % n, b % n),
            Mutation::Truncate(l, c) => {
                let line = &mut lines[l % n];
                let keep = c % (line.chars().count() + 1);
                *line = line.chars().take(keep).collect();
            }
            Mutation::Header(l, h) => lines.insert(l % n, (*h).to_owned()),
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn the_base_scenario_is_valid() {
    if let Err(errors) = parse(Path::new("base.toml"), BASE, "base") {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proptest-regressions/fuzz_scenarios.txt")
            )
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        check(&text)?;
    }

    #[test]
    fn toml_shaped_text_never_panics(
        text in "(\\[\\[?(nodes|steps|contexts)\\]\\]?\n|[a-z_]{1,10} = (\"[a-z0-9_.:/ ]{0,10}\"|-?[0-9]{1,20}|true|\\[\"[a-z]{0,3}\"\\])\n){0,30}"
    ) {
        check(&text)?;
    }

    #[test]
    fn mutated_scenarios_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        check(&apply(BASE, &mutations))?;
    }
}

#[test]
fn the_corpus_still_parses_without_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-corpus");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&corpus).expect("the corpus folder exists") {
        let path = entry.expect("a corpus entry").path();
        let text = std::fs::read_to_string(&path).expect("a corpus file is text");
        if let Err(e) = check(&text) {
            panic!("{}: {e}", path.display());
        }
        replayed += 1;
    }
    assert!(replayed > 0, "empty corpus");
}
