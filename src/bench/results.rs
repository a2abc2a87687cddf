//! Result files: what `termwatch bench --output` writes and `termwatch compare` reads, plus the
//! reader for criterion baselines (`target/criterion/**/<baseline>/sample.json`), both turned into
//! the same shape: named workloads, each with its samples as rates (higher is better).

use super::measure::Sample;
use super::workload::{Engine, Workload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Format tag written into every result file.
pub const FORMAT: &str = "termwatch-bench/1";

/// The machine a result file was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo, when readable.
    pub cpu_model: Option<String>,
}

impl Machine {
    /// Describes the machine this process runs on.
    pub fn current() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            });
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
        }
    }
}

/// The machine's 1-minute load average (/proc/loadavg) when a run started and ended: a run
/// measured under other load is not comparable with one measured on a quiet machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    /// At the start of the run.
    pub start: Option<f64>,
    /// At the end of the run.
    pub end: Option<f64>,
}

/// The current 1-minute load average, when /proc/loadavg is readable.
pub fn load_average_now() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The benchmark's fixed socket settings, recorded so a reader knows what was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// SNDHWM and RCVHWM on every socket.
    pub hwm: i32,
    /// Whether PUB and XPUB had ZMQ_XPUB_NODROP.
    pub nodrop: bool,
    /// Repeats of every workload, interleaved.
    pub repeat: usize,
    /// Test-only throttle in percent (0 in any real measurement).
    pub throttle_percent: u8,
    /// The only engine the throttle applied to; every engine when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_engine: Option<Engine>,
    /// The external proxy programs measured (`--proxy NAME=COMMAND`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_proxies: Vec<ExternalProxyRecord>,
}

/// An external proxy engine as the result file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalProxyRecord {
    /// Its engine name.
    pub name: String,
    /// Its command, placeholders unreplaced.
    pub command: String,
    /// The stdout text it was ready at, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_line: Option<String>,
}

/// One workload's samples in a result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// The workload's id ([`Workload::id`]).
    pub id: String,
    /// The workload itself.
    pub workload: Workload,
    /// Messages sent by each publisher per sample.
    pub messages: u64,
    /// Every sample, in the order measured.
    pub samples: Vec<Sample>,
    /// Median rate of the samples that lost nothing, messages per second.
    pub median_msgs_per_s: Option<f64>,
    /// Median payload throughput of those samples, MB/s (10^6 bytes).
    pub median_mb_per_s: Option<f64>,
}

/// A proxy engine's rate over the direct baseline of the same transport, size and fan, from
/// samples measured one after the other in the same repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioResult {
    /// The proxy workload's id.
    pub id: String,
    /// The direct workload's id.
    pub baseline_id: String,
    /// Proxy rate / direct rate, one per repeat where both lost nothing.
    pub per_repeat: Vec<f64>,
    /// Median of `per_repeat`.
    pub median: Option<f64>,
}

/// Everything `termwatch bench --output` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Where it was measured.
    pub machine: Machine,
    /// `zmq::version()` as `major.minor.patch`.
    pub libzmq: String,
    /// `git rev-parse HEAD` of the working directory, when it is a git checkout.
    pub git_revision: Option<String>,
    /// When the run ended, seconds since the Unix epoch.
    pub finished_unix_s: u64,
    /// Socket settings and repeats.
    pub settings: Settings,
    /// Load on the machine around the run.
    pub load_average: LoadAverage,
    /// Every workload with its samples.
    pub workloads: Vec<WorkloadResult>,
    /// Proxy/direct ratios.
    pub ratios: Vec<RatioResult>,
}

/// The libzmq version the binary is linked with.
pub fn libzmq_version() -> String {
    let (major, minor, patch) = zmq::version();
    format!("{major}.{minor}.{patch}")
}

/// `git rev-parse HEAD` in the current directory, if git is there and it is a checkout.
pub fn git_revision() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}

/// Why a result file or baseline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not what it should be.
    #[error("{path} is not a {what}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A criterion directory holds no benchmark with that baseline.
    #[error("no criterion benchmark under {dir} has a baseline named `{baseline}`")]
    NoBaseline {
        /// The criterion directory searched.
        dir: PathBuf,
        /// The baseline name.
        baseline: String,
    },
}

/// Samples of one side of a comparison: workload id → rates (higher is better) and how many
/// samples lost messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleSet {
    /// Rate samples per workload id, in a stable order.
    pub rates: BTreeMap<String, Vec<f64>>,
    /// Samples that lost messages, per workload id (absent when none did).
    pub lossy: BTreeMap<String, usize>,
    /// What the rates measure, for the tables (e.g. "msg/s").
    pub unit: String,
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a `termwatch bench --output` file.
pub fn load_result_file(path: &Path) -> Result<ResultFile, LoadError> {
    let format_error = |problem: String| LoadError::Format {
        path: path.to_path_buf(),
        what: "termwatch bench result file",
        problem,
    };
    let file: ResultFile =
        serde_json::from_str(&read(path)?).map_err(|e| format_error(e.to_string()))?;
    if file.format != FORMAT {
        return Err(format_error(format!(
            "format is `{}`, expected `{FORMAT}`",
            file.format
        )));
    }
    Ok(file)
}

