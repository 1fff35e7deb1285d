//! `runtime devices`: the cameras, screens and audio inputs of this machine.
//!
//! The device code lives in the node crates (nokhwa in node-camera, cpal in
//! node-microphone), so the runtime does not link either: it runs
//! `mediagraph-nodes camera --list-devices` and `... microphone --list-devices`,
//! each printing a JSON array, and merges them; `... screen --list-devices`
//! lists the X screens of `$DISPLAY`; `... video-encode --list-devices`
//! likewise says which hardware encoders can be opened here.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, Context, Result};
use node_catalog::BUILTIN_BINARY;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Everything `runtime devices --json` prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Devices {
    pub cameras: Vec<Camera>,
    /// The screens of `$DISPLAY` (X11), what the `screen` kind captures.
    #[serde(default)]
    pub screens: Vec<Screen>,
    pub audio_inputs: Vec<AudioInput>,
    /// Every hardware encoder tried (video-encode's `hwaccel`), usable or not.
    #[serde(default)]
    pub hardware_encoders: Vec<HardwareEncoder>,
}

/// A hardware encoder as `video-encode --list-devices` found it: opened the
/// way a run opens it, at a small size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareEncoder {
    /// The `hwaccel` value that selects it: `nvenc` or `vaapi`.
    pub hwaccel: String,
    /// The `codec` value (h264, h265, vp9, av1).
    pub codec: String,
    /// FFmpeg's encoder; None when FFmpeg has none for the codec.
    pub encoder: Option<String>,
    pub usable: bool,
    /// Why it could not be opened.
    pub reason: Option<String>,
}

/// An X screen as `screen --list-devices` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Screen {
    /// What `screen.display` takes: `:0.0`.
    pub display: String,
    /// Its size in pixels; `None` when it cannot be captured.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Why it cannot be captured (the X server refused, a Wayland session
    /// without Xwayland).
    pub error: Option<String>,
}

/// A camera as `node-camera --list-devices` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub index: CameraIndex,
    pub name: String,
    pub description: String,
    pub formats: Vec<CameraFormat>,
    /// Why its formats could not be read (e.g. busy).
    pub error: Option<String>,
}

