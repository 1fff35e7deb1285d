//! The output file: which container, the checks made before anything is
//! written, and the muxer options.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use ffmpeg_next::Dictionary;
use node_api::{EncodedPacket, TimeBase};
use node_catalog::kinds::mux::{self as kind, Container};
use node_catalog::Choice;

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
pub fn container(param: Container, path: &str) -> Result<&'static str> {
    let settings = kind::Settings {
        path: path.into(),
        container: param,
        ..kind::Settings::default()
    };
    Ok(settings.resolved_container()?.name())
}

/// The checks `runtime check` made on the output path, made again where the
/// file is written ([`kind::check_output_path`]): its directory exists and
/// is writable, it is no link nor directory, an existing file is only
/// replaced when `overwrite` is set, and it lies inside `output_dir`.
pub fn check_path(path: &Path, overwrite: bool, output_dir: Option<&Path>) -> Result<()> {
    kind::check_output_path(path, overwrite, output_dir).map_err(|e| anyhow!("{e:#}"))
}

/// Creates the file at `path` for writing (replacing a regular file there
/// only when `replace`), and nothing else: a symbolic link as the file is
/// refused however late it appeared (O_NOFOLLOW, O_EXCL), and with
/// `output_dir` the directory it is created in, as opened, must lie inside
/// that directory (so a parent swapped for a link since the checks is
/// refused too). FFmpeg then writes through [`fd_path`].
pub fn create(path: &Path, replace: bool, output_dir: Option<&Path>) -> Result<File> {
    use std::os::unix::ffi::OsStrExt;
    let shown = path.display();
    let dir = open_dir(path, output_dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{shown} names no file"))?;
    let name = CString::new(name.as_bytes()).map_err(|_| anyhow!("{shown}: NUL in the name"))?;
    let mut flags = libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    flags |= if replace { libc::O_TRUNC } else { libc::O_EXCL };
    // SAFETY: `dir` is an open directory and `name` a NUL-terminated name;
    // openat returns a new descriptor we own or -1.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o666) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if let Ok(target) = std::fs::read_link(path) {
            bail!(
                "{shown} is a symbolic link (to {}): refused, the mux writes only a file of its own",
                target.display()
            );
        }
        if e.raw_os_error() == Some(libc::EEXIST) {
            bail!("{shown} already exists; set the param `overwrite: true` to replace it");
        }
        bail!("cannot create {shown}: {e}");
    }
    // SAFETY: a descriptor openat just returned, owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The directory `path` is to be created in, opened; with `output_dir` it
/// must lie inside that directory as opened (links resolved).
pub fn open_dir(path: &Path, output_dir: Option<&Path>) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let dir_path = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir_path)
        .map_err(|e| anyhow!("cannot create {shown}: its directory: {e}"))?;
    if let Some(root) = output_dir {
        check_inside(&dir, root).map_err(|e| anyhow!("refusing to create {shown}: {e}"))?;
    }
    Ok(dir)
}

/// The name FFmpeg opens to write to an already open file: the file itself,
/// whatever happens to its path meanwhile.
pub fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Whether the open directory `dir` (where it really is, links resolved)
/// lies inside `root`.
fn check_inside(dir: &File, root: &Path) -> Result<()> {
    let root = root
        .canonicalize()
        .map_err(|e| anyhow!("output directory {}: {e}", root.display()))?;
    let real = std::fs::read_link(fd_path(dir))?;
    if !real.starts_with(&root) {
        bail!(
            "it would be in {}, outside the output directory {}",
            real.display(),
            root.display()
        );
    }
    Ok(())
}

/// Muxer options while recording: every container is written so that a
/// crash or `kill -9` leaves a playable file up to at most `fragment_s`
/// before the end. MP4 is fragmented (moof + mdat every `fragment_s`; the
/// moov waits for the first fragment so it gets the edit lists for B-frame
/// delay and audio priming); MKV/WebM close a cluster every `fragment_s`.
/// Each packet's bytes are handed to the kernel at once (`flush_packets`).
pub fn header_options(container: &str, fragment_s: f64) -> Dictionary<'static> {
    let mut opts = Dictionary::new();
    opts.set("flush_packets", "1");
    if container == "mp4" {
        opts.set(
            "movflags",
            "+frag_keyframe+empty_moov+delay_moov+default_base_moof",
        );
        opts.set(
            "frag_duration",
            &((fragment_s * 1e6).round() as i64).to_string(),
        );
    } else {
        opts.set(
            "cluster_time_limit",
            &((fragment_s * 1e3).round() as i64).to_string(),
        );
    }
    opts
}

/// How far (in ticks of `time_base`) a track's timestamps move so its
/// blocks carry the codec delay in Matroska/WebM. An Opus encoder stamps its
/// first packet before 0 by its pre-skip, which the decoder drops; Matroska
/// signals it as CodecDelay, to be subtracted from each block's timestamp,
/// so the blocks themselves start at 0. (Left negative, the muxer would
/// shift every track by the pre-skip and the picture would play that much
/// late.) MP4 keeps its edit list instead: 0 there.
pub fn codec_delay_ticks(container: &str, first: &EncodedPacket, time_base: TimeBase) -> i64 {
    if container == "mp4" || first.codec != "opus" || first.params.sample_rate == 0 {
        return 0;
    }
    (first.params.initial_padding as i64 * time_base.den as i64)
        / (first.params.sample_rate as i64 * time_base.num.max(1) as i64)
}