impl ResultFile {
    /// The samples of every workload as rates in messages per second.
    pub fn sample_set(&self) -> SampleSet {
        let mut set = SampleSet {
            unit: "msg/s".to_string(),
            ..SampleSet::default()
        };
        for workload in &self.workloads {
            let rates = workload
                .samples
                .iter()
                .filter_map(|s| s.msgs_per_s)
                .collect();
            let lossy = workload.samples.iter().filter(|s| s.lost() > 0).count();
            set.rates.insert(workload.id.clone(), rates);
            if lossy > 0 {
                set.lossy.insert(workload.id.clone(), lossy);
            }
        }
        set
    }
}

#[derive(Deserialize)]
struct CriterionSamples {
    iters: Vec<f64>,
    times: Vec<f64>,
}

#[derive(Deserialize)]
struct CriterionBenchmark {
    full_id: String,
    throughput: Option<CriterionThroughput>,
}

#[derive(Deserialize)]
enum CriterionThroughput {
    Bits(u64),
    Bytes(u64),
    BytesDecimal(u64),
    Elements(u64),
    /// Criterion also records `bytes`; the rate is taken in elements.
    ElementsAndBytes {
        elements: u64,
    },
}

impl CriterionThroughput {
    /// What one iteration processed and the unit of the resulting rate; elements win over bytes.
    fn per_iteration(&self) -> (u64, &'static str) {
        match self {
            CriterionThroughput::Elements(elements)
            | CriterionThroughput::ElementsAndBytes { elements, .. } => (*elements, "elem/s"),
            CriterionThroughput::Bytes(bytes) | CriterionThroughput::BytesDecimal(bytes) => {
                (*bytes, "B/s")
            }
            CriterionThroughput::Bits(bits) => (*bits, "bit/s"),
        }
    }
}

/// Reads every benchmark under `criterion_dir` (e.g. `target/criterion`) that has a baseline
/// named `baseline` (saved with `cargo bench -- --save-baseline NAME`). Each sample becomes a rate:
/// elements per second when the benchmark declared element throughput, else bytes per second,
/// else iterations per second.
pub fn load_criterion_baseline(
    criterion_dir: &Path,
    baseline: &str,
) -> Result<SampleSet, LoadError> {
    let mut sample_files = Vec::new();
    collect_baseline_files(criterion_dir, baseline, &mut sample_files)?;
    if sample_files.is_empty() {
        return Err(LoadError::NoBaseline {
            dir: criterion_dir.to_path_buf(),
            baseline: baseline.to_string(),
        });
    }
    let mut units = Vec::new();
    let mut set = SampleSet::default();
    for dir in sample_files {
        let benchmark_path = dir.join("benchmark.json");
        let sample_path = dir.join("sample.json");
        let benchmark: CriterionBenchmark =
            serde_json::from_str(&read(&benchmark_path)?).map_err(|e| LoadError::Format {
                path: benchmark_path.clone(),
                what: "criterion benchmark.json",
                problem: e.to_string(),
            })?;
        let samples: CriterionSamples =
            serde_json::from_str(&read(&sample_path)?).map_err(|e| LoadError::Format {
                path: sample_path.clone(),
                what: "criterion sample.json",
                problem: e.to_string(),
            })?;
        if samples.iters.len() != samples.times.len() {
            return Err(LoadError::Format {
                path: sample_path,
                what: "criterion sample.json",
                problem: "`iters` and `times` differ in length".to_string(),
            });
        }
        let (per_iteration, unit) = benchmark
            .throughput
            .as_ref()
            .map_or((1, "iter/s"), CriterionThroughput::per_iteration);
        units.push(unit);
        let rates = samples
            .iters
            .iter()
            .zip(&samples.times)
            .filter(|(iters, nanos)| **iters > 0.0 && **nanos > 0.0)
            .map(|(iters, nanos)| per_iteration as f64 * iters / (nanos * 1e-9))
            .collect();
        set.rates.insert(benchmark.full_id, rates);
    }
    units.dedup();
    set.unit = if units.len() == 1 {
        units[0].to_string()
    } else {
        "per s".to_string()
    };
    Ok(set)
}

/// Finds every `<dir>/**/<baseline>/` holding a `sample.json`.
fn collect_baseline_files(
    dir: &Path,
    baseline: &str,
    found: &mut Vec<PathBuf>,
) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    subdirs.sort();
    for subdir in subdirs {
        if subdir.file_name().is_some_and(|name| name == baseline)
            && subdir.join("sample.json").is_file()
        {
            found.push(subdir);
        } else {
            collect_baseline_files(&subdir, baseline, found)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_baselines_become_rates_per_benchmark() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bench = dir.path().join("proxy").join("tcp_16B").join("main");
        std::fs::create_dir_all(&bench).expect("dirs");
        std::fs::write(
            bench.join("benchmark.json"),
            r#"{"group_id":"proxy","function_id":"tcp_16B","value_str":null,
                "throughput":{"Elements":1000},"full_id":"proxy/tcp_16B",
                "directory_name":"proxy/tcp_16B","title":"proxy/tcp_16B"}"#,
        )
        .expect("benchmark.json");
        std::fs::write(
            bench.join("sample.json"),
            r#"{"sampling_mode":"Flat","iters":[1.0,2.0],"times":[1000000.0,4000000.0]}"#,
        )
        .expect("sample.json");
        let set = load_criterion_baseline(dir.path(), "main").expect("baseline");
        assert_eq!(set.unit, "elem/s");
        assert_eq!(set.rates["proxy/tcp_16B"], vec![1_000_000.0, 500_000.0]);
        assert!(matches!(
            load_criterion_baseline(dir.path(), "other"),
            Err(LoadError::NoBaseline { .. })
        ));
    }

    #[test]
    fn machine_description_has_at_least_one_core() {
        assert!(Machine::current().cores >= 1);
    }
}
