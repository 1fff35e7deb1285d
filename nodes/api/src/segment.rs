//! Our own shared-memory segments for zenoh: System V segments that are
//! never locked in RAM, cut into equal slots.
//!
//! zenoh's POSIX backend `mlock`s every segment it creates or maps, so an
//! ordinary user (Debian's default `ulimit -l` is 8 MiB) could not stream one
//! 1080p pool. zenoh's SHM API takes other backends: a provider backend
//! allocates chunks in segments of its own, and a client registered with the
//! session maps them in receivers by (protocol, segment id, chunk id).
//!
//! System V rather than POSIX or memfd segments because:
//! - nothing locks them, and they are not files: `ulimit -f` (RLIMIT_FSIZE)
//!   does not apply to them, so a small file size limit meant for the
//!   recording does not kill nodes with SIGXFSZ;
//! - the segment id the kernel gives is a 32-bit integer, which is what zenoh
//!   carries to receivers, and any process of the same user can attach by it;
//! - a segment is marked for removal right after it is made: the kernel frees
//!   it when its last user detaches, so a crash never leaves one behind.
//!   (Linux lets processes attach to a segment so marked while it lives.)
//!
//! Pools hand out fixed-size slots (see [`crate::pool`]): no fragmentation,
//! and the chunk id is the slot's byte offset.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use zenoh::shm::{
    AllocatedChunk, ChunkAllocResult, ChunkDescriptor, ChunkID, MemoryLayout, ProtocolID,
    PtrInSegment, SegmentID, ShmClient, ShmClientStorage, ShmProviderBackend, ShmSegment,
    WithProtocolID, ZAllocError, ZLayoutError,
};

/// Identifies our segments to zenoh ("mgsv"); zenoh's POSIX protocol is 0.
pub const PROTOCOL_ID: ProtocolID = 0x6d67_7376;

/// Slots (and so every buffer) start on this boundary: 64 bytes lets swscale
/// and the encoders take their SIMD paths.
pub const SLOT_ALIGN: usize = 64;

/// Readable bytes after the last slot. swscale's SIMD pixel readers load
/// whole vectors past a picture's last pixel (FFmpeg pads its own buffers
/// for this): past a slot that is harmless, the next slot is mapped, but
/// past the segment's end it faults. A 1280×720 RGB24 frame is exactly 675
/// pages, so with no slack the pool's last slot ended on the mapping's end
/// and normalize crashed whenever a backlog put a frame there.
pub const READ_SLACK: usize = 4096;

/// One attached System V segment.
#[derive(Debug)]
pub struct Segment {
    id: i32,
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is shared memory valid until drop; who writes where is
// governed by zenoh's buffer ownership, not by this handle.
unsafe impl Send for Segment {}
unsafe impl Sync for Segment {}

impl Segment {
    /// Creates a segment of `len` bytes readable and writable by this user only.
    pub fn create(len: usize) -> std::io::Result<Segment> {
        // SAFETY: plain syscalls; the result is checked.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let attached = Segment::attach(id);
        // Freed by the kernel once the last process detaches (crash or not);
        // attaching by id keeps working until then.
        // SAFETY: removing the segment we just made; a null buffer is allowed for IPC_RMID.
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        let mut segment = attached?;
        segment.len = len;
        Ok(segment)
    }

    /// Attaches the segment `id` made by another process of this user.
    pub fn attach(id: i32) -> std::io::Result<Segment> {
        // SAFETY: shmat maps the segment where the kernel chooses; checked below.
        let base = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if base as isize == -1 {
            return Err(std::io::Error::last_os_error());
        }
        let mut stat: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT fills the struct we own.
        let len = if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut stat) } == 0 {
            stat.shm_segsz
        } else {
            0
        };
        Ok(Segment {
            id,
            base: base.cast(),
            len,
        })
    }

    pub fn id(&self) -> i32 {
        self.id
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn at(&self, offset: usize) -> *mut u8 {
        // SAFETY: callers pass offsets of slots inside the segment.
        unsafe { self.base.add(offset) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: detaching the mapping made by shmat in this handle.
        unsafe { libc::shmdt(self.base.cast()) };
    }
}

/// A provider backend handing out `slot`-byte chunks of one segment.
#[derive(Debug)]
pub struct SlotBackend {
    segment: Arc<Segment>,
    slot: usize,
    /// Byte offsets of the free slots.
    free: Mutex<Vec<u32>>,
    slots: usize,
}

impl SlotBackend {
    /// A segment of `slots` slots of at least `slot_len` bytes each.
    pub fn new(slot_len: usize, slots: usize) -> std::io::Result<SlotBackend> {
        let slot = slot_len.max(1).div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
        let len = slot * slots + READ_SLACK;
        if len > u32::MAX as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a pool of {slots} × {slot} bytes exceeds 4 GiB"),
            ));
        }
        let segment = Arc::new(Segment::create(len)?);
        // Handed out lowest offset first (popped from the end).
        let free = (0..slots).rev().map(|i| (i * slot) as u32).collect();
        Ok(SlotBackend {
            segment,
            slot,
            free: Mutex::new(free),
            slots,
        })
    }

    /// Bytes of each slot.
    pub fn slot_len(&self) -> usize {
        self.slot
    }

    /// Bytes of the whole segment.
    pub fn capacity(&self) -> usize {
        self.slot * self.slots
    }
}

impl WithProtocolID for SlotBackend {
    fn id(&self) -> ProtocolID {
        PROTOCOL_ID
    }
}

