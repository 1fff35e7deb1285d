//! The test pattern as a source.

use anyhow::Result;
use node_api::{clock, Node, TimeBase};
use node_media::video::packed_frame;

use crate::capture::{Capture, Pacer};
use crate::pattern::{frame_offset_ns, TestPattern};

pub struct PatternCapture {
    pattern: TestPattern,
    pacer: Pacer,
}

impl PatternCapture {
    pub fn new(pattern: TestPattern, realtime: bool) -> PatternCapture {
        PatternCapture {
            pattern,
            pacer: Pacer::new(realtime),
        }
    }
}

impl Capture for PatternCapture {
    fn unpaced(&self) -> bool {
        !self.pacer.realtime()
    }

    fn max_frame_bytes(&self) -> usize {
        self.pattern.layout().size
    }

    fn run(&mut self, node: &mut Node) -> Result<u64> {
        let c = *self.pattern.config();
        let time_base = TimeBase::new(c.fps.den as i32, c.fps.num as i32);
        let size = self.pattern.layout().size;
        let started = clock::now_ns();
        let mut index = 0u64;
        while !node.stop_requested() {
            let capture_ns = self
                .pacer
                .wait(frame_offset_ns(index, c.fps), || node.stop_requested());
            if node.stop_requested() {
                break;
            }
            let mut buf = node.alloc("video", size)?;
            self.pattern.render(index, &mut buf);
            let frame = packed_frame(
                c.format,
                c.width,
                c.height,
                index as i64,
                time_base,
                capture_ns,
            );
            node.send_video("video", frame, buf)?;
            index += 1;
        }
        let secs = (clock::now_ns() - started) as f64 / 1e9;
        tracing::info!(
            "test pattern: {index} frames {}x{} {} in {secs:.2} s ({:.1} fps)",
            c.width,
            c.height,
            c.format.name(),
            index as f64 / secs.max(1e-9)
        );
        Ok(index)
    }
}
