//! Renders comparisons and bench summaries: an aligned terminal table, Markdown (for a CI comment)
//! and an SVG chart with one bar pair per workload (OLD at 100%, NEW at its ratio, with the
//! interval as a whisker). OLD and NEW are called by the comparison's side names (`old`/`new`,
//! or two engines).

use super::compare::{Comparison, ComparisonRow};
use super::stats::{CONFIDENCE, MAX_HINTED_REPEATS, RepeatsNeeded, Verdict};
use std::fmt::Write as _;

/// `3.34M`, `505k`, `16.1k`, `950`: three significant digits.
pub fn human_rate(rate: f64) -> String {
    let (value, suffix) = if rate >= 1e9 {
        (rate / 1e9, "G")
    } else if rate >= 1e6 {
        (rate / 1e6, "M")
    } else if rate >= 1e3 {
        (rate / 1e3, "k")
    } else {
        (rate, "")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$}{suffix}")
}

fn percent(ratio: f64) -> String {
    format!("{:+.1}%", (ratio - 1.0) * 100.0)
}

fn optional_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), human_rate)
}

/// A share as a percentage without a trailing `.0`: `95%`, `93.8%`, `2.5%`.
fn share_label(share: f64) -> String {
    let percent = format!("{:.1}", share * 100.0);
    format!("{}%", percent.trim_end_matches(".0"))
}

/// The cells of one row: workload, old, new, change, interval, verdict. An interval at another
/// confidence than [`CONFIDENCE`] says its own.
fn cells(row: &ComparisonRow) -> [String; 6] {
    let (change, interval) = match &row.estimate {
        Some(estimate) => (
            percent(estimate.ratio),
            if (estimate.confidence - CONFIDENCE).abs() < 1e-9 {
                format!("[{}, {}]", percent(estimate.low), percent(estimate.high))
            } else {
                format!(
                    "[{}, {}] at {}",
                    percent(estimate.low),
                    percent(estimate.high),
                    share_label(estimate.confidence)
                )
            },
        ),
        None => ("-".to_string(), "too few samples".to_string()),
    };
    let mut verdict = row.verdict.to_string();
    if row.new_lossy_samples > 0 {
        write!(verdict, " ({} lossy samples)", row.new_lossy_samples).ok();
    }
    [
        row.id.clone(),
        format!("{} (n={})", optional_rate(row.old_median), row.old_samples),
        format!("{} (n={})", optional_rate(row.new_median), row.new_samples),
        change,
        interval,
        verdict,
    ]
}

fn headers(comparison: &Comparison) -> [String; 6] {
    [
        "workload".to_string(),
        format!("{} median {}", comparison.sides[0], comparison.unit),
        format!("{} median {}", comparison.sides[1], comparison.unit),
        "change".to_string(),
        format!("{} interval", share_label(CONFIDENCE)),
        format!("verdict (±{:.1}%)", comparison.threshold * 100.0),
    ]
}

/// Notes under the table: workloads on one side only, and a common shift beyond the threshold.
fn notes(comparison: &Comparison) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(shift) = comparison.common_shift
        && (shift - 1.0).abs() > comparison.threshold
    {
        lines.push(format!(
            "all workloads moved together: median change {}; if the code under test did not \
             change for all of them, the machine's load differed between the runs: measure both \
             again, on a quiet machine",
            percent(shift)
        ));
    }
    lines.extend(
        comparison
            .rows
            .iter()
            .filter_map(|row| repeats_note(row, comparison.threshold)),
    );
    let [old, new] = &comparison.sides;
    if !comparison.only_old.is_empty() {
        lines.push(format!("only in {old}: {}", comparison.only_old.join(", ")));
    }
    if !comparison.only_new.is_empty() {
        lines.push(format!("only in {new}: {}", comparison.only_new.join(", ")));
    }
    lines
}

