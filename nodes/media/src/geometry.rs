//! Where a scaled picture goes in an output frame (video-normalize's
//! letterboxing, compose's tiles and insets).

/// A rectangle of the output frame, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// The picture area for a `src_w`×`src_h` input in a `dst_w`×`dst_h` output:
/// the whole frame when stretching, else the largest centered rectangle of
/// the input's shape (square pixels). Edges are even so 4:2:0 and 4:2:2
/// chroma samples are never split between picture and padding.
pub fn picture_rect(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32, keep_aspect: bool) -> Rect {
    let full = Rect {
        x: 0,
        y: 0,
        w: dst_w,
        h: dst_h,
    };
    if !keep_aspect || src_w == 0 || src_h == 0 {
        return full;
    }
    // Compare src_w/src_h with dst_w/dst_h without rounding.
    let (sw, sh, dw, dh) = (src_w as u64, src_h as u64, dst_w as u64, dst_h as u64);
    let (w, h) = if sw * dh > dw * sh {
        // Wider than the output: full width, bars above and below.
        (dw, (dw * sh + sw / 2) / sw)
    } else {
        (((dh * sw + sh / 2) / sh), dh)
    };
    let even = |v: u64, max: u64| -> u32 {
        let e = if v == max { v } else { v & !1 };
        e.clamp(2.min(max), max) as u32
    };
    let (w, h) = (even(w, dw), even(h, dh));
    if w == dst_w && h == dst_h {
        return full;
    }
    Rect {
        x: ((dst_w - w) / 2) & !1,
        y: ((dst_h - h) / 2) & !1,
        w,
        h,
    }
}

/// The padding around `pic` in a `w`×`h` frame: up to four rectangles (top,
/// bottom, left, right), empty ones left out.
pub fn padding(pic: Rect, w: u32, h: u32) -> impl Iterator<Item = Rect> {
    [
        Rect {
            x: 0,
            y: 0,
            w,
            h: pic.y,
        },
        Rect {
            x: 0,
            y: pic.y + pic.h,
            w,
            h: h - pic.y - pic.h,
        },
        Rect {
            x: 0,
            y: pic.y,
            w: pic.x,
            h: pic.h,
        },
        Rect {
            x: pic.x + pic.w,
            y: pic.y,
            w: w - pic.x - pic.w,
            h: pic.h,
        },
    ]
    .into_iter()
    .filter(|r| r.w > 0 && r.h > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_uses_the_whole_frame() {
        assert_eq!(
            picture_rect(640, 480, 1920, 1080, false),
            Rect {
                x: 0,
                y: 0,
                w: 1920,
                h: 1080
            }
        );
    }

    #[test]
    fn same_shape_fills_the_frame() {
        assert_eq!(
            picture_rect(1280, 720, 1920, 1080, true),
            Rect {
                x: 0,
                y: 0,
                w: 1920,
                h: 1080
            }
        );
    }

    #[test]
    fn four_by_three_in_sixteen_by_nine_is_pillarboxed() {
        let r = picture_rect(640, 480, 1920, 1080, true);
        assert_eq!(
            r,
            Rect {
                x: 240,
                y: 0,
                w: 1440,
                h: 1080
            }
        );
        let pads: Vec<Rect> = padding(r, 1920, 1080).collect();
        assert_eq!(
            pads,
            vec![
                Rect {
                    x: 0,
                    y: 0,
                    w: 240,
                    h: 1080
                },
                Rect {
                    x: 1680,
                    y: 0,
                    w: 240,
                    h: 1080
                }
            ]
        );
    }

    #[test]
    fn wide_input_is_letterboxed_with_even_edges() {
        // 2.39:1 into 16:9.
        let r = picture_rect(1920, 803, 1280, 720, true);
        assert_eq!((r.x, r.w), (0, 1280));
        assert_eq!(r.h % 2, 0);
        assert_eq!(r.y % 2, 0);
        assert!((534..=536).contains(&r.h), "{r:?}");
        let area: u32 = padding(r, 1280, 720).map(|p| p.w * p.h).sum::<u32>() + r.w * r.h;
        assert_eq!(area, 1280 * 720);
    }

    #[test]
    fn extreme_shapes_stay_inside() {
        let r = picture_rect(10_000, 2, 64, 64, true);
        assert!(r.h >= 2 && r.y + r.h <= 64);
        let r = picture_rect(2, 10_000, 64, 64, true);
        assert!(r.w >= 2 && r.x + r.w <= 64);
    }
}
