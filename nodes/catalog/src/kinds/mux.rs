//! `mux`: writes encoded tracks into MP4, MKV or WebM.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{no_inputs_rule, no_value_rule, problems, KindSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{Choice, PortType, Problem};

use super::Format;

crate::choice! {
    /// The file format; `auto`: from the path's extension.
    pub enum Container { Auto = "auto", Mp4 = "mp4", Mkv = "mkv", Webm = "webm" }
}

impl Container {
    /// The container written for this param and `path`: the param, else
    /// the path's extension. Never `Auto`; `None`: the extension tells nothing.
    pub fn resolve(self, path: &str) -> Option<Container> {
        if self != Container::Auto {
            return Some(self);
        }
        let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
        match ext.as_str() {
            "mp4" | "m4v" | "mov" => Some(Container::Mp4),
            "mkv" => Some(Container::Mkv),
            "webm" => Some(Container::Webm),
            _ => None,
        }
    }

    /// Whether the container can carry a codec (the codec × container matrix).
    pub fn accepts(self, codec: &str) -> bool {
        self.format().is_some_and(|f| f.accepts(codec))
    }

    /// The container written; `None` for `auto`.
    pub fn format(self) -> Option<Format> {
        match self {
            Container::Auto => None,
            Container::Mp4 => Some(Format::Mp4),
            Container::Mkv => Some(Format::Mkv),
            Container::Webm => Some(Format::Webm),
        }
    }

    /// The containers a file can be (every one but `auto`).
    pub fn files() -> impl Iterator<Item = Container> {
        Self::ALL.iter().copied().filter(|c| *c != Container::Auto)
    }
}

crate::choice! {
    /// What happens at `max_duration` / `max_file_size`.
    pub enum OnLimit { Split = "split", Stop = "stop" }
}

pub const DEFAULT_PATH: &str = "recordings/${timestamp}.mp4";
pub const DEFAULT_CONTAINER: Container = Container::Auto;
pub const DEFAULT_FASTSTART: bool = true;
pub const DEFAULT_OVERWRITE: bool = false;
pub const DEFAULT_FRAGMENT_DURATION: f64 = 0.5;
pub const DEFAULT_ON_LIMIT: OnLimit = OnLimit::Split;
/// Megabytes.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 100;
pub const DEFAULT_RECORDING: bool = true;

/// The params of `mux`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub path: String,
    pub container: Container,
    pub faststart: bool,
    pub overwrite: bool,
    pub output_dir: Option<PathBuf>,
    /// Seconds.
    pub fragment_duration: f64,
    /// Seconds of media per file.
    pub max_duration: Option<f64>,
    /// Megabytes per file.
    pub max_file_size: Option<u64>,
    pub on_limit: OnLimit,
    /// Megabytes.
    pub min_free_space: u64,
    /// Writing files from the start (else: from a start command).
    pub recording: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            path: DEFAULT_PATH.into(),
            container: DEFAULT_CONTAINER,
            faststart: DEFAULT_FASTSTART,
            overwrite: DEFAULT_OVERWRITE,
            output_dir: None,
            fragment_duration: DEFAULT_FRAGMENT_DURATION,
            max_duration: None,
            max_file_size: None,
            on_limit: DEFAULT_ON_LIMIT,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
            recording: DEFAULT_RECORDING,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            path: r.text("path", DEFAULT_PATH)?,
            container: r.choice("container", DEFAULT_CONTAINER)?,
            faststart: r.flag("faststart", DEFAULT_FASTSTART)?,
            overwrite: r.flag("overwrite", DEFAULT_OVERWRITE)?,
            output_dir: r.text_opt("output_dir")?.map(PathBuf::from),
            fragment_duration: r.float("fragment_duration", DEFAULT_FRAGMENT_DURATION)?,
            max_duration: r.float_opt("max_duration")?,
            max_file_size: r.int_opt("max_file_size")?.map(|mb| mb as u64),
            on_limit: r.choice("on_limit", DEFAULT_ON_LIMIT)?,
            min_free_space: r.int("min_free_space", DEFAULT_MIN_FREE_SPACE as i64)? as u64,
            recording: r.flag("recording", DEFAULT_RECORDING)?,
        })
    }

    /// The container written: `container`, else from the path.
    pub fn resolved_container(&self) -> Result<Container, Problem> {
        self.container.resolve(&self.path).ok_or_else(|| {
            Problem::new(
                "path",
                format!(
                    "cannot tell the container of `{}`: use a .mp4, .mkv or .webm extension or set `container`",
                    self.path
                ),
            )
        })
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) => problems(s.resolved_container()),
        read => problems(read),
    }
}

