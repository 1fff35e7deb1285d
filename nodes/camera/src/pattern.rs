//! The deterministic test pattern: scrolling color bars over a gray ramp, a
//! moving box, and a burned-in frame counter and media clock. Frame `n` is a
//! pure function of `n` and the config, drawn straight into the output buffer.
//!
//! With `clapper`, the first frame at or after each whole second of media time
//! is entirely white: the video half of an A/V sync measurement (the
//! microphone's clapper beeps at the same instants).

use anyhow::{bail, Result};
use node_api::{PixelFormat, PlaneLayout};
use node_catalog::Rational;

use node_media::canvas::{Canvas, Rgb};
use node_media::font;

/// Adds grain of up to ±`amplitude` levels to every byte, from a generator
/// seeded by the frame index (the same frame always gets the same grain).
fn add_grain(buf: &mut [u8], amplitude: u32, index: u64) {
    let span = 2 * amplitude as u64 + 1;
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        // xorshift64*: cheap, and plenty random for grain.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let mut r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        for b in chunk {
            let delta = (r & 0xFF) % span;
            r >>= 8;
            *b = (*b as i32 + delta as i32 - amplitude as i32).clamp(0, 255) as u8;
        }
    }
}

/// The classic bar colors at 75 %: white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [Rgb; 8] = [
    Rgb(191, 191, 191),
    Rgb(191, 191, 0),
    Rgb(0, 191, 191),
    Rgb(0, 191, 0),
    Rgb(191, 0, 191),
    Rgb(191, 0, 0),
    Rgb(0, 0, 191),
    Rgb(16, 16, 16),
];
const BOX: Rgb = Rgb(255, 128, 0);

#[derive(Debug, Clone, Copy)]
pub struct PatternConfig {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub fps: Rational,
    pub clapper: bool,
    /// Grain amplitude in levels (0: none).
    pub noise: u32,
}

pub struct TestPattern {
    config: PatternConfig,
    layout: PlaneLayout,
    /// Horizontal bar scroll per frame, pixels (even: keeps chroma aligned).
    step: u32,
    scale: u32,
}

impl TestPattern {
    pub fn new(config: PatternConfig) -> Result<TestPattern> {
        if config.format == PixelFormat::Mjpeg {
            bail!("the test pattern is raw video: pick a raw pixel_format, not mjpeg");
        }
        if config.fps.num <= 0 || config.fps.den <= 0 {
            bail!("frame rate {} must be positive", config.fps);
        }
        let (w, h) = (config.width, config.height);
        Ok(TestPattern {
            config,
            layout: config.format.packed_layout(w, h),
            step: (w / 240).max(1) * 2,
            // Glyphs 7/120 of the frame height: legible, and two lines stay
            // well inside the bars.
            scale: (h / 120).max(1),
        })
    }

    pub fn layout(&self) -> PlaneLayout {
        self.layout
    }

    pub fn config(&self) -> &PatternConfig {
        &self.config
    }

    /// Draws frame `index` into `buf` (at least `layout().size` bytes);
    /// `clap`: it is the first frame of a second (see [`starts_a_second`]),
    /// drawn all white when the pattern is `clapper`.
    pub fn render(&self, index: u64, clap: bool, buf: &mut [u8]) {
        let c = &self.config;
        let mut canvas = Canvas::new(buf, c.format, c.width, c.height, self.layout);
        let (w, h) = (c.width, c.height);
        if c.clapper && clap {
            canvas.fill_rect(0, 0, w, h, Rgb::WHITE);
            return;
        }
        self.draw(&mut canvas, index);
        if c.noise > 0 {
            add_grain(&mut buf[..self.layout.size], c.noise, index);
        }
    }

    fn draw(&self, canvas: &mut Canvas<'_>, index: u64) {
        let c = &self.config;
        let (w, h) = (c.width, c.height);

        // Scrolling bars over the top two thirds.
        let bars_h = even(h * 2 / 3).max(2).min(h);
        let shift = ((index % w as u64) * self.step as u64 % w as u64) as u32;
        for (k, color) in BARS.iter().enumerate() {
            let x0 = even(k as u32 * w / 8);
            let x1 = if k == 7 {
                w
            } else {
                even((k as u32 + 1) * w / 8)
            };
            let start = (x0 + shift) % w;
            let width = x1 - x0;
            canvas.fill_rect(start, 0, width.min(w - start), bars_h, *color);
            if start + width > w {
                canvas.fill_rect(0, 0, start + width - w, bars_h, *color);
            }
        }

        // A still gray ramp below: eight steps from black to white.
        for k in 0..8u32 {
            let x0 = even(k * w / 8);
            let x1 = if k == 7 { w } else { even((k + 1) * w / 8) };
            let level = (k * 255 / 7) as u8;
            canvas.fill_rect(x0, bars_h, x1 - x0, h - bars_h, Rgb(level, level, level));
        }

        // A box bouncing across the whole frame.
        let side = even(h / 5).max(2).min(w).min(h);
        let bx = even(triangle(index * 2 * self.step as u64, (w - side) as u64) as u32);
        let by = even(triangle(index * self.step as u64, (h - side) as u64) as u32);
        canvas.fill_rect(bx, by, side, side, BOX);

        self.draw_overlay(canvas, index);
    }

