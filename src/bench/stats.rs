//! The statistics behind `termwatch compare`: medians, the change between two sets of rate
//! samples with its confidence interval, and the verdict that interval gives against a threshold.
//!
//! Unpaired (two runs, [`change_estimate`]): the change is the Hodges–Lehmann estimate on log
//! rates, the median of every pairwise `ln(new_j) − ln(old_i)`, reported as a ratio. Its interval
//! is the distribution-free one that inverts the Mann–Whitney test (Moses): the `k`-th smallest
//! and `k`-th largest pairwise difference, `k` from the normal approximation of the U statistic's
//! null distribution (exact for 5 and 7 samples a side).
//!
//! Paired (two engines of one run, [`paired_change_estimate`]): the data are the per-repeat log
//! ratios `d_i = ln(b_i / a_i)`. The change is their one-sample Hodges–Lehmann estimate, the median
//! of the Walsh averages `(d_i + d_j) / 2, i ≤ j`; its interval inverts the Wilcoxon signed-rank
//! test: the `k`-th smallest and `k`-th largest Walsh average, `k` from the exact null
//! distribution of the signed-rank statistic. Drift that hits both engines of a repeat cancels in
//! the ratio, which is what makes the paired interval narrow.
//!
//! Both: no assumption of normality, robust to the slow outliers a busy machine produces,
//! deterministic.

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

/// NEW relative to OLD, with its confidence interval, as rate ratios.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioEstimate {
    /// Hodges–Lehmann estimate of new/old.
    pub ratio: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// The interval's confidence level, e.g. 0.95.
    pub confidence: f64,
}

/// The confidence level `compare` aims at.
pub const CONFIDENCE: f64 = 0.95;
/// The lowest confidence a paired interval may fall back to when the number of pairs cannot
/// reach [`CONFIDENCE`] (5 pairs reach 93.75% at most).
pub const MIN_PAIRED_CONFIDENCE: f64 = 0.90;

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
        confidence: CONFIDENCE,
    })
}

/// The null distribution of the Wilcoxon signed-rank statistic for `n` pairs: element `w` is
/// `P(W = w)`, `w` from 0 to `n(n+1)/2` (every subset of the ranks `1..=n` equally likely).
fn signed_rank_distribution(n: usize) -> Vec<f64> {
    let mut probabilities = vec![1.0];
    for rank in 1..=n {
        let mut next = vec![0.0; probabilities.len() + rank];
        for (sum, p) in probabilities.iter().enumerate() {
            next[sum] += p / 2.0;
            next[sum + rank] += p / 2.0;
        }
        probabilities = next;
    }
    probabilities
}

/// Rank (1-based, from each end) of the Walsh averages that bound the paired interval for `n`
/// pairs, with that interval's exact confidence: the widest `k` whose confidence
/// `1 − 2·P(W ≤ k − 1)` is at least [`CONFIDENCE`], else `k = 1` if it reaches
/// [`MIN_PAIRED_CONFIDENCE`]; `None` with fewer pairs.
fn signed_rank_interval(n: usize) -> Option<(usize, f64)> {
    let distribution = signed_rank_distribution(n);
    let confidence_at = |k: usize| 1.0 - 2.0 * distribution[..k].iter().sum::<f64>();
    let mut best = None;
    for k in 1..=distribution.len() / 2 {
        let confidence = confidence_at(k);
        if confidence >= CONFIDENCE - 1e-12 {
            best = Some((k, confidence));
        } else {
            break;
        }
    }
    best.or_else(|| {
        let confidence = confidence_at(1);
        (n > 0 && confidence >= MIN_PAIRED_CONFIDENCE).then_some((1, confidence))
    })
}

/// The per-pair log ratios `ln(b/a)`; `None` when a rate is not positive and finite.
fn log_ratios(pairs: &[(f64, f64)]) -> Option<Vec<f64>> {
    let usable = |rate: f64| rate > 0.0 && rate.is_finite();
    pairs
        .iter()
        .map(|&(a, b)| (usable(a) && usable(b)).then(|| b.ln() - a.ln()))
        .collect()
}

/// Every Walsh average `(d_i + d_j) / 2, i ≤ j` of `logs`, in ascending order.
fn sorted_walsh_averages(logs: &[f64]) -> Vec<f64> {
    let mut walsh: Vec<f64> = logs
        .iter()
        .enumerate()
        .flat_map(|(i, x)| logs[i..].iter().map(move |y| (x + y) / 2.0))
        .collect();
    walsh.sort_by(f64::total_cmp);
    walsh
}

/// B relative to A from paired rates (`pairs[i]` = A's and B's rate in repeat `i`); `None` when
/// there are too few pairs for an interval or a rate is not positive.
pub fn paired_change_estimate(pairs: &[(f64, f64)]) -> Option<RatioEstimate> {
    let logs = log_ratios(pairs)?;
    let (rank, confidence) = signed_rank_interval(pairs.len())?;
    let walsh = sorted_walsh_averages(&logs);
    Some(RatioEstimate {
        ratio: median(&walsh)?.exp(),
        low: walsh[rank - 1].exp(),
        high: walsh[walsh.len() - rank].exp(),
        confidence,
    })
}