pub use node_catalog::kinds::mux::part_path;

/// The first part number from `from` on whose file does not exist yet.
pub fn next_free_part(base: &Path, from: u32) -> u32 {
    (from..)
        .find(|n| !part_path(base, *n).exists())
        .expect("a free part number")
}

/// Whether the container can carry a codec (FFmpeg codec name).
pub fn accepts(container: &str, codec: &str) -> bool {
    Container::from_name(container)
        .is_some_and(|c| c.accepts(node_media::packet::catalog_codec_name(codec)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::{CodecParams, MediaKind};

    #[test]
    fn opus_blocks_carry_the_pre_skip_in_matroska_only() {
        let opus = EncodedPacket {
            media: MediaKind::Audio,
            codec: "opus".into(),
            params: CodecParams {
                sample_rate: 48_000,
                initial_padding: 312,
                ..CodecParams::default()
            },
            pts: -312,
            dts: -312,
            duration: 960,
            time_base: TimeBase::new(1, 48_000),
            keyframe: true,
            capture_ns: 0,
        };
        assert_eq!(
            codec_delay_ticks("mkv", &opus, TimeBase::new(1, 48_000)),
            312
        );
        assert_eq!(codec_delay_ticks("webm", &opus, TimeBase::new(1, 1000)), 6);
        assert_eq!(codec_delay_ticks("mp4", &opus, TimeBase::new(1, 48_000)), 0);
        let aac = EncodedPacket {
            codec: "aac".into(),
            ..opus
        };
        assert_eq!(codec_delay_ticks("mkv", &aac, TimeBase::new(1, 48_000)), 0);
    }

    #[test]
    fn containers() {
        assert_eq!(container(Container::Auto, "out/rec.mp4").unwrap(), "mp4");
        assert_eq!(container(Container::Auto, "rec.MKV").unwrap(), "mkv");
        assert_eq!(container(Container::Webm, "rec.bin").unwrap(), "webm");
        assert!(container(Container::Auto, "rec.avi").is_err());
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
        check_path(&file, false, None).unwrap();
        std::fs::write(&file, b"x").unwrap();
        let e = check_path(&file, false, None).unwrap_err().to_string();
        assert!(e.contains("a.mp4") && e.contains("overwrite: true"), "{e}");
        check_path(&file, true, None).unwrap();
        let e = check_path(&dir.join("missing/b.mp4"), false, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("output directory ") && e.ends_with("missing does not exist"),
            "{e}"
        );
        assert!(check_path(&dir, true, None).is_err());
        check_path(Path::new("relative-name.mp4"), false, None).unwrap();
        // The output directory is enforced here as it is by `runtime check`.
        let e = check_path(&dir.join("../c.mp4"), false, Some(&dir))
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the output directory"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_created_only_where_they_are_named() {
        let dir = std::env::temp_dir().join(format!("node-mux-create-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
        let err = |p: &Path, replace| create(p, replace, Some(&root)).unwrap_err().to_string();
        // A plain file inside: created, and refused a second time without `replace`.
        create(&root.join("sub/a.mp4"), false, Some(&root)).unwrap();
        assert!(err(&root.join("sub/a.mp4"), false).contains("already exists"));
        create(&root.join("sub/a.mp4"), true, Some(&root)).unwrap();
        // A link as the file, even with `replace`, even a dangling one.
        let escape = dir.join("elsewhere/escape.mp4");
        std::os::unix::fs::symlink(&escape, root.join("link.mp4")).unwrap();
        for replace in [false, true] {
            let e = err(&root.join("link.mp4"), replace);
            assert!(e.contains("is a symbolic link"), "{e}");
        }
        assert!(!escape.exists());
        // A parent that is a link out of the root.
        std::os::unix::fs::symlink(dir.join("elsewhere"), root.join("out")).unwrap();
        let e = err(&root.join("out/b.mp4"), false);
        assert!(e.contains("outside the output directory"), "{e}");
        assert!(!dir.join("elsewhere/b.mp4").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mp4_is_fragmented_and_mkv_clustered_while_recording() {
        let mp4 = header_options("mp4", 0.5);
        assert!(mp4.get("movflags").unwrap().contains("empty_moov"));
        assert_eq!(mp4.get("frag_duration"), Some("500000"));
        assert_eq!(mp4.get("flush_packets"), Some("1"));
        let mkv = header_options("mkv", 0.25);
        assert_eq!(mkv.get("cluster_time_limit"), Some("250"));
        assert_eq!(mkv.get("movflags"), None);
    }

    #[test]
    fn parts_are_numbered_before_the_extension() {
        let base = Path::new("out/take.mp4");
        assert_eq!(part_path(base, 0), Path::new("out/take.mp4"));
        assert_eq!(part_path(base, 1), Path::new("out/take-001.mp4"));
        assert_eq!(part_path(base, 12), Path::new("out/take-012.mp4"));
        assert_eq!(part_path(Path::new("take"), 2), Path::new("take-002"));
        let dir = std::env::temp_dir().join(format!("node-mux-parts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("a.mkv");
        assert_eq!(next_free_part(&base, 0), 0);
        std::fs::write(&base, b"x").unwrap();
        std::fs::write(part_path(&base, 1), b"x").unwrap();
        assert_eq!(next_free_part(&base, 0), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