/// Cameras are numbered on most systems, named on a few.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CameraIndex {
    Number(u32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraFormat {
    /// The camera's frame format (YUYV, MJPEG, NV12, ...).
    pub format: String,
    /// The pixel format it travels as between nodes; None if nodes cannot carry it.
    pub pixel_format: Option<String>,
    pub sizes: Vec<FrameSize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameSize {
    pub width: u32,
    pub height: u32,
    /// Frames per second, highest first.
    pub rates: Vec<u32>,
}

/// An audio input as `node-microphone --list-devices` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioInput {
    /// What `microphone.source=device:<name>` takes.
    pub name: String,
    pub description: String,
    pub default: bool,
    /// Fixed rates, plus the common ones inside continuous ranges.
    pub sample_rates: Vec<u32>,
    /// Continuous (min, max) rate ranges.
    pub rate_ranges: Vec<(u32, u32)>,
    pub channels: Vec<u16>,
    pub sample_formats: Vec<String>,
    pub default_config: Option<AudioConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioConfig {
    pub sample_rate: u32,
    pub channels: u16,
    pub sample_format: String,
}

/// Asks the node binaries beside the runtime (see [`crate::run::builtin_dir`]).
pub fn list() -> Result<Devices> {
    list_in(&crate::run::builtin_dir()?)
}

/// Asks the `camera` and `microphone` built-ins in `dir`, both at once.
pub fn list_in(dir: &Path) -> Result<Devices> {
    let binary = crate::run::builtin_binary_in(dir)?;
    let mut children = Vec::new();
    for kind in ["camera", "microphone", "video-encode", "screen"] {
        match start(&binary, kind) {
            Ok(child) => children.push(child),
            Err(e) => {
                // No child is left running.
                children
                    .into_iter()
                    .for_each(|c| drop(c.wait_with_output()));
                return Err(e);
            }
        }
    }
    // Wait for all before judging any, so no child is left running.
    let mut children = children.into_iter();
    let mut next = || children.next().expect("one child per kind");
    let cameras = finish("camera", next());
    let audio_inputs = finish("microphone", next());
    let hardware_encoders = finish("video-encode", next());
    let screens = finish("screen", next());
    // Judged in the order they were asked: the first failure is reported.
    let (cameras, audio_inputs) = (cameras?, audio_inputs?);
    let hardware_encoders = hardware_encoders?;
    Ok(Devices {
        cameras,
        screens: screens?,
        audio_inputs,
        hardware_encoders,
    })
}

fn start(path: &Path, kind: &str) -> Result<Child> {
    Command::new(path)
        .args([kind, "--list-devices"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} {kind}", path.display()))
}

fn finish<T: DeserializeOwned>(kind: &str, child: Child) -> Result<Vec<T>> {
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{BUILTIN_BINARY} {kind} --list-devices`"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let reason = stderr.trim();
        let reason = reason.strip_prefix("error: ").unwrap_or(reason);
        return Err(anyhow!(
            "`{BUILTIN_BINARY} {kind} --list-devices` failed ({}){}{reason}",
            out.status,
            if reason.is_empty() { "" } else { ": " }
        ));
    }
    // Its log lines (RUST_LOG=debug) still reach the user.
    eprint!("{stderr}");
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!("`{BUILTIN_BINARY} {kind} --list-devices` printed no valid device list")
    })
}

/// The readable listing `runtime devices` prints.
pub fn render(devices: &Devices) -> String {
    let mut s = String::new();
    if devices.cameras.is_empty() {
        s.push_str("no cameras found\n");
    } else {
        s.push_str("Cameras\n");
        for c in &devices.cameras {
            render_camera(&mut s, c);
        }
    }
    s.push('\n');
    render_screens(&mut s, &devices.screens);
    s.push('\n');
    if devices.audio_inputs.is_empty() {
        s.push_str("no audio inputs found\n");
    } else {
        s.push_str("Audio inputs\n");
        for a in &devices.audio_inputs {
            render_input(&mut s, a);
        }
    }
    s.push('\n');
    render_encoders(&mut s, &devices.hardware_encoders);
    s
}

fn render_screens(s: &mut String, screens: &[Screen]) {
    if screens.is_empty() {
        s.push_str("no screens found ($DISPLAY is not set)\n");
        return;
    }
    s.push_str("Screens\n");
    for screen in screens {
        match (&screen.error, screen.width, screen.height) {
            (None, Some(w), Some(h)) => {
                let _ = writeln!(s, "  {}: {w}x{h}", screen.display);
                let _ = writeln!(s, "      use: screen.display={}", screen.display);
            }
            (error, ..) => {
                let why = error.as_deref().unwrap_or("size unknown");
                let _ = writeln!(s, "  {}: cannot be captured: {why}", screen.display);
            }
        }
    }
}

/// What was tried, what can be used, and why not: on a machine without a
/// GPU every line says why, so "none" is an answer and not a silence.
fn render_encoders(s: &mut String, encoders: &[HardwareEncoder]) {
    let usable: Vec<&HardwareEncoder> = encoders.iter().filter(|e| e.usable).collect();
    s.push_str("Hardware encoders (video-encode hwaccel)\n");
    if usable.is_empty() {
        s.push_str("  none usable: video-encode encodes in software (hwaccel: auto falls back; nvenc or vaapi fails at start)\n");
    }
    for e in usable {
        let encoder = e.encoder.as_deref().unwrap_or("-");
        let _ = writeln!(
            s,
            "  {encoder}: usable (video-encode.hwaccel={} codec={})",
            e.hwaccel, e.codec
        );
    }
    let refused: Vec<&HardwareEncoder> = encoders.iter().filter(|e| !e.usable).collect();
    if !refused.is_empty() {
        s.push_str("  tried, not usable:\n");
    }
    for e in refused {
        let encoder = e.encoder.as_deref().unwrap_or("-");
        let reason = e.reason.as_deref().unwrap_or("not usable");
        // The reason names the encoder already when FFmpeg refused it.
        let reason = reason
            .strip_prefix(encoder)
            .and_then(|r| r.strip_prefix(": "))
            .unwrap_or(reason);
        let _ = writeln!(s, "    {:<6} {:<5} {encoder}: {reason}", e.hwaccel, e.codec);
    }
}

fn render_camera(s: &mut String, c: &Camera) {
    let (index, select) = match &c.index {
        CameraIndex::Number(n) => (n.to_string(), n.to_string()),
        CameraIndex::Name(i) => (i.clone(), c.name.clone()),
    };
    let _ = writeln!(s, "  {index}: {}", c.name);
    if !c.description.is_empty() {
        let _ = writeln!(s, "      {}", c.description);
    }
    let _ = writeln!(s, "      use: camera.source=device:{select}");
    if let Some(e) = &c.error {
        let _ = writeln!(s, "      cannot read its formats: {e}");
    }
    let width = c.formats.iter().map(|f| f.format.len()).max().unwrap_or(0);
    for f in &c.formats {
        let carried = match &f.pixel_format {
            Some(p) => format!("pixel_format={p}"),
            None => "not usable by the nodes".to_string(),
        };
        let _ = writeln!(s, "      {:width$}  {carried}", f.format);
        // One line per set of rates: cameras offer most sizes at the same rates.
        let mut groups: Vec<(&[u32], Vec<String>)> = Vec::new();
        for size in &f.sizes {
            let name = format!("{}x{}", size.width, size.height);
            match groups.iter_mut().find(|(rates, _)| *rates == size.rates) {
                Some((_, names)) => names.push(name),
                None => groups.push((&size.rates, vec![name])),
            }
        }
        for (rates, names) in groups {
            let rates = if rates.is_empty() {
                "rates unknown".to_string()
            } else {
                format!("{} fps", join(rates, ", "))
            };
            let _ = writeln!(s, "      {:width$}    {}: {rates}", "", names.join(", "));
        }
    }
}

fn render_input(s: &mut String, a: &AudioInput) {
    let default = if a.default { " (default)" } else { "" };
    if a.description.is_empty() || a.description == a.name {
        let _ = writeln!(s, "  {}{default}", a.name);
    } else {
        let _ = writeln!(s, "  {}: {}{default}", a.name, a.description);
    }
    let _ = writeln!(s, "      use:       microphone.source=device:{}", a.name);
    let mut rates = if a.sample_rates.is_empty() {
        String::new()
    } else {
        format!("{} Hz", join(&a.sample_rates, ", "))
    };
    if !a.rate_ranges.is_empty() {
        let ranges: Vec<String> = a
            .rate_ranges
            .iter()
            .map(|(lo, hi)| format!("{lo}-{hi}"))
            .collect();
        if !rates.is_empty() {
            rates.push_str("; ");
        }
        let _ = write!(rates, "any rate in {} Hz", ranges.join(", "));
    }
    let _ = writeln!(s, "      rates:     {rates}");
    let _ = writeln!(s, "      channels:  {}", runs(&a.channels));
    let _ = writeln!(s, "      formats:   {}", a.sample_formats.join(", "));
    if let Some(c) = &a.default_config {
        let _ = writeln!(
            s,
            "      default:   {} Hz, {} ch, {}",
            c.sample_rate, c.channels, c.sample_format
        );
    }
}

fn join<T: ToString>(items: &[T], sep: &str) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(sep)
}

/// Sorted numbers with consecutive runs collapsed: `1-8, 10`.
fn runs(values: &[u16]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => values[i].to_string(),
            1 => format!("{}, {}", values[i], values[j]),
            _ => format!("{}-{}", values[i], values[j]),
        });
        i = j + 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Devices {
        let cameras: Vec<Camera> = serde_json::from_str(concat!(
            r#"[{"index":0,"name":"HD Webcam","description":"Video4Linux Device @ /dev/video0","#,
            r#""formats":[{"format":"MJPEG","pixel_format":"mjpeg","sizes":["#,
            r#"{"width":1280,"height":720,"rates":[30,15]},{"width":640,"height":480,"rates":[30,15]},"#,
            r#"{"width":320,"height":240,"rates":[60]}]},"#,
            r#"{"format":"RAWBGR","pixel_format":null,"sizes":[]}],"error":null},"#,
            r#"{"index":"usb-2","name":"Busy cam","description":"","formats":[],"error":"Device busy"}]"#
        ))
        .unwrap();
        let audio_inputs: Vec<AudioInput> = serde_json::from_str(concat!(
            r#"[{"name":"hw:CARD=0,DEV=0","description":"USB Mic","default":true,"#,
            r#""sample_rates":[16000,44100,48000],"rate_ranges":[[16000,44100]],"#,
            r#""channels":[1,2,3,4,6],"sample_formats":["i16","i32"],"#,
            r#""default_config":{"sample_rate":48000,"channels":2,"sample_format":"i16"}}]"#
        ))
        .unwrap();
        let hardware_encoders: Vec<HardwareEncoder> = serde_json::from_str(concat!(
            r#"[{"hwaccel":"nvenc","codec":"h264","encoder":"h264_nvenc","usable":true,"reason":null},"#,
            r#"{"hwaccel":"nvenc","codec":"vp9","encoder":null,"usable":false,"#,
            r#""reason":"FFmpeg has no NVENC encoder for vp9"},"#,
            r#"{"hwaccel":"vaapi","codec":"h264","encoder":"h264_vaapi","usable":false,"#,
            r#""reason":"h264_vaapi: no VAAPI device: Input/output error"}]"#
        ))
        .unwrap();
        let screens: Vec<Screen> = serde_json::from_str(concat!(
            r#"[{"display":":0.0","width":1920,"height":1080,"error":null},"#,
            r#"{"display":"wayland-0","width":null,"height":null,"error":"not supported yet"}]"#
        ))
        .unwrap();
        Devices {
            cameras,
            screens,
            audio_inputs,
            hardware_encoders,
        }
    }

    #[test]
    fn renders_a_table() {
        let text = render(&sample());
        assert_eq!(
            text,
            "Cameras
  0: HD Webcam
      Video4Linux Device @ /dev/video0
      use: camera.source=device:0
      MJPEG   pixel_format=mjpeg
                1280x720, 640x480: 30, 15 fps
                320x240: 60 fps
      RAWBGR  not usable by the nodes
  usb-2: Busy cam
      use: camera.source=device:Busy cam
      cannot read its formats: Device busy

Screens
  :0.0: 1920x1080
      use: screen.display=:0.0
  wayland-0: cannot be captured: not supported yet

Audio inputs
  hw:CARD=0,DEV=0: USB Mic (default)
      use:       microphone.source=device:hw:CARD=0,DEV=0
      rates:     16000, 44100, 48000 Hz; any rate in 16000-44100 Hz
      channels:  1-4, 6
      formats:   i16, i32
      default:   48000 Hz, 2 ch, i16

Hardware encoders (video-encode hwaccel)
  h264_nvenc: usable (video-encode.hwaccel=nvenc codec=h264)
  tried, not usable:
    nvenc  vp9   -: FFmpeg has no NVENC encoder for vp9
    vaapi  h264  h264_vaapi: no VAAPI device: Input/output error
"
        );
    }

    #[test]
    fn says_when_there_are_none() {
        assert_eq!(
            render(&Devices::default()),
            "no cameras found\n\nno screens found ($DISPLAY is not set)\n\nno audio inputs found\n\nHardware encoders (video-encode hwaccel)\n  none usable: video-encode encodes in software (hwaccel: auto falls back; nvenc or vaapi fails at start)\n"
        );
    }

    #[test]
    fn json_round_trips() {
        let d = sample();
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.starts_with(r#"{"cameras":[{"index":0,"#), "{text}");
        assert_eq!(serde_json::from_str::<Devices>(&text).unwrap(), d);
    }

    #[test]
    fn runs_collapse() {
        assert_eq!(runs(&[]), "");
        assert_eq!(runs(&[2]), "2");
        assert_eq!(runs(&[1, 2]), "1, 2");
        assert_eq!(runs(&[1, 2, 3, 5, 7, 8, 9]), "1-3, 5, 7-9");
    }

    #[test]
    fn a_missing_node_binary_is_named() {
        let dir = std::env::temp_dir().join(format!("devices-none-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = format!("{:#}", list_in(&dir).unwrap_err());
        assert!(
            e.contains(BUILTIN_BINARY) && e.contains("is missing"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
