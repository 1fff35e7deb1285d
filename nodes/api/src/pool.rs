//! Per-output shared-memory pools and the buffers they hand out.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use zenoh::shm::{
    AllocAlignment, GarbageCollect, OwnedShmBuf, ShmProvider, ShmProviderBuilder, ZShm, ZShmMut,
};
use zenoh::Wait;

use crate::retain::Holds;
use crate::segment::{SlotBackend, SLOT_ALIGN};
use crate::stats::OutputCounters;

/// Buffers are aligned to whole slots' alignment (see [`crate::segment`]).
const ALIGN_POW: u8 = SLOT_ALIGN.trailing_zeros() as u8;

/// A buffer to fill and send: shared memory when the transport uses it, else heap.
pub enum OutBuf {
    Shm(ZShmMut),
    Heap(Vec<u8>),
}

impl OutBuf {
    pub fn is_shm(&self) -> bool {
        matches!(self, OutBuf::Shm(_))
    }
}

impl Deref for OutBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            OutBuf::Shm(b) => b,
            OutBuf::Heap(v) => v,
        }
    }
}

impl DerefMut for OutBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            OutBuf::Shm(b) => b,
            OutBuf::Heap(v) => v,
        }
    }
}

/// A shared-memory buffer with several holders, e.g. a decoder that keeps a
/// picture as a reference while it is also sent. Whoever allocated it fills
/// it (through the pointer [`PoolHandle::try_alloc_shared`] returns) before
/// any holder reads it; after that nobody writes to it.
#[derive(Clone, Debug)]
pub struct SharedBuf(pub(crate) ZShm);

impl Deref for SharedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// An output's pool, usable from any thread: for code that fills buffers off
/// the node's own thread, such as a decoder's threads writing pictures
/// straight into shared memory. See [`crate::Node::pool_handle`].
#[derive(Clone)]
pub struct PoolHandle {
    pub(crate) pool: Arc<Pool>,
    pub(crate) counters: Arc<OutputCounters>,
}

impl PoolHandle {
    /// Buffers the pool holds at its largest payload.
    pub fn slots(&self) -> usize {
        self.pool.slots
    }

    /// The largest payload the pool was sized for.
    pub fn max_payload(&self) -> usize {
        self.pool.max_payload
    }

    /// A buffer of `len` bytes and its writable start, waiting up to `wait`
    /// for consumers to release one; `None` when none came free.
    pub fn try_alloc_shared(
        &self,
        len: usize,
        wait: Duration,
    ) -> Result<Option<(SharedBuf, *mut u8)>> {
        let Some((mut buf, waited)) = self.pool.alloc_within(len, Some(Instant::now() + wait))?
        else {
            return Ok(None);
        };
        if waited {
            self.counters.pool_waits.fetch_add(1, Ordering::Relaxed);
        }
        let start = buf.as_mut_ptr();
        Ok(Some((SharedBuf(ZShm::from(buf)), start)))
    }
}

/// One output's pool: a fixed shared-memory segment of `slots` buffers of the
/// largest payload (sized from the consumers' queue depth), so steady
/// streaming never allocates. Not locked in RAM: see [`crate::segment`].
pub(crate) struct Pool {
    provider: ShmProvider<SlotBackend>,
    pub capacity: usize,
    pub max_payload: usize,
    pub slots: usize,
    /// Free bytes when nothing is allocated.
    all_free: usize,
    /// Its node's holds, and the departures it hears of.
    holds: Arc<Holds>,
    /// The departures this pool has collected after.
    departures_seen: std::sync::Mutex<u64>,
}

impl Pool {
    /// `what` names the node and output for error messages.
    pub fn new(what: &str, max_payload: usize, slots: usize, holds: Arc<Holds>) -> Result<Pool> {
        let backend = SlotBackend::new(max_payload, slots).with_context(|| {
            format!(
                "{what}: cannot create a shared-memory pool of {slots} × {max_payload} bytes \
                 (System V shared memory: see `sysctl kernel.shmmax kernel.shmall kernel.shmmni`)"
            )
        })?;
        let capacity = backend.capacity();
        let provider = ShmProviderBuilder::backend(backend).wait();
        let all_free = provider.available();
        Ok(Pool {
            provider,
            capacity,
            max_payload,
            slots,
            all_free,
            holds,
            departures_seen: std::sync::Mutex::new(0),
        })
    }

