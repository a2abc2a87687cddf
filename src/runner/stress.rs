//! `run --stress`: busy threads in the parent, one per core, spinning beside the scenarios so
//! that their threads get scheduled late and timing-dependent hangs show up more often. They
//! stop when the [`Stress`] guard is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Spinning threads; dropping this stops and joins them.
pub struct Stress {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Stress {
    /// Starts `threads` spinning threads (a thread that cannot start is left out).
    pub fn start(threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .filter_map(|i| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name(format!("stress-{i}"))
                    .spawn(move || spin(&stop))
                    .ok()
            })
            .collect();
        Stress { stop, threads }
    }
}

fn spin(stop: &AtomicBool) {
    let mut x: u64 = 1;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1024 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

impl Drop for Stress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_start_and_stop_when_dropped() {
        let stress = Stress::start(2);
        assert_eq!(stress.threads.len(), 2);
        drop(stress);
    }
}
