//! Normalization: a run's raw lifecycle events become a [`NormalizedTrace`] that changes only
//! when behaviour changes, so it can be snapshotted.
//!
//! Rules (documented in `docs/traces.md`):
//! - ports, the child's pid, the run's temporary folder, other temporary paths and the path of
//!   termwatch's own executable (a program's `{termwatch}`) become `<port>`, `<pid>`,
//!   `<run-dir>`, `<tmp>`, `<termwatch>`; thread ids, times, sequence numbers and durations
//!   are dropped (thread *names* stay: they say who closed what);
//! - events are grouped by the phase or step they belong to (setup, traffic, each step, end),
//!   which is where the scenario orders them; within a group, by scope in a fixed order
//!   (contexts, then nodes in file order, then the harness's own threads by name), and within a
//!   scope in the order they were recorded;
//! - message counts are kept exactly; a step that hung is marked, and the trace stops there.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::{EventKind, LifecycleEvent, Phase, SocketRole, value_text};
use crate::scenario::Scenario;

/// Run-specific values that must not reach a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redactions {
    /// The run's temporary folder (ipc endpoints live there).
    pub run_dir: String,
    /// The child's pid.
    pub pid: Option<u32>,
}

/// One event, without anything that changes from run to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedEvent {
    /// `context <name>`, a node's name, or `harness` for the harness's own threads.
    pub scope: String,
    /// The thread that recorded it.
    pub thread: String,
    /// What happened.
    pub kind: EventKind,
    /// Its fields, redacted, as text.
    pub fields: BTreeMap<String, String>,
}

/// The events of one phase or step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceGroup {
    /// `setup`, `traffic`, `step 3: term`, `end`.
    pub title: String,
    /// The step's note on what it found, when it finished.
    pub note: Option<String>,
    /// Whether it outlived its deadline (the trace stops here).
    pub hung: bool,
    /// Its events, by scope, each scope in recording order.
    pub events: Vec<NormalizedEvent>,
}

/// A run's trace, ready to be rendered into a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedTrace {
    /// The scenario's name.
    pub scenario: String,
    /// `clean`, `hang at `term``, `crash`, …
    pub outcome: String,
    /// Groups in run order.
    pub groups: Vec<TraceGroup>,
}

/// Scope of the harness's own threads (main thread and watchdog entries).
const HARNESS_SCOPE: &str = "harness";

/// The path of the running executable, which is also the child's (it re-executes itself) and
/// what a program's `{termwatch}` is given.
static OWN_EXECUTABLE: LazyLock<Option<String>> = LazyLock::new(|| {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
});

impl Redactions {
    /// Replaces run-specific parts of a text value.
    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some(exe) = OWN_EXECUTABLE.as_deref() {
            text = text.replace(exe, "<termwatch>");
        }
        if !self.run_dir.is_empty() {
            text = text.replace(&self.run_dir, "<run-dir>");
        }
        let temp_dir = std::env::temp_dir().display().to_string();
        if temp_dir.len() > 1 {
            text = text.replace(temp_dir.trim_end_matches('/'), "<tmp>");
        }
        if let Some(pid) = self.pid {
            text = replace_number(&text, pid.into(), "<pid>");
        }
        redact_tcp_ports(&text)
    }
}

/// Replaces `number` where it stands alone (not inside a longer number).
fn replace_number(text: &str, number: u64, placeholder: &str) -> String {
    let needle = number.to_string();
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + needle.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit()) {
            out.push_str(&needle);
        } else {
            out.push_str(placeholder);
        }
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// `tcp://host:12345` → `tcp://host:<port>`; a wildcard `*` stays.
fn redact_tcp_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("tcp://") {
        let (head, tail) = rest.split_at(at + "tcp://".len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == ',' || c == '"')
            .unwrap_or(tail.len());
        let address = &tail[..end];
        match address.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
                out.push_str(host);
                out.push_str(":<port>");
            }
            _ => out.push_str(address),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Fields that differ from run to run and say nothing about behaviour.
fn is_volatile(field: &str) -> bool {
    field.ends_with("_us") || field == "tid"
}

fn title(scenario: &Scenario, phase: Phase) -> String {
    match phase {
        Phase::Setup => crate::scenario::SETUP_LABEL.to_owned(),
        Phase::Traffic => crate::scenario::TRAFFIC_LABEL.to_owned(),
        Phase::Step(i) => match scenario.steps.get(i) {
            Some(step) => format!("step {}: {}", i + 1, step.label),
            None => format!("step {}", i + 1),
        },
        Phase::End => "end".to_owned(),
        Phase::Monitor => {
            "monitors (reported by libzmq's threads: in order per socket, not with the steps)"
                .to_owned()
        }
    }
}

