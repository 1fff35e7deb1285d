//! Solid rectangles drawn straight into a packed frame of any raw pixel format,
//! so the test pattern never needs an RGB scratch picture plus a conversion.

use node_api::{PixelFormat, PlaneLayout};

/// An sRGB color; converted once per rectangle to the frame's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    pub const BLACK: Rgb = Rgb(0, 0, 0);

    /// BT.601 limited-range Y'CbCr: what swscale assumes for untagged YUV.
    pub fn yuv(self) -> (u8, u8, u8) {
        let (r, g, b) = (self.0 as i32, self.1 as i32, self.2 as i32);
        let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
        let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
        let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
        (y as u8, u as u8, v as u8)
    }

    /// Full-range luma, as FFmpeg's `gray` format is interpreted.
    pub fn gray(self) -> u8 {
        ((77 * self.0 as u32 + 150 * self.1 as u32 + 29 * self.2 as u32 + 128) >> 8) as u8
    }
}

/// A frame being drawn: its payload bytes laid out as `layout` says.
pub struct Canvas<'a> {
    buf: &'a mut [u8],
    format: PixelFormat,
    width: u32,
    height: u32,
    layout: PlaneLayout,
}

impl<'a> Canvas<'a> {
    /// `buf` must hold `layout.size` bytes of a `format` frame of that size.
    pub fn new(
        buf: &'a mut [u8],
        format: PixelFormat,
        width: u32,
        height: u32,
        layout: PlaneLayout,
    ) -> Self {
        assert!(
            buf.len() >= layout.size,
            "canvas buffer smaller than the frame"
        );
        assert!(format != PixelFormat::Mjpeg, "cannot draw into MJPEG");
        Canvas {
            buf,
            format,
            width,
            height,
            layout,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Fills the rectangle (clipped to the frame). On chroma-subsampled formats
    /// the chroma of a rectangle with odd edges covers the whole chroma sample.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, color: Rgb) {
        let x1 = x.saturating_add(w).min(self.width) as usize;
        let y1 = y.saturating_add(h).min(self.height) as usize;
        let (x0, y0) = (x as usize, y as usize);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let (cx0, cx1, cy0, cy1) = (x0 / 2, x1.div_ceil(2), y0 / 2, y1.div_ceil(2));
        let (yy, u, v) = color.yuv();
        match self.format {
            PixelFormat::Yuv420p => {
                self.fill_plane(0, x0, x1, y0, y1, &[yy]);
                self.fill_plane(1, cx0, cx1, cy0, cy1, &[u]);
                self.fill_plane(2, cx0, cx1, cy0, cy1, &[v]);
            }
            PixelFormat::Nv12 => {
                self.fill_plane(0, x0, x1, y0, y1, &[yy]);
                self.fill_plane(1, cx0 * 2, cx1 * 2, cy0, cy1, &[u, v]);
            }
            PixelFormat::Yuyv422 => self.fill_plane(0, cx0 * 4, cx1 * 4, y0, y1, &[yy, u, yy, v]),
            PixelFormat::Rgb24 => {
                self.fill_plane(0, x0 * 3, x1 * 3, y0, y1, &[color.0, color.1, color.2])
            }
            PixelFormat::Rgba => {
                self.fill_plane(0, x0 * 4, x1 * 4, y0, y1, &[color.0, color.1, color.2, 255])
            }
            PixelFormat::Bgra => {
                self.fill_plane(0, x0 * 4, x1 * 4, y0, y1, &[color.2, color.1, color.0, 255])
            }
            PixelFormat::Gray8 => self.fill_plane(0, x0, x1, y0, y1, &[color.gray()]),
            PixelFormat::Mjpeg => unreachable!("rejected in Canvas::new"),
        }
    }

    /// Fills bytes [bx0, bx1) of rows [y0, y1) of one plane with a repeated
    /// unit: the first row by doubling copies, the others copied from it, so
    /// the cost is a few memcpys whatever the pixel size.
    fn fill_plane(
        &mut self,
        plane: usize,
        bx0: usize,
        bx1: usize,
        y0: usize,
        y1: usize,
        unit: &[u8],
    ) {
        let stride = self.layout.strides[plane] as usize;
        let base = self.layout.offsets[plane] as usize;
        let first = base + y0 * stride;
        fill_repeat(&mut self.buf[first + bx0..first + bx1], unit);
        for row in y0 + 1..y1 {
            let start = base + row * stride;
            self.buf.copy_within(first + bx0..first + bx1, start + bx0);
        }
    }
}

/// Fills `span` (a whole number of units long) with copies of `unit`.
fn fill_repeat(span: &mut [u8], unit: &[u8]) {
    if unit.len() == 1 {
        span.fill(unit[0]);
        return;
    }
    let n = span.len();
    if n == 0 {
        return;
    }
    span[..unit.len()].copy_from_slice(unit);
    let mut filled = unit.len();
    while filled < n {
        let chunk = filled.min(n - filled);
        span.copy_within(..chunk, filled);
        filled += chunk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_convert_like_bt601() {
        assert_eq!(Rgb::WHITE.yuv(), (235, 128, 128));
        assert_eq!(Rgb::BLACK.yuv(), (16, 128, 128));
        assert_eq!(Rgb::WHITE.gray(), 255);
        let (y, u, v) = Rgb(255, 0, 0).yuv();
        assert_eq!((y, u, v), (82, 90, 240));
    }

    #[test]
    fn repeat_fill() {
        let mut s = [0u8; 12];
        fill_repeat(&mut s, &[1, 2, 3]);
        assert_eq!(s, [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn rect_in_every_format() {
        for format in [
            PixelFormat::Yuv420p,
            PixelFormat::Nv12,
            PixelFormat::Rgb24,
            PixelFormat::Bgra,
            PixelFormat::Rgba,
            PixelFormat::Yuyv422,
            PixelFormat::Gray8,
        ] {
            let layout = format.packed_layout(8, 6);
            let mut buf = vec![0u8; layout.size];
            let mut c = Canvas::new(&mut buf, format, 8, 6, layout);
            c.fill_rect(0, 0, 8, 6, Rgb::BLACK);
            c.fill_rect(2, 2, 4, 2, Rgb::WHITE);
            // Clipped rectangles draw nothing outside the frame (no panic).
            c.fill_rect(6, 4, 100, 100, Rgb::WHITE);
            c.fill_rect(100, 0, 4, 4, Rgb::WHITE);
            let bright = |x: usize, y: usize| -> bool {
                let s = layout.strides[0] as usize;
                match format {
                    PixelFormat::Rgb24 => buf[y * s + x * 3] == 255,
                    PixelFormat::Bgra | PixelFormat::Rgba => buf[y * s + x * 4] == 255,
                    PixelFormat::Yuyv422 => buf[y * s + x * 2] == 235,
                    PixelFormat::Gray8 => buf[y * s + x] == 255,
                    _ => buf[y * s + x] == 235,
                }
            };
            assert!(bright(3, 3), "{format:?}");
            assert!(!bright(1, 3), "{format:?}");
            assert!(!bright(3, 1), "{format:?}");
            assert!(bright(7, 5), "{format:?}");
        }
    }
}
