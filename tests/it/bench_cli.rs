//! CLI tests of `termwatch bench` and `termwatch compare`: result files, verdicts, exit codes and
//! that no role process outlives a bench. Nothing here asserts a throughput figure.

use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{eventually, live_processes, termwatch, termwatch_process, workspace_path};

/// A marker in the environment of a bench and, by inheritance, of its role processes.
fn marker(name: &str) -> String {
    format!("termwatch-test-{name}-{}", std::process::id())
}

/// Processes whose environment carries `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let entry = format!("TERMWATCH_TEST_MARKER={marker}");
    live_processes()
        .into_iter()
        .filter(|p| p.has_env(&entry))
        .map(|p| p.pid)
        .collect()
}

/// Runs `termwatch bench` with its temporary files under a directory of its own; checks that no
/// role process and no scratch directory (ipc endpoints) is left once it exited.
fn bench(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, i32) {
    let output = dir.join(format!("{name}.json"));
    let scratch = tempfile::tempdir().expect("scratch dir");
    let outcome = termwatch()
        .env("TERMWATCH_TEST_MARKER", marker(name))
        .env("TMPDIR", scratch.path())
        .args(["bench", "--output"])
        .arg(&output)
        .args(extra)
        .output()
        .expect("bench runs");
    let code = outcome.status.code().expect("bench exits normally");
    // Roles and external proxies are reaped before the bench exits; the janitor (started for
    // external proxies) ends when the bench's pipe to it closes.
    assert!(
        eventually(Duration::from_secs(2), || processes_with(&marker(name))
            .is_empty()),
        "processes left behind"
    );
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("scratch dir")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    (output, code)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("result file")).expect("JSON")
}

const SMALL_RUN: [&str; 8] = [
    "--transport",
    "tcp,ipc,inproc",
    "--size",
    "64",
    "--messages",
    "5000",
    "--repeat",
    "2",
];

#[test]
fn bench_writes_a_complete_result_file_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, code) = bench(dir.path(), "complete", &SMALL_RUN);
    assert_eq!(code, 0);
    let result = read_json(&path);
    assert_eq!(result["format"], "termwatch-bench/1");
    assert!(result["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(result["libzmq"], "4.3.4");
    assert_eq!(result["settings"]["hwm"], 1000);
    let workloads = result["workloads"].as_array().expect("workloads");
    assert_eq!(workloads.len(), 3 * 4, "3 transports x 4 engines");
    for workload in workloads {
        let samples = workload["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), 2, "{}", workload["id"]);
        for sample in samples {
            assert_eq!(sample["received"], sample["expected"], "{}", workload["id"]);
        }
        assert!(workload["median_msgs_per_s"].is_number());
    }
    let ratios = result["ratios"].as_array().expect("ratios");
    assert!(
        ratios
            .iter()
            .any(|r| r["id"] == "tcp/64B/1x1/forwarder"
                && r["baseline_id"] == "tcp/64B/1x1/zmq_proxy")
    );
}

#[test]
fn bench_fans_in_and_out_over_processes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, code) = bench(
        dir.path(),
        "fan",
        &[
            "--transport",
            "ipc",
            "--engine",
            "direct,forwarder",
            "--fan",
            "4x1,1x4",
            "--size",
            "32",
            "--messages",
            "2000",
            "--repeat",
            "1",
        ],
    );
    assert_eq!(code, 0);
    let result = read_json(&path);
    let ids: Vec<&str> = result["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert!(ids.contains(&"ipc/32B/4x1/forwarder"), "{ids:?}");
    assert!(ids.contains(&"ipc/32B/1x4/direct"), "{ids:?}");
}

#[test]
fn comparing_a_run_with_itself_is_never_slower() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = bench(dir.path(), "same", &SMALL_RUN);
    termwatch()
        .arg("compare")
        .arg(&path)
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "12 workloads: 0 slower, 0 lost, 0 faster",
        ));
}

/// Rewrites every sample rate of a result file: `rate(workload index, sample index)`.
fn with_rates(result: &Value, rate: impl Fn(usize, usize) -> f64) -> Value {
    let mut result = result.clone();
    for (w, workload) in result["workloads"]
        .as_array_mut()
        .expect("workloads")
        .iter_mut()
        .enumerate()
    {
        for (s, sample) in workload["samples"]
            .as_array_mut()
            .expect("samples")
            .iter_mut()
            .enumerate()
        {
            sample["msgs_per_s"] = rate(w, s).into();
        }
    }
    result
}

