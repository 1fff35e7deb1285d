//! One lock around creating shared-memory segments and zenoh's cleanup scans.
//!
//! zenoh removes every `/dev/shm/*.zenoh` segment that no process holds a
//! lock on, each time a process first uses shared memory and each time one
//! exits. A segment another process has just created but not yet locked
//! looks the same, and is removed under it; receivers then cannot map it
//! ("Unable to open POSIX shm segment", logged by zenoh only at debug level)
//! and drop every frame sent from it, and the graph stalls. With all nodes
//! of a graph starting at once, and five graphs side by side, that happened
//! in about one run of a hundred.
//!
//! Our processes therefore create their segments, and let zenoh scan, only
//! while holding one lock file: session open (zenoh creates a segment, then
//! scans), pool creation, a process's first allocation (which creates
//! zenoh's metadata segment), the runtime's own cleanup, and process exit
//! (zenoh scans again). A scan then never sees a segment one of them has half made.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Once;

/// Held while the lock is; released when dropped.
pub struct ShmLock {
    _file: Option<File>,
}

/// Waits for and takes the lock. Without a writable `/dev/shm` there is
/// nothing to guard and nothing is locked.
pub fn acquire() -> ShmLock {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    // Per user: zenoh's scans only touch segments their user may open.
    let path = format!("/dev/shm/mediagraph-{uid}.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()
        .filter(|f| {
            // SAFETY: flock on a descriptor we own; blocks until it is ours.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) == 0 }
        });
    ShmLock { _file: file }
}

/// Makes zenoh's cleanup at process exit run under the lock. Call after the
/// process's first use of shared memory (which registers zenoh's own exit
/// handler): exit handlers run last-registered first, so ours takes the lock
/// before zenoh scans, and keeps it until the process is gone.
pub fn hold_at_exit() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        extern "C" fn lock_for_good() {
            std::mem::forget(acquire());
        }
        // SAFETY: registering a plain function with no captured state.
        unsafe {
            libc::atexit(lock_for_good);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_holder_at_a_time() {
        let first = acquire();
        let taken = Arc::new(AtomicBool::new(false));
        let flag = taken.clone();
        // A second open file description, as another process would have.
        let waiter = std::thread::spawn(move || {
            let _second = acquire();
            flag.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!taken.load(Ordering::SeqCst), "taken while held");
        drop(first);
        waiter.join().unwrap();
        assert!(taken.load(Ordering::SeqCst));
    }
}
