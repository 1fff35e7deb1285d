//! Keeps every thread of a node at the priority that lets the graph's
//! transport run.
//!
//! zenoh's shared-memory watchdog threads confirm, every 50 ms, that a
//! process still holds the buffers it received; the process that allocated
//! them checks every 100 ms and marks any buffer left unconfirmed as invalid.
//! A receiver then drops it ("Buffer is invalidated", logged by zenoh at debug
//! level only). Those threads ask for the lowest real-time priority
//! (SCHED_FIFO 1), which puts them ahead of any ordinary busy thread.
//!
//! Some codec libraries make their worker threads real-time too when they
//! can: libsvtav1 run as root puts its encoder threads (and the thread that
//! opened the encoder) at SCHED_FIFO 99. On two cores those threads starve
//! every watchdog of the graph, and frames vanish under load. So a node
//! moves every thread above the watchdogs' priority back to the normal
//! scheduler: right after it opens a codec, and again on every stats tick.

use std::sync::atomic::{AtomicU64, Ordering};

/// The real-time priority zenoh's watchdog threads run at; threads above it
/// are set back to normal.
const TRANSPORT_PRIORITY: i32 = 1;

/// Threads set back to normal so far in this process.
static DEMOTED: AtomicU64 = AtomicU64::new(0);

/// Sets every thread of this process that runs at a real-time priority above
/// the transport's back to the normal scheduler; returns how many it moved.
pub fn demote_realtime_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut moved = 0;
    for tid in tasks
        .flatten()
        .filter_map(|t| t.file_name().to_str()?.parse::<i32>().ok())
    {
        // SAFETY: plain syscalls on a thread of this process; results checked.
        let policy = unsafe { libc::sched_getscheduler(tid) };
        if policy != libc::SCHED_FIFO && policy != libc::SCHED_RR {
            continue;
        }
        let mut param = libc::sched_param { sched_priority: 0 };
        if unsafe { libc::sched_getparam(tid, &mut param) } != 0
            || param.sched_priority <= TRANSPORT_PRIORITY
        {
            continue;
        }
        let normal = libc::sched_param { sched_priority: 0 };
        if unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &normal) } == 0 {
            moved += 1;
        }
    }
    if moved > 0 {
        let before = DEMOTED.fetch_add(moved as u64, Ordering::Relaxed);
        if before == 0 {
            tracing::warn!(
                "{moved} threads of this node ran at a real-time priority (a codec library \
                 does this when run as root); set back to normal so they cannot starve the \
                 transport's shared-memory watchdogs"
            );
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_above_the_transport_priority_is_set_back_to_normal() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let param = libc::sched_param { sched_priority: 50 };
            // SAFETY: changing this thread's own policy.
            let raised = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0;
            tx.send(raised).unwrap();
            stop_rx.recv().unwrap();
            // SAFETY: reading this thread's own policy.
            unsafe { libc::sched_getscheduler(0) }
        });
        let raised = rx.recv().unwrap();
        if !raised {
            // Not allowed to use real-time priorities here (no CAP_SYS_NICE):
            // then no library can either, and there is nothing to set back.
            stop_tx.send(()).unwrap();
            assert_eq!(worker.join().unwrap(), libc::SCHED_OTHER);
            return;
        }
        assert!(demote_realtime_threads() >= 1);
        stop_tx.send(()).unwrap();
        assert_eq!(worker.join().unwrap(), libc::SCHED_OTHER);
    }
}
