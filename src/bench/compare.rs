//! Compares two sample sets workload by workload: the change in rate, its Mann–Whitney
//! (Hodges–Lehmann) interval and the verdict against the threshold.

use super::results::SampleSet;
use super::stats::{RatioEstimate, Verdict, change_estimate, median};
use serde::Serialize;

/// One workload present on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// Workload id (or criterion benchmark id).
    pub id: String,
    /// Median rate of OLD.
    pub old_median: Option<f64>,
    /// Median rate of NEW.
    pub new_median: Option<f64>,
    /// Rate samples of OLD.
    pub old_samples: usize,
    /// Rate samples of NEW.
    pub new_samples: usize,
    /// NEW's samples that lost messages.
    pub new_lossy_samples: usize,
    /// NEW/OLD with its interval, when both sides have enough samples.
    pub estimate: Option<RatioEstimate>,
    /// The conclusion.
    pub verdict: Verdict,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
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
        unit: new.unit.clone(),
        threshold,
        rows,
        only_old,
        only_new,
        common_shift,
    }
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
