//! The `tracing` side of lifecycle traces: a [`tracing_subscriber::Layer`] that turns events of
//! target [`LIFECYCLE_TARGET`] into [`LifecycleEvent`]s and hands each one to a sink as it
//! happens (the child's sink streams it to the parent), and the process's subscriber, which
//! keeps the harness's own logs (stderr, `TERMWATCH_LOG`) apart from the trace.
//!
//! Every event is stamped with the thread that recorded it and with its [`Phase`]: the phase
//! or step the main thread is running ([`enter_phase`]), unless the recording thread declared
//! that what it does now was caused by an earlier step ([`caused_by`]). Nothing is buffered:
//! memory does not grow with the length of a run.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use super::{EventFields, EventKind, LIFECYCLE_TARGET, LifecycleEvent, Phase};

/// The phase the main thread is running, encoded by [`encode`].
static CURRENT_PHASE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The step that caused what the current thread is doing, when it is not the current one.
    static CAUSE: Cell<Option<Phase>> = const { Cell::new(None) };
}

fn encode(phase: Phase) -> u64 {
    match phase {
        Phase::Setup => 0,
        Phase::Traffic => 1,
        Phase::Step(i) => i as u64 + 2,
        Phase::End => u64::MAX - 1,
        Phase::Monitor => u64::MAX,
    }
}

fn decode(code: u64) -> Phase {
    match code {
        0 => Phase::Setup,
        1 => Phase::Traffic,
        u64::MAX => Phase::Monitor,
        c if c == u64::MAX - 1 => Phase::End,
        i => Phase::Step((i - 2) as usize),
    }
}

/// Records that the main thread now runs `phase`.
pub fn enter_phase(phase: Phase) {
    CURRENT_PHASE.store(encode(phase), Ordering::Release);
}

/// The phase the main thread runs now.
pub fn current_phase() -> Phase {
    decode(CURRENT_PHASE.load(Ordering::Acquire))
}

/// Until dropped, events of the current thread belong to `phase` (the step that caused them).
#[must_use = "the cause holds only while the guard lives"]
pub struct CauseGuard {
    previous: Option<Phase>,
}

/// Attributes the current thread's events to `phase` until the guard is dropped.
pub fn caused_by(phase: Phase) -> CauseGuard {
    CauseGuard {
        previous: CAUSE.with(|c| c.replace(Some(phase))),
    }
}

impl Drop for CauseGuard {
    fn drop(&mut self) {
        CAUSE.with(|c| c.set(self.previous));
    }
}

/// Receives each event as it is recorded, in `seq` order.
pub type Sink = Box<dyn Fn(&LifecycleEvent) + Send + Sync>;

/// Turns lifecycle events into data and passes them to a [`Sink`].
pub struct LifecycleLayer {
    started: Instant,
    next_seq: Mutex<u64>,
    sink: Sink,
}

impl LifecycleLayer {
    /// A layer whose clock starts now.
    pub fn new(sink: Sink) -> Self {
        LifecycleLayer {
            started: Instant::now(),
            next_seq: Mutex::new(0),
            sink,
        }
    }
}

