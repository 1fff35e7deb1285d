//! The disk under the recording: free space, and the write errors no retry
//! can fix (full disk, file size limit, I/O error).

use std::path::Path;

/// Errors of the file system under the recording (errno values).
const DISK_ERRORS: &[(i32, &str)] = &[
    (libc::ENOSPC, "the disk is full"),
    (libc::EDQUOT, "the disk quota is used up"),
    (
        libc::EFBIG,
        "the file reached the size limit (RLIMIT_FSIZE / ulimit -f, or the file system's)",
    ),
    (libc::EIO, "the disk reported an I/O error"),
    (libc::EROFS, "the file system is read-only"),
];

/// Marks an error that a restart of the mux cannot fix.
#[derive(Debug)]
pub struct DiskError(pub String);

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DiskError {}

/// An FFmpeg write error with what was being done; a disk error is a
/// [`DiskError`] saying what went wrong in words.
pub fn write_error(context: &str, e: &ffmpeg_next::Error) -> anyhow::Error {
    if let ffmpeg_next::Error::Other { errno } = *e {
        if let Some((_, why)) = DISK_ERRORS.iter().find(|(n, _)| *n == errno) {
            return anyhow::Error::new(DiskError(format!("{context}: {why} ({e})")));
        }
    }
    anyhow::anyhow!("{context}: {e}")
}

/// Whether an error (or its cause) is a [`DiskError`].
pub fn is_disk_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<DiskError>())
}

/// The directory a file is written in ("." for a bare name).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Bytes an unprivileged writer may still use on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path and a statvfs we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// A write past RLIMIT_FSIZE sends SIGXFSZ, which kills by default: ignored,
/// the write fails with EFBIG instead and the file can be finalized.
pub fn ignore_file_size_signal() {
    // SAFETY: setting a signal to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_errors_say_what_happened() {
        let e = write_error(
            "writing a.mp4",
            &ffmpeg_next::Error::Other {
                errno: libc::ENOSPC,
            },
        );
        assert!(is_disk_error(&e));
        assert!(
            e.to_string().starts_with("writing a.mp4: the disk is full"),
            "{e}"
        );
        let e = write_error("writing a.mp4", &ffmpeg_next::Error::InvalidData);
        assert!(!is_disk_error(&e));
    }

    #[test]
    fn free_space_of_the_temp_dir() {
        assert!(free_bytes(&std::env::temp_dir()).unwrap() > 0);
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
        assert_eq!(dir_of(Path::new("a.mp4")), Path::new("."));
        assert_eq!(dir_of(Path::new("x/a.mp4")), Path::new("x"));
    }
}
