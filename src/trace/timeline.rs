//! `termwatch trace --format text`: a run's raw trace as a timeline for people, one line per
//! event with its time, thread and node, steps marked where they start and end.

use std::fmt::Write as _;

use super::{EventKind, LifecycleEvent};

/// Renders events (in `seq` order) as a timeline.
pub fn render(events: &[LifecycleEvent]) -> String {
    let thread_width = events.iter().map(|e| e.thread.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in events {
        let ms = e.t_us as f64 / 1000.0;
        let label = e.fields.label.as_deref().unwrap_or_default();
        let what = match e.kind {
            EventKind::StepStarted => format!("▶ {label}"),
            EventKind::StepFinished => {
                let took = e.fields.duration_us;
                let took = took.map_or(String::new(), |us| {
                    format!(" ({:.2} ms)", us as f64 / 1000.0)
                });
                match &e.fields.note {
                    Some(note) => format!("✓ {label}{took}: {note}"),
                    None => format!("✓ {label}{took}"),
                }
            }
            EventKind::StepHung => format!("✗ {label} HUNG: did not finish within its deadline"),
            kind => {
                let scope = match (&e.node, &e.fields.context) {
                    (Some(node), _) => node.clone(),
                    (None, Some(context)) => format!("context {context}"),
                    (None, None) => "harness".to_owned(),
                };
                let fields: Vec<String> = e
                    .fields
                    .entries()
                    .iter()
                    .filter(|(k, _)| !(e.node.is_none() && k.as_str() == "context"))
                    .map(|(k, v)| format!("{k}={}", super::value_text(v)))
                    .collect();
                format!("  {scope}: {} {}", kind.words(), fields.join(" "))
            }
        };
        let _ = writeln!(
            out,
            "{ms:>10.3} ms  {:<thread_width$}  {}",
            e.thread,
            what.trim_end()
        );
    }
    out
}
