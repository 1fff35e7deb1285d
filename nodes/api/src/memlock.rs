//! zenoh locks its own shared-memory segments in RAM (mlock): the metadata
//! of the buffers a process allocates, and its links' handshake segments.
//! Our pools are not locked (see [`crate::segment`]). When the process's
//! RLIMIT_MEMLOCK is smaller than what zenoh locks, a receiver drops what it
//! cannot map, so the runtime checks the limit up front and fails with a
//! message that names the fix.

/// One zenoh metadata segment: 32768 buffer headers of 32 bytes and their
/// 8-byte watchdogs (zenoh-shm `MetadataSegment`), in whole pages.
pub const METADATA_SEGMENT_BYTES: u64 = (32768 * (32 + 8) as u64).div_ceil(4096) * 4096;

/// What every process with shared memory locks besides metadata: its links'
/// handshake segments (measured: 52 KiB in a node of the 1080p graph).
pub const LINK_SEGMENTS_BYTES: u64 = 64 * 1024;

/// Bytes zenoh locks in a process that maps `metadata_segments` metadata
/// segments (its own, if it allocates, and those of the nodes whose buffers
/// it reads).
pub fn locked_by_transport(metadata_segments: usize) -> u64 {
    LINK_SEGMENTS_BYTES + metadata_segments as u64 * METADATA_SEGMENT_BYTES
}

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

/// zenoh's segments are files in /dev/shm, so RLIMIT_FSIZE (`ulimit -f`)
/// bounds them: a metadata segment past it kills the node with SIGXFSZ (or,
/// with the signal ignored, fails its allocation). Our pools are not files
/// and the recording has its own limits (`mux.max_file_size`): this says
/// exactly what to raise for the transport, before anything starts.
pub fn check_file_size_limit() -> anyhow::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
        || lim.rlim_cur >= METADATA_SEGMENT_BYTES
    {
        return Ok(());
    }
    anyhow::bail!(
        "the file size limit (`ulimit -f` {} KiB) is below the {} shared-memory segment \
         zenoh creates in /dev/shm for every node that sends frames; raise it to at least \
         `ulimit -f {}` (the recording's own size is bounded by `mux.max_file_size`), or \
         run with --no-shm",
        lim.rlim_cur / 1024,
        human(METADATA_SEGMENT_BYTES),
        METADATA_SEGMENT_BYTES / 1024,
    )
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
         starts `runtime`, or a `memlock` entry in /etc/security/limits.conf (zenoh locks \
         {} per node whose frames this node reads)",
        human(needed),
        human(limit),
        limit / 1024,
        kib.next_power_of_two().max(kib),
        human(METADATA_SEGMENT_BYTES),
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
