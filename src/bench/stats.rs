//! The statistics behind `termwatch compare`: medians, the change between two sets of rate
//! samples with its confidence interval, and the verdict that interval gives against a threshold.
//!
//! The change is the Hodges–Lehmann estimate on log rates: the median of every pairwise
//! `ln(new_j) − ln(old_i)`, reported as a ratio. Its interval is the distribution-free one that
//! inverts the Mann–Whitney test (Moses): the `k`-th smallest and `k`-th largest pairwise
//! difference, `k` from the normal approximation of the U statistic's null distribution (exact
//! for 5 and 7 samples a side). No assumption of normality, robust to the slow outliers a busy
//! machine produces, deterministic, and tighter than a bootstrap of the medians at 5–10 samples.

use serde::Serialize;
use std::fmt;

/// Two-sided 95% quantile of the standard normal distribution.
const Z_95: f64 = 1.959_964;

/// The median of `values` (the mean of the two middle ones for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// NEW relative to OLD, with its 95% confidence interval, as rate ratios.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioEstimate {
    /// Hodges–Lehmann estimate of new/old.
    pub ratio: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

/// Rank (1-based, from each end) of the pairwise differences that bound the 95% interval for
/// `n` and `m` samples; `None` when so few samples cannot exclude anything at 95% (fewer than 4
/// a side when the sides are equal).
fn interval_rank(n: usize, m: usize) -> Option<usize> {
    let (n, m) = (n as f64, m as f64);
    let rank = (n * m / 2.0 - Z_95 * (n * m * (n + m + 1.0) / 12.0).sqrt()).floor();
    (rank >= 1.0).then_some(rank as usize)
}

/// The change from `old` to `new` with its interval; `None` when a side has too few samples for
/// an interval or a rate is not positive.
pub fn change_estimate(old: &[f64], new: &[f64]) -> Option<RatioEstimate> {
    let rank = interval_rank(old.len(), new.len())?;
    if old
        .iter()
        .chain(new)
        .any(|rate| !(*rate > 0.0 && rate.is_finite()))
    {
        return None;
    }
    let mut differences: Vec<f64> = new
        .iter()
        .flat_map(|n| old.iter().map(move |o| n.ln() - o.ln()))
        .collect();
    differences.sort_by(f64::total_cmp);
    Some(RatioEstimate {
        ratio: median(&differences)?.exp(),
        low: differences[rank - 1].exp(),
        high: differences[differences.len() - rank].exp(),
    })
}

/// What a comparison concludes about one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The whole interval is above `1 + threshold`.
    Faster,
    /// The whole interval is below `1 - threshold`.
    Slower,
    /// The whole interval is within `1 ± threshold`.
    NoChange,
    /// The interval straddles a threshold, or there are too few samples: measure again.
    Inconclusive,
    /// NEW lost messages in some samples: its rates cannot be trusted.
    Lost,
}

impl Verdict {
    /// The verdict of an interval against a relative `threshold` (0.05 for 5%).
    pub fn of(estimate: Option<&RatioEstimate>, threshold: f64) -> Verdict {
        let Some(estimate) = estimate else {
            return Verdict::Inconclusive;
        };
        if estimate.low > 1.0 + threshold {
            Verdict::Faster
        } else if estimate.high < 1.0 - threshold {
            Verdict::Slower
        } else if estimate.low >= 1.0 - threshold && estimate.high <= 1.0 + threshold {
            Verdict::NoChange
        } else {
            Verdict::Inconclusive
        }
    }

    /// Whether this verdict makes `compare` exit 1.
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Slower | Verdict::Lost)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoChange => "no change",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Lost => "lost",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    fn estimate(low: f64, high: f64) -> RatioEstimate {
        RatioEstimate {
            ratio: (low + high) / 2.0,
            low,
            high,
        }
    }

    #[test]
    fn verdicts_against_a_five_percent_threshold() {
        let verdict = |low, high| Verdict::of(Some(&estimate(low, high)), 0.05);
        assert_eq!(verdict(1.06, 1.20), Verdict::Faster);
        assert_eq!(verdict(0.70, 0.90), Verdict::Slower);
        assert_eq!(verdict(0.96, 1.04), Verdict::NoChange);
        assert_eq!(verdict(0.90, 0.99), Verdict::Inconclusive);
        assert_eq!(verdict(1.01, 1.10), Verdict::Inconclusive);
        assert_eq!(Verdict::of(None, 0.05), Verdict::Inconclusive);
    }

    #[test]
    fn interval_ranks_match_the_exact_mann_whitney_tables() {
        // Exact two-sided 5% critical values of U: 2 for 5+5, 8 for 7+7, 23 for 10+10; the
        // interval uses rank U + 1.
        assert_eq!(interval_rank(5, 5), Some(3));
        assert_eq!(interval_rank(7, 7), Some(9));
        assert_eq!(interval_rank(10, 10), Some(24));
        assert_eq!(interval_rank(3, 3), None);
    }

    #[test]
    fn identical_samples_are_no_change() {
        let samples = [100.0, 101.0, 99.0, 100.5, 99.5];
        let estimate = change_estimate(&samples, &samples).expect("enough samples");
        assert!((estimate.ratio - 1.0).abs() < 1e-12);
        assert_eq!(Verdict::of(Some(&estimate), 0.05), Verdict::NoChange);
    }

    #[test]
    fn a_twenty_percent_drop_is_slower_and_a_wide_spread_is_inconclusive() {
        let old = [100.0, 102.0, 98.0, 101.0, 99.0];
        let throttled: Vec<f64> = old.iter().map(|v| v * 0.8).collect();
        let estimate = change_estimate(&old, &throttled).expect("enough samples");
        assert_eq!(Verdict::of(Some(&estimate), 0.05), Verdict::Slower);
        let noisy = [60.0, 140.0, 95.0, 105.0, 100.0];
        let estimate = change_estimate(&old, &noisy).expect("enough samples");
        assert_eq!(Verdict::of(Some(&estimate), 0.05), Verdict::Inconclusive);
    }

    #[test]
    fn too_few_samples_give_no_interval() {
        assert_eq!(change_estimate(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }

    proptest! {
        #[test]
        fn the_interval_is_ordered_and_positive(
            old in prop::collection::vec(1.0f64..1e6, 4..12),
            new in prop::collection::vec(1.0f64..1e6, 4..12),
        ) {
            let estimate = change_estimate(&old, &new).expect("enough samples");
            prop_assert!(estimate.low <= estimate.high);
            prop_assert!(estimate.low > 0.0 && estimate.high.is_finite());
        }

        #[test]
        fn comparing_samples_with_themselves_is_never_slower(
            samples in prop::collection::vec(1.0f64..1e6, 4..12),
        ) {
            let estimate = change_estimate(&samples, &samples).expect("enough samples");
            prop_assert_ne!(Verdict::of(Some(&estimate), 0.05), Verdict::Slower);
        }
    }
}
