//! Where each input goes in the composed frame: pure geometry, tested directly.

use anyhow::{bail, Result};
use node_media::geometry::{picture_rect, Rect};

/// The picture-in-picture corner the insets stack from (the `pip_corner` param).
pub use node_catalog::kinds::compose::Corner;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// Equal tiles, row by row in input order; `columns` 0 picks the smallest
    /// square grid that holds every input.
    Grid { columns: u32 },
    /// The first input fills the frame; the others are insets `size` × the
    /// frame's width, `margin` pixels apart, stacked from `corner`.
    Pip {
        size: f64,
        corner: Corner,
        margin: u32,
    },
}

/// Rounds down to an even number (4:2:0 chroma is never split), at least 2.
fn even(v: u32) -> u32 {
    (v & !1).max(2)
}

/// The area of each of `inputs` inputs in a `width`×`height` frame, in input
/// order. Every edge is even. Pictures are fitted into their area keeping
/// their shape ([`fit`]).
pub fn areas(layout: Layout, inputs: usize, width: u32, height: u32) -> Result<Vec<Rect>> {
    if inputs == 0 {
        bail!("nothing to compose: connect at least one input");
    }
    let n = inputs as u32;
    match layout {
        Layout::Grid { columns } => {
            let cols = match columns {
                0 => (1..=n).find(|c| c * c >= n).unwrap_or(n),
                c => c.min(n),
            };
            let rows = n.div_ceil(cols);
            let (tile_w, tile_h) = (even(width / cols), even(height / rows));
            if tile_w * cols > width || tile_h * rows > height {
                bail!("a {cols}x{rows} grid does not fit a {width}x{height} frame");
            }
            let left = ((width - tile_w * cols) / 2) & !1;
            let top = ((height - tile_h * rows) / 2) & !1;
            Ok((0..n)
                .map(|i| {
                    let (row, col) = (i / cols, i % cols);
                    // A last row that is not full is centered.
                    let in_row = (n - row * cols).min(cols);
                    let shift = ((cols - in_row) * tile_w / 2) & !1;
                    Rect {
                        x: left + shift + col * tile_w,
                        y: top + row * tile_h,
                        w: tile_w,
                        h: tile_h,
                    }
                })
                .collect())
        }
        Layout::Pip {
            size,
            corner,
            margin,
        } => {
            let mut areas = vec![Rect {
                x: 0,
                y: 0,
                w: width,
                h: height,
            }];
            let w = even((width as f64 * size) as u32);
            let h = even((w as u64 * height as u64 / width.max(1) as u64) as u32);
            let margin = margin & !1;
            for k in 0..n - 1 {
                let reach = margin + (k + 1) * (h + margin);
                if w + 2 * margin > width || reach > height {
                    bail!(
                        "{} picture-in-picture insets of {w}x{h} with a {margin}-pixel margin do not fit a {width}x{height} frame: lower pip_size or pip_margin",
                        n - 1
                    );
                }
                let x = match corner {
                    Corner::TopLeft | Corner::BottomLeft => margin,
                    Corner::TopRight | Corner::BottomRight => width - margin - w,
                };
                let y = match corner {
                    Corner::TopLeft | Corner::TopRight => margin + k * (h + margin),
                    Corner::BottomLeft | Corner::BottomRight => height - reach + margin,
                };
                areas.push(Rect {
                    x: x & !1,
                    y: y & !1,
                    w,
                    h,
                });
            }
            Ok(areas)
        }
    }
}

/// The rectangle a `src_w`×`src_h` picture takes in `area`: as large as fits,
/// its shape kept, centered (even edges).
pub fn fit(area: Rect, src_w: u32, src_h: u32) -> Rect {
    let r = picture_rect(src_w, src_h, area.w, area.h, true);
    Rect {
        x: area.x + r.x,
        y: area.y + r.y,
        ..r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: u32, y: u32, w: u32, h: u32) -> Rect {
        Rect { x, y, w, h }
    }

    fn inside(a: &Rect, w: u32, h: u32) -> bool {
        a.x + a.w <= w
            && a.y + a.h <= h
            && a.x.is_multiple_of(2)
            && a.y.is_multiple_of(2)
            && a.w.is_multiple_of(2)
    }

    #[test]
    fn four_inputs_make_a_two_by_two_grid() {
        let a = areas(Layout::Grid { columns: 0 }, 4, 1280, 720).unwrap();
        assert_eq!(
            a,
            vec![
                r(0, 0, 640, 360),
                r(640, 0, 640, 360),
                r(0, 360, 640, 360),
                r(640, 360, 640, 360)
            ]
        );
    }

    #[test]
    fn three_inputs_center_the_last_row() {
        let a = areas(Layout::Grid { columns: 0 }, 3, 320, 240).unwrap();
        assert_eq!(a[0], r(0, 0, 160, 120));
        assert_eq!(a[1], r(160, 0, 160, 120));
        assert_eq!(a[2], r(80, 120, 160, 120));
    }

    #[test]
    fn explicit_columns_and_odd_sizes_stay_inside() {
        for n in 1..=9 {
            for cols in 0..=4 {
                let a = areas(Layout::Grid { columns: cols }, n, 322, 182).unwrap();
                assert_eq!(a.len(), n);
                for area in &a {
                    assert!(inside(area, 322, 182), "{n} inputs, {cols} cols: {area:?}");
                }
            }
        }
        let a = areas(Layout::Grid { columns: 3 }, 3, 300, 100).unwrap();
        assert_eq!(
            a,
            vec![r(0, 0, 100, 100), r(100, 0, 100, 100), r(200, 0, 100, 100)]
        );
    }

    #[test]
    fn pip_insets_stack_from_the_corner() {
        let pip = |corner| Layout::Pip {
            size: 0.25,
            corner,
            margin: 16,
        };
        let a = areas(pip(Corner::BottomRight), 3, 1280, 720).unwrap();
        assert_eq!(a[0], r(0, 0, 1280, 720));
        assert_eq!(a[1], r(1280 - 16 - 320, 720 - 16 - 180, 320, 180));
        assert_eq!(a[2], r(1280 - 16 - 320, 720 - 2 * (16 + 180), 320, 180));
        let a = areas(pip(Corner::TopLeft), 3, 1280, 720).unwrap();
        assert_eq!(a[1], r(16, 16, 320, 180));
        assert_eq!(a[2], r(16, 16 + 180 + 16, 320, 180));
    }

    #[test]
    fn pip_that_does_not_fit_is_an_error() {
        let layout = Layout::Pip {
            size: 0.5,
            corner: Corner::TopRight,
            margin: 16,
        };
        let e = areas(layout, 4, 640, 360).unwrap_err().to_string();
        assert!(e.contains("do not fit"), "{e}");
    }

    #[test]
    fn pictures_keep_their_shape_in_their_area() {
        // 4:3 into a 16:9 tile: pillarboxed, centered.
        assert_eq!(
            fit(r(640, 360, 640, 360), 320, 240),
            r(640 + 80, 360, 480, 360)
        );
        assert_eq!(fit(r(0, 0, 640, 360), 1920, 1080), r(0, 0, 640, 360));
    }
}
