//! A one-shot gate: node threads that send wait on it until the traffic phase opens it.

use std::sync::{Condvar, Mutex};

use super::lock;

/// A one-shot gate: node threads that send wait on it until the traffic phase opens it.
#[derive(Debug, Default)]
pub struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    /// Blocks until [`Latch::open`].
    pub fn wait(&self) {
        let mut open = lock(&self.open);
        while !*open {
            open = self
                .opened
                .wait(open)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Lets every waiter through.
    pub fn open(&self) {
        *lock(&self.open) = true;
        self.opened.notify_all();
    }
}