    /// Frame counter and media clock, white on a black plate at the top left.
    fn draw_overlay(&self, canvas: &mut Canvas<'_>, index: u64) {
        let mut counter = [0u8; 20];
        let counter = write_padded(&mut counter, index, 6);
        let mut clock = [0u8; 32];
        let clock = write_clock(&mut clock, media_time_ms(index, self.config.fps));

        let s = self.scale;
        let margin = even(2 * s);
        let line = (font::GLYPH_H + 2) * s;
        let plate_w = font::text_width(counter.len().max(clock.len()), s) + 2 * margin;
        let plate_h = 2 * line + 2 * margin - 2 * s;
        if plate_w + margin > canvas.width() || plate_h + margin > canvas.height() {
            return; // too small a frame to carry text
        }
        canvas.fill_rect(margin, margin, plate_w, plate_h, Rgb::BLACK);
        font::draw_text(canvas, counter, 2 * margin, 2 * margin, s, Rgb::WHITE);
        font::draw_text(canvas, clock, 2 * margin, 2 * margin + line, s, Rgb::WHITE);
    }
}

/// Whether a frame captured `at_ns` after the first one, the previous one
/// having been captured `prev_ns` after it (`None` for the first frame), is
/// the first frame at or after a whole second.
pub fn starts_a_second(prev_ns: Option<u64>, at_ns: u64) -> bool {
    prev_ns.is_none_or(|prev| at_ns / 1_000_000_000 > prev / 1_000_000_000)
}

/// Media time of frame `index`, in whole milliseconds.
pub fn media_time_ms(index: u64, fps: Rational) -> u64 {
    (index as u128 * fps.den as u128 * 1000 / fps.num as u128) as u64
}

/// Nanoseconds from the first frame to the start of frame `index`.
pub fn frame_offset_ns(index: u64, fps: Rational) -> u64 {
    (index as u128 * fps.den as u128 * 1_000_000_000 / fps.num as u128) as u64
}

fn even(v: u32) -> u32 {
    v & !1
}

/// A triangle wave of period 2·`span`: 0 → span → 0.
fn triangle(t: u64, span: u64) -> u64 {
    if span == 0 {
        return 0;
    }
    let p = t % (2 * span);
    if p <= span {
        p
    } else {
        2 * span - p
    }
}

/// Writes `value` in decimal, zero-padded to `width` digits; returns the text.
fn write_padded(buf: &mut [u8], value: u64, width: usize) -> &[u8] {
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut v = value;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = n.max(width);
    for (i, slot) in buf[..len].iter_mut().enumerate() {
        let from_right = len - 1 - i;
        *slot = if from_right < n {
            digits[from_right]
        } else {
            b'0'
        };
    }
    &buf[..len]
}

