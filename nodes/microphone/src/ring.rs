//! A lock-free single-producer single-consumer ring of `Copy` items, allocated
//! once. The capture callback (a real-time thread) writes into it without
//! locks or allocation; the node thread reads from it.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Shared<T> {
    buf: Box<[UnsafeCell<T>]>,
    /// Items ever written / read; indexes are these modulo the capacity.
    written: AtomicUsize,
    read: AtomicUsize,
}

// SAFETY: the producer only writes slots the consumer has released and the
// consumer only reads slots the producer has published (acquire/release on
// the counters); each side is owned by one thread.
unsafe impl<T: Send> Sync for Shared<T> {}

pub struct Producer<T> {
    shared: Arc<Shared<T>>,
}

pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
}

/// A ring holding up to `capacity` items.
pub fn ring<T: Copy + Default>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let buf = (0..capacity.max(1))
        .map(|_| UnsafeCell::new(T::default()))
        .collect();
    let shared = Arc::new(Shared {
        buf,
        written: AtomicUsize::new(0),
        read: AtomicUsize::new(0),
    });
    (
        Producer {
            shared: shared.clone(),
        },
        Consumer { shared },
    )
}

impl<T: Copy> Producer<T> {
    /// Room left, in items.
    pub fn free(&self) -> usize {
        let s = &self.shared;
        s.buf.len()
            - s.written
                .load(Ordering::Relaxed)
                .wrapping_sub(s.read.load(Ordering::Acquire))
    }

    /// Writes all of `items`, or nothing when they do not fit (returns false).
    pub fn push(&mut self, items: &[T]) -> bool {
        if items.len() > self.free() {
            return false;
        }
        let s = &self.shared;
        let start = s.written.load(Ordering::Relaxed);
        let (at, cap) = (start % s.buf.len(), s.buf.len());
        let first = items.len().min(cap - at);
        // SAFETY: these slots are free (checked above) and only we write them;
        // UnsafeCell<T> has T's layout, so the slots are a plain [T].
        unsafe {
            let base = UnsafeCell::raw_get(s.buf.as_ptr());
            std::ptr::copy_nonoverlapping(items.as_ptr(), base.add(at), first);
            std::ptr::copy_nonoverlapping(items.as_ptr().add(first), base, items.len() - first);
        }
        s.written
            .store(start.wrapping_add(items.len()), Ordering::Release);
        true
    }
}

impl<T: Copy> Consumer<T> {
    /// Items ready to read.
    pub fn available(&self) -> usize {
        let s = &self.shared;
        s.written
            .load(Ordering::Acquire)
            .wrapping_sub(s.read.load(Ordering::Relaxed))
    }

    /// Moves up to `out.len()` items into `out`; returns how many.
    pub fn pop(&mut self, out: &mut [T]) -> usize {
        let n = self.available().min(out.len());
        let s = &self.shared;
        let start = s.read.load(Ordering::Relaxed);
        let (at, cap) = (start % s.buf.len(), s.buf.len());
        let first = n.min(cap - at);
        // SAFETY: these slots were published by the producer and are not
        // reused until we advance `read`.
        unsafe {
            let base = UnsafeCell::raw_get(s.buf.as_ptr()) as *const T;
            std::ptr::copy_nonoverlapping(base.add(at), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), n - first);
        }
        s.read.store(start.wrapping_add(n), Ordering::Release);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_or_nothing_and_wraps() {
        let (mut p, mut c) = ring::<u8>(8);
        assert!(p.push(&[1, 2, 3, 4, 5]));
        assert!(!p.push(&[6, 7, 8, 9]));
        let mut out = [0u8; 4];
        assert_eq!(c.pop(&mut out), 4);
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(p.push(&[6, 7, 8, 9, 10, 11, 12]));
        let mut out = [0u8; 16];
        assert_eq!(c.pop(&mut out), 8);
        assert_eq!(&out[..8], &[5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn threads_see_every_item_in_order() {
        let (mut p, mut c) = ring::<u32>(64);
        let t = std::thread::spawn(move || {
            let mut next = 0u32;
            while next < 100_000 {
                let block = [next, next + 1, next + 2];
                if p.push(&block) {
                    next += 3;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u32;
        let mut out = [0u32; 10];
        while expected < 100_002 {
            let n = c.pop(&mut out);
            for v in &out[..n] {
                assert_eq!(*v, expected);
                expected += 1;
            }
            if n == 0 {
                std::thread::yield_now();
            }
        }
        t.join().unwrap();
    }
}