    /// Waits until receivers have released every buffer of this pool. A buffer
    /// still queued in a receiver that has not mapped our segment yet becomes
    /// unreadable once this process exits, so a node ending its streams waits here.
    /// What a consumer that went away during the run held is taken back
    /// (it never releases it: a restarted consumer would otherwise make
    /// every finish wait its whole timeout).
    pub fn wait_released(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.reclaim_from_the_dead();
            self.provider.garbage_collect();
            if self.provider.available() >= self.all_free {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// A buffer of `len` bytes, or `None` when every buffer is in use.
    fn try_alloc(&self, len: usize) -> Result<Option<ZShmMut>> {
        let (rounded, layout) = Self::layout(len);
        let Ok(mut buf) = first_under_lock(|| {
            self.provider
                .alloc(layout)
                .with_policy::<GarbageCollect>()
                .wait()
        }) else {
            return Ok(None);
        };
        Self::cut(&mut buf, len, rounded)?;
        Ok(Some(buf))
    }

    /// zenoh takes sizes in whole alignment units; buffers are then cut to
    /// the exact length so receivers see the true payload size.
    fn layout(len: usize) -> (usize, (usize, AllocAlignment)) {
        let rounded = len.max(1).div_ceil(1 << ALIGN_POW) << ALIGN_POW;
        let alignment = AllocAlignment::new(ALIGN_POW).expect("valid alignment");
        (rounded, (rounded, alignment))
    }

    fn cut(buf: &mut ZShmMut, len: usize, rounded: usize) -> Result<()> {
        if len != rounded {
            let exact =
                std::num::NonZeroUsize::new(len).expect("empty payloads never come from the pool");
            buf.try_resize(exact)
                .ok_or_else(|| anyhow!("cannot cut a shared-memory buffer to {len} bytes"))?;
        }
        Ok(())
    }

    /// A buffer of `len` bytes; waits for consumers to release one when the pool
    /// is exhausted. Returns whether it had to wait.
    pub fn alloc(&self, len: usize) -> Result<(ZShmMut, bool)> {
        Ok(self
            .alloc_within(len, None)?
            .expect("waits without a deadline"))
    }

    /// A buffer of `len` bytes and whether it had to wait for one, waiting
    /// until `deadline` (`None`: as long as it takes).
    fn alloc_within(
        &self,
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<Option<(ZShmMut, bool)>> {
        let mut waited = false;
        loop {
            if let Some(buf) = self.try_alloc(len)? {
                return Ok(Some((buf, waited)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            waited = true;
            self.reclaim_from_the_dead();
            // As zenoh's own blocking allocation does.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Takes back the buffers a node that died was holding. A process killed
    /// while holding buffers never releases them (their count stays up), and
    /// the pool would stay exhausted forever: its sender stalls, e.g. a camera
    /// whose encoder was killed and restarted. Once a holder is gone, zenoh's
    /// watchdog marks its buffers invalid within ~200 ms (nobody confirms
    /// them); those are collected, but only when the pool has run out or its
    /// node finishes, after a node of the graph went away (a live node
    /// confirms what it holds, and one stopped that long is the supervisor's
    /// to kill).
    fn reclaim_from_the_dead(&self) {
        let Some((departures, at)) = self.holds.departures() else {
            return;
        };
        // Each pool of the node collects once per departure.
        let mut seen = self.departures_seen.lock().unwrap();
        if *seen == departures || at.elapsed() < WATCHDOG_EXPIRY {
            return;
        }
        *seen = departures;
        drop(seen);
        let before = self.provider.available();
        // SAFETY: only buffers whose watchdog expired are taken back: their
        // holders stopped confirming them, and the one that died never reads again.
        unsafe { self.provider.garbage_collect_unsafe() };
        let freed = self.provider.available().saturating_sub(before);
        if freed > 0 {
            tracing::warn!(
                "took back {} shared-memory buffers held by a node that went away",
                freed / (self.capacity / self.slots).max(1)
            );
        }
    }
}

/// How long after its holder died a buffer's zenoh watchdog has surely
/// expired: two of the validator's 100 ms rounds, and some.
const WATCHDOG_EXPIRY: Duration = Duration::from_millis(300);

/// Whether this process has allocated shared memory before.
static ALLOCATED: AtomicBool = AtomicBool::new(false);

/// Runs a process's first allocation under the segment lock: it creates
/// zenoh's metadata segment (see [`crate::shm_lock`]). Later ones need not.
fn first_under_lock<T>(alloc: impl FnOnce() -> T) -> T {
    if ALLOCATED.load(Ordering::Acquire) {
        return alloc();
    }
    let _lock = crate::shm_lock::acquire();
    let result = alloc();
    ALLOCATED.store(true, Ordering::Release);
    result
}

// Decoder threads allocate through a PoolHandle concurrently.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<PoolHandle>();
    shareable::<SharedBuf>();
};