/// How many repeats an inconclusive paired comparison would need, read from the spread of the
/// pairs it had: enough for an interval of half the threshold each side. Then a change of zero
/// is `no change` and a change of twice the threshold is `slower` or `faster`, each about 19
/// times in 20 (if the noise is near normal: the estimate's standard error is a quarter of the
/// threshold); a change near the threshold's edge needs more.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RepeatsHint {
    /// The pairs the comparison had.
    pub pairs: usize,
    /// The standard deviation of their log ratios `ln(b/a)`.
    pub spread: f64,
    /// What more pairs would do.
    pub needed: RepeatsNeeded,
}

/// The answer of a [`RepeatsHint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatsNeeded {
    /// About this many pairs.
    About(usize),
    /// The pairs at hand suffice at this spread: the change sits near the threshold's edge, or
    /// one pair far from the others widened the interval.
    AsMany,
    /// More than [`MAX_HINTED_REPEATS`]: the machine is too noisy for this threshold.
    MoreThanMax,
}

/// The most repeats a hint suggests.
pub const MAX_HINTED_REPEATS: usize = 1000;

/// Two-sided 95% quantile of Student's t with `df` degrees of freedom (Cornish–Fisher to the
/// second order: within 2% of the exact value from 4 degrees of freedom on).
fn t_975(df: usize) -> f64 {
    let z = Z_95;
    let df = df as f64;
    let g1 = (z.powi(3) + z) / 4.0;
    let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
    z + g1 / df + g2 / (df * df)
}

/// The fewest pairs `n` (at least 5, the fewest with an interval; at most
/// [`MAX_HINTED_REPEATS`]) at which the paired interval's expected half width,
/// `t(n−1) · √(π/3) · spread / √n` (the Hodges–Lehmann estimate's efficiency against the mean,
/// with a small-sample t factor), is below `ln(1 + threshold) / 2`.
fn repeats_for(spread: f64, threshold: f64) -> Option<usize> {
    let target = (1.0 + threshold).ln() / 2.0;
    let half_width =
        |n: usize| t_975(n - 1) * (std::f64::consts::PI / 3.0).sqrt() * spread / (n as f64).sqrt();
    (5..=MAX_HINTED_REPEATS).find(|&n| half_width(n) < target)
}