/// What an inconclusive paired row says about measuring again.
fn repeats_note(row: &ComparisonRow, threshold: f64) -> Option<String> {
    let hint = row.repeats_hint?;
    let (band, half, double) = (
        share_label(threshold),
        share_label(threshold / 2.0),
        share_label(threshold * 2.0),
    );
    let measured = format!(
        "{}: inconclusive with {} repeats of spread {:.3} (standard deviation of ln B/A)",
        row.id, hint.pairs, hint.spread
    );
    Some(match hint.needed {
        RepeatsNeeded::About(n) => format!(
            "{measured}; about {n} repeats narrow the interval to ±{half}, enough to call \
             `no change` when nothing changed and `slower` or `faster` for a change of \
             {double} or more, usually"
        ),
        RepeatsNeeded::AsMany => format!(
            "{measured}; at that spread these repeats should narrow the interval to ±{half}: \
             the change sits near the ±{band} edge, or one repeat far from the others widened \
             the interval; measure again with more repeats"
        ),
        RepeatsNeeded::MoreThanMax => format!(
            "{measured}; over {MAX_HINTED_REPEATS} repeats would be needed to narrow the \
             interval to ±{half}: measure on a quieter machine, or with longer samples"
        ),
    })
}

/// A plain-text table with aligned columns.
pub fn terminal_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(header);
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    out
}

/// The comparison as a terminal table with a summary line.
pub fn comparison_table(comparison: &Comparison) -> String {
    let rows: Vec<Vec<String>> = comparison.rows.iter().map(|r| cells(r).to_vec()).collect();
    let mut out = terminal_table(&headers(comparison), &rows);
    for line in notes(comparison) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&summary(comparison));
    out.push('\n');
    out
}

fn summary(comparison: &Comparison) -> String {
    let count = |verdict: Verdict| {
        comparison
            .rows
            .iter()
            .filter(|r| r.verdict == verdict)
            .count()
    };
    format!(
        "{} workloads: {} slower, {} lost, {} faster, {} no change, {} inconclusive",
        comparison.rows.len(),
        count(Verdict::Slower),
        count(Verdict::Lost),
        count(Verdict::Faster),
        count(Verdict::NoChange),
        count(Verdict::Inconclusive),
    )
}

fn markdown_escape(cell: &str) -> String {
    cell.replace('|', "\\|")
}

/// The comparison as a Markdown table, for a CI comment.
pub fn comparison_markdown(comparison: &Comparison) -> String {
    let mut out = String::from("## termwatch compare\n\n");
    let header = headers(comparison);
    writeln!(out, "| {} |", header.join(" | ")).ok();
    writeln!(out, "|{}", "---|".repeat(header.len())).ok();
    for row in &comparison.rows {
        let cells = cells(row).map(|c| markdown_escape(&c));
        writeln!(out, "| {} |", cells.join(" | ")).ok();
    }
    out.push('\n');
    for line in notes(comparison) {
        writeln!(out, "{line}  ").ok();
    }
    writeln!(out, "**{}**", summary(comparison)).ok();
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict_colour(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Faster => "#2e7d32",
        Verdict::Slower | Verdict::Lost => "#c62828",
        Verdict::NoChange => "#1565c0",
        Verdict::Inconclusive => "#f9a825",
    }
}

