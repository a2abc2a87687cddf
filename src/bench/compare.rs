//! Compares workload by workload, with the verdict against the threshold: two sample sets
//! (two runs: the Mann–Whitney interval of the change, [`compare`]), or two engines of one result
//! file (their per-repeat ratios: the Wilcoxon signed-rank interval, [`compare_paired`]).

use super::results::{ResultFile, SampleSet};
use super::stats::{
    RatioEstimate, RepeatsHint, Verdict, change_estimate, median, paired_change_estimate,
    repeats_hint,
};
use super::workload::Engine;
use serde::Serialize;

/// One workload present on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// Workload id (or criterion benchmark id); paired: the workload without its engine.
    pub id: String,
    /// Median rate of OLD (paired: of engine A).
    pub old_median: Option<f64>,
    /// Median rate of NEW (paired: of engine B).
    pub new_median: Option<f64>,
    /// Rate samples of OLD (paired: the pairs where both engines lost nothing).
    pub old_samples: usize,
    /// Rate samples of NEW (paired: as `old_samples`).
    pub new_samples: usize,
    /// NEW's samples that lost messages.
    pub new_lossy_samples: usize,
    /// NEW/OLD with its interval, when both sides have enough samples.
    pub estimate: Option<RatioEstimate>,
    /// The conclusion.
    pub verdict: Verdict,
    /// Paired and inconclusive: how many repeats would likely settle it.
    pub repeats_hint: Option<RepeatsHint>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// What the two sides are called in the output: `old` and `new`, or the two engines.
    pub sides: [String; 2],
    /// Unit of the rates.
    pub unit: String,
    /// Relative threshold, e.g. 0.05.
    pub threshold: f64,
    /// Workloads on both sides, in id order.
    pub rows: Vec<ComparisonRow>,
    /// Workloads only OLD has.
    pub only_old: Vec<String>,
    /// Workloads only NEW has.
    pub only_new: Vec<String>,
    /// Median of the workloads' changes (NEW/OLD), when at least [`COMMON_SHIFT_MIN_ROWS`]
    /// workloads have one: when every workload moved together, the machine's load probably
    /// changed between the runs rather than the code.
    pub common_shift: Option<f64>,
}

/// Fewest workloads for a meaningful common shift.
pub const COMMON_SHIFT_MIN_ROWS: usize = 3;

impl Comparison {
    /// Whether any workload is `slower` or `lost`.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|row| row.verdict.fails())
    }
}

/// Compares NEW against OLD with a relative `threshold` (0.05 for 5%).
pub fn compare(old: &SampleSet, new: &SampleSet, threshold: f64) -> Comparison {
    let mut rows = Vec::new();
    let mut only_old = Vec::new();
    for (id, old_rates) in &old.rates {
        let Some(new_rates) = new.rates.get(id) else {
            only_old.push(id.clone());
            continue;
        };
        let estimate = change_estimate(old_rates, new_rates);
        let new_lossy_samples = new.lossy.get(id).copied().unwrap_or(0);
        let verdict = if new_lossy_samples > 0 {
            Verdict::Lost
        } else {
            Verdict::of(estimate.as_ref(), threshold)
        };
        rows.push(ComparisonRow {
            id: id.clone(),
            old_median: median(old_rates),
            new_median: median(new_rates),
            old_samples: old_rates.len(),
            new_samples: new_rates.len(),
            new_lossy_samples,
            estimate,
            verdict,
            repeats_hint: None,
        });
    }
    let only_new = new
        .rates
        .keys()
        .filter(|id| !old.rates.contains_key(*id))
        .cloned()
        .collect();
    let changes: Vec<f64> = rows
        .iter()
        .filter_map(|row| row.estimate.map(|e| e.ratio))
        .collect();
    let common_shift = (changes.len() >= COMMON_SHIFT_MIN_ROWS)
        .then(|| median(&changes))
        .flatten();
    Comparison {
        sides: ["old".to_string(), "new".to_string()],
        unit: new.unit.clone(),
        threshold,
        rows,
        only_old,
        only_new,
        common_shift,
    }
}

