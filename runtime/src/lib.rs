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

/// Starts a program, trying again for a moment while it is "text file
/// busy" (ETXTBSY): a program just written (a node being built, a test's
/// script) stays busy while any process forked in that instant still holds
/// the writer's descriptor, until that process execs.
pub fn spawn_retrying_busy<T>(mut spawn: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut tries = 0;
    loop {
        match spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_program_is_started_once_it_is_free() {
        let mut calls = 0;
        let started = spawn_retrying_busy(|| {
            calls += 1;
            if calls < 3 {
                Err(std::io::Error::from_raw_os_error(libc::ETXTBSY))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(started.unwrap(), 3);
        let mut calls = 0;
        let missing = spawn_retrying_busy::<()>(|| {
            calls += 1;
            Err(std::io::ErrorKind::NotFound.into())
        });
        assert!(missing.is_err());
        assert_eq!(calls, 1, "other errors are not retried");
    }
}
