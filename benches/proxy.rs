//! Criterion benchmarks of the proxy engines (zmq_proxy, steerable, the project's forwarder)
//! against direct PUB→SUB, over inproc, ipc and tcp, with throughput in messages and bytes.
//!
//! Every iteration is one sample of `termwatch::bench`: each end in its own process (ipc, tcp; the
//! `termwatch` binary re-executed as `__bench-role`) or thread (inproc), probes before the clock,
//! the receiver's clock from the first data message to the last, every message counted. A sample
//! that lost messages stops the benchmark with that message instead of being timed.
//!
//! Profiles: the full matrix by default; `TERMWATCH_BENCH_PROFILE=quick` measures a
//! reduced one (16 B and 1 KiB, 1x1) in under two minutes; criterion's test mode
//! (`cargo test --benches`, `cargo bench -- --test`) runs the reduced matrix once with few
//! messages. Compare saved baselines with `termwatch compare --criterion-dir target/criterion`.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use std::path::Path;
use std::time::Duration;
use termwatch::bench::measure::{Runner, Throttle};
use termwatch::bench::suite::Matrix;
use termwatch::bench::workload::{Workload, default_messages, format_size};

/// The profile the environment asks for.
#[derive(Clone, Copy, PartialEq)]
enum Profile {
    Full,
    Quick,
    /// Criterion's test mode: every benchmark runs once, to check it works.
    Test,
}

impl Profile {
    fn from_environment() -> Profile {
        // Criterion runs in test mode unless it got `--bench` without `--test`.
        let args: Vec<String> = std::env::args().collect();
        let has = |flag: &str| args.iter().any(|arg| arg == flag);
        if has("--test") || !has("--bench") {
            Profile::Test
        } else if std::env::var("TERMWATCH_BENCH_PROFILE").is_ok_and(|p| p == "quick") {
            Profile::Quick
        } else {
            Profile::Full
        }
    }

    fn matrix(self) -> Matrix {
        match self {
            Profile::Full => Matrix::full(),
            Profile::Quick | Profile::Test => Matrix::quick(),
        }
    }

    /// Criterion's measurement time: a tiny one makes every sample a single run.
    fn measurement_time(self) -> Duration {
        match self {
            Profile::Full => Duration::from_secs(1),
            Profile::Quick | Profile::Test => Duration::from_millis(1),
        }
    }

    fn messages(self, size: usize) -> u64 {
        match self {
            Profile::Full => default_messages(size),
            Profile::Quick => default_messages(size) / 10,
            Profile::Test => 2_000,
        }
    }
}

fn same_group(a: &Workload, b: &Workload) -> bool {
    (a.transport, a.size, a.fan) == (b.transport, b.size, b.fan)
}

fn proxy(c: &mut Criterion) {
    let profile = Profile::from_environment();
    let mut runner = match Runner::new(
        Path::new(env!("CARGO_BIN_EXE_termwatch")),
        Throttle::default(),
        Vec::new(),
    ) {
        Ok(runner) => runner,
        Err(error) => panic!("cannot create the scratch directory for ipc endpoints: {error}"),
    };
    let workloads = profile.matrix().workloads();
    for group_workloads in workloads.chunk_by(same_group) {
        let first = &group_workloads[0];
        let messages = profile.messages(first.size);
        let published = messages * u64::from(first.fan.publishers);
        let mut group = c.benchmark_group(format!(
            "proxy/{}/{}/{}",
            first.transport,
            format_size(first.size),
            first.fan
        ));
        // One iteration is a whole run of several processes: few, flat samples.
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(profile.measurement_time());
        // The receiver's clock starts at the first message, so it times the other `published - 1`.
        group.throughput(Throughput::ElementsAndBytes {
            elements: published - 1,
            bytes: (published - 1) * first.size as u64,
        });
        for workload in group_workloads {
            group.bench_function(workload.engine.name(), |bencher| {
                bencher.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| timed_sample(&mut runner, workload, messages))
                        .sum()
                })
            });
        }
        group.finish();
    }
}

/// One sample's receiver time; a failed or lossy sample ends the benchmark with the reason.
fn timed_sample(runner: &mut Runner, workload: &Workload, messages: u64) -> Duration {
    match runner.run(workload, messages) {
        Ok(sample) if sample.lost() == 0 => Duration::from_secs_f64(sample.elapsed_s),
        Ok(sample) => panic!(
            "{}: lost {} of {} messages; a lossy run is not a throughput",
            workload.id(),
            sample.lost(),
            sample.expected
        ),
        Err(error) => panic!("{}: {error}", workload.id()),
    }
}

criterion_group!(benches, proxy);
criterion_main!(benches);