/// Why two engines of a result file cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// A and B are the same engine.
    #[error("--engines names `{0}` twice: give two different engines")]
    SameEngine(String),
    /// No workload of the file has the engine.
    #[error("no workload was measured with the engine `{engine}` (engines in the file: {present})")]
    Missing {
        /// The engine asked for.
        engine: String,
        /// The engines the file has.
        present: String,
    },
    /// The engines were never measured in the same transport, size and fan.
    #[error("`{0}` and `{1}` were never measured side by side (same transport, size and fan)")]
    NoCommonWorkload(String, String),
}

/// Judges engine `b` against engine `a` in one result file: for every transport, size and fan
/// measured with both, the per-repeat ratios b/a (samples of the same repeat, measured one after
/// the other) give the change and its signed-rank interval.
pub fn compare_paired(
    file: &ResultFile,
    a: &Engine,
    b: &Engine,
    threshold: f64,
) -> Result<Comparison, PairError> {
    if a == b {
        return Err(PairError::SameEngine(a.to_string()));
    }
    let mut present: Vec<String> = Vec::new();
    for workload in &file.workloads {
        let name = workload.workload.engine.to_string();
        if !present.contains(&name) {
            present.push(name);
        }
    }
    for engine in [a, b] {
        if !present.contains(&engine.to_string()) {
            return Err(PairError::Missing {
                engine: engine.to_string(),
                present: present.join(", "),
            });
        }
    }
    let group_id = |id: &str| {
        id.rsplit_once('/')
            .map_or(id, |(group, _)| group)
            .to_string()
    };
    let mut rows = Vec::new();
    let mut only_old = Vec::new();
    let mut only_new = Vec::new();
    for side_a in file.workloads.iter().filter(|w| &w.workload.engine == a) {
        let Some(side_b) = file
            .workloads
            .iter()
            .find(|w| w.workload == side_a.workload.with_engine(b.clone()))
        else {
            only_old.push(side_a.id.clone());
            continue;
        };
        let pairs: Vec<(f64, f64)> = side_a
            .samples
            .iter()
            .zip(&side_b.samples)
            .filter_map(|(x, y)| Some((x.msgs_per_s?, y.msgs_per_s?)))
            .collect();
        let estimate = paired_change_estimate(&pairs);
        let new_lossy_samples = side_b.samples.iter().filter(|s| s.lost() > 0).count();
        let verdict = if new_lossy_samples > 0 {
            Verdict::Lost
        } else {
            Verdict::of(estimate.as_ref(), threshold)
        };
        let rates = |pick: fn(&(f64, f64)) -> f64| pairs.iter().map(pick).collect::<Vec<_>>();
        rows.push(ComparisonRow {
            id: group_id(&side_a.id),
            old_median: median(&rates(|p| p.0)),
            new_median: median(&rates(|p| p.1)),
            old_samples: pairs.len(),
            new_samples: pairs.len(),
            new_lossy_samples,
            estimate,
            verdict,
            repeats_hint: (verdict == Verdict::Inconclusive)
                .then(|| repeats_hint(&pairs, threshold))
                .flatten(),
        });
    }
    for side_b in file.workloads.iter().filter(|w| &w.workload.engine == b) {
        if !file
            .workloads
            .iter()
            .any(|w| w.workload == side_b.workload.with_engine(a.clone()))
        {
            only_new.push(side_b.id.clone());
        }
    }
    if rows.is_empty() {
        return Err(PairError::NoCommonWorkload(a.to_string(), b.to_string()));
    }
    Ok(Comparison {
        sides: [a.to_string(), b.to_string()],
        unit: "msg/s".to_string(),
        threshold,
        rows,
        only_old,
        only_new,
        // Both engines ran under the same load in every repeat: a change common to every
        // workload is the engines' difference, not the machine's.
        common_shift: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[(&str, &[f64])]) -> SampleSet {
        SampleSet {
            rates: entries
                .iter()
                .map(|(id, rates)| (id.to_string(), rates.to_vec()))
                .collect(),
            unit: "msg/s".to_string(),
            ..SampleSet::default()
        }
    }

    #[test]
    fn rows_pair_workloads_by_id_and_list_the_unpaired() {
        let old = set(&[("a", &[10.0, 11.0, 9.0, 10.5, 9.5]), ("gone", &[1.0, 1.0])]);
        let new = set(&[("a", &[7.0, 8.0, 7.5, 7.2, 7.7]), ("added", &[1.0, 1.0])]);
        let comparison = compare(&old, &new, 0.05);
        assert_eq!(comparison.rows.len(), 1);
        assert_eq!(comparison.rows[0].verdict, Verdict::Slower);
        assert!(comparison.regressed());
        assert_eq!(comparison.only_old, vec!["gone".to_string()]);
        assert_eq!(comparison.only_new, vec!["added".to_string()]);
    }

    #[test]
    fn lossy_samples_in_new_are_a_failure_whatever_the_rates() {
        let old = set(&[("a", &[10.0, 11.0, 9.0])]);
        let mut new = set(&[("a", &[20.0, 21.0, 19.0])]);
        new.lossy.insert("a".to_string(), 1);
        let comparison = compare(&old, &new, 0.05);
        assert_eq!(comparison.rows[0].verdict, Verdict::Lost);
        assert!(comparison.regressed());
    }
}

#[cfg(test)]
mod paired_tests {
    use super::*;
    use crate::bench::measure::Sample;
    use crate::bench::results::{LoadAverage, Machine, Settings, WorkloadResult};
    use crate::bench::stats::RepeatsNeeded;
    use crate::bench::workload::{Fan, ProxyEngine, Transport, Workload};

    fn sample(rate: Option<f64>) -> Sample {
        Sample {
            received: if rate.is_some() { 100 } else { 90 },
            expected: 100,
            elapsed_s: 1.0,
            msgs_per_s: rate,
        }
    }

    fn workload(transport: Transport, engine: Engine, rates: &[Option<f64>]) -> WorkloadResult {
        let workload = Workload {
            transport,
            size: 16,
            fan: Fan::ONE_TO_ONE,
            engine,
        };
        WorkloadResult {
            id: workload.id(),
            workload,
            messages: 100,
            samples: rates.iter().map(|r| sample(*r)).collect(),
            median_msgs_per_s: None,
            median_mb_per_s: None,
        }
    }

    fn file(workloads: Vec<WorkloadResult>) -> ResultFile {
        ResultFile {
            format: crate::bench::results::FORMAT.to_string(),
            machine: Machine {
                cores: 2,
                cpu_model: None,
            },
            libzmq: "4.3.4".to_string(),
            git_revision: None,
            finished_unix_s: 0,
            settings: Settings {
                hwm: 1000,
                nodrop: true,
                repeat: 6,
                throttle_percent: 0,
                throttled_engine: None,
                external_proxies: Vec::new(),
            },
            load_average: LoadAverage {
                start: None,
                end: None,
            },
            workloads,
            ratios: Vec::new(),
        }
    }

    const A: Engine = Engine::Proxy(ProxyEngine::ZmqProxy);

    /// `b_engine` against [`A`] on one transport, from their rates repeat by repeat.
    fn compare_two(
        transport: Transport,
        a: &[Option<f64>],
        b_engine: &Engine,
        b: &[Option<f64>],
    ) -> Comparison {
        compare_paired(
            &file(vec![
                workload(transport, A, a),
                workload(transport, b_engine.clone(), b),
            ]),
            &A,
            b_engine,
            0.05,
        )
        .expect("comparable")
    }

    #[test]
    fn paired_samples_of_the_same_repeat_judge_b_against_a() {
        // Repeats drift by 3x together; B is always 0.8 x A.
        let a = [1.0e6, 3.0e6, 2.0e6, 1.5e6, 2.5e6, 1.2e6].map(Some);
        let b = a.map(|rate| rate.map(|r| r * 0.8));
        let b_engine = Engine::External("mine".to_string());
        let comparison = compare_paired(
            &file(vec![
                workload(Transport::Tcp, A, &a),
                workload(Transport::Tcp, b_engine.clone(), &b),
                workload(Transport::Inproc, A, &a),
            ]),
            &A,
            &b_engine,
            0.05,
        )
        .expect("comparable");
        assert_eq!(
            comparison.sides,
            ["zmq_proxy".to_string(), "mine".to_string()]
        );
        assert_eq!(comparison.rows.len(), 1);
        let row = &comparison.rows[0];
        assert_eq!(row.id, "tcp/16B/1x1");
        assert_eq!(row.verdict, Verdict::Slower);
        assert_eq!(
            row.repeats_hint, None,
            "only an inconclusive row gets a hint"
        );
        let estimate = row.estimate.expect("six pairs");
        assert!((estimate.ratio - 0.8).abs() < 1e-9, "{estimate:?}");
        assert_eq!(
            comparison.only_old,
            vec!["inproc/16B/1x1/zmq_proxy".to_string()]
        );
        assert!(comparison.regressed());
    }

    #[test]
    fn an_inconclusive_pairing_says_how_many_repeats_would_settle_it() {
        let a = [1.0e6; 5].map(Some);
        let b = [1.1e6, 0.9e6, 1.05e6, 0.95e6, 1.0e6].map(Some);
        let b_engine = Engine::Proxy(ProxyEngine::Forwarder);
        let comparison = compare_two(Transport::Tcp, &a, &b_engine, &b);
        let row = &comparison.rows[0];
        assert_eq!(row.verdict, Verdict::Inconclusive);
        let hint = row.repeats_hint.expect("a hint");
        assert_eq!(hint.pairs, 5);
        assert!(
            matches!(hint.needed, RepeatsNeeded::About(n) if n > 5),
            "{hint:?}"
        );
        let table = crate::bench::render::comparison_table(&comparison);
        assert!(
            table.contains("tcp/16B/1x1: inconclusive with 5 repeats"),
            "{table}"
        );
        assert!(
            table.contains("repeats narrow the interval to ±2.5%"),
            "{table}"
        );
    }

    #[test]
    fn a_lossy_b_sample_is_lost_and_a_lossy_a_sample_drops_its_pair() {
        let b_engine = Engine::Proxy(ProxyEngine::Forwarder);
        let rates = [Some(1.0e6); 6];
        let mut lossy_a = rates;
        lossy_a[2] = None;
        let comparison = compare_two(Transport::Ipc, &lossy_a, &b_engine, &rates);
        assert_eq!(comparison.rows[0].old_samples, 5);
        assert_eq!(comparison.rows[0].verdict, Verdict::NoChange);
        let mut lossy_b = rates;
        lossy_b[0] = None;
        let comparison = compare_two(Transport::Ipc, &rates, &b_engine, &lossy_b);
        assert_eq!(comparison.rows[0].verdict, Verdict::Lost);
    }

    #[test]
    fn engines_that_are_missing_or_the_same_are_errors() {
        let results = file(vec![workload(Transport::Tcp, A, &[Some(1.0)])]);
        assert_eq!(
            compare_paired(&results, &A, &A, 0.05),
            Err(PairError::SameEngine("zmq_proxy".to_string()))
        );
        assert!(matches!(
            compare_paired(&results, &A, &Engine::Direct, 0.05),
            Err(PairError::Missing { .. })
        ));
    }
}