fn host_checks(p: &Params) -> Vec<Problem> {
    let Ok(s) = Settings::from_params(p) else {
        return Vec::new(); // a rule reports it
    };
    if s.resolved_container().is_err() {
        return Vec::new();
    }
    match check_output_path(Path::new(&s.path), s.overwrite, s.output_dir.as_deref()) {
        Ok(()) => Vec::new(),
        Err(e) => vec![Problem::new(e.param(), e.to_string())],
    }
}

/// Why a recording cannot be written where its `path` says. Displayed with
/// the paths in backticks (`runtime check`); the alternate form (`{:#}`)
/// names them bare, as the mux's log does.
#[derive(Debug)]
pub enum OutputPathError {
    NoDirectory(PathBuf),
    DirectoryNotWritable(PathBuf, std::io::Error),
    Link {
        path: PathBuf,
        target: PathBuf,
    },
    IsDirectory(PathBuf),
    Exists(PathBuf),
    /// `output_dir` itself cannot be resolved.
    OutputDir(PathBuf, std::io::Error),
    Outside {
        path: PathBuf,
        root: PathBuf,
    },
}

impl OutputPathError {
    /// The param to point at.
    pub fn param(&self) -> &'static str {
        match self {
            OutputPathError::OutputDir(..) => "output_dir",
            _ => "path",
        }
    }
}

impl fmt::Display for OutputPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = if f.alternate() { "" } else { "`" };
        let p = |p: &Path| format!("{q}{}{q}", p.display());
        match self {
            OutputPathError::NoDirectory(d) => {
                write!(f, "output directory {} does not exist", p(d))
            }
            OutputPathError::DirectoryNotWritable(d, e) => {
                write!(f, "output directory {} is not writable: {e}", p(d))
            }
            OutputPathError::Link { path, target } => write!(
                f,
                "{} is a symbolic link (to {}): refused, the mux writes only a file of its own, never through a link",
                p(path),
                p(target)
            ),
            OutputPathError::IsDirectory(path) => write!(f, "output path {} is a directory", p(path)),
            OutputPathError::Exists(path) => write!(
                f,
                "{} already exists; set `overwrite: true` to replace it",
                p(path)
            ),
            OutputPathError::OutputDir(root, e) => write!(f, "{}: {e}", p(root)),
            OutputPathError::Outside { path, root } => write!(
                f,
                "{} is outside the output directory {}",
                p(path),
                p(root)
            ),
        }
    }
}

impl std::error::Error for OutputPathError {}

/// Where a recording may be written, checked on the machine that writes it,
/// before any process starts and again by the mux before it creates each
/// file: its directory exists and is writable, the file is no symbolic link
/// nor directory, it does not exist unless `overwrite`, and it lies inside
/// `output_dir` when one is set (after resolving `..` and links).
pub fn check_output_path(
    path: &Path,
    overwrite: bool,
    output_dir: Option<&Path>,
) -> Result<(), OutputPathError> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(OutputPathError::NoDirectory(dir.into()));
    }
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap_or_default();
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(OutputPathError::DirectoryNotWritable(dir.into(), e));
    }
    // A link as the file would send the recording wherever it points (a
    // dangling one even passes the "exists" check).
    if let Ok(target) = std::fs::read_link(path) {
        return Err(OutputPathError::Link {
            path: path.into(),
            target,
        });
    }
    if path.is_dir() {
        return Err(OutputPathError::IsDirectory(path.into()));
    }
    if path.exists() && !overwrite {
        return Err(OutputPathError::Exists(path.into()));
    }
    if let Some(root) = output_dir {
        let inside = match (root.canonicalize(), dir.canonicalize()) {
            (Ok(root), Ok(dir)) => dir.starts_with(&root),
            (Err(e), _) => return Err(OutputPathError::OutputDir(root.into(), e)),
            _ => false,
        };
        if !inside {
            return Err(OutputPathError::Outside {
                path: path.into(),
                root: root.into(),
            });
        }
    }
    Ok(())
}