fn write_json(path: &Path, value: &Value) -> PathBuf {
    std::fs::write(path, value.to_string()).expect("write result file");
    path.to_path_buf()
}

/// A deliberate slowdown, end to end: a real run with the test-only 20% throttle
/// completes, records the throttle, and `compare` reads it. Whether real timings show it is
/// measured in docs/benchmarks.md, not asserted here; the verdict on a 20% drop is checked on
/// rates with a fixed ±3% spread, so the test does not depend on the machine's load.
#[test]
fn a_twenty_percent_throttle_is_flagged_slower() {
    let dir = tempfile::tempdir().expect("temp dir");
    let workload = [
        "--transport",
        "tcp,ipc",
        "--engine",
        "direct,forwarder",
        "--size",
        "1KiB",
        "--messages",
        "20000",
        "--repeat",
        "5",
    ];
    let (plain, plain_code) = bench(dir.path(), "plain", &workload);
    let mut throttled_args = workload.to_vec();
    throttled_args.extend(["--throttle-percent", "20"]);
    let (throttled, throttled_code) = bench(dir.path(), "throttled", &throttled_args);
    assert_eq!((plain_code, throttled_code), (0, 0));
    assert_eq!(read_json(&throttled)["settings"]["throttle_percent"], 20);
    let real = termwatch()
        .arg("compare")
        .arg(&plain)
        .arg(&throttled)
        .output()
        .expect("compare runs");
    assert!(matches!(real.status.code(), Some(0 | 1)), "{real:?}");

    let spread = [1.0, 1.03, 0.97, 1.01, 0.99];
    let steady = with_rates(&read_json(&plain), |w, s| 1e6 * (w + 1) as f64 * spread[s]);
    let slowed = with_rates(&steady, |w, s| {
        0.8 * 1e6 * (w + 1) as f64 * spread[(s + 2) % 5]
    });
    let steady = write_json(&dir.path().join("steady.json"), &steady);
    let slowed = write_json(&dir.path().join("slowed.json"), &slowed);
    let markdown = dir.path().join("report.md");
    let svg = dir.path().join("report.svg");
    termwatch()
        .arg("compare")
        .arg(&steady)
        .arg(&slowed)
        .arg("--markdown")
        .arg(&markdown)
        .arg("--svg")
        .arg(&svg)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "4 workloads: 4 slower, 0 lost, 0 faster, 0 no change, 0 inconclusive",
        ));
    let markdown = std::fs::read_to_string(markdown).expect("markdown written");
    assert!(markdown.contains("| tcp/1KiB/1x1/direct |"), "{markdown}");
    let svg = std::fs::read_to_string(svg).expect("svg written");
    assert!(svg.starts_with("<svg") && svg.contains("slower"), "{svg}");
    termwatch()
        .arg("compare")
        .arg(&steady)
        .arg(&steady)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "4 workloads: 0 slower, 0 lost, 0 faster, 4 no change",
        ));
}

#[test]
fn compare_rejects_unreadable_inputs_with_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json").expect("write");
    let wrong_format = dir.path().join("wrong.json");
    std::fs::write(&wrong_format, r#"{"format":"something-else/9"}"#).expect("write");
    let missing = dir.path().join("missing.json");
    for (old, expected) in [
        (&missing, "cannot read"),
        (&garbage, "is not a termwatch bench result file"),
        (&wrong_format, "is not a termwatch bench result file"),
    ] {
        termwatch()
            .arg("compare")
            .arg(old)
            .arg(old)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected))
            .stderr(predicate::str::contains("panicked").not());
    }
    termwatch()
        .args(["compare", "--criterion-dir"])
        .arg(dir.path())
        .args(["base", "new"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no criterion benchmark"));
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        vec!["bench", "--size", "0"],
        vec!["bench", "--transport", "carrier-pigeon"],
        vec!["bench", "--fan", "0x1"],
        vec!["bench", "--repeat", "0"],
        vec!["bench", "--throttle-percent", "95"],
        vec!["compare", "a.json", "b.json", "--threshold", "150%"],
        vec!["compare", "only-one.json"],
    ] {
        termwatch().args(&args).assert().code(2);
    }
}

