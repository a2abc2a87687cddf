//! `termwatch trace --format chrome`: a run's raw trace as Chrome trace-event JSON, for
//! Perfetto or chrome://tracing. One process, one lane per thread (`thread_name` metadata),
//! phases and steps as complete (`X`) slices on the main thread's lane, every lifecycle event
//! as a thread-scoped instant (`i`), and the hang as a global instant. The parent writes it
//! from the events the child streamed, so a child killed at a hang still gives a whole file.

use serde_json::{Value, json};

use super::{EventKind, LifecycleEvent};

/// Builds the trace-event document (`{"traceEvents": [...]}`) of one run.
/// `pid` is the child's, `title` names the process lane.
pub fn render(events: &[LifecycleEvent], pid: u32, title: &str, hang_step: Option<&str>) -> Value {
    let mut trace_events = vec![json!({
        "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
        "args": {"name": title},
    })];
    let mut named_threads: Vec<i32> = Vec::new();
    for e in events {
        if !named_threads.contains(&e.tid) {
            named_threads.push(e.tid);
            trace_events.push(json!({
                "name": "thread_name", "ph": "M", "pid": pid, "tid": e.tid,
                "args": {"name": e.thread},
            }));
            trace_events.push(json!({
                "name": "thread_sort_index", "ph": "M", "pid": pid, "tid": e.tid,
                "args": {"sort_index": named_threads.len()},
            }));
        }
    }
    let last_ts = events.iter().map(|e| e.t_us).max().unwrap_or(0);
    let mut open_step: Option<&LifecycleEvent> = None;
    let mut hang_seen = false;
    for e in events {
        let label = e.fields.label.clone().unwrap_or_default();
        match e.kind {
            EventKind::StepStarted => open_step = Some(e),
            EventKind::StepFinished | EventKind::StepHung => {
                // On the lane of the thread that ran the step (a hang is told by the watchdog).
                let (start, tid) = open_step
                    .take()
                    .map_or((e.t_us, e.tid), |s| (s.t_us, s.tid));
                let hung = e.kind == EventKind::StepHung;
                trace_events.push(step_slice(
                    pid,
                    tid,
                    &label,
                    start,
                    e.t_us,
                    e.fields.note.clone(),
                    hung,
                ));
                if hung {
                    hang_seen = true;
                    trace_events.push(hang_instant(pid, tid, &label, e.t_us));
                }
            }
            kind => {
                let mut args = serde_json::Map::new();
                if let Some(node) = &e.node {
                    args.insert("node".to_owned(), node.clone().into());
                }
                args.extend(e.fields.entries());
                let name = match &e.node {
                    Some(node) => format!("{}: {}", node, kind.words()),
                    None => kind.words(),
                };
                trace_events.push(json!({
                    "name": name, "cat": "lifecycle", "ph": "i", "s": "t",
                    "ts": e.t_us, "pid": pid, "tid": e.tid, "args": args,
                }));
            }
        }
    }
    // A child killed before it could report: the step still open is where it hung.
    if let Some(step) = open_step {
        let label = step.fields.label.clone().unwrap_or_default();
        let hung = hang_step.is_some();
        trace_events.push(step_slice(
            pid, step.tid, &label, step.t_us, last_ts, None, hung,
        ));
        if hung && !hang_seen {
            trace_events.push(hang_instant(pid, step.tid, &label, last_ts));
        }
    }
    json!({"traceEvents": trace_events, "displayTimeUnit": "ms"})
}

fn step_slice(
    pid: u32,
    tid: i32,
    label: &str,
    start: u64,
    end: u64,
    note: Option<String>,
    hung: bool,
) -> Value {
    json!({
        "name": label, "cat": "step", "ph": "X", "ts": start, "dur": end.saturating_sub(start),
        "pid": pid, "tid": tid, "args": {"note": note, "hung": hung},
    })
}

fn hang_instant(pid: u32, tid: i32, label: &str, ts: u64) -> Value {
    json!({
        "name": format!("hang at `{label}`"), "cat": "verdict", "ph": "i", "s": "g",
        "ts": ts, "pid": pid, "tid": tid,
    })
}