/// Writes `HH:MM:SS.mmm` (hours grow past two digits when needed).
fn write_clock(buf: &mut [u8; 32], ms: u64) -> &[u8] {
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut len = write_padded(&mut buf[..], h, 2).len();
    for (sep, value, width) in [(b':', m, 2), (b':', s, 2), (b'.', milli, 3)] {
        buf[len] = sep;
        len += 1;
        len += write_padded(&mut buf[len..], value, width).len();
    }
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(format: PixelFormat, w: u32, h: u32, clapper: bool) -> TestPattern {
        TestPattern::new(PatternConfig {
            width: w,
            height: h,
            format,
            fps: Rational::new(30, 1),
            clapper,
            noise: 0,
        })
        .unwrap()
    }

    #[test]
    fn grain_is_bounded_and_the_same_for_the_same_frame() {
        let clean = pattern(PixelFormat::Yuv420p, 320, 180, false);
        let grainy = TestPattern::new(PatternConfig {
            noise: 8,
            ..*clean.config()
        })
        .unwrap();
        let (c, g) = (render(&clean, 7), render(&grainy, 7));
        assert_eq!(g, render(&grainy, 7));
        let changed = c.iter().zip(&g).filter(|(a, b)| a != b).count();
        assert!(
            changed > c.len() / 2,
            "{changed} of {} samples grained",
            c.len()
        );
        assert!(c
            .iter()
            .zip(&g)
            .all(|(a, b)| (*a as i32 - *b as i32).abs() <= 8));
    }

    fn render(p: &TestPattern, index: u64) -> Vec<u8> {
        let mut buf = vec![0xAAu8; p.layout().size];
        p.render(index, index.is_multiple_of(30), &mut buf);
        buf
    }

    #[test]
    fn same_index_same_bytes() {
        for format in [
            PixelFormat::Yuv420p,
            PixelFormat::Nv12,
            PixelFormat::Rgb24,
            PixelFormat::Bgra,
            PixelFormat::Yuyv422,
        ] {
            let p = pattern(format, 320, 180, false);
            let a = render(&p, 1234);
            // Rendering over a dirty buffer gives the same bytes: every pixel is drawn.
            let mut b = vec![0x55u8; p.layout().size];
            p.render(1234, false, &mut b);
            assert_eq!(a, b, "{format:?}");
            assert_ne!(a, render(&p, 1235), "{format:?}");
        }
    }

    #[test]
    fn counter_digits_change() {
        let p = pattern(PixelFormat::Gray8, 640, 360, false);
        let s = p.scale;
        let margin = even(2 * s);
        // The last counter digit's cell: it differs between frames 0 and 1,
        // while the first digit's cell does not.
        let cell = |buf: &[u8], digit: u32| -> Vec<u8> {
            let x0 = 2 * margin + digit * font::ADVANCE * s;
            let mut out = Vec::new();
            for y in 2 * margin..2 * margin + font::GLYPH_H * s {
                for x in x0..x0 + font::GLYPH_W * s {
                    out.push(buf[(y * 640 + x) as usize]);
                }
            }
            out
        };
        let (f0, f1) = (render(&p, 0), render(&p, 1));
        assert_ne!(cell(&f0, 5), cell(&f1, 5));
        assert_eq!(cell(&f0, 0), cell(&f1, 0));
        assert!(cell(&f1, 5).contains(&255));
    }

    #[test]
    fn clapper_frame_is_white() {
        let p = pattern(PixelFormat::Yuv420p, 64, 48, true);
        let white = render(&p, 30);
        assert!(white[..64 * 48].iter().all(|&y| y == 235));
        assert!(white[64 * 48..].iter().all(|&c| c == 128));
        assert_ne!(
            render(&p, 31)[..64 * 48]
                .iter()
                .filter(|&&y| y == 235)
                .count(),
            64 * 48
        );
        // Without `clapper` the same frame is the ordinary pattern.
        let plain = pattern(PixelFormat::Yuv420p, 64, 48, false);
        assert_ne!(render(&plain, 30), white);
    }

    #[test]
    fn clapper_timing() {
        let is_clapper_frame = |i: u64, fps: Rational| {
            starts_a_second(
                i.checked_sub(1).map(|p| frame_offset_ns(p, fps)),
                frame_offset_ns(i, fps),
            )
        };
        let thirty = Rational::new(30, 1);
        let hits: Vec<u64> = (0..95).filter(|&i| is_clapper_frame(i, thirty)).collect();
        assert_eq!(hits, vec![0, 30, 60, 90]);
        // 29.97: the first frame at or after each second (second 1 → frame 30 at 1.001 s).
        let ntsc = Rational::new(30000, 1001);
        let hits: Vec<u64> = (0..2000)
            .filter(|&i| is_clapper_frame(i, ntsc))
            .take(3)
            .collect();
        assert_eq!(hits, vec![0, 30, 60]);
        let far = (29_900..30_100)
            .filter(|&i| is_clapper_frame(i, ntsc))
            .collect::<Vec<_>>();
        for i in far {
            let t = i as f64 * 1001.0 / 30000.0;
            assert!(t - t.floor() < 1001.0 / 30000.0, "frame {i} at {t}");
        }
    }

    #[test]
    fn clock_text() {
        let mut buf = [0u8; 32];
        assert_eq!(write_clock(&mut buf, 3_723_004), b"01:02:03.004");
        assert_eq!(write_clock(&mut buf, 360_000_000), b"100:00:00.000");
        let mut b = [0u8; 20];
        assert_eq!(write_padded(&mut b, 42, 6), b"000042");
        assert_eq!(write_padded(&mut b, 12_345_678, 6), b"12345678");
        assert_eq!(media_time_ms(30, Rational::new(30000, 1001)), 1001);
        assert_eq!(frame_offset_ns(3, Rational::new(30, 1)), 100_000_000);
    }

    #[test]
    fn tiny_frames_do_not_panic() {
        for (w, h) in [(16, 16), (18, 16), (17, 16)] {
            let p = pattern(PixelFormat::Rgb24, w, h, false);
            for i in 0..100 {
                render(&p, i);
            }
        }
    }
}
