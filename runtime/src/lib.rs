//! The media graph runtime as a library: load and validate a graph, run it
//! (one OS process per node, wired over zenoh), stop it, read its stats.
//! The `runtime` binary is a thin CLI over this crate, so applications can
//! embed the same calls.

pub mod control;
pub mod devices;
pub mod graph;
pub mod nodes_doc;
pub mod recover;
pub mod run;
pub mod scaffold;

/// The run's start time, as used in `${timestamp}` and run directory names.
pub fn timestamp() -> String {
    // Local time without extra dependencies: ask libc.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r fills the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&now, &mut tm) };
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}
