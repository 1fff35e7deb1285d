//! What one stream sends before the other has begun: held, up to a span of
//! capture time, because T0 (the later start) is not known yet.

use std::collections::VecDeque;

pub struct Hold<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> Hold<T> {
    pub fn new() -> Self {
        Hold {
            items: VecDeque::new(),
        }
    }

    /// Holds an item captured at `capture_ns`; drops the oldest while the
    /// held span exceeds `limit_ns` (the newest is always kept). Returns how
    /// many were dropped.
    pub fn push(&mut self, capture_ns: u64, item: T, limit_ns: u64) -> u64 {
        self.items.push_back((capture_ns, item));
        let newest = capture_ns;
        let mut dropped = 0;
        while self.items.len() > 1 && newest.saturating_sub(self.items[0].0) > limit_ns {
            self.items.pop_front();
            dropped += 1;
        }
        dropped
    }

    /// Capture time of the oldest item held.
    pub fn first_capture(&self) -> Option<u64> {
        self.items.front().map(|i| i.0)
    }

    /// The oldest item held.
    pub fn first(&self) -> Option<&T> {
        self.items.front().map(|i| &i.1)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front().map(|i| i.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_oldest_beyond_the_span() {
        let mut h = Hold::new();
        assert_eq!(h.push(100, 'a', 50), 0);
        assert_eq!(h.push(140, 'b', 50), 0);
        assert_eq!(h.push(160, 'c', 50), 1);
        assert_eq!(h.first_capture(), Some(140));
        // A zero span still keeps the newest.
        assert_eq!(h.push(300, 'd', 0), 2);
        assert_eq!(h.pop(), Some('d'));
        assert!(h.is_empty());
    }
}
