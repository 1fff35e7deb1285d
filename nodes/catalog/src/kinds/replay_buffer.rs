//! `replay-buffer`: keeps the last seconds of encoded tracks in memory and
//! writes them to a new file on demand (the action `save`).

use std::path::{Path, PathBuf};

pub use super::mux::Container;
use super::mux::{check_output_path, part_path};
use super::Format;
use super::{no_inputs_rule, no_value_rule, problems, KindSpec};
use crate::params::{ParamSpec, Params};
use crate::read::Reader;
use crate::{PortType, Problem};

/// The save number's place in `path`.
pub const NUMBER: &str = "{n}";
pub const DEFAULT_PATH: &str = "recordings/replay-${timestamp}-{n}.mp4";
pub const DEFAULT_CONTAINER: Container = Container::Auto;
/// Seconds.
pub const DEFAULT_DURATION: f64 = 30.0;
/// Megabytes (10^6 bytes).
pub const DEFAULT_MAX_SIZE: f64 = 256.0;

/// The params of `replay-buffer`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// A template: [`NUMBER`] is the save's number.
    pub path: String,
    pub container: Container,
    /// Seconds of media kept.
    pub duration: f64,
    /// Megabytes kept.
    pub max_size: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            path: DEFAULT_PATH.into(),
            container: DEFAULT_CONTAINER,
            duration: DEFAULT_DURATION,
            max_size: DEFAULT_MAX_SIZE,
        }
    }
}

impl Settings {
    pub fn from_params(p: &Params) -> Result<Settings, Problem> {
        let r = Reader::new(PARAMS, p);
        Ok(Settings {
            path: r.text("path", DEFAULT_PATH)?,
            container: r.choice("container", DEFAULT_CONTAINER)?,
            duration: r.float("duration", DEFAULT_DURATION)?,
            max_size: r.float("max_size", DEFAULT_MAX_SIZE)?,
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

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        (self.max_size * 1e6) as usize
    }
}

/// The file of save number `n` (from 1): [`NUMBER`] in the template
/// replaced by `n` on three digits, else `-NNN` added before the extension
/// (`replay.mp4` → `replay-001.mp4`).
pub fn save_path(template: &str, n: u32) -> PathBuf {
    if template.contains(NUMBER) {
        PathBuf::from(template.replace(NUMBER, &format!("{n:03}")))
    } else {
        part_path(Path::new(template), n.max(1))
    }
}

/// The first save number from `from` on whose file does not exist yet: a
/// save never replaces a file (a run started again continues the numbers).
pub fn next_free_save(template: &str, from: u32) -> (u32, PathBuf) {
    let mut n = from.max(1);
    loop {
        let path = save_path(template, n);
        // A dangling link "does not exist" but is no free name either.
        if std::fs::symlink_metadata(&path).is_err() {
            return (n, path);
        }
        n += 1;
    }
}

fn rules(p: &Params) -> Vec<Problem> {
    match Settings::from_params(p) {
        Ok(s) => problems(s.resolved_container()),
        read => problems(read),
    }
}

/// The first save's file can be created: refused before the start, not
/// when the user asks for the replay after the moment happened.
fn host_checks(p: &Params) -> Vec<Problem> {
    let Ok(s) = Settings::from_params(p) else {
        return Vec::new(); // a rule reports it
    };
    let (_, first) = next_free_save(&s.path, 1);
    match check_output_path(&first, false, None) {
        Ok(()) => Vec::new(),
        Err(e) => vec![Problem::new(e.param(), e.to_string())],
    }
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec::float("duration", (1.0, 3600.0), Some(DEFAULT_DURATION), "seconds of media kept: whole keyframe intervals are let go from the front, so the buffer holds between this minus one keyframe interval and this, always from a video keyframe"),
    ParamSpec::float("max_size", (0.1, 100_000.0), Some(DEFAULT_MAX_SIZE), "megabytes (10^6 bytes) of packets kept, whichever of `duration` and this binds first; the buffer never holds more (a keyframe interval larger than this is not kept and counted as `dropped`). A save being written holds its packets until it is written: at most twice this in all"),
    ParamSpec::text("path", Some(DEFAULT_PATH), "file of each save: `{n}` is the save's number on three digits (001, 002, ...: the first whose file does not exist, so a save never replaces a file); without `{n}` the number goes before the extension (`replay.mp4` → `replay-001.mp4`). `${timestamp}` is the run's start time. Its directory must exist and be writable (checked before the start)"),
    ParamSpec::choice("container", Container::NAMES, Some(DEFAULT_CONTAINER.name()), "file format of a save: mp4 (a normal MP4, index first: faststart), mkv or webm; auto: from the path's extension"),
    ParamSpec::bool("save", false, "an action: `true` writes the buffer to the next file, from its first video keyframe to the last packet captured at or before the update's instant (audio from the same instant), on a thread of its own; a save asked while one is under way is refused with a log line (counted in `replay_saves_refused`)").action(),
];

pub const SPEC: KindSpec = KindSpec {
    kind: "replay-buffer",
    doc: "Keeps the last `duration` seconds (at most `max_size` MB) of encoded video and audio in memory (any number of tracks, one stream per input in the graph's order) and writes them to a new MP4 or MKV file on each `save` (control API `POST /api/replay/save`, `runtime ctl save-replay`, SIGUSR1 to `runtime run`).",
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

/// The container of a save with these params.
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
        let s = Settings::from_params(&with(&SPEC, "max_size", json!(1.5))).unwrap();
        assert_eq!(s.max_bytes(), 1_500_000);
    }

    #[test]
    fn save_paths_are_numbered_and_never_taken() {
        assert_eq!(save_path("r/x-{n}.mkv", 7), PathBuf::from("r/x-007.mkv"));
        assert_eq!(save_path("r/x.mp4", 2), PathBuf::from("r/x-002.mp4"));
        let dir = std::env::temp_dir().join(format!("catalog-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let template = format!("{}/s-{{n}}.mp4", dir.display());
        std::fs::write(dir.join("s-001.mp4"), b"x").unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.join("s-002.mp4")).unwrap();
        assert_eq!(next_free_save(&template, 1), (3, dir.join("s-003.mp4")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_container_is_a_rule_and_the_directory_a_host_check() {
        let avi = rules(&with(&SPEC, "path", json!("x-{n}.avi")));
        assert_eq!(avi[0].param, "path");
        assert_eq!(rules(&with(&SPEC, "path", json!("x.webm"))), vec![]);
        let missing = with(&SPEC, "path", json!("/no/such/dir/x-{n}.mkv"));
        assert_eq!(rules(&missing), vec![]);
        let problem = &host_checks(&missing)[0];
        assert_eq!(problem.param, "path");
        assert!(problem.message.contains("`/no/such/dir` does not exist"));
        let locked = with(&SPEC, "path", json!("/proc/self/x-{n}.mp4"));
        assert!(host_checks(&locked)[0].message.contains("not writable"));
    }
}
