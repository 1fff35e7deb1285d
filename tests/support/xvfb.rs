//! A virtual X screen (Xvfb) with a known picture on it, for the screen
//! capture tests, and what a recording of it must show.
//!
//! The picture is the root window's background, drawn with `xsetroot
//! -bitmap`: a red block in the top-left part of a blue screen, placed off
//! center so a region capture shows whether it was cut at the right place.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::servers::tool_missing;

/// The screen's size.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;
/// The red block: x in 0..RED_W, y in 0..RED_H; blue elsewhere.
pub const RED_W: u32 = 400;
pub const RED_H: u32 = 160;
pub const RED: [u8; 3] = [255, 0, 0];
pub const BLUE: [u8; 3] = [0, 0, 255];

/// The color of screen pixel (x, y).
pub fn color_at(x: u32, y: u32) -> [u8; 3] {
    if x < RED_W && y < RED_H {
        RED
    } else {
        BLUE
    }
}

/// A running Xvfb, killed when dropped.
pub struct Xvfb {
    child: Child,
    /// `:N`, for `DISPLAY` or a `display` param.
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb on a display number it picks itself and draws the
    /// picture; `Err`: why it cannot run here (for [`crate::servers::skip`]).
    pub fn start(dir: &Path) -> Result<Xvfb, String> {
        if let Some(why) = tool_missing("Xvfb", "-help", "xvfb") {
            return Err(why);
        }
        if let Some(why) = tool_missing("xsetroot", "-help", "x11-xserver-utils") {
            return Err(why);
        }
        let (child, number) = spawn()?;
        let xvfb = Xvfb {
            child,
            display: format!(":{number}"),
        };
        xvfb.draw(dir)?;
        Ok(xvfb)
    }

    /// The picture as the root window's background.
    fn draw(&self, dir: &Path) -> Result<(), String> {
        let bitmap = dir.join("picture.xbm");
        std::fs::write(&bitmap, xbm()).map_err(|e| e.to_string())?;
        let out = Command::new("xsetroot")
            .args([
                "-display",
                &self.display,
                "-fg",
                "#ff0000",
                "-bg",
                "#0000ff",
            ])
            .arg("-bitmap")
            .arg(&bitmap)
            .output()
            .map_err(|e| format!("xsetroot: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "xsetroot failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Xvfb with `-displayfd`: it takes a free display number and writes it to
/// the pipe once it accepts clients. `-noreset`: the background stays when
/// the last client leaves (a reset would clear it).
fn spawn() -> Result<(Child, u32), String> {
    let mut fds = [0; 2];
    // SAFETY: a pipe of our own, both ends closed on exec (the child's
    // copy of the write end is made by dup2 below, which clears the flag).
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both ends are ours from here on.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_fd = fds[1];
    let screen = format!("{WIDTH}x{HEIGHT}x24");
    let mut cmd = Command::new("Xvfb");
    cmd.args(["-displayfd", "3", "-screen", "0", &screen])
        .args(["-nolisten", "tcp", "-noreset"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || match libc::dup2(write_fd, 3) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("Xvfb: {e}"))?;
    drop(write);
    let mut text = String::new();
    let _ = std::fs::File::from(read).read_to_string(&mut text);
    match text.trim().parse() {
        Ok(n) => Ok((child, n)),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(format!("Xvfb did not start ({status})"))
        }
    }
}

/// The picture as an X bitmap: 1 (foreground, red) in the block.
fn xbm() -> String {
    let row_bytes = WIDTH.div_ceil(8);
    let mut bytes = Vec::new();
    for y in 0..HEIGHT {
        for b in 0..row_bytes {
            let mut byte = 0u8;
            for bit in 0..8 {
                let x = b * 8 + bit;
                if x < WIDTH && color_at(x, y) == RED {
                    byte |= 1 << bit; // XBM: the leftmost pixel is the lowest bit
                }
            }
            bytes.push(format!("0x{byte:02x}"));
        }
    }
    format!(
        "#define picture_width {WIDTH}\n#define picture_height {HEIGHT}\n\
         static unsigned char picture_bits[] = {{\n{}}};\n",
        bytes.join(",")
    )
}

/// Every frame of a video file's first video track as RGB24, `width` x
/// `height` each.
pub fn decode_rgb(path: &Path, width: u32, height: u32) -> Vec<Vec<u8>> {
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        decoded.status.success(),
        "decoding {}: {}",
        path.display(),
        String::from_utf8_lossy(&decoded.stderr)
    );
    let out = decoded.stdout;
    let size = (width * height * 3) as usize;
    assert_eq!(out.len() % size, 0, "not whole {width}x{height} frames");
    out.chunks(size).map(<[u8]>::to_vec).collect()
}

/// Where frame `rgb` (`width` wide, showing the screen from (`left`,
/// `top`) at one screen pixel per pixel) differs from the picture by more
/// than `tolerance` in a channel, on a grid of points at least 6 pixels from
/// the block's edges (chroma subsampling blurs them); empty: none.
pub fn mismatches(rgb: &[u8], width: u32, (left, top): (u32, u32), tolerance: u8) -> Vec<String> {
    let height = rgb.len() as u32 / 3 / width;
    let near_edge = |v: u32, edge: u32| v.abs_diff(edge) < 6;
    let mut out = Vec::new();
    for y in (3..height).step_by(16) {
        for x in (3..width).step_by(16) {
            let (sx, sy) = (x + left, y + top);
            if near_edge(sx, RED_W) || near_edge(sy, RED_H) {
                continue;
            }
            let i = ((y * width + x) * 3) as usize;
            let got = &rgb[i..i + 3];
            let want = color_at(sx, sy);
            if got.iter().zip(want).any(|(g, w)| g.abs_diff(w) > tolerance) {
                out.push(format!("({x},{y}) = {got:?}, want {want:?}"));
            }
        }
    }
    out
}