/// The file of part `n` of a recording: part 0 is the path itself, part n
/// adds `-NNN` before the extension (`take.mp4`, `take-001.mp4`, ...).
pub fn part_path(base: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}-{n:03}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n:03}"),
    };
    base.with_file_name(name)
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::text("path", Some(DEFAULT_PATH), "output file (its directory must exist); `${timestamp}` is the run's start time"),
    ParamSpec::choice("container", Container::NAMES, Some(DEFAULT_CONTAINER.name()), "container; auto: from the path's extension"),
    ParamSpec::bool("faststart", DEFAULT_FASTSTART, "MP4: put the index (moov) before the media data"),
    ParamSpec::bool("overwrite", DEFAULT_OVERWRITE, "replace an existing file instead of refusing"),
    ParamSpec::text("output_dir", None, "when set, `path` must lie inside this directory (after resolving `..` and symbolic links): a graph that would write anywhere else is refused before it starts, and the mux checks again when it creates each file; absent: anywhere the user can write. A symbolic link as the output file is always refused"),
    ParamSpec::float("fragment_duration", (0.1, 1.0), Some(DEFAULT_FRAGMENT_DURATION), "seconds of media per MP4 fragment / MKV cluster written while recording: after a crash or `kill -9` of everything the file misses at most this plus the media still on its way to the mux (the encoder's lookahead, sync's buffer: metric crash_loss_bound_s) at the end (a clean stop turns the MP4 into a normal one; `runtime recover FILE` after a crash)"),
    ParamSpec::float("max_duration", (1.0, 604_800.0), None, "seconds of media per file: at the first video keyframe past it the mux starts the next numbered file (`take.mp4`, `take-001.mp4`, ...) or stops (`on_limit`); absent: no limit"),
    ParamSpec::int("max_file_size", (1, 16_000_000), None, "megabytes (10^6 bytes) per file, like `max_duration`: a file ends at the first keyframe past the size, so it may exceed it by up to one keyframe interval; absent: no limit"),
    ParamSpec::choice("on_limit", OnLimit::NAMES, Some(DEFAULT_ON_LIMIT.name()), "at `max_duration` / `max_file_size`: `split` continues in the next numbered file with no gap or overlap; `stop` finalizes the file and records nothing more (counted as `discarded`)"),
    ParamSpec::int("min_free_space", (0, 1_000_000), Some(DEFAULT_MIN_FREE_SPACE as i64), "megabytes that must stay free on the output's file system: checked before the start and every second while recording; below it the file is finalized and the run fails"),
    ParamSpec::bool("recording", DEFAULT_RECORDING, "whether files are written: `true` records from the graph's start; `false` waits for a start (the control API's `start`, or this param set to `true` while running); set to `false` while running, it finalizes the file at that instant and the graph keeps running. A start begins a new numbered file on the first video keyframe captured at or after it").live(),
    ParamSpec::bool("split", false, "an action: `true` ends the file at the first video keyframe captured at or after the update's instant and goes on in the next numbered file, nothing lost or doubled at the cut").action(),
    ParamSpec::text("chapter", None, "an action: a chapter with this title begins at the update's instant in the file being written (MP4 and MKV chapters, `ffprobe -show_chapters`)").action(),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "mux",
    doc: "Writes encoded tracks into MP4, MKV or WebM (any number of video and audio tracks, one stream per input in the graph's order). MP4 is written as fragments while recording (crash-safe) and made a normal faststart MP4 at a clean stop. A restarted mux continues in the next numbered file (created once its first fragment is written).",
    inputs: &[],
    any_inputs: Some(&[PortType::EncodedVideo, PortType::EncodedAudio]),
    outputs: &[],
    params: PARAMS,
    rules,
    host_checks,
    value_rule: no_value_rule,
    inputs_rule: no_inputs_rule,
    format: Some(format),
    hosted: false,
};

