//! Two pieces of work at once, for a stage with a core to spare.
//!
//! Contract: [`both`] runs `helper` on a second thread and `here` on the
//! calling one, and returns when both are done; when no thread can be
//! started it runs `helper` here too, after `here`, so the work gets done
//! either way. A panic in `helper` is the caller's. [`map_in_order`] is
//! `items.map(f)` with each half on one of the two threads: the same
//! results in the same order.

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

/// `f` of every item, in the items' order; with `two_threads` the second
/// half is mapped on a second thread ([`both`]).
pub fn map_in_order<T: Send, U: Send>(
    mut items: Vec<T>,
    two_threads: bool,
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    if !two_threads || items.len() < 2 {
        return items.into_iter().map(f).collect();
    }
    let second = items.split_off(items.len() / 2);
    let (mut first_out, mut second_out) = (Vec::new(), Vec::new());
    let f = &f;
    both(
        || second_out = second.into_iter().map(f).collect(),
        || first_out = items.into_iter().map(f).collect(),
    );
    first_out.append(&mut second_out);
    first_out
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

    #[test]
    fn maps_in_order_on_one_or_two_threads() {
        let items: Vec<u32> = (0..1001).collect();
        let one = map_in_order(items.clone(), false, |i| i * 3);
        let two = map_in_order(items, true, |i| i * 3);
        assert_eq!(one, two);
        assert_eq!(two.len(), 1001);
        assert_eq!(two[1000], 3000);
        assert_eq!(map_in_order(vec![7], true, |i| i + 1), [8]);
    }
}
