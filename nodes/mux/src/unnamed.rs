//! A part file that gets its name only once it holds media: it is created
//! without a name in its directory (`O_TMPFILE`) and linked under its path
//! when the first fragment reached it. A mux that dies before that (a
//! crash loop, a kill right after a restart) leaves no file at all instead
//! of an empty one that does not play. File systems without `O_TMPFILE`
//! get the file under its path at once, as FFmpeg creates it.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

pub struct PartFile {
    path: PathBuf,
    /// The file while it has no name yet.
    unnamed: Option<File>,
    /// Its size once the container header was written: more is media (MKV
    /// writes its header at once, MP4 with its first fragment).
    header_bytes: u64,
    /// An existing file at `path` is replaced (`overwrite: true`).
    replace: bool,
}

impl PartFile {
    /// Creates the file for `path` without a name where the file system
    /// allows it.
    pub fn create(path: &Path, replace: bool) -> PartFile {
        let dir = crate::disk::dir_of(path);
        let unnamed = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o666)
            .open(dir)
            .map_err(|e| tracing::debug!("no unnamed file in {}: {e}", dir.display()))
            .ok();
        PartFile {
            path: path.to_path_buf(),
            unnamed,
            header_bytes: 0,
            replace,
        }
    }

    /// What FFmpeg opens to write the file.
    pub fn open_path(&self) -> PathBuf {
        match &self.unnamed {
            Some(f) => PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())),
            None => self.path.clone(),
        }
    }

    /// Remembers the size of the header FFmpeg just wrote.
    pub fn header_written(&mut self) {
        self.header_bytes = self.size();
    }

    pub fn is_named(&self) -> bool {
        self.unnamed.is_none()
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        let meta = match &self.unnamed {
            Some(f) => f.metadata(),
            None => std::fs::metadata(&self.path),
        };
        meta.map_or(0, |m| m.len())
    }

    /// Gives the file its name once it holds more than its header (a whole
    /// fragment: FFmpeg hands each one over at once).
    pub fn name_if_media(&mut self) -> Result<()> {
        let Some(file) = &self.unnamed else {
            return Ok(());
        };
        if self.size() <= self.header_bytes {
            return Ok(());
        }
        if self.replace && self.path.exists() {
            std::fs::remove_file(&self.path)
                .map_err(|e| anyhow!("cannot replace {}: {e}", self.path.display()))?;
        }
        link(file, &self.path)?;
        self.unnamed = None;
        Ok(())
    }
}

/// Links the unnamed `file` under `path` (never replacing a file there).
fn link(file: &File, path: &Path) -> Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
    let to = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| anyhow!("{}: a path with a NUL byte", path.display()))?;
    // SAFETY: two valid NUL-terminated paths.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(crate::disk::write_error(
            &format!("cannot create {}", path.display()),
            &ffmpeg_next::Error::from(-errno),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_name_comes_with_the_media() {
        let dir = std::env::temp_dir().join(format!("node-mux-unnamed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.mp4");
        let _ = std::fs::remove_file(&path);
        let mut part = PartFile::create(&path, false);
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(part.open_path())
            .unwrap();
        w.write_all(b"head").unwrap();
        part.header_written();
        part.name_if_media().unwrap();
        if !part.is_named() {
            // O_TMPFILE: nothing under the path until media follows.
            assert!(!path.exists());
        }
        w.write_all(b"media").unwrap();
        part.name_if_media().unwrap();
        assert!(part.is_named());
        assert_eq!(std::fs::read(&path).unwrap(), b"headmedia");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
