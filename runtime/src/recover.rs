//! `runtime recover FILE...`: makes interrupted recordings normal files.
//!
//! A recording whose mux died (crash, `kill -9`, power cut after the data
//! reached the disk) is a fragmented MP4 or an MKV/WebM without its index:
//! it plays, but a player cannot seek it well. The container code lives in
//! node-mux, so the runtime does not link FFmpeg: it runs `mediagraph-nodes mux --recover`
//! beside it, which rewrites each file in place (MP4 with its index first;
//! a fragment the interruption cut short is left out).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// Recovers `files` with the built-in mux beside the runtime. Returns its exit
/// code: 0 every file is final, 1 one could not be recovered, 2 bad usage.
pub fn recover(files: &[impl AsRef<Path>]) -> Result<i32> {
    recover_with(&crate::run::builtin_dir()?, files)
}

/// Like [`recover`], with the built-in nodes' binary in `dir`.
pub fn recover_with(dir: &Path, files: &[impl AsRef<Path>]) -> Result<i32> {
    let mux = crate::run::builtin_binary_in(dir)?;
    let status = Command::new(&mux)
        .args(["mux", "--recover"])
        .args(files.iter().map(|f| f.as_ref().as_os_str()))
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("starting {}", mux.display()))?;
    Ok(status.code().unwrap_or(1))
}
