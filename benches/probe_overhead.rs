//! The probe's cost on a pyzmq PUB→SUB message rate: `examples/pubsub_rate.py` run alternately
//! without and with the probe preloaded (and its channel and slot table live, as under
//! `termwatch exec`), the median of each, and their ratio.
//!
//! `cargo bench --bench probe_overhead` (11 pairs of 1,000,000 messages; `PROBE_BENCH_PAIRS`,
//! `PROBE_BENCH_MESSAGES` change them). Without `--bench` (`cargo test --benches`) it runs one
//! small pair to check it works. Needs Python with pyzmq (`TERMWATCH_PYTHON`, else
//! `target/venv/bin/python`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use termwatch::probe::ProbeSetup;

fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("TERMWATCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import zmq"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(python)
}

/// One run's rate (messages per second), with the probe or without.
fn rate(python: &Path, messages: u64, probed: bool) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pubsub_rate.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(["--messages", &messages.to_string()])
        .stderr(Stdio::inherit());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let setup = probed.then(|| ProbeSetup::new(dir.path()).expect("the probe's files"));
    if let Some(setup) = &setup {
        setup
            .configure(&mut command)
            .expect("the probe's environment");
    }
    command.stdout(Stdio::piped());
    let child = command.spawn().expect("python runs");
    let monitor = setup.map(|s| s.start(child.id()).expect("the probe's reader"));
    let output = child.wait_with_output().expect("python ends");
    if let Some(monitor) = monitor {
        let state = monitor.finish(Duration::from_secs(5));
        assert!(
            state.processes.values().any(|p| p.used_zmq()),
            "the probe saw no libzmq call: the measurement would not include it"
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .strip_prefix("rate ")
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {text:?}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let Some(python) = python() else {
        println!("note: no Python with pyzmq (set TERMWATCH_PYTHON): probe overhead not measured");
        return;
    };
    let full = std::env::args().any(|a| a == "--bench");
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (pairs, messages) = if full {
        (
            var("PROBE_BENCH_PAIRS", 11),
            var("PROBE_BENCH_MESSAGES", 1_000_000),
        )
    } else {
        (1, 20_000)
    };
    let (mut plain, mut probed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        // Alternate which goes first, so drift affects both alike.
        let (a, b) = if pair % 2 == 0 {
            let a = rate(&python, messages, false);
            (a, rate(&python, messages, true))
        } else {
            let b = rate(&python, messages, true);
            (rate(&python, messages, false), b)
        };
        println!(
            "pair {pair}: without {a:.0}/s, with {b:.0}/s, ratio {:.3}",
            b / a
        );
        plain.push(a);
        probed.push(b);
        ratios.push(b / a);
    }
    let ratio = median(ratios);
    println!(
        "probe overhead on pyzmq PUB->SUB tcp 64 B ({pairs} pairs of {messages} messages): \
         median without {:.0}/s, with {:.0}/s; median ratio {ratio:.3} ({:+.1}% rate)",
        median(plain),
        median(probed),
        (ratio - 1.0) * 100.0
    );
}
