//! Two pieces of work at once, for a stage with a core to spare.
//!
//! Contract: [`both`] runs `helper` on a second thread and `here` on the
//! calling one, and returns when both are done; when no thread can be
//! started it runs `helper` here too, after `here`, so the work gets done
//! either way. A panic in `helper` is the caller's.

use std::thread;

/// See the module's contract.
pub fn both(helper: impl FnOnce() + Send, here: impl FnOnce()) {
    // The helper is lent to the thread, so that it is still here to run
    // when the thread cannot be started.
    let mut helper = Some(helper);
    let started = thread::scope(|s| {
        let slot = &mut helper;
        let spawned = thread::Builder::new().spawn_scoped(s, move || {
            if let Some(work) = slot.take() {
                work();
            }
        });
        here();
        match spawned.map(|h| h.join()) {
            Ok(Ok(())) => true,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => false,
        }
    });
    if !started {
        if let Some(work) = helper.take() {
            work();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_both_pieces() {
        let (mut a, mut b) = (0, 0);
        both(|| a = 1, || b = 2);
        assert_eq!((a, b), (1, 2));
    }
}