/// Where a scope sorts within a group: contexts, then nodes in file order, then the rest.
fn scope_rank(scenario: &Scenario, scope: &str) -> (usize, usize, String) {
    if let Some(name) = scope.strip_prefix("context ")
        && let Some(i) = scenario.contexts.iter().position(|c| c.name == name)
    {
        return (0, i, String::new());
    }
    match scenario.nodes.iter().position(|n| n.name == scope) {
        Some(i) => (1, i, String::new()),
        None => (2, 0, scope.to_owned()),
    }
}

/// Monitor events whose presence depends on timing, not on what the scenario does: whether a
/// connect completed at once, whether libzmq noticed a peer leave before the socket closed, and
/// whether MONITOR_STOPPED was read before ETERM. They stay in the raw trace.
const TIMING_DEPENDENT_MONITOR_EVENTS: [&str; 5] = [
    "CONNECT_DELAYED",
    "CONNECT_RETRIED",
    "DISCONNECTED",
    "CLOSED",
    "MONITOR_STOPPED",
];

/// Whether an event says something about behaviour (and so belongs in a snapshot). Closing a
/// monitor's reader is said once, by `monitor reader closed`: its `socket closed` is left out.
fn is_stable(event: &LifecycleEvent) -> bool {
    match event.kind {
        EventKind::MonitorEvent => !event
            .fields
            .event
            .as_deref()
            .is_some_and(|name| TIMING_DEPENDENT_MONITOR_EVENTS.contains(&name)),
        EventKind::SocketClosed => event.fields.role != Some(SocketRole::MonitorReader),
        _ => true,
    }
}

/// Within the monitor group, a reader thread's start first, its end last, and each watched
/// socket's events together (two sockets' events interleave at random); elsewhere, no change.
fn monitor_rank(event: &NormalizedEvent) -> (u8, String) {
    match event.kind {
        EventKind::ThreadStarted => (0, String::new()),
        EventKind::ThreadExited => (2, String::new()),
        _ => (1, event.fields.get("role").cloned().unwrap_or_default()),
    }
}

fn normalize_event(event: &LifecycleEvent, redactions: &Redactions) -> NormalizedEvent {
    let scope = match (&event.node, &event.fields.context) {
        (Some(node), _) => node.clone(),
        (None, Some(context)) => format!("context {context}"),
        (None, None) => HARNESS_SCOPE.to_owned(),
    };
    let fields = event
        .fields
        .entries()
        .iter()
        .filter(|(name, _)| !is_volatile(name))
        .filter(|(name, _)| {
            !(event.kind == EventKind::MonitorReaderClosed && name.as_str() == "reason")
        })
        .filter(|(name, _)| !(event.node.is_none() && name.as_str() == "context"))
        .map(|(name, value)| (name.clone(), redactions.apply(&value_text(value))))
        .collect();
    NormalizedEvent {
        scope,
        thread: event.thread.clone(),
        kind: event.kind,
        fields,
    }
}

