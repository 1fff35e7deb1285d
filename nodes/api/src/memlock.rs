//! zenoh locks its shared-memory segments in RAM (mlock). When the process's
//! RLIMIT_MEMLOCK is smaller than the segments, the sender fails to allocate and,
//! worse, a receiver silently drops what it cannot map. So both sides check
//! the limit up front and fail with a message that names the fix.

/// The memlock budget of this process: `None` when unlimited or when the process
/// may lock any amount (root / CAP_IPC_LOCK).
pub fn limit_bytes() -> Option<u64> {
    if has_ipc_lock_capability() {
        return None;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(lim.rlim_cur)
    }
}

/// Raises the soft memlock limit to the hard limit (children inherit it).
pub fn raise_to_hard_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on structs we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
        }
    }
}

/// CAP_IPC_LOCK (bit 14) in the effective capability set lifts the limit.
fn has_ipc_lock_capability() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 14) != 0)
}

/// The error text when `needed` bytes of shared memory exceed the limit.
pub fn too_low_message(what: &str, needed: u64, limit: u64) -> String {
    let kib = needed.div_ceil(1024);
    format!(
        "{what} needs {} of locked shared memory but the memlock limit is {} \
         (`ulimit -l` {}); raise it, e.g. `ulimit -l {}` (or `unlimited`) in the shell that \
         starts `runtime`, or a `memlock` entry in /etc/security/limits.conf, or lower the \
         resolution or queue sizes",
        human(needed),
        human(limit),
        limit / 1024,
        kib.next_power_of_two().max(kib),
    )
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_names_the_fix() {
        let m = super::too_low_message("node `camera`", 50 << 20, 8 << 20);
        assert!(m.contains("ulimit -l"), "{m}");
        assert!(m.contains("50.0 MiB"), "{m}");
        assert!(m.contains("8.0 MiB"), "{m}");
    }
}