/// The comparison as an SVG bar chart: per workload a grey OLD bar (100%) and a NEW bar at
/// NEW/OLD, coloured by verdict, with the interval as a whisker and dashed lines at ±threshold.
pub fn comparison_svg(comparison: &Comparison) -> String {
    const LABEL_WIDTH: f64 = 260.0;
    const CHART_WIDTH: f64 = 420.0;
    const BAR_HEIGHT: f64 = 12.0;
    const ROW_HEIGHT: f64 = 40.0;
    const TOP: f64 = 40.0;
    let widest = comparison
        .rows
        .iter()
        .filter_map(|r| r.estimate.map(|e| e.high.max(e.ratio)))
        .fold(1.0 + comparison.threshold, f64::max)
        .min(4.0);
    let scale = CHART_WIDTH / (widest * 1.1);
    let x = |ratio: f64| LABEL_WIDTH + ratio.clamp(0.0, widest * 1.1) * scale;
    let height = TOP + ROW_HEIGHT * comparison.rows.len() as f64 + 30.0;
    let width = LABEL_WIDTH + CHART_WIDTH + 150.0;
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    )
    .ok();
    writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14">{new} rate relative to {old} (grey = {old} = 100%, whisker = interval, dashed = ±{:.1}%)</text>"#,
        comparison.threshold * 100.0,
        old = xml_escape(&comparison.sides[0]),
        new = xml_escape(&comparison.sides[1]),
    )
    .ok();
    for ratio in [1.0 - comparison.threshold, 1.0, 1.0 + comparison.threshold] {
        let dash = if ratio == 1.0 {
            ""
        } else {
            r#" stroke-dasharray="4 3""#
        };
        writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#888"{dash}/>"##,
            x(ratio),
            height - 25.0
        )
        .ok();
    }
    for (index, row) in comparison.rows.iter().enumerate() {
        let y = TOP + ROW_HEIGHT * index as f64 + 6.0;
        writeln!(
            svg,
            r#"<text x="10" y="{:.1}">{}</text>"#,
            y + BAR_HEIGHT + 2.0,
            xml_escape(&row.id)
        )
        .ok();
        writeln!(
            svg,
            r##"<rect x="{LABEL_WIDTH}" y="{y:.1}" width="{:.1}" height="{BAR_HEIGHT}" fill="#bdbdbd"><title>{} {}</title></rect>"##,
            x(1.0) - LABEL_WIDTH,
            xml_escape(&comparison.sides[0]),
            optional_rate(row.old_median)
        )
        .ok();
        let new_y = y + BAR_HEIGHT + 2.0;
        let ratio = row.estimate.map_or(0.0, |e| e.ratio);
        writeln!(
            svg,
            r#"<rect x="{LABEL_WIDTH}" y="{new_y:.1}" width="{:.1}" height="{BAR_HEIGHT}" fill="{}"><title>{} {}</title></rect>"#,
            x(ratio) - LABEL_WIDTH,
            verdict_colour(row.verdict),
            xml_escape(&comparison.sides[1]),
            optional_rate(row.new_median)
        )
        .ok();
        if let Some(estimate) = row.estimate {
            let whisker_y = new_y + BAR_HEIGHT / 2.0;
            writeln!(
                svg,
                r#"<line x1="{:.1}" y1="{whisker_y:.1}" x2="{:.1}" y2="{whisker_y:.1}" stroke="black" stroke-width="1.5"/>"#,
                x(estimate.low),
                x(estimate.high)
            )
            .ok();
        }
        let change = row
            .estimate
            .map_or_else(|| "-".to_string(), |e| percent(e.ratio));
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{} {}</text>"#,
            LABEL_WIDTH + CHART_WIDTH + 10.0,
            new_y + BAR_HEIGHT - 2.0,
            change,
            row.verdict
        )
        .ok();
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::compare::compare;
    use crate::bench::results::SampleSet;

    fn comparison() -> Comparison {
        let set = |rates: &[f64]| SampleSet {
            rates: [("tcp/16B/1x1/zmq_proxy".to_string(), rates.to_vec())].into(),
            unit: "msg/s".to_string(),
            ..SampleSet::default()
        };
        compare(
            &set(&[3.3e6, 3.4e6, 3.2e6, 3.35e6, 3.3e6]),
            &set(&[2.6e6, 2.7e6, 2.65e6, 2.6e6, 2.7e6]),
            0.05,
        )
    }

    #[test]
    fn rates_are_shown_with_three_significant_digits() {
        assert_eq!(human_rate(3_336_000.0), "3.34M");
        assert_eq!(human_rate(505_000.0), "505k");
        assert_eq!(human_rate(16_100.0), "16.1k");
        assert_eq!(human_rate(950.0), "950");
    }

    #[test]
    fn the_table_and_markdown_name_the_verdict() {
        let comparison = comparison();
        let table = comparison_table(&comparison);
        assert!(table.contains("tcp/16B/1x1/zmq_proxy"), "{table}");
        assert!(table.contains("slower"), "{table}");
        let markdown = comparison_markdown(&comparison);
        assert!(
            markdown.contains("| tcp/16B/1x1/zmq_proxy | 3.30M (n=5) |"),
            "{markdown}"
        );
        assert!(markdown.contains("1 slower"), "{markdown}");
    }

    #[test]
    fn the_svg_has_one_bar_pair_per_workload() {
        let svg = comparison_svg(&comparison());
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
