//! The probe's cost on a pyzmq PUB→SUB message rate: `examples/pubsub_rate.py` (a subscriber
//! process and the publisher process it starts) run alternately without and with the probe
//! preloaded into both (and its channel and slot table live, as under `termwatch exec`), the
//! median of each, and their ratio.
//!
//! `cargo bench --bench probe_overhead` (11 pairs of 1,000,000 messages; `PROBE_BENCH_PAIRS`,
//! `PROBE_BENCH_MESSAGES` change them). Without `--bench` (`cargo test --benches`) it runs one
//! small pair to check it works. Needs Python with pyzmq (`TERMWATCH_PYTHON`, else
//! `target/venv/bin/python`).

use std::io::Read;
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

/// One run: its rate (messages per second) and the CPU time it used per message (ns, user +
/// system, all threads), with the probe or without. CPU time is the steadier figure on a
/// shared machine: waiting for a core does not count.
fn run(python: &Path, messages: u64, probed: bool) -> (f64, f64) {
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
    let mut child = command.spawn().expect("python runs");
    let monitor = setup.map(|s| s.start(child.id()).expect("the probe's reader"));
    let mut text = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut text)
        .expect("python's output");
    let before = children_cpu_ns();
    child.wait().expect("python ends");
    let cpu_ns = children_cpu_ns() - before;
    if let Some(monitor) = monitor {
        let state = monitor.finish(Duration::from_secs(5));
        let probed = state.processes.values().filter(|p| p.used_zmq()).count();
        assert!(
            probed == 2,
            "the probe saw libzmq calls in {probed} process(es), not in the publisher's and the \
             subscriber's: the measurement would not include it"
        );
    }
    let rate = text
        .trim()
        .strip_prefix("rate ")
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {text:?}"));
    (rate, cpu_ns / messages as f64)
}

/// CPU time (user + system) of every child reaped so far, ns.
fn children_cpu_ns() -> f64 {
    // SAFETY: an all-zero rusage is valid to write into.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let ns = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    ns(usage.ru_utime) + ns(usage.ru_stime)
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
    let mut rates = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        // Alternate which goes first, so drift affects both alike.
        let ((ra, ca), (rb, cb)) = if pair % 2 == 0 {
            let a = run(&python, messages, false);
            (a, run(&python, messages, true))
        } else {
            let b = run(&python, messages, true);
            (run(&python, messages, false), b)
        };
        println!(
            "pair {pair}: rate {ra:.0}/s vs {rb:.0}/s with the probe (x{:.3}); CPU {ca:.0} vs \
             {cb:.0} ns/message (x{:.3})",
            rb / ra,
            cb / ca
        );
        rates.0.push(ra);
        rates.1.push(rb);
        rates.2.push(rb / ra);
        cpu.0.push(ca);
        cpu.1.push(cb);
        cpu.2.push(cb / ca);
    }
    println!(
        "probe overhead, pyzmq PUB->SUB tcp 64 B, {pairs} pairs of {messages} messages (medians): \
         rate {:.0}/s without, {:.0}/s with, ratio {:.3}; CPU {:.0} ns/message without, {:.0} \
         with, ratio {:.3}",
        median(rates.0),
        median(rates.1),
        median(rates.2),
        median(cpu.0),
        median(cpu.1),
        median(cpu.2)
    );
}
