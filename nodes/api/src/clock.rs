//! The capture clock: every capture stamps its frames with this clock.
//!
//! It is the host's `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every
//! process of a machine, never stepped by NTP, so capture times of video and
//! audio taken in different node processes compare directly.

/// Nanoseconds of the host's monotonic clock.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until the monotonic clock reaches `deadline_ns` (no-op if past).
pub fn sleep_until_ns(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        std::thread::sleep(std::time::Duration::from_nanos(deadline_ns - now));
    }
}
