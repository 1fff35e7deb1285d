//! Per-output shared-memory pools and the buffers they hand out.

use std::ops::{Deref, DerefMut};

use anyhow::{anyhow, Context, Result};
use zenoh::shm::{
    AllocAlignment, BlockOn, GarbageCollect, OwnedShmBuf, PosixShmProviderBackend, ShmProvider,
    ShmProviderBuilder, ZShmMut,
};
use zenoh::Wait;

use crate::memlock;

/// 64-byte alignment lets swscale and the encoders take their SIMD paths.
const ALIGN_POW: u8 = 6;

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

/// One output's pool: a fixed shared-memory segment sized from the largest
/// payload × the consumers' queue depth, so steady streaming never allocates.
pub(crate) struct Pool {
    provider: ShmProvider<PosixShmProviderBackend>,
    pub capacity: usize,
    pub max_payload: usize,
    /// Free bytes when nothing is allocated.
    all_free: usize,
}

impl Pool {
    /// `what` names the node and output for error messages.
    pub fn new(what: &str, max_payload: usize, slots: usize) -> Result<Pool> {
        let per_slot = max_payload.div_ceil(1 << ALIGN_POW) << ALIGN_POW;
        // zenoh rounds segments to whole pages; leave room for that.
        let capacity = (per_slot * slots).div_ceil(4096) * 4096;
        if let Some(limit) = memlock::limit_bytes() {
            if capacity as u64 > limit {
                return Err(anyhow!(memlock::too_low_message(
                    what,
                    capacity as u64,
                    limit
                )));
            }
        }
        let alignment = AllocAlignment::new(ALIGN_POW).expect("valid alignment");
        let backend = PosixShmProviderBackend::builder((capacity, alignment))
            .wait()
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| {
                format!(
                    "{what}: cannot create a {capacity}-byte shared-memory pool in /dev/shm \
                     (if the memlock limit is low, raise `ulimit -l`)"
                )
            })?;
        let provider = ShmProviderBuilder::backend(backend).wait();
        let all_free = provider.available();
        Ok(Pool {
            provider,
            capacity,
            max_payload,
            all_free,
        })
    }

    /// Waits until receivers have released every buffer of this pool. A buffer
    /// still queued in a receiver that has not mapped our segment yet becomes
    /// unreadable once this process exits, so a node ending its streams waits here.
    pub fn wait_released(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
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

    /// A buffer of `len` bytes; waits for consumers to release one when the pool
    /// is exhausted. Returns whether it had to wait.
    pub fn alloc(&self, len: usize) -> Result<(ZShmMut, bool)> {
        // zenoh takes sizes in whole alignment units; the buffer is then cut
        // to the exact length so receivers see the true payload size.
        let rounded = len.max(1).div_ceil(1 << ALIGN_POW) << ALIGN_POW;
        let layout = (
            rounded,
            AllocAlignment::new(ALIGN_POW).expect("valid alignment"),
        );
        let (mut buf, waited) = match self
            .provider
            .alloc(layout)
            .with_policy::<GarbageCollect>()
            .wait()
        {
            Ok(buf) => (buf, false),
            Err(_) => (
                self.provider
                    .alloc(layout)
                    .with_policy::<BlockOn<GarbageCollect>>()
                    .wait()
                    .map_err(|e| {
                        anyhow!("shared-memory allocation of {len} bytes failed: {e:?}")
                    })?,
                true,
            ),
        };
        if len != rounded {
            let exact =
                std::num::NonZeroUsize::new(len).expect("empty payloads never come from the pool");
            buf.try_resize(exact)
                .ok_or_else(|| anyhow!("cannot cut a shared-memory buffer to {len} bytes"))?;
        }
        Ok((buf, waited))
    }
}
