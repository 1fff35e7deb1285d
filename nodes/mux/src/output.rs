//! The output file: which container, the checks made before anything is
//! written, and the muxer options.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::Dictionary;

/// The FFmpeg muxer of a catalog container name.
pub fn ffmpeg_format(container: &str) -> Option<&'static str> {
    Some(match container {
        "mp4" => "mp4",
        "mkv" => "matroska",
        "webm" => "webm",
        _ => return None,
    })
}

/// The container to write: the `container` param, else the path's extension.
pub fn container(param: &str, path: &str) -> Result<&'static str> {
    node_catalog::container_for(param, path).ok_or_else(|| {
        anyhow!("cannot tell the container of `{path}`: use a .mp4, .mkv or .webm extension or set `container`")
    })
}

/// The output directory must exist, and an existing file is only replaced
/// when `overwrite` is set.
pub fn check_path(path: &Path, overwrite: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("output directory {} does not exist", dir.display());
    }
    if path.is_dir() {
        bail!("output path {} is a directory", path.display());
    }
    if path.exists() && !overwrite {
        bail!(
            "{} already exists; set the param `overwrite: true` to replace it",
            path.display()
        );
    }
    Ok(())
}

/// Muxer options: MP4 `faststart` moves the index (moov) before the media
/// data so players can start before the whole file has downloaded.
pub fn header_options(container: &str, faststart: bool) -> Dictionary<'static> {
    let mut opts = Dictionary::new();
    if container == "mp4" && faststart {
        opts.set("movflags", "+faststart");
    }
    opts
}

/// Whether the container can carry a codec (FFmpeg codec name).
pub fn accepts(container: &str, codec: &str) -> bool {
    node_catalog::container_accepts(container, node_media::packet::catalog_codec_name(codec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers() {
        assert_eq!(container("auto", "out/rec.mp4").unwrap(), "mp4");
        assert_eq!(container("auto", "rec.MKV").unwrap(), "mkv");
        assert_eq!(container("webm", "rec.bin").unwrap(), "webm");
        assert!(container("auto", "rec.avi").is_err());
        assert_eq!(ffmpeg_format("mkv"), Some("matroska"));
        assert_eq!(ffmpeg_format("webm"), Some("webm"));
        assert_eq!(ffmpeg_format("mp4"), Some("mp4"));
        assert_eq!(ffmpeg_format("avi"), None);
    }

    #[test]
    fn codec_matrix_uses_ffmpeg_names() {
        assert!(accepts("mp4", "hevc"));
        assert!(accepts("mp4", "opus"));
        assert!(!accepts("webm", "hevc"));
        assert!(accepts("webm", "vp9"));
        assert!(!accepts("webm", "aac"));
        assert!(accepts("mkv", "mp3"));
    }

    #[test]
    fn path_checks() {
        let dir = std::env::temp_dir().join(format!("node-mux-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.mp4");
        let _ = std::fs::remove_file(&file);
        check_path(&file, false).unwrap();
        std::fs::write(&file, b"x").unwrap();
        let e = check_path(&file, false).unwrap_err().to_string();
        assert!(e.contains("a.mp4") && e.contains("overwrite: true"), "{e}");
        check_path(&file, true).unwrap();
        let e = check_path(&dir.join("missing/b.mp4"), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("output directory ") && e.ends_with("missing does not exist"),
            "{e}"
        );
        assert!(check_path(&dir, true).is_err());
        check_path(Path::new("relative-name.mp4"), false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn faststart_only_for_mp4() {
        assert_eq!(
            header_options("mp4", true).get("movflags"),
            Some("+faststart")
        );
        assert_eq!(header_options("mp4", false).get("movflags"), None);
        assert_eq!(header_options("mkv", true).get("movflags"), None);
    }
}