/// Normalizes the events of one run of `scenario`. `outcome` is the verdict in words and
/// `hang_step` the label of the step that hung, when one did (a child killed before it could
/// say so still gets its hang marked on the last step that started).
pub fn normalize(
    scenario: &Scenario,
    events: &[LifecycleEvent],
    outcome: &str,
    hang_step: Option<&str>,
    redactions: &Redactions,
) -> NormalizedTrace {
    let mut ordered: Vec<&LifecycleEvent> = events.iter().collect();
    ordered.sort_by_key(|e| e.seq);
    let mut groups: BTreeMap<Phase, TraceGroup> = BTreeMap::new();
    let mut last_started = None;
    for event in ordered.into_iter().filter(|e| is_stable(e)) {
        let group = groups.entry(event.phase).or_insert_with(|| TraceGroup {
            title: title(scenario, event.phase),
            note: None,
            hung: false,
            events: Vec::new(),
        });
        match event.kind {
            EventKind::StepStarted => last_started = Some(event.phase),
            EventKind::StepFinished => {
                group.note = event.fields.note.as_deref().map(|n| redactions.apply(n))
            }
            EventKind::StepHung => group.hung = true,
            _ => group.events.push(normalize_event(event, redactions)),
        }
    }
    if hang_step.is_some()
        && !groups.values().any(|g| g.hung)
        && let Some(group) = last_started.and_then(|phase| groups.get_mut(&phase))
    {
        group.hung = true;
    }
    let groups = groups
        .into_iter()
        .map(|(phase, mut group)| {
            // A stable sort keeps each scope's recording order.
            let in_monitor_group = phase == Phase::Monitor;
            group.events.sort_by_cached_key(|e| {
                let monitor_order = in_monitor_group.then(|| monitor_rank(e));
                (scope_rank(scenario, &e.scope), monitor_order)
            });
            group
        })
        .collect();
    NormalizedTrace {
        scenario: scenario.name.clone(),
        outcome: outcome.to_owned(),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::snapshot::render;

    fn scenario() -> Scenario {
        let text = r#"
            expect = "hang"
            [[nodes]]
            name = "bus"
            kind = "proxy"
            [[nodes]]
            name = "sub"
            kind = "subscriber"
            connect = "bus"
            [[steps]]
            action = "term"
        "#;
        crate::scenario::parse(std::path::Path::new("t.toml"), text, "t").expect("valid")
    }

    fn event(
        seq: u64,
        thread: &str,
        node: Option<&str>,
        phase: Phase,
        kind: EventKind,
    ) -> LifecycleEvent {
        LifecycleEvent {
            seq,
            t_us: seq * 7,
            thread: thread.to_owned(),
            tid: 100 + seq as i32,
            node: node.map(str::to_owned),
            phase,
            kind,
            fields: Default::default(),
        }
    }

    #[test]
    fn groups_by_step_then_scope_keeping_each_scopes_order() {
        let mut term_entered = event(3, "main", None, Phase::Step(0), EventKind::TermEntered);
        term_entered.fields.context = Some("main".into());
        let events = vec![
            event(0, "main", None, Phase::Step(0), EventKind::StepStarted),
            event(1, "sub", Some("sub"), Phase::Step(0), EventKind::EtermSeen),
            event(2, "bus", Some("bus"), Phase::Step(0), EventKind::EtermSeen),
            term_entered,
            event(
                4,
                "sub",
                Some("sub"),
                Phase::Step(0),
                EventKind::ThreadExited,
            ),
            event(
                5,
                "bus",
                Some("bus"),
                Phase::Step(0),
                EventKind::ThreadExited,
            ),
        ];
        let trace = normalize(&scenario(), &events, "clean", None, &Redactions::default());
        let group = &trace.groups[0];
        assert_eq!(group.title, "step 1: term");
        let order: Vec<(&str, EventKind)> = group
            .events
            .iter()
            .map(|e| (e.scope.as_str(), e.kind))
            .collect();
        assert_eq!(
            order,
            [
                ("context main", EventKind::TermEntered),
                ("bus", EventKind::EtermSeen),
                ("bus", EventKind::ThreadExited),
                ("sub", EventKind::EtermSeen),
                ("sub", EventKind::ThreadExited),
            ]
        );
        // The same events recorded in another interleaving normalize the same.
        let mut shuffled = events.clone();
        shuffled.swap(1, 2);
        shuffled.swap(4, 5);
        for (seq, e) in shuffled.iter_mut().enumerate() {
            e.seq = seq as u64;
        }
        let again = normalize(
            &scenario(),
            &shuffled,
            "clean",
            None,
            &Redactions::default(),
        );
        assert_eq!(render(&again), render(&trace));
    }

    #[test]
    fn a_child_killed_before_reporting_still_shows_where_it_hung() {
        let events = vec![
            event(0, "main", None, Phase::Step(0), EventKind::StepStarted),
            event(1, "main", None, Phase::Step(0), EventKind::TermEntered),
        ];
        let trace = normalize(
            &scenario(),
            &events,
            "hang at `term`",
            Some("term"),
            &Redactions::default(),
        );
        assert!(trace.groups[0].hung);
        assert!(render(&trace).contains("step 1: term  ✗ HUNG"));
    }

    #[test]
    fn redactions_replace_ports_run_folders_the_pid_and_the_executable_only() {
        let r = Redactions {
            run_dir: "/tmp/tw-abc123".to_owned(),
            pid: Some(4242),
        };
        assert_eq!(r.apply("tcp://127.0.0.1:40123"), "tcp://127.0.0.1:<port>");
        assert_eq!(r.apply("tcp://127.0.0.1:*"), "tcp://127.0.0.1:*");
        assert_eq!(
            r.apply("ipc:///tmp/tw-abc123/sub-bind"),
            "ipc://<run-dir>/sub-bind"
        );
        assert_eq!(r.apply("pid 4242, not 142420"), "pid <pid>, not 142420");
        assert_eq!(r.apply("inproc://bus-frontend"), "inproc://bus-frontend");
        let exe = std::env::current_exe().expect("the test binary");
        assert_eq!(
            r.apply(&format!("{} proxy", exe.display())),
            "<termwatch> proxy"
        );
    }
}