/// The hint for paired rates (see [`repeats_for`]); `None` with fewer than two pairs or an
/// unusable rate.
pub fn repeats_hint(pairs: &[(f64, f64)], threshold: f64) -> Option<RepeatsHint> {
    let logs = log_ratios(pairs).filter(|logs| logs.len() >= 2)?;
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let spread = (logs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let needed = match repeats_for(spread, threshold) {
        Some(n) if n <= pairs.len() => RepeatsNeeded::AsMany,
        Some(n) => RepeatsNeeded::About(n),
        None => RepeatsNeeded::MoreThanMax,
    };
    Some(RepeatsHint {
        pairs: pairs.len(),
        spread,
        needed,
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
            confidence: CONFIDENCE,
        }
    }

    #[test]
    fn the_signed_rank_distribution_counts_subsets_of_ranks() {
        // Subsets of {1..5} by their sum: 1 1 1 2 2 3 3 3 3 3 3 2 2 1 1 1 (32 in all).
        let counts: Vec<f64> = signed_rank_distribution(5)
            .iter()
            .map(|p| p * 32.0)
            .collect();
        let expected = [
            1., 1., 1., 2., 2., 3., 3., 3., 3., 3., 3., 2., 2., 1., 1., 1.,
        ];
        assert_eq!(counts, expected);
    }

    #[test]
    fn paired_interval_ranks_match_the_signed_rank_tables() {
        // Exact two-sided 5% critical values of W: 0 for n = 6, 2 for 7, 3 for 8, 8 for 10,
        // 52 for 20; the interval uses rank W + 1.
        for (n, critical) in [(6, 0), (7, 2), (8, 3), (10, 8), (20, 52)] {
            let (rank, confidence) = signed_rank_interval(n).expect("enough pairs");
            assert_eq!(rank, critical + 1, "n = {n}");
            assert!(confidence >= 0.95, "n = {n}: {confidence}");
        }
        // Five pairs cannot reach 95%: the range of the data, at 1 - 2/32.
        assert_eq!(signed_rank_interval(5), Some((1, 0.9375)));
        assert_eq!(signed_rank_interval(4), None, "87.5% at best");
    }

    #[test]
    fn paired_estimates_are_the_median_and_extremes_of_the_walsh_averages() {
        // Log ratios 1, 2, 3: Walsh averages 1, 1.5, 2, 2, 2.5, 3 -> median 2 (only the estimate
        // is defined for 3 pairs).
        let e = std::f64::consts::E;
        assert_eq!(
            paired_change_estimate(&[(1.0, e), (1.0, e * e), (1.0, e * e * e)]),
            None
        );
        // Six pairs, log ratios -0.2 0.05 0.1 0.15 0.2 0.3: the 21 Walsh averages run from -0.2
        // to 0.3 with median 0.125 (the 11th); k = 1 at n = 6, confidence 1 - 2/64.
        let logs = [0.1, -0.2, 0.3, 0.05, 0.2, 0.15];
        let pairs: Vec<(f64, f64)> = logs
            .iter()
            .map(|d: &f64| (100.0, 100.0 * d.exp()))
            .collect();
        let estimate = paired_change_estimate(&pairs).expect("six pairs");
        assert!((estimate.ratio.ln() - 0.125).abs() < 1e-12, "{estimate:?}");
        assert!((estimate.low.ln() + 0.2).abs() < 1e-12, "{estimate:?}");
        assert!((estimate.high.ln() - 0.3).abs() < 1e-12, "{estimate:?}");
        assert_eq!(estimate.confidence, 1.0 - 2.0 / 64.0);
    }

    #[test]
    fn a_steady_paired_twenty_percent_drop_is_slower_despite_drift_between_repeats() {
        // Each repeat's rates moved by up to 2x together (load drift); B stays 0.8 x A +- 2%.
        let drift = [1.0, 1.9, 0.6, 1.4, 0.8];
        let noise = [1.0, 1.02, 0.98, 1.01, 0.99];
        let pairs: Vec<(f64, f64)> = drift
            .iter()
            .zip(noise)
            .map(|(d, n)| (1e6 * d, 0.8e6 * d * n))
            .collect();
        let estimate = paired_change_estimate(&pairs).expect("five pairs");
        assert_eq!(Verdict::of(Some(&estimate), 0.05), Verdict::Slower);
        let a: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let b: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let unpaired = change_estimate(&a, &b).expect("five a side");
        assert_eq!(Verdict::of(Some(&unpaired), 0.05), Verdict::Inconclusive);
    }

    #[test]
    fn the_t_quantile_is_within_two_percent_of_the_tables() {
        for (df, exact) in [(4, 2.776), (10, 2.228), (30, 2.042), (1000, 1.962)] {
            assert!((t_975(df) / exact - 1.0).abs() < 0.02, "df = {df}");
        }
    }

    /// Normal deviates from a fixed xorshift stream (Box–Muller), so the check is repeatable.
    fn normal_stream(mut state: u64) -> impl FnMut() -> f64 {
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        move || (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos()
    }

    #[test]
    fn the_hinted_repeats_settle_no_change_and_a_double_threshold_change() {
        let (spread, threshold) = (0.10, 0.05);
        let n = repeats_for(spread, threshold).expect("a spread of 0.1 needs fewer than 1000");
        assert!((40..120).contains(&n), "{n}");
        let mut normal = normal_stream(0x9e37_79b9_7f4a_7c15);
        let trials = 300;
        for (change, expected) in [(1.0, Verdict::NoChange), (0.90, Verdict::Slower)] {
            let hits = (0..trials)
                .filter(|_| {
                    let pairs: Vec<(f64, f64)> = (0..n)
                        .map(|_| (1e6, 1e6 * (f64::ln(change) + spread * normal()).exp()))
                        .collect();
                    Verdict::of(paired_change_estimate(&pairs).as_ref(), threshold) == expected
                })
                .count();
            assert!(hits * 100 >= trials * 90, "{expected}: {hits} of {trials}");
        }
        assert_eq!(repeats_for(0.01, threshold), Some(5));
        assert_eq!(repeats_for(2.0, threshold), None);
    }

    #[test]
    fn a_hint_says_when_the_repeats_at_hand_should_have_sufficed() {
        let pairs = |logs: &[f64]| -> Vec<(f64, f64)> {
            logs.iter().map(|d| (100.0, 100.0 * d.exp())).collect()
        };
        let tight = repeats_hint(&pairs(&[0.04, 0.05, 0.045, 0.055, 0.05]), 0.05).expect("hint");
        assert_eq!(tight.needed, RepeatsNeeded::AsMany);
        let wide = repeats_hint(&pairs(&[0.1, -0.1, 0.05, -0.05, 0.0]), 0.05).expect("hint");
        assert!(
            matches!(wide.needed, RepeatsNeeded::About(n) if n > 5),
            "{wide:?}"
        );
        assert!((wide.spread - 0.0790569).abs() < 1e-6, "{wide:?}");
        assert_eq!(repeats_hint(&[(1.0, 1.0)], 0.05), None);
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
        fn the_paired_interval_holds_the_estimate(
            pairs in prop::collection::vec((1.0f64..1e6, 1.0f64..1e6), 5..15),
        ) {
            let estimate = paired_change_estimate(&pairs).expect("enough pairs");
            prop_assert!(estimate.low <= estimate.ratio && estimate.ratio <= estimate.high);
            prop_assert!(estimate.confidence >= MIN_PAIRED_CONFIDENCE);
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
