//! Fuzzed input for the scenario parser and validator (proptest, stable Rust): arbitrary text,
//! and near-valid scenarios with one or more fields, lines or values mutated. No input may
//! panic, and every error that has a position must point inside the text, on the line it
//! quotes.
//!
//! The default case count is small so `cargo test` stays fast; a long run is
//! `PROPTEST_CASES=20000 cargo test --release --test it fuzz_scenarios::`. Inputs that once found a
//! bug are in `tests/fixtures/fuzz-corpus/` and replayed by `the_corpus_still_parses_without_panic`.

use std::path::{Component, Path};

use proptest::prelude::*;
use termwatch::errors::{Excerpt, InputError};
use termwatch::scenario::endpoint::{Direction, Endpoint, IPC_PATH_MAX, TcpPort};
use termwatch::scenario::names::path_under;
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
        let excerpt = error.source_line.as_ref();
        prop_assert!(excerpt.is_some(), "{error}: no source line");
        let excerpt = excerpt.unwrap();
        if excerpt.whole {
            prop_assert_eq!(excerpt.text.as_str(), *line);
            prop_assert_eq!(excerpt.caret, position.column - 1);
        } else {
            prop_assert!(
                line.contains(excerpt.text.trim_matches('…')),
                "{error}: cut"
            );
            prop_assert!(excerpt.text.chars().count() <= 2 * Excerpt::CONTEXT + 3);
            prop_assert_eq!(
                excerpt.text.chars().nth(excerpt.caret),
                line.chars().nth(position.column - 1)
            );
        }
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
        limit_number().prop_map(|n| n.to_string()),
        endpoint().prop_map(|e| toml_str(&e)),
        name().prop_map(|n| toml_str(&n)),
        limit_duration().prop_map(|d| toml_str(&d)),
    ]
}

/// `s` as a TOML basic string, control characters escaped as TOML writes them (`\u001B`).
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every documented range's ends and their neighbours, and the integer type limits.
fn limit_number() -> impl Strategy<Value = i128> {
    let ends: Vec<i128> = [
        0,
        1,
        -1,
        64,
        1023,
        1024,
        60_000,
        65_535,
        1_000_000,
        64 << 20,
        100_000_000,
        i32::MAX.into(),
        i64::MAX.into(),
        u64::MAX.into(),
    ]
    .into_iter()
    .flat_map(|n: i128| [n - 1, n, n + 1])
    .collect();
    prop::sample::select(ends)
}

/// Durations around 1 ms and 24 h.
fn limit_duration() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "1ms",
        "999us",
        "1000us",
        "24h",
        "1day",
        "1day 1ns",
        "86400001ms",
        "0ms",
        "1ns",
    ])
    .prop_map(str::to_owned)
}

/// Endpoint strings: every transport, hosts and ports at and past their limits, ipc paths
/// around the kernel's 107 bytes.
fn endpoint() -> impl Strategy<Value = String> {
    let host = prop::sample::select(vec![
        "127.0.0.1",
        "*",
        "[::1]",
        "[::zz]",
        "localhost",
        "eth0",
        "garbage!!",
        "256.1.1.1",
        "",
        "a..b",
        "-",
        "1.2.3",
    ]);
    let port = prop::sample::select(vec![
        "0",
        "1",
        "65535",
        "65536",
        "99999",
        "*",
        "-1",
        "",
        "18446744073709551616",
        "+5",
    ]);
    let tcp = (host, port).prop_map(|(h, p)| format!("tcp://{h}:{p}"));
    let ipc = (100usize..112, prop::bool::ANY).prop_map(|(len, abstract_)| {
        let first = if abstract_ { "@" } else { "/" };
        format!("ipc://{first}{}", "p".repeat(len - 1))
    });
    prop_oneof![
        tcp,
        ipc,
        Just("ipc://".to_owned()),
        Just("ipc://*".to_owned()),
        Just("inproc://".to_owned()),
        "[a-z-]{1,8}".prop_map(|n| format!("inproc://{n}")),
        "[a-z]{0,5}://[a-z!:*]{0,8}".prop_map(|s| s),
        Just("tcp://garbage!!".to_owned()),
        "\\PC{0,4}://\\PC{0,6}".prop_map(|s| s),
    ]
}