#[test]
fn compare_reads_criterion_baselines() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (baseline, nanos) in [("base", 1_000_000.0), ("slow", 1_400_000.0)] {
        let bench = dir.path().join("proxy").join("tcp_16B").join(baseline);
        std::fs::create_dir_all(&bench).expect("dirs");
        std::fs::write(
            bench.join("benchmark.json"),
            r#"{"group_id":"proxy","function_id":"tcp_16B","value_str":null,
                "throughput":{"ElementsAndBytes":{"elements":1000,"bytes":16000}},
                "full_id":"proxy/tcp_16B","directory_name":"proxy/tcp_16B","title":"proxy/tcp_16B"}"#,
        )
        .expect("benchmark.json");
        let times: Vec<String> = (0..10)
            .map(|i| format!("{}", nanos * (1.0 + i as f64 * 0.001)))
            .collect();
        std::fs::write(
            bench.join("sample.json"),
            format!(
                r#"{{"sampling_mode":"Flat","iters":[{}],"times":[{}]}}"#,
                ["1.0"; 10].join(","),
                times.join(",")
            ),
        )
        .expect("sample.json");
    }
    termwatch()
        .args(["compare", "--criterion-dir"])
        .arg(dir.path())
        .args(["base", "slow"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("proxy/tcp_16B"))
        .stdout(predicate::str::contains("elem/s"))
        .stdout(predicate::str::contains("slower"));
    termwatch()
        .args(["compare", "--criterion-dir"])
        .arg(dir.path())
        .args(["base", "base"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no change"));
}

#[test]
fn killing_the_bench_ends_its_role_processes() {
    let marker = marker("killed");
    // A killed bench cannot remove its ipc scratch directory: keep it in one the test removes.
    let scratch = tempfile::tempdir().expect("scratch dir");
    let mut bench = termwatch_process()
        .env("TERMWATCH_TEST_MARKER", &marker)
        .env("TMPDIR", scratch.path())
        .args([
            "bench",
            "--transport",
            "tcp",
            "--engine",
            "zmq_proxy",
            "--size",
            "16",
            "--messages",
            "100000000",
            "--repeat",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bench starts");
    eventually(Duration::from_secs(30), || {
        processes_with(&marker).len() >= 4
    });
    let started = processes_with(&marker).len();
    bench.kill().expect("kill the bench");
    bench.wait().expect("reap the bench");
    // The roles die with the bench (they asked the kernel for it), within a second.
    eventually(Duration::from_secs(1), || {
        processes_with(&marker).is_empty()
    });
    assert_eq!(
        started, 4,
        "bench, proxy, publisher and subscriber were running"
    );
    assert_eq!(
        processes_with(&marker),
        Vec::<i32>::new(),
        "orphaned role processes"
    );
}

fn termwatch_path() -> String {
    assert_cmd::cargo::cargo_bin("termwatch")
        .to_str()
        .expect("a UTF-8 path")
        .to_string()
}

/// `--proxy NAME=<termwatch proxy ...>` with extra flags and a shell prefix/suffix.
fn proxy_flag(name: &str, before: &str, flags: &str, after: &str) -> String {
    format!(
        "{name}={before}{} proxy {flags} --frontend {{frontend}} --backend {{backend}}{after}",
        termwatch_path()
    )
}

const TINY_TCP: [&str; 8] = [
    "--transport",
    "tcp",
    "--size",
    "64",
    "--messages",
    "3000",
    "--repeat",
    "1",
];

/// Runs a bench with `extra` after [`TINY_TCP`]; returns its exit code and stderr, having
/// checked that nothing it started is left.
fn tiny_bench(name: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("scratch dir");
    let outcome = termwatch()
        .env("TERMWATCH_TEST_MARKER", marker(name))
        .env("TMPDIR", scratch.path())
        .arg("bench")
        .args(TINY_TCP)
        .args(extra)
        .arg("--output")
        .arg(dir.path().join("out.json"))
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&outcome.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        eventually(Duration::from_secs(2), || processes_with(&marker(name))
            .is_empty()),
        "processes left behind: {stderr}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("scratch dir")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    (outcome.status.code().expect("exits normally"), stderr)
}

#[test]
fn an_external_proxy_is_measured_like_a_built_in_engine_and_compared_paired() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = proxy_flag("a", "", "", "");
    let b = proxy_flag("b", "", "--engine forwarder", "");
    let (path, code) = bench(
        dir.path(),
        "external",
        &[
            "--transport",
            "tcp,ipc,inproc",
            "--size",
            "64",
            "--messages",
            "3000",
            "--repeat",
            "5",
            "--engine",
            "zmq_proxy,a,b",
            "--proxy",
            &a,
            "--proxy",
            &b,
            "--proxy-ready",
            "b=forwarding",
        ],
    );
    assert_eq!(code, 0);
    let result = read_json(&path);
    let ids: Vec<&str> = result["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"ipc/64B/1x1/a") && ids.contains(&"tcp/64B/1x1/b"),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"inproc/64B/1x1/a"),
        "no external engine over inproc: {ids:?}"
    );
    assert_eq!(
        result["settings"]["external_proxies"][1]["ready_line"],
        "forwarding"
    );
    let ratios = result["ratios"].as_array().expect("ratios");
    assert!(
        ratios
            .iter()
            .any(|r| r["id"] == "tcp/64B/1x1/a" && r["baseline_id"] == "tcp/64B/1x1/zmq_proxy")
    );
    let markdown = dir.path().join("ab.md");
    let svg = dir.path().join("ab.svg");
    let compare = termwatch()
        .arg("compare")
        .arg(&path)
        .args(["--engines", "a,b", "--markdown"])
        .arg(&markdown)
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("compare runs");
    let stdout = String::from_utf8_lossy(&compare.stdout);
    assert!(matches!(compare.status.code(), Some(0 | 1)), "{compare:?}");
    assert!(
        stdout.contains("a median msg/s") && stdout.contains("b median msg/s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tcp/64B/1x1 ") && stdout.contains("at 93.8%"),
        "{stdout}"
    );
    assert!(
        std::fs::read_to_string(markdown)
            .expect("markdown")
            .contains("| ipc/64B/1x1 |")
    );
    assert!(
        std::fs::read_to_string(svg)
            .expect("svg")
            .contains("b rate relative to a")
    );
    termwatch()
        .arg("compare")
        .arg(&path)
        .args(["--engines", "a,nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no workload was measured with the engine `nope`",
        ));
}

#[test]
fn an_external_proxy_that_exits_at_once_is_a_clear_error() {
    let (code, stderr) = tiny_bench(
        "exits",
        &[
            "--engine",
            "gone",
            "--proxy",
            "gone=echo bye >&2; exit 3 # {frontend} {backend}",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("tcp/64B/1x1/gone, repeat 1: proxy `gone` exited with status 3 before it was ready (its output: bye)"),
        "{stderr}"
    );
}

#[test]
fn an_external_proxy_that_never_binds_is_a_clear_error() {
    let (code, stderr) = tiny_bench(
        "unbound",
        &[
            "--engine",
            "deaf",
            "--proxy",
            "deaf=sleep 60 # {frontend} {backend}",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("proxy `deaf` did not accept connections on tcp://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("within 10s"), "{stderr}");
}

#[test]
fn an_external_proxy_that_ignores_sigterm_is_killed_and_reported() {
    // The proxy itself stops on SIGTERM; the shell around it ignores it and starts a `sleep` that
    // inherits the ignored signal: the program as a whole does not stop.
    let stubborn = proxy_flag("stubborn", "trap '' TERM; ", "", "; sleep 60");
    let (code, stderr) = tiny_bench("stubborn", &["--engine", "stubborn", "--proxy", &stubborn]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("proxy `stubborn` did not stop within 2s of SIGTERM"),
        "{stderr}"
    );
    assert!(stderr.contains("sleep ["), "names what was left: {stderr}");
}

#[test]
fn an_external_proxy_that_drops_messages_makes_a_lossy_sample() {
    let lossy = proxy_flag("lossy", "", "--drop-every 100", "");
    let (code, stderr) = tiny_bench("lossy", &["--engine", "lossy", "--proxy", &lossy]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("tcp/64B/1x1/lossy, repeat 1: lost "),
        "{stderr}"
    );
}

#[test]
fn external_proxy_flags_are_checked_before_anything_runs() {
    for (args, expected) in [
        (vec!["--engine", "nope"], "unknown engine `nope`"),
        (
            vec!["--engine", "direct", "--proxy", "p=x {frontend} {backend}"],
            "--proxy `p` is not in --engine",
        ),
        (vec!["--proxy", "p=x {frontend}"], "has no {backend}"),
        (
            vec!["--proxy", "forwarder=x {frontend} {backend}"],
            "is a built-in engine",
        ),
        (
            vec![
                "--proxy",
                "p=x {frontend} {backend}",
                "--proxy-ready",
                "q=ready",
            ],
            "--proxy-ready names `q`",
        ),
        (
            vec![
                "--transport",
                "inproc",
                "--proxy",
                "p=x {frontend} {backend}",
            ],
            "ipc and tcp only",
        ),
    ] {
        termwatch()
            .arg("bench")
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn killing_the_bench_ends_its_external_proxy_and_what_it_started() {
    let marker = marker("killed-external");
    let scratch = tempfile::tempdir().expect("scratch dir");
    // Through `sh -c`, the proxy is the shell's child: only the janitor can reach it.
    let proxy = proxy_flag("ext", "", "", "; true");
    let mut bench = termwatch_process()
        .env("TERMWATCH_TEST_MARKER", &marker)
        .env("TMPDIR", scratch.path())
        .args([
            "bench",
            "--transport",
            "tcp",
            "--engine",
            "ext",
            "--size",
            "16",
            "--messages",
            "100000000",
            "--repeat",
            "1",
            "--proxy",
            &proxy,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bench starts");
    // bench, janitor, shell, proxy, publisher, subscriber
    eventually(Duration::from_secs(30), || {
        processes_with(&marker).len() >= 6
    });
    let started = processes_with(&marker).len();
    bench.kill().expect("kill the bench");
    bench.wait().expect("reap the bench");
    eventually(Duration::from_secs(5), || {
        processes_with(&marker).is_empty()
    });
    assert_eq!(
        started, 6,
        "bench, janitor, shell, proxy, publisher and subscriber ran"
    );
    assert_eq!(
        processes_with(&marker),
        Vec::<i32>::new(),
        "orphaned processes"
    );
}

#[test]
fn the_standalone_proxy_stops_cleanly_on_sigterm_with_peers_attached() {
    let dir = tempfile::tempdir().expect("temp dir");
    let frontend = format!("ipc://{}/front", dir.path().display());
    let backend = format!("ipc://{}/back", dir.path().display());
    let mut proxy = termwatch_process()
        .args([
            "proxy",
            "--engine",
            "forwarder",
            "--counts",
            "--frontend",
            &frontend,
        ])
        .args(["--backend", &backend])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("proxy starts");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        proxy.stdout.take().expect("stdout"),
    ));
    let ready = lines.next().expect("a first line").expect("readable");
    assert!(ready.contains("forwarding"), "{ready}");
    let context = zmq::Context::new();
    let publisher = context.socket(zmq::PUB).expect("PUB");
    publisher.connect(&frontend).expect("connect PUB");
    let subscriber = context.socket(zmq::SUB).expect("SUB");
    subscriber.set_subscribe(b"").expect("subscribe");
    subscriber.set_rcvtimeo(100).expect("timeout");
    subscriber.connect(&backend).expect("connect SUB");
    let delivered = eventually(Duration::from_secs(30), || {
        publisher.send("hello", 0).expect("send");
        subscriber.recv_bytes(0).is_ok()
    });
    assert!(delivered, "a message went through the proxy");
    let signalled = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let deadline = signalled + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = proxy.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = proxy.kill();
            panic!("the proxy did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = signalled.elapsed();
    eprintln!("termwatch proxy exited {took:?} after SIGTERM");
    assert_eq!(status.code(), Some(0));
    let counts = lines.next().expect("the counts").expect("readable");
    assert!(
        counts.contains("forwarded") && !counts.contains("forwarded 0 messages"),
        "{counts}"
    );
    drop((publisher, subscriber));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(leftovers.is_empty(), "ipc files left: {leftovers:?}");
}

/// The Python of the project's virtual environment when it has pyzmq (`.ci/run` installs it).
fn python_with_pyzmq() -> Option<PathBuf> {
    let python = workspace_path("target/venv/bin/python");
    let has_pyzmq = std::process::Command::new(&python)
        .args(["-c", "import zmq"])
        .output()
        .is_ok_and(|output| output.status.success());
    has_pyzmq.then_some(python)
}

#[test]
fn the_pyzmq_example_proxy_is_measured_against_zmq_proxy() {
    let Some(python) = python_with_pyzmq() else {
        eprintln!(
            "note: pyzmq is not installed in target/venv (python3 -m venv target/venv && \
             target/venv/bin/pip install pyzmq): the pyzmq example proxy was not measured"
        );
        return;
    };
    let example = workspace_path("examples/pyzmq_bus_proxy.py");
    let proxy = format!(
        "pyzmq={} {} {{frontend}} {{backend}}",
        python.display(),
        example.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, code) = bench(
        dir.path(),
        "pyzmq",
        &[
            "--transport",
            "tcp,ipc",
            "--size",
            "64",
            "--messages",
            "3000",
            "--repeat",
            "1",
            "--engine",
            "zmq_proxy,pyzmq",
            "--proxy",
            &proxy,
        ],
    );
    assert_eq!(code, 0);
    let result = read_json(&path);
    let ratios = result["ratios"].as_array().expect("ratios");
    assert!(
        ratios
            .iter()
            .any(|r| r["id"] == "ipc/64B/1x1/pyzmq" && r["median"].is_number()),
        "{ratios:?}"
    );
}