impl ShmProviderBackend for SlotBackend {
    fn alloc(&self, layout: &MemoryLayout) -> ChunkAllocResult {
        if layout.size().get() > self.slot {
            return Err(ZAllocError::OutOfMemory);
        }
        let offset = self
            .free
            .lock()
            .unwrap()
            .pop()
            .ok_or(ZAllocError::OutOfMemory)?;
        let len = NonZeroUsize::new(self.slot).expect("slots are never empty");
        Ok(AllocatedChunk::new(
            ChunkDescriptor::new(self.segment.id() as SegmentID, offset, len),
            PtrInSegment::new(self.segment.at(offset as usize), self.segment.clone()),
        ))
    }

    fn free(&self, chunk: &ChunkDescriptor) {
        self.free.lock().unwrap().push(chunk.chunk);
    }

    fn defragment(&self) -> usize {
        0
    }

    fn available(&self) -> usize {
        self.free.lock().unwrap().len() * self.slot
    }

    fn layout_for(&self, layout: MemoryLayout) -> Result<MemoryLayout, ZLayoutError> {
        let align = layout.alignment().get_alignment_value().get();
        if align > SLOT_ALIGN || layout.size().get() > self.slot {
            return Err(ZLayoutError::ProviderIncompatibleLayout);
        }
        Ok(layout)
    }
}

/// Maps our segments in receivers.
#[derive(Debug)]
pub struct SlotClient;

impl WithProtocolID for SlotClient {
    fn id(&self) -> ProtocolID {
        PROTOCOL_ID
    }
}

impl ShmClient for SlotClient {
    fn attach(&self, segment: SegmentID) -> zenoh::Result<Arc<dyn ShmSegment>> {
        let attached = Segment::attach(segment as i32).map_err(|e| {
            format!(
                "cannot attach System V shared-memory segment {segment}: {e} (its sender \
                 may have exited, or runs as another user)"
            )
        })?;
        Ok(Arc::new(AttachedSegment(Arc::new(attached))))
    }
}

/// A segment as a receiver sees it.
#[derive(Debug)]
struct AttachedSegment(Arc<Segment>);

impl ShmSegment for AttachedSegment {
    fn map(&self, chunk: ChunkID) -> zenoh::Result<*mut u8> {
        if chunk as usize >= self.0.len() {
            return Err(format!(
                "chunk {chunk} is outside segment {} ({} bytes)",
                self.0.id(),
                self.0.len()
            )
            .into());
        }
        Ok(self.0.at(chunk as usize))
    }
}

/// The clients a session needs to read every buffer a node may receive:
/// ours, and zenoh's POSIX one (for anything else that uses it).
pub fn client_storage() -> Arc<ShmClientStorage> {
    Arc::new(
        ShmClientStorage::builder()
            .with_default_client_set()
            .with_client(Arc::new(SlotClient))
            .expect("our protocol id differs from zenoh's")
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use zenoh::shm::AllocAlignment;

    /// zenoh takes sizes in whole alignment units, as the pool asks.
    fn layout(len: usize) -> MemoryLayout {
        let rounded = len.div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
        MemoryLayout::new(rounded, AllocAlignment::new(6).unwrap()).unwrap()
    }

    #[test]
    fn the_last_slot_of_a_page_sized_pool_may_be_read_past_its_end() {
        let page = 4096;
        let backend = SlotBackend::new(3 * page, 2).unwrap();
        let chunks: Vec<_> = (0..2)
            .map(|_| backend.alloc(&layout(3 * page)).unwrap())
            .collect();
        let last = chunks.iter().max_by_key(|c| c.descriptor.chunk).unwrap();
        let start = last.data.ptr();
        // What a SIMD reader does past the last pixel: without the slack
        // this read faults (the test process dies).
        let past: u64 = (0..READ_SLACK)
            .map(|i| unsafe { std::ptr::read_volatile(start.add(3 * page + i)) } as u64)
            .sum();
        assert_eq!(past, 0, "fresh shared memory reads as zeros");
    }

    #[test]
    fn slots_are_handed_out_once_and_come_back() {
        let backend = SlotBackend::new(1000, 3).unwrap();
        assert_eq!(backend.slot_len(), 1024);
        let chunks: Vec<_> = (0..3)
            .map(|_| backend.alloc(&layout(900)).unwrap())
            .collect();
        assert!(backend.alloc(&layout(10)).is_err(), "only three slots");
        let mut offsets: Vec<u32> = chunks.iter().map(|c| c.descriptor.chunk).collect();
        offsets.sort();
        assert_eq!(offsets, [0, 1024, 2048]);
        backend.free(&chunks[1].descriptor);
        assert_eq!(backend.available(), 1024);
        assert_eq!(backend.alloc(&layout(5)).unwrap().descriptor.chunk, 1024);
        assert!(backend.alloc(&layout(2000)).is_err(), "larger than a slot");
    }

    #[test]
    fn a_receiver_attaches_by_id_and_sees_the_bytes() {
        let backend = SlotBackend::new(64, 2).unwrap();
        let chunk = backend.alloc(&layout(64)).unwrap();
        let mut data = chunk.data.clone();
        // SAFETY: the chunk is ours and 64 bytes long.
        unsafe { std::ptr::write_bytes(data.ptr_mut(), 0xAB, 64) };
        let seen = SlotClient.attach(chunk.descriptor.segment).unwrap();
        let ptr = seen.map(chunk.descriptor.chunk).unwrap();
        // SAFETY: mapped above, 64 bytes.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, 64) };
        assert!(bytes.iter().all(|b| *b == 0xAB));
        assert!(seen.map(1 << 20).is_err(), "outside the segment");
    }

    #[test]
    fn a_segment_is_gone_once_its_last_user_detaches() {
        let segment = Segment::create(4096).unwrap();
        let id = segment.id();
        drop(segment);
        assert!(Segment::attach(id).is_err());
    }
}