/// Names with separators, dots, control characters, at odd lengths.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "..",
            ".",
            "../x",
            "a/../../b",
            "/abs",
            "a//b",
            "a/",
            "ok\nFAIL",
            "esc\u{1b}[2J",
            "nul\0",
            "tab\tx",
            "a\\b",
            "a.b",
            "a b",
            " ",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-z./\\\\ -]{1,12}",
        "\\PC{1,8}",
        (1usize..300).prop_map(|n| "n".repeat(n)),
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

    /// An endpoint that parses renders as libzmq's string and parses back to itself; a tcp
    /// port is in 1-65535 and an ipc path at most 107 bytes.
    #[test]
    fn endpoints_at_their_limits_round_trip_or_are_refused(text in endpoint()) {
        for direction in [Direction::Bind, Direction::Connect] {
            if let Ok(e) = Endpoint::parse(&text, direction) {
                prop_assert_eq!(Endpoint::parse(&e.to_string(), direction), Ok(e.clone()));
                match &e {
                    Endpoint::Tcp { port: TcpPort::Number(p), .. } => prop_assert!(p.get() >= 1),
                    Endpoint::Ipc(path) => prop_assert!(path.as_os_str().len() <= IPC_PATH_MAX),
                    _ => {}
                }
            }
        }
        let scenario = format!(
            "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"socket\"\ntype = \"PAIR\"\nconnect = {}\n",
            toml_str(&text)
        );
        check(&scenario)?;
    }

    /// A scenario name is accepted only if its snapshot path stays in the snapshot folder.
    #[test]
    fn names_at_their_limits_never_leave_their_folder(name in name()) {
        let text = format!("name = {}\nexpect = \"clean\"\n", toml_str(&name));
        check(&text)?;
        if let Ok(scenario) = parse(Path::new("n.toml"), &text, "n") {
            let root = Path::new("/nonexistent-snapshots");
            let path = path_under(root, &scenario.name, ".snap");
            prop_assert!(path.is_ok(), "{:?}", path);
            let path = path.unwrap();
            prop_assert!(path.starts_with(root));
            prop_assert!(!path.components().any(|c| matches!(c, Component::ParentDir)));
            prop_assert!(!scenario.name.chars().any(char::is_control));
        } else if !name.trim().is_empty() && !name.contains("..") && !name.starts_with('/') {
            // Refused for a reason the rules give: a control character or an odd part.
            prop_assert!(
                name.chars().any(char::is_control)
                    || name.split('/').any(|p| p.is_empty() || p == "." || p.len() > 250),
                "{:?} refused", name
            );
        }
        let node = format!(
            "expect = \"clean\"\n[[nodes]]\nname = {}\nkind = \"publisher\"\nbind = \"auto\"\n",
            toml_str(&name)
        );
        check(&node)?;
    }

    /// A number is accepted exactly when it is in the documented range of its field.
    #[test]
    fn numbers_at_their_limits_are_accepted_exactly_in_range(
        n in limit_number(),
        (field, min, max) in prop::sample::select(vec![
            ("size", 1i128, 64i128 << 20),
            ("rate", 1, 1_000_000),
            ("messages", 0, 100_000_000),
            ("linger_ms", -1, i32::MAX as i128),
            ("sndhwm", 0, i32::MAX as i128),
        ]),
    ) {
        let text = format!(
            "expect = \"clean\"\n[[nodes]]\nname = \"p\"\nkind = \"publisher\"\nbind = \"auto\"\n{field} = {n}\n"
        );
        check(&text)?;
        let in_toml = i64::try_from(n).is_ok() || u64::try_from(n).is_ok();
        let accepted = parse(Path::new("n.toml"), &text, "n").is_ok();
        prop_assert_eq!(accepted, in_toml && (min..=max).contains(&n), "{} = {}", field, n);
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