/// The container of a mux with these params.
fn format(p: &Params) -> Option<Format> {
    Settings::from_params(p)
        .ok()?
        .resolved_container()
        .ok()?
        .format()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::testing::{assert_settings_parse, with};
    use serde_json::json;

    #[test]
    fn settings_from_defaults_and_every_choice() {
        assert_settings_parse(&SPEC, Settings::from_params);
        let s = Settings::from_params(&with(&SPEC, "on_limit", json!("stop"))).unwrap();
        assert_eq!(s.on_limit, OnLimit::Stop);
    }

    #[test]
    fn the_container_is_a_rule_and_the_path_a_host_check() {
        let avi = rules(&with(&SPEC, "path", json!("x.avi")));
        assert_eq!(avi[0].param, "path");
        assert!(avi[0]
            .message
            .starts_with("cannot tell the container of `x.avi`"));
        let missing = with(&SPEC, "path", json!("/no/such/dir/x.mkv"));
        assert_eq!(rules(&missing), vec![]);
        assert!(host_checks(&missing)[0]
            .message
            .contains("`/no/such/dir` does not exist"));
    }

    #[test]
    fn output_paths_are_checked_before_the_start() {
        let dir = std::env::temp_dir().join(format!("catalog-output-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        let taken = dir.join("taken.mp4");
        std::fs::write(&taken, b"x").unwrap();
        let check = |p: &Path, overwrite, root: Option<&Path>| {
            check_output_path(p, overwrite, root).map_err(|e| e.to_string())
        };
        assert_eq!(check(&dir.join("new.mp4"), false, None), Ok(()));
        assert!(check(&dir.join("no/new.mp4"), false, None)
            .unwrap_err()
            .contains("does not exist"));
        assert!(check(&taken, false, None)
            .unwrap_err()
            .contains("already exists"));
        assert_eq!(check(&taken, true, None), Ok(()));
        assert!(check(Path::new("/proc/self/x.mp4"), false, None)
            .unwrap_err()
            .contains("not writable"));
        let root = dir.join("inner");
        assert_eq!(check(&root.join("a.mp4"), false, Some(&root)), Ok(()));
        assert!(check(&root.join("../a.mp4"), false, Some(&root))
            .unwrap_err()
            .contains("outside the output directory"));
        // A link as the file, dangling or not, inside or outside the root.
        std::os::unix::fs::symlink("/nonexistent/escape.mp4", root.join("link.mp4")).unwrap();
        std::os::unix::fs::symlink("a.mp4", root.join("inner-link.mp4")).unwrap();
        for name in ["link.mp4", "inner-link.mp4"] {
            assert!(check(&root.join(name), true, Some(&root))
                .unwrap_err()
                .contains("is a symbolic link"));
        }
        let bare = check_output_path(&root.join("link.mp4"), true, None).unwrap_err();
        assert!(format!("{bare:#}").contains("link.mp4 is a symbolic link (to /nonexistent"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn container_matrix() {
        assert!(Container::Mp4.accepts("h264"));
        assert!(!Container::Webm.accepts("h264"));
        assert!(!Container::Webm.accepts("aac"));
        assert!(Container::Mkv.accepts("mp3"));
        assert!(Container::Mkv.accepts("ffv1"));
        assert!(!Container::Mp4.accepts("ffv1"));
        assert_eq!(Container::Auto.resolve("a/b.WEBM"), Some(Container::Webm));
        assert_eq!(Container::Auto.resolve("a/b.avi"), None);
        assert_eq!(Container::Mkv.resolve("x.mp4"), Some(Container::Mkv));
        assert_eq!(Container::files().count(), 3);
    }
}
