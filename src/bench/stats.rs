//! The statistics behind `termwatch compare`: medians, a bootstrap confidence interval for the
//! ratio of two medians, and the verdict that interval gives against a threshold.
//!
//! The interval is a percentile bootstrap: both sides are resampled with replacement, the ratio
//! of the resampled medians is taken, and the central `confidence` share of those ratios is the
//! interval. Medians, not means, because a busy machine produces slow outliers. The resampling
//! uses a fixed seed, so the same files always give the same verdict.

use serde::Serialize;
use std::fmt;

/// Resamples drawn for an interval.
pub const RESAMPLES: usize = 10_000;
/// Share of the bootstrap distribution inside the interval.
pub const CONFIDENCE: f64 = 0.95;
/// Fewest samples per side for an interval; fewer gives `inconclusive`.
pub const MIN_SAMPLES: usize = 2;

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

/// NEW's median over OLD's median, with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioEstimate {
    /// median(new) / median(old).
    pub ratio: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

/// SplitMix64: a small, fast, seedable generator, plenty for resampling indices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }
}

fn resampled_median(values: &[f64], rng: &mut SplitMix64, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..values.len()).map(|_| values[rng.below(values.len())]));
    median(scratch).unwrap_or(f64::NAN)
}

/// Bootstrap interval for median(new)/median(old); `None` when a side has fewer than
/// [`MIN_SAMPLES`] samples or a median is not positive.
pub fn ratio_of_medians(old: &[f64], new: &[f64]) -> Option<RatioEstimate> {
    if old.len() < MIN_SAMPLES || new.len() < MIN_SAMPLES {
        return None;
    }
    let (old_median, new_median) = (median(old)?, median(new)?);
    if old_median <= 0.0 || new_median <= 0.0 {
        return None;
    }
    let mut rng = SplitMix64(0x7465_726d_7761_7463);
    let mut scratch = Vec::with_capacity(old.len().max(new.len()));
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let old_resampled = resampled_median(old, &mut rng, &mut scratch);
            resampled_median(new, &mut rng, &mut scratch) / old_resampled
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let index = |share: f64| ((share * RESAMPLES as f64) as usize).min(RESAMPLES - 1);
    Some(RatioEstimate {
        ratio: new_median / old_median,
        low: ratios[index(tail)],
        high: ratios[index(1.0 - tail)],
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
    fn identical_samples_are_no_change() {
        let samples = [100.0, 101.0, 99.0, 100.5, 99.5];
        let estimate = ratio_of_medians(&samples, &samples).expect("enough samples");
        assert_eq!(estimate.ratio, 1.0);
        assert_eq!(Verdict::of(Some(&estimate), 0.05), Verdict::NoChange);
    }

    #[test]
    fn a_twenty_percent_drop_is_slower_and_a_wide_spread_is_inconclusive() {
        let old = [100.0, 102.0, 98.0, 101.0, 99.0];
        let throttled: Vec<f64> = old.iter().map(|v| v * 0.8).collect();
        let estimate = ratio_of_medians(&old, &throttled).expect("enough samples");
        assert_eq!(Verdict::of(Some(&estimate), 0.05), Verdict::Slower);
        let noisy = [60.0, 140.0, 95.0, 105.0, 100.0];
        let estimate = ratio_of_medians(&old, &noisy).expect("enough samples");
        assert_eq!(Verdict::of(Some(&estimate), 0.05), Verdict::Inconclusive);
    }

    #[test]
    fn too_few_samples_give_no_interval() {
        assert_eq!(ratio_of_medians(&[1.0], &[1.0, 2.0]), None);
    }

    proptest! {
        #[test]
        fn the_interval_is_ordered_and_positive(
            old in prop::collection::vec(1.0f64..1e6, 2..12),
            new in prop::collection::vec(1.0f64..1e6, 2..12),
        ) {
            let estimate = ratio_of_medians(&old, &new).expect("enough samples");
            prop_assert!(estimate.low <= estimate.high);
            prop_assert!(estimate.low > 0.0 && estimate.high.is_finite());
        }

        #[test]
        fn comparing_samples_with_themselves_is_never_slower(
            samples in prop::collection::vec(1.0f64..1e6, 2..12),
        ) {
            let estimate = ratio_of_medians(&samples, &samples).expect("enough samples");
            prop_assert_ne!(Verdict::of(Some(&estimate), 0.05), Verdict::Slower);
        }
    }
}
