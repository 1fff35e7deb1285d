//! A 5×7 bitmap font for burned-in frame counters and clocks (the camera's
//! test pattern, the overlay example): digits, letters (lower case drawn as
//! upper case), space and `:.-!?,'/`.

use crate::canvas::{Canvas, Rgb};

pub const GLYPH_W: u32 = 5;
pub const GLYPH_H: u32 = 7;
/// Horizontal advance per character, in font pixels (one column of spacing).
pub const ADVANCE: u32 = GLYPH_W + 1;

/// Each row is 5 bits, the leftmost column in bit 4.
const DIGITS: [[u8; 7]; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
];
const COLON: [u8; 7] = [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00];
const PERIOD: [u8; 7] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C];
const BLANK: [u8; 7] = [0; 7];
const LETTERS: [[u8; 7]; 26] = [
    [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // A
    [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E], // B
    [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], // C
    [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E], // D
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], // E
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10], // F
    [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], // G
    [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // H
    [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], // I
    [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C], // J
    [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], // K
    [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F], // L
    [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], // M
    [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11], // N
    [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // O
    [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10], // P
    [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], // Q
    [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11], // R
    [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], // S
    [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // T
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // U
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04], // V
    [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], // W
    [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11], // X
    [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04], // Y
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F], // Z
];
const DASH: [u8; 7] = [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00];
const BANG: [u8; 7] = [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04];
const QUESTION: [u8; 7] = [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04];
const COMMA: [u8; 7] = [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08];
const APOSTROPHE: [u8; 7] = [0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00];
const SLASH: [u8; 7] = [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10];

/// The bitmap of an ASCII character (unknown characters draw as blanks).
pub fn glyph(c: u8) -> &'static [u8; 7] {
    match c {
        b'0'..=b'9' => &DIGITS[(c - b'0') as usize],
        b':' => &COLON,
        b'.' => &PERIOD,
        b'A'..=b'Z' => &LETTERS[(c - b'A') as usize],
        b'a'..=b'z' => &LETTERS[(c - b'a') as usize],
        b'-' => &DASH,
        b'!' => &BANG,
        b'?' => &QUESTION,
        b',' => &COMMA,
        b'\'' => &APOSTROPHE,
        b'/' => &SLASH,
        _ => &BLANK,
    }
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a
/// `scale`×`scale` square. Runs of lit pixels in a row become one rectangle.
pub fn draw_text(canvas: &mut Canvas<'_>, text: &[u8], x: u32, y: u32, scale: u32, color: Rgb) {
    for (i, &c) in text.iter().enumerate() {
        let gx = x + i as u32 * ADVANCE * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            let gy = y + row as u32 * scale;
            let mut col = 0;
            while col < GLYPH_W {
                if bits & (0x10 >> col) == 0 {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < GLYPH_W && bits & (0x10 >> col) != 0 {
                    col += 1;
                }
                canvas.fill_rect(gx + start * scale, gy, (col - start) * scale, scale, color);
            }
        }
    }
}

/// Width in pixels of `chars` characters at `scale`.
pub fn text_width(chars: usize, scale: u32) -> u32 {
    (chars as u32 * ADVANCE).saturating_sub(1) * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_api::PixelFormat;

    #[test]
    fn every_letter_is_distinct_and_fits_and_lower_case_is_upper() {
        let letters: Vec<&[u8; 7]> = (b'A'..=b'Z').map(glyph).collect();
        for (i, g) in letters.iter().enumerate() {
            assert!(
                g.iter().all(|row| *row < 32),
                "{}",
                (b'A' + i as u8) as char
            );
            assert_ne!(**g, BLANK);
            assert_eq!(letters.iter().filter(|o| o == &g).count(), 1);
            assert_eq!(glyph(b'a' + i as u8), *g);
        }
        assert_eq!(glyph(b'~'), &BLANK);
    }

    #[test]
    fn every_digit_is_distinct_and_fits() {
        for (i, a) in DIGITS.iter().enumerate() {
            assert!(a.iter().all(|row| row & !0x1F == 0));
            for b in &DIGITS[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn draws_a_one() {
        let layout = PixelFormat::Gray8.packed_layout(12, 14);
        let mut buf = vec![0u8; layout.size];
        let mut c = Canvas::new(&mut buf, PixelFormat::Gray8, 12, 14, layout);
        draw_text(&mut c, b"1", 0, 0, 2, Rgb::WHITE);
        // The foot of the `1` (row 6, bits 0x0E: columns 1..4) at scale 2.
        let row = |y: usize| -> Vec<bool> { (0..10).map(|x| buf[y * 12 + x] == 255).collect() };
        assert_eq!(
            row(12),
            vec![false, false, true, true, true, true, true, true, false, false]
        );
        // The top (0x04: column 2 only).
        assert_eq!(
            row(0),
            vec![false, false, false, false, true, true, false, false, false, false]
        );
        assert_eq!(text_width(3, 2), (3 * 6 - 1) * 2);
    }
}