/// Collects an event's fields: `kind` and `node` apart, the rest as JSON values.
#[derive(Default)]
struct FieldCollector {
    kind: Option<String>,
    node: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl FieldCollector {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        match (field.name(), value) {
            ("kind", serde_json::Value::String(s)) => self.kind = Some(s),
            ("node", serde_json::Value::String(s)) => self.node = Some(s),
            (name, value) => {
                self.fields.insert(name.to_owned(), value);
            }
        }
    }
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S: tracing::Subscriber> Layer<S> for LifecycleLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut collected = FieldCollector::default();
        event.record(&mut collected);
        // `lifecycle!` always writes a kind by its name: anything else is a bug of the harness,
        // reported (through the panic hook) rather than dropped.
        let kind: EventKind = match collected.kind.as_deref().map(str::parse) {
            Some(Ok(kind)) => kind,
            Some(Err(e)) => panic!("lifecycle event: {e}"),
            None => panic!("lifecycle event without a kind"),
        };
        let fields: EventFields =
            serde_json::from_value(serde_json::Value::Object(collected.fields))
                .unwrap_or_else(|e| panic!("lifecycle event `{kind}`: {e}"));
        let phase = CAUSE.with(Cell::get).unwrap_or_else(current_phase);
        let thread = std::thread::current();
        let mut next_seq = self
            .next_seq
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recorded = LifecycleEvent {
            seq: *next_seq,
            t_us: self
                .started
                .elapsed()
                .as_micros()
                .try_into()
                .unwrap_or(u64::MAX),
            thread: thread.name().unwrap_or("main").to_owned(),
            tid: nix::unistd::gettid().as_raw(),
            node: collected.node,
            phase,
            kind,
            fields,
        };
        *next_seq += 1;
        // Still under the lock, so the sink sees events in `seq` order.
        (self.sink)(&recorded);
    }
}

/// Installs the process's subscriber: the harness's own logs on stderr, filtered by the
/// `TERMWATCH_LOG` environment variable (default `warn`) and never containing lifecycle events;
/// and, in a scenario's process, the lifecycle layer, which sees only lifecycle events.
pub fn install_subscriber(lifecycle: Option<LifecycleLayer>) {
    let log_filter = EnvFilter::try_from_env("TERMWATCH_LOG").unwrap_or_else(|_| "warn".into());
    let not_lifecycle = filter_fn(|metadata| metadata.target() != LIFECYCLE_TARGET);
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(log_filter.and(not_lifecycle));
    let lifecycle = lifecycle.map(|layer| {
        layer.with_filter(filter_fn(|metadata| metadata.target() == LIFECYCLE_TARGET))
    });
    let _ = Registry::default().with(logs).with(lifecycle).try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn recorded(body: impl FnOnce()) -> Vec<LifecycleEvent> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink_events = Arc::clone(&events);
        let layer = LifecycleLayer::new(Box::new(move |e| {
            sink_events.lock().unwrap().push(e.clone());
        }))
        .with_filter(filter_fn(|m| m.target() == LIFECYCLE_TARGET));
        let subscriber = Registry::default().with(layer);
        tracing::subscriber::with_default(subscriber, body);
        Arc::try_unwrap(events).unwrap().into_inner().unwrap()
    }

    #[test]
    fn lifecycle_events_become_data_and_other_events_are_left_out() {
        let events = recorded(|| {
            crate::lifecycle!(
                EventKind::Bound,
                node = "bus",
                role = "frontend",
                endpoint = "tcp://127.0.0.1:5555"
            );
            tracing::info!(node = "bus", "a harness log line, not a lifecycle event");
            crate::lifecycle!(
                EventKind::MessagesCounted,
                node = "sub",
                sent = 0u64,
                received = 7u64
            );
        });
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].seq, 0);
        assert_eq!(events[0].kind, EventKind::Bound);
        assert_eq!(events[0].node.as_deref(), Some("bus"));
        assert_eq!(
            events[0].fields.endpoint.as_deref(),
            Some("tcp://127.0.0.1:5555")
        );
        assert_eq!(
            events[0].fields.role,
            Some(crate::trace::SocketRole::Frontend)
        );
        assert_eq!(events[1].seq, 1);
        assert_eq!(events[1].fields.received, Some(7));
    }

    #[test]
    fn a_cause_overrides_the_current_phase_until_its_guard_drops() {
        let events = recorded(|| {
            let guard = caused_by(Phase::Step(3));
            crate::lifecycle!(EventKind::EtermSeen, node = "bus");
            drop(guard);
            crate::lifecycle!(EventKind::ThreadExited, node = "bus");
        });
        assert_eq!(events[0].phase, Phase::Step(3));
        assert_eq!(events[1].phase, current_phase());
    }
}
