//! The private directory of a run's unix sockets, under the temp dir.
//!
//! A run removes its own directory when it ends (normally, on an error, on
//! Ctrl-C or SIGTERM). A runtime killed outright (SIGKILL, a crash) cannot,
//! so each directory records its owner (pid and process start time) and
//! every run first removes the directories of this user whose owner is gone.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};

const PREFIX: &str = "mediagraph-";
const OWNER_FILE: &str = "owner";

/// A run's socket directory, removed when dropped.
pub struct SocketDir {
    path: PathBuf,
}

impl SocketDir {
    /// Removes stale directories, then creates this run's (mode 0700, new:
    /// never one someone else made under the shared temp dir).
    pub fn create() -> Result<SocketDir> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let tmp = std::env::temp_dir();
        remove_stale(&tmp);
        let pid = std::process::id();
        let millis = super::unix_millis() % 1_000_000_000;
        // Unix socket paths are limited to ~100 bytes: keep the name short.
        // Unique to this process (machines of one run may share a /tmp) and
        // to this run of it (a process may run several graphs).
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let path = tmp.join(format!("{PREFIX}{pid}-{millis}-{n}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create the socket directory {}", path.display()))?;
        let dir = SocketDir { path };
        let start = start_time(pid).unwrap_or(0);
        std::fs::write(dir.path.join(OWNER_FILE), format!("{pid} {start}\n"))
            .with_context(|| format!("cannot write {}", dir.path.join(OWNER_FILE).display()))?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the socket directories in `tmp` that belong to this user and
/// whose runtime has exited. Anything else is left alone: other users'
/// directories, links, names not of the form `mediagraph-<pid>-...`.
pub fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name_pid(&name) else {
            continue;
        };
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if !ours || owner_alive(&path, pid) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(
                "removed {}, left by a runtime (pid {pid}) that was killed",
                path.display()
            ),
            Err(e) => tracing::debug!("cannot remove {}: {e}", path.display()),
        }
    }
}

/// The pid in a socket directory's name.
fn name_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Whether the runtime that made `dir` still runs: the pid and start time
/// its owner file records (the pid alone may have been reused since), or,
/// without that file (being created, or made by an older runtime), the pid
/// of the name.
fn owner_alive(dir: &Path, name_pid: u32) -> bool {
    let recorded = std::fs::read_to_string(dir.join(OWNER_FILE)).ok();
    let owner = recorded.as_deref().and_then(|text| {
        let mut parts = text.split_whitespace();
        Some((
            parts.next()?.parse::<u32>().ok()?,
            parts.next()?.parse::<u64>().ok()?,
        ))
    });
    match owner {
        Some((pid, start)) => start_time(pid).is_some_and(|now| start == 0 || now == start),
        None => start_time(name_pid).is_some(),
    }
}

/// A live process's start time (clock ticks after boot, /proc/PID/stat field
/// 22); `None` when there is no such process or it is a zombie (it has
/// exited; only its parent has yet to collect it).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // Field 3 was the state; field 22 is 19 further.
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_recognised() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert_eq!(name_pid(&format!("mediagraph-{me}-123-0")), Some(me));
        assert_eq!(name_pid("mediagraph-x-1"), None);
        assert_eq!(name_pid("other-1-2"), None);
    }

    #[test]
    fn only_dirs_of_exited_owners_are_removed() {
        let tmp = tempfile_dir("sockets");
        // pid_max is at most 2^22: this pid never runs.
        let dead = tmp.join(format!("{PREFIX}{}-1-0", 1u32 << 23));
        let live = tmp.join(format!("{PREFIX}{}-1-0", std::process::id()));
        let reused = tmp.join(format!("{PREFIX}{}-2-0", std::process::id()));
        let other = tmp.join("mediagraph-notes");
        for d in [&dead, &live, &reused, &other] {
            std::fs::create_dir(d).unwrap();
        }
        // Same pid, another start time: the pid was reused by a new process.
        let start = start_time(std::process::id()).unwrap();
        std::fs::write(
            reused.join(OWNER_FILE),
            format!("{} {}\n", std::process::id(), start + 1),
        )
        .unwrap();
        remove_stale(&tmp);
        assert!(!dead.exists() && !reused.exists());
        assert!(live.exists() && other.exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
