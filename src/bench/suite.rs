//! Runs a matrix of workloads repeat by repeat, interleaved (every engine of a transport, size and
//! fan runs once per repeat, in an order rotated from repeat to repeat), and builds the result
//! file: samples, medians and the ratios measured within each repeat.

use super::context::HWM;
use super::measure::{MeasureError, Runner, Sample};
use super::results::{
    ExternalProxyRecord, FORMAT, LoadAverage, Machine, RatioResult, ResultFile, Settings,
    WorkloadResult, git_revision, libzmq_version, load_average_now,
};
use super::stats::median;
use super::workload::{Engine, Fan, ProxyEngine, STANDARD_SIZES, Transport, Workload};
use std::collections::BTreeMap;

/// The matrix to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Transports.
    pub transports: Vec<Transport>,
    /// Message sizes in bytes.
    pub sizes: Vec<usize>,
    /// Publisher/subscriber counts.
    pub fans: Vec<Fan>,
    /// Engines (include [`Engine::Direct`] for proxy/direct ratios).
    pub engines: Vec<Engine>,
}

impl Matrix {
    /// The full matrix: every transport, size and engine, fan-in 4 and fan-out 4 beside 1x1.
    pub fn full() -> Matrix {
        let fan = |publishers, subscribers| Fan {
            publishers,
            subscribers,
        };
        Matrix {
            transports: Transport::ALL.to_vec(),
            sizes: STANDARD_SIZES.to_vec(),
            fans: vec![fan(1, 1), fan(4, 1), fan(1, 4)],
            engines: Engine::BUILT_IN.to_vec(),
        }
    }

    /// A reduced matrix for CI: every transport and engine at 16 B and 1 KiB, 1x1.
    pub fn quick() -> Matrix {
        Matrix {
            sizes: vec![16, 1024],
            fans: vec![Fan::ONE_TO_ONE],
            ..Matrix::full()
        }
    }

    /// Every workload, grouped so the engines of one transport, size and fan are adjacent.
    pub fn workloads(&self) -> Vec<Workload> {
        self.groups().into_iter().flatten().collect()
    }

    /// Groups of workloads that differ only by engine, in a stable order. External proxy
    /// programs cannot share an inproc context: they have no inproc workloads.
    fn groups(&self) -> Vec<Vec<Workload>> {
        let mut groups = Vec::new();
        for &transport in &self.transports {
            for &size in &self.sizes {
                for &fan in &self.fans {
                    let group: Vec<Workload> = self
                        .engines
                        .iter()
                        .filter(|engine| {
                            transport != Transport::Inproc || !matches!(engine, Engine::External(_))
                        })
                        .map(|engine| Workload {
                            transport,
                            size,
                            fan,
                            engine: engine.clone(),
                        })
                        .collect();
                    if !group.is_empty() {
                        groups.push(group);
                    }
                }
            }
        }
        groups
    }

    /// Number of workloads.
    pub fn len(&self) -> usize {
        self.groups().iter().map(Vec::len).sum()
    }

    /// Whether the matrix has no workload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A sample that could not be measured, and which one it was.
#[derive(Debug, thiserror::Error)]
#[error("{workload}, repeat {repeat}: {error}")]
pub struct SuiteError {
    /// The workload's id.
    pub workload: String,
    /// 1-based repeat.
    pub repeat: usize,
    /// What went wrong.
    pub error: MeasureError,
}

/// Measures every workload `repeat` times, interleaved; `messages_for(size)` is what each
/// publisher sends; `after_sample` sees every sample as it is measured (for progress).
pub fn run_suite(
    runner: &mut Runner,
    matrix: &Matrix,
    repeat: usize,
    messages_for: impl Fn(usize) -> u64,
    mut after_sample: impl FnMut(&Workload, &Sample),
) -> Result<ResultFile, SuiteError> {
    let load_at_start = load_average_now();
    let groups = matrix.groups();
    let mut samples: BTreeMap<Workload, Vec<Sample>> = BTreeMap::new();
    for round in 0..repeat {
        for group in &groups {
            let mut order = group.clone();
            order.rotate_left(round % group.len().max(1));
            for workload in order {
                let sample =
                    runner
                        .run(&workload, messages_for(workload.size))
                        .map_err(|error| SuiteError {
                            workload: workload.id(),
                            repeat: round + 1,
                            error,
                        })?;
                after_sample(&workload, &sample);
                samples.entry(workload).or_default().push(sample);
            }
        }
    }
    let ratios = groups
        .iter()
        .flat_map(|group| group_ratios(group, &samples))
        .collect();
    let workloads = groups
        .iter()
        .flatten()
        .map(|workload| workload_result(workload, &samples[workload], messages_for(workload.size)))
        .collect();
    Ok(ResultFile {
        format: FORMAT.to_string(),
        machine: Machine::current(),
        libzmq: libzmq_version(),
        git_revision: git_revision(),
        finished_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        settings: Settings {
            hwm: HWM,
            nodrop: true,
            repeat,
            throttle_percent: runner.throttle().percent,
            throttled_engine: runner.throttle().engine.clone(),
            external_proxies: runner
                .externals()
                .iter()
                .map(|external| ExternalProxyRecord {
                    name: external.name.clone(),
                    command: external.command.clone(),
                    ready_line: external.ready_line.clone(),
                })
                .collect(),
        },
        load_average: LoadAverage {
            start: load_at_start,
            end: load_average_now(),
        },
        workloads,
        ratios,
    })
}

fn workload_result(workload: &Workload, samples: &[Sample], messages: u64) -> WorkloadResult {
    let rates: Vec<f64> = samples.iter().filter_map(|s| s.msgs_per_s).collect();
    let median_msgs_per_s = median(&rates);
    WorkloadResult {
        id: workload.id(),
        workload: workload.clone(),
        messages,
        samples: samples.to_vec(),
        median_msgs_per_s,
        median_mb_per_s: median_msgs_per_s.map(|rate| rate * workload.size as f64 / 1e6),
    }
}

/// Each proxy engine over direct, and the forwarder and every external proxy over zmq_proxy,
/// repeat by repeat.
fn group_ratios(group: &[Workload], samples: &BTreeMap<Workload, Vec<Sample>>) -> Vec<RatioResult> {
    let find = |engine: Engine| group.iter().find(|w| w.engine == engine);
    let mut pairs = Vec::new();
    if let Some(direct) = find(Engine::Direct) {
        pairs.extend(
            group
                .iter()
                .filter(|w| w.engine.is_proxy())
                .map(|w| (w, direct)),
        );
    }
    if let Some(proxy) = find(Engine::Proxy(ProxyEngine::ZmqProxy)) {
        pairs.extend(
            group
                .iter()
                .filter(|w| {
                    matches!(
                        w.engine,
                        Engine::Proxy(ProxyEngine::Forwarder) | Engine::External(_)
                    )
                })
                .map(|w| (w, proxy)),
        );
    }
    pairs
        .into_iter()
        .map(|(workload, baseline)| {
            let per_repeat: Vec<f64> = samples[workload]
                .iter()
                .zip(&samples[baseline])
                .filter_map(|(sample, base)| Some(sample.msgs_per_s? / base.msgs_per_s?))
                .collect();
            RatioResult {
                id: workload.id(),
                baseline_id: baseline.id(),
                median: median(&per_repeat),
                per_repeat,
            }
        })
        .collect()
}
