//! Per-thread spares: emptied buffers kept for the next request instead
//! of freed and allocated again (header maps, output buffers), bounded so
//! that a burst does not leave its memory behind.

use std::cell::RefCell;
use std::thread::LocalKey;

/// At most `max` spare `T`s.
pub(crate) struct Spares<T> {
    items: RefCell<Vec<T>>,
    max: usize,
}

impl<T> Spares<T> {
    pub(crate) const fn new(max: usize) -> Spares<T> {
        Spares {
            items: RefCell::new(Vec::new()),
            max,
        }
    }
}

/// A spare from `pool`, if it has one (`None` too while the thread exits).
pub(crate) fn take<T: 'static>(pool: &'static LocalKey<Spares<T>>) -> Option<T> {
    pool.try_with(|p| p.items.borrow_mut().pop()).ok().flatten()
}

/// Keeps `item` (already emptied by the caller) in `pool` unless it is
/// full; then, or while the thread exits, it is dropped, outside the
/// pool's borrow.
pub(crate) fn put<T: 'static>(pool: &'static LocalKey<Spares<T>>, item: T) {
    let refused = pool
        .try_with(|p| {
            let mut items = p.items.borrow_mut();
            if items.len() < p.max {
                items.push(item);
                None
            } else {
                Some(item)
            }
        })
        .ok()
        .flatten();
    drop(refused);
}
